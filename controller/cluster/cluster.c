/*
 * The replicated controller's consensus over libraft and libuv (see cluster.h): the node's
 * loop, proposals, and the state machine that applies committed entries to the community
 * database exactly once, snapshots it and restores it.
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs the POSIX thread types */

#include "cluster/cluster.h"

#include "cluster/cluster_admin.h"
#include "common/errbuf.h"
#include "db/cluster_state.h"

#include <errno.h>
#include <stdarg.h>
#include <raft.h>
#include <raft/uv.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

/* An entry in the log: a format byte, the type byte, two zero bytes, the payload's length (4
 * bytes big-endian); in format 2 then the proposer's chain (8 bytes big-endian each: the index
 * its chain started from and the last index it had applied, then the 32-byte chain digest
 * after that index); the payload, zero bytes up to a multiple of 8. libraft's encoding of log
 * batches and messages assumes entry buffers a multiple of 8 bytes long (found the hard way: an
 * odd length corrupted the segment files and the entries sent to followers). Format 1 entries
 * (no chain) are still read: a log written before the check. */
#define ENTRY_FORMAT_1 1
#define ENTRY_FORMAT   2
#define ENTRY_HEADER_1 8
#define ENTRY_HEADER   (8 + 16 + CHAIN_LEN)
/* The divergence check (docs/cluster.md, "Divergence"): every node keeps a running digest over
 * the entries it applied, chain(i) = BLAKE2b-256(chain(i-1) || index i || the entry's bytes),
 * stored with the applied index (db/cluster_state.h) and so carried by snapshots. The leader
 * puts its own (index, chain) in every entry it proposes; a node applying that entry compares
 * it with its own chain at that index, which it keeps for the last CHAIN_RING indexes, and
 * stops on a difference before applying anything of the entry. Two nodes that applied
 * different entries under one index therefore cannot both go on: the one that differs from
 * the leader stops at the first entry the leader proposed after that index. */
#define CHAIN_LEN  CTL_DB_CHAIN_LEN
#define CHAIN_RING 1024
/* A snapshot: "MGXS", a format byte, three zero bytes, the applied index and the image's
 * length (8 bytes big-endian each), the database image, zero bytes up to a multiple of 8. */
#define SNAP_MAGIC  "MGXS"
#define SNAP_FORMAT 1
#define SNAP_HEADER 24

struct ctl_cluster {
    ctl_cluster_config cfg;
    ctl_db *db;
    ctl_cluster_fsm fsm_cb;
    const ctl_log *log;
    uv_loop_t loop;
    uv_timer_t wake; /* bounds a blocking ctl_cluster_run */
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    int loop_ok, timer_ok, transport_ok, io_ok, raft_ok;
    int closed;       /* raft_close's callback ran */
    int closing;      /* ctl_cluster_close has begun: no new proposals, no callbacks out */
    int failed;       /* an apply failed: stop */
    uint64_t applied; /* the database's applied index */
    uint64_t n_applied, n_snapshots, n_restores;
    /* the divergence check's chain: started at chain_base, chain after entry applied */
    uint64_t chain_base;
    uint8_t chain[CHAIN_LEN];
    struct {
        uint64_t index; /* 0: empty */
        uint8_t digest[CHAIN_LEN];
    } ring[CHAIN_RING]; /* the chain after each of the last CHAIN_RING applied indexes */
    uint64_t n_checked, n_unchecked;
    int diverged;      /* the leader's chain differed from this node's: stopped */
    /* the guard at libraft's I/O boundary (guard_recv, guard_send): libuv's own functions */
    int (*io_start)(struct raft_io *, unsigned, raft_io_tick_cb, raft_io_recv_cb);
    int (*io_send)(struct raft_io *, struct raft_io_send *, const struct raft_message *,
                   raft_io_send_cb);
    raft_io_recv_cb raft_recv; /* libraft's receive callback */
    raft_io_tick_cb raft_tick; /* libraft's tick callback */
    uint64_t n_commit_clamped, n_match_clamped;
    uint64_t n_install_ticks, n_install_votes; /* held while a snapshot installs (guard_tick) */
    uint64_t n_unaddressed; /* replies to a leader no longer known, dropped (guard_send) */
    /* the highest index this node knows its log matches the leader of verified_term at: the
     * end of an AppendEntries whose previous entry matched, or a snapshot's last index */
    uint64_t verified, verified_term;
    struct raft_barrier barrier; /* a new leader's first entry of its term */
    uint64_t barrier_term;
    int barrier_busy;
    int test_diverge;  /* ctl_cluster_test_diverge: digest the next entry as another one */
    char tmp_path[CTL_CLUSTER_DIR_MAX + 32]; /* where database images are written */
    /* the membership change under way (ctl_cluster_add / _remove), one at a time */
    struct {
        int stage; /* CHG_* */
        uint64_t id;
        char address[CTL_CLUSTER_ADDR_MAX];
        ctl_cluster_change_fn done;
        void *arg;
        struct raft_change req;
        uint64_t t0_ms, deadline_ms; /* uv_now */
    } chg;
    uv_timer_t chg_timer; /* polls a standby's catch-up */
    int chg_timer_ok;
    struct raft_transfer xfer; /* a leader asked to remove itself hands over first */
    int xfer_busy;
    ctl_cluster_admin *admin; /* the operator's socket (cluster_admin.h), NULL without one */
};

/* A change's stages. The next request is made from the timer, never from libraft's callback of
 * the last one: inside it the configuration may not count as committed yet. */
enum { CHG_NONE, CHG_ADD, CHG_ADDED, CHG_STANDBY, CHG_CATCHUP, CHG_PROMOTE, CHG_REMOVE };

typedef struct {
    struct raft_apply req;
    ctl_cluster *c;
    ctl_cluster_done_fn done;
    void *arg;
} proposal;

const char *ctl_cluster_strerror(int code)
{
    switch (code) {
    case CTL_CLUSTER_OK:
        return "ok";
    case CTL_CLUSTER_E_INVAL:
        return "invalid argument";
    case CTL_CLUSTER_E_RAFT:
        return "raft failed";
    case CTL_CLUSTER_E_NOT_LEADER:
        return "not the leader";
    case CTL_CLUSTER_E_NOMEM:
        return "out of memory";
    case CTL_CLUSTER_E_APPLY:
        return "an entry could not be applied";
    case CTL_CLUSTER_E_CLOSED:
        return "the cluster closed";
    case CTL_CLUSTER_E_BUSY:
        return "a membership change is under way";
    case CTL_CLUSTER_E_DIVERGED:
        return "this node's applied entries differ from the leader's (diverged)";
    default:
        return "unknown error";
    }
}

const char *ctl_cluster_role_name(int role)
{
    switch (role) {
    case CTL_ROLE_FOLLOWER:
        return "follower";
    case CTL_ROLE_CANDIDATE:
        return "candidate";
    case CTL_ROLE_LEADER:
        return "leader";
    default:
        return "unavailable";
    }
}

void ctl_cluster_config_defaults(ctl_cluster_config *c)
{
    if (!c)
        return;
    c->election_timeout_ms = 1000;
    c->snapshot_threshold = 1024;
    c->snapshot_trailing = 128;
    c->catch_up_timeout_ms = 300000;
    c->handover_on_close = 1;
}

