/*
 * mgx sim: runs a scenario with local trading and, in the same pass, the baseline without it.
 *
 * Physics (PV, load, battery) does not depend on trading: the battery policy (self-consumption,
 * or a plan by the battery scheduler, mgx/battery_plan.h, from the home's own measurements and
 * the tariffs) never looks at the market, so both worlds see the same meters and differ only in
 * who buys and sells the surplus.
 * Each interval every home forecasts its net position (persistence of the last interval after
 * its battery), its agent prices that as an order, the market library clears the book, the
 * interval's real PV and load happen, and the difference between what a home contracted locally
 * and what its meter measured is settled against the grid as imbalance (settlement library).
 * The baseline is the same settlement with no local contract. With timing = ex_post the interval
 * happens first and the market clears each home's metered net with a standing preference
 * derived from its strategy (mgx/ex_post.h), so nothing but the untraded rest is settled with
 * the grid. See docs/simulator.md.
 */
#ifndef MGX_SIM_H
#define MGX_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mgx/scenario.h"
#include "mgx/simdata.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Community figures of one world (with or without local trading). */
typedef struct {
    size_t homes, intervals;
    int64_t load_wh, pv_wh;
    int64_t grid_import_wh, grid_export_wh; /* settled, summed over homes */
    int64_t local_traded_wh;
    int64_t pv_self_consumed_wh; /* used directly or via a battery at home */
    int64_t battery_charged_wh, battery_discharged_wh, battery_loss_wh;
    int64_t peak_import_wh, peak_export_wh; /* largest community total in one interval */
    int64_t cost_uc;                        /* what the homes paid net of what they received */
    /* What the homes paid before anything they received (grid import, local purchases, fees),
     * the gross bill; cost_uc is this minus feed-in credits and local sales. */
    int64_t gross_cost_uc;
    int64_t fees_uc;
    int64_t local_value_uc;
    double self_sufficiency; /* 1 - grid import / load */
    double self_consumption; /* 1 - grid export / PV */
    double local_share;      /* local / (local + grid import) of what homes bought */
    /* prices (trading only; 0 when nothing traded) */
    size_t trading_intervals;
    double mean_price_uc_per_kwh;          /* arithmetic mean over intervals with trades */
    double time_weighted_price_uc_per_kwh; /* weighted by interval duration */
    double volume_weighted_price_uc_per_kwh;
    /* savings against the baseline per home (trading only): baseline cost - trading cost.
     * Percentiles are nearest-rank from below: p10 = sorted[(n - 1) * 10 / 100]. */
    int64_t savings_min_uc, savings_p10_uc, savings_median_uc, savings_p90_uc, savings_max_uc;
    size_t homes_worse_off; /* homes whose saving is negative: they paid more than grid only */
    double savings_gini;    /* fairness index: Gini coefficient of the per-home savings */
    /* grid-aware clearing (trading only, scenarios with feeder limits; all 0 without) */
    int has_feeders;
    size_t congested_intervals; /* the copper-plate result did not fit the limits */
    int64_t congestion_uc;      /* congestion rent paid by buyers, to the network */
    /* per group with a feeder of its own: intervals its edge bound, and the mean of its zone's
     * price over the intervals with local trade (the community's price where it did not bind) */
    size_t feeder_binding_intervals[SIM_MAX_GROUPS];
    double feeder_mean_price_uc_per_kwh[SIM_MAX_GROUPS];
} sim_kpis;

/* Per interval, community totals. */
typedef struct {
    int64_t start_utc;
    int64_t load_wh, pv_wh;
    int64_t grid_import_wh, grid_export_wh;
    int64_t base_grid_import_wh, base_grid_export_wh;
    int64_t local_traded_wh;
    int64_t price_uc_per_kwh; /* clearing price, or volume-weighted for pay-as-bid; -1 if none */
    int64_t battery_wh;       /* energy stored at the end of the interval, all homes */
} sim_interval_row;

/* Per home, totals over the run. */
typedef struct {
    int64_t load_wh, pv_wh;
    int64_t local_sold_wh, local_bought_wh;
    int64_t grid_import_wh, grid_export_wh;
    int64_t base_grid_import_wh, base_grid_export_wh;
    int64_t battery_charged_wh, battery_discharged_wh;
    int64_t cost_uc, base_cost_uc;
    size_t planned_intervals; /* intervals its battery followed a plan (battery_policy) */
    /* battery_policy = schedule (mgx/dispatch.h): intervals the guard held the battery to
     * self-consumption, and the forecast's absolute error of the decided interval's net (load
     * - PV) summed over fc_err_n intervals, with day-ahead persistence's on the same ones */
    size_t guarded_intervals, fc_err_n;
    int64_t fc_abs_err_wh, persist_abs_err_wh;
    uint32_t group;
    int measured; /* load and PV came from the data file */
} sim_home_row;

