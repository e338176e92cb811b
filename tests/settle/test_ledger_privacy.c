/*
 * What a home learns from its own inclusion proofs (issue 19), on real SQLite ledgers settled
 * by ctl_ledger_settle and proved by ctl_ledger_inclusion_proof, as `mgx ledger proof` does:
 *
 *   - the leaf brute force: a home takes the first hash of its proof's audit path (its
 *     neighbour's leaf), guesses the neighbour's position from what it knows (interval, seq,
 *     participant number, public tariffs, status good, a night with no export) and tries every
 *     import from 0 to 5000 Wh. Against a ledger written as version 1 (unsalted leaves, what
 *     earlier releases wrote) it recovers the neighbour's exact import in every interval;
 *     against version 2 (salted leaves) in none, with no salt, its own salt or a zero salt. The
 *     same for published transaction ids.
 *   - a version 2 proof carries exactly one salt: its own transaction's.
 *   - a ledger of version 1 blocks followed by version 2 blocks verifies; a version 1 block
 *     after a version 2 one is refused; a changed salt is a named fault; HELD positions and
 *     attestation tiers re-settle in the audit.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "mgx/checkpoint.h"
#include "mgx/ledger_record.h"
#include "mgx/merkle.h"
#include "settle/ledger_json.h"
#include "settle/ledger_proof.h"
#include "settle/ledger_verify.h"
#include "settle/settle_interval.h"
#include "broker.h"

#define N_HOMES 4
#define N_INTERVALS 40
#define FIRST_INTERVAL 1900000
#define MAX_GUESS_WH 5000 /* a quarter hour at up to 20 kW */

static const stl_tariffs TARIFFS = {80000, 300000, 10000};

static ctl_ledger_key *key;

static int setup(void **state)
{
    if (tst_dir_setup(state) != 0)
        return -1;
    uint8_t pk[32], sk[64];
    crypto_sign_keypair(pk, sk);
    char text[256], path[512], err[256];
    assert_int_equal(stl_skey_format("street.example/mgx", sk, text, sizeof text), STL_OK);
    snprintf(path, sizeof path, "%s/k.skey", tst_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    sodium_memzero(sk, sizeof sk);
    key = ctl_ledger_key_load(path, err, sizeof err);
    assert_non_null(key);
    return 0;
}

static int teardown(void **state)
{
    ctl_ledger_key_free(key);
    return tst_dir_teardown(state);
}

/* The night import of home h in interval i: 50 .. 3049 Wh, no export. */
static int64_t night_import(int h, int i)
{
    return 50 + (int64_t)((uint32_t)(h * 7919 + i * 104729) % 3000u);
}

static ctl_db *open_db(const char *name)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/%s", tst_dir, name);
    remove(path);
    ctl_db *db = NULL;
    if (ctl_db_open(path, &db, err, sizeof err) != CTL_DB_OK)
        fail_msg("%s", err);
    return db;
}

/* Settles interval FIRST_INTERVAL + i: homes 1..N_HOMES importing at night, no trades. */
static void settle_night(ctl_db *db, int i, uint8_t version)
{
    stl_metered m[N_HOMES];
    for (int h = 0; h < N_HOMES; h++)
        m[h] = (stl_metered){(uint64_t)h + 1, night_import(h + 1, i), 0, 0, 0, 0};
    ctl_ledger_input in = {FIRST_INTERVAL + i, 900, TARIFFS, NULL, 0, m, N_HOMES,
                           STL_TIMING_EX_ANTE, version, 0, 0};
    ctl_ledger_result res;
    char err[256] = "";
    if (ctl_ledger_settle(db, &in, key, &res, err, sizeof err) != CTL_LEDGER_OK)
        fail_msg("settle %d: %s", i, err);
}

static void expect_verify_ok(ctl_db *db)
{
    char msg[512] = "";
    if (ctl_ledger_verify(db, key->sk + 32, msg, sizeof msg) != CTL_LEDGER_OK)
        fail_msg("verify: %s", msg);
}

