/*
 * Fuzz harness for the Modbus client's reply checks (mtr__mbap_check_reply, meters/src/mbap.c,
 * and mtr__rtu_check_reply, rtu.c), the gate every byte from a device passes before a
 * register of it is used. Input: bytes 0-1 the transaction id, 2 the unit, 3 the function
 * (bit 0 clear: 3, set: 4) and the transport (bit 1 set: RTU), 4 the register count
 * (1..125), 5-6 the address; the rest is what the device sent. Invariants:
 *  - read as the client reads (never more than *need bytes), the verdict is final once it is
 *    not MTR__REPLY_MORE: every longer prefix gets the same verdict, so no later byte can make
 *    an earlier one right;
 *  - registers only for a frame that is exactly the answer (TCP: same transaction, protocol 0,
 *    same unit and function, length 3 + 2n, byte count 2n; RTU: same unit and function, byte
 *    count 2n, a good CRC), with exactly its values; an exception only for function | 0x80
 *    (TCP: length 3; RTU: a good CRC); dst untouched otherwise;
 *  - need grows, stays within one ADU (MTR__MBAP_MAX) and is larger than what was read.
 * With bit 2 of byte 3 set the request is a write (Modbus TCP, storage setpoints: function 16
 * of count registers, or 6 when bit 3 is set too) checked by mtr__mbap_check_write_reply:
 * accepted only for the exact echo (same transaction, protocol 0, unit and function, length 6,
 * the request's address and count or value), an exception only for function | 0x80 with
 * length 3; final once given, like the reads.
 */
#include "fuzz.h"

#include <string.h>

