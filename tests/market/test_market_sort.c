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

static void one_case(size_t n, unsigned key_bits)
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
        cmocka_unit_test(keys_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
