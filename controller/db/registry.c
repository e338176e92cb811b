/*
 * The participant registry in SQLite. One table; the public key is stored as a 32-byte blob and
 * constraints in the schema (not only in C) keep ids, keys and meters unique, so two writers can
 * never both succeed in adding the same participant or key.
 */
#include "db/registry.h"

#include "common/sql.h"
#include "db/db_internal.h"
#include "db/schema.h"

#include <sqlite3.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Every read takes these columns in this order (read_row). */
#define SELECT_PARTICIPANTS "SELECT id, pubkey, meter_id, role, added_s FROM participants"

static const char *const REG_ERRORS[] = {
    "success",
    "invalid argument (id, meter id or role)",
    "a participant with this id already exists",
    "another participant already has this public key",
    "another participant already has this meter",
    "no such participant",
    "database error",
    "the participants table has an unexpected layout",
    "some stored ids break the id rule (" CTL_ID_RULE "; older versions also allowed '.' and 64 "
    "characters): such participants cannot use the bus; remove them and add them again",
};

const char *ctl_registry_strerror(int code)
{
    if (code > 0 || -code >= (int)(sizeof REG_ERRORS / sizeof REG_ERRORS[0]))
        return "unknown registry error";
    return REG_ERRORS[-code];
}

static const char *const ROLE_NAMES[] = {"home", "controller", "observer", "boundary"};
#define N_ROLES 4

const char *ctl_role_name(int role)
{
    return role >= 0 && role < N_ROLES ? ROLE_NAMES[role] : NULL;
}

int ctl_role_parse(const char *name)
{
    for (int i = 0; name && i < N_ROLES; i++)
        if (strcmp(name, ROLE_NAMES[i]) == 0)
            return i;
    return -1;
}

int ctl_registry_init(ctl_db *cdb)
{
    sqlite3 *db = ctl_db__sqlite(cdb);
    if (!db)
        return CTL_REG_E_INVAL;
    /* the layout is the schema's (db/schema.c); this guards a table replaced after the open */
    switch (ctl_db__table_layout(db, "participants", NULL, 0)) {
    case CTL_DB_OK:
        return CTL_REG_OK;
    case CTL_DB_E_SCHEMA:
        return CTL_REG_E_SCHEMA;
    default:
        return CTL_REG_E_DB;
    }
}

int ctl_registry_open(const char *path, ctl_db **db, char *err, size_t errlen)
{
    if (!path || !db)
        return CTL_REG_E_INVAL;
    *db = NULL;
    int rc = ctl_db_open(path, db, err, errlen);
    if (rc != CTL_DB_OK)
        return rc == CTL_DB_E_SCHEMA ? CTL_REG_E_SCHEMA : CTL_REG_E_DB;
    if ((rc = ctl_registry_init(*db)) != CTL_REG_OK) {
        ctl_db_close(*db);
        *db = NULL;
    }
    return rc;
}

static int valid_entry(const ctl_participant *p)
{
    return p && ctl_id_valid(p->id) && (p->meter_id[0] == '\0' || ctl_id_valid(p->meter_id)) &&
           ctl_role_name((int)p->role) != NULL;
}

/* Runs one write statement in its own BEGIN IMMEDIATE transaction. */
static int write_tx(sqlite3 *db, sqlite3_stmt *st, int *changes)
{
    if (ctl_sql_begin(db) != SQLITE_OK)
        return SQLITE_ERROR;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        *changes = sqlite3_changes(db);
        if (ctl_sql_commit(db) != SQLITE_OK)
            rc = SQLITE_ERROR;
    }
    if (rc != SQLITE_DONE) {
        /* keep the statement's error code: ROLLBACK would not change sqlite3_errmsg's meaning
         * for the constraint case, which is what the caller distinguishes */
        int ext = sqlite3_extended_errcode(db);
        ctl_sql_rollback(db);
        return ext;
    }
    return SQLITE_DONE;
}

/* Which UNIQUE constraint an insert hit. */
static int which_conflict(ctl_db *db, const ctl_participant *p)
{
    ctl_participant other;
    if (ctl_registry_lookup(db, p->id, &other) == CTL_REG_OK)
        return CTL_REG_E_EXISTS;
    if (p->meter_id[0] && ctl_registry_lookup_meter(db, p->meter_id, &other) == CTL_REG_OK)
        return CTL_REG_E_METER_USED;
    return CTL_REG_E_KEY_USED;
}

