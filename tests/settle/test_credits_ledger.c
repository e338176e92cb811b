/*
 * Energy credits in the ledger (issue 13), in-process against a real SQLite file:
 *   - 40 random intervals of 6 homes (mixed tiers, flagged, held and missing readings, trades)
 *     settled with credits (minimum tier 1; every fifth interval without, as an earlier release
 *     or a community with credits off would): `verify` passes; the credit records' sums obey
 *     conservation (minted == verified export, in == out, kept == minted + in - out - retired);
 *   - one home's certificates for the month (ctl_ledger_certificates) checked against the
 *     ledger read directly: every Wh minted appears in exactly one own bundle, every bought Wh
 *     in one bought bundle whose issuance id is a minting credit record of the block, matched
 *     == retired, consumption == its good import, per interval and for the month;
 *   - a block signed by the community key whose credit record mints 1 Wh too many (a record
 *     that is itself consistent) is reported by `verify` as a fault naming minted_wh.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "forged_block.h"

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "mgx/checkpoint.h"
#include "mgx/credits.h"
#include "mgx/ledger_record.h"
#include "mgx/merkle.h"
#include "settle/ledger_certs.h"
#include "settle/ledger_verify.h"
#include "settle/settle_interval.h"
#include "broker.h"

#define N_HOMES        6
#define N_INTERVALS    40
#define FIRST_INTERVAL 1900000 /* 2024-03-09T16:00Z at 900 s */
#define HOME           2

static const stl_tariffs TARIFFS = {80000, 300000, 10000};
static ctl_ledger_key *key;
static ctl_db *db;

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int64_t range(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next(s) % (uint64_t)(hi - lo + 1));
}

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
    snprintf(path, sizeof path, "%s/c.db", tst_dir);
    if (ctl_db_open(path, &db, err, sizeof err) != CTL_DB_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    ctl_db_close(db);
    ctl_ledger_key_free(key);
    return tst_dir_teardown(state);
}

typedef struct {
    mkt_trade t[8];
    size_t nt;
    stl_metered m[N_HOMES];
    size_t nm;
} interval;

static void gen(uint64_t *s, interval *iv)
{
    memset(iv, 0, sizeof *iv);
    for (int h = 1; h <= N_HOMES; h++) {
        if (range(s, 0, 9) == 0 && h != HOME)
            continue; /* missing reading */
        stl_metered *m = &iv->m[iv->nm++];
        m->participant = (uint64_t)h;
        m->import_wh = range(s, 0, 1500);
        m->export_wh = range(s, 0, 2) ? range(s, 0, 2000) : 0;
        m->tier = (uint8_t)range(s, 0, 2);
        int64_t q = range(s, 0, 11);
        if (q == 0)
            m->quality = 4; /* flagged */
        else if (q == 1)
            m->held = 1, m->quality = 1;
    }
    iv->nt = (size_t)range(s, 0, 8);
    for (size_t k = 0; k < iv->nt; k++) {
        mkt_trade *t = &iv->t[k];
        t->seller = (uint64_t)range(s, 1, N_HOMES);
        do
            t->buyer = (uint64_t)range(s, 1, N_HOMES);
        while (t->buyer == t->seller);
        t->energy_wh = range(s, 1, 800);
        t->price_uc_per_kwh = range(s, 80000, 300000);
        t->amount_uc = t->energy_wh * t->price_uc_per_kwh / 1000;
        t->fee_uc = t->energy_wh * TARIFFS.network_fee_uc_per_kwh / 1000;
    }
}

static void expect_verify(int want_ok, const char *want_text)
{
    char msg[1024] = "";
    int rc = ctl_ledger_verify(db, key->sk + 32, msg, sizeof msg);
    if (want_ok && rc != CTL_LEDGER_OK)
        fail_msg("verify: %s", msg);
    if (!want_ok && (rc != CTL_LEDGER_E_FAULT || !strstr(msg, want_text)))
        fail_msg("verify should name '%s', said: %s", want_text, msg);
    printf("verify: %s\n", msg);
}

/* Every stored transaction of participant p (positions and credits) by block height. */
typedef struct {
    int64_t height;
    stl_tx tx;
    char txid[65];
} stored;

