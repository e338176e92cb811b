/*
 * Proofs out of the settlement ledger and their offline checks (see ledger_proof.h).
 */
#include "settle/ledger_proof.h"

#include "common/errbuf.h"
#include "mgx/merkle.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* strdup is POSIX, not C11. */
static char *dup_text(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *ctl_ledger_checkpoint(ctl_db *db, int64_t height, uint64_t *size)
{
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    const char *sql = height < 0
                          ? "SELECT checkpoint, body FROM ledger_block ORDER BY height DESC LIMIT 1"
                          : "SELECT checkpoint, body FROM ledger_block WHERE height=?1";
    if (ctl_db_prepare(db, sql, &st) != SQLITE_OK)
        return NULL;
    if (height >= 0)
        sqlite3_bind_int64(st, 1, height);
    if (sqlite3_step(st) == SQLITE_ROW) {
        stl_block b;
        if (stl_block_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &b) ==
            STL_OK) {
            out = dup_text((const char *)sqlite3_column_text(st, 0));
            *size = b.log_size;
        }
    }
    sqlite3_finalize(st);
    return out;
}

char *ctl_ledger_checkpoint_at_size(ctl_db *db, uint64_t size)
{
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    if (ctl_db_prepare(db, "SELECT checkpoint, body FROM ledger_block ORDER BY height", &st) != SQLITE_OK)
        return NULL;
    while (!out && sqlite3_step(st) == SQLITE_ROW) {
        stl_block b;
        if (stl_block_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &b) ==
                STL_OK &&
            b.log_size == size)
            out = dup_text((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
}

int ctl_ledger_inclusion_proof(ctl_db *db, const uint8_t *txid, int64_t log_index, int64_t height,
                               ctl_lj_proof *pr, uint8_t txid_out[STL_ID_LEN], char *err,
                               size_t errlen)
{
    sqlite3_stmt *st = NULL;
    uint64_t size = 0;
    int rc = CTL_LEDGER_E_NOTFOUND;
    pr->checkpoint = ctl_ledger_checkpoint(db, height, &size);
    if (!pr->checkpoint) {
        ctl_errf(err, errlen, "no such block");
        goto out;
    }
    if (ctl_db_prepare(db,
                           txid ? "SELECT log_index, body, txid, salt FROM ledger_tx WHERE txid=?1"
                                : "SELECT log_index, body, txid, salt FROM ledger_tx WHERE log_index=?1", &st) != SQLITE_OK) {
        rc = ctl_fail(CTL_LEDGER_E_DB, err, errlen, "%s", ctl_db_errmsg(db));
        goto out;
    }
    if (txid)
        sqlite3_bind_blob(st, 1, txid, STL_ID_LEN, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, log_index);
    if (sqlite3_step(st) != SQLITE_ROW) {
        ctl_errf(err, errlen, "no such transaction");
        goto out;
    }
    int64_t li = sqlite3_column_int64(st, 0);
    if ((uint64_t)li >= size) {
        ctl_errf(err, errlen, "transaction %lld is not in the log of size %llu", (long long)li,
                 (unsigned long long)size);
        goto out;
    }
    /* a damaged row must not overrun the fixed buffers below */
    int blen = sqlite3_column_bytes(st, 1);
    if (blen < 0 || blen > STL_TX_MAX_LEN || sqlite3_column_bytes(st, 2) != STL_ID_LEN ||
        stl_merkle_inclusion_proof((uint64_t)li, size, ctl_ledger_node, db, pr->path,
                                   &pr->n_path) != STL_OK) {
        rc = ctl_fail(CTL_LEDGER_E_FAULT, err, errlen,
                      "the Merkle log is damaged (run `mgx ledger verify`)");
        goto out;
    }
    if (blen > 0)
        memcpy(pr->body, sqlite3_column_blob(st, 1), (size_t)blen);
    pr->body_len = (size_t)blen;
    /* the proof carries this transaction's own salt, never another's */
    pr->has_salt = stl_tx_version(pr->body, pr->body_len) != STL_LEDGER_V1;
    if (pr->has_salt) {
        if (sqlite3_column_bytes(st, 3) != STL_SALT_LEN) {
            rc = ctl_fail(CTL_LEDGER_E_FAULT, err, errlen,
                          "transaction %lld has no salt (run `mgx ledger verify`)", (long long)li);
            goto out;
        }
        memcpy(pr->salt, sqlite3_column_blob(st, 3), STL_SALT_LEN);
    }
    pr->log_index = li;
    pr->tree_size = (int64_t)size;
    memcpy(txid_out, sqlite3_column_blob(st, 2), STL_ID_LEN);
    rc = CTL_LEDGER_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

int ctl_ledger_consistency_proof(ctl_db *db, int64_t from, int64_t to, ctl_lj_consistency *c,
                                 char *err, size_t errlen)
{
    uint64_t height, size;
    if (ctl_ledger_head(db, &height, &size) != CTL_LEDGER_OK)
        return ctl_fail(CTL_LEDGER_E_NOTFOUND, err, errlen, "empty ledger");
    if (to < 0)
        to = (int64_t)size;
    if (from < 0 || from > to || (uint64_t)to > size)
        return ctl_fail(CTL_LEDGER_E_NOTFOUND, err, errlen, "need 0 <= from <= to <= %llu",
                        (unsigned long long)size);
    c->old_size = (uint64_t)from;
    c->new_size = (uint64_t)to;
    if (stl_merkle_consistency_proof(c->old_size, c->new_size, ctl_ledger_node, db, c->path,
                                     &c->n_path) != STL_OK ||
        stl_merkle_root_at(c->old_size, ctl_ledger_node, db, c->old_root) != STL_OK ||
        stl_merkle_root_at(c->new_size, ctl_ledger_node, db, c->new_root) != STL_OK)
        return ctl_fail(CTL_LEDGER_E_FAULT, err, errlen,
                        "the Merkle log is damaged (run `mgx ledger verify`)");
    c->old_checkpoint = ctl_ledger_checkpoint_at_size(db, c->old_size);
    c->new_checkpoint = ctl_ledger_checkpoint_at_size(db, c->new_size);
    return CTL_LEDGER_OK;
}

int ctl_ledger_check_inclusion(const ctl_lj_proof *pr, const stl_checkpoint *cp, char *err,
                               size_t errlen)
{
    if ((uint64_t)pr->tree_size != cp->size)
        return ctl_fail(CTL_LEDGER_E_FAULT, err, errlen,
                        "the proof is for a log of %lld entries, the checkpoint for %llu",
                        (long long)pr->tree_size, (unsigned long long)cp->size);
    uint8_t leaf[STL_HASH_LEN];
    if (stl_tx_leaf(pr->has_salt ? pr->salt : NULL, pr->body, pr->body_len, leaf) != STL_OK)
        return ctl_fail(CTL_LEDGER_E_FAULT, err, errlen,
                        "FAILED: the transaction's salt does not fit its ledger version");
    if (stl_merkle_verify_inclusion((uint64_t)pr->log_index, cp->size, leaf,
                                    (const uint8_t(*)[STL_HASH_LEN])pr->path, pr->n_path,
                                    cp->root) != STL_OK)
        return ctl_fail(CTL_LEDGER_E_FAULT, err, errlen,
                        "FAILED: the transaction is not in the log at this checkpoint");
    return CTL_LEDGER_OK;
}

int ctl_ledger_check_consistency(const ctl_lj_consistency *c, const char *name,
                                 const uint8_t pk[32], stl_checkpoint *old_cp,
                                 stl_checkpoint *new_cp, char *err, size_t errlen)
{
    const char *n1 = c->old_checkpoint, *n2 = c->new_checkpoint;
    if (stl_checkpoint_open(n1, strlen(n1), name, pk, name, old_cp) != STL_OK ||
        stl_checkpoint_open(n2, strlen(n2), name, pk, name, new_cp) != STL_OK)
        return ctl_fail(CTL_LEDGER_E_KEY, err, errlen, "a checkpoint is not signed by this key");
    if (stl_merkle_verify_consistency(old_cp->size, new_cp->size, old_cp->root, new_cp->root,
                                      (const uint8_t(*)[STL_HASH_LEN])c->path, c->n_path) != STL_OK)
        return ctl_fail(CTL_LEDGER_E_FAULT, err, errlen,
                        "FAILED: the newer log does not extend the older one");
    return CTL_LEDGER_OK;
}
