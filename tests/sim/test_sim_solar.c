/*
 * Known-answer tests of the solar model: sun position against the NREL SPA paper's example and a
 * published sunrise table, noon elevations from the declination, Earth-Sun distance at the
 * apsides, clear-sky magnitude, the Erbs fraction and transposition identities.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "solar.h"
#include "timegrid.h"

static double utc(int y, int mo, int d, int h, int mi, int s)
{
    return (double)(mkt_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s);
}

/* Reda & Andreas (2004), NREL/TP-560-34302, table A4.1: 2003-10-17 12:30:30 at UTC-7,
 * 39.742476 N, 105.1786 W -> topocentric zenith 50.11162 deg, azimuth 194.34024 deg. SPA
 * corrects refraction for 820 mbar/11 C, ours for a standard atmosphere: < 0.01 deg apart. */
static void test_spa_example(void **state)
{
    (void)state;
    sim_sun s;
    sim_sun_position(utc(2003, 10, 17, 19, 30, 30), 39.742476, -105.1786, &s);
    assert_true(fabs(s.zenith_deg - 50.11162) < 0.02);
    assert_true(fabs(s.azimuth_deg - 194.34024) < 0.02);
}

/* Highest elevation (90 - zenith) over a day, scanning every 20 s. */
static double max_elevation(int y, int mo, int d, double lat, double lon)
{
    double best = -90, t0 = utc(y, mo, d, 0, 0, 0);
    for (int i = 0; i < 86400 / 20; i++) {
        sim_sun s;
        sim_sun_position(t0 + 20.0 * i, lat, lon, &s);
        if (90.0 - s.zenith_deg > best)
            best = 90.0 - s.zenith_deg;
    }
    return best;
}

/* At a solstice the declination is +-obliquity = +-23.436 deg (2023), so the noon elevation is
 * 90 - |lat - decl|: 52 N on 2023-06-21 -> 90 - (52 - 23.436) = 61.436; 34 S on 2023-12-22 ->
 * 90 - |-34 + 23.436| = 79.436. Refraction lifts the sun by ~0.01 deg at these elevations
 * (58.1"/tan e). The solstice instants (21 Jun 14:57 UTC, 22 Dec 03:27 UTC) are within hours
 * of the noons, where the declination changes by < 0.001 deg. */
static void test_noon_elevation_solstice(void **state)
{
    (void)state;
    assert_true(fabs(max_elevation(2023, 6, 21, 52.0, 10.0) - 61.436) < 0.03);
    assert_true(fabs(max_elevation(2023, 12, 21, -34.0, 151.0) - 79.436) < 0.03);
    /* the sun culminates in the south in the north and in the north in the south */
    sim_sun s;
    sim_sun_position(utc(2023, 6, 21, 11, 20, 0), 52.0, 10.0, &s);
    assert_true(fabs(s.azimuth_deg - 180.0) < 3.0);
    sim_sun_position(utc(2023, 12, 22, 2, 0, 0), -34.0, 151.0, &s);
    assert_true(s.azimuth_deg < 10.0 || s.azimuth_deg > 350.0);
}

/* At an equinox the declination is ~0, so noon elevation = 90 - |lat|. The 2023 March equinox
 * was 20 Mar 21:24 UTC; at Greenwich noon that day the declination is about -0.15 deg
 * (it moves ~0.39 deg/day), so at 45 N: 90 - 45 - 0.15 = 44.85, plus ~0.02 refraction. */
static void test_noon_elevation_equinox(void **state)
{
    (void)state;
    assert_true(fabs(max_elevation(2023, 3, 20, 45.0, 0.0) - 44.87) < 0.05);
}

/* Instant in [t0, t0 + 12 h) at which the sun rises or sets by the almanac convention: the
 * geometric zenith is 90.833 deg (90 + 34' refraction + 16' semi-diameter). Our zenith
 * includes NOAA's refraction, which below -0.575 deg is 20.772"/tan|e|: at e = -0.833 that is
 * 1428.6" = 0.397 deg, so the same instant has an apparent zenith of 90.833 - 0.397 = 90.436. */
static double crossing(double t0, double lat, double lon, int rising)
{
    double a = t0, b = t0 + 12 * 3600.0;
    for (int i = 0; i < 60; i++) {
        double m = 0.5 * (a + b);
        sim_sun s;
        sim_sun_position(m, lat, lon, &s);
        int up = s.zenith_deg < 90.436;
        if (up == rising)
            b = m;
        else
            a = m;
    }
    return 0.5 * (a + b);
}

