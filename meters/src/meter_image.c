/*
 * Register images of the simulated meters (see meter_image.h): where each value sits in an
 * Eastron SDM630 and in a SunSpec model 203 meter, and how it is encoded. The simulation sees
 * a three-phase home, balanced over the phases at 230 V / 50 Hz with unity power factor, so
 * the per-phase and derived values are consistent with the totals a poller reads.
 */
#include "meter_image.h"

#include "mgx/regmap.h"

#include <math.h>
#include <string.h>

#define VOLTS 230.0
#define HZ    50.0

void mtr__put_float_abcd(uint16_t *regs, float v)
{
    mtr_raw raw = {.is_float = 1, .f = (double)v}; /* widening is exact: the same float back */
    mtr_reg_encode(&raw, MTR_FLOAT32, MTR_ABCD, regs);
}

/* Registers of an absolute address inside the image. */
static uint16_t *at(mtr__image *im, unsigned addr)
{
    return &im->regs[addr - im->base];
}

static void put_string(uint16_t *regs, unsigned n_regs, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    for (unsigned i = 0; i < n_regs; i++) {
        unsigned hi = 2 * i < len ? (unsigned char)s[2 * i] : 0;
        unsigned lo = 2 * i + 1 < len ? (unsigned char)s[2 * i + 1] : 0;
        regs[i] = (uint16_t)(hi << 8 | lo);
    }
}

static void sdm_init(mtr__image *im)
{
    im->fc = 4;
    im->base = 0;
    im->n = MTR__SDM_END;
    im->max_read = 60; /* field facts: the SDM630 refuses requests over 30 parameters */
    for (unsigned p = 0; p < 3; p++) {
        mtr__put_float_abcd(at(im, MTR__SDM_V_L1 + 2 * p), (float)VOLTS);
        mtr__put_float_abcd(at(im, MTR__SDM_PF_L1 + 2 * p), 1.0f);
    }
    mtr__put_float_abcd(at(im, MTR__SDM_V_AVG), (float)VOLTS);
    mtr__put_float_abcd(at(im, MTR__SDM_PF_TOTAL), 1.0f);
    mtr__put_float_abcd(at(im, MTR__SDM_HZ), (float)HZ);
}

static void sunspec_init(mtr__image *im, uint8_t unit, const char *serial)
{
    im->fc = 3;
    im->base = MTR__SUNS_BASE;
    im->n = MTR__SUNS_END - MTR__SUNS_BASE;
    im->max_read = 125;
    *at(im, MTR__SUNS_BASE) = 0x5375;     /* "Su" */
    *at(im, MTR__SUNS_BASE + 1) = 0x6E53; /* "nS" */
    uint16_t *m1 = at(im, MTR__SUNS_M1);
    m1[0] = 1;
    m1[1] = MTR__SUNS_M1_LEN;
    put_string(m1 + 2, 16, "mgx");              /* Mn */
    put_string(m1 + 18, 16, "simulated meter"); /* Md */
    put_string(m1 + 34, 8, "sim");              /* Opt */
    put_string(m1 + 42, 8, "1.0");              /* Vr */
    put_string(m1 + 50, 16, serial);            /* SN */
    m1[66] = unit;                              /* DA */
    m1[67] = 0x8000;                            /* Pad */
    uint16_t *m = at(im, MTR__SUNS_M203);
    m[0] = 203;
    m[1] = MTR__SUNS_M203_LEN;
    m[MTR__M203_A_SF] = (uint16_t)-2;
    for (unsigned p = 0; p < 4; p++) {
        m[MTR__M203_PHV + p] = (uint16_t)(VOLTS * 10);             /* PhV, PhVphA..C */
        m[MTR__M203_PPV + p] = (uint16_t)(VOLTS * 1.7320508 * 10); /* PPV, PhVphAB.. */
        m[MTR__M203_PF + p] = 10000;                               /* PF 100.00 % */
    }
    m[MTR__M203_V_SF] = (uint16_t)-1;
    m[MTR__M203_HZ] = (uint16_t)(HZ * 100);
    m[MTR__M203_HZ_SF] = (uint16_t)-2;
    m[MTR__M203_VAR_SF] = 0;
    m[MTR__M203_PF_SF] = (uint16_t)-2;
    m[MTR__M203_TOTWH_SF] = 0;
    /* VAh and VArh accumulators stay 0, SunSpec's "not implemented" for acc32, and so do
     * their scale factors (0x8000 for sunssf) */
    m[MTR__M203_TOTVAH_SF] = 0x8000;
    m[MTR__M203_TOTVARH_SF] = 0x8000;
    uint16_t *end = at(im, MTR__SUNS_ENDM);
    end[0] = 0xFFFF;
    end[1] = 0;
}

