/*
 * The replicated log (controller/cluster/): three nodes on 127.0.0.1 in one process, each with
 * its own Raft data directory and community database, driven from this one thread (as the
 * daemon drives its node from its loop). Entries are READINGS batches applied with the store's
 * own ctl_store_put_readings. Checked after each step:
 *  - every proposal the leader reports committed was applied exactly once on every node that
 *    was up, at the log index the proposal reported, in proposal order;
 *  - every node's database has the same content (every table, row by row);
 *  - a refused entry is refused on every node and still counts as applied;
 *  - the leader stopped: another node is leader, and the figure is printed;
 *  - a stopped node catches up from the log, and from a snapshot once the log was compacted
 *    past it; a restart of every node re-applies nothing;
 *  - (test_divergence, a cluster of its own) a node whose chain of applied entries differs from
 *    the leader's stops, stays stopped, and a new node replaces it.
 */
#define _POSIX_C_SOURCE 200809L

#include "cluster/cluster.h"
#include "cluster/cluster_admin.h"
#include "cluster/cluster_config.h"
#include "db/cluster_state.h"
#include "db/store.h"

#include "broker.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define N_NODES     3
#define MAX_SEQ     400
#define DEADLINE_MS 30000

static const ctl_store_identity ID = {"raftville", 900, 1000};

typedef struct {
    uint64_t id;
    char addr[64];
    char raft_dir[512];
    char db_path[512];
    ctl_store *s;
    ctl_cluster *c;
    /* over every incarnation of the node in this process: how often each seq was applied, and
     * at which index */
    int applied[MAX_SEQ];
    uint64_t index_of[MAX_SEQ];
    int refused;
} node;

static node nodes[N_NODES];
static ctl_cluster_node members[N_NODES];
static ctl_log quiet = {"cluster-test", CTL_LOG_WARN, NULL, NULL};

typedef struct {
    int done;
    int status;
    uint64_t index;
} outcome;

static outcome outcomes[MAX_SEQ];
static int next_seq;

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A READINGS payload of this test: seq (4 bytes), received_ms (8), then meter lines
 * "ID TS IMPORT EXPORT\n". A payload starting with "bad" is malformed and refused. */
static int apply(void *ctx, uint64_t index, int type, const uint8_t *p, size_t len)
{
    node *n = ctx;
    if (type != CTL_ENTRY_READINGS || len < 12)
        return 1;
    int seq = (int)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    uint64_t received = 0;
    ctl_cluster_u64_get(p + 4, 8, &received);
    char text[1024];
    size_t tl = len - 12 < sizeof text - 1 ? len - 12 : sizeof text - 1;
    memcpy(text, p + 12, tl);
    text[tl] = 0;
    if (strncmp(text, "bad", 3) == 0) {
        n->refused++;
        return 1;
    }
    mtr_sample r[8];
    size_t nr = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && nr < 8;
         line = strtok_r(NULL, "\n", &save)) {
        memset(&r[nr], 0, sizeof r[nr]);
        long long ts, im, ex;
        if (sscanf(line, "%15s %lld %lld %lld", r[nr].meter_id, &ts, &im, &ex) != 4)
            return 1;
        r[nr].ts_ms = ts;
        r[nr].import_wh = im;
        r[nr].export_wh = ex;
        r[nr].soc_permille = -1;
        nr++;
    }
    size_t inserted = 0;
    if (ctl_store_put_readings(n->s, r, nr, (int64_t)received, &inserted) != CTL_ST_OK)
        return -1;
    if (seq >= 0 && seq < MAX_SEQ) {
        n->applied[seq]++;
        n->index_of[seq] = index;
    }
    return 0;
}

static void node_open(node *n)
{
    char err[512] = "";
    assert_int_equal(ctl_store_open(n->db_path, &ID, &n->s, err, sizeof err), CTL_ST_OK);
    ctl_cluster_config cfg;
    memset(&cfg, 0, sizeof cfg);
    ctl_cluster_config_defaults(&cfg);
    cfg.node_id = n->id;
    memcpy(cfg.nodes, members, sizeof members);
    cfg.n_nodes = N_NODES;
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", n->raft_dir);
    /* the default: shorter terms flap on a loaded machine (a leader not driven for 300 ms
     * loses its term, and its pending proposals end NOT_LEADER) */
    cfg.election_timeout_ms = 1000;
    cfg.snapshot_threshold = 16; /* small, so the snapshot path runs */
    cfg.snapshot_trailing = 4;
    /* the nodes share this thread: a closing leader could not hand over to a node that is not
     * driven meanwhile (it would wait two election timeouts while the others stand still) */
    cfg.handover_on_close = 0;
    ctl_cluster_fsm fsm = {apply, NULL, n};
    int rc = ctl_cluster_open(&cfg, ctl_store_db(n->s), &fsm, &quiet, &n->c, err, sizeof err);
    if (rc != CTL_CLUSTER_OK)
        fail_msg("node %llu: %s (%s)", (unsigned long long)n->id, ctl_cluster_strerror(rc), err);
}

static void node_stop(node *n)
{
    ctl_cluster_close(n->c);
    n->c = NULL;
    ctl_store_free(n->s);
    n->s = NULL;
}

static node joiner; /* test_membership's node 4, added to the running cluster */

static void drive(int ms)
{
    int64_t end = now_ms() + ms;
    do {
        for (int i = 0; i < N_NODES; i++)
            if (nodes[i].c)
                assert_int_equal(ctl_cluster_run(nodes[i].c, 0), CTL_CLUSTER_OK);
        if (joiner.c)
            assert_int_equal(ctl_cluster_run(joiner.c, 0), CTL_CLUSTER_OK);
        tst_sleep_ms(1);
    } while (now_ms() < end);
}

