/*
 * Unit tests of the device config (mgx/device_config.h): the shipped example loads with the
 * documented defaults, errors name file and line (also for checks across sections), and the
 * key-by-key API tells the daemon which sections are not the meters library's.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "mgx/device_config.h"
#include "mgx/meter_error.h"

static char *g_dir;

static int load(const char *text, mtr_config **cfg, char *err, size_t errlen)
{
    char path[512];
    snprintf(path, sizeof path, "%s/m.ini", g_dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return mtr_config_load(path, cfg, err, errlen);
}

/* The error for text, which must name m.ini:LINE and contain want. */
static void expect_error(const char *text, int line, const char *want)
{
    mtr_config *cfg = NULL;
    char err[512], where[64];
    assert_int_equal(load(text, &cfg, err, sizeof err), MTR_E_CONFIG);
    assert_null(cfg);
    snprintf(where, sizeof where, "m.ini:%d: ", line);
    if (!strstr(err, where) || !strstr(err, want))
        fprintf(stderr, "got '%s', want '%s' and '%s'\n", err, where, want);
    assert_non_null(strstr(err, where));
    assert_non_null(strstr(err, want));
}

static void example_file(void **state)
{
    (void)state;
    mtr_config *cfg = NULL;
    char err[512];
    int rc = mtr_config_load(MGX_SOURCE_DIR "/config/meters-example.ini", &cfg, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, MTR_OK);
    assert_true(mtr_config_count(cfg) >= 5);
    const mtr_device_config *inv = mtr_config_find(cfg, "roof-inverter");
    assert_non_null(inv);
    assert_int_equal(inv->profile, MTR_PROFILE_SUNSPEC);
    assert_int_equal(inv->port, 502);
    assert_int_equal(inv->phases, 3);
    const mtr_device_config *a = mtr_config_find(cfg, "flat-1");
    const mtr_device_config *b = mtr_config_find(cfg, "flat-2");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->transport, MTR_RTU);
    assert_string_equal(a->device, b->device);
    assert_int_equal(a->phases, 1); /* sdm120 default */
    assert_true(a->inter_unit_pause_ms > 0);
    const mtr_device_config *c = mtr_config_find(cfg, "heat-pump");
    assert_non_null(c);
    assert_int_equal(c->profile, MTR_PROFILE_MAP);
    assert_non_null(c->map);
    assert_true(c->map->power.present);
    mtr_config_free(cfg);
}

static void defaults(void **state)
{
    (void)state;
    mtr_config *cfg = NULL;
    char err[512];
    assert_int_equal(load("[meter a]\nprofile = sdm630\nhost = 10.0.0.5\n", &cfg, err, sizeof err),
                     MTR_OK);
    const mtr_device_config *d = mtr_config_device(cfg, 0);
    assert_string_equal(d->id, "a");
    assert_int_equal(d->port, 502);
    assert_int_equal(d->unit, 1);
    assert_int_equal(d->poll_ms, 1000);
    assert_int_equal(d->timeout_ms, 500);
    assert_int_equal(d->retries, 2);
    assert_int_equal(d->phases, 3);
    assert_int_equal(d->line, 1);
    assert_non_null(d->map);
    mtr_counter_params p;
    mtr_device_counter_params(d, &p);
    assert_int_equal(p.max_power_w, 100 * 230 * 3);
    assert_null(mtr_config_device(cfg, 1));
    mtr_config_free(cfg);
}

static void errors_name_the_line(void **state)
{
    (void)state;
    expect_error("[meter a]\nprofile = sdm630\nhost = h\nport = 70000\n", 4, "port");
    expect_error("[meter a]\nprofile = nope\nhost = h\n", 2, "profile");
    expect_error("[meter a]\nprofile = sdm630\nhost = h\ncolour = red\n", 4, "unknown key");
    expect_error("[meter a]\nprofile = sdm630\nhost = h\nhost = h2\n", 4, "duplicate");
    expect_error("[meter a]\nhost = h\n", 1, "needs a profile");
    expect_error("[meter a]\nprofile = sdm630\n", 1, "needs a host");
    expect_error("[meter bad id!]\nprofile = sdm630\n", 1, "bad meter id");
    expect_error("[bus]\nhost = h\n", 1, "unknown section");
    expect_error("[meter a]\nprofile = map:x\nhost = h\n", 2, "no [map x]");
    expect_error("[map x]\nimport = input:0 uint32\n[meter a]\nprofile = map:x\nhost = h\n", 1,
                 "needs power");
    expect_error("[map x]\npower = input:0 int17\n", 2, "unexpected 'int17'");
    expect_error("[map x]\npower = coil:0 int16\n", 2, "'coil'");
    expect_error("[map x]\npower = input:0 int16 scale=0\n", 2, "bad scale");
    expect_error("[map x]\npower = input:65535 int32\n", 2, "past address 65535");
    expect_error("[meter a]\nprofile = sdm120\ntransport = rtu\ndevice = /dev/ttyUSB0\n"
                 "[meter b]\nprofile = sdm120\ntransport = rtu\ndevice = /dev/ttyUSB0\n"
                 "unit = 2\nbaud = 19200\n",
                 10, "shares /dev/ttyUSB0"); /* the line of b's baud */
    expect_error("[meter a]\nprofile = sdm120\ntransport = rtu\ndevice = /dev/ttyUSB0\n"
                 "[meter b]\nprofile = sdm120\ntransport = rtu\ndevice = /dev/ttyUSB0\n",
                 5, "same unit 1");
    expect_error("[meter a]\nprofile = sdm630\nhost = h\nno equals sign\n", 4, "syntax error");
}

static void handle_api(void **state)
{
    (void)state;
    mtr_config *cfg = mtr_config_new();
    char err[256];
    assert_int_equal(mtr_config_handle(cfg, "bus", "host", "x", 1, err, sizeof err),
                     MTR_CFG_NOT_MINE);
    assert_int_equal(mtr_config_handle(cfg, "meters", "x", "y", 1, err, sizeof err),
                     MTR_CFG_NOT_MINE);
    assert_int_equal(mtr_config_handle(cfg, "meter m1", NULL, NULL, 3, err, sizeof err), MTR_OK);
    assert_int_equal(mtr_config_handle(cfg, "meter m1", "profile", "sunspec", 4, err, sizeof err),
                     MTR_OK);
    assert_int_equal(mtr_config_handle(cfg, "meter m1", "unit", "300", 5, err, sizeof err),
                     MTR_E_CONFIG);
    assert_null(strstr(err, ":5:")); /* bare message: the caller adds FILE:LINE */
    assert_non_null(strstr(err, "unit"));
    assert_int_equal(mtr_config_set_source(cfg, "daemon.ini"), MTR_OK);
    assert_int_equal(mtr_config_finish(cfg, err, sizeof err), MTR_E_CONFIG);
    assert_non_null(strstr(err, "daemon.ini:3: "));
    assert_non_null(strstr(err, "needs a host"));
    assert_int_equal(mtr_config_handle(cfg, "meter m1", "host", "h", 6, err, sizeof err), MTR_OK);
    assert_int_equal(mtr_config_finish(cfg, err, sizeof err), MTR_OK);
    assert_int_equal(mtr_config_count(cfg), 1);
    mtr_config_free(cfg);
}

int main(void)
{
    g_dir = tst_tmpdir("devcfg");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(example_file),
        cmocka_unit_test(defaults),
        cmocka_unit_test(errors_name_the_line),
        cmocka_unit_test(handle_api),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tst_rmtree(g_dir);
    free(g_dir);
    return rc;
}
