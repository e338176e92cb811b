/*
 * Modbus TCP request framing and replies for the simulated meters (see mbap.h). Pure: bytes in,
 * bytes out, register values through a callback.
 */
#include "mbap.h"

#include <string.h>

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

int mtr__mbap_frame_size(const uint8_t *buf, size_t len)
{
    if (len < 6)
        return 0;
    unsigned length = be16(buf + 4); /* unit id + PDU */
    if (be16(buf + 2) != 0 || length < 2 || length > MTR__MBAP_MAX - 6)
        return -1;
    return len >= 6 + length ? (int)(6 + length) : 0;
}

/* Header of a reply: the request's transaction id and unit, protocol 0, pdu_len after it. */
static size_t header(const uint8_t *req, size_t pdu_len, uint8_t *out)
{
    memcpy(out, req, 4);
    put16(out + 4, (unsigned)pdu_len + 1);
    out[6] = req[6];
    return MTR__MBAP_HEADER + pdu_len;
}

static size_t exception(const uint8_t *req, uint8_t fc, int code, uint8_t *out)
{
    out[7] = (uint8_t)(fc | 0x80);
    out[8] = (uint8_t)code;
    return header(req, 2, out);
}

size_t mtr__mbap_reply(const uint8_t *req, size_t req_len, mtr__reg_read_fn read, void *ctx,
                       uint8_t *out)
{
    uint8_t fc = req[7];
    if (fc != 3 && fc != 4)
        return exception(req, fc, MTR__EX_ILLEGAL_FUNCTION, out);
    if (req_len != MTR__MBAP_HEADER + 5)
        return exception(req, fc, MTR__EX_ILLEGAL_VALUE, out);
    uint16_t addr = be16(req + 8), count = be16(req + 10);
    if (count < 1 || count > MTR__READ_MAX)
        return exception(req, fc, MTR__EX_ILLEGAL_VALUE, out);
    if ((unsigned)addr + count > 0x10000u)
        return exception(req, fc, MTR__EX_ILLEGAL_ADDRESS, out);
    uint16_t regs[MTR__READ_MAX];
    int ex = read(ctx, req[6], fc, addr, count, regs);
    if (ex)
        return exception(req, fc, ex, out);
    out[7] = fc;
    out[8] = (uint8_t)(2 * count);
    for (unsigned i = 0; i < count; i++)
        put16(out + 9 + 2 * i, regs[i]);
    return header(req, 2 + 2 * (size_t)count, out);
}
