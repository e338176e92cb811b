/*
 * Signed orders and their receipts: the messages a home and the controller exchange on the bus.
 *
 * A home signs the canonical binary encoding of its order (never JSON text) with Ed25519 and
 * publishes the order as JSON carrying the same fields plus the signature. The controller
 * decodes the JSON strictly, re-encodes the fields canonically and verifies the signature over
 * those bytes, so two JSON spellings of one order verify identically and no JSON quirk can change
 * what was signed. The byte layout is specified in docs/order-encoding.md.
 *
 * Everything here is pure: no I/O, no clock, no globals; buffers are the caller's. Functions are
 * safe to call from several threads on distinct objects. The sign/verify functions need
 * sodium_init() to have succeeded once in the process (keys.h's functions call it).
 */
#ifndef MGX_CTL_ORDER_MSG_H
#define MGX_CTL_ORDER_MSG_H

#include "common/ident.h"
#include "mgx/market.h"

#include <stddef.h>
#include <stdint.h>

/* Identifiers (community, participant, meter): CTL_ID_MAX and ctl_id_valid, the one rule. */

#define CTL_ORDER_VERSION 1
/* Domain tag that starts every encoding, NUL included: a signature over an order can never be
 * taken for a signature over any other mgx message. */
#define CTL_ORDER_DOMAIN     "mgx-order-v1"
#define CTL_ORDER_DOMAIN_LEN 13 /* strlen + the NUL */
#define CTL_ORDER_NONCE_BYTES 16
#define CTL_ORDER_SIG_BYTES   64
#define CTL_INTERVAL_S_MAX    86400
/* Largest canonical encoding: tag 13, two ids 2 x (1 + 63), fixed fields 46, 16 steps x 16. */
#define CTL_ORDER_ENC_MAX     443
/* Longest JSON order accepted by the decoder (a full 16-step order is about 1.3 KB). */
#define CTL_ORDER_JSON_MAX    4096
/* Room for a detail text (why a message was rejected), NUL included. */
#define CTL_DETAIL_MAX        160

/* Why an order was accepted or rejected. Stable numbers and names: they travel in receipts.
 * CTL_R_OK and CTL_R_REPLACED are acceptances; everything else is a rejection. */
typedef enum {
    CTL_R_OK = 0,                 /* accepted, first order of this participant for the interval */
    CTL_R_REPLACED = 1,           /* accepted, replaces the participant's earlier order */
    CTL_R_MALFORMED = 2,          /* not a well-formed order (detail says which field) */
    CTL_R_WRONG_COMMUNITY = 3,    /* signed for another community */
    CTL_R_TOPIC_MISMATCH = 4,     /* participant in the topic differs from the one signed */
    CTL_R_UNKNOWN_PARTICIPANT = 5,/* not in the registry */
    CTL_R_NOT_ALLOWED = 6,        /* the participant's role may not submit orders */
    CTL_R_WRONG_INTERVAL_LENGTH = 7, /* interval_s differs from the community's */
    CTL_R_EXPIRED = 8,            /* the order's own expiry has passed */
    CTL_R_STALE_INTERVAL = 9,     /* the interval has already started */
    CTL_R_GATE_CLOSED = 10,       /* gate closure for the interval has passed */
    CTL_R_FAR_FUTURE_INTERVAL = 11, /* further ahead than the community accepts */
    CTL_R_REPLAY = 12,            /* nonce already used by this participant for another order */
    CTL_R_SUPERSEDED = 13,        /* older (created_ms) than the order already on file */
    CTL_R_BAD_SIGNATURE = 14,     /* signature missing, not 64 bytes, or does not verify */
    CTL_R_INTERNAL = 15           /* the controller failed (storage...): resend later */
} ctl_reason;
#define CTL_R_COUNT 16

/* "ok", "replaced", "malformed", "wrong_community", ... (the receipt's reason field); NULL for a
 * number outside the enum. */
const char *ctl_reason_name(int reason);
/* A one-line English description of a reason; never NULL (strerror-style). */
const char *ctl_reason_text(int reason);
/* Parses a reason name back into its code; -1 for an unknown name. */
int ctl_reason_parse(const char *name);
/* 1 for CTL_R_OK and CTL_R_REPLACED. */
int ctl_reason_is_accept(int reason);

/* An order for one future interval. The interval is [interval_id * interval_s,
 * (interval_id + 1) * interval_s) in UTC seconds since the epoch. */
typedef struct {
    char community[CTL_ID_MAX + 1];
    char participant[CTL_ID_MAX + 1];
    int64_t interval_id; /* >= 0, interval_id * interval_s fits int64 */
    uint32_t interval_s; /* 1 .. CTL_INTERVAL_S_MAX */
    int64_t created_ms;  /* when the home made it (unix ms, >= 0): a later one replaces it */
    int64_t expiry_s;    /* unix s after which the controller must not accept it (> 0) */
    uint8_t nonce[CTL_ORDER_NONCE_BYTES]; /* random, never reused by the participant */
    mkt_side side;
    uint32_t n_steps; /* 1 .. MKT_MAX_STEPS */
    mkt_step steps[MKT_MAX_STEPS]; /* energy 1..MKT_ENERGY_MAX_WH, price 0..MKT_PRICE_MAX */
    uint8_t sig[CTL_ORDER_SIG_BYTES];
} ctl_order_msg;

