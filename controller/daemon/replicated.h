/*
 * Internal: the payloads of the controller's replicated log entries (cluster/cluster.h,
 * docs/cluster.md), so that every node applies exactly the bytes and times the leader took:
 *  - ORDERS: the batch of order messages as they arrived (topic participant, verbatim payload,
 *    arrival time); every node admits, verifies and stores them with the same ingest code;
 *  - READINGS: the decoded readings of a loop pass, each with its attestation tier (decided by
 *    the leader, which checked the signatures), and their arrival time;
 *  - CLEAR: an interval id and the leader's time of the decision;
 *  - PREFS: standing preferences (timing = ex_post) exactly as they arrived on pref/<home>,
 *    signed bytes and all, with their arrival time: every node judges and stores them with the
 *    same preference intake (orders/pref_ingest.h), as ORDERS does for orders;
 *  - COSIG: a witness's cosigned checkpoint note as it arrived on ledger/cosigned/<witness>:
 *    every node checks it against its own ledger and keeps the same cosignatures
 *    (settle/cosig_collect.h).
 * PREFS and COSIG are batches of messages in the ORDERS layout (ctl_rep_order_add and
 * ctl_rep_orders_each; the topic id is the home or the witness).
 * Integers are big-endian. Pure: no I/O.
 */
#ifndef MGX_CTL_REPLICATED_H
#define MGX_CTL_REPLICATED_H

#include "common/ident.h"
#include "mgx/meter.h"

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer (malloc'd; ctl_rep_buf_free). */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    size_t count; /* items in it */
} ctl_rep_buf;

void ctl_rep_buf_free(ctl_rep_buf *b);
void ctl_rep_buf_reset(ctl_rep_buf *b);

/* ORDERS, PREFS and COSIG: 0 or -1 (out of memory, or a field too long). */
int ctl_rep_order_add(ctl_rep_buf *b, const char *topic_participant, const char *payload,
                      size_t len, int64_t now_ms);
/* Calls fn for each message of an ORDERS, PREFS or COSIG payload; -1 when the payload is
 * malformed (then fn may have been called for the first ones). fn returning non-zero stops with
 * that value. */
typedef int (*ctl_rep_order_fn)(void *ctx, const char *topic_participant, const char *payload,
                                size_t len, int64_t now_ms);
int ctl_rep_orders_each(const uint8_t *p, size_t len, ctl_rep_order_fn fn, void *ctx);

/* READINGS: the whole batch at once. */
int ctl_rep_readings_encode(ctl_rep_buf *b, const mtr_sample *r, const int *tier, size_t n,
                            int64_t received_ms);
/* Decodes into r/tier (room for max); *n readings. -1 when malformed or more than max. */
int ctl_rep_readings_decode(const uint8_t *p, size_t len, mtr_sample *r, int *tier, size_t max,
                            size_t *n, int64_t *received_ms);

/* CLEAR: 16 bytes. */
void ctl_rep_clear_encode(uint8_t out[16], int64_t interval_id, int64_t now_ms);
int ctl_rep_clear_decode(const uint8_t *p, size_t len, int64_t *interval_id, int64_t *now_ms);

#endif
