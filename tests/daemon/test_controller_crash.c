/*
 * Crash test of `mgx controller` (label integration): a real mosquitto broker, the real
 * binary at clock speed 3600 (a quarter hour every 250 ms), and a test client playing 8 homes
 * that submit signed orders for the next open interval and resend each until they hold a
 * receipt. A seeded killer sends SIGKILL to the controller at random moments, at least 20 times,
 * and restarts it each time. At the end, from the database and the bus:
 *  - every interval from the store's first to the last one due is cleared, exactly once, none
 *    skipped;
 *  - every order the homes hold an "accepted" receipt for is in the store as accepted, and
 *    the newest one per home and interval is the one counted in its interval's book;
 *  - each interval's stored result and trades equal a fresh mkt_clear of its stored orders;
 *  - the retained result of every cleared interval is on the bus.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "bus/bus.h"
#include "common/interval.h"
#include "common/wall_clock.h"
#include "homes.h"

#define HOMES 8
#define SPEED 3600
#define COMMUNITY "testville"
#define RUN_MS 14000
#define MIN_KILLS 20
#define DEADLINE_MS 60000

typedef struct {
    char participant[CTL_ID_MAX + 1];
    uint8_t nonce[CTL_ORDER_NONCE_BYTES];
    int64_t interval_id;
} accepted;

typedef struct {
    tst_home homes[HOMES];
    accepted acc[4096];
    size_t n_acc;
    int results_seen[4096]; /* by interval offset from the first */
    int64_t first_interval;
    size_t receipts, rejections;
} world;

static world W;

static void on_msg(void *user, const bus_message *m)
{
    (void)user;
    char community[BUS_ID_MAX], kind[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    if (bus_topic_parse(m->topic, community, kind, id, leaf) != BUS_OK)
        return;
    if (strcmp(kind, "market") == 0 && strcmp(leaf, "result") == 0) {
        int64_t iv = strtoll(id, NULL, 10) - W.first_interval;
        if (W.first_interval && iv >= 0 && iv < 4096)
            W.results_seen[iv]++;
        return;
    }
    if (strcmp(kind, "receipt") != 0)
        return;
    ctl_receipt r;
    char why[CTL_DETAIL_MAX];
    assert_int_equal(ctl_receipt_from_json(m->payload, m->len, &r, why, sizeof why), CTL_R_OK);
    W.receipts++;
    if (tst_homes_take_receipt(W.homes, HOMES, &r) < 0)
        return;
    if (ctl_reason_is_accept(r.reason)) {
        assert_true(W.n_acc < 4096);
        accepted *a = &W.acc[W.n_acc++];
        snprintf(a->participant, sizeof a->participant, "%s", r.participant);
        memcpy(a->nonce, r.nonce, sizeof a->nonce);
        a->interval_id = r.interval_id;
    } else {
        /* late (gate closed while the controller was down) is the only expected refusal */
        W.rejections++;
        assert_true(r.reason == CTL_R_GATE_CLOSED || r.reason == CTL_R_STALE_INTERVAL ||
                    r.reason == CTL_R_EXPIRED);
    }
}

/* A home's order: sellers even, buyers odd; amounts and prices from a seeded generator. */
static const tst_order_shape SHAPE = {3, 100, 900, 80000, 220000, 80000, 220000};

typedef struct {
    mkt_order v[HOMES];
    size_t n;
} book;

static void check_interval_against_fresh_clear(sqlite3 *db, int64_t iv, mkt_clearing *c)
{
    /* the counted orders: accepted, not superseded, one per home */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT o.participant, o.side, s.energy_wh, "
                                        "s.price_uc_per_kwh, m.market_id FROM orders o JOIN "
                                        "order_steps s USING(order_id) JOIN market_ids m "
                                        "USING(participant) WHERE o.interval_id = ?1 AND "
                                        "o.status = 1 AND o.superseded = 0 ORDER BY "
                                        "m.market_id, s.step",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, iv);
    book b = {.n = 0};
    int64_t cur = -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t mid = sqlite3_column_int64(st, 4);
        if (mid != cur) {
            assert_true(b.n < HOMES); /* never two orders of one home */
            mkt_order *o = &b.v[b.n++];
            memset(o, 0, sizeof *o);
            o->participant = (uint64_t)mid;
            o->side = sqlite3_column_int(st, 1) ? MKT_SELL : MKT_BUY;
            cur = mid;
        }
        mkt_order *o = &b.v[b.n - 1];
        o->steps[o->n_steps].energy_wh = sqlite3_column_int64(st, 2);
        o->steps[o->n_steps].price_uc_per_kwh = sqlite3_column_int64(st, 3);
        o->n_steps++;
    }
    sqlite3_finalize(st);
    mkt_params p = {MKT_PAY_AS_CLEAR, 80000, 300000, 0, iv}; /* ties break by interval */
    assert_int_equal(mkt_clear(c, &p, b.v, b.n, NULL), MKT_OK);
    const mkt_summary *s = mkt_clearing_summary(c);
    size_t nt;
    mkt_clearing_trades(c, &nt);
    assert_int_equal(tst_db_int(db, "SELECT n_orders FROM results WHERE interval_id = ?1", iv),
                     (int64_t)b.n);
    assert_int_equal(tst_db_int(db, "SELECT matched_wh FROM results WHERE interval_id = ?1", iv),
                     s->matched_wh);
    assert_int_equal(tst_db_int(db, "SELECT local_value_uc FROM results WHERE interval_id = ?1", iv),
                     s->local_value_uc);
    assert_int_equal(tst_db_int(db, "SELECT price_uc_per_kwh FROM results WHERE interval_id = ?1", iv),
                     s->clearing_price_uc_per_kwh);
    assert_int_equal(tst_db_int(db, "SELECT count(*) FROM trades WHERE interval_id = ?1", iv),
                     (int64_t)nt);
    assert_int_equal(tst_db_int(db, "SELECT coalesce(sum(energy_wh), 0) FROM trades WHERE "
                            "interval_id = ?1",
                        iv),
                     s->matched_wh);
}

