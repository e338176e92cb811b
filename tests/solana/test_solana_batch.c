/*
 * Structure tests of legacy messages and interval batches (mgx/solana_tx.h,
 * mgx/solana_batch.h): key ordering and header counts worked out by hand, exact sizes,
 * signatures that verify and fail when a byte changes, all-or-none instruction adds, re-signing
 * with a new blockhash, and the packer's guarantees (every transfer once, groups never split,
 * every transaction <= 1,232 bytes, as many trades per transaction as the size allows,
 * deterministic output). Execution in a real runtime is test_solana_litesvm's job.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mgx/solana.h"
#include "mgx/solana_batch.h"
#include "mgx/solana_ix.h"
#include "mgx/solana_pda.h"
#include "mgx/solana_tx.h"

/* A key pair from a one-byte seed label, so failures are reproducible. */
static void keypair(uint8_t label, sol_pubkey *pk, uint8_t sk[64])
{
    uint8_t seed[32];
    memset(seed, label, sizeof seed);
    crypto_sign_seed_keypair(pk->b, sk, seed);
}

static sol_pubkey fake_key(uint32_t n)
{
    sol_pubkey k;
    memset(k.b, 0xa5, sizeof k.b);
    memcpy(k.b, &n, sizeof n);
    return k;
}

static const uint8_t BLOCKHASH[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static void message_layout(void **state)
{
    (void)state;
    sol_pubkey auth, src = fake_key(1), mint = fake_key(2), dst = fake_key(3);
    uint8_t sk[64];
    keypair(7, &auth, sk);
    sol_ix ix[2];
    assert_int_equal(sol_ix_memo(&ix[0], "hi", 2), SOL_OK);
    sol_ix_transfer_checked(&ix[1], &src, &mint, &dst, &auth, 500, 0);
    sol_msg m;
    sol_msg_init(&m, &auth);
    assert_int_equal(sol_msg_add(&m, ix, 2), SOL_OK);
    /* First use: auth, memo, token, src, mint, dst. Wire order by class: auth (writable
     * signer); src, dst (writable); memo, token, mint (read-only). Header 1, 0, 3.
     * Size: 1 + 64 (signature) + 3 + 1 + 6*32 + 32 + 1 (#ix)
     *       + memo 1+1+1+2 + transfer 1+1+4+1+10 = 316. */
    assert_int_equal(sol_msg_tx_size(&m), 316);
    assert_int_equal(sol_msg_signers(&m), 1);
    uint8_t tx[SOL_TX_MAX_BYTES], sig[64];
    size_t len;
    const uint8_t *sks[1] = {sk};
    assert_int_equal(sol_msg_sign(&m, BLOCKHASH, sks, 1, tx, sizeof tx, &len, sig), SOL_OK);
    assert_int_equal(len, 316);
    assert_memory_equal(sig, tx + 1, 64);
    sol_tx_view v;
    assert_int_equal(sol_tx_parse(tx, len, &v), SOL_OK);
    assert_int_equal(v.n_signatures, 1);
    assert_int_equal(v.num_required_signatures, 1);
    assert_int_equal(v.num_readonly_signed, 0);
    assert_int_equal(v.num_readonly_unsigned, 3);
    assert_int_equal(v.n_keys, 6);
    assert_int_equal(v.n_instructions, 2);
    const sol_pubkey *want[6] = {&auth, &src, &dst, &SOL_MEMO_PROGRAM, &SOL_TOKEN_PROGRAM, &mint};
    for (size_t i = 0; i < 6; i++)
        assert_memory_equal(tx + v.keys_off + 32 * i, want[i]->b, 32);
    assert_memory_equal(tx + v.blockhash_off, BLOCKHASH, 32);
    /* instructions: memo = prog 3, 0 accounts, 2 bytes "hi";
     * transfer = prog 4, accounts [src 1, mint 5, dst 2, auth 0], 10 bytes */
    static const uint8_t ixs[] = {3, 0, 2, 'h', 'i', 4, 4, 1, 5, 2, 0, 10, 12, 0xf4, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(len - (v.blockhash_off + 33), sizeof ixs);
    assert_memory_equal(tx + v.blockhash_off + 33, ixs, sizeof ixs);
    assert_int_equal(tx[v.blockhash_off + 32], 2); /* #instructions */
    assert_int_equal(sol_tx_verify(tx, len), SOL_OK);
}

static size_t build_simple(uint8_t *tx, uint8_t sk[64], sol_pubkey *auth)
{
    sol_pubkey src = fake_key(1), mint = fake_key(2), dst = fake_key(3);
    keypair(7, auth, sk);
    sol_ix ix;
    sol_ix_transfer_checked(&ix, &src, &mint, &dst, auth, 42, 6);
    sol_msg m;
    sol_msg_init(&m, auth);
    assert_int_equal(sol_msg_add(&m, &ix, 1), SOL_OK);
    size_t len;
    const uint8_t *sks[1] = {sk};
    assert_int_equal(sol_msg_sign(&m, BLOCKHASH, sks, 1, tx, SOL_TX_MAX_BYTES, &len, NULL), SOL_OK);
    return len;
}

static void tamper_and_parse_errors(void **state)
{
    (void)state;
    uint8_t tx[SOL_TX_MAX_BYTES + 8], sk[64];
    sol_pubkey auth;
    size_t len = build_simple(tx, sk, &auth);
    /* every single flipped bit of the message or signature breaks it */
    for (size_t i = 1; i < len; i++) {
        tx[i] ^= 0x10;
        int rc = sol_tx_verify(tx, len);
        assert_true(rc == SOL_E_SIGNATURE || rc == SOL_E_PARSE);
        tx[i] ^= 0x10;
    }
    assert_int_equal(sol_tx_verify(tx, len), SOL_OK);
    sol_tx_view v;
    assert_int_equal(sol_tx_parse(tx, len - 1, &v), SOL_E_PARSE); /* truncated */
    tx[len] = 0;
    assert_int_equal(sol_tx_parse(tx, len + 1, &v), SOL_E_PARSE); /* trailing byte */
    tx[65] |= 0x80; /* a version prefix */
    assert_int_equal(sol_tx_parse(tx, len, &v), SOL_E_PARSE);
    tx[65] &= 0x7f;
    tx[0] = 2; /* two signatures announced, one required */
    assert_int_equal(sol_tx_parse(tx, len, &v), SOL_E_PARSE);
    tx[0] = 1;
    assert_int_equal(sol_tx_parse(tx, SOL_TX_MAX_BYTES + 1, &v), SOL_E_PARSE);
    assert_int_equal(sol_tx_parse(tx, len, &v), SOL_OK);
    tx[v.blockhash_off + 33] = 9; /* program index beyond the 5 keys */
    assert_int_equal(sol_tx_parse(tx, len, &v), SOL_E_PARSE);
}

static void resign_changes_only_blockhash_and_signature(void **state)
{
    (void)state;
    uint8_t tx[SOL_TX_MAX_BYTES], old[SOL_TX_MAX_BYTES], sk[64];
    sol_pubkey auth;
    size_t len = build_simple(tx, sk, &auth);
    memcpy(old, tx, len);
    uint8_t fresh[32];
    memset(fresh, 0xee, sizeof fresh);
    assert_int_equal(sol_tx_resign(tx, len, fresh, sk), SOL_OK);
    assert_int_equal(sol_tx_verify(tx, len), SOL_OK);
    sol_tx_view v;
    assert_int_equal(sol_tx_parse(tx, len, &v), SOL_OK);
    assert_memory_equal(tx + v.blockhash_off, fresh, 32);
    assert_memory_not_equal(tx + 1, old + 1, 64);
    assert_memory_equal(tx + 65, old + 65, v.blockhash_off - 65);
    assert_memory_equal(tx + v.blockhash_off + 32, old + v.blockhash_off + 32,
                        len - v.blockhash_off - 32);
    /* back to the old blockhash: Ed25519 is deterministic, so the old bytes come back */
    assert_int_equal(sol_tx_resign(tx, len, BLOCKHASH, sk), SOL_OK);
    assert_memory_equal(tx, old, len);
    uint8_t other_sk[64];
    sol_pubkey other;
    keypair(8, &other, other_sk);
    assert_int_equal(sol_tx_resign(tx, len, fresh, other_sk), SOL_E_SIGNATURE);
    assert_memory_equal(tx, old, len);
}

static void two_signers(void **state)
{
    (void)state;
    /* A home (read-only signer as owner) approving, fee paid by the settlement key. */
    sol_pubkey payer, owner, acct = fake_key(9);
    uint8_t payer_sk[64], owner_sk[64];
    keypair(1, &payer, payer_sk);
    keypair(2, &owner, owner_sk);
    sol_ix ix;
    sol_ix_approve(&ix, &acct, &payer, &owner, 1000);
    sol_msg m;
    sol_msg_init(&m, &payer);
    assert_int_equal(sol_msg_add(&m, &ix, 1), SOL_OK);
    assert_int_equal(sol_msg_signers(&m), 2);
    uint8_t tx[SOL_TX_MAX_BYTES];
    size_t len;
    const uint8_t *only_payer[1] = {payer_sk}, *both[2] = {owner_sk, payer_sk};
    assert_int_equal(sol_msg_sign(&m, BLOCKHASH, only_payer, 1, tx, sizeof tx, &len, NULL),
                     SOL_E_SIGNATURE);
    assert_int_equal(sol_msg_sign(&m, BLOCKHASH, both, 2, tx, sizeof tx, &len, NULL), SOL_OK);
    sol_tx_view v;
    assert_int_equal(sol_tx_parse(tx, len, &v), SOL_OK);
    /* payer (w, s), owner (r, s), acct (w), token program (r) */
    assert_int_equal(v.num_required_signatures, 2);
    assert_int_equal(v.num_readonly_signed, 1);
    assert_int_equal(v.num_readonly_unsigned, 1);
    assert_memory_equal(tx + v.keys_off, payer.b, 32);
    assert_memory_equal(tx + v.keys_off + 32, owner.b, 32);
    assert_int_equal(sol_tx_verify(tx, len), SOL_OK);
    assert_int_equal(sol_msg_sign(&m, BLOCKHASH, both, 2, tx, len - 1, &len, NULL), SOL_E_SPACE);
}

static void add_is_all_or_none(void **state)
{
    (void)state;
    sol_pubkey auth, mint = fake_key(0);
    uint8_t sk[64];
    keypair(3, &auth, sk);
    sol_msg m;
    sol_msg_init(&m, &auth);
    uint32_t n = 1;
    sol_ix ix[2];
    for (;;) {
        sol_pubkey a = fake_key(n), b = fake_key(n + 1);
        sol_ix_transfer_checked(&ix[0], &a, &mint, &b, &auth, n, 0);
        size_t before = sol_msg_tx_size(&m);
        int rc = sol_msg_add(&m, ix, 1);
        if (rc != SOL_OK) {
            assert_int_equal(rc, SOL_E_TOO_BIG);
            assert_int_equal(sol_msg_tx_size(&m), before);
            assert_true(before + 2 * 32 + 17 > SOL_TX_MAX_BYTES);
            break;
        }
        n += 2;
    }
    /* a pair whose first fits alone (keys already present) but second does not: none added */
    sol_pubkey a = fake_key(1), b = fake_key(2), c = fake_key(n + 10), d = fake_key(n + 11);
    sol_ix_transfer_checked(&ix[0], &a, &mint, &b, &auth, 1, 0);
    sol_ix_transfer_checked(&ix[1], &c, &mint, &d, &auth, 1, 0);
    size_t before = sol_msg_tx_size(&m);
    assert_int_equal(sol_msg_add(&m, ix, 2), SOL_E_TOO_BIG);
    assert_int_equal(sol_msg_tx_size(&m), before);
    assert_int_equal(sol_msg_add(&m, ix, 1), SOL_OK); /* only reuses keys: 17 bytes */
    assert_int_equal(sol_msg_tx_size(&m), before + 17);
    uint8_t tx[SOL_TX_MAX_BYTES];
    size_t len;
    const uint8_t *sks[1] = {sk};
    assert_int_equal(sol_msg_sign(&m, BLOCKHASH, sks, 1, tx, sizeof tx, &len, NULL), SOL_OK);
    assert_int_equal(len, sol_msg_tx_size(&m));
    assert_int_equal(sol_tx_verify(tx, len), SOL_OK);
}

/* A community of n homes with fake owners (the ATAs are real derivations). */
typedef struct {
    sol_community c;
    uint8_t sk[64];
    sol_home *homes;
    size_t n;
} fixture;

static void fixture_init(fixture *f, size_t n)
{
    keypair(42, &f->c.authority, f->sk);
    f->c.token_program = SOL_TOKEN_PROGRAM;
    f->c.energy_mint = fake_key(1000001);
    f->c.energy_decimals = 0;
    f->c.payment_mint = fake_key(1000002);
    f->c.payment_decimals = 6;
    f->homes = calloc(n, sizeof *f->homes);
    assert_non_null(f->homes);
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        sol_pubkey owner = fake_key((uint32_t)i);
        assert_int_equal(sol_home_init(&f->homes[i], &f->c, &owner), SOL_OK);
    }
}

static void trade(sol_transfer *t, uint32_t seller, uint32_t buyer, uint64_t wh, uint64_t units,
                  uint64_t group)
{
    t[0] = (sol_transfer){seller, buyer, SOL_ASSET_ENERGY, wh, group};
    t[1] = (sol_transfer){buyer, seller, SOL_ASSET_PAYMENT, units, group};
}

static void one_trade_known_answer(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 2);
    sol_transfer t[2];
    trade(t, 0, 1, 500, 125000, 0);
    sol_interval iv = {7, {0}};
    memset(iv.ledger_root, 0xab, 32);
    sol_batch *b = sol_batch_new();
    assert_int_equal(sol_batch_build(b, &f.c, f.homes, 2, &iv, t, 2, BLOCKHASH, f.sk, NULL), SOL_OK);
    assert_int_equal(sol_batch_count(b), 1);
    const sol_batch_tx *tx = sol_batch_at(b, 0);
    /* keys: authority, memo, token, seller energy, energy mint, buyer energy, buyer payment,
     * payment mint, seller payment = 9; memo "mgx1 interval=7 part=1/1 root=" + 64 hex = 94.
     * 1 + 64 + 3 + 1 + 9*32 + 32 + 1 + (1+1+1+94) + 2*(1+1+4+1+10) = 521 */
    assert_int_equal(tx->len, 521);
    assert_int_equal(sol_batch_bytes(b), 521);
    assert_int_equal(tx->part, 1);
    assert_int_equal(tx->n_transfers, 2);
    assert_memory_equal(tx->signature, tx->bytes + 1, 64);
    assert_int_equal(sol_tx_verify(tx->bytes, tx->len), SOL_OK);
    char memo[256];
    assert_int_equal(sol_batch_memo(&iv, 1, 1, memo, sizeof memo), 94);
    assert_non_null(memmem(tx->bytes, tx->len, memo, 94));
    assert_non_null(strstr(memo, "root=abababab"));
    sol_tx_view v;
    assert_int_equal(sol_tx_parse(tx->bytes, tx->len, &v), SOL_OK);
    assert_int_equal(v.num_readonly_unsigned, 4); /* memo, token, two mints */
    assert_int_equal(v.n_instructions, 3);
    sol_batch_free(b);
    free(f.homes);
}

