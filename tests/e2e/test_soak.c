/*
 * Soak test of orders through broker restarts (label integration): a real mosquitto broker,
 * the real `mgx controller`, and a test client playing HOMES homes that send MGX_SOAK_ORDERS
 * signed QoS 1 orders (1,500 by default; docs/benchmarks.md has the 10,000 run), each resent
 * until its home holds a receipt, while the broker is stopped 3 times with SIGTERM and killed 3
 * times with SIGKILL and started again, evenly through the run. At the end, from the database:
 *  - 0 lost: every order sent has exactly one stored row, whose status (accepted or rejected)
 *    and reason are those of the receipt the home got;
 *  - 0 counted twice: no (participant, nonce) is stored twice, each home's stored orders are
 *    as many as it sent and the store's total is the total sent, and per home and interval
 *    exactly one accepted order is not superseded: the last one the home sent for it.
 *
 * No time window is assumed. The controller runs at real speed, its clock anchored one second
 * into an interval, and the homes order for intervals 2 .. 2 + SPREAD after the first open one,
 * whose gates are at least 25 minutes away; one order per home is in flight at a time, so a
 * home's orders for an interval arrive in the order it made them (each is a replacement). The
 * run ends when every order is receipted, or fails at a deadline far above the run's length.
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
#include <unistd.h>

#include "broker.h"
#include "bus/bus.h"
#include "common/interval.h"
#include "common/wall_clock.h"
#include "homes.h"

#define HOMES 40
#define COMMUNITY "soakville"
#define SPREAD 40              /* intervals the orders are spread over */
#define DEFAULT_ORDERS 1500
#define MAX_ORDERS 100000
#define RESTARTS 6             /* SIGTERM, SIGKILL, alternating */
#define RESEND_MS 200         /* a home resends an order unanswered this long */
#define DEADLINE_MS (20 * 60 * 1000) /* below the 25 minutes to the first order's gate */

typedef struct {
    int home;
    uint8_t nonce[CTL_ORDER_NONCE_BYTES];
    int64_t interval_id;
    int reason; /* the receipt's, -1 until receipted */
} sent_order;

typedef struct {
    tst_home homes[HOMES];
    size_t current[HOMES]; /* index in sent of the home's pending order */
    int64_t last_created_ms[HOMES];
    sent_order *sent;
    size_t n_sent, n_receipted;
    size_t receipts, duplicates, sends;
} world;

static world W;

static void on_msg(void *user, const bus_message *m)
{
    (void)user;
    ctl_receipt r;
    int got = tst_receipt_parse(m, &r);
    if (got == 0)
        return;
    assert_int_equal(got, 1);
    W.receipts++;
    int h = tst_homes_take_receipt(W.homes, HOMES, &r);
    if (h < 0) {
        W.duplicates++; /* a resend's second answer */
        return;
    }
    sent_order *o = &W.sent[W.current[h]];
    assert_int_equal(o->interval_id, r.interval_id);
    o->reason = r.reason;
    W.n_receipted++;
}

/* A home's order: sellers even, buyers odd; amounts and prices from a seeded generator. */
static const tst_order_shape SHAPE = {3, 100, 900, 80000, 220000, 80000, 220000};