/* A battery inverter: models 1 and 124 (basic storage controls) and the end marker. */
static void storage_init(mtr__image *im, uint8_t unit, const char *serial)
{
    sunspec_init(im, unit, serial);
    im->n = MTR__SUNS_SEND - MTR__SUNS_BASE;
    put_string(at(im, MTR__SUNS_M1) + 18, 16, "simulated inverter"); /* Md */
    uint16_t *m = at(im, MTR__SUNS_S124);
    memset(m, 0, (2 + MTR__SUNS_S124_LEN + 2) * sizeof *m);
    m[0] = 124;
    m[1] = MTR__SUNS_S124_LEN;
    uint16_t *b = m + 2;
    b[20] = (uint16_t)-2; /* ChaState_SF: 0.01 % */
    b[23] = (uint16_t)-2; /* InOutWRte_SF: 0.01 % */
    b[17] = 0x8000;       /* WChaGra_SF .. unused scale factors: not implemented */
    b[18] = 0x8000;
    b[19] = 0x8000;
    b[21] = 0x8000;
    b[22] = 0x8000;
    uint16_t *end = at(im, MTR__SUNS_SENDM);
    end[0] = 0xFFFF;
    end[1] = 0;
}

void mtr__image_storage_caps(mtr__image *im, int64_t w_cha_max_w)
{
    int sf = 0;
    while (w_cha_max_w > 65534 && sf < 10) {
        w_cha_max_w /= 10;
        sf++;
    }
    uint16_t *b = at(im, MTR__SUNS_S124_BODY);
    b[0] = (uint16_t)w_cha_max_w;
    b[16] = (uint16_t)sf; /* WChaMax_SF */
}

void mtr__image_storage_soc(mtr__image *im, int64_t stored_wh, int64_t capacity_wh)
{
    int64_t bp = 0;
    if (capacity_wh > 0 && stored_wh > 0)
        bp = (stored_wh * 10000 + capacity_wh / 2) / capacity_wh;
    at(im, MTR__SUNS_S124_BODY)[6] = (uint16_t)(bp > 10000 ? 10000 : bp);
}

int mtr__image_storage_writable(uint16_t addr, uint16_t count)
{
    unsigned first = MTR__SUNS_S124_BODY, last = first + 15; /* WChaMax .. ChaGriSet */
    if (addr < first || (unsigned)addr + count - 1 > last)
        return 0;
    for (unsigned a = addr; a < (unsigned)addr + count; a++)
        if (a - first >= 6 && a - first <= 9) /* ChaState, StorAval, InBatV, ChaSt */
            return 0;
    return 1;
}

void mtr__image_init(mtr__image *im, mtr__profile profile, uint8_t unit, const char *serial)
{
    memset(im, 0, sizeof *im);
    if (profile == MTR__PROFILE_SDM630)
        sdm_init(im);
    else if (profile == MTR__PROFILE_STORAGE) {
        storage_init(im, unit, serial);
        return;
    } else
        sunspec_init(im, unit, serial);
    mtr__image_set(im, profile, 0, 0, 0);
}

