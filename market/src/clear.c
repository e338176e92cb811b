/*
 * The clearing engine: turns one interval's orders into local trades, grid legs and money.
 *
 * Both mechanisms share one allocation. Each step gets an effective price that folds the grid
 * in (a seller never takes less than the feed-in tariff, a buyer never pays more than retail
 * less the network fee), steps of one participant at one effective price become a "unit", the
 * units are sorted (sellers cheapest first, buyers dearest first, ties by participant id) and a
 * greedy walk matches the two curves, which gives the maximal volume. The one level that is
 * only partly taken is shared pro rata. Pricing and the pairing into bilateral trades are what
 * differ: pay-as-clear prices everything at the midpoint of the equilibrium interval, pay-as-bid
 * pairs dearest bids with cheapest asks at the buyer's effective bid. See docs/market-rules.md.
 */
#include "mgx/market.h"
#include "sort.h"

#include <stdlib.h>
#include <string.h>

/* One participant's energy at one effective price. */
typedef struct {
    int64_t energy_wh;
    int64_t price;
    int64_t accepted_wh;
    uint32_t rank; /* the participant's position in id order */
} unit;

struct mkt_clearing {
    size_t max_orders;
    size_t cap_orders, cap_units, cap_trades;
    /* per order */
    uint64_t *id_keys, *id_tmp_keys;
    uint32_t *rank_order, *id_tmp_vals; /* rank_order[r] = index into the caller's array */
    mkt_participant_result *parts;
    /* per unit */
    unit *units;
    uint64_t *keys, *tmp_keys;
    uint32_t *sorted, *tmp_vals, *tmp_vals2;
    size_t n_sell_units, n_buy_units;
    /* result */
    mkt_trade *trades;
    size_t n_parts, n_trades;
    mkt_summary sum;
};

typedef struct {
    int64_t lo; /* feed-in: no seller takes less */
    int64_t hi; /* retail - fee: no buyer pays more (before the fee) */
    int tradable;
} price_band;

static int add_checked(int64_t *acc, int64_t v)
{
    return __builtin_add_overflow(*acc, v, acc) ? MKT_E_OVERFLOW : MKT_OK;
}

static int grow(void **p, size_t need, size_t elem)
{
    void *q = realloc(*p, need * elem);
    if (!q)
        return MKT_E_NOMEM;
    *p = q;
    return MKT_OK;
}

static int ensure_orders(mkt_clearing *c, size_t n)
{
    if (n <= c->cap_orders)
        return MKT_OK;
    if (grow((void **)&c->id_keys, n, sizeof(uint64_t)) ||
        grow((void **)&c->id_tmp_keys, n, sizeof(uint64_t)) ||
        grow((void **)&c->rank_order, n, sizeof(uint32_t)) ||
        grow((void **)&c->id_tmp_vals, n, sizeof(uint32_t)) ||
        grow((void **)&c->parts, n, sizeof(mkt_participant_result)))
        return MKT_E_NOMEM;
    c->cap_orders = n;
    return MKT_OK;
}

static int ensure_units(mkt_clearing *c, size_t n)
{
    if (n <= c->cap_units)
        return MKT_OK;
    if (grow((void **)&c->units, n, sizeof(unit)) ||
        grow((void **)&c->keys, n, sizeof(uint64_t)) ||
        grow((void **)&c->tmp_keys, n, sizeof(uint64_t)) ||
        grow((void **)&c->sorted, n, sizeof(uint32_t)) ||
        grow((void **)&c->tmp_vals, n, sizeof(uint32_t)) ||
        grow((void **)&c->tmp_vals2, n, sizeof(uint32_t)) ||
        grow((void **)&c->trades, n, sizeof(mkt_trade)))
        return MKT_E_NOMEM;
    c->cap_units = n;
    c->cap_trades = n;
    return MKT_OK;
}

