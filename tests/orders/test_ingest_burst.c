/*
 * `mgx controller` under a burst of orders (label integration): a real mosquitto broker, the real
 * binary, 300 homes (burst.c's scripts: resends, replays, replacements, stale, forged, junk and
 * unregistered orders mixed in) whose ~700 messages are published at once by 4 clients, each
 * home always through the same client so its own messages keep their order. A fifth client
 * collects the receipts. Checks:
 *  - every message gets exactly one receipt, on its topic, in the order its home sent them;
 *  - each receipt's reason is the one worked out by hand for the script, for the right
 *    participant, interval and nonce, and a resend gets the byte-identical stored receipt;
 *  - the database holds exactly the rows that storing the same messages one per transaction
 *    gives (burst_oracle_one, per home: homes are independent of each other);
 *  - the daemon did commit them in batches (its stop line counts batches), so this is the
 *    batched path, not one order at a time.
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
#include "burst.h"
#include "bus/bus.h"
#include "db/registry.h"
#include "homes.h"

#define HOMES 300
#define CLIENTS 4

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static burst B;

/* Receipts as they arrive, by burst message: each topic's receipts are matched to that topic's
 * messages in burst order (one home, one client: the order it sent them). */
typedef struct {
    char (*receipt)[CTL_RECEIPT_MAX];
    int *got;
    size_t total, unexpected;
    int online;
} seen;

static seen S;

static void on_receipt(void *user, const bus_message *m)
{
    (void)user;
    char community[BUS_ID_MAX], kind[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    if (bus_topic_parse(m->topic, community, kind, id, leaf) != BUS_OK)
        return;
    if (!strcmp(kind, "status") && !strcmp(id, "controller")) {
        S.online = m->len == 6 && !memcmp(m->payload, "online", 6);
        return;
    }
    if (strcmp(kind, "receipt") != 0)
        return;
    S.total++;
    for (size_t i = 0; i < B.n; i++)
        if (!S.got[i] && !strcmp(B.msgs[i].topic, id)) {
            S.got[i] = 1;
            snprintf(S.receipt[i], CTL_RECEIPT_MAX, "%.*s", (int)m->len, m->payload);
            return;
        }
    S.unexpected++;
}

static bus_client *client(int port, const char *id, bus_message_fn fn)
{
    bus_config bc = {.host = "127.0.0.1", .port = port, .client_id = id,
                     .community = BURST_COMMUNITY, .max_pending = 4096,
                     .log_level = BUS_LOG_WARN};
    bus_client *c = bus_new(&bc, fn, NULL, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(bus_start(c), BUS_OK);
    for (int i = 0; i < 200 && !bus_connected(c); i++)
        bus_loop(c, 10);
    assert_true(bus_connected(c));
    return c;
}

/* Every row the order path writes, per participant in arrival order. */
static char *dump(sqlite3 *db)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT participant, hex(nonce), interval_id, "
                                        "created_ms, side, hex(signed), status, reason, "
                                        "superseded, (SELECT count(*) FROM order_steps s WHERE "
                                        "s.order_id = o.order_id) FROM orders o ORDER BY "
                                        "participant, order_id",
                                        -1, &st, NULL),
                     SQLITE_OK);
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const char *t = (const char *)sqlite3_column_text(st, c);
            size_t n = strlen(t ? t : "") + 2;
            while (len + n + 2 > cap)
                assert_non_null(out = realloc(out, cap *= 2));
            len += (size_t)sprintf(out + len, "%s|", t ? t : "");
        }
        out[len++] = '\n';
        out[len] = '\0';
    }
    sqlite3_finalize(st);
    return out;
}

static const char *reason_of(const char *receipt, ctl_receipt *r)
{
    char why[CTL_DETAIL_MAX];
    assert_int_equal(ctl_receipt_from_json(receipt, strlen(receipt), r, why, sizeof why),
                     CTL_R_OK);
    return ctl_reason_name(r->reason);
}

