/*
 * Test support: a replicated controller's node processes (see cluster_nodes.h).
 */
#define _GNU_SOURCE
#include "cluster_nodes.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/wall_clock.h"
#include "files.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

int tst_cluster_read_status(const tst_cluster_node *node, char *role, size_t cap,
                            long long *applied, long long *cleared)
{
    char *t = tst_file_text_or_empty(node->status);
    int ok = -1;
    const char *r = strstr(t, "role "), *a = strstr(t, "applied_index "),
               *c = strstr(t, "last_cleared "), *u = strstr(t, "updated_ms ");
    assert_true(cap >= 32);
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

int tst_cluster_leader(const tst_cluster_node *nodes, int n, int except)
{
    for (int i = 0; i < n; i++) {
        char role[32];
        long long a, c;
        if (i != except && nodes[i].pid > 0 &&
            tst_cluster_read_status(&nodes[i], role, sizeof role, &a, &c) == 0 &&
            strcmp(role, "leader") == 0)
            return i;
    }
    return -1;
}

int tst_cluster_same(const tst_cluster_node *nodes, int n)
{
    long long a0 = -1, c0 = -1;
    for (int i = 0; i < n; i++) {
        char role[32];
        long long a, c;
        if (tst_cluster_read_status(&nodes[i], role, sizeof role, &a, &c) != 0)
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
        if (tst_cluster_leader(nodes, n, k->killed) >= 0) {
            k->failover_ms[k->done++] = now_ms - k->killed_at_ms;
            tst_cluster_node *nd = &nodes[k->killed];
            nd->pid = tst_controller_start(bin, nd->conf, anchor, nd->log, NULL);
            k->killed = -1;
            k->next_kill_ms = now_ms + 700 + rand_r(&k->seed) % 1500;
        }
    } else if (k->done < k->kills && now_ms >= k->next_kill_ms) {
        int l = tst_cluster_leader(nodes, n, -1);
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
