/*
 * The settlement ledger in SQLite (ledger_store.h): exactly-once settlement of an interval and
 * the audit of everything stored. The pure work (reconciliation, encodings, Merkle log,
 * signatures) is settlement/'s; this file only orders it around one SQLite transaction.
 */
#include "settle/ledger_store.h"

#include "common/errbuf.h"

#include <sqlite3.h>

#include "common/crash_point.h"
#include "common/file.h"
#include "mgx/merkle.h"

#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ctl_ledger_key *ctl_ledger_key_load(const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    if (ctl_read_file(path, 4096, &text, &len) != 0) {
        ctl_errf(err, errlen, "%s: cannot read the key file", path);
        return NULL;
    }
    ctl_ledger_key *k = sodium_malloc(sizeof *k);
    if (k && stl_skey_parse(text, k->name, k->sk) != STL_OK) {
        ctl_errf(err, errlen, "%s: not a signer key (PRIVATE+KEY+<name>+<id>+<key>)", path);
        sodium_free(k);
        k = NULL;
    }
    sodium_memzero(text, len);
    free(text);
    return k;
}

void ctl_ledger_key_free(ctl_ledger_key *k)
{
    if (k)
        sodium_free(k); /* sodium_free wipes */
}

/* Runs sql (no rows); on failure err says what SQLite said. */
static int exec(ctl_db *db, const char *sql, char *err, size_t errlen)
{
    if (ctl_db_exec(db, sql) != SQLITE_OK) {
        ctl_errf(err, errlen, "SQLite: %s", ctl_db_errmsg(db));
        return CTL_LEDGER_E_DB;
    }
    return CTL_LEDGER_OK;
}

int ctl_ledger_node(void *ctx, unsigned level, uint64_t index, uint8_t out[STL_HASH_LEN])
{
    ctl_db *db = ctx;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (ctl_db_prepare(db, "SELECT hash FROM ledger_node WHERE level=?1 AND idx=?2", &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)index);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == STL_HASH_LEN) {
        memcpy(out, sqlite3_column_blob(st, 0), STL_HASH_LEN);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* One interval's transactions, encoded. */
typedef struct {
    size_t n;
    uint8_t (*enc)[STL_TX_MAX_LEN];
    size_t *len;
    uint8_t (*leaf)[STL_HASH_LEN];
    uint8_t (*id)[STL_ID_LEN];
    int64_t *participant; /* position's participant bits, or INT64_MIN for a trade */
} tx_set;

static void tx_set_free(tx_set *s)
{
    free(s->enc);
    free(s->len);
    free(s->leaf);
    free(s->id);
    free(s->participant);
    memset(s, 0, sizeof *s);
}

/* Encodes the reconciler's result as the interval's transactions: trades, then positions. */
static int build_txs(const stl_reconciler *r, int64_t interval_id, tx_set *s)
{
    size_t nt, np;
    const stl_settled_trade *t = stl_reconciled_trades(r, &nt);
    const stl_position *p = stl_reconciled_positions(r, &np);
    size_t n = nt + np, m = n ? n : 1;
    s->n = n;
    s->enc = malloc(m * sizeof *s->enc);
    s->len = malloc(m * sizeof *s->len);
    s->leaf = malloc(m * sizeof *s->leaf);
    s->id = malloc(m * sizeof *s->id);
    s->participant = malloc(m * sizeof *s->participant);
    if (!s->enc || !s->len || !s->leaf || !s->id || !s->participant)
        return CTL_LEDGER_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        stl_tx tx;
        memset(&tx, 0, sizeof tx);
        tx.interval_id = interval_id;
        tx.seq = (uint32_t)i;
        if (i < nt) {
            tx.kind = STL_TX_TRADE;
            tx.trade = t[i];
            s->participant[i] = INT64_MIN;
        } else {
            tx.kind = STL_TX_POSITION;
            tx.position = p[i - nt];
            s->participant[i] = (int64_t)p[i - nt].participant;
        }
        s->len[i] = stl_tx_encode(&tx, s->enc[i]);
        if (s->len[i] == 0)
            return CTL_LEDGER_E_INPUT;
        stl_merkle_leaf_hash(s->enc[i], s->len[i], s->leaf[i]);
        stl_tx_id(s->enc[i], s->len[i], s->id[i]);
    }
    return CTL_LEDGER_OK;
}

