/*
 * Property tests of the clearing engine: many small random books, each cleared with both
 * mechanisms and checked against the independent model in market_check.c (maximal volume by
 * brute force, pro-rata shares, pairing, money, equilibrium, limit prices), then cleared again
 * shuffled and with a step split in two, which must give byte-identical results.
 *
 * The 100,000 books are small (0..12 participants, 1..4 steps) and prices come from a small
 * set, so equal prices, partial levels and remainder ties are common; 300 wide books (up to 64
 * participants, 16 steps, prices anywhere up to 1e12) add long sorts and big products. The seed
 * is printed; set MGX_SEED to replay a failure and MGX_BOOKS to change the count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "market_check.h"
#include "mgx/market.h"
#include "rng.h"

#define SMALL_PARTS 12 /* the 100,000 small books */
#define MAX_PARTS 64   /* the few wide ones */

static int64_t pick(uint64_t *s, const int64_t *set, size_t n)
{
    return set[tst_below(s, n)];
}

static const int64_t PRICES[] = {0, 40, 50, 80, 100, 120, 150, 200, 250, 300, 1000};
static const int64_t ENERGIES[] = {1, 2, 3, 4, 5, 7, 10, 13, 100, 999, 1000, 1500};

static mkt_params random_params(uint64_t *s)
{
    mkt_params p;
    p.mechanism = MKT_PAY_AS_CLEAR;
    p.interval_id = (int64_t)tst_splitmix64(s); /* ties: any interval, negative ones included */
    p.feed_in_uc_per_kwh = pick(s, (const int64_t[]){0, 50, 100}, 3);
    p.retail_uc_per_kwh = p.feed_in_uc_per_kwh + pick(s, (const int64_t[]){0, 100, 200, 1000}, 4);
    switch (tst_below(s, 6)) {
    case 0: /* a fee that makes local trade impossible or nearly so */
        p.network_fee_uc_per_kwh = p.retail_uc_per_kwh - p.feed_in_uc_per_kwh + (int64_t)tst_below(s, 3);
        break;
    case 1:
    case 2:
        p.network_fee_uc_per_kwh = pick(s, (const int64_t[]){7, 20, 50}, 3);
        break;
    default:
        p.network_fee_uc_per_kwh = 0;
    }
    return p;
}

/* Wide books: up to 64 participants with up to 16 steps, prices anywhere in [0, 1e12] (or a
 * coarse grid of it, for ties), energies up to 1e6 Wh so that no total overflows. They drive
 * the radix sorts through every digit and the pro rata through large products. */
static mkt_params wide_params(uint64_t *s)
{
    mkt_params p;
    p.mechanism = MKT_PAY_AS_CLEAR;
    p.interval_id = (int64_t)tst_splitmix64(s); /* ties: any interval, negative ones included */
    p.feed_in_uc_per_kwh = (int64_t)tst_below(s, UINT64_C(100000000000));
    p.retail_uc_per_kwh =
        p.feed_in_uc_per_kwh + (int64_t)tst_below(s, (uint64_t)(MKT_PRICE_MAX_UC_PER_KWH -
                                                              p.feed_in_uc_per_kwh + 1));
    p.network_fee_uc_per_kwh = tst_below(s, 2) ? 0 : (int64_t)tst_below(s, UINT64_C(1000000000));
    return p;
}

static size_t wide_book(uint64_t *s, mkt_order *o)
{
    size_t n = (size_t)tst_below(s, MAX_PARTS + 1);
    int coarse = tst_below(s, 2) == 0;
    for (size_t i = 0; i < n; i++) {
        memset(&o[i], 0, sizeof o[i]);
        o[i].participant = tst_splitmix64(s) | 1; /* distinct with overwhelming probability */
        for (size_t j = 0; j < i; j++)
            if (o[j].participant == o[i].participant)
                o[i].participant ^= 2;
        o[i].side = tst_below(s, 2) ? MKT_SELL : MKT_BUY;
        o[i].n_steps = (uint32_t)(1 + tst_below(s, MKT_MAX_STEPS));
        for (uint32_t j = 0; j < o[i].n_steps; j++) {
            o[i].steps[j].energy_wh = 1 + (int64_t)tst_below(s, 1000000);
            o[i].steps[j].price_uc_per_kwh =
                coarse ? (int64_t)tst_below(s, 11) * INT64_C(100000000000)
                       : (int64_t)tst_below(s, (uint64_t)MKT_PRICE_MAX_UC_PER_KWH + 1);
        }
    }
    return n;
}

