/*
 * The home battery scheduler: a backward dynamic programme over the stored energy in whole
 * steps (mgx/battery_plan.h says why that is good enough). Per interval, a table gives the cost
 * of every move (steps up or down) at that interval's prices; the value of each state is the
 * cheapest move plus the value of where it lands. Costs are exact integer nano-currency.
 */
#include "mgx/battery_plan.h"

#include <string.h>

/* Bounds that keep every sum of costs inside int64: 10 MWh per interval, 100 currency per
 * kWh, 2880 intervals: 10^7 x 10^8 x 2880 < 2.9 x 10^18. */
#define ENERGY_MAX 10000000
#define PRICE_MAX 100000000
#define INF INT64_MAX

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t abs64(int64_t a)
{
    return a < 0 ? -a : a;
}

static int64_t ceil_div(int64_t a, int64_t b) /* a >= 0, b > 0 */
{
    return (a + b - 1) / b;
}

/* The grid: states initial + j * step for j in [j_lo, j_hi]; moves in [-down, up] steps. */
typedef struct {
    int64_t step, j_lo;
    size_t states;
    int64_t up, down;
} grid;

static int64_t step_of(const sim_plan_battery *b)
{
    if (b->step_wh > 0)
        return b->step_wh;
    int64_t s = (b->max_wh - b->min_wh) / SIM_PLAN_DEFAULT_STATES;
    return s > 0 ? s : 1;
}

/* AC energy of a move of d steps: charging rounds the AC side up (it costs at least what it
 * stores), discharging rounds it down (it never delivers more than it drew). */
static int64_t ac_of(const sim_plan_battery *b, int64_t step, int64_t d)
{
    if (d > 0)
        return ceil_div(d * step * 1000, (int64_t)b->charge_eff_pm);
    return -(((-d) * step * (int64_t)b->discharge_eff_pm) / 1000);
}

static int valid_battery(const sim_plan_battery *b)
{
    return b && b->min_wh >= 0 && b->min_wh <= b->max_wh && b->max_wh <= ENERGY_MAX &&
           b->initial_wh >= b->min_wh && b->initial_wh <= b->max_wh && b->charge_max_wh >= 0 &&
           b->charge_max_wh <= ENERGY_MAX && b->discharge_max_wh >= 0 &&
           b->discharge_max_wh <= ENERGY_MAX && b->charge_eff_pm >= 1 &&
           b->charge_eff_pm <= 1000 && b->discharge_eff_pm >= 1 && b->discharge_eff_pm <= 1000 &&
           (b->import_cap_wh == SIM_PLAN_NO_CAP ||
            (b->import_cap_wh >= 0 && b->import_cap_wh <= ENERGY_MAX)) &&
           (b->export_cap_wh == SIM_PLAN_NO_CAP ||
            (b->export_cap_wh >= 0 && b->export_cap_wh <= ENERGY_MAX)) &&
           b->terminal_uc_per_kwh >= 0 && b->terminal_uc_per_kwh <= PRICE_MAX &&
           b->step_wh >= 0 && b->step_wh <= ENERGY_MAX;
}

static int make_grid(const sim_plan_battery *b, grid *g)
{
    if (!valid_battery(b))
        return SIM_PLAN_E_INVAL;
    g->step = step_of(b);
    g->j_lo = -((b->initial_wh - b->min_wh) / g->step);
    int64_t j_hi = (b->max_wh - b->initial_wh) / g->step;
    int64_t states = j_hi - g->j_lo + 1;
    if (states > SIM_PLAN_MAX_STATES)
        return SIM_PLAN_E_TOOBIG;
    g->states = (size_t)states;
    /* the largest moves the power limits allow (and the window could use) */
    g->up = 0;
    while (g->up < states - 1 && ac_of(b, g->step, g->up + 1) <= b->charge_max_wh)
        g->up++;
    g->down = 0;
    while (g->down < states - 1 && -ac_of(b, g->step, -(g->down + 1)) <= b->discharge_max_wh)
        g->down++;
    return SIM_PLAN_OK;
}

