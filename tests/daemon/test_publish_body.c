/*
 * The bodies `mgx controller` publishes after clearing, minimised (issue 19,
 * daemon/publish_body.h), on a real clearing by the market library:
 *   - a home's trades message names no counterparty, only its side of each trade;
 *   - the public result withholds the local volume, money and trade count when fewer than k
 *     homes sold or bought, and a grid volume when fewer than k homes were on its side; with
 *     k = 1 everything is public; an interval without trades withholds nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/publish_body.h"
#include "mgx/market.h"

/* One seller (home-s) and three buyers: the seller's figures are the interval's. */
static const char *const NAMES[] = {"", "home-s", "home-b1", "home-b2", "home-b3"};

typedef struct {
    mkt_clearing *c;
    ctl_interval_result r;
    ctl_trade_row rows[16];
    size_t n_rows;
    ctl_result_groups g;
} cleared;

static void clear_book(cleared *x, int n_sellers)
{
    memset(x, 0, sizeof *x);
    mkt_order o[4];
    memset(o, 0, sizeof o);
    /* buyers need 600 Wh each; the sellers together offer exactly what the buyers need */
    int64_t offer = n_sellers < 4 ? (4 - n_sellers) * 600 / n_sellers : 600;
    for (int i = 0; i < 4; i++) {
        o[i].participant = (uint64_t)i + 1;
        o[i].side = i < n_sellers ? MKT_SELL : MKT_BUY;
        o[i].steps[0] = o[i].side == MKT_SELL ? (mkt_step){offer, 100000}
                                              : (mkt_step){600, 200000};
        o[i].n_steps = 1;
    }
    mkt_params p = {MKT_PAY_AS_CLEAR, 80000, 300000, 10000, 0};
    x->c = mkt_clearing_new(4);
    assert_non_null(x->c);
    assert_int_equal(mkt_clear(x->c, &p, o, 4, NULL), MKT_OK);
    x->r.interval_id = 1900000;
    x->r.start_utc = 1900000 * 900LL;
    x->r.length_s = 900;
    x->r.params = p;
    x->r.summary = *mkt_clearing_summary(x->c);
    size_t nt, np;
    const mkt_trade *t = mkt_clearing_trades(x->c, &nt);
    x->r.n_trades = nt;
    x->r.n_orders = 4;
    assert_true(nt <= 16);
    for (size_t i = 0; i < nt; i++) {
        snprintf(x->rows[i].seller, sizeof x->rows[i].seller, "%s", NAMES[t[i].seller]);
        snprintf(x->rows[i].buyer, sizeof x->rows[i].buyer, "%s", NAMES[t[i].buyer]);
        x->rows[i].t = t[i];
    }
    x->n_rows = nt;
    const mkt_participant_result *pr = mkt_clearing_participants(x->c, &np);
    for (size_t i = 0; i < np; i++)
        ctl_result_groups_add(&x->g, &pr[i]);
}

static char *dump(json_t *j)
{
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_non_null(s);
    return s;
}

static void trades_name_no_counterparty(void **state)
{
    (void)state;
    cleared x;
    clear_book(&x, 1);
    assert_int_equal(x.r.n_trades, 3); /* the seller sells to each buyer */
    size_t np;
    const mkt_participant_result *pr = mkt_clearing_participants(x.c, &np);
    for (size_t i = 0; i < np; i++) {
        const char *me = NAMES[pr[i].participant];
        char *s = dump(ctl_trades_body(me, &x.r, &pr[i], x.rows, x.n_rows));
        for (size_t k = 1; k < 5; k++) {
            char quoted[32];
            snprintf(quoted, sizeof quoted, "\"%s\"", NAMES[k]);
            if (strcmp(NAMES[k], me) != 0 && strstr(s, quoted))
                fail_msg("%s's trades name %s: %s", me, NAMES[k], s);
        }
        assert_null(strstr(s, "\"seller\""));
        assert_null(strstr(s, "\"buyer\""));
        json_t *j = json_loads(s, 0, NULL);
        json_t *tr = json_object_get(j, "trades");
        /* the seller sees its 3 trades, each buyer its 1, from its own side */
        assert_int_equal(json_array_size(tr), pr[i].side == MKT_SELL ? 3 : 1);
        for (size_t k = 0; k < json_array_size(tr); k++)
            assert_string_equal(json_string_value(json_object_get(json_array_get(tr, k), "side")),
                                pr[i].side == MKT_SELL ? "sell" : "buy");
        json_decref(j);
        free(s);
    }
    mkt_clearing_free(x.c);
}

/* Issue 18: a buyer's congestion rent (a grid-aware clearing) is in its own trades and as
 * congestion_paid_uc, never in the seller's; without rent the bodies have neither key. */
static void trades_show_congestion_to_the_buyer(void **state)
{
    (void)state;
    cleared x;
    clear_book(&x, 1);
    size_t np;
    const mkt_participant_result *pr = mkt_clearing_participants(x.c, &np);
    for (size_t i = 0; i < np; i++) {
        char *s = dump(ctl_trades_body(NAMES[pr[i].participant], &x.r, &pr[i], x.rows, x.n_rows));
        assert_null(strstr(s, "congestion"));
        free(s);
    }
    x.rows[0].congestion_uc = 1234;
    for (size_t i = 0; i < np; i++) {
        const char *me = NAMES[pr[i].participant];
        char *s = dump(ctl_trades_body(me, &x.r, &pr[i], x.rows, x.n_rows));
        json_t *j = json_loads(s, 0, NULL);
        free(s);
        assert_non_null(j);
        json_t *paid = json_object_get(j, "congestion_paid_uc");
        if (strcmp(me, x.rows[0].buyer) == 0) {
            assert_int_equal(json_integer_value(paid), 1234);
            json_t *t0 = json_array_get(json_object_get(j, "trades"), 0);
            assert_int_equal(json_integer_value(json_object_get(t0, "congestion_uc")), 1234);
        } else {
            assert_null(paid);
        }
        json_decref(j);
    }
    mkt_clearing_free(x.c);
}

