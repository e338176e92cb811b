/*
 * Modbus TCP framing and replies of the simulated meters (meters/src/mbap.c), without sockets:
 * frame delimiting by the MBAP length field, every exception the server can send, register
 * byte order, and that a reply echoes the transaction id and unit; the client's request and
 * the checks of its reply (each wrong field refused as soon as its bytes are in). Expected
 * bytes are written out by hand from the Modbus Application Protocol V1.1b3 (sections 6.3,
 * 6.4, 7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mbap.h"

/* A fake device: unit 5 serves input registers 100..109 holding 0xA000 + address offset. */
static int calls;
static int read_fake(void *ctx, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count,
                     uint16_t *dst)
{
    (void)ctx;
    calls++;
    if (unit != 5)
        return MTR__EX_GATEWAY_TARGET;
    if (fc != 4 || addr < 100 || addr + count > 110)
        return MTR__EX_ILLEGAL_ADDRESS;
    for (unsigned i = 0; i < count; i++)
        dst[i] = (uint16_t)(0xA000u + addr - 100u + i);
    return 0;
}

static void test_frame_size(void **state)
{
    (void)state;
    /* tid 0x1234, proto 0, length 6, unit 5, FC4 addr 100 count 2 */
    const uint8_t req[] = {0x12, 0x34, 0, 0, 0, 6, 5, 4, 0, 100, 0, 2};
    for (size_t n = 0; n < sizeof req; n++)
        assert_int_equal(mtr__mbap_frame_size(req, n), 0); /* every prefix: need more */
    assert_int_equal(mtr__mbap_frame_size(req, sizeof req), 12);
    uint8_t two[24];
    memcpy(two, req, 12);
    memcpy(two + 12, req, 12);
    assert_int_equal(mtr__mbap_frame_size(two, sizeof two), 12); /* only the first frame */

    uint8_t bad[12];
    memcpy(bad, req, 12);
    bad[3] = 1; /* protocol id 1 */
    assert_int_equal(mtr__mbap_frame_size(bad, 12), -1);
    memcpy(bad, req, 12);
    bad[5] = 1; /* length 1: a unit id and no function code */
    assert_int_equal(mtr__mbap_frame_size(bad, 12), -1);
    bad[5] = 255; /* 254 is the largest legal length (unit + 253-byte PDU) */
    assert_int_equal(mtr__mbap_frame_size(bad, 12), -1);
    bad[5] = 254;
    assert_int_equal(mtr__mbap_frame_size(bad, 12), 0); /* legal, incomplete */
    assert_int_equal(mtr__mbap_frame_size(bad, 6), 0);
}

static void test_read_reply(void **state)
{
    (void)state;
    const uint8_t req[] = {0x12, 0x34, 0, 0, 0, 6, 5, 4, 0, 101, 0, 3};
    uint8_t out[MTR__MBAP_MAX];
    size_t n = mtr__mbap_reply(req, sizeof req, read_fake, NULL, out);
    /* length = unit + fc + byte count + 6 data bytes = 9 */
    const uint8_t want[] = {0x12, 0x34, 0, 0, 0, 9, 5, 4, 6, 0xA0, 0x01, 0xA0, 0x02, 0xA0, 0x03};
    assert_int_equal(n, sizeof want);
    assert_memory_equal(out, want, sizeof want);
}

static void expect_exception(const uint8_t *req, size_t len, uint8_t fc, uint8_t code)
{
    uint8_t out[MTR__MBAP_MAX];
    size_t n = mtr__mbap_reply(req, len, read_fake, NULL, out);
    assert_int_equal(n, 9);
    const uint8_t want[] = {req[0], req[1], 0, 0, 0, 3, req[6], (uint8_t)(fc | 0x80), code};
    assert_memory_equal(out, want, sizeof want);
}

