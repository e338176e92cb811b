/*
 * The community database handle (db.h): one opener with the settings every user of the file
 * shares, the migration on open (schema.c), and statement access for the modules that keep
 * their own SQL on the file.
 */
#include "db/db.h"

#include "common/errbuf.h"
#include "common/sql.h"
#include "db/db_internal.h"
#include "db/schema.h"

#include <sqlite3.h>
#include <stdlib.h>

struct ctl_db {
    sqlite3 *h;
};

const char *ctl_db_strerror(int code)
{
    switch (code) {
    case CTL_DB_OK: return "ok";
    case CTL_DB_E_INVAL: return "invalid argument";
    case CTL_DB_E_DB: return "database error";
    case CTL_DB_E_VERSION: return "database written by a newer mgx";
    case CTL_DB_E_SCHEMA: return "database holds a table with an unexpected layout";
    case CTL_DB_E_NOMEM: return "out of memory";
    default: return "unknown database error";
    }
}

int ctl_db_open(const char *path, ctl_db **out, char *err, size_t errlen)
{
    if (!out)
        return CTL_DB_E_INVAL;
    *out = NULL;
    if (!path)
        return CTL_DB_E_INVAL;
    ctl_db *db = calloc(1, sizeof *db);
    if (!db)
        return ctl_fail(CTL_DB_E_NOMEM, err, errlen, "%s: out of memory", path);
    /* WAL + FULL: a committed transaction survives power loss; readers never block the writer.
     * A 32 MiB page cache keeps the order indexes in memory (SQLite's default 2 MB means a read
     * syscall for most index lookups once a few thousand orders are stored). One thread at a
     * time per handle (db.h): no per-call mutex, which the order path would pay for every bind
     * and step. */
    const ctl_sql_opts opts = {.nomutex = 1, .foreign_keys = 1, .cache_kib = 32768};
    int rc = CTL_DB_E_DB;
    if (ctl_sql_open(path, &opts, &db->h, err, errlen) != SQLITE_OK)
        goto fail;
    char why[512] = "";
    if ((rc = ctl_db__migrate(db->h, why, sizeof why)) != CTL_DB_OK) {
        ctl_errf(err, errlen, "%s: %s", path, why);
        goto fail;
    }
    *out = db;
    return CTL_DB_OK;
fail:
    ctl_db_close(db);
    return rc;
}

int ctl_db_open_readonly(const char *path, ctl_db **out, char *err, size_t errlen)
{
    if (!out)
        return CTL_DB_E_INVAL;
    *out = NULL;
    if (!path)
        return CTL_DB_E_INVAL;
    ctl_db *db = calloc(1, sizeof *db);
    if (!db)
        return ctl_fail(CTL_DB_E_NOMEM, err, errlen, "%s: out of memory", path);
    int rc = CTL_DB_E_DB;
    if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        ctl_errf(err, errlen, "%s: %s", path, db->h ? sqlite3_errmsg(db->h) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(db->h, CTL_SQL_BUSY_MS);
    int64_t v = 0;
    if (ctl_db_version(db, &v) != CTL_DB_OK) {
        ctl_errf(err, errlen, "%s: %s", path, sqlite3_errmsg(db->h));
        goto fail;
    }
    if (v != CTL_DB_VERSION) {
        rc = CTL_DB_E_VERSION;
        ctl_errf(err, errlen, "%s: database version %lld, this mgx reads %d (%s)", path,
                 (long long)v, CTL_DB_VERSION,
                 v > CTL_DB_VERSION ? "written by a newer mgx" : "not yet migrated by its owner");
        goto fail;
    }
    *out = db;
    return CTL_DB_OK;
fail:
    ctl_db_close(db);
    return rc;
}

void ctl_db_close(ctl_db *db)
{
    if (!db)
        return;
    sqlite3_close(db->h);
    free(db);
}

sqlite3 *ctl_db__sqlite(ctl_db *db)
{
    return db ? db->h : NULL;
}

int ctl_db_version(ctl_db *db, int64_t *version)
{
    int found;
    *version = 0;
    return ctl_sql_query_int(db->h, "PRAGMA user_version", version, &found) == SQLITE_OK
               ? CTL_DB_OK
               : CTL_DB_E_DB;
}

int ctl_db_prepare(ctl_db *db, const char *sql, sqlite3_stmt **st)
{
    return ctl_sql_prepare(db->h, sql, st);
}

int ctl_db_prepare_persistent(ctl_db *db, const char *sql, sqlite3_stmt **st)
{
    return ctl_sql_prepare_persistent(db->h, sql, st);
}

int ctl_db_exec(ctl_db *db, const char *sql)
{
    return ctl_sql_exec(db->h, sql);
}

int ctl_db_begin(ctl_db *db)
{
    return ctl_sql_begin(db->h);
}

int ctl_db_end(ctl_db *db, int ok)
{
    return ctl_sql_end(db->h, ok);
}

void ctl_db_rollback(ctl_db *db)
{
    ctl_sql_rollback(db->h);
}

int ctl_db_read_begin(ctl_db *db)
{
    return sqlite3_get_autocommit(db->h) && ctl_sql_exec(db->h, "BEGIN") == SQLITE_OK;
}

void ctl_db_read_end(ctl_db *db)
{
    ctl_sql_exec(db->h, "COMMIT"); /* a read: nothing to lose */
}

int64_t ctl_db_changes(ctl_db *db)
{
    return sqlite3_changes(db->h);
}

int64_t ctl_db_last_rowid(ctl_db *db)
{
    return sqlite3_last_insert_rowid(db->h);
}

const char *ctl_db_errmsg(ctl_db *db)
{
    return ctl_sql_errmsg(db ? db->h : NULL);
}

int ctl_db_errcode(ctl_db *db)
{
    return db && db->h ? sqlite3_extended_errcode(db->h) : SQLITE_MISUSE;
}

void ctl_db_busy_timeout(ctl_db *db, int ms)
{
    sqlite3_busy_timeout(db->h, ms);
}
