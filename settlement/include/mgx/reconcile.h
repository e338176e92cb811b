/*
 * mgx settlement: reconciles one interval's local trades against what the meters measured.
 *
 * The market contracts energy before the interval; the meters say afterwards what really flowed.
 * Reconciliation turns both into settled money: a seller is credited for at most what it
 * exported, a buyer charged for at most what it imported, and whatever a participant metered
 * beyond its delivered local trades is bought from or sold to the grid at the tariffs. A
 * participant whose reading is flagged (quality != 0) or missing is never settled as good: its
 * trades deliver nothing and its own grid position is held for the coordinator. The rules,
 * with worked examples, are in docs/settlement-rules.md.
 *
 * Every amount is an int64 and every division rounds down; per trade, what the buyer pays
 * equals what the seller receives plus the fee plus a rounding remainder (0 or 1 uc) that goes
 * to an explicit rounding account, so every interval balances exactly.
 *
 * Pure: no I/O, no clock, no globals. A reconciler owns its scratch memory and last result.
 * Thread safety: a stl_reconciler is not shared between threads; distinct objects are
 * independent.
 */
#ifndef MGX_RECONCILE_H
#define MGX_RECONCILE_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/market.h"
#include "mgx/stl_error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds: with at most 10^6 trades of at most 10^12 Wh, and meters of at most 10^12 Wh, every
 * energy sum fits int64; money sums are checked and fail with STL_E_OVERFLOW. */
#define STL_MAX_TRADES 1000000u
#define STL_MAX_PARTICIPANTS 1000000u
#define STL_METER_MAX_WH INT64_C(1000000000000) /* 1 TWh per participant and interval */

/* How far a reading's origin is attested (issue 12): recorded with each position, passed
 * through unchanged by reconciliation. */
typedef enum {
    STL_TIER_UNSIGNED = 0,  /* whoever holds the home's bus credentials */
    STL_TIER_GATEWAY = 1,   /* signed by the home gateway's registered device key */
    STL_TIER_CERTIFIED = 2  /* signed by a certified meter (e.g. OCMF) */
} stl_tier;
#define STL_TIER_MAX STL_TIER_CERTIFIED

/* One participant's validated metered energy over the interval. */
typedef struct {
    uint64_t participant;
    int64_t import_wh; /* drawn from the connection point, 0 .. STL_METER_MAX_WH */
    int64_t export_wh; /* fed into the connection point, 0 .. STL_METER_MAX_WH */
    uint32_t quality;  /* MTR_Q_* bits of the readings it came from; 0 (MTR_Q_GOOD) is good; for
                          a held reading, the reason it was held */
    uint8_t tier;      /* stl_tier, 0 .. STL_TIER_MAX */
    uint8_t held;      /* 1: refused by the coordinator's physical checks (settled as HELD) */
} stl_metered;

typedef struct {
    int64_t feed_in_uc_per_kwh;     /* the grid pays this for a surplus */
    int64_t retail_uc_per_kwh;      /* the grid charges this for a shortfall (>= feed-in) */
    int64_t network_fee_uc_per_kwh; /* the fee rate the trades were contracted with */
} stl_tariffs;

typedef enum {
    STL_POS_GOOD = 0,      /* a good reading: settled */
    STL_POS_FLAGGED = 1,   /* a reading with quality bits set: held, nothing settled */
    STL_POS_MISSING = 2,   /* trades but no reading: held, nothing settled */
    STL_POS_ESTIMATED = 3, /* settled on an estimate, to be trued up (ledger v2; reconciliation
                              does not produce it yet: issue 12 defines the estimate) */
    STL_POS_HELD = 4       /* refused by physical checks (stl_metered.held): held as FLAGGED,
                              quality says why */
} stl_pos_status;
#define STL_POS_STATUS_MAX STL_POS_HELD

/* One trade after reconciliation. The contract fields are the market's; the rest is settled:
 *   delivered_wh <= contracted_wh
 *   received_uc = floor(amount_uc * delivered / contracted)            (seller)
 *   fee_uc      = floor(contract_fee_uc * delivered / contracted)      (fee account)
 *   paid_uc     = floor((amount_uc + contract_fee_uc) * delivered / contracted)  (buyer)
 *   rounding_uc = paid_uc - received_uc - fee_uc, 0 or 1              (rounding account)
 * so a fully delivered trade settles exactly at its contract, to the micro-unit. */
typedef struct {
    uint64_t seller;
    uint64_t buyer;
    int64_t contracted_wh;
    int64_t price_uc_per_kwh;
    int64_t amount_uc;       /* contracted: floor(contracted_wh * price / 1000) */
    int64_t contract_fee_uc; /* contracted: floor(contracted_wh * fee rate / 1000) */
    int64_t delivered_wh;
    int64_t paid_uc;
    int64_t received_uc;
    int64_t fee_uc;
    int64_t rounding_uc;
} stl_settled_trade;

