/*
 * The controller daemon's loop (see ctl_daemon.h). The order path (ingest.h) takes every order
 * the bus holds in one pass of the loop (at most a batch): each is decoded and pre-judged as it
 * arrives and its signature goes to two verify workers; after the pass the batch is decided
 * and stored in one store transaction, and only after COMMIT are the receipts published.
 * Clearing is driven by ctl_interval_due, so intervals are cleared in order, each exactly once
 * (the store's state row decides), however the clock jumps or the process restarts; the orders
 * taken before a clearing are always committed before it.
 */
#define _POSIX_C_SOURCE 200809L
#include "daemon/clearing.h"
#include "daemon/clearing_ex_post.h"
#include "daemon/ctl_daemon.h"

#include "orders/admit.h"
#include "orders/ingest.h"
#include "orders/order_msg.h"
#include "orders/pref_ingest.h"
#include "bus/payload.h"
#include "db/prefs.h"
#include "db/registry.h"
#include "settle/settle_daemon.h"
#include "db/store.h"
#include "mgx/civil.h"
#include "common/wall_clock.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_INFLIGHT_INTERVALS 256
#define READING_BATCH_MAX 512
#define INGEST_BATCH CTL_INGEST_BATCH_MAX /* orders per transaction */
#define INGEST_THREADS 2                  /* signature workers: one per core of a small box */
/* The loop's longest wait: a lone order's receipt leaves at most this long after it arrives
 * (plus its commit), since bus_loop does not return early when a message comes. */
#define IDLE_WAIT_MS 20

typedef struct daemon daemon;

/* One interval's publication: marked done when every publish of it was acknowledged. */
typedef struct {
    daemon *d;
    int64_t interval_id;
    unsigned pending;
    int failed;
    int used;
} publication;

struct daemon {
    const ctl_daemon_config *cfg;
    ctl_log log; /* "controller" at cfg->log_level; the bus and the settler write through it */
    ctl_store *store;
    bus_client *bus;
    ctl_ingest *ingest;
    ctl_admit_params admit; /* the order rules, which preferences follow too */
    ctl_pref_stats prefs;
    int64_t last_cleared;
    int republish;
    publication pubs[MAX_INFLIGHT_INTERVALS];
    ctl_settler *settler; /* NULL when settlement is off */
    uint64_t orders_in, receipts_out, readings_in, readings_bad;
    /* readings decoded in this pass of the loop, stored in one transaction after it (and before
     * the orders that came after them, so the store sees everything in arrival order) */
    mtr_sample batch[READING_BATCH_MAX];
    size_t n_batch;
};

static int64_t now_ms(const daemon *d)
{
    return ctl_clock_sim_ms(&d->cfg->clock, ctl_wall_ms());
}

static void flush_readings(daemon *d);

/* ---- orders ---- */

static void publish_receipt(daemon *d, const char *participant, const char *body)
{
    char topic[BUS_TOPIC_MAX];
    if (!body[0] || bus_topic_receipt(topic, sizeof topic, d->cfg->community, participant) != BUS_OK)
        return;
    int rc = bus_publish(d->bus, topic, body, strlen(body), 1, false, NULL, NULL);
    if (rc != BUS_OK)
        ctl_logf(&d->log, CTL_LOG_WARN, "receipt for %s not published (%s); the home will resend",
                 participant, bus_strerror(rc));
    else
        d->receipts_out++;
}

/* One order's fate, after its batch's COMMIT: log it and publish its receipt. */
static void on_outcome(void *ctx, const ctl_ingest_outcome *o)
{
    daemon *d = ctx;
    if (!o->stored)
        ctl_logf(&d->log, CTL_LOG_ERROR, "order of %s not stored; told to resend",
                 o->topic_participant);
    else if (!o->decoded)
        ctl_logf(&d->log, CTL_LOG_INFO, "order on order/%s rejected: %s (%s)", o->topic_participant,
                 ctl_reason_name(o->reason), o->detail);
    else
        ctl_logf(&d->log, CTL_LOG_DEBUG, "order %s interval %lld: %s%s", o->msg->participant,
                 (long long)o->msg->interval_id, o->duplicate ? "resend of " : "",
                 ctl_reason_name(o->reason));
    publish_receipt(d, o->topic_participant, o->receipt);
}

