/*
 * One home battery's dispatch decision per interval (mgx/dispatch.h): forecast, plan, the rules
 * that decide whether the plan is followed, and the guard's shadow self-consumption battery.
 */
#include "mgx/dispatch.h"

#include "battery.h"

#include <stdlib.h>
#include <string.h>

#define FC_RING (SIM_DISPATCH_MAX_LEAD + 1)

struct sim_dispatch {
    sim_dispatch_config c;
    sim_plan_battery b;
    sim_fc *fc;
    int64_t len; /* interval, s */
    size_t per_day;
    /* the last day measured, interval q in slot q % per_day */
    int64_t *day_q, *day_pv, *day_load;
    int64_t last_q;
    uint64_t observed;
    int64_t guard_day;  /* the local day of the guard's last check */
    int checked;        /* a daily check has been made (books.gain_nuc etc. are its) */
    sim_battery shadow; /* the guard's self-consumption battery (its stored energy in books) */
    /* the paper battery, fed the same measurements, that always follows its own plan: the
     * bounds it was given for interval paper_q[i], by planned interval % FC_RING (with a lead
     * above 1 the next decision is made before the interval decided last is observed) */
    sim_battery paper;
    int64_t paper_q[FC_RING], paper_lo[FC_RING], paper_hi[FC_RING];
    /* forecast and planner buffers: lead - 1 + horizon intervals */
    int64_t *pv, *load;
    sim_plan_interval *in;
    sim_plan_step *out, *rest;
    void *work;
    size_t work_len;
    /* the net forecast for the planned intervals, to measure its error */
    int64_t fc_q[FC_RING], fc_net[FC_RING];
    sim_dispatch_books books;
    /* the day's stake (staking, stake_of): what the home may still pay today for grid energy its
     * plans put in the battery beyond the forecast surplus, in nuc */
    int64_t stake_nuc;
};

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t abs64(int64_t a)
{
    return a < 0 ? -a : a;
}

static int64_t ceil_div(int64_t a, int64_t b) /* a >= 0, b > 0 */
{
    return (a + b - 1) / b;
}

static int64_t floor_div(int64_t a, int64_t b) /* b > 0 */
{
    return a / b - (a % b < 0);
}

int64_t sim_dispatch_guard_gain_nuc(int64_t real_nuc, int64_t shadow_nuc, int64_t real_stored_wh,
                                    int64_t shadow_stored_wh, int64_t terminal_uc_per_kwh,
                                    int64_t dearest_uc_per_kwh, uint32_t charge_eff_pm)
{
    /* what self-consumption would have paid - what the home paid, + the stored difference */
    int64_t d = real_stored_wh - shadow_stored_wh, mark;
    if (d >= 0)
        mark = d * terminal_uc_per_kwh; /* Wh x uc/kWh = nuc, exact */
    else                                /* rounded away from the plan: the dearer side */
        mark = -ceil_div(-d * dearest_uc_per_kwh * 1000, (int64_t)charge_eff_pm);
    return shadow_nuc - real_nuc + mark;
}

void sim_dispatch_free(sim_dispatch *d)
{
    if (!d)
        return;
    sim_fc_free(d->fc);
    free(d->day_q);
    free(d->day_pv);
    free(d->day_load);
    free(d->pv);
    free(d->load);
    free(d->in);
    free(d->out);
    free(d->rest);
    free(d->work);
    free(d);
}

