/*
 * The simulator compares like with like: load, PV and the grid-only bill are drawn from streams
 * that depend only on (seed, home, model), so two runs that differ only in how the market works
 * (mechanism, network fee, the agents' strategy, the timing) have byte-identical baseline
 * columns in intervals.csv and homes.csv. Before the streams were split, the agents and the
 * load/PV models of a home shared one generator and a zic agent moved the home's load.
 */
#define _DEFAULT_SOURCE /* mkdtemp, strsep */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgx/sim.h"

static void add_group(sim_scenario *sc, const char *name, uint32_t count, double kwp,
                      double bat_kwh, sim_agent_kind agent)
{
    sim_group *g = &sc->groups[sc->n_groups++];
    sim_group_defaults(g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->count = count;
    g->pv_kwp = kwp;
    g->battery_kwh = bat_kwh;
    g->battery_kw = bat_kwh / 2;
    g->annual_kwh = 4000;
    g->agent = agent;
    g->markup = 0.2;
}

/* A small street; `agent` is the strategy of every group. */
static void street(sim_scenario *sc, sim_agent_kind agent)
{
    sim_scenario_defaults(sc);
    snprintf(sc->name, sizeof sc->name, "test-streams");
    sc->latitude_deg = 48.1;
    sc->longitude_deg = 11.6;
    sc->utc_offset_min = 60;
    sc->start_year = 2025;
    sc->start_month = 5;
    sc->start_day = 1;
    sc->days = 3;
    sc->interval_min = 15;
    sc->mechanism = MKT_PAY_AS_CLEAR;
    sc->network_fee_uc_per_kwh = 10000;
    sc->n_groups = 0;
    add_group(sc, "solar", 4, 6.0, 0, agent);
    add_group(sc, "battery", 3, 8.0, 10.0, agent);
    add_group(sc, "consumer", 5, 0, 0, agent);
}

#define MAX_TEXT (1 << 20)

/* Runs the scenario with seed 5, writes its outputs into a fresh folder and returns in `out`
 * the columns named in `cols` of `file`, one line per row, comma-separated. */
static void baseline_columns(const sim_scenario *sc, const char *file, const char *const *cols,
                             size_t n_cols, char *out)
{
    char dir[] = "/tmp/mgx-streams-XXXXXX", err[256], path[4200];
    assert_non_null(mkdtemp(dir));
    sim_result *r = NULL;
    assert_int_equal(sim_run(sc, NULL, 5, NULL, &r, err, sizeof err), SIM_OK);
    assert_int_equal(sim_write_outputs(sc, r, 5, dir, err, sizeof err), SIM_OK);
    sim_result_free(r);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char line[8192];
    int idx[16];
    size_t len = 0, rows = 0;
    out[0] = '\0';
    assert_non_null(fgets(line, sizeof line, f));
    for (size_t c = 0; c < n_cols; c++) { /* the header names the columns */
        idx[c] = -1;
        int i = 0;
        for (char *s = line, *tok; (tok = strsep(&s, ",\n")); i++)
            if (strcmp(tok, cols[c]) == 0)
                idx[c] = i;
        assert_true(idx[c] >= 0);
        fseek(f, 0, SEEK_SET);
        assert_non_null(fgets(line, sizeof line, f));
    }
    while (fgets(line, sizeof line, f)) {
        char *field[64];
        int nf = 0;
        for (char *s = line, *tok; nf < 64 && (tok = strsep(&s, ",\n"));)
            field[nf++] = tok;
        for (size_t c = 0; c < n_cols; c++) {
            assert_true(idx[c] < nf);
            len += (size_t)snprintf(out + len, MAX_TEXT - len, "%s%s", field[idx[c]],
                                    c + 1 < n_cols ? "," : "\n");
            assert_true(len < MAX_TEXT);
        }
        rows++;
    }
    assert_true(rows > 0);
    fclose(f);
    const char *names[] = {"summary.json", "intervals.csv", "homes.csv", "profile.csv",
                           "plots.gp"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static const char *const HOME_COLS[] = {"home", "load_wh", "pv_wh", "baseline_grid_import_wh",
                                        "baseline_grid_export_wh", "baseline_cost_uc",
                                        "battery_charged_wh", "battery_discharged_wh"};
static const char *const INTERVAL_COLS[] = {"start", "load_wh", "pv_wh", "battery_wh",
                                            "baseline_grid_import_wh",
                                            "baseline_grid_export_wh"};

/* The baseline columns of both files for one scenario. */
static void both(const sim_scenario *sc, char *homes, char *intervals)
{
    baseline_columns(sc, "homes.csv", HOME_COLS, sizeof HOME_COLS / sizeof HOME_COLS[0], homes);
    baseline_columns(sc, "intervals.csv", INTERVAL_COLS,
                     sizeof INTERVAL_COLS / sizeof INTERVAL_COLS[0], intervals);
}

static char *ref_h, *ref_i, *got_h, *got_i;

static void assert_same_baseline(const sim_scenario *sc, const char *what)
{
    both(sc, got_h, got_i);
    if (strcmp(ref_h, got_h) != 0 || strcmp(ref_i, got_i) != 0)
        fail_msg("changing only the %s changed the baseline columns", what);
}

static void baseline_depends_only_on_physics(void **state)
{
    (void)state;
    sim_scenario sc;
    street(&sc, SIM_AGENT_TRUTHFUL);
    both(&sc, ref_h, ref_i);

    sim_scenario v = sc;
    v.mechanism = MKT_PAY_AS_BID;
    assert_same_baseline(&v, "mechanism");

    v = sc;
    v.network_fee_uc_per_kwh = 40000;
    assert_same_baseline(&v, "network fee");

    static const sim_agent_kind kinds[] = {SIM_AGENT_ZIC, SIM_AGENT_ZIP, SIM_AGENT_MARKUP};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        street(&v, kinds[i]);
        assert_same_baseline(&v, "strategy");
    }

    v = sc;
    v.forecast_lag = 2;
    assert_same_baseline(&v, "forecast lag");

    v = sc;
    v.timing = MKT_EX_POST;
    assert_same_baseline(&v, "timing");
    street(&v, SIM_AGENT_ZIC);
    v.timing = MKT_EX_POST;
    v.mechanism = MKT_PAY_AS_BID;
    assert_same_baseline(&v, "timing, strategy and mechanism");

    /* and the test can tell: other weather moves them */
    v = sc;
    v.clear_sky_index_mean = 0.5;
    both(&v, got_h, got_i);
    assert_true(strcmp(ref_h, got_h) != 0);
}

int main(void)
{
    ref_h = malloc(MAX_TEXT);
    ref_i = malloc(MAX_TEXT);
    got_h = malloc(MAX_TEXT);
    got_i = malloc(MAX_TEXT);
    if (!ref_h || !ref_i || !got_h || !got_i)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(baseline_depends_only_on_physics),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(ref_h);
    free(ref_i);
    free(got_h);
    free(got_i);
    return rc;
}
