/*
 * The dispatch decision (mgx/dispatch.h) against answers worked by hand, the guard's reckoning
 * and its daily check, and the invariant the guard is for: on a small community with a peak
 * tariff no battery home ends worse off on `battery_policy = schedule` than on
 * self-consumption (grid only).
 *
 * The hand-worked home: intervals of 6 h (4 a day), a lossless 1000 Wh battery (window 0..1000,
 * 1000 Wh per interval), 500 Wh of load every interval and no PV, forecast by day-ahead
 * persistence; retail 0.10/kWh except 0.40 from 18:00 to 24:00 UTC, feed-in 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <string.h>

#include "mgx/dispatch.h"
#include "mgx/sim.h"

#ifndef MGX_DISPATCH_DAYS
#define MGX_DISPATCH_DAYS 10 /* the street's days (tests/sim/CMakeLists.txt: 5 sanitized) */
#endif

#define IV    21600 /* 6 h */
#define CHEAP 100000
#define PEAK  400000

static int64_t price_of(int64_t q)
{
    return q % 4 == 3 ? PEAK : CHEAP; /* interval 3 of each day: 18:00-24:00 */
}

static sim_dispatch *home_cfg(int guard, uint32_t spread, int worst_day, int no_stake)
{
    sim_dispatch_config c;
    memset(&c, 0, sizeof c);
    c.guard_off = !guard;
    c.guard_worst_day = worst_day;
    c.guard_no_stake = no_stake;
    c.spread_intervals = spread;
    c.fc = (sim_fc_config){0, 0, 30, 180, IV, 7, 1};
    c.forecast = SIM_DISPATCH_PERSISTENCE;
    c.horizon = 4;
    c.min_gain_uc = 50000;
    sim_plan_battery b = {0, 1000, 0, 1000, 1000, 1000, 1000, SIM_PLAN_NO_CAP, SIM_PLAN_NO_CAP,
                          0, 0};
    sim_dispatch *d = sim_dispatch_new(&c, &b);
    assert_non_null(d);
    return d;
}

static sim_dispatch *home_opts(int guard, uint32_t spread, int worst_day)
{
    return home_cfg(guard, spread, worst_day, 0);
}

static sim_dispatch *home_spread(int guard, uint32_t spread)
{
    return home_opts(guard, spread, 0);
}

static sim_dispatch *home(int guard)
{
    return home_spread(guard, 0);
}

/* The home measured intervals from..to (inclusive): 500 Wh of load, imported (grid_wh). */
static void observe(sim_dispatch *d, int64_t from, int64_t to, int64_t grid_wh)
{
    for (int64_t q = from; q <= to; q++)
        sim_dispatch_observe(d, q * IV, 0, 500, grid_wh, price_of(q), 0);
}

static void decide(sim_dispatch *d, int64_t last, unsigned lead, int64_t stored, const int64_t *gap,
                   sim_dispatch_decision *out)
{
    int64_t imp[4], exp[4] = {0, 0, 0, 0};
    for (int j = 0; j < 4; j++)
        imp[j] = price_of(last + lead + j);
    assert_int_equal(sim_dispatch_decide(d, last * IV, lead, stored, gap, imp, exp, out), 0);
}

