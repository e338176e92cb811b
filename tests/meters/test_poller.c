/*
 * Integration tests of the poller (mgx/poller.h) against real libmodbus servers on loopback:
 * 40 Eastron meters behind one host:port polled at 100 ms over 4 connections until each has
 * 10 results (never faster than its period, none starved, values per unit, no more connections
 * than lanes),
 * a dead device that must not hold the others up, a full queue dropping the oldest results,
 * and --once style polling of every device exactly once.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "mgx/poller.h"
#include "modbus_sim.h"
#include "config_text.h"

#define N_METERS 40

/* Unit u of the server is an SDM630 drawing u x 10 W with u kWh imported. */
static tms_server *meters_server(int n)
{
    tms_server *srv = tms_start();
    assert_non_null(srv);
    for (int u = 1; u <= n; u++) {
        tms_add_unit(srv, u, 0, 0, 0, 0x100);
        tms_set_float(srv, u, 4, 0x0034, (float)(u * 10));
        tms_set_float(srv, u, 4, 0x0048, (float)u);
        tms_set_float(srv, u, 4, 0x004A, 0.5f);
    }
    return srv;
}

/* The config of n SDM630 meters m01.. (units 1..n) on the server at port, polled every poll_ms
 * over 4 connections, and with dead_port also one meter "dead" where nothing answers. */
static mtr_config *meters_config(int port, int n, int poll_ms, int dead_port)
{
    size_t cap = (size_t)n * 200 + 512, len = 0;
    char *text = malloc(cap);
    for (int u = 1; u <= n; u++)
        len += (size_t)snprintf(text + len, cap - len,
                                "[meter m%02d]\nprofile = sdm630\nhost = 127.0.0.1\nport = %d\n"
                                "unit = %d\npoll_ms = %d\nconnections = 4\ntimeout_ms = 100\n",
                                u, port, u, poll_ms);
    if (dead_port)
        len += (size_t)snprintf(text + len, cap - len,
                                "[meter dead]\nprofile = sdm630\nhost = 127.0.0.1\nport = %d\n"
                                "poll_ms = %d\ntimeout_ms = 100\nretries = 0\n",
                                dead_port, poll_ms);
    mtr_config *cfg = tst_meters_config(text);
    free(text);
    return cfg;
}

/* Milliseconds on the monotonic clock (the poller's timetable runs on it too). */
static int64_t test_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Every meter is polled, with the right values, until each has 10 results (a generous 120 s
 * deadline: progress, not speed). The poller never polls a meter faster than its period (a
 * lane that falls behind skips the missed slots instead of catching up), so no meter can have
 * more results than whole periods since the start plus one; none is starved by the dead meter
 * on its own lane or by its lane-mates (the slowest has at least half the results of the
 * fastest: a loaded machine slows lanes alike, it does not stop one).
 */
static void periodic_polling(void **state)
{
    (void)state;
    enum { PERIOD_MS = 100, WANT = 10 };
    tms_server *srv = meters_server(N_METERS);
    mtr_config *cfg = meters_config(tms_port(srv), N_METERS, PERIOD_MS, tst_free_port());
    mtr_poller *p = mtr_poller_new(cfg, NULL);
    assert_non_null(p);
    assert_int_equal(mtr_poller_lanes(p), 4 + 1); /* 4 connections to the server, 1 dead */
    int64_t t0 = test_mono_ms();
    assert_int_equal(mtr_poller_start(p), MTR_OK);
    int count[N_METERS + 1] = {0}, dead = 0, bad = 0, slowest = 0;
    mtr_poll_result r;
    while (test_mono_ms() - t0 < 120000 && (slowest < WANT || dead < 5)) {
        if (mtr_poller_next(p, &r, 50) != MTR_OK)
            continue;
        if (!strcmp(r.sample.meter_id, "dead")) {
            dead++;
            bad += r.rc != MTR_E_CONNECT || r.sample.quality != MTR_Q_COMM;
            continue;
        }
        int u = atoi(r.sample.meter_id + 1);
        count[u]++;
        bad += r.rc != MTR_OK || r.sample.quality != MTR_Q_GOOD || r.sample.power_w != u * 10 ||
               r.sample.import_wh != u * 1000 || r.sample.export_wh != 500;
        if (count[u] == 1)
            bad += !r.meta_fresh || strcmp(r.meta.model, "SDM630") != 0;
        slowest = count[1];
        for (int v = 2; v <= N_METERS; v++)
            slowest = count[v] < slowest ? count[v] : slowest;
    }
    mtr_poller_stop(p);
    int64_t elapsed = test_mono_ms() - t0;
    /* drain what is left */
    while (mtr_poller_next(p, &r, 0) == MTR_OK)
        if (strcmp(r.sample.meter_id, "dead") != 0)
            count[atoi(r.sample.meter_id + 1)]++;
    mtr_poller_stats st;
    mtr_poller_stats_get(p, &st);
    assert_int_equal(bad, 0);
    assert_true(dead >= 5); /* the dead meter is tried at its period too */
    int lo = count[1], hi = count[1];
    for (int u = 1; u <= N_METERS; u++) {
        lo = count[u] < lo ? count[u] : lo;
        hi = count[u] > hi ? count[u] : hi;
        if (count[u] > elapsed / PERIOD_MS + 1)
            fprintf(stderr, "m%02d polled %d times in %lld ms\n", u, count[u], (long long)elapsed);
        assert_true(count[u] <= elapsed / PERIOD_MS + 1);
    }
    if (2 * lo < hi)
        fprintf(stderr, "polls per meter from %d to %d\n", lo, hi);
    assert_true(lo >= WANT);
    assert_true(2 * lo >= hi);
    assert_int_equal(st.dropped, 0);
    assert_true(tms_accepts(srv) <= 4 + 1); /* one connection per lane (+1 slack) */
    mtr_poller_free(p);
    mtr_config_free(cfg);
    tms_stop(srv);
}

