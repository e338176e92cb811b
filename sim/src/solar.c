/*
 * Solar geometry and clear-sky irradiance for the simulator's PV model. The sun position
 * follows the NOAA solar calculator equations (Meeus, Astronomical Algorithms) with NOAA's
 * refraction correction; the extraterrestrial irradiance is Spencer's (1971) Fourier series;
 * clear sky is Ineichen-Perez (2002) at sea level with a constant Linke turbidity; GHI is split
 * with the Erbs et al. (1982) diffuse fraction and transposed with Hay-Davies (1980). All pure
 * functions; docs/sim-models.md gives the equations and references.
 */
#include "solar.h"

#include <math.h>

#define SOLAR_PI 3.14159265358979323846
#define DEG (SOLAR_PI / 180.0)
#define SOLAR_CONSTANT_WM2 1361.0
/* Annual-mean Linke turbidity of a mid-latitude rural site (Remund et al. 2003 maps give ~3). */
#define LINKE_TURBIDITY 3.0
/* Below this cos(zenith) the beam-to-horizontal ratio is held, as it explodes at the horizon. */
#define MIN_COS_ZENITH 0.0175 /* 89 degrees */
#define ERBS_MAX_ZENITH_DEG 87.0

static double wrap360(double x)
{
    x = fmod(x, 360.0);
    return x < 0 ? x + 360.0 : x;
}

/* NOAA's piecewise fit of atmospheric refraction in degrees at apparent elevation e (deg). */
static double refraction_deg(double e)
{
    double arcsec;
    if (e > 85.0)
        return 0.0;
    if (e > 5.0) {
        double t = tan(e * DEG);
        arcsec = 58.1 / t - 0.07 / (t * t * t) + 0.000086 / (t * t * t * t * t);
    } else if (e > -0.575) {
        arcsec = 1735.0 + e * (-518.2 + e * (103.4 + e * (-12.79 + e * 0.711)));
    } else {
        arcsec = -20.772 / tan(e * DEG);
    }
    return arcsec / 3600.0;
}

void sim_sun_position(double unix_s, double lat_deg, double lon_deg, sim_sun *out)
{
    double jd = unix_s / 86400.0 + 2440587.5;
    double t = (jd - 2451545.0) / 36525.0; /* Julian centuries since J2000.0 */
    double l0 = wrap360(280.46646 + t * (36000.76983 + t * 0.0003032));
    double m = 357.52911 + t * (35999.05029 - 0.0001537 * t);
    double e = 0.016708634 - t * (0.000042037 + 0.0000001267 * t);
    double c = sin(m * DEG) * (1.914602 - t * (0.004817 + 0.000014 * t)) +
               sin(2 * m * DEG) * (0.019993 - 0.000101 * t) + sin(3 * m * DEG) * 0.000289;
    double omega = 125.04 - 1934.136 * t;
    double lambda = l0 + c - 0.00569 - 0.00478 * sin(omega * DEG);
    double eps0 = 23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60.0) / 60.0;
    double eps = eps0 + 0.00256 * cos(omega * DEG);
    double decl = asin(sin(eps * DEG) * sin(lambda * DEG));
    double y = tan(eps * DEG / 2);
    y *= y;
    /* equation of time in minutes */
    double eot = 4.0 / DEG *
                 (y * sin(2 * l0 * DEG) - 2 * e * sin(m * DEG) +
                  4 * e * y * sin(m * DEG) * cos(2 * l0 * DEG) - 0.5 * y * y * sin(4 * l0 * DEG) -
                  1.25 * e * e * sin(2 * m * DEG));
    double utc_min = fmod(unix_s, 86400.0) / 60.0;
    if (utc_min < 0)
        utc_min += 1440.0;
    double tst = fmod(utc_min + eot + 4.0 * lon_deg, 1440.0);
    double h = (tst / 4.0 - 180.0) * DEG; /* hour angle, negative in the morning */
    double phi = lat_deg * DEG;
    double cz = sin(phi) * sin(decl) + cos(phi) * cos(decl) * cos(h);
    if (cz > 1.0)
        cz = 1.0;
    if (cz < -1.0)
        cz = -1.0;
    double zen = acos(cz) / DEG;
    /* azimuth from south, westward positive (Meeus), then turned into a compass bearing */
    double az = atan2(sin(h), cos(h) * sin(phi) - tan(decl) * cos(phi)) / DEG + 180.0;
    out->zenith_deg = zen - refraction_deg(90.0 - zen);
    out->azimuth_deg = wrap360(az);
}

