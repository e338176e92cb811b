/*
 * mgx sim: what each home's meter shows at any moment of a simulated interval.
 *
 * The simulator knows a home's grid import and export per interval; a meter polled in real time
 * has to show counters that move within the interval. This module spreads each interval's
 * energy linearly over it, so counters rise smoothly, equal the simulation's cumulative totals
 * exactly at every interval boundary, and never go down; the power shown is the interval's
 * average, the one power consistent with those counters. Pure: the caller supplies the time.
 *
 * Rules (integers throughout): at elapsed time t of an interval of length T (0 <= t <= T),
 *   counter = start + previous intervals + floor(energy x t / T)
 *   power_w = round((import - export) x 3,600,000 / T_ms), half away from zero.
 *
 * Thread safety: a sim_trace is not shared between threads.
 */
#ifndef MGX_METER_TRACE_H
#define MGX_METER_TRACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest energy of one home in one interval the trace accepts (1 TWh, like the market). */
#define SIM_TRACE_MAX_WH INT64_C(1000000000000)

typedef struct {
    int64_t power_w;   /* + import, - export */
    int64_t import_wh; /* cumulative */
    int64_t export_wh; /* cumulative */
} sim_meter_reading;

typedef struct sim_trace sim_trace; /* opaque */

/* A trace for homes meters whose counters start at start_wh (>= 0) each, for intervals of
 * interval_ms (> 0). NULL on a bad argument or out of memory. Free with sim_trace_free. */
sim_trace *sim_trace_new(size_t homes, int64_t interval_ms, int64_t start_wh);
void sim_trace_free(sim_trace *t);

/* The energy at home's meter in the interval now playing (0 .. SIM_TRACE_MAX_WH each).
 * Returns 0, or -1 for a bad home or energy. */
int sim_trace_set(sim_trace *t, size_t home, int64_t import_wh, int64_t export_wh);

/* What home's meter shows elapsed_ms into the interval (clamped to 0 .. interval_ms). */
void sim_trace_at(const sim_trace *t, size_t home, int64_t elapsed_ms, sim_meter_reading *out);

/* Ends the interval: every counter moves on by its whole energy, which is then 0 until set. */
void sim_trace_next(sim_trace *t);

#ifdef __cplusplus
}
#endif

#endif
