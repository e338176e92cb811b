/*
 * Signed readings (see reading_sig.h): the version 1 canonical encoding, Ed25519 by libsodium,
 * and the "sig" field of the state JSON.
 */
#define _POSIX_C_SOURCE 200809L
#include "bus/reading_sig.h"

#include "bus/bus.h"
#include "bus/payload.h"
#include "common/errbuf.h"

#include <jansson.h>
#include <sodium.h>
#include <string.h>

static const uint8_t TAG[12] = {'M', 'G', 'X', '-', 'R', 'E', 'A', 'D', 'I', 'N', 'G', 0};

const char *bus_tier_name(int tier)
{
    switch (tier) {
    case BUS_TIER_UNSIGNED:
        return "unsigned";
    case BUS_TIER_GATEWAY:
        return "gateway";
    case BUS_TIER_CERTIFIED:
        return "certified";
    default:
        return "?";
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xFFu);
        v >>= 8;
    }
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xFFu);
        v >>= 8;
    }
}

/* Appends a length-prefixed id; 0 or -1 when the id breaks the rule. */
static int put_id(uint8_t *out, size_t *n, const char *id)
{
    if (!id || !bus_id_valid(id))
        return -1;
    size_t l = strlen(id); /* 1..63 by the id rule */
    out[(*n)++] = (uint8_t)l;
    memcpy(out + *n, id, l);
    *n += l;
    return 0;
}

int bus_reading_canon(const mtr_sample *s, const char *participant, uint8_t *out, size_t cap)
{
    if (!s || !out || memchr(s->meter_id, '\0', sizeof s->meter_id) == NULL)
        return BUS_E_INVAL;
    if (cap < BUS_RSIG_CANON_MAX)
        return BUS_E_TOOLONG; /* the bound is small: callers pass a full-size buffer */
    size_t n = 0;
    memcpy(out, TAG, sizeof TAG);
    n += sizeof TAG;
    out[n++] = BUS_RSIG_VERSION;
    if (put_id(out, &n, s->meter_id) || put_id(out, &n, participant))
        return BUS_E_INVAL;
    put_u64(out + n, (uint64_t)s->ts_ms);
    put_u64(out + n + 8, (uint64_t)s->power_w);
    put_u64(out + n + 16, (uint64_t)s->import_wh);
    put_u64(out + n + 24, (uint64_t)s->export_wh);
    put_u32(out + n + 32, (uint32_t)s->soc_permille);
    put_u32(out + n + 36, s->quality);
    n += 40;
    return (int)n;
}

int bus_reading_sign(const mtr_sample *s, const char *participant,
                     const uint8_t sk[BUS_RSIG_SK_BYTES], uint8_t sig[BUS_RSIG_BYTES])
{
    uint8_t m[BUS_RSIG_CANON_MAX];
    int n = bus_reading_canon(s, participant, m, sizeof m);
    if (n < 0 || !sk || !sig)
        return BUS_E_INVAL;
    crypto_sign_detached(sig, NULL, m, (unsigned long long)n, sk);
    return BUS_OK;
}

int bus_reading_verify(const mtr_sample *s, const char *participant,
                       const uint8_t pk[BUS_RSIG_PK_BYTES], const uint8_t sig[BUS_RSIG_BYTES])
{
    uint8_t m[BUS_RSIG_CANON_MAX];
    int n = bus_reading_canon(s, participant, m, sizeof m);
    if (n < 0 || !pk || !sig)
        return BUS_E_INVAL;
    return crypto_sign_verify_detached(sig, m, (unsigned long long)n, pk) == 0 ? BUS_OK
                                                                              : BUS_E_PAYLOAD;
}

