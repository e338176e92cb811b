/*
 * The home agent daemon (see agent.h). The order of things per interval:
 *
 *   meter state -> agent_meter (interval net energy) -> when interval k is complete, the first
 *   interval n still open for orders gets an order for k's net energy (persistence, like the
 *   simulator), priced by the strategy -> signed -> stored in the outbox -> published ->
 *   resent every resend_s (the same bytes, so the same nonce) -> the receipt settles it.
 *
 * A restart finds unanswered orders in the outbox and resends them; an interval that already
 * has an order never gets a second one.
 */
#define _POSIX_C_SOURCE 200809L
#include "agent/agent.h"

#include "agent/agent_battery.h"
#include "agent/agent_fcerr.h"
#include "agent/agent_meter.h"
#include "agent/agent_pref.h"
#include "agent/agent_store.h"
#include "bus/bus.h"
#include "common/metrics.h"
#include "common/metrics_server.h"
#include "common/service.h"
#include "common/log.h"
#include "orders/keys.h"
#include "orders/order_msg.h"
#include "orders/pref_msg.h"
#include "bus/payload.h"

#include "mgx/strategy.h"
#include "common/wall_clock.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* At most this many pending orders are handled per pass (more wait for the next one). */
#define AGENT_MAX_PENDING 64

struct agent {
    agc_config cfg;
    ctl_log log; /* "agent"; debug lines with MGX_AGENT_DEBUG set; the bus writes through it */
    ctl_clock clock;
    ctl_interval_rules rules;
    ctl_secret_key *key;
    ags_store *store;
    bus_client *bus;
    agm_state meter;
    agm_state pv_meter, battery_meter; /* the fitted forecast's ([agent] pv_meter_id, ...) */
    int64_t fit_midnight; /* the interval the fitted forecast is to start measuring at */
    sim_trader trader;
    uint64_t seed;
    int64_t last_forecast; /* the last complete interval used for a forecast */
    int64_t last_observed; /* the last interval whose result ZIP learnt from */
    bool resend_all;       /* after a (re)connect: resend every pending order now */
    bool fatal;
    char t_pv_state[BUS_TOPIC_MAX], t_battery_state[BUS_TOPIC_MAX];
    char t_state[BUS_TOPIC_MAX], t_order[BUS_TOPIC_MAX], t_receipt[BUS_TOPIC_MAX],
        t_trades[BUS_TOPIC_MAX], t_results[BUS_TOPIC_MAX], t_pref[BUS_TOPIC_MAX];
    /* ex_post: the standing preference, resent until receipted. Kept in memory only: after a
     * restart the agent states its preference again (the newest one counts). */
    ctl_pref_msg pref;
    char pref_json[CTL_PREF_JSON_MAX];
    enum { PREF_NONE, PREF_SENDING, PREF_ACCEPTED } pref_state;
    int64_t pref_sent_ms;
    int64_t pref_checked; /* the last interval the strategy was asked for */
    agb *battery;             /* [battery] dispatch, NULL without */
    int64_t last_dispatched;  /* the last complete interval the battery was planned from */
    agf_state fc;             /* forecasts made and their errors once metered */
    int64_t last_scored;      /* the last complete interval checked against its forecast */
    bool have_reading;        /* a good reading arrived since the start */
    int64_t last_reading_ms;  /* market time it arrived (the silent-meter fallback) */
};

static int64_t market_ms(const agent *a)
{
    return ctl_clock_sim_ms(&a->clock, ctl_wall_ms());
}

