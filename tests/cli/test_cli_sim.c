/*
 * End-to-end runs of `mgx sim` as a user runs it: the example street scenario writes every
 * output, the summary has the documented keys for both worlds and matches homes.csv, a second
 * run with the same seed (on 1 and on 3 threads) gives byte-identical files, --runs reports
 * spread, and bad input fails
 * with a message naming the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "shell.h"

static const char *mgx_bin;

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return tst_file_read(path, len);
}
/* The summary.json of a run's output folder, parsed; the caller frees it (json_decref). */
static json_t *load_summary(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    assert_non_null(root);
    return root;
}

static const char *const KEYS[] = {"homes",          "intervals",      "load_wh",
                                   "pv_wh",          "grid_import_wh", "grid_export_wh",
                                   "local_traded_wh", "self_sufficiency", "self_consumption",
                                   "cost_uc"};

static void street_end_to_end(void **state)
{
    (void)state;
    const char *a = MGX_BINARY_DIR "/test-sim-a", *b = MGX_BINARY_DIR "/test-sim-b";
    assert_int_equal(tst_sh("rm -rf %s %s", a, b), 0);
    assert_int_equal(tst_sh("%s sim %s/config/street.ini --out %s --no-plots --quiet --threads 1",
                            mgx_bin, MGX_SOURCE_DIR, a),
                     0);
    assert_int_equal(
        tst_sh("%s sim %s/config/street.ini --out %s --no-plots --threads 3 > %s/stdout.txt",
               mgx_bin, MGX_SOURCE_DIR, b, MGX_BINARY_DIR),
        0);
    const char *files[] = {"summary.json", "intervals.csv", "homes.csv", "profile.csv",
                           "plots.gp"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t la = 0, lb = 0;
        char *x = slurp(a, files[i], &la), *y = slurp(b, files[i], &lb);
        assert_non_null(x);
        assert_non_null(y);
        assert_int_equal(la, lb);
        assert_memory_equal(x, y, la);
        free(x);
        free(y);
    }
    json_t *root = load_summary(a);
    json_t *base = json_object_get(root, "baseline");
    assert_non_null(base);
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
        assert_non_null(json_object_get(root, KEYS[i]));
        assert_non_null(json_object_get(base, KEYS[i]));
    }
    /* same physics, so the same load and PV in both worlds */
    assert_int_equal(json_integer_value(json_object_get(root, "load_wh")),
                     json_integer_value(json_object_get(base, "load_wh")));
    assert_true(json_integer_value(json_object_get(root, "pv_wh")) > 0);
    /* homes.csv sums to the summary */
    size_t len;
    char *csv = slurp(a, "homes.csv", &len);
    assert_non_null(csv);
    long long load = 0, cost = 0, v[16];
    int rows = 0;
    for (char *line = strchr(csv, '\n') + 1; line && *line; line = strchr(line, '\n') + 1) {
        char *p = line;
        for (int col = 0; col < 16; col++) {
            p = strchr(p, ',');
            if (col < 2 && p) {
                p++;
                continue;
            }
            if (!p)
                break;
            v[col] = strtoll(p + 1, &p, 10);
        }
        load += v[2];
        cost += v[12];
        rows++;
        if (!strchr(line, '\n'))
            break;
    }
    assert_int_equal(rows, json_integer_value(json_object_get(root, "homes")));
    assert_int_equal(load, json_integer_value(json_object_get(root, "load_wh")));
    assert_int_equal(cost, json_integer_value(json_object_get(root, "cost_uc")));
    free(csv);
    json_decref(root);
    /* the text summary went to stdout */
    char *out = slurp(MGX_BINARY_DIR, "stdout.txt", &len);
    assert_non_null(out);
    assert_non_null(strstr(out, "self-sufficiency"));
    free(out);
}

static void several_runs(void **state)
{
    (void)state;
    const char *d = MGX_BINARY_DIR "/test-sim-runs";
    assert_int_equal(tst_sh("rm -rf %s", d), 0);
    assert_int_equal(tst_sh("%s sim %s/config/street.ini --out %s --runs 3 --seed 5 --no-plots "
                         "--quiet",
                         mgx_bin, MGX_SOURCE_DIR, d),
                     0);
    json_t *root = load_summary(d);
    json_t *runs = json_object_get(root, "runs");
    assert_non_null(runs);
    assert_int_equal(json_integer_value(json_object_get(runs, "n")), 3);
    json_t *ss = json_object_get(json_object_get(runs, "kpis"), "self_sufficiency");
    assert_non_null(ss);
    double mean = json_real_value(json_object_get(ss, "mean"));
    double lo = json_real_value(json_object_get(ss, "min"));
    double hi = json_real_value(json_object_get(ss, "max"));
    assert_true(lo <= mean && mean <= hi);
    assert_true(json_real_value(json_object_get(ss, "sd")) > 0); /* seeds differ */
    assert_int_equal(json_integer_value(json_object_get(root, "seed")), 5);
    json_decref(root);
}

