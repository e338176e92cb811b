/*
 * Scenario INI files: every example in config/ loads, defaults are the documented ones, and
 * every kind of mistake is refused with a message naming the file and the line to fix.
 * Temporary INI files are written under the build directory.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "mgx/scenario.h"

#define TMP_DIR MGX_BINARY_DIR "/sim_input_tmp"

static char err[1024];

static const char *tmp_path(const char *name)
{
    static char path[512];
    mkdir(TMP_DIR, 0755);
    snprintf(path, sizeof path, "%s/%s", TMP_DIR, name);
    return path;
}

static const char *write_ini(const char *name, const char *text)
{
    const char *path = tmp_path(name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    return path;
}

static int load_text(const char *name, const char *text, sim_scenario *sc)
{
    err[0] = '\0';
    return sim_scenario_load(write_ini(name, text), sc, err, sizeof err);
}

/* The load must fail with "<path>:<line>: ..." containing needle (line 0: no line). */
static void expect_error(const char *text, int line, const char *needle)
{
    sim_scenario sc;
    char want[600];
    int rc = load_text("bad.ini", text, &sc);
    if (rc != SIM_E_PARSE || !strstr(err, needle))
        fail_msg("rc %d, message '%s', wanted '%s'", rc, err, needle);
    if (line > 0)
        snprintf(want, sizeof want, "%s:%d: ", tmp_path("bad.ini"), line);
    else
        snprintf(want, sizeof want, "%s: ", tmp_path("bad.ini"));
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("message '%s' does not start with '%s'", err, want);
}

static void load_example(const char *file, sim_scenario *sc)
{
    char path[512];
    snprintf(path, sizeof path, "%s/config/%s", MGX_SOURCE_DIR, file);
    int rc = sim_scenario_load(path, sc, err, sizeof err);
    if (rc != SIM_OK)
        fail_msg("%s: rc %d: %s", file, rc, err);
    assert_int_equal(sim_scenario_validate(sc, err, sizeof err), SIM_OK);
}

/* ---- the examples -------------------------------------------------------------------- */

static void test_examples_load(void **state)
{
    (void)state;
    sim_scenario sc;

    load_example("street.ini", &sc);
    assert_string_equal(sc.name, "street");
    assert_int_equal(sc.n_groups, 3);
    assert_int_equal(sim_scenario_homes(&sc), 10); /* 4 + 3 + 3 */
    assert_int_equal(sc.days, 7);
    assert_int_equal(sc.interval_min, 15);
    assert_int_equal(sc.seed, 42);
    assert_int_equal(sc.network_fee_uc_per_kwh, 20000);
    assert_int_equal(sc.groups[0].agent, SIM_AGENT_ZIP);
    assert_int_equal(sc.groups[2].agent, SIM_AGENT_ZIC);
    assert_true(sc.groups[0].battery_kwh == 10.0 && sc.groups[0].battery_kw == 5.0);
    assert_true(sc.groups[1].pv_azimuth_deg == 200.0);

    load_example("weak-feeder.ini", &sc);
    assert_int_equal(sim_scenario_homes(&sc), 12);
    assert_true(sc.groups[0].feeder_export_kw == 2.0 && sc.groups[0].feeder_import_kw == -1.0);
    assert_true(sc.groups[1].feeder_export_kw == -1.0);

    load_example("community-100.ini", &sc);
    assert_int_equal(sim_scenario_homes(&sc), 100); /* 20 + 15 + 15 + 40 + 10 */
    assert_int_equal(sc.days, 30);

    load_example("district-1000.ini", &sc);
    assert_int_equal(sim_scenario_homes(&sc), 1000); /* 150 + 200 + 150 + 300 + 200 + 0 */
    assert_int_equal(sc.days, 365);
    assert_int_equal(sc.mechanism, MKT_PAY_AS_BID);
    assert_int_equal(sc.groups[5].count, 0);

    load_example("community-100-tou.ini", &sc);
    assert_int_equal(sim_scenario_homes(&sc), 100);
    assert_int_equal(sc.retail_peak_uc_per_kwh, 420000);
    /* 2025-06-01 17:00 local standard time (+01:00) is 16:00 UTC: peak; 16:45 local is not */
    assert_int_equal(sim_scenario_retail_at(&sc, 1748793600), 420000);
    assert_int_equal(sim_scenario_retail_at(&sc, 1748793600 - 900), 300000);
    assert_int_equal(sim_scenario_retail_at(&sc, 1748793600 + 4 * 3600), 300000); /* 21:00 */
    assert_int_equal(sc.groups[0].battery_policy, SIM_BATTERY_SELF_CONSUMPTION);

    load_example("ausgrid-test.ini", &sc);
    assert_int_equal(sc.interval_min, 30);
    assert_int_equal(sc.utc_offset_min, 600);
    assert_int_equal(sc.start_year, 2011);
    assert_int_equal(sc.start_month, 7);
    assert_int_equal(sc.start_day, 1);
    assert_int_equal(sc.n_groups, 1);
    assert_string_equal(sc.groups[0].name, "ausgrid");
    assert_int_equal(sim_scenario_homes(&sc), 3);
    /* Sydney is south of the equator and the file gives no azimuth: panels face north */
    assert_true(sc.groups[0].pv_azimuth_deg == 0.0);
}