static pid_t start_controller(const char *bin, const char *conf, const char *anchor,
                              const char *log)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        execl(bin, bin, "controller", conf, "--clock-speed", "1", "--clock-anchor", anchor,
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

static size_t orders_wanted(void)
{
    const char *env = getenv("MGX_SOAK_ORDERS");
    long n = env ? strtol(env, NULL, 10) : DEFAULT_ORDERS;
    assert_true(n >= RESTARTS + 1 && n <= MAX_ORDERS);
    return (size_t)n;
}

static int64_t db_count(sqlite3 *db, const char *sql, const char *text, const void *blob,
                        size_t blob_len)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (text)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    if (blob)
        sqlite3_bind_blob(st, 2, blob, (int)blob_len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void check_store(const char *db_path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), min(status), max(status), "
                                        "min(reason), max(reason), min(interval_id) FROM orders "
                                        "WHERE participant = ?1 AND nonce = ?2",
                                        -1, &q, NULL),
                     SQLITE_OK);
    size_t lost = 0, twice = 0, mismatched = 0, accepted = 0;
    for (size_t i = 0; i < W.n_sent; i++) {
        const sent_order *o = &W.sent[i];
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, W.homes[o->home].id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(q, 2, o->nonce, CTL_ORDER_NONCE_BYTES, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        int64_t n = sqlite3_column_int64(q, 0);
        if (n == 0) {
            lost++;
            continue;
        }
        twice += n > 1;
        int want_status = ctl_reason_is_accept(o->reason) ? 1 : 0;
        const char *min_reason = (const char *)sqlite3_column_text(q, 3);
        const char *max_reason = (const char *)sqlite3_column_text(q, 4);
        if (sqlite3_column_int(q, 1) != want_status || sqlite3_column_int(q, 2) != want_status ||
            strcmp(min_reason, ctl_reason_name(o->reason)) != 0 ||
            strcmp(max_reason, ctl_reason_name(o->reason)) != 0 ||
            sqlite3_column_int64(q, 5) != o->interval_id) {
            if (mismatched < 10)
                fprintf(stderr, "soak: %s order %zu: receipt %s, stored %s (status %d)\n",
                        W.homes[o->home].id, i, ctl_reason_name(o->reason), min_reason,
                        sqlite3_column_int(q, 1));
            mismatched++;
        }
        accepted += (size_t)want_status;
    }
    sqlite3_finalize(q);
    fprintf(stderr, "soak: %zu sent, %zu accepted, %zu lost, %zu stored twice, %zu unlike "
                    "their receipt\n",
            W.n_sent, accepted, lost, twice, mismatched);
    assert_int_equal(lost, 0);
    assert_int_equal(twice, 0);
    assert_int_equal(mismatched, 0);
    /* the homes' orders for intervals far from their gates are all taken */
    assert_int_equal(accepted, W.n_sent);

    /* no (participant, nonce) twice in the whole store; its counts are what the homes sent */
    assert_int_equal(db_count(db,
                              "SELECT count(*) FROM (SELECT 1 FROM orders GROUP BY participant, "
                              "nonce HAVING count(*) > 1)",
                              NULL, NULL, 0),
                     0);
    assert_int_equal(db_count(db, "SELECT count(*) FROM orders", NULL, NULL, 0),
                     (int64_t)W.n_sent);
    for (int h = 0; h < HOMES; h++) {
        size_t sent = 0;
        for (size_t i = 0; i < W.n_sent; i++)
            sent += W.sent[i].home == h;
        assert_int_equal(db_count(db, "SELECT count(*) FROM orders WHERE participant = ?1",
                                  W.homes[h].id, NULL, 0),
                         (int64_t)sent);
    }
    /* per home and interval one order counts, the last one sent; the rest are superseded */
    assert_int_equal(db_count(db,
                              "SELECT count(*) FROM (SELECT 1 FROM orders WHERE status = 1 AND "
                              "superseded = 0 GROUP BY participant, interval_id HAVING "
                              "count(*) <> 1)",
                              NULL, NULL, 0),
                     0);
    int64_t counted = 0;
    for (size_t i = 0; i < W.n_sent; i++) {
        const sent_order *o = &W.sent[i];
        int last = 1;
        for (size_t j = i + 1; j < W.n_sent && last; j++)
            last = !(W.sent[j].home == o->home && W.sent[j].interval_id == o->interval_id);
        if (!last)
            continue;
        counted++;
        assert_int_equal(db_count(db,
                                  "SELECT count(*) FROM orders WHERE participant = ?1 AND "
                                  "nonce = ?2 AND status = 1 AND superseded = 0",
                                  W.homes[o->home].id, o->nonce, CTL_ORDER_NONCE_BYTES),
                         1);
    }
    assert_int_equal(db_count(db, "SELECT count(*) FROM orders WHERE status = 1 AND "
                                  "superseded = 0",
                              NULL, NULL, 0),
                     counted);
    sqlite3_close(db);
}

