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

#endif
