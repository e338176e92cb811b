/*
 * Internal: the controller's SQLite store, the one place its durable state lives: meter
 * readings, orders with their receipts, intervals and their clearing, results, trades and each
 * participant's outcome.
 *
 * Crash safety is the point of this module. The database runs in WAL mode with
 * synchronous=FULL, and every write is one BEGIN IMMEDIATE transaction, so a kill at any
 * moment leaves either all of a step or none of it:
 *  - an order and its receipt are committed together (with the other orders of its batch,
 *    ctl_store_put_orders), before the receipt is published, so an order a home holds a
 *    receipt for is never lost; (participant, nonce) is unique, so a resent order gets its
 *    first receipt back and never counts twice;
 *  - clearing an interval (daemon/clearing.c) reads its accepted orders, runs mkt_clear and
 *    writes the result, trades and state=cleared through this module in one transaction; the
 *    state row makes it happen exactly once;
 *  - publishing happens after the commit and is marked done afterwards, so a restart
 *    publishes again whatever was not marked (the messages are idempotent: a retained result,
 *    trades keyed by interval).
 *
 * The file is the community database (db.h): its tables, every module's, are declared in
 * db/schema.c and versioned with PRAGMA user_version; the store opens it through ctl_db_open
 * and records its identity (community, interval length) in ctl_meta.
 *
 * Thread safety: a ctl_store is used by one thread at a time. Ownership: the caller owns the
 * ctl_store (ctl_store_free); strings passed in are copied; results handed to callbacks are
 * valid only during the call.
 */
#ifndef MGX_CTL_STORE_H
#define MGX_CTL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "mgx/market.h"
#include "mgx/topology.h"
#include "mgx/meter.h"

#define CTL_STORE_SCHEMA_VERSION 1
#define CTL_PARTICIPANT_MAX 65  /* participant ids (1..64 bytes) incl. NUL */
#define CTL_NONCE_BYTES 16      /* an order's random nonce */
#define CTL_REASON_MAX 64       /* reason codes incl. NUL */
#define CTL_RECEIPT_MAX 1024    /* a receipt's JSON body incl. NUL */
#define CTL_SIGNED_MAX 4096     /* the signed order bytes as received */

enum {
    CTL_ST_OK = 0,
    CTL_ST_E_INVAL = -1,    /* bad argument, bound exceeded */
    CTL_ST_E_DB = -2,       /* SQLite failed (message in ctl_store_errmsg) */
    CTL_ST_E_SCHEMA = -3,   /* the file has a newer or foreign schema */
    CTL_ST_E_MISMATCH = -4, /* the file was made for another community or interval length */
    CTL_ST_E_MARKET = -5,   /* mkt_clear rejected the stored book */
    CTL_ST_E_NOMEM = -6,
    CTL_ST_E_FULL = -7      /* disk full */
};

const char *ctl_store_strerror(int code);

typedef struct ctl_store ctl_store;

/* What the store is for. A new file records these; an existing one must match them. */
typedef struct {
    const char *community;
    int64_t interval_s;
    int64_t first_interval; /* recorded on creation: the first interval this store clears */
} ctl_store_identity;

/* Opens (creating if needed) the database at path. On success *out owns the connection. On
 * failure returns a code and, if err is not NULL, a message naming the file. */
int ctl_store_open(const char *path, const ctl_store_identity *id, ctl_store **out, char *err,
                   size_t err_len);
void ctl_store_free(ctl_store *s);
/* The community database handle, for modules that keep their tables in the same file (the
 * participant registry, settlement, the Solana outbox). Owned by the store; use it from the
 * store's thread only. */
ctl_db *ctl_store_db(ctl_store *s);
/* The last SQLite error message of this connection (never NULL). */
const char *ctl_store_errmsg(const ctl_store *s);
/* The first interval recorded when the store was created. */
int64_t ctl_store_first_interval(const ctl_store *s);