mkt_clearing *mkt_clearing_new(size_t max_orders)
{
    if (max_orders == 0 || max_orders > UINT32_MAX / MKT_MAX_STEPS)
        return NULL;
    mkt_clearing *c = calloc(1, sizeof *c);
    if (c)
        c->max_orders = max_orders;
    return c;
}

void mkt_clearing_free(mkt_clearing *c)
{
    if (!c)
        return;
    free(c->id_keys);
    free(c->id_tmp_keys);
    free(c->rank_order);
    free(c->id_tmp_vals);
    free(c->parts);
    free(c->units);
    free(c->keys);
    free(c->tmp_keys);
    free(c->sorted);
    free(c->tmp_vals);
    free(c->tmp_vals2);
    free(c->trades);
    free(c);
}

static int check_params(const mkt_params *p)
{
    if (p->mechanism != MKT_PAY_AS_CLEAR && p->mechanism != MKT_PAY_AS_BID)
        return MKT_E_INVAL;
    if (p->feed_in_uc_per_kwh < 0 || p->feed_in_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH ||
        p->retail_uc_per_kwh < 0 || p->retail_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH ||
        p->network_fee_uc_per_kwh < 0 || p->network_fee_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH)
        return MKT_E_PRICE;
    if (p->feed_in_uc_per_kwh > p->retail_uc_per_kwh)
        return MKT_E_TARIFFS;
    return MKT_OK;
}

/* Checks every order on its own and that the book's totals fit; counts steps. */
static int validate(const mkt_order *orders, size_t n, size_t *n_steps, mkt_error_at *at)
{
    int64_t sold = 0, bought = 0;
    size_t steps = 0;
    for (size_t i = 0; i < n; i++) {
        const mkt_order *o = &orders[i];
        at->order_index = i;
        at->step_index = -1;
        if (o->side != MKT_BUY && o->side != MKT_SELL)
            return MKT_E_INVAL;
        if (o->n_steps == 0 || o->n_steps > MKT_MAX_STEPS)
            return MKT_E_STEPS;
        for (uint32_t s = 0; s < o->n_steps; s++) {
            at->step_index = (int)s;
            if (o->steps[s].energy_wh <= 0 || o->steps[s].energy_wh > MKT_ENERGY_MAX_WH)
                return MKT_E_ENERGY;
            if (o->steps[s].price_uc_per_kwh < 0 ||
                o->steps[s].price_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH)
                return MKT_E_PRICE;
            if (add_checked(o->side == MKT_SELL ? &sold : &bought, o->steps[s].energy_wh))
                return MKT_E_OVERFLOW;
        }
        steps += o->n_steps;
    }
    *n_steps = steps;
    return MKT_OK;
}

/* Orders the participants by id (rank) and rejects a participant seen twice. */
static int rank_orders(mkt_clearing *c, const mkt_order *orders, size_t n, mkt_error_at *at)
{
    int sorted = 1;
    for (size_t i = 0; i < n; i++) {
        c->id_keys[i] = orders[i].participant;
        c->rank_order[i] = (uint32_t)i;
        if (i > 0 && orders[i].participant <= orders[i - 1].participant)
            sorted = 0;
    }
    if (!sorted)
        mkt__radix_sort(c->id_keys, c->rank_order, n, c->id_tmp_keys, c->id_tmp_vals);
    for (size_t r = 1; r < n; r++) {
        if (c->id_keys[r] != c->id_keys[r - 1])
            continue;
        const mkt_order *a = &orders[c->rank_order[r - 1]], *b = &orders[c->rank_order[r]];
        at->order_index = c->rank_order[r];
        at->step_index = -1;
        return a->side == b->side ? MKT_E_DUPLICATE : MKT_E_BOTH_SIDES;
    }
    for (size_t r = 0; r < n; r++) {
        const mkt_order *o = &orders[c->rank_order[r]];
        mkt_participant_result *pr = &c->parts[r];
        memset(pr, 0, sizeof *pr);
        pr->participant = o->participant;
        pr->side = o->side;
        for (uint32_t s = 0; s < o->n_steps; s++)
            pr->offered_wh += o->steps[s].energy_wh; /* <= 16 TWh, cannot overflow */
    }
    c->n_parts = n;
    return MKT_OK;
}

