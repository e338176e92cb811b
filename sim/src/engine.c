/*
 * The simulation loop: one pass over the intervals computes the world with local trading and
 * the baseline without it, because the physics (PV, load, battery) is the same in both.
 *
 * Per interval: every home forecasts its net position by persistence (last interval's PV minus
 * load, after what its battery would absorb or deliver), its agent prices that as a one-step
 * order, the market library clears the book, then the interval's real PV and load happen, the
 * battery follows its policy (self-consumption, or within the bounds of its plan: plan_home),
 * and the settlement library prices the difference
 * between the local contract and the meter against the grid. The baseline is the same
 * settlement with no contract. That is timing = ex_ante; in ex_post the interval happens first
 * and the book is every home's metered net with a standing preference from its agent
 * (mkt_ex_post_orders), so only the untraded rest goes to the grid.
 *
 * Weather, each home's load, PV and agent draw from their own streams (seed, home, model), so
 * the market settings never change the physics of a run.
 *
 * With sc->threads >= 2 and ex_ante, the interval's physics does not wait for its clearing: it
 * reads and writes only the homes' own state (battery, history, PV and load streams) and the
 * flows, and the clearing only the book, so a worker thread starts on the physics once the
 * orders are formed, and the main thread joins it after clearing; homes go out in chunks to
 * whichever thread asks first. Each home's physics is the same code in the same order of
 * intervals, so the result does not depend on the thread count.
 */
#include "mgx/sim.h"
#include "mgx/topology.h"

#include "mgx/battery_plan.h"
#include "mgx/dispatch.h"
#include "mgx/ex_post.h"
#include "mgx/imbalance.h"
#include "mgx/market.h"
#include "mgx/strategy.h"

#include "battery.h"
#include "fail.h"
#include "kpi.h"
#include "load.h"
#include "pv.h"
#include "result.h"
#include "timegrid.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t group;
    long data_index; /* -1: modelled */
    /* Independent streams, each a function of (seed, home, model) only, so that what the agent
     * draws (strategy, mechanism, timing) never moves the simulated load or PV. */
    gsl_rng *rng;      /* the agent's pricing draws */
    gsl_rng *load_rng; /* the load model */
    gsl_rng *pv_rng;   /* the home's deviation from the shared cloud cover */
    sim_load_state load;
    double pv_dev;
    sim_battery bat;
    sim_trader trader; /* how the home prices its order (mgx/strategy.h) */
    sim_random draws;  /* the pricing rules' view of rng */
    /* PV and load of the last SIM_MAX_FORECAST_LAG intervals, interval j in slot j % that */
    int64_t past_pv_wh[SIM_MAX_FORECAST_LAG], past_load_wh[SIM_MAX_FORECAST_LAG];
    /* SIM_BATTERY_SCHEDULE: the home's dispatch (its measured history, forecast, plan and
     * guard; NULL for other homes), and this interval's bounds from the plan (planned == 0:
     * none) */
    sim_dispatch *disp;
    int planned;
    int64_t plan_lo_wh, plan_hi_wh;
    /* this interval's order */
    int ordered;
    mkt_side side;
    int64_t price;
} home;

/* The physics worker of a pipelined run (sc->threads >= 2). The chunk counter carries the job's
 * number in its high half, so that a worker waking late for a finished job can never take a
 * chunk of the next one with the old interval. */
typedef struct {
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit;
    uint32_t job; /* the interval's job number, under mu */
    size_t k;     /* its interval, under mu */
    _Atomic uint64_t next;      /* job << 32 | next home to hand out */
    _Atomic size_t finished;    /* homes done in the current job */
} physics_pool;

typedef struct {
    const sim_scenario *sc;
    const sim_data *data;
    const sim_hooks *hooks;
    sim_pv *pv;
    sim_load *load;
    gsl_rng *weather;
    mkt_clearing *clearing;
    /* with feeder limits: the transformer (node 0) and one node per limited group */
    mkt_grid_clearing *grid;
    mkt_node nodes[SIM_MAX_GROUPS + 1];
    uint32_t node_of_group[SIM_MAX_GROUPS]; /* 0: at the transformer */
    mkt_attach *attach;
    mkt_topology topo;
    double feeder_price_sum[SIM_MAX_GROUPS];
    size_t feeder_price_n[SIM_MAX_GROUPS];
    mkt_order *orders;
    sim_flow *flows;          /* this interval, per home */
    mkt_preference *prefs;    /* ex_post: standing preferences, per home */
    mkt_ex_post_home *post;   /* ex_post: the metered nets, per home */
    home *homes;
    size_t n_homes, n_intervals;
    sim_band band;
    mkt_params params;
    /* what a buyer adds to its price to make its limit all-in: the flat fee, plus with a level
     * fee that of the tree's longest path, which the market matches with (mkt_clear_grid) */
    int64_t buyer_fee_uc_per_kwh;
    sim_result *res;
    sim_kpi_acc acc, base_acc;
    /* the battery scheduler's prices over a horizon of a day */
    size_t per_day;
    int64_t *plan_import_uc, *plan_export_uc;
    physics_pool pool;
    int pipelined; /* threads >= 2 and ex_ante: the physics runs beside the clearing */
} run_ctx;

