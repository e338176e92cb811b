/*
 * Known answers of the pure trust checks of issue 12 (docs/trust.md): the boundary balance
 * (mgx/boundary_balance.h, layer 3) and peer corroboration of generation (mgx/peer_yield.h,
 * layer 4). Every expected figure is worked by hand in the comment above it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mgx/boundary_balance.h"
#include "mgx/peer_yield.h"

/* Three homes, 15 minutes: a imports 300 / exports 450, b 500 / 0, c 200 / 100 (c signed).
 * homes' net = (300 + 500 + 200) - (450 + 0 + 100) = 450; throughput = 1000 + 550 = 1550.
 * Rules 30 permille + 20 Wh: tolerance = 20 + ceil(1550 * 30 / 1000) = 20 + ceil(46.5) = 67. */
static const stl_balance_rules RULES = {30, 20};

static void balance_honest(void **state)
{
    (void)state;
    stl_balance_home h[3] = {{300, 450, 0}, {500, 0, 0}, {200, 100, 1}};
    uint8_t held[3] = {9, 9, 9};
    stl_balance b;
    /* the boundary imports 480 (30 Wh of line losses): residual 480 - 450 = 30 <= 67 */
    assert_int_equal(stl_boundary_balance(h, 3, 480, 0, &RULES, &b, held), STL_BALANCE_OK);
    assert_int_equal(b.homes_net_wh, 450);
    assert_int_equal(b.boundary_net_wh, 480);
    assert_int_equal(b.residual_wh, 30);
    assert_int_equal(b.throughput_wh, 1550);
    assert_int_equal(b.tolerance_wh, 67);
    assert_false(b.disputed);
    assert_int_equal(b.n_held, 0);
    assert_int_equal(held[0] + held[1] + held[2], 0);
    /* exactly at the tolerance (residual 67) still balances; 68 does not */
    assert_int_equal(stl_boundary_balance(h, 3, 517, 0, &RULES, &b, held), STL_BALANCE_OK);
    assert_false(b.disputed);
    assert_int_equal(stl_boundary_balance(h, 3, 518, 0, &RULES, &b, held), STL_BALANCE_OK);
    assert_true(b.disputed);
}

static void balance_inflated(void **state)
{
    (void)state;
    /* a claims 900 Wh of export instead of 450: homes' net = 1000 - 1000 = 0, throughput 2000,
     * tolerance 20 + 60 = 80; the boundary still sees 480: residual 480 > 80, disputed. a and b
     * are held (unsigned), c (signed) settles. */
    stl_balance_home h[3] = {{300, 900, 0}, {500, 0, 0}, {200, 100, 1}};
    uint8_t held[3];
    stl_balance b;
    assert_int_equal(stl_boundary_balance(h, 3, 480, 0, &RULES, &b, held), STL_BALANCE_OK);
    assert_int_equal(b.homes_net_wh, 0);
    assert_int_equal(b.residual_wh, 480);
    assert_int_equal(b.tolerance_wh, 80);
    assert_true(b.disputed);
    assert_int_equal(held[0], 1);
    assert_int_equal(held[1], 1);
    assert_int_equal(held[2], 0);
    assert_int_equal(b.n_held, 2);
    /* the other direction: homes claim 1000 Wh more import than the boundary can have seen */
    stl_balance_home g[1] = {{1500, 0, 0}};
    assert_int_equal(stl_boundary_balance(g, 1, 500, 0, &RULES, &b, held), STL_BALANCE_OK);
    assert_int_equal(b.residual_wh, -1000); /* tolerance 20 + 45 = 65 */
    assert_int_equal(b.tolerance_wh, 65);
    assert_true(b.disputed);
    /* a community exporting through the boundary: homes net -400, boundary exports 380
     * (20 Wh lost): residual -380 + 400 = 20 <= 20 + ceil(400 * 30 / 1000) = 32 */
    stl_balance_home e[2] = {{0, 250, 0}, {0, 150, 0}};
    assert_int_equal(stl_boundary_balance(e, 2, 0, 380, &RULES, &b, held), STL_BALANCE_OK);
    assert_int_equal(b.residual_wh, 20);
    assert_int_equal(b.tolerance_wh, 32);
    assert_false(b.disputed);
}

static void balance_rejects(void **state)
{
    (void)state;
    stl_balance_home h[2] = {{INT64_MAX, 0, 0}, {1, 0, 0}};
    uint8_t held[2];
    stl_balance b;
    assert_int_equal(stl_boundary_balance(h, 2, 0, 0, &RULES, &b, held), STL_BALANCE_E_INVAL);
    h[0].import_wh = -1;
    assert_int_equal(stl_boundary_balance(h, 1, 0, 0, &RULES, &b, held), STL_BALANCE_E_INVAL);
    assert_int_equal(stl_boundary_balance(NULL, 0, -1, 0, &RULES, &b, NULL), STL_BALANCE_E_INVAL);
    stl_balance_rules bad = {1000001, 0};
    assert_int_equal(stl_boundary_balance(NULL, 0, 0, 0, &bad, &b, NULL), STL_BALANCE_E_INVAL);
    /* no homes, an idle boundary: balanced */
    assert_int_equal(stl_boundary_balance(NULL, 0, 0, 0, &RULES, &b, NULL), STL_BALANCE_OK);
    assert_false(b.disputed);
}

