/*
 * Simulator engine tests: the physics closes exactly in integer Wh for every home and interval,
 * money balances for the community, the battery keeps its bounds, runs are deterministic, the
 * measured-data path replaces the models, and the KPI helpers give known answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgx/sim.h"

#include "battery.h"
#include "kpi.h"

static void add_group(sim_scenario *sc, const char *name, uint32_t count, double kwp,
                      double bat_kwh, sim_agent_kind agent)
{
    sim_group *g = &sc->groups[sc->n_groups++];
    sim_group_defaults(g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->count = count;
    g->pv_kwp = kwp;
    g->battery_kwh = bat_kwh;
    g->battery_kw = bat_kwh / 2;
    g->annual_kwh = 4000;
    g->agent = agent;
    g->markup = 0.2;
}

static void street(sim_scenario *sc, mkt_mechanism mech, int64_t fee)
{
    sim_scenario_defaults(sc);
    snprintf(sc->name, sizeof sc->name, "test-street");
    sc->latitude_deg = 48.1;
    sc->longitude_deg = 11.6;
    sc->utc_offset_min = 60;
    sc->start_year = 2025;
    sc->start_month = 4;
    sc->start_day = 1;
    sc->days = 4;
    sc->interval_min = 15;
    sc->mechanism = mech;
    sc->network_fee_uc_per_kwh = fee;
    sc->n_groups = 0;
    add_group(sc, "solar", 4, 6.0, 0, SIM_AGENT_TRUTHFUL);
    add_group(sc, "battery", 3, 8.0, 10.0, SIM_AGENT_ZIP);
    add_group(sc, "zic", 3, 3.0, 5.0, SIM_AGENT_ZIC);
    add_group(sc, "consumer", 5, 0, 0, SIM_AGENT_MARKUP);
}

typedef struct {
    const sim_scenario *sc;
    size_t flows, trades_seen;
    size_t cur_interval;
    int64_t sold, bought;  /* contracted this interval */
    int64_t cost_sum, grid_money_sum;
    int64_t base_cost_sum;
    int ex_post;          /* check post-delivery rules too */
    size_t worse_intervals; /* ex_post: home-intervals that cost more than grid only */
} checker;

static int64_t amount(int64_t wh, int64_t price)
{
    return wh * price / 1000; /* non-negative, small: floor */
}

static void check_interval_close(checker *c)
{
    /* Every local contract has a counterparty: sold == bought in every interval. */
    assert_int_equal(c->sold, c->bought);
    if (c->sold > 0)
        c->trades_seen++;
    c->sold = c->bought = 0;
}

static void on_flow(const sim_flow *f, void *ctx)
{
    checker *c = ctx;
    if (f->interval != c->cur_interval) {
        check_interval_close(c);
        c->cur_interval = f->interval;
    }
    c->flows++;
    /* energy: what the home used and what its panels made, each fully accounted */
    assert_int_equal(f->load_wh,
                     f->direct_wh + f->discharge_wh + f->bought_local_wh + f->bought_grid_wh);
    assert_int_equal(f->pv_wh, f->direct_wh + f->charge_wh + f->sold_local_wh + f->sold_grid_wh);
    assert_int_equal(f->stored_after_wh - f->stored_before_wh,
                     f->charge_wh - f->discharge_wh - f->loss_wh);
    assert_true(f->loss_wh >= 0 && f->charge_wh >= 0 && f->discharge_wh >= 0);
    assert_true(f->charge_wh == 0 || f->discharge_wh == 0);
    assert_true(f->import_wh == 0 || f->export_wh == 0);
    assert_true(f->load_wh >= 0 && f->pv_wh >= 0);
    /* the settled grid exchange is exactly the gap between contract and meter */
    assert_int_equal(f->settled_import_wh - f->settled_export_wh,
                     (f->local_sold_wh - f->local_bought_wh) - (f->export_wh - f->import_wh));
    assert_true(f->settled_import_wh == 0 || f->settled_export_wh == 0);
    assert_true(f->local_sold_wh == 0 || f->local_bought_wh == 0);
    c->sold += f->local_sold_wh;
    c->bought += f->local_bought_wh;
    int64_t r = c->sc->retail_uc_per_kwh, fi = c->sc->feed_in_uc_per_kwh;
    c->cost_sum += f->cost_uc;
    c->grid_money_sum += amount(f->settled_import_wh, r) - amount(f->settled_export_wh, fi);
    assert_int_equal(f->base_cost_uc, amount(f->import_wh, r) - amount(f->export_wh, fi));
    c->base_cost_sum += f->base_cost_uc;
    if (c->ex_post) {
        /* cleared on metered energy: no contract beyond the meter, nothing left to settle but
         * the untraded rest, and never worse than the grid alone, in every interval */
        assert_true(f->local_sold_wh <= f->export_wh && f->local_bought_wh <= f->import_wh);
        assert_int_equal(f->sold_local_wh, f->local_sold_wh);
        assert_int_equal(f->bought_local_wh, f->local_bought_wh);
        c->worse_intervals += f->cost_uc > f->base_cost_uc;
    }
}

