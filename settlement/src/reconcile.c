/*
 * Reconciliation of an interval's trades against metered energy (mgx/reconcile.h).
 *
 * The steps: validate; give every participant (from trades and meters) a position, ascending
 * by id; cap each seller's trades pro rata to its export, then each buyer's (already capped)
 * trades pro rata to its import; price the delivered energy as a fraction of the contract; put
 * each participant's remaining metered energy against the grid. Pro rata is the market's rule:
 * floor shares, then the leftover Wh one each to the largest remainders, ties to the lowest
 * trade index. All arithmetic is checked integer arithmetic, products in 128 bits.
 */
#include "mgx/reconcile.h"

#include <stdlib.h>
#include <string.h>

struct stl_reconciler {
    size_t max_trades;
    size_t max_meters;
    size_t max_positions;
    stl_settled_trade *trades;
    stl_position *positions;
    stl_totals totals;
    size_t n_trades;
    size_t n_positions;
    /* scratch */
    uint64_t *ids;        /* max_positions */
    uint32_t *seller_pos; /* per trade */
    uint32_t *buyer_pos;  /* per trade */
    size_t *meter_of;     /* per position: meter index or SIZE_MAX */
    uint32_t *offsets;    /* max_positions + 1 */
    uint32_t *group;      /* max_trades: trade indices grouped by position */
    struct share {
        uint64_t rem;
        uint32_t trade;
    } *shares; /* max_trades */
};

const char *stl_pos_status_name(stl_pos_status s)
{
    switch (s) {
    case STL_POS_GOOD:
        return "good";
    case STL_POS_FLAGGED:
        return "flagged";
    case STL_POS_MISSING:
        return "missing";
    case STL_POS_ESTIMATED:
        return "estimated";
    case STL_POS_HELD:
        return "held";
    default:
        return "unknown";
    }
}

int stl_muldiv(int64_t a, int64_t b, int64_t c, int64_t *out)
{
    if (a < 0 || b < 0 || c <= 0 || !out)
        return STL_E_INVAL;
    unsigned __int128 q = (unsigned __int128)a * (unsigned __int128)b / (unsigned __int128)c;
    if (q > (unsigned __int128)INT64_MAX)
        return STL_E_OVERFLOW;
    *out = (int64_t)q;
    return STL_OK;
}

/* The reconciler's arrays, listed once for allocating and freeing: where each pointer lives,
 * how many elements (at least 1, so calloc never returns NULL for an empty size) and their size. */
typedef struct {
    void **p;
    size_t n, elem;
} array_ref;

#define N_ARRAYS 9

static void arrays_of(stl_reconciler *r, array_ref a[N_ARRAYS])
{
    size_t nt = r->max_trades ? r->max_trades : 1, np = r->max_positions ? r->max_positions : 1;
    const array_ref t[N_ARRAYS] = {
        {(void **)&r->trades, nt, sizeof *r->trades},
        {(void **)&r->positions, np, sizeof *r->positions},
        {(void **)&r->ids, np, sizeof *r->ids},
        {(void **)&r->seller_pos, nt, sizeof *r->seller_pos},
        {(void **)&r->buyer_pos, nt, sizeof *r->buyer_pos},
        {(void **)&r->meter_of, np, sizeof *r->meter_of},
        {(void **)&r->offsets, np + 1, sizeof *r->offsets},
        {(void **)&r->group, nt, sizeof *r->group},
        {(void **)&r->shares, nt, sizeof *r->shares},
    };
    memcpy(a, t, sizeof t);
}

stl_reconciler *stl_reconciler_new(size_t max_trades, size_t max_meters)
{
    if (max_trades > STL_MAX_TRADES || max_meters > STL_MAX_PARTICIPANTS)
        return NULL;
    stl_reconciler *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->max_trades = max_trades;
    r->max_meters = max_meters;
    r->max_positions = 2 * max_trades + max_meters;
    array_ref a[N_ARRAYS];
    arrays_of(r, a);
    for (size_t i = 0; i < N_ARRAYS; i++) {
        if (!(*a[i].p = calloc(a[i].n, a[i].elem))) {
            stl_reconciler_free(r);
            return NULL;
        }
    }
    return r;
}

void stl_reconciler_free(stl_reconciler *r)
{
    if (!r)
        return;
    array_ref a[N_ARRAYS];
    arrays_of(r, a);
    for (size_t i = 0; i < N_ARRAYS; i++)
        free(*a[i].p);
    free(r);
}

