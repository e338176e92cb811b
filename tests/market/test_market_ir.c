/*
 * Individual rationality of post-delivery clearing, exactly, in integers: over many random
 * delivered intervals (random tariffs and fees, odd ones so that every floor bites, both
 * mechanisms, random interval numbers, 1..16 homes with random metered nets and random standing
 * preferences, none included), every home ends each interval at least as well off as with the
 * grid alone:
 *   a seller of W Wh:  local_received_uc + grid_received_uc >= floor(W * feed_in / 1000)
 *   a buyer of D Wh:   local_paid_uc + fee_paid_uc + grid_paid_uc <= floor(D * retail / 1000)
 * the grid-only bills computed as the grid computes them, one floor over the whole energy. Also
 * per trade: no buyer pays more than retail per kWh all-in, no seller takes less than feed-in
 * plus the ex_post margin; and the result does not depend on the order of the homes.
 *
 * MGX_IR_INTERVALS sets the count, MGX_SEED the seed (both printed). The default is 1,000,000
 * intervals (about 3 s of CPU in the plain -O2 build); sanitized builds default to 250,000,
 * since 1,000,000 cost 10.6 s of CPU there (41 s on the loaded 2-core development machine):
 *   MGX_IR_INTERVALS=1000000 ./tests/market/test_market_ir
 * runs the full count in any build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mgx/ex_post.h"
#include "mgx/market.h"
#include "rng.h"

#define MAX_HOMES 16

#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_INTERVALS 250000
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEFAULT_INTERVALS 250000
#endif
#endif
#ifndef DEFAULT_INTERVALS
#define DEFAULT_INTERVALS 1000000
#endif

static int64_t below(uint64_t *s, int64_t n)
{
    return (int64_t)tst_below(s, (uint64_t)n);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

/* Tariffs with odd digits (floors of a few Wh lose most of a uc), spreads from none to wide,
 * fees from none to more than the spread. */
static mkt_params random_params(uint64_t *s)
{
    mkt_params p;
    memset(&p, 0, sizeof p);
    p.mechanism = below(s, 2) ? MKT_PAY_AS_BID : MKT_PAY_AS_CLEAR;
    p.interval_id = (int64_t)tst_splitmix64(s);
    p.feed_in_uc_per_kwh = below(s, 8) == 0 ? 0 : below(s, 200000);
    switch (below(s, 4)) {
    case 0: /* a spread around the ex_post margin */
        p.retail_uc_per_kwh = p.feed_in_uc_per_kwh + below(s, 3000);
        break;
    default:
        p.retail_uc_per_kwh = p.feed_in_uc_per_kwh + below(s, 400000);
    }
    int64_t spread = p.retail_uc_per_kwh - p.feed_in_uc_per_kwh;
    switch (below(s, 4)) {
    case 0:
        p.network_fee_uc_per_kwh = 0;
        break;
    case 1:
        p.network_fee_uc_per_kwh = below(s, spread + 2);
        break;
    default:
        p.network_fee_uc_per_kwh = below(s, 40000);
    }
    return p;
}

/* Prices near the band's edges (feed-in, the seller floor, retail - fee) and anywhere up to
 * twice retail. */
static int64_t random_price(uint64_t *s, const mkt_params *p)
{
    int64_t r = p->retail_uc_per_kwh, x;
    switch (below(s, 4)) {
    case 0:
        x = p->feed_in_uc_per_kwh + below(s, 2001) - 500;
        break;
    case 1:
        x = r - p->network_fee_uc_per_kwh + below(s, 2001) - 1000;
        break;
    default:
        x = below(s, 2 * r + 2);
    }
    return x < 0 ? 0 : x;
}

static void random_side(uint64_t *s, const mkt_params *p, mkt_step *st, uint32_t *n)
{
    *n = (uint32_t)below(s, MKT_PREF_MAX_STEPS + 1);
    for (uint32_t i = 0; i < *n; i++)
        st[i] = (mkt_step){1 + below(s, below(s, 2) ? 20 : 3000), random_price(s, p)};
}

