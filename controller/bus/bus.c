/*
 * The MQTT adapter over libmosquitto (see bus.h for the contract).
 *
 * Every connection attempt starts from a freshly reinitialised libmosquitto handle, so no
 * message libmosquitto queued for an old connection is ever resent behind our back: what was
 * not acknowledged is reported BUS_E_CONN_LOST and the caller (the outbox) resends it in order.
 * Publish outcomes are collected in a pending table keyed by message id and delivered from a
 * completion queue at the end of bus_loop, never from inside a libmosquitto call.
 */
#define _POSIX_C_SOURCE 200809L
#include "bus/bus.h"
#include "common/ident.h"
#include "mgx/meter.h"

#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUS_PENDING_LIMIT      32768u /* below half the 16-bit message id space */
#define BUS_CONNECT_TIMEOUT_MS 15000

typedef struct {
    int mid; /* 0: free slot */
    bus_done_fn done;
    void *arg;
} pending;

typedef struct {
    bus_done_fn done;
    void *arg;
    int status;
} completion;

typedef struct {
    char filter[BUS_TOPIC_MAX];
    int qos;
} subscription;

enum link_state { LINK_IDLE, LINK_CONNECTING, LINK_UP, LINK_STOPPED };

struct bus_client {
    struct mosquitto *mosq;
    char *host;
    int port;
    char client_id[BUS_ID_MAX];
    char community[BUS_ID_MAX];
    char *username;
    char *password; /* sodium_malloc'd, wiped on free */
    char *tls_ca, *tls_cert, *tls_key;
    int keepalive_s;
    int backoff_min_ms, backoff_max_ms, backoff_ms;
    ctl_log log; /* "bus" on stderr, or the config's callback */
    void *user;
    bus_message_fn on_message;
    bus_state_fn on_state;

    enum link_state state;
    int64_t next_attempt_ms; /* monotonic time of the next connect attempt */
    int64_t attempt_start_ms;
    char status_topic[BUS_TOPIC_MAX];

    pending *table; /* open addressing, linear probing, capacity table_cap (power of 2) */
    unsigned table_cap, table_used;
    completion *queue; /* ring of max_pending */
    unsigned queue_cap, queue_head, queue_len;
    unsigned max_pending;

    /* A QoS 0 publish can complete inside mosquitto_publish_v5, before we know to expect it. */
    int publishing_mid;
    bool early_done;
    int early_status;

