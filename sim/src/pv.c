/*
 * Rooftop PV per home and interval. Everything that depends only on time and panel orientation
 * (sun position, clear-sky irradiance, transposition) is computed once in sim_pv_new and stored
 * per interval and orientation as two plane-of-array values: the clear-sky POA and the POA the
 * same global light would give if it were all diffuse. Cloud cover is a clear-sky index kc: a
 * community-wide logit-normal AR(1) process (after the TAG model of Aguiar & Collares-Pereira
 * 1992) plus a per-home AR(1) deviation. Under clouds the POA is kc times a mix of the two
 * stored values, weighted by how much beam the Erbs model leaves at that kc, so a home-interval
 * costs one Gaussian draw and a handful of multiplications. docs/sim-models.md has the details.
 */
#include "pv.h"

#include <gsl/gsl_integration.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>

#include "solar.h"
#include "timegrid.h"

#define PV_ALBEDO 0.2
/* Sub-samples per interval: one per 5 minutes, at least 3, so sunrise and sunset average out. */
#define PV_SUBSAMPLE_MIN 5u
#define PV_MIN_SUBSAMPLES 3u
/* Spread of the Gaussian behind the logit-normal community kc; 1.5 makes the distribution
 * bimodal (clear and overcast modes), as measured kc distributions are. */
#define PV_LOGIT_SD 1.5
/* A home's kc may exceed 1 a little (cloud-edge enhancement) but no further. */
#define PV_KC_HOME_MAX 1.1
/* Means at or above this are treated as a permanently clear sky. */
#define PV_KC_CLEAR 0.999
#define PV_QUAD_NODES 48
/* Cell temperature: NOCT model, Tcell = Tamb + POA * (NOCT - 20) / 800, with NOCT 45 C, a fixed
 * daytime ambient of 20 C (no temperature data in the scenario) and crystalline-silicon power
 * coefficient -0.4 %/K relative to 25 C. */
#define PV_T_AMB_C 20.0
#define PV_NOCT_RISE_PER_WM2 (25.0 / 800.0)
#define PV_GAMMA_PER_K (-0.004)

typedef struct {
    double tilt_deg, azimuth_deg;
} pv_orient;

typedef struct {
    double wh_per_wm2; /* AC Wh per W/m2 of POA over one interval, before clipping */
    double clip_wh;    /* inverter limit over one interval */
    size_t orient;     /* index into the orientation arrays */
} pv_group;

struct sim_pv {
    size_t n_k, n_g, n_orient;
    pv_group grp[SIM_MAX_GROUPS];
    pv_orient orient[SIM_MAX_GROUPS];
    float *poa_clear;  /* n_orient * n_k, W/m2 averaged over the interval */
    float *poa_diff;   /* n_orient * n_k, same GHI as all-isotropic diffuse */
    float *kt_clear;   /* n_k, clearness index of the clear sky */
    float *inv_fb;     /* n_k, 1 / Erbs beam fraction at kt_clear (0 at night) */
    /* n_k: the per-home deviation only moves in intervals with the sun up, by the exact AR(1)
     * step over the gap since the previous such interval (phi^n, sd sqrt(1 - phi^2n)) */
    double *step_phi, *step_sd;
    double *kc;        /* n_k, community clear-sky index */
    /* weather process */
    int always_clear;
    double mu, sd, rho;     /* Gaussian AR(1) behind the logit */
    double phi;             /* lag-1 correlation of kc and of the per-home deviation */
};

