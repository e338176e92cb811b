/*
 * Unit tests of settle_meter (an interval's metered energy from stored readings) and of the
 * shared boundary rule mtr_counters_at, with numbers worked out by hand in the comments, and a
 * cross-check against the home agent's follower (agent_meter.c), which uses the same rule.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "agent/agent_meter.h"
#include "mgx/reading.h"
#include "settle/settle_meter.h"

#define IV 900000 /* a quarter hour in ms */

static mtr_sample rd(int64_t ts, int64_t imp, int64_t exp, uint32_t q)
{
    mtr_sample s;
    memset(&s, 0, sizeof s);
    strcpy(s.meter_id, "m1");
    s.ts_ms = ts;
    s.import_wh = imp;
    s.export_wh = exp;
    s.soc_permille = -1;
    s.quality = q;
    return s;
}

static const stm_rules RULES = {300000, 100000}; /* 5 min gap, 100 kW */

static void counters_at_floor(void **st)
{
    (void)st;
    int64_t i, e;
    /* 0 -> 10 Wh over 3 ms: at 1 ms 10/3 = 3.33 -> 3; export 0 -> 2: 2/3 -> 0 */
    mtr_reading a = {0, 0, 0}, b = {3, 10, 2};
    assert_int_equal(mtr_counters_at(&a, &b, 1, &i, &e), MTR_OK);
    assert_int_equal(i, 3);
    assert_int_equal(e, 0);
    /* the ends are the readings themselves */
    assert_int_equal(mtr_counters_at(&a, &b, 3, &i, &e), MTR_OK);
    assert_int_equal(i, 10);
    assert_int_equal(e, 2);
    /* outside the pair, reversed times or a counter going down: refused */
    assert_int_equal(mtr_counters_at(&a, &b, 4, &i, &e), MTR_E_INVAL);
    assert_int_equal(mtr_counters_at(&b, &a, 1, &i, &e), MTR_E_INVAL);
    mtr_reading c = {5, 9, 2};
    assert_int_equal(mtr_counters_at(&b, &c, 4, &i, &e), MTR_E_INVAL);
    /* far-apart timestamps do not overflow: 2^62 ms apart, half way -> half the rise */
    mtr_reading f0 = {0, 0, 0}, f1 = {INT64_C(1) << 62, 1000, 0};
    assert_int_equal(mtr_counters_at(&f0, &f1, INT64_C(1) << 61, &i, &e), MTR_OK);
    assert_int_equal(i, 500);
}

