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
#include "daemon/controller_metrics.h"
#include "daemon/ctl_daemon.h"
#include "daemon/publish_body.h"
#include "daemon/replicated.h"
#include "cluster/cluster.h"

#include "orders/admit.h"
#include "orders/ingest.h"
#include "orders/order_msg.h"
#include "orders/pref_ingest.h"
#include "bus/payload.h"
#include "db/prefs.h"
#include "db/registry.h"
#include "settle/reading_attest.h"
#include "settle/cosig_collect.h"
#include "settle/settle_daemon.h"
#include "bus/reading_sig.h"
#include "db/meter_keys.h"
#include "db/retention.h"
#include "db/store.h"
#include "mgx/civil.h"
#include "common/grow.h"
#include "common/metrics_server.h"
#include "common/service.h"
#include "common/wall_clock.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
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

/* Readings accepted per meter and interval, and orders per home and interval of arrival: each
 * an open-addressing table of BUDGET_SLOTS (id, interval) counts. Entries of settled intervals are dead (such readings are refused before
 * they get here); when the table is 3/4 full it is emptied, so its memory stays fixed and the
 * worst a flood of distinct intervals can do is reset the counts (settlement's own cap,
 * CTL_SETTLE_MAX_READINGS, still bounds what it reads). */
#define BUDGET_SLOTS 16384
#define DROP_LOG_MS 10000
typedef struct {
    char id[MTR_ID_MAX]; /* meter or participant id; "" when free */
    int64_t interval_id;
    int64_t count;
} budget_slot;
typedef struct {
    budget_slot *slot; /* BUDGET_SLOTS */
    size_t used;
} budget_table;

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
    /* readings refused at ingest (docs/trust.md, layer 2): stamped in the future, for an
     * interval already settled, beyond the per-meter per-interval budget; the counts since the
     * last warning are logged at most every DROP_LOG_MS */
    uint64_t readings_future, readings_late, readings_flood;
    uint64_t logged_future, logged_late, logged_flood;
    int64_t drop_log_ms;
    char drop_meter[MTR_ID_MAX]; /* the meter of the latest refusal, for the warning */
    const char *drop_why;
    budget_table readings_budget; /* readings accepted per (meter, interval) */
    budget_table orders_budget;   /* orders taken per (home, interval of arrival) */
    uint64_t orders_flood, logged_orders_flood;
    char order_drop_home[CTL_ID_MAX + 1];
    int64_t order_log_ms;
    /* readings decoded in this pass of the loop, stored in one transaction after it (and before
     * the orders that came after them, so the store sees everything in arrival order) */
    mtr_sample batch[READING_BATCH_MAX];
    int batch_tier[READING_BATCH_MAX]; /* each reading's attestation tier (reading_attest.h) */
    size_t n_batch;
    /* the metrics page (daemon/controller_metrics.h), rebuilt every METRICS_EVERY_MS */
    ctl_controller_metrics *cm;
    ctl_metrics_server *metrics;
    char *page;
    int64_t metrics_next_ms, start_s;
    int connected;
    /* the retention rule for readings: where the next pass starts, when it is due (real ms) */
    ctl_retention_state retention;
    int64_t retention_next_ms;
    uint64_t readings_thinned;
    int retention_failing;
    /* witness cosignatures received, by verdict (index 1 - ctl_cosig_verdict), and whether
     * the witnessed checkpoint is to be (re)published */
    uint64_t cosigs[CTL_COSIG_VERDICTS];
    int witnessed_due;
    /* in a cluster: the retained ledger/witnessed note last seen on the broker (malloc'd, or
     * NULL), so a new leader does not publish what its predecessor already had */
    char *witnessed_seen;
    int witnessed_synced; /* the broker's retained note, if any, has come (sync_done) */
    int cosig_resubscribe;      /* a COSIG proposal failed: ask the broker for the notes again */
    /* [cluster] (docs/cluster.md): the node, the orders taken since the last proposal, whether
     * this node led at the last pass, the last interval proposed for clearing */
    ctl_cluster *cluster;
    ctl_rep_buf rep_orders;
    int was_leader;
    int cluster_failed; /* this node stopped applying the log: the process exits non-zero */
    int64_t clear_proposed;
    int64_t settle_proposed;
    int64_t status_next_ms;
};

/* Whether this node speaks for the community: always on one node; in a cluster, the leader. */
static int leads(const daemon *d)
{
    return !d->cluster || ctl_cluster_is_leader(d->cluster);
}

static int64_t now_ms(const daemon *d)
{
    return ctl_clock_sim_ms(&d->cfg->clock, ctl_wall_ms());
}

static void flush_readings(daemon *d);

static uint64_t budget_hash(const char *id, int64_t iv)
{
    uint64_t h = 1469598103934665603u ^ (uint64_t)iv; /* FNV-1a over the id, seeded by iv */
    for (; *id; id++)
        h = (h ^ (uint8_t)*id) * 1099511628211u;
    return h;
}

/* Counts one more for id in interval iv; 0 while within max, -1 beyond. */
static int budget_take(budget_table *t, const char *id, int64_t iv, int64_t max)
{
    budget_slot *b = t->slot;
    size_t i = (size_t)(budget_hash(id, iv) % BUDGET_SLOTS);
    for (;; i = (i + 1) % BUDGET_SLOTS) {
        if (!b[i].id[0])
            break;
        if (b[i].interval_id == iv && strcmp(b[i].id, id) == 0)
            return ++b[i].count > max ? -1 : 0;
    }
    if (t->used >= BUDGET_SLOTS / 4 * 3) {
        memset(b, 0, BUDGET_SLOTS * sizeof *b);
        t->used = 0;
        i = (size_t)(budget_hash(id, iv) % BUDGET_SLOTS);
    }
    snprintf(b[i].id, sizeof b[i].id, "%s", id);
    b[i].interval_id = iv;
    b[i].count = 1;
    t->used++;
    return max < 1 ? -1 : 0;
}


/* ---- orders ---- */

