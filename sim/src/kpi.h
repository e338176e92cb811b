/*
 * Internal: key performance indicators, accumulated while the run goes and finished at the end.
 * Both worlds use the same accumulator; `baseline` selects the metered (grid-only) flows.
 */
#ifndef MGX_SIM_KPI_H
#define MGX_SIM_KPI_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/market.h"
#include "mgx/sim.h"
#include "result.h"

typedef struct {
    sim_kpis k;
    double price_sum, price_time_sum, time_sum;
} sim_kpi_acc;

void sim_kpi_init(sim_kpi_acc *a, size_t homes, size_t intervals);
void sim_kpi_add_flow(sim_kpi_acc *a, const sim_flow *f, int baseline);
/* ms is the interval's market summary (NULL for the baseline). */
void sim_kpi_add_interval(sim_kpi_acc *a, const sim_interval_row *row, const mkt_summary *ms,
                          uint32_t interval_min, int baseline);
void sim_kpi_finish(const sim_kpi_acc *a, const sim_home_row *homes, int baseline,
                    sim_kpis *out);

/* Gini coefficient of x (any sign): mean absolute difference over twice the absolute mean;
 * 0 when the mean is 0. Sorts x in place. */
double sim_gini(int64_t *x, size_t n);
/* Median of x, the lower middle for even n, rounded down. Sorts x in place. */
int64_t sim_median(int64_t *x, size_t n);

#endif
