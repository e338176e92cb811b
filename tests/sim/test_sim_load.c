/*
 * Tests of the household load model: the expected year sums to the annual consumption for any
 * interval length, sampled homes keep that mean, the daily shape and the season have the right
 * sign in both hemispheres, draws are reproducible for a seed, and appliance peaks happen.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gsl/gsl_rng.h>

#include "load.h"
#include "timegrid.h"

static void make_scenario(sim_scenario *sc, double lat, unsigned interval_min, uint32_t days)
{
    memset(sc, 0, sizeof *sc);
    strcpy(sc->name, "loadtest");
    sc->latitude_deg = lat;
    sc->longitude_deg = lat < 0 ? 151.0 : 10.0;
    sc->utc_offset_min = lat < 0 ? 600 : 60;
    sc->start_year = 2023; /* 2023-01-01 was a Sunday */
    sc->start_month = 1;
    sc->start_day = 1;
    sc->days = days;
    sc->interval_min = interval_min;
    sc->n_groups = 2;
    strcpy(sc->groups[0].name, "small");
    sc->groups[0].count = 1;
    sc->groups[0].annual_kwh = 2000;
    strcpy(sc->groups[1].name, "big");
    sc->groups[1].count = 1;
    sc->groups[1].annual_kwh = 4500;
}

/* 365 days of expectation sum to annual_kwh (0.1 %; the normalisation makes it exact up to
 * floating-point rounding) whatever the interval length, in both hemispheres, and also for a
 * start in February of a leap year (the 365 days from the start include 29 February). */
static void test_expected_annual_sum(void **state)
{
    (void)state;
    const unsigned steps[] = {1, 5, 15, 30, 60, 1440};
    const double lats[] = {52.0, -34.0};
    for (size_t li = 0; li < 2; li++)
        for (size_t si = 0; si < sizeof steps / sizeof steps[0]; si++) {
            sim_scenario sc;
            make_scenario(&sc, lats[li], steps[si], 365);
            if (si == 2) {
                sc.start_year = 2024; /* a leap year, odd start */
                sc.start_month = 2;
                sc.start_day = 17;
            }
            sim_load *l = sim_load_new(&sc);
            assert_non_null(l);
            for (size_t g = 0; g < 2; g++) {
                double sum = 0;
                for (size_t k = 0; k < sim_intervals(&sc); k++) {
                    double e = sim_load_expected_wh(l, g, k);
                    assert_true(e > 0);
                    sum += e;
                }
                double want = sc.groups[g].annual_kwh * 1000;
                assert_true(fabs(sum - want) < 1e-3 * want);
            }
            sim_load_free(l);
        }
}

/* Sampled totals of many homes: the group mean of the annual sums stays within 3 % of
 * annual_kwh. The home level is lognormal with log-sd 0.3 (sd of the factor ~0.31), so the
 * mean of 2000 homes has a standard error of ~0.7 %; the interval noise averages out over a
 * year. Every sample is >= 0. */
static void test_sampled_annual_total(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc, 52.0, 60, 365);
    sim_load *l = sim_load_new(&sc);
    assert_non_null(l);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 2024);
    const size_t homes = 2000;
    double grand = 0;
    for (size_t h = 0; h < homes; h++) {
        sim_load_state st = {0};
        int64_t total = 0;
        for (size_t k = 0; k < sim_intervals(&sc); k++) {
            int64_t wh = sim_load_home_wh(l, 1, k, &st, r);
            assert_true(wh >= 0);
            total += wh;
        }
        grand += (double)total;
    }
    double mean_kwh = grand / (double)homes / 1000.0;
    print_message("sampled mean annual load %.1f kWh (expected 4500)\n", mean_kwh);
    assert_true(fabs(mean_kwh - 4500.0) < 0.03 * 4500.0);
    gsl_rng_free(r);
    sim_load_free(l);
}

/* Expected Wh at local time hh:mm on day d (0-based) of a 15-minute scenario. */
static double expected_at(const sim_load *l, size_t day, int hh, int mm)
{
    return sim_load_expected_wh(l, 0, day * 96 + (size_t)(hh * 4 + mm / 15));
}

/* The evening peak (19:00-20:00) is well above the night trough (03:00-04:00): our H0-like
 * shape puts them near 1.5 and 0.48 of the daily mean, a ratio of ~3; we require > 2. */
static void test_daily_shape(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc, 52.0, 15, 365);
    sim_load *l = sim_load_new(&sc);
    assert_non_null(l);
    for (size_t day = 0; day < 365; day += 7) {
        double evening = 0, night = 0;
        for (int q = 0; q < 4; q++) {
            evening += expected_at(l, day, 19, q * 15);
            night += expected_at(l, day, 3, q * 15);
        }
        assert_true(evening > 2.0 * night);
    }
    /* weekday vs weekend: the weekend's late morning is higher (2023-01-07 is a Saturday,
     * 2023-01-04 a Wednesday; the season barely moves in three days) */
    assert_true(expected_at(l, 6, 10, 30) > 1.1 * expected_at(l, 3, 10, 30));
    assert_true(expected_at(l, 6, 6, 30) < expected_at(l, 3, 6, 30));
    sim_load_free(l);
}