/* The proof a home gets for its position in interval i (log index i * N_HOMES + home - 1: no
 * trades, positions by participant), through its JSON text as the home receives it. */
static void home_proof(ctl_db *db, int i, int home, ctl_lj_proof *out, char **text)
{
    ctl_lj_proof pr;
    memset(&pr, 0, sizeof pr);
    uint8_t txid[STL_ID_LEN];
    char err[256] = "";
    if (ctl_ledger_inclusion_proof(db, NULL, (int64_t)i * N_HOMES + home - 1, -1, &pr, txid, err,
                                   sizeof err) != CTL_LEDGER_OK)
        fail_msg("proof: %s", err);
    *text = ctl_lj_proof_format(&pr, txid);
    assert_non_null(*text);
    ctl_lj_proof_free(&pr);
    assert_int_equal(ctl_lj_proof_parse(*text, strlen(*text), out, err, sizeof err), CTL_LJ_OK);
    /* and it checks offline against the signed checkpoint it carries */
    char name[STL_COMMUNITY_MAX + 1];
    uint8_t pk[32];
    memcpy(pk, key->sk + 32, 32);
    strcpy(name, key->name);
    stl_checkpoint cp;
    assert_int_equal(stl_checkpoint_open(out->checkpoint, strlen(out->checkpoint), name, pk, name,
                                         &cp),
                     STL_OK);
    assert_int_equal(ctl_ledger_check_inclusion(out, &cp, err, sizeof err), CTL_LEDGER_OK);
}

/* How the attacker hashes a guess: the version 1 rule, or version 2's with a salt it picks. */
typedef enum { GUESS_UNSALTED, GUESS_OWN_SALT, GUESS_ZERO_SALT } guess_rule;

static void hash_guess(const uint8_t *enc, size_t len, guess_rule rule, const uint8_t *own_salt,
                       int leaf, uint8_t out[32])
{
    static const uint8_t zero[STL_SALT_LEN] = {0};
    uint8_t data[1 + STL_SALT_LEN + STL_TX_MAX_LEN];
    size_t n = 0;
    if (leaf)
        data[n++] = 0x00;
    if (rule != GUESS_UNSALTED) {
        memcpy(data + n, rule == GUESS_OWN_SALT ? own_salt : zero, STL_SALT_LEN);
        n += STL_SALT_LEN;
    }
    memcpy(data + n, enc, len);
    crypto_hash_sha256(out, data, n + len);
}

/* The neighbour's position as the attacker guesses it: participant, interval and seq known,
 * status good, quality 0, tier 0, import_wh the unknown, export 0, the grid legs from the
 * public tariffs. Returns the import whose hash is target, or -1. */
static int64_t brute_force(const stl_tx *mine, uint64_t neighbour, uint32_t seq,
                           const uint8_t target[32], guess_rule rule, const uint8_t *own_salt,
                           int leaf)
{
    for (int64_t imp = 0; imp <= MAX_GUESS_WH; imp++) {
        stl_tx g;
        memset(&g, 0, sizeof g);
        g.version = mine->version;
        g.kind = STL_TX_POSITION;
        g.interval_id = mine->interval_id;
        g.seq = seq;
        g.position.participant = neighbour;
        g.position.status = STL_POS_GOOD;
        g.position.import_wh = imp;
        g.position.grid_bought_wh = imp;
        g.position.grid_paid_uc = imp * TARIFFS.retail_uc_per_kwh / 1000;
        uint8_t enc[STL_TX_MAX_LEN], h[32];
        size_t len = stl_tx_encode(&g, enc);
        assert_true(len > 0);
        hash_guess(enc, len, rule, own_salt, leaf, h);
        if (memcmp(h, target, 32) == 0)
            return imp;
    }
    return -1;
}

/* The neighbour's transaction id, as if published (e.g. listed next to a payment). */
static void published_id(ctl_db *db, int64_t log_index, uint8_t id[32])
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(ctl_db_prepare(db, "SELECT txid FROM ledger_tx WHERE log_index=?1", &st),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, log_index);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_bytes(st, 0), 32);
    memcpy(id, sqlite3_column_blob(st, 0), 32);
    sqlite3_finalize(st);
}

