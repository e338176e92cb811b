/*
 * The Modbus client trusts no reply (issue 17): against a hostile device (hostile_modbus.h)
 * every misbehaviour is refused - the poll fails with quality COMM, the last good totals
 * stay, the error names the endpoint, the unit and the cause - and a normal reply after it is
 * read again. The values a forged frame carries differ from the good ones (power 1700 W
 * instead of 1500 W), so a client that believed one would show it. Also: one deadline bounds
 * a dripping reply, bytes left behind a reply are never read as the next one, and `mgx meter
 * --once` runs without [bus] and says why each device failed, once.
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "files.h"
#include "hostile_modbus.h"
#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "mgx/modbus_device.h"
#include "mgx/sdm.h"
#include "shell.h"

#define GOOD_W 1500
#define GOOD_IMPORT_WH 12500 /* 12.5 kWh, exact in float32 */
#define GOOD_EXPORT_WH 2000

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

typedef struct {
    thd_server *srv;
    mtr_device_config cfg;
    mtr_link *link;
    mtr_device *dev;
    int64_t now;
    char ep[64]; /* "127.0.0.1:PORT unit 1: ", the start of every read error */
} fixture;

/* An SDM630 at unit 1; forged frames say 1700 W with the same counters (a plausible reading:
 * only the refusal keeps it out). */
static void fixture_open(fixture *f, int timeout_ms, int retries)
{
    memset(f, 0, sizeof *f);
    f->srv = thd_start();
    assert_non_null(f->srv);
    thd_set_float(f->srv, MTR_SDM_POWER, GOOD_W, 1700.0f);
    thd_set_float(f->srv, MTR_SDM_IMPORT, 12.5f, 12.5f);
    thd_set_float(f->srv, MTR_SDM_EXPORT, 2.0f, 2.0f);
    mtr_device_config_default(&f->cfg);
    snprintf(f->cfg.id, sizeof f->cfg.id, "h");
    f->cfg.profile = MTR_PROFILE_SDM630;
    f->cfg.port = thd_port(f->srv);
    f->cfg.unit = 1;
    f->cfg.timeout_ms = timeout_ms;
    f->cfg.retries = retries;
    f->cfg.retry_backoff_ms = 10;
    f->link = mtr_link_new(&f->cfg);
    f->dev = mtr_device_new(&f->cfg);
    assert_non_null(f->link);
    assert_non_null(f->dev);
    f->now = 1000000;
    snprintf(f->ep, sizeof f->ep, "127.0.0.1:%d unit 1: ", f->cfg.port);
}

static void fixture_close(fixture *f)
{
    mtr_device_free(f->dev);
    mtr_link_free(f->link);
    thd_stop(f->srv);
}

static int poll_once(fixture *f, mtr_sample *s)
{
    f->now += 10000;
    return mtr_device_read(f->dev, f->link, fake_now, &f->now, s, NULL);
}

static void expect_good(fixture *f)
{
    mtr_sample s;
    int rc = poll_once(f, &s);
    if (rc != MTR_OK)
        fail_msg("good reply refused: %s", mtr_device_error(f->dev));
    assert_int_equal(s.quality, MTR_Q_GOOD);
    assert_int_equal(s.power_w, GOOD_W);
    assert_int_equal(s.import_wh, GOOD_IMPORT_WH);
    assert_int_equal(s.export_wh, GOOD_EXPORT_WH);
}

/* The error says each fact once: the code's own description at most once. */
static void expect_said_once(const char *err, int rc)
{
    const char *name = mtr_strerror(rc), *first = strstr(err, name);
    if (first && strstr(first + 1, name))
        fail_msg("said twice: %s", err);
}

