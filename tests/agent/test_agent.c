/*
 * `mgx agent` end to end: the real binary against the shipped community broker config (TLS,
 * password, ACL) with a fake controller played by the test. The controller checks each order's
 * signature with the home's public key and answers with receipts built by order_msg.h, so the
 * agent sees exactly what the real controller sends.
 *
 * Readings: the test's meter publishes counters every 15 s of meter time, on the interval
 * boundaries too, for the two intervals before the current one (interval_s = 60, the wall
 * clock). Interval cur-1 gets export +240 Wh and import +40 Wh (60 and 10 Wh per 15 s), so its
 * net is +200 Wh, and with gate closure 0 the first interval open for orders is cur+1. With the
 * markup strategy at 0.25 and tariffs feed-in 80000, retail 300000, fee 20000 uc/kWh the band
 * is [80000, 280000] and the ask 80000 + 0.25 * 200000 = 130000 uc/kWh. So the order must be:
 * interval cur+1, sell 200 Wh at 130000. With forecast_lag = 3 the same order is for cur+2
 * (cur-1 + 3).
 */
#define _GNU_SOURCE
#include "orders/keys.h"
#include "orders/order_msg.h"
#include "orders/pref_msg.h"
#include "agent/agent_store.h"
#include "bus/payload.h"

#include "broker.h"
#include "mqtt_client.h"
#include "secure_broker.h"

#include "mgx/strategy.h"
#include "files.h"
#include "modbus_sim.h"

#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define T_MS 10000

typedef struct {
    char *dir;
    char community[16];
    char conf[600], key[600], db[600], log[600], pw[600];
    uint8_t pk[CTL_PUBKEY_BYTES];
    pid_t pid;
    tc_client *ctl, *meter;
    size_t status_from, order_from;
    char t_order[128];
    int64_t cur;
    int64_t last_t; /* the last reading's time (feed_deficit) */
} fixture;

/* Sections appended to the next setup's config file ([battery]); NULL: none. */
static char ini_tail[1024];

static void setup(fixture *f, const char *community, const char *strategy_lines)
{
    memset(f, 0, sizeof *f);
    f->dir = tst_tmpdir("agent");
    assert_non_null(f->dir);
    snprintf(f->community, sizeof f->community, "%s", community);
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s/h-a", f->dir);
    assert_int_equal(ctl_keygen_files(prefix, f->pk), CTL_KEY_OK);
    snprintf(f->key, sizeof f->key, "%s.key", prefix);
    snprintf(f->db, sizeof f->db, "%s/agent.db", f->dir);
    snprintf(f->log, sizeof f->log, "%s/agent.log", f->dir);
    snprintf(f->pw, sizeof f->pw, "%s/mqtt.pw", f->dir);
    snprintf(f->conf, sizeof f->conf, "%s/agent.ini", f->dir);
    tst_file_write(f->pw, "pw-h-a\n", 0600);
    char ini[8192];
    snprintf(ini, sizeof ini,
             "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = %s\nusername = h-a\n"
             "password_file = %s\ntls_ca = %s\n\n"
             "[agent]\nparticipant = h-a\nkey_file = %s\noutbox = %s\n%s"
             "feed_in_uc_per_kwh = 80000\nretail_uc_per_kwh = 300000\n"
             "network_fee_uc_per_kwh = 20000\ninterval_s = 60\ngate_closure_s = 0\n"
             "resend_s = 1\n%s",
             sb_port_password(sb_group_broker), community, f->pw, sb_cafile(sb_group_broker), f->key, f->db,
             strategy_lines ? strategy_lines : "strategy = markup\nmarkup = 0.25\n", ini_tail);
    ini_tail[0] = '\0';
    tst_file_write(f->conf, ini, 0644);

    tc_opts o = sb_password_opts(sb_group_broker, "controller", "ctl");
    int reason;
    f->ctl = tc_connect(&o, T_MS, &reason);
    assert_non_null(f->ctl);
    char topic[128];
    snprintf(f->t_order, sizeof f->t_order, "mgx/v1/%s/order/h-a", community);
    assert_int_equal(tc_subscribe(f->ctl, f->t_order, T_MS), 1);
    snprintf(topic, sizeof topic, "mgx/v1/%s/status/h-a/h-a-agent", community);
    assert_int_equal(tc_subscribe(f->ctl, topic, T_MS), 1);
    o = sb_password_opts(sb_group_broker, "h-a.meter", "h-a-meter");
    f->meter = tc_connect(&o, T_MS, &reason);
    assert_non_null(f->meter);
}

