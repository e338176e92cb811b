/*
 * Internal: residential load per home and interval. A normalised daily shape (weekday and
 * weekend, interpolated with GSL from hourly points), a seasonal factor (winter peak, aware of
 * the hemisphere), scaled so a year sums to the home's annual consumption in expectation, times
 * a per-home stochastic factor (persistent AR(1) noise plus occasional appliance peaks).
 */
#ifndef MGX_SIM_LOAD_H
#define MGX_SIM_LOAD_H

#include <gsl/gsl_rng.h>
#include <stddef.h>
#include <stdint.h>

#include "mgx/scenario.h"

typedef struct sim_load sim_load; /* opaque */

/* Per-home persistent state of the stochastic part. Zero-initialise it. */
typedef struct {
    double noise;    /* AR(1) log-factor */
    double scale;    /* this home's level relative to its group, drawn on first use */
    int initialised;
} sim_load_state;

sim_load *sim_load_new(const sim_scenario *sc);
void sim_load_free(sim_load *l);

/* Expected (noise-free) load in Wh of a home of group g in interval k. */
double sim_load_expected_wh(const sim_load *l, size_t g, size_t k);

/* Load in Wh of one home of group g in interval k, >= 0. */
int64_t sim_load_home_wh(const sim_load *l, size_t g, size_t k, sim_load_state *st, gsl_rng *r);

#endif
