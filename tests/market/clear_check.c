/*
 * Invariant checker for clearing results (see clear_check.h). It rebuilds each participant's
 * "units" (effective prices folded into the tariff band, equal prices merged) straight from the
 * orders, infers which units were accepted from the participant's local total (a participant's
 * units are accepted cheapest-first for a seller, dearest-first for a buyer, because every level
 * before the marginal one is taken whole), and then checks money, prices and volume against
 * those units. Quadratic where that keeps it obviously right: fuzz books are small.
 */
#include "clear_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef __int128 i128;

typedef struct {
    int64_t price;
    int64_t energy_wh;
    int64_t accepted_wh;
} ck_unit;

typedef struct {
    int64_t lo, hi, fee;
    int tradable;
} ck_band;

static void ck_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "%s:%d: clearing invariant violated: %s\n", file, line, what);
    abort();
}

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond))                                                                           \
            ck_fail(#cond, __FILE__, __LINE__);                                                \
    } while (0)

static int64_t floor_amount(int64_t energy_wh, int64_t price)
{
    i128 v = (i128)energy_wh * price / 1000;
    CHECK(v <= INT64_MAX);
    return (int64_t)v;
}

static ck_band band_of(const mkt_params *p)
{
    ck_band b = {p->feed_in_uc_per_kwh, p->retail_uc_per_kwh - p->network_fee_uc_per_kwh,
                 p->network_fee_uc_per_kwh, 0};
    b.tradable = b.hi >= b.lo;
    return b;
}

/* The order's units in acceptance order (sell: price ascending, buy: descending). */
static uint32_t order_units(const mkt_order *o, const ck_band *b, ck_unit out[MKT_MAX_STEPS])
{
    uint32_t n = 0;
    if (!b->tradable)
        return 0;
    for (uint32_t s = 0; s < o->n_steps; s++) {
        int64_t q = o->steps[s].price_uc_per_kwh;
        if (o->side == MKT_SELL && q < b->lo)
            q = b->lo;
        if (o->side == MKT_BUY) /* all-in: min(bid, R) - fee, R - fee being hi */
            q = (q > b->hi + b->fee ? b->hi + b->fee : q) - b->fee;
        if (q < b->lo || q > b->hi)
            continue;
        uint32_t k = 0;
        while (k < n && out[k].price != q)
            k++;
        if (k == n)
            out[n++] = (ck_unit){q, 0, 0};
        out[k].energy_wh += o->steps[s].energy_wh;
    }
    for (uint32_t i = 1; i < n; i++) /* insertion sort into acceptance order */
        for (uint32_t k = i; k > 0; k--) {
            int later = o->side == MKT_SELL ? out[k - 1].price > out[k].price
                                            : out[k - 1].price < out[k].price;
            if (!later)
                break;
            ck_unit t = out[k];
            out[k] = out[k - 1];
            out[k - 1] = t;
        }
    return n;
}

/* Spreads a participant's local volume over its units in acceptance order. */
static void accept_prefix(ck_unit *u, uint32_t n, int64_t local_wh)
{
    for (uint32_t k = 0; k < n; k++) {
        u[k].accepted_wh = local_wh < u[k].energy_wh ? local_wh : u[k].energy_wh;
        local_wh -= u[k].accepted_wh;
    }
    CHECK(local_wh == 0); /* never more local volume than tradable units */
}

