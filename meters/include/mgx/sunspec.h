/*
 * mgx meters: SunSpec devices. Discovery looks for "SunS" (0x5375 0x6E53) in the holding
 * registers at 40000, then 50000, then 0, and walks the model chain [ID, L, L registers] up to
 * the end marker 0xFFFF (or an exception reply, which some devices give instead). Nothing is
 * read at a hard-coded absolute address: fields are offsets from their model's ID register.
 *
 * Supported models: 1 (common: make, model, serial), inverters 101-103 (int + scale factors)
 * and 111-113 (float), meters 201-204 and 211-214, storage 124 and battery 802 (state of
 * charge). A meter model, when present, gives power and both counters (import positive);
 * otherwise an inverter model gives power (generation, so negative: export) and its lifetime
 * energy as the export counter, import 0.
 *
 * Everything goes through an abstract read function, so this module does no I/O itself and is
 * tested on register images; mgx/modbus_device.h plugs libmodbus in.
 */
#ifndef MGX_SUNSPEC_H
#define MGX_SUNSPEC_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/counter.h"
#include "mgx/meter.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Reads count (1..125) registers with function fc (3 or 4) at addr into dst. Returns 0 or a
 * negative MTR_E_* code; MTR_E_EXCEPTION means the device answered with an exception (an
 * address it does not have), anything else that it could not be asked.
 */
typedef int (*mtr_read_fn)(void *ctx, int fc, uint16_t addr, uint16_t count, uint16_t *dst);

#define MTR_SUNSPEC_MAX_MODELS 64
#define MTR_SUNSPEC_ID_END 0xFFFF

typedef struct {
    uint16_t id;
    uint16_t len;  /* L: registers after the ID and L registers */
    uint16_t addr; /* address of the ID register */
} mtr_sunspec_model;

typedef struct {
    uint16_t base; /* where "SunS" was found */
    size_t n;
    mtr_sunspec_model m[MTR_SUNSPEC_MAX_MODELS];
    int meter, inverter, storage, battery; /* indices into m of the models used, -1 if none */
} mtr_sunspec_chain;

/* The bases tried, in order. */
extern const uint16_t mtr_sunspec_bases[3];

/*
 * Finds "SunS" and walks the chain. An exception or a different marker at a base moves on to
 * the next base; any other read failure (timeout, dropped connection) ends discovery with that
 * code, so a dead device costs one timeout, not three. Returns MTR_OK, MTR_E_NOT_SUNSPEC,
 * MTR_E_CHAIN (a model running past 65535, more than MTR_SUNSPEC_MAX_MODELS models, or a model
 * shorter than its fields need), MTR_E_NO_MODEL (no meter or inverter model) or a read error.
 */
int mtr_sunspec_discover(mtr_read_fn read, void *ctx, mtr_sunspec_chain *chain);

/*
 * The registers one needs of a model, from its ID register: the highest field offset + 1 for a
 * supported model (at most L + 2), 0 for others.
 */
uint16_t mtr_sunspec_span(uint16_t id, uint16_t len);

/*
 * Pure extraction: regs holds n registers of model id from its ID register. Meters and
 * inverters fill power and counters of v, storage and battery the soc. Returns MTR_OK, or
 * MTR_E_CHAIN if n is short or regs[0] is not id (the chain changed under us).
 */
int mtr_sunspec_extract(uint16_t id, const uint16_t *regs, size_t n, mtr_values *v);

/* Reads the used models of a discovered chain and extracts values. Returns MTR_OK or as read/extract. */
int mtr_sunspec_read(mtr_read_fn read, void *ctx, const mtr_sunspec_chain *chain, mtr_values *v);

/* Reads model 1's make (Mn), model (Md) and serial (SN) into meta; blanks if there is no model 1. */
int mtr_sunspec_meta(mtr_read_fn read, void *ctx, const mtr_sunspec_chain *chain, mtr_meta *meta);

/* Copies a SunSpec string of nregs registers (two ASCII bytes each, NUL padded) into dst of
 * size dstlen, dropping trailing blanks and replacing non-printable bytes with '?'. */
void mtr_sunspec_string(const uint16_t *regs, size_t nregs, char *dst, size_t dstlen);

#ifdef __cplusplus
}
#endif

#endif