/* ---- defaults ---------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    sim_scenario sc;
    sim_scenario_defaults(&sc);
    assert_int_equal(sc.n_groups, 0);
    assert_int_equal(sc.interval_min, 15);
    assert_int_equal(sc.days, 7);
    assert_int_equal(sc.seed, 1);
    assert_int_equal(sc.start_year, 2025);
    assert_int_equal(sc.start_month, 6);
    assert_int_equal(sc.start_day, 1);
    assert_true(sc.clear_sky_index_mean == 0.7);
    assert_true(sc.cloud_persistence_h == 3.0);
    assert_true(sc.cloud_home_spread == 0.05);
    assert_int_equal(sc.mechanism, MKT_PAY_AS_CLEAR);
    assert_int_equal(sc.feed_in_uc_per_kwh, 80000);
    assert_int_equal(sc.retail_uc_per_kwh, 300000);
    assert_int_equal(sc.network_fee_uc_per_kwh, 0);
    assert_int_equal(sc.timing, MKT_EX_ANTE);
    assert_true(sc.latitude_deg > 35 && sc.latitude_deg < 71); /* a European town */
    assert_true(sc.longitude_deg > -10 && sc.longitude_deg < 40);
    /* no groups: not a valid scenario on its own */
    assert_int_equal(sim_scenario_validate(&sc, err, sizeof err), SIM_E_PARSE);

    /* a file with nothing but one group takes every default */
    assert_int_equal(load_text("min.ini", "[group.roof]\ncount = 2\n", &sc), SIM_OK);
    const sim_group *g = &sc.groups[0];
    assert_string_equal(g->name, "roof");
    assert_int_equal(g->count, 2);
    assert_true(g->pv_kwp == 0.0 && g->battery_kwh == 0.0 && g->inverter_kw == 0.0);
    assert_true(g->pv_tilt_deg == 30.0);
    assert_true(g->pv_azimuth_deg == 180.0); /* default latitude is northern */
    assert_true(g->pv_loss == 0.14);
    assert_true(g->battery_efficiency == 0.9);
    assert_true(g->soc_min == 0.1 && g->soc_max == 0.9 && g->soc_initial == 0.5);
    assert_true(g->annual_kwh == 3500.0);
    assert_int_equal(g->agent, SIM_AGENT_TRUTHFUL);
    assert_true(g->markup == 0.1 && g->zip_beta == 0.3 && g->zip_momentum == 0.05);
    assert_int_equal(sc.interval_min, 15);
    assert_int_equal(sc.feed_in_uc_per_kwh, 80000);
}