static void known_decisions(void **state)
{
    (void)state;
    sim_dispatch *d = home(0);
    sim_dispatch_decision o;
    observe(d, 0, 2, 500);
    /* less than a day measured: self-consumption, on a forecast of nothing */
    decide(d, 2, 1, 0, NULL, &o);
    assert_int_equal(o.planned, 0);
    assert_int_equal(o.why, SIM_DISPATCH_NO_HISTORY);
    observe(d, 3, 3, 500);
    /* Deciding interval 4 (00:00 of day 1) over 4, 5, 6, 7 at 0.10, 0.10, 0.10, 0.40: charge
     * 500 Wh in one of the cheap intervals for the peak, 350 - 200 = 0.15 (150000 uc) better
     * than self-consumption (an empty battery never used). But charging now ties with charging
     * in 5 or 6: wait (self-consumption now: nothing stored, nothing to do). */
    decide(d, 3, 1, 0, NULL, &o);
    assert_int_equal(o.planned, 0);
    assert_int_equal(o.why, SIM_DISPATCH_WAIT);
    assert_int_equal(o.gain_uc, 150000);
    assert_int_equal(o.forecast_net_wh, 500);
    assert_int_equal(o.setpoint_wh, 0);
    assert_int_equal(o.net_wh, 500);
    assert_int_equal(o.lo_wh, -1000);
    assert_int_equal(o.hi_wh, 1000);
    observe(d, 4, 5, 500);
    /* Interval 6 (12:00) over 6, 7, 8, 9 at 0.10, 0.40, 0.10, 0.10: the last cheap interval
     * before the peak, so charge now, at least 500 Wh (from the grid): the home will import
     * its 500 Wh of load and 500 for the battery. */
    decide(d, 5, 1, 0, NULL, &o);
    assert_int_equal(o.planned, 1);
    assert_int_equal(o.why, SIM_DISPATCH_PLAN);
    assert_int_equal(o.gain_uc, 150000);
    assert_int_equal(o.lo_wh, 500);
    assert_int_equal(o.setpoint_wh, 500);
    assert_int_equal(o.net_wh, 1000);
    /* The same interval decided with lead 2, as the live agent does, from the end of interval
     * 4: across interval 5 the battery does self-consumption on the forecast (nothing, it is
     * empty), so the decision is the same. */
    sim_dispatch *d2 = home(0);
    observe(d2, 0, 4, 500);
    decide(d2, 4, 2, 0, NULL, &o);
    assert_int_equal(o.planned, 1);
    assert_int_equal(o.stored_wh, 0);
    assert_int_equal(o.setpoint_wh, 500);
    assert_int_equal(o.net_wh, 1000);
    /* ... and with 300 Wh already committed to the battery in interval 5, it starts interval 6
     * with 300 Wh and needs only 200 more for the peak: at least 200, 700 imported. */
    int64_t gap[1] = {300};
    decide(d2, 4, 2, 0, gap, &o);
    assert_int_equal(o.planned, 1);
    assert_int_equal(o.stored_wh, 300);
    assert_int_equal(o.lo_wh, 200);
    assert_int_equal(o.setpoint_wh, 200);
    assert_int_equal(o.net_wh, 700);
    /* self-consumption would spend the 300 Wh at 0.10 in interval 6 and meet the peak from the
     * grid: the plan moves 500 Wh from 0.10 to 0.40, 0.15 as before */
    assert_int_equal(o.gain_uc, 150000);
    /* bad arguments */
    int64_t imp[4] = {CHEAP, CHEAP, CHEAP, CHEAP}, exp[4] = {0, 0, 0, 0};
    assert_int_equal(sim_dispatch_decide(d2, 3 * IV, 1, 0, NULL, imp, exp, &o), -1); /* not last */
    assert_int_equal(sim_dispatch_decide(d2, 4 * IV, 0, 0, NULL, imp, exp, &o), -1);
    assert_int_equal(
        sim_dispatch_decide(d2, 4 * IV, SIM_DISPATCH_MAX_LEAD + 1, 0, NULL, imp, exp, &o), -1);
    /* flat prices: self-consumption without solving */
    assert_int_equal(sim_dispatch_decide(d2, 4 * IV, 1, 0, NULL, imp, exp, &o), 0);
    assert_int_equal(o.why, SIM_DISPATCH_FLAT);
    sim_dispatch_free(d2);
    sim_dispatch_free(d);
}

