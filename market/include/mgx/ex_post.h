/*
 * mgx market: post-delivery (ex_post) clearing inputs.
 *
 * In ex_post timing a home does not forecast: after an interval has been delivered and metered,
 * its verified net energy (export or import) is offered to or requested from the local market
 * with the home's standing preference curves as limits, and the grid is the last resort. This
 * file turns (metered net energy, standing preference) pairs into ordinary orders for mkt_clear;
 * the prices it writes make every home individually rational by construction: a seller's limit
 * is never below the feed-in tariff and a buyer's all-in limit never above retail, so no home
 * ends an interval worse off than with the grid alone. Rules and worked examples are in
 * docs/market-rules.md ("Post-delivery clearing").
 *
 * Pure: no I/O, no clock, no globals. Thread safe (no state).
 */
#ifndef MGX_EX_POST_H
#define MGX_EX_POST_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/market.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MKT_EX_ANTE = 0, MKT_EX_POST = 1 } mkt_timing;

const char *mkt_timing_name(mkt_timing t);
/* Parses "ex_ante" / "ex_post"; MKT_E_INVAL for anything else. */
int mkt_timing_parse(const char *s, mkt_timing *out);

#define MKT_PREF_MAX_STEPS 8

/* A standing preference: price limits by tranche of the interval's energy. Step i covers the
 * next energy_wh Wh of the home's net surplus (sell) or deficit (buy) at price_uc_per_kwh; the
 * last step covers whatever remains, whatever its energy_wh. Sell limits are the least accepted
 * per kWh; buy limits the most paid per kWh all-in (network fee included). A side with no
 * steps takes the grid's terms (sell at feed-in, buy at retail). */
typedef struct {
    uint32_t n_sell_steps; /* 0 .. MKT_PREF_MAX_STEPS */
    mkt_step sell[MKT_PREF_MAX_STEPS];
    uint32_t n_buy_steps;
    mkt_step buy[MKT_PREF_MAX_STEPS];
} mkt_preference;

/* One home in one delivered interval. */
typedef struct {
    uint64_t participant;
    int64_t net_export_wh;        /* verified metered net: > 0 surplus, < 0 deficit, 0 idle */
    const mkt_preference *pref;   /* NULL: the grid's terms */
} mkt_ex_post_home;

/* The least a seller's local kWh is offered at in ex_post: feed-in plus 1 uc per Wh. Amounts
 * are floored per trade, so a seller whose energy goes out over k trades and a grid leg could
 * otherwise end up to k uc below its grid-only bill floor(W * feed_in / 1000); the margin pays at
 * least 1 uc per trade more than feed-in would, which covers it (docs/market-rules.md). */
#define MKT_EX_POST_SELL_MARGIN_UC_PER_KWH INT64_C(1000)

/* Writes one order per home with a non-zero net, in the homes' order, into out (capacity
 * out_cap) and their count into *n_out. A home's net is split into its preference's tranches
 * (no steps: one step at the grid's terms). Sell limits are raised to feed-in +
 * MKT_EX_POST_SELL_MARGIN_UC_PER_KWH, buy limits lowered to retail; with the all-in rule of
 * mkt_clear no buyer then pays more than retail per kWh and no seller receives less than its
 * grid-only bill, exactly. Duplicate participants are left for mkt_clear to reject.
 * Returns MKT_OK or, with *at (if non-NULL) naming the home index and the step (sell steps
 * 0..7, buy steps MKT_PREF_MAX_STEPS + 0..7, -1 for the home as a whole):
 *   MKT_E_INVAL    NULL arguments (out may be NULL only with out_cap 0);
 *   MKT_E_PRICE / MKT_E_TARIFFS / MKT_E_INVAL  bad params (as mkt_clear), or feed-in above
 *                  MKT_PRICE_MAX_UC_PER_KWH - MKT_EX_POST_SELL_MARGIN_UC_PER_KWH (at: the book);
 *   MKT_E_ENERGY   |net_export_wh| above MKT_ENERGY_MAX_WH, or a step other than the last with
 *                  energy <= 0 or above MKT_ENERGY_MAX_WH;
 *   MKT_E_PRICE    a step price outside 0 .. MKT_PRICE_MAX_UC_PER_KWH;
 *   MKT_E_STEPS    more than MKT_PREF_MAX_STEPS steps on a side;
 *   MKT_E_TOO_MANY more non-idle homes than out_cap (at: the book).
 * On failure *n_out is 0 and out is untouched. */
int mkt_ex_post_orders(const mkt_params *params, const mkt_ex_post_home *homes, size_t n_homes,
                       mkt_order *out, size_t out_cap, size_t *n_out, mkt_error_at *at);

#ifdef __cplusplus
}
#endif

#endif
