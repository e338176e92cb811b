/*
 * The battery scheduler (mgx/battery_plan.h): known optimal schedules worked by hand (cheap
 * charge for a dear interval, an import cap that binds, efficiency that makes arbitrage not pay
 * and then pay, the SoC floor, the terminal value) and, on random small cases, the dynamic
 * programme's optimum against a brute-force enumeration of every plan on the same grid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mgx/battery_plan.h"

#define NO_CAP SIM_PLAN_NO_CAP

static sim_plan_battery battery(int64_t min, int64_t max, int64_t init, int64_t power,
                                uint32_t eff_pm, int64_t step)
{
    sim_plan_battery b = {min, max, init, power, power, eff_pm, eff_pm, NO_CAP, NO_CAP, 0, step};
    return b;
}

static int64_t solve(const sim_plan_battery *b, const sim_plan_interval *iv, size_t n,
                     sim_plan_step *out)
{
    size_t len = sim_plan_workspace_size(b, n);
    assert_true(len > 0);
    int64_t *work = malloc(len);
    assert_non_null(work);
    int64_t total = 0;
    assert_int_equal(sim_plan_solve(b, iv, n, work, len, out, &total), SIM_PLAN_OK);
    free(work);
    /* the plan is consistent with its own total */
    int64_t sum = 0, stored = b->initial_wh;
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(out[k].grid_wh, iv[k].net_wh + out[k].battery_wh);
        assert_int_equal(out[k].cost_nuc, sim_plan_interval_cost_nuc(&iv[k], out[k].grid_wh));
        assert_true(out[k].stored_wh >= b->min_wh && out[k].stored_wh <= b->max_wh);
        assert_true(out[k].battery_wh <= b->charge_max_wh);
        assert_true(-out[k].battery_wh <= b->discharge_max_wh);
        sum += out[k].cost_nuc;
        stored = out[k].stored_wh;
    }
    assert_int_equal(total, sum - stored * b->terminal_uc_per_kwh);
    return total;
}

static void expect_plan(const sim_plan_step *out, const int64_t *battery_wh, size_t n)
{
    for (size_t k = 0; k < n; k++)
        assert_int_equal(out[k].battery_wh, battery_wh[k]);
}

/* Charge 1 kWh at 0.10 and cover the 0.40 interval; the 0.30 interval buys from the grid
 * (cost 1000 x 0.10 + 1000 x 0.30 = 0.40, i.e. 4 x 10^8 nuc). Self-consumption has nothing to
 * store and pays 0.40 + 0.30. */
static void test_cheap_charge_dear_discharge(void **state)
{
    (void)state;
    sim_plan_battery b = battery(0, 1000, 0, 1000, 1000, 100);
    sim_plan_interval iv[4] = {
        {0, 100000, 50000}, {0, 200000, 50000}, {1000, 400000, 50000}, {1000, 300000, 50000}};
    sim_plan_step out[4];
    assert_int_equal(solve(&b, iv, 4, out), 400000000);
    expect_plan(out, (int64_t[]){1000, 0, -1000, 0}, 4);
    int64_t sc = 0;
    assert_int_equal(sim_plan_self_consumption(&b, iv, 4, NULL, &sc), SIM_PLAN_OK);
    assert_int_equal(sc, 700000000);
}

/* The same with a 600 Wh import cap: 600 at 0.10, the other 400 at 0.20, then the dear
 * interval: 6 x 10^7 + 8 x 10^7 + 3 x 10^8. The last interval imports 1000 > cap because the
 * load alone does; the battery does not add to it. */
static void test_import_cap_binds(void **state)
{
    (void)state;
    sim_plan_battery b = battery(0, 1000, 0, 1000, 1000, 100);
    b.import_cap_wh = 600;
    sim_plan_interval iv[4] = {
        {0, 100000, 50000}, {0, 200000, 50000}, {1000, 400000, 50000}, {1000, 300000, 50000}};
    sim_plan_step out[4];
    assert_int_equal(solve(&b, iv, 4, out), 440000000);
    expect_plan(out, (int64_t[]){600, 400, -1000, 0}, 4);
}