/* Home 1 attacks home 2 (its level-0 sibling) in every interval; returns how many imports it
 * recovered exactly (wrong values fail the test) from leaves (leaf = 1) or published ids. */
static int attack(ctl_db *db, guess_rule rule, int leaf)
{
    int recovered = 0;
    for (int i = 0; i < N_INTERVALS; i++) {
        ctl_lj_proof *pr = calloc(1, sizeof *pr);
        char *text = NULL;
        assert_non_null(pr);
        home_proof(db, i, 1, pr, &text);
        assert_int_equal(pr->log_index % 2, 0); /* so the first path hash is home 2's leaf */
        assert_true(pr->n_path >= 1);
        uint8_t target[32];
        if (leaf)
            memcpy(target, pr->path[0], 32);
        else
            published_id(db, pr->log_index + 1, target);
        int64_t got = brute_force(&pr->tx, 2, pr->tx.seq + 1, target, rule,
                                  pr->has_salt ? pr->salt : NULL, leaf);
        if (got >= 0) {
            assert_int_equal(got, night_import(2, i));
            recovered++;
        }
        free(text);
        ctl_lj_proof_free(pr);
        free(pr);
    }
    return recovered;
}

static void leaf_brute_force(void **state)
{
    (void)state;
    ctl_db *v1 = open_db("v1.db"), *v2 = open_db("v2.db");
    for (int i = 0; i < N_INTERVALS; i++) {
        settle_night(v1, i, STL_LEDGER_V1);
        settle_night(v2, i, STL_LEDGER_V2);
    }
    expect_verify_ok(v1);
    expect_verify_ok(v2);

    /* version 1: every neighbour's import, from the home's own proofs and from ids */
    assert_int_equal(attack(v1, GUESS_UNSALTED, 1), N_INTERVALS);
    assert_int_equal(attack(v1, GUESS_UNSALTED, 0), N_INTERVALS);
    /* version 2: nothing, whatever salt the home tries */
    for (guess_rule r = GUESS_UNSALTED; r <= GUESS_ZERO_SALT; r++) {
        assert_int_equal(attack(v2, r, 1), 0);
        assert_int_equal(attack(v2, r, 0), 0);
    }
    ctl_db_close(v1);
    ctl_db_close(v2);
}

static int count_substr(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

/* The salt of the transaction at log_index, base64 as in a proof. */
static void stored_salt64(ctl_db *db, int64_t log_index, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(ctl_db_prepare(db, "SELECT salt FROM ledger_tx WHERE log_index=?1", &st),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, log_index);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_bytes(st, 0), STL_SALT_LEN);
    sodium_bin2base64(out, cap, sqlite3_column_blob(st, 0), STL_SALT_LEN,
                      sodium_base64_VARIANT_ORIGINAL);
    sqlite3_finalize(st);
}

static void proof_carries_own_salt_only(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/v2.db", tst_dir);
    ctl_db *db = NULL;
    char err[256];
    assert_int_equal(ctl_db_open(path, &db, err, sizeof err), CTL_DB_OK);
    ctl_lj_proof *pr = calloc(1, sizeof *pr);
    char *text = NULL;
    home_proof(db, 3, 1, pr, &text);
    assert_true(pr->has_salt);
    assert_non_null(strstr(text, "\"format\": \"mgx-inclusion-proof/2\""));
    assert_int_equal(count_substr(text, "\"salt\""), 1);
    char mine[64], other[64];
    stored_salt64(db, pr->log_index, mine, sizeof mine);
    assert_non_null(strstr(text, mine));
    for (int64_t li = 0; li < (int64_t)N_INTERVALS * N_HOMES; li++) {
        if (li == pr->log_index)
            continue;
        stored_salt64(db, li, other, sizeof other);
        assert_null(strstr(text, other));
    }
    /* and the salt is the derived one: settling again finds the same leaves */
    uint8_t salt[STL_SALT_LEN];
    stl_leaf_salt(key->salt_secret, pr->tx.interval_id, pr->tx.seq, salt);
    assert_memory_equal(salt, pr->salt, STL_SALT_LEN);
    settle_night(db, 3, 0); /* replay: the stored block, no conflict */
    free(text);
    ctl_lj_proof_free(pr);
    free(pr);
    ctl_db_close(db);
}

