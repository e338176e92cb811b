/*
 * mgx battery plan: the home battery scheduler. Given a forecast of a home's net load and the
 * prices of each interval of a horizon, it plans how much to charge or discharge in every
 * interval so that the home's expected bill is as small as it can be, within the battery's
 * stored-energy window, its charge and discharge power, its charge and discharge efficiencies
 * and an optional grid import/export cap per interval (a grid operator's limit).
 *
 * Pure: no I/O, no clock, no globals, no allocation (the caller hands a workspace). Energy is
 * int64 Wh, prices int64 micro-currency (uc) per kWh, efficiencies integer per mille, and the
 * programme's costs are exact integers in nano-currency (nuc): Wh x uc/kWh = 10^-3 uc, so no
 * cost is ever rounded inside the solver. Both the simulator (a battery policy of `mgx sim`) and
 * the home agent use it, so it lives in sim/ (the lowest library both link).
 *
 * Method: an exact dynamic programme over the stored energy discretised in steps of step_wh,
 * anchored at the present stored energy (states initial + j * step within [min, max]). Every
 * plan whose stored energy moves in whole steps is considered, so the result is the optimum of
 * that discretised problem (tests/sim/test_battery_plan.c checks it against brute force). How
 * far that is from the continuous optimum: the cost of one interval is convex and piecewise
 * linear in the battery's flow, so moving a continuous optimum's stored energy to the nearest
 * step changes each interval's cost by at most step_wh x (the dearest price)/efficiency; with
 * the default 1/200 of the window (42 Wh for a 10 kWh battery) that is about 1.5 cents a day at
 * 0.30/kWh, well inside forecast error. Cost: O(intervals x states x moves).
 *
 * Thread safety: none needed; every call works only on its arguments.
 */
#ifndef MGX_BATTERY_PLAN_H
#define MGX_BATTERY_PLAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIM_PLAN_MAX_INTERVALS 2880 /* a day at 30 s, or 30 days at 15 min */
#define SIM_PLAN_DEFAULT_STATES 200 /* states over the window when step_wh is 0 */
#define SIM_PLAN_MAX_STATES 4001
#define SIM_PLAN_NO_CAP (-1)

/* The battery and the limits the plan must keep. */
typedef struct {
    int64_t min_wh, max_wh;     /* stored-energy window (SoC min/max) */
    int64_t initial_wh;         /* stored now, within the window */
    int64_t charge_max_wh;      /* most energy into the battery per interval (AC side) */
    int64_t discharge_max_wh;   /* most energy out of it per interval (AC side) */
    uint32_t charge_eff_pm;     /* stored per AC Wh in, per mille (1..1000) */
    uint32_t discharge_eff_pm;  /* AC Wh out per stored Wh, per mille (1..1000) */
    /* Grid limits per interval, SIM_PLAN_NO_CAP for none. The battery may never push the grid
     * exchange past a cap; where the forecast load alone already does, it may only reduce it. */
    int64_t import_cap_wh, export_cap_wh;
    /* What a Wh still stored at the end of the horizon is worth (uc/kWh of stored energy); 0
     * makes the plan empty the battery by the end if that earns anything. */
    int64_t terminal_uc_per_kwh;
    int64_t step_wh; /* discretisation; 0: (max - min) / SIM_PLAN_DEFAULT_STATES, at least 1 */
} sim_plan_battery;

/* One interval of the horizon as forecast. */
typedef struct {
    int64_t net_wh;            /* expected load - PV (positive: the home lacks energy) */
    int64_t import_uc_per_kwh; /* all-in price of a Wh bought (retail, or local price + fee) */
    int64_t export_uc_per_kwh; /* price of a Wh sold (feed-in, or expected local price) */
} sim_plan_interval;

/* The plan of one interval. */
typedef struct {
    int64_t battery_wh; /* AC side: > 0 charge, < 0 discharge */
    int64_t stored_wh;  /* stored at the end of the interval */
    int64_t grid_wh;    /* expected exchange: net + battery; > 0 import, < 0 export */
    int64_t cost_nuc;   /* expected cost of the interval (nano-currency, exact) */
} sim_plan_step;

enum {
    SIM_PLAN_OK = 0,
    /* inconsistent battery or prices, n out of range, or energies above 10 MWh per interval or
     * prices above 10^8 uc/kWh (the bounds that keep every sum of costs inside int64) */
    SIM_PLAN_E_INVAL = -1,
    /* the workspace is too small (see sim_plan_workspace_size), or more than
     * SIM_PLAN_MAX_STATES steps in the window */
    SIM_PLAN_E_TOOBIG = -2,
};

/* Bytes of workspace sim_plan_solve needs for this battery over n intervals (0 if the battery
 * is invalid). */
size_t sim_plan_workspace_size(const sim_plan_battery *b, size_t n);

/* Plans n intervals. out[0..n) receives the plan; *total_nuc the expected cost of the horizon
 * minus the terminal value of the energy left. work: caller-owned, at least
 * sim_plan_workspace_size bytes, aligned for int64_t; nothing is kept after the call. Among
 * plans of equal cost it takes one moving the least energy through the battery. */
int sim_plan_solve(const sim_plan_battery *b, const sim_plan_interval *iv, size_t n, void *work,
                   size_t work_len, sim_plan_step *out, int64_t *total_nuc);

/* The same objective for the self-consumption rule (surplus charges, deficit discharges, no
 * grid charging, no plan) on the forecast, in the same units; the scheduler's expected gain is
 * this minus sim_plan_solve's total. out may be NULL. */
int sim_plan_self_consumption(const sim_plan_battery *b, const sim_plan_interval *iv, size_t n,
                              sim_plan_step *out, int64_t *total_nuc);

/* The expected cost (nuc) of exchanging grid_wh in an interval at these prices. */
int64_t sim_plan_interval_cost_nuc(const sim_plan_interval *iv, int64_t grid_wh);

/* How a battery should act in the first interval of a plan, robust to forecast error: the
 * real action is what self-consumption would do with the real surplus/deficit, clamped into
 * [lo_wh, hi_wh] (AC side, > 0 charge). The plan overrides self-consumption only where prices
 * give it a reason, so with flat prices the bounds are always [-power_wh, power_wh]:
 *  - it charges more than the forecast surplus and a dearer interval lies ahead: at least that
 *    much (from the grid if PV falls short);
 *  - it does not discharge into a forecast load and a dearer interval lies ahead: no
 *    discharge (hold); a plan that only stores forecast surplus is self-consumption, so a
 *    cloud that turns the surplus into a deficit is met from the battery;
 *  - it covers only part of the forecast load and a dearer interval lies ahead: at most that;
 *  - it discharges more than the forecast load and export pays less later: exactly that.
 * iv and plan are the n intervals given to and returned by sim_plan_solve. A first step that
 * differs from self-consumption on the forecast by at most slack_wh (the AC energy of one
 * discretisation step: rounding, not a decision) sets no charge, hold or partial-cover bound:
 * otherwise a cloud would make the battery buy from the grid the PV it only rounded up to.
 * slack_wh 0: every difference counts. */
void sim_plan_bounds(const sim_plan_interval *iv, const sim_plan_step *plan, size_t n,
                     int64_t power_wh, int64_t slack_wh, int64_t *lo_wh, int64_t *hi_wh);

#ifdef __cplusplus
}
#endif

#endif
