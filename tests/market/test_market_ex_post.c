/*
 * Known answers of post-delivery clearing inputs (market/src/ex_post.c): the timing names, how
 * a metered net and a standing preference become an order (tranches, the last step taking the
 * rest, the grid's terms without a preference, the seller floor feed-in + 1 uc/Wh and the buyer
 * cap at retail), and where bad input is reported. The property tests of individual
 * rationality are in test_market_ir.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mgx/ex_post.h"
#include "mgx/market.h"

/* F = 80,000, R = 300,000, fee 20,000 uc/kWh: the seller floor is 81,000. */
static const mkt_params P = {.mechanism = MKT_PAY_AS_CLEAR,
                             .feed_in_uc_per_kwh = 80000,
                             .retail_uc_per_kwh = 300000,
                             .network_fee_uc_per_kwh = 20000};

static void timing_names(void **state)
{
    (void)state;
    mkt_timing t = MKT_EX_POST;
    assert_int_equal(mkt_timing_parse("ex_ante", &t), MKT_OK);
    assert_int_equal(t, MKT_EX_ANTE);
    assert_int_equal(mkt_timing_parse("ex_post", &t), MKT_OK);
    assert_int_equal(t, MKT_EX_POST);
    assert_int_equal(mkt_timing_parse("ex-post", &t), MKT_E_INVAL);
    assert_int_equal(mkt_timing_parse("", &t), MKT_E_INVAL);
    assert_int_equal(mkt_timing_parse(NULL, &t), MKT_E_INVAL);
    assert_string_equal(mkt_timing_name(MKT_EX_ANTE), "ex_ante");
    assert_string_equal(mkt_timing_name(MKT_EX_POST), "ex_post");
}

static void expect_step(const mkt_order *o, uint32_t i, int64_t e, int64_t p)
{
    assert_true(i < o->n_steps);
    assert_int_equal(o->steps[i].energy_wh, e);
    assert_int_equal(o->steps[i].price_uc_per_kwh, p);
}

