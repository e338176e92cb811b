/*
 * Internal: what `mgx controller` counts for its metrics page, and the page itself (Prometheus
 * text format; docs/operations.md lists every metric, docs/grafana/mgx-controller.json draws
 * them). The daemon's loop calls the ctl_cm_* counters as things happen and renders the page
 * every couple of seconds with a snapshot of its state; nothing here does I/O or reads a clock.
 *
 * Per-meter series are bounded: the first CTL_CM_MAX_METERS meter ids get their own series,
 * later ones are summed under meter="_other" (a hostile flood of invented meter ids cannot
 * grow the page or the memory without bound).
 *
 * Ownership: the daemon owns one ctl_controller_metrics (ctl_cm_new/ctl_cm_free); one thread.
 * The counting functions take NULL (metrics off) and do nothing.
 */
#ifndef MGX_CTL_CONTROLLER_METRICS_H
#define MGX_CTL_CONTROLLER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define CTL_CM_MAX_METERS 4096

typedef enum {
    CTL_CM_READING_GOOD = 0,
    CTL_CM_READING_FLAGGED = 1,
    CTL_CM_READING_REJECTED = 2
} ctl_cm_quality;

typedef struct ctl_controller_metrics ctl_controller_metrics;

ctl_controller_metrics *ctl_cm_new(void);
void ctl_cm_free(ctl_controller_metrics *m);

/* An order's decision (ctl_reason of orders/order_msg.h); stored == 0: not stored (resend). */
void ctl_cm_order(ctl_controller_metrics *m, int reason, int stored);
/* A reading of meter_id: good, flagged by its quality bits, or rejected (did not decode). */
void ctl_cm_reading(ctl_controller_metrics *m, const char *meter_id, ctl_cm_quality outcome);
/* One interval cleared / one settlement pass that settled something, taking ms. */
void ctl_cm_clearing(ctl_controller_metrics *m, int64_t ms);
void ctl_cm_settling(ctl_controller_metrics *m, int64_t ms);

/* The daemon's state at render time. */
typedef struct {
    int broker_connected;
    uint64_t orders_in, receipts_out, readings_stored;
    int64_t start_time_s;
    int64_t current_interval; /* the interval now running */
    int64_t last_cleared;     /* INT64_MIN: none */
    int settlement_on;
    int64_t last_settled;          /* INT64_MIN: none */
    unsigned publications_pending; /* intervals whose results await the broker's ack */
    int solana_on;
    size_t solana[4]; /* by ctl_sol_outbox_state */
} ctl_cm_state;

/* Writes the page into buf (cap bytes, NUL-terminated) and returns its length; a page that
 * does not fit is cut at a whole line and *overflow (if not NULL) set. */
size_t ctl_cm_render(const ctl_controller_metrics *m, const ctl_cm_state *s, char *buf, size_t cap,
                     int *overflow);

#endif