void ctl_cluster_u64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

int ctl_cluster_u64_get(const uint8_t *p, size_t len, uint64_t *v)
{
    if (!p || len != 8 || !v)
        return CTL_CLUSTER_E_INVAL;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = (x << 8) | p[i];
    *v = x;
    return CTL_CLUSTER_OK;
}

/* ---- the state machine ---- */

static void ring_reset(ctl_cluster *c)
{
    memset(c->ring, 0, sizeof c->ring);
}

static void ring_put(ctl_cluster *c, uint64_t index, const uint8_t digest[CHAIN_LEN])
{
    size_t slot = (size_t)(index % CHAIN_RING);
    c->ring[slot].index = index + 1; /* + 1: index 0 (nothing applied) is a valid entry */
    memcpy(c->ring[slot].digest, digest, CHAIN_LEN);
}

/* This node's chain after index, NULL when it no longer (or never) knew it. */
static const uint8_t *ring_get(const ctl_cluster *c, uint64_t index)
{
    size_t slot = (size_t)(index % CHAIN_RING);
    return c->ring[slot].index == index + 1 ? c->ring[slot].digest : NULL;
}

/* The chain from the database (after open or a restore): the ring starts at the applied index. */
static int chain_load(ctl_cluster *c)
{
    if (ctl_db_cluster_chain(c->db, &c->chain_base, c->chain) != CTL_DB_OK)
        return -1;
    ring_reset(c);
    ring_put(c, c->applied, c->chain);
    return 0;
}

static void hex32(const uint8_t d[CHAIN_LEN], char out[2 * CHAIN_LEN + 1])
{
    sodium_bin2hex(out, 2 * CHAIN_LEN + 1, d, CHAIN_LEN);
}

/* The proposer's chain in a format 2 entry against this node's own. Returns 0 when equal or
 * not comparable (a chain started elsewhere, an index this node no longer keeps), -1 when they
 * differ: this node has applied something else than the leader at or before that index. */
static int chain_check(ctl_cluster *c, uint64_t index, const uint8_t *p)
{
    uint64_t base = 0, at = 0;
    ctl_cluster_u64_get(p + 8, 8, &base);
    ctl_cluster_u64_get(p + 16, 8, &at);
    const uint8_t *theirs = p + 24;
    const uint8_t *mine = base == c->chain_base && at >= base ? ring_get(c, at) : NULL;
    if (!mine) {
        c->n_unchecked++;
        return 0;
    }
    if (sodium_memcmp(mine, theirs, CHAIN_LEN) == 0) {
        c->n_checked++;
        return 0;
    }
    char h_mine[2 * CHAIN_LEN + 1], h_theirs[2 * CHAIN_LEN + 1];
    hex32(mine, h_mine);
    hex32(theirs, h_theirs);
    ctl_logf(c->log, CTL_LOG_ERROR,
             "cluster: node %llu DIVERGED: entry %llu was proposed by a leader whose chain after "
             "entry %llu is %s, this node's is %s: this node applied other entries than the "
             "leader; it stops before applying entry %llu (its database stays at entry %llu, "
             "consistent) and will stop again on restart; replace it (docs/cluster.md, "
             "\"When a node stops as diverged\")",
             (unsigned long long)c->cfg.node_id, (unsigned long long)index,
             (unsigned long long)at, h_theirs, h_mine, (unsigned long long)index,
             (unsigned long long)c->applied);
    return -1;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    ctl_cluster *c = fsm->data;
    *result = NULL;
    if (c->failed)
        return RAFT_IOERR;
    /* libraft applies committed entries one by one in index order and advances last_applied
     * after each: the entry being applied is the next index */
    uint64_t index = raft_last_applied(&c->raft) + 1;
    if (index <= c->applied)
        return 0; /* replayed after a restart: its effects are already in the database */
    const uint8_t *p = buf->base;
    int type = 0;
    size_t plen = 0, hlen = 0;
    if (buf->len >= ENTRY_HEADER_1 && p[1] >= 1 && p[1] <= CTL_ENTRY_TYPE_MAX)
        hlen = p[0] == ENTRY_FORMAT_1 ? ENTRY_HEADER_1
               : p[0] == ENTRY_FORMAT && buf->len >= ENTRY_HEADER ? ENTRY_HEADER
                                                                  : 0;
    if (hlen) {
        plen = (size_t)p[4] << 24 | (size_t)p[5] << 16 | (size_t)p[6] << 8 | p[7];
        if (plen <= buf->len - hlen)
            type = p[1];
    }
    if (hlen == ENTRY_HEADER && chain_check(c, index, p) != 0) {
        c->diverged = 1;
        goto fail;
    }
    /* the chain after this entry, whatever its fate (applied, refused, unreadable) */
    uint8_t next[CHAIN_LEN], ib[8];
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, CHAIN_LEN);
    crypto_generichash_update(&h, c->chain, CHAIN_LEN);
    ctl_cluster_u64_put(ib, index);
    crypto_generichash_update(&h, ib, sizeof ib);
    crypto_generichash_update(&h, p, buf->len);
    if (c->test_diverge) {
        /* the test hook: as if another entry had been applied under this index */
        crypto_generichash_update(&h, (const uint8_t *)"x", 1);
        c->test_diverge = 0;
    }
    crypto_generichash_final(&h, next, CHAIN_LEN);
    int rc = 1; /* an entry this mgx cannot read is refused alike on every node */
    if (ctl_db_apply_begin(c->db) != CTL_DB_OK) {
        ctl_logf(c->log, CTL_LOG_ERROR, "cluster: entry %llu: cannot begin: %s",
                 (unsigned long long)index, ctl_db_errmsg(c->db));
        goto fail;
    }
    if (type)
        rc = c->fsm_cb.apply(c->fsm_cb.ctx, index, type, p + hlen, plen);
    if (rc < 0) {
        ctl_db_apply_end(c->db, 0);
        ctl_logf(c->log, CTL_LOG_ERROR, "cluster: entry %llu (type %d) failed to apply",
                 (unsigned long long)index, type);
        goto fail;
    }
    if (rc > 0) {
        /* refused: nothing of it stays, but its index does */
        ctl_db_apply_end(c->db, 0);
        ctl_logf(c->log, CTL_LOG_WARN,
                 "cluster: node %llu: entry %llu (type %d, %zu bytes) refused",
                 (unsigned long long)c->cfg.node_id, (unsigned long long)index, type, buf->len);
        if (ctl_db_apply_begin(c->db) != CTL_DB_OK)
            goto fail;
    }
    if (ctl_db_cluster_set_applied_chain(c->db, index, c->chain_base, next) != CTL_DB_OK) {
        ctl_db_apply_end(c->db, 0);
        goto fail;
    }
    if (ctl_db_apply_end(c->db, 1) != CTL_DB_OK) {
        ctl_logf(c->log, CTL_LOG_ERROR, "cluster: entry %llu: commit: %s",
                 (unsigned long long)index, ctl_db_errmsg(c->db));
        goto fail;
    }
    c->applied = index;
    memcpy(c->chain, next, CHAIN_LEN);
    ring_put(c, index, next);
    c->n_applied++;
    return 0;
