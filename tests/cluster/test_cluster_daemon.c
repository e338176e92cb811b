/*
 * Three replicated `mgx controller` processes (docs/cluster.md) with a real mosquitto broker at
 * clock speed 3600 (a quarter hour every 250 ms), and a test client playing 8 homes that submit
 * signed orders for the next open interval and resend each until they hold a receipt. The
 * leader is killed with SIGKILL at random moments, MGX_CLUSTER_KILLS times (5 by default; the
 * heavy run of docs/cluster.md uses 100), and restarted. Then two partitions: a follower is
 * frozen with SIGSTOP while the other two clear 3 intervals and receipt orders, resumed, and
 * must catch up; then the leader is frozen the same way (the others elect a new one), resumed,
 * and must step down to follower and catch up. At the end, with the homes quiet and
 * every node converged and stopped cleanly:
 *  - every order the homes hold an "accepted" receipt for is stored as accepted on every node;
 *  - the cleared intervals are contiguous, each cleared once, the same on every node;
 *  - every node's market tables (orders, steps, receipts, intervals, results, trades, outcomes,
 *    readings) have the same rows;
 *  - settlement on: every node's ledger passes `mgx ledger verify`, and the blocks and
 *    transactions up to the last block every node has are the same bytes;
 * and the failover time (kill to another node's status file saying leader) p50/p99 is printed.
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
#include "db/store.h"
#include "files.h"
#include "cluster_nodes.h"
#include "homes.h"
#include "shell.h"

#define HOMES       8
#define ING         64 /* more homes, idle until the ingest bursts */
#define NODES       3
#define COMMUNITY   "testville"
#define DEADLINE_MS 60000

typedef struct {
    char participant[CTL_ID_MAX + 1];
    uint8_t nonce[CTL_ORDER_NONCE_BYTES];
    int64_t interval_id;
} accepted;

static struct {
    tst_home homes[HOMES + ING];
    size_t ing_receipts;
    accepted acc[8192];
    size_t n_acc;
    size_t receipts, rejections;
} W;

static void on_msg(void *user, const bus_message *m)
{
    (void)user;
    char community[BUS_ID_MAX], kind[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    if (bus_topic_parse(m->topic, community, kind, id, leaf) != BUS_OK ||
        strcmp(kind, "receipt") != 0)
        return;
    ctl_receipt r;
    char why[CTL_DETAIL_MAX];
    assert_int_equal(ctl_receipt_from_json(m->payload, m->len, &r, why, sizeof why), CTL_R_OK);
    W.receipts++;
    int h = tst_homes_take_receipt(W.homes, HOMES + ING, &r);
    if (h < 0)
        return;
    if (h >= HOMES) {
        W.ing_receipts++;
        return;
    }
    if (ctl_reason_is_accept(r.reason)) {
        assert_true(W.n_acc < 8192);
        accepted *a = &W.acc[W.n_acc++];
        snprintf(a->participant, sizeof a->participant, "%s", r.participant);
        memcpy(a->nonce, r.nonce, sizeof a->nonce);
        a->interval_id = r.interval_id;
    } else {
        /* late (the gate closed while no node led) is the only expected refusal */
        W.rejections++;
        assert_true(r.reason == CTL_R_GATE_CLOSED || r.reason == CTL_R_STALE_INTERVAL ||
                    r.reason == CTL_R_EXPIRED);
    }
}

static const tst_order_shape SHAPE = {3, 100, 900, 80000, 220000, 80000, 220000};

static tst_cluster_node N[NODES];

static int read_status(int i, char *role, size_t cap, long long *applied, long long *cleared)
{
    return tst_cluster_read_status(&N[i], role, cap, applied, cleared);
}

/* Home h's meter at ts_s: counters rising with time, sellers (even) export, buyers import. */
static void reading_at(int h, int64_t ts_s, mtr_sample *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->meter_id, sizeof s->meter_id, "m-home-%d", h);
    int64_t min = ts_s / 60;
    s->ts_ms = ts_s * 1000;
    s->import_wh = 100000 * h + (h % 2 ? 20 : 2) * min;
    s->export_wh = 50000 * h + (h % 2 ? 1 : 15) * min;
    s->soc_permille = -1;
}

static int leader_of(int except)
{
    return tst_cluster_leader(N, NODES, except);
}