/* Stops the agent; returns its exit status (-1 when killed by the signal). */
static int stop_agent(fixture *f, int sig)
{
    if (f->pid <= 0)
        return -1;
    kill(f->pid, sig);
    int st = 0;
    waitpid(f->pid, &st, 0);
    f->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* cmocka runs this even when the test failed, so no agent outlives its test. */
static void teardown(fixture *f)
{
    stop_agent(f, SIGKILL);
    tc_free(f->meter);
    tc_free(f->ctl);
    if (getenv("MGX_KEEP_TMP"))
        fprintf(stderr, "kept %s\n", f->dir);
    else
        tst_rmtree(f->dir);
    free(f->dir);
}

/* Starts the agent and waits until the broker has its "online" status: from then on it hears
 * everything published to it. */
static void start_agent(fixture *f)
{
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *e = freopen(f->log, "a", stderr), *o = freopen(f->log, "a", stdout);
        (void)e, (void)o;
        execl(bin, bin, "agent", f->conf, (char *)NULL);
        _exit(127);
    }
    f->pid = pid;
    char topic[128];
    snprintf(topic, sizeof topic, "mgx/v1/%s/status/h-a/h-a-agent", f->community);
    for (;;) {
        tc_message m;
        if (!tc_wait_topic(f->ctl, topic, &f->status_from, &m, T_MS))
            fail_msg("the agent did not come online; see %s", f->log);
        if (strcmp(m.payload, "online") == 0)
            break;
    }
    /* no grace period: "online" is published only after every subscription was acknowledged */
}

static void publish_reading(fixture *f, int64_t t_s, int64_t imp, int64_t exp)
{
    mtr_sample s = {.meter_id = "h-a", .ts_ms = t_s * 1000, .power_w = 0, .import_wh = imp,
                    .export_wh = exp, .soc_permille = -1, .quality = MTR_Q_GOOD};
    char json[512], topic[128];
    int n = bus_state_encode(&s, json, sizeof json);
    assert_true(n > 0);
    snprintf(topic, sizeof topic, "mgx/v1/%s/meter/h-a/state", f->community);
    assert_int_equal(tc_publish(f->meter, topic, json, (size_t)n, 1, false, T_MS), 0);
}

/* Two intervals of readings ending now; sets f->cur. See the file comment for the numbers. */
static void feed_readings(fixture *f)
{
    time_t now = time(NULL);
    if (now % 60 > 40) { /* stay clear of a minute boundary while the agent decides */
        tst_sleep_ms((int)(62 - now % 60) * 1000);
        now = time(NULL);
    }
    f->cur = (int64_t)now / 60;
    int64_t t0 = (f->cur - 2) * 60;
    for (int64_t t = t0; t <= (int64_t)now; t += 15)
        publish_reading(f, t, 500 + 10 * (t - t0) / 15, 1000 + 60 * (t - t0) / 15);
}

/* As feed_readings, for a home that only imports: 100 Wh in each interval (25 Wh per 15 s). */
static void feed_deficit(fixture *f)
{
    time_t now = time(NULL);
    if (now % 60 > 40) {
        tst_sleep_ms((int)(62 - now % 60) * 1000);
        now = time(NULL);
    }
    f->cur = (int64_t)now / 60;
    int64_t t0 = (f->cur - 2) * 60;
    for (int64_t t = t0; t <= (int64_t)now; t += 15)
        publish_reading(f, (f->last_t = t), 500 + 25 * (t - t0) / 15, 1000);
}

/* More of the same readings, up to and including time until. */
static void feed_deficit_until(fixture *f, int64_t until)
{
    int64_t t0 = (f->cur - 2) * 60;
    for (int64_t t = f->last_t + 15; t <= until; t += 15)
        publish_reading(f, (f->last_t = t), 500 + 25 * (t - t0) / 15, 1000);
}

