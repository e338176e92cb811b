/*
 * The home agent's SQLite outbox and memory (see agent_store.h).
 */
#include "agent/agent_store.h"

#include "common/sql.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ags_store {
    sqlite3 *db;
    char err[256];
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS orders("
    " interval_id INTEGER PRIMARY KEY,"
    " nonce TEXT NOT NULL UNIQUE,"
    " json TEXT NOT NULL,"
    " side INTEGER NOT NULL, energy_wh INTEGER NOT NULL, price_uc_per_kwh INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, expiry_s INTEGER NOT NULL,"
    " state TEXT NOT NULL CHECK(state IN ('pending','accepted','rejected','unanswered')),"
    " sends INTEGER NOT NULL DEFAULT 0, last_sent_ms INTEGER NOT NULL DEFAULT 0,"
    " reason TEXT, detail TEXT, receipt_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS receipts(id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL,"
    " interval_id INTEGER NOT NULL, nonce TEXT NOT NULL, accepted INTEGER NOT NULL,"
    " reason TEXT NOT NULL, detail TEXT NOT NULL, json TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS trades(interval_id INTEGER PRIMARY KEY, received_ms INTEGER "
    " NOT NULL, json TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS results(interval_id INTEGER PRIMARY KEY, received_ms INTEGER "
    " NOT NULL, json TEXT NOT NULL);";

const char *ags_strerror(int code)
{
    switch (code) {
    case AGS_OK:
        return "success";
    case AGS_E_INVAL:
        return "invalid argument";
    case AGS_E_DB:
        return "database error";
    case AGS_E_MISMATCH:
        return "the outbox belongs to another participant or community";
    case AGS_E_EXISTS:
        return "an order for this interval is already stored";
    case AGS_E_SCHEMA:
        return "the outbox has an unknown schema version";
    default:
        return "unknown outbox error";
    }
}

const char *ags_errmsg(const ags_store *s)
{
    return s ? s->err : "no store";
}

static int db_fail(ags_store *s, const char *what)
{
    snprintf(s->err, sizeof s->err, "%s: %s", what, sqlite3_errmsg(s->db));
    return AGS_E_DB;
}

/* Runs sql (no rows); on failure the store's message says why. */
static int exec(ags_store *s, const char *sql)
{
    return ctl_sql_exec(s->db, sql) == SQLITE_OK ? AGS_OK : db_fail(s, "exec");
}

static int begin(ags_store *s)
{
    return ctl_sql_begin(s->db) == SQLITE_OK ? AGS_OK : db_fail(s, "begin");
}

/* Commits, or rolls back when rc says the step failed (keeping the step's message). */
static int finish(ags_store *s, int rc)
{
    if (rc == AGS_OK)
        return ctl_sql_commit(s->db) == SQLITE_OK ? AGS_OK : db_fail(s, "commit");
    ctl_sql_rollback(s->db);
    return rc;
}

/* Reads meta[key] into buf; *found false when absent. */
static int meta_get(ags_store *s, const char *key, char *buf, size_t len, bool *found)
{
    sqlite3_stmt *st = NULL;
    *found = false;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key=?", -1, &st, NULL))
        return db_fail(s, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
        *found = true;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? AGS_OK : db_fail(s, "meta");
}

static int meta_put(ags_store *s, const char *key, const char *value)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO meta(key,value) VALUES(?,?)", -1, &st,
                           NULL))
        return db_fail(s, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? AGS_OK : db_fail(s, "meta");
}

/* meta[key] must be value; set it when absent (a new file). */
static int meta_bind(ags_store *s, const char *key, const char *value)
{
    char have[128];
    bool found;
    int rc = meta_get(s, key, have, sizeof have, &found);
    if (rc)
        return rc;
    if (!found)
        return meta_put(s, key, value);
    if (strcmp(have, value) != 0) {
        snprintf(s->err, sizeof s->err, "the outbox is for %s '%s', not '%s'", key, have, value);
        return AGS_E_MISMATCH;
    }
    return AGS_OK;
}