static int reconcile_input(const ctl_ledger_input *in, stl_reconciler **rp, tx_set *s, char *err,
                           size_t errlen)
{
    stl_reconciler *r = stl_reconciler_new(in->n_trades, in->n_meters);
    *rp = r;
    if (!r) {
        ctl_errf(err, errlen, "interval %lld: too many trades or meters, or out of memory",
                 (long long)in->interval_id);
        return CTL_LEDGER_E_INPUT;
    }
    stl_error_at at;
    int rc = stl_reconcile(r, &in->tariffs, in->trades, in->n_trades, in->meters, in->n_meters, &at);
    if (rc != STL_OK) {
        if (at.trade_index != SIZE_MAX)
            ctl_errf(err, errlen, "interval %lld: trade %zu: %s", (long long)in->interval_id,
                     at.trade_index, stl_strerror(rc));
        else if (at.meter_index != SIZE_MAX)
            ctl_errf(err, errlen, "interval %lld: meter record %zu: %s", (long long)in->interval_id,
                     at.meter_index, stl_strerror(rc));
        else
            ctl_errf(err, errlen, "interval %lld: %s", (long long)in->interval_id,
                     stl_strerror(rc));
        return CTL_LEDGER_E_INPUT;
    }
    rc = build_txs(r, in->interval_id, s);
    if (rc != CTL_LEDGER_OK)
        ctl_errf(err, errlen, "interval %lld: cannot encode its transactions",
                 (long long)in->interval_id);
    return rc;
}

/* Reads block `height` (or the latest when height < 0). */
static int load_block(ctl_db *db, int64_t height, int64_t interval_id, stl_block *b,
                      uint8_t hash[STL_ID_LEN])
{
    const char *sql = height >= 0      ? "SELECT body, hash FROM ledger_block WHERE height=?1"
                      : interval_id != INT64_MIN ? "SELECT body, hash FROM ledger_block WHERE interval_id=?1"
                                         : "SELECT body, hash FROM ledger_block ORDER BY height DESC LIMIT 1";
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db, sql, &st) != SQLITE_OK)
        return CTL_LEDGER_E_DB;
    if (height >= 0)
        sqlite3_bind_int64(st, 1, height);
    else if (interval_id != INT64_MIN)
        sqlite3_bind_int64(st, 1, interval_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = stl_block_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), b) ==
                         STL_OK &&
                     sqlite3_column_bytes(st, 1) == STL_ID_LEN
                 ? CTL_LEDGER_OK
                 : CTL_LEDGER_E_FAULT;
        if (rc == CTL_LEDGER_OK && hash)
            memcpy(hash, sqlite3_column_blob(st, 1), STL_ID_LEN);
    } else {
        rc = rc == SQLITE_DONE ? CTL_LEDGER_E_NOTFOUND : CTL_LEDGER_E_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int ctl_ledger_head(ctl_db *db, uint64_t *height, uint64_t *log_size)
{
    stl_block b;
    int rc = load_block(db, -1, INT64_MIN, &b, NULL);
    if (rc == CTL_LEDGER_OK) {
        *height = b.height;
        *log_size = b.log_size;
    }
    return rc;
}

int ctl_ledger_meta(ctl_db *db, char community[STL_COMMUNITY_MAX + 1], char *vkey, size_t vcap)
{
    sqlite3_stmt *st = NULL;
    int rc = CTL_LEDGER_E_NOTFOUND, got = 0;
    if (ctl_db_prepare(db, "SELECT k, v FROM ledger_meta", &st) != SQLITE_OK)
        return CTL_LEDGER_E_DB;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (!k || !v)
            continue;
        if (strcmp(k, "community") == 0 && strlen(v) <= STL_COMMUNITY_MAX) {
            strcpy(community, v);
            got |= 1;
        } else if (strcmp(k, "vkey") == 0 && strlen(v) < vcap) {
            strcpy(vkey, v);
            got |= 2;
        }
    }
    sqlite3_finalize(st);
    if (got == 3)
        rc = CTL_LEDGER_OK;
    return rc;
}

typedef struct {
    sqlite3_stmt *ins;
    int failed;
} node_sink_ctx;

static int node_sink(void *ctx, unsigned level, uint64_t index, const uint8_t hash[STL_HASH_LEN])
{
    node_sink_ctx *c = ctx;
    sqlite3_reset(c->ins);
    sqlite3_bind_int(c->ins, 1, (int)level);
    sqlite3_bind_int64(c->ins, 2, (sqlite3_int64)index);
    sqlite3_bind_blob(c->ins, 3, hash, STL_HASH_LEN, SQLITE_STATIC);
    if (sqlite3_step(c->ins) != SQLITE_DONE) {
        c->failed = 1;
        return -1;
    }
    return 0;
}

