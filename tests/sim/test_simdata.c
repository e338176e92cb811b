/*
 * Measured data (`timestamp,home,load_wh,pv_wh`) parsed from memory against a small scenario:
 * one day of 30-minute intervals in Sydney standard time (+10:00) with homes a-1, a-2, b-1.
 * Timestamps are produced here with gmtime_r, independently of the parser's own calendar code.
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
#include <time.h>

#include <cmocka.h>

#include "mgx/simdata.h"

/* 2011-07-01 00:00 at +10:00 is 2011-06-30 14:00 UTC: 15156 days after 1970-01-01 (41 years
 * with 10 leap days = 14975 days to 2011-01-01, plus 181 days of January..June), so
 * 15156 * 86400 = 1309478400 is 2011-07-01 00:00 UTC, minus 10 h = 1309442400. */
#define T0_UTC INT64_C(1309442400)
#define N_INT 48
#define STEP_S 1800
#define N_HOMES 3

static char err[512];
static char csv[1 << 20];
static size_t csv_len;
static int csv_lines;

typedef enum { ST_NAIVE, ST_NAIVE_T_NO_SECONDS, ST_Z, ST_MINUS5, ST_PLUS0530, ST_COMPACT, N_ST } style;

static void make_scenario(sim_scenario *sc)
{
    sim_scenario_defaults(sc);
    sc->utc_offset_min = 600;
    sc->start_year = 2011;
    sc->start_month = 7;
    sc->start_day = 1;
    sc->days = 1;
    sc->interval_min = 30;
    sc->n_groups = 2;
    const char *names[2] = {"a", "b"};
    for (size_t g = 0; g < 2; g++) {
        sim_group *gr = &sc->groups[g];
        snprintf(gr->name, SIM_NAME_MAX, "%s", names[g]);
        gr->count = g == 0 ? 2 : 1;
        gr->battery_efficiency = 0.9;
        gr->soc_min = 0.1;
        gr->soc_max = 0.9;
        gr->soc_initial = 0.5;
        gr->zip_beta = 0.3;
    }
}

static const char *home_of(size_t h)
{
    static const char *names[N_HOMES] = {"a-1", "a-2", "b-1"};
    return names[h];
}

static int64_t load_of(size_t h, size_t k)
{
    return (int64_t)(1000 * (h + 1) + k);
}

static int64_t pv_of(size_t h, size_t k)
{
    return (int64_t)(2 * k + h);
}

static void csv_reset(int header)
{
    csv_len = 0;
    csv_lines = 0;
    csv[0] = '\0';
    if (header) {
        csv_len = (size_t)snprintf(csv, sizeof csv, "timestamp,home,load_wh,pv_wh\n");
        csv_lines = 1;
    }
}

static void csv_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void csv_add(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(csv + csv_len, sizeof csv - csv_len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof csv - csv_len);
    csv_len += (size_t)n;
    for (int i = 0; i < n; i++)
        csv_lines += csv[csv_len - (size_t)n + (size_t)i] == '\n';
}

/* The instant t (Unix seconds) written in the given style. */
static void fmt_ts(int64_t t, style st, char *out, size_t len)
{
    static const int off_min[N_ST] = {600, 600, 0, -300, 330, 330};
    static const char *suffix[N_ST] = {"", "", "Z", "-05:00", "+05:30", "+0530"};
    time_t local = (time_t)(t + off_min[st] * 60);
    struct tm tm;
    char body[40];
    gmtime_r(&local, &tm);
    if (st == ST_NAIVE_T_NO_SECONDS || st == ST_COMPACT)
        strftime(body, sizeof body, "%Y-%m-%dT%H:%M", &tm);
    else
        strftime(body, sizeof body, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out, len, "%s%s", body, suffix[st]);
}

static void add_row(size_t h, size_t k, style st)
{
    char ts[48];
    fmt_ts(T0_UTC + (int64_t)k * STEP_S, st, ts, sizeof ts);
    csv_add("%s,%s,%lld,%lld\n", ts, home_of(h), (long long)load_of(h, k), (long long)pv_of(h, k));
}

static void add_all(style st)
{
    for (size_t k = 0; k < N_INT; k++)
        for (size_t h = 0; h < N_HOMES; h++)
            add_row(h, k, st);
}