static void full_queue_drops_oldest(void **state)
{
    (void)state;
    tms_server *srv = meters_server(4);
    mtr_config *cfg = meters_config(tms_port(srv), 4, 20, 0);
    mtr_poller_options opt = {0};
    opt.queue_max = 8;
    mtr_poller *p = mtr_poller_new(cfg, &opt);
    assert_int_equal(mtr_poller_start(p), MTR_OK);
    /* nobody drains until 32 polls were made (4 meters every 20 ms: ~160 ms on an idle
       machine; up to 60 s on a loaded one) into a queue of 8 */
    mtr_poller_stats st;
    struct timespec ts = {0, 20000000L};
    for (int i = 0; i < 3000; i++) {
        mtr_poller_stats_get(p, &st);
        if (st.polls >= 32)
            break;
        nanosleep(&ts, NULL);
    }
    mtr_poller_stop(p);
    mtr_poller_stats_get(p, &st);
    assert_true(st.polls >= 32);
    int n = 0;
    mtr_poll_result r;
    int64_t last_ts = 0;
    while (mtr_poller_next(p, &r, 0) == MTR_OK) {
        n++;
        assert_true(r.sample.ts_ms >= last_ts - 50); /* oldest first */
        last_ts = r.sample.ts_ms;
    }
    assert_int_equal(n, 8);
    assert_true(st.polls > 8);
    assert_int_equal(st.dropped, st.polls - 8);
    assert_int_equal(mtr_poller_next(p, &r, 10), MTR_E_STOPPED);
    mtr_poller_free(p);
    mtr_config_free(cfg);
    tms_stop(srv);
}

typedef struct {
    pthread_mutex_t mu;
    int seen[N_METERS + 2];
    int fails;
} once_ctx;

static void on_result(void *ctx, const mtr_poll_result *r)
{
    once_ctx *c = ctx;
    pthread_mutex_lock(&c->mu);
    if (!strcmp(r->sample.meter_id, "dead"))
        c->seen[N_METERS + 1]++, c->fails += r->rc != MTR_OK;
    else
        c->seen[atoi(r->sample.meter_id + 1)]++;
    pthread_mutex_unlock(&c->mu);
}

static void run_once_polls_each_device_once(void **state)
{
    (void)state;
    tms_server *srv = meters_server(N_METERS);
    mtr_config *cfg = meters_config(tms_port(srv), N_METERS, 1000, tst_free_port());
    mtr_poller *p = mtr_poller_new(cfg, NULL);
    once_ctx c = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
    assert_int_equal(mtr_poller_run_once(p, on_result, &c), MTR_OK);
    for (int u = 1; u <= N_METERS + 1; u++)
        assert_int_equal(c.seen[u], 1);
    assert_int_equal(c.fails, 1);
    mtr_poller_free(p);
    mtr_config_free(cfg);
    tms_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(periodic_polling),
        cmocka_unit_test(full_queue_drops_oldest),
        cmocka_unit_test(run_once_polls_each_device_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