static int64_t floor_s(int64_t ms)
{
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

/* splitmix64, to give every interval its own generator stream from the stored seed */
static uint64_t mix(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

static uint64_t stream(const agent *a, int64_t interval_id, uint64_t purpose)
{
    return mix(a->seed ^ mix((uint64_t)interval_id * 2u + purpose));
}

/* ---- sending ------------------------------------------------------------------------------ */

typedef struct {
    agent *a;
    int64_t interval_id;
} sent_ctx;

static void on_sent(void *arg, int status)
{
    sent_ctx *c = arg;
    if (status == BUS_E_DENIED)
        ctl_logf(&c->a->log, CTL_LOG_ERROR,
                 "the broker refused the order for interval %lld: not authorized (check [bus] "
                 "username and the broker's ACL)",
                 (long long)c->interval_id);
    else if (status != BUS_OK)
        ctl_logf(&c->a->log, CTL_LOG_WARN,
                 "order for interval %lld not acknowledged (%s); it will be resent",
                 (long long)c->interval_id, bus_strerror(status));
    free(c);
}

static void publish_order(agent *a, const ags_order *o, int64_t now_real)
{
    sent_ctx *c = malloc(sizeof *c);
    if (!c)
        return;
    *c = (sent_ctx){a, o->interval_id};
    int rc = bus_publish(a->bus, a->t_order, o->json, strlen(o->json), 1, false, on_sent, c);
    if (rc != BUS_OK) {
        free(c);
        if (rc != BUS_E_NOCONN)
            ctl_logf(&a->log, CTL_LOG_WARN, "cannot publish the order for interval %lld: %s",
                     (long long)o->interval_id, bus_strerror(rc));
        return;
    }
    if (o->sends > 0)
        ctl_logf(&a->log, CTL_LOG_INFO,
                 "interval %lld: no receipt yet, resending the same order (nonce %s, send %d)",
                 (long long)o->interval_id, o->nonce_hex, o->sends + 1);
    if (ags_order_sent(a->store, o->interval_id, now_real)) {
        ctl_logf(&a->log, CTL_LOG_ERROR, "outbox: %s", ags_errmsg(a->store));
        a->fatal = true;
    }
}

typedef struct {
    ags_order o;
    char json[CTL_ORDER_JSON_MAX];
} pending_copy;

typedef struct {
    pending_copy *items;
    size_t n;
} pending_list;

static int collect(void *ctx, const ags_order *o)
{
    pending_list *l = ctx;
    if (l->n == AGENT_MAX_PENDING)
        return 1;
    pending_copy *p = &l->items[l->n];
    p->o = *o;
    snprintf(p->json, sizeof p->json, "%s", o->json);
    p->o.json = p->json;
    l->n++;
    return 0;
}

/* Resends what is due and gives up on orders long past their gate. */
static void resend_due(agent *a, int64_t now_real, int64_t now_market)
{
    static pending_copy items[AGENT_MAX_PENDING];
    pending_list l = {items, 0};
    if (ags_pending(a->store, collect, &l)) {
        ctl_logf(&a->log, CTL_LOG_ERROR, "outbox: %s", ags_errmsg(a->store));
        a->fatal = true;
        return;
    }
    bool connected = bus_connected(a->bus);
    for (size_t i = 0; i < l.n && !a->fatal; i++) {
        ags_order *o = &items[i].o;
        if (floor_s(now_market) > o->expiry_s + a->cfg.give_up_s) {
            ctl_logf(&a->log, CTL_LOG_WARN,
                     "interval %lld: no receipt for order %s after %d sends; giving up",
                     (long long)o->interval_id, o->nonce_hex, o->sends);
            if (ags_order_give_up(a->store, o->interval_id))
                a->fatal = true;
            continue;
        }
        bool due = o->sends == 0 || a->resend_all ||
                   now_real - o->last_sent_ms >= a->cfg.resend_s * 1000;
        if (connected && due)
            publish_order(a, o, now_real);
    }
    if (connected)
        a->resend_all = false;
}

/* ---- forming an order ---------------------------------------------------------------------- */

static int build_order(agent *a, int64_t n, mkt_side side, const mkt_step *step,
                       int64_t now_market, ctl_order_msg *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->community, sizeof m->community, "%s", a->cfg.bus.community);
    snprintf(m->participant, sizeof m->participant, "%s", a->cfg.participant);
    m->interval_id = n;
    m->interval_s = (uint32_t)a->cfg.interval_s;
    m->created_ms = now_market;
    m->expiry_s = ctl_interval_gate(n, &a->rules);
    randombytes_buf(m->nonce, sizeof m->nonce);
    m->side = side;
    m->n_steps = 1;
    m->steps[0] = *step;
    char why[CTL_DETAIL_MAX];
    if (ctl_order_validate(m, why, sizeof why) != CTL_R_OK) {
        ctl_logf(&a->log, CTL_LOG_ERROR, "interval %lld: cannot form a valid order: %s",
                 (long long)n, why);
        return -1;
    }
    return ctl_order_sign(m, ctl_key_secret(a->key)) == CTL_R_OK ? 0 : -1;
}

static void order_for(agent *a, int64_t n, int64_t k, int64_t net_wh, int64_t now_market)
{
    /* with a battery the order is what the home will exchange after the battery's planned flow:
     * what it sells is what it (and its battery) will deliver */
    int64_t grid_import = 0, battery_wh = 0;
    bool planned = a->battery && agb_expected_net(a->battery, k, n, &grid_import, &battery_wh);
    if (planned)
        net_wh = -grid_import;
    bool exists = false;
    if (ags_order_exists(a->store, n, &exists)) {
        a->fatal = true;
        return;
    }
    if (exists)
        return; /* formed earlier (or before a restart): its forecast is the one that counts */
    agf_record(&a->fc, n, net_wh);
    mkt_side side;
    mkt_step step;
    int rc = sim_trader_order(&a->trader, net_wh, &a->cfg.tariffs, stream(a, n, 0), &side, &step);
    if (rc < 0) {
        ctl_logf(&a->log, CTL_LOG_WARN, "interval %lld: no order: %s", (long long)n,
                 sim_strategy_strerror(rc));
        return;
    }
    if (rc == 0) {
        ctl_logf(&a->log, CTL_LOG_INFO,
                 "interval %lld: interval %lld netted 0 Wh, nothing to trade", (long long)n,
                 (long long)k);
        return;
    }
    ctl_order_msg m;
    char json[CTL_ORDER_JSON_MAX];
    size_t len = 0;
    if (build_order(a, n, side, &step, now_market, &m) ||
        ctl_order_to_json(&m, json, sizeof json, &len) != CTL_R_OK) {
        ctl_logf(&a->log, CTL_LOG_ERROR, "interval %lld: signing or encoding the order failed",
                 (long long)n);
        return;
    }
    ags_order o = {.interval_id = n, .json = json, .side = (int)side, .energy_wh = step.energy_wh,
                   .price_uc_per_kwh = step.price_uc_per_kwh, .created_ms = m.created_ms,
                   .expiry_s = m.expiry_s};
    ctl_nonce_hex(m.nonce, o.nonce_hex);
    sodium_memzero(&m, sizeof m);
    if ((rc = ags_order_insert(a->store, &o)) != AGS_OK) {
        if (rc != AGS_E_EXISTS) {
            ctl_logf(&a->log, CTL_LOG_ERROR, "outbox: %s", ags_errmsg(a->store));
            a->fatal = true;
        }
        return;
    }
    char how[96] = "";
    if (planned)
        snprintf(how, sizeof how, " after the battery's planned %lld Wh", (long long)battery_wh);
    ctl_logf(&a->log, CTL_LOG_INFO,
             "interval %lld: forecast %lld Wh (interval %lld)%s; order to %s %lld Wh at %lld "
             "uc/kWh, nonce %s, strategy %s",
             (long long)n, (long long)net_wh, (long long)k, how, side == MKT_SELL ? "sell" : "buy",
             (long long)step.energy_wh, (long long)step.price_uc_per_kwh, o.nonce_hex,
             sim_strategy_name(a->cfg.strategy.kind));
    if (bus_connected(a->bus))
        publish_order(a, &o, ctl_wall_ms());
}

/* After each new complete interval k: one order, for k + forecast_lag or (no lag given) the
 * first interval still open. */
static void maybe_order(agent *a, int64_t now_market)
{
    int64_t k, net;
    if (!agm_last_complete(&a->meter, &k, &net) || k <= a->last_forecast)
        return;
    a->last_forecast = k;
    int64_t now_s = floor_s(now_market);
    int64_t first_open = ctl_interval_first_open(now_s, &a->rules);
    if (a->cfg.forecast_lag > 0) {
        /* The order is for k + lag, fixed by the data rather than by when the last reading
         * arrived, so a late reading cannot move it to another interval, and it has lag - 1
         * whole intervals less the gate to reach the controller. A forecast for an interval
         * whose gate has passed is not used: the next complete interval orders the next. */
        int64_t n = k + a->cfg.forecast_lag;
        if (n < first_open) {
            ctl_logf(&a->log, CTL_LOG_WARN,
                     "interval %lld: its gate passed before interval %lld was complete "
                     "(forecast_lag %lld): no order for it",
                     (long long)n, (long long)k, (long long)a->cfg.forecast_lag);
            return;
        }
        order_for(a, n, k, net, now_market);
        return;
    }
    int64_t current = ctl_interval_id(now_s, a->cfg.interval_s);
    if (k < current - 1) {
        ctl_logf(&a->log, CTL_LOG_INFO,
                 "interval %lld is complete but old (now in %lld): no forecast from it",
                 (long long)k, (long long)current);
        return;
    }
    order_for(a, first_open, k, net, now_market);
}

/* The fitted forecast (agent_battery.h): start measuring at a local midnight, measure each
 * complete interval once the grid, PV (and battery) meters all have it, decide from the
 * newest when it is recent. */
static void dispatch_fitted(agent *a, int64_t now_market)
{
    agb *b = a->battery;
    int64_t current = ctl_interval_id(floor_s(now_market), a->cfg.interval_s);
    if (agb_fit_first(b) == INT64_MIN) {
        if (a->fit_midnight == INT64_MIN || current >= a->fit_midnight)
            a->fit_midnight = agb_fit_midnight(b, current + 1);
        /* during the interval before it: the stored energy at its start (what the simulated
         * inverter serves then; a real one's now) */
        if (current != a->fit_midnight - 1)
            return;
        if (agb_fit_start(b, a->fit_midnight))
            a->last_dispatched = a->fit_midnight - 1;
        else /* no state of charge (logged): the next midnight */
            a->fit_midnight = agb_fit_midnight(b, a->fit_midnight + 1);
        return;
    }
    int64_t k, net;
    if (!agm_last_complete(&a->meter, &k, &net) || k <= a->last_dispatched)
        return;
    int64_t from = a->last_dispatched + 1;
    if (from < k - AGM_BOUNDARIES + 2)
        from = k - AGM_BOUNDARIES + 2;
    for (int64_t m = from; m <= k; m++) {
        int64_t grid = 0, pv = 0, batt = 0;
        bool old = m < current - 1; /* too late to decide from: the planned interval runs */
        bool hg = agm_interval_net(&a->meter, m, &grid);
        bool hp = agm_interval_net(&a->pv_meter, m, &pv);
        bool hb = !a->cfg.site.battery_meter || agm_interval_net(&a->battery_meter, m, &batt);
        if (!(hg && hp && hb) && !old)
            return; /* the other meters' readings of m are still to come */
        a->last_dispatched = m;
        if (!(hg && hp && hb)) {
            ctl_logf(&a->log, CTL_LOG_WARN,
                     "battery: interval %lld: not measured (no reading of its %s meter)",
                     (long long)m, !hg ? "grid" : !hp ? "PV" : "battery");
            continue;
        }
        /* export - import at each meter: the grid's import, the PV, the battery's charge */
        agb_fit_observe(b, m, -grid, pv, a->cfg.site.battery_meter, -batt);
        if (m == k && !old) {
            agb_fit_decide(b, k, ctl_wall_ms());
            int64_t g = 0, bw = 0;
            if (a->cfg.timing == MKT_EX_POST && agb_expected_net(b, k, k + 2, &g, &bw))
                agf_record(&a->fc, k + 2, -g);
        }
    }
}

/* After each new recent complete interval: the battery's plan and setpoint (agent_battery.h). */
static void maybe_dispatch(agent *a, int64_t now_market)
{
    int64_t k, net;
    if (a->battery && agb_fitted(a->battery)) {
        dispatch_fitted(a, now_market);
        return;
    }
    if (!a->battery || !agm_last_complete(&a->meter, &k, &net) || k <= a->last_dispatched)
        return;
    a->last_dispatched = k;
    int64_t current = ctl_interval_id(floor_s(now_market), a->cfg.interval_s);
    if (k < current - 1)
        return; /* old: a plan from it would be for an interval already running */
    agb_on_interval(a->battery, k, net, ctl_wall_ms());
    /* ex_post has no order: the plan's expected exchange is the agent's forecast */
    int64_t grid = 0, battery_wh = 0;
    if (a->cfg.timing == MKT_EX_POST && agb_expected_net(a->battery, k, k + 2, &grid, &battery_wh))
        agf_record(&a->fc, k + 2, -grid);
}

/* The [agent] metrics_file page: forecast error and battery counters. */
static void write_metrics(agent *a)
{
    if (!a->cfg.metrics_file[0])
        return;
    static char page[4096];
    ctl_expo e;
    ctl_expo_init(&e, page, sizeof page);
    ctl_expo_family(&e, "mgx_agent_forecast_intervals_total", "counter",
                    "Intervals whose net energy forecast was checked against the meter");
    ctl_expo_int(&e, "mgx_agent_forecast_intervals_total", NULL, NULL, NULL, NULL,
                 (int64_t)a->fc.scored);
    ctl_expo_family(&e, "mgx_agent_forecast_abs_error_wh_total", "counter",
                    "Sum of the absolute forecast errors of those intervals, Wh");
    ctl_expo_int(&e, "mgx_agent_forecast_abs_error_wh_total", NULL, NULL, NULL, NULL,
                 a->fc.abs_sum_wh);
    ctl_expo_family(&e, "mgx_agent_forecast_abs_error_wh_last", "gauge",
                    "Absolute forecast error of the last interval checked, Wh");
    ctl_expo_int(&e, "mgx_agent_forecast_abs_error_wh_last", NULL, NULL, NULL, NULL,
                 a->fc.last_abs_wh);
    if (a->battery) {
        agb_stats st;
        agb_get_stats(a->battery, &st);
        const struct {
            const char *name, *help;
            uint64_t v;
        } c[] = {
            {"mgx_agent_battery_plans_total", "Battery plans made", st.plans},
            {"mgx_agent_battery_setpoints_total", "Setpoints written and read back",
             st.setpoints},
            {"mgx_agent_battery_failures_total", "Setpoints that failed", st.failures},
            {"mgx_agent_battery_releases_total", "Releases of control written", st.releases},
            {"mgx_agent_battery_meter_silences_total", "Times the meter went silent",
             st.meter_silences},
        };
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
            ctl_expo_family(&e, c[i].name, "counter", c[i].help);
            ctl_expo_int(&e, c[i].name, NULL, NULL, NULL, NULL, (int64_t)c[i].v);
        }
        ctl_expo_family(&e, "mgx_agent_battery_in_control", "gauge",
                        "1 while the agent's setpoint stands");
        ctl_expo_int(&e, "mgx_agent_battery_in_control", NULL, NULL, NULL, NULL, st.in_control);
    }
    if (ctl_metrics_write_textfile(a->cfg.metrics_file, page, e.len) != 0)
        ctl_logf(&a->log, CTL_LOG_WARN, "metrics_file %s: %s", a->cfg.metrics_file,
                 strerror(errno));
}