static void expect_refused(fixture *f, thd_mode m, int want_rc, const char *want)
{
    mtr_sample s;
    thd_mode_set(f->srv, m, 0);
    int rc = poll_once(f, &s);
    const char *err = mtr_device_error(f->dev);
    if (rc != want_rc || !strstr(err, want) || strncmp(err, f->ep, strlen(f->ep)) != 0)
        fail_msg("mode %d: rc %d (want %d), error \"%s\" (want \"%s%s...\")", (int)m, rc,
                 want_rc, err, f->ep, want);
    assert_int_equal(s.quality, MTR_Q_COMM);
    assert_int_equal(s.import_wh, GOOD_IMPORT_WH); /* the last good totals */
    assert_non_null(strstr(err, "after 2 attempts reading input 52+24"));
    expect_said_once(err, rc);
    thd_mode_set(f->srv, THD_OK, 0);
    expect_good(f);
}

/*
 * Each misbehaviour, then a normal reply. The request is input registers 0x0034 (52) + 24, so
 * a good reply is 9 + 48 = 57 bytes, with a length field of 3 + 48 = 51; the bad-length frame
 * says 53. The garbage starts "HT" = 0x4854 = 18516, read as a transaction id.
 */
static void each_misbehaviour_refused(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, 300, 1);
    expect_good(&f);
    expect_refused(&f, THD_WRONG_UNIT, MTR_E_FRAME, "reply from unit 2, not 1");
    expect_refused(&f, THD_PROTOCOL, MTR_E_FRAME, "reply with protocol id 1, not 0");
    expect_refused(&f, THD_WRONG_TID, MTR_E_FRAME, "reply to transaction");
    expect_refused(&f, THD_STALE_FIRST, MTR_E_FRAME, "(stale or forged frame)");
    expect_refused(&f, THD_GARBAGE, MTR_E_FRAME, "reply to transaction 18516");
    expect_refused(&f, THD_WRONG_FUNCTION, MTR_E_FRAME, "reply with function 3 to a function 4");
    expect_refused(&f, THD_BAD_LENGTH, MTR_E_FRAME, "reply length field 53 does not fit 24");
    expect_refused(&f, THD_TRUNCATE, MTR_E_TIMEOUT,
                   "incomplete reply (timeout): 9 of 57 bytes in 300 ms");
    expect_refused(&f, THD_TRUNCATE_CLOSE, MTR_E_CLOSED,
                   "connection closed by the device after 9 bytes of the reply");
    fixture_close(&f);
}

/*
 * A device dripping its 57-byte reply one byte every 150 ms would take 8.5 s per attempt;
 * with timeout_ms = 300 and one retry the poll ends after about 2 x 300 ms + 10 ms backoff.
 * The bound asserted (3 s) is generous for a busy machine and still far below one drip.
 */
static void dripping_reply_bounded(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, 300, 1);
    expect_good(&f);
    thd_mode_set(f.srv, THD_DRIP, 150);
    mtr_sample s;
    int64_t t0 = mono_ms();
    assert_int_equal(poll_once(&f, &s), MTR_E_TIMEOUT);
    int64_t took = mono_ms() - t0;
    if (took >= 3000)
        fail_msg("a dripping reply held the poll %lld ms", (long long)took);
    assert_int_equal(s.quality, MTR_Q_COMM);
    assert_non_null(strstr(mtr_device_error(f.dev), "incomplete reply (timeout)"));
    assert_non_null(strstr(mtr_device_error(f.dev), " in 300 ms after 2 attempts"));
    thd_mode_set(f.srv, THD_OK, 0);
    expect_good(&f);
    fixture_close(&f);
}

/*
 * A forged frame behind a good reply, carrying the transaction id the next request will use:
 * the transaction check alone would take it. It is drained before the next request (57 bytes
 * counted as stale) and the next poll reads the good values.
 */
static void frame_behind_reply_never_read(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, 300, 0);
    expect_good(&f);
    thd_mode_set(f.srv, THD_EXTRA_AFTER, 0);
    expect_good(&f); /* the reply itself is right */
    thd_mode_set(f.srv, THD_OK, 0);
    uint64_t before = mtr_link_stale_bytes(f.link);
    /* the forged frame was sent in the same write as the reply: it is waiting now */
    expect_good(&f);
    assert_int_equal(mtr_link_stale_bytes(f.link) - before, 57);
    expect_good(&f);
    fixture_close(&f);
}

