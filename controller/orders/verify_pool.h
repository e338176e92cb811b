/*
 * Parallel signature verification with results in arrival order.
 *
 * Ed25519 verification (~60 us) is the cost of ingesting an order; one core verifies about 16k
 * per second. The pool spreads it over worker threads: the caller (the daemon's single MQTT
 * thread) submits decoded orders with the public key to check them against into a bounded ring,
 * workers re-encode each order canonically and verify it, and the caller takes the results back
 * strictly in submission order, so the store sees orders in the order they arrived however the
 * workers interleave. When the ring is full, submit refuses (CTL_VP_E_FULL) instead of blocking:
 * the caller drains results with ctl_verify_pool_next and tries again, so a slow consumer can
 * never deadlock with its own full queue.
 *
 * Thread safety: submit/next/in_flight/free must be called from one thread (the owner); the
 * pool's own workers are internal. Needs sodium_init() to have succeeded.
 */
#ifndef MGX_CTL_VERIFY_POOL_H
#define MGX_CTL_VERIFY_POOL_H

#include "orders/order_msg.h"

#include <stddef.h>
#include <stdint.h>

enum {
    CTL_VP_OK = 0,
    CTL_VP_E_INVAL = -1,   /* NULL argument or capacity 0 */
    CTL_VP_E_NOMEM = -2,   /* allocation failed */
    CTL_VP_E_THREAD = -3,  /* a worker thread could not be started */
    CTL_VP_E_FULL = -4,    /* capacity jobs are in flight: take results first */
    CTL_VP_E_EMPTY = -5,   /* nothing in flight */
    CTL_VP_E_TIMEOUT = -6  /* the oldest job is not finished yet */
};

const char *ctl_verify_pool_strerror(int code);

typedef struct ctl_verify_pool ctl_verify_pool;

/* Creates a pool of n_threads workers (0: no threads, submit verifies in the caller's thread;
 * the same API, for tests and single-core machines) and a ring of capacity jobs. *out is owned
 * by the caller: free with ctl_verify_pool_free. */
int ctl_verify_pool_new(unsigned n_threads, size_t capacity, ctl_verify_pool **out);

/* Stops and joins the workers; unfinished jobs are dropped. NULL is a no-op. */
void ctl_verify_pool_free(ctl_verify_pool *p);

/* Queues m (copied) to be verified against pk (copied). tag is returned with the result.
 * CTL_VP_OK or CTL_VP_E_FULL / CTL_VP_E_INVAL; never blocks. */
int ctl_verify_pool_submit(ctl_verify_pool *p, const ctl_order_msg *m,
                           const uint8_t pk[CTL_PUBKEY_BYTES], void *tag);

typedef struct {
    void *tag;                /* as submitted */
    int rc;                   /* ctl_order_verify's answer: CTL_R_OK, CTL_R_BAD_SIGNATURE or
                                 CTL_R_MALFORMED */
    const ctl_order_msg *msg; /* the pool's copy; valid until the next call on the pool */
} ctl_verify_result;

/* Takes the oldest job's result. timeout_ms < 0 waits as long as it takes, 0 only looks.
 * CTL_VP_OK (fills *out), CTL_VP_E_EMPTY (nothing in flight) or CTL_VP_E_TIMEOUT. */
int ctl_verify_pool_next(ctl_verify_pool *p, int timeout_ms, ctl_verify_result *out);

/* Jobs submitted and not yet taken back. */
size_t ctl_verify_pool_in_flight(ctl_verify_pool *p);

#endif
