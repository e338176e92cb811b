/*
 * The controller's SQLite store (see store.h for the guarantees). Every write function is one
 * BEGIN IMMEDIATE ... COMMIT with a rollback on any failure, so a crash or a failed statement
 * never leaves half a step behind. Statements are prepared per call, except on the order path,
 * which runs once per order (many per transaction when orders come in batches) and keeps its
 * statements prepared.
 */
#define _POSIX_C_SOURCE 200809L
#include "db/store.h"

#include "common/errbuf.h"
#include "common/sql.h"
#include "db/db_internal.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The order path runs these statements for every order, hundreds of times per transaction when
 * orders come in batches: they are prepared once per connection (SQLITE_PREPARE_PERSISTENT) and
 * reset after each use, so a statement never holds a read snapshot between calls. */
enum {
    Q_BY_NONCE,
    Q_CURRENT,
    Q_STATE,
    Q_MARKET_ID,
    Q_HAS_REGISTRY,
    Q_NUMBER_ALL,
    Q_SUPERSEDE,
    Q_MARKET_ID_ADD,
    Q_ORDER_ADD,
    Q_STEP_ADD,
    Q_RECEIPT_ADD,
    Q_COUNT
};

struct ctl_store {
    ctl_db *owner; /* the community database (db.h): opened, migrated and closed there */
    sqlite3 *db;   /* its connection (db_internal.h), for this file's statements */
    int64_t first_interval;
    int64_t interval_s;
    sqlite3_stmt *q[Q_COUNT]; /* the order path's statements, prepared on first use */
};

const char *ctl_store_strerror(int code)
{
    switch (code) {
    case CTL_ST_OK:
        return "ok";
    case CTL_ST_E_INVAL:
        return "invalid argument";
    case CTL_ST_E_DB:
        return "database error";
    case CTL_ST_E_SCHEMA:
        return "database has an unknown schema version";
    case CTL_ST_E_MISMATCH:
        return "database belongs to another community or interval length";
    case CTL_ST_E_MARKET:
        return "market rejected the book";
    case CTL_ST_E_NOMEM:
        return "out of memory";
    case CTL_ST_E_FULL:
        return "disk full";
    default:
        return "unknown store error";
    }
}

static int db_code(sqlite3 *db)
{
    int e = sqlite3_errcode(db) & 0xff;
    if (e == SQLITE_FULL)
        return CTL_ST_E_FULL;
    if (e == SQLITE_NOMEM)
        return CTL_ST_E_NOMEM;
    return CTL_ST_E_DB;
}

static int begin(ctl_store *s)
{
    return ctl_sql_begin(s->db) == SQLITE_OK ? CTL_ST_OK : db_code(s->db);
}

/* Commits, or rolls back when rc says the step failed. Returns the step's outcome. */
static int finish(ctl_store *s, int rc)
{
    if (rc == CTL_ST_OK) {
        if (ctl_sql_commit(s->db) == SQLITE_OK)
            return CTL_ST_OK;
        rc = db_code(s->db);
    }
    ctl_sql_rollback(s->db);
    return rc;
}

static sqlite3_stmt *prep(ctl_store *s, const char *sql)
{
    sqlite3_stmt *st;
    return ctl_sql_prepare(s->db, sql, &st) == SQLITE_OK ? st : NULL;
}

/* Steps a statement that returns no row; finalizes it. */
static int run(ctl_store *s, sqlite3_stmt *st)
{
    if (!st)
        return db_code(s->db);
    int rc = sqlite3_step(st);
    int out = rc == SQLITE_DONE ? CTL_ST_OK : db_code(s->db);
    sqlite3_finalize(st);
    return out;
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static int meta_get(ctl_store *s, const char *key, char *val, size_t cap, int *found)
{
    sqlite3_stmt *st = prep(s, "SELECT value FROM ctl_meta WHERE key = ?1");
    if (!st)
        return db_code(s->db);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (*found)
        copy_text(val, cap, sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? CTL_ST_OK : db_code(s->db);
}

static int meta_put(ctl_store *s, const char *key, const char *val)
{
    sqlite3_stmt *st = prep(s, "INSERT INTO ctl_meta(key, value) VALUES(?1, ?2)");
    if (st) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, val, -1, SQLITE_STATIC);
    }
    return run(s, st);
}

/* Records the store's identity in a new file, or checks an existing file's, in one
 * transaction. The tables are the db module's (db/schema.c, created when the file was opened);
 * schema_version is the store's version record of the releases before user_version, still
 * written and checked so those releases and this one refuse each other's newer files. */
static int setup(ctl_store *s, const ctl_store_identity *id, char *err, size_t err_len)
{
    int rc = begin(s);
    if (rc)
        return rc;
    int64_t version = 0; /* no row: a new file */
    int found;
    if (ctl_sql_query_int(s->db,
                          "SELECT version FROM schema_version WHERE component = 'controller'",
                          &version, &found) != SQLITE_OK)
        return finish(s, db_code(s->db));
    if (version > CTL_STORE_SCHEMA_VERSION) {
        ctl_errf(err, err_len, "schema version %lld is newer than this mgx (%d)",
                 (long long)version, CTL_STORE_SCHEMA_VERSION);
        return finish(s, CTL_ST_E_SCHEMA);
    }
    char buf[128];
    if (version == 0) {
        snprintf(buf, sizeof buf, "%lld", (long long)id->interval_s);
        char first[32];
        snprintf(first, sizeof first, "%lld", (long long)id->first_interval);
        if ((rc = run(s, prep(s, "INSERT INTO schema_version VALUES('controller', 1)"))) ||
            (rc = meta_put(s, "community", id->community)) ||
            (rc = meta_put(s, "interval_s", buf)) || (rc = meta_put(s, "first_interval", first)))
            return finish(s, rc);
        s->first_interval = id->first_interval;
        return finish(s, CTL_ST_OK);
    }
    if ((rc = meta_get(s, "community", buf, sizeof buf, &found)))
        return finish(s, rc);
    if (!found || strcmp(buf, id->community) != 0) {
        ctl_errf(err, err_len, "made for community '%s', not '%s'", found ? buf : "?",
                 id->community);
        return finish(s, CTL_ST_E_MISMATCH);
    }
    if ((rc = meta_get(s, "interval_s", buf, sizeof buf, &found)))
        return finish(s, rc);
    if (!found || strtoll(buf, NULL, 10) != id->interval_s) {
        ctl_errf(err, err_len, "made for interval_s=%s, not %lld (interval keys would change)",
                 found ? buf : "?", (long long)id->interval_s);
        return finish(s, CTL_ST_E_MISMATCH);
    }
    if ((rc = meta_get(s, "first_interval", buf, sizeof buf, &found)))
        return finish(s, rc);
    s->first_interval = found ? strtoll(buf, NULL, 10) : id->first_interval;
    return finish(s, CTL_ST_OK);
}

