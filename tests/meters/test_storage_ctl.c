/*
 * Storage control (mgx/storage_ctl.h): the model 124 and control-map encodings against values
 * worked by hand, and the write / read back / release cycle against real libmodbus servers on
 * loopback: setpoints land in the device's registers and are read back; an exception reply, a
 * device that acknowledges writes and ignores them, a lost connection each end in released
 * control with the reason; a read-only device gets no write request at all; writes closer than
 * the rate limit are skipped.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "mgx/modbus_device.h"
#include "mgx/storage_ctl.h"
#include "modbus_sim.h"

/* ---- encodings ---- */

static void encode_124_known_answers(void **state)
{
    (void)state;
    uint16_t mod, out, in;
    /* WChaMax 5000 W (SF 0), rates in hundredths of a percent (SF -2) */
    mtr_storage_124_caps c = {5000, 0, -2};
    assert_int_equal(mtr_storage_encode_124(&c, 2500, &mod, &out, &in), MTR_OK);
    assert_int_equal(mod, 3);
    assert_int_equal((int16_t)in, 5000);   /* 50.00 % */
    assert_int_equal((int16_t)out, -5000); /* forced: discharge limit negative */
    /* 1234 W of 5000: 24.68 %; discharge: OutWRte positive, InWRte negative */
    assert_int_equal(mtr_storage_encode_124(&c, -1234, &mod, &out, &in), MTR_OK);
    assert_int_equal((int16_t)out, 2468);
    assert_int_equal((int16_t)in, -2468);
    /* 1 W of 5000 is 0.02 %; 3 W of 7 kW (SF 3 on 7): 0.0428.. % -> 4 hundredths, toward 0 */
    assert_int_equal(mtr_storage_encode_124(&c, 1, &mod, &out, &in), MTR_OK);
    assert_int_equal((int16_t)in, 2);
    mtr_storage_124_caps k = {7, 3, -2};
    assert_int_equal(mtr_storage_encode_124(&k, 3, &mod, &out, &in), MTR_OK);
    assert_int_equal((int16_t)in, 4);
    /* WChaMax 50 x 10^2 W, whole percent: 2500 W = 50 %; over the maximum clamps to 100 % */
    mtr_storage_124_caps w = {50, 2, 0};
    assert_int_equal(mtr_storage_encode_124(&w, 2500, &mod, &out, &in), MTR_OK);
    assert_int_equal((int16_t)in, 50);
    assert_int_equal(mtr_storage_encode_124(&w, -9000, &mod, &out, &in), MTR_OK);
    assert_int_equal((int16_t)out, 100);
    assert_int_equal((int16_t)in, -100);
    assert_int_equal(mtr_storage_encode_124(&w, 0, &mod, &out, &in), MTR_OK);
    assert_int_equal(in, 0);
    assert_int_equal(out, 0);
    assert_int_equal(mod, 3); /* hold: both limits at 0 */
    /* not implemented or absurd scale: refused */
    mtr_storage_124_caps ni = {0xFFFF, 0, -2}, z = {0, 0, 0}, sf = {5000, (int16_t)0x8000, 0};
    assert_int_equal(mtr_storage_encode_124(&ni, 100, &mod, &out, &in), MTR_E_RANGE);
    assert_int_equal(mtr_storage_encode_124(&z, 100, &mod, &out, &in), MTR_E_RANGE);
    assert_int_equal(mtr_storage_encode_124(&sf, 100, &mod, &out, &in), MTR_E_RANGE);
}

