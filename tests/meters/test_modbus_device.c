/*
 * Integration tests of the Modbus client (mgx/modbus_device.h) against real libmodbus servers
 * on loopback (modbus_sim.h): SunSpec discovery at each base and through a chain of several
 * models, the Eastron maps, config maps in each word order, and the faults a field device
 * shows: no reply, exception replies, a wrong byte count, a connection dropped mid-frame, NaN,
 * negative, wrapped and reset counters. Every expected value is worked out in a comment.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "mgx/modbus_device.h"
#include "modbus_sim.h"
#include "config_text.h"

/* A clock the test moves by hand, so plausibility bounds are exact. */
static int64_t fake_now(void *ctx)
{
    return *(int64_t *)ctx;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static mtr_device_config tcp_dev(const char *id, mtr_profile prof, int port, int unit)
{
    mtr_device_config d;
    mtr_device_config_default(&d);
    snprintf(d.id, sizeof d.id, "%s", id);
    d.profile = prof;
    d.port = port;
    d.unit = unit;
    d.timeout_ms = 200;
    d.retries = 1;
    d.retry_backoff_ms = 10;
    return d;
}

static int read_once(mtr_device *dev, int64_t *now, mtr_sample *s, int *fresh)
{
    return mtr_device_read(dev, NULL, fake_now, now, s, fresh);
}

/* ---- SunSpec ---- */

static void put_string(tms_server *srv, int unit, uint16_t addr, const char *text)
{
    uint16_t r[16] = {0};
    for (size_t i = 0; i < strlen(text) && i < 32; i++)
        r[i / 2] |= (uint16_t)((unsigned char)text[i] << (i % 2 ? 0 : 8));
    tms_set(srv, unit, 3, addr, r, 16);
}

/* Common model 1 with make/model/serial, then a meter 203 with known values. */
static void sunspec_203(tms_server *srv, int unit, uint16_t base)
{
    uint16_t ids[] = {1, 203}, lens[] = {66, 105}, a[2];
    tms_add_unit(srv, unit, base, 400, 0, 0);
    tms_sunspec(srv, unit, base, ids, lens, 2, a);
    put_string(srv, unit, (uint16_t)(a[0] + 2), "mgx-test");
    put_string(srv, unit, (uint16_t)(a[0] + 18), "M203");
    put_string(srv, unit, (uint16_t)(a[0] + 50), "SN42");
    /* W = 1234 x 10^-1 = 123.4 -> 123 W; counters 123456 and 7890 x 10^1 Wh */
    uint16_t w[] = {1234}, wsf[] = {(uint16_t)-1}, whsf[] = {1};
    tms_set(srv, unit, 3, (uint16_t)(a[1] + 18), w, 1);
    tms_set(srv, unit, 3, (uint16_t)(a[1] + 22), wsf, 1);
    tms_set_u32(srv, unit, 3, (uint16_t)(a[1] + 46), 123456);
    tms_set_u32(srv, unit, 3, (uint16_t)(a[1] + 38), 7890);
    tms_set(srv, unit, 3, (uint16_t)(a[1] + 54), whsf, 1);
}

static void sunspec_each_base(void **state)
{
    (void)state;
    const uint16_t bases[] = {40000, 50000, 0};
    for (int b = 0; b < 3; b++) {
        tms_server *srv = tms_start();
        assert_non_null(srv);
        sunspec_203(srv, 1, bases[b]);
        mtr_device_config c = tcp_dev("ss", MTR_PROFILE_SUNSPEC, tms_port(srv), 1);
        mtr_device *dev = mtr_device_new(&c);
        int64_t now = 1700000000000;
        mtr_sample s;
        int fresh = 0;
        assert_int_equal(read_once(dev, &now, &s, &fresh), MTR_OK);
        assert_string_equal(s.meter_id, "ss");
        assert_int_equal(s.ts_ms, now);
        assert_int_equal(s.power_w, 123);
        assert_int_equal(s.import_wh, 1234560);
        assert_int_equal(s.export_wh, 78900);
        assert_int_equal(s.soc_permille, -1);
        assert_int_equal(s.quality, MTR_Q_GOOD);
        assert_int_equal(fresh, 1);
        const mtr_meta *m = mtr_device_meta(dev);
        assert_string_equal(m->make, "mgx-test");
        assert_string_equal(m->model, "M203");
        assert_string_equal(m->serial, "SN42");
        assert_string_equal(m->profile, "sunspec");
        /* the chain is cached: a second poll is one read of the meter model, meta not again */
        unsigned before = tms_requests(srv);
        now += 1000;
        assert_int_equal(read_once(dev, &now, &s, &fresh), MTR_OK);
        assert_int_equal(fresh, 0);
        assert_int_equal(tms_requests(srv) - before, 1);
        mtr_device_free(dev);
        tms_stop(srv);
    }
}

static void sunspec_chain(void **state)
{
    (void)state;
    tms_server *srv = tms_start();
    assert_non_null(srv);
    /* unit 1: 1, 103, 203, 124, 802, 213: the first meter model (203) gives power and
     * counters, the battery model 802 the state of charge */
    uint16_t ids[] = {1, 103, 203, 124, 802, 213}, lens[] = {66, 50, 105, 24, 62, 124}, a[6];
    tms_add_unit(srv, 1, 40000, 600, 0, 0);
    tms_sunspec(srv, 1, 40000, ids, lens, 6, a);
    uint16_t w[] = {(uint16_t)-2500}, zero[] = {0}, soc[] = {655}, socsf[] = {(uint16_t)-1};
    tms_set(srv, 1, 3, (uint16_t)(a[2] + 18), w, 1);     /* 203 W = -2500 W (export) */
    tms_set(srv, 1, 3, (uint16_t)(a[2] + 22), zero, 1);  /* W_SF 0 */
    tms_set_u32(srv, 1, 3, (uint16_t)(a[2] + 46), 5000); /* TotWhImp */
    tms_set_u32(srv, 1, 3, (uint16_t)(a[2] + 38), 6000); /* TotWhExp */
    tms_set(srv, 1, 3, (uint16_t)(a[2] + 54), zero, 1);
    tms_set(srv, 1, 3, (uint16_t)(a[4] + 11), soc, 1);   /* 802 SoC 655 x 10^-1 % = 65.5 % */
    tms_set(srv, 1, 3, (uint16_t)(a[4] + 56), socsf, 1);
    uint16_t cha[] = {20};
    tms_set(srv, 1, 3, (uint16_t)(a[3] + 8), cha, 1);    /* 124 (not used: 802 wins) 20 % */

    /* unit 2: 1, 113, 213, 124: float meter 213, storage 124 for the soc */
    uint16_t ids2[] = {1, 113, 213, 124}, lens2[] = {65, 60, 124, 24}, b[4];
    tms_add_unit(srv, 2, 40000, 600, 0, 0);
    tms_sunspec(srv, 2, 40000, ids2, lens2, 4, b);
    tms_set_float(srv, 2, 3, (uint16_t)(b[2] + 28), -1500.25f);   /* -> -1500 W */
    tms_set_float(srv, 2, 3, (uint16_t)(b[2] + 68), 1000000.0f);  /* TotWhImp */
    tms_set_float(srv, 2, 3, (uint16_t)(b[2] + 60), 2500.5f);     /* -> 2501 (half away) */
    uint16_t cha2[] = {805}, chasf[] = {(uint16_t)-1};            /* 80.5 % -> 805 permille */
    tms_set(srv, 2, 3, (uint16_t)(b[3] + 8), cha2, 1);
    tms_set(srv, 2, 3, (uint16_t)(b[3] + 22), chasf, 1);

    /* unit 3: inverter only (103): generation 3000 W is export; lifetime 5e6 Wh exported */
    uint16_t ids3[] = {1, 103}, lens3[] = {66, 50}, c3[2];
    tms_add_unit(srv, 3, 50000, 200, 0, 0);
    tms_sunspec(srv, 3, 50000, ids3, lens3, 2, c3);
    uint16_t iw[] = {300}, iwsf[] = {1};
    tms_set(srv, 3, 3, (uint16_t)(c3[1] + 14), iw, 1);
    tms_set(srv, 3, 3, (uint16_t)(c3[1] + 15), iwsf, 1);
    tms_set_u32(srv, 3, 3, (uint16_t)(c3[1] + 24), 5000000);
    tms_set(srv, 3, 3, (uint16_t)(c3[1] + 26), zero, 1);

    /* unit 4: float inverter 113 only, chain ended by an exception instead of 0xFFFF (the
     * window ends right after the model) */
    uint16_t ids4[] = {1, 113}, lens4[] = {66, 60}, d4[2];
    tms_add_unit(srv, 4, 40000, 2 + 68 + 62, 0, 0);
    uint16_t marker[2] = {0x5375, 0x6E53}, h1[2] = {1, 66}, h2[2] = {113, 60};
    tms_set(srv, 4, 3, 40000, marker, 2);
    tms_set(srv, 4, 3, 40002, h1, 2);
    tms_set(srv, 4, 3, 40070, h2, 2);
    d4[1] = 40070;
    (void)ids4, (void)lens4;
    tms_set_float(srv, 4, 3, (uint16_t)(d4[1] + 22), 812.5f);  /* -> -813 W (half away) */
    tms_set_float(srv, 4, 3, (uint16_t)(d4[1] + 32), 42.0f);

    struct {
        int unit;
        int64_t power, imp, exp;
        int32_t soc;
    } want[] = {{1, -2500, 5000, 6000, 655},
                {2, -1500, 1000000, 2501, 805},
                {3, -3000, 0, 5000000, -1},
                {4, -813, 0, 42, -1}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        mtr_device_config c = tcp_dev("chain", MTR_PROFILE_SUNSPEC, tms_port(srv), want[i].unit);
        mtr_device *dev = mtr_device_new(&c);
        int64_t now = 1700000000000;
        mtr_sample s;
        int rc = read_once(dev, &now, &s, NULL);
        if (rc)
            fprintf(stderr, "unit %d: %s\n", want[i].unit, mtr_device_error(dev));
        assert_int_equal(rc, MTR_OK);
        assert_int_equal(s.power_w, want[i].power);
        assert_int_equal(s.import_wh, want[i].imp);
        assert_int_equal(s.export_wh, want[i].exp);
        assert_int_equal(s.soc_permille, want[i].soc);
        assert_int_equal(s.quality, MTR_Q_GOOD);
        mtr_device_free(dev);
    }
    /* battery = yes on a device without one: flagged not implemented */
    mtr_device_config c = tcp_dev("nobat", MTR_PROFILE_SUNSPEC, tms_port(srv), 3);
    c.battery = MTR_BATTERY_YES;
    mtr_device *dev = mtr_device_new(&c);
    int64_t now = 1;
    mtr_sample s;
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.quality, MTR_Q_NOT_IMPLEMENTED);
    mtr_device_free(dev);
    tms_stop(srv);
}