/* feeder_kw >= 0: the "solar" group's feeder exports at most that (grid-aware clearing). */
static void run_checked_on(mkt_mechanism mech, int64_t fee, mkt_timing timing, double feeder_kw)
{
    sim_scenario sc;
    street(&sc, mech, fee);
    sc.timing = timing;
    sc.groups[0].feeder_export_kw = feeder_kw;
    checker c = {&sc, 0, 0, 0, 0, 0, 0, 0, 0, timing == MKT_EX_POST, 0};
    sim_hooks hooks = {on_flow, &c, NULL, NULL, NULL, NULL, NULL, NULL};
    sim_result *r = NULL;
    char err[256];
    assert_int_equal(sim_run(&sc, NULL, 7, &hooks, &r, err, sizeof err), SIM_OK);
    check_interval_close(&c);
    const sim_kpis *k = sim_result_kpis(r), *b = sim_result_baseline(r);
    size_t n_int, n_homes;
    sim_result_intervals(r, &n_int);
    const sim_home_row *homes = sim_result_homes(r, &n_homes);
    assert_int_equal(n_homes, 15);
    assert_int_equal(n_int, 4 * 96);
    assert_int_equal(c.flows, n_int * n_homes);
    /* the street must actually trade, or the checks above prove little */
    assert_true(c.trades_seen > 20);
    assert_true(k->local_traded_wh > 0);
    /* local payments cancel: the community pays the grid legs plus the network fees (and,
     * behind a binding feeder, the congestion rent) */
    assert_int_equal(c.cost_sum, c.grid_money_sum + k->fees_uc + k->congestion_uc);
    if (feeder_kw >= 0) {
        assert_true(k->has_feeders);
        assert_true(k->congested_intervals > 0);
        assert_true(k->feeder_binding_intervals[0] > 0);
        assert_true(k->congestion_uc > 0);
        /* the solar feeder exports into the rest of the street: its zone is the cheaper one */
        assert_true(k->feeder_mean_price_uc_per_kwh[0] < k->mean_price_uc_per_kwh);
    }
    assert_int_equal(k->cost_uc, c.cost_sum);
    assert_int_equal(b->cost_uc, c.base_cost_sum);
    /* same physics in both worlds */
    assert_int_equal(k->load_wh, b->load_wh);
    assert_int_equal(k->pv_wh, b->pv_wh);
    /* community energy balance: contracts net to zero, so both worlds exchange the same net
     * energy with the grid; only the gross flows differ */
    assert_int_equal(k->grid_import_wh - k->grid_export_wh, b->grid_import_wh - b->grid_export_wh);
    int64_t saved = 0;
    for (size_t h = 0; h < n_homes; h++)
        saved += homes[h].base_cost_uc - homes[h].cost_uc;
    assert_int_equal(saved, b->cost_uc - k->cost_uc);
    if (timing == MKT_EX_POST) {
        assert_int_equal(c.worse_intervals, 0);
        assert_int_equal(k->homes_worse_off, 0);
        assert_true(k->savings_min_uc >= 0);
    }
    sim_result_free(r);
}

static void run_checked(mkt_mechanism mech, int64_t fee, mkt_timing timing)
{
    run_checked_on(mech, fee, timing, -1);
}

/* The "solar" group behind a 1 kW feeder: congestion, a cheaper zone, the same balances, and
 * in ex_post still nobody worse off than with the grid alone. */
static void weak_feeder(void **state)
{
    (void)state;
    run_checked_on(MKT_PAY_AS_CLEAR, 20000, MKT_EX_POST, 1.0);
    run_checked_on(MKT_PAY_AS_CLEAR, 0, MKT_EX_ANTE, 1.0);
}

