/*
 * mgx meters: a meter reading and how two readings become one interval's energy.
 *
 * Meters report cumulative import and export counters; interval energy is the difference of
 * two readings. Real meters occasionally return bogus counter values (a known field problem),
 * so a difference is accepted only if it is non-negative and physically possible at the
 * meter's rated power over the elapsed time. Pure: time comes in as a parameter.
 */
#ifndef MGX_READING_H
#define MGX_READING_H

#include <stdint.h>

#include "mgx/meter_error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes (MTR_OK, MTR_E_BACKWARDS, ...) and mtr_strerror. */

typedef struct {
    int64_t time_ms;   /* Unix time of the reading, milliseconds */
    int64_t import_wh; /* cumulative counter */
    int64_t export_wh; /* cumulative counter */
} mtr_reading;

/* Energy between two readings of one meter rated max_power_w. */
int mtr_interval_energy(const mtr_reading *prev, const mtr_reading *cur, int64_t max_power_w,
                        int64_t *import_wh, int64_t *export_wh);

/* The counters at time t_ms between two readings a and b of one meter (a->time_ms <= t_ms <=
 * b->time_ms, a earlier than b, neither counter going down): the floor of the linear
 * interpolation, computed in 128 bits. Everyone who needs an interval boundary between two
 * readings (the home agent, the controller's settlement) uses this one rule, so the same
 * readings always give the same boundary and intervals sharing it telescope to the Wh.
 * MTR_E_INVAL if the arguments break these conditions. */
int mtr_counters_at(const mtr_reading *a, const mtr_reading *b, int64_t t_ms,
                    int64_t *import_wh, int64_t *export_wh);

#ifdef __cplusplus
}
#endif

#endif
