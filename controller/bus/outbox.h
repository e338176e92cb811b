/*
 * The reading outbox: a bounded FIFO of MQTT messages in its own SQLite file, so readings are
 * never silently lost while the broker is unreachable or the daemon restarts. Messages are
 * appended with outbox_push and leave only when the broker acknowledged them (deleted after
 * PUBACK) or when the full-policy drops them (counted and logged, never silently).
 *
 * outbox_pump drives the publishing through a bus_client: it keeps up to `window` messages in
 * flight, in id order; when the connection drops, whatever was not acknowledged is published
 * again from the oldest, so the broker sees every message in order (at-least-once: a message
 * in flight at the moment of a crash may arrive twice; consumers dedupe by meter and ts).
 *
 * Durability: WAL, synchronous=FULL, every write in BEGIN IMMEDIATE. The file is locked
 * exclusively while open, so two daemons cannot share one outbox. Acknowledged messages are
 * deleted in batches at the next pump; a crash in between republishes them once more.
 *
 * Threading: an outbox belongs to the thread that drives its bus_client.
 */
#ifndef MGX_CTL_OUTBOX_H
#define MGX_CTL_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"

enum {
    OUTBOX_OK = 0,
    OUTBOX_E_INVAL = -1,
    OUTBOX_E_DB = -2,    /* SQLite failed (disk full, I/O error, locked by another process) */
    OUTBOX_E_FULL = -3,  /* refuse_newest policy: some items were not accepted */
    OUTBOX_E_NOMEM = -4
};

const char *outbox_strerror(int code);

typedef enum {
    OUTBOX_DROP_OLDEST = 0, /* keep the newest readings: counters are cumulative */
    OUTBOX_REFUSE_NEWEST    /* keep the oldest: new messages are refused when full */
} outbox_policy;

typedef struct {
    const char *path;       /* SQLite file, created if missing */
    uint64_t max_messages;  /* bound; default 100000 */
    outbox_policy policy;
    unsigned window;        /* messages in flight; default 16, max 1024 */
    bus_log_fn log;         /* NULL: stderr */
    void *log_user;
} outbox_config;

typedef struct {
    const char *topic;
    const void *payload;
    size_t len; /* <= BUS_PAYLOAD_MAX */
    int qos;    /* 0 or 1 */
    bool retain;
} outbox_item;

typedef struct {
    uint64_t queued;       /* messages in the file now */
    uint64_t pushed;       /* accepted by outbox_push since open */
    uint64_t published;    /* acknowledged by the broker and deleted, since open */
    uint64_t dropped_full; /* drop_oldest: old messages deleted to make room, since open */
    uint64_t refused_full; /* refuse_newest: new messages not accepted, since open */
    uint64_t rejected;     /* refused by the broker (e.g. ACL) and deleted, since open */
    uint64_t resends;      /* times publishing restarted from the oldest after a loss */
} outbox_stats;

typedef struct outbox outbox;

/* Opens (creating) the outbox. On failure returns an error with the reason in err. */
int outbox_open(const outbox_config *cfg, outbox **out, char *err, size_t errlen);

/*
 * Appends n items in one transaction, stamped now_ms (Unix ms, kept for diagnostics). When
 * full, applies the policy per item. *accepted (may be NULL) receives how many were stored.
 * Returns OUTBOX_OK, OUTBOX_E_FULL (refuse_newest refused some), or OUTBOX_E_DB (nothing
 * stored; the transaction was rolled back).
 */
int outbox_push(outbox *ob, const outbox_item *items, size_t n, int64_t now_ms,
                size_t *accepted);

/*
 * Deletes what the broker acknowledged since the last call and publishes the next messages
 * while connected and the window has room. Call it after every bus_loop. Returns OUTBOX_OK or
 * OUTBOX_E_DB (the deletes are retried at the next call).
 */
int outbox_pump(outbox *ob, bus_client *bus);

/* Messages waiting (including those in flight). */
uint64_t outbox_count(const outbox *ob);
/* Messages published and not yet acknowledged. */
unsigned outbox_in_flight(const outbox *ob);
void outbox_stats_get(const outbox *ob, outbox_stats *out);

/* Closes the file. Messages in flight stay in the file and are published after reopening.
 * Call it only after the bus_client has delivered every outcome (bus_stop) or is freed. */
void outbox_close(outbox *ob);

#endif
