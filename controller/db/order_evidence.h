/*
 * Internal: the signed orders of an interval as evidence, for someone who re-checks the
 * clearing instead of trusting the store's own decisions (a witness: controller/witness/). It
 * hands out every order the store accepted for the interval (superseded or not) with the
 * bytes the home signed and the key the registry holds for that home, so the reader decodes,
 * verifies and picks the current order per home itself.
 */
#ifndef MGX_CTL_ORDER_EVIDENCE_H
#define MGX_CTL_ORDER_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* One accepted order: the participant id, its market id (the number trades and the ledger
 * use), signed[0..len) as stored (canonical encoding then the 64-byte signature) and the
 * participant's registered Ed25519 key (NULL when the registry has none). Return non-zero to
 * stop. */
typedef int (*ctl_evidence_fn)(const char *participant, uint64_t market_id,
                               const uint8_t *signed_msg, size_t len, const uint8_t *pk,
                               void *ctx);

/* Calls fn for every accepted order of interval_id, in market id order. Returns 0, fn's
 * non-zero value, or -1 when SQLite fails. */
int ctl_order_evidence(ctl_db *db, int64_t interval_id, ctl_evidence_fn fn, void *ctx);

#endif