/* ---- readings ---- */

/* Stores a reading as received (bad quality too: it is flagged, not dropped). A second reading
 * of the same meter with the same timestamp is not stored (*inserted = 0): with the same import
 * and export counters it is a resend and changes nothing; with others it is a conflict and the
 * stored reading gets MTR_Q_CONFLICT, so settlement holds its interval (neither is trusted). */
int ctl_store_put_reading(ctl_store *s, const mtr_sample *r, int64_t received_ms, int *inserted);

/* Stores n readings (at most CTL_STORE_READINGS_MAX) in one transaction, as
 * ctl_store_put_reading does each: a daemon receiving hundreds a second pays one commit per
 * batch, not per reading. All or none are stored; *inserted counts the new ones. */
#define CTL_STORE_READINGS_MAX 4096
int ctl_store_put_readings(ctl_store *s, const mtr_sample *r, size_t n, int64_t received_ms,
                           size_t *inserted);

/* Calls fn for each reading of meter_id with from_ms <= ts_ms < to_ms, ascending by time. */
typedef int (*ctl_reading_fn)(const mtr_sample *r, void *ctx);
int ctl_store_readings(ctl_store *s, const char *meter_id, int64_t from_ms, int64_t to_ms,
                       ctl_reading_fn fn, void *ctx);

/* ---- orders and receipts ---- */

typedef enum { CTL_ORDER_REJECTED = 0, CTL_ORDER_ACCEPTED = 1 } ctl_order_status;

/* An order as the controller decided it. Accepted orders are unique per (participant, nonce);
 * rejected ones are kept as evidence but hold no nonce, so a forger cannot burn a nonce. */
typedef struct {
    char participant[CTL_PARTICIPANT_MAX];
    uint8_t nonce[CTL_NONCE_BYTES];
    int64_t interval_id;
    int64_t created_ms; /* the home's time of making it: a later order replaces an earlier one */
    mkt_side side;
    uint32_t n_steps;
    mkt_step steps[MKT_MAX_STEPS];
    const uint8_t *signed_msg; /* canonical encoding followed by the signature, as evidence and */
    size_t signed_len;         /* to tell a resend (same bytes) from a replay; <= CTL_SIGNED_MAX */
    int64_t received_ms;
    ctl_order_status status;
    char reason[CTL_REASON_MAX]; /* reason name: "ok", "replaced", "gate_closed", ... */
} ctl_order_rec;

/* What the store knows about an order when it is about to be stored. */
typedef struct {
    int nonce_seen;             /* 0 new, 2 used by a different accepted order (a replay) */
    int has_current;            /* the participant has an accepted order for the interval */
    int64_t current_created_ms; /* its created_ms */
} ctl_order_history;

/* Decides an order inside the storing transaction (the admission rules): sets o->status and
 * o->reason from the history. Returns 0, or non-zero to abort (nothing is stored). */
typedef int (*ctl_decide_fn)(ctl_order_rec *o, const ctl_order_history *h, void *ctx);

/* Builds the receipt body (text, NUL-terminated, < cap bytes) for the final decision of o.
 * Returns 0, or non-zero to abort the transaction. */
typedef int (*ctl_receipt_fn)(const ctl_order_rec *o, char *buf, size_t cap, void *ctx);

/* Records an order and its receipt in one BEGIN IMMEDIATE transaction.
 * - If the participant has an accepted order with the same nonce and the same signed bytes,
 *   nothing is written; *duplicate = 1 and receipt gets the stored receipt: a resend is
 *   answered exactly as the first time, even after its gate has closed.
 * - Otherwise decide (may be NULL: keep o's status) is called with the history; then an
 *   acceptance is turned into a rejection when the interval has been cleared meanwhile, or is
 *   before the store's first interval ("gate_closed"), or an accepted order made no earlier is
 *   on file ("superseded"); a nonce reused by another order is rejected as "replay".
 * - An accepted order supersedes the participant's current order for that interval.
 * make_receipt is called once with the final decision; its text is stored and copied into
 * receipt (cap bytes). ctx goes to both callbacks. */
