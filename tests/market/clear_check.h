/*
 * An independent checker for one clearing result: recomputes what docs/market-rules.md promises
 * (balances, floors, price bounds, per-unit acceptance, maximal volume) from the orders and the
 * parameters alone and aborts with a message on the first violation. Used by the fuzz harness
 * and its replay driver; it trusts nothing the engine computed except what it is checking.
 */
#ifndef MGX_TESTS_CLEAR_CHECK_H
#define MGX_TESTS_CLEAR_CHECK_H

#include <stddef.h>

#include "mgx/market.h"

/* Checks the last successful mkt_clear of c on orders[0..n) (participant ids must be 0..n-1 in
 * array order, as mkt_csv_parse makes them). Aborts on a violation. */
void fuzz_check_clearing(const mkt_clearing *c, const mkt_params *p, const mkt_order *orders,
                         size_t n);

/* Aborts unless a and b hold the same summary, trades and participant results. */
void fuzz_check_same_result(const mkt_clearing *a, const mkt_clearing *b, const char *why);

/* Nonzero if a book with these orders could legitimately overflow an int64 amount or total:
 * an MKT_E_OVERFLOW from mkt_clear is only acceptable when this says so. */
int fuzz_overflow_possible(const mkt_params *p, const mkt_order *orders, size_t n);

#endif
