/*
 * JSON encode/decode of the meter topics' bodies (see payload.h). Jansson builds and parses;
 * the checks here are the contract between the meter daemon and its consumers.
 */
#define _POSIX_C_SOURCE 200809L
#include "bus/payload.h"

#include "common/errbuf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int dump(json_t *j, char *buf, size_t len)
{
    if (!j)
        return BUS_E_NOMEM;
    size_t n = json_dumpb(j, buf, len, JSON_COMPACT);
    json_decref(j);
    if (n == 0)
        return BUS_E_NOMEM;
    if (n >= len) {
        buf[0] = '\0'; /* json_dumpb wrote a truncated prefix */
        return BUS_E_TOOLONG;
    }
    buf[n] = '\0';
    return (int)n;
}

static bool in(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

/* Counters may read negative only when the reading says so (MTR_Q_NEGATIVE). */
static int64_t counter_min(uint32_t quality)
{
    return (quality & MTR_Q_NEGATIVE) ? -BUS_COUNTER_MAX_WH : 0;
}

int bus_state_encode(const mtr_sample *s, char *buf, size_t len)
{
    if (!s || !buf || len == 0)
        return BUS_E_INVAL;
    buf[0] = '\0';
    int64_t cmin = counter_min(s->quality);
    if (!bus_id_valid(s->meter_id) || !in(s->ts_ms, BUS_TS_MIN_MS, BUS_TS_MAX_MS) ||
        !in(s->power_w, -BUS_POWER_MAX_W, BUS_POWER_MAX_W) ||
        !in(s->import_wh, cmin, BUS_COUNTER_MAX_WH) ||
        !in(s->export_wh, cmin, BUS_COUNTER_MAX_WH) || s->soc_permille < -1 ||
        s->soc_permille > 1000)
        return BUS_E_INVAL;
    char flags[256];
    if (mtr_quality_str(s->quality, flags, sizeof flags) < 0)
        return BUS_E_INVAL;
    json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "meter_id", s->meter_id, "ts",
                          (json_int_t)s->ts_ms, "power_w", (json_int_t)s->power_w, "import_wh",
                          (json_int_t)s->import_wh, "export_wh", (json_int_t)s->export_wh,
                          "quality", (json_int_t)s->quality, "flags", flags);
    if (j && s->soc_permille >= 0 &&
        json_object_set_new(j, "soc_permille", json_integer(s->soc_permille)) != 0) {
        json_decref(j);
        return BUS_E_NOMEM;
    }
    return dump(j, buf, len);
}

static int get_int(json_t *o, const char *key, int64_t lo, int64_t hi, bool required,
                   int64_t *out, char *why, size_t whylen)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (!required)
            return BUS_OK;
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "%s: missing", key);
    }
    if (!json_is_integer(v))
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "%s: not an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "%s: %lld out of range [%lld, %lld]", key,
                        (long long)x, (long long)lo, (long long)hi);
    *out = (int64_t)x;
    return BUS_OK;
}

static int get_str(json_t *o, const char *key, char *dst, size_t cap, char *why, size_t whylen)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "%s: missing", key);
    if (!json_is_string(v))
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "%s: not a string", key);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n >= cap)
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "%s: longer than %zu bytes", key, cap - 1);
    if (memchr(s, '\0', n))
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "%s: contains a NUL byte", key);
    memcpy(dst, s, n + 1);
    return BUS_OK;
}

static json_t *load_object(const char *json, size_t len, char *why, size_t whylen, int *rc)
{
    *rc = BUS_E_PAYLOAD;
    if (!json) {
        ctl_errf(why, whylen, "no payload");
        return NULL;
    }
    if (len > BUS_JSON_MAX) {
        ctl_errf(why, whylen, "payload of %zu bytes exceeds %d", len, BUS_JSON_MAX);
        return NULL;
    }
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        ctl_errf(why, whylen, "not JSON: %s at byte %d", err.text, err.position);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        ctl_errf(why, whylen, "not a JSON object");
        return NULL;
    }
    *rc = BUS_OK;
    return root;
}

static int check_id(json_t *root, const char *expect, char id[MTR_ID_MAX], char *why,
                    size_t whylen)
{
    int rc = get_str(root, "meter_id", id, MTR_ID_MAX, why, whylen);
    if (rc != BUS_OK)
        return rc;
    if (!bus_id_valid(id))
        return ctl_fail(BUS_E_PAYLOAD, why, whylen, "meter_id: not 1-63 of [A-Za-z0-9_-]");
    if (expect && strcmp(expect, id) != 0)
        return ctl_fail(BUS_E_PAYLOAD, why, whylen,
                        "meter_id: '%s' does not match the topic's '%s'", id, expect);
    return BUS_OK;
}

