/*
 * The controller collecting witness cosignatures from the bus (cosig_collect.h): checks each
 * received note against the ledger, keeps the cosignatures of known witnesses, and builds the
 * checkpoint with all of them.
 */
#include "settle/cosig_collect.h"

#include "mgx/cosignature.h"
#include "settle/ledger_proof.h"
#include "settle/ledger_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

const char *ctl_cosig_strerror(int verdict)
{
    switch (verdict) {
    case CTL_COSIG_STORED:
        return "cosignature kept";
    case CTL_COSIG_UNCHANGED:
        return "cosignatures known already";
    case CTL_COSIG_E_MALFORMED:
        return "not a checkpoint signed by the ledger's key";
    case CTL_COSIG_E_UNKNOWN:
        return "a log size this ledger does not have";
    case CTL_COSIG_E_FORK:
        return "another checkpoint at a size the ledger has, signed by its key: a fork";
    case CTL_COSIG_E_NO_WITNESS:
        return "no cosignature by a configured witness key verifies";
    case CTL_COSIG_E_DB:
        return "database error, or no ledger yet";
    }
    return "unknown verdict";
}

/* The length of a note's body: the text up to and including the newline before the blank
 * line; 0 when there is no blank line. */
static size_t body_len(const char *note, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (note[i] == '\n' && note[i + 1] == '\n')
            return i + 1;
    return 0;
}

/* Stores a cosignature unless one as new is there. 1 when written, 0 when not, -1 on error. */
static int store(ctl_db *db, uint64_t size, const uint8_t pk[STL_PK_LEN], const char *name,
                 uint64_t time_s, const char *line, size_t line_len)
{
    sqlite3_stmt *st;
    if (ctl_db_prepare(db,
                       "INSERT INTO ledger_cosignature(log_size, witness_pk, name, time_s, line)"
                       " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(log_size, witness_pk) DO UPDATE"
                       " SET name = excluded.name, time_s = excluded.time_s, line = excluded.line"
                       " WHERE excluded.time_s > ledger_cosignature.time_s",
                       &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
    sqlite3_bind_blob(st, 2, pk, STL_PK_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)(time_s > INT64_MAX ? INT64_MAX : time_s));
    sqlite3_bind_text(st, 5, line, (int)line_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int changed = sqlite3_changes(sqlite3_db_handle(st));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? changed > 0 : -1;
}

/* Each signature line of note that verifies as a cosignature of `body` by one of pks is
 * stored. Returns how many were stored, or -1. *any: whether any line verified. */
static int keep_lines(ctl_db *db, const uint8_t (*pks)[STL_PK_LEN], size_t n, uint64_t size,
                      const char *body, size_t blen, const char *note, size_t len, int *any)
{
    char test[STL_NOTE_MAX + STL_COSIG_LINE_MAX + 2];
    int stored = 0;
    size_t at = body_len(note, len) + 1; /* past the blank line */
    while (at < len) {
        const char *nl = memchr(note + at, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - (note + at)) + 1 : len - at;
        /* a candidate note: the ledger's own body and this one line */
        if (ll < STL_COSIG_LINE_MAX && blen + 1 + ll < sizeof test) {
            memcpy(test, body, blen);
            test[blen] = '\n';
            memcpy(test + blen + 1, note + at, ll);
            size_t tl = blen + 1 + ll;
            for (size_t i = 0; i < n; i++) {
                uint64_t t = 0;
                char name[STL_COSIG_NAME_MAX + 1];
                if (stl_cosig_find(test, tl, pks[i], NULL, &t, name) != STL_OK)
                    continue;
                *any = 1;
                int w = store(db, size, pks[i], name, t, note + at, ll);
                if (w < 0)
                    return -1;
                stored += w;
            }
        }
        at += ll;
    }
    return stored;
}

int ctl_cosig_accept(ctl_db *db, const uint8_t (*pks)[STL_PK_LEN], size_t n, const char *note,
                     size_t len, uint64_t *log_size)
{
    char community[STL_COMMUNITY_MAX + 1], vkey[STL_VKEY_MAX], name[STL_COMMUNITY_MAX + 1];
    uint8_t pk[STL_PK_LEN];
    if (len == 0 || len > STL_NOTE_MAX || memchr(note, '\0', len))
        return CTL_COSIG_E_MALFORMED;
    int lr = ctl_ledger_meta(db, community, vkey, sizeof vkey);
    if (lr == CTL_LEDGER_E_NOTFOUND)
        return CTL_COSIG_E_UNKNOWN;
    if (lr != CTL_LEDGER_OK || stl_vkey_parse(vkey, name, pk) != STL_OK)
        return CTL_COSIG_E_DB;
    stl_checkpoint cp;
    if (stl_checkpoint_open(note, len, name, pk, community, &cp) != STL_OK)
        return CTL_COSIG_E_MALFORMED;
    char *ours = ctl_ledger_checkpoint_at_size(db, cp.size);
    if (!ours)
        return CTL_COSIG_E_UNKNOWN;
    int rc;
    size_t blen = body_len(ours, strlen(ours));
    if (blen == 0 || body_len(note, len) != blen || memcmp(ours, note, blen) != 0) {
        rc = CTL_COSIG_E_FORK;
        goto out;
    }
    int any = 0;
    if (ctl_db_begin(db) != SQLITE_OK) {
        rc = CTL_COSIG_E_DB;
        goto out;
    }
    int stored = keep_lines(db, pks, n, cp.size, ours, blen, note, len, &any);
    if (ctl_db_end(db, stored >= 0) != SQLITE_OK || stored < 0)
        rc = CTL_COSIG_E_DB;
    else
        rc = stored > 0 ? CTL_COSIG_STORED : any ? CTL_COSIG_UNCHANGED : CTL_COSIG_E_NO_WITNESS;
    if (log_size)
        *log_size = cp.size;
out:
    free(ours);
    return rc;
}

char *ctl_cosig_witnessed(ctl_db *db, uint64_t *log_size)
{
    sqlite3_stmt *st;
    if (ctl_db_prepare(db, "SELECT max(log_size) FROM ledger_cosignature", &st) != SQLITE_OK)
        return NULL;
    int rc = sqlite3_step(st);
    int none = rc != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL;
    uint64_t size = none ? 0 : (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    char *cp = none ? NULL : ctl_ledger_checkpoint_at_size(db, size);
    if (!cp)
        return NULL;
    if (ctl_db_prepare(db, "SELECT line FROM ledger_cosignature WHERE log_size = ?1 ORDER BY name",
                       &st) != SQLITE_OK) {
        free(cp);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
    size_t len = strlen(cp);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        size_t ll = line ? strlen(line) : 0;
        char *grown = realloc(cp, len + ll + 1);
        if (!grown) {
            rc = SQLITE_NOMEM;
            break;
        }
        cp = grown;
        memcpy(cp + len, line, ll + 1);
        len += ll;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(cp);
        return NULL;
    }
    if (log_size)
        *log_size = size;
    return cp;
}
