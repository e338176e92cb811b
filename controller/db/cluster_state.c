/*
 * The cluster_state table, the apply transaction and the database image of a Raft snapshot
 * (see cluster_state.h).
 */
#include "db/cluster_state.h"

#include "common/errbuf.h"
#include "common/sql.h"
#include "db/db_internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Removes an image file and the -wal / -shm files SQLite may have left beside it. */
static void remove_image(const char *path)
{
    char side[4096];
    unlink(path);
    if (snprintf(side, sizeof side, "%s-wal", path) < (int)sizeof side)
        unlink(side);
    if (snprintf(side, sizeof side, "%s-shm", path) < (int)sizeof side)
        unlink(side);
}

int ctl_db_apply_begin(ctl_db *db)
{
    if (!db)
        return CTL_DB_E_INVAL;
    return ctl_sql_outer_begin(ctl_db__sqlite(db)) == SQLITE_OK ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_db_apply_end(ctl_db *db, int ok)
{
    if (!db)
        return CTL_DB_E_INVAL;
    int rc = ctl_sql_outer_end(ctl_db__sqlite(db), ok);
    return ok && rc == SQLITE_OK ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_db_cluster_applied(ctl_db *db, uint64_t *index)
{
    if (!db || !index)
        return CTL_DB_E_INVAL;
    int64_t v = 0;
    int found = 0;
    if (ctl_sql_query_int(ctl_db__sqlite(db),
                          "SELECT applied_index FROM cluster_state WHERE id = 1", &v,
                          &found) != SQLITE_OK)
        return CTL_DB_E_DB;
    *index = found && v > 0 ? (uint64_t)v : 0;
    return CTL_DB_OK;
}

int ctl_db_cluster_set_applied(ctl_db *db, uint64_t index)
{
    if (!db || index > (uint64_t)INT64_MAX)
        return CTL_DB_E_INVAL;
    sqlite3 *h = ctl_db__sqlite(db);
    sqlite3_stmt *st = NULL;
    int ok = ctl_sql_prepare(h,
                             "INSERT INTO cluster_state(id, applied_index) VALUES(1, ?1) "
                             "ON CONFLICT(id) DO UPDATE SET applied_index = excluded.applied_index",
                             &st) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(st, 1, (int64_t)index);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return ok ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_db_cluster_chain(ctl_db *db, uint64_t *base, uint8_t digest[CTL_DB_CHAIN_LEN])
{
    if (!db || !base || !digest)
        return CTL_DB_E_INVAL;
    memset(digest, 0, CTL_DB_CHAIN_LEN);
    *base = 0;
    sqlite3_stmt *st = NULL;
    if (ctl_sql_prepare(ctl_db__sqlite(db),
                        "SELECT applied_index, chain_base, chain_digest FROM cluster_state "
                        "WHERE id = 1",
                        &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    int rc = sqlite3_step(st);
    int ok = rc == SQLITE_DONE || rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        int64_t applied = sqlite3_column_int64(st, 0);
        const void *blob = sqlite3_column_blob(st, 2);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL && blob &&
            sqlite3_column_bytes(st, 2) == CTL_DB_CHAIN_LEN) {
            int64_t b = sqlite3_column_int64(st, 1);
            *base = b > 0 ? (uint64_t)b : 0;
            memcpy(digest, blob, CTL_DB_CHAIN_LEN);
        } else {
            /* entries applied before the chain existed: it starts here */
            *base = applied > 0 ? (uint64_t)applied : 0;
        }
    }
    sqlite3_finalize(st);
    return ok ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_db_cluster_set_applied_chain(ctl_db *db, uint64_t index, uint64_t base,
                                     const uint8_t digest[CTL_DB_CHAIN_LEN])
{
    if (!db || !digest || index > (uint64_t)INT64_MAX || base > (uint64_t)INT64_MAX)
        return CTL_DB_E_INVAL;
    sqlite3 *h = ctl_db__sqlite(db);
    sqlite3_stmt *st = NULL;
    int ok = ctl_sql_prepare(h,
                             "INSERT INTO cluster_state(id, applied_index, chain_base, "
                             "chain_digest) VALUES(1, ?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET "
                             "applied_index = excluded.applied_index, chain_base = "
                             "excluded.chain_base, chain_digest = excluded.chain_digest",
                             &st) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(st, 1, (int64_t)index);
        sqlite3_bind_int64(st, 2, (int64_t)base);
        sqlite3_bind_blob(st, 3, digest, CTL_DB_CHAIN_LEN, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return ok ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_db_image(ctl_db *db, const char *tmp_path, uint8_t **bytes, size_t *len, char *err,
                 size_t errlen)
{
    if (!db || !tmp_path || !bytes || !len)
        return CTL_DB_E_INVAL;
    *bytes = NULL;
    *len = 0;
    sqlite3 *h = ctl_db__sqlite(db);
    int out = CTL_DB_E_DB;
    uint8_t *buf = NULL;
    FILE *f = NULL;
    sqlite3_stmt *st = NULL;
    if (unlink(tmp_path) != 0 && errno != ENOENT) {
        ctl_errf(err, errlen, "%s: %s", tmp_path, strerror(errno));
        goto out;
    }
    /* VACUUM INTO writes a consistent copy of the last committed state without blocking the
     * writer for longer than the copy */
    if (ctl_sql_prepare(h, "VACUUM INTO ?1", &st) != SQLITE_OK) {
        ctl_errf(err, errlen, "snapshot: %s", ctl_sql_errmsg(h));
        goto out;
    }
    sqlite3_bind_text(st, 1, tmp_path, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        ctl_errf(err, errlen, "snapshot into %s: %s", tmp_path, ctl_sql_errmsg(h));
        goto out;
    }
    f = fopen(tmp_path, "rb");
    long n;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        ctl_errf(err, errlen, "%s: %s", tmp_path, strerror(errno));
        goto out;
    }
    buf = malloc(n ? (size_t)n : 1);
    if (!buf) {
        out = CTL_DB_E_NOMEM;
        goto out;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        ctl_errf(err, errlen, "%s: short read", tmp_path);
        goto out;
    }
    *bytes = buf;
    *len = (size_t)n;
    buf = NULL;
    out = CTL_DB_OK;
out:
    sqlite3_finalize(st);
    if (f)
        fclose(f);
    unlink(tmp_path);
    free(buf);
    return out;
}

int ctl_db_load_image(ctl_db *db, const char *tmp_path, const uint8_t *bytes, size_t len, char *err,
                      size_t errlen)
{
    if (!db || !tmp_path || (!bytes && len))
        return CTL_DB_E_INVAL;
    sqlite3 *h = ctl_db__sqlite(db);
    sqlite3 *src = NULL;
    sqlite3_backup *bk = NULL;
    int out = CTL_DB_E_DB;
    FILE *f = fopen(tmp_path, "wb");
    if (!f || fwrite(bytes, 1, len, f) != len || fflush(f) != 0) {
        ctl_errf(err, errlen, "%s: %s", tmp_path, strerror(errno));
        goto out;
    }
    fclose(f);
    f = NULL;
    /* read-write: an image of a WAL database keeps WAL in its header, and reading one needs its
     * -shm file created beside it */
    if (sqlite3_open_v2(tmp_path, &src, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        ctl_errf(err, errlen, "%s: %s", tmp_path, src ? sqlite3_errmsg(src) : "cannot open");
        goto out;
    }
    /* one step of all pages: the destination is locked once and replaced in one commit */
    bk = sqlite3_backup_init(h, "main", src, "main");
    if (!bk) {
        ctl_errf(err, errlen, "restore: %s", sqlite3_errmsg(h));
        goto out;
    }
    int rc = sqlite3_backup_step(bk, -1);
    int fin = sqlite3_backup_finish(bk);
    bk = NULL;
    if (rc != SQLITE_DONE || fin != SQLITE_OK) {
        ctl_errf(err, errlen, "restore: %s", sqlite3_errstr(rc != SQLITE_DONE ? rc : fin));
        goto out;
    }
    out = CTL_DB_OK;
out:
    if (f)
        fclose(f);
    sqlite3_close(src);
    remove_image(tmp_path);
    return out;
}
