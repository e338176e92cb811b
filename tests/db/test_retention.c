/*
 * The retention rule for readings (controller/db/retention.h): the decision on hand-made runs,
 * then a day of 1 s readings of two meters in a real SQLite store, thinned in bounded passes.
 * What settlement computes for every interval (stm_interval, the controller's rule) must be
 * the same before and after; flagged readings must all stay; what is left must be about two
 * readings per interval boundary; no pass may look at more rows than its budget.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker.h"
#include "db/retention.h"
#include "db/store.h"
#include "settle/settle_meter.h"

#define IV_MS 900000
#define DAY_S 86400
#define T0_MS INT64_C(1700006400000) /* a multiple of 900 s: a boundary */

static void decide_by_hand(void **state)
{
    (void)state;
    bool keep[16];
    int64_t resume = 0;
    /* interval 10 ms; readings every 3 ms: 0 3 6 9 12 15 18 21, all good */
    ctl_ret_row r[] = {{0, 0}, {3, 0}, {6, 0}, {9, 0}, {12, 0}, {15, 0}, {18, 0}, {21, 0}};
    size_t n = ctl_retention_decide(r, 8, INT64_MIN, 10, false, keep, &resume);
    /* 21 has no later good reading and more may come: undecided, the next pass starts there */
    assert_int_equal(n, 7);
    assert_int_equal(resume, 21);
    /* boundary 0: before = 0, after = 3; boundary 10: 9 and 12; boundary 20: 18 (and 21) */
    bool want[] = {true, true, false, true, true, false, true};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(keep[i], want[i]);
    /* with more rows beyond the batch, the same; but a good first row followed only by
     * flagged ones is kept and passed, so the pass moves on */
    n = ctl_retention_decide(r, 8, INT64_MIN, 10, true, keep, &resume);
    assert_int_equal(n, 7);
    ctl_ret_row j[] = {{0, 0}, {3, MTR_Q_JUMP}, {6, MTR_Q_JUMP}};
    n = ctl_retention_decide(j, 3, INT64_MIN, 10, true, keep, &resume);
    assert_int_equal(n, 3);
    assert_int_equal(resume, 7);
    assert_true(keep[0] && keep[1] && keep[2]);
    /* a flagged reading is kept, and does not count as a boundary reading: the good ones
     * around it are */
    ctl_ret_row f[] = {{12, 0}, {14, 0}, {19, MTR_Q_JUMP}, {21, 0}, {23, 0}, {25, 0}};
    n = ctl_retention_decide(f, 6, 9, 10, false, keep, &resume);
    assert_int_equal(n, 5);
    bool want_f[] = {true, true, true, true, false};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(keep[i], want_f[i]);
    /* the previous good reading is known from before the run: 12 is not first after 10 */
    ctl_ret_row g[] = {{12, 0}, {14, 0}, {16, 0}};
    n = ctl_retention_decide(g, 3, 11, 10, false, keep, &resume);
    assert_int_equal(n, 2);
    assert_false(keep[0]);
    assert_false(keep[1]);
    /* a reading exactly on a boundary is the one before it; the next is the one after */
    ctl_ret_row h[] = {{10, 0}, {13, 0}, {16, 0}};
    n = ctl_retention_decide(h, 3, 7, 10, false, keep, &resume);
    assert_int_equal(n, 2);
    assert_true(keep[0]);
    assert_true(keep[1]);
}

/* meter a: 1000 W of import; meter b: import and export, with a 200 s gap across a boundary */
static void reading(int meter, int64_t k, mtr_sample *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->meter_id, sizeof s->meter_id, meter ? "h-b" : "h-a");
    s->ts_ms = T0_MS + k * 1000;
    s->power_w = meter ? -300 : 1000;
    s->import_wh = meter ? 50000 + k / 36 : 1000000 + k * 5 / 18;
    s->export_wh = meter ? 7000 + k / 10 : 0;
    s->soc_permille = -1;
    if (!meter && (k == 5000 || (k >= 40000 && k < 40010)))
        s->quality = k == 5000 ? MTR_Q_JUMP : MTR_Q_BACKWARDS;
}

typedef struct {
    mtr_sample *v;
    size_t n, cap;
} vec;

static int collect(const mtr_sample *r, void *ctx)
{
    vec *x = ctx;
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 1024;
        x->v = realloc(x->v, x->cap * sizeof *x->v);
        assert_non_null(x->v);
    }
    x->v[x->n++] = *r;
    return 0;
}

