/*
 * Grid-aware clearing: mkt_clear within the limits of a radial tree of feeders.
 *
 * First the copper plate: mkt_clear on the whole book. The net energy over an edge depends
 * only on how much each participant below it sold and bought locally, not on who traded with
 * whom, so if that allocation fits every limit it is also the best one under the limits and
 * the result is mkt_clear's, copied. Otherwise the market is solved again as a competitive
 * equilibrium on the tree (the allocation that maximises the gains from local trade under the
 * limits, and among those the volume; see docs/market-rules.md, "Grid-aware clearing"):
 *
 *  - Prices are searched on a refined integer scale m = 3p + d, on which a sell step at p sits
 *    at 3p - 1 and a buy step at 3p + 1. That is the market's tie rule (a seller and a buyer at
 *    the same price trade) made strict, and it makes every allocation that clears at a refined
 *    price one of maximal volume.
 *  - At a refined price m each subtree has an interval of possible net exports, [tmin, tmax]:
 *    its own steps below m sell, above m buy, those exactly at m may go either way, plus each
 *    child's interval clipped to the child edge's limits. The intervals grow with m and the
 *    upper end at m is the lower end at m + 1, so a target export is met on an interval of
 *    prices, found by bisection.
 *  - Top down: the root's price makes its net zero; a child whose interval at its parent's
 *    price misses its edge's limits is held at the limit and gets its own price, at which its
 *    subtree exports exactly the limit; otherwise it shares its parent's price and zone.
 *  - The energy at each node is then split between the flexible parts (steps exactly at the
 *    price, children of the same zone) pro rata, remainders to the largest, ties to the
 *    earliest, and within a price level by seat as in mkt_clear.
 *
 * Node counts are a community's feeders (tens to thousands), so the passes are simple: each
 * price evaluation walks the units and nodes of one subtree once.
 */
#include "mgx/topology.h"
#include "params.h"

#include <stdlib.h>
#include <string.h>

/* One participant's energy at one effective price. */
typedef struct {
    uint64_t seat; /* tie key >> 32, then the id decides */
    uint64_t id;
    uint32_t rank; /* index into the participant records */
    uint32_t node;
    mkt_side side;
    int64_t price; /* effective, uc/kWh */
    int64_t m;     /* refined: 3 * price - 1 for a sell, 3 * price + 1 for a buy */
    int64_t energy_wh;
    int64_t accepted_wh;
} gunit;

struct mkt_grid_clearing {
    mkt_clearing *c;
    size_t max_orders;
    /* per node */
    size_t n_nodes, cap_nodes;
    int64_t *nmin, *nmax, *tmin, *tmax; /* own and subtree intervals at the last evaluation */
    int64_t *m_node, *x_node;          /* refined price, target export */
    int64_t *rmin, *rmax;              /* a same-zone child's range at its parent's price */
    uint8_t *fixed;
    uint8_t *in_sub; /* the subtree of the last evaluation */
    size_t *unit_start; /* units of node v: [unit_start[v], unit_start[v + 1]) */
    mkt_node_result *nodes;
    /* per attachment */
    mkt_attach *att;
    size_t cap_att;
    /* per participant, in id order */
    size_t n_parts;
    mkt_participant_result *parts;
    mkt_grid_participant *gparts;
    /* per unit */
    gunit *units;
    size_t n_units, cap_units;
    int64_t *w, *share; /* pro rata scratch, one per unit or node */
    int64_t *cand;      /* the refined prices where a subtree's interval can change */
    size_t n_cand;
    struct rem_item *rem;
    size_t cap_scratch;
    struct pair_item *pairs;
    size_t cap_pairs;
    /* per trade */
    mkt_trade *trades;
    int64_t *cong;
    size_t n_trades, cap_trades;
    mkt_summary sum;
    mkt_grid_summary gsum;
};

static int add_checked(int64_t *acc, int64_t v)
{
    return __builtin_add_overflow(*acc, v, acc) ? MKT_E_OVERFLOW : MKT_OK;
}

static int grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n <= *cap)
        return MKT_OK;
    void *q = realloc(*p, n * elem);
    if (!q)
        return MKT_E_NOMEM;
    *p = q;
    *cap = n;
    return MKT_OK;
}

int mkt_cap_wh_from_w(int64_t w, int64_t interval_s, int64_t *wh)
{
    if (!wh || w < 0 || interval_s <= 0)
        return MKT_E_INVAL;
    __extension__ __int128 prod = (__int128)w * interval_s / 3600;
    if (prod > INT64_MAX)
        return MKT_E_OVERFLOW;
    *wh = (int64_t)prod;
    return MKT_OK;
}

static int cmp_attach(const void *a, const void *b)
{
    const mkt_attach *x = a, *y = b;
    return (x->participant > y->participant) - (x->participant < y->participant);
}