/* Each newly complete interval against the forecast the agent made for it. */
static void score_forecasts(agent *a)
{
    int64_t k, net;
    if (!agm_last_complete(&a->meter, &k, &net) || k <= a->last_scored)
        return;
    int64_t from = a->last_scored == INT64_MIN || k - a->last_scored > AGM_BOUNDARIES
                       ? k - AGM_BOUNDARIES + 1
                       : a->last_scored + 1;
    a->last_scored = k;
    for (int64_t id = from; id <= k; id++) {
        if (!agm_interval_net(&a->meter, id, &net) || !agf_observe(&a->fc, id, net))
            continue;
        ctl_logf(&a->log, CTL_LOG_INFO,
                 "interval %lld: forecast %lld Wh, metered %lld Wh: error %lld Wh (mean absolute "
                 "error %lld Wh over %llu intervals)",
                 (long long)id, (long long)a->fc.last_forecast_wh, (long long)net,
                 (long long)a->fc.last_abs_wh, (long long)agf_mae_wh(&a->fc),
                 (unsigned long long)a->fc.scored);
    }
    write_metrics(a);
}

/* ---- standing preferences (timing = ex_post) ----------------------------------------------- */

static void publish_pref(agent *a, int64_t now_real)
{
    int rc = bus_publish(a->bus, a->t_pref, a->pref_json, strlen(a->pref_json), 1, false, NULL,
                         NULL);
    if (rc != BUS_OK) {
        if (rc != BUS_E_NOCONN)
            ctl_logf(&a->log, CTL_LOG_WARN, "cannot publish the preference: %s",
                     bus_strerror(rc));
        return;
    }
    a->pref_sent_ms = now_real;
}

