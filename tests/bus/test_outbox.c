/*
 * Integration tests of the SQLite outbox (controller/src/outbox.c) publishing through the bus
 * adapter to a real mosquitto, observed by an independent subscriber: order and completeness,
 * a broker outage (every message produced during it arrives afterwards, in order, once),
 * survival across close/reopen, both full policies, and the exclusive file lock.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "broker.h"
#include "bus/bus.h"
#include "bus/outbox.h"
#include "recorder.h"

#define TOPIC "mgx/v1/test/meter/m1/state"

static bus_client *connect_bus(int port, const char *id)
{
    bus_config cfg = {.port = port, .client_id = id, .community = "test",
                      .backoff_min_ms = 100, .backoff_max_ms = 400, .log_level = BUS_LOG_WARN};
    bus_client *c = bus_new(&cfg, NULL, NULL, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(bus_start(c), BUS_OK);
    return c;
}

/* A broker (mosquitto config conf, may be NULL) with a recorder rec_id on TOPIC in *r, its
 * session kept across reconnects if keep. */
static tst_broker *start_broker(const char *conf, const char *rec_id, bool keep, recorder **r)
{
    tst_broker *b = tst_broker_start(conf);
    assert_non_null(b);
    *r = rec_start(tst_broker_port(b), rec_id, TOPIC, keep);
    assert_non_null(*r);
    return b;
}

static outbox *open_box(const char *dir, uint64_t max, outbox_policy pol)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/outbox.db", dir);
    outbox_config oc = {.path = path, .max_messages = max, .policy = pol, .window = 8};
    outbox *ob = NULL;
    int rc = outbox_open(&oc, &ob, err, sizeof err);
    if (rc != OUTBOX_OK)
        fail_msg("outbox_open: %s", err);
    return ob;
}

static void push_range(outbox *ob, int from, int to)
{
    for (int i = from; i < to; i++) {
        char p[32];
        int n = snprintf(p, sizeof p, "%d", i);
        outbox_item it = {.topic = TOPIC, .payload = p, .len = (size_t)n, .qos = 1, .retain = true};
        assert_int_equal(outbox_push(ob, &it, 1, 1700000000000 + i, NULL), OUTBOX_OK);
    }
}

/* Drives bus and outbox until the outbox is empty; fails after timeout_ms. */
static void drain(bus_client *c, outbox *ob, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 5) {
        assert_int_equal(outbox_pump(ob, c), OUTBOX_OK);
        if (outbox_count(ob) == 0)
            return;
        bus_loop(c, 5);
    }
    fail_msg("outbox still holds %llu messages", (unsigned long long)outbox_count(ob));
}

/* The recorder's payloads as integers, in arrival order. */
static int *received(recorder *r, size_t *n)
{
    *n = rec_count(r);
    int *v = calloc(*n + 1, sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < *n; i++) {
        rec_msg m;
        assert_true(rec_get(r, i, &m));
        v[i] = atoi(m.payload);
        rec_msg_free(&m);
    }
    return v;
}

/* The recorder holds exactly want readings, first, first + 1, ...: each once and in order. */
static void expect_run(recorder *r, size_t want, int first)
{
    size_t n;
    int *v = received(r, &n);
    assert_int_equal(n, want);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(v[i], first + (int)i);
    free(v);
}

/* Publishes all of the outbox (within drain_ms) and expects the recorder to get exactly want
 * readings from first on, in order, within wait_ms. */
static void deliver(bus_client *c, outbox *ob, recorder *r, size_t want, int first, int drain_ms,
                    int wait_ms)
{
    drain(c, ob, drain_ms);
    assert_int_equal(rec_wait(r, want, wait_ms), want);
    expect_run(r, want, first);
}

/* Stops and frees the bus client, the outbox, the recorder, the broker and the folder. */
static void close_all(bus_client *c, outbox *ob, recorder *r, tst_broker *b, char *dir)
{
    bus_stop(c, 1000);
    bus_free(c);
    outbox_close(ob);
    rec_stop(r);
    tst_broker_free(b);
    tst_rmtree(dir);
    free(dir);
}

static void test_order_and_completeness(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("outbox1");
    recorder *r;
    tst_broker *b = start_broker(NULL, "rec-o1", false, &r);
    outbox *ob = open_box(dir, 100000, OUTBOX_DROP_OLDEST);
    push_range(ob, 0, 2000); /* queued before the bus exists */
    bus_client *c = connect_bus(tst_broker_port(b), "ob1");
    deliver(c, ob, r, 2000, 0, 20000, 10000);
    outbox_stats st;
    outbox_stats_get(ob, &st);
    assert_int_equal(st.published, 2000);
    assert_int_equal(st.queued, 0);
    close_all(c, ob, r, b, dir);
}