/* Small nets (a few Wh, where floors matter most) and ordinary ones; some homes idle. */
static size_t random_homes(uint64_t *s, const mkt_params *p, mkt_ex_post_home *h,
                           mkt_preference *pref)
{
    size_t n = 1 + (size_t)below(s, MAX_HOMES);
    uint64_t id = tst_splitmix64(s) % 1000;
    for (size_t i = 0; i < n; i++) {
        id += 1 + (uint64_t)below(s, 3);
        h[i].participant = id;
        int64_t mag = below(s, 3) == 0 ? below(s, 10) : below(s, 4000);
        h[i].net_export_wh = below(s, 2) ? mag : -mag;
        if (below(s, 4) == 0) {
            h[i].pref = NULL;
            continue;
        }
        random_side(s, p, pref[i].sell, &pref[i].n_sell_steps);
        random_side(s, p, pref[i].buy, &pref[i].n_buy_steps);
        h[i].pref = &pref[i];
    }
    return n;
}

typedef struct {
    uint64_t intervals, traded, trades, multi_trade_sellers;
    int64_t min_seller_gain_uc, min_buyer_gain_uc; /* over homes that traded locally */
} ir_stats;

static void fail_interval(uint64_t k, const mkt_params *p, const mkt_ex_post_home *h, size_t n,
                          const char *what, uint64_t who)
{
    fprintf(stderr, "interval %llu: %s (participant %llu); %s F=%lld R=%lld fee=%lld iv=%lld\n",
            (unsigned long long)k, what, (unsigned long long)who,
            mkt_mechanism_name(p->mechanism), (long long)p->feed_in_uc_per_kwh,
            (long long)p->retail_uc_per_kwh, (long long)p->network_fee_uc_per_kwh,
            (long long)p->interval_id);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  home %llu net %lld pref %s\n", (unsigned long long)h[i].participant,
                (long long)h[i].net_export_wh, h[i].pref ? "yes" : "none");
    fail_msg("individual rationality");
}

static int64_t amount(int64_t wh, int64_t price)
{
    int64_t a;
    assert_int_equal(mkt_amount_uc(wh, price, &a), MKT_OK);
    return a;
}

/* Checks one cleared interval home by home against its grid-only bill. */
static void check_homes(uint64_t k, const mkt_params *p, const mkt_ex_post_home *h, size_t n,
                        const mkt_clearing *c, ir_stats *st)
{
    size_t np, nt;
    const mkt_participant_result *pr = mkt_clearing_participants(c, &np);
    const mkt_trade *t = mkt_clearing_trades(c, &nt);
    size_t active = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].net_export_wh == 0)
            continue;
        active++;
        const mkt_participant_result *r = NULL;
        for (size_t j = 0; j < np && !r; j++)
            if (pr[j].participant == h[i].participant)
                r = &pr[j];
        if (!r)
            fail_interval(k, p, h, n, "home missing from the result", h[i].participant);
        if (h[i].net_export_wh > 0) {
            int64_t w = h[i].net_export_wh, grid_only = amount(w, p->feed_in_uc_per_kwh);
            if (r->side != MKT_SELL || r->offered_wh != w)
                fail_interval(k, p, h, n, "seller's order", h[i].participant);
            int64_t got = r->local_received_uc + r->grid_received_uc;
            if (got < grid_only)
                fail_interval(k, p, h, n, "seller below its grid-only bill", h[i].participant);
            if (r->local_sold_wh > 0 && got - grid_only < st->min_seller_gain_uc)
                st->min_seller_gain_uc = got - grid_only;
            size_t mine = 0;
            for (size_t x = 0; x < nt; x++)
                mine += t[x].seller == h[i].participant;
            st->multi_trade_sellers += mine >= 2;
        } else {
            int64_t d = -h[i].net_export_wh, grid_only = amount(d, p->retail_uc_per_kwh);
            if (r->side != MKT_BUY || r->offered_wh != d)
                fail_interval(k, p, h, n, "buyer's order", h[i].participant);
            int64_t paid = r->local_paid_uc + r->fee_paid_uc + r->grid_paid_uc;
            if (paid > grid_only)
                fail_interval(k, p, h, n, "buyer above its grid-only bill", h[i].participant);
            if (r->local_bought_wh > 0 && grid_only - paid < st->min_buyer_gain_uc)
                st->min_buyer_gain_uc = grid_only - paid;
        }
    }
    if (np != active)
        fail_interval(k, p, h, n, "participants other than the active homes", 0);
    for (size_t x = 0; x < nt; x++) {
        if (t[x].price_uc_per_kwh < p->feed_in_uc_per_kwh + MKT_EX_POST_SELL_MARGIN_UC_PER_KWH)
            fail_interval(k, p, h, n, "trade below the seller floor", t[x].seller);
        if (t[x].price_uc_per_kwh + p->network_fee_uc_per_kwh > p->retail_uc_per_kwh)
            fail_interval(k, p, h, n, "trade above retail all-in", t[x].buyer);
    }
    st->trades += nt;
    st->traded += nt > 0;
}