/* The last comma-separated field of every data line of DIR/NAME, in order; returns the count. */
static size_t last_fields(const char *dir, const char *name, long long *out, size_t cap)
{
    size_t len, n = 0;
    char *csv = slurp(dir, name, &len);
    assert_non_null(csv);
    char *line = strchr(csv, '\n');
    while (line && line[1]) {
        line++;
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        char *comma = strrchr(line, ',');
        assert_non_null(comma);
        assert_true(n < cap);
        out[n++] = strtoll(comma + 1, NULL, 10);
        line = end;
    }
    free(csv);
    return n;
}

/* Fairness KPIs agree with homes.csv, the per-home per-interval CSV adds up to homes.csv, the
 * savings are reported against both the net and the gross grid-only bill, and --runs gives
 * the fairness KPIs a mean and spread. */
static void fairness_and_home_intervals(void **state)
{
    (void)state;
    const char *d = MGX_BINARY_DIR "/test-sim-fair";
    assert_int_equal(tst_sh("rm -rf %s", d), 0);
    assert_int_equal(tst_sh("%s sim %s/config/street.ini --out %s --runs 2 --home-intervals "
                            "--no-plots > %s/fair.txt",
                            mgx_bin, MGX_SOURCE_DIR, d, MGX_BINARY_DIR),
                     0);
    static long long saving[4096];
    size_t n = last_fields(d, "homes.csv", saving, 4096);
    json_t *root = load_summary(d);
    assert_int_equal(n, json_integer_value(json_object_get(root, "homes")));
    long long worse = 0, worst = saving[0];
    for (size_t i = 0; i < n; i++) {
        worse += saving[i] < 0;
        worst = saving[i] < worst ? saving[i] : worst;
    }
    assert_int_equal(json_integer_value(json_object_get(root, "homes_worse_off")), worse);
    assert_int_equal(json_integer_value(json_object_get(root, "worst_saving_uc")), worst);
    json_t *sav = json_object_get(root, "savings_uc");
    long long p10 = json_integer_value(json_object_get(sav, "p10"));
    long long med = json_integer_value(json_object_get(sav, "median"));
    long long p90 = json_integer_value(json_object_get(sav, "p90"));
    assert_true(worst <= p10 && p10 <= med && med <= p90 &&
                p90 <= json_integer_value(json_object_get(sav, "max")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(root, "fairness_index"),
                                                          "name")),
                        "gini");
    /* the gross bill is larger than the net one, so the same saving is a smaller share of it */
    json_t *base = json_object_get(root, "baseline");
    long long net_bill = json_integer_value(json_object_get(base, "cost_uc"));
    long long gross_bill = json_integer_value(json_object_get(base, "gross_cost_uc"));
    assert_true(gross_bill >= net_bill);
    if (net_bill > 0) {
        double a = json_real_value(json_object_get(root, "saving_share_of_net_bill"));
        double b = json_real_value(json_object_get(root, "saving_share_of_gross_bill"));
        assert_true(a == 0 || (b / a > 0 && b / a <= 1.0));
    }
    assert_non_null(
        json_object_get(json_object_get(json_object_get(root, "runs"), "kpis"), "homes_worse_off"));
    json_decref(root);

    /* home_intervals.csv: one row per home and interval, and per home it sums to homes.csv */
    size_t len;
    char *csv = slurp(d, "home_intervals.csv", &len);
    assert_non_null(csv);
    static long long sum[4096];
    memset(sum, 0, sizeof sum);
    size_t rows = 0, home = 0;
    /* rows come interval by interval, homes in order within one: home index = row % n */
    for (char *line = strchr(csv, '\n'); line && line[1]; rows++) {
        line++;
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        home = rows % n;
        sum[home] += strtoll(strrchr(line, ',') + 1, NULL, 10);
        line = end;
    }
    free(csv);
    assert_int_equal(rows % n, 0);
    assert_true(rows > n);
    for (size_t h = 0; h < n; h++)
        assert_int_equal(sum[h], saving[h]);
    char *out = slurp(MGX_BINARY_DIR, "fair.txt", &len);
    assert_non_null(out);
    assert_non_null(strstr(out, "homes worse off than grid only"));
    assert_non_null(strstr(out, "homes_worse_off"));
    free(out);
}

/* --compare-timing: both timings of one scenario into DIR/ex_ante and DIR/ex_post, the same
 * baseline in both, nobody worse off in ex_post, and the comparison on stdout. */
