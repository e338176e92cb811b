/*
 * End-to-end tests of `mgx meter`: the real binary reads simulated meters served over Modbus
 * TCP on loopback (mtr_server: an SDM630 and a SunSpec 203 meter) and publishes to a real
 * mosquitto started by the test; an independent subscriber records what arrives.
 * Covers exact values on MQTT, meta/status/Home Assistant discovery (retained), the last will
 * on kill -9, a clean stop on SIGTERM, a broker outage (every reading arrives, in order, none
 * lost), a daemon killed with readings in its outbox, config errors with FILE:LINE, --once.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "broker.h"
#include "bus/bus.h"
#include "meterd/meter_client_id.h"
#include "mgx/meter_server.h"
#include "bus/payload.h"
#include "recorder.h"
#include "files.h"
#include "shell.h"

#define SDM_TOPIC "mgx/v1/test/meter/sdm-1/state"
#define SS_TOPIC "mgx/v1/test/meter/ss-2/state"
#define STATUS_TOPIC "mgx/v1/test/status/meterd"

typedef struct {
    char *dir;
    char conf[512], out[512], err[512];
    mtr_server *srv;
    tst_broker *broker;
    pid_t pid;
} fixture;

static const char *mgx_bin(void)
{
    const char *b = getenv("MGX_BIN");
    return b ? b : MGX_BINARY_DIR "/mgx";
}

static void start_meters(fixture *f)
{
    mtr_server_opts o = {.host = "127.0.0.1"};
    assert_int_equal(mtr_server_new(&o, &f->srv), MTR_SERVER_OK);
    assert_int_equal(mtr_server_add(f->srv, 1, MTR_SERVER_SDM630, NULL), MTR_SERVER_OK);
    assert_int_equal(mtr_server_add(f->srv, 2, MTR_SERVER_SUNSPEC, "SN-0002"), MTR_SERVER_OK);
    assert_int_equal(mtr_server_set(f->srv, 1, 1500, 123456, 7890), MTR_SERVER_OK);
    assert_int_equal(mtr_server_set(f->srv, 2, -2500, 4000000, 5000001), MTR_SERVER_OK);
    assert_int_equal(mtr_server_start(f->srv), MTR_SERVER_OK);
}

/* Writes the daemon's config: [bus] (with client_line, which may be empty), then middle (any
 * sections between the bus and the meters), then the two meters polled every poll_ms. */
static void write_config_text(fixture *f, int broker_port, const char *client_line,
                              const char *middle, int poll_ms)
{
    snprintf(f->conf, sizeof f->conf, "%s/meter.ini", f->dir);
    FILE *c = fopen(f->conf, "w");
    assert_non_null(c);
    fprintf(c,
            "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = test\n%s"
            "backoff_min_ms = 100\nbackoff_max_ms = 400\n\n%s"
            "[meter sdm-1]\nprofile = sdm630\nhost = 127.0.0.1\nport = %u\nunit = 1\n"
            "poll_ms = %d\ntimeout_ms = 200\nretries = 1\n\n"
            "[meter ss-2]\nprofile = sunspec\nhost = 127.0.0.1\nport = %u\nunit = 2\n"
            "poll_ms = %d\ntimeout_ms = 200\nretries = 1\n",
            broker_port, client_line, middle, mtr_server_port(f->srv), poll_ms,
            mtr_server_port(f->srv), poll_ms);
    fclose(c);
}

/* The usual config: client_id meterd, an outbox (extra goes at the end of [outbox]) and Home
 * Assistant discovery. */
static void write_config(fixture *f, int broker_port, const char *outbox_extra, int poll_ms)
{
    char middle[256];
    snprintf(middle, sizeof middle,
             "[outbox]\npath = outbox.db\n%s\n[homeassistant]\nenabled = yes\n\n",
             outbox_extra ? outbox_extra : "");
    write_config_text(f, broker_port, "client_id = meterd\n", middle, poll_ms);
}

