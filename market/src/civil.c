/*
 * Civil dates (see mgx/civil.h). Floor divisions throughout, so days and times before 1970
 * come out right.
 */
#include "mgx/civil.h"

#include <stdio.h>

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int64_t mkt_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void mkt_civil_from_days(int64_t days, int64_t *y, int64_t *m, int64_t *d)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

int mkt_days_in_month(int64_t y, int64_t m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dm[m - 1];
}

void mkt_format_time(int64_t unix_s, int32_t offset_min, char *out, size_t len)
{
    int64_t t = unix_s + (int64_t)offset_min * 60;
    int64_t days = floor_div(t, 86400), sod = t - days * 86400, y, m, d;
    mkt_civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, len, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld", (long long)y,
                     (long long)m, (long long)d, (long long)(sod / 3600),
                     (long long)(sod / 60 % 60), (long long)(sod % 60));
    if (n < 0 || (size_t)n >= len)
        return;
    int32_t off = offset_min < 0 ? -offset_min : offset_min;
    if (offset_min == 0)
        snprintf(out + n, len - (size_t)n, "Z");
    else
        snprintf(out + n, len - (size_t)n, "%c%02d:%02d", offset_min < 0 ? '-' : '+',
                 (int)(off / 60), (int)(off % 60));
}