static int64_t effective_price(const price_band *band, mkt_side side, int64_t limit)
{
    if (side == MKT_SELL)
        return limit < band->lo ? band->lo : limit;
    return limit > band->hi ? band->hi : limit;
}

/* Appends one order's units: its steps by effective price, equal prices merged, steps that can
 * never beat the grid dropped. */
static size_t add_units(mkt_clearing *c, const price_band *band, const mkt_order *o,
                        uint32_t rank, size_t at)
{
    mkt_step st[MKT_MAX_STEPS];
    uint32_t n = 0;
    for (uint32_t s = 0; s < o->n_steps; s++) {
        int64_t p = effective_price(band, o->side, o->steps[s].price_uc_per_kwh);
        if (p < band->lo || p > band->hi)
            continue;
        uint32_t k = n++;
        while (k > 0 && st[k - 1].price_uc_per_kwh > p) {
            st[k] = st[k - 1];
            k--;
        }
        st[k].price_uc_per_kwh = p;
        st[k].energy_wh = o->steps[s].energy_wh;
    }
    for (uint32_t s = 0; s < n; s++) {
        if (s > 0 && st[s].price_uc_per_kwh == c->units[at - 1].price) {
            c->units[at - 1].energy_wh += st[s].energy_wh;
            continue;
        }
        unit *u = &c->units[at++];
        u->energy_wh = st[s].energy_wh;
        u->price = st[s].price_uc_per_kwh;
        u->accepted_wh = 0;
        u->rank = rank;
    }
    return at;
}

/* Sorts units [first, first+n) into c->sorted[first..]: sellers by price ascending, buyers by
 * price descending, equal prices by rank (the stable sort keeps the rank order they were built
 * in). */
static void sort_side(mkt_clearing *c, const price_band *band, mkt_side side, size_t first,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t p = c->units[first + i].price;
        c->keys[first + i] = (uint64_t)(side == MKT_SELL ? p - band->lo : band->hi - p);
        c->sorted[first + i] = (uint32_t)(first + i);
    }
    mkt__radix_sort(c->keys + first, c->sorted + first, n, c->tmp_keys, c->tmp_vals);
}

static void build_book(mkt_clearing *c, const price_band *band, const mkt_order *orders)
{
    size_t at = 0;
    for (int pass = 0; pass < 2 && band->tradable; pass++) {
        mkt_side side = pass == 0 ? MKT_SELL : MKT_BUY;
        size_t first = at;
        for (size_t r = 0; r < c->n_parts; r++) {
            const mkt_order *o = &orders[c->rank_order[r]];
            if (o->side == side)
                at = add_units(c, band, o, (uint32_t)r, at);
        }
        if (side == MKT_SELL)
            c->n_sell_units = at - first;
        else
            c->n_buy_units = at - first;
        sort_side(c, band, side, first, at - first);
    }
}

/* A cursor over one side's sorted units, a price level at a time. */
typedef struct {
    const uint32_t *idx;
    size_t n;
    size_t pos, end; /* current level [pos, end) */
    int64_t level_total, remaining;
} cursor;

static void level_start(cursor *k, const unit *units)
{
    k->end = k->pos;
    k->level_total = 0;
    while (k->end < k->n && units[k->idx[k->end]].price == units[k->idx[k->pos]].price) {
        k->level_total += units[k->idx[k->end]].energy_wh;
        k->end++;
    }
    k->remaining = k->level_total;
}

