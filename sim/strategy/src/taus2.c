/*
 * The Tausworthe taus2 generator of the checked strategy API (see taus2.h).
 */
#include "taus2.h"

/* One component: s <- ((s & c) << d) ^ (((s << a) ^ s) >> b), in 32 bits. */
static uint32_t component(uint32_t s, unsigned a, unsigned b, uint32_t c, unsigned d)
{
    return ((s & c) << d) ^ (((s << a) ^ s) >> b);
}

uint32_t sim_taus2_next(sim_taus2 *g)
{
    g->s1 = component(g->s1, 13, 19, UINT32_C(0xFFFFFFFE), 12);
    g->s2 = component(g->s2, 2, 25, UINT32_C(0xFFFFFFF8), 4);
    g->s3 = component(g->s3, 3, 11, UINT32_C(0xFFFFFFF0), 17);
    return g->s1 ^ g->s2 ^ g->s3;
}

/* The seeding LCG, x -> 69069 x mod 2^32, on the full 64-bit seed like an unsigned long. */
static uint32_t lcg(uint64_t x)
{
    return (uint32_t)(UINT64_C(69069) * x);
}

void sim_taus2_seed(sim_taus2 *g, uint64_t seed)
{
    if (seed == 0)
        seed = 1;
    /* each component needs a seed above its bound (2, 8, 16) to stay out of the zero cycle */
    g->s1 = lcg(seed);
    if (g->s1 < 2)
        g->s1 += 2;
    g->s2 = lcg(g->s1);
    if (g->s2 < 8)
        g->s2 += 8;
    g->s3 = lcg(g->s2);
    if (g->s3 < 16)
        g->s3 += 16;
    for (int i = 0; i < 6; i++) /* warm up */
        (void)sim_taus2_next(g);
}

static double uniform(void *ctx)
{
    return (double)sim_taus2_next(ctx) / 4294967296.0;
}

/* [0, n) without modulo bias: scale the output down and reject the top remainder. n outside
 * [1, 2^32 - 1] gives 0, as GSL does with its error handler off. */
static unsigned long uniform_int(void *ctx, unsigned long n)
{
    const unsigned long range = UINT32_C(0xFFFFFFFF);
    if (n == 0 || n > range)
        return 0;
    unsigned long scale = range / n, k;
    do
        k = sim_taus2_next(ctx) / scale;
    while (k >= n);
    return k;
}

sim_random sim_taus2_random(sim_taus2 *g)
{
    return (sim_random){uniform, uniform_int, g};
}
