/*
 * An independent model of the market rules used by the market tests as an oracle. It is written
 * from the rules text, not from clear.c, and favours obviousness over speed (quadratic loops are
 * fine for the small books the tests use). mc_check recomputes the whole expected result and
 * then also checks the invariants directly on the engine's output, so that a bug shared by the
 * model and the engine still trips an invariant.
 */
#include "market_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MC_MAX_LEVEL 1024 /* participants in one book, hence units in one price level */

typedef struct {
    uint64_t id;
    mkt_side side;
    int64_t price; /* effective */
    int64_t energy_wh;
    int64_t acc_wh; /* reference acceptance */
    int64_t implied_wh; /* acceptance implied by the engine's per-participant total */
} mc_unit;

typedef struct {
    mc_unit *u;
    size_t n;
    int64_t lo, hi;
} mc_book;

int64_t mc_amount(int64_t energy_wh, int64_t price_uc_per_kwh)
{
    __extension__ __int128 v = (__int128)energy_wh * price_uc_per_kwh / 1000;
    return (int64_t)v;
}

static int64_t eff_price(const mkt_params *p, mkt_side side, int64_t limit)
{
    /* all-in: the buyer's bid, capped at retail, includes the fee */
    if (side == MKT_SELL)
        return limit < p->feed_in_uc_per_kwh ? p->feed_in_uc_per_kwh : limit;
    int64_t r = p->retail_uc_per_kwh;
    return (limit > r ? r : limit) - p->network_fee_uc_per_kwh;
}

/* Units: per order, one per distinct effective price inside the band. */
static int build(const mkt_params *p, const mkt_order *o, size_t n, mc_book *b)
{
    b->lo = p->feed_in_uc_per_kwh;
    b->hi = p->retail_uc_per_kwh - p->network_fee_uc_per_kwh;
    b->n = 0;
    b->u = calloc(n * MKT_MAX_STEPS + 1, sizeof *b->u);
    if (!b->u)
        return 1;
    for (size_t i = 0; i < n; i++) {
        size_t first = b->n;
        for (uint32_t s = 0; s < o[i].n_steps; s++) {
            int64_t e = eff_price(p, o[i].side, o[i].steps[s].price_uc_per_kwh);
            if (b->hi < b->lo || e < b->lo || e > b->hi)
                continue;
            size_t k = first;
            while (k < b->n && b->u[k].price != e)
                k++;
            if (k == b->n) {
                b->u[k].id = o[i].participant;
                b->u[k].side = o[i].side;
                b->u[k].price = e;
                b->n++;
            }
            b->u[k].energy_wh += o[i].steps[s].energy_wh;
        }
    }
    return 0;
}

int64_t mc_max_matched(const mkt_params *p, const mkt_order *orders, size_t n)
{
    mc_book b;
    if (build(p, orders, n, &b))
        return -1;
    int64_t best = 0;
    for (size_t c = 0; c < b.n; c++) {
        int64_t x = b.u[c].price, sup = 0, dem = 0;
        for (size_t k = 0; k < b.n; k++) {
            if (b.u[k].side == MKT_SELL && b.u[k].price <= x)
                sup += b.u[k].energy_wh;
            if (b.u[k].side == MKT_BUY && b.u[k].price >= x)
                dem += b.u[k].energy_wh;
        }
        int64_t m = sup < dem ? sup : dem;
        if (m > best)
            best = m;
    }
    free(b.u);
    return best;
}

/* Does unit x come before unit y in its side's priority order? */
static int before(const mc_unit *x, const mc_unit *y)
{
    if (x->price != y->price)
        return x->side == MKT_SELL ? x->price < y->price : x->price > y->price;
    return x->id < y->id;
}

/* Indices of one side's units in priority order (selection sort: tiny books). */
static size_t side_order(const mc_book *b, mkt_side side, size_t *idx)
{
    size_t m = 0;
    for (size_t k = 0; k < b->n; k++)
        if (b->u[k].side == side)
            idx[m++] = k;
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++)
            if (before(&b->u[idx[j]], &b->u[idx[i]])) {
                size_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
            }
    return m;
}

