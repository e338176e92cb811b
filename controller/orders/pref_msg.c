/*
 * Signed standing preferences (pref_msg.h): validation, the canonical binary encoding, Ed25519
 * over it and the strict JSON form. Same conventions as order_msg.c (big-endian, length-prefixed
 * ids, lower-case hex); the byte layout here and in docs/order-encoding.md ("Standing
 * preferences") must agree.
 */
#include "orders/pref_msg.h"

#include "common/hex.h"

#include "common/errbuf.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static int validate_steps(const mkt_step *s, uint32_t n, const char *side, char *detail,
                          size_t cap)
{
    if (n > MKT_PREF_MAX_STEPS)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "%s: at most %d steps", side,
                        MKT_PREF_MAX_STEPS);
    for (uint32_t i = 0; i < n; i++) {
        if (s[i].energy_wh < 1 || s[i].energy_wh > MKT_ENERGY_MAX_WH)
            return ctl_fail(CTL_R_MALFORMED, detail, cap, "%s[%u].energy_wh: must be 1..%lld",
                            side, i, (long long)MKT_ENERGY_MAX_WH);
        if (s[i].price_uc_per_kwh < 0 || s[i].price_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH)
            return ctl_fail(CTL_R_MALFORMED, detail, cap,
                            "%s[%u].price_uc_per_kwh: must be 0..%lld", side, i,
                            (long long)MKT_PRICE_MAX_UC_PER_KWH);
    }
    return CTL_R_OK;
}

int ctl_pref_validate(const ctl_pref_msg *m, char *detail, size_t cap)
{
    if (detail && cap)
        detail[0] = '\0';
    if (!m)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "no preference");
    if (!ctl_id_valid(m->community))
        return ctl_fail(CTL_R_MALFORMED, detail, cap,
                        "community: must be 1..%d characters of A-Z a-z 0-9 . _ -", CTL_ID_MAX);
    if (!ctl_id_valid(m->participant))
        return ctl_fail(CTL_R_MALFORMED, detail, cap,
                        "participant: must be 1..%d characters of A-Z a-z 0-9 . _ -", CTL_ID_MAX);
    if (m->interval_s < 1 || m->interval_s > CTL_INTERVAL_S_MAX)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "interval_s: must be 1..%d",
                        CTL_INTERVAL_S_MAX);
    if (m->valid_from < 0 || m->valid_from > INT64_MAX / 1000 / (int64_t)m->interval_s)
        return ctl_fail(CTL_R_MALFORMED, detail, cap,
                        "valid_from: must be 0..%lld for interval_s %u",
                        (long long)(INT64_MAX / 1000 / (int64_t)m->interval_s), m->interval_s);
    if (m->created_ms < 0)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "created_ms: must be >= 0");
    if (m->expiry_s <= 0 || m->expiry_s > INT64_MAX / 1000)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "expiry_s: must be 1..%lld",
                        (long long)(INT64_MAX / 1000));
    int rc = validate_steps(m->pref.sell, m->pref.n_sell_steps, "sell", detail, cap);
    return rc == CTL_R_OK ? validate_steps(m->pref.buy, m->pref.n_buy_steps, "buy", detail, cap)
                          : rc;
}

/* ---- canonical binary encoding ---------------------------------------------------------- */

