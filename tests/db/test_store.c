/*
 * Tests of the controller's SQLite store (controller/src/store.h) on real database files:
 * schema and identity checks, orders with receipts (duplicates answered with the first
 * receipt, newer nonces superseding older ones, late orders rejected once the interval is
 * cleared), clearing exactly once with a hand-worked known answer and a fresh mkt_clear as an
 * oracle, readings, the publication marks, and a child process killed with SIGKILL while it
 * writes, after which every order it had a receipt for is in the file and the file is sound.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "daemon/clearing.h"
#include "db/store.h"

typedef struct {
    char *dir;
    char path[512];
    ctl_store *s;
} fixture;

static const ctl_store_identity ID = {"testville", 900, 1000};
static const mkt_params PARAMS = {MKT_PAY_AS_CLEAR, 80000, 300000, 0, 0};

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tst_tmpdir("store");
    snprintf(f->path, sizeof f->path, "%s/ctl.db", f->dir);
    char err[256];
    assert_int_equal(ctl_store_open(f->path, &ID, &f->s, err, sizeof err), CTL_ST_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ctl_store_free(f->s);
    tst_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* A receipt body that shows the final decision, like the real encoder does. */
static int make_receipt(const ctl_order_rec *o, char *buf, size_t cap, void *ctx)
{
    int *calls = ctx;
    if (calls)
        (*calls)++;
    snprintf(buf, cap, "{\"participant\":\"%s\",\"nonce\":%u,\"status\":\"%s\",\"reason\":\"%s\"}",
             o->participant, (unsigned)o->nonce[0] | (unsigned)o->nonce[1] << 8,
             o->status == CTL_ORDER_ACCEPTED ? "accepted" : "rejected", o->reason);
    return 0;
}

static void set_nonce(uint8_t out[CTL_NONCE_BYTES], uint64_t n)
{
    memset(out, 0xA5, CTL_NONCE_BYTES);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(n >> (8 * i));
}

/* An order whose nonce and created_ms are both `nonce`, so a higher nonce is a newer order. */
static ctl_order_rec order(const char *who, uint64_t nonce, int64_t iv, mkt_side side,
                           int64_t wh, int64_t price)
{
    ctl_order_rec o;
    memset(&o, 0, sizeof o);
    snprintf(o.participant, sizeof o.participant, "%s", who);
    set_nonce(o.nonce, nonce);
    o.created_ms = (int64_t)nonce;
    o.interval_id = iv;
    o.side = side;
    o.n_steps = 1;
    o.steps[0].energy_wh = wh;
    o.steps[0].price_uc_per_kwh = price;
    /* stand-in for encoding || signature: differs whenever the content does */
    static char sig[64][128];
    static unsigned next;
    char *b = sig[next++ % 64];
    int n = snprintf(b, 128, "%s|%llu|%lld|%d|%lld|%lld", who, (unsigned long long)nonce,
                     (long long)iv, (int)side, (long long)wh, (long long)price);
    o.signed_msg = (const uint8_t *)b;
    o.signed_len = (size_t)n;
    o.received_ms = 1;
    o.status = CTL_ORDER_ACCEPTED;
    return o;
}

static void put(ctl_store *s, ctl_order_rec o, const char *expect_status, int expect_dup)
{
    char receipt[CTL_RECEIPT_MAX];
    int dup = -1;
    assert_int_equal(ctl_store_put_order(s, &o, NULL, make_receipt, NULL, receipt, sizeof receipt, &dup),
                     CTL_ST_OK);
    assert_int_equal(dup, expect_dup);
    assert_non_null(strstr(receipt, expect_status));
}

