/*
 * Internal: the scenario's interval grid. Interval k starts at local standard midnight of the
 * start date plus k intervals; times are Unix seconds (UTC) so the solar model and measured data
 * agree on the instant. Dates and their text are mgx/civil.h's (the market library).
 */
#ifndef MGX_SIM_TIMEGRID_H
#define MGX_SIM_TIMEGRID_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/civil.h"
#include "mgx/scenario.h"

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

#endif
