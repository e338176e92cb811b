/*
 * `mgx witness` and `mgx ledger verify --witness` end to end (label integration): the real
 * binary, real SQLite ledgers made by `mgx ledger settle` with the community key of `mgx ledger
 * keygen`, witness keys of `mgx keygen`.
 *   - two witnesses cosign a ledger as it grows; verify needs k of them on the latest
 *     checkpoint and says how many it has; a repeated step changes nothing;
 *   - a new block altered in the database: the witness refuses (its audit of the blocks after
 *     its last checkpoint fails), as it does for any block on its first look;
 *   - a ledger whose clearing was altered and re-signed with the community key (a fork, at the
 *     same size and larger): plain verify passes, the witness refuses, verify with the
 *     witness's cosigned checkpoint names the fork;
 *   - a truncated ledger (the file rolled back to an earlier copy): the witness refuses, verify
 *     names the truncation;
 *   - a damaged witness state file stops the witness instead of starting it afresh;
 *   - with [bus], the cosigned checkpoint is published retained on a real broker;
 *   - the controller's collection (settle/cosig_collect.h) keeps exactly the cosignatures of
 *     configured witnesses on this ledger's own checkpoints, refuses the rest by reason, and
 *     builds one note that `verify --witnesses-required 2` accepts, also after a reopen;
 *   - a running `mgx controller` with witness_keys takes the witnesses' notes from a real broker
 *     and republishes the checkpoint with both cosignatures, retained on ledger/witnessed; a
 *     forged note on the same topics changes nothing.
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
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "broker.h"
#include "db/db.h"
#include "orders/keys.h"
#include "settle/cosig_collect.h"
#include "ledger_harness.h"
#include "mqtt_client.h"

static char pbuf[16][512];
static int pnext;

/* A path in the test folder (a small ring of buffers: valid for the next 15 calls). */
__attribute__((format(printf, 1, 2))) static const char *P(const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    char *b = pbuf[pnext++ % 16];
    snprintf(b, 512, "%s/%s", tst_dir, name);
    return b;
}

static int exit_code(int st)
{
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs mgx; its stdout and stderr together in out[cap]; returns the exit code. */
static int run(char *out, size_t cap, const char *const *args)
{
    const char *o = P("run.out"), *e = P("run.err");
    int st = lh_run(args, NULL, o, e);
    char a[4096] = "", b[4096] = "";
    lh_slurp(o, a, sizeof a);
    lh_slurp(e, b, sizeof b);
    snprintf(out, cap, "%s%s", a, b);
    return exit_code(st);
}

static void expect_in(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("expected '%s' in: %s", want, text);
}

/* Settles interval 1900000 + i into db: two trades among four homes at price_uc_per_kwh for the
 * first (the "clearing"), every home metered. 6 transactions per block. */
static void settle(const char *db_path, int i, long price)
{
    char db[512], in[512];
    snprintf(db, sizeof db, "%s", db_path); /* P's buffers are reused below */
    snprintf(in, sizeof in, "%s", P("in.json"));
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"interval_id\": %d, \"interval_len_s\": 900, \"tariffs\": {\"feed_in_uc_per_kwh\":"
            " 80000, \"retail_uc_per_kwh\": 300000, \"network_fee_uc_per_kwh\": 10000},\n"
            "\"trades\": [{\"seller\":1,\"buyer\":3,\"energy_wh\":%d,\"price_uc_per_kwh\":%ld},"
            "{\"seller\":2,\"buyer\":4,\"energy_wh\":500,\"price_uc_per_kwh\":120000}],\n"
            "\"meters\": [{\"participant\":1,\"import_wh\":0,\"export_wh\":1000,\"quality\":0},"
            "{\"participant\":2,\"import_wh\":0,\"export_wh\":600,\"quality\":0},"
            "{\"participant\":3,\"import_wh\":1000,\"export_wh\":0,\"quality\":0},"
            "{\"participant\":4,\"import_wh\":400,\"export_wh\":0,\"quality\":0}]}\n",
            1900000 + i, 900 + i, price);
    fclose(f);
    char out[8192];
    const char *a[] = {"ledger", "settle", db, "--input", in, "--key", P("k.skey"), NULL};
    if (run(out, sizeof out, a) != 0)
        fail_msg("settle: %s", out);
}