/* An export cap of 300 Wh: a full battery would sell all 1000 Wh at 0.29 in the first interval
 * but may only push 300 out per interval, so it sells 300 + 300 (floor 400). */
static void test_export_cap_binds(void **state)
{
    (void)state;
    sim_plan_battery b = battery(400, 1000, 1000, 1000, 1000, 100);
    b.export_cap_wh = 300;
    sim_plan_interval iv[2] = {{0, 300000, 290000}, {0, 300000, 290000}};
    sim_plan_step out[2];
    assert_int_equal(solve(&b, iv, 2, out), -600 * 290000);
    expect_plan(out, (int64_t[]){-300, -300}, 2);
    /* a load the battery covers is not capped: 700 delivered, 300 exported */
    iv[0].net_wh = 700;
    b.min_wh = 0;
    assert_int_equal(solve(&b, iv, 1, out), -300 * 290000);
    assert_int_equal(out[0].battery_wh, -1000);
}

/* Round trip 0.64 (800 per mille each way): 1 kWh delivered costs 1/0.64 x 0.10 = 0.156 > 0.15,
 * so the plan does nothing and pays 2 x 1000 x 0.15. At 900 per mille it pays: 1000 stored
 * cost ceil(10^6 / 900) = 1112 Wh at 0.10 and deliver 900 Wh, the other 1100 Wh at 0.15:
 * 1.112 x 10^8 + 1.65 x 10^8. */
static void test_efficiency_kills_arbitrage(void **state)
{
    (void)state;
    sim_plan_interval iv[4] = {
        {0, 100000, 0}, {0, 100000, 0}, {1000, 150000, 0}, {1000, 150000, 0}};
    sim_plan_step out[4];
    sim_plan_battery lossy = battery(0, 1000, 0, 2000, 800, 100);
    assert_int_equal(solve(&lossy, iv, 4, out), 300000000);
    expect_plan(out, (int64_t[]){0, 0, 0, 0}, 4);
    sim_plan_battery good = battery(0, 1000, 0, 2000, 900, 100);
    assert_int_equal(solve(&good, iv, 4, out), 111200000 + 165000000);
    assert_int_equal(out[0].battery_wh + out[1].battery_wh, 1112);
    assert_int_equal(out[2].battery_wh + out[3].battery_wh, -900);
}

/* Full battery, nothing to do, feed-in 0.05: worth selling down to the 200 Wh floor unless
 * the stored energy is worth more at the end (terminal value 0.06). */
static void test_floor_and_terminal_value(void **state)
{
    (void)state;
    sim_plan_interval iv[3] = {{0, 100000, 50000}, {0, 100000, 50000}, {0, 100000, 50000}};
    sim_plan_step out[3];
    sim_plan_battery b = battery(200, 1000, 1000, 1000, 1000, 100);
    assert_int_equal(solve(&b, iv, 3, out), -800 * 50000);
    assert_int_equal(out[2].stored_wh, 200);
    b.terminal_uc_per_kwh = 60000;
    assert_int_equal(solve(&b, iv, 3, out), -1000 * 60000);
    expect_plan(out, (int64_t[]){0, 0, 0}, 3);
}

/* How the first step of a plan bounds the battery's real action (power 1250 Wh). */
static void expect_bounds_slack(const sim_plan_interval *iv, size_t n, int64_t a,
                                int64_t slack, int64_t lo, int64_t hi)
{
    sim_plan_step plan[3] = {{a, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}};
    int64_t l, h;
    sim_plan_bounds(iv, plan, n, 1250, slack, &l, &h);
    assert_int_equal(l, lo);
    assert_int_equal(h, hi);
}