sim_dispatch *sim_dispatch_new(const sim_dispatch_config *c, const sim_plan_battery *b)
{
    if (!c || !b || c->horizon < 1 || c->horizon > SIM_PLAN_MAX_INTERVALS ||
        c->fc.interval_s <= 0 || 86400 % c->fc.interval_s != 0 || c->min_gain_uc < 0 ||
        c->guard_margin_uc < 0 ||
        (c->forecast != SIM_DISPATCH_FIT && c->forecast != SIM_DISPATCH_PERSISTENCE) ||
        sim_plan_workspace_size(b, c->horizon) == 0)
        return NULL;
    sim_dispatch *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->c = *c;
    d->b = *b;
    d->len = c->fc.interval_s;
    d->per_day = (size_t)(86400 / d->len);
    d->last_q = INT64_MIN;
    d->guard_day = INT64_MIN;
    d->books.allowed = 1;
    d->books.shadow_stored_wh = b->initial_wh;
    double eta =
        c->shadow_eta > 0 && c->shadow_eta <= 1 ? c->shadow_eta : b->charge_eff_pm / 1000.0;
    d->shadow = (sim_battery){b->min_wh, b->max_wh, b->initial_wh, b->charge_max_wh, eta, eta};
    d->paper = d->shadow;
    d->books.paper_stored_wh = b->initial_wh;
    size_t m = c->horizon + SIM_DISPATCH_MAX_LEAD;
    d->day_q = malloc(d->per_day * sizeof *d->day_q);
    d->day_pv = calloc(d->per_day, sizeof *d->day_pv);
    d->day_load = calloc(d->per_day, sizeof *d->day_load);
    d->pv = calloc(m, sizeof *d->pv);
    d->load = calloc(m, sizeof *d->load);
    d->in = calloc(c->horizon, sizeof *d->in);
    d->out = calloc(c->horizon, sizeof *d->out);
    d->rest = calloc(c->horizon, sizeof *d->rest);
    if (c->forecast == SIM_DISPATCH_FIT)
        d->fc = sim_fc_new(&c->fc);
    if (!d->day_q || !d->day_pv || !d->day_load || !d->pv || !d->load || !d->in || !d->out ||
        !d->rest || (c->forecast == SIM_DISPATCH_FIT && !d->fc)) {
        sim_dispatch_free(d);
        return NULL;
    }
    for (size_t i = 0; i < d->per_day; i++)
        d->day_q[i] = INT64_MIN;
    for (size_t i = 0; i < FC_RING; i++)
        d->fc_q[i] = d->paper_q[i] = INT64_MIN;
    return d;
}

/* The measured net of interval q a whole number of days back to the last observed one, as
 * day-ahead persistence forecasts q; found: 1. */
static int persisted(const sim_dispatch *d, int64_t q, int64_t *pv, int64_t *load)
{
    int64_t pd = (int64_t)d->per_day;
    int64_t back = q - d->last_q <= 0 ? 0 : (q - d->last_q + pd - 1) / pd;
    int64_t p = q - back * pd;
    if (p < 0)
        return 0;
    size_t s = (size_t)(p % pd);
    if (d->day_q[s] != p)
        return 0;
    *pv = d->day_pv[s];
    *load = d->day_load[s];
    return 1;
}

void sim_dispatch_observe(sim_dispatch *d, int64_t start_s, int64_t pv_wh, int64_t load_wh,
                          int64_t grid_wh, int64_t import_uc_per_kwh, int64_t export_uc_per_kwh)
{
    if (start_s < 0 || start_s % d->len != 0)
        return;
    int64_t q = start_s / d->len;
    if (d->last_q != INT64_MIN && q <= d->last_q)
        return;
    pv_wh = pv_wh > 0 ? pv_wh : 0;
    load_wh = load_wh > 0 ? load_wh : 0;
    /* the forecast's error, against what persistence said for the same interval */
    size_t r = (size_t)(q % FC_RING);
    int64_t ppv, pload;
    if (d->fc_q[r] == q && persisted(d, q, &ppv, &pload)) {
        d->books.fc_abs_err_wh += abs64(d->fc_net[r] - (load_wh - pv_wh));
        d->books.persist_abs_err_wh += abs64(pload - ppv - (load_wh - pv_wh));
        d->books.err_n++;
    }
    /* the guard's books: the home's bill, and the shadow battery's on self-consumption */
    sim_plan_interval iv = {load_wh - pv_wh, import_uc_per_kwh, export_uc_per_kwh};
    int64_t direct = min64(pv_wh, load_wh);
    sim_battery_flow bf = sim_battery_step(&d->shadow, pv_wh - direct, load_wh - direct, 1);
    d->books.shadow_nuc +=
        sim_plan_interval_cost_nuc(&iv, iv.net_wh + bf.charge_wh - bf.discharge_wh);
    d->books.shadow_stored_wh = d->shadow.stored_wh;
    d->books.real_nuc += sim_plan_interval_cost_nuc(&iv, grid_wh);
    bf = d->paper_q[r] == q ? sim_battery_step_bounded(&d->paper, pv_wh - direct,
                                                       load_wh - direct, d->paper_lo[r],
                                                       d->paper_hi[r], 1)
                            : sim_battery_step(&d->paper, pv_wh - direct, load_wh - direct, 1);
    d->books.paper_nuc +=
        sim_plan_interval_cost_nuc(&iv, iv.net_wh + bf.charge_wh - bf.discharge_wh);
    d->books.paper_stored_wh = d->paper.stored_wh;
    size_t s = (size_t)(q % (int64_t)d->per_day);
    d->day_q[s] = q;
    d->day_pv[s] = pv_wh;
    d->day_load[s] = load_wh;
    if (d->fc)
        sim_fc_observe(d->fc, start_s, pv_wh, load_wh);
    d->last_q = q;
    d->observed++;
}

