/*
 * Energy credits as Solana transactions (mgx/solana_credits.h), without a chain (label unit):
 *  - the worked example of docs/credits.md gives exactly the operations worked out by hand;
 *  - on 200,000 random intervals (good, flagged, missing, estimated and held positions, random
 *    tiers, arbitrary deliveries, homes with and without wallets) the operations sum, per home
 *    with a wallet, to its record's minted, out, in and retired, whatever is left out is
 *    counted as off chain, and every group applied alone to empty accounts never takes a
 *    balance below zero (so groups land in any order);
 *  - built transactions verify, are co-signed by the mint authority, carry the credits memo,
 *    fit 1,232 bytes, and are re-signed with a new blockhash only with every signer's key
 *    (sol_tx_resign_keys); one key can be both settlement key and mint authority.
 * The same transactions execute in LiteSVM in test_solana_daemon_credits.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgx/credits.h"
#include "mgx/solana_credits.h"
#include "mgx/solana_tx.h"

#define MAXH 8
#define MAXT 12

static void keypair(uint8_t seed_byte, uint8_t sk[64], sol_pubkey *pk)
{
    uint8_t seed[32];
    memset(seed, seed_byte, sizeof seed);
    crypto_sign_seed_keypair(pk->b, sk, seed);
}

static void community(sol_community *c, sol_home *homes, size_t n, uint8_t settle_sk[64],
                      uint8_t mint_sk[64], sol_pubkey *mint_pk)
{
    memset(c, 0, sizeof *c);
    keypair(1, settle_sk, &c->authority);
    keypair(2, mint_sk, mint_pk);
    c->token_program = SOL_TOKEN_PROGRAM;
    memset(c->energy_mint.b, 7, 32);
    memset(c->payment_mint.b, 8, 32);
    for (size_t i = 0; i < n; i++) {
        sol_pubkey owner;
        memset(owner.b, (int)(20 + i), 32);
        assert_int_equal(sol_home_init(&homes[i], c, &owner), SOL_OK);
    }
}

/* docs/credits.md: min tier 1; home 1 good tier 1 exports 700 imports 50; home 2 good tier 0
 * exports 400; home 3 good tier 2 imports 900; home 4 held exports 300. Trades 1 -> 3 600 Wh,
 * 2 -> 3 200 Wh. Home 1 mints 700 and sells 600 of them to 3, who retires all 600; home 2's
 * 200 Wh carry no credits; home 1 keeps 100 unsold, retires 50 of them against its import. */
static void worked_example(void **state)
{
    (void)state;
    stl_position p[4];
    memset(p, 0, sizeof p);
    p[0] = (stl_position){.participant = 1, .status = STL_POS_GOOD, .tier = 1, .import_wh = 50,
                          .export_wh = 700};
    p[1] = (stl_position){.participant = 2, .status = STL_POS_GOOD, .tier = 0, .export_wh = 400};
    p[2] = (stl_position){.participant = 3, .status = STL_POS_GOOD, .tier = 2, .import_wh = 900};
    p[3] = (stl_position){.participant = 4, .status = STL_POS_HELD, .tier = 1, .export_wh = 300};
    stl_settled_trade t[2];
    memset(t, 0, sizeof t);
    t[0].seller = 1, t[0].buyer = 3, t[0].delivered_wh = 600, t[0].contracted_wh = 600;
    t[1].seller = 2, t[1].buyer = 3, t[1].delivered_wh = 200, t[1].contracted_wh = 200;
    stl_credit c[4];
    stl_credit_move mv[2];
    assert_int_equal(stl_credits_compute(p, 4, t, 2, 1, c, mv, NULL), STL_OK);
    long home[4] = {0, 1, 2, 3};
    sol_credit_op ops[16];
    int64_t off = -1;
    long n = sol_credit_ops(c, 4, t, mv, 2, home, ops, 16, &off);
    assert_int_equal(n, 5);
    assert_int_equal(off, 0);
    const sol_credit_op want[5] = {
        {SOL_CREDIT_MINT, 0, 0, 600, 0},     {SOL_CREDIT_TRANSFER, 0, 2, 600, 0},
        {SOL_CREDIT_BURN, 2, 0, 600, 0},     {SOL_CREDIT_MINT, 0, 0, 100, 1},
        {SOL_CREDIT_BURN, 0, 0, 50, 1}};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ops[i].kind, want[i].kind);
        assert_int_equal(ops[i].home, want[i].home);
        assert_int_equal(ops[i].to, want[i].to);
        assert_int_equal(ops[i].amount, want[i].amount);
        assert_int_equal(ops[i].group, want[i].group);
    }
    /* home 3 without a wallet: the sale's 600 stay in the ledger, home 1's own 100 go on chain */
    home[2] = -1;
    n = sol_credit_ops(c, 4, t, mv, 2, home, ops, 16, &off);
    assert_int_equal(n, 2);
    assert_int_equal(off, 600);
    assert_int_equal(ops[0].amount, 100);
}

