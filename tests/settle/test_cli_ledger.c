/*
 * End-to-end tests of `mgx ledger` (label integration), the real binary on real SQLite files:
 *   - settle is exactly once: the same input again returns the same block; other inputs for a
 *     settled interval are a conflict and change nothing;
 *   - verify passes on a good ledger and names the first fault for each kind of damage:
 *     a changed transaction byte, a changed signature, a missing Merkle node, a lost block,
 *     a swapped checkpoint, a wrong trusted key;
 *   - every transaction's inclusion proof checks offline against the checkpoint and public key,
 *     and fails for a tampered proof, a wrong key or an older checkpoint;
 *   - consistency proofs between every pair of block sizes check, and fail across two ledgers;
 *   - export writes one JSON line per block and transaction; statements sum their rows.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "broker.h"
#include "ledger_harness.h"

static char path_buf[8][512];

static const char *P(int slot, const char *name)
{
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", tst_dir, name);
    return path_buf[slot];
}

static int exit_code(int st)
{
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A ledger of n intervals in db_name, key in k.skey / k.vkey. */
static void make_ledger(const char *db_name, int n)
{
    char db[512], in[512], key[512];
    snprintf(db, sizeof db, "%s/%s", tst_dir, db_name);
    snprintf(key, sizeof key, "%s/k.skey", tst_dir);
    remove(db);
    for (int i = 0; i < n; i++) {
        snprintf(in, sizeof in, "%s/in%d.json", tst_dir, i);
        lh_write_input(in, 1900000 + i, 40 + 10 * i, 16, (uint64_t)(i + 1));
        const char *a[] = {"ledger", "settle", db, "--input", in, "--key", key, NULL};
        assert_int_equal(exit_code(lh_run(a, NULL, NULL, P(7, "err"))), 0);
    }
}

static void sql(const char *db_name, const char *stmt)
{
    sqlite3 *db;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tst_dir, db_name);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, stmt, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", stmt, msg);
    sqlite3_close(db);
}

/* verify must fail and its message contain `want` */
static void expect_fault(const char *db_name, const char *want)
{
    char db[512], err[4096];
    snprintf(db, sizeof db, "%s/%s", tst_dir, db_name);
    const char *a[] = {"ledger", "verify", db, "--vkey-file", P(1, "k.vkey"), NULL};
    assert_int_equal(exit_code(lh_run(a, NULL, NULL, P(2, "verr"))), 1);
    assert_true(lh_slurp(P(2, "verr"), err, sizeof err) > 0);
    if (!strstr(err, want))
        fail_msg("verify said '%s', expected it to mention '%s'", err, want);
}

static void expect_ok(const char *db_name)
{
    char db[512], out[4096];
    snprintf(db, sizeof db, "%s/%s", tst_dir, db_name);
    const char *a[] = {"ledger", "verify", db, "--vkey-file", P(1, "k.vkey"), NULL};
    int st = lh_run(a, NULL, P(2, "vout"), P(3, "verr"));
    lh_slurp(P(3, "verr"), out, sizeof out);
    if (exit_code(st) != 0)
        fail_msg("verify failed: %s", out);
}

static int setup(void **state)
{
    if (tst_dir_setup(state) != 0)
        return -1;
    const char *a[] = {"ledger", "keygen", "street.example/mgx", "--out", P(0, "k.skey"), NULL};
    assert_int_equal(exit_code(lh_run(a, NULL, P(1, "k.vkey"), NULL)), 0);
    /* keygen never overwrites a key */
    assert_int_equal(exit_code(lh_run(a, NULL, P(6, "k2.vkey"), NULL)), 1);
    const char *b[] = {"ledger", "keygen", "other", "--out", P(0, "o.skey"), NULL};
    assert_int_equal(exit_code(lh_run(b, NULL, P(1, "o.vkey"), NULL)), 0);
    return 0;
}