/* splitmix64: decorrelates the per-home seeds derived from one run seed */
static uint64_t mix(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* A home's stream as the pricing rules' random source (mgx/strategy.h). */
static double draw_uniform(void *rng)
{
    return gsl_rng_uniform(rng);
}

static unsigned long draw_uniform_int(void *rng, unsigned long n)
{
    return gsl_rng_uniform_int(rng, n);
}

static gsl_rng *rng_for(uint64_t seed, uint64_t stream)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
    if (r)
        gsl_rng_set(r, (unsigned long)mix(seed ^ mix(stream)));
    return r;
}

/* Stream numbers: 0 is the weather shared by all homes; home h's models use (h + 1) * 4 + model.
 * Nothing else draws, so a stream sees the same numbers whatever the other models do. */
enum { STREAM_WEATHER = 0, STREAM_AGENT = 1, STREAM_LOAD = 2, STREAM_PV = 3 };

static uint64_t home_stream(size_t h, unsigned model)
{
    return ((uint64_t)h + 1) * 4 + model;
}

/* The dispatch of a scheduled battery: the battery as the planner sees it (per-mille
 * efficiencies, energy left at the end worth feed-in after discharge losses), a forecaster of
 * 14 days of history at the home's location and plane, and a horizon of a day. */
static int dispatch_new(run_ctx *x, home *hm)
{
    const sim_scenario *sc = x->sc;
    const sim_group *g = &sc->groups[hm->group];
    uint32_t eff = (uint32_t)llround(hm->bat.eta_charge * 1000.0);
    sim_plan_battery b = {hm->bat.min_wh,
                          hm->bat.max_wh,
                          hm->bat.stored_wh,
                          hm->bat.power_wh,
                          hm->bat.power_wh,
                          eff,
                          eff,
                          SIM_PLAN_NO_CAP,
                          SIM_PLAN_NO_CAP,
                          sc->feed_in_uc_per_kwh * eff / 1000,
                          0};
    sim_dispatch_config c = {
        .fc = {sc->latitude_deg, sc->longitude_deg, g->pv_tilt_deg, g->pv_azimuth_deg,
               (int64_t)sc->interval_min * 60, 14, 4},
        .forecast = g->schedule_persistence ? SIM_DISPATCH_PERSISTENCE : SIM_DISPATCH_FIT,
        .horizon = x->per_day < SIM_PLAN_MAX_INTERVALS ? x->per_day : SIM_PLAN_MAX_INTERVALS,
        .min_gain_uc = g->schedule_min_gain_uc,
        .guard_margin_uc = 0,
        .utc_offset_min = sc->utc_offset_min,
        .guard_off = !g->schedule_guard,
        .shadow_eta = hm->bat.eta_charge,
    };
    hm->disp = sim_dispatch_new(&c, &b);
    /* a battery the planner cannot take runs self-consumption (no dispatch) */
    if (!hm->disp && sim_plan_workspace_size(&b, c.horizon) != 0)
        return SIM_E_NOMEM;
    return SIM_OK;
}

static int setup_homes(run_ctx *x, uint64_t seed)
{
    const sim_scenario *sc = x->sc;
    size_t h = 0;
    for (size_t g = 0; g < sc->n_groups; g++) {
        for (uint32_t i = 0; i < sc->groups[g].count; i++, h++) {
            home *hm = &x->homes[h];
            hm->group = (uint32_t)g;
            hm->data_index = -1;
            if (!(hm->rng = rng_for(seed, home_stream(h, STREAM_AGENT))) ||
                !(hm->load_rng = rng_for(seed, home_stream(h, STREAM_LOAD))) ||
                !(hm->pv_rng = rng_for(seed, home_stream(h, STREAM_PV))))
                return SIM_E_NOMEM;
            sim_battery_init(&hm->bat, &sc->groups[g], sc->interval_min);
            const sim_group *gr = &sc->groups[g];
            if (gr->battery_policy == SIM_BATTERY_SCHEDULE && hm->bat.power_wh > 0) {
                int rc = dispatch_new(x, hm);
                if (rc)
                    return rc;
            }
            sim_strategy_params sp = {gr->agent, gr->markup, gr->zip_beta, gr->zip_momentum};
            hm->draws = (sim_random){draw_uniform, draw_uniform_int, hm->rng};
            sim_pricing_init(&hm->trader, &sp, &hm->draws);
            x->res->homes[h].group = (uint32_t)g;
        }
    }
    if (x->data) {
        for (size_t i = 0; i < sim_data_homes(x->data); i++) {
            size_t hi = sim_data_home_index(x->data, i);
            if (hi < x->n_homes) {
                x->homes[hi].data_index = (long)i;
                x->res->homes[hi].measured = 1;
            }
        }
    }
    return SIM_OK;
}

/* A home's number in the market: its index + 1, because the controller numbers participants
 * from 1 (market_ids, in byte order of their ids) and fair ties hash that number with the
 * interval (mkt_tie_key), so the two must agree for the simulator to clear as the controller
 * does (tests/e2e). */
static uint64_t participant_of(size_t h)
{
    return (uint64_t)h + 1;
}

