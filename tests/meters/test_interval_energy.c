/*
 * Unit tests of the interval-energy rule (mgx/interval_energy.h): the counters at an interval
 * boundary from the good readings around it, with every answer worked out by hand in the
 * comments, the gap limit at and just past max_gap_ms, every refusal, and the telescoping
 * property (boundaries shared by neighbouring intervals add up to the counters' rise).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mgx/interval_energy.h"

#define GAP INT64_C(300000) /* 5 min */

static mtr_reading boundary(const mtr_reading *b, const mtr_reading *a, int64_t t, int rc_want)
{
    mtr_reading at = {-1, -1, -1};
    assert_int_equal(mtr_interval_boundary(b, a, t, GAP, &at), rc_want);
    return at;
}

static void reading_on_the_boundary(void **st)
{
    (void)st;
    mtr_reading on = {900000, 1234, 56}, later = {960000, 1300, 60};
    /* one reading alone exactly on t is the boundary, passed on either side... */
    mtr_reading at = boundary(&on, NULL, 900000, MTR_OK);
    assert_true(at.time_ms == 900000 && at.import_wh == 1234 && at.export_wh == 56);
    at = boundary(NULL, &on, 900000, MTR_OK);
    assert_true(at.time_ms == 900000 && at.import_wh == 1234 && at.export_wh == 56);
    /* ...whatever its counters: the caller's plausibility policy judges them */
    mtr_reading odd = {900000, -3, 0};
    at = boundary(&odd, NULL, 900000, MTR_OK);
    assert_int_equal(at.import_wh, -3);
    /* one reading alone off the boundary says nothing */
    boundary(&later, NULL, 900000, MTR_E_INVAL); /* after t on the before side */
    boundary(NULL, &later, 900000, MTR_E_GAP);
    /* a pair with an end on t: that end, if the pair is close enough (60 s here)... */
    at = boundary(&on, &later, 900000, MTR_OK);
    assert_true(at.import_wh == 1234 && at.export_wh == 56);
    mtr_reading before = {840000, 1200, 50};
    at = boundary(&before, &on, 900000, MTR_OK);
    assert_true(at.import_wh == 1234 && at.export_wh == 56);
    /* ...and not known across a gap wider than max_gap_ms (one hour), even with an end on t */
    mtr_reading hour_before = {-2700000, 0, 0};
    boundary(&hour_before, &on, 900000, MTR_E_GAP);
    /* a pair at one instant on t */
    at = boundary(&on, &on, 900000, MTR_OK);
    assert_int_equal(at.import_wh, 1234);
}

static void interpolated_known_answers(void **st)
{
    (void)st;
    /* 800 s: 1000/500 Wh, 1000 s: 1100/500 Wh. Boundary 900 s, half way:
     * import 1000 + 100 * 100/200 = 1050, export 500 */
    mtr_reading a = {800000, 1000, 500}, b = {1000000, 1100, 500};
    mtr_reading at = boundary(&a, &b, 900000, MTR_OK);
    assert_int_equal(at.time_ms, 900000);
    assert_int_equal(at.import_wh, 1050);
    assert_int_equal(at.export_wh, 500);
    /* the floor: 0 -> 10 Wh over 3 s, boundary after 1 s: 10/3 = 3.33 -> 3; export 0 -> 2:
     * 2/3 = 0.67 -> 0 */
    mtr_reading c = {0, 0, 0}, d = {3000, 10, 2};
    at = boundary(&c, &d, 1000, MTR_OK);
    assert_int_equal(at.import_wh, 3);
    assert_int_equal(at.export_wh, 0);
    /* 2 s in: 20/3 = 6.67 -> 6; 4/3 = 1.33 -> 1 */
    at = boundary(&c, &d, 2000, MTR_OK);
    assert_int_equal(at.import_wh, 6);
    assert_int_equal(at.export_wh, 1);
    /* large counters: 10^12 Wh rising by 7 over 7 ms, 3 ms in -> +3 exactly */
    mtr_reading e = {100, INT64_C(1000000000000), 9}, f = {107, INT64_C(1000000000007), 16};
    at = boundary(&e, &f, 103, MTR_OK);
    assert_true(at.import_wh == INT64_C(1000000000003) && at.export_wh == 12);
}

