/*
 * The controller's SQLite helpers (sql.h): the opener with the durability settings, exec,
 * transactions and small queries. Nothing here knows a table: schemas live with their owners
 * (db/schema.c for the community database, bus/outbox.c and agent/agent_store.c for theirs).
 */
#include "common/sql.h"

#include "common/errbuf.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

int ctl_sql_open(const char *path, const ctl_sql_opts *o, sqlite3 **db, char *err, size_t errlen)
{
    static const ctl_sql_opts standard = {0, 0, 0, 0, 0};
    if (!db)
        return SQLITE_MISUSE;
    *db = NULL;
    if (!path)
        return SQLITE_MISUSE;
    if (!o)
        o = &standard;
    sqlite3 *h = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | (o->nomutex ? SQLITE_OPEN_NOMUTEX : 0);
    int rc = sqlite3_open_v2(path, &h, flags, NULL);
    if (rc != SQLITE_OK) {
        ctl_errf(err, errlen, "%s: %s", path, h ? sqlite3_errmsg(h) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(h, o->busy_ms > 0 ? o->busy_ms : CTL_SQL_BUSY_MS);
    char pragma[64];
    /* the locking mode comes first: it decides how WAL's shared memory is taken */
    if ((o->exclusive && (rc = ctl_sql_exec(h, "PRAGMA locking_mode=EXCLUSIVE")) != SQLITE_OK) ||
        (rc = ctl_sql_exec(h, "PRAGMA journal_mode=WAL")) != SQLITE_OK ||
        (rc = ctl_sql_exec(h, "PRAGMA synchronous=FULL")) != SQLITE_OK ||
        (o->foreign_keys && (rc = ctl_sql_exec(h, "PRAGMA foreign_keys=ON")) != SQLITE_OK))
        goto pragma_fail;
    if (o->cache_kib > 0) {
        snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%d", o->cache_kib);
        if ((rc = ctl_sql_exec(h, pragma)) != SQLITE_OK)
            goto pragma_fail;
    }
    *db = h;
    return SQLITE_OK;
pragma_fail:
    ctl_errf(err, errlen, "%s: %s", path, sqlite3_errmsg(h));
fail:
    sqlite3_close(h);
    return rc != SQLITE_OK ? rc : SQLITE_ERROR;
}

int ctl_sql_check(const char *path, int64_t *version, char *err, size_t errlen)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        ctl_errf(err, errlen, "%s: %s", path, h ? sqlite3_errmsg(h) : "cannot open");
        rc = SQLITE_CANTOPEN;
        goto out;
    }
    sqlite3_busy_timeout(h, CTL_SQL_BUSY_MS);
    int found = 0;
    int64_t v = 0;
    if ((rc = ctl_sql_query_int(h, "PRAGMA user_version", &v, &found)) != SQLITE_OK)
        goto fail;
    if (version)
        *version = v;
    if ((rc = sqlite3_prepare_v2(h, "PRAGMA quick_check", -1, &st, NULL)) != SQLITE_OK)
        goto fail;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        goto fail;
    const char *verdict = (const char *)sqlite3_column_text(st, 0);
    if (!verdict || strcmp(verdict, "ok") != 0) {
        ctl_errf(err, errlen, "%s: quick_check: %s", path, verdict ? verdict : "no answer");
        rc = SQLITE_CORRUPT;
        goto out;
    }
    rc = SQLITE_OK;
    goto out;
fail:
    ctl_errf(err, errlen, "%s: %s", path, sqlite3_errmsg(h));
    if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE)
        rc = SQLITE_ERROR;
out:
    sqlite3_finalize(st);
    sqlite3_close(h);
    return rc;
}

int ctl_sql_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* The outer transaction of a replicated apply (ctl_sql_outer_begin): the connection it is open
 * on and how many inner transactions are open inside it, for this thread. A connection is used
 * by one thread at a time (db.h), and an apply runs from begin to end on one thread, so a
 * thread-local pair is the whole state; every other connection of the thread is unaffected. */