/* One participant's settled position. For a GOOD participant
 *   export_wh = local_sold_wh + grid_sold_wh,   import_wh = local_bought_wh + grid_bought_wh
 *   grid_paid_uc = floor(grid_bought_wh * retail / 1000)
 *   grid_received_uc = floor(grid_sold_wh * feed_in / 1000);
 * for a held one (FLAGGED, HELD or MISSING) every energy and money field except the metered
 * import/export (kept for the record, 0 when missing) is zero. */
typedef struct {
    uint64_t participant;
    stl_pos_status status;
    uint32_t quality; /* the reading's quality bits; for HELD the hold reason */
    uint8_t tier;     /* stl_tier of the reading, passed through (0 when missing) */
    int64_t import_wh;
    int64_t export_wh;
    int64_t contracted_bought_wh; /* what its trades promised, whatever was delivered */
    int64_t contracted_sold_wh;
    int64_t local_bought_wh; /* delivered */
    int64_t local_sold_wh;
    int64_t grid_bought_wh;
    int64_t grid_sold_wh;
    int64_t local_paid_uc; /* sum of paid_uc of its purchases (fees included) */
    int64_t fee_paid_uc;   /* the fee part of local_paid_uc */
    int64_t local_received_uc;
    int64_t grid_paid_uc;
    int64_t grid_received_uc;
} stl_position;

/* Interval totals; all sums of the per-trade or per-position fields. The balance identities
 *   delivered_wh (sold) == delivered_wh (bought)              (one number: per trade)
 *   paid_uc == received_uc + fees_uc + rounding_uc
 *   sum over participants of (local_paid + grid_paid) ==
 *       sum of (local_received + grid_received) + fees + rounding + grid_paid - grid_received
 * hold exactly (tests/settlement/test_reconcile_props.c checks them over 10^6 random intervals). */
typedef struct {
    uint32_t n_trades;
    uint32_t n_positions;
    uint32_t n_held;
    int64_t contracted_wh;
    int64_t delivered_wh;
    int64_t paid_uc;     /* by buyers, for local energy, fees included */
    int64_t received_uc; /* by sellers */
    int64_t fees_uc;
    int64_t rounding_uc;
    int64_t grid_bought_wh; /* by participants, from the grid */
    int64_t grid_sold_wh;
    int64_t grid_paid_uc; /* by participants to the grid */
    int64_t grid_received_uc;
    int64_t import_wh; /* metered, good positions only */
    int64_t export_wh;
} stl_totals;

/* Where an input error was found: a trade index, a meter index, or neither (SIZE_MAX). */
typedef struct {
    size_t trade_index;
    size_t meter_index;
} stl_error_at;

typedef struct stl_reconciler stl_reconciler;

/* A reconciler for intervals of at most max_trades trades and max_meters metered records (each
 * at most the STL_MAX_* bound). NULL on allocation failure or bad bounds. Free with
 * stl_reconciler_free. */
stl_reconciler *stl_reconciler_new(size_t max_trades, size_t max_meters);
void stl_reconciler_free(stl_reconciler *r);

/*
 * Reconciles one interval. trades are the market's (mgx/market.h), in its canonical order;
 * each must have seller != buyer, 1 <= energy_wh <= MKT_ENERGY_MAX_WH, 0 <= price <=
 * MKT_PRICE_MAX_UC_PER_KWH, amount_uc == floor(energy * price / 1000) and fee_uc >=
 * floor(energy * tariffs->network_fee / 1000): equal on the copper plate; above it by the
 * level fees and congestion rent of a grid-aware clearing (mkt/topology.h), which the buyer
 * owes to the network like the fee. meters may be in any order, at most one per
 * participant; a participant may have a reading and no trades (it then settles against the grid
 * alone). On failure returns STL_E_* (STL_E_TRADE / STL_E_METER with *at filled when at is not
 * NULL) and leaves an empty result.
 */
int stl_reconcile(stl_reconciler *r, const stl_tariffs *tariffs, const mkt_trade *trades,
                  size_t n_trades, const stl_metered *meters, size_t n_meters, stl_error_at *at);

/* The last result; owned by r, valid until the next stl_reconcile or stl_reconciler_free.
 * Trades are in input order; positions ascending by participant id, one per participant that
 * appears in a trade or a meter record. */
const stl_settled_trade *stl_reconciled_trades(const stl_reconciler *r, size_t *n);
const stl_position *stl_reconciled_positions(const stl_reconciler *r, size_t *n);
const stl_totals *stl_reconciled_totals(const stl_reconciler *r);

/* Checked floor(a * b / c) for a, b >= 0, c > 0; STL_E_OVERFLOW if it does not fit int64. Used
 * for the pro-rata share of a short delivery (amount x delivered / contracted); the money of an
 * energy at a price is mkt_amount_uc (mgx/market.h), the one spelling of that rule. */
int stl_muldiv(int64_t a, int64_t b, int64_t c, int64_t *out);

const char *stl_pos_status_name(stl_pos_status s);

#ifdef __cplusplus
}
#endif

#endif
