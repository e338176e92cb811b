/*
 * Writes a run's results: summary.json, intervals.csv, homes.csv, profile.csv, a gnuplot script
 * (plots.gp) that renders the plots from those CSVs, and the text summary. Every output is a
 * pure function of the result, so the same scenario and seed give the same bytes; nothing here
 * reads a clock or the environment. Running gnuplot is the shell's job (controller/).
 */
#include "mgx/sim.h"
#include "mgx/simdata.h"

#include "fail.h"
#include "result.h"
#include "timegrid.h"

#include <errno.h>
#include <gsl/gsl_statistics_double.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 4096

static FILE *open_out(const char *dir, const char *name, char *path, char *err, size_t err_len)
{
    snprintf(path, PATH_MAX_LEN, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        sim_fail(err, err_len, SIM_E_IO, "%s: %s", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path, char *err, size_t err_len)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return sim_fail(err, err_len, SIM_E_IO, "%s: write failed", path);
    return SIM_OK;
}

static json_t *kpi_json(const sim_kpis *k, int trading)
{
    json_t *o = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "homes", (json_int_t)k->homes, "intervals", (json_int_t)k->intervals, "load_wh",
        (json_int_t)k->load_wh, "pv_wh", (json_int_t)k->pv_wh, "grid_import_wh",
        (json_int_t)k->grid_import_wh, "grid_export_wh", (json_int_t)k->grid_export_wh,
        "local_traded_wh", (json_int_t)k->local_traded_wh, "self_sufficiency", k->self_sufficiency,
        "self_consumption", k->self_consumption, "local_share", k->local_share, "cost_uc",
        (json_int_t)k->cost_uc, "peak_import_wh", (json_int_t)k->peak_import_wh, "peak_export_wh",
        (json_int_t)k->peak_export_wh, "pv_self_consumed_wh", (json_int_t)k->pv_self_consumed_wh,
        "battery_charged_wh", (json_int_t)k->battery_charged_wh, "battery_discharged_wh",
        (json_int_t)k->battery_discharged_wh, "battery_loss_wh", (json_int_t)k->battery_loss_wh);
    if (!o)
        return o;
    json_object_set_new(o, "gross_cost_uc", json_integer(k->gross_cost_uc));
    if (!trading)
        return o;
    json_object_set_new(o, "fees_uc", json_integer(k->fees_uc));
    json_object_set_new(o, "local_value_uc", json_integer(k->local_value_uc));
    json_object_set_new(o, "trading_intervals", json_integer((json_int_t)k->trading_intervals));
    json_object_set_new(o, "mean_price_uc_per_kwh", json_real(k->mean_price_uc_per_kwh));
    json_object_set_new(o, "time_weighted_price_uc_per_kwh",
                        json_real(k->time_weighted_price_uc_per_kwh));
    json_object_set_new(o, "volume_weighted_price_uc_per_kwh",
                        json_real(k->volume_weighted_price_uc_per_kwh));
    json_object_set_new(o, "savings_uc",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "total", (json_int_t)0,
                                  "min", (json_int_t)k->savings_min_uc, "p10",
                                  (json_int_t)k->savings_p10_uc, "median",
                                  (json_int_t)k->savings_median_uc, "p90",
                                  (json_int_t)k->savings_p90_uc, "max",
                                  (json_int_t)k->savings_max_uc, "gini", k->savings_gini));
    json_object_set_new(o, "homes_worse_off", json_integer((json_int_t)k->homes_worse_off));
    json_object_set_new(o, "worst_saving_uc", json_integer(k->savings_min_uc));
    json_object_set_new(o, "fairness_index",
                        json_pack("{s:s, s:f}", "name", "gini", "value", k->savings_gini));
    return o;
}

/* The community's saving over its grid-only bill, net (gross = 0) or gross (gross = 1) of feed-in
 * credits. Returns 0 (and *out 0) when that bill is not positive: a share of an income reads
 * backwards. Reporting only, so a double is fine. */
