/*
 * Tests of batched order intake (controller/src/ingest.h) on real SQLite files with real
 * Ed25519 keys and the real verify pool:
 *  - a burst of several hundred homes' messages with resends, replays, replacements, stale,
 *    forged, junk and unregistered orders mixed in gets, message for message, the receipt the
 *    per-order rules give (the reason worked out by hand per script in burst.c, and the exact
 *    bytes of the reference that stores one order per transaction), and leaves the same rows in
 *    the database, however the burst is cut into batches (1, 7, random, 1024) and with 0 or 2
 *    verify workers;
 *  - resends of stored orders cost no signature check;
 *  - when the store fails, the whole batch is rolled back and every order of it is told
 *    "internal" (resend), nothing is kept, and resending them later gives the normal receipts;
 *  - the bounds: a full batch refuses more, bad settings are refused.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "burst.h"
#include "orders/ingest.h"
#include "db/registry.h"

#define HOMES 300
#define TARGET INT64_C(1950000)          /* 2025-08-05T20:00:00Z ... any future interval */
#define STALE (TARGET - 4)               /* started an hour before NOW */
#define NOW_MS ((TARGET - 3) * 900 * 1000 - 450 * 1000) /* mid-interval, 3 before the target */
#define CREATED_MS (NOW_MS - 60000)

static burst B;
static char (*reference)[CTL_RECEIPT_MAX];
static char *reference_rows;
static char *dir;

/* Every row the order path writes, in order, as text: two stores that took the same orders
 * the same way give the same text. */
static char *dump(ctl_store *s)
{
    static const char *const q[] = {
        ("SELECT order_id, participant, hex(nonce), interval_id, created_ms, side, hex(signed), "
         "received_ms, status, reason, superseded FROM orders ORDER BY order_id"),
        "SELECT * FROM order_steps ORDER BY order_id, step",
        "SELECT * FROM receipts ORDER BY order_id",
        "SELECT * FROM market_ids ORDER BY market_id"};
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        sqlite3_stmt *st;
        assert_int_equal(ctl_db_prepare(ctl_store_db(s), q[i], &st), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                const unsigned char *t = sqlite3_column_text(st, c);
                size_t n = strlen(t ? (const char *)t : "") + 2;
                while (len + n + 1 > cap) {
                    cap *= 2;
                    out = realloc(out, cap);
                    assert_non_null(out);
                }
                len += (size_t)sprintf(out + len, "%s|", t ? (const char *)t : "");
            }
            out[len++] = '\n';
            out[len] = '\0';
        }
        sqlite3_finalize(st);
    }
    return out;
}

static ctl_store *fresh_store(const char *name)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    ctl_store_identity id = {BURST_COMMUNITY, 900, STALE - 10};
    ctl_store *s = NULL;
    assert_int_equal(ctl_store_open(path, &id, &s, err, sizeof err), CTL_ST_OK);
    burst_register(ctl_store_db(s), &B);
    return s;
}

static int group_setup(void **state)
{
    (void)state;
    dir = tst_tmpdir("ingest");
    burst_make(&B, HOMES, TARGET, STALE, CREATED_MS);
    /* the reference: one order per transaction, in burst order */
    reference = calloc(B.n, sizeof *reference);
    ctl_store *s = fresh_store("reference");
    for (size_t i = 0; i < B.n; i++)
        burst_oracle_one(s, &B.msgs[i], NOW_MS, reference[i]);
    reference_rows = dump(s);
    ctl_store_free(s);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    burst_free(&B);
    free(reference);
    free(reference_rows);
    tst_rmtree(dir);
    free(dir);
    return 0;
}

/* ---- collecting outcomes ---- */

typedef struct {
    size_t n;
    char (*receipts)[CTL_RECEIPT_MAX];
    int *stored, *duplicate, *reason;
} collected;

static void collect(void *ctx, const ctl_ingest_outcome *o)
{
    collected *c = ctx;
    assert_true(c->n < B.n);
    snprintf(c->receipts[c->n], CTL_RECEIPT_MAX, "%s", o->receipt);
    c->stored[c->n] = o->stored;
    c->duplicate[c->n] = o->duplicate;
    c->reason[c->n] = o->reason;
    c->n++;
}

static void collected_init(collected *c)
{
    c->n = 0;
    c->receipts = calloc(B.n, sizeof *c->receipts);
    c->stored = calloc(B.n, sizeof(int));
    c->duplicate = calloc(B.n, sizeof(int));
    c->reason = calloc(B.n, sizeof(int));
}

static void collected_free(collected *c)
{
    free(c->receipts);
    free(c->stored);
    free(c->duplicate);
    free(c->reason);
}

static ctl_ingest *make_ingest(ctl_store *s, unsigned threads, size_t batch, collected *c)
{
    ctl_ingest_config cfg = {burst_admit_params(), threads, batch, collect, c};
    ctl_ingest *g = NULL;
    assert_int_equal(ctl_ingest_new(&cfg, s, &g), CTL_INGEST_OK);
    return g;
}

