/*
 * Fuzz harness for the simulated meters' Modbus TCP handling (meters/src/mbap.c) over the real
 * register images (meter_image.c). Input: byte 0 picks the profile and unit, bytes 1..12 the
 * live values, the rest is a client's byte stream, cut into frames as the server cuts it.
 * Every reply must be a well-formed Modbus TCP frame answering its request: same transaction
 * and unit, a length field that matches, either an exception the server documents or exactly
 * the registers asked for, equal to the image. A SunSpec image with bit 0 of byte 12 set is a
 * battery inverter (model 124) whose storage controls take writes (function 6 and 16): a write
 * is echoed only when it touches writable points of a served storage unit, and then the image
 * holds the values written.
 */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "mbap.h"
#include "meter_image.h"

static mtr__image im;
static uint8_t served_unit;

static int read_image(void *ctx, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count,
                      uint16_t *dst)
{
    (void)ctx;
    if (unit != served_unit)
        return MTR__EX_GATEWAY_TARGET;
    if (count > im.max_read)
        return MTR__EX_ILLEGAL_VALUE;
    if (fc != im.fc || addr < im.base || (unsigned)addr + count > (unsigned)im.base + im.n)
        return MTR__EX_ILLEGAL_ADDRESS;
    memcpy(dst, &im.regs[addr - im.base], (size_t)count * sizeof *dst);
    return 0;
}

static mtr__profile cur_profile;

static int write_image(void *ctx, uint8_t unit, uint16_t addr, uint16_t count,
                       const uint16_t *src)
{
    (void)ctx;
    if (unit != served_unit)
        return MTR__EX_GATEWAY_TARGET;
    if (cur_profile != MTR__PROFILE_STORAGE)
        return MTR__EX_ILLEGAL_FUNCTION;
    if (!mtr__image_storage_writable(addr, count))
        return MTR__EX_ILLEGAL_ADDRESS;
    memcpy(&im.regs[addr - im.base], src, (size_t)count * sizeof *src);
    return 0;
}

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* A write's echo: function, address and count (16) or value (6), for writable points only. */
static void check_write_reply(const uint8_t *req, size_t req_len, const uint8_t *out, size_t n)
{
    unsigned addr = be16(req + 8), count = req[7] == 6 ? 1 : be16(req + 10);
    if (n != 12 || memcmp(out + 7, req + 7, 5) != 0 || req[6] != served_unit ||
        cur_profile != MTR__PROFILE_STORAGE || !mtr__image_storage_writable((uint16_t)addr,
                                                                            (uint16_t)count))
        abort();
    if (req[7] == 6 ? req_len != 12 : req_len != 13 + 2 * (size_t)count)
        abort();
    for (unsigned i = 0; i < count; i++)
        if (im.regs[addr - im.base + i] != be16(req + (req[7] == 6 ? 10 : 13 + 2 * i)))
            abort();
}

static void check_reply(const uint8_t *req, size_t req_len, const uint8_t *out, size_t n)
{
    if (n < 9 || n > MTR__MBAP_MAX || memcmp(out, req, 2) != 0 || be16(out + 2) != 0 ||
        be16(out + 4) != n - 6 || out[6] != req[6])
        abort();
    if (out[7] & 0x80) {
        int code = out[8];
        if (n != 9 || out[7] != (req[7] | 0x80) ||
            (code != 1 && code != 2 && code != 3 && code != 0x0B))
            abort();
        return;
    }
    if (req[7] == 6 || req[7] == 16) {
        check_write_reply(req, req_len, out, n);
        return;
    }
    /* data: only for a well-formed read of registers the image has */
    if ((req[7] != 3 && req[7] != 4) || out[7] != req[7] || req_len != 12)
        abort();
    unsigned addr = be16(req + 8), count = be16(req + 10);
    if (out[8] != 2 * count || n != 9 + 2 * count || req[6] != served_unit || req[7] != im.fc ||
        addr < im.base || addr + count > (unsigned)im.base + im.n)
        abort();
    for (unsigned i = 0; i < count; i++)
        if (be16(out + 9 + 2 * i) != im.regs[addr - im.base + i])
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 13)
        return 0;
    mtr__profile profile = data[0] & 1    ? MTR__PROFILE_SDM630
                           : data[12] & 1 ? MTR__PROFILE_STORAGE
                                          : MTR__PROFILE_SUNSPEC;
    cur_profile = profile;
    served_unit = (uint8_t)(data[0] >> 1);
    mtr__image_init(&im, profile, served_unit, "fuzz");
    int32_t power = (int32_t)((uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 |
                              (uint32_t)data[3] << 8 | data[4]);
    uint32_t imp =
        (uint32_t)data[5] << 24 | (uint32_t)data[6] << 16 | (uint32_t)data[7] << 8 | data[8];
    uint32_t exp =
        (uint32_t)data[9] << 24 | (uint32_t)data[10] << 16 | (uint32_t)data[11] << 8 | data[12];
    mtr__image_set(&im, profile, power, imp, exp);
    if (profile == MTR__PROFILE_STORAGE)
        mtr__image_storage_caps(&im, power < 0 ? 1 : (int64_t)power + 1);
    const uint8_t *p = data + 13;
    size_t left = size - 13;
    for (;;) {
        int fs = mtr__mbap_frame_size(p, left);
        if (fs < 0)
            return 0; /* the server closes the connection */
        if (fs == 0) {
            /* incomplete: only ever for fewer bytes than the header announces */
            if (left >= 6 && left >= 6 + be16(p + 4))
                abort();
            return 0;
        }
        if ((size_t)fs > left || fs < 8)
            abort();
        uint8_t out[MTR__MBAP_MAX];
        size_t n = mtr__mbap_reply_rw(p, (size_t)fs, read_image, write_image, NULL, out);
        check_reply(p, (size_t)fs, out, n);
        p += fs;
        left -= (size_t)fs;
    }
}