static int sim__saving_share(const sim_result *r, int gross, double *out)
{
    int64_t bill = gross ? r->base.gross_cost_uc : r->base.cost_uc;
    *out = 0;
    if (bill <= 0)
        return 0;
    *out = (double)(r->base.cost_uc - r->kpi.cost_uc) / (double)bill;
    return 1;
}

/* Grid-aware clearing, for scenarios with feeder limits only (so that every other summary
 * stays as it was): congestion and, per limited feeder, how often it bound and its zone price. */
static json_t *grid_json(const sim_scenario *sc, const sim_kpis *k)
{
    json_t *feeders = json_array();
    for (size_t g = 0; feeders && g < sc->n_groups; g++) {
        const sim_group *gr = &sc->groups[g];
        if (gr->feeder_export_kw < 0 && gr->feeder_import_kw < 0)
            continue;
        json_array_append_new(
            feeders, json_pack("{s:s, s:f, s:f, s:I, s:f}", "group", gr->name, "export_kw",
                               gr->feeder_export_kw, "import_kw", gr->feeder_import_kw,
                               "binding_intervals", (json_int_t)k->feeder_binding_intervals[g],
                               "mean_zone_price_uc_per_kwh",
                               k->feeder_mean_price_uc_per_kwh[g]));
    }
    return json_pack("{s:I, s:I, s:o}", "congested_intervals",
                     (json_int_t)k->congested_intervals, "congestion_uc",
                     (json_int_t)k->congestion_uc, "feeders", feeders ? feeders : json_array());
}

static json_t *summary_json(const sim_scenario *sc, const sim_result *r, uint64_t seed)
{
    json_t *root = kpi_json(&r->kpi, 1);
    json_t *base = kpi_json(&r->base, 0);
    json_t *sav = root ? json_object_get(root, "savings_uc") : NULL;
    if (!root || !base || !sav) {
        json_decref(root);
        json_decref(base);
        return NULL;
    }
    json_object_set_new(sav, "total", json_integer(r->base.cost_uc - r->kpi.cost_uc));
    /* the saving as a share of the grid-only bill, net of feed-in credits (the old headline)
     * and gross (before them); null where that bill is not positive */
    double net = 0, gross = 0;
    json_object_set_new(root, "saving_share_of_net_bill",
                        sim__saving_share(r, 0, &net) ? json_real(net) : json_null());
    json_object_set_new(root, "saving_share_of_gross_bill",
                        sim__saving_share(r, 1, &gross) ? json_real(gross) : json_null());
    json_object_set_new(root, "scenario", json_string(sc->name));
    json_object_set_new(root, "seed", json_integer((json_int_t)seed));
    json_object_set_new(root, "mechanism", json_string(mkt_mechanism_name(sc->mechanism)));
    json_object_set_new(root, "timing", json_string(mkt_timing_name(sc->timing)));
    json_object_set_new(root, "interval_min", json_integer(sc->interval_min));
    json_object_set_new(root, "days", json_integer(sc->days));
    json_object_set_new(root, "tariffs_uc_per_kwh",
                        json_pack("{s:I, s:I, s:I}", "feed_in", (json_int_t)sc->feed_in_uc_per_kwh,
                                  "retail", (json_int_t)sc->retail_uc_per_kwh, "network_fee",
                                  (json_int_t)sc->network_fee_uc_per_kwh));
    json_object_set_new(root, "baseline", base);
    if (r->kpi.has_feeders)
        json_object_set_new(root, "grid", grid_json(sc, &r->kpi));
    return root;
}

