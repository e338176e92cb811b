/*
 * The home agent's battery dispatch (controller/agent/agent_battery.h) in process against a real
 * libmodbus server playing an inverter without SunSpec controls: a control map from the
 * [battery] section (power register, mode register, state-of-charge register). The plan's
 * setpoint lands in the device's registers; an exception reply to every request, a device that
 * refuses writes, one that acknowledges them but keeps its registers (read-back mismatch) and a
 * lost connection each end with control released (the release write reaches the device, or is
 * owed and written first when it answers again); a read-only device gets no write request at
 * all. A meter that goes silent for meter_silence_intervals releases control until readings
 * come back.
 *
 * The numbers: 900 s intervals, a 10 kWh / 4 kW battery at 90.0 % (register 110 = 900 in 0.1 %
 * steps), a home that imports 1000 Wh per interval, retail 300000 uc/kWh with a 450000 peak
 * 17:00-21:00 UTC. Interval k is complete, so the plan starts at k + 2 = 17:00: the battery
 * (8000 Wh above its 10 % floor) discharges into the peak, a negative setpoint, at most 4000 W.
 */
#define _POSIX_C_SOURCE 200809L
#include "agent/agent_battery.h"
#include "common/config.h"
#include "mgx/dispatch.h"
#include "common/log.h"

#include "modbus_sim.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define UNIT 3
#define IV_S 900
/* interval 1920066 ends at 16:45 UTC of its day (1920066 % 96 = 66): k + 2 starts at 17:00 */
#define K0 INT64_C(1920066)

static char logbuf[65536];

static void sink(void *user, int level, const char *msg)
{
    (void)user, (void)level;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "%s\n", msg);
}

static ctl_log test_log = {"agent", CTL_LOG_DEBUG, sink, NULL};

static void load(agb_config *c, int port, const char *extra)
{
    char text[2048], err[256];
    snprintf(text, sizeof text,
             "[battery]\nhost = 127.0.0.1\nport = %d\nunit = %d\ntimeout_ms = 300\n"
             "capacity_wh = 10000\npower_w = 4000\nretail_peak_uc_per_kwh = 450000\n"
             "peak_start_h = 17\npeak_end_h = 21\ncontrol = map\npower_register = 104\n"
             "power_type = int16\nw_per_count = 10\nmode_register = 105\nmode_control = 2\n"
             "mode_release = 0\nsoc_register = 110\nsoc_function = 4\nsoc_bp_per_count = 10\n%s",
             port, UNIT, extra ? extra : "");
    cfg_loader *l = cfg_loader_new();
    assert_non_null(l);
    assert_int_equal(agb_add(l, c), CFG_OK);
    if (cfg_load_string(l, "b.ini", text, strlen(text), err, sizeof err) != CFG_OK)
        fail_msg("config: %s", err);
    cfg_loader_free(l);
}

static tms_server *inverter(void)
{
    tms_server *s = tms_start();
    assert_non_null(s);
    tms_add_unit(s, UNIT, 100, 20, 100, 20);
    uint16_t soc = 900; /* 90.0 % */
    tms_set(s, UNIT, 4, 110, &soc, 1);
    return s;
}

static agb *dispatcher(const agb_config *c)
{
    char err[256];
    agb *b = agb_new(c, NULL, IV_S, 80000, 300000, &test_log, err, sizeof err);
    if (!b)
        fail_msg("agb_new: %s", err);
    return b;
}

static uint16_t reg(tms_server *s, uint16_t addr)
{
    uint16_t v = 0;
    tms_get(s, UNIT, 3, addr, &v, 1);
    return v;
}

/* The setpoint stands in the device: power register = power / 10 W, mode = control (2). */
static void expect_control(tms_server *s, agb *b)
{
    agb_stats st;
    agb_get_stats(b, &st);
    assert_true(st.in_control);
    assert_false(st.owe_release);
    assert_true(st.power_w < 0 && st.power_w >= -4000); /* discharging into the peak */
    assert_int_equal(st.power_w % 10, 0); /* what the register can say: no Wh lost in rounding */
    assert_int_equal((int16_t)reg(s, 104), st.power_w / 10);
    assert_int_equal(reg(s, 105), 2);
}