/* Expected energy of group 0 over local days of year first..last. */
static double days_sum(const sim_load *l, const sim_scenario *sc, int first, int last)
{
    double s = 0;
    for (size_t k = 0; k < sim_intervals(sc); k++) {
        int doy;
        sim_interval_local(sc, k, &doy, NULL, NULL);
        if (doy >= first && doy <= last)
            s += sim_load_expected_wh(l, 0, k);
    }
    return s;
}

/* Winter above summer in each hemisphere: a cosine of amplitude 0.18 peaking ~10 January
 * (north) gives January ~1.17 and July ~0.83 of the mean; the south is the mirror image. */
static void test_season(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc, 52.0, 60, 365);
    sim_load *l = sim_load_new(&sc);
    double jan = days_sum(l, &sc, 1, 31), jul = days_sum(l, &sc, 182, 212);
    assert_true(jan > 1.3 * jul && jan < 1.5 * jul); /* 1.17/0.83 = 1.41 */
    sim_load_free(l);
    make_scenario(&sc, -34.0, 60, 365);
    l = sim_load_new(&sc);
    jan = days_sum(l, &sc, 1, 31);
    jul = days_sum(l, &sc, 182, 212);
    assert_true(jul > 1.3 * jan && jul < 1.5 * jan);
    sim_load_free(l);
}

/* Same seed, same loads; another seed, other loads. */
static void test_determinism(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc, 52.0, 15, 30);
    sim_load *l = sim_load_new(&sc);
    gsl_rng *a = gsl_rng_alloc(gsl_rng_mt19937), *b = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(a, 5);
    gsl_rng_set(b, 5);
    sim_load_state sa = {0}, sb = {0};
    for (size_t k = 0; k < sim_intervals(&sc); k++)
        assert_int_equal(sim_load_home_wh(l, 0, k, &sa, a), sim_load_home_wh(l, 0, k, &sb, b));
    gsl_rng_set(b, 6);
    sim_load_state sc2 = {0};
    size_t differ = 0;
    for (size_t k = 0; k < sim_intervals(&sc); k++)
        differ += sim_load_home_wh(l, 0, k, &sa, a) != sim_load_home_wh(l, 0, k, &sc2, b);
    assert_true(differ > sim_intervals(&sc) / 2);
    gsl_rng_free(a);
    gsl_rng_free(b);
    sim_load_free(l);
}

/* Appliance peaks: 1-3 kW for one interval. For a 4500 kWh home at 15 minutes the expected
 * load is ~128 Wh per interval on average, so intervals above 1 kW * 0.25 h = 250 Wh beyond
 * what the smooth part gives come from peaks; they carry 10 % of the energy, i.e. about
 * 0.1 * 128 / 500 = 2.6 % of intervals. We count intervals >= 250 Wh over a year and require
 * between 1 % and 15 % (the smooth part's lognormal tail adds some). */
static void test_peaks(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc, 52.0, 15, 365);
    sim_load *l = sim_load_new(&sc);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 9);
    sim_load_state st = {0};
    size_t big = 0, n = sim_intervals(&sc);
    int64_t max_wh = 0;
    for (size_t k = 0; k < n; k++) {
        int64_t wh = sim_load_home_wh(l, 1, k, &st, r);
        big += (double)wh >= 250.0 * st.scale;
        max_wh = wh > max_wh ? wh : max_wh;
    }
    print_message("intervals with a peak-sized load: %.2f %%, max %lld Wh\n",
                  100.0 * (double)big / (double)n, (long long)max_wh);
    assert_true(big > n / 100 && big < n * 15 / 100);
    gsl_rng_free(r);
    sim_load_free(l);
}

static void test_edges(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc, 52.0, 15, 2);
    sc.groups[1].annual_kwh = 0;
    sim_load *l = sim_load_new(&sc);
    assert_non_null(l);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    sim_load_state st = {0};
    assert_int_equal(sim_load_home_wh(l, 1, 0, &st, r), 0);
    assert_int_equal(sim_load_home_wh(l, 2, 0, &st, r), 0);
    assert_true(sim_load_expected_wh(l, 0, sim_intervals(&sc)) == 0);
    sc.interval_min = 7;
    assert_null(sim_load_new(&sc));
    gsl_rng_free(r);
    sim_load_free(l);
    sim_load_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expected_annual_sum), cmocka_unit_test(test_sampled_annual_total),
        cmocka_unit_test(test_daily_shape),         cmocka_unit_test(test_season),
        cmocka_unit_test(test_determinism),         cmocka_unit_test(test_peaks),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