    subscription subs[BUS_MAX_SUBS];
    unsigned n_subs;
    /* This connection's SUBSCRIBEs not yet acknowledged; "online" waits for them. */
    int suback_mids[BUS_MAX_SUBS];
    unsigned n_suback_waiting;
    bool announced; /* "online" published on this connection */
    bool probe;     /* bus_config.probe: no status, no will */
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;

static void lib_init(void)
{
    lib_rc = mosquitto_lib_init();
    if (lib_rc == MOSQ_ERR_SUCCESS && sodium_init() < 0)
        lib_rc = MOSQ_ERR_UNKNOWN;
}

const char *bus_strerror(int code)
{
    switch (code) {
    case BUS_OK:
        return "success";
    case BUS_E_INVAL:
        return "invalid argument";
    case BUS_E_NOMEM:
        return "out of memory";
    case BUS_E_NOCONN:
        return "not connected to the broker";
    case BUS_E_FULL:
        return "too many messages awaiting acknowledgement";
    case BUS_E_TOOLONG:
        return "topic or payload too long";
    case BUS_E_TLS:
        return "TLS settings rejected";
    case BUS_E_MOSQ:
        return "MQTT library error";
    case BUS_E_DENIED:
        return "refused by the broker";
    case BUS_E_CONN_LOST:
        return "connection lost before acknowledgement";
    case BUS_E_REFUSED:
        return "connection refused by the broker";
    case BUS_E_PAYLOAD:
        return "malformed payload";
    case BUS_E_TIMEOUT:
        return "timed out";
    default:
        return "unknown error";
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- pending table and completion queue ---- */

static unsigned slot_of(const bus_client *c, int mid)
{
    return ((unsigned)mid * 2654435761u) & (c->table_cap - 1);
}

static bool table_insert(bus_client *c, int mid, bus_done_fn done, void *arg)
{
    if (c->table_used + 1 > c->table_cap / 2)
        return false;
    unsigned i = slot_of(c, mid);
    while (c->table[i].mid != 0)
        i = (i + 1) & (c->table_cap - 1);
    c->table[i] = (pending){mid, done, arg};
    c->table_used++;
    return true;
}

/* Removes mid; returns false if it was not pending. Backward-shift deletion keeps probing valid. */
static bool table_take(bus_client *c, int mid, pending *out)
{
    unsigned mask = c->table_cap - 1, i = slot_of(c, mid);
    while (c->table[i].mid != mid) {
        if (c->table[i].mid == 0)
            return false;
        i = (i + 1) & mask;
    }
    *out = c->table[i];
    for (unsigned j = i;;) {
        j = (j + 1) & mask;
        if (c->table[j].mid == 0)
            break;
        unsigned home = slot_of(c, c->table[j].mid);
        /* entry j may move to hole i if its home is not in the cyclic range (i, j] */
        bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            c->table[i] = c->table[j];
            i = j;
        }
    }
    c->table[i].mid = 0;
    c->table_used--;
    return true;
}

static void queue_push(bus_client *c, bus_done_fn done, void *arg, int status)
{
    /* bus_publish admits at most max_pending undelivered outcomes, so this never overflows */
    if (!done || c->queue_len == c->queue_cap)
        return;
    c->queue[(c->queue_head + c->queue_len) % c->queue_cap] = (completion){done, arg, status};
    c->queue_len++;
}

static void deliver_completions(bus_client *c)
{
    while (c->queue_len > 0) {
        completion k = c->queue[c->queue_head];
        c->queue_head = (c->queue_head + 1) % c->queue_cap;
        c->queue_len--;
        k.done(k.arg, k.status);
    }
}

static void fail_all_pending(bus_client *c)
{
    for (unsigned i = 0; i < c->table_cap; i++) {
        if (c->table[i].mid != 0) {
            queue_push(c, c->table[i].done, c->table[i].arg, BUS_E_CONN_LOST);
            c->table[i].mid = 0;
        }
    }
    c->table_used = 0;
}

/* ---- connection life cycle ---- */

static void schedule_retry(bus_client *c)
{
    /* Full jitter over [backoff/2, backoff] so a community of daemons does not reconnect in
     * lockstep after a broker restart. */
    int half = c->backoff_ms / 2;
    int delay = half + (int)randombytes_uniform((uint32_t)(c->backoff_ms - half) + 1u);
    c->next_attempt_ms = now_ms() + delay;
    c->backoff_ms = c->backoff_ms > c->backoff_max_ms / 2 ? c->backoff_max_ms : c->backoff_ms * 2;
    ctl_logf(&c->log, CTL_LOG_INFO, "reconnecting to %s:%d in %d ms", c->host, c->port, delay);
}

static void link_lost(bus_client *c, int reason)
{
    if (c->state != LINK_UP && c->state != LINK_CONNECTING)
        return;
    bool was_up = c->state == LINK_UP;
    c->state = LINK_IDLE;
    fail_all_pending(c);
    if (was_up)
        ctl_logf(&c->log, CTL_LOG_WARN, "connection to %s:%d lost", c->host, c->port);
    schedule_retry(c);
    if (c->on_state)
        c->on_state(c->user, false, reason);
}

/*
 * The retained "online" status tells peers this client is ready: a peer that publishes to us
 * the moment it sees it must find our subscriptions in place. So it goes out only after the
 * broker acknowledged every SUBSCRIBE of this connection (a SUBACK means the subscription is
 * active, on any broker, clustered ones included).
 */
static void announce(bus_client *c)
{
    if (c->announced || c->state != LINK_UP)
        return;
    c->announced = true;
    if (c->probe)
        return;
    int prc = mosquitto_publish_v5(c->mosq, NULL, c->status_topic, 6, "online", 1, true, NULL);
    if (prc != MOSQ_ERR_SUCCESS)
        ctl_logf(&c->log, CTL_LOG_WARN, "cannot publish online status: %s",
                 mosquitto_strerror(prc));
}

/* Sends one SUBSCRIBE; before the announcement its SUBACK is awaited. */
static int send_subscription(bus_client *c, const char *filter, int qos)
{
    int mid = 0;
    int rc = mosquitto_subscribe_v5(c->mosq, &mid, filter, qos, 0, NULL);
    if (rc == MOSQ_ERR_SUCCESS && !c->announced && c->n_suback_waiting < BUS_MAX_SUBS)
        c->suback_mids[c->n_suback_waiting++] = mid;
    return rc;
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    (void)m;
    (void)flags;
    (void)props;
    bus_client *c = obj;
    if (rc != 0) {
        ctl_logf(&c->log, CTL_LOG_ERROR, "broker %s:%d refused the connection: %s", c->host,
                 c->port, mosquitto_reason_string(rc));
        link_lost(c, BUS_E_REFUSED);
        return;
    }
    c->state = LINK_UP;
    c->backoff_ms = c->backoff_min_ms;
    ctl_logf(&c->log, CTL_LOG_INFO, "connected to %s:%d as %s", c->host, c->port, c->client_id);
    c->announced = false;
    c->n_suback_waiting = 0;
    for (unsigned i = 0; i < c->n_subs; i++) {
        int src = send_subscription(c, c->subs[i].filter, c->subs[i].qos);
        if (src != MOSQ_ERR_SUCCESS)
            ctl_logf(&c->log, CTL_LOG_ERROR, "cannot subscribe to %s: %s", c->subs[i].filter,
                     mosquitto_strerror(src));
    }
    /* before any message of this connection can arrive; subscriptions the owner adds here
     * are awaited by the announcement too */
    if (c->on_state)
        c->on_state(c->user, true, BUS_OK);
    if (c->n_suback_waiting == 0)
        announce(c);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
    (void)m;
    (void)props;
    bus_client *c = obj;
    if (c->state == LINK_UP || c->state == LINK_CONNECTING)
        ctl_logf(&c->log, CTL_LOG_DEBUG, "disconnected: %s", mosquitto_reason_string(rc));
    link_lost(c, BUS_E_CONN_LOST);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
    (void)m;
    (void)props;
    bus_client *c = obj;
    int status = reason < 0x80 ? BUS_OK : BUS_E_DENIED;
    if (status != BUS_OK)
        ctl_logf(&c->log, CTL_LOG_ERROR, "broker refused message %d: %s", mid,
                 mosquitto_reason_string(reason));
    pending p;
    if (table_take(c, mid, &p)) {
        queue_push(c, p.done, p.arg, status);
    } else if (mid == c->publishing_mid) {
        c->early_done = true;
        c->early_status = status;
    }
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted,
                         const mosquitto_property *props)
{
    (void)m;
    (void)props;
    bus_client *c = obj;
    for (int i = 0; i < n; i++)
        if (granted[i] >= 0x80)
            ctl_logf(&c->log, CTL_LOG_ERROR, "broker refused a subscription: %s",
                     mosquitto_reason_string(granted[i]));
    /* a refused filter is answered too: announce anyway (the error is logged) */
    for (unsigned i = 0; i < c->n_suback_waiting; i++)
        if (c->suback_mids[i] == mid) {
            c->suback_mids[i] = c->suback_mids[--c->n_suback_waiting];
            if (c->n_suback_waiting == 0)
                announce(c);
            break;
        }
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    (void)m;
    (void)props;
    bus_client *c = obj;
    if (!c->on_message || msg->payloadlen < 0)
        return;
    /* libmosquitto stores payloads with a trailing NUL byte, as bus_message promises */
    static const char empty[1] = "";
    bus_message bm = {.topic = msg->topic,
                      .payload = msg->payload ? msg->payload : empty,
                      .len = (size_t)msg->payloadlen,
                      .qos = msg->qos,
                      .retain = msg->retain};
    c->on_message(c->user, &bm);
}

/* Applies every setting to a fresh (or freshly reinitialised) handle. */
static int configure(bus_client *c)
{
    struct mosquitto *m = c->mosq;
    int rc = mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    if (rc == MOSQ_ERR_SUCCESS && !c->probe)
        rc = mosquitto_will_set_v5(m, c->status_topic, 7, "offline", 1, true, NULL);
    if (rc == MOSQ_ERR_SUCCESS && c->username)
        rc = mosquitto_username_pw_set(m, c->username, c->password);
    if (rc != MOSQ_ERR_SUCCESS) {
        ctl_logf(&c->log, CTL_LOG_ERROR, "cannot configure the MQTT client: %s",
                 mosquitto_strerror(rc));
        return BUS_E_MOSQ;
    }
    if (c->tls_ca) {
        rc = mosquitto_tls_set(m, c->tls_ca, NULL, c->tls_cert, c->tls_key, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            ctl_logf(&c->log, CTL_LOG_ERROR, "TLS files rejected (ca %s, cert %s, key %s): %s",
                     c->tls_ca, c->tls_cert ? c->tls_cert : "-", c->tls_key ? c->tls_key : "-",
                     mosquitto_strerror(rc));
            return BUS_E_TLS;
        }
    }
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_disconnect_v5_callback_set(m, on_disconnect);
    mosquitto_publish_v5_callback_set(m, on_publish);
    mosquitto_subscribe_v5_callback_set(m, on_subscribe);
    mosquitto_message_v5_callback_set(m, on_message);
    return BUS_OK;
}

static void attempt_connect(bus_client *c)
{
    /* A clean handle per attempt: nothing of the old connection is replayed. */
    if (mosquitto_reinitialise(c->mosq, c->client_id, true, c) != MOSQ_ERR_SUCCESS ||
        configure(c) != BUS_OK) {
        c->state = LINK_CONNECTING; /* so link_lost schedules the retry */
        link_lost(c, BUS_E_MOSQ);
        return;
    }
    c->state = LINK_CONNECTING;
    c->attempt_start_ms = now_ms();
    int rc = mosquitto_connect_async(c->mosq, c->host, c->port, c->keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS) {
        ctl_logf(&c->log, CTL_LOG_WARN, "cannot connect to %s:%d: %s", c->host, c->port,
                 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        link_lost(c, BUS_E_CONN_LOST);
    }
}

/* ---- public API ---- */

static char *dup_opt(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

static int topic3(char *buf, size_t len, const char *community, const char *kind,
                  const char *id, const char *leaf);

static int check_config(const bus_config *cfg)
{
    if (!cfg || !bus_id_valid(cfg->client_id) || !bus_id_valid(cfg->community))
        return BUS_E_INVAL;
    if (cfg->port < 0 || cfg->port > 65535 || cfg->keepalive_s < 0 || cfg->keepalive_s > 65535 ||
        cfg->backoff_min_ms < 0 || cfg->backoff_max_ms < 0 || cfg->max_pending > BUS_PENDING_LIMIT)
        return BUS_E_INVAL;
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
        return BUS_E_INVAL;
    if ((cfg->tls_cert || cfg->tls_key) && !cfg->tls_ca)
        return BUS_E_INVAL;
    if (cfg->password && !cfg->username)
        return BUS_E_INVAL;
    if (cfg->status_owner && cfg->status_owner[0] && !bus_id_valid(cfg->status_owner))
        return BUS_E_INVAL;
    return BUS_OK;
}

bus_client *bus_new(const bus_config *cfg, bus_message_fn on_msg, bus_state_fn on_state, void *user,
                    int *err)
{
    int rc = BUS_E_NOMEM;
    bus_client *c = NULL;
    pthread_once(&lib_once, lib_init);
    if (lib_rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mgx bus error: cannot initialise libmosquitto/libsodium\n");
        rc = BUS_E_MOSQ;
        goto out;
    }
    rc = check_config(cfg);
    if (rc != BUS_OK) {
        fprintf(stderr, "mgx bus error: invalid bus settings (client id and community must be "
                        "1-63 of [A-Za-z0-9_-]; TLS cert and key go together and need a CA; "
                        "a password needs a user name)\n");
        goto out;
    }
    rc = BUS_E_NOMEM;
    c = calloc(1, sizeof *c);
    if (!c)
        goto out;
    bool ok = true;
    c->host = dup_opt(cfg->host ? cfg->host : "127.0.0.1", &ok);
    c->username = dup_opt(cfg->username, &ok);
    c->tls_ca = dup_opt(cfg->tls_ca, &ok);
    c->tls_cert = dup_opt(cfg->tls_cert, &ok);
    c->tls_key = dup_opt(cfg->tls_key, &ok);
    if (!ok)
        goto out;
    if (cfg->password) {
        size_t n = strlen(cfg->password) + 1;
        c->password = sodium_malloc(n);
        if (!c->password)
            goto out;
        memcpy(c->password, cfg->password, n);
    }
    snprintf(c->client_id, sizeof c->client_id, "%s", cfg->client_id);
    snprintf(c->community, sizeof c->community, "%s", cfg->community);
    if (cfg->status_owner && cfg->status_owner[0]) {
        if (topic3(c->status_topic, sizeof c->status_topic, c->community, "status",
                   cfg->status_owner, c->client_id) != BUS_OK) {
            rc = BUS_E_INVAL;
            goto out;
        }
    } else {
        bus_topic_status(c->status_topic, sizeof c->status_topic, c->community, c->client_id);
    }
    c->port = cfg->port ? cfg->port : (cfg->tls_ca ? 8883 : 1883);
    c->keepalive_s = cfg->keepalive_s ? cfg->keepalive_s : 30;
    c->probe = cfg->probe;
    c->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : 500;
    c->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 30000;
    if (c->backoff_max_ms < c->backoff_min_ms)
        c->backoff_max_ms = c->backoff_min_ms;
    if (c->backoff_min_ms < 2)
        c->backoff_min_ms = 2;
    c->backoff_ms = c->backoff_min_ms;
    c->log = (ctl_log){"bus",
                       cfg->log ? cfg->log_level : (cfg->log_level ? cfg->log_level : CTL_LOG_INFO),
                       cfg->log, cfg->log_user ? cfg->log_user : user};
    c->user = user;
    c->on_message = on_msg;
    c->on_state = on_state;
    c->max_pending = cfg->max_pending ? cfg->max_pending : 1024;
    c->table_cap = 4;
    while (c->table_cap < 2 * c->max_pending + 2)
        c->table_cap *= 2;
    c->table = calloc(c->table_cap, sizeof *c->table);
    c->queue_cap = c->max_pending;
    c->queue = calloc(c->queue_cap, sizeof *c->queue);
    if (!c->table || !c->queue)
        goto out;
    c->mosq = mosquitto_new(c->client_id, true, c);
    if (!c->mosq)
        goto out;
    rc = configure(c);
    if (rc != BUS_OK)
        goto out;
    c->state = LINK_IDLE;
    rc = BUS_OK;
out:
    if (err)
        *err = rc;
    if (rc != BUS_OK) {
        bus_free(c);
        return NULL;
    }
    return c;
}

int bus_start(bus_client *c)
{
    if (!c || c->state == LINK_STOPPED)
        return BUS_E_INVAL;
    if (c->state == LINK_IDLE) {
        c->next_attempt_ms = 0;
        attempt_connect(c);
    }
    return BUS_OK;
}

static void sleep_ms(int ms)
{
    if (ms > 0)
        poll(NULL, 0, ms);
}

int bus_loop(bus_client *c, int timeout_ms)
{
    if (!c || timeout_ms < 0)
        return BUS_E_INVAL;
    int64_t deadline = now_ms() + timeout_ms;
    do {
        int64_t now = now_ms();
        if (c->state == LINK_IDLE && now >= c->next_attempt_ms)
            attempt_connect(c);
        if (c->state == LINK_CONNECTING && now - c->attempt_start_ms > BUS_CONNECT_TIMEOUT_MS) {
            ctl_logf(&c->log, CTL_LOG_WARN, "no answer from %s:%d within %d ms", c->host, c->port,
                     BUS_CONNECT_TIMEOUT_MS);
            link_lost(c, BUS_E_CONN_LOST);
        }
        int left = (int)(deadline - now_ms());
        if (left < 0)
            left = 0;
        if (c->state == LINK_UP || c->state == LINK_CONNECTING) {
            /* mosquitto_loop waits at most `left` ms for socket activity */
            int rc = mosquitto_loop(c->mosq, left > 1000 ? 1000 : left, 1000);
            if (rc != MOSQ_ERR_SUCCESS) {
                if (c->state == LINK_CONNECTING)
                    ctl_logf(&c->log, CTL_LOG_WARN, "cannot connect to %s:%d: %s", c->host, c->port,
                             rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
                link_lost(c, BUS_E_CONN_LOST);
            }
        } else if (c->state == LINK_IDLE) {
            int64_t wait = c->next_attempt_ms - now_ms();
            if (wait > left)
                wait = left;
            sleep_ms((int)(wait > 0 ? wait : 0));
        } else {
            sleep_ms(left);
        }
        deliver_completions(c);
    } while (now_ms() < deadline);
    return BUS_OK;
}

bool bus_connected(const bus_client *c)
{
    return c && c->state == LINK_UP;
}

unsigned bus_pending(const bus_client *c)
{
    return c ? c->table_used + c->queue_len : 0;
}

const char *bus_status_topic(const bus_client *c)
{
    return c ? c->status_topic : NULL;
}

static bool topic_ok(const char *t, bool filter)
{
    size_t n = strnlen(t, BUS_TOPIC_MAX);
    if (n == 0 || n >= BUS_TOPIC_MAX)
        return false;
    if (filter)
        return mosquitto_sub_topic_check(t) == MOSQ_ERR_SUCCESS;
    return mosquitto_pub_topic_check(t) == MOSQ_ERR_SUCCESS;
}

int bus_subscribe(bus_client *c, const char *filter, int qos)
{
    if (!c || !filter || qos < 0 || qos > 1 || !topic_ok(filter, true))
        return BUS_E_INVAL;
    for (unsigned i = 0; i < c->n_subs; i++)
        if (strcmp(c->subs[i].filter, filter) == 0) {
            c->subs[i].qos = qos;
            goto send;
        }
    if (c->n_subs == BUS_MAX_SUBS)
        return BUS_E_FULL;
    snprintf(c->subs[c->n_subs].filter, BUS_TOPIC_MAX, "%s", filter);
    c->subs[c->n_subs++].qos = qos;
send:
    if (c->state == LINK_UP) {
        int rc = send_subscription(c, filter, qos);
        if (rc != MOSQ_ERR_SUCCESS) {
            ctl_logf(&c->log, CTL_LOG_WARN, "cannot subscribe to %s now: %s", filter,
                     mosquitto_strerror(rc));
            return BUS_E_MOSQ;
        }
    }
    return BUS_OK;
}

int bus_publish(bus_client *c, const char *topic, const void *payload, size_t len, int qos,
                bool retain, bus_done_fn done, void *arg)
{
    return bus_publish_expiring(c, topic, payload, len, qos, retain, 0, done, arg);
}

int bus_publish_expiring(bus_client *c, const char *topic, const void *payload, size_t len,
                         int qos, bool retain, uint32_t expiry_s, bus_done_fn done, void *arg)
{
    if (!c || !topic || (len && !payload) || qos < 0 || qos > 1)
        return BUS_E_INVAL;
    if (len > BUS_PAYLOAD_MAX)
        return BUS_E_TOOLONG;
    if (!topic_ok(topic, false))
        return BUS_E_INVAL;
    if (c->state != LINK_UP)
        return BUS_E_NOCONN;
    if (c->table_used + c->queue_len >= c->max_pending)
        return BUS_E_FULL;
    int mid = 0;
    c->publishing_mid = -1;
    c->early_done = false;
    /* libmosquitto writes *mid before it sends, so on_publish can recognise an early QoS 0
     * completion through publishing_mid. */
    mosquitto_property *props = NULL;
    if (expiry_s > 0 &&
        mosquitto_property_add_int32(&props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, expiry_s) !=
            MOSQ_ERR_SUCCESS)
        return BUS_E_NOMEM;
    int rc = mosquitto_publish_v5(c->mosq, &c->publishing_mid, topic, (int)len, payload, qos,
                                  retain, props);
    mosquitto_property_free_all(&props);
    mid = c->publishing_mid;
    c->publishing_mid = -1;
    if (rc != MOSQ_ERR_SUCCESS) {
        ctl_logf(&c->log, CTL_LOG_WARN, "publish to %s failed: %s", topic, mosquitto_strerror(rc));
        if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) {
            link_lost(c, BUS_E_CONN_LOST);
            return BUS_E_NOCONN;
        }
        return rc == MOSQ_ERR_NOMEM ? BUS_E_NOMEM : BUS_E_MOSQ;
    }
    if (c->early_done) {
        c->early_done = false;
        queue_push(c, done, arg, c->early_status);
    } else if (!table_insert(c, mid, done, arg)) {
        queue_push(c, done, arg, BUS_E_FULL); /* cannot happen: the table holds 2x max_pending */
    }
    return BUS_OK;
}

static void note_offline_done(void *arg, int status)
{
    int *result = arg;
    *result = status;
}

int bus_stop(bus_client *c, int timeout_ms)
{
    if (!c)
        return BUS_E_INVAL;
    int rc = BUS_OK;
    if (c->state == LINK_UP) {
        int offline = c->probe ? BUS_OK : 1; /* 1: not yet known; a probe sends no status */
        if (!c->probe)
            rc =
                bus_publish(c, c->status_topic, "offline", 7, 1, true, note_offline_done, &offline);
        int64_t deadline = now_ms() + timeout_ms;
        while (rc == BUS_OK && c->state == LINK_UP && (offline == 1 || bus_pending(c) > 0) &&
               now_ms() < deadline)
            bus_loop(c, 20);
        if (rc == BUS_OK)
            rc = offline == 1 ? BUS_E_TIMEOUT : offline;
        if (c->state == LINK_UP) {
            c->state = LINK_STOPPED; /* the coming on_disconnect is no loss */
            mosquitto_disconnect_v5(c->mosq, MQTT_RC_NORMAL_DISCONNECTION, NULL);
            /* flush the DISCONNECT packet */
            for (int i = 0; i < 10 && mosquitto_want_write(c->mosq); i++)
                mosquitto_loop(c->mosq, 10, 1);
        }
        if (rc != BUS_OK)
            ctl_logf(&c->log, CTL_LOG_WARN, "offline status not acknowledged: %s",
                     bus_strerror(rc));
    }
    c->state = LINK_STOPPED;
    fail_all_pending(c);
    deliver_completions(c);
    ctl_logf(&c->log, CTL_LOG_INFO, "disconnected from %s:%d", c->host, c->port);
    return rc;
}

void bus_free(bus_client *c)
{
    if (!c)
        return;
    if (c->mosq)
        mosquitto_destroy(c->mosq);
    free(c->host);
    free(c->username);
    if (c->password)
        sodium_free(c->password); /* sodium_free wipes before releasing */
    free(c->tls_ca);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->table);
    free(c->queue);
    free(c);
}

/* ---- topics ---- */

_Static_assert(BUS_ID_MAX == CTL_ID_MAX + 1, "bus ids follow the rule of ident.h");
_Static_assert(MTR_ID_MAX == CTL_ID_MAX + 1, "meter ids follow the rule of ident.h");

bool bus_id_valid(const char *id)
{
    return ctl_id_valid(id) != 0;
}

static int topic3(char *buf, size_t len, const char *community, const char *kind, const char *id,
                  const char *leaf)
{
    if (!buf || len == 0)
        return BUS_E_INVAL;
    buf[0] = '\0';
    if (!bus_id_valid(community) || !bus_id_valid(id))
        return BUS_E_INVAL;
    int n = snprintf(buf, len, "mgx/v1/%s/%s/%s%s%s", community, kind, id, leaf ? "/" : "",
                     leaf ? leaf : "");
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return BUS_E_TOOLONG;
    }
    return BUS_OK;
}

int bus_topic_meter_state(char *buf, size_t len, const char *community, const char *meter_id)
{
    return topic3(buf, len, community, "meter", meter_id, "state");
}

int bus_topic_meter_meta(char *buf, size_t len, const char *community, const char *meter_id)
{
    return topic3(buf, len, community, "meter", meter_id, "meta");
}

int bus_topic_status(char *buf, size_t len, const char *community, const char *client_id)
{
    return topic3(buf, len, community, "status", client_id, NULL);
}

int bus_topic_order(char *buf, size_t len, const char *community, const char *participant_id)
{
    return topic3(buf, len, community, "order", participant_id, NULL);
}

int bus_topic_pref(char *buf, size_t len, const char *community, const char *participant_id)
{
    return topic3(buf, len, community, "pref", participant_id, NULL);
}

int bus_topic_receipt(char *buf, size_t len, const char *community, const char *participant_id)
{
    return topic3(buf, len, community, "receipt", participant_id, NULL);
}

int bus_topic_trades(char *buf, size_t len, const char *community, const char *participant_id)
{
    return topic3(buf, len, community, "trades", participant_id, NULL);
}

int bus_topic_market_result(char *buf, size_t len, const char *community, int64_t interval_id)
{
    if (interval_id < 0)
        return BUS_E_INVAL;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, interval_id);
    return topic3(buf, len, community, "market", id, "result");
}

int bus_filter_all(char *buf, size_t len, const char *community, const char *kind, const char *leaf)
{
    if (!buf || len == 0)
        return BUS_E_INVAL;
    buf[0] = '\0';
    if (!bus_id_valid(community) || !bus_id_valid(kind) || (leaf && !bus_id_valid(leaf)))
        return BUS_E_INVAL;
    int n = snprintf(buf, len, "mgx/v1/%s/%s/+%s%s", community, kind, leaf ? "/" : "",
                     leaf ? leaf : "");
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return BUS_E_TOOLONG;
    }
    return BUS_OK;
}