static void publish_receipt(daemon *d, const char *participant, const char *body)
{
    if (!leads(d))
        return; /* a follower applies the same decisions; the leader answers */
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
    ctl_cm_order(d->cm, o->reason, o->stored);
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
static void propose_done(void *arg, int status, uint64_t index)
{
    daemon *d = arg;
    (void)index;
    if (status != CTL_CLUSTER_OK) {
        /* not committed under this leadership: homes resend what has no receipt, and the
         * clearing decisions are proposed again */
        ctl_logf(&d->log, CTL_LOG_WARN, "cluster: a proposal ended: %s",
                 ctl_cluster_strerror(status));
        d->clear_proposed = d->last_cleared;
        d->settle_proposed = INT64_MIN;
    }
}

static void flush_orders(daemon *d)
{
    flush_readings(d);
    if (d->cluster) {
        if (d->rep_orders.count == 0)
            return;
        int rc = ctl_cluster_propose(d->cluster, CTL_ENTRY_ORDERS, d->rep_orders.p,
                                     d->rep_orders.len, propose_done, d);
        if (rc != CTL_CLUSTER_OK)
            ctl_logf(&d->log, CTL_LOG_WARN, "cluster: %zu orders not proposed: %s; their homes "
                     "resend", d->rep_orders.count, ctl_cluster_strerror(rc));
        ctl_rep_buf_reset(&d->rep_orders);
        return;
    }
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

/* The order budget's warning, at most every DROP_LOG_MS (force: now, if anything is new). */
static void log_order_drops(daemon *d, int force)
{
    uint64_t n = d->orders_flood - d->logged_orders_flood;
    if (!n || (!force && ctl_wall_ms() < d->order_log_ms))
        return;
    ctl_logf(&d->log, CTL_LOG_WARN,
             "orders refused: %llu beyond %lld per home and interval (latest: order/%s); "
             "not stored, no receipt",
             (unsigned long long)n, (long long)d->cfg->order_max_per_interval,
             d->order_drop_home);
    d->logged_orders_flood = d->orders_flood;
    d->order_log_ms = ctl_wall_ms() + DROP_LOG_MS;
}

/* Fairness (docs/trust.md): a home's messages on order/<home> beyond order_max_per_interval in
 * one interval of arrival are dropped before decoding, verifying or storing, so one home's junk
 * costs the others a hash lookup per message, not a signature check and a row. The topic's id
 * is the sender's (the ACL lets a home write only its own order topic). */
static int order_admitted(daemon *d, const char *topic_participant, int64_t now)
{
    int64_t iv = ctl_floor_div(ctl_floor_div(now, 1000), d->cfg->rules.length_s);
    if (budget_take(&d->orders_budget, topic_participant, iv,
                    d->cfg->order_max_per_interval) == 0)
        return 1;
    d->orders_flood++;
    snprintf(d->order_drop_home, sizeof d->order_drop_home, "%s", topic_participant);
    log_order_drops(d, 0);
    return 0;
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
    /* one arrival time for the budget and the stored order: the two must agree on the interval
     * of arrival, and a batch flushed in between must not move the order into the next one */
    int64_t now = now_ms(d);
    if (!order_admitted(d, topic_participant, now))
        return;
    if (d->cfg->timing == MKT_EX_POST) {
        refuse_order_ex_post(d, topic_participant, msg);
        return;
    }
    if (d->cluster) {
        /* the leader proposes the batch verbatim; every node decides it alike when it applies
         * the committed entry. A follower leaves it: the home resends until the leader
         * answers. */
        if (!ctl_cluster_is_leader(d->cluster))
            return;
        if (d->rep_orders.count >= INGEST_BATCH ||
            d->rep_orders.len + msg->len > CTL_CLUSTER_ENTRY_MAX / 2)
            flush_orders(d);
        d->orders_in++;
        if (ctl_rep_order_add(&d->rep_orders, topic_participant, msg->payload, msg->len, now))
            ctl_logf(&d->log, CTL_LOG_ERROR, "order on order/%s dropped: out of memory",
                     topic_participant);
        return;
    }
    if (ctl_ingest_pending(d->ingest) >= INGEST_BATCH)
        flush_orders(d); /* a full batch goes now, from inside the bus callback */
    d->orders_in++;
    int rc = ctl_ingest_add(d->ingest, topic_participant, msg->payload, msg->len, now);
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
static int pref_decide(daemon *d, const char *topic_participant, const char *payload, size_t len,
                       int64_t now)
{
    ctl_pref_outcome o;
    int rc =
        ctl_pref_ingest(d->store, &d->admit, topic_participant, payload, len, now, &d->prefs, &o);
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
    return rc;
}

static void handle_pref(daemon *d, const char *topic_participant, const bus_message *msg)
{
    flush_orders(d);
    if (d->cluster) {
        /* the leader proposes the preference verbatim, after what came before it; every node
         * judges and stores it alike when it applies the entry, and the leader answers then.
         * A follower leaves it: the home resends until it holds a receipt. */
        if (!ctl_cluster_is_leader(d->cluster))
            return;
        ctl_rep_buf b = {0};
        int rc = ctl_rep_order_add(&b, topic_participant, msg->payload, msg->len, now_ms(d));
        if (rc == 0)
            rc = ctl_cluster_propose(d->cluster, CTL_ENTRY_PREFS, b.p, b.len, propose_done, d);
        if (rc != 0)
            ctl_logf(&d->log, CTL_LOG_WARN,
                     "cluster: preference of %s not proposed (%s); the home resends",
                     topic_participant, ctl_cluster_strerror(rc));
        ctl_rep_buf_free(&b);
        return;
    }
    pref_decide(d, topic_participant, msg->payload, msg->len, now_ms(d));
}

/* ---- readings ---- */

static void drop_reading(daemon *d, const char *meter_id, uint64_t *counter, const char *why);

/* timing = ex_post: an interval's book is its metered energy when it is cleared, and its
 * settlement must read the same. A reading that could still change a cleared interval (stamped
 * before its end plus reading_max_gap_s, the farthest a reading used for the end boundary can
 * lie) is refused, so one that comes late, or is resent after a failover, lands in neither the
 * settlement nor the book rather than in the settlement alone (which a re-clearing witness
 * refuses). Decided where the readings are stored: in a cluster when the entry is applied, by
 * log order, alike on every node. Compacts r and tier; returns how many are kept. */
static size_t keep_uncleared(daemon *d, mtr_sample *r, int *tier, size_t n)
{
    if (d->cfg->timing != MKT_EX_POST || d->last_cleared == INT64_MIN)
        return n;
    int64_t limit_ms =
        (ctl_interval_end(d->last_cleared, d->cfg->rules.length_s) + d->cfg->reading_max_gap_s) *
        1000;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].ts_ms <= limit_ms) {
            drop_reading(d, r[i].meter_id, &d->readings_late, "interval already cleared");
            continue;
        }
        r[k] = r[i];
        tier[k++] = tier[i];
    }
    return k;
}

/* Stores the readings gathered so far in one transaction. */
static void flush_readings(daemon *d)
{
    if (d->n_batch == 0)
        return;
    if (d->cluster) {
        ctl_rep_buf b = {0};
        int rc = ctl_rep_readings_encode(&b, d->batch, d->batch_tier, d->n_batch, now_ms(d));
        if (rc == 0)
            rc = ctl_cluster_propose(d->cluster, CTL_ENTRY_READINGS, b.p, b.len, propose_done,
                                     d);
        if (rc != 0)
            ctl_logf(&d->log, CTL_LOG_WARN, "cluster: %zu readings not proposed (%s)",
                     d->n_batch, ctl_cluster_strerror(rc));
        ctl_rep_buf_free(&b);
        d->n_batch = 0;
        return;
    }
    size_t inserted = 0;
    d->n_batch = keep_uncleared(d, d->batch, d->batch_tier, d->n_batch);
    if (d->n_batch == 0)
        return;
    int rc = ctl_store_put_readings(d->store, d->batch, d->n_batch, now_ms(d), &inserted);
    if (rc != CTL_ST_OK)
        ctl_logf(&d->log, CTL_LOG_ERROR, "%zu readings not stored: %s (%s)", d->n_batch,
                 ctl_store_strerror(rc), ctl_store_errmsg(d->store));
    else
        d->readings_in += inserted;
    /* after the readings, so a crash between leaves a reading at tier 0, never a tier without
     * its reading */
    if (rc == CTL_ST_OK &&
        ctl_reading_tiers_put(ctl_store_db(d->store), d->batch, d->batch_tier, d->n_batch) !=
            CTL_DB_OK)
        ctl_logf(&d->log, CTL_LOG_ERROR, "tiers of %zu readings not stored: %s", d->n_batch,
                 ctl_store_errmsg(d->store));
    d->n_batch = 0;
}

