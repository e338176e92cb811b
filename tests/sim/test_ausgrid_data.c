/*
 * End to end on real data: the Ausgrid customer-12 series (../shared/data, CC BY 4.0) is
 * converted by config/convert-ausgrid.awk into 3 homes, loaded for config/ausgrid-test.ini, and
 * the loaded energies are checked against sums this test computes itself from the raw CSV
 * (GC, GG are average kW per half hour, so Wh = kW x 500). Skips when the data are absent.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mgx/simdata.h"

#include "ausgrid_raw.h"

#define RAW     MGX_SHARED_DATA_DIR "/ausgrid-customer12-2011-2012.csv"
#define OUT_DIR MGX_BINARY_DIR "/sim_input_tmp"
#define OUT     OUT_DIR "/ausgrid-3homes.csv"
#define ROWS    17568 /* 366 days x 48 half hours, 2011-07-01 .. 2012-06-30 */
#define PER_DAY 48

static double gc[ROWS], gg[ROWS];
static sim_scenario sc;
static sim_data *data;
static char err[512];

static int setup(void **state)
{
    (void)state;
    char cmd[1024];
    if (access(RAW, R_OK) != 0)
        return 0; /* the tests skip */
    assert_int_equal(ausgrid_read_raw(RAW, gc, gg, ROWS), ROWS);
    mkdir(OUT_DIR, 0755);
    snprintf(cmd, sizeof cmd, "'%s' -v homes=3 -f '%s/config/convert-ausgrid.awk' '%s' > '%s'",
             MGX_AWK, MGX_SOURCE_DIR, RAW, OUT);
    if (system(cmd) != 0)
        fail_msg("converter failed: %s", cmd);
    if (sim_scenario_load(MGX_SOURCE_DIR "/config/ausgrid-test.ini", &sc, err, sizeof err))
        fail_msg("%s", err);
    if (sim_data_load(OUT, &sc, &data, err, sizeof err))
        fail_msg("%s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sim_data_free(data);
    data = NULL;
    return 0;
}

static int64_t wh(double kw)
{
    return (int64_t)floor(kw * 500.0 + 0.5);
}

static void skip_without_data(void)
{
    if (!data)
        skip();
}

static void test_homes_and_period(void **state)
{
    (void)state;
    skip_without_data();
    assert_int_equal(sim_data_homes(data), 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(sim_data_home_index(data, i), i);
    assert_int_equal(sc.days * 1440 / sc.interval_min, ROWS);
}

/* First day of home 1 (the measured home itself) against the first 48 raw rows. */
static void test_first_day_totals(void **state)
{
    (void)state;
    skip_without_data();
    int64_t load = 0, pv = 0, load_rows = 0, pv_rows = 0;
    double gc_sum = 0, gg_sum = 0;
    for (size_t k = 0; k < PER_DAY; k++) {
        load += sim_data_load_wh(data, 0, k);
        pv += sim_data_pv_wh(data, 0, k);
        load_rows += wh(gc[k]);
        pv_rows += wh(gg[k]);
        gc_sum += gc[k];
        gg_sum += gg[k];
    }
    assert_int_equal(load, load_rows);
    assert_int_equal(pv, pv_rows);
    /* rounding per row moves each value by at most 0.5 Wh: 48 rows, at most 24 Wh */
    assert_true(fabs((double)load - gc_sum * 500.0) <= 24.0);
    assert_true(fabs((double)pv - gg_sum * 500.0) <= 24.0);
    /* a winter day in Sydney: the home used energy and the 1 kWp system made some */
    assert_true(load > 1000 && pv > 0);
}

/* Home k is the series shifted by k-1 days, wrapping round the end of the year. */
static void test_day_offsets(void **state)
{
    (void)state;
    skip_without_data();
    for (size_t k = 0; k < ROWS; k += 97) {
        for (size_t h = 0; h < 3; h++) {
            size_t j = (k + h * PER_DAY) % ROWS;
            assert_int_equal(sim_data_load_wh(data, h, k), wh(gc[j]));
            assert_int_equal(sim_data_pv_wh(data, h, k), wh(gg[j]));
        }
    }
    /* the last interval of home 3 is raw row (17567 + 96) mod 17568 = 95 */
    assert_int_equal(sim_data_load_wh(data, 2, ROWS - 1), wh(gc[95]));
}

/* Over the whole year every home has the measured home's totals (a rotation keeps sums). */
static void test_year_totals(void **state)
{
    (void)state;
    skip_without_data();
    int64_t raw_load = 0, raw_pv = 0;
    double gc_sum = 0;
    for (size_t k = 0; k < ROWS; k++) {
        raw_load += wh(gc[k]);
        raw_pv += wh(gg[k]);
        gc_sum += gc[k];
    }
    for (size_t h = 0; h < 3; h++) {
        int64_t load = 0, pv = 0;
        for (size_t k = 0; k < ROWS; k++) {
            load += sim_data_load_wh(data, h, k);
            pv += sim_data_pv_wh(data, h, k);
        }
        assert_int_equal(load, raw_load);
        assert_int_equal(pv, raw_pv);
    }
    assert_true(fabs((double)raw_load - gc_sum * 500.0) <= ROWS * 0.5);
    /* the data's README: about 5,900 kWh consumed and 1,300 kWh generated in the year */
    assert_true(raw_load > 5800000 && raw_load < 6100000);
    assert_true(raw_pv > 1200000 && raw_pv < 1400000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_homes_and_period),
        cmocka_unit_test(test_first_day_totals),
        cmocka_unit_test(test_day_offsets),
        cmocka_unit_test(test_year_totals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
