/*
 * Signed readings: the canonical bytes of a meter reading and their Ed25519 signature by the
 * device key of the gateway that read the meter (`mgx meter`). Pure: no I/O, no clock, no
 * globals; libsodium only.
 *
 * Why it lives in bus/: the signature is about the bus payload (topic meter/<id>/state), which
 * the meter daemon (signer) and the controller (verifier) both reach through this module; the
 * meters library stays free of crypto (the simulator links it), and orders/ sits above
 * meterd's layer. The byte layout is documented in docs/reading-signatures.md; a change of
 * layout is a new version byte, never an edit of version 1.
 *
 * Version 1, all integers big-endian:
 *   12 bytes  domain tag "MGX-READING\0" (so a reading signature can never be mistaken for an
 *             order, receipt or checkpoint signature made with the same key)
 *    1 byte   version = 1
 *    1 byte   length M of the meter id (1..63), then M bytes of meter id
 *    1 byte   length P of the participant id (1..63), then P bytes of participant id
 *    8 bytes  ts_ms (int64)        8 bytes power_w (int64)
 *    8 bytes  import_wh (int64)    8 bytes export_wh (int64)
 *    4 bytes  soc_permille (int32, -1 when no battery)
 *    4 bytes  quality (uint32, MTR_Q_* bits)
 * On the wire the state JSON gains "sig": 128 lower-case hex digits (bus_state_encode_signed).
 *
 * Thread safety: every function works only on its arguments.
 */
#ifndef MGX_CTL_READING_SIG_H
#define MGX_CTL_READING_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/meter.h"

#define BUS_RSIG_VERSION 1
#define BUS_RSIG_BYTES 64    /* an Ed25519 signature */
#define BUS_RSIG_PK_BYTES 32 /* an Ed25519 public key */
#define BUS_RSIG_SK_BYTES 64 /* libsodium's Ed25519 secret key (seed || public key) */
#define BUS_RSIG_CANON_MAX (12 + 1 + 1 + 63 + 1 + 63 + 40)

/* Attestation tiers of a reading (and of a settled position: the lowest of its readings). */
typedef enum {
    BUS_TIER_UNSIGNED = 0, /* anyone with the home's broker password could have sent it */
    BUS_TIER_GATEWAY = 1,  /* signed by the gateway's registered Ed25519 device key */
    BUS_TIER_CERTIFIED = 2 /* signed by a certified meter (OCMF) with its registered key */
} bus_tier;

/* "unsigned", "gateway", "certified"; "?" for anything else. */
const char *bus_tier_name(int tier);

/* Writes the canonical bytes of (s, participant) into out (cap bytes). Returns the length, or
 * BUS_E_INVAL (a meter or participant id not 1..63 of [A-Za-z0-9_-]) or BUS_E_TOOLONG. */
int bus_reading_canon(const mtr_sample *s, const char *participant, uint8_t *out, size_t cap);

/* Signs the canonical bytes with sk (libsodium's 64-byte Ed25519 secret key). BUS_OK or
 * BUS_E_INVAL. */
int bus_reading_sign(const mtr_sample *s, const char *participant,
                     const uint8_t sk[BUS_RSIG_SK_BYTES], uint8_t sig[BUS_RSIG_BYTES]);

/* BUS_OK when sig is pk's signature of (s, participant); BUS_E_PAYLOAD when it is not;
 * BUS_E_INVAL for bad ids. */
int bus_reading_verify(const mtr_sample *s, const char *participant,
                       const uint8_t pk[BUS_RSIG_PK_BYTES], const uint8_t sig[BUS_RSIG_BYTES]);

/* bus_state_encode (payload.h) followed by ,"sig":"<hex>" before the closing brace. Same
 * return values. */
int bus_state_encode_signed(const mtr_sample *s, const char *participant,
                            const uint8_t sk[BUS_RSIG_SK_BYTES], char *buf, size_t len);

/* Reads the optional "sig" field of a state body (len bytes). BUS_OK with *present = 0 when
 * there is none, or 1 and sig filled; BUS_E_PAYLOAD with a reason in why when the field is
 * there but not exactly 128 hex digits (a signature of any other length is refused, never
 * passed on: libsodium's verify takes no length). */
int bus_state_sig(const char *json, size_t len, uint8_t sig[BUS_RSIG_BYTES], int *present,
                  char *why, size_t whylen);

/* bus_state_encode (payload.h) plus "ocmf": the record text (len bytes, at most
 * OCMF_TEXT_MAX) a certified meter signed for s. Same return values. */
int bus_state_encode_ocmf(const mtr_sample *s, const char *ocmf, size_t ocmf_len, char *buf,
                          size_t len);

/* Reads the optional "ocmf" field of a state body: the OCMF record (bus/ocmf.h) a certified
 * meter signed for this reading. BUS_OK with *present = 0 when absent, or 1 with the text in
 * out (cap bytes, NUL-terminated) and its length in *out_len; BUS_E_PAYLOAD when it is not a
 * string or does not fit. */
int bus_state_ocmf(const char *json, size_t len, char *out, size_t cap, size_t *out_len,
                   int *present, char *why, size_t whylen);

#endif
