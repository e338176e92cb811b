/*
 * Modbus TCP framing (see mbap.h): the simulated meters' requests and replies, and the client's
 * request and reply checks. Pure: bytes in, bytes out, register values through a callback.
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

/* Function 6 or 16: the request's registers through write, echoed back. */
static size_t write_reply(const uint8_t *req, size_t req_len, mtr__reg_write_fn write, void *ctx,
                          uint8_t *out)
{
    uint8_t fc = req[7];
    uint16_t count = 1, regs[MTR__WRITE_MAX];
    if (req_len < MTR__MBAP_HEADER + 5) /* function, address and a value or count at least */
        return exception(req, fc, MTR__EX_ILLEGAL_VALUE, out);
    uint16_t addr = be16(req + 8);
    if (fc == 6) {
        if (req_len != MTR__MBAP_HEADER + 5)
            return exception(req, fc, MTR__EX_ILLEGAL_VALUE, out);
        regs[0] = be16(req + 10);
    } else {
        if (req_len < MTR__MBAP_HEADER + 6)
            return exception(req, fc, MTR__EX_ILLEGAL_VALUE, out);
        count = be16(req + 10);
        if (count < 1 || count > MTR__WRITE_MAX || req[12] != 2 * count ||
            req_len != MTR__MBAP_HEADER + 6u + 2u * count)
            return exception(req, fc, MTR__EX_ILLEGAL_VALUE, out);
        for (unsigned i = 0; i < count; i++)
            regs[i] = be16(req + 13 + 2 * i);
    }
    if ((unsigned)addr + count > 0x10000u)
        return exception(req, fc, MTR__EX_ILLEGAL_ADDRESS, out);
    int ex = write(ctx, req[6], addr, count, regs);
    if (ex)
        return exception(req, fc, ex, out);
    memcpy(out + 7, req + 7, 5); /* function, address, count or value */
    return header(req, 5, out);
}

size_t mtr__mbap_reply(const uint8_t *req, size_t req_len, mtr__reg_read_fn read, void *ctx,
                       uint8_t *out)
{
    return mtr__mbap_reply_rw(req, req_len, read, NULL, ctx, out);
}