int ctl_store_open(const char *path, const ctl_store_identity *id, ctl_store **out, char *err,
                   size_t err_len)
{
    if (!path || !id || !id->community || !out || id->interval_s <= 0)
        return CTL_ST_E_INVAL;
    *out = NULL;
    ctl_store *s = calloc(1, sizeof *s);
    if (!s)
        return CTL_ST_E_NOMEM;
    s->interval_s = id->interval_s;
    int rc = ctl_db_open(path, &s->owner, err, err_len);
    if (rc != CTL_DB_OK) {
        rc = rc == CTL_DB_E_VERSION || rc == CTL_DB_E_SCHEMA ? CTL_ST_E_SCHEMA
             : rc == CTL_DB_E_NOMEM                          ? CTL_ST_E_NOMEM
                                                             : CTL_ST_E_DB;
        goto out;
    }
    s->db = ctl_db__sqlite(s->owner);
    char why[256] = "";
    if ((rc = setup(s, id, why, sizeof why))) {
        ctl_errf(err, err_len, "%s: %s", path, why[0] ? why : sqlite3_errmsg(s->db));
        goto out;
    }
    *out = s;
    return CTL_ST_OK;
out:
    ctl_store_free(s);
    return rc;
}

void ctl_store_free(ctl_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < sizeof s->q / sizeof s->q[0]; i++)
        sqlite3_finalize(s->q[i]);
    ctl_db_close(s->owner);
    free(s);
}

ctl_db *ctl_store_db(ctl_store *s)
{
    return s->owner;
}

const char *ctl_store_errmsg(const ctl_store *s)
{
    return s && s->db ? sqlite3_errmsg(s->db) : "no database";
}

int64_t ctl_store_first_interval(const ctl_store *s)
{
    return s->first_interval;
}

/* ---- readings ---- */

int ctl_store_put_reading(ctl_store *s, const mtr_sample *r, int64_t received_ms, int *inserted)
{
    size_t n = 0;
    int rc = ctl_store_put_readings(s, r, 1, received_ms, &n);
    if (inserted)
        *inserted = rc == CTL_ST_OK && n > 0;
    return rc;
}

int ctl_store_put_readings(ctl_store *s, const mtr_sample *r, size_t n, int64_t received_ms,
                           size_t *inserted)
{
    if (!s || (!r && n) || n > CTL_STORE_READINGS_MAX)
        return CTL_ST_E_INVAL;
    for (size_t i = 0; i < n; i++)
        if (!r[i].meter_id[0] || memchr(r[i].meter_id, '\0', MTR_ID_MAX) == NULL)
            return CTL_ST_E_INVAL;
    int rc = begin(s);
    if (rc)
        return rc;
    size_t added = 0;
    sqlite3_stmt *st = prep(s, "INSERT OR IGNORE INTO readings VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
    /* the duplicate rule (docs/trust.md): the same counters again are a resend and change
     * nothing; other counters for a stored (meter, time) are a conflict, which marks the
     * stored reading MTR_Q_CONFLICT so its interval is held, whichever came first */
    sqlite3_stmt *cf = prep(s, "UPDATE readings SET quality = quality | ?5 WHERE meter_id = ?1"
                               " AND ts_ms = ?2 AND (import_wh != ?3 OR export_wh != ?4)");
    if (!st || !cf)
        rc = db_code(s->db);
    for (size_t i = 0; i < n && rc == CTL_ST_OK; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, r[i].meter_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r[i].ts_ms);
        sqlite3_bind_int64(st, 3, r[i].power_w);
        sqlite3_bind_int64(st, 4, r[i].import_wh);
        sqlite3_bind_int64(st, 5, r[i].export_wh);
        sqlite3_bind_int64(st, 6, r[i].soc_permille);
        sqlite3_bind_int64(st, 7, (int64_t)r[i].quality);
        sqlite3_bind_int64(st, 8, received_ms);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_code(s->db);
        } else if (sqlite3_changes(s->db) > 0) {
            added++;
        } else {
            sqlite3_reset(cf);
            sqlite3_bind_text(cf, 1, r[i].meter_id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(cf, 2, r[i].ts_ms);
            sqlite3_bind_int64(cf, 3, r[i].import_wh);
            sqlite3_bind_int64(cf, 4, r[i].export_wh);
            sqlite3_bind_int64(cf, 5, (int64_t)MTR_Q_CONFLICT);
            if (sqlite3_step(cf) != SQLITE_DONE)
                rc = db_code(s->db);
        }
    }
    sqlite3_finalize(st);
    sqlite3_finalize(cf);
    if (inserted)
        *inserted = rc == CTL_ST_OK ? added : 0;
    return finish(s, rc);
}

