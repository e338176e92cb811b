/*
 * The web dashboard's reads of the community database (see dashboard.h).
 */
#include "db/dashboard.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int step_done(int rc) { return rc == SQLITE_DONE ? CTL_DB_OK : CTL_DB_E_DB; }

int ctl_dash_identity(ctl_db *db, char *community, size_t cap, int64_t *interval_s, int *found)
{
    sqlite3_stmt *st = NULL;
    *found = 0;
    if (ctl_db_prepare(db, "SELECT (SELECT value FROM ctl_meta WHERE key = 'community'), "
                           "(SELECT value FROM ctl_meta WHERE key = 'interval_s')",
                       &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL &&
        sqlite3_column_type(st, 1) != SQLITE_NULL) {
        snprintf(community, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        *interval_s = strtoll((const char *)sqlite3_column_text(st, 1), NULL, 10);
        *found = *interval_s > 0;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_dash_latest_reading(ctl_db *db, const char *meter_id, mtr_sample *out, int *found)
{
    sqlite3_stmt *st = NULL;
    *found = 0;
    memset(out, 0, sizeof *out);
    if (ctl_db_prepare(db, "SELECT ts_ms, power_w, import_wh, export_wh, soc_permille, quality "
                           "FROM readings WHERE meter_id = ?1 ORDER BY ts_ms DESC LIMIT 1",
                       &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    sqlite3_bind_text(st, 1, meter_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(out->meter_id, sizeof out->meter_id, "%s", meter_id);
        out->ts_ms = sqlite3_column_int64(st, 0);
        out->power_w = sqlite3_column_int64(st, 1);
        out->import_wh = sqlite3_column_int64(st, 2);
        out->export_wh = sqlite3_column_int64(st, 3);
        out->soc_permille = (int32_t)sqlite3_column_int64(st, 4);
        out->quality = (uint32_t)sqlite3_column_int64(st, 5);
        *found = 1;
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return step_done(rc);
}

int ctl_dash_last_cleared(ctl_db *db, int64_t *interval_id, int *found)
{
    sqlite3_stmt *st = NULL;
    *found = 0;
    if (ctl_db_prepare(db, "SELECT max(interval_id) FROM intervals WHERE state = 1", &st) !=
        SQLITE_OK)
        return CTL_DB_E_DB;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *interval_id = sqlite3_column_int64(st, 0);
        *found = 1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_dash_last_settled(ctl_db *db, int64_t *interval_id, int *found)
{
    sqlite3_stmt *st = NULL;
    *found = 0;
    if (ctl_db_prepare(db, "SELECT max(interval_id) FROM ledger_block", &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *interval_id = sqlite3_column_int64(st, 0);
        *found = 1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_dash_unsettled(ctl_db *db, int64_t *n)
{
    sqlite3_stmt *st = NULL;
    *n = 0;
    if (ctl_db_prepare(db,
                       "SELECT count(*) FROM intervals i WHERE i.state = 1 AND NOT EXISTS "
                       "(SELECT 1 FROM ledger_block b WHERE b.interval_id = i.interval_id)",
                       &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_dash_disputes(ctl_db *db, int64_t from_id, int64_t to_id,
                      int (*fn)(void *ctx, int64_t interval_id, int64_t disputed,
                                int64_t flagged),
                      void *ctx)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db,
                       "SELECT interval_id, sum(disputed), sum(peer_flagged) FROM peer_checks "
                       "WHERE interval_id >= ?1 AND interval_id < ?2 GROUP BY interval_id "
                       "HAVING sum(disputed) > 0 OR sum(peer_flagged) > 0 ORDER BY interval_id",
                       &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    sqlite3_bind_int64(st, 1, from_id);
    sqlite3_bind_int64(st, 2, to_id);
    int rc, out = CTL_DB_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((out = fn(ctx, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                      sqlite3_column_int64(st, 2))) != 0)
            break;
    sqlite3_finalize(st);
    if (out)
        return out;
    return step_done(rc);
}

int ctl_dash_data_version(ctl_db *db, int64_t *version)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db, "PRAGMA data_version", &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? CTL_DB_OK : CTL_DB_E_DB;
}

int ctl_dash_intervals(ctl_db *db, int64_t from_id, int64_t to_id,
                       int (*fn)(void *ctx, const ctl_dash_interval *iv), void *ctx)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db,
                       "SELECT i.interval_id, i.start_utc, r.n_orders, r.n_trades, r.has_price, "
                       "r.price_uc_per_kwh, r.matched_wh, r.grid_bought_wh, r.grid_sold_wh, "
                       "i.retail_uc_per_kwh, i.feed_in_uc_per_kwh, "
                       "EXISTS(SELECT 1 FROM ledger_block b WHERE b.interval_id = i.interval_id) "
                       "FROM intervals i JOIN results r ON r.interval_id = i.interval_id "
                       "WHERE i.state = 1 AND i.interval_id >= ?1 AND i.interval_id < ?2 "
                       "ORDER BY i.interval_id",
                       &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    sqlite3_bind_int64(st, 1, from_id);
    sqlite3_bind_int64(st, 2, to_id);
    int rc, frc = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ctl_dash_interval iv = {
            .interval_id = sqlite3_column_int64(st, 0),
            .start_utc = sqlite3_column_int64(st, 1),
            .n_orders = sqlite3_column_int64(st, 2),
            .n_trades = sqlite3_column_int64(st, 3),
            .has_price = sqlite3_column_int(st, 4) != 0,
            .price_uc_per_kwh = sqlite3_column_int64(st, 5),
            .matched_wh = sqlite3_column_int64(st, 6),
            .grid_bought_wh = sqlite3_column_int64(st, 7),
            .grid_sold_wh = sqlite3_column_int64(st, 8),
            .retail_uc_per_kwh = sqlite3_column_int64(st, 9),
            .feed_in_uc_per_kwh = sqlite3_column_int64(st, 10),
            .settled = sqlite3_column_int(st, 11) != 0,
        };
        if ((frc = fn(ctx, &iv)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return frc ? frc : step_done(rc);
}

int ctl_dash_trades_of(ctl_db *db, const char *participant, int64_t from_id, int64_t to_id,
                       int (*fn)(void *ctx, const ctl_dash_trade *t), void *ctx)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db,
                       /* one index range per side (schema version 8); a home never trades
                        * with itself, so the two halves are disjoint */
                       "SELECT interval_id, 1, energy_wh, price_uc_per_kwh, amount_uc, fee_uc, "
                       "seq FROM trades WHERE seller = ?1 AND interval_id >= ?2 AND "
                       "interval_id < ?3 UNION ALL SELECT interval_id, 0, energy_wh, "
                       "price_uc_per_kwh, amount_uc, fee_uc, seq FROM trades WHERE buyer = ?1 "
                       "AND interval_id >= ?2 AND interval_id < ?3 ORDER BY 1, 7",
                       &st) != SQLITE_OK)
        return CTL_DB_E_DB;
    sqlite3_bind_text(st, 1, participant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from_id);
    sqlite3_bind_int64(st, 3, to_id);
    int rc, frc = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ctl_dash_trade t = {
            .interval_id = sqlite3_column_int64(st, 0),
            .sold = sqlite3_column_int(st, 1) != 0,
            .energy_wh = sqlite3_column_int64(st, 2),
            .price_uc_per_kwh = sqlite3_column_int64(st, 3),
            .amount_uc = sqlite3_column_int64(st, 4),
            .fee_uc = sqlite3_column_int64(st, 5),
        };
        if ((frc = fn(ctx, &t)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return frc ? frc : step_done(rc);
}

int ctl_dash_orders_of(ctl_db *db, const char *participant, size_t max,
                       int (*fn)(void *ctx, const ctl_dash_order *o), void *ctx)
{
    sqlite3_stmt *st = NULL, *steps = NULL;
    int rc = CTL_DB_E_DB, frc = 0;
    if (ctl_db_prepare(db,
                       "SELECT order_id, interval_id, side, status, reason, received_ms FROM "
                       "orders WHERE participant = ?1 AND superseded = 0 AND interval_id IN "
                       "(SELECT DISTINCT interval_id FROM orders WHERE participant = ?1 "
                       "ORDER BY interval_id DESC LIMIT ?2) "
                       "ORDER BY interval_id DESC, status DESC, order_id DESC",
                       &st) != SQLITE_OK ||
        ctl_db_prepare(db,
                       "SELECT energy_wh, price_uc_per_kwh FROM order_steps WHERE order_id = ?1 "
                       "ORDER BY step",
                       &steps) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, participant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        ctl_dash_order o;
        memset(&o, 0, sizeof o);
        o.interval_id = sqlite3_column_int64(st, 1);
        o.sell = sqlite3_column_int(st, 2) == 1;
        o.accepted = sqlite3_column_int(st, 3) == 1;
        snprintf(o.reason, sizeof o.reason, "%s", (const char *)sqlite3_column_text(st, 4));
        o.received_ms = sqlite3_column_int64(st, 5);
        sqlite3_reset(steps);
        sqlite3_bind_int64(steps, 1, sqlite3_column_int64(st, 0));
        int s2;
        while ((s2 = sqlite3_step(steps)) == SQLITE_ROW) {
            if (o.n_steps < CTL_DASH_STEPS_MAX) {
                o.energy_wh[o.n_steps] = sqlite3_column_int64(steps, 0);
                o.price_uc_per_kwh[o.n_steps] = sqlite3_column_int64(steps, 1);
            }
            o.n_steps++;
        }
        if (s2 != SQLITE_DONE)
            goto out;
        if ((frc = fn(ctx, &o)) != 0)
            break;
    }
    rc = frc ? frc : step_done(step);
out:
    sqlite3_finalize(st);
    sqlite3_finalize(steps);
    return rc;
}
