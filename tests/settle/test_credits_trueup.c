/*
 * Credit true-ups end to end (issue 13; docs/credits.md, "True-up"), with the real mgx binary
 * ($MGX_BIN) on one SQLite file:
 *   - interval A is settled with credits (minimum tier 1): home 2 is held (export 500 Wh, tier
 *     2) and home 4 flagged (export 200 Wh, tier 0), so neither mints; `mgx ledger resolve`
 *     resolves both as good (home 2 twice: the second is "resolved before"); resolving home 1
 *     (good) or home 5 (missing) is refused;
 *   - interval B is settled under a SIGKILL at every crash point of ctl_ledger_settle in turn,
 *     each followed by `verify` and a restart: in the end its block carries exactly one
 *     true-up, for home 2's position of A (500 Wh, status held, source = that position's log
 *     index), and none for home 4 (tier 0 below the minimum mints nothing, yet its request is
 *     done); settling B again replays the stored block; C and D carry no more true-ups;
 *   - conservation over every credit record: minted == verified export of good positions at
 *     tier >= 1 plus the resolved export (500); home 2's certificates for the month hold one
 *     active bundle of 500 Wh produced in A (start, end, expiry A's), whose ledger entry is
 *     the true-up record;
 *   - a block signed by the community key that trues up the same position again is reported by
 *     `verify` ("minted twice"), and so is one that trues up a good position.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "forged_block.h"
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "broker.h"
#include "db/db.h"
#include "ledger_harness.h"
#include "mgx/checkpoint.h"
#include "mgx/credits.h"
#include "mgx/ledger_record.h"
#include "mgx/merkle.h"
#include "settle/ledger_verify.h"
#include "settle/settle_interval.h"

#define IV_A 1900000 /* 2024-03-09T16:00Z at 900 s */

static char db[512], key[512], vkey[512], out[512], err[512];

static void write_input(int64_t iv, const char *meters, const char *trades)
{
    char path[600];
    snprintf(path, sizeof path, "%s/in.json", tst_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"interval_id\": %lld, \"interval_len_s\": 900, \"credit_min_tier\": 1,"
            " \"tariffs\": {\"feed_in_uc_per_kwh\": 80000, \"retail_uc_per_kwh\": 300000,"
            " \"network_fee_uc_per_kwh\": 10000},\n \"trades\": [%s],\n \"meters\": [%s]}\n",
            (long long)iv, trades, meters);
    fclose(f);
}