const stl_settled_trade *stl_reconciled_trades(const stl_reconciler *r, size_t *n)
{
    if (n)
        *n = r ? r->n_trades : 0;
    return r ? r->trades : NULL;
}

const stl_position *stl_reconciled_positions(const stl_reconciler *r, size_t *n)
{
    if (n)
        *n = r ? r->n_positions : 0;
    return r ? r->positions : NULL;
}

const stl_totals *stl_reconciled_totals(const stl_reconciler *r)
{
    return r ? &r->totals : NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Position index of participant id; the id is known to be present. */
static uint32_t pos_of(const stl_reconciler *r, uint64_t id)
{
    size_t lo = 0, hi = r->n_positions;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->ids[mid] <= id)
            lo = mid;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

static int check_trade(const mkt_trade *t, const stl_tariffs *tf)
{
    if (t->seller == t->buyer || t->energy_wh < 1 || t->energy_wh > MKT_ENERGY_MAX_WH ||
        t->price_uc_per_kwh < 0 || t->price_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH)
        return STL_E_TRADE;
    int64_t amount, fee;
    if (mkt_amount_uc_inline(t->energy_wh, t->price_uc_per_kwh, &amount) != MKT_OK ||
        mkt_amount_uc_inline(t->energy_wh, tf->network_fee_uc_per_kwh, &fee) != MKT_OK)
        return STL_E_TRADE;
    /* the fee is at least the flat rate's; above it are the level fees and congestion rent of
     * a grid-aware market (mkt_clear_grid), which go to the network as the fee does and which
     * only a re-clearing with the topology can check (docs/settlement-rules.md) */
    if (amount != t->amount_uc || t->fee_uc < fee)
        return STL_E_TRADE;
    int64_t sum;
    if (__builtin_add_overflow(amount, t->fee_uc, &sum))
        return STL_E_TRADE;
    return STL_OK;
}

/* Collects, sorts and deduplicates the participant ids; maps trades and meters onto them. */
static int build_positions(stl_reconciler *r, const mkt_trade *trades, size_t nt,
                           const stl_metered *meters, size_t nm, stl_error_at *at)
{
    size_t n = 0;
    for (size_t i = 0; i < nt; i++) {
        r->ids[n++] = trades[i].seller;
        r->ids[n++] = trades[i].buyer;
    }
    for (size_t i = 0; i < nm; i++)
        r->ids[n++] = meters[i].participant;
    if (n)
        qsort(r->ids, n, sizeof *r->ids, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || r->ids[u - 1] != r->ids[i])
            r->ids[u++] = r->ids[i];
    r->n_positions = u;
    for (size_t p = 0; p < u; p++)
        r->meter_of[p] = SIZE_MAX;
    for (size_t i = 0; i < nm; i++) {
        uint32_t p = pos_of(r, meters[i].participant);
        if (r->meter_of[p] != SIZE_MAX) {
            at->meter_index = i;
            return STL_E_METER;
        }
        r->meter_of[p] = i;
    }
    for (size_t i = 0; i < nt; i++) {
        r->seller_pos[i] = pos_of(r, trades[i].seller);
        r->buyer_pos[i] = pos_of(r, trades[i].buyer);
    }
    for (size_t p = 0; p < u; p++) {
        stl_position *ps = &r->positions[p];
        memset(ps, 0, sizeof *ps);
        ps->participant = r->ids[p];
        if (r->meter_of[p] == SIZE_MAX) {
            ps->status = STL_POS_MISSING;
            continue;
        }
        const stl_metered *m = &meters[r->meter_of[p]];
        ps->import_wh = m->import_wh;
        ps->export_wh = m->export_wh;
        ps->quality = m->quality;
        ps->tier = m->tier;
        ps->status = m->held      ? STL_POS_HELD
                     : m->quality ? STL_POS_FLAGGED
                                  : STL_POS_GOOD;
    }
    return STL_OK;
}

/* Groups trade indices by the position in pos_of_trade (a counting sort, stable: each group
 * keeps ascending trade index). */
static void group_by(stl_reconciler *r, const uint32_t *pos_of_trade)
{
    size_t np = r->n_positions, nt = r->n_trades;
    memset(r->offsets, 0, (np + 1) * sizeof *r->offsets);
    for (size_t i = 0; i < nt; i++)
        r->offsets[pos_of_trade[i] + 1]++;
    for (size_t p = 0; p < np; p++)
        r->offsets[p + 1] += r->offsets[p];
    for (size_t i = 0; i < nt; i++)
        r->group[r->offsets[pos_of_trade[i]]++] = (uint32_t)i;
    /* offsets[p] now holds the end of group p; shift back to starts */
    for (size_t p = np; p > 0; p--)
        r->offsets[p] = r->offsets[p - 1];
    r->offsets[0] = 0;
}

static int cmp_share(const void *a, const void *b)
{
    const struct share *x = a, *y = b;
    if (x->rem != y->rem)
        return x->rem < y->rem ? 1 : -1; /* largest remainder first */
    return (x->trade > y->trade) - (x->trade < y->trade);
}

/* Scales the delivered energy of the trades in group [b, e) down to cap (pro rata, largest
 * remainder) when their sum exceeds it. */
static void cap_group(stl_reconciler *r, uint32_t b, uint32_t e, int64_t cap)
{
    int64_t sum = 0;
    for (uint32_t k = b; k < e; k++)
        sum += r->trades[r->group[k]].delivered_wh; /* <= 10^6 * 10^12: no overflow */
    if (sum <= cap)
        return;
    int64_t given = 0;
    for (uint32_t k = b; k < e; k++) {
        stl_settled_trade *t = &r->trades[r->group[k]];
        unsigned __int128 prod = (unsigned __int128)t->delivered_wh * (uint64_t)cap;
        t->delivered_wh = (int64_t)(prod / (uint64_t)sum);
        r->shares[k - b].rem = (uint64_t)(prod % (uint64_t)sum);
        r->shares[k - b].trade = r->group[k];
        given += t->delivered_wh;
    }
    int64_t left = cap - given; /* < e - b */
    if (left <= 0)
        return;
    qsort(r->shares, e - b, sizeof *r->shares, cmp_share);
    for (int64_t k = 0; k < left; k++)
        r->trades[r->shares[k].trade].delivered_wh++;
}

static int64_t sell_cap(const stl_position *p)
{
    return p->status == STL_POS_GOOD ? p->export_wh : 0;
}

static int64_t buy_cap(const stl_position *p)
{
    return p->status == STL_POS_GOOD ? p->import_wh : 0;
}

#define ADD(dst, v)                                                                               \
    do {                                                                                          \
        if (__builtin_add_overflow((dst), (v), &(dst)))                                           \
            return STL_E_OVERFLOW;                                                                \
    } while (0)

static int price_trade(stl_settled_trade *t)
{
    int64_t c = t->contracted_wh, d = t->delivered_wh;
    int64_t total = t->amount_uc + t->contract_fee_uc; /* checked in check_trade */
    if (d == c) {
        t->received_uc = t->amount_uc;
        t->fee_uc = t->contract_fee_uc;
        t->paid_uc = total;
    } else if (stl_muldiv(t->amount_uc, d, c, &t->received_uc) ||
               stl_muldiv(t->contract_fee_uc, d, c, &t->fee_uc) ||
               stl_muldiv(total, d, c, &t->paid_uc)) {
        return STL_E_OVERFLOW;
    }
    t->rounding_uc = t->paid_uc - t->received_uc - t->fee_uc;
    return STL_OK;
}

static int settle_positions(stl_reconciler *r, const stl_tariffs *tf)
{
    stl_totals *tot = &r->totals;
    for (size_t i = 0; i < r->n_trades; i++) {
        const stl_settled_trade *t = &r->trades[i];
        stl_position *s = &r->positions[r->seller_pos[i]], *b = &r->positions[r->buyer_pos[i]];
        ADD(s->contracted_sold_wh, t->contracted_wh);
        ADD(b->contracted_bought_wh, t->contracted_wh);
        ADD(s->local_sold_wh, t->delivered_wh);
        ADD(b->local_bought_wh, t->delivered_wh);
        ADD(s->local_received_uc, t->received_uc);
        ADD(b->local_paid_uc, t->paid_uc);
        ADD(b->fee_paid_uc, t->fee_uc);
        ADD(tot->contracted_wh, t->contracted_wh);
        ADD(tot->delivered_wh, t->delivered_wh);
        ADD(tot->paid_uc, t->paid_uc);
        ADD(tot->received_uc, t->received_uc);
        ADD(tot->fees_uc, t->fee_uc);
        ADD(tot->rounding_uc, t->rounding_uc);
    }
    for (size_t p = 0; p < r->n_positions; p++) {
        stl_position *ps = &r->positions[p];
        if (ps->status != STL_POS_GOOD) {
            tot->n_held++;
            continue;
        }
        ps->grid_bought_wh = ps->import_wh - ps->local_bought_wh; /* >= 0 by the caps */
        ps->grid_sold_wh = ps->export_wh - ps->local_sold_wh;
        if (mkt_amount_uc_inline(ps->grid_bought_wh, tf->retail_uc_per_kwh, &ps->grid_paid_uc) ||
            mkt_amount_uc_inline(ps->grid_sold_wh, tf->feed_in_uc_per_kwh, &ps->grid_received_uc))
            return STL_E_OVERFLOW;
        ADD(tot->grid_bought_wh, ps->grid_bought_wh);
        ADD(tot->grid_sold_wh, ps->grid_sold_wh);
        ADD(tot->grid_paid_uc, ps->grid_paid_uc);
        ADD(tot->grid_received_uc, ps->grid_received_uc);
        ADD(tot->import_wh, ps->import_wh);
        ADD(tot->export_wh, ps->export_wh);
    }
    return STL_OK;
}

static void clear_result(stl_reconciler *r)
{
    r->n_trades = 0;
    r->n_positions = 0;
    memset(&r->totals, 0, sizeof r->totals);
}

int stl_reconcile(stl_reconciler *r, const stl_tariffs *tf, const mkt_trade *trades, size_t nt,
                  const stl_metered *meters, size_t nm, stl_error_at *at)
{
    stl_error_at dummy;
    if (!at)
        at = &dummy;
    at->trade_index = at->meter_index = SIZE_MAX;
    if (!r)
        return STL_E_INVAL;
    clear_result(r);
    if (!tf || (nt && !trades) || (nm && !meters))
        return STL_E_INVAL;
    if (tf->feed_in_uc_per_kwh < 0 || tf->retail_uc_per_kwh < tf->feed_in_uc_per_kwh ||
        tf->retail_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH || tf->network_fee_uc_per_kwh < 0 ||
        tf->network_fee_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH)
        return STL_E_INVAL;
    if (nt > r->max_trades || nm > r->max_meters)
        return STL_E_TOO_MANY;
    for (size_t i = 0; i < nt; i++)
        if (check_trade(&trades[i], tf)) {
            at->trade_index = i;
            return STL_E_TRADE;
        }
    for (size_t i = 0; i < nm; i++)
        if (meters[i].import_wh < 0 || meters[i].import_wh > STL_METER_MAX_WH ||
            meters[i].export_wh < 0 || meters[i].export_wh > STL_METER_MAX_WH ||
            meters[i].tier > STL_TIER_MAX || meters[i].held > 1) {
            at->meter_index = i;
            return STL_E_METER;
        }
    int rc = build_positions(r, trades, nt, meters, nm, at);
    if (rc)
        goto fail;
    r->n_trades = nt;
    for (size_t i = 0; i < nt; i++) {
        stl_settled_trade *t = &r->trades[i];
        memset(t, 0, sizeof *t);
        t->seller = trades[i].seller;
        t->buyer = trades[i].buyer;
        t->contracted_wh = t->delivered_wh = trades[i].energy_wh;
        t->price_uc_per_kwh = trades[i].price_uc_per_kwh;
        t->amount_uc = trades[i].amount_uc;
        t->contract_fee_uc = trades[i].fee_uc;
    }
    /* Sellers first: energy not exported was never delivered to anyone. */
    group_by(r, r->seller_pos);
    for (size_t p = 0; p < r->n_positions; p++)
        cap_group(r, r->offsets[p], r->offsets[p + 1], sell_cap(&r->positions[p]));
    group_by(r, r->buyer_pos);
    for (size_t p = 0; p < r->n_positions; p++)
        cap_group(r, r->offsets[p], r->offsets[p + 1], buy_cap(&r->positions[p]));
    for (size_t i = 0; i < nt; i++)
        if ((rc = price_trade(&r->trades[i])) != STL_OK)
            goto fail;
    if ((rc = settle_positions(r, tf)) != STL_OK)
        goto fail;
    r->totals.n_trades = (uint32_t)nt;
    r->totals.n_positions = (uint32_t)r->n_positions;
    return STL_OK;
fail:
    clear_result(r);
    return rc;
}
