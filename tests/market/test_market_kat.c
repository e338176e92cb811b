/*
 * Known-answer tests of the clearing engine: books small enough to clear by hand, with the
 * working in the comments, for both mechanisms. Every field of the result is compared (trades in
 * order, participant records, summary), and every result also goes through the independent
 * model in market_check.c. The second half covers input errors and where they are reported.
 *
 * Notation in the comments: F feed-in, R retail, fee network fee, band [lo, hi] = [F, R - fee];
 * a' and b' are effective ask and bid; Q the matched volume; [L, U] the equilibrium interval and
 * p = L + (U - L) / 2 the pay-as-clear price. Prices are uc/kWh, so 1000 Wh at p costs p uc.
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

#define ORDER(id_, side_, ...)                                                                     \
    ((mkt_order){.participant = (id_),                                                             \
                 .side = (side_),                                                                  \
                 .n_steps = (uint32_t)(sizeof((mkt_step[]){__VA_ARGS__}) / sizeof(mkt_step)),      \
                 .steps = {__VA_ARGS__}})
#define SELL(id, ...) ORDER(id, MKT_SELL, __VA_ARGS__)
#define BUY(id, ...) ORDER(id, MKT_BUY, __VA_ARGS__)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A participant's expected record; local/grid are sold for sellers and bought for buyers. */
typedef struct {
    uint64_t id;
    int64_t local_wh, grid_wh, local_uc, grid_uc, fee_uc;
} want_part;

typedef struct {
    int64_t matched, price, low, high, fees, grid_bought, grid_sold, value, grid_paid,
        grid_received;
} want_sum;

static mkt_params params(mkt_mechanism m, int64_t f, int64_t r, int64_t fee)
{
    mkt_params p = {m, f, r, fee};
    return p;
}

/* Clears, requires success and agreement with the independent model. */
static void clear_ok(mkt_clearing *c, const mkt_params *p, const mkt_order *o, size_t n)
{
    mkt_error_at at;
    int rc = mkt_clear(c, p, o, n, &at);
    if (rc != MKT_OK)
        fail_msg("mkt_clear: %s at order %zu step %d", mkt_strerror(rc), at.order_index,
                 at.step_index);
    char msg[512];
    if (mc_check(p, o, n, c, msg, sizeof msg))
        fail_msg("model disagrees: %s", msg);
}

static void expect_trades(const mkt_clearing *c, const mkt_trade *want, size_t n_want)
{
    size_t n;
    const mkt_trade *t = mkt_clearing_trades(c, &n);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t[i].seller, want[i].seller);
        assert_int_equal(t[i].buyer, want[i].buyer);
        assert_int_equal(t[i].energy_wh, want[i].energy_wh);
        assert_int_equal(t[i].price_uc_per_kwh, want[i].price_uc_per_kwh);
        assert_int_equal(t[i].amount_uc, want[i].amount_uc);
        assert_int_equal(t[i].fee_uc, want[i].fee_uc);
    }
}

static void expect_parts(const mkt_clearing *c, const want_part *want, size_t n_want)
{
    size_t n;
    const mkt_participant_result *pr = mkt_clearing_participants(c, &n);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) {
        const mkt_participant_result *q = &pr[i];
        const want_part *w = &want[i];
        assert_int_equal(q->participant, w->id);
        if (q->side == MKT_SELL) {
            assert_int_equal(q->local_sold_wh, w->local_wh);
            assert_int_equal(q->grid_sold_wh, w->grid_wh);
            assert_int_equal(q->local_received_uc, w->local_uc);
            assert_int_equal(q->grid_received_uc, w->grid_uc);
            assert_int_equal(q->local_bought_wh | q->grid_bought_wh | q->local_paid_uc |
                                 q->grid_paid_uc | q->fee_paid_uc,
                             0);
        } else {
            assert_int_equal(q->local_bought_wh, w->local_wh);
            assert_int_equal(q->grid_bought_wh, w->grid_wh);
            assert_int_equal(q->local_paid_uc, w->local_uc);
            assert_int_equal(q->grid_paid_uc, w->grid_uc);
            assert_int_equal(q->fee_paid_uc, w->fee_uc);
            assert_int_equal(q->local_sold_wh | q->grid_sold_wh | q->local_received_uc |
                                 q->grid_received_uc,
                             0);
        }
        assert_int_equal(q->offered_wh, w->local_wh + w->grid_wh);
    }
}

static void expect_sum(const mkt_clearing *c, mkt_mechanism m, const want_sum *w)
{
    const mkt_summary *s = mkt_clearing_summary(c);
    assert_int_equal(s->mechanism, m);
    assert_int_equal(s->matched_wh, w->matched);
    assert_int_equal(s->has_price, m == MKT_PAY_AS_CLEAR && w->matched > 0);
    assert_int_equal(s->clearing_price_uc_per_kwh, w->price);
    assert_int_equal(s->price_low_uc_per_kwh, w->low);
    assert_int_equal(s->price_high_uc_per_kwh, w->high);
    assert_int_equal(s->fees_uc, w->fees);
    assert_int_equal(s->grid_bought_wh, w->grid_bought);
    assert_int_equal(s->grid_sold_wh, w->grid_sold);
    assert_int_equal(s->local_value_uc, w->value);
    assert_int_equal(s->grid_paid_uc, w->grid_paid);
    assert_int_equal(s->grid_received_uc, w->grid_received);
}

/* The whole result of one clearing: trades, participant records and summary. */
static void expect_result(const mkt_clearing *c, mkt_mechanism m, const mkt_trade *t, size_t nt,
                          const want_part *w, size_t nw, const want_sum *s)
{
    expect_trades(c, t, nt);
    expect_parts(c, w, nw);
    expect_sum(c, m, s);
}

