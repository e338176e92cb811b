/*
 * Test MQTT client (see mqtt_client.h). Waiting is polling under a mutex at 5 ms steps: simple,
 * and fast enough for tests that wait for a handful of messages.
 */
#include "mqtt_client.h"

#include "broker.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tc_client {
    struct mosquitto *m;
    pthread_mutex_t mu;
    int connack; /* -1 until CONNACK */
    bool closed;
    int puback_mid, puback_rc;
    int suback_mid, suback_rc;
    tc_message *msgs;
    size_t n_msgs;
    size_t dropped;
    bool loop_started;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
    mosquitto_lib_init();
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    (void)m, (void)flags, (void)props;
    tc_client *c = obj;
    pthread_mutex_lock(&c->mu);
    c->connack = rc;
    pthread_mutex_unlock(&c->mu);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
    (void)m, (void)rc, (void)props;
    tc_client *c = obj;
    pthread_mutex_lock(&c->mu);
    c->closed = true;
    pthread_mutex_unlock(&c->mu);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int rc,
                       const mosquitto_property *props)
{
    (void)m, (void)props;
    tc_client *c = obj;
    pthread_mutex_lock(&c->mu);
    c->puback_mid = mid;
    c->puback_rc = rc;
    pthread_mutex_unlock(&c->mu);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted,
                         const mosquitto_property *props)
{
    (void)m, (void)props;
    tc_client *c = obj;
    pthread_mutex_lock(&c->mu);
    c->suback_mid = mid;
    c->suback_rc = n > 0 ? granted[0] : -1;
    pthread_mutex_unlock(&c->mu);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    (void)m, (void)props;
    tc_client *c = obj;
    pthread_mutex_lock(&c->mu);
    if (c->n_msgs < TC_MAX_MESSAGES && msg->payloadlen >= 0 &&
        (size_t)msg->payloadlen <= TC_MAX_PAYLOAD) {
        tc_message *t = &c->msgs[c->n_msgs++];
        snprintf(t->topic, sizeof t->topic, "%s", msg->topic);
        t->len = (size_t)msg->payloadlen;
        if (t->len)
            memcpy(t->payload, msg->payload, t->len);
        t->payload[t->len] = '\0';
        t->retained = msg->retain;
    } else {
        c->dropped++;
    }
    pthread_mutex_unlock(&c->mu);
}

/* Polls fn(c, arg) under the lock until it returns true or timeout_ms pass. */
static bool wait_for(tc_client *c, bool (*fn)(tc_client *, void *), void *arg,
                     int timeout_ms)
{
    for (int waited = 0;; waited += 5) {
        pthread_mutex_lock(&c->mu);
        bool ok = fn(c, arg);
        pthread_mutex_unlock(&c->mu);
        if (ok)
            return true;
        if (waited >= timeout_ms)
            return false;
        tst_sleep_ms(5);
    }
}

static bool has_connack(tc_client *c, void *arg)
{
    (void)arg;
    return c->connack >= 0 || c->closed;
}

tc_client *tc_connect(const tc_opts *o, int timeout_ms, int *reason)
{
    pthread_once(&lib_once, lib_init);
    *reason = -1;
    tc_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->connack = -1;
    c->puback_mid = c->suback_mid = -1;
    c->msgs = calloc(TC_MAX_MESSAGES, sizeof *c->msgs);
    c->m = mosquitto_new(o->client_id, true, c);
    if (!c->msgs || !c->m)
        goto fail;
    mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_connect_v5_callback_set(c->m, on_connect);
    mosquitto_disconnect_v5_callback_set(c->m, on_disconnect);
    mosquitto_publish_v5_callback_set(c->m, on_publish);
    mosquitto_subscribe_v5_callback_set(c->m, on_subscribe);
    mosquitto_message_v5_callback_set(c->m, on_message);
    if (o->username && mosquitto_username_pw_set(c->m, o->username, o->password))
        goto fail;
    if (o->cafile && mosquitto_tls_set(c->m, o->cafile, NULL, o->certfile, o->keyfile, NULL))
        goto fail;
    if (mosquitto_connect(c->m, o->host ? o->host : "127.0.0.1", o->port, 30) != MOSQ_ERR_SUCCESS)
        goto fail;
    if (mosquitto_loop_start(c->m) != MOSQ_ERR_SUCCESS)
        goto fail;
    c->loop_started = true;
    wait_for(c, has_connack, NULL, timeout_ms);
    pthread_mutex_lock(&c->mu);
    *reason = c->connack;
    pthread_mutex_unlock(&c->mu);
    if (*reason != 0)
        goto fail;
    return c;
fail:
    tc_free(c);
    return NULL;
}