/* What settlement says for each interval of the day, for one meter. */
static void settle_day(ctl_store *s, const char *meter, stm_result out[96])
{
    stm_rules rules = {300000, 100000};
    for (int i = 0; i < 96; i++) {
        int64_t start = T0_MS + (int64_t)i * IV_MS, end = start + IV_MS, from, to;
        stm_window(start, end, &rules, &from, &to);
        vec x = {0};
        assert_int_equal(ctl_store_readings(s, meter, from, to + 1, collect, &x), CTL_ST_OK);
        assert_int_equal(stm_interval(x.v, x.n, start, end, &rules, &out[i]), STM_OK);
        free(x.v);
    }
}

static size_t count(ctl_store *s, const char *meter, bool flagged_only)
{
    vec x = {0};
    assert_int_equal(ctl_store_readings(s, meter, INT64_MIN, INT64_MAX, collect, &x), CTL_ST_OK);
    size_t n = 0;
    for (size_t i = 0; i < x.n; i++)
        n += !flagged_only || x.v[i].quality != MTR_Q_GOOD;
    free(x.v);
    return n;
}

static void day_thinned_in_passes(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("retention"), path[4200], err[512];
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/community.db", dir);
    ctl_store_identity id = {"testville", 900, T0_MS / IV_MS};
    ctl_store *s;
    assert_int_equal(ctl_store_open(path, &id, &s, err, sizeof err), CTL_ST_OK);
    static mtr_sample batch[CTL_STORE_READINGS_MAX];
    for (int meter = 0; meter < 2; meter++) {
        size_t n = 0, ins;
        for (int64_t k = 0; k < DAY_S; k++) {
            if (meter && k >= 20600 && k < 20800)
                continue;
            reading(meter, k, &batch[n++]);
            if (n == CTL_STORE_READINGS_MAX || k == DAY_S - 1) {
                assert_int_equal(ctl_store_put_readings(s, batch, n, 0, &ins), CTL_ST_OK);
                n = 0;
            }
        }
    }
    stm_result before[2][96], after[2][96];
    settle_day(s, "h-a", before[0]);
    settle_day(s, "h-b", before[1]);
    size_t flagged = count(s, "h-a", true);
    assert_int_equal(flagged, 11);
    assert_int_equal(count(s, "h-b", false), DAY_S - 200);

    /* everything but the last hour is past the cutoff */
    int64_t cutoff = T0_MS + (DAY_S - 3600) * INT64_C(1000);
    ctl_retention_state rs = {{0}};
    int passes = 0;
    uint64_t deleted = 0;
    for (;; passes++) {
        ctl_retention_stats st = {0};
        assert_int_equal(ctl_store_thin_readings(s, &rs, cutoff, IV_MS, 5000, &st), CTL_ST_OK);
        assert_true(st.examined <= 5000); /* bounded */
        deleted += st.deleted;
        if (st.deleted == 0 && !rs.cursor[0] && passes > 2)
            break;
        assert_true(passes < 200);
    }
    settle_day(s, "h-a", after[0]);
    settle_day(s, "h-b", after[1]);
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 96; i++) {
            assert_int_equal(after[m][i].status, before[m][i].status);
            assert_int_equal(after[m][i].import_wh, before[m][i].import_wh);
            assert_int_equal(after[m][i].export_wh, before[m][i].export_wh);
            assert_int_equal(after[m][i].quality, before[m][i].quality);
        }
    /* flagged readings all stay; before the cutoff, two per boundary (92 boundaries up to
     * 23:00) plus the flagged ones and the undecided last one; the last hour untouched */
    assert_int_equal(count(s, "h-a", true), flagged);
    size_t a = count(s, "h-a", false), b = count(s, "h-b", false);
    fprintf(stderr, "retention: %zu passes, %llu deleted; left h-a %zu, h-b %zu\n", (size_t)passes,
            (unsigned long long)deleted, a, b);
    assert_int_equal(a, 2 * 92 + 1 + flagged + 3600);
    assert_int_equal(b, 2 * 92 + 1 + 3600);

    /* a newer cutoff goes on from the watermarks: nothing already thinned is looked at again */
    ctl_retention_stats st = {0};
    assert_int_equal(ctl_store_thin_readings(s, &rs, cutoff + 1800000, IV_MS, 100000, &st),
                     CTL_ST_OK);
    assert_true(st.examined <= 2 * (1800 + 2));
    ctl_store_free(s);
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(decide_by_hand),
                                       cmocka_unit_test(day_thinned_in_passes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
