/*
 * The home forecast (mgx/forecast.h):
 *   - a home whose PV is exactly the clear-sky yield of 5 kWp and whose load is flat: after two
 *     days the fitted scale is 5 kWp and the next day is forecast to the Wh;
 *   - the intraday correction: after a morning at half the fitted PV the next interval is
 *     forecast low, and a day ahead the forecast is back between that and the fitted value;
 *   - nothing before history, and no forecast for an interval already recorded;
 *   - the real Sydney household of ../shared/data (a year at 30 min): the day-ahead and the
 *     next-but-one-interval forecasts against persistence (the same half hour yesterday, and
 *     the last half hour), mean absolute error of PV and load; the forecast must beat
 *     persistence on each (figures printed; docs/agent.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ausgrid_raw.h"
#include "mgx/forecast.h"

#define RAW MGX_SHARED_DATA_DIR "/ausgrid-customer12-2011-2012.csv"

static const sim_fc_config SYDNEY = {-33.87, 151.21, 20, 0, 1800, 14, 4};
#define DAY0 1309442400 /* 2011-07-01 00:00 AEST (UTC+10) */

static void exact_clear_sky_home(void **state)
{
    (void)state;
    sim_fc_config c = SYDNEY;
    c.days = 7;
    sim_fc *f = sim_fc_new(&c);
    assert_non_null(f);
    int64_t t = DAY0;
    for (int i = 0; i < 96; i++, t += 1800)
        sim_fc_observe(f, t, llround(5 * sim_fc_clear_wh_per_kwp(&c, t)), 200);
    assert_true(sim_fc_pv_scale(f) > 4.99 && sim_fc_pv_scale(f) < 5.01);
    int64_t pv[48], load[48];
    assert_int_equal(sim_fc_predict(f, t, 48, pv, load), 0);
    int64_t day_wh = 0;
    for (int i = 0; i < 48; i++) {
        int64_t want = llround(5 * sim_fc_clear_wh_per_kwp(&c, t + 1800 * i));
        assert_true(pv[i] >= want - 1 && pv[i] <= want + 1);
        assert_int_equal(load[i], 200);
        day_wh += pv[i];
    }
    assert_true(day_wh > 10000); /* a clear winter day of 5 kWp in Sydney */
    sim_fc_free(f);
}

static void intraday_correction(void **state)
{
    (void)state;
    sim_fc_config c = SYDNEY;
    sim_fc *f = sim_fc_new(&c);
    int64_t t = DAY0;
    /* two clear days, then a cloudy morning at half until 13:00 */
    for (int i = 0; i < 96 + 26; i++, t += 1800) {
        double k = i < 96 ? 4 : 2;
        sim_fc_observe(f, t, llround(k * sim_fc_clear_wh_per_kwp(&c, t)), 300);
    }
    int64_t pv[48];
    assert_int_equal(sim_fc_predict(f, t, 48, pv, NULL), 0);
    double full0 = 4 * sim_fc_clear_wh_per_kwp(&c, t);
    double fit = sim_fc_pv_scale(f);
    assert_true(fit > 2 && fit < 4);
    /* the next half hour: pulled well below the fitted value, toward what is measured now */
    assert_true((double)pv[0] < 0.85 * fit * full0 / 4);
    assert_true((double)pv[0] > 0.4 * full0);
    /* a day ahead the intraday correction has faded; the last day's index still pulls down */
    double fit47 = fit * sim_fc_clear_wh_per_kwp(&c, t + 47 * 1800);
    assert_true((double)pv[47] < fit47 && (double)pv[47] > 0.6 * fit47);
    assert_true((double)pv[47] / fit47 > (double)pv[0] / (fit * full0 / 4));
    /* an interval already recorded has no forecast */
    assert_int_equal(sim_fc_predict(f, t - 1800, 1, pv, NULL), -1);
    assert_int_equal(sim_fc_predict(f, t + 1, 1, pv, NULL), -1);
    sim_fc_free(f);
}

