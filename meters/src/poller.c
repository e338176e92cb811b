/*
 * The poller: devices grouped into lanes (one link each), a timetable of lanes ordered by due
 * time, and a pool of worker threads that take due lanes, poll their due devices in turn and
 * put the lane back. Results go to a callback or a bounded drop-oldest queue. See mgx/poller.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "mgx/poller.h"
#include "mgx/meter_error.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_THREADS_MAX 32u

typedef struct {
    mtr_device *dev;
    int64_t due_ms; /* monotonic */
    int period_ms;
    int pause_ms;
} slot;

typedef struct {
    mtr_link *link;
    slot *slots;
    size_t n;
    int64_t due_ms; /* earliest due slot */
    size_t heap_pos;
    int64_t quiet_until_us; /* monotonic: the last unit's inter-unit pause ends here */
} lane;

struct mtr_poller {
    const mtr_config *cfg;
    mtr_poller_options opt;
    lane *lanes;
    size_t n_lanes;
    slot *all_slots;
    size_t n_devs;

    pthread_mutex_t mu;
    pthread_cond_t cv;   /* the timetable changed or stop */
    lane **heap;         /* lanes not being polled, min-heap on due_ms */
    size_t heap_n;
    int running;
    pthread_t threads[MTR_POLLER_THREADS_MAX];
    unsigned n_threads;
    int started;

    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    mtr_poll_result *queue;
    size_t qcap, qhead, qlen;

    mtr_poller_stats stats; /* under mu */