int ctl_store_readings(ctl_store *s, const char *meter_id, int64_t from_ms, int64_t to_ms,
                       ctl_reading_fn fn, void *ctx)
{
    sqlite3_stmt *st = prep(s, "SELECT meter_id, ts_ms, power_w, import_wh, export_wh, "
                               "soc_permille, quality FROM readings WHERE meter_id = ?1 AND "
                               "ts_ms >= ?2 AND ts_ms < ?3 ORDER BY ts_ms");
    if (!st)
        return db_code(s->db);
    sqlite3_bind_text(st, 1, meter_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from_ms);
    sqlite3_bind_int64(st, 3, to_ms);
    int rc, out = CTL_ST_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mtr_sample r;
        memset(&r, 0, sizeof r);
        copy_text(r.meter_id, sizeof r.meter_id, sqlite3_column_text(st, 0));
        r.ts_ms = sqlite3_column_int64(st, 1);
        r.power_w = sqlite3_column_int64(st, 2);
        r.import_wh = sqlite3_column_int64(st, 3);
        r.export_wh = sqlite3_column_int64(st, 4);
        r.soc_permille = (int32_t)sqlite3_column_int64(st, 5);
        r.quality = (uint32_t)sqlite3_column_int64(st, 6);
        if (fn(&r, ctx))
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = db_code(s->db);
    sqlite3_finalize(st);
    return out;
}

/* ---- orders ---- */

static const char *const Q_SQL[Q_COUNT] = {
    [Q_BY_NONCE] = "SELECT r.body, o.signed FROM orders o JOIN receipts r USING(order_id) "
                   "WHERE o.participant = ?1 AND o.nonce = ?2 AND o.status = 1",
    [Q_CURRENT] = "SELECT max(created_ms) FROM orders WHERE participant = ?1 AND "
                  "interval_id = ?2 AND status = 1 AND superseded = 0",
    [Q_STATE] = "SELECT state FROM intervals WHERE interval_id = ?1",
    [Q_MARKET_ID] = "SELECT market_id FROM market_ids WHERE participant = ?1",
    [Q_HAS_REGISTRY] = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                       "name = 'participants'",
    [Q_NUMBER_ALL] = "INSERT OR IGNORE INTO market_ids(participant) "
                     "SELECT id FROM participants ORDER BY id",
    [Q_SUPERSEDE] = "UPDATE orders SET superseded = 1 WHERE participant = ?1 AND "
                    "interval_id = ?2 AND status = 1 AND superseded = 0",
    [Q_MARKET_ID_ADD] = "INSERT OR IGNORE INTO market_ids(participant) VALUES(?1)",
    [Q_ORDER_ADD] = "INSERT INTO orders(participant, nonce, interval_id, created_ms, side, "
                    "signed, received_ms, status, reason) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [Q_STEP_ADD] = "INSERT INTO order_steps VALUES(?1,?2,?3,?4)",
    [Q_RECEIPT_ADD] = "INSERT INTO receipts VALUES(?1, ?2)",
};

/* The cached statement q, ready to bind, or NULL (db_code says why). */
static sqlite3_stmt *cached(ctl_store *s, int q)
{
    if (!s->q[q] && ctl_sql_prepare_persistent(s->db, Q_SQL[q], &s->q[q]) != SQLITE_OK)
        return NULL;
    return s->q[q];
}

/* Ends a use of a cached statement; returns rc unchanged. */
static int release(sqlite3_stmt *st, int rc)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Steps a cached statement that returns no row. */
static int run_cached(ctl_store *s, sqlite3_stmt *st)
{
    if (!st)
        return db_code(s->db);
    int out = sqlite3_step(st) == SQLITE_DONE ? CTL_ST_OK : db_code(s->db);
    return release(st, out);
}

/* Steps a single-integer query and resets it (the caller finalizes one it prepared itself);
 * *found = 0 when there is no row or it is NULL. */
static int query_cached(ctl_store *s, sqlite3_stmt *st, int64_t *v, int *found)
{
    if (!st)
        return db_code(s->db);
    int rc = ctl_sql_step_int(st, v, found);
    return release(st, rc == SQLITE_OK ? CTL_ST_OK : db_code(s->db));
}

