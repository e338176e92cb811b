/*
 * Known-answer tests of reconciliation (mgx/reconcile.h), each worked by hand in the comments:
 * pro rata on the seller then the buyer side with the largest-remainder Wh, money as a fraction
 * of the contract, the rounding account, flagged and missing readings, meter-only participants
 * and every rejection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mgx/meter.h"
#include "mgx/reconcile.h"

static mkt_trade trade(uint64_t s, uint64_t b, int64_t wh, int64_t price, int64_t fee_rate)
{
    mkt_trade t = {s, b, wh, price, 0, 0};
    assert_int_equal(mkt_amount_uc(wh, price, &t.amount_uc), 0);
    assert_int_equal(mkt_amount_uc(wh, fee_rate, &t.fee_uc), 0);
    return t;
}

static const stl_position *pos(const stl_reconciler *r, uint64_t id)
{
    size_t n;
    const stl_position *p = stl_reconciled_positions(r, &n);
    for (size_t i = 0; i < n; i++)
        if (p[i].participant == id)
            return &p[i];
    fail_msg("no position for %llu", (unsigned long long)id);
    return NULL;
}

static void street(void **state)
{
    (void)state;
    /* F = 80000, R = 300000, fee 10000 uc/kWh.
     *   t0 alice(1) -> carol(3) 800 Wh @120000: amount 96000, fee 8000
     *   t1 alice(1) -> dave(4)  200 Wh @120000: amount 24000, fee 2000
     *   t2 bob(2)   -> dave(4)  300 Wh @120000: amount 36000, fee 3000
     * Meters: alice exports 700, bob 300, carol imports 900, dave 400.
     * Sellers: alice sold 1000 > 700: t0 800*700/1000 = 560, t1 200*700/1000 = 140 (no
     * remainders). Buyers: dave has 140 + 300 = 440 > 400: t1 140*400/440 = 127 rem 120,
     * t2 300*400/440 = 272 rem 320; 1 Wh left goes to the larger remainder, t2: 273.
     * Money: t0 560/800 of 96000 = 67200, of 8000 = 5600, of 104000 = 72800;
     *        t1 127/200 of 24000 = 15240, of 2000 = 1270, of 26000 = 16510;
     *        t2 273/300 of 36000 = 32760, of 3000 = 2730, of 39000 = 35490.
     * Grid: alice delivered 560 + 127 = 687 of her 700 Wh (dave's cap cut t1 after hers):
     * 13 Wh surplus * 80000 / 1000 = 1040; bob 27 Wh surplus = 2160; carol 340 Wh short *
     * 300000 / 1000 = 102000. (Two passes are not a max flow: alice's 13 Wh could have gone to
     * carol; docs/settlement-rules.md says why the rule stays simple.) */
    stl_tariffs tf = {80000, 300000, 10000};
    mkt_trade t[3] = {trade(1, 3, 800, 120000, 10000), trade(1, 4, 200, 120000, 10000),
                      trade(2, 4, 300, 120000, 10000)};
    stl_metered m[4] = {{4, 400, 0, 0, 0, 0}, {3, 900, 0, 0, 0, 0}, {2, 0, 300, 0, 0, 0}, {1, 0, 700, 0, 0, 0}};
    stl_reconciler *r = stl_reconciler_new(8, 8);
    assert_non_null(r);
    assert_int_equal(stl_reconcile(r, &tf, t, 3, m, 4, NULL), STL_OK);
    size_t n;
    const stl_settled_trade *s = stl_reconciled_trades(r, &n);
    assert_int_equal(n, 3);
    assert_int_equal(s[0].delivered_wh, 560);
    assert_int_equal(s[1].delivered_wh, 127);
    assert_int_equal(s[2].delivered_wh, 273);
    assert_int_equal(s[0].received_uc, 67200);
    assert_int_equal(s[0].fee_uc, 5600);
    assert_int_equal(s[0].paid_uc, 72800);
    assert_int_equal(s[1].received_uc, 15240);
    assert_int_equal(s[1].fee_uc, 1270);
    assert_int_equal(s[1].paid_uc, 16510);
    assert_int_equal(s[2].received_uc, 32760);
    assert_int_equal(s[2].fee_uc, 2730);
    assert_int_equal(s[2].paid_uc, 35490);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s[i].rounding_uc, 0);
    const stl_position *alice = pos(r, 1), *bob = pos(r, 2), *carol = pos(r, 3), *dave = pos(r, 4);
    assert_int_equal(alice->local_sold_wh, 687);
    assert_int_equal(alice->grid_sold_wh, 13);
    assert_int_equal(alice->grid_received_uc, 1040);
    assert_int_equal(alice->contracted_sold_wh, 1000);
    assert_int_equal(alice->local_received_uc, 82440);
    assert_int_equal(bob->local_sold_wh, 273);
    assert_int_equal(bob->grid_sold_wh, 27);
    assert_int_equal(bob->grid_received_uc, 2160);
    assert_int_equal(carol->local_bought_wh, 560);
    assert_int_equal(carol->grid_bought_wh, 340);
    assert_int_equal(carol->grid_paid_uc, 102000);
    assert_int_equal(carol->fee_paid_uc, 5600);
    assert_int_equal(dave->local_bought_wh, 400);
    assert_int_equal(dave->grid_bought_wh, 0);
    assert_int_equal(dave->local_paid_uc, 52000);
    assert_int_equal(dave->fee_paid_uc, 4000);
    const stl_totals *tot = stl_reconciled_totals(r);
    assert_int_equal(tot->contracted_wh, 1300);
    assert_int_equal(tot->delivered_wh, 960);
    assert_int_equal(tot->paid_uc, 124800);
    assert_int_equal(tot->received_uc, 115200);
    assert_int_equal(tot->fees_uc, 9600);
    assert_int_equal(tot->rounding_uc, 0);
    assert_int_equal(tot->grid_bought_wh, 340);
    assert_int_equal(tot->grid_sold_wh, 40);
    assert_int_equal(tot->grid_paid_uc, 102000);
    assert_int_equal(tot->grid_received_uc, 3200);
    assert_int_equal(tot->n_positions, 4);
    assert_int_equal(tot->n_held, 0);
    stl_reconciler_free(r);
}