void sim_dispatch_get_books(const sim_dispatch *d, sim_dispatch_books *out)
{
    *out = d->books;
}

/* The battery's AC energy a (> 0 charge) from stored s, within power and window, as the
 * planner counts it (battery_plan.c); returns the AC energy done, *s the stored after. */
static int64_t battery_do(const sim_plan_battery *b, int64_t *s, int64_t a)
{
    int64_t ec = b->charge_eff_pm, ed = b->discharge_eff_pm;
    if (a > 0) {
        int64_t in = min64(min64(a, b->charge_max_wh), (b->max_wh - *s) * 1000 / ec);
        if (in < 0)
            in = 0;
        *s += in * ec / 1000;
        return in;
    }
    if (a < 0) {
        int64_t o = min64(min64(-a, b->discharge_max_wh), (*s - b->min_wh) * ed / 1000);
        if (o < 0)
            o = 0;
        *s -= ceil_div(o * 1000, ed);
        return -o;
    }
    return 0;
}

static int ensure_work(sim_dispatch *d, const sim_plan_battery *b, size_t n)
{
    size_t need = sim_plan_workspace_size(b, n);
    if (need == 0)
        return -1;
    if (need > d->work_len) {
        void *w = realloc(d->work, need);
        if (!w)
            return -1;
        d->work = w;
        d->work_len = need;
    }
    return 0;
}

/* Spreading grid charging (sim_dispatch_config.spread_intervals). A plan makes the moves that
 * can wait as late as they can be (plan_verdict), so every home on one tariff buys its energy
 * for the peak in the last cheap intervals, at full power, all at once: the community's import
 * peaks there. Here, once a dearer interval is r <= spread_intervals intervals away, the energy
 * the plan buys from the grid before it (steps, from the planned interval: the plan's own, or
 * the plan that starts with self-consumption's action when the verdict was to wait) is spread
 * evenly over the r intervals left: the battery charges at least the forecast surplus plus
 * ceil(G / r) now. Re-planned every interval, what is left shrinks with what was charged, so
 * the rate stays about G / spread_intervals to the end. The cost: energy bought up to r - 1
 * intervals earlier than needed at the same price, a bet on the forecast only for PV that may
 * yet come (and then stored instead of bought). Returns 1 if it raised *lo (and *hi to it). */
static int spread_charge(const sim_dispatch *d, const sim_plan_battery *b, const sim_plan_step *st,
                         size_t first, int64_t *lo, int64_t *hi)
{
    size_t n = d->c.horizon, r = 1;
    if (d->c.spread_intervals == 0)
        return 0;
    while (r < n && d->in[r].import_uc_per_kwh <= d->in[0].import_uc_per_kwh)
        r++;
    if (r >= n || r > d->c.spread_intervals)
        return 0; /* no dearer interval ahead, or not yet within reach */
    int64_t g = 0; /* the grid's part of each planned charge before it */
    for (size_t j = first; j < r; j++) {
        int64_t c = st[j - first].battery_wh, imp = st[j - first].grid_wh;
        if (c > 0 && imp > 0)
            g += min64(c, imp);
    }
    if (g <= 0)
        return 0;
    int64_t surplus = d->in[0].net_wh < 0 ? -d->in[0].net_wh : 0;
    int64_t want = min64(b->charge_max_wh, surplus + ceil_div(g, (int64_t)r));
    if (want <= *lo)
        return 0;
    *lo = want;
    if (*hi < want)
        *hi = want;
    return 1;
}

