/*
 * Test support: homes that send signed orders to a running `mgx controller` over the bus, the
 * fixture of the daemon crash tests (daemon/, settle/, solana/): each home has a key from a
 * fixed seed and is in the registry, makes one order for a target interval, resends it until it
 * holds a receipt, and then waits for the next interval. Also the controller process those
 * tests start, kill and restart, the meter readings and the standing preferences (ex_post) they
 * publish.
 */
#ifndef MGX_TEST_HOMES_H
#define MGX_TEST_HOMES_H

#include "bus/bus.h"
#include "common/interval.h"
#include "orders/keys.h"
#include "orders/order_msg.h"
#include "orders/pref_msg.h"
#include "mgx/meter.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    char id[16];              /* "home-<h>" */
    ctl_secret_key *key;      /* owned; tst_homes_free frees */
    ctl_order_msg pending;    /* the order being resent until receipted */
    int has_pending;
    int64_t last_sent_ms;     /* wall clock of the last send, 0: not sent yet */
    int64_t done_interval;    /* last interval with a receipted order */
    int64_t next_reading_s;   /* for tests that also play the home's meter */
} tst_home;

/* The random part of an order: 1..max_steps steps, energies energy_min + [0, energy_span) Wh,
 * prices sell_min + [0, sell_span) for sellers (even homes) and buy_min + [0, buy_span) for
 * buyers (odd homes), in uc/kWh. */
typedef struct {
    unsigned max_steps;
    unsigned energy_min, energy_span;
    unsigned sell_min, sell_span, buy_min, buy_span;
} tst_order_shape;

/* Fills homes[0..n): ids "home-<h>", keys from the 32-byte seed with every byte seed0 + h, and
 * adds them to the registry of the database at db_path as homes (with meter "m-home-<h>" when
 * with_meters). */
void tst_homes_register(tst_home *homes, int n, int seed0, const char *db_path, bool with_meters);
void tst_homes_free(tst_home *homes, int n);
/* The index of the home with this id, -1 if none. */
int tst_home_index(const tst_home *homes, int n, const char *id);

/* Makes and signs home h's next order for interval iv (900 s intervals, created at sim_ms,
 * expiring at the interval's start, nonce and steps from rand_r(seed)); it is then pending. */
void tst_home_make_order(tst_home *homes, int h, const char *community, int64_t iv,
                         int64_t sim_ms, unsigned *seed, const tst_order_shape *shape);
/* Publishes the pending order (QoS 1) and notes when. */
void tst_home_send_order(bus_client *c, const char *community, tst_home *hm);
/* Home hm's standing preference *m: pref's steps for community, valid from interval valid_from
 * (900 s intervals) up to its gate (300 s before it starts), made at created_ms (the newest
 * one counts), with a random nonce, signed with the home's key. */
void tst_home_make_pref(ctl_pref_msg *m, const tst_home *hm, const char *community,
                        int64_t valid_from, int64_t created_ms, const mkt_preference *pref);
/* Publishes home hm's preference m on its preference topic (QoS 1). */
void tst_home_send_pref(bus_client *c, const char *community, const tst_home *hm,
                        const ctl_pref_msg *m);
/* The homes order for the first open interval (900 s, the gate 300 s before, 4 ahead, 100 s
 * from the clock's now) each time their last order is receipted, resending a pending one every
 * 150 ms and running c's loop, until the database at db holds `blocks` ledger blocks; fails the
 * test after 120 s. With replaced, home 0 replaces each receipted order once (*replaced: the
 * last interval it did so for), so a reader of the orders must pick the later one. */
void tst_homes_trade_until(tst_home *homes, int n, const char *community,
                           const tst_order_shape *shape, const char *db, bus_client *c,
                           const ctl_clock *clock, unsigned *seed, int64_t blocks,
                           int64_t *replaced);
/* The home whose pending order receipt r answers: its order is done (returns its index), or -1
 * when r answers none (an old resend's duplicate, another home's). */
int tst_homes_take_receipt(tst_home *homes, int n, const ctl_receipt *r);
/* A message on a receipt topic parsed into *r: 1, or -1 when its body is not a receipt; 0 for a
 * message on any other topic. */
int tst_receipt_parse(const bus_message *m, ctl_receipt *r);

/* The homes' bus client ("homes", QoS 1 publishes, up to max_pending awaiting their PUBACK, 0:
 * the default) on the broker at 127.0.0.1:port, subscribed to the community's receipts and
 * connected; on_msg gets every message. */
bus_client *tst_homes_connect(int port, const char *community, unsigned max_pending,
                              bus_message_fn on_msg);
