/*
 * Internal: the one SQLite helper set of the controller. Every module that keeps state in
 * SQLite (the community database in db/, the meter daemon's outbox in bus/outbox.c, the home
 * agent's own store in agent/agent_store.c) opens its file and runs its statements through
 * these helpers, so a file is always opened with the same durability settings and a
 * transaction always begins, commits and rolls back the same way.
 *
 * The helpers return SQLite result codes (SQLITE_OK, SQLITE_DONE, ...), never a module's own
 * codes: each module maps them to its error enum, and sqlite3_errmsg / ctl_sql_errmsg keeps the
 * text. Thread safety: as the sqlite3 handle (one thread at a time per connection).
 */
#ifndef MGX_CTL_SQL_H
#define MGX_CTL_SQL_H

#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;

/* The standard busy timeout: how long a writer waits for another connection's lock. */
#define CTL_SQL_BUSY_MS 5000

/* How a file is opened. Zeroed (or NULL) means the standard settings: created if missing, WAL,
 * synchronous=FULL (a committed transaction survives power loss), busy timeout CTL_SQL_BUSY_MS,
 * SQLite's serialized threading mode. */
typedef struct {
    int busy_ms;      /* 0: CTL_SQL_BUSY_MS */
    int nomutex;      /* the connection is used by one thread at a time: no per-call mutex */
    int foreign_keys; /* PRAGMA foreign_keys=ON (the community database declares references) */
    int exclusive;    /* PRAGMA locking_mode=EXCLUSIVE: a second process on the file fails */
    int cache_kib;    /* page cache in KiB; 0: SQLite's default */
} ctl_sql_opts;

/* Opens (creating if needed) path with o's settings (NULL: the standard ones). On success *db
 * is the caller's (sqlite3_close). On failure *db is NULL, the code is SQLite's and err (if
 * not NULL) says "path: why". */
int ctl_sql_open(const char *path, const ctl_sql_opts *o, sqlite3 **db, char *err,
                 size_t errlen);

/* Runs one or more statements that return no rows. */
/* Checks an existing file without changing it (opened read-only, never created): SQLite's
 * quick_check, and its user_version in *version (if not NULL). SQLITE_OK when the file is
 * sound; SQLITE_CANTOPEN when it is missing or unreadable; SQLITE_CORRUPT when quick_check
 * reports a problem. err (if not NULL) says "path: what". For `mgx doctor`. */
int ctl_sql_check(const char *path, int64_t *version, char *err, size_t errlen);

int ctl_sql_exec(sqlite3 *db, const char *sql);

/* A write transaction: BEGIN IMMEDIATE takes the write lock at once, so two writers never both
 * read and then fail to upgrade (SQLITE_BUSY mid-transaction). */
int ctl_sql_begin(sqlite3 *db);
int ctl_sql_commit(sqlite3 *db);
/* Rolls back if a transaction is open (a no-op otherwise). A successful ROLLBACK clears the
 * connection's error: read sqlite3_errmsg / the extended code before calling it. */
void ctl_sql_rollback(sqlite3 *db);
/* Ends a write transaction: commits when ok is non-zero and returns COMMIT's code (rolling
 * back if COMMIT fails); rolls back and returns SQLITE_ABORT when ok is 0. */
int ctl_sql_end(sqlite3 *db, int ok);

/* An outer write transaction that the transactions above nest in (issue 16: a replicated log
 * entry is applied with the store's own functions, and its effects and the applied log index
 * must commit together). Between ctl_sql_outer_begin and ctl_sql_outer_end on this thread,
 * ctl_sql_begin on db opens a SAVEPOINT, ctl_sql_commit releases it and ctl_sql_rollback
 * rolls back to it (only that inner transaction's writes); ctl_sql_end likewise. One outer
 * transaction per thread at a time (SQLITE_MISUSE otherwise). ctl_sql_outer_end commits when
 * ok (returning COMMIT's code, rolled back if it fails) or rolls back (SQLITE_ABORT). */
int ctl_sql_outer_begin(sqlite3 *db);
int ctl_sql_outer_end(sqlite3 *db, int ok);

/* Prepares sql into *st (NULL on failure). persistent: SQLITE_PREPARE_PERSISTENT, for
 * statements a connection keeps for its lifetime. */
int ctl_sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st);
int ctl_sql_prepare_persistent(sqlite3 *db, const char *sql, sqlite3_stmt **st);

/* Steps st for one row whose first column is an integer: *found = 0 when there is no row or
 * the value is NULL (then *v is unchanged). Resets st (does not finalize it). Returns SQLITE_OK
 * or the step's error. */
int ctl_sql_step_int(sqlite3_stmt *st, int64_t *v, int *found);
/* Prepares, steps and finalizes a query without parameters for one integer (as above). */
int ctl_sql_query_int(sqlite3 *db, const char *sql, int64_t *v, int *found);

/* Whether a table named name exists in the main schema (*exists 0/1). */
int ctl_sql_table_exists(sqlite3 *db, const char *name, int *exists);

/* The connection's last error message; "no database" for NULL. Never NULL. */
const char *ctl_sql_errmsg(sqlite3 *db);

#endif