/* Commits the orders taken so far in one transaction and publishes their receipts. Readings
 * that came before them are stored first, so the store sees everything in arrival order. */
static void flush_orders(daemon *d)
{
    flush_readings(d);
    size_t n = ctl_ingest_pending(d->ingest);
    if (n == 0)
        return;
    int64_t t0 = ctl_wall_ms();
    int rc = ctl_ingest_flush(d->ingest);
    if (rc != CTL_ST_OK)
        ctl_logf(&d->log, CTL_LOG_ERROR, "%zu orders not stored: %s (%s); their homes resend", n,
                 ctl_store_strerror(rc), ctl_store_errmsg(d->store));
    else
        ctl_logf(&d->log, CTL_LOG_DEBUG, "%zu orders committed in %lld ms", n,
                 (long long)(ctl_wall_ms() - t0));
}

/* timing = ex_post clears metered energy, never orders: an order is answered "not_allowed" at
 * once (nothing is stored, so no commit comes before this receipt), so an agent still set to
 * ex_ante learns why instead of holding receipts for orders that never trade. */
static void refuse_order_ex_post(daemon *d, const char *topic_participant, const bus_message *msg)
{
    ctl_order_msg m;
    ctl_receipt r;
    char body[CTL_RECEIPT_JSON_MAX];
    if (ctl_order_from_json(msg->payload, msg->len, &m, NULL, 0) != CTL_R_OK ||
        strcmp(m.participant, topic_participant) != 0)
        return; /* nothing to answer: not an order of this participant */
    ctl_receipt_for(&r, &m, CTL_R_NOT_ALLOWED,
                    "this community clears ex post: send standing preferences (timing = ex_post)",
                    now_ms(d));
    if (ctl_receipt_to_json(&r, body, sizeof body, NULL) == CTL_R_OK)
        publish_receipt(d, topic_participant, body);
    ctl_logf(&d->log, CTL_LOG_WARN, "order of %s for interval %lld refused: timing is ex_post",
             topic_participant, (long long)m.interval_id);
}

static void handle_order(daemon *d, const char *topic_participant, const bus_message *msg)
{
    if (d->cfg->timing == MKT_EX_POST) {
        refuse_order_ex_post(d, topic_participant, msg);
        return;
    }
    if (ctl_ingest_pending(d->ingest) >= INGEST_BATCH)
        flush_orders(d); /* a full batch goes now, from inside the bus callback */
    d->orders_in++;
    int rc = ctl_ingest_add(d->ingest, topic_participant, msg->payload, msg->len, now_ms(d));
    if (rc != CTL_INGEST_OK) /* cannot happen with the flush above; the home resends */
        ctl_logf(&d->log, CTL_LOG_ERROR, "order on order/%s dropped: %s", topic_participant,
                 ctl_ingest_strerror(rc));
}

/* Reads what the bus holds right now, pass after pass, while orders keep coming, up to a batch:
 * the orders of a burst are committed together. Bounded, so clearing is never starved. */
static void drain_orders(daemon *d)
{
    uint64_t start = d->orders_in;
    while (ctl_ingest_pending(d->ingest) > 0 && d->orders_in - start < INGEST_BATCH) {
        uint64_t before = d->orders_in;
        bus_loop(d->bus, 0);
        if (d->orders_in == before)
            break;
    }
}

/* ---- standing preferences (timing = ex_post) ---- */

/* One preference: judged and committed at once (a home sends one when it changes its mind,
 * not every interval), then its receipt. What came before it is stored first. */
static void handle_pref(daemon *d, const char *topic_participant, const bus_message *msg)
{
    flush_orders(d);
    ctl_pref_outcome o;
    int rc = ctl_pref_ingest(d->store, &d->admit, topic_participant, msg->payload, msg->len,
                             now_ms(d), &d->prefs, &o);
    if (rc != CTL_ST_OK)
        ctl_logf(&d->log, CTL_LOG_ERROR, "preference of %s not stored: %s (%s); told to resend",
                 topic_participant, ctl_store_strerror(rc), ctl_store_errmsg(d->store));
    else if (!o.decoded)
        ctl_logf(&d->log, CTL_LOG_INFO, "preference on pref/%s rejected: %s (%s)",
                 topic_participant, ctl_reason_name(o.reason), o.detail);
    else
        ctl_logf(&d->log, ctl_reason_is_accept(o.reason) ? CTL_LOG_INFO : CTL_LOG_WARN,
                 "preference of %s from interval %lld (%u sell, %u buy steps): %s%s%s%s",
                 o.msg.participant, (long long)o.msg.valid_from, o.msg.pref.n_sell_steps,
                 o.msg.pref.n_buy_steps, o.duplicate ? "resend of " : "",
                 ctl_reason_name(o.reason), o.detail[0] ? ": " : "", o.detail);
    publish_receipt(d, topic_participant, o.receipt);
}