static void sunspec_not_implemented_and_absent(void **state)
{
    (void)state;
    tms_server *srv = tms_start();
    assert_non_null(srv);
    sunspec_203(srv, 1, 40000);
    /* W = 0x8000 ("not implemented" int16): power flagged, counters still good */
    uint16_t na[] = {0x8000};
    tms_set(srv, 1, 3, 40002 + 68 + 18, na, 1);
    mtr_device_config c = tcp_dev("na", MTR_PROFILE_SUNSPEC, tms_port(srv), 1);
    mtr_device *dev = mtr_device_new(&c);
    int64_t now = 1;
    mtr_sample s;
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.quality, MTR_Q_NOT_IMPLEMENTED);
    assert_int_equal(s.power_w, 0);
    assert_int_equal(s.import_wh, 1234560);
    /* TotWh_SF = 0x8000: both counters not implemented, the last good totals are shown */
    tms_set(srv, 1, 3, 40002 + 68 + 54, na, 1);
    now += 1000;
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.quality, MTR_Q_NOT_IMPLEMENTED);
    assert_int_equal(s.import_wh, 1234560);
    assert_int_equal(s.export_wh, 78900);
    mtr_device_free(dev);

    /* a unit without any SunSpec marker, and one with only a common model */
    tms_add_unit(srv, 2, 0, 100, 0, 0);
    c = tcp_dev("none", MTR_PROFILE_SUNSPEC, tms_port(srv), 2);
    dev = mtr_device_new(&c);
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_E_NOT_SUNSPEC);
    assert_int_equal(s.quality, MTR_Q_COMM);
    assert_non_null(strstr(mtr_device_error(dev), "SunSpec"));
    mtr_device_free(dev);
    uint16_t ids[] = {1}, lens[] = {66};
    tms_add_unit(srv, 3, 40000, 100, 0, 0);
    tms_sunspec(srv, 3, 40000, ids, lens, 1, NULL);
    c = tcp_dev("common-only", MTR_PROFILE_SUNSPEC, tms_port(srv), 3);
    dev = mtr_device_new(&c);
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_E_NO_MODEL);
    mtr_device_free(dev);
    tms_stop(srv);
}

