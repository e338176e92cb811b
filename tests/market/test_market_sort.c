/*
 * The market's internal radix sort against qsort: random sizes across the insertion-sort and
 * radix thresholds, narrow and full-width keys, and stability (equal keys keep their order,
 * which is what makes ties go to the lower participant id).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sort.h"

static uint64_t rng_state = 0x1234567887654321u;

static uint64_t next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t key;
    uint32_t val;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->val > y->val) - (x->val < y->val); /* stable: original position */
}

/* Sorts n random keys of key_bits bits and compares with qsort; declared_bits > 0 sorts them
 * with mkt__radix_sort_bits told that width instead. */
static void one_case_as(size_t n, unsigned key_bits, unsigned declared_bits)
{
    uint64_t *k = malloc(n * sizeof *k), *tk = malloc(n * sizeof *tk);
    uint32_t *v = malloc(n * sizeof *v), *tv = malloc(n * sizeof *tv);
    pair *ref = malloc(n * sizeof *ref);
    assert_true(k && tk && v && tv && ref);
    uint64_t mask = key_bits >= 64 ? UINT64_MAX : (UINT64_C(1) << key_bits) - 1;
    for (size_t i = 0; i < n; i++) {
        k[i] = next() & mask;
        v[i] = (uint32_t)i;
        ref[i].key = k[i];
        ref[i].val = (uint32_t)i;
    }
    if (declared_bits)
        mkt__radix_sort_bits(k, v, n, declared_bits, tk, tv);
    else
        mkt__radix_sort(k, v, n, tk, tv);
    qsort(ref, n, sizeof *ref, cmp_pair);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(k[i], ref[i].key);
        assert_int_equal(v[i], ref[i].val);
    }
    free(k);
    free(tk);
    free(v);
    free(tv);
    free(ref);
}

static void one_case(size_t n, unsigned key_bits)
{
    one_case_as(n, key_bits, 0);
}

static void matches_qsort(void **state)
{
    (void)state;
    static const unsigned bits[] = {1, 3, 11, 12, 22, 23, 40, 63, 64};
    for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++)
        for (size_t n = 0; n < 80; n++)
            one_case(n, bits[b]);
    for (int rep = 0; rep < 40; rep++)
        one_case(1 + (size_t)(next() % 20000), bits[next() % 9]);
}

/* Inputs large enough to be split on their top digit first (sort.c's MSD_MIN), including keys
 * crowded into one top bucket, a few buckets, or a narrow band in the middle of the width, so
 * that the split recurses and skips digits. */
static void split_inputs(void **state)
{
    (void)state;
    static const unsigned bits[] = {9, 16, 39, 64};
    for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++)
        for (int rep = 0; rep < 3; rep++)
            one_case(16385 + (size_t)(next() % 300000), bits[b]);
    const size_t n = 200000;
    uint64_t *k = malloc(n * sizeof *k), *tk = malloc(n * sizeof *tk);
    uint32_t *v = malloc(n * sizeof *v), *tv = malloc(n * sizeof *tv);
    pair *ref = malloc(n * sizeof *ref);
    assert_true(k && tk && v && tv && ref);
    for (int shape = 0; shape < 4; shape++) {
        for (size_t i = 0; i < n; i++) {
            uint64_t r = next();
            switch (shape) {
            case 0: /* one top bucket holds nearly all */
                k[i] = (i % 1000 ? UINT64_C(0xAB) << 56 : 0) | (r >> 8);
                break;
            case 1: /* a few values, many repeats */
                k[i] = (r % 5) << 40;
                break;
            case 2: /* a narrow band in the middle */
                k[i] = (UINT64_C(1) << 50) | ((r & 0xFFFFF) << 12);
                break;
            default: /* ascending with a few out of place */
                k[i] = i % 97 ? (uint64_t)i * 1000 : r;
                break;
            }
            v[i] = (uint32_t)i;
            ref[i] = (pair){k[i], (uint32_t)i};
        }
        mkt__radix_sort(k, v, n, tk, tv);
        qsort(ref, n, sizeof *ref, cmp_pair);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(k[i], ref[i].key);
            assert_int_equal(v[i], ref[i].val);
        }
        for (size_t i = 0; i < n; i++)
            k[i] = ref[(i * 7919) % n].key; /* keys only, in another order */
        mkt__radix_sort(k, NULL, n, tk, NULL);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(k[i], ref[i].key);
    }
    free(k);
    free(tk);
    free(v);
    free(tv);
    free(ref);
}

/* mkt__radix_sort_bits, as the clearing calls it (the exact width of its keys) and told a
 * wider width than the keys use (a top digit every key has as zero), below and above the
 * split threshold. */
