/*
 * Signed standing preferences: what a home sends in a community with timing = ex_post instead
 * of per-interval orders. A preference carries the home's price limits for its metered surplus
 * (the least it accepts per kWh) and deficit (the most it pays per kWh, all-in), as the market
 * library's mkt_preference (mgx/ex_post.h), valid from an interval until the home replaces it.
 *
 * Signed like an order (order_msg.h) but never mistakable for one: its canonical encoding
 * starts with its own domain tag ("mgx-pref-v1\0"), so a signature over an order can never be
 * taken for one over a preference or the other way round. The home signs the canonical bytes;
 * it publishes JSON carrying the same fields and the signature on
 * mgx/v1/<community>/pref/<participant>; the controller decodes the JSON strictly, re-encodes
 * the fields and verifies. Replay rules and receipts are the orders': a nonce is used once,
 * a resend of the same bytes gets the stored receipt, a receipt leaves only after COMMIT. The
 * byte layout is in docs/order-encoding.md ("Standing preferences").
 *
 * Pure: no I/O, no clock, no globals; buffers are the caller's. Safe from several threads on
 * distinct objects. Sign/verify need sodium_init() to have succeeded once (keys.h does it).
 */
#ifndef MGX_CTL_PREF_MSG_H
#define MGX_CTL_PREF_MSG_H

#include "common/ident.h"
#include "mgx/ex_post.h"
#include "orders/order_msg.h"

#include <stddef.h>
#include <stdint.h>

#define CTL_PREF_VERSION 1
#define CTL_PREF_DOMAIN     "mgx-pref-v1"
#define CTL_PREF_DOMAIN_LEN 12 /* strlen + the NUL */
/* Largest canonical encoding: tag 12, two ids 2 x (1 + 63), fixed fields 44, two step counts,
 * 2 x 8 steps x 16. */
#define CTL_PREF_ENC_MAX 442
/* Longest JSON preference accepted (a full one is about 1.5 KB). */
#define CTL_PREF_JSON_MAX 4096

/* A preference valid from interval valid_from ([valid_from * interval_s, ...) UTC seconds)
 * until the participant's next accepted preference takes over. */
typedef struct {
    char community[CTL_ID_MAX + 1];
    char participant[CTL_ID_MAX + 1];
    int64_t valid_from;  /* interval id, >= 0, valid_from * interval_s * 1000 fits int64 */
    uint32_t interval_s; /* 1 .. CTL_INTERVAL_S_MAX */
    int64_t created_ms;  /* when the home made it (unix ms, >= 0): the newest one counts */
    int64_t expiry_s;    /* unix s after which the controller must not accept it (> 0) */
    uint8_t nonce[CTL_ORDER_NONCE_BYTES];
    mkt_preference pref; /* each side 0..MKT_PREF_MAX_STEPS steps; energy 1..MKT_ENERGY_MAX_WH,
                            price 0..MKT_PRICE_MAX_UC_PER_KWH; no steps: the grid's terms */
    uint8_t sig[CTL_ORDER_SIG_BYTES];
} ctl_pref_msg;

/* Checks every field. CTL_R_OK or CTL_R_MALFORMED with why in detail (may be NULL). */
int ctl_pref_validate(const ctl_pref_msg *m, char *detail, size_t detail_cap);

/* The canonical encoding (signed bytes, signature excluded) into out, its length in *len.
 * CTL_R_OK or CTL_R_MALFORMED. */
int ctl_pref_encode(const ctl_pref_msg *m, uint8_t out[CTL_PREF_ENC_MAX], size_t *len);
/* Strict inverse of ctl_pref_encode (signature zeroed). CTL_R_OK or CTL_R_MALFORMED. */
int ctl_pref_decode_bin(const uint8_t *buf, size_t len, ctl_pref_msg *m, char *detail,
                        size_t detail_cap);

/* Ed25519 over the canonical encoding, as ctl_order_sign / ctl_order_verify. */
int ctl_pref_sign(ctl_pref_msg *m, const uint8_t sk[CTL_SECKEY_BYTES]);
int ctl_pref_verify(const ctl_pref_msg *m, const uint8_t pk[CTL_PUBKEY_BYTES]);

/* Compact JSON, keys in the documented order; buffer contract of ctl_order_to_json
 * (CTL_PREF_JSON_MAX is always enough). */
int ctl_pref_to_json(const ctl_pref_msg *m, char *out, size_t cap, size_t *len);
/* Strict decoder, as ctl_order_from_json: exactly the documented keys, integers only, lower-case
 * hex of exact length. CTL_R_OK, CTL_R_MALFORMED, or CTL_R_BAD_SIGNATURE when only the
 * signature's form is wrong. Not verified here. On failure *m keeps the fields read so far. */
int ctl_pref_from_json(const char *json, size_t len, ctl_pref_msg *m, char *detail,
                       size_t detail_cap);

/* The receipt of a preference: an order receipt (order_msg.h) whose interval_id is the
 * preference's valid_from and whose nonce is its nonce. detail may be NULL. */
void ctl_receipt_for_pref(ctl_receipt *r, const ctl_pref_msg *m, int reason, const char *detail,
                          int64_t controller_time_ms);

#endif