int bus_state_decode(const char *json, size_t len, const char *expect_meter_id, mtr_sample *out,
                     char *why, size_t whylen)
{
    int rc;
    json_t *root = load_object(json, len, why, whylen, &rc);
    if (!root)
        return rc;
    mtr_sample s;
    memset(&s, 0, sizeof s);
    int64_t q = 0, ts = 0, p = 0, imp = 0, exp = 0, soc = -1;
    rc = check_id(root, expect_meter_id, s.meter_id, why, whylen);
    if (rc == BUS_OK)
        rc = get_int(root, "ts", BUS_TS_MIN_MS, BUS_TS_MAX_MS, true, &ts, why, whylen);
    if (rc == BUS_OK)
        rc = get_int(root, "quality", 0, UINT32_MAX, true, &q, why, whylen);
    if (rc == BUS_OK)
        rc = get_int(root, "power_w", -BUS_POWER_MAX_W, BUS_POWER_MAX_W, true, &p, why, whylen);
    int64_t cmin = counter_min((uint32_t)q);
    if (rc == BUS_OK)
        rc = get_int(root, "import_wh", cmin, BUS_COUNTER_MAX_WH, true, &imp, why, whylen);
    if (rc == BUS_OK)
        rc = get_int(root, "export_wh", cmin, BUS_COUNTER_MAX_WH, true, &exp, why, whylen);
    if (rc == BUS_OK)
        rc = get_int(root, "soc_permille", 0, 1000, false, &soc, why, whylen);
    json_decref(root);
    if (rc != BUS_OK)
        return rc;
    s.ts_ms = ts;
    s.power_w = p;
    s.import_wh = imp;
    s.export_wh = exp;
    s.soc_permille = (int32_t)soc;
    s.quality = (uint32_t)q;
    if (out)
        *out = s;
    return BUS_OK;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need;
}

/* Copies src (bounded by MTR_TEXT_MAX) into dst, replacing control bytes and invalid UTF-8. */
static void sanitise(const char *src, char dst[MTR_TEXT_MAX])
{
    size_t n = strnlen(src, MTR_TEXT_MAX - 1), o = 0;
    const unsigned char *s = (const unsigned char *)src;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(s + i, n - i);
        if (k == 0 || (k == 1 && (s[i] < 0x20 || s[i] == 0x7F))) {
            dst[o++] = '?';
            i++;
        } else {
            memcpy(dst + o, s + i, k);
            o += k;
            i += k;
        }
    }
    dst[o] = '\0';
}

int bus_meta_encode(const mtr_meta *m, char *buf, size_t len)
{
    if (!m || !buf || len == 0)
        return BUS_E_INVAL;
    buf[0] = '\0';
    if (!bus_id_valid(m->meter_id))
        return BUS_E_INVAL;
    char make[MTR_TEXT_MAX], model[MTR_TEXT_MAX], serial[MTR_TEXT_MAX], profile[MTR_TEXT_MAX];
    sanitise(m->make, make);
    sanitise(m->model, model);
    sanitise(m->serial, serial);
    sanitise(m->profile, profile);
    return dump(json_pack("{s:s, s:s, s:s, s:s, s:s}", "meter_id", m->meter_id, "make", make,
                          "model", model, "serial", serial, "profile", profile),
                buf, len);
}

int bus_meta_decode(const char *json, size_t len, const char *expect_meter_id, mtr_meta *out,
                    char *why, size_t whylen)
{
    int rc;
    json_t *root = load_object(json, len, why, whylen, &rc);
    if (!root)
        return rc;
    mtr_meta m;
    memset(&m, 0, sizeof m);
    rc = check_id(root, expect_meter_id, m.meter_id, why, whylen);
    if (rc == BUS_OK)
        rc = get_str(root, "make", m.make, sizeof m.make, why, whylen);
    if (rc == BUS_OK)
        rc = get_str(root, "model", m.model, sizeof m.model, why, whylen);
    if (rc == BUS_OK)
        rc = get_str(root, "serial", m.serial, sizeof m.serial, why, whylen);
    if (rc == BUS_OK)
        rc = get_str(root, "profile", m.profile, sizeof m.profile, why, whylen);
    json_decref(root);
    if (rc == BUS_OK && out)
        *out = m;
    return rc;
}
