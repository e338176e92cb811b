/*
 * Unit tests of the register decoders (mgx/regmap.h) and register maps (mgx/meter_map.h,
 * mgx/sdm.h): each word order on hand-encoded words, SunSpec sentinels, NaN, exact decimal
 * scales and the rounding rule, ranges, counter wrap and tick, and block read plans.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "mgx/meter.h"
#include "mgx/meter_map.h"
#include "mgx/regmap.h"
#include "mgx/sdm.h"

static void word_orders(void **state)
{
    (void)state;
    /* 230.5f = 0x43668000; -123456 = 0xFFFE1DC0; bytes A B C D as on the wire per order */
    static const uint16_t f[4][2] = {{0x4366, 0x8000}, {0x8000, 0x4366}, {0x6643, 0x0080},
                                     {0x0080, 0x6643}};
    static const uint16_t i[4][2] = {{0xFFFE, 0x1DC0}, {0x1DC0, 0xFFFE}, {0xFEFF, 0xC01D},
                                     {0xC01D, 0xFEFF}};
    for (int o = 0; o < 4; o++) {
        mtr_raw r;
        assert_int_equal(mtr_reg_decode(f[o], MTR_FLOAT32, (mtr_word_order)o, 0, &r), 0);
        assert_true(r.is_float && r.f == 230.5);
        assert_int_equal(mtr_reg_decode(i[o], MTR_INT32, (mtr_word_order)o, 0, &r), 0);
        assert_int_equal(r.i, -123456);
        assert_int_equal(mtr_reg_decode(i[o], MTR_UINT32, (mtr_word_order)o, 0, &r), 0);
        assert_int_equal(r.i, 0xFFFE1DC0);
        /* and back */
        uint16_t w[2];
        mtr_raw v = {1, 0, 230.5};
        mtr_reg_encode(&v, MTR_FLOAT32, (mtr_word_order)o, w);
        assert_memory_equal(w, f[o], sizeof w);
        v = (mtr_raw){0, -123456, 0};
        mtr_reg_encode(&v, MTR_INT32, (mtr_word_order)o, w);
        assert_memory_equal(w, i[o], sizeof w);
    }
    /* 16-bit: the byte-swapping orders swap the register's bytes */
    uint16_t w16 = 0x028F, s16 = 0x8F02;
    mtr_raw r;
    mtr_reg_decode(&w16, MTR_UINT16, MTR_CDAB, 0, &r);
    assert_int_equal(r.i, 655);
    mtr_reg_decode(&s16, MTR_UINT16, MTR_DCBA, 0, &r);
    assert_int_equal(r.i, 655);
    uint16_t neg = 0xFF9C;
    mtr_reg_decode(&neg, MTR_INT16, MTR_ABCD, 0, &r);
    assert_int_equal(r.i, -100);
}

static void sentinels_and_nan(void **state)
{
    (void)state;
    mtr_raw r;
    uint16_t i16 = 0x8000, u16 = 0xFFFF, i32[2] = {0x8000, 0}, u32[2] = {0xFFFF, 0xFFFF},
             acc0[2] = {0, 0};
    assert_int_equal(mtr_reg_decode(&i16, MTR_INT16, MTR_ABCD, 1, &r), MTR_Q_NOT_IMPLEMENTED);
    assert_int_equal(mtr_reg_decode(&i16, MTR_INT16, MTR_ABCD, 0, &r), 0); /* only when asked */
    assert_int_equal(r.i, -32768);
    assert_int_equal(mtr_reg_decode(&u16, MTR_UINT16, MTR_ABCD, 1, &r), MTR_Q_NOT_IMPLEMENTED);
    assert_int_equal(mtr_reg_decode(i32, MTR_INT32, MTR_ABCD, 1, &r), MTR_Q_NOT_IMPLEMENTED);
    assert_int_equal(mtr_reg_decode(u32, MTR_UINT32, MTR_ABCD, 1, &r), MTR_Q_NOT_IMPLEMENTED);
    assert_int_equal(mtr_reg_decode(acc0, MTR_ACC32, MTR_ABCD, 1, &r), 0); /* a fresh counter */
    uint16_t nan[2] = {0x7FC0, 0}, inf[2] = {0xFF80, 0};
    assert_int_equal(mtr_reg_decode(nan, MTR_FLOAT32, MTR_ABCD, 0, &r), MTR_Q_NAN);
    assert_int_equal(mtr_reg_decode(inf, MTR_FLOAT32, MTR_ABCD, 0, &r), MTR_Q_NAN);
    int64_t out = 7;
    assert_int_equal(mtr_scale_apply(&r, MTR_SCALE_ONE, &out), MTR_Q_NAN);
    assert_int_equal(out, 0);
}

