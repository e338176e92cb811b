/*
 * Test support: homes sending signed orders, the controller process, readings (see homes.h).
 */
#define _GNU_SOURCE
#include "homes.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "bus/payload.h"
#include "common/wall_clock.h"
#include "db/registry.h"
#include "broker.h"
#include "files.h"
#include "shell.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void tst_homes_register(tst_home *homes, int n, int seed0, const char *db_path, bool with_meters)
{
    ctl_db *reg = NULL;
    assert_int_equal(ctl_registry_open(db_path, &reg, NULL, 0), CTL_REG_OK);
    for (int h = 0; h < n; h++) {
        tst_home *hm = &homes[h];
        memset(hm, 0, sizeof *hm);
        snprintf(hm->id, sizeof hm->id, "home-%d", h);
        uint8_t seed[32];
        memset(seed, seed0 + h, sizeof seed);
        assert_int_equal(ctl_key_from_seed(seed, &hm->key), 0);
        ctl_participant p;
        memset(&p, 0, sizeof p);
        snprintf(p.id, sizeof p.id, "%s", hm->id);
        if (with_meters)
            snprintf(p.meter_id, sizeof p.meter_id, "m-home-%d", h);
        memcpy(p.pubkey, ctl_key_public(hm->key), CTL_PUBKEY_BYTES);
        p.role = CTL_ROLE_HOME;
        assert_int_equal(ctl_registry_add(reg, &p, 1), CTL_REG_OK);
    }
    ctl_db_close(reg);
}

void tst_homes_free(tst_home *homes, int n)
{
    for (int h = 0; h < n; h++) {
        ctl_key_free(homes[h].key);
        homes[h].key = NULL;
    }
}

int tst_home_index(const tst_home *homes, int n, const char *id)
{
    for (int h = 0; h < n; h++)
        if (strcmp(homes[h].id, id) == 0)
            return h;
    return -1;
}

void tst_home_make_order(tst_home *homes, int h, const char *community, int64_t iv,
                         int64_t sim_ms, unsigned *seed, const tst_order_shape *shape)
{
    tst_home *hm = &homes[h];
    ctl_order_msg *m = &hm->pending;
    memset(m, 0, sizeof *m);
    snprintf(m->community, sizeof m->community, "%s", community);
    snprintf(m->participant, sizeof m->participant, "%s", hm->id);
    m->interval_id = iv;
    m->interval_s = 900;
    m->created_ms = sim_ms;
    m->expiry_s = iv * 900;
    for (int i = 0; i < CTL_ORDER_NONCE_BYTES; i++)
        m->nonce[i] = (uint8_t)rand_r(seed);
    m->side = h % 2 ? MKT_BUY : MKT_SELL;
    m->n_steps = 1 + (uint32_t)((unsigned)rand_r(seed) % shape->max_steps);
    for (uint32_t s = 0; s < m->n_steps; s++) {
        m->steps[s].energy_wh = shape->energy_min + (unsigned)rand_r(seed) % shape->energy_span;
        m->steps[s].price_uc_per_kwh =
            m->side == MKT_SELL ? shape->sell_min + (unsigned)rand_r(seed) % shape->sell_span
                                : shape->buy_min + (unsigned)rand_r(seed) % shape->buy_span;
    }
    assert_int_equal(ctl_order_sign(m, ctl_key_secret(hm->key)), CTL_R_OK);
    hm->has_pending = 1;
    hm->last_sent_ms = 0;
}

void tst_home_make_pref(ctl_pref_msg *m, const tst_home *hm, const char *community,
                        int64_t valid_from, int64_t created_ms, const mkt_preference *pref)
{
    memset(m, 0, sizeof *m);
    snprintf(m->community, sizeof m->community, "%s", community);
    snprintf(m->participant, sizeof m->participant, "%s", hm->id);
    m->valid_from = valid_from;
    m->interval_s = 900;
    m->created_ms = created_ms;
    m->expiry_s = valid_from * 900 - 300; /* its gate */
    randombytes_buf(m->nonce, sizeof m->nonce);
    m->pref = *pref;
    assert_int_equal(ctl_pref_sign(m, ctl_key_secret(hm->key)), CTL_R_OK);
}

