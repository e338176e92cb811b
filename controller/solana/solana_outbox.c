/*
 * The Solana outbox: SQLite rows for settlement transactions and the polling pass that moves
 * them along. The policy, and why it never settles the same trades twice, is in
 * solana_outbox.h. Every write is its own BEGIN IMMEDIATE transaction, committed before any
 * network call whose effect it records, so a kill at any point leaves a row that the next
 * pass handles correctly. In a cluster the decisions are ops of the replicated log, written
 * by ctl_sol_outbox_apply inside the entry's apply transaction (as a savepoint).
 */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "solana/solana_outbox.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crash_point.h"
#include "common/log.h"
#include "mgx/solana_base58.h"
#include "mgx/solana_tx.h"

/* The tables (solana_outbox, solana_outbox_superseded) are the community database's
 * (db/schema.c). */

static const char *const STATE_NAMES[4] = {"built", "submitted", "confirmed", "failed"};

struct ctl_sol_outbox {
    ctl_db *db;
    ctl_sol_outbox_propose_fn propose; /* a cluster's leader: decisions go through the log */
    void *propose_ctx;
};

const char *ctl_sol_outbox_strerror(int code)
{
    switch (code) {
    case CTL_SOLOB_OK: return "success";
    case CTL_SOLOB_E_DB: return "database error";
    case CTL_SOLOB_E_EXISTS: return "the interval's Solana transactions are already stored";
    case CTL_SOLOB_E_INVAL: return "invalid argument";
    case CTL_SOLOB_E_NOTFOUND: return "no such transaction";
    case CTL_SOLOB_E_RPC: return "the Solana RPC node could not be asked";
    default: return "unknown error";
    }
}

const char *ctl_sol_outbox_state_name(ctl_sol_outbox_state s)
{
    return (unsigned)s < 4 ? STATE_NAMES[s] : "?";
}

/* The outbox runs inside `mgx controller` but keeps its own name in the log, so a line about a
 * chain transaction reads "mgx solana ..."; it has no debug lines, so every level is written. */
static const ctl_log SOL_LOG = {"solana", CTL_LOG_DEBUG, NULL, NULL};

static int db_fail(ctl_sol_outbox *ob, const char *what)
{
    ctl_logf(&SOL_LOG, CTL_LOG_ERROR, "%s: %s", what, ctl_db_errmsg(ob->db));
    return CTL_SOLOB_E_DB;
}

/* The outbox's transactions nest as savepoints inside a replicated entry's apply
 * transaction (db/cluster_state.h), and are BEGIN IMMEDIATE / COMMIT otherwise. */
static int begin(ctl_sol_outbox *ob)
{
    return ctl_db_begin(ob->db) == SQLITE_OK ? CTL_SOLOB_OK : db_fail(ob, "BEGIN");
}

static int commit(ctl_sol_outbox *ob)
{
    return ctl_db_end(ob->db, 1) == SQLITE_OK ? CTL_SOLOB_OK : db_fail(ob, "COMMIT");
}

int ctl_sol_outbox_open(ctl_db *db, ctl_sol_outbox **out)
{
    if (!db || !out)
        return CTL_SOLOB_E_INVAL;
    ctl_sol_outbox *ob = calloc(1, sizeof *ob);
    if (!ob)
        return CTL_SOLOB_E_DB;
    ob->db = db;
    *out = ob;
    return CTL_SOLOB_OK;
}

void ctl_sol_outbox_close(ctl_sol_outbox *ob)
{
    free(ob);
}

static void b58(const uint8_t *bytes, size_t n, char *out, size_t cap)
{
    sol_base58_encode(bytes, n, out, cap);
}

int ctl_sol_outbox_add(ctl_sol_outbox *ob, uint64_t interval_id, const sol_batch *b,
                       const uint8_t blockhash[32], uint64_t last_valid_block_height,
                       int64_t now_ms)
{
    if (!b)
        return CTL_SOLOB_E_INVAL;
    size_t n = sol_batch_count(b);
    ctl_sol_outbox_tx *txs = calloc(n ? n : 1, sizeof *txs);
    if (!txs)
        return CTL_SOLOB_E_DB;
    for (size_t i = 0; i < n; i++) {
        const sol_batch_tx *tx = sol_batch_at(b, i);
        txs[i] = (ctl_sol_outbox_tx){tx->bytes, tx->len, tx->signature};
    }
    int rc = ctl_sol_outbox_add_txs(ob, interval_id, txs, n, blockhash, last_valid_block_height,
                                    now_ms);
    free(txs);
    return rc;
}

static int store_add(ctl_sol_outbox *ob, uint64_t interval_id, const ctl_sol_outbox_tx *txs,
                     size_t n, const uint8_t blockhash[32], uint64_t last_valid_block_height,
                     int64_t now_ms);