static void test_exceptions(void **state)
{
    (void)state;
    /* unknown unit: 0x0B, gateway target failed to respond */
    const uint8_t other_unit[] = {0, 1, 0, 0, 0, 6, 9, 4, 0, 100, 0, 1};
    expect_exception(other_unit, sizeof other_unit, 4, MTR__EX_GATEWAY_TARGET);
    /* FC6 write single register: illegal function, and the device is never asked */
    calls = 0;
    const uint8_t write[] = {0, 2, 0, 0, 0, 6, 5, 6, 0, 100, 0, 1};
    expect_exception(write, sizeof write, 6, MTR__EX_ILLEGAL_FUNCTION);
    assert_int_equal(calls, 0);
    /* count 0 and 126: illegal data value (quantity checked before the address) */
    const uint8_t zero[] = {0, 3, 0, 0, 0, 6, 5, 4, 0, 100, 0, 0};
    expect_exception(zero, sizeof zero, 4, MTR__EX_ILLEGAL_VALUE);
    const uint8_t many[] = {0, 4, 0, 0, 0, 6, 5, 4, 0, 100, 0, 126};
    expect_exception(many, sizeof many, 4, MTR__EX_ILLEGAL_VALUE);
    /* 125 is legal for framing; the fake device then says the range is not there */
    const uint8_t max[] = {0, 5, 0, 0, 0, 6, 5, 4, 0, 100, 0, 125};
    expect_exception(max, sizeof max, 4, MTR__EX_ILLEGAL_ADDRESS);
    /* address + count past 65535 */
    const uint8_t wrap[] = {0, 6, 0, 0, 0, 6, 5, 4, 0xFF, 0xFF, 0, 2};
    expect_exception(wrap, sizeof wrap, 4, MTR__EX_ILLEGAL_ADDRESS);
    /* a read with a short PDU (no count) */
    const uint8_t shortpdu[] = {0, 7, 0, 0, 0, 4, 5, 4, 0, 100};
    expect_exception(shortpdu, sizeof shortpdu, 4, MTR__EX_ILLEGAL_VALUE);
    /* FC3 where the fake serves only input registers */
    const uint8_t holding[] = {0, 8, 0, 0, 0, 6, 5, 3, 0, 100, 0, 1};
    expect_exception(holding, sizeof holding, 3, MTR__EX_ILLEGAL_ADDRESS);
}

static void test_largest_reply(void **state)
{
    (void)state;
    /* 125 registers fill the biggest ADU: 7 + 2 + 250 = 259 <= MTR__MBAP_MAX */
    uint8_t out[MTR__MBAP_MAX];
    const uint8_t req[] = {0, 9, 0, 0, 0, 6, 5, 4, 0, 100, 0, 10};
    assert_int_equal(mtr__mbap_reply(req, sizeof req, read_fake, NULL, out), 7 + 2 + 20);
    assert_int_equal(out[8], 20);
    assert_true(7 + 2 + 2 * MTR__READ_MAX <= MTR__MBAP_MAX);
}

/* ---- client side: the request and the checks of its reply ---- */

static const uint8_t REQ[] = {0x12, 0x34, 0, 0, 0, 6, 5, 4, 0, 100, 0, 2};

/* The verdict on reply as the client reads it: never more than *need bytes at a time. */
static mtr__reply_verdict feed(const uint8_t *reply, size_t n, uint16_t *dst, int *exc,
                               size_t *len_out)
{
    size_t len = 0, need = 0;
    mtr__reply_verdict v;
    while ((v = mtr__mbap_check_reply(REQ, reply, len, &need, dst, exc)) == MTR__REPLY_MORE) {
        assert_true(need > len);
        if (need > n)
            break;
        len = need;
    }
    *len_out = len;
    return v;
}

static void test_client_request(void **state)
{
    (void)state;
    /* tid 0x1234, protocol 0, length 6 (unit, function, address, count), unit 5, FC4,
     * address 100, 2 registers: Modbus Messaging on TCP/IP V1.0b 3.1.3, MBAP V1.1b3 6.4 */
    uint8_t out[MTR__REQUEST_LEN];
    mtr__mbap_request(out, 0x1234, 5, 4, 100, 2);
    assert_memory_equal(out, REQ, sizeof REQ);
}

