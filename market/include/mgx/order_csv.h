/*
 * mgx market: the orders CSV format (`participant,side,energy_wh,price_uc_per_kwh`).
 *
 * A pure decoder from a memory buffer to mkt_order values: the shell reads the file, this turns
 * its bytes into orders or into an error naming line and column. Several rows of one participant
 * make its curve. Participant names are mapped to ids in byte-wise sorted order, so the ids and
 * therefore every result are the same however the rows are shuffled.
 */
#ifndef MGX_ORDER_CSV_H
#define MGX_ORDER_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/market.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MKT_CSV_NAME_MAX 64 /* bytes in a participant name */

typedef struct {
    size_t line;   /* 1-based; 0 when the error is about the whole input */
    size_t column; /* 1-based field number; 0 when not about one field */
    char message[160];
} mkt_csv_error;

/* Parsed orders plus the names and source lines behind them. Opaque; owned by the caller. */
typedef struct mkt_order_set mkt_order_set;

/* Parses len bytes of CSV (no terminating NUL needed). At most max_orders participants and
 * max_rows data rows are accepted (bounds against hostile input). On success stores a new set
 * in *out and returns MKT_OK; on failure returns a MKT_E_* code (MKT_E_INVAL for syntax) and
 * fills *err. */
int mkt_csv_parse(const char *buf, size_t len, size_t max_orders, size_t max_rows,
                  mkt_order_set **out, mkt_csv_error *err);

void mkt_order_set_free(mkt_order_set *set);

/* Orders ascending by participant id; ids are 0 .. count-1. */
const mkt_order *mkt_order_set_orders(const mkt_order_set *set, size_t *count);
/* The participant's name; NULL if the id is out of range. */
const char *mkt_order_set_name(const mkt_order_set *set, uint64_t participant);
/* The CSV line a step came from (step_index < 0: the participant's first row). */
size_t mkt_order_set_line(const mkt_order_set *set, size_t order_index, int step_index);

#ifdef __cplusplus
}
#endif

#endif