static void guard_reckoning(void **state)
{
    (void)state;
    /* paid 0.30 (300 000 000 nuc), the shadow 0.25, but holds 1000 Wh more, worth the 0.08
     * terminal price: -0.05 + 0.08 = +0.03 */
    assert_int_equal(
        sim_dispatch_guard_gain_nuc(300000000, 250000000, 2000, 1000, 80000, 420000, 950),
        30000000);
    /* lacks 500 Wh: buying them back at the dearest 0.42 through a 95 % charge costs
     * 500 x 420000 / 0.95 = 221 052 631.6 nuc, rounded against the plan */
    assert_int_equal(
        sim_dispatch_guard_gain_nuc(300000000, 300000000, 500, 1000, 80000, 420000, 950),
        -221052632);
    assert_int_equal(sim_dispatch_guard_gain_nuc(7, 7, 1000, 1000, 80000, 420000, 950), 0);
}

/* The daily check through the module. Until the paper battery (always on its plan) is ahead of
 * the shadow, the home runs self-consumption; then it follows plans while it is not behind the
 * shadow itself. */
static void guard_daily_check(void **state)
{
    (void)state;
    /* without the day's stake, which would cut day 2's charge to 375 Wh (day_stake works it) */
    sim_dispatch *d = home_cfg(1, 0, 0, 1);
    sim_dispatch_decision o;
    sim_dispatch_books bk;
    observe(d, 0, 5, 500);
    /* day 1's check: nothing shown yet (the paper battery has done what the shadow did), so
     * the home waits; the paper battery takes the plan of interval 6: charge 500 Wh */
    decide(d, 5, 1, 0, NULL, &o);
    assert_int_equal(o.planned, 0);
    assert_int_equal(o.why, SIM_DISPATCH_GUARD);
    assert_int_equal(o.gain_uc, 150000);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.allowed, 0);
    assert_int_equal(bk.paper_gain_nuc, 0);
    /* interval 6: the home imports its 500 Wh, the paper battery 1000 at 0.10; interval 7,
     * the peak at 0.40: the home 500, the paper battery nothing (it discharges its 500) */
    observe(d, 6, 7, 500);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.shadow_nuc - bk.paper_nuc, 150000000); /* 250 000 - 100 000 uc */
    assert_int_equal(bk.real_nuc, bk.shadow_nuc);
    /* day 2's check (the decision of interval 9 with lead 2): plans follow for real; 9 is not
     * the last cheap interval before the peak (wait), 10 is */
    decide(d, 7, 2, 0, NULL, &o);
    assert_int_equal(o.why, SIM_DISPATCH_WAIT);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.allowed, 1);
    assert_int_equal(bk.paper_gain_nuc, 150000000);
    observe(d, 8, 8, 500);
    decide(d, 8, 2, 0, NULL, &o);
    assert_int_equal(o.planned, 1);
    assert_int_equal(o.lo_wh, 500);
    /* the home charges its 500 Wh in interval 10 (1000 imported), but at the peak its battery
     * fails and it imports 500 at 0.40, keeping 500 Wh stored: 50 000 uc behind the shadow,
     * and the 500 Wh it holds beyond the shadow count at the terminal price, 0 here */
    observe(d, 9, 9, 500);
    observe(d, 10, 10, 1000);
    observe(d, 11, 13, 500);
    decide(d, 13, 1, 500, NULL, &o); /* day 3's check */
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.gain_nuc, -50000000);
    assert_int_equal(bk.paper_gain_nuc, 300000000); /* another 150 000 uc on day 2 */
    /* behind by 0.05, but within a quarter of what its paper battery has shown (0.30 / 4 =
     * 0.075): it plans (until this change it was held to self-consumption), and its
     * plan for interval 14 keeps the 500 Wh for the peak instead of covering 14's load */
    assert_int_equal(bk.allowed, 1);
    assert_int_equal(o.planned, 1);
    assert_int_equal(o.lo_wh, 0);
    /* the home spends its 500 Wh at day 3's peak (interval 15): 200 000 uc, so day 4's check
     * finds it 150 000 uc ahead, and it plans */
    observe(d, 14, 14, 500);
    observe(d, 15, 15, 0);
    observe(d, 16, 17, 500);
    decide(d, 17, 1, 0, NULL, &o);
    assert_int_equal(o.planned, 1);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.gain_nuc, 150000000);
    assert_int_equal(bk.paper_gain_nuc, 450000000);
    assert_int_equal(bk.allowed, 1);
    sim_dispatch_free(d);
}

