/*
 * Tests of grid-aware clearing (mkt_clear_grid, mgx/topology.h, docs/market-rules.md
 * "Grid-aware clearing"):
 *  - the congestion example worked by hand in the docs, both mechanisms;
 *  - with unlimited (or merely loose) limits the result is mkt_clear's, byte for byte, on many
 *    random books and trees;
 *  - random small trees and books: no edge over its limit, energy and money balance exactly,
 *    zone prices support the allocation, binding edges are at their limit, and the gains from
 *    trade and then the volume are maximal, checked against an exhaustive solver written here
 *    that knows nothing of prices or zones; shuffled orders and attachments give the same
 *    result.
 * The seed is printed; MGX_SEED replays it and MGX_BOOKS changes the count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mgx/market.h"
#include "rng.h"
#include "mgx/topology.h"

#define MAX_PARTS 6
#define MAX_NODES 5

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : dflt;
}

static mkt_order order1(uint64_t id, mkt_side side, int64_t wh, int64_t price)
{
    mkt_order o;
    memset(&o, 0, sizeof o);
    o.participant = id;
    o.side = side;
    o.n_steps = 1;
    o.steps[0].energy_wh = wh;
    o.steps[0].price_uc_per_kwh = price;
    return o;
}

static const mkt_participant_result *part_of(const mkt_grid_clearing *g, uint64_t id,
                                             const mkt_grid_participant **info)
{
    size_t n;
    const mkt_participant_result *p = mkt_grid_participants(g, &n);
    for (size_t i = 0; i < n; i++)
        if (p[i].participant == id) {
            if (info)
                *info = &mkt_grid_participant_info(g)[i];
            return &p[i];
        }
    fail_msg("participant %llu missing", (unsigned long long)id);
    abort();
}

/* The worked example's grid (docs/market-rules.md, "Grid-aware clearing"): under the
 * transformer (0), feeder A (1: alice 1, bob 2) may export 1000 Wh, feeder B (2: carol 3, dave
 * 4, erin 5) is unlimited; WORKED_LOOSE lets A export 4000 Wh. */
static const mkt_node WORKED_NODES[] = {{MKT_NO_PARENT, 0, 0},
                                        {0, MKT_CAP_UNLIMITED, 1000},
                                        {0, MKT_CAP_UNLIMITED, MKT_CAP_UNLIMITED}};
static const mkt_node WORKED_LOOSE[] = {{MKT_NO_PARENT, 0, 0},
                                        {0, MKT_CAP_UNLIMITED, 4000},
                                        {0, MKT_CAP_UNLIMITED, MKT_CAP_UNLIMITED}};
static const mkt_attach WORKED_ATT[] = {{1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, 2}};

/* The worked example's book: alice sells 3000 Wh at >= 100000, bob 1000 at >= 120000, carol
 * buys 2000 at <= 250000, dave 2000 at <= 200000, erin sells 1000 at >= 180000. */
static void worked_orders(mkt_order o[5])
{
    o[0] = order1(1, MKT_SELL, 3000, 100000);
    o[1] = order1(2, MKT_SELL, 1000, 120000);
    o[2] = order1(3, MKT_BUY, 2000, 250000);
    o[3] = order1(4, MKT_BUY, 2000, 200000);
    o[4] = order1(5, MKT_SELL, 1000, 180000);
}

/* docs/market-rules.md, "Grid-aware clearing", the worked example. */
static void worked_example(void **state)
{
    (void)state;
    mkt_topology topo = {WORKED_NODES, 3, WORKED_ATT, 5, 0};
    mkt_order o[5];
    worked_orders(o);
    mkt_params p = {MKT_PAY_AS_CLEAR, 80000, 300000, 0, 0};
    mkt_grid_clearing *g = mkt_grid_clearing_new(8);
    assert_non_null(g);
    assert_int_equal(mkt_clear_grid(g, &p, &topo, o, 5, NULL), MKT_OK);
    const mkt_grid_summary *gs = mkt_grid_summary_of(g);
    const mkt_summary *s = mkt_grid_market_summary(g);
    assert_true(gs->congested);
    assert_int_equal(gs->n_zones, 2);
    assert_int_equal(gs->n_binding, 1);
    size_t nn;
    const mkt_node_result *nr = mkt_grid_nodes(g, &nn);
    assert_int_equal(nn, 3);
    assert_int_equal(nr[1].binding, MKT_BIND_EXPORT);
    assert_int_equal(nr[1].flow_wh, 1000);
    assert_int_equal(nr[1].price_uc_per_kwh, 100000);
    assert_int_equal(nr[1].zone, 1);
    assert_int_equal(nr[2].binding, MKT_BIND_NONE);
    assert_int_equal(nr[2].flow_wh, -1000);
    assert_int_equal(nr[2].price_uc_per_kwh, 225000);
    assert_int_equal(nr[0].price_uc_per_kwh, 225000);
    assert_int_equal(s->matched_wh, 2000);
    assert_true(s->has_price);
    assert_int_equal(s->clearing_price_uc_per_kwh, 225000);
    assert_int_equal(s->price_low_uc_per_kwh, 200000);
    assert_int_equal(s->price_high_uc_per_kwh, 250000);
    size_t nt;
    const mkt_trade *t = mkt_grid_trades(g, &nt);
    const int64_t *cong = mkt_grid_trade_congestion(g);
    assert_int_equal(nt, 2);
    assert_int_equal(t[0].seller, 1);
    assert_int_equal(t[0].buyer, 3);
    assert_int_equal(t[0].energy_wh, 1000);
    assert_int_equal(t[0].price_uc_per_kwh, 100000);
    assert_int_equal(t[0].amount_uc, 100000);
    assert_int_equal(cong[0], 125000);
    assert_int_equal(t[1].seller, 5);
    assert_int_equal(t[1].buyer, 3);
    assert_int_equal(t[1].energy_wh, 1000);
    assert_int_equal(t[1].amount_uc, 225000);
    assert_int_equal(cong[1], 0);
    assert_int_equal(gs->congestion_uc, 125000);
    const mkt_grid_participant *gi;
    const mkt_participant_result *carol = part_of(g, 3, &gi);
    assert_int_equal(carol->local_paid_uc + gi->congestion_paid_uc, 450000);
    assert_int_equal(part_of(g, 1, NULL)->grid_received_uc, 160000);
    assert_int_equal(part_of(g, 2, NULL)->grid_sold_wh, 1000);
    assert_int_equal(part_of(g, 4, NULL)->grid_paid_uc, 600000);

    /* pay-as-bid: the same allocation, each Wh at carol's bid */
    p.mechanism = MKT_PAY_AS_BID;
    assert_int_equal(mkt_clear_grid(g, &p, &topo, o, 5, NULL), MKT_OK);
    t = mkt_grid_trades(g, &nt);
    assert_int_equal(nt, 2);
    assert_int_equal(t[0].seller, 1);
    assert_int_equal(t[0].price_uc_per_kwh, 250000);
    assert_int_equal(t[1].seller, 5);
    assert_int_equal(t[1].price_uc_per_kwh, 250000);
    assert_int_equal(mkt_grid_summary_of(g)->congestion_uc, 0);
    assert_false(mkt_grid_market_summary(g)->has_price);

    /* feeder A able to export 4000 Wh: the copper plate at 150000 */
    topo.nodes = WORKED_LOOSE;
    p.mechanism = MKT_PAY_AS_CLEAR;
    assert_int_equal(mkt_clear_grid(g, &p, &topo, o, 5, NULL), MKT_OK);
    assert_false(mkt_grid_summary_of(g)->congested);
    assert_int_equal(mkt_grid_market_summary(g)->matched_wh, 4000);
    assert_int_equal(mkt_grid_market_summary(g)->clearing_price_uc_per_kwh, 150000);
    mkt_grid_clearing_free(g);
}

