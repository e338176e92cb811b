/*
 * `mgx sim` end to end on real measured data: the Ausgrid customer-12 year (../shared/data,
 * CC BY 4.0) is converted by config/convert-ausgrid.awk into 3 homes and simulated with
 * config/ausgrid-test.ini. The baseline (grid only) is then recomputed here from the raw CSV,
 * read with nothing but fgets and strtod, and compared with summary.json and homes.csv; the
 * trading world must see the same physics and the same net grid exchange. A data file naming a
 * home the scenario lacks must fail with exit 1 and "file:line:". Skips when the data are absent.
 *
 * The working, per home k (1..3) and interval i: the converter gives home k raw row
 * j = (i + (k-1)*48) mod 17568 and rounds Wh = int(kW*500 + 0.5) after clamping negatives to 0.
 * The homes have no battery, so the meter sees import = max(L-P, 0) and export = max(P-L, 0),
 * and the grid-only cost is floor(import*retail/1000) - floor(export*feed_in/1000) uc with the
 * scenario's tariffs (uc/kWh, so /1000 per Wh).
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ausgrid_raw.h"
#include "shell.h"

#define RAW      MGX_SHARED_DATA_DIR "/ausgrid-customer12-2011-2012.csv"
#define SCENARIO MGX_SOURCE_DIR "/config/ausgrid-test.ini"
#define WORK     MGX_BINARY_DIR "/test-sim-ausgrid"
#define DATA     WORK "/ausgrid-3.csv"
#define OUT      WORK "/out"
#define ROWS     17568 /* 366 days x 48 half hours, 2011-07-01 .. 2012-06-30 */
#define PER_DAY  48
#define HOMES    3

static const char *mgx_bin;
static double gc[ROWS], gg[ROWS];
static int have_data;

typedef struct {
    int64_t load, pv, import, export_, cost;
} totals;

static totals want[HOMES], want_all;
static int64_t feed_in, retail, fee = -1;

/* The tariffs as the scenario file writes them ("key = value"). */
static void read_tariffs(void)
{
    char line[256];
    long long v;
    FILE *fp = fopen(SCENARIO, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp)) {
        if (sscanf(line, " feed_in_tariff = %lld", &v) == 1)
            feed_in = v;
        else if (sscanf(line, " retail_tariff = %lld", &v) == 1)
            retail = v;
        else if (sscanf(line, " network_fee = %lld", &v) == 1)
            fee = v;
    }
    fclose(fp);
    assert_true(retail > 0 && feed_in > 0 && feed_in <= retail);
    assert_int_equal(fee, 0);
}