/* The one leader all running nodes (node 4 of test_membership too) agree on, or NULL. */
static node *agreed_leader(void)
{
    node *all[N_NODES + 1];
    for (int i = 0; i < N_NODES; i++)
        all[i] = &nodes[i];
    all[N_NODES] = &joiner;
    node *leader = NULL;
    for (int i = 0; i <= N_NODES; i++)
        if (all[i]->c && ctl_cluster_is_leader(all[i]->c)) {
            if (leader)
                return NULL;
            leader = all[i];
        }
    if (!leader)
        return NULL;
    for (int i = 0; i <= N_NODES; i++) {
        ctl_cluster_status st;
        if (!all[i]->c)
            continue;
        ctl_cluster_get_status(all[i]->c, &st);
        /* node 4 knows no leader until one adds it */
        if (st.leader_id != leader->id && !(all[i] == &joiner && st.leader_id == 0))
            return NULL;
    }
    return leader;
}

static node *wait_leader(void)
{
    int64_t end = now_ms() + DEADLINE_MS;
    node *l;
    while (!(l = agreed_leader())) {
        if (now_ms() > end)
            fail_msg("no leader within %d ms", DEADLINE_MS);
        drive(5);
    }
    return l;
}

static void done_cb(void *arg, int status, uint64_t index)
{
    outcome *o = arg;
    o->done = 1;
    o->status = status;
    o->index = index;
}

static int propose_text(node *leader, int seq, const char *lines)
{
    uint8_t buf[1024];
    size_t tl = strlen(lines);
    assert_true(12 + tl <= sizeof buf);
    buf[0] = (uint8_t)(seq >> 24);
    buf[1] = (uint8_t)(seq >> 16);
    buf[2] = (uint8_t)(seq >> 8);
    buf[3] = (uint8_t)seq;
    ctl_cluster_u64_put(buf + 4, (uint64_t)(1700000000000 + seq)); /* the leader's receipt time */
    memcpy(buf + 12, lines, tl);
    return ctl_cluster_propose(leader->c, CTL_ENTRY_READINGS, buf, 12 + tl, done_cb,
                               &outcomes[seq]);
}

/* Proposes count batches of readings on the leader and waits until each is committed. */
static void propose_batches(node *leader, int count)
{
    int first = next_seq;
    for (int k = 0; k < count; k++) {
        int seq = next_seq++;
        assert_true(seq < MAX_SEQ);
        char lines[256];
        snprintf(lines, sizeof lines, "m%d %lld %d %d\nm%d %lld %d %d\n", seq % 4,
                 1000LL * 900 * 1000 + seq * 1000LL, 100 + seq, seq, (seq + 1) % 4,
                 1000LL * 900 * 1000 + seq * 1000LL, 200 + seq, 2 * seq);
        assert_int_equal(propose_text(leader, seq, lines), CTL_CLUSTER_OK);
    }
    int64_t end = now_ms() + DEADLINE_MS;
    for (int seq = first; seq < next_seq; seq++) {
        while (!outcomes[seq].done) {
            if (now_ms() > end)
                fail_msg("proposal %d not committed within %d ms", seq, DEADLINE_MS);
            drive(2);
        }
        assert_int_equal(outcomes[seq].status, CTL_CLUSTER_OK);
        if (seq > first)
            assert_true(outcomes[seq].index > outcomes[seq - 1].index);
    }
}

/* Waits until every running node applied up to the leader's commit index. */
static void wait_converged(void)
{
    int64_t end = now_ms() + DEADLINE_MS;
    for (;;) {
        uint64_t top = 0;
        for (int i = 0; i < N_NODES; i++)
            if (nodes[i].c) {
                ctl_cluster_status st;
                ctl_cluster_get_status(nodes[i].c, &st);
                if (st.commit_index > top)
                    top = st.commit_index;
            }
        int all = 1;
        for (int i = 0; i < N_NODES; i++)
            if (nodes[i].c) {
                ctl_cluster_status st;
                ctl_cluster_get_status(nodes[i].c, &st);
                all &= st.commit_index == top && st.log_applied == top;
            }
        if (all)
            return;
        if (now_ms() > end)
            fail_msg("the nodes did not converge within %d ms", DEADLINE_MS);
        drive(5);
    }
}

/* ---- every table of a node's database, row by row ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The database's content as text: per table (by name) its rows sorted; allocated. */
static char *dump(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *tables = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "ORDER BY name",
                                        -1, &tables, NULL),
                     SQLITE_OK);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = 0;
    while (sqlite3_step(tables) == SQLITE_ROW) {
        char sql[256];
        const char *name = (const char *)sqlite3_column_text(tables, 0);
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", name);
        sqlite3_stmt *rows = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &rows, NULL), SQLITE_OK);
        char **lines = NULL;
        size_t n = 0;
        while (sqlite3_step(rows) == SQLITE_ROW) {
            char line[2048];
            size_t l = 0;
            for (int col = 0; col < sqlite3_column_count(rows); col++) {
                const unsigned char *v = sqlite3_column_text(rows, col);
                int w = snprintf(line + l, sizeof line - l, "%s|", v ? (const char *)v : "NULL");
                if (w > 0 && (size_t)w < sizeof line - l)
                    l += (size_t)w;
            }
            lines = realloc(lines, (n + 1) * sizeof *lines);
            assert_non_null(lines);
            lines[n++] = strdup(line);
        }
        sqlite3_finalize(rows);
        if (n)
            qsort(lines, n, sizeof *lines, cmp_str);
        for (size_t i = 0; i <= n; i++) {
            const char *t = i == 0 ? name : lines[i - 1];
            size_t tl = strlen(t);
            while (len + tl + 3 > cap) {
                cap *= 2;
                out = realloc(out, cap);
                assert_non_null(out);
            }
            memcpy(out + len, i == 0 ? "#" : "", i == 0 ? 1 : 0);
            len += i == 0 ? 1 : 0;
            memcpy(out + len, t, tl);
            len += tl;
            out[len++] = '\n';
            out[len] = 0;
            if (i)
                free(lines[i - 1]);
        }
        free(lines);
    }
    sqlite3_finalize(tables);
    sqlite3_close(db);
    return out;
}