static int setup(void **state)
{
    *state = mkt_clearing_new(256);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    mkt_clearing_free(*state);
    return 0;
}

/*
 * The GridLAB-D auction example: buyers bid 1..100, sellers ask 2..101, one unit (1000 Wh) each,
 * no grid effect (F = 0, R = 1000 above every bid). Sorted, the k-th cheapest ask is k + 1 and
 * the k-th dearest bid 101 - k; they cross while k + 1 <= 101 - k, i.e. k <= 50: Q = 50 units.
 * Last accepted ask 51, last accepted bid 51, first rejected ask 52, first rejected bid 50:
 * L = max(0, 51, 50) = 51, U = min(1000, 51, 52) = 51, so the midpoint rule gives p = 51, the
 * same price and quantity as GridLAB-D's, because the equilibrium interval is a single point
 * (a tie of the 50th bid and ask at 51).
 * Buyers are ids 1..100 (id i bids i), sellers ids 101..200 (id 100 + j asks j + 1). The array
 * lists sellers first, in reverse, to show the input order does not matter.
 */
static size_t gridlabd_book(mkt_order *o)
{
    size_t n = 0;
    for (int64_t j = 100; j >= 1; j--)
        o[n++] = SELL((uint64_t)(100 + j), {1000, j + 1});
    for (int64_t i = 1; i <= 100; i++)
        o[n++] = BUY((uint64_t)i, {1000, i});
    return n;
}

static void gridlabd(void **state, mkt_mechanism m)
{
    mkt_clearing *c = *state;
    mkt_order o[200];
    size_t n = gridlabd_book(o);
    mkt_params p = params(m, 0, 1000, 0);
    clear_ok(c, &p, o, n);
    mkt_trade t[50];
    want_part w[200];
    int64_t value = 0;
    for (int64_t k = 1; k <= 50; k++) {
        /* pay-as-clear: sellers in id order (101..150) meet buyers in id order (51..100) at 51;
         * pay-as-bid: the k-th cheapest ask (seller 100 + k) meets the k-th dearest bid (buyer
         * 101 - k) at that bid. */
        int64_t price = m == MKT_PAY_AS_CLEAR ? 51 : 101 - k;
        uint64_t buyer = (uint64_t)(m == MKT_PAY_AS_CLEAR ? 50 + k : 101 - k);
        t[k - 1] = (mkt_trade){(uint64_t)(100 + k), buyer, 1000, price, price, 0};
        value += price;
    }
    for (int64_t i = 1; i <= 100; i++) {
        /* buyer i trades iff i >= 51 and pays 51 (clear) or its bid i (bid); the rest buys its
         * 1000 Wh from the grid at R: 1000 uc */
        int in = i >= 51;
        w[i - 1] = (want_part){(uint64_t)i, in ? 1000 : 0, in ? 0 : 1000,
                               in ? (m == MKT_PAY_AS_CLEAR ? 51 : i) : 0, in ? 0 : 1000, 0};
        /* seller 100 + i trades iff its ask i + 1 <= 51; it receives 51 (clear) or the bid of its
         * partner 101 - i (bid); the rest goes to the grid at F = 0 */
        in = i <= 50;
        w[99 + i] = (want_part){(uint64_t)(100 + i), in ? 1000 : 0, in ? 0 : 1000,
                                in ? (m == MKT_PAY_AS_CLEAR ? 51 : 101 - i) : 0, 0, 0};
    }
    want_sum s = {50000, 0, 0, 0, 0, 50000, 50000, value, 50000, 0};
    if (m == MKT_PAY_AS_CLEAR)
        s.price = s.low = s.high = 51;
    expect_result(c, m, t, 50, w, 200, &s);
    /* 50 * 51 = 2550; pay-as-bid sum 51..100 = 3775 */
    assert_int_equal(value, m == MKT_PAY_AS_CLEAR ? 2550 : 3775);
}

static void gridlabd_clear(void **state) { gridlabd(state, MKT_PAY_AS_CLEAR); }
static void gridlabd_bid(void **state) { gridlabd(state, MKT_PAY_AS_BID); }

/*
 * A partly accepted sell level shared pro rata, with a tie of remainders broken by id.
 * F = 10000, R = 100000, fee 0. Sellers 1, 2, 3 ask 20000 for 3, 3, 4 Wh; buyer 9 bids 30000
 * for 5 Wh. Q = 5 (the buyer is exhausted); the sell level (T = 10 Wh) gets X = 5:
 *   id 1: 5*3/10 = 1 rem 5;  id 2: 1 rem 5;  id 3: 5*4/10 = 2 rem 0;  leftover 5 - 4 = 1 Wh
 *   goes to the largest remainder, a tie of ids 1 and 2 -> id 1. Shares 2, 1, 2.
 * Pay-as-clear: the partial sell level is accepted and rejected: L = max(F, 20000) = 20000,
 * U = min(R, 30000, 20000) = 20000, p = 20000. Amounts 2*20000/1000 = 40, 20, 40.
 * Pay-as-bid: each pair at the bid 30000: amounts 60, 30, 60.
 * Grid: sellers' rests 1, 2, 2 Wh at F: 10, 20, 20 uc.
 */
