/*
 * Tests of imbalance settlement (mgx/imbalance.h): the sign convention (net export; a shortfall
 * is bought from the grid, a surplus sold to it), rounding down, and the rejections (negative
 * prices, differences and amounts beyond int64).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mgx/imbalance.h"

static void expect(int64_t contracted, int64_t metered, int64_t short_price, int64_t surplus_price,
                   int64_t shortfall, int64_t surplus, int64_t charge, int64_t credit)
{
    stl_imbalance r;
    assert_int_equal(stl_imbalance_settle(contracted, metered, short_price, surplus_price, &r),
                     STL_OK);
    assert_int_equal(r.shortfall_wh, shortfall);
    assert_int_equal(r.surplus_wh, surplus);
    assert_int_equal(r.charge_uc, charge);
    assert_int_equal(r.credit_uc, credit);
}

static void known_answers(void **state)
{
    (void)state;
    /* sold 500 Wh, exported 400: 100 Wh short at 300 uc/kWh = 30 uc */
    expect(500, 400, 300, 80, 100, 0, 30, 0);
    /* sold 400, exported 450: 50 Wh surplus at 80 uc/kWh = 4 uc */
    expect(400, 450, 300, 80, 0, 50, 0, 4);
    /* a consumer: bought 1000 (net export -1000) but drew 1200 (-1200): 200 Wh short */
    expect(-1000, -1200, 300, 80, 200, 0, 60, 0);
    /* drew only 900: 100 Wh surplus, credited at 80: 8 uc */
    expect(-1000, -900, 300, 80, 0, 100, 0, 8);
    /* on contract: nothing either way */
    expect(-7, -7, 300, 80, 0, 0, 0, 0);
    /* crossing zero: contracted +100 export, metered -50: 150 Wh short */
    expect(100, -50, 1000, 0, 150, 0, 150, 0);
}

static void rounding_down(void **state)
{
    (void)state;
    /* 333 Wh * 7 uc/kWh = 2.331 uc -> 2; 999 Wh * 1 uc/kWh = 0.999 -> 0 */
    expect(333, 0, 7, 7, 333, 0, 2, 0);
    expect(0, 999, 7, 1, 0, 999, 0, 0);
    /* zero prices are allowed */
    expect(0, 5, 0, 0, 0, 5, 0, 0);
}

static void rejections(void **state)
{
    (void)state;
    stl_imbalance r;
    assert_int_equal(stl_imbalance_settle(1, 2, 1, 1, NULL), STL_E_INVAL);
    assert_int_equal(stl_imbalance_settle(1, 2, -1, 1, &r), STL_E_INVAL);
    assert_int_equal(stl_imbalance_settle(1, 2, 1, -1, &r), STL_E_INVAL);
    /* the difference overflows int64 */
    assert_int_equal(stl_imbalance_settle(INT64_MIN, INT64_MAX, 1, 1, &r), STL_E_OVERFLOW);
    assert_int_equal(stl_imbalance_settle(INT64_MAX, INT64_MIN, 1, 1, &r), STL_E_OVERFLOW);
    /* -1 - INT64_MAX = INT64_MIN fits, but its magnitude (the shortfall) does not */
    assert_int_equal(stl_imbalance_settle(INT64_MAX, -1, 1, 1, &r), STL_E_OVERFLOW);
    assert_int_equal(r.shortfall_wh | r.surplus_wh | r.charge_uc | r.credit_uc, 0);
    /* the largest magnitudes that fit are fine: INT64_MAX Wh at 1 uc/kWh */
    expect(INT64_MAX, 0, 1, 1, INT64_MAX, 0, INT64_MAX / 1000, 0);
    expect(0, INT64_MAX, 1, 1, 0, INT64_MAX, 0, INT64_MAX / 1000);
    /* an amount beyond int64: 1e16 Wh at 1e6 uc/kWh = 1e19 uc; the result is cleared */
    assert_int_equal(stl_imbalance_settle(0, INT64_C(10000000000000000), 1, 1000000, &r),
                     STL_E_OVERFLOW);
    assert_int_equal(r.shortfall_wh | r.surplus_wh | r.charge_uc | r.credit_uc, 0);
    /* ... and just inside: 9e15 Wh * 1e6 / 1000 = 9e18 */
    expect(INT64_C(9000000000000000), 0, 1000000, 0, INT64_C(9000000000000000), 0,
           INT64_C(9000000000000000000), 0);
}

static void strerror_texts(void **state)
{
    (void)state;
    assert_string_equal(stl_strerror(STL_OK), "success");
    assert_string_not_equal(stl_strerror(STL_E_INVAL), stl_strerror(STL_E_OVERFLOW));
    assert_string_equal(stl_strerror(42), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_answers),
        cmocka_unit_test(rounding_down),
        cmocka_unit_test(rejections),
        cmocka_unit_test(strerror_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