/* The paper battery at lead 2 (the home agent's lead): each decision is made before the
 * interval decided the time before is observed, and the paper battery still follows the plan
 * it was given for each interval. Day 1: the decision of interval 6 (from 4) charges 500 Wh
 * (cheap) for the peak of 7; the decision of 7 (from 5) comes before 6 is observed. Observed,
 * the paper battery imports 1000 Wh at 0.10 in 6 and nothing in 7, the shadow 500 in each:
 * 250 000 - 100 000 uc ahead. Keeping only the last decision's bounds (a single slot) runs the
 * paper battery on self-consumption in 6 and leaves it level with the shadow. */
static void paper_battery_at_lead_2(void **state)
{
    (void)state;
    sim_dispatch *d = home(1);
    sim_dispatch_decision o;
    sim_dispatch_books bk;
    observe(d, 0, 4, 500);
    decide(d, 4, 2, 0, NULL, &o);
    assert_int_equal(o.why, SIM_DISPATCH_GUARD);
    observe(d, 5, 5, 500);
    decide(d, 5, 2, 0, NULL, &o);
    observe(d, 6, 6, 500);
    decide(d, 6, 2, 0, NULL, &o);
    observe(d, 7, 7, 500);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.shadow_nuc - bk.paper_nuc, 150000000);
    assert_int_equal(bk.real_nuc, bk.shadow_nuc);
    sim_dispatch_free(d);
}

/* Spreading the grid charge: the same home with spread_intervals 2. Deciding interval 5
 * (06:00-12:00 of day 1) over 5, 6, 7, 8 at 0.10, 0.10, 0.40, 0.10, the plan buys 500 Wh for
 * the peak, and as late as it can: without spreading the home waits and buys all 500 in
 * interval 6 (1000 imported there). The peak is r = 2 intervals away (5 and 6 left), within
 * 2: charge at least ceil(500 / 2) = 250 now (750 imported), and in interval 6 the plan needs
 * only the other 250 (750 imported): the home's largest import falls from 1000 to 750 Wh at
 * the same cost. With spread_intervals 1 the peak is out of reach in interval 5: wait. */
static void spread_known(void **state)
{
    (void)state;
    sim_dispatch *d = home_spread(0, 2);
    sim_dispatch_books bk;
    sim_dispatch_decision o;
    observe(d, 0, 4, 500);
    decide(d, 4, 1, 0, NULL, &o);
    assert_int_equal(o.planned, 1);
    assert_int_equal(o.lo_wh, 250);
    assert_int_equal(o.hi_wh, 1000);
    assert_int_equal(o.setpoint_wh, 250);
    assert_int_equal(o.net_wh, 750);
    assert_int_equal(o.gain_uc, 150000);
    observe(d, 5, 5, 750);
    decide(d, 5, 1, 250, NULL, &o);
    assert_int_equal(o.planned, 1);
    assert_int_equal(o.lo_wh, 250);
    assert_int_equal(o.setpoint_wh, 250);
    assert_int_equal(o.net_wh, 750);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.spread, 1); /* the first decision's bound; the second is the plan's */
    /* at the peak itself nothing is spread (nothing dearer ahead within the horizon) */
    observe(d, 6, 6, 750);
    decide(d, 6, 1, 500, NULL, &o);
    assert_int_equal(o.setpoint_wh, -500);
    assert_int_equal(o.net_wh, 0);
    sim_dispatch_free(d);
    d = home_spread(0, 1);
    observe(d, 0, 4, 500);
    decide(d, 4, 1, 0, NULL, &o);
    assert_int_equal(o.planned, 0);
    assert_int_equal(o.why, SIM_DISPATCH_WAIT);
    sim_dispatch_free(d);
}