static void prorate_id_tie(void **state, mkt_mechanism m)
{
    mkt_clearing *c = *state;
    mkt_order o[] = {SELL(3, {4, 20000}), BUY(9, {5, 30000}), SELL(1, {3, 20000}),
                     SELL(2, {3, 20000})};
    mkt_params p = params(m, 10000, 100000, 0);
    clear_ok(c, &p, o, COUNT(o));
    int64_t pr = m == MKT_PAY_AS_CLEAR ? 20000 : 30000;
    int64_t a2 = 2 * pr / 1000, a1 = pr / 1000;
    mkt_trade t[] = {{1, 9, 2, pr, a2, 0}, {2, 9, 1, pr, a1, 0}, {3, 9, 2, pr, a2, 0}};
    want_part w[] = {{1, 2, 1, a2, 10, 0},
                     {2, 1, 2, a1, 20, 0},
                     {3, 2, 2, a2, 20, 0},
                     {9, 5, 0, 2 * a2 + a1, 0, 0}};
    want_sum s = {5, 0, 0, 0, 0, 0, 5, 2 * a2 + a1, 0, 50};
    if (m == MKT_PAY_AS_CLEAR)
        s.price = s.low = s.high = 20000;
    expect_result(c, m, t, COUNT(t), w, COUNT(w), &s);
}

static void prorate_tie_clear(void **state) { prorate_id_tie(state, MKT_PAY_AS_CLEAR); }
static void prorate_tie_bid(void **state) { prorate_id_tie(state, MKT_PAY_AS_BID); }

/*
 * A partly accepted buy level of equal bids; the largest remainder is the highest id.
 * F = 0, R = 60000, fee = 1000, so hi = 59000. Seller 1 asks 0 for 7 Wh; buyers 4, 5, 6 bid
 * 50000 for 2, 3, 5 Wh (T = 10). Q = 7, the buy level gets X = 7:
 *   id 4: 14/10 = 1 rem 4;  id 5: 21/10 = 2 rem 1;  id 6: 35/10 = 3 rem 5;  leftover 1 -> id 6.
 * Shares 1, 2, 4. The limits are all-in: b' = min(50000, 60000) - 1000 = 49000.
 * Pay-as-clear: L = max(0, 0, 49000 [partial buy level]) = 49000, U = min(59000, 49000) = 49000,
 * p = 49000. Pay-as-bid: every trade at b' = 49000, and the buy units are paired in id order
 * (equal prices), so both mechanisms give the same trades. Amounts 49, 98, 196; fees
 * e*1000/1000 = 1, 2, 4, so each buyer pays exactly its bid of 50 uc/Wh all-in (before the
 * all-in rule: 50000 + 1000 on top). Each buyer's missing 1 Wh costs R: 60 uc.
 */
static void prorate_remainder(void **state, mkt_mechanism m)
{
    mkt_clearing *c = *state;
    mkt_order o[] = {BUY(6, {5, 50000}), BUY(5, {3, 50000}), BUY(4, {2, 50000}),
                     SELL(1, {7, 0})};
    mkt_params p = params(m, 0, 60000, 1000);
    clear_ok(c, &p, o, COUNT(o));
    mkt_trade t[] = {{1, 4, 1, 49000, 49, 1}, {1, 5, 2, 49000, 98, 2}, {1, 6, 4, 49000, 196, 4}};
    want_part w[] = {{1, 7, 0, 343, 0, 0},
                     {4, 1, 1, 49, 60, 1},
                     {5, 2, 1, 98, 60, 2},
                     {6, 4, 1, 196, 60, 4}};
    want_sum s = {7, 0, 0, 0, 7, 3, 0, 343, 180, 0};
    if (m == MKT_PAY_AS_CLEAR)
        s.price = s.low = s.high = 49000;
    expect_result(c, m, t, COUNT(t), w, COUNT(w), &s);
}

static void prorate_rem_clear(void **state) { prorate_remainder(state, MKT_PAY_AS_CLEAR); }
static void prorate_rem_bid(void **state) { prorate_remainder(state, MKT_PAY_AS_BID); }

/*
 * One-sided and empty books: nothing trades, everything goes to the grid, no price.
 * F = 50, R = 200. Sellers 1 (1000 Wh) and 2 (500 Wh): grid 1000*50/1000 = 50 and 25 uc.
 * Buyer 7 alone (2000 Wh, bid far above R): grid 2000*200/1000 = 400 uc.
 */
static void one_sided(void **state)
{
    mkt_clearing *c = *state;
    for (int m = 0; m < 2; m++) {
        mkt_params p = params((mkt_mechanism)m, 50, 200, 0);
        mkt_order sells[] = {SELL(2, {500, 100}), SELL(1, {1000, 0})};
        clear_ok(c, &p, sells, COUNT(sells));
        want_part ws[] = {{1, 0, 1000, 0, 50, 0}, {2, 0, 500, 0, 25, 0}};
        want_sum ss = {0, 0, 0, 0, 0, 0, 1500, 0, 0, 75};
        expect_result(c, (mkt_mechanism)m, NULL, 0, ws, COUNT(ws), &ss);

        mkt_order buys[] = {BUY(7, {2000, 999999})};
        clear_ok(c, &p, buys, COUNT(buys));
        want_part wb[] = {{7, 0, 2000, 0, 400, 0}};
        want_sum sb = {0, 0, 0, 0, 0, 2000, 0, 0, 400, 0};
        expect_result(c, (mkt_mechanism)m, NULL, 0, wb, COUNT(wb), &sb);

        clear_ok(c, &p, NULL, 0);
        want_sum se = {0};
        expect_result(c, (mkt_mechanism)m, NULL, 0, NULL, 0, &se);
    }
}

/*
 * No crossing: seller 1 asks 150, buyer 2 bids 120 (F = 50, R = 200): Q = 0. Grid: 1000 Wh at
 * F = 50 uc and 1000 Wh at R = 200 uc. Then the boundary case: both at 120 cross, and the
 * interval is [max(50, 120), min(200, 120)] = [120, 120], p = 120 (pay-as-bid: 120 as well).
 */