/* The partitions, one step per loop pass. A frozen (SIGSTOPped) process keeps its sockets
 * but answers nothing, which is what the others see of a node cut off from them; its status
 * file goes stale, so leader_of() does not count it. */
enum { FZ_IDLE, FZ_FOLLOWER, FZ_FOLLOWER_BACK, FZ_LEADER_NEXT, FZ_LEADER, FZ_LEADER_BACK, FZ_DONE };
typedef struct {
    int phase, node;
    long long cleared0, applied0; /* the leader's last cleared / applied at the freeze/resume */
    size_t acc0;                  /* receipted orders at the freeze */
    int64_t at_ms, failover_ms;
} freeze;

static void freeze_step(freeze *fz, int64_t now)
{
    char role[32];
    long long a, c;
    int l = leader_of(fz->node);
    if (fz->phase == FZ_IDLE || fz->phase == FZ_LEADER_NEXT) {
        /* freeze a follower (FZ_IDLE) or the leader (after the follower's return) */
        if (l < 0 || read_status(l, role, sizeof role, &a, &c) != 0)
            return;
        int f = fz->phase == FZ_IDLE ? (l + 1) % NODES : l;
        kill(N[f].pid, SIGSTOP);
        fz->node = f;
        fz->cleared0 = c;
        fz->acc0 = W.n_acc;
        fz->at_ms = now;
        fz->phase = fz->phase == FZ_IDLE ? FZ_FOLLOWER : FZ_LEADER;
        fprintf(stderr, "node %d (%s) frozen\n", f + 1, f == l ? "leader" : "follower");
        return;
    }
    if (fz->phase == FZ_FOLLOWER || fz->phase == FZ_LEADER) {
        /* the majority goes on: a leader among the others, 3 more intervals cleared and
         * more orders receipted; then the frozen node resumes */
        if (l < 0 || read_status(l, role, sizeof role, &a, &c) != 0)
            return;
        if (fz->phase == FZ_LEADER && !fz->failover_ms)
            fz->failover_ms = now - fz->at_ms;
        if (c < fz->cleared0 + 3 || W.n_acc < fz->acc0 + HOMES)
            return;
        fz->applied0 = a;
        kill(N[fz->node].pid, SIGCONT);
        fprintf(stderr, "node %d resumed after %lld ms: %lld intervals and %zu orders later\n",
                fz->node + 1, (long long)(now - fz->at_ms), c - fz->cleared0, W.n_acc - fz->acc0);
        fz->phase++;
        return;
    }
    /* back: the returned node reports itself a follower of another leader and has caught up
     * with what that leader had applied when it resumed */
    if (read_status(fz->node, role, sizeof role, &a, &c) != 0 || a < fz->applied0 ||
        strcmp(role, "follower") != 0 || l < 0)
        return;
    fprintf(stderr, "node %d caught up (applied %lld) as a follower of node %d\n", fz->node + 1, a,
            l + 1);
    if (fz->phase == FZ_FOLLOWER_BACK) {
        fz->phase = FZ_LEADER_NEXT;
        fz->node = -1;
    } else
        fz->phase = FZ_DONE;
}

/* The cost per interval, over a window of COST_INTERVALS intervals with the homes trading and
 * no failure: bytes each node process wrote to disk (/proc/PID/io write_bytes: its Raft log,
 * snapshots and SQLite database), and bytes sent between the nodes (the sum of bytes_sent of
 * every TCP connection from or to a Raft port, from `ss -ti`; -1 when ss is missing). */
#define COST_INTERVALS 12
typedef struct {
    int phase, leader;
    long long cleared0;
    long long wr0[NODES], net0;
} cost;

static long long proc_write_bytes(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/io", (int)pid);
    char *t = tst_file_text_or_empty(path);
    const char *w = strstr(t, "\nwrite_bytes: ");
    long long v = w ? atoll(w + 14) : -1;
    free(t);
    return v;
}

static long long raft_bytes_sent(const int *port, const char *dir)
{
    char out[TST_CTL_PATH_MAX + 16];
    snprintf(out, sizeof out, "%s/ss.txt", dir);
    if (tst_sh("command -v ss > /dev/null && ss -tinH state established '( sport = :%d or sport = "
               ":%d or sport = :%d or "
               "dport = :%d or dport = :%d or dport = :%d )' | grep -o 'bytes_sent:[0-9]*' | "
               "cut -d: -f2 | awk '{s += $1} END {print s + 0}' > '%s' 2>/dev/null",
               port[0], port[1], port[2], port[0], port[1], port[2], out) != 0)
        return -1;
    char *t = tst_file_text_or_empty(out);
    long long v = *t ? atoll(t) : -1;
    free(t);
    return v;
}

