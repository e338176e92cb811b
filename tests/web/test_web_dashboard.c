/*
 * The dashboard end to end (label integration, docs/dashboard.md): a community database filled
 * by the real stack (a private mosquitto broker, `mgx controller` with a settlement key at clock
 * speed 3600, and this test playing 4 homes that send signed orders and meter readings until
 * at least 8 intervals are settled in the ledger, 3 trades of the home that logs in among them), then a real `mgx web` on a free loopback port
 * with a password file made by the real mosquitto_passwd and a coordinator admin file.
 *
 * Expected figures come from the database with this test's own SQL and decoding (not the
 * dashboard's code): the home's latest reading, its trades of the day, its ledger positions and
 * their net, and the grid-only net from the intervals' own tariffs.
 *  - http_api (libcurl): a wrong password and no session get 401; the home reads exactly its
 *    own figures; another home's data, an unknown home and the community view give 403 with
 *    nothing but {"error":"forbidden"}; the coordinator reads every home.
 *  - browser: tests/web/dashboard.test.mjs drives Debian's chromium (puppeteer-core) through the
 *    pages with the same expectations; skipped, with a message, without node, the npm packages
 *    (npm ci in tests/web) or chromium.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "db/db.h"
#include "db/peer_trust.h"
#include "db/prefs.h"
#include "bus/bus.h"
#include "common/interval.h"
#include "common/wall_clock.h"
#include "files.h"
#include "homes.h"
#include "mgx/ledger_record.h"
#include "shell.h"

#define HOMES 4
#define COMMUNITY "webville"
#define GRACE_S 1800   /* half a real second */
#define MIN_BLOCKS 8
#define DEADLINE_MS 120000
#define READ_S 120
#define HOME 1         /* the home that logs in */
#define LIVE_MAX 4     /* live streams the test's server allows */
#define OTHER_IMPORT_WH 424242424 /* another home's new reading: never in home-1's stream */

static struct {
    tst_home homes[HOMES];
    char *dir;
    char db[TST_CTL_PATH_MAX];
    char url[128];
    char expect[600];
    pid_t web;
    pid_t slow; /* slow_reader's server, stopped in teardown if the test fails */
    json_t *want;
} F;

/* ---- the community: the real controller, homes played by this test ---- */

static void on_msg(void *user, const bus_message *m)
{
    (void)user;
    ctl_receipt r;
    if (tst_receipt_parse(m, &r) == 1)
        tst_homes_take_receipt(F.homes, HOMES, &r);
}

static void send_reading(bus_client *c, int h, int64_t ts_s)
{
    mtr_sample s;
    memset(&s, 0, sizeof s);
    snprintf(s.meter_id, sizeof s.meter_id, "m-home-%d", h);
    int64_t min = ts_s / 60;
    s.ts_ms = ts_s * 1000;
    s.import_wh = 100000 * h + (10 + 3 * h) * min;
    s.export_wh = 50000 * h + (h % 2 == 0 ? 40 + 5 * h : 2) * min;
    s.power_w = 100 * h;
    s.soc_permille = -1;
    tst_send_reading(c, COMMUNITY, &s);
}

/* Whether the database holds what the checks need: MIN_BLOCKS settled intervals, and trades of
 * the home that logs in within settled ones (a slow, sanitized build may miss the first
 * intervals' gates; the run then goes on, up to DEADLINE_MS). */
static int ready(const char *db_path)
{
    sqlite3 *db;
    int64_t n = 0, t = 0;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db,
                               "SELECT (SELECT count(*) FROM ledger_block), (SELECT count(*) "
                               "FROM trades WHERE (seller = ?1 OR buyer = ?1) AND interval_id "
                               "IN (SELECT interval_id FROM ledger_block))",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, F.homes[HOME].id, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                n = sqlite3_column_int64(st, 0);
                t = sqlite3_column_int64(st, 1);
            }
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    return n >= MIN_BLOCKS && t >= 3;
}

static void fill_community(const char *bin)
{
    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char conf[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX], anchor[64];
    F.dir = tst_controller_dir("web", F.db, conf, log);
    assert_int_equal(tst_sh("%s ledger keygen web.example/mgx --out %s/community.skey > "
                            "%s/community.vkey",
                            bin, F.dir, F.dir),
                     0);
    FILE *cf = tst_controller_config(conf, tst_broker_port(br), COMMUNITY, F.db, GRACE_S);
    assert_non_null(cf);
    fprintf(cf, "credit_min_tier = 0\n"); /* energy credits: every good export mints */
    fclose(cf);
    tst_homes_register(F.homes, HOMES, 7, F.db, true);

    ctl_clock clock = tst_sim_clock(anchor, sizeof anchor);
    const ctl_interval_rules rules = {900, 300, 4};
    int64_t start_s = ctl_clock_sim_ms(&clock, ctl_wall_ms()) / 1000;
    int64_t next_reading = (start_s / READ_S - 10) * READ_S, replay_from = next_reading;
    bus_client *c = tst_homes_connect(tst_broker_port(br), COMMUNITY, 30000, on_msg);
    pid_t ctl = tst_controller_start(bin, conf, anchor, log, NULL);
    static const tst_order_shape SHAPE = {2, 100, 700, 90000, 60000, 150000, 100000};
    unsigned seed = 14;
    int64_t deadline = ctl_wall_ms() + DEADLINE_MS, next_check = 0, replay_at = ctl_wall_ms() + 500;
    for (;;) {
        int64_t now = ctl_wall_ms();
        if (now >= next_check) {
            if (ready(F.db))
                break;
            assert_true(now < deadline);
            next_check = now + 500;
        }
        bus_loop(c, 5);
        int64_t sim_ms = ctl_clock_sim_ms(&clock, now);
        for (; next_reading <= sim_ms / 1000; next_reading += READ_S)
            for (int h = 0; h < HOMES; h++)
                send_reading(c, h, next_reading);
        if (replay_at && now >= replay_at) { /* what came before the controller subscribed */
            for (int64_t ts = replay_from; ts < next_reading; ts += READ_S)
                for (int h = 0; h < HOMES; h++)
                    send_reading(c, h, ts);
            replay_at = 0;
        }
        int64_t target = ctl_interval_first_open(sim_ms / 1000 + 100, &rules);
        for (int h = 0; h < HOMES; h++) {
            tst_home *hm = &F.homes[h];
            if (!hm->has_pending && hm->done_interval < target)
                tst_home_make_order(F.homes, h, COMMUNITY, target, sim_ms, &seed, &SHAPE);
            if (hm->has_pending && now - hm->last_sent_ms > 150)
                tst_home_send_order(c, COMMUNITY, hm);
        }
    }
    tst_controller_stop(ctl);
    bus_stop(c, 500);
    bus_free(c);
    tst_broker_free(br);
}