static void test_client_reply_good(void **state)
{
    (void)state;
    const uint8_t reply[] = {0x12, 0x34, 0, 0, 0, 7, 5, 4, 4, 0xA0, 0x00, 0xA0, 0x01};
    uint16_t dst[2] = {0, 0};
    int exc = -1;
    size_t need = 0, len;
    for (size_t n = 0; n < 8; n++) /* the header and function are needed before the size */
        assert_int_equal(mtr__mbap_check_reply(REQ, reply, n, &need, dst, &exc), MTR__REPLY_MORE);
    assert_int_equal(need, 8);
    for (size_t n = 8; n < sizeof reply; n++) {
        assert_int_equal(mtr__mbap_check_reply(REQ, reply, n, &need, dst, &exc), MTR__REPLY_MORE);
        assert_int_equal(need, 13); /* 6 + length 7 */
    }
    assert_int_equal(dst[0], 0); /* untouched until the whole reply is in */
    assert_int_equal(feed(reply, sizeof reply, dst, &exc, &len), MTR__REPLY_DATA);
    assert_int_equal(len, 13);
    assert_int_equal(dst[0], 0xA000);
    assert_int_equal(dst[1], 0xA001);

    /* exception 2 to function 4: 0x84 0x02, length 3 */
    const uint8_t ex[] = {0x12, 0x34, 0, 0, 0, 3, 5, 0x84, 2};
    assert_int_equal(feed(ex, sizeof ex, dst, &exc, &len), MTR__REPLY_EXCEPTION);
    assert_int_equal(exc, 2);
    assert_int_equal(len, 9);
}

/* Each wrong field is refused as soon as its bytes are in (len), not after the whole frame. */
static void test_client_reply_refused(void **state)
{
    (void)state;
    static const struct {
        uint8_t at, value;
        mtr__reply_verdict want;
        size_t len; /* bytes read when refused */
    } cases[] = {
        {1, 0x35, MTR__REPLY_BAD_TID, 8},      /* transaction 0x1235 */
        {0, 0x11, MTR__REPLY_BAD_TID, 8},      /* transaction 0x1134 */
        {3, 0x01, MTR__REPLY_BAD_PROTOCOL, 8}, /* protocol id 1 */
        {2, 0x80, MTR__REPLY_BAD_PROTOCOL, 8}, /* protocol id 0x8000 */
        {6, 6, MTR__REPLY_BAD_UNIT, 8},        /* from unit 6, asked 5 */
        {6, 0, MTR__REPLY_BAD_UNIT, 8},        /* unit 0 is not a wildcard in a reply */
        {7, 3, MTR__REPLY_BAD_FUNCTION, 8},    /* function 3 to a function 4 request */
        {7, 0x83, MTR__REPLY_BAD_FUNCTION, 8}, /* exception of another function */
        {5, 9, MTR__REPLY_BAD_LENGTH, 8},      /* length 9: 3 registers' worth */
        {5, 3, MTR__REPLY_BAD_LENGTH, 8},      /* the exception length with a data function */
        {8, 6, MTR__REPLY_BAD_COUNT, 13},      /* byte count 6, length field 7 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t reply[] = {0x12, 0x34, 0, 0, 0, 7, 5, 4, 4, 0xA0, 0x00, 0xA0, 0x01};
        reply[cases[i].at] = cases[i].value;
        uint16_t dst[2] = {7, 7};
        int exc = -1;
        size_t len;
        mtr__reply_verdict v = feed(reply, sizeof reply, dst, &exc, &len);
        if (v != cases[i].want)
            fail_msg("case %zu: %s, want %s", i, mtr__reply_verdict_name(v),
                     mtr__reply_verdict_name(cases[i].want));
        assert_int_equal(dst[0], 7); /* nothing of a refused reply is used */
        /* the client reads 8 bytes first: the header fields are judged on them */
        assert_int_equal(len, cases[i].len);
        /* and on any prefix that holds the wrong byte */
        size_t need;
        if (cases[i].at < 8)
            assert_int_equal(
                mtr__mbap_check_reply(REQ, reply, (size_t)cases[i].at + 1, &need, dst, &exc) ==
                    MTR__REPLY_MORE,
                cases[i].at == 5); /* the length is judged with the function byte */
    }
}