static pid_t spawn(fixture *f, const char *a1, const char *a2)
{
    snprintf(f->out, sizeof f->out, "%s/stdout", f->dir);
    snprintf(f->err, sizeof f->err, "%s/stderr", f->dir);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(f->out, "w", stdout) || !freopen(f->err, "a", stderr))
            _exit(126);
        execl(mgx_bin(), "mgx", "meter", f->conf, a1, a2, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* SIGTERM: the daemon must stop cleanly (exit 0) within 10 s. */
static void stop_daemon(fixture *f)
{
    kill(f->pid, SIGTERM);
    assert_int_equal(tst_wait_exit(f->pid, 10000), 0);
    f->pid = 0;
}

/* kill -9, as a crash or a power cut would. */
static void kill_daemon(fixture *f)
{
    kill(f->pid, SIGKILL);
    waitpid(f->pid, NULL, 0);
    f->pid = 0;
}

/* Starts the daemon with the broker down and kills it after 1.5 s, so that its outbox holds
 * the readings of ~1.5 s x 2 meters x 10 Hz. */
static void run_offline_then_kill(fixture *f)
{
    tst_broker_kill(f->broker);
    f->pid = spawn(f, NULL, NULL);
    tst_sleep_ms(1500);
    kill_daemon(f);
}

/* Polls the retained status (into buf) until it is want, for up to tries x 100 ms; every poll
 * must find one. */
static void wait_status(int port, const char *want, char *buf, size_t len, int tries)
{
    for (int t = 0; t < tries; t++) {
        assert_true(rec_retained(port, STATUS_TOPIC, buf, len, 5000));
        if (strcmp(buf, want) == 0)
            break;
        tst_sleep_ms(100);
    }
    assert_string_equal(buf, want);
}

static void setup_fixture(fixture *f, const char *broker_conf)
{
    memset(f, 0, sizeof *f);
    f->dir = tst_tmpdir("meterd");
    assert_non_null(f->dir);
    start_meters(f);
    f->broker = tst_broker_start(broker_conf);
    assert_non_null(f->broker);
}

/* setup_fixture, then the usual config (see write_config); returns the broker's port. */
static int setup_configured(fixture *f, const char *broker_conf, const char *outbox_extra,
                            int poll_ms)
{
    setup_fixture(f, broker_conf);
    int port = tst_broker_port(f->broker);
    write_config(f, port, outbox_extra, poll_ms);
    return port;
}

static void teardown_fixture(fixture *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
    }
    tst_broker_free(f->broker);
    mtr_server_free(f->srv);
    tst_rmtree(f->dir);
    free(f->dir);
}

/* The decoded state messages of one meter received by r, in arrival order. */
static size_t states_of(recorder *r, const char *topic, const char *meter, mtr_sample *out,
                        size_t cap)
{
    size_t n = 0, total = rec_count(r);
    for (size_t i = 0; i < total && n < cap; i++) {
        rec_msg m;
        assert_true(rec_get(r, i, &m));
        if (strcmp(m.topic, topic) == 0) {
            char why[160];
            if (bus_state_decode(m.payload, m.len, meter, &out[n], why, sizeof why) != BUS_OK)
                fail_msg("bad state payload %s: %s", m.payload, why);
            n++;
        }
        rec_msg_free(&m);
    }
    return n;
}