static int same_result(const mkt_clearing *a, const mkt_clearing *b)
{
    size_t na, nb, ta, tb;
    const mkt_participant_result *pa = mkt_clearing_participants(a, &na);
    const mkt_participant_result *pb = mkt_clearing_participants(b, &nb);
    const mkt_trade *xa = mkt_clearing_trades(a, &ta), *xb = mkt_clearing_trades(b, &tb);
    return na == nb && ta == tb &&
           memcmp(mkt_clearing_summary(a), mkt_clearing_summary(b), sizeof(mkt_summary)) == 0 &&
           (na == 0 || memcmp(pa, pb, na * sizeof *pa) == 0) &&
           (ta == 0 || memcmp(xa, xb, ta * sizeof *xa) == 0);
}

static void individual_rationality(void **state)
{
    (void)state;
    uint64_t seed = env_u64("MGX_SEED", UINT64_C(20261205));
    uint64_t n_intervals = env_u64("MGX_IR_INTERVALS", DEFAULT_INTERVALS);
    printf("test_market_ir: seed %llu (MGX_SEED), %llu intervals (MGX_IR_INTERVALS)\n",
           (unsigned long long)seed, (unsigned long long)n_intervals);
    mkt_clearing *c = mkt_clearing_new(MAX_HOMES), *c2 = mkt_clearing_new(MAX_HOMES);
    assert_non_null(c);
    assert_non_null(c2);
    ir_stats st = {0, 0, 0, 0, INT64_MAX, INT64_MAX};
    uint64_t rng = seed;
    mkt_ex_post_home h[MAX_HOMES], h2[MAX_HOMES];
    mkt_preference pref[MAX_HOMES];
    mkt_order o[MAX_HOMES], o2[MAX_HOMES];
    for (uint64_t k = 0; k < n_intervals; k++) {
        mkt_params p = random_params(&rng);
        size_t n = random_homes(&rng, &p, h, pref), n_o, n_o2;
        mkt_error_at at;
        int rc = mkt_ex_post_orders(&p, h, n, o, MAX_HOMES, &n_o, &at);
        if (rc == MKT_OK)
            rc = mkt_clear(c, &p, o, n_o, &at);
        if (rc != MKT_OK)
            fail_interval(k, &p, h, n, mkt_strerror(rc), 0);
        check_homes(k, &p, h, n, c, &st);
        if (k % 16 == 0) { /* input order: the homes reversed */
            for (size_t i = 0; i < n; i++)
                h2[i] = h[n - 1 - i];
            assert_int_equal(mkt_ex_post_orders(&p, h2, n, o2, MAX_HOMES, &n_o2, NULL), MKT_OK);
            assert_int_equal(mkt_clear(c2, &p, o2, n_o2, NULL), MKT_OK);
            if (!same_result(c, c2))
                fail_interval(k, &p, h, n, "reversed homes give a different result", 0);
        }
        st.intervals++;
    }
    printf("intervals %llu, with local trade %llu, trades %llu, sellers with >= 2 trades %llu; "
           "least gain over the grid-only bill of a home that traded: seller %lld uc, "
           "buyer %lld uc\n",
           (unsigned long long)st.intervals, (unsigned long long)st.traded,
           (unsigned long long)st.trades, (unsigned long long)st.multi_trade_sellers,
           (long long)st.min_seller_gain_uc, (long long)st.min_buyer_gain_uc);
    if (n_intervals >= 10000) { /* the generator must reach the cases that matter */
        assert_true(st.traded > n_intervals / 4);
        assert_true(st.multi_trade_sellers > n_intervals / 20);
    }
    mkt_clearing_free(c);
    mkt_clearing_free(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(individual_rationality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