static void burst_through_broker_and_daemon(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char db_path[TST_CTL_PATH_MAX], conf[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX], anchor[64];
    char *dir = tst_controller_dir("ingestburst", db_path, conf, log);

    /* simulated now: 300 s into interval T-3, so the target T is 3 ahead, its gate 2,100 s
     * away, and interval T-3 (the stale one) has started */
    int64_t real0_s = real_ms() / 1000;
    const int64_t T = 1950000;
    int64_t sim0_s = (T - 3) * 900 + 300;
    snprintf(anchor, sizeof anchor, "%lld:%lld", (long long)real0_s, (long long)sim0_s);
    burst_make(&B, HOMES, T, T - 3, sim0_s * 1000 - 60000);

    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[bus]\nhost = 127.0.0.1\nport = %d\nclient_id = controller\n"
            "[controller]\ncommunity = " BURST_COMMUNITY "\ndb = %s\ninterval_s = 900\n"
            "gate_closure_s = 300\nmax_ahead_intervals = 8\n",
            tst_broker_port(br), db_path);
    fclose(f);
    ctl_db *reg;
    assert_int_equal(ctl_registry_open(db_path, &reg, NULL, 0), CTL_REG_OK);
    burst_register(reg, &B);
    ctl_db_close(reg);

    S.receipt = calloc(B.n, sizeof *S.receipt);
    S.got = calloc(B.n, sizeof *S.got);
    bus_client *obs = client(tst_broker_port(br), "observer", on_receipt);
    char filter[BUS_TOPIC_MAX];
    bus_filter_all(filter, sizeof filter, BURST_COMMUNITY, "receipt", NULL);
    assert_int_equal(bus_subscribe(obs, filter, 1), BUS_OK);
    bus_filter_all(filter, sizeof filter, BURST_COMMUNITY, "status", NULL);
    assert_int_equal(bus_subscribe(obs, filter, 1), BUS_OK);
    bus_client *pub[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        char id[16];
        snprintf(id, sizeof id, "homes-%d", i);
        pub[i] = client(tst_broker_port(br), id, NULL);
    }

    pid_t ctl = fork();
    assert_true(ctl >= 0);
    if (ctl == 0) {
        if (!freopen(log, "a", stderr))
            _exit(126);
        execl(bin, bin, "controller", conf, "--clock-anchor", anchor, (char *)NULL);
        _exit(127);
    }
    /* its subscriptions go out right after its online status */
    int64_t until = real_ms() + 10000;
    while (!S.online && real_ms() < until)
        bus_loop(obs, 10);
    assert_true(S.online);
    int64_t t = real_ms() + 300;
    while (real_ms() < t)
        bus_loop(obs, 10);

    /* the burst: everything published at once, each home through its own client */
    char topic[BUS_TOPIC_MAX];
    for (size_t i = 0; i < B.n; i++) {
        const burst_msg *m = &B.msgs[i];
        assert_int_equal(bus_topic_order(topic, sizeof topic, BURST_COMMUNITY, m->topic),
                         BUS_OK);
        assert_int_equal(bus_publish(pub[m->home % CLIENTS], topic, m->body, m->len, 1, false,
                                     NULL, NULL),
                         BUS_OK);
    }
    int64_t t0 = real_ms();
    until = t0 + 30000;
    while (S.total < B.n && real_ms() < until) {
        for (int i = 0; i < CLIENTS; i++)
            bus_loop(pub[i], 0);
        bus_loop(obs, 1);
    }
    int64_t took = real_ms() - t0;
    t = real_ms() + 300; /* nothing more may come */
    while (real_ms() < t)
        bus_loop(obs, 10);
    kill(ctl, SIGTERM);
    int st;
    waitpid(ctl, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    /* one receipt per message, the right one */
    assert_int_equal(S.total, B.n);
    assert_int_equal(S.unexpected, 0);
    for (size_t i = 0; i < B.n; i++) {
        const burst_msg *m = &B.msgs[i];
        assert_true(S.got[i]);
        ctl_receipt r;
        const char *why = reason_of(S.receipt[i], &r);
        if (strcmp(why, m->expect) != 0)
            fail_msg("message %zu (home %zu, script %zu): %s, expected %s", i, m->home,
                     m->home % 10, why, m->expect);
        if (m->dup_of >= 0)
            assert_string_equal(S.receipt[i], S.receipt[m->dup_of]);
        ctl_order_msg om;
        if (ctl_order_from_json(m->body, m->len, &om, NULL, 0) == CTL_R_OK) {
            assert_string_equal(r.participant, om.participant);
            assert_int_equal(r.interval_id, om.interval_id);
            assert_memory_equal(r.nonce, om.nonce, CTL_ORDER_NONCE_BYTES);
        }
    }

    /* the rows equal those of one order per transaction (a fresh store, same messages) */
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *rows = dump(db);
    sqlite3_close(db);
    char ref_path[512], err[256];
    snprintf(ref_path, sizeof ref_path, "%s/reference.db", dir);
    ctl_store_identity id = {BURST_COMMUNITY, 900, T - 10};
    ctl_store *ref;
    assert_int_equal(ctl_store_open(ref_path, &id, &ref, err, sizeof err), CTL_ST_OK);
    burst_register(ctl_store_db(ref), &B);
    char receipt[CTL_RECEIPT_MAX];
    for (size_t i = 0; i < B.n; i++)
        burst_oracle_one(ref, &B.msgs[i], sim0_s * 1000, receipt);
    ctl_store_free(ref);
    assert_int_equal(sqlite3_open_v2(ref_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *ref_rows = dump(db);
    sqlite3_close(db);
    assert_string_equal(rows, ref_rows);
    free(rows);
    free(ref_rows);

    /* committed in batches: "stopping: N orders in M batches (largest L)" */
    f = fopen(log, "r");
    assert_non_null(f);
    char line[1024];
    unsigned long long orders = 0, batches = 0;
    size_t largest = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "stopping: ");
        if (p)
            assert_int_equal(sscanf(p, "stopping: %llu orders in %llu batches (largest %zu)",
                                    &orders, &batches, &largest),
                             3);
    }
    fclose(f);
    assert_int_equal(orders, B.n);
    assert_true(largest >= 2);
    assert_true(batches < orders);
    fprintf(stderr, "burst: %zu messages from %d homes -> %zu receipts in %lld ms, %llu "
                    "batches, largest %zu\n",
            B.n, HOMES, S.total, (long long)took, batches, largest);

    for (int i = 0; i < CLIENTS; i++) {
        bus_stop(pub[i], 200);
        bus_free(pub[i]);
    }
    bus_stop(obs, 200);
    bus_free(obs);
    free(S.receipt);
    free(S.got);
    burst_free(&B);
    tst_broker_free(br);
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(burst_through_broker_and_daemon)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
