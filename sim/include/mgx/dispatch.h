/*
 * mgx dispatch: one home battery's decision for one interval, the same for the simulator's
 * `battery_policy = schedule` and the home agent. It keeps the home's measured PV and load,
 * forecasts the horizon from them (mgx/forecast.h, or day-ahead persistence), plans the battery
 * over it (mgx/battery_plan.h), and turns the plan into bounds for the planned interval
 * (sim_plan_bounds) when the plan is worth following. It also runs the guard: a shadow battery
 * on self-consumption fed the same measurements, whose grid bill the home's real one is
 * compared with; while the plan has not paid for itself against the shadow, the home follows
 * self-consumption. A paper battery fed the same measurements always follows its plan; the
 * home follows plans for real only once the paper battery is ahead of the shadow, so a home
 * for which plans do not pay never risks its own bill on them. Everything the guard uses a
 * real home measures too (PV, load, its meter's
 * grid exchange, the prices it paid): nothing is known in hindsight.
 *
 * Intervals: the last interval observed is `last`; the decision is for interval last + lead
 * (lead >= 1; the simulator decides interval k with k - 1 measured, lead 1; the live agent
 * plans k + 2 when k's reading arrives, lead 2). The battery's stored energy is given at the
 * start of interval last + 1; across the lead - 1 intervals in between the battery does what
 * the caller has already committed (gap_wh), or self-consumption on the forecast.
 *
 * Units as in battery_plan.h: int64 Wh, uc per kWh, costs in nano-currency (nuc) and exact.
 * Pure: no I/O, no clock, no globals. Memory: the history (a day, and the forecaster's days)
 * is allocated by sim_dispatch_new; the planner's workspace, which moves with the stored
 * energy it is anchored at, grows in sim_dispatch_decide as needed. Not thread-safe per object
 * (one object per home).
 */
#ifndef MGX_DISPATCH_H
#define MGX_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/battery_plan.h"
#include "mgx/forecast.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SIM_DISPATCH_MAX_LEAD 16

typedef enum {
    SIM_DISPATCH_FIT = 0,        /* the fitted clear-sky PV and the load profile (forecast.h) */
    SIM_DISPATCH_PERSISTENCE = 1 /* interval t is forecast as t - one day measured */
} sim_dispatch_forecast;

typedef struct {
    sim_fc_config fc;               /* the forecaster (interval_s is the dispatch's interval) */
    sim_dispatch_forecast forecast; /* how the horizon is forecast */
    size_t horizon;                 /* intervals planned: 1..SIM_PLAN_MAX_INTERVALS */
    int64_t min_gain_uc;            /* follow a plan only if it beats self-consumption on the
                                     * forecast over the horizon by at least this */
    /* The guard: once a day, at the first decision after local midnight (utc_offset_min east
     * of UTC), the home's realised gain over the shadow battery is reckoned (sim_dispatch_
     * guard_gain_nuc), and the paper battery's, and each one's change since the last check (a
     * day's gain or loss). The home follows plans that day only if the paper battery is ahead
     * by at least min_gain_uc (plans have shown that they pay for this home; until then, and
     * whenever they stop paying, the home runs self-consumption and only the paper battery
     * follows them) and the home is not behind by more than guard_margin_uc plus a quarter of
     * the paper battery's gain (a home that lost on its first day of plans plans again once
     * the paper battery has shown four times its loss, instead of ending the run behind by
     * it). The home's own gain counts the energy it holds beyond the shadow for nothing.
     * guard_worst_day (off by default): stricter, the paper battery's lead must also cover its
     * own worst one-day loss, and the home's gain its own worst one-day loss so far
     * (sim_dispatch_books.worst_day_loss_nuc) less guard_margin_uc. Measured on the scenarios
     * of docs/simulator.md it left more homes worse off and saved less, so it is not the
     * default. guard_off: no guard, no shadow or paper plan (for comparisons). */
    int64_t guard_margin_uc;
    int guard_worst_day;
    /* The day's stake (default guard only; guard_no_stake = 1 turns it off, for comparisons):
     * what a home's plans may pay in a day for grid energy put in the battery beyond the
     * forecast surplus is at most how far its gain is above the floor above (its lead plus a
     * quarter of its paper battery's gain); once spent, the plans' charge bound is cut to the
     * forecast surplus for the rest of the day. */
    int guard_no_stake;
    int32_t utc_offset_min;
    int guard_off;
    /* The shadow battery's efficiency each way (stored Wh per AC Wh in, AC Wh out per stored
     * Wh; the square root of the round trip) in the simulator's battery model, which keeps
     * whole Wh with the losses rounded against the battery; 0: charge_eff_pm / 1000. The
     * simulator gives its own batteries' value, so that the shadow's bill is to the uc what
     * the home would have paid on self-consumption. */
    double shadow_eta;
    /* Spreading grid charging (0: off, every plan charges as late as it can, so a community on
     * one tariff charges all at once): when a plan buys energy from the grid for a dearer
     * interval that starts within spread_intervals, the battery charges at least an equal
     * share of it in each interval left before then, instead of all of it in the last ones. */
    uint32_t spread_intervals;
} sim_dispatch_config;