static sim_data *parse_ok(const sim_scenario *sc)
{
    sim_data *d = NULL;
    err[0] = '\0';
    int rc = sim_data_parse(csv, csv_len, "test.csv", sc, &d, err, sizeof err);
    if (rc != SIM_OK)
        fail_msg("rc %d: %s", rc, err);
    assert_non_null(d);
    return d;
}

static void parse_fails(const sim_scenario *sc, int line, const char *needle)
{
    sim_data *d = (sim_data *)1;
    char want[64];
    err[0] = '\0';
    int rc = sim_data_parse(csv, csv_len, "test.csv", sc, &d, err, sizeof err);
    if (rc != SIM_E_PARSE || !strstr(err, needle))
        fail_msg("rc %d, message '%s', wanted '%s'", rc, err, needle);
    assert_null(d);
    if (line > 0)
        snprintf(want, sizeof want, "test.csv:%d: ", line);
    else
        snprintf(want, sizeof want, "test.csv: ");
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("message '%s' does not start with '%s'", err, want);
}

/* Every home, every interval, with the values add_row wrote. */
static void check_full(const sim_data *d)
{
    assert_int_equal(sim_data_homes(d), N_HOMES);
    for (size_t h = 0; h < N_HOMES; h++) {
        assert_int_equal(sim_data_home_index(d, h), h);
        for (size_t k = 0; k < N_INT; k++) {
            assert_int_equal(sim_data_load_wh(d, h, k), load_of(h, k));
            assert_int_equal(sim_data_pv_wh(d, h, k), pv_of(h, k));
        }
    }
}

static void test_naive_local_time(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc);
    csv_reset(1);
    add_all(ST_NAIVE);
    sim_data *d = parse_ok(&sc);
    check_full(d);
    /* naive 2011-07-01 00:00:00 is interval 0, 2011-07-01 23:30:00 the last */
    assert_int_equal(sim_data_load_wh(d, 0, 0), 1000);
    assert_int_equal(sim_data_load_wh(d, 2, 47), 3047);
    sim_data_free(d);
}

/* The same instants written with any offset give the same data. */
static void test_offsets_are_honoured(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc);
    for (int st = 0; st < N_ST; st++) {
        csv_reset(1);
        add_all((style)st);
        sim_data *d = parse_ok(&sc);
        check_full(d);
        sim_data_free(d);
    }
    /* and styles mixed row by row */
    csv_reset(1);
    for (size_t k = 0; k < N_INT; k++)
        for (size_t h = 0; h < N_HOMES; h++)
            add_row(h, k, (style)((k + h) % N_ST));
    sim_data *d = parse_ok(&sc);
    check_full(d);
    sim_data_free(d);
}

static void test_row_order_does_not_matter(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc);
    csv_reset(1);
    for (size_t k = N_INT; k-- > 0;)
        for (size_t h = N_HOMES; h-- > 0;)
            add_row(h, k, ST_Z);
    sim_data *d = parse_ok(&sc);
    check_full(d);
    sim_data_free(d);
}

static void test_subset_of_homes(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc);
    csv_reset(1);
    for (size_t k = 0; k < N_INT; k++) {
        add_row(2, k, ST_NAIVE); /* b-1 first in the file */
        add_row(1, k, ST_NAIVE);
    }
    sim_data *d = parse_ok(&sc);
    assert_int_equal(sim_data_homes(d), 2);
    /* ordered by scenario index, not by first appearance */
    assert_int_equal(sim_data_home_index(d, 0), 1);
    assert_int_equal(sim_data_home_index(d, 1), 2);
    assert_int_equal(sim_data_load_wh(d, 0, 7), load_of(1, 7));
    assert_int_equal(sim_data_pv_wh(d, 1, 9), pv_of(2, 9));
    /* out of range asks get neutral answers */
    assert_int_equal(sim_data_home_index(d, 2), SIZE_MAX);
    assert_int_equal(sim_data_load_wh(d, 2, 0), 0);
    assert_int_equal(sim_data_pv_wh(d, 0, N_INT), 0);
    sim_data_free(d);
}