static int mgx(const char *const *a, const char *crash)
{
    int st = lh_run(a, crash, out, err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

static int settle(int64_t iv, const char *crash)
{
    char in[600];
    snprintf(in, sizeof in, "%s/in.json", tst_dir);
    const char *a[] = {"ledger", "settle", db, "--input", in, "--key", key, NULL};
    (void)iv;
    return mgx(a, crash);
}

static void verify_ok(const char *when)
{
    const char *a[] = {"ledger", "verify", db, "--vkey-file", vkey, NULL};
    if (mgx(a, NULL) != 0) {
        char msg[2048] = "";
        lh_slurp(err, msg, sizeof msg);
        fail_msg("verify failed %s: %s", when, msg);
    }
}

static int resolve(const char *who, int64_t iv, char *said, size_t cap)
{
    char ivs[32];
    snprintf(ivs, sizeof ivs, "%lld", (long long)iv);
    const char *a[] = {"ledger", "resolve", db, "--participant", who, "--interval", ivs, NULL};
    int rc = mgx(a, NULL);
    lh_slurp(rc == 0 ? out : err, said, cap);
    printf("resolve %s %s: %s", who, ivs, said);
    return rc;
}

/* Every stored credit record, and the sums this test expects. */
typedef struct {
    int trueups;
    uint32_t source;
    int64_t trueup_wh, minted, verified;
} tally;

static void count(tally *t)
{
    memset(t, 0, sizeof *t);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT body FROM ledger_tx ORDER BY log_index", -1,
                                        &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        stl_tx tx;
        assert_int_equal(stl_tx_decode(sqlite3_column_blob(st, 0),
                                       (size_t)sqlite3_column_bytes(st, 0), &tx),
                         STL_OK);
        if (tx.kind == STL_TX_POSITION && tx.position.status == STL_POS_GOOD &&
            tx.position.tier >= 1)
            t->verified += tx.position.export_wh;
        if (tx.kind != STL_TX_CREDIT)
            continue;
        t->minted += tx.credit.minted_wh;
        if (stl_credit_is_trueup(&tx.credit)) {
            t->trueups++;
            t->source = tx.credit.source_seq;
            t->trueup_wh += tx.credit.minted_wh;
            assert_int_equal(tx.credit.participant, 2);
            assert_int_equal(tx.credit.status, STL_POS_HELD);
            assert_int_equal(tx.credit.kept_wh, tx.credit.minted_wh);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
}

static long long sql_int(const char *sql)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static int setup(void **state)
{
    if (tst_dir_setup(state) != 0)
        return -1;
    snprintf(db, sizeof db, "%s/l.db", tst_dir);
    snprintf(key, sizeof key, "%s/k.skey", tst_dir);
    snprintf(vkey, sizeof vkey, "%s/k.vkey", tst_dir);
    snprintf(out, sizeof out, "%s/out", tst_dir);
    snprintf(err, sizeof err, "%s/err", tst_dir);
    const char *a[] = {"ledger", "keygen", "trueup.example", "--out", key, NULL};
    return WEXITSTATUS(lh_run(a, NULL, vkey, NULL)) == 0 ? 0 : -1;
}

/* The homes of interval A: 1 good (tier 1) exports 700, sells 600 to 3; 2 held (tier 2)
 * exports 500, its 200 to 3 deliver nothing; 3 good imports 900; 4 flagged (tier 0) exports
 * 200; 5 traded but sent no reading (missing). */
static const char A_METERS[] =
    "{\"participant\":1,\"import_wh\":0,\"export_wh\":700,\"tier\":1},"
    "{\"participant\":2,\"import_wh\":40,\"export_wh\":500,\"tier\":2,\"held\":true,\"quality\":1},"
    "{\"participant\":3,\"import_wh\":900,\"export_wh\":0,\"tier\":1},"
    "{\"participant\":4,\"import_wh\":0,\"export_wh\":200,\"tier\":0,\"quality\":4}";
static const char A_TRADES[] =
    "{\"seller\":1,\"buyer\":3,\"energy_wh\":600,\"price_uc_per_kwh\":120000},"
    "{\"seller\":2,\"buyer\":3,\"energy_wh\":200,\"price_uc_per_kwh\":120000},"
    "{\"seller\":5,\"buyer\":3,\"energy_wh\":50,\"price_uc_per_kwh\":120000}";
static const char B_METERS[] =
    "{\"participant\":1,\"import_wh\":10,\"export_wh\":300,\"tier\":2},"
    "{\"participant\":2,\"import_wh\":100,\"export_wh\":0,\"tier\":2},"
    "{\"participant\":3,\"import_wh\":400,\"export_wh\":0,\"tier\":1}";
static const char B_TRADES[] = "{\"seller\":1,\"buyer\":3,\"energy_wh\":250,"
                               "\"price_uc_per_kwh\":110000}";

static void resolve_then_mint_once(void **state)
{
    (void)state;
    char said[1024];
    write_input(IV_A, A_METERS, A_TRADES);
    assert_int_equal(settle(IV_A, NULL), 0);
    verify_ok("after A");
    /* A's block: trades 0..2, positions of 1..5 at 3..7: home 2's is log index 4 */
    assert_int_equal(resolve("2", IV_A, said, sizeof said), 0);
    assert_non_null(strstr(said, "log index 4, 500 Wh exported, status held"));
    assert_int_equal(resolve("2", IV_A, said, sizeof said), 0);
    assert_non_null(strstr(said, "resolved before"));
    assert_int_equal(resolve("4", IV_A, said, sizeof said), 0); /* flagged, tier 0 */
    assert_int_equal(resolve("1", IV_A, said, sizeof said), 1);
    assert_non_null(strstr(said, "good (it minted when it was settled)"));
    assert_int_equal(resolve("5", IV_A, said, sizeof said), 1);
    assert_non_null(strstr(said, "missing"));
    assert_int_equal(resolve("2", IV_A + 7, said, sizeof said), 1);
    assert_int_equal(sql_int("SELECT COUNT(*) FROM credit_trueup WHERE height IS NULL"), 2);

    /* B under a kill at every crash point, then a restart */
    static const char *points[] = {"ledger.begin",       "ledger.after_txs",
                                   "ledger.after_nodes", "ledger.after_block",
                                   "ledger.before_commit", "ledger.after_commit"};
    write_input(IV_A + 1, B_METERS, B_TRADES);
    for (size_t p = 0; p < sizeof points / sizeof points[0]; p++) {
        int after = strcmp(points[p], "ledger.after_commit") == 0;
        assert_int_equal(settle(IV_A + 1, points[p]), 128 + SIGKILL);
        verify_ok(points[p]);
        assert_int_equal(sql_int("SELECT COUNT(*) FROM ledger_block"), after ? 2 : 1);
        /* the requests are done exactly when the block is there */
        assert_int_equal(sql_int("SELECT COUNT(*) FROM credit_trueup WHERE height IS NULL"),
                         after ? 0 : 2);
        tally t;
        count(&t);
        assert_int_equal(t.trueups, after ? 1 : 0);
    }
    /* settling B again returns the stored block, true-up included */
    assert_int_equal(settle(IV_A + 1, NULL), 0);
    lh_slurp(out, said, sizeof said);
    assert_non_null(strstr(said, "already settled"));
    /* C and D carry no more true-ups; resolving home 2 again changes nothing */
    assert_int_equal(resolve("2", IV_A, said, sizeof said), 0);
    assert_non_null(strstr(said, "resolved before"));
    /* a request naming no held position (a damaged file: log index 0 is a trade) does not stop
     * settlement; it stays pending and mints nothing */
    {
        sqlite3 *h = NULL;
        assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
        assert_int_equal(sqlite3_exec(h, "INSERT INTO credit_trueup VALUES(0, 1, 0, NULL)", NULL,
                                      NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(h);
    }
    write_input(IV_A + 2, B_METERS, B_TRADES);
    assert_int_equal(settle(IV_A + 2, NULL), 0);
    assert_int_equal(sql_int("SELECT count(*) FROM credit_trueup WHERE height IS NULL"), 1);
    write_input(IV_A + 3, A_METERS, A_TRADES);
    assert_int_equal(settle(IV_A + 3, NULL), 0);
    verify_ok("at the end");
    tally t;
    count(&t);
    printf("true-ups: %d (source log index %u, %lld Wh); minted %lld Wh in all = verified "
           "export %lld + resolved %lld\n",
           t.trueups, t.source, (long long)t.trueup_wh, (long long)t.minted,
           (long long)t.verified, (long long)t.trueup_wh);
    assert_int_equal(t.trueups, 1);
    assert_int_equal(t.source, 4);
    assert_int_equal(t.trueup_wh, 500);
    /* A: 700 (home 1), B and C: 300 each (home 1, tier 2), D: 700; plus the resolved 500 */
    assert_int_equal(t.verified, 700 + 300 + 300 + 700);
    assert_int_equal(t.minted, t.verified + 500);
    assert_int_equal(sql_int("SELECT height FROM credit_trueup WHERE source_log_index = 4"), 1);
    assert_int_equal(sql_int("SELECT height FROM credit_trueup WHERE source_log_index = 6"), 1);
    /* the export marks it */
    const char *x[] = {"ledger", "export", db, NULL};
    assert_int_equal(mgx(x, NULL), 0);
    static char lines[1 << 16];
    lh_slurp(out, lines, sizeof lines);
    const char *tu = strstr(lines, "\"true_up\":true");
    assert_non_null(tu);
    assert_null(strstr(tu + 1, "\"true_up\":true")); /* once */
    /* the home's certificates still export */
    const char *c[] = {"ledger", "certificates", db, "--participant", "2", "--month", "2024-03",
                       NULL};
    if (mgx(c, NULL) != 0) {
        lh_slurp(err, said, sizeof said);
        fail_msg("certificates: %s", said);
    }
    /* with one bundle for the true-up: 500 Wh produced in A (2024-03-09T16:00Z), active,
     * expiring 12 months after A, its ledger entry the true-up record of block 1 */
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je), *b, *hit = NULL;
    assert_non_null(j);
    size_t i;
    json_array_foreach(json_object_get(j, "certificates"), i, b)
    {
        json_t *l = json_object_get(b, "ledger");
        if (json_integer_value(json_object_get(l, "true_up_of_log_index")) == 4)
            hit = b;
    }
    assert_non_null(hit);
    char *text = json_dumps(hit, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("true-up certificate: %s\n", text);
    free(text);
    assert_int_equal(json_integer_value(json_object_get(hit, "volume_wh")), 500);
    assert_string_equal(json_string_value(json_object_get(hit, "status")), "active");
    assert_string_equal(json_string_value(json_object_get(hit, "production_start_time")),
                        "2024-03-09T16:00:00Z");
    assert_string_equal(json_string_value(json_object_get(hit, "expires")),
                        "2025-03-09T16:15:00Z");
    json_t *l = json_object_get(hit, "ledger");
    assert_int_equal(json_integer_value(json_object_get(l, "height")), 1);
    assert_int_equal(json_integer_value(json_object_get(l, "interval_id")), IV_A + 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "month"),
                                                        "minted_wh")),
                     500);
    json_decref(j);
}

/* A block for interval iv signed by the community key that carries tu (a forged true-up). */
static void forge_block(int64_t iv, const stl_credit *tu)
{
    char e[256];
    ctl_ledger_key *k = ctl_ledger_key_load(key, e, sizeof e);
    assert_non_null(k);
    ctl_db *d = NULL;
    assert_int_equal(ctl_db_open(db, &d, e, sizeof e), CTL_DB_OK);
    stl_metered m[1] = {{1, 0, 100, 0, 2, 0}};
    stl_tariffs tar = {80000, 300000, 10000};
    stl_reconciler *r = stl_reconciler_new(0, 1);
    assert_non_null(r);
    assert_int_equal(stl_reconcile(r, &tar, NULL, 0, m, 1, NULL), STL_OK);
    ctl_ledger_txs s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ctl_settle_txs(r, iv, STL_LEDGER_V2, 1, tu, 1, k->salt_secret, NULL, &s),
                     CTL_LEDGER_OK);
    tst_forge_block(d, k, iv, &tar, &s, stl_reconciled_totals(r));
    ctl_ledger_txs_free(&s);
    stl_reconciler_free(r);
    ctl_db_close(d);
    ctl_ledger_key_free(k);
}

static void expect_fault(const char *want)
{
    const char *a[] = {"ledger", "verify", db, "--vkey-file", vkey, NULL};
    char msg[2048] = "";
    int rc = mgx(a, NULL);
    lh_slurp(err, msg, sizeof msg);
    if (rc == 0 || !strstr(msg, want))
        fail_msg("verify should name '%s', said (exit %d): %s", want, rc, msg);
    printf("verify: %s", msg);
}

/* The database file is closed between mgx runs, so a byte copy is a snapshot. */
static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_true(a && b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    assert_int_equal(fclose(b), 0);
}

static void forged_trueups_are_faults(void **state)
{
    (void)state;
    /* home 2's held position of A (log index 4) trued up a second time */
    stl_position held = {.participant = 2, .status = STL_POS_HELD, .tier = 2, .import_wh = 40,
                         .export_wh = 500, .quality = 1};
    stl_credit tu;
    assert_int_equal(stl_credit_trueup(&held, 4, 1, &tu), STL_OK);
    char saved[600];
    snprintf(saved, sizeof saved, "%s/saved.db", tst_dir);
    copy_file(db, saved);
    forge_block(IV_A + 4, &tu);
    expect_fault("log index 4 was trued up before");
    /* a true-up claiming home 1's good position of A (log index 3) */
    copy_file(saved, db);
    verify_ok("restored");
    tu.participant = 1;
    tu.source_seq = 3;
    forge_block(IV_A + 4, &tu);
    expect_fault("not a held position of participant 1");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resolve_then_mint_once),
        cmocka_unit_test(forged_trueups_are_faults),
    };
    return cmocka_run_group_tests(tests, setup, tst_dir_teardown);
}