static void nothing_before_history(void **state)
{
    (void)state;
    sim_fc *f = sim_fc_new(&SYDNEY);
    int64_t pv[4] = {9, 9, 9, 9}, load[4] = {9, 9, 9, 9};
    assert_int_equal(sim_fc_predict(f, DAY0 + 12 * 3600, 4, pv, load), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pv[i], 0);
        assert_int_equal(load[i], 0);
    }
    sim_fc_free(f);
    sim_fc_config bad = SYDNEY;
    bad.interval_s = 7;
    assert_null(sim_fc_new(&bad));
    bad = SYDNEY;
    bad.days = SIM_FC_MAX_DAYS + 1;
    assert_null(sim_fc_new(&bad));
}

#define ROWS 17568

typedef struct {
    double fc, ref;
    double n;
} mae;

static void add(mae *m, int64_t fc, int64_t ref, int64_t actual)
{
    m->fc += (double)llabs(fc - actual);
    m->ref += (double)llabs(ref - actual);
    m->n++;
}

static void measured_household(void **state)
{
    (void)state;
    static double gc[ROWS], gg[ROWS];
    int rows = ausgrid_read_raw(RAW, gc, gg, ROWS);
    if (rows < 0)
        skip();
    assert_int_equal(rows, ROWS);
    static int64_t pv[ROWS], load[ROWS];
    for (int r = 0; r < rows; r++) { /* average kW over the half hour -> Wh */
        pv[r] = llround(gg[r] * 500);
        load[r] = llround(gc[r] * 500);
    }
    sim_fc *f = sim_fc_new(&SYDNEY);
    mae day_pv = {0}, day_ld = {0}, next_pv = {0}, next_ld = {0};
    int warm = 48 * SYDNEY.days;
    for (int r = 0; r < rows; r++) {
        int64_t t = DAY0 + (int64_t)r * 1800;
        if (r >= warm && r % 48 == 0) { /* at local midnight: the whole next day */
            int64_t p[48], l[48];
            assert_int_equal(sim_fc_predict(f, t, 48, p, l), 0);
            for (int i = 0; i < 48 && r + i < rows; i++) {
                add(&day_pv, p[i], pv[r + i - 48], pv[r + i]);
                add(&day_ld, l[i], load[r + i - 48], load[r + i]);
            }
        }
        if (r >= warm && r + 1 < rows) { /* the interval after the next, as the agent plans */
            int64_t p[2], l[2];
            assert_int_equal(sim_fc_predict(f, t, 2, p, l), 0);
            add(&next_pv, p[1], pv[r - 1], pv[r + 1]);
            add(&next_ld, l[1], load[r - 1], load[r + 1]);
        }
        sim_fc_observe(f, t, pv[r], load[r]);
    }
    sim_fc_free(f);
    printf("forecast of a measured Sydney household, %d days, mean absolute error per half hour "
           "(Wh), forecast against persistence:\n",
           rows / 48 - SYDNEY.days);
    printf("  day ahead  PV   %7.1f  %7.1f  (%.0f%% of persistence)\n", day_pv.fc / day_pv.n,
           day_pv.ref / day_pv.n, 100 * day_pv.fc / day_pv.ref);
    printf("  day ahead  load %7.1f  %7.1f  (%.0f%%)\n", day_ld.fc / day_ld.n,
           day_ld.ref / day_ld.n, 100 * day_ld.fc / day_ld.ref);
    printf("  lead 2     PV   %7.1f  %7.1f  (%.0f%%)\n", next_pv.fc / next_pv.n,
           next_pv.ref / next_pv.n, 100 * next_pv.fc / next_pv.ref);
    printf("  lead 2     load %7.1f  %7.1f  (%.0f%%)\n", next_ld.fc / next_ld.n,
           next_ld.ref / next_ld.n, 100 * next_ld.fc / next_ld.ref);
    assert_true(day_pv.fc < day_pv.ref);
    assert_true(day_ld.fc < day_ld.ref);
    assert_true(next_pv.fc < next_pv.ref);
    assert_true(next_ld.fc < next_ld.ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_clear_sky_home),
        cmocka_unit_test(intraday_correction),
        cmocka_unit_test(nothing_before_history),
        cmocka_unit_test(measured_household),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