static size_t count_lines_of(const char *d, const char *table)
{
    char head[64];
    snprintf(head, sizeof head, "#%s\n", table);
    const char *p = strstr(d, head);
    if (!p)
        return 0;
    p += strlen(head);
    size_t n = 0;
    while (*p && *p != '#') {
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
        n++;
    }
    return n;
}

/* Every running node's database equals node `ref`'s, and holds every committed batch. */
static void check_identical(void)
{
    char *ref = NULL;
    for (int i = 0; i < N_NODES; i++) {
        if (!nodes[i].c)
            continue;
        char *d = dump(nodes[i].db_path);
        if (!ref) {
            ref = d;
            continue;
        }
        if (strcmp(ref, d) != 0)
            fail_msg("node %llu's database differs from the first running node's",
                     (unsigned long long)nodes[i].id);
        free(d);
    }
    /* two readings a batch, each meter/time once */
    assert_int_equal(count_lines_of(ref, "readings"), (size_t)next_seq * 2);
    free(ref);
}

/* Every committed seq was applied at most once on every node, at its committed index. */
static void check_once(int must_have_all)
{
    for (int i = 0; i < N_NODES; i++)
        for (int seq = 0; seq < next_seq; seq++) {
            if (nodes[i].applied[seq] > 1)
                fail_msg("node %llu applied batch %d %d times", (unsigned long long)nodes[i].id,
                         seq, nodes[i].applied[seq]);
            if (must_have_all && nodes[i].applied[seq] != 1)
                fail_msg("node %llu never applied batch %d", (unsigned long long)nodes[i].id, seq);
            if (nodes[i].applied[seq] && nodes[i].index_of[seq] != outcomes[seq].index)
                fail_msg("node %llu applied batch %d at %llu, committed at %llu",
                         (unsigned long long)nodes[i].id, seq,
                         (unsigned long long)nodes[i].index_of[seq],
                         (unsigned long long)outcomes[seq].index);
        }
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as the daemons do (common/stop_signal.c): a peer's closed socket */
    char *dir = tst_tmpdir("cluster");
    if (!dir)
        return -1;
    for (int i = 0; i < N_NODES; i++) {
        node *n = &nodes[i];
        memset(n, 0, sizeof *n);
        n->id = (uint64_t)i + 1;
        snprintf(n->addr, sizeof n->addr, "127.0.0.1:%d", tst_free_port());
        snprintf(n->raft_dir, sizeof n->raft_dir, "%s/raft-%d", dir, i + 1);
        snprintf(n->db_path, sizeof n->db_path, "%s/community-%d.db", dir, i + 1);
        members[i].id = n->id;
        snprintf(members[i].address, sizeof members[i].address, "%s", n->addr);
    }
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    if (joiner.c)
        node_stop(&joiner);
    for (int i = 0; i < N_NODES; i++)
        if (nodes[i].c)
            node_stop(&nodes[i]);
    tst_rmtree(*state);
    free(*state);
    return 0;
}

typedef struct {
    int done, status;
    char msg[400];
} change_end;

static void change_cb(void *arg, int status, const char *msg)
{
    change_end *e = arg;
    e->done = 1;
    e->status = status;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
}

static void wait_change(change_end *e)
{
    int64_t end = now_ms() + DEADLINE_MS;
    while (!e->done) {
        if (now_ms() > end)
            fail_msg("the membership change did not end within %d ms", DEADLINE_MS);
        drive(5);
    }
    if (e->status != CTL_CLUSTER_OK)
        fail_msg("the membership change failed: %s", e->msg);
}

static size_t voters_of(node *n)
{
    ctl_cluster_member m[CTL_CLUSTER_MAX_NODES];
    size_t k = 0, v = 0;
    int changing = 0;
    assert_int_equal(ctl_cluster_members(n->c, m, CTL_CLUSTER_MAX_NODES, &k, &changing),
                     CTL_CLUSTER_OK);
    for (size_t i = 0; i < k; i++)
        v += m[i].role == CTL_MEMBER_VOTER;
    return v;
}

/* Membership on the running cluster of test_replicated_log: the refusals; node 4 added with a
 * new data directory and database (join), caught up from a snapshot and made a voter; then
 * nodes removed down to one voter, whose own removal is refused. */
/* Node 4 in join mode (docs/cluster.md): a new data directory and an empty database in dir, a
 * configuration of itself alone, so it waits to be added; snapshots every 16 entries. */
static void start_joiner(const char *dir)
{
    char err[512] = "";
    memset(&joiner, 0, sizeof joiner);
    joiner.id = 4;
    snprintf(joiner.addr, sizeof joiner.addr, "127.0.0.1:%d", tst_free_port());
    snprintf(joiner.raft_dir, sizeof joiner.raft_dir, "%s/raft-4", dir);
    snprintf(joiner.db_path, sizeof joiner.db_path, "%s/community-4.db", dir);
    assert_int_equal(ctl_store_open(joiner.db_path, &ID, &joiner.s, err, sizeof err), CTL_ST_OK);
    ctl_cluster_config cfg;
    memset(&cfg, 0, sizeof cfg);
    ctl_cluster_config_defaults(&cfg); /* election_timeout_ms 1000 */
    cfg.node_id = 4;
    cfg.nodes[0].id = 4;
    snprintf(cfg.nodes[0].address, sizeof cfg.nodes[0].address, "%s", joiner.addr);
    cfg.n_nodes = 1;
    cfg.join = 1;
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", joiner.raft_dir);
    cfg.snapshot_threshold = 16;
    cfg.snapshot_trailing = 4;
    cfg.handover_on_close = 0; /* as node_open */
    ctl_cluster_fsm fsm = {apply, NULL, &joiner};
    assert_int_equal(ctl_cluster_open(&cfg, ctl_store_db(joiner.s), &fsm, &quiet, &joiner.c, err,
                                      sizeof err),
                     CTL_CLUSTER_OK);
}

