/*
 * Unit tests of sweeps (mgx/sweep.h) and of sim_scenario_set: the cells of a sweep file in the
 * documented order (first axis slowest) with every [set] and [vary] key applied to the base
 * scenario, seeds per cell, errors that name the file and line or the cell and key, and the
 * summary's mean and 95 % interval against figures worked by hand.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgx/scenario.h"
#include "mgx/sweep.h"

#define STREET MGX_SOURCE_DIR "/config/street.ini"

/* Writes text to a sweep file in the build tree; returns its path (static buffer). */
static const char *sweep_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", MGX_BINARY_DIR, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void scenario_set_applies_or_leaves(void **state)
{
    (void)state;
    sim_scenario sc, before;
    char err[512];
    assert_int_equal(sim_scenario_load(STREET, &sc, err, sizeof err), SIM_OK);
    assert_int_equal(sim_scenario_set(&sc, "market", "mechanism", "pay-as-bid", err, sizeof err),
                     SIM_OK);
    assert_int_equal(sc.mechanism, MKT_PAY_AS_BID);
    assert_int_equal(sim_scenario_set(&sc, "group.solar", "count", "9", err, sizeof err), SIM_OK);
    assert_int_equal(sc.groups[1].count, 9);
    before = sc;
    /* a value out of range, a cross-field rule broken, an unknown key or group: unchanged */
    assert_int_equal(sim_scenario_set(&sc, "period", "days", "0", err, sizeof err), SIM_E_PARSE);
    assert_non_null(strstr(err, "days"));
    assert_int_equal(sim_scenario_set(&sc, "market", "feed_in_tariff", "999999999", err,
                                      sizeof err),
                     SIM_E_PARSE);
    assert_int_equal(sim_scenario_set(&sc, "market", "bogus", "1", err, sizeof err), SIM_E_PARSE);
    assert_non_null(strstr(err, "unknown key 'bogus' in [market]"));
    assert_int_equal(sim_scenario_set(&sc, "group.nope", "count", "1", err, sizeof err),
                     SIM_E_PARSE);
    assert_non_null(strstr(err, "[group.nope]"));
    assert_memory_equal(&sc, &before, sizeof sc);
}

static void cells_in_order(void **state)
{
    (void)state;
    const char *p = sweep_file("sweep-order.ini",
                               "[sweep]\nscenario = " STREET "\nseeds = 3\nseed = 100\n"
                               "[set]\nperiod.days = 1\n"
                               "[vary]\nmarket.mechanism = pay-as-clear, pay-as-bid\n"
                               "group.solar.count = 1, 2,3\n");
    char err[512];
    int rc = -99;
    sim_sweep *sw = sim_sweep_load(p, &rc, err, sizeof err);
    if (!sw)
        fail_msg("%s", err);
    assert_int_equal(rc, SIM_OK);
    assert_int_equal(sim_sweep_cells(sw), 6);
    assert_int_equal(sim_sweep_runs(sw), 18);
    assert_int_equal(sim_sweep_axes(sw), 2);
    for (size_t run = 0; run < 18; run++) {
        uint64_t seed = 0;
        const sim_scenario *sc = sim_sweep_scenario(sw, run, &seed);
        size_t cell = run / 3;
        assert_int_equal(seed, 100 + run % 3);
        assert_int_equal(sc->days, 1); /* [set] */
        assert_int_equal(sc->mechanism, cell < 3 ? MKT_PAY_AS_CLEAR : MKT_PAY_AS_BID);
        assert_int_equal(sc->groups[1].count, 1 + cell % 3);
        assert_int_equal(sc->groups[0].count, 4); /* untouched */
        assert_string_equal(sim_sweep_value(sw, cell, 0), cell < 3 ? "pay-as-clear" : "pay-as-bid");
    }
    sim_sweep_free(sw);
}

static void seed_defaults_to_scenario(void **state)
{
    (void)state;
    const char *p = sweep_file("sweep-seed.ini", "[sweep]\nscenario = " STREET "\n");
    char err[512];
    int rc;
    sim_sweep *sw = sim_sweep_load(p, &rc, err, sizeof err);
    assert_non_null(sw);
    uint64_t seed = 0;
    sim_sweep_scenario(sw, 0, &seed);
    assert_int_equal(seed, 42); /* street.ini's */
    assert_int_equal(sim_sweep_runs(sw), 1);
    sim_sweep_free(sw);
}

