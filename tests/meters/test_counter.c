/*
 * Unit tests of the counter plausibility filter (mgx/counter.h): baseline, the jump bound
 * worked out by hand, backwards, rollover, reset, negative, NaN, and a rejected track confirmed
 * by later readings. The published ("virtual") total never goes down across accepted readings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mgx/counter.h"

#define MIN_MS INT64_C(60000)

/* 1 kW rated: 60 s allow ceil(1000 x 60000 / 3.6e6) = 17 Wh, + slack 10 + tick 1 = 28 Wh */
static mtr_counter_params params(void)
{
    mtr_counter_params p;
    mtr_counter_params_default(&p);
    p.max_power_w = 1000;
    return p;
}

static uint32_t step(mtr_counter *c, int64_t t_min, int64_t v, uint32_t q, int64_t wrap,
                     int64_t *out)
{
    mtr_counter_params p = params();
    return mtr_counter_step(c, &p, t_min * MIN_MS, v, q, wrap, 1, out);
}

static void bound_and_jump(void **state)
{
    (void)state;
    mtr_counter c;
    mtr_counter_init(&c);
    int64_t out;
    assert_int_equal(step(&c, 0, 5000, 0, 0, &out), 0); /* baseline */
    assert_int_equal(out, 5000);
    assert_int_equal(step(&c, 1, 5028, 0, 0, &out), 0); /* exactly the bound */
    assert_int_equal(out, 5028);
    assert_int_equal(step(&c, 2, 5057, 0, 0, &out), MTR_Q_JUMP); /* one more */
    assert_int_equal(out, 5028); /* not accepted, so not shown: the last accepted total */
    /* against 5028 at minute 1: two minutes allow 34 + 11 = 45 */
    assert_int_equal(step(&c, 3, 5073, 0, 0, &out), 0);
    assert_int_equal(out, 5073);
}

static void backwards_and_reset(void **state)
{
    (void)state;
    mtr_counter c;
    mtr_counter_init(&c);
    int64_t out;
    step(&c, 0, 50000, 0, 0, &out);
    assert_int_equal(step(&c, 1, 40000, 0, 0, &out), MTR_Q_BACKWARDS);
    assert_int_equal(out, 50000); /* the last accepted total, flagged */
    /* a drop to near zero (<= 1000 Wh): the meter was reset; the total stays at 50000 */
    assert_int_equal(step(&c, 2, 7, 0, 0, &out), MTR_Q_RESET);
    assert_int_equal(out, 50000);
    assert_int_equal(step(&c, 3, 17, 0, 0, &out), 0);
    assert_int_equal(out, 50010);
}

static void rollover(void **state)
{
    (void)state;
    mtr_counter c;
    mtr_counter_init(&c);
    int64_t out, wrap = INT64_C(4294967296);
    step(&c, 0, wrap - 5, 0, wrap, &out);
    assert_int_equal(step(&c, 1, 10, 0, wrap, &out), MTR_Q_ROLLOVER); /* +15 Wh */
    assert_int_equal(out, wrap + 10);
    assert_int_equal(step(&c, 2, 20, 0, wrap, &out), 0);
    assert_int_equal(out, wrap + 20);
    /* a wrap too big for the bound is not a rollover: near zero, so a reset */
    mtr_counter_init(&c);
    step(&c, 0, wrap - 5000, 0, wrap, &out);
    assert_int_equal(step(&c, 1, 10, 0, wrap, &out), MTR_Q_RESET);
    assert_int_equal(out, wrap - 5000);
}

static void negative_nan_and_first(void **state)
{
    (void)state;
    mtr_counter c;
    mtr_counter_init(&c);
    int64_t out;
    assert_int_equal(step(&c, 0, 0, MTR_Q_NAN, 0, &out), MTR_Q_NAN);
    assert_int_equal(out, 0);
    assert_int_equal(step(&c, 1, -3, 0, 0, &out), MTR_Q_NEGATIVE);
    assert_int_equal(out, 0); /* never a negative total: nothing accepted yet */
    assert_int_equal(c.have, 0); /* neither became the baseline */
    assert_int_equal(step(&c, 2, 100, 0, 0, &out), 0);
    assert_int_equal(step(&c, 3, 0, MTR_Q_NOT_IMPLEMENTED, 0, &out), MTR_Q_NOT_IMPLEMENTED);
    assert_int_equal(out, 100); /* the last good total */
}

static void confirmed_track(void **state)
{
    (void)state;
    mtr_counter c;
    mtr_counter_init(&c);
    int64_t out;
    step(&c, 0, 1000, 0, 0, &out);
    /* the meter jumps to 900000 and keeps counting from there: after 3 consistent readings
     * it is a new baseline (RESET), the jump itself is never counted */
    assert_int_equal(step(&c, 1, 900000, 0, 0, &out), MTR_Q_JUMP);
    assert_int_equal(step(&c, 2, 900010, 0, 0, &out), MTR_Q_JUMP);
    assert_int_equal(step(&c, 3, 900020, 0, 0, &out), MTR_Q_RESET);
    assert_int_equal(out, 1000);
    assert_int_equal(step(&c, 4, 900030, 0, 0, &out), 0);
    assert_int_equal(out, 1010);
    /* one bogus value between good ones is just rejected */
    assert_int_equal(step(&c, 5, 5, 0, 0, &out), MTR_Q_RESET); /* near zero reads as a reset */
    mtr_counter_init(&c);
    step(&c, 0, 50000, 0, 0, &out);
    assert_int_equal(step(&c, 1, 99999999, 0, 0, &out), MTR_Q_JUMP);
    assert_int_equal(out, 50000);
    assert_int_equal(step(&c, 2, 50020, 0, 0, &out), 0);
    assert_int_equal(out, 50020);
}

static void filter_sample(void **state)
{
    (void)state;
    mtr_filter f = {0};
    mtr_counter_params p = params();
    mtr_values v = {0};
    mtr_sample s = {0};
    v.power_w = -300;
    v.import_wh = 10;
    v.export_wh = 20;
    v.import_tick_wh = v.export_tick_wh = 1;
    v.has_soc = 1;
    v.soc_permille = 500;
    s.ts_ms = 0;
    mtr_filter_apply(&f, &p, &v, 0, &s);
    assert_int_equal(s.quality, 0);
    assert_int_equal(s.power_w, -300);
    assert_int_equal(s.soc_permille, 500);
    v.soc_permille = 1001;
    s.ts_ms = MIN_MS;
    mtr_filter_apply(&f, &p, &v, 0, &s);
    assert_int_equal(s.quality, MTR_Q_RANGE);
    assert_int_equal(s.soc_permille, -1);
    v.has_soc = 0;
    mtr_filter_apply(&f, &p, &v, 1, &s);
    assert_int_equal(s.quality, MTR_Q_NOT_IMPLEMENTED);
    mtr_filter_fail(&f, &s);
    assert_int_equal(s.quality, MTR_Q_COMM);
    assert_int_equal(s.import_wh, 10);
    assert_int_equal(s.export_wh, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bound_and_jump),      cmocka_unit_test(backwards_and_reset),
        cmocka_unit_test(rollover),            cmocka_unit_test(negative_nan_and_first),
        cmocka_unit_test(confirmed_track),     cmocka_unit_test(filter_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
