/*
 * The store of the settlement ledger in SQLite (ledger_store.h): blocks, transactions, the
 * Merkle log's nodes, the community's key record. What goes in is decided elsewhere: the
 * settlement of an interval (settle_interval.c) builds a block and calls these writers inside
 * its one SQLite transaction; the audit (ledger_verify.c) reads everything back.
 */
#include "settle/ledger_store.h"

#include "common/errbuf.h"

#include <sqlite3.h>

#include "common/crash_point.h"
#include "common/file.h"
#include "mgx/merkle.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void ctl_ledger_txs_free(ctl_ledger_txs *s)
{
    free(s->enc);
    free(s->len);
    free(s->leaf);
    free(s->id);
    if (s->salt)
        sodium_memzero(s->salt, s->n * sizeof *s->salt);
    free(s->salt);
    free(s->participant);
    memset(s, 0, sizeof *s);
}

int ctl_ledger_block_load(ctl_db *db, int64_t height, int64_t interval_id, stl_block *b,
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

int ctl_ledger_block_credit_tier(ctl_db *db, uint64_t height, int *tier)
{
    sqlite3_stmt *st = NULL;
    *tier = -1;
    if (ctl_db_prepare(db, "SELECT body FROM ledger_tx WHERE height=?1 ORDER BY log_index DESC "
                           "LIMIT 1",
                       &st) != SQLITE_OK)
        return CTL_LEDGER_E_DB;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)height);
    int rc = CTL_LEDGER_OK, step = sqlite3_step(st);
    stl_tx tx;
    if (step == SQLITE_ROW) {
        if (stl_tx_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &tx) !=
            STL_OK)
            rc = CTL_LEDGER_E_FAULT;
        else if (tx.kind == STL_TX_CREDIT)
            *tier = tx.credit.min_tier;
    } else if (step != SQLITE_DONE) {
        rc = CTL_LEDGER_E_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int ctl_ledger_head(ctl_db *db, uint64_t *height, uint64_t *log_size)
{
    stl_block b;
    int rc = ctl_ledger_block_load(db, -1, INT64_MIN, &b, NULL);
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

int ctl_ledger_txs_insert(ctl_db *db, const ctl_ledger_txs *s, uint64_t height,
                          uint64_t first_index)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db,
                           "INSERT INTO ledger_tx(log_index, height, txid, participant, body, salt)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6)", &st) != SQLITE_OK)
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
        if (s->salted)
            sqlite3_bind_blob(st, 6, s->salt[i], STL_SALT_LEN, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 6);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = CTL_LEDGER_E_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int ctl_ledger_log_append(ctl_db *db, const ctl_ledger_txs *s, uint64_t log_size, stl_frontier *f)
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

int ctl_ledger_block_insert(ctl_db *db, const stl_block *b, const uint8_t *enc, size_t len,
                            const uint8_t hash[STL_ID_LEN], const uint8_t sig[STL_SIG_LEN],
                            const char *checkpoint)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db,
                           "INSERT INTO ledger_block(height, interval_id, hash, body, sig, checkpoint)"
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

int ctl_ledger_meta_set(ctl_db *db, const char *community, const char *vkey)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db, "INSERT OR REPLACE INTO ledger_meta(k, v) VALUES(?1, ?2)", &st) != SQLITE_OK)
        return CTL_LEDGER_E_DB;
    const char *kv[2][2] = {{"community", community}, {"vkey", vkey}};
    int rc = CTL_LEDGER_OK;
    for (int i = 0; i < 2 && rc != CTL_LEDGER_E_DB; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, kv[i][0], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, kv[i][1], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = CTL_LEDGER_E_DB;
    }
    sqlite3_finalize(st);
    return rc;
}