static int valid_intervals(const sim_plan_interval *iv, size_t n)
{
    if (!iv || n == 0 || n > SIM_PLAN_MAX_INTERVALS)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (abs64(iv[k].net_wh) > ENERGY_MAX || iv[k].import_uc_per_kwh < 0 ||
            iv[k].import_uc_per_kwh > PRICE_MAX || iv[k].export_uc_per_kwh < 0 ||
            iv[k].export_uc_per_kwh > PRICE_MAX)
            return 0;
    return 1;
}

int64_t sim_plan_interval_cost_nuc(const sim_plan_interval *iv, int64_t grid_wh)
{
    return grid_wh * (grid_wh > 0 ? iv->import_uc_per_kwh : iv->export_uc_per_kwh);
}

/* Whether the battery's AC flow ac keeps the caps (or at least does not make them worse). */
static int within_caps(const sim_plan_battery *b, int64_t net, int64_t ac)
{
    int64_t g = net + ac;
    if (b->import_cap_wh != SIM_PLAN_NO_CAP && g > max64(b->import_cap_wh, net))
        return 0;
    if (b->export_cap_wh != SIM_PLAN_NO_CAP && -g > max64(b->export_cap_wh, -net))
        return 0;
    return 1;
}

/* Workspace layout: value and throughput of the next and this interval (4 x states int64),
 * the move table of one interval (cost and AC, 2 x moves int64), then the choice of every state
 * in every interval (n x states int16). */
static size_t layout(const grid *g, size_t n)
{
    size_t moves = (size_t)(g->up + g->down + 1);
    return (4 * g->states + 2 * moves) * sizeof(int64_t) + n * g->states * sizeof(int16_t);
}

size_t sim_plan_workspace_size(const sim_plan_battery *b, size_t n)
{
    grid g;
    if (make_grid(b, &g) != SIM_PLAN_OK || n == 0 || n > SIM_PLAN_MAX_INTERVALS)
        return 0;
    return layout(&g, n);
}

int sim_plan_solve(const sim_plan_battery *b, const sim_plan_interval *iv, size_t n, void *work,
                   size_t work_len, sim_plan_step *out, int64_t *total_nuc)
{
    grid g;
    int rc = make_grid(b, &g);
    if (rc)
        return rc;
    if (!valid_intervals(iv, n) || !out || !work)
        return SIM_PLAN_E_INVAL;
    if (work_len < layout(&g, n))
        return SIM_PLAN_E_TOOBIG;
    size_t S = g.states, moves = (size_t)(g.up + g.down + 1);
    int64_t *v_next = work, *v_cur = v_next + S, *t_next = v_cur + S, *t_cur = t_next + S;
    int64_t *cost = t_cur + S, *ac = cost + moves; /* indexed by d + down */
    int16_t *choice = (int16_t *)(ac + moves);

    /* the end of the horizon: what is left is worth terminal_uc_per_kwh */
    for (size_t i = 0; i < S; i++) {
        int64_t stored = b->initial_wh + ((int64_t)i + g.j_lo) * g.step;
        v_next[i] = -stored * b->terminal_uc_per_kwh;
        t_next[i] = 0;
    }
    for (int64_t d = -g.down; d <= g.up; d++)
        ac[d + g.down] = ac_of(b, g.step, d);

    for (size_t k = n; k-- > 0;) {
        for (int64_t d = -g.down; d <= g.up; d++) {
            int64_t a = ac[d + g.down];
            cost[d + g.down] = within_caps(b, iv[k].net_wh, a)
                                   ? sim_plan_interval_cost_nuc(&iv[k], iv[k].net_wh + a)
                                   : INF;
        }
        int16_t *ch = choice + k * S;
        for (size_t i = 0; i < S; i++) {
            int64_t best = INF, best_t = INF, best_d = 0;
            int64_t d_lo = -min64(g.down, (int64_t)i), d_hi = min64(g.up, (int64_t)(S - 1 - i));
            for (int64_t d = d_lo; d <= d_hi; d++) {
                int64_t c = cost[d + g.down];
                if (c == INF)
                    continue;
                size_t to = (size_t)((int64_t)i + d);
                int64_t v = c + v_next[to], t = abs64(ac[d + g.down]) + t_next[to];
                if (v < best || (v == best && t < best_t)) {
                    best = v;
                    best_t = t;
                    best_d = d;
                }
            }
            /* d = 0 always keeps the caps, so every state has a move */
            v_cur[i] = best;
            t_cur[i] = best_t;
            ch[i] = (int16_t)best_d;
        }
        int64_t *sw = v_next;
        v_next = v_cur;
        v_cur = sw;
        sw = t_next;
        t_next = t_cur;
        t_cur = sw;
    }

    size_t i = (size_t)(-g.j_lo);
    if (total_nuc)
        *total_nuc = v_next[i];
    for (size_t k = 0; k < n; k++) {
        int64_t d = choice[k * S + i];
        int64_t a = ac[d + g.down];
        i = (size_t)((int64_t)i + d);
        out[k].battery_wh = a;
        out[k].stored_wh = b->initial_wh + ((int64_t)i + g.j_lo) * g.step;
        out[k].grid_wh = iv[k].net_wh + a;
        out[k].cost_nuc = sim_plan_interval_cost_nuc(&iv[k], out[k].grid_wh);
    }
    return SIM_PLAN_OK;
}