/* The azimuth default depends on the latitude even when [location] comes after the group. */
static void test_azimuth_default_by_hemisphere(void **state)
{
    (void)state;
    sim_scenario sc;
    assert_int_equal(load_text("south.ini",
                               "[group.a]\ncount = 1\n[group.b]\ncount = 1\npv_azimuth = 90\n"
                               "[location]\nlatitude = -33.87\n",
                               &sc),
                     SIM_OK);
    assert_true(sc.groups[0].pv_azimuth_deg == 0.0);
    assert_true(sc.groups[1].pv_azimuth_deg == 90.0);
}

static void test_timezones(void **state)
{
    (void)state;
    static const struct {
        const char *tz;
        int32_t min;
    } cases[] = {{"+10:00", 600}, {"-05:00", -300}, {"UTC", 0},   {"Z", 0},
                 {"+05:30", 330}, {"-03", -180},    {"+14:00", 840}, {"-12:00", -720}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[200];
        sim_scenario sc;
        snprintf(text, sizeof text, "[location]\ntimezone = %s\n[group.a]\ncount = 1\n",
                 cases[i].tz);
        assert_int_equal(load_text("tz.ini", text, &sc), SIM_OK);
        assert_int_equal(sc.utc_offset_min, cases[i].min);
    }
}

/* Layout freedom: indentation, comments, CRLF, a UTF-8 BOM, ':' as separator. */
static void test_layout(void **state)
{
    (void)state;
    sim_scenario sc;
    const char *text = "\xEF\xBB\xBF; comment\r\n"
                       "# another comment\r\n"
                       "[period]\r\n"
                       "    days = 3 ; inline comment\r\n"
                       "\tinterval_min: 60\r\n"
                       "  start = 2024-02-29\r\n"
                       "  [group.a]\r\n"
                       "    count = 5\r\n"
                       "    pv_kwp = 4.5\r\n";
    assert_int_equal(load_text("layout.ini", text, &sc), SIM_OK);
    assert_int_equal(sc.days, 3);
    assert_int_equal(sc.interval_min, 60);
    assert_int_equal(sc.start_day, 29);
    assert_int_equal(sc.groups[0].count, 5);
    assert_true(sc.groups[0].pv_kwp == 4.5);
}

/* ---- errors name the file and the line ------------------------------------------------ */

static void test_unknown_key_and_section(void **state)
{
    (void)state;
    expect_error("[group.roof]\ncount = 2\npv_kwh = 5\n", 3,
                 "unknown key 'pv_kwh' in [group.roof]");
    expect_error("[scenario]\nname = x\n\n[wether]\nclear_sky_index_mean = 0.5\n", 4,
                 "unknown section [wether]");
    /* inih never reports an empty section; the reader must still catch it */
    expect_error("[group.a]\ncount = 1\n[bogus]\n", 3, "unknown section [bogus]");
    /* a key of another section */
    expect_error("[group.a]\ncount = 1\n[market]\ncount = 3\n", 4,
                 "unknown key 'count' in [market]");
    expect_error("name = x\n[group.a]\ncount = 1\n", 1, "outside any section");
    expect_error("[group.a]\ncount = 1\n[group.my roof]\ncount = 1\n", 3, "bad group name");
    expect_error("[group.]\ncount = 1\n", 1, "bad group name");
}