static void exact_boundaries(void **st)
{
    (void)st;
    /* readings on both boundaries: import 1000 -> 1500 = 500, export 40 -> 340 = 300 */
    mtr_sample r[] = {rd(IV, 1000, 40, 0), rd(IV + 450000, 1200, 200, 0),
                      rd(2 * IV, 1500, 340, 0)};
    stm_result x;
    assert_int_equal(stm_interval(r, 3, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_GOOD);
    assert_int_equal(x.import_wh, 500);
    assert_int_equal(x.export_wh, 300);
    assert_int_equal(x.quality, 0);
}

static void interpolated_boundaries(void **st)
{
    (void)st;
    /* start 900000 between (800000, 100) and (1000000, 300): 100 + 200 * 1/2 = 200.
     * end 1800000 between (1700000, 1000) and (2000000, 1301): 1000 + 301 * 1/3 = 1100.33
     * -> 1100. import = 1100 - 200 = 900. export: 0 then 7 at 1000000 -> start 0 + 7/2 = 3;
     * end between 50 and 80: 50 + 30/3 = 60; export = 57. */
    mtr_sample r[] = {rd(800000, 100, 0, 0), rd(1000000, 300, 7, 0), rd(1700000, 1000, 50, 0),
                      rd(2000000, 1301, 80, 0)};
    stm_result x;
    assert_int_equal(stm_interval(r, 4, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_GOOD);
    assert_int_equal(x.import_wh, 900);
    assert_int_equal(x.export_wh, 57);
}

static void telescoping(void **st)
{
    (void)st;
    /* readings every 280 s (not a divisor of 900 s) with odd rises; four intervals add up to
     * the rise between the first start boundary and the last end boundary, whatever the floors
     * did */
    mtr_sample r[64];
    size_t n = 0;
    int64_t imp = 5000, exp = 0;
    for (int64_t t = IV - 280000; t <= 6 * IV; t += 280000) {
        r[n++] = rd(t, imp, exp, 0);
        imp += 333 + (t / 1000) % 17;
        exp += 101 + (t / 1000) % 5;
    }
    stm_result whole, part;
    int64_t si = 0, se = 0;
    for (int k = 1; k <= 4; k++) {
        assert_int_equal(stm_interval(r, n, k * IV, (k + 1) * IV, &RULES, &part), STM_OK);
        assert_int_equal(part.status, STM_GOOD);
        si += part.import_wh;
        se += part.export_wh;
    }
    assert_int_equal(stm_interval(r, n, IV, 5 * IV, &RULES, &whole), STM_OK);
    assert_int_equal(whole.status, STM_GOOD);
    assert_int_equal(si, whole.import_wh);
    assert_int_equal(se, whole.export_wh);
}

static void gaps_and_missing(void **st)
{
    (void)st;
    stm_result x;
    /* no readings at all: missing, no flags */
    assert_int_equal(stm_interval(NULL, 0, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_MISSING);
    assert_int_equal(x.quality, 0);
    /* the readings around the end are 400 s apart > 300 s: missing */
    mtr_sample r[] = {rd(IV, 0, 0, 0), rd(2 * IV - 200000, 10, 0, 0),
                      rd(2 * IV + 200000, 20, 0, 0)};
    assert_int_equal(stm_interval(r, 3, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_MISSING);
    assert_int_equal(x.import_wh, 0);
    /* exactly 300 s apart is allowed: 10 + 10 * 150/300 = 15 */
    mtr_sample g[] = {rd(IV, 0, 0, 0), rd(2 * IV - 150000, 10, 0, 0),
                      rd(2 * IV + 150000, 20, 0, 0)};
    assert_int_equal(stm_interval(g, 3, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_GOOD);
    assert_int_equal(x.import_wh, 15);
    /* readings only before the end: the end boundary is unknown */
    assert_int_equal(stm_interval(r, 2, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_MISSING);
}

static void flagged_readings(void **st)
{
    (void)st;
    stm_result x;
    /* a JUMP-flagged reading inside: held, values of the good boundaries kept for the record */
    mtr_sample a[] = {rd(IV, 0, 0, 0), rd(IV + 100000, 99999, 0, MTR_Q_JUMP),
                      rd(2 * IV, 700, 0, 0)};
    assert_int_equal(stm_interval(a, 3, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_FLAGGED);
    assert_int_equal(x.quality, MTR_Q_JUMP);
    assert_int_equal(x.import_wh, 700);
    /* a flagged reading before the start but between the two readings the start boundary is
     * interpolated from: the boundary is suspect, held */
    mtr_sample b[] = {rd(IV - 100000, 0, 0, 0), rd(IV - 50000, 0, 0, MTR_Q_COMM),
                      rd(IV + 100000, 20, 0, 0), rd(2 * IV, 200, 0, 0)};
    assert_int_equal(stm_interval(b, 4, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_FLAGGED);
    assert_int_equal(x.quality, MTR_Q_COMM);
    /* a flagged reading before the readings used: irrelevant. start = 0 + 20 * 1/2 = 10;
     * import = 200 - 10 = 190 */
    mtr_sample c[] = {rd(IV - 250000, 0, 0, MTR_Q_COMM), rd(IV - 100000, 0, 0, 0),
                      rd(IV + 100000, 20, 0, 0), rd(2 * IV, 200, 0, 0)};
    assert_int_equal(stm_interval(c, 4, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_GOOD);
    assert_int_equal(x.import_wh, 190);
    /* a flagged reading exactly on the boundary, good ones either side: held */
    mtr_sample d[] = {rd(IV - 10000, 0, 0, 0), rd(IV, 5, 0, MTR_Q_NAN), rd(IV + 10000, 10, 0, 0),
                      rd(2 * IV, 100, 0, 0)};
    assert_int_equal(stm_interval(d, 4, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_FLAGGED);
    assert_int_equal(x.quality, MTR_Q_NAN);
    /* only communication errors during the interval: flagged (not just missing) */
    mtr_sample e[] = {rd(IV + 1000, 0, 0, MTR_Q_COMM), rd(IV + 2000, 0, 0, MTR_Q_COMM)};
    assert_int_equal(stm_interval(e, 2, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_FLAGGED);
    assert_int_equal(x.quality, MTR_Q_COMM);
    assert_int_equal(x.import_wh, 0);
}

static void implausible_steps(void **st)
{
    (void)st;
    stm_result x;
    /* a counter going down between two good readings inside: flagged backwards, no values */
    mtr_sample a[] = {rd(IV, 100, 0, 0), rd(IV + 60000, 90, 0, 0), rd(2 * IV, 300, 0, 0)};
    assert_int_equal(stm_interval(a, 3, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_FLAGGED);
    assert_int_equal(x.quality, MTR_Q_BACKWARDS);
    assert_int_equal(x.import_wh, 0);
    /* 10 kW rating, 60 s: at most ceil(10000 * 60000 / 3.6e6) = ceil(166.7) = 167 Wh */
    stm_rules small = {300000, 10000};
    mtr_sample b[] = {rd(IV, 0, 0, 0), rd(IV + 60000, 167, 0, 0), rd(2 * IV, 300, 0, 0)};
    assert_int_equal(stm_interval(b, 3, IV, 2 * IV, &small, &x), STM_OK);
    assert_int_equal(x.status, STM_GOOD);
    assert_int_equal(x.import_wh, 300);
    b[1].import_wh = 168; /* one Wh more than the rating allows */
    b[2].import_wh = 301;
    assert_int_equal(stm_interval(b, 3, IV, 2 * IV, &small, &x), STM_OK);
    assert_int_equal(x.status, STM_FLAGGED);
    assert_int_equal(x.quality, MTR_Q_JUMP);
    /* with the check off (0) the same readings are good */
    stm_rules off = {300000, 0};
    assert_int_equal(stm_interval(b, 3, IV, 2 * IV, &off, &x), STM_OK);
    assert_int_equal(x.status, STM_GOOD);
    assert_int_equal(x.import_wh, 301);
    /* the two readings around a boundary going backwards */
    mtr_sample c[] = {rd(IV - 1000, 100, 0, 0), rd(IV + 1000, 50, 0, 0), rd(2 * IV, 300, 0, 0)};
    assert_int_equal(stm_interval(c, 3, IV, 2 * IV, &RULES, &x), STM_OK);
    assert_int_equal(x.status, STM_FLAGGED);
    assert_true(x.quality & MTR_Q_BACKWARDS);
}

static void bad_arguments(void **st)
{
    (void)st;
    stm_result x;
    mtr_sample r[] = {rd(IV + 5, 0, 0, 0), rd(IV + 5, 1, 0, 0)};
    assert_int_equal(stm_interval(r, 2, IV, 2 * IV, &RULES, &x), STM_E_INVAL); /* not ascending */
    assert_int_equal(stm_interval(r, 1, IV, IV, &RULES, &x), STM_E_INVAL);
    stm_rules nogap = {0, 0};
    assert_int_equal(stm_interval(r, 1, IV, 2 * IV, &nogap, &x), STM_E_INVAL);
    int64_t from, to;
    stm_window(IV, 2 * IV, &RULES, &from, &to);
    assert_int_equal(from, IV - 300000);
    assert_int_equal(to, 2 * IV + 300000);
    stm_window(INT64_MIN + 5, 0, &RULES, &from, &to);
    assert_true(from == INT64_MIN); /* saturates */
}

/* The agent and settlement read the same readings the same way: for random good readings every
 * interval the agent completes has net energy = settlement's export - import. */
/* Issue 12, layer 1, hand-worked: a 15-minute interval (900 s) and
 *   connection 17250 W (25 A x 230 V x 3): cap = ceil(17250 x 900 / 3600) = 4312.5 -> 4313 Wh;
 *   PV 5000 Wp: 1250 Wh; battery 5000 W for 900 s = 1250 Wh, but only 1000 Wh stored. */
static void physical_limits(void **st)
{
    (void)st;
    stm_limits l = {17250, 5000, 1000, 5000};
    assert_int_equal(stm_limits_check(&l, 4313, 0, 900), 0);
    assert_int_equal(stm_limits_check(&l, 4314, 0, 900), MTR_Q_LIMIT);
    /* export: PV 1250 + battery min(1250, 1000) = 2250 */
    assert_int_equal(stm_limits_check(&l, 0, 2250, 900), 0);
    assert_int_equal(stm_limits_check(&l, 0, 2251, 900), MTR_Q_LIMIT);
    /* no solar, no battery: any export is beyond (the swapped meter) */
    stm_limits none = {17250, 0, 0, STM_LIMIT_NONE};
    assert_int_equal(stm_limits_check(&none, 3000, 0, 900), 0);
    assert_int_equal(stm_limits_check(&none, 0, 1, 900), MTR_Q_LIMIT);
    /* only the connection registered: export up to it is not questioned */
    stm_limits conn = {10000, STM_LIMIT_NONE, STM_LIMIT_NONE, STM_LIMIT_NONE};
    assert_int_equal(stm_limits_check(&conn, 0, 2500, 900), 0);
    assert_int_equal(stm_limits_check(&conn, 0, 2501, 900), MTR_Q_LIMIT);
    /* nothing registered: nothing checked; 1 s rounds up to 1 Wh for 1 W */
    stm_limits off = {STM_LIMIT_NONE, STM_LIMIT_NONE, STM_LIMIT_NONE, STM_LIMIT_NONE};
    assert_int_equal(stm_limits_check(&off, INT64_C(1) << 40, INT64_C(1) << 40, 900), 0);
    stm_limits one = {1, STM_LIMIT_NONE, STM_LIMIT_NONE, STM_LIMIT_NONE};
    assert_int_equal(stm_limits_check(&one, 1, 1, 1), 0);
    assert_int_equal(stm_limits_check(&one, 2, 0, 1), MTR_Q_LIMIT);
}

static void same_rule_as_agent(void **st)
{
    (void)st;
    unsigned seed = 42;
    for (int round = 0; round < 50; round++) {
        mtr_sample r[400];
        size_t n = 0;
        int64_t t = IV * 10 + (int64_t)(rand_r(&seed) % 60000), imp = 0, exp = 0;
        while (n < 400) {
            r[n++] = rd(t, imp, exp, 0);
            int64_t dt = 5000 + rand_r(&seed) % 120000;
            t += dt;
            /* within 100 kW: at most dt / 36 Wh */
            imp += (int64_t)rand_r(&seed) % (dt / 40);
            exp += (int64_t)rand_r(&seed) % (dt / 80);
        }
        agm_state a;
        assert_true(agm_init(&a, IV, RULES.max_gap_ms, RULES.max_power_w));
        for (size_t i = 0; i < n; i++)
            assert_true(agm_add(&a, &r[i]) >= 0);
        int checked = 0;
        for (int64_t iv = r[0].ts_ms / IV; iv <= r[n - 1].ts_ms / IV; iv++) {
            int64_t net;
            if (!agm_interval_net(&a, iv, &net))
                continue;
            stm_result x;
            assert_int_equal(stm_interval(r, n, iv * IV, (iv + 1) * IV, &RULES, &x), STM_OK);
            assert_int_equal(x.status, STM_GOOD);
            assert_int_equal(x.export_wh - x.import_wh, net);
            checked++;
        }
        assert_true(checked >= 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_at_floor),  cmocka_unit_test(exact_boundaries),
        cmocka_unit_test(interpolated_boundaries), cmocka_unit_test(telescoping),
        cmocka_unit_test(gaps_and_missing),   cmocka_unit_test(flagged_readings),
        cmocka_unit_test(implausible_steps),  cmocka_unit_test(bad_arguments),
        cmocka_unit_test(same_rule_as_agent), cmocka_unit_test(physical_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
