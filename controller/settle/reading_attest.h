/*
 * The attestation tier of a meter reading as the controller verifies it (issue 12, signed
 * readings): 2 "certified" when the state carries an OCMF record that verifies with the
 * meter's registered OCMF key and certifies the reading's time and counters; 1 "gateway" when
 * its "sig" verifies with the gateway key registered for the meter, over the reading and the
 * participant the registry gives the meter; 0 "unsigned" otherwise. A signature that is
 * present but does not verify also gives 0, with the reason (a forgery or a wrong key).
 *
 * The coordinator's minimum, [controller] min_attestation_tier (0, 1 or 2; default 0, the
 * behaviour before signed readings), refuses readings below it at intake: they are logged and
 * counted, never stored, so nothing below the tier is settled. Each stored reading's tier is
 * recorded (db/meter_keys.h); a settled position's tier is the lowest among the readings the
 * settlement looked at for its interval (ctl_settle_member.attestation_tier).
 *
 * Thread safety: as the ctl_db handle.
 */
#ifndef MGX_CTL_READING_ATTEST_H
#define MGX_CTL_READING_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "mgx/meter.h"

/* The tier of reading s decoded from the state body json (len bytes). Always sets *tier (0 on
 * any failure); why says what failed or what verified. CTL_DB_OK, or CTL_DB_E_DB when a lookup
 * failed (then *tier is 0: a database fault never raises trust). */
int ctl_attest_reading(ctl_db *db, const mtr_sample *s, const char *json, size_t len, int *tier,
                       char *why, size_t whylen);

#endif