/*
 * The same on a serial line (RTU, a pseudo-terminal): a reply from another unit is refused
 * at its first byte, a reply cut short times out naming how much came (9 of 5 + 48 = 53
 * bytes), and a reply dripped one byte every 150 ms (8 s in all) ends the poll after 300 ms
 * (bound asserted: 3 s); a normal reply after each reads.
 */
static void serial_refused_and_bounded(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, 300, 1);
    thd_serial *ser = thd_serial_start(f.srv);
    assert_non_null(ser);
    mtr_link_free(f.link);
    mtr_device_free(f.dev);
    f.cfg.transport = MTR_RTU;
    snprintf(f.cfg.device, sizeof f.cfg.device, "%s", thd_serial_path(ser));
    f.link = mtr_link_new(&f.cfg);
    f.dev = mtr_device_new(&f.cfg);
    assert_non_null(f.link);
    snprintf(f.ep, sizeof f.ep, "%s unit 1: ", thd_serial_path(ser));
    expect_good(&f);
    expect_refused(&f, THD_WRONG_UNIT, MTR_E_FRAME, "reply from unit 2, not 1");
    expect_refused(&f, THD_TRUNCATE, MTR_E_TIMEOUT,
                   "incomplete reply (timeout): 9 of 53 bytes in 300 ms");
    /* One attempt: RTU has no transaction id, so on a retry the rest of the old reply, still
     * dripping, would arrive where the new one should start (refused too, by its unit byte,
     * but at whichever byte the timing gives). */
    mtr_device_free(f.dev);
    f.cfg.retries = 0;
    f.dev = mtr_device_new(&f.cfg);
    assert_non_null(f.dev);
    thd_serial_mode_set(ser, THD_DRIP, 150);
    mtr_sample s;
    int64_t t0 = mono_ms();
    assert_int_equal(poll_once(&f, &s), MTR_E_TIMEOUT);
    int64_t took = mono_ms() - t0;
    if (took >= 3000)
        fail_msg("a dripping reply held the poll %lld ms", (long long)took);
    assert_non_null(strstr(mtr_device_error(f.dev), "incomplete reply (timeout)"));
    assert_int_equal(s.quality, MTR_Q_COMM);
    thd_serial_mode_set(ser, THD_OK, 0);
    assert_int_equal(thd_serial_quiet(ser, 10000), 0);
    expect_good(&f);
    mtr_device_free(f.dev);
    mtr_link_free(f.link);
    f.dev = NULL;
    f.link = NULL;
    thd_serial_stop(ser);
    fixture_close(&f);
}

/* A port nothing listens on (bound, then closed). */
static int dead_port(void)
{
    return tst_free_port();
}

/* The connection failures name host:port and the system's reason. */
static void connect_errors_name_endpoint_and_reason(void **state)
{
    (void)state;
    mtr_device_config c;
    mtr_device_config_default(&c);
    snprintf(c.id, sizeof c.id, "x");
    c.profile = MTR_PROFILE_SDM630;
    c.port = dead_port();
    c.unit = 1;
    c.timeout_ms = 300;
    c.retries = 1;
    c.retry_backoff_ms = 10;
    mtr_device *d = mtr_device_new(&c);
    int64_t now = 1000;
    mtr_sample s;
    assert_int_equal(mtr_device_read(d, NULL, fake_now, &now, &s, NULL), MTR_E_CONNECT);
    char want[128];
    snprintf(want, sizeof want, "127.0.0.1:%d: cannot connect: Connection refused after 2 attempts",
             c.port);
    assert_string_equal(mtr_device_error(d), want);
    mtr_device_free(d);

    /* a serial device that does not exist: said so, not retried within the poll */
    c.transport = MTR_RTU;
    snprintf(c.device, sizeof c.device, "/nonexistent/ttyUSB9");
    c.retries = 5;
    c.retry_backoff_ms = 1000; /* five retries would take 31 s */
    d = mtr_device_new(&c);
    int64_t t0 = mono_ms();
    assert_int_equal(mtr_device_read(d, NULL, fake_now, &now, &s, NULL), MTR_E_CONNECT);
    assert_true(mono_ms() - t0 < 900);
    assert_string_equal(mtr_device_error(d), "/nonexistent/ttyUSB9: cannot open: No such file or "
                                             "directory (tried again at the next poll)");
    mtr_device_free(d);
}