static void known_width(void **state)
{
    (void)state;
    static const unsigned bits[] = {1, 8, 9, 20, 32, 39, 57, 64};
    static const size_t sizes[] = {0, 1, 31, 33, 5000, 16385, 70000};
    for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++)
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
            one_case_as(sizes[z], bits[b], bits[b]);
            one_case_as(sizes[z], bits[b], bits[b] + 9 > 64 ? 64 : bits[b] + 9);
        }
}

/* mkt__radix_sort_bits64 (pay-as-bid's units: a 64-bit payload of rank and energy) against
 * qsort: the payload's high half is the original position, so stability is checked too, and
 * its low half must travel with it. */
static void wide_payload(void **state)
{
    (void)state;
    static const unsigned bits[] = {1, 9, 24, 32, 51, 64};
    static const size_t sizes[] = {0, 1, 31, 33, 5000, 16385, 70000};
    for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++)
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
            size_t n = sizes[z];
            uint64_t *k = malloc((n + 1) * sizeof *k), *tk = malloc((n + 1) * sizeof *tk);
            uint64_t *v = malloc((n + 1) * sizeof *v), *tv = malloc((n + 1) * sizeof *tv);
            pair *ref = malloc((n + 1) * sizeof *ref);
            assert_true(k && tk && v && tv && ref);
            uint64_t mask = bits[b] >= 64 ? UINT64_MAX : (UINT64_C(1) << bits[b]) - 1;
            for (size_t i = 0; i < n; i++) {
                k[i] = next() & mask;
                v[i] = (uint64_t)i << 32 | (k[i] * 2654435761u & UINT32_MAX);
                ref[i] = (pair){k[i], (uint32_t)i};
            }
            mkt__radix_sort_bits64(k, v, n, bits[b], tk, tv);
            qsort(ref, n, sizeof *ref, cmp_pair);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(k[i], ref[i].key);
                assert_int_equal(v[i] >> 32, ref[i].val);
                assert_int_equal(v[i] & UINT32_MAX, k[i] * 2654435761u & UINT32_MAX);
            }
            free(k);
            free(tk);
            free(v);
            free(tv);
            free(ref);
        }
}

/* The in-cache sort's shortcut (sort_impl.h, lsd_sort): a bucket is ordered on its top two
 * digits and an insertion sort finishes it. Checked against qsort, with stability, where it
 * finishes (random keys), where the two digits look apart but go together, so that the
 * insertion gives up and passes over every digit take over from the order it reached (each
 * top-digit value repeated in the second digit: runs of n / 256 keys), and where it is not
 * taken (the two digits the same in every key). Sizes below the split threshold, so that the
 * whole input is one such bucket. */
static void prefix_shortcut(void **state)
{
    (void)state;
    const size_t n = 16000;
    uint64_t *k = malloc(n * sizeof *k), *tk = malloc(n * sizeof *tk);
    uint32_t *v = malloc(n * sizeof *v), *tv = malloc(n * sizeof *tv);
    pair *ref = malloc(n * sizeof *ref);
    assert_true(k && tk && v && tv && ref);
    for (int shape = 0; shape < 3; shape++) {
        for (size_t i = 0; i < n; i++) {
            uint64_t r = next(), a = next() >> 56;
            if (shape == 1) /* top digits (a, a): 256 runs of about 62 keys */
                k[i] = a << 56 | a << 48 | (r >> 16);
            else if (shape == 2) /* top digits equal in every key */
                k[i] = UINT64_C(0x7f7f) << 48 | (r >> 16);
            else
                k[i] = r;
            if (i % 101 == 0 && i > 0)
                k[i] = k[i - 1]; /* some equal keys, for stability */
            v[i] = (uint32_t)i;
            ref[i] = (pair){k[i], (uint32_t)i};
        }
        mkt__radix_sort_bits(k, v, n, 64, tk, tv);
        qsort(ref, n, sizeof *ref, cmp_pair);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(k[i], ref[i].key);
            assert_int_equal(v[i], ref[i].val);
        }
    }
    free(k);
    free(tk);
    free(v);
    free(tv);
    free(ref);
}

static void keys_only(void **state)
{
    (void)state;
    uint64_t k[1000], tk[1000];
    for (size_t i = 0; i < 1000; i++)
        k[i] = next() % 5000;
    mkt__radix_sort(k, NULL, 1000, tk, NULL);
    for (size_t i = 1; i < 1000; i++)
        assert_true(k[i - 1] <= k[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_qsort),
        cmocka_unit_test(split_inputs),
        cmocka_unit_test(known_width),
        cmocka_unit_test(wide_payload),
        cmocka_unit_test(prefix_shortcut),
        cmocka_unit_test(keys_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
