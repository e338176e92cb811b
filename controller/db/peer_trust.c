/*
 * The peer_checks table and a home's trust score (see peer_trust.h).
 */
#include "db/peer_trust.h"

#include "common/sql.h"
#include "db/db_internal.h"

#include <sqlite3.h>
#include <string.h>

int ctl_peer_checks_put(ctl_db *db, const ctl_peer_check_row *rows, size_t n)
{
    if (!db || (n && !rows))
        return CTL_DB_E_INVAL;
    if (n == 0)
        return CTL_DB_OK;
    sqlite3 *h = ctl_db__sqlite(db);
    if (ctl_sql_begin(h) != SQLITE_OK)
        return CTL_DB_E_DB;
    sqlite3_stmt *st = NULL;
    int ok = ctl_sql_prepare(h,
                             "INSERT OR REPLACE INTO peer_checks(participant, interval_id, "
                             "peer_checked, peer_flagged, disputed, yield_wh_per_kwp, "
                             "reference_wh_per_kwp) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                             &st) == SQLITE_OK;
    for (size_t i = 0; ok && i < n; i++) {
        const ctl_peer_check_row *r = &rows[i];
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, r->participant, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r->interval_id);
        sqlite3_bind_int(st, 3, r->peer_checked ? 1 : 0);
        sqlite3_bind_int(st, 4, r->peer_flagged ? 1 : 0);
        sqlite3_bind_int(st, 5, r->disputed ? 1 : 0);
        sqlite3_bind_int64(st, 6, r->yield_wh_per_kwp);
        sqlite3_bind_int64(st, 7, r->reference_wh_per_kwp);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return ctl_sql_end(h, ok) == SQLITE_OK && ok ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_peer_trust_get(ctl_db *db, const char *participant, ctl_peer_trust *out)
{
    if (!db || !participant || !out)
        return CTL_DB_E_INVAL;
    memset(out, 0, sizeof *out);
    out->score_permille = -1;
    sqlite3_stmt *st = NULL;
    if (ctl_sql_prepare(ctl_db__sqlite(db),
                        "SELECT coalesce(sum(peer_checked), 0), coalesce(sum(peer_flagged), 0), "
                        "coalesce(sum(disputed), 0) FROM peer_checks WHERE participant = ?1",
                        &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    sqlite3_bind_text(st, 1, participant, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_ROW ? CTL_DB_OK : CTL_DB_E_DB;
    if (rc == CTL_DB_OK) {
        out->checked = sqlite3_column_int64(st, 0);
        out->flagged = sqlite3_column_int64(st, 1);
        out->disputed = sqlite3_column_int64(st, 2);
        if (out->checked > 0)
            out->score_permille = 1000 * (out->checked - out->flagged) / out->checked;
    }
    sqlite3_finalize(st);
    return rc;
}