void tst_home_send_pref(bus_client *c, const char *community, const tst_home *hm,
                        const ctl_pref_msg *m)
{
    char topic[BUS_TOPIC_MAX], json[CTL_PREF_JSON_MAX];
    size_t len;
    assert_int_equal(bus_topic_pref(topic, sizeof topic, community, hm->id), BUS_OK);
    assert_int_equal(ctl_pref_to_json(m, json, sizeof json, &len), CTL_R_OK);
    bus_publish(c, topic, json, len, 1, false, NULL, NULL);
}

void tst_homes_trade_until(tst_home *homes, int n, const char *community,
                           const tst_order_shape *shape, const char *db, bus_client *c,
                           const ctl_clock *clock, unsigned *seed, int64_t blocks,
                           int64_t *replaced)
{
    const ctl_interval_rules rules = {900, 300, 4};
    int64_t deadline = ctl_wall_ms() + 120000, next_check = 0;
    for (;;) {
        int64_t now = ctl_wall_ms();
        if (now >= next_check) {
            if (tst_db_path_int(db, "SELECT count(*) FROM ledger_block") >= blocks)
                return;
            if (now > deadline)
                fail_msg("fewer than %lld blocks settled before the deadline", (long long)blocks);
            next_check = now + 500;
        }
        bus_loop(c, 5);
        int64_t sim_ms = ctl_clock_sim_ms(clock, ctl_wall_ms());
        int64_t target = ctl_interval_first_open(sim_ms / 1000 + 100, &rules);
        for (int h = 0; h < n; h++) {
            tst_home *hm = &homes[h];
            if (!hm->has_pending && hm->done_interval < target)
                tst_home_make_order(homes, h, community, target, sim_ms, seed, shape);
            if (replaced && h == 0 && !hm->has_pending && hm->done_interval == target &&
                *replaced < target) {
                *replaced = target;
                tst_home_make_order(homes, h, community, target, sim_ms + 1, seed, shape);
            }
            if (hm->has_pending && ctl_wall_ms() - hm->last_sent_ms > 150)
                tst_home_send_order(c, community, hm);
        }
    }
}

void tst_home_send_order(bus_client *c, const char *community, tst_home *hm)
{
    char topic[BUS_TOPIC_MAX], body[CTL_ORDER_JSON_MAX];
    size_t len;
    assert_int_equal(bus_topic_order(topic, sizeof topic, community, hm->id), BUS_OK);
    assert_int_equal(ctl_order_to_json(&hm->pending, body, sizeof body, &len), CTL_R_OK);
    if (bus_publish(c, topic, body, len, 1, false, NULL, NULL) == BUS_OK)
        hm->last_sent_ms = ctl_wall_ms();
}

