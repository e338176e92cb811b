/*
 * OCMF parsing and ECDSA verification (see ocmf.h). Jansson checks the JSON and reads the
 * strings; a small scanner reads the raw text of each reading value so that no value passes
 * through a binary float; OpenSSL verifies.
 */
#define _POSIX_C_SOURCE 200809L
#include "bus/ocmf.h"

#include "common/errbuf.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

const char *ocmf_strerror(int code)
{
    switch (code) {
    case OCMF_OK:
        return "ok";
    case OCMF_E_FORMAT:
        return "not a well-formed OCMF record";
    case OCMF_E_UNSUPPORTED:
        return "an OCMF feature mgx does not accept";
    case OCMF_E_KEY:
        return "the public key does not fit the signature method";
    case OCMF_E_SIGNATURE:
        return "the OCMF signature does not verify";
    case OCMF_E_MISMATCH:
        return "the OCMF record does not certify this reading";
    case OCMF_E_NOMEM:
        return "out of memory";
    default:
        return "unknown OCMF error";
    }
}

/* Signature methods: OCMF's name -> OpenSSL's curve name. */
static const struct {
    const char *sa;
    const char *curve;
} METHODS[] = {
    {"ECDSA-secp256r1-SHA256", "prime256v1"},
    {"ECDSA-secp256k1-SHA256", "secp256k1"},
    {"ECDSA-brainpool256r1-SHA256", "brainpoolP256r1"},
    {"ECDSA-brainpoolP256r1-SHA256", "brainpoolP256r1"}, /* as meters in the field spell it */
    {"ECDSA-secp384r1-SHA256", "secp384r1"},
    {"ECDSA-brainpool384r1-SHA256", "brainpoolP384r1"},
    {"ECDSA-brainpoolP384r1-SHA256", "brainpoolP384r1"},
};

/* ---- small parsers ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), by eras of 400 years. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "2019-08-13T10:03:15,000+0000 I": the specification's fixed layout (ISO 8601 with a comma
 * before the milliseconds, the offset without a colon, a space and the time status). */
static bool parse_tm(const char *s, int64_t *ts_ms, char *status)
{
    if (strlen(s) != 30 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != ',' || (s[23] != '+' && s[23] != '-') || s[28] != ' ' ||
        !strchr("UISR", s[29]))
        return false;
    int64_t y, mo, d, h, mi, se, ms, oh, om;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se) ||
        !digits(s + 20, 3, &ms) || !digits(s + 24, 2, &oh) || !digits(s + 26, 2, &om))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || oh > 23 ||
        om > 59)
        return false;
    int64_t off_s = (oh * 60 + om) * 60 * (s[23] == '-' ? -1 : 1);
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off_s;
    *ts_ms = secs * 1000 + ms;
    *status = s[29];
    return true;
}

/* A decimal "123.4567" (leading and trailing blanks allowed) in units of 10^-scale: digits
 * beyond scale are truncated. Negative values, exponents and more than 12 integer digits are
 * refused (a counter never needs them). */
static bool parse_decimal(const char *s, size_t n, int scale, int64_t *out)
{
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    while (n > i && s[n - 1] == ' ')
        n--;
    int64_t ip = 0, fp = 0;
    int id = 0, fd = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (++id > 12)
            return false;
        ip = ip * 10 + (s[i++] - '0');
    }
    if (id == 0)
        return false;
    if (i < n && s[i] == '.') {
        i++;
        if (i == n)
            return false;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (fd < scale) {
                fp = fp * 10 + (s[i] - '0');
                fd++;
            }
            i++;
        }
    }
    if (i != n)
        return false;
    while (fd < scale) {
        fp *= 10;
        fd++;
    }
    int64_t unit = 1;
    for (int k = 0; k < scale; k++)
        unit *= 10;
    *out = ip * unit + fp;
    return true;
}