static _Thread_local sqlite3 *outer_db;
static _Thread_local int inner_depth;

int ctl_sql_outer_begin(sqlite3 *db)
{
    if (!db || outer_db)
        return SQLITE_MISUSE; /* one outer transaction per thread */
    int rc = ctl_sql_exec(db, "BEGIN IMMEDIATE");
    if (rc == SQLITE_OK) {
        outer_db = db;
        inner_depth = 0;
    }
    return rc;
}

int ctl_sql_outer_end(sqlite3 *db, int ok)
{
    if (!db || db != outer_db)
        return SQLITE_MISUSE;
    /* an inner transaction left open is a bug in its owner; the ROLLBACK or COMMIT below ends it
     * with the outer one */
    outer_db = NULL;
    inner_depth = 0;
    if (ok) {
        int rc = ctl_sql_exec(db, "COMMIT");
        if (rc == SQLITE_OK)
            return SQLITE_OK;
        if (!sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return SQLITE_ABORT;
}

int ctl_sql_begin(sqlite3 *db)
{
    if (db && db == outer_db) {
        int rc = ctl_sql_exec(db, "SAVEPOINT ctl_inner");
        if (rc == SQLITE_OK)
            inner_depth++;
        return rc;
    }
    return ctl_sql_exec(db, "BEGIN IMMEDIATE");
}

int ctl_sql_commit(sqlite3 *db)
{
    if (db && db == outer_db) {
        if (inner_depth == 0)
            return SQLITE_MISUSE; /* only the outer owner commits the outer transaction */
        int rc = ctl_sql_exec(db, "RELEASE ctl_inner");
        if (rc == SQLITE_OK)
            inner_depth--;
        return rc;
    }
    return ctl_sql_exec(db, "COMMIT");
}

void ctl_sql_rollback(sqlite3 *db)
{
    if (db && db == outer_db) {
        /* an inner failure undoes only its own writes; the apply decides for the rest */
        if (inner_depth > 0) {
            sqlite3_exec(db, "ROLLBACK TO ctl_inner", NULL, NULL, NULL);
            sqlite3_exec(db, "RELEASE ctl_inner", NULL, NULL, NULL);
            inner_depth--;
        }
        return;
    }
    /* with autocommit on there is nothing to undo, and a ROLLBACK would only overwrite the
     * error the caller is about to report */
    if (db && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int ctl_sql_end(sqlite3 *db, int ok)
{
    if (ok) {
        int rc = ctl_sql_commit(db);
        if (rc == SQLITE_OK)
            return SQLITE_OK;
        ctl_sql_rollback(db);
        return rc;
    }
    ctl_sql_rollback(db);
    return SQLITE_ABORT;
}

int ctl_sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    *st = NULL;
    return sqlite3_prepare_v2(db, sql, -1, st, NULL);
}

int ctl_sql_prepare_persistent(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    *st = NULL;
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

int ctl_sql_step_int(sqlite3_stmt *st, int64_t *v, int *found)
{
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (*found)
        *v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int ctl_sql_query_int(sqlite3 *db, const char *sql, int64_t *v, int *found)
{
    sqlite3_stmt *st;
    int rc = ctl_sql_prepare(db, sql, &st);
    if (rc != SQLITE_OK)
        return rc;
    rc = ctl_sql_step_int(st, v, found);
    sqlite3_finalize(st);
    return rc;
}

int ctl_sql_table_exists(sqlite3 *db, const char *name, int *exists)
{
    sqlite3_stmt *st;
    *exists = 0;
    int rc =
        ctl_sql_prepare(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", &st);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int64_t v;
    rc = ctl_sql_step_int(st, &v, exists);
    sqlite3_finalize(st);
    return rc;
}

const char *ctl_sql_errmsg(sqlite3 *db)
{
    return db ? sqlite3_errmsg(db) : "no database";
}