static const char *mgx_bin(void)
{
    const char *bin = getenv("MGX_BIN");
    return bin ? bin : MGX_BINARY_DIR "/mgx";
}

/* The line of meter id in the --once output, NUL-terminated in place. */
static char *line_of(char *out, const char *id)
{
    char key[64];
    snprintf(key, sizeof key, "{\"meter_id\":\"%s\"", id);
    char *l = strstr(out, key);
    if (!l)
        fail_msg("no line for %s in: %s", id, out);
    char *nl = strchr(l, '\n');
    assert_non_null(nl);
    *nl = '\0';
    return l;
}

/*
 * `mgx meter --once` on a file without [bus]: it needs no broker. The good device reads; the
 * refused port and the missing serial device say so, each once; exit status 1.
 */
static void once_without_bus(void **state)
{
    (void)state;
    thd_server *srv = thd_start();
    assert_non_null(srv);
    thd_set_float(srv, MTR_SDM_POWER, GOOD_W, 1700.0f);
    thd_set_float(srv, MTR_SDM_IMPORT, 12.5f, 12.5f);
    thd_set_float(srv, MTR_SDM_EXPORT, 2.0f, 2.0f);
    char *dir = tst_tmpdir("hostile");
    char conf[512], out[512], errp[512], text[2048];
    snprintf(conf, sizeof conf, "%s/m.ini", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(errp, sizeof errp, "%s/err", dir);
    int dead = dead_port();
    snprintf(text, sizeof text,
             "[meter good]\nprofile = sdm630\nhost = 127.0.0.1\nport = %d\nunit = 1\n"
             "[meter refused]\nprofile = sdm630\nhost = 127.0.0.1\nport = %d\nunit = 1\n"
             "timeout_ms = 300\nretries = 0\n"
             "[meter serial]\nprofile = sdm630\ntransport = rtu\ndevice = %s/ttyUSB0\nunit = 1\n",
             thd_port(srv), dead, dir);
    tst_file_write(conf, text, 0600);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(out, "w", stdout) || !freopen(errp, "w", stderr))
            _exit(126);
        execl(mgx_bin(), "mgx", "meter", conf, "--once", (char *)NULL);
        _exit(127);
    }
    int st = tst_wait_exit(pid, 30000);
    char *o = tst_file_text(out), *e = tst_file_text(errp);
    if (st != 1 || strstr(e, "[bus]"))
        fail_msg("exit %d\nstdout: %s\nstderr: %s", st, o, e);
    free(o);
    o = tst_file_text(out);
    assert_non_null(strstr(line_of(o, "good"), "\"ok\":true"));
    free(o);
    char want[256];
    o = tst_file_text(out);
    snprintf(want, sizeof want, "\"error\":\"127.0.0.1:%d: cannot connect: Connection refused "
             "after 1 attempts\"", dead);
    assert_non_null(strstr(line_of(o, "refused"), want));
    free(o);
    o = tst_file_text(out);
    snprintf(want, sizeof want, "\"error\":\"%s/ttyUSB0: cannot open: No such file or directory",
             dir);
    assert_non_null(strstr(line_of(o, "serial"), want));
    free(o);
    free(e);
    tst_rmtree(dir);
    free(dir);
    thd_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_misbehaviour_refused),
        cmocka_unit_test(dripping_reply_bounded),
        cmocka_unit_test(frame_behind_reply_never_read),
        cmocka_unit_test(serial_refused_and_bounded),
        cmocka_unit_test(connect_errors_name_endpoint_and_reason),
        cmocka_unit_test(once_without_bus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
