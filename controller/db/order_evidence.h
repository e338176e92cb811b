/*
 * Internal: the signed orders of an interval as evidence (and, for ex_post intervals, the
 * signed standing preferences and the stored readings), for someone who re-checks the
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
#include "mgx/meter.h"

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

/* One accepted standing preference of a participant (db/prefs.h): signed[0..len) as stored
 * (canonical encoding then the 64-byte signature), its row number (a tie on created_ms goes to
 * the one stored last) and the participant's registered key (NULL when none). Return non-zero
 * to stop. */
typedef int (*ctl_pref_evidence_fn)(int64_t pref_id, const uint8_t *signed_msg, size_t len,
                                    const uint8_t *pk, void *ctx);

/* Calls fn for every stored preference of participant, by row, whatever its valid_from
 * column says: the reader decodes, verifies and picks the one that counts from the signed
 * fields itself. 0, fn's value or -1. */
int ctl_pref_evidence(ctl_db *db, const char *participant, ctl_pref_evidence_fn fn, void *ctx);

/* The stored readings of meter_id with from_ms <= ts_ms < to_ms, ascending, as
 * ctl_store_readings gives them, on a bare (read-only) handle. fn gets each reading; non-zero
 * stops. 0, fn's value or -1. The readings table keeps the values only: a signed reading's
 * signature is checked at intake and not stored (reading_tiers keeps the tier found). */
int ctl_reading_evidence(ctl_db *db, const char *meter_id, int64_t from_ms, int64_t to_ms,
                         int (*fn)(const mtr_sample *r, void *ctx), void *ctx);

/* The participant with market number market_id (market_ids) and its meter in the registry:
 * 0 with name and meter (meter "" when it has none), 1 when the number is unknown, -1 SQLite. */
int ctl_market_member(ctl_db *db, uint64_t market_id, char *name, size_t name_cap, char *meter,
                      size_t meter_cap);

#endif
