/*
 * Test support: a replicated controller of real `mgx controller` processes on loopback
 * (docs/cluster.md), for the cluster tests: each node's files and config, its status file
 * (role, applied index, last cleared interval), which node leads, and the leader killed with
 * SIGKILL and restarted again and again while the test plays its homes, with the failover time
 * of each kill.
 */
#ifndef MGX_TEST_CLUSTER_NODES_H
#define MGX_TEST_CLUSTER_NODES_H

#include "homes.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TST_CLUSTER_MAX 5

typedef struct {
    char conf[TST_CTL_PATH_MAX], db[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX];
    char status[TST_CTL_PATH_MAX];
    pid_t pid; /* 0 when not running */
} tst_cluster_node;

/* Names node i's files in dir (controller-<i+1>.ini, ctl-<i+1>.db, controller-<i+1>.log,
 * raft-<i+1>/status) and writes its config: [bus] at 127.0.0.1:broker_port with client_id
 * controller-<i+1>; [controller] of the crash tests (900 s intervals, gate 300 s, 4 ahead,
 * settling grace_s after an interval with community.skey in dir, a network fee of 10000
 * uc/kWh, readings at most 300 s apart, 100 kW at most) and the lines of extra (NULL: none);
 * [cluster] with every node at its raft_port (free ports) and a 300 ms election timeout. */
void tst_cluster_write_configs(tst_cluster_node *nodes, int n, const char *dir, int broker_port,
                               const int *raft_port, const char *community, int grace_s,
                               const char *extra);

/* The node's status file: role (cap >= 32), applied index, last cleared interval; 0, or -1 when it
 * is unreadable or older than 1 s (the node is down or frozen). */
int tst_cluster_read_status(const tst_cluster_node *node, char *role, size_t cap,
                            long long *applied, long long *cleared);

/* The running node (not `except`) whose status says leader, -1 if none. */
int tst_cluster_leader(const tst_cluster_node *nodes, int n, int except);

/* 1 when every node's status is fresh and they all report the same applied index and last
 * cleared interval. */
int tst_cluster_same(const tst_cluster_node *nodes, int n);

/* kill -9 (and SIGCONT, for a frozen one) of every node still running, reaped: a test's
 * teardown, so a failed test leaves no node behind (which would also hold ctest's output pipe
 * open until its timeout). */
void tst_cluster_kill_all(tst_cluster_node *nodes, int n);

/* Fails the test, naming the node and its log, if a node ended by itself. */
void tst_cluster_check_alive(tst_cluster_node *nodes, int n);

/* The leader killed and restarted `kills` times: a kill -9 of the leader at a random moment
 * 700-2199 ms after the previous failover, the failover time (kill to another node's status
 * saying leader) noted, then the killed node restarted. */
typedef struct {
    int kills, done;
    int killed; /* the node down, -1 when none */
    int64_t next_kill_ms, killed_at_ms;
    int64_t *failover_ms; /* kills of them, malloc'd by _init, freed by _free */
    unsigned seed;
} tst_cluster_killer;

void tst_cluster_killer_init(tst_cluster_killer *k, int kills, unsigned seed, int64_t now_ms);
/* One step at now_ms (real); returns 1 once every kill is done and every node runs again. */
int tst_cluster_kill_step(tst_cluster_killer *k, tst_cluster_node *nodes, int n, const char *bin,
                          const char *anchor, int64_t now_ms);
/* Sorts the failover times; p50 and p99 in ms. */
void tst_cluster_failover(tst_cluster_killer *k, int64_t *p50, int64_t *p99);
void tst_cluster_killer_free(tst_cluster_killer *k);

#endif