/* Copies the level starting at *p up to '/' or the end into out; advances *p past it. */
static bool take_level(const char **p, char out[BUS_ID_MAX])
{
    const char *s = *p;
    size_t n = strcspn(s, "/");
    if (n == 0 || n >= BUS_ID_MAX)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    *p = s + n + (s[n] == '/' ? 1 : 0);
    if (s[n] == '/' && s[n + 1] == '\0')
        return false; /* trailing slash */
    return bus_id_valid(out);
}

int bus_topic_parse(const char *topic, char community[BUS_ID_MAX], char kind[BUS_ID_MAX],
                    char id[BUS_ID_MAX], char leaf[BUS_ID_MAX])
{
    if (!topic || !community || !kind || !id || !leaf)
        return BUS_E_INVAL;
    community[0] = kind[0] = id[0] = leaf[0] = '\0';
    if (strncmp(topic, "mgx/v1/", 7) != 0)
        return BUS_E_INVAL;
    const char *p = topic + 7;
    if (take_level(&p, community) && take_level(&p, kind) && take_level(&p, id) &&
        (*p == '\0' || (take_level(&p, leaf) && *p == '\0')))
        return BUS_OK;
    community[0] = kind[0] = id[0] = leaf[0] = '\0';
    return BUS_E_INVAL;
}
