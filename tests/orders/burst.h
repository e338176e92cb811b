/*
 * A burst of order messages from many homes, with resends, replays, replacements, stale
 * orders, bad signatures, junk and strangers mixed in, for the tests of batched order intake
 * (test_ingest, test_ingest_burst). Each home follows one of ten scripts (home index mod 10);
 * every message carries the reason the per-order rules give it, worked out by hand from the
 * script (see burst.c), and burst_oracle gives each message's exact receipt the way the daemon
 * decided orders before batching: alone, one transaction each, in arrival order.
 */
#ifndef MGX_TESTS_BURST_H
#define MGX_TESTS_BURST_H

#include "orders/admit.h"
#include "orders/keys.h"
#include "orders/order_msg.h"
#include "db/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;

#define BURST_COMMUNITY "burstville"

typedef struct {
    char topic[CTL_ID_MAX + 1]; /* the participant level of order/<topic> */
    char body[CTL_ORDER_JSON_MAX];
    size_t len;
    size_t home;                /* the home that sends it */
    const char *expect;         /* the reason name the per-order rules give it */
    int dup_of;                 /* -1, or the burst index of the message whose stored receipt
                                   this resend gets back */
} burst_msg;

typedef struct {
    size_t n_homes;
    char (*ids)[24];
    ctl_secret_key **keys;
    int *registered;
    burst_msg *msgs; /* in burst order: round robin over the homes, each home's script in order */
    size_t n;
} burst;

/* Makes the burst for n_homes homes (keys from fixed seeds): orders for interval `target` made
 * at created_ms, and a stale one for interval `stale` (already started at the test's clock). */
void burst_make(burst *b, size_t n_homes, int64_t target, int64_t stale, int64_t created_ms);
void burst_free(burst *b);

/* Adds the registered homes (all but script 6) to the registry in db. */
void burst_register(ctl_db *db, const burst *b);

/* The admission settings the burst is made for. */
ctl_admit_params burst_admit_params(void);

/* The reference: message i alone through ctl_store_put_order, deciding with ctl_admit inside
 * its own transaction at now_ms, exactly as the daemon did per order before batching. Writes its
 * receipt JSON to receipt (CTL_RECEIPT_MAX bytes). */
void burst_oracle_one(ctl_store *s, const burst_msg *msg, int64_t now_ms, char *receipt);

#endif