/* One warning line per DROP_LOG_MS at most, with the counts since the last one: a home
 * sending 200,000 bad readings must not turn into 200,000 log lines. */
static void log_drops(daemon *d, int force)
{
    uint64_t f = d->readings_future - d->logged_future, l = d->readings_late - d->logged_late,
             x = d->readings_flood - d->logged_flood;
    if (!(f || l || x) || (!force && ctl_wall_ms() < d->drop_log_ms))
        return;
    ctl_logf(&d->log, CTL_LOG_WARN,
             "readings refused: %llu stamped more than %llds in the future, %llu for intervals "
             "already settled, %llu beyond %lld per meter and interval (latest: meter %s, %s)",
             (unsigned long long)f, (long long)d->cfg->reading_max_future_s,
             (unsigned long long)l, (unsigned long long)x,
             (long long)d->cfg->reading_max_per_interval, d->drop_meter, d->drop_why);
    d->logged_future = d->readings_future;
    d->logged_late = d->readings_late;
    d->logged_flood = d->readings_flood;
    d->drop_log_ms = ctl_wall_ms() + DROP_LOG_MS;
}

static void drop_reading(daemon *d, const char *meter_id, uint64_t *counter, const char *why)
{
    (*counter)++;
    snprintf(d->drop_meter, sizeof d->drop_meter, "%s", meter_id);
    d->drop_why = why;
    log_drops(d, 0);
}

/* The controller's own checks of a reading before it is stored (docs/trust.md, layer 2); the
 * quality bits the home sent are stored as they are and only ever hold its interval. */
static int reading_admitted(daemon *d, const mtr_sample *s)
{
    const ctl_daemon_config *c = d->cfg;
    int64_t now = now_ms(d), skew = c->reading_max_future_s * 1000 * c->clock.speed;
    if (s->ts_ms > now && s->ts_ms - now > skew) {
        drop_reading(d, s->meter_id, &d->readings_future, "in the future");
        return 0;
    }
    int64_t iv = ctl_floor_div(ctl_floor_div(s->ts_ms, 1000), c->rules.length_s);
    if (d->settler) {
        int64_t last = ctl_settler_last_settled(d->settler);
        if (last != INT64_MIN && iv <= last) {
            drop_reading(d, s->meter_id, &d->readings_late, "interval already settled");
            return 0;
        }
    }
    if (budget_take(&d->readings_budget, s->meter_id, iv, c->reading_max_per_interval) != 0) {
        drop_reading(d, s->meter_id, &d->readings_flood, "too many for one interval");
        return 0;
    }
    return 1;
}

static void handle_reading(daemon *d, const char *meter_id, const bus_message *msg)
{
    if (!leads(d))
        return; /* the leader proposes what it admits */
    mtr_sample s;
    char why[400];
    if (bus_state_decode(msg->payload, msg->len, meter_id, &s, why, sizeof why) != BUS_OK) {
        d->readings_bad++;
        ctl_logf(&d->log, CTL_LOG_WARN, "reading of meter %s rejected: %s", meter_id, why);
        ctl_cm_reading(d->cm, meter_id, CTL_CM_READING_REJECTED);
        return;
    }
    if (!reading_admitted(d, &s)) {
        ctl_cm_reading(d->cm, meter_id, CTL_CM_READING_REJECTED);
        return;
    }
    int tier = 0;
    if (ctl_attest_reading(ctl_store_db(d->store), &s, msg->payload, msg->len, &tier, why,
                           sizeof why) != CTL_DB_OK)
        ctl_logf(&d->log, CTL_LOG_ERROR, "reading of meter %s: %s", meter_id, why);
    else if (tier == 0 && strcmp(why, "unsigned") != 0 && tier >= d->cfg->min_attestation_tier)
        /* a signature that is there but fails is a forgery or a wrong key: said even when the
         * community still takes unsigned readings */
        ctl_logf(&d->log, CTL_LOG_WARN, "reading of meter %s at %lld stored unsigned (tier 0): %s",
                 meter_id, (long long)s.ts_ms, why);
    if (tier < d->cfg->min_attestation_tier) {
        d->readings_bad++;
        ctl_logf(&d->log, CTL_LOG_WARN,
                 "reading of meter %s at %lld refused: attestation %s (tier %d) is below "
                 "min_attestation_tier %lld: %s",
                 meter_id, (long long)s.ts_ms, bus_tier_name(tier), tier,
                 (long long)d->cfg->min_attestation_tier, why);
        ctl_cm_reading(d->cm, meter_id, CTL_CM_READING_REJECTED);
        return;
    }
    ctl_cm_reading(d->cm, meter_id, s.quality ? CTL_CM_READING_FLAGGED : CTL_CM_READING_GOOD);
    if (d->n_batch == READING_BATCH_MAX)
        flush_readings(d);
    d->batch_tier[d->n_batch] = tier;
    d->batch[d->n_batch++] = s;
}

/* A witness's cosigned checkpoint (mgx/v1/<community>/ledger/cosigned/<witness>): kept when
 * it verifies (settle/cosig_collect.h), refused and counted otherwise. */
static int cosig_decide(daemon *d, const char *witness, const char *note, size_t len)
{
    int v = ctl_cosig_accept(ctl_store_db(d->store), d->cfg->witness_pk, d->cfg->n_witness, note,
                             len, NULL);
    d->cosigs[1 - v]++;
    if (v == CTL_COSIG_STORED)
        d->witnessed_due = 1;
    else if (v < 0)
        ctl_logf(&d->log, v == CTL_COSIG_E_FORK ? CTL_LOG_ERROR : CTL_LOG_WARN,
                 "cosignature from %s refused: %s", witness, ctl_cosig_strerror(v));
    return v;
}

/* A COSIG proposal's end: one not committed under this leadership is asked for again (the
 * witnesses publish a note once per checkpoint, retained, so a new subscription hands it over
 * again) rather than waiting for the next witness step or leader. */
static void cosig_done(void *arg, int status, uint64_t index)
{
    daemon *d = arg;
    (void)index;
    if (status != CTL_CLUSTER_OK)
        d->cosig_resubscribe = 1;
}

/* The witnesses' retained notes once more: on becoming leader, and after a lost proposal. */
static void cosig_subscribe(daemon *d)
{
    char filter[BUS_TOPIC_MAX];
    d->cosig_resubscribe = 0;
    if (!d->settler || !d->cfg->n_witness)
        return;
    if (snprintf(filter, sizeof filter, "mgx/v1/%s/ledger/cosigned/+", d->cfg->community) >=
            (int)sizeof filter ||
        bus_subscribe(d->bus, filter, 1) != BUS_OK) {
        ctl_logf(&d->log, CTL_LOG_WARN, "bus: cannot subscribe to witnesses again");
        d->cosig_resubscribe = 1;
    }
}

