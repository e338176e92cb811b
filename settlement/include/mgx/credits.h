/*
 * mgx settlement: energy credits of one settled interval (1 credit = 1 Wh of verified export).
 *
 * A credit is born when a meter proves the energy and dies when someone uses it, so it cannot
 * be counted twice. From an interval's reconciled positions and trades (mgx/reconcile.h):
 *   - mint: a GOOD position whose attestation tier is at least the community's minimum mints
 *     its whole metered export to itself; FLAGGED, MISSING, HELD and ESTIMATED positions, and
 *     GOOD ones below the minimum tier, mint nothing;
 *   - transfer: each trade, in market order, moves min(delivered_wh, seller's minted not yet
 *     transferred) from seller to buyer; delivered energy beyond that (a seller below the tier)
 *     reaches the buyer without credits. Credits move only from minted balances, never onward:
 *     a credit bought in the interval is retired or kept, not resold;
 *   - retire (24/7 matching): a GOOD position retires, on its own behalf, credits covering its
 *     metered import of the same interval: first its own minted credits left after its sales,
 *     then bought credits in market order, up to its import_wh;
 *   - keep: what is not retired stays with its holder (kept_wh). Kept credits can never match
 *     later consumption (a credit only matches the interval it was made in); they remain the
 *     holder's issued certificates and expire 12 months after the end of their interval.
 * Conservation, exactly: sum minted == verified export (GOOD, tier >= minimum); per home
 * out <= minted, retired <= minted + in - out and retired <= import; sum in == sum out;
 * sum kept == sum minted - sum retired. docs/credits.md has the rules with examples.
 *
 * Pure: no I/O, no allocation, no globals; thread safe.
 */
#ifndef MGX_CREDITS_H
#define MGX_CREDITS_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/reconcile.h"
#include "mgx/stl_error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One home's credits of one interval. */
typedef struct {
    uint64_t participant;
    uint8_t status;      /* stl_pos_status of the position the credits came from */
    uint8_t tier;        /* the position's attestation tier */
    uint8_t min_tier;    /* the community minimum applied */
    uint32_t source_seq; /* the ledger transaction it came from: the position's seq in the block
                            (trades first, then positions: n_trades + position index) */
    int64_t minted_wh;   /* minted to this home (its verified export, or 0) */
    int64_t in_wh;       /* received on its purchases */
    int64_t out_wh;      /* moved to its buyers, from its minted credits */
    int64_t retired_wh;  /* retired against its import of the interval */
    int64_t kept_wh;     /* minted + in - out - retired: held, unretired */
} stl_credit;

/* What one trade moved: credits from seller to buyer, and how many of them the buyer retired. */
typedef struct {
    int64_t wh;
    int64_t retired_wh;
} stl_credit_move;

typedef struct {
    int64_t verified_export_wh; /* export of GOOD positions at or above the minimum tier */
    int64_t minted_wh;
    int64_t transferred_wh;
    int64_t retired_wh;
    int64_t kept_wh;
    int64_t import_wh; /* metered import of GOOD positions (the consumption credits can match) */
} stl_credit_totals;

/* 1 if a record is self-consistent: fields in range, amounts >= 0, kept == minted + in - out -
 * retired, out <= minted. */
int stl_credit_valid(const stl_credit *c);

/*
 * The credits of one interval. positions: the reconciler's (ascending by participant, np of
 * them); trades: its settled trades (nt, market order); min_tier 0 .. STL_TIER_MAX. Writes one
 * record per position into out (np entries, same order), one move per trade into moves (nt
 * entries; may be NULL) and the sums into tot (may be NULL). STL_E_INVAL on bad arguments
 * (positions not strictly ascending, a trade naming no position, negative energy),
 * STL_E_OVERFLOW if a sum does not fit int64.
 */
int stl_credits_compute(const stl_position *positions, size_t np, const stl_settled_trade *trades,
                        size_t nt, uint8_t min_tier, stl_credit *out, stl_credit_move *moves,
                        stl_credit_totals *tot);

/* 1 if a home's record holds anything (the ledger records only these). */
int stl_credit_nonzero(const stl_credit *c);

/*
 * The true-up of a held position (docs/credits.md, "True-up"). A position settled FLAGGED,
 * HELD or ESTIMATED minted nothing; when the coordinator later resolves it as good, a later
 * block carries one credit record for it, the true-up:
 *   - status and tier: the original position's (a normal record of a position that is not GOOD
 *     is always all zero and never stored, so a stored record whose status is not GOOD is a
 *     true-up);
 *   - source_seq: the ledger log index of the original position transaction (not a place in
 *     the block: the position is in an earlier block), below 2^32;
 *   - minted_wh = kept_wh: the position's recorded export_wh if its tier is at least min_tier,
 *     else 0; in, out and retired are 0: its trades delivered nothing when it was settled (that
 *     settlement is final), and its import of the interval was carried into its next good
 *     interval (trust layer 6) and matched there, so nothing is retired again.
 * The credits are dated to the original interval (provenance and the 12-month expiry).
 * STL_E_INVAL when the position is GOOD or MISSING (nothing to resolve: a missing position has
 * no reading), or source_log_index does not fit 32 bits, or min_tier is out of range. A
 * result with minted_wh 0 is not written (nothing to true up).
 */
int stl_credit_trueup(const stl_position *orig, uint64_t source_log_index, uint8_t min_tier,
                      stl_credit *out);

/* 1 if a stored credit record is a true-up (its status is not GOOD), else 0. */
int stl_credit_is_trueup(const stl_credit *c);

#ifdef __cplusplus
}
#endif

#endif
