/*
 * The checked pricing API (mgx/strategy.h): argument and tariff checks, strategy names, and the
 * very same rules the simulator runs (pricing.c) on a generator seeded per call (taus2.c).
 */
#include "mgx/strategy.h"

#include "taus2.h"

#include <string.h>

static const char *const NAMES[] = {"truthful", "zic", "markup", "zip"};

const char *sim_strategy_strerror(int code)
{
    switch (code) {
    case SIM_STRAT_OK:
        return "success";
    case SIM_STRAT_E_INVAL:
        return "invalid argument or strategy parameter";
    case SIM_STRAT_E_NOMEM:
        return "out of memory";
    case SIM_STRAT_E_ENERGY:
        return "forecast energy out of range";
    default:
        return "unknown strategy error";
    }
}

sim_strategy_params sim_strategy_defaults(void)
{
    /* the scenario loader's defaults (scenario.c), so a home agent and a simulated home agree */
    return (sim_strategy_params){SIM_AGENT_TRUTHFUL, 0.1, 0.3, 0.05};
}

int sim_strategy_check(const sim_strategy_params *p, const char **what)
{
    const char *bad = NULL;
    if (!p || (unsigned)p->kind > SIM_AGENT_ZIP)
        bad = "agent";
    else if (!(p->markup >= 0.0 && p->markup <= 1.0))
        bad = "markup";
    else if (!(p->zip_beta > 0.0 && p->zip_beta <= 1.0))
        bad = "zip_beta";
    else if (!(p->zip_momentum >= 0.0 && p->zip_momentum < 1.0))
        bad = "zip_momentum";
    if (what)
        *what = bad;
    return bad ? SIM_STRAT_E_INVAL : SIM_STRAT_OK;
}

const char *sim_strategy_name(sim_agent_kind kind)
{
    return (unsigned)kind < sizeof NAMES / sizeof NAMES[0] ? NAMES[kind] : NULL;
}

int sim_strategy_parse(const char *name, sim_agent_kind *kind)
{
    for (size_t i = 0; name && kind && i < sizeof NAMES / sizeof NAMES[0]; i++) {
        if (strcmp(name, NAMES[i]) == 0) {
            *kind = (sim_agent_kind)i;
            return SIM_STRAT_OK;
        }
    }
    return SIM_STRAT_E_INVAL;
}

static int check_tariffs(const mkt_params *tariffs)
{
    if (!tariffs || tariffs->feed_in_uc_per_kwh < 0 ||
        tariffs->retail_uc_per_kwh < tariffs->feed_in_uc_per_kwh ||
        tariffs->network_fee_uc_per_kwh < 0 ||
        tariffs->retail_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH)
        return SIM_STRAT_E_INVAL;
    return SIM_STRAT_OK;
}

/* What pricing and observing share: the tariffs as the price band, and the per-call generator
 * as the rules' random source (r draws from g, so a call must not be copied once set up). */
typedef struct {
    sim_band band;
    sim_taus2 g;
    sim_random r;
} call;

/* Checks the arguments and sets up *c with the generator seeded with seed. */
static int enter(const sim_trader *t, mkt_side side, const mkt_params *tariffs, uint64_t seed,
                 call *c)
{
    if (!t || (side != MKT_BUY && side != MKT_SELL) || sim_strategy_check(&t->params, NULL) ||
        check_tariffs(tariffs))
        return SIM_STRAT_E_INVAL;
    sim_taus2_seed(&c->g, seed);
    c->r = sim_taus2_random(&c->g);
    c->band = sim_band_from(tariffs->feed_in_uc_per_kwh, tariffs->retail_uc_per_kwh,
                            tariffs->network_fee_uc_per_kwh);
    return SIM_STRAT_OK;
}

int sim_trader_init(sim_trader *t, const sim_strategy_params *p, uint64_t seed)
{
    if (!t || sim_strategy_check(p, NULL))
        return SIM_STRAT_E_INVAL;
    sim_taus2 g;
    sim_taus2_seed(&g, seed);
    sim_random r = sim_taus2_random(&g);
    sim_pricing_init(t, p, &r);
    return SIM_STRAT_OK;
}

int sim_trader_price(const sim_trader *t, mkt_side side, const mkt_params *tariffs, uint64_t seed,
                     int64_t *price_uc_per_kwh)
{
    if (!price_uc_per_kwh)
        return SIM_STRAT_E_INVAL;
    call c;
    int rc = enter(t, side, tariffs, seed, &c);
    if (rc)
        return rc;
    *price_uc_per_kwh = sim_pricing_price(t, side, &c.band, &c.r);
    return SIM_STRAT_OK;
}

int sim_trader_order(const sim_trader *t, int64_t forecast_net_wh, const mkt_params *tariffs,
                     uint64_t seed, mkt_side *side, mkt_step *step)
{
    if (!side || !step)
        return SIM_STRAT_E_INVAL;
    if (forecast_net_wh < -MKT_ENERGY_MAX_WH || forecast_net_wh > MKT_ENERGY_MAX_WH)
        return SIM_STRAT_E_ENERGY;
    if (forecast_net_wh == 0)
        return 0;
    mkt_side s = forecast_net_wh > 0 ? MKT_SELL : MKT_BUY;
    int64_t price;
    int rc = sim_trader_price(t, s, tariffs, seed, &price);
    if (rc)
        return rc;
    *side = s;
    step->energy_wh = forecast_net_wh > 0 ? forecast_net_wh : -forecast_net_wh;
    /* the bid is all-in: price <= retail - fee, so this stays <= retail */
    step->price_uc_per_kwh = s == MKT_BUY ? price + tariffs->network_fee_uc_per_kwh : price;
    return 1;
}

int sim_trader_observe(sim_trader *t, mkt_side side, int64_t my_price_uc_per_kwh, int traded,
                       int64_t market_price_uc_per_kwh, const mkt_params *tariffs, uint64_t seed)
{
    call c;
    int rc = enter(t, side, tariffs, seed, &c);
    if (rc)
        return rc;
    int64_t trade_price = side == MKT_BUY
                              ? my_price_uc_per_kwh - tariffs->network_fee_uc_per_kwh
                              : my_price_uc_per_kwh; /* back from all-in */
    sim_pricing_observe(t, side, trade_price, traded ? 1 : 0, market_price_uc_per_kwh, &c.band,
                        &c.r);
    return SIM_STRAT_OK;
}