/* A ledger of intervals 1..n in db (fresh); interval `altered` (0: none) cleared at another
 * price. */
static void make_ledger(const char *db_path, int n, int altered)
{
    char db[512];
    snprintf(db, sizeof db, "%s", db_path);
    unlink(db);
    for (int i = 1; i <= n; i++)
        settle(db, i, i == altered ? 290000 : 150000);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && rm -f '%s-wal' '%s-shm'", from, to, to, to);
    assert_int_equal(system(cmd), 0);
}

/* The witness config tag-w.ini for witness w following tag.db. */
static const char *config(const char *tag, const char *w)
{
    const char *ini = P("%s-%s.ini", tag, w);
    FILE *f = fopen(ini, "w");
    assert_non_null(f);
    fprintf(f,
            "[witness]\nname = witness.example/%s\nkey_file = %s.key\nledger = %s.db\n"
            "log_key_file = k.vkey\nstate = %s-%s.state\nout = %s-%s.cosigned\n",
            w, w, tag, tag, w, tag, w);
    fclose(f);
    return ini;
}

static int witness(const char *tag, const char *w, char *out, size_t cap)
{
    const char *ini = config(tag, w);
    const char *a[] = {"witness", ini, "--once", NULL};
    return run(out, cap, a);
}

/* verify tag.db with the community key and the given extra arguments */
static int verify(const char *tag, char *out, size_t cap, const char *const *extra)
{
    const char *a[32] = {"ledger", "verify", P("%s.db", tag), "--vkey-file", P("k.vkey")};
    int n = 5;
    for (; extra && *extra && n < 30; extra++)
        a[n++] = *extra;
    a[n] = NULL;
    return run(out, cap, a);
}

static int setup(void **state)
{
    if (tst_dir_setup(state) != 0)
        return -1;
    char out[4096];
    const char *a[] = {"ledger", "keygen", "street.example/mgx", "--out", P("k.skey"), NULL};
    assert_int_equal(lh_run(a, NULL, P("k.vkey"), NULL), 0);
    const char *b[] = {"keygen", "--out", P("w1"), NULL}, *c[] = {"keygen", "--out", P("w2"), NULL};
    assert_int_equal(run(out, sizeof out, b), 0);
    assert_int_equal(run(out, sizeof out, c), 0);
    (void)out;
    return 0;
}