static void test_bad_numbers(void **state)
{
    (void)state;
    expect_error("[group.a]\ncount = 1\n[location]\nlatitude = 47.9x\n", 4,
                 "bad value '47.9x' for 'latitude' in [location]");
    expect_error("[location]\nlatitude = nan\n[group.a]\ncount = 1\n", 2, "bad value 'nan'");
    expect_error("[location]\nlongitude = inf\n[group.a]\ncount = 1\n", 2, "bad value 'inf'");
    expect_error("[location]\nlatitude =\n[group.a]\ncount = 1\n", 2, "bad value ''");
    expect_error("[group.a]\ncount = 2.5\n", 2, "bad value '2.5' for 'count'");
    expect_error("[market]\nretail_tariff = 0.30\n[group.a]\ncount = 1\n", 2,
                 "bad value '0.30' for 'retail_tariff'");
    expect_error("[period]\nseed = -1\n[group.a]\ncount = 1\n", 2, "bad value '-1' for 'seed'");
    expect_error("[period]\nseed = 18446744073709551616\n[group.a]\ncount = 1\n", 2,
                 "bad value");
    expect_error("[market]\nmechanism = pay-as-you-go\n[group.a]\ncount = 1\n", 2,
                 "expected pay-as-clear or pay-as-bid");
    expect_error("[group.a]\ncount = 1\nagent = smart\n", 3, "truthful, zic, markup or zip");
    expect_error("[market]\ntiming = ex-post\n[group.a]\ncount = 1\n", 2,
                 "expected ex_ante or ex_post");
    sim_scenario sc;
    assert_int_equal(load_text("post.ini", "[market]\ntiming = ex_post\n[group.a]\ncount = 1\n",
                               &sc),
                     SIM_OK);
    assert_int_equal(sc.timing, MKT_EX_POST);
    expect_error("[location]\ntimezone = CET\n[group.a]\ncount = 1\n", 2, "fixed UTC offset");
    expect_error("[location]\ntimezone = +10:0\n[group.a]\ncount = 1\n", 2, "fixed UTC offset");
}

static void test_out_of_range(void **state)
{
    (void)state;
    expect_error("[location]\nlatitude = 95\n[group.a]\ncount = 1\n", 2,
                 "latitude = 95 is out of range [-90, 90] in [location]");
    expect_error("[group.a]\ncount = -1\n", 2, "count = -1 is out of range [0, 100000]");
    expect_error("[group.a]\ncount = 100001\n", 2, "out of range [0, 100000]");
    expect_error("[weather]\nclear_sky_index_mean = 0\n[group.a]\ncount = 1\n", 2,
                 "out of range (0, 1]");
    expect_error("[group.a]\ncount = 1\npv_azimuth = 360\n", 3, "out of range [0, 360)");
    expect_error("[group.a]\ncount = 1\nbattery_efficiency = 1.2\n", 3, "battery_efficiency");
    expect_error("[market]\nnetwork_fee = -5\n[group.a]\ncount = 1\n", 2, "network_fee");
    expect_error("[period]\ndays = 3661\n[group.a]\ncount = 1\n", 2, "out of range [1, 3660]");
    expect_error("[location]\ntimezone = +15:00\n[group.a]\ncount = 1\n", 2,
                 "timezone = +15:00 is out of range [-720, 840]");
    /* 60000 + 60000 homes exceed SIM_MAX_HOMES; blamed on the second count */
    expect_error("[group.a]\ncount = 60000\n[group.b]\ncount = 60000\n", 4,
                 "more than 100000 homes");
    expect_error("[group.a]\ncount = 0\n", 2, "no homes");
}

