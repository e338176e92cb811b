/* Internal: the body of sim_result, shared by the engine (which fills it) and the report. */
#ifndef MGX_SIM_RESULT_H
#define MGX_SIM_RESULT_H

#include "mgx/sim.h"

struct sim_result {
    sim_kpis kpi, base;
    sim_interval_row *intervals;
    size_t n_intervals;
    sim_home_row *homes;
    size_t n_homes;
};

#endif
