/*
 * The scenario's interval grid in UTC and local standard time. Civil-date arithmetic follows
 * the well-known days-from-civil algorithm (Howard Hinnant's derivation), exact for every
 * proleptic Gregorian date.
 */
#include "timegrid.h"

#include <stdio.h>

int64_t sim_days_from_civil(int32_t y, int32_t m, int32_t d)
{
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t mp = (m + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int sim_days_in_month(int32_t y, int32_t m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dm[m - 1];
}

int sim_grid_ok(const sim_scenario *sc)
{
    return sc && sc->interval_min != 0 && 1440u % sc->interval_min == 0 &&
           sc->n_groups <= SIM_MAX_GROUPS;
}

size_t sim_intervals(const sim_scenario *sc)
{
    return (size_t)sc->days * (1440u / sc->interval_min);
}

static int64_t local_start(const sim_scenario *sc)
{
    return sim_days_from_civil(sc->start_year, sc->start_month, sc->start_day) * 86400;
}

int64_t sim_interval_start_utc(const sim_scenario *sc, size_t k)
{
    return local_start(sc) + (int64_t)k * sc->interval_min * 60 -
           (int64_t)sc->utc_offset_min * 60;
}

void sim_interval_local(const sim_scenario *sc, size_t k, int *day_of_year, int *weekday,
                        int *minute_of_day)
{
    int64_t t = local_start(sc) + (int64_t)k * sc->interval_min * 60;
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t mod = t - days * 86400;
    /* 1970-01-01 was a Thursday (3 with Monday = 0) */
    int64_t wd = (days + 3) % 7;
    if (wd < 0)
        wd += 7;
    int32_t y, m, d;
    sim_civil_from_days(days, &y, &m, &d);
    if (day_of_year)
        *day_of_year = (int)(days - sim_days_from_civil(y, 1, 1)) + 1;
    if (weekday)
        *weekday = (int)wd;
    if (minute_of_day)
        *minute_of_day = (int)(mod / 60);
}

void sim_civil_from_days(int64_t days, int32_t *y, int32_t *m, int32_t *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    int64_t mm = mp < 10 ? mp + 3 : mp - 9;
    *y = (int32_t)(yoe + era * 400 + (mm <= 2));
    *m = (int32_t)mm;
    *d = (int32_t)dd;
}

void sim_format_time(int64_t unix_s, int32_t offset_min, char *out, size_t len)
{
    int64_t t = unix_s + (int64_t)offset_min * 60;
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t sec = t - days * 86400;
    int32_t y, m, d;
    sim_civil_from_days(days, &y, &m, &d);
    int32_t off = offset_min < 0 ? -offset_min : offset_min;
    if (offset_min == 0)
        snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, (int)m, (int)d,
                 (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60));
    else
        snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (int)y, (int)m, (int)d,
                 (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60),
                 offset_min < 0 ? '-' : '+', (int)(off / 60), (int)(off % 60));
}