/* One interval of the guarded home: decide q (lead 1, stored_wh at its start), then observe it
 * with this load (no PV) and the meter's grid exchange. */
static void live(sim_dispatch *d, int64_t q, int64_t stored_wh, int64_t load_wh, int64_t grid_wh,
                 sim_dispatch_decision *o)
{
    int64_t imp[4], exp[4] = {0, 0, 0, 0};
    for (int j = 0; j < 4; j++)
        imp[j] = price_of(q + j);
    assert_int_equal(sim_dispatch_decide(d, (q - 1) * IV, 1, stored_wh, NULL, imp, exp, o), 0);
    sim_dispatch_observe(d, q * IV, 0, load_wh, grid_wh, price_of(q), 0);
}

/* The worst one-day loss. Day 1 the paper battery shows the plan (+0.15); days 2 and 3 the
 * home follows plans and gains 0.15 on day 2. On day 3 the home buys 1000 Wh at 0.10 in
 * interval 14 (1500 imported) and the peak's load does not come (interval 15: 0 Wh): it paid
 * 0.25 for the day against the shadow's 0.15 (500 Wh at 0.10 three times, nothing at the
 * peak) and holds 1000 Wh more, worth the terminal price, 0: a day's loss of 0.10, its lead
 * down to 0.05. The paper battery bought only 500 (its plan's bound) and lost 0.05 (0.30 ->
 * 0.25), still ahead by more than min_gain + its worst day (0.05 + 0.05). The home's worst day
 * is now 0.10, and with a lead of 0.05 it stops (the rule before this one, "not behind", would
 * have gone on and could have lost another 0.10, ending behind). Day 4 on self-consumption it
 * spends its 1000 Wh in intervals 16 and 17 (the persistence forecast saw no peak load) and
 * pays 0.05 + 0.20 = 0.25 against the shadow's 0.35: lead 0.15 >= 0.10, it plans again on
 * day 5. */
static void guard_worst_day(void **state)
{
    (void)state;
    sim_dispatch *d = home_opts(1, 0, 1);
    sim_dispatch_decision o;
    sim_dispatch_books bk;
    observe(d, 0, 3, 500);
    /* day 1: the home on self-consumption, the paper battery on its plan */
    for (int64_t q = 4; q <= 7; q++)
        live(d, q, 0, 500, 500, &o);
    /* day 2 follows plans: charge 500 in interval 10, spend it at the peak */
    live(d, 8, 0, 500, 500, &o);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.allowed, 1);
    assert_int_equal(bk.paper_gain_nuc, 150000000);
    assert_int_equal(bk.worst_day_loss_nuc, 0);
    live(d, 9, 0, 500, 500, &o);
    live(d, 10, 0, 500, 1000, &o);
    assert_int_equal(o.lo_wh, 500);
    live(d, 11, 500, 500, 0, &o);
    /* day 3 */
    live(d, 12, 0, 500, 500, &o);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.gain_nuc, 150000000);
    assert_int_equal(bk.paper_gain_nuc, 300000000);
    assert_int_equal(bk.worst_day_loss_nuc, 0);
    assert_int_equal(bk.allowed, 1);
    live(d, 13, 0, 500, 500, &o);
    live(d, 14, 0, 500, 1500, &o);
    assert_int_equal(o.planned, 1);
    live(d, 15, 1000, 0, 0, &o);
    /* day 4's check */
    live(d, 16, 1000, 500, 0, &o);
    assert_int_equal(o.why, SIM_DISPATCH_GUARD);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.gain_nuc, 50000000);
    assert_int_equal(bk.paper_gain_nuc, 250000000);
    assert_int_equal(bk.worst_day_loss_nuc, 100000000);
    assert_int_equal(bk.paper_worst_day_loss_nuc, 50000000);
    assert_int_equal(bk.allowed, 0);
    live(d, 17, 500, 500, 0, &o);
    live(d, 18, 0, 500, 500, &o);
    live(d, 19, 0, 500, 500, &o);
    /* day 5's check */
    live(d, 20, 0, 500, 500, &o);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.gain_nuc, 150000000);
    assert_int_equal(bk.worst_day_loss_nuc, 100000000);
    assert_int_equal(bk.allowed, 1);
    sim_dispatch_free(d);
}