static size_t build_count(fixture *f, const sol_transfer *t, size_t n, sol_batch *b)
{
    sol_interval iv = {7, {0}};
    size_t bad = 0;
    int rc = sol_batch_build(b, &f->c, f->homes, f->n, &iv, t, n, BLOCKHASH, f->sk, &bad);
    assert_int_equal(rc, SOL_OK);
    assert_int_equal(bad, SIZE_MAX);
    return sol_batch_count(b);
}

static void trades_per_transaction(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 200);
    sol_batch *b = sol_batch_new();
    sol_transfer t[200];
    /* 100 trades between distinct homes. Five in one transaction: 5 fixed keys + 20 ATAs =
     * 25 keys; 1+64+3+1+25*32+32+1 = 902, planning memo (part=100/100) 1+1+1+98 = 101,
     * 10 transfers * 17 = 170: 1,173 bytes. A sixth adds 4 keys and 2 transfers (162) ->
     * 1,335 > 1,232. So exactly 20 transactions. */
    for (uint32_t i = 0; i < 100; i++)
        trade(&t[2 * i], 2 * i, 2 * i + 1, 100 + i, 1000 + i, i);
    assert_int_equal(build_count(&f, t, 200, b), 20);
    for (size_t k = 0; k < 20; k++)
        assert_int_equal(sol_batch_at(b, k)->n_transfers, 10);
    /* One seller, 30 buyers: after the first trade each adds only the buyer's two accounts
     * (64) and two transfers (34) = 98 bytes. First trade: 9 keys, 390 + memo (part=30/30)
     * 99 + 34 = 523; then 7 more fit (1,209), the 9th would be 1,307. So 8, 8, 8, 6. */
    for (uint32_t i = 0; i < 30; i++)
        trade(&t[2 * i], 0, 1 + i, 10, 10, i);
    assert_int_equal(build_count(&f, t, 60, b), 4);
    static const size_t per[4] = {16, 16, 16, 12};
    for (size_t k = 0; k < 4; k++)
        assert_int_equal(sol_batch_at(b, k)->n_transfers, per[k]);
    sol_batch_free(b);
    free(f.homes);
}