static void exactly_once(void **state)
{
    (void)state;
    make_ledger("a.db", 3);
    expect_ok("a.db");
    char out[4096];
    const char *a[] = {"ledger", "settle", P(4, "a.db"), "--input", P(5, "in1.json"), "--key",
                       P(6, "k.skey"), NULL};
    assert_int_equal(exit_code(lh_run(a, NULL, P(3, "out"), NULL)), 0);
    lh_slurp(P(3, "out"), out, sizeof out);
    assert_non_null(strstr(out, "already settled interval 1900001: block 1 "));
    /* other inputs for a settled interval: a conflict, nothing changes */
    lh_write_input(P(5, "x.json"), 1900001, 5, 4, 99);
    assert_int_equal(exit_code(lh_run(a, NULL, NULL, P(3, "err"))), 1);
    lh_slurp(P(3, "err"), out, sizeof out);
    assert_non_null(strstr(out, "already settled (block 1) with other inputs"));
    /* a different key cannot extend this ledger */
    lh_write_input(P(5, "in9.json"), 1900009, 5, 4, 9);
    const char *b[] = {"ledger", "settle", P(4, "a.db"), "--input", P(5, "in9.json"), "--key",
                       P(6, "o.skey"), NULL};
    assert_int_equal(exit_code(lh_run(b, NULL, NULL, P(3, "err"))), 1);
    expect_ok("a.db");
    /* a malformed input names its place */
    FILE *f = fopen(P(5, "bad.json"), "w");
    fputs("{\"interval_id\": 5, \"tariffs\": {\"feed_in_uc_per_kwh\": 1, \"retail_uc_per_kwh\": 2},"
          " \"trades\": [{\"seller\": 1, \"buyer\": 1, \"energy_wh\": 5, \"price_uc_per_kwh\": 1}],"
          " \"meters\": []}",
          f);
    fclose(f);
    const char *c[] = {"ledger", "settle", P(4, "a.db"), "--input", P(5, "bad.json"), "--key",
                       P(6, "k.skey"), NULL};
    assert_int_equal(exit_code(lh_run(c, NULL, NULL, P(3, "err"))), 1);
    lh_slurp(P(3, "err"), out, sizeof out);
    assert_non_null(strstr(out, "trade 0: malformed trade"));
}

static void faults_are_named(void **state)
{
    (void)state;
    make_ledger("t.db", 3);
    /* byte 41 of one transaction made different from what it held: writing a fixed 0xff
     * changes nothing when the byte already is 0xff (the sanitized CI run of f041bf9 failed
     * here once, verify finding nothing; the cause of that byte's value is not traced) */
    sql("t.db", "UPDATE ledger_tx SET body = substr(body,1,40) || CASE WHEN substr(body,41,1) ="
                " x'ff' THEN x'00' ELSE x'ff' END || substr(body,42) WHERE log_index = 57");
    expect_fault("t.db", "transaction at log index 57");

    make_ledger("t.db", 3);
    sql("t.db", "UPDATE ledger_block SET sig = x'00' || substr(sig,2) WHERE height = 2");
    expect_fault("t.db", "block 2 (interval 1900002): signature does not verify");

    make_ledger("t.db", 3);
    sql("t.db", "DELETE FROM ledger_node WHERE level = 1 AND idx = 3");
    expect_fault("t.db", "Merkle node level 1 index 3 is missing");

    make_ledger("t.db", 3);
    sql("t.db", "DELETE FROM ledger_block WHERE height = 2");
    expect_fault("t.db", "transactions are stored but the blocks account for");

    make_ledger("t.db", 3);
    sql("t.db", "UPDATE ledger_block SET checkpoint = (SELECT checkpoint FROM ledger_block WHERE"
                " height = 0) WHERE height = 1");
    expect_fault("t.db", "block 1 (interval 1900001): checkpoint size/root differ");

    make_ledger("t.db", 3);
    sql("t.db", "DELETE FROM ledger_block WHERE height = 1");
    expect_fault("t.db", "block heights jump from 0 to 2");

    /* the ledger's own key differs from the one the auditor trusts */
    make_ledger("t.db", 1);
    char db[512], err[2048];
    snprintf(db, sizeof db, "%s/t.db", tst_dir);
    const char *a[] = {"ledger", "verify", db, "--vkey-file", P(1, "o.vkey"), NULL};
    assert_int_equal(exit_code(lh_run(a, NULL, NULL, P(2, "verr"))), 1);
    lh_slurp(P(2, "verr"), err, sizeof err);
    assert_non_null(strstr(err, "not the key you trust"));
}

