/*
 * Modbus RTU, tested for real: the meters library's client and poller, and `mgx meter --once`,
 * reading libmodbus RTU servers that share one emulated RS-485 bus on pseudo-terminals
 * (rtu_bus.h). Covers exact values from several units on one bus, the inter-unit pause as seen
 * on the wire (also across polling passes with different periods), a unit that never answers,
 * a reply with a CRC error (flagged, then retried), a reply that arrives after the client gave
 * up (never taken for the answer to a later request), and the CLI over a serial device path.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h" /* tst_tmpdir, tst_sleep_ms */
#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "mgx/modbus_device.h"
#include "mgx/poller.h"
#include "mgx/sdm.h"
#include "bus/payload.h"
#include "rtu_bus.h"
#include "files.h"
#include "config_text.h"
#include "shell.h"

/* ---- fixtures ---- */

/*
 * The register contents of the three meters every test puts on the bus, and the readings they
 * must give. All values are exact in float32 (sums of powers of two), and energy registers hold
 * kWh, so Wh = kWh x 1000 exactly:
 *   unit 1, SDM630: power 1500 W,  import 1234.5 kWh  = 1234500 Wh, export 0.25 kWh = 250 Wh
 *   unit 2, SDM120: power -730 W,  import 42.125 kWh  =   42125 Wh, export 7.75 kWh = 7750 Wh
 *   unit 3, SDM630: power 0 W,     import 100000 kWh  = 100000000 Wh, export 12.5 kWh = 12500 Wh
 */
typedef struct {
    int unit;
    const char *profile;
    float power_w, import_kwh, export_kwh;
    int64_t want_power_w, want_import_wh, want_export_wh;
} meter_values;

static const meter_values METERS[] = {
    {1, "sdm630", 1500.0f, 1234.5f, 0.25f, 1500, 1234500, 250},
    {2, "sdm120", -730.0f, 42.125f, 7.75f, -730, 42125, 7750},
    {3, "sdm630", 0.0f, 100000.0f, 12.5f, 0, 100000000, 12500},
};
#define N_METERS (sizeof METERS / sizeof METERS[0])

static const meter_values *meter_of(int unit)
{
    for (size_t i = 0; i < N_METERS; i++)
        if (METERS[i].unit == unit)
            return &METERS[i];
    fail_msg("no meter with unit %d", unit);
    return &METERS[0]; /* not reached */
}

static void set_values(trb_bus *b, const meter_values *m)
{
    uint16_t power = strcmp(m->profile, "sdm120") == 0 ? MTR_SDM120_POWER : MTR_SDM_POWER;
    trb_set_float(b, m->unit, power, m->power_w);
    trb_set_float(b, m->unit, MTR_SDM_IMPORT, m->import_kwh);
    trb_set_float(b, m->unit, MTR_SDM_EXPORT, m->export_kwh);
}

/* A bus with units 1..n_units of METERS plugged in and serving. */
static trb_bus *bus_with(size_t n_units)
{
    trb_bus *b = trb_new();
    assert_non_null(b);
    for (size_t i = 0; i < n_units; i++)
        assert_int_equal(trb_add_unit(b, METERS[i].unit), 0);
    assert_int_equal(trb_start(b), 0);
    for (size_t i = 0; i < n_units; i++)
        set_values(b, &METERS[i]);
    return b;
}

static void append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

/* One [meter] section on the bus's serial port; extra holds more "key = value\n" lines. */
static void meter_section(char *buf, size_t cap, const char *id, const char *profile,
                          const char *device, int unit, const char *extra)
{
    append(buf, cap,
           "[meter %s]\nprofile = %s\ntransport = rtu\ndevice = %s\nbaud = 9600\nunit = %d\n%s\n",
           id, profile, device, unit, extra ? extra : "");
}

/* The config of the three METERS on bus b, each with extra. */
static mtr_config *three_meters(trb_bus *b, const char *extra)
{
    char text[4096] = "";
    for (size_t i = 0; i < N_METERS; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%d", METERS[i].unit);
        meter_section(text, sizeof text, id, METERS[i].profile, trb_path(b), METERS[i].unit,
                      extra);
    }
    return tst_meters_config(text);
}

static void assert_exact(const mtr_sample *s, const meter_values *m)
{
    assert_int_equal(s->quality, MTR_Q_GOOD);
    assert_int_equal(s->power_w, m->want_power_w);
    assert_int_equal(s->import_wh, m->want_import_wh);
    assert_int_equal(s->export_wh, m->want_export_wh);
}