static uint32_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static void random_intervals(void **state)
{
    (void)state;
    uint64_t seed = 20261205;
    const char *env = getenv("MGX_INTERVALS");
    long n_iv = env ? atol(env) : 200000;
    long checked_groups = 0, with_off_chain = 0;
    for (long iv = 0; iv < n_iv; iv++) {
        size_t np = 1 + rnd(&seed) % MAXH, nt = rnd(&seed) % MAXT;
        stl_position p[MAXH];
        stl_settled_trade t[MAXT];
        memset(p, 0, sizeof p);
        memset(t, 0, sizeof t);
        for (size_t i = 0; i < np; i++) {
            p[i].participant = 10 + i;
            p[i].status = (stl_pos_status)(rnd(&seed) % 3 ? STL_POS_GOOD : rnd(&seed) % 5);
            p[i].tier = (uint8_t)(rnd(&seed) % 3);
            p[i].import_wh = rnd(&seed) % 2 ? rnd(&seed) % 2000 : 0;
            p[i].export_wh = rnd(&seed) % 2 ? rnd(&seed) % 2000 : 0;
        }
        size_t k = 0;
        for (size_t j = 0; j < nt && np > 1; j++) {
            size_t s = rnd(&seed) % np, b = rnd(&seed) % np;
            if (s == b)
                continue;
            t[k].seller = p[s].participant;
            t[k].buyer = p[b].participant;
            t[k].delivered_wh = rnd(&seed) % 1500;
            t[k].contracted_wh = t[k].delivered_wh;
            k++;
        }
        nt = k;
        uint8_t min_tier = (uint8_t)(rnd(&seed) % 3);
        stl_credit c[MAXH];
        stl_credit_move mv[MAXT];
        assert_int_equal(stl_credits_compute(p, np, t, nt, min_tier, c, mv, NULL), STL_OK);
        long home[MAXH];
        int all = rnd(&seed) % 4 != 0;
        for (size_t i = 0; i < np; i++)
            home[i] = all || rnd(&seed) % 3 ? (long)i : -1;
        sol_credit_op ops[4 * MAXT + 2 * MAXH];
        int64_t off = 0;
        long n = sol_credit_ops(c, np, t, mv, nt, home, ops, 4 * nt + 2 * np, &off);
        assert_true(n >= 0);
        /* per home: sums of the operations */
        int64_t minted[MAXH] = {0}, out[MAXH] = {0}, in[MAXH] = {0}, burned[MAXH] = {0};
        int64_t total_minted = 0, chain_minted = 0;
        for (long i = 0; i < n; i++) {
            const sol_credit_op *o = &ops[i];
            assert_true(o->amount > 0 && o->home < np);
            assert_true(i == 0 || ops[i - 1].group <= o->group);
            if (o->kind == SOL_CREDIT_MINT) {
                minted[o->home] += (int64_t)o->amount;
                chain_minted += (int64_t)o->amount;
            } else if (o->kind == SOL_CREDIT_TRANSFER) {
                assert_true(o->to < np && o->to != o->home);
                out[o->home] += (int64_t)o->amount;
                in[o->to] += (int64_t)o->amount;
            } else {
                assert_int_equal(o->kind, SOL_CREDIT_BURN);
                burned[o->home] += (int64_t)o->amount;
            }
        }
        for (size_t i = 0; i < np; i++)
            total_minted += c[i].minted_wh;
        assert_int_equal(chain_minted + off, total_minted);
        with_off_chain += off > 0;
        if (all) {
            assert_int_equal(off, 0);
            for (size_t i = 0; i < np; i++) {
                assert_int_equal(minted[i], c[i].minted_wh);
                assert_int_equal(out[i], c[i].out_wh);
                assert_int_equal(in[i], c[i].in_wh);
                assert_int_equal(burned[i], c[i].retired_wh);
            }
        }
        /* every group alone, on empty accounts, never overdraws */
        for (long i = 0; i < n;) {
            int64_t bal[MAXH] = {0};
            long j = i;
            for (; j < n && ops[j].group == ops[i].group; j++) {
                const sol_credit_op *o = &ops[j];
                if (o->kind == SOL_CREDIT_MINT) {
                    bal[o->home] += (int64_t)o->amount;
                    continue;
                }
                bal[o->home] -= (int64_t)o->amount;
                assert_true(bal[o->home] >= 0);
                if (o->kind == SOL_CREDIT_TRANSFER)
                    bal[o->to] += (int64_t)o->amount;
            }
            assert_true(j - i <= SOL_CREDIT_MAX_GROUP);
            checked_groups++;
            i = j;
        }
    }
    fprintf(stderr, "solana credits: %ld random intervals, %ld groups each self-sufficient, %ld "
                    "intervals with credits of homes without a wallet\n",
            n_iv, checked_groups, with_off_chain);
}