fail:
    c->failed = 1;
    return RAFT_IOERR;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    ctl_cluster *c = fsm->data;
    uint8_t *image = NULL;
    size_t len = 0;
    char err[256] = "";
    if (ctl_db_image(c->db, c->tmp_path, &image, &len, err, sizeof err) != CTL_DB_OK) {
        ctl_logf(c->log, CTL_LOG_WARN, "cluster: snapshot: %s", err);
        return RAFT_IOERR;
    }
    struct raft_buffer *b = raft_malloc(sizeof *b);
    size_t total = (SNAP_HEADER + len + 7) / 8 * 8; /* a multiple of 8, as entries */
    uint8_t *data = raft_malloc(total);
    if (!b || !data) {
        raft_free(b);
        raft_free(data);
        free(image);
        return RAFT_NOMEM;
    }
    memset(data, 0, total);
    memcpy(data, SNAP_MAGIC, 4);
    data[4] = SNAP_FORMAT;
    ctl_cluster_u64_put(data + 8, c->applied);
    ctl_cluster_u64_put(data + 16, len);
    memcpy(data + SNAP_HEADER, image, len);
    free(image);
    b->base = data;
    b->len = total;
    *bufs = b;
    *n_bufs = 1;
    c->n_snapshots++;
    return 0;
}

/* With snapshot_finalize set (fsm version 2), the buffers stay ours until here. */
static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    (void)fsm;
    if (*bufs) {
        for (unsigned i = 0; i < *n_bufs; i++)
            raft_free((*bufs)[i].base);
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    ctl_cluster *c = fsm->data;
    const uint8_t *p = buf->base;
    uint64_t index = 0, len = 0;
    if (buf->len < SNAP_HEADER || memcmp(p, SNAP_MAGIC, 4) != 0 || p[4] != SNAP_FORMAT ||
        ctl_cluster_u64_get(p + 8, 8, &index) != CTL_CLUSTER_OK ||
        ctl_cluster_u64_get(p + 16, 8, &len) != CTL_CLUSTER_OK || len > buf->len - SNAP_HEADER) {
        ctl_logf(c->log, CTL_LOG_ERROR, "cluster: a snapshot of an unknown format");
        return RAFT_CORRUPT;
    }
    if (index > c->applied) {
        /* behind the snapshot: the database becomes its image */
        char err[256] = "";
        if (ctl_db_load_image(c->db, c->tmp_path, p + SNAP_HEADER, (size_t)len, err, sizeof err) !=
            CTL_DB_OK) {
            ctl_logf(c->log, CTL_LOG_ERROR, "cluster: restore: %s", err);
            return RAFT_IOERR;
        }
        uint64_t now = 0;
        if (ctl_db_cluster_applied(c->db, &now) != CTL_DB_OK || now != index) {
            ctl_logf(c->log, CTL_LOG_ERROR, "cluster: restored image says %llu, snapshot %llu",
                     (unsigned long long)now, (unsigned long long)index);
            return RAFT_CORRUPT;
        }
        c->applied = index;
        if (chain_load(c) != 0) {
            ctl_logf(c->log, CTL_LOG_ERROR, "cluster: restored image: the chain: %s",
                     ctl_db_errmsg(c->db));
            return RAFT_IOERR;
        }
        c->n_restores++;
        ctl_logf(c->log, CTL_LOG_INFO, "cluster: database restored from a snapshot at %llu",
                 (unsigned long long)index);
        if (c->fsm_cb.restored)
            c->fsm_cb.restored(c->fsm_cb.ctx, index);
    }
    /* else the database is already past it (a restart): the log replays from there */
    raft_free(buf->base); /* ours on success */
    return 0;
}

/* ---- rules of Raft that libraft 0.15 does not keep, kept at its I/O boundary ----
 *
 * libraft 0.15 (Debian 12's) breaks two rules of the Raft paper (docs/cluster.md,
 * "Divergence"), and a node killed while leader, restarted with uncommitted entries of its old
 * term at the end of its log, can then apply entries that were never committed:
 *  1. a follower sets its commit index to min(leaderCommit, its whole stored log), where the
 *     paper says min(leaderCommit, index of the last new entry): the entries past those the
 *     leader's message matched may be a stale tail, and the follower applies them;
 *  2. a follower reports its whole stored log as what it holds, and the leader takes that as
 *     its match index, so counts the follower as holding entries it does not have; libraft
 *     also commits entries of an earlier term by counting replicas (paper 5.4.2; fixed
 *     upstream in v0.17.1).
 * libraft is not patched here: the node's own I/O object is. guard_recv lowers leaderCommit in
 * each AppendEntries to prev_log_index + n_entries before libraft reads it (rule 1, as the
 * paper states it). guard_send lowers the last index in each accepting AppendEntries result to
 * what this follower knows matches the leader: its whole log if its last entry is of the
 * current term (only the current leader makes such entries, and the log matching property then
 * covers everything before it), else its commit index (which rule 1 keeps to matched entries)
 * or the last index of a snapshot the leader of this term sent (committed entries).
 * So a leader counts a follower only for entries up to one of its own term, which is also the
 * paper's 5.4.2: an old-term entry is committed only with a current-term entry after it. A new
 * leader proposes a barrier (an empty entry of its term) so that old-term entries commit
 * without waiting for the next decision.
 *
 * A third rule concerns a follower installing a snapshot. libraft 0.15 sets its in-memory log to
 * the snapshot's last entry before the snapshot is on disk, with nothing of it stored, and while
 * that write runs the follower may still time out and stand for election, or vote. It may then
 * lead, or help elect a leader, on a log it holds only in memory, and the snapshot is restored
 * into whatever state it has reached meanwhile (upstream fixed both after 0.15: a follower
 * installing a snapshot neither stands nor votes). guard_tick restarts such a follower's
 * election timer at every tick instead of letting it expire, and guard_recv drops the vote
 * requests it receives meanwhile (a candidate treats that as a lost message and asks again).
 *
 * And one crash: when a write of entries ends after the follower has moved to a new term (a
 * vote request of a higher term makes it a follower of no known leader), libraft 0.15 still
 * answers "the current leader", whose address is then NULL, and the libuv transport calls
 * strlen on it (upstream: "replication: Don't respond to AppendEntries if role/term has
 * changed"). guard_send refuses a message with no address; libraft then frees it, as it does
 * any message the transport refuses, and the new leader's next AppendEntries gets an answer. */

/* The term of the entry at index in libraft's in-memory log (its public struct raft_log), 0
 * when the log does not hold it. */
static uint64_t log_term_of(const struct raft_log *l, uint64_t index)
{
    size_t n = l->back >= l->front ? l->back - l->front : l->size - l->front + l->back;
    if (index > l->offset && index - l->offset <= n)
        return l->entries[(l->front + (size_t)(index - l->offset - 1)) % l->size].term;
    if (index != 0 && index == l->snapshot.last_index)
        return l->snapshot.last_term;
    return 0;
}

/* A follower that is writing a snapshot a leader sent it (third rule above). */
static int installing(const struct raft *r)
{
    return r->state == RAFT_FOLLOWER && r->snapshot.put.data != NULL;
}

/* A snapshot the leader of term sent proves this node's log matches its up to index. */
static void guard_verified(ctl_cluster *c, uint64_t term, uint64_t index)
{
    if (term > c->verified_term) {
        c->verified_term = term;
        c->verified = 0;
    }
    if (term == c->verified_term && index > c->verified)
        c->verified = index;
}

