/*
 * Internal: one participant's metered import and export over one interval, from the readings
 * its meter published (as the controller stored them, flagged ones included). This is the
 * "validated metered energy" settlement reconciles the trades against.
 *
 * The counters at each interval boundary are taken from a good reading exactly on it, or
 * interpolated between the nearest good readings on either side if those are at most
 * max_gap_ms apart: mtr_interval_boundary (mgx/interval_energy.h), the rule the home agent
 * uses too. The interval's energy is the
 * rise of the counters between its two boundaries; a boundary is shared by the two intervals it
 * separates, so consecutive intervals add up to the counters' rise, to the Wh.
 *
 * The result is never a guess:
 *  - GOOD: both boundaries known, every reading between the two outer readings used has
 *    quality 0, and every step between consecutive good readings is plausible (no counter goes
 *    down; no rise beyond max_power_w for the time between them).
 *  - FLAGGED: a reading in the span the energy comes from (or inside the interval) carries
 *    quality bits, or a step is implausible (MTR_Q_BACKWARDS / MTR_Q_JUMP added), or the
 *    energy is beyond what settlement represents (MTR_Q_RANGE). Settlement holds the
 *    participant; the values are kept for the record when the boundaries are known.
 *  - MISSING: no flagged reading, but a boundary cannot be determined (no reading near it, or
 *    a gap wider than max_gap_ms). Settlement holds the participant as missing.
 *
 * Pure: no I/O, no clock; the caller passes the readings. Reentrant.
 */
#ifndef MGX_CTL_SETTLE_METER_H
#define MGX_CTL_SETTLE_METER_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/meter.h"

typedef struct {
    int64_t max_gap_ms;  /* > 0: widest pair of readings a boundary is interpolated across */
    int64_t max_power_w; /* the plausibility bound between readings; 0 turns the check off */
} stm_rules;

typedef enum { STM_GOOD = 0, STM_FLAGGED = 1, STM_MISSING = 2 } stm_status;

typedef struct {
    stm_status status;
    int64_t import_wh; /* GOOD: the interval's energy; FLAGGED: same if the boundaries were */
    int64_t export_wh; /* known, else 0; MISSING: 0 */
    uint32_t quality;  /* MTR_Q_* bits of the readings (and checks) that made it FLAGGED */
} stm_result;

enum { STM_OK = 0, STM_E_INVAL = -1 };

/* Readings a caller must pass for an interval: every reading of the meter with
 * start_ms - max_gap_ms <= ts_ms <= end_ms + max_gap_ms. */
void stm_window(int64_t start_ms, int64_t end_ms, const stm_rules *rules, int64_t *from_ms,
                int64_t *to_ms);

/* The energy of [start_ms, end_ms) from the readings r[0..n) of one meter, ascending by ts_ms
 * (at most one per timestamp). STM_E_INVAL for bad arguments (end <= start, max_gap_ms <= 0,
 * unsorted readings); otherwise STM_OK with *out filled. */
int stm_interval(const mtr_sample *r, size_t n, int64_t start_ms, int64_t end_ms,
                 const stm_rules *rules, stm_result *out);

/* The counters at time t from readings r[0..n) (ascending, the window stm_window gives for
 * [t, t]): 1 with *import_wh / *export_wh when the boundary is known (the rule of
 * stm_interval), 0 when it is not (no reading near t, or an implausible pair). */
int stm_boundary(const mtr_sample *r, size_t n, int64_t t, const stm_rules *rules,
                 int64_t *import_wh, int64_t *export_wh);

/* A home's registered physical limits (db/registry.h ctl_limits; STM_LIMIT_NONE: not
 * registered). */
#define STM_LIMIT_NONE INT64_C(-1)
typedef struct {
    int64_t connection_w; /* both directions */
    int64_t pv_wp;
    int64_t battery_wh;
    int64_t battery_w;
} stm_limits;

/* What the registered battery can give in len_s seconds: min(battery_w x t, battery_wh) over the
 * registered ones, P x t rounded up to the Wh; 0 when neither is registered. */
int64_t stm_battery_wh(const stm_limits *l, int64_t len_s);

/* MTR_Q_LIMIT when an interval of len_s seconds with this metered energy is beyond what the
 * limits allow, else 0. With P x t rounded up to the Wh (cap(P) = ceil(P * len_s / 3600)):
 *  - import_wh <= cap(connection_w) and export_wh <= cap(connection_w);
 *  - when pv_wp is registered: export_wh <= cap(pv_wp) + battery, where battery is
 *    min(cap(battery_w), battery_wh) over the registered ones (0 when neither is): a home
 *    cannot feed in more than its panels at peak plus its battery could give.
 * Limits not registered are not checked. Pure. */
uint32_t stm_limits_check(const stm_limits *l, int64_t import_wh, int64_t export_wh,
                          int64_t len_s);

/* "good", "flagged", "missing". */
const char *stm_status_name(stm_status s);

#endif