/* An import limit one level down, worked by hand. F = 80000, R = 300000, no fee. Transformer
 * (0): seller 10, 2000 Wh at 90000. Feeder 1 (import limit 500 Wh) under it: seller 30, 300 Wh at
 * 200000, buyer 40, 600 Wh at 150000. Branch 2 under feeder 1: buyer 20, 1000 Wh at 250000.
 * Copper plate: 10 sells 1600 Wh to 20 and 40 at 90000, and feeder 1 would import 1600: over.
 * Feeder 1's subtree imports exactly 500 only with buyer 20 partly taken: 300 - x = -500 at
 * refined 3 * 250000 + 1 alone, so its zone price is 250000: 30 sells 300, 20 buys 800, 40
 * nothing (150000 < 250000). The root then has to send 500: seller 10 partly taken, refined
 * 3 * 90000 - 1 alone, price 90000. Trades: 10 -> 20 500 Wh at 90000 (45000 uc, congestion
 * floor(500 * 250000 / 1000) - 45000 = 80000) and 30 -> 20 300 Wh at 250000 (75000 uc); buyer
 * 20 pays 200000 = 800 Wh at 250000. */
static void import_limit_deeper_tree(void **state)
{
    (void)state;
    const mkt_node nodes[] = {{MKT_NO_PARENT, 0, 0},
                              {0, 500, MKT_CAP_UNLIMITED},
                              {1, MKT_CAP_UNLIMITED, MKT_CAP_UNLIMITED}};
    const mkt_attach att[] = {{20, 2}, {30, 1}, {40, 1}};
    mkt_topology topo = {nodes, 3, att, 3, 0};
    mkt_order o[] = {order1(40, MKT_BUY, 600, 150000), order1(10, MKT_SELL, 2000, 90000),
                     order1(30, MKT_SELL, 300, 200000), order1(20, MKT_BUY, 1000, 250000)};
    mkt_params p = {MKT_PAY_AS_CLEAR, 80000, 300000, 0, 0};
    mkt_grid_clearing *g = mkt_grid_clearing_new(4);
    assert_int_equal(mkt_clear_grid(g, &p, &topo, o, 4, NULL), MKT_OK);
    const mkt_grid_summary *gs = mkt_grid_summary_of(g);
    assert_true(gs->congested);
    assert_int_equal(gs->n_zones, 2);
    assert_int_equal(gs->n_binding, 1);
    assert_int_equal(gs->congestion_uc, 80000);
    size_t nn, nt;
    const mkt_node_result *nr = mkt_grid_nodes(g, &nn);
    assert_int_equal(nr[0].price_uc_per_kwh, 90000);
    assert_int_equal(nr[1].binding, MKT_BIND_IMPORT);
    assert_int_equal(nr[1].flow_wh, -500);
    assert_int_equal(nr[1].price_uc_per_kwh, 250000);
    assert_int_equal(nr[1].zone, 1);
    assert_int_equal(nr[2].binding, MKT_BIND_NONE);
    assert_int_equal(nr[2].flow_wh, -800);
    assert_int_equal(nr[2].zone, 1);
    const mkt_summary *s = mkt_grid_market_summary(g);
    assert_int_equal(s->matched_wh, 800);
    assert_int_equal(s->clearing_price_uc_per_kwh, 90000);
    const mkt_trade *t = mkt_grid_trades(g, &nt);
    const int64_t *cong = mkt_grid_trade_congestion(g);
    assert_int_equal(nt, 2);
    assert_int_equal(t[0].seller, 10);
    assert_int_equal(t[0].buyer, 20);
    assert_int_equal(t[0].energy_wh, 500);
    assert_int_equal(t[0].amount_uc, 45000);
    assert_int_equal(cong[0], 80000);
    assert_int_equal(t[1].seller, 30);
    assert_int_equal(t[1].energy_wh, 300);
    assert_int_equal(t[1].amount_uc, 75000);
    assert_int_equal(cong[1], 0);
    const mkt_grid_participant *gi;
    const mkt_participant_result *b = part_of(g, 20, &gi);
    assert_int_equal(b->local_paid_uc + gi->congestion_paid_uc, 200000);
    assert_int_equal(b->grid_bought_wh, 200);
    assert_int_equal(part_of(g, 40, NULL)->grid_paid_uc, 180000);
    assert_int_equal(part_of(g, 10, NULL)->grid_received_uc, 120000);
    mkt_grid_clearing_free(g);
}

