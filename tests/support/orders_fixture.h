/*
 * Shared fixtures for the orders tests: the RFC 8032 test key and the documented example order,
 * so every test and docs/order-encoding.md talk about the same bytes.
 */
#ifndef MGX_TESTS_ORDERS_FIXTURE_H
#define MGX_TESTS_ORDERS_FIXTURE_H

#include "orders/keys.h"
#include "orders/order_msg.h"

#include <stddef.h>
#include <stdint.h>

/* RFC 8032 section 7.1, TEST 1: secret key (seed) and public key. */
extern const uint8_t TST_RFC8032_SEED[32];
extern const uint8_t TST_RFC8032_PK[32];

/* The example of docs/order-encoding.md: community "elm-street", participant "home-07", the
 * interval starting 2025-06-01 12:00:00 UTC (1748779200 s, id 1943088 of 900 s), created 20
 * minutes earlier, expiring at the interval's start, nonce 00 01 .. 0f, selling 1500 Wh at
 * 80000 uc/kWh and 1000 Wh more at 120000 uc/kWh. Unsigned (sig all zero). */
void tst_example_order(ctl_order_msg *m);

/* A 4-step order of participant "home-<i>" with prices and energies varying with i and a
 * nonce derived from i, unsigned. */
void tst_sample_order(ctl_order_msg *m, unsigned i, int64_t interval_id);

/* The annotated example text of docs/order-encoding.md (between its example markers): hex of
 * the encoding field by field, the signature, and the JSON. Writes at most cap bytes. */
size_t tst_example_text(char *out, size_t cap);

#endif
