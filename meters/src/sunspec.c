/*
 * SunSpec discovery, model-chain walking and per-model field extraction over an abstract read
 * function (see mgx/sunspec.h). Offsets are from each model's ID register, as in the SunSpec
 * model definitions (github.com/sunspec/models, models 1, 103, 113, 124, 203, 213, 802).
 */
#include "mgx/sunspec.h"
#include "mgx/meter_error.h"
#include "mgx/regmap.h"

#include <string.h>

const uint16_t mtr_sunspec_bases[3] = {40000, 50000, 0};

/* Field offsets from the ID register. */
enum {
    INV_W = 14, INV_W_SF = 15, INV_WH = 24, INV_WH_SF = 26,  /* 101-103 */
    INVF_W = 22, INVF_WH = 32,                               /* 111-113 */
    MTR_W = 18, MTR_W_SF = 22, MTR_EXP = 38, MTR_IMP = 46, MTR_WH_SF = 54, /* 201-204 */
    MTRF_W = 28, MTRF_EXP = 60, MTRF_IMP = 68,               /* 211-214 */
    STO_CHA = 8, STO_CHA_SF = 22,                            /* 124 */
    BAT_SOC = 11, BAT_SOC_SF = 56,                           /* 802 */
    COM_MN = 2, COM_MD = 18, COM_SN = 50, COM_STR = 16       /* 1 */
};

static int is_inverter(uint16_t id)
{
    return (id >= 101 && id <= 103) || (id >= 111 && id <= 113);
}

static int is_meter(uint16_t id)
{
    return (id >= 201 && id <= 204) || (id >= 211 && id <= 214);
}

uint16_t mtr_sunspec_span(uint16_t id, uint16_t len)
{
    uint16_t span = 0;
    if (id == 1)
        span = COM_SN + COM_STR;
    else if (id >= 101 && id <= 103)
        span = INV_WH_SF + 1;
    else if (id >= 111 && id <= 113)
        span = INVF_WH + 2;
    else if (id >= 201 && id <= 204)
        span = MTR_WH_SF + 1;
    else if (id >= 211 && id <= 214)
        span = MTRF_IMP + 2;
    else if (id == 124)
        span = STO_CHA_SF + 1;
    else if (id == 802)
        span = BAT_SOC_SF + 1;
    return (uint32_t)len + 2 < span ? 0 : span;
}

static void pick(mtr_sunspec_chain *c)
{
    c->meter = c->inverter = c->storage = c->battery = -1;
    for (size_t i = 0; i < c->n; i++) {
        uint16_t id = c->m[i].id;
        int *slot = is_meter(id) ? &c->meter
                    : is_inverter(id) ? &c->inverter
                    : id == 124       ? &c->storage
                    : id == 802       ? &c->battery
                                      : NULL;
        if (slot && *slot < 0)
            *slot = (int)i;
    }
}

/* Every model mgx will read must be long enough for its fields. */
static int check_spans(const mtr_sunspec_chain *c)
{
    int used[4] = {c->meter, c->inverter, c->storage, c->battery};
    for (int k = 0; k < 4; k++)
        if (used[k] >= 0 && mtr_sunspec_span(c->m[used[k]].id, c->m[used[k]].len) == 0)
            return MTR_E_CHAIN;
    return MTR_OK;
}

static int walk(mtr_read_fn read, void *ctx, mtr_sunspec_chain *c)
{
    uint32_t addr = (uint32_t)c->base + 2;
    while (addr + 2 <= 65536u) {
        uint16_t hdr[2];
        int rc = read(ctx, 3, (uint16_t)addr, 2, hdr);
        if (rc == MTR_E_EXCEPTION && c->n > 0)
            break; /* some devices end the chain with an exception instead of 0xFFFF */
        if (rc)
            return rc;
        if (hdr[0] == MTR_SUNSPEC_ID_END)
            break;
        if (addr + 2 + hdr[1] > 65536u || c->n == MTR_SUNSPEC_MAX_MODELS)
            return MTR_E_CHAIN;
        c->m[c->n++] = (mtr_sunspec_model){hdr[0], hdr[1], (uint16_t)addr};
        addr += 2u + hdr[1];
    }
    pick(c);
    if (c->meter < 0 && c->inverter < 0)
        return MTR_E_NO_MODEL;
    return check_spans(c);
}