/* The plan's verdict for a battery with b->initial_wh stored at the planned interval's start,
 * over d->in: SIM_DISPATCH_PLAN with its bounds in *lo, *hi (else they are left alone), or
 * why self-consumption; *gain_uc the plan's expected gain; *spread 1 when spread_charge raised
 * the charge bound. */
static sim_dispatch_why plan_verdict(sim_dispatch *d, const sim_plan_battery *b, int64_t *lo,
                                     int64_t *hi, int64_t *gain_uc, int *spread)
{
    *spread = 0;
    size_t n = d->c.horizon;
    int64_t plan_nuc, sc_nuc;
    if (ensure_work(d, b, n) ||
        sim_plan_solve(b, d->in, n, d->work, d->work_len, d->out, &plan_nuc) ||
        sim_plan_self_consumption(b, d->in, n, NULL, &sc_nuc))
        return SIM_DISPATCH_REFUSED;
    *gain_uc = (sc_nuc - plan_nuc) / 1000;
    if (sc_nuc - plan_nuc < d->c.min_gain_uc * 1000)
        return SIM_DISPATCH_NO_GAIN;
    /* Deviate from self-consumption now only if that strictly pays on the forecast: the best
     * plan that starts with self-consumption's action costs as much when the plan's first move
     * only ties (hold now and import now, or discharge now and import later at the same price;
     * grid-charge now or in a later interval at the same price). A tie taken against
     * self-consumption is a bet on the forecast that reality can only lose, so moves that can
     * wait are made as late as they can be, when the forecast is nearest. */
    if (n > 1) {
        sim_plan_step first;
        int64_t rest_nuc;
        sim_plan_battery rest = *b;
        if (sim_plan_self_consumption(b, d->in, 1, &first, NULL) == SIM_PLAN_OK) {
            rest.initial_wh = first.stored_wh;
            if (ensure_work(d, &rest, n - 1) == 0 &&
                sim_plan_solve(&rest, d->in + 1, n - 1, d->work, d->work_len, d->rest, &rest_nuc) ==
                    SIM_PLAN_OK &&
                first.cost_nuc + rest_nuc <= plan_nuc) {
                int64_t l = -b->discharge_max_wh, h = b->charge_max_wh;
                if (!spread_charge(d, b, d->rest, 1, &l, &h))
                    return SIM_DISPATCH_WAIT;
                *spread = 1;
                *lo = l;
                *hi = h;
                return SIM_DISPATCH_PLAN;
            }
        }
    }
    /* one discretisation step of stored energy, on the AC side: a first step within it of
     * self-consumption is rounding, not a decision */
    int64_t step = b->step_wh > 0 ? b->step_wh : (b->max_wh - b->min_wh) / SIM_PLAN_DEFAULT_STATES;
    int64_t slack = (step < 1 ? 1 : step) * 1000 / b->charge_eff_pm + 1;
    int64_t power = b->charge_max_wh > b->discharge_max_wh ? b->charge_max_wh : b->discharge_max_wh;
    int64_t l, h;
    sim_plan_bounds(d->in, d->out, n, power, slack, &l, &h);
    *spread = spread_charge(d, b, d->out, 0, &l, &h);
    if (l == -power && h == power)
        return SIM_DISPATCH_SAME;
    *lo = l;
    *hi = h;
    return SIM_DISPATCH_PLAN;
}

static int64_t dearest_of(const sim_dispatch *d, const int64_t *import_uc_per_kwh)
{
    int64_t dearest = 0;
    for (size_t j = 0; j < d->c.horizon; j++)
        dearest = import_uc_per_kwh[j] > dearest ? import_uc_per_kwh[j] : dearest;
    return dearest;
}