void tc_free(tc_client *c)
{
    if (!c)
        return;
    if (c->m) {
        mosquitto_disconnect(c->m);
        if (c->loop_started)
            mosquitto_loop_stop(c->m, true);
        mosquitto_destroy(c->m);
    }
    pthread_mutex_destroy(&c->mu);
    free(c->msgs);
    free(c);
}

static bool has_suback(tc_client *c, void *arg)
{
    return c->suback_mid == *(int *)arg;
}

/* Waits for the acknowledgement of mid (has tells when it came) and returns its reason code,
 * *rc read under the lock; -1 if none came within timeout_ms. */
static int wait_ack(tc_client *c, bool (*has)(tc_client *, void *), int mid, const int *rc,
                    int timeout_ms)
{
    if (!wait_for(c, has, &mid, timeout_ms))
        return -1;
    pthread_mutex_lock(&c->mu);
    int v = *rc;
    pthread_mutex_unlock(&c->mu);
    return v;
}

int tc_subscribe(tc_client *c, const char *filter, int timeout_ms)
{
    int mid = 0;
    if (mosquitto_subscribe(c->m, &mid, filter, 1) != MOSQ_ERR_SUCCESS)
        return -1;
    return wait_ack(c, has_suback, mid, &c->suback_rc, timeout_ms);
}

static bool has_puback(tc_client *c, void *arg)
{
    return c->puback_mid == *(int *)arg;
}

int tc_publish(tc_client *c, const char *topic, const void *payload, size_t len, int qos,
               bool retain, int timeout_ms)
{
    int mid = 0;
    if (len > TC_MAX_PAYLOAD ||
        mosquitto_publish(c->m, &mid, topic, (int)len, payload, qos, retain) != MOSQ_ERR_SUCCESS)
        return -1;
    return wait_ack(c, has_puback, mid, &c->puback_rc, timeout_ms);
}

int tc_publish_nowait(tc_client *c, const char *topic, const void *payload, size_t len, int qos)
{
    if (len > TC_MAX_PAYLOAD ||
        mosquitto_publish(c->m, NULL, topic, (int)len, payload, qos, false) != MOSQ_ERR_SUCCESS)
        return -1;
    return 0;
}

typedef struct {
    const char *topic;
    size_t from;
    size_t found;
} topic_query;

static bool has_topic(tc_client *c, void *arg)
{
    topic_query *q = arg;
    for (size_t i = q->from; i < c->n_msgs; i++) {
        if (strcmp(c->msgs[i].topic, q->topic) == 0) {
            q->found = i;
            return true;
        }
    }
    return false;
}

bool tc_wait_topic(tc_client *c, const char *topic, size_t *from, tc_message *out,
                   int timeout_ms)
{
    topic_query q = {topic, from ? *from : 0, 0};
    if (!wait_for(c, has_topic, &q, timeout_ms))
        return false;
    if (from)
        *from = q.found + 1;
    if (out)
        tc_get(c, q.found, out);
    return true;
}

size_t tc_count(tc_client *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->n_msgs;
    pthread_mutex_unlock(&c->mu);
    return n;
}

bool tc_get(tc_client *c, size_t i, tc_message *out)
{
    pthread_mutex_lock(&c->mu);
    bool ok = i < c->n_msgs;
    if (ok)
        *out = c->msgs[i];
    pthread_mutex_unlock(&c->mu);
    return ok;
}

size_t tc_count_topic(tc_client *c, const char *topic)
{
    pthread_mutex_lock(&c->mu);
    size_t n = 0;
    for (size_t i = 0; i < c->n_msgs; i++)
        n += strcmp(c->msgs[i].topic, topic) == 0;
    pthread_mutex_unlock(&c->mu);
    return n;
}

bool tc_disconnected(tc_client *c)
{
    pthread_mutex_lock(&c->mu);
    bool d = c->closed;
    pthread_mutex_unlock(&c->mu);
    return d;
}
