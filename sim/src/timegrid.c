/*
 * The scenario's interval grid in UTC and local standard time. Civil-date arithmetic follows
 * the well-known days-from-civil algorithm (Howard Hinnant's derivation), exact for every
 * proleptic Gregorian date.
 */
#include "timegrid.h"

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
    /* year of this day: walk from an estimate */
    int32_t y = (int32_t)(1970 + days / 365);
    while (sim_days_from_civil(y, 1, 1) > days)
        y--;
    while (sim_days_from_civil(y + 1, 1, 1) <= days)
        y++;
    if (day_of_year)
        *day_of_year = (int)(days - sim_days_from_civil(y, 1, 1)) + 1;
    if (weekday)
        *weekday = (int)wd;
    if (minute_of_day)
        *minute_of_day = (int)(mod / 60);
}