static void guard_recv(struct raft_io *io, struct raft_message *m)
{
    struct raft *r = io->data;
    ctl_cluster *c = r->data;
    if (m->type == RAFT_IO_APPEND_ENTRIES) {
        struct raft_append_entries *a = &m->append_entries;
        uint64_t last_new = a->prev_log_index + a->n_entries;
        if (a->leader_commit > last_new) {
            a->leader_commit = last_new;
            c->n_commit_clamped++;
        }
    } else if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
        /* accepted, the node either installs it or already holds its last entry with that term
         * (libraft then answers at once with the snapshot's last index and leaves its commit
         * index as it was: lowering that answer to the commit index, the guard made a leader
         * waiting on the snapshot resend it for ever, seen in test_cluster_crash). A snapshot
         * holds only committed entries, so counting them commits nothing by counting. */
        const struct raft_install_snapshot *is = &m->install_snapshot;
        if (is->term >= r->current_term)
            guard_verified(c, is->term, is->last_index);
    } else if (m->type == RAFT_IO_REQUEST_VOTE && installing(r)) {
        c->n_install_votes++;
        return; /* a vote request carries no memory of its own to free */
    }
    c->raft_recv(io, m);
}

static void guard_tick(struct raft_io *io)
{
    struct raft *r = io->data;
    ctl_cluster *c = r->data;
    if (installing(r)) {
        r->election_timer_start = io->time(io);
        c->n_install_ticks++;
    }
    c->raft_tick(io);
}

static int guard_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                       raft_io_recv_cb recv)
{
    struct raft *r = io->data;
    ctl_cluster *c = r->data;
    c->raft_recv = recv;
    c->raft_tick = tick;
    return c->io_start(io, msecs, guard_tick, guard_recv);
}

static int guard_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
                      raft_io_send_cb cb)
{
    struct raft *r = io->data;
    ctl_cluster *c = r->data;
    if (m->server_address == NULL) {
        c->n_unaddressed++;
        return RAFT_NOCONNECTION;
    }
    if (m->type == RAFT_IO_APPEND_ENTRIES_RESULT && m->append_entries_result.rejected == 0) {
        uint64_t last = m->append_entries_result.last_log_index;
        uint64_t sure = r->commit_index;
        if (r->log.snapshot.last_index > sure)
            sure = r->log.snapshot.last_index;
        if (c->verified_term == r->current_term && c->verified > sure)
            sure = c->verified;
        if (last > sure && log_term_of(&r->log, last) != r->current_term) {
            /* the message is encoded during the call (the uv backend copies nothing of it
             * later), so a changed copy on the stack is enough */
            struct raft_message copy = *m;
            copy.append_entries_result.last_log_index = sure;
            c->n_match_clamped++;
            return c->io_send(io, req, &copy, cb);
        }
    }
    return c->io_send(io, req, m, cb);
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    (void)status; /* lost with the leadership: the next leader proposes its own */
    ctl_cluster *c = req->data;
    c->barrier_busy = 0;
}

/* ---- open, run, close ---- */

static int mkdir_p(const char *path)
{
    char tmp[CTL_CLUSTER_DIR_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -1;
    for (char *s = tmp + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static void wake_cb(uv_timer_t *t)
{
    (void)t; /* only ends a blocking uv_run */
}

static const ctl_cluster_node *self_node(const ctl_cluster_config *cfg)
{
    for (size_t i = 0; i < cfg->n_nodes; i++)
        if (cfg->nodes[i].id == cfg->node_id)
            return &cfg->nodes[i];
    return NULL;
}

static int check_config(const ctl_cluster_config *cfg, char *err, size_t errlen)
{
    if (cfg->n_nodes == 0 || cfg->n_nodes > CTL_CLUSTER_MAX_NODES)
        return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen, "cluster: 1 to %d nodes",
                        CTL_CLUSTER_MAX_NODES);
    for (size_t i = 0; i < cfg->n_nodes; i++) {
        if (cfg->nodes[i].id == 0 || !cfg->nodes[i].address[0])
            return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen,
                            "cluster: node %zu has no id or address", i + 1);
        for (size_t j = 0; j < i; j++)
            if (cfg->nodes[j].id == cfg->nodes[i].id ||
                strcmp(cfg->nodes[j].address, cfg->nodes[i].address) == 0)
                return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen,
                                "cluster: node %llu is listed twice",
                                (unsigned long long)cfg->nodes[i].id);
    }
    if (!self_node(cfg))
        return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen, "cluster: node_id %llu is not in nodes",
                        (unsigned long long)cfg->node_id);
    if (!cfg->data_dir[0])
        return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen, "cluster: no data_dir");
    if (cfg->election_timeout_ms < 50 || cfg->election_timeout_ms > 60000)
        return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen,
                        "cluster: election_timeout_ms must be 50..60000");
    return CTL_CLUSTER_OK;
}

static void xfer_cb(struct raft_transfer *req);

/* The I/O backend's memory is freed only once the loop has run dry (ctl_cluster_close):
 * libraft 0.15 can still reach it from callbacks that run after this one. */
static void closed_cb(struct raft *r)
{
    ctl_cluster *c = r->data;
    c->closed = 1;
}

