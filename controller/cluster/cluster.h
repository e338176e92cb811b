/*
 * Internal: the replicated controller's consensus (issue 16, docs/cluster.md). A community may
 * run 3 or 5 controller nodes; their decisions go through a Raft log (libraft with its libuv
 * I/O backend, the C Raft library of Debian's libraft-dev) and every node applies each
 * committed entry, in log order, to its own community database with the same deterministic
 * store functions, so every node's database and ledger hold the same content.
 *
 * The log carries decisions, not bulk: typed entries (ctl_cluster_entry_type). An entry is
 * applied exactly once per node: its effects and its index commit in one SQLite transaction
 * (db/cluster_state.h) and entries at or below the stored index are skipped on replay.
 * Snapshots are a consistent image of the database plus that index; a node that was down
 * catches up from the log or, when the log was compacted past it, from a snapshot.
 *
 * Divergence (docs/cluster.md, "Divergence"): each node keeps a digest chain over the entries it
 * applied, stored with the index; the leader's entries carry its chain, and a node whose own
 * differs stops (CTL_CLUSTER_E_DIVERGED) before applying the entry. Two Raft rules libraft 0.15
 * breaks are kept at the node's I/O object (cluster.c).
 *
 * Threading: libraft is not thread-safe. A ctl_cluster owns its own uv loop, and every call
 * here, and every apply callback, runs on the thread that calls ctl_cluster_run (the daemon's
 * loop): the caller drives the loop, nothing runs behind its back.
 *
 * The process must ignore SIGPIPE (the daemons do, common/stop_signal.c): a write to a peer
 * that just went away would otherwise kill it.
 *
 * Ownership: ctl_cluster_open borrows the config (copied), the database and the callbacks'
 * context for the cluster's lifetime; ctl_cluster_close frees everything it made.
 */
#ifndef MGX_CTL_CLUSTER_H
#define MGX_CTL_CLUSTER_H

#include "common/log.h"
#include "db/db.h"

#include <stddef.h>
#include <stdint.h>

#define CTL_CLUSTER_MAX_NODES 7
#define CTL_CLUSTER_ADDR_MAX  64
#define CTL_CLUSTER_DIR_MAX   1024
/* The largest payload of one entry: a batch of orders or readings, never the bulk of a day. */
#define CTL_CLUSTER_ENTRY_MAX (4u << 20)

enum {
    CTL_CLUSTER_OK = 0,
    CTL_CLUSTER_E_INVAL = -1,      /* bad argument or config */
    CTL_CLUSTER_E_RAFT = -2,       /* libraft or libuv failed (message in err / the log) */
    CTL_CLUSTER_E_NOT_LEADER = -3, /* a proposal on a follower, or leadership lost before commit */
    CTL_CLUSTER_E_NOMEM = -4,
    CTL_CLUSTER_E_APPLY = -5, /* an entry could not be applied to the database: this node
                               * stops (its database is behind the log; restart it) */
    CTL_CLUSTER_E_CLOSED = -6, /* the cluster closed before the entry committed */
    CTL_CLUSTER_E_BUSY = -7,   /* a membership change is already under way */
    CTL_CLUSTER_E_DIVERGED = -8 /* the leader's chain of applied entries differs from this
                                 * node's: this node stops, its database consistent at its
                                 * applied index but not the others' (docs/cluster.md) */
};

const char *ctl_cluster_strerror(int code);

typedef struct {
    uint64_t id;                        /* > 0, unique in the cluster, never reused */
    char address[CTL_CLUSTER_ADDR_MAX]; /* "IPv4:port" the node listens on for the others */
} ctl_cluster_node;

/* The [cluster] section (cluster_config.h). */
typedef struct {
    uint64_t node_id; /* this node: one of nodes[] */
    ctl_cluster_node nodes[CTL_CLUSTER_MAX_NODES];
    size_t n_nodes;                     /* the initial voters: 1, 3 or 5 (7 at most) */
    char data_dir[CTL_CLUSTER_DIR_MAX]; /* the Raft log and snapshots of this node */
    int64_t election_timeout_ms;        /* default 1000; heartbeats every tenth of it */
    int64_t snapshot_threshold;         /* entries between snapshots, default 1024 */
    int64_t snapshot_trailing;          /* entries kept behind a snapshot, default 128 */
    int join; /* 1: a node joining a running cluster: nothing is bootstrapped, the node waits
               * for a leader to add it (`mgx cluster add`) and catches up from its log or a
               * snapshot; nodes[] then only gives this node's own address */
    int64_t catch_up_timeout_ms; /* how long a leader waits for a node it adds to catch up
                                  * before giving up on making it a voter, default 300000 */
    int handover_on_close; /* 1 (default): a leader closed by ctl_cluster_close hands the
                            * leadership to another voter first; 0: it just stops (several
                            * nodes driven by one thread, as in tests, cannot hand over) */
} ctl_cluster_config;

