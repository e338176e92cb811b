/*
 * Radix sort on 64-bit keys with an optional 32-bit payload, used to order orders by
 * participant id and curve steps by (price, participant). Large inputs are first split on their
 * top digit (one pass through DRAM) into buckets that fit in L2, and each bucket is then sorted
 * LSD: 8-bit digits need up to eight passes for a full key; a pre-pass counts every needed digit
 * at once (only digits below the highest set bit of any key), and passes with one live bucket
 * are skipped. On the benchmark machine the split made the 1M 64-bit id sort and the 2M 39-bit
 * unit sort take about 0.55-0.7x the time of eight or five LSD passes over DRAM. Wider digits
 * mean fewer passes but each pass scatters into more streams at once: on the benchmark machine
 * (docs/benchmarks.md) 11-bit digits sorted 1M full-width keys in 32 ms and 8-bit digits in
 * 19 ms, LSD only. A bucket whose keys differ in many digits (random ids) is ordered on its top
 * two digits and finished by an insertion sort instead of the passes below (lsd_sort in
 * sort_impl.h): 1M random 64-bit ids in 8-9 ms instead of 16-23 (session 8).
 */
#include "sort.h"

#include <string.h>

#define DIGIT_BITS 8u
#define BUCKETS    (1u << DIGIT_BITS)
#define PASSES     8u /* 64 / 8 */
/* Inputs up to this many elements (12 bytes each, twice with the scratch) stay in L2 for their
 * LSD passes; larger ones are split on their top digit first (msd_sort). */
#define MSD_MIN 16384u
/* lsd_sort: how many top digits order a bucket before an insertion sort finishes it, the
 * longest run of keys sharing them that it expects for that, and how many elements per key the
 * insertion may move before passes over every digit take over. */
#define PREFIX_PASSES    2u
#define PREFIX_MAX_RUN   4.0
#define INSERTION_BUDGET 4u

unsigned mkt__bit_width(uint64_t v)
{
    unsigned w = 0;
    while (v) {
        w++;
        v >>= 1;
    }
    return w;
}

static unsigned digit(uint64_t key, unsigned pass)
{
    return (unsigned)((key >> (pass * DIGIT_BITS)) & (BUCKETS - 1u));
}

#define SORT_VAL     uint32_t
#define SORT_NAME(f) f##_32
#include "sort_impl.h"
#undef SORT_VAL
#undef SORT_NAME

#define SORT_VAL     uint64_t
#define SORT_NAME(f) f##_64
#include "sort_impl.h"
#undef SORT_VAL
#undef SORT_NAME

void mkt__radix_sort(uint64_t *keys, uint32_t *vals, size_t n, uint64_t *tmp_keys,
                     uint32_t *tmp_vals)
{
    /* Only the digits below the highest set bit of any key need a pass. */
    uint64_t any = 0;
    for (size_t i = 0; i < n; i++)
        any |= keys[i];
    sort_in_place_32(keys, vals, n, mkt__bit_width(any), tmp_keys, tmp_vals);
}

void mkt__radix_sort_bits(uint64_t *keys, uint32_t *vals, size_t n, unsigned bits,
                          uint64_t *tmp_keys, uint32_t *tmp_vals)
{
    sort_in_place_32(keys, vals, n, bits > 64 ? 64 : bits, tmp_keys, tmp_vals);
}

void mkt__radix_sort_bits64(uint64_t *keys, uint64_t *vals, size_t n, unsigned bits,
                            uint64_t *tmp_keys, uint64_t *tmp_vals)
{
    sort_in_place_64(keys, vals, n, bits > 64 ? 64 : bits, tmp_keys, tmp_vals);
}