/* The real home's gain over the shadow (stored_wh: the real battery now): what the home would
 * be ahead if it ran self-consumption from here on, at the worst. The energy it holds beyond
 * the shadow counts for nothing: the run may end before it is used, and the bill then counts
 * it as energy bought and never paid back (marked at the terminal price, as before, a home that
 * ended the day holding grid energy it had bought for a peak that did not come looked ahead
 * when its bill was behind). The energy it lacks counts at the dearest import over charge
 * losses. On self-consumption this never falls (both batteries see the same PV and load), and
 * the bill's own gain is never below it. */
static int64_t running_gain_nuc(const sim_dispatch *d, int64_t stored_wh, int64_t dearest)
{
    const sim_dispatch_books *k = &d->books;
    return sim_dispatch_guard_gain_nuc(k->real_nuc, k->shadow_nuc, stored_wh, k->shadow_stored_wh,
                                       0, dearest, d->b.charge_eff_pm);
}

/* How far behind its shadow the home may be and still plan: guard_margin_uc, and a quarter of
 * what its paper battery has shown plans to gain. Before, a home had to be not behind at all,
 * and one that lost on its first day of plans (when its lead is 0) stayed on self-consumption
 * for good, where its gain cannot grow, however much its paper battery went on gaining: it
 * ended the run behind by that first day (all 5 of the 150 district-1000-tou homes that ended
 * behind, by 0.0012 to 0.136). Now it plans again once its paper battery has shown four times
 * its loss, and wins it back (plans pay for it on the evidence; nothing known in advance can
 * rule out a day that loses, so this bounds where a home may start a day of plans, not what the
 * day then loses). */
static int64_t guard_floor_nuc(const sim_dispatch *d)
{
    int64_t paper = d->books.paper_gain_nuc > 0 ? d->books.paper_gain_nuc : 0;
    return -d->c.guard_margin_uc * 1000 - paper / 4;
}

/* Whether the day's stake limits the home's grid charging: the default guard only (with
 * guard_worst_day the home's own worst day bounds where it may start instead). */
static int staking(const sim_dispatch *d)
{
    return !d->c.guard_off && !d->c.guard_worst_day && !d->c.guard_no_stake;
}

/* The day's stake. Energy a plan buys from the grid for the battery, beyond the surplus the
 * forecast expects, is the plan's bet: if the dearer interval it was bought for does not need
 * it (a smaller load at the peak than forecast, or PV that then fills the battery anyway and is
 * exported), it may never earn its price back before the run ends, and the home's own gain
 * counts energy held beyond the shadow for nothing. At worst, then, it costs what was paid for
 * it. So each day the home may pay for such energy at most how far its gain is above the
 * guard's floor (its lead, and a quarter of what its paper battery has shown): grid charging
 * alone cannot take it below the floor that day, and a home with no lead of its own starts on
 * a quarter of its paper battery's evidence instead of its whole battery. The plans' other
 * moves (hold the home's own energy for the peak, cover part of a load, sell) are not limited. */
static int64_t stake_of(const sim_dispatch *d)
{
    int64_t room = d->books.gain_nuc - guard_floor_nuc(d);
    return room > 0 ? room : 0;
}

/* Clamps a plan's grid charge for interval import price import_uc into what is left of the day's
 * stake, and spends it: *lo above the forecast surplus (net0 < 0) is energy bought from the grid
 * for the battery. Returns 1 if it lowered *lo. */
static int stake_clamp(sim_dispatch *d, int64_t net0, int64_t import_uc, int64_t *lo)
{
    int64_t surplus = net0 < 0 ? -net0 : 0, grid = *lo - surplus;
    if (grid <= 0 || import_uc <= 0)
        return 0;
    int64_t left = d->stake_nuc / import_uc; /* Wh the stake still pays for */
    int cut = grid > left;
    if (cut)
        grid = left;
    *lo = surplus + grid;
    d->stake_nuc -= grid * import_uc; /* Wh x uc/kWh = nuc */
    return cut;
}

/* The guard's daily check: the real home's gain (its running gain) and the paper battery's,
 * each against the shadow (stored_wh: the real battery now). */