static void rounding_account(void **state)
{
    (void)state;
    /* 2 Wh @500 uc/kWh: amount floor(2*500/1000) = 1; fee rate 500: fee 1. The seller exports
     * only 1 Wh: received floor(1*1/2) = 0, fee floor(1*1/2) = 0, paid floor(2*1/2) = 1, so
     * 1 uc goes to the rounding account. The buyer imported 5: 4 Wh from the grid at 1000 uc/kWh
     * = 4 uc. */
    stl_tariffs tf = {0, 1000, 500};
    mkt_trade t = trade(10, 20, 2, 500, 500);
    stl_metered m[2] = {{10, 0, 1, 0, 0, 0}, {20, 5, 0, 0, 0, 0}};
    stl_reconciler *r = stl_reconciler_new(1, 2);
    assert_int_equal(stl_reconcile(r, &tf, &t, 1, m, 2, NULL), STL_OK);
    const stl_settled_trade *s = stl_reconciled_trades(r, NULL);
    assert_int_equal(s->delivered_wh, 1);
    assert_int_equal(s->received_uc, 0);
    assert_int_equal(s->fee_uc, 0);
    assert_int_equal(s->paid_uc, 1);
    assert_int_equal(s->rounding_uc, 1);
    assert_int_equal(stl_reconciled_totals(r)->rounding_uc, 1);
    assert_int_equal(pos(r, 20)->grid_paid_uc, 4);
    stl_reconciler_free(r);
}

static void ties_to_lowest_trade_index(void **state)
{
    (void)state;
    /* One seller exports 1 Wh against two 1 Wh trades: both shares are 0 rem 1 (of 2); the
     * leftover Wh goes to trade 0 even though its buyer (9) has the larger id. */
    stl_tariffs tf = {0, 0, 0};
    mkt_trade t[2] = {trade(1, 9, 1, 0, 0), trade(1, 8, 1, 0, 0)};
    stl_metered m[3] = {{1, 0, 1, 0, 0, 0}, {9, 1, 0, 0, 0, 0}, {8, 1, 0, 0, 0, 0}};
    stl_reconciler *r = stl_reconciler_new(2, 3);
    assert_int_equal(stl_reconcile(r, &tf, t, 2, m, 3, NULL), STL_OK);
    const stl_settled_trade *s = stl_reconciled_trades(r, NULL);
    assert_int_equal(s[0].delivered_wh, 1);
    assert_int_equal(s[1].delivered_wh, 0);
    /* buyer 8 received nothing locally: its 1 Wh came from the grid */
    assert_int_equal(pos(r, 8)->grid_bought_wh, 1);
    stl_reconciler_free(r);
}