/* OBIS "A-B:C.D.E[*F|.F]": import when C is 1 and D is 8, export when C is 2 and D is 8. */
static ocmf_register obis_register(const char *ri)
{
    const char *c = strchr(ri, ':');
    if (!c)
        return OCMF_REG_OTHER;
    c++;
    int64_t cv = 0, dv = 0;
    int nc = 0, nd = 0;
    while (*c >= '0' && *c <= '9' && nc < 4) {
        cv = cv * 10 + (*c++ - '0');
        nc++;
    }
    if (nc == 0 || *c++ != '.')
        return OCMF_REG_OTHER;
    while (*c >= '0' && *c <= '9' && nd < 4) {
        dv = dv * 10 + (*c++ - '0');
        nd++;
    }
    if (nd == 0 || *c != '.' || dv != 8)
        return OCMF_REG_OTHER;
    return cv == 1 ? OCMF_REG_IMPORT : cv == 2 ? OCMF_REG_EXPORT : OCMF_REG_OTHER;
}

/* ---- the raw text of each RD[i].RV ---- */

typedef struct {
    size_t off[OCMF_READINGS_MAX], len[OCMF_READINGS_MAX];
    size_t n;
    bool overflow;
} rv_texts;

/* Skips a JSON string starting at p[i] == '"'; returns the index after the closing quote.
 * The JSON is known to be valid (jansson read it first). */
static size_t skip_string(const char *p, size_t n, size_t i, bool *escaped)
{
    *escaped = false;
    for (i++; i < n; i++) {
        if (p[i] == '\\') {
            *escaped = true;
            i++;
        } else if (p[i] == '"') {
            return i + 1;
        }
    }
    return n;
}

static size_t skip_ws(const char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    return i;
}

/* Finds, in order, the value text of every "RV" key of an object directly inside the
 * top-level "RD" array (depth 3). A string value gives its content, a number its text. */
static void scan_rv(const char *p, size_t n, rv_texts *t)
{
    int depth = 0, rd_depth = -1;
    for (size_t i = 0; i < n;) {
        char c = p[i];
        if (c == '{' || c == '[') {
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            if (depth == rd_depth)
                rd_depth = -1; /* the RD array closes */
            depth--;
            i++;
        } else if (c == '"') {
            bool esc;
            size_t start = i + 1, end = skip_string(p, n, i, &esc);
            size_t k = skip_ws(p, n, end);
            bool is_key = k < n && p[k] == ':';
            size_t klen = end - start - 1;
            i = end;
            if (!is_key)
                continue;
            size_t v = skip_ws(p, n, k + 1);
            if (depth == 1 && klen == 2 && !esc && memcmp(p + start, "RD", 2) == 0 && v < n &&
                p[v] == '[') {
                rd_depth = 2;
            } else if (depth == 3 && rd_depth == 2 && klen == 2 && !esc &&
                       memcmp(p + start, "RV", 2) == 0 && v < n) {
                if (t->n == OCMF_READINGS_MAX) {
                    t->overflow = true;
                    return;
                }
                if (p[v] == '"') {
                    bool e2;
                    size_t ve = skip_string(p, n, v, &e2);
                    t->off[t->n] = v + 1;
                    t->len[t->n] = e2 ? 0 : ve - v - 2; /* escapes: refused later */
                    i = ve;
                } else {
                    size_t ve = v;
                    while (ve < n && strchr("+-0123456789.eE", p[ve]))
                        ve++;
                    t->off[t->n] = v;
                    t->len[t->n] = ve - v;
                    i = ve;
                }
                t->n++;
            }
        } else {
            i++;
        }
    }
}

/* ---- parse ---- */

static int copy_str(json_t *o, const char *key, char *dst, size_t cap, bool required, char *why,
                    size_t whylen)
{
    json_t *v = json_object_get(o, key);
    dst[0] = '\0';
    if (!v)
        return required ? ctl_fail(OCMF_E_FORMAT, why, whylen, "%s: missing", key) : OCMF_OK;
    if (!json_is_string(v))
        return ctl_fail(OCMF_E_FORMAT, why, whylen, "%s: not a string", key);
    if (json_string_length(v) >= cap || memchr(json_string_value(v), 0, json_string_length(v)))
        return ctl_fail(OCMF_E_FORMAT, why, whylen, "%s: longer than %zu bytes", key, cap - 1);
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return OCMF_OK;
}