static void gap_limit(void **st)
{
    (void)st;
    /* exactly max_gap_ms apart (300 s): interpolated; 200 Wh over 300 s, 100 s in -> 66.67 */
    mtr_reading x = {800000, 1000, 0}, y = {1100000, 1200, 0};
    mtr_reading at = boundary(&x, &y, 900000, MTR_OK);
    assert_int_equal(at.import_wh, 1066);
    /* one millisecond wider: not known */
    mtr_reading y2 = {1100001, 1200, 0};
    at = boundary(&x, &y2, 900000, MTR_E_GAP);
    assert_int_equal(at.time_ms, -1); /* untouched */
    /* a side missing: not known */
    boundary(&x, NULL, 900000, MTR_E_GAP);
    boundary(NULL, &y, 900000, MTR_E_GAP);
    boundary(NULL, NULL, 900000, MTR_E_GAP);
    /* timestamps 2^62 ms apart neither overflow nor pass the gap */
    mtr_reading far0 = {-(INT64_C(1) << 62), 0, 0}, far1 = {INT64_C(1) << 62, 10, 0};
    boundary(&far0, &far1, 0, MTR_E_GAP);
}

static void refusals(void **st)
{
    (void)st;
    mtr_reading a = {800000, 1000, 500}, down = {1000000, 999, 500},
                exp_down = {1000000, 1000, 499};
    /* a counter going down between the two readings: not a plausible pair */
    boundary(&a, &down, 900000, MTR_E_BACKWARDS);
    boundary(&a, &exp_down, 900000, MTR_E_BACKWARDS);
    /* a negative counter in the pair, also with an end on t */
    mtr_reading neg = {800000, -5, 0}, pos = {1000000, 10, 0};
    boundary(&neg, &pos, 900000, MTR_E_RANGE);
    boundary(&neg, &pos, 1000000, MTR_E_RANGE);
    /* readings on the wrong side of t, no output, a gap limit that is not positive */
    mtr_reading b = {1000000, 1100, 500};
    boundary(&b, &a, 900000, MTR_E_INVAL);
    boundary(&a, &a, 900000, MTR_E_INVAL);
    mtr_reading at;
    assert_int_equal(mtr_interval_boundary(&a, &b, 900000, GAP, NULL), MTR_E_INVAL);
    assert_int_equal(mtr_interval_boundary(&a, &b, 900000, 0, &at), MTR_E_INVAL);
    assert_string_equal(mtr_strerror(MTR_E_GAP), "no reading near enough to the interval boundary");
}

/* Readings every 70 s with uneven rises, boundaries every 60 s: the two coincide at 0 and at
 * 420 s (7 intervals, 6 readings later). The 7 interval energies, each the difference of its two
 * interpolated (floored) boundaries, add up to the rise of the readings at 0 and 420 s, to the
 * Wh; boundaries never go down and each lies between the readings around it. */
static void telescoping(void **st)
{
    (void)st;
    mtr_reading r[7];
    int64_t imp = 100, exp = 7;
    for (int i = 0; i < 7; i++) {
        r[i] = (mtr_reading){70000 * (int64_t)i, imp, exp};
        imp += 1 + (i * 7) % 5; /* +1 +3 +5 +2 +4 +1: 100 -> 116 at 420 s */
        exp += (i * 3) % 4;     /* +0 +3 +2 +1 +0 +3: 7 -> 16 at 420 s */
    }
    assert_true(r[6].import_wh == 116 && r[6].export_wh == 16);
    int64_t sum_imp = 0, sum_exp = 0;
    mtr_reading prev = boundary(&r[0], &r[1], 0, MTR_OK);
    for (int64_t t = 60000; t <= 420000; t += 60000) {
        int i = 0;
        while (r[i + 1].time_ms < t)
            i++;
        mtr_reading at = boundary(&r[i], &r[i + 1], t, MTR_OK);
        assert_true(at.import_wh >= prev.import_wh && at.export_wh >= prev.export_wh);
        assert_true(at.import_wh >= r[i].import_wh && at.import_wh <= r[i + 1].import_wh);
        sum_imp += at.import_wh - prev.import_wh;
        sum_exp += at.export_wh - prev.export_wh;
        prev = at;
    }
    assert_int_equal(sum_imp, 16);
    assert_int_equal(sum_exp, 9);
    /* by hand, boundary 60 s: 100 + 1 * 60/70 = 100.86 -> 100; 7 + 0 = 7 */
    mtr_reading at = boundary(&r[0], &r[1], 60000, MTR_OK);
    assert_true(at.import_wh == 100 && at.export_wh == 7);
    /* boundary 120 s: 101 + 3 * 50/70 = 103.14 -> 103; 7 + 3 * 50/70 = 9.14 -> 9 */
    at = boundary(&r[1], &r[2], 120000, MTR_OK);
    assert_true(at.import_wh == 103 && at.export_wh == 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reading_on_the_boundary),
        cmocka_unit_test(interpolated_known_answers),
        cmocka_unit_test(gap_limit),
        cmocka_unit_test(refusals),
        cmocka_unit_test(telescoping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