/* Once per interval: the strategy's preference for the first interval still open; sent when it
 * differs from the standing one (a deterministic strategy states it once). */
static void maybe_pref(agent *a, int64_t now_market)
{
    int64_t n = ctl_interval_first_open(floor_s(now_market), &a->rules);
    if (n <= a->pref_checked)
        return;
    a->pref_checked = n;
    mkt_preference p;
    int rc = agp_from_strategy(&a->trader, &a->cfg.tariffs, stream(a, n, 0), &p);
    if (rc != SIM_STRAT_OK) {
        ctl_logf(&a->log, CTL_LOG_WARN, "interval %lld: no preference: %s", (long long)n,
                 sim_strategy_strerror(rc));
        return;
    }
    if (a->pref_state != PREF_NONE && agp_same(&p, &a->pref.pref))
        return; /* unchanged: the standing one holds */
    ctl_pref_msg *m = &a->pref;
    memset(m, 0, sizeof *m);
    snprintf(m->community, sizeof m->community, "%s", a->cfg.bus.community);
    snprintf(m->participant, sizeof m->participant, "%s", a->cfg.participant);
    m->valid_from = n;
    m->interval_s = (uint32_t)a->cfg.interval_s;
    m->created_ms = now_market;
    m->expiry_s = ctl_interval_gate(n, &a->rules);
    randombytes_buf(m->nonce, sizeof m->nonce);
    m->pref = p;
    if (ctl_pref_sign(m, ctl_key_secret(a->key)) != CTL_R_OK ||
        ctl_pref_to_json(m, a->pref_json, sizeof a->pref_json, NULL) != CTL_R_OK) {
        ctl_logf(&a->log, CTL_LOG_ERROR, "interval %lld: signing or encoding the preference failed",
                 (long long)n);
        a->pref_state = PREF_NONE;
        return;
    }
    a->pref_state = PREF_SENDING;
    char nonce[2 * CTL_ORDER_NONCE_BYTES + 1];
    ctl_logf(&a->log, CTL_LOG_INFO,
             "preference from interval %lld: sell at >= %lld, buy at <= %lld uc/kWh all-in, nonce "
             "%s, strategy %s",
             (long long)n, (long long)p.sell[0].price_uc_per_kwh,
             (long long)p.buy[0].price_uc_per_kwh, ctl_nonce_hex(m->nonce, nonce),
             sim_strategy_name(a->cfg.strategy.kind));
    publish_pref(a, ctl_wall_ms());
}