static void handle_cosig(daemon *d, const char *witness, const bus_message *msg)
{
    if (!d->settler || d->cfg->n_witness == 0 || msg->len == 0)
        return; /* an empty retained message is a witness clearing its topic */
    if (!d->cluster) {
        cosig_decide(d, witness, msg->payload, msg->len);
        return;
    }
    /* the cosignatures are part of the community's record: the leader proposes the note as it
     * arrived and every node keeps what its own ledger verifies (the checkpoint's SETTLE comes
     * before in the log, so every node has it). A follower leaves it: on becoming leader it
     * subscribes again and the broker hands it each witness's retained note. */
    if (!ctl_cluster_is_leader(d->cluster))
        return;
    ctl_rep_buf b = {0};
    int rc = ctl_rep_order_add(&b, witness, msg->payload, msg->len, now_ms(d));
    if (rc == 0)
        rc = ctl_cluster_propose(d->cluster, CTL_ENTRY_COSIG, b.p, b.len, cosig_done, d);
    if (rc != 0)
        d->cosig_resubscribe = 1;
    if (rc != 0)
        ctl_logf(&d->log, CTL_LOG_WARN, "cluster: cosignature from %s not proposed (%s)", witness,
                 ctl_cluster_strerror(rc));
    ctl_rep_buf_free(&b);
}

/* The retained ledger/witnessed note as the broker has it (a cluster's nodes all follow it). */
static void handle_witnessed(daemon *d, const bus_message *msg)
{
    free(d->witnessed_seen);
    d->witnessed_seen = NULL;
    if (msg->len && !memchr(msg->payload, '\0', msg->len) &&
        (d->witnessed_seen = malloc(msg->len + 1))) {
        memcpy(d->witnessed_seen, msg->payload, msg->len);
        d->witnessed_seen[msg->len] = 0;
    }
}

/* A node of a cluster compares its witnessed note with the broker's retained one before it
 * publishes, so it must have that retained note first. The broker sends a subscription's
 * retained messages before it reads the client's next packet, and one client's packets go out
 * in order: so once a QoS 1 message published right after connecting (after the subscriptions)
 * is acknowledged, the retained note has come, if there is one. A fixed wait (2 s) did not
 * hold on a loaded machine: a new leader busy applying the log published an older note again
 * before it had read the broker's (test_cluster_ex_post, about 1 run of 100 kills in 3). */
static void sync_done(void *arg, int status)
{
    daemon *d = arg;
    if (status == BUS_OK)
        d->witnessed_synced = 1;
}

static void sync_probe(daemon *d)
{
    char topic[BUS_TOPIC_MAX];
    d->witnessed_synced = 0;
    if (snprintf(topic, sizeof topic, "%s/sync", bus_status_topic(d->bus)) >= (int)sizeof topic ||
        bus_publish(d->bus, topic, "sync", 4, 1, false, sync_done, d) != BUS_OK)
        ctl_logf(&d->log, CTL_LOG_WARN, "cannot publish the sync probe: the witnessed note waits "
                                        "for the next connection");
}

/* Whether the broker's witnessed note `seen` already says all that `note` (for log size
 * `size`) says: a larger log, or the same size with every line of note on it. A new leader that
 * has not yet applied what its predecessor had would otherwise publish an older note, and then
 * the newer one again. */
static int witnessed_covers(const char *seen, const char *note, uint64_t size)
{
    const char *nl = strchr(seen, '\n');
    char *end = NULL;
    unsigned long long seen_size = nl ? strtoull(nl + 1, &end, 10) : 0;
    if (!nl || end == nl + 1 || *end != '\n')
        return 0; /* not a note: ours replaces it */
    if (seen_size != size)
        return seen_size > size;
    for (const char *l = note; *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) + 1 : strlen(l);
        int found = 0;
        for (const char *p = seen; !found && *p;) {
            const char *pe = strchr(p, '\n');
            size_t pn = pe ? (size_t)(pe - p) + 1 : strlen(p);
            found = pn == n && memcmp(p, l, n) == 0;
            p += pn;
        }
        if (!found)
            return 0;
        l += n;
    }
    return 1;
}

/* Republishes the latest checkpoint with every collected cosignature, retained. */
static void publish_witnessed(daemon *d)
{
    if (!d->witnessed_due || !bus_connected(d->bus) || !leads(d))
        return;
    if (d->cluster && !d->witnessed_synced)
        return; /* the retained note may still be on its way: later */
    uint64_t size = 0;
    char *note = ctl_cosig_witnessed(ctl_store_db(d->store), &size);
    char topic[BUS_TOPIC_MAX];
    if (d->cluster && note && d->witnessed_seen &&
        witnessed_covers(d->witnessed_seen, note, size)) {
        /* the broker holds it already, or a newer one (a former leader published it): not
         * again; a cosignature applied later makes it due again */
        d->witnessed_due = 0;
        free(note);
        return;
    }
    if (note &&
        snprintf(topic, sizeof topic, "mgx/v1/%s/ledger/witnessed", d->cfg->community) <
            (int)sizeof topic &&
        bus_publish(d->bus, topic, note, strlen(note), 1, true, NULL, NULL) == BUS_OK) {
        d->witnessed_due = 0;
        if (d->cluster) { /* what the broker holds now */
            free(d->witnessed_seen);
            d->witnessed_seen = note;
            note = NULL;
        }
    }
    free(note);
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
    else if (strcmp(kind, "ledger") == 0 && strcmp(id, "cosigned") == 0 && leaf[0])
        handle_cosig(d, leaf, msg);
    else if (d->cluster && strcmp(kind, "ledger") == 0 && strcmp(id, "witnessed") == 0 && !leaf[0])
        handle_witnessed(d, msg);
}

static void on_state(void *user, bool connected, int reason)
{
    daemon *d = user;
    (void)reason;
    d->connected = connected;
    if (connected)
        d->republish = 1; /* whatever was not acknowledged before goes out again */
    if (connected && d->settler)
        ctl_settler_reconnected(d->settler);
    if (connected && d->cfg->n_witness) {
        d->witnessed_due = 1;
        /* in a cluster, a node that just (re)connected, a restarted one above all, first reads
         * the broker's retained ledger/witnessed (sync_probe) */
        if (d->cluster)
            sync_probe(d);
    }
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

/* How long the broker keeps an interval's retained result: a day, so a home back from a
 * reboot or a dashboard opened in the evening sees the day's results, while older ones live in
 * the database and the ledger, not on the broker (and in its persistence file) forever. */
#define RESULT_RETAIN_S 86400u

static int pub_send(publication *p, const char *topic, json_t *body, bool retain)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return BUS_E_NOMEM;
    int rc = bus_publish_expiring(p->d->bus, topic, text, strlen(text), 1, retain,
                                  retain ? RESULT_RETAIN_S : 0, pub_done, p);
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
    if (ctl_grow((void **)&tv->v, &tv->cap, tv->n, sizeof *tv->v, SIZE_MAX / sizeof *tv->v))
        return CTL_ST_E_NOMEM;
    tv->v[tv->n++] = *t;
    return 0;
}