/* The last write request the device received was the release (mode register = 0). */
static void expect_release_asked(tms_server *s, agb *b, unsigned writes_before)
{
    agb_stats st;
    agb_get_stats(b, &st);
    assert_false(st.in_control);
    uint16_t addr = 0, value = 99;
    assert_true(tms_writes(s) > writes_before);
    assert_int_not_equal(tms_last_write(s, UNIT, &addr, &value), 0);
    assert_int_equal(addr, 105);
    assert_int_equal(value, 0);
}

static void map_setpoints_and_faults(void **state)
{
    (void)state;
    logbuf[0] = '\0';
    tms_server *s = inverter();
    agb_config c;
    load(&c, tms_port(s), NULL);
    agb *b = dispatcher(&c);
    int64_t k = K0;
    agb_on_interval(b, k++, -1000, 0);
    expect_control(s, b);
    agb_stats st;
    agb_get_stats(b, &st);
    assert_int_equal(st.setpoints, 1);
    assert_non_null(strstr(logbuf, "control map"));
    /* what the orders are made from: the home's 1000 Wh less the discharge it was told */
    int64_t grid = 0, batt = 0;
    assert_true(agb_expected_net(b, K0, K0 + 2, &grid, &batt));
    assert_int_equal(batt, st.power_w * IV_S / 3600);
    assert_int_equal(grid, 1000 + batt);
    assert_false(agb_expected_net(b, K0, K0 + 1, &grid, &batt)); /* before the plan */
    assert_false(agb_expected_net(b, K0 - 1, K0 + 2, &grid, &batt)); /* not this plan's k */

    /* an exception reply to every request (6: busy): no state of charge, control released */
    unsigned w = tms_writes(s);
    tms_fault_set(s, UNIT, TMS_EXCEPTION, 6);
    agb_on_interval(b, k++, -1000, 900000);
    expect_release_asked(s, b, w);
    agb_get_stats(b, &st);
    assert_true(st.owe_release); /* the device answered the release with an exception too */
    assert_int_equal(reg(s, 105), 2);
    assert_non_null(strstr(logbuf, "exception 6"));
    /* it answers again: the owed release first, then the new setpoint */
    tms_fault_set(s, UNIT, TMS_OK, 0);
    agb_on_interval(b, k++, -1000, 1800000);
    expect_control(s, b);
    assert_non_null(
        strstr(logbuf, "a release not yet confirmed (a failure, or the start): control released"));

    /* the device refuses writes (exception 1, illegal function) */
    w = tms_writes(s);
    tms_fault_set(s, UNIT, TMS_WRITE_EXCEPTION, 1);
    agb_on_interval(b, k++, -1000, 2700000);
    expect_release_asked(s, b, w);
    agb_get_stats(b, &st);
    assert_int_equal(st.failures, 1);
    tms_fault_set(s, UNIT, TMS_OK, 0);
    agb_on_interval(b, k++, -1000, 3600000);
    expect_control(s, b);

    /* it acknowledges writes and keeps its registers: the read-back differs */
    uint16_t zero = 0;
    tms_set(s, UNIT, 3, 104, &zero, 1); /* the device dropped the setpoint on its own */
    w = tms_writes(s);
    tms_fault_set(s, UNIT, TMS_IGNORE_WRITES, 0);
    agb_on_interval(b, k++, -1000, 4500000);
    expect_release_asked(s, b, w);
    agb_get_stats(b, &st);
    assert_int_equal(st.failures, 2);
    assert_non_null(strstr(logbuf, "read back power"));
    tms_fault_set(s, UNIT, TMS_OK, 0);
    agb_on_interval(b, k++, -1000, 5400000);
    expect_control(s, b);

    /* the connection is lost: not in control, the release owed */
    tms_stop(s);
    agb_on_interval(b, k++, -1000, 6300000);
    agb_get_stats(b, &st);
    assert_false(st.in_control);
    assert_true(st.owe_release);
    assert_non_null(strstr(logbuf, "no state of charge"));
    agb_free(b);
}