static void check_participant(const mkt_participant_result *r, const mkt_order *o,
                              const mkt_params *p)
{
    int64_t offered = 0;
    for (uint32_t s = 0; s < o->n_steps; s++)
        offered += o->steps[s].energy_wh;
    CHECK(r->side == o->side);
    CHECK(r->offered_wh == offered);
    if (o->side == MKT_SELL) {
        CHECK(r->local_bought_wh == 0 && r->grid_bought_wh == 0 && r->local_paid_uc == 0);
        CHECK(r->grid_paid_uc == 0 && r->fee_paid_uc == 0);
        CHECK(r->local_sold_wh >= 0 && r->grid_sold_wh >= 0);
        CHECK(r->local_sold_wh + r->grid_sold_wh == offered);
        CHECK(r->grid_received_uc == floor_amount(r->grid_sold_wh, p->feed_in_uc_per_kwh));
    } else {
        CHECK(r->local_sold_wh == 0 && r->grid_sold_wh == 0 && r->local_received_uc == 0);
        CHECK(r->grid_received_uc == 0);
        CHECK(r->local_bought_wh >= 0 && r->grid_bought_wh >= 0);
        CHECK(r->local_bought_wh + r->grid_bought_wh == offered);
        CHECK(r->grid_paid_uc == floor_amount(r->grid_bought_wh, p->retail_uc_per_kwh));
    }
}

typedef struct {
    i128 energy, amount, fee;
} ck_sums;

static void check_trades(const mkt_clearing *c, const mkt_params *p, const mkt_order *orders,
                         size_t n, ck_sums *per)
{
    size_t nt;
    const mkt_trade *t = mkt_clearing_trades(c, &nt);
    const mkt_summary *s = mkt_clearing_summary(c);
    for (size_t i = 0; i < nt; i++) {
        CHECK(t[i].seller < n && t[i].buyer < n);
        CHECK(orders[t[i].seller].side == MKT_SELL && orders[t[i].buyer].side == MKT_BUY);
        CHECK(t[i].energy_wh > 0);
        CHECK(t[i].price_uc_per_kwh >= p->feed_in_uc_per_kwh);
        CHECK((i128)t[i].price_uc_per_kwh + p->network_fee_uc_per_kwh <= p->retail_uc_per_kwh);
        CHECK(t[i].amount_uc == floor_amount(t[i].energy_wh, t[i].price_uc_per_kwh));
        CHECK(t[i].fee_uc == floor_amount(t[i].energy_wh, p->network_fee_uc_per_kwh));
        if (s->mechanism == MKT_PAY_AS_CLEAR)
            CHECK(s->has_price && t[i].price_uc_per_kwh == s->clearing_price_uc_per_kwh);
        ck_sums *sl = &per[t[i].seller], *by = &per[t[i].buyer];
        sl->energy += t[i].energy_wh;
        sl->amount += t[i].amount_uc;
        by->energy += t[i].energy_wh;
        by->amount += t[i].amount_uc;
        by->fee += t[i].fee_uc;
    }
}

static void check_totals(const mkt_clearing *c, const mkt_params *p, const ck_sums *per,
                         size_t n)
{
    size_t np;
    const mkt_participant_result *r = mkt_clearing_participants(c, &np);
    const mkt_summary *s = mkt_clearing_summary(c);
    i128 sold = 0, bought = 0, received = 0, paid = 0, fees = 0, gb = 0, gs = 0, gp = 0, gr = 0;
    for (size_t i = 0; i < n; i++) {
        int sell = r[i].side == MKT_SELL;
        CHECK(per[i].energy == (sell ? r[i].local_sold_wh : r[i].local_bought_wh));
        CHECK(per[i].amount == (sell ? r[i].local_received_uc : r[i].local_paid_uc));
        CHECK(per[i].fee == r[i].fee_paid_uc);
        sold += r[i].local_sold_wh;
        bought += r[i].local_bought_wh;
        received += r[i].local_received_uc;
        paid += r[i].local_paid_uc;
        fees += r[i].fee_paid_uc;
        gb += r[i].grid_bought_wh;
        gs += r[i].grid_sold_wh;
        gp += r[i].grid_paid_uc;
        gr += r[i].grid_received_uc;
    }
    CHECK(s->mechanism == p->mechanism);
    CHECK(sold == bought && sold == s->matched_wh);
    CHECK(received == paid && received == s->local_value_uc);
    CHECK(fees == s->fees_uc);
    CHECK(gb == s->grid_bought_wh && gs == s->grid_sold_wh);
    CHECK(gp == s->grid_paid_uc && gr == s->grid_received_uc);
    CHECK(s->has_price == (p->mechanism == MKT_PAY_AS_CLEAR && s->matched_wh > 0));
}