/* Resends an unanswered preference; one whose gate passed unanswered is stated again for the
 * next open interval. */
static void resend_pref(agent *a, int64_t now_real, int64_t now_market)
{
    if (a->pref_state != PREF_SENDING)
        return;
    if (floor_s(now_market) >= a->pref.expiry_s) {
        ctl_logf(&a->log, CTL_LOG_WARN,
                 "preference from interval %lld: no receipt before its gate; stating it again",
                 (long long)a->pref.valid_from);
        a->pref_state = PREF_NONE;
        a->pref_checked = INT64_MIN;
        return;
    }
    if (bus_connected(a->bus) &&
        (a->resend_all || now_real - a->pref_sent_ms >= a->cfg.resend_s * 1000))
        publish_pref(a, now_real); /* resend_due, run next, clears resend_all */
}

/* A receipt for the preference being sent: 1 (handled), 0 (not this preference's). */
static int pref_receipt(agent *a, const ctl_receipt *r)
{
    if (a->pref_state == PREF_NONE || memcmp(r->nonce, a->pref.nonce, sizeof r->nonce) != 0)
        return 0;
    const char *name = ctl_reason_name(r->reason);
    if (ctl_reason_is_accept(r->reason)) {
        if (a->pref_state == PREF_SENDING)
            ctl_logf(&a->log, CTL_LOG_INFO, "preference from interval %lld accepted (%s)",
                     (long long)r->interval_id, name);
        a->pref_state = PREF_ACCEPTED;
    } else {
        ctl_logf(&a->log, CTL_LOG_WARN, "preference from interval %lld rejected: %s%s%s",
                 (long long)r->interval_id, name ? name : "?", r->detail[0] ? ": " : "",
                 r->detail);
        a->pref_state = PREF_NONE; /* stated again for the next open interval */
    }
    return 1;
}

/* ---- incoming ------------------------------------------------------------------------------ */

/* A reading of the grid meter, or of the PV or battery meter (the fitted forecast). */
static void on_state_msg(agent *a, const bus_message *m, const char *id)
{
    mtr_sample s;
    char why[160];
    bool grid = strcmp(id, a->cfg.meter_id) == 0;
    agm_state *st = grid ? &a->meter
                    : strcmp(id, a->cfg.pv_meter_id) == 0 ? &a->pv_meter
                                                           : &a->battery_meter;
    if (bus_state_decode(m->payload, m->len, id, &s, why, sizeof why) != BUS_OK) {
        ctl_logf(&a->log, CTL_LOG_WARN, "meter %s: reading rejected: %s", id, why);
        return;
    }
    int rc = agm_add(st, &s);
    if (!grid) {
        if (rc == AGM_E_BACKWARDS || rc == AGM_E_IMPLAUSIBLE)
            ctl_logf(&a->log, CTL_LOG_WARN, "meter %s: reading at %lld ms refused: %s", id,
                     (long long)s.ts_ms, agm_strerror(rc));
        return;
    }
    if (rc == AGM_USED || rc == AGM_FIRST) {
        a->have_reading = true;
        a->last_reading_ms = market_ms(a);
    }
    if (rc == AGM_E_BACKWARDS || rc == AGM_E_IMPLAUSIBLE)
        ctl_logf(&a->log, CTL_LOG_WARN, "meter %s: reading at %lld ms refused: %s", a->cfg.meter_id,
                 (long long)s.ts_ms, agm_strerror(rc));
    else if (rc == AGM_E_QUALITY)
        ctl_logf(&a->log, CTL_LOG_DEBUG, "meter %s: flagged reading ignored", a->cfg.meter_id);
}