static int insert_txs(ctl_db *db, const tx_set *s, uint64_t height, uint64_t first_index)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db, "INSERT INTO ledger_tx(log_index, height, txid, participant, body)"
                           " VALUES(?1, ?2, ?3, ?4, ?5)", &st) != SQLITE_OK)
        return CTL_LEDGER_E_DB;
    int rc = CTL_LEDGER_OK;
    for (size_t i = 0; i < s->n && rc == CTL_LEDGER_OK; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)(first_index + i));
        sqlite3_bind_int64(st, 2, (sqlite3_int64)height);
        sqlite3_bind_blob(st, 3, s->id[i], STL_ID_LEN, SQLITE_STATIC);
        if (s->participant[i] == INT64_MIN)
            sqlite3_bind_null(st, 4);
        else
            sqlite3_bind_int64(st, 4, s->participant[i]);
        sqlite3_bind_blob(st, 5, s->enc[i], (int)s->len[i], SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = CTL_LEDGER_E_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

static int append_log(ctl_db *db, const tx_set *s, uint64_t log_size, stl_frontier *f)
{
    if (stl_frontier_load(f, log_size, ctl_ledger_node, db) != STL_OK)
        return CTL_LEDGER_E_FAULT;
    node_sink_ctx c = {NULL, 0};
    if (ctl_db_prepare(db, "INSERT INTO ledger_node(level, idx, hash) VALUES(?1, ?2, ?3)", &c.ins) != SQLITE_OK)
        return CTL_LEDGER_E_DB;
    int rc = CTL_LEDGER_OK;
    for (size_t i = 0; i < s->n && rc == CTL_LEDGER_OK; i++)
        if (stl_frontier_append(f, s->leaf[i], node_sink, &c) != STL_OK)
            rc = c.failed ? CTL_LEDGER_E_DB : CTL_LEDGER_E_FAULT;
    sqlite3_finalize(c.ins);
    return rc;
}

static int insert_block(ctl_db *db, const stl_block *b, const uint8_t *enc, size_t len,
                        const uint8_t hash[STL_ID_LEN], const uint8_t sig[STL_SIG_LEN],
                        const char *checkpoint)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db, "INSERT INTO ledger_block(height, interval_id, hash, body, sig, checkpoint)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6)", &st) != SQLITE_OK)
        return CTL_LEDGER_E_DB;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)b->height);
    sqlite3_bind_int64(st, 2, b->interval_id);
    sqlite3_bind_blob(st, 3, hash, STL_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, enc, (int)len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, sig, STL_SIG_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, checkpoint, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? CTL_LEDGER_OK : CTL_LEDGER_E_DB;
    sqlite3_finalize(st);
    return rc;
}

/* Records the community and key with the first block; later blocks must use the same key. */
static int check_meta(ctl_db *db, const ctl_ledger_key *key, char *err, size_t errlen)
{
    char community[STL_COMMUNITY_MAX + 1], vkey[STL_VKEY_MAX], mine[STL_VKEY_MAX];
    if (stl_vkey_format(key->name, key->sk + 32, mine, sizeof mine) != STL_OK)
        return CTL_LEDGER_E_KEY;
    int rc = ctl_ledger_meta(db, community, vkey, sizeof vkey);
    if (rc == CTL_LEDGER_E_NOTFOUND) {
        sqlite3_stmt *st = NULL;
        if (ctl_db_prepare(db, "INSERT OR REPLACE INTO ledger_meta(k, v) VALUES(?1, ?2)", &st) != SQLITE_OK)
            return CTL_LEDGER_E_DB;
        const char *kv[2][2] = {{"community", key->name}, {"vkey", mine}};
        for (int i = 0; i < 2 && rc != CTL_LEDGER_E_DB; i++) {
            sqlite3_reset(st);
            sqlite3_bind_text(st, 1, kv[i][0], -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, kv[i][1], -1, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE)
                rc = CTL_LEDGER_E_DB;
        }
        sqlite3_finalize(st);
        return rc == CTL_LEDGER_E_DB ? rc : CTL_LEDGER_OK;
    }
    if (rc != CTL_LEDGER_OK)
        return rc;
    if (strcmp(vkey, mine) != 0) {
        ctl_errf(err, errlen, "this ledger is signed by %s, not by the key given (%s)", vkey, mine);
        return CTL_LEDGER_E_KEY;
    }
    return CTL_LEDGER_OK;
}