static void test_exact_values_meta_status_will(void **state)
{
    (void)state;
    fixture f;
    int port = setup_configured(&f, NULL, NULL, 200);
    recorder *r = rec_start(port, "rec-d1", "mgx/v1/test/#", false);
    assert_non_null(r);
    f.pid = spawn(&f, NULL, NULL);
    char buf[2048];
    assert_true(rec_wait_topic(r, SDM_TOPIC, buf, sizeof buf, 10000));
    mtr_sample s;
    assert_int_equal(bus_state_decode(buf, strlen(buf), "sdm-1", &s, NULL, 0), BUS_OK);
    /* SDM630: 1500 W as float32; 123.456 kWh and 7.89 kWh as float32 read back to the
     * nearest Wh: 123456 and 7890 (float32 steps are < 1 Wh below 16,384 kWh) */
    assert_int_equal(s.power_w, 1500);
    assert_int_equal(s.import_wh, 123456);
    assert_int_equal(s.export_wh, 7890);
    assert_int_equal(s.quality, MTR_Q_GOOD);
    assert_int_equal(s.soc_permille, -1);
    int64_t now = (int64_t)time(NULL) * 1000;
    assert_true(s.ts_ms > now - 60000 && s.ts_ms <= now + 1000);
    /* SunSpec 203: W with its scale factor, acc32 Wh exact */
    assert_true(rec_wait_topic(r, SS_TOPIC, buf, sizeof buf, 10000));
    assert_int_equal(bus_state_decode(buf, strlen(buf), "ss-2", &s, NULL, 0), BUS_OK);
    assert_int_equal(s.power_w, -2500);
    assert_int_equal(s.import_wh, 4000000);
    assert_int_equal(s.export_wh, 5000001);
    assert_int_equal(s.quality, MTR_Q_GOOD);
    /* values change on the meter, the next readings follow */
    assert_int_equal(mtr_server_set(f.srv, 1, -320, 123457, 7890), MTR_SERVER_OK);
    for (int t = 0; t < 100; t++) {
        assert_true(rec_wait_topic(r, SDM_TOPIC, buf, sizeof buf, 5000));
        assert_int_equal(bus_state_decode(buf, strlen(buf), "sdm-1", &s, NULL, 0), BUS_OK);
        if (s.power_w == -320)
            break;
        tst_sleep_ms(100);
    }
    assert_int_equal(s.power_w, -320);
    assert_int_equal(s.import_wh, 123457);

    /* retained: state, meta, status online, Home Assistant discovery */
    assert_true(rec_retained(port, SDM_TOPIC, buf, sizeof buf, 5000));
    assert_true(rec_retained(port, "mgx/v1/test/meter/ss-2/meta", buf, sizeof buf, 5000));
    mtr_meta m;
    assert_int_equal(bus_meta_decode(buf, strlen(buf), "ss-2", &m, NULL, 0), BUS_OK);
    assert_string_equal(m.profile, "sunspec");
    assert_string_equal(m.serial, "SN-0002");
    assert_true(rec_retained(port, "mgx/v1/test/meter/sdm-1/meta", buf, sizeof buf, 5000));
    assert_int_equal(bus_meta_decode(buf, strlen(buf), "sdm-1", &m, NULL, 0), BUS_OK);
    assert_string_equal(m.profile, "sdm630");
    assert_true(rec_retained(port, STATUS_TOPIC, buf, sizeof buf, 5000));
    assert_string_equal(buf, "online");
    assert_true(rec_retained(port, "homeassistant/sensor/sdm-1/mgx_test_power/config", buf,
                             sizeof buf, 5000));
    assert_non_null(strstr(buf, "\"state_topic\":\"" SDM_TOPIC "\""));
    assert_non_null(strstr(buf, "\"device_class\":\"power\""));
    assert_non_null(strstr(buf, "\"unit_of_measurement\":\"W\""));
    assert_non_null(strstr(buf, "\"availability_topic\":\"" STATUS_TOPIC "\""));
    assert_true(rec_retained(port, "homeassistant/sensor/ss-2/mgx_test_import/config", buf,
                             sizeof buf, 5000));
    assert_non_null(strstr(buf, "\"state_class\":\"total_increasing\""));
    assert_non_null(strstr(buf, "\"value_template\":\"{{ value_json.import_wh }}\""));

    /* kill -9: the broker publishes the last will, retained */
    kill_daemon(&f);
    wait_status(port, "offline", buf, sizeof buf, 50);

    /* a new daemon (same outbox) comes online; SIGTERM stops it cleanly with "offline" */
    f.pid = spawn(&f, NULL, NULL);
    wait_status(port, "online", buf, sizeof buf, 100);
    stop_daemon(&f);
    assert_true(rec_retained(port, STATUS_TOPIC, buf, sizeof buf, 5000));
    assert_string_equal(buf, "offline");
    char *err = tst_file_text_or_empty(f.err);
    assert_non_null(strstr(err, "stopped:"));
    free(err);
    rec_stop(r);
    teardown_fixture(&f);
}