static void on_receipt_msg(agent *a, const bus_message *m)
{
    ctl_receipt r;
    char why[CTL_DETAIL_MAX];
    if (ctl_receipt_from_json(m->payload, m->len, &r, why, sizeof why) != CTL_R_OK) {
        ctl_logf(&a->log, CTL_LOG_WARN, "receipt rejected: %s", why);
        return;
    }
    if (pref_receipt(a, &r))
        return;
    char nonce[2 * CTL_ORDER_NONCE_BYTES + 1];
    ctl_nonce_hex(r.nonce, nonce);
    bool ok = ctl_reason_is_accept(r.reason);
    const char *name = ctl_reason_name(r.reason);
    int effect = 0;
    char *json = strndup(m->payload, m->len);
    int rc = json ? ags_receipt(a->store, r.interval_id, nonce, ok, name ? name : "?", r.detail,
                                json, market_ms(a), &effect)
                  : AGS_E_INVAL;
    free(json);
    if (rc) {
        ctl_logf(&a->log, CTL_LOG_ERROR, "outbox: %s", ags_errmsg(a->store));
        a->fatal = rc == AGS_E_DB;
        return;
    }
    if (effect == AGS_RECEIPT_UNKNOWN)
        ctl_logf(&a->log, CTL_LOG_WARN,
                 "receipt for an order this agent does not know (interval %lld, nonce %s)",
                 (long long)r.interval_id, nonce);
    else if (effect == AGS_RECEIPT_DUPLICATE)
        ctl_logf(&a->log, CTL_LOG_DEBUG, "duplicate receipt for interval %lld",
                 (long long)r.interval_id);
    else if (ok)
        ctl_logf(&a->log, CTL_LOG_INFO, "interval %lld: order %s accepted (%s)",
                 (long long)r.interval_id, nonce, name);
    else
        ctl_logf(&a->log, CTL_LOG_WARN, "interval %lld: order %s rejected: %s%s%s",
                 (long long)r.interval_id, nonce, name ? name : "?", r.detail[0] ? ": " : "",
                 r.detail);
}

/* An integer member of a JSON object, if present. */
static bool json_int(json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* Whether a trades message says any energy traded: an energy_wh above 0 anywhere in it. */
static bool any_energy(json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach(j, key, v)
        {
            if (strcmp(key, "energy_wh") == 0 && json_is_integer(v) && json_integer_value(v) > 0)
                return true;
            if (any_energy(v))
                return true;
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) if (any_energy(v)) return true;
    }
    return false;
}

static void on_trades_msg(agent *a, const bus_message *m)
{
    json_error_t e;
    json_t *j = json_loadb(m->payload, m->len, 0, &e);
    int64_t id;
    if (!j || !json_int(j, "interval_id", &id)) {
        ctl_logf(&a->log, CTL_LOG_WARN, "trades message without an interval_id ignored");
        json_decref(j);
        return;
    }
    char *text = strndup(m->payload, m->len);
    if (!text || ags_trades_put(a->store, id, text, market_ms(a)))
        ctl_logf(&a->log, CTL_LOG_ERROR, "outbox: %s", ags_errmsg(a->store));
    else
        ctl_logf(&a->log, CTL_LOG_INFO, "interval %lld: trades received (%s)", (long long)id,
                 any_energy(j) ? "energy traded" : "nothing traded");
    free(text);
    json_decref(j);
}

/* ZIP learns from the interval's price and whether its order traded (trades seen so far). */
static void learn(agent *a, int64_t id, json_t *result)
{
    if (a->cfg.strategy.kind != SIM_AGENT_ZIP || id <= a->last_observed)
        return;
    ags_order o;
    bool found = false;
    if (ags_order_get(a->store, id, &o, &found) || !found || strcmp(o.state, AGS_ACCEPTED) != 0)
        return;
    a->last_observed = id;
    /* the interval's price: the clearing price, or -1 when nothing traded */
    int64_t price = -1;
    if (!json_int(result, "price_uc_per_kwh", &price))
        json_int(result, "clearing_price_uc_per_kwh", &price);
    static char trades[65536];
    bool have = false;
    int traded = 0;
    if (ags_trades_get(a->store, id, trades, sizeof trades, &have) == AGS_OK && have) {
        json_error_t e;
        json_t *t = json_loads(trades, 0, &e);
        traded = t && any_energy(t);
        json_decref(t);
    }
    double before = a->trader.margin;
    if (sim_trader_observe(&a->trader, (mkt_side)o.side, o.price_uc_per_kwh, traded, price,
                           &a->cfg.tariffs, stream(a, id, 1)) != SIM_STRAT_OK)
        return;
    if (ags_trader_save(a->store, a->trader.margin, a->trader.last_change))
        ctl_logf(&a->log, CTL_LOG_ERROR, "outbox: %s", ags_errmsg(a->store));
    ctl_logf(&a->log, CTL_LOG_INFO, "interval %lld: %s at %lld uc/kWh; ZIP margin %.4f -> %.4f",
             (long long)id, traded ? "traded" : "did not trade", (long long)price, before,
             a->trader.margin);
}