static void no_crossing(void **state)
{
    mkt_clearing *c = *state;
    for (int m = 0; m < 2; m++) {
        mkt_params p = params((mkt_mechanism)m, 50, 200, 0);
        mkt_order o[] = {SELL(1, {1000, 150}), BUY(2, {1000, 120})};
        clear_ok(c, &p, o, COUNT(o));
        want_part w[] = {{1, 0, 1000, 0, 50, 0}, {2, 0, 1000, 0, 200, 0}};
        want_sum s = {0, 0, 0, 0, 0, 1000, 1000, 0, 200, 50};
        expect_result(c, (mkt_mechanism)m, NULL, 0, w, COUNT(w), &s);

        o[0].steps[0].price_uc_per_kwh = 120;
        clear_ok(c, &p, o, COUNT(o));
        mkt_trade t[] = {{1, 2, 1000, 120, 120, 0}};
        want_part w2[] = {{1, 1000, 0, 120, 0, 0}, {2, 1000, 0, 120, 0, 0}};
        want_sum s2 = {1000, 0, 0, 0, 0, 0, 0, 120, 0, 0};
        if (m == MKT_PAY_AS_CLEAR)
            s2.price = s2.low = s2.high = 120;
        expect_result(c, (mkt_mechanism)m, t, 1, w2, COUNT(w2), &s2);
    }
}

/*
 * A fee so large that no local trade beats the grid: F = 100, R = 200, fee = 150, so
 * R - fee = 50 < F. Seller 1 (ask 0) and buyer 2 (bid 1000) would cross without the fee; here
 * both use the grid: 1000 Wh at 100 uc and 1000 Wh at 200 uc. With fee = 100 the band is the
 * single point [100, 100]: they trade at 100 and the buyer pays 100 + 100 = 200 = R (both
 * mechanisms; pay-as-bid's b' = min(1000, 100) = 100).
 */
static void fee_blocks_trade(void **state)
{
    mkt_clearing *c = *state;
    for (int m = 0; m < 2; m++) {
        mkt_params p = params((mkt_mechanism)m, 100, 200, 150);
        mkt_order o[] = {SELL(1, {1000, 0}), BUY(2, {1000, 1000})};
        clear_ok(c, &p, o, COUNT(o));
        want_part w[] = {{1, 0, 1000, 0, 100, 0}, {2, 0, 1000, 0, 200, 0}};
        want_sum s = {0, 0, 0, 0, 0, 1000, 1000, 0, 200, 100};
        expect_result(c, (mkt_mechanism)m, NULL, 0, w, COUNT(w), &s);

        p.network_fee_uc_per_kwh = 100;
        clear_ok(c, &p, o, COUNT(o));
        mkt_trade t[] = {{1, 2, 1000, 100, 100, 100}};
        want_part w2[] = {{1, 1000, 0, 100, 0, 0}, {2, 1000, 0, 100, 0, 100}};
        want_sum s2 = {1000, 0, 0, 0, 100, 0, 0, 100, 0, 0};
        if (m == MKT_PAY_AS_CLEAR)
            s2.price = s2.low = s2.high = 100;
        expect_result(c, (mkt_mechanism)m, t, 1, w2, COUNT(w2), &s2);
    }
}

/*
 * Asks below the feed-in tariff and bids above retail are clipped into the band.
 * (a) F = 100, R = 300, fee 0. Seller 1 asks 0 (a' = 100) for 1000 Wh; buyer 2 bids 1e6
 *     (b' = 300) for 2000 Wh. Q = 1000, the buy level is partial: L = max(100, 100, 300) = 300,
 *     U = min(300, 300) = 300: p = 300 (the short seller takes the whole surplus). Pay-as-bid:
 *     300 too. Buyer's other 1000 Wh from the grid: 300 uc.
 * (b) fee = 50 (hi = 250), seller 1 offers 2000 Wh, buyer 2 wants 1000 Wh. Sell level partial:
 *     L = max(100, 100) = 100, U = min(250, 250, 100) = 100: p = 100, buyer pays 100 + 50.
 *     Pay-as-bid caps the bid at R - fee: price 250, buyer pays 250 + 50 = 300 = R.
 *     Seller's other 1000 Wh to the grid: 100 uc.
 * (c) midpoint rounded down: seller asks 120, buyer bids 201 (1000 Wh each, F = 100, R = 300):
 *     nothing rejected, L = 120, U = 201, p = 120 + 81 / 2 = 160. Pay-as-bid: 201.
 */
