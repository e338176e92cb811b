/*
 * Fuzz harness for the orders CSV reader, and through it for the clearing engine. Any byte string
 * must either parse into a well-formed order set or fail with a message naming a line that
 * exists; a parsed set must survive being written back out and re-read unchanged; and clearing it
 * with both mechanisms must satisfy every invariant of docs/market-rules.md, give the same result
 * for the reversed order array and for a book with one step split in two.
 */
#include "fuzz.h"

#include "clear_check.h"
#include "mgx/market.h"
#include "mgx/order_csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Small bounds so that the "too many" errors are reachable and the checker stays fast. */
#define FUZZ_MAX_ORDERS 64
#define FUZZ_MAX_ROWS 256

static const mkt_params PARAMS[] = {
    {MKT_PAY_AS_CLEAR, 80000, 300000, 0, 0},         /* the CLI defaults */
    {MKT_PAY_AS_CLEAR, 80000, 300000, 12345, 0},     /* a fee with odd floors */
    {MKT_PAY_AS_CLEAR, 0, 0, 0, 0},                  /* a free grid: the band is one point */
    {MKT_PAY_AS_CLEAR, 150000, 150000, 0, 0},        /* feed-in equals retail */
    {MKT_PAY_AS_CLEAR, 100000, 300000, 250000, 0},   /* fee so high no local trade is possible */
    {MKT_PAY_AS_CLEAR, 0, MKT_PRICE_MAX_UC_PER_KWH, 0, 0}, /* the widest band: overflow land */
    {MKT_PAY_AS_CLEAR, 1, 3, 1, 0},                  /* a band of one uc */
    {MKT_PAY_AS_CLEAR, MKT_PRICE_MAX_UC_PER_KWH, MKT_PRICE_MAX_UC_PER_KWH, 0, 0},
};
#define N_PARAMS (sizeof PARAMS / sizeof PARAMS[0])

static void die(const char *what)
{
    fprintf(stderr, "fuzz_order_csv: %s\n", what);
    abort();
}

static uint32_t fnv1a(const uint8_t *d, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 16777619u;
    return h;
}

static void check_parse_error(int rc, const mkt_csv_error *err, const uint8_t *d, size_t n)
{
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += d[i] == '\n';
    if (rc != MKT_E_INVAL && rc != MKT_E_NOMEM)
        die("parse failed with an unexpected code");
    if (err->line > lines)
        die("parse error names a line past the end of the input");
    if (err->message[0] == '\0' || memchr(err->message, '\0', sizeof err->message) == NULL)
        die("parse error without a terminated message");
}

static void check_set(const mkt_order_set *set)
{
    size_t n;
    const mkt_order *o = mkt_order_set_orders(set, &n);
    if (n > FUZZ_MAX_ORDERS || mkt_order_set_name(set, n) != NULL)
        die("order count out of bounds");
    for (size_t i = 0; i < n; i++) {
        const char *name = mkt_order_set_name(set, i);
        if (o[i].participant != i || !name || name[0] == '\0' || strlen(name) > MKT_CSV_NAME_MAX)
            die("bad participant id or name");
        if (i > 0 && strcmp(mkt_order_set_name(set, i - 1), name) >= 0)
            die("names not strictly ascending by byte");
        if (o[i].n_steps < 1 || o[i].n_steps > MKT_MAX_STEPS)
            die("step count out of bounds");
        for (uint32_t s = 0; s < o[i].n_steps; s++) {
            const mkt_step *st = &o[i].steps[s];
            if (st->energy_wh < 1 || st->energy_wh > MKT_ENERGY_MAX_WH ||
                st->price_uc_per_kwh < 0 || st->price_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH)
                die("step out of bounds");
            size_t line = mkt_order_set_line(set, i, (int)s);
            if (line == 0 || (s > 0 && line <= mkt_order_set_line(set, i, (int)s - 1)))
                die("step lines not ascending");
        }
    }
}

/* Writes the set back as CSV (names always quoted) into a malloc'd buffer. */
static char *write_csv(const mkt_order_set *set, size_t *len)
{
    size_t n, cap = 64, at = 0;
    const mkt_order *o = mkt_order_set_orders(set, &n);
    for (size_t i = 0; i < n; i++)
        cap += o[i].n_steps * (2 * MKT_CSV_NAME_MAX + 3 + 6 + 2 * 21 + 2);
    char *out = malloc(cap);
    if (!out)
        die("out of memory");
    at += (size_t)snprintf(out, cap, "participant,side,energy_wh,price_uc_per_kwh\n");
    for (size_t i = 0; i < n; i++)
        for (uint32_t s = 0; s < o[i].n_steps; s++) {
            out[at++] = '"';
            for (const char *q = mkt_order_set_name(set, i); *q; q++) {
                if (*q == '"')
                    out[at++] = '"';
                out[at++] = *q;
            }
            at += (size_t)snprintf(out + at, cap - at, "\",%s,%lld,%lld\n",
                                   o[i].side == MKT_SELL ? "sell" : "buy",
                                   (long long)o[i].steps[s].energy_wh,
                                   (long long)o[i].steps[s].price_uc_per_kwh);
        }
    *len = at;
    return out;
}