/* ---- what settlement and the chain would add, through the db functions ----
 * The short run has no standing preference, boundary dispute or failed chain transaction of
 * its own; the test adds one of each as the controller would record it: a preference of
 * home-1 from the next interval on (ctl_prefs_put), a boundary dispute holding home-2 in the
 * last settled interval (ctl_peer_checks_put) and a Solana transaction the chain refused (the
 * outbox row with state 'failed'). */
#define PREF_SELL_WH 1500
#define PREF_SELL_UC 95000
static void add_records(void)
{
    ctl_db *db = NULL;
    char err[300];
    assert_int_equal(ctl_db_open(F.db, &db, err, sizeof err), CTL_DB_OK);
    sqlite3 *q;
    assert_int_equal(sqlite3_open_v2(F.db, &q, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(q, 5000);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(q, "SELECT (SELECT max(interval_id) FROM intervals WHERE "
                                           "state = 1), (SELECT max(interval_id) FROM ledger_block)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t cleared = sqlite3_column_int64(st, 0), settled = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    mkt_preference p;
    memset(&p, 0, sizeof p);
    p.n_sell_steps = 1;
    p.sell[0] = (mkt_step){PREF_SELL_WH, PREF_SELL_UC};
    uint8_t nonce[CTL_NONCE_BYTES] = {0x14, 0x14};
    const uint8_t signed_msg[] = "a preference's signed bytes (not checked here)";
    ctl_pref_rec r = {F.homes[HOME].id, nonce, cleared + 1, 1, 1, &p, signed_msg,
                      sizeof signed_msg, "{\"status\":\"accepted\"}"};
    assert_int_equal(ctl_db_begin(db), 0);
    assert_int_equal(ctl_prefs_put(db, &r), CTL_ST_OK);
    assert_int_equal(ctl_db_end(db, 1), 0);
    ctl_peer_check_row row = {.interval_id = settled, .disputed = 1};
    snprintf(row.participant, sizeof row.participant, "%s", F.homes[2].id);
    assert_int_equal(ctl_peer_checks_put(db, &row, 1), CTL_DB_OK);
    char sql[600];
    snprintf(sql, sizeof sql,
             "INSERT INTO solana_outbox(interval_id, part, n_parts, state, tx, signature, "
             "blockhash, last_valid_block_height, created_ms, updated_ms, last_error) VALUES "
             "(%lld, 1, 1, 'failed', x'00', 'sig-web-test', 'hash', 1, 1, 1, 'refused')",
             (long long)settled);
    assert_int_equal(sqlite3_exec(q, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(q);
    ctl_db_close(db);
}

/* ---- what the dashboard must show, from the database directly ---- */

static int64_t q_int(sqlite3 *db, const char *sql, const char *text)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (text)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The positions of participant name in intervals starting in [from, to): count, held, net,
 * grid-only net. */
static void positions_in(sqlite3 *db, const char *name, int64_t from, int64_t to, int64_t out[4])
{
    memset(out, 0, 4 * sizeof *out);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT t.body, i.retail_uc_per_kwh, i.feed_in_uc_per_kwh FROM "
                           "ledger_tx t JOIN ledger_block b ON b.height = t.height JOIN "
                           "intervals i ON i.interval_id = b.interval_id JOIN market_ids m ON "
                           "m.market_id = t.participant WHERE m.participant = ?1 AND "
                           "i.start_utc >= ?2 AND i.start_utc < ?3 ORDER BY t.log_index",
                           -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    while (sqlite3_step(st) == SQLITE_ROW) {
        stl_tx tx;
        assert_int_equal(stl_tx_decode(sqlite3_column_blob(st, 0),
                                       (size_t)sqlite3_column_bytes(st, 0), &tx),
                         STL_OK);
        if (tx.kind != STL_TX_POSITION)
            continue;
        const stl_position *p = &tx.position;
        out[0]++;
        out[1] += p->status != STL_POS_GOOD && p->status != STL_POS_ESTIMATED;
        out[2] += p->local_received_uc + p->grid_received_uc - p->local_paid_uc - p->grid_paid_uc;
        /* grid only: export at feed-in minus import at retail, each floored (values >= 0) */
        out[3] += p->export_wh * sqlite3_column_int64(st, 2) / 1000 -
                  p->import_wh * sqlite3_column_int64(st, 1) / 1000;
    }
    sqlite3_finalize(st);
}

/* participant name's credit records (kind 3) in blocks of intervals starting in [from, to):
 * minted, bought (in), sold (out), retired, kept. */
static void credits_in(sqlite3 *db, const char *name, int64_t from, int64_t to, int64_t out[5])
{
    memset(out, 0, 5 * sizeof *out);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT t.body, (SELECT market_id FROM market_ids WHERE participant = "
                           "?1) FROM ledger_tx t JOIN ledger_block b ON b.height = t.height JOIN "
                           "intervals i ON i.interval_id = b.interval_id WHERE i.start_utc >= ?2 "
                           "AND i.start_utc < ?3",
                           -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    while (sqlite3_step(st) == SQLITE_ROW) {
        stl_tx tx;
        assert_int_equal(stl_tx_decode(sqlite3_column_blob(st, 0),
                                       (size_t)sqlite3_column_bytes(st, 0), &tx),
                         STL_OK);
        if (tx.kind != STL_TX_CREDIT ||
            tx.credit.participant != (uint64_t)sqlite3_column_int64(st, 1))
            continue;
        out[0] += tx.credit.minted_wh;
        out[1] += tx.credit.in_wh;
        out[2] += tx.credit.out_wh;
        out[3] += tx.credit.retired_wh;
        out[4] += tx.credit.kept_wh;
    }
    sqlite3_finalize(st);
}

static void positions_of(sqlite3 *db, const char *name, int64_t day0, int64_t out[4])
{
    positions_in(db, name, day0, day0 + 86400, out);
}

static json_t *expectations(void)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(F.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    const char *home = F.homes[HOME].id;
    int64_t last = q_int(db, "SELECT max(interval_id) FROM intervals WHERE state = 1", NULL);
    int64_t day0 = last * 900 / 86400 * 86400;
    int64_t pos[4];
    positions_of(db, home, day0, pos);
    char day[16];
    time_t t = (time_t)day0;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM trades WHERE (seller = ?1 OR buyer = ?1) AND interval_id >= "
             "%lld AND interval_id < %lld",
             (long long)(day0 / 900), (long long)(day0 / 900 + 96));
    int64_t trades = q_int(db, sql, home);
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(energy_wh), 0) FROM trades WHERE (seller = ?1 OR buyer = ?1) "
             "AND interval_id >= %lld AND interval_id < %lld",
             (long long)(day0 / 900), (long long)(day0 / 900 + 96));
    int64_t energy = q_int(db, sql, home);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM intervals WHERE state = 1 AND ?1 = ?1 AND interval_id >= "
             "%lld AND interval_id < %lld",
             (long long)(day0 / 900), (long long)(day0 / 900 + 96));
    int64_t intervals = q_int(db, sql, "x");
    json_t *homes = json_array(), *home_pos = json_array(), *others = json_array();
    for (int h = 0; h < HOMES; h++) {
        int64_t p[4];
        positions_of(db, F.homes[h].id, day0, p);
        json_array_append_new(homes, json_string(F.homes[h].id));
        json_array_append_new(home_pos, json_integer(p[0]));
        if (h != HOME)
            json_array_append_new(others, json_string(F.homes[h].id));
    }
    char meter[32];
    snprintf(meter, sizeof meter, "m-home-%d", HOME);
    json_t *w = json_pack(
        "{ss ss ss ss ss sI sI sI sI sI sI sI sI sI so so so}", "home", home, "home_password",
        "pw for home 1", "admin", "coord", "admin_password", "coordinator pw", "day", day,
        "reading_import_wh",
        (json_int_t)q_int(db, "SELECT import_wh FROM readings WHERE meter_id = ?1 ORDER BY ts_ms DESC LIMIT 1", meter),
        "reading_export_wh",
        (json_int_t)q_int(db, "SELECT export_wh FROM readings WHERE meter_id = ?1 ORDER BY ts_ms DESC LIMIT 1", meter),
        "positions", (json_int_t)pos[0], "held", (json_int_t)pos[1], "net_uc", (json_int_t)pos[2],
        "grid_only_net_uc", (json_int_t)pos[3], "trades", (json_int_t)trades, "trade_energy_wh",
        (json_int_t)energy, "intervals", (json_int_t)intervals, "homes", homes, "home_positions",
        home_pos, "others", others);
    assert_non_null(w);
    /* the bill as the page must print it: two decimals of the currency, cut toward zero */
    char text[48];
    int64_t a = pos[2] < 0 ? -pos[2] : pos[2];
    snprintf(text, sizeof text, "%s%lld.%02lld", pos[2] < 0 ? "-" : "", (long long)(a / 1000000),
             (long long)(a % 1000000 / 10000));
    json_object_set_new(w, "net_text", json_string(text));
    /* the month: June 2024 (the simulated clock starts on its first day) */
    int64_t month[4];
    positions_in(db, home, 1717200000, 1719792000, month);
    json_object_set_new(w, "month_net_uc", json_integer(month[2]));
    snprintf(sql, sizeof sql,
             "SELECT max(b.interval_id) FROM ledger_block b JOIN ledger_tx t ON t.height = "
             "b.height JOIN market_ids m ON m.market_id = t.participant WHERE m.participant = ?1");
    json_object_set_new(w, "last_position_interval", json_integer(q_int(db, sql, home)));
    json_object_set_new(
        w, "orders",
        json_integer(q_int(db,
                           "SELECT count(*) FROM orders WHERE participant = ?1 AND superseded = 0 "
                           "AND interval_id >= (SELECT min(interval_id) FROM (SELECT DISTINCT "
                           "interval_id FROM orders WHERE participant = ?1 ORDER BY interval_id "
                           "DESC LIMIT 2))",
                           home)));
    json_object_set_new(w, "month_grid_only_net_uc", json_integer(month[3]));
    int64_t cr[5];
    credits_in(db, home, 1717200000, 1719792000, cr);
    json_object_set_new(w, "credits", json_pack("{sI sI sI sI sI}", "minted_wh", (json_int_t)cr[0],
                                                 "bought_wh", (json_int_t)cr[1], "sold_wh",
                                                 (json_int_t)cr[2], "retired_wh",
                                                 (json_int_t)cr[3], "kept_wh", (json_int_t)cr[4]));
    int64_t all_minted = 0;
    for (int h = 0; h < HOMES; h++) {
        int64_t c[5];
        credits_in(db, F.homes[h].id, 1717200000, 1719792000, c);
        all_minted += c[0];
    }
    json_object_set_new(w, "last_settled", json_integer(q_int(db, "SELECT max(interval_id) FROM ledger_block", NULL)));
    json_object_set_new(w, "last_settled_end", json_integer(900 + 900 * q_int(db, "SELECT max(interval_id) FROM ledger_block", NULL)));
    json_object_set_new(w, "unsettled", json_integer(q_int(db, "SELECT count(*) FROM intervals i WHERE state = 1 AND NOT EXISTS (SELECT 1 FROM ledger_block b WHERE b.interval_id = i.interval_id)", NULL)));
    json_object_set_new(w, "outbox_failed", json_integer(q_int(db, "SELECT count(*) FROM solana_outbox WHERE state = 'failed'", NULL)));
    json_object_set_new(w, "disputed_intervals", json_integer(q_int(db, "SELECT count(DISTINCT interval_id) FROM peer_checks WHERE disputed = 1", NULL)));
    json_object_set_new(w, "pref_sell_wh", json_integer(PREF_SELL_WH));
    json_object_set_new(w, "pref_text", json_string("sell any amount at 0.0950"));
    sqlite3_close(db);
    /* credits were minted in the run (credit_min_tier = 0), so the figures mean something */
    assert_true(all_minted > 0);
    /* the run means something: positions settled, trades made, money moved */
    assert_true(pos[0] >= MIN_BLOCKS - 1);
    assert_true(trades > 0);
    assert_true(pos[2] != pos[3]);
    return w;
}

/* ---- mgx web ---- */

static void start_web(const char *bin)
{
    char pw[600], admin[600], conf[600], out[600];
    snprintf(pw, sizeof pw, "%s/passwd", F.dir);
    snprintf(admin, sizeof admin, "%s/admin.passwd", F.dir);
    assert_int_equal(tst_sh("mosquitto_passwd -c -b %s home-0 'pw for home 0' && "
                            "mosquitto_passwd -b %s home-1 'pw for home 1' && "
                            "mosquitto_passwd -b %s home-2 'pw for home 2' && "
                            "mosquitto_passwd -b %s home-3 'pw for home 3' && "
                            "mosquitto_passwd -c -b %s coord 'coordinator pw'",
                            pw, pw, pw, pw, admin),
                     0);
    snprintf(conf, sizeof conf, "%s/web.ini", F.dir);
    snprintf(out, sizeof out, "%s/web.out", F.dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[web]\nlisten = 127.0.0.1\nport = %d\ndatabase = ctl.db\n"
               "password_file = passwd\nadmin_file = admin.passwd\nmax_sessions = 16\n"
               "live_max_clients = %d\nlive_poll_ms = 200\nthreads = 2\n",
            tst_free_port(), LIVE_MAX);
    fclose(f);
    F.web = fork();
    assert_true(F.web >= 0);
    if (F.web == 0) {
        if (!freopen(out, "w", stdout))
            _exit(126);
        execl(bin, bin, "web", conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && !F.url[0]; i++) {
        usleep(100000);
        char *text = tst_file_text_or_empty(out);
        char *at = strstr(text, "serving ");
        if (at)
            sscanf(at + 8, "%127s", F.url);
        free(text);
    }
    assert_true(F.url[0]);
}

static int setup(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    if (!bin)
        return -1;
    fill_community(bin);
    add_records();
    F.want = expectations();
    snprintf(F.expect, sizeof F.expect, "%s/expect.json", F.dir);
    json_dump_file(F.want, F.expect, JSON_INDENT(1));
    start_web(bin);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (F.slow > 0) {
        kill(F.slow, SIGTERM);
        tst_wait_exit(F.slow, 10000);
    }
    if (F.web > 0) {
        kill(F.web, SIGTERM);
        int st = tst_wait_exit(F.web, 10000);
        if (st != 0)
            fprintf(stderr, "mgx web exited with %d\n", st);
    }
    json_decref(F.want);
    tst_homes_free(F.homes, HOMES);
    curl_global_cleanup();
    if (!getenv("MGX_TEST_KEEP"))
        tst_rmtree(F.dir);
    else
        fprintf(stderr, "kept %s\n", F.dir);
    free(F.dir);
    return 0;
}

/* ---- http_api ---- */

typedef struct {
    char buf[1 << 20];
    size_t len;
} body;

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    body *b = ctx;
    size_t k = size * n;
    if (b->len + k >= sizeof b->buf)
        return 0;
    memcpy(b->buf + b->len, p, k);
    b->len += k;
    b->buf[b->len] = 0;
    return k;
}

/* One request on handle c (its cookie engine keeps the session); returns the status. */
static long req(CURL *c, const char *path, const char *post, body *b)
{
    char u[256];
    snprintf(u, sizeof u, "%s%s", F.url, path + 1);
    b->len = 0;
    b->buf[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");
    static struct curl_slist *json;
    if (!json)
        json = curl_slist_append(NULL, "Content-Type: application/json");
    if (post) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, json);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    }
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static int64_t want_int(const char *k) { return json_integer_value(json_object_get(F.want, k)); }

static void http_api(void **state)
{
    (void)state;
    static body b;
    CURL *c = curl_easy_init();
    assert_non_null(c);
    assert_int_equal(req(c, "/api/me", NULL, &b), 401);
    assert_int_equal(req(c, "/api/home/home-1", NULL, &b), 401);
    /* wrong password, an unknown user, a home's password for another home */
    assert_int_equal(req(c, "/api/login", "{\"user\":\"home-1\",\"password\":\"pw for home 2\"}", &b), 401);
    assert_int_equal(req(c, "/api/login", "{\"user\":\"home-9\",\"password\":\"pw for home 1\"}", &b), 401);
    assert_int_equal(req(c, "/api/login", "{\"user\":\"coord\",\"password\":\"pw for home 1\"}", &b), 401);
    assert_int_equal(req(c, "/api/me", NULL, &b), 401);
    /* a form post (what another site's page can send without asking) is not a login */
    {
        char u[256];
        snprintf(u, sizeof u, "%sapi/login", F.url);
        CURL *f = curl_easy_init();
        curl_easy_setopt(f, CURLOPT_URL, u);
        curl_easy_setopt(f, CURLOPT_POSTFIELDS, "{\"user\":\"home-1\",\"password\":\"pw for home 1\"}");
        curl_easy_setopt(f, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(f, CURLOPT_WRITEDATA, &b);
        assert_int_equal(curl_easy_perform(f), CURLE_OK);
        long st = 0;
        curl_easy_getinfo(f, CURLINFO_RESPONSE_CODE, &st);
        assert_int_equal(st, 415);
        curl_easy_cleanup(f);
    }
    /* the home */
    assert_int_equal(req(c, "/api/login", "{\"user\":\"home-1\",\"password\":\"pw for home 1\"}", &b), 200);
    assert_int_equal(req(c, "/api/home/home-1", NULL, &b), 200);
    json_t *d = json_loads(b.buf, 0, NULL);
    assert_non_null(d);
    json_t *bill = json_object_get(d, "bill");
    assert_int_equal(json_integer_value(json_object_get(bill, "net_uc")), want_int("net_uc"));
    assert_int_equal(json_integer_value(json_object_get(bill, "grid_only_net_uc")),
                     want_int("grid_only_net_uc"));
    assert_int_equal(json_integer_value(json_object_get(bill, "intervals")), want_int("positions"));
    json_t *mb = json_object_get(d, "month_bill");
    assert_string_equal(json_string_value(json_object_get(mb, "month")), "2024-06");
    assert_int_equal(json_integer_value(json_object_get(mb, "net_uc")), want_int("month_net_uc"));
    assert_int_equal(json_integer_value(json_object_get(mb, "grid_only_net_uc")),
                     want_int("month_grid_only_net_uc"));
    assert_int_equal(json_integer_value(json_object_get(bill, "held")), want_int("held"));
    assert_int_equal(json_array_size(json_object_get(d, "trades")), (size_t)want_int("trades"));
    assert_int_equal(json_array_size(json_object_get(d, "orders")), (size_t)want_int("orders"));
    assert_true(want_int("orders") >= 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "reading"), "import_wh")),
                     want_int("reading_import_wh"));
    /* credits of the month: the ledger's credit records, decoded here */
    json_t *cr = json_object_get(d, "credits"), *wc = json_object_get(F.want, "credits");
    const char *ck[] = {"minted_wh", "bought_wh", "sold_wh", "retired_wh", "kept_wh"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(json_integer_value(json_object_get(cr, ck[i])),
                         json_integer_value(json_object_get(wc, ck[i])));
    /* its standing preference */
    json_t *pref = json_object_get(d, "preference");
    assert_int_equal(json_array_size(json_object_get(pref, "sell")), 1);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(pref, "sell"), 0), "energy_wh")),
                     PREF_SELL_WH);
    assert_int_equal(json_array_size(json_object_get(pref, "buy")), 0);
    /* the home's document names no other home */
    for (int h = 0; h < HOMES; h++) {
        char quoted[40];
        snprintf(quoted, sizeof quoted, "\"%s\"", F.homes[h].id);
        if (h != HOME && strstr(b.buf, quoted))
            fail_msg("home-1's document names %s", F.homes[h].id);
    }
    json_decref(d);
    /* another home, an unknown one, the community: 403 and nothing else */
    const char *forbidden[] = {"/api/home/home-2", "/api/home/home-0?day=2024-06-01",
                               "/api/home/nobody", "/api/home/", "/api/community",
                               "/api/home/home-10"};
    for (size_t i = 0; i < sizeof forbidden / sizeof *forbidden; i++) {
        assert_int_equal(req(c, forbidden[i], NULL, &b), 403);
        assert_string_equal(b.buf, "{\"error\":\"forbidden\"}");
    }
    assert_int_equal(req(c, "/api/home/home-1?day=2024-13-01", NULL, &b), 400);
    /* proofs: its own, not another home's */
    char path[128];
    snprintf(path, sizeof path, "/api/home/home-1/proof?interval=%lld",
             (long long)want_int("last_position_interval"));
    assert_int_equal(req(c, path, NULL, &b), 200);
    assert_non_null(strstr(b.buf, "mgx-inclusion-proof/"));
    snprintf(path, sizeof path, "/api/home/home-2/proof?interval=%lld",
             (long long)want_int("last_position_interval"));
    assert_int_equal(req(c, path, NULL, &b), 403);
    assert_string_equal(b.buf, "{\"error\":\"forbidden\"}");
    assert_int_equal(req(c, "/api/home/home-1/proof?interval=1", NULL, &b), 404);
    assert_int_equal(req(c, "/api/home/home-1/proof", NULL, &b), 400);
    assert_int_equal(req(c, "/api/logout", "", &b), 200);
    assert_int_equal(req(c, "/api/home/home-1", NULL, &b), 401);
    /* the coordinator */
    assert_int_equal(req(c, "/api/login", "{\"user\":\"coord\",\"password\":\"coordinator pw\"}", &b), 200);
    assert_int_equal(req(c, "/api/community", NULL, &b), 200);
    d = json_loads(b.buf, 0, NULL);
    assert_non_null(d);
    json_t *homes = json_object_get(d, "homes");
    assert_int_equal(json_array_size(homes), HOMES);
    for (int h = 0; h < HOMES; h++) {
        json_t *x = json_array_get(homes, (size_t)h);
        assert_string_equal(json_string_value(json_object_get(x, "id")), F.homes[h].id);
        assert_int_equal(json_integer_value(json_object_get(x, "positions")),
                         json_integer_value(json_array_get(json_object_get(F.want, "home_positions"), (size_t)h)));
    }
    assert_int_equal(json_array_size(json_object_get(d, "intervals")), (size_t)want_int("intervals"));
    /* settlement lag and the alerts, against the database */
    json_t *st = json_object_get(d, "settlement");
    assert_int_equal(json_integer_value(json_object_get(st, "last_settled_id")), want_int("last_settled"));
    assert_int_equal(json_integer_value(json_object_get(st, "unsettled")), want_int("unsettled"));
    int64_t lag = json_integer_value(json_object_get(st, "lag_s"));
    int64_t wall_lag = ctl_wall_ms() / 1000 - want_int("last_settled_end");
    assert_true(lag <= wall_lag && lag >= wall_lag - 60); /* asked within the last minute */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "outbox"), "failed")),
                     want_int("outbox_failed"));
    assert_int_equal(json_array_size(json_object_get(d, "disputes")), (size_t)want_int("disputed_intervals"));
    int kinds = 0;
    size_t ai;
    json_t *a;
    json_array_foreach(json_object_get(d, "alerts"), ai, a) {
        const char *k = json_string_value(json_object_get(a, "kind"));
        if (strcmp(k, "meter_silent") == 0) {
            kinds |= 1;
            assert_int_equal(json_array_size(json_object_get(a, "homes")), HOMES);
        } else if (strcmp(k, "disputed") == 0) {
            kinds |= 2;
            assert_int_equal(json_integer_value(json_object_get(a, "interval_id")), want_int("last_settled"));
        } else if (strcmp(k, "chain_failed") == 0) {
            kinds |= 4;
            assert_int_equal(json_integer_value(json_object_get(a, "failed")), want_int("outbox_failed"));
        } else if (strcmp(k, "settlement_lag") == 0) {
            kinds |= 8;
        }
    }
    assert_int_equal(kinds, 15);
    json_decref(d);
    assert_int_equal(req(c, "/api/home/home-2", NULL, &b), 200);
    assert_int_equal(req(c, "/api/home/nobody", NULL, &b), 404);
    /* guessing home-3's password: five wrong ones lock the name, the right one then gets 429 */
    for (int i = 0; i < 5; i++)
        assert_int_equal(req(c, "/api/login", "{\"user\":\"home-3\",\"password\":\"guess\"}", &b), 401);
    assert_int_equal(req(c, "/api/login", "{\"user\":\"home-3\",\"password\":\"pw for home 3\"}", &b), 429);
    assert_int_equal(req(c, "/api/login", "{\"user\":\"home-0\",\"password\":\"pw for home 0\"}", &b), 200);
    curl_easy_cleanup(c);
}

