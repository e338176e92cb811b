/*
 * bench_orders: how many signed orders per second the controller can ingest.
 *
 * N orders of realistic size (4-step curves, 1000 participants each with its own key) are made
 * and signed up front and kept as JSON text, as they arrive from the bus. Then, timed:
 *   raw verify      crypto_sign_verify_detached over pre-encoded bytes, one thread: the ceiling
 *   decode only     JSON decode + canonical re-encode, no crypto
 *   single thread   JSON decode + key lookup + re-encode + verify, one after the other
 *   pool, W workers the daemon's design: the calling thread decodes and submits to
 *                   verify_pool.h, W workers re-encode and verify, results in arrival order
 * Every run checks that all N orders verified, in order.
 *
 *   ./build-rel/bench/bench_orders [N] [--rounds=R]     (defaults N = 60000, R = 3, best of R)
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "orders/order_msg.h"
#include "orders/verify_pool.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_PARTICIPANTS 1000

typedef struct {
    uint8_t pk[CTL_PUBKEY_BYTES];
    uint8_t sk[CTL_SECKEY_BYTES];
} keypair;

static keypair *keys;
static char **jsons;
static size_t *json_lens;
static uint8_t (*encs)[CTL_ORDER_ENC_MAX];
static size_t *enc_lens;
static uint8_t (*sigs)[CTL_ORDER_SIG_BYTES];
static size_t n_orders;

/* The participant number from "home-<n>": what a registry lookup would return. */
static const uint8_t *lookup_pk(const char *participant)
{
    unsigned long n = strtoul(participant + 5, NULL, 10);
    return n < N_PARTICIPANTS ? keys[n].pk : NULL;
}

static void make_orders(size_t n)
{
    keys = calloc(N_PARTICIPANTS, sizeof *keys);
    jsons = calloc(n, sizeof *jsons);
    json_lens = calloc(n, sizeof *json_lens);
    encs = calloc(n, sizeof *encs);
    enc_lens = calloc(n, sizeof *enc_lens);
    sigs = calloc(n, sizeof *sigs);
    if (!keys || !jsons || !json_lens || !encs || !enc_lens || !sigs) {
        fputs("bench_orders: out of memory\n", stderr);
        exit(1);
    }
    for (size_t i = 0; i < N_PARTICIPANTS; i++)
        crypto_sign_keypair(keys[i].pk, keys[i].sk);
    const int64_t interval = 1943088;
    for (size_t i = 0; i < n; i++) {
        ctl_order_msg m;
        memset(&m, 0, sizeof m);
        strcpy(m.community, "elm-street");
        size_t p = i % N_PARTICIPANTS;
        snprintf(m.participant, sizeof m.participant, "home-%zu", p);
        m.interval_s = 900;
        m.interval_id = interval + (int64_t)(i / N_PARTICIPANTS % 96);
        m.created_ms = m.interval_id * 900000 - 600000;
        m.expiry_s = m.interval_id * 900;
        randombytes_buf(m.nonce, sizeof m.nonce);
        m.side = p % 3 ? MKT_BUY : MKT_SELL;
        m.n_steps = 4;
        for (uint32_t s = 0; s < 4; s++)
            m.steps[s] = (mkt_step){250 + (int64_t)randombytes_uniform(1500),
                                    60000 + (int64_t)randombytes_uniform(240000)};
        char buf[CTL_ORDER_JSON_MAX];
        if (ctl_order_sign(&m, keys[p].sk) != CTL_R_OK ||
            ctl_order_to_json(&m, buf, sizeof buf, &json_lens[i]) != CTL_R_OK ||
            ctl_order_encode(&m, encs[i], &enc_lens[i]) != CTL_R_OK) {
            fputs("bench_orders: cannot make an order\n", stderr);
            exit(1);
        }
        jsons[i] = strdup(buf);
        memcpy(sigs[i], m.sig, CTL_ORDER_SIG_BYTES);
    }
    n_orders = n;
}

static double run_raw_verify(void)
{
    double t0 = bench_now_s();
    for (size_t i = 0; i < n_orders; i++)
        if (crypto_sign_verify_detached(sigs[i], encs[i], enc_lens[i],
                                        keys[i % N_PARTICIPANTS].pk) != 0)
            exit(2);
    return (double)n_orders / (bench_now_s() - t0);
}

static double run_decode_only(void)
{
    double t0 = bench_now_s();
    for (size_t i = 0; i < n_orders; i++) {
        ctl_order_msg m;
        uint8_t enc[CTL_ORDER_ENC_MAX];
        size_t len;
        if (ctl_order_from_json(jsons[i], json_lens[i], &m, NULL, 0) != CTL_R_OK ||
            ctl_order_encode(&m, enc, &len) != CTL_R_OK || len != enc_lens[i])
            exit(3);
    }
    return (double)n_orders / (bench_now_s() - t0);
}

