/*
 * Internal: the controller's interval arithmetic and its clock, pure functions of their inputs.
 *
 * An interval is keyed by its UTC start divided by the interval length, so the key of an
 * instant never depends on a time zone: a daylight-saving day simply has 92 or 100 quarter
 * hours and a clock step changes which interval is "now", never the key of an interval. Gate
 * closure is a fixed time before the interval starts; orders for an interval are taken until
 * its gate closes. The controller's accelerated clock (--clock-speed) is a linear map from real
 * time to simulated time, so every process given the same anchor agrees on simulated time.
 *
 * Times are Unix seconds or milliseconds as named; all arithmetic is checked and floors toward
 * minus infinity, so instants before 1970 work too.
 */
#ifndef MGX_CTL_INTERVAL_H
#define MGX_CTL_INTERVAL_H

#include <stdint.h>

/* Bounds that keep every product below inside int64. */
#define CTL_INTERVAL_MAX_LEN_S  INT64_C(86400)          /* one day */
#define CTL_INTERVAL_MAX_GATE_S INT64_C(7 * 86400)      /* one week */
#define CTL_INTERVAL_MAX_AHEAD  INT64_C(7 * 24 * 4)     /* a week of quarter hours */
#define CTL_TIME_MAX_S          INT64_C(253402300799)   /* 9999-12-31T23:59:59Z */
#define CTL_CLOCK_MAX_SPEED     INT64_C(1000000)

enum {
    CTL_IV_OK = 0,
    CTL_IV_E_INVAL = -1,     /* rules out of their bounds or a time beyond +-CTL_TIME_MAX_S */
    CTL_IV_E_GATE_CLOSED = -2, /* the interval's gate has closed */
    CTL_IV_E_TOO_FAR = -3     /* the interval is more than max_ahead past the first open one */
};

/* Returns a static English description of a CTL_IV_* code; never NULL. */
const char *ctl_interval_strerror(int code);

typedef struct {
    int64_t length_s;       /* 1 .. CTL_INTERVAL_MAX_LEN_S; 900 for quarter hours */
    int64_t gate_closure_s; /* 0 .. CTL_INTERVAL_MAX_GATE_S before the start */
    int64_t max_ahead;      /* 0 .. CTL_INTERVAL_MAX_AHEAD intervals past the first open one */
} ctl_interval_rules;

/* CTL_IV_OK if every field is within its bounds, CTL_IV_E_INVAL otherwise. */
int ctl_interval_rules_check(const ctl_interval_rules *r);

/* floor(a / b) for b != 0, rounding toward minus infinity (C's / truncates toward zero). */
int64_t ctl_floor_div(int64_t a, int64_t b);

/* floor(utc_s / length_s): the interval containing utc_s. */
int64_t ctl_interval_id(int64_t utc_s, int64_t length_s);
/* First and one-past-last second of interval id. */
int64_t ctl_interval_start(int64_t id, int64_t length_s);
int64_t ctl_interval_end(int64_t id, int64_t length_s);
/* The instant orders for interval id stop being taken: start - gate_closure_s. */
int64_t ctl_interval_gate(int64_t id, const ctl_interval_rules *r);

/* The first interval still taking orders at utc_s: the smallest id whose gate is after utc_s.
 * Every interval before it has had its gate closed at or before utc_s. */
int64_t ctl_interval_first_open(int64_t utc_s, const ctl_interval_rules *r);

/* Whether an order for interval id may be taken at utc_s: CTL_IV_OK, CTL_IV_E_GATE_CLOSED or
 * CTL_IV_E_TOO_FAR. */
int ctl_interval_admit(int64_t id, int64_t utc_s, const ctl_interval_rules *r);

/* The intervals to clear at utc_s when every interval up to last_cleared is done (pass
 * INT64_MIN when none is): ids *from .. *to inclusive, all with gates closed. Returns the count,
 * 0 when nothing is due. A clock that stepped back makes no interval due twice; one that stepped
 * forward makes every skipped interval due, in order. first_ever (or INT64_MIN for no bound) is
 * the earliest id the controller is responsible for, so a new store does not clear history. */
int64_t ctl_interval_due(int64_t last_cleared, int64_t first_ever, int64_t utc_s,
                         const ctl_interval_rules *r, int64_t *from, int64_t *to);

/* The accelerated clock: sim_ms = sim0_ms + (real_ms - real0_ms) * speed. speed 1 with
 * sim0 == real0 is the wall clock. */
typedef struct {
    int64_t real0_ms;
    int64_t sim0_ms;
    int64_t speed; /* 1 .. CTL_CLOCK_MAX_SPEED */
} ctl_clock;

/* Simulated time at real time real_ms, saturating at +-CTL_TIME_MAX_S * 1000. */
int64_t ctl_clock_sim_ms(const ctl_clock *c, int64_t real_ms);
/* The earliest real time at which the simulated clock reads at least sim_ms. */
int64_t ctl_clock_real_ms(const ctl_clock *c, int64_t sim_ms);

/* Parses a clock anchor "REAL_S:SIM_S" (Unix seconds, e.g. from `date +%s`; SIM_S may also be
 * an ISO 8601 UTC date "2024-06-01T00:00:00Z") into c->real0_ms / c->sim0_ms. The speed is
 * left alone. CTL_IV_OK or CTL_IV_E_INVAL. */
int ctl_clock_parse_anchor(const char *s, ctl_clock *c);

/* Parses an ISO 8601 UTC instant "YYYY-MM-DDTHH:MM:SSZ" (or a plain integer of Unix seconds).
 * CTL_IV_OK or CTL_IV_E_INVAL. */
int ctl_parse_utc(const char *s, int64_t *utc_s);
/* The text of Unix seconds is mkt_format_time(utc_s, 0, ...) of mgx/civil.h:
 * "YYYY-MM-DDTHH:MM:SSZ". */

#endif