/* An interval's topology nodes (grid_nodes), for its result body: at most the topology's, but
 * read from the file, whose rows a past config may have left; at most CTL_TOPO_NODES_MAX. */
typedef struct {
    ctl_grid_node_row *v;
    size_t n, cap;
} node_vec;

static int collect_node(const ctl_grid_node_row *r, void *ctx)
{
    node_vec *nv = ctx;
    if (ctl_grow((void **)&nv->v, &nv->cap, nv->n, sizeof *nv->v, CTL_TOPO_NODES_MAX))
        return CTL_ST_E_NOMEM;
    nv->v[nv->n++] = *r;
    return 0;
}

typedef struct {
    publication *p;
    const ctl_interval_result *r;
    const trade_vec *tv;
    ctl_result_groups groups; /* counted for the public result's minimum group size */
} outcome_ctx;

static int publish_outcome(const char *participant, const mkt_participant_result *o, void *arg)
{
    outcome_ctx *x = arg;
    daemon *d = x->p->d;
    char topic[BUS_TOPIC_MAX];
    if (bus_topic_trades(topic, sizeof topic, d->cfg->community, participant) != BUS_OK)
        return 0;
    ctl_result_groups_add(&x->groups, o);
    json_t *body = ctl_trades_body(participant, x->r, o, x->tv->v, x->tv->n);
    if (!body)
        return CTL_ST_E_NOMEM;
    pub_send(x->p, topic, body, false);
    return 0;
}

/* Publishes an interval's result (retained) and each participant's trades, from the store, so
 * a re-publication after a restart sends the same bytes. */
static void publish_interval(daemon *d, int64_t id)
{
    if (!leads(d) || !bus_connected(d->bus) || pub_find(d, id))
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
        outcome_ctx x = {p, &r, &tv, {0, 0, 0, 0}};
        if (ctl_store_outcomes(d->store, id, publish_outcome, &x) != CTL_ST_OK) {
            p->failed = 1; /* the groups are not all counted: no result until the retry */
        } else {
            /* the result last: a subscriber that sees it knows the trades were sent before it */
            json_t *body =
                ctl_result_body(d->cfg->community, &r, &x.groups, d->cfg->min_group_size);
            mkt_timing timing = MKT_EX_ANTE;
            ctl_interval_timing_get(ctl_store_db(d->store), id, &timing);
            if (body)
                json_object_set_new(body, "timing", json_string(mkt_timing_name(timing)));
            node_vec nv = {NULL, 0, 0};
            if (body && (ctl_store_grid_nodes(d->store, id, collect_node, &nv) != CTL_ST_OK ||
                         ctl_result_body_add_grid(body, nv.v, nv.n) != 0)) {
                json_decref(body);
                body = NULL;
            }
            free(nv.v);
            if (!body || pub_send(p, topic, body, true) != BUS_OK)
                p->failed = 1;
        }
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
    /* in a cluster, a node that becomes leader finds every interval it applied as a follower
     * unpublished by it: the last day's results (what the broker keeps retained) go out again,
     * older ones are only marked, so a failover does not resend the community's history */
    int64_t day = ctl_floor_div(RESULT_RETAIN_S, d->cfg->rules.length_s);
    for (size_t i = 0; i < n; i++) {
        if (d->cluster && d->last_cleared != INT64_MIN && ids[i] < d->last_cleared - day)
            ctl_store_mark_published(d->store, ids[i]);
        else
            publish_interval(d, ids[i]);
    }
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
                                        cfg->rules.length_s, &cfg->params, &rules, &cfg->trust,
                                        &cfg->topology, now, did,
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

/* Clears interval id with `now` as the moment of the decision (on one node the clock; in a
 * cluster the leader's, carried in the CLEAR entry). 0, or -1 when it must be retried. */
static int clear_one(daemon *d, int64_t id, int64_t now)
{
    const ctl_interval_rules *r = &d->cfg->rules;
    int ex_post = d->cfg->timing == MKT_EX_POST;
    int did = 0;
    int64_t t0 = ctl_wall_ms();
    int rc = ex_post ? clear_ex_post(d, id, now, &did)
                     : ctl_clear_interval_grid(d->store, id, ctl_interval_start(id, r->length_s),
                                               r->length_s, &d->cfg->params, &d->cfg->topology,
                                               now, &did);
    if (rc != CTL_ST_OK && rc != CTL_ST_E_MARKET) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "interval %lld not cleared: %s (%s); retrying",
                 (long long)id, ctl_store_strerror(rc), ctl_store_errmsg(d->store));
        return -1;
    }
    if (did)
        ctl_cm_clearing(d->cm, ctl_wall_ms() - t0);
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
                 res.summary.has_price ? (long long)res.summary.clearing_price_uc_per_kwh : -1LL,
                 res.n_trades, (long long)(ctl_wall_ms() - t0),
                 res.error[0] ? "; book rejected: " : "", res.error);
    publish_interval(d, id);
    return 0;
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
    if (d->cluster && !ctl_cluster_is_leader(d->cluster))
        return; /* the leader decides; this node applies its CLEAR entries */
    int64_t n = ctl_interval_due(d->last_cleared, ctl_store_first_interval(d->store), due_s, r,
                                 &from, &to);
    for (int64_t id = from; n > 0 && id <= to; id++) {
        if (d->cluster) {
            /* proposed once; cleared on every node when the entry is applied, in log order */
            if (id <= d->clear_proposed)
                continue;
            uint8_t e[16];
            ctl_rep_clear_encode(e, id, now);
            int rc = ctl_cluster_propose(d->cluster, CTL_ENTRY_CLEAR, e, sizeof e, propose_done,
                                         d);
            if (rc != CTL_CLUSTER_OK) {
                ctl_logf(&d->log, CTL_LOG_WARN, "cluster: clearing of %lld not proposed: %s",
                         (long long)id, ctl_cluster_strerror(rc));
                return;
            }
            d->clear_proposed = id;
            continue;
        }
        if (clear_one(d, id, now) != 0)
            return;
    }
}

/* ---- the replicated log (docs/cluster.md) ---- */

static int apply_order(void *ctx, const char *topic_participant, const char *payload, size_t len,
                       int64_t now)
{
    daemon *d = ctx;
    if (ctl_ingest_pending(d->ingest) >= INGEST_BATCH && ctl_ingest_flush(d->ingest) != CTL_ST_OK)
        return -2;
    return ctl_ingest_add(d->ingest, topic_participant, payload, len, now) == CTL_INGEST_OK ? 0
                                                                                           : -2;
}

/* The Solana outbox's decisions (settle_daemon.h) as SOLANA entries; a lost proposal is made
 * again by the settler. */
