/*
 * Internal: a home battery in integer Wh. Charging and discharging each lose the square root of
 * the round-trip efficiency; losses are whole Wh, computed so that stored energy changes by
 * exactly charge - discharge - loss every interval.
 */
#ifndef MGX_SIM_BATTERY_H
#define MGX_SIM_BATTERY_H

#include <stdint.h>

#include "mgx/scenario.h"

typedef struct {
    int64_t min_wh, max_wh; /* SOC window */
    int64_t stored_wh;
    int64_t power_wh;       /* most energy in or out per interval */
    double eta_charge, eta_discharge;
} sim_battery;

typedef struct {
    int64_t charge_wh;    /* taken in (from surplus; from the grid too under a plan) */
    int64_t discharge_wh; /* delivered (to the load; to the grid too under a plan) */
    int64_t loss_wh;
} sim_battery_flow;

/* Sets up a group's battery for intervals of interval_min minutes (zero capacity: none). */
void sim_battery_init(sim_battery *b, const sim_group *g, uint32_t interval_min);

/* Self-consumption policy for one interval: surplus charges, deficit discharges (only one of
 * them is non-zero). Updates the battery when apply is non-zero; otherwise only predicts. */
sim_battery_flow sim_battery_step(sim_battery *b, int64_t surplus_wh, int64_t deficit_wh,
                                  int apply);

/* A planned interval: what self-consumption would do (surplus charges, deficit discharges),
 * clamped into [lo_wh, hi_wh] (> 0 charge; sim_plan_bounds), then into the battery's power and
 * window. Charging beyond the surplus takes from the grid, discharging beyond the deficit
 * exports. With lo = -power_wh and hi = power_wh it is sim_battery_step. */
sim_battery_flow sim_battery_step_bounded(sim_battery *b, int64_t surplus_wh, int64_t deficit_wh,
                                          int64_t lo_wh, int64_t hi_wh, int apply);

#endif