static void level_accept_all(cursor *k, unit *units)
{
    for (size_t i = k->pos; i < k->end; i++)
        units[k->idx[i]].accepted_wh = units[k->idx[i]].energy_wh;
    k->pos = k->end;
    if (k->pos < k->n)
        level_start(k, units);
}

/* Shares x Wh of a level of total Wh pro rata: floors first, then the leftover Wh one each by
 * largest remainder, ties by participant id (the level is already in rank order and the radix
 * sort is stable). */
static void prorate(mkt_clearing *c, const cursor *k, int64_t x)
{
    size_t n = k->end - k->pos;
    int64_t left = x;
    for (size_t i = 0; i < n; i++) {
        unit *u = &c->units[k->idx[k->pos + i]];
        __extension__ unsigned __int128 prod = (unsigned __int128)x * (uint64_t)u->energy_wh;
        u->accepted_wh = (int64_t)(prod / (uint64_t)k->level_total);
        left -= u->accepted_wh;
        /* descending remainder as an ascending key */
        c->keys[i] = (uint64_t)(k->level_total - 1) - (uint64_t)(prod % (uint64_t)k->level_total);
        c->tmp_vals2[i] = k->idx[k->pos + i];
    }
    if (left == 0)
        return;
    mkt__radix_sort(c->keys, c->tmp_vals2, n, c->tmp_keys, c->tmp_vals);
    for (size_t i = 0; i < (size_t)left; i++)
        c->units[c->tmp_vals2[i]].accepted_wh++;
}

typedef struct {
    int64_t matched;
    int64_t acc_sell_max, acc_buy_min; /* prices of the last accepted levels */
    int has_rej_sell, has_rej_buy;
    int64_t rej_sell_min, rej_buy_max; /* prices of the first rejected levels */
} match_result;

static match_result match(mkt_clearing *c)
{
    match_result m = {0};
    cursor s = {c->sorted, c->n_sell_units, 0, 0, 0, 0};
    cursor b = {c->sorted + c->n_sell_units, c->n_buy_units, 0, 0, 0, 0};
    unit *u = c->units;
    if (s.n)
        level_start(&s, u);
    if (b.n)
        level_start(&b, u);
    while (s.pos < s.n && b.pos < b.n && u[s.idx[s.pos]].price <= u[b.idx[b.pos]].price) {
        int64_t take = s.remaining < b.remaining ? s.remaining : b.remaining;
        m.matched += take;
        s.remaining -= take;
        b.remaining -= take;
        m.acc_sell_max = u[s.idx[s.pos]].price;
        m.acc_buy_min = u[b.idx[b.pos]].price;
        if (s.remaining == 0)
            level_accept_all(&s, u);
        if (b.remaining == 0)
            level_accept_all(&b, u);
    }
    if (s.pos < s.n && s.remaining < s.level_total)
        prorate(c, &s, s.level_total - s.remaining);
    if (b.pos < b.n && b.remaining < b.level_total)
        prorate(c, &b, b.level_total - b.remaining);
    /* A partly taken level is also the first rejected one: that pins the price to it. */
    m.has_rej_sell = s.pos < s.n;
    m.rej_sell_min = m.has_rej_sell ? u[s.idx[s.pos]].price : 0;
    m.has_rej_buy = b.pos < b.n;
    m.rej_buy_max = m.has_rej_buy ? u[b.idx[b.pos]].price : 0;
    return m;
}

static void set_price(mkt_summary *sum, const price_band *band, const match_result *m)
{
    int64_t lo = band->lo, hi = band->hi;
    if (m->acc_sell_max > lo)
        lo = m->acc_sell_max;
    if (m->has_rej_buy && m->rej_buy_max > lo)
        lo = m->rej_buy_max;
    if (m->acc_buy_min < hi)
        hi = m->acc_buy_min;
    if (m->has_rej_sell && m->rej_sell_min < hi)
        hi = m->rej_sell_min;
    sum->has_price = 1;
    sum->price_low_uc_per_kwh = lo;
    sum->price_high_uc_per_kwh = hi;
    sum->clearing_price_uc_per_kwh = lo + (hi - lo) / 2;
}

