/*
 * Internal: the scenario's interval grid. Interval k starts at local standard midnight of the
 * start date plus k intervals; times are Unix seconds (UTC) so the solar model and measured data
 * agree on the instant.
 */
#ifndef MGX_SIM_TIMEGRID_H
#define MGX_SIM_TIMEGRID_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/scenario.h"

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t sim_days_from_civil(int32_t y, int32_t m, int32_t d);
/* Days in month m (1..12) of year y, leap years by the Gregorian rule. */
int sim_days_in_month(int32_t y, int32_t m);
/* Whether the models that precompute per interval and per group (pv.h, load.h) can be built
 * for sc: a scenario whose interval is a whole divisor of the day, with at most SIM_MAX_GROUPS
 * groups (their per-group arrays are fixed). */
int sim_grid_ok(const sim_scenario *sc);
/* Number of intervals in the scenario. */
size_t sim_intervals(const sim_scenario *sc);
/* Unix seconds (UTC) of the start of interval k. */
int64_t sim_interval_start_utc(const sim_scenario *sc, size_t k);
/* Local-time facts of interval k's start: day of year 1..366, weekday 0=Monday..6=Sunday, and
 * minute of the day 0..1439. */
void sim_interval_local(const sim_scenario *sc, size_t k, int *day_of_year, int *weekday,
                        int *minute_of_day);

/* Inverse of sim_days_from_civil. */
void sim_civil_from_days(int64_t days, int32_t *y, int32_t *m, int32_t *d);
/* Formats Unix seconds as ISO 8601 in a fixed UTC offset: "2025-06-01T00:15:00+02:00" (or "Z"
 * for offset 0). out needs 26 bytes. */
void sim_format_time(int64_t unix_s, int32_t offset_min, char *out, size_t len);

#endif