static void good_extension_and_quorum(void **state)
{
    (void)state;
    char out[8192];
    char db[512];
    snprintf(db, sizeof db, "%s", P("g.db"));
    make_ledger(db, 1, 0);
    assert_int_equal(witness("g", "w1", out, sizeof out), 0);
    expect_in(out, "cosigned log size 6 at time");
    assert_int_equal(witness("g", "w2", out, sizeof out), 0);
    settle(db, 2, 150000);
    assert_int_equal(witness("g", "w1", out, sizeof out), 0);
    expect_in(out, "cosigned log size 12 (consistent with the one cosigned before)");
    assert_int_equal(witness("g", "w1", out, sizeof out), 0);
    expect_in(out, "unchanged: log size 12");

    char w1p[512], w2p[512], c1[512], c2[512];
    snprintf(w1p, sizeof w1p, "%s", P("w1.pub"));
    snprintf(w2p, sizeof w2p, "%s", P("w2.pub"));
    snprintf(c1, sizeof c1, "%s", P("g-w1.cosigned"));
    snprintf(c2, sizeof c2, "%s", P("g-w2.cosigned"));
    /* w2 has not seen block 1 yet: 1 of 2 */
    const char *both[] = {"--witness", w1p,          "--witness", w2p, "--cosigned",
                          c1,          "--cosigned", c2,          NULL};
    assert_int_equal(verify("g", out, sizeof out, both), 1);
    expect_in(out, "1 of the 2 known witnesses cosigned the latest checkpoint (log size 12); 2 "
                   "required");
    const char *one[] = {"--witness",  w1p,          "--witness",
                         w2p,          "--cosigned", c1,
                         "--cosigned", c2,           "--witnesses-required",
                         "1",          NULL};
    assert_int_equal(verify("g", out, sizeof out, one), 0);
    expect_in(out, "1 of 2 witnesses cosigned the latest checkpoint (log size 12)");
    assert_int_equal(witness("g", "w2", out, sizeof out), 0);
    assert_int_equal(verify("g", out, sizeof out, both), 0);
    expect_in(out, "2 of 2 witnesses cosigned the latest checkpoint (log size 12)");
    /* a witness key given twice is one witness */
    const char *twice[] = {"--witness", w1p, "--witness", w1p, "--cosigned", c1, NULL};
    assert_int_equal(verify("g", out, sizeof out, twice), 1);
    expect_in(out, "1 of the 1 known witnesses");
    /* a cosignature file of another key does not count: w2's file for w1's key */
    const char *wrong[] = {"--witness", w1p, "--cosigned", c2, NULL};
    assert_int_equal(verify("g", out, sizeof out, wrong), 1);
    expect_in(out, "0 of the 1 known witnesses");

    /* a home's proof checked against the witnessed checkpoint, k of n */
    char proof[512];
    snprintf(proof, sizeof proof, "%s", P("g-proof.json"));
    const char *pa[] = {"ledger", "proof", P("g.db"), "--index", "3", NULL};
    assert_int_equal(lh_run(pa, NULL, proof, NULL), 0);
    const char *cp2[] = {"ledger",
                         "check-proof",
                         "--proof",
                         proof,
                         "--vkey-file",
                         P("k.vkey"),
                         "--checkpoint",
                         c1,
                         "--witness",
                         w1p,
                         "--witness",
                         w2p,
                         "--cosigned",
                         c1,
                         "--cosigned",
                         c2,
                         NULL};
    assert_int_equal(run(out, sizeof out, cp2), 0);
    expect_in(out, "2 witnesses cosigned this checkpoint");
    settle(db, 3, 150000);
    assert_int_equal(witness("g", "w1", out, sizeof out), 0);
    /* w1 moved on to log size 18; the proof is at 12: only w2 cosigned that checkpoint */
    const char *cp1[] = {"ledger",      "check-proof",
                         "--proof",     proof,
                         "--vkey-file", P("k.vkey"),
                         "--witness",   w1p,
                         "--witness",   w2p,
                         "--cosigned",  c1,
                         "--cosigned",  c2,
                         NULL};
    assert_int_equal(run(out, sizeof out, cp1), 1);
    expect_in(out, "1 of the known witnesses cosigned this checkpoint (log size 12); 2 required");
}

static void alter_tx(const char *db, int log_index)
{
    sqlite3 *h;
    char stmt[256];
    snprintf(stmt, sizeof stmt,
             "UPDATE ledger_tx SET body = substr(body,1,40) || x'ff' || substr(body,42) WHERE "
             "log_index = %d",
             log_index);
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, stmt, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(h), 1);
    sqlite3_close(h);
}

static void altered_block(void **state)
{
    (void)state;
    char out[8192];
    char db[512];
    snprintf(db, sizeof db, "%s", P("a.db"));
    make_ledger(db, 2, 0);
    assert_int_equal(witness("a", "w1", out, sizeof out), 0);
    char state_before[4096], state_after[4096];
    assert_true(lh_slurp(P("a-w1.state"), state_before, sizeof state_before) > 0);
    /* the controller adds block 2; a byte of one of its trades is changed in the file, without
     * signing again: the witness's audit of the new block fails */
    settle(db, 3, 150000);
    alter_tx(db, 13);
    assert_int_equal(witness("a", "w1", out, sizeof out), 1);
    expect_in(out, "refused: the ledger fails the audit: transaction at log index 13");
    assert_true(lh_slurp(P("a-w1.state"), state_after, sizeof state_after) > 0);
    assert_string_equal(state_before, state_after);
    char w1p[512], c1[512];
    snprintf(w1p, sizeof w1p, "%s", P("w1.pub"));
    snprintf(c1, sizeof c1, "%s", P("a-w1.cosigned"));
    const char *req[] = {"--witness", w1p, "--cosigned", c1, NULL};
    assert_int_equal(verify("a", out, sizeof out, req), 1);
    expect_in(out, "transaction at log index 13");
    /* a witness's first look audits every block */
    make_ledger(db, 2, 0);
    alter_tx(db, 2);
    assert_int_equal(witness("a", "w2", out, sizeof out), 1);
    expect_in(out, "refused: the ledger fails the audit: transaction at log index 2");
}