/* Why a decision is what it is. */
typedef enum {
    SIM_DISPATCH_PLAN = 0,   /* bounds from the plan */
    SIM_DISPATCH_NO_HISTORY, /* less than a day measured */
    SIM_DISPATCH_FLAT,       /* the same prices all horizon long: self-consumption is optimal */
    SIM_DISPATCH_NO_GAIN,    /* the plan beats self-consumption by less than min_gain_uc */
    SIM_DISPATCH_WAIT,       /* the plan's first move only ties with self-consumption's */
    SIM_DISPATCH_SAME,       /* the plan's bounds are self-consumption's */
    SIM_DISPATCH_GUARD,      /* behind the shadow battery: self-consumption until ahead */
    SIM_DISPATCH_REFUSED     /* the planner refused the battery or the inputs */
} sim_dispatch_why;

typedef struct {
    int planned; /* 1: the battery keeps to [lo_wh, hi_wh]; 0: self-consumption */
    sim_dispatch_why why;
    /* AC side, > 0 charge: the battery does what self-consumption would do with the real
     * surplus or deficit, clamped into these (sim_battery_step_bounded); [-power, power]
     * when not planned */
    int64_t lo_wh, hi_wh;
    int64_t forecast_net_wh; /* forecast load - PV of the planned interval */
    int64_t stored_wh;       /* expected stored energy at its start */
    /* what the battery does in the planned interval if the forecast holds (the setpoint for
     * an inverter that takes one), and the home's grid exchange then (> 0 import, < 0
     * export): what it will buy or sell */
    int64_t setpoint_wh, net_wh;
    int64_t gain_uc; /* expected gain of the plan over self-consumption on the forecast */
} sim_dispatch_decision;

/* The guard's books (nuc, exact). */
typedef struct {
    int64_t real_nuc;   /* the home's grid bill over the observed intervals */
    int64_t shadow_nuc; /* the shadow self-consumption battery's */
    int64_t shadow_stored_wh;
    /* the paper battery: fed the same measurements, it always follows its own plan; what it
     * would have paid, and its stored energy */
    int64_t paper_nuc, paper_stored_wh;
    int64_t gain_nuc;          /* the real home's gain reckoned at the last daily check */
    int64_t paper_gain_nuc;    /* the paper battery's */
    /* the largest fall of gain_nuc, and of paper_gain_nuc, from one daily check to the next
     * (0 while none has fallen) */
    int64_t worst_day_loss_nuc, paper_worst_day_loss_nuc;
    int allowed;               /* plans may be followed until the next check */
    uint64_t planned, guarded; /* decisions on a plan, and stopped by the guard */
    uint64_t spread;           /* decisions whose charge bound the spreading raised */
    uint64_t staked;           /* decisions whose grid charge the day's stake cut */
    /* forecast error of the planned interval's net (load - PV), summed over the intervals
     * observed that had a decision, against day-ahead persistence of the same intervals */
    int64_t fc_abs_err_wh, persist_abs_err_wh;
    uint64_t err_n;
} sim_dispatch_books;

typedef struct sim_dispatch sim_dispatch;

/* b is the battery as the planner sees it (its initial_wh is the shadow's start); NULL when the
 * config or battery is out of range or memory runs out. */
sim_dispatch *sim_dispatch_new(const sim_dispatch_config *c, const sim_plan_battery *b);
void sim_dispatch_free(sim_dispatch *d);

/* Records the interval starting at start_s (a multiple of the interval; in order): its
 * measured PV and load, and for the guard the home's measured grid exchange (> 0 import)
 * and the prices it met. */
void sim_dispatch_observe(sim_dispatch *d, int64_t start_s, int64_t pv_wh, int64_t load_wh,
                          int64_t grid_wh, int64_t import_uc_per_kwh, int64_t export_uc_per_kwh);

/* Decides interval last + lead, where last is the last interval observed (its start, last_s):
 * stored_wh is stored at the start of interval last + 1; gap_wh[lead - 1] the battery energy
 * (AC, > 0 charge) already committed in intervals last + 1 .. last + lead - 1 (NULL:
 * self-consumption on the forecast); import/export_uc_per_kwh[horizon] the prices of the
 * horizon from the planned interval. Returns 0, or -1 on bad arguments (lead out of
 * 1..SIM_DISPATCH_MAX_LEAD, last_s not the last observed) or no memory (the decision is then
 * self-consumption). */
int sim_dispatch_decide(sim_dispatch *d, int64_t last_s, unsigned lead, int64_t stored_wh,
                        const int64_t *gap_wh, const int64_t *import_uc_per_kwh,
                        const int64_t *export_uc_per_kwh, sim_dispatch_decision *out);

void sim_dispatch_get_books(const sim_dispatch *d, sim_dispatch_books *out);

/* The guard's reckoning: what the home has gained over its shadow self-consumption battery,
 * its bill real_nuc against the shadow's shadow_nuc, with the difference of their stored
 * energies (real_stored_wh - shadow_stored_wh) marked at a price that cannot flatter the plan:
 * energy the home holds beyond the shadow at what it is worth left at the end of a plan
 * (terminal_uc_per_kwh, feed-in after discharge losses), energy it lacks at what buying it back
 * would cost (dearest_uc_per_kwh, the dearest import of the horizon, over charge losses).
 * Marking is what lets a plan that bought energy for the evening peak not count as behind in
 * the afternoon; the daily check at midnight finds the peak over and the batteries close. The
 * guard passes terminal 0 for the real home (the run may end before the energy is used) and the
 * terminal price for the paper battery (evidence that plans pay). */
int64_t sim_dispatch_guard_gain_nuc(int64_t real_nuc, int64_t shadow_nuc, int64_t real_stored_wh,
                                    int64_t shadow_stored_wh, int64_t terminal_uc_per_kwh,
                                    int64_t dearest_uc_per_kwh, uint32_t charge_eff_pm);

#ifdef __cplusplus
}
#endif

#endif