/* The stored receipt and signed bytes of the participant's accepted order with this nonce. */
static int accepted_by_nonce(ctl_store *s, const char *participant, const uint8_t *nonce,
                             const uint8_t *signed_msg, size_t signed_len, char *receipt,
                             size_t cap, int *found, int *same)
{
    sqlite3_stmt *st = cached(s, Q_BY_NONCE);
    if (!st)
        return db_code(s->db);
    sqlite3_bind_text(st, 1, participant, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, nonce, CTL_NONCE_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (*found) {
        if (receipt && cap)
            copy_text(receipt, cap, sqlite3_column_text(st, 0));
        if (same) {
            const void *b = sqlite3_column_blob(st, 1);
            size_t n = (size_t)sqlite3_column_bytes(st, 1);
            *same = n == signed_len && (n == 0 || memcmp(b, signed_msg, n) == 0);
        }
    }
    return release(st, rc == SQLITE_ROW || rc == SQLITE_DONE ? CTL_ST_OK : db_code(s->db));
}

int ctl_store_receipt(ctl_store *s, const char *participant,
                      const uint8_t nonce[CTL_NONCE_BYTES], char *receipt, size_t cap,
                      int *found)
{
    if (!s || !participant || !nonce || !found)
        return CTL_ST_E_INVAL;
    return accepted_by_nonce(s, participant, nonce, NULL, 0, receipt, cap, found, NULL);
}


static void reject(ctl_order_rec *o, const char *reason)
{
    o->status = CTL_ORDER_REJECTED;
    snprintf(o->reason, sizeof o->reason, "%s", reason);
}

/* The rules only the database can check; they override the caller's decision. */
static int recheck(ctl_store *s, ctl_order_rec *o, const ctl_order_history *h)
{
    int64_t v;
    int found, rc;
    if (h->nonce_seen) {
        reject(o, "replay");
        return CTL_ST_OK;
    }
    sqlite3_stmt *st = cached(s, Q_STATE);
    if (st)
        sqlite3_bind_int64(st, 1, o->interval_id);
    if ((rc = query_cached(s, st, &v, &found)))
        return rc;
    if ((found && v == CTL_STATE_CLEARED) || o->interval_id < s->first_interval)
        reject(o, "gate_closed");
    else if (h->has_current && h->current_created_ms >= o->created_ms)
        reject(o, "superseded");
    return CTL_ST_OK;
}

static int history(ctl_store *s, const ctl_order_rec *o, int nonce_used, ctl_order_history *h)
{
    memset(h, 0, sizeof *h);
    h->nonce_seen = nonce_used ? 2 : 0;
    sqlite3_stmt *st = cached(s, Q_CURRENT);
    if (st) {
        sqlite3_bind_text(st, 1, o->participant, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, o->interval_id);
    }
    int found = 0;
    int rc = query_cached(s, st, &h->current_created_ms, &found);
    h->has_current = found;
    return rc;
}

/* Market numbers decide ties (docs/market-rules.md: the lowest number wins a leftover Wh), so
 * they must not depend on which home's first order happened to arrive first. When a
 * participant without a number orders, every registered participant still without one is
 * numbered first, in byte order of its id: with a registry filled before trading starts the
 * numbers follow the ids, and a later registration only appends. Without a registry table
 * (the store on its own) numbers follow the first accepted order. */
static int number_participants(ctl_store *s, const char *participant, int *numbered)
{
    int64_t v = 0;
    int rc;
    sqlite3_stmt *st = cached(s, Q_MARKET_ID);
    if (st)
        sqlite3_bind_text(st, 1, participant, -1, SQLITE_STATIC);
    int found;
    if ((rc = query_cached(s, st, &v, numbered)) || *numbered)
        return rc;
    if ((rc = query_cached(s, cached(s, Q_HAS_REGISTRY), &v, &found)) || v == 0)
        return rc;
    return run_cached(s, cached(s, Q_NUMBER_ALL));
}

/* Writes the order; h is its history read in the same transaction. */
static int insert_order(ctl_store *s, const ctl_order_rec *o, const ctl_order_history *h,
                        int64_t *order_id)
{
    int rc;
    sqlite3_stmt *st;
    if (o->status == CTL_ORDER_ACCEPTED) {
        /* only the newest accepted order of a participant counts in an interval (the history
         * says whether there is one to supersede) */
        if (h->has_current && (st = cached(s, Q_SUPERSEDE))) {
            sqlite3_bind_text(st, 1, o->participant, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, o->interval_id);
        }
        if (h->has_current && (rc = run_cached(s, st)))
            return rc;
        int numbered = 0;
        if ((rc = number_participants(s, o->participant, &numbered)))
            return rc;
        if (!numbered && (st = cached(s, Q_MARKET_ID_ADD)))
            sqlite3_bind_text(st, 1, o->participant, -1, SQLITE_STATIC);
        if (!numbered && (rc = run_cached(s, st)))
            return rc;
    }
    if ((st = cached(s, Q_ORDER_ADD))) {
        sqlite3_bind_text(st, 1, o->participant, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, o->nonce, CTL_NONCE_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, o->interval_id);
        sqlite3_bind_int64(st, 4, o->created_ms);
        sqlite3_bind_int(st, 5, (int)o->side);
        sqlite3_bind_blob(st, 6, o->signed_msg ? (const void *)o->signed_msg : "",
                          (int)o->signed_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, o->received_ms);
        sqlite3_bind_int(st, 8, (int)o->status);
        sqlite3_bind_text(st, 9, o->reason, -1, SQLITE_STATIC);
    }
    if ((rc = run_cached(s, st)))
        return rc;
    *order_id = sqlite3_last_insert_rowid(s->db);
    for (uint32_t i = 0; i < o->n_steps; i++) {
        if ((st = cached(s, Q_STEP_ADD))) {
            sqlite3_bind_int64(st, 1, *order_id);
            sqlite3_bind_int(st, 2, (int)i);
            sqlite3_bind_int64(st, 3, o->steps[i].energy_wh);
            sqlite3_bind_int64(st, 4, o->steps[i].price_uc_per_kwh);
        }
        if ((rc = run_cached(s, st)))
            return rc;
    }
    return CTL_ST_OK;
}

/* Accepted orders need a participant and a valid curve; rejections are kept whatever they
 * hold (their participant may be unreadable), within the bounds. */
static int order_valid(const ctl_order_rec *o)
{
    size_t plen = strnlen(o->participant, CTL_PARTICIPANT_MAX);
    if (plen == CTL_PARTICIPANT_MAX || o->signed_len > CTL_SIGNED_MAX ||
        (o->side != MKT_BUY && o->side != MKT_SELL) || o->n_steps > MKT_MAX_STEPS ||
        !memchr(o->reason, '\0', CTL_REASON_MAX))
        return 0;
    if (o->status == CTL_ORDER_ACCEPTED && (plen == 0 || o->n_steps < 1))
        return 0;
    return 1;
}

/* One order inside an open transaction: the whole rule of ctl_store_put_order. Every check that
 * can refuse the order (CTL_ST_E_INVAL) runs before the first write, so a refused order leaves
 * the transaction as it was and the others of a batch go on; any other error is the
 * database's and fails the whole transaction. On success receipt holds the receipt text. */
static int put_one(ctl_store *s, ctl_order_rec *o, ctl_decide_fn decide,
                   ctl_receipt_fn make_receipt, void *ctx, char *receipt, size_t cap,
                   int *duplicate)
{
    *duplicate = 0;
    int rc, found = 0, same = 0;
    if (o->participant[0] &&
        (rc = accepted_by_nonce(s, o->participant, o->nonce, o->signed_msg, o->signed_len,
                                receipt, cap, &found, &same)))
        return rc;
    if (found && same) {
        *duplicate = 1;
        return CTL_ST_OK;
    }
    ctl_order_history h;
    if ((rc = history(s, o, found, &h)))
        return rc;
    if (decide && decide(o, &h, ctx))
        return CTL_ST_E_INVAL;
    if (o->status == CTL_ORDER_ACCEPTED && (rc = recheck(s, o, &h)))
        return rc;
    if (!order_valid(o))
        return CTL_ST_E_INVAL;
    char body[CTL_RECEIPT_MAX];
    body[0] = '\0';
    if (make_receipt(o, body, sizeof body, ctx) || !memchr(body, '\0', sizeof body))
        return CTL_ST_E_INVAL;
    int64_t order_id;
    if ((rc = insert_order(s, o, &h, &order_id)))
        return rc;
    sqlite3_stmt *st = cached(s, Q_RECEIPT_ADD);
    if (st) {
        sqlite3_bind_int64(st, 1, order_id);
        sqlite3_bind_text(st, 2, body, -1, SQLITE_STATIC);
    }
    if ((rc = run_cached(s, st)))
        return rc;
    snprintf(receipt, cap, "%s", body);
    return CTL_ST_OK;
}

int ctl_store_put_order(ctl_store *s, ctl_order_rec *o, ctl_decide_fn decide,
                        ctl_receipt_fn make_receipt, void *ctx, char *receipt, size_t cap,
                        int *duplicate)
{
    if (!s || !o || !make_receipt || !receipt || cap == 0 || !duplicate || !order_valid(o))
        return CTL_ST_E_INVAL;
    *duplicate = 0;
    int rc = begin(s);
    if (rc)
        return rc;
    char body[CTL_RECEIPT_MAX];
    rc = put_one(s, o, decide, make_receipt, ctx, body, sizeof body, duplicate);
    rc = finish(s, rc);
    if (rc == CTL_ST_OK)
        snprintf(receipt, cap, "%s", body);
    return rc;
}

int ctl_store_put_orders(ctl_store *s, ctl_order_item *items, size_t n, ctl_decide_fn decide,
                         ctl_receipt_fn make_receipt)
{
    if (!s || (!items && n) || !make_receipt || n > CTL_STORE_ORDERS_MAX)
        return CTL_ST_E_INVAL;
    if (n == 0)
        return CTL_ST_OK;
    int rc = begin(s);
    if (rc == CTL_ST_OK) {
        for (size_t i = 0; i < n && rc == CTL_ST_OK; i++) {
            ctl_order_item *it = &items[i];
            it->duplicate = 0;
            it->result = order_valid(&it->rec)
                             ? put_one(s, &it->rec, decide, make_receipt, it->ctx, it->receipt,
                                       sizeof it->receipt, &it->duplicate)
                             : CTL_ST_E_INVAL;
            if (it->result != CTL_ST_OK && it->result != CTL_ST_E_INVAL)
                rc = it->result; /* the database failed: nothing of the batch stays */
        }
        rc = finish(s, rc);
    }
    if (rc != CTL_ST_OK)
        for (size_t i = 0; i < n; i++) {
            items[i].result = rc;
            items[i].duplicate = 0;
        }
    return rc;
}

int ctl_store_interval_orders(ctl_store *s, int64_t interval_id, ctl_order_fn fn, void *ctx)
{
    sqlite3_stmt *st =
        prep(s, "SELECT o.order_id, o.participant, o.nonce, o.side, o.received_ms, m.market_id, "
                "st.energy_wh, st.price_uc_per_kwh FROM orders o "
                "JOIN market_ids m USING(participant) "
                "JOIN order_steps st ON st.order_id = o.order_id "
                "WHERE o.interval_id = ?1 AND o.status = 1 AND o.superseded = 0 "
                "ORDER BY m.market_id, st.step");
    if (!st)
        return db_code(s->db);
    sqlite3_bind_int64(st, 1, interval_id);
    ctl_order_rec o;
    memset(&o, 0, sizeof o);
    int64_t cur = -1, market_id = 0;
    int rc, out = CTL_ST_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t oid = sqlite3_column_int64(st, 0);
        if (oid != cur) {
            if (cur >= 0 && (out = fn(&o, (uint64_t)market_id, ctx)) != 0)
                break;
            memset(&o, 0, sizeof o);
            cur = oid;
            copy_text(o.participant, sizeof o.participant, sqlite3_column_text(st, 1));
            const void *nb = sqlite3_column_blob(st, 2);
            if (nb && sqlite3_column_bytes(st, 2) == CTL_NONCE_BYTES)
                memcpy(o.nonce, nb, CTL_NONCE_BYTES);
            o.interval_id = interval_id;
            o.side = sqlite3_column_int(st, 3) == 1 ? MKT_SELL : MKT_BUY;
            o.received_ms = sqlite3_column_int64(st, 4);
            o.status = CTL_ORDER_ACCEPTED;
            market_id = sqlite3_column_int64(st, 5);
        }
        if (o.n_steps < MKT_MAX_STEPS) {
            o.steps[o.n_steps].energy_wh = sqlite3_column_int64(st, 6);
            o.steps[o.n_steps].price_uc_per_kwh = sqlite3_column_int64(st, 7);
            o.n_steps++;
        }
    }
    if (out == CTL_ST_OK && rc == SQLITE_DONE && cur >= 0)
        out = fn(&o, (uint64_t)market_id, ctx);
    else if (out == CTL_ST_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        out = db_code(s->db);
    sqlite3_finalize(st);
    return out;
}

int ctl_store_participant_name(ctl_store *s, uint64_t market_id, char *name, size_t cap)
{
    sqlite3_stmt *st = prep(s, "SELECT participant FROM market_ids WHERE market_id = ?1");
    if (!st)
        return db_code(s->db);
    sqlite3_bind_int64(st, 1, (int64_t)market_id);
    int rc = sqlite3_step(st), out = CTL_ST_E_INVAL;
    if (rc == SQLITE_ROW) {
        copy_text(name, cap, sqlite3_column_text(st, 0));
        out = CTL_ST_OK;
    } else if (rc != SQLITE_DONE) {
        out = db_code(s->db);
    }
    sqlite3_finalize(st);
    return out;
}

int ctl_store_market_id(ctl_store *s, const char *participant, uint64_t *market_id)
{
    if (!participant || !participant[0] || strlen(participant) >= CTL_PARTICIPANT_MAX)
        return CTL_ST_E_INVAL;
    int rc = begin(s);
    if (rc)
        return rc;
    sqlite3_stmt *st = prep(s, "INSERT OR IGNORE INTO market_ids(participant) VALUES(?1)");
    if (st)
        sqlite3_bind_text(st, 1, participant, -1, SQLITE_STATIC);
    rc = run(s, st);
    if (rc == CTL_ST_OK) {
        st = prep(s, "SELECT market_id FROM market_ids WHERE participant = ?1");
        if (!st) {
            rc = db_code(s->db);
        } else {
            sqlite3_bind_text(st, 1, participant, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                *market_id = (uint64_t)sqlite3_column_int64(st, 0);
            else
                rc = db_code(s->db);
            sqlite3_finalize(st);
        }
    }
    return finish(s, rc);
}

/* ---- intervals: the reads and writes of clearing (daemon/clearing.c runs it) ---- */

int ctl_store_last_cleared(ctl_store *s, int64_t *id)
{
    int found;
    sqlite3_stmt *st = prep(s, "SELECT max(interval_id) FROM intervals WHERE state = ?1");
    if (st)
        sqlite3_bind_int64(st, 1, CTL_STATE_CLEARED);
    int rc = query_cached(s, st, id, &found);
    sqlite3_finalize(st);
    if (rc == CTL_ST_OK && !found)
        *id = INT64_MIN;
    return rc;
}

static int write_interval(ctl_store *s, int64_t id, int64_t start_utc, const mkt_params *p,
                          int64_t cleared_ms, const char *error)
{
    sqlite3_stmt *st = prep(s, "INSERT OR REPLACE INTO intervals(interval_id, start_utc, "
                               "length_s, state, mechanism, feed_in_uc_per_kwh, "
                               "retail_uc_per_kwh, network_fee_uc_per_kwh, cleared_ms, error) "
                               "VALUES(?1,?2,?3,1,?4,?5,?6,?7,?8,?9)");
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, start_utc);
        sqlite3_bind_int64(st, 3, s->interval_s);
        sqlite3_bind_int(st, 4, (int)p->mechanism);
        sqlite3_bind_int64(st, 5, p->feed_in_uc_per_kwh);
        sqlite3_bind_int64(st, 6, p->retail_uc_per_kwh);
        sqlite3_bind_int64(st, 7, p->network_fee_uc_per_kwh);
        sqlite3_bind_int64(st, 8, cleared_ms);
        sqlite3_bind_text(st, 9, error, -1, SQLITE_STATIC);
    }
    return run(s, st);
}