/* ---- Eastron ---- */

static void sdm_profiles(void **state)
{
    (void)state;
    tms_server *srv = tms_start();
    assert_non_null(srv);
    const mtr_profile profs[] = {MTR_PROFILE_SDM630, MTR_PROFILE_SDM120, MTR_PROFILE_SDM72};
    const uint16_t power_at[] = {0x0034, 0x000C, 0x0034};
    const unsigned reads[] = {1, 2, 1}; /* SDM120: 0x0C..0x4B is 64 registers > 60 */
    for (int i = 0; i < 3; i++) {
        int unit = 10 + i;
        tms_add_unit(srv, unit, 0, 0, 0, 0x100);
        tms_set_float(srv, unit, 4, power_at[i], -1234.5f);  /* exact in float: -1235 W */
        tms_set_float(srv, unit, 4, 0x0048, 12345.678f);     /* 12345.677734 kWh -> 12345678 */
        tms_set_float(srv, unit, 4, 0x004A, 42.5f);          /* 42500 Wh */
        mtr_device_config c = tcp_dev("sdm", profs[i], tms_port(srv), unit);
        mtr_device *dev = mtr_device_new(&c);
        int64_t now = 1;
        mtr_sample s;
        int fresh;
        unsigned before = tms_requests(srv);
        assert_int_equal(read_once(dev, &now, &s, &fresh), MTR_OK);
        assert_int_equal(tms_requests(srv) - before, reads[i]);
        assert_int_equal(s.power_w, -1235);
        assert_int_equal(s.import_wh, 12345678);
        assert_int_equal(s.export_wh, 42500);
        assert_int_equal(s.quality, MTR_Q_GOOD);
        assert_int_equal(fresh, 1);
        assert_string_equal(mtr_device_meta(dev)->make, "Eastron");
        /* NaN in the import register: flagged, the last good total is published */
        uint16_t nan_regs[2] = {0x7FC0, 0x0000};
        tms_set(srv, unit, 4, 0x0048, nan_regs, 2);
        now += 1000;
        assert_int_equal(read_once(dev, &now, &s, &fresh), MTR_OK);
        assert_int_equal(s.quality, MTR_Q_NAN);
        assert_int_equal(s.import_wh, 12345678);
        mtr_device_free(dev);
    }
    tms_stop(srv);
}