int ctl_store_put_order(ctl_store *s, ctl_order_rec *o, ctl_decide_fn decide,
                        ctl_receipt_fn make_receipt, void *ctx, char *receipt, size_t cap,
                        int *duplicate);

/* One order of a batch (ctl_store_put_orders). rec and ctx are the caller's input; the rest is
 * the outcome. */
typedef struct {
    ctl_order_rec rec;             /* in: the order; out: status and reason as decided */
    void *ctx;                     /* this order's ctx for decide and make_receipt */
    int result;                    /* out: CTL_ST_OK stored (or a resend answered), CTL_ST_E_INVAL
                                      refused by the bounds or a callback (nothing stored for it),
                                      or the batch's error */
    int duplicate;                 /* out: as ctl_store_put_order's *duplicate */
    char receipt[CTL_RECEIPT_MAX]; /* out: the receipt to publish, when result is CTL_ST_OK */
} ctl_order_item;

#define CTL_STORE_ORDERS_MAX 4096

/* Group commit: records n orders (at most CTL_STORE_ORDERS_MAX) in ONE BEGIN IMMEDIATE
 * transaction, deciding each exactly as ctl_store_put_order would if they came one after the
 * other in array order (an order sees every earlier order of the batch: a resend of an order
 * earlier in the batch is a duplicate, a reused nonce a replay, an older order superseded).
 * decide may be NULL; each call gets its item's ctx. An order refused by the bounds or by a
 * callback gets result CTL_ST_E_INVAL and leaves no trace; the others go on. If the database
 * fails, the whole batch is rolled back, every result is the error and it is returned: nothing
 * of the batch is stored, so no receipt of it may be published. The caller publishes receipts
 * only after this returns CTL_ST_OK, i.e. after COMMIT. */
int ctl_store_put_orders(ctl_store *s, ctl_order_item *items, size_t n, ctl_decide_fn decide,
                         ctl_receipt_fn make_receipt);

/* The receipt of the participant's accepted order with this nonce (*found = 0 if none). */
int ctl_store_receipt(ctl_store *s, const char *participant,
                      const uint8_t nonce[CTL_NONCE_BYTES], char *receipt, size_t cap,
                      int *found);

/* Calls fn for each order counting in interval_id (accepted, not superseded) in participant
 * order. The order's participant field is the market number of its participant. */
typedef int (*ctl_order_fn)(const ctl_order_rec *o, uint64_t market_id, void *ctx);
int ctl_store_interval_orders(ctl_store *s, int64_t interval_id, ctl_order_fn fn, void *ctx);

/* The participant id behind a market number (as used in trades), or CTL_ST_E_INVAL. */
int ctl_store_participant_name(ctl_store *s, uint64_t market_id, char *name, size_t cap);
/* The market number of a participant, given one (in its own transaction) if it has none yet:
 * settlement numbers homes that metered but never ordered the same way. */
int ctl_store_market_id(ctl_store *s, const char *participant, uint64_t *market_id);

/* ---- intervals, clearing, results ---- */

typedef enum { CTL_STATE_OPEN = 0, CTL_STATE_CLEARED = 1 } ctl_interval_state;

/* The greatest cleared interval id, or INT64_MIN when none is. */
int ctl_store_last_cleared(ctl_store *s, int64_t *id);

/* Clearing an interval is daemon/clearing.c's (ctl_clear_interval): it reads the orders with
 * ctl_store_interval_orders and records the outcome with these, inside one transaction. */

/* BEGIN IMMEDIATE on the store's connection; ctl_store_end commits when rc is CTL_ST_OK (and
 * returns COMMIT's outcome) or rolls back and returns rc. */
int ctl_store_begin(ctl_store *s);
int ctl_store_end(ctl_store *s, int rc);

