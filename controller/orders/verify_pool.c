/*
 * The verify pool: a ring of job slots between one owner thread and N workers.
 *
 * Three indexes move forward through the ring (all modulo capacity): head (oldest job not yet
 * taken back by the owner), claim (next job a worker will take) and tail (next free slot),
 * with head <= claim <= tail and tail - head <= capacity. Workers verify outside the lock; a slot
 * is marked done under it. The owner only ever takes the head, so results come back in
 * submission order whatever order the workers finish in.
 */
#define _POSIX_C_SOURCE 200809L
#include "orders/verify_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    ctl_order_msg msg;
    uint8_t pk[CTL_PUBKEY_BYTES];
    void *tag;
    int rc;
    int done;
} slot;

struct ctl_verify_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;   /* claim < tail, or stopping */
    pthread_cond_t result; /* the head slot became done */
    slot *slots;
    size_t cap;
    uint64_t head, claim, tail;
    int stopping;
    unsigned n_threads, started;
    pthread_t *threads;
};

static const char *const VP_ERRORS[] = {
    "success",
    "invalid argument",
    "out of memory",
    "cannot start a worker thread",
    "verify queue is full",
    "nothing in flight",
    "oldest job not finished yet",
};

const char *ctl_verify_pool_strerror(int code)
{
    if (code > 0 || -code >= (int)(sizeof VP_ERRORS / sizeof VP_ERRORS[0]))
        return "unknown verify pool error";
    return VP_ERRORS[-code];
}

static void *worker(void *arg)
{
    ctl_verify_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && p->claim == p->tail)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->stopping)
            break;
        uint64_t idx = p->claim++;
        slot *s = &p->slots[idx % p->cap];
        pthread_mutex_unlock(&p->mu);
        /* The owner does not touch a claimed slot until done is set, and cannot reuse it before
         * taking it back: working on it without the lock is safe. */
        int rc = ctl_order_verify(&s->msg, s->pk);
        pthread_mutex_lock(&p->mu);
        s->rc = rc;
        s->done = 1;
        if (idx == p->head)
            pthread_cond_signal(&p->result);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void ctl_verify_pool_free(ctl_verify_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->result);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->slots);
    free(p);
}

int ctl_verify_pool_new(unsigned n_threads, size_t capacity, ctl_verify_pool **out)
{
    if (!out || capacity == 0 || capacity > ((size_t)1 << 24) || n_threads > 256)
        return CTL_VP_E_INVAL;
    *out = NULL;
    ctl_verify_pool *p = calloc(1, sizeof *p);
    if (!p)
        return CTL_VP_E_NOMEM;
    p->cap = capacity;
    p->n_threads = n_threads;
    p->slots = calloc(capacity, sizeof *p->slots);
    p->threads = n_threads ? calloc(n_threads, sizeof *p->threads) : NULL;
    if (!p->slots || (n_threads && !p->threads)) {
        free(p->slots);
        free(p->threads);
        free(p);
        return CTL_VP_E_NOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* timeouts immune to clock steps */
    pthread_cond_init(&p->result, &attr);
    pthread_condattr_destroy(&attr);
    for (; p->started < n_threads; p->started++)
        if (pthread_create(&p->threads[p->started], NULL, worker, p) != 0) {
            ctl_verify_pool_free(p);
            return CTL_VP_E_THREAD;
        }
    *out = p;
    return CTL_VP_OK;
}

int ctl_verify_pool_submit(ctl_verify_pool *p, const ctl_order_msg *m,
                           const uint8_t pk[CTL_PUBKEY_BYTES], void *tag)
{
    if (!p || !m || !pk)
        return CTL_VP_E_INVAL;
    pthread_mutex_lock(&p->mu);
    if (p->tail - p->head >= p->cap) {
        pthread_mutex_unlock(&p->mu);
        return CTL_VP_E_FULL;
    }
    uint64_t idx = p->tail;
    slot *s = &p->slots[idx % p->cap];
    /* Only the owner writes a free slot, and workers look at it only after tail moves past it:
     * copying outside the lock is safe, and keeps the workers from waiting on the copy. */
    pthread_mutex_unlock(&p->mu);
    s->msg = *m;
    memcpy(s->pk, pk, CTL_PUBKEY_BYTES);
    s->tag = tag;
    s->done = 0;
    if (p->n_threads == 0) {
        s->rc = ctl_order_verify(&s->msg, s->pk);
        s->done = 1;
    }
    pthread_mutex_lock(&p->mu);
    p->tail = idx + 1;
    if (p->n_threads == 0)
        p->claim = p->tail;
    else
        pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return CTL_VP_OK;
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int ctl_verify_pool_next(ctl_verify_pool *p, int timeout_ms, ctl_verify_result *out)
{
    if (!p || !out)
        return CTL_VP_E_INVAL;
    pthread_mutex_lock(&p->mu);
    int rc = CTL_VP_OK;
    if (p->head == p->tail) {
        rc = CTL_VP_E_EMPTY;
        goto out;
    }
    slot *s = &p->slots[p->head % p->cap];
    if (!s->done && timeout_ms != 0) {
        struct timespec until;
        if (timeout_ms > 0)
            deadline_after(&until, timeout_ms);
        while (!s->done) {
            if (timeout_ms < 0)
                pthread_cond_wait(&p->result, &p->mu);
            else if (pthread_cond_timedwait(&p->result, &p->mu, &until) == ETIMEDOUT)
                break;
        }
    }
    if (!s->done) {
        rc = CTL_VP_E_TIMEOUT;
        goto out;
    }
    out->tag = s->tag;
    out->rc = s->rc;
    out->msg = &s->msg; /* stays intact until the owner submits into this slot again */
    p->head++;
    /* the new head may already be done: nothing to signal, next() checks before waiting */
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

size_t ctl_verify_pool_in_flight(ctl_verify_pool *p)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    size_t n = (size_t)(p->tail - p->head);
    pthread_mutex_unlock(&p->mu);
    return n;
}