/* One interval of the guarded home with its battery: decide q (lead 1), the battery does what
 * self-consumption would do with the 500 Wh load, clamped into the decision's bounds and its
 * window, and the meter sees the load plus the charge; returns the grid exchange. */
static int64_t play(sim_dispatch *d, int64_t q, int64_t *stored_wh, sim_dispatch_decision *o)
{
    int64_t imp[4], exp[4] = {0, 0, 0, 0};
    for (int j = 0; j < 4; j++)
        imp[j] = price_of(q + j);
    assert_int_equal(sim_dispatch_decide(d, (q - 1) * IV, 1, *stored_wh, NULL, imp, exp, o), 0);
    int64_t a = -(*stored_wh < 500 ? *stored_wh : 500); /* self-consumption */
    a = a < o->lo_wh ? o->lo_wh : a > o->hi_wh ? o->hi_wh : a;
    if (a > 1000 - *stored_wh)
        a = 1000 - *stored_wh;
    if (a < -*stored_wh)
        a = -*stored_wh;
    *stored_wh += a;
    sim_dispatch_observe(d, q * IV, 0, 500, 500 + a, price_of(q), 0);
    return 500 + a;
}

/* The guarded home's first day (behind_home_plans_again, day_stake): a day of history, then
 * day 1 on self-consumption while the paper battery plans, and day 2's check lets it plan. */
static void first_day(sim_dispatch *d, int64_t *stored, sim_dispatch_decision *o,
                      sim_dispatch_books *bk)
{
    observe(d, 0, 3, 500);
    for (int64_t q = 4; q <= 7; q++)
        assert_int_equal(play(d, q, stored, o), 500);
    assert_int_equal(play(d, 8, stored, o), 500);
    sim_dispatch_get_books(d, bk);
    assert_int_equal(bk->allowed, 1);
}

/* A home that loses on its first day of plans wins it back (issue 15). Day 1 its paper
 * battery shows the plan, +0.15 (500 Wh bought at 0.10 instead of 0.40). Day 2 the home follows
 * it with a lead of 0: it charges 500 Wh in interval 10 (1000 imported), and at the peak its
 * battery trips and the 500 Wh are lost: it imports the peak's 500 at 0.40. Its day: 0.05 +
 * 0.05 + 0.10 + 0.20 = 0.40 against the shadow's 0.35, so 0.05 behind with nothing stored more
 * than the shadow; the paper battery gained another 0.15 (0.30). The rule before ("not behind")
 * held it to self-consumption from then on, where the gain cannot grow: it ended every later
 * day 0.05 behind, however much its paper battery went on gaining. Now it may be behind by a
 * quarter of the paper's 0.30: days 3 and 4 it follows the plan again, +0.15 each, and ends
 * 0.25 ahead. */
