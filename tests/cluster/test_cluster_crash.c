/*
 * The replicated log under kill -9 (controller/cluster/): three node processes on 127.0.0.1,
 * each with its own Raft data directory and community database. Whichever node leads proposes
 * READINGS batches without pause and appends each batch the cluster reports committed to an
 * "acked" file (the analogue of a receipt). The test kills the leader with SIGKILL at a random
 * moment, MGX_CLUSTER_KILLS times (10 by default; 100 for the heavy run of docs/cluster.md),
 * restarts it and goes on. At the end, with proposing stopped and every node converged:
 *  - no node ever applied a log index twice (each apply stores a reading keyed by its index and
 *    a node exits with status 3 if that reading already exists);
 *  - every acked batch is in every node's database;
 *  - every node's database has the same content (every table, row by row);
 * and the failover time (kill to another node reporting itself leader) p50/p99 is printed.
 *
 * The same binary is the node: `test_cluster_crash node ID DIR ADDR1 ADDR2 ADDR3`.
 */
#define _POSIX_C_SOURCE 200809L

#include "cluster/cluster.h"
#include "db/cluster_state.h"
#include "db/store.h"

#include "broker.h"
#include "files.h"
#include "shell.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_NODES     3
#define DEADLINE_MS 60000

static const ctl_store_identity ID = {"raftville", 900, 1000};

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- the node process ---- */

static volatile sig_atomic_t node_stop;
static void on_term(int sig)
{
    (void)sig;
    node_stop = 1;
}

typedef struct {
    ctl_store *s;
    FILE *acked;
    int inflight;
} node_ctx;

static int node_apply(void *ctx, uint64_t index, int type, const uint8_t *p, size_t len)
{
    node_ctx *n = ctx;
    if (type != CTL_ENTRY_READINGS || len != 8)
        return 1;
    uint64_t tag = 0;
    ctl_cluster_u64_get(p, 8, &tag);
    mtr_sample r[2];
    memset(r, 0, sizeof r);
    snprintf(r[0].meter_id, sizeof r[0].meter_id, "index");
    r[0].ts_ms = (int64_t)index;
    r[0].soc_permille = -1;
    snprintf(r[1].meter_id, sizeof r[1].meter_id, "batch");
    r[1].ts_ms = (int64_t)tag;
    r[1].import_wh = (int64_t)(tag % 1000);
    r[1].soc_permille = -1;
    size_t inserted = 0;
    if (ctl_store_put_readings(n->s, r, 2, 1700000000000, &inserted) != CTL_ST_OK)
        return -1;
    if (inserted != 2) {
        fprintf(stderr, "index %llu applied twice\n", (unsigned long long)index);
        _exit(3);
    }
    return 0;
}

static void node_done(void *arg, int status, uint64_t index)
{
    (void)index;
    uint64_t *tag = arg;
    node_ctx *n = (node_ctx *)(void *)tag[1];
    n->inflight--;
    if (status == CTL_CLUSTER_OK) {
        fprintf(n->acked, "%llu\n", (unsigned long long)tag[0]);
        fflush(n->acked); /* in the kernel before anyone is told: a kill -9 keeps it */
    }
    free(tag);
}

static void write_status(const char *dir, uint64_t id, const ctl_cluster_status *st)
{
    char path[1024], tmp[1100];
    snprintf(path, sizeof path, "%s/status-%llu", dir, (unsigned long long)id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "%d %llu %llu %llu %llu %llu\n", st->role, (unsigned long long)st->term,
            (unsigned long long)st->leader_id, (unsigned long long)st->commit_index,
            (unsigned long long)st->log_applied, (unsigned long long)st->applied_index);
    fclose(f);
    rename(tmp, path);
}