int mkt_topology_check(const mkt_topology *t)
{
    if (!t || t->n_nodes == 0 || !t->nodes || t->n_nodes > UINT32_MAX - 1 ||
        (t->n_attach && !t->attach))
        return MKT_E_TOPOLOGY;
    if (t->nodes[0].parent != MKT_NO_PARENT)
        return MKT_E_TOPOLOGY;
    for (size_t i = 1; i < t->n_nodes; i++)
        if (t->nodes[i].parent >= i || t->nodes[i].import_wh < 0 || t->nodes[i].export_wh < 0)
            return MKT_E_TOPOLOGY;
    for (size_t i = 0; i < t->n_attach; i++)
        if (t->attach[i].node >= t->n_nodes)
            return MKT_E_TOPOLOGY;
    if (t->level_fee_uc_per_kwh < 0 || t->level_fee_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH)
        return MKT_E_PRICE;
    return MKT_OK;
}

/* Depth of a node: edges up to the root. Trees are a community's feeders, so walking up is
 * cheap and needs no per-node memory. */
static uint32_t depth_of(const mkt_topology *t, uint32_t v)
{
    uint32_t d = 0;
    for (; v != 0; v = t->nodes[v].parent)
        d++;
    return d;
}

uint32_t mkt_topology_levels(const mkt_topology *t, uint32_t a, uint32_t b)
{
    uint32_t da = depth_of(t, a), db = depth_of(t, b), n = 0;
    while (a != b) {
        if (da >= db) {
            a = t->nodes[a].parent;
            da--;
        } else {
            b = t->nodes[b].parent;
            db--;
        }
        n++;
    }
    return n;
}

/* The number of edges on the longest path between two nodes (the tree's diameter): the most
 * levels a trade can cross. Over every node v, the two deepest branches below it; children come
 * after their parents, so a backward pass sees every child's height before its parent's. h1 and
 * h2 are per-node scratch (deepest and second deepest branch). */
static int64_t max_levels(const mkt_topology *t, int64_t *h1, int64_t *h2)
{
    memset(h1, 0, t->n_nodes * sizeof *h1);
    memset(h2, 0, t->n_nodes * sizeof *h2);
    int64_t best = 0;
    for (size_t v = t->n_nodes; v-- > 0;) {
        if (h1[v] + h2[v] > best)
            best = h1[v] + h2[v];
        if (v == 0)
            break;
        int64_t up = h1[v] + 1;
        uint32_t p = t->nodes[v].parent;
        if (up > h1[p]) {
            h2[p] = h1[p];
            h1[p] = up;
        } else if (up > h2[p]) {
            h2[p] = up;
        }
    }
    return best;
}

mkt_grid_clearing *mkt_grid_clearing_new(size_t max_orders)
{
    mkt_grid_clearing *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->max_orders = max_orders;
    g->c = mkt_clearing_new(max_orders);
    if (!g->c) {
        free(g);
        return NULL;
    }
    return g;
}

void mkt_grid_clearing_free(mkt_grid_clearing *g)
{
    if (!g)
        return;
    mkt_clearing_free(g->c);
    void *arrays[] = {g->nmin, g->nmax, g->tmin, g->tmax, g->m_node, g->x_node, g->rmin,
                      g->rmax, g->fixed, g->in_sub, g->unit_start, g->nodes, g->att, g->parts, g->gparts,
                      g->units, g->w, g->share, g->cand, g->rem, g->pairs, g->trades, g->cong};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        free(arrays[i]);
    free(g);
}

static void reset(mkt_grid_clearing *g, const mkt_params *p)
{
    g->n_parts = 0;
    g->n_trades = 0;
    g->n_units = 0;
    g->n_nodes = 0;
    memset(&g->sum, 0, sizeof g->sum);
    memset(&g->gsum, 0, sizeof g->gsum);
    if (p)
        g->sum.mechanism = p->mechanism;
}

static int ensure_nodes(mkt_grid_clearing *g, size_t n)
{
    if (n <= g->cap_nodes)
        return MKT_OK;
    size_t cap = 0;
    int64_t **i64[] = {&g->nmin, &g->nmax, &g->tmin, &g->tmax, &g->m_node, &g->x_node, &g->rmin,
                       &g->rmax};
    for (size_t i = 0; i < sizeof i64 / sizeof i64[0]; i++) {
        cap = 0;
        if (grow((void **)i64[i], &cap, n, sizeof(int64_t)))
            return MKT_E_NOMEM;
    }
    cap = 0;
    if (grow((void **)&g->fixed, &cap, n, 1))
        return MKT_E_NOMEM;
    cap = 0;
    if (grow((void **)&g->in_sub, &cap, n, 1))
        return MKT_E_NOMEM;
    cap = 0;
    if (grow((void **)&g->unit_start, &cap, n + 1, sizeof(size_t)))
        return MKT_E_NOMEM;
    cap = 0;
    if (grow((void **)&g->nodes, &cap, n, sizeof(mkt_node_result)))
        return MKT_E_NOMEM;
    g->cap_nodes = n;
    return MKT_OK;
}

/* The node of a participant, from the sorted attachments; the root if it has none. */
static uint32_t node_of(const mkt_grid_clearing *g, size_t n_att, uint64_t id)
{
    size_t lo = 0, hi = n_att;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->att[mid].participant < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n_att && g->att[lo].participant == id ? g->att[lo].node : 0;
}

static uint32_t rank_of(const mkt_grid_clearing *g, uint64_t id)
{
    size_t lo = 0, hi = g->n_parts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->parts[mid].participant < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)lo; /* mkt_clear accepted the book: every id is there */
}

/* Net local energy over every edge, from the participants' local energies (children have
 * larger indices, so one backward pass sums subtrees). */