static void clipped_prices(void **state)
{
    mkt_clearing *c = *state;
    for (int m = 0; m < 2; m++) {
        int clear = m == MKT_PAY_AS_CLEAR;
        mkt_params p = params((mkt_mechanism)m, 100, 300, 0);
        mkt_order a[] = {SELL(1, {1000, 0}), BUY(2, {2000, 1000000})};
        clear_ok(c, &p, a, COUNT(a));
        mkt_trade ta[] = {{1, 2, 1000, 300, 300, 0}};
        want_part wa[] = {{1, 1000, 0, 300, 0, 0}, {2, 1000, 1000, 300, 300, 0}};
        want_sum sa = {1000, clear ? 300 : 0, clear ? 300 : 0, clear ? 300 : 0, 0, 1000, 0, 300,
                       300, 0};
        expect_result(c, (mkt_mechanism)m, ta, 1, wa, COUNT(wa), &sa);

        p.network_fee_uc_per_kwh = 50;
        mkt_order b[] = {SELL(1, {2000, 0}), BUY(2, {1000, 1000000})};
        clear_ok(c, &p, b, COUNT(b));
        int64_t pb = clear ? 100 : 250;
        mkt_trade tb[] = {{1, 2, 1000, pb, pb, 50}};
        want_part wb[] = {{1, 1000, 1000, pb, 100, 0}, {2, 1000, 0, pb, 0, 50}};
        want_sum sb = {1000, clear ? 100 : 0, clear ? 100 : 0, clear ? 100 : 0, 50, 0, 1000, pb,
                       0, 100};
        expect_result(c, (mkt_mechanism)m, tb, 1, wb, COUNT(wb), &sb);

        p.network_fee_uc_per_kwh = 0;
        mkt_order d[] = {BUY(2, {1000, 201}), SELL(1, {1000, 120})};
        clear_ok(c, &p, d, COUNT(d));
        int64_t pd = clear ? 160 : 201;
        mkt_trade td[] = {{1, 2, 1000, pd, pd, 0}};
        want_part wd[] = {{1, 1000, 0, pd, 0, 0}, {2, 1000, 0, pd, 0, 0}};
        want_sum sd = {1000, clear ? 160 : 0, clear ? 120 : 0, clear ? 201 : 0, 0, 0, 0, pd, 0, 0};
        expect_result(c, (mkt_mechanism)m, td, 1, wd, COUNT(wd), &sd);
    }
}

/*
 * Multi-step curves with a fee. F = 50, R = 500, fee = 20 (hi = 480).
 *   seller 1 (A): 1000 @ 100, 1000 @ 200, 1000 @ 300     seller 2 (B): 1500 @ 150
 *   buyer 3 (C): 2000 @ 400, 2000 @ 180                  buyer 4 (D): 1000 @ 250
 * Bids are all-in, b' = min(bid, R) - fee: C 380 and 160, D 230.
 * Sell units ascending: A100 1000, B150 1500, A200 1000, A300 1000.
 * Buy units descending: C380 2000, D230 1000, C160 2000.
 * Walk: A100/C380 1000; B150/C380 1000 (C380 done); B150/D230 500 (B done);
 *       A200/D230 500 (D done); A200 (200) > C160 (160): stop. Q = 3000, A200 partial (500).
 * Pay-as-clear: L = max(50, 200 [last accepted ask], 160 [first rejected bid]) = 200,
 *   U = min(480, 230 [last accepted bid], 200 [partial ask]) = 200, p = 200 (as before the
 *   all-in rule: the price is pinned by the partial ask).
 *   Trades by id: A 1500 & B 1500 against C 2000 & D 1000:
 *   A->C 1500 (300 uc, fee 30), B->C 500 (100, 10), B->D 1000 (200, 20).
 * Pay-as-bid: A100->C380 1000 @380 (380, 20), B150->C380 1000 @380 (380, 20),
 *   B150->D230 500 @230 (115, 10), A200->D230 500 @230 (115, 10): C pays 400 per kWh all-in,
 *   its bid, and D 250 (before the all-in rule 420 and 270, above their bids).
 * Grid: A sells 1500 at 50: 75 uc; C buys 2000 at 500: 1000 uc.
 */
static void multi_step(void **state, mkt_mechanism m)
{
    mkt_clearing *c = *state;
    mkt_order o[] = {BUY(4, {1000, 250}), SELL(2, {1500, 150}),
                     BUY(3, {2000, 400}, {2000, 180}),
                     SELL(1, {1000, 300}, {1000, 100}, {1000, 200})};
    mkt_params p = params(m, 50, 500, 20);
    clear_ok(c, &p, o, COUNT(o));
    if (m == MKT_PAY_AS_CLEAR) {
        mkt_trade t[] = {{1, 3, 1500, 200, 300, 30}, {2, 3, 500, 200, 100, 10},
                         {2, 4, 1000, 200, 200, 20}};
        want_part w[] = {{1, 1500, 1500, 300, 75, 0},
                         {2, 1500, 0, 300, 0, 0},
                         {3, 2000, 2000, 400, 1000, 40},
                         {4, 1000, 0, 200, 0, 20}};
        want_sum s = {3000, 200, 200, 200, 60, 2000, 1500, 600, 1000, 75};
        expect_result(c, m, t, COUNT(t), w, COUNT(w), &s);
    } else {
        mkt_trade t[] = {{1, 3, 1000, 380, 380, 20}, {2, 3, 1000, 380, 380, 20},
                         {2, 4, 500, 230, 115, 10}, {1, 4, 500, 230, 115, 10}};
        want_part w[] = {{1, 1500, 1500, 495, 75, 0},
                         {2, 1500, 0, 495, 0, 0},
                         {3, 2000, 2000, 760, 1000, 40},
                         {4, 1000, 0, 230, 0, 20}};
        want_sum s = {3000, 0, 0, 0, 60, 2000, 1500, 990, 1000, 75};
        expect_result(c, m, t, COUNT(t), w, COUNT(w), &s);
    }
}

static void multi_step_clear(void **state) { multi_step(state, MKT_PAY_AS_CLEAR); }
static void multi_step_bid(void **state) { multi_step(state, MKT_PAY_AS_BID); }

/*
 * Money rounds down per trade, and totals are sums of those floors. F = 0, R = 2000, fee = 9
 * (hi = 1991). Sellers 1 and 2 offer 333 Wh at 0; buyer 3 wants 666 Wh at 1001 all-in, so
 * b' = min(1001, 2000) - 9 = 992.
 * Pay-as-clear: nothing rejected, L = 0, U = 992, p = 0 + 992/2 = 496.
 *   Each trade: 333*496/1000 = 165.168 -> 165, fee 333*9/1000 = 2.997 -> 2. The buyer pays
 *   330 + 4, not floor(666*496/1000) = 330 + floor(666*9/1000) = 5: what balances is the sum.
 * Pay-as-bid: 333*992/1000 = 330.336 -> 330 each, fee 2 each.
 */