static void behind_home_plans_again(void **state)
{
    (void)state;
    /* the floor alone: the day's stake would cut day 2's charge to 375 Wh (day_stake) */
    sim_dispatch *d = home_cfg(1, 0, 0, 1);
    sim_dispatch_decision o;
    sim_dispatch_books bk;
    int64_t stored = 0;
    first_day(d, &stored, &o, &bk);
    assert_int_equal(play(d, 9, &stored, &o), 500);
    assert_int_equal(play(d, 10, &stored, &o), 1000);
    assert_int_equal(stored, 500);
    /* the peak: the battery trips, its 500 Wh lost */
    assert_int_equal(sim_dispatch_decide(d, 10 * IV, 1, 500, NULL,
                                         (const int64_t[]){PEAK, CHEAP, CHEAP, CHEAP},
                                         (const int64_t[]){0, 0, 0, 0}, &o),
                     0);
    sim_dispatch_observe(d, 11 * IV, 0, 500, 500, PEAK, 0);
    stored = 0;
    /* day 3's check: 0.05 behind */
    play(d, 12, &stored, &o);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.gain_nuc, -50000000);
    assert_int_equal(bk.paper_gain_nuc, 300000000);
    assert_int_equal(bk.allowed, 1);
    for (int64_t q = 13; q <= 19; q++)
        play(d, q, &stored, &o);
    sim_dispatch_get_books(d, &bk);
    assert_int_equal(bk.shadow_nuc - bk.real_nuc, 250000000);
    sim_dispatch_free(d);
}

/* One interval of the guarded home as play, with this load instead of 500 Wh. */
static int64_t play_load(sim_dispatch *d, int64_t q, int64_t load_wh, int64_t *stored_wh,
                         sim_dispatch_decision *o)
{
    int64_t imp[4], exp[4] = {0, 0, 0, 0};
    for (int j = 0; j < 4; j++)
        imp[j] = price_of(q + j);
    assert_int_equal(sim_dispatch_decide(d, (q - 1) * IV, 1, *stored_wh, NULL, imp, exp, o), 0);
    int64_t a = -(*stored_wh < load_wh ? *stored_wh : load_wh); /* self-consumption */
    a = a < o->lo_wh ? o->lo_wh : a > o->hi_wh ? o->hi_wh : a;
    if (a > 1000 - *stored_wh)
        a = 1000 - *stored_wh;
    if (a < -*stored_wh)
        a = -*stored_wh;
    *stored_wh += a;
    sim_dispatch_observe(d, q * IV, 0, load_wh, load_wh + a, price_of(q), 0);
    return load_wh + a;
}

/* The day's stake (issue 15: a home with no lead of its own lost its first day of plans and
 * ended the run behind). Day 1 the paper battery shows the plan, +0.15, and the home runs
 * self-consumption. Day 2's check: the home's gain is 0, the floor a quarter of the paper's
 * 0.15 below it, so the day's stake is 0.0375. The plan for interval 10 buys 500 Wh at 0.10
 * (0.05) for the peak; the stake pays for 375 of them (375 x 0.10 = 0.0375): the charge bound is
 * 375, 875 imported, and the stake is spent. At the peak the load is 100 Wh instead of the 500
 * forecast: the home discharges 100 and keeps 275, which its own gain counts for nothing. Its
 * day: 0.05 + 0.05 + 0.0875 + 0 = 0.1875 against the shadow's 0.05 x 3 + 100 Wh at 0.40 = 0.19,
 * so 0.0025 ahead. Without the stake (guard_no_stake) it buys all 500 (1000 imported) and pays
 * 0.20: 0.01 behind, a first day of plans lost. */
static void day_stake(void **state)
{
    (void)state;
    for (int no_stake = 0; no_stake <= 1; no_stake++) {
        sim_dispatch *d = home_cfg(1, 0, 0, no_stake);
        sim_dispatch_decision o;
        sim_dispatch_books bk;
        int64_t stored = 0;
        first_day(d, &stored, &o, &bk);
        assert_int_equal(bk.gain_nuc, 0);
        assert_int_equal(bk.paper_gain_nuc, 150000000);
        assert_int_equal(play(d, 9, &stored, &o), 500);
        assert_int_equal(play(d, 10, &stored, &o), no_stake ? 1000 : 875);
        assert_int_equal(o.planned, 1);
        assert_int_equal(o.lo_wh, no_stake ? 500 : 375);
        sim_dispatch_get_books(d, &bk);
        assert_int_equal(bk.staked, no_stake ? 0 : 1);
        assert_int_equal(play_load(d, 11, 100, &stored, &o), 0);
        assert_int_equal(stored, no_stake ? 400 : 275);
        play(d, 12, &stored, &o); /* day 3's check */
        sim_dispatch_get_books(d, &bk);
        assert_int_equal(bk.gain_nuc, no_stake ? -10000000 : 2500000);
        sim_dispatch_free(d);
    }
}

