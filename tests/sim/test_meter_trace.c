/*
 * Meter counters within an interval (sim/src/meter_trace.c): known answers worked by hand,
 * exact totals at every boundary, counters that never go down, and the rounding of power.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "mgx/meter_trace.h"

#define T15 900000 /* 15 minutes in ms */

static void test_known_answers(void **state)
{
    (void)state;
    sim_trace *t = sim_trace_new(3, T15, 1000);
    assert_non_null(t);
    assert_int_equal(sim_trace_set(t, 0, 1000, 0), 0);
    assert_int_equal(sim_trace_set(t, 1, 0, 250), 0);
    assert_int_equal(sim_trace_set(t, 2, 7, 0), 0);
    sim_meter_reading r;
    /* home 0: 1000 Wh in 15 min is 4000 W; halfway the counter is 1000 + 500 */
    sim_trace_at(t, 0, 0, &r);
    assert_int_equal(r.import_wh, 1000);
    assert_int_equal(r.export_wh, 1000);
    assert_int_equal(r.power_w, 4000);
    sim_trace_at(t, 0, T15 / 2, &r);
    assert_int_equal(r.import_wh, 1500);
    sim_trace_at(t, 0, T15, &r);
    assert_int_equal(r.import_wh, 2000);
    /* home 1 exports 250 Wh: -1000 W */
    sim_trace_at(t, 1, T15 / 5, &r);
    assert_int_equal(r.power_w, -1000);
    assert_int_equal(r.export_wh, 1050);
    assert_int_equal(r.import_wh, 1000);
    /* home 2: 7 Wh; the first Wh completes at T/7 = 128571.4 ms: floor(7 x 128571 / 900000) = 0,
     * floor(7 x 128572 / 900000) = 1; power 7 x 4 = 28 W */
    sim_trace_at(t, 2, 128571, &r);
    assert_int_equal(r.import_wh, 1000);
    sim_trace_at(t, 2, 128572, &r);
    assert_int_equal(r.import_wh, 1001);
    assert_int_equal(r.power_w, 28);
    /* outside the interval: clamped */
    sim_trace_at(t, 0, -5, &r);
    assert_int_equal(r.import_wh, 1000);
    sim_trace_at(t, 0, 10 * T15, &r);
    assert_int_equal(r.import_wh, 2000);
    /* the next interval starts where this one ended, with nothing to spread until set */
    sim_trace_next(t);
    sim_trace_at(t, 0, T15 / 2, &r);
    assert_int_equal(r.import_wh, 2000);
    assert_int_equal(r.power_w, 0);
    sim_trace_at(t, 1, 0, &r);
    assert_int_equal(r.export_wh, 1250);
    sim_trace_free(t);
}

static void test_power_rounding(void **state)
{
    (void)state;
    /* 160 min = 9,600,000 ms: 1 Wh -> 0.375 W -> 0; 2 Wh -> 0.75 -> 1; 4 Wh -> 1.5 -> 2 (half
     * away from zero), export 4 Wh -> -2; and 5 Wh import - 1 Wh export = 4 Wh net -> 2 */
    sim_trace *t = sim_trace_new(1, 9600000, 0);
    const int64_t imp[] = {1, 2, 4, 0, 5}, exp[] = {0, 0, 0, 4, 1}, want[] = {0, 1, 2, -2, 2};
    for (int i = 0; i < 5; i++) {
        sim_meter_reading r;
        assert_int_equal(sim_trace_set(t, 0, imp[i], exp[i]), 0);
        sim_trace_at(t, 0, 0, &r);
        assert_int_equal(r.power_w, want[i]);
    }
    sim_trace_free(t);
}

/* Random energies over many intervals: never down, exact at each boundary, and the power
 * integrates to the interval's energy within the rounding of power. */
static void test_invariants(void **state)
{
    (void)state;
    const int64_t T = 300000; /* 5 min */
    sim_trace *t = sim_trace_new(4, T, 17);
    int64_t total_imp[4] = {17, 17, 17, 17}, total_exp[4] = {17, 17, 17, 17};
    srand(7);
    for (int k = 0; k < 200; k++) {
        int64_t di[4], de[4];
        for (size_t h = 0; h < 4; h++) {
            di[h] = rand() % 3 ? rand() % 5000 : 0;
            de[h] = di[h] ? 0 : rand() % 4000;
            if (h == 3) /* the largest energy accepted */
                di[h] = SIM_TRACE_MAX_WH, de[h] = 0;
            assert_int_equal(sim_trace_set(t, h, di[h], de[h]), 0);
        }
        for (size_t h = 0; h < 4; h++) {
            sim_meter_reading prev = {0, 0, 0}, r;
            for (int64_t e = 0; e <= T; e += 997) {
                sim_trace_at(t, h, e, &r);
                assert_true(r.import_wh >= prev.import_wh && r.export_wh >= prev.export_wh);
                assert_true(r.import_wh <= total_imp[h] + di[h]);
                prev = r;
            }
            sim_trace_at(t, h, T, &r);
            assert_int_equal(r.import_wh, total_imp[h] + di[h]);
            assert_int_equal(r.export_wh, total_exp[h] + de[h]);
            /* power is the average rounded to a W: |power x T - net x 3.6e6| <= T / 2 */
            int64_t net_x = r.power_w * T - (di[h] - de[h]) * 3600000;
            if (h < 3)
                assert_true(llabs(net_x) * 2 <= T);
        }
        sim_trace_next(t);
        for (size_t h = 0; h < 4; h++) {
            total_imp[h] += di[h];
            total_exp[h] += de[h];
        }
    }
    sim_trace_free(t);
}

static void test_errors(void **state)
{
    (void)state;
    assert_null(sim_trace_new(1, 0, 0));
    assert_null(sim_trace_new(1, T15, -1));
    sim_trace *t = sim_trace_new(2, T15, 0);
    assert_int_equal(sim_trace_set(t, 2, 1, 0), -1);
    assert_int_equal(sim_trace_set(t, 0, -1, 0), -1);
    assert_int_equal(sim_trace_set(t, 0, 0, SIM_TRACE_MAX_WH + 1), -1);
    assert_int_equal(sim_trace_set(NULL, 0, 0, 0), -1);
    sim_trace_free(t);
    sim_trace_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_power_rounding),
        cmocka_unit_test(test_invariants),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