static void rounding(void **state)
{
    mkt_clearing *c = *state;
    for (int m = 0; m < 2; m++) {
        int clear = m == MKT_PAY_AS_CLEAR;
        mkt_params p = params((mkt_mechanism)m, 0, 2000, 9);
        mkt_order o[] = {BUY(3, {666, 1001}), SELL(2, {333, 0}), SELL(1, {333, 0})};
        clear_ok(c, &p, o, COUNT(o));
        int64_t pr = clear ? 496 : 992, a = clear ? 165 : 330;
        mkt_trade t[] = {{1, 3, 333, pr, a, 2}, {2, 3, 333, pr, a, 2}};
        want_part w[] = {{1, 333, 0, a, 0, 0}, {2, 333, 0, a, 0, 0}, {3, 666, 0, 2 * a, 0, 4}};
        want_sum s = {666, clear ? 496 : 0, 0, clear ? 992 : 0, 4, 0, 0, 2 * a, 0, 0};
        expect_result(c, (mkt_mechanism)m, t, COUNT(t), w, COUNT(w), &s);
    }
}

/*
 * Steps with equal effective price merge into one unit before the pro-rata share.
 * F = 100000, R = 300000. Seller 1: 1 Wh @ 0 and 1 Wh @ 50000 (both a' = 100000: one 2 Wh
 * unit); seller 2: 1 Wh @ 100000; buyer 3: 2 Wh @ 200000. Q = 2 of a 3 Wh level:
 *   id 1: 2*2/3 = 1 rem 1;  id 2: 2*1/3 = 0 rem 2;  leftover 1 -> id 2.  Shares 1, 1.
 * (Unmerged, the three 1 Wh pieces would tie at rem 2 and id 1 would take both.)
 * Pay-as-clear: L = 100000, U = min(300000, 200000, 100000) = 100000. Amounts 100 uc.
 * Pay-as-bid: 200 uc each. Seller 1's other Wh to the grid: 100 uc.
 */
static void merged_units(void **state)
{
    mkt_clearing *c = *state;
    for (int m = 0; m < 2; m++) {
        int clear = m == MKT_PAY_AS_CLEAR;
        mkt_params p = params((mkt_mechanism)m, 100000, 300000, 0);
        mkt_order o[] = {SELL(1, {1, 0}, {1, 50000}), SELL(2, {1, 100000}), BUY(3, {2, 200000})};
        clear_ok(c, &p, o, COUNT(o));
        int64_t pr = clear ? 100000 : 200000, a = pr / 1000;
        mkt_trade t[] = {{1, 3, 1, pr, a, 0}, {2, 3, 1, pr, a, 0}};
        want_part w[] = {{1, 1, 1, a, 100, 0}, {2, 1, 0, a, 0, 0}, {3, 2, 0, 2 * a, 0, 0}};
        int64_t pc = clear ? 100000 : 0;
        want_sum s = {2, pc, pc, pc, 0, 0, 1, 2 * a, 0, 100};
        expect_result(c, (mkt_mechanism)m, t, COUNT(t), w, COUNT(w), &s);
    }
}

/*
 * Steps outside the band never trade and do not bound the price. F = 100, R = 300.
 * Seller 1 asks 400 (> hi) for 1000 Wh; seller 2 asks 150 for 1000 Wh; buyer 3 bids 50 (< F)
 * for 500 Wh and 250 for 1000 Wh. Only S2/B250 cross: Q = 1000, nothing tradable is rejected,
 * so L = max(100, 150) = 150, U = min(300, 250) = 250, p = 200. Pay-as-bid: 250.
 * Grid: seller 1 all 1000 Wh at 100: 100 uc; buyer 3 its 500 Wh at 300: 150 uc.
 */
static void out_of_band(void **state)
{
    mkt_clearing *c = *state;
    for (int m = 0; m < 2; m++) {
        int clear = m == MKT_PAY_AS_CLEAR;
        mkt_params p = params((mkt_mechanism)m, 100, 300, 0);
        mkt_order o[] = {SELL(1, {1000, 400}), SELL(2, {1000, 150}),
                         BUY(3, {500, 50}, {1000, 250})};
        clear_ok(c, &p, o, COUNT(o));
        int64_t pr = clear ? 200 : 250;
        mkt_trade t[] = {{2, 3, 1000, pr, pr, 0}};
        want_part w[] = {{1, 0, 1000, 0, 100, 0}, {2, 1000, 0, pr, 0, 0}, {3, 1000, 500, pr, 150, 0}};
        want_sum s = {1000, clear ? 200 : 0, clear ? 150 : 0, clear ? 250 : 0, 0, 500, 1000, pr,
                      150, 100};
        expect_result(c, (mkt_mechanism)m, t, COUNT(t), w, COUNT(w), &s);
    }
}

/* ---- input errors ---- */

/* Expects rc at (order, step) and an empty result afterwards. */
static void expect_error(mkt_clearing *c, const mkt_params *p, const mkt_order *o, size_t n,
                         int want_rc, size_t want_order, int want_step)
{
    mkt_error_at at = {99, 99};
    int rc = mkt_clear(c, p, o, n, &at);
    assert_int_equal(rc, want_rc);
    assert_int_equal(at.order_index, want_order);
    assert_int_equal(at.step_index, want_step);
    size_t nt, np;
    mkt_clearing_trades(c, &nt);
    mkt_clearing_participants(c, &np);
    assert_int_equal(nt, 0);
    assert_int_equal(np, 0);
    assert_int_equal(mkt_clearing_summary(c)->matched_wh, 0);
    assert_int_equal(mkt_clearing_summary(c)->grid_sold_wh, 0);
    assert_string_not_equal(mkt_strerror(rc), mkt_strerror(12345));
}

