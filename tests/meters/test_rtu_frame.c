/*
 * Modbus RTU framing of the client (meters/src/rtu.c), without a serial port: the CRC against
 * the specification's example, the request bytes, and each wrong field of a reply refused as
 * soon as its byte is in. Expected bytes written out by hand from Modbus over Serial Line
 * V1.02 (6.2.2) and the Modbus Application Protocol V1.1b3 (6.3, 6.4, 7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "rtu.h"

static void test_crc_and_request(void **state)
{
    (void)state;
    /* read 10 holding registers of unit 1 from 0: the CRC of 01 03 00 00 00 0A is 0xCDC5,
     * sent C5 CD (low byte first) */
    const uint8_t msg[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x0A};
    assert_int_equal(mtr__rtu_crc(msg, sizeof msg), 0xCDC5);
    uint8_t req[MTR__RTU_REQUEST_LEN];
    mtr__rtu_request(req, 1, 3, 0, 10);
    const uint8_t want[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD};
    assert_memory_equal(req, want, sizeof want);
}

/* A good reply to "unit 5, function 4, 100 + 2": 05 04 04 A0 00 A0 01 + CRC. */
static void reply_for(uint8_t *r)
{
    const uint8_t body[] = {0x05, 0x04, 0x04, 0xA0, 0x00, 0xA0, 0x01};
    memcpy(r, body, sizeof body);
    uint16_t crc = mtr__rtu_crc(r, 7);
    r[7] = (uint8_t)crc;
    r[8] = (uint8_t)(crc >> 8);
}

static void test_replies(void **state)
{
    (void)state;
    uint8_t req[MTR__RTU_REQUEST_LEN], r[9];
    mtr__rtu_request(req, 5, 4, 100, 2);
    reply_for(r);
    uint16_t dst[2] = {7, 7};
    int exc = -1;
    size_t need;
    for (size_t n = 0; n < 3; n++) {
        assert_int_equal(mtr__rtu_check_reply(req, r, n, &need, dst, &exc), MTR__REPLY_MORE);
        assert_int_equal(need, 3);
    }
    for (size_t n = 3; n < 9; n++) {
        assert_int_equal(mtr__rtu_check_reply(req, r, n, &need, dst, &exc), MTR__REPLY_MORE);
        assert_int_equal(need, 9); /* 3 + 2 x 2 + CRC */
    }
    assert_int_equal(dst[0], 7);
    assert_int_equal(mtr__rtu_check_reply(req, r, 9, &need, dst, &exc), MTR__REPLY_DATA);
    assert_int_equal(dst[0], 0xA000);
    assert_int_equal(dst[1], 0xA001);

    /* exception 2: 05 84 02 + CRC */
    uint8_t ex[5] = {0x05, 0x84, 0x02, 0, 0};
    uint16_t crc = mtr__rtu_crc(ex, 3);
    ex[3] = (uint8_t)crc;
    ex[4] = (uint8_t)(crc >> 8);
    assert_int_equal(mtr__rtu_check_reply(req, ex, 5, &need, dst, &exc), MTR__REPLY_EXCEPTION);
    assert_int_equal(exc, 2);

    static const struct {
        size_t at;
        uint8_t value;
        mtr__reply_verdict want;
    } cases[] = {
        {0, 6, MTR__REPLY_BAD_UNIT},     /* from unit 6: refused at its first byte */
        {1, 3, MTR__REPLY_BAD_FUNCTION}, /* function 3 to a function 4 request */
        {2, 6, MTR__REPLY_BAD_COUNT},    /* 6 bytes for 2 registers */
        {4, 0x01, MTR__REPLY_BAD_CRC},   /* a data byte flipped */
        {8, 0x00, MTR__REPLY_BAD_CRC},   /* the CRC itself */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reply_for(r);
        if (r[cases[i].at] == cases[i].value)
            r[cases[i].at] ^= 0xFF;
        else
            r[cases[i].at] = cases[i].value;
        dst[0] = 7;
        size_t len = cases[i].want == MTR__REPLY_BAD_CRC ? 9 : cases[i].at + 1;
        assert_int_equal(mtr__rtu_check_reply(req, r, len, &need, dst, &exc), cases[i].want);
        assert_int_equal(dst[0], 7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_and_request),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
