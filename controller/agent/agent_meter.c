/*
 * Interval net energy from meter counters for the home agent (see agent_meter.h).
 */
#include "agent/agent_meter.h"

#include "mgx/interval_energy.h"
#include "mgx/reading.h"

#include <stddef.h>

const char *agm_strerror(int code)
{
    switch (code) {
    case AGM_USED:
        return "used";
    case AGM_FIRST:
        return "new baseline";
    case AGM_E_QUALITY:
        return "flagged reading, ignored";
    case AGM_E_OLD:
        return "not newer than the last reading";
    case AGM_E_BACKWARDS:
        return "a counter went down";
    case AGM_E_IMPLAUSIBLE:
        return "more energy than the meter's rated power allows";
    default:
        return "unknown";
    }
}

bool agm_init(agm_state *s, int64_t interval_ms, int64_t max_gap_ms, int64_t max_power_w)
{
    if (!s || interval_ms <= 0 || max_gap_ms <= 0 || max_power_w <= 0)
        return false;
    *s = (agm_state){0};
    s->interval_ms = interval_ms;
    s->max_gap_ms = max_gap_ms;
    s->max_power_w = max_power_w;
    return true;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void push_boundary(agm_state *s, int64_t id, int64_t imp, int64_t exp)
{
    unsigned slot = (s->head + s->n_b) % AGM_BOUNDARIES;
    if (s->n_b == AGM_BOUNDARIES) {
        slot = s->head;
        s->head = (s->head + 1) % AGM_BOUNDARIES;
    } else {
        s->n_b++;
    }
    s->b[slot] = (agm_boundary){id, imp, exp};
}

static const agm_boundary *find(const agm_state *s, int64_t id)
{
    for (unsigned i = 0; i < s->n_b; i++) {
        const agm_boundary *b = &s->b[(s->head + i) % AGM_BOUNDARIES];
        if (b->interval_id == id)
            return b;
    }
    return NULL;
}

int agm_add(agm_state *s, const mtr_sample *r)
{
    if (r->quality != MTR_Q_GOOD)
        return AGM_E_QUALITY;
    if (!s->have_last) {
        s->last = *r;
        s->have_last = true;
        mtr_reading on = {r->ts_ms, r->import_wh, r->export_wh}, at;
        /* a reading right on a boundary is that boundary */
        if (r->ts_ms % s->interval_ms == 0 &&
            mtr_interval_boundary(NULL, &on, r->ts_ms, s->max_gap_ms, &at) == MTR_OK)
            push_boundary(s, r->ts_ms / s->interval_ms, at.import_wh, at.export_wh);
        return AGM_FIRST;
    }
    const mtr_sample *p = &s->last;
    if (r->ts_ms <= p->ts_ms)
        return AGM_E_OLD;
    mtr_reading a = {p->ts_ms, p->import_wh, p->export_wh};
    mtr_reading b = {r->ts_ms, r->import_wh, r->export_wh};
    int64_t di, de;
    int rc = mtr_interval_energy(&a, &b, s->max_power_w, &di, &de);
    if (rc != MTR_OK) {
        s->last = *r; /* the new baseline: nothing is interpolated across the refused step */
        return rc == MTR_E_BACKWARDS ? AGM_E_BACKWARDS : AGM_E_IMPLAUSIBLE;
    }
    /* The rule knows no boundary across a gap wider than max_gap_ms, so do not walk it (r - p
     * can be years): r just becomes the new baseline. */
    if (r->ts_ms - p->ts_ms <= s->max_gap_ms) {
        /* every boundary in (p, r]: the first is the interval after p's */
        for (int64_t id = floor_div(p->ts_ms, s->interval_ms) + 1; id * s->interval_ms <= r->ts_ms;
             id++) {
            mtr_reading at; /* the rule settlement uses too (interval_energy.h) */
            if (mtr_interval_boundary(&a, &b, id * s->interval_ms, s->max_gap_ms, &at) == MTR_OK)
                push_boundary(s, id, at.import_wh, at.export_wh);
        }
    }
    s->last = *r;
    return AGM_USED;
}

bool agm_interval_net(const agm_state *s, int64_t interval_id, int64_t *net_wh)
{
    const agm_boundary *a = find(s, interval_id), *b = find(s, interval_id + 1);
    if (!a || !b)
        return false;
    *net_wh = (b->export_wh - a->export_wh) - (b->import_wh - a->import_wh);
    return true;
}

bool agm_last_complete(const agm_state *s, int64_t *interval_id, int64_t *net_wh)
{
    /* boundaries are pushed in increasing order, so walk back from the newest */
    for (unsigned i = s->n_b; i-- > 1;) {
        const agm_boundary *end = &s->b[(s->head + i) % AGM_BOUNDARIES];
        if (agm_interval_net(s, end->interval_id - 1, net_wh)) {
            *interval_id = end->interval_id - 1;
            return true;
        }
    }
    return false;
}
