/*
 * Post-delivery clearing through `mgx controller` (label integration): a real mosquitto broker,
 * the real binary with timing = ex_post and settlement on, at clock speed 3600. Four registered
 * homes with meters; a test client plays them: homes 0 and 1 send signed standing preferences
 * (resending until receipted), home 3 too but its meter never reports; homes 0, 1 and 2
 * publish meter readings across interval T as simulated time passes. Home 2 never sends a
 * preference: it trades at the grid's terms.
 *
 * Interval T, worked by hand (F = 80000, R = 300000, fee f = 10000 uc/kWh, pay-as-clear):
 *   home-0 exports 3000 Wh net, preference: sell at >= 100000;
 *   home-1 exports 2000 Wh net, preference: 1000 Wh at >= 90000, the rest at >= 150000;
 *   home-2 imports 4000 Wh net, no preference: buys at retail, effective R - f = 290000;
 *   home-3 has no readings: missing, not in the book.
 * Sell levels ascending 90000 (home-1, 1000), 100000 (home-0, 3000), 150000 (home-1, 1000);
 * demand 4000 at 290000. The walk accepts 1000 + 3000 = 4000: both levels in full, nothing
 * partial. L = max(F, dearest accepted sell 100000) = 100000; U = min(R - f 290000, cheapest
 * accepted buy 290000, cheapest rejected sell 150000) = 150000; p = 100000 + 50000 / 2 =
 * 125000. Trades (sellers by market number, one buyer): home-0 -> home-2 3000 Wh at 125000,
 * amount 375000 uc, fee 30000; home-1 -> home-2 1000 Wh, amount 125000, fee 10000. Matched
 * 4000 Wh; home-1's last 1000 Wh go to the grid at feed-in.
 *
 * Checked from the database and the log: T is cleared only after its end plus the grace, with
 * exactly those trades and that price; the preference receipts say accepted; settlement finds
 * every traded Wh delivered (every Wh was metered); T's statements and its retained result
 * say "timing":"ex_post"; an order (home-2 sends one, as an agent left at ex_ante would) is
 * refused "not_allowed" and never reaches the book.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "bus/bus.h"
#include "common/interval.h"
#include "common/wall_clock.h"
#include "homes.h"
#include "orders/pref_msg.h"
#include "shell.h"

#define HOMES 4
#define COMMUNITY "expost"
/* readings are awaited 1 s real after an interval ends: the last ones are sent as it ends */
#define GRACE_S 3600
#define READ_S 300 /* simulated seconds between readings */
#define DEADLINE_MS 60000

typedef struct {
    tst_home homes[HOMES];
    ctl_pref_msg pref[HOMES];
    int has_pref[HOMES], pref_ok[HOMES];
    int64_t pref_sent_ms[HOMES];
    int64_t next_reading_s;
    int64_t target;
    int rejected; /* receipts refusing a preference (a slow start can miss T's gate) */
    char statement_timing[16], result_timing[16]; /* "timing" of T's statement and result */
    int order_refused; /* home-2's order got "not_allowed" */
} world;

static world W;

