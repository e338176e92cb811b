/*
 * Test support: replicated controller nodes and their homes (see cluster_nodes.h).
 */
#define _GNU_SOURCE
#include "cluster_nodes.h"

#include <signal.h>
#include <sys/wait.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/wall_clock.h"
#include "files.h"
#include "shell.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tst_cluster_node_config(tst_cluster_node *n, int id, const char *dir, int broker_port,
                             const char *community, const char *nodes, int election_timeout_ms,
                             const char *extra)
{
    memset(n, 0, sizeof *n);
    n->id = id;
    snprintf(n->conf, sizeof n->conf, "%s/controller-%d.ini", dir, id);
    snprintf(n->db, sizeof n->db, "%s/ctl-%d.db", dir, id);
    snprintf(n->log, sizeof n->log, "%s/controller-%d.log", dir, id);
    snprintf(n->status, sizeof n->status, "%s/raft-%d/status", dir, id);
    FILE *f = fopen(n->conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[bus]\nhost = 127.0.0.1\nport = %d\nclient_id = controller-%d\n"
            "backoff_max_ms = 500\n"
            "[controller]\ncommunity = %s\ndb = %s\ninterval_s = 900\n"
            "gate_closure_s = 300\nmax_ahead_intervals = 4\n"
            "network_fee_uc_per_kwh = 10000\nsettlement_grace_s = 900\n"
            "settlement_key = community.skey\nreading_max_gap_s = 300\n"
            "meter_max_power_w = 100000\n"
            "[cluster]\nnode_id = %d\nnodes = %s\ndata_dir = raft-%d\n"
            "election_timeout_ms = %d\n%s",
            broker_port, id, community, n->db, id, nodes, id, election_timeout_ms,
            extra ? extra : "");
    fclose(f);
}

int tst_cluster_read_status(const tst_cluster_node *n, char *role, long long *applied,
                            long long *cleared)
{
    char *t = tst_file_text_or_empty(n->status);
    int ok = -1;
    const char *r = strstr(t, "role "), *a = strstr(t, "applied_index "),
               *c = strstr(t, "last_cleared "), *u = strstr(t, "updated_ms ");
    if (r && a && c && u && sscanf(r, "role %31s", role) == 1 &&
        sscanf(a, "applied_index %lld", applied) == 1 &&
        sscanf(c, "last_cleared %lld", cleared) == 1) {
        long long upd = 0;
        sscanf(u, "updated_ms %lld", &upd);
        ok = ctl_wall_ms() - upd < 1000 ? 0 : -1;
    }
    free(t);
    return ok;
}

int tst_cluster_leader_of(const tst_cluster_node *nodes, int n, int except)
{
    for (int i = 0; i < n; i++) {
        char role[32];
        long long a, c;
        if (i != except && nodes[i].pid > 0 &&
            tst_cluster_read_status(&nodes[i], role, &a, &c) == 0 && strcmp(role, "leader") == 0)
            return i;
    }
    return -1;
}

void tst_cluster_reading_at(int h, int64_t ts_s, mtr_sample *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->meter_id, sizeof s->meter_id, "m-home-%d", h);
    int64_t min = ts_s / 60;
    s->ts_ms = ts_s * 1000;
    s->import_wh = 100000 * h + (h % 2 ? 20 : 2) * min;
    s->export_wh = 50000 * h + (h % 2 ? 1 : 15) * min;
    s->soc_permille = -1;
}