/* Waits for the next order message; decodes and verifies it. */
static void next_order(fixture *f, ctl_order_msg *m, tc_message *raw)
{
    char topic[128], why[CTL_DETAIL_MAX];
    snprintf(topic, sizeof topic, "mgx/v1/%s/order/h-a", f->community);
    if (!tc_wait_topic(f->ctl, topic, &f->order_from, raw, T_MS))
        fail_msg("no order arrived; see %s", f->log);
    if (ctl_order_from_json(raw->payload, raw->len, m, why, sizeof why) != CTL_R_OK)
        fail_msg("bad order JSON: %s: %s", why, raw->payload);
    assert_int_equal(ctl_order_verify(m, f->pk), CTL_R_OK);
    assert_string_equal(m->participant, "h-a");
    assert_string_equal(m->community, f->community);
}

static void send_receipt(fixture *f, const ctl_order_msg *m, int reason, const char *detail)
{
    ctl_receipt r;
    ctl_receipt_for(&r, m, reason, detail, (int64_t)time(NULL) * 1000);
    char json[CTL_RECEIPT_JSON_MAX], topic[128];
    size_t len = 0;
    assert_int_equal(ctl_receipt_to_json(&r, json, sizeof json, &len), CTL_R_OK);
    snprintf(topic, sizeof topic, "mgx/v1/%s/receipt/h-a", f->community);
    assert_int_equal(tc_publish(f->ctl, topic, json, len, 1, false, T_MS), 0);
}

