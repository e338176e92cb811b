/*
 * Internal: trading agents, the pluggable strategies that price a home's order. A strategy
 * sees only its own side, the tariffs and the last market price; it never sees other homes'
 * orders. Kinds: truthful, ZI-C (Gode & Sunder 1993), fixed markup, and ZIP (Cliff 1997).
 */
#ifndef MGX_SIM_AGENT_H
#define MGX_SIM_AGENT_H

#include <gsl/gsl_rng.h>
#include <stdint.h>

#include "mgx/market.h"
#include "mgx/scenario.h"

/* The prices an agent can sensibly use: a seller never asks below feed-in (the grid pays that),
 * a buyer never bids above retail less the fee (the grid sells for that, fee-free). */
typedef struct {
    int64_t lo; /* feed-in */
    int64_t hi; /* retail - fee, at least lo */
} sim_band;

typedef struct {
    sim_agent_kind kind;
    double markup;   /* MARKUP: fraction of the band */
    double beta;     /* ZIP learning rate */
    double momentum; /* ZIP momentum */
    double margin;   /* ZIP: current margin as a fraction of the band, 0..1 */
    double last_change;
} sim_agent;

typedef struct {
    int64_t (*price)(sim_agent *a, mkt_side side, const sim_band *band, gsl_rng *r);
    /* traded: the order was (partly) accepted; market_price: -1 when nothing traded. */
    void (*observe)(sim_agent *a, mkt_side side, int64_t my_price, int traded,
                    int64_t market_price, const sim_band *band, gsl_rng *r);
} sim_strategy;

/* The strategy table entry for a kind. */
const sim_strategy *sim_strategy_for(sim_agent_kind kind);
void sim_agent_init(sim_agent *a, const sim_group *g, gsl_rng *r);
sim_band sim_band_from(int64_t feed_in, int64_t retail, int64_t fee);

#endif