int tst_cluster_take_receipt(tst_cluster_market *m, const bus_message *msg)
{
    ctl_receipt r;
    int got = tst_receipt_parse(msg, &r);
    if (got == 0)
        return -1;
    assert_int_equal(got, 1);
    m->receipts++;
    int h = tst_homes_take_receipt(m->homes, m->n_all, &r);
    if (h < 0 || h >= m->n_trading)
        return h;
    if (ctl_reason_is_accept(r.reason)) {
        assert_true(m->n_acc < TST_CLUSTER_ACCEPTED_MAX);
        tst_cluster_accepted *a = &m->acc[m->n_acc++];
        snprintf(a->participant, sizeof a->participant, "%s", r.participant);
        memcpy(a->nonce, r.nonce, sizeof a->nonce);
        a->interval_id = r.interval_id;
    } else {
        /* late (the gate closed while no node led) is the only expected refusal */
        m->rejections++;
        assert_true(r.reason == CTL_R_GATE_CLOSED || r.reason == CTL_R_STALE_INTERVAL ||
                    r.reason == CTL_R_EXPIRED);
    }
    return h;
}

void tst_cluster_homes_step(tst_cluster_market *m, bus_client *c, const ctl_clock *clock,
                            const ctl_interval_rules *rules)
{
    int64_t now_real = ctl_wall_ms();
    int64_t sim_ms = ctl_clock_sim_ms(clock, now_real);
    int64_t target = ctl_interval_first_open(sim_ms / 1000 + 100, rules);
    int replay = now_real >= m->next_replay_ms;
    if (replay)
        m->next_replay_ms = now_real + 1000;
    for (int h = 0; h < m->n_trading && bus_connected(c); h++) {
        tst_home *hm = &m->homes[h];
        int64_t sim_s = sim_ms / 1000;
        if (!hm->next_reading_s)
            hm->next_reading_s = sim_s / 120 * 120;
        int64_t from = replay ? hm->next_reading_s - 1800 : hm->next_reading_s;
        for (int64_t ts = from / 120 * 120; ts <= sim_s; ts += 120) {
            mtr_sample r;
            tst_cluster_reading_at(h, ts, &r);
            tst_send_reading(c, m->community, &r);
        }
        if (hm->next_reading_s <= sim_s)
            hm->next_reading_s = (sim_s / 120 + 1) * 120;
    }
    for (int h = 0; h < m->n_trading; h++) {
        tst_home *hm = &m->homes[h];
        if (!hm->has_pending && hm->done_interval < target && bus_connected(c))
            tst_home_make_order(m->homes, h, m->community, target, sim_ms, &m->seed, &m->shape);
        if (hm->has_pending && now_real - hm->last_sent_ms > 150 && bus_connected(c))
            tst_home_send_order(c, m->community, hm);
    }
}

void tst_cluster_converge(const tst_cluster_node *const *nodes, int n, bus_client *c,
                          int64_t deadline_ms)
{
    int64_t end = ctl_wall_ms() + deadline_ms;
    int stable = 0;
    while (stable < 3) {
        bus_loop(c, 20);
        long long a0 = -1, c0 = -1;
        int same = 1;
        for (int i = 0; i < n; i++) {
            char role[32];
            long long a, cl;
            if (tst_cluster_read_status(nodes[i], role, &a, &cl) != 0) {
                same = 0;
                break;
            }
            if (i == 0) {
                a0 = a;
                c0 = cl;
            } else if (a != a0 || cl != c0)
                same = 0;
        }
        stable = same ? stable + 1 : 0;
        if (ctl_wall_ms() > end)
            fail_msg("the nodes did not converge within %lld ms", (long long)deadline_ms);
    }
}

/* The market of a database up to interval x (the last every node cleared) as sorted text
 * rows: the accepted orders, their steps and receipts, the intervals (without `published`:
 * which results this node's bus acknowledged is its own business), results, trades and
 * outcomes. Entries after CLEAR(x) may still be missing on a node stopped before it applied
 * them (a node stops once a majority has them, not all), so the tail is left out. */