static void build_and_resign(void **state)
{
    (void)state;
    sol_community c;
    sol_home homes[MAXH];
    uint8_t settle_sk[64], mint_sk[64];
    sol_pubkey mint_pk;
    community(&c, homes, MAXH, settle_sk, mint_sk, &mint_pk);
    /* 40 trades' groups: several transactions */
    sol_credit_op ops[120];
    size_t n = 0;
    for (uint64_t g = 0; g < 40; g++) {
        uint32_t s = (uint32_t)(g % MAXH), b = (uint32_t)((g + 3) % MAXH);
        ops[n++] = (sol_credit_op){SOL_CREDIT_MINT, s, 0, 100 + g, g};
        ops[n++] = (sol_credit_op){SOL_CREDIT_TRANSFER, s, b, 100 + g, g};
        ops[n++] = (sol_credit_op){SOL_CREDIT_BURN, b, 0, 50, g};
    }
    sol_interval iv = {1908045, {0}};
    memset(iv.ledger_root, 0xab, 32);
    uint8_t hash[32], hash2[32];
    memset(hash, 3, 32);
    memset(hash2, 4, 32);
    sol_credit_tx *tx = calloc(40, sizeof *tx);
    assert_non_null(tx);
    size_t n_tx = 0;
    assert_int_equal(sol_credits_build(&c, settle_sk, mint_sk, homes, MAXH, &iv, ops, n, hash, tx,
                                       40, &n_tx),
                     SOL_OK);
    assert_true(n_tx > 1 && n_tx < 40);
    for (size_t i = 0; i < n_tx; i++) {
        sol_tx_view v;
        assert_true(tx[i].len <= SOL_TX_MAX_BYTES);
        assert_int_equal(sol_tx_parse(tx[i].bytes, tx[i].len, &v), SOL_OK);
        assert_int_equal(v.n_signatures, 2);
        assert_memory_equal(tx[i].bytes + v.keys_off, c.authority.b, 32); /* fee payer */
        assert_memory_equal(tx[i].bytes + v.keys_off + 32, mint_pk.b, 32);
        assert_int_equal(sol_tx_verify(tx[i].bytes, tx[i].len), SOL_OK);
        assert_memory_equal(tx[i].signature, tx[i].bytes + v.signatures_off, 64);
        char memo[160];
        int ml = sol_credits_memo(&iv, (uint32_t)(i + 1), (uint32_t)n_tx, memo, sizeof memo);
        assert_true(ml > 0);
        assert_non_null(memmem(tx[i].bytes, tx[i].len, memo, (size_t)ml));
        assert_int_equal(tx[i].part, i + 1);
    }
    /* a rebuild needs both keys; with one, nothing changes */
    uint8_t copy[SOL_TX_MAX_BYTES];
    memcpy(copy, tx[0].bytes, tx[0].len);
    const uint8_t *only_settle[1] = {settle_sk}, *both[2] = {mint_sk, settle_sk};
    assert_int_equal(sol_tx_resign_keys(copy, tx[0].len, hash2, only_settle, 1), SOL_E_SIGNATURE);
    assert_memory_equal(copy, tx[0].bytes, tx[0].len);
    assert_int_equal(sol_tx_resign(copy, tx[0].len, hash2, settle_sk), SOL_E_SIGNATURE);
    assert_int_equal(sol_tx_resign_keys(copy, tx[0].len, hash2, both, 2), SOL_OK);
    assert_int_equal(sol_tx_verify(copy, tx[0].len), SOL_OK);
    assert_memory_not_equal(copy + 1, tx[0].bytes + 1, 64); /* a new transaction id */
    sol_tx_view v;
    assert_int_equal(sol_tx_parse(copy, tx[0].len, &v), SOL_OK);
    assert_memory_equal(copy + v.blockhash_off, hash2, 32);
    /* the instructions are the same bytes: only the signatures and the blockhash changed */
    assert_memory_equal(copy + v.message_off, tx[0].bytes + v.message_off,
                        v.blockhash_off - v.message_off);
    size_t after = v.blockhash_off + 32;
    assert_memory_equal(copy + after, tx[0].bytes + after, tx[0].len - after);

    /* one key as both: one signature, and sol_tx_resign works */
    assert_int_equal(sol_credits_build(&c, settle_sk, settle_sk, homes, MAXH, &iv, ops, 3, hash,
                                       tx, 40, &n_tx),
                     SOL_OK);
    assert_int_equal(n_tx, 1);
    assert_int_equal(tx[0].bytes[0], 1);
    assert_int_equal(sol_tx_resign(tx[0].bytes, tx[0].len, hash2, settle_sk), SOL_OK);
    assert_int_equal(sol_tx_verify(tx[0].bytes, tx[0].len), SOL_OK);

    /* refused: a zero amount, a transfer to itself, a wrong settlement key, too little room */
    sol_credit_op bad = {SOL_CREDIT_MINT, 0, 0, 0, 0};
    assert_int_equal(sol_credits_build(&c, settle_sk, mint_sk, homes, MAXH, &iv, &bad, 1, hash,
                                       tx, 40, &n_tx),
                     SOL_E_INVAL);
    bad = (sol_credit_op){SOL_CREDIT_TRANSFER, 1, 1, 5, 0};
    assert_int_equal(sol_credits_build(&c, settle_sk, mint_sk, homes, MAXH, &iv, &bad, 1, hash,
                                       tx, 40, &n_tx),
                     SOL_E_INVAL);
    assert_int_equal(sol_credits_build(&c, mint_sk, mint_sk, homes, MAXH, &iv, ops, 3, hash, tx,
                                       40, &n_tx),
                     SOL_E_SIGNATURE);
    assert_int_equal(sol_credits_build(&c, settle_sk, mint_sk, homes, MAXH, &iv, ops, n, hash, tx,
                                       1, &n_tx),
                     SOL_E_SPACE);
    free(tx);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(worked_example),
                                       cmocka_unit_test(random_intervals),
                                       cmocka_unit_test(build_and_resign)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