static int setup(ags_store *s, const char *community, const char *participant)
{
    int rc;
    if ((rc = begin(s)))
        return rc;
    char ver[16], seed[32];
    bool found;
    snprintf(ver, sizeof ver, "%d", AGS_SCHEMA_VERSION);
    rc = exec(s, SCHEMA);
    if (!rc)
        rc = meta_bind(s, "schema_version", ver);
    if (rc == AGS_E_MISMATCH)
        rc = AGS_E_SCHEMA;
    if (!rc)
        rc = meta_bind(s, "community", community);
    if (!rc)
        rc = meta_bind(s, "participant", participant);
    if (!rc)
        rc = meta_get(s, "seed", seed, sizeof seed, &found);
    if (!rc && !found) {
        uint64_t v;
        randombytes_buf(&v, sizeof v);
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)v);
        rc = meta_put(s, "seed", seed);
    }
    return finish(s, rc);
}

int ags_open(const char *path, const char *community, const char *participant, ags_store **out,
             char *err, size_t err_len)
{
    if (!out)
        return AGS_E_INVAL;
    *out = NULL;
    if (!path || !community || !participant || sodium_init() < 0)
        return AGS_E_INVAL;
    ags_store *s = calloc(1, sizeof *s);
    if (!s)
        return AGS_E_INVAL;
    if (ctl_sql_open(path, NULL, &s->db, s->err, sizeof s->err) != SQLITE_OK) {
        if (err && err_len)
            snprintf(err, err_len, "%s", s->err); /* already "path: why" */
        ags_close(s);
        return AGS_E_DB;
    }
    int rc = setup(s, community, participant);
    if (rc) {
        if (err && err_len)
            snprintf(err, err_len, "%s: %s", path, s->err);
        ags_close(s);
        return rc;
    }
    *out = s;
    return AGS_OK;
}

void ags_close(ags_store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s);
}

int ags_seed(ags_store *s, uint64_t *seed)
{
    char buf[32];
    bool found;
    int rc = meta_get(s, "seed", buf, sizeof buf, &found);
    if (rc)
        return rc;
    if (!found)
        return AGS_E_SCHEMA;
    *seed = strtoull(buf, NULL, 10);
    return AGS_OK;
}

int ags_trader_load(ags_store *s, double *margin, double *last_change, bool *found)
{
    char a[64], b[64];
    bool fa, fb;
    int rc = meta_get(s, "zip_margin", a, sizeof a, &fa);
    if (!rc)
        rc = meta_get(s, "zip_last_change", b, sizeof b, &fb);
    if (rc)
        return rc;
    *found = fa && fb;
    if (*found) {
        *margin = strtod(a, NULL);
        *last_change = strtod(b, NULL);
    }
    return AGS_OK;
}

int ags_trader_save(ags_store *s, double margin, double last_change)
{
    char a[64], b[64];
    /* %.17g round-trips a double exactly */
    snprintf(a, sizeof a, "%.17g", margin);
    snprintf(b, sizeof b, "%.17g", last_change);
    int rc = begin(s);
    if (rc)
        return rc;
    rc = meta_put(s, "zip_margin", a);
    if (!rc)
        rc = meta_put(s, "zip_last_change", b);
    return finish(s, rc);
}

int ags_order_insert(ags_store *s, const ags_order *o)
{
    if (!s || !o || !o->json)
        return AGS_E_INVAL;
    int rc = begin(s);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO orders(interval_id,nonce,json,side,energy_wh,"
                           "price_uc_per_kwh,created_ms,expiry_s,state) "
                           "VALUES(?,?,?,?,?,?,?,?,'pending')",
                           -1, &st, NULL))
        return finish(s, db_fail(s, "insert order"));
    sqlite3_bind_int64(st, 1, o->interval_id);
    sqlite3_bind_text(st, 2, o->nonce_hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, o->json, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, o->side);
    sqlite3_bind_int64(st, 5, o->energy_wh);
    sqlite3_bind_int64(st, 6, o->price_uc_per_kwh);
    sqlite3_bind_int64(st, 7, o->created_ms);
    sqlite3_bind_int64(st, 8, o->expiry_s);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step == SQLITE_CONSTRAINT)
        rc = AGS_E_EXISTS;
    else if (step != SQLITE_DONE)
        rc = db_fail(s, "insert order");
    return finish(s, rc);
}