/* One home in one interval: every flow the balance checks need. Handed to an observer. */
typedef struct {
    size_t home, interval;
    int64_t load_wh, pv_wh;
    int64_t direct_wh;    /* PV used at once by the load */
    int64_t charge_wh;      /* into the battery (before losses) */
    int64_t grid_charge_wh; /* the part of charge_wh from the grid (a plan; else 0) */
    int64_t discharge_wh;   /* out of the battery (after losses): to the load, or exported */
    int64_t loss_wh;      /* battery losses this interval */
    int64_t stored_before_wh, stored_after_wh;
    int64_t import_wh, export_wh;             /* at the meter */
    int64_t local_sold_wh, local_bought_wh;   /* contracted in the market */
    int64_t sold_local_wh, sold_grid_wh;      /* export split: delivered locally / to grid */
    int64_t bought_local_wh, bought_grid_wh;  /* import split: from local contract / grid */
    int64_t settled_import_wh, settled_export_wh; /* imbalance against the grid */
    int64_t cost_uc, base_cost_uc;
    int64_t gross_cost_uc, base_gross_cost_uc; /* paid before credits and receipts */
} sim_flow;

typedef void (*sim_flow_fn)(const sim_flow *f, void *ctx);
/* Called with done/total intervals, at most about 200 times a run. */
typedef void (*sim_progress_fn)(size_t done, size_t total, void *ctx);

/* Called once per interval on the caller's thread, after every on_flow of that interval (with it
 * each interval is settled before the next one clears), with the interval index and
 * the number of intervals. A non-zero return stops the run: sim_run then fails with
 * SIM_E_STOPPED. Lets a caller pace the run in real time (mgx sim --serve-modbus). */
typedef int (*sim_interval_fn)(size_t interval, size_t total, void *ctx);

/* Called at the start of each interval for every home with a battery (stored_wh now, of
 * capacity_wh); with it the run uses one thread whatever sc->threads, because the physics
 * cannot run ahead of an outside controller. Returning 1 with *setpoint_wh (AC side, > 0 charge, < 0 discharge) makes the
 * battery do that this interval (within its power and window; charging beyond the surplus
 * takes from the grid, discharging beyond the load exports), overriding the group's policy;
 * 0 leaves it to the policy. Lets an outside controller steer the battery (the simulated
 * inverter of mgx sim --serve-modbus). */
typedef int (*sim_battery_fn)(size_t home, size_t interval, int64_t stored_wh,
                              int64_t capacity_wh, void *ctx, int64_t *setpoint_wh);

typedef struct {
    /* optional: every home every interval, in the order of intervals and homes, never two at
     * once; with sc->threads >= 2 and no on_interval possibly on a worker thread and a block
     * of intervals behind the clearing */
    sim_flow_fn on_flow;
    void *flow_ctx;
    sim_progress_fn on_progress; /* optional */
    void *progress_ctx;
    sim_interval_fn on_interval; /* optional */
    void *interval_ctx;
    sim_battery_fn on_battery; /* optional */
    void *battery_ctx;
} sim_hooks;

typedef struct sim_result sim_result; /* opaque, owned by the caller */

/* Runs the scenario with the given seed (the scenario's own seed is not read, so a caller can
 * sweep seeds). data may be NULL. On failure returns a SIM_E_* code and a message in err. */
int sim_run(const sim_scenario *sc, const sim_data *data, uint64_t seed, const sim_hooks *hooks,
            sim_result **out, char *err, size_t err_len);
void sim_result_free(sim_result *r);

const sim_kpis *sim_result_kpis(const sim_result *r);     /* with local trading */
const sim_kpis *sim_result_baseline(const sim_result *r); /* grid only */
const sim_interval_row *sim_result_intervals(const sim_result *r, size_t *n);
const sim_home_row *sim_result_homes(const sim_result *r, size_t *n);

/* Writes summary.json, intervals.csv, homes.csv and plots.gp into dir (which must exist).
 * Output is a pure function of the result and scenario: the same run gives the same bytes. */
int sim_write_outputs(const sim_scenario *sc, const sim_result *r, uint64_t seed, const char *dir,
                      char *err, size_t err_len);

/* Writes the mean and spread of every KPI over several runs (runs.csv, and a "runs" object
 * merged into dir/summary.json). seeds[i] produced results[i]. */
int sim_write_runs(const sim_scenario *sc, const sim_result *const *results,
                   const uint64_t *seeds, size_t n, const char *dir, char *err, size_t err_len);

/* Prints mean, standard deviation, minimum and maximum of every KPI over several runs. */
void sim_print_runs(const sim_result *const *results, size_t n, FILE *out);

/* The scenario's interval grid, for shells that pace a run on the wall clock (declared in the
 * internal timegrid.h too): the number of intervals and Unix seconds (UTC) of interval k's
 * start (as text: mkt_format_time of mgx/civil.h). */
size_t sim_intervals(const sim_scenario *sc);
int64_t sim_interval_start_utc(const sim_scenario *sc, size_t k);

/* The per-home per-interval CSV (`mgx sim --home-intervals`): its header line, and one line per
 * sim_flow, written as the run goes (the result does not keep them). */
void sim_write_flow_header(FILE *f);
void sim_write_flow_row(const sim_scenario *sc, const sim_flow *fl, FILE *f);

/* Prints the KPI comparison as text. */
void sim_print_summary(const sim_scenario *sc, const sim_result *r, FILE *out);

#ifdef __cplusplus
}
#endif

#endif