static void forked_ledger(void **state)
{
    (void)state;
    char out[8192], w1p[512], c1[512];
    snprintf(w1p, sizeof w1p, "%s", P("w1.pub"));
    snprintf(c1, sizeof c1, "%s", P("f-w1.cosigned"));
    const char *req[] = {"--witness", w1p, "--cosigned", c1, NULL};
    make_ledger(P("f.db"), 2, 0);
    assert_int_equal(witness("f", "w1", out, sizeof out), 0);
    expect_in(out, "cosigned log size 12");
    /* the operator re-clears interval 2 at another price and re-signs everything with the
     * community key: the same size, another root */
    make_ledger(P("x.db"), 2, 2);
    copy_file(P("x.db"), P("f.db"));
    assert_int_equal(verify("f", out, sizeof out, NULL), 0); /* the key alone cannot tell */
    assert_int_equal(witness("f", "w1", out, sizeof out), 1);
    expect_in(out, "refused: the latest checkpoint (log size 12) is the same size as the "
                   "checkpoint already cosigned with another root: the log forked");
    assert_int_equal(verify("f", out, sizeof out, req), 1);
    expect_in(out, "witness witness.example/w1 cosigned a log of 12 transactions");
    expect_in(out, "the ledger forked from what the witness saw");
    /* the fork grows: the consistency proof from the witness's root fails */
    settle(P("f.db"), 3, 150000);
    assert_int_equal(witness("f", "w1", out, sizeof out), 1);
    expect_in(out, "refused: the latest checkpoint (log size 18) is the consistency proof from "
                   "the checkpoint already cosigned does not verify");
    assert_int_equal(verify("f", out, sizeof out, req), 1);
    expect_in(out, "the ledger forked from what the witness saw");
    /* the altered interval was the first one: the fork is below every later block too */
    make_ledger(P("f.db"), 3, 0);
    assert_int_equal(witness("f", "w1", out, sizeof out), 0); /* the honest ledger, extended */
    make_ledger(P("x.db"), 4, 1);
    copy_file(P("x.db"), P("f.db"));
    assert_int_equal(witness("f", "w1", out, sizeof out), 1);
    expect_in(out, "does not verify");
}

static void truncated_ledger(void **state)
{
    (void)state;
    char out[8192], w1p[512], c1[512];
    snprintf(w1p, sizeof w1p, "%s", P("w1.pub"));
    snprintf(c1, sizeof c1, "%s", P("t-w1.cosigned"));
    const char *req[] = {"--witness", w1p, "--cosigned", c1, NULL};
    char db[512];
    snprintf(db, sizeof db, "%s", P("t.db"));
    make_ledger(db, 2, 0);
    copy_file(db, P("t-copy.db"));
    settle(db, 3, 150000);
    assert_int_equal(witness("t", "w1", out, sizeof out), 0);
    expect_in(out, "cosigned log size 18");
    /* the newest block cut off: the file rolled back to the copy of two blocks */
    copy_file(P("t-copy.db"), db);
    assert_int_equal(verify("t", out, sizeof out, NULL), 0); /* internally consistent */
    assert_int_equal(witness("t", "w1", out, sizeof out), 1);
    expect_in(out, "refused: the latest checkpoint (log size 12) is smaller than the checkpoint "
                   "already cosigned: the log was truncated or rolled back (cosigned before: log "
                   "size 18)");
    assert_int_equal(verify("t", out, sizeof out, req), 1);
    expect_in(out, "witness witness.example/w1 cosigned a log of 18 transactions");
    expect_in(out, "but the ledger has 12: it was truncated or rolled back");
}

static void damaged_state(void **state)
{
    (void)state;
    char out[8192];
    make_ledger(P("d.db"), 1, 0);
    assert_int_equal(witness("d", "w1", out, sizeof out), 0);
    FILE *f = fopen(P("d-w1.state"), "w");
    fputs("garbage\n", f);
    fclose(f);
    assert_int_equal(witness("d", "w1", out, sizeof out), 1);
    expect_in(out, "the witness state is not a checkpoint of street.example/mgx");
    /* a config without the ledger */
    f = fopen(P("bad.ini"), "w");
    fputs("[witness]\nname = w\nkey_file = w1.key\n", f);
    fclose(f);
    const char *a[] = {"witness", P("bad.ini"), "--once", NULL};
    assert_int_equal(run(out, sizeof out, a), 1);
    expect_in(out, "[witness] needs ledger");
}

