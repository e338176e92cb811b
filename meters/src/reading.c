/*
 * Interval energy from cumulative counters with a plausibility filter: a reading that implies
 * more than rated power for the whole interval is rejected instead of being billed.
 */
#include "mgx/reading.h"

#include <stddef.h>

static int delta(int64_t a, int64_t b, int64_t max_wh, int64_t *out)
{
    int64_t d;
    if (b < a)
        return MTR_E_BACKWARDS;
    /* b >= a, so an overflowing difference is a huge positive one: implausible, not UB. */
    if (__builtin_sub_overflow(b, a, &d) || d > max_wh)
        return MTR_E_IMPLAUSIBLE;
    *out = d;
    return MTR_OK;
}

int mtr_interval_energy(const mtr_reading *prev, const mtr_reading *cur, int64_t max_power_w,
                        int64_t *import_wh, int64_t *export_wh)
{
    if (!prev || !cur || !import_wh || !export_wh || max_power_w <= 0 ||
        cur->time_ms <= prev->time_ms || max_power_w > INT64_C(1000000000000))
        return MTR_E_INVAL;
    /* W * ms / 3.6e6 = Wh; round up so a meter running at exactly its rating passes. */
    /* The time difference is taken in 128 bits: bogus timestamps far apart must not overflow. */
    __extension__ __int128 lim = (__int128)max_power_w * ((__int128)cur->time_ms - prev->time_ms);
    lim = (lim + 3599999) / 3600000;
    int64_t max_wh = lim > INT64_MAX ? INT64_MAX : (int64_t)lim;
    int64_t imp, exp;
    int rc = delta(prev->import_wh, cur->import_wh, max_wh, &imp);
    if (rc == MTR_OK)
        rc = delta(prev->export_wh, cur->export_wh, max_wh, &exp);
    if (rc)
        return rc;
    *import_wh = imp;
    *export_wh = exp;
    return MTR_OK;
}

static int64_t interpolate(int64_t c0, int64_t c1, int64_t t0, int64_t t1, int64_t t)
{
    /* 128 bits: timestamps far apart must not overflow; rise >= 0, so truncation is the floor */
    __extension__ __int128 rise = (__int128)(c1 - c0) * ((__int128)t - t0);
    return c0 + (int64_t)(rise / ((__int128)t1 - t0));
}

int mtr_counters_at(const mtr_reading *a, const mtr_reading *b, int64_t t_ms,
                    int64_t *import_wh, int64_t *export_wh)
{
    if (!a || !b || !import_wh || !export_wh || b->time_ms <= a->time_ms || t_ms < a->time_ms ||
        t_ms > b->time_ms || b->import_wh < a->import_wh || b->export_wh < a->export_wh ||
        a->import_wh < 0 || a->export_wh < 0)
        return MTR_E_INVAL;
    *import_wh = interpolate(a->import_wh, b->import_wh, a->time_ms, b->time_ms, t_ms);
    *export_wh = interpolate(a->export_wh, b->export_wh, a->time_ms, b->time_ms, t_ms);
    return MTR_OK;
}
