/*
 * Receipts: the controller's answer to each order, and their JSON form. Declared in
 * order_msg.h next to the reason codes they carry; kept apart from the order encoding because
 * nothing here is signed.
 */
#include "orders/order_msg.h"

#include "common/errbuf.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Copies src into dst (cap > 0 bytes, truncating), with every byte outside printable ASCII
 * replaced by '?': a detail may quote the sender's bytes, and a receipt is ASCII JSON. */
static void copy_printable(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[i] = '\0';
}

void ctl_receipt_for(ctl_receipt *r, const ctl_order_msg *m, int reason, const char *detail,
                     int64_t controller_time_ms)
{
    if (!r)
        return;
    memset(r, 0, sizeof *r);
    if (m) {
        if (ctl_id_valid(m->participant))
            memcpy(r->participant, m->participant, sizeof r->participant);
        r->interval_id = m->interval_id;
        memcpy(r->nonce, m->nonce, sizeof r->nonce);
    }
    r->reason = reason;
    r->controller_time_ms = controller_time_ms;
    if (detail)
        copy_printable(r->detail, sizeof r->detail, detail);
}

/* Appends printable ASCII s as a JSON string body (escaping " and \). */
static size_t put_escaped(char *out, size_t cap, size_t n, const char *s)
{
    for (; *s && n + 2 < cap; s++) {
        if (*s == '"' || *s == '\\')
            out[n++] = '\\';
        out[n++] = *s;
    }
    return n;
}

int ctl_receipt_to_json(const ctl_receipt *r, char *out, size_t cap, size_t *len)
{
    const char *name = r ? ctl_reason_name(r->reason) : NULL;
    if (!name || (r->participant[0] && !ctl_id_valid(r->participant)))
        return CTL_R_MALFORMED;
    if (!out || cap < CTL_RECEIPT_JSON_MAX)
        return CTL_R_INTERNAL; /* a fixed bound keeps the escaping loop simple */
    char nonce[2 * CTL_ORDER_NONCE_BYTES + 1];
    ctl_nonce_hex(r->nonce, nonce);
    int w = snprintf(out, cap,
                     "{\"v\":1,\"participant\":\"%s\",\"interval_id\":%lld,\"nonce\":\"%s\","
                     "\"status\":\"%s\",\"reason\":\"%s\",\"detail\":\"",
                     r->participant, (long long)r->interval_id, nonce,
                     ctl_reason_is_accept(r->reason) ? "accepted" : "rejected", name);
    if (w < 0 || (size_t)w >= cap)
        return CTL_R_INTERNAL;
    char detail[CTL_DETAIL_MAX];
    copy_printable(detail, sizeof detail, r->detail);
    size_t n = put_escaped(out, cap, (size_t)w, detail);
    w = snprintf(out + n, cap - n, "\",\"controller_time_ms\":%lld}",
                 (long long)r->controller_time_ms);
    if (w < 0 || (size_t)w >= cap - n)
        return CTL_R_INTERNAL;
    if (len)
        *len = n + (size_t)w;
    return CTL_R_OK;
}

int ctl_receipt_from_json(const char *json, size_t len, ctl_receipt *r, char *detail, size_t cap)
{
    if (detail && cap)
        detail[0] = '\0';
    if (!json || !r)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "no input");
    memset(r, 0, sizeof *r);
    if (len > CTL_RECEIPT_JSON_MAX)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "receipt longer than %d bytes",
                        CTL_RECEIPT_JSON_MAX);
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return ctl_fail(CTL_R_MALFORMED, detail, cap, "not JSON: %.80s", err.text);
    int rc = CTL_R_MALFORMED;
    json_int_t v = 0, interval = 0, t = 0;
    const char *part = NULL, *nonce = NULL, *status = NULL, *reason = NULL, *text = NULL;
    size_t nkeys = json_is_object(root) ? json_object_size(root) : 0;
    if (nkeys != 8 ||
        json_unpack_ex(root, &err, JSON_STRICT, "{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:I}", "v",
                       &v, "participant", &part, "interval_id", &interval, "nonce", &nonce,
                       "status", &status, "reason", &reason, "detail", &text,
                       "controller_time_ms", &t) != 0) {
        ctl_errf(detail, cap, "not a receipt object: %.80s", nkeys == 8 ? err.text : "field count");
        goto out;
    }
    int code = ctl_reason_parse(reason);
    if (v != 1) {
        ctl_errf(detail, cap, "v: unsupported version");
        goto out;
    }
    if (part[0] && !ctl_id_valid(part)) {
        ctl_errf(detail, cap, "participant: not a valid id");
        goto out;
    }
    if (code < 0 || strcmp(status, ctl_reason_is_accept(code) ? "accepted" : "rejected") != 0) {
        ctl_errf(detail, cap, "status/reason: unknown or inconsistent");
        goto out;
    }
    if (strlen(nonce) != 2 * CTL_ORDER_NONCE_BYTES) {
        ctl_errf(detail, cap, "nonce: must be %d hex digits", 2 * CTL_ORDER_NONCE_BYTES);
        goto out;
    }
    uint8_t raw[CTL_ORDER_NONCE_BYTES];
    if (ctl_nonce_from_hex(nonce, strlen(nonce), raw)) {
        ctl_errf(detail, cap, "nonce: must be lower-case hex");
        goto out;
    }
    ctl_receipt_for(r, NULL, code, text, (int64_t)t);
    snprintf(r->participant, sizeof r->participant, "%s", part);
    r->interval_id = (int64_t)interval;
    memcpy(r->nonce, raw, sizeof raw);
    rc = CTL_R_OK;
out:
    json_decref(root);
    return rc;
}
