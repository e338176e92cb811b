/*
 * mgx meters: from decoded device values to a checked reading. The energy counters pass a
 * plausibility filter with per-counter state, because real meters occasionally return bogus
 * values and settlement must never bill them:
 *
 *  - NaN / not implemented / out of range: flagged, state unchanged, the last good total shown.
 *  - negative: flagged MTR_Q_NEGATIVE, not accepted.
 *  - increase above the bound: flagged MTR_Q_JUMP, not accepted. The bound is the rated power
 *    for the time since the last accepted reading, rounded up, plus a slack and one counter
 *    tick: ceil(max_power_w * dt_ms / 3.6e6) + slack_wh + tick_wh.
 *  - decrease: if the counter can wrap (acc32, uint16/32 maps) and the increase across the
 *    wrap is within the bound, a rollover (MTR_Q_ROLLOVER, corrected: the published total goes
 *    on growing); else if the new value is near zero (<= max(reset_below_wh, bound)), a reset
 *    of the meter (MTR_Q_RESET): new baseline, the delta is not counted; else MTR_Q_BACKWARDS,
 *    not accepted.
 *  - a rejected value that the next `confirm` readings follow consistently is taken as a new
 *    baseline (a replaced meter, a permanent jump): MTR_Q_RESET, the delta not counted.
 *
 * The published totals are "virtual": device value + an offset that absorbs rollovers and
 * resets, so accepted totals never go down. A rejected value (negative, jump, backwards) is
 * never output: the total stays the last accepted one (0 before the first) and the flag says
 * why, so the published totals never go down at all. The state (mtr_filter) can be saved and
 * restored across restarts (mtr_poller_restore), so the offset, and with it the published
 * total, survives them. Every bit makes the reading "flagged"; only
 * quality == MTR_Q_GOOD is settled. Pure: time is a parameter. Not thread-safe per state.
 */
#ifndef MGX_COUNTER_H
#define MGX_COUNTER_H

#include <stdint.h>

#include "mgx/meter.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values decoded from one poll of a device, each with its own quality bits. */
typedef struct {
    int64_t power_w; /* + import, - export */
    uint32_t power_q;
    int64_t import_wh, export_wh; /* as the device counts them (scaled to Wh) */
    uint32_t import_q, export_q;
    int64_t import_wrap_wh, export_wrap_wh; /* counter modulus in Wh, 0 if it cannot wrap */
    int64_t import_tick_wh, export_tick_wh; /* counter resolution in Wh, >= 1 */
    int has_soc;
    int32_t soc_permille;
    uint32_t soc_q;
} mtr_values;

typedef struct {
    int64_t max_power_w;    /* rated current x voltage x phases; 0 disables the jump check */
    int64_t slack_wh;       /* tolerance added to every bound */
    int64_t reset_below_wh; /* a drop to at most this is a meter reset */
    int confirm;            /* readings that must agree before a rejected track is accepted */
} mtr_counter_params;

/* Defaults: max_power_w 0 (set it!), slack 10 Wh, reset below 1000 Wh, confirm 3. */
void mtr_counter_params_default(mtr_counter_params *p);

/* State of one cumulative counter. Zero-initialise (or mtr_counter_init) before first use. */
typedef struct {
    int have;           /* a baseline was accepted */
    int64_t ts_ms;      /* time of the last accepted reading */
    int64_t raw_wh;     /* device value of the last accepted reading */
    int64_t offset_wh;  /* virtual total = device value + offset */
    int pending;        /* readings on a rejected track */
    int64_t pend_ts_ms, pend_raw_wh;
} mtr_counter;

void mtr_counter_init(mtr_counter *c);

/*
 * One reading of one counter at ts_ms: value_wh as decoded with decode quality q (0 or
 * MTR_Q_NAN / NOT_IMPLEMENTED / RANGE / COMM), wrap_wh and tick_wh as in mtr_values. Writes
 * the total to publish into *out_wh and returns the quality bits for this counter. The first
 * good reading is accepted as the baseline.
 */
uint32_t mtr_counter_step(mtr_counter *c, const mtr_counter_params *p, int64_t ts_ms,
                          int64_t value_wh, uint32_t q, int64_t wrap_wh, int64_t tick_wh,
                          int64_t *out_wh);

/* The state a device keeps between polls. */
typedef struct {
    mtr_counter imp, exp;
} mtr_filter;

/*
 * Builds the sample of one poll: power, filtered counters, soc (-1 without a battery) and the
 * union of all quality bits; meter_id and ts_ms are set by the caller beforehand (ts_ms is
 * read from s). battery_required flags a missing soc as MTR_Q_NOT_IMPLEMENTED.
 */
void mtr_filter_apply(mtr_filter *f, const mtr_counter_params *p, const mtr_values *v,
                      int battery_required, mtr_sample *s);

/*
 * A sample for a failed poll: quality MTR_Q_COMM, power 0, soc -1 and the last accepted totals
 * (0 before the first), so a consumer sees the failure without losing the counters.
 */
void mtr_filter_fail(const mtr_filter *f, mtr_sample *s);

#ifdef __cplusplus
}
#endif

#endif