static int propose_solana(void *ctx, const uint8_t *p, size_t len)
{
    daemon *d = ctx;
    return ctl_cluster_propose(d->cluster, CTL_ENTRY_SOLANA, p, len, propose_done, d) ==
                   CTL_CLUSTER_OK
               ? 0
               : -1;
}

static int apply_pref(void *ctx, const char *topic_participant, const char *payload, size_t len,
                      int64_t now)
{
    return pref_decide(ctx, topic_participant, payload, len, now) == CTL_ST_OK ? 0 : -2;
}

static int apply_cosig(void *ctx, const char *witness, const char *note, size_t len, int64_t now)
{
    (void)now;
    return cosig_decide(ctx, witness, note, len) == CTL_COSIG_E_DB ? -2 : 0;
}

/* A committed entry, applied alike on every node inside its apply transaction (the store's own
 * transactions nest in it). Receipts and results go out from the leader only. */
static int cluster_apply(void *ctx, uint64_t index, int type, const uint8_t *p, size_t len)
{
    daemon *d = ctx;
    (void)index;
    switch (type) {
    case CTL_ENTRY_ORDERS: {
        int rc = ctl_rep_orders_each(p, len, apply_order, d);
        if (rc == -2)
            return -1;
        /* a malformed tail (a bug of the leader) is refused alike everywhere: what decoded
         * before it is decided as usual */
        return ctl_ingest_flush(d->ingest) == CTL_ST_OK ? 0 : -1;
    }
    case CTL_ENTRY_READINGS: {
        mtr_sample *r = malloc(READING_BATCH_MAX * sizeof *r);
        int *tier = malloc(READING_BATCH_MAX * sizeof *tier);
        size_t n = 0, inserted = 0;
        int64_t received = 0;
        int out = 1;
        if (!r || !tier)
            out = -1;
        else if (ctl_rep_readings_decode(p, len, r, tier, READING_BATCH_MAX, &n, &received) ==
                 0) {
            n = keep_uncleared(d, r, tier, n);
            out = 0;
            if (n > 0 &&
                (ctl_store_put_readings(d->store, r, n, received, &inserted) != CTL_ST_OK ||
                 ctl_reading_tiers_put(ctl_store_db(d->store), r, tier, n) != CTL_DB_OK))
                out = -1;
            if (out == 0)
                d->readings_in += inserted;
        }
        free(r);
        free(tier);
        return out;
    }
    case CTL_ENTRY_CLEAR: {
        int64_t id, now;
        if (ctl_rep_clear_decode(p, len, &id, &now) != 0)
            return 1;
        /* in order, once: a CLEAR proposed again by a new leader, or one for an interval
         * already cleared, changes nothing (the store's interval state says cleared) */
        if (d->last_cleared != INT64_MIN && id <= d->last_cleared)
            return 0;
        return clear_one(d, id, now) == 0 ? 0 : -1;
    }
    case CTL_ENTRY_SOLANA:
        /* the Solana outbox's decisions, written alike on every node; only the leader sends */
        return d->settler ? ctl_settler_solana_apply(d->settler, p, len) : 1;
    case CTL_ENTRY_PREFS:
        /* a store failure stops this node (it is behind the log); a refusal is a receipt */
        return ctl_rep_orders_each(p, len, apply_pref, d) == -2 ? -1 : 0;
    case CTL_ENTRY_COSIG: {
        if (!d->settler || d->cfg->n_witness == 0)
            return 1; /* every node has the same config: refused alike */
        int rc = ctl_rep_orders_each(p, len, apply_cosig, d);
        return rc == -2 ? -1 : rc == 0 ? 0 : 1;
    }
    case CTL_ENTRY_SETTLE: {
        int64_t id, unused;
        if (!d->settler || ctl_rep_clear_decode(p, len, &id, &unused) != 0)
            return 1;
        int rc = ctl_settler_settle(d->settler, id, ctl_wall_ms());
        if (rc == -1)
            d->settle_proposed = INT64_MIN; /* the leader proposes it again after the delay */
        /* a refusal by the input or the ledger's rules is met alike on every node; the leader
         * proposes the interval again after the retry delay */
        return rc == 0 ? 0 : rc == -1 ? 1 : -1;
    }
    default:
        return 1;
    }
}

/* A snapshot replaced the database: reread what the daemon and the settler keep of it. */
static void cluster_restored(void *ctx, uint64_t index)
{
    daemon *d = ctx;
    (void)index;
    if (ctl_store_last_cleared(d->store, &d->last_cleared) != CTL_ST_OK)
        ctl_logf(&d->log, CTL_LOG_ERROR, "cluster: last cleared interval not read after restore");
    d->clear_proposed = d->last_cleared;
    d->settle_proposed = INT64_MIN;
    ctl_settler_reload(d->settler);
}

/* The node's part of a pass: Raft's I/O and the applies; on becoming leader, what a leader
 * owes (results not yet published, clearing from where the log stands); a status file. */
static int cluster_tick(daemon *d)
{
    int rc = ctl_cluster_run(d->cluster, 0);
    if (rc == CTL_CLUSTER_E_DIVERGED) {
        /* restarting does not help: the database holds what the others do not */
        ctl_logf(&d->log, CTL_LOG_ERROR,
                 "cluster: %s; stopping: do not restart this node with this database and "
                 "data_dir; replace it (docs/cluster.md, \"When a node stops as diverged\")",
                 ctl_cluster_strerror(rc));
        d->cluster_failed = 1;
        return -1;
    }
    if (rc != CTL_CLUSTER_OK) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "cluster: %s; stopping (restart to catch up)",
                 ctl_cluster_strerror(rc));
        d->cluster_failed = 1;
        return -1;
    }
    ctl_cluster_status st;
    ctl_cluster_get_status(d->cluster, &st);
    int leader = st.role == CTL_ROLE_LEADER;
    if (leader != d->was_leader) {
        ctl_logf(&d->log, CTL_LOG_INFO, "cluster: node %llu is %s (term %llu, applied %llu)",
                 (unsigned long long)st.node_id, ctl_cluster_role_name(st.role),
                 (unsigned long long)st.term, (unsigned long long)st.applied_index);
        d->was_leader = leader;
        d->clear_proposed = d->last_cleared;
        d->settle_proposed = INT64_MIN;
        ctl_rep_buf_reset(&d->rep_orders);
        d->n_batch = 0;
        if (leader) {
            d->republish = 1;
            /* the witnesses' retained notes again (a follower left them to the leader of the
             * time), and the witnessed checkpoint if the broker does not hold it yet */
            if (d->settler && d->cfg->n_witness) {
                cosig_subscribe(d);
                d->witnessed_due = 1;
            }
        }
    }
    int64_t real = ctl_wall_ms();
    if (real >= d->status_next_ms) {
        /* `mgx cluster status` reads this file */
        d->status_next_ms = real + 200;
        char path[CTL_CLUSTER_DIR_MAX + 32], tmp[CTL_CLUSTER_DIR_MAX + 40];
        snprintf(path, sizeof path, "%s/status", d->cfg->cluster.data_dir);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f,
                    "node %llu\nrole %s\nterm %llu\nleader %llu %s\nlast_index %llu\n"
                    "commit_index %llu\napplied_index %llu\nlast_cleared %lld\n"
                    "updated_ms %lld\n",
                    (unsigned long long)st.node_id, ctl_cluster_role_name(st.role),
                    (unsigned long long)st.term, (unsigned long long)st.leader_id,
                    st.leader_address[0] ? st.leader_address : "-",
                    (unsigned long long)st.last_index, (unsigned long long)st.commit_index,
                    (unsigned long long)st.applied_index,
                    d->last_cleared == INT64_MIN ? -1LL : (long long)d->last_cleared,
                    (long long)real);
            if (fclose(f) == 0)
                rename(tmp, path);
        }
    }
    return 0;
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
                             &d->log,
                             (int)cfg->credit_min_tier, &cfg->trust};
    char err[1024] = "";
    if (ctl_settler_new(&sc, d->store, &d->settler, err, sizeof err) != 0) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "settlement: %s", err);
        return -1;
    }
    int64_t last = ctl_settler_last_settled(d->settler);
    ctl_logf(&d->log, CTL_LOG_INFO, "settlement on: grace %d s, last settled interval %lld%s",
             cfg->settlement_grace_s, last == INT64_MIN ? -1LL : (long long)last,
             !cfg->solana.enabled           ? ""
             : cfg->solana.mint_authority[0] ? ", Solana on (credits minted on chain)"
                                             : ", Solana on");
    return 0;
}