/* The simulated inverter's side: registers back to watts. */
static void decode_124_known_answers(void **state)
{
    (void)state;
    mtr_storage_124_caps c = {5000, 0, -2};
    int64_t w = 7;
    /* 24.68 % of 5000 W discharging (InWRte -2468, OutWRte 2468) */
    assert_int_equal(mtr_storage_decode_124(&c, 3, 2468, (uint16_t)-2468, &w), 1);
    assert_int_equal(w, -1234);
    /* only the discharge limit active: -OutWRte */
    assert_int_equal(mtr_storage_decode_124(&c, 2, 5000, 0, &w), 1);
    assert_int_equal(w, -2500);
    /* its own mode */
    assert_int_equal(mtr_storage_decode_124(&c, 0, 2468, 2468, &w), 0);
    assert_int_equal(w, 0);
    /* 0.03 % of 7 x 10^3 W = 2.1 W: toward zero */
    mtr_storage_124_caps k = {7, 3, -2};
    assert_int_equal(mtr_storage_decode_124(&k, 3, 0, 3, &w), 1);
    assert_int_equal(w, 2);
    /* whole percent of 50 x 10^2 W */
    mtr_storage_124_caps p = {50, 2, 0};
    assert_int_equal(mtr_storage_decode_124(&p, 1, 0, 50, &w), 1);
    assert_int_equal(w, 2500);
    /* every encoding of a whole-watt setpoint on a 5 kW inverter decodes to itself */
    for (int64_t set = -5000; set <= 5000; set += 1) {
        uint16_t mod, out, in;
        assert_int_equal(mtr_storage_encode_124(&c, set, &mod, &out, &in), MTR_OK);
        assert_int_equal(mtr_storage_decode_124(&c, mod, out, in, &w), 1);
        if (w != set / 2 * 2 && w != set)
            fail_msg("%lld W decoded as %lld", (long long)set, (long long)w);
    }
    mtr_storage_124_caps ni = {0xFFFF, 0, -2};
    assert_int_equal(mtr_storage_decode_124(&ni, 3, 0, 0, &w), MTR_E_RANGE);
}