static void proofs(void **state)
{
    (void)state;
    make_ledger("p.db", 4);
    /* log sizes of the blocks, from the export */
    const char *e[] = {"ledger", "export", P(4, "p.db"), "--out", P(5, "p.jsonl"), NULL};
    assert_int_equal(exit_code(lh_run(e, NULL, NULL, NULL)), 0);
    FILE *f = fopen(P(5, "p.jsonl"), "r");
    char line[8192];
    long sizes[8], n_blocks = 0, n_tx = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        const char *type = json_string_value(json_object_get(j, "type"));
        if (strcmp(type, "block") == 0)
            sizes[n_blocks++] = (long)json_integer_value(json_object_get(j, "log_size"));
        else
            n_tx++;
        json_decref(j);
    }
    fclose(f);
    assert_int_equal(n_blocks, 4);
    assert_int_equal(n_tx, sizes[3]);
    char idx[32], out[4096];
    for (long i = 0; i < sizes[3]; i += 3) {
        snprintf(idx, sizeof idx, "%ld", i);
        const char *a[] = {"ledger", "proof", P(4, "p.db"), "--index", idx, NULL};
        assert_int_equal(exit_code(lh_run(a, NULL, P(5, "proof.json"), NULL)), 0);
        const char *c[] = {"ledger", "check-proof", "--proof", P(5, "proof.json"), "--vkey-file",
                           P(1, "k.vkey"), NULL};
        int st = lh_run(c, NULL, P(3, "out"), P(2, "err"));
        lh_slurp(P(2, "err"), out, sizeof out);
        if (exit_code(st) != 0)
            fail_msg("proof of %ld: %s", i, out);
        /* the wrong key */
        const char *w[] = {"ledger", "check-proof", "--proof", P(5, "proof.json"), "--vkey-file",
                           P(1, "o.vkey"), NULL};
        assert_int_equal(exit_code(lh_run(w, NULL, NULL, NULL)), 1);
    }
    /* a tampered proof: change one character of the first hash */
    const char *a[] = {"ledger", "proof", P(4, "p.db"), "--index", "5", NULL};
    assert_int_equal(exit_code(lh_run(a, NULL, P(5, "proof.json"), NULL)), 0);
    json_t *j = json_load_file(P(5, "proof.json"), 0, NULL);
    json_t *h = json_array_get(json_object_get(j, "hashes"), 0);
    char *s = strdup(json_string_value(h));
    s[3] = s[3] == 'A' ? 'B' : 'A';
    json_array_set_new(json_object_get(j, "hashes"), 0, json_string(s));
    free(s);
    json_dump_file(j, P(6, "bad.json"), 0);
    /* ... or claim another transaction at this index */
    json_object_set_new(j, "log_index", json_integer(6));
    json_dump_file(j, P(7, "bad2.json"), 0);
    json_decref(j);
    const char *c[] = {"ledger", "check-proof", "--proof", P(6, "bad.json"), "--vkey-file",
                       P(1, "k.vkey"), NULL};
    assert_int_equal(exit_code(lh_run(c, NULL, NULL, P(2, "err"))), 1);
    lh_slurp(P(2, "err"), out, sizeof out);
    assert_non_null(strstr(out, "FAILED"));
    const char *c2[] = {"ledger", "check-proof", "--proof", P(7, "bad2.json"), "--vkey-file",
                        P(1, "k.vkey"), NULL};
    assert_int_equal(exit_code(lh_run(c2, NULL, NULL, NULL)), 1);
    /* an older checkpoint (block 0) does not cover a later log size */
    const char *ck[] = {"ledger", "checkpoint", P(4, "p.db"), "--height", "0", NULL};
    assert_int_equal(exit_code(lh_run(ck, NULL, P(6, "cp0.txt"), NULL)), 0);
    const char *c3[] = {"ledger", "check-proof", "--proof", P(5, "proof.json"), "--vkey-file",
                        P(1, "k.vkey"), "--checkpoint", P(6, "cp0.txt"), NULL};
    assert_int_equal(exit_code(lh_run(c3, NULL, NULL, NULL)), 1);

    /* consistency between every pair of block sizes */
    for (int x = 0; x < 4; x++)
        for (int y = x; y < 4; y++) {
            char from[32], to[32];
            snprintf(from, sizeof from, "%ld", sizes[x]);
            snprintf(to, sizeof to, "%ld", sizes[y]);
            const char *k[] = {"ledger", "consistency", P(4, "p.db"), "--from", from, "--to", to, NULL};
            assert_int_equal(exit_code(lh_run(k, NULL, P(5, "cons.json"), NULL)), 0);
            const char *v[] = {"ledger", "check-consistency", "--proof", P(5, "cons.json"),
                               "--vkey-file", P(1, "k.vkey"), NULL};
            assert_int_equal(exit_code(lh_run(v, NULL, NULL, NULL)), 0);
        }
    /* a fork: another ledger with the same key and a different interval 2 */
    make_ledger("q.db", 2);
    char qdb[512];
    snprintf(qdb, sizeof qdb, "%s/q.db", tst_dir);
    lh_write_input(P(5, "fork.json"), 1900002, 30, 16, 777);
    const char *sf[] = {"ledger", "settle", qdb, "--input", P(5, "fork.json"), "--key",
                        P(6, "k.skey"), NULL};
    assert_int_equal(exit_code(lh_run(sf, NULL, NULL, NULL)), 0);
    char from[32];
    snprintf(from, sizeof from, "%ld", sizes[1]);
    /* splice: old checkpoint from p.db at sizes[1], new checkpoint from q.db (its latest) */
    char to[32];
    snprintf(to, sizeof to, "%ld", sizes[2]);
    const char *kk[] = {"ledger", "consistency", P(4, "p.db"), "--from", from, "--to", to, NULL};
    assert_int_equal(exit_code(lh_run(kk, NULL, P(5, "cons.json"), NULL)), 0);
    const char *qc[] = {"ledger", "checkpoint", qdb, NULL};
    assert_int_equal(exit_code(lh_run(qc, NULL, P(6, "qcp.txt"), NULL)), 0);
    char qnote[4096];
    lh_slurp(P(6, "qcp.txt"), qnote, sizeof qnote);
    j = json_load_file(P(5, "cons.json"), 0, NULL);
    json_object_set_new(j, "new_checkpoint", json_string(qnote));
    json_dump_file(j, P(7, "fork.json"), 0);
    json_decref(j);
    const char *v[] = {"ledger", "check-consistency", "--proof", P(7, "fork.json"), "--vkey-file",
                       P(1, "k.vkey"), NULL};
    assert_int_equal(exit_code(lh_run(v, NULL, NULL, P(2, "err"))), 1);
}

