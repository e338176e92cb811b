/*
 * The community's participant registry: who may trade, with which public key and which meter.
 *
 * A thin adapter over one table, `participants`, in the controller's SQLite database. It works
 * on the caller's sqlite3 handle, so the controller daemon and `mgx participant` share one file;
 * every write is a BEGIN IMMEDIATE transaction so a running daemon and the CLI can both use it
 * (WAL mode, busy timeout: set by whoever opens the database; ctl_registry_open does). Lookups
 * read the table each time, so a participant added or removed while the daemon runs takes
 * effect with the next order.
 *
 * Thread safety: as the sqlite3 handle (one thread at a time per handle).
 */
#ifndef MGX_CTL_REGISTRY_H
#define MGX_CTL_REGISTRY_H

#include "common/ident.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;

enum {
    CTL_REG_OK = 0,
    CTL_REG_E_INVAL = -1,     /* NULL argument, invalid id/meter id or role */
    CTL_REG_E_EXISTS = -2,    /* the participant id is taken */
    CTL_REG_E_KEY_USED = -3,  /* another participant has this public key */
    CTL_REG_E_METER_USED = -4,/* another participant has this meter */
    CTL_REG_E_NOT_FOUND = -5, /* no such participant */
    CTL_REG_E_DB = -6,        /* SQLite failed: sqlite3_errmsg(db) says why */
    CTL_REG_E_SCHEMA = -7,    /* the table exists with an unexpected layout */
    CTL_REG_E_BAD_ROW = -8    /* list: rows whose ids break the id rule were skipped */
};

/* Static English text for a CTL_REG_* code; never NULL. */
const char *ctl_registry_strerror(int code);

typedef enum {
    CTL_ROLE_HOME = 0,       /* submits orders, has a meter */
    CTL_ROLE_CONTROLLER = 1, /* the community's controller (its key signs results) */
    CTL_ROLE_OBSERVER = 2    /* reads public results; may not submit orders */
} ctl_role;

/* "home", "controller", "observer"; NULL for anything else. */
const char *ctl_role_name(int role);
/* The reverse; -1 for an unknown name. */
int ctl_role_parse(const char *name);

typedef struct {
    char id[CTL_ID_MAX + 1];
    uint8_t pubkey[CTL_PUBKEY_BYTES];
    char meter_id[CTL_ID_MAX + 1]; /* "" when the participant has no meter */
    ctl_role role;
    int64_t added_s; /* unix time of `add`, set by ctl_registry_add */
} ctl_participant;

/* Opens (creating if needed) a database file for registry use: WAL, synchronous=FULL, busy
 * timeout 5 s, foreign keys on, and the registry table. The caller closes *db with
 * sqlite3_close. CTL_REG_E_DB with *db set (for sqlite3_errmsg) or NULL if out of memory. */
int ctl_registry_open(const char *path, sqlite3 **db);

/* Creates the participants table and its indexes if missing (idempotent; run it from the
 * controller's schema set-up). Checks an existing table's columns (CTL_REG_E_SCHEMA). */
int ctl_registry_init(sqlite3 *db);

/* Adds p (p->added_s is ignored and set to now_s). Ids and meter ids must be valid identifiers
 * (meter may be ""). Fails with EXISTS / KEY_USED / METER_USED without changing anything. */
int ctl_registry_add(sqlite3 *db, const ctl_participant *p, int64_t now_s);

/* Removes a participant. CTL_REG_E_NOT_FOUND if absent. Orders already stored elsewhere stay.
 * Also takes ids that only older versions allowed (with '.', or 64 characters), so such rows
 * can be cleared out; every other function refuses them. */
int ctl_registry_remove(sqlite3 *db, const char *id);

/* Looks a participant up by id, or by meter id. CTL_REG_OK (fills *out), CTL_REG_E_NOT_FOUND. */
int ctl_registry_lookup(sqlite3 *db, const char *id, ctl_participant *out);
int ctl_registry_lookup_meter(sqlite3 *db, const char *meter_id, ctl_participant *out);

/* A lookup by id with its statement kept prepared, for callers that look a participant up for
 * every message (the controller's order intake): a lookup then costs an index search, not a SQL
 * compile. It reads the table every time, so changes by other processes count at once. It
 * belongs to db's thread; free it before closing db. */
typedef struct ctl_registry_reader ctl_registry_reader;
/* CTL_REG_OK, CTL_REG_E_INVAL, or CTL_REG_E_DB (also when out of memory). *out is the
 * caller's. The statement is prepared on the first lookup. */
int ctl_registry_reader_new(sqlite3 *db, ctl_registry_reader **out);
/* As ctl_registry_lookup. */
int ctl_registry_reader_lookup(ctl_registry_reader *r, const char *id, ctl_participant *out);
/* NULL is a no-op. */
void ctl_registry_reader_free(ctl_registry_reader *r);

/* Calls fn for each participant in ascending byte order of id. fn returns 0 to go on, anything
 * else to stop (that value is returned). Rows whose ids break the rule (written by an older
 * version) are skipped, and the list then ends with CTL_REG_E_BAD_ROW. */
int ctl_registry_list(sqlite3 *db, int (*fn)(const ctl_participant *p, void *ctx), void *ctx);

/* Number of participants, or a negative CTL_REG_E_* code. */
int64_t ctl_registry_count(sqlite3 *db);

#endif