/* Q must equal max over x of min(supply(x), demand(x)); the step prices are the only x that
 * matter because both curves are step functions changing only there. */
static void check_maximal(const ck_unit *u, const uint32_t *nu, const mkt_order *orders,
                          size_t n, int64_t matched)
{
    i128 best = 0;
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < nu[i]; k++) {
            int64_t x = u[i * MKT_MAX_STEPS + k].price;
            i128 supply = 0, demand = 0;
            for (size_t j = 0; j < n; j++)
                for (uint32_t m = 0; m < nu[j]; m++) {
                    const ck_unit *v = &u[j * MKT_MAX_STEPS + m];
                    if (orders[j].side == MKT_SELL && v->price <= x)
                        supply += v->energy_wh;
                    if (orders[j].side == MKT_BUY && v->price >= x)
                        demand += v->energy_wh;
                }
            i128 q = supply < demand ? supply : demand;
            if (q > best)
                best = q;
        }
    CHECK(best == matched);
}

/* Pay-as-clear: accepted units are in the money at p, rejected (or partly taken) ones are not. */
static void check_uniform_price(const mkt_summary *s, const ck_band *b, const ck_unit *u,
                                uint32_t n, mkt_side side)
{
    int64_t p = s->clearing_price_uc_per_kwh;
    for (uint32_t k = 0; k < n; k++) {
        int whole = u[k].accepted_wh == u[k].energy_wh;
        if (side == MKT_SELL)
            CHECK(whole ? u[k].price <= p : u[k].price >= p);
        else
            CHECK(whole ? u[k].price >= p : u[k].price <= p);
    }
    CHECK(b->lo <= s->price_low_uc_per_kwh);
    CHECK(s->price_low_uc_per_kwh <= s->price_high_uc_per_kwh);
    CHECK(s->price_high_uc_per_kwh <= b->hi);
    CHECK(p == s->price_low_uc_per_kwh + (s->price_high_uc_per_kwh - s->price_low_uc_per_kwh) / 2);
}

/* Pay-as-bid: a buyer's trades at each price add up to what its unit at that price got, and no
 * trade is priced below the dearest accepted ask. */
static void check_bid_trades(const mkt_clearing *c, ck_unit *u, const uint32_t *nu,
                             int64_t max_ask)
{
    size_t nt;
    const mkt_trade *t = mkt_clearing_trades(c, &nt);
    for (size_t i = 0; i < nt; i++) {
        ck_unit *bu = &u[t[i].buyer * MKT_MAX_STEPS];
        uint32_t k = 0;
        while (k < nu[t[i].buyer] && bu[k].price != t[i].price_uc_per_kwh)
            k++;
        CHECK(k < nu[t[i].buyer]); /* priced at one of the buyer's effective bids */
        CHECK(t[i].price_uc_per_kwh >= max_ask);
        bu[k].accepted_wh -= t[i].energy_wh;
    }
}

/* One side's acceptance: every level better than the marginal one is taken whole, every worse
 * one not at all, and a partly taken marginal level of total T shared out X Wh as
 * floor(X * e / T) each plus the leftover Wh one each to the largest remainders, ties by id.
 * Returns 1 if the marginal level was only partly taken. */
