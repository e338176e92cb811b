/*
 * OCMF signed meter readings (Open Charge Metering Format, SAFE e.V.): the format German
 * Eichrecht-compliant meters and chargers sign their readings in, "OCMF|{payload}|{signature}".
 * A parser and an ECDSA verifier (OpenSSL libcrypto), pure: no I/O, no clock, no globals of
 * ours (OpenSSL's error queue is cleared before returning).
 *
 * What is accepted (docs/reading-signatures.md, "OCMF"):
 *  - signature methods (SA) ECDSA-secp256r1-SHA256 (the default when SA is absent),
 *    ECDSA-secp256k1-SHA256, ECDSA-brainpool256r1-SHA256 (also spelled brainpoolP256r1),
 *    ECDSA-secp384r1-SHA256, ECDSA-brainpool384r1-SHA256; the 192-bit curves are refused;
 *  - signature encoding (SE) hex, DER (SM application/x-der), as the specification's defaults;
 *  - the signature covers the payload section's bytes exactly as received;
 *  - the public key is a DER SubjectPublicKeyInfo (as meters print it, e.g. "3059301306...")
 *    and must be on the curve SA names.
 * Reading values (RV, a JSON number or a string of one) are read from the payload's text, not
 * through a binary float: kWh or Wh to milli-Wh, digits beyond 0.001 Wh truncated.
 *
 * Thread safety: every function works only on its arguments (OpenSSL 3 is thread safe).
 */
#ifndef MGX_CTL_OCMF_H
#define MGX_CTL_OCMF_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/meter.h"

enum {
    OCMF_OK = 0,
    OCMF_E_FORMAT = -1,      /* not OCMF, bad JSON, a field of the wrong type or range */
    OCMF_E_UNSUPPORTED = -2, /* a signature method, encoding or unit mgx does not accept */
    OCMF_E_KEY = -3,         /* the public key is not an EC key on the signature's curve */
    OCMF_E_SIGNATURE = -4,   /* the signature does not verify */
    OCMF_E_MISMATCH = -5,    /* verified, but does not certify the mgx reading given */
    OCMF_E_NOMEM = -6
};

#define OCMF_TEXT_MAX 8192   /* longest OCMF string accepted */
#define OCMF_READINGS_MAX 32 /* RD entries */
#define OCMF_SIG_MAX 160     /* DER ECDSA signature, 384-bit curves included */

typedef enum { OCMF_REG_OTHER = 0, OCMF_REG_IMPORT = 1, OCMF_REG_EXPORT = 2 } ocmf_register;

typedef struct {
    int64_t ts_ms;       /* TM as Unix time, its UTC offset applied */
    char time_status;    /* TM's last letter: U, I, S or R */
    char tx[2];          /* TX, "" when absent */
    int64_t value_mwh;   /* RV in milli-Wh */
    char ri[32];         /* RI, the OBIS code as given */
    ocmf_register reg;   /* by RI: C = 1 and D = 8 import, C = 2 and D = 8 export */
    char status[4];      /* ST; "G" is good */
} ocmf_reading;

typedef struct {
    char meter_serial[64];   /* MS, "" when absent */
    char gateway_serial[64]; /* GS, "" when absent */
    char curve[24];          /* OpenSSL's name of the curve SA names, e.g. "prime256v1" */
    size_t n;
    ocmf_reading rd[OCMF_READINGS_MAX];
    size_t payload_off, payload_len; /* the signed bytes, within the parsed text */
    uint8_t sig[OCMF_SIG_MAX];
    size_t sig_len;
} ocmf_record;

/* Static English text for an OCMF_* code. */
const char *ocmf_strerror(int code);

/* Parses len bytes of text (at most OCMF_TEXT_MAX). OCMF_OK, or a code with the reason in why
 * (size whylen; may be NULL). */
int ocmf_parse(const char *text, size_t len, ocmf_record *out, char *why, size_t whylen);

/* Verifies r (parsed from text, the same bytes) with the DER SubjectPublicKeyInfo key.
 * OCMF_OK, OCMF_E_KEY, OCMF_E_SIGNATURE or OCMF_E_NOMEM. */
int ocmf_verify(const ocmf_record *r, const char *text, size_t len, const uint8_t *key,
                size_t key_len, char *why, size_t whylen);

/* Checks that key (len bytes) is a DER SubjectPublicKeyInfo of an EC key on a curve OCMF
 * signatures here use, and writes OpenSSL's curve name into curve (cap bytes). OCMF_OK or
 * OCMF_E_KEY with the reason in why. For registering a meter's key. */
int ocmf_key_check(const uint8_t *key, size_t len, char *curve, size_t cap, char *why,
                   size_t whylen);

/* Whether the verified record r certifies the mgx reading s: the last import-register reading
 * has s's time stamp and s->import_wh (= milli-Wh / 1000, truncated), the last export-register
 * reading has s->export_wh (or, without an export register, s->export_wh is 0), and both have
 * status "G". OCMF_OK or OCMF_E_MISMATCH with the reason. */
int ocmf_certifies(const ocmf_record *r, const mtr_sample *s, char *why, size_t whylen);

/* The mgx reading a record gives for meter_id (for a source reading OCMF records): the
 * counters and time of ocmf_certifies, power 0, no battery, quality good. OCMF_OK or
 * OCMF_E_FORMAT when the record has no import register reading. */
int ocmf_to_sample(const ocmf_record *r, const char *meter_id, mtr_sample *out);

#endif
