/*
 * The meter_keys and reading_tiers tables (see meter_keys.h).
 */
#include "db/meter_keys.h"

#include "common/ident.h"
#include "common/sql.h"
#include "db/db_internal.h"

#include <sqlite3.h>
#include <string.h>

int ctl_meter_key_set(ctl_db *db, const char *meter_id, int kind, const uint8_t *key, size_t len,
                      int64_t now_s)
{
    if (!db || !meter_id || !ctl_id_valid(meter_id) || !key ||
        (kind == CTL_MKEY_GATEWAY && len != 32) ||
        (kind == CTL_MKEY_CERTIFIED && (len < 32 || len > CTL_MKEY_MAX)) ||
        (kind != CTL_MKEY_GATEWAY && kind != CTL_MKEY_CERTIFIED))
        return CTL_DB_E_INVAL;
    sqlite3 *h = ctl_db__sqlite(db);
    if (ctl_sql_begin(h) != SQLITE_OK)
        return CTL_DB_E_DB;
    sqlite3_stmt *st = NULL;
    int ok = ctl_sql_prepare(h,
                             "INSERT OR REPLACE INTO meter_keys(meter_id, kind, pubkey, added_s) "
                             "VALUES(?1, ?2, ?3, ?4)",
                             &st) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, meter_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, kind);
        sqlite3_bind_blob(st, 3, key, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now_s);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return ctl_sql_end(h, ok) == SQLITE_OK && ok ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_meter_key_get(ctl_db *db, const char *meter_id, int kind, uint8_t *out, size_t cap,
                      size_t *len)
{
    if (!db || !meter_id || !out || !len)
        return CTL_DB_E_INVAL;
    sqlite3_stmt *st = NULL;
    if (ctl_sql_prepare(ctl_db__sqlite(db),
                        "SELECT pubkey FROM meter_keys WHERE meter_id = ?1 AND kind = ?2",
                        &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    sqlite3_bind_text(st, 1, meter_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, kind);
    int rc = sqlite3_step(st), out_rc;
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (n > cap) {
            out_rc = CTL_DB_E_INVAL;
        } else {
            memcpy(out, sqlite3_column_blob(st, 0), n);
            *len = n;
            out_rc = CTL_DB_OK;
        }
    } else {
        out_rc = rc == SQLITE_DONE ? 1 : CTL_DB_E_DB;
    }
    sqlite3_finalize(st);
    return out_rc;
}

int ctl_meter_key_remove(ctl_db *db, const char *meter_id, int kind)
{
    if (!db || !meter_id)
        return CTL_DB_E_INVAL;
    sqlite3 *h = ctl_db__sqlite(db);
    if (ctl_sql_begin(h) != SQLITE_OK)
        return CTL_DB_E_DB;
    sqlite3_stmt *st = NULL;
    int ok = ctl_sql_prepare(h, "DELETE FROM meter_keys WHERE meter_id = ?1 AND kind = ?2",
                             &st) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, meter_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, kind);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return ctl_sql_end(h, ok) == SQLITE_OK && ok ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_reading_tiers_put(ctl_db *db, const mtr_sample *r, const int *tiers, size_t n)
{
    if (!db || (n && (!r || !tiers)))
        return CTL_DB_E_INVAL;
    if (n == 0)
        return CTL_DB_OK;
    sqlite3 *h = ctl_db__sqlite(db);
    if (ctl_sql_begin(h) != SQLITE_OK)
        return CTL_DB_E_DB;
    sqlite3_stmt *st = NULL;
    int ok = ctl_sql_prepare(h,
                             "INSERT OR IGNORE INTO reading_tiers(meter_id, ts_ms, tier) "
                             "VALUES(?1, ?2, ?3)",
                             &st) == SQLITE_OK;
    for (size_t i = 0; ok && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, r[i].meter_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r[i].ts_ms);
        sqlite3_bind_int(st, 3, tiers[i] < 0 ? 0 : tiers[i] > 2 ? 2 : tiers[i]);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return ctl_sql_end(h, ok) == SQLITE_OK && ok ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_reading_tier_min(ctl_db *db, const char *meter_id, int64_t from_ms, int64_t to_ms,
                         int *tier, int64_t *count)
{
    if (!db || !meter_id || !tier)
        return CTL_DB_E_INVAL;
    sqlite3_stmt *st = NULL;
    if (ctl_sql_prepare(ctl_db__sqlite(db),
                        "SELECT count(*), coalesce(min(coalesce(t.tier, 0)), 0) FROM readings r "
                        "LEFT JOIN reading_tiers t ON t.meter_id = r.meter_id AND "
                        "t.ts_ms = r.ts_ms WHERE r.meter_id = ?1 AND r.ts_ms >= ?2 AND "
                        "r.ts_ms < ?3",
                        &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    sqlite3_bind_text(st, 1, meter_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from_ms);
    sqlite3_bind_int64(st, 3, to_ms);
    int rc = sqlite3_step(st) == SQLITE_ROW ? CTL_DB_OK : CTL_DB_E_DB;
    if (rc == CTL_DB_OK) {
        int64_t c = sqlite3_column_int64(st, 0);
        *tier = c > 0 ? sqlite3_column_int(st, 1) : 0;
        if (count)
            *count = c;
    }
    sqlite3_finalize(st);
    return rc;
}