/* Limits no interval reaches: the run is the copper plate's, row for row. */
static void loose_feeder_is_copper_plate(void **state)
{
    (void)state;
    sim_scenario sc;
    street(&sc, MKT_PAY_AS_CLEAR, 5000);
    sim_result *a = NULL, *b = NULL;
    char err[256];
    assert_int_equal(sim_run(&sc, NULL, 11, NULL, &a, err, sizeof err), SIM_OK);
    sc.groups[0].feeder_export_kw = 1e6;
    sc.groups[3].feeder_import_kw = 1e6;
    assert_int_equal(sim_run(&sc, NULL, 11, NULL, &b, err, sizeof err), SIM_OK);
    size_t n, m;
    const sim_interval_row *ia = sim_result_intervals(a, &n), *ib = sim_result_intervals(b, &m);
    assert_int_equal(n, m);
    assert_memory_equal(ia, ib, n * sizeof *ia);
    const sim_home_row *ha = sim_result_homes(a, &n), *hb = sim_result_homes(b, &m);
    assert_memory_equal(ha, hb, n * sizeof *ha);
    sim_kpis ka = *sim_result_kpis(a), kb = *sim_result_kpis(b);
    assert_true(kb.has_feeders);
    assert_int_equal(kb.congested_intervals, 0);
    assert_int_equal(kb.feeder_binding_intervals[0], 0);
    kb.has_feeders = 0;
    memset(kb.feeder_mean_price_uc_per_kwh, 0, sizeof kb.feeder_mean_price_uc_per_kwh);
    assert_memory_equal(&ka, &kb, sizeof ka);
    sim_result_free(a);
    sim_result_free(b);
}

/* A level fee of 5000 uc/kWh on the street's four groups (each on its own unlimited feeder)
 * against a flat fee of 10000, the fee of the longest path (2 levels): buyers bid the same
 * all-in limits and the market matches with the same fee, so every interval row is the same;
 * only trades within a group pay less (no level crossed), and the community's cost differs by
 * exactly the fees saved. */
static void level_fee_street(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        mkt_mechanism mech = m ? MKT_PAY_AS_BID : MKT_PAY_AS_CLEAR;
        sim_scenario sc;
        street(&sc, mech, 10000);
        sim_result *a = NULL, *b = NULL;
        char err[256];
        assert_int_equal(sim_run(&sc, NULL, 13, NULL, &a, err, sizeof err), SIM_OK);
        sc.network_fee_uc_per_kwh = 0;
        sc.level_fee_uc_per_kwh = 5000;
        assert_int_equal(sim_run(&sc, NULL, 13, NULL, &b, err, sizeof err), SIM_OK);
        size_t n, k;
        const sim_interval_row *ia = sim_result_intervals(a, &n), *ib = sim_result_intervals(b, &k);
        assert_int_equal(n, k);
        assert_memory_equal(ia, ib, n * sizeof *ia);
        const sim_kpis *ka = sim_result_kpis(a), *kb = sim_result_kpis(b);
        assert_true(ka->local_traded_wh > 0);
        assert_int_equal(ka->local_traded_wh, kb->local_traded_wh);
        assert_true(kb->has_feeders);
        assert_int_equal(kb->congestion_uc, 0);
        assert_true(kb->fees_uc > 0);
        assert_true(kb->fees_uc < ka->fees_uc); /* some trades stay within a group */
        assert_int_equal(ka->cost_uc - kb->cost_uc, ka->fees_uc - kb->fees_uc);
        sim_result_free(a);
        sim_result_free(b);
    }
}

/* What a run handed its observer: the flows' bytes hashed in the order they came, and whether
 * that order was interval by interval, home by home. */
typedef struct {
    uint64_t hash;
    size_t n, homes;
    int in_order;
    int pace; /* also an on_interval hook (the settlement then follows each interval) */
} flow_stream;

static void stream_flow(const sim_flow *f, void *ctx)
{
    flow_stream *s = ctx;
    if (f->interval * s->homes + f->home != s->n)
        s->in_order = 0;
    const unsigned char *b = (const unsigned char *)f;
    for (size_t i = 0; i < sizeof *f; i++)
        s->hash = (s->hash ^ b[i]) * UINT64_C(0x100000001b3);
    s->n++;
}

