/*
 * Fuzz harness for the meters decoders: register words of every type and word order, decimal
 * scales, register-map block plans, a SunSpec register image walked by the chain parser, the
 * scale parser and the counter filter. Invariants: no crash or UB; a decoded value re-encodes to
 * the same words; scaled values stay within +-MTR_VALUE_MAX and integer scaling matches an
 * independent computation; every planned block is within 1..max_regs and covers its fields;
 * a discovered chain is ordered and inside the address space; accepted counter totals never
 * go down.
 *
 * Input: byte 0 selects the part to exercise, the rest is its data (see each check_*).
 */
#include "fuzz.h"

#include "mgx/counter.h"
#include "mgx/meter.h"
#include "mgx/meter_error.h"
#include "mgx/meter_map.h"
#include "mgx/regmap.h"
#include "mgx/sunspec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "fuzz_regmap: %s\n", what);
    abort();
}

typedef struct {
    const uint8_t *p;
    size_t n;
} cursor;

static uint8_t u8(cursor *c)
{
    if (c->n == 0)
        return 0;
    c->n--;
    return *c->p++;
}

static uint16_t u16(cursor *c)
{
    uint16_t hi = u8(c);
    return (uint16_t)(hi << 8 | u8(c));
}

/* [type][order][na][scale mant i8][scale exp i8][r0 r1] */
static void check_decode(cursor *c)
{
    mtr_reg_type t = (mtr_reg_type)(u8(c) % 6);
    mtr_word_order o = (mtr_word_order)(u8(c) % 4);
    int na = u8(c) & 1;
    int64_t mant = (int8_t)u8(c);
    int exp10 = (int8_t)u8(c) % 20;
    uint16_t regs[2] = {u16(c), u16(c)}, again[2] = {0, 0};
    mtr_raw raw, raw2;
    uint32_t q = mtr_reg_decode(regs, t, o, na, &raw);
    if (q & ~(uint32_t)(MTR_Q_NAN | MTR_Q_NOT_IMPLEMENTED))
        die("decode returned an unexpected bit");
    unsigned words = mtr_reg_words(t);
    if (!(q & MTR_Q_NAN)) {
        mtr_reg_encode(&raw, t, o, again);
        if (memcmp(regs, again, words * sizeof regs[0]) != 0)
            die("re-encoding gives other words");
        if (mtr_reg_decode(again, t, o, na, &raw2) != q || raw2.i != raw.i ||
            (raw.is_float && raw2.f != raw.f))
            die("decode of the re-encoded words differs");
    }
    if (mant == 0)
        mant = 1;
    mtr_scale s = {mant, exp10};
    int64_t out = 0;
    uint32_t sq = mtr_scale_apply(&raw, s, &out);
    if (sq == 0 && (out > MTR_VALUE_MAX || out < -MTR_VALUE_MAX))
        die("scaled value out of range without a flag");
    if (sq && out != 0)
        die("flagged scaled value is not 0");
    if (sq == 0 && !raw.is_float && exp10 >= 0 && exp10 <= 6) {
        /* independent: raw x mant x 10^exp fits easily in double-checked int128 here */
        __extension__ __int128 want = (__int128)raw.i * mant;
        for (int k = 0; k < exp10; k++)
            want *= 10;
        if (want != out)
            die("integer scaling differs from raw x mant x 10^exp");
    }
    if (!q && mtr_scale_tick(&raw, s) < 1)
        die("tick below 1");
}

static void check_parse(cursor *c)
{
    char buf[64];
    size_t n = c->n < sizeof buf - 1 ? c->n : sizeof buf - 1;
    memcpy(buf, c->p, n);
    buf[n] = '\0';
    mtr_scale s;
    if (mtr_scale_parse(buf, &s) == 0 &&
        (s.mant == 0 || s.exp10 > MTR_SCALE_EXP_MAX || s.exp10 < -MTR_SCALE_EXP_MAX ||
         s.mant > INT64_C(1000000000000000) || s.mant < -INT64_C(1000000000000000)))
        die("parsed scale out of bounds");
}

static void rand_field(cursor *c, mtr_field *f)
{
    f->present = u8(c) % 4 != 0;
    f->fc = (uint8_t)(3 + (u8(c) & 1));
    f->addr = u16(c);
    f->type = (mtr_reg_type)(u8(c) % 6);
    f->order = (mtr_word_order)(u8(c) % 4);
    f->scale = (mtr_scale){1 + (u8(c) % 100), (int8_t)u8(c) % 8};
    f->sunspec_na = u8(c) & 1;
}