/* ---- readings ---- */

/* Stores the readings gathered so far in one transaction. */
static void flush_readings(daemon *d)
{
    if (d->n_batch == 0)
        return;
    size_t inserted = 0;
    int rc = ctl_store_put_readings(d->store, d->batch, d->n_batch, now_ms(d), &inserted);
    if (rc != CTL_ST_OK)
        ctl_logf(&d->log, CTL_LOG_ERROR, "%zu readings not stored: %s (%s)", d->n_batch,
                 ctl_store_strerror(rc), ctl_store_errmsg(d->store));
    else
        d->readings_in += inserted;
    d->n_batch = 0;
}

static void handle_reading(daemon *d, const char *meter_id, const bus_message *msg)
{
    mtr_sample s;
    char why[160];
    if (bus_state_decode(msg->payload, msg->len, meter_id, &s, why, sizeof why) != BUS_OK) {
        d->readings_bad++;
        ctl_logf(&d->log, CTL_LOG_WARN, "reading of meter %s rejected: %s", meter_id, why);
        return;
    }
    if (d->n_batch == READING_BATCH_MAX)
        flush_readings(d);
    d->batch[d->n_batch++] = s;
}

static void on_message(void *user, const bus_message *msg)
{
    daemon *d = user;
    char community[BUS_ID_MAX], kind[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    if (bus_topic_parse(msg->topic, community, kind, id, leaf) != BUS_OK ||
        strcmp(community, d->cfg->community) != 0)
        return;
    if (strcmp(kind, "order") == 0 && leaf[0] == '\0')
        handle_order(d, id, msg);
    else if (strcmp(kind, "pref") == 0 && leaf[0] == '\0')
        handle_pref(d, id, msg);
    else if (strcmp(kind, "meter") == 0 && strcmp(leaf, "state") == 0)
        handle_reading(d, id, msg);
}

static void on_state(void *user, bool connected, int reason)
{
    daemon *d = user;
    (void)reason;
    if (connected)
        d->republish = 1; /* whatever was not acknowledged before goes out again */
    if (connected && d->settler)
        ctl_settler_reconnected(d->settler);
}

/* ---- publication ---- */

static publication *pub_find(daemon *d, int64_t id)
{
    for (size_t i = 0; i < MAX_INFLIGHT_INTERVALS; i++)
        if (d->pubs[i].used && d->pubs[i].interval_id == id)
            return &d->pubs[i];
    return NULL;
}

static publication *pub_new(daemon *d, int64_t id)
{
    for (size_t i = 0; i < MAX_INFLIGHT_INTERVALS; i++)
        if (!d->pubs[i].used) {
            publication *p = &d->pubs[i];
            memset(p, 0, sizeof *p);
            p->d = d;
            p->interval_id = id;
            p->used = 1;
            return p;
        }
    return NULL;
}

static void pub_settle(publication *p)
{
    if (p->pending > 0)
        return;
    daemon *d = p->d;
    if (!p->failed) {
        int rc = ctl_store_mark_published(d->store, p->interval_id);
        if (rc != CTL_ST_OK)
            ctl_logf(&d->log, CTL_LOG_ERROR, "interval %lld: publication not marked: %s",
                     (long long)p->interval_id, ctl_store_strerror(rc));
    }
    p->used = 0;
}

static void pub_done(void *arg, int status)
{
    publication *p = arg;
    p->pending--;
    if (status != BUS_OK)
        p->failed = 1;
    pub_settle(p);
}

static int pub_send(publication *p, const char *topic, json_t *body, bool retain)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return BUS_E_NOMEM;
    int rc = bus_publish(p->d->bus, topic, text, strlen(text), 1, retain, pub_done, p);
    free(text);
    if (rc == BUS_OK)
        p->pending++;
    else
        p->failed = 1;
    return rc;
}

typedef struct {
    ctl_trade_row *v;
    size_t n, cap;
} trade_vec;