static void encode_map_known_answers(void **state)
{
    (void)state;
    mtr_storage_config m = {.kind = MTR_STORAGE_MAP, .fc = 16, .power_type = MTR_CTL_INT16,
                            .w_per_count = 10};
    uint16_t r[2];
    int n = 0;
    assert_int_equal(mtr_storage_encode_map(&m, -1505, r, &n), MTR_OK);
    assert_int_equal(n, 1);
    assert_int_equal((int16_t)r[0], -150); /* toward zero */
    m.power_type = MTR_CTL_INT32;
    m.w_per_count = 1;
    assert_int_equal(mtr_storage_encode_map(&m, -70000, r, &n), MTR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(r[0], 0xFFFE); /* -70000 = 0xFFFEEE90 */
    assert_int_equal(r[1], 0xEE90);
    m.power_type = MTR_CTL_UINT16;
    assert_int_equal(mtr_storage_encode_map(&m, -1, r, &n), MTR_E_RANGE);
    m.power_type = MTR_CTL_INT16;
    assert_int_equal(mtr_storage_encode_map(&m, 40000, r, &n), MTR_E_RANGE);
}

/* ---- against a real Modbus server ---- */

typedef struct {
    tms_server *srv;
    mtr_link *link;
    uint16_t body; /* model 124's first body register */
} rig;

static mtr_device_config link_cfg(int port)
{
    mtr_device_config d;
    mtr_device_config_default(&d);
    snprintf(d.id, sizeof d.id, "inv");
    d.profile = MTR_PROFILE_SUNSPEC;
    d.port = port;
    d.unit = 1;
    d.timeout_ms = 300;
    d.retries = 1;
    d.retry_backoff_ms = 10;
    return d;
}

/* A SunSpec inverter with models 1 and 124 (WChaMax 5000 W, rates in 0.01 %) on unit 1. */
static void start_rig(rig *r)
{
    r->srv = tms_start();
    assert_non_null(r->srv);
    tms_add_unit(r->srv, 1, 40000, 200, 0, 0);
    const uint16_t ids[] = {1, 124}, lens[] = {66, 24};
    uint16_t a[2];
    tms_sunspec(r->srv, 1, 40000, ids, lens, 2, a);
    r->body = (uint16_t)(a[1] + 2);
    uint16_t wmax = 5000, sf = (uint16_t)-2;
    tms_set(r->srv, 1, 3, (uint16_t)(r->body + MTR_124_WCHAMAX), &wmax, 1);
    tms_set(r->srv, 1, 3, (uint16_t)(r->body + MTR_124_INOUTWRTE_SF), &sf, 1);
    mtr_device_config d = link_cfg(tms_port(r->srv));
    r->link = mtr_link_new(&d);
    assert_non_null(r->link);
}

static void stop_rig(rig *r)
{
    mtr_link_free(r->link);
    if (r->srv)
        tms_stop(r->srv);
}

static uint16_t dev_reg(rig *r, unsigned off)
{
    uint16_t v = 0;
    tms_get(r->srv, 1, 3, (uint16_t)(r->body + off), &v, 1);
    return v;
}

static void sunspec_setpoints_land(void **state)
{
    (void)state;
    rig r;
    start_rig(&r);
    mtr_storage_config cfg = {.kind = MTR_STORAGE_SUNSPEC, .unit = 1, .revert_s = 900};
    mtr_storage_ctl *c = mtr_storage_ctl_new(&cfg, r.link);
    assert_non_null(c);
    assert_int_equal(mtr_storage_ctl_set(c, 2500, 0), MTR_OK);
    assert_true(mtr_storage_ctl_in_control(c));
    assert_int_equal(dev_reg(&r, MTR_124_STORCTL_MOD), 3);
    assert_int_equal((int16_t)dev_reg(&r, MTR_124_INWRTE), 5000);
    assert_int_equal((int16_t)dev_reg(&r, MTR_124_OUTWRTE), -5000);
    assert_int_equal(dev_reg(&r, MTR_124_RVRTTMS), 900); /* the inverter's own watchdog */
    assert_int_equal(mtr_storage_ctl_set(c, -1234, 1000), MTR_OK);
    assert_int_equal((int16_t)dev_reg(&r, MTR_124_OUTWRTE), 2468);
    assert_int_equal(mtr_storage_ctl_power_w(c), -1234);
    assert_int_equal(mtr_storage_ctl_release(c), MTR_OK);
    assert_false(mtr_storage_ctl_in_control(c));
    assert_int_equal(dev_reg(&r, MTR_124_STORCTL_MOD), 0);
    mtr_storage_stats st;
    mtr_storage_ctl_stats(c, &st);
    assert_int_equal(st.setpoints, 2);
    assert_int_equal(st.releases, 1);
    assert_int_equal(st.failures, 0);
    mtr_storage_ctl_free(c);
    stop_rig(&r);
}

static void failures_release_control(void **state)
{
    (void)state;
    rig r;
    start_rig(&r);
    mtr_storage_config cfg = {.kind = MTR_STORAGE_SUNSPEC, .unit = 1};
    mtr_storage_ctl *c = mtr_storage_ctl_new(&cfg, r.link);
    assert_int_equal(mtr_storage_ctl_set(c, 1000, 0), MTR_OK);
    assert_int_equal(dev_reg(&r, MTR_124_STORCTL_MOD), 3);

    /* the device refuses writes (exception 4): failed, and control is not claimed */
    tms_fault_set(r.srv, 1, TMS_WRITE_EXCEPTION, 4);
    assert_int_equal(mtr_storage_ctl_set(c, 2000, 1000), MTR_E_EXCEPTION);
    assert_false(mtr_storage_ctl_in_control(c));
    assert_non_null(strstr(mtr_storage_ctl_error(c), "exception 4"));

    /* it acknowledges the setpoint but keeps the old one: the read-back catches it */
    tms_fault_set(r.srv, 1, TMS_IGNORE_WRITES, 0);
    assert_int_equal(mtr_storage_ctl_set(c, 3000, 2000), MTR_E_READBACK);
    assert_false(mtr_storage_ctl_in_control(c));
    assert_non_null(strstr(mtr_storage_ctl_error(c), "read back"));

    /* the device answers again: a release after a failure reaches it */
    tms_fault_set(r.srv, 1, TMS_OK, 0);
    assert_int_equal(mtr_storage_ctl_set(c, 3000, 3000), MTR_OK);
    tms_fault_set(r.srv, 1, TMS_IGNORE_WRITES, 0);
    uint16_t mod = 0;
    (void)mod;
    assert_int_equal(mtr_storage_ctl_set(c, 4000, 4000), MTR_E_READBACK);
    tms_fault_set(r.srv, 1, TMS_OK, 0);
    assert_int_equal(mtr_storage_ctl_release(c), MTR_OK);
    assert_int_equal(dev_reg(&r, MTR_124_STORCTL_MOD), 0);

    /* connection lost: the set fails with the link's reason */
    tms_stop(r.srv);
    r.srv = NULL;
    int rc = mtr_storage_ctl_set(c, 500, 5000);
    assert_true(rc == MTR_E_CONNECT || rc == MTR_E_CLOSED || rc == MTR_E_TIMEOUT);
    assert_false(mtr_storage_ctl_in_control(c));
    mtr_storage_stats st;
    mtr_storage_ctl_stats(c, &st);
    assert_int_equal(st.failures, 4);
    assert_int_equal(st.setpoints, 2);
    mtr_storage_ctl_free(c);
    stop_rig(&r);
}

static void read_only_never_written(void **state)
{
    (void)state;
    rig r;
    start_rig(&r);
    mtr_storage_config cfg = {.kind = MTR_STORAGE_SUNSPEC, .unit = 1, .read_only = 1};
    mtr_storage_ctl *c = mtr_storage_ctl_new(&cfg, r.link);
    unsigned before = tms_requests(r.srv);
    assert_int_equal(mtr_storage_ctl_set(c, 2500, 0), MTR_E_READONLY);
    assert_int_equal(mtr_storage_ctl_release(c), MTR_E_READONLY);
    assert_int_equal(tms_requests(r.srv), before); /* not even a read */
    assert_int_equal(tms_writes(r.srv), 0);
    assert_int_equal(dev_reg(&r, MTR_124_STORCTL_MOD), 0);
    mtr_storage_ctl_free(c);
    stop_rig(&r);
}

static void writes_rate_limited(void **state)
{
    (void)state;
    rig r;
    start_rig(&r);
    mtr_storage_config cfg = {.kind = MTR_STORAGE_SUNSPEC, .unit = 1, .min_write_interval_ms = 1000};
    mtr_storage_ctl *c = mtr_storage_ctl_new(&cfg, r.link);
    assert_int_equal(mtr_storage_ctl_set(c, 1000, 10000), MTR_OK);
    unsigned w = tms_writes(r.srv);
    assert_int_equal(mtr_storage_ctl_set(c, 2000, 10500), MTR_OK); /* 500 ms later: skipped */
    assert_int_equal(tms_writes(r.srv), w);
    assert_int_equal(mtr_storage_ctl_power_w(c), 1000);
    assert_int_equal(mtr_storage_ctl_set(c, 2000, 11000), MTR_OK); /* 1 s later: written */
    assert_true(tms_writes(r.srv) > w);
    assert_int_equal(mtr_storage_ctl_power_w(c), 2000);
    mtr_storage_stats st;
    mtr_storage_ctl_stats(c, &st);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.setpoints, 2);
    mtr_storage_ctl_free(c);
    stop_rig(&r);
}