static uint32_t rng(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void random_batches_keep_every_promise(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 64);
    sol_batch *b = sol_batch_new(), *b2 = sol_batch_new();
    uint32_t s = 12345;
    for (int round = 0; round < 30; round++) {
        size_t n_trades = 1 + rng(&s) % 300, n = 0;
        sol_transfer *t = calloc(2 * n_trades + 4, sizeof *t);
        assert_non_null(t);
        uint32_t spread = 2 + rng(&s) % 62; /* few homes share accounts, many do not */
        for (size_t g = 0; g < n_trades; g++) {
            uint32_t seller = rng(&s) % spread, buyer = rng(&s) % spread;
            if (buyer == seller)
                buyer = (seller + 1) % spread;
            trade(&t[n], seller, buyer, rng(&s) % 5 == 0 ? 0 : 1 + rng(&s) % 1000,
                  rng(&s) % 7 == 0 ? 0 : rng(&s), g);
            n += 2;
        }
        sol_interval iv = {(uint64_t)round, {0}};
        randombytes_buf(iv.ledger_root, 32);
        assert_int_equal(sol_batch_build(b, &f.c, f.homes, f.n, &iv, t, n, BLOCKHASH, f.sk, NULL),
                         SOL_OK);
        assert_int_equal(sol_batch_build(b2, &f.c, f.homes, f.n, &iv, t, n, BLOCKHASH, f.sk, NULL),
                         SOL_OK);
        uint8_t *seen = calloc(n, 1);
        size_t *tx_of_group = calloc(n_trades, sizeof *tx_of_group);
        assert_non_null(seen);
        assert_non_null(tx_of_group);
        size_t total = 0, n_tx = sol_batch_count(b);
        assert_int_equal(sol_batch_count(b2), n_tx);
        for (size_t k = 0; k < n_tx; k++) {
            const sol_batch_tx *x = sol_batch_at(b, k), *y = sol_batch_at(b2, k);
            assert_true(x->len <= SOL_TX_MAX_BYTES);
            assert_int_equal(x->len, y->len);
            assert_memory_equal(x->bytes, y->bytes, x->len); /* deterministic */
            assert_int_equal(sol_tx_verify(x->bytes, x->len), SOL_OK);
            assert_int_equal(x->part, k + 1);
            char memo[256];
            int ml = sol_batch_memo(&iv, x->part, (uint32_t)n_tx, memo, sizeof memo);
            assert_non_null(memmem(x->bytes, x->len, memo, (size_t)ml));
            for (size_t j = 0; j < x->n_transfers; j++) {
                uint32_t i = x->transfers[j];
                assert_true(i < n);
                assert_int_equal(seen[i], 0);
                seen[i] = 1;
                assert_true(t[i].amount > 0);
                size_t g = (size_t)t[i].group;
                if (tx_of_group[g] == 0)
                    tx_of_group[g] = k + 1;
                assert_int_equal(tx_of_group[g], k + 1); /* groups never split */
            }
            total += x->n_transfers;
        }
        size_t nonzero = 0;
        for (size_t i = 0; i < n; i++)
            nonzero += t[i].amount > 0;
        assert_int_equal(total, nonzero); /* every non-zero transfer exactly once */
        free(seen);
        free(tx_of_group);
        free(t);
    }
    sol_batch_free(b);
    sol_batch_free(b2);
    free(f.homes);
}