static void flagged_and_missing(void **state)
{
    (void)state;
    /* alice(1) sells 800 to carol(3) but alice's reading is flagged (a counter jump): nothing
     * is delivered, alice is held with no money, carol's 800 Wh import comes from the grid:
     * 800 * 300000 / 1000 = 240000. bob(2) sells 500 to erin(5), whose reading is flagged:
     * bob's 500 Wh export goes to the grid at 80000: 40000. dave(4) sells 100 to carol but has
     * no reading at all: missing, nothing delivered.
     * frank(7) has only a reading (import 1000, export 200): 300000 + 16000 uc of grid legs. */
    stl_tariffs tf = {80000, 300000, 0};
    mkt_trade t[3] = {trade(1, 3, 800, 120000, 0), trade(2, 5, 500, 120000, 0),
                      trade(4, 3, 100, 120000, 0)};
    stl_metered m[5] = {{1, 0, 1000, MTR_Q_JUMP, 0, 0}, {2, 0, 500, 0, 0, 0}, {3, 800, 0, 0, 0, 0},
                        {5, 500, 0, MTR_Q_COMM, 0, 0}, {7, 1000, 200, 0, 0, 0}};
    stl_reconciler *r = stl_reconciler_new(3, 5);
    assert_int_equal(stl_reconcile(r, &tf, t, 3, m, 5, NULL), STL_OK);
    const stl_settled_trade *s = stl_reconciled_trades(r, NULL);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s[i].delivered_wh, 0);
        assert_int_equal(s[i].paid_uc, 0);
        assert_int_equal(s[i].received_uc, 0);
    }
    const stl_position *alice = pos(r, 1);
    assert_int_equal(alice->status, STL_POS_FLAGGED);
    assert_int_equal(alice->quality, MTR_Q_JUMP);
    assert_int_equal(alice->export_wh, 1000); /* kept for the record */
    assert_int_equal(alice->grid_sold_wh, 0);
    assert_int_equal(alice->grid_received_uc, 0);
    assert_int_equal(pos(r, 3)->grid_bought_wh, 800);
    assert_int_equal(pos(r, 3)->grid_paid_uc, 240000);
    assert_int_equal(pos(r, 2)->grid_sold_wh, 500);
    assert_int_equal(pos(r, 2)->grid_received_uc, 40000);
    assert_int_equal(pos(r, 4)->status, STL_POS_MISSING);
    assert_int_equal(pos(r, 5)->status, STL_POS_FLAGGED);
    assert_int_equal(pos(r, 5)->grid_bought_wh, 0);
    assert_int_equal(pos(r, 7)->grid_paid_uc, 300000);
    assert_int_equal(pos(r, 7)->grid_received_uc, 16000);
    const stl_totals *tot = stl_reconciled_totals(r);
    assert_int_equal(tot->n_held, 3);
    assert_int_equal(tot->n_positions, 6);
    assert_int_equal(tot->delivered_wh, 0);
    assert_int_equal(tot->grid_paid_uc, 540000);
    assert_int_equal(tot->grid_received_uc, 56000);
    stl_reconciler_free(r);
}

static void full_delivery_is_the_contract(void **state)
{
    (void)state;
    /* Meters that cover every contract: settled amounts are the market's to the uc. 333 Wh at
     * 123457 uc/kWh = 41111.181 -> 41111, fee 333 * 777 / 1000 = 258.741 -> 258. */
    stl_tariffs tf = {1, 2, 777};
    mkt_trade t = trade(1, 2, 333, 123457, 777);
    stl_metered m[2] = {{1, 0, 333, 0, 0, 0}, {2, 333, 0, 0, 0, 0}};
    stl_reconciler *r = stl_reconciler_new(1, 2);
    assert_int_equal(stl_reconcile(r, &tf, &t, 1, m, 2, NULL), STL_OK);
    const stl_settled_trade *s = stl_reconciled_trades(r, NULL);
    assert_int_equal(s->received_uc, 41111);
    assert_int_equal(s->fee_uc, 258);
    assert_int_equal(s->paid_uc, 41369);
    assert_int_equal(s->rounding_uc, 0);
    stl_reconciler_free(r);
}