/* A control map: a signed power register (fc 6, 10 W per count) and a mode register. */
static void control_map(void **state)
{
    (void)state;
    tms_server *srv = tms_start();
    assert_non_null(srv);
    tms_add_unit(srv, 3, 100, 10, 0, 0);
    mtr_device_config d = link_cfg(tms_port(srv));
    d.profile = MTR_PROFILE_MAP;
    mtr_link *link = mtr_link_new(&d);
    mtr_storage_config cfg = {.kind = MTR_STORAGE_MAP, .unit = 3, .fc = 6,
                              .power_addr = 104, .power_type = MTR_CTL_INT16, .w_per_count = 10,
                              .has_mode = 1, .mode_addr = 105, .mode_control = 2,
                              .mode_release = 0};
    mtr_storage_ctl *c = mtr_storage_ctl_new(&cfg, link);
    assert_non_null(c);
    assert_int_equal(mtr_storage_ctl_set(c, -1500, 0), MTR_OK);
    uint16_t v[2];
    tms_get(srv, 3, 3, 104, v, 2);
    assert_int_equal((int16_t)v[0], -150);
    assert_int_equal(v[1], 2);
    assert_int_equal(mtr_storage_ctl_release(c), MTR_OK);
    tms_get(srv, 3, 3, 105, v, 1);
    assert_int_equal(v[0], 0);
    /* fc 6 carries one register: an int32 map is refused at construction */
    cfg.power_type = MTR_CTL_INT32;
    assert_null(mtr_storage_ctl_new(&cfg, link));
    mtr_storage_ctl_free(c);
    mtr_link_free(link);
    tms_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_124_known_answers),
        cmocka_unit_test(decode_124_known_answers),
        cmocka_unit_test(encode_map_known_answers),
        cmocka_unit_test(sunspec_setpoints_land),
        cmocka_unit_test(failures_release_control),
        cmocka_unit_test(read_only_never_written),
        cmocka_unit_test(writes_rate_limited),
        cmocka_unit_test(control_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
