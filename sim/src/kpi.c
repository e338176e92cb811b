/*
 * KPIs of a run. Energies are summed exactly in Wh; ratios and prices are derived once at the
 * end. Definitions (docs/simulator.md): self-sufficiency = 1 - grid import / load,
 * self-consumption = 1 - grid export / PV, local share = local / (local + grid import).
 */
#include "kpi.h"

#include <stdlib.h>
#include <string.h>

void sim_kpi_init(sim_kpi_acc *a, size_t homes, size_t intervals)
{
    memset(a, 0, sizeof *a);
    a->k.homes = homes;
    a->k.intervals = intervals;
}

void sim_kpi_add_sums(sim_kpi_acc *a, const sim_kpi_sums *s, int baseline)
{
    sim_kpis *k = &a->k;
    int w = baseline ? 1 : 0;
    k->load_wh += s->load_wh;
    k->pv_wh += s->pv_wh;
    k->pv_self_consumed_wh += s->pv_self_consumed_wh;
    k->battery_charged_wh += s->battery_charged_wh;
    k->battery_discharged_wh += s->battery_discharged_wh;
    k->battery_loss_wh += s->battery_loss_wh;
    k->grid_import_wh += s->grid_import_wh[w];
    k->grid_export_wh += s->grid_export_wh[w];
    k->cost_uc += s->cost_uc[w];
    k->gross_cost_uc += s->gross_cost_uc[w];
}

void sim_kpi_add_interval(sim_kpi_acc *a, const sim_interval_row *row, const mkt_summary *ms,
                          uint32_t interval_min, int baseline)
{
    sim_kpis *k = &a->k;
    int64_t imp = baseline ? row->base_grid_import_wh : row->grid_import_wh;
    int64_t exp = baseline ? row->base_grid_export_wh : row->grid_export_wh;
    if (imp > k->peak_import_wh)
        k->peak_import_wh = imp;
    if (exp > k->peak_export_wh)
        k->peak_export_wh = exp;
    if (baseline || !ms)
        return;
    k->local_traded_wh += ms->matched_wh;
    k->fees_uc += ms->fees_uc;
    k->local_value_uc += ms->local_value_uc;
    if (row->price_uc_per_kwh >= 0) {
        k->trading_intervals++;
        a->price_sum += (double)row->price_uc_per_kwh;
        a->price_time_sum += (double)row->price_uc_per_kwh * interval_min;
        a->time_sum += interval_min;
    }
}

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

int64_t sim_median(int64_t *x, size_t n)
{
    if (n == 0)
        return 0;
    qsort(x, n, sizeof *x, cmp_i64);
    return x[(n - 1) / 2];
}

double sim_gini(int64_t *x, size_t n)
{
    if (n == 0)
        return 0.0;
    qsort(x, n, sizeof *x, cmp_i64);
    /* sum_{i<j} (x_j - x_i) = sum_i (2i - n + 1) x_i for sorted x, i from 0 */
    double pair_sum = 0.0, total = 0.0;
    for (size_t i = 0; i < n; i++) {
        pair_sum += (2.0 * (double)i - (double)n + 1.0) * (double)x[i];
        total += (double)x[i];
    }
    double mean = total / (double)n;
    if (mean == 0.0)
        return 0.0;
    double mad = 2.0 * pair_sum / ((double)n * (double)n);
    return mad / (2.0 * (mean < 0 ? -mean : mean));
}

static double ratio(int64_t num, int64_t den)
{
    return den > 0 ? (double)num / (double)den : 0.0;
}

static void savings(const sim_home_row *homes, size_t n, sim_kpis *k)
{
    int64_t *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return;
    k->homes_worse_off = 0;
    for (size_t i = 0; i < n; i++) {
        s[i] = homes[i].base_cost_uc - homes[i].cost_uc;
        k->homes_worse_off += s[i] < 0;
    }
    k->savings_median_uc = sim_median(s, n); /* sorts s */
    k->savings_min_uc = n ? s[0] : 0;
    k->savings_p10_uc = n ? s[(n - 1) * 10 / 100] : 0;
    k->savings_p90_uc = n ? s[(n - 1) * 90 / 100] : 0;
    k->savings_max_uc = n ? s[n - 1] : 0;
    k->savings_gini = sim_gini(s, n);
    free(s);
}

void sim_kpi_finish(const sim_kpi_acc *a, const sim_home_row *homes, int baseline,
                    sim_kpis *out)
{
    *out = a->k;
    out->self_sufficiency = out->load_wh > 0 ? 1.0 - ratio(out->grid_import_wh, out->load_wh) : 0;
    out->self_consumption = out->pv_wh > 0 ? 1.0 - ratio(out->grid_export_wh, out->pv_wh) : 0;
    out->local_share = ratio(out->local_traded_wh, out->local_traded_wh + out->grid_import_wh);
    if (baseline)
        return;
    if (out->trading_intervals) {
        out->mean_price_uc_per_kwh = a->price_sum / (double)out->trading_intervals;
        out->time_weighted_price_uc_per_kwh = a->price_time_sum / a->time_sum;
    }
    if (out->local_traded_wh > 0)
        out->volume_weighted_price_uc_per_kwh =
            (double)out->local_value_uc * 1000.0 / (double)out->local_traded_wh;
    savings(homes, out->homes, out);
}