/* ---- tls: the same server with tls_cert and tls_key ---- */

static void tls(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    char conf[600], out[600], cert[600], url[128] = "";
    snprintf(cert, sizeof cert, "%s/cert.pem", F.dir);
    if (tst_sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
               "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -days 2 "
               "-keyout %s/key.pem -out %s 2>/dev/null",
               F.dir, cert) != 0) {
        fprintf(stderr, "SKIP tls: openssl cannot make a test certificate\n");
        skip();
    }
    snprintf(conf, sizeof conf, "%s/tls.ini", F.dir);
    snprintf(out, sizeof out, "%s/tls.out", F.dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[web]\nport = 0\ndatabase = ctl.db\npassword_file = passwd\n"
               "tls_cert = cert.pem\ntls_key = key.pem\n");
    fclose(f);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(out, "w", stdout))
            _exit(126);
        execl(bin, bin, "web", conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && !url[0]; i++) {
        usleep(100000);
        char *text = tst_file_text_or_empty(out);
        char *at = strstr(text, "serving ");
        if (at)
            sscanf(at + 8, "%127s", url);
        free(text);
    }
    assert_int_equal(strncmp(url, "https://127.0.0.1:", 18), 0);
    static body b;
    CURL *c = curl_easy_init();
    char u[200];
    snprintf(u, sizeof u, "%sapi/login", url);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CAINFO, cert);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");
    struct curl_slist *json = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, json);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"user\":\"home-1\",\"password\":\"pw for home 1\"}");
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    /* the cookie is marked Secure over TLS */
    struct curl_slist *cookies = NULL;
    curl_easy_getinfo(c, CURLINFO_COOKIELIST, &cookies);
    assert_non_null(cookies);
    assert_true(strstr(cookies->data, "mgx_session") != NULL);
    assert_true(strstr(cookies->data, "\tTRUE\t/\tTRUE\t") != NULL ||
                strstr(cookies->data, "\tFALSE\t/\tTRUE\t") != NULL); /* secure column */
    curl_slist_free_all(cookies);
    snprintf(u, sizeof u, "%sapi/home/home-2", url);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 403);
    curl_easy_cleanup(c);
    curl_slist_free_all(json);
    kill(pid, SIGTERM);
    assert_int_equal(tst_wait_exit(pid, 10000), 0);
}