/* Settles what is due (a few intervals per turn, so catching up never starves the bus),
 * publishes settled blocks and moves the Solana outbox along. */
static void settle_due(daemon *d)
{
    if (!d->settler)
        return;
    int64_t t0 = ctl_wall_ms();
    if (d->cluster) {
        /* the leader proposes the next due interval once; every node settles it when the
         * SETTLE entry is applied (after the interval's CLEAR, by log order), and only the
         * leader publishes the blocks */
        int64_t id;
        if (!ctl_cluster_is_leader(d->cluster))
            return;
        if (ctl_settler_due(d->settler, ctl_floor_div(now_ms(d), 1000), t0, &id) &&
            (d->settle_proposed == INT64_MIN || id > d->settle_proposed)) {
            uint8_t e[16];
            ctl_rep_clear_encode(e, id, now_ms(d));
            int rc = ctl_cluster_propose(d->cluster, CTL_ENTRY_SETTLE, e, sizeof e, propose_done,
                                         d);
            if (rc == CTL_CLUSTER_OK)
                d->settle_proposed = id;
        }
        ctl_settler_publish(d->settler, d->bus);
        ctl_settler_solana(d->settler, ctl_wall_ms()); /* the leader alone talks to the chain */
        return;
    }
    if (ctl_settler_run(d->settler, ctl_floor_div(now_ms(d), 1000), t0, 4) > 0)
        ctl_cm_settling(d->cm, ctl_wall_ms() - t0);
    ctl_settler_publish(d->settler, d->bus);
    ctl_settler_solana(d->settler, ctl_wall_ms());
}

/* ---- metrics ---- */

#define METRICS_EVERY_MS 2000
#define METRICS_PAGE_MAX (1u << 20)

static int metrics_setup(daemon *d)
{
    const ctl_daemon_config *cfg = d->cfg;
    d->start_s = ctl_wall_ms() / 1000;
    if (!cfg->metrics_listen[0] && !cfg->metrics_textfile[0])
        return 0;
    if (!(d->cm = ctl_cm_new()) || !(d->page = malloc(METRICS_PAGE_MAX)))
        return -1;
    if (cfg->metrics_listen[0]) {
        char err[512];
        if (!(d->metrics = ctl_metrics_server_new(cfg->metrics_listen, err, sizeof err))) {
            ctl_logf(&d->log, CTL_LOG_ERROR, "metrics_listen: %s", err);
            return -1;
        }
        ctl_logf(&d->log, CTL_LOG_INFO, "metrics on http://%s/metrics (port %d)",
                 cfg->metrics_listen, ctl_metrics_server_port(d->metrics));
    }
    return 0;
}

/* Rebuilds the page every METRICS_EVERY_MS and hands it to the server and the textfile. */
static void metrics_tick(daemon *d)
{
    int64_t now = ctl_wall_ms();
    if (!d->cm || now < d->metrics_next_ms)
        return;
    d->metrics_next_ms = now + METRICS_EVERY_MS;
    ctl_cm_state s = {d->connected,
                      d->orders_in,
                      d->receipts_out,
                      d->readings_in,
                      d->start_s,
                      ctl_interval_id(ctl_floor_div(now_ms(d), 1000), d->cfg->rules.length_s),
                      d->last_cleared,
                      d->settler != NULL,
                      d->settler ? ctl_settler_last_settled(d->settler) : INT64_MIN,
                      0,
                      0,
                      {0, 0, 0, 0}};
    for (size_t i = 0; i < MAX_INFLIGHT_INTERVALS; i++)
        s.publications_pending += d->pubs[i].used ? 1u : 0u;
    s.solana_on = d->settler && ctl_settler_solana_counts(d->settler, s.solana) == 0;
    int overflow = 0;
    size_t len = ctl_cm_render(d->cm, &s, d->page, METRICS_PAGE_MAX, &overflow);
    if (overflow)
        ctl_logf(&d->log, CTL_LOG_WARN, "metrics page cut at %zu bytes", len);
    if (d->metrics)
        ctl_metrics_server_publish(d->metrics, d->page, len);
    if (d->cfg->metrics_textfile[0] &&
        ctl_metrics_write_textfile(d->cfg->metrics_textfile, d->page, len) != 0)
        ctl_logf(&d->log, CTL_LOG_WARN, "metrics_textfile %s: %s", d->cfg->metrics_textfile,
                 strerror(errno));
}

/* ---- reading retention ---- */

#define RETENTION_EVERY_MS 2000 /* real time between passes once the readings are thinned */
#define RETENTION_BUSY_MS 100   /* between passes while a round is not complete (catching up) */
#define RETENTION_ROWS 5000     /* readings looked at per pass: tens of ms of work */

/* One bounded pass of the retention rule (db/retention.h) over readings older than
 * reading_retention_days and than anything an unsettled interval may still need. */