/* docs/market-rules.md: why gains come before volume. */
static void gains_before_volume(void **state)
{
    (void)state;
    const mkt_node nodes[] = {{MKT_NO_PARENT, 0, 0}, {0, MKT_CAP_UNLIMITED, 1}};
    const mkt_attach att[] = {{1, 1}, {2, 1}};
    mkt_topology topo = {nodes, 2, att, 2, 0};
    mkt_order o[] = {order1(1, MKT_SELL, 1, 10), order1(2, MKT_BUY, 1, 20),
                     order1(3, MKT_BUY, 1, 100), order1(4, MKT_SELL, 1, 90)};
    mkt_params p = {MKT_PAY_AS_CLEAR, 0, 1000, 0, 0};
    mkt_grid_clearing *g = mkt_grid_clearing_new(4);
    assert_int_equal(mkt_clear_grid(g, &p, &topo, o, 4, NULL), MKT_OK);
    assert_false(mkt_grid_summary_of(g)->congested);
    assert_int_equal(mkt_grid_market_summary(g)->matched_wh, 1);
    assert_int_equal(mkt_grid_market_summary(g)->clearing_price_uc_per_kwh, 55);
    size_t nt, nn;
    const mkt_trade *t = mkt_grid_trades(g, &nt);
    assert_int_equal(nt, 1);
    assert_int_equal(t[0].seller, 1);
    assert_int_equal(t[0].buyer, 3);
    const mkt_node_result *nr = mkt_grid_nodes(g, &nn);
    assert_int_equal(nr[1].flow_wh, 1);
    assert_int_equal(nr[1].binding, MKT_BIND_NONE);
    mkt_grid_clearing_free(g);
}

static void rejects_bad_topology(void **state)
{
    (void)state;
    mkt_grid_clearing *g = mkt_grid_clearing_new(4);
    mkt_order o[] = {order1(1, MKT_SELL, 10, 100), order1(2, MKT_BUY, 10, 200)};
    mkt_params p = {MKT_PAY_AS_CLEAR, 0, 1000, 0, 0};
    mkt_node bad_parent[] = {{MKT_NO_PARENT, 0, 0}, {1, 5, 5}};
    mkt_node neg[] = {{MKT_NO_PARENT, 0, 0}, {0, -1, 5}};
    mkt_node root[] = {{0, 0, 0}};
    mkt_attach dup[] = {{1, 0}, {1, 0}};
    mkt_attach missing[] = {{1, 7}};
    mkt_topology t[] = {{bad_parent, 2, NULL, 0, 0}, {neg, 2, NULL, 0, 0},
                        {root, 1, NULL, 0, 0},       {neg, 0, NULL, 0, 0},
                        {bad_parent, 1, dup, 2, 0},  {bad_parent, 1, missing, 1, 0}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        mkt_error_at at;
        assert_int_equal(mkt_clear_grid(g, &p, &t[i], o, 2, &at), MKT_E_TOPOLOGY);
        assert_true(at.order_index == MKT_AT_BOOK);
    }
    int64_t wh;
    assert_int_equal(mkt_cap_wh_from_w(25000, 900, &wh), MKT_OK); /* 25 kW over 15 min */
    assert_int_equal(wh, 6250);
    assert_int_equal(mkt_cap_wh_from_w(1, 1799, &wh), MKT_OK);
    assert_int_equal(wh, 0);
    assert_int_equal(mkt_cap_wh_from_w(-1, 900, &wh), MKT_E_INVAL);
    mkt_grid_clearing_free(g);
}

/* ---- random books and trees ---- */

typedef struct {
    mkt_params p;
    mkt_node nodes[MAX_NODES];
    size_t n_nodes;
    mkt_attach att[MAX_PARTS];
    size_t n_att;
    mkt_order o[MAX_PARTS];
    size_t n;
} book;

static const int64_t CAPS[] = {0, 1, 2, 3, 5, MKT_CAP_UNLIMITED};

