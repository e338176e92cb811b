/*
 * Private to db/: the raw connection behind a ctl_db, for the files of this module (store.c,
 * registry.c, schema.c) that run their own SQLite statements. Nothing outside controller/db/
 * includes this header: other modules get statements through db.h.
 */
#ifndef MGX_CTL_DB_INTERNAL_H
#define MGX_CTL_DB_INTERNAL_H

#include "db/db.h"

typedef struct sqlite3 sqlite3;

sqlite3 *ctl_db__sqlite(ctl_db *db);

#endif