/* ---- config maps in each word order ---- */

static void config_maps_word_orders(void **state)
{
    (void)state;
    tms_server *srv = tms_start();
    assert_non_null(srv);
    char text[4096];
    int port = tms_port(srv);
    /* Hand-encoded words per order (bytes A B C D of the big-endian value):
     *  power  int32 -123456 = 0xFFFE1DC0   import uint32 74565 = 0x00012345 (x 10 = 745650 Wh)
     *  export float 230.5   = 0x43668000 (kWh x 1000 = 230500 Wh)
     *  soc    uint16 655    = 0x028F (x 0.1 = 65.5 % = 655 permille; byte-swapped as 0x8F02) */
    static const uint16_t words[4][7] = {
        /* abcd */ {0xFFFE, 0x1DC0, 0x0001, 0x2345, 0x4366, 0x8000, 0x028F},
        /* cdab */ {0x1DC0, 0xFFFE, 0x2345, 0x0001, 0x8000, 0x4366, 0x028F},
        /* badc */ {0xFEFF, 0xC01D, 0x0100, 0x4523, 0x6643, 0x0080, 0x8F02},
        /* dcba */ {0xC01D, 0xFEFF, 0x4523, 0x0100, 0x0080, 0x6643, 0x8F02}};
    static const char *const orders[4] = {"abcd", "cdab", "badc", "dcba"};
    size_t len = 0;
    for (int o = 0; o < 4; o++) {
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "[map m-%s]\n"
                                "power = holding:100 int32 %s\n"
                                "import = holding:102 uint32 %s scale=10\n"
                                "export = holding:104 float32 %s scale=1000\n"
                                "soc = holding:106 uint16 %s scale=0.1\n"
                                "[meter dev-%s]\nprofile = map:m-%s\nhost = 127.0.0.1\n"
                                "port = %d\nunit = %d\n",
                                orders[o], orders[o], orders[o], orders[o], orders[o], orders[o],
                                orders[o], port, 20 + o);
        tms_add_unit(srv, 20 + o, 100, 8, 0, 0);
        tms_set(srv, 20 + o, 3, 100, words[o], 7);
    }
    /* sign: a device that reports export as positive power (an inverter-style CT) */
    len += (size_t)snprintf(text + len, sizeof text - len,
                            "[map inv]\npower = input:0 int16\nexport = input:1 uint16 "
                            "scale=1000\nsign = export_positive\n"
                            "[meter inv-1]\nprofile = map:inv\nhost = 127.0.0.1\nport = %d\n"
                            "unit = 30\n",
                            port);
    tms_add_unit(srv, 30, 0, 0, 0, 4);
    uint16_t inv[2] = {500, 7};
    tms_set(srv, 30, 4, 0, inv, 2);
    mtr_config *cfg = tst_meters_config(text);
    assert_int_equal(mtr_config_count(cfg), 5);
    for (size_t i = 0; i < 4; i++) {
        mtr_device *dev = mtr_device_new(mtr_config_device(cfg, i));
        int64_t now = 1;
        mtr_sample s;
        assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
        assert_int_equal(s.power_w, -123456);
        assert_int_equal(s.import_wh, 745650);
        assert_int_equal(s.export_wh, 230500);
        assert_int_equal(s.soc_permille, 655);
        assert_int_equal(s.quality, MTR_Q_GOOD);
        mtr_device_free(dev);
    }
    mtr_device *dev = mtr_device_new(mtr_config_device(cfg, 4));
    int64_t now = 1;
    mtr_sample s;
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.power_w, -500); /* exporting 500 W */
    assert_int_equal(s.import_wh, 0);  /* absent counter */
    assert_int_equal(s.export_wh, 7000);
    mtr_device_free(dev);
    mtr_config_free(cfg);
    tms_stop(srv);
}

