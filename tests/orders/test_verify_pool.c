/*
 * The verify pool: with 0, 1, 2 and 4 workers, results come back exactly in submission order
 * with the right verdict for a mix of good and forged orders; a full ring refuses instead of
 * blocking; timeouts and the empty case behave; freeing with jobs in flight is clean.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "orders_fixture.h"
#include "orders/verify_pool.h"

#define N_ORDERS 600

static ctl_order_msg orders[N_ORDERS];
static int expected[N_ORDERS];

/* Every fifth order is forged in a different way; the rest are good. */
static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    ctl_secret_key *k = NULL;
    if (ctl_key_from_seed(TST_RFC8032_SEED, &k) != CTL_KEY_OK)
        return -1;
    for (unsigned i = 0; i < N_ORDERS; i++) {
        tst_sample_order(&orders[i], i, 1943088 + i % 3);
        if (ctl_order_sign(&orders[i], ctl_key_secret(k)) != CTL_R_OK)
            return -1;
        expected[i] = CTL_R_OK;
        if (i % 5 == 1) {
            orders[i].sig[i % 64] ^= 1;
            expected[i] = CTL_R_BAD_SIGNATURE;
        } else if (i % 5 == 3) {
            orders[i].steps[2].energy_wh++;
            expected[i] = CTL_R_BAD_SIGNATURE;
        }
    }
    orders[7].n_steps = 0; /* not encodable */
    expected[7] = CTL_R_MALFORMED;
    ctl_key_free(k);
    return 0;
}

static void drain_one(ctl_verify_pool *p, size_t *next_expected)
{
    ctl_verify_result res;
    assert_int_equal(ctl_verify_pool_next(p, -1, &res), CTL_VP_OK);
    size_t idx = (size_t)(uintptr_t)res.tag;
    assert_int_equal(idx, *next_expected); /* arrival order */
    assert_int_equal(res.rc, expected[idx]);
    assert_memory_equal(res.msg, &orders[idx], sizeof orders[idx]);
    (*next_expected)++;
}

static void run_with(unsigned threads, size_t capacity)
{
    ctl_verify_pool *p = NULL;
    assert_int_equal(ctl_verify_pool_new(threads, capacity, &p), CTL_VP_OK);
    size_t next = 0, fulls = 0;
    for (size_t i = 0; i < N_ORDERS; i++) {
        int rc;
        while ((rc = ctl_verify_pool_submit(p, &orders[i], TST_RFC8032_PK,
                                            (void *)(uintptr_t)i)) == CTL_VP_E_FULL) {
            assert_int_equal(ctl_verify_pool_in_flight(p), capacity);
            fulls++;
            drain_one(p, &next);
        }
        assert_int_equal(rc, CTL_VP_OK);
        /* now and then take what is ready without waiting */
        ctl_verify_result res;
        if (i % 7 == 0 && ctl_verify_pool_next(p, 0, &res) == CTL_VP_OK) {
            assert_int_equal((size_t)(uintptr_t)res.tag, next);
            assert_int_equal(res.rc, expected[next]);
            next++;
        }
    }
    while (next < N_ORDERS)
        drain_one(p, &next);
    ctl_verify_result res;
    assert_int_equal(ctl_verify_pool_next(p, 0, &res), CTL_VP_E_EMPTY);
    assert_int_equal(ctl_verify_pool_next(p, -1, &res), CTL_VP_E_EMPTY);
    assert_int_equal(ctl_verify_pool_in_flight(p), 0);
    if (capacity < N_ORDERS)
        assert_true(fulls > 0);
    ctl_verify_pool_free(p);
}

static void test_inline(void **state)
{
    (void)state;
    run_with(0, 16);
}

static void test_one_worker(void **state)
{
    (void)state;
    run_with(1, 8);
}

static void test_two_workers(void **state)
{
    (void)state;
    run_with(2, 64);
    run_with(2, 1);
}

static void test_four_workers(void **state)
{
    (void)state;
    run_with(4, 5);
}

static void test_edges(void **state)
{
    (void)state;
    ctl_verify_pool *p = NULL;
    assert_int_equal(ctl_verify_pool_new(2, 0, &p), CTL_VP_E_INVAL);
    assert_int_equal(ctl_verify_pool_new(2, 4, NULL), CTL_VP_E_INVAL);
    assert_int_equal(ctl_verify_pool_new(2, 4, &p), CTL_VP_OK);
    assert_int_equal(ctl_verify_pool_submit(p, NULL, TST_RFC8032_PK, NULL), CTL_VP_E_INVAL);
    /* a short timeout either gets the result or says it is not ready; a long one gets it */
    assert_int_equal(ctl_verify_pool_submit(p, &orders[0], TST_RFC8032_PK, NULL), CTL_VP_OK);
    ctl_verify_result res;
    int rc = ctl_verify_pool_next(p, 0, &res);
    assert_true(rc == CTL_VP_OK || rc == CTL_VP_E_TIMEOUT);
    if (rc == CTL_VP_E_TIMEOUT)
        assert_int_equal(ctl_verify_pool_next(p, 5000, &res), CTL_VP_OK);
    assert_int_equal(res.rc, CTL_R_OK);
    /* freeing with jobs in flight */
    for (int i = 0; i < 4; i++)
        assert_int_equal(ctl_verify_pool_submit(p, &orders[i], TST_RFC8032_PK, NULL),
                         CTL_VP_OK);
    assert_int_equal(ctl_verify_pool_submit(p, &orders[4], TST_RFC8032_PK, NULL),
                     CTL_VP_E_FULL);
    ctl_verify_pool_free(p);
    ctl_verify_pool_free(NULL);
    assert_string_equal(ctl_verify_pool_strerror(CTL_VP_E_FULL), "verify queue is full");
    assert_string_equal(ctl_verify_pool_strerror(-99), "unknown verify pool error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline),       cmocka_unit_test(test_one_worker),
        cmocka_unit_test(test_two_workers),  cmocka_unit_test(test_four_workers),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