static void test_rows_outside_period_ignored(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc);
    csv_reset(1);
    /* the interval before and the one after the period, an off-grid time and a home the
     * scenario does not have: all outside, all ignored */
    csv_add("2011-06-30 23:30:00,a-1,999999,999999\n");
    csv_add("2011-06-30T13:30:00Z,a-2,999999,999999\n");
    csv_add("2011-06-30 23:45:00,b-1,999999,999999\n");
    csv_add("2011-07-02 00:00:00,zz-9,999999,999999\n");
    add_all(ST_NAIVE);
    csv_add("2011-07-02T00:00:00+10:00,a-1,999999,999999\n");
    sim_data *d = parse_ok(&sc);
    check_full(d);
    sim_data_free(d);

    /* nothing inside at all is a mistake worth reporting */
    csv_reset(1);
    csv_add("2011-06-30 23:30:00,a-1,1,1\n");
    parse_fails(&sc, 0, "no rows inside the scenario period 2011-07-01 00:00+10:00");
}

static void test_grid_check(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc);
    static const char *off_grid[] = {"2011-07-01 00:15:00", "2011-07-01 01:00:00+10:15",
                                     "2011-07-01 00:00:01", "2011-07-01 00:00:00.5",
                                     "2011-06-30T14:10Z"};
    for (size_t i = 0; i < sizeof off_grid / sizeof off_grid[0]; i++) {
        csv_reset(1);
        add_all(ST_NAIVE);
        csv_add("%s,a-1,1,1\n", off_grid[i]);
        parse_fails(&sc, csv_lines, "is not on the scenario's 30-minute interval grid");
        assert_non_null(strstr(err, off_grid[i]));
    }
    /* a zero fraction is on the grid: replaces nothing, so it is a duplicate */
    csv_reset(1);
    add_all(ST_NAIVE);
    csv_add("2011-07-01 00:00:00.000,a-1,1,1\n");
    parse_fails(&sc, csv_lines, "duplicate row for home 'a-1' at '2011-07-01 00:00:00.000'");
}

static void test_missing_interval(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc);
    csv_reset(1);
    for (size_t k = 0; k < N_INT; k++)
        for (size_t h = 0; h < N_HOMES; h++)
            if (!(h == 2 && (k == 5 || k == 40)))
                add_row(h, k, ST_Z);
    /* interval 5 starts 5 x 30 min = 02:30 local standard time */
    parse_fails(&sc, 0,
                "home 'b-1' has no row for 2011-07-01 02:30+10:00 (interval 5; 2 of 48 "
                "intervals missing)");
}

static void test_duplicate_row(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc);
    csv_reset(1);
    add_all(ST_NAIVE);
    /* the same instant as a-2's interval 3 (01:30 local) written in UTC */
    csv_add("2011-06-30T15:30:00Z,a-2,5,5\n");
    parse_fails(&sc, csv_lines, "duplicate row for home 'a-2' at '2011-06-30T15:30:00Z'");
}

static void test_unknown_home(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc);
    static const char *bad[] = {"c-1", "a-3", "a-0", "a-01", "a", "-1", "a-1x", "b-",
                                "A-1", "a-99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        csv_reset(1);
        add_row(0, 0, ST_NAIVE);
        csv_add("2011-07-01 00:00:00,%s,1,1\n", bad[i]);
        char needle[64];
        snprintf(needle, sizeof needle, "unknown home '%s'", bad[i]);
        parse_fails(&sc, 3, needle);
    }
}

static void test_bad_values(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc);
    static const struct {
        const char *row;
        const char *needle;
    } cases[] = {
        {"2011-07-01 00:00:00,a-1,-5,1", "negative load_wh '-5'"},
        {"2011-07-01 00:00:00,a-1,5,-1", "negative pv_wh '-1'"},
        {"2011-07-01 00:00:00,a-1,1.5,1", "bad load_wh '1.5'"},
        {"2011-07-01 00:00:00,a-1,,1", "bad load_wh ''"},
        {"2011-07-01 00:00:00,a-1, 5,1", "bad load_wh ' 5'"},
        {"2011-07-01 00:00:00,a-1,1,1000000000001", "bad pv_wh"},
        {"2011-07-01 00:00:00,a-1,1", "expected 4 fields"},
        {"2011-07-01 00:00:00,a-1,1,1,1", "expected 4 fields"},
        {"2011-02-30 00:00:00,a-1,1,1", "bad timestamp '2011-02-30 00:00:00'"},
        {"2011-07-01 24:00:00,a-1,1,1", "bad timestamp"},
        {"2011/07/01 00:00:00,a-1,1,1", "bad timestamp"},
        {"2011-07-01 00:00:00+15:00,a-1,1,1", "bad timestamp"},
        {"2011-07-01 00:00:00+10:,a-1,1,1", "bad timestamp"},
        {"2011-07-01 00:00:00 ,a-1,1,1", "bad timestamp"},
        {"2011-07-01,a-1,1,1", "bad timestamp"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        csv_reset(1);
        csv_add("# a comment line\n");
        csv_add("%s\n", cases[i].row);
        parse_fails(&sc, 3, cases[i].needle);
    }
}

