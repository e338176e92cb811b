/*
 * Modbus RTU framing for the client (see rtu.h): the request with its CRC and the reply checks.
 * Pure: bytes in, a verdict out.
 */
#include "rtu.h"

uint16_t mtr__rtu_crc(const uint8_t *p, size_t n)
{
    unsigned crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = crc & 1 ? (crc >> 1) ^ 0xA001u : crc >> 1;
    }
    return (uint16_t)crc;
}

void mtr__rtu_request(uint8_t *out, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count)
{
    out[0] = unit;
    out[1] = fc;
    out[2] = (uint8_t)(addr >> 8);
    out[3] = (uint8_t)addr;
    out[4] = (uint8_t)(count >> 8);
    out[5] = (uint8_t)count;
    uint16_t crc = mtr__rtu_crc(out, 6);
    out[6] = (uint8_t)crc;
    out[7] = (uint8_t)(crc >> 8);
}

mtr__reply_verdict mtr__rtu_check_reply(const uint8_t *req, const uint8_t *buf, size_t len,
                                        size_t *need, uint16_t *dst, int *exception)
{
    uint8_t fc = req[1];
    unsigned count = (unsigned)req[4] << 8 | req[5];
    *need = 3;
    if (len >= 1 && buf[0] != req[0])
        return MTR__REPLY_BAD_UNIT;
    if (len >= 2 && buf[1] != fc && buf[1] != (fc | 0x80))
        return MTR__REPLY_BAD_FUNCTION;
    if (len < 3)
        return MTR__REPLY_MORE;
    int is_exception = buf[1] != fc;
    if (!is_exception && buf[2] != 2 * count)
        return MTR__REPLY_BAD_COUNT;
    *need = is_exception ? 5 : 5 + 2 * (size_t)count;
    if (len < *need)
        return MTR__REPLY_MORE;
    uint16_t crc = mtr__rtu_crc(buf, *need - 2);
    if (buf[*need - 2] != (uint8_t)crc || buf[*need - 1] != (uint8_t)(crc >> 8))
        return MTR__REPLY_BAD_CRC;
    if (is_exception) {
        *exception = buf[2];
        return MTR__REPLY_EXCEPTION;
    }
    for (unsigned i = 0; i < count; i++)
        dst[i] = (uint16_t)((unsigned)buf[3 + 2 * i] << 8 | buf[4 + 2 * i]);
    return MTR__REPLY_DATA;
}