/* Issue 18: a grid-aware market's trade carries the fees per level and the congestion rent in
 * its fee, above the flat rate; it settles pro rata like any fee and the trade balances. The
 * docs' worked example (docs/controller.md, "Topology"): alice -> carol 1000 Wh at 100000,
 * rent 125000, no flat fee; carol's meter shows 600 Wh: paid floor(225000 * 600 / 1000) =
 * 135000, received floor(100000 * 0.6) = 60000, fee floor(125000 * 0.6) = 75000, rounding 0. */
static void fee_above_the_flat_rate(void **state)
{
    (void)state;
    stl_tariffs tf = {80000, 300000, 0};
    mkt_trade t = trade(1, 3, 1000, 100000, 0);
    t.fee_uc = 125000;
    stl_metered m[2] = {{1, 0, 3000, 0, 0, 0}, {3, 600, 0, 0, 0, 0}};
    stl_reconciler *r = stl_reconciler_new(1, 2);
    assert_int_equal(stl_reconcile(r, &tf, &t, 1, m, 2, NULL), STL_OK);
    const stl_settled_trade *s = stl_reconciled_trades(r, NULL);
    assert_int_equal(s->contract_fee_uc, 125000);
    assert_int_equal(s->delivered_wh, 600);
    assert_int_equal(s->paid_uc, 135000);
    assert_int_equal(s->received_uc, 60000);
    assert_int_equal(s->fee_uc, 75000);
    assert_int_equal(s->rounding_uc, 0);
    const stl_totals *tot = stl_reconciled_totals(r);
    assert_int_equal(tot->paid_uc, tot->received_uc + tot->fees_uc + tot->rounding_uc);
    stl_reconciler_free(r);
}

static void rejections(void **state)
{
    (void)state;
    stl_tariffs tf = {80, 300, 10};
    stl_reconciler *r = stl_reconciler_new(2, 2);
    stl_error_at at;
    mkt_trade good = trade(1, 2, 100, 200, 10);
    stl_metered m[2] = {{1, 0, 100, 0, 0, 0}, {2, 100, 0, 0, 0, 0}};
    assert_int_equal(stl_reconcile(r, &tf, &good, 1, m, 2, &at), STL_OK);

    mkt_trade bad[2] = {good, good};
    bad[1].buyer = 1; /* self trade */
    assert_int_equal(stl_reconcile(r, &tf, bad, 2, m, 2, &at), STL_E_TRADE);
    assert_int_equal(at.trade_index, 1);
    assert_int_equal(stl_reconciled_totals(r)->n_trades, 0);
    bad[1] = good;
    bad[1].amount_uc++; /* not floor(energy * price / 1000) */
    assert_int_equal(stl_reconcile(r, &tf, bad, 2, m, 2, &at), STL_E_TRADE);
    bad[1] = good;
    bad[1].fee_uc = 0; /* fee not at the tariffs' rate */
    assert_int_equal(stl_reconcile(r, &tf, bad, 2, m, 2, &at), STL_E_TRADE);
    bad[1] = good;
    bad[1].energy_wh = 0;
    assert_int_equal(stl_reconcile(r, &tf, bad, 2, m, 2, &at), STL_E_TRADE);

    stl_metered dup[2] = {{1, 0, 100, 0, 0, 0}, {1, 0, 100, 0, 0, 0}};
    assert_int_equal(stl_reconcile(r, &tf, &good, 1, dup, 2, &at), STL_E_METER);
    assert_int_equal(at.meter_index, 1);
    stl_metered neg[1] = {{1, -1, 0, 0, 0, 0}};
    assert_int_equal(stl_reconcile(r, &tf, &good, 1, neg, 1, &at), STL_E_METER);
    assert_int_equal(at.meter_index, 0);
    stl_metered huge[1] = {{1, 0, STL_METER_MAX_WH + 1, 0, 0, 0}};
    assert_int_equal(stl_reconcile(r, &tf, &good, 1, huge, 1, &at), STL_E_METER);

    assert_int_equal(stl_reconcile(r, &tf, bad, 3, m, 2, &at), STL_E_TOO_MANY);
    stl_tariffs inverted = {300, 80, 0};
    assert_int_equal(stl_reconcile(r, &inverted, &good, 1, m, 2, &at), STL_E_INVAL);
    assert_int_equal(stl_reconcile(r, NULL, &good, 1, m, 2, &at), STL_E_INVAL);
    assert_null(stl_reconciler_new(STL_MAX_TRADES + 1, 1));

    int64_t q;
    assert_int_equal(stl_muldiv(INT64_MAX, 2, 2, &q), STL_OK);
    assert_int_equal(q, INT64_MAX);
    assert_int_equal(stl_muldiv(INT64_MAX, 2, 1, &q), STL_E_OVERFLOW);
    assert_int_equal(stl_muldiv(-1, 2, 1, &q), STL_E_INVAL);
    stl_reconciler_free(r);
}