static size_t random_book(uint64_t *s, mkt_order *o)
{
    size_t n = (size_t)tst_below(s, SMALL_PARTS + 1);
    uint64_t base = tst_below(s, 4) == 0 ? UINT64_MAX - 40 : 0; /* sometimes ids near the top */
    uint64_t used = 0;
    /* Equal energies everywhere make exact exhaustion of both sides, hence a non-degenerate
     * equilibrium interval, common. */
    int uniform = tst_below(s, 4) == 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t k;
        do
            k = tst_below(s, 40);
        while (used >> k & 1);
        used |= UINT64_C(1) << k;
        memset(&o[i], 0, sizeof o[i]);
        o[i].participant = base + k;
        o[i].side = tst_below(s, 2) ? MKT_SELL : MKT_BUY;
        o[i].n_steps = (uint32_t)(1 + tst_below(s, 4));
        for (uint32_t j = 0; j < o[i].n_steps; j++) {
            o[i].steps[j].energy_wh =
                uniform ? 1000 : pick(s, ENERGIES, sizeof ENERGIES / sizeof *ENERGIES);
            o[i].steps[j].price_uc_per_kwh = pick(s, PRICES, sizeof PRICES / sizeof *PRICES);
        }
    }
    return n;
}

/* A copy of one result, to compare bytes across reclearings. */
typedef struct {
    mkt_summary sum;
    size_t n_trades, n_parts;
    mkt_trade trades[MAX_PARTS * (MKT_MAX_STEPS + 1) * 2];
    mkt_participant_result parts[MAX_PARTS];
} snapshot;

static void take(const mkt_clearing *c, snapshot *s)
{
    memset(s, 0, sizeof *s);
    const mkt_trade *t = mkt_clearing_trades(c, &s->n_trades);
    const mkt_participant_result *p = mkt_clearing_participants(c, &s->n_parts);
    assert_true(s->n_trades <= sizeof s->trades / sizeof *s->trades);
    assert_true(s->n_parts <= MAX_PARTS);
    memcpy(&s->sum, mkt_clearing_summary(c), sizeof s->sum);
    if (s->n_trades)
        memcpy(s->trades, t, s->n_trades * sizeof *t);
    if (s->n_parts)
        memcpy(s->parts, p, s->n_parts * sizeof *p);
}

static void dump(const char *what, uint64_t seed, uint64_t book, const mkt_params *p,
                 const mkt_order *o, size_t n)
{
    fprintf(stderr, "%s: seed %llu book %llu, %s F=%lld R=%lld fee=%lld\n", what,
            (unsigned long long)seed, (unsigned long long)book, mkt_mechanism_name(p->mechanism),
            (long long)p->feed_in_uc_per_kwh, (long long)p->retail_uc_per_kwh,
            (long long)p->network_fee_uc_per_kwh);
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "  %llu %s", (unsigned long long)o[i].participant,
                o[i].side == MKT_SELL ? "sell" : "buy");
        for (uint32_t j = 0; j < o[i].n_steps; j++)
            fprintf(stderr, " %lld@%lld", (long long)o[i].steps[j].energy_wh,
                    (long long)o[i].steps[j].price_uc_per_kwh);
        fprintf(stderr, "\n");
    }
}

static void shuffle(uint64_t *s, mkt_order *o, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)tst_below(s, i);
        mkt_order t = o[i - 1];
        o[i - 1] = o[j];
        o[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = o[i].n_steps; k > 1; k--) {
            uint32_t j = (uint32_t)tst_below(s, k);
            mkt_step t = o[i].steps[k - 1];
            o[i].steps[k - 1] = o[i].steps[j];
            o[i].steps[j] = t;
        }
}