static void rejections(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 40);
    sol_batch *b = sol_batch_new();
    sol_interval iv = {1, {0}};
    sol_transfer t[40];
    size_t bad;
    trade(t, 0, 1, 5, 5, 0);
    trade(t + 2, 2, 2, 5, 5, 1);
    assert_int_equal(sol_batch_build(b, &f.c, f.homes, f.n, &iv, t, 4, BLOCKHASH, f.sk, &bad),
                     SOL_E_SELF);
    assert_int_equal(bad, 2);
    assert_int_equal(sol_batch_count(b), 0);
    trade(t + 2, 2, 40, 5, 5, 1);
    assert_int_equal(sol_batch_build(b, &f.c, f.homes, f.n, &iv, t, 4, BLOCKHASH, f.sk, &bad),
                     SOL_E_INVAL);
    assert_int_equal(bad, 2);
    trade(t + 2, 2, 3, 5, 5, 1);
    t[3].group = 0; /* group 1 then 0: not adjacent */
    assert_int_equal(sol_batch_build(b, &f.c, f.homes, f.n, &iv, t, 4, BLOCKHASH, f.sk, &bad),
                     SOL_E_GROUP);
    assert_int_equal(bad, 3);
    t[3].group = 1;
    uint8_t other[64];
    sol_pubkey other_pk;
    keypair(9, &other_pk, other);
    assert_int_equal(sol_batch_build(b, &f.c, f.homes, f.n, &iv, t, 4, BLOCKHASH, other, &bad),
                     SOL_E_SIGNATURE);
    /* 8 trades between distinct homes in one group: 32 accounts cannot fit one transaction */
    for (uint32_t i = 0; i < 8; i++)
        trade(&t[2 * i], 2 * i, 2 * i + 1, 1, 1, 0);
    assert_int_equal(sol_batch_build(b, &f.c, f.homes, f.n, &iv, t, 16, BLOCKHASH, f.sk, &bad),
                     SOL_E_TOO_BIG);
    assert_int_equal(bad, 0);
    /* more than SOL_BATCH_MAX_GROUP transfers in a group */
    for (uint32_t i = 0; i < 9; i++)
        trade(&t[2 * i], 0, 1, 1, 1, 0);
    assert_int_equal(sol_batch_build(b, &f.c, f.homes, f.n, &iv, t, 18, BLOCKHASH, f.sk, &bad),
                     SOL_E_TOO_BIG);
    assert_int_equal(bad, 16);
    /* nothing to move: no transactions, not an error */
    trade(t, 0, 1, 0, 0, 0);
    assert_int_equal(sol_batch_build(b, &f.c, f.homes, f.n, &iv, t, 2, BLOCKHASH, f.sk, &bad),
                     SOL_OK);
    assert_int_equal(sol_batch_count(b), 0);
    assert_int_equal(sol_batch_build(b, &f.c, f.homes, f.n, &iv, NULL, 0, BLOCKHASH, f.sk, &bad),
                     SOL_OK);
    assert_null(sol_batch_at(b, 0));
    sol_batch_free(b);
    free(f.homes);
}