/* Writes (storage setpoints): the request bytes of functions 16 and 6, and the checks of the
 * reply: an echo of the request's address and count (16) or value (6), an exception, a reply
 * naming other registers, another transaction. */
static void test_client_write(void **state)
{
    (void)state;
    uint8_t req[MTR__WRITE_REQUEST_MAX];
    const uint16_t v[2] = {0x1388, 0xEC78};
    size_t n = mtr__mbap_write_request(req, 0x0102, 7, 16, 0x9C4E, 2, v);
    const uint8_t want16[] = {0x01, 0x02, 0, 0, 0, 11, 7, 16, 0x9C, 0x4E, 0, 2, 4,
                              0x13, 0x88, 0xEC, 0x78};
    assert_int_equal(n, sizeof want16);
    assert_memory_equal(req, want16, n);
    size_t need = 0;
    int exc = 0;
    const uint8_t ok[] = {0x01, 0x02, 0, 0, 0, 6, 7, 16, 0x9C, 0x4E, 0, 2};
    for (size_t len = 0; len < sizeof ok; len++)
        assert_int_equal(mtr__mbap_check_write_reply(req, ok, len, &need, NULL, &exc),
                         MTR__REPLY_MORE);
    assert_int_equal(mtr__mbap_check_write_reply(req, ok, sizeof ok, &need, NULL, &exc),
                     MTR__REPLY_DATA);
    const uint8_t other[] = {0x01, 0x02, 0, 0, 0, 6, 7, 16, 0x9C, 0x4F, 0, 2};
    assert_int_equal(mtr__mbap_check_write_reply(req, other, sizeof other, &need, NULL, &exc),
                     MTR__REPLY_BAD_ECHO);
    const uint8_t ex[] = {0x01, 0x02, 0, 0, 0, 3, 7, 0x90, 4};
    assert_int_equal(mtr__mbap_check_write_reply(req, ex, sizeof ex, &need, NULL, &exc),
                     MTR__REPLY_EXCEPTION);
    assert_int_equal(exc, 4);
    const uint8_t tid[] = {0x01, 0x03};
    assert_int_equal(mtr__mbap_check_write_reply(req, tid, sizeof tid, &need, NULL, &exc),
                     MTR__REPLY_BAD_TID);
    /* function 6: one register; the reply echoes address and value */
    n = mtr__mbap_write_request(req, 9, 1, 6, 104, 1, v + 1);
    const uint8_t want6[] = {0, 9, 0, 0, 0, 6, 1, 6, 0, 104, 0xEC, 0x78};
    assert_int_equal(n, sizeof want6);
    assert_memory_equal(req, want6, n);
    assert_int_equal(mtr__mbap_check_write_reply(req, want6, sizeof want6, &need, NULL, &exc),
                     MTR__REPLY_DATA);
    const uint8_t changed[] = {0, 9, 0, 0, 0, 6, 1, 6, 0, 104, 0xEC, 0x79};
    assert_int_equal(mtr__mbap_check_write_reply(req, changed, sizeof changed, &need, NULL, &exc),
                     MTR__REPLY_BAD_ECHO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_size),
        cmocka_unit_test(test_read_reply),
        cmocka_unit_test(test_exceptions),
        cmocka_unit_test(test_largest_reply),
        cmocka_unit_test(test_client_request),
        cmocka_unit_test(test_client_reply_good),
        cmocka_unit_test(test_client_reply_refused),
        cmocka_unit_test(test_client_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