static void scales(void **state)
{
    (void)state;
    mtr_scale s;
    assert_int_equal(mtr_scale_parse("0.001", &s), 0);
    assert_int_equal(s.mant, 1);
    assert_int_equal(s.exp10, -3);
    assert_int_equal(mtr_scale_parse("1000", &s), 0);
    assert_int_equal(s.mant, 1);
    assert_int_equal(s.exp10, 3);
    assert_int_equal(mtr_scale_parse("2.50", &s), 0);
    assert_int_equal(s.mant, 25);
    assert_int_equal(s.exp10, -1);
    assert_int_equal(mtr_scale_parse("-1e-2", &s), 0);
    assert_int_equal(s.mant, -1);
    assert_int_equal(s.exp10, -2);
    const char *bad[] = {"", "0", "0.0", "abc", "1.2.3", "1e", "1e19", "1e-19", "1x",
                         "12345678901234567", ".", "1000000000000005"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mtr_scale_parse(bad[i], &s), -1);

    /* integers: exact, nearest, halves away from zero */
    int64_t out;
    mtr_raw r = {0, 1234, 0};
    assert_int_equal(mtr_scale_apply(&r, (mtr_scale){1, -1}, &out), 0);
    assert_int_equal(out, 123); /* 123.4 */
    r.i = 1235;
    mtr_scale_apply(&r, (mtr_scale){1, -1}, &out);
    assert_int_equal(out, 124); /* 123.5 -> 124 */
    r.i = -1235;
    mtr_scale_apply(&r, (mtr_scale){1, -1}, &out);
    assert_int_equal(out, -124); /* -123.5 -> -124 */
    r.i = 4294967295;
    mtr_scale_apply(&r, (mtr_scale){25, -1}, &out); /* x 2.5 */
    assert_int_equal(out, INT64_C(10737418238)); /* 10737418237.5 -> ...38 */
    /* beyond 1e15: flagged */
    r.i = 4294967295;
    assert_int_equal(mtr_scale_apply(&r, (mtr_scale){1, 10}, &out), MTR_Q_RANGE);
    assert_int_equal(mtr_scale_apply_sf(&r, 11, &out), MTR_Q_NOT_IMPLEMENTED);
    /* floats: 12345.678f is 12345.677734375 -> x 1000 -> 12345678 */
    r = (mtr_raw){1, 0, (double)12345.678f};
    mtr_scale_apply(&r, (mtr_scale){1, 3}, &out);
    assert_int_equal(out, 12345678);
    r.f = -0.5;
    mtr_scale_apply(&r, MTR_SCALE_ONE, &out);
    assert_int_equal(out, -1);
    r.f = 1e300;
    assert_int_equal(mtr_scale_apply(&r, MTR_SCALE_ONE, &out), MTR_Q_RANGE);
    /* tick: 1 Wh for integers at scale 1; 10^3 x ulp(16384.0f) = 1000 x 2^-9 -> 2 Wh */
    r = (mtr_raw){0, 5, 0};
    assert_int_equal(mtr_scale_tick(&r, MTR_SCALE_ONE), 1);
    assert_int_equal(mtr_scale_tick(&r, (mtr_scale){1, 1}), 10);
    r = (mtr_raw){1, 0, 16384.0};
    assert_int_equal(mtr_scale_tick(&r, (mtr_scale){1, 3}), 2);
}