static char *market_dump(const char *db, const char *dir, int id, long long x)
{
    char out[TST_CTL_PATH_MAX + 32], cmd[8192];
    snprintf(out, sizeof out, "%s/dump-%d", dir, id);
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

void tst_cluster_check(const tst_cluster_node *const *nodes, int n, const tst_cluster_market *m,
                       int64_t first, const char *bin, const char *dir, int64_t *cleared,
                       int64_t *blocks_out)
{
    char *ref = NULL;
    long long x = INT64_MAX, applied_lo = INT64_MAX, applied_hi = 0;
    for (int i = 0; i < n; i++) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open_v2(nodes[i]->db, &db, SQLITE_OPEN_READONLY, NULL),
                         SQLITE_OK);
        long long hi = tst_db_int(db, "SELECT max(interval_id) FROM intervals WHERE ?1 = ?1", 0);
        long long ap = tst_db_int(db, "SELECT applied_index FROM cluster_state WHERE ?1 = ?1", 0);
        x = hi < x ? hi : x;
        applied_lo = ap < applied_lo ? ap : applied_lo;
        applied_hi = ap > applied_hi ? ap : applied_hi;
        sqlite3_close(db);
    }
    /* the clean stops, one after the other, leave at most a few entries' difference */
    assert_true(applied_hi - applied_lo <= 8);
    for (int i = 0; i < n; i++) {
        int id = nodes[i]->id;
        sqlite3 *db;
        assert_int_equal(sqlite3_open_v2(nodes[i]->db, &db, SQLITE_OPEN_READONLY, NULL),
                         SQLITE_OK);
        int64_t lo = tst_db_int(db, "SELECT min(interval_id) FROM intervals WHERE ?1 = ?1", 0);
        int64_t hi = tst_db_int(db, "SELECT max(interval_id) FROM intervals WHERE ?1 = ?1", 0);
        int64_t k = tst_db_int(db, "SELECT count(*) FROM intervals WHERE state = 1 AND ?1 = ?1", 0);
        assert_int_equal(lo, first);
        if (k != hi - lo + 1) /* contiguous; the key makes each once */
            fail_msg("node %d cleared %lld intervals of %lld..%lld", id, (long long)k,
                     (long long)lo, (long long)hi);
        *cleared = k;
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT count(*) FROM orders WHERE participant = ?1 "
                                            "AND nonce = ?2 AND interval_id = ?3 AND status = 1",
                                            -1, &q, NULL),
                         SQLITE_OK);
        for (size_t j = 0; j < m->n_acc; j++) {
            sqlite3_reset(q);
            sqlite3_bind_text(q, 1, m->acc[j].participant, -1, SQLITE_STATIC);
            sqlite3_bind_blob(q, 2, m->acc[j].nonce, CTL_ORDER_NONCE_BYTES, SQLITE_STATIC);
            sqlite3_bind_int64(q, 3, m->acc[j].interval_id);
            assert_int_equal(sqlite3_step(q), SQLITE_ROW);
            if (sqlite3_column_int(q, 0) != 1)
                fail_msg("node %d lacks receipted order %zu of %s", id, j, m->acc[j].participant);
        }
        sqlite3_finalize(q);
        sqlite3_close(db);
        char *d = market_dump(nodes[i]->db, dir, id, x);
        if (!ref)
            ref = d;
        else {
            if (strcmp(ref, d) != 0)
                fail_msg("node %d's market tables differ from node %d's (see %s/dump-*)", id,
                         nodes[0]->id, dir);
            free(d);
        }
    }
    free(ref);
    /* the ledgers: each verifies with the community key; the blocks every node has are equal */
    int64_t blocks = INT64_MAX;
    for (int i = 0; i < n; i++) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open_v2(nodes[i]->db, &db, SQLITE_OPEN_READONLY, NULL),
                         SQLITE_OK);
        int64_t h = tst_db_int(db, "SELECT count(*) FROM ledger_block WHERE ?1 = ?1", 0);
        blocks = h < blocks ? h : blocks;
        sqlite3_close(db);
        if (tst_sh("'%s' ledger verify '%s' --vkey-file '%s/community.vkey' > "
                   "'%s/verify-%d.out' 2>&1",
                   bin, nodes[i]->db, dir, dir, nodes[i]->id) != 0)
            fail_msg("node %d: mgx ledger verify fails (see %s/verify-%d.out)", nodes[i]->id,
                     dir, nodes[i]->id);
    }
    assert_true(blocks > 0);
    char *lref = NULL;
    for (int i = 0; i < n; i++) {
        char out[TST_CTL_PATH_MAX + 32];
        snprintf(out, sizeof out, "%s/ledger-%d", dir, nodes[i]->id);
        assert_int_equal(tst_sh("(sqlite3 '%s' \"SELECT height, hex(body), checkpoint FROM "
                                "ledger_block WHERE height < %lld ORDER BY height\"; sqlite3 '%s' "
                                "\"SELECT log_index, height, hex(body), hex(salt) FROM ledger_tx "
                                "WHERE height < %lld ORDER BY log_index\") > '%s'",
                                nodes[i]->db, (long long)blocks, nodes[i]->db, (long long)blocks,
                                out),
                         0);
        char *t = tst_file_text(out);
        assert_non_null(t);
        if (!lref)
            lref = t;
        else {
            if (strcmp(lref, t) != 0)
                fail_msg("node %d's ledger differs from node %d's (see %s/ledger-*)",
                         nodes[i]->id, nodes[0]->id, dir);
            free(t);
        }
    }
    free(lref);
    *blocks_out = blocks;
}

