/*
 * Internal: the home agent's SQLite file: its outbox of signed orders, the receipts, trades and
 * market results it received, and the little state it keeps between runs (the random seed of
 * its strategy, ZIP's learnt margin).
 *
 * The outbox is what makes an order count exactly once. An order is stored (signed JSON, nonce)
 * before it is first published, one per interval (the interval is the key), and every resend
 * publishes the stored bytes again, so the controller sees one nonce however often it arrives.
 * An order leaves the pending state only when a receipt with its nonce arrives (accepted or
 * rejected) or when the agent gives up on it long after its gate closed.
 *
 * Crash safety: WAL, synchronous=FULL, every write one BEGIN IMMEDIATE transaction. A kill at
 * any point leaves the order either absent (it is formed again) or stored and pending (it is
 * resent on restart).
 *
 * Thread safety: one thread per ags_store. The caller owns it (ags_close).
 */
#ifndef MGX_CTL_AGENT_STORE_H
#define MGX_CTL_AGENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGS_SCHEMA_VERSION 1

enum {
    AGS_OK = 0,
    AGS_E_INVAL = -1,    /* bad argument */
    AGS_E_DB = -2,       /* SQLite failed (ags_errmsg says how) */
    AGS_E_MISMATCH = -3, /* the file belongs to another participant or community */
    AGS_E_EXISTS = -4,   /* an order for that interval is already stored */
    AGS_E_SCHEMA = -5    /* a newer or foreign schema */
};

const char *ags_strerror(int code);

typedef struct ags_store ags_store;

/* Opens or creates the file for (community, participant). *out is owned by the caller. On
 * failure *out is NULL and err (may be NULL) says why. */
int ags_open(const char *path, const char *community, const char *participant, ags_store **out,
             char *err, size_t err_len);
void ags_close(ags_store *s);
const char *ags_errmsg(const ags_store *s);

/* The strategy's seed, drawn once at random when the file is created. */
int ags_seed(ags_store *s, uint64_t *seed);
/* ZIP's state; *found = false before the first save. */
int ags_trader_load(ags_store *s, double *margin, double *last_change, bool *found);
int ags_trader_save(ags_store *s, double margin, double last_change);

/* Order states, as stored. */
#define AGS_PENDING "pending"
#define AGS_ACCEPTED "accepted"
#define AGS_REJECTED "rejected"
#define AGS_UNANSWERED "unanswered"

typedef struct {
    int64_t interval_id;
    char nonce_hex[33];
    const char *json; /* the signed order exactly as published */
    int side;         /* mkt_side */
    int64_t energy_wh, price_uc_per_kwh;
    int64_t created_ms; /* the agent's (possibly accelerated) clock */
    int64_t expiry_s;
    /* filled by the readers */
    char state[16];
    int sends;
    int64_t last_sent_ms; /* real time, 0 before the first send */
} ags_order;

/* Stores a new pending order. AGS_EXISTS when the interval already has one (nothing changes). */
int ags_order_insert(ags_store *s, const ags_order *o);
/* Whether interval_id has an order, in any state. */
int ags_order_exists(ags_store *s, int64_t interval_id, bool *exists);

/* Calls fn for every pending order, oldest interval first. o->json is valid during the call.
 * fn returns 0 to continue. */
typedef int (*ags_order_fn)(void *ctx, const ags_order *o);
int ags_pending(ags_store *s, ags_order_fn fn, void *ctx);
/* Counts orders in a state (AGS_PENDING, ...). */
int ags_count(ags_store *s, const char *state, int64_t *n);

/* The order of interval_id without its JSON (o->json = NULL); *found false when none. */
int ags_order_get(ags_store *s, int64_t interval_id, ags_order *o, bool *found);

/* Records one more publish of an order, at real time now_ms. */
int ags_order_sent(ags_store *s, int64_t interval_id, int64_t now_ms);
/* Marks a pending order unanswered (no receipt long after its gate). */
int ags_order_give_up(ags_store *s, int64_t interval_id);

/* What a receipt did to the outbox. */
enum {
    AGS_RECEIPT_MATCHED = 0,   /* it answered a pending order, which now has its state */
    AGS_RECEIPT_DUPLICATE = 1, /* the order already had its receipt */
    AGS_RECEIPT_UNKNOWN = 2    /* no order here has that interval and nonce */
};

/* Records a receipt (every receipt is logged) and settles the matching order. *effect gets
 * an AGS_RECEIPT_* value. */
int ags_receipt(ags_store *s, int64_t interval_id, const char *nonce_hex, bool accepted,
                const char *reason, const char *detail, const char *json, int64_t now_ms,
                int *effect);

/* Keeps the latest trades / market result message of an interval (a republish replaces it). */
int ags_trades_put(ags_store *s, int64_t interval_id, const char *json, int64_t now_ms);
int ags_result_put(ags_store *s, int64_t interval_id, const char *json, int64_t now_ms);
/* The stored trades message of an interval, copied into buf (cap bytes); *found false when
 * none (or when it does not fit). */
int ags_trades_get(ags_store *s, int64_t interval_id, char *buf, size_t cap, bool *found);

#endif