static void check_round_trip(const mkt_order_set *set)
{
    size_t len, n, n2;
    char *csv = write_csv(set, &len);
    mkt_order_set *again = NULL;
    mkt_csv_error err;
    if (mkt_csv_parse(csv, len, FUZZ_MAX_ORDERS, FUZZ_MAX_ROWS, &again, &err) != MKT_OK) {
        fprintf(stderr, "re-parse failed at %zu:%zu: %s\n", err.line, err.column, err.message);
        die("a parsed set written back out does not parse");
    }
    const mkt_order *a = mkt_order_set_orders(set, &n), *b = mkt_order_set_orders(again, &n2);
    if (n != n2)
        die("round trip changed the order count");
    for (size_t i = 0; i < n; i++)
        if (strcmp(mkt_order_set_name(set, i), mkt_order_set_name(again, i)) != 0 ||
            a[i].side != b[i].side || a[i].n_steps != b[i].n_steps ||
            memcmp(a[i].steps, b[i].steps, a[i].n_steps * sizeof a[i].steps[0]) != 0)
            die("round trip changed an order");
    mkt_order_set_free(again);
    free(csv);
}

/* The book with the first splittable step split into two at the same price; 0 if none. */
static int split_one_step(mkt_order *o, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (o[i].n_steps == MKT_MAX_STEPS)
            continue;
        for (uint32_t s = 0; s < o[i].n_steps; s++) {
            mkt_step *st = &o[i].steps[s];
            if (st->energy_wh < 2)
                continue;
            o[i].steps[o[i].n_steps] = *st;
            o[i].steps[o[i].n_steps].energy_wh = st->energy_wh / 2;
            st->energy_wh -= st->energy_wh / 2;
            o[i].n_steps++;
            return 1;
        }
    }
    return 0;
}

static void clear_and_check(mkt_clearing *c[2], const mkt_params *p, const mkt_order *o,
                            mkt_order *scratch, size_t n)
{
    int rc = mkt_clear(c[0], p, o, n, NULL);
    if (rc == MKT_E_OVERFLOW && fuzz_overflow_possible(p, o, n))
        return;
    if (rc != MKT_OK) {
        fprintf(stderr, "mkt_clear: %s\n", mkt_strerror(rc));
        die("a parsed book did not clear");
    }
    fuzz_check_clearing(c[0], p, o, n);

    for (size_t i = 0; i < n; i++) /* permutation invariance */
        scratch[i] = o[n - 1 - i];
    if ((rc = mkt_clear(c[1], p, scratch, n, NULL)) != MKT_OK) {
        fprintf(stderr, "mkt_clear: %s\n", mkt_strerror(rc));
        die("the reversed book did not clear");
    }
    fuzz_check_same_result(c[0], c[1], "reversing the orders changed the result");

    memcpy(scratch, o, n * sizeof *o); /* split invariance */
    if (split_one_step(scratch, n)) {
        if ((rc = mkt_clear(c[1], p, scratch, n, NULL)) != MKT_OK) {
            fprintf(stderr, "mkt_clear: %s\n", mkt_strerror(rc));
            die("the split book did not clear");
        }
        fuzz_check_same_result(c[0], c[1], "splitting a step changed the result");
    }
}

static void clear_set(const mkt_order_set *set, uint32_t hash)
{
    size_t n;
    const mkt_order *o = mkt_order_set_orders(set, &n);
    mkt_clearing *c[2] = {mkt_clearing_new(FUZZ_MAX_ORDERS), mkt_clearing_new(FUZZ_MAX_ORDERS)};
    mkt_order *scratch = malloc((n ? n : 1) * sizeof *scratch);
    if (!c[0] || !c[1] || !scratch)
        die("out of memory");
    size_t pick[2] = {0, 1 + hash % (N_PARAMS - 1)};
    for (size_t k = 0; k < 2; k++)
        for (int m = 0; m < 2; m++) {
            mkt_params p = PARAMS[pick[k]];
            p.mechanism = m ? MKT_PAY_AS_BID : MKT_PAY_AS_CLEAR;
            p.interval_id = (int64_t)(hash >> 1); /* ties: a different seating per input */
            clear_and_check(c, &p, o, scratch, n);
        }
    free(scratch);
    mkt_clearing_free(c[0]);
    mkt_clearing_free(c[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mkt_order_set *set = NULL;
    mkt_csv_error err;
    int rc = mkt_csv_parse((const char *)data, size, FUZZ_MAX_ORDERS, FUZZ_MAX_ROWS, &set, &err);
    if (rc != MKT_OK) {
        if (set)
            die("a failed parse returned a set");
        check_parse_error(rc, &err, data, size);
        return 0;
    }
    check_set(set);
    check_round_trip(set);
    clear_set(set, fnv1a(data, size));
    mkt_order_set_free(set);
    return 0;
}