/* Checks every field against the limits above. Returns CTL_R_OK or CTL_R_MALFORMED and, when
 * detail is non-NULL, writes why (e.g. "steps[3].energy_wh: must be 1..1000000000000"). */
int ctl_order_validate(const ctl_order_msg *m, char *detail, size_t detail_cap);

/* Writes the canonical encoding (the signed bytes, signature excluded) to out, which must hold
 * CTL_ORDER_ENC_MAX bytes, and its length to *len. CTL_R_OK or CTL_R_MALFORMED (invalid field). */
int ctl_order_encode(const ctl_order_msg *m, uint8_t out[CTL_ORDER_ENC_MAX], size_t *len);

/* Parses a canonical encoding back into *m (signature zeroed). Strict: exact length, valid
 * fields, nothing after the last step. CTL_R_OK or CTL_R_MALFORMED with detail. */
int ctl_order_decode_bin(const uint8_t *buf, size_t len, ctl_order_msg *m, char *detail,
                         size_t detail_cap);

/* Signs: sets m->sig to Ed25519(sk, encoding). sk is libsodium's 64-byte secret key (see
 * keys.h: ctl_key_secret). CTL_R_OK or CTL_R_MALFORMED. */
int ctl_order_sign(ctl_order_msg *m, const uint8_t sk[CTL_SECKEY_BYTES]);

/* Verifies m->sig over m's canonical encoding with pk. CTL_R_OK, CTL_R_MALFORMED (a field is
 * invalid, so there are no canonical bytes) or CTL_R_BAD_SIGNATURE. */
int ctl_order_verify(const ctl_order_msg *m, const uint8_t pk[CTL_PUBKEY_BYTES]);

/* The JSON form, compact, keys in the documented order (docs/order-encoding.md). Writes at most
 * cap bytes including a NUL to out; *len (if non-NULL) gets the length without the NUL.
 * CTL_R_OK, CTL_R_MALFORMED (invalid field) or CTL_R_INTERNAL (cap too small / no memory).
 * CTL_ORDER_JSON_MAX is always enough. */
int ctl_order_to_json(const ctl_order_msg *m, char *out, size_t cap, size_t *len);

/* Decodes a JSON order of len bytes (need not be NUL-terminated). Strict: an object with exactly
 * the documented keys, no duplicates, integers only where integers belong (no 1.0, no 1e3, no
 * strings), lower-case hex of exact length, valid ids, steps within limits, at most
 * CTL_ORDER_JSON_MAX bytes. Returns CTL_R_OK, CTL_R_MALFORMED, or CTL_R_BAD_SIGNATURE when only the
 * signature's form is wrong (not exactly 64 bytes). The signature is NOT verified here. detail
 * (may be NULL) names the offending field. On failure *m keeps the fields read before the fault
 * (a valid participant id lets the caller address the receipt). */
int ctl_order_from_json(const char *json, size_t len, ctl_order_msg *m, char *detail,
                        size_t detail_cap);

/* Lower-case hex of the nonce into out (2 * CTL_ORDER_NONCE_BYTES + 1 bytes). Returns out. */
char *ctl_nonce_hex(const uint8_t nonce[CTL_ORDER_NONCE_BYTES],
                    char out[2 * CTL_ORDER_NONCE_BYTES + 1]);
/* The nonce from exactly 2 * CTL_ORDER_NONCE_BYTES lower-case hex digits (the canonical form
 * ctl_nonce_hex writes); 0, or -1 without a complete nonce. */
int ctl_nonce_from_hex(const char *hex, size_t len, uint8_t nonce[CTL_ORDER_NONCE_BYTES]);

/* ---- receipts ---------------------------------------------------------------------------- */

/* The controller's answer to one order, published on mgx/v1/<community>/receipt/<participant>.
 * Identifies the order by (participant, interval_id, nonce). */
typedef struct {
    char participant[CTL_ID_MAX + 1];
    int64_t interval_id;
    uint8_t nonce[CTL_ORDER_NONCE_BYTES];
    int reason;                 /* ctl_reason; status is accepted iff ctl_reason_is_accept */
    char detail[CTL_DETAIL_MAX]; /* free text, "" when none; printable ASCII */
    int64_t controller_time_ms; /* the controller's clock when it decided */
} ctl_receipt;

#define CTL_RECEIPT_JSON_MAX 1024

/* Fills a receipt for order m (m may be only partly valid: fields that are not valid ids are
 * left empty). detail may be NULL. Non-printable bytes of detail are replaced by '?'. */
void ctl_receipt_for(ctl_receipt *r, const ctl_order_msg *m, int reason, const char *detail,
                     int64_t controller_time_ms);

/* JSON form: {"v":1,"participant":...,"interval_id":...,"nonce":"hex","status":"accepted"|
 * "rejected","reason":"name","detail":"...","controller_time_ms":...}. Same buffer contract as
 * ctl_order_to_json; CTL_RECEIPT_JSON_MAX is always enough. */
int ctl_receipt_to_json(const ctl_receipt *r, char *out, size_t cap, size_t *len);

/* Strict decoder for the agent side. CTL_R_OK or CTL_R_MALFORMED with detail. An empty
 * participant is accepted (receipts for orders whose participant could not be read). */
int ctl_receipt_from_json(const char *json, size_t len, ctl_receipt *r, char *detail,
                          size_t detail_cap);

#endif
