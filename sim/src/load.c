/*
 * Household electricity demand per home and interval. The expected load is a daily shape
 * (weekday or weekend; hourly points drawn after the BDEW/VDEW H0 standard load profile and
 * interpolated with a periodic GSL spline, averaged exactly over each interval), times a
 * cosine seasonal factor with its peak in the local winter, normalised so that 365 days from
 * the scenario's start sum to the home's annual consumption. A home then gets a lognormal level
 * (mean 1, drawn once), persistent lognormal AR(1) noise (mean 1) and rare appliance peaks whose
 * expected energy is taken out of the smooth part, so every stochastic piece keeps the mean.
 */
#include "load.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_interp.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>

#include "timegrid.h"

#define LOAD_PI 3.14159265358979323846
#define LOAD_SEASON_AMPLITUDE 0.18 /* +-18 % around the annual mean */
#define LOAD_SEASON_PEAK_DOY 10.0  /* northern peak ~10 January; +half a year in the south */
#define LOAD_LEVEL_SD 0.30         /* log-sd of a home's level within its group */
#define LOAD_NOISE_SD 0.30         /* stationary log-sd of the interval noise */
#define LOAD_NOISE_TAU_H 1.0       /* its e-folding time */
#define LOAD_PEAK_SHARE 0.10       /* share of expected energy delivered as appliance peaks */
#define LOAD_PEAK_MIN_KW 1.0       /* peak power uniform in [min, max] for one interval */
#define LOAD_PEAK_MAX_KW 3.0
#define LOAD_PEAK_MAX_PROB 0.5 /* at most one peak in two intervals, whatever the home size */
#define LOAD_REF_DAYS 365u

/* Relative demand at each full hour of local standard time (24 = 0). Our reading of the H0
 * shape: a night trough around 04:00 at under half the mean, a morning rise, a lunchtime
 * shoulder, an afternoon dip and the main peak at 19-20 h at ~1.5x the mean; weekends start
 * later and have a stronger midday peak (cooking at home). Only the shape matters: the level
 * comes from the normalisation. */
static const double load_weekday[25] = {
    0.80, 0.62, 0.52, 0.48, 0.47, 0.50, 0.68, 0.95, 1.05, 1.02, 1.02, 1.10, 1.22,
    1.18, 1.04, 0.95, 0.95, 1.08, 1.32, 1.48, 1.50, 1.42, 1.25, 1.02, 0.80};
static const double load_weekend[25] = {
    0.88, 0.68, 0.56, 0.50, 0.48, 0.48, 0.52, 0.66, 0.92, 1.15, 1.28, 1.40, 1.48,
    1.35, 1.15, 1.05, 1.05, 1.15, 1.35, 1.45, 1.42, 1.35, 1.20, 1.02, 0.88};

struct sim_load {
    size_t n_k, n_g;
    double dt_h;
    double annual_wh[SIM_MAX_GROUPS];
    double *unit; /* n_k: expected share of the annual energy in interval k */
    double phi, innov;
};

/* Mean of the interpolated daily shape over each slot of the day, for one day type. */
static int slot_means(const double *pts, unsigned interval_min, double *out)
{
    double x[25];
    for (int h = 0; h < 25; h++)
        x[h] = h;
    int rc = -1;
    gsl_interp *ip = gsl_interp_alloc(gsl_interp_cspline_periodic, 25);
    gsl_interp_accel *acc = gsl_interp_accel_alloc();
    if (!ip || !acc || gsl_interp_init(ip, x, pts, 25) != GSL_SUCCESS)
        goto out;
    unsigned slots = 1440u / interval_min;
    for (unsigned s = 0; s < slots; s++) {
        double a = s * interval_min / 60.0, b = (s + 1) * interval_min / 60.0, v;
        if (b > 24.0)
            b = 24.0;
        if (gsl_interp_eval_integ_e(ip, x, pts, a, b, acc, &v) != GSL_SUCCESS)
            goto out;
        out[s] = v / (b - a);
    }
    rc = 0;
out:
    gsl_interp_accel_free(acc);
    gsl_interp_free(ip);
    return rc;
}

static double season_factor(double lat_deg, double day)
{
    double peak = LOAD_SEASON_PEAK_DOY + (lat_deg < 0 ? 365.25 / 2 : 0);
    return 1.0 + LOAD_SEASON_AMPLITUDE * cos(2 * LOAD_PI * (day - peak) / 365.25);
}