static int node_main(int argc, char **argv)
{
    if (argc != 3 + N_NODES)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    uint64_t id = strtoull(argv[1], NULL, 10);
    const char *dir = argv[2];
    ctl_cluster_config cfg;
    memset(&cfg, 0, sizeof cfg);
    ctl_cluster_config_defaults(&cfg);
    cfg.node_id = id;
    cfg.n_nodes = N_NODES;
    for (int i = 0; i < N_NODES; i++) {
        cfg.nodes[i].id = (uint64_t)i + 1;
        snprintf(cfg.nodes[i].address, sizeof cfg.nodes[i].address, "%s", argv[3 + i]);
    }
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s/raft-%llu", dir, (unsigned long long)id);
    cfg.election_timeout_ms = 300;
    cfg.snapshot_threshold = 64;
    cfg.snapshot_trailing = 16;
    char db_path[1024], acked[1024], stop_file[1024], err[512] = "";
    snprintf(db_path, sizeof db_path, "%s/community-%llu.db", dir, (unsigned long long)id);
    snprintf(acked, sizeof acked, "%s/acked-%llu", dir, (unsigned long long)id);
    snprintf(stop_file, sizeof stop_file, "%s/stop-proposing", dir);
    node_ctx n = {0};
    if (ctl_store_open(db_path, &ID, &n.s, err, sizeof err) != CTL_ST_OK) {
        fprintf(stderr, "store: %s\n", err);
        return 2;
    }
    n.acked = fopen(acked, "a");
    ctl_log log = {"cluster-node", CTL_LOG_WARN, NULL, NULL};
    ctl_cluster_fsm fsm = {node_apply, NULL, &n};
    ctl_cluster *c = NULL;
    if (!n.acked || ctl_cluster_open(&cfg, ctl_store_db(n.s), &fsm, &log, &c, err, sizeof err)) {
        fprintf(stderr, "cluster: %s\n", err);
        return 2;
    }
    /* tags unique across every incarnation of every node: node, start time, counter */
    uint64_t counter = 0, base = (id << 56) | ((uint64_t)time(NULL) & 0xffffffu) << 24;
    int64_t next_status = 0;
    int rc = 0;
    while (!node_stop) {
        if (ctl_cluster_run(c, 2) != CTL_CLUSTER_OK) {
            rc = 4;
            break;
        }
        struct stat sb;
        int proposing = stat(stop_file, &sb) != 0;
        while (proposing && ctl_cluster_is_leader(c) && n.inflight < 8) {
            uint64_t *tag = malloc(2 * sizeof *tag);
            if (!tag)
                break;
            tag[0] = base | (counter++ & 0xffffffu);
            tag[1] = (uint64_t)(void *)&n;
            uint8_t payload[8];
            ctl_cluster_u64_put(payload, tag[0]);
            if (ctl_cluster_propose(c, CTL_ENTRY_READINGS, payload, 8, node_done, tag) !=
                CTL_CLUSTER_OK) {
                free(tag);
                break;
            }
            n.inflight++;
        }
        if (now_ms() >= next_status) {
            ctl_cluster_status st;
            ctl_cluster_get_status(c, &st);
            write_status(dir, id, &st);
            next_status = now_ms() + 20;
        }
    }
    ctl_cluster_status fin;
    ctl_cluster_get_status(c, &fin);
    fprintf(stderr,
            "node %llu: rc %d, chains compared %llu, not comparable %llu, diverged %d; guard: "
            "%llu commit indexes, %llu match reports lowered\n",
            (unsigned long long)id, rc, (unsigned long long)fin.chain_checked,
            (unsigned long long)fin.chain_unchecked, fin.diverged,
            (unsigned long long)fin.commit_clamped, (unsigned long long)fin.match_clamped);
    ctl_cluster_close(c);
    fclose(n.acked);
    ctl_store_free(n.s);
    return rc;
}

/* ---- the test ---- */

typedef struct {
    int role;
    unsigned long long term, leader, commit, log_applied, applied;
} status_row;

static char *dir;
static char addrs[N_NODES][64];
static pid_t pids[N_NODES];
static char self_exe[1024];

static int read_status(int i, status_row *s)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/status-%d", dir, i + 1);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = fscanf(f, "%d %llu %llu %llu %llu %llu", &s->role, &s->term, &s->leader, &s->commit,
                   &s->log_applied, &s->applied);
    fclose(f);
    return n == 6 ? 0 : -1;
}

static void start_node(int i)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/status-%d", dir, i + 1);
    unlink(path); /* a stale status must not count */
    char id[16], logf[1024];
    snprintf(id, sizeof id, "%d", i + 1);
    snprintf(logf, sizeof logf, "%s/node-%d.log", dir, i + 1);
    char *argv[] = {self_exe, "node", id, dir, addrs[0], addrs[1], addrs[2], NULL};
    pids[i] = tst_spawn_logged(logf, argv);
}

