/*
 * Register words to values: the decoders every profile uses. Word orders, SunSpec sentinels,
 * NaN detection and exact decimal scaling with one rounding rule (nearest, halves away from
 * zero). See mgx/regmap.h for the contract.
 */
#include "mgx/regmap.h"
#include "mgx/meter.h"

#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

static const char *const TYPE_NAMES[] = {"int16", "uint16", "int32", "uint32", "acc32", "float32"};
static const char *const ORDER_NAMES[] = {"abcd", "cdab", "badc", "dcba"};
#define N_TYPES (sizeof TYPE_NAMES / sizeof TYPE_NAMES[0])
#define N_ORDERS (sizeof ORDER_NAMES / sizeof ORDER_NAMES[0])

unsigned mtr_reg_words(mtr_reg_type t)
{
    return t == MTR_INT16 || t == MTR_UINT16 ? 1u : 2u;
}

const char *mtr_reg_type_name(mtr_reg_type t)
{
    return (unsigned)t < N_TYPES ? TYPE_NAMES[t] : NULL;
}

const char *mtr_word_order_name(mtr_word_order o)
{
    return (unsigned)o < N_ORDERS ? ORDER_NAMES[o] : NULL;
}

int mtr_reg_type_parse(const char *s, mtr_reg_type *out)
{
    for (unsigned i = 0; s && i < N_TYPES; i++)
        if (strcasecmp(s, TYPE_NAMES[i]) == 0) {
            *out = (mtr_reg_type)i;
            return 0;
        }
    return -1;
}

int mtr_word_order_parse(const char *s, mtr_word_order *out)
{
    for (unsigned i = 0; s && i < N_ORDERS; i++)
        if (strcasecmp(s, ORDER_NAMES[i]) == 0) {
            *out = (mtr_word_order)i;
            return 0;
        }
    return -1;
}

int mtr_scale_parse(const char *s, mtr_scale *out)
{
    const int64_t mant_max = INT64_C(1000000000000000);
    int64_t mant = 0;
    int exp10 = 0, neg = 0, digits = 0, dot = 0;
    if (!s || !out)
        return -1;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    for (; *s && (isdigit((unsigned char)*s) || (*s == '.' && !dot)); s++) {
        if (*s == '.') {
            dot = 1;
            continue;
        }
        if (mant == 0 && *s == '0') { /* leading zeros cost no mantissa */
            digits++;
            exp10 -= dot;
            continue;
        }
        if (mant > (mant_max - (*s - '0')) / 10)
            return -1;
        mant = mant * 10 + (*s - '0');
        exp10 -= dot;
        digits++;
    }
    if (digits == 0)
        return -1;
    if (*s == 'e' || *s == 'E') {
        int eneg = 0, e = 0, edigits = 0;
        s++;
        if (*s == '+' || *s == '-')
            eneg = *s++ == '-';
        for (; isdigit((unsigned char)*s) && e < 1000; s++, edigits++)
            e = e * 10 + (*s - '0');
        if (edigits == 0)
            return -1;
        exp10 += eneg ? -e : e;
    }
    if (*s != '\0' || mant == 0)
        return -1;
    /* trailing zeros of the mantissa move into the exponent: "1000" is 1e3 */
    while (mant % 10 == 0 && exp10 < MTR_SCALE_EXP_MAX) {
        mant /= 10;
        exp10++;
    }
    if (exp10 > MTR_SCALE_EXP_MAX || exp10 < -MTR_SCALE_EXP_MAX)
        return -1;
    out->mant = neg ? -mant : mant;
    out->exp10 = exp10;
    return 0;
}

/* The 32-bit value ABCD from two wire registers in order o. */
static uint32_t join32(const uint16_t *r, mtr_word_order o)
{
    uint32_t r0 = r[0], r1 = r[1];
    switch (o) {
    case MTR_CDAB:
        return r1 << 16 | r0;
    case MTR_BADC:
        return (uint32_t)(((r0 & 0xFFu) << 24) | ((r0 >> 8) << 16) | ((r1 & 0xFFu) << 8) | (r1 >> 8));
    case MTR_DCBA:
        return (uint32_t)(((r1 & 0xFFu) << 24) | ((r1 >> 8) << 16) | ((r0 & 0xFFu) << 8) | (r0 >> 8));
    case MTR_ABCD:
    default:
        return r0 << 16 | r1;
    }
}

static void split32(uint32_t v, mtr_word_order o, uint16_t *r)
{
    uint16_t ab = (uint16_t)(v >> 16), cd = (uint16_t)v;
    uint16_t ba = (uint16_t)((ab >> 8) | (ab << 8)), dc = (uint16_t)((cd >> 8) | (cd << 8));
    switch (o) {
    case MTR_CDAB:
        r[0] = cd, r[1] = ab;
        break;
    case MTR_BADC:
        r[0] = ba, r[1] = dc;
        break;
    case MTR_DCBA:
        r[0] = dc, r[1] = ba;
        break;
    case MTR_ABCD:
    default:
        r[0] = ab, r[1] = cd;
        break;
    }
}

static uint16_t word16(uint16_t r, mtr_word_order o)
{
    return o == MTR_BADC || o == MTR_DCBA ? (uint16_t)((r >> 8) | (r << 8)) : r;
}