static int collect_trade(const ctl_trade_row *t, void *ctx)
{
    trade_vec *tv = ctx;
    if (tv->n == tv->cap) {
        size_t cap = tv->cap ? tv->cap * 2 : 64;
        ctl_trade_row *v = realloc(tv->v, cap * sizeof *v);
        if (!v)
            return CTL_ST_E_NOMEM;
        tv->v = v;
        tv->cap = cap;
    }
    tv->v[tv->n++] = *t;
    return 0;
}

static json_t *trade_json(const ctl_trade_row *t)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "seller", t->seller, "buyer", t->buyer,
                     "energy_wh", (json_int_t)t->t.energy_wh, "price_uc_per_kwh",
                     (json_int_t)t->t.price_uc_per_kwh, "amount_uc", (json_int_t)t->t.amount_uc,
                     "fee_uc", (json_int_t)t->t.fee_uc);
}

typedef struct {
    publication *p;
    const ctl_interval_result *r;
    const trade_vec *tv;
} outcome_ctx;

static int publish_outcome(const char *participant, const mkt_participant_result *o, void *arg)
{
    outcome_ctx *x = arg;
    daemon *d = x->p->d;
    char topic[BUS_TOPIC_MAX];
    if (bus_topic_trades(topic, sizeof topic, d->cfg->community, participant) != BUS_OK)
        return 0;
    json_t *trades = json_array();
    for (size_t i = 0; i < x->tv->n; i++) {
        const ctl_trade_row *t = &x->tv->v[i];
        if (strcmp(t->seller, participant) == 0 || strcmp(t->buyer, participant) == 0)
            json_array_append_new(trades, trade_json(t));
    }
    json_t *body = json_pack(
        "{s:i, s:s, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
        "v", 1, "participant", participant, "interval_id", (json_int_t)x->r->interval_id,
        "start_utc", (json_int_t)x->r->start_utc, "interval_s", (json_int_t)x->r->length_s,
        "side", o->side == MKT_SELL ? "sell" : "buy", "offered_wh", (json_int_t)o->offered_wh,
        "local_bought_wh", (json_int_t)o->local_bought_wh, "local_sold_wh",
        (json_int_t)o->local_sold_wh, "grid_bought_wh", (json_int_t)o->grid_bought_wh,
        "grid_sold_wh", (json_int_t)o->grid_sold_wh, "local_paid_uc",
        (json_int_t)o->local_paid_uc, "local_received_uc", (json_int_t)o->local_received_uc,
        "grid_paid_uc", (json_int_t)o->grid_paid_uc, "grid_received_uc",
        (json_int_t)o->grid_received_uc, "fee_paid_uc", (json_int_t)o->fee_paid_uc, "trades",
        trades);
    if (!body)
        return CTL_ST_E_NOMEM;
    pub_send(x->p, topic, body, false);
    return 0;
}

static json_t *result_json(const daemon *d, const ctl_interval_result *r)
{
    const mkt_summary *m = &r->summary;
    json_t *price = m->has_price ? json_integer(m->clearing_price_uc_per_kwh) : json_null();
    return json_pack("{s:i, s:s, s:I, s:I, s:I, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                     "s:I, s:I, s:I, s:I, s:s}",
                     "v", 1, "community", d->cfg->community, "interval_id",
                     (json_int_t)r->interval_id, "start_utc", (json_int_t)r->start_utc,
                     "interval_s", (json_int_t)r->length_s, "mechanism",
                     mkt_mechanism_name(m->mechanism), "price_uc_per_kwh", price, "matched_wh",
                     (json_int_t)m->matched_wh, "orders", (json_int_t)r->n_orders, "trades",
                     (json_int_t)r->n_trades, "grid_bought_wh", (json_int_t)m->grid_bought_wh,
                     "grid_sold_wh", (json_int_t)m->grid_sold_wh, "local_value_uc",
                     (json_int_t)m->local_value_uc, "fees_uc", (json_int_t)m->fees_uc,
                     "feed_in_uc_per_kwh", (json_int_t)r->params.feed_in_uc_per_kwh,
                     "retail_uc_per_kwh", (json_int_t)r->params.retail_uc_per_kwh,
                     "network_fee_uc_per_kwh", (json_int_t)r->params.network_fee_uc_per_kwh,
                     "cleared_ms", (json_int_t)r->cleared_ms, "error", r->error);
}