static void random_book(uint64_t *s, book *b, int unlimited, size_t max_parts, int64_t max_wh)
{
    int64_t cap_scale = max_wh > 3 ? max_wh / 2 : 1;
    memset(b, 0, sizeof *b);
    static const int64_t prices[] = {0, 40, 50, 60, 80, 100, 120, 150, 200, 300};
    b->p.mechanism = tst_below(s, 2) ? MKT_PAY_AS_BID : MKT_PAY_AS_CLEAR;
    b->p.interval_id = (int64_t)tst_splitmix64(s);
    b->p.feed_in_uc_per_kwh = (int64_t[]){0, 40, 50}[tst_below(s, 3)];
    b->p.retail_uc_per_kwh = b->p.feed_in_uc_per_kwh + (int64_t[]){0, 100, 200, 1000}[tst_below(s, 4)];
    b->p.network_fee_uc_per_kwh = tst_below(s, 3) ? 0 : (int64_t[]){10, 30, 150}[tst_below(s, 3)];
    if (b->p.network_fee_uc_per_kwh > b->p.retail_uc_per_kwh)
        b->p.network_fee_uc_per_kwh = 0;
    b->n_nodes = 1 + tst_below(s, MAX_NODES);
    b->nodes[0] = (mkt_node){MKT_NO_PARENT, 0, 0};
    for (size_t v = 1; v < b->n_nodes; v++) {
        b->nodes[v].parent = (uint32_t)tst_below(s, v);
        if (unlimited) {
            b->nodes[v].import_wh = b->nodes[v].export_wh =
                unlimited == 1 ? MKT_CAP_UNLIMITED : INT64_C(1) << 45;
        } else {
            b->nodes[v].import_wh = CAPS[tst_below(s, 6)];
            b->nodes[v].export_wh = CAPS[tst_below(s, 6)];
            if (b->nodes[v].import_wh != MKT_CAP_UNLIMITED)
                b->nodes[v].import_wh *= cap_scale;
            if (b->nodes[v].export_wh != MKT_CAP_UNLIMITED)
                b->nodes[v].export_wh *= cap_scale;
        }
    }
    b->n = tst_below(s, max_parts + 1);
    for (size_t i = 0; i < b->n; i++) {
        mkt_order *o = &b->o[i];
        o->participant = 100 + i * 7 + tst_below(s, 7);
        o->side = tst_below(s, 2) ? MKT_SELL : MKT_BUY;
        o->n_steps = 1 + (uint32_t)tst_below(s, 2);
        for (uint32_t k = 0; k < o->n_steps; k++) {
            o->steps[k].energy_wh = 1 + (int64_t)tst_below(s, (uint64_t)max_wh);
            o->steps[k].price_uc_per_kwh = prices[tst_below(s, 10)];
        }
        if (tst_below(s, 5)) /* most participants below a feeder, some at the transformer */
            b->att[b->n_att++] = (mkt_attach){o->participant, (uint32_t)tst_below(s, b->n_nodes)};
    }
}

/* A participant's tradable curve as in the rules: effective prices, band applied, best first;
 * gain[L] is the value (buyers) or minus the cost (sellers) of its best L Wh, in uc*Wh/kWh. */
typedef struct {
    int64_t tradable;
    int64_t gain[2 * 1000 + 1]; /* 2 steps of at most 1000 Wh */
    int64_t node;
} curve;

static void make_curve(const book *b, const mkt_order *o, curve *cv)
{
    int64_t lo = b->p.feed_in_uc_per_kwh;
    int64_t hi = b->p.retail_uc_per_kwh - b->p.network_fee_uc_per_kwh;
    int64_t pr[MKT_MAX_STEPS], en[MKT_MAX_STEPS];
    size_t n = 0;
    for (uint32_t k = 0; k < o->n_steps; k++) {
        int64_t x = o->steps[k].price_uc_per_kwh;
        if (o->side == MKT_SELL)
            x = x < lo ? lo : x;
        else
            x = (x > b->p.retail_uc_per_kwh ? b->p.retail_uc_per_kwh : x) -
                b->p.network_fee_uc_per_kwh;
        if (x < lo || x > hi)
            continue;
        pr[n] = x;
        en[n] = o->steps[k].energy_wh;
        n++;
    }
    /* best first: sellers cheapest, buyers dearest */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (o->side == MKT_SELL ? pr[j] < pr[i] : pr[j] > pr[i]) {
                int64_t t = pr[i];
                pr[i] = pr[j];
                pr[j] = t;
                t = en[i];
                en[i] = en[j];
                en[j] = t;
            }
    cv->tradable = 0;
    cv->gain[0] = 0;
    for (size_t i = 0; i < n; i++)
        for (int64_t e = 0; e < en[i]; e++) {
            cv->tradable++;
            cv->gain[cv->tradable] =
                cv->gain[cv->tradable - 1] + (o->side == MKT_SELL ? -pr[i] : pr[i]);
        }
    cv->node = 0;
    for (size_t a = 0; a < b->n_att; a++)
        if (b->att[a].participant == o->participant)
            cv->node = b->att[a].node;
}

/* Net export of every subtree for local energies L; 1 if within every limit and balanced. */
static int feasible(const book *b, const curve *cv, const int64_t *L, int64_t *flow)
{
    for (size_t v = 0; v < b->n_nodes; v++)
        flow[v] = 0;
    for (size_t i = 0; i < b->n; i++)
        flow[cv[i].node] += b->o[i].side == MKT_SELL ? L[i] : -L[i];
    for (size_t v = b->n_nodes; v-- > 1;)
        flow[b->nodes[v].parent] += flow[v];
    if (flow[0] != 0)
        return 0;
    for (size_t v = 1; v < b->n_nodes; v++)
        if (flow[v] > b->nodes[v].export_wh || -flow[v] > b->nodes[v].import_wh)
            return 0;
    return 1;
}

/* The exhaustive solver: every vector of local energies, the best (gain, volume). */
static void brute_force(const book *b, const curve *cv, int64_t *best_gain, int64_t *best_vol)
{
    int64_t L[MAX_PARTS] = {0}, flow[MAX_NODES];
    *best_gain = 0;
    *best_vol = 0;
    for (;;) {
        if (feasible(b, cv, L, flow)) {
            int64_t gain = 0, vol = 0;
            for (size_t i = 0; i < b->n; i++) {
                gain += cv[i].gain[L[i]];
                vol += b->o[i].side == MKT_SELL ? L[i] : 0;
            }
            if (gain > *best_gain || (gain == *best_gain && vol > *best_vol)) {
                *best_gain = gain;
                *best_vol = vol;
            }
        }
        size_t i = 0;
        while (i < b->n && L[i] == cv[i].tradable)
            L[i++] = 0;
        if (i == b->n)
            return;
        L[i]++;
    }
}

static int64_t energy_at(const book *b, const mkt_order *o, int64_t p, int strict)
{
    curve cv;
    make_curve(b, o, &cv);
    int64_t e = 0;
    for (int64_t k = 1; k <= cv.tradable; k++) {
        int64_t price = cv.gain[k] - cv.gain[k - 1];
        if (o->side == MKT_SELL) {
            price = -price;
            e += strict ? price < p : price <= p;
        } else
            e += strict ? price > p : price >= p;
    }
    return e;
}

