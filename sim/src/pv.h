/*
 * Internal: PV generation per home and interval. The geometry and clear-sky part is computed
 * once per interval and panel orientation (group); the stochastic cloud cover is one shared
 * process for the community plus a small per-home deviation, both drawn from GSL generators the
 * caller owns, so a seed fixes everything.
 */
#ifndef MGX_SIM_PV_H
#define MGX_SIM_PV_H

#include <gsl/gsl_rng.h>
#include <stddef.h>
#include <stdint.h>

#include "mgx/scenario.h"

typedef struct sim_pv sim_pv; /* opaque */

/* Precomputes, for every interval of the scenario and every group, the plane-of-array
 * irradiance under clear sky and under full overcast-style diffuse light, averaged over the
 * interval. NULL on allocation failure. */
sim_pv *sim_pv_new(const sim_scenario *sc);
void sim_pv_free(sim_pv *pv);

/* Draws the community's clear-sky index for every interval (a correlated, bounded process with
 * the scenario's mean and persistence; see docs/sim-models.md). Call once per run. */
void sim_pv_draw_weather(sim_pv *pv, gsl_rng *r);

/* The shared clear-sky index of interval k (after sim_pv_draw_weather). */
double sim_pv_clear_sky_index(const sim_pv *pv, size_t k);

/* AC energy in Wh of one home of group g in interval k: the home's clear-sky index is the
 * shared one plus a deviation (*dev is the home's persistent AR(1) state, start at 0, updated
 * from r), then POA, the DC rating, losses and the inverter limit. 0 for a group without PV. */
int64_t sim_pv_home_wh(const sim_pv *pv, size_t g, size_t k, double *dev, gsl_rng *r);

#endif
