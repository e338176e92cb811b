/*
 * The pricing strategies: how a home prices its one-step order (mgx/strategy.h, the
 * sim_pricing_* rules the simulator and the checked sim_trader_* API share). Prices are chosen in a
 * band between the feed-in tariff and retail less the network fee, because outside it the grid is
 * the better counterparty anyway. ZIP follows Cliff (1997, HP Labs HPL-97-141): a margin adapted by
 * Widrow-Hoff with momentum towards a target just beyond the last market price, raised after a
 * trade that could have been dearer (cheaper for a buyer) and lowered after a missed one.
 */
#include "mgx/strategy.h"

#include <math.h>

/* One strategy: how it prices and what it learns from the market's answer. */
typedef struct {
    int64_t (*price)(const sim_trader *t, mkt_side side, const sim_band *band, const sim_random *r);
    /* traded: the order was (partly) accepted; market_price: -1 when nothing traded. */
    void (*observe)(sim_trader *t, mkt_side side, int64_t my_price, int traded,
                    int64_t market_price, const sim_band *band, const sim_random *r);
} strategy;

sim_band sim_band_from(int64_t feed_in, int64_t retail, int64_t fee)
{
    sim_band b = {feed_in, retail - fee};
    if (b.hi < b.lo)
        b.hi = b.lo;
    return b;
}

static int64_t at_fraction(mkt_side side, const sim_band *band, double margin)
{
    double spread = (double)(band->hi - band->lo);
    double p =
        side == MKT_SELL ? (double)band->lo + margin * spread : (double)band->hi - margin * spread;
    int64_t q = (int64_t)llround(p);
    return q < band->lo ? band->lo : q > band->hi ? band->hi : q;
}

static int64_t truthful_price(const sim_trader *a, mkt_side side, const sim_band *band,
                              const sim_random *r)
{
    (void)a;
    (void)r;
    return side == MKT_SELL ? band->lo : band->hi;
}

static int64_t zic_price(const sim_trader *a, mkt_side side, const sim_band *band,
                         const sim_random *r)
{
    (void)a;
    (void)side;
    /* Gode & Sunder: uniform over the range that cannot make a loss against the grid */
    uint64_t span = (uint64_t)(band->hi - band->lo) + 1u;
    return band->lo + (int64_t)(span <= 1 ? 0 : r->uniform_int(r->ctx, (unsigned long)span));
}

static int64_t markup_price(const sim_trader *a, mkt_side side, const sim_band *band,
                            const sim_random *r)
{
    (void)r;
    return at_fraction(side, band, a->params.markup);
}

static int64_t zip_price(const sim_trader *a, mkt_side side, const sim_band *band,
                         const sim_random *r)
{
    (void)r;
    return at_fraction(side, band, a->margin);
}

static void no_observe(sim_trader *a, mkt_side side, int64_t my_price, int traded,
                       int64_t market_price, const sim_band *band, const sim_random *r)
{
    (void)a, (void)side, (void)my_price, (void)traded, (void)market_price, (void)band, (void)r;
}

/* ZIP update, in the band's units so one rule serves both sides. */
static void zip_observe(sim_trader *a, mkt_side side, int64_t my_price, int traded,
                        int64_t market_price, const sim_band *band, const sim_random *r)
{
    double spread = (double)(band->hi - band->lo);
    if (spread <= 0)
        return;
    /* distance from the side's own limit, as a fraction of the band: the margin */
    double mine = a->margin;
    double q = market_price < 0   ? -1.0
               : side == MKT_SELL ? (double)(market_price - band->lo) / spread
                                  : (double)(band->hi - market_price) / spread;
    double rel = r->uniform(r->ctx) * 0.05, abs = r->uniform(r->ctx) * 0.05;
    double target;
    if (traded && q >= mine)
        target = q * (1.0 + rel) + abs; /* the market would have paid more: ask for more */
    else if (!traded)
        target = (q < 0 ? mine : q) * (1.0 - rel) - abs; /* missed: be more competitive */
    else
        return;
    double delta = a->params.zip_beta * (target - mine);
    a->last_change =
        a->params.zip_momentum * a->last_change + (1.0 - a->params.zip_momentum) * delta;
    a->margin = fmin(1.0, fmax(0.0, mine + a->last_change));
    (void)my_price;
}

static const strategy STRATEGIES[] = {
    [SIM_AGENT_TRUTHFUL] = {truthful_price, no_observe},
    [SIM_AGENT_ZIC] = {zic_price, no_observe},
    [SIM_AGENT_MARKUP] = {markup_price, no_observe},
    [SIM_AGENT_ZIP] = {zip_price, zip_observe},
};

static const strategy *strategy_for(sim_agent_kind kind)
{
    if ((unsigned)kind >= sizeof STRATEGIES / sizeof STRATEGIES[0])
        return &STRATEGIES[SIM_AGENT_TRUTHFUL];
    return &STRATEGIES[kind];
}

void sim_pricing_init(sim_trader *t, const sim_strategy_params *p, const sim_random *r)
{
    t->params = *p;
    /* Cliff's initial margins are drawn uniformly; 0.05..0.35 of the band here */
    t->margin = p->kind == SIM_AGENT_ZIP ? 0.05 + 0.3 * r->uniform(r->ctx) : 0.0;
    t->last_change = 0.0;
}

int64_t sim_pricing_price(const sim_trader *t, mkt_side side, const sim_band *band,
                          const sim_random *r)
{
    return strategy_for(t->params.kind)->price(t, side, band, r);
}

void sim_pricing_observe(sim_trader *t, mkt_side side, int64_t my_price, int traded,
                         int64_t market_price, const sim_band *band, const sim_random *r)
{
    strategy_for(t->params.kind)->observe(t, side, my_price, traded, market_price, band, r);
}
