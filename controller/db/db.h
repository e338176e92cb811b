/*
 * Internal: the community database, the one SQLite file the controller, `mgx ledger`,
 * `mgx participant`, settlement and the Solana outbox share. This module owns it: one opener
 * with one set of settings (WAL, synchronous=FULL, busy timeout, foreign keys), one schema for
 * every table of the file (db/schema.c), versioned with PRAGMA user_version and brought up to
 * date by forward migrations when the file is opened.
 *
 * Other modules work on a ctl_db handle, never on a raw sqlite3 connection and never open the
 * file themselves: store.c and registry.c (this module) hold the typed reads and writes of the
 * market and the participants; modules that keep their own statements (settle/ledger_store,
 * settle/settle_daemon's settle_state, solana/solana_outbox, cli/cmd_ledger) prepare them
 * through ctl_db_prepare and run their transactions with ctl_db_begin / ctl_db_end.
 *
 * Thread safety: a ctl_db is used by one thread at a time. Ownership: the caller of
 * ctl_db_open owns the handle (ctl_db_close); statements it prepares are the caller's
 * (sqlite3_finalize) and must be finalized before ctl_db_close.
 */
#ifndef MGX_CTL_DB_H
#define MGX_CTL_DB_H

#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3_stmt sqlite3_stmt;

/* The schema version this mgx writes and reads (PRAGMA user_version). A file with a greater
 * version was written by a newer mgx and is refused, not misread. */
#define CTL_DB_VERSION 13

enum {
    CTL_DB_OK = 0,
    CTL_DB_E_INVAL = -1,   /* bad argument */
    CTL_DB_E_DB = -2,      /* SQLite failed (message in the err buffer / ctl_db_errmsg) */
    CTL_DB_E_VERSION = -3, /* the file's user_version is newer than CTL_DB_VERSION */
    CTL_DB_E_SCHEMA = -4,  /* a table of ours exists in the file with other columns */
    CTL_DB_E_NOMEM = -5
};

/* Static English text for a CTL_DB_* code; never NULL. */
const char *ctl_db_strerror(int code);

typedef struct ctl_db ctl_db;

/* Opens (creating if needed) the community database at path and migrates it to
 * CTL_DB_VERSION in one transaction (a file already at that version is not written). On
 * success *out is the caller's. On failure *out is NULL and err (if not NULL) says
 * "path: why". */
int ctl_db_open(const char *path, ctl_db **out, char *err, size_t errlen);
/* Opens an existing community database read-only (never created, migrated or written): for a
 * reader that must not be able to change it, such as a witness (controller/witness/). The
 * file must be at CTL_DB_VERSION (CTL_DB_E_VERSION otherwise, with err saying which way). A
 * WAL database needs its -shm file or a writable folder to be read. */
int ctl_db_open_readonly(const char *path, ctl_db **out, char *err, size_t errlen);
/* NULL is a no-op. */
void ctl_db_close(ctl_db *db);

/* The file's PRAGMA user_version. */
int ctl_db_version(ctl_db *db, int64_t *version);

/* ---- statements, for modules that keep their own SQL on the shared file ---- */

/* Prepares sql into *st (the caller finalizes it). Returns SQLite's code (SQLITE_OK). */
int ctl_db_prepare(ctl_db *db, const char *sql, sqlite3_stmt **st);
/* The same for a statement kept for the connection's lifetime. */
int ctl_db_prepare_persistent(ctl_db *db, const char *sql, sqlite3_stmt **st);
/* Runs statements that return no rows. SQLite's code. */
int ctl_db_exec(ctl_db *db, const char *sql);
/* BEGIN IMMEDIATE; ctl_db_end commits when ok (COMMIT's code, rolled back if it fails) or
 * rolls back (SQLITE_ABORT); ctl_db_rollback rolls back an open transaction, if any. */
int ctl_db_begin(ctl_db *db);
int ctl_db_end(ctl_db *db, int ok);
void ctl_db_rollback(ctl_db *db);
/* A read transaction (deferred BEGIN), so a run of lookups sees one snapshot and takes the
 * lock once: returns 1 when it began one (end it with ctl_db_read_end), 0 when a transaction
 * is already open on db or BEGIN failed (then the lookups run in autocommit). */
int ctl_db_read_begin(ctl_db *db);
void ctl_db_read_end(ctl_db *db);
/* Rows changed by the last statement; rowid of the last insert. */
int64_t ctl_db_changes(ctl_db *db);
int64_t ctl_db_last_rowid(ctl_db *db);
/* The last error: message (never NULL) and SQLite's extended code. */
const char *ctl_db_errmsg(ctl_db *db);
int ctl_db_errcode(ctl_db *db);
/* How long a writer waits for another connection's lock (default CTL_SQL_BUSY_MS). */
void ctl_db_busy_timeout(ctl_db *db, int ms);

#endif
