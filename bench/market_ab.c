/*
 * A/B of two versions of the clearing engine in one process: the current mkt_clear against an
 * older commit's, whose library market_ab.sh builds and renames (every symbol prefixed old_).
 * On bench_market's 1M book (seed 20240601, scrambled ids) it checks that both give the same
 * bytes (summary, trades, participants) and then alternates repetitions of the two, so that
 * both see the same machine load; it prints thread-CPU and wall medians and the ratio. On a
 * shared machine the ratio is the figure to trust, not the absolute times.
 *
 * A second argument clears a smaller book of that many orders (the first that many of the same
 * generator; the 1M book's time per order is compared with the 1k book's for issue 18's growth
 * criterion), each repetition then clearing it 1M / N times. A third, "hashed", gives the book
 * hashed ids instead of the scramble (bench_market's make_id).
 *
 * Not built by CMake: run bench/market_ab.sh [OLD_COMMIT] [REPS] [BUILD_DIR] [ORDERS].
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"
#include "mgx/market.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

mkt_clearing *old_mkt_clearing_new(size_t max_orders);
int old_mkt_clear(mkt_clearing *c, const mkt_params *params, const mkt_order *orders,
                  size_t n_orders, mkt_error_at *at);
const mkt_summary *old_mkt_clearing_summary(const mkt_clearing *c);
const mkt_trade *old_mkt_clearing_trades(const mkt_clearing *c, size_t *n_trades);
const mkt_participant_result *old_mkt_clearing_participants(const mkt_clearing *c,
                                                            size_t *n_participants);

#define N_ORDERS 1000000u

static uint64_t rng_next(uint64_t *s)
{
    return bench_splitmix(s);
}

static int64_t rng_range(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* bench_market's make_id, scrambled or hashed */
static uint64_t make_id(size_t i, int hashed)
{
    uint64_t z = (uint64_t)i + 1;
    if (!hashed)
        return z * 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* bench_market's make_book: its 1M book is seed + 3 */
static void make_book(mkt_order *o, size_t n, uint64_t seed, int hashed)
{
    for (size_t i = 0; i < n; i++) {
        o[i].participant = make_id(i, hashed);
        o[i].side = rng_next(&seed) & 1 ? MKT_SELL : MKT_BUY;
        o[i].n_steps = (uint32_t)rng_range(&seed, 1, 3);
        for (uint32_t s = 0; s < o[i].n_steps; s++) {
            o[i].steps[s].energy_wh = rng_range(&seed, 100, 5000);
            o[i].steps[s].price_uc_per_kwh = rng_range(&seed, 80000, 300000);
        }
    }
}

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int same_result(const mkt_clearing *a, const mkt_clearing *b)
{
    size_t na, nb;
    const mkt_trade *ta = old_mkt_clearing_trades(a, &na), *tb = mkt_clearing_trades(b, &nb);
    if (na != nb || memcmp(ta, tb, na * sizeof *ta))
        return 0;
    const mkt_participant_result *pa = old_mkt_clearing_participants(a, &na);
    const mkt_participant_result *pb = mkt_clearing_participants(b, &nb);
    return na == nb && !memcmp(pa, pb, na * sizeof *pa) &&
           !memcmp(old_mkt_clearing_summary(a), mkt_clearing_summary(b), sizeof(mkt_summary));
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 15;
    size_t n = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : N_ORDERS;
    int hashed = argc > 3 && strcmp(argv[3], "hashed") == 0;
    if (reps < 1)
        reps = 1;
    if (n < 1 || n > N_ORDERS)
        n = N_ORDERS;
    int inner = (int)(N_ORDERS / n);
    mkt_order *o = malloc(N_ORDERS * sizeof *o);
    mkt_clearing *a = old_mkt_clearing_new(N_ORDERS), *b = mkt_clearing_new(N_ORDERS);
    double *t = malloc(4 * (size_t)reps * sizeof *t);
    if (!o || !a || !b || !t) {
        fprintf(stderr, "market_ab: out of memory\n");
        return 1;
    }
    make_book(o, N_ORDERS, 20240601u + 3, hashed);
    int differ = 0;
    for (int m = 0; m < 2; m++) {
        mkt_params p = {m ? MKT_PAY_AS_BID : MKT_PAY_AS_CLEAR, 80000, 300000, 0, 0};
        /* warm-up (allocation) and the byte comparison */
        if (old_mkt_clear(a, &p, o, n, NULL) || mkt_clear(b, &p, o, n, NULL)) {
            fprintf(stderr, "market_ab: clearing failed\n");
            return 1;
        }
        int same = same_result(a, b);
        differ |= !same;
        double *cpu_old = t, *cpu_new = t + reps, *wall_old = t + 2 * reps,
               *wall_new = t + 3 * reps;
        for (int r = 0; r < reps; r++) {
            double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
            for (int k = 0; k < inner; k++)
                old_mkt_clear(a, &p, o, n, NULL);
            cpu_old[r] = (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) / inner;
            wall_old[r] = (clock_s(CLOCK_MONOTONIC) - w0) / inner;
            c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
            w0 = clock_s(CLOCK_MONOTONIC);
            for (int k = 0; k < inner; k++)
                mkt_clear(b, &p, o, n, NULL);
            cpu_new[r] = (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) / inner;
            wall_new[r] = (clock_s(CLOCK_MONOTONIC) - w0) / inner;
        }
        double co = median(cpu_old, reps), cn = median(cpu_new, reps);
        double wo = median(wall_old, reps), wn = median(wall_new, reps);
        printf("%-12s %zu orders, %d reps: same bytes %s; cpu ms old %.4g new %.4g (%.2fx); "
               "wall ms old %.4g new %.4g (%.2fx)\n",
               mkt_mechanism_name(p.mechanism), n, reps, same ? "yes" : "NO", co * 1e3,
               cn * 1e3, cn / co, wo * 1e3, wn * 1e3, wn / wo);
    }
    free(t);
    free(o);
    return differ;
}