int tst_receipt_parse(const bus_message *m, ctl_receipt *r)
{
    char community[BUS_ID_MAX], kind[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    if (bus_topic_parse(m->topic, community, kind, id, leaf) != BUS_OK ||
        strcmp(kind, "receipt") != 0)
        return 0;
    char why[CTL_DETAIL_MAX];
    return ctl_receipt_from_json(m->payload, m->len, r, why, sizeof why) == CTL_R_OK ? 1 : -1;
}

int tst_homes_take_receipt(tst_home *homes, int n, const ctl_receipt *r)
{
    int h = tst_home_index(homes, n, r->participant);
    if (h < 0 || !homes[h].has_pending ||
        memcmp(homes[h].pending.nonce, r->nonce, sizeof r->nonce) != 0)
        return -1;
    homes[h].has_pending = 0;
    homes[h].done_interval = homes[h].pending.interval_id;
    return h;
}

static bus_client *homes_connect(int port, const char *community, unsigned max_pending,
                                 bus_message_fn on_msg, void *user)
{
    bus_config bc = {.host = "127.0.0.1", .port = port, .client_id = "homes",
                     .community = community, .backoff_min_ms = 50, .backoff_max_ms = 200,
                     .max_pending = max_pending, .log_level = BUS_LOG_WARN};
    bus_client *c = bus_new(&bc, on_msg, NULL, user, NULL);
    assert_non_null(c);
    assert_int_equal(bus_start(c), BUS_OK);
    char filter[BUS_TOPIC_MAX];
    bus_filter_all(filter, sizeof filter, community, "receipt", NULL);
    assert_int_equal(bus_subscribe(c, filter, 1), BUS_OK);
    while (!bus_connected(c))
        bus_loop(c, 10);
    return c;
}

bus_client *tst_homes_connect(int port, const char *community, unsigned max_pending,
                              bus_message_fn on_msg)
{
    return homes_connect(port, community, max_pending, on_msg, NULL);
}

static void take_receipt(void *user, const bus_message *m)
{
    tst_homes_set *set = user;
    ctl_receipt r;
    if (tst_receipt_parse(m, &r) == 1)
        tst_homes_take_receipt(set->homes, set->n, &r);
}

bus_client *tst_homes_connect_taking(int port, const char *community, unsigned max_pending,
                                     tst_homes_set *set)
{
    return homes_connect(port, community, max_pending, take_receipt, set);
}

int tst_homes_market_home(const tst_home *homes, int n, sqlite3 *db, uint64_t market_id)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT participant FROM market_ids WHERE "
                                            "market_id = ?1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, (int64_t)market_id);
    int h = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        h = tst_home_index(homes, n, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return h;
}

void tst_send_reading(bus_client *c, const char *community, const mtr_sample *s)
{
    char topic[BUS_TOPIC_MAX], body[BUS_JSON_MAX];
    assert_int_equal(bus_topic_meter_state(topic, sizeof topic, community, s->meter_id), BUS_OK);
    int n = bus_state_encode(s, body, sizeof body);
    assert_true(n > 0);
    bus_publish(c, topic, body, (size_t)n, 1, false, NULL, NULL);
}

FILE *tst_controller_config(const char *path, int port, const char *community, const char *db,
                            int grace_s)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "[bus]\nhost = 127.0.0.1\nport = %d\nclient_id = controller\nbackoff_max_ms = 500\n"
            "[controller]\ncommunity = %s\ndb = %s\ninterval_s = 900\n"
            "gate_closure_s = 300\nmax_ahead_intervals = 4\n",
            port, community, db);
    if (grace_s >= 0)
        fprintf(f,
                "network_fee_uc_per_kwh = 10000\n"
                "settlement_grace_s = %d\nsettlement_key = community.skey\n"
                "reading_max_gap_s = 300\nmeter_max_power_w = 100000\n",
                grace_s);
    return f;
}

FILE *tst_cluster_config(const char *path, int port, const char *community, const char *db,
                         int grace_s, int node, const int *raft_port, int n_nodes,
                         int election_ms)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "[bus]\nhost = 127.0.0.1\nport = %d\nclient_id = controller-%d\n"
            "backoff_max_ms = 500\n"
            "[controller]\ncommunity = %s\ndb = %s\ninterval_s = 900\n"
            "gate_closure_s = 300\nmax_ahead_intervals = 4\n",
            port, node, community, db);
    if (grace_s >= 0)
        fprintf(f,
                "network_fee_uc_per_kwh = 10000\n"
                "settlement_grace_s = %d\nsettlement_key = community.skey\n"
                "reading_max_gap_s = 300\nmeter_max_power_w = 100000\n",
                grace_s);
    fprintf(f, "[cluster]\nnode_id = %d\nnodes = ", node);
    for (int i = 0; i < n_nodes; i++)
        fprintf(f, "%s%d@127.0.0.1:%d", i ? ", " : "", i + 1, raft_port[i]);
    fprintf(f, "\ndata_dir = raft-%d\nelection_timeout_ms = %d\n", node, election_ms);
    return f;
}

