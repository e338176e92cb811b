/*
 * mgx market: clears one interval's buy and sell orders of a local energy market.
 *
 * This is the public face of the pure market library. It does no I/O, reads no clock and keeps
 * no global state: everything it needs is passed in, and a clearing object owns the scratch
 * memory so that a simulator can clear millions of intervals without allocating. All energy is
 * int64 Wh and all money int64 micro-currency (uc); no floating point touches a price or an
 * amount. The rules (effective prices, tie breaking, rounding) are written down in
 * docs/market-rules.md and summarised next to each declaration.
 *
 * Thread safety: a mkt_clearing is not shared between threads; distinct objects are independent.
 */
#ifndef MGX_MARKET_H
#define MGX_MARKET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds. They keep every product of energy and price inside 128-bit intermediates and every
 * total inside int64; input beyond them is rejected, never wrapped. */
#define MKT_MAX_STEPS 16                    /* steps in one participant's curve */
#define MKT_ENERGY_MAX_WH INT64_C(1000000000000) /* 1 TWh per step */
#define MKT_PRICE_MAX_UC_PER_KWH INT64_C(1000000000000) /* 1e6 currency units per kWh */

typedef enum { MKT_BUY = 0, MKT_SELL = 1 } mkt_side;

typedef enum {
    MKT_PAY_AS_CLEAR = 0, /* uniform-price double auction (default) */
    MKT_PAY_AS_BID = 1    /* discriminatory: each pair trades at the buyer's bid */
} mkt_mechanism;

/* Return codes. 0 is success; every failure has a distinct negative code. */
enum {
    MKT_OK = 0,
    MKT_E_INVAL = -1,         /* NULL pointer, bad mechanism or side */
    MKT_E_NOMEM = -2,         /* allocation failed */
    MKT_E_TOO_MANY = -3,      /* more orders than the clearing object's bound */
    MKT_E_ENERGY = -4,        /* a step's energy is <= 0 or above MKT_ENERGY_MAX_WH */
    MKT_E_PRICE = -5,         /* a price or tariff is < 0 or above MKT_PRICE_MAX_UC_PER_KWH */
    MKT_E_STEPS = -6,         /* a curve with 0 or more than MKT_MAX_STEPS steps */
    MKT_E_BOTH_SIDES = -7,    /* one participant buys and sells in the same interval */
    MKT_E_DUPLICATE = -8,     /* one participant has two orders on the same side */
    MKT_E_OVERFLOW = -9,      /* a total or an amount would not fit in int64 */
    MKT_E_TARIFFS = -10,      /* feed-in tariff above retail tariff */
    MKT_E_TOPOLOGY = -11      /* a grid topology that is not a valid tree (mgx/topology.h) */
};

/* Returns a static English description of a return code; never NULL. */
const char *mkt_strerror(int code);

/* One step of a curve: up to energy_wh at a limit price. For a seller the limit is the least it
 * accepts, for a buyer the most it pays, both as the trade price the seller receives (the
 * network fee is on top for the buyer). */
typedef struct {
    int64_t energy_wh;        /* > 0 */
    int64_t price_uc_per_kwh; /* 0 .. MKT_PRICE_MAX_UC_PER_KWH */
} mkt_step;

/* One participant's order for one interval. The whole curve is the participant's need (buyer)
 * or offer (seller): what does not trade locally is bought from or sold to the grid. */
typedef struct {
    uint64_t participant;
    mkt_side side;
    uint32_t n_steps; /* 1 .. MKT_MAX_STEPS */
    mkt_step steps[MKT_MAX_STEPS];
} mkt_order;

typedef struct {
    mkt_mechanism mechanism;
    int64_t feed_in_uc_per_kwh;     /* the grid buys everything at this price */
    int64_t retail_uc_per_kwh;      /* the grid sells everything at this price (>= feed-in) */
    int64_t network_fee_uc_per_kwh; /* paid by the buyer on every local kWh, 0 for none */
    /* The interval's number, which breaks ties between equal prices (mkt_tie_key): callers that
     * know it pass floor(start_utc / length_s), as the controller numbers intervals, so that the
     * simulator and the controller agree; any value is valid, 0 included. */
    int64_t interval_id;
} mkt_params;

/* A bilateral local trade. amount_uc = floor(energy_wh * price_uc_per_kwh / 1000) is what the
 * seller receives; the buyer pays amount_uc + fee_uc, fee_uc = floor(energy_wh * fee / 1000). */
typedef struct {
    uint64_t seller;
    uint64_t buyer;
    int64_t energy_wh;
    int64_t price_uc_per_kwh;
    int64_t amount_uc;
    int64_t fee_uc;
} mkt_trade;

/* What one participant did in the interval. Every money field is a sum of per-trade (or
 * per-grid-leg) floors, so the totals balance exactly: sum(local_paid) == sum(local_received)
 * and sum(fee_paid) == fees_uc. */