static void test_cross_field_rules(void **state)
{
    (void)state;
    /* the later of the two keys is blamed */
    expect_error("[group.a]\ncount = 1\nsoc_max = 0.5\nsoc_min = 0.6\n", 4,
                 "soc_min 0.6 is above soc_max 0.5 in [group.a]");
    /* soc_max given, soc_min left at 0.1 default: soc_max is the line */
    expect_error("[group.a]\ncount = 1\nsoc_max = 0.05\n", 3, "above soc_max 0.05");
    expect_error("[group.a]\ncount = 1\nsoc_initial = 0.95\n", 3, "soc_initial 0.95 is outside");
    expect_error("[group.a]\ncount = 1\nbattery_kwh = 5\n", 3, "needs battery_kw > 0");
    expect_error("[market]\nfeed_in_tariff = 400000\n[group.a]\ncount = 1\n", 2,
                 "feed_in_tariff 400000 is above retail_tariff 300000");
    expect_error("[market]\nfeed_in_tariff = 90000\nretail_tariff = 50000\n[group.a]\ncount = 1\n",
                 3, "is above retail_tariff 50000");
    expect_error("[market]\nfeed_in_tariff = 90000\nretail_peak_tariff = 50000\n[group.a]\ncount = 1\n",
                 3, "is above retail_peak_tariff 50000");
    expect_error("[market]\npeak_end = 25\n[group.a]\ncount = 1\n", 2, "out of range");
    expect_error("[group.a]\ncount = 1\nbattery_policy = arbitrage\n", 3,
                 "self_consumption or schedule");
    sim_scenario sp;
    assert_int_equal(load_text("policy.ini",
                               "[group.a]\ncount = 1\nbattery_policy = schedule\n"
                               "schedule_min_gain = 7\n",
                               &sp),
                     SIM_OK);
    assert_int_equal(sp.groups[0].battery_policy, SIM_BATTERY_SCHEDULE);
    assert_int_equal(sp.groups[0].schedule_min_gain_uc, 7);
    assert_int_equal(sp.groups[0].schedule_spread_min, 240); /* the default */
    assert_int_equal(load_text("spread.ini", "[group.a]\ncount = 1\nschedule_spread_min = 0\n", &sp),
                     SIM_OK);
    assert_int_equal(sp.groups[0].schedule_spread_min, 0);
    expect_error("[group.a]\ncount = 1\nschedule_spread_min = 1441\n", 3, "out of range");
    expect_error("[period]\ninterval_min = 7\n[group.a]\ncount = 1\n", 2, "does not divide 1440");
    expect_error("[period]\ninterval_min = 0\n[group.a]\ncount = 1\n", 2, "out of range");
    expect_error("[group.a]\npv_kwp = 3\n", 1, "[group.a] needs a count");
    expect_error("[group.a]\ncount = 1\nfeeder_export_kw = -0.5\n", 3,
                 "feeder_export_kw = -0.5 in [group.a]: a limit is >= 0 kW, or -1 for none");
    expect_error("[group.a]\ncount = 1\nfeeder_import_kw = -2\n", 3, "out of range [-1, 1e+06]");
    /* no group at all: no line to blame */
    expect_error("[scenario]\nname = x\n", 0, "needs 1 to 64 [group.NAME] sections");
}

static void test_dates(void **state)
{
    (void)state;
    expect_error("[period]\nstart = 2025-02-30\n[group.a]\ncount = 1\n", 2,
                 "start = 2025-02-30 is not a valid date");
    expect_error("[period]\nstart = 2023-02-29\n[group.a]\ncount = 1\n", 2, "not a valid date");
    expect_error("[period]\nstart = 2025-6-1\n[group.a]\ncount = 1\n", 2,
                 "expected a date YYYY-MM-DD");
    expect_error("[period]\nstart = 2025-06-01T00:00\n[group.a]\ncount = 1\n", 2,
                 "expected a date");
    expect_error("[period]\nstart = 1850-01-01\n[group.a]\ncount = 1\n", 2, "not a valid date");
    sim_scenario sc;
    assert_int_equal(load_text("leap.ini", "[period]\nstart = 2000-02-29\n[group.a]\ncount = 1\n",
                               &sc),
                     SIM_OK);
}

static void test_duplicates(void **state)
{
    (void)state;
    expect_error("[group.a]\ncount = 1\n[group.b]\ncount = 1\n[group.a]\ncount = 1\n", 5,
                 "duplicate group 'a' (first at line 1)");
    expect_error("[group.a]\ncount = 1\ncount = 2\n", 3,
                 "duplicate key 'count' in [group.a] (first at line 2)");
    expect_error("[market]\nnetwork_fee = 1\n[group.a]\ncount = 1\n[market]\nretail_tariff = 1\n",
                 5, "section [market] appears twice (first at line 1)");
}