static int write_json(const char *dir, const char *name, json_t *root, char *err, size_t len)
{
    char path[PATH_MAX_LEN];
    FILE *f = open_out(dir, name, path, err, len);
    if (!f)
        return SIM_E_IO;
    int bad = json_dumpf(root, f, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
    fputc('\n', f);
    int rc = close_out(f, path, err, len);
    if (bad && rc == SIM_OK)
        rc = sim_fail(err, len, SIM_E_IO, "%s: could not encode JSON", path);
    return rc;
}

static int write_intervals(const sim_scenario *sc, const sim_result *r, const char *dir, char *err,
                           size_t len)
{
    char path[PATH_MAX_LEN], t[40];
    FILE *f = open_out(dir, "intervals.csv", path, err, len);
    if (!f)
        return SIM_E_IO;
    fputs("interval,start,load_wh,pv_wh,grid_import_wh,grid_export_wh,local_traded_wh,"
          "price_uc_per_kwh,battery_wh,baseline_grid_import_wh,baseline_grid_export_wh\n",
          f);
    for (size_t k = 0; k < r->n_intervals; k++) {
        const sim_interval_row *w = &r->intervals[k];
        mkt_format_time(w->start_utc, sc->utc_offset_min, t, sizeof t);
        fprintf(f, "%zu,%s,%lld,%lld,%lld,%lld,%lld,", k, t, (long long)w->load_wh,
                (long long)w->pv_wh, (long long)w->grid_import_wh, (long long)w->grid_export_wh,
                (long long)w->local_traded_wh);
        if (w->price_uc_per_kwh >= 0)
            fprintf(f, "%lld", (long long)w->price_uc_per_kwh);
        fprintf(f, ",%lld,%lld,%lld\n", (long long)w->battery_wh, (long long)w->base_grid_import_wh,
                (long long)w->base_grid_export_wh);
    }
    return close_out(f, path, err, len);
}

static int write_homes(const sim_scenario *sc, const sim_result *r, const char *dir, char *err,
                       size_t len)
{
    char path[PATH_MAX_LEN], name[SIM_NAME_MAX + 16];
    FILE *f = open_out(dir, "homes.csv", path, err, len);
    if (!f)
        return SIM_E_IO;
    fputs("home,group,measured,load_wh,pv_wh,local_sold_wh,local_bought_wh,grid_import_wh,"
          "grid_export_wh,baseline_grid_import_wh,baseline_grid_export_wh,battery_charged_wh,"
          "battery_discharged_wh,cost_uc,baseline_cost_uc,savings_uc\n",
          f);
    for (size_t h = 0; h < r->n_homes; h++) {
        const sim_home_row *w = &r->homes[h];
        sim_home_name(sc, h, name, sizeof name);
        fprintf(f, "%s,%s,%d,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld\n",
                name, sc->groups[w->group].name, w->measured, (long long)w->load_wh,
                (long long)w->pv_wh, (long long)w->local_sold_wh, (long long)w->local_bought_wh,
                (long long)w->grid_import_wh, (long long)w->grid_export_wh,
                (long long)w->base_grid_import_wh, (long long)w->base_grid_export_wh,
                (long long)w->battery_charged_wh, (long long)w->battery_discharged_wh,
                (long long)w->cost_uc, (long long)w->base_cost_uc,
                (long long)(w->base_cost_uc - w->cost_uc));
    }
    return close_out(f, path, err, len);
}

/* The average day: community energy per interval of the day, averaged over all days. */
static int write_profile(const sim_scenario *sc, const sim_result *r, const char *dir, char *err,
                         size_t len)
{
    size_t per_day = 1440u / sc->interval_min;
    char path[PATH_MAX_LEN];
    FILE *f = open_out(dir, "profile.csv", path, err, len);
    if (!f)
        return SIM_E_IO;
    fputs("time,load_wh,pv_wh,local_traded_wh,grid_import_wh,grid_export_wh,"
          "baseline_grid_import_wh,baseline_grid_export_wh\n",
          f);
    for (size_t s = 0; s < per_day; s++) {
        double v[7] = {0};
        size_t n = 0;
        for (size_t k = s; k < r->n_intervals; k += per_day, n++) {
            const sim_interval_row *w = &r->intervals[k];
            v[0] += (double)w->load_wh;
            v[1] += (double)w->pv_wh;
            v[2] += (double)w->local_traded_wh;
            v[3] += (double)w->grid_import_wh;
            v[4] += (double)w->grid_export_wh;
            v[5] += (double)w->base_grid_import_wh;
            v[6] += (double)w->base_grid_export_wh;
        }
        size_t minute = s * sc->interval_min;
        fprintf(f, "%02zu:%02zu", minute / 60, minute % 60);
        for (int i = 0; i < 7; i++)
            fprintf(f, ",%.1f", n ? v[i] / (double)n : 0.0);
        fputc('\n', f);
    }
    return close_out(f, path, err, len);
}

/* The scenario's name as gnuplot can quote it in single quotes. */
static void gp_name(const char *in, char *out, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 1 < len; i++)
        out[j++] = (in[i] == '\'' || in[i] == '\\' || in[i] == '\n') ? ' ' : in[i];
    out[j] = '\0';
}