size_t mtr__mbap_reply_rw(const uint8_t *req, size_t req_len, mtr__reg_read_fn read,
                          mtr__reg_write_fn write, void *ctx, uint8_t *out)
{
    uint8_t fc = req[7];
    if (write && (fc == 6 || fc == 16))
        return write_reply(req, req_len, write, ctx, out);
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

/* ---- client side ---- */

void mtr__mbap_request(uint8_t *out, uint16_t tid, uint8_t unit, uint8_t fc, uint16_t addr,
                       uint16_t count)
{
    put16(out, tid);
    put16(out + 2, 0);
    put16(out + 4, 6); /* unit + function + address + count */
    out[6] = unit;
    out[7] = fc;
    put16(out + 8, addr);
    put16(out + 10, count);
}

/*
 * The MBAP header of a reply against its request, byte by byte as far as it has come:
 * transaction id, protocol id 0, unit id. MTR__REPLY_MORE with *need set while the function
 * code is not in yet, MTR__REPLY_DATA when header and function code are there and right so far,
 * else the field that is wrong. Shared by the read and the write checks.
 */
static mtr__reply_verdict check_header(const uint8_t *req, const uint8_t *buf, size_t len,
                                       size_t *need)
{
    for (size_t i = 0; i < len && i < 7; i++) {
        if (i < 2 && buf[i] != req[i])
            return MTR__REPLY_BAD_TID;
        if (i >= 2 && i < 4 && buf[i] != 0)
            return MTR__REPLY_BAD_PROTOCOL;
        if (i == 6 && buf[i] != req[6])
            return MTR__REPLY_BAD_UNIT;
    }
    if (len < MTR__MBAP_HEADER + 1) {
        *need = MTR__MBAP_HEADER + 1;
        return MTR__REPLY_MORE;
    }
    return MTR__REPLY_DATA;
}

mtr__reply_verdict mtr__mbap_check_reply(const uint8_t *req, const uint8_t *buf, size_t len,
                                         size_t *need, uint16_t *dst, int *exception)
{
    /* Each field is judged as soon as its bytes are in: a hostile or confused device is
     * refused at its first wrong byte, and no later byte can make an earlier one right. */
    mtr__reply_verdict h = check_header(req, buf, len, need);
    if (h != MTR__REPLY_DATA)
        return h;
    uint8_t fc = req[7];
    unsigned count = be16(req + 10), length = be16(buf + 4), want;
    if (buf[7] == fc)
        want = 3 + 2 * count; /* unit, function, byte count, registers */
    else if (buf[7] == (fc | 0x80))
        want = 3; /* unit, function, exception code */
    else
        return MTR__REPLY_BAD_FUNCTION;
    if (length != want)
        return MTR__REPLY_BAD_LENGTH;
    *need = 6 + want;
    if (len < *need)
        return MTR__REPLY_MORE;
    if (buf[7] != fc) {
        *exception = buf[8];
        return MTR__REPLY_EXCEPTION;
    }
    if (buf[8] != 2 * count)
        return MTR__REPLY_BAD_COUNT;
    for (unsigned i = 0; i < count; i++)
        dst[i] = be16(buf + 9 + 2 * i);
    return MTR__REPLY_DATA;
}

size_t mtr__mbap_write_request(uint8_t *out, uint16_t tid, uint8_t unit, uint8_t fc,
                               uint16_t addr, uint16_t count, const uint16_t *regs)
{
    if (fc == 6) { /* unit, function, address, value */
        put16(out, tid);
        put16(out + 2, 0);
        put16(out + 4, 6);
        out[6] = unit;
        out[7] = 6;
        put16(out + 8, addr);
        put16(out + 10, regs[0]);
        return MTR__MBAP_HEADER + 5u;
    }
    put16(out, tid);
    put16(out + 2, 0);
    put16(out + 4, 7u + 2u * count); /* unit, function, address, count, byte count, data */
    out[6] = unit;
    out[7] = 16;
    put16(out + 8, addr);
    put16(out + 10, count);
    out[12] = (uint8_t)(2 * count);
    for (unsigned i = 0; i < count; i++)
        put16(out + 13 + 2 * i, regs[i]);
    return MTR__MBAP_HEADER + 6u + 2u * count;
}

mtr__reply_verdict mtr__mbap_check_write_reply(const uint8_t *req, const uint8_t *buf, size_t len,
                                               size_t *need, uint16_t *dst, int *exception)
{
    (void)dst;
    mtr__reply_verdict h = check_header(req, buf, len, need);
    if (h != MTR__REPLY_DATA)
        return h;
    uint8_t fc = req[7];
    unsigned length = be16(buf + 4), want;
    if (buf[7] == fc)
        want = 6; /* unit, function, address, count (16) or value (6) */
    else if (buf[7] == (fc | 0x80))
        want = 3;
    else
        return MTR__REPLY_BAD_FUNCTION;
    if (length != want)
        return MTR__REPLY_BAD_LENGTH;
    *need = 6 + want;
    if (len < *need)
        return MTR__REPLY_MORE;
    if (buf[7] != fc) {
        *exception = buf[8];
        return MTR__REPLY_EXCEPTION;
    }
    if (memcmp(buf + 8, req + 8, 4) != 0)
        return MTR__REPLY_BAD_ECHO;
    return MTR__REPLY_DATA;
}

const char *mtr__reply_verdict_name(mtr__reply_verdict v)
{
    switch (v) {
    case MTR__REPLY_MORE:
        return "incomplete reply";
    case MTR__REPLY_DATA:
        return "registers";
    case MTR__REPLY_EXCEPTION:
        return "exception";
    case MTR__REPLY_BAD_TID:
        return "reply to another transaction";
    case MTR__REPLY_BAD_PROTOCOL:
        return "protocol id not 0 (not Modbus TCP)";
    case MTR__REPLY_BAD_UNIT:
        return "reply from another unit";
    case MTR__REPLY_BAD_FUNCTION:
        return "reply with another function";
    case MTR__REPLY_BAD_LENGTH:
        return "length field does not fit the request";
    case MTR__REPLY_BAD_COUNT:
        return "byte count does not fit the request";
    case MTR__REPLY_BAD_CRC:
        return "CRC error";
    case MTR__REPLY_BAD_ECHO:
        return "write reply names other registers";
    }
    return "unknown verdict";
}