static int add_trade(mkt_clearing *c, const mkt_params *p, uint32_t seller_rank,
                     uint32_t buyer_rank, int64_t energy_wh, int64_t price)
{
    mkt_trade *t = &c->trades[c->n_trades++];
    mkt_participant_result *s = &c->parts[seller_rank], *b = &c->parts[buyer_rank];
    t->seller = s->participant;
    t->buyer = b->participant;
    t->energy_wh = energy_wh;
    t->price_uc_per_kwh = price;
    if (mkt_amount_uc(energy_wh, price, &t->amount_uc) ||
        mkt_amount_uc(energy_wh, p->network_fee_uc_per_kwh, &t->fee_uc) ||
        add_checked(&s->local_received_uc, t->amount_uc) ||
        add_checked(&b->local_paid_uc, t->amount_uc) ||
        add_checked(&b->fee_paid_uc, t->fee_uc) ||
        add_checked(&c->sum.local_value_uc, t->amount_uc) ||
        add_checked(&c->sum.fees_uc, t->fee_uc))
        return MKT_E_OVERFLOW;
    return MKT_OK;
}

/* Pay-as-clear pairs sellers and buyers in id order: every pair trades at the same price, so
 * the simplest canonical order is also the one with the fewest trades. */
static int trades_uniform(mkt_clearing *c, const mkt_params *p, int64_t price)
{
    size_t i = 0, j = 0;
    int64_t s_left = 0, b_left = 0;
    for (;;) {
        while (s_left == 0 && i < c->n_parts)
            if (c->parts[i++].side == MKT_SELL)
                s_left = c->parts[i - 1].local_sold_wh;
        while (b_left == 0 && j < c->n_parts)
            if (c->parts[j++].side == MKT_BUY)
                b_left = c->parts[j - 1].local_bought_wh;
        if (s_left == 0 || b_left == 0)
            return MKT_OK;
        int64_t e = s_left < b_left ? s_left : b_left;
        int rc = add_trade(c, p, (uint32_t)(i - 1), (uint32_t)(j - 1), e, price);
        if (rc)
            return rc;
        s_left -= e;
        b_left -= e;
    }
}

/* Pay-as-bid pairs the dearest bids with the cheapest asks, each at the bid. */
static int trades_by_bid(mkt_clearing *c, const mkt_params *p)
{
    const uint32_t *s_idx = c->sorted, *b_idx = c->sorted + c->n_sell_units;
    size_t i = 0, j = 0;
    int64_t s_left = 0, b_left = 0;
    for (;;) {
        while (s_left == 0 && i < c->n_sell_units)
            s_left = c->units[s_idx[i++]].accepted_wh;
        while (b_left == 0 && j < c->n_buy_units)
            b_left = c->units[b_idx[j++]].accepted_wh;
        if (s_left == 0 || b_left == 0)
            return MKT_OK;
        const unit *su = &c->units[s_idx[i - 1]], *bu = &c->units[b_idx[j - 1]];
        int64_t e = s_left < b_left ? s_left : b_left;
        int rc = add_trade(c, p, su->rank, bu->rank, e, bu->price);
        if (rc)
            return rc;
        s_left -= e;
        b_left -= e;
    }
}

