/*
 * The interval-energy rule: the counters at an interval boundary from the good readings around
 * it (see mgx/interval_energy.h).
 */
#include "mgx/interval_energy.h"

#include <stddef.h>

int mtr_interval_boundary(const mtr_reading *before, const mtr_reading *after, int64_t t_ms,
                          int64_t max_gap_ms, mtr_reading *at)
{
    if (!at || max_gap_ms <= 0 || (before && before->time_ms > t_ms) ||
        (after && after->time_ms < t_ms))
        return MTR_E_INVAL;
    if (!before || !after) {
        /* one reading alone is the boundary only when it is on it */
        const mtr_reading *on = before ? before : after;
        if (!on || on->time_ms != t_ms)
            return MTR_E_GAP;
        *at = *on;
        return MTR_OK;
    }
    /* 128 bits: bogus timestamps far apart must not overflow the gap */
    __extension__ __int128 gap = (__int128)after->time_ms - before->time_ms;
    if (gap > max_gap_ms)
        return MTR_E_GAP;
    if (after->import_wh < before->import_wh || after->export_wh < before->export_wh)
        return MTR_E_BACKWARDS;
    if (before->import_wh < 0 || before->export_wh < 0)
        return MTR_E_RANGE;
    if (gap == 0) { /* the same instant on both sides: t is that instant */
        *at = *after;
        return MTR_OK;
    }
    int64_t imp, exp;
    if (mtr_counters_at(before, after, t_ms, &imp, &exp) != MTR_OK)
        return MTR_E_INVAL; /* not reached: every condition of mtr_counters_at holds here */
    *at = (mtr_reading){t_ms, imp, exp};
    return MTR_OK;
}
