/*
 * Unit tests of SunSpec discovery and extraction (mgx/sunspec.h) on register images in memory,
 * read through the same abstract read function the Modbus client uses: the three bases, chain
 * walking and its limits, the end of a chain by exception, and timeouts that stop discovery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mgx/meter_error.h"
#include "mgx/sunspec.h"

typedef struct {
    uint16_t regs[65536];
    uint32_t lo, hi; /* readable window; outside: exception */
    int fail;        /* a code every read returns instead (0: none) */
    int reads;
} image;

static int img_read(void *ctx, int fc, uint16_t addr, uint16_t count, uint16_t *dst)
{
    image *im = ctx;
    im->reads++;
    if (im->fail)
        return im->fail;
    if (fc != 3 || addr < im->lo || (uint32_t)addr + count > im->hi)
        return MTR_E_EXCEPTION;
    memcpy(dst, im->regs + addr, count * sizeof *dst);
    return 0;
}

/* "SunS" at base, then models (id, len), then the end marker; returns the address after. */
static uint32_t build(image *im, uint16_t base, const uint16_t *ids, const uint16_t *lens, int n)
{
    memset(im, 0, sizeof *im);
    im->regs[base] = 0x5375;
    im->regs[base + 1] = 0x6E53;
    uint32_t a = base + 2u;
    for (int i = 0; i < n; i++) {
        im->regs[a] = ids[i];
        im->regs[a + 1] = lens[i];
        a += 2u + lens[i];
    }
    im->regs[a] = 0xFFFF;
    im->lo = base;
    im->hi = a + 2;
    return a;
}

static void bases(void **state)
{
    (void)state;
    image *im = malloc(sizeof *im);
    const uint16_t b[] = {40000, 50000, 0};
    uint16_t ids[] = {1, 203}, lens[] = {66, 105};
    for (int i = 0; i < 3; i++) {
        build(im, b[i], ids, lens, 2);
        mtr_sunspec_chain c;
        assert_int_equal(mtr_sunspec_discover(img_read, im, &c), MTR_OK);
        assert_int_equal(c.base, b[i]);
        assert_int_equal(c.n, 2);
        assert_int_equal(c.m[1].id, 203);
        assert_int_equal(c.m[1].addr, b[i] + 2 + 68);
        assert_int_equal(c.meter, 1);
        assert_int_equal(c.inverter, -1);
        /* probes: one per base tried, then one header per model and the end marker */
        assert_int_equal(im->reads, i + 1 + 3);
    }
    free(im);
}

static void chain_of_models(void **state)
{
    (void)state;
    image *im = malloc(sizeof *im);
    uint16_t ids[] = {1, 103, 203, 124, 802, 213, 64001}, lens[] = {66, 50, 105, 24, 62, 124, 7};
    build(im, 40000, ids, lens, 7);
    mtr_sunspec_chain c;
    assert_int_equal(mtr_sunspec_discover(img_read, im, &c), MTR_OK);
    assert_int_equal(c.n, 7);
    assert_int_equal(c.meter, 2); /* the first meter model */
    assert_int_equal(c.inverter, 1);
    assert_int_equal(c.storage, 3);
    assert_int_equal(c.battery, 4);
    /* 203 at 40002 + 68 + 52 = 40122: W = -42 x 10^2, TotWhImp 7 x 10^3 */
    uint16_t a = c.m[2].addr;
    assert_int_equal(a, 40122);
    im->regs[a + 18] = (uint16_t)-42;
    im->regs[a + 22] = 2;
    im->regs[a + 47] = 7;
    im->regs[a + 54] = 3;
    im->regs[c.m[4].addr + 11] = 99; /* SoC 99 %, SF 0 -> 990 permille */
    mtr_values v;
    assert_int_equal(mtr_sunspec_read(img_read, im, &c, &v), MTR_OK);
    assert_int_equal(v.power_w, -4200);
    assert_int_equal(v.import_wh, 7000);
    assert_int_equal(v.import_wrap_wh, INT64_C(4294967296000));
    assert_int_equal(v.import_tick_wh, 1000);
    assert_int_equal(v.soc_permille, 990);
    assert_int_equal(v.power_q | v.import_q | v.export_q | v.soc_q, 0);
    /* the chain moved (another model at that address): extraction refuses */
    im->regs[a] = 204;
    assert_int_equal(mtr_sunspec_read(img_read, im, &c, &v), MTR_E_CHAIN);
    free(im);
}

static void chain_limits(void **state)
{
    (void)state;
    image *im = malloc(sizeof *im);
    mtr_sunspec_chain c;
    /* ends by exception right after the last model (no 0xFFFF) */
    uint16_t ids[] = {1, 113}, lens[] = {66, 60};
    uint32_t end = build(im, 40000, ids, lens, 2);
    im->hi = end;
    assert_int_equal(mtr_sunspec_discover(img_read, im, &c), MTR_OK);
    assert_int_equal(c.inverter, 1);
    /* a meter model too short for its fields */
    uint16_t ids2[] = {203}, lens2[] = {20};
    build(im, 40000, ids2, lens2, 1);
    assert_int_equal(mtr_sunspec_discover(img_read, im, &c), MTR_E_CHAIN);
    /* a model running past 65535 */
    build(im, 0, ids, lens, 0);
    im->regs[2] = 1;
    im->regs[3] = 65534;
    im->hi = 65536;
    assert_int_equal(mtr_sunspec_discover(img_read, im, &c), MTR_E_CHAIN);
    /* more than MTR_SUNSPEC_MAX_MODELS models */
    uint16_t many_ids[70], many_lens[70];
    for (int i = 0; i < 70; i++)
        many_ids[i] = 64000, many_lens[i] = 0;
    build(im, 40000, many_ids, many_lens, 70);
    assert_int_equal(mtr_sunspec_discover(img_read, im, &c), MTR_E_CHAIN);
    /* only vendor models: nothing mgx can read */
    build(im, 40000, many_ids, many_lens, 3);
    assert_int_equal(mtr_sunspec_discover(img_read, im, &c), MTR_E_NO_MODEL);
    /* no marker anywhere */
    memset(im, 0, sizeof *im);
    im->hi = 65536;
    assert_int_equal(mtr_sunspec_discover(img_read, im, &c), MTR_E_NOT_SUNSPEC);
    assert_int_equal(im->reads, 3);
    /* a timeout at the first base ends discovery: one read, not three timeouts */
    im->fail = MTR_E_TIMEOUT;
    im->reads = 0;
    assert_int_equal(mtr_sunspec_discover(img_read, im, &c), MTR_E_TIMEOUT);
    assert_int_equal(im->reads, 1);
    free(im);
}

static void strings(void **state)
{
    (void)state;
    uint16_t r[4] = {0x4142, 0x4320, 0x2000, 0x0000}; /* "ABC  " NUL-padded */
    char out[16];
    mtr_sunspec_string(r, 4, out, sizeof out);
    assert_string_equal(out, "ABC");
    uint16_t bad[2] = {0x41FF, 0x0A42};
    mtr_sunspec_string(bad, 2, out, sizeof out);
    assert_string_equal(out, "A??B");
    mtr_sunspec_string(r, 4, out, 3);
    assert_string_equal(out, "AB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bases),
        cmocka_unit_test(chain_of_models),
        cmocka_unit_test(chain_limits),
        cmocka_unit_test(strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