static void retain_due(daemon *d)
{
    const ctl_daemon_config *cfg = d->cfg;
    int64_t real = ctl_wall_ms();
    if (cfg->reading_retention_days <= 0 || real < d->retention_next_ms)
        return;
    d->retention_next_ms = real + RETENTION_EVERY_MS;
    int64_t cutoff = now_ms(d) - cfg->reading_retention_days * INT64_C(86400000);
    if (d->settler) {
        int64_t last = ctl_settler_last_settled(d->settler);
        if (last == INT64_MIN)
            return; /* nothing settled yet: every reading may still be needed */
        /* the next interval to settle reads from its start minus the widest gap */
        int64_t need = ctl_interval_end(last, cfg->rules.length_s) * 1000 -
                       cfg->reading_max_gap_s * 1000;
        if (need < cutoff)
            cutoff = need;
    }
    ctl_retention_stats st = {0};
    int rc = ctl_store_thin_readings(d->store, &d->retention, cutoff, cfg->rules.length_s * 1000,
                                     RETENTION_ROWS, &st);
    if (rc != CTL_ST_OK) {
        if (!d->retention_failing)
            ctl_logf(&d->log, CTL_LOG_WARN, "reading retention: %s: %s", ctl_store_strerror(rc),
                     ctl_store_errmsg(d->store));
        d->retention_failing = 1;
        return;
    }
    d->retention_failing = 0;
    if (d->retention.cursor[0]) /* the round stopped on its budget: more to do soon */
        d->retention_next_ms = real + RETENTION_BUSY_MS;
    d->readings_thinned += st.deleted;
    if (st.deleted)
        ctl_logf(&d->log, CTL_LOG_DEBUG, "reading retention: %llu of %llu readings deleted",
                 (unsigned long long)st.deleted, (unsigned long long)st.examined);
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
    d->readings_budget.slot = calloc(BUDGET_SLOTS, sizeof *d->readings_budget.slot);
    d->orders_budget.slot = calloc(BUDGET_SLOTS, sizeof *d->orders_budget.slot);
    if (!d->readings_budget.slot || !d->orders_budget.slot) {
        free(d->readings_budget.slot);
        free(d->orders_budget.slot);
        free(d);
        return 1;
    }
    d->drop_why = "";
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
    if (settle_setup(d) != 0 || metrics_setup(d) != 0)
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
    if (cfg->cluster_on) {
        ctl_cluster_fsm fsm = {cluster_apply, cluster_restored, d};
        char cerr[512] = "";
        if (ctl_cluster_open(&cfg->cluster, ctl_store_db(d->store), &fsm, &d->log, &d->cluster,
                             cerr, sizeof cerr) != CTL_CLUSTER_OK) {
            ctl_logf(&d->log, CTL_LOG_ERROR, "%s", cerr);
            goto out;
        }
        d->clear_proposed = d->last_cleared;
        d->settle_proposed = INT64_MIN;
        if (d->settler) /* the outbox's decisions through the log (settle_daemon.h) */
            ctl_settler_solana_replicate(d->settler, propose_solana, d);
    }
    /* catch up before taking orders: intervals whose gate closed while down are cleared with
     * the orders they had (in a cluster, the leader proposes them once elected) */
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
    if (d->settler && cfg->n_witness &&
        (snprintf(filter, sizeof filter, "mgx/v1/%s/ledger/cosigned/+", cfg->community) >=
             (int)sizeof filter ||
         bus_subscribe(d->bus, filter, 1) != BUS_OK)) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "bus: cannot subscribe to witnesses");
        goto out;
    }
    if (d->cluster && d->settler && cfg->n_witness &&
        (snprintf(filter, sizeof filter, "mgx/v1/%s/ledger/witnessed", cfg->community) >=
             (int)sizeof filter ||
         bus_subscribe(d->bus, filter, 1) != BUS_OK)) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "bus: cannot subscribe to the witnessed checkpoint");
        goto out;
    }
    ctl_service svc;
    ctl_service_init(&svc);
    if (ctl_service_notify(&svc, "READY=1") != 0)
        ctl_logf(&d->log, CTL_LOG_WARN, "service manager: cannot notify %s: %s", svc.path,
                 strerror(errno));
    while (!*stop) {
        bus_loop(d->bus, wait_ms(d));
        if (d->cluster && cluster_tick(d) != 0)
            break;
        drain_orders(d);
        flush_orders(d); /* before clearing: every order taken so far counts */
        clear_due(d);
        if (d->republish && bus_connected(d->bus) && leads(d))
            republish(d);
        settle_due(d);
        publish_witnessed(d);
        if (d->cluster && d->cosig_resubscribe && ctl_cluster_is_leader(d->cluster) &&
            bus_connected(d->bus))
            cosig_subscribe(d);
        if (!d->cluster) /* thinning is a write outside the log: not replicated yet */
            retain_due(d);
        log_drops(d, 0);
        log_order_drops(d, 0);
        metrics_tick(d);
        ctl_service_tick(&svc, ctl_wall_ms());
    }
    ctl_service_notify(&svc, "STOPPING=1");
    flush_orders(d);
    log_drops(d, 1);
    log_order_drops(d, 1);
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
             "stored, %llu rejected, %llu refused (%llu future, %llu late, %llu over budget)",
             (unsigned long long)d->orders_in, (unsigned long long)st.batches, st.largest_batch,
             (unsigned long long)d->receipts_out, (unsigned long long)d->readings_in,
             (unsigned long long)d->readings_bad,
             (unsigned long long)(d->readings_future + d->readings_late + d->readings_flood),
             (unsigned long long)d->readings_future, (unsigned long long)d->readings_late,
             (unsigned long long)d->readings_flood);
    if (d->cfg->n_witness)
        ctl_logf(&d->log, CTL_LOG_INFO,
                 "witness cosignatures: %llu kept, %llu known already, %llu refused",
                 (unsigned long long)d->cosigs[1 - CTL_COSIG_STORED],
                 (unsigned long long)d->cosigs[1 - CTL_COSIG_UNCHANGED],
                 (unsigned long long)(d->cosigs[1 - CTL_COSIG_E_MALFORMED] +
                                      d->cosigs[1 - CTL_COSIG_E_UNKNOWN] +
                                      d->cosigs[1 - CTL_COSIG_E_FORK] +
                                      d->cosigs[1 - CTL_COSIG_E_NO_WITNESS] +
                                      d->cosigs[1 - CTL_COSIG_E_DB]));
    if (d->readings_thinned)
        ctl_logf(&d->log, CTL_LOG_INFO, "reading retention deleted %llu readings",
                 (unsigned long long)d->readings_thinned);
    if (d->cluster) {
        ctl_cluster_status cs;
        ctl_cluster_get_status(d->cluster, &cs);
        ctl_logf(&d->log, CTL_LOG_INFO,
                 "cluster: %llu entries' chains compared with the leader's, %llu not comparable; "
                 "libraft guard: %llu commit indexes and %llu match reports lowered, %llu ticks "
                 "and %llu vote requests held while installing a snapshot, %llu replies to no "
                 "known leader dropped",
                 (unsigned long long)cs.chain_checked, (unsigned long long)cs.chain_unchecked,
                 (unsigned long long)cs.commit_clamped, (unsigned long long)cs.match_clamped,
                 (unsigned long long)cs.install_ticks, (unsigned long long)cs.install_votes,
                 (unsigned long long)cs.unaddressed);
    }
    bus_stop(d->bus, 2000);
    status = d->cluster_failed ? 1 : 0;
out:
    ctl_cluster_close(d->cluster);
    ctl_rep_buf_free(&d->rep_orders);
    free(d->witnessed_seen);
    ctl_ingest_free(d->ingest);
    bus_free(d->bus);
    ctl_metrics_server_free(d->metrics);
    ctl_cm_free(d->cm);
    free(d->page);
    ctl_settler_free(d->settler);
    ctl_store_free(d->store);
    free(d->readings_budget.slot);
    free(d->orders_budget.slot);
    free(d);
    return status;
}