/* The stored state of an order ("" when none), and its send count. */
static void order_row(fixture *f, int64_t interval_id, char state[16], int *sends, char nonce[33])
{
    sqlite3 *db = NULL;
    state[0] = '\0';
    *sends = -1;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT state, sends, nonce FROM orders WHERE "
                                        "interval_id=?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, interval_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(state, 16, "%s", (const char *)sqlite3_column_text(st, 0));
        *sends = sqlite3_column_int(st, 1);
        if (nonce)
            snprintf(nonce, 33, "%s", (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static int64_t count_orders(fixture *f, const char *where)
{
    sqlite3 *db = NULL;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM orders%s%s", where ? " WHERE " : "",
             where ? where : "");
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void wait_state(fixture *f, int64_t interval_id, const char *want)
{
    char state[16];
    int sends;
    for (int i = 0; i < T_MS / 50; i++) {
        order_row(f, interval_id, state, &sends, NULL);
        if (strcmp(state, want) == 0)
            return;
        tst_sleep_ms(50);
    }
    fail_msg("order %lld is '%s', expected '%s'; see %s", (long long)interval_id, state, want,
             f->log);
}

static bool log_has(fixture *f, const char *needle)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = fopen(f->log, "r");
    if (!fp)
        return false;
    FILE *mem = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        fwrite(buf, 1, n, mem);
    fclose(fp);
    fclose(mem);
    bool found = text && strstr(text, needle);
    free(text);
    return found;
}

static void expect_the_order(fixture *f, const ctl_order_msg *m)
{
    assert_int_equal(m->interval_id, f->cur + 1);
    assert_int_equal(m->interval_s, 60);
    assert_int_equal(m->expiry_s, (f->cur + 1) * 60); /* gate closure 0: the start */
    assert_int_equal(m->side, MKT_SELL);
    assert_int_equal(m->n_steps, 1);
    assert_int_equal(m->steps[0].energy_wh, 200);
    assert_int_equal(m->steps[0].price_uc_per_kwh, 130000);
    /* and it is what the simulator's strategy code gives for the same inputs */
    sim_trader t;
    sim_strategy_params p = sim_strategy_defaults();
    p.kind = SIM_AGENT_MARKUP;
    p.markup = 0.25;
    assert_int_equal(sim_trader_init(&t, &p, 1), 0);
    mkt_params tariffs = {MKT_PAY_AS_CLEAR, 80000, 300000, 20000, 0};
    mkt_side side;
    mkt_step step;
    assert_int_equal(sim_trader_order(&t, 200, &tariffs, 1, &side, &step), 1);
    assert_int_equal(side, m->side);
    assert_int_equal(step.energy_wh, m->steps[0].energy_wh);
    assert_int_equal(step.price_uc_per_kwh, m->steps[0].price_uc_per_kwh);
}

static void test_order_receipted(void **state)
{
    fixture *f = *state;
    start_agent(f);
    feed_readings(f);
    ctl_order_msg m;
    tc_message raw;
    next_order(f, &m, &raw);
    expect_the_order(f, &m);
    char st[16], nonce[33], hex[33];
    int sends;
    order_row(f, f->cur + 1, st, &sends, nonce);
    assert_string_equal(st, "pending");
    assert_string_equal(nonce, ctl_nonce_hex(m.nonce, hex));
    send_receipt(f, &m, CTL_R_OK, NULL);
    wait_state(f, f->cur + 1, "accepted");
    /* receipted: no more sends (resend_s = 1), and one order in all */
    size_t n = tc_count_topic(f->ctl, f->t_order);
    tst_sleep_ms(2500);
    assert_int_equal(tc_count_topic(f->ctl, f->t_order), n);
    assert_int_equal(count_orders(f, NULL), 1);
    assert_true(log_has(f, "accepted (ok)"));
}

static void test_resends_same_bytes_until_receipt(void **state)
{
    fixture *f = *state;
    start_agent(f);
    feed_readings(f);
    /* the controller stays silent for three copies */
    ctl_order_msg m;
    tc_message first, again;
    next_order(f, &m, &first);
    expect_the_order(f, &m);
    for (int i = 0; i < 2; i++) {
        ctl_order_msg m2;
        next_order(f, &m2, &again);
        /* the very same signed bytes: same nonce, same signature, same created_ms */
        assert_int_equal(again.len, first.len);
        assert_memory_equal(again.payload, first.payload, first.len);
    }
    char st[16];
    int sends = 0;
    /* the agent counts a send right after handing it to the bus: the copy can reach us first
     * (and on a busy machine the count's write can lag well behind it) */
    for (int t = 0; t < T_MS; t += 20) {
        order_row(f, f->cur + 1, st, &sends, NULL);
        if (sends >= 3)
            break;
        tst_sleep_ms(20);
    }
    assert_string_equal(st, "pending");
    assert_true(sends >= 3);
    send_receipt(f, &m, CTL_R_OK, NULL);
    wait_state(f, f->cur + 1, "accepted");
    assert_int_equal(count_orders(f, "state='pending'"), 0);
    size_t n = tc_count_topic(f->ctl, f->t_order);
    tst_sleep_ms(2500);
    /* at most one copy was already in flight when the receipt landed */
    assert_true(tc_count_topic(f->ctl, f->t_order) <= n + 1);
    assert_int_equal(count_orders(f, NULL), 1);
    assert_true(log_has(f, "resending the same order"));
}

/* A signed order put in the outbox as if the agent had crashed right after storing it. */
static void store_unsent_order(fixture *f, int64_t interval_id, ctl_order_msg *m, char *json,
                               size_t cap)
{
    ctl_secret_key *k = NULL;
    assert_int_equal(ctl_key_load(f->key, &k), CTL_KEY_OK);
    memset(m, 0, sizeof *m);
    snprintf(m->community, sizeof m->community, "%s", f->community);
    snprintf(m->participant, sizeof m->participant, "h-a");
    m->interval_id = interval_id;
    m->interval_s = 60;
    m->created_ms = (int64_t)time(NULL) * 1000;
    m->expiry_s = interval_id * 60;
    for (int i = 0; i < CTL_ORDER_NONCE_BYTES; i++)
        m->nonce[i] = (uint8_t)(0xA0 + i);
    m->side = MKT_BUY;
    m->n_steps = 1;
    m->steps[0] = (mkt_step){321, 250000};
    assert_int_equal(ctl_order_sign(m, ctl_key_secret(k)), CTL_R_OK);
    ctl_key_free(k);
    size_t len = 0;
    assert_int_equal(ctl_order_to_json(m, json, cap, &len), CTL_R_OK);
    ags_store *s = NULL;
    assert_int_equal(ags_open(f->db, f->community, "h-a", &s, NULL, 0), AGS_OK);
    ags_order o = {.interval_id = interval_id, .json = json, .side = MKT_BUY, .energy_wh = 321,
                   .price_uc_per_kwh = 250000, .created_ms = m->created_ms,
                   .expiry_s = m->expiry_s};
    ctl_nonce_hex(m->nonce, o.nonce_hex);
    assert_int_equal(ags_order_insert(s, &o), AGS_OK);
    assert_int_equal(ags_order_insert(s, &o), AGS_E_EXISTS); /* one order per interval */
    ags_close(s);
}

static void test_restart_resends_from_the_outbox(void **state)
{
    fixture *f = *state;
    /* 1. an order stored but never sent before a crash: the next start sends it */
    ctl_order_msg stored, m;
    char json[CTL_ORDER_JSON_MAX];
    int64_t later = (int64_t)time(NULL) / 60 + 30;
    store_unsent_order(f, later, &stored, json, sizeof json);
    start_agent(f);
    tc_message raw;
    next_order(f, &m, &raw);
    assert_string_equal(raw.payload, json);
    /* the controller refuses it; the agent records the reason and stops sending */
    send_receipt(f, &m, CTL_R_GATE_CLOSED, "gate closed at 12:00:00Z");
    wait_state(f, later, "rejected");
    assert_true(log_has(f, "rejected: gate_closed: gate closed at 12:00:00Z"));

    /* 2. an order sent but not receipted when the agent is killed: resent after restart */
    feed_readings(f);
    tc_message first, after;
    next_order(f, &m, &first);
    expect_the_order(f, &m);
    stop_agent(f, SIGKILL);
    char st[16], nonce_before[33], nonce_after[33];
    int sends;
    order_row(f, f->cur + 1, st, &sends, nonce_before);
    assert_string_equal(st, "pending");
    start_agent(f);
    for (;;) { /* skip copies the first process sent before it died */
        ctl_order_msg m2;
        next_order(f, &m2, &after);
        assert_int_equal(after.len, first.len);
        assert_memory_equal(after.payload, first.payload, first.len);
        if (m2.interval_id == f->cur + 1)
            break;
    }
    send_receipt(f, &m, CTL_R_OK, NULL);
    wait_state(f, f->cur + 1, "accepted");
    order_row(f, f->cur + 1, st, &sends, nonce_after);
    assert_string_equal(nonce_after, nonce_before);
    assert_int_equal(count_orders(f, NULL), 2);
    assert_int_equal(count_orders(f, "state='pending'"), 0);
}

/* [agent] forecast_lag = 3: the complete interval cur-1 gives the order for cur+2 (not the
 * first open one, cur+1), expiring at its start (gate closure 0), with the same content. The
 * readings come in one burst, so the agent may first see cur-2 complete (also +200 Wh): that
 * gives cur+1, still open, its own order; nothing else may be ordered. */
static void test_forecast_lag_fixes_the_interval(void **state)
{
    fixture *f = *state;
    start_agent(f);
    feed_readings(f);
    ctl_order_msg m;
    tc_message raw;
    do {
        next_order(f, &m, &raw);
        assert_true(m.interval_id == f->cur + 1 || m.interval_id == f->cur + 2);
        assert_int_equal(m.expiry_s, m.interval_id * 60);
        assert_int_equal(m.side, MKT_SELL);
        assert_int_equal(m.steps[0].energy_wh, 200);
        assert_int_equal(m.steps[0].price_uc_per_kwh, 130000);
        send_receipt(f, &m, CTL_R_OK, NULL);
    } while (m.interval_id != f->cur + 2);
    wait_state(f, f->cur + 2, "accepted");
    char where[64];
    snprintf(where, sizeof where, "interval_id NOT IN (%lld, %lld)", (long long)f->cur + 1,
             (long long)f->cur + 2);
    assert_int_equal(count_orders(f, where), 0);
}

static int test_setup_lag(void **state)
{
    static int n;
    char community[16];
    snprintf(community, sizeof community, "l%d", ++n % 1000);
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    setup(f, community, "strategy = markup\nmarkup = 0.25\nforecast_lag = 3\n");
    *state = f;
    return 0;
}

/*
 * [battery]: the plan drives the order. The home imports 100 Wh per interval; its battery is a
 * control-map inverter played by a libmodbus server in this process: 6 kWh at 50 % (3000 Wh,
 * window 600..5400), 3 kW, so at most 50 Wh per 60 s interval. The config puts a 12:00-14:00
 * peak (450000 against 300000 uc/kWh) half an hour after now (local 11:30 by utc_offset_min),
 * in a 4 h horizon. Buying at 300000 to avoid 450000 pays even after the 90 % round trip, and
 * the peak needs more than the battery holds, so the plan charges from the grid now, which
 * self-consumption never does. The order for cur+1 (the plan's first interval) therefore buys
 * 100 Wh + the charge the inverter was told (its power register, 10 W per count, over 60 s),
 * not the 100 Wh of persistence; it is receipted and stored with that quantity. Then the
 * interval is metered and the forecast error reported (log, metrics_file), and the meter goes
 * quiet for a minute (meter_silence_intervals = 1): control goes back to the inverter.
 */
static tms_server *battery_srv;

static void test_battery_drives_the_order(void **state)
{
    fixture *f = *state;
    start_agent(f);
    feed_deficit(f);
    ctl_order_msg m;
    tc_message raw;
    next_order(f, &m, &raw);
    assert_int_equal(m.interval_id, f->cur + 1);
    uint16_t r[2] = {0, 0};
    tms_get(battery_srv, 3, 3, 104, r, 2);
    int64_t battery_w = (int16_t)r[0] * 10, battery_wh = battery_w * 60 / 3600;
    assert_int_equal(r[1], 2); /* the inverter follows the setpoint */
    assert_true(battery_wh > 0 && battery_wh <= 50); /* charging for the peak */
    assert_int_equal(m.side, MKT_BUY);
    assert_int_equal(m.steps[0].energy_wh, 100 + battery_wh);
    char line[128];
    snprintf(line, sizeof line,
             "forecast %lld Wh (interval %lld) after the battery's planned %lld Wh",
             (long long)-(100 + battery_wh), (long long)f->cur - 1, (long long)battery_wh);
    assert_true(log_has(f, line));
    send_receipt(f, &m, CTL_R_OK, NULL);
    wait_state(f, f->cur + 1, "accepted");
    char where[96];
    snprintf(where, sizeof where, "interval_id = %lld AND side = %d AND energy_wh = %lld",
             (long long)f->cur + 1, (int)MKT_BUY, (long long)(100 + battery_wh));
    assert_int_equal(count_orders(f, where), 1);
    /* interval cur+1 is metered (the test's meter knows nothing of the battery: 100 Wh
     * imported): the forecast was off by the battery's charge, which the agent reports */
    feed_deficit_until(f, (f->cur + 2) * 60 + 15);
    snprintf(line, sizeof line, "interval %lld: forecast %lld Wh, metered -100 Wh: error %lld Wh",
             (long long)f->cur + 1, (long long)-(100 + battery_wh), (long long)battery_wh);
    for (int i = 0; i < T_MS / 50 && !log_has(f, line); i++)
        tst_sleep_ms(50);
    if (!log_has(f, line))
        fail_msg("no '%s' in %s", line, f->log);
    char path[700], want[96], *page = NULL;
    snprintf(path, sizeof path, "%s/metrics.prom", f->dir);
    snprintf(want, sizeof want, "mgx_agent_forecast_abs_error_wh_last %lld\n",
             (long long)battery_wh);
    for (int i = 0; i < T_MS / 50; i++) {
        free(page);
        page = tst_file_read(path, NULL);
        if (page && strstr(page, want))
            break;
        tst_sleep_ms(50);
    }
    if (!page || !strstr(page, want))
        fail_msg("no '%s' in %s", want, path);
    assert_non_null(strstr(page, "mgx_agent_forecast_intervals_total 1\n"));
    assert_non_null(strstr(page, "mgx_agent_battery_setpoints_total "));
    free(page);
    /* the meter goes quiet (meter_silence_intervals = 1: 60 s without a reading): the agent
     * hands the battery back to the inverter, and takes note when readings return */
    uint16_t mode = 2;
    for (int i = 0; i < 180000 / 100 && !log_has(f, "meter silent, 1 time(s) so far"); i++)
        tst_sleep_ms(100);
    if (!log_has(f, "meter silent, 1 time(s) so far"))
        fail_msg("the agent did not notice the silent meter; see %s", f->log);
    for (int i = 0; i < T_MS / 50 && mode != 0; i++) {
        tms_get(battery_srv, 3, 3, 105, &mode, 1);
        if (mode != 0)
            tst_sleep_ms(50);
    }
    assert_int_equal(mode, 0); /* released: the inverter's own mode */
    feed_deficit_until(f, f->last_t + 15);
    for (int i = 0; i < T_MS / 50 && !log_has(f, "meter readings are back"); i++)
        tst_sleep_ms(50);
    assert_true(log_has(f, "meter readings are back"));
}

static int test_setup_battery(void **state)
{
    static int n;
    char community[16];
    snprintf(community, sizeof community, "b%d", ++n % 1000);
    battery_srv = tms_start();
    if (!battery_srv)
        return -1;
    tms_add_unit(battery_srv, 3, 100, 20, 100, 20);
    uint16_t soc = 500;
    tms_set(battery_srv, 3, 4, 110, &soc, 1);
    /* local 11:30 now: the offset from UTC that makes it so, within [-749, 690] minutes */
    int64_t now_min = ((int64_t)time(NULL) / 60) % 1440;
    snprintf(ini_tail, sizeof ini_tail,
             "\n[battery]\nhost = 127.0.0.1\nport = %d\nunit = 3\ntimeout_ms = 500\n"
             "capacity_wh = 6000\npower_w = 3000\nhorizon_intervals = 240\n"
             "retail_peak_uc_per_kwh = 450000\npeak_start_h = 12\npeak_end_h = 14\n"
             "utc_offset_min = %lld\ncontrol = map\npower_register = 104\nw_per_count = 10\n"
             "mode_register = 105\nmode_control = 2\nmode_release = 0\nsoc_register = 110\n"
             "soc_function = 4\nsoc_bp_per_count = 10\nmeter_silence_intervals = 1\n",
             tms_port(battery_srv), (long long)(690 - now_min));
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    setup(f, community, "strategy = markup\nmarkup = 0.25\nmetrics_file = metrics.prom\n");
    *state = f;
    return 0;
}

static int test_setup(void **state)
{
    static int n;
    char community[16];
    snprintf(community, sizeof community, "a%d", ++n % 1000); /* retained messages stay per test */
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    setup(f, community, NULL);
    *state = f;
    return 0;
}

/* timing = ex_post: the agent states a standing preference instead of orders, signed, for the
 * first open interval, with the simulator's limits from its strategy: markup 0.25 in the band
 * [80000, 280000] asks 130000 (see the file comment) and bids 280000 - 0.25 * 200000 = 230000,
 * all-in 230000 + the fee 20000 = 250000 uc/kWh. It resends the same bytes until the receipt,
 * then stays quiet: a deterministic strategy states its preference once. */
static void test_ex_post_preference(void **state)
{
    fixture *f = *state;
    char topic[128];
    snprintf(topic, sizeof topic, "mgx/v1/%s/pref/h-a", f->community);
    assert_int_equal(tc_subscribe(f->ctl, topic, T_MS), 1);
    start_agent(f);
    size_t from = 0;
    tc_message raw, again;
    ctl_pref_msg m, m2;
    char why[CTL_DETAIL_MAX];
    if (!tc_wait_topic(f->ctl, topic, &from, &raw, T_MS))
        fail_msg("no preference arrived; see %s", f->log);
    assert_int_equal(ctl_pref_from_json(raw.payload, raw.len, &m, why, sizeof why), CTL_R_OK);
    assert_int_equal(ctl_pref_verify(&m, f->pk), CTL_R_OK);
    assert_string_equal(m.participant, "h-a");
    assert_string_equal(m.community, f->community);
    int64_t now = (int64_t)time(NULL);
    assert_true(m.valid_from >= now / 60 - 1 && m.valid_from <= now / 60 + 1);
    assert_int_equal(m.interval_s, 60);
    assert_int_equal(m.expiry_s, m.valid_from * 60); /* gate closure 0 */
    assert_int_equal(m.pref.n_sell_steps, 1);
    assert_int_equal(m.pref.sell[0].price_uc_per_kwh, 130000);
    assert_int_equal(m.pref.n_buy_steps, 1);
    assert_int_equal(m.pref.buy[0].price_uc_per_kwh, 250000);
    /* the simulator's strategy code gives the same bid */
    sim_trader t;
    sim_strategy_params p = sim_strategy_defaults();
    p.kind = SIM_AGENT_MARKUP;
    p.markup = 0.25;
    assert_int_equal(sim_trader_init(&t, &p, 1), 0);
    mkt_params tariffs = {MKT_PAY_AS_CLEAR, 80000, 300000, 20000, 0};
    int64_t bid = 0;
    assert_int_equal(sim_trader_price(&t, MKT_BUY, &tariffs, 1, &bid), 0);
    assert_int_equal(bid + 20000, m.pref.buy[0].price_uc_per_kwh);
    /* unanswered: the same bytes again (resend_s = 1) */
    if (!tc_wait_topic(f->ctl, topic, &from, &again, T_MS))
        fail_msg("the preference was not resent; see %s", f->log);
    assert_int_equal(ctl_pref_from_json(again.payload, again.len, &m2, why, sizeof why),
                     CTL_R_OK);
    assert_memory_equal(m2.nonce, m.nonce, sizeof m.nonce);
    assert_memory_equal(m2.sig, m.sig, sizeof m.sig);
    /* receipted: quiet */
    ctl_receipt r;
    ctl_receipt_for_pref(&r, &m, CTL_R_OK, NULL, now * 1000);
    char json[CTL_RECEIPT_JSON_MAX], rt[128];
    size_t len = 0;
    assert_int_equal(ctl_receipt_to_json(&r, json, sizeof json, &len), CTL_R_OK);
    snprintf(rt, sizeof rt, "mgx/v1/%s/receipt/h-a", f->community);
    assert_int_equal(tc_publish(f->ctl, rt, json, len, 1, false, T_MS), 0);
    for (int i = 0; i < T_MS / 50 && !log_has(f, "accepted (ok)"); i++)
        tst_sleep_ms(50);
    assert_true(log_has(f, "accepted (ok)"));
    size_t n = tc_count_topic(f->ctl, topic);
    tst_sleep_ms(2500);
    assert_int_equal(tc_count_topic(f->ctl, topic), n);
    assert_int_equal(tc_count_topic(f->ctl, f->t_order), 0);
}

static int test_setup_ex_post(void **state)
{
    static int n;
    char community[16];
    snprintf(community, sizeof community, "p%d", ++n % 1000);
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    setup(f, community, "strategy = markup\nmarkup = 0.25\ntiming = ex_post\n");
    *state = f;
    return 0;
}

/* A clean stop must exit 0 (under the sanitizers that also means no leak). */
static int test_teardown(void **state)
{
    fixture *f = *state;
    int rc = 0;
    if (f->pid > 0 && stop_agent(f, SIGTERM) != 0) {
        fprintf(stderr, "the agent did not stop cleanly on SIGTERM; see %s\n", f->log);
        rc = -1;
    }
    teardown(f);
    free(f);
    return rc;
}

/* The agent released control when it stopped: the mode register is back at 0. */
static int test_teardown_battery(void **state)
{
    int rc = test_teardown(state);
    uint16_t mode = 9;
    tms_get(battery_srv, 3, 3, 105, &mode, 1);
    if (mode != 0) {
        fprintf(stderr, "the stopped agent left the inverter in control mode %u\n", mode);
        rc = -1;
    }
    tms_stop(battery_srv);
    battery_srv = NULL;
    return rc;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_receipted, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_resends_same_bytes_until_receipt, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_restart_resends_from_the_outbox, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_ex_post_preference, test_setup_ex_post,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_forecast_lag_fixes_the_interval, test_setup_lag,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_battery_drives_the_order, test_setup_battery,
                                        test_teardown_battery),
    };
    return cmocka_run_group_tests(tests, sb_group_setup, sb_group_teardown);
}
