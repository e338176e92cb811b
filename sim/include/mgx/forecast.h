/*
 * mgx forecast: a home's PV generation and load for the intervals ahead, from its own measured
 * history, for the battery scheduler (battery_plan.h) of the simulator and the home agent.
 *
 *   PV:   the clear-sky yields of three planes over each interval (the simulator's solar model:
 *         sun position, clear-sky irradiance, plane of array; the configured plane and the same
 *         turned 60 degrees each way), combined with non-negative weights fitted by least
 *         squares (GSL's gsl_multifit_linear) to the home's measured PV over the last `days`
 *         days: the weights take the size, orientation, shading and losses of the real array;
 *   load: the mean of the same time of day over the last `days` days;
 *   both corrected as measurements arrive: the ratio of the last `recent` intervals' measured
 *   value to what the model says for them (clouds now, a busy evening) is applied to the next
 *   intervals, fading with lead time as exp(-lead / recent); PV also keeps 0.6 of the last
 *   day's ratio at every lead (the weather persists from one day to the next).
 * Before a day of history the forecast is 0 (nothing measured, nothing assumed).
 *
 * Energies are int64 Wh (rounded to nearest); the fit and irradiance are floating point, which
 * is fine here: a forecast is an estimate that never reaches the matching or money path.
 * Pure: no clock, no I/O; times are parameters. Not thread-safe per object. Memory is bounded
 * by days x intervals per day, fixed at sim_fc_new.
 */
#ifndef MGX_FORECAST_H
#define MGX_FORECAST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIM_FC_MAX_DAYS 60

typedef struct {
    double latitude_deg, longitude_deg; /* the home */
    double tilt_deg, azimuth_deg;       /* the reference plane (compass bearing it faces) */
    int64_t interval_s;                 /* divides 86400 */
    int days;                           /* history kept and fitted on: 1..SIM_FC_MAX_DAYS */
    int recent;                         /* intervals of the intraday correction: >= 1 */
} sim_fc_config;

typedef struct sim_fc sim_fc;

/* NULL when the config is out of range or memory runs out. */
sim_fc *sim_fc_new(const sim_fc_config *c);
void sim_fc_free(sim_fc *f);

/* The clear-sky yield (Wh per kWp of the reference plane) of the interval starting at
 * start_s (Unix seconds, UTC). */
double sim_fc_clear_wh_per_kwp(const sim_fc_config *c, int64_t start_s);

/* Records the measured PV and load of the interval starting at start_s (a multiple of
 * interval_s). Intervals come in order; gaps are allowed (missing intervals are not used).
 * An interval not later than the last one recorded is ignored; negative energies count as 0. */
void sim_fc_observe(sim_fc *f, int64_t start_s, int64_t pv_wh, int64_t load_wh);

/* Forecasts the n intervals from start_s (after the last recorded one; lead 1 is the first
 * interval after it) into pv_wh[n] and load_wh[n] (either may be NULL). Returns 0, or -1 when
 * start_s is not after the last recorded interval or not on the grid. */
int sim_fc_predict(const sim_fc *f, int64_t start_s, size_t n, int64_t *pv_wh, int64_t *load_wh);

/* The fitted PV size: the sum of the planes' weights (Wh measured per clear-sky Wh per kWp,
 * i.e. the array's effective kWp) over the history now; 0 before any daylight is recorded. */
double sim_fc_pv_scale(const sim_fc *f);

#ifdef __cplusplus
}
#endif

#endif