/* *cleared = 1 if interval_id is recorded cleared. */
int ctl_store_interval_cleared(ctl_store *s, int64_t interval_id, int *cleared);

/* A clearing to record: the interval (state=cleared with the parameters, cleared_ms and error),
 * its result, trades (seq = array index; names from the market numbers) and each participant's
 * outcome. Pointers are the caller's, read during the call only. */
typedef struct {
    int64_t interval_id;
    int64_t start_utc;
    const mkt_params *params;
    int64_t cleared_ms;
    const char *error; /* NULL or "" unless the book was rejected */
    size_t n_orders;
    const mkt_summary *summary;
    const mkt_trade *trades;
    size_t n_trades;
    const mkt_participant_result *outcomes;
    size_t n_outcomes;
    /* A grid-aware clearing (daemon/clearing.c with [topology]); NULL / 0 for the copper
     * plate. congestion: per trade (n_trades entries), the rent its buyer owes on top of
     * amount_uc + fee_uc; nodes and node_names: one per node of the topology. */
    const int64_t *congestion;
    const mkt_node_result *nodes;
    const char *const *node_names;
    size_t n_nodes;
} ctl_clearing_rec;

/* Writes r inside the caller's transaction (ctl_store_begin): nothing is committed here. */
int ctl_store_put_clearing(ctl_store *s, const ctl_clearing_rec *r);

/* A cleared interval as stored. */
typedef struct {
    int64_t interval_id;
    int64_t start_utc;
    int64_t length_s;
    mkt_params params;
    mkt_summary summary;
    size_t n_orders;
    size_t n_trades;
    int64_t cleared_ms;
    int published;
    char error[CTL_REASON_MAX]; /* "" unless the book was rejected */
} ctl_interval_result;

/* Reads a cleared interval. CTL_ST_OK with *found 0 or 1. */
int ctl_store_result(ctl_store *s, int64_t interval_id, ctl_interval_result *r, int *found);

typedef struct {
    char seller[CTL_PARTICIPANT_MAX];
    char buyer[CTL_PARTICIPANT_MAX];
    mkt_trade t; /* seller/buyer are market numbers */
    int64_t congestion_uc; /* the buyer's congestion rent on it, 0 on the copper plate */
} ctl_trade_row;

/* Trades of a cleared interval in the market library's canonical order. */
typedef int (*ctl_trade_fn)(const ctl_trade_row *t, void *ctx);
int ctl_store_trades(ctl_store *s, int64_t interval_id, ctl_trade_fn fn, void *ctx);

/* Each participant's outcome in a cleared interval, ascending by market number. */
typedef int (*ctl_outcome_fn)(const char *participant, const mkt_participant_result *p,
                              void *ctx);
int ctl_store_outcomes(ctl_store *s, int64_t interval_id, ctl_outcome_fn fn, void *ctx);

/* One node of a grid-aware clearing's topology, as grid_nodes stores it (MKT_BIND_* in
 * binding; zone: the index of the node at the top of its zone). */
typedef struct {
    uint32_t node;
    char name[CTL_PARTICIPANT_MAX]; /* a node name is an id, as long as a participant's */
    int64_t flow_wh;
    int64_t price_uc_per_kwh;
    uint32_t zone;
    int binding;
} ctl_grid_node_row;

/* The nodes of a cleared interval, in node order (none: cleared without a topology). */
typedef int (*ctl_grid_node_fn)(const ctl_grid_node_row *n, void *ctx);
int ctl_store_grid_nodes(ctl_store *s, int64_t interval_id, ctl_grid_node_fn fn, void *ctx);

/* Cleared intervals whose publication is not yet marked done, ascending; at most max ids. */
int ctl_store_unpublished(ctl_store *s, int64_t *ids, size_t max, size_t *n);
int ctl_store_mark_published(ctl_store *s, int64_t interval_id);

#endif
