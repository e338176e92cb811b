/*
 * mgx meters: the Eastron SDM630, SDM120 and SDM72 profiles as built-in register maps. All
 * three keep their values in input registers (function 4) as IEEE-754 float32, ABCD order,
 * power in W (import positive) and energy in kWh; the maps scale kWh to Wh. SDM630 and SDM72
 * are read in one block of 24 registers at 0x0034 (total power, import and export kWh); the
 * SDM120 has no total-power register there, so it takes two reads (0x000C and 0x0048). The
 * meters refuse reads over 60 registers, hence max_regs = 60. Addresses: Eastron's protocol
 * documents for each meter (0-based protocol addresses), as summarised in field-facts.md.
 */
#ifndef MGX_SDM_H
#define MGX_SDM_H

#include "mgx/meter_map.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MTR_SDM_POWER 0x0034      /* total system power, W (SDM630, SDM72) */
#define MTR_SDM120_POWER 0x000C   /* active power, W (SDM120) */
#define MTR_SDM_IMPORT 0x0048     /* total import kWh */
#define MTR_SDM_EXPORT 0x004A     /* total export kWh */
#define MTR_SDM_MAX_REGS 60

/* The built-in map for "sdm630", "sdm120" or "sdm72"; NULL for any other name. Static. */
const mtr_map *mtr_sdm_map(const char *name);

#ifdef __cplusplus
}
#endif

#endif