int ctl_registry_add(ctl_db *cdb, const ctl_participant *p, int64_t now_s)
{
    sqlite3 *db = ctl_db__sqlite(cdb);
    if (!db || !valid_entry(p))
        return CTL_REG_E_INVAL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO participants(id, pubkey, meter_id, role, added_s)"
                           " VALUES(?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return CTL_REG_E_DB;
    sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, p->pubkey, CTL_PUBKEY_BYTES, SQLITE_STATIC);
    if (p->meter_id[0])
        sqlite3_bind_text(st, 3, p->meter_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, ctl_role_name((int)p->role), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_s);
    int changes = 0;
    int rc = write_tx(db, st, &changes);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return CTL_REG_OK;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return which_conflict(cdb, p);
    return CTL_REG_E_DB;
}

/* What registries written before the one id rule could hold: 1..64 of [A-Za-z0-9._-]. Only
 * `remove` accepts these, so an operator can clear such a participant out. */
static int legacy_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

int ctl_registry_remove(ctl_db *cdb, const char *id)
{
    sqlite3 *db = ctl_db__sqlite(cdb);
    if (!db || !(ctl_id_valid(id) || legacy_id(id)))
        return CTL_REG_E_INVAL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "DELETE FROM participants WHERE id = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return CTL_REG_E_DB;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int changes = 0;
    int rc = write_tx(db, st, &changes);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return CTL_REG_E_DB;
    return changes ? CTL_REG_OK : CTL_REG_E_NOT_FOUND;
}

/* Copies the current row (id, pubkey, meter_id, role, added_s) into *out. */
static int read_row(sqlite3_stmt *st, ctl_participant *out)
{
    memset(out, 0, sizeof *out);
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const void *pk = sqlite3_column_blob(st, 1);
    int pk_len = sqlite3_column_bytes(st, 1);
    const char *meter = (const char *)sqlite3_column_text(st, 2);
    int role = ctl_role_parse((const char *)sqlite3_column_text(st, 3));
    /* The CHECK constraints make these impossible unless someone edited the file by hand. */
    if (!ctl_id_valid(id) || !pk || pk_len != CTL_PUBKEY_BYTES || role < 0 ||
        (meter && !ctl_id_valid(meter)))
        return CTL_REG_E_SCHEMA;
    snprintf(out->id, sizeof out->id, "%s", id);
    memcpy(out->pubkey, pk, CTL_PUBKEY_BYTES);
    snprintf(out->meter_id, sizeof out->meter_id, "%s", meter ? meter : "");
    out->role = (ctl_role)role;
    out->added_s = sqlite3_column_int64(st, 4);
    return CTL_REG_OK;
}

/* Steps a lookup of at most one participant into *out. */
static int step_one(sqlite3_stmt *st, ctl_participant *out)
{
    int step = sqlite3_step(st);
    return step == SQLITE_ROW    ? read_row(st, out)
           : step == SQLITE_DONE ? CTL_REG_E_NOT_FOUND
                                 : CTL_REG_E_DB;
}

static int lookup_by(ctl_db *cdb, const char *sql, const char *key, ctl_participant *out)
{
    sqlite3 *db = ctl_db__sqlite(cdb);
    if (!db || !ctl_id_valid(key) || !out)
        return CTL_REG_E_INVAL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return CTL_REG_E_DB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = step_one(st, out);
    sqlite3_finalize(st);
    return rc;
}

struct ctl_registry_reader {
    sqlite3 *db;
    sqlite3_stmt *by_id; /* prepared on first use */
};

int ctl_registry_reader_new(ctl_db *cdb, ctl_registry_reader **out)
{
    sqlite3 *db = ctl_db__sqlite(cdb);
    if (!db || !out)
        return CTL_REG_E_INVAL;
    *out = calloc(1, sizeof **out);
    if (!*out)
        return CTL_REG_E_DB;
    (*out)->db = db;
    return CTL_REG_OK;
}

void ctl_registry_reader_free(ctl_registry_reader *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->by_id);
    free(r);
}

int ctl_registry_reader_lookup(ctl_registry_reader *r, const char *id, ctl_participant *out)
{
    if (!r || !ctl_id_valid(id) || !out)
        return CTL_REG_E_INVAL;
    if (!r->by_id &&
        ctl_sql_prepare_persistent(r->db, SELECT_PARTICIPANTS " WHERE id = ?", &r->by_id) !=
            SQLITE_OK)
        return CTL_REG_E_DB;
    sqlite3_bind_text(r->by_id, 1, id, -1, SQLITE_STATIC);
    int rc = step_one(r->by_id, out);
    sqlite3_reset(r->by_id); /* ends the read: no snapshot is held between lookups */
    sqlite3_clear_bindings(r->by_id);
    return rc;
}

int ctl_registry_lookup(ctl_db *db, const char *id, ctl_participant *out)
{
    return lookup_by(db, SELECT_PARTICIPANTS " WHERE id = ?", id, out);
}