/* Number from the daemon's final log line, e.g. key = " readings" in "stopped: 57 readings". */
static long long stat_before(const char *log, const char *key)
{
    const char *line = strstr(log, "stopped:");
    assert_non_null(line);
    const char *k = strstr(line, key);
    assert_non_null(k);
    while (k > line && k[-1] >= '0' && k[-1] <= '9')
        k--;
    return atoll(k);
}

static void test_broker_outage(void **state)
{
    (void)state;
    char *pdir = tst_tmpdir("meterdp");
    chmod(pdir, 0777);
    char conf[600];
    snprintf(conf, sizeof conf,
             "persistence true\npersistence_location %s/\nautosave_interval 1\n"
             "autosave_on_changes true\nmax_queued_messages 100000\n",
             pdir);
    fixture f;
    int port = setup_configured(&f, conf, NULL, 100);
    recorder *r = rec_start(port, "rec-d2", "mgx/v1/test/meter/+/state", true);
    assert_non_null(r);
    f.pid = spawn(&f, NULL, NULL);
    assert_true(rec_wait(r, 10, 10000) >= 10);
    tst_sleep_ms(1100); /* autosave of the recorder's session */

    int64_t wh = 123456;
    tst_broker_kill(f.broker);
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    int64_t kill_ms = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000;
    /* 2 s of outage; the counter moves so every reading differs */
    for (int i = 0; i < 20; i++) {
        wh += 1;
        mtr_server_set(f.srv, 1, 1500, wh, 7890);
        tst_sleep_ms(100);
    }
    clock_gettime(CLOCK_REALTIME, &t0);
    int64_t back_ms = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000;
    assert_true(tst_broker_restart(f.broker));
    tst_sleep_ms(3000); /* reconnect (backoff <= 400 ms) and flush the outbox */
    stop_daemon(&f);
    char *log = tst_file_text_or_empty(f.err);
    long long readings = stat_before(log, " readings");
    long long waiting = stat_before(log, " waiting");
    long long dropped = stat_before(log, " dropped");
    assert_int_equal(waiting, 0);
    assert_int_equal(dropped, 0);
    tst_sleep_ms(500);

    static mtr_sample a[4000], b[4000];
    size_t na = states_of(r, SDM_TOPIC, "sdm-1", a, 4000);
    size_t nb = states_of(r, SS_TOPIC, "ss-2", b, 4000);
    /* in order: ts never goes back; a repeat is allowed only for a message in flight at the
     * moment the broker died (at-least-once), never for one produced during the outage */
    size_t unique = 0, in_outage = 0;
    for (size_t k = 0; k < 2; k++) {
        mtr_sample *v = k ? b : a;
        size_t n = k ? nb : na;
        for (size_t i = 0; i < n; i++) {
            if (i > 0 && v[i].ts_ms < v[i - 1].ts_ms)
                fail_msg("reading out of order at %zu", i);
            if (i > 0 && v[i].ts_ms == v[i - 1].ts_ms) {
                assert_true(v[i].ts_ms <= kill_ms);
                continue;
            }
            unique++;
            if (v[i].ts_ms > kill_ms && v[i].ts_ms < back_ms)
                in_outage++;
        }
    }
    /* every reading the daemon produced arrived */
    assert_int_equal((long long)unique, readings);
    /* about 2 s x 2 meters x 10 Hz were produced during the outage */
    assert_true(in_outage >= 20);
    /* the counter steps taken during the outage all arrived, in order */
    int64_t last = 0;
    size_t steps = 0;
    for (size_t i = 0; i < na; i++) {
        if (a[i].import_wh != last)
            steps++;
        assert_true(a[i].import_wh >= last);
        last = a[i].import_wh;
    }
    assert_int_equal(last, wh);
    assert_true(steps >= 15); /* 20 steps 100 ms apart, polled at 100 ms */
    free(log);
    rec_stop(r);
    teardown_fixture(&f);
    tst_rmtree(pdir);
    free(pdir);
}