/* With [bus], the cosigned checkpoint is published retained on ledger/cosigned/<client_id>,
 * byte for byte the out file; a new cosignature replaces it. */
static void published_on_the_bus(void **state)
{
    (void)state;
    char out[8192];
    tst_broker *b = tst_broker_start(NULL);
    assert_non_null(b);
    make_ledger(P("b.db"), 1, 0);
    char ini[512];
    snprintf(ini, sizeof ini, "%s", config("b", "w1")); /* P's buffers are reused below */
    FILE *f = fopen(ini, "a");
    fprintf(f, "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = street\nclient_id = w1\n",
            tst_broker_port(b));
    fclose(f);
    const char *a[] = {"witness", ini, "--once", NULL};
    assert_int_equal(run(out, sizeof out, a), 0);
    expect_in(out, "published on mgx/v1/street/ledger/cosigned/w1");
    tc_opts o = {.port = tst_broker_port(b)};
    int reason = 0;
    tc_client *c = tc_connect(&o, 10000, &reason);
    assert_non_null(c);
    assert_true(tc_subscribe(c, "mgx/v1/street/ledger/cosigned/#", 10000) >= 0);
    tc_message m;
    size_t from = 0;
    assert_true(tc_wait_topic(c, "mgx/v1/street/ledger/cosigned/w1", &from, &m, 30000));
    char file[4096];
    assert_true(lh_slurp(P("b-w1.cosigned"), file, sizeof file) > 0);
    assert_true(m.retained);
    assert_string_equal(m.payload, file);
    /* the next block: a new cosignature replaces the retained one */
    settle(P("b.db"), 2, 150000);
    assert_int_equal(run(out, sizeof out, a), 0);
    assert_true(tc_wait_topic(c, "mgx/v1/street/ledger/cosigned/w1", &from, &m, 30000));
    assert_true(lh_slurp(P("b-w1.cosigned"), file, sizeof file) > 0);
    assert_non_null(strstr(m.payload, "\n12\n"));
    assert_string_equal(m.payload, file);
    tc_free(c);
    /* no broker: --once says so and fails (the files are written all the same) */
    tst_broker_kill(b);
    settle(P("b.db"), 3, 150000);
    assert_int_equal(run(out, sizeof out, a), 1);
    expect_in(out, "cosigned log size 18");
    expect_in(out, "not published");
    tst_broker_free(b);
}

/* The file's text as a malloc'd string (the test fails when it cannot be read). */
static char *slurp_alloc(const char *path, size_t *len)
{
    char *b = malloc(8192);
    assert_non_null(b);
    long n = lh_slurp(path, b, 8192);
    assert_true(n > 0);
    *len = (size_t)n;
    return b;
}

static int accept_file(ctl_db *db, const uint8_t (*pks)[32], size_t n, const char *path)
{
    size_t len;
    char *note = slurp_alloc(path, &len);
    int v = ctl_cosig_accept(db, pks, n, note, len, NULL);
    free(note);
    return v;
}