/* Splits one step of energy >= 2 into two steps of the same price; 0 if none can be split. */
static int split(uint64_t *s, mkt_order *o, size_t n)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)tst_below(s, n);
    for (size_t tries = 0; tries < n; tries++, i = (i + 1) % n) {
        for (uint32_t k = 0; k < o[i].n_steps; k++) {
            mkt_step *st = &o[i].steps[k];
            if (st->energy_wh < 2 || o[i].n_steps == MKT_MAX_STEPS)
                continue;
            int64_t part = 1 + (int64_t)tst_below(s, (uint64_t)(st->energy_wh - 1));
            o[i].steps[o[i].n_steps++] = (mkt_step){st->energy_wh - part, st->price_uc_per_kwh};
            st->energy_wh = part;
            return 1;
        }
    }
    return 0;
}

static int same(const snapshot *a, const snapshot *b)
{
    return memcmp(&a->sum, &b->sum, sizeof a->sum) == 0 && a->n_trades == b->n_trades &&
           a->n_parts == b->n_parts &&
           memcmp(a->trades, b->trades, a->n_trades * sizeof *a->trades) == 0 &&
           memcmp(a->parts, b->parts, a->n_parts * sizeof *a->parts) == 0;
}

typedef struct {
    uint64_t books, traded, partial_price, no_band, flat_band, split;
} stats;

/* Steps around 2^32 Wh, the most the unit sort's 32-bit payload carries (clear.c,
 * energy_in_payload), so that books on both sides of that bound meet the oracle; the tariffs are
 * scaled down so that no amount or total overflows. */
static void huge_energies(uint64_t *s, mkt_params *p, mkt_order *o, size_t n)
{
    p->feed_in_uc_per_kwh /= 2000;
    p->retail_uc_per_kwh /= 2000;
    p->network_fee_uc_per_kwh /= 2000;
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < o[i].n_steps; j++)
            o[i].steps[j].energy_wh = INT64_C(4294967295) - 600 + (int64_t)tst_below(s, 1000);
}

static void one_book(mkt_clearing *c, uint64_t *rng, uint64_t seed, uint64_t book, int wide,
                     stats *st, snapshot *base, snapshot *again)
{
    mkt_order o[MAX_PARTS], o2[MAX_PARTS];
    mkt_params p = wide ? wide_params(rng) : random_params(rng);
    size_t n = wide ? wide_book(rng, o) : random_book(rng, o);
    if (wide && tst_below(rng, 3) == 0)
        huge_energies(rng, &p, o, n);
    char msg[512];
    st->no_band += p.retail_uc_per_kwh - p.network_fee_uc_per_kwh < p.feed_in_uc_per_kwh;
    st->flat_band += p.retail_uc_per_kwh == p.feed_in_uc_per_kwh;
    for (int m = 0; m < 2; m++) {
        p.mechanism = (mkt_mechanism)m;
        int rc = mkt_clear(c, &p, o, n, NULL);
        if (rc == MKT_OK && mc_check(&p, o, n, c, msg, sizeof msg))
            rc = -100;
        if (rc != MKT_OK) {
            dump(rc == -100 ? msg : mkt_strerror(rc), seed, book, &p, o, n);
            fail_msg("book %llu", (unsigned long long)book);
        }
        take(c, base);
        st->traded += base->sum.matched_wh > 0;
        st->partial_price += base->sum.has_price &&
                             base->sum.price_low_uc_per_kwh < base->sum.price_high_uc_per_kwh;

        memcpy(o2, o, sizeof o);
        shuffle(rng, o2, n);
        assert_int_equal(mkt_clear(c, &p, o2, n, NULL), MKT_OK);
        take(c, again);
        if (!same(base, again)) {
            dump("shuffled book gives a different result", seed, book, &p, o, n);
            fail_msg("book %llu", (unsigned long long)book);
        }
        memcpy(o2, o, sizeof o);
        if (split(rng, o2, n)) {
            st->split++;
            assert_int_equal(mkt_clear(c, &p, o2, n, NULL), MKT_OK);
            take(c, again);
            if (!same(base, again)) {
                dump("split step gives a different result", seed, book, &p, o, n);
                fail_msg("book %llu", (unsigned long long)book);
            }
        }
    }
    st->books++;
}

/* Clears n_books books drawn from seed (wide or small, for up to max_parts participants)
 * through one_book, counting into st. */
