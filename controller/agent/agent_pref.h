/*
 * Internal: a home agent's standing preference (timing = ex_post) from its strategy. The
 * simulator's rule (sim/, docs/simulator.md "Timing"), so an agent and the simulator quote the
 * same limits: one step per side at the price the strategy would ask (sell) or bid (buy) in
 * ex_ante, the buy limit plus the network fee because an ex_post buy limit is all-in. Each
 * step covers the whole surplus or deficit (energy MKT_ENERGY_MAX_WH). Truthful thus states the
 * grid's own terms (feed-in, retail).
 *
 * Pure: no I/O, no clock. Reentrant.
 */
#ifndef MGX_CTL_AGENT_PREF_H
#define MGX_CTL_AGENT_PREF_H

#include <stdint.h>

#include "mgx/ex_post.h"
#include "mgx/market.h"
#include "mgx/strategy.h"

/* Fills *out from trader t with the community's tariffs; seed feeds ZI-C's draw. SIM_STRAT_OK
 * or the strategy's error. */
int agp_from_strategy(const sim_trader *t, const mkt_params *tariffs, uint64_t seed,
                      mkt_preference *out);

/* 1 when a and b state the same limits (the steps in use, not the unused array tail). */
int agp_same(const mkt_preference *a, const mkt_preference *b);

#endif
