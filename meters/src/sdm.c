/*
 * The Eastron SDM630, SDM120 and SDM72 profiles as built-in register maps (see mgx/sdm.h).
 * Energy registers hold kWh as float32: scale 1000 gives Wh, rounded to the nearest Wh.
 */
#include "mgx/sdm.h"

#include <string.h>

#define FLOAT_FIELD(addr, mant)                                                                \
    {1, 4, (addr), MTR_FLOAT32, MTR_ABCD, {(mant), 0}, 0}

static const mtr_map SDM_MAPS[] = {
    {"sdm630", "Eastron", "SDM630", FLOAT_FIELD(MTR_SDM_POWER, 1),
     FLOAT_FIELD(MTR_SDM_IMPORT, 1000), FLOAT_FIELD(MTR_SDM_EXPORT, 1000), {0}, 0,
     MTR_SDM_MAX_REGS},
    {"sdm120", "Eastron", "SDM120", FLOAT_FIELD(MTR_SDM120_POWER, 1),
     FLOAT_FIELD(MTR_SDM_IMPORT, 1000), FLOAT_FIELD(MTR_SDM_EXPORT, 1000), {0}, 0,
     MTR_SDM_MAX_REGS},
    {"sdm72", "Eastron", "SDM72", FLOAT_FIELD(MTR_SDM_POWER, 1),
     FLOAT_FIELD(MTR_SDM_IMPORT, 1000), FLOAT_FIELD(MTR_SDM_EXPORT, 1000), {0}, 0,
     MTR_SDM_MAX_REGS},
};

const mtr_map *mtr_sdm_map(const char *name)
{
    for (size_t i = 0; name && i < sizeof SDM_MAPS / sizeof SDM_MAPS[0]; i++)
        if (strcmp(name, SDM_MAPS[i].name) == 0)
            return &SDM_MAPS[i];
    return NULL;
}
