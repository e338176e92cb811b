/*
 * The one MQTT adapter of mgx: every daemon (meter reader, controller, home agent) talks to the
 * broker through a bus_client. It owns the connection and its life cycle (MQTT v5, last will,
 * retained online/offline status, "online" only once subscribed, reconnect with exponential
 * backoff and jitter, resubscribe after every reconnect) and reports each publish's fate
 * exactly once through a completion callback, so callers can keep a message until the broker
 * has acknowledged it.
 *
 * Topic builders for every mgx topic are here too; they are pure and check every level.
 *
 * Threading: a bus_client belongs to one thread. Nothing runs in the background: the owner
 * calls bus_loop() repeatedly, and every callback (message, connect/disconnect, publish
 * completion) runs inside bus_loop() on that thread. Callbacks may call bus_publish and
 * bus_subscribe, but never bus_stop or bus_free. Different clients in different threads are
 * independent (libmosquitto's library init is done once, thread-safely, by bus_new).
 *
 * Delivery rules, so the outbox and the controller can rely on them:
 *  - bus_publish accepts a message only while connected (else BUS_E_NOCONN); nothing is queued
 *    in memory across a reconnect.
 *  - For every accepted publish, `done` is called exactly once: BUS_OK when the broker
 *    acknowledged it (QoS 1: PUBACK with a success reason; QoS 0: written to the socket),
 *    BUS_E_DENIED when the broker refused it (MQTT v5 reason >= 0x80, e.g. not authorized),
 *    BUS_E_CONN_LOST when the connection dropped first. After CONN_LOST the message may or may
 *    not have reached the broker (at-least-once: resend it; consumers dedupe).
 *  - Messages of one client are sent in the order of the bus_publish calls.
 *  - Note (field-facts.md): libmosquitto acknowledges an incoming QoS 1 message before the
 *    message callback runs; a consumer that must not lose messages needs application receipts.
 */
#ifndef MGX_CTL_BUS_H
#define MGX_CTL_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

enum {
    BUS_OK = 0,
    BUS_E_INVAL = -1, /* bad argument, bad topic level, bad config value */
    BUS_E_NOMEM = -2,
    BUS_E_NOCONN = -3,    /* not connected to the broker right now */
    BUS_E_FULL = -4,      /* too many publishes awaiting acknowledgement (max_pending) */
    BUS_E_TOOLONG = -5,   /* a topic or payload does not fit its bound */
    BUS_E_TLS = -6,       /* TLS files or settings rejected */
    BUS_E_MOSQ = -7,      /* another libmosquitto error (the log line has details) */
    BUS_E_DENIED = -8,    /* the broker refused (not authorized, quota, bad topic...) */
    BUS_E_CONN_LOST = -9, /* the connection dropped before the broker acknowledged */
    BUS_E_REFUSED = -10,  /* CONNACK refused (bad credentials, not authorized, bad client id) */
    BUS_E_PAYLOAD = -11,  /* a payload failed to decode (payload.h) */
    BUS_E_TIMEOUT = -12
};

const char *bus_strerror(int code);

/* Bounds. Ids (community, meter, participant, client) are 1..63 bytes of [A-Za-z0-9_-]: the one
 * rule of ident.h (bus_id_valid is ctl_id_valid). */
#define BUS_ID_MAX      64
#define BUS_TOPIC_MAX   256
#define BUS_PAYLOAD_MAX 65536
#define BUS_MAX_SUBS    16

/* The levels and the callback are common/log.h's: a daemon passes ctl_log_sink and its ctl_log. */
enum {
    BUS_LOG_ERROR = CTL_LOG_ERROR,
    BUS_LOG_WARN = CTL_LOG_WARN,
    BUS_LOG_INFO = CTL_LOG_INFO,
    BUS_LOG_DEBUG = CTL_LOG_DEBUG
};
typedef ctl_log_fn bus_log_fn;