int ctl_cluster_open(const ctl_cluster_config *cfg, ctl_db *db, const ctl_cluster_fsm *fsm,
                     const ctl_log *log, ctl_cluster **out, char *err, size_t errlen)
{
    if (!cfg || !db || !fsm || !fsm->apply || !out)
        return CTL_CLUSTER_E_INVAL;
    *out = NULL;
    int rc = check_config(cfg, err, errlen);
    if (rc != CTL_CLUSTER_OK)
        return rc;
    ctl_cluster *c = calloc(1, sizeof *c);
    if (!c)
        return CTL_CLUSTER_E_NOMEM;
    c->cfg = *cfg;
    c->db = db;
    c->fsm_cb = *fsm;
    c->log = log;
    rc = CTL_CLUSTER_E_RAFT;
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    if (mkdir_p(cfg->data_dir) != 0) {
        ctl_errf(err, errlen, "cluster: %s: %s", cfg->data_dir, strerror(errno));
        goto fail;
    }
    snprintf(c->tmp_path, sizeof c->tmp_path, "%s/db-image.tmp", cfg->data_dir);
    if (ctl_db_cluster_applied(db, &c->applied) != CTL_DB_OK) {
        ctl_errf(err, errlen, "cluster: the applied index: %s", ctl_db_errmsg(db));
        goto fail;
    }
    if (sodium_init() < 0 || chain_load(c) != 0) {
        ctl_errf(err, errlen, "cluster: the chain: %s", ctl_db_errmsg(db));
        goto fail;
    }
    int r;
    if ((r = uv_loop_init(&c->loop)) != 0) {
        ctl_errf(err, errlen, "cluster: uv loop: %s", uv_strerror(r));
        goto fail;
    }
    c->loop_ok = 1;
    if ((r = uv_timer_init(&c->loop, &c->wake)) != 0) {
        ctl_errf(err, errlen, "cluster: uv timer: %s", uv_strerror(r));
        goto fail;
    }
    c->timer_ok = 1;
    if ((r = uv_timer_init(&c->loop, &c->chg_timer)) != 0) {
        ctl_errf(err, errlen, "cluster: uv timer: %s", uv_strerror(r));
        goto fail;
    }
    c->chg_timer.data = c;
    c->chg_timer_ok = 1;
    if ((r = raft_uv_tcp_init(&c->transport, &c->loop)) != 0) {
        ctl_errf(err, errlen, "cluster: transport: %s", raft_strerror(r));
        goto fail;
    }
    c->transport_ok = 1;
    if ((r = raft_uv_init(&c->io, &c->loop, cfg->data_dir, &c->transport)) != 0) {
        ctl_errf(err, errlen, "cluster: %s: %s", cfg->data_dir, c->io.errmsg);
        goto fail;
    }
    c->io_ok = 1;
    /* a peer that is down is retried quickly, so a restarted node rejoins within a beat */
    raft_uv_set_connect_retry_delay(&c->io, 100);
    c->fsm.version = 2;
    c->fsm.data = c;
    c->fsm.apply = fsm_apply;
    c->fsm.snapshot = fsm_snapshot;
    c->fsm.restore = fsm_restore;
    c->fsm.snapshot_finalize = fsm_snapshot_finalize;
    const ctl_cluster_node *me = self_node(cfg);
    if (!me)
        goto fail; /* checked above */
    if ((r = raft_init(&c->raft, &c->io, &c->fsm, me->id, me->address)) != 0) {
        ctl_errf(err, errlen, "cluster: raft_init: %s", raft_errmsg(&c->raft));
        goto fail;
    }
    c->raft_ok = 1;
    c->raft.data = c;
    /* after raft_init (which set io.data to the raft), before raft_start (which calls start) */
    c->io_start = c->io.start;
    c->io_send = c->io.send;
    c->io.start = guard_start;
    c->io.send = guard_send;
    raft_set_election_timeout(&c->raft, (unsigned)cfg->election_timeout_ms);
    raft_set_heartbeat_timeout(&c->raft, (unsigned)(cfg->election_timeout_ms / 10));
    raft_set_snapshot_threshold(&c->raft, (unsigned)cfg->snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, (unsigned)cfg->snapshot_trailing);
    /* a node returning from a partition asks before it disrupts the leader with a new term */
    raft_set_pre_vote(&c->raft, true);
    for (size_t i = 0; i < cfg->n_nodes; i++)
        if ((r = raft_configuration_add(&conf, cfg->nodes[i].id, cfg->nodes[i].address,
                                        RAFT_VOTER)) != 0) {
            ctl_errf(err, errlen, "cluster: configuration: %s", raft_strerror(r));
            goto fail;
        }
    /* every node bootstraps the same initial configuration; a data directory that has state
     * refuses (RAFT_CANTBOOTSTRAP) and keeps its own. A joining node bootstraps nothing: with
     * an empty configuration it never stands for election, and it learns the cluster's
     * configuration from the leader that adds it. */
    r = cfg->join ? 0 : raft_bootstrap(&c->raft, &conf);
    if (r != 0 && r != RAFT_CANTBOOTSTRAP) {
        ctl_errf(err, errlen, "cluster: bootstrap: %s", raft_errmsg(&c->raft));
        goto fail;
    }
    if ((r = raft_start(&c->raft)) != 0) {
        ctl_errf(err, errlen, "cluster: start: %s", raft_errmsg(&c->raft));
        goto fail;
    }
    raft_configuration_close(&conf);
    {
        /* the operator's socket; without it the node still runs, only unchangeable */
        char aerr[256] = "";
        if (ctl_cluster_admin_open(c, &c->loop, cfg->data_dir, log, &c->admin, aerr,
                                   sizeof aerr) != CTL_CLUSTER_OK)
            ctl_logf(log, CTL_LOG_WARN, "cluster: no admin socket: %s", aerr);
    }
    ctl_logf(log, CTL_LOG_INFO, "cluster: node %llu at %s, %s, applied %llu",
             (unsigned long long)me->id, me->address,
             cfg->join ? "joining (waits to be added)" : "bootstrapped with the configured nodes",
             (unsigned long long)c->applied);
    *out = c;
    return CTL_CLUSTER_OK;
fail:
    raft_configuration_close(&conf);
    ctl_cluster_close(c);
    return rc;
}

int ctl_cluster_run(ctl_cluster *c, int timeout_ms)
{
    if (!c)
        return CTL_CLUSTER_E_INVAL;
    if (timeout_ms > 0) {
        uv_timer_start(&c->wake, wake_cb, (uint64_t)timeout_ms, 0);
        uv_run(&c->loop, UV_RUN_ONCE);
        uv_timer_stop(&c->wake);
    }
    uv_run(&c->loop, UV_RUN_NOWAIT);
    if (!c->closing && !c->failed && !c->barrier_busy && raft_state(&c->raft) == RAFT_LEADER &&
        c->barrier_term != c->raft.current_term) {
        c->barrier_term = c->raft.current_term;
        memset(&c->barrier, 0, sizeof c->barrier);
        c->barrier.data = c;
        c->barrier_busy = 1; /* before: a callback made at once clears it */
        if (raft_barrier(&c->raft, &c->barrier, barrier_cb) != 0)
            c->barrier_busy = 0;
    }
    return c->diverged ? CTL_CLUSTER_E_DIVERGED : c->failed ? CTL_CLUSTER_E_APPLY : CTL_CLUSTER_OK;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    proposal *p = req->data;
    int st = CTL_CLUSTER_OK;
    if (status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST)
        st = CTL_CLUSTER_E_NOT_LEADER;
    else if (status == RAFT_SHUTDOWN || status == RAFT_CANCELED)
        st = CTL_CLUSTER_E_CLOSED;
    else if (status != 0)
        st = CTL_CLUSTER_E_RAFT;
    /* While closing, the owner is tearing itself down: a callback into it could propose again
     * (raft_apply inside raft_close) or touch what it has freed, so the outcome goes unsaid;
     * an entry that was committed is applied again from the log at the next start. */
    if (p->done && !p->c->closing)
        p->done(p->arg, st, st == CTL_CLUSTER_OK ? req->index : 0);
    free(p);
}

int ctl_cluster_propose(ctl_cluster *c, int type, const uint8_t *payload, size_t len,
                        ctl_cluster_done_fn done, void *arg)
{
    if (!c || type < 1 || type > CTL_ENTRY_TYPE_MAX || (len && !payload) ||
        len > CTL_CLUSTER_ENTRY_MAX)
        return CTL_CLUSTER_E_INVAL;
    if (c->failed)
        return CTL_CLUSTER_E_APPLY;
    if (c->closing)
        return CTL_CLUSTER_E_CLOSED;
    if (raft_state(&c->raft) != RAFT_LEADER)
        return CTL_CLUSTER_E_NOT_LEADER;
    proposal *p = calloc(1, sizeof *p);
    size_t total = (ENTRY_HEADER + len + 7) / 8 * 8;
    uint8_t *data = raft_malloc(total);
    if (!p || !data) {
        free(p);
        raft_free(data);
        return CTL_CLUSTER_E_NOMEM;
    }
    memset(data, 0, total);
    data[0] = ENTRY_FORMAT;
    data[1] = (uint8_t)type;
    data[4] = (uint8_t)(len >> 24);
    data[5] = (uint8_t)(len >> 16);
    data[6] = (uint8_t)(len >> 8);
    data[7] = (uint8_t)len;
    /* what this leader has applied: every node checks its own chain against it */
    ctl_cluster_u64_put(data + 8, c->chain_base);
    ctl_cluster_u64_put(data + 16, c->applied);
    memcpy(data + 24, c->chain, CHAIN_LEN);
    if (len)
        memcpy(data + ENTRY_HEADER, payload, len);
    struct raft_buffer buf = {data, total};
    p->c = c;
    p->done = done;
    p->arg = arg;
    p->req.data = p;
    int r = raft_apply(&c->raft, &p->req, &buf, 1, apply_cb);
    if (r != 0) {
        raft_free(data);
        free(p);
        return r == RAFT_NOTLEADER || r == RAFT_LEADERSHIPLOST ? CTL_CLUSTER_E_NOT_LEADER
                                                               : CTL_CLUSTER_E_RAFT;
    }
    return CTL_CLUSTER_OK;
}