/* Interval k's hook comes after all of k's flows and before any of k + 1's. */
static int stream_interval(size_t k, size_t total, void *ctx)
{
    flow_stream *s = ctx;
    (void)total;
    if (s->n != (k + 1) * s->homes)
        s->in_order = 0;
    return 0;
}

/* One run on 1, 2 and 3 threads (the physics a block of intervals ahead on workers, the
 * settlement a block behind): the same bytes in every result row, KPI and flow handed to
 * on_flow, in the same order. 795 homes, so that the homes span many chunks and a run several
 * blocks (82 intervals each, the last one short); both mechanisms, a congested feeder with a
 * level fee, ex_post, and (610 homes, half-hourly, blocks of 96 and 48 intervals) the battery
 * scheduler (battery_policy = schedule) under a two-rate
 * tariff, whose retail price the settlement must take from the interval it settles, not from
 * the one being cleared; once with an on_interval hook too, which settles each interval before
 * the next one clears. And once more without on_flow (2 threads, or 3 in odd variants), where
 * each thread settles the homes of its physics chunks and the main thread adds up their sums
 * (engine.c settle_homes): the same rows and KPIs. */
static void threads_same_bytes(void **state)
{
    (void)state;
    for (int v = 0; v < 7; v++) {
        sim_scenario sc;
        street(&sc, v & 1 ? MKT_PAY_AS_BID : MKT_PAY_AS_CLEAR, 5000);
        for (size_t g = 0; g < sc.n_groups; g++)
            sc.groups[g].count *= v < 4 ? 53 : 1; /* 795 homes */
        sc.days = 2;
        if (v == 2) {
            sc.groups[0].feeder_export_kw = 40;
            sc.level_fee_uc_per_kwh = 3000;
        }
        if (v == 3 || v == 5)
            sc.timing = MKT_EX_POST;
        if (v >= 4) {
            /* plans start after a day of history; a peak price gives them something to gain;
             * half-hour intervals and 3 planning homes keep the scheduler quick, and 600
             * consumers make blocks of 96 intervals */
            sc.interval_min = 30;
            sc.start_month = 6;
            sc.groups[3].count = 600;
            sc.retail_peak_uc_per_kwh = sc.retail_uc_per_kwh * 2;
            sc.peak_start_h = 17;
            sc.peak_end_h = 21;
            sc.forecast_lag = 2;
            sc.groups[1].battery_policy = SIM_BATTERY_SCHEDULE;
            sc.groups[1].pv_kwp = 0; /* batteries that only gain by buying off-peak */
            /* the dispatch guard lets a home follow plans only on days that start with its
             * paper battery (plans followed on paper) ahead of self-consumption: a day of
             * history, a day on paper, then plans for real */
            sc.days = 3;
        }
        sim_result *r[4] = {NULL, NULL, NULL, NULL};
        flow_stream fs[3];
        char err[256];
        int runs = v == 6 ? 3 : 4; /* the paced variant has no split settlement */
        for (uint32_t t = 0; t < 3; t++) {
            sc.threads = t + 1;
            fs[t] = (flow_stream){UINT64_C(0xcbf29ce484222325), 0, sim_scenario_homes(&sc), 1,
                                  v == 6};
            sim_hooks hooks = {stream_flow, &fs[t], NULL, NULL, NULL, NULL, NULL, NULL};
            if (fs[t].pace) {
                hooks.on_interval = stream_interval;
                hooks.interval_ctx = &fs[t];
            }
            assert_int_equal(sim_run(&sc, NULL, 5, &hooks, &r[t], err, sizeof err), SIM_OK);
            assert_true(fs[t].in_order);
            assert_int_equal(fs[t].n, sim_scenario_homes(&sc) * sim_intervals(&sc));
        }
        if (runs == 4) {
            sc.threads = v & 1 ? 3 : 2;
            assert_int_equal(sim_run(&sc, NULL, 5, NULL, &r[3], err, sizeof err), SIM_OK);
        }
        for (int t = 1; t < runs; t++) {
            size_t n, m;
            const sim_interval_row *ia = sim_result_intervals(r[0], &n),
                                   *ib = sim_result_intervals(r[t], &m);
            assert_int_equal(n, m);
            assert_memory_equal(ia, ib, n * sizeof *ia);
            const sim_home_row *ha = sim_result_homes(r[0], &n), *hb = sim_result_homes(r[t], &m);
            assert_int_equal(n, m);
            assert_memory_equal(ha, hb, n * sizeof *ha);
            assert_memory_equal(sim_result_kpis(r[0]), sim_result_kpis(r[t]), sizeof(sim_kpis));
            assert_memory_equal(sim_result_baseline(r[0]), sim_result_baseline(r[t]),
                                sizeof(sim_kpis));
            if (t < 3)
                assert_true(fs[t].hash == fs[0].hash);
        }
        if (v == 2)
            assert_true(sim_result_kpis(r[0])->congested_intervals > 0);
        if (v >= 4) {
            size_t n, planned = 0;
            const sim_home_row *hr = sim_result_homes(r[0], &n);
            for (size_t h = 0; h < n; h++)
                planned += hr[h].planned_intervals;
            assert_true(planned > 0);
        }
        assert_true(sim_result_kpis(r[0])->local_traded_wh > 0);
        for (int t = 0; t < 4; t++)
            sim_result_free(r[t]);
    }
}