static int write_result(ctl_store *s, int64_t id, const mkt_summary *m, size_t n_orders,
                        size_t n_trades)
{
    sqlite3_stmt *st =
        prep(s, "INSERT INTO results VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)");
    if (st) {
        const int64_t v[] = {id,
                             (int64_t)n_orders,
                             (int64_t)n_trades,
                             m->matched_wh,
                             m->has_price,
                             m->clearing_price_uc_per_kwh,
                             m->price_low_uc_per_kwh,
                             m->price_high_uc_per_kwh,
                             m->grid_bought_wh,
                             m->grid_sold_wh,
                             m->local_value_uc,
                             m->fees_uc,
                             m->grid_paid_uc,
                             m->grid_received_uc};
        for (int i = 0; i < 14; i++)
            sqlite3_bind_int64(st, i + 1, v[i]);
    }
    return run(s, st);
}

/* Market numbers to names for one interval's participants (a small lookup per clearing). */
static int name_of(ctl_store *s, uint64_t market_id, char *name)
{
    return ctl_store_participant_name(s, market_id, name, CTL_PARTICIPANT_MAX);
}

static int write_trades(ctl_store *s, int64_t id, const mkt_trade *t, size_t nt)
{
    sqlite3_stmt *st = prep(s, "INSERT INTO trades VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
    if (!st)
        return db_code(s->db);
    int rc = CTL_ST_OK;
    for (size_t i = 0; i < nt && rc == CTL_ST_OK; i++) {
        char seller[CTL_PARTICIPANT_MAX], buyer[CTL_PARTICIPANT_MAX];
        if ((rc = name_of(s, t[i].seller, seller)) || (rc = name_of(s, t[i].buyer, buyer)))
            break;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_text(st, 3, seller, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, buyer, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 5, t[i].energy_wh);
        sqlite3_bind_int64(st, 6, t[i].price_uc_per_kwh);
        sqlite3_bind_int64(st, 7, t[i].amount_uc);
        sqlite3_bind_int64(st, 8, t[i].fee_uc);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_code(s->db);
    }
    sqlite3_finalize(st);
    return rc;
}

/* A grid-aware clearing's congestion rent (the trades that owe one) and its nodes. */
static int write_grid(ctl_store *s, const ctl_clearing_rec *r)
{
    int rc = CTL_ST_OK;
    sqlite3_stmt *st = NULL;
    if (r->congestion) {
        if (!(st = prep(s, "INSERT INTO trade_congestion VALUES(?1,?2,?3)")))
            return db_code(s->db);
        for (size_t i = 0; i < r->n_trades && rc == CTL_ST_OK; i++) {
            if (!r->congestion[i])
                continue;
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, r->interval_id);
            sqlite3_bind_int64(st, 2, (int64_t)i);
            sqlite3_bind_int64(st, 3, r->congestion[i]);
            if (sqlite3_step(st) != SQLITE_DONE)
                rc = db_code(s->db);
        }
        sqlite3_finalize(st);
    }
    if (rc != CTL_ST_OK || !r->n_nodes)
        return rc;
    if (!(st = prep(s, "INSERT INTO grid_nodes VALUES(?1,?2,?3,?4,?5,?6,?7)")))
        return db_code(s->db);
    for (size_t i = 0; i < r->n_nodes && rc == CTL_ST_OK; i++) {
        const mkt_node_result *n = &r->nodes[i];
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, r->interval_id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_text(st, 3, r->node_names[i], -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, n->flow_wh);
        sqlite3_bind_int64(st, 5, n->price_uc_per_kwh);
        sqlite3_bind_int64(st, 6, (int64_t)n->zone);
        sqlite3_bind_int64(st, 7, n->binding);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_code(s->db);
    }
    sqlite3_finalize(st);
    return rc;
}

