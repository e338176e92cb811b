/*
 * The clearing engine: turns one interval's orders into local trades, grid legs and money.
 *
 * Both mechanisms share one allocation. Each step gets an effective price that folds the grid
 * in (a seller never takes less than the feed-in tariff; a buyer's limit is all-in, so its bid
 * capped at retail less the network fee), steps of one participant at one effective price
 * become a "unit", the units are sorted (sellers cheapest first, buyers dearest first, ties by
 * a seat that rotates with the interval, see seat_participants) and a greedy walk matches the
 * two curves, which gives the maximal volume. The one level that is
 * only partly taken is shared pro rata. Pricing and the pairing into bilateral trades are what
 * differ: pay-as-clear prices everything at the midpoint of the equilibrium interval, pay-as-bid
 * pairs dearest bids with cheapest asks at the buyer's effective bid. See docs/market-rules.md.
 *
 * The layout is chosen for books of a million orders, where memory traffic, not arithmetic, is
 * the cost (docs/benchmarks.md): the caller's wide mkt_order array is read once, in array
 * order; the participant's rank in id order is packed into the sort key, so units need not be
 * built in id order; the sorted units are gathered into one array that every later pass walks
 * sequentially; and per-participant sums are kept in small per-rank tallies that are copied
 * into the participant records once at the end.
 *
 * A large book on a narrow band (more orders than twice the band's prices at 1 uc, as any real
 * tariff gives) skips the unit sort: hist_match walks the two curves as energy per price and
 * takes each unit by its price alone, so pay-as-clear sorts no unit and seats nobody, and
 * pay-as-bid sorts only the units that trade, by price and the top bits of each one's own tie
 * key, so it seats nobody either (clear_bid_hist). The result is the same bytes either way (a
 * test build, MKT__HIST_ALWAYS, runs the known answers and property tests through it, and
 * test_market_bid_crowded crowds the price levels).
 */
#define _DEFAULT_SOURCE /* madvise, for hint_huge_pages */

#include "mgx/market.h"
#include "params.h"
#include "sort.h"

#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

/* One participant's energy at one effective price, in sorted (matching) order. */
typedef struct {
    int64_t energy_wh;
    int64_t price;
    int64_t accepted_wh;
    uint32_t rank; /* the participant's position in id order */
} unit;

/* Pay-as-bid only: the money of one unit's trades, kept beside the units rather than in them so
 * that pay-as-clear does not carry it through every pass. */
typedef struct {
    int64_t amount_uc; /* received by a seller's unit, paid by a buyer's */
    int64_t fee_uc;    /* buyers only */
} unit_money;

/* An order's energy, side by side so that ranking reads both with one miss. */
typedef struct {
    int64_t offered;
    int64_t local; /* accepted, when the match ran on the histogram (hist_match) */
} order_energy;

/* Pay-as-bid on the histogram (clear_bid_hist): what the pairing walk reads and credits of a
 * participant, by rank, in one cache line's half, as the walk reaches the participants in price
 * order (at random). */
typedef struct {
    uint64_t id;
    int64_t local_wh;
    int64_t local_uc; /* received or paid, by side */
    int64_t fee_uc;
} bid_slot;

/* What the passes after the scan need to know about a participant, by rank: small enough that
 * scattering into it from price order stays in cache, unlike the 96-byte result records. */
typedef struct {
    int64_t offered_wh;
    int64_t local_wh; /* sold or bought, by side */
    int64_t local_uc; /* received or paid, by side */
    int64_t fee_uc;
} tally;

struct mkt_clearing {
    size_t max_orders;
    size_t cap_orders, cap_raw, cap_units, cap_hist;
    /* per order, by index in the caller's array */
    order_energy *order_wh;
    uint32_t *rank_of; /* the participant's seat (rank_orders) or rank (clear_bid_hist), by order */
    uint32_t *order_tie; /* clear_bid_hist: the top bits of the order's tie key (scan_orders) */
    /* per participant, by rank */
    uint64_t *id_keys, *id_tmp_keys; /* id_keys[r] is the id of rank r once ranked */
    /* rank_order[r]: the index into the caller's array, with the side in the top bit (see
     * order_ref), so that ranking reads an order's side without a random access of its own */
    uint32_t *rank_order, *id_tmp_vals;
    uint8_t *side;
    uint64_t *tie_keys;
    uint32_t *by_seat; /* by_seat[s] = the rank of the participant in seat s */
    tally *tallies;
    mkt_participant_result *parts;
    /* pay-as-bid on the histogram (clear_bid_hist): by rank, and by order its rank below the
     * top bits of its tie key */
    bid_slot *slots;
    /* by order, then (sorted with the ids) by rank: the order's offered energy above its
     * order_ref, so that ranking needs no random read of the order's energies */
    uint64_t *offered_ref, *tmp_offered_ref;
    /* per unit, as built in array order before anyone knows the participants' ranks: energy,
     * key (the buyer bit and price, the high part of the sort key, see sort_key) and the index
     * into the caller's array; in 64-bit arrays for the sort (build_book), or in 32 bits for
     * the histogram (hist_walk), whose keys always fit and whose energies the scan checks */
    int64_t *raw_energy;
    uint64_t *raw_key;
    uint32_t *raw_energy32, *raw_key32;
    uint32_t *raw_order;
    /* per unit, in matching order */
    unit *units;
    unit_money *money;
    /* per price, by raw key (sellers' then buyers' distances): the energy offered at it */
    int64_t *hist;
    uint64_t *keys, *tmp_keys;
    uint32_t *sorted, *tmp_vals, *tmp_vals2;
    uint64_t *packed, *tmp_packed; /* clear_bid_hist: order index above accepted energy */
    size_t n_raw, n_sell_units, n_buy_units;
    /* units past these (in each side's matching order) accepted nothing (match) */
    size_t n_sell_accepted, n_buy_accepted;
    int64_t raw_energy_max; /* the largest unit, which decides what the unit sort carries */
    int64_t offered_max;    /* the largest order (offered_ref carries it in 32 bits) */
    unsigned price_bits;
    int ids_ascending;
    int hist_matched; /* this clearing matched on the histogram (hist_match) */
    /* result */
    mkt_trade *trades;
    size_t n_parts, n_trades;
    mkt_summary sum;
};

typedef struct {
    int64_t lo;  /* feed-in: no seller takes less */
    int64_t hi;  /* retail - fee: no buyer pays more (before the fee) */
    int64_t fee; /* taken off every bid: a buyer's limit is all-in */
    int tradable;
} price_band;

/* An order's index with its side in the top bit: mkt_clearing_new caps max_orders at
 * UINT32_MAX / MKT_MAX_STEPS, so an index never reaches that bit. */
#define ORDER_SELL_BIT (UINT32_C(1) << 31)

static uint32_t order_ref(size_t index, mkt_side side)
{
    return (uint32_t)index | (side == MKT_SELL ? ORDER_SELL_BIT : 0);
}

static uint32_t ref_index(uint32_t ref)
{
    return ref & ~ORDER_SELL_BIT;
}

static uint8_t ref_side(uint32_t ref)
{
    return (uint8_t)(ref & ORDER_SELL_BIT ? MKT_SELL : MKT_BUY);
}

static int add_checked(int64_t *acc, int64_t v)
{
    return __builtin_add_overflow(*acc, v, acc) ? MKT_E_OVERFLOW : MKT_OK;
}

/* The engine's arrays, listed once for growing and freeing: each grows with the orders (per
 * order or per participant rank), the raw units or the sorted units. */
enum { BY_ORDER, BY_RAW, BY_UNIT };

typedef struct {
    void **p;
    size_t elem;
    int grows_with;
} array_ref;

#define N_ARRAYS 30