/* Noise-free relative demand of interval k of sc (day type, time of day, season). */
static double relative_demand(const sim_scenario *sc, const double *wd, const double *we,
                              size_t k)
{
    int doy, weekday, minute;
    sim_interval_local(sc, k, &doy, &weekday, &minute);
    const double *slot = weekday >= 5 ? we : wd;
    double day = doy + (minute + sc->interval_min / 2.0) / 1440.0;
    return slot[(unsigned)minute / sc->interval_min] * season_factor(sc->latitude_deg, day);
}

static int fill_units(sim_load *l, const sim_scenario *sc)
{
    unsigned slots = 1440u / sc->interval_min;
    double *wd = malloc(2 * slots * sizeof *wd);
    if (!wd)
        return -1;
    double *we = wd + slots;
    int rc = -1;
    if (slot_means(load_weekday, sc->interval_min, wd) != 0 ||
        slot_means(load_weekend, sc->interval_min, we) != 0)
        goto out;
    /* the reference year: 365 days from the scenario's start, same grid */
    sim_scenario ref = *sc;
    ref.days = LOAD_REF_DAYS;
    size_t n_ref = sim_intervals(&ref);
    double total = 0;
    for (size_t k = 0; k < n_ref; k++)
        total += relative_demand(&ref, wd, we, k);
    for (size_t k = 0; k < l->n_k; k++)
        l->unit[k] = relative_demand(sc, wd, we, k) / total;
    rc = 0;
out:
    free(wd);
    return rc;
}

sim_load *sim_load_new(const sim_scenario *sc)
{
    if (!sim_grid_ok(sc))
        return NULL;
    sim_load *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->n_k = sim_intervals(sc);
    l->n_g = sc->n_groups;
    l->dt_h = sc->interval_min / 60.0;
    for (size_t g = 0; g < l->n_g; g++)
        l->annual_wh[g] = sc->groups[g].annual_kwh > 0 ? sc->groups[g].annual_kwh * 1000.0 : 0;
    l->phi = exp(-l->dt_h / LOAD_NOISE_TAU_H);
    l->innov = LOAD_NOISE_SD * sqrt(1.0 - l->phi * l->phi);
    l->unit = calloc(l->n_k ? l->n_k : 1, sizeof *l->unit);
    if (!l->unit || fill_units(l, sc) != 0) {
        sim_load_free(l);
        return NULL;
    }
    return l;
}

void sim_load_free(sim_load *l)
{
    if (!l)
        return;
    free(l->unit);
    free(l);
}

double sim_load_expected_wh(const sim_load *l, size_t g, size_t k)
{
    if (!l || g >= l->n_g || k >= l->n_k)
        return 0;
    return l->annual_wh[g] * l->unit[k];
}

int64_t sim_load_home_wh(const sim_load *l, size_t g, size_t k, sim_load_state *st, gsl_rng *r)
{
    if (!l || g >= l->n_g || k >= l->n_k || !st || !r)
        return 0;
    if (!st->initialised) {
        /* exp(N(-s^2/2, s^2)) has mean 1; the noise starts in its stationary law */
        st->scale = exp(gsl_ran_gaussian_ziggurat(r, LOAD_LEVEL_SD) -
                        LOAD_LEVEL_SD * LOAD_LEVEL_SD / 2);
        st->noise = gsl_ran_gaussian_ziggurat(r, LOAD_NOISE_SD);
        st->initialised = 1;
    } else {
        st->noise = l->phi * st->noise + gsl_ran_gaussian_ziggurat(r, l->innov);
    }
    double expected = l->annual_wh[g] * l->unit[k];
    if (expected <= 0)
        return 0;
    /* peaks carry LOAD_PEAK_SHARE of the expectation; the smooth part the rest */
    double peak_mean_wh = 0.5 * (LOAD_PEAK_MIN_KW + LOAD_PEAK_MAX_KW) * 1000.0 * l->dt_h;
    double p = LOAD_PEAK_SHARE * expected / peak_mean_wh;
    if (p > LOAD_PEAK_MAX_PROB)
        p = LOAD_PEAK_MAX_PROB;
    double wh = (expected - p * peak_mean_wh) *
                exp(st->noise - LOAD_NOISE_SD * LOAD_NOISE_SD / 2);
    if (gsl_rng_uniform(r) < p)
        wh += (LOAD_PEAK_MIN_KW + (LOAD_PEAK_MAX_KW - LOAD_PEAK_MIN_KW) * gsl_rng_uniform(r)) *
              1000.0 * l->dt_h;
    return (int64_t)(wh * st->scale + 0.5); /* nearest Wh; wh >= 0 */
}