static void collected_by_the_controller(void **state)
{
    (void)state;
    char out[8192], err[512];
    uint8_t pks[2][32];
    assert_int_equal(ctl_pubkey_load(P("w1.pub"), pks[0]), 0);
    assert_int_equal(ctl_pubkey_load(P("w2.pub"), pks[1]), 0);
    const char *c[] = {"keygen", "--out", P("w3"), NULL}; /* a witness nobody configured */
    assert_int_equal(run(out, sizeof out, c), 0);
    make_ledger(P("c.db"), 2, 0);
    assert_int_equal(witness("c", "w1", out, sizeof out), 0);
    assert_int_equal(witness("c", "w2", out, sizeof out), 0);
    assert_int_equal(witness("c", "w3", out, sizeof out), 0);
    ctl_db *db = NULL;
    assert_int_equal(ctl_db_open(P("c.db"), &db, err, sizeof err), 0);
    assert_null(ctl_cosig_witnessed(db, NULL)); /* nothing collected yet */

    assert_int_equal(accept_file(db, pks, 2, P("c-w1.cosigned")), CTL_COSIG_STORED);
    assert_int_equal(accept_file(db, pks, 2, P("c-w1.cosigned")), CTL_COSIG_UNCHANGED);
    assert_int_equal(accept_file(db, pks, 2, P("c-w3.cosigned")), CTL_COSIG_E_NO_WITNESS);
    /* w2's note checked against w1's key alone: w2 is not a configured witness there */
    assert_int_equal(accept_file(db, pks, 1, P("c-w2.cosigned")), CTL_COSIG_E_NO_WITNESS);

    size_t len;
    char *note = slurp_alloc(P("c-w2.cosigned"), &len);
    char *cut = strstr(note, "\n\n");
    assert_non_null(cut);
    /* a byte of w2's cosignature changed: its line no longer verifies */
    char *last = note + len - 6, was = *last;
    *last = (char)(was == 'A' ? 'B' : 'A');
    assert_int_equal(ctl_cosig_accept(db, pks, 2, note, len, NULL), CTL_COSIG_E_NO_WITNESS);
    *last = was;
    /* the body changed: the community's signature fails */
    was = cut[-1];
    cut[-1] = (char)(was == 'A' ? 'B' : 'A');
    assert_int_equal(ctl_cosig_accept(db, pks, 2, note, len, NULL), CTL_COSIG_E_MALFORMED);
    cut[-1] = was;
    assert_int_equal(ctl_cosig_accept(db, pks, 2, "garbage\n", 8, NULL), CTL_COSIG_E_MALFORMED);
    uint64_t size = 0;
    assert_int_equal(ctl_cosig_accept(db, pks, 2, note, len, &size), CTL_COSIG_STORED);
    assert_int_equal(size, 12);
    free(note);

    /* a checkpoint signed by the community key at a size this ledger has, with another root
     * (the operator re-cleared interval 2): a fork; and one beyond the ledger: unknown */
    make_ledger(P("x.db"), 2, 2);
    assert_int_equal(witness("x", "w1", out, sizeof out), 0);
    assert_int_equal(accept_file(db, pks, 2, P("x-w1.cosigned")), CTL_COSIG_E_FORK);
    settle(P("x.db"), 3, 150000);
    assert_int_equal(witness("x", "w1", out, sizeof out), 0);
    assert_int_equal(accept_file(db, pks, 2, P("x-w1.cosigned")), CTL_COSIG_E_UNKNOWN);

    /* one note with both witnesses, which verify takes as a quorum of 2; kept over a reopen */
    ctl_db_close(db);
    assert_int_equal(ctl_db_open(P("c.db"), &db, err, sizeof err), 0);
    char *w = ctl_cosig_witnessed(db, &size);
    assert_non_null(w);
    assert_int_equal(size, 12);
    ctl_db_close(db);
    FILE *f = fopen(P("c.witnessed"), "w");
    assert_non_null(f);
    fputs(w, f);
    fclose(f);
    assert_non_null(strstr(w, "witness.example/w1 "));
    assert_non_null(strstr(w, "witness.example/w2 "));
    assert_null(strstr(w, "witness.example/w3 "));
    free(w);
    char w1p[512], w2p[512], cw[512];
    snprintf(w1p, sizeof w1p, "%s", P("w1.pub"));
    snprintf(w2p, sizeof w2p, "%s", P("w2.pub"));
    snprintf(cw, sizeof cw, "%s", P("c.witnessed"));
    const char *req[] = {"--witness", w1p, "--witness", w2p, "--cosigned", cw,
                         "--witnesses-required", "2", NULL};
    if (verify("c", out, sizeof out, req) != 0)
        fail_msg("verify with the collected note: %s", out);
    expect_in(out, "2 of 2 witnesses cosigned the latest checkpoint (log size 12)");
}

/* Appends a [bus] section for the broker at port, as client id */
static void add_bus(const char *ini, int port, const char *id)
{
    FILE *f = fopen(ini, "a");
    assert_non_null(f);
    fprintf(f, "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = street\nclient_id = %s\n", port,
            id);
    fclose(f);
}