static void arrays_of(mkt_clearing *c, array_ref a[N_ARRAYS])
{
    const array_ref t[N_ARRAYS] = {
        {(void **)&c->order_tie, sizeof(uint32_t), BY_ORDER},
        {(void **)&c->order_wh, sizeof(order_energy), BY_ORDER},
        {(void **)&c->rank_of, sizeof(uint32_t), BY_ORDER},
        {(void **)&c->id_keys, sizeof(uint64_t), BY_ORDER},
        {(void **)&c->id_tmp_keys, sizeof(uint64_t), BY_ORDER},
        {(void **)&c->rank_order, sizeof(uint32_t), BY_ORDER},
        {(void **)&c->id_tmp_vals, sizeof(uint32_t), BY_ORDER},
        {(void **)&c->side, sizeof(uint8_t), BY_ORDER},
        {(void **)&c->tie_keys, sizeof(uint64_t), BY_ORDER},
        {(void **)&c->by_seat, sizeof(uint32_t), BY_ORDER},
        {(void **)&c->tallies, sizeof(tally), BY_ORDER},
        {(void **)&c->parts, sizeof(mkt_participant_result), BY_ORDER},
        {(void **)&c->slots, sizeof(bid_slot), BY_ORDER},
        {(void **)&c->offered_ref, sizeof(uint64_t), BY_ORDER},
        {(void **)&c->tmp_offered_ref, sizeof(uint64_t), BY_ORDER},
        {(void **)&c->raw_energy, sizeof(int64_t), BY_RAW},
        {(void **)&c->raw_key, sizeof(uint64_t), BY_RAW},
        {(void **)&c->raw_energy32, sizeof(uint32_t), BY_RAW},
        {(void **)&c->raw_key32, sizeof(uint32_t), BY_RAW},
        {(void **)&c->raw_order, sizeof(uint32_t), BY_RAW},
        {(void **)&c->units, sizeof(unit), BY_UNIT},
        {(void **)&c->money, sizeof(unit_money), BY_UNIT},
        {(void **)&c->keys, sizeof(uint64_t), BY_UNIT},
        {(void **)&c->tmp_keys, sizeof(uint64_t), BY_UNIT},
        {(void **)&c->sorted, sizeof(uint32_t), BY_UNIT},
        {(void **)&c->tmp_vals, sizeof(uint32_t), BY_UNIT},
        {(void **)&c->tmp_vals2, sizeof(uint32_t), BY_UNIT},
        {(void **)&c->packed, sizeof(uint64_t), BY_UNIT},
        {(void **)&c->tmp_packed, sizeof(uint64_t), BY_UNIT},
        {(void **)&c->trades, sizeof(mkt_trade), BY_UNIT},
    };
    memcpy(a, t, sizeof t);
}

/* Asks the kernel to back a large scratch array with 2 MB pages where it can. The passes that
 * go through a permutation touch arrays of tens of MB at random, and with 4 KB pages nearly
 * every such access also misses the TLB. Only a hint: the contents and the results do not
 * depend on it, and where it is unsupported or refused nothing changes. */
