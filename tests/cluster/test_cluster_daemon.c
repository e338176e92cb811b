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
#include "cluster_nodes.h"
#include "bus/bus.h"
#include "common/interval.h"
#include "common/wall_clock.h"
#include "db/store.h"
#include "files.h"
#include "homes.h"
#include "shell.h"

#define HOMES       8
#define ING         64 /* more homes, idle until the ingest bursts */
#define NODES       3
#define COMMUNITY   "testville"
#define DEADLINE_MS 60000

static struct {
    tst_home homes[HOMES + ING];
    size_t ing_receipts;
} W;
static tst_cluster_market M;

static void on_msg(void *user, const bus_message *m)
{
    (void)user;
    if (tst_cluster_take_receipt(&M, m) >= HOMES)
        W.ing_receipts++;
}

static const tst_order_shape SHAPE = {3, 100, 900, 80000, 220000, 80000, 220000};

static tst_cluster_node N[NODES];

static int read_status(int i, char *role, size_t cap, long long *applied, long long *cleared)
{
    (void)cap;
    return tst_cluster_read_status(&N[i], role, applied, cleared);
}

static int leader_of(int except)
{
    return tst_cluster_leader_of(N, NODES, except);
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
        fz->acc0 = M.n_acc;
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
        if (c < fz->cleared0 + 3 || M.n_acc < fz->acc0 + HOMES)
            return;
        fz->applied0 = a;
        kill(N[fz->node].pid, SIGCONT);
        fprintf(stderr, "node %d resumed after %lld ms: %lld intervals and %zu orders later\n",
                fz->node + 1, (long long)(now - fz->at_ms), c - fz->cleared0, M.n_acc - fz->acc0);
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

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
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
    char nodes[256];
    snprintf(nodes, sizeof nodes, "1@127.0.0.1:%d, 2@127.0.0.1:%d, 3@127.0.0.1:%d", port[0],
             port[1], port[2]);
    for (int i = 0; i < NODES; i++)
        tst_cluster_node_config(&N[i], i + 1, dir, tst_broker_port(br), COMMUNITY, nodes, 300,
                                NULL);
    /* one database made and registered, copied to every node (docs/cluster.md) */
    memset(&W, 0, sizeof W);
    memset(&M, 0, sizeof M);
    M.homes = W.homes;
    M.n_trading = HOMES;
    M.n_all = HOMES + ING;
    M.community = COMMUNITY;
    M.shape = SHAPE;
    M.seed = 20240601;
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
    int64_t *failover = calloc((size_t)kills, sizeof *failover);
    assert_non_null(failover);
    int done_kills = 0;
    int64_t next_kill = ctl_wall_ms() + 1500;
    int64_t killed_at = 0;
    int killed = -1;
    int64_t deadline = ctl_wall_ms() + DEADLINE_MS + (int64_t)kills * 3000 + 30000;
    /* after the kills, the partitions: a follower and then the leader frozen (SIGSTOP) */
    freeze fz = {.phase = FZ_IDLE, .node = -1};
    cost cs = {.phase = 0};
    while (done_kills < kills || killed >= 0 || fz.phase != FZ_DONE || cs.phase != 2 ||
           M.n_acc < (size_t)HOMES * 8) {
        if (ctl_wall_ms() > deadline) {
            for (int i = 0; i < NODES; i++) /* a frozen node would outlive the test */
                if (N[i].pid > 0)
                    kill(N[i].pid, SIGKILL);
            fail_msg("the run did not finish: %d kills, %zu accepted orders", done_kills, M.n_acc);
        }
        bus_loop(c, 5);
        /* a node that ended by itself (not killed here) is a failure: say which */
        for (int i = 0; i < NODES; i++) {
            int ws = 0;
            if (N[i].pid > 0 && waitpid(N[i].pid, &ws, WNOHANG) == N[i].pid)
                fail_msg("node %d ended by itself (status %d; see %s)", i + 1, ws, N[i].log);
        }
        tst_cluster_homes_step(&M, c, &clock, &rules);
        int64_t now_real = ctl_wall_ms();
        if (done_kills == kills && killed < 0 && fz.phase != FZ_DONE)
            freeze_step(&fz, now_real);
        else if (fz.phase == FZ_DONE && cs.phase != 2)
            cost_step(&cs, port, dir);
        if (killed >= 0) {
            int l = leader_of(killed);
            if (l >= 0) {
                failover[done_kills++] = now_real - killed_at;
                N[killed].pid =
                    tst_controller_start(bin, N[killed].conf, anchor, N[killed].log, NULL);
                killed = -1;
                next_kill = now_real + 700 + rand_r(&seed) % 1500;
            }
        } else if (done_kills < kills && now_real >= next_kill) {
            int l = leader_of(-1);
            if (l >= 0) {
                kill(N[l].pid, SIGKILL);
                int ws = 0;
                waitpid(N[l].pid, &ws, 0);
                if (!(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL))
                    fail_msg("node %d ended before the kill (status %d; see %s)", l + 1, ws,
                             N[l].log);
                N[l].pid = 0;
                killed = l;
                killed_at = ctl_wall_ms();
            }
        }
    }
    /* ingest on the 3 nodes (the solo controller's is measured at the end) */
    long long ing_wr[NODES];
    for (int i = 0; i < NODES; i++)
        ing_wr[i] = proc_write_bytes(N[i].pid);
    int64_t ing3_ms = ingest_bursts(c, &clock, &rules, &seed, 5);
    for (int i = 0; i < NODES; i++)
        ing_wr[i] = proc_write_bytes(N[i].pid) - ing_wr[i];
    /* the homes stop; every node converges on the same applied index and last cleared */
    const tst_cluster_node *live[NODES];
    for (int i = 0; i < NODES; i++)
        live[i] = &N[i];
    tst_cluster_converge(live, NODES, c, DEADLINE_MS);
    /* `mgx cluster status` on every node: running, and one leader among them */
    assert_int_equal(tst_cluster_leaders(bin, live, NODES, dir, 60000), 1);
    for (int i = 0; i < NODES; i++) {
        tst_controller_stop_log(N[i].pid, N[i].log);
        N[i].pid = 0;
    }
    /* checks on every node */
    int64_t cleared = 0, blocks = 0;
    tst_cluster_check(live, NODES, &M, first, bin, dir, &cleared, &blocks);
    fprintf(stderr, "ledgers: %lld blocks equal on every node, mgx ledger verify passes on each\n",
            (long long)blocks);
    qsort(failover, (size_t)kills, sizeof *failover, cmp_i64);
    size_t p99 = ((size_t)kills * 99 + 99) / 100 - 1;
    fprintf(stderr,
            "cluster of 3 controllers: %d leader kills (kill -9), failover p50 %lld ms, p99 %lld "
            "ms (election timeout 300 ms); %lld intervals cleared once on every node, %zu "
            "accepted orders on every node, %zu late refusals, %zu receipts\n",
            kills, (long long)failover[kills / 2], (long long)failover[p99], (long long)cleared,
            M.n_acc, M.rejections, M.receipts);
    fprintf(stderr,
            "partitions: a frozen follower caught up; a frozen leader replaced in %lld ms "
            "and back as a follower\n",
            (long long)fz.failover_ms);
    free(failover);
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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(cluster_run)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