static int parse_reading(json_t *e, const char *text, size_t toff, size_t tlen, size_t idx,
                         ocmf_reading *r, char *why, size_t whylen)
{
    char tm[40], ru[8];
    int rc;
    if (!json_is_object(e))
        return ctl_fail(OCMF_E_FORMAT, why, whylen, "RD[%zu]: not an object", idx);
    if ((rc = copy_str(e, "TM", tm, sizeof tm, true, why, whylen)) ||
        (rc = copy_str(e, "RU", ru, sizeof ru, true, why, whylen)) ||
        (rc = copy_str(e, "RI", r->ri, sizeof r->ri, false, why, whylen)) ||
        (rc = copy_str(e, "ST", r->status, sizeof r->status, true, why, whylen)) ||
        (rc = copy_str(e, "TX", r->tx, sizeof r->tx, false, why, whylen)))
        return rc;
    if (!parse_tm(tm, &r->ts_ms, &r->time_status))
        return ctl_fail(OCMF_E_FORMAT, why, whylen, "RD[%zu].TM: not \"YYYY-MM-DDThh:mm:ss,fff+zzzz S\"",
                        idx);
    int scale;
    if (strcmp(ru, "kWh") == 0)
        scale = 6; /* kWh to milli-Wh */
    else if (strcmp(ru, "Wh") == 0)
        scale = 3;
    else
        return ctl_fail(OCMF_E_UNSUPPORTED, why, whylen, "RD[%zu].RU: unit '%s' is not kWh or Wh",
                        idx, ru);
    json_t *rv = json_object_get(e, "RV");
    if (!rv || !(json_is_number(rv) || json_is_string(rv)))
        return ctl_fail(OCMF_E_FORMAT, why, whylen, "RD[%zu].RV: missing or not a number", idx);
    if (tlen == 0 || !parse_decimal(text + toff, tlen, scale, &r->value_mwh))
        return ctl_fail(OCMF_E_FORMAT, why, whylen,
                        "RD[%zu].RV: not a plain non-negative decimal", idx);
    r->reg = obis_register(r->ri);
    return OCMF_OK;
}