static uint8_t *put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_id(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    *p++ = (uint8_t)n;
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *put_steps(uint8_t *p, const mkt_step *s, uint32_t n)
{
    *p++ = (uint8_t)n;
    for (uint32_t i = 0; i < n; i++) {
        p = put_be(p, (uint64_t)s[i].energy_wh, 8);
        p = put_be(p, (uint64_t)s[i].price_uc_per_kwh, 8);
    }
    return p;
}

int ctl_pref_encode(const ctl_pref_msg *m, uint8_t out[CTL_PREF_ENC_MAX], size_t *len)
{
    if (!out || !len || ctl_pref_validate(m, NULL, 0) != CTL_R_OK)
        return CTL_R_MALFORMED;
    uint8_t *p = out;
    memcpy(p, CTL_PREF_DOMAIN, CTL_PREF_DOMAIN_LEN); /* includes the NUL */
    p += CTL_PREF_DOMAIN_LEN;
    p = put_id(p, m->community);
    p = put_id(p, m->participant);
    p = put_be(p, (uint64_t)m->valid_from, 8);
    p = put_be(p, m->interval_s, 4);
    p = put_be(p, (uint64_t)m->created_ms, 8);
    p = put_be(p, (uint64_t)m->expiry_s, 8);
    memcpy(p, m->nonce, CTL_ORDER_NONCE_BYTES);
    p += CTL_ORDER_NONCE_BYTES;
    p = put_steps(p, m->pref.sell, m->pref.n_sell_steps);
    p = put_steps(p, m->pref.buy, m->pref.n_buy_steps);
    *len = (size_t)(p - out);
    return CTL_R_OK;
}

typedef struct {
    const uint8_t *p;
    size_t left;
} reader;

static int get_bytes(reader *r, void *out, size_t n)
{
    if (r->left < n)
        return -1;
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return 0;
}

static int get_be(reader *r, int bytes, uint64_t *v)
{
    if (r->left < (size_t)bytes)
        return -1;
    uint64_t x = 0;
    for (int i = 0; i < bytes; i++)
        x = (x << 8) | r->p[i];
    r->p += bytes;
    r->left -= (size_t)bytes;
    *v = x;
    return 0;
}

static int get_i64(reader *r, int64_t *v)
{
    uint64_t u;
    if (get_be(r, 8, &u))
        return -1;
    /* two's complement without implementation-defined conversion */
    *v = u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
    return 0;
}

static int get_id(reader *r, char out[CTL_ID_MAX + 1])
{
    uint8_t n;
    if (get_bytes(r, &n, 1) || n < 1 || n > CTL_ID_MAX || get_bytes(r, out, n))
        return -1;
    out[n] = '\0';
    return strlen(out) == n && ctl_id_valid(out) ? 0 : -1;
}

static int get_steps(reader *r, mkt_step *s, uint32_t *n_out, const char *side, char *detail,
                     size_t cap)
{
    uint8_t n;
    if (get_bytes(r, &n, 1))
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "truncated");
    if (n > MKT_PREF_MAX_STEPS)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "%s: count must be 0..%d", side,
                        MKT_PREF_MAX_STEPS);
    *n_out = n;
    for (uint32_t i = 0; i < n; i++)
        if (get_i64(r, &s[i].energy_wh) || get_i64(r, &s[i].price_uc_per_kwh))
            return ctl_fail(CTL_R_MALFORMED, detail, cap, "truncated");
    return CTL_R_OK;
}

int ctl_pref_decode_bin(const uint8_t *buf, size_t len, ctl_pref_msg *m, char *detail,
                        size_t cap)
{
    if (!buf || !m)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "no input");
    memset(m, 0, sizeof *m);
    reader r = {buf, len};
    uint8_t tag[CTL_PREF_DOMAIN_LEN];
    uint64_t u;
    if (get_bytes(&r, tag, sizeof tag) || memcmp(tag, CTL_PREF_DOMAIN, sizeof tag) != 0)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "domain tag: not \"%s\\0\"",
                        CTL_PREF_DOMAIN);
    if (get_id(&r, m->community))
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "community: bad length or characters");
    if (get_id(&r, m->participant))
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "participant: bad length or characters");
    if (get_i64(&r, &m->valid_from) || get_be(&r, 4, &u))
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "truncated");
    m->interval_s = (uint32_t)u;
    if (get_i64(&r, &m->created_ms) || get_i64(&r, &m->expiry_s) ||
        get_bytes(&r, m->nonce, CTL_ORDER_NONCE_BYTES))
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "truncated");
    int rc = get_steps(&r, m->pref.sell, &m->pref.n_sell_steps, "sell", detail, cap);
    if (rc == CTL_R_OK)
        rc = get_steps(&r, m->pref.buy, &m->pref.n_buy_steps, "buy", detail, cap);
    if (rc != CTL_R_OK)
        return rc;
    if (r.left)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "%zu bytes after the last step", r.left);
    return ctl_pref_validate(m, detail, cap);
}