static void mixed_versions_verify(void **state)
{
    (void)state;
    ctl_db *db = open_db("mixed.db");
    for (int i = 0; i < 5; i++)
        settle_night(db, i, STL_LEDGER_V1);
    for (int i = 5; i < 10; i++)
        settle_night(db, i, 0); /* today's version */
    expect_verify_ok(db);
    /* an interval settled by an earlier release replays against its version 1 block */
    settle_night(db, 2, 0);
    /* never back to version 1 */
    stl_metered m = {1, 10, 0, 0, 0, 0};
    ctl_ledger_input in = {FIRST_INTERVAL + 10, 900, TARIFFS, NULL, 0, &m, 1,
                           STL_TIMING_EX_ANTE, STL_LEDGER_V1, 0, 0};
    ctl_ledger_result res;
    char err[256] = "";
    assert_int_equal(ctl_ledger_settle(db, &in, key, &res, err, sizeof err), CTL_LEDGER_E_INPUT);
    assert_non_null(strstr(err, "ledger version 2"));

    /* version 2 fields: a held reading with its reason, tiers, ex_post timing */
    stl_metered m2[3] = {{1, 400, 0, 0, STL_TIER_CERTIFIED, 0},
                         {2, 0, 900, 0x40, STL_TIER_GATEWAY, 1},
                         {3, 0, 300, 0, STL_TIER_UNSIGNED, 0}};
    mkt_trade t[1] = {{2, 1, 300, 120000, 36000, 3000}};
    ctl_ledger_input in2 = {FIRST_INTERVAL + 11, 900, TARIFFS, t, 1, m2, 3, STL_TIMING_EX_POST, 0, 0, 0};
    assert_int_equal(ctl_ledger_settle(db, &in2, key, &res, err, sizeof err), CTL_LEDGER_OK);
    assert_int_equal(res.block.version, STL_LEDGER_V2);
    assert_int_equal(res.block.timing, STL_TIMING_EX_POST);
    assert_int_equal(res.block.totals.n_held, 1);
    assert_int_equal(res.block.totals.delivered_wh, 0); /* the held seller delivers nothing */
    expect_verify_ok(db);
    /* the same interval with another timing is a conflict */
    in2.timing = STL_TIMING_EX_ANTE;
    assert_int_equal(ctl_ledger_settle(db, &in2, key, &res, err, sizeof err),
                     CTL_LEDGER_E_CONFLICT);

    /* a changed salt is a named fault */
    assert_int_equal(ctl_db_exec(db, "UPDATE ledger_tx SET salt = zeroblob(32) WHERE "
                                     "log_index = (SELECT max(log_index) FROM ledger_tx)"),
                     SQLITE_OK);
    char msg[512] = "";
    assert_int_equal(ctl_ledger_verify(db, key->sk + 32, msg, sizeof msg), CTL_LEDGER_E_FAULT);
    assert_non_null(strstr(msg, "stored id is not the hash"));
    /* and a missing one */
    assert_int_equal(ctl_db_exec(db, "UPDATE ledger_tx SET salt = NULL WHERE "
                                     "log_index = (SELECT max(log_index) FROM ledger_tx)"),
                     SQLITE_OK);
    assert_int_equal(ctl_ledger_verify(db, key->sk + 32, msg, sizeof msg), CTL_LEDGER_E_FAULT);
    assert_non_null(strstr(msg, "salt is missing"));
    ctl_db_close(db);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leaf_brute_force),
        cmocka_unit_test(proof_carries_own_salt_only),
        cmocka_unit_test(mixed_versions_verify),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