/* The scenario's forecast lag; 0 (a scenario not made by sim_scenario_defaults) means 1. */
static size_t lag_of(const sim_scenario *sc)
{
    if (sc->forecast_lag == 0)
        return 1;
    return sc->forecast_lag < SIM_MAX_FORECAST_LAG ? sc->forecast_lag : SIM_MAX_FORECAST_LAG;
}

/* Forecast (persistence of interval k - lag; nothing before the first interval) and order of
 * one home in interval k. Returns 1 if it has an order. */
static int form_order(run_ctx *x, home *hm, size_t h, size_t k, mkt_order *o)
{
    size_t lag = lag_of(x->sc);
    int64_t net = 0;
    if (k >= lag) {
        size_t slot = (k - lag) % SIM_MAX_FORECAST_LAG;
        net = hm->past_pv_wh[slot] - hm->past_load_wh[slot];
    }
    int64_t qty;
    mkt_side side;
    if (hm->planned) {
        /* what the plan makes the battery do if the forecast holds */
        sim_battery_flow f =
            sim_battery_step_bounded(&hm->bat, net > 0 ? net : 0, net < 0 ? -net : 0,
                                     hm->plan_lo_wh, hm->plan_hi_wh, 0);
        int64_t out = net - f.charge_wh + f.discharge_wh;
        side = out > 0 ? MKT_SELL : MKT_BUY;
        qty = out > 0 ? out : -out;
    } else if (net > 0) {
        sim_battery_flow f = sim_battery_step(&hm->bat, net, 0, 0);
        qty = net - f.charge_wh;
        side = MKT_SELL;
    } else {
        sim_battery_flow f = sim_battery_step(&hm->bat, 0, -net, 0);
        qty = -net - f.discharge_wh;
        side = MKT_BUY;
    }
    hm->ordered = qty > 0;
    if (!hm->ordered)
        return 0;
    hm->side = side;
    hm->price = sim_pricing_price(&hm->trader, side, &x->band, &hm->draws);
    o->participant = participant_of(h);
    o->side = side;
    o->n_steps = 1;
    o->steps[0].energy_wh = qty;
    /* hm->price is the trade price the strategy chose; a buyer's limit is all-in */
    o->steps[0].price_uc_per_kwh =
        side == MKT_BUY ? hm->price + x->buyer_fee_uc_per_kwh : hm->price;
    return 1;
}