int ctl_cluster_is_leader(ctl_cluster *c)
{
    return c && raft_state(&c->raft) == RAFT_LEADER;
}

void ctl_cluster_get_status(ctl_cluster *c, ctl_cluster_status *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!c)
        return;
    st->node_id = c->cfg.node_id;
    switch (raft_state(&c->raft)) {
    case RAFT_FOLLOWER:
        st->role = CTL_ROLE_FOLLOWER;
        break;
    case RAFT_CANDIDATE:
        st->role = CTL_ROLE_CANDIDATE;
        break;
    case RAFT_LEADER:
        st->role = CTL_ROLE_LEADER;
        break;
    default:
        st->role = CTL_ROLE_UNAVAILABLE;
        break;
    }
    st->term = c->raft.current_term;
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&c->raft, &id, &addr);
    st->leader_id = id;
    if (addr)
        snprintf(st->leader_address, sizeof st->leader_address, "%s", addr);
    st->last_index = raft_last_index(&c->raft);
    st->commit_index = c->raft.commit_index;
    st->log_applied = raft_last_applied(&c->raft);
    st->applied_index = c->applied;
    st->n_applied = c->n_applied;
    st->n_snapshots = c->n_snapshots;
    st->n_restores = c->n_restores;
    st->chain_checked = c->n_checked;
    st->chain_unchecked = c->n_unchecked;
    st->diverged = c->diverged;
    st->commit_clamped = c->n_commit_clamped;
    st->match_clamped = c->n_match_clamped;
    st->install_ticks = c->n_install_ticks;
    st->install_votes = c->n_install_votes;
    st->unaddressed = c->n_unaddressed;
}

void ctl_cluster_test_diverge(ctl_cluster *c)
{
    if (c)
        c->test_diverge = 1;
}

/* Runs the loop until done(c) or about ms milliseconds have passed (the wake timer bounds
 * each turn, so a quiet loop does not block). */
static void run_until(ctl_cluster *c, int (*done)(ctl_cluster *), uint64_t ms)
{
    uint64_t end = uv_now(&c->loop) + ms;
    while (!done(c) && uv_now(&c->loop) < end) {
        uv_timer_start(&c->wake, wake_cb, 10, 0);
        uv_run(&c->loop, UV_RUN_ONCE);
        uv_timer_stop(&c->wake);
        uv_update_time(&c->loop);
    }
}

static int not_leading(ctl_cluster *c)
{
    return raft_state(&c->raft) != RAFT_LEADER;
}

/* Every entry in the log is on disk: no append is in flight. */
static int all_stored(ctl_cluster *c)
{
    return c->raft.last_stored == raft_last_index(&c->raft);
}

/* Before raft_close: a leader hands over (the others need not wait for an election timeout),
 * and the node waits for its appends to reach the disk. libraft 0.15 can release a log entry
 * twice when raft_close cancels an append in flight (a SIGSEGV at shutdown, seen about once
 * in ten loaded runs of test_solana_cluster); both waits are bounded, after them the node
 * closes anyway. */
static void quiesce(ctl_cluster *c)
{
    if (!c->timer_ok)
        return;
    if (c->cfg.handover_on_close && raft_state(&c->raft) == RAFT_LEADER && !c->xfer_busy &&
        c->raft.configuration.n > 1) {
        memset(&c->xfer, 0, sizeof c->xfer);
        c->xfer.data = c;
        if (raft_transfer(&c->raft, &c->xfer, 0, xfer_cb) == 0) {
            c->xfer_busy = 1;
            run_until(c, not_leading, 2u * (uint64_t)c->cfg.election_timeout_ms);
            ctl_logf(c->log, CTL_LOG_INFO, "cluster: stopping: %s",
                     not_leading(c) ? "the leadership is handed over"
                                    : "no voter took the leadership in time");
        }
    }
    run_until(c, all_stored, 2000);
    if (!all_stored(c))
        ctl_logf(c->log, CTL_LOG_WARN, "cluster: stopping with entries %llu..%llu not yet on disk",
                 (unsigned long long)c->raft.last_stored + 1,
                 (unsigned long long)raft_last_index(&c->raft));
}

void ctl_cluster_close(ctl_cluster *c)
{
    if (!c)
        return;
    /* the operator's connections go first: a change that ends in raft_close answers no one */
    ctl_cluster_admin_close(c->admin);
    c->closing = 1;
    c->chg.done = NULL;
    if (c->raft_ok) {
        quiesce(c);
        raft_close(&c->raft, closed_cb);
        while (!c->closed)
            uv_run(&c->loop, UV_RUN_ONCE);
    }
    if (c->timer_ok)
        uv_close((uv_handle_t *)&c->wake, NULL);
    if (c->chg_timer_ok)
        uv_close((uv_handle_t *)&c->chg_timer, NULL);
    if (c->loop_ok)
        uv_run(&c->loop, UV_RUN_DEFAULT); /* the close callbacks of every handle */
    if (c->io_ok)
        raft_uv_close(&c->io);
    if (c->transport_ok)
        raft_uv_tcp_close(&c->transport);
    if (c->loop_ok)
        uv_loop_close(&c->loop);
    ctl_cluster_admin_free(c->admin);
    free(c);
}

/* ---- membership ---- */

const char *ctl_cluster_member_role_name(int role)
{
    switch (role) {
    case CTL_MEMBER_VOTER:
        return "voter";
    case CTL_MEMBER_STANDBY:
        return "standby";
    case CTL_MEMBER_SPARE:
        return "spare";
    default:
        return "unknown";
    }
}

int ctl_cluster_members(ctl_cluster *c, ctl_cluster_member *out, size_t cap, size_t *n,
                        int *changing)
{
    if (!c || !n)
        return CTL_CLUSTER_E_INVAL;
    const struct raft_configuration *conf = &c->raft.configuration;
    *n = 0;
    for (unsigned i = 0; i < conf->n && *n < cap; i++) {
        ctl_cluster_member *m = &out[(*n)++];
        m->id = conf->servers[i].id;
        snprintf(m->address, sizeof m->address, "%s", conf->servers[i].address);
        m->role = conf->servers[i].role;
    }
    if (changing)
        *changing = c->raft.configuration_uncommitted_index != 0;
    return CTL_CLUSTER_OK;
}