/* Publishes an interval's result (retained) and each participant's trades, from the store, so
 * a re-publication after a restart sends the same bytes. */
static void publish_interval(daemon *d, int64_t id)
{
    if (!bus_connected(d->bus) || pub_find(d, id))
        return;
    ctl_interval_result r;
    int found;
    if (ctl_store_result(d->store, id, &r, &found) != CTL_ST_OK || !found)
        return;
    publication *p = pub_new(d, id);
    if (!p)
        return; /* too many in flight; the next republish pass takes it */
    p->pending++; /* held while sending, so an early ack cannot settle it */
    trade_vec tv = {NULL, 0, 0};
    char topic[BUS_TOPIC_MAX];
    if (ctl_store_trades(d->store, id, collect_trade, &tv) != CTL_ST_OK ||
        bus_topic_market_result(topic, sizeof topic, d->cfg->community, id) != BUS_OK) {
        p->failed = 1;
    } else {
        outcome_ctx x = {p, &r, &tv};
        if (ctl_store_outcomes(d->store, id, publish_outcome, &x) != CTL_ST_OK)
            p->failed = 1;
        /* the result last: a subscriber that sees it knows the trades were sent before it */
        json_t *body = result_json(d, &r);
        mkt_timing timing = MKT_EX_ANTE;
        ctl_interval_timing_get(ctl_store_db(d->store), id, &timing);
        if (body)
            json_object_set_new(body, "timing", json_string(mkt_timing_name(timing)));
        if (!body || pub_send(p, topic, body, true) != BUS_OK)
            p->failed = 1;
    }
    free(tv.v);
    p->pending--;
    pub_settle(p);
}

static void republish(daemon *d)
{
    int64_t ids[64];
    size_t n = 0;
    if (ctl_store_unpublished(d->store, ids, 64, &n) != CTL_ST_OK)
        return;
    for (size_t i = 0; i < n; i++)
        publish_interval(d, ids[i]);
    d->republish = n == 64; /* more to do next turn */
}

/* ---- clearing ---- */

/* Ex post: the interval has ended and its readings had the grace period to come in. */
static int clear_ex_post(daemon *d, int64_t id, int64_t now, int *did)
{
    const ctl_daemon_config *cfg = d->cfg;
    stm_rules rules = {cfg->reading_max_gap_s * 1000, cfg->meter_max_power_w};
    ctl_ex_post_book_info info;
    char err[512] = "";
    int rc = ctl_clear_interval_ex_post(d->store, id, ctl_interval_start(id, cfg->rules.length_s),
                                        cfg->rules.length_s, &cfg->params, &rules, now, did,
                                        &info, err, sizeof err);
    if (rc != CTL_ST_OK && rc != CTL_ST_E_MARKET)
        ctl_logf(&d->log, CTL_LOG_ERROR, "interval %lld: ex_post book: %s", (long long)id, err);
    else if (*did)
        ctl_logf(&d->log, CTL_LOG_INFO,
                 "interval %lld ex_post book: %zu homes with a meter, %zu metered, %zu with a "
                 "preference, %zu orders",
                 (long long)id, info.homes, info.metered, info.with_pref, info.orders);
    return rc;
}

