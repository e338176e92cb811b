/*
 * The Solana outbox's replicated decisions (solana_outbox.h, docs/cluster.md) without a chain:
 * a cluster leader's outbox proposes an interval's transactions instead of storing them; the
 * proposed op stores exactly those transactions on every node that applies it, a second copy
 * changes nothing, every truncation and an unknown kind are refused without writing anything,
 * and a stored interval is not proposed again. Without a proposer the outbox stores directly,
 * as a single controller's does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h" /* tst_tmpdir, tst_rmtree */
#include "solana/solana_outbox.h"

static struct {
    uint8_t *op;
    size_t len;
    int calls;
} P;

static int capture(void *ctx, const uint8_t *op, size_t len)
{
    (void)ctx;
    free(P.op);
    P.op = malloc(len);
    assert_non_null(P.op);
    memcpy(P.op, op, len);
    P.len = len;
    P.calls++;
    return 0;
}

static int64_t count(ctl_db *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(ctl_db_prepare(db, sql, &st), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static ctl_db *open_db(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ctl_db *db = NULL;
    assert_int_equal(ctl_db_open(path, &db, NULL, 0), CTL_DB_OK);
    return db;
}

static void ops(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("solana-ops");
    assert_non_null(dir);
    ctl_db *a = open_db(dir, "a.db"), *b = open_db(dir, "b.db"), *c = open_db(dir, "c.db");
    ctl_sol_outbox *oa, *ob, *oc;
    assert_int_equal(ctl_sol_outbox_open(a, &oa), CTL_SOLOB_OK);
    assert_int_equal(ctl_sol_outbox_open(b, &ob), CTL_SOLOB_OK);
    assert_int_equal(ctl_sol_outbox_open(c, &oc), CTL_SOLOB_OK);
    ctl_sol_outbox_replicate(oa, capture, NULL);

    /* two "transactions": a signature count, the first signature, then a body */
    uint8_t t[2][200];
    ctl_sol_outbox_tx txs[2];
    for (int i = 0; i < 2; i++) {
        for (size_t k = 0; k < sizeof t[i]; k++)
            t[i][k] = (uint8_t)(k * 7 + (size_t)i * 13 + 1);
        t[i][0] = 1;
        txs[i] = (ctl_sol_outbox_tx){t[i], sizeof t[i] - (size_t)i * 50, t[i] + 1};
    }
    uint8_t hash[32];
    memset(hash, 0x5a, sizeof hash);

    /* the leader proposes, and writes nothing until the entry is applied */
    assert_int_equal(ctl_sol_outbox_add_txs(oa, 1908001, txs, 2, hash, 1000, 42),
                     CTL_SOLOB_PROPOSED);
    assert_int_equal(P.calls, 1);
    assert_int_equal(count(a, "SELECT count(*) FROM solana_outbox"), 0);

    /* every truncation is refused alike and writes nothing */
    for (size_t n = 1; n < P.len; n++)
        assert_int_equal(ctl_sol_outbox_apply(oc, P.op, n), CTL_SOLOB_E_INVAL);
    P.op[0] ^= 0x40; /* an unknown kind */
    assert_int_equal(ctl_sol_outbox_apply(oc, P.op, P.len), CTL_SOLOB_E_INVAL);
    P.op[0] ^= 0x40;
    assert_int_equal(count(c, "SELECT count(*) FROM solana_outbox"), 0);
    assert_int_equal(ctl_sol_outbox_apply(oc, P.op, 0), CTL_SOLOB_OK); /* nothing to store */

    /* applied on the leader and a follower: the same rows, the transactions' own bytes */
    for (int k = 0; k < 2; k++) { /* a second copy (two leaders' proposals) changes nothing */
        assert_int_equal(ctl_sol_outbox_apply(oa, P.op, P.len), CTL_SOLOB_OK);
        assert_int_equal(ctl_sol_outbox_apply(ob, P.op, P.len), CTL_SOLOB_OK);
    }
    for (int i = 0; i < 2; i++) {
        ctl_db *db = i ? b : a;
        assert_int_equal(count(db, "SELECT count(*) FROM solana_outbox"), 2);
        assert_int_equal(count(db, "SELECT count(*) FROM solana_outbox WHERE interval_id = "
                                   "1908001 AND state = 'built' AND n_parts = 2 AND "
                                   "last_valid_block_height = 1000 AND created_ms = 42"),
                         2);
        sqlite3_stmt *st;
        assert_int_equal(ctl_db_prepare(db, "SELECT tx FROM solana_outbox ORDER BY part", &st),
                         SQLITE_OK);
        for (int p = 0; p < 2; p++) {
            assert_int_equal(sqlite3_step(st), SQLITE_ROW);
            assert_int_equal(sqlite3_column_bytes(st, 0), (int)txs[p].len);
            assert_memory_equal(sqlite3_column_blob(st, 0), txs[p].bytes, txs[p].len);
        }
        sqlite3_finalize(st);
    }
    ctl_sol_outbox_row ra, rb;
    assert_int_equal(ctl_sol_outbox_get(oa, 1908001, 2, &ra), CTL_SOLOB_OK);
    assert_int_equal(ctl_sol_outbox_get(ob, 1908001, 2, &rb), CTL_SOLOB_OK);
    assert_string_equal(ra.signature, rb.signature);

    /* stored: not proposed again */
    assert_int_equal(ctl_sol_outbox_add_txs(oa, 1908001, txs, 2, hash, 1000, 43),
                     CTL_SOLOB_E_EXISTS);
    assert_int_equal(P.calls, 1);
    /* a transaction whose first signature is not the given one is refused */
    ctl_sol_outbox_tx bad = {t[0], sizeof t[0], t[1] + 1};
    assert_int_equal(ctl_sol_outbox_add_txs(oa, 1908002, &bad, 1, hash, 1000, 43),
                     CTL_SOLOB_E_INVAL);

    /* one node (no proposer): stored at once */
    assert_int_equal(ctl_sol_outbox_add_txs(oc, 1908003, txs, 1, hash, 1000, 44), CTL_SOLOB_OK);
    assert_int_equal(count(c, "SELECT count(*) FROM solana_outbox"), 1);

    ctl_sol_outbox_close(oa);
    ctl_sol_outbox_close(ob);
    ctl_sol_outbox_close(oc);
    ctl_db_close(a);
    ctl_db_close(b);
    ctl_db_close(c);
    free(P.op);
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(ops)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