void tst_cluster_write_configs(tst_cluster_node *nodes, int n, const char *dir, int broker_port,
                               const int *raft_port, const char *community, int grace_s,
                               const char *extra)
{
    assert_true(n >= 1 && n <= TST_CLUSTER_MAX);
    char list[TST_CLUSTER_MAX * 32] = "";
    for (int i = 0; i < n; i++) {
        size_t at = strlen(list);
        snprintf(list + at, sizeof list - at, "%s%d@127.0.0.1:%d", i ? ", " : "", i + 1,
                 raft_port[i]);
    }
    for (int i = 0; i < n; i++) {
        tst_cluster_node *nd = &nodes[i];
        snprintf(nd->conf, sizeof nd->conf, "%s/controller-%d.ini", dir, i + 1);
        snprintf(nd->db, sizeof nd->db, "%s/ctl-%d.db", dir, i + 1);
        snprintf(nd->log, sizeof nd->log, "%s/controller-%d.log", dir, i + 1);
        snprintf(nd->status, sizeof nd->status, "%s/raft-%d/status", dir, i + 1);
        nd->id = i + 1;
        nd->pid = 0;
        FILE *f = fopen(nd->conf, "w");
        assert_non_null(f);
        fprintf(f,
                "[bus]\nhost = 127.0.0.1\nport = %d\nclient_id = controller-%d\n"
                "backoff_max_ms = 500\n"
                "[controller]\ncommunity = %s\ndb = %s\ninterval_s = 900\n"
                "gate_closure_s = 300\nmax_ahead_intervals = 4\n"
                "network_fee_uc_per_kwh = 10000\nsettlement_grace_s = %d\n"
                "settlement_key = community.skey\nreading_max_gap_s = 300\n"
                "meter_max_power_w = 100000\n%s"
                "[cluster]\nnode_id = %d\nnodes = %s\ndata_dir = raft-%d\n"
                "election_timeout_ms = 300\n",
                broker_port, i + 1, community, nd->db, grace_s, extra ? extra : "", i + 1, list,
                i + 1);
        fclose(f);
    }
}

int tst_cluster_same(const tst_cluster_node *nodes, int n)
{
    long long a0 = -1, c0 = -1;
    for (int i = 0; i < n; i++) {
        char role[32];
        long long a, c;
        if (tst_cluster_read_status(&nodes[i], role, &a, &c) != 0)
            return 0;
        if (i == 0) {
            a0 = a;
            c0 = c;
        } else if (a != a0 || c != c0)
            return 0;
    }
    return 1;
}