/* Every promise of the rules on one result. */
static void check_result(const book *b, const mkt_grid_clearing *g, int exhaustive)
{
    size_t np, nt, nn;
    const mkt_participant_result *pr = mkt_grid_participants(g, &np);
    const mkt_grid_participant *gi = mkt_grid_participant_info(g);
    const mkt_trade *t = mkt_grid_trades(g, &nt);
    const int64_t *cong = mkt_grid_trade_congestion(g);
    const mkt_node_result *nr = mkt_grid_nodes(g, &nn);
    const mkt_summary *s = mkt_grid_market_summary(g);
    const mkt_grid_summary *gs = mkt_grid_summary_of(g);
    assert_int_equal(np, b->n);
    assert_int_equal(nn, b->n_nodes);
    curve cv[MAX_PARTS];
    int64_t L[MAX_PARTS], flow[MAX_NODES];
    int64_t sold = 0, bought = 0, recv = 0, paid = 0, fees = 0, cong_paid = 0;
    for (size_t i = 0; i < b->n; i++) {
        make_curve(b, &b->o[i], &cv[i]);
        size_t k = 0;
        while (k < np && pr[k].participant != b->o[i].participant)
            k++;
        if (k == np)
            abort();
        const mkt_participant_result *r = &pr[k];
        assert_int_equal(gi[k].node, cv[i].node);
        L[i] = r->local_sold_wh + r->local_bought_wh;
        assert_true(L[i] <= cv[i].tradable);
        assert_int_equal(r->local_sold_wh + r->grid_sold_wh + r->local_bought_wh +
                             r->grid_bought_wh,
                         r->offered_wh);
        sold += r->local_sold_wh;
        bought += r->local_bought_wh;
        recv += r->local_received_uc;
        paid += r->local_paid_uc;
        fees += r->fee_paid_uc;
        cong_paid += gi[k].congestion_paid_uc;
        /* per-trade sums */
        int64_t e = 0, uc = 0;
        for (size_t j = 0; j < nt; j++)
            if (t[j].seller == r->participant || t[j].buyer == r->participant) {
                e += t[j].energy_wh;
                uc += t[j].amount_uc;
            }
        assert_int_equal(e, L[i]);
        assert_int_equal(uc, r->side == MKT_SELL ? r->local_received_uc : r->local_paid_uc);
        if (gs->has_prices) { /* the zone price supports the participant's allocation */
            int64_t zp = gi[k].price_uc_per_kwh;
            assert_int_equal(zp, nr[cv[i].node].price_uc_per_kwh);
            assert_true(energy_at(b, &b->o[i], zp, 1) <= L[i]);
            assert_true(L[i] <= energy_at(b, &b->o[i], zp, 0));
        }
    }
    assert_int_equal(sold, bought);
    assert_int_equal(sold, s->matched_wh);
    assert_int_equal(recv, paid);
    assert_int_equal(recv, s->local_value_uc);
    assert_int_equal(fees, s->fees_uc);
    assert_int_equal(cong_paid, gs->congestion_uc);
    int64_t csum = 0;
    for (size_t j = 0; j < nt; j++) {
        int64_t a, fe, bp;
        assert_true(t[j].energy_wh > 0);
        assert_int_equal(mkt_amount_uc(t[j].energy_wh, t[j].price_uc_per_kwh, &a), MKT_OK);
        assert_int_equal(a, t[j].amount_uc);
        assert_int_equal(mkt_amount_uc(t[j].energy_wh, b->p.network_fee_uc_per_kwh, &fe), 0);
        assert_int_equal(fe, t[j].fee_uc);
        assert_true(cong[j] >= 0);
        if (b->p.mechanism == MKT_PAY_AS_BID)
            assert_int_equal(cong[j], 0);
        else if (gs->congested) {
            int64_t bz = -1;
            for (size_t k = 0; k < np; k++)
                if (pr[k].participant == t[j].buyer)
                    bz = gi[k].price_uc_per_kwh;
            assert_int_equal(mkt_amount_uc(t[j].energy_wh, bz, &bp), 0);
            assert_int_equal(cong[j], bp - a);
        }
        csum += cong[j];
    }
    assert_int_equal(csum, gs->congestion_uc);
    /* no edge over its limit, flows as reported */
    assert_true(feasible(b, cv, L, flow));
    for (size_t v = 1; v < b->n_nodes; v++) {
        assert_int_equal(nr[v].flow_wh, flow[v]);
        if (!gs->congested)
            continue;
        int64_t pv = nr[v].price_uc_per_kwh, pp = nr[b->nodes[v].parent].price_uc_per_kwh;
        if (nr[v].binding == MKT_BIND_EXPORT) {
            assert_int_equal(flow[v], b->nodes[v].export_wh);
            assert_true(pv <= pp);
        } else if (nr[v].binding == MKT_BIND_IMPORT) {
            assert_int_equal(-flow[v], b->nodes[v].import_wh);
            assert_true(pv >= pp);
        } else
            assert_int_equal(pv, pp);
    }
    if (exhaustive) {
        int64_t gbest, vbest, gain = 0;
        brute_force(b, cv, &gbest, &vbest);
        for (size_t i = 0; i < b->n; i++)
            gain += cv[i].gain[L[i]];
        assert_int_equal(gain, gbest);
        assert_int_equal(sold, vbest);
    }
}

static void shuffle_book(uint64_t *s, book *b)
{
    for (size_t i = b->n; i > 1; i--) {
        size_t j = tst_below(s, i);
        mkt_order t = b->o[i - 1];
        b->o[i - 1] = b->o[j];
        b->o[j] = t;
    }
    for (size_t i = b->n_att; i > 1; i--) {
        size_t j = tst_below(s, i);
        mkt_attach t = b->att[i - 1];
        b->att[i - 1] = b->att[j];
        b->att[j] = t;
    }
}