static json_t *result(const cleared *x, int64_t k)
{
    char *s = dump(ctl_result_body("street", &x->r, &x->g, k));
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    assert_non_null(j);
    return j;
}

static void results_above_group_size(void **state)
{
    (void)state;
    cleared x;
    clear_book(&x, 1); /* 1 seller, 3 buyers */
    assert_int_equal(x.g.sellers, 1);
    assert_int_equal(x.g.buyers, 3);
    assert_int_equal(x.g.sold, 1);
    assert_int_equal(x.g.bought, 3);
    assert_true(x.r.summary.matched_wh > 0);
    /* k = 3: matched_wh would be the one seller's sales; grid_sold_wh its unsold offer */
    json_t *j = result(&x, 3);
    assert_true(json_is_null(json_object_get(j, "matched_wh")));
    assert_true(json_is_null(json_object_get(j, "trades")));
    assert_true(json_is_null(json_object_get(j, "local_value_uc")));
    assert_true(json_is_null(json_object_get(j, "fees_uc")));
    assert_true(json_is_null(json_object_get(j, "grid_sold_wh")));
    assert_int_equal(json_integer_value(json_object_get(j, "grid_bought_wh")),
                     x.r.summary.grid_bought_wh); /* three buyers hide each other */
    assert_int_equal(json_array_size(json_object_get(j, "withheld")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "min_group_size")), 3);
    assert_true(json_is_integer(json_object_get(j, "price_uc_per_kwh")));
    json_decref(j);
    /* k = 1: all public, as before */
    j = result(&x, 1);
    assert_int_equal(json_integer_value(json_object_get(j, "matched_wh")),
                     x.r.summary.matched_wh);
    assert_int_equal(json_integer_value(json_object_get(j, "trades")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "grid_sold_wh")),
                     x.r.summary.grid_sold_wh);
    assert_int_equal(json_array_size(json_object_get(j, "withheld")), 0);
    json_decref(j);
    mkt_clearing_free(x.c);

    /* 2 sellers, 2 buyers: below k = 3 on both sides, everything with a contributor withheld */
    clear_book(&x, 2);
    assert_int_equal(ctl_result_withheld(&x.g, 3),
                     CTL_WITHHOLD_LOCAL | CTL_WITHHOLD_GRID_SOLD | CTL_WITHHOLD_GRID_BOUGHT);
    assert_int_equal(ctl_result_withheld(&x.g, 2), 0);
    mkt_clearing_free(x.c);

    /* only sellers: nothing traded, so 0 is everyone's and nothing local is withheld */
    clear_book(&x, 4);
    assert_int_equal(x.r.n_trades, 0);
    assert_int_equal(ctl_result_withheld(&x.g, 3), 0);
    assert_int_equal(ctl_result_withheld(&x.g, 5), CTL_WITHHOLD_GRID_SOLD);
    mkt_clearing_free(x.c);
}

/* The feeder limits in the result body: nothing for a copper plate, "congested": false when no
 * limit binds, and each node's zone, price and binding when one does; never a node's flow. */
static void results_show_zones(void **state)
{
    (void)state;
    cleared x;
    clear_book(&x, 2);
    /* the root, feeder A under it held at its export limit in a zone of its own, B free */
    ctl_grid_node_row nodes[3] = {{0, "trafo", 0, 225000, 0, MKT_BIND_NONE},
                                  {1, "A", 1000, 100000, 1, MKT_BIND_EXPORT},
                                  {2, "B", -1000, 225000, 0, MKT_BIND_NONE}};
    json_t *plain = result(&x, 1), *j = result(&x, 1);
    assert_int_equal(ctl_result_body_add_grid(j, nodes, 0), 0);
    assert_true(json_equal(plain, j));
    assert_null(json_object_get(j, "congested"));

    nodes[1].binding = MKT_BIND_NONE;
    assert_int_equal(ctl_result_body_add_grid(j, nodes, 3), 0);
    assert_true(json_is_false(json_object_get(j, "congested")));
    assert_null(json_object_get(j, "zones"));
    json_decref(j);

    nodes[1].binding = MKT_BIND_EXPORT;
    j = result(&x, 1);
    assert_int_equal(ctl_result_body_add_grid(j, nodes, 3), 0);
    assert_true(json_is_true(json_object_get(j, "congested")));
    json_t *zones = json_object_get(j, "zones");
    assert_int_equal(json_array_size(zones), 3);
    static const char *const WANT[3][3] = {
        {"trafo", "trafo", "none"}, {"A", "A", "export"}, {"B", "trafo", "none"}};
    for (size_t i = 0; i < 3; i++) {
        json_t *z = json_array_get(zones, i);
        assert_string_equal(json_string_value(json_object_get(z, "node")), WANT[i][0]);
        assert_string_equal(json_string_value(json_object_get(z, "zone")), WANT[i][1]);
        assert_string_equal(json_string_value(json_object_get(z, "binding")), WANT[i][2]);
        assert_int_equal(json_integer_value(json_object_get(z, "price_uc_per_kwh")),
                         nodes[i].price_uc_per_kwh);
        assert_null(json_object_get(z, "flow_wh"));
        assert_int_equal(json_object_size(z), 4);
    }
    json_decref(j);
    json_decref(plain);
    mkt_clearing_free(x.c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trades_name_no_counterparty),
        cmocka_unit_test(trades_show_congestion_to_the_buyer),
        cmocka_unit_test(results_above_group_size),
        cmocka_unit_test(results_show_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