static double run_single(void)
{
    double t0 = bench_now_s();
    for (size_t i = 0; i < n_orders; i++) {
        ctl_order_msg m;
        if (ctl_order_from_json(jsons[i], json_lens[i], &m, NULL, 0) != CTL_R_OK ||
            ctl_order_verify(&m, lookup_pk(m.participant)) != CTL_R_OK)
            exit(4);
    }
    return (double)n_orders / (bench_now_s() - t0);
}

static void take(ctl_verify_pool *p, size_t *next, int timeout_ms)
{
    ctl_verify_result r;
    while (ctl_verify_pool_next(p, timeout_ms, &r) == CTL_VP_OK) {
        if ((size_t)(uintptr_t)r.tag != *next || r.rc != CTL_R_OK) {
            fprintf(stderr, "bench_orders: result %zu out of order or not verified\n", *next);
            exit(5);
        }
        (*next)++;
        if (timeout_ms < 0)
            return;
    }
}

static double run_pool(unsigned workers)
{
    ctl_verify_pool *p = NULL;
    if (ctl_verify_pool_new(workers, 1024, &p) != CTL_VP_OK)
        exit(6);
    size_t next = 0;
    double t0 = bench_now_s();
    for (size_t i = 0; i < n_orders; i++) {
        ctl_order_msg m;
        if (ctl_order_from_json(jsons[i], json_lens[i], &m, NULL, 0) != CTL_R_OK)
            exit(7);
        while (ctl_verify_pool_submit(p, &m, lookup_pk(m.participant), (void *)(uintptr_t)i) ==
               CTL_VP_E_FULL)
            take(p, &next, -1);
        if (i % 64 == 0)
            take(p, &next, 0);
    }
    while (next < n_orders)
        take(p, &next, -1);
    double rate = (double)n_orders / (bench_now_s() - t0);
    ctl_verify_pool_free(p);
    return rate;
}

/* Best wall-clock rate of the rounds, and the CPU time per order (all threads) of that round:
 * on a shared machine the CPU cost is the steadier figure. */
static double best_cpu_us;
static double best(double (*fn)(void), int rounds)
{
    double b = 0;
    for (int r = 0; r < rounds; r++) {
        double c0 = bench_cpu_s();
        double x = fn();
        double cpu_us = (bench_cpu_s() - c0) * 1e6 / (double)n_orders;
        if (x > b) {
            b = x;
            best_cpu_us = cpu_us;
        }
    }
    return b;
}

static void report(const char *label, double (*fn)(void), int rounds)
{
    double rate = best(fn, rounds);
    printf("  %-42s %10.0f /s  %6.1f us CPU/order\n", label, rate, best_cpu_us);
}

static unsigned pool_workers;
static double run_pool_w(void)
{
    return run_pool(pool_workers);
}

int main(int argc, char **argv)
{
    size_t n = 60000;
    int rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--rounds=", 9) == 0)
            rounds = atoi(argv[i] + 9);
        else
            n = (size_t)strtoull(argv[i], NULL, 10);
    }
    if (n == 0 || rounds < 1 || sodium_init() < 0) {
        fputs("usage: bench_orders [N] [--rounds=R]\n", stderr);
        return 1;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    double t0 = bench_now_s();
    make_orders(n);
    printf("bench_orders: %zu signed 4-step orders from %d participants (JSON about %zu bytes, "
           "encoding %zu bytes), %ld CPUs online, best of %d rounds\n",
           n, N_PARTICIPANTS, json_lens[0], enc_lens[0], cpus, rounds);
    printf("  made and signed in %.2f s\n", bench_now_s() - t0);
    report("raw crypto_sign_verify_detached, 1 thread", run_raw_verify, rounds);
    report("JSON decode + re-encode only, 1 thread", run_decode_only, rounds);
    report("decode + verify, 1 thread", run_single, rounds);
    const unsigned ws[] = {1, 2, 3};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
        pool_workers = ws[i];
        char label[64];
        snprintf(label, sizeof label, "decode + verify pool, %u worker%s", ws[i],
                 ws[i] > 1 ? "s" : "");
        report(label, run_pool_w, rounds);
    }
    for (size_t i = 0; i < n; i++)
        free(jsons[i]);
    free(jsons);
    free(json_lens);
    free(encs);
    free(enc_lens);
    free(sigs);
    sodium_memzero(keys, N_PARTICIPANTS * sizeof *keys);
    free(keys);
    return 0;
}
