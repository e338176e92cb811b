/*
 * Order admission: the pure rules that decide whether the controller accepts a decoded order,
 * and the reason when it does not.
 *
 * The caller supplies everything that is state: the clock (now_ms), the community's settings,
 * the participant's registry entry (or none) and what the store knows about the order's nonce
 * and about the participant's current order for the interval. No I/O, no clock, no globals.
 *
 * Checks run in this order, and the first failure decides the reason:
 *   1. wrong_community        order.community != the controller's community
 *   2. topic_mismatch         the participant in the topic != the one in the order
 *   3. duplicate / replay     the nonce was seen: the same order again (identical bytes and
 *                             signature) is a duplicate, answered with the original receipt
 *                             whenever it comes, so a home resending after gate closure still
 *                             learns that its order was taken; another order with it is a replay
 *   4. unknown_participant    no registry entry
 *   5. not_allowed            the entry's role is not `home`
 *   6. wrong_interval_length  order.interval_s != the community's interval length
 *   7. expired                now >= order.expiry_s
 *   8. stale_interval         the interval has started (now >= start)
 *   9. gate_closed            now >= start - gate_closure_s
 *  10. far_future_interval    interval_id > current interval + max_ahead_intervals
 *  11. superseded             an accepted order with created_ms >= this one's is on file
 *  12. bad_signature          Ed25519 over the canonical encoding with the registry's key
 * then accept (ok) or, if an order for the interval is on file, replace (replaced).
 *
 * Why the signature comes last: it is the only expensive step (about 60 us against well under
 * 1 us for all the others together), so a flood of junk, late or replayed orders costs almost
 * nothing; and none of the earlier checks changes any state or tells the sender anything it
 * did not already know, so nothing is gained by checking an unauthenticated order's signature
 * first. Nothing is stored for an order until its signature has verified: in particular its
 * nonce is not recorded, so a forger cannot burn a participant's nonces.
 *
 * Concurrency note for the daemon: run ctl_admit_check when the order arrives (to reject early),
 * verify the signature (ctl_order_verify or verify_pool.h), then inside the BEGIN IMMEDIATE
 * transaction that stores the order re-read the history, call ctl_admit_check again with it, and
 * finish with ctl_admit_finish: two orders of one participant may be in flight at once.
 */
#ifndef MGX_CTL_ADMIT_H
#define MGX_CTL_ADMIT_H

#include "orders/order_msg.h"
#include "db/registry.h"
#include "db/store.h"

#include <stdint.h>

typedef struct {
    const char *community;       /* the controller's community id */
    uint32_t interval_s;         /* interval length, e.g. 900 */
    int64_t gate_closure_s;      /* gate closes this long before an interval starts (>= 0) */
    int64_t max_ahead_intervals; /* latest admissible interval = current + this (>= 1) */
} ctl_admit_params;

typedef enum {
    CTL_NONCE_NEW = 0,  /* the participant never used this nonce */
    CTL_NONCE_SAME = 1, /* used, by an order with identical signed bytes and signature */
    CTL_NONCE_OTHER = 2 /* used, by a different order */
} ctl_nonce_seen;

/* What the store knows; filled by the caller from its tables. */
typedef struct {
    ctl_nonce_seen nonce;
    int has_current;            /* an accepted order of this participant for this interval */
    int64_t current_created_ms; /* its created_ms, when has_current */
} ctl_admit_history;

typedef enum {
    CTL_ADMIT_ACCEPT = 0,    /* store it as the participant's order for the interval */
    CTL_ADMIT_REPLACE = 1,   /* store it and mark the current one superseded */
    CTL_ADMIT_DUPLICATE = 2, /* already handled: publish the original receipt again */
    CTL_ADMIT_REJECT = 3     /* reason/detail say why; store nothing but the receipt */
} ctl_admit_verdict;

typedef struct {
    ctl_admit_verdict verdict;
    int reason;                  /* ctl_reason: CTL_R_OK/CTL_R_REPLACED for acceptances */
    char detail[CTL_DETAIL_MAX]; /* human-readable specifics, "" when none */
} ctl_admit_result;

/* Checks 1-11. On return r->verdict is REJECT or DUPLICATE (final) or ACCEPT/REPLACE, which is
 * provisional until the signature has been verified (ctl_admit_finish). topic_participant may be
 * NULL to skip check 2; entry is NULL when the registry has no such participant. Returns
 * r->verdict. */
ctl_admit_verdict ctl_admit_check(const ctl_admit_params *p, int64_t now_ms,
                                  const char *topic_participant, const ctl_order_msg *m,
                                  const ctl_participant *entry, const ctl_admit_history *h,
                                  ctl_admit_result *r);

/* Applies check 12's outcome (sig_rc: what ctl_order_verify returned) to a provisional
 * verdict. Returns the final r->verdict. */
ctl_admit_verdict ctl_admit_finish(ctl_admit_result *r, int sig_rc);

/* Checks 1-12 in one call, verifying the signature in the calling thread. */
ctl_admit_verdict ctl_admit(const ctl_admit_params *p, int64_t now_ms,
                            const char *topic_participant, const ctl_order_msg *m,
                            const ctl_participant *entry, const ctl_admit_history *h,
                            ctl_admit_result *r);

/* Glue for a ctl_decide_fn (db/store.h), which every caller of the store writes the same way. */

/* The store's history of an order as the rules take it: a nonce the store has seen (it reports
 * only replays, 2) is CTL_NONCE_OTHER. */
ctl_admit_history ctl_admit_history_of(const ctl_order_history *h);

/* Writes a verdict into the order the store is about to record: accepted for ACCEPT and
 * REPLACE, rejected otherwise, with r's reason name. */
void ctl_admit_record(ctl_order_rec *o, ctl_admit_verdict v, const ctl_admit_result *r);

#endif