/* Five homes with PV at noon, 15 minutes, rules 2000 permille, 40 W/kWp floor, 3 peers; the
 * reference is the second highest of the other homes' yields.
 * Yields (export x 1000 / wp): a 5 kWp 500 Wh -> 100; b 4 kWp 300 -> 75; c 6 kWp 480 -> 80;
 * d 5 kWp 250 -> 50; e 5 kWp 1500 -> 300 (claims 3x a's). Sorted: 50 75 80 100 300.
 * floor: ceil(40 x 900 / 3600) = 10 Wh/kWp.
 * e: others 50 75 80 100: ref 80; allowed = 5 x (160 + 10) = 850 < 1500:
 *    flagged.
 * a: others 50 75 80 300: ref 80, allowed 850 >= 500. d: others 75 80 100 300: ref 100,
 *    allowed 5 x 210 = 1050. b: others 50 80 100 300: ref 100, allowed 4 x 210 = 840. */
static const stl_peer_rules PEER = {2000, 40, 3};

static void peer_day(void **state)
{
    (void)state;
    stl_peer_home h[6] = {{5000, 500, 0, 1}, {4000, 300, 0, 1}, {6000, 480, 0, 1},
                          {5000, 250, 0, 1}, {5000, 1500, 0, 1}, {0, 0, 0, 1}};
    int64_t scratch[6];
    stl_peer_verdict v[6];
    assert_int_equal(stl_peer_check(h, 6, 900, &PEER, scratch, v), STL_PEER_OK);
    assert_true(v[4].checked);
    assert_int_equal(v[4].yield_wh_per_kwp, 300);
    assert_int_equal(v[4].reference_wh_per_kwp, 80);
    assert_int_equal(v[4].allowed_wh, 850);
    assert_true(v[4].flagged);
    assert_int_equal(v[0].reference_wh_per_kwp, 80);
    assert_int_equal(v[0].allowed_wh, 850);
    assert_int_equal(v[3].reference_wh_per_kwp, 100);
    assert_int_equal(v[3].allowed_wh, 1050);
    assert_int_equal(v[1].allowed_wh, 840);
    for (int i = 0; i < 4; i++)
        assert_false(v[i].flagged);
    /* the home without PV is neither peer nor checked */
    assert_false(v[5].checked);
    assert_false(v[5].flagged);
}

/* Night: four PV homes export 0, one 5 kWp home claims 200 Wh. Its ref is 0; allowed =
 * 5 x (0 + 10) = 50 < 200: flagged. With a 5 kWh battery able to give 1250 Wh in the quarter
 * hour, allowed = 50 + 1250 = 1300: not flagged. Another home exporting 40 (within the floor):
 * not flagged. */
static void peer_night(void **state)
{
    (void)state;
    stl_peer_home h[5] = {{5000, 200, 0, 1}, {4000, 0, 0, 1}, {6000, 0, 0, 1},
                          {5000, 40, 0, 1}, {3000, 0, 0, 1}};
    int64_t scratch[5];
    stl_peer_verdict v[5];
    assert_int_equal(stl_peer_check(h, 5, 900, &PEER, scratch, v), STL_PEER_OK);
    assert_int_equal(v[0].reference_wh_per_kwp, 0);
    assert_int_equal(v[0].allowed_wh, 50);
    assert_true(v[0].flagged);
    assert_false(v[3].flagged);
    h[0].battery_wh = 1250;
    assert_int_equal(stl_peer_check(h, 5, 900, &PEER, scratch, v), STL_PEER_OK);
    assert_int_equal(v[0].allowed_wh, 1300);
    assert_false(v[0].flagged);
}

/* Too few peers: three PV homes give each only two others (< 3): nothing checked. A home whose
 * reading is not usable is no peer. */
static void peer_too_few(void **state)
{
    (void)state;
    stl_peer_home h[4] = {{5000, 5000, 0, 1}, {4000, 0, 0, 1}, {6000, 0, 0, 1}, {6000, 0, 0, 0}};
    int64_t scratch[4];
    stl_peer_verdict v[4];
    assert_int_equal(stl_peer_check(h, 4, 900, &PEER, scratch, v), STL_PEER_OK);
    for (int i = 0; i < 4; i++)
        assert_false(v[i].checked || v[i].flagged);
    stl_peer_rules bad = {999, 40, 3};
    assert_int_equal(stl_peer_check(h, 4, 900, &bad, scratch, v), STL_PEER_E_INVAL);
    assert_int_equal(stl_peer_check(h, 4, 0, &PEER, scratch, v), STL_PEER_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(balance_honest), cmocka_unit_test(balance_inflated),
        cmocka_unit_test(balance_rejects), cmocka_unit_test(peer_day),
        cmocka_unit_test(peer_night),      cmocka_unit_test(peer_too_few)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
