/*
 * Internal: the per-call random generator of the checked strategy API (strategy.c): L'Ecuyer's
 * maximally equidistributed combined Tausworthe generator (Math. Comp. 65, 1996), seeded and
 * drawn the way GSL's gsl_rng_taus2 is, so that a seed gives bit for bit the draws the
 * simulator's GSL streams give (tests/agent/test_strategy.c compares the two). Not thread safe
 * per generator; one per call.
 */
#ifndef MGX_SIM_TAUS2_H
#define MGX_SIM_TAUS2_H

#include <stdint.h>

#include "mgx/strategy.h"

typedef struct {
    uint32_t s1, s2, s3;
} sim_taus2;

/* Seeds g as gsl_rng_set(gsl_rng_taus2, seed) does (seed 0 means 1). */
void sim_taus2_seed(sim_taus2 *g, uint64_t seed);
/* The next 32-bit output. */
uint32_t sim_taus2_next(sim_taus2 *g);
/* g as a sim_random (uniform = next / 2^32; uniform_int by GSL's rejection rule). */
sim_random sim_taus2_random(sim_taus2 *g);

#endif
