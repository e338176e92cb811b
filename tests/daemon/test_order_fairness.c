/*
 * Per-home fairness at order ingest (issue 12; docs/trust.md): the real `mgx controller` at
 * clock speed 3600 on a real broker, 8 homes in the registry. Homes 1..7 submit a signed order
 * for every interval and resend it until receipted; once they are going, home 0 publishes
 * 20,000 orders, each validly signed with a fresh nonce (the most expensive junk: every one
 * would need a signature check and a row).
 *
 * Checked: the other homes go on getting receipts, for at least 5 more intervals each after
 * the junk was sent; at most order_max_per_interval (200) of home 0's orders are taken per
 * interval of arrival, the rest never reach the store; the log counts them.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "bus/bus.h"
#include "common/interval.h"
#include "common/wall_clock.h"
#include "homes.h"
#include "shell.h"

#define HOMES 8
#define COMMUNITY "fairville"
#define JUNK 20000
#define BUDGET 200
#define DEADLINE_MS 90000

static tst_home H[HOMES];
static size_t receipts;

static void on_msg(void *user, const bus_message *m)
{
    (void)user;
    ctl_receipt r;
    if (tst_receipt_parse(m, &r) != 1)
        return;
    receipts++;
    tst_homes_take_receipt(H, HOMES, &r);
}

static void ignore(void *user, const bus_message *m)
{
    (void)user, (void)m;
}

static const tst_order_shape SHAPE = {3, 100, 900, 80000, 220000, 80000, 220000};

static void junk_does_not_delay_others(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char db_path[TST_CTL_PATH_MAX], conf[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX], anchor[64];
    char *dir = tst_controller_dir("fair", db_path, conf, log);
    FILE *f = tst_controller_config(conf, tst_broker_port(br), COMMUNITY, db_path, -1);
    fprintf(f, "order_max_per_interval = %d\n", BUDGET);
    fclose(f);
    tst_homes_register(H, HOMES, 1, db_path, false);

    ctl_clock clock = tst_sim_clock(anchor, sizeof anchor);
    const ctl_interval_rules rules = {900, 300, 4};
    bus_client *c = tst_homes_connect(tst_broker_port(br), COMMUNITY, 0, on_msg);
    bus_config jc = {.host = "127.0.0.1", .port = tst_broker_port(br), .client_id = "junk",
                     .community = COMMUNITY, .backoff_min_ms = 50, .backoff_max_ms = 200,
                     .max_pending = JUNK + 100, .log_level = BUS_LOG_WARN};
    bus_client *junk = bus_new(&jc, ignore, NULL, NULL, NULL);
    assert_non_null(junk);
    assert_int_equal(bus_start(junk), BUS_OK);
    while (!bus_connected(junk))
        bus_loop(junk, 10);

    pid_t ctl = tst_controller_start(bin, conf, anchor, log, NULL);
    unsigned seed = 20261205;
    int flooded = 0;
    int64_t after[HOMES] = {0}, flood_real = 0, deadline = ctl_wall_ms() + DEADLINE_MS;
    for (;;) {
        assert_true(ctl_wall_ms() < deadline);
        bus_loop(c, 5);
        bus_loop(junk, 0);
        int64_t now_real = ctl_wall_ms();
        int64_t sim_ms = ctl_clock_sim_ms(&clock, now_real);
        int64_t target = ctl_interval_first_open(sim_ms / 1000 + 100, &rules);
        int all_going = 1, all_done = flooded;
        for (int h = 1; h < HOMES; h++) {
            tst_home *hm = &H[h];
            if (!hm->has_pending && hm->done_interval < target)
                tst_home_make_order(H, h, COMMUNITY, target, sim_ms, &seed, &SHAPE);
            if (hm->has_pending && now_real - hm->last_sent_ms > 150)
                tst_home_send_order(c, COMMUNITY, hm);
            if (hm->done_interval == 0)
                all_going = 0;
            if (!flooded || hm->done_interval < after[h] + 5)
                all_done = 0;
        }
        if (all_done)
            break;
        if (!flooded && all_going) {
            int64_t t0 = ctl_wall_ms();
            for (int i = 0; i < JUNK; i++) {
                tst_home_make_order(H, 0, COMMUNITY, target, sim_ms, &seed, &SHAPE);
                tst_home_send_order(junk, COMMUNITY, &H[0]);
                if (i % 256 == 0)
                    bus_loop(junk, 0);
            }
            flood_real = ctl_wall_ms();
            fprintf(stderr, "junk: %d signed orders queued in %lld ms\n", JUNK,
                    (long long)(flood_real - t0));
            for (int h = 1; h < HOMES; h++)
                after[h] = H[h].done_interval;
            flooded = 1;
        }
    }
    fprintf(stderr, "every other home held receipts for 5 more intervals %lld ms after the junk "
                    "(%zu receipts in all)\n",
            (long long)(ctl_wall_ms() - flood_real), receipts);
    /* let the junk drain through the broker before stopping */
    int64_t until = ctl_wall_ms() + 2000;
    while (ctl_wall_ms() < until) {
        bus_loop(junk, 10);
        bus_loop(c, 0);
    }
    tst_controller_stop(ctl);

    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int64_t worst = tst_db_int(db,
                               "SELECT max(n) FROM (SELECT count(*) AS n FROM orders WHERE "
                               "participant = 'home-0' GROUP BY received_ms / (900000 + ?1))",
                               0);
    int64_t stored = tst_db_int(db, "SELECT count(*) FROM orders WHERE participant = 'home-0' "
                                    "AND ?1 = ?1",
                                0);
    sqlite3_close(db);
    fprintf(stderr, "home-0: %lld of %d orders stored, at most %lld in one interval\n",
            (long long)stored, JUNK, (long long)worst);
    assert_true(worst <= BUDGET);
    assert_true(stored < JUNK);
    assert_int_equal(tst_sh("grep -q 'orders refused: [1-9][0-9]* beyond %d per home and "
                            "interval (latest: order/home-0)' %s",
                            BUDGET, log),
                     0);

    bus_free(junk);
    bus_free(c);
    tst_homes_free(H, HOMES);
    tst_broker_free(br);
    if (getenv("MGX_KEEP_TMP"))
        fprintf(stderr, "kept %s\n", dir);
    else
        tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(junk_does_not_delay_others)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