static const char *reason_of(const char *receipt)
{
    ctl_receipt r;
    char why[CTL_DETAIL_MAX];
    assert_int_equal(ctl_receipt_from_json(receipt, strlen(receipt), &r, why, sizeof why),
                     CTL_R_OK);
    return ctl_reason_name(r.reason);
}

/* The burst through the ingest, cut into batches as `cut` says; then every check. */
static void run_burst(const char *name, unsigned threads, size_t batch, unsigned cut_seed)
{
    ctl_store *s = fresh_store(name);
    collected c;
    collected_init(&c);
    ctl_ingest *g = make_ingest(s, threads, batch, &c);
    unsigned seed = cut_seed;
    size_t flushes = 0;
    for (size_t i = 0; i < B.n; i++) {
        if (ctl_ingest_pending(g) == batch ||
            (cut_seed && ctl_ingest_pending(g) > 0 && rand_r(&seed) % 23 == 0)) {
            assert_int_equal(ctl_ingest_flush(g), CTL_ST_OK);
            flushes++;
        }
        assert_int_equal(ctl_ingest_add(g, B.msgs[i].topic, B.msgs[i].body, B.msgs[i].len,
                                        NOW_MS),
                         CTL_INGEST_OK);
    }
    assert_int_equal(ctl_ingest_flush(g), CTL_ST_OK);
    flushes++;
    assert_int_equal(c.n, B.n);
    for (size_t i = 0; i < B.n; i++) {
        const burst_msg *m = &B.msgs[i];
        /* the reason worked out by hand for the script */
        if (strcmp(reason_of(c.receipts[i]), m->expect) != 0)
            fail_msg("%s: message %zu (home %zu, script %zu): %s, expected %s", name, i, m->home,
                     m->home % 10, reason_of(c.receipts[i]), m->expect);
        /* a resend gets the very receipt of the order on file */
        if (m->dup_of >= 0)
            assert_string_equal(c.receipts[i], c.receipts[m->dup_of]);
        assert_int_equal(c.duplicate[i], m->dup_of >= 0);
        assert_int_equal(c.stored[i], 1);
        assert_string_equal(ctl_reason_name(c.reason[i]), m->expect);
        /* and the exact bytes the one-at-a-time path gives */
        assert_string_equal(c.receipts[i], reference[i]);
    }
    char *rows = dump(s);
    assert_string_equal(rows, reference_rows);
    free(rows);
    ctl_ingest_stats st;
    ctl_ingest_get_stats(g, &st);
    assert_int_equal(st.orders, B.n);
    assert_int_equal(st.batches, flushes);
    assert_int_equal(st.failed, 0);
    assert_true(st.largest_batch <= batch);
    ctl_ingest_free(g);
    ctl_store_free(s);
    collected_free(&c);
}

static void burst_in_one_big_batch(void **state)
{
    (void)state;
    assert_true(B.n > 500 && B.n <= 2 * CTL_INGEST_BATCH_MAX);
    run_burst("big", 2, CTL_INGEST_BATCH_MAX, 0);
}

static void burst_in_batches_of_7(void **state)
{
    (void)state;
    run_burst("seven", 2, 7, 0);
}

static void burst_one_by_one_without_workers(void **state)
{
    (void)state;
    run_burst("single", 0, 1, 0);
}

static void burst_cut_at_random(void **state)
{
    (void)state;
    run_burst("random-a", 2, 256, 11);
    run_burst("random-b", 1, 64, 12345);
}

/* Resends of stored orders are answered from the store: no signature is checked again. */
static void resends_cost_no_verification(void **state)
{
    (void)state;
    ctl_store *s = fresh_store("resend");
    collected c;
    collected_init(&c);
    ctl_ingest *g = make_ingest(s, 2, CTL_INGEST_BATCH_MAX, &c);
    size_t accepted_first = 0, n_first = 0;
    for (size_t i = 0; i < B.n && B.msgs[i].home == i; i++) { /* the first round: step 0 */
        assert_int_equal(ctl_ingest_add(g, B.msgs[i].topic, B.msgs[i].body, B.msgs[i].len,
                                        NOW_MS),
                         CTL_INGEST_OK);
        n_first++;
    }
    assert_int_equal(ctl_ingest_flush(g), CTL_ST_OK);
    for (size_t i = 0; i < n_first; i++)
        accepted_first += !strcmp(reason_of(c.receipts[i]), "ok");
    ctl_ingest_stats before, after;
    ctl_ingest_get_stats(g, &before);
    /* every home's first message again */
    for (size_t i = 0; i < n_first; i++)
        assert_int_equal(ctl_ingest_add(g, B.msgs[i].topic, B.msgs[i].body, B.msgs[i].len,
                                        NOW_MS + 5000),
                         CTL_INGEST_OK);
    assert_int_equal(ctl_ingest_flush(g), CTL_ST_OK);
    ctl_ingest_get_stats(g, &after);
    /* not one more Ed25519 check, but for the forged orders (script 4): a rejected order
     * claims no nonce, so its resend is checked again like any new order */
    size_t forged = 0;
    for (size_t h = 0; h < n_first; h++)
        forged += h % 10 == 4;
    assert_true(accepted_first > 100);
    assert_int_equal(after.verified, before.verified + forged);
    size_t dups = 0;
    for (size_t i = 0; i < n_first; i++) {
        if (c.duplicate[n_first + i]) {
            dups++;
            assert_string_equal(c.receipts[n_first + i], c.receipts[i]);
        }
    }
    assert_int_equal(dups, accepted_first);
    ctl_ingest_free(g);
    ctl_store_free(s);
    collected_free(&c);
}

