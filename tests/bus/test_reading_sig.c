/*
 * Unit tests of signed readings (controller/bus/reading_sig.c): the version 1 canonical bytes
 * worked out by hand from docs/reading-signatures.md, sign and verify, one refusal per signed
 * field changed, and the "sig" field of the state JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "bus/bus.h"
#include "bus/payload.h"
#include "bus/reading_sig.h"

static mtr_sample sample(void)
{
    mtr_sample s = {.meter_id = "m1",
                    .ts_ms = 0x0102030405060708LL,
                    .power_w = -2,
                    .import_wh = 1000,
                    .export_wh = 0x7F,
                    .soc_permille = -1,
                    .quality = MTR_Q_JUMP};
    return s;
}

/* Byte by byte as the document lays it out. */
static void test_canon_exact(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        'M', 'G', 'X', '-', 'R', 'E', 'A', 'D', 'I', 'N', 'G', 0, /* domain tag */
        1,                                                        /* version */
        2, 'm', '1',                                              /* meter id */
        2, 'h', 'a',                                              /* participant */
        1, 2, 3, 4, 5, 6, 7, 8,                                   /* ts_ms */
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,           /* power_w -2 */
        0, 0, 0, 0, 0, 0, 0x03, 0xE8,                             /* import_wh 1000 */
        0, 0, 0, 0, 0, 0, 0, 0x7F,                                /* export_wh 127 */
        0xFF, 0xFF, 0xFF, 0xFF,                                   /* soc_permille -1 */
        0, 0, 0, 0x10,                                            /* quality: jump (bit 4) */
    };
    uint8_t out[BUS_RSIG_CANON_MAX];
    mtr_sample s = sample();
    int n = bus_reading_canon(&s, "ha", out, sizeof out);
    assert_int_equal(n, (int)sizeof want);
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(bus_reading_canon(&s, "", out, sizeof out), BUS_E_INVAL);
    assert_int_equal(bus_reading_canon(&s, "a/b", out, sizeof out), BUS_E_INVAL);
    assert_int_equal(bus_reading_canon(&s, "ha", out, 10), BUS_E_TOOLONG);
}

static void keypair(uint8_t pk[32], uint8_t sk[64], uint8_t seed_byte)
{
    uint8_t seed[32];
    memset(seed, seed_byte, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
}

/* A signature verifies for exactly the reading and participant it was made for. */
static void test_sign_verify_and_each_field(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], pk2[32], sk2[64], sig[64];
    keypair(pk, sk, 7);
    keypair(pk2, sk2, 8);
    mtr_sample s = sample();
    assert_int_equal(bus_reading_sign(&s, "home-1", sk, sig), BUS_OK);
    assert_int_equal(bus_reading_verify(&s, "home-1", pk, sig), BUS_OK);
    assert_int_equal(bus_reading_verify(&s, "home-1", pk2, sig), BUS_E_PAYLOAD);
    assert_int_equal(bus_reading_verify(&s, "home-2", pk, sig), BUS_E_PAYLOAD);
    for (int f = 0; f < 7; f++) {
        mtr_sample t = s;
        switch (f) {
        case 0: t.meter_id[1] = '2'; break;
        case 1: t.ts_ms++; break;
        case 2: t.power_w++; break;
        case 3: t.import_wh++; break;
        case 4: t.export_wh++; break;
        case 5: t.soc_permille = 500; break;
        default: t.quality = MTR_Q_GOOD; break;
        }
        assert_int_equal(bus_reading_verify(&t, "home-1", pk, sig), BUS_E_PAYLOAD);
    }
    for (int i = 0; i < 64; i++) {
        uint8_t bad[64];
        memcpy(bad, sig, 64);
        bad[i] ^= 0x80;
        assert_int_equal(bus_reading_verify(&s, "home-1", pk, bad), BUS_E_PAYLOAD);
    }
}

/* The signed state body decodes as before (the field is ignored by bus_state_decode) and its
 * signature verifies; absent and malformed signatures are told apart. */
static void test_state_json(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], sig[64];
    keypair(pk, sk, 9);
    mtr_sample s = sample(), d;
    s.ts_ms = 1700000000000LL;
    s.export_wh = 5;
    char buf[BUS_JSON_MAX], why[160];
    int n = bus_state_encode_signed(&s, "home-1", sk, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf));
    assert_int_equal(bus_state_decode(buf, (size_t)n, "m1", &d, why, sizeof why), BUS_OK);
    assert_memory_equal(&d, &s, sizeof s);
    int present = -1;
    assert_int_equal(bus_state_sig(buf, (size_t)n, sig, &present, why, sizeof why), BUS_OK);
    assert_int_equal(present, 1);
    assert_int_equal(bus_reading_verify(&d, "home-1", pk, sig), BUS_OK);

    char plain[512];
    n = bus_state_encode(&s, plain, sizeof plain);
    assert_int_equal(bus_state_sig(plain, (size_t)n, sig, &present, why, sizeof why), BUS_OK);
    assert_int_equal(present, 0);
    const char *shorter = "{\"meter_id\":\"m1\",\"sig\":\"abcd\"}";
    assert_int_equal(bus_state_sig(shorter, strlen(shorter), sig, &present, why, sizeof why),
                     BUS_E_PAYLOAD);
    assert_int_equal(present, 0);
    /* too small a buffer: an error, never a truncated body */
    assert_int_equal(bus_state_encode_signed(&s, "home-1", sk, buf, 150), BUS_E_TOOLONG);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon_exact),
        cmocka_unit_test(test_sign_verify_and_each_field),
        cmocka_unit_test(test_state_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
