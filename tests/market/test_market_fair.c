/*
 * Fair ties: 200 identical homes over 10,000 intervals end within 1% of each other, under both
 * mechanisms. In every interval the homes send the same order (all sell the same energy at the
 * same ask, or all buy the same energy at the same bid; the side, energy and prices change from
 * interval to interval), against ten outside counterparties with varied prices and volumes that
 * often cut the homes' price level. So the homes are tied in every interval, and only the tie
 * rule decides who is paired with the dearest bid (pay-as-bid) and who gets the Wh left over by
 * the pro-rata floors (both mechanisms). Seats rotate with the interval (docs/market-rules.md,
 * "Ties"), so over many intervals no home is favoured: each home's total receipts (selling) and
 * total payments (buying) must lie within 1% of the homes' mean, and the rank correlation
 * between a home's id and its receipts must be small. Ordering ties by id, as mgx did before,
 * fails both checks by far.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mgx/market.h"
#include "rng.h"

#define HOMES 200
#define OTHERS 10
#define INTERVALS 10000
#define FIRST_INTERVAL INT64_C(1945000) /* a quarter-hour number of 2025 */

static int64_t below(uint64_t *s, int64_t n)
{
    return (int64_t)tst_below(s, (uint64_t)n);
}

/* One interval's book: the homes (ids 1..200) on one side with one identical step, the others
 * (ids 1001..1010) on the other side at varied prices inside the band; returns the order count
 * and whether the homes sell. */
static size_t book(uint64_t *s, mkt_order *o, int *homes_sell)
{
    *homes_sell = (int)below(s, 2);
    int64_t e = 1 + below(s, 40);                           /* each home's Wh */
    int64_t home_price = *homes_sell ? 90000 + below(s, 60000) : 200000 + below(s, 100001);
    size_t n = 0;
    for (uint64_t h = 1; h <= HOMES; h++)
        o[n++] = (mkt_order){h, *homes_sell ? MKT_SELL : MKT_BUY, 1, {{e, home_price}}};
    /* the others want (or offer) between a third and all of the homes' total */
    int64_t total = HOMES * e, left = total / 3 + below(s, total - total / 3 + 1);
    for (uint64_t j = 0; j < OTHERS; j++) {
        int64_t q = j + 1 < OTHERS ? left / (int64_t)(OTHERS - j) : left;
        q = q > 0 ? q : 1;
        left -= q;
        int64_t price = *homes_sell ? 150000 + below(s, 130001) : 80000 + below(s, 100000);
        o[n++] = (mkt_order){1001 + j, *homes_sell ? MKT_BUY : MKT_SELL, 1, {{q, price}}};
    }
    return n;
}

typedef struct {
    int64_t received_uc[HOMES]; /* local + grid, in the intervals the homes sold */
    int64_t paid_uc[HOMES];     /* local + fee + grid, in the intervals they bought */
} totals;

static void run(mkt_mechanism m, totals *t)
{
    memset(t, 0, sizeof *t);
    mkt_clearing *c = mkt_clearing_new(HOMES + OTHERS);
    assert_non_null(c);
    mkt_order o[HOMES + OTHERS];
    uint64_t rng = 42;
    for (int64_t k = 0; k < INTERVALS; k++) {
        int homes_sell;
        size_t n = book(&rng, o, &homes_sell);
        mkt_params p = {m, 80000, 300000, 20000, FIRST_INTERVAL + k};
        assert_int_equal(mkt_clear(c, &p, o, n, NULL), MKT_OK);
        size_t np;
        const mkt_participant_result *r = mkt_clearing_participants(c, &np);
        for (size_t i = 0; i < np; i++) {
            if (r[i].participant < 1 || r[i].participant > HOMES)
                continue;
            size_t h = r[i].participant - 1;
            t->received_uc[h] += r[i].local_received_uc + r[i].grid_received_uc;
            t->paid_uc[h] += r[i].local_paid_uc + r[i].fee_paid_uc + r[i].grid_paid_uc;
        }
    }
    mkt_clearing_free(c);
}

/* The largest distance from the mean, in parts per million of the mean. */
static int64_t spread_ppm(const int64_t *v, size_t n, double *mean_out)
{
    double mean = 0;
    for (size_t i = 0; i < n; i++)
        mean += (double)v[i];
    mean /= (double)n;
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)v[i] - mean));
    *mean_out = mean;
    return (int64_t)(worst / mean * 1e6);
}

/* Spearman's rank correlation between the home's id and v (no ties expected in v). */
static double rank_correlation(const int64_t *v, size_t n)
{
    double d2 = 0;
    for (size_t i = 0; i < n; i++) {
        size_t rank = 0;
        for (size_t j = 0; j < n; j++)
            rank += v[j] < v[i] || (v[j] == v[i] && j < i);
        double d = (double)rank - (double)i;
        d2 += d * d;
    }
    double nn = (double)n;
    return 1.0 - 6.0 * d2 / (nn * (nn * nn - 1.0));
}

static void check(mkt_mechanism m)
{
    totals *t = malloc(sizeof *t);
    assert_non_null(t);
    run(m, t);
    double mean_r, mean_p;
    int64_t sr = spread_ppm(t->received_uc, HOMES, &mean_r);
    int64_t sp = spread_ppm(t->paid_uc, HOMES, &mean_p);
    double rho_r = rank_correlation(t->received_uc, HOMES);
    double rho_p = rank_correlation(t->paid_uc, HOMES);
    printf("%s: receipts mean %.0f uc, worst home %.3f%% off, rank correlation with id %.3f; "
           "payments mean %.0f uc, worst home %.3f%% off, rank correlation %.3f\n",
           mkt_mechanism_name(m), mean_r, (double)sr / 1e4, rho_r, mean_p, (double)sp / 1e4,
           rho_p);
    assert_true(sr <= 10000); /* within 1% of the mean */
    assert_true(sp <= 10000);
    assert_true(fabs(rho_r) < 0.3);
    assert_true(fabs(rho_p) < 0.3);
    free(t);
}

static void fair_pay_as_clear(void **state)
{
    (void)state;
    check(MKT_PAY_AS_CLEAR);
}

static void fair_pay_as_bid(void **state)
{
    (void)state;
    check(MKT_PAY_AS_BID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fair_pay_as_clear),
        cmocka_unit_test(fair_pay_as_bid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