/* Ledger v2 inputs (issue 12's, carried by issue 19's encoding): a reading refused by the
 * physical checks is HELD, settled exactly as FLAGGED (its trade delivers nothing, no grid
 * legs), its quality bits kept as the reason; the attestation tier passes through. Seller 1
 * (held, reason 0x40, tier 1) sold 300 Wh to buyer 2 (good, tier 2, imported 500): the buyer
 * buys all 500 Wh from the grid, 500 x 300 / 1000 = 150 uc. */
static void held_and_tiers(void **state)
{
    (void)state;
    stl_tariffs tf = {80, 300, 0};
    mkt_trade t[1] = {trade(1, 2, 300, 120, 0)};
    stl_metered m[2] = {{1, 0, 300, 0x40, STL_TIER_GATEWAY, 1},
                        {2, 500, 0, 0, STL_TIER_CERTIFIED, 0}};
    stl_reconciler *r = stl_reconciler_new(1, 2);
    assert_int_equal(stl_reconcile(r, &tf, t, 1, m, 2, NULL), STL_OK);
    assert_int_equal(stl_reconciled_trades(r, NULL)[0].delivered_wh, 0);
    const stl_position *p = stl_reconciled_positions(r, NULL);
    assert_int_equal(p[0].status, STL_POS_HELD);
    assert_string_equal(stl_pos_status_name(p[0].status), "held");
    assert_int_equal(p[0].quality, 0x40);
    assert_int_equal(p[0].tier, STL_TIER_GATEWAY);
    assert_int_equal(p[0].export_wh, 300);
    assert_int_equal(p[0].grid_sold_wh, 0);
    assert_int_equal(p[0].grid_received_uc, 0);
    assert_int_equal(p[1].status, STL_POS_GOOD);
    assert_int_equal(p[1].tier, STL_TIER_CERTIFIED);
    assert_int_equal(p[1].grid_bought_wh, 500);
    assert_int_equal(p[1].grid_paid_uc, 150);
    assert_int_equal(stl_reconciled_totals(r)->n_held, 1);
    /* a tier or held flag out of range is a bad meter record */
    stl_error_at at;
    m[1].tier = STL_TIER_MAX + 1;
    assert_int_equal(stl_reconcile(r, &tf, t, 1, m, 2, &at), STL_E_METER);
    assert_int_equal(at.meter_index, 1);
    m[1].tier = 0;
    m[0].held = 2;
    assert_int_equal(stl_reconcile(r, &tf, t, 1, m, 2, &at), STL_E_METER);
    assert_int_equal(at.meter_index, 0);
    assert_string_equal(stl_pos_status_name(STL_POS_ESTIMATED), "estimated");
    stl_reconciler_free(r);
}

static void empty_interval(void **state)
{
    (void)state;
    stl_tariffs tf = {80, 300, 0};
    stl_reconciler *r = stl_reconciler_new(0, 0);
    assert_non_null(r);
    assert_int_equal(stl_reconcile(r, &tf, NULL, 0, NULL, 0, NULL), STL_OK);
    assert_int_equal(stl_reconciled_totals(r)->n_positions, 0);
    stl_reconciler_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(street),
        cmocka_unit_test(rounding_account),
        cmocka_unit_test(ties_to_lowest_trade_index),
        cmocka_unit_test(flagged_and_missing),
        cmocka_unit_test(full_delivery_is_the_contract),
        cmocka_unit_test(rejections),
        cmocka_unit_test(fee_above_the_flat_rate),
        cmocka_unit_test(empty_interval),
        cmocka_unit_test(held_and_tiers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
