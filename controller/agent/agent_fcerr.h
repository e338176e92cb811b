/*
 * Internal: the home agent's forecast error (issue 15). The agent records the net energy it
 * forecast for an interval (what it ordered from: export - import, Wh) and, when that interval's
 * meter reading completes it, how far off it was. The totals are what the agent reports: the
 * intervals scored, the sum of absolute errors (so the mean absolute error), the last error.
 *
 * Pure: no I/O, no clock. Bounded: forecasts further ahead than AGF_RING intervals overwrite
 * each other (the agent forecasts at most forecast_lag <= 96 + 2 ahead).
 */
#ifndef MGX_CTL_AGENT_FCERR_H
#define MGX_CTL_AGENT_FCERR_H

#include <stdbool.h>
#include <stdint.h>

#define AGF_RING 128

typedef struct {
    int64_t id[AGF_RING]; /* interval id of each slot, INT64_MIN: empty */
    int64_t wh[AGF_RING]; /* its forecast net (export - import) */
    uint64_t scored;      /* intervals with a forecast and a reading */
    int64_t abs_sum_wh;   /* sum of their absolute errors */
    int64_t last_id, last_forecast_wh, last_metered_wh, last_abs_wh;
} agf_state;

void agf_init(agf_state *s);

/* The forecast for interval_id (a later call for the same interval replaces it). */
void agf_record(agf_state *s, int64_t interval_id, int64_t forecast_net_wh);

/* interval_id is complete with metered_net_wh: scores it if it had a forecast (true; once per
 * interval, the forecast is consumed) and fills the last_* fields. */
bool agf_observe(agf_state *s, int64_t interval_id, int64_t metered_net_wh);

/* The mean absolute error so far, Wh, rounded half up; 0 before the first. */
int64_t agf_mae_wh(const agf_state *s);

#endif
