/*
 * mgx civil dates: the proleptic Gregorian calendar in Unix time, with no time zone database.
 * Intervals, orders, the ledger and the simulator all count Unix seconds; these functions turn
 * them into dates and text and back, exactly, for every date (era arithmetic on 400-year
 * cycles, after Howard Hinnant's days-from-civil derivation). Pure: no I/O, no clock, no
 * locale, no global state; safe from any thread.
 *
 * It lives in the market library because that is the lowest library: the simulator and the
 * controller both link it already, and a calendar needs nothing else.
 */
#ifndef MGX_CIVIL_H
#define MGX_CIVIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Days since 1970-01-01 of the date y-m-d (m 1..12, d 1..31, not checked). */
int64_t mkt_days_from_civil(int64_t y, int64_t m, int64_t d);

/* The date of a day number (days since 1970-01-01), any sign. */
void mkt_civil_from_days(int64_t days, int64_t *y, int64_t *m, int64_t *d);

/* Days in month m (1..12) of year y, leap years by the Gregorian rule. */
int mkt_days_in_month(int64_t y, int64_t m);

/* Room for mkt_format_time's longest text of a four-digit year, with its NUL. */
#define MKT_TIME_TEXT_MAX 26

/* Unix seconds as ISO 8601 in a fixed offset from UTC (minutes east): "2024-06-01T00:15:00Z"
 * for offset 0, else "2024-06-01T02:15:00+02:00". Cut to fit len (always NUL-terminated when
 * len > 0). */
void mkt_format_time(int64_t unix_s, int32_t offset_min, char *out, size_t len);

#ifdef __cplusplus
}
#endif

#endif