static int write_outcomes(ctl_store *s, int64_t id, const mkt_participant_result *p, size_t np)
{
    sqlite3_stmt *st =
        prep(s, "INSERT INTO outcomes VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)");
    if (!st)
        return db_code(s->db);
    int rc = CTL_ST_OK;
    for (size_t i = 0; i < np && rc == CTL_ST_OK; i++) {
        char name[CTL_PARTICIPANT_MAX];
        if ((rc = name_of(s, p[i].participant, name)))
            break;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        const int64_t v[] = {(int64_t)p[i].participant, (int64_t)p[i].side, p[i].offered_wh,
                             p[i].local_bought_wh,      p[i].local_sold_wh,  p[i].grid_bought_wh,
                             p[i].grid_sold_wh,         p[i].local_paid_uc,  p[i].local_received_uc,
                             p[i].grid_paid_uc,         p[i].grid_received_uc, p[i].fee_paid_uc};
        for (int k = 0; k < 12; k++)
            sqlite3_bind_int64(st, k + 3, v[k]);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_code(s->db);
    }
    sqlite3_finalize(st);
    return rc;
}

int ctl_store_begin(ctl_store *s)
{
    return s ? begin(s) : CTL_ST_E_INVAL;
}

int ctl_store_end(ctl_store *s, int rc)
{
    return finish(s, rc);
}