/* The server's slot in the configuration (and in the leader's progress array), -1 if none. */
static int member_slot(const ctl_cluster *c, uint64_t id)
{
    for (unsigned i = 0; i < c->raft.configuration.n; i++)
        if (c->raft.configuration.servers[i].id == id)
            return (int)i;
    return -1;
}

/* The refusal on a node that is not the leader: which node is, for the operator to go there. */
static int not_leader(ctl_cluster *c, char *err, size_t errlen)
{
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&c->raft, &id, &addr);
    if (id)
        return ctl_fail(CTL_CLUSTER_E_NOT_LEADER, err, errlen,
                        "node %llu is not the leader: the leader is node %llu at %s; run the "
                        "command on that node",
                        (unsigned long long)c->cfg.node_id, (unsigned long long)id,
                        addr ? addr : "?");
    return ctl_fail(CTL_CLUSTER_E_NOT_LEADER, err, errlen,
                    "node %llu is not the leader and knows of none now (an election may be "
                    "under way); try again in a few seconds",
                    (unsigned long long)c->cfg.node_id);
}

static int change_check(ctl_cluster *c, char *err, size_t errlen)
{
    if (c->failed)
        return ctl_fail(CTL_CLUSTER_E_APPLY, err, errlen, "node %llu has stopped applying",
                        (unsigned long long)c->cfg.node_id);
    if (raft_state(&c->raft) != RAFT_LEADER)
        return not_leader(c, err, errlen);
    if (c->chg.stage != CHG_NONE)
        return ctl_fail(CTL_CLUSTER_E_BUSY, err, errlen,
                        "a change of node %llu is under way; try again when it has ended",
                        (unsigned long long)c->chg.id);
    if (c->raft.configuration_uncommitted_index != 0)
        return ctl_fail(CTL_CLUSTER_E_BUSY, err, errlen,
                        "the last configuration change is not committed yet; try again");
    return CTL_CLUSTER_OK;
}

static void change_end(ctl_cluster *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void change_end(ctl_cluster *c, int status, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uv_timer_stop(&c->chg_timer);
    ctl_logf(c->log, status == CTL_CLUSTER_OK ? CTL_LOG_INFO : CTL_LOG_WARN, "cluster: %s", msg);
    ctl_cluster_change_fn done = c->chg.done;
    void *arg = c->chg.arg;
    memset(&c->chg, 0, sizeof c->chg);
    c->chg.stage = CHG_NONE;
    if (done)
        done(arg, status, msg);
}

static void change_cb(struct raft_change *req, int status);

/* How close to the commit index a standby's log must be to be made a voter: under a steady
 * stream of entries it is always a few behind, and libraft's own catch-up rounds close the
 * rest before the change is appended. */
#define CATCH_UP_SLACK 32

/* The next step of an add: the spare made a standby; then the standby's catch-up, polled on
 * the leader: once the log it holds is within CATCH_UP_SLACK of the commit index, it becomes
 * a voter (libraft
 * still runs its own short catch-up rounds first). */
static void catch_up_cb(uv_timer_t *t)
{
    ctl_cluster *c = t->data;
    if (c->chg.stage == CHG_ADDED) {
        uv_timer_stop(&c->chg_timer);
        c->chg.stage = CHG_STANDBY;
        int r = raft_assign(&c->raft, &c->chg.req, c->chg.id, RAFT_STANDBY, change_cb);
        if (r != 0)
            change_end(c, r == RAFT_NOTLEADER ? CTL_CLUSTER_E_NOT_LEADER : CTL_CLUSTER_E_RAFT,
                       "node %llu is a spare but cannot be made a standby: %s; `mgx cluster add` "
                       "again resumes",
                       (unsigned long long)c->chg.id, raft_strerror(r));
        return;
    }
    if (c->chg.stage != CHG_CATCHUP)
        return;
    if (raft_state(&c->raft) != RAFT_LEADER) {
        change_end(c, CTL_CLUSTER_E_NOT_LEADER,
                   "node %llu lost the leadership while node %llu caught up: it stays a standby; "
                   "run `mgx cluster add` again on the new leader",
                   (unsigned long long)c->cfg.node_id, (unsigned long long)c->chg.id);
        return;
    }
    int slot = member_slot(c, c->chg.id);
    if (slot < 0) {
        change_end(c, CTL_CLUSTER_E_INVAL, "node %llu left the configuration while catching up",
                   (unsigned long long)c->chg.id);
        return;
    }
    uint64_t match = c->raft.leader_state.progress[slot].match_index;
    uint64_t now = uv_now(&c->loop);
    if (match + CATCH_UP_SLACK >= c->raft.commit_index) {
        c->chg.stage = CHG_PROMOTE;
        int r = raft_assign(&c->raft, &c->chg.req, c->chg.id, RAFT_VOTER, change_cb);
        if (r != 0)
            change_end(c, CTL_CLUSTER_E_RAFT, "node %llu: cannot make it a voter: %s",
                       (unsigned long long)c->chg.id, raft_strerror(r));
        return;
    }
    if (now >= c->chg.deadline_ms)
        change_end(c, CTL_CLUSTER_E_RAFT,
                   "node %llu did not catch up within %lld s (it holds entry %llu of %llu): it "
                   "stays a standby; is it running with join = yes? `mgx cluster add` again "
                   "resumes, `mgx cluster remove` takes it out",
                   (unsigned long long)c->chg.id, (long long)c->cfg.catch_up_timeout_ms / 1000,
                   (unsigned long long)match, (unsigned long long)c->raft.commit_index);
}

static void change_cb(struct raft_change *req, int status)
{
    ctl_cluster *c = req->data;
    uint64_t id = c->chg.id, now = uv_now(&c->loop);
    if (status != 0) {
        if (c->chg.stage == CHG_PROMOTE && status != RAFT_LEADERSHIPLOST &&
            status != RAFT_NOTLEADER && status != RAFT_SHUTDOWN && now < c->chg.deadline_ms &&
            raft_state(&c->raft) == RAFT_LEADER) {
            /* libraft found its catch-up rounds too slow: the standby goes on receiving the
             * log; try again once it has caught up anew */
            ctl_logf(c->log, CTL_LOG_INFO, "cluster: node %llu not promoted yet (%s); retrying",
                     (unsigned long long)id, raft_strerror(status));
            c->chg.stage = CHG_CATCHUP;
            uv_timer_start(&c->chg_timer, catch_up_cb, 500, 100);
            return;
        }
        change_end(c,
                   status == RAFT_LEADERSHIPLOST || status == RAFT_NOTLEADER
                       ? CTL_CLUSTER_E_NOT_LEADER
                       : CTL_CLUSTER_E_RAFT,
                   "the change of node %llu failed: %s%s", (unsigned long long)id,
                   raft_strerror(status),
                   status == RAFT_LEADERSHIPLOST || status == RAFT_NOTLEADER
                       ? " (leadership lost; see `mgx cluster status` and run it again on the "
                         "leader)"
                       : "");
        return;
    }
    switch (c->chg.stage) {
    case CHG_ADD:
        c->chg.stage = CHG_ADDED;
        uv_timer_start(&c->chg_timer, catch_up_cb, 0, 100);
        return;
    case CHG_STANDBY:
        c->chg.stage = CHG_CATCHUP;
        uv_timer_start(&c->chg_timer, catch_up_cb, 100, 100);
        return;
    case CHG_PROMOTE:
        change_end(c, CTL_CLUSTER_OK,
                   "node %llu at %s is a voter: it caught up to entry %llu in %llu ms",
                   (unsigned long long)id, c->chg.address,
                   (unsigned long long)c->raft.commit_index,
                   (unsigned long long)(now - c->chg.t0_ms));
        return;
    case CHG_REMOVE:
        change_end(c, CTL_CLUSTER_OK, "node %llu is removed from the configuration",
                   (unsigned long long)id);
        return;
    default:
        return;
    }
}

/* "host:port": letters, digits, '.', '-' and a port 1..65535 (what the transport dials). */
static int address_ok(const char *a)
{
    size_t len = strlen(a);
    const char *colon = strrchr(a, ':');
    if (len == 0 || len >= CTL_CLUSTER_ADDR_MAX || !colon || colon == a)
        return 0;
    for (const char *p = a; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-'))
            return 0;
    if (!colon[1] || strlen(colon + 1) > 5)
        return 0;
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        port = port * 10 + (*p - '0');
    }
    return port >= 1 && port <= 65535;
}

int ctl_cluster_add(ctl_cluster *c, uint64_t id, const char *address, ctl_cluster_change_fn done,
                    void *arg, char *err, size_t errlen)
{
    if (!c || !address)
        return CTL_CLUSTER_E_INVAL;
    if (id == 0)
        return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen, "node ids start at 1");
    if (!address_ok(address))
        return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen, "bad address \"%.64s\": HOST:PORT",
                        address);
    int rc = change_check(c, err, errlen);
    if (rc != CTL_CLUSTER_OK)
        return rc;
    const struct raft_configuration *conf = &c->raft.configuration;
    int slot = member_slot(c, id);
    for (unsigned i = 0; i < conf->n; i++)
        if (conf->servers[i].id != id && strcmp(conf->servers[i].address, address) == 0)
            return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen, "%s is node %llu's address",
                            address, (unsigned long long)conf->servers[i].id);
    if (slot >= 0 && strcmp(conf->servers[slot].address, address) != 0)
        return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen,
                        "node %llu is already in the configuration at %s (ids are never reused)",
                        (unsigned long long)id, conf->servers[slot].address);
    if (slot < 0 && conf->n >= CTL_CLUSTER_MAX_NODES)
        return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen, "the configuration is full (%d nodes)",
                        CTL_CLUSTER_MAX_NODES);
    memset(&c->chg, 0, sizeof c->chg);
    c->chg.id = id;
    snprintf(c->chg.address, sizeof c->chg.address, "%s", address);
    c->chg.req.data = c;
    c->chg.t0_ms = uv_now(&c->loop);
    c->chg.deadline_ms = c->chg.t0_ms + (uint64_t)c->cfg.catch_up_timeout_ms;
    int r = 0;
    if (slot < 0) {
        c->chg.stage = CHG_ADD;
        r = raft_add(&c->raft, &c->chg.req, id, address, change_cb);
    } else if (conf->servers[slot].role == RAFT_SPARE) {
        c->chg.stage = CHG_ADDED; /* resume: make it a standby */
        uv_timer_start(&c->chg_timer, catch_up_cb, 0, 100);
    } else if (conf->servers[slot].role == RAFT_STANDBY) {
        c->chg.stage = CHG_CATCHUP; /* resume: it already receives the log */
        uv_timer_start(&c->chg_timer, catch_up_cb, 0, 100);
    } else {
        c->chg.stage = CHG_NONE;
        if (done) {
            char msg[160];
            snprintf(msg, sizeof msg, "node %llu at %s is already a voter",
                     (unsigned long long)id, address);
            done(arg, CTL_CLUSTER_OK, msg);
        }
        return CTL_CLUSTER_OK;
    }
    if (r != 0) {
        c->chg.stage = CHG_NONE;
        return ctl_fail(CTL_CLUSTER_E_RAFT, err, errlen, "node %llu: %s", (unsigned long long)id,
                        raft_strerror(r));
    }
    c->chg.done = done;
    c->chg.arg = arg;
    ctl_logf(c->log, CTL_LOG_INFO, "cluster: adding node %llu at %s", (unsigned long long)id,
             address);
    return CTL_CLUSTER_OK;
}