static int check_side_levels(const ck_unit *u, const uint32_t *nu, const mkt_order *orders,
                             size_t n, mkt_side side)
{
    int found = 0;
    int64_t p = 0;
    for (size_t i = 0; i < n; i++) /* the marginal (worst accepted) price */
        for (uint32_t k = 0; orders[i].side == side && k < nu[i]; k++) {
            const ck_unit *v = &u[i * MKT_MAX_STEPS + k];
            if (v->accepted_wh > 0 && (!found || (side == MKT_SELL ? v->price > p : v->price < p))) {
                p = v->price;
                found = 1;
            }
        }
    if (!found)
        return 0;
    i128 total = 0, taken = 0;
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = 0; orders[i].side == side && k < nu[i]; k++) {
            const ck_unit *v = &u[i * MKT_MAX_STEPS + k];
            int better = side == MKT_SELL ? v->price < p : v->price > p;
            if (better)
                CHECK(v->accepted_wh == v->energy_wh);
            else if (v->price != p)
                CHECK(v->accepted_wh == 0);
            else {
                total += v->energy_wh;
                taken += v->accepted_wh;
            }
        }
    if (taken == total)
        return 0;
    /* pro rata: rank by (remainder desc, id asc); the +1s go to a prefix of that ranking */
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = 0; orders[i].side == side && k < nu[i]; k++) {
            const ck_unit *v = &u[i * MKT_MAX_STEPS + k];
            if (v->price != p)
                continue;
            i128 prod = taken * v->energy_wh, fl = prod / total, rem = prod % total;
            int extra = (int)(v->accepted_wh - fl);
            CHECK(extra == 0 || extra == 1);
            for (size_t j = 0; j < n; j++)
                for (uint32_t m = 0; orders[j].side == side && m < nu[j]; m++) {
                    const ck_unit *w = &u[j * MKT_MAX_STEPS + m];
                    if (w->price != p || j == i)
                        continue;
                    i128 prod2 = taken * w->energy_wh, rem2 = prod2 % total;
                    int extra2 = (int)(w->accepted_wh - prod2 / total);
                    if (extra && !extra2) /* i outranks j */
                        CHECK(rem > rem2 || (rem == rem2 && i < j));
                }
        }
    return 1;
}

static void check_units(const mkt_clearing *c, const mkt_params *p, const mkt_order *orders,
                        size_t n)
{
    const mkt_participant_result *r = mkt_clearing_participants(c, NULL);
    const mkt_summary *s = mkt_clearing_summary(c);
    ck_band b = band_of(p);
    ck_unit *u = calloc(n * MKT_MAX_STEPS + 1, sizeof *u);
    uint32_t *nu = calloc(n + 1, sizeof *nu);
    CHECK(u && nu);
    int64_t max_ask = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        ck_unit *ui = &u[i * MKT_MAX_STEPS];
        nu[i] = order_units(&orders[i], &b, ui);
        int sell = orders[i].side == MKT_SELL;
        accept_prefix(ui, nu[i], sell ? r[i].local_sold_wh : r[i].local_bought_wh);
        for (uint32_t k = 0; k < nu[i]; k++)
            if (sell && ui[k].accepted_wh > 0 && ui[k].price > max_ask)
                max_ask = ui[k].price;
        if (s->has_price)
            check_uniform_price(s, &b, ui, nu[i], orders[i].side);
    }
    check_maximal(u, nu, orders, n, s->matched_wh);
    int partial_sell = check_side_levels(u, nu, orders, n, MKT_SELL);
    int partial_buy = check_side_levels(u, nu, orders, n, MKT_BUY);
    CHECK(!(partial_sell && partial_buy)); /* at most one level, on one side, is cut */
    if (p->mechanism == MKT_PAY_AS_BID) {
        check_bid_trades(c, u, nu, max_ask);
        for (size_t i = 0; i < n; i++)
            for (uint32_t k = 0; orders[i].side == MKT_BUY && k < nu[i]; k++)
                CHECK(u[i * MKT_MAX_STEPS + k].accepted_wh == 0);
    }
    free(u);
    free(nu);
}