static int op_propose_add(ctl_sol_outbox *ob, uint64_t interval_id, const ctl_sol_outbox_tx *txs,
                          size_t n, const uint8_t blockhash[32], uint64_t lvbh, int64_t now_ms);

int ctl_sol_outbox_add_txs(ctl_sol_outbox *ob, uint64_t interval_id, const ctl_sol_outbox_tx *txs,
                           size_t n, const uint8_t blockhash[32],
                           uint64_t last_valid_block_height, int64_t now_ms)
{
    if (!ob || (!txs && n) || !blockhash || interval_id > INT64_MAX ||
        last_valid_block_height > INT64_MAX)
        return CTL_SOLOB_E_INVAL;
    for (size_t i = 0; i < n; i++)
        if (txs[i].len < 65 || txs[i].len > SOL_TX_MAX_BYTES ||
            memcmp(txs[i].bytes + 1, txs[i].signature, 64) != 0)
            return CTL_SOLOB_E_INVAL; /* a row's id is its transaction's first signature */
    if (!ob->propose)
        return store_add(ob, interval_id, txs, n, blockhash, last_valid_block_height, now_ms);
    /* a cluster's leader: stored on every node when the log has it, sent only after that */
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(ob->db, "SELECT 1 FROM solana_outbox WHERE interval_id = ?", &st) !=
        SQLITE_OK)
        return db_fail(ob, "outbox lookup");
    sqlite3_bind_int64(st, 1, (int64_t)interval_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return CTL_SOLOB_E_EXISTS;
    if (rc != SQLITE_DONE)
        return db_fail(ob, "outbox lookup");
    return op_propose_add(ob, interval_id, txs, n, blockhash, last_valid_block_height, now_ms);
}

static int store_add(ctl_sol_outbox *ob, uint64_t interval_id, const ctl_sol_outbox_tx *txs,
                     size_t n, const uint8_t blockhash[32], uint64_t last_valid_block_height,
                     int64_t now_ms)
{
    sqlite3_stmt *st = NULL;
    int rc = begin(ob);
    if (rc != CTL_SOLOB_OK)
        return rc;
    if (ctl_db_prepare(ob->db, "SELECT 1 FROM solana_outbox WHERE interval_id = ?", &st) != SQLITE_OK) {
        rc = db_fail(ob, "outbox lookup");
        goto out;
    }
    sqlite3_bind_int64(st, 1, (int64_t)interval_id);
    int exists = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    st = NULL;
    if (exists) {
        rc = CTL_SOLOB_E_EXISTS;
        goto out;
    }
    if (ctl_db_prepare(ob->db, "INSERT INTO solana_outbox (interval_id, part, n_parts, state, tx,"
                           " signature, blockhash, last_valid_block_height, created_ms,"
                           " updated_ms) VALUES (?, ?, ?, 'built', ?, ?, ?, ?, ?, ?)", &st) != SQLITE_OK) {
        rc = db_fail(ob, "outbox insert");
        goto out;
    }
    char bh[SOL_PUBKEY_B58_MAX + 1], sig[SOL_SIGNATURE_B58_MAX + 1];
    b58(blockhash, 32, bh, sizeof bh);
    for (size_t i = 0; i < n; i++) {
        const ctl_sol_outbox_tx *tx = &txs[i];
        b58(tx->signature, 64, sig, sizeof sig);
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, (int64_t)interval_id);
        sqlite3_bind_int64(st, 2, (int64_t)(i + 1));
        sqlite3_bind_int64(st, 3, (int64_t)n);
        sqlite3_bind_blob(st, 4, tx->bytes, (int)tx->len, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, sig, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, bh, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 7, (int64_t)last_valid_block_height);
        sqlite3_bind_int64(st, 8, now_ms);
        sqlite3_bind_int64(st, 9, now_ms);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(ob, "outbox insert");
            goto out;
        }
    }
    sqlite3_finalize(st);
    rc = commit(ob); /* a failed commit rolled back already */
    if (rc == CTL_SOLOB_OK)
        ctl_logf(&SOL_LOG, CTL_LOG_INFO, "interval %" PRIu64 ": %zu transaction(s) built",
                 interval_id, n);
    return rc;
out:
    sqlite3_finalize(st);
    ctl_db_rollback(ob->db);
    return rc;
}

/* One open row as the poll reads it. */
typedef struct {
    int64_t id;
    int64_t interval_id;
    int part, n_parts;
    ctl_sol_outbox_state state;
    uint8_t tx[SOL_TX_MAX_BYTES];
    size_t len;
    char sig[SOL_SIGNATURE_B58_MAX + 1];
    char blockhash[SOL_PUBKEY_B58_MAX + 1];
    uint64_t lvbh;
    int64_t attempts, generation, rejected, last_sent_ms;
} open_row;

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