static void grid_terms(void **state)
{
    (void)state;
    /* No preference: a seller at feed-in + 1,000 (81,000), a buyer at retail (300,000); an
     * idle home gets no order. */
    mkt_ex_post_home h[] = {{7, 1500, NULL}, {3, 0, NULL}, {5, -250, NULL}};
    mkt_order o[3];
    size_t n = 99;
    assert_int_equal(mkt_ex_post_orders(&P, h, 3, o, 3, &n, NULL), MKT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(o[0].participant, 7);
    assert_int_equal(o[0].side, MKT_SELL);
    assert_int_equal(o[0].n_steps, 1);
    expect_step(&o[0], 0, 1500, 81000);
    assert_int_equal(o[1].participant, 5);
    assert_int_equal(o[1].side, MKT_BUY);
    assert_int_equal(o[1].n_steps, 1);
    expect_step(&o[1], 0, 250, 300000);
    /* a preference with no steps on the side in use is the same */
    mkt_preference only_buy = {.n_buy_steps = 1, .buy = {{100, 200000}}};
    h[0].pref = &only_buy;
    assert_int_equal(mkt_ex_post_orders(&P, h, 3, o, 3, &n, NULL), MKT_OK);
    expect_step(&o[0], 0, 1500, 81000);
}

static void tranches(void **state)
{
    (void)state;
    /* sell: 400 Wh at 50,000 (raised to 81,000), 300 at 150,000, the rest at 200,000 whatever
     * the last step says. A 1,000 Wh surplus: 400 + 300 + 300. A 500 Wh one: 400 + 100, the
     * third tranche never reached. buy: 200 Wh at 400,000 (lowered to 300,000), the rest at
     * 120,000. */
    mkt_preference pr = {.n_sell_steps = 3,
                         .sell = {{400, 50000}, {300, 150000}, {1, 200000}},
                         .n_buy_steps = 2,
                         .buy = {{200, 400000}, {0, 120000}}};
    mkt_ex_post_home h[] = {{1, 1000, &pr}, {2, 500, &pr}, {3, -150, &pr}, {4, -900, &pr}};
    mkt_order o[4];
    size_t n;
    assert_int_equal(mkt_ex_post_orders(&P, h, 4, o, 4, &n, NULL), MKT_OK);
    assert_int_equal(n, 4);
    assert_int_equal(o[0].n_steps, 3);
    expect_step(&o[0], 0, 400, 81000);
    expect_step(&o[0], 1, 300, 150000);
    expect_step(&o[0], 2, 300, 200000);
    assert_int_equal(o[1].n_steps, 2);
    expect_step(&o[1], 0, 400, 81000);
    expect_step(&o[1], 1, 100, 150000);
    assert_int_equal(o[2].n_steps, 1);
    expect_step(&o[2], 0, 150, 300000);
    assert_int_equal(o[3].n_steps, 2);
    expect_step(&o[3], 0, 200, 300000);
    expect_step(&o[3], 1, 700, 120000);
}

static void expect_bad(const mkt_params *p, const mkt_ex_post_home *h, size_t n_h, size_t cap,
                       int rc, size_t at_order, int at_step)
{
    mkt_order o[4];
    memset(o, 0xA5, sizeof o);
    size_t n = 77;
    mkt_error_at at;
    assert_int_equal(mkt_ex_post_orders(p, h, n_h, o, cap, &n, &at), rc);
    assert_int_equal(n, 0);
    assert_int_equal(at.order_index, at_order);
    assert_int_equal(at.step_index, at_step);
    assert_int_equal(o[0].participant, UINT64_C(0xA5A5A5A5A5A5A5A5)); /* untouched */
}

static void errors(void **state)
{
    (void)state;
    mkt_preference pr = {.n_sell_steps = 2, .sell = {{0, 90000}, {1, 90000}}};
    mkt_ex_post_home h[] = {{1, 10, NULL}, {2, -10, &pr}};
    expect_bad(&P, h, 2, 4, MKT_E_ENERGY, 1, 0); /* a zero tranche that is not the last */
    pr.sell[0].energy_wh = 5;
    pr.sell[1].price_uc_per_kwh = -1;
    expect_bad(&P, h, 2, 4, MKT_E_PRICE, 1, 1);
    pr.sell[1].price_uc_per_kwh = 0;
    pr.n_buy_steps = 1;
    pr.buy[0].price_uc_per_kwh = MKT_PRICE_MAX_UC_PER_KWH + 1;
    expect_bad(&P, h, 2, 4, MKT_E_PRICE, 1, MKT_PREF_MAX_STEPS + 0);
    pr.buy[0].price_uc_per_kwh = 1;
    pr.n_buy_steps = MKT_PREF_MAX_STEPS + 1;
    expect_bad(&P, h, 2, 4, MKT_E_STEPS, 1, -1);
    pr.n_buy_steps = 1;
    h[0].net_export_wh = MKT_ENERGY_MAX_WH + 1;
    expect_bad(&P, h, 2, 4, MKT_E_ENERGY, 0, -1);
    h[0].net_export_wh = -MKT_ENERGY_MAX_WH - 1;
    expect_bad(&P, h, 2, 4, MKT_E_ENERGY, 0, -1);
    h[0].net_export_wh = 10;
    expect_bad(&P, h, 2, 1, MKT_E_TOO_MANY, MKT_AT_BOOK, -1);
    mkt_params p = P;
    p.feed_in_uc_per_kwh = p.retail_uc_per_kwh + 1;
    expect_bad(&p, h, 2, 4, MKT_E_TARIFFS, MKT_AT_BOOK, -1);
    p.retail_uc_per_kwh = MKT_PRICE_MAX_UC_PER_KWH;
    p.feed_in_uc_per_kwh = MKT_PRICE_MAX_UC_PER_KWH - 999;
    expect_bad(&p, h, 2, 4, MKT_E_PRICE, MKT_AT_BOOK, -1);
    /* the edge itself is fine */
    p.feed_in_uc_per_kwh = MKT_PRICE_MAX_UC_PER_KWH - 1000;
    mkt_order o[2];
    size_t n;
    assert_int_equal(mkt_ex_post_orders(&p, h, 2, o, 2, &n, NULL), MKT_OK);
    expect_step(&o[0], 0, 10, MKT_PRICE_MAX_UC_PER_KWH);
    /* nothing to write needs no output array */
    mkt_ex_post_home idle = {1, 0, NULL};
    assert_int_equal(mkt_ex_post_orders(&P, &idle, 1, NULL, 0, &n, NULL), MKT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(mkt_ex_post_orders(&P, NULL, 1, o, 2, &n, NULL), MKT_E_INVAL);
}

/* The worked example of docs/market-rules.md ("Post-delivery clearing"), cleared end to end.
 * F 80000, R 300000, fee 20000. Home 1 +1500 Wh, no preference: sells 1500 at 81000. Home 2
 * -1000 Wh, 600 at 250000 then the rest at 150000 (effective 230000 and 130000). Home 3 -300 Wh,
 * no preference: 300 at R (effective 280000). Home 4 idle. 1300 Wh of 1500 trade locally.
 * Pay-as-clear: L = 81000, U = min(280000, 130000, 81000 [partial ask]) = 81000; by id:
 *   1->2 1000 Wh (81000 uc, fee 20000), 1->3 300 Wh (24300, 6000); grid: 200 Wh at F = 16000.
 * Pay-as-bid: 1->3 300 @280000 (84000, 6000), 1->2 600 @230000 (138000, 12000),
 *   1->2 400 @130000 (52000, 8000).
 * Grid-only bills: home 1 120000, home 2 300000, home 3 90000; everyone at or better. */
static void worked_example(void **state)
{
    (void)state;
    mkt_preference pb = {.n_buy_steps = 2, .buy = {{600, 250000}, {0, 150000}}};
    mkt_ex_post_home h[] = {{1, 1500, NULL}, {2, -1000, &pb}, {3, -300, NULL}, {4, 0, NULL}};
    mkt_clearing *c = mkt_clearing_new(4);
    assert_non_null(c);
    for (int m = 0; m < 2; m++) {
        mkt_params p = P;
        p.mechanism = (mkt_mechanism)m;
        mkt_order o[4];
        size_t n, nt, np;
        assert_int_equal(mkt_ex_post_orders(&p, h, 4, o, 4, &n, NULL), MKT_OK);
        assert_int_equal(n, 3);
        assert_int_equal(mkt_clear(c, &p, o, n, NULL), MKT_OK);
        const mkt_trade *t = mkt_clearing_trades(c, &nt);
        const mkt_participant_result *r = mkt_clearing_participants(c, &np);
        assert_int_equal(mkt_clearing_summary(c)->matched_wh, 1300);
        assert_int_equal(np, 3);
        int clear = m == MKT_PAY_AS_CLEAR;
        const int64_t want[][4] = {{2, 1000, 81000, 81000}, {3, 300, 81000, 24300},
                                   {3, 300, 280000, 84000}, {2, 600, 230000, 138000},
                                   {2, 400, 130000, 52000}};
        size_t first = clear ? 0 : 2, count = clear ? 2 : 3;
        assert_int_equal(nt, count);
        for (size_t i = 0; i < count; i++) {
            assert_int_equal(t[i].seller, 1);
            assert_int_equal(t[i].buyer, want[first + i][0]);
            assert_int_equal(t[i].energy_wh, want[first + i][1]);
            assert_int_equal(t[i].price_uc_per_kwh, want[first + i][2]);
            assert_int_equal(t[i].amount_uc, want[first + i][3]);
            assert_int_equal(t[i].fee_uc, want[first + i][1] * 20);
        }
        assert_int_equal(r[0].local_received_uc + r[0].grid_received_uc, clear ? 121300 : 290000);
        assert_int_equal(r[0].grid_received_uc, 16000);
        assert_int_equal(r[1].local_paid_uc + r[1].fee_paid_uc, clear ? 101000 : 210000);
        assert_int_equal(r[2].local_paid_uc + r[2].fee_paid_uc, clear ? 30300 : 90000);
    }
    mkt_clearing_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timing_names),
        cmocka_unit_test(grid_terms),
        cmocka_unit_test(tranches),
        cmocka_unit_test(errors),
        cmocka_unit_test(worked_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
