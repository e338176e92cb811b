/*
 * mgx sim: measured per-home data that replaces the PV and load models.
 *
 * The file is CSV with the header `timestamp,home,load_wh,pv_wh`: one row per home per
 * interval, timestamps ISO 8601 at the start of the interval. A timestamp without an offset is
 * local standard time of the scenario (its utc_offset_min); `Z` or `+hh:mm` offsets are
 * honoured. Homes are named like the scenario's homes (`<group>-<n>`, n from 1); the data
 * replaces load and PV of the homes it names and nothing else (battery and agent stay).
 * Rows outside the scenario's period are ignored; a named home missing an interval inside it
 * is an error. docs/measured-data.md shows how to convert a public data set.
 *
 * Bounds: a parsed data set holds at most SIM_DATA_MAX_CELLS home-intervals of two int64
 * (16 bytes each, so at most 1 GiB), and sim_data_load reads files smaller than
 * SIM_DATA_MAX_FILE_BYTES (it holds the whole file while parsing).
 */
#ifndef MGX_SIMDATA_H
#define MGX_SIMDATA_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/scenario.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SIM_DATA_MAX_CELLS ((size_t)1 << 26)
#define SIM_DATA_MAX_FILE_BYTES ((size_t)1 << 31)

typedef struct sim_data sim_data; /* opaque, owned by the caller */

/* Parses a data file from memory for the given scenario. name is used in messages only. On
 * failure returns SIM_E_PARSE (or SIM_E_NOMEM) with "name:line: reason" in err. */
int sim_data_parse(const char *buf, size_t len, const char *name, const sim_scenario *sc,
                   sim_data **out, char *err, size_t err_len);
/* Reads and parses a file (the thin I/O wrapper around sim_data_parse). */
int sim_data_load(const char *path, const sim_scenario *sc, sim_data **out, char *err,
                  size_t err_len);
void sim_data_free(sim_data *d);

/* The scenario home index (0-based over all groups in order) the data's i-th home maps to. */
size_t sim_data_homes(const sim_data *d);
size_t sim_data_home_index(const sim_data *d, size_t i);
/* Energy of data home i in scenario interval k (0 .. days*1440/interval_min - 1). */
int64_t sim_data_load_wh(const sim_data *d, size_t i, size_t k);
int64_t sim_data_pv_wh(const sim_data *d, size_t i, size_t k);

/* The scenario's name for home h: "<group>-<n>". Writes at most len bytes. */
void sim_home_name(const sim_scenario *sc, size_t h, char *out, size_t len);

#ifdef __cplusplus
}
#endif

#endif
