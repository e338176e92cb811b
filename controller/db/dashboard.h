/*
 * Internal: the reads of the web dashboard (controller/web, docs/dashboard.md): the store's
 * identity, a meter's latest reading, the cleared intervals of a range with their price and
 * volumes, and one participant's trades of a range without the counterparty's name (issue 19:
 * a home sees its own side only). Read-only; the dashboard never writes the database.
 *
 * Thread safety: as the ctl_db handle. Results handed to callbacks are valid during the call.
 */
#ifndef MGX_CTL_DASHBOARD_H
#define MGX_CTL_DASHBOARD_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "mgx/meter.h"

/* The community and interval length the store recorded (ctl_meta). CTL_DB_OK with *found 0
 * when the file has none yet (no controller ran on it), or CTL_DB_E_DB. */
int ctl_dash_identity(ctl_db *db, char *community, size_t cap, int64_t *interval_s, int *found);

/* The latest stored reading of meter_id. CTL_DB_OK with *found 0 or 1, or CTL_DB_E_DB. */
int ctl_dash_latest_reading(ctl_db *db, const char *meter_id, mtr_sample *out, int *found);

/* The greatest cleared interval id. CTL_DB_OK with *found 0 or 1, or CTL_DB_E_DB. */
int ctl_dash_last_cleared(ctl_db *db, int64_t *interval_id, int *found);

/* The greatest interval id with a ledger block (settled). CTL_DB_OK with *found 0 or 1, or
 * CTL_DB_E_DB. */
int ctl_dash_last_settled(ctl_db *db, int64_t *interval_id, int *found);

/* The cleared intervals without a ledger block (not settled yet, or held back). CTL_DB_OK or
 * CTL_DB_E_DB. */
int ctl_dash_unsettled(ctl_db *db, int64_t *n);

/* Each interval from_id <= id < to_id in which settlement held homes for a boundary dispute
 * or the peer check flagged a home (peer_checks, db/peer_trust.h), ascending, with how many
 * homes. CTL_DB_OK, CTL_DB_E_DB, or what fn returned when not 0. */
int ctl_dash_disputes(ctl_db *db, int64_t from_id, int64_t to_id,
                      int (*fn)(void *ctx, int64_t interval_id, int64_t disputed,
                                int64_t flagged),
                      void *ctx);

/* SQLite's PRAGMA data_version of this handle: it changes when another connection commits to
 * the file, so a reader can ask "anything new?" without reading a table (the dashboard's live
 * updates poll it). CTL_DB_OK or CTL_DB_E_DB. */
int ctl_dash_data_version(ctl_db *db, int64_t *version);

typedef struct {
    int64_t interval_id;
    int64_t start_utc;
    int64_t n_orders, n_trades;
    int has_price;                 /* pay-as-clear with local volume */
    int64_t price_uc_per_kwh;      /* 0 without a price */
    int64_t matched_wh;            /* local volume */
    int64_t grid_bought_wh, grid_sold_wh;
    int64_t retail_uc_per_kwh, feed_in_uc_per_kwh;
    int settled;                   /* 1: the interval has a ledger block */
} ctl_dash_interval;

/* Each cleared interval with from_id <= id < to_id, ascending; fn returns 0 to go on.
 * CTL_DB_OK, CTL_DB_E_DB, or what fn returned when not 0. */
int ctl_dash_intervals(ctl_db *db, int64_t from_id, int64_t to_id,
                       int (*fn)(void *ctx, const ctl_dash_interval *iv), void *ctx);

typedef struct {
    int64_t interval_id;
    int sold;                 /* 1: participant sold, 0: bought */
    int64_t energy_wh;
    int64_t price_uc_per_kwh;
    int64_t amount_uc;
    int64_t fee_uc;
} ctl_dash_trade;

/* participant's trades in intervals from_id <= id < to_id, in interval and market order.
 * CTL_DB_OK, CTL_DB_E_DB, or what fn returned when not 0. */
int ctl_dash_trades_of(ctl_db *db, const char *participant, int64_t from_id, int64_t to_id,
                       int (*fn)(void *ctx, const ctl_dash_trade *t), void *ctx);

#define CTL_DASH_STEPS_MAX 16 /* steps shown per order; the rest are counted */

typedef struct {
    int64_t interval_id;
    int sell;               /* 1 sell, 0 buy (mkt_side) */
    int accepted;           /* 1 accepted, 0 refused (ctl_order_status) */
    char reason[64];        /* why refused, "" when accepted */
    int64_t received_ms;
    size_t n_steps;         /* all of the order's steps */
    int64_t energy_wh[CTL_DASH_STEPS_MAX], price_uc_per_kwh[CTL_DASH_STEPS_MAX];
} ctl_dash_order;

/* participant's current (not superseded) orders of its latest max intervals, newest interval
 * first, accepted ones before refused ones of the same interval. CTL_DB_OK, CTL_DB_E_DB, or what
 * fn returned when not 0. */
int ctl_dash_orders_of(ctl_db *db, const char *participant, size_t max,
                       int (*fn)(void *ctx, const ctl_dash_order *o), void *ctx);

#endif
