/*
 * Private to db/: the one schema of the community database and its forward migrations.
 *
 * Version 1 is the file as the releases before PRAGMA user_version wrote it (their tables, in
 * their layouts, created by store.c, registry.c, ledger_store.c, settle_daemon.c and
 * solana_outbox.c; only store.c's were versioned, in schema_version). A file at user_version 0
 * is such a file, or a new one: every table it lacks is created (the other modules created
 * theirs lazily, so an old file may hold any subset), every table it holds must have today's
 * columns, and then user_version becomes 1. Each later version adds one entry to the migration
 * list; migrations run in order, all in one transaction.
 */
#ifndef MGX_CTL_DB_SCHEMA_H
#define MGX_CTL_DB_SCHEMA_H

#include <stddef.h>

typedef struct sqlite3 sqlite3;

/* Brings db to CTL_DB_VERSION (db.h): a no-op without a write when it is there already.
 * Returns a CTL_DB_* code and a message in err. */
int ctl_db__migrate(sqlite3 *db, char *err, size_t errlen);

/* Whether db holds table with the schema's columns, in order (after a migration every table
 * exists, so a missing one fails too): CTL_DB_OK, CTL_DB_E_SCHEMA with the difference in err,
 * or CTL_DB_E_DB. */
int ctl_db__table_layout(sqlite3 *db, const char *table, char *err, size_t errlen);

#endif
