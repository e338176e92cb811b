/*
 * mgx meters: pure decoding of Modbus register words into values, the common ground of every
 * device profile (SunSpec, Eastron SDM, register maps from config).
 *
 * A field is a register type (int16 .. float32), a word order for 32-bit types, a decimal scale
 * (mant x 10^exp10, exact, parsed from text such as "0.01" or "1000") and optionally the SunSpec
 * "not implemented" sentinels. Integer registers are scaled in integer arithmetic; float32 values
 * are scaled in double and rounded. Rounding rule, everywhere: to the nearest integer, halves
 * away from zero. Results must lie within +-MTR_VALUE_MAX or the field is flagged MTR_Q_RANGE.
 * No I/O, no globals: thread-safe.
 */
#ifndef MGX_REGMAP_H
#define MGX_REGMAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTR_VALUE_MAX INT64_C(1000000000000000) /* 1e15: 1 TWh in Wh, far beyond any meter */
#define MTR_SCALE_EXP_MAX 18                     /* |exp10| of a scale */

typedef enum {
    MTR_INT16 = 0,
    MTR_UINT16,
    MTR_INT32,
    MTR_UINT32,
    MTR_ACC32, /* SunSpec accumulator: uint32 that wraps; 0 is a valid reading in mgx */
    MTR_FLOAT32
} mtr_reg_type;

/*
 * Word order of a 32-bit value whose big-endian bytes are A B C D (A most significant), as
 * the two registers r0 r1 appear on the wire: ABCD r0=AB r1=CD (Modbus/SunSpec/Eastron
 * default), CDAB r0=CD r1=AB (word swap), BADC r0=BA r1=DC (byte swap), DCBA r0=DC r1=BA.
 * For 16-bit types the byte-swapping orders (BADC, DCBA) swap the two bytes of the register.
 */
typedef enum { MTR_ABCD = 0, MTR_CDAB, MTR_BADC, MTR_DCBA } mtr_word_order;

/* factor = mant * 10^exp10, |exp10| <= MTR_SCALE_EXP_MAX, mant != 0 (negative flips the sign). */
typedef struct {
    int64_t mant;
    int exp10;
} mtr_scale;

#define MTR_SCALE_ONE ((mtr_scale){1, 0})

/* A raw register value before scaling. */
typedef struct {
    int is_float;
    int64_t i; /* integer types */
    double f;  /* float32, widened exactly */
} mtr_raw;

/* Registers a type occupies: 1 or 2. */
unsigned mtr_reg_words(mtr_reg_type t);

/* Names as used in config files: "int16" ... "float32"; "abcd" ... "dcba". NULL when out of range. */
const char *mtr_reg_type_name(mtr_reg_type t);
const char *mtr_word_order_name(mtr_word_order o);
/* Case-insensitive lookups of those names; 0 or -1. */
int mtr_reg_type_parse(const char *s, mtr_reg_type *out);
int mtr_word_order_parse(const char *s, mtr_word_order *out);

/*
 * Parses a decimal scale: an optional sign, digits with at most one '.', an optional exponent
 * "e[+-]N" ("0.001", "1000", "2.5", "1e-3"). The factor is kept exact as mant x 10^exp10.
 * Returns 0, or -1 for malformed text, zero, or a factor whose mantissa exceeds 1e15 or whose
 * exponent is beyond MTR_SCALE_EXP_MAX.
 */
int mtr_scale_parse(const char *s, mtr_scale *out);

/*
 * Decodes mtr_reg_words(t) registers. With sunspec_na, the SunSpec "not implemented" sentinels
 * are recognised: int16 0x8000, uint16 0xFFFF, int32 0x80000000, uint32 0xFFFFFFFF (acc32 has
 * none in mgx: SunSpec's "0 = not accumulated" is indistinguishable from a fresh counter).
 * Returns quality bits: 0, MTR_Q_NOT_IMPLEMENTED, or MTR_Q_NAN (float32 NaN or infinite; always
 * checked). *out is filled in every case.
 */
uint32_t mtr_reg_decode(const uint16_t *regs, mtr_reg_type t, mtr_word_order o, int sunspec_na,
                        mtr_raw *out);

/*
 * The inverse of mtr_reg_decode for simulated meters, tests and the fuzzer: writes the registers
 * of value v (v.i for integer types, truncated to the type's width; v.f rounded to float32).
 */
void mtr_reg_encode(const mtr_raw *v, mtr_reg_type t, mtr_word_order o, uint16_t *regs);

/*
 * value * scale, rounded to the nearest integer with halves away from zero. Integer raws are
 * scaled exactly in 128-bit arithmetic. Returns 0, MTR_Q_NAN for a NaN/infinite float, or
 * MTR_Q_RANGE when the result is beyond +-MTR_VALUE_MAX (then *out is 0).
 */
uint32_t mtr_scale_apply(const mtr_raw *raw, mtr_scale scale, int64_t *out);

/* The SunSpec form: scale 10^sf. sf outside -10..10 is treated as not implemented. */
uint32_t mtr_scale_apply_sf(const mtr_raw *raw, int sf, int64_t *out);

/*
 * The step of a scaled value near raw, in output units, rounded up to at least 1: the
 * resolution of the counter (for float32, one unit in the last place of the value).
 * Used by the counter filter as a tolerance.
 */
int64_t mtr_scale_tick(const mtr_raw *raw, mtr_scale scale);

/* One field of a register map. */
typedef struct {
    int present;      /* 0: the map has no such field */
    uint8_t fc;       /* 3 holding registers, 4 input registers */
    uint16_t addr;    /* protocol address, 0-based */
    mtr_reg_type type;
    mtr_word_order order;
    mtr_scale scale;  /* raw x scale = value in the field's unit */
    int sunspec_na;   /* recognise SunSpec "not implemented" sentinels */
} mtr_field;

/*
 * Decodes field f from a block of registers that starts at protocol address base (count
 * registers, same function code as f). Returns quality bits as mtr_reg_decode and
 * mtr_scale_apply, or MTR_Q_COMM if the field lies outside the block. *wrap gets the counter's
 * modulus in output units for 16/32-bit unsigned types (2^16 or 2^32 x scale, 0 if that is
 * beyond MTR_VALUE_MAX or the type is signed or float); *tick its resolution. Either may be NULL.
 */
uint32_t mtr_field_decode(const mtr_field *f, const uint16_t *block, uint16_t base, size_t count,
                          int64_t *out, int64_t *wrap, int64_t *tick);

#ifdef __cplusplus
}
#endif

#endif