static void expect_bounds(const sim_plan_interval *iv, size_t n, int64_t a, int64_t lo,
                          int64_t hi)
{
    expect_bounds_slack(iv, n, a, 0, lo, hi);
}

static void test_bounds(void **state)
{
    (void)state;
    /* flat prices: whatever the plan says, self-consumption */
    sim_plan_interval flat[2] = {{500, 300000, 80000}, {500, 300000, 80000}};
    expect_bounds(flat, 2, 400, -1250, 1250);
    expect_bounds(flat, 2, 0, -1250, 1250);
    expect_bounds(flat, 2, -1000, -1250, 1250);
    /* a dearer interval ahead */
    sim_plan_interval peak[2] = {{500, 300000, 80000}, {500, 450000, 80000}};
    expect_bounds(peak, 2, 400, 400, 1250);   /* charge from the grid */
    expect_bounds(peak, 2, 0, 0, 1250);       /* hold */
    expect_bounds(peak, 2, -300, -300, 1250); /* cover part of the load */
    peak[0].net_wh = -600;                    /* a surplus of 600 */
    expect_bounds(peak, 2, 400, -1250, 1250); /* store it: self-consumption */
    expect_bounds(peak, 2, 900, 900, 1250);   /* store it and 300 more from the grid */
    /* export pays more now than later: sell exactly what the plan sells */
    sim_plan_interval sell[2] = {{100, 300000, 250000}, {100, 300000, 80000}};
    expect_bounds(sell, 2, -300, -300, -300);
    expect_bounds(sell, 2, -100, -1250, 1250); /* only the load: self-consumption */
    expect_bounds(sell, 1, -300, -1250, 1250); /* nothing later to compare with */
    /* slack 44 Wh (one 42 Wh step of stored energy at 95.9 % charge efficiency): a plan that
     * stores the forecast surplus of 600 rounded up to 620 has decided nothing; with a cloud it
     * must not buy the 620 from the grid. 700 is a decision (100 Wh beyond). */
    sim_plan_interval cloud[2] = {{-600, 300000, 80000}, {0, 420000, 80000}};
    expect_bounds_slack(cloud, 2, 620, 44, -1250, 1250);
    expect_bounds_slack(cloud, 2, 700, 44, 700, 1250);
    /* a forecast deficit of 30 the plan cannot cover in whole steps (holds): self-consumption;
     * a deficit of 300 held is a decision; covering 280 of 300 is the rounding of covering all */
    sim_plan_interval small[2] = {{30, 300000, 80000}, {0, 420000, 80000}};
    expect_bounds_slack(small, 2, 0, 44, -1250, 1250);
    small[0].net_wh = 300;
    expect_bounds_slack(small, 2, 0, 44, 0, 1250);
    expect_bounds_slack(small, 2, -280, 44, -1250, 1250);
    expect_bounds_slack(small, 2, -200, 44, -200, 1250);
}

static void test_rejects(void **state)
{
    (void)state;
    sim_plan_battery b = battery(0, 1000, 0, 1000, 1000, 100);
    sim_plan_interval iv[1] = {{0, 100000, 0}};
    sim_plan_step out[1];
    int64_t work[64], total;
    assert_int_equal(sim_plan_solve(&b, iv, 1, work, 8, out, &total), SIM_PLAN_E_TOOBIG);
    b.charge_eff_pm = 0;
    assert_int_equal(sim_plan_solve(&b, iv, 1, work, sizeof work, out, &total), SIM_PLAN_E_INVAL);
    b = battery(0, 1000, 1200, 1000, 1000, 100); /* initial above the window */
    assert_int_equal(sim_plan_workspace_size(&b, 1), 0);
    b = battery(0, 1000, 0, 1000, 1000, 100);
    iv[0].import_uc_per_kwh = -1;
    assert_int_equal(sim_plan_solve(&b, iv, 1, work, sizeof work, out, &total), SIM_PLAN_E_INVAL);
}