int ocmf_parse(const char *text, size_t len, ocmf_record *out, char *why, size_t whylen)
{
    if (!text || !out)
        return ctl_fail(OCMF_E_FORMAT, why, whylen, "no input");
    memset(out, 0, sizeof *out);
    if (len > OCMF_TEXT_MAX)
        return ctl_fail(OCMF_E_FORMAT, why, whylen, "longer than %d bytes", OCMF_TEXT_MAX);
    if (len < 5 || memcmp(text, "OCMF|", 5) != 0)
        return ctl_fail(OCMF_E_FORMAT, why, whylen, "does not start with \"OCMF|\"");
    /* the signature section holds no '|'; the payload's strings may */
    const char *bar = NULL;
    for (size_t i = len; i > 5; i--)
        if (text[i - 1] == '|') {
            bar = text + i - 1;
            break;
        }
    if (!bar)
        return ctl_fail(OCMF_E_FORMAT, why, whylen, "no signature section");
    out->payload_off = 5;
    out->payload_len = (size_t)(bar - text) - 5;
    const char *ptext = text + 5;
    size_t slen = len - (size_t)(bar - text) - 1;

    json_error_t err;
    json_t *p = json_loadb(ptext, out->payload_len, JSON_REJECT_DUPLICATES, &err);
    json_t *s = json_loadb(bar + 1, slen, JSON_REJECT_DUPLICATES, &err);
    int rc = OCMF_OK;
    if (!p || !json_is_object(p) || !s || !json_is_object(s)) {
        rc = ctl_fail(OCMF_E_FORMAT, why, whylen, "the %s section is not a JSON object",
                      !p || !json_is_object(p) ? "payload" : "signature");
        goto out;
    }
    if ((rc = copy_str(p, "MS", out->meter_serial, sizeof out->meter_serial, false, why,
                       whylen)) ||
        (rc = copy_str(p, "GS", out->gateway_serial, sizeof out->gateway_serial, false, why,
                       whylen)))
        goto out;
    json_t *rd = json_object_get(p, "RD");
    if (!json_is_array(rd) || json_array_size(rd) == 0) {
        rc = ctl_fail(OCMF_E_FORMAT, why, whylen, "RD: missing, empty or not an array");
        goto out;
    }
    if (json_array_size(rd) > OCMF_READINGS_MAX) {
        rc = ctl_fail(OCMF_E_FORMAT, why, whylen, "RD: more than %d readings", OCMF_READINGS_MAX);
        goto out;
    }
    rv_texts t = {.n = 0};
    scan_rv(ptext, out->payload_len, &t);
    if (t.overflow || t.n != json_array_size(rd)) {
        rc = ctl_fail(OCMF_E_FORMAT, why, whylen, "RD: every reading needs exactly one RV");
        goto out;
    }
    out->n = json_array_size(rd);
    for (size_t i = 0; i < out->n; i++)
        if ((rc = parse_reading(json_array_get(rd, i), ptext, t.off[i], t.len[i], i, &out->rd[i],
                                why, whylen)))
            goto out;

    /* the signature section */
    char sa[48], se[16], sm[32], sd[2 * OCMF_SIG_MAX + 1];
    if ((rc = copy_str(s, "SA", sa, sizeof sa, false, why, whylen)) ||
        (rc = copy_str(s, "SE", se, sizeof se, false, why, whylen)) ||
        (rc = copy_str(s, "SM", sm, sizeof sm, false, why, whylen)) ||
        (rc = copy_str(s, "SD", sd, sizeof sd, true, why, whylen)))
        goto out;
    if (!sa[0])
        snprintf(sa, sizeof sa, "%s", METHODS[0].sa); /* the default since OCMF 0.4 */
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0] && !out->curve[0]; i++)
        if (strcmp(sa, METHODS[i].sa) == 0)
            snprintf(out->curve, sizeof out->curve, "%s", METHODS[i].curve);
    if (!out->curve[0]) {
        rc = ctl_fail(OCMF_E_UNSUPPORTED, why, whylen, "SA: signature method '%s' not accepted", sa);
        goto out;
    }
    if ((se[0] && strcmp(se, "hex") != 0) || (sm[0] && strcmp(sm, "application/x-der") != 0)) {
        rc = ctl_fail(OCMF_E_UNSUPPORTED, why, whylen,
                      "SE/SM: only hex-encoded DER signatures are accepted");
        goto out;
    }
    size_t n = strlen(sd);
    if (n == 0 || n % 2) {
        rc = ctl_fail(OCMF_E_FORMAT, why, whylen, "SD: not an even number of hex digits");
        goto out;
    }
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(sd[i]), lo = hexval(sd[i + 1]);
        if (hi < 0 || lo < 0) {
            rc = ctl_fail(OCMF_E_FORMAT, why, whylen, "SD: not hex");
            goto out;
        }
        out->sig[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    out->sig_len = n / 2;
out:
    json_decref(p);
    json_decref(s);
    return rc;
}

/* ---- verify ---- */

int ocmf_verify(const ocmf_record *r, const char *text, size_t len, const uint8_t *key,
                size_t key_len, char *why, size_t whylen)
{
    if (!r || !text || !key || r->payload_off + r->payload_len > len || key_len > 1024)
        return ctl_fail(OCMF_E_KEY, why, whylen, "no record or key");
    const unsigned char *kp = key;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &kp, (long)key_len);
    EVP_MD_CTX *md = NULL;
    int rc;
    char group[64] = "";
    if (!pk || kp != key + key_len || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
        !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        NULL)) {
        rc = ctl_fail(OCMF_E_KEY, why, whylen, "not a DER EC public key");
        goto out;
    }
    if (strcmp(group, r->curve) != 0) {
        rc = ctl_fail(OCMF_E_KEY, why, whylen, "the key is on %s, the signature method on %s",
                      group, r->curve);
        goto out;
    }
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) != 1) {
        rc = ctl_fail(OCMF_E_NOMEM, why, whylen, "OpenSSL could not set up the verification");
        goto out;
    }
    rc = EVP_DigestVerify(md, r->sig, r->sig_len, (const unsigned char *)text + r->payload_off,
                          r->payload_len) == 1
             ? OCMF_OK
             : ctl_fail(OCMF_E_SIGNATURE, why, whylen, "the signature does not verify");
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return rc;
}

