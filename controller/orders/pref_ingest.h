/*
 * Internal: taking one standing preference (pref_msg.h) from the bus to a committed decision
 * and its receipt, the controller's preference path in timing = ex_post.
 *
 * The same verification as an order's (ingest.h, admit.h), in the same order and with the same
 * reasons: strict decoding; community; topic; resend or replay of a nonce; registry entry and
 * role; interval length; the message's own expiry; valid_from must not have started and its
 * gate must be open (a preference never reaches back to an interval already running, let alone
 * metered); not further ahead than the community accepts; an older preference for the same
 * valid_from than one on file is superseded; the Ed25519 signature last. The decision and the
 * preference are committed in one BEGIN IMMEDIATE transaction, and the receipt is handed back
 * only after COMMIT; a database failure answers "internal" (nothing stored, the home resends).
 *
 * One preference per call, its signature checked in the caller's thread: a home sends one when
 * its preference changes, not every interval, so there is no burst to batch.
 *
 * Thread safety: the store's thread. Pure but for the store.
 */
#ifndef MGX_CTL_PREF_INGEST_H
#define MGX_CTL_PREF_INGEST_H

#include "db/store.h"
#include "orders/admit.h"
#include "orders/pref_msg.h"

#include <stdint.h>

/* Counters since the caller zeroed them. */
typedef struct {
    uint64_t received;
    uint64_t accepted;           /* ok or replaced */
    uint64_t duplicates;         /* resends answered with the stored receipt */
    uint64_t rejected[CTL_R_COUNT]; /* by reason (CTL_R_INTERNAL: not stored) */
} ctl_pref_stats;

/* What became of one preference. */
typedef struct {
    ctl_pref_msg msg;   /* as decoded; only partly filled when !decoded */
    int decoded;
    int reason;         /* ctl_reason */
    char detail[CTL_DETAIL_MAX];
    int stored;         /* committed, or a resend answered from the store */
    int duplicate;
    char receipt[CTL_RECEIPT_MAX]; /* the receipt JSON for receipt/<topic participant>; "" if
                                      none could be made */
} ctl_pref_outcome;

/* Judges, stores and answers the preference payload[0..len) received on
 * pref/<topic_participant> at now_ms (simulated Unix ms). Fills *out; returns CTL_ST_OK, or the
 * store's error (then out->reason is CTL_R_INTERNAL and nothing was stored). */
int ctl_pref_ingest(ctl_store *store, const ctl_admit_params *p, const char *topic_participant,
                    const char *payload, size_t len, int64_t now_ms, ctl_pref_stats *stats,
                    ctl_pref_outcome *out);

#endif