/* Brute force: every sequence of states on the grid, with the rules written out again here. */
typedef struct {
    const sim_plan_battery *b;
    const sim_plan_interval *iv;
    size_t n;
    int64_t best;
} brute;

static int64_t ac_of(const sim_plan_battery *b, int64_t delta_stored)
{
    if (delta_stored > 0)
        return (delta_stored * 1000 + b->charge_eff_pm - 1) / b->charge_eff_pm;
    return -((-delta_stored) * (int64_t)b->discharge_eff_pm / 1000);
}

static void enumerate(brute *br, size_t k, int64_t stored, int64_t cost)
{
    const sim_plan_battery *b = br->b;
    if (k == br->n) {
        int64_t v = cost - stored * b->terminal_uc_per_kwh;
        if (v < br->best)
            br->best = v;
        return;
    }
    int64_t lowest = b->initial_wh - (b->initial_wh - b->min_wh) / b->step_wh * b->step_wh;
    for (int64_t s = lowest; s <= b->max_wh; s += b->step_wh) {
        int64_t a = ac_of(b, s - stored), net = br->iv[k].net_wh, g = net + a;
        if (a > b->charge_max_wh || -a > b->discharge_max_wh)
            continue;
        if (b->import_cap_wh != NO_CAP && g > b->import_cap_wh && g > net)
            continue;
        if (b->export_cap_wh != NO_CAP && -g > b->export_cap_wh && -g > -net)
            continue;
        enumerate(br, k + 1, s, cost + sim_plan_interval_cost_nuc(&br->iv[k], g));
    }
}

static int64_t rnd(int64_t lo, int64_t hi)
{
    return lo + (int64_t)((uint64_t)rand() % (uint64_t)(hi - lo + 1));
}

static void test_against_brute_force(void **state)
{
    (void)state;
    srand(15);
    for (int t = 0; t < 300; t++) {
        int64_t step = rnd(1, 4) * 50, states = rnd(2, 7);
        int64_t min = rnd(0, 3) * 50, max = min + (states - 1) * step + rnd(0, step - 1);
        sim_plan_battery b = {
            .min_wh = min,
            .max_wh = max,
            .initial_wh = rnd(min, max),
            .charge_max_wh = rnd(0, 4) * 100,
            .discharge_max_wh = rnd(0, 4) * 100,
            .charge_eff_pm = (uint32_t)rnd(700, 1000),
            .discharge_eff_pm = (uint32_t)rnd(700, 1000),
            .import_cap_wh = rnd(0, 2) ? NO_CAP : rnd(0, 400),
            .export_cap_wh = rnd(0, 2) ? NO_CAP : rnd(0, 400),
            .terminal_uc_per_kwh = rnd(0, 200000),
            .step_wh = step,
        };
        size_t n = (size_t)rnd(1, 5);
        sim_plan_interval iv[5];
        for (size_t k = 0; k < n; k++) {
            iv[k].import_uc_per_kwh = rnd(50000, 500000);
            iv[k].export_uc_per_kwh = rnd(0, iv[k].import_uc_per_kwh);
            iv[k].net_wh = rnd(-600, 600);
        }
        brute br = {&b, iv, n, INT64_MAX};
        enumerate(&br, 0, b.initial_wh, 0);
        sim_plan_step out[5];
        int64_t total = solve(&b, iv, n, out);
        if (total != br.best)
            fail_msg("case %d: dp %lld, brute force %lld", t, (long long)total,
                     (long long)br.best);
        int64_t sc;
        assert_int_equal(sim_plan_self_consumption(&b, iv, n, NULL, &sc), SIM_PLAN_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cheap_charge_dear_discharge),
        cmocka_unit_test(test_import_cap_binds),
        cmocka_unit_test(test_export_cap_binds),
        cmocka_unit_test(test_efficiency_kills_arbitrage),
        cmocka_unit_test(test_floor_and_terminal_value),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_against_brute_force),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
