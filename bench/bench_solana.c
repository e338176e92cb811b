/*
 * bench_solana: how long one core takes to turn a 10,000-trade interval into signed Solana
 * transactions (packing, message compilation, Ed25519 signing), against the raw libsodium
 * signing rate measured in the same process. Two books: a pay-as-clear-like one where each
 * seller trades with ten buyers in a row (accounts shared within a transaction), and a
 * worst case of 10,000 random pairs. The homes' ATA derivation, done once per home and
 * stored, is timed separately.
 *
 *   ./build-rel/bench/bench_solana [TRADES] [HOMES]
 */
#define _POSIX_C_SOURCE 200809L

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "mgx/solana.h"
#include "mgx/solana_batch.h"

#define RUNS 7

static uint32_t rng(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void bench_book(const char *name, const sol_community *c, const sol_home *homes,
                       size_t n_homes, const sol_transfer *t, size_t n, const uint8_t *sk,
                       double sign_rate)
{
    sol_batch *b = sol_batch_new();
    sol_interval iv = {123456, {0}};
    memset(iv.ledger_root, 0x5a, 32);
    uint8_t bh[32];
    memset(bh, 7, sizeof bh);
    double times[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = bench_now_s();
        int rc = sol_batch_build(b, c, homes, n_homes, &iv, t, n, bh, sk, NULL);
        times[r] = bench_now_s() - t0;
        if (rc != SOL_OK) {
            fprintf(stderr, "build failed: %s\n", sol_strerror(rc));
            exit(1);
        }
    }
    qsort(times, RUNS, sizeof times[0], bench_cmp_double);
    size_t n_tx = sol_batch_count(b), bytes = sol_batch_bytes(b);
    printf("%-24s %7zu trades  %5zu tx  %8zu bytes (%4.0f B/tx, %4.2f trades/tx)\n", name, n / 2,
           n_tx, bytes, (double)bytes / (double)n_tx, (double)n / 2.0 / (double)n_tx);
    printf("%-24s build+sign median %.1f ms (min %.1f, max %.1f); signing alone would be %.1f ms\n",
           "", times[RUNS / 2] * 1e3, times[0] * 1e3, times[RUNS - 1] * 1e3,
           (double)n_tx / sign_rate * 1e3);
    sol_batch_free(b);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    size_t trades = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 10000;
    size_t n_homes = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 2000;
    if (trades == 0 || n_homes < 20 || n_homes % 2)
        return fprintf(stderr, "usage: bench_solana [TRADES] [HOMES (even, >= 20)]\n"), 2;

    /* Raw Ed25519 signing of transaction-sized messages: the baseline. */
    uint8_t pk[32], sk[64], msg[1100], sig[64];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof msg);
    int n_sign = 20000;
    double t0 = bench_now_s();
    for (int i = 0; i < n_sign; i++) {
        msg[0] = (uint8_t)i;
        crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
    }
    double sign_rate = n_sign / (bench_now_s() - t0);
    printf("raw Ed25519 signing (1,100-byte messages): %.0f signatures/s\n", sign_rate);

    sol_community c;
    memcpy(c.authority.b, pk, 32);
    c.token_program = SOL_TOKEN_PROGRAM;
    randombytes_buf(c.energy_mint.b, 32);
    randombytes_buf(c.payment_mint.b, 32);
    c.energy_decimals = 0;
    c.payment_decimals = 6;
    sol_home *homes = calloc(n_homes, sizeof *homes);
    sol_transfer *t = calloc(2 * trades, sizeof *t);
    if (!homes || !t)
        return 1;
    sol_pubkey *owners = calloc(n_homes, sizeof *owners);
    if (!owners)
        return 1;
    for (size_t i = 0; i < n_homes; i++)
        crypto_sign_keypair(owners[i].b, sk); /* wallet keys are on the curve */
    t0 = bench_now_s();
    for (size_t i = 0; i < n_homes; i++)
        if (sol_home_init(&homes[i], &c, &owners[i]) != SOL_OK)
            return 1;
    double ata_s = bench_now_s() - t0;
    free(owners);
    printf("ATA derivation: %zu homes x 2 mints in %.1f ms (%.1f us per account; once per home)\n",
           n_homes, ata_s * 1e3, ata_s / (double)(2 * n_homes) * 1e6);
    /* The settlement key signs: restore it. */
    uint8_t settle_sk[64];
    crypto_sign_keypair(pk, settle_sk);
    memcpy(c.authority.b, pk, 32);

    size_t half = n_homes / 2;
    /* Book 1: seller s trades with ten consecutive buyers, trades in seller order. */
    for (size_t g = 0; g < trades; g++) {
        uint32_t seller = (uint32_t)((g / 10) % half), buyer = (uint32_t)(half + (g * 7 + g / 10) % half);
        uint64_t wh = 50 + g % 900;
        t[2 * g] = (sol_transfer){seller, buyer, SOL_ASSET_ENERGY, wh, g};
        t[2 * g + 1] = (sol_transfer){buyer, seller, SOL_ASSET_PAYMENT, wh * 250, g};
    }
    bench_book("ten buyers per seller", &c, homes, n_homes, t, 2 * trades, settle_sk, sign_rate);
    /* Book 2: random pairs. */
    uint32_t s = 42;
    for (size_t g = 0; g < trades; g++) {
        uint32_t seller = rng(&s) % (uint32_t)half, buyer = (uint32_t)half + rng(&s) % (uint32_t)half;
        uint64_t wh = 1 + rng(&s) % 2000;
        t[2 * g] = (sol_transfer){seller, buyer, SOL_ASSET_ENERGY, wh, g};
        t[2 * g + 1] = (sol_transfer){buyer, seller, SOL_ASSET_PAYMENT, wh * 250, g};
    }
    bench_book("random pairs", &c, homes, n_homes, t, 2 * trades, settle_sk, sign_rate);
    free(homes);
    free(t);
    return 0;
}