/* The node whose fresh status says leader, of the ones running and not `except`; -1 if none. */
static int current_leader(int except)
{
    for (int i = 0; i < N_NODES; i++) {
        status_row s;
        if (i != except && pids[i] > 0 && read_status(i, &s) == 0 && s.role == CTL_ROLE_LEADER)
            return i;
    }
    return -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t count_query(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Every table's rows, sorted, as one text (see test_cluster.c). */
static char *dump(const char *path)
{
    char cmd[2048];
    char out[1100];
    snprintf(out, sizeof out, "%s.dump", path);
    snprintf(cmd, sizeof cmd,
             "for t in $(sqlite3 '%s' \"SELECT name FROM sqlite_master WHERE type='table' "
             "ORDER BY name\"); do echo \"#$t\"; sqlite3 '%s' \"SELECT * FROM \\\"$t\\\"\" | "
             "LC_ALL=C sort; done > '%s'",
             path, path, out);
    assert_int_equal(system(cmd), 0);
    char *d = tst_file_read(out, NULL);
    assert_non_null(d);
    return d;
}

static void test_kill_leader(void **state)
{
    (void)state;
    const char *env = getenv("MGX_CLUSTER_KILLS");
    int kills = env ? atoi(env) : 10;
    if (kills < 1)
        kills = 1;
    srand((unsigned)time(NULL));
    for (int i = 0; i < N_NODES; i++)
        start_node(i);
    int64_t *failover = calloc((size_t)kills, sizeof *failover);
    assert_non_null(failover);
    for (int k = 0; k < kills; k++) {
        int64_t end = now_ms() + DEADLINE_MS;
        int leader;
        while ((leader = current_leader(-1)) < 0) {
            if (now_ms() > end)
                fail_msg("kill %d: no leader within %d ms", k, DEADLINE_MS);
            tst_sleep_ms(10);
        }
        tst_sleep_ms(50 + rand() % 1000); /* a random moment of its stream of proposals */
        leader = current_leader(-1);
        if (leader < 0) {
            k--;
            continue;
        }
        int64_t t0 = now_ms();
        kill(pids[leader], SIGKILL);
        int ws = 0;
        waitpid(pids[leader], &ws, 0);
        if (!(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL))
            fail_msg("node %d ended with %d before the kill (see its log)", leader + 1, ws);
        pids[leader] = 0;
        int next;
        while ((next = current_leader(leader)) < 0) {
            if (now_ms() > t0 + DEADLINE_MS)
                fail_msg("kill %d: no new leader within %d ms", k, DEADLINE_MS);
            tst_sleep_ms(5);
        }
        failover[k] = now_ms() - t0;
        start_node(leader);
    }
    /* stop proposing, then wait until every node has applied the same last index for a while */
    char stop_file[1024];
    snprintf(stop_file, sizeof stop_file, "%s/stop-proposing", dir);
    tst_file_write(stop_file, "", 0644);
    int64_t end = now_ms() + DEADLINE_MS;
    int stable = 0;
    while (stable < 20) {
        status_row s[N_NODES];
        int same = 1;
        for (int i = 0; i < N_NODES; i++)
            if (read_status(i, &s[i]) != 0)
                same = 0;
        for (int i = 0; same && i < N_NODES; i++)
            same = s[i].commit == s[0].commit && s[i].log_applied == s[0].commit &&
                   s[i].applied == s[0].applied;
        stable = same ? stable + 1 : 0;
        if (now_ms() > end)
            fail_msg("the nodes did not converge within %d ms", DEADLINE_MS);
        tst_sleep_ms(25);
    }
    for (int i = 0; i < N_NODES; i++) {
        kill(pids[i], SIGTERM);
        int ws = 0;
        waitpid(pids[i], &ws, 0);
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            fail_msg("node %d ended with status %d (3: an index applied twice)", i + 1, ws);
        pids[i] = 0;
    }
    /* what the divergence check and the libraft guard did in each node's last run */
    for (int i = 0; i < N_NODES; i++) {
        char path[1024], line[512], last[512] = "";
        snprintf(path, sizeof path, "%s/node-%d.log", dir, i + 1);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f))
            if (strstr(line, "chains compared"))
                snprintf(last, sizeof last, "%s", line);
        if (f)
            fclose(f);
        printf("%s", last);
    }
    /* identical databases */
    char db[N_NODES][1024];
    char *ref = NULL;
    for (int i = 0; i < N_NODES; i++) {
        snprintf(db[i], sizeof db[i], "%s/community-%d.db", dir, i + 1);
        char *d = dump(db[i]);
        if (!ref)
            ref = d;
        else {
            if (strcmp(ref, d) != 0)
                fail_msg("node %d's database differs from node 1's", i + 1);
            free(d);
        }
    }
    free(ref);
    /* every acked batch on every node */
    int64_t acked_total = 0;
    for (int a = 0; a < N_NODES; a++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/acked-%d", dir, a + 1);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        unsigned long long tag;
        while (fscanf(f, "%llu", &tag) == 1) {
            acked_total++;
            char sql[256];
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM readings WHERE meter_id = 'batch' AND ts_ms = %lld",
                     (long long)tag);
            for (int i = 0; i < N_NODES; i++)
                if (count_query(db[i], sql) != 1)
                    fail_msg("acked batch %llu missing on node %d", tag, i + 1);
        }
        fclose(f);
    }
    int64_t batches = count_query(db[0], "SELECT count(*) FROM readings WHERE meter_id = 'batch'");
    int64_t indexes = count_query(db[0], "SELECT count(*) FROM readings WHERE meter_id = 'index'");
    assert_int_equal(batches, indexes);
    assert_true(acked_total > 0 && acked_total <= batches);
    qsort(failover, (size_t)kills, sizeof *failover, cmp_i64);
    size_t p99 = ((size_t)kills * 99 + 99) / 100 - 1;
    printf("kill -9 of the leader x%d (election timeout 300 ms): failover p50 %lld ms, p99 %lld "
           "ms, max %lld ms; %lld batches committed, %lld acked, 0 lost, 0 applied twice\n",
           kills, (long long)failover[kills / 2], (long long)failover[p99],
           (long long)failover[kills - 1], (long long)batches, (long long)acked_total);
    free(failover);
}

static int setup(void **state)
{
    (void)state;
    dir = tst_tmpdir("cluster-crash");
    if (!dir)
        return -1;
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0)
        return -1;
    self_exe[n] = 0;
    for (int i = 0; i < N_NODES; i++)
        snprintf(addrs[i], sizeof addrs[i], "127.0.0.1:%d", tst_free_port());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N_NODES; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
    if (!getenv("MGX_KEEP"))
        tst_rmtree(dir);
    free(dir);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "node") == 0)
        return node_main(argc - 1, argv + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_leader),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