static void check_plan(cursor *c)
{
    mtr_map m;
    memset(&m, 0, sizeof m);
    m.max_regs = (uint16_t)(u8(c) % 130);
    rand_field(c, &m.power);
    rand_field(c, &m.import);
    rand_field(c, &m.export);
    rand_field(c, &m.soc);
    m.export_positive = u8(c) & 1;
    mtr_plan p;
    if (mtr_map_plan(&m, &p) != MTR_OK)
        return;
    unsigned max = m.max_regs >= 2 && m.max_regs <= MTR_READ_MAX ? m.max_regs : MTR_READ_MAX;
    static uint16_t regs[MTR_PLAN_MAX][MTR_READ_MAX];
    const uint16_t *blocks[MTR_PLAN_MAX];
    for (size_t i = 0; i < p.n; i++) {
        if (p.b[i].count < 1 || p.b[i].count > max || (uint32_t)p.b[i].addr + p.b[i].count > 65536)
            die("planned block out of bounds");
        for (unsigned k = 0; k < p.b[i].count; k++)
            regs[i][k] = u16(c);
        blocks[i] = regs[i];
    }
    mtr_values v;
    mtr_map_decode(&m, &p, blocks, &v);
    if (v.power_q & MTR_Q_COMM)
        die("a planned field was not covered by its plan");
    if (v.has_soc && !v.soc_q && (v.soc_permille < 0 || v.soc_permille > 1000))
        die("soc out of range without a flag");
}

typedef struct {
    uint16_t *regs;
    uint32_t hi;
} image;

static int img_read(void *ctx, int fc, uint16_t addr, uint16_t count, uint16_t *dst)
{
    image *im = ctx;
    if (fc != 3 || count == 0 || count > 125)
        die("read with a bad function or count");
    if ((uint32_t)addr + count > im->hi)
        return MTR_E_EXCEPTION;
    memcpy(dst, im->regs + addr, count * sizeof *dst);
    return 0;
}

/* A register image: "SunS" at a base chosen by the input, the rest of the input as registers. */
static void check_sunspec(cursor *c)
{
    static uint16_t regs[65536];
    uint16_t base = mtr_sunspec_bases[u8(c) % 3];
    image im = {regs, 65536};
    memset(regs, 0xFF, sizeof regs);
    regs[base] = 0x5375;
    regs[base + 1] = 0x6E53;
    for (uint32_t a = base + 2u; c->n >= 2 && a < 65536; a++)
        regs[a] = u16(c);
    mtr_sunspec_chain ch;
    int rc = mtr_sunspec_discover(img_read, &im, &ch);
    if (ch.n > MTR_SUNSPEC_MAX_MODELS)
        die("chain longer than its bound");
    uint32_t prev_end = base + 2u;
    for (size_t i = 0; i < ch.n; i++) {
        if (ch.m[i].addr != prev_end || ch.m[i].addr + 2u + ch.m[i].len > 65536u)
            die("chain out of order or out of the address space");
        prev_end = ch.m[i].addr + 2u + ch.m[i].len;
    }
    if (rc != MTR_OK)
        return;
    mtr_values v;
    mtr_meta meta;
    if (mtr_sunspec_read(img_read, &im, &ch, &v) == MTR_OK && v.has_soc && !v.soc_q &&
        (v.soc_permille < 0 || v.soc_permille > 1000))
        die("soc out of range without a flag");
    if (mtr_sunspec_meta(img_read, &im, &ch, &meta) == MTR_OK &&
        (!memchr(meta.make, 0, sizeof meta.make) || !memchr(meta.serial, 0, sizeof meta.serial)))
        die("meta string not terminated");
}

/* A sequence of counter readings: [dt u8][value as 3 bytes][flags] each. */
static void check_counter(cursor *c)
{
    mtr_counter ctr;
    mtr_counter_params p;
    mtr_counter_params_default(&p);
    p.max_power_w = u8(c) * 100;
    p.confirm = u8(c) % 5;
    int64_t wrap = (u8(c) & 1) ? (int64_t)1 << 20 : 0;
    mtr_counter_init(&ctr);
    int64_t ts = 0, last = INT64_MIN;
    while (c->n >= 5) {
        ts += u8(c) * 1000;
        int64_t v = (int64_t)u8(c) << 16 | (int64_t)u16(c);
        uint8_t fl = u8(c);
        if (fl & 1)
            v = -v;
        if (wrap && v >= wrap)
            v %= wrap;
        uint32_t q = (fl & 2) ? MTR_Q_NAN : 0;
        int64_t out;
        uint32_t r = mtr_counter_step(&ctr, &p, ts, v, q, wrap, 1, &out);
        int accepted = (r & ~(uint32_t)(MTR_Q_ROLLOVER | MTR_Q_RESET)) == 0;
        if (accepted) {
            if (out < last)
                die("an accepted total went down");
            last = out;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cursor c = {data, size};
    switch (u8(&c) % 5) {
    case 0:
        check_decode(&c);
        break;
    case 1:
        check_parse(&c);
        break;
    case 2:
        check_plan(&c);
        break;
    case 3:
        check_sunspec(&c);
        break;
    default:
        check_counter(&c);
        break;
    }
    return 0;
}