uint32_t mtr_reg_decode(const uint16_t *regs, mtr_reg_type t, mtr_word_order o, int sunspec_na,
                        mtr_raw *out)
{
    uint32_t q = 0;
    memset(out, 0, sizeof *out);
    if (t == MTR_INT16 || t == MTR_UINT16) {
        uint16_t w = word16(regs[0], o);
        out->i = t == MTR_INT16 ? (int64_t)(int16_t)w : (int64_t)w;
        if (sunspec_na && w == (t == MTR_INT16 ? 0x8000u : 0xFFFFu))
            q = MTR_Q_NOT_IMPLEMENTED;
        return q;
    }
    uint32_t v = join32(regs, o);
    switch (t) {
    case MTR_INT32:
        out->i = (int64_t)(int32_t)v;
        if (sunspec_na && v == 0x80000000u)
            q = MTR_Q_NOT_IMPLEMENTED;
        break;
    case MTR_UINT32:
        out->i = (int64_t)v;
        if (sunspec_na && v == 0xFFFFFFFFu)
            q = MTR_Q_NOT_IMPLEMENTED;
        break;
    case MTR_ACC32:
        out->i = (int64_t)v;
        break;
    case MTR_FLOAT32:
    default: {
        float f;
        memcpy(&f, &v, sizeof f);
        out->is_float = 1;
        out->f = (double)f;
        if (!isfinite(out->f))
            q = MTR_Q_NAN;
        break;
    }
    }
    return q;
}

void mtr_reg_encode(const mtr_raw *v, mtr_reg_type t, mtr_word_order o, uint16_t *regs)
{
    if (t == MTR_INT16 || t == MTR_UINT16) {
        regs[0] = word16((uint16_t)(uint64_t)v->i, o);
        return;
    }
    uint32_t w;
    if (t == MTR_FLOAT32) {
        float f = (float)v->f;
        memcpy(&w, &f, sizeof w);
    } else {
        w = (uint32_t)(uint64_t)v->i;
    }
    split32(w, o, regs);
}

/* 10^n for 0 <= n <= 38 in 128 bits. */
__extension__ typedef __int128 i128;
static i128 pow10_i128(int n)
{
    i128 p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

/* a / b rounded to nearest, halves away from zero; b > 0. */
static i128 div_round(i128 a, i128 b)
{
    i128 q = a / b, r = a % b;
    if (r < 0)
        r = -r;
    if (2 * r >= b)
        q += a < 0 ? -1 : 1;
    return q;
}

uint32_t mtr_scale_apply(const mtr_raw *raw, mtr_scale scale, int64_t *out)
{
    *out = 0;
    if (scale.exp10 > MTR_SCALE_EXP_MAX || scale.exp10 < -MTR_SCALE_EXP_MAX)
        return MTR_Q_RANGE;
    if (raw->is_float) {
        if (!isfinite(raw->f))
            return MTR_Q_NAN;
        double x = raw->f * (double)scale.mant * pow(10.0, (double)scale.exp10);
        x = x < 0 ? -floor(-x + 0.5) : floor(x + 0.5);
        if (!(fabs(x) <= (double)MTR_VALUE_MAX))
            return MTR_Q_RANGE;
        *out = (int64_t)x;
        return 0;
    }
    /* |raw| < 2^32 and |mant| <= 1e15 < 2^50: the product fits in 83 bits, x 10^18 in 143 -
     * too many, so bound the product before multiplying by the power of ten. */
    i128 x = (i128)raw->i * scale.mant;
    i128 lim = (i128)MTR_VALUE_MAX;
    if (scale.exp10 >= 0) {
        i128 p = pow10_i128(scale.exp10);
        if (x > lim || x < -lim || (x != 0 && (x > lim / p || x < -lim / p)))
            return MTR_Q_RANGE;
        x *= p;
    } else {
        x = div_round(x, pow10_i128(-scale.exp10));
    }
    if (x > lim || x < -lim)
        return MTR_Q_RANGE;
    *out = (int64_t)x;
    return 0;
}

uint32_t mtr_scale_apply_sf(const mtr_raw *raw, int sf, int64_t *out)
{
    if (sf < -10 || sf > 10) {
        *out = 0;
        return MTR_Q_NOT_IMPLEMENTED;
    }
    return mtr_scale_apply(raw, (mtr_scale){1, sf}, out);
}

int64_t mtr_scale_tick(const mtr_raw *raw, mtr_scale scale)
{
    double step = fabs((double)scale.mant) * pow(10.0, (double)scale.exp10);
    if (raw->is_float && isfinite(raw->f)) {
        float f = (float)raw->f;
        step *= (double)(nextafterf(fabsf(f), INFINITY) - fabsf(f));
    }
    if (!(step < (double)MTR_VALUE_MAX))
        return MTR_VALUE_MAX;
    int64_t t = (int64_t)ceil(step);
    return t < 1 ? 1 : t;
}

uint32_t mtr_field_decode(const mtr_field *f, const uint16_t *block, uint16_t base, size_t count,
                          int64_t *out, int64_t *wrap, int64_t *tick)
{
    mtr_raw raw;
    unsigned words = mtr_reg_words(f->type);
    *out = 0;
    if (wrap)
        *wrap = 0;
    if (tick)
        *tick = 1;
    if (f->addr < base || (size_t)(f->addr - base) + words > count)
        return MTR_Q_COMM;
    uint32_t q = mtr_reg_decode(block + (f->addr - base), f->type, f->order, f->sunspec_na, &raw);
    if (q)
        return q;
    q = mtr_scale_apply(&raw, f->scale, out);
    if (tick)
        *tick = mtr_scale_tick(&raw, f->scale);
    if (wrap && (f->type == MTR_UINT16 || f->type == MTR_UINT32 || f->type == MTR_ACC32) &&
        f->scale.mant > 0) {
        mtr_raw m = {0, f->type == MTR_UINT16 ? INT64_C(65536) : INT64_C(4294967296), 0.0};
        int64_t w;
        if (mtr_scale_apply(&m, f->scale, &w) == 0)
            *wrap = w;
    }
    return q;
}