/* Reads the open row with the smallest id above after_id; 1 if found, 0 if none, < 0 on error. */
static int next_open(ctl_sol_outbox *ob, int64_t after_id, open_row *r)
{
    sqlite3_stmt *st;
    if (ctl_db_prepare(ob->db, "SELECT id, interval_id, part, n_parts, state, tx, signature, blockhash,"
                           " last_valid_block_height, attempts, generation, rejected,"
                           " COALESCE(last_sent_ms, 0) FROM solana_outbox"
                           " WHERE state IN ('built','submitted') AND id > ? ORDER BY id LIMIT 1", &st) != SQLITE_OK)
        return db_fail(ob, "outbox scan");
    sqlite3_bind_int64(st, 1, after_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r->id = sqlite3_column_int64(st, 0);
        r->interval_id = sqlite3_column_int64(st, 1);
        r->part = sqlite3_column_int(st, 2);
        r->n_parts = sqlite3_column_int(st, 3);
        const char *s = (const char *)sqlite3_column_text(st, 4);
        r->state = s && strcmp(s, "built") == 0 ? CTL_SOLOB_BUILT : CTL_SOLOB_SUBMITTED;
        int n = sqlite3_column_bytes(st, 5);
        r->len = n > 0 && n <= SOL_TX_MAX_BYTES ? (size_t)n : 0;
        if (r->len)
            memcpy(r->tx, sqlite3_column_blob(st, 5), r->len);
        copy_text(r->sig, sizeof r->sig, sqlite3_column_text(st, 6));
        copy_text(r->blockhash, sizeof r->blockhash, sqlite3_column_text(st, 7));
        r->lvbh = (uint64_t)sqlite3_column_int64(st, 8);
        r->attempts = sqlite3_column_int64(st, 9);
        r->generation = sqlite3_column_int64(st, 10);
        r->rejected = sqlite3_column_int64(st, 11);
        r->last_sent_ms = sqlite3_column_int64(st, 12);
        rc = 1;
    } else {
        rc = rc == SQLITE_DONE ? 0 : db_fail(ob, "outbox scan");
    }
    sqlite3_finalize(st);
    return rc;
}

/* UPDATE ... WHERE id = r->id inside BEGIN IMMEDIATE / COMMIT. Text args are "s", integer
 * args "i", in the order of the ?s before the id. */
static int update(ctl_sol_outbox *ob, const open_row *r, const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    int rc = begin(ob);
    if (rc != CTL_SOLOB_OK)
        return rc;
    if (ctl_db_prepare(ob->db, sql, &st) != SQLITE_OK) {
        rc = db_fail(ob, sql);
        goto out;
    }
    va_list ap;
    va_start(ap, types);
    int i = 1;
    for (const char *t = types; *t; t++, i++) {
        if (*t == 's')
            sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
    }
    va_end(ap);
    sqlite3_bind_int64(st, i, r->id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(ob, sql);
        goto out;
    }
    sqlite3_finalize(st);
    return commit(ob); /* a failed commit rolled back already */
out:
    sqlite3_finalize(st);
    ctl_db_rollback(ob->db);
    return rc;
}

/* A preflight refusal other than an unknown blockhash or a duplicate means the instructions
 * themselves fail (e.g. an allowance too small); such a transaction is not rebuilt once it
 * expires. */
static int is_rejection(const char *err)
{
    static const char *const benign[] = {"lockhash not found", "BlockhashNotFound",
                                         "already been processed", "AlreadyProcessed"};
    for (size_t i = 0; i < sizeof benign / sizeof benign[0]; i++)
        if (strstr(err, benign[i]))
            return 0;
    return 1;
}

/* Records the send, commits, then sends the row's bytes. */
static int send_row(ctl_sol_outbox *ob, ctl_sol_rpc *rpc, open_row *r, int64_t now_ms)
{
    int rc = update(ob, r,
                    "UPDATE solana_outbox SET state = 'submitted', attempts = attempts + 1,"
                    " last_sent_ms = ?, updated_ms = ? WHERE id = ?",
                    "ii", now_ms, now_ms);
    if (rc != CTL_SOLOB_OK)
        return rc;
    ctl_crash_point("solana.before_send");
    char sig[89];
    int sr = ctl_sol_rpc_send(rpc, r->tx, r->len, sig);
    ctl_crash_point("solana.after_send");
    const char *err = ctl_sol_rpc_last_error(rpc);
    if (sr == CTL_SOLRPC_OK) {
        ctl_logf(&SOL_LOG, CTL_LOG_INFO,
                 "interval %" PRId64 " part %d/%d sent (attempt %" PRId64 ") %s", r->interval_id,
                 r->part, r->n_parts, r->attempts + 1, r->sig);
        return update(ob, r, "UPDATE solana_outbox SET rejected = 0, last_error = NULL WHERE id = ?",
                      "");
    }
    ctl_logf(&SOL_LOG, CTL_LOG_WARN, "interval %" PRId64 " part %d/%d: send failed: %s",
             r->interval_id, r->part, r->n_parts, err);
    int64_t rejected = sr == CTL_SOLRPC_E_RPC && is_rejection(err);
    return update(ob, r, "UPDATE solana_outbox SET rejected = ?, last_error = ? WHERE id = ?",
                  "is", rejected, err);
}