void fuzz_check_clearing(const mkt_clearing *c, const mkt_params *p, const mkt_order *orders,
                         size_t n)
{
    size_t np;
    const mkt_participant_result *r = mkt_clearing_participants(c, &np);
    CHECK(np == n);
    for (size_t i = 0; i < n; i++) {
        CHECK(orders[i].participant == i && r[i].participant == i);
        check_participant(&r[i], &orders[i], p);
    }
    ck_sums *per = calloc(n + 1, sizeof *per);
    CHECK(per);
    check_trades(c, p, orders, n, per);
    check_totals(c, p, per, n);
    free(per);
    if (!band_of(p).tradable)
        CHECK(mkt_clearing_summary(c)->matched_wh == 0);
    check_units(c, p, orders, n);
}

static int same_part(const mkt_participant_result *x, const mkt_participant_result *y)
{
    return x->participant == y->participant && x->side == y->side &&
           x->offered_wh == y->offered_wh && x->local_bought_wh == y->local_bought_wh &&
           x->local_sold_wh == y->local_sold_wh && x->grid_bought_wh == y->grid_bought_wh &&
           x->grid_sold_wh == y->grid_sold_wh && x->local_paid_uc == y->local_paid_uc &&
           x->local_received_uc == y->local_received_uc && x->grid_paid_uc == y->grid_paid_uc &&
           x->grid_received_uc == y->grid_received_uc && x->fee_paid_uc == y->fee_paid_uc;
}

static int same_summary(const mkt_summary *x, const mkt_summary *y)
{
    return x->mechanism == y->mechanism && x->matched_wh == y->matched_wh &&
           x->fees_uc == y->fees_uc && x->has_price == y->has_price &&
           x->clearing_price_uc_per_kwh == y->clearing_price_uc_per_kwh &&
           x->price_low_uc_per_kwh == y->price_low_uc_per_kwh &&
           x->price_high_uc_per_kwh == y->price_high_uc_per_kwh &&
           x->grid_bought_wh == y->grid_bought_wh && x->grid_sold_wh == y->grid_sold_wh &&
           x->local_value_uc == y->local_value_uc && x->grid_paid_uc == y->grid_paid_uc &&
           x->grid_received_uc == y->grid_received_uc;
}

void fuzz_check_same_result(const mkt_clearing *a, const mkt_clearing *b, const char *why)
{
    size_t nta, ntb, npa, npb;
    const mkt_trade *ta = mkt_clearing_trades(a, &nta), *tb = mkt_clearing_trades(b, &ntb);
    const mkt_participant_result *pa = mkt_clearing_participants(a, &npa);
    const mkt_participant_result *pb = mkt_clearing_participants(b, &npb);
    int same = same_summary(mkt_clearing_summary(a), mkt_clearing_summary(b)) && nta == ntb &&
               npa == npb;
    for (size_t i = 0; same && i < nta; i++)
        same = ta[i].seller == tb[i].seller && ta[i].buyer == tb[i].buyer &&
               ta[i].energy_wh == tb[i].energy_wh &&
               ta[i].price_uc_per_kwh == tb[i].price_uc_per_kwh &&
               ta[i].amount_uc == tb[i].amount_uc && ta[i].fee_uc == tb[i].fee_uc;
    for (size_t i = 0; same && i < npa; i++)
        same = same_part(&pa[i], &pb[i]);
    if (!same)
        ck_fail(why, __FILE__, __LINE__);
}

int fuzz_overflow_possible(const mkt_params *p, const mkt_order *orders, size_t n)
{
    i128 energy = 0;
    for (size_t i = 0; i < n; i++)
        for (uint32_t s = 0; s < orders[i].n_steps; s++)
            energy += orders[i].steps[s].energy_wh;
    int64_t price = p->retail_uc_per_kwh;
    if (p->network_fee_uc_per_kwh > price)
        price = p->network_fee_uc_per_kwh;
    /* every amount and every total is at most all the energy at the dearest price */
    return energy > INT64_MAX || energy * price / 1000 > INT64_MAX;
}