static void sdm_set(mtr__image *im, int64_t power_w, int64_t import_wh, int64_t export_wh)
{
    double p = (double)power_w, phase = p / 3, amps = fabs(phase) / VOLTS;
    for (unsigned i = 0; i < 3; i++) {
        mtr__put_float_abcd(at(im, MTR__SDM_A_L1 + 2 * i), (float)amps);
        mtr__put_float_abcd(at(im, MTR__SDM_W_L1 + 2 * i), (float)phase);
        mtr__put_float_abcd(at(im, MTR__SDM_VA_L1 + 2 * i), (float)fabs(phase));
    }
    mtr__put_float_abcd(at(im, MTR__SDM_A_AVG), (float)amps);
    mtr__put_float_abcd(at(im, MTR__SDM_A_SUM), (float)(3 * amps));
    mtr__put_float_abcd(at(im, MTR__SDM_W_TOTAL), (float)p);
    mtr__put_float_abcd(at(im, MTR__SDM_VA_TOTAL), (float)fabs(p));
    mtr__put_float_abcd(at(im, MTR__SDM_IMPORT_KWH), (float)((double)import_wh / 1000.0));
    mtr__put_float_abcd(at(im, MTR__SDM_EXPORT_KWH), (float)((double)export_wh / 1000.0));
    mtr__put_float_abcd(at(im, MTR__SDM_TOTAL_KWH),
                        (float)((double)(import_wh + export_wh) / 1000.0));
}

/* v / 10^sf rounded half away from zero. */
static int64_t scale_down(int64_t v, int sf)
{
    int64_t d = 1;
    for (int i = 0; i < sf; i++)
        d *= 10;
    int64_t q = v / d, r = v % d;
    if (2 * (r < 0 ? -r : r) >= d)
        q += v < 0 ? -1 : 1;
    return q;
}

/* The smallest scale factor >= 0 at which v fits an int16 (not -32768, the "not implemented"
 * value). Callers keep |v| below 1e12, so sf stays below 8. */
static int fit_sf(int64_t v)
{
    int sf = 0;
    while (scale_down(v, sf) > 32767 || scale_down(v, sf) < -32767)
        sf++;
    return sf;
}

static void sunspec_set(mtr__image *im, int64_t power_w, int64_t import_wh, int64_t export_wh)
{
    uint16_t *m = at(im, MTR__SUNS_M203);
    int64_t mag = power_w < 0 ? -power_w : power_w;
    int w_sf = fit_sf(power_w);
    int64_t w = scale_down(power_w, w_sf), third = scale_down(power_w / 3, w_sf);
    m[MTR__M203_W] = (uint16_t)w;
    m[MTR__M203_W + 1] = (uint16_t)(w - 2 * third); /* phases add up to the total */
    m[MTR__M203_W + 2] = (uint16_t)third;
    m[MTR__M203_W + 3] = (uint16_t)third;
    m[MTR__M203_W_SF] = (uint16_t)w_sf;
    m[MTR__M203_VA] = (uint16_t)(w < 0 ? -w : w);
    for (unsigned p = 1; p < 4; p++)
        m[MTR__M203_VA + p] = (uint16_t)(third < 0 ? -third : third);
    m[MTR__M203_VA_SF] = (uint16_t)w_sf;
    /* amps in 0.01 A: P / V per phase; 1e12 W would not fit, so scale like W does */
    int64_t centiamps = (int64_t)((double)mag / VOLTS * 100.0 + 0.5);
    int a_sf = fit_sf(centiamps);
    int64_t a = scale_down(centiamps, a_sf), a_ph = scale_down(centiamps / 3, a_sf);
    m[MTR__M203_A] = (uint16_t)a;
    for (unsigned p = 1; p < 4; p++)
        m[MTR__M203_A + p] = (uint16_t)a_ph;
    m[MTR__M203_A_SF] = (uint16_t)(a_sf - 2);
    uint32_t exp32 = (uint32_t)export_wh, imp32 = (uint32_t)import_wh; /* acc32 rolls over */
    m[MTR__M203_TOTWH_EXP] = (uint16_t)(exp32 >> 16);
    m[MTR__M203_TOTWH_EXP + 1] = (uint16_t)exp32;
    m[MTR__M203_TOTWH_IMP] = (uint16_t)(imp32 >> 16);
    m[MTR__M203_TOTWH_IMP + 1] = (uint16_t)imp32;
}

void mtr__image_set(mtr__image *im, mtr__profile profile, int64_t power_w, int64_t import_wh,
                    int64_t export_wh)
{
    if (profile == MTR__PROFILE_SDM630)
        sdm_set(im, power_w, import_wh, export_wh);
    else if (profile == MTR__PROFILE_SUNSPEC)
        sunspec_set(im, power_w, import_wh, export_wh);
    /* a storage image has no meter values */
}