static void test_membership(void **state)
{
    char err[512] = "";
    node *leader = wait_leader();
    node *f = leader == &nodes[0] ? &nodes[1] : &nodes[0];
    change_end e = {0, 0, ""};
    /* a follower names the leader and its address */
    assert_int_equal(ctl_cluster_remove(f->c, 3, change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_E_NOT_LEADER);
    char want[128];
    snprintf(want, sizeof want, "the leader is node %llu at %s", (unsigned long long)leader->id,
             leader->addr);
    if (!strstr(err, want))
        fail_msg("'%s' does not say '%s'", err, want);
    assert_int_equal(ctl_cluster_add(f->c, 4, "127.0.0.1:1", change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_E_NOT_LEADER);
    /* the leader refuses what cannot be */
    assert_int_equal(ctl_cluster_remove(leader->c, 9, change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_E_INVAL);
    assert_non_null(strstr(err, "node 9 is not in the configuration"));
    assert_int_equal(ctl_cluster_add(leader->c, 0, "127.0.0.1:1", change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_E_INVAL);
    assert_int_equal(ctl_cluster_add(leader->c, 4, "127.0.0.1", change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_E_INVAL);
    assert_int_equal(ctl_cluster_add(leader->c, 4, "a b:1", change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_E_INVAL);
    assert_int_equal(ctl_cluster_add(leader->c, 4, f->addr, change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_E_INVAL);
    assert_non_null(strstr(err, "address"));
    assert_int_equal(ctl_cluster_add(leader->c, f->id, "127.0.0.1:1", change_cb, &e, err,
                                     sizeof err),
                     CTL_CLUSTER_E_INVAL);
    assert_false(e.done);
    /* a voter already: done at once */
    assert_int_equal(ctl_cluster_add(leader->c, f->id, f->addr, change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_OK);
    assert_true(e.done);
    assert_non_null(strstr(e.msg, "already a voter"));

    /* node 4 joins: a new data directory and an empty database */
    start_joiner((const char *)*state);
    /* alone it never stands for election: it has no configuration */
    drive(2500);
    assert_false(ctl_cluster_is_leader(joiner.c));
    leader = wait_leader();
    propose_batches(leader, 20);
    memset(&e, 0, sizeof e);
    assert_int_equal(ctl_cluster_add(leader->c, 4, joiner.addr, change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_OK);
    /* one change at a time */
    change_end e2 = {0, 0, ""};
    assert_int_equal(ctl_cluster_remove(leader->c, f->id, change_cb, &e2, err, sizeof err),
                     CTL_CLUSTER_E_BUSY);
    wait_change(&e);
    assert_non_null(strstr(e.msg, "node 4 at"));
    assert_non_null(strstr(e.msg, "is a voter"));
    assert_int_equal(voters_of(leader), 4);
    ctl_cluster_status st;
    ctl_cluster_get_status(joiner.c, &st);
    assert_int_equal(st.n_restores, 1); /* the log was compacted: a snapshot */
    /* it takes part: the next batches reach it, and its database equals the leader's */
    propose_batches(leader, 5);
    int64_t end = now_ms() + DEADLINE_MS;
    for (;;) {
        ctl_cluster_status ls;
        ctl_cluster_get_status(leader->c, &ls);
        ctl_cluster_get_status(joiner.c, &st);
        if (st.log_applied == ls.commit_index)
            break;
        if (now_ms() > end)
            fail_msg("node 4 did not apply the new batches");
        drive(5);
    }
    char *a = dump(leader->db_path), *b = dump(joiner.db_path);
    if (strcmp(a, b) != 0)
        fail_msg("node 4's database differs from the leader's");
    free(a);
    free(b);

    /* the followers removed one by one, then the last voter is kept */
    for (int i = 0; i < N_NODES; i++) {
        leader = wait_leader();
        if (&nodes[i] == leader)
            continue;
        memset(&e, 0, sizeof e);
        assert_int_equal(ctl_cluster_remove(leader->c, nodes[i].id, change_cb, &e, err,
                                            sizeof err),
                         CTL_CLUSTER_OK);
        wait_change(&e);
        assert_non_null(strstr(e.msg, "is removed"));
        node_stop(&nodes[i]);
    }
    leader = wait_leader();
    assert_int_equal(voters_of(leader), 2);
    node *other = leader == &joiner ? NULL : &joiner;
    if (other) {
        memset(&e, 0, sizeof e);
        assert_int_equal(ctl_cluster_remove(leader->c, 4, change_cb, &e, err, sizeof err),
                         CTL_CLUSTER_OK);
        wait_change(&e);
        node_stop(&joiner);
    } else {
        /* node 4 leads: it hands over rather than remove itself; the other removes it */
        assert_int_equal(ctl_cluster_remove(leader->c, 4, change_cb, &e, err, sizeof err),
                         CTL_CLUSTER_E_NOT_LEADER);
        assert_non_null(strstr(err, "does not remove itself"));
        for (;;) {
            leader = wait_leader();
            if (leader != &joiner)
                break;
            drive(50);
        }
        memset(&e, 0, sizeof e);
        assert_int_equal(ctl_cluster_remove(leader->c, 4, change_cb, &e, err, sizeof err),
                         CTL_CLUSTER_OK);
        wait_change(&e);
        node_stop(&joiner);
    }
    leader = wait_leader();
    assert_int_equal(voters_of(leader), 1);
    assert_int_equal(ctl_cluster_remove(leader->c, leader->id, change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_E_INVAL);
    assert_non_null(strstr(err, "last voter"));
    /* and alone it still commits */
    propose_batches(leader, 3);
}

/* A raw connection to node n's admin socket: sends text (as is) and collects the reply until
 * the node closes, driving the cluster meanwhile (the node answers on its own loop, in this
 * process). The reply's length; -1 if the connection failed. */
static int admin_connect(node *n)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", n->raft_dir,
                 CTL_CLUSTER_ADMIN_FILE) >= (int)sizeof sa.sun_path)
        fail_msg("%s: too long a socket path", n->raft_dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int admin_raw(node *n, const char *text, char *reply, size_t cap)
{
    int fd = admin_connect(n);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
    size_t got = 0;
    int64_t end = now_ms() + DEADLINE_MS;
    for (;;) {
        drive(5);
        ssize_t r = recv(fd, reply + got, cap - 1 - got, MSG_DONTWAIT);
        if (r == 0)
            break;
        if (r > 0)
            got += (size_t)r;
        if (now_ms() > end)
            fail_msg("no reply from node %llu's admin socket", (unsigned long long)n->id);
    }
    close(fd);
    reply[got] = 0;
    return (int)got;
}

/* The admin socket's bounds: a request line at most 255 bytes, unknown requests refused, and
 * at most 4 connections served at once (one more closed unanswered, and the socket still
 * serves once they are gone). */
static void test_admin_socket(void **state)
{
    (void)state;
    node *leader = wait_leader();
    char reply[CTL_CLUSTER_ADMIN_REPLY];
    admin_raw(leader, "members\n", reply, sizeof reply);
    assert_non_null(strstr(reply, "member 1 "));
    assert_non_null(strstr(reply, " voter\n"));
    assert_non_null(strstr(reply, "\nok\n"));
    admin_raw(leader, "bogus 1 2 3\n", reply, sizeof reply);
    assert_non_null(strstr(reply, "error unknown request"));
    admin_raw(leader, "remove 0\n", reply, sizeof reply);
    assert_non_null(strstr(reply, "error bad node id"));
    admin_raw(leader, "add 18446744073709551616 a:1\n", reply, sizeof reply);
    assert_non_null(strstr(reply, "error bad node id"));
    char line[400];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = 0;
    admin_raw(leader, line, reply, sizeof reply);
    assert_non_null(strstr(reply, "error request longer than 255 bytes"));
    /* 4 idle connections hold every slot; a fifth is closed unanswered */
    int held[CTL_CLUSTER_ADMIN_CONNS];
    for (int i = 0; i < CTL_CLUSTER_ADMIN_CONNS; i++) {
        held[i] = admin_connect(leader);
        assert_true(held[i] >= 0);
    }
    drive(100);
    int extra = admin_connect(leader);
    assert_true(extra >= 0);
    char b[8];
    ssize_t r = -1;
    int64_t end = now_ms() + DEADLINE_MS;
    while ((r = recv(extra, b, sizeof b, MSG_DONTWAIT)) < 0) {
        assert_true(now_ms() < end);
        drive(5);
    }
    assert_int_equal(r, 0);
    close(extra);
    for (int i = 0; i < CTL_CLUSTER_ADMIN_CONNS; i++)
        close(held[i]);
    drive(100);
    admin_raw(leader, "members\n", reply, sizeof reply);
    assert_non_null(strstr(reply, "\nok\n"));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_replicated_log(void **state)
{
    for (int i = 0; i < N_NODES; i++)
        node_open(&nodes[i]);
    node *leader = wait_leader();
    ctl_cluster_status st;

    /* 1. committed in order, applied once everywhere, at the reported index */
    propose_batches(leader, 20);
    wait_converged();
    check_once(1);
    check_identical();

    /* a follower refuses a proposal */
    node *follower = leader == &nodes[0] ? &nodes[1] : &nodes[0];
    assert_int_equal(propose_text(follower, 0, "m0 1 1 1\n"), CTL_CLUSTER_E_NOT_LEADER);

    /* 2. a malformed entry is refused alike on every node and still counts as applied */
    ctl_cluster_get_status(leader->c, &st);
    uint64_t before = st.applied_index;
    outcome bad = {0, 0, 0};
    uint8_t badbuf[16] = {0};
    memcpy(badbuf + 12, "bad!", 4);
    assert_int_equal(
        ctl_cluster_propose(leader->c, CTL_ENTRY_READINGS, badbuf, sizeof badbuf, done_cb, &bad),
        CTL_CLUSTER_OK);
    while (!bad.done)
        drive(2);
    assert_int_equal(bad.status, CTL_CLUSTER_OK);
    wait_converged();
    for (int i = 0; i < N_NODES; i++) {
        assert_int_equal(nodes[i].refused, 1);
        ctl_cluster_get_status(nodes[i].c, &st);
        assert_true(st.applied_index == bad.index && bad.index > before);
        uint64_t stored = 0;
        assert_int_equal(ctl_db_cluster_applied(ctl_store_db(nodes[i].s), &stored), CTL_DB_OK);
        assert_int_equal(stored, bad.index);
    }
    check_identical();

    /* 3. the leader stops, five times over: a new leader, no committed batch lost, and the old
     * leader catches up from the log when it returns */
    int64_t failover_ms[5];
    for (int round = 0; round < 5; round++) {
        node *old = leader;
        int64_t t0 = now_ms();
        node_stop(old);
        leader = wait_leader();
        failover_ms[round] = now_ms() - t0;
        assert_ptr_not_equal(leader, old);
        propose_batches(leader, 10);
        wait_converged();
        check_identical();
        node_open(old);
        wait_converged();
        check_once(0); /* the old leader may come back through a snapshot: its content counts */
        check_identical();
        leader = wait_leader();
    }
    qsort(failover_ms, 5, sizeof failover_ms[0], cmp_i64);
    printf("failover (leader stopped cleanly, election timeout 1000 ms, 5 rounds): median %lld ms, "
           "max %lld ms\n",
           (long long)failover_ms[2], (long long)failover_ms[4]);

    /* 4. a node down while the log is compacted past it catches up from a snapshot */
    node *down = leader == &nodes[2] ? &nodes[1] : &nodes[2];
    node_stop(down);
    int first_missed = next_seq;
    /* in steps, so the leader snapshots (every 16 entries) and drops its log behind them while
     * the node is away; then time for the last snapshot to be written */
    for (int step = 0; step < 6; step++) {
        propose_batches(leader, 10);
        drive(100);
    }
    drive(500);
    ctl_cluster_get_status(leader->c, &st);
    assert_true(st.n_snapshots > 0);
    node_open(down);
    wait_converged();
    ctl_cluster_get_status(down->c, &st);
    if (st.n_restores < 1) {
        int got = 0;
        for (int seq = first_missed; seq < next_seq; seq++)
            got += down->applied[seq];
        fail_msg("node %llu caught up without a snapshot (%d applied one by one, applied %llu, "
                 "leader %llu)",
                 (unsigned long long)down->id, got, (unsigned long long)st.applied_index,
                 (unsigned long long)leader->id);
    }
    /* the batches the snapshot carried were never applied there one by one */
    int skipped = 0;
    for (int seq = first_missed; seq < next_seq; seq++)
        skipped += down->applied[seq] == 0;
    assert_true(skipped > 0);
    check_once(0);
    check_identical();
    printf("catch-up from a snapshot: %d of 60 batches came in the snapshot\n", skipped);

    /* the cost of replication in the same run: 100 batches one after the other, each committed
     * by a majority of the 3 nodes and applied on the leader, against the same batches stored
     * one transaction each on a single node's database (a figure, not a check) */
    int64_t t0 = now_ms();
    for (int k = 0; k < 100; k++)
        propose_batches(leader, 1);
    int64_t t_cluster = now_ms() - t0;
    char single[1024];
    snprintf(single, sizeof single, "%s/single.db", (const char *)*state);
    ctl_store *one = NULL;
    char err1[256];
    assert_int_equal(ctl_store_open(single, &ID, &one, err1, sizeof err1), CTL_ST_OK);
    t0 = now_ms();
    for (int k = 0; k < 100; k++) {
        mtr_sample r[2];
        memset(r, 0, sizeof r);
        for (int j = 0; j < 2; j++) {
            snprintf(r[j].meter_id, sizeof r[j].meter_id, "m%d", j);
            r[j].ts_ms = 1000LL * k;
            r[j].soc_permille = -1;
        }
        size_t ins = 0;
        assert_int_equal(ctl_store_put_readings(one, r, 2, 1, &ins), CTL_ST_OK);
    }
    int64_t t_single = now_ms() - t0;
    ctl_store_free(one);
    wait_converged();
    printf("100 batches one after the other: %lld ms through the 3-node log, %lld ms on one node "
           "(ratio %.1f; loopback, fsync on both)\n",
           (long long)t_cluster, (long long)t_single,
           t_single > 0 ? (double)t_cluster / (double)t_single : 0.0);

    /* 5. every node restarted: the log replays, nothing is applied twice, nothing is lost */
    int total[N_NODES];
    for (int i = 0; i < N_NODES; i++) {
        ctl_cluster_get_status(nodes[i].c, &st);
        total[i] = (int)st.n_applied;
        node_stop(&nodes[i]);
    }
    for (int i = 0; i < N_NODES; i++)
        node_open(&nodes[i]);
    leader = wait_leader();
    propose_batches(leader, 5);
    wait_converged();
    for (int i = 0; i < N_NODES; i++) {
        ctl_cluster_get_status(nodes[i].c, &st);
        /* 5 new batches, plus nothing replayed */
        assert_int_equal((int)st.n_applied, 5);
        (void)total[i];
    }
    check_once(0);
    check_identical();
}

static size_t count_readings(void)
{
    char *d = dump(nodes[0].db_path);
    size_t n = count_lines_of(d, "readings");
    free(d);
    return n;
}

/* The apply transaction: the store's own transactions nest in it as savepoints, an inner
 * rollback undoes only its own writes, and the entry's effects and its index commit or vanish
 * together. */
static void test_apply_transaction(void **state)
{
    (void)state;
    char err[512] = "";
    ctl_store *s = NULL;
    assert_int_equal(ctl_store_open(nodes[0].db_path, &ID, &s, err, sizeof err), CTL_ST_OK);
    ctl_db *db = ctl_store_db(s);
    size_t base = count_readings();
    uint64_t applied0 = 0;
    assert_int_equal(ctl_db_cluster_applied(db, &applied0), CTL_DB_OK);
    mtr_sample r;
    memset(&r, 0, sizeof r);
    snprintf(r.meter_id, sizeof r.meter_id, "tx");
    r.ts_ms = 5;
    r.soc_permille = -1;
    size_t inserted = 0;

    /* rolled back as a whole: the inner commit does not escape the outer transaction */
    assert_int_equal(ctl_db_apply_begin(db), CTL_DB_OK);
    assert_int_equal(ctl_db_apply_begin(db), CTL_DB_E_DB); /* one at a time */
    assert_int_equal(ctl_store_put_readings(s, &r, 1, 1, &inserted), CTL_ST_OK);
    assert_int_equal(inserted, 1);
    assert_int_equal(ctl_db_cluster_set_applied(db, applied0 + 1000), CTL_DB_OK);
    assert_int_equal(ctl_db_apply_end(db, 0), CTL_DB_E_DB);
    assert_int_equal(count_readings(), base);
    uint64_t now = 0;
    assert_int_equal(ctl_db_cluster_applied(db, &now), CTL_DB_OK);
    assert_int_equal(now, applied0);

    /* an inner rollback inside: only its writes go */
    assert_int_equal(ctl_db_apply_begin(db), CTL_DB_OK);
    assert_int_equal(ctl_store_put_readings(s, &r, 1, 1, &inserted), CTL_ST_OK);
    assert_int_equal(ctl_db_begin(db), 0);
    r.ts_ms = 6;
    assert_int_equal(ctl_store_put_readings(s, &r, 1, 1, &inserted), CTL_ST_OK);
    ctl_db_rollback(db); /* undoes ts 6 only */
    assert_int_equal(ctl_db_cluster_set_applied(db, applied0 + 1000), CTL_DB_OK);
    assert_int_equal(ctl_db_apply_end(db, 1), CTL_DB_OK);
    assert_int_equal(count_readings(), base + 1);
    assert_int_equal(ctl_db_cluster_applied(db, &now), CTL_DB_OK);
    assert_int_equal(now, applied0 + 1000);
    /* and plain transactions are plain again */
    r.ts_ms = 7;
    assert_int_equal(ctl_store_put_readings(s, &r, 1, 1, &inserted), CTL_ST_OK);
    assert_int_equal(count_readings(), base + 2);
    ctl_store_free(s);
}

/* [cluster]: the keys, the defaults, and the errors an operator makes. */
static int load_cluster(const char *text, ctl_cluster_section *sec, char *err, size_t errlen)
{
    cfg_loader *l = cfg_loader_new();
    assert_non_null(l);
    assert_int_equal(ctl_cluster_section_add(l, sec), CFG_OK);
    int rc = cfg_load_string(l, "/etc/mgx/controller.ini", text, strlen(text), err, errlen);
    cfg_loader_free(l);
    return rc;
}

static void test_cluster_section(void **state)
{
    (void)state;
    ctl_cluster_section sec;
    char err[512] = "";
    assert_int_equal(load_cluster("[cluster]\nnode_id = 2\n"
                                  "nodes = 1@10.0.0.1:7001, 2@10.0.0.2:7001,3@10.0.0.3:7001\n"
                                  "data_dir = raft\nelection_timeout_ms = 500\n",
                                  &sec, err, sizeof err),
                     CFG_OK);
    assert_true(sec.line > 0);
    assert_int_equal(sec.cfg.node_id, 2);
    assert_int_equal(sec.cfg.n_nodes, 3);
    assert_string_equal(sec.cfg.nodes[2].address, "10.0.0.3:7001");
    assert_int_equal(sec.cfg.nodes[2].id, 3);
    assert_string_equal(sec.cfg.data_dir, "/etc/mgx/raft");
    assert_int_equal(sec.cfg.election_timeout_ms, 500);
    assert_int_equal(sec.cfg.snapshot_threshold, 1024);
    assert_int_equal(sec.cfg.join, 0);
    assert_int_equal(sec.cfg.catch_up_timeout_ms, 300000);
    assert_int_equal(load_cluster("[cluster]\nnode_id = 4\nnodes = 4@10.0.0.4:7001\n"
                                  "data_dir = raft\njoin = yes\ncatch_up_timeout_s = 60\n",
                                  &sec, err, sizeof err),
                     CFG_OK);
    assert_int_equal(sec.cfg.join, 1);
    assert_int_equal(sec.cfg.catch_up_timeout_ms, 60000);
    /* no section: one node */
    assert_int_equal(load_cluster("", &sec, err, sizeof err), CFG_OK);
    assert_int_equal(sec.line, 0);
    static const struct {
        const char *text, *says;
    } bad[] = {
        {"[cluster]\nnode_id = 4\nnodes = 1@a:1, 2@b:1\ndata_dir = r\n", "not in nodes"},
        {"[cluster]\nnode_id = 1\nnodes = 1@a:1, 1@b:1\ndata_dir = r\n", "listed twice"},
        {"[cluster]\nnode_id = 1\nnodes = 1@a:1\n", "needs data_dir"},
        {"[cluster]\nnode_id = 1\nnodes = a:1\ndata_dir = r\n", "ID@HOST:PORT"},
        {"[cluster]\nnode_id = 1\nnodes = 1@nohost\ndata_dir = r\n", "HOST:PORT"},
        {"[cluster]\nnode_id = 1\nnodes = 1@a:1\ndata_dir = r\nelection_timeout_ms = 5\n",
         "election_timeout_ms"},
        {"[cluster]\nnode_id = 1\nnodes = 1@a:1\ndata_dir = r\njoin = maybe\n", "join"},
        {"[cluster]\nnode_id = 1\nnodes = 1@a:1\ndata_dir = r\ncatch_up_timeout_s = 0\n",
         "catch_up_timeout_s"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal(load_cluster(bad[i].text, &sec, err, sizeof err), CFG_E_BAD);
        if (!strstr(err, bad[i].says))
            fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].says);
    }
}

/* Runs every open node once; node `skip` (may be NULL) is run by the caller. */
static void drive_but(node *skip, int ms)
{
    int64_t end = now_ms() + ms;
    do {
        for (int i = 0; i < N_NODES; i++)
            if (nodes[i].c && &nodes[i] != skip)
                assert_int_equal(ctl_cluster_run(nodes[i].c, 0), CTL_CLUSTER_OK);
        tst_sleep_ms(1);
    } while (now_ms() < end);
}

/* Proposes one batch and drives everything but `skip` until it is committed. */
static void propose_one_but(node *leader, node *skip, int *stopped_rc)
{
    int seq = next_seq++;
    assert_true(seq < MAX_SEQ);
    char lines[128];
    snprintf(lines, sizeof lines, "m%d %lld %d %d\n", seq % 4, 1000LL * 900 * 1000 + seq * 1000LL,
             100 + seq, seq);
    assert_int_equal(propose_text(leader, seq, lines), CTL_CLUSTER_OK);
    int64_t end = now_ms() + DEADLINE_MS;
    while (!outcomes[seq].done) {
        if (now_ms() > end)
            fail_msg("proposal %d not committed within %d ms", seq, DEADLINE_MS);
        drive_but(skip, 2);
        if (skip && skip->c && *stopped_rc == CTL_CLUSTER_OK)
            *stopped_rc = ctl_cluster_run(skip->c, 0);
    }
    assert_int_equal(outcomes[seq].status, CTL_CLUSTER_OK);
}

/* The divergence check (docs/cluster.md, "When a node stops as diverged"): the chain of applied
 * entries is the same on every node and compared on every entry; a follower made to digest one
 * entry as another one (what a node that applied a stale entry has) stops with
 * CTL_CLUSTER_E_DIVERGED at a later entry of the leader, before applying it, with its database
 * consistent at the entry before; the other two go on; restarted, it stops again. */
static void test_divergence(void **state)
{
    memset(outcomes, 0, sizeof outcomes);
    next_seq = 0;
    for (int i = 0; i < N_NODES; i++)
        node_open(&nodes[i]);
    node *leader = wait_leader();
    propose_batches(leader, 10);
    wait_converged();
    check_identical();
    uint8_t chain[N_NODES][CTL_DB_CHAIN_LEN];
    for (int i = 0; i < N_NODES; i++) {
        uint64_t base = 99;
        assert_int_equal(ctl_db_cluster_chain(ctl_store_db(nodes[i].s), &base, chain[i]),
                         CTL_DB_OK);
        assert_int_equal(base, 0);
        assert_memory_equal(chain[i], chain[0], CTL_DB_CHAIN_LEN);
        ctl_cluster_status st;
        ctl_cluster_get_status(nodes[i].c, &st);
        if (&nodes[i] != leader && st.chain_checked < 5)
            fail_msg("node %llu compared only %llu chains", (unsigned long long)nodes[i].id,
                     (unsigned long long)st.chain_checked);
        assert_int_equal(st.diverged, 0);
    }

    node *bad = leader == &nodes[0] ? &nodes[1] : &nodes[0];
    ctl_cluster_test_diverge(bad->c);
    int rc = CTL_CLUSTER_OK;
    /* the diverged entry itself still applies (its leader's chain is of an index before it) */
    propose_one_but(leader, bad, &rc);
    uint64_t diverged_at = outcomes[next_seq - 1].index;
    int64_t end = now_ms() + DEADLINE_MS;
    while (rc == CTL_CLUSTER_OK) {
        if (now_ms() > end)
            fail_msg("node %llu did not stop as diverged within %d ms",
                     (unsigned long long)bad->id, DEADLINE_MS);
        propose_one_but(leader, bad, &rc);
    }
    assert_int_equal(rc, CTL_CLUSTER_E_DIVERGED);
    ctl_cluster_status st;
    ctl_cluster_get_status(bad->c, &st);
    assert_int_equal(st.diverged, 1);
    assert_true(st.applied_index >= diverged_at);
    /* it stays stopped, refuses proposals, and its database is at its applied index */
    assert_int_equal(ctl_cluster_run(bad->c, 0), CTL_CLUSTER_E_DIVERGED);
    uint64_t stored = 0;
    assert_int_equal(ctl_db_cluster_applied(ctl_store_db(bad->s), &stored), CTL_DB_OK);
    assert_int_equal(stored, st.applied_index);
    ctl_cluster_status lst;
    ctl_cluster_get_status(leader->c, &lst);
    assert_true(lst.applied_index > st.applied_index);
    printf("node %llu digested entry %llu as another one and stopped at entry %llu "
           "(the leader is at %llu)\n",
           (unsigned long long)bad->id, (unsigned long long)diverged_at,
           (unsigned long long)st.applied_index + 1, (unsigned long long)lst.applied_index);

    /* the other two go on */
    propose_one_but(leader, bad, &rc);
    propose_one_but(leader, bad, &rc);

    /* restarted with its database and data_dir, it stops again */
    node_stop(bad);
    node_open(bad);
    rc = CTL_CLUSTER_OK;
    end = now_ms() + DEADLINE_MS;
    while (rc == CTL_CLUSTER_OK) {
        if (now_ms() > end)
            fail_msg("restarted node %llu did not stop as diverged within %d ms",
                     (unsigned long long)bad->id, DEADLINE_MS);
        propose_one_but(leader, bad, &rc);
    }
    assert_int_equal(rc, CTL_CLUSTER_E_DIVERGED);
    node_stop(bad);

    /* the operator's way out (docs/cluster.md, "When a node stops as diverged"): the node is
     * removed and a new one, with a new id, an empty data directory and database, joins; it
     * catches up (a snapshot: the log was compacted) and its chain is the others' */
    char err[512] = "";
    change_end e = {0, 0, ""};
    assert_int_equal(ctl_cluster_remove(leader->c, bad->id, change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_OK);
    wait_change(&e);
    start_joiner((const char *)*state);
    propose_batches(leader, 20);
    memset(&e, 0, sizeof e);
    assert_int_equal(ctl_cluster_add(leader->c, 4, joiner.addr, change_cb, &e, err, sizeof err),
                     CTL_CLUSTER_OK);
    wait_change(&e);
    propose_batches(leader, 5);
    end = now_ms() + DEADLINE_MS;
    for (;;) {
        ctl_cluster_get_status(leader->c, &lst);
        ctl_cluster_get_status(joiner.c, &st);
        if (st.applied_index == lst.applied_index && st.commit_index == lst.commit_index)
            break;
        if (now_ms() > end)
            fail_msg("node 4 did not catch up within %d ms", DEADLINE_MS);
        drive(5);
    }
    assert_int_equal(st.diverged, 0);
    assert_true(st.chain_checked > 0);
    char *want = dump(leader->db_path), *got = dump(joiner.db_path);
    if (strcmp(want, got) != 0)
        fail_msg("node 4's database (and chain) differs from the leader's");
    free(want);
    free(got);
    node_stop(&joiner);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replicated_log),
        cmocka_unit_test(test_admin_socket),
        cmocka_unit_test(test_membership),
        cmocka_unit_test(test_apply_transaction),
        cmocka_unit_test(test_cluster_section),
    };
    const struct CMUnitTest diverge[] = {
        cmocka_unit_test(test_divergence),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return failed + cmocka_run_group_tests(diverge, setup, teardown);
}
