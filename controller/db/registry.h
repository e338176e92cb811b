/*
 * The community's participant registry: who may trade, with which public key and which meter.
 *
 * A thin adapter over one table, `participants`, of the community database (db.h, which
 * declares the table). It works on the caller's ctl_db handle, so the controller daemon and
 * `mgx participant` share one file; every write is a BEGIN IMMEDIATE transaction so a running
 * daemon and the CLI can both use it (WAL mode, busy timeout: ctl_db_open's settings). Lookups
 * read the table each time, so a participant added or removed while the daemon runs takes
 * effect with the next order.
 *
 * Thread safety: as the ctl_db handle (one thread at a time per handle).
 */
#ifndef MGX_CTL_REGISTRY_H
#define MGX_CTL_REGISTRY_H

#include "common/ident.h"
#include "db/db.h"

#include <stddef.h>
#include <stdint.h>

enum {
    CTL_REG_OK = 0,
    CTL_REG_E_INVAL = -1,     /* NULL argument, invalid id/meter id or role */
    CTL_REG_E_EXISTS = -2,    /* the participant id is taken */
    CTL_REG_E_KEY_USED = -3,  /* another participant has this public key */
    CTL_REG_E_METER_USED = -4,/* another participant has this meter */
    CTL_REG_E_NOT_FOUND = -5, /* no such participant */
    CTL_REG_E_DB = -6,        /* SQLite failed: ctl_db_errmsg(db) says why */
    CTL_REG_E_SCHEMA = -7,    /* the table exists with an unexpected layout */
    CTL_REG_E_BAD_ROW = -8    /* list: rows whose ids break the id rule were skipped */
};

/* Static English text for a CTL_REG_* code; never NULL. */
const char *ctl_registry_strerror(int code);

typedef enum {
    CTL_ROLE_HOME = 0,       /* submits orders, has a meter */
    CTL_ROLE_CONTROLLER = 1, /* the community's controller (its key signs results) */
    CTL_ROLE_OBSERVER = 2,   /* reads public results; may not submit orders */
    CTL_ROLE_BOUNDARY = 3    /* the coordinator's meter at the transformer or feeder: its
                              * readings balance the homes' (docs/trust.md, layer 3); never
                              * trades, never settled */
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

/* Opens (creating if needed) the community database at path (ctl_db_open) and checks the
 * registry table (ctl_registry_init). The caller closes *db with ctl_db_close. On failure *db
 * is NULL and err (if not NULL) says why: CTL_REG_E_SCHEMA when a table has another layout,
 * else CTL_REG_E_DB. */
int ctl_registry_open(const char *path, ctl_db **db, char *err, size_t errlen);

/* Checks that the participants table has the registry's columns (CTL_REG_E_SCHEMA if not).
 * The table itself is the db module's (created by ctl_db_open); this is idempotent. */
int ctl_registry_init(ctl_db *db);

/* Adds p (p->added_s is ignored and set to now_s). Ids and meter ids must be valid identifiers
 * (meter may be ""). Fails with EXISTS / KEY_USED / METER_USED without changing anything. */
int ctl_registry_add(ctl_db *db, const ctl_participant *p, int64_t now_s);

/* Removes a participant. CTL_REG_E_NOT_FOUND if absent. Orders already stored elsewhere stay.
 * Also takes ids that only older versions allowed (with '.', or 64 characters), so such rows
 * can be cleared out; every other function refuses them. */
int ctl_registry_remove(ctl_db *db, const char *id);

/* Looks a participant up by id, or by meter id. CTL_REG_OK (fills *out), CTL_REG_E_NOT_FOUND. */
int ctl_registry_lookup(ctl_db *db, const char *id, ctl_participant *out);
int ctl_registry_lookup_meter(ctl_db *db, const char *meter_id, ctl_participant *out);

/* A lookup by id with its statement kept prepared, for callers that look a participant up for
 * every message (the controller's order intake): a lookup then costs an index search, not a SQL
 * compile. It reads the table every time, so changes by other processes count at once. It
 * belongs to db's thread; free it before closing db. */
typedef struct ctl_registry_reader ctl_registry_reader;
/* CTL_REG_OK, CTL_REG_E_INVAL, or CTL_REG_E_DB (also when out of memory). *out is the
 * caller's. The statement is prepared on the first lookup. */
int ctl_registry_reader_new(ctl_db *db, ctl_registry_reader **out);
/* As ctl_registry_lookup. */
int ctl_registry_reader_lookup(ctl_registry_reader *r, const char *id, ctl_participant *out);
/* NULL is a no-op. */
void ctl_registry_reader_free(ctl_registry_reader *r);

/* Calls fn for each participant in ascending byte order of id. fn returns 0 to go on, anything
 * else to stop (that value is returned). Rows whose ids break the rule (written by an older
 * version) are skipped, and the list then ends with CTL_REG_E_BAD_ROW. */
int ctl_registry_list(ctl_db *db, int (*fn)(const ctl_participant *p, void *ctx), void *ctx);

/* ---- physical limits (issue 12) ----
 * What a home can physically do, registered by the coordinator: settlement holds an interval
 * whose metered energy exceeds them (docs/trust.md). Each field is CTL_LIMIT_NONE when not
 * registered (then that check is off), else >= 0; 0 means "none" (pv_wp 0: no solar). */
#define CTL_LIMIT_NONE INT64_C(-1)
#define CTL_LIMIT_KEEP INT64_C(-2) /* ctl_registry_limits_set: leave the stored value */
#define CTL_LIMIT_MAX_W INT64_C(1000000000000) /* 1 TW: anything above is a typing error */
typedef struct {
    int64_t connection_w; /* the connection's capacity, both directions (A x V x phases) */
    int64_t pv_wp;        /* registered PV peak power */
    int64_t battery_wh;   /* usable battery energy */
    int64_t battery_w;    /* battery's largest discharge power */
} ctl_limits;

/* The limits of participant id; every field CTL_LIMIT_NONE when none are registered (also for
 * an unknown id). CTL_REG_OK, CTL_REG_E_INVAL, CTL_REG_E_DB. */
int ctl_registry_limits_get(ctl_db *db, const char *id, ctl_limits *out);
/* Sets the limits of an existing participant: each field a value in 0..CTL_LIMIT_MAX_W,
 * CTL_LIMIT_NONE (clear) or CTL_LIMIT_KEEP. CTL_REG_E_NOT_FOUND when id is not registered. */
int ctl_registry_limits_set(ctl_db *db, const char *id, const ctl_limits *l);

/* Number of participants, or a negative CTL_REG_E_* code. */
int64_t ctl_registry_count(ctl_db *db);

#endif