static void actual_energy(run_ctx *x, home *hm, size_t k, int64_t *pv, int64_t *load)
{
    if (hm->data_index >= 0) {
        *pv = sim_data_pv_wh(x->data, (size_t)hm->data_index, k);
        *load = sim_data_load_wh(x->data, (size_t)hm->data_index, k);
        return;
    }
    *pv = sim_pv_home_wh(x->pv, hm->group, k, &hm->pv_dev, hm->pv_rng);
    *load = sim_load_home_wh(x->load, hm->group, k, &hm->load, hm->load_rng);
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* The physics of one home in one interval: load, PV, battery, and what its meter measures. */
static void home_physics(run_ctx *x, home *hm, size_t h, size_t k, sim_flow *f)
{
    memset(f, 0, sizeof *f);
    f->home = h;
    f->interval = k;
    actual_energy(x, hm, k, &f->pv_wh, &f->load_wh);
    f->direct_wh = min64(f->pv_wh, f->load_wh);
    int64_t surplus = f->pv_wh - f->direct_wh, deficit = f->load_wh - f->direct_wh;
    f->stored_before_wh = hm->bat.stored_wh;
    sim_battery_flow bf =
        hm->planned ? sim_battery_step_bounded(&hm->bat, surplus, deficit, hm->plan_lo_wh,
                                               hm->plan_hi_wh, 1)
                    : sim_battery_step(&hm->bat, surplus, deficit, 1);
    f->stored_after_wh = hm->bat.stored_wh;
    f->charge_wh = bf.charge_wh;
    f->discharge_wh = bf.discharge_wh;
    f->loss_wh = bf.loss_wh;
    /* self-consumption charges only from surplus and discharges only into the deficit; a plan
     * may also charge from the grid or discharge into it */
    int64_t grid = deficit - surplus + bf.charge_wh - bf.discharge_wh;
    f->import_wh = grid > 0 ? grid : 0;
    f->export_wh = grid < 0 ? -grid : 0;
    f->grid_charge_wh = bf.charge_wh > surplus ? bf.charge_wh - surplus : 0;
    hm->past_pv_wh[k % SIM_MAX_FORECAST_LAG] = f->pv_wh;
    hm->past_load_wh[k % SIM_MAX_FORECAST_LAG] = f->load_wh;
    if (hm->disp)
        sim_dispatch_observe(hm->disp, sim_interval_start_utc(x->sc, k), f->pv_wh, f->load_wh,
                             f->import_wh - f->export_wh,
                             sim_scenario_retail_at(x->sc, sim_interval_start_utc(x->sc, k)),
                             x->sc->feed_in_uc_per_kwh);
}

/* Both settlements of one home's metered interval: the local contract mp (NULL: none) and the
 * grid for the rest, and the grid alone for the baseline. */
static int home_settle(run_ctx *x, const mkt_participant_result *mp, int64_t congestion_uc,
                       sim_flow *f)
{
    int64_t money = 0, paid = 0;
    if (mp) {
        f->local_sold_wh = mp->local_sold_wh;
        f->local_bought_wh = mp->local_bought_wh;
        paid = mp->local_paid_uc + mp->fee_paid_uc + congestion_uc;
        money = paid - mp->local_received_uc;
    }
    f->sold_local_wh = min64(f->local_sold_wh, f->export_wh);
    f->sold_grid_wh = f->export_wh - f->sold_local_wh;
    f->bought_local_wh = min64(f->local_bought_wh, f->import_wh);
    f->bought_grid_wh = f->import_wh - f->bought_local_wh;

    const mkt_params *p = &x->params;
    stl_imbalance imb, base;
    int64_t metered = f->export_wh - f->import_wh;
    if (stl_imbalance_settle(f->local_sold_wh - f->local_bought_wh, metered, p->retail_uc_per_kwh,
                             p->feed_in_uc_per_kwh, &imb) ||
        stl_imbalance_settle(0, metered, p->retail_uc_per_kwh, p->feed_in_uc_per_kwh, &base))
        return SIM_E_INVAL;
    f->settled_import_wh = imb.shortfall_wh;
    f->settled_export_wh = imb.surplus_wh;
    f->cost_uc = money + imb.charge_uc - imb.credit_uc;
    f->base_cost_uc = base.charge_uc - base.credit_uc;
    f->gross_cost_uc = paid + imb.charge_uc;
    f->base_gross_cost_uc = base.charge_uc;
    return SIM_OK;
}

static void record_home(run_ctx *x, const sim_flow *f)
{
    sim_home_row *r = &x->res->homes[f->home];
    r->load_wh += f->load_wh;
    r->pv_wh += f->pv_wh;
    r->local_sold_wh += f->local_sold_wh;
    r->local_bought_wh += f->local_bought_wh;
    r->grid_import_wh += f->settled_import_wh;
    r->grid_export_wh += f->settled_export_wh;
    r->base_grid_import_wh += f->import_wh;
    r->base_grid_export_wh += f->export_wh;
    r->battery_charged_wh += f->charge_wh;
    r->battery_discharged_wh += f->discharge_wh;
    r->planned_intervals += (size_t)x->homes[f->home].planned;
    r->cost_uc += f->cost_uc;
    r->base_cost_uc += f->base_cost_uc;
}

static void record_interval(sim_interval_row *row, const sim_flow *f)
{
    row->load_wh += f->load_wh;
    row->pv_wh += f->pv_wh;
    row->grid_import_wh += f->settled_import_wh;
    row->grid_export_wh += f->settled_export_wh;
    row->base_grid_import_wh += f->import_wh;
    row->base_grid_export_wh += f->export_wh;
    row->battery_wh += f->stored_after_wh;
}

static int64_t interval_price(const mkt_summary *s)
{
    if (s->matched_wh == 0)
        return -1;
    if (s->has_price)
        return s->clearing_price_uc_per_kwh;
    /* pay-as-bid: volume-weighted, rounded down like every amount */
    __extension__ __int128 v = (__int128)s->local_value_uc * 1000;
    return (int64_t)(v / s->matched_wh);
}

/* After the book of interval k is cleared: settles every home (ex_ante runs its physics here,
 * ex_post has already), lets the agents learn, and records the interval. */
/* The grid-aware figures of one cleared interval: congestion, binding feeders, zone prices. */
static void record_grid(run_ctx *x)
{
    const mkt_grid_summary *gs = mkt_grid_summary_of(x->grid);
    const mkt_node_result *nr = mkt_grid_nodes(x->grid, NULL);
    sim_kpis *k = &x->acc.k;
    k->congested_intervals += gs->congested != 0;
    k->congestion_uc += gs->congestion_uc;
    for (size_t g = 0; g < x->sc->n_groups; g++) {
        uint32_t v = x->node_of_group[g];
        if (v == 0)
            continue;
        k->feeder_binding_intervals[g] += nr[v].binding != MKT_BIND_NONE;
        if (gs->has_prices && mkt_grid_market_summary(x->grid)->matched_wh > 0) {
            x->feeder_price_sum[g] += (double)nr[v].price_uc_per_kwh;
            x->feeder_price_n[g]++;
        }
    }
}

static int finish_interval(run_ctx *x, size_t k, char *err, size_t err_len)
{
    const mkt_summary *ms =
        x->grid ? mkt_grid_market_summary(x->grid) : mkt_clearing_summary(x->clearing);
    const mkt_participant_result *parts = x->grid ? mkt_grid_participants(x->grid, NULL)
                                                  : mkt_clearing_participants(x->clearing, NULL);
    const mkt_grid_participant *gparts = x->grid ? mkt_grid_participant_info(x->grid) : NULL;
    sim_interval_row *row = &x->res->intervals[k];
    row->start_utc = sim_interval_start_utc(x->sc, k);
    row->local_traded_wh = ms->matched_wh;
    row->price_uc_per_kwh = interval_price(ms);
    int ex_post = x->sc->timing == MKT_EX_POST;
    size_t next = 0; /* orders (and so participants) are in home order */
    for (size_t h = 0; h < x->n_homes; h++) {
        home *hm = &x->homes[h];
        int64_t congestion_uc = hm->ordered && gparts ? gparts[next].congestion_paid_uc : 0;
        const mkt_participant_result *mp = hm->ordered ? &parts[next++] : NULL;
        sim_flow *f = &x->flows[h];
        if (!ex_post && !x->pipelined)
            home_physics(x, hm, h, k, f);
        int rc = home_settle(x, mp, congestion_uc, f);
        if (rc)
            return sim_fail(err, err_len, rc, "interval %zu, home %zu: settlement failed", k, h);
        if (hm->ordered) {
            int traded = mp->local_sold_wh > 0 || mp->local_bought_wh > 0;
            sim_pricing_observe(&hm->trader, hm->side, hm->price, traded,
                                row->price_uc_per_kwh, &x->band, &hm->draws);
        }
        record_home(x, f);
        record_interval(row, f);
        sim_kpi_add_flow(&x->acc, f, 0);
        sim_kpi_add_flow(&x->base_acc, f, 1);
        if (x->hooks && x->hooks->on_flow)
            x->hooks->on_flow(f, x->hooks->flow_ctx);
    }
    if (x->grid)
        record_grid(x);
    sim_kpi_add_interval(&x->acc, row, ms, x->sc->interval_min, 0);
    sim_kpi_add_interval(&x->base_acc, row, NULL, x->sc->interval_min, 1);
    return SIM_OK;
}

/* The market of one interval: on a copper plate, or within the feeders' limits. */
static int clear_book(run_ctx *x, size_t n_orders, mkt_error_at *at)
{
    if (x->grid)
        return mkt_clear_grid(x->grid, &x->params, &x->topo, x->orders, n_orders, at);
    return mkt_clear(x->clearing, &x->params, x->orders, n_orders, at);
}

#define PHYSICS_CHUNK 256u /* homes per hand-out */

/* Takes the next chunk of job's homes, [*h0, *h1); 0 when none is left or the job is over. */
static int take_chunk(physics_pool *p, uint32_t job, size_t n, size_t *h0, size_t *h1)
{
    uint64_t cur = atomic_load(&p->next);
    for (;;) {
        size_t at = (size_t)(uint32_t)cur;
        if ((uint32_t)(cur >> 32) != job || at >= n)
            return 0;
        size_t end = at + PHYSICS_CHUNK < n ? at + PHYSICS_CHUNK : n;
        if (atomic_compare_exchange_weak(&p->next, &cur, (uint64_t)job << 32 | end)) {
            *h0 = at;
            *h1 = end;
            return 1;
        }
    }
}

/* Runs chunks of interval k's physics until none is left. */
static void physics_chunks(run_ctx *x, uint32_t job, size_t k)
{
    size_t h0, h1;
    while (take_chunk(&x->pool, job, x->n_homes, &h0, &h1)) {
        for (size_t h = h0; h < h1; h++)
            home_physics(x, &x->homes[h], h, k, &x->flows[h]);
        atomic_fetch_add(&x->pool.finished, h1 - h0);
    }
}

static void *physics_worker(void *arg)
{
    run_ctx *x = arg;
    physics_pool *p = &x->pool;
    uint32_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->job == seen)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->quit)
            break;
        seen = p->job;
        size_t k = p->k;
        pthread_mutex_unlock(&p->mu);
        physics_chunks(x, seen, k);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Starts interval k's physics: the worker and then the main thread take chunks. */