int ctl_store_interval_cleared(ctl_store *s, int64_t interval_id, int *cleared)
{
    int64_t state = 0;
    int found = 0;
    sqlite3_stmt *st = cached(s, Q_STATE);
    if (st)
        sqlite3_bind_int64(st, 1, interval_id);
    int rc = query_cached(s, st, &state, &found);
    *cleared = rc == CTL_ST_OK && found && state == CTL_STATE_CLEARED;
    return rc;
}

int ctl_store_put_clearing(ctl_store *s, const ctl_clearing_rec *r)
{
    if (!s || !r || !r->params || !r->summary || (!r->trades && r->n_trades) ||
        (!r->outcomes && r->n_outcomes))
        return CTL_ST_E_INVAL;
    int rc;
    if ((rc = write_interval(s, r->interval_id, r->start_utc, r->params, r->cleared_ms,
                             r->error ? r->error : "")) ||
        (rc = write_result(s, r->interval_id, r->summary, r->n_orders, r->n_trades)) ||
        (rc = write_trades(s, r->interval_id, r->trades, r->n_trades)) ||
        (rc = write_outcomes(s, r->interval_id, r->outcomes, r->n_outcomes)) ||
        (rc = write_grid(s, r)))
        return rc;
    return CTL_ST_OK;
}

int ctl_store_result(ctl_store *s, int64_t interval_id, ctl_interval_result *r, int *found)
{
    if (!s || !r || !found)
        return CTL_ST_E_INVAL;
    sqlite3_stmt *st =
        prep(s, "SELECT i.start_utc, i.length_s, i.mechanism, i.feed_in_uc_per_kwh, "
                "i.retail_uc_per_kwh, i.network_fee_uc_per_kwh, i.cleared_ms, i.published, "
                "i.error, r.n_orders, r.n_trades, r.matched_wh, r.has_price, r.price_uc_per_kwh, "
                "r.price_low_uc_per_kwh, r.price_high_uc_per_kwh, r.grid_bought_wh, "
                "r.grid_sold_wh, r.local_value_uc, r.fees_uc, r.grid_paid_uc, "
                "r.grid_received_uc FROM intervals i JOIN results r USING(interval_id) "
                "WHERE i.interval_id = ?1 AND i.state = 1");
    if (!st)
        return db_code(s->db);
    sqlite3_bind_int64(st, 1, interval_id);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (*found) {
        memset(r, 0, sizeof *r);
        r->interval_id = interval_id;
        r->start_utc = sqlite3_column_int64(st, 0);
        r->length_s = sqlite3_column_int64(st, 1);
        r->params.mechanism = sqlite3_column_int(st, 2) == 1 ? MKT_PAY_AS_BID : MKT_PAY_AS_CLEAR;
        r->params.feed_in_uc_per_kwh = sqlite3_column_int64(st, 3);
        r->params.retail_uc_per_kwh = sqlite3_column_int64(st, 4);
        r->params.network_fee_uc_per_kwh = sqlite3_column_int64(st, 5);
        r->cleared_ms = sqlite3_column_int64(st, 6);
        r->published = sqlite3_column_int(st, 7);
        copy_text(r->error, sizeof r->error, sqlite3_column_text(st, 8));
        r->n_orders = (size_t)sqlite3_column_int64(st, 9);
        r->n_trades = (size_t)sqlite3_column_int64(st, 10);
        mkt_summary *m = &r->summary;
        m->mechanism = r->params.mechanism;
        m->matched_wh = sqlite3_column_int64(st, 11);
        m->has_price = sqlite3_column_int(st, 12);
        m->clearing_price_uc_per_kwh = sqlite3_column_int64(st, 13);
        m->price_low_uc_per_kwh = sqlite3_column_int64(st, 14);
        m->price_high_uc_per_kwh = sqlite3_column_int64(st, 15);
        m->grid_bought_wh = sqlite3_column_int64(st, 16);
        m->grid_sold_wh = sqlite3_column_int64(st, 17);
        m->local_value_uc = sqlite3_column_int64(st, 18);
        m->fees_uc = sqlite3_column_int64(st, 19);
        m->grid_paid_uc = sqlite3_column_int64(st, 20);
        m->grid_received_uc = sqlite3_column_int64(st, 21);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? CTL_ST_OK : db_code(s->db);
}

int ctl_store_trades(ctl_store *s, int64_t interval_id, ctl_trade_fn fn, void *ctx)
{
    sqlite3_stmt *st = prep(s, "SELECT t.seller, t.buyer, t.energy_wh, t.price_uc_per_kwh, "
                               "t.amount_uc, t.fee_uc, ms.market_id, mb.market_id, "
                               "coalesce(c.congestion_uc, 0) FROM trades t "
                               "JOIN market_ids ms ON ms.participant = t.seller "
                               "JOIN market_ids mb ON mb.participant = t.buyer "
                               "LEFT JOIN trade_congestion c "
                               "ON c.interval_id = t.interval_id AND c.seq = t.seq "
                               "WHERE t.interval_id = ?1 ORDER BY t.seq");
    if (!st)
        return db_code(s->db);
    sqlite3_bind_int64(st, 1, interval_id);
    int rc, out = CTL_ST_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ctl_trade_row t;
        memset(&t, 0, sizeof t);
        copy_text(t.seller, sizeof t.seller, sqlite3_column_text(st, 0));
        copy_text(t.buyer, sizeof t.buyer, sqlite3_column_text(st, 1));
        t.t.energy_wh = sqlite3_column_int64(st, 2);
        t.t.price_uc_per_kwh = sqlite3_column_int64(st, 3);
        t.t.amount_uc = sqlite3_column_int64(st, 4);
        t.t.fee_uc = sqlite3_column_int64(st, 5);
        t.t.seller = (uint64_t)sqlite3_column_int64(st, 6);
        t.t.buyer = (uint64_t)sqlite3_column_int64(st, 7);
        t.congestion_uc = sqlite3_column_int64(st, 8);
        if ((out = fn(&t, ctx)) != 0)
            break;
    }
    if (out == CTL_ST_OK && rc != SQLITE_DONE)
        out = db_code(s->db);
    sqlite3_finalize(st);
    return out;
}

