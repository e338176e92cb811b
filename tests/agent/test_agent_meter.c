/*
 * The agent's interval energy from meter counters (controller/src/agent_meter.c): known answers
 * worked by hand, the telescoping property, and every refusal.
 */
#include "agent/agent_meter.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#define S 1000 /* ms per s */

static mtr_sample rd(int64_t t_s, int64_t imp, int64_t exp)
{
    mtr_sample r = {.meter_id = "m", .ts_ms = t_s * S, .import_wh = imp, .export_wh = exp,
                    .soc_permille = -1, .quality = MTR_Q_GOOD};
    return r;
}

static void test_known_answer(void **state)
{
    (void)state;
    agm_state s;
    assert_true(agm_init(&s, 900 * S, 300 * S, 100000));
    int64_t id, net;
    assert_false(agm_last_complete(&s, &id, &net));
    assert_int_equal(agm_add(&s, &(mtr_sample){0}), AGM_FIRST); /* zeroed sample is good */
    assert_true(agm_init(&s, 900 * S, 300 * S, 100000));
    assert_int_equal(agm_add(&s, &(mtr_sample){.ts_ms = 800 * S, .import_wh = 1000,
                                                .export_wh = 500}),
                     AGM_FIRST);
    /* boundary 900 s (start of interval 1): import 1000 + 100 * 100/200 = 1050, export 500 */
    assert_int_equal(agm_add(&s, &(mtr_sample){.ts_ms = 1000 * S, .import_wh = 1100,
                                                .export_wh = 500}),
                     AGM_USED);
    assert_false(agm_last_complete(&s, &id, &net)); /* one boundary only */
    mtr_sample r = rd(1700, 1100, 800);
    assert_int_equal(agm_add(&s, &r), AGM_USED);
    /* boundary 1800 s (start of interval 2): export 800 + 200 * 100/200 = 900, import 1100 */
    r = rd(1900, 1100, 1000);
    assert_int_equal(agm_add(&s, &r), AGM_USED);
    /* interval 1: exported 900 - 500 = 400, imported 1100 - 1050 = 50: net +350 */
    assert_true(agm_last_complete(&s, &id, &net));
    assert_int_equal(id, 1);
    assert_int_equal(net, 350);
    assert_true(agm_interval_net(&s, 1, &net));
    assert_int_equal(net, 350);
    assert_false(agm_interval_net(&s, 0, &net));
    assert_false(agm_interval_net(&s, 2, &net));

    /* a reading exactly on a boundary is the boundary: interval 2 = [1800, 2700) */
    r = rd(2500, 1300, 1000); /* 600 s after the last one, but no boundary in between */
    assert_int_equal(agm_add(&s, &r), AGM_USED);
    r = rd(2700, 1400, 1000);
    assert_int_equal(agm_add(&s, &r), AGM_USED);
    assert_true(agm_last_complete(&s, &id, &net));
    assert_int_equal(id, 2);
    /* exported 1000 - 900 = 100, imported 1400 - 1100 = 300: net -200 */
    assert_int_equal(net, -200);
}

/* The boundary value at the start of interval id; fails the test when it is not kept. */
static agm_boundary boundary(const agm_state *s, int64_t id)
{
    for (unsigned i = 0; i < AGM_BOUNDARIES && i < s->n_b; i++)
        if (s->b[i].interval_id == id)
            return s->b[i];
    fail_msg("no boundary for interval %lld", (long long)id);
    return (agm_boundary){0};
}

static void test_floors_telescope(void **state)
{
    (void)state;
    /* Random readings 1..60 s apart over a day with small increments: the interval nets add up
     * exactly to the rise between the first and last boundary (the floors telescope), every
     * interval completes in order, and each boundary lies between the readings around it. */
    srand(7);
    agm_state s;
    assert_true(agm_init(&s, 900 * S, 120 * S, 50000));
    int64_t t = 13 * S + 7, imp = 5000, exp = 100;
    int64_t sum = 0, first_id = -1, last_id = -1;
    agm_boundary first = {0};
    mtr_sample prev = {0};
    while (t < 86400 * S) {
        mtr_sample r = {.ts_ms = t, .import_wh = imp, .export_wh = exp};
        assert_true(agm_add(&s, &r) >= 0);
        int64_t id, net;
        if (agm_last_complete(&s, &id, &net) && id > last_id) {
            if (first_id < 0) {
                first_id = id;
                first = boundary(&s, id);
            } else {
                assert_int_equal(id, last_id + 1);
            }
            sum += net;
            last_id = id;
            agm_boundary b = boundary(&s, id + 1);
            assert_true(b.import_wh >= prev.import_wh && b.import_wh <= r.import_wh);
            assert_true(b.export_wh >= prev.export_wh && b.export_wh <= r.export_wh);
        }
        prev = r;
        t += 1 * S + (int64_t)(rand() % (59 * S));
        imp += rand() % 7;
        exp += rand() % 5;
    }
    assert_int_equal(first_id, 1);
    assert_int_equal(last_id, 94); /* boundary 96 (midnight) is after the last reading */
    agm_boundary end = boundary(&s, last_id + 1);
    assert_int_equal(sum, (end.export_wh - first.export_wh) - (end.import_wh - first.import_wh));
}

