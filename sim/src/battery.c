/*
 * Home battery in integer Wh under a self-consumption policy. Efficiency is split evenly between
 * charging and discharging (sqrt of round trip). Energy stored from a charge is rounded down and
 * energy drawn for a discharge rounded up, so rounding never creates energy.
 */
#include "battery.h"

#include <math.h>

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

void sim_battery_init(sim_battery *b, const sim_group *g, uint32_t interval_min)
{
    double cap_wh = g->battery_kwh * 1000.0;
    b->min_wh = (int64_t)llround(cap_wh * g->soc_min);
    b->max_wh = (int64_t)llround(cap_wh * g->soc_max);
    b->stored_wh = (int64_t)llround(cap_wh * g->soc_initial);
    if (b->stored_wh < b->min_wh)
        b->stored_wh = b->min_wh;
    if (b->stored_wh > b->max_wh)
        b->stored_wh = b->max_wh;
    b->power_wh = (int64_t)floor(g->battery_kw * 1000.0 * interval_min / 60.0);
    double eta = g->battery_efficiency > 0 ? sqrt(g->battery_efficiency) : 1.0;
    b->eta_charge = eta;
    b->eta_discharge = eta;
    if (cap_wh <= 0 || b->power_wh <= 0) {
        b->min_wh = b->max_wh = b->stored_wh = 0;
        b->power_wh = 0;
    }
}

/* Most input energy whose stored part fits into room Wh. */
static int64_t charge_for_room(const sim_battery *b, int64_t room)
{
    int64_t in = (int64_t)floor((double)room / b->eta_charge);
    while (in > 0 && (int64_t)floor((double)in * b->eta_charge) > room)
        in--;
    return in;
}

/* Energy drawn from storage to deliver out Wh. */
static int64_t drawn_for(const sim_battery *b, int64_t out)
{
    return (int64_t)ceil((double)out / b->eta_discharge);
}

/* Charges up to want_wh (> 0) of offered energy, bounded by power and room. */
static sim_battery_flow charge(sim_battery *b, int64_t want_wh, int apply)
{
    sim_battery_flow f = {0, 0, 0};
    int64_t in = min64(min64(want_wh, b->power_wh), charge_for_room(b, b->max_wh - b->stored_wh));
    int64_t kept = (int64_t)floor((double)in * b->eta_charge);
    f.charge_wh = in;
    f.loss_wh = in - kept;
    if (apply)
        b->stored_wh += kept;
    return f;
}

/* Delivers up to want_wh (> 0), bounded by power and the energy above the floor. */
static sim_battery_flow discharge(sim_battery *b, int64_t want_wh, int apply)
{
    sim_battery_flow f = {0, 0, 0};
    int64_t avail = b->stored_wh - b->min_wh;
    int64_t out =
        min64(min64(want_wh, b->power_wh), (int64_t)floor((double)avail * b->eta_discharge));
    while (out > 0 && drawn_for(b, out) > avail)
        out--;
    int64_t drawn = drawn_for(b, out);
    f.discharge_wh = out;
    f.loss_wh = drawn - out;
    if (apply)
        b->stored_wh -= drawn;
    return f;
}

sim_battery_flow sim_battery_step(sim_battery *b, int64_t surplus_wh, int64_t deficit_wh,
                                  int apply)
{
    sim_battery_flow none = {0, 0, 0};
    if (b->power_wh == 0)
        return none;
    if (surplus_wh > 0 && b->stored_wh < b->max_wh)
        return charge(b, surplus_wh, apply);
    if (deficit_wh > 0 && b->stored_wh > b->min_wh)
        return discharge(b, deficit_wh, apply);
    return none;
}

sim_battery_flow sim_battery_step_bounded(sim_battery *b, int64_t surplus_wh, int64_t deficit_wh,
                                          int64_t lo_wh, int64_t hi_wh, int apply)
{
    sim_battery_flow none = {0, 0, 0};
    if (b->power_wh == 0)
        return none;
    int64_t want = surplus_wh > 0 ? surplus_wh : -deficit_wh;
    if (want < lo_wh)
        want = lo_wh;
    if (want > hi_wh)
        want = hi_wh;
    if (want > 0 && b->stored_wh < b->max_wh)
        return charge(b, want, apply);
    if (want < 0 && b->stored_wh > b->min_wh)
        return discharge(b, -want, apply);
    return none;
}
