/*
 * The controller's counters and its metrics page (controller_metrics.h). Meter ids are kept in
 * an open-addressing hash table of twice the bound, so a reading costs one hash and a probe or
 * two whatever the community's size.
 */
#include "daemon/controller_metrics.h"

#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "common/metrics.h"
#include "orders/order_msg.h"

#define SLOTS (2 * CTL_CM_MAX_METERS) /* a power of two */

typedef struct {
    char id[BUS_ID_MAX];
    uint64_t n[3]; /* by ctl_cm_reading */
} meter_count;

struct ctl_controller_metrics {
    uint64_t orders[CTL_R_COUNT];
    uint64_t orders_not_stored;
    meter_count *slots; /* SLOTS entries; id[0] == 0: empty */
    size_t n_meters;
    uint64_t other[3]; /* meters beyond the bound */
    uint64_t clearings, settlings;
    int64_t clearing_ms_sum, clearing_ms_last, settling_ms_sum, settling_ms_last;
};

ctl_controller_metrics *ctl_cm_new(void)
{
    ctl_controller_metrics *m = calloc(1, sizeof *m);
    if (m && !(m->slots = calloc(SLOTS, sizeof *m->slots))) {
        free(m);
        return NULL;
    }
    return m;
}

void ctl_cm_free(ctl_controller_metrics *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

void ctl_cm_order(ctl_controller_metrics *m, int reason, int stored)
{
    if (!m)
        return;
    if (!stored)
        m->orders_not_stored++;
    else if (reason >= 0 && reason < CTL_R_COUNT)
        m->orders[reason]++;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

void ctl_cm_reading(ctl_controller_metrics *m, const char *meter_id, ctl_cm_quality outcome)
{
    if (!m)
        return;
    if ((unsigned)outcome > CTL_CM_READING_REJECTED)
        return;
    size_t i = (size_t)(fnv1a(meter_id) & (SLOTS - 1));
    for (size_t probes = 0; probes < SLOTS; probes++, i = (i + 1) & (SLOTS - 1)) {
        meter_count *c = &m->slots[i];
        if (c->id[0] && strcmp(c->id, meter_id) == 0) {
            c->n[outcome]++;
            return;
        }
        if (!c->id[0]) {
            if (m->n_meters >= CTL_CM_MAX_METERS || strlen(meter_id) >= sizeof c->id)
                break;
            strcpy(c->id, meter_id);
            m->n_meters++;
            c->n[outcome]++;
            return;
        }
    }
    m->other[outcome]++;
}

void ctl_cm_clearing(ctl_controller_metrics *m, int64_t ms)
{
    if (!m)
        return;
    m->clearings++;
    m->clearing_ms_sum += ms;
    m->clearing_ms_last = ms;
}

void ctl_cm_settling(ctl_controller_metrics *m, int64_t ms)
{
    if (!m)
        return;
    m->settlings++;
    m->settling_ms_sum += ms;
    m->settling_ms_last = ms;
}

static void render_orders(ctl_expo *e, const ctl_controller_metrics *m, const ctl_cm_state *s)
{
    ctl_expo_family(e, "mgx_controller_orders_received_total", "counter",
                    "Order messages taken from the bus, before any check.");
    ctl_expo_int(e, "mgx_controller_orders_received_total", NULL, NULL, NULL, NULL,
                 (int64_t)s->orders_in);
    ctl_expo_family(
        e, "mgx_controller_orders_total", "counter",
        "Orders decided and committed, by outcome and reason (docs/order-encoding.md).");
    for (int r = 0; r < CTL_R_COUNT; r++)
        ctl_expo_int(e, "mgx_controller_orders_total", "outcome",
                     ctl_reason_is_accept(r) ? "accepted" : "rejected", "reason",
                     ctl_reason_name(r), (int64_t)m->orders[r]);
    ctl_expo_family(e, "mgx_controller_orders_not_stored_total", "counter",
                    "Orders the database did not take (the home was told to resend).");
    ctl_expo_int(e, "mgx_controller_orders_not_stored_total", NULL, NULL, NULL, NULL,
                 (int64_t)m->orders_not_stored);
    ctl_expo_family(e, "mgx_controller_receipts_total", "counter", "Receipts published.");
    ctl_expo_int(e, "mgx_controller_receipts_total", NULL, NULL, NULL, NULL,
                 (int64_t)s->receipts_out);
}

static void render_readings(ctl_expo *e, const ctl_controller_metrics *m, const ctl_cm_state *s)
{
    static const char *const Q[3] = {"good", "flagged", "rejected"};
    ctl_expo_family(e, "mgx_controller_readings_total", "counter",
                    "Meter readings received, by meter and quality (rejected: did not decode).");
    for (size_t i = 0; i < SLOTS; i++)
        if (m->slots[i].id[0])
            for (int q = 0; q < 3; q++)
                ctl_expo_int(e, "mgx_controller_readings_total", "meter", m->slots[i].id, "quality",
                             Q[q], (int64_t)m->slots[i].n[q]);
    for (int q = 0; q < 3; q++)
        if (m->other[q])
            ctl_expo_int(e, "mgx_controller_readings_total", "meter", "_other", "quality", Q[q],
                         (int64_t)m->other[q]);
    ctl_expo_family(e, "mgx_controller_readings_stored_total", "counter",
                    "Readings written to the database (duplicates are not stored twice).");
    ctl_expo_int(e, "mgx_controller_readings_stored_total", NULL, NULL, NULL, NULL,
                 (int64_t)s->readings_stored);
}

static void gauge(ctl_expo *e, const char *name, const char *help, int64_t v)
{
    ctl_expo_family(e, name, "gauge", help);
    ctl_expo_int(e, name, NULL, NULL, NULL, NULL, v);
}

static void render_work(ctl_expo *e, const ctl_controller_metrics *m, const ctl_cm_state *s)
{
    ctl_expo_family(e, "mgx_controller_clearings_total", "counter", "Intervals cleared.");
    ctl_expo_int(e, "mgx_controller_clearings_total", NULL, NULL, NULL, NULL,
                 (int64_t)m->clearings);
    ctl_expo_family(e, "mgx_controller_clearing_seconds_total", "counter",
                    "Time spent clearing intervals (with clearings_total: the mean).");
    ctl_expo_ms_as_s(e, "mgx_controller_clearing_seconds_total", m->clearing_ms_sum);
    ctl_expo_family(e, "mgx_controller_clearing_last_seconds", "gauge",
                    "How long the last interval took to clear and store.");
    ctl_expo_ms_as_s(e, "mgx_controller_clearing_last_seconds", m->clearing_ms_last);
    ctl_expo_family(e, "mgx_controller_last_cleared_interval", "gauge",
                    "Id of the newest cleared interval.");
    if (s->last_cleared != INT64_MIN)
        ctl_expo_int(e, "mgx_controller_last_cleared_interval", NULL, NULL, NULL, NULL,
                     s->last_cleared);
    gauge(e, "mgx_controller_current_interval", "Id of the interval now running.",
          s->current_interval);
    gauge(e, "mgx_controller_publications_pending",
          "Cleared intervals whose results await the broker's acknowledgement.",
          s->publications_pending);
    /* settlement's families are always declared, their samples only while it is on, so a
     * dashboard finds them either way */
    int on = s->settlement_on;
    ctl_expo_family(e, "mgx_controller_settlements_total", "counter",
                    "Settlement passes that settled at least one interval.");
    if (on)
        ctl_expo_int(e, "mgx_controller_settlements_total", NULL, NULL, NULL, NULL,
                     (int64_t)m->settlings);
    ctl_expo_family(e, "mgx_controller_settlement_seconds_total", "counter",
                    "Time spent in those settlement passes.");
    if (on)
        ctl_expo_ms_as_s(e, "mgx_controller_settlement_seconds_total", m->settling_ms_sum);
    ctl_expo_family(e, "mgx_controller_settlement_last_seconds", "gauge",
                    "How long the last settlement pass took.");
    if (on)
        ctl_expo_ms_as_s(e, "mgx_controller_settlement_last_seconds", m->settling_ms_last);
    ctl_expo_family(e, "mgx_controller_last_settled_interval", "gauge",
                    "Id of the newest settled interval.");
    if (on && s->last_settled != INT64_MIN)
        ctl_expo_int(e, "mgx_controller_last_settled_interval", NULL, NULL, NULL, NULL,
                     s->last_settled);
    /* lag: intervals that have ended and are not settled (grace period included) */
    int64_t lag = s->last_settled == INT64_MIN ? 0 : s->current_interval - 1 - s->last_settled;
    ctl_expo_family(e, "mgx_controller_settlement_lag_intervals", "gauge",
                    "Ended intervals not settled yet (the grace period counts: 1-2 is normal).");
    if (on)
        ctl_expo_int(e, "mgx_controller_settlement_lag_intervals", NULL, NULL, NULL, NULL,
                     lag < 0 ? 0 : lag);
}

size_t ctl_cm_render(const ctl_controller_metrics *m, const ctl_cm_state *s, char *buf, size_t cap,
                     int *overflow)
{
    static const char *const SOL[4] = {"built", "submitted", "confirmed", "failed"};
    ctl_expo e;
    ctl_expo_init(&e, buf, cap);
    gauge(&e, "mgx_controller_start_time_seconds", "When the daemon started (Unix seconds).",
          s->start_time_s);
    gauge(&e, "mgx_controller_broker_connected", "1 while connected to the MQTT broker.",
          s->broker_connected ? 1 : 0);
    render_orders(&e, m, s);
    render_readings(&e, m, s);
    render_work(&e, m, s);
    ctl_expo_family(&e, "mgx_controller_solana_transactions", "gauge",
                    "Solana outbox transactions by state (no samples while Solana is off).");
    if (s->solana_on) {
        for (int i = 0; i < 4; i++)
            ctl_expo_int(&e, "mgx_controller_solana_transactions", "state", SOL[i], NULL, NULL,
                         (int64_t)s->solana[i]);
    }
    if (overflow)
        *overflow = e.overflow || e.invalid;
    return e.len;
}