#include "mbap.h"
#include "rtu.h"

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* The write half (see the file comment). */
static int check_write(const uint8_t *data, size_t size)
{
    uint8_t req[MTR__WRITE_REQUEST_MAX];
    uint8_t fc = data[3] & 8 ? 6 : 16;
    uint16_t count = fc == 6 ? 1 : (uint16_t)(data[4] % MTR__WRITE_MAX + 1);
    uint16_t regs[MTR__WRITE_MAX];
    for (unsigned i = 0; i < count; i++)
        regs[i] = (uint16_t)(be16(data) * 31u + i);
    mtr__mbap_write_request(req, (uint16_t)be16(data), data[2], fc, (uint16_t)be16(data + 5),
                            count, regs);
    const uint8_t *buf = data + 7;
    size_t n = size - 7, len = 0, need = 0, last_need = 0;
    int exc = -1;
    mtr__reply_verdict v;
    for (;;) {
        v = mtr__mbap_check_write_reply(req, buf, len, &need, NULL, &exc);
        if (v != MTR__REPLY_MORE)
            break;
        FUZZ_CHECK(need > len && need <= MTR__MBAP_MAX && need >= last_need);
        last_need = need;
        if (need > n)
            return 0;
        len = need;
    }
    int header_ok = len >= 8 && memcmp(buf, req, 2) == 0 && be16(buf + 2) == 0 && buf[6] == req[6];
    if (v == MTR__REPLY_DATA)
        FUZZ_CHECK(header_ok && buf[7] == fc && be16(buf + 4) == 6 && len == 12 &&
                   memcmp(buf + 8, req + 8, 4) == 0);
    if (v == MTR__REPLY_EXCEPTION)
        FUZZ_CHECK(header_ok && buf[7] == (fc | 0x80) && be16(buf + 4) == 3 && len == 9 &&
                   exc == buf[8]);
    if (v == MTR__REPLY_BAD_ECHO)
        FUZZ_CHECK(header_ok && buf[7] == fc && memcmp(buf + 8, req + 8, 4) != 0);
    FUZZ_CHECK(v != MTR__REPLY_BAD_COUNT && v != MTR__REPLY_BAD_CRC);
    for (size_t more = len + 1; more <= n && more <= len + 16; more++) {
        size_t need2;
        int exc2 = -1;
        FUZZ_CHECK(mtr__mbap_check_write_reply(req, buf, more, &need2, NULL, &exc2) == v);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 7)
        return 0;
    if (data[3] & 4)
        return check_write(data, size);
    uint8_t req[MTR__REQUEST_LEN];
    uint8_t fc = data[3] & 1 ? 4 : 3;
    int rtu = (data[3] & 2) != 0;
    uint16_t count = (uint16_t)(data[4] % MTR__READ_MAX + 1);
    if (rtu)
        mtr__rtu_request(req, data[2], fc, (uint16_t)be16(data + 5), count);
    else
        mtr__mbap_request(req, (uint16_t)be16(data), data[2], fc, (uint16_t)be16(data + 5),
                          count);
    mtr__reply_verdict (*check)(const uint8_t *, const uint8_t *, size_t, size_t *, uint16_t *,
                                int *) = rtu ? mtr__rtu_check_reply : mtr__mbap_check_reply;
    const uint8_t *buf = data + 7;
    size_t n = size - 7;

    uint16_t dst[MTR__READ_MAX];
    const uint16_t canary = 0x5A5A;
    for (size_t i = 0; i < MTR__READ_MAX; i++)
        dst[i] = canary;
    size_t len = 0, need = 0, last_need = 0;
    int exc = -1;
    mtr__reply_verdict v;
    for (;;) {
        v = check(req, buf, len, &need, dst, &exc);
        if (v != MTR__REPLY_MORE)
            break;
        FUZZ_CHECK(need > len && need <= MTR__MBAP_MAX && need >= last_need);
        last_need = need;
        if (need > n)
            break; /* the device sent no more: the client would time out */
        len = need;
    }
    if (v == MTR__REPLY_MORE) {
        for (size_t i = 0; i < MTR__READ_MAX; i++)
            FUZZ_CHECK(dst[i] == canary);
        return 0;
    }
    /* what a frame must be for each verdict */
    size_t u = rtu ? 0 : 6; /* the unit id; function and byte count follow */
    int header_ok = len >= u + 3 && buf[u] == data[2] &&
                    (rtu || (memcmp(buf, req, 2) == 0 && be16(buf + 2) == 0));
    int crc_ok = !rtu || (len >= 5 && mtr__rtu_crc(buf, len - 2) ==
                                          (unsigned)(buf[len - 2] | buf[len - 1] << 8));
    if (v == MTR__REPLY_DATA) {
        FUZZ_CHECK(header_ok && crc_ok && buf[u + 1] == fc && buf[u + 2] == 2u * count &&
                   len == u + 3 + 2u * count + (rtu ? 2 : 0));
        FUZZ_CHECK(rtu || be16(buf + 4) == 3u + 2u * count);
        for (unsigned i = 0; i < count; i++)
            FUZZ_CHECK(dst[i] == be16(buf + u + 3 + 2 * i));
    } else {
        for (size_t i = 0; i < MTR__READ_MAX; i++)
            FUZZ_CHECK(dst[i] == canary);
    }
    if (v == MTR__REPLY_EXCEPTION)
        FUZZ_CHECK(header_ok && crc_ok && buf[u + 1] == (fc | 0x80) && exc == buf[u + 2] &&
                   len == u + 3 + (rtu ? 2 : 0) && (rtu || be16(buf + 4) == 3));
    if (v == MTR__REPLY_BAD_TID || v == MTR__REPLY_BAD_PROTOCOL || v == MTR__REPLY_BAD_LENGTH)
        FUZZ_CHECK(!rtu);
    if (v == MTR__REPLY_BAD_CRC)
        FUZZ_CHECK(rtu);
    /* final: the same verdict on every longer prefix */
    for (size_t more = len + 1; more <= n && more <= len + 16; more++) {
        uint16_t d2[MTR__READ_MAX];
        size_t need2;
        int exc2 = -1;
        FUZZ_CHECK(check(req, buf, more, &need2, d2, &exc2) == v);
    }
    FUZZ_CHECK(mtr__reply_verdict_name(v)[0] != '\0');
    return 0;
}