static size_t load_all(stored *out, size_t cap)
{
    sqlite3 *h = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/c.db", tst_dir);
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT height, body, txid FROM ledger_tx ORDER BY "
                                        "log_index",
                                        -1, &st, NULL),
                     SQLITE_OK);
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < cap) {
        out[n].height = sqlite3_column_int64(st, 0);
        assert_int_equal(stl_tx_decode(sqlite3_column_blob(st, 1),
                                       (size_t)sqlite3_column_bytes(st, 1), &out[n].tx),
                         STL_OK);
        sodium_bin2hex(out[n].txid, sizeof out[n].txid, sqlite3_column_blob(st, 2), 32);
        n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

static void settle_and_check(void **state)
{
    (void)state;
    uint64_t s = 1913;
    interval iv, first;
    for (int i = 0; i < N_INTERVALS; i++) {
        gen(&s, &iv);
        if (i == 0)
            first = iv;
        ctl_ledger_input in = {FIRST_INTERVAL + i, 900, TARIFFS,    iv.t, iv.nt, iv.m, iv.nm,
                               STL_TIMING_EX_ANTE, 0,   i % 5 != 4, 1};
        ctl_ledger_result res;
        char err[256] = "";
        if (ctl_ledger_settle(db, &in, key, &res, err, sizeof err) != CTL_LEDGER_OK)
            fail_msg("settle %d: %s", i, err);
    }
    expect_verify(1, NULL);
    /* settling interval 0 again with another credits setting (credit_min_tier changed since) is
     * the same input: the stored block comes back; other meters are a conflict */
    {
        ctl_ledger_input in = {
            FIRST_INTERVAL,     900, TARIFFS, first.t, first.nt, first.m, first.nm,
            STL_TIMING_EX_ANTE, 0,   0,       0};
        ctl_ledger_result res;
        char err[256] = "";
        assert_int_equal(ctl_ledger_settle(db, &in, key, &res, err, sizeof err), CTL_LEDGER_OK);
        assert_int_equal(res.replayed, 1);
        first.m[0].export_wh += 1;
        assert_int_equal(ctl_ledger_settle(db, &in, key, &res, err, sizeof err),
                         CTL_LEDGER_E_CONFLICT);
    }

    /* conservation over the stored records, block by block */
    static stored all[4096];
    size_t n = load_all(all, 4096);
    int64_t minted = 0, verified = 0, in = 0, out = 0, retired = 0, kept = 0;
    int credit_blocks = 0;
    for (size_t i = 0; i < n; i++) {
        if (all[i].tx.kind == STL_TX_CREDIT) {
            const stl_credit *c = &all[i].tx.credit;
            minted += c->minted_wh, in += c->in_wh, out += c->out_wh;
            retired += c->retired_wh, kept += c->kept_wh;
            if (i == 0 || all[i - 1].tx.kind != STL_TX_CREDIT)
                credit_blocks++;
        }
    }
    /* verified export of the blocks holding credits */
    for (size_t i = 0; i < n; i++) {
        if (all[i].tx.kind != STL_TX_POSITION)
            continue;
        int has = 0;
        for (size_t j = 0; j < n; j++)
            if (all[j].height == all[i].height && all[j].tx.kind == STL_TX_CREDIT)
                has = 1;
        const stl_position *p = &all[i].tx.position;
        if (has && p->status == STL_POS_GOOD && p->tier >= 1)
            verified += p->export_wh;
    }
    printf("credits: %d blocks with credits; minted %lld Wh (verified export %lld), moved %lld, "
           "retired %lld, kept %lld\n",
           credit_blocks, (long long)minted, (long long)verified, (long long)in, (long long)retired,
           (long long)kept);
    assert_true(credit_blocks > 20);
    assert_int_equal(minted, verified);
    assert_int_equal(in, out);
    assert_int_equal(kept, minted + in - out - retired);
    assert_true(minted > 0 && in > 0 && retired > 0);

    /* the home's certificates against the ledger */
    ctl_statement_range r;
    ctl_statement_month(2024, 3, &r);
    json_t *j = NULL;
    char err[256] = "";
    if (ctl_ledger_certificates(db, HOME, &r, "2024-03", &j, err, sizeof err) != 0)
        fail_msg("certificates: %s", err);
    /* its credit records, and its good import in every block holding credits (consumption
     * counts whether or not credits matched it) */
    int64_t own_minted = 0, own_in = 0, own_retired = 0, own_cons = 0;
    int rows = 0, blocks = 0;
    for (size_t i = 0; i < n; i++) {
        if (all[i].tx.kind == STL_TX_CREDIT && all[i].tx.credit.participant == HOME) {
            own_minted += all[i].tx.credit.minted_wh;
            own_in += all[i].tx.credit.in_wh;
            own_retired += all[i].tx.credit.retired_wh;
            rows++;
        }
        if (all[i].tx.kind != STL_TX_POSITION || all[i].tx.position.participant != HOME)
            continue;
        int has = 0;
        for (size_t k = 0; k < n; k++)
            if (all[k].height == all[i].height && all[k].tx.kind == STL_TX_CREDIT)
                has = 1;
        if (!has)
            continue;
        blocks++;
        if (all[i].tx.position.status == STL_POS_GOOD)
            own_cons += all[i].tx.position.import_wh;
    }
    int64_t b_own = 0, b_bought = 0, b_cancelled = 0;
    json_t *certs = json_object_get(j, "certificates"), *c;
    size_t idx;
    char mydev[64];
    snprintf(mydev, sizeof mydev, "street.example/mgx/%d", HOME);
    json_array_foreach(certs, idx, c)
    {
        const char *dev = json_string_value(json_object_get(c, "production_device"));
        const char *status = json_string_value(json_object_get(c, "status"));
        const char *iss = json_string_value(json_object_get(c, "issuance_id"));
        const char *txid = json_string_value(json_object_get(json_object_get(c, "ledger"), "txid"));
        int64_t wh = json_integer_value(json_object_get(c, "volume_wh"));
        assert_true(wh > 0);
        assert_non_null(json_object_get(c, "production_start_time"));
        assert_non_null(json_object_get(c, "energy_source"));
        /* the issuance is a minting credit record; the bundle's ledger entry is the home's */
        int found_iss = 0, found_own = 0;
        for (size_t i = 0; i < n; i++) {
            if (all[i].tx.kind != STL_TX_CREDIT)
                continue;
            if (strcmp(all[i].txid, iss) == 0 && all[i].tx.credit.minted_wh > 0)
                found_iss = 1;
            if (strcmp(all[i].txid, txid) == 0 && all[i].tx.credit.participant == HOME)
                found_own = 1;
        }
        assert_true(found_iss && found_own);
        if (strcmp(dev, mydev) == 0) {
            b_own += wh;
            assert_string_equal(iss, txid);
        } else {
            b_bought += wh;
            assert_true(strcmp(status, "transferred") != 0);
        }
        if (strcmp(status, "cancelled") == 0)
            b_cancelled += wh;
    }
    json_t *month = json_object_get(j, "month");
    printf("home %d, 2024-03: %d credit records, minted %lld, bought %lld, retired %lld of "
           "consumption %lld Wh (%lld bp); %zu certificate bundles\n",
           HOME, rows, (long long)own_minted, (long long)own_in, (long long)own_retired,
           (long long)own_cons,
           (long long)json_integer_value(json_object_get(month, "matched_share_bp")),
           json_array_size(certs));
    assert_true(rows > 5 && own_minted > 0 && own_in > 0);
    assert_int_equal(b_own, own_minted);
    assert_int_equal(b_bought, own_in);
    assert_int_equal(b_cancelled, own_retired);
    assert_int_equal(json_integer_value(json_object_get(month, "matched_wh")), own_retired);
    assert_int_equal(json_integer_value(json_object_get(month, "consumption_wh")), own_cons);
    assert_int_equal(json_integer_value(json_object_get(month, "minted_wh")), own_minted);
    assert_int_equal(json_array_size(json_object_get(j, "intervals")), (size_t)blocks);
    json_decref(j);
}

/* A block whose credit record mints 1 Wh more than its home's verified export, signed by the
 * community key, as a coordinator forging credits would write it. */
static void forged_mint_is_a_fault(void **state)
{
    (void)state;
    stl_metered m[2] = {{1, 0, 1000, 0, 2, 0}, {2, 800, 0, 0, 2, 0}};
    mkt_trade t = {1, 2, 500, 100000, 50000, 5000};
    stl_reconciler *r = stl_reconciler_new(1, 2);
    assert_non_null(r);
    assert_int_equal(stl_reconcile(r, &TARIFFS, &t, 1, m, 2, NULL), STL_OK);
    ctl_ledger_txs s;
    memset(&s, 0, sizeof s);
    int64_t iid = FIRST_INTERVAL + N_INTERVALS;
    assert_int_equal(ctl_settle_txs(r, iid, STL_LEDGER_V2, 1, NULL, 0, key->salt_secret, NULL, &s),
                     CTL_LEDGER_OK);
    size_t k = 0;
    stl_tx tx;
    for (k = 0; k < s.n; k++) {
        assert_int_equal(stl_tx_decode(s.enc[k], s.len[k], &tx), STL_OK);
        if (tx.kind == STL_TX_CREDIT && tx.credit.participant == 1)
            break;
    }
    assert_true(k < s.n);
    tx.credit.minted_wh += 1; /* still self-consistent: it keeps the extra Wh */
    tx.credit.kept_wh += 1;
    s.len[k] = stl_tx_encode(&tx, s.enc[k]);
    assert_int_equal(s.len[k], STL_TX_CREDIT_LEN);
    assert_int_equal(stl_tx_leaf(s.salt[k], s.enc[k], s.len[k], s.leaf[k]), STL_OK);
    assert_int_equal(stl_tx_id(s.salt[k], s.enc[k], s.len[k], s.id[k]), STL_OK);

    tst_forge_block(db, key, iid, &TARIFFS, &s, stl_reconciled_totals(r));
    ctl_ledger_txs_free(&s);
    stl_reconciler_free(r);
    expect_verify(0, "minted_wh is 1001, the settlement rules give 1000");
    /* and the certificates refuse the block too */
    ctl_statement_range rg;
    ctl_statement_month(2024, 3, &rg);
    json_t *j = NULL;
    char err[256] = "";
    assert_int_equal(ctl_ledger_certificates(db, 1, &rg, "2024-03", &j, err, sizeof err), -1);
    assert_non_null(strstr(err, "differ from their re-derivation"));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(settle_and_check),
        cmocka_unit_test(forged_mint_is_a_fault),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