static void field_wrap(void **state)
{
    (void)state;
    uint16_t block[4] = {0, 0xFFFF, 0xFFFF, 0};
    mtr_field f = {1, 3, 101, MTR_UINT32, MTR_ABCD, {1, 1}, 0};
    int64_t v, wrap, tick;
    assert_int_equal(mtr_field_decode(&f, block, 100, 4, &v, &wrap, &tick), 0);
    assert_int_equal(v, INT64_C(42949672950));
    assert_int_equal(wrap, INT64_C(42949672960));
    assert_int_equal(tick, 10);
    f.type = MTR_INT32; /* signed counters never wrap */
    mtr_field_decode(&f, block, 100, 4, &v, &wrap, &tick);
    assert_int_equal(wrap, 0);
    f.addr = 103; /* runs past the block */
    assert_int_equal(mtr_field_decode(&f, block, 100, 4, &v, &wrap, &tick), MTR_Q_COMM);
}

static void plans(void **state)
{
    (void)state;
    mtr_plan p;
    assert_int_equal(mtr_map_plan(mtr_sdm_map("sdm630"), &p), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.b[0].fc, 4);
    assert_int_equal(p.b[0].addr, 0x34);
    assert_int_equal(p.b[0].count, 24);
    assert_int_equal(mtr_map_plan(mtr_sdm_map("sdm72"), &p), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(mtr_map_plan(mtr_sdm_map("sdm120"), &p), 0);
    assert_int_equal(p.n, 2); /* 0x0C..0x4B would be 64 registers, over the meter's 60 */
    assert_int_equal(p.b[0].addr, 0x0C);
    assert_int_equal(p.b[0].count, 2);
    assert_int_equal(p.b[1].addr, 0x48);
    assert_int_equal(p.b[1].count, 4);
    assert_null(mtr_sdm_map("sdm999"));

    /* mixed tables never share a block; a field at the very top of the address space */
    mtr_map m;
    memset(&m, 0, sizeof m);
    m.max_regs = 125;
    m.power = (mtr_field){1, 4, 10, MTR_INT16, MTR_ABCD, {1, 0}, 0};
    m.import = (mtr_field){1, 3, 10, MTR_UINT32, MTR_ABCD, {1, 0}, 0};
    m.export = (mtr_field){1, 3, 65534, MTR_UINT32, MTR_ABCD, {1, 0}, 0};
    assert_int_equal(mtr_map_plan(&m, &p), 0);
    assert_int_equal(p.n, 3);
    m.export.addr = 65535; /* a 32-bit value cannot start at the last register */
    assert_int_not_equal(mtr_map_plan(&m, &p), 0);
    m.power.present = 0;
    assert_int_not_equal(mtr_map_plan(&m, &p), 0);

    /* decode through the plan, with the sign convention */
    m.power = (mtr_field){1, 3, 0, MTR_INT16, MTR_ABCD, {1, 0}, 0};
    m.import = (mtr_field){1, 3, 1, MTR_UINT32, MTR_CDAB, {1, 3}, 0};
    m.export.present = 0;
    m.export_positive = 1;
    assert_int_equal(mtr_map_plan(&m, &p), 0);
    assert_int_equal(p.n, 1);
    uint16_t regs[3] = {700, 0x0002, 0x0000}; /* CDAB: low word first: 2 kWh */
    const uint16_t *blocks[1] = {regs};
    mtr_values v;
    mtr_map_decode(&m, &p, blocks, &v);
    assert_int_equal(v.power_w, -700);
    assert_int_equal(v.import_wh, 2000);
    assert_int_equal(v.export_wh, 0);
    assert_int_equal(v.has_soc, 0);
}

static void quality_names(void **state)
{
    (void)state;
    char buf[128];
    assert_int_equal(mtr_quality_str(MTR_Q_GOOD, buf, sizeof buf), 4);
    assert_string_equal(buf, "good");
    mtr_quality_str(MTR_Q_NAN | MTR_Q_RANGE, buf, sizeof buf);
    assert_string_equal(buf, "nan,range");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(word_orders), cmocka_unit_test(sentinels_and_nan),
        cmocka_unit_test(scales),      cmocka_unit_test(field_wrap),
        cmocka_unit_test(plans),       cmocka_unit_test(quality_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