/* read_only = yes: the plan is made from the state of charge it reads, and nothing is written,
 * not even at the agent's stop. */
static void read_only_never_written(void **state)
{
    (void)state;
    logbuf[0] = '\0';
    tms_server *s = inverter();
    agb_config c;
    load(&c, tms_port(s), "read_only = yes\n");
    agb *b = dispatcher(&c);
    for (int64_t k = K0; k < K0 + 4; k++)
        agb_on_interval(b, k, -1000, (k - K0) * 900000);
    agb_stats st;
    agb_get_stats(b, &st);
    assert_int_equal(st.plans, 4);
    assert_false(st.in_control);
    /* the inverter keeps its own mode: the orders expect self-consumption, which discharges */
    int64_t grid = 0, batt = 0;
    assert_true(agb_expected_net(b, K0 + 3, K0 + 5, &grid, &batt));
    assert_true(batt < 0);
    assert_int_equal(grid, 1000 + batt);
    agb_free(b);
    assert_true(tms_requests(s) >= 4); /* the state of charge was read */
    assert_int_equal(tms_writes(s), 0);
    assert_int_equal(reg(s, 105), 0);
    tms_stop(s);
}

/* The meter goes silent (meter_silence_intervals = 2: more than 1800 s without a reading):
 * control is released once, counted, and dispatch resumes when readings come back. */
static void silent_meter_releases(void **state)
{
    (void)state;
    logbuf[0] = '\0';
    tms_server *s = inverter();
    agb_config c;
    load(&c, tms_port(s), NULL);
    agb *b = dispatcher(&c);
    int64_t t = 1000000;
    agb_meter_tick(b, true, t, t);
    agb_on_interval(b, K0, -1000, t);
    expect_control(s, b);
    /* 1800 s without a reading is still within the limit */
    agb_meter_tick(b, true, t, t + 1800000);
    agb_stats st;
    agb_get_stats(b, &st);
    assert_true(st.in_control);
    assert_false(st.silent);
    unsigned w = tms_writes(s);
    agb_meter_tick(b, true, t, t + 1800001);
    expect_release_asked(s, b, w);
    assert_int_equal(reg(s, 105), 0); /* the inverter's own mode */
    agb_get_stats(b, &st);
    assert_true(st.silent);
    assert_int_equal(st.meter_silences, 1);
    assert_non_null(strstr(logbuf, "meter silent, 1 time(s) so far"));
    /* still silent: nothing more is written, nothing counted twice */
    w = tms_writes(s);
    agb_meter_tick(b, true, t, t + 3600000);
    assert_int_equal(tms_writes(s), w);
    agb_get_stats(b, &st);
    assert_int_equal(st.meter_silences, 1);
    /* readings again: the next complete interval takes control */
    agb_meter_tick(b, true, t + 3700000, t + 3700000);
    agb_get_stats(b, &st);
    assert_false(st.silent);
    assert_non_null(strstr(logbuf, "meter readings are back"));
    agb_on_interval(b, K0 + 4, -1000, t + 3700000);
    expect_control(s, b);
    /* meter_silence_intervals = 0: never */
    agb_free(b);
    load(&c, tms_port(s), "meter_silence_intervals = 0\n");
    b = dispatcher(&c);
    agb_on_interval(b, K0, -1000, t);
    agb_meter_tick(b, true, t, t + 86400000);
    expect_control(s, b);
    agb_free(b);
    tms_stop(s);
}

/* A setpoint left standing by an earlier run (the agent was killed) is released at the first
 * interval even when the new agent does not take control (a gain it never expects). */