int ctl_store_outcomes(ctl_store *s, int64_t interval_id, ctl_outcome_fn fn, void *ctx)
{
    sqlite3_stmt *st = prep(s, "SELECT participant, market_id, side, offered_wh, "
                               "local_bought_wh, local_sold_wh, grid_bought_wh, grid_sold_wh, "
                               "local_paid_uc, local_received_uc, grid_paid_uc, "
                               "grid_received_uc, fee_paid_uc FROM outcomes "
                               "WHERE interval_id = ?1 ORDER BY market_id");
    if (!st)
        return db_code(s->db);
    sqlite3_bind_int64(st, 1, interval_id);
    int rc, out = CTL_ST_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mkt_participant_result p;
        p.participant = (uint64_t)sqlite3_column_int64(st, 1);
        p.side = sqlite3_column_int(st, 2) == 1 ? MKT_SELL : MKT_BUY;
        p.offered_wh = sqlite3_column_int64(st, 3);
        p.local_bought_wh = sqlite3_column_int64(st, 4);
        p.local_sold_wh = sqlite3_column_int64(st, 5);
        p.grid_bought_wh = sqlite3_column_int64(st, 6);
        p.grid_sold_wh = sqlite3_column_int64(st, 7);
        p.local_paid_uc = sqlite3_column_int64(st, 8);
        p.local_received_uc = sqlite3_column_int64(st, 9);
        p.grid_paid_uc = sqlite3_column_int64(st, 10);
        p.grid_received_uc = sqlite3_column_int64(st, 11);
        p.fee_paid_uc = sqlite3_column_int64(st, 12);
        char name[CTL_PARTICIPANT_MAX];
        copy_text(name, sizeof name, sqlite3_column_text(st, 0));
        if ((out = fn(name, &p, ctx)) != 0)
            break;
    }
    if (out == CTL_ST_OK && rc != SQLITE_DONE)
        out = db_code(s->db);
    sqlite3_finalize(st);
    return out;
}

int ctl_store_grid_nodes(ctl_store *s, int64_t interval_id, ctl_grid_node_fn fn, void *ctx)
{
    sqlite3_stmt *st = prep(s, "SELECT node, name, flow_wh, price_uc_per_kwh, zone, binding "
                               "FROM grid_nodes WHERE interval_id = ?1 ORDER BY node");
    if (!st)
        return db_code(s->db);
    sqlite3_bind_int64(st, 1, interval_id);
    int rc, out = CTL_ST_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ctl_grid_node_row n;
        n.node = (uint32_t)sqlite3_column_int64(st, 0);
        copy_text(n.name, sizeof n.name, sqlite3_column_text(st, 1));
        n.flow_wh = sqlite3_column_int64(st, 2);
        n.price_uc_per_kwh = sqlite3_column_int64(st, 3);
        n.zone = (uint32_t)sqlite3_column_int64(st, 4);
        n.binding = sqlite3_column_int(st, 5);
        if ((out = fn(&n, ctx)) != 0)
            break;
    }
    if (out == CTL_ST_OK && rc != SQLITE_DONE)
        out = db_code(s->db);
    sqlite3_finalize(st);
    return out;
}

int ctl_store_unpublished(ctl_store *s, int64_t *ids, size_t max, size_t *n)
{
    if (!s || !ids || !n)
        return CTL_ST_E_INVAL;
    *n = 0;
    sqlite3_stmt *st = prep(s, "SELECT interval_id FROM intervals WHERE state = 1 AND "
                               "published = 0 ORDER BY interval_id LIMIT ?1");
    if (!st)
        return db_code(s->db);
    sqlite3_bind_int64(st, 1, (int64_t)max);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max)
        ids[(*n)++] = sqlite3_column_int64(st, 0);
    int out = rc == SQLITE_DONE || rc == SQLITE_ROW ? CTL_ST_OK : db_code(s->db);
    sqlite3_finalize(st);
    return out;
}

int ctl_store_mark_published(ctl_store *s, int64_t interval_id)
{
    int rc = begin(s);
    if (rc)
        return rc;
    sqlite3_stmt *st = prep(s, "UPDATE intervals SET published = 1 WHERE interval_id = ?1");
    if (st)
        sqlite3_bind_int64(st, 1, interval_id);
    return finish(s, run(s, st));
}
