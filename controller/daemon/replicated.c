/*
 * The payloads of the controller's replicated log entries (see replicated.h).
 */
#define _POSIX_C_SOURCE 200809L /* strnlen */

#include "daemon/replicated.h"

#include <stdlib.h>
#include <string.h>

void ctl_rep_buf_free(ctl_rep_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void ctl_rep_buf_reset(ctl_rep_buf *b)
{
    b->len = 0;
    b->count = 0;
}

static int reserve(ctl_rep_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void put_u64(ctl_rep_buf *b, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

static void put_u32(ctl_rep_buf *b, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int ctl_rep_order_add(ctl_rep_buf *b, const char *topic_participant, const char *payload,
                      size_t len, int64_t now_ms)
{
    size_t tl = strlen(topic_participant);
    if (tl > CTL_ID_MAX || len > UINT32_MAX || reserve(b, 8 + 1 + tl + 4 + len) != 0)
        return -1;
    put_u64(b, (uint64_t)now_ms);
    b->p[b->len++] = (uint8_t)tl;
    memcpy(b->p + b->len, topic_participant, tl);
    b->len += tl;
    put_u32(b, (uint32_t)len);
    memcpy(b->p + b->len, payload, len);
    b->len += len;
    b->count++;
    return 0;
}

int ctl_rep_orders_each(const uint8_t *p, size_t len, ctl_rep_order_fn fn, void *ctx)
{
    size_t at = 0;
    while (at < len) {
        if (len - at < 9)
            return -1;
        int64_t now = (int64_t)get_u64(p + at);
        size_t tl = p[at + 8];
        at += 9;
        if (tl > CTL_ID_MAX || len - at < tl + 4)
            return -1;
        char tp[CTL_ID_MAX + 1];
        memcpy(tp, p + at, tl);
        tp[tl] = 0;
        at += tl;
        size_t pl = get_u32(p + at);
        at += 4;
        if (len - at < pl)
            return -1;
        int rc = fn(ctx, tp, (const char *)(p + at), pl, now);
        if (rc)
            return rc;
        at += pl;
    }
    return 0;
}

#define READING_BYTES (1 + MTR_ID_MAX + 8 * 4 + 4 + 4 + 4)

int ctl_rep_readings_encode(ctl_rep_buf *b, const mtr_sample *r, const int *tier, size_t n,
                            int64_t received_ms)
{
    if (n > UINT32_MAX || reserve(b, 12 + n * READING_BYTES) != 0)
        return -1;
    put_u64(b, (uint64_t)received_ms);
    put_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        size_t il = strnlen(r[i].meter_id, MTR_ID_MAX - 1);
        b->p[b->len++] = (uint8_t)il;
        memcpy(b->p + b->len, r[i].meter_id, il);
        b->len += il;
        put_u64(b, (uint64_t)r[i].ts_ms);
        put_u64(b, (uint64_t)r[i].power_w);
        put_u64(b, (uint64_t)r[i].import_wh);
        put_u64(b, (uint64_t)r[i].export_wh);
        put_u32(b, (uint32_t)r[i].soc_permille);
        put_u32(b, r[i].quality);
        put_u32(b, (uint32_t)tier[i]);
    }
    b->count += n;
    return 0;
}

int ctl_rep_readings_decode(const uint8_t *p, size_t len, mtr_sample *r, int *tier, size_t max,
                            size_t *n, int64_t *received_ms)
{
    if (len < 12)
        return -1;
    *received_ms = (int64_t)get_u64(p);
    size_t count = get_u32(p + 8);
    if (count > max)
        return -1;
    size_t at = 12;
    for (size_t i = 0; i < count; i++) {
        if (len - at < 1)
            return -1;
        size_t il = p[at++];
        if (il >= MTR_ID_MAX || len - at < il + 8 * 4 + 12)
            return -1;
        memset(&r[i], 0, sizeof r[i]);
        memcpy(r[i].meter_id, p + at, il);
        at += il;
        r[i].ts_ms = (int64_t)get_u64(p + at);
        r[i].power_w = (int64_t)get_u64(p + at + 8);
        r[i].import_wh = (int64_t)get_u64(p + at + 16);
        r[i].export_wh = (int64_t)get_u64(p + at + 24);
        r[i].soc_permille = (int32_t)get_u32(p + at + 32);
        r[i].quality = get_u32(p + at + 36);
        tier[i] = (int)(int32_t)get_u32(p + at + 40);
        at += 44;
    }
    if (at != len)
        return -1;
    *n = count;
    return 0;
}

void ctl_rep_clear_encode(uint8_t out[16], int64_t interval_id, int64_t now_ms)
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)((uint64_t)interval_id >> (56 - 8 * i));
        out[8 + i] = (uint8_t)((uint64_t)now_ms >> (56 - 8 * i));
    }
}

int ctl_rep_clear_decode(const uint8_t *p, size_t len, int64_t *interval_id, int64_t *now_ms)
{
    if (len != 16)
        return -1;
    *interval_id = (int64_t)get_u64(p);
    *now_ms = (int64_t)get_u64(p + 8);
    return 0;
}