/* ---- faults ---- */

static void fault_no_reply_exception_frame_drop(void **state)
{
    (void)state;
    tms_server *srv = tms_start();
    assert_non_null(srv);
    tms_add_unit(srv, 1, 0, 0, 0, 0x100);
    tms_set_float(srv, 1, 4, 0x0034, 100.0f);
    tms_set_float(srv, 1, 4, 0x0048, 1.0f);
    tms_set_float(srv, 1, 4, 0x004A, 2.0f);
    mtr_device_config c = tcp_dev("f", MTR_PROFILE_SDM630, tms_port(srv), 1);
    mtr_device *dev = mtr_device_new(&c);
    int64_t now = 1000;
    mtr_sample s;
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.import_wh, 1000);

    /* no reply: two attempts of 200 ms each (retries = 1), then MTR_E_TIMEOUT */
    tms_fault_set(srv, 1, TMS_SILENT, 0);
    int64_t t0 = mono_ms();
    now += 1000;
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_E_TIMEOUT);
    int64_t took = mono_ms() - t0;
    assert_true(took >= 400 && took < 2000);
    assert_int_equal(s.quality, MTR_Q_COMM);
    assert_int_equal(s.import_wh, 1000); /* last good total kept */
    assert_int_equal(s.export_wh, 2000);
    assert_non_null(strstr(mtr_device_error(dev), "after 2 attempts"));

    /* exception 4 (device failure) is final: one request, no retry */
    tms_fault_set(srv, 1, TMS_EXCEPTION, 4);
    unsigned before = tms_requests(srv);
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_E_EXCEPTION);
    assert_int_equal(tms_requests(srv) - before, 1);
    assert_non_null(strstr(mtr_device_error(dev), "exception 4"));
    /* exception 6 (busy) is retried */
    tms_fault_set(srv, 1, TMS_EXCEPTION, 6);
    before = tms_requests(srv);
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_E_EXCEPTION);
    assert_int_equal(tms_requests(srv) - before, 2);

    /* a reply two bytes short in its byte count */
    tms_fault_set(srv, 1, TMS_BAD_COUNT, 0);
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_E_FRAME);
    assert_int_equal(s.quality, MTR_Q_COMM);

    /* the connection dropped in the middle of the reply, then the device recovers: the
     * client reconnects by itself */
    tms_fault_set(srv, 1, TMS_DROP, 0);
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_E_CLOSED);
    tms_fault_set(srv, 1, TMS_OK, 0);
    unsigned acc = tms_accepts(srv);
    now += 1000;
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(tms_accepts(srv), acc + 1);
    assert_int_equal(s.quality, MTR_Q_GOOD);
    assert_int_equal(s.power_w, 100);
    mtr_device_free(dev);

    /* nobody listening: connect fails */
    mtr_device_config dead = tcp_dev("dead", MTR_PROFILE_SDM630, tst_free_port(), 1);
    dev = mtr_device_new(&dead);
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_E_CONNECT);
    assert_int_equal(s.quality, MTR_Q_COMM);
    mtr_device_free(dev);
    tms_stop(srv);
}