static void physics_start(run_ctx *x, size_t k)
{
    physics_pool *p = &x->pool;
    pthread_mutex_lock(&p->mu);
    p->job++;
    p->k = k;
    atomic_store(&p->finished, 0);
    atomic_store(&p->next, (uint64_t)p->job << 32);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Helps with what is left of the physics and waits for the chunks the worker took. */
static void physics_finish(run_ctx *x, size_t k)
{
    physics_chunks(x, x->pool.job, k); /* job is only written by this thread */
    while (atomic_load(&x->pool.finished) < x->n_homes)
        sched_yield();
}

static int pool_start(run_ctx *x)
{
    physics_pool *p = &x->pool;
    if (pthread_mutex_init(&p->mu, NULL))
        return SIM_E_NOMEM;
    if (pthread_cond_init(&p->cv, NULL)) {
        pthread_mutex_destroy(&p->mu);
        return SIM_E_NOMEM;
    }
    if (pthread_create(&p->thread, NULL, physics_worker, x)) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        return SIM_E_NOMEM;
    }
    p->running = 1;
    return SIM_OK;
}

static void pool_stop(run_ctx *x)
{
    physics_pool *p = &x->pool;
    if (!p->running)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    p->running = 0;
}

/* ex_ante: every home orders from its forecast, the book clears, then the interval happens
 * (pipelined: while the book clears). */
static int clear_ex_ante(run_ctx *x, size_t k, char *err, size_t err_len)
{
    size_t n_orders = 0;
    for (size_t h = 0; h < x->n_homes; h++)
        n_orders += (size_t)form_order(x, &x->homes[h], h, k, &x->orders[n_orders]);
    if (x->pipelined)
        physics_start(x, k);
    mkt_error_at at;
    int rc = clear_book(x, n_orders, &at);
    if (x->pipelined)
        physics_finish(x, k); /* also on failure: no chunk may outlive the interval */
    if (rc)
        return sim_fail(err, err_len, SIM_E_MARKET, "interval %zu: market rejected the book: %s", k,
                        mkt_strerror(rc));
    return SIM_OK;
}