/* Shares x Wh of the level idx[0..m) (in id order) by floors, then largest remainders, ties
 * to the lower id. */
static void prorate(mc_unit *u, const size_t *idx, size_t m, int64_t x)
{
    int64_t total = 0, left = x;
    for (size_t i = 0; i < m; i++)
        total += u[idx[i]].energy_wh;
    __extension__ __int128 rem[MC_MAX_LEVEL];
    char got[MC_MAX_LEVEL] = {0};
    for (size_t i = 0; i < m; i++) {
        __extension__ __int128 prod = (__int128)x * u[idx[i]].energy_wh;
        u[idx[i]].acc_wh = (int64_t)(prod / total);
        rem[i] = prod % total;
        left -= u[idx[i]].acc_wh;
    }
    for (; left > 0; left--) {
        size_t best = m;
        for (size_t i = 0; i < m; i++)
            if (!got[i] && (best == m || rem[i] > rem[best]))
                best = i;
        got[best] = 1;
        u[idx[best]].acc_wh++;
    }
}

/* Accepts q Wh of one side, level by level in priority order. */
static void accept_side(mc_book *b, const size_t *idx, size_t m, int64_t q)
{
    for (size_t i = 0; i < m && q > 0;) {
        size_t j = i;
        int64_t level = 0;
        while (j < m && b->u[idx[j]].price == b->u[idx[i]].price)
            level += b->u[idx[j++]].energy_wh;
        if (level <= q) {
            for (size_t k = i; k < j; k++)
                b->u[idx[k]].acc_wh = b->u[idx[k]].energy_wh;
            q -= level;
        } else {
            prorate(b->u, idx + i, j - i, q);
            q = 0;
        }
        i = j;
    }
}

