/*
 * Register images of the simulated meters (meters/src/meter_image.c), register by register.
 * Float bit patterns were worked out independently (Python struct.pack('>f', v)): 230.0 ->
 * 4366 0000, 50.0 -> 4248 0000, 1.0 -> 3F80 0000, -1234.0 -> C49A 4000, 12.345 -> 4145 851F,
 * 5.365 -> 40AB AE14, 17.71 -> 418D AE14. Note the high word comes first (ABCD), the order the
 * Eastron manual specifies and libmodbus 3.1.6's float setters get wrong (field-facts.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "meter_image.h"

static mtr__image *im;

static int setup(void **state)
{
    (void)state;
    im = malloc(sizeof *im);
    return im ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(im);
    return 0;
}

static uint16_t reg(unsigned addr)
{
    assert_true(addr >= im->base && addr < (unsigned)im->base + im->n);
    return im->regs[addr - im->base];
}

static void assert_regs(unsigned addr, uint16_t hi, uint16_t lo)
{
    assert_int_equal(reg(addr), hi);
    assert_int_equal(reg(addr + 1), lo);
}

static float get_float(unsigned addr)
{
    uint32_t bits = (uint32_t)reg(addr) << 16 | reg(addr + 1);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void test_sdm630_known(void **state)
{
    (void)state;
    mtr__image_init(im, MTR__PROFILE_SDM630, 3, "x");
    assert_int_equal(im->fc, 4);
    assert_int_equal(im->base, 0);
    assert_int_equal(im->n, 0x158);
    assert_int_equal(im->max_read, 60);
    mtr__image_set(im, MTR__PROFILE_SDM630, -1234, 12345, 5365);
    assert_regs(MTR__SDM_V_L1, 0x4366, 0x0000);
    assert_regs(MTR__SDM_V_L1 + 4, 0x4366, 0x0000);
    assert_regs(MTR__SDM_HZ, 0x4248, 0x0000);
    assert_regs(MTR__SDM_PF_TOTAL, 0x3F80, 0x0000);
    assert_regs(MTR__SDM_W_TOTAL, 0xC49A, 0x4000);
    assert_regs(MTR__SDM_IMPORT_KWH, 0x4145, 0x851F);
    assert_regs(MTR__SDM_EXPORT_KWH, 0x40AB, 0xAE14);
    assert_regs(MTR__SDM_TOTAL_KWH, 0x418D, 0xAE14);
    /* phases: a third each, signed, and the currents |P/3| / 230 V */
    for (unsigned p = 0; p < 3; p++) {
        assert_true(get_float(MTR__SDM_W_L1 + 2 * p) == (float)(-1234.0 / 3));
        assert_true(get_float(MTR__SDM_A_L1 + 2 * p) == (float)(1234.0 / 3 / 230.0));
    }
    /* the block a poller reads at once: 24 registers from 0x0034 (power .. export) */
    assert_true(MTR__SDM_EXPORT_KWH + 2 - MTR__SDM_W_TOTAL <= 24);
}

/* Rounding kWh x 1000 gives back the exact Wh below 16,384 kWh, and not always above. */
static void test_sdm630_wh_resolution(void **state)
{
    (void)state;
    mtr__image_init(im, MTR__PROFILE_SDM630, 1, NULL);
    for (int64_t wh = 0; wh < INT64_C(16384000); wh += 997) {
        mtr__image_set(im, MTR__PROFILE_SDM630, 0, wh, INT64_C(16383999) - wh);
        assert_int_equal((int64_t)llround((double)get_float(MTR__SDM_IMPORT_KWH) * 1000.0), wh);
        assert_int_equal((int64_t)llround((double)get_float(MTR__SDM_EXPORT_KWH) * 1000.0),
                         INT64_C(16383999) - wh);
    }
    /* above: 2^14 kWh has a float32 step of 2^-9 kWh = 1.95 Wh, so an odd Wh cannot survive */
    int lost = 0;
    for (int64_t wh = INT64_C(16384001); wh < INT64_C(16384101); wh++) {
        mtr__image_set(im, MTR__PROFILE_SDM630, 0, wh, 0);
        lost += (int64_t)llround((double)get_float(MTR__SDM_IMPORT_KWH) * 1000.0) != wh;
    }
    assert_true(lost >= 40);
}

