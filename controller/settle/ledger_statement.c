/*
 * A participant's settlement statement out of the ledger, and a billing period's nets (see
 * ledger_statement.h).
 */
#include "settle/ledger_statement.h"

#include "common/errbuf.h"
#include "common/opt.h"
#include "mgx/civil.h"
#include "mgx/market.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

void ctl_statement_month(int64_t y, int64_t m, ctl_statement_range *r)
{
    r->by_interval = false;
    r->interval_id = 0;
    r->from_utc = mkt_days_from_civil(y, m, 1) * 86400;
    r->to_utc = mkt_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * 86400;
}

int ctl_ledger_participant_number(ctl_db *db, const char *name, int64_t *out, char *err,
                                  size_t errlen)
{
    if (ctl_opt_int64(name, 0, INT64_MAX, out) == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (ctl_db_prepare(db, "SELECT market_id FROM market_ids WHERE participant = ?1", &st) != SQLITE_OK)
        return ctl_fail(-1, err, errlen,
                        "'%s' is not a participant number, and this database has no controller "
                        "participant names",
                        name);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        ctl_errf(err, errlen, "no participant '%s' in this database", name);
    }
    sqlite3_finalize(st);
    return rc;
}

static void row_values(const stl_position *p, int64_t v[CTL_STATEMENT_COLS])
{
    const int64_t cols[CTL_STATEMENT_COLS] = {p->import_wh,
                                              p->export_wh,
                                              p->contracted_bought_wh,
                                              p->contracted_sold_wh,
                                              p->local_bought_wh,
                                              p->local_sold_wh,
                                              p->grid_bought_wh,
                                              p->grid_sold_wh,
                                              p->local_paid_uc,
                                              p->fee_paid_uc,
                                              p->local_received_uc,
                                              p->grid_paid_uc,
                                              p->grid_received_uc,
                                              p->local_received_uc + p->grid_received_uc -
                                                  p->local_paid_uc - p->grid_paid_uc};
    for (int i = 0; i < CTL_STATEMENT_COLS; i++)
        v[i] = cols[i];
}

int ctl_statement_grid_only_net_uc(const ctl_statement_row *row, int64_t *net_uc)
{
    int64_t paid, received;
    if (mkt_amount_uc(row->position->import_wh, row->tariffs.retail_uc_per_kwh, &paid) ||
        mkt_amount_uc(row->position->export_wh, row->tariffs.feed_in_uc_per_kwh, &received))
        return -1;
    *net_uc = received - paid;
    return 0;
}

int ctl_ledger_statement(ctl_db *db, int64_t participant, const ctl_statement_range *range,
                         int (*fn)(void *ctx, const ctl_statement_row *row), void *ctx, int *rows,
                         char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    *rows = 0;
    if (ctl_db_prepare(db,
                           "SELECT t.body, b.body FROM ledger_tx t JOIN ledger_block b ON "
                           "b.height = t.height WHERE t.participant = ?1 ORDER BY t.log_index", &st) != SQLITE_OK) {
        ctl_errf(err, errlen, "%s", ctl_db_errmsg(db));
        goto out;
    }
    sqlite3_bind_int64(st, 1, participant);
    while (sqlite3_step(st) == SQLITE_ROW) {
        stl_tx tx;
        stl_block b;
        if (stl_tx_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &tx) ||
            stl_block_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &b)) {
            ctl_errf(err, errlen, "damaged record (run `mgx ledger verify`)");
            goto out;
        }
        if (tx.kind != STL_TX_POSITION) /* its credit records: `mgx ledger certificates` */
            continue;
        ctl_statement_row row = {
            b.interval_id, b.interval_id * (int64_t)b.interval_len_s, &tx.position, {0},
            b.timing, b.tariffs};
        if (range->by_interval
                ? b.interval_id != range->interval_id
                : (row.start_utc < range->from_utc || row.start_utc >= range->to_utc))
            continue;
        row_values(&tx.position, row.v);
        int frc = fn(ctx, &row);
        if (frc != 0) {
            rc = frc;
            goto out;
        }
        (*rows)++;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

int ctl_ledger_position_index(ctl_db *db, int64_t participant, int64_t interval_id,
                              int64_t *log_index, int *found)
{
    sqlite3_stmt *st = NULL;
    *found = 0;
    if (ctl_db_prepare(db, "SELECT t.log_index, t.body FROM ledger_tx t JOIN ledger_block b ON "
                           "b.height = t.height WHERE b.interval_id = ?1 AND t.participant = ?2 "
                           "ORDER BY t.log_index",
                       &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, interval_id);
    sqlite3_bind_int64(st, 2, participant);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        stl_tx tx;
        if (stl_tx_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &tx) ==
                STL_OK &&
            tx.kind == STL_TX_POSITION) {
            *log_index = sqlite3_column_int64(st, 0);
            *found = 1;
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int ctl_ledger_period_nets(ctl_db *db, int64_t first, int64_t last, ctl_sol_net **out, size_t *n,
                       uint8_t root[32])
{
    sqlite3_stmt *q = NULL;
    size_t cap = 0;
    int rc = -1;
    *out = NULL;
    *n = 0;
    if (ctl_db_prepare(db, "SELECT body FROM ledger_block WHERE interval_id BETWEEN ?1 AND ?2 "
                           "ORDER BY height DESC LIMIT 1",
                       &q) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(q, 1, first);
    sqlite3_bind_int64(q, 2, last);
    int step = sqlite3_step(q);
    stl_block b;
    if (step == SQLITE_DONE)
        rc = 0; /* no block in the period: nothing to net */
    else if (step == SQLITE_ROW && stl_block_decode(sqlite3_column_blob(q, 0),
                                                    (size_t)sqlite3_column_bytes(q, 0),
                                                    &b) == STL_OK)
        memcpy(root, b.log_root, 32);
    else
        step = SQLITE_ERROR;
    sqlite3_finalize(q);
    if (step != SQLITE_ROW)
        return step == SQLITE_DONE ? 0 : -1;
    if (ctl_db_prepare(db, "SELECT t.body FROM ledger_tx t JOIN ledger_block b ON b.height = "
                           "t.height WHERE b.interval_id BETWEEN ?1 AND ?2 AND t.participant IS "
                           "NOT NULL ORDER BY t.participant, t.log_index",
                       &q) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(q, 1, first);
    sqlite3_bind_int64(q, 2, last);
    rc = 0;
    while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW) {
        stl_tx tx;
        if (stl_tx_decode(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0), &tx) !=
            STL_OK) {
            rc = -1;
            break;
        }
        if (tx.kind != STL_TX_POSITION) /* credit records move no money */
            continue;
        const stl_position *p = &tx.position;
        if (*n == 0 || (*out)[*n - 1].participant != p->participant) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 64;
                ctl_sol_net *g = realloc(*out, cap * sizeof *g);
                if (!g) {
                    rc = -1;
                    break;
                }
                *out = g;
            }
            (*out)[(*n)++] = (ctl_sol_net){p->participant, 0, 0};
        }
        ctl_sol_net *x = &(*out)[*n - 1];
        x->net_wh += p->local_sold_wh - p->local_bought_wh;
        x->net_uc += p->local_received_uc - p->local_paid_uc;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = -1;
    sqlite3_finalize(q);
    return rc;
}