/* plots.gp: power in kW, prices in currency/kWh with the tariffs as lines, the savings per home
 * sorted and as a histogram; every title names the scenario and the seed. */
static int write_plots(const sim_scenario *sc, const sim_result *r, uint64_t seed,
                       const char *dir, char *err, size_t len)
{
    char path[PATH_MAX_LEN], name[SIM_NAME_MAX];
    FILE *f = open_out(dir, "plots.gp", path, err, len);
    if (!f)
        return SIM_E_IO;
    gp_name(sc->name, name, sizeof name);
    double to_kw = 60.0 / sc->interval_min / 1000.0; /* Wh per interval -> mean kW */
    const sim_kpis *k = &r->kpi;
    /* about 30 bins over the savings' range, at least 0.01 currency units wide */
    double bin = (double)(k->savings_max_uc - k->savings_min_uc) / 30.0 / 1e6;
    if (bin < 0.01)
        bin = 0.01;
    fprintf(f,
            "# Renders the plots of an mgx sim run from its CSV files: gnuplot plots.gp\n"
            "set datafile separator ','\n"
            "set terminal pngcairo noenhanced size 1100,600 font 'sans,10'\n"
            "set key outside right top\n"
            "set grid\n"
            "run = '%s, seed %llu, %s, %s'\n"
            "kw = %.9g   # Wh per %u-minute interval -> mean kW\n"
            "feed_in = %.6f   # currency/kWh\n"
            "retail = %.6f\n"
            "fee = %.6f\n"
            "\n"
            "set output 'daily_profile.png'\n"
            "set title 'Average day of the community: '.run\n"
            "set xdata time\n"
            "set timefmt '%%H:%%M'\n"
            "set format x '%%H:%%M'\n"
            "set ylabel 'power (kW, community total)'\n"
            "plot 'profile.csv' using 1:($2*kw) skip 1 with lines lw 2 title 'load', \\\n"
            "     '' using 1:($3*kw) skip 1 with lines lw 2 title 'PV', \\\n"
            "     '' using 1:($4*kw) skip 1 with lines lw 2 title 'traded locally', \\\n"
            "     '' using 1:($5*kw) skip 1 with lines lw 2 title 'grid import (trading)', \\\n"
            "     '' using 1:($7*kw) skip 1 with lines dt 2 lw 2 lc rgb 'black' "
            "title 'grid import (grid only)'\n"
            "\n"
            "set output 'price.png'\n"
            "set title 'Local price per interval (none where nothing traded): '.run\n"
            "set timefmt '%%Y-%%m-%%dT%%H:%%M:%%S'\n"
            "set format x '%%d %%b'\n"
            "set ylabel 'price (currency/kWh)'\n"
            "set yrange [0:retail * 1.1]\n"
            "plot 'intervals.csv' using 2:(valid(8) ? $8/1e6 : NaN) "
            "skip 1 with points pt 7 ps 0.3 title 'local price', \\\n"
            "     retail with lines lw 2 lc rgb 'red' title 'retail tariff', \\\n"
            "     retail - fee with lines dt 2 lc rgb 'red' title 'retail - network fee', \\\n"
            "     feed_in with lines lw 2 lc rgb 'dark-green' title 'feed-in tariff'\n"
            "\n"
            "set output 'savings.png'\n"
            "set autoscale y\n"
            "unset xdata\n"
            "set format x '%%g'\n"
            "set title 'Saving per home against grid only (%zu of %zu homes worse off): '.run\n"
            "set xlabel 'home (sorted by saving)'\n"
            "set ylabel 'saving (currency units)'\n"
            "set style fill solid 0.7\n"
            "plot '< tail -n +2 homes.csv | sort -t, -k16,16n' using 0:($16/1e6) with boxes "
            "title 'saving', 0 with lines lc rgb 'black' notitle\n"
            "\n"
            "set output 'savings_distribution.png'\n"
            "set title 'Distribution of the savings per home: '.run\n"
            "set xlabel 'saving against grid only (currency units)'\n"
            "set ylabel 'homes'\n"
            "binw = %.6f\n"
            "bin(x) = binw * floor(x / binw) + binw / 2\n"
            "set boxwidth binw * 0.9\n"
            "set arrow 1 from 0, graph 0 to 0, graph 1 nohead lc rgb 'red'\n"
            "plot 'homes.csv' using (bin($16/1e6)):(1.0) skip 1 smooth frequency with boxes "
            "title 'homes'\n",
            name, (unsigned long long)seed, mkt_mechanism_name(sc->mechanism),
            mkt_timing_name(sc->timing), to_kw, sc->interval_min,
            (double)sc->feed_in_uc_per_kwh / 1e6, (double)sc->retail_uc_per_kwh / 1e6, (double)sc->network_fee_uc_per_kwh / 1e6,
            k->homes_worse_off, k->homes, bin);
    return close_out(f, path, err, len);
}