double sim_extraterrestrial_wm2(int day_of_year)
{
    double g = 2.0 * SOLAR_PI * (day_of_year - 1) / 365.0;
    double f = 1.000110 + 0.034221 * cos(g) + 0.001280 * sin(g) + 0.000719 * cos(2 * g) +
               0.000077 * sin(2 * g);
    return SOLAR_CONSTANT_WM2 * f;
}

/* Kasten & Young (1989) relative optical air mass. */
static double air_mass(double zenith_deg)
{
    return 1.0 / (cos(zenith_deg * DEG) + 0.50572 * pow(96.07995 - zenith_deg, -1.6364));
}

void sim_clear_sky(const sim_sun *sun, int day_of_year, sim_irradiance *out)
{
    out->ghi_wm2 = out->dni_wm2 = out->dhi_wm2 = 0;
    if (sun->zenith_deg >= 90.0)
        return;
    double i0 = sim_extraterrestrial_wm2(day_of_year);
    double cz = cos(sun->zenith_deg * DEG);
    double am = air_mass(sun->zenith_deg);
    double tl = LINKE_TURBIDITY;
    /* Ineichen & Perez (2002) at altitude 0: cg1 = 0.868, cg2 = 0.0387, fh1 = fh2 = 1 */
    double ghi = 0.868 * i0 * cz * exp(-0.0387 * am * tl) * exp(0.01 * pow(am, 1.8));
    double dni = (0.664 + 0.163) * i0 * exp(-0.09 * am * (tl - 1.0)); /* b = 0.664 + 0.163/fh1 */
    /* the paper's bound keeps the beam below what the global value allows */
    double dni_max = ghi * (1.0 - (0.1 - 0.2 * exp(-tl)) / (0.1 + 0.882)) / cz;
    if (dni > dni_max)
        dni = dni_max;
    if (dni < 0)
        dni = 0;
    out->ghi_wm2 = ghi;
    out->dni_wm2 = dni;
    out->dhi_wm2 = ghi - dni * cz;
}

double sim_erbs_diffuse_fraction(double kt)
{
    if (kt <= 0.22)
        return 1.0 - 0.09 * (kt > 0 ? kt : 0);
    if (kt <= 0.80)
        return 0.9511 + kt * (-0.1604 + kt * (4.388 + kt * (-16.638 + kt * 12.336)));
    return 0.165;
}

void sim_decompose(double ghi_wm2, const sim_sun *sun, int day_of_year, sim_irradiance *out)
{
    out->ghi_wm2 = ghi_wm2 > 0 ? ghi_wm2 : 0;
    out->dni_wm2 = 0;
    out->dhi_wm2 = out->ghi_wm2;
    if (out->ghi_wm2 <= 0 || sun->zenith_deg >= ERBS_MAX_ZENITH_DEG)
        return;
    double cz = cos(sun->zenith_deg * DEG);
    double kt = out->ghi_wm2 / (sim_extraterrestrial_wm2(day_of_year) * cz);
    double df = sim_erbs_diffuse_fraction(kt);
    out->dhi_wm2 = df * out->ghi_wm2;
    out->dni_wm2 = (out->ghi_wm2 - out->dhi_wm2) / cz;
}

double sim_poa_wm2(const sim_sun *sun, const sim_irradiance *irr, int day_of_year,
                   double tilt_deg, double azimuth_deg, double albedo)
{
    if (sun->zenith_deg >= 90.0 || irr->ghi_wm2 <= 0)
        return 0;
    double zr = sun->zenith_deg * DEG, br = tilt_deg * DEG;
    double cz = cos(zr);
    double cos_aoi =
        cz * cos(br) + sin(zr) * sin(br) * cos((sun->azimuth_deg - azimuth_deg) * DEG);
    if (cos_aoi < 0)
        cos_aoi = 0;
    double rb = cos_aoi / (cz > MIN_COS_ZENITH ? cz : MIN_COS_ZENITH);
    /* Hay-Davies: a share A of the diffuse light (the anisotropy index, beam over
     * extraterrestrial) comes from the sun's direction, the rest from an isotropic sky */
    double a = irr->dni_wm2 / sim_extraterrestrial_wm2(day_of_year);
    if (a > 1)
        a = 1;
    double sky = irr->dhi_wm2 * (a * rb + (1.0 - a) * (1.0 + cos(br)) / 2.0);
    double ground = irr->ghi_wm2 * albedo * (1.0 - cos(br)) / 2.0;
    double poa = irr->dni_wm2 * cos_aoi + sky + ground;
    return poa > 0 ? poa : 0;
}
