/*
 * The plausibility filter for cumulative energy counters (rules in mgx/counter.h) and the
 * assembly of a checked sample from one poll's decoded values.
 */
#include "mgx/counter.h"
#include "mgx/regmap.h"

#include <string.h>

#define DECODE_BAD (MTR_Q_COMM | MTR_Q_NAN | MTR_Q_NOT_IMPLEMENTED | MTR_Q_RANGE)

void mtr_counter_params_default(mtr_counter_params *p)
{
    p->max_power_w = 0;
    p->slack_wh = 10;
    p->reset_below_wh = 1000;
    p->confirm = 3;
}

void mtr_counter_init(mtr_counter *c)
{
    memset(c, 0, sizeof *c);
}

/* The largest plausible increase over dt_ms; INT64_MAX without a rated power. */
static int64_t bound_wh(const mtr_counter_params *p, int64_t dt_ms, int64_t tick_wh)
{
    if (p->max_power_w <= 0)
        return INT64_MAX;
    if (dt_ms < 0)
        dt_ms = 0;
    __extension__ __int128 b = (__int128)p->max_power_w * dt_ms;
    b = (b + 3599999) / 3600000 + p->slack_wh + (tick_wh > 0 ? tick_wh : 1);
    return b > MTR_VALUE_MAX ? MTR_VALUE_MAX : (int64_t)b;
}

static void accept(mtr_counter *c, int64_t ts_ms, int64_t value_wh)
{
    c->have = 1;
    c->ts_ms = ts_ms;
    c->raw_wh = value_wh;
    c->pending = 0;
}

/* The new baseline of a reset: the published total stays where it was (delta not counted). */
static void rebase(mtr_counter *c, int64_t ts_ms, int64_t value_wh)
{
    c->offset_wh = c->raw_wh + c->offset_wh - value_wh;
    accept(c, ts_ms, value_wh);
}

/* A rejected reading: does it continue the pending track, and has the track been confirmed? */
static int track_confirmed(mtr_counter *c, const mtr_counter_params *p, int64_t ts_ms,
                           int64_t value_wh, int64_t tick_wh)
{
    if (c->pending > 0 && value_wh >= c->pend_raw_wh &&
        value_wh - c->pend_raw_wh <= bound_wh(p, ts_ms - c->pend_ts_ms, tick_wh))
        c->pending++;
    else
        c->pending = 1;
    c->pend_ts_ms = ts_ms;
    c->pend_raw_wh = value_wh;
    return p->confirm > 0 && c->pending >= p->confirm;
}

/* "Near zero" for a reset: what the meter can count since the last reading, at least
 * reset_below_wh (only reset_below_wh without a rated power). */
static int64_t near_zero(const mtr_counter_params *p, int64_t bound)
{
    return p->max_power_w > 0 && bound > p->reset_below_wh ? bound : p->reset_below_wh;
}

uint32_t mtr_counter_step(mtr_counter *c, const mtr_counter_params *p, int64_t ts_ms,
                          int64_t value_wh, uint32_t q, int64_t wrap_wh, int64_t tick_wh,
                          int64_t *out_wh)
{
    int64_t last = c->have ? c->raw_wh + c->offset_wh : 0;
    if (q & DECODE_BAD) {
        *out_wh = last;
        return q & DECODE_BAD;
    }
    if (value_wh < 0) {
        *out_wh = last; /* never published: consumers that count increases would count it */
        return MTR_Q_NEGATIVE;
    }
    if (!c->have) {
        accept(c, ts_ms, value_wh);
        *out_wh = value_wh + c->offset_wh;
        return 0;
    }
    int64_t bound = bound_wh(p, ts_ms - c->ts_ms, tick_wh);
    uint32_t flag = 0;
    if (value_wh >= c->raw_wh) {
        if (value_wh - c->raw_wh <= bound) {
            accept(c, ts_ms, value_wh);
        } else if (track_confirmed(c, p, ts_ms, value_wh, tick_wh)) {
            rebase(c, ts_ms, value_wh);
            flag = MTR_Q_RESET;
        } else {
            flag = MTR_Q_JUMP;
        }
    } else if (wrap_wh > 0 && c->raw_wh < wrap_wh && value_wh < wrap_wh &&
               wrap_wh - c->raw_wh + value_wh <= bound &&
               (p->max_power_w > 0 || (c->raw_wh >= wrap_wh / 4 * 3 && value_wh < wrap_wh / 4))) {
        c->offset_wh += wrap_wh;
        accept(c, ts_ms, value_wh);
        flag = MTR_Q_ROLLOVER;
    } else if (value_wh <= near_zero(p, bound)) {
        rebase(c, ts_ms, value_wh);
        flag = MTR_Q_RESET;
    } else if (track_confirmed(c, p, ts_ms, value_wh, tick_wh)) {
        rebase(c, ts_ms, value_wh);
        flag = MTR_Q_RESET;
    } else {
        flag = MTR_Q_BACKWARDS;
    }
    /* A rejected value (jump, backwards) is not published: the last accepted total is, with
     * the flag. Home Assistant's total_increasing statistics take any decrease for a new meter
     * cycle and count the next value from zero, so one published glitch adds the whole
     * counter to the Energy dashboard. */
    *out_wh = (flag & (MTR_Q_JUMP | MTR_Q_BACKWARDS)) ? last : value_wh + c->offset_wh;
    return flag;
}

void mtr_filter_apply(mtr_filter *f, const mtr_counter_params *p, const mtr_values *v,
                      int battery_required, mtr_sample *s)
{
    uint32_t q = v->power_q;
    s->power_w = v->power_q ? 0 : v->power_w;
    q |= mtr_counter_step(&f->imp, p, s->ts_ms, v->import_wh, v->import_q, v->import_wrap_wh,
                          v->import_tick_wh, &s->import_wh);
    q |= mtr_counter_step(&f->exp, p, s->ts_ms, v->export_wh, v->export_q, v->export_wrap_wh,
                          v->export_tick_wh, &s->export_wh);
    s->soc_permille = -1;
    if (v->has_soc) {
        q |= v->soc_q;
        if (!v->soc_q && (v->soc_permille < 0 || v->soc_permille > 1000))
            q |= MTR_Q_RANGE;
        else if (!v->soc_q)
            s->soc_permille = v->soc_permille;
    } else if (battery_required) {
        q |= MTR_Q_NOT_IMPLEMENTED;
    }
    s->quality = q;
}

void mtr_filter_fail(const mtr_filter *f, mtr_sample *s)
{
    s->power_w = 0;
    s->import_wh = f->imp.have ? f->imp.raw_wh + f->imp.offset_wh : 0;
    s->export_wh = f->exp.have ? f->exp.raw_wh + f->exp.offset_wh : 0;
    s->soc_permille = -1;
    s->quality = MTR_Q_COMM;
}