int ctl_pref_sign(ctl_pref_msg *m, const uint8_t sk[CTL_SECKEY_BYTES])
{
    uint8_t enc[CTL_PREF_ENC_MAX];
    size_t len;
    if (!sk || ctl_pref_encode(m, enc, &len) != CTL_R_OK)
        return CTL_R_MALFORMED;
    crypto_sign_detached(m->sig, NULL, enc, len, sk);
    return CTL_R_OK;
}

int ctl_pref_verify(const ctl_pref_msg *m, const uint8_t pk[CTL_PUBKEY_BYTES])
{
    uint8_t enc[CTL_PREF_ENC_MAX];
    size_t len;
    if (ctl_pref_encode(m, enc, &len) != CTL_R_OK)
        return CTL_R_MALFORMED;
    if (!pk)
        return CTL_R_BAD_SIGNATURE;
    return crypto_sign_verify_detached(m->sig, enc, len, pk) == 0 ? CTL_R_OK
                                                                  : CTL_R_BAD_SIGNATURE;
}

/* ---- JSON ------------------------------------------------------------------------------- */

/* Appends "[{...},...]" of n steps at out + *n_out; -1 when cap is too small. */
static int steps_json(const mkt_step *s, uint32_t n, char *out, size_t cap, size_t *used)
{
    size_t u = *used;
    int w = snprintf(out + u, cap - u, "[");
    for (uint32_t i = 0; w >= 0 && (size_t)w < cap - u && i < n; i++) {
        u += (size_t)w;
        w = snprintf(out + u, cap - u, "%s{\"energy_wh\":%lld,\"price_uc_per_kwh\":%lld}",
                     i ? "," : "", (long long)s[i].energy_wh, (long long)s[i].price_uc_per_kwh);
    }
    if (w >= 0 && (size_t)w < cap - u) {
        u += (size_t)w;
        w = snprintf(out + u, cap - u, "]");
    }
    if (w < 0 || (size_t)w >= cap - u)
        return -1;
    *used = u + (size_t)w;
    return 0;
}

int ctl_pref_to_json(const ctl_pref_msg *m, char *out, size_t cap, size_t *len)
{
    if (ctl_pref_validate(m, NULL, 0) != CTL_R_OK)
        return CTL_R_MALFORMED;
    if (!out || !cap)
        return CTL_R_INTERNAL;
    char nonce[2 * CTL_ORDER_NONCE_BYTES + 1], sig[2 * CTL_ORDER_SIG_BYTES + 1];
    ctl_hex_encode(m->nonce, sizeof m->nonce, nonce);
    ctl_hex_encode(m->sig, sizeof m->sig, sig);
    int w = snprintf(out, cap,
                     "{\"v\":%d,\"community\":\"%s\",\"participant\":\"%s\",\"valid_from\":%lld,"
                     "\"interval_s\":%u,\"created_ms\":%lld,\"expiry_s\":%lld,\"nonce\":\"%s\","
                     "\"sell\":",
                     CTL_PREF_VERSION, m->community, m->participant, (long long)m->valid_from,
                     m->interval_s, (long long)m->created_ms, (long long)m->expiry_s, nonce);
    size_t n = 0;
    if (w < 0 || (size_t)w >= cap)
        goto small;
    n = (size_t)w;
    if (steps_json(m->pref.sell, m->pref.n_sell_steps, out, cap, &n))
        goto small;
    w = snprintf(out + n, cap - n, ",\"buy\":");
    if (w < 0 || (size_t)w >= cap - n)
        goto small;
    n += (size_t)w;
    if (steps_json(m->pref.buy, m->pref.n_buy_steps, out, cap, &n))
        goto small;
    w = snprintf(out + n, cap - n, ",\"sig\":\"%s\"}", sig);
    if (w < 0 || (size_t)w >= cap - n)
        goto small;
    n += (size_t)w;
    if (len)
        *len = n;
    return CTL_R_OK;
small:
    out[0] = '\0';
    return CTL_R_INTERNAL;
}