static void test_sunspec_layout(void **state)
{
    (void)state;
    mtr__image_init(im, MTR__PROFILE_SUNSPEC, 7, "home-007");
    assert_int_equal(im->fc, 3);
    assert_int_equal(im->base, 40000);
    assert_regs(40000, 0x5375, 0x6E53); /* "SunS" */
    assert_regs(40002, 1, 66);          /* common model, 66 registers */
    assert_regs(40004, 0x6D67, 0x7800); /* Mn "mgx" NUL-padded */
    assert_int_equal(reg(40005 + 1), 0);
    /* SN at 40002 + 2 + 48 = 40052: "home-007" */
    assert_regs(40052, 0x686F, 0x6D65);
    assert_regs(40054, 0x2D30, 0x3037);
    assert_int_equal(reg(40056), 0);
    assert_int_equal(reg(40068), 7); /* DA = unit id */
    assert_regs(40070, 203, 105);    /* meter model right after: 40002 + 2 + 66 */
    assert_regs(40177, 0xFFFF, 0);   /* end marker: 40070 + 2 + 105 */
    assert_int_equal(im->n, 40179 - 40000);
    /* walk the chain the way a client must */
    unsigned a = 40002, ids[4], n = 0;
    while (reg(a) != 0xFFFF && n < 4) {
        ids[n++] = reg(a);
        a += 2u + reg(a + 1);
    }
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 203);
    assert_int_equal(a, 40177);
    /* fixed values: 230.0 V as 2300 x 10^-1, 50.00 Hz as 5000 x 10^-2 */
    assert_int_equal(reg(40070 + MTR__M203_PHV), 2300);
    assert_int_equal((int16_t)reg(40070 + MTR__M203_V_SF), -1);
    assert_int_equal(reg(40070 + MTR__M203_HZ), 5000);
    assert_int_equal((int16_t)reg(40070 + MTR__M203_HZ_SF), -2);
}

static void test_sunspec_values(void **state)
{
    (void)state;
    mtr__image_init(im, MTR__PROFILE_SUNSPEC, 1, NULL);
    const unsigned m = 40070;
    /* import 70000 Wh = 0x0001_1170; export 2^32 + 5 rolls over to 5 */
    mtr__image_set(im, MTR__PROFILE_SUNSPEC, -1234, 70000, INT64_C(4294967301));
    assert_int_equal(reg(m + 18), 0xFB2E); /* W = -1234 as int16 */
    assert_int_equal(reg(m + 22), 0);      /* W_SF */
    /* phases -412, -411, -411 sum to the total */
    assert_int_equal((int16_t)reg(m + 19), -412);
    assert_int_equal((int16_t)reg(m + 20), -411);
    assert_int_equal((int16_t)reg(m + 21), -411);
    assert_regs(m + 38, 0x0000, 0x0005); /* TotWhExp */
    assert_regs(m + 46, 0x0001, 0x1170); /* TotWhImp */
    assert_int_equal(reg(m + 54), 0);    /* TotWh_SF */
    /* 123456 W does not fit int16: 12346 x 10^1 (12345.6 rounded half away from zero) */
    mtr__image_set(im, MTR__PROFILE_SUNSPEC, 123456, 1, 1);
    assert_int_equal(reg(m + 18), 12346);
    assert_int_equal(reg(m + 22), 1);
    mtr__image_set(im, MTR__PROFILE_SUNSPEC, -32768, 1, 1); /* -32768 is "not implemented" */
    assert_int_equal((int16_t)reg(m + 18), -3277);
    assert_int_equal(reg(m + 22), 1);
    mtr__image_set(im, MTR__PROFILE_SUNSPEC, 32767, 1, 1);
    assert_int_equal(reg(m + 18), 32767);
    assert_int_equal(reg(m + 22), 0);
    mtr__image_set(im, MTR__PROFILE_SUNSPEC, -INT64_C(1000000000000), 1, 1);
    /* 1e12 W = -10000 x 10^8 */
    assert_int_equal((int16_t)reg(m + 18), -10000);
    assert_int_equal(reg(m + 22), 8);
    /* current: 2300 W / 230 V = 10.00 A as 1000 x 10^-2 */
    mtr__image_set(im, MTR__PROFILE_SUNSPEC, 2300, 1, 1);
    assert_int_equal(reg(m + 2), 1000);
    assert_int_equal((int16_t)reg(m + 6), -2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdm630_known),
        cmocka_unit_test(test_sdm630_wh_resolution),
        cmocka_unit_test(test_sunspec_layout),
        cmocka_unit_test(test_sunspec_values),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