static void xfer_cb(struct raft_transfer *req)
{
    ctl_cluster *c = req->data;
    c->xfer_busy = 0;
}

int ctl_cluster_remove(ctl_cluster *c, uint64_t id, ctl_cluster_change_fn done, void *arg,
                       char *err, size_t errlen)
{
    if (!c)
        return CTL_CLUSTER_E_INVAL;
    int rc = change_check(c, err, errlen);
    if (rc != CTL_CLUSTER_OK)
        return rc;
    const struct raft_configuration *conf = &c->raft.configuration;
    int slot = member_slot(c, id);
    if (slot < 0) {
        char list[CTL_CLUSTER_MAX_NODES * 24] = "";
        size_t at = 0;
        for (unsigned i = 0; i < conf->n && at < sizeof list; i++)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%llu", i ? ", " : "",
                                   (unsigned long long)conf->servers[i].id);
        return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen,
                        "node %llu is not in the configuration (its nodes: %s)",
                        (unsigned long long)id, list);
    }
    unsigned voters = 0;
    for (unsigned i = 0; i < conf->n; i++)
        voters += conf->servers[i].role == RAFT_VOTER;
    if (conf->servers[slot].role == RAFT_VOTER && voters <= 1)
        return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen,
                        "node %llu is the last voter: removing it would leave no cluster",
                        (unsigned long long)id);
    if (id == c->cfg.node_id) {
        /* the leader does not remove itself: it hands over, and the new leader removes it */
        if (!c->xfer_busy) {
            memset(&c->xfer, 0, sizeof c->xfer);
            c->xfer.data = c;
            if (raft_transfer(&c->raft, &c->xfer, 0, xfer_cb) == 0)
                c->xfer_busy = 1;
        }
        return ctl_fail(CTL_CLUSTER_E_NOT_LEADER, err, errlen,
                        "node %llu is the leader and does not remove itself: it is handing the "
                        "leadership to another voter; run the command again on the new leader "
                        "(`mgx cluster status` names it)",
                        (unsigned long long)id);
    }
    memset(&c->chg, 0, sizeof c->chg);
    c->chg.id = id;
    c->chg.req.data = c;
    c->chg.t0_ms = uv_now(&c->loop);
    c->chg.stage = CHG_REMOVE;
    int r = raft_remove(&c->raft, &c->chg.req, id, change_cb);
    if (r != 0) {
        c->chg.stage = CHG_NONE;
        return ctl_fail(CTL_CLUSTER_E_RAFT, err, errlen, "node %llu: %s", (unsigned long long)id,
                        raft_strerror(r));
    }
    c->chg.done = done;
    c->chg.arg = arg;
    ctl_logf(c->log, CTL_LOG_INFO, "cluster: removing node %llu", (unsigned long long)id);
    return CTL_CLUSTER_OK;
}

void ctl_cluster_change_detach(ctl_cluster *c, void *arg)
{
    if (c && c->chg.stage != CHG_NONE && c->chg.arg == arg) {
        c->chg.done = NULL;
        c->chg.arg = NULL;
    }
}
