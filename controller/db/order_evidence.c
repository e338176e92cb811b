/*
 * The signed orders of an interval as evidence (order_evidence.h).
 */
#include "db/order_evidence.h"

#include <sqlite3.h>

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