static void cost_step(cost *cs, const int *port, const char *dir)
{
    char role[32];
    long long a, c;
    int l = leader_of(-1);
    if (l < 0 || read_status(l, role, sizeof role, &a, &c) != 0)
        return;
    if (cs->phase == 0) {
        cs->leader = l;
        cs->cleared0 = c;
        for (int i = 0; i < NODES; i++)
            cs->wr0[i] = proc_write_bytes(N[i].pid);
        cs->net0 = raft_bytes_sent(port, dir);
        cs->phase = 1;
        return;
    }
    if (c < cs->cleared0 + COST_INTERVALS)
        return;
    long long n = c - cs->cleared0, net = raft_bytes_sent(port, dir);
    fprintf(stderr,
            "cost per interval over %lld intervals (8 homes trading, readings every 2 "
            "simulated minutes), disk written per node:",
            n);
    for (int i = 0; i < NODES; i++)
        fprintf(stderr, " node %d%s %lld B", i + 1, i == l ? " (leader)" : "",
                (proc_write_bytes(N[i].pid) - cs->wr0[i]) / n);
    if (net >= 0 && cs->net0 >= 0 && l == cs->leader)
        fprintf(stderr, "; sent between the nodes %lld B\n", (net - cs->net0) / n);
    else
        fprintf(stderr, "; network not measured (no ss, or the leader changed)\n");
    cs->phase = 2;
}

/* Order ingest: ING homes each send one signed order for the same open interval at once, and
 * the time until all ING hold a receipt is taken; `rounds` such bursts after one warm-up burst.
 * Returns the measured milliseconds of the rounds (the orders per second are ING * rounds *
 * 1000 / that). */
static int64_t ingest_bursts(bus_client *c, const ctl_clock *clock, const ctl_interval_rules *rules,
                             unsigned *seed, int rounds)
{
    int64_t total_ms = 0;
    for (int r = 0; r <= rounds; r++) {
        int64_t sim_ms = ctl_clock_sim_ms(clock, ctl_wall_ms());
        int64_t target = ctl_interval_first_open(sim_ms / 1000 + 100, rules) + 1;
        for (int h = HOMES; h < HOMES + ING; h++)
            tst_home_make_order(W.homes, h, COMMUNITY, target, sim_ms, seed, &SHAPE);
        W.ing_receipts = 0;
        int64_t t0 = ctl_wall_ms(), end = t0 + DEADLINE_MS;
        for (int h = HOMES; h < HOMES + ING; h++)
            tst_home_send_order(c, COMMUNITY, &W.homes[h]);
        while (W.ing_receipts < ING) {
            bus_loop(c, 2);
            int64_t now = ctl_wall_ms();
            if (now > end)
                fail_msg("ingest burst %d: %zu of %d receipts", r, W.ing_receipts, ING);
            for (int h = HOMES; h < HOMES + ING; h++)
                if (W.homes[h].has_pending && now - W.homes[h].last_sent_ms > 1000)
                    tst_home_send_order(c, COMMUNITY, &W.homes[h]);
        }
        if (r > 0)
            total_ms += ctl_wall_ms() - t0;
    }
    return total_ms > 0 ? total_ms : 1;
}

/* The market of a database up to interval x (the last every node cleared) as sorted text
 * rows: the accepted orders, their steps and receipts, the intervals (without `published`:
 * which results this node's bus acknowledged is its own business), results, trades and
 * outcomes. Entries after CLEAR(x) may still be missing on a node stopped before it applied
 * them (a node stops once a majority has them, not all), so the tail is left out. */