int sim_write_outputs(const sim_scenario *sc, const sim_result *r, uint64_t seed, const char *dir,
                      char *err, size_t err_len)
{
    json_t *root = summary_json(sc, r, seed);
    if (!root)
        return sim_fail(err, err_len, SIM_E_NOMEM, "out of memory building summary.json");
    int rc = write_json(dir, "summary.json", root, err, err_len);
    json_decref(root);
    if (rc || (rc = write_intervals(sc, r, dir, err, err_len)) ||
        (rc = write_homes(sc, r, dir, err, err_len)) ||
        (rc = write_profile(sc, r, dir, err, err_len)) ||
        (rc = write_plots(sc, r, seed, dir, err, err_len)))
        return rc;
    return SIM_OK;
}

/* The KPIs that get a mean and spread over runs. */
typedef struct {
    const char *name;
    double (*get)(const sim_result *r);
} kpi_field;

#define KPI_GETTER(fn, expr)                                                                       \
    static double fn(const sim_result *r)                                                          \
    {                                                                                              \
        return (double)(expr);                                                                     \
    }
KPI_GETTER(k_ss, r->kpi.self_sufficiency)
KPI_GETTER(k_sc, r->kpi.self_consumption)
KPI_GETTER(k_ls, r->kpi.local_share)
KPI_GETTER(k_lt, r->kpi.local_traded_wh)
KPI_GETTER(k_gi, r->kpi.grid_import_wh)
KPI_GETTER(k_ge, r->kpi.grid_export_wh)
KPI_GETTER(k_cost, r->kpi.cost_uc)
KPI_GETTER(k_bcost, r->base.cost_uc)
KPI_GETTER(k_sav, r->base.cost_uc - r->kpi.cost_uc)
KPI_GETTER(k_price, r->kpi.mean_price_uc_per_kwh)
KPI_GETTER(k_gini, r->kpi.savings_gini)
KPI_GETTER(k_pi, r->kpi.peak_import_wh)
KPI_GETTER(k_bss, r->base.self_sufficiency)
KPI_GETTER(k_worse, r->kpi.homes_worse_off)
KPI_GETTER(k_min, r->kpi.savings_min_uc)
KPI_GETTER(k_p10, r->kpi.savings_p10_uc)
KPI_GETTER(k_med, r->kpi.savings_median_uc)
KPI_GETTER(k_p90, r->kpi.savings_p90_uc)
KPI_GETTER(k_max, r->kpi.savings_max_uc)