static void run_books(uint64_t seed, uint64_t n_books, size_t max_parts, int wide, stats *st)
{
    mkt_clearing *c = mkt_clearing_new(max_parts);
    snapshot *base = malloc(sizeof *base), *again = malloc(sizeof *again);
    assert_non_null(c);
    assert_non_null(base);
    assert_non_null(again);
    uint64_t rng = seed;
    for (uint64_t b = 0; b < n_books; b++)
        one_book(c, &rng, seed, b, wide, st, base, again);
    free(base);
    free(again);
    mkt_clearing_free(c);
}

static void random_books(void **state)
{
    (void)state;
    uint64_t seed = UINT64_C(20261121);
    uint64_t n_books = 100000;
    const char *env = getenv("MGX_SEED");
    if (env && *env)
        seed = strtoull(env, NULL, 0);
    env = getenv("MGX_BOOKS");
    if (env && *env)
        n_books = strtoull(env, NULL, 0);
    printf("test_market_props: seed %llu (MGX_SEED), %llu books (MGX_BOOKS)\n",
           (unsigned long long)seed, (unsigned long long)n_books);
    stats st = {0};
    run_books(seed, n_books, SMALL_PARTS, 0, &st);
    printf("books %llu; clearings with local trade %llu, with a non-degenerate price interval "
           "%llu; books with no band %llu, with F == R %llu; split checks %llu\n",
           (unsigned long long)st.books, (unsigned long long)st.traded,
           (unsigned long long)st.partial_price, (unsigned long long)st.no_band,
           (unsigned long long)st.flat_band, (unsigned long long)st.split);
    /* The generator must reach the interesting cases, or the checks above prove little. */
    if (n_books >= 10000) {
        assert_true(st.traded > n_books / 4);
        assert_true(st.partial_price > n_books / 50);
        assert_true(st.no_band > n_books / 50);
        assert_true(st.flat_band > n_books / 50);
    }
}

static void wide_books(void **state)
{
    (void)state;
    uint64_t seed = UINT64_C(777), n_books = 300;
    const char *env = getenv("MGX_SEED");
    if (env && *env)
        seed = strtoull(env, NULL, 0) ^ 777;
    printf("test_market_props: wide books, seed %llu\n", (unsigned long long)seed);
    stats st = {0};
    run_books(seed, n_books, MAX_PARTS, 1, &st);
    printf("wide books %llu; clearings with local trade %llu\n", (unsigned long long)st.books,
           (unsigned long long)st.traded);
    assert_true(st.traded > n_books / 4);
}

/* Maximality cross-check on one hand-made book, so that the brute force itself is tested:
 * sells 10@100, 10@200; buys 5@300, 10@150. supply(150) = 10, demand(150) = 15 -> 10;
 * supply(200) = 20, demand(200) = 5 -> 5; supply(300) = 20, demand(300) = 5. Max 10. */
static void brute_force_sanity(void **state)
{
    (void)state;
    mkt_order o[4] = {{0}};
    o[0] = (mkt_order){1, MKT_SELL, 2, {{10, 100}, {10, 200}}};
    o[1] = (mkt_order){2, MKT_BUY, 2, {{5, 300}, {10, 150}}};
    mkt_params p = {MKT_PAY_AS_CLEAR, 0, 1000, 0, 0};
    assert_int_equal(mc_max_matched(&p, o, 2), 10);
    /* Bids are all-in, b' = min(bid, R) - fee. fee 50: b' 250 and 100, supply(100) = 10,
     * demand(100) = 15 -> 10. fee 51: b' 249 and 99, supply(100) = 10, demand(100) = 5 -> 5,
     * supply(200) = 20, demand(200) = 5 -> 5. fee 201: b' 99 < a' = 100: nothing. */
    p.network_fee_uc_per_kwh = 50;
    assert_int_equal(mc_max_matched(&p, o, 2), 10);
    p.network_fee_uc_per_kwh = 51;
    assert_int_equal(mc_max_matched(&p, o, 2), 5);
    p.network_fee_uc_per_kwh = 201;
    assert_int_equal(mc_max_matched(&p, o, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(brute_force_sanity),
        cmocka_unit_test(random_books),
        cmocka_unit_test(wide_books),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