static void test_broker_outage(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("outbox2");
    char *pdir = tst_tmpdir("outbox2p");
    chmod(pdir, 0777); /* mosquitto started as root saves as its own user */
    char conf[600];
    /* the recorder's session and its queue survive the kill (saved on every change) */
    snprintf(conf, sizeof conf,
             "persistence true\npersistence_location %s/\nautosave_interval 1\n"
             "autosave_on_changes true\nmax_queued_messages 100000\n",
             pdir);
    recorder *r;
    tst_broker *b = start_broker(conf, "rec-o2", true, &r);
    outbox *ob = open_box(dir, 100000, OUTBOX_DROP_OLDEST);
    bus_client *c = connect_bus(tst_broker_port(b), "ob2");
    push_range(ob, 0, 300);
    drain(c, ob, 20000);
    assert_int_equal(rec_wait(r, 300, 10000), 300);
    tst_sleep_ms(1200); /* let the broker's autosave see the quiet state */

    tst_broker_kill(b);
    /* the outage: readings keep coming and wait in the outbox */
    for (int i = 300; i < 800; i += 50) {
        push_range(ob, i, i + 50);
        for (int k = 0; k < 4; k++) {
            bus_loop(c, 5);
            assert_int_equal(outbox_pump(ob, c), OUTBOX_OK);
        }
    }
    assert_false(bus_connected(c));
    assert_int_equal(outbox_count(ob), 500);
    assert_true(tst_broker_restart(b));
    drain(c, ob, 30000);
    assert_int_equal(rec_wait(r, 800, 15000), 800);
    tst_sleep_ms(200);
    /* every reading exactly once and in order: 0..299 before the outage, 300..799 after */
    expect_run(r, 800, 0);
    close_all(c, ob, r, b, dir);
    tst_rmtree(pdir);
    free(pdir);
}

static void test_survives_reopen(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("outbox3");
    outbox *ob = open_box(dir, 1000, OUTBOX_DROP_OLDEST);
    push_range(ob, 0, 50);
    outbox_close(ob);
    ob = open_box(dir, 1000, OUTBOX_DROP_OLDEST);
    assert_int_equal(outbox_count(ob), 50);

    recorder *r;
    tst_broker *b = start_broker(NULL, "rec-o3", false, &r);
    bus_client *c = connect_bus(tst_broker_port(b), "ob3");
    deliver(c, ob, r, 50, 0, 10000, 5000);
    bus_stop(c, 1000);
    bus_free(c);
    outbox_close(ob);
    /* and it stays empty after reopening: acknowledged means deleted */
    ob = open_box(dir, 1000, OUTBOX_DROP_OLDEST);
    assert_int_equal(outbox_count(ob), 0);
    outbox_close(ob);
    rec_stop(r);
    tst_broker_free(b);
    tst_rmtree(dir);
    free(dir);
}

static void check_full_policy(outbox_policy pol, int first_kept)
{
    char *dir = tst_tmpdir("outbox4");
    outbox *ob = open_box(dir, 10, pol);
    /* 25 pushed into room for 10: drop_oldest keeps 15..24, refuse_newest keeps 0..9 */
    for (int i = 0; i < 25; i++) {
        char p[8];
        int n = snprintf(p, sizeof p, "%d", i);
        outbox_item it = {.topic = TOPIC, .payload = p, .len = (size_t)n, .qos = 1};
        size_t acc = 99;
        int rc = outbox_push(ob, &it, 1, 0, &acc);
        bool room = i < 10;
        assert_int_equal(rc, room || pol == OUTBOX_DROP_OLDEST ? OUTBOX_OK : OUTBOX_E_FULL);
        assert_int_equal(acc, room || pol == OUTBOX_DROP_OLDEST ? 1 : 0);
    }
    outbox_stats st;
    outbox_stats_get(ob, &st);
    assert_int_equal(st.queued, 10);
    assert_int_equal(pol == OUTBOX_DROP_OLDEST ? st.dropped_full : st.refused_full, 15);
    assert_int_equal(pol == OUTBOX_DROP_OLDEST ? st.refused_full : st.dropped_full, 0);

    recorder *r;
    tst_broker *b = start_broker(NULL, "rec-o4", false, &r);
    bus_client *c = connect_bus(tst_broker_port(b), "ob4");
    deliver(c, ob, r, 10, first_kept, 10000, 5000);
    close_all(c, ob, r, b, dir);
}

static void test_full_drop_oldest(void **state)
{
    (void)state;
    check_full_policy(OUTBOX_DROP_OLDEST, 15);
}

static void test_full_refuse_newest(void **state)
{
    (void)state;
    check_full_policy(OUTBOX_REFUSE_NEWEST, 0);
}

static void test_batch_and_lock(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("outbox5");
    outbox *ob = open_box(dir, 100, OUTBOX_DROP_OLDEST);
    outbox_item items[3] = {{TOPIC, "a", 1, 1, true}, {TOPIC, "b", 1, 0, false},
                            {TOPIC, "", 0, 1, false}};
    size_t acc = 0;
    assert_int_equal(outbox_push(ob, items, 3, 5, &acc), OUTBOX_OK);
    assert_int_equal(acc, 3);
    outbox_item bad = {TOPIC, "x", 1, 2, false}; /* QoS 2 is not offered */
    assert_int_equal(outbox_push(ob, &bad, 1, 5, &acc), OUTBOX_E_INVAL);
    assert_int_equal(outbox_count(ob), 3);
    /* a second daemon on the same file is refused while the first holds it */
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/outbox.db", dir);
    outbox_config oc = {.path = path};
    outbox *second = NULL;
    assert_int_equal(outbox_open(&oc, &second, err, sizeof err), OUTBOX_E_DB);
    assert_null(second);
    assert_non_null(strstr(err, "cannot lock"));
    outbox_close(ob);
    assert_int_equal(outbox_open(&oc, &second, err, sizeof err), OUTBOX_OK);
    assert_int_equal(outbox_count(second), 3);
    outbox_close(second);
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_completeness),
        cmocka_unit_test(test_broker_outage),
        cmocka_unit_test(test_survives_reopen),
        cmocka_unit_test(test_full_drop_oldest),
        cmocka_unit_test(test_full_refuse_newest),
        cmocka_unit_test(test_batch_and_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
