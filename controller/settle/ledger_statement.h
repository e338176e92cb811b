/*
 * Internal: a participant's settlement statement out of the ledger (`mgx ledger statement`):
 * the settled positions of one participant, for one interval or the intervals starting in a
 * calendar month (UTC), each with the money columns and its net, in log order. The caller
 * prints them (CSV, docs/ledger.md).
 */
#ifndef MGX_CTL_LEDGER_STATEMENT_H
#define MGX_CTL_LEDGER_STATEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#include "mgx/ledger_record.h"
#include "solana/settle_solana.h"

/* The columns of a row: import_wh, export_wh, contracted_bought_wh, contracted_sold_wh,
 * local_bought_wh, local_sold_wh, grid_bought_wh, grid_sold_wh, local_paid_uc, fee_paid_uc,
 * local_received_uc, grid_paid_uc, grid_received_uc, net_uc (received minus paid). */
#define CTL_STATEMENT_COLS 14

typedef struct {
    int64_t interval_id;
    int64_t start_utc;            /* Unix seconds of the interval's start */
    const stl_position *position; /* valid during the callback */
    int64_t v[CTL_STATEMENT_COLS];
    uint8_t timing;               /* the block's stl_timing (ex_ante for a ledger v1 block) */
    stl_tariffs tariffs;          /* the block's tariffs */
} ctl_statement_row;

/* What the row's participant would have had with the grid alone, in the sign of the row's
 * net_uc (received minus paid): its export at the block's feed-in tariff minus its import at
 * the retail tariff, each rounded down by the market's money rule (mkt_amount_uc). 0, or -1
 * when an amount does not fit. */
int ctl_statement_grid_only_net_uc(const ctl_statement_row *row, int64_t *net_uc);

/* Which intervals: the one interval_id when by_interval, else those starting in
 * [from_utc, to_utc). */
typedef struct {
    bool by_interval;
    int64_t interval_id;
    int64_t from_utc, to_utc;
} ctl_statement_range;

/* The range of the calendar month y-m (m 1..12) in UTC. */
void ctl_statement_month(int64_t y, int64_t m, ctl_statement_range *r);

/* The ledger numbers participants as the market did; a coordinator knows them by name. A
 * number is taken as it is (a ledger without the controller's tables, e.g. one settled from
 * files); a name is looked up in the controller's market_ids table of the same database.
 * 0, or -1 with a bare message in err. */
int ctl_ledger_participant_number(ctl_db *db, const char *name, int64_t *out, char *err,
                                  size_t errlen);

/* Calls fn for each settled position of participant in range, in log order; fn returns 0 to
 * go on. The number of rows in *rows. 0; -1 with err (a database error, or a damaged record:
 * run `mgx ledger verify`); or what fn returned when not 0. */
int ctl_ledger_statement(ctl_db *db, int64_t participant, const ctl_statement_range *range,
                         int (*fn)(void *ctx, const ctl_statement_row *row), void *ctx, int *rows,
                         char *err, size_t errlen);

/* The log index of participant's position in the block of interval_id: 0 with *found 0 or 1,
 * or -1 on a database error. */
int ctl_ledger_position_index(ctl_db *db, int64_t participant, int64_t interval_id,
                              int64_t *log_index, int *found);

/* A billing period's nets (netted Solana settlement, solana/settle_solana.h): each
 * participant's local energy (sold - bought) and money (received - paid, fees included) summed
 * over the positions of the blocks of intervals [first, last], ascending by participant, in a
 * malloc'd array (*out, *n; the caller frees; n 0 when no block is in the range), and the log
 * root of the range's last block. 0, or -1 on a database or decode error. */
int ctl_ledger_period_nets(ctl_db *db, int64_t first, int64_t last, ctl_sol_net **out, size_t *n,
                           uint8_t root[32]);

#endif