static void test_gap_quality_and_refusals(void **state)
{
    (void)state;
    agm_state s;
    assert_true(agm_init(&s, 900 * S, 300 * S, 10000)); /* 10 kW meter */
    mtr_sample r = rd(800, 1000, 0);
    assert_int_equal(agm_add(&s, &r), AGM_FIRST);
    /* 500 s gap over the 900 s boundary: no boundary value */
    r = rd(1300, 1100, 0);
    assert_int_equal(agm_add(&s, &r), AGM_USED);
    r = rd(2000, 1200, 0);
    assert_int_equal(agm_add(&s, &r), AGM_USED); /* 700 s: no boundary at 1800 either */
    int64_t id, net;
    assert_false(agm_last_complete(&s, &id, &net));
    /* flagged and old readings are ignored without touching the state */
    r = rd(2100, 99999, 0);
    r.quality = MTR_Q_COMM;
    assert_int_equal(agm_add(&s, &r), AGM_E_QUALITY);
    r = rd(2000, 1200, 0);
    assert_int_equal(agm_add(&s, &r), AGM_E_OLD);
    r = rd(1999, 1200, 0);
    assert_int_equal(agm_add(&s, &r), AGM_E_OLD);
    /* 10 kW for 100 s is at most ceil(10000 * 100 / 3600) = 278 Wh: 300 is refused */
    r = rd(2100, 1500, 0);
    assert_int_equal(agm_add(&s, &r), AGM_E_IMPLAUSIBLE);
    /* ...and is the new baseline, so going back to 1250 is "backwards" */
    r = rd(2200, 1250, 0);
    assert_int_equal(agm_add(&s, &r), AGM_E_BACKWARDS);
    /* from the new baseline on, normal readings build boundaries again */
    r = rd(2600, 1300, 0);
    assert_int_equal(agm_add(&s, &r), AGM_USED); /* boundary 2700 not yet */
    r = rd(2800, 1320, 10);
    assert_int_equal(agm_add(&s, &r), AGM_USED); /* boundary 2700: 1310, 5 */
    r = rd(3500, 1390, 10);
    assert_int_equal(agm_add(&s, &r), AGM_USED);
    r = rd(3700, 1410, 10);
    assert_int_equal(agm_add(&s, &r), AGM_USED); /* boundary 3600: 1400, 10 */
    assert_true(agm_last_complete(&s, &id, &net));
    assert_int_equal(id, 3);
    /* exported 10 - 5 = 5, imported 1400 - 1310 = 90: net -85 */
    assert_int_equal(net, -85);
    assert_false(agm_interval_net(&s, 2, &net));
}

static void test_ring_keeps_the_latest(void **state)
{
    (void)state;
    agm_state s;
    assert_true(agm_init(&s, 60 * S, 60 * S, 100000));
    /* a reading on every boundary, exporting 10 Wh per minute */
    for (int64_t k = 0; k < 100; k++) {
        mtr_sample r = rd(60 * k, 0, 10 * k);
        assert_true(agm_add(&s, &r) >= 0);
    }
    int64_t id, net;
    assert_true(agm_last_complete(&s, &id, &net));
    assert_int_equal(id, 98);
    assert_int_equal(net, 10);
    assert_true(agm_interval_net(&s, 99 - AGM_BOUNDARIES + 1, &net)); /* oldest kept */
    assert_false(agm_interval_net(&s, 99 - AGM_BOUNDARIES, &net));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_floors_telescope),
        cmocka_unit_test(test_gap_quality_and_refusals),
        cmocka_unit_test(test_ring_keeps_the_latest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
