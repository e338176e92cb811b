/*
 * An interval's metered energy from one meter's stored readings (see settle_meter.h).
 */
#include "settle/settle_meter.h"

#include "mgx/interval_energy.h"
#include "mgx/reading.h"
#include "mgx/reconcile.h"

#include <stdbool.h>

const char *stm_status_name(stm_status s)
{
    switch (s) {
    case STM_GOOD:
        return "good";
    case STM_FLAGGED:
        return "flagged";
    case STM_MISSING:
        return "missing";
    }
    return "unknown";
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

void stm_window(int64_t start_ms, int64_t end_ms, const stm_rules *rules, int64_t *from_ms,
                int64_t *to_ms)
{
    *from_ms = sat_add(start_ms, -rules->max_gap_ms);
    *to_ms = sat_add(end_ms, rules->max_gap_ms);
}

static mtr_reading counters(const mtr_sample *s)
{
    return (mtr_reading){s->ts_ms, s->import_wh, s->export_wh};
}

/* A boundary: the counters at t and the readings [lo, hi] they come from. */
typedef struct {
    bool known;
    size_t lo, hi;
    int64_t import_wh, export_wh;
} boundary;

/* The boundary at t from the good readings around it (mtr_interval_boundary, the rule the home
 * agent uses too). Returns false when those two readings are not a plausible pair (a counter
 * went down): the caller flags it; *b then says known = false. */
static bool find_boundary(const mtr_sample *r, size_t n, int64_t t, int64_t max_gap_ms, boundary *b)
{
    *b = (boundary){0};
    size_t before = SIZE_MAX, after = SIZE_MAX;
    for (size_t i = 0; i < n && after == SIZE_MAX; i++) {
        if (r[i].quality != MTR_Q_GOOD)
            continue;
        if (r[i].ts_ms <= t)
            before = i;
        else
            after = i;
    }
    bool on = before != SIZE_MAX && r[before].ts_ms == t; /* then it alone is the boundary */
    mtr_reading x = {0}, y = {0}, at;
    if (before != SIZE_MAX)
        x = counters(&r[before]);
    if (after != SIZE_MAX && !on)
        y = counters(&r[after]);
    int rc = mtr_interval_boundary(before != SIZE_MAX ? &x : NULL,
                                   after != SIZE_MAX && !on ? &y : NULL, t, max_gap_ms, &at);
    if (rc == MTR_E_GAP)
        return true;
    if (rc != MTR_OK)
        return false;
    b->known = true;
    b->lo = before;
    b->hi = on ? before : after;
    b->import_wh = at.import_wh;
    b->export_wh = at.export_wh;
    return true;
}

int stm_boundary(const mtr_sample *r, size_t n, int64_t t, const stm_rules *rules,
                 int64_t *import_wh, int64_t *export_wh)
{
    boundary b;
    if (!r || !rules || rules->max_gap_ms <= 0 || !find_boundary(r, n, t, rules->max_gap_ms, &b) ||
        !b.known)
        return 0;
    *import_wh = b.import_wh;
    *export_wh = b.export_wh;
    return 1;
}

/* Quality bits of the readings with from <= ts <= to. */
static uint32_t flags_between(const mtr_sample *r, size_t n, int64_t from, int64_t to)
{
    uint32_t q = 0;
    for (size_t i = 0; i < n; i++)
        if (r[i].ts_ms >= from && r[i].ts_ms <= to)
            q |= r[i].quality;
    return q;
}

/* Every step between consecutive good readings of r[lo..hi] must be plausible; returns the
 * quality bit of the first that is not (0 when all are). */
static uint32_t check_steps(const mtr_sample *r, size_t lo, size_t hi, int64_t max_power_w)
{
    size_t prev = SIZE_MAX;
    for (size_t i = lo; i <= hi; i++) {
        if (r[i].quality != MTR_Q_GOOD)
            continue;
        if (prev != SIZE_MAX) {
            const mtr_sample *a = &r[prev], *b = &r[i];
            if (b->import_wh < a->import_wh || b->export_wh < a->export_wh)
                return MTR_Q_BACKWARDS;
            if (max_power_w > 0) {
                mtr_reading x = counters(a), y = counters(b);
                int64_t di, de;
                int rc = mtr_interval_energy(&x, &y, max_power_w, &di, &de);
                if (rc == MTR_E_BACKWARDS)
                    return MTR_Q_BACKWARDS;
                if (rc != MTR_OK)
                    return MTR_Q_JUMP;
            }
        }
        prev = i;
    }
    return 0;
}

int stm_interval(const mtr_sample *r, size_t n, int64_t start_ms, int64_t end_ms,
                 const stm_rules *rules, stm_result *out)
{
    if (!out || !rules || (!r && n) || end_ms <= start_ms || rules->max_gap_ms <= 0 ||
        rules->max_power_w < 0)
        return STM_E_INVAL;
    for (size_t i = 1; i < n; i++)
        if (r[i].ts_ms <= r[i - 1].ts_ms)
            return STM_E_INVAL;
    *out = (stm_result){STM_MISSING, 0, 0, 0};
    boundary s = {0}, e = {0};
    uint32_t q = 0;
    if (!find_boundary(r, n, start_ms, rules->max_gap_ms, &s) ||
        !find_boundary(r, n, end_ms, rules->max_gap_ms, &e))
        q |= MTR_Q_BACKWARDS;
    if (!s.known || !e.known) {
        /* no energy, but a flag inside the interval says more than "missing" */
        q |= flags_between(r, n, start_ms, end_ms);
        if (q) {
            out->status = STM_FLAGGED;
            out->quality = q;
        }
        return STM_OK;
    }
    /* the span the energy is derived from: the outer readings of both boundaries */
    q |= flags_between(r, n, r[s.lo].ts_ms, r[e.hi].ts_ms);
    q |= check_steps(r, s.lo, e.hi, rules->max_power_w);
    int64_t imp = e.import_wh - s.import_wh, exp = e.export_wh - s.export_wh;
    if (imp < 0 || exp < 0) /* cannot happen after check_steps; never pass it on */
        q |= MTR_Q_BACKWARDS;
    if (imp > STL_METER_MAX_WH || exp > STL_METER_MAX_WH)
        q |= MTR_Q_RANGE;
    out->status = q ? STM_FLAGGED : STM_GOOD;
    out->quality = q;
    if (!(q & (MTR_Q_BACKWARDS | MTR_Q_RANGE))) {
        out->import_wh = imp;
        out->export_wh = exp;
    }
    return STM_OK;
}

/* ceil(p_w * len_s / 3600) Wh, saturating (p_w <= 10^12 W, len_s <= 86400 fits int64). */
static int64_t cap_wh(int64_t p_w, int64_t len_s)
{
    int64_t x;
    if (__builtin_mul_overflow(p_w, len_s, &x) || x > INT64_MAX - 3599)
        return INT64_MAX;
    return (x + 3599) / 3600;
}

int64_t stm_battery_wh(const stm_limits *l, int64_t len_s)
{
    if (!l || len_s <= 0)
        return 0;
    if (l->battery_w >= 0 && l->battery_wh >= 0)
        return cap_wh(l->battery_w, len_s) < l->battery_wh ? cap_wh(l->battery_w, len_s)
                                                           : l->battery_wh;
    if (l->battery_w >= 0)
        return cap_wh(l->battery_w, len_s);
    return l->battery_wh >= 0 ? l->battery_wh : 0;
}

uint32_t stm_limits_check(const stm_limits *l, int64_t import_wh, int64_t export_wh,
                          int64_t len_s)
{
    if (!l || len_s <= 0)
        return 0;
    if (l->connection_w >= 0) {
        int64_t c = cap_wh(l->connection_w, len_s);
        if (import_wh > c || export_wh > c)
            return MTR_Q_LIMIT;
    }
    if (l->pv_wp >= 0) {
        int64_t batt = stm_battery_wh(l, len_s);
        int64_t pv = cap_wh(l->pv_wp, len_s);
        if (export_wh > (pv > INT64_MAX - batt ? INT64_MAX : pv + batt))
            return MTR_Q_LIMIT;
    }
    return 0;
}