static char *market_dump(const char *db, const char *dir, int i, long long x)
{
    char out[TST_CTL_PATH_MAX + 32], cmd[8192];
    snprintf(out, sizeof out, "%s/dump-%d", dir, i);
    snprintf(cmd, sizeof cmd,
             "(sqlite3 '%s' \"SELECT * FROM orders WHERE status = 1 AND interval_id <= %lld\" "
             "| LC_ALL=C sort; echo '#steps'; sqlite3 '%s' \"SELECT s.* FROM order_steps s JOIN "
             "orders o USING(order_id) WHERE o.status = 1 AND o.interval_id <= %lld\" | LC_ALL=C "
             "sort; echo '#receipts'; sqlite3 '%s' \"SELECT r.* FROM receipts r JOIN orders o "
             "USING(order_id) WHERE o.status = 1 AND o.interval_id <= %lld\" | LC_ALL=C sort; "
             "for t in results trades outcomes; do echo \"#$t\"; sqlite3 '%s' \"SELECT * FROM "
             "$t WHERE interval_id <= %lld\" | LC_ALL=C sort; done; echo '#intervals'; "
             "sqlite3 '%s' 'SELECT interval_id, start_utc, length_s, state, mechanism, "
             "feed_in_uc_per_kwh, retail_uc_per_kwh, network_fee_uc_per_kwh, cleared_ms, error "
             "FROM intervals WHERE interval_id <= %lld ORDER BY interval_id') > '%s'",
             db, x, db, x, db, x, db, x, db, x, out);
    assert_int_equal(system(cmd), 0);
    char *t = tst_file_text(out);
    assert_non_null(t);
    return t;
}

