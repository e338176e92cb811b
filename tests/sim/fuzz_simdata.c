/*
 * Fuzz harness for the measured-data reader (sim_data_parse, sim/src/simdata.c) against one
 * fixed tiny scenario: one day of three 8-hour intervals at UTC+01:00, groups `a` (2 homes) and
 * `b_c` (1 home), so that a complete, valid file is a handful of rows the fuzzer can reach.
 * Any byte string must either parse into a data set whose homes are distinct, ascending,
 * existing scenario homes with every energy in 0 .. 1e12 Wh, or fail with a message
 * "fuzz.csv:line: ..." (or "fuzz.csv: ...") naming a line that exists. A parsed input must parse
 * to the same data with its rows in reverse order (the format allows any order).
 */
#include "fuzz.h"

#include "mgx/scenario.h"
#include "mgx/simdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_fuzz_check.h"

#define NAME           "fuzz.csv"
#define FUZZ_MAX_INPUT 65536
#define WH_MAX         INT64_C(1000000000000)
#define N_INTERVALS    3 /* 1 day of 480 minutes */

static _Noreturn void die(const char *what, const char *detail)
{
    sim_fuzz_die("fuzz_simdata", what, detail);
}

static void tiny_scenario(sim_scenario *sc)
{
    char err[256];
    sim_scenario_defaults(sc);
    sc->utc_offset_min = 60;
    sc->start_year = 2025;
    sc->start_month = 6;
    sc->start_day = 1;
    sc->days = 1;
    sc->interval_min = 480;
    sc->n_groups = 2;
    const char *names[2] = {"a", "b_c"};
    const uint32_t counts[2] = {2, 1};
    for (size_t g = 0; g < 2; g++) {
        /* group defaults are static in scenario.c; these are the documented ones that matter */
        sim_group *gr = &sc->groups[g];
        memset(gr, 0, sizeof *gr);
        snprintf(gr->name, sizeof gr->name, "%s", names[g]);
        gr->count = counts[g];
        gr->pv_loss = 0.14;
        gr->battery_efficiency = 0.9;
        gr->soc_min = 0.1;
        gr->soc_max = 0.9;
        gr->soc_initial = 0.5;
        gr->zip_beta = 0.3;
        gr->zip_momentum = 0.05;
    }
    if (sim_scenario_validate(sc, err, sizeof err) != SIM_OK)
        die("the fixed scenario is invalid", err);
}

static void check_data(const sim_data *d, size_t homes)
{
    size_t n = sim_data_homes(d);
    if (n < 1 || n > homes)
        die("data home count out of bounds", NULL);
    for (size_t i = 0; i < n; i++) {
        size_t h = sim_data_home_index(d, i);
        if (h >= homes)
            die("data names a home past the scenario's", NULL);
        if (i > 0 && h <= sim_data_home_index(d, i - 1))
            die("data homes not strictly ascending", NULL);
        for (size_t k = 0; k < N_INTERVALS; k++) {
            int64_t l = sim_data_load_wh(d, i, k), p = sim_data_pv_wh(d, i, k);
            if (l < 0 || p < 0 || l > WH_MAX || p > WH_MAX)
                die("energy out of 0 .. 1e12 Wh", NULL);
        }
        if (sim_data_load_wh(d, i, N_INTERVALS) != 0 || sim_data_pv_wh(d, i, N_INTERVALS) != 0)
            die("an interval past the period has data", NULL);
    }
    if (sim_data_home_index(d, n) != SIZE_MAX)
        die("a home past the data's count has an index", NULL);
}

static int same_data(const sim_data *x, const sim_data *y)
{
    size_t n = sim_data_homes(x);
    if (sim_data_homes(y) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (sim_data_home_index(x, i) != sim_data_home_index(y, i))
            return 0;
        for (size_t k = 0; k < N_INTERVALS; k++)
            if (sim_data_load_wh(x, i, k) != sim_data_load_wh(y, i, k) ||
                sim_data_pv_wh(x, i, k) != sim_data_pv_wh(y, i, k))
                return 0;
    }
    return 1;
}

/* The input with every line after the header in reverse order (the lines up to and including
 * the header stay put, so a BOM and leading comments keep their place). Each moved line gets a
 * '\n'. NULL if there is no header line. The caller frees the result. */
static char *reverse_rows(const uint8_t *d, size_t n, size_t *out_len)
{
    const char *s = (const char *)d, *end = s + n, *p = s;
    if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    for (;;) { /* the header is the first line that is neither blank nor a comment */
        if (p >= end)
            return NULL;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        int skip = e == p || (e == p + 1 && *p == '\r') || *p == '#';
        p = nl ? nl + 1 : end;
        if (!skip)
            break;
    }
    size_t head = (size_t)(p - s);
    char *out = malloc(n + (size_t)(end - p) + 2); /* worst case: one '\n' added per line */
    if (!out)
        die("out of memory", NULL);
    memcpy(out, s, head);
    size_t len = head;
    if (head > 0 && s[head - 1] != '\n' && p < end)
        out[len++] = '\n';
    const char *e = end;
    while (e > p) { /* walk the lines backwards */
        const char *q = e;
        if (q > p && q[-1] == '\n')
            q--; /* q: the end of this line's content */
        const char *b = q;
        while (b > p && b[-1] != '\n')
            b--;
        memcpy(out + len, b, (size_t)(q - b));
        len += (size_t)(q - b);
        out[len++] = '\n';
        e = b;
    }
    *out_len = len;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sim_scenario sc;
    static int ready;
    char err[512];
    sim_data *d = NULL, *r = NULL;
    if (size > FUZZ_MAX_INPUT)
        return 0;
    if (!ready) {
        tiny_scenario(&sc);
        ready = 1;
    }
    memset(err, 0, sizeof err);
    int rc = sim_data_parse((const char *)data, size, NAME, &sc, &d, err, sizeof err);
    if (rc != SIM_OK) {
        if (d)
            die("a failed parse returned data", NULL);
        sim_fuzz_check_error("fuzz_simdata", rc, err, NAME, sim_fuzz_count_lines(data, size));
        return 0;
    }
    check_data(d, sim_scenario_homes(&sc));
    size_t rlen = 0;
    char *rev = reverse_rows(data, size, &rlen);
    if (!rev)
        die("a parsed input has no header line", NULL);
    rc = sim_data_parse(rev, rlen, NAME, &sc, &r, err, sizeof err);
    if (rc != SIM_OK)
        die("the same rows in reverse order fail", err);
    if (!same_data(d, r))
        die("the same rows in reverse order give other data", NULL);
    free(rev);
    sim_data_free(r);
    sim_data_free(d);
    return 0;
}