static int settle_grid(mkt_clearing *c, const mkt_params *p)
{
    mkt_summary *sum = &c->sum;
    for (size_t r = 0; r < c->n_parts; r++) {
        mkt_participant_result *pr = &c->parts[r];
        int rc;
        if (pr->side == MKT_SELL) {
            pr->grid_sold_wh = pr->offered_wh - pr->local_sold_wh;
            rc = mkt_amount_uc(pr->grid_sold_wh, p->feed_in_uc_per_kwh, &pr->grid_received_uc);
            if (rc || add_checked(&sum->grid_sold_wh, pr->grid_sold_wh) ||
                add_checked(&sum->grid_received_uc, pr->grid_received_uc))
                return MKT_E_OVERFLOW;
        } else {
            pr->grid_bought_wh = pr->offered_wh - pr->local_bought_wh;
            rc = mkt_amount_uc(pr->grid_bought_wh, p->retail_uc_per_kwh, &pr->grid_paid_uc);
            if (rc || add_checked(&sum->grid_bought_wh, pr->grid_bought_wh) ||
                add_checked(&sum->grid_paid_uc, pr->grid_paid_uc))
                return MKT_E_OVERFLOW;
        }
    }
    return MKT_OK;
}

static void credit_units(mkt_clearing *c)
{
    for (size_t i = 0; i < c->n_sell_units + c->n_buy_units; i++) {
        const unit *u = &c->units[i];
        mkt_participant_result *pr = &c->parts[u->rank];
        if (pr->side == MKT_SELL)
            pr->local_sold_wh += u->accepted_wh;
        else
            pr->local_bought_wh += u->accepted_wh;
    }
}

static void reset(mkt_clearing *c, const mkt_params *params)
{
    c->n_parts = 0;
    c->n_trades = 0;
    c->n_sell_units = 0;
    c->n_buy_units = 0;
    memset(&c->sum, 0, sizeof c->sum);
    if (params)
        c->sum.mechanism = params->mechanism;
}

int mkt_clear(mkt_clearing *c, const mkt_params *params, const mkt_order *orders, size_t n_orders,
              mkt_error_at *at)
{
    mkt_error_at scratch_at;
    if (!at)
        at = &scratch_at;
    at->order_index = MKT_AT_BOOK;
    at->step_index = -1;
    if (!c || !params || (!orders && n_orders))
        return MKT_E_INVAL;
    reset(c, params);
    int rc = check_params(params);
    size_t n_steps = 0;
    if (rc)
        return rc;
    if (n_orders > c->max_orders)
        return MKT_E_TOO_MANY;
    if ((rc = validate(orders, n_orders, &n_steps, at)) || (rc = ensure_orders(c, n_orders)) ||
        (rc = ensure_units(c, n_steps > 0 ? n_steps : 1)) ||
        (rc = rank_orders(c, orders, n_orders, at)))
        goto fail;
    /* Every order is valid on its own: a failure from here on (an amount or total overflowing)
     * belongs to the book, not to the step validate() looked at last. */
    at->order_index = MKT_AT_BOOK;
    at->step_index = -1;

    price_band band = {params->feed_in_uc_per_kwh,
                       params->retail_uc_per_kwh - params->network_fee_uc_per_kwh, 0};
    band.tradable = band.hi >= band.lo;
    build_book(c, &band, orders);
    match_result m = match(c);
    credit_units(c);
    c->sum.matched_wh = m.matched;
    if (params->mechanism == MKT_PAY_AS_CLEAR && m.matched > 0) {
        set_price(&c->sum, &band, &m);
        rc = trades_uniform(c, params, c->sum.clearing_price_uc_per_kwh);
    } else if (params->mechanism == MKT_PAY_AS_BID) {
        rc = trades_by_bid(c, params);
    }
    if (rc || (rc = settle_grid(c, params)))
        goto fail;
    return MKT_OK;
fail:
    reset(c, params);
    return rc;
}

const mkt_summary *mkt_clearing_summary(const mkt_clearing *c)
{
    return &c->sum;
}

const mkt_trade *mkt_clearing_trades(const mkt_clearing *c, size_t *n_trades)
{
    if (n_trades)
        *n_trades = c->n_trades;
    return c->trades;
}

const mkt_participant_result *mkt_clearing_participants(const mkt_clearing *c,
                                                        size_t *n_participants)
{
    if (n_participants)
        *n_participants = c->n_parts;
    return c->parts;
}
