/*
 * Test support: replicated `mgx controller` nodes ([cluster], docs/cluster.md) run as real
 * processes on loopback, and the homes that trade with them, shared by the cluster tests
 * (tests/cluster/test_cluster_daemon.c, test_cluster_member.c): each node's config, its status
 * file, the homes' orders and meter readings at clock speed 3600, the receipts they hold, and
 * the checks at the end that every live node holds the same market and ledger.
 */
#ifndef MGX_TEST_CLUSTER_NODES_H
#define MGX_TEST_CLUSTER_NODES_H

#include "bus/bus.h"
#include "common/interval.h"
#include "homes.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    int id; /* the node's Raft id, 1.. */
    char conf[TST_CTL_PATH_MAX], db[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX];
    char status[TST_CTL_PATH_MAX];
    pid_t pid; /* 0 when not running */
} tst_cluster_node;

/* Names node id's files in dir (controller-ID.ini, ctl-ID.db, controller-ID.log, raft-ID/) and
 * writes its config: the broker at 127.0.0.1:broker_port, 900 s intervals settled with
 * community.skey, [cluster] with nodes ("1@127.0.0.1:P, ..."), election_timeout_ms, and the
 * lines of extra (may be NULL) at the end of [cluster]. */
void tst_cluster_node_config(tst_cluster_node *n, int id, const char *dir, int broker_port,
                             const char *community, const char *nodes, int election_timeout_ms,
                             const char *extra);

/* The node's status file: role (32 bytes), applied index and last cleared interval; 0, or -1
 * if unreadable or older than 1 s (the node is not running, or frozen). */
int tst_cluster_read_status(const tst_cluster_node *n, char *role, long long *applied,
                            long long *cleared);
/* The index in nodes[0..n) of a running node whose fresh status says leader, skipping index
 * except; -1 if none. */
int tst_cluster_leader_of(const tst_cluster_node *nodes, int n, int except);

/* Home h's meter at ts_s: counters rising with time, sellers (even) export, buyers import. */
void tst_cluster_reading_at(int h, int64_t ts_s, mtr_sample *s);

typedef struct {
    char participant[CTL_ID_MAX + 1];
    uint8_t nonce[CTL_ORDER_NONCE_BYTES];
    int64_t interval_id;
} tst_cluster_accepted;

#define TST_CLUSTER_ACCEPTED_MAX 8192
/* The trading homes: homes[0..n_trading) trade and meter; the receipts they were given. */
typedef struct {
    tst_home *homes;
    int n_trading, n_all; /* homes[n_trading..n_all) are the caller's (no order of theirs is
                           * recorded here) */
    const char *community;
    tst_order_shape shape;
    unsigned seed;
    int64_t next_replay_ms;
    tst_cluster_accepted acc[TST_CLUSTER_ACCEPTED_MAX];
    size_t n_acc, receipts, rejections;
} tst_cluster_market;

/* A receipt message for the market's homes: an accepted one of a trading home is recorded, a
 * refusal must be one a leaderless moment explains (late). Returns the home's index (>= 0) for
 * a receipt that answered a pending order, else -1. */
int tst_cluster_take_receipt(tst_cluster_market *m, const bus_message *msg);
/* One pass of the trading homes: each meter's readings every 120 simulated seconds (the last
 * half hour again every second, as meters resend what a dead leader may have taken), and each
 * home's order for the next open interval, resent every 150 ms until receipted. */
void tst_cluster_homes_step(tst_cluster_market *m, bus_client *c, const ctl_clock *clock,
                            const ctl_interval_rules *rules);

/* Waits (the homes quiet, the bus served) until the nodes report the same applied index and
 * last cleared interval 3 times running; fails after deadline_ms. */
void tst_cluster_converge(const tst_cluster_node *const *nodes, int n, bus_client *c,
                          int64_t deadline_ms);

/* The checks on stopped nodes (the ones given) whose databases started from one copy with
 * intervals from first:
 *  - the applied indexes differ by at most 8 entries (the clean stops, one after the other);
 *  - the cleared intervals are contiguous from first, each once;
 *  - every order the market's homes hold an "accepted" receipt for is on every node;
 *  - the market tables up to the last interval every node has are the same rows;
 *  - every ledger passes `bin ledger verify` with dir/community.vkey, and its blocks and
 *    transactions up to the last block every node has are the same bytes.
 * dir holds the dumps (dump-ID, ledger-ID) a failure names. Returns the cleared intervals into
 * *cleared and the common blocks into *blocks. */
void tst_cluster_check(const tst_cluster_node *const *nodes, int n, const tst_cluster_market *m,
                       int64_t first, const char *bin, const char *dir, int64_t *cleared,
                       int64_t *blocks);

#define TST_CLUSTER_MAX 5

/* Names node i's files in dir (controller-<i+1>.ini, ctl-<i+1>.db, controller-<i+1>.log,
 * raft-<i+1>/status) and writes its config: [bus] at 127.0.0.1:broker_port with client_id
 * controller-<i+1>; [controller] of the crash tests (900 s intervals, gate 300 s, 4 ahead,
 * settling grace_s after an interval with community.skey in dir, a network fee of 10000
 * uc/kWh, readings at most 300 s apart, 100 kW at most) and the lines of extra (NULL: none);
 * [cluster] with every node at its raft_port (free ports) and a 300 ms election timeout. */
void tst_cluster_write_configs(tst_cluster_node *nodes, int n, const char *dir, int broker_port,
                               const int *raft_port, const char *community, int grace_s,
                               const char *extra);

/* 1 when every node's status is fresh and they all report the same applied index and last
 * cleared interval. */
int tst_cluster_same(const tst_cluster_node *nodes, int n);
/* How many of nodes[0..n) say "role leader" in `BIN cluster status CONF` (written to
 * dir/status-ID.txt; each must run and name "(this node)"), asked again every 200 ms until
 * exactly one does or wait_ms have passed: a loaded machine can be in an election. */
int tst_cluster_leaders(const char *bin, const tst_cluster_node *const *nodes, int n,
                        const char *dir, int64_t wait_ms);

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