/* Groups: 0 solar, 1 PV + battery, 2 battery without PV, 3 consumers (as test_sim_schedule). */
static void add_group(sim_scenario *sc, const char *name, uint32_t count, double kwp,
                      double bat_kwh)
{
    sim_group *g = &sc->groups[sc->n_groups++];
    sim_group_defaults(g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->count = count;
    g->pv_kwp = kwp;
    g->battery_kwh = bat_kwh;
    g->battery_kw = bat_kwh / 2;
    g->annual_kwh = 4000;
}

static void street(sim_scenario *sc, sim_battery_policy policy)
{
    sim_scenario_defaults(sc);
    snprintf(sc->name, sizeof sc->name, "test-dispatch");
    sc->start_month = 4;
    sc->days = MGX_DISPATCH_DAYS;
    sc->timing = MKT_EX_POST;
    sc->retail_peak_uc_per_kwh = 420000;
    sc->peak_start_h = 17;
    sc->peak_end_h = 21;
    add_group(sc, "solar", 2, 6.0, 0);
    add_group(sc, "pv_battery", 6, 5.0, 10.0);
    add_group(sc, "battery_only", 3, 0, 5.0);
    add_group(sc, "consumer", 2, 0, 0);
    for (size_t g = 0; g < sc->n_groups; g++)
        sc->groups[g].battery_policy = policy;
}

static sim_result *run(const sim_scenario *sc)
{
    sim_result *r = NULL;
    char err[256];
    if (sim_run(sc, NULL, 11, NULL, &r, err, sizeof err) != SIM_OK)
        fail_msg("%s", err);
    return r;
}

static void nobody_worse_off(void **state)
{
    (void)state;
    sim_scenario a, b;
    street(&a, SIM_BATTERY_SELF_CONSUMPTION);
    street(&b, SIM_BATTERY_SCHEDULE);
    sim_result *ra = run(&a), *rb = run(&b);
    size_t n;
    const sim_home_row *ha = sim_result_homes(ra, &n), *hb = sim_result_homes(rb, NULL);
    int64_t saved = 0;
    size_t planned = 0;
    for (size_t h = 0; h < n; h++) {
        if (a.groups[ha[h].group].battery_kwh == 0)
            continue;
        planned += hb[h].planned_intervals;
        saved += ha[h].base_cost_uc - hb[h].base_cost_uc;
        if (hb[h].base_cost_uc > ha[h].base_cost_uc)
            fail_msg("home %zu (%s): %lld uc on the schedule, %lld on self-consumption", h,
                     a.groups[ha[h].group].name, (long long)hb[h].base_cost_uc,
                     (long long)ha[h].base_cost_uc);
    }
    printf("schedule against self-consumption, grid only: %.2f saved, %zu intervals planned\n",
           (double)saved / 1e6, planned);
    assert_true(planned > 0);
    assert_true(saved > 0);
    sim_result_free(ra);
    sim_result_free(rb);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_decisions),
        cmocka_unit_test(guard_reckoning),
        cmocka_unit_test(guard_daily_check),
        cmocka_unit_test(paper_battery_at_lead_2),
        cmocka_unit_test(guard_worst_day),
        cmocka_unit_test(spread_known),
        cmocka_unit_test(behind_home_plans_again),
        cmocka_unit_test(day_stake),
        cmocka_unit_test(nobody_worse_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