/* ---- browser ---- */

static void browser(void **state)
{
    (void)state;
#ifndef MGX_NODE
    skip(); /* no node at configure time: printed by CMake */
#else
    char mod[600];
    snprintf(mod, sizeof mod, "%s/tests/web/node_modules/puppeteer-core", MGX_SOURCE_DIR);
    struct stat sb;
    if (stat(mod, &sb) != 0) {
        fprintf(stderr, "SKIP browser: no %s (npm ci in tests/web)\n", mod);
        skip();
    }
    if (access("/usr/bin/chromium", X_OK) != 0 && !getenv("MGX_CHROMIUM")) {
        fprintf(stderr, "SKIP browser: no /usr/bin/chromium (apt-get install chromium)\n");
        skip();
    }
    json_object_set_new(F.want, "charts", json_boolean(MGX_WEB_CHARTS));
    char mark[600], cmd[2400];
    snprintf(mark, sizeof mark, "%s/live-ready", F.dir);
    json_object_set_new(F.want, "live_mark", json_string(mark));
    json_object_set_new(F.want, "live_import_wh", json_integer(want_int("reading_import_wh") + 777));
    json_object_set_new(F.want, "other_import_wh", json_integer(OTHER_IMPORT_WH));
    json_object_set_new(F.want, "live_max", json_integer(LIVE_MAX));
    /* the community's verifier key as `mgx ledger keygen` wrote it: what the browser must pin */
    char vkp[600];
    snprintf(vkp, sizeof vkp, "%s/community.vkey", F.dir);
    char *vk = tst_file_text_or_empty(vkp);
    vk[strcspn(vk, "\r\n")] = 0;
    assert_true(strchr(vk, '+') != NULL);
    json_object_set_new(F.want, "vkey", json_string(vk));
    free(vk);
    json_dump_file(F.want, F.expect, JSON_INDENT(1));
    snprintf(cmd, sizeof cmd, "MGX_WEB_URL=%s MGX_WEB_EXPECT=%s %s %s/tests/web/dashboard.test.mjs",
             F.url, F.expect, MGX_NODE, MGX_SOURCE_DIR);
    pid_t node = fork();
    assert_true(node >= 0);
    if (node == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* the controller's part, played here: once the page has its live stream open (the browser
     * test writes the mark), new readings arrive in the database, one for the logged-in home
     * (the page must show it without a reload) and one for another home (its stream must not
     * carry it) */
    int status = 0, injected = 0;
    for (;;) {
        pid_t w = waitpid(node, &status, WNOHANG);
        if (w == node)
            break;
        if (!injected && access(mark, F_OK) == 0) {
            sqlite3 *db;
            assert_int_equal(sqlite3_open_v2(F.db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
            sqlite3_busy_timeout(db, 5000);
            char sql[700];
            snprintf(sql, sizeof sql,
                     "INSERT INTO readings(meter_id, ts_ms, power_w, import_wh, export_wh, "
                     "soc_permille, quality, received_ms) SELECT 'm-home-2', max(ts_ms) + 60000, "
                     "7, %d, 0, -1, 0, 0 FROM readings WHERE meter_id = 'm-home-2'; "
                     "INSERT INTO readings(meter_id, ts_ms, power_w, import_wh, export_wh, "
                     "soc_permille, quality, received_ms) SELECT meter_id, ts_ms + 60000, 321, "
                     "import_wh + 777, export_wh, -1, 0, 0 FROM readings WHERE meter_id = "
                     "'m-home-%d' ORDER BY ts_ms DESC LIMIT 1;",
                     OTHER_IMPORT_WH, HOME);
            char *err = NULL;
            if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
                fail_msg("inserting the live readings: %s", err ? err : "?");
            sqlite3_close(db);
            injected = 1;
        }
        usleep(50000);
    }
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    assert_true(injected);
#endif
}

/* ---- slow_reader: a live stream whose reader stops reading is dropped, never waited for ----
 * A second server with a 4 KB stream queue polling every 100 ms. A raw socket with a small
 * receive buffer opens home-1's stream and reads nothing while readings of home-1 keep arriving
 * in the database (one event per poll); once the socket buffers are full the events pile up in
 * the stream's queue, and past 4 KB the server drops the stream: the coordinator's view counts
 * it, the server keeps answering, and the reader, when it reads again, finds its stream ended. */
static int64_t live_dropped(CURL *c, const char *url)
{
    static body b;
    char u[200];
    snprintf(u, sizeof u, "%sapi/community", url);
    b.len = 0;
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    json_t *d = json_loads(b.buf, 0, NULL);
    assert_non_null(d);
    int64_t n = json_integer_value(json_object_get(json_object_get(d, "live"), "dropped"));
    json_decref(d);
    return n;
}

static CURL *login_at(const char *url, const char *user, const char *pw, char *token, size_t cap)
{
    static body b;
    CURL *c = curl_easy_init();
    char u[200], post[200];
    snprintf(u, sizeof u, "%sapi/login", url);
    snprintf(post, sizeof post, "{\"user\":\"%s\",\"password\":\"%s\"}", user, pw);
    static struct curl_slist *json;
    if (!json)
        json = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, json);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    struct curl_slist *cookies = NULL;
    curl_easy_getinfo(c, CURLINFO_COOKIELIST, &cookies);
    assert_non_null(cookies);
    const char *tab = strrchr(cookies->data, '\t');
    assert_non_null(tab);
    snprintf(token, cap, "%s", tab + 1);
    curl_slist_free_all(cookies);
    return c;
}

static void slow_reader(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    char conf[600], out[600], url[128] = "";
    snprintf(conf, sizeof conf, "%s/slow.ini", F.dir);
    snprintf(out, sizeof out, "%s/slow.out", F.dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[web]\nport = 0\ndatabase = ctl.db\npassword_file = passwd\n"
               "admin_file = admin.passwd\nlive_queue_bytes = 4096\nlive_poll_ms = 100\n");
    fclose(f);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(out, "w", stdout))
            _exit(126);
        execl(bin, bin, "web", conf, (char *)NULL);
        _exit(127);
    }
    F.slow = pid;
    for (int i = 0; i < 300 && !url[0]; i++) {
        usleep(100000);
        char *text = tst_file_text_or_empty(out);
        char *at = strstr(text, "serving ");
        if (at)
            sscanf(at + 8, "%127s", url);
        free(text);
    }
    int port = 0;
    assert_int_equal(sscanf(url, "http://127.0.0.1:%d/", &port), 1);
    char token[200];
    CURL *home = login_at(url, "home-1", "pw for home 1", token, sizeof token);
    curl_easy_cleanup(home);
    char admin_token[200];
    CURL *coord = login_at(url, "coord", "coordinator pw", admin_token, sizeof admin_token);
    assert_int_equal(live_dropped(coord, url), 0);
    /* the reader: a small receive buffer, and it reads nothing */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int small = 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char rq[400];
    int len = snprintf(rq, sizeof rq,
                       "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: mgx_session=%s\r\n\r\n",
                       token);
    assert_int_equal(send(fd, rq, (size_t)len, 0), len);
    /* home-1's readings keep coming until the server gives up on the reader */
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(F.db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    int64_t dropped = 0, deadline = ctl_wall_ms() + 120000, next_check = 0;
    int inserted = 0;
    while (!dropped && ctl_wall_ms() < deadline) {
        char sql[400];
        snprintf(sql, sizeof sql,
                 "INSERT INTO readings(meter_id, ts_ms, power_w, import_wh, export_wh, "
                 "soc_permille, quality, received_ms) SELECT meter_id, ts_ms + 60000, 99, "
                 "import_wh + 1, export_wh, -1, 0, 0 FROM readings WHERE meter_id = 'm-home-%d' "
                 "ORDER BY ts_ms DESC LIMIT 1",
                 HOME);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        inserted++;
        usleep(60000);
        if (ctl_wall_ms() >= next_check) {
            dropped = live_dropped(coord, url);
            next_check = ctl_wall_ms() + 1000;
        }
    }
    sqlite3_close(db);
    fprintf(stderr, "slow_reader: %lld stream(s) dropped after %d new readings\n", (long long)dropped, inserted);
    assert_int_equal(dropped, 1);
    /* reading again: what the socket held, then the end of the stream */
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    size_t total = 0;
    int ended = 0;
    for (int idle = 0; idle < 40 && !ended;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            total += (size_t)n;
            idle = 0;
        } else if (n == 0 || errno != EAGAIN) {
            ended = 1;
        } else {
            idle++;
        }
    }
    close(fd);
    fprintf(stderr, "slow_reader: %zu bytes read after the drop, stream ended: %d\n", total,
            ended);
    assert_true(ended);
    assert_true(total > 0);
    curl_easy_cleanup(coord);
    kill(pid, SIGTERM);
    F.slow = 0;
    assert_int_equal(tst_wait_exit(pid, 10000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_api),
        cmocka_unit_test(tls),
        cmocka_unit_test(browser),
        cmocka_unit_test(slow_reader),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