typedef struct {
    const char *host;      /* broker host name or address; default "127.0.0.1" */
    int port;              /* default 1883, or 8883 when tls_ca is set */
    const char *client_id; /* required; also names the status topic */
    const char *status_owner; /* NULL or "": status topic status/<client_id>; else
                               * status/<status_owner>/<client_id>, under a home's own level
                               * (the ACL lets the home and its read-only Home Assistant login
                               * use status/<home>/#) */
    const char *community; /* required; topics live under mgx/v1/<community>/ */
    const char *username;  /* NULL: none */
    const char *password;  /* NULL: none; copied into locked memory and wiped on free */
    const char *tls_ca;    /* CA file; non-NULL turns TLS on */
    const char *tls_cert;  /* client certificate and key (both or neither) */
    const char *tls_key;
    int keepalive_s;      /* default 30 */
    int backoff_min_ms;   /* first reconnect delay; default 500 */
    int backoff_max_ms;   /* delays double up to this; default 30000 */
    unsigned max_pending; /* publishes awaiting acknowledgement; default 1024 */
    bus_log_fn log;       /* NULL: lines "mgx bus LEVEL: ..." on stderr (common/log.h) */
    void *log_user;       /* passed to log; NULL: the user given to bus_new */
    int log_level;        /* highest level passed to log; default BUS_LOG_INFO */
    bool probe;           /* a connectivity check (mgx doctor): no status topic, no last
                           * will, so it leaves nothing retained on the broker */
} bus_config;

/* One incoming message, valid only during the callback. payload is NUL-terminated for
 * convenience (payload[len] == 0) but may contain NUL bytes before len. */
typedef struct {
    const char *topic;
    const char *payload;
    size_t len;
    int qos;
    bool retain;
} bus_message;

typedef void (*bus_message_fn)(void *user, const bus_message *msg);
/*
 * connected = true after a successful CONNACK, with the subscriptions renewed (sent), and
 * always before the first on_message of that connection; false when a connection was lost or
 * refused (reason: BUS_E_CONN_LOST or BUS_E_REFUSED). The retained "online" status is
 * published only once the broker has acknowledged every subscription of the connection
 * (including those made inside this callback): a peer that sees "online" and publishes at
 * once reaches this client.
 */
typedef void (*bus_state_fn)(void *user, bool connected, int reason);
/* The fate of one publish (see the delivery rules above). */
typedef void (*bus_done_fn)(void *arg, int status);

typedef struct bus_client bus_client;

/*
 * Checks cfg and creates a client (not connected yet). All strings are copied. user is passed
 * to on_message and on_state (either may be NULL). On failure returns NULL and stores the code
 * in *err (if err is non-NULL) with a log line saying why.
 */
bus_client *bus_new(const bus_config *cfg, bus_message_fn on_message, bus_state_fn on_state,
                    void *user, int *err);

/* Starts connecting; returns at once (the connection completes inside bus_loop). A failed
 * attempt is retried with backoff by bus_loop, so this fails only on bad settings. */
int bus_start(bus_client *c);

/*
 * Runs network I/O, callbacks, keepalives and due reconnect attempts for up to timeout_ms
 * (0: only what is ready now). Returns BUS_OK, or an error for a bad client; connection
 * problems are not errors here (they are logged and retried).
 */
int bus_loop(bus_client *c, int timeout_ms);

bool bus_connected(const bus_client *c);

/*
 * Subscribes to a topic filter now (if connected) and again after every reconnect. Up to
 * BUS_MAX_SUBS filters; qos 0 or 1. A broker that refuses a filter is logged as an error.
 */
int bus_subscribe(bus_client *c, const char *filter, int qos);

/*
 * Publishes len bytes (<= BUS_PAYLOAD_MAX) with qos 0 or 1. done (may be NULL) gets arg and
 * the outcome exactly once, inside a later bus_loop. Returns BUS_OK (accepted) or BUS_E_NOCONN,
 * BUS_E_FULL, BUS_E_INVAL, BUS_E_TOOLONG, BUS_E_MOSQ; when it returns an error, done is never
 * called.
 */