int ags_order_exists(ags_store *s, int64_t interval_id, bool *exists)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM orders WHERE interval_id=?", -1, &st, NULL))
        return db_fail(s, "order");
    sqlite3_bind_int64(st, 1, interval_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    *exists = rc == SQLITE_ROW;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? AGS_OK : db_fail(s, "order");
}

int ags_pending(ags_store *s, ags_order_fn fn, void *ctx)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT interval_id,nonce,json,side,energy_wh,price_uc_per_kwh,"
                           "created_ms,expiry_s,state,sends,last_sent_ms FROM orders "
                           "WHERE state='pending' ORDER BY interval_id",
                           -1, &st, NULL))
        return db_fail(s, "pending");
    int rc, out = AGS_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ags_order o = {0};
        o.interval_id = sqlite3_column_int64(st, 0);
        snprintf(o.nonce_hex, sizeof o.nonce_hex, "%s", (const char *)sqlite3_column_text(st, 1));
        o.json = (const char *)sqlite3_column_text(st, 2);
        o.side = sqlite3_column_int(st, 3);
        o.energy_wh = sqlite3_column_int64(st, 4);
        o.price_uc_per_kwh = sqlite3_column_int64(st, 5);
        o.created_ms = sqlite3_column_int64(st, 6);
        o.expiry_s = sqlite3_column_int64(st, 7);
        snprintf(o.state, sizeof o.state, "%s", (const char *)sqlite3_column_text(st, 8));
        o.sends = sqlite3_column_int(st, 9);
        o.last_sent_ms = sqlite3_column_int64(st, 10);
        if (fn(ctx, &o) != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = db_fail(s, "pending");
    sqlite3_finalize(st);
    return out;
}

int ags_count(ags_store *s, const char *state, int64_t *n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM orders WHERE state=?", -1, &st, NULL))
        return db_fail(s, "count");
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? AGS_OK : db_fail(s, "count");
}

/* One write in its own transaction: the n_ints values bound from ?1 on, then text (when not
 * NULL) after them. what names the write in the error message. */
static int write_one(ags_store *s, const char *sql, const char *what, const int64_t *ints,
                     int n_ints, const char *text)
{
    int rc = begin(s);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL))
        return finish(s, db_fail(s, what));
    for (int i = 0; i < n_ints; i++)
        sqlite3_bind_int64(st, i + 1, ints[i]);
    if (text)
        sqlite3_bind_text(st, n_ints + 1, text, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(s, what);
    sqlite3_finalize(st);
    return finish(s, rc);
}

/* One UPDATE in its own transaction. */
static int update(ags_store *s, const char *sql, int64_t a, int64_t b, bool two)
{
    return write_one(s, sql, "update", (const int64_t[]){a, b}, two ? 2 : 1, NULL);
}

int ags_order_sent(ags_store *s, int64_t interval_id, int64_t now_ms)
{
    return update(s, "UPDATE orders SET sends=sends+1, last_sent_ms=?1 WHERE interval_id=?2",
                  now_ms, interval_id, true);
}

int ags_order_give_up(ags_store *s, int64_t interval_id)
{
    return update(s,
                  "UPDATE orders SET state='unanswered' WHERE interval_id=?1 AND "
                  "state='pending'",
                  interval_id, 0, false);
}

static int log_receipt(ags_store *s, int64_t interval_id, const char *nonce_hex, bool accepted,
                       const char *reason, const char *detail, const char *json, int64_t now_ms)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO receipts(received_ms,interval_id,nonce,accepted,reason,"
                           "detail,json) VALUES(?,?,?,?,?,?,?)",
                           -1, &st, NULL))
        return db_fail(s, "receipt");
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, interval_id);
    sqlite3_bind_text(st, 3, nonce_hex, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, accepted);
    sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, detail ? detail : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, json, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? AGS_OK : db_fail(s, "receipt");
}