/* The converter's rounding: negatives clamp to 0, then int(x + 0.5), x >= 0. */
static int64_t wh(double kw)
{
    double x = kw * 500.0;
    if (x < 0)
        x = 0;
    return (int64_t)(x + 0.5);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void expected_baseline(void)
{
    memset(want, 0, sizeof want);
    memset(&want_all, 0, sizeof want_all);
    for (size_t h = 0; h < HOMES; h++) {
        for (size_t i = 0; i < ROWS; i++) {
            size_t j = (i + h * PER_DAY) % ROWS;
            int64_t l = wh(gc[j]), p = wh(gg[j]);
            int64_t imp = l > p ? l - p : 0, exp = p > l ? p - l : 0;
            want[h].load += l;
            want[h].pv += p;
            want[h].import += imp;
            want[h].export_ += exp;
            want[h].cost += floor_div(imp * retail, 1000) - floor_div(exp * feed_in, 1000);
        }
        want_all.load += want[h].load;
        want_all.pv += want[h].pv;
        want_all.import += want[h].import;
        want_all.export_ += want[h].export_;
        want_all.cost += want[h].cost;
    }
}

static int setup(void **state)
{
    (void)state;
    if (access(RAW, R_OK) != 0)
        return 0; /* every test skips */
    assert_int_equal(ausgrid_read_raw(RAW, gc, gg, ROWS), ROWS);
    read_tariffs();
    expected_baseline();
    assert_int_equal(tst_sh("rm -rf '%s' && mkdir -p '%s'", WORK, WORK), 0);
    assert_int_equal(tst_sh("'%s' -v homes=%d -f '%s/config/convert-ausgrid.awk' '%s' > '%s'", MGX_AWK,
                         HOMES, MGX_SOURCE_DIR, RAW, DATA),
                     0);
    assert_int_equal(tst_sh("'%s' sim '%s' --data '%s' --out '%s' --no-plots --quiet", mgx_bin,
                         SCENARIO, DATA, OUT),
                     0);
    have_data = 1;
    return 0;
}

static json_t *load_summary(void)
{
    json_error_t e;
    json_t *j = json_load_file(OUT "/summary.json", 0, &e);
    if (!j)
        fail_msg("summary.json: %s (line %d)", e.text, e.line);
    return j;
}

static int64_t jint(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("summary.json: '%s' is missing or not an integer", key);
    return (int64_t)json_integer_value(v);
}

static void test_summary_baseline(void **state)
{
    (void)state;
    if (!have_data)
        skip();
    json_t *j = load_summary();
    json_t *b = json_object_get(j, "baseline");
    assert_true(json_is_object(b));
    assert_int_equal(jint(j, "homes"), HOMES);
    assert_int_equal(jint(j, "intervals"), ROWS);
    assert_int_equal(jint(b, "load_wh"), want_all.load);
    assert_int_equal(jint(b, "pv_wh"), want_all.pv);
    assert_int_equal(jint(b, "grid_import_wh"), want_all.import);
    assert_int_equal(jint(b, "grid_export_wh"), want_all.export_);
    assert_int_equal(jint(b, "cost_uc"), want_all.cost);
    assert_int_equal(jint(b, "local_traded_wh"), 0);
    /* a sanity anchor from docs/measured-data.md: about 5,938 kWh and 1,296 kWh a home */
    assert_true(want_all.load > HOMES * INT64_C(5800000) &&
                want_all.load < HOMES * INT64_C(6100000));
    assert_true(want_all.pv > HOMES * INT64_C(1200000) && want_all.pv < HOMES * INT64_C(1400000));
    json_decref(j);
}

/* Trading moves money and who supplies whom, never the physics or the net grid exchange. */
static void test_summary_trading_conserves(void **state)
{
    (void)state;
    if (!have_data)
        skip();
    json_t *j = load_summary();
    json_t *b = json_object_get(j, "baseline");
    assert_int_equal(jint(j, "load_wh"), jint(b, "load_wh"));
    assert_int_equal(jint(j, "pv_wh"), jint(b, "pv_wh"));
    assert_int_equal(jint(j, "grid_import_wh") - jint(j, "grid_export_wh"),
                     jint(b, "grid_import_wh") - jint(b, "grid_export_wh"));
    assert_true(jint(j, "local_traded_wh") >= 0);
    printf("# ausgrid x3: load %lld Wh, pv %lld Wh, baseline import %lld Wh, export %lld Wh, "
           "cost %lld uc; traded %lld Wh, cost %lld uc\n",
           (long long)want_all.load, (long long)want_all.pv, (long long)want_all.import,
           (long long)want_all.export_, (long long)want_all.cost,
           (long long)jint(j, "local_traded_wh"), (long long)jint(j, "cost_uc"));
    json_decref(j);
}

enum {
    C_HOME,
    C_GROUP,
    C_MEASURED,
    C_LOAD,
    C_PV,
    C_SOLD,
    C_BOUGHT,
    C_IMPORT,
    C_EXPORT,
    C_BASE_IMPORT,
    C_BASE_EXPORT,
    C_CHARGED,
    C_DISCHARGED,
    C_COST,
    C_BASE_COST,
    C_SAVINGS,
    N_COLS
};

static void test_homes_csv(void **state)
{
    (void)state;
    if (!have_data)
        skip();
    char line[1024];
    FILE *fp = fopen(OUT "/homes.csv", "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    assert_string_equal(line, "home,group,measured,load_wh,pv_wh,local_sold_wh,local_bought_wh,"
                              "grid_import_wh,grid_export_wh,baseline_grid_import_wh,"
                              "baseline_grid_export_wh,battery_charged_wh,battery_discharged_wh,"
                              "cost_uc,baseline_cost_uc,savings_uc\n");
    int64_t sold = 0, bought = 0;
    json_t *j = load_summary();
    for (size_t h = 0; h < HOMES; h++) {
        char name[64], group[64];
        long long v[N_COLS];
        assert_non_null(fgets(line, sizeof line, fp));
        int n = sscanf(line,
                       "%63[^,],%63[^,],%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,"
                       "%lld,%lld,%lld",
                       name, group, &v[C_MEASURED], &v[C_LOAD], &v[C_PV], &v[C_SOLD], &v[C_BOUGHT],
                       &v[C_IMPORT], &v[C_EXPORT], &v[C_BASE_IMPORT], &v[C_BASE_EXPORT],
                       &v[C_CHARGED], &v[C_DISCHARGED], &v[C_COST], &v[C_BASE_COST], &v[C_SAVINGS]);
        assert_int_equal(n, N_COLS);
        char want_name[64];
        snprintf(want_name, sizeof want_name, "ausgrid-%zu", h + 1);
        assert_string_equal(name, want_name);
        assert_string_equal(group, "ausgrid");
        assert_int_equal(v[C_MEASURED], 1);
        assert_int_equal(v[C_LOAD], want[h].load);
        assert_int_equal(v[C_PV], want[h].pv);
        assert_int_equal(v[C_BASE_IMPORT], want[h].import);
        assert_int_equal(v[C_BASE_EXPORT], want[h].export_);
        assert_int_equal(v[C_BASE_COST], want[h].cost);
        assert_int_equal(v[C_CHARGED], 0);
        assert_int_equal(v[C_DISCHARGED], 0);
        /* the settled exchange is the gap between contract and meter (docs/simulator.md) */
        assert_int_equal(v[C_IMPORT] - v[C_EXPORT],
                         (v[C_SOLD] - v[C_BOUGHT]) - (want[h].export_ - want[h].import));
        assert_true(v[C_SOLD] >= 0 && v[C_BOUGHT] >= 0 && v[C_IMPORT] >= 0 && v[C_EXPORT] >= 0);
        assert_int_equal(v[C_SAVINGS], v[C_BASE_COST] - v[C_COST]);
        sold += v[C_SOLD];
        bought += v[C_BOUGHT];
    }
    assert_null(fgets(line, sizeof line, fp));
    fclose(fp);
    /* local contracts net to zero: what was sold was bought, and that is the traded energy */
    assert_int_equal(sold, bought);
    assert_int_equal(sold, jint(j, "local_traded_wh"));
    json_decref(j);
}

static void test_unknown_home_fails(void **state)
{
    (void)state;
    const char *bad = MGX_BINARY_DIR "/test-sim-ausgrid-bad.csv";
    const char *errf = MGX_BINARY_DIR "/test-sim-ausgrid-bad.err";
    FILE *fp = fopen(bad, "w");
    assert_non_null(fp);
    /* line 3 names a fourth home; the scenario has ausgrid-1 .. ausgrid-3 */
    fputs("# one row too many\ntimestamp,home,load_wh,pv_wh\n"
          "2011-07-01 00:00:00,ausgrid-4,10,0\n",
          fp);
    fclose(fp);
    assert_int_equal(tst_sh("'%s' sim '%s' --data '%s' --out '%s/test-sim-ausgrid-bad' --no-plots "
                         "--quiet 2> '%s'",
                         mgx_bin, SCENARIO, bad, MGX_BINARY_DIR, errf),
                     1);
    char msg[2048] = "", want_at[512];
    fp = fopen(errf, "r");
    assert_non_null(fp);
    size_t n = fread(msg, 1, sizeof msg - 1, fp);
    msg[n] = '\0';
    fclose(fp);
    snprintf(want_at, sizeof want_at, "%s:3:", bad);
    if (!strstr(msg, want_at) || !strstr(msg, "ausgrid-4"))
        fail_msg("expected '%s' and the home in: %s", want_at, msg);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-MGX\n", argv[0]);
        return 2;
    }
    mgx_bin = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_baseline),
        cmocka_unit_test(test_summary_trading_conserves),
        cmocka_unit_test(test_homes_csv),
        cmocka_unit_test(test_unknown_home_fails),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
