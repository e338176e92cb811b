/*
 * mgx strategy: the pricing strategies, how a home prices its one-step order (truthful, ZI-C,
 * fixed markup, ZIP), as one small library (mgx_strategy, sim/strategy/) that both the
 * simulator and the real home agent (`mgx agent`) link, so the agent prices its orders with
 * exactly the code the simulator uses, without linking the simulator or GSL.
 *
 * A trader is plain data (kind, parameters and the adaptive ZIP margin) that the caller owns and
 * may store between runs. Two ways in:
 *  - the checked API (sim_trader_*): randomness comes in as a seed per call; each call seeds its
 *    own generator (a Tausworthe taus2, bit-identical to GSL's gsl_rng_taus2, like the
 *    simulator's per-home streams) and draws from it in the same order as the simulator does,
 *    so the same trader, tariffs and seed give the same price here and in the simulator;
 *  - the rules themselves (sim_pricing_*), drawing from the caller's random source: the
 *    simulator passes each home's own stream.
 * No I/O, no clock, no globals; safe on distinct traders from several threads.
 */
#ifndef MGX_STRATEGY_H
#define MGX_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/market.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SIM_STRAT_OK = 0,
    SIM_STRAT_E_INVAL = -1,  /* NULL pointer, unknown kind or a parameter out of range */
    SIM_STRAT_E_NOMEM = -2,  /* out of memory (not returned today: the generator is a local) */
    SIM_STRAT_E_ENERGY = -3  /* the forecast is beyond MKT_ENERGY_MAX_WH */
};

const char *sim_strategy_strerror(int code);

/* The strategy kinds; a scenario's groups and a home agent's config name one. */
typedef enum {
    SIM_AGENT_TRUTHFUL = 0, /* bids/asks its own value against the grid tariffs */
    SIM_AGENT_ZIC = 1,      /* zero-intelligence constrained (Gode & Sunder 1993) */
    SIM_AGENT_MARKUP = 2,   /* fixed markup on the truthful price */
    SIM_AGENT_ZIP = 3       /* zero-intelligence plus, adaptive margin (Cliff 1997) */
} sim_agent_kind;

/* The parameters of a strategy, with the scenario file's names, ranges and defaults
 * (docs/scenario-reference.md): markup in [0, 1] (0.1), zip_beta in (0, 1] (0.3),
 * zip_momentum in [0, 1) (0.05). */
typedef struct {
    sim_agent_kind kind;
    double markup;
    double zip_beta;
    double zip_momentum;
} sim_strategy_params;

/* The defaults above with kind SIM_AGENT_TRUTHFUL. */
sim_strategy_params sim_strategy_defaults(void);
/* SIM_STRAT_OK, or SIM_STRAT_E_INVAL with the offending parameter's name in *what. */
int sim_strategy_check(const sim_strategy_params *p, const char **what);
/* "truthful", "zic", "markup", "zip"; NULL for an unknown kind. */
const char *sim_strategy_name(sim_agent_kind kind);
/* Parses one of the names above. SIM_STRAT_OK or SIM_STRAT_E_INVAL. */
int sim_strategy_parse(const char *name, sim_agent_kind *kind);

/* A trader: parameters plus learnt state. ZIP keeps its margin (fraction of the tariff band,
 * 0..1) and its last change (momentum); the other kinds keep nothing. */
typedef struct {
    sim_strategy_params params;
    double margin;
    double last_change;
} sim_trader;

/* Sets up a trader as the simulator does a home's agent; ZIP draws its initial margin from
 * the generator seeded with seed. SIM_STRAT_OK or SIM_STRAT_E_INVAL. */
int sim_trader_init(sim_trader *t, const sim_strategy_params *p, uint64_t seed);

/* The price the strategy asks (seller) or bids (buyer), in the band from the feed-in tariff to
 * retail less the network fee, like the simulator. Draws from a generator seeded with seed
 * (ZI-C only). SIM_STRAT_OK or an error; *price_uc_per_kwh is set on success. */
int sim_trader_price(const sim_trader *t, mkt_side side, const mkt_params *tariffs,
                     uint64_t seed, int64_t *price_uc_per_kwh);

/* The simulator's one-step order for a forecast net position (export positive, Wh): a seller
 * of the surplus at sim_trader_price, or a buyer of the deficit at sim_trader_price plus the
 * network fee, because a buyer's limit is all-in (docs/market-rules.md): the strategies choose
 * the trade price, and the market takes the fee off the bid again. Returns 1 with *side and
 * *step filled, 0 when the forecast is 0 (no order), or a negative SIM_STRAT_E_* code. */
int sim_trader_order(const sim_trader *t, int64_t forecast_net_wh, const mkt_params *tariffs,
                     uint64_t seed, mkt_side *side, mkt_step *step);

/* What the market did with the trader's last order: my_price_uc_per_kwh is its step price as
 * sim_trader_order wrote it (a buyer's all-in limit, whose fee is taken off here), traded is
 * nonzero if any of it traded locally, market_price_uc_per_kwh is the interval's price (-1
 * when nothing traded). Updates
 * ZIP's margin (drawing from a generator seeded with seed); a no-op for the other kinds. */
int sim_trader_observe(sim_trader *t, mkt_side side, int64_t my_price_uc_per_kwh, int traded,
                       int64_t market_price_uc_per_kwh, const mkt_params *tariffs, uint64_t seed);

/* The rules themselves, for a caller with its own random source (the simulator). They do not
 * check their arguments: the caller validated the parameters (sim_strategy_check) and the
 * tariffs; an unknown kind prices like SIM_AGENT_TRUTHFUL. */

/* The prices a trader can sensibly use: a seller never asks below feed-in (the grid pays that),
 * a buyer never bids above retail less the fee (the grid sells for that, fee-free). */
typedef struct {
    int64_t lo; /* feed-in */
    int64_t hi; /* retail - fee, at least lo */
} sim_band;

sim_band sim_band_from(int64_t feed_in, int64_t retail, int64_t fee);

/* A source of uniform random draws, with the semantics of GSL's gsl_rng_uniform and
 * gsl_rng_uniform_int (the simulator passes those on its per-home generator). */
typedef struct {
    double (*uniform)(void *ctx);                             /* in [0, 1) */
    unsigned long (*uniform_int)(void *ctx, unsigned long n); /* in [0, n) */
    void *ctx;
} sim_random;

/* Sets up a trader: ZIP draws its initial margin (one uniform draw), the others draw nothing. */
void sim_pricing_init(sim_trader *t, const sim_strategy_params *p, const sim_random *r);
/* The trader's price for side in band (ZI-C draws once, the others never). */
int64_t sim_pricing_price(const sim_trader *t, mkt_side side, const sim_band *band,
                          const sim_random *r);
/* ZIP's margin update after an interval (two draws); the others learn nothing. */
void sim_pricing_observe(sim_trader *t, mkt_side side, int64_t my_price, int traded,
                         int64_t market_price, const sim_band *band, const sim_random *r);

#ifdef __cplusplus
}
#endif

#endif