static void errors_steps(void **state)
{
    mkt_clearing *c = *state;
    mkt_params p = params(MKT_PAY_AS_CLEAR, 10, 100, 0);
    mkt_order o[] = {SELL(1, {10, 5}), BUY(2, {10, 50}, {10, 40}, {10, 30})};
    clear_ok(c, &p, o, 2); /* the baseline is valid */

    const int64_t bad_energy[] = {0, -5, MKT_ENERGY_MAX_WH + 1, INT64_MIN};
    for (size_t i = 0; i < COUNT(bad_energy); i++) {
        o[1].steps[2].energy_wh = bad_energy[i];
        expect_error(c, &p, o, 2, MKT_E_ENERGY, 1, 2);
    }
    o[1].steps[2].energy_wh = MKT_ENERGY_MAX_WH; /* the bound itself is fine */
    clear_ok(c, &p, o, 2);
    o[1].steps[2].energy_wh = 10;

    const int64_t bad_price[] = {-1, MKT_PRICE_MAX_UC_PER_KWH + 1, INT64_MIN};
    for (size_t i = 0; i < COUNT(bad_price); i++) {
        o[1].steps[1].price_uc_per_kwh = bad_price[i];
        expect_error(c, &p, o, 2, MKT_E_PRICE, 1, 1);
    }
    o[1].steps[1].price_uc_per_kwh = MKT_PRICE_MAX_UC_PER_KWH;
    clear_ok(c, &p, o, 2);

    o[0].n_steps = 0;
    expect_error(c, &p, o, 2, MKT_E_STEPS, 0, -1);
    o[0].n_steps = MKT_MAX_STEPS + 1;
    expect_error(c, &p, o, 2, MKT_E_STEPS, 0, -1);
    o[0].n_steps = MKT_MAX_STEPS;
    for (int s = 0; s < MKT_MAX_STEPS; s++)
        o[0].steps[s] = (mkt_step){1, s};
    clear_ok(c, &p, o, 2);

    o[0].side = (mkt_side)2;
    expect_error(c, &p, o, 2, MKT_E_INVAL, 0, -1);
}

static void errors_participants(void **state)
{
    mkt_clearing *c = *state;
    mkt_params p = params(MKT_PAY_AS_CLEAR, 10, 100, 0);
    /* participant 5 on both sides: the later of the two (array index 2) is blamed */
    mkt_order both[] = {BUY(5, {10, 50}), SELL(6, {10, 5}), SELL(5, {10, 5})};
    expect_error(c, &p, both, 3, MKT_E_BOTH_SIDES, 2, -1);
    mkt_order both2[] = {SELL(5, {10, 5}), BUY(7, {10, 50}), SELL(6, {10, 5}), BUY(5, {10, 50})};
    expect_error(c, &p, both2, 4, MKT_E_BOTH_SIDES, 3, -1);
    mkt_order dup[] = {SELL(9, {10, 5}), BUY(1, {10, 50}), SELL(9, {20, 5})};
    expect_error(c, &p, dup, 3, MKT_E_DUPLICATE, 2, -1);
    /* ids are compared as full 64-bit values */
    mkt_order big[] = {SELL(UINT64_MAX, {10, 5}), BUY(UINT64_MAX - 1, {10, 50})};
    clear_ok(c, &p, big, 2);
}

static void errors_params(void **state)
{
    mkt_clearing *c = *state;
    mkt_order o[] = {SELL(1, {10, 5}), BUY(2, {10, 50})};
    mkt_params p = params(MKT_PAY_AS_CLEAR, 101, 100, 0);
    expect_error(c, &p, o, 2, MKT_E_TARIFFS, MKT_AT_BOOK, -1);
    /* F == R is allowed: the band is one point, a' = max(5, 100) = b' = min(150, 100) = 100 */
    p = params(MKT_PAY_AS_CLEAR, 100, 100, 0);
    mkt_order flat[] = {SELL(1, {10, 5}), BUY(2, {10, 150})};
    clear_ok(c, &p, flat, 2);
    assert_int_equal(mkt_clearing_summary(c)->clearing_price_uc_per_kwh, 100);
    p = params(MKT_PAY_AS_CLEAR, -1, 100, 0);
    expect_error(c, &p, o, 2, MKT_E_PRICE, MKT_AT_BOOK, -1);
    p = params(MKT_PAY_AS_CLEAR, 0, MKT_PRICE_MAX_UC_PER_KWH + 1, 0);
    expect_error(c, &p, o, 2, MKT_E_PRICE, MKT_AT_BOOK, -1);
    p = params(MKT_PAY_AS_CLEAR, 0, 100, -1);
    expect_error(c, &p, o, 2, MKT_E_PRICE, MKT_AT_BOOK, -1);
    p = params((mkt_mechanism)7, 0, 100, 0);
    expect_error(c, &p, o, 2, MKT_E_INVAL, MKT_AT_BOOK, -1);
    p = params(MKT_PAY_AS_CLEAR, 0, 100, 0);
    assert_int_equal(mkt_clear(NULL, &p, o, 2, NULL), MKT_E_INVAL);
    assert_int_equal(mkt_clear(c, NULL, o, 2, NULL), MKT_E_INVAL);
    assert_int_equal(mkt_clear(c, &p, NULL, 2, NULL), MKT_E_INVAL);
    assert_int_equal(mkt_clear(c, &p, o, 2, NULL), MKT_OK); /* at may be NULL */
}