static const char *const PREF_KEYS[] = {"v",        "community", "participant", "valid_from",
                                        "interval_s", "created_ms", "expiry_s", "nonce",
                                        "sell",     "buy",       "sig"};
#define N_PREF_KEYS (sizeof PREF_KEYS / sizeof PREF_KEYS[0])

static int exact_keys(json_t *obj, const char *const *keys, size_t n, const char *where,
                      char *detail, size_t cap)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        size_t i = 0;
        while (i < n && strcmp(k, keys[i]) != 0)
            i++;
        if (i == n)
            return ctl_fail(CTL_R_MALFORMED, detail, cap, "%sunknown field \"%.40s\"", where, k);
    }
    for (size_t i = 0; i < n; i++)
        if (!json_object_get(obj, keys[i]))
            return ctl_fail(CTL_R_MALFORMED, detail, cap, "%smissing field \"%s\"", where, keys[i]);
    return CTL_R_OK;
}

static int get_int(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                   const char *where, char *detail, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return ctl_fail(CTL_R_MALFORMED, detail, cap,
                        "%s%s: must be an integer (no fraction, exponent or quotes)", where, key);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "%s%s: must be %lld..%lld", where, key,
                        (long long)min, (long long)max);
    *out = (int64_t)x;
    return CTL_R_OK;
}

static int get_id_field(json_t *obj, const char *key, char out[CTL_ID_MAX + 1], char *detail,
                        size_t cap)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) > CTL_ID_MAX ||
        !ctl_id_valid(json_string_value(v)))
        return ctl_fail(CTL_R_MALFORMED, detail, cap,
                        "%s: must be a string of 1..%d characters of A-Z a-z 0-9 . _ -", key,
                        CTL_ID_MAX);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return CTL_R_OK;
}

static int get_json_steps(json_t *arr, const char *side, mkt_step *s, uint32_t *n, char *detail,
                          size_t cap)
{
    static const char *const STEP_KEYS[] = {"energy_wh", "price_uc_per_kwh"};
    if (!json_is_array(arr) || json_array_size(arr) > MKT_PREF_MAX_STEPS)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "%s: must be an array of 0..%d steps", side,
                        MKT_PREF_MAX_STEPS);
    *n = (uint32_t)json_array_size(arr);
    for (uint32_t i = 0; i < *n; i++) {
        json_t *o = json_array_get(arr, i);
        char where[32];
        snprintf(where, sizeof where, "%s[%u].", side, i);
        if (!json_is_object(o))
            return ctl_fail(CTL_R_MALFORMED, detail, cap, "%s[%u]: must be an object", side, i);
        int rc = exact_keys(o, STEP_KEYS, 2, where, detail, cap);
        if (rc == CTL_R_OK)
            rc = get_int(o, "energy_wh", 1, MKT_ENERGY_MAX_WH, &s[i].energy_wh, where, detail,
                         cap);
        if (rc == CTL_R_OK)
            rc = get_int(o, "price_uc_per_kwh", 0, MKT_PRICE_MAX_UC_PER_KWH,
                         &s[i].price_uc_per_kwh, where, detail, cap);
        if (rc != CTL_R_OK)
            return rc;
    }
    return CTL_R_OK;
}