/* Homes whose receipts a client takes (tst_homes_connect_taking). */
typedef struct {
    tst_home *homes;
    int n;
} tst_homes_set;
/* tst_homes_connect with a handler of its own, for tests that need no other messages: each
 * receipt that answers a pending order of set's homes is taken (tst_homes_take_receipt). */
bus_client *tst_homes_connect_taking(int port, const char *community, unsigned max_pending,
                                     tst_homes_set *set);
/* The index of the home the database's market id stands for, -1 if none. */
int tst_homes_market_home(const tst_home *homes, int n, sqlite3 *db, uint64_t market_id);

/* Publishes one reading on the meter's state topic (QoS 1). */
void tst_send_reading(bus_client *c, const char *community, const mtr_sample *s);

/* Opens path for writing and writes the [bus] and [controller] sections of the crash tests'
 * controller: the broker at 127.0.0.1:port, the community's database db, 900 s intervals with
 * the gate 300 s before and 4 ahead; with grace_s >= 0 also settling (a network fee of 10000
 * uc/kWh, settlement grace_s after an interval with the key community.skey in the config's
 * folder, readings at most 300 s apart). Returns the open file for more sections; caller
 * closes. */
FILE *tst_controller_config(const char *path, int port, const char *community, const char *db,
                            int grace_s);

/* A replicated controller's node (docs/cluster.md): tst_controller_config's sections with the
 * bus client id controller-<node>, then [cluster] with node_id node (1-based), nodes 1..n_nodes
 * at 127.0.0.1:raft_port[i], data_dir raft-<node> (in the config's folder) and an election
 * timeout of election_ms. Returns the open file for more sections; caller closes. */
FILE *tst_cluster_config(const char *path, int port, const char *community, const char *db,
                         int grace_s, int node, const int *raft_port, int n_nodes,
                         int election_ms);
/* A node's status file (data_dir/status, written by the node every 200 ms): its role, applied
 * index and last cleared interval. 0, or -1 when unreadable or not updated for 1 s (the node
 * is dead or frozen). */
int tst_cluster_status(const char *status_path, char *role, size_t cap, long long *applied,
                       long long *cleared);
/* The node of n (status files and pids; a pid <= 0 is down) that reports itself leader, other
 * than except; -1 when none does. */
int tst_cluster_leader(const char *const *status, const pid_t *pid, int n, int except);

/* The length of each path tst_controller_dir names. */
#define TST_CTL_PATH_MAX 512
/* Makes a new temporary folder for one controller run (named after prefix) and names its
 * files in it: the database db ("ctl.db"), the config conf ("controller.ini") and the stderr
 * log ("controller.log"), each TST_CTL_PATH_MAX long. Returns the folder; the caller removes it
 * (tst_rmtree) and frees the string. */
char *tst_controller_dir(const char *prefix, char *db, char *conf, char *log);

/* Starts `bin controller conf --clock-speed 3600 --clock-anchor anchor` with stderr appended to
 * log, and MGX_CRASH_AT=crash_at when crash_at is not NULL; returns the pid. */
pid_t tst_controller_start(const char *bin, const char *conf, const char *anchor,
                           const char *log, const char *crash_at);
/* The simulated clock of the crash tests: 2024-06-01T00:00:00Z at the current second, 3600
 * times real time; anchor gets the matching --clock-anchor argument. */
ctl_clock tst_sim_clock(char *anchor, size_t cap);
/* Stops the controller with SIGTERM; fails the test unless it exits cleanly with status 0. */
void tst_controller_stop(pid_t pid);
/* The same, and on failure it prints the end of the controller's log (NULL: none) and says
 * whether it exited non-zero or died of a signal. */
void tst_controller_stop_log(pid_t pid, const char *log);
/* kill -9 of pid, reaped; fails the test if it was not the signal that ended it. */
void tst_kill9(pid_t pid);
/* The crash tests' kill and restart: kill -9 of the controller pid (as tst_kill9), a pause of
 * 0 to 199 ms drawn from seed, then tst_controller_start with no crash point; returns the new
 * pid. */
pid_t tst_controller_restart(pid_t pid, unsigned *seed, const char *bin, const char *conf,
                             const char *anchor, const char *log);

/* The one integer sql returns with ?1 bound to a (the query must return a row). */
int64_t tst_db_int(sqlite3 *db, const char *sql, int64_t a);
/* The one integer sql returns from the database at path, opened read-only for this query alone
 * (a controller may be writing it); -1 when it returns no row or NULL, or cannot be read (then
 * the error goes to stderr). */
int64_t tst_db_path_int(const char *path, const char *sql);

#endif