int mtr_sunspec_discover(mtr_read_fn read, void *ctx, mtr_sunspec_chain *chain)
{
    memset(chain, 0, sizeof *chain);
    chain->meter = chain->inverter = chain->storage = chain->battery = -1;
    for (size_t i = 0; i < sizeof mtr_sunspec_bases / sizeof mtr_sunspec_bases[0]; i++) {
        uint16_t r[2];
        int rc = read(ctx, 3, mtr_sunspec_bases[i], 2, r);
        if (rc == MTR_E_EXCEPTION)
            continue;
        if (rc)
            return rc;
        if (r[0] == 0x5375 && r[1] == 0x6E53) {
            chain->base = mtr_sunspec_bases[i];
            return walk(read, ctx, chain);
        }
    }
    return MTR_E_NOT_SUNSPEC;
}

/* A value with a SunSpec scale-factor register. */
static uint32_t scaled(const uint16_t *regs, mtr_reg_type t, int off, int sf_off, int64_t *out)
{
    mtr_raw v, sf;
    uint32_t q = mtr_reg_decode(regs + off, t, MTR_ABCD, 1, &v);
    q |= mtr_reg_decode(regs + sf_off, MTR_INT16, MTR_ABCD, 1, &sf);
    if (q) {
        *out = 0;
        return q;
    }
    return mtr_scale_apply_sf(&v, (int)sf.i, out);
}

/* A float32 value (float models carry no scale factors). */
static uint32_t flt(const uint16_t *regs, int off, int64_t *out)
{
    mtr_raw v;
    uint32_t q = mtr_reg_decode(regs + off, MTR_FLOAT32, MTR_ABCD, 1, &v);
    if (q) {
        *out = 0;
        return q;
    }
    return mtr_scale_apply(&v, MTR_SCALE_ONE, out);
}

/* Wrap modulus and tick of an acc32 counter with scale factor register sf_off. */
static void acc_props(const uint16_t *regs, int sf_off, int64_t *wrap, int64_t *tick)
{
    mtr_raw m = {0, INT64_C(4294967296), 0.0}, one = {0, 1, 0.0}, sf;
    *wrap = 0;
    *tick = 1;
    if (mtr_reg_decode(regs + sf_off, MTR_INT16, MTR_ABCD, 1, &sf))
        return;
    if (mtr_scale_apply_sf(&m, (int)sf.i, wrap))
        *wrap = 0;
    if (mtr_scale_apply_sf(&one, (int)sf.i, tick) || *tick < 1)
        *tick = 1;
}

static void float_tick(const uint16_t *regs, int off, int64_t *tick)
{
    mtr_raw v;
    mtr_reg_decode(regs + off, MTR_FLOAT32, MTR_ABCD, 0, &v);
    *tick = mtr_scale_tick(&v, MTR_SCALE_ONE);
}

static void extract_meter(uint16_t id, const uint16_t *r, mtr_values *v)
{
    if (id <= 204) {
        v->power_q = scaled(r, MTR_INT16, MTR_W, MTR_W_SF, &v->power_w);
        v->import_q = scaled(r, MTR_ACC32, MTR_IMP, MTR_WH_SF, &v->import_wh);
        v->export_q = scaled(r, MTR_ACC32, MTR_EXP, MTR_WH_SF, &v->export_wh);
        acc_props(r, MTR_WH_SF, &v->import_wrap_wh, &v->import_tick_wh);
        acc_props(r, MTR_WH_SF, &v->export_wrap_wh, &v->export_tick_wh);
    } else {
        v->power_q = flt(r, MTRF_W, &v->power_w);
        v->import_q = flt(r, MTRF_IMP, &v->import_wh);
        v->export_q = flt(r, MTRF_EXP, &v->export_wh);
        v->import_wrap_wh = v->export_wrap_wh = 0;
        float_tick(r, MTRF_IMP, &v->import_tick_wh);
        float_tick(r, MTRF_EXP, &v->export_tick_wh);
    }
}

/* An inverter generates: its power is export (negative), its lifetime energy the export counter. */
static void extract_inverter(uint16_t id, const uint16_t *r, mtr_values *v)
{
    if (id <= 103) {
        v->power_q = scaled(r, MTR_INT16, INV_W, INV_W_SF, &v->power_w);
        v->export_q = scaled(r, MTR_ACC32, INV_WH, INV_WH_SF, &v->export_wh);
        acc_props(r, INV_WH_SF, &v->export_wrap_wh, &v->export_tick_wh);
    } else {
        v->power_q = flt(r, INVF_W, &v->power_w);
        v->export_q = flt(r, INVF_WH, &v->export_wh);
        float_tick(r, INVF_WH, &v->export_tick_wh);
    }
    v->power_w = -v->power_w;
    v->import_wh = 0;
    v->import_q = 0;
    v->import_wrap_wh = 0;
    v->import_tick_wh = 1;
}

