/*
 * Energy held intervals owe, carried to the next good one (see settle_carry.h).
 */
#include "settle/settle_carry.h"

#include "mgx/ledger_record.h"

#include <sqlite3.h>
#include <string.h>

int ctl_carry_last_good(ctl_db *db, int64_t participant, int64_t before_interval,
                        int64_t *interval_id, int64_t *interval_len_s)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db,
                       "SELECT t.body, b.interval_id, b.body FROM ledger_tx t JOIN ledger_block b"
                       " ON b.height = t.height WHERE t.participant = ?1 AND b.interval_id < ?2"
                       " ORDER BY t.log_index DESC LIMIT ?3",
                       &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, participant);
    sqlite3_bind_int64(st, 2, before_interval);
    sqlite3_bind_int(st, 3, CTL_CARRY_MAX_SCAN);
    int rc = 1, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        stl_tx tx;
        if (stl_tx_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &tx) !=
                STL_OK ||
            tx.kind != STL_TX_POSITION || tx.position.status != STL_POS_GOOD)
            continue;
        stl_block b;
        if (stl_block_decode(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                             &b) != STL_OK)
            continue;
        *interval_id = sqlite3_column_int64(st, 1);
        *interval_len_s = (int64_t)b.interval_len_s;
        rc = 0;
        break;
    }
    if (rc == 1 && step != SQLITE_DONE)
        rc = -1;
    sqlite3_finalize(st);
    return rc;
}

int ctl_carry_put(ctl_db *db, int64_t interval_id, int64_t participant, int64_t from_interval,
                  int64_t import_wh)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db, "INSERT OR REPLACE INTO settle_carry VALUES(?1, ?2, ?3, ?4)", &st) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, interval_id);
    sqlite3_bind_int64(st, 2, participant);
    sqlite3_bind_int64(st, 3, from_interval);
    sqlite3_bind_int64(st, 4, import_wh);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc; /* autocommit: one statement is one transaction */
}

int ctl_carry_get(ctl_db *db, int64_t interval_id, int64_t participant, int64_t *from_interval,
                  int64_t *import_wh)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db,
                       "SELECT from_interval, import_wh FROM settle_carry"
                       " WHERE interval_id = ?1 AND participant = ?2",
                       &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, interval_id);
    sqlite3_bind_int64(st, 2, participant);
    int step = sqlite3_step(st), rc = 0;
    if (step == SQLITE_ROW) {
        *from_interval = sqlite3_column_int64(st, 0);
        *import_wh = sqlite3_column_int64(st, 1);
        rc = 1;
    } else if (step != SQLITE_DONE) {
        rc = -1;
    }
    sqlite3_finalize(st);
    return rc;
}