/* London (51.51 N, 0.13 W), table "Sunrise and sunset on the 1st of each month" at
 * https://whattime.city/london/sun: 1 January 08:07 / 16:01 GMT; 1 July 04:47 / 21:22 BST
 * (= 03:47 / 20:22 UTC). Year-to-year drift is under a minute; we allow 2 minutes. */
static void test_sunrise_sunset_london(void **state)
{
    (void)state;
    const double lat = 51.51, lon = -0.13;
    double jan = utc(2024, 1, 1, 0, 0, 0), jul = utc(2024, 7, 1, 0, 0, 0);
    assert_true(fabs(crossing(jan, lat, lon, 1) - (jan + 8 * 3600 + 7 * 60)) < 120);
    assert_true(fabs(crossing(jan + 12 * 3600, lat, lon, 0) - (jan + 16 * 3600 + 1 * 60)) < 120);
    assert_true(fabs(crossing(jul, lat, lon, 1) - (jul + 3 * 3600 + 47 * 60)) < 120);
    assert_true(fabs(crossing(jul + 12 * 3600, lat, lon, 0) - (jul + 20 * 3600 + 22 * 60)) < 120);
}

/* Perihelion ~4 January at 0.98330 AU -> 1361 / 0.98330^2 = 1407.6 W/m2; aphelion ~6 July at
 * 1.01668 AU -> 1361 / 1.01668^2 = 1316.7 W/m2. Spencer's series is good to ~0.1 %. */
static void test_extraterrestrial(void **state)
{
    (void)state;
    assert_true(fabs(sim_extraterrestrial_wm2(4) - 1407.6) < 2.0);
    assert_true(fabs(sim_extraterrestrial_wm2(187) - 1316.7) < 2.0);
    /* extremes of the year are at the apsides */
    for (int d = 1; d <= 365; d++) {
        assert_true(sim_extraterrestrial_wm2(d) <= sim_extraterrestrial_wm2(4) + 0.05);
        assert_true(sim_extraterrestrial_wm2(d) >= sim_extraterrestrial_wm2(187) - 0.05);
    }
}

/* Clear sky at zenith 20 deg: sea-level clear-sky GHI is ~950-1050 W/m2 with DNI ~850-950
 * and a diffuse share of 10-20 % (e.g. Ineichen & Perez 2002, fig. 6; Reno et al. 2012,
 * SAND2012-2389, fig. 3). By hand (doy 80: Spencer factor 1.00790, I0 = 1371.75; TL 3):
 * Kasten-Young air mass 1.0637,
 * GHI = 0.868 * 1371.75 * cos20 * exp(-0.0387*1.0637*3) * exp(0.01*1.0637^1.8) = 1000.0 W/m2,
 * DNI = 0.827 * 1371.75 * exp(-0.09*1.0637*2) = 936.8 W/m2 (below the GHI-derived bound). */
static void test_clear_sky(void **state)
{
    (void)state;
    sim_sun s = {20.0, 180.0};
    sim_irradiance c;
    sim_clear_sky(&s, 80, &c);
    assert_true(fabs(c.ghi_wm2 - 1000.0) < 0.5);
    assert_true(fabs(c.dni_wm2 - 936.8) < 0.5);
    assert_true(c.dni_wm2 > 850 && c.dni_wm2 < 950);
    assert_true(c.dhi_wm2 > 0.08 * c.ghi_wm2 && c.dhi_wm2 < 0.2 * c.ghi_wm2);
    assert_true(fabs(c.dni_wm2 * cos(20.0 * 3.14159265358979323846 / 180) + c.dhi_wm2 -
                     c.ghi_wm2) < 1e-9);
    /* lower sun, less light; none below the horizon */
    sim_irradiance lo;
    sim_sun s70 = {70.0, 180.0}, night = {95.0, 0.0};
    sim_clear_sky(&s70, 80, &lo);
    assert_true(lo.ghi_wm2 < c.ghi_wm2 && lo.ghi_wm2 > 250 && lo.ghi_wm2 < 400);
    sim_clear_sky(&night, 80, &lo);
    assert_true(lo.ghi_wm2 == 0 && lo.dni_wm2 == 0 && lo.dhi_wm2 == 0);
}