static void daily_check(sim_dispatch *d, int64_t stored_wh, const int64_t *import_uc_per_kwh)
{
    int64_t dearest = dearest_of(d, import_uc_per_kwh);
    sim_dispatch_books *k = &d->books;
    int64_t prev_gain = k->gain_nuc, prev_paper = k->paper_gain_nuc;
    k->gain_nuc = running_gain_nuc(d, stored_wh, dearest);
    k->paper_gain_nuc = sim_dispatch_guard_gain_nuc(k->paper_nuc, k->shadow_nuc, k->paper_stored_wh,
                                                    k->shadow_stored_wh, d->b.terminal_uc_per_kwh,
                                                    dearest, d->b.charge_eff_pm);
    /* the worst one-day losses seen: the largest fall of each gain since the last check */
    if (d->checked) {
        int64_t real_loss = prev_gain - k->gain_nuc, paper_loss = prev_paper - k->paper_gain_nuc;
        if (real_loss > k->worst_day_loss_nuc)
            k->worst_day_loss_nuc = real_loss;
        if (paper_loss > k->paper_worst_day_loss_nuc)
            k->paper_worst_day_loss_nuc = paper_loss;
    }
    d->checked = 1;
    /* The paper battery must be ahead by what a plan must be expected to gain (and by
     * something when that is 0: a paper gain of a few Wh is noise, not a sign that plans pay),
     * plus its own worst day: plans have paid for this home even if that day came again.
     *
     * With guard_worst_day, why the home's own condition bounds its loss. The home plans on a day only with a lead
     * L >= W - margin, W its own worst one-day loss so far; the day then ends with
     * L - loss >= -margin - (loss - W), so a home can fall behind its shadow by more than the
     * margin only on a day that loses more than any of its days before, and only by the
     * excess, and once behind it no longer plans (its lead is below 0 <= the new W). On
     * self-consumption the gain does not fall (both batteries see the same PV and load; the one
     * that holds more saves imports or sells more, and energy lacking is marked at the dearest
     * import over losses, at least what the shortfall later costs), so the loss stays where
     * that record day left it. Which day will set a record cannot be known in advance: the
     * first day of plans, while W is still 0, is the risk, and that is why a home starts only
     * once the paper battery, which takes every day's risk, has a lead beyond its own worst
     * day. (W counts the home's own days only: the paper battery's worst day, counted against
     * a home that has no lead yet, kept two of the three measured homes from ever starting:
     * 114 saved in their year instead of 344.) */
    int64_t shown = d->c.min_gain_uc > 0 ? d->c.min_gain_uc * 1000 : 1;
    if (d->c.guard_worst_day)
        k->allowed = k->gain_nuc >= k->worst_day_loss_nuc - d->c.guard_margin_uc * 1000 &&
                     k->paper_gain_nuc >= shown + k->paper_worst_day_loss_nuc;
    else
        k->allowed = k->gain_nuc >= guard_floor_nuc(d) && k->paper_gain_nuc >= shown;
    d->stake_nuc = stake_of(d);
}