int tst_cluster_status(const char *status_path, char *role, size_t cap, long long *applied,
                       long long *cleared)
{
    char *t = tst_file_text_or_empty(status_path);
    int ok = -1;
    char rl[32];
    const char *r = strstr(t, "role "), *a = strstr(t, "applied_index "),
               *c = strstr(t, "last_cleared "), *u = strstr(t, "updated_ms ");
    if (r && a && c && u && sscanf(r, "role %31s", rl) == 1 &&
        sscanf(a, "applied_index %lld", applied) == 1 &&
        sscanf(c, "last_cleared %lld", cleared) == 1) {
        long long upd = 0;
        sscanf(u, "updated_ms %lld", &upd);
        ok = ctl_wall_ms() - upd < 1000 ? 0 : -1;
        snprintf(role, cap, "%s", rl);
    }
    free(t);
    return ok;
}

int tst_cluster_leader(const char *const *status, const pid_t *pid, int n, int except)
{
    for (int i = 0; i < n; i++) {
        char role[32];
        long long a, c;
        if (i != except && pid[i] > 0 &&
            tst_cluster_status(status[i], role, sizeof role, &a, &c) == 0 &&
            strcmp(role, "leader") == 0)
            return i;
    }
    return -1;
}

char *tst_controller_dir(const char *prefix, char *db, char *conf, char *log)
{
    char *dir = tst_tmpdir(prefix);
    assert_non_null(dir);
    snprintf(db, TST_CTL_PATH_MAX, "%s/ctl.db", dir);
    snprintf(conf, TST_CTL_PATH_MAX, "%s/controller.ini", dir);
    snprintf(log, TST_CTL_PATH_MAX, "%s/controller.log", dir);
    return dir;
}

pid_t tst_controller_start(const char *bin, const char *conf, const char *anchor,
                           const char *log, const char *crash_at)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        if (crash_at)
            setenv("MGX_CRASH_AT", crash_at, 1);
        execl(bin, bin, "controller", conf, "--clock-speed", "3600", "--clock-anchor", anchor,
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

ctl_clock tst_sim_clock(char *anchor, size_t cap)
{
    int64_t t0_s = ctl_wall_ms() / 1000;
    snprintf(anchor, cap, "%lld:1717200000", (long long)t0_s);
    return (ctl_clock){t0_s * 1000, INT64_C(1717200000000), 3600};
}

void tst_controller_stop_log(pid_t pid, const char *log)
{
    kill(pid, SIGTERM);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return;
    if (log)
        tst_sh("echo '--- the end of %s'; tail -60 '%s'", log, log);
    if (WIFSIGNALED(st))
        fail_msg("the controller (pid %d) died of signal %d after SIGTERM", (int)pid,
                 WTERMSIG(st));
    fail_msg("the controller (pid %d) exited with status %d after SIGTERM", (int)pid,
             WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

void tst_controller_stop(pid_t pid)
{
    tst_controller_stop_log(pid, NULL);
}

void tst_kill9(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
}

pid_t tst_controller_restart(pid_t pid, unsigned *seed, const char *bin, const char *conf,
                             const char *anchor, const char *log)
{
    tst_kill9(pid);
    usleep((useconds_t)(rand_r(seed) % 200) * 1000);
    return tst_controller_start(bin, conf, anchor, log, NULL);
}

int64_t tst_db_path_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    goto out;
fail:
    fprintf(stderr, "%s: %s\n", sql, db ? sqlite3_errmsg(db) : "cannot open");
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

int64_t tst_db_int(sqlite3 *db, const char *sql, int64_t a)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, a);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}