static int settle_new(ctl_db *db, const ctl_ledger_input *in, const ctl_ledger_key *key,
                      const stl_reconciler *r, const tx_set *s, ctl_ledger_result *out, char *err,
                      size_t errlen)
{
    stl_block *b = &out->block, prev;
    uint8_t prev_hash[STL_ID_LEN] = {0};
    memset(b, 0, sizeof *b);
    int rc = load_block(db, -1, INT64_MIN, &prev, prev_hash);
    if (rc == CTL_LEDGER_OK) {
        b->height = prev.height + 1;
        b->log_size = prev.log_size;
        memcpy(b->prev_hash, prev_hash, STL_ID_LEN);
    } else if (rc != CTL_LEDGER_E_NOTFOUND) {
        ctl_errf(err, errlen, "cannot read the latest block (run `mgx ledger verify`)");
        return rc;
    }
    if ((rc = check_meta(db, key, err, errlen)) != CTL_LEDGER_OK)
        return rc;
    if ((rc = insert_txs(db, s, b->height, b->log_size)) != CTL_LEDGER_OK)
        return rc;
    ctl_crash_point("ledger.after_txs");
    stl_frontier f;
    if ((rc = append_log(db, s, b->log_size, &f)) != CTL_LEDGER_OK) {
        ctl_errf(err, errlen, "cannot extend the Merkle log (run `mgx ledger verify`)");
        return rc;
    }
    ctl_crash_point("ledger.after_nodes");
    strcpy(b->community, key->name);
    b->interval_id = in->interval_id;
    b->interval_len_s = in->interval_len_s;
    b->tariffs = in->tariffs;
    b->n_tx = (uint32_t)s->n;
    stl_merkle_root((const uint8_t(*)[STL_HASH_LEN])s->leaf, s->n, b->tx_root);
    b->log_size = f.size;
    stl_frontier_root(&f, b->log_root);
    b->totals = *stl_reconciled_totals(r);
    uint8_t enc[STL_BLOCK_MAX_LEN], sig[STL_SIG_LEN];
    size_t len = stl_block_encode(b, enc);
    if (len == 0)
        return CTL_LEDGER_E_INPUT;
    stl_block_hash(enc, len, out->hash);
    stl_sign(enc, len, key->sk, sig);
    char note[STL_NOTE_MAX];
    if (stl_checkpoint_sign(key->name, b->log_size, b->log_root, key->name, key->sk, note,
                            sizeof note) < 0)
        return CTL_LEDGER_E_KEY;
    if ((rc = insert_block(db, b, enc, len, out->hash, sig, note)) != CTL_LEDGER_OK)
        return rc;
    ctl_crash_point("ledger.after_block");
    return CTL_LEDGER_OK;
}

int ctl_ledger_settle(ctl_db *db, const ctl_ledger_input *in, const ctl_ledger_key *key,
                      ctl_ledger_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = 0;
    if (in->interval_len_s == 0) {
        ctl_errf(err, errlen, "interval length must be positive");
        return CTL_LEDGER_E_INPUT;
    }
    stl_reconciler *r = NULL;
    tx_set s;
    memset(&s, 0, sizeof s);
    int rc = reconcile_input(in, &r, &s, err, errlen);
    if (rc != CTL_LEDGER_OK)
        goto out;
    if (ctl_db_begin(db) != SQLITE_OK) {
        rc = ctl_fail(CTL_LEDGER_E_DB, err, errlen, "SQLite: %s", ctl_db_errmsg(db));
        goto out;
    }
    ctl_crash_point("ledger.begin");
    rc = load_block(db, -1, in->interval_id, &out->block, out->hash);
    if (rc == CTL_LEDGER_OK) { /* settled before: the same inputs give the same transactions */
        uint8_t root[STL_HASH_LEN];
        stl_merkle_root((const uint8_t(*)[STL_HASH_LEN])s.leaf, s.n, root);
        out->replayed = 1;
        if (memcmp(root, out->block.tx_root, STL_HASH_LEN) != 0 || out->block.n_tx != s.n) {
            ctl_errf(err, errlen, "interval %lld is already settled (block %llu) with other inputs",
                     (long long)in->interval_id, (unsigned long long)out->block.height);
            rc = CTL_LEDGER_E_CONFLICT;
        }
        ctl_db_rollback(db);
        goto out;
    }
    if (rc == CTL_LEDGER_E_NOTFOUND)
        rc = settle_new(db, in, key, r, &s, out, err, errlen);
    if (rc == CTL_LEDGER_OK) {
        ctl_crash_point("ledger.before_commit");
        rc = exec(db, "COMMIT", err, errlen);
        ctl_crash_point("ledger.after_commit");
    }
    if (rc != CTL_LEDGER_OK) {
        if (err && !err[0])
            ctl_errf(err, errlen, "SQLite: %s", ctl_db_errmsg(db));
        ctl_db_rollback(db);
    }
out:
    tx_set_free(&s);
    stl_reconciler_free(r);
    return rc;
}

/* ---- audit ---------------------------------------------------------------------------- */