static void kill_restart_run(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char db_path[TST_CTL_PATH_MAX], conf[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX];
    char anchor[64];
    char *dir = tst_controller_dir("ctlcrash", db_path, conf, log);
    fclose(tst_controller_config(conf, tst_broker_port(br), COMMUNITY, db_path, -1));

    /* homes in the registry, keys from fixed seeds */
    memset(&W, 0, sizeof W);
    tst_homes_register(W.homes, HOMES, 1, db_path, false);

    /* simulated time starts at 2024-06-01T00:00:00Z now */
    ctl_clock clock = tst_sim_clock(anchor, sizeof anchor);
    const ctl_interval_rules rules = {900, 300, 4};
    W.first_interval = ctl_interval_first_open(ctl_clock_sim_ms(&clock, ctl_wall_ms()) / 1000,
                                               &rules);

    bus_client *c = tst_homes_connect(tst_broker_port(br), COMMUNITY, 0, on_msg);
    char filter[BUS_TOPIC_MAX];
    snprintf(filter, sizeof filter, "mgx/v1/" COMMUNITY "/market/+/result");
    assert_int_equal(bus_subscribe(c, filter, 1), BUS_OK);

    pid_t ctl = tst_controller_start(bin, conf, anchor, log, NULL);
    unsigned seed = 20240601;
    int kills = 0;
    int64_t next_kill = ctl_wall_ms() + 150 + rand_r(&seed) % 400;
    /* the run lasts RUN_MS and MIN_KILLS kills, and goes on (up to DEADLINE_MS more) until the
     * homes hold the receipts the checks below need: a busy machine makes it longer, not red */
    int64_t end = ctl_wall_ms() + RUN_MS, deadline = end + DEADLINE_MS;
    while (ctl_wall_ms() < end || kills < MIN_KILLS ||
           (W.n_acc < (size_t)(HOMES * 20) && ctl_wall_ms() < deadline)) {
        bus_loop(c, 5);
        int64_t now_real = ctl_wall_ms();
        int64_t sim_ms = ctl_clock_sim_ms(&clock, now_real);
        /* the next interval whose gate is at least 100 simulated seconds away */
        int64_t target = ctl_interval_first_open(sim_ms / 1000 + 100, &rules);
        for (int h = 0; h < HOMES; h++) {
            tst_home *hm = &W.homes[h];
            if (!hm->has_pending && hm->done_interval < target && bus_connected(c)) {
                tst_home_make_order(W.homes, h, COMMUNITY, target, sim_ms, &seed, &SHAPE);
                /* some homes replace their order once: the newer one must be what counts */
                if (rand_r(&seed) % 4 == 0) {
                    tst_home_send_order(c, COMMUNITY, hm);
                    tst_home_make_order(W.homes, h, COMMUNITY, target, sim_ms + 1, &seed, &SHAPE);
                }
            }
            if (hm->has_pending && now_real - hm->last_sent_ms > 150 && bus_connected(c))
                tst_home_send_order(c, COMMUNITY, hm);
        }
        /* past the run's kills, the controller is left to catch up */
        if (now_real >= next_kill && (now_real < end || kills < MIN_KILLS)) {
            ctl = tst_controller_restart(ctl, &seed, bin, conf, anchor, log);
            kills++;
            next_kill = ctl_wall_ms() + 100 + rand_r(&seed) % 500;
        }
    }
    /* let the last intervals clear, then stop cleanly */
    int64_t settle = ctl_wall_ms() + 1500;
    while (ctl_wall_ms() < settle)
        bus_loop(c, 10);
    tst_controller_stop(ctl);
    bus_loop(c, 50);

    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int64_t first = tst_db_int(db, "SELECT CAST(value AS INTEGER) FROM ctl_meta WHERE key = "
                           "'first_interval' AND ?1 = ?1",
                       0);
    int64_t lo = tst_db_int(db, "SELECT min(interval_id) FROM intervals WHERE ?1 = ?1", 0);
    int64_t hi = tst_db_int(db, "SELECT max(interval_id) FROM intervals WHERE ?1 = ?1", 0);
    int64_t n = tst_db_int(db, "SELECT count(*) FROM intervals WHERE state = 1 AND ?1 = ?1", 0);
    /* contiguous, each once: ids lo..hi all present (PRIMARY KEY: no id twice) */
    assert_int_equal(lo, first);
    assert_int_equal(n, hi - lo + 1);
    /* 14+ s at 3600x is 14+ simulated hours: at least 50 quarter hours */
    assert_true(n >= 50);
    /* every interval whose gate closed before the clean stop is cleared */
    int64_t stop_sim_s = ctl_clock_sim_ms(&clock, ctl_wall_ms()) / 1000;
    assert_true(hi >= ctl_interval_first_open(stop_sim_s, &rules) - 3);
    /* every receipted acceptance is stored as accepted */
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM orders WHERE participant = ?1 AND "
                                        "nonce = ?2 AND interval_id = ?3 AND status = 1",
                                        -1, &q, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < W.n_acc; i++) {
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, W.acc[i].participant, -1, SQLITE_STATIC);
        sqlite3_bind_blob(q, 2, W.acc[i].nonce, CTL_ORDER_NONCE_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, W.acc[i].interval_id);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), 1);
    }
    sqlite3_finalize(q);
    assert_true(W.n_acc >= (size_t)(HOMES * 20));
    /* each cleared interval equals a fresh clearing of its stored book; the newest receipted
     * order of each home is the one counted */
    mkt_clearing *mc = mkt_clearing_new(HOMES);
    for (int64_t iv = lo; iv <= hi; iv++) {
        check_interval_against_fresh_clear(db, iv, mc);
        assert_true(iv - W.first_interval < 4096);
    }
    mkt_clearing_free(mc);
    assert_int_equal(tst_db_int(db, "SELECT count(*) FROM orders o WHERE status = 1 AND superseded = 0 "
                            "AND EXISTS (SELECT 1 FROM orders p WHERE p.participant = "
                            "o.participant AND p.interval_id = o.interval_id AND p.status = 1 "
                            "AND p.created_ms > o.created_ms) AND ?1 = ?1",
                        0),
                     0);
    /* no accepted order arrived for an interval after it was cleared */
    assert_int_equal(tst_db_int(db, "SELECT count(*) FROM orders o JOIN intervals i USING(interval_id) "
                            "WHERE o.status = 1 AND o.received_ms > i.cleared_ms AND ?1 = ?1",
                        0),
                     0);
    /* every cleared interval's retained result reached the bus (the subscription got the
     * retained copies too) */
    for (int64_t iv = lo; iv <= hi; iv++)
        if (iv - W.first_interval >= 0)
            assert_true(W.results_seen[iv - W.first_interval] >= 1);
    assert_int_equal(tst_db_int(db, "SELECT count(*) FROM intervals WHERE published = 0 AND ?1 = ?1", 0),
                     0);
    sqlite3_close(db);
    fprintf(stderr, "crash test: %d kills, %lld intervals cleared, %zu accepted orders, %zu "
                    "late rejections, %zu receipts\n",
            kills, (long long)n, W.n_acc, W.rejections, W.receipts);

    bus_stop(c, 500);
    bus_free(c);
    tst_homes_free(W.homes, HOMES);
    tst_broker_free(br);
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(kill_restart_run)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
