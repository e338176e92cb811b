/*
 * The scenario's interval grid in UTC and local standard time. The calendar is the market
 * library's (mgx/civil.h).
 */
#include "timegrid.h"

#include "mgx/civil.h"

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
    return mkt_days_from_civil(sc->start_year, sc->start_month, sc->start_day) * 86400;
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
    int64_t y, m, d;
    mkt_civil_from_days(days, &y, &m, &d);
    if (day_of_year)
        *day_of_year = (int)(days - mkt_days_from_civil(y, 1, 1)) + 1;
    if (weekday)
        *weekday = (int)wd;
    if (minute_of_day)
        *minute_of_day = (int)(mod / 60);
}