static void test_header_and_layout(void **state)
{
    (void)state;
    sim_scenario sc;
    make_scenario(&sc);
    csv_reset(0);
    add_all(ST_NAIVE);
    parse_fails(&sc, 1, "expected the header 'timestamp,home,load_wh,pv_wh'");
    csv_reset(0);
    parse_fails(&sc, 0, "empty file");
    csv_reset(0);
    csv_add("timestamp,home,pv_wh,load_wh\n");
    parse_fails(&sc, 1, "expected the header");

    /* BOM, CRLF, comments and blank lines, no newline at the end */
    csv_reset(0);
    csv_add("\xEF\xBB\xBF# converted by hand\r\ntimestamp,home,load_wh,pv_wh\r\n\r\n");
    for (size_t k = 0; k < N_INT; k++)
        for (size_t h = 0; h < N_HOMES; h++) {
            char ts[48];
            fmt_ts(T0_UTC + (int64_t)k * STEP_S, ST_NAIVE, ts, sizeof ts);
            csv_add("%s,%s,%lld,%lld%s", ts, home_of(h), (long long)load_of(h, k),
                    (long long)pv_of(h, k), k == N_INT - 1 && h == N_HOMES - 1 ? "" : "\r\n");
        }
    sim_data *d = parse_ok(&sc);
    check_full(d);
    sim_data_free(d);
}

static void test_home_names(void **state)
{
    (void)state;
    sim_scenario sc;
    char name[SIM_NAME_MAX];
    make_scenario(&sc);
    for (size_t h = 0; h < N_HOMES; h++) {
        sim_home_name(&sc, h, name, sizeof name);
        assert_string_equal(name, home_of(h));
    }
    sim_home_name(&sc, 3, name, sizeof name);
    assert_string_equal(name, "");
    sim_home_name(&sc, 1, name, 3); /* truncated, still terminated */
    assert_string_equal(name, "a-");
}

static void test_arguments_and_file(void **state)
{
    (void)state;
    sim_scenario sc;
    sim_data *d = NULL;
    make_scenario(&sc);
    csv_reset(1);
    add_all(ST_NAIVE);
    assert_int_equal(sim_data_parse(csv, csv_len, "x", NULL, &d, err, sizeof err), SIM_E_INVAL);
    sim_scenario bad = sc;
    bad.interval_min = 7;
    assert_int_equal(sim_data_parse(csv, csv_len, "x", &bad, &d, err, sizeof err), SIM_E_INVAL);
    assert_non_null(strstr(err, "invalid scenario"));

    /* the file wrapper gives the same data as parsing from memory */
    char path[512];
    mkdir(MGX_BINARY_DIR "/sim_input_tmp", 0755);
    snprintf(path, sizeof path, "%s/sim_input_tmp/data.csv", MGX_BINARY_DIR);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(csv, 1, csv_len, fp), csv_len);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(sim_data_load(path, &sc, &d, err, sizeof err), SIM_OK);
    check_full(d);
    sim_data_free(d);
    assert_int_equal(sim_data_load(MGX_BINARY_DIR "/sim_input_tmp/none.csv", &sc, &d, err,
                                   sizeof err),
                     SIM_E_IO);
    assert_non_null(strstr(err, "none.csv"));
    sim_data_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_naive_local_time),
        cmocka_unit_test(test_offsets_are_honoured),
        cmocka_unit_test(test_row_order_does_not_matter),
        cmocka_unit_test(test_subset_of_homes),
        cmocka_unit_test(test_rows_outside_period_ignored),
        cmocka_unit_test(test_grid_check),
        cmocka_unit_test(test_missing_interval),
        cmocka_unit_test(test_duplicate_row),
        cmocka_unit_test(test_unknown_home),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_header_and_layout),
        cmocka_unit_test(test_home_names),
        cmocka_unit_test(test_arguments_and_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
