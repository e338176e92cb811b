/*
 * The signed orders of an interval as evidence (order_evidence.h).
 */
#include "db/order_evidence.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

int ctl_order_evidence(ctl_db *db, int64_t interval_id, ctl_evidence_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    if (ctl_db_prepare(db,
                       "SELECT o.participant, m.market_id, o.signed, p.pubkey FROM orders o "
                       "JOIN market_ids m USING(participant) "
                       "LEFT JOIN participants p ON p.id = o.participant "
                       "WHERE o.interval_id = ?1 AND o.status = 1 ORDER BY m.market_id, o.order_id",
                       &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, interval_id);
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *who = (const char *)sqlite3_column_text(st, 0);
        const uint8_t *sig = sqlite3_column_blob(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        const uint8_t *pk = sqlite3_column_bytes(st, 3) == 32 ? sqlite3_column_blob(st, 3) : NULL;
        if ((out = fn(who ? who : "", (uint64_t)sqlite3_column_int64(st, 1), sig, sig ? len : 0,
                      pk, ctx)) != 0)
            break;
    }
    if (out == 0 && rc != SQLITE_DONE)
        out = -1;
    sqlite3_finalize(st);
    return out;
}

int ctl_pref_evidence(ctl_db *db, const char *participant, ctl_pref_evidence_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    if (ctl_db_prepare(db,
                       "SELECT f.pref_id, f.signed, p.pubkey FROM preferences f "
                       "LEFT JOIN participants p ON p.id = f.participant "
                       "WHERE f.participant = ?1 ORDER BY f.pref_id",
                       &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, participant, -1, SQLITE_STATIC);
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *sig = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        const uint8_t *pk = sqlite3_column_bytes(st, 2) == 32 ? sqlite3_column_blob(st, 2) : NULL;
        if ((out = fn(sqlite3_column_int64(st, 0), sig, sig ? len : 0, pk, ctx)) != 0)
            break;
    }
    if (out == 0 && rc != SQLITE_DONE)
        out = -1;
    sqlite3_finalize(st);
    return out;
}

int ctl_reading_evidence(ctl_db *db, const char *meter_id, int64_t from_ms, int64_t to_ms,
                         int (*fn)(const mtr_sample *r, void *ctx), void *ctx)
{
    sqlite3_stmt *st;
    if (ctl_db_prepare(db,
                       "SELECT ts_ms, power_w, import_wh, export_wh, soc_permille, quality "
                       "FROM readings WHERE meter_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 "
                       "ORDER BY ts_ms",
                       &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, meter_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from_ms);
    sqlite3_bind_int64(st, 3, to_ms);
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mtr_sample r;
        memset(&r, 0, sizeof r);
        snprintf(r.meter_id, sizeof r.meter_id, "%s", meter_id);
        r.ts_ms = sqlite3_column_int64(st, 0);
        r.power_w = sqlite3_column_int64(st, 1);
        r.import_wh = sqlite3_column_int64(st, 2);
        r.export_wh = sqlite3_column_int64(st, 3);
        r.soc_permille = (int32_t)sqlite3_column_int64(st, 4);
        r.quality = (uint32_t)sqlite3_column_int64(st, 5);
        if ((out = fn(&r, ctx)) != 0)
            break;
    }
    if (out == 0 && rc != SQLITE_DONE)
        out = -1;
    sqlite3_finalize(st);
    return out;
}

int ctl_market_member(ctl_db *db, uint64_t market_id, char *name, size_t name_cap, char *meter,
                      size_t meter_cap)
{
    sqlite3_stmt *st;
    if (ctl_db_prepare(db,
                       "SELECT m.participant, p.meter_id FROM market_ids m "
                       "LEFT JOIN participants p ON p.id = m.participant WHERE m.market_id = ?1",
                       &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)market_id);
    int s = sqlite3_step(st), out = s == SQLITE_ROW ? 0 : s == SQLITE_DONE ? 1 : -1;
    if (out == 0) {
        const unsigned char *n = sqlite3_column_text(st, 0), *m = sqlite3_column_text(st, 1);
        snprintf(name, name_cap, "%s", n ? (const char *)n : "");
        snprintf(meter, meter_cap, "%s", m ? (const char *)m : "");
    }
    sqlite3_finalize(st);
    return out;
}