static void clear_due(daemon *d)
{
    const ctl_interval_rules *r = &d->cfg->rules;
    int ex_post = d->cfg->timing == MKT_EX_POST;
    int64_t now = now_ms(d), from, to;
    /* ex_post clears id once now >= its end + grace: the gate rule of ctl_interval_due applied
     * to a clock that much (less the gate) behind */
    int64_t due_s = ctl_floor_div(now, 1000);
    if (ex_post)
        due_s -= r->length_s + d->cfg->settlement_grace_s + r->gate_closure_s;
    int64_t n = ctl_interval_due(d->last_cleared, ctl_store_first_interval(d->store), due_s, r,
                                 &from, &to);
    for (int64_t id = from; n > 0 && id <= to; id++) {
        int did = 0;
        int64_t t0 = ctl_wall_ms();
        int rc = ex_post ? clear_ex_post(d, id, now, &did)
                         : ctl_clear_interval(d->store, id, ctl_interval_start(id, r->length_s),
                                              &d->cfg->params, now, &did);
        if (rc != CTL_ST_OK && rc != CTL_ST_E_MARKET) {
            ctl_logf(&d->log, CTL_LOG_ERROR, "interval %lld not cleared: %s (%s); retrying",
                     (long long)id, ctl_store_strerror(rc), ctl_store_errmsg(d->store));
            return;
        }
        d->last_cleared = id;
        ctl_interval_result res;
        int found = 0;
        ctl_store_result(d->store, id, &res, &found);
        char start[24];
        mkt_format_time(ctl_interval_start(id, r->length_s), 0, start, sizeof start);
        if (found && did)
            ctl_logf(&d->log, rc == CTL_ST_E_MARKET ? CTL_LOG_ERROR : CTL_LOG_INFO,
                     "interval %lld (%s) cleared: %zu orders, %lld Wh matched, price %lld uc/kWh, "
                     "%zu trades, %lld ms%s%s",
                     (long long)id, start, res.n_orders, (long long)res.summary.matched_wh,
                     res.summary.has_price ? (long long)res.summary.clearing_price_uc_per_kwh
                                           : -1LL,
                     res.n_trades, (long long)(ctl_wall_ms() - t0),
                     res.error[0] ? "; book rejected: " : "", res.error);
        publish_interval(d, id);
    }
}

/* ---- settlement ---- */

static int settle_setup(daemon *d)
{
    const ctl_daemon_config *cfg = d->cfg;
    if (!cfg->settlement_key[0]) {
        ctl_logf(&d->log, CTL_LOG_INFO, "settlement off (no settlement_key in [controller])");
        return 0;
    }
    ctl_settler_config sc = {cfg->community,
                             cfg->rules.length_s,
                             cfg->settlement_grace_s,
                             {cfg->reading_max_gap_s * 1000, cfg->meter_max_power_w},
                             cfg->settlement_key,
                             &cfg->solana,
                             &d->log};
    char err[1024] = "";
    if (ctl_settler_new(&sc, d->store, &d->settler, err, sizeof err) != 0) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "settlement: %s", err);
        return -1;
    }
    int64_t last = ctl_settler_last_settled(d->settler);
    ctl_logf(&d->log, CTL_LOG_INFO, "settlement on: grace %d s, last settled interval %lld%s",
             cfg->settlement_grace_s, last == INT64_MIN ? -1LL : (long long)last,
             cfg->solana.enabled ? ", Solana on" : "");
    return 0;
}

/* Settles what is due (a few intervals per turn, so catching up never starves the bus),
 * publishes settled blocks and moves the Solana outbox along. */
static void settle_due(daemon *d)
{
    if (!d->settler)
        return;
    ctl_settler_run(d->settler, ctl_floor_div(now_ms(d), 1000), ctl_wall_ms(), 4);
    ctl_settler_publish(d->settler, d->bus);
    ctl_settler_solana(d->settler, ctl_wall_ms());
}

/* How long bus_loop may wait: until the next gate closure in real time, within
 * 1..IDLE_WAIT_MS. */
static int wait_ms(const daemon *d)
{
    const ctl_interval_rules *r = &d->cfg->rules;
    int64_t now = now_ms(d);
    int64_t next = ctl_interval_first_open(ctl_floor_div(now, 1000), r);
    int64_t gate_real = ctl_clock_real_ms(&d->cfg->clock, ctl_interval_gate(next, r) * 1000);
    int64_t w = gate_real - ctl_wall_ms();
    return w < 1 ? 1 : w > IDLE_WAIT_MS ? IDLE_WAIT_MS : (int)w;
}