/* ex_post: the interval happens, then every home's metered net is cleared with its standing
 * preference as limit. The preference comes from the home's strategy: one step on the side the
 * home is on, at the price its agent would quote in ex_ante for a sell, and for a buy that bid
 * plus the network fee, because an ex_post buy limit is all-in (truthful: feed-in and retail,
 * the grid's own terms). mkt_ex_post_orders keeps every limit within the grid's terms. */
static int clear_ex_post(run_ctx *x, size_t k, char *err, size_t err_len)
{
    for (size_t h = 0; h < x->n_homes; h++) {
        home *hm = &x->homes[h];
        sim_flow *f = &x->flows[h];
        home_physics(x, hm, h, k, f);
        int64_t net = f->export_wh - f->import_wh;
        mkt_preference *pref = &x->prefs[h];
        memset(pref, 0, sizeof *pref);
        hm->ordered = net != 0;
        if (hm->ordered) {
            hm->side = net > 0 ? MKT_SELL : MKT_BUY;
            hm->price = sim_pricing_price(&hm->trader, hm->side, &x->band, &hm->draws);
            mkt_step st = {0, hm->price};
            if (hm->side == MKT_SELL) {
                pref->n_sell_steps = 1;
                pref->sell[0] = st;
            } else {
                st.price_uc_per_kwh += x->buyer_fee_uc_per_kwh;
                pref->n_buy_steps = 1;
                pref->buy[0] = st;
            }
        }
        x->post[h] = (mkt_ex_post_home){participant_of(h), net, pref};
    }
    size_t n_orders = 0;
    mkt_error_at at;
    int rc = mkt_ex_post_orders(&x->params, x->post, x->n_homes, x->orders, x->n_homes, &n_orders,
                                &at);
    if (rc == MKT_OK)
        rc = clear_book(x, n_orders, &at);
    if (rc)
        return sim_fail(err, err_len, SIM_E_MARKET, "interval %zu: market rejected the book: %s", k,
                        mkt_strerror(rc));
    return SIM_OK;
}

/* SIM_BATTERY_SCHEDULE: home hm's battery decides interval k with k - 1 measured (lead 1)
 * by sim_dispatch_decide (mgx/dispatch.h): a forecast of the next day from its own history
 * (the fitted clear-sky PV and load profile, or day-ahead persistence), a plan over it at the
 * grid's prices (retail, with its peak; feed-in), bounds from the plan's first interval when
 * the plan is worth following, and the guard against a shadow self-consumption battery.
 * Otherwise the home runs self-consumption. */
static int plan_home(run_ctx *x, home *hm, size_t k)
{
    hm->planned = 0;
    if (!hm->disp || k == 0)
        return SIM_OK;
    const sim_scenario *sc = x->sc;
    int varies = 0;
    for (size_t j = 0; j < x->per_day; j++) {
        x->plan_import_uc[j] = sim_scenario_retail_at(sc, sim_interval_start_utc(sc, k + j));
        x->plan_export_uc[j] = sc->feed_in_uc_per_kwh;
        varies |= x->plan_import_uc[j] != x->plan_import_uc[0];
    }
    /* with the same prices all day long the decision is self-consumption (sim_plan_bounds):
     * spare the forecast, whose fit costs more than the plan (a year of district-1000) */
    if (!varies)
        return SIM_OK;
    sim_dispatch_decision dd;
    if (sim_dispatch_decide(hm->disp, sim_interval_start_utc(sc, k - 1), 1, hm->bat.stored_wh,
                            NULL, x->plan_import_uc, x->plan_export_uc, &dd))
        return SIM_OK; /* nothing observed yet, or no memory to plan: self-consumption */
    hm->planned = dd.planned;
    hm->plan_lo_wh = dd.lo_wh;
    hm->plan_hi_wh = dd.hi_wh;
    return SIM_OK;
}

static int run_interval(run_ctx *x, size_t k, char *err, size_t err_len)
{
    /* the controller's interval number, floor(start / length), so that ties break alike */
    int64_t start = sim_interval_start_utc(x->sc, k), len = (int64_t)x->sc->interval_min * 60;
    x->params.interval_id = start / len - (start % len < 0);
    if (x->sc->retail_peak_uc_per_kwh > 0) {
        /* a two-rate tariff: the grid's terms, and so the agents' band, of this interval */
        x->params.retail_uc_per_kwh = sim_scenario_retail_at(x->sc, start);
        x->band = sim_band_from(x->sc->feed_in_uc_per_kwh, x->params.retail_uc_per_kwh,
                                x->buyer_fee_uc_per_kwh);
    }
    for (size_t h = 0; h < x->n_homes; h++) {
        home *hm = &x->homes[h];
        int rc = plan_home(x, hm, k);
        if (rc)
            return sim_fail(err, err_len, rc, "interval %zu, home %zu: out of memory to plan", k,
                            h);
        int64_t sp;
        if (x->hooks && x->hooks->on_battery && hm->bat.power_wh > 0 &&
            x->hooks->on_battery(h, k, hm->bat.stored_wh,
                                 llround(x->sc->groups[hm->group].battery_kwh * 1000.0),
                                 x->hooks->battery_ctx, &sp) == 1) {
            /* an outside controller's setpoint: the plan's bounds pinned to it */
            hm->planned = 1;
            hm->plan_lo_wh = hm->plan_hi_wh = sp;
        }
    }
    int rc = x->sc->timing == MKT_EX_POST ? clear_ex_post(x, k, err, err_len)
                                          : clear_ex_ante(x, k, err, err_len);
    return rc ? rc : finish_interval(x, k, err, err_len);
}