static int64_t count(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void identity_and_pragmas(void **state)
{
    fixture *f = *state;
    assert_int_equal(ctl_store_first_interval(f->s), 1000);
    ctl_store_free(f->s);
    f->s = NULL;
    /* the first interval is kept from creation, not from a later open */
    ctl_store_identity later = ID;
    later.first_interval = 5000;
    char err[256] = "";
    assert_int_equal(ctl_store_open(f->path, &later, &f->s, err, sizeof err), CTL_ST_OK);
    assert_int_equal(ctl_store_first_interval(f->s), 1000);
    ctl_store_free(f->s);
    f->s = NULL;
    ctl_store_identity other = ID;
    other.community = "elsewhere";
    ctl_store *s2 = NULL;
    assert_int_equal(ctl_store_open(f->path, &other, &s2, err, sizeof err), CTL_ST_E_MISMATCH);
    assert_null(s2);
    assert_non_null(strstr(err, "testville"));
    assert_non_null(strstr(err, f->path));
    other = ID;
    other.interval_s = 300;
    assert_int_equal(ctl_store_open(f->path, &other, &s2, err, sizeof err), CTL_ST_E_MISMATCH);
    assert_non_null(strstr(err, "interval_s"));
    assert_int_equal(count(f->path, "SELECT count(*) FROM pragma_journal_mode WHERE "
                                    "journal_mode = 'wal'"),
                     1);
    assert_int_equal(count(f->path, "SELECT version FROM schema_version WHERE component = "
                                    "'controller'"),
                     CTL_STORE_SCHEMA_VERSION);
    /* a newer schema is refused rather than misread */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(ctl_store_open(f->path, &ID, &s2, err, sizeof err), CTL_ST_E_SCHEMA);
    /* an unwritable place is an error naming the path */
    assert_int_equal(ctl_store_open("/nonexistent/dir/x.db", &ID, &s2, err, sizeof err),
                     CTL_ST_E_DB);
    assert_non_null(strstr(err, "/nonexistent/dir/x.db"));
}

static void duplicates_and_supersede(void **state)
{
    fixture *f = *state;
    int calls = 0;
    char receipt[CTL_RECEIPT_MAX];
    int dup;
    ctl_order_rec o = order("alice", 7, 1001, MKT_SELL, 1000, 100000);
    assert_int_equal(ctl_store_put_order(f->s, &o, NULL, make_receipt, &calls, receipt, sizeof receipt,
                                         &dup),
                     CTL_ST_OK);
    assert_int_equal(dup, 0);
    assert_int_equal(calls, 1);
    char first[CTL_RECEIPT_MAX];
    strcpy(first, receipt);
    /* the same order again, even when the caller now thinks it late: the first receipt */
    ctl_order_rec again = order("alice", 7, 1001, MKT_SELL, 1000, 100000);
    again.status = CTL_ORDER_REJECTED;
    strcpy(again.reason, "gate_closed");
    assert_int_equal(ctl_store_put_order(f->s, &again, NULL, make_receipt, &calls, receipt,
                                         sizeof receipt, &dup),
                     CTL_ST_OK);
    assert_int_equal(dup, 1);
    assert_int_equal(calls, 1); /* no new receipt made */
    assert_string_equal(receipt, first);
    assert_int_equal(count(f->path, "SELECT count(*) FROM orders"), 1);
    int found;
    uint8_t nonce[CTL_NONCE_BYTES];
    set_nonce(nonce, 7);
    assert_int_equal(ctl_store_receipt(f->s, "alice", nonce, receipt, sizeof receipt, &found),
                     CTL_ST_OK);
    assert_true(found);
    assert_string_equal(receipt, first);
    set_nonce(nonce, 8);
    assert_int_equal(ctl_store_receipt(f->s, "alice", nonce, receipt, sizeof receipt, &found),
                     CTL_ST_OK);
    assert_false(found);
    /* the same nonce on a different order is a replay: rejected, stored as evidence only */
    ctl_order_rec replay = order("alice", 7, 1001, MKT_BUY, 5, 5);
    assert_int_equal(ctl_store_put_order(f->s, &replay, NULL, make_receipt, &calls, receipt,
                                         sizeof receipt, &dup),
                     CTL_ST_OK);
    assert_int_equal(dup, 0);
    assert_non_null(strstr(receipt, "replay"));
    assert_int_equal(count(f->path, "SELECT count(*) FROM orders WHERE status = 1"), 1);
    /* a rejected order's nonce stays free: the real order with it can still be accepted */
    ctl_order_rec forged = order("zed", 1, 1001, MKT_BUY, 5, 5);
    forged.status = CTL_ORDER_REJECTED;
    strcpy(forged.reason, "bad_signature");
    put(f->s, forged, "bad_signature", 0);
    put(f->s, order("zed", 1, 1001, MKT_BUY, 5, 5), "accepted", 0);

    /* made at 9 it replaces the one made at 7; one made at 8 arriving late is superseded */
    put(f->s, order("alice", 9, 1001, MKT_SELL, 2000, 110000), "accepted", 0);
    put(f->s, order("alice", 8, 1001, MKT_SELL, 3000, 120000), "superseded", 0);
    /* another interval is independent */
    put(f->s, order("alice", 3, 1002, MKT_SELL, 500, 90000), "accepted", 0);
    assert_int_equal(count(f->path, "SELECT count(*) FROM orders WHERE interval_id = 1001 AND "
                                    "participant = 'alice' AND status = 1 AND superseded = 0"),
                     1);
    assert_int_equal(count(f->path, "SELECT created_ms FROM orders WHERE interval_id = 1001 AND "
                                    "participant = 'alice' AND status = 1 AND superseded = 0"),
                     9);
    /* before the store's first interval: too late by definition */
    put(f->s, order("bob", 1, 999, MKT_BUY, 100, 100000), "gate_closed", 0);
    /* bounds */
    ctl_order_rec bad = order("", 1, 1001, MKT_BUY, 1, 1); /* accepted needs a participant */
    assert_int_equal(ctl_store_put_order(f->s, &bad, NULL, make_receipt, NULL, receipt, sizeof receipt,
                                         &dup),
                     CTL_ST_E_INVAL);
    bad = order("carol", 1, 1001, MKT_BUY, 1, 1);
    bad.signed_len = CTL_SIGNED_MAX + 1;
    assert_int_equal(ctl_store_put_order(f->s, &bad, NULL, make_receipt, NULL, receipt, sizeof receipt,
                                         &dup),
                     CTL_ST_E_INVAL);
}

/* Collects trades and outcomes for checks. */
typedef struct {
    ctl_trade_row rows[16];
    size_t n;
} trade_list;

static int add_trade(const ctl_trade_row *t, void *ctx)
{
    trade_list *l = ctx;
    assert_true(l->n < 16);
    l->rows[l->n++] = *t;
    return 0;
}

static void clear_known_answer_exactly_once(void **state)
{
    fixture *f = *state;
    /* Sellers A 1000 Wh at >= 100000, B 1000 Wh at >= 150000; buyers C 1500 Wh at <= 200000,
     * D 500 Wh at <= 120000. Walking the curves: A (100k) meets C (200k) for 1000 Wh, then B
     * (150k) meets C's remaining 500 Wh; next D (120k) < B's ask: stop. Matched 1500 Wh. B is
     * partly accepted, which pins the price: L = max(150k accepted ask, 120k rejected bid) =
     * 150k, U = min(200k accepted bid, 150k partly accepted ask) = 150k: price 150000.
     * Value 1500 Wh * 150000 / 1000 = 225000 uc. */
    put(f->s, order("A", 1, 1005, MKT_SELL, 1000, 100000), "accepted", 0);
    put(f->s, order("B", 1, 1005, MKT_SELL, 1000, 150000), "accepted", 0);
    put(f->s, order("C", 1, 1005, MKT_BUY, 1500, 200000), "accepted", 0);
    put(f->s, order("D", 1, 1005, MKT_BUY, 500, 120000), "accepted", 0);
    put(f->s, order("D", 2, 1006, MKT_BUY, 500, 120000), "accepted", 0); /* other interval */
    int did = -1;
    assert_int_equal(ctl_clear_interval(f->s, 1005, 1005 * 900, &PARAMS, 42, &did),
                     CTL_ST_OK);
    assert_int_equal(did, 1);
    ctl_interval_result r;
    int found;
    assert_int_equal(ctl_store_result(f->s, 1005, &r, &found), CTL_ST_OK);
    assert_true(found);
    assert_int_equal(r.summary.matched_wh, 1500);
    assert_true(r.summary.has_price);
    assert_int_equal(r.summary.clearing_price_uc_per_kwh, 150000);
    assert_int_equal(r.summary.local_value_uc, 225000);
    assert_int_equal(r.n_orders, 4);
    assert_int_equal(r.start_utc, 1005 * 900);
    assert_int_equal(r.cleared_ms, 42);
    assert_false(r.published);
    assert_string_equal(r.error, "");

    /* the oracle: a fresh clearing of the stored book gives the same trades */
    mkt_order book[4] = {
        {1, MKT_SELL, 1, {{1000, 100000}}}, {2, MKT_SELL, 1, {{1000, 150000}}},
        {3, MKT_BUY, 1, {{1500, 200000}}},  {4, MKT_BUY, 1, {{500, 120000}}}};
    mkt_clearing *c = mkt_clearing_new(4);
    assert_int_equal(mkt_clear(c, &PARAMS, book, 4, NULL), MKT_OK);
    size_t nt;
    const mkt_trade *t = mkt_clearing_trades(c, &nt);
    trade_list got = {.n = 0};
    assert_int_equal(ctl_store_trades(f->s, 1005, add_trade, &got), CTL_ST_OK);
    assert_int_equal(got.n, nt);
    assert_int_equal(r.n_trades, nt);
    const char *names[] = {"", "A", "B", "C", "D"};
    for (size_t i = 0; i < nt; i++) {
        assert_string_equal(got.rows[i].seller, names[t[i].seller]);
        assert_string_equal(got.rows[i].buyer, names[t[i].buyer]);
        assert_int_equal(got.rows[i].t.energy_wh, t[i].energy_wh);
        assert_int_equal(got.rows[i].t.amount_uc, t[i].amount_uc);
    }
    mkt_clearing_free(c);
    assert_int_equal(count(f->path, "SELECT count(*) FROM outcomes WHERE interval_id = 1005"), 4);
    assert_int_equal(count(f->path, "SELECT local_sold_wh FROM outcomes WHERE participant = 'B'"),
                     500);

    /* exactly once */
    assert_int_equal(ctl_clear_interval(f->s, 1005, 1005 * 900, &PARAMS, 43, &did),
                     CTL_ST_OK);
    assert_int_equal(did, 0);
    assert_int_equal(count(f->path, "SELECT count(*) FROM trades WHERE interval_id = 1005"),
                     (int64_t)nt);
    assert_int_equal(count(f->path, "SELECT cleared_ms FROM intervals WHERE interval_id = 1005"),
                     42);
    /* an order arriving after clearing is refused, even if admission thought it on time */
    put(f->s, order("E", 1, 1005, MKT_BUY, 100, 200000), "gate_closed", 0);
    int64_t last;
    assert_int_equal(ctl_store_last_cleared(f->s, &last), CTL_ST_OK);
    assert_int_equal(last, 1005);

    /* an empty interval clears to an empty result */
    assert_int_equal(ctl_clear_interval(f->s, 1007, 1007 * 900, &PARAMS, 44, &did),
                     CTL_ST_OK);
    assert_int_equal(did, 1);
    assert_int_equal(ctl_store_result(f->s, 1007, &r, &found), CTL_ST_OK);
    assert_int_equal(r.summary.matched_wh, 0);
    assert_int_equal(r.n_orders, 0);

    /* publication marks */
    int64_t ids[8];
    size_t n;
    assert_int_equal(ctl_store_unpublished(f->s, ids, 8, &n), CTL_ST_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1005);
    assert_int_equal(ids[1], 1007);
    assert_int_equal(ctl_store_mark_published(f->s, 1005), CTL_ST_OK);
    assert_int_equal(ctl_store_unpublished(f->s, ids, 8, &n), CTL_ST_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1007);
}

static void rejected_book_does_not_stall(void **state)
{
    fixture *f = *state;
    put(f->s, order("A", 1, 1010, MKT_SELL, 1000, 100000), "accepted", 0);
    mkt_params bad = PARAMS;
    bad.feed_in_uc_per_kwh = bad.retail_uc_per_kwh + 1; /* MKT_E_TARIFFS */
    int did = 0;
    assert_int_equal(ctl_clear_interval(f->s, 1010, 1010 * 900, &bad, 1, &did),
                     CTL_ST_E_MARKET);
    assert_int_equal(did, 1);
    ctl_interval_result r;
    int found;
    assert_int_equal(ctl_store_result(f->s, 1010, &r, &found), CTL_ST_OK);
    assert_true(found);
    assert_string_not_equal(r.error, "");
    assert_int_equal(r.summary.matched_wh, 0);
}

typedef struct {
    mtr_sample v[8];
    size_t n;
} reading_list;

static int add_reading(const mtr_sample *r, void *ctx)
{
    reading_list *l = ctx;
    assert_true(l->n < 8);
    l->v[l->n++] = *r;
    return 0;
}

static void readings(void **state)
{
    fixture *f = *state;
    mtr_sample r;
    memset(&r, 0, sizeof r);
    strcpy(r.meter_id, "m1");
    r.soc_permille = -1;
    int ins;
    for (int i = 0; i < 4; i++) {
        r.ts_ms = 1000 * i;
        r.import_wh = 100 + i;
        r.quality = i == 2 ? MTR_Q_JUMP : MTR_Q_GOOD;
        assert_int_equal(ctl_store_put_reading(f->s, &r, 5, &ins), CTL_ST_OK);
        assert_int_equal(ins, 1);
    }
    r.ts_ms = 1000;
    r.import_wh = 999; /* same meter, same time, other counters: not stored, a conflict */
    assert_int_equal(ctl_store_put_reading(f->s, &r, 5, &ins), CTL_ST_OK);
    assert_int_equal(ins, 0);
    reading_list l = {.n = 0};
    assert_int_equal(ctl_store_readings(f->s, "m1", 1000, 3000, add_reading, &l), CTL_ST_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.v[0].import_wh, 101);
    assert_int_equal(l.v[0].quality, MTR_Q_CONFLICT); /* issue 12: the duplicate rule */
    assert_int_equal(l.v[1].quality, MTR_Q_JUMP); /* flagged readings are kept, flagged */
    assert_int_equal(l.v[1].soc_permille, -1);
    memset(r.meter_id, 'x', sizeof r.meter_id); /* not NUL-terminated */
    assert_int_equal(ctl_store_put_reading(f->s, &r, 5, &ins), CTL_ST_E_INVAL);
}

/* A child writes orders as fast as it can and reports each receipted nonce on a pipe; the
 * parent kills it with SIGKILL at a random moment, reopens the file and finds every reported
 * order, and the file passes integrity_check. Repeated with different kill delays. */
static void sigkill_keeps_receipted_orders(void **state)
{
    fixture *f = *state;
    ctl_store_free(f->s);
    f->s = NULL;
    srand(12345);
    uint64_t next_nonce = 1;
    for (int round = 0; round < 8; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            ctl_store *s;
            if (ctl_store_open(f->path, &ID, &s, NULL, 0))
                _exit(3);
            for (uint64_t n = next_nonce;; n++) {
                ctl_order_rec o = order("crashy", n, 2000 + (int64_t)(n % 5), MKT_BUY, 100,
                                        100000);
                char receipt[CTL_RECEIPT_MAX];
                int dup;
                if (ctl_store_put_order(s, &o, NULL, make_receipt, NULL, receipt, sizeof receipt, &dup))
                    _exit(4);
                if (write(fds[1], &n, sizeof n) != sizeof n)
                    _exit(5);
            }
        }
        close(fds[1]);
        /* wait for the first receipt so every round kills a writer in full flow */
        uint64_t n, reported = 0, last = 0;
        assert_int_equal(read(fds[0], &n, sizeof n), sizeof n);
        reported++;
        last = n;
        usleep((useconds_t)(rand() % 60000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        while (read(fds[0], &n, sizeof n) == sizeof n) {
            reported++;
            last = n;
        }
        close(fds[0]);
        ctl_store *s;
        assert_int_equal(ctl_store_open(f->path, &ID, &s, NULL, 0), CTL_ST_OK);
        for (uint64_t k = next_nonce; k <= last; k++) {
            int found;
            uint8_t nonce[CTL_NONCE_BYTES];
            set_nonce(nonce, k);
            assert_int_equal(ctl_store_receipt(s, "crashy", nonce, NULL, 0, &found), CTL_ST_OK);
            assert_true(found);
        }
        ctl_store_free(s);
        assert_int_equal(count(f->path, "SELECT count(*) FROM pragma_integrity_check WHERE "
                                        "integrity_check = 'ok'"),
                         1);
        /* every stored order has its receipt and steps: no half-written order */
        assert_int_equal(count(f->path, "SELECT count(*) FROM orders o WHERE NOT EXISTS "
                                        "(SELECT 1 FROM receipts r WHERE r.order_id = o.order_id) "
                                        "OR NOT EXISTS (SELECT 1 FROM order_steps s WHERE "
                                        "s.order_id = o.order_id)"),
                         0);
        assert_true(reported > 0 && last >= next_nonce);
        /* the next round continues after whatever the child committed */
        next_nonce = (uint64_t)count(f->path, "SELECT max(created_ms) FROM orders") + 1;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(identity_and_pragmas, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicates_and_supersede, setup, teardown),
        cmocka_unit_test_setup_teardown(clear_known_answer_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(rejected_book_does_not_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(readings, setup, teardown),
        cmocka_unit_test_setup_teardown(sigkill_keeps_receipted_orders, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
