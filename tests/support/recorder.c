/*
 * Test support: an MQTT 3.1.1 subscriber on libmosquitto's own network thread that records
 * what arrives (see recorder.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "recorder.h"

#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REC_MAX 100000

struct recorder {
    struct mosquitto *m;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    rec_msg *msgs;
    size_t n;
    bool subscribed;
    bool persistent;
    char filter[256];
};

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags)
{
    recorder *r = obj;
    /* A resumed persistent session still has its subscription; subscribing again would
     * replay the retained message as if it were new. */
    bool session_present = flags & 1;
    if (rc == 0 && !(r->persistent && session_present))
        mosquitto_subscribe(m, NULL, r->filter, 1);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
    (void)m;
    (void)mid;
    recorder *r = obj;
    pthread_mutex_lock(&r->lock);
    r->subscribed = n > 0 && granted[0] < 0x80;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    (void)m;
    recorder *r = obj;
    pthread_mutex_lock(&r->lock);
    if (r->n < REC_MAX) {
        rec_msg *d = &r->msgs[r->n];
        d->topic = strdup(msg->topic);
        d->len = (size_t)msg->payloadlen;
        d->payload = malloc(d->len + 1);
        if (d->payload) {
            if (d->len)
                memcpy(d->payload, msg->payload, d->len);
            d->payload[d->len] = '\0';
        }
        d->retain = msg->retain;
        r->n++;
    }
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

recorder *rec_start(int port, const char *client_id, const char *filter, bool persistent)
{
    mosquitto_lib_init();
    recorder *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->msgs = calloc(REC_MAX, sizeof *r->msgs);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    snprintf(r->filter, sizeof r->filter, "%s", filter);
    r->m = mosquitto_new(client_id, !persistent, r);
    if (!r->msgs || !r->m)
        goto fail;
    r->persistent = persistent;
    mosquitto_connect_with_flags_callback_set(r->m, on_connect);
    mosquitto_subscribe_callback_set(r->m, on_subscribe);
    mosquitto_message_callback_set(r->m, on_message);
    mosquitto_reconnect_delay_set(r->m, 1, 1, false);
    if (mosquitto_connect(r->m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(r->m) != MOSQ_ERR_SUCCESS)
        goto fail;
    struct timespec ts;
    deadline_in(&ts, 5000);
    pthread_mutex_lock(&r->lock);
    while (!r->subscribed)
        if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) != 0)
            break;
    bool ok = r->subscribed;
    pthread_mutex_unlock(&r->lock);
    if (!ok) {
        fprintf(stderr, "recorder: no SUBACK for %s\n", filter);
        rec_stop(r);
        return NULL;
    }
    return r;
fail:
    fprintf(stderr, "recorder: cannot connect to 127.0.0.1:%d\n", port);
    rec_stop(r);
    return NULL;
}

size_t rec_wait(recorder *r, size_t n, int timeout_ms)
{
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&r->lock);
    while (r->n < n)
        if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) != 0)
            break;
    size_t got = r->n;
    pthread_mutex_unlock(&r->lock);
    return got;
}

bool rec_wait_topic(recorder *r, const char *topic, char *buf, size_t len, int timeout_ms)
{
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    bool found = false;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        for (size_t i = r->n; i-- > 0;)
            if (strcmp(r->msgs[i].topic, topic) == 0) {
                snprintf(buf, len, "%s", r->msgs[i].payload ? r->msgs[i].payload : "");
                found = true;
                break;
            }
        if (found || pthread_cond_timedwait(&r->cond, &r->lock, &ts) != 0)
            break;
    }
    pthread_mutex_unlock(&r->lock);
    return found;
}

size_t rec_count(recorder *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->n;
    pthread_mutex_unlock(&r->lock);
    return n;
}

bool rec_get(recorder *r, size_t i, rec_msg *out)
{
    bool ok = false;
    out->topic = out->payload = NULL; /* rec_msg_free is safe after a miss too */
    pthread_mutex_lock(&r->lock);
    if (i < r->n) {
        out->topic = strdup(r->msgs[i].topic);
        out->len = r->msgs[i].len;
        out->payload = malloc(out->len + 1);
        if (out->payload)
            memcpy(out->payload, r->msgs[i].payload, out->len + 1);
        out->retain = r->msgs[i].retain;
        ok = out->topic && out->payload;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

void rec_msg_free(rec_msg *m)
{
    free(m->topic);
    free(m->payload);
    m->topic = m->payload = NULL;
}

bool rec_retained(int port, const char *topic, char *buf, size_t len, int timeout_ms)
{
    char id[64];
    static int seq;
    snprintf(id, sizeof id, "rec-retained-%d-%d", (int)getpid(), seq++);
    recorder *r = rec_start(port, id, topic, false);
    if (!r)
        return false;
    bool ok = rec_wait_topic(r, topic, buf, len, timeout_ms);
    if (ok) {
        rec_msg m;
        ok = rec_get(r, 0, &m) && m.retain;
        rec_msg_free(&m);
    }
    rec_stop(r);
    return ok;
}

void rec_stop(recorder *r)
{
    if (!r)
        return;
    if (r->m) {
        mosquitto_disconnect(r->m);
        mosquitto_loop_stop(r->m, true);
        mosquitto_destroy(r->m);
    }
    for (size_t i = 0; r->msgs && i < r->n; i++)
        rec_msg_free(&r->msgs[i]);
    free(r->msgs);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}