int bus_state_encode_signed(const mtr_sample *s, const char *participant,
                            const uint8_t sk[BUS_RSIG_SK_BYTES], char *buf, size_t len)
{
    uint8_t sig[BUS_RSIG_BYTES];
    int rc = bus_reading_sign(s, participant, sk, sig);
    if (rc != BUS_OK)
        return rc;
    int n = bus_state_encode(s, buf, len);
    if (n < 2)
        return n < 0 ? n : BUS_E_INVAL;
    static const char KEY[] = ",\"sig\":\"";
    size_t add = sizeof KEY - 1 + 2 * BUS_RSIG_BYTES + 2; /* key, hex, '"' and '}' */
    if ((size_t)n - 1 + add + 1 > len) {
        buf[0] = '\0';
        return BUS_E_TOOLONG;
    }
    size_t at = (size_t)n - 1; /* the closing brace */
    memcpy(buf + at, KEY, sizeof KEY - 1);
    at += sizeof KEY - 1;
    sodium_bin2hex(buf + at, 2 * BUS_RSIG_BYTES + 1, sig, sizeof sig);
    at += 2 * BUS_RSIG_BYTES;
    buf[at++] = '"';
    buf[at++] = '}';
    buf[at] = '\0';
    return (int)at;
}

int bus_state_sig(const char *json, size_t len, uint8_t sig[BUS_RSIG_BYTES], int *present,
                  char *why, size_t whylen)
{
    *present = 0;
    if (!json || len > BUS_JSON_MAX)
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "no payload or too long");
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "not a JSON object");
    }
    int rc = BUS_OK;
    json_t *v = json_object_get(root, "sig");
    if (v) {
        size_t bin = 0;
        const char *hex = json_string_value(v);
        if (!json_is_string(v) || json_string_length(v) != 2 * BUS_RSIG_BYTES ||
            sodium_hex2bin(sig, BUS_RSIG_BYTES, hex, 2 * BUS_RSIG_BYTES, NULL, &bin, NULL) != 0 ||
            bin != BUS_RSIG_BYTES)
            rc = ctl_fail(BUS_E_PAYLOAD, why, whylen, "sig: not %d hex digits",
                          2 * BUS_RSIG_BYTES);
        else
            *present = 1;
    }
    json_decref(root);
    return rc;
}

int bus_state_ocmf(const char *json, size_t len, char *out, size_t cap, size_t *out_len,
                   int *present, char *why, size_t whylen)
{
    *present = 0;
    if (!json || len > BUS_JSON_MAX || !out || cap == 0)
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "no payload or too long");
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "not a JSON object");
    }
    int rc = BUS_OK;
    json_t *v = json_object_get(root, "ocmf");
    if (v) {
        size_t n = json_string_length(v);
        if (!json_is_string(v) || n >= cap || memchr(json_string_value(v), 0, n)) {
            rc = ctl_fail(BUS_E_PAYLOAD, why, whylen, "ocmf: not a string of under %zu bytes",
                          cap);
        } else {
            memcpy(out, json_string_value(v), n + 1);
            *out_len = n;
            *present = 1;
        }
    }
    json_decref(root);
    return rc;
}

int bus_state_encode_ocmf(const mtr_sample *s, const char *ocmf, size_t ocmf_len, char *buf,
                          size_t len)
{
    if (!ocmf || ocmf_len > 8192 || memchr(ocmf, 0, ocmf_len))
        return BUS_E_INVAL;
    int n = bus_state_encode(s, buf, len);
    if (n < 0)
        return n;
    json_t *j = json_loadb(buf, (size_t)n, 0, NULL);
    if (!j || json_object_set_new(j, "ocmf", json_stringn(ocmf, ocmf_len)) != 0) {
        json_decref(j);
        buf[0] = '\0';
        return BUS_E_INVAL; /* not UTF-8, or out of memory */
    }
    size_t m = json_dumpb(j, buf, len, JSON_COMPACT);
    json_decref(j);
    if (m == 0 || m >= len) {
        buf[0] = '\0';
        return BUS_E_TOOLONG;
    }
    buf[m] = '\0';
    return (int)m;
}