static void cluster_run(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    const char *env = getenv("MGX_CLUSTER_KILLS");
    int kills = env ? atoi(env) : 5;
    if (kills < 1)
        kills = 1;
    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char *dir = tst_tmpdir("cluster-daemon");
    assert_non_null(dir);
    char anchor[64];
    ctl_clock clock = tst_sim_clock(anchor, sizeof anchor);
    const ctl_interval_rules rules = {900, 300, 4};
    int port[NODES];
    for (int i = 0; i < NODES; i++)
        port[i] = tst_free_port();
    tst_cluster_write_configs(N, NODES, dir, tst_broker_port(br), port, COMMUNITY, 900, NULL);
    /* one database made and registered, copied to every node (docs/cluster.md) */
    memset(&W, 0, sizeof W);
    ctl_store *s = NULL;
    int64_t first = ctl_interval_first_open(ctl_clock_sim_ms(&clock, ctl_wall_ms()) / 1000, &rules);
    ctl_store_identity id = {COMMUNITY, 900, first};
    char err[256];
    assert_int_equal(ctl_store_open(N[0].db, &id, &s, err, sizeof err), CTL_ST_OK);
    ctl_store_free(s);
    tst_homes_register(W.homes, HOMES + ING, 1, N[0].db, true);
    char solo_db[TST_CTL_PATH_MAX + 16];
    snprintf(solo_db, sizeof solo_db, "%s/solo.db", dir);
    assert_int_equal(tst_sh("'%s' ledger keygen cluster.example/mgx --out '%s/community.skey' > "
                            "'%s/community.vkey'",
                            bin, dir, dir),
                     0);
    for (int i = 1; i < NODES; i++) {
        char cmd[2 * TST_CTL_PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", N[0].db, N[i].db);
        assert_int_equal(system(cmd), 0);
    }
    {
        char cmd[2 * TST_CTL_PATH_MAX + 32];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", N[0].db, solo_db);
        assert_int_equal(system(cmd), 0);
    }
    for (int i = 0; i < NODES; i++)
        N[i].pid = tst_controller_start(bin, N[i].conf, anchor, N[i].log, NULL);

    bus_client *c = tst_homes_connect(tst_broker_port(br), COMMUNITY, 0, on_msg);
    unsigned seed = 20240601;
    tst_cluster_killer kl;
    tst_cluster_killer_init(&kl, kills, seed, ctl_wall_ms());
    int64_t next_replay = 0;
    int kills_done = 0;
    int64_t deadline = ctl_wall_ms() + DEADLINE_MS + (int64_t)kills * 3000 + 30000;
    /* after the kills, the partitions: a follower and then the leader frozen (SIGSTOP) */
    freeze fz = {.phase = FZ_IDLE, .node = -1};
    cost cs = {.phase = 0};
    while (!kills_done || fz.phase != FZ_DONE || cs.phase != 2 || W.n_acc < (size_t)HOMES * 8) {
        if (ctl_wall_ms() > deadline) {
            for (int i = 0; i < NODES; i++) /* a frozen node would outlive the test */
                if (N[i].pid > 0)
                    kill(N[i].pid, SIGKILL);
            fail_msg("the run did not finish: %d kills, %zu accepted orders", kl.done, W.n_acc);
        }
        bus_loop(c, 5);
        /* a node that ended by itself (not killed here) is a failure: say which */
        tst_cluster_check_alive(N, NODES);
        int64_t now_real = ctl_wall_ms();
        int64_t sim_ms = ctl_clock_sim_ms(&clock, now_real);
        int64_t target = ctl_interval_first_open(sim_ms / 1000 + 100, &rules);
        /* each home's meter every 120 s of simulated time; the last half hour of readings again
         * every second, as meters resend what a dead leader may have taken with it */
        int replay = now_real >= next_replay;
        if (replay)
            next_replay = now_real + 1000;
        for (int h = 0; h < HOMES && bus_connected(c); h++) {
            int64_t sim_s = sim_ms / 1000;
            if (!W.homes[h].next_reading_s)
                W.homes[h].next_reading_s = sim_s / 120 * 120;
            int64_t from = replay ? W.homes[h].next_reading_s - 1800 : W.homes[h].next_reading_s;
            for (int64_t ts = from / 120 * 120; ts <= sim_s; ts += 120) {
                mtr_sample r;
                reading_at(h, ts, &r);
                tst_send_reading(c, COMMUNITY, &r);
            }
            if (W.homes[h].next_reading_s <= sim_s)
                W.homes[h].next_reading_s = (sim_s / 120 + 1) * 120;
        }
        for (int h = 0; h < HOMES; h++) {
            tst_home *hm = &W.homes[h];
            if (!hm->has_pending && hm->done_interval < target && bus_connected(c))
                tst_home_make_order(W.homes, h, COMMUNITY, target, sim_ms, &seed, &SHAPE);
            if (hm->has_pending && now_real - hm->last_sent_ms > 150 && bus_connected(c))
                tst_home_send_order(c, COMMUNITY, hm);
        }
        if (kills_done && fz.phase != FZ_DONE)
            freeze_step(&fz, now_real);
        else if (fz.phase == FZ_DONE && cs.phase != 2)
            cost_step(&cs, port, dir);
        if (!kills_done)
            kills_done = tst_cluster_kill_step(&kl, N, NODES, bin, anchor, now_real);
    }
    /* ingest on the 3 nodes (the solo controller's is measured at the end) */
    long long ing_wr[NODES];
    for (int i = 0; i < NODES; i++)
        ing_wr[i] = proc_write_bytes(N[i].pid);
    int64_t ing3_ms = ingest_bursts(c, &clock, &rules, &seed, 5);
    for (int i = 0; i < NODES; i++)
        ing_wr[i] = proc_write_bytes(N[i].pid) - ing_wr[i];
    /* the homes stop; every node converges on the same applied index and last cleared */
    int64_t end = ctl_wall_ms() + DEADLINE_MS;
    int stable = 0;
    while (stable < 3) {
        bus_loop(c, 20);
        int same = tst_cluster_same(N, NODES);
        stable = same ? stable + 1 : 0;
        if (ctl_wall_ms() > end)
            fail_msg("the nodes did not converge within %d ms", DEADLINE_MS);
    }
    /* `mgx cluster status` on every node: running, and one leader among them */
    int leaders = 0;
    for (int i = 0; i < NODES; i++) {
        char out[TST_CTL_PATH_MAX + 16];
        snprintf(out, sizeof out, "%s/status-%d.txt", dir, i + 1);
        assert_int_equal(tst_sh("'%s' cluster status '%s' > '%s'", bin, N[i].conf, out), 0);
        char *t = tst_file_text(out);
        assert_non_null(t);
        assert_non_null(strstr(t, "(this node)"));
        leaders += strstr(t, "role leader") != NULL;
        free(t);
    }
    assert_int_equal(leaders, 1);
    for (int i = 0; i < NODES; i++) {
        tst_controller_stop(N[i].pid);
        N[i].pid = 0;
    }
    /* checks on every node */
    char *ref = NULL;
    int64_t cleared = 0;
    long long x = INT64_MAX, applied_lo = INT64_MAX, applied_hi = 0;
    for (int i = 0; i < NODES; i++) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open_v2(N[i].db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        long long hi = tst_db_int(db, "SELECT max(interval_id) FROM intervals WHERE ?1 = ?1", 0);
        long long ap = tst_db_int(db, "SELECT applied_index FROM cluster_state WHERE ?1 = ?1", 0);
        x = hi < x ? hi : x;
        applied_lo = ap < applied_lo ? ap : applied_lo;
        applied_hi = ap > applied_hi ? ap : applied_hi;
        sqlite3_close(db);
    }
    /* the clean stops, one after the other, leave at most a few entries' difference */
    assert_true(applied_hi - applied_lo <= 8);
    for (int i = 0; i < NODES; i++) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open_v2(N[i].db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        int64_t lo = tst_db_int(db, "SELECT min(interval_id) FROM intervals WHERE ?1 = ?1", 0);
        int64_t hi = tst_db_int(db, "SELECT max(interval_id) FROM intervals WHERE ?1 = ?1", 0);
        int64_t n = tst_db_int(db, "SELECT count(*) FROM intervals WHERE state = 1 AND ?1 = ?1", 0);
        assert_int_equal(lo, first);
        assert_int_equal(n, hi - lo + 1); /* contiguous; the key makes each once */
        cleared = n;
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT count(*) FROM orders WHERE participant = ?1 "
                                            "AND nonce = ?2 AND interval_id = ?3 AND status = 1",
                                            -1, &q, NULL),
                         SQLITE_OK);
        for (size_t k = 0; k < W.n_acc; k++) {
            sqlite3_reset(q);
            sqlite3_bind_text(q, 1, W.acc[k].participant, -1, SQLITE_STATIC);
            sqlite3_bind_blob(q, 2, W.acc[k].nonce, CTL_ORDER_NONCE_BYTES, SQLITE_STATIC);
            sqlite3_bind_int64(q, 3, W.acc[k].interval_id);
            assert_int_equal(sqlite3_step(q), SQLITE_ROW);
            if (sqlite3_column_int(q, 0) != 1)
                fail_msg("node %d lacks receipted order %zu of %s", i + 1, k, W.acc[k].participant);
        }
        sqlite3_finalize(q);
        sqlite3_close(db);
        char *d = market_dump(N[i].db, dir, i, x);
        if (!ref)
            ref = d;
        else {
            if (strcmp(ref, d) != 0)
                fail_msg("node %d's market tables differ from node 1's (see %s/dump-*)", i + 1,
                         dir);
            free(d);
        }
    }
    free(ref);
    /* the ledgers: each verifies with the community key; the blocks every node has are equal */
    int64_t blocks = INT64_MAX;
    for (int i = 0; i < NODES; i++) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open_v2(N[i].db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        int64_t h = tst_db_int(db, "SELECT count(*) FROM ledger_block WHERE ?1 = ?1", 0);
        blocks = h < blocks ? h : blocks;
        sqlite3_close(db);
        assert_int_equal(tst_sh("'%s' ledger verify '%s' --vkey-file '%s/community.vkey' > "
                                "'%s/verify-%d.out' 2>&1",
                                bin, N[i].db, dir, dir, i + 1),
                         0);
    }
    assert_true(blocks > 0);
    char *lref = NULL;
    for (int i = 0; i < NODES; i++) {
        char out[TST_CTL_PATH_MAX + 32];
        snprintf(out, sizeof out, "%s/ledger-%d", dir, i + 1);
        assert_int_equal(tst_sh("(sqlite3 '%s' \"SELECT height, hex(body), checkpoint FROM "
                                "ledger_block WHERE height < %lld ORDER BY height\"; sqlite3 '%s' "
                                "\"SELECT log_index, height, hex(body), hex(salt) FROM ledger_tx "
                                "WHERE height < %lld ORDER BY log_index\") > '%s'",
                                N[i].db, (long long)blocks, N[i].db, (long long)blocks, out),
                         0);
        char *t = tst_file_text(out);
        assert_non_null(t);
        if (!lref)
            lref = t;
        else {
            if (strcmp(lref, t) != 0)
                fail_msg("node %d's ledger differs from node 1's (see %s/ledger-*)", i + 1, dir);
            free(t);
        }
    }
    free(lref);
    fprintf(stderr, "ledgers: %lld blocks equal on every node, mgx ledger verify passes on each\n",
            (long long)blocks);
    int64_t p50, p99;
    tst_cluster_failover(&kl, &p50, &p99);
    fprintf(stderr,
            "cluster of 3 controllers: %d leader kills (kill -9), failover p50 %lld ms, p99 %lld "
            "ms (election timeout 300 ms); %lld intervals cleared once on every node, %zu "
            "accepted orders on every node, %zu late refusals, %zu receipts\n",
            kills, (long long)p50, (long long)p99, (long long)cleared, W.n_acc, W.rejections,
            W.receipts);
    fprintf(stderr,
            "partitions: a frozen follower caught up; a frozen leader replaced in %lld ms "
            "and back as a follower\n",
            (long long)fz.failover_ms);
    tst_cluster_killer_free(&kl);
    /* the same bursts through one controller without [cluster], on a copy of the database the
     * cluster started from, the same broker (the cluster is stopped) */
    {
        char conf[TST_CTL_PATH_MAX + 16], log[TST_CTL_PATH_MAX + 16];
        snprintf(conf, sizeof conf, "%s/solo.ini", dir);
        snprintf(log, sizeof log, "%s/solo.log", dir);
        FILE *f = fopen(conf, "w");
        assert_non_null(f);
        fprintf(f,
                "[bus]\nhost = 127.0.0.1\nport = %d\nclient_id = controller-solo\n"
                "backoff_max_ms = 500\n"
                "[controller]\ncommunity = %s\ndb = %s\ninterval_s = 900\n"
                "gate_closure_s = 300\nmax_ahead_intervals = 4\n"
                "network_fee_uc_per_kwh = 10000\nsettlement_grace_s = 900\n"
                "settlement_key = community.skey\nreading_max_gap_s = 300\n"
                "meter_max_power_w = 100000\n",
                tst_broker_port(br), COMMUNITY, solo_db);
        fclose(f);
        pid_t solo = tst_controller_start(bin, conf, anchor, log, NULL);
        /* the controller first clears and settles the intervals since the database was
         * copied; the bursts start once it has (a settled block for all but the last few
         * cleared intervals), so they do not compete with that catch-up */
        int64_t caught = ctl_wall_ms() + DEADLINE_MS;
        for (;;) {
            bus_loop(c, 50);
            sqlite3 *db;
            assert_int_equal(sqlite3_open_v2(solo_db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
            sqlite3_busy_timeout(db, 2000);
            int64_t cl = tst_db_int(db,
                                    "SELECT count(*) FROM intervals WHERE state = 1 AND "
                                    "interval_id >= ?1",
                                    first);
            int64_t bl = tst_db_int(db, "SELECT count(*) FROM ledger_block WHERE ?1 = ?1", 0);
            int64_t now_iv = ctl_clock_sim_ms(&clock, ctl_wall_ms()) / 1000 / 900;
            sqlite3_close(db);
            if (first + cl >= now_iv - 1 && bl >= cl - 4)
                break;
            if (ctl_wall_ms() > caught)
                fail_msg("the single controller did not catch up (%lld cleared, %lld blocks)",
                         (long long)cl, (long long)bl);
        }
        ingest_bursts(c, &clock, &rules, &seed, 0);
        long long solo_wr = proc_write_bytes(solo);
        int64_t ing1_ms = ingest_bursts(c, &clock, &rules, &seed, 5);
        solo_wr = proc_write_bytes(solo) - solo_wr;
        tst_controller_stop(solo);
        fprintf(stderr,
                "disk written during the %d ingest bursts (%d orders, and the clearing going on "
                "meanwhile): 3 nodes: %lld, %lld, %lld B; 1 node: %lld B\n",
                6, 6 * ING, ing_wr[0], ing_wr[1], ing_wr[2], solo_wr);
        long long r3 = (long long)ING * 5 * 1000 / ing3_ms,
                  r1 = (long long)ING * 5 * 1000 / ing1_ms;
        fprintf(stderr,
                "ingest, bursts of %d signed orders through the real controller and broker, 5 "
                "rounds: 3 nodes %lld orders/s (%lld ms), 1 node %lld orders/s (%lld ms), "
                "ratio 3-node/1-node %lld%%\n",
                ING, r3, (long long)ing3_ms, r1, (long long)ing1_ms, r1 ? r3 * 100 / r1 : 0);
    }
    bus_stop(c, 500);
    bus_free(c);
    tst_homes_free(W.homes, HOMES + ING);
    tst_broker_free(br);
    if (!getenv("MGX_KEEP"))
        tst_rmtree(dir);
    free(dir);
}

/* A failed run leaves no node behind (a frozen one included). */
static int teardown(void **state)
{
    (void)state;
    tst_cluster_kill_all(N, NODES);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(cluster_run, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