static void on_msg(void *user, const bus_message *m)
{
    (void)user;
    char community[BUS_ID_MAX], kind[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    if (bus_topic_parse(m->topic, community, kind, id, leaf) != BUS_OK)
        return;
    if (strcmp(kind, "statement") == 0 || strcmp(kind, "market") == 0) {
        json_t *j = json_loadb(m->payload, m->len, 0, NULL);
        json_t *iv = json_object_get(j, "interval_id"), *t = json_object_get(j, "timing");
        if (json_is_integer(iv) && json_integer_value(iv) == W.target && json_is_string(t)) {
            char *dst = kind[0] == 's' ? W.statement_timing : W.result_timing;
            snprintf(dst, 16, "%s", json_string_value(t));
        }
        json_decref(j);
        return;
    }
    if (strcmp(kind, "receipt") != 0)
        return;
    ctl_receipt r;
    assert_int_equal(ctl_receipt_from_json(m->payload, m->len, &r, NULL, 0), CTL_R_OK);
    int h = tst_home_index(W.homes, HOMES, r.participant);
    if (h == 2 && r.reason == CTL_R_NOT_ALLOWED && strstr(r.detail, "ex post") &&
        memcmp(r.nonce, W.homes[2].pending.nonce, sizeof r.nonce) == 0) {
        W.order_refused = 1;
        return;
    }
    if (h < 0 || !W.has_pref[h] || memcmp(r.nonce, W.pref[h].nonce, sizeof r.nonce) != 0)
        return;
    if (ctl_reason_is_accept(r.reason))
        W.pref_ok[h] = 1;
    else
        W.rejected++;
}

static void make_pref(int h, int64_t valid_from, int64_t sim_ms)
{
    mkt_preference p;
    memset(&p, 0, sizeof p);
    if (h == 0) {
        p.n_sell_steps = 1;
        p.sell[0] = (mkt_step){1000000, 100000};
    } else if (h == 1) {
        p.n_sell_steps = 2;
        p.sell[0] = (mkt_step){1000, 90000};
        p.sell[1] = (mkt_step){1000000, 150000};
    } else {
        p.n_buy_steps = 1;
        p.buy[0] = (mkt_step){1000000, 200000};
    }
    /* a buy side for the sellers too, never used in T: the metered side decides */
    if (h < 2) {
        p.n_buy_steps = 1;
        p.buy[0] = (mkt_step){1000000, 120000};
    }
    tst_home_make_pref(&W.pref[h], &W.homes[h], COMMUNITY, valid_from, sim_ms, &p);
    W.has_pref[h] = 1;
}

static void send_pref(bus_client *c, int h)
{
    tst_home_send_pref(c, COMMUNITY, &W.homes[h], &W.pref[h]);
    W.pref_sent_ms[h] = ctl_wall_ms();
}

/* Home h's counters at ts_s: flat before T, a straight line through T, flat after. */
static void reading_at(int h, int64_t ts_s, mtr_sample *s)
{
    static const int64_t export_wh[HOMES] = {3000, 2000, 0, 0};
    static const int64_t import_wh[HOMES] = {0, 0, 4000, 0};
    int64_t start = W.target * 900, t = ts_s < start ? 0 : ts_s > start + 900 ? 900 : ts_s - start;
    memset(s, 0, sizeof *s);
    snprintf(s->meter_id, sizeof s->meter_id, "m-%s", W.homes[h].id);
    s->ts_ms = ts_s * 1000;
    s->export_wh = 500000 + export_wh[h] * t / 900;
    s->import_wh = 700000 + import_wh[h] * t / 900;
    s->power_w = (import_wh[h] - export_wh[h]) * 4; /* Wh per quarter hour -> W */
    s->soc_permille = -1;
}

static int64_t db_int(const char *path, const char *sql, int64_t a, int *ok)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    *ok = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, a);
            if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
                v = sqlite3_column_int64(st, 0);
                *ok = 1;
            }
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void test_ex_post_interval(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    assert_true(sodium_init() >= 0);
    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char db_path[TST_CTL_PATH_MAX], conf[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX], anchor[64];
    char *dir = tst_controller_dir("expost", db_path, conf, log);
    assert_int_equal(tst_sh("cd %s && %s ledger keygen expost.example/mgx --out community.skey "
                            "> community.vkey",
                            dir, bin),
                     0);
    FILE *f = tst_controller_config(conf, tst_broker_port(br), COMMUNITY, db_path, GRACE_S);
    fprintf(f, "timing = ex_post\n"); /* still in [controller], the section written last */
    fclose(f);
    memset(&W, 0, sizeof W);
    tst_homes_register(W.homes, HOMES, 1, db_path, true);

    ctl_clock clock = tst_sim_clock(anchor, sizeof anchor);
    bus_client *c = tst_homes_connect(tst_broker_port(br), COMMUNITY, 0, on_msg);
    char filter[BUS_TOPIC_MAX];
    bus_filter_all(filter, sizeof filter, COMMUNITY, "statement", NULL);
    assert_int_equal(bus_subscribe(c, filter, 1), BUS_OK);
    bus_filter_all(filter, sizeof filter, COMMUNITY, "market", "result");
    assert_int_equal(bus_subscribe(c, filter, 1), BUS_OK);
    pid_t ctl = tst_controller_start(bin, conf, anchor, log, NULL);
    int64_t deadline = ctl_wall_ms() + DEADLINE_MS;
    /* the controller up (it has subscribed when it logs its community) */
    while (tst_sh("grep -q 'community " COMMUNITY "' %s", log) != 0 && ctl_wall_ms() < deadline)
        usleep(20000);
    int cleared = 0, settled = 0, ok, targeted = 0;
    while (!(cleared && settled && W.statement_timing[0] && W.result_timing[0] &&
             W.order_refused) &&
           ctl_wall_ms() < deadline) {
        bus_loop(c, 5);
        int64_t now_real = ctl_wall_ms();
        int64_t now_sim_s = ctl_clock_sim_ms(&clock, now_real) / 1000;
        if (!targeted || (W.rejected && W.next_reading_s > now_sim_s)) {
            /* T: four intervals after the current one (at least 2400 simulated s, 0.67 s
             * real, before its gate: each preference is a commit, slow on a loaded machine);
             * again if a preference came too late for it, as long as no reading of it has
             * been sent */
            W.target = ctl_interval_id(now_sim_s, 900) + 4;
            W.next_reading_s = W.target * 900 - 2 * READ_S;
            W.rejected = 0;
            memset(W.pref_ok, 0, sizeof W.pref_ok);
            int64_t sim_ms = ctl_clock_sim_ms(&clock, now_real);
            make_pref(0, W.target, sim_ms);
            make_pref(1, W.target, sim_ms);
            make_pref(3, W.target, sim_ms);
            targeted++;
            /* home-2 still sends an order, as an agent left at ex_ante would */
            static const tst_order_shape shape = {1, 100, 100, 90000, 1, 150000, 1};
            unsigned seed = 7;
            tst_home_make_order(W.homes, 2, COMMUNITY, W.target, sim_ms, &seed, &shape);
        }
        if (!W.order_refused && now_real - W.homes[2].last_sent_ms >= 100)
            tst_home_send_order(c, COMMUNITY, &W.homes[2]);
        for (int h = 0; h < HOMES; h++)
            if (W.has_pref[h] && !W.pref_ok[h] && now_real - W.pref_sent_ms[h] >= 100)
                send_pref(c, h);
        while (W.next_reading_s <= now_sim_s && W.next_reading_s <= (W.target + 1) * 900 + 2 * READ_S) {
            for (int h = 0; h < 3; h++) {
                mtr_sample s;
                reading_at(h, W.next_reading_s, &s);
                tst_send_reading(c, COMMUNITY, &s);
            }
            W.next_reading_s += READ_S;
        }
        if (!cleared)
            db_int(db_path, "SELECT state FROM intervals WHERE interval_id = ?1 AND state = 1",
                   W.target, &cleared);
        if (cleared && !settled)
            db_int(db_path, "SELECT height FROM ledger_block WHERE interval_id = ?1", W.target,
                   &settled);
    }
    tst_controller_stop(ctl);
    assert_true(W.pref_ok[0] && W.pref_ok[1] && W.pref_ok[3]);
    assert_int_equal(W.rejected, 0);
    assert_true(W.order_refused);
    if (targeted > 1)
        print_message("T moved %d times: preferences missed its gate\n", targeted - 1);
    assert_true(cleared);
    assert_true(settled);

    /* cleared after T's end plus the grace, not at its gate */
    int64_t cleared_ms = db_int(db_path, "SELECT cleared_ms FROM intervals WHERE interval_id = ?1",
                                W.target, &ok);
    assert_true(ok);
    assert_true(cleared_ms >= ((W.target + 1) * 900 + GRACE_S) * 1000);

    /* the hand-worked answer */
    assert_int_equal(db_int(db_path, "SELECT matched_wh FROM results WHERE interval_id = ?1",
                            W.target, &ok),
                     4000);
    assert_int_equal(db_int(db_path, "SELECT price_uc_per_kwh FROM results WHERE interval_id = ?1",
                            W.target, &ok),
                     125000);
    assert_int_equal(db_int(db_path, "SELECT n_orders FROM results WHERE interval_id = ?1",
                            W.target, &ok),
                     3);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT seller, buyer, energy_wh, price_uc_per_kwh, "
                                        "amount_uc, fee_uc FROM trades WHERE interval_id = ?1 "
                                        "ORDER BY seller, buyer",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, W.target);
    static const struct {
        const char *seller, *buyer;
        int64_t wh, price, amount, fee;
    } want[] = {{"home-0", "home-2", 3000, 125000, 375000, 30000},
                {"home-1", "home-2", 1000, 125000, 125000, 10000}};
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        assert_true(n < 2);
        assert_string_equal(sqlite3_column_text(st, 0), want[n].seller);
        assert_string_equal(sqlite3_column_text(st, 1), want[n].buyer);
        assert_int_equal(sqlite3_column_int64(st, 2), want[n].wh);
        assert_int_equal(sqlite3_column_int64(st, 3), want[n].price);
        assert_int_equal(sqlite3_column_int64(st, 4), want[n].amount);
        assert_int_equal(sqlite3_column_int64(st, 5), want[n].fee);
        n++;
    }
    assert_int_equal(n, 2);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* the statements and the result say which timing applied */
    assert_string_equal(W.statement_timing, "ex_post");
    assert_string_equal(W.result_timing, "ex_post");

    /* settlement found every traded Wh delivered */
    char pattern[128];
    snprintf(pattern, sizeof pattern, "interval %lld (.*) settled: block [0-9]*, 2 trades, 4000 of 4000 Wh delivered",
             (long long)W.target);
    assert_int_equal(tst_sh("grep -q '%s' %s", pattern, log), 0);

    bus_stop(c, 1000);
    bus_free(c);
    tst_homes_free(W.homes, HOMES);
    tst_broker_free(br);
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ex_post_interval)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