/* Erbs et al. (1982): df(0.1) = 1 - 0.009 = 0.991; df(0.5) = 0.9511 - 0.0802 + 1.0970
 * - 2.07975 + 0.771 = 0.65915; df(0.9) = 0.165. Decomposition closes GHI = DNI cos z + DHI. */
static void test_erbs(void **state)
{
    (void)state;
    assert_true(fabs(sim_erbs_diffuse_fraction(0.1) - 0.991) < 1e-9);
    assert_true(fabs(sim_erbs_diffuse_fraction(0.5) - 0.65915) < 1e-5);
    assert_true(fabs(sim_erbs_diffuse_fraction(0.9) - 0.165) < 1e-9);
    sim_sun s = {40.0, 150.0};
    sim_irradiance d;
    double ghi = 0.5 * sim_extraterrestrial_wm2(100) * cos(40.0 * 3.14159265358979323846 / 180);
    sim_decompose(ghi, &s, 100, &d);
    assert_true(fabs(d.dhi_wm2 / d.ghi_wm2 - 0.65915) < 1e-5);
    assert_true(fabs(d.dni_wm2 * cos(40.0 * 3.14159265358979323846 / 180) + d.dhi_wm2 - ghi) <
                1e-9);
}

/* A horizontal plane sees exactly GHI, whatever the split and sun position. */
static void test_poa_horizontal(void **state)
{
    (void)state;
    for (double z = 5; z < 86; z += 10)
        for (double az = 0; az < 360; az += 45) {
            sim_sun s = {z, az};
            sim_irradiance c, d;
            sim_clear_sky(&s, 172, &c);
            assert_true(fabs(sim_poa_wm2(&s, &c, 172, 0, 180, 0.2) - c.ghi_wm2) < 1e-6);
            sim_decompose(0.4 * c.ghi_wm2, &s, 172, &d);
            assert_true(fabs(sim_poa_wm2(&s, &d, 172, 0, 123, 0.2) - d.ghi_wm2) < 1e-6);
        }
}

/* A plane facing the sun gets the full beam; at an equinox noon a south plane tilted at the
 * latitude does (angle of incidence ~0), plus diffuse between the isotropic share
 * DHI (1 + cos b) / 2 and the all-circumsolar DHI / cos z, plus ground light. */
static void test_poa_tilted(void **state)
{
    (void)state;
    sim_sun s = {35.0, 200.0};
    sim_irradiance beam_only = {800 * cos(35.0 * 3.14159265358979323846 / 180), 800, 0};
    assert_true(fabs(sim_poa_wm2(&s, &beam_only, 80, 35.0, 200.0, 0) - 800.0) < 1e-6);

    /* 45 N, Greenwich, 2023-03-20, solar noon ~12:07 UTC (equation of time -7.5 min) */
    sim_sun_position(utc(2023, 3, 20, 12, 7, 30), 45.0, 0.0, &s);
    sim_irradiance c;
    sim_clear_sky(&s, 79, &c);
    double cb = cos(45.0 * 3.14159265358979323846 / 180);
    double cz = cos(s.zenith_deg * 3.14159265358979323846 / 180);
    double poa = sim_poa_wm2(&s, &c, 79, 45.0, 180.0, 0.2);
    double ground = c.ghi_wm2 * 0.2 * (1 - cb) / 2;
    assert_true(poa > 0.999 * c.dni_wm2 + c.dhi_wm2 * (1 + cb) / 2 + ground);
    assert_true(poa < c.dni_wm2 + c.dhi_wm2 / cz + ground);
    assert_true(poa > c.ghi_wm2); /* tilting toward the sun helps at 45 N in March */
    /* facing away from the sun, no beam: only diffuse and ground */
    double away = sim_poa_wm2(&s, &c, 79, 45.0, 0.0, 0.2);
    assert_true(away < c.dhi_wm2 + ground + 1e-9);
    /* sun below the horizon: nothing */
    sim_sun night = {100.0, 0};
    assert_true(sim_poa_wm2(&night, &c, 79, 30, 180, 0.2) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spa_example),
        cmocka_unit_test(test_noon_elevation_solstice),
        cmocka_unit_test(test_noon_elevation_equinox),
        cmocka_unit_test(test_sunrise_sunset_london),
        cmocka_unit_test(test_extraterrestrial),
        cmocka_unit_test(test_clear_sky),
        cmocka_unit_test(test_erbs),
        cmocka_unit_test(test_poa_horizontal),
        cmocka_unit_test(test_poa_tilted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