/* The shipped example (README, docs/simulator.md) loads: 2 x 3 cells x 3 seeds. */
static void shipped_example_loads(void **state)
{
    (void)state;
    char err[512];
    int rc;
    sim_sweep *sw = sim_sweep_load(MGX_SOURCE_DIR "/config/sweep-example.ini", &rc, err, sizeof err);
    if (!sw)
        fail_msg("%s", err);
    assert_int_equal(sim_sweep_cells(sw), 6);
    assert_int_equal(sim_sweep_runs(sw), 18);
    assert_int_equal(sim_sweep_scenario(sw, 17, NULL)->days, 7);
    sim_sweep_free(sw);
}

static void errors_name_where(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } CASES[] = {
        {"[sweep]\nscenario = " STREET "\n[vary]\nmarket.mechanism = pay-as-clear, dutch\n",
         "cell 1, [vary] market.mechanism = dutch: "},
        {"[sweep]\nscenario = " STREET "\n[set]\nmarket.bogus = 1\n",
         "[set] market.bogus: unknown key 'bogus' in [market]"},
        {"[sweep]\nscenario = " STREET "\nseeds = 0\n", "sweep-bad.ini:3: seeds = 0"},
        {"[sweep]\nscenario = " STREET "\n[vary]\nnodot = 1, 2\n", "sweep-bad.ini:4: 'nodot'"},
        {"[sweep]\nscenario = " STREET "\n[oops]\n", "unknown section [oops]"},
        {"[vary]\nmarket.mechanism = pay-as-bid\n", "[sweep] needs scenario"},
        {"[sweep]\nscenario = nope.ini\n", "nope.ini"},
        {"[sweep]\nscenario = " STREET "\nseeds = 1000\n[vary]\nperiod.days = 1,2,3,4,5,6,7,8,9,10,"
         "11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32\n"
         "group.solar.count = 1,2,3,4\n",
         "more than 100000 runs"},
        {"[sweep]\nscenario = " STREET "\n[vary]\nmarket.mechanism = pay-as-bid\n"
         "market.mechanism = pay-as-clear\n",
         "varies twice"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const char *p = sweep_file("sweep-bad.ini", CASES[i].text);
        char err[512] = "";
        int rc = 0;
        sim_sweep *sw = sim_sweep_load(p, &rc, err, sizeof err);
        if (sw || !strstr(err, CASES[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, err, CASES[i].want);
        assert_true(rc == SIM_E_PARSE || rc == SIM_E_IO);
    }
}

/* Three seeds of one cell saving 1, 2 and 6 units: mean 3, sample sd sqrt(7) = 2.6458, t(0.975,
 * 2) = 4.3027, so the 95 % half-width is 4.3027 x 2.6458 / sqrt(3) = 6.5725. A failed run is left
 * out of the cell's figures and shown as failed in runs.csv. */
static void summary_known_answer(void **state)
{
    (void)state;
    const char *p = sweep_file("sweep-sum.ini", "[sweep]\nscenario = " STREET "\nseeds = 4\n");
    char err[512];
    int rc;
    sim_sweep *sw = sim_sweep_load(p, &rc, err, sizeof err);
    assert_non_null(sw);
    sim_sweep_row rows[4];
    memset(rows, 0, sizeof rows);
    const int64_t saving[4] = {1000000, 2000000, 6000000, 0};
    for (int i = 0; i < 4; i++) {
        rows[i].run = (uint32_t)i;
        rows[i].seed = 42 + (uint64_t)i;
        rows[i].saving_uc = saving[i];
    }
    rows[3].status = SIM_E_MARKET;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(sim_sweep_write_summary(sw, rows, f), SIM_OK);
    fclose(f);
    char *line2 = strchr(buf, '\n') + 1;
    /* cell, runs_ok, then mean/ci of baseline, cost, saving, ... */
    int cell = -1, ok = -1;
    double bm, bc, cm, cc, sm, sc;
    assert_int_equal(sscanf(line2, "%d,%d,%lf,%lf,%lf,%lf,%lf,%lf", &cell, &ok, &bm, &bc, &cm, &cc,
                            &sm, &sc),
                     8);
    assert_int_equal(ok, 3);
    assert_true(sm == 3000000.0);
    assert_true(sc > 6572400.0 && sc < 6572600.0);
    free(buf);
    f = open_memstream(&buf, &len);
    assert_int_equal(sim_sweep_write_runs(sw, rows, f), SIM_OK);
    fclose(f);
    assert_non_null(strstr(buf, "\n3,0,45,failed,"));
    assert_non_null(strstr(buf, "\n2,0,44,ok,0,0,6000000,"));
    free(buf);
    sim_sweep_free(sw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scenario_set_applies_or_leaves),
        cmocka_unit_test(cells_in_order),
        cmocka_unit_test(seed_defaults_to_scenario),
        cmocka_unit_test(shipped_example_loads),
        cmocka_unit_test(errors_name_where),
        cmocka_unit_test(summary_known_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