/* ---- the decisions a cluster replicates (solana_outbox.h, docs/cluster.md) ----
 *
 * An op is a byte string: a kind byte, then big-endian fields:
 *  ADD     interval u64, blockhash [32], lvbh u64, now_ms u64, n u32, n x (len u16, tx bytes)
 *  REBUILD interval u64, part u32, old signature [64], blockhash [32], lvbh u64, now_ms u64,
 *          len u16, tx bytes (its first signature is the new one)
 *  FINISH  interval u64, part u32, signature [64], state u8, now_ms u64, len u16, error text
 * Signatures are the transactions' first (fee payer's): the bytes after the count byte. */
enum { OP_ADD = 1, OP_REBUILD = 2, OP_FINISH = 3 };
#define OP_MAX (4u << 20) /* what one replicated entry may carry (cluster/cluster.h) */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int bad;
} op_buf;

static void op_put(op_buf *b, const void *v, size_t n)
{
    if (b->bad || n > OP_MAX - b->len) {
        b->bad = 1;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->bad = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, v, n);
    b->len += n;
}

static void op_u(op_buf *b, uint64_t v, int bytes)
{
    uint8_t x[8];
    for (int i = 0; i < bytes; i++)
        x[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    op_put(b, x, (size_t)bytes);
}

/* Hands an op to the proposer; CTL_SOLOB_PROPOSED, or CTL_SOLOB_E_INVAL when it could not be
 * encoded (too big) or proposed. The buffer is freed. */
static int op_propose(ctl_sol_outbox *ob, op_buf *b)
{
    int rc = !b->bad && ob->propose(ob->propose_ctx, b->p, b->len) == 0 ? CTL_SOLOB_PROPOSED
                                                                         : CTL_SOLOB_E_INVAL;
    if (b->bad)
        ctl_logf(&SOL_LOG, CTL_LOG_ERROR, "a decision too big to replicate (%zu bytes so far)",
                 b->len);
    free(b->p);
    return rc;
}

typedef struct {
    const uint8_t *p;
    size_t len, at;
    int bad;
} op_rd;

static uint64_t op_get(op_rd *r, int bytes)
{
    uint64_t v = 0;
    if (r->bad || r->len - r->at < (size_t)bytes) {
        r->bad = 1;
        return 0;
    }
    for (int i = 0; i < bytes; i++)
        v = v << 8 | r->p[r->at++];
    return v;
}

static const uint8_t *op_bytes(op_rd *r, size_t n)
{
    if (r->bad || r->len - r->at < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->at;
    r->at += n;
    return p;
}

/* A row's signature changes only when it still is old_sig (so of two rebuilds of the same
 * transaction decided by two leaders, the first in the log wins and the second changes
 * nothing): the old one goes to solana_outbox_superseded and the row becomes built again. */
static int store_rebuild(ctl_sol_outbox *ob, int64_t interval_id, int64_t part,
                         const char *old_sig, const uint8_t *tx, size_t len, const char *bh,
                         uint64_t lvbh, int64_t now_ms, int *changed)
{
    *changed = 0;
    sqlite3_stmt *st = NULL;
    int rc = begin(ob);
    if (rc != CTL_SOLOB_OK)
        return rc;
    if (ctl_db_prepare(ob->db, "INSERT INTO solana_outbox_superseded (signature, outbox_id,"
                               " blockhash, last_valid_block_height, superseded_ms)"
                               " SELECT signature, id, blockhash, last_valid_block_height, ?"
                               " FROM solana_outbox WHERE interval_id = ? AND part = ? AND"
                               " signature = ? AND state IN ('built','submitted')",
                       &st) != SQLITE_OK)
        goto db_error;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, interval_id);
    sqlite3_bind_int64(st, 3, part);
    sqlite3_bind_text(st, 4, old_sig, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto db_error;
    sqlite3_finalize(st);
    st = NULL;
    if (ctl_db_changes(ob->db) == 0) { /* rebuilt already, or final: nothing to do */
        ctl_db_rollback(ob->db);
        return CTL_SOLOB_OK;
    }
    char sig[SOL_SIGNATURE_B58_MAX + 1];
    b58(tx + 1, 64, sig, sizeof sig);
    if (ctl_db_prepare(ob->db, "UPDATE solana_outbox SET state = 'built', tx = ?, signature = ?,"
                               " blockhash = ?, last_valid_block_height = ?,"
                               " generation = generation + 1, updated_ms = ?"
                               " WHERE interval_id = ? AND part = ?",
                       &st) != SQLITE_OK)
        goto db_error;
    sqlite3_bind_blob(st, 1, tx, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sig, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, bh, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (int64_t)lvbh);
    sqlite3_bind_int64(st, 5, now_ms);
    sqlite3_bind_int64(st, 6, interval_id);
    sqlite3_bind_int64(st, 7, part);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto db_error;
    sqlite3_finalize(st);
    rc = commit(ob);
    *changed = rc == CTL_SOLOB_OK;
    return rc;
db_error:
    sqlite3_finalize(st);
    rc = db_fail(ob, "outbox rebuild");
    ctl_db_rollback(ob->db);
    return rc;
}

/* A final state for the row, only while it still has sig and is open. */
static int store_finish(ctl_sol_outbox *ob, int64_t interval_id, int64_t part, const char *sig,
                        ctl_sol_outbox_state s, const char *err, int64_t now_ms)
{
    sqlite3_stmt *st = NULL;
    int rc = begin(ob);
    if (rc != CTL_SOLOB_OK)
        return rc;
    if (ctl_db_prepare(ob->db, "UPDATE solana_outbox SET state = ?, last_error = COALESCE(?,"
                               " last_error), updated_ms = ? WHERE interval_id = ? AND part = ?"
                               " AND signature = ? AND state IN ('built','submitted')",
                       &st) != SQLITE_OK) {
        rc = db_fail(ob, "outbox finish");
        ctl_db_rollback(ob->db);
        return rc;
    }
    sqlite3_bind_text(st, 1, STATE_NAMES[s], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, err, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_int64(st, 4, interval_id);
    sqlite3_bind_int64(st, 5, part);
    sqlite3_bind_text(st, 6, sig, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(ob, "outbox finish");
        sqlite3_finalize(st);
        ctl_db_rollback(ob->db);
        return rc;
    }
    sqlite3_finalize(st);
    return commit(ob);
}

static int finish(ctl_sol_outbox *ob, open_row *r, ctl_sol_outbox_state s, const char *err,
                  int64_t now_ms)
{
    ctl_logf(&SOL_LOG, s == CTL_SOLOB_CONFIRMED ? CTL_LOG_INFO : CTL_LOG_ERROR,
             "interval %" PRId64 " part %d/%d %s %s%s%s", r->interval_id, r->part, r->n_parts,
             STATE_NAMES[s], r->sig, err ? ": " : "", err ? err : "");
    /* in a cluster the final state is a decision for every node (so that a later leader
     * neither resends nor asks about it again), written when applied like the others: until
     * then each pass asks the chain again and proposes it again (a second copy changes
     * nothing), so every node's row ends final even if this leadership ends first */
    if (ob->propose) {
        uint8_t raw[64];
        op_buf b = {0};
        size_t el = err ? strnlen(err, 255) : 0;
        if (sol_base58_decode(r->sig, raw, sizeof raw) != SOL_OK)
            return CTL_SOLOB_E_INVAL;
        op_u(&b, OP_FINISH, 1);
        op_u(&b, (uint64_t)r->interval_id, 8);
        op_u(&b, (uint64_t)r->part, 4);
        op_put(&b, raw, 64);
        op_u(&b, (uint64_t)s, 1);
        op_u(&b, (uint64_t)now_ms, 8);
        op_u(&b, el, 2);
        op_put(&b, err ? err : "", el);
        op_propose(ob, &b);
        return CTL_SOLOB_OK;
    }
    return store_finish(ob, r->interval_id, r->part, r->sig, s, err, now_ms);
}

/* The old transaction expired unseen: same instructions, fresh blockhash, new signature.
 * CTL_SOLOB_OK when the row now holds the new transaction (send it), CTL_SOLOB_PROPOSED when
 * a cluster's leader proposed it (it is sent once the entry is applied: no node ever sends a
 * signature the log does not hold). */
static int rebuild(ctl_sol_outbox *ob, ctl_sol_rpc *rpc, open_row *r,
                   const uint8_t *const *sks, size_t n_sks, int64_t now_ms)
{
    uint8_t hash[32];
    uint64_t lvbh;
    if (ctl_sol_rpc_latest_blockhash(rpc, "finalized", hash, &lvbh) != CTL_SOLRPC_OK) {
        ctl_logf(&SOL_LOG, CTL_LOG_WARN, "no blockhash to rebuild with: %s",
                 ctl_sol_rpc_last_error(rpc));
        return CTL_SOLOB_E_RPC;
    }
    uint8_t tx[SOL_TX_MAX_BYTES];
    memcpy(tx, r->tx, r->len);
    if (sol_tx_resign_keys(tx, r->len, hash, sks, n_sks) != SOL_OK || lvbh > INT64_MAX) {
        ctl_logf(&SOL_LOG, CTL_LOG_ERROR,
                 "interval %" PRId64 " part %d: cannot re-sign (wrong key?)", r->interval_id,
                 r->part);
        return CTL_SOLOB_E_INVAL;
    }
    char new_sig[sizeof r->sig], bh[SOL_PUBKEY_B58_MAX + 1];
    b58(tx + 1, 64, new_sig, sizeof new_sig);
    b58(hash, 32, bh, sizeof bh);
    if (ob->propose) {
        uint8_t raw[64];
        op_buf b = {0};
        if (sol_base58_decode(r->sig, raw, sizeof raw) != SOL_OK)
            return CTL_SOLOB_E_INVAL;
        op_u(&b, OP_REBUILD, 1);
        op_u(&b, (uint64_t)r->interval_id, 8);
        op_u(&b, (uint64_t)r->part, 4);
        op_put(&b, raw, 64);
        op_put(&b, hash, 32);
        op_u(&b, lvbh, 8);
        op_u(&b, (uint64_t)now_ms, 8);
        op_u(&b, r->len, 2);
        op_put(&b, tx, r->len);
        int rc = op_propose(ob, &b);
        if (rc == CTL_SOLOB_PROPOSED)
            ctl_logf(&SOL_LOG, CTL_LOG_WARN,
                     "interval %" PRId64 " part %d/%d: %s expired unseen; rebuild as %s "
                     "proposed",
                     r->interval_id, r->part, r->n_parts, r->sig, new_sig);
        return rc;
    }
    int changed;
    int rc = store_rebuild(ob, r->interval_id, r->part, r->sig, tx, r->len, bh, lvbh, now_ms,
                           &changed);
    if (rc != CTL_SOLOB_OK)
        return rc;
    ctl_logf(&SOL_LOG, CTL_LOG_WARN,
             "interval %" PRId64 " part %d/%d: %s expired unseen; rebuilt as %s", r->interval_id,
             r->part, r->n_parts, r->sig, new_sig);
    memcpy(r->tx, tx, r->len);
    memcpy(r->sig, new_sig, sizeof new_sig);
    memcpy(r->blockhash, bh, sizeof bh);
    r->lvbh = lvbh;
    return CTL_SOLOB_OK;
}
/* A submitted row: ask the chain, then confirm, fail, wait, resend or rebuild. height is the
 * finalized block height read before this status query. */
static int check_row(ctl_sol_outbox *ob, ctl_sol_rpc *rpc, open_row *r, uint64_t height,
                     const uint8_t *const *sks, size_t n_sks, int64_t now_ms,
                     ctl_sol_poll_stats *s)
{
    ctl_sol_status st;
    if (ctl_sol_rpc_status(rpc, r->sig, &st) != CTL_SOLRPC_OK) {
        ctl_logf(&SOL_LOG, CTL_LOG_WARN, "status of %s unknown: %s", r->sig,
                 ctl_sol_rpc_last_error(rpc));
        s->pending++;
        return CTL_SOLOB_OK;
    }
    if (st == CTL_SOLSTAT_CONFIRMED) {
        s->confirmed++;
        return finish(ob, r, CTL_SOLOB_CONFIRMED, NULL, now_ms);
    }
    if (st == CTL_SOLSTAT_FAILED) {
        s->failed++;
        return finish(ob, r, CTL_SOLOB_FAILED, ctl_sol_rpc_last_error(rpc), now_ms);
    }
    if (st == CTL_SOLSTAT_PROCESSED || height <= r->lvbh) {
        s->pending++;
        if (st == CTL_SOLSTAT_UNKNOWN && now_ms - r->last_sent_ms >= CTL_SOLOB_RESEND_MS) {
            s->resent++;
            return send_row(ob, rpc, r, now_ms);
        }
        return CTL_SOLOB_OK;
    }
    /* Expired, and unknown to a chain whose every block up to lastValidBlockHeight is final. */
    if (r->rejected) {
        s->failed++;
        return finish(ob, r, CTL_SOLOB_FAILED, "refused by the node and expired", now_ms);
    }
    int rc = rebuild(ob, rpc, r, sks, n_sks, now_ms);
    if (rc == CTL_SOLOB_PROPOSED) {
        s->rebuilt++;
        s->pending++;
        return CTL_SOLOB_OK; /* sent by a later pass, once the log holds it */
    }
    if (rc != CTL_SOLOB_OK)
        return rc == CTL_SOLOB_E_DB ? rc : CTL_SOLOB_OK;
    s->rebuilt++;
    s->sent++;
    s->pending++;
    return send_row(ob, rpc, r, now_ms);
}

int ctl_sol_outbox_poll(ctl_sol_outbox *ob, ctl_sol_rpc *rpc, const uint8_t secret_key[64],
                        int64_t now_ms, ctl_sol_poll_stats *stats)
{
    return ctl_sol_outbox_poll_keys(ob, rpc, &secret_key, secret_key ? 1 : 0, now_ms, stats);
}

int ctl_sol_outbox_poll_keys(ctl_sol_outbox *ob, ctl_sol_rpc *rpc, const uint8_t *const *sks,
                             size_t n_sks, int64_t now_ms, ctl_sol_poll_stats *stats)
{
    if (!ob || !rpc || !sks || n_sks == 0)
        return CTL_SOLOB_E_INVAL;
    ctl_sol_poll_stats s = {0, 0, 0, 0, 0, 0};
    uint64_t height;
    if (ctl_sol_rpc_block_height(rpc, "finalized", &height) != CTL_SOLRPC_OK) {
        ctl_logf(&SOL_LOG, CTL_LOG_WARN, "block height unknown: %s", ctl_sol_rpc_last_error(rpc));
        return CTL_SOLOB_E_RPC;
    }
    open_row *r = malloc(sizeof *r);
    if (!r)
        return CTL_SOLOB_E_DB;
    int rc = CTL_SOLOB_OK, found;
    int64_t after = 0;
    while (rc == CTL_SOLOB_OK && (found = next_open(ob, after, r)) == 1) {
        after = r->id;
        if (r->state == CTL_SOLOB_BUILT) {
            s.sent++;
            s.pending++;
            rc = send_row(ob, rpc, r, now_ms);
        } else {
            rc = check_row(ob, rpc, r, height, sks, n_sks, now_ms, &s);
        }
    }
    if (rc == CTL_SOLOB_OK && found < 0)
        rc = found;
    free(r);
    if (stats)
        *stats = s;
    return rc;
}

int ctl_sol_outbox_get(ctl_sol_outbox *ob, uint64_t interval_id, uint32_t part,
                       ctl_sol_outbox_row *row)
{
    if (!ob || !row || interval_id > INT64_MAX)
        return CTL_SOLOB_E_INVAL;
    sqlite3_stmt *st;
    if (ctl_db_prepare(ob->db, "SELECT n_parts, state, signature, attempts, generation,"
                           " last_valid_block_height, COALESCE(last_error, '') FROM solana_outbox"
                           " WHERE interval_id = ? AND part = ?", &st) != SQLITE_OK)
        return db_fail(ob, "outbox get");
    sqlite3_bind_int64(st, 1, (int64_t)interval_id);
    sqlite3_bind_int64(st, 2, part);
    int rc = CTL_SOLOB_E_NOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        row->interval_id = interval_id;
        row->part = part;
        row->n_parts = (uint32_t)sqlite3_column_int(st, 0);
        const char *s = (const char *)sqlite3_column_text(st, 1);
        row->state = CTL_SOLOB_FAILED;
        for (int i = 0; i < 4; i++)
            if (s && strcmp(s, STATE_NAMES[i]) == 0)
                row->state = (ctl_sol_outbox_state)i;
        copy_text(row->signature, sizeof row->signature, sqlite3_column_text(st, 2));
        row->attempts = (uint32_t)sqlite3_column_int(st, 3);
        row->generation = (uint32_t)sqlite3_column_int(st, 4);
        row->last_valid_block_height = (uint64_t)sqlite3_column_int64(st, 5);
        copy_text(row->last_error, sizeof row->last_error, sqlite3_column_text(st, 6));
        rc = CTL_SOLOB_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Counts by state of what st selects (bound already); the statement is finalized. */
static int count_states(ctl_sol_outbox *ob, sqlite3_stmt *st, size_t counts[4])
{
    memset(counts, 0, 4 * sizeof counts[0]);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        for (int i = 0; i < 4; i++)
            if (s && strcmp(s, STATE_NAMES[i]) == 0)
                counts[i] = (size_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? CTL_SOLOB_OK : db_fail(ob, "outbox counts");
}

int ctl_sol_outbox_counts(ctl_sol_outbox *ob, uint64_t interval_id, size_t counts[4])
{
    if (!ob || !counts || interval_id > INT64_MAX)
        return CTL_SOLOB_E_INVAL;
    sqlite3_stmt *st;
    if (ctl_db_prepare(ob->db, "SELECT state, COUNT(*) FROM solana_outbox WHERE interval_id = ?"
                               " GROUP BY state",
                       &st) != SQLITE_OK)
        return db_fail(ob, "outbox counts");
    sqlite3_bind_int64(st, 1, (int64_t)interval_id);
    return count_states(ob, st, counts);
}

int ctl_sol_outbox_totals(ctl_sol_outbox *ob, size_t counts[4])
{
    if (!ob || !counts)
        return CTL_SOLOB_E_INVAL;
    sqlite3_stmt *st;
    if (ctl_db_prepare(ob->db, "SELECT state, COUNT(*) FROM solana_outbox GROUP BY state", &st) !=
        SQLITE_OK)
        return db_fail(ob, "outbox counts");
    return count_states(ob, st, counts);
}

static int op_propose_add(ctl_sol_outbox *ob, uint64_t interval_id, const ctl_sol_outbox_tx *txs,
                          size_t n, const uint8_t blockhash[32], uint64_t lvbh, int64_t now_ms)
{
    op_buf b = {0};
    op_u(&b, OP_ADD, 1);
    op_u(&b, interval_id, 8);
    op_put(&b, blockhash, 32);
    op_u(&b, lvbh, 8);
    op_u(&b, (uint64_t)now_ms, 8);
    op_u(&b, n, 4);
    for (size_t i = 0; i < n; i++) {
        op_u(&b, txs[i].len, 2);
        op_put(&b, txs[i].bytes, txs[i].len);
    }
    return op_propose(ob, &b);
}

void ctl_sol_outbox_replicate(ctl_sol_outbox *ob, ctl_sol_outbox_propose_fn fn, void *ctx)
{
    ob->propose = fn;
    ob->propose_ctx = ctx;
}

int ctl_sol_outbox_apply(ctl_sol_outbox *ob, const uint8_t *p, size_t len)
{
    if (!ob || (!p && len))
        return CTL_SOLOB_E_INVAL;
    if (len == 0)
        return CTL_SOLOB_OK; /* nothing for the outbox (a block with nothing on chain) */
    op_rd r = {p, len, 0, 0};
    int kind = (int)op_get(&r, 1);
    uint64_t interval_id = op_get(&r, 8);
    if (r.bad || interval_id > INT64_MAX)
        return CTL_SOLOB_E_INVAL;
    if (kind == OP_ADD) {
        const uint8_t *hash = op_bytes(&r, 32);
        uint64_t lvbh = op_get(&r, 8);
        int64_t now = (int64_t)op_get(&r, 8);
        uint64_t n = op_get(&r, 4);
        if (r.bad || lvbh > INT64_MAX || n > len / 67)
            return CTL_SOLOB_E_INVAL;
        ctl_sol_outbox_tx *txs = calloc(n ? n : 1, sizeof *txs);
        if (!txs)
            return CTL_SOLOB_E_DB;
        for (uint64_t i = 0; i < n && !r.bad; i++) {
            size_t tl = (size_t)op_get(&r, 2);
            const uint8_t *tx = op_bytes(&r, tl);
            if (tl < 65 || tl > SOL_TX_MAX_BYTES)
                r.bad = 1;
            else if (tx)
                txs[i] = (ctl_sol_outbox_tx){tx, tl, tx + 1};
        }
        int rc = r.bad || r.at != len
                     ? CTL_SOLOB_E_INVAL
                     : store_add(ob, interval_id, txs, (size_t)n, hash, lvbh, now);
        free(txs);
        /* stored before (two leaders handed over the same block): the first entry's
         * transactions stay, the second's were never sent */
        return rc == CTL_SOLOB_E_EXISTS ? CTL_SOLOB_OK : rc;
    }
    int64_t part = (int64_t)op_get(&r, 4);
    const uint8_t *sig_raw = op_bytes(&r, 64);
    char sig[SOL_SIGNATURE_B58_MAX + 1];
    if (r.bad)
        return CTL_SOLOB_E_INVAL;
    b58(sig_raw, 64, sig, sizeof sig);
    if (kind == OP_REBUILD) {
        const uint8_t *hash = op_bytes(&r, 32);
        uint64_t lvbh = op_get(&r, 8);
        int64_t now = (int64_t)op_get(&r, 8);
        size_t tl = (size_t)op_get(&r, 2);
        const uint8_t *tx = op_bytes(&r, tl);
        if (r.bad || r.at != len || tl < 65 || tl > SOL_TX_MAX_BYTES || lvbh > INT64_MAX)
            return CTL_SOLOB_E_INVAL;
        char bh[SOL_PUBKEY_B58_MAX + 1];
        b58(hash, 32, bh, sizeof bh);
        int changed;
        return store_rebuild(ob, (int64_t)interval_id, part, sig, tx, tl, bh, lvbh, now,
                             &changed);
    }
    if (kind == OP_FINISH) {
        int state = (int)op_get(&r, 1);
        int64_t now = (int64_t)op_get(&r, 8);
        size_t el = (size_t)op_get(&r, 2);
        const uint8_t *e = op_bytes(&r, el);
        if (r.bad || r.at != len ||
            (state != CTL_SOLOB_CONFIRMED && state != CTL_SOLOB_FAILED))
            return CTL_SOLOB_E_INVAL;
        char err[256];
        memcpy(err, e, el < sizeof err ? el : sizeof err - 1);
        err[el < sizeof err ? el : sizeof err - 1] = 0;
        return store_finish(ob, (int64_t)interval_id, part, sig, (ctl_sol_outbox_state)state,
                            el ? err : NULL, now);
    }
    return CTL_SOLOB_E_INVAL;
}
