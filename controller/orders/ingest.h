/*
 * Internal: order ingestion at bus speed, the controller's order path from a received message
 * to a committed decision and its receipt.
 *
 * Orders come in batches (at most batch_max). ctl_ingest_add takes one message as it arrives and
 * decodes the JSON; every 32 orders (and at flush) the new ones are pre-judged in one read
 * transaction: the participant is looked up in the registry, the admission checks that need no
 * history run (community, topic, registry entry, interval length, clock) and, when those pass
 * and the store holds no accepted order with the same nonce (a resend or a replay, which never
 * need a signature), the Ed25519 check goes to a verify pool, whose workers run while the
 * caller goes on reading the bus. ctl_ingest_flush then takes the signature results back in
 * arrival order and stores the whole batch in ONE BEGIN IMMEDIATE transaction
 * (ctl_store_put_orders), where each order is decided again with its real history exactly as a
 * lone order would be (resend answered with the stored receipt, replay, superseded, interval
 * cleared meanwhile, the precomputed signature), then COMMIT, and only then reports each
 * order's receipt to the caller, in arrival order, for publishing. So one fsync serves the
 * batch, and the signature checks of a batch run in parallel.
 *
 * Guarantees, as for a lone order: a receipt is reported only for a committed decision; a crash
 * before COMMIT loses only orders nobody holds a receipt for (homes resend until receipted); a
 * resend after COMMIT gets the stored receipt again. If the store fails, the batch is rolled
 * back and every order of it gets a receipt saying "internal" (not stored, resend).
 *
 * Each order is judged by the clock reading passed to ctl_ingest_add (its arrival) and the
 * registry entry read then; a participant removed or re-keyed in the registry between an
 * order's arrival and the batch's commit (milliseconds) is decided as if the order had come
 * just before the change.
 *
 * Threading: an ingest belongs to the store's thread (the daemon's loop); its verify workers are
 * internal. Ownership: the caller owns the ingest (ctl_ingest_free) and keeps the store and
 * admit.community alive while it lives. Outcomes passed to the callback are valid only during
 * the call.
 */
#ifndef MGX_CTL_INGEST_H
#define MGX_CTL_INGEST_H

#include "orders/admit.h"
#include "orders/order_msg.h"
#include "db/store.h"

#include <stddef.h>
#include <stdint.h>

#define CTL_INGEST_BATCH_MAX 1024

enum {
    CTL_INGEST_OK = 0,
    CTL_INGEST_E_INVAL = -1,  /* bad argument or settings */
    CTL_INGEST_E_FULL = -2,   /* batch_max orders are waiting: flush first */
    CTL_INGEST_E_NOMEM = -3,
    CTL_INGEST_E_THREAD = -4  /* a verify worker could not be started */
};

const char *ctl_ingest_strerror(int code);

typedef struct ctl_ingest ctl_ingest;

/* What became of one order, reported after its batch's COMMIT (or failure). */
typedef struct {
    const char *topic_participant; /* the participant level of the topic it came on */
    const ctl_order_msg *msg;      /* the order as decoded; only partly filled when !decoded */
    int decoded;                   /* 1 when the message is a well-formed order */
    int reason;                    /* ctl_reason of the decision (CTL_R_INTERNAL: not stored) */
    const char *detail;            /* why, or "" */
    int stored;                    /* 1 committed (or a resend answered from the store); 0 the
                                      store failed or refused it: nothing kept, home resends */
    int duplicate;                 /* a resend of an order on file: receipt is the stored one */
    const char *receipt;           /* the receipt JSON for receipt/<topic_participant> */
} ctl_ingest_outcome;

typedef void (*ctl_ingest_fn)(void *ctx, const ctl_ingest_outcome *o);

typedef struct {
    ctl_admit_params admit;  /* the community's rules (community string not copied) */
    unsigned verify_threads; /* signature workers; 0 verifies in the caller's thread */
    size_t batch_max;        /* orders per transaction, 1..CTL_INGEST_BATCH_MAX */
    ctl_ingest_fn on_outcome; /* called once per order, in arrival order, by ctl_ingest_flush */
    void *ctx;
} ctl_ingest_config;

/* Counters since creation. */
typedef struct {
    uint64_t orders;        /* messages taken */
    uint64_t verified;      /* signatures checked by the pool */
    uint64_t batches;       /* transactions committed */
    uint64_t failed;        /* batches the store refused (rolled back) */
    size_t largest_batch;
} ctl_ingest_stats;

int ctl_ingest_new(const ctl_ingest_config *cfg, ctl_store *store, ctl_ingest **out);
/* Stops the workers. Orders not flushed are dropped without a receipt (their homes resend).
 * NULL is a no-op. */
void ctl_ingest_free(ctl_ingest *g);

/* Takes one message received on order/<topic_participant> at now_ms (simulated Unix ms: the
 * clock the order is judged by). Never writes to the store; reads it (in a read transaction of
 * its own, or in the caller's open transaction). CTL_INGEST_OK, CTL_INGEST_E_FULL (batch_max
 * orders wait: flush first) or CTL_INGEST_E_INVAL. */
int ctl_ingest_add(ctl_ingest *g, const char *topic_participant, const char *payload, size_t len,
                   int64_t now_ms);

/* Orders taken and not yet flushed. */
size_t ctl_ingest_pending(const ctl_ingest *g);

/* Stores the waiting orders in one transaction and reports every order's outcome through
 * on_outcome, in arrival order, after COMMIT. Returns CTL_ST_OK or the store's error (the batch
 * was rolled back; the outcomes say so). Nothing waiting: CTL_ST_OK at once. */
int ctl_ingest_flush(ctl_ingest *g);

void ctl_ingest_get_stats(const ctl_ingest *g, ctl_ingest_stats *out);

#endif