static int decode_fields(json_t *root, ctl_pref_msg *m, char *detail, size_t cap)
{
    int64_t v = 0, x = 0; /* get_int sets them on success; gcc -O3 cannot see it */
    int rc = exact_keys(root, PREF_KEYS, N_PREF_KEYS, "", detail, cap);
    if (rc != CTL_R_OK)
        return rc;
    if ((rc = get_int(root, "v", 0, INT64_MAX, &v, "", detail, cap)) != CTL_R_OK)
        return rc;
    if (v != CTL_PREF_VERSION)
        return ctl_fail(CTL_R_MALFORMED, detail, cap,
                        "v: version %lld is not supported (this controller speaks %d)",
                        (long long)v, CTL_PREF_VERSION);
    if ((rc = get_id_field(root, "community", m->community, detail, cap)) != CTL_R_OK ||
        (rc = get_id_field(root, "participant", m->participant, detail, cap)) != CTL_R_OK ||
        (rc = get_int(root, "interval_s", 1, CTL_INTERVAL_S_MAX, &x, "", detail, cap)) !=
            CTL_R_OK)
        return rc;
    m->interval_s = (uint32_t)x;
    if ((rc = get_int(root, "valid_from", 0, INT64_MAX / 1000 / x, &m->valid_from, "", detail,
                      cap)) != CTL_R_OK ||
        (rc = get_int(root, "created_ms", 0, INT64_MAX, &m->created_ms, "", detail, cap)) !=
            CTL_R_OK ||
        (rc = get_int(root, "expiry_s", 1, INT64_MAX / 1000, &m->expiry_s, "", detail, cap)) !=
            CTL_R_OK)
        return rc;
    json_t *nonce = json_object_get(root, "nonce");
    if (!json_is_string(nonce) || ctl_hex_decode(json_string_value(nonce), json_string_length(nonce),
                                           m->nonce, CTL_ORDER_NONCE_BYTES))
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "nonce: must be %d lower-case hex digits",
                        2 * CTL_ORDER_NONCE_BYTES);
    if ((rc = get_json_steps(json_object_get(root, "sell"), "sell", m->pref.sell,
                             &m->pref.n_sell_steps, detail, cap)) != CTL_R_OK ||
        (rc = get_json_steps(json_object_get(root, "buy"), "buy", m->pref.buy,
                             &m->pref.n_buy_steps, detail, cap)) != CTL_R_OK)
        return rc;
    json_t *sig = json_object_get(root, "sig");
    if (!json_is_string(sig))
        return ctl_fail(CTL_R_MALFORMED, detail, cap,
                        "sig: must be a string of %d lower-case hex digits",
                        2 * CTL_ORDER_SIG_BYTES);
    if (ctl_hex_decode(json_string_value(sig), json_string_length(sig), m->sig, CTL_ORDER_SIG_BYTES)) {
        ctl_errf(detail, cap,
                 "sig: must be exactly %d bytes as %d lower-case hex digits (got %zu characters)",
                 CTL_ORDER_SIG_BYTES, 2 * CTL_ORDER_SIG_BYTES, json_string_length(sig));
        return CTL_R_BAD_SIGNATURE;
    }
    return ctl_pref_validate(m, detail, cap);
}

int ctl_pref_from_json(const char *json, size_t len, ctl_pref_msg *m, char *detail, size_t cap)
{
    if (detail && cap)
        detail[0] = '\0';
    if (!m)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "no output");
    memset(m, 0, sizeof *m);
    if (!json)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "no input");
    if (len > CTL_PREF_JSON_MAX)
        return ctl_fail(CTL_R_MALFORMED, detail, cap,
                        "preference is %zu bytes, more than the %d allowed", len,
                        CTL_PREF_JSON_MAX);
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "not JSON: %.80s at byte %d", err.text,
                        err.position);
    int rc = json_is_object(root) ? decode_fields(root, m, detail, cap)
                                  : ctl_fail(CTL_R_MALFORMED, detail, cap, "not a JSON object");
    json_decref(root);
    return rc;
}

void ctl_receipt_for_pref(ctl_receipt *r, const ctl_pref_msg *m, int reason, const char *detail,
                          int64_t controller_time_ms)
{
    ctl_receipt_for(r, NULL, reason, detail, controller_time_ms);
    if (!r || !m)
        return;
    if (ctl_id_valid(m->participant))
        memcpy(r->participant, m->participant, sizeof r->participant);
    r->interval_id = m->valid_from;
    memcpy(r->nonce, m->nonce, sizeof r->nonce);
}
