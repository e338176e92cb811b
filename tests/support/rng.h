/*
 * The tests' random numbers: splitmix64 (a 64-bit state, every value once per 2^64 calls), so
 * that a property test's books and runs follow from its seed alone. Header only.
 */
#ifndef MGX_TEST_RNG_H
#define MGX_TEST_RNG_H

#include <stdint.h>

static inline uint64_t tst_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* A value in [0, n), n > 0 (the modulo's bias is below 2^-40 for the n the tests use). */
static inline uint64_t tst_below(uint64_t *s, uint64_t n)
{
    return tst_splitmix64(s) % n;
}

#endif
