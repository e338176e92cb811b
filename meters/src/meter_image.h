/*
 * Internal: the register image of one simulated meter, what a real device of that profile
 * would hold, rebuilt from (power, import counter, export counter). Pure, so the layouts are
 * checked register by register in unit tests.
 *
 * SDM630 (Eastron, input registers, function 4): IEEE-754 float32, high word first (ABCD), at
 * the addresses of the Eastron SDM630 Modbus protocol. Served block 0x0000..0x0157.
 * SunSpec (holding registers, function 3): "SunS" at 40000, model 1 (common, L=66), model 203
 * (three-phase wye meter, integer + scale factor, L=105), end marker 0xFFFF with L=0.
 * Storage (a battery inverter's storage controls, holding registers): "SunS" at 40000, model 1,
 * model 124 (basic storage controls, L=24), end marker. Its writable points are written by
 * the client (meter_server.c); the image holds WChaMax, the scale factors and ChaState.
 */
#ifndef MGX_METERS_METER_IMAGE_H
#define MGX_METERS_METER_IMAGE_H

#include <stdint.h>

#define MTR__IMAGE_MAX 344u /* registers of the largest profile (SDM630: 0x0000..0x0157) */

/* SDM630 input register addresses (0-based protocol addresses). */
enum {
    MTR__SDM_V_L1 = 0x0000,     /* line-to-neutral volts, L1..L3 at +0, +2, +4 */
    MTR__SDM_A_L1 = 0x0006,     /* current A, L1..L3 */
    MTR__SDM_W_L1 = 0x000C,     /* active power W, L1..L3 */
    MTR__SDM_VA_L1 = 0x0012,    /* apparent power VA, L1..L3 */
    MTR__SDM_PF_L1 = 0x001E,    /* power factor, L1..L3 */
    MTR__SDM_V_AVG = 0x002A,    /* average line-to-neutral volts */
    MTR__SDM_A_AVG = 0x002E,    /* average line current */
    MTR__SDM_A_SUM = 0x0030,    /* sum of line currents */
    MTR__SDM_W_TOTAL = 0x0034,  /* total system power W, + import */
    MTR__SDM_VA_TOTAL = 0x0038, /* total system VA */
    MTR__SDM_PF_TOTAL = 0x003E, /* total system power factor */
    MTR__SDM_HZ = 0x0046,       /* frequency */
    MTR__SDM_IMPORT_KWH = 0x0048,
    MTR__SDM_EXPORT_KWH = 0x004A,
    MTR__SDM_TOTAL_KWH = 0x0156, /* import + export */
    MTR__SDM_END = 0x0158        /* one past the served block */
};

/* SunSpec addresses: base 40000, model 1 at 40002, model 203 at 40070, end at 40177. */
enum {
    MTR__SUNS_BASE = 40000,
    MTR__SUNS_M1 = 40002,
    MTR__SUNS_M1_LEN = 66,
    MTR__SUNS_M203 = MTR__SUNS_M1 + 2 + MTR__SUNS_M1_LEN, /* 40070 */
    MTR__SUNS_M203_LEN = 105,
    MTR__SUNS_ENDM = MTR__SUNS_M203 + 2 + MTR__SUNS_M203_LEN, /* 40177 */
    MTR__SUNS_END = MTR__SUNS_ENDM + 2                        /* one past the served block */
};

/* Offsets from model 203's ID register (sunspec/models, model_203.json). */
enum {
    MTR__M203_A = 2,
    MTR__M203_A_SF = 6,
    MTR__M203_PHV = 7,
    MTR__M203_PPV = 11,
    MTR__M203_V_SF = 15,
    MTR__M203_HZ = 16,
    MTR__M203_HZ_SF = 17,
    MTR__M203_W = 18,
    MTR__M203_W_SF = 22,
    MTR__M203_VA = 23,
    MTR__M203_VA_SF = 27,
    MTR__M203_VAR_SF = 32,
    MTR__M203_PF = 33,
    MTR__M203_PF_SF = 37,
    MTR__M203_TOTWH_EXP = 38,
    MTR__M203_TOTWH_IMP = 46,
    MTR__M203_TOTWH_SF = 54,
    MTR__M203_TOTVAH_SF = 71,
    MTR__M203_TOTVARH_SF = 104
};

/* The storage profile: model 124 at 40070 (body 40072), end at 40096. */
enum {
    MTR__SUNS_S124 = MTR__SUNS_M1 + 2 + MTR__SUNS_M1_LEN, /* 40070 */
    MTR__SUNS_S124_LEN = 24,
    MTR__SUNS_S124_BODY = MTR__SUNS_S124 + 2,
    MTR__SUNS_SENDM = MTR__SUNS_S124_BODY + MTR__SUNS_S124_LEN, /* 40096 */
    MTR__SUNS_SEND = MTR__SUNS_SENDM + 2
};

typedef enum {
    MTR__PROFILE_SDM630 = 1,
    MTR__PROFILE_SUNSPEC = 2,
    MTR__PROFILE_STORAGE = 3
} mtr__profile;

typedef struct {
    uint8_t fc;        /* 4 (input registers) for SDM630, 3 (holding) for SunSpec */
    uint16_t base;     /* first served address */
    uint16_t n;        /* served registers */
    uint16_t max_read; /* largest read the device accepts (the SDM630 refuses over 60) */
    uint16_t regs[MTR__IMAGE_MAX];
} mtr__image;

/* Fills the constant part: layout, identity (SunSpec model 1: make "mgx", the model name,
 * serial and device address unit), and counters at 0. serial may be NULL. */
void mtr__image_init(mtr__image *im, mtr__profile profile, uint8_t unit, const char *serial);

/* Writes the live values. power_w: + import from the grid, - export. Counters in Wh >= 0.
 * SDM630: kWh as the float32 nearest to wh / 1000 (computed in double); power as float32.
 * SunSpec: TotWhImp/TotWhExp acc32 with TotWh_SF = 0, so exact Wh modulo 2^32 (an acc32 rolls
 * over); W int16 with the smallest W_SF >= 0 that makes it fit, rounded half away from zero. */
void mtr__image_set(mtr__image *im, mtr__profile profile, int64_t power_w, int64_t import_wh,
                    int64_t export_wh);

/* Storage profile: WChaMax (w_cha_max_w, with the smallest scale factor >= 0 that fits
 * uint16) and InOutWRte_SF -2 (rates in 0.01 %); after mtr__image_init. */
void mtr__image_storage_caps(mtr__image *im, int64_t w_cha_max_w);

/* Storage profile: ChaState (state of charge) as stored_wh / capacity_wh in 0.01 %
 * (ChaState_SF -2), rounded to nearest, clamped to 0..100 %. */
void mtr__image_storage_soc(mtr__image *im, int64_t stored_wh, int64_t capacity_wh);

/* Storage profile: whether a write of count registers at addr only touches model 124's
 * writable points (WChaMax .. ChaGriSet except ChaState, StorAval, InBatV, ChaSt). */
int mtr__image_storage_writable(uint16_t addr, uint16_t count);

/* IEEE-754 float32 as two registers, high word first (ABCD). */
void mtr__put_float_abcd(uint16_t *regs, float v);

#endif