static void hint_huge_pages(void *p, size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t page = 4096; /* madvise wants a page-aligned start */
    uintptr_t from = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t to = ((uintptr_t)p + bytes) & ~(page - 1);
    if (bytes >= (size_t)4 << 20 && to > from)
        (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/* Grows every array of one kind to n elements; the slow path of ensure. */
static int grow_arrays(mkt_clearing *c, int grows_with, size_t n)
{
    array_ref a[N_ARRAYS];
    arrays_of(c, a);
    for (size_t i = 0; i < N_ARRAYS; i++) {
        if (a[i].grows_with != grows_with)
            continue;
        size_t bytes = n * a[i].elem;
        void *q;
        if (grows_with == BY_RAW) {
            q = realloc(*a[i].p, bytes); /* grows during the scan: keeps what it holds */
        } else {
            /* Filled anew by every clearing, so nothing to keep; aligned to the cache line so
             * that a 32-byte record read at random (bid_slot) is one line, not two. */
            free(*a[i].p);
            *a[i].p = NULL;
            q = aligned_alloc(64, (bytes + 63) / 64 * 64);
        }
        if (!q)
            return MKT_E_NOMEM;
        *a[i].p = q;
        hint_huge_pages(q, bytes);
    }
    return MKT_OK;
}

/* Makes the arrays of one kind hold n elements unless *cap already does. */
static int ensure(mkt_clearing *c, int grows_with, size_t *cap, size_t n)
{
    if (n <= *cap)
        return MKT_OK;
    if (grow_arrays(c, grows_with, n))
        return MKT_E_NOMEM;
    *cap = n;
    return MKT_OK;
}

/* The raw units grow while the scan runs, because how many there are is only known after
 * reading every order; doubling keeps that amortised, and the bound is max_orders full curves. */
static int ensure_raw(mkt_clearing *c, size_t n)
{
    if (n <= c->cap_raw)
        return MKT_OK;
    size_t cap = c->cap_raw ? c->cap_raw : 64;
    while (cap < n)
        cap *= 2;
    if (cap > c->max_orders * MKT_MAX_STEPS)
        cap = c->max_orders * MKT_MAX_STEPS;
    return ensure(c, BY_RAW, &c->cap_raw, cap);
}

/* Makes the histogram hold n sums (hist_walk). */
static int ensure_hist(mkt_clearing *c, size_t n)
{
    if (n <= c->cap_hist)
        return MKT_OK;
    int64_t *q = realloc(c->hist, n * sizeof *q);
    if (!q)
        return MKT_E_NOMEM;
    c->hist = q;
    hint_huge_pages(q, n * sizeof *q);
    c->cap_hist = n;
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
    array_ref a[N_ARRAYS];
    arrays_of(c, a);
    for (size_t i = 0; i < N_ARRAYS; i++)
        free(*a[i].p);
    free(c->hist);
    free(c);
}

int mkt__check_params(const mkt_params *p)
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

/* Checks one step of an order and adds its energy to its side's running total, so that an
 * overflowing total is reported at the step that overflowed it. */
static int check_step(const mkt_step *st, int64_t *side_total)
{
    if (st->energy_wh <= 0 || st->energy_wh > MKT_ENERGY_MAX_WH)
        return MKT_E_ENERGY;
    if (st->price_uc_per_kwh < 0 || st->price_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH)
        return MKT_E_PRICE;
    return add_checked(side_total, st->energy_wh);
}

/* A sell step's effective price is max(ask, F); a buy step's min(bid, R) - fee, so that the
 * buyer's trade price plus the fee never exceeds its bid (the limit is all-in). A bid below the
 * fee gives a negative price, which is below the band and never trades. Both are computed and
 * one is chosen, without a branch: in a book the sides come at random, so a branch on them
 * would be mispredicted half the time. */
static int64_t effective_price(const price_band *band, int sell, int64_t limit)
{
    int64_t retail = band->hi + band->fee;
    int64_t ask = limit < band->lo ? band->lo : limit;
    int64_t bid = (limit > retail ? retail : limit) - band->fee;
    return sell ? ask : bid;
}

/* Width of the packed sort key. Only a test build lowers it, to drive ordinary books through
 * sort_units_twice, which real books reach only beyond 8M participants on a 2^40 uc band. */
#ifndef MKT__KEY_BITS
#define MKT__KEY_BITS 64
#endif

/* The high part of a unit's sort key: the buyer bit, then the price as a distance from the
 * side's best end of the band, so that ascending keys put the sellers first, cheapest first,
 * then the buyers, dearest first. build_book appends the rank below it. Without a branch on
 * the side, as effective_price. */
static uint64_t sort_key(const price_band *band, unsigned price_bits, int sell, int64_t price)
{
    uint64_t ask_key = (uint64_t)(price - band->lo);
    uint64_t bid_key = UINT64_C(1) << price_bits | (uint64_t)(band->hi - price);
    return sell ? ask_key : bid_key;
}

static int64_t key_price(const price_band *band, unsigned price_bits, uint64_t key)
{
    uint64_t mask = (UINT64_C(1) << price_bits) - 1;
    int64_t p = (int64_t)(key & mask);
    return key >> price_bits ? band->hi - p : band->lo + p;
}

/* Whether to match on the histogram (hist_match): it costs clearing and walking 2^(price_bits +
 * 1) sums, which pays when there are more orders (hence units) than that. A test build forces
 * it for every band narrow enough. Its keys (1 + price_bits) fit 32 bits. */
#define HIST_MAX_BITS 24
static int use_hist(const mkt_clearing *c, const price_band *band, size_t n_orders)
{
    if (!band->tradable || n_orders == 0 || c->price_bits > HIST_MAX_BITS)
        return 0;
#ifdef MKT__HIST_ALWAYS
    return 1;
#else
    return ((size_t)2 << c->price_bits) <= n_orders;
#endif
}

/* Whether the scanned book suits the histogram's 32-bit units after all: every unit's energy,
 * and for pay-as-bid (clear_bid_hist carries each order's offered energy in 32 bits too) every
 * order's, within 32 bits. No realistic book has a step of 4.29 GWh; one that does is scanned
 * again for the general path. */
static int fits_hist(const mkt_clearing *c, int pab)
{
    return c->raw_energy_max <= (int64_t)UINT32_MAX &&
           (!pab || c->offered_max <= (int64_t)UINT32_MAX);
}

/* Adds energy e at key to the units of the order being scanned, [first, *end): to the unit
 * already at that key, else as a new unit. Returns the unit's energy. The units of one order
 * need no order among themselves (every later pass orders units by key, and an order's keys
 * are distinct), so the unit is found by a search among the order's units so far, which almost
 * never hits. On the histogram the units are 32-bit: an energy beyond that is stored cut, and
 * the caller's maximum of the returned energies sends the book to the general path. */
static int64_t add_unit(mkt_clearing *c, size_t first, size_t *end, uint64_t key, int64_t e,
                        uint32_t index)
{
    size_t k = first, n = *end;
    if (c->hist_matched) {
        uint32_t *rk = c->raw_key32, *re = c->raw_energy32;
        while (k < n && rk[k] != (uint32_t)key)
            k++;
        if (k < n) {
            int64_t energy = (int64_t)re[k] + e;
            re[k] = (uint32_t)energy;
            return energy;
        }
        re[n] = (uint32_t)e;
        rk[n] = (uint32_t)key;
        c->raw_order[n] = index;
        *end = n + 1;
        return e;
    }
    while (k < n && c->raw_key[k] != key)
        k++;
    if (k < n) {
        c->raw_energy[k] += e; /* <= the side's total */
        return c->raw_energy[k];
    }
    c->raw_energy[n] = e;
    c->raw_key[n] = key;
    c->raw_order[n] = index;
    *end = n + 1;
    return e;
}

/* Checks one order on its own, adds its steps to its side's running total and appends its
 * units (add_unit): its steps at their effective prices, steps of equal effective price merged,
 * steps that can never beat the grid dropped, in one pass over the steps. An order whose check
 * fails may leave units behind, which the failed clearing never reads. */
static int take_order(mkt_clearing *c, const price_band *band, const mkt_order *o, uint32_t index,
                      int64_t totals[2], int64_t *offered, mkt_error_at *at)
{
    at->step_index = -1;
    if (o->side != MKT_BUY && o->side != MKT_SELL)
        return MKT_E_INVAL;
    if (o->n_steps == 0 || o->n_steps > MKT_MAX_STEPS)
        return MKT_E_STEPS;
    int rc = band->tradable ? ensure_raw(c, c->n_raw + o->n_steps) : MKT_OK;
    if (rc)
        return rc;
    int sell = o->side == MKT_SELL;
    int64_t sum = 0, max = c->raw_energy_max;
    size_t end = c->n_raw;
    for (uint32_t s = 0; s < o->n_steps; s++) {
        if ((rc = check_step(&o->steps[s], &totals[sell]))) {
            at->step_index = (int)s;
            return rc;
        }
        int64_t e = o->steps[s].energy_wh;
        int64_t p = effective_price(band, sell, o->steps[s].price_uc_per_kwh);
        sum += e; /* <= 16 TWh, cannot overflow */
        if (p < band->lo || p > band->hi)
            continue; /* never beats the grid (every step, when the band is not tradable) */
        int64_t u = add_unit(c, c->n_raw, &end, sort_key(band, c->price_bits, sell, p), e, index);
        max = u > max ? u : max;
    }
    c->raw_energy_max = max;
    c->n_raw = end;
    *offered = sum;
    return MKT_OK;
}

/* How far ahead the scan asks for orders: about 4 KiB, enough to hide a miss. */
#define SCAN_PREFETCH 16

/* The one pass over the caller's array: checks every order, keeps what later passes need of it
 * in compact per-order arrays (its id; its side and offered energy in rank_order and order_wh,
 * or with tb > 0 in offered_ref) and appends its units. With tb > 0 (pay-as-bid on the
 * histogram) it also keeps the top tb bits of each order's tie key for interval_id: computed
 * here, in array order while the scan waits on the caller's memory, the hash costs next to
 * nothing, where clear_bid_hist would pay for it in its random pass. */
static int scan_orders(mkt_clearing *c, const price_band *band, const mkt_order *orders,
                       size_t n, int64_t interval_id, unsigned tb, mkt_error_at *at)
{
    int64_t totals[2] = {0, 0}; /* bought, sold */
    c->ids_ascending = 1;
    c->offered_max = 0;
    c->n_raw = 0;
    c->raw_energy_max = 0;
    for (size_t i = 0; i < n; i++) {
        const mkt_order *o = &orders[i];
        if (i + SCAN_PREFETCH < n) {
            /* the header and first steps straddle two lines for most orders */
            const char *ahead = (const char *)&orders[i + SCAN_PREFETCH];
            __builtin_prefetch(ahead);
            __builtin_prefetch(ahead + 64);
        }
        at->order_index = i;
        int64_t offered;
        int rc = take_order(c, band, o, (uint32_t)i, totals, &offered, at);
        if (rc)
            return rc;
        c->id_keys[i] = o->participant;
        if (!tb) {
            c->rank_order[i] = order_ref(i, o->side);
            c->order_wh[i] = (order_energy){offered, 0};
        } else {
            c->order_tie[i] = (uint32_t)(mkt_tie_key(interval_id, o->participant) >> (64 - tb));
            /* offered is checked against 32 bits after the scan (fits_hist) */
            c->offered_ref[i] = (uint64_t)offered << 32 | order_ref(i, o->side);
            c->offered_max = offered > c->offered_max ? offered : c->offered_max;
        }
        if (i > 0 && o->participant <= c->id_keys[i - 1])
            c->ids_ascending = 0;
    }
    return MKT_OK;
}

/* How far ahead the passes that go through a permutation (id order from array order, sorted
 * units from raw ones, participants from sorted units) ask for the element they will need: the
 * accesses are random over arrays larger than the caches, so each would otherwise wait on DRAM. */
#define GATHER_PREFETCH 32

uint64_t mkt_tie_key(int64_t interval_id, uint64_t participant)
{
    /* splitmix64's finaliser, a bijection of 64-bit words with full avalanche */
    uint64_t z = (uint64_t)interval_id + UINT64_C(0x9E3779B97F4A7C15);
    for (int round = 0; round < 2; round++) {
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        z ^= z >> 31;
        if (round == 0)
            z += participant;
    }
    return z;
}

/* Seats the n participants, in id order in id_keys, for this interval: the order in which equal
 * effective prices are taken (pay-as-bid pairing, the pro-rata remainders). Seats go by the top
 * 32 bits of mkt_tie_key, then by participant id (the radix sort is stable and its input is in
 * id order), so the order rotates with the interval and no id is favoured over time, while the
 * result still does not depend on the order of the caller's array. Fills by_seat and returns
 * seat[r], the seat of rank r (in id_tmp_vals), which rank_orders stores in rank_of for
 * build_book to pack into the sort key. */
static uint32_t *seat_participants(mkt_clearing *c, size_t n, int64_t interval_id)
{
    for (size_t r = 0; r < n; r++) {
        c->tie_keys[r] = mkt_tie_key(interval_id, c->id_keys[r]) >> 32;
        c->by_seat[r] = (uint32_t)r;
    }
    mkt__radix_sort_bits(c->tie_keys, c->by_seat, n, 32, c->id_tmp_keys, c->id_tmp_vals);
    uint32_t *seat = c->id_tmp_vals; /* free again: seat[r] is the seat of rank r */
    for (size_t s = 0; s < n; s++)
        seat[c->by_seat[s]] = (uint32_t)s;
    return seat;
}

/* Rejects a participant seen twice among the ranked ids, whose order_refs are ref32[r], or the
 * low halves of ref64[r]. */
static int no_duplicate(const mkt_clearing *c, size_t n, const uint32_t *ref32,
                        const uint64_t *ref64, mkt_error_at *at)
{
    for (size_t r = 1; r < n; r++) {
        if (c->id_keys[r] != c->id_keys[r - 1])
            continue;
        uint32_t a = ref32 ? ref32[r - 1] : (uint32_t)ref64[r - 1];
        uint32_t b = ref32 ? ref32[r] : (uint32_t)ref64[r];
        at->order_index = ref_index(b);
        at->step_index = -1;
        return ref_side(a) == ref_side(b) ? MKT_E_DUPLICATE : MKT_E_BOTH_SIDES;
    }
    return MKT_OK;
}

/* Orders the participants by id (rank: id_keys[r], rank_order[r] its order) and rejects a
 * participant seen twice. */
static int rank_ids(mkt_clearing *c, size_t n, mkt_error_at *at)
{
    if (!c->ids_ascending)
        mkt__radix_sort(c->id_keys, c->rank_order, n, c->id_tmp_keys, c->id_tmp_vals);
    return no_duplicate(c, n, c->rank_order, NULL, at);
}

/* rank_ids for clear_bid_hist: the ids carry offered_ref along instead of rank_order. */
static int rank_ids_offered(mkt_clearing *c, size_t n, mkt_error_at *at)
{
    if (!c->ids_ascending)
        mkt__radix_sort_bits64(c->id_keys, c->offered_ref, n, 64, c->id_tmp_keys,
                               c->tmp_offered_ref);
    return no_duplicate(c, n, NULL, c->offered_ref, at);
}

/* rank_ids, then sets up the per-rank tallies (with the accepted energy, when hist_match ran)
 * and, with need_seats (units to sort), seats the participants (rank_of then holds each order's
 * seat; seating here saves a second random pass over rank_of). */
static int rank_orders(mkt_clearing *c, size_t n, int64_t interval_id, int need_seats,
                       mkt_error_at *at)
{
    int rc = rank_ids(c, n, at);
    if (rc)
        return rc;
    const uint32_t *seat = need_seats ? seat_participants(c, n, interval_id) : NULL;
    for (size_t r = 0; r < n; r++) {
        uint32_t ref = c->rank_order[r], i = ref_index(ref);
        if (r + GATHER_PREFETCH < n) {
            uint32_t ahead = ref_index(c->rank_order[r + GATHER_PREFETCH]);
            __builtin_prefetch(&c->order_wh[ahead]);
            if (seat)
                __builtin_prefetch(&c->rank_of[ahead], 1);
        }
        if (seat)
            c->rank_of[i] = seat[r];
        c->side[r] = ref_side(ref);
        c->tallies[r] = (tally){c->order_wh[i].offered, c->order_wh[i].local, 0, 0};
    }
    c->n_parts = n;
    return MKT_OK;
}


/* Whether the unit sort carries each unit's energy itself rather than its index: it does when
 * every unit fits the 32-bit payload (any real book: 4.29 GWh), which spares build_book a
 * random read of raw_energy per unit. */
static int energy_in_payload(const mkt_clearing *c, int packed)
{
    return packed && c->raw_energy_max <= (int64_t)UINT32_MAX;
}

/* With the seat below the price every key is unique (a participant's units on one side have
 * distinct prices), so one radix sort gives the matching order, ties by seat. The payload is
 * the unit's energy or its index (energy_in_payload). */
static void sort_units_packed(mkt_clearing *c, unsigned rank_bits)
{
    int by_energy = energy_in_payload(c, 1);
    for (size_t i = 0; i < c->n_raw; i++) {
        c->keys[i] = c->raw_key[i] << rank_bits | c->rank_of[c->raw_order[i]];
        c->sorted[i] = by_energy ? (uint32_t)c->raw_energy[i] : (uint32_t)i;
    }
    /* buyer bit, price distance (< 2^price_bits), seat (< 2^rank_bits) */
    mkt__radix_sort_bits(c->keys, c->sorted, c->n_raw, 1 + c->price_bits + rank_bits,
                         c->tmp_keys, c->tmp_vals);
}

/* The same order when the key and the seat do not fit 64 bits together (price bands wider than
 * about 2^35 uc/kWh with many participants): by seat first, then stably by the key. */
static void sort_units_twice(mkt_clearing *c)
{
    for (size_t i = 0; i < c->n_raw; i++) {
        c->keys[i] = c->rank_of[c->raw_order[i]];
        c->sorted[i] = (uint32_t)i;
    }
    mkt__radix_sort(c->keys, c->sorted, c->n_raw, c->tmp_keys, c->tmp_vals);
    for (size_t i = 0; i < c->n_raw; i++)
        c->keys[i] = c->raw_key[c->sorted[i]];
    mkt__radix_sort(c->keys, c->sorted, c->n_raw, c->tmp_keys, c->tmp_vals);
}

/* Sorts the raw units into matching order and gathers them into c->units, so that the match,
 * the pro rata and the pairing walk one array front to back. Price and seat come back out of
 * the key; the energy is fetched through the permutation and the seat mapped back to the rank
 * (units carry the rank, which indexes the per-participant tallies). */
static void build_book(mkt_clearing *c, const price_band *band)
{
    unsigned rank_bits = c->n_parts > 1 ? mkt__bit_width(c->n_parts - 1) : 0;
    int packed = 1 + c->price_bits + rank_bits <= MKT__KEY_BITS;
    uint64_t rank_mask = (UINT64_C(1) << rank_bits) - 1;
    if (packed)
        sort_units_packed(c, rank_bits);
    else
        sort_units_twice(c);
    int by_energy = energy_in_payload(c, packed);
    size_t n_buy = 0;
    for (size_t i = 0; i < c->n_raw; i++) {
        uint32_t k = c->sorted[i];
        if (i + GATHER_PREFETCH < c->n_raw) {
            if (!by_energy)
                __builtin_prefetch(&c->raw_energy[c->sorted[i + GATHER_PREFETCH]]);
            if (packed)
                __builtin_prefetch(&c->by_seat[c->keys[i + GATHER_PREFETCH] & rank_mask]);
        }
        uint64_t key = packed ? c->keys[i] >> rank_bits : c->keys[i];
        uint32_t seat = packed ? (uint32_t)(c->keys[i] & rank_mask) : c->rank_of[c->raw_order[k]];
        uint32_t rank = c->by_seat[seat];
        int64_t energy = by_energy ? (int64_t)k : c->raw_energy[k];
        c->units[i] = (unit){energy, key_price(band, c->price_bits, key), 0, rank};
        n_buy += key >> c->price_bits;
    }
    c->n_buy_units = n_buy;
    c->n_sell_units = c->n_raw - n_buy;
}

/* A cursor over one side's sorted units, a price level at a time. */
typedef struct {
    unit *u;
    size_t n;
    size_t pos, end; /* current level [pos, end) */
    int64_t level_total, remaining;
} cursor;

static void level_start(cursor *k)
{
    k->end = k->pos;
    k->level_total = 0;
    while (k->end < k->n && k->u[k->end].price == k->u[k->pos].price) {
        k->level_total += k->u[k->end].energy_wh;
        k->end++;
    }
    k->remaining = k->level_total;
}

static void level_accept_all(cursor *k)
{
    for (size_t i = k->pos; i < k->end; i++)
        k->u[i].accepted_wh = k->u[i].energy_wh;
    k->pos = k->end;
    if (k->pos < k->n)
        level_start(k);
}

/* Shares x Wh of a level of total Wh pro rata: floors first, then the leftover Wh one each by
 * largest remainder, ties by seat (the level is in seat order and the radix sort is stable). */
static void prorate(mkt_clearing *c, const cursor *k, int64_t x, uint64_t *rem)
{
    size_t n = k->end - k->pos;
    unit *level = k->u + k->pos;
    int64_t left = x;
    for (size_t i = 0; i < n; i++) {
        unit *u = &level[i];
        __extension__ unsigned __int128 prod = (unsigned __int128)x * (uint64_t)u->energy_wh;
        u->accepted_wh = (int64_t)(prod / (uint64_t)k->level_total);
        left -= u->accepted_wh;
        /* descending remainder as an ascending key */
        rem[i] = (uint64_t)(k->level_total - 1) - (uint64_t)(prod % (uint64_t)k->level_total);
        c->tmp_vals2[i] = (uint32_t)i;
    }
    if (left == 0)
        return;
    mkt__radix_sort(rem, c->tmp_vals2, n, c->tmp_keys, c->tmp_vals);
    for (size_t i = 0; i < (size_t)left; i++)
        level[c->tmp_vals2[i]].accepted_wh++;
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
    cursor s = {c->units, c->n_sell_units, 0, 0, 0, 0};
    cursor b = {c->units + c->n_sell_units, c->n_buy_units, 0, 0, 0, 0};
    if (s.n)
        level_start(&s);
    if (b.n)
        level_start(&b);
    while (s.pos < s.n && b.pos < b.n && s.u[s.pos].price <= b.u[b.pos].price) {
        int64_t take = s.remaining < b.remaining ? s.remaining : b.remaining;
        m.matched += take;
        s.remaining -= take;
        b.remaining -= take;
        m.acc_sell_max = s.u[s.pos].price;
        m.acc_buy_min = b.u[b.pos].price;
        if (s.remaining == 0)
            level_accept_all(&s);
        if (b.remaining == 0)
            level_accept_all(&b);
    }
    if (s.pos < s.n && s.remaining < s.level_total)
        prorate(c, &s, s.level_total - s.remaining, c->keys);
    if (b.pos < b.n && b.remaining < b.level_total)
        prorate(c, &b, b.level_total - b.remaining, c->keys);
    /* A partly taken level is also the first rejected one: that pins the price to it. */
    m.has_rej_sell = s.pos < s.n;
    m.rej_sell_min = m.has_rej_sell ? s.u[s.pos].price : 0;
    m.has_rej_buy = b.pos < b.n;
    m.rej_buy_max = m.has_rej_buy ? b.u[b.pos].price : 0;
    /* Every level past the current one was never reached; the current one may be partly
     * taken. The passes after the match stop there instead of walking every unit. */
    c->n_sell_accepted = s.pos < s.n ? s.end : s.n;
    c->n_buy_accepted = b.pos < b.n ? b.end : b.n;
    return m;
}

/* The match on a histogram (hist_match and its helpers). When the band has few prices against
 * the units (any real tariff at 1 uc resolution with a large book), each side's curve is its
 * energy per price, which one pass over the units sums in array order (a loop of its own:
 * inside the scan the same sums made it take twice as long, their cache misses no longer
 * overlapping). The walk of match() runs over those sums instead of over sorted units and gives
 * the same levels, volumes and prices: a level there is every unit of one side at one price,
 * here the sum of their energies. Only the units of the two levels that are partly taken need
 * an order among themselves (by seat, for the pro rata); every other unit is taken whole or not
 * at all by its price alone, so no unit is sorted. The walk is hist_walk; for pay-as-clear
 * hist_match then runs before rank_orders (ids still by index in the caller's array) and
 * leaves each order's accepted energy in order_wh; pay-as-bid keeps instead only the units that
 * accepted anything, with their accepted energy (clear_bid_hist, below), which is all its
 * pairing walk needs sorted. */

/* The first price with energy from k on (width when none). */
static size_t hist_next(const int64_t *h, size_t k, size_t width)
{
    while (k < width && h[k] == 0)
        k++;
    return k;
}

/* Where the walk on the histogram stopped: raw keys below sell_end (sellers) and from width to
 * buy_end (buyers) are taken whole; the units at sell_part and buy_part (UINT64_MAX when no
 * level is partly taken) share the part of their level that was taken, *_taken of *_total. */
typedef struct {
    uint64_t sell_end, buy_end, sell_part, buy_part;
    int64_t sell_total, sell_taken, buy_total, buy_taken;
} hist_cut;

/* Sums each side's energy per price and walks the two curves over those sums as match() does
 * over sorted units. */
static match_result hist_walk(mkt_clearing *c, const price_band *band, hist_cut *cut)
{
    match_result m = {0};
    size_t width = (size_t)1 << c->price_bits, n = c->n_raw;
    int64_t *hs = c->hist, *hb = c->hist + width;
    memset(c->hist, 0, 2 * width * sizeof *c->hist);
    for (size_t i = 0; i < n; i++)
        c->hist[c->raw_key32[i]] += c->raw_energy32[i]; /* <= the side's total (the scan) */
    size_t ks = hist_next(hs, 0, width), kb = hist_next(hb, 0, width);
    int64_t s_left = ks < width ? hs[ks] : 0, b_left = kb < width ? hb[kb] : 0;
    while (ks < width && kb < width && band->lo + (int64_t)ks <= band->hi - (int64_t)kb) {
        int64_t take = s_left < b_left ? s_left : b_left;
        m.matched += take;
        s_left -= take;
        b_left -= take;
        m.acc_sell_max = band->lo + (int64_t)ks;
        m.acc_buy_min = band->hi - (int64_t)kb;
        if (s_left == 0 && (ks = hist_next(hs, ks + 1, width)) < width)
            s_left = hs[ks];
        if (b_left == 0 && (kb = hist_next(hb, kb + 1, width)) < width)
            b_left = hb[kb];
    }
    m.has_rej_sell = ks < width;
    m.rej_sell_min = m.has_rej_sell ? band->lo + (int64_t)ks : 0;
    m.has_rej_buy = kb < width;
    m.rej_buy_max = m.has_rej_buy ? band->hi - (int64_t)kb : 0;
    /* The level at ks (width + kb) is taken in part when something of it was, else not at all. */
    *cut = (hist_cut){ks, width + kb, UINT64_MAX, UINT64_MAX, 0, 0, 0, 0};
    if (ks < width && s_left < hs[ks])
        cut->sell_part = ks, cut->sell_total = hs[ks], cut->sell_taken = hs[ks] - s_left;
    if (kb < width && b_left < hb[kb])
        cut->buy_part = width + kb, cut->buy_total = hb[kb], cut->buy_taken = hb[kb] - b_left;
    return m;
}

/* Puts the n units of a partly taken level in seat order (seat_participants' order: by the
 * top 32 bits of the tie key, then by id), given ids[j], the participant of unit j (the array
 * is used up). Returns the permutation: the j-th unit in seat order is unit seat[j]. */
static const uint32_t *level_seats(mkt_clearing *c, uint64_t *ids, size_t n, int64_t interval_id)
{
    for (size_t j = 0; j < n; j++)
        c->tmp_vals2[j] = (uint32_t)j;
    mkt__radix_sort(ids, c->tmp_vals2, n, c->tmp_keys, c->tmp_vals);
    for (size_t j = 0; j < n; j++)
        ids[j] = mkt_tie_key(interval_id, ids[j]) >> 32;
    mkt__radix_sort_bits(ids, c->tmp_vals2, n, 32, c->tmp_keys, c->tmp_vals);
    return c->tmp_vals2;
}

/* Shares the taken part x of a level of level_total Wh among its units, list[0..n) (indices
 * into the raw units, in seat order from level_seats), in c->units; each unit's `rank` field
 * holds its index meanwhile. */
static void share_level(mkt_clearing *c, size_t n, int64_t level_total, int64_t x,
                        uint64_t *scratch)
{
    cursor level = {c->units, n, 0, n, level_total, level_total - x};
    prorate(c, &level, x, scratch);
}

/* Shares the partly taken level whose raw units are list[0..n) and adds each unit's share to
 * its order. The ids are still by order (hist_match runs before rank_orders). */
static void hist_prorate(mkt_clearing *c, const uint32_t *list, size_t n, int64_t level_total,
                         int64_t x, int64_t interval_id)
{
    for (size_t j = 0; j < n; j++)
        c->keys[j] = c->id_keys[c->raw_order[list[j]]];
    const uint32_t *seat = level_seats(c, c->keys, n, interval_id);
    for (size_t j = 0; j < n; j++) {
        uint32_t k = list[seat[j]];
        c->units[j] = (unit){c->raw_energy32[k], 0, 0, k};
    }
    share_level(c, n, level_total, x, c->keys);
    for (size_t j = 0; j < n; j++)
        c->order_wh[c->raw_order[c->units[j].rank]].local += c->units[j].accepted_wh;
}

/* Pay-as-clear on the histogram: the match (hist_walk), then each order's accepted energy, in
 * order_wh. */
static match_result hist_match(mkt_clearing *c, const price_band *band, int64_t interval_id)
{
    hist_cut cut;
    match_result m = hist_walk(c, band, &cut);
    size_t width = (size_t)1 << c->price_bits, n = c->n_raw;
    /* the partly taken levels' units, sellers from the front of c->sorted, buyers from the back */
    size_t n_sp = 0, n_bp = 0;
    /* Whether a unit is taken is a coin toss in price order, so it is computed as a mask, not
     * a branch. */
    for (size_t i = 0; i < n; i++) {
        uint32_t key = c->raw_key32[i];
        int whole = (key < cut.sell_end) | ((key >= width) & (key < cut.buy_end));
        c->order_wh[c->raw_order[i]].local += (int64_t)c->raw_energy32[i] & -(int64_t)whole;
        if (__builtin_expect(key == cut.sell_part, 0))
            c->sorted[n_sp++] = (uint32_t)i;
        else if (__builtin_expect(key == cut.buy_part, 0))
            c->sorted[n - 1 - n_bp++] = (uint32_t)i;
    }
    if (n_sp)
        hist_prorate(c, c->sorted, n_sp, cut.sell_total, cut.sell_taken, interval_id);
    if (n_bp)
        hist_prorate(c, c->sorted + (n - n_bp), n_bp, cut.buy_total, cut.buy_taken, interval_id);
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

/* Appends one trade between two ids and adds its money to the book's totals; the caller
 * credits the two parties, so that it can do so wherever their sums live. */
static int add_trade_ids(mkt_clearing *c, const mkt_params *p, uint64_t seller, uint64_t buyer,
                         int64_t energy_wh, int64_t price)
{
    mkt_trade *t = &c->trades[c->n_trades++];
    t->seller = seller;
    t->buyer = buyer;
    t->energy_wh = energy_wh;
    t->price_uc_per_kwh = price;
    if (mkt_amount_uc_inline(energy_wh, price, &t->amount_uc) ||
        mkt_amount_uc_inline(energy_wh, p->network_fee_uc_per_kwh, &t->fee_uc) ||
        add_checked(&c->sum.local_value_uc, t->amount_uc) ||
        add_checked(&c->sum.fees_uc, t->fee_uc))
        return MKT_E_OVERFLOW;
    return MKT_OK;
}

/* add_trade_ids between two ranks. */
static int add_trade(mkt_clearing *c, const mkt_params *p, uint32_t seller_rank,
                     uint32_t buyer_rank, int64_t energy_wh, int64_t price)
{
    return add_trade_ids(c, p, c->id_keys[seller_rank], c->id_keys[buyer_rank], energy_wh, price);
}

/* Credits a trade to the sums of its seller and buyer. All terms are non-negative, so whether a
 * sum overflows does not depend on the order the terms arrive in. */
static int credit_trade(int64_t *seller_uc, int64_t *buyer_uc, int64_t *buyer_fee_uc,
                        const mkt_trade *t)
{
    if (add_checked(seller_uc, t->amount_uc) || add_checked(buyer_uc, t->amount_uc) ||
        add_checked(buyer_fee_uc, t->fee_uc))
        return MKT_E_OVERFLOW;
    return MKT_OK;
}

/* Writes participant record r from its tally and settles the rest of its curve with the
 * grid, adding the grid legs to *sum (c->sum, or a copy the caller keeps in registers). */
static inline int finish_part(mkt_clearing *c, const mkt_params *p, size_t r, uint64_t id,
                              const tally *t, mkt_summary *sum)
{
    mkt_participant_result *pr = &c->parts[r];
    memset(pr, 0, sizeof *pr);
    pr->participant = id;
    pr->side = (mkt_side)c->side[r];
    pr->offered_wh = t->offered_wh;
    int rc;
    if (pr->side == MKT_SELL) {
        pr->local_sold_wh = t->local_wh;
        pr->local_received_uc = t->local_uc;
        pr->grid_sold_wh = t->offered_wh - t->local_wh;
        rc = mkt_amount_uc_inline(pr->grid_sold_wh, p->feed_in_uc_per_kwh, &pr->grid_received_uc);
        if (rc || add_checked(&sum->grid_sold_wh, pr->grid_sold_wh) ||
            add_checked(&sum->grid_received_uc, pr->grid_received_uc))
            return MKT_E_OVERFLOW;
    } else {
        pr->local_bought_wh = t->local_wh;
        pr->local_paid_uc = t->local_uc;
        pr->fee_paid_uc = t->fee_uc;
        pr->grid_bought_wh = t->offered_wh - t->local_wh;
        rc = mkt_amount_uc_inline(pr->grid_bought_wh, p->retail_uc_per_kwh, &pr->grid_paid_uc);
        if (rc || add_checked(&sum->grid_bought_wh, pr->grid_bought_wh) ||
            add_checked(&sum->grid_paid_uc, pr->grid_paid_uc))
            return MKT_E_OVERFLOW;
    }
    return MKT_OK;
}

/* Writes every participant record, in rank order (pay-as-bid, and a book with no trade). */
static int finish_parts(mkt_clearing *c, const mkt_params *p)
{
    for (size_t r = 0; r < c->n_parts; r++) {
        int rc = finish_part(c, p, r, c->id_keys[r], &c->tallies[r], &c->sum);
        if (rc)
            return rc;
    }
    return MKT_OK;
}

/* The first participant on `side` from rank `from` on with local energy to pair: where a
 * pay-as-clear cursor goes next (n_parts when there is none). */
static size_t next_trader(const mkt_clearing *c, size_t from, mkt_side side)
{
    while (from < c->n_parts && (c->side[from] != side || c->tallies[from].local_wh == 0))
        from++;
    return from;
}

/* Pay-as-clear pairs sellers and buyers in id order: every pair trades at the same price, so
 * the simplest canonical order is also the one with the fewest trades. Both cursors move
 * forward through the rank-ordered tallies, and each participant's record is written as soon as
 * the cursor of its side has passed it (its money is then complete): the cursors stay close
 * together in rank (both sides' local volumes are spread over the ranks), so the tallies are
 * read from memory once for the trades and the records together. */
static int trades_uniform(mkt_clearing *c, const mkt_params *p, int64_t price)
{
    size_t n = c->n_parts;
    tally *t = c->tallies;
    size_t i = next_trader(c, 0, MKT_SELL), j = next_trader(c, 0, MKT_BUY);
    int64_t s_left = i < n ? t[i].local_wh : 0, b_left = j < n ? t[j].local_wh : 0;
    for (size_t r = 0; r < n; r++) {
        /* Both sides have the same local volume, so while one cursor has some left the other
         * has too; the bounds only guard that invariant. */
        while ((c->side[r] == MKT_SELL ? i : j) <= r && i < n && j < n) {
            int64_t e = s_left < b_left ? s_left : b_left;
            int rc = add_trade(c, p, (uint32_t)i, (uint32_t)j, e, price);
            if (rc || (rc = credit_trade(&t[i].local_uc, &t[j].local_uc, &t[j].fee_uc,
                                         &c->trades[c->n_trades - 1])))
                return rc;
            s_left -= e;
            b_left -= e;
            if (s_left == 0 && (i = next_trader(c, i + 1, MKT_SELL)) < n)
                s_left = t[i].local_wh;
            if (b_left == 0 && (j = next_trader(c, j + 1, MKT_BUY)) < n)
                b_left = t[j].local_wh;
        }
        int rc = finish_part(c, p, r, c->id_keys[r], &c->tallies[r], &c->sum);
        if (rc)
            return rc;
    }
    return MKT_OK;
}

/* Pay-as-bid pairs the dearest bids with the cheapest asks, each at the bid. The money goes
 * beside the units, which this walk visits in order (every one that accepted anything, so each
 * gets its sums zeroed); credit_units moves it to the participants. */
static int trades_by_bid(mkt_clearing *c, const mkt_params *p)
{
    unit *sell = c->units, *buy = c->units + c->n_sell_units;
    unit_money *sell_m = c->money, *buy_m = c->money + c->n_sell_units;
    size_t i = 0, j = 0, n_sell = c->n_sell_accepted, n_buy = c->n_buy_accepted;
    int64_t s_left = 0, b_left = 0;
    for (;;) {
        for (; s_left == 0 && i < n_sell; i++) {
            s_left = sell[i].accepted_wh;
            sell_m[i] = (unit_money){0, 0};
            if (i + GATHER_PREFETCH < n_sell)
                __builtin_prefetch(&c->id_keys[sell[i + GATHER_PREFETCH].rank]);
        }
        for (; b_left == 0 && j < n_buy; j++) {
            b_left = buy[j].accepted_wh;
            buy_m[j] = (unit_money){0, 0};
            if (j + GATHER_PREFETCH < n_buy)
                __builtin_prefetch(&c->id_keys[buy[j + GATHER_PREFETCH].rank]);
        }
        if (s_left == 0 || b_left == 0)
            return MKT_OK;
        int64_t e = s_left < b_left ? s_left : b_left;
        int rc = add_trade(c, p, sell[i - 1].rank, buy[j - 1].rank, e, buy[j - 1].price);
        if (rc || (rc = credit_trade(&sell_m[i - 1].amount_uc, &buy_m[j - 1].amount_uc,
                                     &buy_m[j - 1].fee_uc, &c->trades[c->n_trades - 1])))
            return rc;
        s_left -= e;
        b_left -= e;
    }
}

/* Adds the accepted energy and, for pay-as-bid, the money of units [from, to) to their
 * participants. */
static int credit_range(mkt_clearing *c, int with_money, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        const unit *u = &c->units[i];
        if (i + GATHER_PREFETCH < to)
            __builtin_prefetch(&c->tallies[u[GATHER_PREFETCH].rank], 1);
        if (u->accepted_wh == 0)
            continue;
        tally *t = &c->tallies[u->rank];
        t->local_wh += u->accepted_wh; /* <= offered_wh */
        if (with_money && (add_checked(&t->local_uc, c->money[i].amount_uc) ||
                           add_checked(&t->fee_uc, c->money[i].fee_uc)))
            return MKT_E_OVERFLOW;
    }
    return MKT_OK;
}

/* Credits each side's units up to the last one that accepted anything (the rest of the book,
 * about half of it in a crossed market, has nothing to credit). */
static int credit_units(mkt_clearing *c, int with_money)
{
    int rc = credit_range(c, with_money, 0, c->n_sell_accepted);
    return rc ? rc
              : credit_range(c, with_money, c->n_sell_units, c->n_sell_units + c->n_buy_accepted);
}

/* Pay-as-bid on the histogram (clear_bid_hist and its helpers). The walk on the histogram
 * (hist_walk) says which units accepted something by their price alone, and bid_units keeps
 * those, each with its accepted energy, in array order. What is left to do is the pairing,
 * which walks them in matching order, and the money per participant. The general path seats
 * every participant (a sort of all of them by tie key) and sorts the units by (price, seat);
 * here the top bits of the unit's own tie key go below its price in the sort key instead, so
 * that no participant is seated: the seat order is the tie key's top 32 bits,
 * then the id, and the few units of one price whose top bits in the key are equal are put in
 * that order afterwards (order_equal_ties). The key keeps only as many tie bits as fill its
 * last radix digit, so that the sort makes no pass for them alone. The payload carries the
 * participant's rank and the accepted energy, so the walk reads nothing in price order but one
 * 32-byte slot per party (id and running sums), and the records are then written from the slots
 * in rank order, sequentially. */

/* Bits of the tie key in the sort key: at least TIE_MIN_BITS (so that equal keys stay rare:
 * about one pair in 2^12 of a level's pairs), then up to the end of the radix digit. */
#define TIE_MIN_BITS 12
static unsigned tie_bits(unsigned price_bits)
{
    unsigned head = 1 + price_bits, bits = head + TIE_MIN_BITS;
    bits = (bits + 7) / 8 * 8; /* the sort's digits are 8 bits */
    return bits - head > 32 ? 32 : bits - head;
}

/* Puts each run of equal keys (one price, equal top bits of the tie key) in seat order: by the
 * top 32 bits of the tie key, then by id, which is rank. The sort left them in array order.
 * Insertion sort: a million units give a few hundred runs, nearly all of two. */
static void order_equal_ties(mkt_clearing *c, size_t n, int64_t interval_id)
{
    const uint64_t *k = c->keys;
    uint64_t *v = c->packed;
    for (size_t i = 1; i < n; i++) {
        if (k[i] != k[i - 1])
            continue;
        size_t from = i - 1, to = i + 1;
        while (to < n && k[to] == k[from])
            to++;
        for (size_t a = from; a < to; a++) { /* seat order as a key: tie bits above rank */
            uint32_t r = (uint32_t)(v[a] >> 32);
            c->tmp_keys[a] = (mkt_tie_key(interval_id, c->slots[r].id) >> 32) << 32 | r;
        }
        for (size_t a = from + 1; a < to; a++) {
            uint64_t x = v[a], sk = c->tmp_keys[a];
            size_t b = a;
            for (; b > from && c->tmp_keys[b - 1] > sk; b--) {
                v[b] = v[b - 1];
                c->tmp_keys[b] = c->tmp_keys[b - 1];
            }
            v[b] = x;
            c->tmp_keys[b] = sk;
        }
        i = to - 1;
    }
}

/* The pairing walk of trades_by_bid over the packed units: sellers [0, n_sell), buyers after
 * them, each trade at the buyer's price. */
static int pair_by_bid(mkt_clearing *c, const mkt_params *p, const price_band *band,
                       size_t n_sell, unsigned tb)
{
    const uint64_t *v = c->packed, *k = c->keys;
    bid_slot *slot = c->slots;
    mkt_trade *t = c->trades + c->n_trades;
    /* the book's sums in locals: stores to the trades could alias them, so the compiler would
     * reload them for every trade */
    int64_t value_uc = c->sum.local_value_uc, fees_uc = c->sum.fees_uc;
    size_t n = c->n_raw, i = 0, j = n_sell;
    int64_t s_left = 0, b_left = 0;
    int rc = MKT_OK;
    for (;;) {
        for (; s_left == 0 && i < n_sell; i++) {
            s_left = (int64_t)(v[i] & UINT32_MAX);
            if (i + GATHER_PREFETCH < n_sell)
                __builtin_prefetch(&slot[v[i + GATHER_PREFETCH] >> 32], 1);
        }
        for (; b_left == 0 && j < n; j++) {
            b_left = (int64_t)(v[j] & UINT32_MAX);
            if (j + GATHER_PREFETCH < n)
                __builtin_prefetch(&slot[v[j + GATHER_PREFETCH] >> 32], 1);
        }
        if (s_left == 0 || b_left == 0)
            break;
        bid_slot *ss = &slot[v[i - 1] >> 32], *bs = &slot[v[j - 1] >> 32];
        int64_t e = s_left < b_left ? s_left : b_left;
        int64_t price = key_price(band, c->price_bits, k[j - 1] >> tb);
        int64_t amount, fee;
        if (mkt_amount_uc_inline(e, price, &amount) ||
            mkt_amount_uc_inline(e, p->network_fee_uc_per_kwh, &fee) ||
            add_checked(&value_uc, amount) || add_checked(&fees_uc, fee) ||
            add_checked(&ss->local_uc, amount) || add_checked(&bs->local_uc, amount) ||
            add_checked(&bs->fee_uc, fee)) {
            rc = MKT_E_OVERFLOW;
            break;
        }
        *t++ = (mkt_trade){ss->id, bs->id, e, price, amount, fee};
        ss->local_wh += e; /* every accepted Wh is paired: the sums are the accepted energy */
        bs->local_wh += e;
        s_left -= e;
        b_left -= e;
    }
    c->n_trades = (size_t)(t - c->trades);
    c->sum.local_value_uc = value_uc;
    c->sum.fees_uc = fees_uc;
    return rc;
}

/* Shares the partly taken level whose units are list[0..n), positions in c->keys and c->packed
 * (clear_bid_hist's units): each share replaces the unit's energy in its payload. */
static void bid_prorate(mkt_clearing *c, const uint32_t *list, size_t n, int64_t level_total,
                        int64_t x, int64_t interval_id)
{
    uint64_t *ids = c->tmp_packed; /* free until the unit sort */
    for (size_t j = 0; j < n; j++)
        ids[j] = c->id_keys[c->packed[list[j]] >> 32];
    const uint32_t *seat = level_seats(c, ids, n, interval_id);
    for (size_t j = 0; j < n; j++) {
        uint32_t k = list[seat[j]];
        c->units[j] = (unit){(int64_t)(c->packed[k] & UINT32_MAX), 0, 0, k};
    }
    share_level(c, n, level_total, x, ids); /* the ids are used up */
    for (size_t j = 0; j < n; j++) {
        uint32_t k = c->units[j].rank;
        c->packed[k] = (c->packed[k] & ~(uint64_t)UINT32_MAX) | (uint64_t)c->units[j].accepted_wh;
    }
}

/* clear_bid_hist's units: what each raw unit accepted after the walk stopped at *cut, kept only
 * when it accepted anything (a partly taken level's units all are, until bid_prorate shares
 * it), in array order, as sort keys (raw key, then the top tb bits of the tie key) in c->keys
 * and as the participant's rank above the accepted energy in c->packed. Returns how many of
 * them are sellers'. */
static size_t bid_units(mkt_clearing *c, const hist_cut *cut, unsigned tb, int64_t interval_id)
{
    size_t width = (size_t)1 << c->price_bits, n = c->n_raw;
    size_t n_sp = 0, n_bp = 0, w = 0, n_sell = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t key = c->raw_key32[i], o = c->raw_order[i];
        int sell = key < width;
        int whole = (key < cut->sell_end) | (!sell & (key < cut->buy_end));
        int part = (key == cut->sell_part) | (key == cut->buy_part);
        /* written whatever the unit accepted; only a kept one moves w on */
        c->keys[w] = (uint64_t)key << tb | c->order_tie[o];
        c->packed[w] = (uint64_t)c->rank_of[o] << 32 | c->raw_energy32[i];
        if (__builtin_expect(key == cut->sell_part, 0))
            c->sorted[n_sp++] = (uint32_t)w;
        else if (__builtin_expect(key == cut->buy_part, 0))
            c->sorted[n - 1 - n_bp++] = (uint32_t)w;
        n_sell += (size_t)((whole | part) & sell);
        w += (size_t)(whole | part);
    }
    c->n_raw = w;
    if (n_sp)
        bid_prorate(c, c->sorted, n_sp, cut->sell_total, cut->sell_taken, interval_id);
    if (n_bp)
        bid_prorate(c, c->sorted + (n - n_bp), n_bp, cut->buy_total, cut->buy_taken,
                    interval_id);
    return n_sell;
}

/* Pay-as-bid on the histogram, in place of rank_orders and clear_book (fits_hist has checked that
 * every accepted energy and every order's offered energy fits 32 bits). */
static int clear_bid_hist(mkt_clearing *c, const mkt_params *p, const price_band *band,
                          size_t n_orders, mkt_error_at *at)
{
    size_t n_sell;
    unsigned pb = c->price_bits, tb = tie_bits(pb);
    int rc = rank_ids_offered(c, n_orders, at);
    if (rc)
        return rc;
    at->order_index = MKT_AT_BOOK;
    at->step_index = -1;

    /* in rank order: the slots (the walk adds up their energy and money), and each order's
     * rank for its units */
    for (size_t r = 0; r < n_orders; r++) {
        uint32_t ref = (uint32_t)c->offered_ref[r], i = ref_index(ref);
        if (r + GATHER_PREFETCH < n_orders)
            __builtin_prefetch(&c->rank_of[ref_index((uint32_t)c->offered_ref[r + GATHER_PREFETCH])],
                               1);
        c->rank_of[i] = (uint32_t)r;
        c->side[r] = ref_side(ref);
        c->slots[r] = (bid_slot){c->id_keys[r], 0, 0, 0};
    }
    c->n_parts = n_orders;
    hist_cut cut;
    c->sum.matched_wh = hist_walk(c, band, &cut).matched;
    n_sell = bid_units(c, &cut, tb, p->interval_id);
    size_t n = c->n_raw;
    mkt__radix_sort_bits64(c->keys, c->packed, n, 1 + pb + tb, c->tmp_keys, c->tmp_packed);
    order_equal_ties(c, n, p->interval_id);
    if ((rc = pair_by_bid(c, p, band, n_sell, tb)))
        return rc;
    mkt_summary sum = c->sum;
    for (size_t r = 0; r < n_orders && rc == MKT_OK; r++) {
        const bid_slot *s = &c->slots[r];
        tally t = {(int64_t)(c->offered_ref[r] >> 32), s->local_wh, s->local_uc, s->fee_uc};
        rc = finish_part(c, p, r, s->id, &t, &sum);
    }
    c->sum = sum;
    return rc;
}

static void reset(mkt_clearing *c, const mkt_params *params)
{
    c->n_parts = 0;
    c->n_trades = 0;
    c->n_raw = 0;
    c->n_sell_units = 0;
    c->n_buy_units = 0;
    c->n_sell_accepted = 0;
    c->n_buy_accepted = 0;
    c->hist_matched = 0;
    memset(&c->sum, 0, sizeof c->sum);
    if (params)
        c->sum.mechanism = params->mechanism;
}

/* Matching, pricing and pairing on a ranked, valid book; *hm is hist_match's result when it
 * ran (pay-as-clear only: the tallies then hold the accepted energy). */
static int clear_book(mkt_clearing *c, const mkt_params *params, const price_band *band,
                      const match_result *hm)
{
    int rc = MKT_OK;
    int pab = params->mechanism == MKT_PAY_AS_BID;
    match_result m;
    if (hm) {
        m = *hm;
    } else {
        build_book(c, band);
        m = match(c);
    }
    c->sum.matched_wh = m.matched;
    if (pab)
        rc = trades_by_bid(c, params);
    if (rc || (!hm && (rc = credit_units(c, pab))))
        return rc;
    if (params->mechanism == MKT_PAY_AS_CLEAR && m.matched > 0) {
        set_price(&c->sum, band, &m);
        return trades_uniform(c, params, c->sum.clearing_price_uc_per_kwh);
    }
    return finish_parts(c, params);
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
    int rc = mkt__check_params(params);
    if (rc)
        return rc;
    if (n_orders > c->max_orders)
        return MKT_E_TOO_MANY;
    price_band band = {params->feed_in_uc_per_kwh,
                       params->retail_uc_per_kwh - params->network_fee_uc_per_kwh,
                       params->network_fee_uc_per_kwh, 0};
    band.tradable = band.hi >= band.lo;
    c->price_bits = band.tradable ? mkt__bit_width((uint64_t)(band.hi - band.lo)) : 0;
    c->hist_matched = use_hist(c, &band, n_orders);
    int pab = params->mechanism == MKT_PAY_AS_BID;
    unsigned tb = c->hist_matched && pab ? tie_bits(c->price_bits) : 0;
    if (c->hist_matched && (rc = ensure_hist(c, (size_t)2 << c->price_bits)))
        goto fail;
    if ((rc = ensure(c, BY_ORDER, &c->cap_orders, n_orders > 0 ? n_orders : 1)) ||
        (rc = scan_orders(c, &band, orders, n_orders, params->interval_id, tb, at)))
        goto fail;
    if (c->hist_matched && !fits_hist(c, pab)) {
        c->hist_matched = 0; /* the general path, which needs a scan of its own */
        if ((rc = scan_orders(c, &band, orders, n_orders, params->interval_id, 0, at)))
            goto fail;
    }
    if ((rc = ensure(c, BY_UNIT, &c->cap_units, c->n_raw > 0 ? c->n_raw : 1)))
        goto fail;
    if (c->hist_matched && pab) {
        if ((rc = clear_bid_hist(c, params, &band, n_orders, at)))
            goto fail;
        return MKT_OK;
    }
    match_result hm;
    if (c->hist_matched)
        hm = hist_match(c, &band, params->interval_id);
    /* pay-as-clear on the histogram never looks at seats: its pairing goes by id */
    if ((rc = rank_orders(c, n_orders, params->interval_id, c->n_raw > 0 && !c->hist_matched,
                          at)))
        goto fail;
    /* Every order is valid on its own: a failure from here on (an amount or total overflowing)
     * belongs to the book, not to the step scan_orders() looked at last. */
    at->order_index = MKT_AT_BOOK;
    at->step_index = -1;
    if ((rc = clear_book(c, params, &band, c->hist_matched ? &hm : NULL)))
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