static void physics_closes_pay_as_clear(void **state)
{
    (void)state;
    run_checked(MKT_PAY_AS_CLEAR, 0, MKT_EX_ANTE);
}

static void physics_closes_pay_as_bid_with_fee(void **state)
{
    (void)state;
    run_checked(MKT_PAY_AS_BID, 20000, MKT_EX_ANTE);
}

/* ex_post: the same balances, and no home is worse off than the grid in any interval, under
 * both mechanisms and with a fee (the street has truthful, zip, zic and markup agents). */
static void ex_post_nobody_worse_off(void **state)
{
    (void)state;
    run_checked(MKT_PAY_AS_CLEAR, 0, MKT_EX_POST);
    run_checked(MKT_PAY_AS_CLEAR, 30000, MKT_EX_POST);
    run_checked(MKT_PAY_AS_BID, 20000, MKT_EX_POST);
}

static void deterministic(void **state)
{
    (void)state;
    sim_scenario sc;
    street(&sc, MKT_PAY_AS_CLEAR, 5000);
    sim_result *a = NULL, *b = NULL, *c = NULL;
    char err[256];
    assert_int_equal(sim_run(&sc, NULL, 11, NULL, &a, err, sizeof err), SIM_OK);
    assert_int_equal(sim_run(&sc, NULL, 11, NULL, &b, err, sizeof err), SIM_OK);
    assert_int_equal(sim_run(&sc, NULL, 12, NULL, &c, err, sizeof err), SIM_OK);
    size_t n, m;
    const sim_interval_row *ia = sim_result_intervals(a, &n), *ib = sim_result_intervals(b, &m);
    assert_int_equal(n, m);
    assert_memory_equal(ia, ib, n * sizeof *ia);
    const sim_home_row *ha = sim_result_homes(a, &n), *hb = sim_result_homes(b, &m);
    assert_memory_equal(ha, hb, n * sizeof *ha);
    assert_memory_equal(sim_result_kpis(a), sim_result_kpis(b), sizeof(sim_kpis));
    /* another seed is another weather and another set of homes */
    const sim_interval_row *ic = sim_result_intervals(c, &m);
    assert_true(memcmp(ia, ic, n * sizeof *ia) != 0);
    sim_result_free(a);
    sim_result_free(b);
    sim_result_free(c);
}