/* Defaults in every field but node_id, nodes and data_dir. */
void ctl_cluster_config_defaults(ctl_cluster_config *c);

/* The kinds of decisions the log carries. */
typedef enum {
    CTL_ENTRY_ORDERS = 1,   /* a batch of accepted order messages, verbatim signed bytes */
    CTL_ENTRY_READINGS = 2, /* a batch of readings admitted for settlement */
    CTL_ENTRY_CLEAR = 3,    /* clear interval N (payload: ctl_cluster_u64) */
    CTL_ENTRY_SETTLE = 4,   /* settle interval N (payload: ctl_cluster_u64) */
    CTL_ENTRY_PREFS = 5,    /* standing preferences as they arrived, verbatim signed bytes */
    CTL_ENTRY_COSIG = 6,    /* a witness's cosigned checkpoint note as it arrived */
    CTL_ENTRY_SOLANA = 7,   /* a Solana outbox decision (settle/settle_daemon.h) */
    CTL_ENTRY_TYPE_MAX = 7
} ctl_cluster_entry_type;

/* Applies one committed entry to the database. It runs inside the entry's apply transaction
 * (db/cluster_state.h: the store's own transactions nest in it). Returns 0 when applied, 1
 * when the entry is refused by a deterministic rule (its writes are rolled back and it counts
 * as applied: every node refuses it alike), or < 0 on a failure of this node (disk, memory):
 * nothing is recorded and the node stops applying (ctl_cluster_run returns
 * CTL_CLUSTER_E_APPLY). */
typedef int (*ctl_cluster_apply_fn)(void *ctx, uint64_t index, int type, const uint8_t *payload,
                                    size_t len);
/* The database was replaced by a snapshot's image up to index: drop what the caller caches of
 * it. May be NULL. */
typedef void (*ctl_cluster_restored_fn)(void *ctx, uint64_t index);

typedef struct {
    ctl_cluster_apply_fn apply;
    ctl_cluster_restored_fn restored;
    void *ctx;
} ctl_cluster_fsm;

/* A proposal's end: status CTL_CLUSTER_OK once the entry is committed by a majority and applied
 * here (index is its log index), else CTL_CLUSTER_E_NOT_LEADER / _E_CLOSED / _E_RAFT (the entry
 * may still commit later under the next leader: the caller's sources resend, and the apply
 * makes a repeat harmless). */
typedef void (*ctl_cluster_done_fn)(void *arg, int status, uint64_t index);

typedef struct ctl_cluster ctl_cluster;

/* Opens this node: creates data_dir, bootstraps the initial configuration on a pristine data
 * directory (every node does, with the same nodes), loads the log and starts Raft. The
 * database must have been opened (and migrated) by the caller. On failure err says why. */
int ctl_cluster_open(const ctl_cluster_config *cfg, ctl_db *db, const ctl_cluster_fsm *fsm,
                     const ctl_log *log, ctl_cluster **out, char *err, size_t errlen);

/* Runs the loop: timeout_ms 0 handles what is ready and returns; > 0 waits at most that long
 * for one event. Applies run inside. Returns CTL_CLUSTER_OK, or CTL_CLUSTER_E_APPLY once an
 * apply failed. */
int ctl_cluster_run(ctl_cluster *c, int timeout_ms);

/* Proposes an entry (leader only: CTL_CLUSTER_E_NOT_LEADER otherwise, and done is not called).
 * The payload is copied. On CTL_CLUSTER_OK, done is called exactly once from a later
 * ctl_cluster_run or from ctl_cluster_close. */
int ctl_cluster_propose(ctl_cluster *c, int type, const uint8_t *payload, size_t len,
                        ctl_cluster_done_fn done, void *arg);

typedef enum {
    CTL_ROLE_UNAVAILABLE = 0,
    CTL_ROLE_FOLLOWER = 1,
    CTL_ROLE_CANDIDATE = 2,
    CTL_ROLE_LEADER = 3
} ctl_cluster_role;

const char *ctl_cluster_role_name(int role);