static void compute_flows(mkt_grid_clearing *g, const mkt_topology *t)
{
    for (size_t v = 0; v < t->n_nodes; v++)
        g->nodes[v].flow_wh = 0;
    for (size_t r = 0; r < g->n_parts; r++) {
        const mkt_participant_result *pr = &g->parts[r];
        g->nodes[g->gparts[r].node].flow_wh += pr->local_sold_wh - pr->local_bought_wh;
    }
    for (size_t v = t->n_nodes; v-- > 1;)
        g->nodes[t->nodes[v].parent].flow_wh += g->nodes[v].flow_wh;
}

static int fits(const mkt_grid_clearing *g, const mkt_topology *t)
{
    for (size_t v = 1; v < t->n_nodes; v++) {
        int64_t f = g->nodes[v].flow_wh;
        if (f > t->nodes[v].export_wh || -f > t->nodes[v].import_wh)
            return 0;
    }
    return 1;
}

static int64_t clamp64(int64_t x, int64_t lo, int64_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* Own and subtree export intervals at refined price m of node r and every node below it (the
 * only ones a caller reads: a subtree's interval depends on nothing outside it). Nodes are listed
 * parents first, so the subtree lies at indices >= r and one forward pass marks it. */
static void evaluate(mkt_grid_clearing *g, const mkt_topology *t, size_t r, int64_t m)
{
    size_t n = t->n_nodes;
    for (size_t v = r; v < n; v++) {
        g->in_sub[v] = v == r || (v > r && g->in_sub[t->nodes[v].parent]);
        if (!g->in_sub[v])
            continue;
        int64_t lo = 0, hi = 0;
        for (size_t i = g->unit_start[v]; i < g->unit_start[v + 1]; i++) {
            const gunit *u = &g->units[i];
            if (u->side == MKT_SELL) {
                lo += u->m < m ? u->energy_wh : 0;
                hi += u->m <= m ? u->energy_wh : 0;
            } else {
                lo -= u->m >= m ? u->energy_wh : 0;
                hi -= u->m > m ? u->energy_wh : 0;
            }
        }
        g->nmin[v] = g->tmin[v] = lo;
        g->nmax[v] = g->tmax[v] = hi;
    }
    for (size_t v = n; v-- > r + 1;) {
        if (!g->in_sub[v])
            continue;
        int64_t lo = -t->nodes[v].import_wh, hi = t->nodes[v].export_wh;
        uint32_t p = t->nodes[v].parent;
        g->tmin[p] += clamp64(g->tmin[v], lo, hi);
        g->tmax[p] += clamp64(g->tmax[v], lo, hi);
    }
}

static int64_t floor_div3(int64_t a)
{
    return a >= 0 ? a / 3 : -((-a + 2) / 3);
}

/* The zone price at which node v's subtree exports exactly x: the refined prices that do form
 * an interval [mL, mU] inside [a, b]; as a price in uc/kWh that is [L, U] (clamped to the band),
 * and the zone takes the midpoint rounded down, at the refined price nearest 3 * that. */
static void zone_price(mkt_grid_clearing *g, const mkt_topology *t, size_t v, int64_t x,
                       int64_t band_lo, int64_t band_hi, int64_t *m_out, int64_t *p_out,
                       int64_t *lo_out, int64_t *hi_out)
{
    /* tmax only rises at a unit's refined price and tmin only just after one, so both ends of
     * the interval are among the candidates: the band's ends and the units' prices. */
    const int64_t *cand = g->cand;
    size_t lo = 0, hi = g->n_cand - 1; /* least candidate with tmax >= x */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        evaluate(g, t, v, cand[mid]);
        if (g->tmax[v] >= x)
            hi = mid;
        else
            lo = mid + 1;
    }
    int64_t mL = cand[lo];
    lo = 0, hi = g->n_cand - 1; /* greatest candidate with tmin <= x */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        evaluate(g, t, v, cand[mid]);
        if (g->tmin[v] <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    int64_t mU = cand[lo];
    int64_t L = -floor_div3(-(mL - 1)), U = floor_div3(mU + 1);
    L = clamp64(L, band_lo, band_hi);
    U = clamp64(U, band_lo, band_hi);
    int64_t p = L + (U - L) / 2;
    *m_out = clamp64(3 * p, mL, mU);
    *p_out = p;
    *lo_out = L;
    *hi_out = U;
}

typedef struct rem_item {
    uint64_t rem;
    size_t i;
} rem_item;

static int cmp_rem_item(const void *a, const void *b)
{
    const rem_item *x = a, *y = b;
    if (x->rem != y->rem)
        return x->rem < y->rem ? 1 : -1; /* descending remainder */
    return (x->i > y->i) - (x->i < y->i);
}

/* Shares x among n weights pro rata: floors, then one each to the largest remainders, ties to
 * the lower index. 0 <= x <= sum(w), the sum fits int64 and items holds n. */
static void prorate(rem_item *items, const int64_t *w, int64_t *out, size_t n, int64_t x)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += w[i];
    if (total == 0) {
        for (size_t i = 0; i < n; i++)
            out[i] = 0;
        return;
    }
    int64_t left = x;
    for (size_t i = 0; i < n; i++) {
        __extension__ unsigned __int128 prod = (unsigned __int128)x * (uint64_t)w[i];
        out[i] = (int64_t)(prod / (uint64_t)total);
        items[i].rem = (uint64_t)(prod % (uint64_t)total);
        items[i].i = i;
        left -= out[i];
    }
    if (left > 0) {
        qsort(items, n, sizeof *items, cmp_rem_item);
        for (size_t k = 0; k < (size_t)left; k++)
            out[items[k].i]++;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_units(const void *a, const void *b)
{
    const gunit *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    if (x->m != y->m)
        return x->m < y->m ? -1 : 1;
    if (x->seat != y->seat)
        return x->seat < y->seat ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The units of the book: each step's effective price as in mkt_clear (a seller never below the
 * feed-in tariff, a buyer's all-in bid capped at retail less the fee), steps outside the band
 * dropped, equal prices of one participant merged; sorted by node, refined price and seat. */
static int build_units(mkt_grid_clearing *g, const mkt_params *p, const mkt_order *orders,
                       size_t n, int64_t lo, int64_t hi)
{
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += orders[i].n_steps;
    size_t cap = g->cap_units;
    if (grow((void **)&g->units, &cap, need ? need : 1, sizeof(gunit)))
        return MKT_E_NOMEM;
    g->n_units = 0;
    for (size_t i = 0; i < n; i++) {
        const mkt_order *o = &orders[i];
        uint32_t r = rank_of(g, o->participant);
        size_t first = g->n_units;
        for (uint32_t s = 0; s < o->n_steps; s++) {
            int64_t price = o->steps[s].price_uc_per_kwh;
            if (o->side == MKT_SELL)
                price = price < lo ? lo : price;
            else
                price = (price > p->retail_uc_per_kwh ? p->retail_uc_per_kwh : price) -
                        p->network_fee_uc_per_kwh;
            if (price < lo || price > hi)
                continue;
            size_t k;
            for (k = first; k < g->n_units && g->units[k].price != price; k++)
                ;
            if (k < g->n_units) {
                g->units[k].energy_wh += o->steps[s].energy_wh;
                continue;
            }
            gunit *u = &g->units[g->n_units++];
            u->seat = mkt_tie_key(p->interval_id, o->participant) >> 32;
            u->id = o->participant;
            u->rank = r;
            u->node = g->gparts[r].node;
            u->side = o->side;
            u->price = price;
            u->m = o->side == MKT_SELL ? 3 * price - 1 : 3 * price + 1;
            u->energy_wh = o->steps[s].energy_wh;
            u->accepted_wh = 0;
        }
    }
    g->cap_units = cap;
    qsort(g->units, g->n_units, sizeof(gunit), cmp_units);
    return MKT_OK;
}

/* Accepts node v's own units at refined price m, with own_share Wh of its flexible range (the
 * steps exactly at m) on top of the lower end of its own interval. */
static void accept_own(mkt_grid_clearing *g, size_t v, int64_t m, int64_t own_share)
{
    size_t a = g->unit_start[v], b = g->unit_start[v + 1], n_level = 0;
    int64_t level_wh = 0;
    for (size_t i = a; i < b; i++) {
        gunit *u = &g->units[i];
        if (u->m == m) {
            g->w[n_level++] = u->energy_wh;
            level_wh += u->energy_wh;
        } else
            u->accepted_wh = (u->side == MKT_SELL) == (u->m < m) ? u->energy_wh : 0;
    }
    if (n_level == 0)
        return;
    /* sells at m: the share is what sells; buys at m: what does not buy */
    int is_sell = m % 3 == 2 || m % 3 == -1;
    int64_t take = is_sell ? own_share : level_wh - own_share;
    prorate(g->rem, g->w, g->share, n_level, take);
    size_t k = 0;
    for (size_t i = a; i < b; i++)
        if (g->units[i].m == m)
            g->units[i].accepted_wh = g->share[k++];
}

/* The zonal allocation: prices top down, then each node's energy split. */
static int allocate(mkt_grid_clearing *g, const mkt_topology *t, int64_t band_lo, int64_t band_hi)
{
    size_t n = t->n_nodes;
    size_t need = (g->n_units > n ? g->n_units : n) + 2;
    if (need > g->cap_scratch) {
        size_t a = g->cap_scratch, b = g->cap_scratch, c = g->cap_scratch, d = g->cap_scratch;
        if (grow((void **)&g->w, &a, need, sizeof(int64_t)) ||
            grow((void **)&g->share, &b, need, sizeof(int64_t)) ||
            grow((void **)&g->rem, &c, need, sizeof(rem_item)) ||
            grow((void **)&g->cand, &d, need, sizeof(int64_t)))
            return MKT_E_NOMEM;
        g->cap_scratch = need;
    }
    size_t nc = 0;
    g->cand[nc++] = 3 * band_lo - 1;
    for (size_t u = 0; u < g->n_units; u++)
        g->cand[nc++] = g->units[u].m;
    g->cand[nc++] = 3 * band_hi + 1;
    qsort(g->cand, nc, sizeof *g->cand, cmp_i64);
    g->n_cand = 0;
    for (size_t i = 0; i < nc; i++)
        if (g->n_cand == 0 || g->cand[i] != g->cand[g->n_cand - 1])
            g->cand[g->n_cand++] = g->cand[i];
    size_t k = 0;
    for (size_t v = 0; v < n; v++) {
        g->unit_start[v] = k;
        while (k < g->n_units && g->units[k].node == v)
            k++;
    }
    g->unit_start[n] = k;

    int64_t p0, L0, U0;
    zone_price(g, t, 0, 0, band_lo, band_hi, &g->m_node[0], &p0, &L0, &U0);
    g->x_node[0] = 0;
    g->nodes[0] = (mkt_node_result){0, p0, 0, MKT_BIND_NONE};
    g->sum.price_low_uc_per_kwh = L0;
    g->sum.price_high_uc_per_kwh = U0;
    g->sum.clearing_price_uc_per_kwh = p0;
    for (size_t v = 0; v < n; v++) {
        int64_t m = g->m_node[v];
        evaluate(g, t, v, m);
        int64_t base = g->nmin[v], n_flex = 1;
        g->w[0] = g->nmax[v] - g->nmin[v];
        for (size_t c = v + 1; c < n; c++) {
            if (t->nodes[c].parent != v)
                continue;
            int64_t lo = -t->nodes[c].import_wh, hi = t->nodes[c].export_wh;
            g->fixed[c] = 1;
            if (g->tmin[c] > hi) {
                g->x_node[c] = hi;
                g->nodes[c].binding = MKT_BIND_EXPORT;
            } else if (g->tmax[c] < lo) {
                g->x_node[c] = lo;
                g->nodes[c].binding = MKT_BIND_IMPORT;
            } else {
                g->fixed[c] = 0;
                g->nodes[c].binding = MKT_BIND_NONE;
                g->rmin[c] = clamp64(g->tmin[c], lo, hi);
                g->rmax[c] = clamp64(g->tmax[c], lo, hi);
                g->w[n_flex++] = g->rmax[c] - g->rmin[c];
                base += g->rmin[c];
                continue;
            }
            base += g->x_node[c];
        }
        int64_t r = g->x_node[v] - base, width = 0;
        for (int64_t i = 0; i < n_flex; i++)
            width += g->w[i];
        if (r < 0 || r > width)
            return MKT_E_INVAL; /* cannot happen: x_node[v] is in the subtree's interval */
        prorate(g->rem, g->w, g->share, (size_t)n_flex, r);
        int64_t own_share = g->share[0];
        size_t i = 1;
        for (size_t c = v + 1; c < n; c++)
            if (t->nodes[c].parent == v && !g->fixed[c]) {
                g->x_node[c] = g->rmin[c] + g->share[i++];
                g->m_node[c] = m;
                g->nodes[c].price_uc_per_kwh = g->nodes[v].price_uc_per_kwh;
                g->nodes[c].zone = g->nodes[v].zone;
            }
        accept_own(g, v, m, own_share);
        for (size_t c = v + 1; c < n; c++)
            if (t->nodes[c].parent == v && g->fixed[c]) {
                int64_t pc, Lc, Uc;
                zone_price(g, t, c, g->x_node[c], band_lo, band_hi, &g->m_node[c], &pc, &Lc,
                           &Uc);
                g->nodes[c].price_uc_per_kwh = pc;
                g->nodes[c].zone = (uint32_t)c;
            }
    }
    return MKT_OK;
}

/* A participant or unit in the pairing order: ascending (k1, k2, k3, k4). */
typedef struct pair_item {
    int64_t k1, k2;
    uint64_t k3, k4;
    size_t idx;
} pair_item;

static int cmp_pairs(const void *a, const void *b)
{
    const pair_item *x = a, *y = b;
    if (x->k1 != y->k1)
        return x->k1 < y->k1 ? -1 : 1;
    if (x->k2 != y->k2)
        return x->k2 < y->k2 ? -1 : 1;
    if (x->k3 != y->k3)
        return x->k3 < y->k3 ? -1 : 1;
    return (x->k4 > y->k4) - (x->k4 < y->k4);
}

/* Appends one trade and credits it. A pay-as-clear trade is priced at the seller's zone price
 * and the buyer owes the difference to its own zone price as congestion; pay-as-bid trades at
 * the buyer's effective bid and has none. */
static int add_trade(mkt_grid_clearing *g, const mkt_params *p, uint32_t s, uint32_t b,
                     int64_t e, int64_t price, int64_t buyer_price)
{
    mkt_trade *t = &g->trades[g->n_trades];
    int64_t *cong = &g->cong[g->n_trades];
    g->n_trades++;
    t->seller = g->parts[s].participant;
    t->buyer = g->parts[b].participant;
    t->energy_wh = e;
    t->price_uc_per_kwh = price;
    int64_t buyer_amount = 0;
    if (mkt_amount_uc_inline(e, price, &t->amount_uc) ||
        mkt_amount_uc_inline(e, p->network_fee_uc_per_kwh, &t->fee_uc) ||
        mkt_amount_uc_inline(e, buyer_price, &buyer_amount))
        return MKT_E_OVERFLOW;
    *cong = buyer_amount - t->amount_uc;
    if (*cong < 0)
        return MKT_E_INVAL; /* cannot happen: energy flows from cheaper zones to dearer ones */
    if (add_checked(&g->sum.local_value_uc, t->amount_uc) ||
        add_checked(&g->sum.fees_uc, t->fee_uc) || add_checked(&g->gsum.congestion_uc, *cong) ||
        add_checked(&g->parts[s].local_received_uc, t->amount_uc) ||
        add_checked(&g->parts[b].local_paid_uc, t->amount_uc) ||
        add_checked(&g->parts[b].fee_paid_uc, t->fee_uc) ||
        add_checked(&g->gparts[b].congestion_paid_uc, *cong))
        return MKT_E_OVERFLOW;
    return MKT_OK;
}

/* Pairs the accepted energy of the two sides in the order of their items (sellers in
 * items[0, ns), buyers in items[ns, n)), both in ascending zone price first: the t-th Wh sold is
 * then never in a dearer zone than the t-th Wh bought, because a set of dearer zones only ever
 * imports. */
static int pair_up(mkt_grid_clearing *g, const mkt_params *p, size_t ns, size_t n, int by_unit)
{
    pair_item *it = g->pairs;
    qsort(it, ns, sizeof *it, cmp_pairs);
    qsort(it + ns, n - ns, sizeof *it, cmp_pairs);
    size_t i = 0, j = ns;
    int64_t s_left = 0, b_left = 0;
    for (;;) {
        for (; s_left == 0 && i < ns; i++)
            s_left = by_unit ? g->units[it[i].idx].accepted_wh
                             : g->parts[it[i].idx].local_sold_wh;
        for (; b_left == 0 && j < n; j++)
            b_left = by_unit ? g->units[it[j].idx].accepted_wh
                             : g->parts[it[j].idx].local_bought_wh;
        if (s_left == 0 || b_left == 0)
            return MKT_OK;
        int64_t e = s_left < b_left ? s_left : b_left;
        uint32_t sr, br;
        int64_t price, buyer_price;
        if (by_unit) {
            sr = g->units[it[i - 1].idx].rank;
            br = g->units[it[j - 1].idx].rank;
            price = buyer_price = g->units[it[j - 1].idx].price;
        } else {
            sr = (uint32_t)it[i - 1].idx;
            br = (uint32_t)it[j - 1].idx;
            price = g->gparts[sr].price_uc_per_kwh;
            buyer_price = g->gparts[br].price_uc_per_kwh;
        }
        int rc = add_trade(g, p, sr, br, e, price, buyer_price);
        if (rc)
            return rc;
        s_left -= e;
        b_left -= e;
    }
}

static int make_trades(mkt_grid_clearing *g, const mkt_params *p)
{
    size_t need = (g->n_units > g->n_parts ? g->n_units : g->n_parts) + 1;
    size_t cap = g->cap_pairs;
    if (grow((void **)&g->pairs, &cap, need, sizeof(pair_item)))
        return MKT_E_NOMEM;
    g->cap_pairs = cap;
    cap = g->cap_trades;
    size_t cap2 = g->cap_trades;
    if (grow((void **)&g->trades, &cap, need, sizeof(mkt_trade)) ||
        grow((void **)&g->cong, &cap2, need, sizeof(int64_t)))
        return MKT_E_NOMEM;
    g->cap_trades = cap;
    size_t ns = 0, nb = 0;
    pair_item *it = g->pairs;
    /* sellers counted up from the front, buyers down from the back, then moved behind them */
    if (p->mechanism == MKT_PAY_AS_BID) {
        for (size_t u = 0; u < g->n_units; u++) {
            const gunit *x = &g->units[u];
            if (x->accepted_wh == 0)
                continue;
            int64_t zone = g->gparts[x->rank].price_uc_per_kwh;
            pair_item item = {zone, x->side == MKT_SELL ? x->price : -x->price, x->seat, x->id,
                              u};
            if (x->side == MKT_SELL)
                it[ns++] = item;
            else
                it[need - 1 - nb++] = item;
        }
    } else {
        for (size_t r = 0; r < g->n_parts; r++) {
            const mkt_participant_result *pr = &g->parts[r];
            if (pr->local_sold_wh + pr->local_bought_wh == 0)
                continue;
            pair_item item = {g->gparts[r].price_uc_per_kwh, 0, 0, 0, r};
            if (pr->side == MKT_SELL)
                it[ns++] = item;
            else
                it[need - 1 - nb++] = item;
        }
    }
    memmove(it + ns, it + need - nb, nb * sizeof *it);
    return pair_up(g, p, ns, ns + nb, p->mechanism == MKT_PAY_AS_BID);
}

/* Settles the rest of every curve with the grid and sums the book. */
static int finish_parts(mkt_grid_clearing *g, const mkt_params *p)
{
    mkt_summary *sum = &g->sum;
    for (size_t r = 0; r < g->n_parts; r++) {
        mkt_participant_result *pr = &g->parts[r];
        if (pr->side == MKT_SELL) {
            pr->grid_sold_wh = pr->offered_wh - pr->local_sold_wh;
            if (mkt_amount_uc_inline(pr->grid_sold_wh, p->feed_in_uc_per_kwh,
                                     &pr->grid_received_uc) ||
                add_checked(&sum->grid_sold_wh, pr->grid_sold_wh) ||
                add_checked(&sum->grid_received_uc, pr->grid_received_uc) ||
                add_checked(&sum->matched_wh, pr->local_sold_wh))
                return MKT_E_OVERFLOW;
        } else {
            pr->grid_bought_wh = pr->offered_wh - pr->local_bought_wh;
            if (mkt_amount_uc_inline(pr->grid_bought_wh, p->retail_uc_per_kwh, &pr->grid_paid_uc) ||
                add_checked(&sum->grid_bought_wh, pr->grid_bought_wh) ||
                add_checked(&sum->grid_paid_uc, pr->grid_paid_uc))
                return MKT_E_OVERFLOW;
        }
    }
    return MKT_OK;
}

/* The copper-plate result fits: copy it, every node in one zone at the clearing price. */
static int take_copper_plate(mkt_grid_clearing *g, const mkt_topology *t)
{
    size_t n_tr;
    const mkt_trade *tr = mkt_clearing_trades(g->c, &n_tr);
    size_t cap = g->cap_trades, cap2 = g->cap_trades;
    if (grow((void **)&g->trades, &cap, n_tr ? n_tr : 1, sizeof(mkt_trade)) ||
        grow((void **)&g->cong, &cap2, n_tr ? n_tr : 1, sizeof(int64_t)))
        return MKT_E_NOMEM;
    g->cap_trades = cap;
    if (n_tr)
        memcpy(g->trades, tr, n_tr * sizeof *tr);
    memset(g->cong, 0, (n_tr ? n_tr : 1) * sizeof(int64_t));
    g->n_trades = n_tr;
    g->sum = *mkt_clearing_summary(g->c);
    int64_t price = g->sum.has_price ? g->sum.clearing_price_uc_per_kwh : 0;
    for (size_t v = 0; v < t->n_nodes; v++) {
        g->nodes[v].price_uc_per_kwh = price;
        g->nodes[v].zone = 0;
        g->nodes[v].binding = MKT_BIND_NONE;
    }
    for (size_t r = 0; r < g->n_parts; r++)
        g->gparts[r].price_uc_per_kwh = price;
    g->gsum.has_prices = g->sum.has_price;
    g->gsum.n_zones = 1;
    return MKT_OK;
}

static int solve_zones(mkt_grid_clearing *g, const mkt_params *p, const mkt_topology *t,
                       const mkt_order *orders, size_t n_orders)
{
    int64_t lo = p->feed_in_uc_per_kwh, hi = p->retail_uc_per_kwh - p->network_fee_uc_per_kwh;
    int rc;
    if ((rc = build_units(g, p, orders, n_orders, lo, hi)) || (rc = allocate(g, t, lo, hi)))
        return rc;
    mkt_summary keep = g->sum;
    memset(&g->sum, 0, sizeof g->sum);
    g->sum.mechanism = p->mechanism;
    for (size_t r = 0; r < g->n_parts; r++) {
        mkt_participant_result *pr = &g->parts[r];
        pr->local_sold_wh = pr->local_bought_wh = 0;
        pr->local_paid_uc = pr->local_received_uc = pr->fee_paid_uc = 0;
        g->gparts[r].price_uc_per_kwh = g->nodes[g->gparts[r].node].price_uc_per_kwh;
        g->gparts[r].congestion_paid_uc = 0;
    }
    for (size_t u = 0; u < g->n_units; u++) {
        const gunit *x = &g->units[u];
        mkt_participant_result *pr = &g->parts[x->rank];
        if (x->side == MKT_SELL)
            pr->local_sold_wh += x->accepted_wh;
        else
            pr->local_bought_wh += x->accepted_wh;
    }
    if ((rc = make_trades(g, p)) || (rc = finish_parts(g, p)))
        return rc;
    if (p->mechanism == MKT_PAY_AS_CLEAR && g->sum.matched_wh > 0) {
        g->sum.has_price = 1;
        g->sum.clearing_price_uc_per_kwh = keep.clearing_price_uc_per_kwh;
        g->sum.price_low_uc_per_kwh = keep.price_low_uc_per_kwh;
        g->sum.price_high_uc_per_kwh = keep.price_high_uc_per_kwh;
    }
    g->gsum.congested = 1;
    g->gsum.has_prices = 1;
    for (size_t v = 0; v < t->n_nodes; v++) {
        g->gsum.n_zones += g->nodes[v].zone == v;
        g->gsum.n_binding += g->nodes[v].binding != MKT_BIND_NONE;
    }
    return MKT_OK;
}

/* The matching's flat fee: the params' fee plus the level fee of the tree's longest path, so that
 * every buyer's limit holds all-in whichever path its trades take. MKT_E_PRICE beyond the
 * price bound. Uses nmin and nmax as scratch. */
static int matching_fee(mkt_grid_clearing *g, const mkt_params *p, const mkt_topology *t,
                        int64_t *fee)
{
    int64_t levels = max_levels(t, g->nmin, g->nmax), extra;
    if (__builtin_mul_overflow(t->level_fee_uc_per_kwh, levels, &extra) ||
        __builtin_add_overflow(p->network_fee_uc_per_kwh, extra, fee) ||
        *fee > MKT_PRICE_MAX_UC_PER_KWH)
        return MKT_E_PRICE;
    return MKT_OK;
}

/* Charges each trade the fee of the levels it crosses, in place of the matching's flat fee,
 * and sums the buyers' fees and the book's again. */
static int level_fees(mkt_grid_clearing *g, const mkt_params *p, const mkt_topology *t)
{
    g->sum.fees_uc = 0;
    for (size_t r = 0; r < g->n_parts; r++)
        g->parts[r].fee_paid_uc = 0;
    for (size_t i = 0; i < g->n_trades; i++) {
        mkt_trade *tr = &g->trades[i];
        uint32_t s = rank_of(g, tr->seller), b = rank_of(g, tr->buyer);
        int64_t levels = mkt_topology_levels(t, g->gparts[s].node, g->gparts[b].node);
        /* at most the matching fee, which matching_fee checked */
        int64_t fee = p->network_fee_uc_per_kwh + t->level_fee_uc_per_kwh * levels;
        if (mkt_amount_uc_inline(tr->energy_wh, fee, &tr->fee_uc) ||
            add_checked(&g->sum.fees_uc, tr->fee_uc) ||
            add_checked(&g->parts[b].fee_paid_uc, tr->fee_uc))
            return MKT_E_OVERFLOW;
    }
    return MKT_OK;
}

int mkt_clear_grid(mkt_grid_clearing *g, const mkt_params *params, const mkt_topology *topo,
                   const mkt_order *orders, size_t n_orders, mkt_error_at *at)
{
    mkt_error_at scratch_at;
    if (!at)
        at = &scratch_at;
    at->order_index = MKT_AT_BOOK;
    at->step_index = -1;
    if (!g || !params || !topo || (!orders && n_orders))
        return MKT_E_INVAL;
    reset(g, params);
    int rc = mkt_topology_check(topo);
    if (rc)
        return rc;
    /* With a level fee, everything below clears with the matching fee and level_fees() charges
     * each trade its own at the end; without one, params are used as given. */
    mkt_params with_fee = *params;
    if ((rc = ensure_nodes(g, topo->n_nodes)) ||
        (topo->level_fee_uc_per_kwh &&
         (rc = matching_fee(g, params, topo, &with_fee.network_fee_uc_per_kwh))))
        return rc;
    const mkt_params *p = &with_fee;
    if ((rc = mkt_clear(g->c, p, orders, n_orders, at)))
        return rc;
    size_t cap = g->cap_att;
    if (grow((void **)&g->att, &cap, topo->n_attach ? topo->n_attach : 1, sizeof(mkt_attach)))
        return MKT_E_NOMEM;
    g->cap_att = cap;
    if (topo->n_attach)
        memcpy(g->att, topo->attach, topo->n_attach * sizeof(mkt_attach));
    qsort(g->att, topo->n_attach, sizeof(mkt_attach), cmp_attach);
    for (size_t i = 1; i < topo->n_attach; i++)
        if (g->att[i].participant == g->att[i - 1].participant)
            return MKT_E_TOPOLOGY;
    size_t n_parts;
    const mkt_participant_result *parts = mkt_clearing_participants(g->c, &n_parts);
    size_t pcap = g->n_parts, gcap = 0;
    (void)pcap;
    /* parts and gparts grow together; their capacity is max_orders once allocated */
    if (!g->parts) {
        size_t n = g->max_orders ? g->max_orders : 1;
        pcap = 0;
        if (grow((void **)&g->parts, &pcap, n, sizeof(mkt_participant_result)) ||
            grow((void **)&g->gparts, &gcap, n, sizeof(mkt_grid_participant)))
            return MKT_E_NOMEM;
    }
    g->n_parts = n_parts;
    if (n_parts)
        memcpy(g->parts, parts, n_parts * sizeof *parts);
    for (size_t r = 0; r < n_parts; r++)
        g->gparts[r] = (mkt_grid_participant){node_of(g, topo->n_attach, parts[r].participant),
                                              0, 0};
    g->n_nodes = topo->n_nodes;
    compute_flows(g, topo);
    if (fits(g, topo))
        rc = take_copper_plate(g, topo);
    else if ((rc = solve_zones(g, p, topo, orders, n_orders)) == MKT_OK)
        compute_flows(g, topo);
    if (rc == MKT_OK && topo->level_fee_uc_per_kwh)
        rc = level_fees(g, params, topo);
    if (rc)
        reset(g, params);
    return rc;
}

const mkt_summary *mkt_grid_market_summary(const mkt_grid_clearing *g)
{
    return &g->sum;
}

const mkt_trade *mkt_grid_trades(const mkt_grid_clearing *g, size_t *n_trades)
{
    if (n_trades)
        *n_trades = g->n_trades;
    return g->trades;
}

const mkt_participant_result *mkt_grid_participants(const mkt_grid_clearing *g,
                                                    size_t *n_participants)
{
    if (n_participants)
        *n_participants = g->n_parts;
    return g->parts;
}

const int64_t *mkt_grid_trade_congestion(const mkt_grid_clearing *g)
{
    return g->cong;
}

const mkt_grid_participant *mkt_grid_participant_info(const mkt_grid_clearing *g)
{
    return g->gparts;
}

const mkt_node_result *mkt_grid_nodes(const mkt_grid_clearing *g, size_t *n_nodes)
{
    if (n_nodes)
        *n_nodes = g->n_nodes;
    return g->nodes;
}

const mkt_grid_summary *mkt_grid_summary_of(const mkt_grid_clearing *g)
{
    return &g->gsum;
}