/* Splits a CSV line in place at commas, keeping empty fields; returns the count. */
static int split(char *line, char **fld, int max)
{
    int n = 0;
    line[strcspn(line, "\n")] = 0;
    fld[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == ',') {
            *p = 0;
            fld[n++] = p + 1;
        }
    return n;
}

static void statements(void **state)
{
    (void)state;
    make_ledger("s.db", 3);
    const char *a[] = {"ledger", "statement", P(4, "s.db"), "--participant", "10", "--month",
                       "2024-03", NULL};
    assert_int_equal(exit_code(lh_run(a, NULL, P(5, "st.csv"), NULL)), 0);
    FILE *f = fopen(P(5, "st.csv"), "r");
    char line[1024];
    long long sum[14] = {0}, total[14] = {0};
    int rows = 0;
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    assert_non_null(strstr(line, "grid_paid_uc"));
    while (fgets(line, sizeof line, f)) {
        char *fld[24];
        int nf = split(line, fld, 24);
        assert_int_equal(nf, 20); /* ledger v2: + timing, tier (empty in the total row) */
        int is_total = strcmp(fld[0], "total") == 0;
        if (!is_total) {
            assert_string_equal(fld[18], "ex_ante");
            assert_int_equal(atoi(fld[19]), 0);
        }
        for (int c = 0; c < 14; c++) {
            if (is_total)
                total[c] = atoll(fld[4 + c]);
            else
                sum[c] += atoll(fld[4 + c]);
        }
        rows += !is_total;
    }
    fclose(f);
    assert_int_equal(rows, 3); /* participant 10 has a position in each interval */
    for (int c = 0; c < 14; c++)
        assert_int_equal(sum[c], total[c]);
    /* the net column is what the money columns say */
    const char *b[] = {"ledger", "statement", P(4, "s.db"), "--participant", "10", "--interval",
                       "1900000", NULL};
    assert_int_equal(exit_code(lh_run(b, NULL, P(5, "one.csv"), NULL)), 0);
    f = fopen(P(5, "one.csv"), "r");
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    char *fld[24];
    assert_int_equal(split(line, fld, 24), 20);
    long long v[18];
    for (int c = 0; c < 18; c++)
        v[c] = atoll(fld[c]);
    /* local_received + grid_received - local_paid - grid_paid */
    assert_int_equal(v[17], v[14] + v[16] - v[12] - v[15]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exactly_once),
        cmocka_unit_test(faults_are_named),
        cmocka_unit_test(proofs),
        cmocka_unit_test(statements),
    };
    return cmocka_run_group_tests(tests, setup, tst_dir_teardown);
}
