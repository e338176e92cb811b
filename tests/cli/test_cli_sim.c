/*
 * End-to-end runs of `mgx sim` as a user runs it: the example street scenario writes every
 * output, the summary has the documented keys for both worlds and matches homes.csv, a second
 * run with the same seed gives byte-identical files, --runs reports spread, and bad input fails
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
    assert_int_equal(tst_sh("%s sim %s/config/street.ini --out %s --no-plots --quiet", mgx_bin,
                         MGX_SOURCE_DIR, a),
                     0);
    assert_int_equal(tst_sh("%s sim %s/config/street.ini --out %s --no-plots > %s/stdout.txt",
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
        cmocka_unit_test(bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