static int count_outbox(const char *dir, int64_t *max_ts)
{
    char path[600];
    snprintf(path, sizeof path, "%s/outbox.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*), MAX(enqueued_ms) FROM outbox", -1,
                                        &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    *max_ts = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_killed_daemon_outbox_published_after_restart(void **state)
{
    (void)state;
    fixture f;
    int port = setup_configured(&f, NULL, "max_messages = 1000\n", 100);
    run_offline_then_kill(&f); /* the broker is down from the start */
    int64_t max_enq;
    int queued = count_outbox(f.dir, &max_enq);
    assert_true(queued >= 10); /* ~1.5 s x 2 meters x 10 Hz, minus the start */

    assert_true(tst_broker_restart(f.broker));
    recorder *r = rec_start(port, "rec-d3", "mgx/v1/test/meter/+/state", false);
    assert_non_null(r);
    f.pid = spawn(&f, NULL, NULL);
    assert_true(rec_wait(r, (size_t)queued, 15000) >= (size_t)queued);
    stop_daemon(&f);
    static mtr_sample a[4000];
    size_t na = states_of(r, SDM_TOPIC, "sdm-1", a, 4000);
    /* the first messages after the restart are the readings stored before the kill, in order */
    assert_true(na > 0);
    for (size_t i = 1; i < na; i++)
        assert_true(a[i].ts_ms > a[i - 1].ts_ms);
    assert_true(a[0].ts_ms <= max_enq);
    char *log = tst_file_text_or_empty(f.err);
    assert_non_null(strstr(log, "messages waiting from an earlier run"));
    assert_int_equal(stat_before(log, " waiting"), 0);
    free(log);
    rec_stop(r);
    teardown_fixture(&f);
}

/* A config with no client_id and no [outbox] path: the daemon's defaults. client_line may name
 * the client id as an older version's default would have been. */
static void write_default_config(fixture *f, int broker_port, const char *client_line)
{
    write_config_text(f, broker_port, client_line, "", 100);
}

static int count_matches(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Without [bus] client_id the meter daemon is meter-<community>-<first meter id>, not
 * meter-<hostname> (which every home's "raspberrypi" shares). An outbox an older version left
 * under meter-<hostname> is kept on, and the readings in it are published. */
static void test_default_client_id_keeps_legacy_outbox(void **state)
{
    (void)state;
    fixture f;
    setup_fixture(&f, NULL);
    int port = tst_broker_port(f.broker);
    char host[256] = "host", legacy_id[BUS_ID_MAX], line[128], legacy[600], fresh[600];
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    ctl_meter_legacy_client_id(host, legacy_id);
    snprintf(legacy, sizeof legacy, "%s/%s.outbox.db", f.dir, legacy_id);
    snprintf(fresh, sizeof fresh, "%s/meter-test-sdm-1.outbox.db", f.dir);

    /* the older version: its default id, readings queued while the broker is down */
    snprintf(line, sizeof line, "client_id = %s\n", legacy_id);
    write_default_config(&f, port, line);
    run_offline_then_kill(&f);
    struct stat sb;
    assert_int_equal(stat(legacy, &sb), 0);

    /* upgraded: no client_id; the new id on the bus, the old outbox drained */
    write_default_config(&f, port, "");
    assert_true(tst_broker_restart(f.broker));
    recorder *r = rec_start(port, "rec-d7", "mgx/v1/test/meter/sdm-1/state", false);
    assert_non_null(r);
    f.pid = spawn(&f, NULL, NULL);
    char buf[256];
    for (int t = 0; t < 100; t++) {
        if (rec_retained(port, "mgx/v1/test/status/meter-test-sdm-1", buf, sizeof buf, 5000) &&
            strcmp(buf, "online") == 0)
            break;
        tst_sleep_ms(100);
    }
    assert_string_equal(buf, "online");
    char *log = tst_file_text_or_empty(f.err);
    for (int t = 0; t < 100 && !strstr(log, "messages waiting from an earlier run"); t++) {
        free(log);
        tst_sleep_ms(100);
        log = tst_file_text_or_empty(f.err);
    }
    assert_non_null(strstr(log, "messages waiting from an earlier run"));
    assert_int_equal(count_matches(log, "keeping the outbox"), 1);
    assert_non_null(strstr(log, legacy_id));
    free(log);
    assert_true(rec_wait(r, 1, 10000) >= 1);
    assert_int_equal(stat(fresh, &sb), -1); /* no second outbox beside the old one */
    stop_daemon(&f);

    /* without the old file the default outbox takes the new id's name */
    assert_int_equal(unlink(legacy), 0);
    f.pid = spawn(&f, NULL, NULL);
    for (int t = 0; t < 100 && stat(fresh, &sb) != 0; t++)
        tst_sleep_ms(100);
    assert_int_equal(stat(fresh, &sb), 0);
    stop_daemon(&f);
    log = tst_file_text_or_empty(f.err);
    assert_int_equal(count_matches(log, "keeping the outbox"), 1);
    free(log);
    rec_stop(r);
    teardown_fixture(&f);
}

static void test_outbox_full_is_logged(void **state)
{
    (void)state;
    fixture f;
    setup_configured(&f, NULL, "max_messages = 5\nfull_policy = drop_oldest\n", 100);
    tst_broker_kill(f.broker);
    f.pid = spawn(&f, NULL, NULL);
    tst_sleep_ms(1500);
    stop_daemon(&f);
    int64_t max_enq;
    assert_int_equal(count_outbox(f.dir, &max_enq), 5);
    char *log = tst_file_text_or_empty(f.err);
    assert_non_null(strstr(log, "outbox full (5 messages): dropped the oldest message"));
    assert_true(stat_before(log, " dropped") > 0);
    assert_int_equal(stat_before(log, " waiting"), 5);
    free(log);
    teardown_fixture(&f);
}

static void test_once(void **state)
{
    (void)state;
    fixture f;
    setup_configured(&f, NULL, NULL, 1000);
    f.pid = spawn(&f, "--once", NULL);
    assert_int_equal(tst_wait_exit(f.pid, 20000), 0);
    f.pid = 0;
    char *out = tst_file_text_or_empty(f.out);
    /* one line per device, in config order, same fields as the state topic */
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    mtr_sample s;
    assert_int_equal(bus_state_decode(out, strlen(out), "sdm-1", &s, NULL, 0), BUS_OK);
    assert_int_equal(s.power_w, 1500);
    assert_int_equal(s.import_wh, 123456);
    assert_non_null(strstr(out, "\"ok\":true"));
    char *second = nl + 1;
    nl = strchr(second, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_int_equal(bus_state_decode(second, strlen(second), "ss-2", &s, NULL, 0), BUS_OK);
    assert_int_equal(s.export_wh, 5000001);
    assert_string_equal(nl + 1, "");
    free(out);

    /* a device that does not answer: its line says why, and the exit status is 1 */
    FILE *c = fopen(f.conf, "a");
    assert_non_null(c);
    fprintf(c, "\n[meter ghost]\nprofile = sdm630\nhost = 127.0.0.1\nport = %u\nunit = 9\n"
               "timeout_ms = 200\nretries = 0\n",
            mtr_server_port(f.srv));
    fclose(c);
    f.pid = spawn(&f, "--once", NULL);
    assert_int_equal(tst_wait_exit(f.pid, 20000), 1);
    f.pid = 0;
    out = tst_file_text_or_empty(f.out);
    char *ghost = strstr(out, "{\"meter_id\":\"ghost\"");
    assert_non_null(ghost);
    assert_non_null(strstr(ghost, "\"ok\":false"));
    assert_non_null(strstr(ghost, "\"error\":\""));
    assert_non_null(strstr(out, "\"meter_id\":\"sdm-1\""));
    free(out);
    teardown_fixture(&f);
}

static void expect_config_error(const char *dir, const char *text, const char *want)
{
    char path[600], errp[600];
    snprintf(path, sizeof path, "%s/bad.ini", dir);
    snprintf(errp, sizeof errp, "%s/bad.err", dir);
    FILE *c = fopen(path, "w");
    assert_non_null(c);
    fputs(text, c);
    fclose(c);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(errp, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(126);
        execl(mgx_bin(), "mgx", "meter", path, "--once", (char *)NULL);
        _exit(127);
    }
    assert_int_equal(tst_wait_exit(pid, 10000), 1);
    char *err = tst_file_text_or_empty(errp);
    char full[700];
    snprintf(full, sizeof full, "%s%s", path, want);
    if (!strstr(err, full))
        fail_msg("expected '%s' in: %s", full, err);
    free(err);
}

/* expect_config_error for head followed by a valid [meter] section. */
static void expect_error_with_meter(const char *dir, const char *head, const char *want)
{
    char text[1024];
    snprintf(text, sizeof text, "%s[meter m1]\nprofile = sdm630\nhost = 127.0.0.1\nport = 1502\n",
             head);
    expect_config_error(dir, text, want);
}

static void test_config_errors(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("meterdcfg");
    expect_error_with_meter(dir, "[bus]\ncommunity = c\nhots = x\n",
                            ":3: unknown key 'hots' in [bus]");
    expect_error_with_meter(dir, "[bus]\ncommunity = c\n[buss]\n", ":3: unknown section [buss]");
    expect_error_with_meter(dir, "[bus]\ncommunity = c\nport = 70000\n",
                            ":3: port: 70000 is out of range");
    expect_error_with_meter(dir, "[bus]\ncommunity = a/b\n", ":2: community: 'a/b' must be");
    expect_error_with_meter(dir, "[bus]\ncommunity = c\n[outbox]\nfull_policy = maybe\n",
                            ":4: full_policy: 'maybe' is not drop_oldest or refuse_newest");
    expect_error_with_meter(dir, "[bus]\ncommunity = c\ncommunity = d\n",
                            ":3: community: given twice");
    expect_error_with_meter(dir, "[bus]\nhost = h\n", ":1: [bus] needs community = NAME");
    expect_error_with_meter(dir, "[bus]\ncommunity = c\n[homeassistant]\nenabled = sometimes\n",
                            ":4: enabled: 'sometimes' is not yes or no");
    expect_config_error(dir, "[bus]\ncommunity = c\nthis is not ini\n", ":3: syntax error");
    expect_config_error(dir, "[bus]\ncommunity = c\n", ": no [meter ID] or [ocmf ID] section");
    /* the meters library's own errors come through with file and line too */
    expect_config_error(dir, "[bus]\ncommunity = c\n[meter m1]\nprofile = sdm999\n", ":4: ");
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_values_meta_status_will),
        cmocka_unit_test(test_broker_outage),
        cmocka_unit_test(test_killed_daemon_outbox_published_after_restart),
        cmocka_unit_test(test_default_client_id_keeps_legacy_outbox),
        cmocka_unit_test(test_outbox_full_is_logged),
        cmocka_unit_test(test_once),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