/* A limit in kW over one interval, in Wh; -1 (none) is unlimited. The kW come from the
 * scenario file; from here on the limit is integer Wh like every energy of the market. */
static int64_t limit_wh(double kw, uint32_t interval_min)
{
    int64_t w, wh;
    if (kw < 0)
        return MKT_CAP_UNLIMITED;
    w = (int64_t)(kw * 1000.0 + 0.5);
    if (mkt_cap_wh_from_w(w, (int64_t)interval_min * 60, &wh))
        return MKT_CAP_UNLIMITED;
    return wh;
}

/* The topology of a scenario with feeder limits: the transformer and one feeder per group
 * with a limit, every home of that group on it; with a level fee, one feeder per group. No
 * limits and no level fee: no topology (x->grid stays NULL). */
static int setup_grid(run_ctx *x)
{
    const sim_scenario *sc = x->sc;
    size_t n_nodes = 1, n_att = 0;
    x->nodes[0] = (mkt_node){MKT_NO_PARENT, 0, 0};
    x->buyer_fee_uc_per_kwh = sc->network_fee_uc_per_kwh;
    for (size_t g = 0; g < sc->n_groups; g++) {
        const sim_group *gr = &sc->groups[g];
        x->node_of_group[g] = 0;
        if (gr->feeder_export_kw < 0 && gr->feeder_import_kw < 0 && !sc->level_fee_uc_per_kwh)
            continue;
        x->node_of_group[g] = (uint32_t)n_nodes;
        x->nodes[n_nodes++] = (mkt_node){0, limit_wh(gr->feeder_import_kw, sc->interval_min),
                                         limit_wh(gr->feeder_export_kw, sc->interval_min)};
        n_att += gr->count;
    }
    if (n_nodes == 1)
        return SIM_OK;
    /* feeders under one transformer: the longest path has 2 edges (1 with a single feeder) */
    x->buyer_fee_uc_per_kwh += sc->level_fee_uc_per_kwh * (n_nodes > 2 ? 2 : 1);
    x->attach = calloc(n_att ? n_att : 1, sizeof *x->attach);
    x->grid = mkt_grid_clearing_new(x->n_homes);
    if (!x->attach || !x->grid)
        return SIM_E_NOMEM;
    size_t h = 0, a = 0;
    for (size_t g = 0; g < sc->n_groups; g++)
        for (uint32_t i = 0; i < sc->groups[g].count; i++, h++)
            if (x->node_of_group[g])
                x->attach[a++] = (mkt_attach){participant_of(h), x->node_of_group[g]};
    x->topo = (mkt_topology){x->nodes, n_nodes, x->attach, n_att, sc->level_fee_uc_per_kwh};
    return SIM_OK;
}

static int alloc_run(run_ctx *x, uint64_t seed)
{
    sim_result *res = calloc(1, sizeof *res);
    x->res = res;
    if (!res)
        return SIM_E_NOMEM;
    res->n_intervals = x->n_intervals;
    res->n_homes = x->n_homes;
    res->intervals = calloc(x->n_intervals, sizeof *res->intervals);
    res->homes = calloc(x->n_homes, sizeof *res->homes);
    x->homes = calloc(x->n_homes, sizeof *x->homes);
    x->orders = calloc(x->n_homes, sizeof *x->orders);
    x->flows = calloc(x->n_homes, sizeof *x->flows);
    x->prefs = calloc(x->n_homes, sizeof *x->prefs);
    x->post = calloc(x->n_homes, sizeof *x->post);
    x->clearing = mkt_clearing_new(x->n_homes);
    x->pv = sim_pv_new(x->sc);
    x->load = sim_load_new(x->sc);
    x->weather = rng_for(seed, STREAM_WEATHER);
    x->per_day = 1440 / x->sc->interval_min;
    x->plan_import_uc = calloc(x->per_day, sizeof *x->plan_import_uc);
    x->plan_export_uc = calloc(x->per_day, sizeof *x->plan_export_uc);
    if (!x->plan_import_uc || !x->plan_export_uc)
        return SIM_E_NOMEM;
    if (!res->intervals || !res->homes || !x->homes || !x->orders || !x->flows || !x->prefs ||
        !x->post || !x->clearing || !x->pv ||
        !x->load || !x->weather)
        return SIM_E_NOMEM;
    int rc = setup_homes(x, seed);
    return rc ? rc : setup_grid(x);
}