typedef struct {
    uint64_t participant;
    mkt_side side;
    int64_t offered_wh; /* the whole curve */
    int64_t local_bought_wh;
    int64_t local_sold_wh;
    int64_t grid_bought_wh;
    int64_t grid_sold_wh;
    int64_t local_paid_uc;
    int64_t local_received_uc;
    int64_t grid_paid_uc;     /* floor(grid_bought_wh * retail / 1000) */
    int64_t grid_received_uc; /* floor(grid_sold_wh * feed_in / 1000) */
    int64_t fee_paid_uc;
} mkt_participant_result;

typedef struct {
    mkt_mechanism mechanism;
    int64_t matched_wh; /* local volume, the same on both sides */
    int64_t fees_uc;
    int has_price; /* pay-as-clear with matched_wh > 0 */
    int64_t clearing_price_uc_per_kwh;
    /* The equilibrium interval the price was chosen from (pay-as-clear, has_price only). */
    int64_t price_low_uc_per_kwh;
    int64_t price_high_uc_per_kwh;
    int64_t grid_bought_wh; /* by the community, from the grid */
    int64_t grid_sold_wh;   /* by the community, to the grid */
    int64_t local_value_uc; /* sum of trade amounts */
    int64_t grid_paid_uc;
    int64_t grid_received_uc;
} mkt_summary;

/* Where an input error was found: the index of the order in the caller's array and of the step
 * in it (-1 when the order as a whole is at fault). order_index is MKT_AT_BOOK when no single
 * order is at fault: bad parameters, too many orders, or amounts of the book overflowing. */
#define MKT_AT_BOOK SIZE_MAX
typedef struct {
    size_t order_index;
    int step_index;
} mkt_error_at;

/* A clearing object: scratch memory plus the last result. Opaque. */
typedef struct mkt_clearing mkt_clearing;

/* Creates a clearing object for books of at most max_orders orders. NULL on allocation
 * failure. The caller owns it and frees it with mkt_clearing_free. */
mkt_clearing *mkt_clearing_new(size_t max_orders);
void mkt_clearing_free(mkt_clearing *c);

/* Clears one interval. orders is read only and may be in any order: the result is the same
 * for every permutation of it. On success the result is read through the accessors below and
 * stays valid until the next mkt_clear or mkt_clearing_free. On failure returns a MKT_E_* code,
 * fills *at (if non-NULL) and leaves an empty result. */
int mkt_clear(mkt_clearing *c, const mkt_params *params, const mkt_order *orders, size_t n_orders,
              mkt_error_at *at);

const mkt_summary *mkt_clearing_summary(const mkt_clearing *c);
/* Trades in a canonical order (see docs/market-rules.md). Owned by c. */
const mkt_trade *mkt_clearing_trades(const mkt_clearing *c, size_t *n_trades);
/* One entry per participant, ascending by participant id. Owned by c. */
const mkt_participant_result *mkt_clearing_participants(const mkt_clearing *c,
                                                        size_t *n_participants);

/* The tie key of a participant in an interval. Equal effective prices are taken in ascending
 * order of mkt_tie_key(interval_id, participant) >> 32, then of participant id, so that the
 * order rotates with the interval and no participant is favoured by its number over time. The
 * function is splitmix64's finaliser applied twice: z = mix(interval_id + 0x9E3779B97F4A7C15),
 * then mix(z + participant) (docs/market-rules.md, "Ties"). It is not a secret: anyone can
 * compute an interval's order, which is the point of a published rule. */
uint64_t mkt_tie_key(int64_t interval_id, uint64_t participant);

/* The money rule: the amount of energy_wh at price_uc_per_kwh is floor(energy_wh *
 * price_uc_per_kwh / 1000), computed exactly (128-bit when the product needs it), for
 * non-negative inputs; MKT_E_INVAL for a negative one, MKT_E_OVERFLOW if the result does not fit
 * int64. Every amount of mgx (trades, fees, grid legs, settlement, imbalance) is this one
 * function. */
int mkt_amount_uc(int64_t energy_wh, int64_t price_uc_per_kwh, int64_t *amount_uc);

/* mkt_amount_uc with its common case (non-negative inputs whose product fits 64 bits) inlined,
 * for the loops that compute an amount per trade, per grid leg or per home and interval (the
 * clearing's trade list, the simulator's settlement): the same floors by construction. */
static inline int mkt_amount_uc_inline(int64_t energy_wh, int64_t price_uc_per_kwh,
                                       int64_t *amount_uc)
{
    uint64_t narrow;
    if (energy_wh >= 0 && price_uc_per_kwh >= 0 && amount_uc &&
        !__builtin_mul_overflow((uint64_t)energy_wh, (uint64_t)price_uc_per_kwh, &narrow)) {
        *amount_uc = (int64_t)(narrow / 1000u);
        return MKT_OK;
    }
    return mkt_amount_uc(energy_wh, price_uc_per_kwh, amount_uc);
}

const char *mkt_mechanism_name(mkt_mechanism m);
/* Parses "pay-as-clear" / "pay-as-bid"; returns MKT_E_INVAL for anything else. */
int mkt_mechanism_parse(const char *s, mkt_mechanism *out);

#ifdef __cplusplus
}
#endif

#endif
