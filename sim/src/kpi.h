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

/* What the flows add to the KPIs of both worlds, summed over some flows before it goes into
 * the accumulators at once (sim_kpi_add_sums): the settlement sums an interval's homes in
 * locals instead of updating two accumulators through calls for every home. Integers, so the
 * totals are the same in whatever order or grouping the flows are added. [0]: with local
 * trading, [1]: the baseline. */
typedef struct {
    int64_t load_wh, pv_wh, pv_self_consumed_wh;
    int64_t battery_charged_wh, battery_discharged_wh, battery_loss_wh;
    int64_t grid_import_wh[2], grid_export_wh[2], cost_uc[2], gross_cost_uc[2];
} sim_kpi_sums;

void sim_kpi_init(sim_kpi_acc *a, size_t homes, size_t intervals);
static inline void sim_kpi_sum_flow(sim_kpi_sums *s, const sim_flow *f)
{
    s->load_wh += f->load_wh;
    s->pv_wh += f->pv_wh;
    s->pv_self_consumed_wh += f->direct_wh + f->charge_wh - f->grid_charge_wh;
    s->battery_charged_wh += f->charge_wh;
    s->battery_discharged_wh += f->discharge_wh;
    s->battery_loss_wh += f->loss_wh;
    s->grid_import_wh[0] += f->settled_import_wh;
    s->grid_export_wh[0] += f->settled_export_wh;
    s->cost_uc[0] += f->cost_uc;
    s->gross_cost_uc[0] += f->gross_cost_uc;
    s->grid_import_wh[1] += f->import_wh;
    s->grid_export_wh[1] += f->export_wh;
    s->cost_uc[1] += f->base_cost_uc;
    s->gross_cost_uc[1] += f->base_gross_cost_uc;
}
/* Adds the sums s to d. */
static inline void sim_kpi_sums_add(sim_kpi_sums *d, const sim_kpi_sums *s)
{
    d->load_wh += s->load_wh;
    d->pv_wh += s->pv_wh;
    d->pv_self_consumed_wh += s->pv_self_consumed_wh;
    d->battery_charged_wh += s->battery_charged_wh;
    d->battery_discharged_wh += s->battery_discharged_wh;
    d->battery_loss_wh += s->battery_loss_wh;
    for (int w = 0; w < 2; w++) {
        d->grid_import_wh[w] += s->grid_import_wh[w];
        d->grid_export_wh[w] += s->grid_export_wh[w];
        d->cost_uc[w] += s->cost_uc[w];
        d->gross_cost_uc[w] += s->gross_cost_uc[w];
    }
}
/* Adds s to the accumulator of the world with local trading (baseline 0) or of the baseline. */
void sim_kpi_add_sums(sim_kpi_acc *a, const sim_kpi_sums *s, int baseline);
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
