/*
 * mgx meters: a register map, the description of where a meter keeps its power, energy
 * counters and state of charge, and the plan of block reads that fetches them. The Eastron SDM
 * profiles are built-in maps (mgx/sdm.h); users add meters without a new release by writing a
 * [map NAME] section in the device config (mgx/device_config.h). Pure: no I/O.
 */
#ifndef MGX_METER_MAP_H
#define MGX_METER_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/counter.h"
#include "mgx/meter.h"
#include "mgx/regmap.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MTR_MAP_NAME_MAX 32 /* map names incl. NUL */
#define MTR_PLAN_MAX 8      /* block reads per poll */
#define MTR_READ_MAX 125    /* registers in one Modbus read (the protocol's limit) */

typedef struct {
    char name[MTR_MAP_NAME_MAX];
    char make[MTR_TEXT_MAX];
    char model[MTR_TEXT_MAX];
    /* Units after scaling: power in W, counters in Wh, soc in percent (0..100, may be
     * fractional through the scale: the value is kept in permille internally). */
    mtr_field power, import, export, soc;
    int export_positive; /* the device reports power > 0 when exporting: mgx negates it */
    uint16_t max_regs;   /* largest block read, 1..MTR_READ_MAX (Eastron: 60) */
} mtr_map;

typedef struct {
    uint8_t fc;
    uint16_t addr;
    uint16_t count;
} mtr_block;

typedef struct {
    size_t n;
    mtr_block b[MTR_PLAN_MAX];
} mtr_plan;

/*
 * Groups the map's fields into as few block reads as possible (same function code, spans of
 * at most max_regs registers, gaps read through). Returns MTR_OK, MTR_E_INVAL for a map without
 * power, or MTR_E_RANGE if a field runs past address 65535 or more than MTR_PLAN_MAX blocks
 * would be needed.
 */
int mtr_map_plan(const mtr_map *map, mtr_plan *plan);

/*
 * Decodes the fields from the plan's blocks (blocks[i] holds plan->b[i].count registers) into
 * values, applying the power sign convention. Absent counters read as 0 Wh (a PV inverter that
 * never imports); an absent soc gives has_soc = 0.
 */
void mtr_map_decode(const mtr_map *map, const mtr_plan *plan, const uint16_t *const *blocks,
                    mtr_values *v);

#ifdef __cplusplus
}
#endif

#endif
