/*
 * Internal: solar geometry and clear-sky irradiance. Pure functions of time and place.
 */
#ifndef MGX_SIM_SOLAR_H
#define MGX_SIM_SOLAR_H

typedef struct {
    double zenith_deg;  /* 0 overhead, > 90 below the horizon */
    double azimuth_deg; /* compass bearing of the sun: 0 north, 90 east, 180 south */
} sim_sun;

typedef struct {
    double ghi_wm2; /* global horizontal */
    double dni_wm2; /* direct normal */
    double dhi_wm2; /* diffuse horizontal */
} sim_irradiance;

/* Solar position at a UTC instant (Unix seconds) for a place; NOAA/Meeus-grade accuracy
 * (better than 0.1 degree 1950..2050). */
void sim_sun_position(double unix_s, double lat_deg, double lon_deg, sim_sun *out);

/* Extraterrestrial normal irradiance (solar constant 1361 W/m2 corrected for Earth-Sun
 * distance) on a day of year 1..366. */
double sim_extraterrestrial_wm2(int day_of_year);

/* Clear-sky GHI/DNI/DHI for the sun position (model named and cited in docs/sim-models.md). */
void sim_clear_sky(const sim_sun *sun, int day_of_year, sim_irradiance *out);

/* Splits a measured or modelled GHI into DNI and DHI (Erbs et al. 1982 diffuse fraction). */
void sim_decompose(double ghi_wm2, const sim_sun *sun, int day_of_year, sim_irradiance *out);

/* The Erbs et al. (1982) diffuse fraction DHI/GHI for a clearness index kt = GHI / (I0 cos z);
 * sim_decompose uses it, and the PV model evaluates it per home without a sun position. */
double sim_erbs_diffuse_fraction(double kt);

/* Plane-of-array irradiance for a tilted plane (Hay-Davies or isotropic transposition, cited
 * in docs/sim-models.md), including ground reflection with the given albedo. */
double sim_poa_wm2(const sim_sun *sun, const sim_irradiance *irr, int day_of_year,
                   double tilt_deg, double azimuth_deg, double albedo);

#endif