/* State of charge in percent with a scale factor, kept in permille (one more digit). */
static void extract_soc(const uint16_t *r, int off, int sf_off, mtr_values *v)
{
    mtr_raw pct, sf;
    int64_t permille = 0;
    uint32_t q = mtr_reg_decode(r + off, MTR_UINT16, MTR_ABCD, 1, &pct);
    q |= mtr_reg_decode(r + sf_off, MTR_INT16, MTR_ABCD, 1, &sf);
    if (!q)
        q = sf.i < -10 || sf.i > 10 ? MTR_Q_NOT_IMPLEMENTED
                                    : mtr_scale_apply(&pct, (mtr_scale){1, (int)sf.i + 1}, &permille);
    if (!q && (permille < 0 || permille > 1000))
        q = MTR_Q_RANGE;
    v->has_soc = 1;
    v->soc_q = q;
    v->soc_permille = q ? -1 : (int32_t)permille;
}

int mtr_sunspec_extract(uint16_t id, const uint16_t *regs, size_t n, mtr_values *v)
{
    uint16_t span = n >= 2 ? mtr_sunspec_span(id, regs[1]) : 0;
    if (n < 2 || regs[0] != id || span == 0 || n < span)
        return MTR_E_CHAIN;
    if (is_meter(id))
        extract_meter(id, regs, v);
    else if (is_inverter(id))
        extract_inverter(id, regs, v);
    else if (id == 124)
        extract_soc(regs, STO_CHA, STO_CHA_SF, v);
    else if (id == 802)
        extract_soc(regs, BAT_SOC, BAT_SOC_SF, v);
    return MTR_OK;
}

static int read_model(mtr_read_fn read, void *ctx, const mtr_sunspec_model *m, uint16_t *buf,
                      mtr_values *v)
{
    uint16_t span = mtr_sunspec_span(m->id, m->len);
    int rc = span ? read(ctx, 3, m->addr, span, buf) : MTR_E_CHAIN;
    return rc ? rc : mtr_sunspec_extract(m->id, buf, span, v);
}

int mtr_sunspec_read(mtr_read_fn read, void *ctx, const mtr_sunspec_chain *chain, mtr_values *v)
{
    uint16_t buf[128];
    int primary = chain->meter >= 0 ? chain->meter : chain->inverter;
    int soc = chain->battery >= 0 ? chain->battery : chain->storage;
    memset(v, 0, sizeof *v);
    v->import_tick_wh = v->export_tick_wh = 1;
    if (primary < 0)
        return MTR_E_NO_MODEL;
    int rc = read_model(read, ctx, &chain->m[primary], buf, v);
    if (rc == MTR_OK && soc >= 0)
        rc = read_model(read, ctx, &chain->m[soc], buf, v);
    return rc;
}

void mtr_sunspec_string(const uint16_t *regs, size_t nregs, char *dst, size_t dstlen)
{
    size_t k = 0;
    if (dstlen == 0)
        return;
    for (size_t i = 0; i < nregs * 2 && k + 1 < dstlen; i++) {
        unsigned char ch = (unsigned char)(i % 2 ? regs[i / 2] & 0xFF : regs[i / 2] >> 8);
        if (ch == 0)
            break;
        dst[k++] = ch >= 0x20 && ch < 0x7F ? (char)ch : '?';
    }
    while (k > 0 && dst[k - 1] == ' ')
        k--;
    dst[k] = '\0';
}

int mtr_sunspec_meta(mtr_read_fn read, void *ctx, const mtr_sunspec_chain *chain, mtr_meta *meta)
{
    uint16_t buf[128];
    meta->make[0] = meta->model[0] = meta->serial[0] = '\0';
    for (size_t i = 0; i < chain->n; i++) {
        const mtr_sunspec_model *m = &chain->m[i];
        uint16_t span = mtr_sunspec_span(m->id, m->len);
        if (m->id != 1 || span == 0)
            continue;
        int rc = read(ctx, 3, m->addr, span, buf);
        if (rc)
            return rc;
        mtr_sunspec_string(buf + COM_MN, COM_STR, meta->make, sizeof meta->make);
        mtr_sunspec_string(buf + COM_MD, COM_STR, meta->model, sizeof meta->model);
        mtr_sunspec_string(buf + COM_SN, COM_STR, meta->serial, sizeof meta->serial);
        break;
    }
    return MTR_OK;
}