static void test_syntax(void **state)
{
    (void)state;
    expect_error("[group.a]\ncount = 1\nname x\n", 3, "syntax error");
    expect_error("[group.a]\ncount = 1\n[scenario\n", 3, "syntax error");
    char text[400];
    memset(text, 'x', sizeof text);
    memcpy(text, "[group.a]\ncount = 1\n; ", 22);
    text[sizeof text - 2] = '\n';
    text[sizeof text - 1] = '\0';
    expect_error(text, 3, "line longer than");
}

static void test_io_error_and_atomicity(void **state)
{
    (void)state;
    sim_scenario sc;
    memset(&sc, 0, sizeof sc);
    snprintf(sc.name, sizeof sc.name, "untouched");
    err[0] = '\0';
    assert_int_equal(sim_scenario_load(TMP_DIR "/does-not-exist.ini", &sc, err, sizeof err),
                     SIM_E_IO);
    assert_non_null(strstr(err, "does-not-exist.ini"));
    /* a failed load leaves the caller's scenario as it was */
    assert_int_equal(load_text("half.ini", "[scenario]\nname = half\n[group.a]\ncount = x\n", &sc),
                     SIM_E_PARSE);
    assert_string_equal(sc.name, "untouched");
    assert_int_equal(sc.n_groups, 0);
    assert_int_equal(sim_scenario_load(NULL, &sc, err, sizeof err), SIM_E_INVAL);
}

/* ---- validate on a scenario built in code -------------------------------------------- */

static void test_validate_in_code(void **state)
{
    (void)state;
    sim_scenario sc;
    sim_scenario_defaults(&sc);
    sc.n_groups = 2;
    snprintf(sc.groups[0].name, SIM_NAME_MAX, "a");
    snprintf(sc.groups[1].name, SIM_NAME_MAX, "b");
    for (int i = 0; i < 2; i++) {
        sc.groups[i].count = 3u + (uint32_t)i;
        sc.groups[i].battery_efficiency = 0.9;
        sc.groups[i].soc_max = 0.9;
        sc.groups[i].soc_initial = 0.5;
        sc.groups[i].zip_beta = 0.3;
    }
    assert_int_equal(sim_scenario_validate(&sc, err, sizeof err), SIM_OK);
    assert_int_equal(sim_scenario_homes(&sc), 7);

    sim_scenario bad = sc;
    snprintf(bad.groups[1].name, SIM_NAME_MAX, "a");
    assert_int_equal(sim_scenario_validate(&bad, err, sizeof err), SIM_E_PARSE);
    assert_non_null(strstr(err, "duplicate group 'a'"));

    bad = sc;
    bad.groups[0].soc_initial = 0.95;
    assert_int_equal(sim_scenario_validate(&bad, err, sizeof err), SIM_E_PARSE);

    bad = sc;
    bad.interval_min = 7;
    assert_int_equal(sim_scenario_validate(&bad, err, sizeof err), SIM_E_PARSE);

    bad = sc;
    bad.start_month = 13;
    assert_int_equal(sim_scenario_validate(&bad, err, sizeof err), SIM_E_PARSE);

    bad = sc;
    bad.groups[0].pv_kwp = -1.0;
    assert_int_equal(sim_scenario_validate(&bad, err, sizeof err), SIM_E_PARSE);
    assert_non_null(strstr(err, "pv_kwp"));

    bad = sc;
    bad.n_groups = SIM_MAX_GROUPS + 1;
    assert_int_equal(sim_scenario_validate(&bad, err, sizeof err), SIM_E_PARSE);
    assert_int_equal(sim_scenario_validate(NULL, err, sizeof err), SIM_E_INVAL);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(sim_strerror(SIM_OK), "success");
    assert_non_null(strstr(sim_strerror(SIM_E_PARSE), "malformed"));
    assert_string_equal(sim_strerror(12345), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_load),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_azimuth_default_by_hemisphere),
        cmocka_unit_test(test_timezones),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_unknown_key_and_section),
        cmocka_unit_test(test_bad_numbers),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_cross_field_rules),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_io_error_and_atomicity),
        cmocka_unit_test(test_validate_in_code),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
