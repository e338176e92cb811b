/*
 * Per-meter public keys and the attestation tier of each stored reading (issue 12, signed
 * readings). Two tables of the community database (schema.c, version 2): meter_keys (the
 * gateway's Ed25519 device key, kind 1; a certified meter's OCMF key, kind 2) and
 * reading_tiers (what the controller verified for each reading it stored).
 *
 * Every write is one BEGIN IMMEDIATE transaction on the caller's handle; lookups read the
 * table each time, so a key registered while the controller runs counts from the next reading.
 *
 * Thread safety: as the ctl_db handle (one thread at a time per handle).
 */
#ifndef MGX_CTL_METER_KEYS_H
#define MGX_CTL_METER_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "mgx/meter.h"

typedef enum {
    CTL_MKEY_GATEWAY = 1,  /* Ed25519, 32 bytes: signs what `mgx meter` publishes */
    CTL_MKEY_CERTIFIED = 2 /* the meter's own OCMF key, DER SubjectPublicKeyInfo */
} ctl_mkey_kind;

#define CTL_MKEY_MAX 512 /* longest key blob stored */

/* Registers (or replaces) the key of kind for meter_id. CTL_DB_OK, CTL_DB_E_INVAL (bad meter
 * id, kind or length: 32 bytes for a gateway key, 32..CTL_MKEY_MAX for a certified one) or
 * CTL_DB_E_DB. */
int ctl_meter_key_set(ctl_db *db, const char *meter_id, int kind, const uint8_t *key, size_t len,
                      int64_t now_s);
/* Copies the key into out (cap bytes) and its length into *len. CTL_DB_OK, 1 when the meter has
 * no key of that kind, CTL_DB_E_INVAL (cap too small) or CTL_DB_E_DB. */
int ctl_meter_key_get(ctl_db *db, const char *meter_id, int kind, uint8_t *out, size_t cap,
                      size_t *len);
/* Removes the key of kind (absent is not an error). CTL_DB_OK or CTL_DB_E_DB. */
int ctl_meter_key_remove(ctl_db *db, const char *meter_id, int kind);

/* Records the tiers of n readings (the tier of r[i] is tiers[i]) in one transaction. A reading
 * that already has a tier keeps it, as the readings table keeps the first reading of a meter
 * and time stamp: call this after storing the readings, in the same order. */
int ctl_reading_tiers_put(ctl_db *db, const mtr_sample *r, const int *tiers, size_t n);

/* The lowest tier among the stored readings of meter_id with from_ms <= ts_ms < to_ms (a
 * reading without a recorded tier counts as 0), and how many there are. With no reading the
 * tier is 0. CTL_DB_OK or CTL_DB_E_DB. */
int ctl_reading_tier_min(ctl_db *db, const char *meter_id, int64_t from_ms, int64_t to_ms,
                         int *tier, int64_t *count);

#endif