/* Two measured homes in a one-day, hourly scenario: their load and PV must be the data's. */
static void measured_data_replaces_models(void **state)
{
    (void)state;
    sim_scenario sc;
    street(&sc, MKT_PAY_AS_CLEAR, 0);
    sc.days = 1;
    sc.interval_min = 60;
    sc.utc_offset_min = 0;
    char buf[8192];
    size_t len = (size_t)snprintf(buf, sizeof buf, "timestamp,home,load_wh,pv_wh\n");
    int64_t load_sum = 0, pv_sum = 0;
    for (int hr = 0; hr < 24; hr++) {
        int64_t load = 300 + 10 * hr, pv = (hr >= 7 && hr <= 17) ? 900 - 60 * abs(12 - hr) : 0;
        load_sum += load;
        pv_sum += pv;
        len += (size_t)snprintf(buf + len, sizeof buf - len,
                                "2025-04-01T%02d:00:00Z,consumer-2,%lld,%lld\n", hr,
                                (long long)load, (long long)pv);
    }
    sim_data *d = NULL;
    char err[256];
    int rc = sim_data_parse(buf, len, "mem.csv", &sc, &d, err, sizeof err);
    if (rc)
        fail_msg("data: %s", err);
    sim_result *r = NULL;
    assert_int_equal(sim_run(&sc, d, 3, NULL, &r, err, sizeof err), SIM_OK);
    size_t n;
    const sim_home_row *homes = sim_result_homes(r, &n);
    /* consumer-2 is the 12th home: 4 solar + 3 battery + 3 zic + 2 */
    assert_true(homes[11].measured);
    assert_int_equal(homes[11].load_wh, load_sum);
    assert_int_equal(homes[11].pv_wh, pv_sum);
    assert_false(homes[10].measured);
    sim_result_free(r);
    sim_data_free(d);
}

static void battery_accounting(void **state)
{
    (void)state;
    sim_group g;
    memset(&g, 0, sizeof g);
    g.battery_kwh = 10;
    g.battery_kw = 4;
    g.battery_efficiency = 0.81; /* 0.9 each way */
    g.soc_min = 0.1;
    g.soc_max = 0.9;
    g.soc_initial = 0.5;
    sim_battery b;
    sim_battery_init(&b, &g, 15);
    assert_int_equal(b.min_wh, 1000);
    assert_int_equal(b.max_wh, 9000);
    assert_int_equal(b.stored_wh, 5000);
    assert_int_equal(b.power_wh, 1000); /* 4 kW for a quarter hour */
    /* 1000 Wh in (power-limited from 1500) keeps floor(900) */
    sim_battery_flow f = sim_battery_step(&b, 1500, 0, 1);
    assert_int_equal(f.charge_wh, 1000);
    assert_int_equal(f.loss_wh, 100);
    assert_int_equal(b.stored_wh, 5900);
    /* 450 Wh out draws ceil(450 / 0.9) = 500 */
    f = sim_battery_step(&b, 0, 450, 1);
    assert_int_equal(f.discharge_wh, 450);
    assert_int_equal(f.loss_wh, 50);
    assert_int_equal(b.stored_wh, 5400);
    /* predicting does not change the state */
    f = sim_battery_step(&b, 0, 800, 0);
    assert_int_equal(f.discharge_wh, 800);
    assert_int_equal(b.stored_wh, 5400);
    /* drain to the floor: never below min_wh */
    for (int i = 0; i < 20; i++)
        sim_battery_step(&b, 0, 1000, 1);
    assert_true(b.stored_wh >= b.min_wh);
    assert_true(b.stored_wh - b.min_wh < 2); /* less than one Wh's draw left */
    /* fill to the top: never above max_wh */
    for (int i = 0; i < 20; i++)
        sim_battery_step(&b, 1000, 0, 1);
    assert_true(b.stored_wh <= b.max_wh && b.max_wh - b.stored_wh < 2);
}

static void gini_and_median(void **state)
{
    (void)state;
    int64_t equal[] = {5, 5, 5, 5};
    assert_true(sim_gini(equal, 4) == 0.0);
    int64_t one[] = {0, 1, 0, 0};
    /* sum |xi - xj| over ordered pairs = 6, / n^2 = 0.375; mean 0.25 -> 0.375 / 0.5 */
    assert_true(sim_gini(one, 4) > 0.7499 && sim_gini(one, 4) < 0.7501);
    int64_t med[] = {9, -3, 4, 1, 7};
    assert_int_equal(sim_median(med, 5), 4);
    int64_t even[] = {4, 1, 3, 2};
    assert_int_equal(sim_median(even, 4), 2);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(battery_accounting),
        cmocka_unit_test(gini_and_median),
        cmocka_unit_test(physics_closes_pay_as_clear),
        cmocka_unit_test(physics_closes_pay_as_bid_with_fee),
        cmocka_unit_test(ex_post_nobody_worse_off),
        cmocka_unit_test(deterministic),
        cmocka_unit_test(weak_feeder),
        cmocka_unit_test(loose_feeder_is_copper_plate),
        cmocka_unit_test(level_fee_street),
        cmocka_unit_test(threads_same_bytes),
        cmocka_unit_test(measured_data_replaces_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