typedef struct {
    uint64_t node_id;
    int role; /* ctl_cluster_role */
    uint64_t term;
    uint64_t leader_id; /* 0 when no leader is known */
    char leader_address[CTL_CLUSTER_ADDR_MAX];
    uint64_t last_index;    /* the last entry in this node's log */
    uint64_t commit_index;  /* the last entry known committed */
    uint64_t log_applied;   /* the last entry Raft handed to this node (any kind) */
    uint64_t applied_index; /* the last decision applied to this node's database */
    uint64_t n_applied;     /* entries this process applied (not skipped as applied) */
    uint64_t n_snapshots;   /* snapshots this process took */
    uint64_t n_restores;    /* snapshots this process loaded into its database */
    uint64_t chain_checked;   /* entries whose leader's chain this node compared with its own */
    uint64_t chain_unchecked; /* entries whose chain it could not compare (no longer kept) */
    int diverged;             /* 1: a comparison failed and this node stopped */
    uint64_t commit_clamped;  /* AppendEntries whose leaderCommit this node lowered (cluster.c) */
    uint64_t match_clamped;   /* results in which it reported less than its whole log */
    uint64_t install_ticks;   /* ticks at which it held off an election while installing a
                               * snapshot, and vote requests it dropped meanwhile (cluster.c) */
    uint64_t install_votes;
    uint64_t unaddressed; /* replies libraft addressed to no known leader, dropped (cluster.c) */
} ctl_cluster_status;

int ctl_cluster_is_leader(ctl_cluster *c);
void ctl_cluster_get_status(ctl_cluster *c, ctl_cluster_status *st);

/* ---- membership (docs/cluster.md, "Replacing a node") ---- */

/* A member's role in the configuration, libraft's values. */
enum { CTL_MEMBER_STANDBY = 0, CTL_MEMBER_VOTER = 1, CTL_MEMBER_SPARE = 2 };
const char *ctl_cluster_member_role_name(int role);

typedef struct {
    uint64_t id;
    char address[CTL_CLUSTER_ADDR_MAX];
    int role; /* CTL_MEMBER_* */
} ctl_cluster_member;

/* The configuration this node knows (the last one in its log, committed or not): up to cap
 * members into out, their number into *n; *changing 1 when that configuration is not yet
 * committed. Returns CTL_CLUSTER_OK. */
int ctl_cluster_members(ctl_cluster *c, ctl_cluster_member *out, size_t cap, size_t *n,
                        int *changing);

/* The end of a membership change: status CTL_CLUSTER_OK or an error code, with a sentence for
 * the operator in msg (valid during the call). */
typedef void (*ctl_cluster_change_fn)(void *arg, int status, const char *msg);

/* Leader only, one change at a time. Adds node id at address ("host:port"): it enters the
 * configuration as a spare, then a standby (the leader replicates its log to it, or a
 * snapshot), and once its log has caught up with the commit index, a voter. done is called
 * once, when the node is a voter or the change failed (the node then stays in the
 * configuration as a standby: `remove` takes it out, `add` again resumes it). Adding a node
 * that is already a voter at that address ends at once with CTL_CLUSTER_OK.
 * Refused synchronously, with err saying why and done not called:
 *  - CTL_CLUSTER_E_NOT_LEADER: err names the leader and its address when one is known;
 *  - CTL_CLUSTER_E_INVAL: id 0, a bad address, the id or the address in use by another node,
 *    a full configuration;
 *  - CTL_CLUSTER_E_BUSY: a change is under way. */
int ctl_cluster_add(ctl_cluster *c, uint64_t id, const char *address, ctl_cluster_change_fn done,
                    void *arg, char *err, size_t errlen);

/* Leader only, one change at a time. Removes node id from the configuration; done is called
 * once the new configuration is committed. Refused synchronously as ctl_cluster_add, and:
 *  - CTL_CLUSTER_E_INVAL: the id is not in the configuration, or it is the last voter;
 *  - CTL_CLUSTER_E_NOT_LEADER when the id is this leader itself: it hands leadership to
 *    another voter (err says so), and the command is to be given again to the new leader. */
int ctl_cluster_remove(ctl_cluster *c, uint64_t id, ctl_cluster_change_fn done, void *arg,
                       char *err, size_t errlen);

/* The caller of a change under way with this arg is gone: done will not be called; the change
 * itself goes on. */
void ctl_cluster_change_detach(ctl_cluster *c, void *arg);

/* For tests only: the next entry this node applies enters its chain as if it were another
 * entry (what a node that applied a stale entry has), so the next entry the leader proposes
 * after it makes this node stop with CTL_CLUSTER_E_DIVERGED. */
void ctl_cluster_test_diverge(ctl_cluster *c);

/* Stops Raft (pending proposals end with CTL_CLUSTER_E_CLOSED), closes the loop and frees c.
 * NULL is a no-op. */
void ctl_cluster_close(ctl_cluster *c);

/* ---- entry payloads ---- */

/* CLEAR and SETTLE carry one interval id: 8 bytes big-endian. */
void ctl_cluster_u64_put(uint8_t out[8], uint64_t v);
int ctl_cluster_u64_get(const uint8_t *p, size_t len, uint64_t *v);

#endif