static void assert_same(const mkt_grid_clearing *a, const mkt_grid_clearing *b)
{
    size_t na, nb;
    const mkt_trade *ta = mkt_grid_trades(a, &na), *tb = mkt_grid_trades(b, &nb);
    assert_int_equal(na, nb);
    if (na) {
        assert_memory_equal(ta, tb, na * sizeof *ta);
        assert_memory_equal(mkt_grid_trade_congestion(a), mkt_grid_trade_congestion(b),
                            na * sizeof(int64_t));
    }
    const mkt_participant_result *pa = mkt_grid_participants(a, &na);
    const mkt_participant_result *pb = mkt_grid_participants(b, &nb);
    assert_int_equal(na, nb);
    if (na)
        assert_memory_equal(pa, pb, na * sizeof *pa);
    for (size_t i = 0; i < na; i++) {
        const mkt_grid_participant *x = &mkt_grid_participant_info(a)[i];
        const mkt_grid_participant *y = &mkt_grid_participant_info(b)[i];
        assert_int_equal(x->node, y->node);
        assert_int_equal(x->price_uc_per_kwh, y->price_uc_per_kwh);
        assert_int_equal(x->congestion_paid_uc, y->congestion_paid_uc);
    }
    assert_memory_equal(mkt_grid_market_summary(a), mkt_grid_market_summary(b),
                        sizeof(mkt_summary));
    const mkt_node_result *ra = mkt_grid_nodes(a, &na), *rb = mkt_grid_nodes(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(ra, rb, na * sizeof *ra);
    assert_memory_equal(mkt_grid_summary_of(a), mkt_grid_summary_of(b),
                        sizeof(mkt_grid_summary));
}

/* The book, shuffled, clears in h exactly as it did in g: the input order does not matter. */
static void assert_shuffled_same(uint64_t *s, book *b, const mkt_grid_clearing *g,
                                 mkt_grid_clearing *h)
{
    shuffle_book(s, b);
    assert_int_equal(mkt_clear_grid(h, &b->p,
                                    &(mkt_topology){b->nodes, b->n_nodes, b->att, b->n_att, 0},
                                    b->o, b->n, NULL),
                     MKT_OK);
    assert_same(g, h);
}

static uint64_t seed_of(const char *what)
{
    uint64_t seed = env_u64("MGX_SEED", 20261205);
    printf("# %s: MGX_SEED=%llu\n", what, (unsigned long long)seed);
    return seed;
}

/* Random trees and books against the exhaustive solver; shuffled input gives the same. */
static void random_trees(void **state)
{
    (void)state;
    uint64_t s = seed_of("random_trees");
    uint64_t n_books = env_u64("MGX_BOOKS", 20000);
    mkt_grid_clearing *g = mkt_grid_clearing_new(MAX_PARTS), *h = mkt_grid_clearing_new(MAX_PARTS);
    uint64_t congested = 0, zones = 0, traded = 0;
    for (uint64_t k = 0; k < n_books; k++) {
        book b;
        random_book(&s, &b, 0, MAX_PARTS, 3);
        int rc = mkt_clear_grid(g, &b.p, &(mkt_topology){b.nodes, b.n_nodes, b.att, b.n_att, 0},
                                b.o, b.n, NULL);
        if (rc)
            fail_msg("book %llu: %s", (unsigned long long)k, mkt_strerror(rc));
        check_result(&b, g, 1);
        const mkt_grid_summary *gs = mkt_grid_summary_of(g);
        congested += gs->congested != 0;
        zones += gs->n_zones > 1;
        traded += mkt_grid_market_summary(g)->matched_wh > 0;
        assert_shuffled_same(&s, &b, g, h);
    }
    printf("# %llu books: %llu traded locally, %llu congested, %llu with 2+ zones\n",
           (unsigned long long)n_books, (unsigned long long)traded,
           (unsigned long long)congested, (unsigned long long)zones);
    assert_true(congested > n_books / 20);
    assert_true(zones > n_books / 50);
    mkt_grid_clearing_free(g);
    mkt_grid_clearing_free(h);
}

/* Wider books (up to 1000 Wh a step, limits to match): every check but the exhaustive one,
 * so that pro rata shares and remainders see real numbers. */
static void wide_trees(void **state)
{
    (void)state;
    uint64_t s = seed_of("wide_trees");
    uint64_t n_books = env_u64("MGX_BOOKS", 20000);
    mkt_grid_clearing *g = mkt_grid_clearing_new(MAX_PARTS), *h = mkt_grid_clearing_new(MAX_PARTS);
    uint64_t congested = 0;
    for (uint64_t k = 0; k < n_books; k++) {
        book b;
        random_book(&s, &b, 0, MAX_PARTS, 1000);
        assert_int_equal(
            mkt_clear_grid(g, &b.p, &(mkt_topology){b.nodes, b.n_nodes, b.att, b.n_att, 0}, b.o,
                           b.n, NULL),
            MKT_OK);
        check_result(&b, g, 0);
        congested += mkt_grid_summary_of(g)->congested != 0;
        assert_shuffled_same(&s, &b, g, h);
    }
    printf("# %llu wide books: %llu congested\n", (unsigned long long)n_books,
           (unsigned long long)congested);
    assert_true(congested > n_books / 20);
    mkt_grid_clearing_free(g);
    mkt_grid_clearing_free(h);
}

/* docs/market-rules.md, "Fee per level", worked by hand: the worked example above with a fee of
 * 5000 uc/kWh per level. The tree's longest path (A - transformer - B) has 2 levels, so the
 * matching takes a flat 10000: effective bids carol 240000, dave 190000. Copper plate as before
 * at 150000 (A over its limit). A's zone: 100000 as before. The root zone with B: 1000 Wh in from
 * A plus erin's 1000 serve carol's 2000 for prices from 190000 (dave, rejected) to 240000
 * (carol, accepted): p = 215000. alice -> carol 1000 Wh at 100000 crosses 2 levels: fee
 * floor(1000 * 10000 / 1000) = 10000, congestion 215000 - 100000 = 115000; erin -> carol 1000 Wh
 * at 215000 on one node: fee 0. Carol pays 100000 + 115000 + 10000 + 215000 = 440000 for
 * 2000 Wh, 220000 uc/kWh all in, within her 250000. */
static void level_fee_example(void **state)
{
    (void)state;
    mkt_topology topo = {WORKED_NODES, 3, WORKED_ATT, 5, 5000};
    mkt_order o[5];
    worked_orders(o);
    mkt_params p = {MKT_PAY_AS_CLEAR, 80000, 300000, 0, 0};
    mkt_grid_clearing *g = mkt_grid_clearing_new(8);
    assert_non_null(g);
    assert_int_equal(mkt_topology_levels(&topo, 1, 2), 2);
    assert_int_equal(mkt_topology_levels(&topo, 2, 2), 0);
    assert_int_equal(mkt_topology_levels(&topo, 0, 1), 1);
    assert_int_equal(mkt_clear_grid(g, &p, &topo, o, 5, NULL), MKT_OK);
    const mkt_grid_summary *gs = mkt_grid_summary_of(g);
    const mkt_summary *s = mkt_grid_market_summary(g);
    assert_true(gs->congested);
    assert_int_equal(s->matched_wh, 2000);
    assert_int_equal(s->clearing_price_uc_per_kwh, 215000);
    assert_int_equal(s->price_low_uc_per_kwh, 190000);
    assert_int_equal(s->price_high_uc_per_kwh, 240000);
    size_t nt;
    const mkt_trade *t = mkt_grid_trades(g, &nt);
    const int64_t *cong = mkt_grid_trade_congestion(g);
    assert_int_equal(nt, 2);
    assert_int_equal(t[0].seller, 1);
    assert_int_equal(t[0].buyer, 3);
    assert_int_equal(t[0].amount_uc, 100000);
    assert_int_equal(t[0].fee_uc, 10000);
    assert_int_equal(cong[0], 115000);
    assert_int_equal(t[1].seller, 5);
    assert_int_equal(t[1].amount_uc, 215000);
    assert_int_equal(t[1].fee_uc, 0);
    assert_int_equal(cong[1], 0);
    assert_int_equal(s->fees_uc, 10000);
    const mkt_grid_participant *gi;
    const mkt_participant_result *carol = part_of(g, 3, &gi);
    assert_int_equal(carol->fee_paid_uc, 10000);
    assert_int_equal(carol->local_paid_uc + gi->congestion_paid_uc + carol->fee_paid_uc, 440000);

    /* pay-as-bid: both at carol's effective bid, 250000 less the matching fee */
    p.mechanism = MKT_PAY_AS_BID;
    assert_int_equal(mkt_clear_grid(g, &p, &topo, o, 5, NULL), MKT_OK);
    t = mkt_grid_trades(g, &nt);
    assert_int_equal(nt, 2);
    assert_int_equal(t[0].price_uc_per_kwh, 240000);
    assert_int_equal(t[0].fee_uc, 10000);
    assert_int_equal(t[1].price_uc_per_kwh, 240000);
    assert_int_equal(t[1].fee_uc, 0);
    assert_int_equal(part_of(g, 3, NULL)->fee_paid_uc, 10000);

    /* A able to export 4000 Wh: the copper plate at 150000, in id order: alice -> carol 2000 Wh
     * and alice -> dave 1000 Wh, bob -> dave 1000 Wh, each across 2 levels (10000 uc/kWh) */
    topo.nodes = WORKED_LOOSE;
    p.mechanism = MKT_PAY_AS_CLEAR;
    assert_int_equal(mkt_clear_grid(g, &p, &topo, o, 5, NULL), MKT_OK);
    assert_false(mkt_grid_summary_of(g)->congested);
    t = mkt_grid_trades(g, &nt);
    assert_int_equal(nt, 3);
    assert_int_equal(t[0].fee_uc, 20000);
    assert_int_equal(t[1].fee_uc, 10000);
    assert_int_equal(t[2].fee_uc, 10000);
    assert_int_equal(mkt_grid_market_summary(g)->fees_uc, 40000);
    assert_int_equal(part_of(g, 4, NULL)->fee_paid_uc, 20000);

    /* a level fee beyond the price bound, alone or on the longest path */
    topo.level_fee_uc_per_kwh = -1;
    assert_int_equal(mkt_clear_grid(g, &p, &topo, o, 5, NULL), MKT_E_PRICE);
    topo.level_fee_uc_per_kwh = MKT_PRICE_MAX_UC_PER_KWH;
    assert_int_equal(mkt_clear_grid(g, &p, &topo, o, 5, NULL), MKT_E_PRICE);
    mkt_grid_clearing_free(g);
}

/* Random trees with a level fee: the allocation is the one a flat fee of the longest path's
 * gives, each trade's fee is that of the levels it crosses (walked here from the attachments),
 * buyers' fees and the book's add up, and no buyer pays more than under the flat fee (itself
 * within every limit, the copper plate's rule). */
static void level_fee_random(void **state)
{
    (void)state;
    uint64_t s = seed_of("level_fee_random");
    uint64_t n_books = env_u64("MGX_BOOKS", 20000);
    mkt_grid_clearing *g = mkt_grid_clearing_new(MAX_PARTS), *h = mkt_grid_clearing_new(MAX_PARTS);
    uint64_t with_levels = 0;
    for (uint64_t k = 0; k < n_books; k++) {
        book b;
        random_book(&s, &b, 0, MAX_PARTS, 1000);
        int64_t lf = 1 + (int64_t)tst_below(&s, 50);
        mkt_topology topo = {b.nodes, b.n_nodes, b.att, b.n_att, lf};
        /* the longest path, by brute force over every pair of nodes */
        int64_t diameter = 0;
        for (uint32_t x = 0; x < b.n_nodes; x++)
            for (uint32_t y = 0; y < b.n_nodes; y++) {
                int64_t d = mkt_topology_levels(&topo, x, y);
                diameter = d > diameter ? d : diameter;
            }
        mkt_params flat = b.p;
        flat.network_fee_uc_per_kwh += lf * diameter;
        assert_int_equal(mkt_clear_grid(g, &b.p, &topo, b.o, b.n, NULL), MKT_OK);
        topo.level_fee_uc_per_kwh = 0;
        assert_int_equal(mkt_clear_grid(h, &flat, &topo, b.o, b.n, NULL), MKT_OK);
        size_t na, nb;
        const mkt_trade *ta = mkt_grid_trades(g, &na), *tb = mkt_grid_trades(h, &nb);
        assert_int_equal(na, nb);
        int64_t fees = 0;
        for (size_t i = 0; i < na; i++) {
            assert_int_equal(ta[i].seller, tb[i].seller);
            assert_int_equal(ta[i].buyer, tb[i].buyer);
            assert_int_equal(ta[i].energy_wh, tb[i].energy_wh);
            assert_int_equal(ta[i].amount_uc, tb[i].amount_uc);
            uint32_t ns = 0, nbuy = 0; /* the root unless attached */
            for (size_t a = 0; a < b.n_att; a++) {
                if (b.att[a].participant == ta[i].seller)
                    ns = b.att[a].node;
                if (b.att[a].participant == ta[i].buyer)
                    nbuy = b.att[a].node;
            }
            /* levels by walking both up to their common ancestor */
            int64_t levels = 0;
            uint32_t x = ns, y = nbuy;
            while (x != y) {
                if (x > y) /* parents come first: the larger index is never the ancestor */
                    x = b.nodes[x].parent;
                else
                    y = b.nodes[y].parent;
                levels++;
            }
            with_levels += levels > 0;
            int64_t fee = (int64_t)((__int128)ta[i].energy_wh *
                                    (b.p.network_fee_uc_per_kwh + lf * levels) / 1000);
            assert_int_equal(ta[i].fee_uc, fee);
            assert_true(ta[i].fee_uc <= tb[i].fee_uc);
            fees += fee;
        }
        assert_int_equal(mkt_grid_market_summary(g)->fees_uc, fees);
        const mkt_participant_result *pa = mkt_grid_participants(g, &na);
        int64_t paid = 0;
        for (size_t r = 0; r < na; r++)
            paid += pa[r].fee_paid_uc;
        assert_int_equal(paid, fees);
        /* every other field as with the flat fee; only the fees differ */
        const mkt_participant_result *pb = mkt_grid_participants(h, &nb);
        for (size_t r = 0; r < na; r++) {
            mkt_participant_result x = pa[r], y = pb[r];
            assert_true(x.fee_paid_uc <= y.fee_paid_uc);
            x.fee_paid_uc = y.fee_paid_uc = 0;
            assert_memory_equal(&x, &y, sizeof x);
        }
    }
    printf("# %llu books with a level fee: %llu trades across levels\n",
           (unsigned long long)n_books, (unsigned long long)with_levels);
    assert_true(with_levels > n_books / 20);
    mkt_grid_clearing_free(g);
    mkt_grid_clearing_free(h);
}

/* Unlimited or loose limits: exactly mkt_clear's result. */
static void unlimited_is_copper_plate(void **state)
{
    (void)state;
    uint64_t s = seed_of("unlimited_is_copper_plate");
    uint64_t n_books = env_u64("MGX_BOOKS", 20000);
    mkt_grid_clearing *g = mkt_grid_clearing_new(MAX_PARTS);
    mkt_clearing *c = mkt_clearing_new(MAX_PARTS);
    for (uint64_t k = 0; k < n_books; k++) {
        book b;
        random_book(&s, &b, 1 + (int)(k % 2), MAX_PARTS, 1000);
        mkt_topology topo = {b.nodes, b.n_nodes, b.att, b.n_att, 0};
        if (k % 7 == 0)
            topo.n_nodes = 1, topo.n_attach = 0; /* everyone at the transformer */
        assert_int_equal(mkt_clear_grid(g, &b.p, &topo, b.o, b.n, NULL), MKT_OK);
        assert_int_equal(mkt_clear(c, &b.p, b.o, b.n, NULL), MKT_OK);
        assert_false(mkt_grid_summary_of(g)->congested);
        size_t na, nb;
        const mkt_trade *ta = mkt_grid_trades(g, &na), *tb = mkt_clearing_trades(c, &nb);
        assert_int_equal(na, nb);
        if (na)
            assert_memory_equal(ta, tb, na * sizeof *ta);
        const mkt_participant_result *pa = mkt_grid_participants(g, &na);
        const mkt_participant_result *pb = mkt_clearing_participants(c, &nb);
        assert_int_equal(na, nb);
        if (na)
            assert_memory_equal(pa, pb, na * sizeof *pa);
        assert_memory_equal(mkt_grid_market_summary(g), mkt_clearing_summary(c),
                            sizeof(mkt_summary));
    }
    mkt_grid_clearing_free(g);
    mkt_clearing_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(worked_example),
        cmocka_unit_test(import_limit_deeper_tree),
        cmocka_unit_test(level_fee_example),
        cmocka_unit_test(level_fee_random),
        cmocka_unit_test(gains_before_volume),
        cmocka_unit_test(rejects_bad_topology),
        cmocka_unit_test(unlimited_is_copper_plate),
        cmocka_unit_test(random_trees),
        cmocka_unit_test(wide_trees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
