/*
 * mgx meters: the interval-energy rule, how a meter's readings become one interval's energy.
 *
 * Meters publish cumulative import and export counters at their own pace; an interval's energy
 * is the rise of the counters between its two boundaries (its start and its end). A boundary
 * rarely has a reading exactly on it, so this is the one rule for the counters at a boundary,
 * used by everyone who needs them (the home agent's forecast, controller/agent/agent_meter.c,
 * and the controller's settlement, controller/settle/settle_meter.c), so that the same
 * readings always give the same boundary:
 *
 *  - a good reading exactly on the boundary is the boundary;
 *  - otherwise the boundary is interpolated (mtr_counters_at: the floor of the linear
 *    interpolation, in 128 bits) between the nearest good readings before and after it, and
 *    only if those two are at most max_gap_ms apart and plausible: across a wider gap, or a
 *    counter going down, it is not known.
 *
 * Each boundary is shared by the two intervals it separates, so the floors of the
 * interpolation telescope: consecutive intervals add up to the counters' rise, to the Wh.
 * Whether the steps between readings are plausible is mtr_interval_energy (mgx/reading.h);
 * what to do with a flagged reading or an implausible step is the caller's policy.
 *
 * Pure: no I/O, no clock, no allocation; reentrant.
 */
#ifndef MGX_INTERVAL_ENERGY_H
#define MGX_INTERVAL_ENERGY_H

#include <stdint.h>

#include "mgx/meter_error.h"
#include "mgx/reading.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The counters of one meter at the boundary t_ms, from its good readings around it: before
 * (time_ms <= t_ms) and after (time_ms >= t_ms), either NULL when the caller has none there.
 *  - One reading alone (the other NULL) is the boundary if it is exactly at t_ms. A caller
 *    with a reading on the boundary passes it alone: it is the boundary whatever its
 *    neighbours are.
 *  - A pair is interpolated (the readings themselves at its ends) if it is at most max_gap_ms
 *    apart, no counter goes down from before to after and none is negative.
 * On MTR_OK *at is {t_ms, import_wh, export_wh}. Otherwise *at is untouched and the code says
 * why:
 *   MTR_E_GAP        the boundary is not known: one reading alone that is not on t_ms, none,
 *                    or a pair more than max_gap_ms apart;
 *   MTR_E_BACKWARDS  a counter went down from before to after (the pair is not plausible);
 *   MTR_E_RANGE      a counter of the pair is negative;
 *   MTR_E_INVAL      NULL at, max_gap_ms <= 0, or a reading on the wrong side of t_ms.
 */
int mtr_interval_boundary(const mtr_reading *before, const mtr_reading *after, int64_t t_ms,
                          int64_t max_gap_ms, mtr_reading *at);

#ifdef __cplusplus
}
#endif

#endif