static void free_run(run_ctx *x)
{
    pool_stop(x);
    for (size_t h = 0; x->homes && h < x->n_homes; h++) {
        gsl_rng_free(x->homes[h].rng);
        gsl_rng_free(x->homes[h].load_rng);
        gsl_rng_free(x->homes[h].pv_rng);
        sim_dispatch_free(x->homes[h].disp);
    }
    free(x->plan_import_uc);
    free(x->plan_export_uc);
    free(x->homes);
    free(x->orders);
    free(x->flows);
    free(x->prefs);
    free(x->post);
    mkt_clearing_free(x->clearing);
    mkt_grid_clearing_free(x->grid);
    free(x->attach);
    sim_pv_free(x->pv);
    sim_load_free(x->load);
    if (x->weather)
        gsl_rng_free(x->weather);
}

int sim_run(const sim_scenario *sc, const sim_data *data, uint64_t seed, const sim_hooks *hooks,
            sim_result **out, char *err, size_t err_len)
{
    if (!sc || !out)
        return sim_fail(err, err_len, SIM_E_INVAL, "invalid argument");
    *out = NULL;
    run_ctx x = {0};
    x.sc = sc;
    x.data = data;
    x.hooks = hooks;
    x.n_homes = sim_scenario_homes(sc);
    x.n_intervals = sim_intervals(sc);
    x.params = (mkt_params){sc->mechanism, sc->feed_in_uc_per_kwh, sc->retail_uc_per_kwh,
                            sc->network_fee_uc_per_kwh, 0}; /* interval_id: per interval */
    int rc;
    if (x.n_homes == 0 || x.n_intervals == 0) {
        rc = sim_fail(err, err_len, SIM_E_INVAL, "the scenario has no homes or no intervals");
        goto out;
    }
    if ((rc = alloc_run(&x, seed))) {
        sim_fail(err, err_len, rc, "out of memory for %zu homes x %zu intervals", x.n_homes,
             x.n_intervals);
        goto out;
    }
    x.pipelined = sc->threads >= 2 && sc->timing == MKT_EX_ANTE;
    if (x.pipelined && (rc = pool_start(&x))) {
        sim_fail(err, err_len, rc, "cannot start a physics thread");
        goto out;
    }
    /* after setup_grid, which knows the fee a buyer's limit must cover */
    x.band =
        sim_band_from(sc->feed_in_uc_per_kwh, sc->retail_uc_per_kwh, x.buyer_fee_uc_per_kwh);
    sim_pv_draw_weather(x.pv, x.weather);
    sim_kpi_init(&x.acc, x.n_homes, x.n_intervals);
    sim_kpi_init(&x.base_acc, x.n_homes, x.n_intervals);
    size_t step = x.n_intervals / 200 + 1;
    for (size_t k = 0; k < x.n_intervals; k++) {
        if ((rc = run_interval(&x, k, err, err_len)))
            goto out;
        if (hooks && hooks->on_progress && ((k + 1) % step == 0 || k + 1 == x.n_intervals))
            hooks->on_progress(k + 1, x.n_intervals, hooks->progress_ctx);
        if (hooks && hooks->on_interval &&
            hooks->on_interval(k, x.n_intervals, hooks->interval_ctx)) {
            rc = sim_fail(err, err_len, SIM_E_STOPPED, "stopped after interval %zu of %zu", k + 1,
                      x.n_intervals);
            goto out;
        }
    }
    for (size_t h = 0; h < x.n_homes; h++) { /* the scheduled batteries' own books */
        sim_dispatch_books bk;
        if (!x.homes[h].disp)
            continue;
        sim_dispatch_get_books(x.homes[h].disp, &bk);
        x.res->homes[h].guarded_intervals = (size_t)bk.guarded;
        x.res->homes[h].fc_err_n = (size_t)bk.err_n;
        x.res->homes[h].fc_abs_err_wh = bk.fc_abs_err_wh;
        x.res->homes[h].persist_abs_err_wh = bk.persist_abs_err_wh;
    }
    sim_kpi_finish(&x.acc, x.res->homes, 0, &x.res->kpi);
    x.res->kpi.has_feeders = x.grid != NULL;
    for (size_t g = 0; x.grid && g < sc->n_groups; g++)
        if (x.feeder_price_n[g])
            x.res->kpi.feeder_mean_price_uc_per_kwh[g] =
                x.feeder_price_sum[g] / (double)x.feeder_price_n[g];
    sim_kpi_finish(&x.base_acc, x.res->homes, 1, &x.res->base);
    *out = x.res;
    x.res = NULL;
out:
    free_run(&x);
    sim_result_free(x.res);
    return rc;
}

void sim_result_free(sim_result *r)
{
    if (!r)
        return;
    free(r->intervals);
    free(r->homes);
    free(r);
}

const sim_kpis *sim_result_kpis(const sim_result *r)
{
    return &r->kpi;
}

const sim_kpis *sim_result_baseline(const sim_result *r)
{
    return &r->base;
}

const sim_interval_row *sim_result_intervals(const sim_result *r, size_t *n)
{
    if (n)
        *n = r->n_intervals;
    return r->intervals;
}

const sim_home_row *sim_result_homes(const sim_result *r, size_t *n)
{
    if (n)
        *n = r->n_homes;
    return r->homes;
}