static void orders_through_broker_restarts(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    size_t want = orders_wanted();
    memset(&W, 0, sizeof W);
    W.sent = calloc(want, sizeof *W.sent);
    assert_non_null(W.sent);

    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char db_path[TST_CTL_PATH_MAX], conf[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX];
    char *dir = tst_controller_dir("soak", db_path, conf, log);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    /* every resend counts against the per-home budget of one arrival interval: lift it */
    fprintf(f,
            "[bus]\nhost = 127.0.0.1\nport = %d\nclient_id = controller\nbackoff_max_ms = 500\n"
            "[controller]\ncommunity = %s\ndb = %s\ninterval_s = 900\ngate_closure_s = 300\n"
            "max_ahead_intervals = 96\norder_max_per_interval = 1000000\n",
            tst_broker_port(br), COMMUNITY, db_path);
    assert_int_equal(fclose(f), 0);
    tst_homes_register(W.homes, HOMES, 1, db_path, false);

    /* real speed, now = one second into interval 2024-06-01T00:00:00Z: the first open
     * interval starts 15 minutes on, and the homes' first one 30 */
    int64_t t0_ms = ctl_wall_ms();
    char anchor[64];
    const int64_t sim0_s = INT64_C(1717200001);
    snprintf(anchor, sizeof anchor, "%lld:%lld", (long long)(t0_ms / 1000), (long long)sim0_s);
    ctl_clock clock = {t0_ms / 1000 * 1000, sim0_s * 1000, 1};
    const ctl_interval_rules rules = {900, 300, 96};
    int64_t first = ctl_interval_first_open(sim0_s, &rules) + 1;

    bus_client *c = tst_homes_connect(tst_broker_port(br), COMMUNITY, 0, on_msg);
    pid_t ctl = start_controller(bin, conf, anchor, log);

    unsigned seed = 20261205;
    int restarts = 0;
    int64_t restart_at = 0;
    int64_t deadline = ctl_wall_ms() + DEADLINE_MS;
    int64_t t_start = ctl_wall_ms();
    while (W.n_receipted < want) {
        if (ctl_wall_ms() > deadline) {
            fprintf(stderr, "soak: %zu of %zu orders receipted by the deadline; see %s\n",
                    W.n_receipted, want, log);
            fail();
        }
        int status;
        assert_int_equal(waitpid(ctl, &status, WNOHANG), 0); /* the controller stays up */
        bus_loop(c, 5);
        int64_t now = ctl_wall_ms();
        int64_t sim_ms = ctl_clock_sim_ms(&clock, now);
        for (int h = 0; h < HOMES; h++) {
            tst_home *hm = &W.homes[h];
            if (!hm->has_pending && W.n_sent < want) {
                /* strictly newer than the home's last order, so each one replaces it */
                int64_t created = sim_ms > W.last_created_ms[h] ? sim_ms
                                                                : W.last_created_ms[h] + 1;
                W.last_created_ms[h] = created;
                int64_t iv = first + (int64_t)(rand_r(&seed) % SPREAD);
                tst_home_make_order(W.homes, h, COMMUNITY, iv, created, &seed, &SHAPE);
                sent_order *o = &W.sent[W.n_sent];
                o->home = h;
                memcpy(o->nonce, hm->pending.nonce, sizeof o->nonce);
                o->interval_id = iv;
                o->reason = -1;
                W.current[h] = W.n_sent++;
            }
            if (hm->has_pending && bus_connected(c) &&
                (hm->last_sent_ms == 0 || now - hm->last_sent_ms > RESEND_MS)) {
                tst_home_send_order(c, COMMUNITY, hm);
                W.sends++;
            }
        }
        /* the broker restarts, evenly through the run by orders receipted, each at a moment
         * 0..49 ms after its share is reached while the homes go on sending: orders then die
         * on the way in, and receipts of stored orders on the way out */
        if (restarts < RESTARTS && restart_at == 0 &&
            W.n_receipted >= want * (size_t)(restarts + 1) / (RESTARTS + 1))
            restart_at = now + rand_r(&seed) % 50;
        if (restart_at && now >= restart_at) {
            restart_at = 0;
            if (restarts % 2 == 0)
                assert_true(tst_broker_restart_clean(br));
            else
                assert_true(tst_broker_restart(br));
            restarts++;
        }
    }
    int64_t run_ms = ctl_wall_ms() - t_start;
    tst_controller_stop(ctl);
    bus_stop(c, 500);
    bus_free(c);

    check_store(db_path);
    assert_int_equal(restarts, RESTARTS);
    fprintf(stderr,
            "soak: %zu orders from %d homes in %.1f s through %d broker restarts (%d SIGTERM, "
            "%d SIGKILL): %zu sends, %zu receipts (%zu of them second answers to resends)\n",
            W.n_sent, HOMES, (double)run_ms / 1000.0, restarts, (restarts + 1) / 2,
            restarts / 2, W.sends, W.receipts, W.duplicates);

    tst_homes_free(W.homes, HOMES);
    tst_broker_free(br);
    tst_rmtree(dir);
    free(dir);
    free(W.sent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(orders_through_broker_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
