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
 * The physics never sees the market: the battery follows its policy (or its plan, made from the
 * home's own measurements and the tariffs), and an ex_ante order's quantity is the physics'
 * forecast; only its price, the agent's learning and the settlement see clearing results. So
 * the engine runs in three stages (run_blocks): the physics stage takes each home through a
 * block of intervals (plan, order quantity, load, PV, battery) and leaves one compact cell per
 * home and interval (phys_cell, and the quantity in qty); the market stage goes through the
 * block's intervals in order: prices the orders, clears, lets the agents learn, and leaves each
 * home's contract (trade_cell) and the interval's figures (interval_rec); the settlement stage
 * goes through them in order too: settles every home in both worlds and records. With
 * sc->threads >= 2 the main thread runs the market stage of block b while the workers run the
 * physics of block b + 1 (homes in chunks: workers from the front, the main thread from the
 * back, so a home mostly stays on one core) and the settlement of block
 * b - 1 (one task, so it records in order), and the main thread then helps with what is left:
 * one synchronisation per block. Each stage is the same code in the same order whatever the
 * thread count, and each home's physics depends only on the home, so the result is the same
 * bytes for any count. One thread, or an outside battery controller (hooks->on_battery, which
 * must see interval k before k + 1's physics), runs blocks of one interval on the main thread;
 * a caller that paces the run (hooks->on_interval) has each interval settled before the next
 * one clears.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A generator state held inside its owner (rng_embed): taus2 needs 3 words. */
#define SIM_RNG_STATE_WORDS 3u

/* schedule_lead 2 (the home agent's policy): an interval's measurement waits here until the
 * next decision has been made without it. Held apart from the home record, which must stay
 * four cache lines, and allocated only for the homes that run that policy. */
struct pending_obs {
    int pend;
    int64_t start, pv, load, grid;
};

/* The physics side of a home: only the physics stage reads or writes it. Everything a
 * home-interval touches is in the record itself, generator states included (no pointers to
 * chase into separate allocations), and the record is four cache lines, aligned: the physics
 * stage goes through every home each block, and with 10,000 homes the homes do not fit in a
 * core's own cache, so what a home-interval costs in memory traffic is these lines. */
typedef struct {
    _Alignas(64) sim_battery bat;
    sim_load_state load;
    double pv_dev;
    uint32_t group;
    int planned; /* this interval's bounds from the plan (0: none) */
    int64_t plan_lo_wh, plan_hi_wh;
    long data_index; /* -1: modelled */
    /* SIM_BATTERY_SCHEDULE: the home's dispatch (its measured history, forecast, plan and
     * guard; NULL for other homes) */
    sim_dispatch *disp;
    /* The states of independent streams (home_rng), each a function of (seed, home, model)
     * only, so that what the agent draws (strategy, mechanism, timing) never moves the
     * simulated load or PV: the load model's, and the home's deviation from the shared cloud
     * cover's */
    unsigned long load_state[SIM_RNG_STATE_WORDS], pv_state[SIM_RNG_STATE_WORDS];
    /* PV - load of the last SIM_MAX_FORECAST_LAG intervals, interval j in slot j % that */
    int64_t past_net_wh[SIM_MAX_FORECAST_LAG];
    /* schedule_lead 2 (the home agent's policy): each interval's measurement waits here
     * until the next decision has been made without it */
    struct pending_obs *pend; /* non-NULL: schedule_lead 2 with a dispatch (see plan_agent) */
} home;
_Static_assert(sizeof(home) <= 4 * 64, "a home's record is four cache lines");

/* The market side of a home (its agent): only the market stage reads or writes it. Apart from
 * home so that the two stages, on different threads, never write the same cache lines. */
typedef struct {
    gsl_rng rng;       /* the agent's pricing draws; its state is rng_state (rng_embed) */
    unsigned long rng_state[SIM_RNG_STATE_WORDS];
    sim_trader trader; /* how the home prices its order (mgx/strategy.h) */
    sim_random draws;  /* the pricing rules' view of rng */
    /* this interval's order */
    int ordered;
    mkt_side side;
    int64_t price;
} agent;

/* What the physics stage leaves for the settlement stage, per home and interval: enough to
 * rebuild the interval's sim_flow (expand_flow). The market stage reads only the quantity to
 * trade, which the physics stage leaves in an array of its own (run_ctx.qty), so that clearing
 * an interval moves 8 bytes a home between the cores instead of a cache line. */
typedef struct {
    int64_t pv_wh, load_wh;
    int64_t charge_wh, discharge_wh, loss_wh, stored_after_wh;
    int64_t planned; /* the battery followed a plan */
} phys_cell;

/* What the market stage leaves for the settlement stage, per home and interval: the home's
 * contract (all 0: no order). paid_uc is its local purchases, fees and congestion rent. */
typedef struct {
    int64_t sold_wh, bought_wh;
    int64_t paid_uc, received_uc;
} trade_cell;

/* ... and per interval: its market summary and the retail price its grid terms had. */
typedef struct {
    mkt_summary ms;
    int64_t retail_uc_per_kwh;
} interval_rec;

/* The battery scheduler's prices over a horizon of a day: one per thread (the dispatch of
 * each home keeps its own forecast and plan workspace). */
typedef struct {
    int64_t *plan_import_uc, *plan_export_uc;
} plan_ws;

#define SIM_MAX_THREADS 64u
#define SIM_BLOCK_CELLS (1u << 16)
#define SIM_BLOCK_MAX 96u /* intervals in a block, at most */

/* One thread's share of a split settlement (settle_homes): the sums of the flows of the homes
 * it settled, per interval of the block, which the main thread adds to the rows and the KPIs
 * when the job is done (settle_merge). Each thread's on cache lines of its own. */
typedef struct {
    _Alignas(64) sim_kpi_sums sums[SIM_BLOCK_MAX];
    int64_t stored_wh[SIM_BLOCK_MAX];
} settle_part;

typedef struct run_ctx run_ctx;

typedef struct {
    run_ctx *x;
    size_t index; /* 1..: its plan workspace */
} worker_arg;

/* One job for the workers: the physics of intervals [k0, k1) (none if k0 == k1) into cells,
 * and (settle != 0) the settlement of intervals [s0, s1) from its buffers: as one task in
 * the order of intervals and homes (split == 0), or (split != 0, no on_flow to see the flows
 * in order) home by home with the chunks of the physics (settle_homes). */
typedef struct {
    size_t k0, k1;
    size_t buf; /* into cells[buf] and qty[buf] */
    int settle, split;
    size_t s0, s1;
    const phys_cell *settle_phys;
    const trade_cell *settle_trades;
    const interval_rec *settle_irs;
} physics_job;

/* The workers (sc->threads >= 2). The chunk counter carries the job's number in its high half,
 * so that a worker waking late for a finished job can never take a chunk of the next one.
 * Workers take chunks from the front of the homes and the main thread from the back, so that
 * from block to block a home mostly stays with the same thread and its record in that core's
 * cache: handed out in one order, which thread got a chunk was chance, and the homes' records
 * and generator states moved between the cores every block (two threads then spent about half
 * again the CPU time of one on the physics). */
typedef struct {
    pthread_t thread[SIM_MAX_THREADS];
    size_t running; /* workers started: thread[1..running] */
    int inited;
    worker_arg args[SIM_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* a new job, or quit */
    pthread_cond_t done; /* the job's last unit is done */
    int quit;
    uint32_t job;     /* the job number, under mu */
    physics_job cur;  /* the job, under mu */
    size_t units;     /* its units: homes of physics, + 1 for the settlement; under mu */
    size_t chunk;     /* homes per hand-out */
    size_t n_chunks;  /* chunks of a job's homes, < 2^16 */
    /* job << 32 | chunks taken from the back << 16 | chunks taken from the front */
    _Atomic uint64_t next;
    _Atomic size_t finished;   /* units done in the current job */
    /* the job whose settlement task is still to take (0: taken). Tagged with the job, like
     * next, so that a worker still holding an older job's copy cannot take a newer job's task
     * and settle its own block twice */
    _Atomic uint32_t settle_claim;
} physics_pool;

struct run_ctx {
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
    mkt_preference *prefs;    /* ex_post: standing preferences, per home */
    mkt_ex_post_home *post;   /* ex_post: the metered nets, per home */
    home *homes;
    agent *agents;
    size_t n_homes, n_intervals;
    sim_band band;
    mkt_params params;
    /* what a buyer adds to its price to make its limit all-in: the flat fee, plus with a level
     * fee that of the tree's longest path, which the market matches with (mkt_clear_grid) */
    int64_t buyer_fee_uc_per_kwh;
    sim_result *res;
    sim_kpi_acc acc, base_acc;
    size_t per_day;
    /* The stages' buffers (run_blocks): block intervals x n_homes cells each, interval-major;
     * one of each on one thread */
    size_t block;
    phys_cell *cells[3];
    /* ex_ante: the order's quantity (> 0 sells, < 0 buys, 0 none); ex_post: the metered net */
    int64_t *qty[3];
    trade_cell *trades[2];
    interval_rec *irs[2];
    plan_ws ws[SIM_MAX_THREADS]; /* ws[0]: the main thread; ws[i]: worker i */
    size_t n_threads;
    /* with threads and no on_flow: the settlement goes home by home with the physics
     * (settle_homes), each thread summing into its parts[i] */
    int split;
    settle_part *parts;
    physics_pool pool;
    /* the first failure of the physics stage (a SIM_E_* code; 0: none), its interval and home */
    _Atomic int phys_rc;
    size_t phys_fail_k, phys_fail_h;
    /* the same for the settlement stage */
    _Atomic int settle_rc;
    size_t settle_fail_k, settle_fail_h;
};

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

/* The generator of every stream (rng_for, home_rng). */
#define SIM_RNG_TYPE gsl_rng_taus2

static gsl_rng *rng_for(uint64_t seed, uint64_t stream)
{
    gsl_rng *r = gsl_rng_alloc(SIM_RNG_TYPE);
    if (r)
        gsl_rng_set(r, (unsigned long)mix(seed ^ mix(stream)));
    return r;
}

/* The same stream as rng_for, held in *r with its state in state (words of it; the owner's,
 * which must not move while r is used): no allocation of its own to free or to chase. r may
 * be NULL: the state alone, for home_rng. */
static int rng_embed(uint64_t seed, uint64_t stream, gsl_rng *r, unsigned long *state,
                     size_t words)
{
    gsl_rng *a = rng_for(seed, stream);
    if (!a)
        return SIM_E_NOMEM;
    int fits = a->type->size <= words * sizeof *state;
    if (fits) {
        memcpy(state, a->state, a->type->size);
        if (r)
            *r = (gsl_rng){a->type, state};
    }
    gsl_rng_free(a);
    return fits ? SIM_OK : SIM_E_NOMEM;
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
        .spread_intervals = g->schedule_spread_min / sc->interval_min,
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
            agent *ag = &x->agents[h];
            hm->group = (uint32_t)g;
            hm->data_index = -1;
            if (rng_embed(seed, home_stream(h, STREAM_AGENT), &ag->rng, ag->rng_state,
                          SIM_RNG_STATE_WORDS) ||
                rng_embed(seed, home_stream(h, STREAM_LOAD), NULL, hm->load_state,
                          SIM_RNG_STATE_WORDS) ||
                rng_embed(seed, home_stream(h, STREAM_PV), NULL, hm->pv_state,
                          SIM_RNG_STATE_WORDS))
                return SIM_E_NOMEM;
            sim_battery_init(&hm->bat, &sc->groups[g], sc->interval_min);
            const sim_group *gr = &sc->groups[g];
            if (gr->battery_policy == SIM_BATTERY_SCHEDULE && hm->bat.power_wh > 0) {
                int rc = dispatch_new(x, hm);
                if (rc)
                    return rc;
                if (gr->schedule_lead == 2 && !(hm->pend = calloc(1, sizeof *hm->pend)))
                    return SIM_E_NOMEM;
            }
            sim_strategy_params sp = {gr->agent, gr->markup, gr->zip_beta, gr->zip_momentum};
            ag->draws = (sim_random){draw_uniform, draw_uniform_int, &ag->rng};
            sim_pricing_init(&ag->trader, &sp, &ag->draws);
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

/* The physics stage's half of an order: one home's forecast for interval k (persistence of
 * interval k - lag; nothing before the first interval) after what its battery would absorb or
 * deliver. Returns the quantity to sell (> 0) or buy (< 0); 0: no order. */
static int64_t order_wh(run_ctx *x, home *hm, size_t k)
{
    size_t lag = lag_of(x->sc);
    int64_t net = 0;
    if (k >= lag) {
        size_t slot = (k - lag) % SIM_MAX_FORECAST_LAG;
        net = hm->past_net_wh[slot];
    }
    if (hm->bat.power_wh == 0)
        return net; /* no battery (sim_battery_step would do nothing), four homes in five */
    if (hm->planned) {
        /* what the plan makes the battery do if the forecast holds */
        sim_battery_flow f =
            sim_battery_step_bounded(&hm->bat, net > 0 ? net : 0, net < 0 ? -net : 0,
                                     hm->plan_lo_wh, hm->plan_hi_wh, 0);
        return net - f.charge_wh + f.discharge_wh;
    }
    if (net > 0) {
        sim_battery_flow f = sim_battery_step(&hm->bat, net, 0, 0);
        return net - f.charge_wh;
    }
    sim_battery_flow f = sim_battery_step(&hm->bat, 0, -net, 0);
    return -(-net - f.discharge_wh);
}

/* The market stage's half: home h's agent prices the quantity qty (order_wh) as a one-step
 * order. Returns 1 if it has an order. */
static int form_order(run_ctx *x, agent *ag, size_t h, int64_t qty, mkt_order *o)
{
    ag->ordered = qty != 0;
    if (!ag->ordered)
        return 0;
    mkt_side side = qty > 0 ? MKT_SELL : MKT_BUY;
    ag->side = side;
    ag->price = sim_pricing_price(&ag->trader, side, &x->band, &ag->draws);
    o->participant = participant_of(h);
    o->side = side;
    o->n_steps = 1;
    o->steps[0].energy_wh = qty > 0 ? qty : -qty;
    /* ag->price is the trade price the strategy chose; a buyer's limit is all-in */
    o->steps[0].price_uc_per_kwh =
        side == MKT_BUY ? ag->price + x->buyer_fee_uc_per_kwh : ag->price;
    return 1;
}

/* A home's stream with its state in state (rng_embed's). */
static gsl_rng home_rng(unsigned long *state)
{
    return (gsl_rng){SIM_RNG_TYPE, state};
}

static void actual_energy(run_ctx *x, home *hm, size_t k, int64_t *pv, int64_t *load)
{
    if (hm->data_index >= 0) {
        *pv = sim_data_pv_wh(x->data, (size_t)hm->data_index, k);
        *load = sim_data_load_wh(x->data, (size_t)hm->data_index, k);
        return;
    }
    gsl_rng pv_rng = home_rng(hm->pv_state), load_rng = home_rng(hm->load_state);
    *pv = sim_pv_home_wh(x->pv, hm->group, k, &hm->pv_dev, &pv_rng);
    *load = sim_load_home_wh(x->load, hm->group, k, &hm->load, &load_rng);
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* The physics of one home in one interval: load, PV, battery, into its cell. */
static void home_physics(run_ctx *x, home *hm, size_t k, phys_cell *c)
{
    int64_t pv, load;
    actual_energy(x, hm, k, &pv, &load);
    int64_t direct = min64(pv, load);
    int64_t surplus = pv - direct, deficit = load - direct;
    sim_battery_flow bf = {0, 0, 0}; /* no battery: what sim_battery_step would return */
    if (hm->bat.power_wh != 0)
        bf = hm->planned ? sim_battery_step_bounded(&hm->bat, surplus, deficit, hm->plan_lo_wh,
                                                    hm->plan_hi_wh, 1)
                         : sim_battery_step(&hm->bat, surplus, deficit, 1);
    c->pv_wh = pv;
    c->load_wh = load;
    c->charge_wh = bf.charge_wh;
    c->discharge_wh = bf.discharge_wh;
    c->loss_wh = bf.loss_wh;
    c->stored_after_wh = hm->bat.stored_wh;
    c->planned = hm->planned;
    hm->past_net_wh[k % SIM_MAX_FORECAST_LAG] = pv - load;
    if (hm->pend) { /* measured once the next decision is made (plan_agent) */
        hm->pend->pend = 1;
        hm->pend->start = sim_interval_start_utc(x->sc, k);
        hm->pend->pv = pv;
        hm->pend->load = load;
        hm->pend->grid = deficit - surplus + bf.charge_wh - bf.discharge_wh;
    } else if (hm->disp) {
        /* the grid exchange the home's meter sees (expand_flow's import - export) */
        int64_t grid = deficit - surplus + bf.charge_wh - bf.discharge_wh;
        int64_t start = sim_interval_start_utc(x->sc, k);
        sim_dispatch_observe(hm->disp, start, pv, load, grid, sim_scenario_retail_at(x->sc, start),
                             x->sc->feed_in_uc_per_kwh);
    }
}

/* Home h's flow in interval k from its cell: what its meter measures (home_settle sets the
 * rest; no memset: clearing the whole flow each time was a tenth of a run). */
static void expand_flow(const phys_cell *c, size_t h, size_t k, sim_flow *f)
{
    f->home = h;
    f->interval = k;
    f->pv_wh = c->pv_wh;
    f->load_wh = c->load_wh;
    f->direct_wh = min64(c->pv_wh, c->load_wh);
    int64_t surplus = f->pv_wh - f->direct_wh, deficit = f->load_wh - f->direct_wh;
    f->charge_wh = c->charge_wh;
    f->discharge_wh = c->discharge_wh;
    f->loss_wh = c->loss_wh;
    f->stored_after_wh = c->stored_after_wh;
    /* stored energy changes by exactly charge - discharge - loss (battery.h) */
    f->stored_before_wh = c->stored_after_wh - c->charge_wh + c->discharge_wh + c->loss_wh;
    /* self-consumption charges only from surplus and discharges only into the deficit; a plan
     * may also charge from the grid or discharge into it */
    int64_t grid = deficit - surplus + c->charge_wh - c->discharge_wh;
    f->import_wh = grid > 0 ? grid : 0;
    f->export_wh = grid < 0 ? -grid : 0;
    f->grid_charge_wh = c->charge_wh > surplus ? c->charge_wh - surplus : 0;
}

/* Both settlements of one home's metered interval: the local contract t (all 0: none) and the
 * grid for the rest at the interval's retail price, and the grid alone for the baseline. */
static int home_settle(run_ctx *x, const trade_cell *t, int64_t retail_uc_per_kwh, sim_flow *f)
{
    f->local_sold_wh = t->sold_wh;
    f->local_bought_wh = t->bought_wh;
    int64_t paid = t->paid_uc, money = t->paid_uc - t->received_uc;
    f->sold_local_wh = min64(f->local_sold_wh, f->export_wh);
    f->sold_grid_wh = f->export_wh - f->sold_local_wh;
    f->bought_local_wh = min64(f->local_bought_wh, f->import_wh);
    f->bought_grid_wh = f->import_wh - f->bought_local_wh;

    int64_t feed_in = x->params.feed_in_uc_per_kwh;
    stl_imbalance imb, base;
    int64_t metered = f->export_wh - f->import_wh;
    int64_t contract = f->local_sold_wh - f->local_bought_wh;
    if (stl_imbalance_settle(contract, metered, retail_uc_per_kwh, feed_in, &imb))
        return SIM_E_INVAL;
    /* no net contract: the baseline's inputs exactly, so its settlement (most homes, most
     * intervals) */
    if (contract == 0)
        base = imb;
    else if (stl_imbalance_settle(0, metered, retail_uc_per_kwh, feed_in, &base))
        return SIM_E_INVAL;
    f->settled_import_wh = imb.shortfall_wh;
    f->settled_export_wh = imb.surplus_wh;
    f->cost_uc = money + imb.charge_uc - imb.credit_uc;
    f->base_cost_uc = base.charge_uc - base.credit_uc;
    f->gross_cost_uc = paid + imb.charge_uc;
    f->base_gross_cost_uc = base.charge_uc;
    return SIM_OK;
}

static void record_home(run_ctx *x, const sim_flow *f, int planned)
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
    r->planned_intervals += (size_t)planned;
    r->cost_uc += f->cost_uc;
    r->base_cost_uc += f->base_cost_uc;
}

/* Adds the sums of an interval's flows (s, and the energy stored at its end) to its row. */
static void record_interval(sim_interval_row *row, const sim_kpi_sums *s, int64_t stored_wh)
{
    row->load_wh += s->load_wh;
    row->pv_wh += s->pv_wh;
    row->grid_import_wh += s->grid_import_wh[0];
    row->grid_export_wh += s->grid_export_wh[0];
    row->base_grid_import_wh += s->grid_import_wh[1];
    row->base_grid_export_wh += s->grid_export_wh[1];
    row->battery_wh += stored_wh;
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

/* After the book of interval k is cleared: what each home contracted (trades, one cell per
 * home), the agents' learning, the interval's market figures (ir). The settlement stage takes
 * it from there. */
static void market_results(run_ctx *x, size_t k, trade_cell *trades, interval_rec *ir)
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
    size_t next = 0; /* orders (and so participants) are in home order */
    for (size_t h = 0; h < x->n_homes; h++) {
        agent *ag = &x->agents[h];
        trade_cell *t = &trades[h];
        if (!ag->ordered) {
            *t = (trade_cell){0, 0, 0, 0};
            continue;
        }
        const mkt_participant_result *mp = &parts[next];
        int64_t congestion_uc = gparts ? gparts[next].congestion_paid_uc : 0;
        next++;
        *t = (trade_cell){mp->local_sold_wh, mp->local_bought_wh,
                          mp->local_paid_uc + mp->fee_paid_uc + congestion_uc,
                          mp->local_received_uc};
        int traded = mp->local_sold_wh > 0 || mp->local_bought_wh > 0;
        sim_pricing_observe(&ag->trader, ag->side, ag->price, traded, row->price_uc_per_kwh,
                            &x->band, &ag->draws);
    }
    if (x->grid)
        record_grid(x);
    ir->ms = *ms;
    ir->retail_uc_per_kwh = x->params.retail_uc_per_kwh;
}

/* The settlement stage of interval k: every home's flow from its cells (phys: the physics',
 * trades: the market's), both settlements, the records and KPIs, the caller's on_flow; then
 * the interval's KPIs. On failure records it in x->settle_rc. Only one thread at a time, in
 * the order of intervals. */
static int settle_interval(run_ctx *x, size_t k, const phys_cell *phys, const trade_cell *trades,
                           const interval_rec *ir)
{
    sim_interval_row *row = &x->res->intervals[k];
    sim_flow f;
    /* the interval's sums in locals, added to the row and the KPIs once (integers: the same
     * totals as adding every flow to them) */
    sim_kpi_sums sums = {0};
    int64_t stored_wh = 0;
    sim_flow_fn on_flow = x->hooks ? x->hooks->on_flow : NULL;
    for (size_t h = 0; h < x->n_homes; h++) {
        expand_flow(&phys[h], h, k, &f);
        int rc = home_settle(x, &trades[h], ir->retail_uc_per_kwh, &f);
        if (rc) {
            x->settle_fail_k = k;
            x->settle_fail_h = h;
            atomic_store(&x->settle_rc, rc);
            return rc;
        }
        record_home(x, &f, (int)phys[h].planned);
        sim_kpi_sum_flow(&sums, &f);
        stored_wh += f.stored_after_wh;
        if (on_flow)
            on_flow(&f, x->hooks->flow_ctx);
    }
    record_interval(row, &sums, stored_wh);
    sim_kpi_add_sums(&x->acc, &sums, 0);
    sim_kpi_add_sums(&x->base_acc, &sums, 1);
    sim_kpi_add_interval(&x->acc, row, &ir->ms, x->sc->interval_min, 0);
    sim_kpi_add_interval(&x->base_acc, row, NULL, x->sc->interval_min, 1);
    return SIM_OK;
}

/* The settlement stage of intervals [k0, k1) (cells interval-major), stopping at a failure. */
static void settle_block(run_ctx *x, size_t k0, size_t k1, const phys_cell *phys,
                         const trade_cell *trades, const interval_rec *irs)
{
    for (size_t k = k0; k < k1 && atomic_load(&x->settle_rc) == SIM_OK; k++)
        settle_interval(x, k, phys + (k - k0) * x->n_homes, trades + (k - k0) * x->n_homes,
                        &irs[k - k0]);
}

/* A failure of the split settlement: the first in the order of intervals and homes is kept,
 * the one the settlement in that order (settle_interval) reports. Each thread stops its chunk
 * at its own first failure, so no earlier one is left unsettled. */
static void settle_failed(run_ctx *x, size_t k, size_t h, int rc)
{
    pthread_mutex_lock(&x->pool.mu);
    if (atomic_load(&x->settle_rc) == SIM_OK || k < x->settle_fail_k ||
        (k == x->settle_fail_k && h < x->settle_fail_h)) {
        x->settle_fail_k = k;
        x->settle_fail_h = h;
        atomic_store(&x->settle_rc, rc);
    }
    pthread_mutex_unlock(&x->pool.mu);
}

/* The split settlement of homes [h0, h1) over intervals [s0, s1) (the job's buffers): each
 * flow settled and recorded in its home's row as settle_interval does, and the interval's
 * sums into the calling thread's part. The homes are the chunk whose physics the same thread
 * runs next, and mostly ran two blocks ago, so their cells and rows stay in its core's cache
 * instead of one thread reading every home's. */
static void settle_homes(run_ctx *x, settle_part *part, const physics_job *j, size_t h0,
                         size_t h1)
{
    size_t nh = x->n_homes;
    sim_flow f;
    for (size_t k = j->s0; k < j->s1; k++) {
        size_t i = k - j->s0;
        const phys_cell *phys = j->settle_phys + i * nh;
        const trade_cell *trades = j->settle_trades + i * nh;
        int64_t retail = j->settle_irs[i].retail_uc_per_kwh;
        sim_kpi_sums sums = {0};
        int64_t stored_wh = 0;
        for (size_t h = h0; h < h1; h++) {
            expand_flow(&phys[h], h, k, &f);
            int rc = home_settle(x, &trades[h], retail, &f);
            if (rc) {
                settle_failed(x, k, h, rc);
                return;
            }
            record_home(x, &f, (int)phys[h].planned);
            sim_kpi_sum_flow(&sums, &f);
            stored_wh += f.stored_after_wh;
        }
        sim_kpi_sums_add(&part->sums[i], &sums);
        part->stored_wh[i] += stored_wh;
    }
}

/* After a job with a split settlement: every thread's sums of each settled interval into its
 * row and the KPIs, in the order of intervals (the KPIs' peaks and prices need the whole
 * interval), then the parts cleared for the next job. The sums are integers, so the totals
 * are those of settle_interval. */
static void settle_merge(run_ctx *x, const physics_job *j)
{
    for (size_t k = j->s0; k < j->s1; k++) {
        size_t i = k - j->s0;
        sim_kpi_sums sums = {0};
        int64_t stored_wh = 0;
        for (size_t t = 0; t < x->n_threads; t++) {
            sim_kpi_sums_add(&sums, &x->parts[t].sums[i]);
            stored_wh += x->parts[t].stored_wh[i];
            x->parts[t].sums[i] = (sim_kpi_sums){0};
            x->parts[t].stored_wh[i] = 0;
        }
        sim_interval_row *row = &x->res->intervals[k];
        record_interval(row, &sums, stored_wh);
        sim_kpi_add_sums(&x->acc, &sums, 0);
        sim_kpi_add_sums(&x->base_acc, &sums, 1);
        sim_kpi_add_interval(&x->acc, row, &j->settle_irs[i].ms, x->sc->interval_min, 0);
        sim_kpi_add_interval(&x->base_acc, row, NULL, x->sc->interval_min, 1);
    }
}

/* The market of one interval: on a copper plate, or within the feeders' limits. */
static int clear_book(run_ctx *x, size_t n_orders, mkt_error_at *at)
{
    if (x->grid)
        return mkt_clear_grid(x->grid, &x->params, &x->topo, x->orders, n_orders, at);
    return mkt_clear(x->clearing, &x->params, x->orders, n_orders, at);
}

/* ex_ante: every home's agent prices the quantity its physics forecast (qty, one per home),
 * and the book clears. */
static int clear_ex_ante(run_ctx *x, size_t k, const int64_t *qty, char *err, size_t err_len)
{
    size_t n_orders = 0;
    for (size_t h = 0; h < x->n_homes; h++)
        n_orders += (size_t)form_order(x, &x->agents[h], h, qty[h],
                                       &x->orders[n_orders]);
    mkt_error_at at;
    int rc = clear_book(x, n_orders, &at);
    if (rc)
        return sim_fail(err, err_len, SIM_E_MARKET, "interval %zu: market rejected the book: %s", k,
                        mkt_strerror(rc));
    return SIM_OK;
}

/* ex_post: the interval has happened (qty: every home's metered net), then it is cleared with
 * its standing preference as limit. The preference comes from the home's strategy: one step on
 * the side the home is on, at the price its agent would quote in ex_ante for a sell, and for a
 * buy that bid plus the network fee, because an ex_post buy limit is all-in (truthful: feed-in
 * and retail, the grid's own terms). mkt_ex_post_orders keeps every limit within the grid's
 * terms. */
static int clear_ex_post(run_ctx *x, size_t k, const int64_t *qty, char *err, size_t err_len)
{
    for (size_t h = 0; h < x->n_homes; h++) {
        agent *hm = &x->agents[h];
        int64_t net = qty[h]; /* export - import at the meter */
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
 * Otherwise the home runs self-consumption. ws: the calling thread's price arrays. */
static int plan_agent(run_ctx *x, plan_ws *ws, home *hm, size_t k, int varies);

static int plan_home(run_ctx *x, plan_ws *ws, home *hm, size_t k)
{
    hm->planned = 0;
    if (!hm->disp || k == 0)
        return SIM_OK;
    const sim_scenario *sc = x->sc;
    int varies = 0;
    for (size_t j = 0; j < x->per_day; j++) {
        ws->plan_import_uc[j] = sim_scenario_retail_at(sc, sim_interval_start_utc(sc, k + j));
        ws->plan_export_uc[j] = sc->feed_in_uc_per_kwh;
        varies |= ws->plan_import_uc[j] != ws->plan_import_uc[0];
    }
    if (hm->pend)
        return plan_agent(x, ws, hm, k, varies);
    /* with the same prices all day long the decision is self-consumption (sim_plan_bounds):
     * spare the forecast, whose fit costs more than the plan (a year of district-1000) */
    if (!varies)
        return SIM_OK;
    sim_dispatch_decision dd;
    if (sim_dispatch_decide(hm->disp, sim_interval_start_utc(sc, k - 1), 1, hm->bat.stored_wh,
                            NULL, ws->plan_import_uc, ws->plan_export_uc, &dd))
        return SIM_OK; /* nothing observed yet, or no memory to plan: self-consumption */
    hm->planned = dd.planned;
    hm->plan_lo_wh = dd.lo_wh;
    hm->plan_hi_wh = dd.hi_wh;
    return SIM_OK;
}

/* schedule_lead 2: what `mgx agent` does for this home (controller/agent/agent_battery.h).
 * The agent measures from a local midnight (here the scenario's start) with the stored energy
 * then. During interval k - 1 it has k - 2 measured and reads the stored energy at k's start
 * (the simulated inverter serves the stored energy at the end of the interval being played);
 * it decides k with lead 2 and nothing left to commit in between (the stored energy is already
 * k's), and writes the decision's setpoint, which the inverter holds for the whole of k;
 * without a plan it releases control (self-consumption). Only then is k - 1 measured. Called
 * at interval k >= 1 with the prices of the day from k. */
static int plan_agent(run_ctx *x, plan_ws *ws, home *hm, size_t k, int varies)
{
    const int64_t zero = 0;
    sim_dispatch_decision dd;
    /* flat prices: self-consumption without a decision (as plan_home, and the agent) */
    int64_t last_s = sim_interval_start_utc(x->sc, k) - 2 * (int64_t)x->sc->interval_min * 60;
    if (varies &&
        sim_dispatch_decide(hm->disp, last_s, 2, hm->bat.stored_wh, &zero, ws->plan_import_uc,
                            ws->plan_export_uc, &dd) == 0 &&
        dd.planned) {
        hm->planned = 1;
        hm->plan_lo_wh = hm->plan_hi_wh = dd.setpoint_wh;
    }
    struct pending_obs *po = hm->pend;
    if (po->pend)
        sim_dispatch_observe(hm->disp, po->start, po->pv, po->load, po->grid,
                             sim_scenario_retail_at(x->sc, po->start), x->sc->feed_in_uc_per_kwh);
    po->pend = 0;
    return SIM_OK;
}

/* The physics stage of home h over intervals [k0, k1): the plan (and an outside controller's
 * setpoint), the order's quantity, then the interval's physics, into buffer buf (the block's,
 * interval-major). On failure records the first one in x->phys_rc. */
static int physics_home(run_ctx *x, plan_ws *ws, size_t h, size_t k0, size_t k1, size_t buf)
{
    home *hm = &x->homes[h];
    int ex_ante = x->sc->timing != MKT_EX_POST;
    for (size_t k = k0; k < k1; k++) {
        size_t at = (k - k0) * x->n_homes + h;
        phys_cell *c = &x->cells[buf][at];
        int rc = plan_home(x, ws, hm, k);
        if (rc) {
            int none = 0;
            if (atomic_compare_exchange_strong(&x->phys_rc, &none, rc)) {
                x->phys_fail_k = k;
                x->phys_fail_h = h;
            }
            return rc;
        }
        int64_t sp;
        if (x->hooks && x->hooks->on_battery && hm->bat.power_wh > 0 &&
            x->hooks->on_battery(h, k, hm->bat.stored_wh,
                                 llround(x->sc->groups[hm->group].battery_kwh * 1000.0),
                                 x->hooks->battery_ctx, &sp) == 1) {
            /* an outside controller's setpoint: the plan's bounds pinned to it */
            hm->planned = 1;
            hm->plan_lo_wh = hm->plan_hi_wh = sp;
        }
        if (ex_ante)
            x->qty[buf][at] = order_wh(x, hm, k);
        home_physics(x, hm, k, c);
        if (!ex_ante) /* export - import at the meter (expand_flow) */
            x->qty[buf][at] = c->pv_wh - c->load_wh - c->charge_wh + c->discharge_wh;
    }
    return SIM_OK;
}

#define PHYSICS_CHUNK 64u /* homes per hand-out, at most (unless there are 2^16 chunks) */
#define PHYSICS_MAX_CHUNKS 0xffffu

/* Takes the next chunk of job's homes, [*h0, *h1), from the front (back == 0) or from the
 * back; 0 when none is left or the job is over. */
static int take_chunk(physics_pool *p, uint32_t job, size_t n, int back, size_t *h0, size_t *h1)
{
    uint64_t cur = atomic_load(&p->next);
    for (;;) {
        size_t front = (size_t)(cur & 0xffffu), from_back = (size_t)((cur >> 16) & 0xffffu);
        if ((uint32_t)(cur >> 32) != job || front + from_back >= p->n_chunks)
            return 0;
        uint64_t taken = cur + (back ? UINT64_C(1) << 16 : 1);
        if (atomic_compare_exchange_weak(&p->next, &cur, taken)) {
            size_t c = back ? p->n_chunks - 1 - from_back : front;
            *h0 = c * p->chunk;
            *h1 = *h0 + p->chunk < n ? *h0 + p->chunk : n;
            return 1;
        }
    }
}

/* Counts done units of the current job; the thread that completes it wakes the main thread. */
static void job_done(physics_pool *p, size_t units)
{
    if (atomic_fetch_add(&p->finished, units) + units == p->units) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Works on a job (j: its copy, taken under the mutex) until nothing is left to take: first
 * its settlement task if it is one and no other thread has taken it (it is one unit, run by
 * one thread, because it records in the order of intervals), then chunks of its homes, from
 * the back (the main thread) or from the front (workers): a chunk's split settlement, then its
 * physics. After a failure the homes are counted, not run. Both claims carry the job's number,
 * so a thread that still holds an older job's copy takes nothing of a newer job. t: the
 * thread's number (0: the main thread). */
static void job_work(run_ctx *x, size_t t, uint32_t job, const physics_job *j, int back)
{
    physics_pool *p = &x->pool;
    uint32_t expected = job;
    int split = j->settle && j->split;
    if (j->settle && !split && atomic_compare_exchange_strong(&p->settle_claim, &expected, 0)) {
        settle_block(x, j->s0, j->s1, j->settle_phys, j->settle_trades, j->settle_irs);
        job_done(p, 1);
    }
    size_t h0, h1;
    while ((j->k0 < j->k1 || split) && take_chunk(p, job, x->n_homes, back, &h0, &h1)) {
        if (split && atomic_load(&x->settle_rc) == SIM_OK)
            settle_homes(x, &x->parts[t], j, h0, h1);
        for (size_t h = h0; h < h1 && j->k0 < j->k1 && atomic_load(&x->phys_rc) == SIM_OK; h++)
            physics_home(x, &x->ws[t], h, j->k0, j->k1, j->buf);
        job_done(p, h1 - h0);
    }
}

static void *physics_worker(void *arg)
{
    run_ctx *x = ((worker_arg *)arg)->x;
    size_t t = ((worker_arg *)arg)->index;
    physics_pool *p = &x->pool;
    uint32_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->job == seen)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->quit)
            break;
        seen = p->job;
        physics_job j = p->cur;
        pthread_mutex_unlock(&p->mu);
        job_work(x, t, seen, &j, 0);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Hands a job to the workers. */
static void job_start(run_ctx *x, const physics_job *j)
{
    physics_pool *p = &x->pool;
    pthread_mutex_lock(&p->mu);
    p->job++;
    p->cur = *j;
    int split = j->settle && j->split;
    p->units = (j->k0 < j->k1 || split ? x->n_homes : 0) + (j->settle && !split ? 1 : 0);
    atomic_store(&p->finished, 0);
    atomic_store(&p->settle_claim, p->job);
    atomic_store(&p->next, (uint64_t)p->job << 32);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Helps with what is left of the started job and waits for what the workers took. */
static void job_finish(run_ctx *x)
{
    physics_pool *p = &x->pool;
    /* job and cur are only written by this thread */
    job_work(x, 0, p->job, &p->cur, 1);
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->finished) < p->units)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
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
    if (pthread_cond_init(&p->done, NULL)) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        return SIM_E_NOMEM;
    }
    p->inited = 1;
    /* about 8 chunks a thread, so that a thread that comes late still finds some */
    p->chunk = x->n_homes / (8 * x->n_threads);
    p->chunk = p->chunk < 1 ? 1 : p->chunk > PHYSICS_CHUNK ? PHYSICS_CHUNK : p->chunk;
    if (x->n_homes / p->chunk >= PHYSICS_MAX_CHUNKS) /* the counter's halves count chunks */
        p->chunk = x->n_homes / PHYSICS_MAX_CHUNKS + 1;
    p->n_chunks = (x->n_homes + p->chunk - 1) / p->chunk;
    for (size_t i = 1; i < x->n_threads; i++) {
        p->args[i] = (worker_arg){x, i};
        if (pthread_create(&p->thread[i], NULL, physics_worker, &p->args[i]))
            return SIM_E_NOMEM;
        p->running = i;
    }
    return SIM_OK;
}

static void pool_stop(run_ctx *x)
{
    physics_pool *p = &x->pool;
    if (!p->inited)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 1; i <= p->running; i++)
        pthread_join(p->thread[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    p->inited = 0;
}

/* The market stage of interval k, whose physics is in phys (one cell per home): prices and
 * clears the book, and leaves the contracts in trades and the interval's figures in ir. */
static int market_interval(run_ctx *x, size_t k, const int64_t *qty, trade_cell *trades,
                           interval_rec *ir, char *err, size_t err_len)
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
    int rc = x->sc->timing == MKT_EX_POST ? clear_ex_post(x, k, qty, err, err_len)
                                          : clear_ex_ante(x, k, qty, err, err_len);
    if (rc)
        return rc;
    market_results(x, k, trades, ir);
    return SIM_OK;
}

/* The first failure of the physics or the settlement stage, as sim_run's error; 0: none. */
static int stage_failed(run_ctx *x, char *err, size_t err_len)
{
    int rc = atomic_load(&x->phys_rc);
    if (rc)
        return sim_fail(err, err_len, rc, "interval %zu, home %zu: out of memory to plan",
                        x->phys_fail_k, x->phys_fail_h);
    rc = atomic_load(&x->settle_rc);
    if (rc)
        return sim_fail(err, err_len, rc, "interval %zu, home %zu: settlement failed",
                        x->settle_fail_k, x->settle_fail_h);
    return SIM_OK;
}

/* Every interval through the three stages. Block b's buffers: cells and qty [b % 3] (three:
 * the physics of b + 1, the market of b and the settlement of b - 1 may run at once), trades
 * and interval records [b % 2]. With workers, the job started before block b's market stage is the
 * physics of block b + 1 and the settlement of block b - 1; the main thread joins it after
 * the market stage. With the caller pacing the run interval by interval (on_interval) the
 * settlement follows each interval's market on the main thread, so the caller sees every
 * interval's flows before it returns; on one thread everything does, a block of one interval
 * at a time. */
static int run_blocks(run_ctx *x, char *err, size_t err_len)
{
    const sim_hooks *hooks = x->hooks;
    size_t n = x->n_intervals, B = x->block, nh = x->n_homes;
    size_t step = n / 200 + 1;
    int threaded = x->n_threads > 1;
    int deferred = threaded && !(hooks && hooks->on_interval);
    if (threaded) {
        physics_job j = {.k0 = 0, .k1 = B < n ? B : n};
        job_start(x, &j);
        job_finish(x);
    }
    int rc = SIM_OK;
    physics_job j = {0};
    for (size_t b = 0, k0 = 0; k0 < n; b++, k0 += B) {
        size_t k1 = k0 + B < n ? k0 + B : n;
        phys_cell *phys = x->cells[threaded ? b % 3 : 0];
        const int64_t *qty = x->qty[threaded ? b % 3 : 0];
        trade_cell *trades = x->trades[threaded ? b % 2 : 0];
        interval_rec *irs = x->irs[threaded ? b % 2 : 0];
        if (!threaded) {
            for (size_t h = 0; h < nh && atomic_load(&x->phys_rc) == SIM_OK; h++)
                physics_home(x, &x->ws[0], h, k0, k1, 0);
        } else {
            j = (physics_job){.k0 = k1, .k1 = k1 + B < n ? k1 + B : n, .buf = (b + 1) % 3};
            if (deferred && b > 0) {
                j.settle = 1;
                j.split = x->split;
                j.s0 = k0 - B;
                j.s1 = k0;
                j.settle_phys = x->cells[(b + 2) % 3];
                j.settle_trades = x->trades[(b + 1) % 2];
                j.settle_irs = x->irs[(b + 1) % 2];
            }
            job_start(x, &j);
        }
        if ((rc = stage_failed(x, err, err_len)))
            break;
        for (size_t k = k0; k < k1; k++) {
            size_t i = k - k0;
            rc = market_interval(x, k, qty + i * nh, trades + i * nh, &irs[i], err, err_len);
            if (rc)
                break;
            if (!deferred && settle_interval(x, k, phys + i * nh, trades + i * nh, &irs[i])) {
                rc = stage_failed(x, err, err_len);
                break;
            }
            if (hooks && hooks->on_progress && ((k + 1) % step == 0 || k + 1 == n))
                hooks->on_progress(k + 1, n, hooks->progress_ctx);
            if (hooks && hooks->on_interval && hooks->on_interval(k, n, hooks->interval_ctx)) {
                rc = sim_fail(err, err_len, SIM_E_STOPPED, "stopped after interval %zu of %zu",
                              k + 1, n);
                break;
            }
        }
        /* also on failure: no worker may still be on a block when the run is freed */
        if (threaded)
            job_finish(x);
        if (rc)
            return rc;
        if (threaded && j.settle && j.split && atomic_load(&x->settle_rc) == SIM_OK)
            settle_merge(x, &j);
        if (deferred && k1 == n)
            settle_block(x, k0, k1, phys, trades, irs); /* the last block's settlement */
    }
    return stage_failed(x, err, err_len);
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
    /* aligned, so that each home is its own cache lines (home) */
    if (x->n_homes <= SIZE_MAX / sizeof *x->homes)
        x->homes = aligned_alloc(_Alignof(home), x->n_homes * sizeof *x->homes);
    if (x->homes)
        memset(x->homes, 0, x->n_homes * sizeof *x->homes);
    x->agents = calloc(x->n_homes, sizeof *x->agents);
    x->orders = calloc(x->n_homes, sizeof *x->orders);
    x->prefs = calloc(x->n_homes, sizeof *x->prefs);
    x->post = calloc(x->n_homes, sizeof *x->post);
    x->clearing = mkt_clearing_new(x->n_homes);
    x->pv = sim_pv_new(x->sc);
    x->load = sim_load_new(x->sc);
    x->weather = rng_for(seed, STREAM_WEATHER);
    x->per_day = 1440 / x->sc->interval_min;
    for (size_t i = 0; i < x->n_threads; i++) {
        plan_ws *ws = &x->ws[i];
        ws->plan_import_uc = calloc(x->per_day, sizeof *ws->plan_import_uc);
        ws->plan_export_uc = calloc(x->per_day, sizeof *ws->plan_export_uc);
        if (!ws->plan_import_uc || !ws->plan_export_uc)
            return SIM_E_NOMEM;
    }
    if (x->split) {
        x->parts = aligned_alloc(_Alignof(settle_part), x->n_threads * sizeof *x->parts);
        if (!x->parts)
            return SIM_E_NOMEM;
        memset(x->parts, 0, x->n_threads * sizeof *x->parts);
    }
    size_t cells = x->block * x->n_homes;
    for (size_t i = 0; i < (x->n_threads > 1 ? 3u : 1u); i++)
        if (!(x->cells[i] = calloc(cells, sizeof *x->cells[i])) ||
            !(x->qty[i] = calloc(cells, sizeof *x->qty[i])))
            return SIM_E_NOMEM;
    for (size_t i = 0; i < (x->n_threads > 1 ? 2u : 1u); i++)
        if (!(x->trades[i] = calloc(cells, sizeof *x->trades[i])) ||
            !(x->irs[i] = calloc(x->block, sizeof *x->irs[i])))
            return SIM_E_NOMEM;
    if (!res->intervals || !res->homes || !x->homes || !x->agents || !x->orders || !x->prefs ||
        !x->post || !x->clearing || !x->pv ||
        !x->load || !x->weather)
        return SIM_E_NOMEM;
    int rc = setup_homes(x, seed);
    return rc ? rc : setup_grid(x);
}

static void free_run(run_ctx *x)
{
    pool_stop(x);
    for (size_t h = 0; x->homes && x->agents && h < x->n_homes; h++) {
        sim_dispatch_free(x->homes[h].disp);
        free(x->homes[h].pend);
    }
    for (size_t i = 0; i < SIM_MAX_THREADS; i++) {
        free(x->ws[i].plan_import_uc);
        free(x->ws[i].plan_export_uc);
    }
    for (size_t i = 0; i < 3; i++) {
        free(x->cells[i]);
        free(x->qty[i]);
    }
    for (size_t i = 0; i < 2; i++) {
        free(x->trades[i]);
        free(x->irs[i]);
    }
    free(x->parts);
    free(x->homes);
    free(x->agents);
    free(x->orders);
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
    /* An outside battery controller sees each interval before the next one's physics: no
     * running ahead, so one thread. */
    x.n_threads = sc->threads < 1                 ? 1
                  : sc->threads > SIM_MAX_THREADS ? SIM_MAX_THREADS
                                                  : sc->threads;
    if (hooks && hooks->on_battery)
        x.n_threads = 1;
    x.block = 1;
    if (x.n_threads > 1) {
        /* about SIM_BLOCK_CELLS cells a block (10,000 homes: 6 intervals; the buffers 15 MiB,
         * within the shared cache): each block is one pass over every home's record and one
         * synchronisation, so longer blocks pass over the records less often (a cache
         * simulation of 2 threads, 10,000 homes, 2 days, with a 2 MiB last level: 8 % fewer
         * misses there than with half this, 13 % with twice, whose 31 MiB of buffers would no
         * longer fit the 32 MiB shared cache with the rest) */
        x.block = SIM_BLOCK_CELLS / x.n_homes;
        x.block = x.block < 1 ? 1 : x.block > SIM_BLOCK_MAX ? SIM_BLOCK_MAX : x.block;
    }
    /* the flows need not be seen in order: the settlement can go home by home */
    x.split = x.n_threads > 1 && !(hooks && (hooks->on_flow || hooks->on_interval));
    if ((rc = alloc_run(&x, seed))) {
        sim_fail(err, err_len, rc, "out of memory for %zu homes x %zu intervals", x.n_homes,
             x.n_intervals);
        goto out;
    }
    if (x.n_threads > 1 && (rc = pool_start(&x))) {
        sim_fail(err, err_len, rc, "cannot start a physics thread");
        goto out;
    }
    /* after setup_grid, which knows the fee a buyer's limit must cover */
    x.band =
        sim_band_from(sc->feed_in_uc_per_kwh, sc->retail_uc_per_kwh, x.buyer_fee_uc_per_kwh);
    sim_pv_draw_weather(x.pv, x.weather);
    sim_kpi_init(&x.acc, x.n_homes, x.n_intervals);
    sim_kpi_init(&x.base_acc, x.n_homes, x.n_intervals);
    if ((rc = run_blocks(&x, err, err_len)))
        goto out;
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