int bus_publish(bus_client *c, const char *topic, const void *payload, size_t len, int qos,
                bool retain, bus_done_fn done, void *arg);

/*
 * bus_publish with an MQTT v5 message expiry interval: the broker drops the message, a
 * retained one included, expiry_s seconds after it received it (a subscriber that gets it
 * later sees the time left); 0 means no expiry, as bus_publish. Retained messages without an
 * expiry stay on the broker (and in its persistence file) forever.
 */
int bus_publish_expiring(bus_client *c, const char *topic, const void *payload, size_t len,
                         int qos, bool retain, uint32_t expiry_s, bus_done_fn done, void *arg);

/* Number of accepted publishes still awaiting their outcome. */
unsigned bus_pending(const bus_client *c);

/* The status topic of this client (mgx/v1/<community>/status/[<status_owner>/]<client_id>). */
const char *bus_status_topic(const bus_client *c);

/*
 * Clean shutdown: publishes the retained "offline" status (a clean disconnect does not fire
 * the last will), waits up to timeout_ms for its acknowledgement and for pending publishes,
 * then disconnects. Pending publishes not acknowledged by then get BUS_E_CONN_LOST.
 */
int bus_stop(bus_client *c, int timeout_ms);

/* Frees the client (disconnecting abruptly if bus_stop was not called: the will fires). */
void bus_free(bus_client *c);

/* ---- topic builders (pure) ----
 * Each writes a NUL-terminated topic into buf (size len) and returns BUS_OK, BUS_E_INVAL if an
 * id is not 1..63 bytes of [A-Za-z0-9_-], or BUS_E_TOOLONG. */

bool bus_id_valid(const char *id);

/* mgx/v1/<community>/meter/<meter_id>/state */
int bus_topic_meter_state(char *buf, size_t len, const char *community, const char *meter_id);
/* mgx/v1/<community>/meter/<meter_id>/meta */
int bus_topic_meter_meta(char *buf, size_t len, const char *community, const char *meter_id);
/* mgx/v1/<community>/status/<client_id> */
int bus_topic_status(char *buf, size_t len, const char *community, const char *client_id);
/* mgx/v1/<community>/order/<participant_id> */
int bus_topic_order(char *buf, size_t len, const char *community, const char *participant_id);
/* mgx/v1/<community>/pref/<participant_id>: standing preferences (timing = ex_post) */
int bus_topic_pref(char *buf, size_t len, const char *community, const char *participant_id);
/* mgx/v1/<community>/receipt/<participant_id> */
int bus_topic_receipt(char *buf, size_t len, const char *community, const char *participant_id);
/* mgx/v1/<community>/trades/<participant_id> */
int bus_topic_trades(char *buf, size_t len, const char *community, const char *participant_id);
/* mgx/v1/<community>/market/<interval_id>/result (interval_id >= 0, decimal) */
int bus_topic_market_result(char *buf, size_t len, const char *community, int64_t interval_id);
/* mgx/v1/<community>/<kind>/+ style filters: kind is "meter", "order", "receipt", ...;
 * leaf may be NULL. E.g. ("meter", "state") -> mgx/v1/<community>/meter/+/state. */
int bus_filter_all(char *buf, size_t len, const char *community, const char *kind,
                   const char *leaf);

/*
 * Splits a topic mgx/v1/<community>/<kind>/<id>[/<leaf>] into its levels, each copied into a
 * BUS_ID_MAX buffer (leaf = "" when absent). Returns BUS_OK, or BUS_E_INVAL (all parts "")
 * when the topic does not have that shape or a level is not 1..63 of [A-Za-z0-9_-].
 */
int bus_topic_parse(const char *topic, char community[BUS_ID_MAX], char kind[BUS_ID_MAX],
                    char id[BUS_ID_MAX], char leaf[BUS_ID_MAX]);

#endif