static double k_net_share(const sim_result *r)
{
    double v;
    sim__saving_share(r, 0, &v);
    return v;
}

static double k_gross_share(const sim_result *r)
{
    double v;
    sim__saving_share(r, 1, &v);
    return v;
}

static const kpi_field RUN_FIELDS[] = {
    {"self_sufficiency", k_ss},
    {"self_consumption", k_sc},
    {"local_share", k_ls},
    {"local_traded_wh", k_lt},
    {"grid_import_wh", k_gi},
    {"grid_export_wh", k_ge},
    {"cost_uc", k_cost},
    {"baseline_cost_uc", k_bcost},
    {"savings_uc", k_sav},
    {"mean_price_uc_per_kwh", k_price},
    {"savings_gini", k_gini},
    {"peak_import_wh", k_pi},
    {"baseline_self_sufficiency", k_bss},
    {"homes_worse_off", k_worse},
    {"worst_saving_uc", k_min},
    {"savings_p10_uc", k_p10},
    {"savings_median_uc", k_med},
    {"savings_p90_uc", k_p90},
    {"savings_max_uc", k_max},
    {"saving_share_of_net_bill", k_net_share},
    {"saving_share_of_gross_bill", k_gross_share},
};
#define N_RUN_FIELDS (sizeof RUN_FIELDS / sizeof RUN_FIELDS[0])

/* Mean, sample standard deviation, minimum and maximum of one KPI over the runs. */
static void run_stats(const kpi_field *fld, const sim_result *const *rs, size_t n, double *v,
                      double out[4])
{
    for (size_t i = 0; i < n; i++)
        v[i] = fld->get(rs[i]);
    out[0] = gsl_stats_mean(v, 1, n);
    out[1] = n > 1 ? gsl_stats_sd_m(v, 1, n, out[0]) : 0.0;
    out[2] = out[3] = v[0];
    for (size_t i = 1; i < n; i++) {
        out[2] = v[i] < out[2] ? v[i] : out[2];
        out[3] = v[i] > out[3] ? v[i] : out[3];
    }
}

void sim_print_runs(const sim_result *const *results, size_t n, FILE *out)
{
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v || n == 0) {
        free(v);
        return;
    }
    fprintf(out, "  %-26s %14s %14s %14s %14s\n", "KPI over the runs", "mean", "sd", "min",
            "max");
    for (size_t j = 0; j < N_RUN_FIELDS; j++) {
        double st[4];
        run_stats(&RUN_FIELDS[j], results, n, v, st);
        fprintf(out, "  %-26s %14.6g %14.6g %14.6g %14.6g\n", RUN_FIELDS[j].name, st[0], st[1],
                st[2], st[3]);
    }
    free(v);
}

static int write_runs_csv(const sim_result *const *rs, const uint64_t *seeds, size_t n,
                          const char *dir, char *err, size_t len)
{
    char path[PATH_MAX_LEN];
    FILE *f = open_out(dir, "runs.csv", path, err, len);
    if (!f)
        return SIM_E_IO;
    fputs("seed", f);
    for (size_t j = 0; j < N_RUN_FIELDS; j++)
        fprintf(f, ",%s", RUN_FIELDS[j].name);
    fputc('\n', f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%llu", (unsigned long long)seeds[i]);
        for (size_t j = 0; j < N_RUN_FIELDS; j++)
            fprintf(f, ",%.10g", RUN_FIELDS[j].get(rs[i]));
        fputc('\n', f);
    }
    return close_out(f, path, err, len);
}