int ctl_daemon_run(const ctl_daemon_config *cfg, volatile sig_atomic_t *stop)
{
    daemon *d = calloc(1, sizeof *d);
    if (!d)
        return 1;
    d->cfg = cfg;
    d->log = (ctl_log){"controller", cfg->log_level, NULL, NULL};
    int status = 1;
    int64_t now_s = ctl_floor_div(now_ms(d), 1000);
    ctl_store_identity id = {cfg->community, cfg->rules.length_s,
                             ctl_interval_first_open(now_s, &cfg->rules)};
    char err[512];
    int rc = ctl_store_open(cfg->db_path, &id, &d->store, err, sizeof err);
    if (rc != CTL_ST_OK) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "store: %s: %s", ctl_store_strerror(rc), err);
        goto out;
    }
    if ((rc = ctl_registry_init(ctl_store_db(d->store))) != CTL_REG_OK) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "registry: %s", ctl_registry_strerror(rc));
        goto out;
    }
    d->admit = (ctl_admit_params){cfg->community, (uint32_t)cfg->rules.length_s,
                                  cfg->rules.gate_closure_s,
                                  cfg->rules.max_ahead < 1 ? 1 : cfg->rules.max_ahead};
    ctl_ingest_config ic = {d->admit, INGEST_THREADS, INGEST_BATCH, on_outcome, d};
    if ((rc = ctl_ingest_new(&ic, d->store, &d->ingest)) != CTL_INGEST_OK) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "order intake: %s", ctl_ingest_strerror(rc));
        goto out;
    }
    if (ctl_store_last_cleared(d->store, &d->last_cleared) != CTL_ST_OK)
        goto out;
    if (settle_setup(d) != 0)
        goto out;
    char t[24];
    mkt_format_time(now_s, 0, t, sizeof t);
    ctl_logf(&d->log, CTL_LOG_INFO,
             "community %s, db %s, timing %s, interval %lld s, gate %lld s before start, clock "
             "%s x%lld; first interval %lld, last cleared %lld",
             cfg->community, cfg->db_path, mkt_timing_name(cfg->timing),
             (long long)cfg->rules.length_s,
             (long long)cfg->rules.gate_closure_s, t, (long long)cfg->clock.speed,
             (long long)ctl_store_first_interval(d->store),
             d->last_cleared == INT64_MIN ? -1LL : (long long)d->last_cleared);
    /* catch up before taking orders: intervals whose gate closed while down are cleared with
     * the orders they had */
    clear_due(d);
    int berr = 0;
    bus_config bc = cfg->bus;
    if (!bc.log) {
        bc.log = ctl_log_sink;
        bc.log_user = &d->log;
        bc.log_level = cfg->log_level;
    }
    d->bus = bus_new(&bc, on_message, on_state, d, &berr);
    if (!d->bus || bus_start(d->bus) != BUS_OK) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "bus: %s", bus_strerror(berr));
        goto out;
    }
    char filter[BUS_TOPIC_MAX];
    if (bus_filter_all(filter, sizeof filter, cfg->community, "order", NULL) != BUS_OK ||
        bus_subscribe(d->bus, filter, 1) != BUS_OK ||
        bus_filter_all(filter, sizeof filter, cfg->community, "pref", NULL) != BUS_OK ||
        bus_subscribe(d->bus, filter, 1) != BUS_OK ||
        bus_filter_all(filter, sizeof filter, cfg->community, "meter", "state") != BUS_OK ||
        bus_subscribe(d->bus, filter, 1) != BUS_OK) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "bus: cannot subscribe");
        goto out;
    }
    while (!*stop) {
        bus_loop(d->bus, wait_ms(d));
        drain_orders(d);
        flush_orders(d); /* before clearing: every order taken so far counts */
        clear_due(d);
        if (d->republish && bus_connected(d->bus))
            republish(d);
        settle_due(d);
    }
    flush_orders(d);
    ctl_ingest_stats st;
    ctl_ingest_get_stats(d->ingest, &st);
    uint64_t pref_rejected = 0;
    for (int i = 0; i < CTL_R_COUNT; i++)
        pref_rejected += d->prefs.rejected[i];
    if (d->prefs.received)
        ctl_logf(&d->log, CTL_LOG_INFO,
                 "preferences: %llu received, %llu accepted, %llu resends, %llu rejected",
                 (unsigned long long)d->prefs.received, (unsigned long long)d->prefs.accepted,
                 (unsigned long long)d->prefs.duplicates, (unsigned long long)pref_rejected);
    ctl_logf(&d->log, CTL_LOG_INFO,
             "stopping: %llu orders in %llu batches (largest %zu), %llu receipts, %llu readings "
             "stored, %llu rejected",
             (unsigned long long)d->orders_in, (unsigned long long)st.batches, st.largest_batch,
             (unsigned long long)d->receipts_out, (unsigned long long)d->readings_in,
             (unsigned long long)d->readings_bad);
    bus_stop(d->bus, 2000);
    status = 0;
out:
    ctl_ingest_free(d->ingest);
    bus_free(d->bus);
    ctl_settler_free(d->settler);
    ctl_store_free(d->store);
    free(d);
    return status;
}