int sim_plan_self_consumption(const sim_plan_battery *b, const sim_plan_interval *iv, size_t n,
                              sim_plan_step *out, int64_t *total_nuc)
{
    if (!valid_battery(b) || !valid_intervals(iv, n))
        return SIM_PLAN_E_INVAL;
    int64_t s = b->initial_wh, total = 0;
    int64_t ec = b->charge_eff_pm, ed = b->discharge_eff_pm;
    for (size_t k = 0; k < n; k++) {
        int64_t net = iv[k].net_wh, a = 0;
        if (net > 0) {
            int64_t o = min64(min64(net, b->discharge_max_wh), (s - b->min_wh) * ed / 1000);
            s -= ceil_div(o * 1000, ed);
            a = -o;
        } else if (net < 0) {
            int64_t in = min64(min64(-net, b->charge_max_wh), (b->max_wh - s) * 1000 / ec);
            s += in * ec / 1000;
            a = in;
        }
        int64_t c = sim_plan_interval_cost_nuc(&iv[k], net + a);
        total += c;
        if (out)
            out[k] = (sim_plan_step){a, s, net + a, c};
    }
    if (total_nuc)
        *total_nuc = total - s * b->terminal_uc_per_kwh;
    return SIM_PLAN_OK;
}

void sim_plan_bounds(const sim_plan_interval *iv, const sim_plan_step *plan, size_t n,
                     int64_t power_wh, int64_t slack_wh, int64_t *lo_wh, int64_t *hi_wh)
{
    *lo_wh = -power_wh; /* self-consumption unless the plan has a price to act on */
    *hi_wh = power_wh;
    if (!iv || !plan || n == 0)
        return;
    int dearer_ahead = 0, cheaper_export_ahead = 0;
    for (size_t j = 1; j < n; j++) {
        dearer_ahead |= iv[j].import_uc_per_kwh > iv[0].import_uc_per_kwh;
        cheaper_export_ahead |= iv[j].export_uc_per_kwh < iv[0].export_uc_per_kwh;
    }
    int64_t a = plan[0].battery_wh;
    int64_t surplus = iv[0].net_wh < 0 ? -iv[0].net_wh : 0;
    int64_t deficit = iv[0].net_wh > 0 ? iv[0].net_wh : 0;
    /* A difference from self-consumption within slack_wh is the discretisation's rounding (the
     * plan moves stored energy in whole steps), not a decision worth buying grid energy for. */
    if (a > surplus + slack_wh && dearer_ahead)
        *lo_wh = a; /* charge from the grid for a dearer interval, whatever PV does */
    else if (a >= 0 && deficit > slack_wh && dearer_ahead)
        *lo_wh = 0; /* leave the load to the grid, keep what is stored for a dearer interval */
    else if (a < 0 && -a < deficit - slack_wh && dearer_ahead)
        *lo_wh = a; /* cover part of the load now, keep the rest for later */
    if (a < 0 && -a > deficit && cheaper_export_ahead)
        *lo_wh = *hi_wh = a; /* sell from the battery while export pays more than later */
}