int ocmf_key_check(const uint8_t *key, size_t len, char *curve, size_t cap, char *why,
                   size_t whylen)
{
    if (!key || !curve || cap == 0 || len > 1024)
        return ctl_fail(OCMF_E_KEY, why, whylen, "no key");
    const unsigned char *kp = key;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &kp, (long)len);
    char group[64] = "";
    int rc = OCMF_E_KEY;
    if (!pk || kp != key + len || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
        !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        NULL)) {
        ctl_errf(why, whylen, "not a DER EC public key (SubjectPublicKeyInfo)");
        goto out;
    }
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
        if (strcmp(group, METHODS[i].curve) == 0)
            rc = OCMF_OK;
    if (rc != OCMF_OK || strlen(group) >= cap) {
        rc = ctl_fail(OCMF_E_KEY, why, whylen, "curve %s is not one OCMF signatures use here",
                      group);
        goto out;
    }
    memcpy(curve, group, strlen(group) + 1);
out:
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return rc;
}

/* The last reading of register reg, or NULL. */
static const ocmf_reading *last_of(const ocmf_record *r, ocmf_register reg)
{
    for (size_t i = r->n; i > 0; i--)
        if (r->rd[i - 1].reg == reg)
            return &r->rd[i - 1];
    return NULL;
}

int ocmf_certifies(const ocmf_record *r, const mtr_sample *s, char *why, size_t whylen)
{
    const ocmf_reading *imp = last_of(r, OCMF_REG_IMPORT), *exp = last_of(r, OCMF_REG_EXPORT);
    if (!imp)
        return ctl_fail(OCMF_E_MISMATCH, why, whylen, "no import register (x-x:1.8.x) reading");
    if (strcmp(imp->status, "G") != 0 || (exp && strcmp(exp->status, "G") != 0))
        return ctl_fail(OCMF_E_MISMATCH, why, whylen, "the meter flags its reading (ST not G)");
    if (imp->ts_ms != s->ts_ms)
        return ctl_fail(OCMF_E_MISMATCH, why, whylen, "time %lld ms, the meter signed %lld ms",
                        (long long)s->ts_ms, (long long)imp->ts_ms);
    if (imp->value_mwh / 1000 != s->import_wh)
        return ctl_fail(OCMF_E_MISMATCH, why, whylen, "import %lld Wh, the meter signed %lld Wh",
                        (long long)s->import_wh, (long long)(imp->value_mwh / 1000));
    int64_t exp_wh = exp ? exp->value_mwh / 1000 : 0;
    if (exp_wh != s->export_wh)
        return ctl_fail(OCMF_E_MISMATCH, why, whylen, "export %lld Wh, the meter signed %lld Wh%s",
                        (long long)s->export_wh, (long long)exp_wh,
                        exp ? "" : " (it has no export register)");
    return OCMF_OK;
}

int ocmf_to_sample(const ocmf_record *r, const char *meter_id, mtr_sample *out)
{
    const ocmf_reading *imp = last_of(r, OCMF_REG_IMPORT), *exp = last_of(r, OCMF_REG_EXPORT);
    if (!imp || !meter_id || strlen(meter_id) >= MTR_ID_MAX)
        return OCMF_E_FORMAT;
    memset(out, 0, sizeof *out);
    snprintf(out->meter_id, sizeof out->meter_id, "%s", meter_id);
    out->ts_ms = imp->ts_ms;
    out->import_wh = imp->value_mwh / 1000;
    out->export_wh = exp ? exp->value_mwh / 1000 : 0;
    out->soc_permille = -1;
    /* a status other than G is the meter flagging its own reading: published flagged (as a
     * reading the device could not give), so it is never settled as good */
    out->quality = (strcmp(imp->status, "G") == 0 && (!exp || strcmp(exp->status, "G") == 0))
                       ? MTR_Q_GOOD
                       : MTR_Q_COMM;
    return OCMF_OK;
}