/* Expected trades: appends to t, returns the count. */
static size_t ref_trades(const mkt_params *p, const mc_book *b, const size_t *si, size_t ns,
                         const size_t *bi, size_t nb, const uint64_t *ids, const int64_t *local,
                         const mkt_side *sides, size_t n_parts, int64_t price, mkt_trade *t)
{
    size_t nt = 0, i = 0, j = 0;
    int64_t sl = 0, bl = 0;
    int uniform = p->mechanism == MKT_PAY_AS_CLEAR;
    size_t n_s = uniform ? n_parts : ns, n_b = uniform ? n_parts : nb;
    uint64_t s_id = 0, b_id = 0;
    int64_t b_price = 0;
    for (;;) {
        while (sl == 0 && i < n_s) {
            if (uniform) {
                if (sides[i] == MKT_SELL)
                    sl = local[i], s_id = ids[i];
            } else {
                sl = b->u[si[i]].acc_wh, s_id = b->u[si[i]].id;
            }
            i++;
        }
        while (bl == 0 && j < n_b) {
            if (uniform) {
                if (sides[j] == MKT_BUY)
                    bl = local[j], b_id = ids[j], b_price = price;
            } else {
                bl = b->u[bi[j]].acc_wh, b_id = b->u[bi[j]].id, b_price = b->u[bi[j]].price;
            }
            j++;
        }
        if (sl == 0 || bl == 0)
            return nt;
        int64_t e = sl < bl ? sl : bl;
        t[nt].seller = s_id;
        t[nt].buyer = b_id;
        t[nt].energy_wh = e;
        t[nt].price_uc_per_kwh = b_price;
        t[nt].amount_uc = mc_amount(e, b_price);
        t[nt].fee_uc = mc_amount(e, p->network_fee_uc_per_kwh);
        nt++;
        sl -= e;
        bl -= e;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(msg, cap, __VA_ARGS__);                                                           \
        rc = 1;                                                                                    \
        goto out;                                                                                  \
    } while (0)

/* Spreads each participant's local total over its own units, best price first, as the rules
 * imply (levels before the marginal one are taken whole). */
static int imply(mc_book *b, const mkt_participant_result *pr, size_t np)
{
    for (size_t r = 0; r < np; r++) {
        int64_t q = pr[r].side == MKT_SELL ? pr[r].local_sold_wh : pr[r].local_bought_wh;
        for (;;) {
            mc_unit *best = NULL;
            for (size_t k = 0; k < b->n; k++)
                if (b->u[k].id == pr[r].participant && b->u[k].implied_wh == 0 &&
                    (!best || before(&b->u[k], best)))
                    best = &b->u[k];
            if (!best || q == 0)
                break;
            best->implied_wh = q < best->energy_wh ? q : best->energy_wh;
            q -= best->implied_wh;
        }
        if (q != 0)
            return 1; /* traded more than its steps inside the band allow */
    }
    return 0;
}

/* Pay-as-clear: the equilibrium interval implied by the engine's own acceptance. */
static void equilibrium(const mc_book *b, int64_t *lo, int64_t *hi)
{
    *lo = b->lo;
    *hi = b->hi;
    for (size_t k = 0; k < b->n; k++) {
        const mc_unit *u = &b->u[k];
        int taken = u->implied_wh > 0, whole = u->implied_wh == u->energy_wh;
        if (u->side == MKT_SELL) {
            if (taken && u->price > *lo)
                *lo = u->price;
            if (!whole && u->price < *hi)
                *hi = u->price;
        } else {
            if (!whole && u->price > *lo)
                *lo = u->price;
            if (taken && u->price < *hi)
                *hi = u->price;
        }
    }
}

/* Pay-as-bid limits: every buy unit's acceptance trades exactly at its own effective price;
 * sellers' asks can be assigned to trades priced at least as high (Hall's condition). */
static int bid_limits(const mc_book *b, const mkt_trade *t, size_t nt, char *msg, size_t cap)
{
    int rc = 0;
    for (size_t k = 0; k < b->n; k++) {
        const mc_unit *u = &b->u[k];
        int64_t sum = 0;
        for (size_t i = 0; i < nt; i++) {
            if (u->side == MKT_BUY && t[i].buyer == u->id && t[i].price_uc_per_kwh == u->price)
                sum += t[i].energy_wh;
            if (u->side == MKT_SELL && t[i].seller == u->id && t[i].price_uc_per_kwh >= u->price)
                sum += t[i].energy_wh;
        }
        int64_t need = u->implied_wh;
        if (u->side == MKT_SELL)
            for (size_t j = 0; j < b->n; j++)
                if (j != k && b->u[j].id == u->id && b->u[j].price > u->price)
                    need += b->u[j].implied_wh;
        if (u->side == MKT_BUY ? sum != need : sum < need)
            FAIL("pay-as-bid: %s %llu at %lld: %lld Wh accepted, %lld Wh traded at that price",
                 u->side == MKT_BUY ? "buyer" : "seller", (unsigned long long)u->id,
                 (long long)u->price, (long long)need, (long long)sum);
    }
out:
    return rc;
}

/* Money and energy balance, checked on the engine's output alone. */
static int balances(const mkt_params *p, const mkt_summary *s, const mkt_participant_result *pr,
                    size_t np, const mkt_trade *t, size_t nt, char *msg, size_t cap)
{
    int rc = 0;
    int64_t sold = 0, bought = 0, traded = 0, recv = 0, paid = 0, fees = 0, fee_paid = 0;
    int64_t gb = 0, gs = 0, gp = 0, gr = 0;
    for (size_t i = 0; i < nt; i++) {
        if (t[i].energy_wh <= 0)
            FAIL("trade %zu has %lld Wh", i, (long long)t[i].energy_wh);
        if (t[i].price_uc_per_kwh < p->feed_in_uc_per_kwh ||
            t[i].price_uc_per_kwh + p->network_fee_uc_per_kwh > p->retail_uc_per_kwh)
            FAIL("trade %zu price %lld outside [F, R - fee]", i, (long long)t[i].price_uc_per_kwh);
        if (t[i].amount_uc != mc_amount(t[i].energy_wh, t[i].price_uc_per_kwh) ||
            t[i].fee_uc != mc_amount(t[i].energy_wh, p->network_fee_uc_per_kwh))
            FAIL("trade %zu amount or fee not the floor", i);
        traded += t[i].energy_wh;
        fees += t[i].fee_uc;
    }
    for (size_t r = 0; r < np; r++) {
        const mkt_participant_result *q = &pr[r];
        int64_t e = 0, a = 0, f = 0;
        for (size_t i = 0; i < nt; i++)
            if (q->participant == (q->side == MKT_SELL ? t[i].seller : t[i].buyer)) {
                e += t[i].energy_wh;
                a += t[i].amount_uc;
                f += t[i].fee_uc;
            }
        int sell = q->side == MKT_SELL;
        if ((sell ? q->local_sold_wh : q->local_bought_wh) != e ||
            (sell ? q->local_received_uc : q->local_paid_uc) != a || (sell ? 0 : f) != q->fee_paid_uc)
            FAIL("participant %llu: totals differ from its trades", (unsigned long long)q->participant);
        if ((sell ? q->local_bought_wh | q->grid_bought_wh | q->local_paid_uc | q->grid_paid_uc
                  : q->local_sold_wh | q->grid_sold_wh | q->local_received_uc |
                        q->grid_received_uc) != 0)
            FAIL("participant %llu: fields of the other side set", (unsigned long long)q->participant);
        if (q->offered_wh != (sell ? q->local_sold_wh + q->grid_sold_wh
                                   : q->local_bought_wh + q->grid_bought_wh) ||
            q->grid_sold_wh < 0 || q->grid_bought_wh < 0)
            FAIL("participant %llu: offered != local + grid", (unsigned long long)q->participant);
        if (q->grid_paid_uc != mc_amount(q->grid_bought_wh, p->retail_uc_per_kwh) ||
            q->grid_received_uc != mc_amount(q->grid_sold_wh, p->feed_in_uc_per_kwh))
            FAIL("participant %llu: grid money", (unsigned long long)q->participant);
        sold += q->local_sold_wh;
        bought += q->local_bought_wh;
        recv += q->local_received_uc;
        paid += q->local_paid_uc;
        fee_paid += q->fee_paid_uc;
        gb += q->grid_bought_wh;
        gs += q->grid_sold_wh;
        gp += q->grid_paid_uc;
        gr += q->grid_received_uc;
    }
    if (sold != bought || sold != traded || sold != s->matched_wh)
        FAIL("energy: sold %lld bought %lld traded %lld matched %lld", (long long)sold,
             (long long)bought, (long long)traded, (long long)s->matched_wh);
    if (recv != paid || recv != s->local_value_uc || fee_paid != fees || fees != s->fees_uc)
        FAIL("money: received %lld paid %lld value %lld fees %lld/%lld/%lld", (long long)recv,
             (long long)paid, (long long)s->local_value_uc, (long long)fee_paid, (long long)fees,
             (long long)s->fees_uc);
    if (gb != s->grid_bought_wh || gs != s->grid_sold_wh || gp != s->grid_paid_uc ||
        gr != s->grid_received_uc)
        FAIL("summary grid totals differ from the participants'");
out:
    return rc;
}

int mc_check(const mkt_params *p, const mkt_order *orders, size_t n, const mkt_clearing *c,
             char *msg, size_t cap)
{
    int rc = 0;
    mc_book b = {0};
    size_t *si = calloc(n * MKT_MAX_STEPS + 1, sizeof *si);
    size_t *bi = calloc(n * MKT_MAX_STEPS + 1, sizeof *bi);
    uint64_t *ids = calloc(n + 1, sizeof *ids);
    int64_t *local = calloc(n + 1, sizeof *local);
    mkt_side *sides = calloc(n + 1, sizeof *sides);
    mkt_trade *want = calloc(n * MKT_MAX_STEPS * 2 + 1, sizeof *want);
    msg[0] = '\0';
    if (n > MC_MAX_LEVEL)
        FAIL("the model handles at most %d participants", MC_MAX_LEVEL);
    if (!si || !bi || !ids || !local || !sides || !want || build(p, orders, n, &b))
        FAIL("out of memory");
    const mkt_summary *s = mkt_clearing_summary(c);
    size_t np, nt;
    const mkt_participant_result *pr = mkt_clearing_participants(c, &np);
    const mkt_trade *t = mkt_clearing_trades(c, &nt);

    /* Participants: one each, ascending id, with side and offer. */
    for (size_t i = 0; i < n; i++)
        ids[i] = orders[i].participant;
    qsort(ids, n, sizeof *ids, cmp_u64);
    if (np != n)
        FAIL("%zu participant records for %zu orders", np, n);
    for (size_t r = 0; r < n; r++) {
        const mkt_order *o = NULL;
        for (size_t i = 0; i < n; i++)
            if (orders[i].participant == ids[r])
                o = &orders[i];
        int64_t offered = 0;
        for (uint32_t k = 0; k < o->n_steps; k++)
            offered += o->steps[k].energy_wh;
        if (pr[r].participant != ids[r] || pr[r].side != o->side || pr[r].offered_wh != offered)
            FAIL("participant record %zu is not participant %llu", r, (unsigned long long)ids[r]);
        sides[r] = o->side;
    }

    /* Reference acceptance: the brute-force maximum, shared out level by level. */
    int64_t q = mc_max_matched(p, orders, n);
    size_t ns = side_order(&b, MKT_SELL, si), nb = side_order(&b, MKT_BUY, bi);
    accept_side(&b, si, ns, q);
    accept_side(&b, bi, nb, q);
    if (s->mechanism != p->mechanism || s->matched_wh != q)
        FAIL("matched %lld Wh, the maximum is %lld", (long long)s->matched_wh, (long long)q);
    for (size_t r = 0; r < n; r++) {
        for (size_t k = 0; k < b.n; k++)
            if (b.u[k].id == ids[r])
                local[r] += b.u[k].acc_wh;
        int64_t got = sides[r] == MKT_SELL ? pr[r].local_sold_wh : pr[r].local_bought_wh;
        if (got != local[r])
            FAIL("participant %llu: local %lld Wh, the rules give %lld", (unsigned long long)ids[r],
                 (long long)got, (long long)local[r]);
    }

    /* Price. */
    if (imply(&b, pr, np))
        FAIL("a participant traded beyond the steps it may trade");
    int64_t lo, hi;
    equilibrium(&b, &lo, &hi);
    if (p->mechanism == MKT_PAY_AS_CLEAR && q > 0) {
        if (!s->has_price || s->price_low_uc_per_kwh != lo || s->price_high_uc_per_kwh != hi ||
            lo > hi || s->clearing_price_uc_per_kwh != lo + (hi - lo) / 2)
            FAIL("price %lld in [%lld, %lld], the rules give [%lld, %lld]",
                 (long long)s->clearing_price_uc_per_kwh, (long long)s->price_low_uc_per_kwh,
                 (long long)s->price_high_uc_per_kwh, (long long)lo, (long long)hi);
    } else if (s->has_price || s->clearing_price_uc_per_kwh || s->price_low_uc_per_kwh ||
               s->price_high_uc_per_kwh) {
        FAIL("a price without pay-as-clear volume");
    }
    if (p->mechanism == MKT_PAY_AS_BID && (rc = bid_limits(&b, t, nt, msg, cap)))
        goto out;

    /* Trades: exactly the reference list. */
    size_t nw = ref_trades(p, &b, si, ns, bi, nb, ids, local, sides, n,
                           s->clearing_price_uc_per_kwh, want);
    if (nt != nw)
        FAIL("%zu trades, the rules give %zu", nt, nw);
    for (size_t i = 0; i < nt; i++)
        if (memcmp(&t[i], &want[i], sizeof *t) != 0)
            FAIL("trade %zu: %llu->%llu %lld Wh @%lld (%lld, %lld); the rules give %llu->%llu "
                 "%lld Wh @%lld (%lld, %lld)",
                 i, (unsigned long long)t[i].seller, (unsigned long long)t[i].buyer,
                 (long long)t[i].energy_wh, (long long)t[i].price_uc_per_kwh,
                 (long long)t[i].amount_uc, (long long)t[i].fee_uc,
                 (unsigned long long)want[i].seller, (unsigned long long)want[i].buyer,
                 (long long)want[i].energy_wh, (long long)want[i].price_uc_per_kwh,
                 (long long)want[i].amount_uc, (long long)want[i].fee_uc);
    rc = balances(p, s, pr, np, t, nt, msg, cap);
out:
    free(b.u);
    free(si);
    free(bi);
    free(ids);
    free(local);
    free(sides);
    free(want);
    return rc;
}
