/*
 * The home agent's forecast error (controller/agent/agent_fcerr.h), known answers by hand:
 * forecasts +200, -126 and 0 Wh against metered +150, -100 and +7 Wh are off by 50, 26 and
 * 7 Wh: 83 Wh in all, a mean of 27.67 -> 28 Wh. An interval without a forecast is not scored,
 * nor one scored twice; a forecast replaced before its interval counts as the newer one.
 */
#include "agent/agent_fcerr.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void known_answers(void **state)
{
    (void)state;
    agf_state s;
    agf_init(&s);
    assert_int_equal(agf_mae_wh(&s), 0);
    agf_record(&s, 10, 999);
    agf_record(&s, 10, 200); /* the newer forecast counts */
    agf_record(&s, 11, -126);
    agf_record(&s, 12 + AGF_RING, 5); /* far ahead: its own slot, until 12 is recorded */
    agf_record(&s, 12, 0);
    assert_false(agf_observe(&s, 9, 100)); /* no forecast */
    assert_true(agf_observe(&s, 10, 150));
    assert_int_equal(s.last_abs_wh, 50);
    assert_false(agf_observe(&s, 10, 150)); /* once */
    assert_true(agf_observe(&s, 11, -100));
    assert_int_equal(s.last_abs_wh, 26);
    assert_int_equal(s.last_forecast_wh, -126);
    assert_int_equal(s.last_metered_wh, -100);
    assert_true(agf_observe(&s, 12, 7));
    assert_int_equal(s.last_abs_wh, 7);
    assert_false(agf_observe(&s, 12 + AGF_RING, 5)); /* overwritten by 12 */
    assert_int_equal(s.scored, 3);
    assert_int_equal(s.abs_sum_wh, 83);
    assert_int_equal(agf_mae_wh(&s), 28);
    /* negative interval ids (before 1970) have slots too */
    agf_record(&s, -3, 10);
    assert_true(agf_observe(&s, -3, -10));
    assert_int_equal(s.last_abs_wh, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(known_answers)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