int ags_receipt(ags_store *s, int64_t interval_id, const char *nonce_hex, bool accepted,
                const char *reason, const char *detail, const char *json, int64_t now_ms,
                int *effect)
{
    if (!s || !nonce_hex || !reason || !json || !effect)
        return AGS_E_INVAL;
    int rc = begin(s);
    if (rc)
        return rc;
    rc = log_receipt(s, interval_id, nonce_hex, accepted, reason, detail, json, now_ms);
    sqlite3_stmt *st = NULL;
    if (!rc && sqlite3_prepare_v2(s->db,
                                  "UPDATE orders SET state=?1, reason=?2, detail=?3, "
                                  "receipt_ms=?4 WHERE interval_id=?5 AND nonce=?6 AND "
                                  "state IN ('pending','unanswered')",
                                  -1, &st, NULL))
        rc = db_fail(s, "receipt");
    if (!rc) {
        sqlite3_bind_text(st, 1, accepted ? AGS_ACCEPTED : AGS_REJECTED, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, detail ? detail : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now_ms);
        sqlite3_bind_int64(st, 5, interval_id);
        sqlite3_bind_text(st, 6, nonce_hex, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(s, "receipt");
    }
    sqlite3_finalize(st);
    if (!rc) {
        if (sqlite3_changes(s->db) > 0) {
            *effect = AGS_RECEIPT_MATCHED;
        } else {
            bool exists = false;
            sqlite3_stmt *q = NULL;
            if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM orders WHERE interval_id=? AND nonce=?",
                                   -1, &q, NULL) == SQLITE_OK) {
                sqlite3_bind_int64(q, 1, interval_id);
                sqlite3_bind_text(q, 2, nonce_hex, -1, SQLITE_STATIC);
                exists = sqlite3_step(q) == SQLITE_ROW;
            }
            sqlite3_finalize(q);
            *effect = exists ? AGS_RECEIPT_DUPLICATE : AGS_RECEIPT_UNKNOWN;
        }
    }
    return finish(s, rc);
}

static int put_json(ags_store *s, const char *table_sql, int64_t interval_id, const char *json,
                    int64_t now_ms)
{
    return write_one(s, table_sql, "store message", (const int64_t[]){interval_id, now_ms}, 2,
                     json);
}

int ags_trades_put(ags_store *s, int64_t interval_id, const char *json, int64_t now_ms)
{
    return put_json(s, "INSERT OR REPLACE INTO trades(interval_id,received_ms,json) VALUES(?,?,?)",
                    interval_id, json, now_ms);
}

int ags_result_put(ags_store *s, int64_t interval_id, const char *json, int64_t now_ms)
{
    return put_json(s,
                    "INSERT OR REPLACE INTO results(interval_id,received_ms,json) VALUES(?,?,?)",
                    interval_id, json, now_ms);
}

int ags_order_get(ags_store *s, int64_t interval_id, ags_order *o, bool *found)
{
    sqlite3_stmt *st = NULL;
    *found = false;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT nonce,side,energy_wh,price_uc_per_kwh,created_ms,expiry_s,"
                           "state,sends,last_sent_ms FROM orders WHERE interval_id=?",
                           -1, &st, NULL))
        return db_fail(s, "order");
    sqlite3_bind_int64(st, 1, interval_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(o, 0, sizeof *o);
        o->interval_id = interval_id;
        snprintf(o->nonce_hex, sizeof o->nonce_hex, "%s", (const char *)sqlite3_column_text(st, 0));
        o->side = sqlite3_column_int(st, 1);
        o->energy_wh = sqlite3_column_int64(st, 2);
        o->price_uc_per_kwh = sqlite3_column_int64(st, 3);
        o->created_ms = sqlite3_column_int64(st, 4);
        o->expiry_s = sqlite3_column_int64(st, 5);
        snprintf(o->state, sizeof o->state, "%s", (const char *)sqlite3_column_text(st, 6));
        o->sends = sqlite3_column_int(st, 7);
        o->last_sent_ms = sqlite3_column_int64(st, 8);
        *found = true;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? AGS_OK : db_fail(s, "order");
}

int ags_trades_get(ags_store *s, int64_t interval_id, char *buf, size_t cap, bool *found)
{
    sqlite3_stmt *st = NULL;
    *found = false;
    if (sqlite3_prepare_v2(s->db, "SELECT json FROM trades WHERE interval_id=?", -1, &st, NULL))
        return db_fail(s, "trades");
    sqlite3_bind_int64(st, 1, interval_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        size_t n = strlen(t);
        if (n < cap) {
            memcpy(buf, t, n + 1);
            *found = true;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? AGS_OK : db_fail(s, "trades");
}
