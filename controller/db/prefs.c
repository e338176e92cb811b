/*
 * Standing preferences in SQLite (prefs.h): the history an incoming preference is judged by,
 * its insertion with its steps, and the lookup of the preference that counts for an interval.
 */
#include "db/prefs.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

int ctl_prefs_history(ctl_db *db, const char *participant, const uint8_t *nonce,
                      const uint8_t *signed_msg, size_t signed_len, int64_t valid_from,
                      ctl_pref_history *h)
{
    if (!db || !participant || !nonce || !h || (!signed_msg && signed_len))
        return CTL_ST_E_INVAL;
    memset(h, 0, sizeof *h);
    sqlite3_stmt *q = NULL;
    int rc = CTL_ST_E_DB;
    if (ctl_db_prepare(db,
                       "SELECT signed, receipt FROM preferences WHERE participant = ?1 AND "
                       "nonce = ?2",
                       &q) != SQLITE_OK)
        return CTL_ST_E_DB;
    sqlite3_bind_text(q, 1, participant, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, nonce, CTL_NONCE_BYTES, SQLITE_STATIC);
    int s = sqlite3_step(q);
    if (s == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(q, 0);
        size_t n = (size_t)sqlite3_column_bytes(q, 0);
        h->nonce_seen = n == signed_len && n > 0 && memcmp(b, signed_msg, n) == 0 ? 1 : 2;
        snprintf(h->receipt, sizeof h->receipt, "%s", (const char *)sqlite3_column_text(q, 1));
    } else if (s != SQLITE_DONE) {
        goto out;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (ctl_db_prepare(db,
                       "SELECT max(created_ms) FROM preferences WHERE participant = ?1 AND "
                       "valid_from = ?2",
                       &q) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(q, 1, participant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, valid_from);
    if (sqlite3_step(q) != SQLITE_ROW)
        goto out;
    if (sqlite3_column_type(q, 0) != SQLITE_NULL) {
        h->has_current = 1;
        h->current_created_ms = sqlite3_column_int64(q, 0);
    }
    rc = CTL_ST_OK;
out:
    sqlite3_finalize(q);
    return rc;
}

static int put_steps(ctl_db *db, int64_t id, int side, const mkt_step *s, uint32_t n)
{
    sqlite3_stmt *q = NULL;
    int rc = CTL_ST_OK;
    if (n == 0)
        return CTL_ST_OK;
    if (ctl_db_prepare(db,
                       "INSERT INTO preference_steps(pref_id, side, step, energy_wh, "
                       "price_uc_per_kwh) VALUES(?1, ?2, ?3, ?4, ?5)",
                       &q) != SQLITE_OK)
        return CTL_ST_E_DB;
    for (uint32_t i = 0; i < n && rc == CTL_ST_OK; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, id);
        sqlite3_bind_int(q, 2, side);
        sqlite3_bind_int(q, 3, (int)i);
        sqlite3_bind_int64(q, 4, s[i].energy_wh);
        sqlite3_bind_int64(q, 5, s[i].price_uc_per_kwh);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = CTL_ST_E_DB;
    }
    sqlite3_finalize(q);
    return rc;
}

int ctl_prefs_put(ctl_db *db, const ctl_pref_rec *r)
{
    if (!db || !r || !r->participant || !r->nonce || !r->pref || !r->signed_msg ||
        r->signed_len < 1 || r->signed_len > CTL_SIGNED_MAX || !r->receipt ||
        r->pref->n_sell_steps > MKT_PREF_MAX_STEPS || r->pref->n_buy_steps > MKT_PREF_MAX_STEPS)
        return CTL_ST_E_INVAL;
    sqlite3_stmt *q = NULL;
    if (ctl_db_prepare(db,
                       "INSERT INTO preferences(participant, nonce, valid_from, created_ms, "
                       "signed, received_ms, receipt) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                       &q) != SQLITE_OK)
        return CTL_ST_E_DB;
    sqlite3_bind_text(q, 1, r->participant, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, r->nonce, CTL_NONCE_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, r->valid_from);
    sqlite3_bind_int64(q, 4, r->created_ms);
    sqlite3_bind_blob(q, 5, r->signed_msg, (int)r->signed_len, SQLITE_STATIC);
    sqlite3_bind_int64(q, 6, r->received_ms);
    sqlite3_bind_text(q, 7, r->receipt, -1, SQLITE_STATIC);
    int ok = sqlite3_step(q) == SQLITE_DONE;
    sqlite3_finalize(q);
    if (!ok)
        return CTL_ST_E_DB;
    int64_t id = ctl_db_last_rowid(db);
    int rc = put_steps(db, id, MKT_SELL, r->pref->sell, r->pref->n_sell_steps);
    return rc == CTL_ST_OK ? put_steps(db, id, MKT_BUY, r->pref->buy, r->pref->n_buy_steps) : rc;
}

int ctl_prefs_valid(ctl_db *db, const char *participant, int64_t interval_id,
                    mkt_preference *out, int *found)
{
    if (!db || !participant || !out || !found)
        return CTL_ST_E_INVAL;
    *found = 0;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *q = NULL;
    int rc = CTL_ST_E_DB;
    if (ctl_db_prepare(db,
                       "SELECT pref_id FROM preferences WHERE participant = ?1 AND "
                       "valid_from <= ?2 ORDER BY created_ms DESC, pref_id DESC LIMIT 1",
                       &q) != SQLITE_OK)
        return CTL_ST_E_DB;
    sqlite3_bind_text(q, 1, participant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, interval_id);
    int s = sqlite3_step(q);
    if (s == SQLITE_DONE) {
        rc = CTL_ST_OK;
        goto out;
    }
    if (s != SQLITE_ROW)
        goto out;
    int64_t id = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    q = NULL;
    if (ctl_db_prepare(db,
                       "SELECT side, step, energy_wh, price_uc_per_kwh FROM preference_steps "
                       "WHERE pref_id = ?1 ORDER BY side, step",
                       &q) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(q, 1, id);
    while ((s = sqlite3_step(q)) == SQLITE_ROW) {
        int side = sqlite3_column_int(q, 0), step = sqlite3_column_int(q, 1);
        if (step < 0 || step >= MKT_PREF_MAX_STEPS)
            goto out; /* the table's own rows never hold one */
        mkt_step *st = side == MKT_SELL ? out->sell : out->buy;
        uint32_t *n = side == MKT_SELL ? &out->n_sell_steps : &out->n_buy_steps;
        st[step].energy_wh = sqlite3_column_int64(q, 2);
        st[step].price_uc_per_kwh = sqlite3_column_int64(q, 3);
        if ((uint32_t)step + 1 > *n)
            *n = (uint32_t)step + 1;
    }
    if (s != SQLITE_DONE)
        goto out;
    *found = 1;
    rc = CTL_ST_OK;
out:
    sqlite3_finalize(q);
    return rc;
}

int ctl_interval_timing_put(ctl_db *db, int64_t interval_id, mkt_timing timing)
{
    if (!db || (timing != MKT_EX_ANTE && timing != MKT_EX_POST))
        return CTL_ST_E_INVAL;
    sqlite3_stmt *q = NULL;
    if (ctl_db_prepare(db,
                       "INSERT OR REPLACE INTO interval_timing(interval_id, timing) "
                       "VALUES(?1, ?2)",
                       &q) != SQLITE_OK)
        return CTL_ST_E_DB;
    sqlite3_bind_int64(q, 1, interval_id);
    sqlite3_bind_text(q, 2, mkt_timing_name(timing), -1, SQLITE_STATIC);
    int rc = sqlite3_step(q) == SQLITE_DONE ? CTL_ST_OK : CTL_ST_E_DB;
    sqlite3_finalize(q);
    return rc;
}

int ctl_interval_timing_get(ctl_db *db, int64_t interval_id, mkt_timing *timing)
{
    if (!db || !timing)
        return CTL_ST_E_INVAL;
    *timing = MKT_EX_ANTE;
    sqlite3_stmt *q = NULL;
    if (ctl_db_prepare(db, "SELECT timing FROM interval_timing WHERE interval_id = ?1", &q) !=
        SQLITE_OK)
        return CTL_ST_E_DB;
    sqlite3_bind_int64(q, 1, interval_id);
    int s = sqlite3_step(q), rc = CTL_ST_E_DB;
    if (s == SQLITE_ROW) {
        rc = mkt_timing_parse((const char *)sqlite3_column_text(q, 0), timing) == MKT_OK
                 ? CTL_ST_OK
                 : CTL_ST_E_DB;
    } else if (s == SQLITE_DONE) {
        rc = CTL_ST_OK;
    }
    sqlite3_finalize(q);
    return rc;
}
