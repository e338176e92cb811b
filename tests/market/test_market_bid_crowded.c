/*
 * Pay-as-bid on crowded price levels, checked against the independent model in market_check.c.
 * Books of 600-1024 participants on a band of eight prices take the histogram match (more
 * orders than twice the band's prices) and its pay-as-bid pairing (clear_bid_hist in
 * market/src/clear.c), whose sort key holds only the top bits of each unit's tie key: with
 * hundreds of units per level, many pairs share those bits and must still come out in seat
 * order (full tie key, then id). The property test's small books almost never have such a
 * pair. Also pay-as-clear on the same books, and a network fee so that buyers' fees are paid.
 * The seed is printed; set MGX_SEED to replay a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "market_check.h"
#include "mgx/market.h"
#include "rng.h"

#define MAX_PARTS 1024 /* the most market_check.c models */
#define N_BOOKS 40

/* n participants with scrambled ids, 1-3 steps each, limits within [100, 107] (the whole band
 * when the fee is 0) or a little outside it, energies small enough that many units share a
 * level's pro rata. */
static void crowded_book(uint64_t *s, mkt_order *o, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        o[i].participant = (tst_splitmix64(s) & ~UINT64_C(0xFFFF)) | i; /* unique */
        o[i].side = tst_below(s, 2) ? MKT_SELL : MKT_BUY;
        o[i].n_steps = 1 + (uint32_t)tst_below(s, 3);
        for (uint32_t k = 0; k < o[i].n_steps; k++) {
            o[i].steps[k].energy_wh = 1 + (int64_t)tst_below(s, 50);
            o[i].steps[k].price_uc_per_kwh = 98 + (int64_t)tst_below(s, 12);
        }
    }
}

static void crowded_levels(void **state)
{
    (void)state;
    const char *env = getenv("MGX_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : UINT64_C(0x5eed0b1d);
    printf("test_market_bid_crowded: MGX_SEED=%llu\n", (unsigned long long)seed);
    mkt_order *o = malloc(MAX_PARTS * sizeof *o);
    mkt_clearing *c = mkt_clearing_new(MAX_PARTS);
    assert_non_null(o);
    assert_non_null(c);
    uint64_t rng = seed;
    char msg[512];
    for (int b = 0; b < N_BOOKS; b++) {
        size_t n = 600 + (size_t)tst_below(&rng, MAX_PARTS - 600 + 1);
        crowded_book(&rng, o, n);
        /* band [100, 107] (3 bits of price: 12 bits of tie key in the sort key) or, with a fee,
         * [100, 106] */
        mkt_params p = {MKT_PAY_AS_BID, 100, 107, b % 3 == 0 ? 1 : 0, (int64_t)tst_below(&rng, 1000)};
        for (int m = 0; m < 2; m++) {
            p.mechanism = m ? MKT_PAY_AS_BID : MKT_PAY_AS_CLEAR;
            int rc = mkt_clear(c, &p, o, n, NULL);
            if (rc != MKT_OK)
                fail_msg("book %d: %s", b, mkt_strerror(rc));
            if (mc_check(&p, o, n, c, msg, sizeof msg))
                fail_msg("book %d (%zu orders, %s): %s", b, n, mkt_mechanism_name(p.mechanism),
                         msg);
            size_t nt;
            mkt_clearing_trades(c, &nt);
            assert_true(nt > 0);
        }
    }
    mkt_clearing_free(c);
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crowded_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
