/*
 * Test helper: an independent model of the market rules (docs/market-rules.md, the rules brief)
 * that checks a clearing result field by field. It shares no code with market/src: effective
 * prices, the maximal volume (by brute force over candidate prices), the pro-rata share of the
 * marginal level, the pairing into trades and every money amount are recomputed here from the
 * rules, and the engine's result must agree exactly. Test-only; uses malloc.
 */
#ifndef MGX_TEST_MARKET_CHECK_H
#define MGX_TEST_MARKET_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/market.h"

/* Maximal matched volume: max over candidate prices x of min(supply(x), demand(x)), where only
 * steps whose effective price lies in [feed-in, retail - fee] count. Inputs must be valid. */
int64_t mc_max_matched(const mkt_params *p, const mkt_order *orders, size_t n);

/* Checks c's last result (of a successful mkt_clear on these inputs) against the rules: the
 * reference result (participants, trades in canonical order, summary) and the invariants
 * (energy and money balance, price band, equilibrium of pay-as-clear, limit prices of
 * pay-as-bid). Returns 0, or 1 with a reason in msg (cap bytes). */
int mc_check(const mkt_params *p, const mkt_order *orders, size_t n, const mkt_clearing *c,
             char *msg, size_t cap);

/* The tie key of docs/market-rules.md ("Ties"), written from the text, not from clear.c. */
uint64_t mc_tie_key(int64_t interval_id, uint64_t participant);

/* Floor(energy_wh * price / 1000) computed independently of mkt_amount_uc (both >= 0). */
int64_t mc_amount(int64_t energy_wh, int64_t price_uc_per_kwh);

#endif