static void compare_timing(void **state)
{
    (void)state;
    const char *d = MGX_BINARY_DIR "/test-sim-cmp";
    assert_int_equal(tst_sh("rm -rf %s", d), 0);
    assert_int_equal(tst_sh("%s sim %s/config/street.ini --out %s --compare-timing --no-plots "
                            "> %s/cmp.txt",
                            mgx_bin, MGX_SOURCE_DIR, d, MGX_BINARY_DIR),
                     0);
    char ante[512], post[512];
    snprintf(ante, sizeof ante, "%s/ex_ante", d);
    snprintf(post, sizeof post, "%s/ex_post", d);
    json_t *a = load_summary(ante), *b = load_summary(post);
    assert_string_equal(json_string_value(json_object_get(a, "timing")), "ex_ante");
    assert_string_equal(json_string_value(json_object_get(b, "timing")), "ex_post");
    json_t *ba = json_object_get(a, "baseline"), *bb = json_object_get(b, "baseline");
    assert_int_equal(json_integer_value(json_object_get(ba, "cost_uc")),
                     json_integer_value(json_object_get(bb, "cost_uc")));
    assert_int_equal(json_integer_value(json_object_get(b, "homes_worse_off")), 0);
    assert_true(json_integer_value(json_object_get(b, "worst_saving_uc")) >= 0);
    json_decref(a);
    json_decref(b);
    size_t len;
    char *out = slurp(MGX_BINARY_DIR, "cmp.txt", &len);
    assert_non_null(out);
    assert_non_null(strstr(out, "ex_ante against ex_post"));
    assert_non_null(strstr(out, "homes worse off than grid only"));
    free(out);
    /* one timing only with --serve-modbus */
    assert_int_equal(tst_sh("%s sim %s/config/street.ini --out %s --compare-timing "
                            "--serve-modbus 127.0.0.1:0 2>/dev/null",
                            mgx_bin, MGX_SOURCE_DIR, d),
                     2);
}

/* --compare-battery: every battery on self-consumption and on the scheduler into
 * DIR/self_consumption and DIR/schedule, and the comparison on stdout. street.ini has one flat
 * retail tariff, so the scheduler has nothing to act on: the same bills to the uc. */
static void compare_battery(void **state)
{
    (void)state;
    const char *d = MGX_BINARY_DIR "/test-sim-bat";
    assert_int_equal(tst_sh("rm -rf %s", d), 0);
    assert_int_equal(tst_sh("%s sim %s/config/street.ini --out %s --compare-battery --no-plots "
                            "> %s/bat.txt",
                            mgx_bin, MGX_SOURCE_DIR, d, MGX_BINARY_DIR),
                     0);
    char sc[512], pl[512];
    snprintf(sc, sizeof sc, "%s/self_consumption", d);
    snprintf(pl, sizeof pl, "%s/schedule", d);
    json_t *a = load_summary(sc), *b = load_summary(pl);
    assert_int_equal(json_integer_value(json_object_get(a, "cost_uc")),
                     json_integer_value(json_object_get(b, "cost_uc")));
    json_decref(a);
    json_decref(b);
    size_t len;
    char *out = slurp(MGX_BINARY_DIR, "bat.txt", &len);
    assert_non_null(out);
    assert_non_null(strstr(out, "batteries on self-consumption against the scheduler"));
    assert_non_null(strstr(out, "grid only:      0 of 10"));
    /* the worst battery home on the grid bill, the guard's promise */
    assert_non_null(strstr(out, "grid only:      0 of 10 (worst: home 0 of group solar_battery, "
                                "+0.00)\n      of them with a battery: 0 of 4 (worst: home 0 "
                                "of group solar_battery, +0.000)"));
    free(out);
    assert_int_equal(tst_sh("%s sim %s/config/street.ini --out %s --compare-battery "
                            "--compare-timing 2>/dev/null",
                            mgx_bin, MGX_SOURCE_DIR, d),
                     2);
}

static void bad_input(void **state)
{
    (void)state;
    const char *bad = MGX_BINARY_DIR "/bad-scenario.ini";
    FILE *f = fopen(bad, "w");
    assert_non_null(f);
    fputs("[period]\ndays = 2\nbogus_key = 1\n", f);
    fclose(f);
    assert_int_equal(tst_sh("%s sim %s --out %s/bad-out --quiet 2> %s/bad.txt", mgx_bin, bad,
                         MGX_BINARY_DIR, MGX_BINARY_DIR),
                     1);
    size_t len;
    char *msg = slurp(MGX_BINARY_DIR, "bad.txt", &len);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "bad-scenario.ini:3"));
    free(msg);
    assert_int_equal(tst_sh("%s sim %s/nope.ini --out %s/bad-out 2>/dev/null", mgx_bin,
                         MGX_BINARY_DIR, MGX_BINARY_DIR),
                     1);
    assert_int_equal(tst_sh("%s sim 2>/dev/null", mgx_bin), 2);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cli_sim PATH_TO_MGX\n");
        return 2;
    }
    mgx_bin = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(street_end_to_end),
        cmocka_unit_test(several_runs),
        cmocka_unit_test(fairness_and_home_intervals),
        cmocka_unit_test(compare_timing),
        cmocka_unit_test(compare_battery),
        cmocka_unit_test(bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
