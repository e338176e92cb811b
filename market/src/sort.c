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
 * 19 ms, LSD only.
 */
#include "sort.h"

#include <string.h>

#define DIGIT_BITS 8u
#define BUCKETS (1u << DIGIT_BITS)
#define PASSES 8u /* 64 / 8 */
/* Inputs up to this many elements (12 bytes each, twice with the scratch) stay in L2 for their
 * LSD passes; larger ones are split on their top digit first (msd_sort). */
#define MSD_MIN 16384u

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

/* Stable insertion sort: for tiny inputs the radix sort's histograms cost more than the sort. */
static void insertion_sort(uint64_t *keys, uint32_t *vals, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t k = keys[i];
        uint32_t v = vals ? vals[i] : 0;
        size_t j = i;
        for (; j > 0 && keys[j - 1] > k; j--) {
            keys[j] = keys[j - 1];
            if (vals)
                vals[j] = vals[j - 1];
        }
        keys[j] = k;
        if (vals)
            vals[j] = v;
    }
}

/* LSD passes over the digits below bit `bits` of keys[0..n), in place (tmp_* are scratch). */
static void lsd_sort(uint64_t *keys, uint32_t *vals, size_t n, unsigned bits, uint64_t *tmp_keys,
                     uint32_t *tmp_vals)
{
    if (n <= 32) {
        insertion_sort(keys, vals, n);
        return;
    }
    unsigned passes = (bits + DIGIT_BITS - 1) / DIGIT_BITS;
    size_t count[PASSES][BUCKETS];
    memset(count, 0, passes * sizeof count[0]);
    for (size_t i = 0; i < n; i++)
        for (unsigned p = 0; p < passes; p++)
            count[p][digit(keys[i], p)]++;

    uint64_t *src_k = keys, *dst_k = tmp_keys;
    uint32_t *src_v = vals, *dst_v = tmp_vals;
    for (unsigned p = 0; p < passes; p++) {
        if (count[p][digit(src_k[0], p)] == n)
            continue; /* every key has this digit: the pass would be the identity */
        size_t sum = 0;
        for (unsigned b = 0; b < BUCKETS; b++) {
            size_t c = count[p][b];
            count[p][b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            size_t at = count[p][digit(src_k[i], p)]++;
            dst_k[at] = src_k[i];
            if (src_v)
                dst_v[at] = src_v[i];
        }
        uint64_t *tk = src_k;
        src_k = dst_k;
        dst_k = tk;
        uint32_t *tv = src_v;
        src_v = dst_v;
        dst_v = tv;
    }
    if (src_k != keys) {
        memcpy(keys, src_k, n * sizeof *keys);
        if (vals)
            memcpy(vals, src_v, n * sizeof *vals);
    }
}

/* Sorts keys[0..n) on their low `bits` bits (the bits above are equal in every key), in place.
 * Beyond what fits in cache, one stable pass on the top digit splits the input into buckets that
 * do, so that only that pass and the copy back move data through DRAM, where an LSD sort over
 * every digit would stream the whole array through DRAM once per digit. Each bucket is sorted
 * on the digits below with the same stable passes, so the whole is the one stable order. */
static void msd_sort(uint64_t *keys, uint32_t *vals, size_t n, unsigned bits, uint64_t *tmp_keys,
                     uint32_t *tmp_vals)
{
    if (n <= MSD_MIN || bits <= DIGIT_BITS) {
        lsd_sort(keys, vals, n, bits, tmp_keys, tmp_vals);
        return;
    }
    unsigned shift = bits - DIGIT_BITS;
    size_t count[BUCKETS] = {0};
    for (size_t i = 0; i < n; i++)
        count[(keys[i] >> shift) & (BUCKETS - 1u)]++;
    if (count[(keys[0] >> shift) & (BUCKETS - 1u)] == n) { /* nothing to split on this digit */
        msd_sort(keys, vals, n, shift, tmp_keys, tmp_vals);
        return;
    }
    size_t start[BUCKETS], sum = 0;
    for (unsigned b = 0; b < BUCKETS; b++) {
        start[b] = sum;
        sum += count[b];
    }
    size_t at[BUCKETS];
    memcpy(at, start, sizeof at);
    for (size_t i = 0; i < n; i++) {
        size_t to = at[(keys[i] >> shift) & (BUCKETS - 1u)]++;
        tmp_keys[to] = keys[i];
        if (vals)
            tmp_vals[to] = vals[i];
    }
    for (unsigned b = 0; b < BUCKETS; b++) {
        size_t s = start[b], m = count[b];
        if (m == 0)
            continue;
        /* sorted in tmp, with keys as scratch, on the digits below this one (the bits above
         * are equal within the bucket, so the passes that see them order nothing wrong) */
        msd_sort(tmp_keys + s, vals ? tmp_vals + s : NULL, m, shift, keys + s,
                 vals ? vals + s : NULL);
        memcpy(keys + s, tmp_keys + s, m * sizeof *keys);
        if (vals)
            memcpy(vals + s, tmp_vals + s, m * sizeof *vals);
    }
}

void mkt__radix_sort(uint64_t *keys, uint32_t *vals, size_t n, uint64_t *tmp_keys,
                     uint32_t *tmp_vals)
{
    /* Only the digits below the highest set bit of any key need a pass. */
    uint64_t any = 0;
    for (size_t i = 0; i < n; i++)
        any |= keys[i];
    msd_sort(keys, vals, n, mkt__bit_width(any), tmp_keys, tmp_vals);
}

void mkt__radix_sort_bits(uint64_t *keys, uint32_t *vals, size_t n, unsigned bits,
                          uint64_t *tmp_keys, uint32_t *tmp_vals)
{
    msd_sort(keys, vals, n, bits > 64 ? 64 : bits, tmp_keys, tmp_vals);
}