typedef struct {
    ctl_db *db;
    char *msg;
    size_t msglen;
    uint64_t height;
    int64_t interval_id;
    int bad;
} audit;

/* Compares each node the replayed log produces with the stored one. */
static int audit_sink(void *ctx, unsigned level, uint64_t index, const uint8_t hash[STL_HASH_LEN])
{
    audit *a = ctx;
    uint8_t stored[STL_HASH_LEN];
    if (ctl_ledger_node(a->db, level, index, stored) != 0) {
        ctl_errf(a->msg, a->msglen,
                 "block %llu (interval %lld): Merkle node level %u index %llu is missing",
                 (unsigned long long)a->height, (long long)a->interval_id, level,
                 (unsigned long long)index);
        a->bad = 1;
        return -1;
    }
    if (memcmp(stored, hash, STL_HASH_LEN) != 0) {
        ctl_errf(
            a->msg, a->msglen,
            "block %llu (interval %lld): Merkle node level %u index %llu differs from the hash of "
            "its transactions",
            (unsigned long long)a->height, (long long)a->interval_id, level,
            (unsigned long long)index);
        a->bad = 1;
        return -1;
    }
    return 0;
}

/* Names the first field in which two transactions of the same kind differ. */
static const char *tx_diff(const stl_tx *x, const stl_tx *y, long long *a, long long *b)
{
    if (x->kind != y->kind) {
        *a = x->kind, *b = y->kind;
        return "kind";
    }
    if (x->kind == STL_TX_TRADE) {
        const stl_settled_trade *p = &x->trade, *q = &y->trade;
        const struct {
            const char *name;
            int64_t u, v;
        } f[] = {{"seller", (int64_t)p->seller, (int64_t)q->seller},
                 {"buyer", (int64_t)p->buyer, (int64_t)q->buyer},
                 {"contracted_wh", p->contracted_wh, q->contracted_wh},
                 {"delivered_wh", p->delivered_wh, q->delivered_wh},
                 {"paid_uc", p->paid_uc, q->paid_uc},
                 {"received_uc", p->received_uc, q->received_uc},
                 {"fee_uc", p->fee_uc, q->fee_uc},
                 {"rounding_uc", p->rounding_uc, q->rounding_uc}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if (f[i].u != f[i].v) {
                *a = f[i].u, *b = f[i].v;
                return f[i].name;
            }
    } else {
        const stl_position *p = &x->position, *q = &y->position;
        const struct {
            const char *name;
            int64_t u, v;
        } f[] = {{"participant", (int64_t)p->participant, (int64_t)q->participant},
                 {"status", p->status, q->status},
                 {"local_bought_wh", p->local_bought_wh, q->local_bought_wh},
                 {"local_sold_wh", p->local_sold_wh, q->local_sold_wh},
                 {"grid_bought_wh", p->grid_bought_wh, q->grid_bought_wh},
                 {"grid_sold_wh", p->grid_sold_wh, q->grid_sold_wh},
                 {"local_paid_uc", p->local_paid_uc, q->local_paid_uc},
                 {"fee_paid_uc", p->fee_paid_uc, q->fee_paid_uc},
                 {"local_received_uc", p->local_received_uc, q->local_received_uc},
                 {"grid_paid_uc", p->grid_paid_uc, q->grid_paid_uc},
                 {"grid_received_uc", p->grid_received_uc, q->grid_received_uc},
                 {"contracted_bought_wh", p->contracted_bought_wh, q->contracted_bought_wh},
                 {"contracted_sold_wh", p->contracted_sold_wh, q->contracted_sold_wh}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if (f[i].u != f[i].v) {
                *a = f[i].u, *b = f[i].v;
                return f[i].name;
            }
    }
    *a = *b = 0;
    return "encoding";
}

#define FAULT(...)                                                                                 \
    do {                                                                                           \
        ctl_errf(msg, msglen, __VA_ARGS__);                                                        \
        rc = CTL_LEDGER_E_FAULT;                                                                   \
        goto out;                                                                                  \
    } while (0)

/* Re-settles a block from its own transactions and compares every byte and total. */
static int resettle(const stl_block *b, const stl_tx *txs, size_t n, char *msg, size_t msglen)
{
    size_t nt = 0;
    while (nt < n && txs[nt].kind == STL_TX_TRADE)
        nt++;
    mkt_trade *trades = calloc(nt ? nt : 1, sizeof *trades);
    stl_metered *meters = calloc(n - nt ? n - nt : 1, sizeof *meters);
    stl_reconciler *r = stl_reconciler_new(nt, n - nt);
    tx_set s;
    memset(&s, 0, sizeof s);
    int rc = CTL_LEDGER_OK;
    size_t nm = 0;
    if (!trades || !meters || !r)
        FAULT("block %llu: out of memory while re-settling", (unsigned long long)b->height);
    for (size_t i = 0; i < nt; i++) {
        const stl_settled_trade *t = &txs[i].trade;
        trades[i] = (mkt_trade){t->seller, t->buyer, t->contracted_wh, t->price_uc_per_kwh,
                                t->amount_uc, t->contract_fee_uc};
    }
    for (size_t i = nt; i < n; i++) {
        if (txs[i].kind != STL_TX_POSITION)
            FAULT("block %llu (interval %lld): transaction %zu is a trade after the positions",
                  (unsigned long long)b->height, (long long)b->interval_id, i);
        const stl_position *p = &txs[i].position;
        if (p->status != STL_POS_MISSING)
            meters[nm++] = (stl_metered){p->participant, p->import_wh, p->export_wh, p->quality};
    }
    stl_error_at at;
    int src = stl_reconcile(r, &b->tariffs, trades, nt, meters, nm, &at);
    if (src != STL_OK)
        FAULT("block %llu (interval %lld): its transactions are not a valid settlement (%s%s%zu)",
              (unsigned long long)b->height, (long long)b->interval_id, stl_strerror(src),
              at.trade_index != SIZE_MAX ? ", trade " : ", meter ",
              at.trade_index != SIZE_MAX ? at.trade_index : at.meter_index);
    if ((rc = build_txs(r, b->interval_id, &s)) != CTL_LEDGER_OK)
        FAULT("block %llu: cannot re-encode its transactions", (unsigned long long)b->height);
    if (s.n != n)
        FAULT("block %llu (interval %lld): %zu transactions stored, the settlement rules give %zu "
              "(a position is missing or extra)",
              (unsigned long long)b->height, (long long)b->interval_id, n, s.n);
    for (size_t i = 0; i < n; i++) {
        uint8_t enc[STL_TX_MAX_LEN];
        size_t len = stl_tx_encode(&txs[i], enc);
        if (len == s.len[i] && memcmp(enc, s.enc[i], len) == 0)
            continue;
        stl_tx again;
        if (stl_tx_decode(s.enc[i], s.len[i], &again) != STL_OK)
            FAULT("block %llu: internal re-encoding error", (unsigned long long)b->height);
        long long u, v;
        const char *field = tx_diff(&txs[i], &again, &u, &v);
        FAULT("block %llu (interval %lld) transaction %zu: %s is %lld, the settlement rules give "
              "%lld",
              (unsigned long long)b->height, (long long)b->interval_id, i, field, u, v);
    }
    stl_block want = *b;
    want.totals = *stl_reconciled_totals(r);
    uint8_t e1[STL_BLOCK_MAX_LEN], e2[STL_BLOCK_MAX_LEN];
    size_t l1 = stl_block_encode(b, e1), l2 = stl_block_encode(&want, e2);
    if (l1 != l2 || memcmp(e1, e2, l1) != 0)
        FAULT("block %llu (interval %lld): the block's totals differ from the sums of its "
              "transactions",
              (unsigned long long)b->height, (long long)b->interval_id);
    const stl_totals *t = &want.totals;
    if (t->paid_uc != t->received_uc + t->fees_uc + t->rounding_uc)
        FAULT("block %llu: money does not balance", (unsigned long long)b->height);
out:
    tx_set_free(&s);
    stl_reconciler_free(r);
    free(trades);
    free(meters);
    return rc;
}

static int audit_block(audit *a, sqlite3_stmt *txq, const stl_block *b, stl_frontier *f,
                       char *msg, size_t msglen)
{
    int rc = CTL_LEDGER_OK;
    size_t cap = b->n_tx ? b->n_tx : 1, n = 0;
    stl_tx *txs = calloc(cap, sizeof *txs);
    uint8_t (*leaves)[STL_HASH_LEN] = calloc(cap, STL_HASH_LEN);
    if (!txs || !leaves)
        FAULT("out of memory");
    sqlite3_reset(txq);
    sqlite3_bind_int64(txq, 1, (sqlite3_int64)b->height);
    while (sqlite3_step(txq) == SQLITE_ROW) {
        uint64_t li = (uint64_t)sqlite3_column_int64(txq, 0);
        if (n >= b->n_tx)
            FAULT("block %llu (interval %lld): more than its %u transactions are stored (log "
                  "index %llu)",
                  (unsigned long long)b->height, (long long)b->interval_id, b->n_tx,
                  (unsigned long long)li);
        if (li != f->size)
            FAULT("block %llu: transaction at log index %llu, expected %llu (the log has a gap)",
                  (unsigned long long)b->height, (unsigned long long)li,
                  (unsigned long long)f->size);
        const uint8_t *body = sqlite3_column_blob(txq, 3);
        size_t len = (size_t)sqlite3_column_bytes(txq, 3);
        if (stl_tx_decode(body, len, &txs[n]) != STL_OK)
            FAULT("transaction at log index %llu: not a canonical encoding", (unsigned long long)li);
        if (txs[n].interval_id != b->interval_id || txs[n].seq != n)
            FAULT("transaction at log index %llu: belongs to interval %lld position %u, stored in "
                  "block %llu (interval %lld) position %zu",
                  (unsigned long long)li, (long long)txs[n].interval_id, txs[n].seq,
                  (unsigned long long)b->height, (long long)b->interval_id, n);
        uint8_t id[STL_ID_LEN];
        stl_tx_id(body, len, id);
        if (sqlite3_column_bytes(txq, 1) != STL_ID_LEN ||
            memcmp(id, sqlite3_column_blob(txq, 1), STL_ID_LEN) != 0)
            FAULT("transaction at log index %llu: stored id is not the hash of its encoding",
                  (unsigned long long)li);
        int pnull = sqlite3_column_type(txq, 2) == SQLITE_NULL;
        if ((txs[n].kind == STL_TX_TRADE) != pnull ||
            (!pnull && (uint64_t)sqlite3_column_int64(txq, 2) != txs[n].position.participant))
            FAULT("transaction at log index %llu: participant column does not match its encoding",
                  (unsigned long long)li);
        stl_merkle_leaf_hash(body, len, leaves[n]);
        if (stl_frontier_append(f, leaves[n], audit_sink, a) != STL_OK) {
            rc = CTL_LEDGER_E_FAULT;
            goto out;
        }
        n++;
    }
    if (n != b->n_tx)
        FAULT("block %llu (interval %lld): %zu of its %u transactions are stored",
              (unsigned long long)b->height, (long long)b->interval_id, n, b->n_tx);
    uint8_t root[STL_HASH_LEN];
    stl_merkle_root((const uint8_t(*)[STL_HASH_LEN])leaves, n, root);
    if (memcmp(root, b->tx_root, STL_HASH_LEN) != 0)
        FAULT("block %llu (interval %lld): transaction root does not match its transactions",
              (unsigned long long)b->height, (long long)b->interval_id);
    stl_frontier_root(f, root);
    if (f->size != b->log_size || memcmp(root, b->log_root, STL_HASH_LEN) != 0)
        FAULT("block %llu (interval %lld): log size/root in the block do not match the log",
              (unsigned long long)b->height, (long long)b->interval_id);
    rc = resettle(b, txs, n, msg, msglen);
out:
    free(txs);
    free(leaves);
    return rc;
}

static int count(ctl_db *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = CTL_LEDGER_E_DB;
    if (ctl_db_prepare(db, sql, &st) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = CTL_LEDGER_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int ctl_ledger_verify(ctl_db *db, const uint8_t *trusted_pk, char *msg, size_t msglen)
{
    char community[STL_COMMUNITY_MAX + 1], vkey[STL_VKEY_MAX], name[STL_COMMUNITY_MAX + 1];
    uint8_t pk[STL_PK_LEN], prev[STL_ID_LEN] = {0};
    sqlite3_stmt *bq = NULL, *txq = NULL;
    stl_frontier f;
    stl_frontier_init(&f);
    int64_t n_blocks = 0, n_tx = 0, n_nodes = 0;
    int rc = ctl_ledger_meta(db, community, vkey, sizeof vkey);
    if (rc == CTL_LEDGER_E_NOTFOUND) {
        if (count(db, "SELECT COUNT(*) FROM ledger_block", &n_blocks) != CTL_LEDGER_OK)
            return CTL_LEDGER_E_DB;
        if (n_blocks == 0) {
            ctl_errf(msg, msglen, "OK: empty ledger");
            return CTL_LEDGER_OK;
        }
        FAULT("the ledger has blocks but no community key record");
    }
    if (rc != CTL_LEDGER_OK)
        return rc;
    if (stl_vkey_parse(vkey, name, pk) != STL_OK || strcmp(name, community) != 0)
        FAULT("the ledger's key record is malformed");
    if (trusted_pk && memcmp(trusted_pk, pk, STL_PK_LEN) != 0)
        FAULT("the ledger is signed by %s, which is not the key you trust", vkey);
    if (ctl_db_prepare(db, "SELECT height, interval_id, hash, body, sig, checkpoint FROM ledger_block"
                           " ORDER BY height", &bq) != SQLITE_OK ||
        ctl_db_prepare(db, "SELECT log_index, txid, participant, body FROM ledger_tx WHERE height=?1"
                           " ORDER BY log_index", &txq) != SQLITE_OK) {
        rc = CTL_LEDGER_E_DB;
        goto out;
    }
    int step;
    while ((step = sqlite3_step(bq)) == SQLITE_ROW) {
        uint64_t h = (uint64_t)sqlite3_column_int64(bq, 0);
        stl_block b;
        const uint8_t *body = sqlite3_column_blob(bq, 3);
        size_t len = (size_t)sqlite3_column_bytes(bq, 3);
        if (h != (uint64_t)n_blocks)
            FAULT("block heights jump from %lld to %llu", (long long)n_blocks - 1,
                  (unsigned long long)h);
        if (stl_block_decode(body, len, &b) != STL_OK)
            FAULT("block %llu: not a canonical block encoding", (unsigned long long)h);
        if (b.height != h || b.interval_id != sqlite3_column_int64(bq, 1))
            FAULT("block %llu: height or interval columns differ from the signed block",
                  (unsigned long long)h);
        uint8_t hash[STL_ID_LEN];
        stl_block_hash(body, len, hash);
        if (sqlite3_column_bytes(bq, 2) != STL_ID_LEN ||
            memcmp(hash, sqlite3_column_blob(bq, 2), STL_ID_LEN) != 0)
            FAULT("block %llu (interval %lld): stored hash is not the hash of the block",
                  (unsigned long long)h, (long long)b.interval_id);
        if (memcmp(b.prev_hash, prev, STL_ID_LEN) != 0)
            FAULT("block %llu (interval %lld): previous-block hash does not match block %lld",
                  (unsigned long long)h, (long long)b.interval_id, (long long)h - 1);
        if (strcmp(b.community, community) != 0)
            FAULT("block %llu: community '%s', the ledger's is '%s'", (unsigned long long)h,
                  b.community, community);
        if (stl_verify(body, len, sqlite3_column_blob(bq, 4), (size_t)sqlite3_column_bytes(bq, 4),
                       pk) != STL_OK)
            FAULT("block %llu (interval %lld): signature does not verify with the ledger key",
                  (unsigned long long)h, (long long)b.interval_id);
        const char *note = (const char *)sqlite3_column_text(bq, 5);
        stl_checkpoint cp;
        if (!note || stl_checkpoint_open(note, strlen(note), community, pk, community, &cp) != STL_OK)
            FAULT("block %llu (interval %lld): checkpoint is not signed by the ledger key",
                  (unsigned long long)h, (long long)b.interval_id);
        if (cp.size != b.log_size || memcmp(cp.root, b.log_root, STL_ID_LEN) != 0)
            FAULT("block %llu (interval %lld): checkpoint size/root differ from the block's",
                  (unsigned long long)h, (long long)b.interval_id);
        audit a = {db, msg, msglen, h, b.interval_id, 0};
        if ((rc = audit_block(&a, txq, &b, &f, msg, msglen)) != CTL_LEDGER_OK)
            goto out;
        memcpy(prev, hash, STL_ID_LEN);
        n_blocks++;
    }
    if (step != SQLITE_DONE) {
        rc = CTL_LEDGER_E_DB;
        goto out;
    }
    if (count(db, "SELECT COUNT(*) FROM ledger_tx", &n_tx) != CTL_LEDGER_OK ||
        count(db, "SELECT COUNT(*) FROM ledger_node", &n_nodes) != CTL_LEDGER_OK) {
        rc = CTL_LEDGER_E_DB;
        goto out;
    }
    if ((uint64_t)n_tx != f.size)
        FAULT("%lld transactions are stored but the blocks account for %llu", (long long)n_tx,
              (unsigned long long)f.size);
    if ((uint64_t)n_nodes != 2 * f.size - (uint64_t)__builtin_popcountll(f.size))
        FAULT("%lld Merkle nodes are stored, a log of %llu needs %llu", (long long)n_nodes,
              (unsigned long long)f.size,
              (unsigned long long)(2 * f.size - (uint64_t)__builtin_popcountll(f.size)));
    {
        uint8_t root[STL_HASH_LEN];
        char hex[2 * STL_HASH_LEN + 1];
        stl_frontier_root(&f, root);
        sodium_bin2hex(hex, sizeof hex, root, STL_HASH_LEN);
        ctl_errf(msg, msglen, "OK: %s, %lld blocks, %llu transactions, log root %s", community,
                 (long long)n_blocks, (unsigned long long)f.size, hex);
    }
    rc = CTL_LEDGER_OK;
out:
    sqlite3_finalize(bq);
    sqlite3_finalize(txq);
    return rc;
}