/* Results collected from poller callbacks (called from worker threads). */
#define RESULTS_MAX 512
typedef struct {
    pthread_mutex_t mu;
    mtr_poll_result r[RESULTS_MAX];
    int64_t t_us[RESULTS_MAX];
    size_t n;
} results;

static void collect(void *ctx, const mtr_poll_result *r)
{
    results *c = ctx;
    pthread_mutex_lock(&c->mu);
    if (c->n < RESULTS_MAX) {
        c->t_us[c->n] = trb_now_us();
        c->r[c->n++] = *r;
    }
    pthread_mutex_unlock(&c->mu);
}

static results *results_new(void)
{
    results *c = calloc(1, sizeof *c);
    assert_non_null(c);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void results_free(results *c)
{
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* A running poller of cfg whose results go to c. */
static mtr_poller *start_collecting(const mtr_config *cfg, results *c)
{
    mtr_poller_options opt = {.cb = collect, .cb_ctx = c};
    mtr_poller *p = mtr_poller_new(cfg, &opt);
    assert_int_equal(mtr_poller_start(p), MTR_OK);
    return p;
}

/* Frees what a poller test set up: results, poller, config and bus. */
static void free_all(results *c, mtr_poller *p, mtr_config *cfg, trb_bus *b)
{
    results_free(c);
    mtr_poller_free(p);
    mtr_config_free(cfg);
    trb_free(b);
}

static int unit_of_id(const char *meter_id)
{
    return atoi(meter_id + 1); /* "m1" -> 1 */
}

/*
 * Checks the inter-unit pause on the wire: two consecutive requests to different units are at
 * least pause_ms apart. Why that follows from the client keeping the pause: the relay logs a
 * request before any unit hears it, so the log time of unit A's last request precedes A's
 * reply, which precedes the client reading it and starting the pause; the next unit's request
 * is logged after the client sent it, i.e. after the pause ended. Returns the smallest gap
 * seen between different units (us), or INT64_MAX when there was none.
 */
static int64_t check_pause(const trb_request *log, size_t n, int pause_ms)
{
    int64_t min_gap = INT64_MAX;
    for (size_t i = 1; i < n; i++) {
        if (log[i].unit == log[i - 1].unit)
            continue;
        int64_t gap = log[i].t_us - log[i - 1].t_us;
        if (gap < min_gap)
            min_gap = gap;
        if (gap < (int64_t)pause_ms * 1000)
            fail_msg("request %zu to unit %d came %.1f ms after unit %d's (pause %d ms)", i,
                     log[i].unit, (double)gap / 1000.0, log[i - 1].unit, pause_ms);
    }
    return min_gap;
}

/* ---- tests ---- */

/* Three Eastron meters on one bus, read by --once style polling: one lane, exact values,
 * the expected requests on the wire. */
static void shared_bus_exact_values(void **state)
{
    (void)state;
    trb_bus *b = bus_with(N_METERS);
    mtr_config *cfg = three_meters(b, "timeout_ms = 300\n");
    mtr_poller *p = mtr_poller_new(cfg, NULL);
    assert_non_null(p);
    assert_int_equal(mtr_poller_lanes(p), 1); /* one serial port: one lane, units in turn */
    results *c = results_new();
    assert_int_equal(mtr_poller_run_once(p, collect, c), MTR_OK);
    assert_int_equal(c->n, N_METERS);
    for (size_t i = 0; i < c->n; i++) {
        const mtr_poll_result *r = &c->r[i];
        const meter_values *m = meter_of(unit_of_id(r->sample.meter_id));
        assert_non_null(m);
        assert_int_equal(r->rc, MTR_OK);
        assert_exact(&r->sample, m);
        assert_true(r->meta_fresh);
        assert_string_equal(r->meta.model, strcmp(m->profile, "sdm120") ? "SDM630" : "SDM120");
    }
    /*
     * On the wire, in config order: the SDM630 map (power 0x34, import 0x48, export 0x4A) is
     * one FC4 read of 0x34..0x4B = 24 registers; the SDM120's (power 0x0C .. export 0x4B = 64
     * registers) is over the 60-register limit of the meter, so two reads.
     */
    trb_request log[16];
    size_t n = trb_requests(b, log, 16);
    assert_int_equal(n, 4);
    assert_int_equal(log[0].unit, 1);
    assert_int_equal(log[0].fc, 4);
    assert_int_equal(log[0].addr, 0x34);
    assert_int_equal(log[0].count, 24);
    assert_int_equal(log[1].unit, 2);
    assert_int_equal(log[2].unit, 2);
    assert_int_equal(log[3].unit, 3);
    assert_int_equal(log[3].count, 24);
    free_all(c, p, cfg, b);
}

/* --once style: every unit change on the wire waits the pause. */
static void pause_between_units_once(void **state)
{
    (void)state;
    trb_bus *b = bus_with(N_METERS);
    mtr_config *cfg = three_meters(b, "inter_unit_pause_ms = 120\n");
    mtr_poller *p = mtr_poller_new(cfg, NULL);
    results *c = results_new();
    assert_int_equal(mtr_poller_run_once(p, collect, c), MTR_OK);
    assert_int_equal(c->n, N_METERS);
    trb_request log[16];
    size_t n = trb_requests(b, log, 16);
    assert_int_equal(n, 4);
    int64_t gap = check_pause(log, n, 120);
    assert_true(gap < 120000 + 100000); /* and no pathological extra wait either */
    /* the two reads of the SDM120 are one unit's transaction: no pause between them */
    assert_true(log[2].t_us - log[1].t_us < 100000);
    free_all(c, p, cfg, b);
}

/*
 * The running poller with different periods (200, 300 and 500 ms) and an 80 ms pause: passes
 * of the lane poll different subsets of units, and the pause must hold from the last unit of
 * one pass to the first unit of the next too (at t = 200 ms unit 1 is due again about 30 ms
 * after unit 3 finished the first pass).
 */
static void pause_across_passes(void **state)
{
    (void)state;
    trb_bus *b = bus_with(N_METERS);
    char text[4096] = "";
    const int periods[] = {200, 300, 500};
    for (size_t i = 0; i < N_METERS; i++) {
        char id[16], extra[128];
        snprintf(id, sizeof id, "m%d", METERS[i].unit);
        snprintf(extra, sizeof extra, "inter_unit_pause_ms = 80\npoll_ms = %d\n", periods[i]);
        meter_section(text, sizeof text, id, METERS[i].profile, trb_path(b), METERS[i].unit,
                      extra);
    }
    mtr_config *cfg = tst_meters_config(text);
    results *c = results_new();
    mtr_poller *p = start_collecting(cfg, c);
    tst_sleep_ms(1600);
    mtr_poller_stop(p);
    static trb_request log[TRB_LOG_MAX];
    size_t n = trb_requests(b, log, TRB_LOG_MAX);
    check_pause(log, n, 80);
    /* Every unit kept being polled, values exact each time. With the pause a full pass takes
     * about 2 x 80 ms, so unit 1 (200 ms) may slip, but not starve: in 1.6 s at least 4 polls
     * of each unit. */
    int count[4] = {0};
    for (size_t i = 0; i < c->n; i++) {
        int u = unit_of_id(c->r[i].sample.meter_id);
        assert_int_equal(c->r[i].rc, MTR_OK);
        assert_exact(&c->r[i].sample, meter_of(u));
        count[u]++;
    }
    for (int u = 1; u <= 3; u++) {
        if (count[u] < 4)
            fail_msg("unit %d polled %d times in 1.6 s", u, count[u]);
    }
    free_all(c, p, cfg, b);
}

/* Counts the results so far: successes and failures per unit, and whether unit 1 succeeded
 * after having failed. */
static void tally(results *c, int ok[10], int fail[10], int *recovered)
{
    memset(ok, 0, 10 * sizeof *ok);
    memset(fail, 0, 10 * sizeof *fail);
    *recovered = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++) {
        int u = unit_of_id(c->r[i].sample.meter_id);
        if (u < 0 || u > 9)
            continue;
        if (c->r[i].rc == MTR_OK) {
            *recovered |= u == 1 && fail[1] > 0;
            ok[u]++;
        } else {
            fail[u]++;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* Waits (up to 120 s: progress, not speed) until done(ok, fail, recovered) holds. */
static int wait_tally(results *c, int (*done)(const int *, const int *, int))
{
    int ok[10], fail[10], rec;
    for (int i = 0; i < 2400; i++) {
        tally(c, ok, fail, &rec);
        if (done(ok, fail, rec))
            return 1;
        tst_sleep_ms(50);
    }
    return 0;
}

static int warmed_up(const int *ok, const int *fail, int rec)
{
    (void)rec;
    return ok[2] >= 3 && fail[9] >= 3;
}

static int unit1_failing(const int *ok, const int *fail, int rec)
{
    (void)ok, (void)rec;
    return fail[1] >= 1;
}

static int unit1_back(const int *ok, const int *fail, int rec)
{
    return rec && ok[2] >= 6 && fail[9] >= 5;
}

/*
 * Unit 9 is configured between units 1 and 2 but is not on the bus. Each of its polls times
 * out after 2 attempts (150 ms + 50 ms backoff + 150 ms), is reported as a communication
 * failure, and units 1 and 2 keep being read in their turns: between two readings of unit 2
 * there is at most one poll of unit 9 (two, when a loaded machine made the lane skip a period).
 * Unplugging unit 1 turns its readings into failures that recover when it is plugged back in.
 * The test waits for each of these to happen (generous deadlines), so a loaded machine slows it
 * down but does not fail it; the longest gap between unit 2's readings is printed, not judged.
 */
static void silent_unit_does_not_block_the_bus(void **state)
{
    (void)state;
    trb_bus *b = bus_with(2);
    char text[4096] = "";
    const char *extra = "poll_ms = 500\ntimeout_ms = 150\nretries = 1\nretry_backoff_ms = 50\n";
    meter_section(text, sizeof text, "m1", "sdm630", trb_path(b), 1, extra);
    meter_section(text, sizeof text, "m9", "sdm630", trb_path(b), 9, extra);
    meter_section(text, sizeof text, "m2", "sdm120", trb_path(b), 2, extra);
    mtr_config *cfg = tst_meters_config(text);
    results *c = results_new();
    mtr_poller *p = start_collecting(cfg, c);
    assert_true(wait_tally(c, warmed_up));
    trb_unplug(b, 1, 1);
    assert_true(wait_tally(c, unit1_failing));
    trb_unplug(b, 1, 0);
    assert_true(wait_tally(c, unit1_back));
    mtr_poller_stop(p);

    int ok[10] = {0}, fail[10] = {0}, recovered = 0, nines = 0, seen_2 = 0;
    int64_t last_ok_ms = 0, worst_gap_ms = 0;
    for (size_t i = 0; i < c->n; i++) {
        const mtr_poll_result *r = &c->r[i];
        int u = unit_of_id(r->sample.meter_id);
        if (u == 9)
            nines++;
        if (r->rc == MTR_OK) {
            assert_true(u != 9);
            assert_exact(&r->sample, meter_of(u));
            if (u == 1 && fail[1] > 0)
                recovered = 1;
            if (u == 2) {
                if (seen_2 && nines > 2)
                    fail_msg("unit 9 was polled %d times between two readings of unit 2", nines);
                if (last_ok_ms && r->sample.ts_ms - last_ok_ms > worst_gap_ms)
                    worst_gap_ms = r->sample.ts_ms - last_ok_ms;
                last_ok_ms = r->sample.ts_ms;
                seen_2 = 1;
                nines = 0;
            }
            ok[u]++;
            continue;
        }
        fail[u]++;
        assert_int_equal(r->rc, MTR_E_TIMEOUT);
        assert_true(r->sample.quality & MTR_Q_COMM);
        if (u == 9 && !strstr(r->err, "after 2 attempts"))
            fail_msg("unit 9: %s", r->err);
    }
    assert_true(ok[9] == 0 && fail[9] >= 5);
    assert_true(ok[2] >= 5 && fail[2] == 0);
    assert_true(fail[1] >= 1 && recovered);
    print_message("unit 2: longest gap between readings %lld ms (period 500 ms)\n",
                  (long long)worst_gap_ms);
    /* on the wire: unit 9 asked twice per poll, never a third time */
    static trb_request log[TRB_LOG_MAX];
    size_t n = trb_requests(b, log, TRB_LOG_MAX);
    int run = 0;
    for (size_t i = 0; i < n; i++) {
        run = log[i].unit == 9 ? run + 1 : 0;
        assert_true(run <= 2);
    }
    free_all(c, p, cfg, b);
}

/* A device on the bus's port with its own link, for step-by-step reads. */
typedef struct {
    mtr_config *cfg;
    mtr_link *link;
    mtr_device *dev[N_METERS];
} direct;

static void direct_open(direct *d, trb_bus *b, const char *extra)
{
    d->cfg = three_meters(b, extra);
    d->link = mtr_link_new(mtr_config_device(d->cfg, 0));
    assert_non_null(d->link);
    for (size_t i = 0; i < N_METERS; i++) {
        d->dev[i] = mtr_device_new(mtr_config_device(d->cfg, i));
        assert_non_null(d->dev[i]);
    }
}

static void direct_close(direct *d)
{
    for (size_t i = 0; i < N_METERS; i++)
        mtr_device_free(d->dev[i]);
    mtr_link_free(d->link);
    mtr_config_free(d->cfg);
}

static int read_unit(direct *d, int unit, mtr_sample *s)
{
    return mtr_device_read(d->dev[unit - 1], d->link, NULL, NULL, s, NULL);
}

static size_t requests_to(trb_bus *b, int unit)
{
    static trb_request log[TRB_LOG_MAX];
    size_t n = trb_requests(b, log, TRB_LOG_MAX), k = 0;
    for (size_t i = 0; i < n; i++)
        k += log[i].unit == unit;
    return k;
}

/*
 * A reply with one data byte flipped fails its CRC. Without retries the poll is flagged
 * (MTR_E_FRAME, quality COMM) and the next poll reads cleanly; with one retry the poll
 * succeeds with exact values after two requests on the wire; when every attempt is corrupted
 * the poll fails after all of them. The neighbour on the bus is never affected.
 */
static void crc_error_flagged_and_retried(void **state)
{
    (void)state;
    trb_bus *b = bus_with(N_METERS);
    mtr_sample s;

    direct d;
    direct_open(&d, b, "timeout_ms = 300\nretries = 0\n");
    trb_corrupt(b, 1, 1);
    assert_int_equal(read_unit(&d, 1, &s), MTR_E_FRAME);
    assert_true(s.quality & MTR_Q_COMM);
    assert_non_null(strstr(mtr_device_error(d.dev[0]), "after 1 attempts reading input 52+24"));
    assert_int_equal(read_unit(&d, 3, &s), MTR_OK);
    assert_exact(&s, meter_of(3));
    assert_int_equal(read_unit(&d, 1, &s), MTR_OK);
    assert_exact(&s, meter_of(1));
    direct_close(&d);

    direct_open(&d, b, "timeout_ms = 300\nretries = 1\nretry_backoff_ms = 20\n");
    trb_clear_log(b);
    trb_corrupt(b, 1, 1);
    assert_int_equal(read_unit(&d, 1, &s), MTR_OK);
    assert_exact(&s, meter_of(1));
    assert_int_equal(requests_to(b, 1), 2);
    trb_corrupt(b, 2, 5); /* more than the attempts: every one fails */
    assert_int_equal(read_unit(&d, 2, &s), MTR_E_FRAME);
    assert_true(s.quality & MTR_Q_COMM);
    assert_non_null(strstr(mtr_device_error(d.dev[1]), "after 2 attempts"));
    trb_corrupt(b, 2, 0);
    assert_int_equal(read_unit(&d, 2, &s), MTR_OK);
    assert_exact(&s, meter_of(2));
    assert_int_equal(read_unit(&d, 3, &s), MTR_OK);
    assert_exact(&s, meter_of(3));
    direct_close(&d);
    trb_free(b);
}

/*
 * Unit 1 answers 250 ms late against a 150 ms timeout. Its late reply lands in the serial
 * buffer while the client does other things; the next request to unit 1 must not take that
 * old reply for its answer (it would report last poll's values as new). A device slower than
 * its timeout only ever times out; once it answers in time again its current values come back.
 */
static void late_reply_never_taken_for_a_later_answer(void **state)
{
    (void)state;
    trb_bus *b = bus_with(N_METERS);
    direct d;
    direct_open(&d, b, "timeout_ms = 150\nretries = 0\n");
    mtr_sample s;
    trb_delay(b, 1, 250);
    assert_int_equal(read_unit(&d, 1, &s), MTR_E_TIMEOUT);
    assert_int_equal(read_unit(&d, 3, &s), MTR_OK); /* answered before unit 1's late reply */
    assert_exact(&s, meter_of(3));
    tst_sleep_ms(300); /* unit 1's late reply is now waiting in the port's input buffer */
    trb_set_float(b, 1, MTR_SDM_POWER, 2000.0f);
    int rc = read_unit(&d, 1, &s);
    if (rc == MTR_OK)
        fail_msg("unit 1 read OK with power %lld W from a late reply", (long long)s.power_w);
    assert_int_equal(rc, MTR_E_TIMEOUT);
    trb_delay(b, 1, 0);
    tst_sleep_ms(300);
    assert_int_equal(read_unit(&d, 1, &s), MTR_OK);
    assert_int_equal(s.power_w, 2000);
    assert_int_equal(s.import_wh, 1234500);
    assert_int_equal(read_unit(&d, 2, &s), MTR_OK);
    assert_exact(&s, meter_of(2));
    direct_close(&d);
    trb_free(b);
}

/* ---- mgx meter --once over RTU ---- */

static const char *mgx_bin(void)
{
    const char *bin = getenv("MGX_BIN");
    return bin ? bin : MGX_BINARY_DIR "/mgx";
}

/* Runs `mgx meter CONF --once` with stdout to out; returns the exit status (-1: hung). */
static int run_once_cli(const char *conf, const char *out, const char *errp)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(out, "w", stdout) || !freopen(errp, "w", stderr))
            _exit(126);
        execl(mgx_bin(), "mgx", "meter", conf, "--once", (char *)NULL);
        _exit(127);
    }
    return tst_wait_exit(pid, 20000);
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
 * The daemon's config with transport = rtu and device = a stable name (a symlink to the pty,
 * as /dev/serial/by-id/... is to /dev/ttyUSB0). Both meters read, one JSON line each with the
 * exact values, exit 0; with a unit that is not on the bus added, its line says why and the
 * exit status is 1.
 */
static void cli_once_over_rtu(void **state)
{
    (void)state;
    trb_bus *b = bus_with(2);
    char *dir = tst_tmpdir("rtu-once");
    char link[600], conf[600], out[600], errp[600];
    snprintf(link, sizeof link, "%s/ttyRS485", dir);
    snprintf(conf, sizeof conf, "%s/meter.ini", dir);
    snprintf(out, sizeof out, "%s/stdout", dir);
    snprintf(errp, sizeof errp, "%s/stderr", dir);
    assert_int_equal(symlink(trb_path(b), link), 0);
    char text[4096] = "[bus]\nhost = 127.0.0.1\ncommunity = test\n\n";
    meter_section(text, sizeof text, "m1", "sdm630", link, 1, "parity = E\n");
    meter_section(text, sizeof text, "m2", "sdm120", link, 2, "parity = E\n");
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);

    int st = run_once_cli(conf, out, errp);
    char *o = tst_file_text(out);
    if (st != 0) {
        char *e = tst_file_text(errp);
        fail_msg("mgx meter --once exited %d\nstdout: %s\nstderr: %s", st, o, e);
    }
    free(o);
    for (int u = 1; u <= 2; u++) {
        o = tst_file_text(out); /* line_of cuts the text after the line it finds */
        char id[8];
        snprintf(id, sizeof id, "m%d", u);
        char *l = line_of(o, id);
        mtr_sample s;
        char why[128];
        if (bus_state_decode(l, strlen(l), id, &s, why, sizeof why) != BUS_OK)
            fail_msg("%s: %s: %s", id, why, l);
        assert_exact(&s, meter_of(u));
        assert_non_null(strstr(l, "\"ok\":true"));
        free(o);
    }

    f = fopen(conf, "a");
    assert_non_null(f);
    fputs("[meter ghost]\nprofile = sdm630\ntransport = rtu\nunit = 9\ntimeout_ms = 200\n"
          "retries = 0\nparity = E\n",
          f);
    fprintf(f, "device = %s\n", link);
    fclose(f);
    assert_int_equal(run_once_cli(conf, out, errp), 1);
    o = tst_file_text(out);
    char *l = line_of(o, "ghost");
    assert_non_null(strstr(l, "\"ok\":false"));
    assert_non_null(strstr(l, "no reply (timeout)"));
    free(o);
    o = tst_file_text(out);
    mtr_sample s;
    l = line_of(o, "m2");
    assert_int_equal(bus_state_decode(l, strlen(l), "m2", &s, NULL, 0), BUS_OK);
    assert_exact(&s, meter_of(2));
    free(o);
    tst_rmtree(dir);
    free(dir);
    trb_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shared_bus_exact_values),
        cmocka_unit_test(pause_between_units_once),
        cmocka_unit_test(pause_across_passes),
        cmocka_unit_test(silent_unit_does_not_block_the_bus),
        cmocka_unit_test(crc_error_flagged_and_retried),
        cmocka_unit_test(late_reply_never_taken_for_a_later_answer),
        cmocka_unit_test(cli_once_over_rtu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