int sim_dispatch_decide(sim_dispatch *d, int64_t last_s, unsigned lead, int64_t stored_wh,
                        const int64_t *gap_wh, const int64_t *import_uc_per_kwh,
                        const int64_t *export_uc_per_kwh, sim_dispatch_decision *out)
{
    sim_plan_battery b = d->b;
    memset(out, 0, sizeof *out);
    out->lo_wh = -b.discharge_max_wh;
    out->hi_wh = b.charge_max_wh;
    out->why = SIM_DISPATCH_NO_HISTORY;
    if (lead < 1 || lead > SIM_DISPATCH_MAX_LEAD || last_s % d->len != 0 ||
        d->last_q == INT64_MIN || last_s / d->len != d->last_q)
        return -1;
    size_t n = d->c.horizon, gap = lead - 1, m = gap + n;
    int64_t q0 = d->last_q + 1; /* the first interval forecast */
    /* the forecast of the gap and the horizon */
    if (d->fc) {
        if (sim_fc_predict(d->fc, q0 * d->len, m, d->pv, d->load))
            return -1;
    } else {
        for (size_t i = 0; i < m; i++)
            if (!persisted(d, q0 + (int64_t)i, &d->pv[i], &d->load[i]))
                d->pv[i] = d->load[i] = 0;
    }
    /* the stored energy at the planned interval's start, the real battery's and the paper
     * battery's (which has no commitments: self-consumption on the forecast) */
    int64_t s = stored_wh < b.min_wh ? b.min_wh : stored_wh > b.max_wh ? b.max_wh : stored_wh;
    int64_t ps = d->books.paper_stored_wh;
    for (size_t i = 0; i < gap; i++) {
        battery_do(&b, &s, gap_wh ? gap_wh[i] : d->pv[i] - d->load[i]);
        battery_do(&b, &ps, d->pv[i] - d->load[i]);
    }
    b.initial_wh = s;
    int64_t net0 = d->load[gap] - d->pv[gap];
    out->forecast_net_wh = net0;
    out->stored_wh = s;
    int64_t planned_q = q0 + (int64_t)gap;
    d->fc_q[planned_q % FC_RING] = planned_q;
    d->fc_net[planned_q % FC_RING] = net0;

    int64_t lo = out->lo_wh, hi = out->hi_wh;
    int varies = 0, spread = 0;
    for (size_t j = 0; j < n; j++) {
        d->in[j] = (sim_plan_interval){d->load[gap + j] - d->pv[gap + j], import_uc_per_kwh[j],
                                       export_uc_per_kwh[j]};
        varies |= import_uc_per_kwh[j] != import_uc_per_kwh[0] ||
                  export_uc_per_kwh[j] != export_uc_per_kwh[0];
    }
    if (d->observed < d->per_day)
        goto out; /* no day of history yet */
    /* with the same prices all horizon long the plan's bounds are self-consumption's
     * (sim_plan_bounds): no need to solve */
    out->why = SIM_DISPATCH_FLAT;
    if (!varies)
        goto out;
    if (!d->c.guard_off) {
        /* at the first decision of a local day, the daily check */
        int64_t day =
            floor_div((d->last_q + 1) * d->len + (int64_t)d->c.utc_offset_min * 60, 86400);
        if (day != d->guard_day) {
            d->guard_day = day;
            daily_check(d, stored_wh, import_uc_per_kwh);
        }
        /* the paper battery always follows its plan */
        sim_plan_battery pb = b;
        int64_t plo = -b.discharge_max_wh, phi = b.charge_max_wh, pgain = 0;
        pb.initial_wh = ps;
        int pspread;
        sim_dispatch_why pwhy = plan_verdict(d, &pb, &plo, &phi, &pgain, &pspread);
        size_t pr = (size_t)(planned_q % FC_RING);
        d->paper_q[pr] = planned_q;
        d->paper_lo[pr] = plo;
        d->paper_hi[pr] = phi;
        if (!d->books.allowed) {
            out->why = SIM_DISPATCH_GUARD;
            out->gain_uc = pgain;
            d->books.guarded++;
            goto out;
        }
        if (ps == s) { /* the same battery: the same verdict */
            out->why = pwhy;
            out->gain_uc = pgain;
            lo = plo;
            hi = phi;
            spread = pspread;
            goto verdict;
        }
    }
    out->why = plan_verdict(d, &b, &lo, &hi, &out->gain_uc, &spread);
verdict:
    if (out->why == SIM_DISPATCH_PLAN && staking(d)) {
        int64_t power = b.charge_max_wh > b.discharge_max_wh ? b.charge_max_wh : b.discharge_max_wh;
        d->books.staked += (uint64_t)stake_clamp(d, net0, import_uc_per_kwh[0], &lo);
        if (lo <= -power && hi >= power)
            out->why = SIM_DISPATCH_SAME; /* nothing left of the plan's bounds */
    }
    if (out->why == SIM_DISPATCH_PLAN) {
        out->planned = 1;
        d->books.spread += (uint64_t)spread;
        out->lo_wh = lo;
        out->hi_wh = hi;
        d->books.planned++;
    }
out:;
    /* what the battery does in the planned interval if the forecast holds: self-consumption
     * on the forecast net, clamped into the bounds */
    int64_t want = -net0;
    want = want < out->lo_wh ? out->lo_wh : want > out->hi_wh ? out->hi_wh : want;
    int64_t after = s;
    out->setpoint_wh = battery_do(&b, &after, want);
    out->net_wh = net0 + out->setpoint_wh;
    return 0;
}