static double logistic(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static double erbs_beam_fraction(double kt)
{
    return 1.0 - sim_erbs_diffuse_fraction(kt);
}

/* ---- calibration of the logit-normal AR(1) ------------------------------------------------ */

typedef struct {
    const double *x, *w; /* Gauss-Hermite nodes and weights for E[f(Z)], Z ~ N(0,1) */
    size_t n;
} quad;

static double kc_mean(const quad *q, double mu, double sd)
{
    double s = 0;
    for (size_t i = 0; i < q->n; i++)
        s += q->w[i] * logistic(mu + sd * q->x[i]);
    return s;
}

/* Lag correlation of logistic(X) when X is Gaussian with correlation rho between lags. */
static double kc_corr(const quad *q, double mu, double sd, double rho, double mean)
{
    double c = sqrt(1.0 - rho * rho), e12 = 0, e11 = 0;
    for (size_t i = 0; i < q->n; i++) {
        double g1 = logistic(mu + sd * q->x[i]), inner = 0;
        for (size_t j = 0; j < q->n; j++)
            inner += q->w[j] * logistic(mu + sd * (rho * q->x[i] + c * q->x[j]));
        e12 += q->w[i] * g1 * inner;
        e11 += q->w[i] * g1 * g1;
    }
    double var = e11 - mean * mean;
    return var > 0 ? (e12 - mean * mean) / var : 0;
}

/* Finds mu (mean of kc = target) and rho (lag-1 correlation of kc = phi). */
static int calibrate_weather(sim_pv *pv, double target_mean, double phi)
{
    gsl_integration_fixed_workspace *ws =
        gsl_integration_fixed_alloc(gsl_integration_fixed_hermite, PV_QUAD_NODES, 0, 0.5, 0, 0);
    if (!ws)
        return -1;
    double xs[PV_QUAD_NODES], ws_norm[PV_QUAD_NODES];
    const double *nodes = gsl_integration_fixed_nodes(ws), *wts = gsl_integration_fixed_weights(ws);
    for (size_t i = 0; i < PV_QUAD_NODES; i++) {
        xs[i] = nodes[i];
        ws_norm[i] = wts[i] / sqrt(2.0 * 3.14159265358979323846);
    }
    gsl_integration_fixed_free(ws);
    quad q = {xs, ws_norm, PV_QUAD_NODES};
    double lo = -30, hi = 30;
    for (int it = 0; it < 100; it++) {
        double mid = 0.5 * (lo + hi);
        if (kc_mean(&q, mid, pv->sd) < target_mean)
            lo = mid;
        else
            hi = mid;
    }
    pv->mu = 0.5 * (lo + hi);
    lo = 0;
    hi = 1;
    for (int it = 0; it < 50 && phi > 0; it++) {
        double mid = 0.5 * (lo + hi);
        if (kc_corr(&q, pv->mu, pv->sd, mid, target_mean) < phi)
            lo = mid;
        else
            hi = mid;
    }
    pv->rho = phi > 0 ? 0.5 * (lo + hi) : 0;
    return 0;
}

/* ---- precomputation ----------------------------------------------------------------------- */

static size_t find_or_add_orient(sim_pv *pv, double tilt, double azimuth)
{
    for (size_t o = 0; o < pv->n_orient; o++)
        if (pv->orient[o].tilt_deg == tilt && pv->orient[o].azimuth_deg == azimuth)
            return o;
    pv->orient[pv->n_orient].tilt_deg = tilt;
    pv->orient[pv->n_orient].azimuth_deg = azimuth;
    return pv->n_orient++;
}

static void setup_groups(sim_pv *pv, const sim_scenario *sc)
{
    double dt_h = sc->interval_min / 60.0;
    for (size_t g = 0; g < pv->n_g; g++) {
        const sim_group *sg = &sc->groups[g];
        pv_group *pg = &pv->grp[g];
        if (!(sg->pv_kwp > 0))
            continue;
        double inv_kw = sg->inverter_kw > 0 ? sg->inverter_kw : sg->pv_kwp;
        /* POA/1000 W/m2 * kWp * (1 - loss) * h * 1000 Wh/kWh */
        pg->wh_per_wm2 = sg->pv_kwp * (1.0 - sg->pv_loss) * dt_h;
        pg->clip_wh = inv_kw * 1000.0 * dt_h;
        pg->orient = find_or_add_orient(pv, sg->pv_tilt_deg, sg->pv_azimuth_deg);
    }
}

/* Averages clear-sky and all-diffuse POA of every orientation over interval k. */
static void precompute_interval(sim_pv *pv, const sim_scenario *sc, size_t k)
{
    unsigned ns = sc->interval_min / PV_SUBSAMPLE_MIN;
    if (ns < PV_MIN_SUBSAMPLES)
        ns = PV_MIN_SUBSAMPLES;
    int doy;
    sim_interval_local(sc, k, &doy, NULL, NULL);
    double t0 = (double)sim_interval_start_utc(sc, k), dt = sc->interval_min * 60.0;
    double i0 = sim_extraterrestrial_wm2(doy), ghi = 0, ext = 0;
    double pc[SIM_MAX_GROUPS] = {0}, pd[SIM_MAX_GROUPS] = {0};
    for (unsigned i = 0; i < ns; i++) {
        sim_sun sun;
        sim_irradiance cs;
        sim_sun_position(t0 + (i + 0.5) * dt / ns, sc->latitude_deg, sc->longitude_deg, &sun);
        sim_clear_sky(&sun, doy, &cs);
        if (cs.ghi_wm2 <= 0)
            continue;
        sim_irradiance diff = {cs.ghi_wm2, 0, cs.ghi_wm2};
        ghi += cs.ghi_wm2;
        ext += i0 * cos(sun.zenith_deg * 3.14159265358979323846 / 180.0);
        for (size_t o = 0; o < pv->n_orient; o++) {
            const pv_orient *po = &pv->orient[o];
            pc[o] += sim_poa_wm2(&sun, &cs, doy, po->tilt_deg, po->azimuth_deg, PV_ALBEDO);
            pd[o] += sim_poa_wm2(&sun, &diff, doy, po->tilt_deg, po->azimuth_deg, PV_ALBEDO);
        }
    }
    for (size_t o = 0; o < pv->n_orient; o++) {
        pv->poa_clear[o * pv->n_k + k] = (float)(pc[o] / ns);
        pv->poa_diff[o * pv->n_k + k] = (float)(pd[o] / ns);
    }
    pv->step_phi[k] = ext > 0 ? 1.0 : 0.0; /* day marker; set_steps fills in the steps */
    double kt = ext > 0 ? ghi / ext : 0;
    double fb = erbs_beam_fraction(kt);
    pv->kt_clear[k] = (float)kt;
    pv->inv_fb[k] = (float)(ext > 0 && fb > 0 ? 1.0 / fb : 0);
}

static void set_steps(sim_pv *pv, double spread)
{
    size_t last = 0;
    int seen = 0;
    for (size_t k = 0; k < pv->n_k; k++) {
        if (pv->step_phi[k] == 0)
            continue;
        double n = seen ? (double)(k - last) : 1.0;
        double phi_n = pow(pv->phi, n);
        pv->step_phi[k] = phi_n;
        pv->step_sd[k] = spread * sqrt(1.0 - phi_n * phi_n);
        last = k;
        seen = 1;
    }
}

sim_pv *sim_pv_new(const sim_scenario *sc)
{
    if (!sim_grid_ok(sc))
        return NULL;
    sim_pv *pv = calloc(1, sizeof *pv);
    if (!pv)
        return NULL;
    pv->n_k = sim_intervals(sc);
    pv->n_g = sc->n_groups;
    setup_groups(pv, sc);
    size_t n_arr = (pv->n_orient ? pv->n_orient : 1) * pv->n_k;
    pv->poa_clear = calloc(n_arr, sizeof *pv->poa_clear);
    pv->poa_diff = calloc(n_arr, sizeof *pv->poa_diff);
    pv->kt_clear = calloc(pv->n_k ? pv->n_k : 1, sizeof *pv->kt_clear);
    pv->inv_fb = calloc(pv->n_k ? pv->n_k : 1, sizeof *pv->inv_fb);
    pv->kc = calloc(pv->n_k ? pv->n_k : 1, sizeof *pv->kc);
    pv->step_phi = calloc(pv->n_k ? pv->n_k : 1, sizeof *pv->step_phi);
    pv->step_sd = calloc(pv->n_k ? pv->n_k : 1, sizeof *pv->step_sd);
    if (!pv->poa_clear || !pv->poa_diff || !pv->kt_clear || !pv->inv_fb || !pv->kc ||
        !pv->step_phi || !pv->step_sd)
        goto fail;
    for (size_t k = 0; k < pv->n_k; k++)
        precompute_interval(pv, sc, k);

    double dt_h = sc->interval_min / 60.0;
    pv->phi = sc->cloud_persistence_h > 0 ? exp(-dt_h / sc->cloud_persistence_h) : 0;
    set_steps(pv, sc->cloud_home_spread > 0 ? sc->cloud_home_spread : 0);
    pv->sd = PV_LOGIT_SD;
    double m = sc->clear_sky_index_mean;
    pv->always_clear = !(m < PV_KC_CLEAR);
    if (!pv->always_clear && calibrate_weather(pv, m > 1e-3 ? m : 1e-3, pv->phi) != 0)
        goto fail;
    for (size_t k = 0; k < pv->n_k; k++)
        pv->kc[k] = pv->always_clear ? 1.0 : logistic(pv->mu);
    return pv;
fail:
    sim_pv_free(pv);
    return NULL;
}

void sim_pv_free(sim_pv *pv)
{
    if (!pv)
        return;
    free(pv->poa_clear);
    free(pv->poa_diff);
    free(pv->kt_clear);
    free(pv->inv_fb);
    free(pv->kc);
    free(pv->step_phi);
    free(pv->step_sd);
    free(pv);
}

/* ---- weather and per-home energy ---------------------------------------------------------- */

void sim_pv_draw_weather(sim_pv *pv, gsl_rng *r)
{
    if (!pv || !r || pv->always_clear || pv->n_k == 0)
        return;
    double innov = pv->sd * sqrt(1.0 - pv->rho * pv->rho);
    double x = pv->mu + gsl_ran_gaussian(r, pv->sd); /* start in the stationary law */
    for (size_t k = 0; k < pv->n_k; k++) {
        if (k > 0)
            x = pv->mu + pv->rho * (x - pv->mu) + gsl_ran_gaussian(r, innov);
        pv->kc[k] = logistic(x);
    }
}

double sim_pv_clear_sky_index(const sim_pv *pv, size_t k)
{
    return pv && k < pv->n_k ? pv->kc[k] : 0;
}

int64_t sim_pv_home_wh(const sim_pv *pv, size_t g, size_t k, double *dev, gsl_rng *r)
{
    if (!pv || g >= pv->n_g || k >= pv->n_k || !dev || !r)
        return 0;
    const pv_group *pg = &pv->grp[g];
    if (pg->wh_per_wm2 <= 0)
        return 0;
    if (pv->step_phi[k] == 0)
        return 0; /* sun down all interval: no draw (half the intervals cost nothing) */
    *dev = pv->step_phi[k] * *dev + gsl_ran_gaussian_ziggurat(r, pv->step_sd[k]);
    size_t i = pg->orient * pv->n_k + k;
    double pc = (double)pv->poa_clear[i];
    if (pc <= 0)
        return 0;
    double kc = pv->kc[k] + *dev;
    kc = kc < 0 ? 0 : kc > PV_KC_HOME_MAX ? PV_KC_HOME_MAX : kc;
    /* share of the clear-sky beam left at this kc (Erbs), 1 under a clear sky */
    double w = erbs_beam_fraction(kc * (double)pv->kt_clear[k]) * (double)pv->inv_fb[k];
    w = w > 1 ? 1 : w;
    double poa = kc * (w * pc + (1.0 - w) * (double)pv->poa_diff[i]);
    double derate = 1.0 + PV_GAMMA_PER_K * (PV_T_AMB_C + PV_NOCT_RISE_PER_WM2 * poa - 25.0);
    double wh = poa * derate * pg->wh_per_wm2;
    if (wh > pg->clip_wh)
        wh = pg->clip_wh;
    return (int64_t)(wh + 0.5); /* nearest Wh, halves up; wh >= 0 */
}