void tst_cluster_kill_all(tst_cluster_node *nodes, int n)
{
    for (int i = 0; i < n; i++) {
        if (nodes[i].pid <= 0)
            continue;
        kill(nodes[i].pid, SIGKILL);
        kill(nodes[i].pid, SIGCONT);
        waitpid(nodes[i].pid, NULL, 0);
        nodes[i].pid = 0;
    }
}

void tst_cluster_check_alive(tst_cluster_node *nodes, int n)
{
    for (int i = 0; i < n; i++) {
        int ws = 0;
        if (nodes[i].pid > 0 && waitpid(nodes[i].pid, &ws, WNOHANG) == nodes[i].pid)
            fail_msg("node %d ended by itself (status %d; see %s)", i + 1, ws, nodes[i].log);
    }
}

void tst_cluster_killer_init(tst_cluster_killer *k, int kills, unsigned seed, int64_t now_ms)
{
    memset(k, 0, sizeof *k);
    k->kills = kills;
    k->killed = -1;
    k->seed = seed;
    k->next_kill_ms = now_ms + 1500;
    k->failover_ms = calloc(kills > 0 ? (size_t)kills : 1, sizeof *k->failover_ms);
    assert_non_null(k->failover_ms);
}

int tst_cluster_kill_step(tst_cluster_killer *k, tst_cluster_node *nodes, int n, const char *bin,
                          const char *anchor, int64_t now_ms)
{
    if (k->killed >= 0) {
        if (tst_cluster_leader_of(nodes, n, k->killed) >= 0) {
            k->failover_ms[k->done++] = now_ms - k->killed_at_ms;
            tst_cluster_node *nd = &nodes[k->killed];
            nd->pid = tst_controller_start(bin, nd->conf, anchor, nd->log, NULL);
            k->killed = -1;
            k->next_kill_ms = now_ms + 700 + rand_r(&k->seed) % 1500;
        }
    } else if (k->done < k->kills && now_ms >= k->next_kill_ms) {
        int l = tst_cluster_leader_of(nodes, n, -1);
        if (l >= 0) {
            kill(nodes[l].pid, SIGKILL);
            int ws = 0;
            waitpid(nodes[l].pid, &ws, 0);
            if (!(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL))
                fail_msg("node %d ended before the kill (status %d; see %s)", l + 1, ws,
                         nodes[l].log);
            nodes[l].pid = 0;
            k->killed = l;
            k->killed_at_ms = ctl_wall_ms();
        }
    }
    return k->done == k->kills && k->killed < 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void tst_cluster_failover(tst_cluster_killer *k, int64_t *p50, int64_t *p99)
{
    if (k->done == 0) {
        *p50 = *p99 = -1;
        return;
    }
    qsort(k->failover_ms, (size_t)k->done, sizeof *k->failover_ms, cmp_i64);
    size_t i99 = ((size_t)k->done * 99 + 99) / 100 - 1;
    *p50 = k->failover_ms[k->done / 2];
    *p99 = k->failover_ms[i99];
}

void tst_cluster_killer_free(tst_cluster_killer *k)
{
    free(k->failover_ms);
    k->failover_ms = NULL;
}

int tst_cluster_leaders(const char *bin, const tst_cluster_node *const *nodes, int n,
                        const char *dir, int64_t wait_ms)
{
    int leaders = 0;
    for (int64_t give_up = ctl_wall_ms() + wait_ms;;) {
        leaders = 0;
        for (int i = 0; i < n; i++) {
            char out[TST_CTL_PATH_MAX + 32];
            snprintf(out, sizeof out, "%s/status-%d.txt", dir, nodes[i]->id);
            assert_int_equal(tst_sh("'%s' cluster status '%s' > '%s'", bin, nodes[i]->conf, out),
                             0);
            char *t = tst_file_text(out);
            assert_non_null(t);
            assert_non_null(strstr(t, "(this node)"));
            leaders += strstr(t, "role leader") != NULL;
            free(t);
        }
        if (leaders == 1 || ctl_wall_ms() >= give_up)
            return leaders;
        usleep(200000);
    }
}