    /* run_once */
    size_t once_next;
    mtr_poll_cb once_cb;
    void *once_ctx;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * The inter-unit pause is owed by the bus, not by a pass over the lane: the next request on
 * the line, whichever unit and whichever pass it belongs to, waits until the pause of the
 * unit polled last has run out (timed in microseconds: a millisecond clock could cut it short).
 */
static void keep_quiet(const lane *l)
{
    int64_t wait = l->quiet_until_us - mono_us();
    if (wait <= 0)
        return;
    struct timespec ts = {(time_t)(wait / 1000000), (long)(wait % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void after_poll(lane *l, const slot *s)
{
    l->quiet_until_us = s->pause_ms > 0 ? mono_us() + (int64_t)s->pause_ms * 1000 : 0;
}

/* ---- min-heap of lanes ---- */

static void heap_swap(mtr_poller *p, size_t a, size_t b)
{
    lane *t = p->heap[a];
    p->heap[a] = p->heap[b];
    p->heap[b] = t;
    p->heap[a]->heap_pos = a;
    p->heap[b]->heap_pos = b;
}

static void heap_push(mtr_poller *p, lane *l)
{
    size_t i = p->heap_n++;
    p->heap[i] = l;
    l->heap_pos = i;
    while (i > 0 && p->heap[(i - 1) / 2]->due_ms > p->heap[i]->due_ms) {
        heap_swap(p, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static lane *heap_pop(mtr_poller *p)
{
    lane *top = p->heap[0];
    p->heap[0] = p->heap[--p->heap_n];
    p->heap[0]->heap_pos = 0;
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < p->heap_n && p->heap[l]->due_ms < p->heap[m]->due_ms)
            m = l;
        if (r < p->heap_n && p->heap[r]->due_ms < p->heap[m]->due_ms)
            m = r;
        if (m == i)
            break;
        heap_swap(p, i, m);
        i = m;
    }
    return top;
}

/* ---- lanes ---- */

/* Two devices share a link key when they are on the same serial port or TCP host:port. */
static int same_endpoint(const mtr_device_config *a, const mtr_device_config *b)
{
    if (a->transport != b->transport)
        return 0;
    if (a->transport == MTR_RTU)
        return strcmp(a->device, b->device) == 0;
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/*
 * Builds the lanes: endpoints in file order; an RTU endpoint is one lane, a TCP endpoint
 * max(connections) lanes, its devices dealt round-robin.
 */
static int build_lanes(mtr_poller *p)
{
    size_t n = p->n_devs;
    size_t *endpoint = calloc(n, sizeof *endpoint); /* first device index of each device's endpoint */
    size_t *lane_of = calloc(n, sizeof *lane_of);
    size_t *count = NULL;
    int rc = MTR_E_NOMEM;
    if (!endpoint || !lane_of)
        goto out;
    size_t n_lanes = 0;
    for (size_t i = 0; i < n; i++) {
        const mtr_device_config *d = mtr_config_device(p->cfg, i);
        endpoint[i] = i;
        for (size_t j = 0; j < i; j++)
            if (endpoint[j] == j && same_endpoint(mtr_config_device(p->cfg, j), d)) {
                endpoint[i] = j;
                break;
            }
        if (endpoint[i] != i)
            continue;
        /* a new endpoint: how many lanes, and each device's lane within it */
        int conns = 1, seen = 0;
        for (size_t k = i; k < n; k++) {
            const mtr_device_config *e = mtr_config_device(p->cfg, k);
            if (same_endpoint(d, e) && d->transport == MTR_TCP && e->connections > conns)
                conns = e->connections;
        }
        size_t first = n_lanes;
        for (size_t k = i; k < n; k++)
            if (same_endpoint(d, mtr_config_device(p->cfg, k))) {
                lane_of[k] = first + (size_t)seen % (size_t)conns;
                seen++;
            }
        n_lanes += (size_t)(seen < conns ? seen : conns);
    }
    p->lanes = calloc(n_lanes, sizeof *p->lanes);
    count = calloc(n_lanes, sizeof *count);
    p->heap = calloc(n_lanes, sizeof *p->heap);
    if (!p->lanes || !count || !p->heap)
        goto out;
    p->n_lanes = n_lanes;
    for (size_t i = 0; i < n; i++)
        count[lane_of[i]]++;
    /* slots of one lane are contiguous in all_slots, in file order */
    size_t off = 0;
    for (size_t l = 0; l < n_lanes; l++) {
        p->lanes[l].slots = p->all_slots + off;
        off += count[l];
    }
    for (size_t i = 0; i < n; i++) {
        lane *l = &p->lanes[lane_of[i]];
        const mtr_device_config *d = mtr_config_device(p->cfg, i);
        slot *s = &l->slots[l->n++];
        s->dev = mtr_device_new(d);
        s->period_ms = d->poll_ms;
        s->pause_ms = d->inter_unit_pause_ms;
        if (!s->dev || (!l->link && !(l->link = mtr_link_new(d))))
            goto out;
    }
    rc = MTR_OK;
out:
    free(endpoint);
    free(lane_of);
    free(count);
    return rc;
}

mtr_poller *mtr_poller_new(const mtr_config *cfg, const mtr_poller_options *opt)
{
    if (!cfg || mtr_config_count(cfg) == 0)
        return NULL;
    mtr_poller *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cfg = cfg;
    if (opt)
        p->opt = *opt;
    p->n_devs = mtr_config_count(cfg);
    p->all_slots = calloc(p->n_devs, sizeof *p->all_slots);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->qmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_cond_init(&p->qcv, &ca);
    pthread_condattr_destroy(&ca);
    if (!p->all_slots || build_lanes(p) != MTR_OK)
        goto fail;
    if (!p->opt.cb) {
        p->qcap = p->opt.queue_max ? p->opt.queue_max : (p->n_devs * 4 < 64 ? 64 : p->n_devs * 4);
        p->queue = calloc(p->qcap, sizeof *p->queue);
        if (!p->queue)
            goto fail;
    }
    p->n_threads = p->opt.threads;
    if (p->n_threads == 0)
        p->n_threads = p->n_lanes < DEFAULT_THREADS_MAX ? (unsigned)p->n_lanes : DEFAULT_THREADS_MAX;
    if (p->n_threads > MTR_POLLER_THREADS_MAX)
        p->n_threads = MTR_POLLER_THREADS_MAX;
    return p;
fail:
    mtr_poller_free(p);
    return NULL;
}

/* ---- delivery ---- */

static void deliver(mtr_poller *p, const mtr_poll_result *r, mtr_poll_cb cb, void *ctx)
{
    if (cb) {
        cb(ctx, r);
        return;
    }
    pthread_mutex_lock(&p->qmu);
    if (p->qlen == p->qcap) { /* drop the oldest: the newest totals supersede it */
        p->qhead = (p->qhead + 1) % p->qcap;
        p->qlen--;
        pthread_mutex_lock(&p->mu);
        p->stats.dropped++;
        pthread_mutex_unlock(&p->mu);
    }
    p->queue[(p->qhead + p->qlen) % p->qcap] = *r;
    p->qlen++;
    pthread_cond_signal(&p->qcv);
    pthread_mutex_unlock(&p->qmu);
}

static void poll_slot(mtr_poller *p, lane *l, slot *s, mtr_poll_cb cb, void *ctx)
{
    mtr_poll_result r;
    r.rc = mtr_device_read(s->dev, l->link, p->opt.clock, p->opt.clock_ctx, &r.sample,
                           &r.meta_fresh);
    snprintf(r.err, sizeof r.err, "%s", r.rc ? mtr_device_error(s->dev) : "");
    if (r.meta_fresh)
        r.meta = *mtr_device_meta(s->dev);
    else
        memset(&r.meta, 0, sizeof r.meta);
    mtr_device_filter_get(s->dev, &r.filter);
    deliver(p, &r, cb, ctx);
}

/* Polls the due slots of a lane in turn; returns the lane's next due time. */
static int64_t poll_lane(mtr_poller *p, lane *l)
{
    uint64_t polls = 0, fails = 0, overruns = 0, late_max = 0;
    for (size_t i = 0; i < l->n; i++) {
        slot *s = &l->slots[i];
        int64_t now = mono_ms();
        if (s->due_ms > now)
            continue;
        pthread_mutex_lock(&p->mu);
        int running = p->running;
        pthread_mutex_unlock(&p->mu);
        if (!running)
            break;
        keep_quiet(l);
        uint64_t late = (uint64_t)(now - s->due_ms);
        late_max = late > late_max ? late : late_max;
        poll_slot(p, l, s, p->opt.cb, p->opt.cb_ctx);
        after_poll(l, s);
        polls++;
        fails += mtr_device_error(s->dev)[0] != '\0';
        s->due_ms += s->period_ms;
        now = mono_ms();
        if (s->due_ms <= now) { /* fell a period behind: skip the missed polls */
            int64_t missed = (now - s->due_ms) / s->period_ms + 1;
            overruns += (uint64_t)missed;
            s->due_ms += missed * s->period_ms;
        }
    }
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < l->n; i++)
        due = l->slots[i].due_ms < due ? l->slots[i].due_ms : due;
    pthread_mutex_lock(&p->mu);
    p->stats.polls += polls;
    p->stats.failures += fails;
    p->stats.overruns += overruns;
    if (late_max > p->stats.late_ms_max)
        p->stats.late_ms_max = late_max;
    pthread_mutex_unlock(&p->mu);
    return due;
}

static void *worker(void *arg)
{
    mtr_poller *p = arg;
    pthread_mutex_lock(&p->mu);
    while (p->running) {
        if (p->heap_n == 0) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        int64_t now = mono_ms(), due = p->heap[0]->due_ms;
        if (due > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = ts.tv_nsec + (due - now) * 1000000;
            ts.tv_sec += (time_t)(ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
            continue;
        }
        lane *l = heap_pop(p);
        pthread_mutex_unlock(&p->mu);
        int64_t next = poll_lane(p, l);
        pthread_mutex_lock(&p->mu);
        l->due_ms = next;
        heap_push(p, l);
        /* the new due time may be earlier than what the sleepers wait for */
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int mtr_poller_start(mtr_poller *p)
{
    if (!p || p->started)
        return MTR_E_INVAL;
    int64_t now = mono_ms();
    pthread_mutex_lock(&p->mu);
    p->heap_n = 0;
    for (size_t i = 0; i < p->n_lanes; i++) {
        lane *l = &p->lanes[i];
        for (size_t k = 0; k < l->n; k++)
            l->slots[k].due_ms = now;
        l->due_ms = now;
        heap_push(p, l);
    }
    p->running = 1;
    pthread_mutex_unlock(&p->mu);
    p->started = 1;
    for (unsigned i = 0; i < p->n_threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            p->n_threads = i;
            mtr_poller_stop(p);
            return MTR_E_NOMEM;
        }
    }
    return MTR_OK;
}

void mtr_poller_stop(mtr_poller *p)
{
    if (!p || !p->started)
        return;
    pthread_mutex_lock(&p->mu);
    p->running = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    p->started = 0;
    pthread_mutex_lock(&p->qmu);
    pthread_cond_broadcast(&p->qcv); /* wake mtr_poller_next: stopped */
    pthread_mutex_unlock(&p->qmu);
}

void mtr_poller_free(mtr_poller *p)
{
    if (!p)
        return;
    mtr_poller_stop(p);
    for (size_t i = 0; i < p->n_lanes; i++) {
        for (size_t k = 0; k < p->lanes[i].n; k++)
            mtr_device_free(p->lanes[i].slots[k].dev);
        mtr_link_free(p->lanes[i].link);
    }
    free(p->lanes);
    free(p->heap);
    free(p->all_slots);
    free(p->queue);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->qmu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->qcv);
    free(p);
}

/* ---- run once ---- */

static void *once_worker(void *arg)
{
    mtr_poller *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->once_next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n_lanes)
            return NULL;
        lane *l = &p->lanes[i];
        for (size_t k = 0; k < l->n; k++) {
            keep_quiet(l);
            poll_slot(p, l, &l->slots[k], p->once_cb, p->once_ctx);
            after_poll(l, &l->slots[k]);
            pthread_mutex_lock(&p->mu);
            p->stats.polls++;
            p->stats.failures += mtr_device_error(l->slots[k].dev)[0] != '\0';
            pthread_mutex_unlock(&p->mu);
        }
    }
}

int mtr_poller_run_once(mtr_poller *p, mtr_poll_cb cb, void *cb_ctx)
{
    pthread_t th[MTR_POLLER_THREADS_MAX];
    unsigned n = 0;
    if (!p || !cb || p->started)
        return MTR_E_INVAL;
    p->once_next = 0;
    p->once_cb = cb;
    p->once_ctx = cb_ctx;
    for (; n < p->n_threads; n++)
        if (pthread_create(&th[n], NULL, once_worker, p) != 0)
            break;
    if (n == 0)
        once_worker(p);
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    return MTR_OK;
}

/* ---- queue ---- */

int mtr_poller_next(mtr_poller *p, mtr_poll_result *out, int timeout_ms)
{
    if (!p || !out || !p->queue)
        return MTR_E_INVAL;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (timeout_ms > 0) {
        int64_t ns = until.tv_nsec + (int64_t)timeout_ms * 1000000;
        until.tv_sec += (time_t)(ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
    }
    int rc = MTR_OK;
    pthread_mutex_lock(&p->qmu);
    while (p->qlen == 0) {
        if (!p->started) {
            rc = MTR_E_STOPPED;
            break;
        }
        if (timeout_ms == 0) {
            rc = MTR_E_TIMEOUT;
            break;
        }
        int w = timeout_ms < 0 ? pthread_cond_wait(&p->qcv, &p->qmu)
                               : pthread_cond_timedwait(&p->qcv, &p->qmu, &until);
        if (w == ETIMEDOUT && p->qlen == 0) {
            rc = MTR_E_TIMEOUT;
            break;
        }
    }
    if (rc == MTR_OK) {
        *out = p->queue[p->qhead];
        p->qhead = (p->qhead + 1) % p->qcap;
        p->qlen--;
    }
    pthread_mutex_unlock(&p->qmu);
    return rc;
}

void mtr_poller_stats_get(mtr_poller *p, mtr_poller_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

size_t mtr_poller_lanes(const mtr_poller *p)
{
    return p->n_lanes;
}

unsigned mtr_poller_threads(const mtr_poller *p)
{
    return p->n_threads;
}

int mtr_poller_restore(mtr_poller *p, const char *meter_id, const mtr_filter *f)
{
    if (!p || !meter_id || !f)
        return MTR_E_INVAL;
    pthread_mutex_lock(&p->mu);
    int started = p->started;
    pthread_mutex_unlock(&p->mu);
    if (started)
        return MTR_E_INVAL;
    for (size_t i = 0; i < p->n_devs; i++) {
        mtr_device *d = p->all_slots[i].dev;
        if (strcmp(mtr_device_config_of(d)->id, meter_id) == 0) {
            mtr_device_filter_set(d, f);
            return MTR_OK;
        }
    }
    return MTR_E_INVAL;
}