/* The store fails (another writer holds the lock past the busy timeout): nothing of the batch
 * is kept and every order of it is told to resend; the resends then get the normal receipts. */
static void failed_commit_loses_only_unreceipted(void **state)
{
    (void)state;
    ctl_store *s = fresh_store("fail");
    char path[512];
    snprintf(path, sizeof path, "%s/fail.db", dir);
    collected c;
    collected_init(&c);
    ctl_ingest *g = make_ingest(s, 2, CTL_INGEST_BATCH_MAX, &c);
    size_t n = 200;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ctl_ingest_add(g, B.msgs[i].topic, B.msgs[i].body, B.msgs[i].len,
                                        NOW_MS),
                         CTL_INGEST_OK);
    sqlite3 *other;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    ctl_db_busy_timeout(ctl_store_db(s), 50);
    int rc = ctl_ingest_flush(g);
    assert_int_not_equal(rc, CTL_ST_OK);
    assert_int_equal(c.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c.stored[i], 0);
        assert_int_equal(c.reason[i], CTL_R_INTERNAL);
        assert_string_equal(reason_of(c.receipts[i]), "internal");
    }
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    ctl_db_busy_timeout(ctl_store_db(s), 5000);
    sqlite3_stmt *st;
    assert_int_equal(ctl_db_prepare(ctl_store_db(s), "SELECT count(*) FROM orders", &st),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    ctl_ingest_stats stats;
    ctl_ingest_get_stats(g, &stats);
    assert_int_equal(stats.failed, 1);
    /* the homes resend: now they get what the rules say, as if the first try never happened */
    c.n = 0;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ctl_ingest_add(g, B.msgs[i].topic, B.msgs[i].body, B.msgs[i].len,
                                        NOW_MS),
                         CTL_INGEST_OK);
    assert_int_equal(ctl_ingest_flush(g), CTL_ST_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c.stored[i], 1);
        assert_string_equal(c.receipts[i], reference[i]);
    }
    ctl_ingest_free(g);
    ctl_store_free(s);
    collected_free(&c);
}

static void bounds(void **state)
{
    (void)state;
    ctl_store *s = fresh_store("bounds");
    collected c;
    collected_init(&c);
    ctl_ingest_config cfg = {burst_admit_params(), 0, 0, collect, &c};
    ctl_ingest *g = NULL;
    assert_int_equal(ctl_ingest_new(&cfg, s, &g), CTL_INGEST_E_INVAL);
    cfg.batch_max = CTL_INGEST_BATCH_MAX + 1;
    assert_int_equal(ctl_ingest_new(&cfg, s, &g), CTL_INGEST_E_INVAL);
    cfg.batch_max = 2;
    cfg.on_outcome = NULL;
    assert_int_equal(ctl_ingest_new(&cfg, s, &g), CTL_INGEST_E_INVAL);
    g = make_ingest(s, 0, 2, &c);
    assert_int_equal(ctl_ingest_flush(g), CTL_ST_OK); /* nothing waiting */
    assert_int_equal(c.n, 0);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(ctl_ingest_add(g, B.msgs[i].topic, B.msgs[i].body, B.msgs[i].len,
                                        NOW_MS),
                         CTL_INGEST_OK);
    assert_int_equal(ctl_ingest_add(g, B.msgs[2].topic, B.msgs[2].body, B.msgs[2].len, NOW_MS),
                     CTL_INGEST_E_FULL);
    assert_int_equal(ctl_ingest_pending(g), 2);
    assert_int_equal(ctl_ingest_flush(g), CTL_ST_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(ctl_ingest_pending(g), 0);
    assert_string_equal(ctl_ingest_strerror(CTL_INGEST_E_FULL), "batch is full");
    ctl_ingest_free(g);
    ctl_ingest_free(NULL);
    ctl_store_free(s);
    collected_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_in_one_big_batch),
        cmocka_unit_test(burst_in_batches_of_7),
        cmocka_unit_test(burst_one_by_one_without_workers),
        cmocka_unit_test(burst_cut_at_random),
        cmocka_unit_test(resends_cost_no_verification),
        cmocka_unit_test(failed_commit_loses_only_unreceipted),
        cmocka_unit_test(bounds),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
