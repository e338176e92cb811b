/*
 * A standing preference from a strategy (agent_pref.h).
 */
#include "agent/agent_pref.h"

#include <string.h>

int agp_from_strategy(const sim_trader *t, const mkt_params *tariffs, uint64_t seed,
                      mkt_preference *out)
{
    int64_t sell = 0, buy = 0;
    int rc = sim_trader_price(t, MKT_SELL, tariffs, seed, &sell);
    if (rc == SIM_STRAT_OK)
        rc = sim_trader_price(t, MKT_BUY, tariffs, seed, &buy);
    if (rc != SIM_STRAT_OK)
        return rc;
    memset(out, 0, sizeof *out);
    out->n_sell_steps = 1;
    out->sell[0] = (mkt_step){MKT_ENERGY_MAX_WH, sell};
    out->n_buy_steps = 1;
    /* all-in: the bid was for the energy alone, the fee comes on top of it */
    out->buy[0] = (mkt_step){MKT_ENERGY_MAX_WH, buy + tariffs->network_fee_uc_per_kwh};
    return SIM_STRAT_OK;
}

int agp_same(const mkt_preference *a, const mkt_preference *b)
{
    return a->n_sell_steps == b->n_sell_steps && a->n_buy_steps == b->n_buy_steps &&
           memcmp(a->sell, b->sell, a->n_sell_steps * sizeof a->sell[0]) == 0 &&
           memcmp(a->buy, b->buy, a->n_buy_steps * sizeof a->buy[0]) == 0;
}