static void on_result_msg(agent *a, const bus_message *m, const char *id_text)
{
    int64_t id;
    char *end = NULL;
    errno = 0;
    id = strtoll(id_text, &end, 10);
    if (errno || !end || *end || id < 0)
        return;
    char *text = strndup(m->payload, m->len);
    if (!text || ags_result_put(a->store, id, text, market_ms(a)))
        ctl_logf(&a->log, CTL_LOG_ERROR, "outbox: %s", ags_errmsg(a->store));
    free(text);
    json_error_t e;
    json_t *j = json_loadb(m->payload, m->len, 0, &e);
    if (j)
        learn(a, id, j);
    json_decref(j);
}

static void on_message(void *user, const bus_message *m)
{
    agent *a = user;
    char community[BUS_ID_MAX], kind[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    if (bus_topic_parse(m->topic, community, kind, id, leaf) != BUS_OK)
        return;
    if (!strcmp(kind, "meter") && !strcmp(leaf, "state") &&
        (!strcmp(id, a->cfg.meter_id) ||
         (a->cfg.pv_meter_id[0] && !strcmp(id, a->cfg.pv_meter_id)) ||
         (a->cfg.battery_meter_id[0] && !strcmp(id, a->cfg.battery_meter_id))))
        on_state_msg(a, m, id);
    else if (!strcmp(kind, "receipt") && !strcmp(id, a->cfg.participant))
        on_receipt_msg(a, m);
    else if (!strcmp(kind, "trades") && !strcmp(id, a->cfg.participant))
        on_trades_msg(a, m);
    else if (!strcmp(kind, "market") && !strcmp(leaf, "result"))
        on_result_msg(a, m, id);
}

static void on_state(void *user, bool connected, int reason)
{
    agent *a = user;
    if (connected) {
        a->resend_all = true;
        ctl_logf(&a->log, CTL_LOG_INFO, "connected to the broker");
    } else {
        ctl_logf(&a->log, CTL_LOG_WARN, "disconnected from the broker (%s)", bus_strerror(reason));
    }
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static int topics(agent *a)
{
    const char *c = a->cfg.bus.community, *p = a->cfg.participant;
    if (bus_topic_meter_state(a->t_state, sizeof a->t_state, c, a->cfg.meter_id) ||
        bus_topic_order(a->t_order, sizeof a->t_order, c, p) ||
        bus_topic_receipt(a->t_receipt, sizeof a->t_receipt, c, p) ||
        bus_topic_trades(a->t_trades, sizeof a->t_trades, c, p) ||
        bus_topic_pref(a->t_pref, sizeof a->t_pref, c, p) ||
        (a->cfg.pv_meter_id[0] &&
         bus_topic_meter_state(a->t_pv_state, sizeof a->t_pv_state, c, a->cfg.pv_meter_id)) ||
        (a->cfg.battery_meter_id[0] &&
         bus_topic_meter_state(a->t_battery_state, sizeof a->t_battery_state, c,
                               a->cfg.battery_meter_id)))
        return -1;
    int n = snprintf(a->t_results, sizeof a->t_results, "mgx/v1/%s/market/+/result", c);
    return n > 0 && (size_t)n < sizeof a->t_results ? 0 : -1;
}

static int setup_trader(agent *a, char *err, size_t err_len)
{
    if (ags_seed(a->store, &a->seed) ||
        sim_trader_init(&a->trader, &a->cfg.strategy, mix(a->seed)) != SIM_STRAT_OK) {
        snprintf(err, err_len, "cannot set up the %s strategy",
                 sim_strategy_name(a->cfg.strategy.kind));
        return -1;
    }
    bool found = false;
    double margin, change;
    if (ags_trader_load(a->store, &margin, &change, &found) == AGS_OK && found &&
        a->cfg.strategy.kind == SIM_AGENT_ZIP) {
        a->trader.margin = margin;
        a->trader.last_change = change;
    }
    return 0;
}

/* cfg is the caller's: it holds the password (a->cfg's copy does not), which bus_new copies
 * into its own locked memory. */
static int setup_bus(agent *a, const agc_config *cfg, char *err, size_t err_len)
{
    bus_config bc;
    cfg_bus_config(&cfg->bus, &bc);
    /* status/<participant>/<client id>: the broker makes the client id the login, so the
     * ACL's status/%c would not be status/<client id>; status/%u/# is (config/mosquitto/acl) */
    bc.status_owner = cfg->participant;
    bc.log = ctl_log_sink;
    bc.log_user = &a->log;
    bc.log_level = a->log.level;
    int rc = BUS_OK;
    a->bus = bus_new(&bc, on_message, on_state, a, &rc);
    if (!a->bus) {
        snprintf(err, err_len, "bus: %s", bus_strerror(rc));
        return -1;
    }
    if (bus_subscribe(a->bus, a->t_state, 1) || bus_subscribe(a->bus, a->t_receipt, 1) ||
        bus_subscribe(a->bus, a->t_trades, 1) || bus_subscribe(a->bus, a->t_results, 1) ||
        (a->t_pv_state[0] && bus_subscribe(a->bus, a->t_pv_state, 1)) ||
        (a->t_battery_state[0] && bus_subscribe(a->bus, a->t_battery_state, 1))) {
        snprintf(err, err_len, "bus: cannot subscribe");
        return -1;
    }
    return 0;
}

int agent_new(const agc_config *cfg, const ctl_clock *clock, agent **out, char *err,
              size_t err_len)
{
    *out = NULL;
    agent *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    a->cfg = *cfg;
    a->log =
        (ctl_log){"agent", getenv("MGX_AGENT_DEBUG") ? CTL_LOG_DEBUG : CTL_LOG_INFO, NULL, NULL};
    a->cfg.bus.password = NULL; /* the caller owns it (agc_clear) */
    a->cfg.bus.loader = NULL;
    a->clock = *clock;
    a->rules = (ctl_interval_rules){cfg->interval_s, cfg->gate_closure_s, CTL_INTERVAL_MAX_AHEAD};
    a->last_forecast = INT64_MIN;
    a->last_observed = INT64_MIN;
    a->pref_checked = INT64_MIN;
    a->last_dispatched = INT64_MIN;
    a->last_scored = INT64_MIN;
    agf_init(&a->fc);
    int rc;
    if (ctl_interval_rules_check(&a->rules) != CTL_IV_OK) {
        snprintf(err, err_len, "interval_s / gate_closure_s out of range");
        goto fail;
    }
    if ((rc = ctl_key_load(cfg->key_file, &a->key)) != CTL_KEY_OK) {
        snprintf(err, err_len, "%s: %s", cfg->key_file, ctl_key_strerror(rc));
        goto fail;
    }
    if (ags_open(cfg->outbox, cfg->bus.community, cfg->participant, &a->store, err, err_len))
        goto fail;
    a->fit_midnight = INT64_MIN;
    if (!agm_init(&a->meter, cfg->interval_s * 1000, cfg->max_reading_gap_s * 1000,
                  cfg->max_power_w) ||
        !agm_init(&a->pv_meter, cfg->interval_s * 1000, cfg->max_reading_gap_s * 1000,
                  cfg->max_power_w) ||
        !agm_init(&a->battery_meter, cfg->interval_s * 1000, cfg->max_reading_gap_s * 1000,
                  cfg->max_power_w)) {
        snprintf(err, err_len, "bad meter settings");
        goto fail;
    }
    if (topics(a)) {
        snprintf(err, err_len, "an id is not a valid topic level");
        goto fail;
    }
    if (setup_trader(a, err, err_len) || setup_bus(a, cfg, err, err_len))
        goto fail;
    if (cfg->battery.line &&
        !(a->battery = agb_new(&cfg->battery, cfg->pv_meter_id[0] ? &cfg->site : NULL,
                               cfg->interval_s, cfg->tariffs.feed_in_uc_per_kwh,
                               cfg->tariffs.retail_uc_per_kwh, &a->log, err, err_len)))
        goto fail;
    *out = a;
    return 0;
fail:
    agent_free(a);
    return -1;
}

int agent_run(agent *a, volatile sig_atomic_t *stop)
{
    int64_t pending = 0;
    ags_count(a->store, AGS_PENDING, &pending);
    const cfg_bus *b = &a->cfg.bus;
    ctl_logf(
        &a->log, CTL_LOG_INFO,
        "participant %s, meter %s, strategy %s, timing %s, %lld order(s) awaiting a receipt; "
        "broker %s:%d as %s",
        a->cfg.participant, a->cfg.meter_id, sim_strategy_name(a->cfg.strategy.kind),
        mkt_timing_name(a->cfg.timing),
        (long long)pending, b->host,
        b->port        ? b->port
        : b->tls_ca[0] ? 8883
                       : 1883,
        b->client_id);
    if (bus_start(a->bus) != BUS_OK) {
        ctl_logf(&a->log, CTL_LOG_ERROR, "cannot start the bus client");
        return -1;
    }
    ctl_service svc;
    ctl_service_init(&svc);
    if (ctl_service_notify(&svc, "READY=1") != 0)
        ctl_logf(&a->log, CTL_LOG_WARN, "service manager: cannot notify %s: %s", svc.path,
                 strerror(errno));
    while (!*stop && !a->fatal) {
        bus_loop(a->bus, 100);
        int64_t now_market = market_ms(a);
        /* the battery first: its plan for the interval is what the order then says */
        if (a->battery)
            agb_meter_tick(a->battery, a->have_reading, a->last_reading_ms, now_market);
        maybe_dispatch(a, now_market);
        score_forecasts(a);
        if (a->cfg.timing == MKT_EX_POST) {
            /* orders made before a switch to ex_post still get their receipts */
            maybe_pref(a, now_market);
            resend_pref(a, ctl_wall_ms(), now_market);
        } else {
            maybe_order(a, now_market);
        }
        resend_due(a, ctl_wall_ms(), now_market);
        ctl_service_tick(&svc, ctl_wall_ms());
    }
    ctl_service_notify(&svc, "STOPPING=1");
    bus_stop(a->bus, 2000);
    ctl_logf(&a->log, a->fatal ? CTL_LOG_ERROR : CTL_LOG_INFO, "%s",
             a->fatal ? "stopped after an outbox error" : "stopped");
    return a->fatal ? -1 : 0;
}

void agent_free(agent *a)
{
    if (!a)
        return;
    agb_free(a->battery); /* releases control: the inverter's own mode */
    bus_free(a->bus);
    ags_close(a->store);
    ctl_key_free(a->key);
    free(a);
}