int ctl_registry_lookup_meter(ctl_db *db, const char *meter_id, ctl_participant *out)
{
    return lookup_by(db, SELECT_PARTICIPANTS " WHERE meter_id = ?", meter_id, out);
}

int ctl_registry_list(ctl_db *cdb, int (*fn)(const ctl_participant *p, void *ctx), void *ctx)
{
    sqlite3 *db = ctl_db__sqlite(cdb);
    if (!db || !fn)
        return CTL_REG_E_INVAL;
    sqlite3_stmt *st = NULL;
    /* BINARY collation: ascending byte order of the id */
    if (sqlite3_prepare_v2(db, SELECT_PARTICIPANTS " ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        return CTL_REG_E_DB;
    int rc = CTL_REG_OK, step, bad_rows = 0;
    ctl_participant p;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (read_row(st, &p) != CTL_REG_OK) { /* an old id or a hand edit: list the rest */
            bad_rows++;
            continue;
        }
        if ((rc = fn(&p, ctx)) != 0)
            break;
    }
    if (rc == CTL_REG_OK && step != SQLITE_DONE)
        rc = CTL_REG_E_DB;
    if (rc == CTL_REG_OK && bad_rows)
        rc = CTL_REG_E_BAD_ROW;
    sqlite3_finalize(st);
    return rc;
}

int64_t ctl_registry_count(ctl_db *cdb)
{
    sqlite3 *db = ctl_db__sqlite(cdb);
    if (!db)
        return CTL_REG_E_INVAL;
    int64_t n = 0;
    int found = 0;
    if (ctl_sql_query_int(db, "SELECT count(*) FROM participants", &n, &found) != SQLITE_OK ||
        !found)
        return CTL_REG_E_DB;
    return n;
}

/* ---- physical limits ---- */

static int limit_ok(int64_t v)
{
    return v == CTL_LIMIT_NONE || v == CTL_LIMIT_KEEP || (v >= 0 && v <= CTL_LIMIT_MAX_W);
}

int ctl_registry_limits_get(ctl_db *cdb, const char *id, ctl_limits *out)
{
    sqlite3 *db = ctl_db__sqlite(cdb);
    if (!db || !ctl_id_valid(id) || !out)
        return CTL_REG_E_INVAL;
    *out = (ctl_limits){CTL_LIMIT_NONE, CTL_LIMIT_NONE, CTL_LIMIT_NONE, CTL_LIMIT_NONE};
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT connection_w, pv_wp, battery_wh, battery_w"
                           " FROM participant_limits WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return CTL_REG_E_DB;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st), rc = CTL_REG_OK;
    if (step == SQLITE_ROW) {
        int64_t *f[4] = {&out->connection_w, &out->pv_wp, &out->battery_wh, &out->battery_w};
        for (int i = 0; i < 4; i++)
            if (sqlite3_column_type(st, i) != SQLITE_NULL)
                *f[i] = sqlite3_column_int64(st, i);
    } else if (step != SQLITE_DONE) {
        rc = CTL_REG_E_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int ctl_registry_limits_set(ctl_db *cdb, const char *id, const ctl_limits *l)
{
    sqlite3 *db = ctl_db__sqlite(cdb);
    if (!db || !ctl_id_valid(id) || !l || !limit_ok(l->connection_w) || !limit_ok(l->pv_wp) ||
        !limit_ok(l->battery_wh) || !limit_ok(l->battery_w))
        return CTL_REG_E_INVAL;
    ctl_participant p;
    ctl_limits cur;
    int rc = ctl_registry_lookup(cdb, id, &p);
    if (rc != CTL_REG_OK)
        return rc;
    if ((rc = ctl_registry_limits_get(cdb, id, &cur)) != CTL_REG_OK)
        return rc;
    int64_t want[4] = {l->connection_w, l->pv_wp, l->battery_wh, l->battery_w};
    int64_t have[4] = {cur.connection_w, cur.pv_wp, cur.battery_wh, cur.battery_w};
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO participant_limits(id, connection_w, pv_wp,"
                           " battery_wh, battery_w) VALUES(?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return CTL_REG_E_DB;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    for (int i = 0; i < 4; i++) {
        int64_t v = want[i] == CTL_LIMIT_KEEP ? have[i] : want[i];
        if (v == CTL_LIMIT_NONE)
            sqlite3_bind_null(st, i + 2);
        else
            sqlite3_bind_int64(st, i + 2, v);
    }
    int changes = 0;
    rc = write_tx(db, st, &changes);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? CTL_REG_OK : CTL_REG_E_DB;
}