static void currency_units(void **state)
{
    (void)state;
    uint64_t u;
    int64_t rest;
    /* USDC-like, 6 decimals: 1 uc = 1 unit */
    assert_int_equal(sol_uc_to_units(1234567, 6, &u, &rest), SOL_OK);
    assert_int_equal(u, 1234567);
    assert_int_equal(rest, 0);
    /* 9 decimals: 1 uc = 1000 units */
    assert_int_equal(sol_uc_to_units(1234567, 9, &u, &rest), SOL_OK);
    assert_int_equal(u, 1234567000);
    /* 2 decimals (cents): 1,234,567 uc = 123 cents + 4,567 uc rounded off */
    assert_int_equal(sol_uc_to_units(1234567, 2, &u, &rest), SOL_OK);
    assert_int_equal(u, 123);
    assert_int_equal(rest, 4567);
    /* 19 decimals: 1e13 units per uc; 2e6 uc = 2e19 > u64 max 1.8e19 */
    assert_int_equal(sol_uc_to_units(1000000, 19, &u, NULL), SOL_OK);
    assert_true(u == UINT64_C(10000000000000000000));
    assert_int_equal(sol_uc_to_units(2000000, 19, &u, NULL), SOL_E_OVERFLOW);
    assert_int_equal(sol_uc_to_units(-1, 6, &u, NULL), SOL_E_INVAL);
    assert_int_equal(sol_uc_to_units(1, 20, &u, NULL), SOL_E_INVAL);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(message_layout),
        cmocka_unit_test(tamper_and_parse_errors),
        cmocka_unit_test(resign_changes_only_blockhash_and_signature),
        cmocka_unit_test(two_signers),
        cmocka_unit_test(add_is_all_or_none),
        cmocka_unit_test(one_trade_known_answer),
        cmocka_unit_test(trades_per_transaction),
        cmocka_unit_test(random_batches_keep_every_promise),
        cmocka_unit_test(rejections),
        cmocka_unit_test(currency_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
