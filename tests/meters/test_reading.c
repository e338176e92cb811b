/*
 * Tests of interval energy from meter readings (mgx/reading.h): differences of cumulative
 * counters, the plausibility limit (rated power times elapsed time, rounded up) and the
 * rejections, including counter and time values far enough apart to overflow int64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mgx/reading.h"

#define QUARTER_MS INT64_C(900000)

static int energy(int64_t dt_ms, int64_t imp0, int64_t imp1, int64_t exp0, int64_t exp1,
                  int64_t power_w, int64_t *imp, int64_t *exp)
{
    mtr_reading a = {INT64_C(1700000000000), imp0, exp0};
    mtr_reading b = {a.time_ms + dt_ms, imp1, exp1};
    return mtr_interval_energy(&a, &b, power_w, imp, exp);
}

static void known_answers(void **state)
{
    (void)state;
    int64_t imp = -1, exp = -1;
    /* counters 12345 -> 12845 and 700 -> 700 over 15 minutes: 500 Wh in, 0 out */
    assert_int_equal(energy(QUARTER_MS, 12345, 12845, 700, 700, 5000, &imp, &exp), MTR_OK);
    assert_int_equal(imp, 500);
    assert_int_equal(exp, 0);
    /* 5000 W for 15 min = 5000 * 900000 / 3600000 = 1250 Wh: exactly the rating passes... */
    assert_int_equal(energy(QUARTER_MS, 0, 1250, 10, 1260, 5000, &imp, &exp), MTR_OK);
    assert_int_equal(imp, 1250);
    assert_int_equal(exp, 1250);
    /* ... one Wh more on either counter does not */
    imp = exp = -1;
    assert_int_equal(energy(QUARTER_MS, 0, 1251, 0, 0, 5000, &imp, &exp), MTR_E_IMPLAUSIBLE);
    assert_int_equal(energy(QUARTER_MS, 0, 0, 0, 1251, 5000, &imp, &exp), MTR_E_IMPLAUSIBLE);
    assert_int_equal(imp, -1); /* outputs untouched on failure */
    assert_int_equal(exp, -1);
}

static void limit_rounds_up(void **state)
{
    (void)state;
    int64_t imp, exp;
    /* 1000 W for 1 s = 0.278 Wh, rounded up to 1 Wh: a 1 Wh tick passes, 2 Wh do not */
    assert_int_equal(energy(1000, 0, 1, 0, 0, 1000, &imp, &exp), MTR_OK);
    assert_int_equal(energy(1000, 0, 2, 0, 0, 1000, &imp, &exp), MTR_E_IMPLAUSIBLE);
    /* 1 W for 1 ms: the limit is still 1 Wh (ceil of 2.8e-7), never 0 */
    assert_int_equal(energy(1, 0, 1, 0, 0, 1, &imp, &exp), MTR_OK);
    /* 3600 W for 3600 s = 3600 Wh exactly, no rounding */
    assert_int_equal(energy(3600000, 0, 3600, 0, 0, 3600, &imp, &exp), MTR_OK);
    assert_int_equal(energy(3600000, 0, 3601, 0, 0, 3600, &imp, &exp), MTR_E_IMPLAUSIBLE);
}

static void rejections(void **state)
{
    (void)state;
    int64_t imp, exp;
    mtr_reading a = {1000, 5, 5}, b = {2000, 6, 6};
    assert_int_equal(energy(QUARTER_MS, 100, 99, 0, 0, 5000, &imp, &exp), MTR_E_BACKWARDS);
    assert_int_equal(energy(QUARTER_MS, 0, 0, 100, 99, 5000, &imp, &exp), MTR_E_BACKWARDS);
    assert_int_equal(energy(0, 0, 0, 0, 0, 5000, &imp, &exp), MTR_E_INVAL);
    assert_int_equal(energy(-1, 0, 0, 0, 0, 5000, &imp, &exp), MTR_E_INVAL);
    assert_int_equal(energy(QUARTER_MS, 0, 0, 0, 0, 0, &imp, &exp), MTR_E_INVAL);
    assert_int_equal(energy(QUARTER_MS, 0, 0, 0, 0, -5, &imp, &exp), MTR_E_INVAL);
    assert_int_equal(energy(QUARTER_MS, 0, 0, 0, 0, INT64_C(1000000000001), &imp, &exp),
                     MTR_E_INVAL);
    assert_int_equal(mtr_interval_energy(NULL, &b, 1, &imp, &exp), MTR_E_INVAL);
    assert_int_equal(mtr_interval_energy(&a, NULL, 1, &imp, &exp), MTR_E_INVAL);
    assert_int_equal(mtr_interval_energy(&a, &b, 1, NULL, &exp), MTR_E_INVAL);
    assert_int_equal(mtr_interval_energy(&a, &b, 1, &imp, NULL), MTR_E_INVAL);
    assert_string_equal(mtr_strerror(MTR_OK), "success");
    assert_string_equal(mtr_strerror(99), "unknown error");
}

/* Bogus readings far apart must be rejected, not overflow (undefined behaviour in C). */
static void extreme_values(void **state)
{
    (void)state;
    int64_t imp = -1, exp = -1;
    /* the whole int64 time range at the largest rating: the limit saturates, a sane reading
     * passes */
    mtr_reading a = {INT64_MIN, 0, 0}, b = {INT64_MAX, 10, 20};
    assert_int_equal(mtr_interval_energy(&a, &b, INT64_C(1000000000000), &imp, &exp), MTR_OK);
    assert_int_equal(imp, 10);
    assert_int_equal(exp, 20);
    /* a counter jump of more than INT64_MAX is implausible for a 5 kW meter over 15 minutes */
    mtr_reading c = {0, INT64_MIN + 1, 0}, d = {QUARTER_MS, INT64_MAX, 0};
    assert_int_equal(mtr_interval_energy(&c, &d, 5000, &imp, &exp), MTR_E_IMPLAUSIBLE);
    mtr_reading e = {0, 0, -5}, f = {QUARTER_MS, 0, INT64_MAX};
    assert_int_equal(mtr_interval_energy(&e, &f, 5000, &imp, &exp), MTR_E_IMPLAUSIBLE);
    /* ... and for any meter over any time, a jump of that size passes only within its limit */
    mtr_reading g = {INT64_MIN, INT64_MIN, 0}, h = {INT64_MAX, INT64_MAX, 0};
    assert_int_equal(mtr_interval_energy(&g, &h, 1, &imp, &exp), MTR_E_IMPLAUSIBLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_answers),
        cmocka_unit_test(limit_rounds_up),
        cmocka_unit_test(rejections),
        cmocka_unit_test(extreme_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