static void errors_bound(void **state)
{
    (void)state;
    assert_null(mkt_clearing_new(0));
    mkt_clearing *c = mkt_clearing_new(3);
    assert_non_null(c);
    mkt_params p = params(MKT_PAY_AS_BID, 0, 100, 0);
    mkt_order o[] = {SELL(1, {10, 5}), BUY(2, {10, 50}), SELL(3, {10, 5}), BUY(4, {10, 50})};
    expect_error(c, &p, o, 4, MKT_E_TOO_MANY, MKT_AT_BOOK, -1);
    clear_ok(c, &p, o, 3);
    mkt_clearing_free(c);
}

/*
 * Money overflow: one trade of 1e12 Wh at a price near 1e12 is worth ~1e21 uc > INT64_MAX
 * (9.22e18). The location is not one step's fault, so it must not point at a step. A trade of
 * 1e12 Wh at 9e9 uc/kWh (9e18 uc) still fits. Grid legs overflow the same way: 16 steps of
 * 1e12 Wh bought at R = 1e12 cost 1.6e22 uc.
 */
static void errors_money_overflow(void **state)
{
    mkt_clearing *c = *state;
    for (int m = 0; m < 2; m++) {
        mkt_params p = params((mkt_mechanism)m, 0, MKT_PRICE_MAX_UC_PER_KWH, 0);
        mkt_order o[] = {SELL(1, {MKT_ENERGY_MAX_WH, 0}),
                         BUY(2, {MKT_ENERGY_MAX_WH, MKT_PRICE_MAX_UC_PER_KWH})};
        expect_error(c, &p, o, 2, MKT_E_OVERFLOW, MKT_AT_BOOK, -1);
        /* 1e12 * 9e9 / 1000 = 9e18 <= INT64_MAX: fits */
        o[1].steps[0].price_uc_per_kwh = INT64_C(9000000000);
        p.retail_uc_per_kwh = INT64_C(9000000000);
        clear_ok(c, &p, o, 2);
        assert_int_equal(mkt_clearing_summary(c)->local_value_uc,
                         m == MKT_PAY_AS_CLEAR ? INT64_C(4500000000000000000)
                                               : INT64_C(9000000000000000000));

        mkt_order g[] = {BUY(2, {1, 0})};
        g[0].n_steps = MKT_MAX_STEPS;
        for (int s = 0; s < MKT_MAX_STEPS; s++)
            g[0].steps[s] = (mkt_step){MKT_ENERGY_MAX_WH, 0};
        p.retail_uc_per_kwh = MKT_PRICE_MAX_UC_PER_KWH;
        expect_error(c, &p, g, 1, MKT_E_OVERFLOW, MKT_AT_BOOK, -1);
    }
}

/*
 * Energy totals overflow: INT64_MAX / 1e12 = 9223372.04, so the 9223373rd sell step of 1e12 Wh
 * (0-based step 9223372 = order 576460, step 12 with 16 steps per order) overflows the sum.
 */
static void errors_energy_overflow(void **state)
{
    (void)state;
    const size_t n = 576461;
    mkt_order *o = malloc(n * sizeof *o);
    mkt_clearing *c = mkt_clearing_new(n);
    assert_non_null(o);
    assert_non_null(c);
    for (size_t i = 0; i < n; i++) {
        o[i].participant = i;
        o[i].side = MKT_SELL;
        o[i].n_steps = MKT_MAX_STEPS;
        for (int s = 0; s < MKT_MAX_STEPS; s++)
            o[i].steps[s] = (mkt_step){MKT_ENERGY_MAX_WH, 0};
    }
    mkt_params p = params(MKT_PAY_AS_CLEAR, 0, 100, 0);
    expect_error(c, &p, o, n, MKT_E_OVERFLOW, 576460, 12);
    mkt_clearing_free(c);
    free(o);
}

/* A clearing object is reusable after a failure, and results do not leak between calls. */
static void reuse_after_error(void **state)
{
    mkt_clearing *c = *state;
    mkt_params p = params(MKT_PAY_AS_CLEAR, 50, 200, 0);
    mkt_order o[] = {SELL(1, {1000, 60}), BUY(2, {500, 100})};
    clear_ok(c, &p, o, 2);
    o[0].steps[0].energy_wh = 0;
    expect_error(c, &p, o, 2, MKT_E_ENERGY, 0, 0);
    o[0].steps[0].energy_wh = 1000;
    clear_ok(c, &p, o, 2);
    /* sell level partial: L = max(50, 60) = 60, U = min(200, 100, 60) = 60 */
    assert_int_equal(mkt_clearing_summary(c)->clearing_price_uc_per_kwh, 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gridlabd_clear),   cmocka_unit_test(gridlabd_bid),
        cmocka_unit_test(prorate_tie_clear), cmocka_unit_test(prorate_tie_bid),
        cmocka_unit_test(prorate_rem_clear), cmocka_unit_test(prorate_rem_bid),
        cmocka_unit_test(one_sided),        cmocka_unit_test(no_crossing),
        cmocka_unit_test(fee_blocks_trade), cmocka_unit_test(clipped_prices),
        cmocka_unit_test(multi_step_clear), cmocka_unit_test(multi_step_bid),
        cmocka_unit_test(rounding),         cmocka_unit_test(merged_units),
        cmocka_unit_test(out_of_band),      cmocka_unit_test(errors_steps),
        cmocka_unit_test(errors_participants), cmocka_unit_test(errors_params),
        cmocka_unit_test(errors_bound),     cmocka_unit_test(errors_money_overflow),
        cmocka_unit_test(errors_energy_overflow), cmocka_unit_test(reuse_after_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