/* Waits for a retained ledger/witnessed note naming every one of want[] (NULL-terminated). */
static void wait_witnessed(tc_client *c, size_t *from, const char *const *want, char *note,
                           size_t cap)
{
    for (;;) {
        tc_message m;
        if (!tc_wait_topic(c, "mgx/v1/street/ledger/witnessed", from, &m, 60000))
            fail_msg("no ledger/witnessed note with all the witnesses expected");
        int all = 1;
        for (const char *const *w = want; *w; w++)
            all &= strstr(m.payload, *w) != NULL;
        if (all) {
            size_t n = strlen(m.payload);
            assert_true(n < cap);
            memcpy(note, m.payload, n + 1);
            return;
        }
    }
}

static void collected_on_the_bus(void **state)
{
    (void)state;
    char out[8192], note[8192];
    tst_broker *b = tst_broker_start(NULL);
    assert_non_null(b);
    int port = tst_broker_port(b);
    make_ledger(P("e.db"), 1, 0);
    char ctl[512], w1[512], w2[512];
    snprintf(ctl, sizeof ctl, "%s", P("e-controller.ini"));
    FILE *f = fopen(ctl, "w");
    assert_non_null(f);
    fprintf(f,
            "[controller]\ncommunity = street\ndb = e.db\ninterval_s = 900\n"
            "settlement_key = k.skey\nwitness_keys = w1.pub, w2.pub\n");
    fclose(f);
    add_bus(ctl, port, "controller");
    snprintf(w1, sizeof w1, "%s", config("e", "w1"));
    add_bus(w1, port, "w1");
    snprintf(w2, sizeof w2, "%s", config("e", "w2"));
    add_bus(w2, port, "w2");

    tc_opts o = {.port = port};
    int reason = 0;
    tc_client *c = tc_connect(&o, 10000, &reason);
    assert_non_null(c);
    assert_true(tc_subscribe(c, "mgx/v1/street/ledger/witnessed", 10000) >= 0);
    const char *ca[] = {"controller", ctl, NULL};
    pid_t pid = lh_start(ca, NULL);
    assert_true(pid > 0);

    const char *a1[] = {"witness", w1, "--once", NULL}, *a2[] = {"witness", w2, "--once", NULL};
    if (run(out, sizeof out, a1) != 0)
        fail_msg("witness w1: %s", out);
    size_t from = 0;
    const char *want1[] = {"witness.example/w1 ", NULL};
    wait_witnessed(c, &from, want1, note, sizeof note);
    assert_null(strstr(note, "witness.example/w2 "));
    /* a forged cosignature under w2's name: w1's line with another name cannot verify */
    char forged[8192];
    size_t flen = (size_t)lh_slurp(P("e-w1.cosigned"), forged, sizeof forged);
    char *line = strstr(forged, "witness.example/w1 ");
    assert_non_null(line);
    line[16] = '2';
    assert_int_equal(tc_publish(c, "mgx/v1/street/ledger/cosigned/evil", forged, flen, 1, false,
                                10000),
                     0);
    if (run(out, sizeof out, a2) != 0)
        fail_msg("witness w2: %s", out);
    const char *want2[] = {"witness.example/w1 ", "witness.example/w2 ", NULL};
    wait_witnessed(c, &from, want2, note, sizeof note);
    tc_free(c);
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    assert_int_equal(exit_code(st), 0);
    /* the note is the ledger's checkpoint with exactly the two real lines on it */
    char cp[4096];
    assert_true(lh_slurp(P("e-w1.cosigned"), cp, sizeof cp) > 0);
    *strstr(cp, "— witness.example/w1") = '\0';
    assert_memory_equal(note, cp, strlen(cp));
    int lines = 0;
    for (const char *q = note; (q = strstr(q, "\n— ")); q++)
        lines++;
    assert_int_equal(lines, 3); /* the community's and two witnesses' */
    tst_broker_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_extension_and_quorum),
        cmocka_unit_test(altered_block),
        cmocka_unit_test(forked_ledger),
        cmocka_unit_test(truncated_ledger),
        cmocka_unit_test(damaged_state),
        cmocka_unit_test(published_on_the_bus),
        cmocka_unit_test(collected_by_the_controller),
        cmocka_unit_test(collected_on_the_bus),
    };
    return cmocka_run_group_tests(tests, setup, tst_dir_teardown);
}