static void stale_setpoint_released(void **state)
{
    (void)state;
    logbuf[0] = '\0';
    tms_server *s = inverter();
    uint16_t stale[2] = {(uint16_t)-300, 2}; /* -3000 W, external control */
    tms_set(s, UNIT, 3, 104, stale, 2);
    agb_config c;
    load(&c, tms_port(s), "min_gain_uc = 1000000000\n");
    agb *b = dispatcher(&c);
    agb_on_interval(b, K0, -1000, 0);
    agb_stats st;
    agb_get_stats(b, &st);
    assert_false(st.in_control);
    assert_false(st.owe_release);
    assert_int_equal(reg(s, 105), 0);
    assert_non_null(strstr(logbuf, "(a failure, or the start): control released"));
    agb_free(b);
    tms_stop(s);
}

/* The [battery] map keys and their cross-checks. */
static void map_config(void **state)
{
    (void)state;
    agb_config c;
    load(&c, 502, NULL);
    assert_true(c.map);
    assert_int_equal(c.power_register, 104);
    assert_int_equal(c.power_function, 16);
    assert_int_equal(c.soc_function, 4);
    assert_int_equal(c.meter_silence_intervals, 2);
    const char *bad[][2] = {
        {"[battery]\nhost = h\ncapacity_wh = 1\npower_w = 1\npower_register = 3\n",
         "b.ini:1: [battery] power_register, mode_*, soc_* and the like are for a control map: "
         "add control = map"},
        {"[battery]\nhost = h\ncapacity_wh = 1\npower_w = 1\ncontrol = map\npower_register = 3\n",
         "b.ini:1: [battery] control = map needs power_register and soc_register"},
        {"[battery]\nhost = h\ncapacity_wh = 1\npower_w = 1\ncontrol = map\npower_register = 3\n"
         "soc_register = 4\nmode_register = 5\n",
         "b.ini:1: [battery] mode_register, mode_control and mode_release go together"},
        {"[battery]\nhost = h\ncapacity_wh = 1\npower_w = 1\ncontrol = map\npower_register = 3\n"
         "soc_register = 4\npower_function = 6\npower_type = int32\n",
         "b.ini:1: [battery] power_type int32 takes two registers: power_function 16"},
        {"[battery]\ncontrol = modbus\n", "b.ini:2: control: 'modbus' is not sunspec or map"},
        {"[battery]\npower_function = 3\n", "b.ini:2: power_function: function 3: only 6 or 16"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        cfg_loader *l = cfg_loader_new();
        agb_add(l, &c);
        assert_int_not_equal(cfg_load_string(l, "b.ini", bad[i][0], strlen(bad[i][0]), err,
                                             sizeof err),
                             CFG_OK);
        assert_string_equal(err, bad[i][1]);
        cfg_loader_free(l);
    }
}

/*
 * The fitted forecast (a PV source configured) makes the simulator's decision: three days of a
 * home (500 Wh of load, a winter PV hump below it, its battery at its floor, metered
 * discharging 100 Wh at 13:00 as the battery meter sees it) fed to
 * the agent as its meters see it and, in the same numbers, straight to sim_dispatch as
 * `battery_policy = schedule` with `schedule_lead = 2` does (sim/src/engine.c: the same
 * battery, forecaster, horizon, guard and shadow efficiency); both decide k + 2 after every
 * interval k. Every decision's setpoint is what the agent wrote (to the map's 10 W) or both
 * leave control to the inverter, and the expected exchange is the decision's. Plans start on
 * day 3 (a day of history, a day for the paper battery to show plans pay).
 */
static void fitted_decision_is_the_simulators(void **state)
{
    (void)state;
    logbuf[0] = '\0';
    tms_server *s = inverter();
    uint16_t soc = 100; /* 10.0 %: 1000 Wh, the floor */
    tms_set(s, UNIT, 4, 110, &soc, 1);
    agb_config c;
    load(&c, tms_port(s), NULL);
    agb_site site = {48.0, 8.0, 30.0, 180.0, true};
    char err[256];
    agb *b = agb_new(&c, &site, IV_S, 80000, 300000, &test_log, err, sizeof err);
    assert_non_null(b);
    assert_true(agb_fitted(b));
    int64_t m0 = agb_fit_midnight(b, K0);
    assert_int_equal(m0, K0 + 30); /* 1920096 % 96 == 0: 00:00 UTC */
    assert_int_equal(agb_fit_midnight(b, m0), m0);
    assert_int_equal(agb_fit_first(b), INT64_MIN);
    assert_true(agb_fit_start(b, m0));
    assert_int_equal(agb_fit_first(b), m0);
    assert_non_null(strstr(logbuf, "measures from interval 1920096, 1000 Wh stored"));
    /* the simulator's side, by hand */
    uint32_t eff = (uint32_t)llround(sqrt(0.9) * 1000.0);
    sim_plan_battery pb = {1000, 9000, 1000, 1000, 1000, eff, eff, SIM_PLAN_NO_CAP,
                           SIM_PLAN_NO_CAP, 80000 * (int64_t)eff / 1000, 0};
    sim_dispatch_config dc = {.fc = {48.0, 8.0, 30.0, 180.0, IV_S, 14, 4},
                              .forecast = SIM_DISPATCH_FIT,
                              .horizon = 96,
                              .min_gain_uc = 0,
                              .utc_offset_min = 0,
                              .shadow_eta = sqrt(0.9),
                              .spread_intervals = 240 * 60 / IV_S}; /* spread_min's default */
    sim_dispatch *d = sim_dispatch_new(&dc, &pb);
    assert_non_null(d);
    int64_t imp[96], exp[96];
    const int64_t zero = 0;
    size_t decisions = 0, planned = 0;
    for (int64_t m = m0; m < m0 + 3 * 96; m++) {
        int64_t slot = m % 96, pv = 0;
        if (slot >= 28 && slot < 76) /* 07:00-19:00: a winter hump peaking at 13:00 */
            pv = 400 - 15 * (slot > 52 ? slot - 52 : 52 - slot);
        int64_t batt = slot == 52 ? -100 : 0, load_wh = 500;
        int64_t grid = load_wh - pv + batt;
        agb_fit_observe(b, m, grid, pv, true, batt);
        int64_t retail = (m * IV_S / 3600) % 24 >= 17 && (m * IV_S / 3600) % 24 < 21 ? 450000
                                                                                       : 300000;
        sim_dispatch_observe(d, m * IV_S, pv, load_wh, grid, retail, 80000);
        for (int j = 0; j < 96; j++) {
            int64_t h = ((m + 2 + j) * IV_S / 3600) % 24;
            imp[j] = h >= 17 && h < 21 ? 450000 : 300000;
            exp[j] = 80000;
        }
        sim_dispatch_decision dd;
        assert_int_equal(sim_dispatch_decide(d, m * IV_S, 2, 1000, &zero, imp, exp, &dd), 0);
        agb_fit_decide(b, m, 0);
        decisions++;
        agb_stats st;
        agb_get_stats(b, &st);
        int64_t g = 0, bw = 0;
        assert_true(agb_expected_net(b, m, m + 2, &g, &bw));
        if (!dd.planned) {
            assert_false(st.in_control);
            assert_int_equal(g, dd.net_wh);
            assert_int_equal(bw, dd.setpoint_wh);
            continue;
        }
        planned++;
        assert_true(st.in_control);
        assert_int_equal(st.power_w, dd.setpoint_wh * 4 / 10 * 10);
        assert_int_equal(bw, st.power_w * IV_S / 3600);
        assert_int_equal(g, dd.forecast_net_wh + bw);
    }
    printf("fitted: %zu decisions, %zu planned, all the simulator's\n", decisions, planned);
    assert_true(planned > 0);
    sim_dispatch_free(d);
    agb_free(b);
    tms_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_config),
        cmocka_unit_test(map_setpoints_and_faults),
        cmocka_unit_test(read_only_never_written),
        cmocka_unit_test(silent_meter_releases),
        cmocka_unit_test(stale_setpoint_released),
        cmocka_unit_test(fitted_decision_is_the_simulators),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