int sim_write_runs(const sim_scenario *sc, const sim_result *const *results, const uint64_t *seeds,
                   size_t n, const char *dir, char *err, size_t err_len)
{
    (void)sc;
    if (n == 0)
        return SIM_OK;
    int rc = write_runs_csv(results, seeds, n, dir, err, err_len);
    if (rc)
        return rc;
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    double *v = malloc(n * sizeof *v);
    json_t *runs = json_object(), *seed_list = json_array(), *stats = json_object();
    if (!root || !v || !runs || !seed_list || !stats) {
        rc = sim_fail(err, err_len, SIM_E_IO, "%s: cannot add the runs summary", path);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(seed_list, json_integer((json_int_t)seeds[i]));
    for (size_t j = 0; j < N_RUN_FIELDS; j++) {
        double st[4];
        run_stats(&RUN_FIELDS[j], results, n, v, st);
        json_object_set_new(stats, RUN_FIELDS[j].name,
                            json_pack("{s:f, s:f, s:f, s:f}", "mean", st[0], "sd", st[1], "min",
                                      st[2], "max", st[3]));
    }
    json_object_set_new(runs, "n", json_integer((json_int_t)n));
    json_object_set(runs, "seeds", seed_list);
    json_object_set(runs, "kpis", stats);
    json_object_set(root, "runs", runs);
    rc = write_json(dir, "summary.json", root, err, err_len);
out:
    free(v);
    json_decref(root);
    json_decref(runs);
    json_decref(seed_list);
    json_decref(stats);
    return rc;
}

static double kwh(int64_t wh)
{
    return (double)wh / 1000.0;
}

static double money(int64_t uc)
{
    return (double)uc / 1e6;
}

static void row_kwh(FILE *out, const char *label, int64_t base, int64_t trade)
{
    fprintf(out, "  %-26s %14.1f kWh %14.1f kWh\n", label, kwh(base), kwh(trade));
}

static void row_pct(FILE *out, const char *label, double base, double trade)
{
    fprintf(out, "  %-26s %16.1f %% %16.1f %%\n", label, 100.0 * base, 100.0 * trade);
}

void sim_print_summary(const sim_scenario *sc, const sim_result *r, FILE *out)
{
    const sim_kpis *b = &r->base, *t = &r->kpi;
    double to_kw = 60.0 / sc->interval_min / 1000.0;
    fprintf(out, "%s: %zu homes, %zu intervals of %u min, %s, %s\n", sc->name, t->homes,
            t->intervals, sc->interval_min, mkt_mechanism_name(sc->mechanism),
            mkt_timing_name(sc->timing));
    fprintf(out, "  %-26s %18s %18s\n", "", "grid only", "local trading");
    row_kwh(out, "load", b->load_wh, t->load_wh);
    row_kwh(out, "PV", b->pv_wh, t->pv_wh);
    row_kwh(out, "grid import", b->grid_import_wh, t->grid_import_wh);
    row_kwh(out, "grid export", b->grid_export_wh, t->grid_export_wh);
    row_kwh(out, "traded locally", 0, t->local_traded_wh);
    row_pct(out, "self-sufficiency", b->self_sufficiency, t->self_sufficiency);
    row_pct(out, "self-consumption", b->self_consumption, t->self_consumption);
    row_pct(out, "locally traded share", 0.0, t->local_share);
    fprintf(out, "  %-26s %15.1f kW %15.1f kW\n", "peak grid import",
            (double)b->peak_import_wh * to_kw, (double)t->peak_import_wh * to_kw);
    fprintf(out, "  %-26s %15.1f kW %15.1f kW\n", "peak grid export",
            (double)b->peak_export_wh * to_kw, (double)t->peak_export_wh * to_kw);
    row_kwh(out, "battery throughput", b->battery_discharged_wh, t->battery_discharged_wh);
    fprintf(out, "  %-26s %18.2f %18.2f\n", "community cost", money(b->cost_uc), money(t->cost_uc));
    fprintf(out, "  %-26s %18s %18.2f\n", "network fees", "", money(t->fees_uc));
    if (t->has_feeders) {
        fprintf(out, "  %-26s %18s %18.2f\n", "congestion rent", "", money(t->congestion_uc));
        fprintf(out, "  feeder limits bound in %zu of %zu intervals", t->congested_intervals,
                t->intervals);
        for (size_t g = 0; g < sc->n_groups; g++)
            if (sc->groups[g].feeder_export_kw >= 0 || sc->groups[g].feeder_import_kw >= 0)
                fprintf(out, "; %s: %zu, zone price %.4f", sc->groups[g].name,
                        t->feeder_binding_intervals[g], t->feeder_mean_price_uc_per_kwh[g] / 1e6);
        fprintf(out, "\n");
    }
    if (t->trading_intervals)
        fprintf(out,
                "  local price (per kWh): mean %.4f, time-weighted %.4f, volume-weighted %.4f "
                "over %zu intervals\n",
                t->mean_price_uc_per_kwh / 1e6, t->time_weighted_price_uc_per_kwh / 1e6,
                t->volume_weighted_price_uc_per_kwh / 1e6, t->trading_intervals);
    fprintf(out,
            "  saving per home: min %.2f, p10 %.2f, median %.2f, p90 %.2f, max %.2f, "
            "Gini %.3f\n",
            money(t->savings_min_uc), money(t->savings_p10_uc), money(t->savings_median_uc),
            money(t->savings_p90_uc), money(t->savings_max_uc), t->savings_gini);
    fprintf(out, "  homes worse off than grid only: %zu of %zu (worst home %.2f)\n",
            t->homes_worse_off, t->homes, money(t->savings_min_uc));
    fprintf(out, "  community saves %.2f", money(b->cost_uc - t->cost_uc));
    double net, gross;
    if (sim__saving_share(r, 0, &net))
        fprintf(out, ": %.1f %% of its grid-only net bill (after feed-in credits)", 100.0 * net);
    if (sim__saving_share(r, 1, &gross))
        fprintf(out, ", %.1f %% of its grid-only gross bill (%.2f, before credits)", 100.0 * gross,
                money(b->gross_cost_uc));
    fputc('\n', out);
}

void sim_write_flow_header(FILE *f)
{
    fputs("home,interval,start,load_wh,pv_wh,import_wh,export_wh,local_sold_wh,local_bought_wh,"
          "settled_import_wh,settled_export_wh,cost_uc,baseline_cost_uc,saving_uc\n",
          f);
}

void sim_write_flow_row(const sim_scenario *sc, const sim_flow *fl, FILE *f)
{
    char name[SIM_NAME_MAX + 16], t[40];
    sim_home_name(sc, fl->home, name, sizeof name);
    mkt_format_time(sim_interval_start_utc(sc, fl->interval), sc->utc_offset_min, t, sizeof t);
    fprintf(f, "%s,%zu,%s,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld\n", name,
            fl->interval, t, (long long)fl->load_wh, (long long)fl->pv_wh,
            (long long)fl->import_wh, (long long)fl->export_wh, (long long)fl->local_sold_wh,
            (long long)fl->local_bought_wh, (long long)fl->settled_import_wh,
            (long long)fl->settled_export_wh, (long long)fl->cost_uc, (long long)fl->base_cost_uc,
            (long long)(fl->base_cost_uc - fl->cost_uc));
}