/* A config map with a uint32 Wh import counter, read at a hand-moved clock. */
static void fault_counters(void **state)
{
    (void)state;
    tms_server *srv = tms_start();
    assert_non_null(srv);
    tms_add_unit(srv, 1, 0, 8, 0, 0);
    char text[512];
    snprintf(text, sizeof text,
             "[map ctr]\npower = holding:0 int16\nimport = holding:2 uint32\n"
             "export = holding:4 int32\n"
             "[meter c]\nprofile = map:ctr\nhost = 127.0.0.1\nport = %d\nrated_current_a = 10\n"
             "phases = 1\nvoltage_v = 230\n",
             tms_port(srv));
    mtr_config *cfg = tst_meters_config(text);
    mtr_device *dev = mtr_device_new(mtr_config_device(cfg, 0));
    int64_t now = 1700000000000;
    mtr_sample s;
    /* bound for 60 s at 10 A x 230 V: ceil(2300 x 60000 / 3.6e6) = 39 Wh, + slack 10 + tick 1 = 50 */
    tms_set_u32(srv, 1, 3, 2, 4294967290u); /* 6 Wh below the uint32 wrap */
    tms_set_u32(srv, 1, 3, 4, 100);
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.quality, MTR_Q_GOOD);
    assert_int_equal(s.import_wh, INT64_C(4294967290));
    /* wrapped: 4294967290 -> 20 is +26 Wh in 60 s: a rollover, the total keeps growing */
    now += 60000;
    tms_set_u32(srv, 1, 3, 2, 20);
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.quality, MTR_Q_ROLLOVER);
    assert_int_equal(s.import_wh, INT64_C(4294967296) + 20);
    /* +49 Wh in 60 s is within the bound of 50; +51 is a jump */
    now += 60000;
    tms_set_u32(srv, 1, 3, 2, 69);
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.quality, MTR_Q_GOOD);
    now += 60000;
    tms_set_u32(srv, 1, 3, 2, 170); /* +101 Wh over 60 s, bound 50: rejected */
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_true(s.quality & MTR_Q_JUMP);
    /* back on track: checked against the last accepted value (69, 120 s ago): +81 Wh within
     * ceil(2300 x 120000 / 3.6e6) = 77 + 11 = 88 */
    tms_set_u32(srv, 1, 3, 2, 150);
    now += 60000;
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.quality, MTR_Q_GOOD);
    assert_int_equal(s.import_wh, INT64_C(4294967296) + 150);
    /* negative export counter (int32) */
    tms_set_u32(srv, 1, 3, 4, (uint32_t)-5);
    now += 60000;
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.quality, MTR_Q_NEGATIVE);
    /* meter reset: 150 -> 3 (near zero): new baseline, the delta is not counted */
    tms_set_u32(srv, 1, 3, 4, 100);
    tms_set_u32(srv, 1, 3, 2, 3);
    now += 60000;
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.quality, MTR_Q_RESET);
    assert_int_equal(s.import_wh, INT64_C(4294967296) + 150);
    tms_set_u32(srv, 1, 3, 2, 13);
    now += 60000;
    assert_int_equal(read_once(dev, &now, &s, NULL), MTR_OK);
    assert_int_equal(s.quality, MTR_Q_GOOD);
    assert_int_equal(s.import_wh, INT64_C(4294967296) + 160);
    mtr_device_free(dev);
    mtr_config_free(cfg);
    tms_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sunspec_each_base),
        cmocka_unit_test(sunspec_chain),
        cmocka_unit_test(sunspec_not_implemented_and_absent),
        cmocka_unit_test(sdm_profiles),
        cmocka_unit_test(config_maps_word_orders),
        cmocka_unit_test(fault_no_reply_exception_frame_drop),
        cmocka_unit_test(fault_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
