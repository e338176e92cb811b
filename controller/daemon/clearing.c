/*
 * Clearing an interval (clearing.h): orders in through the store, mkt_clear, the outcome out
 * through the store, inside one transaction. The market rules are market/'s; the rows are
 * db/store.c's; this file only orders the steps.
 */
#include "daemon/clearing.h"

#include "db/prefs.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    mkt_order *v;
    size_t n, cap;
} order_vec;

static int collect(const ctl_order_rec *o, uint64_t market_id, void *ctx)
{
    order_vec *b = ctx;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        mkt_order *v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return CTL_ST_E_NOMEM;
        b->v = v;
        b->cap = cap;
    }
    mkt_order *m = &b->v[b->n++];
    m->participant = market_id;
    m->side = o->side;
    m->n_steps = o->n_steps;
    memcpy(m->steps, o->steps, sizeof m->steps);
    return 0;
}

/* Clears the book b (already collected) inside the open transaction. */
static int clear_book(ctl_store *s, int64_t id, int64_t start_utc, const mkt_params *p,
                      int64_t cleared_ms, const mkt_order *book, size_t n, int *did_clear)
{
    /* room for the whole book with some to spare, as the store's buffer had */
    mkt_clearing *c = mkt_clearing_new(n < 1024 ? 1024 : n * 2);
    if (!c)
        return CTL_ST_E_NOMEM;
    int rc;
    /* the interval's number breaks ties between equal prices (mkt_tie_key) */
    mkt_params params = *p;
    params.interval_id = id;
    ctl_clearing_rec r = {id, start_utc, &params, cleared_ms, "", n, NULL, NULL, 0, NULL, 0};
    mkt_error_at at;
    int mrc = mkt_clear(c, &params, book, n, &at);
    if (mrc != MKT_OK) {
        /* recorded as cleared with nothing traded: the market must move on; the error is kept */
        mkt_summary empty;
        memset(&empty, 0, sizeof empty);
        empty.mechanism = p->mechanism;
        r.error = mkt_strerror(mrc);
        r.summary = &empty;
        if (!(rc = ctl_store_put_clearing(s, &r)))
            rc = CTL_ST_E_MARKET;
        goto out;
    }
    r.summary = mkt_clearing_summary(c);
    r.trades = mkt_clearing_trades(c, &r.n_trades);
    r.outcomes = mkt_clearing_participants(c, &r.n_outcomes);
    if ((rc = ctl_store_put_clearing(s, &r)))
        goto out;
    *did_clear = 1;
out:
    mkt_clearing_free(c);
    return rc;
}

/* Everything of one clearing inside the open transaction: the book is the stored orders, or
 * the caller's (book != NULL). */
static int clear_in_tx(ctl_store *s, int64_t id, int64_t start_utc, const mkt_params *p,
                       int64_t cleared_ms, const mkt_order *book, size_t n_book, int *did_clear)
{
    int cleared = 0;
    int rc = ctl_store_interval_cleared(s, id, &cleared);
    if (rc || cleared)
        return rc;
    if (book)
        return clear_book(s, id, start_utc, p, cleared_ms, book, n_book, did_clear);
    order_vec b = {NULL, 0, 0};
    if ((rc = ctl_store_interval_orders(s, id, collect, &b)) == CTL_ST_OK)
        rc = clear_book(s, id, start_utc, p, cleared_ms, b.v, b.n, did_clear);
    free(b.v);
    return rc;
}

static int clear_interval(ctl_store *s, int64_t interval_id, int64_t start_utc,
                          const mkt_params *params, int64_t cleared_ms, const mkt_order *book,
                          size_t n_book, int *did_clear)
{
    /* a caller's book is an ex_post one: the interval records that timing with its clearing */
    int ex_post = book != NULL;
    if (!s || !params || !did_clear || (!book && n_book))
        return CTL_ST_E_INVAL;
    *did_clear = 0;
    int rc = ctl_store_begin(s);
    if (rc)
        return rc;
    rc = clear_in_tx(s, interval_id, start_utc, params, cleared_ms, book, n_book, did_clear);
    if (ex_post && ((rc == CTL_ST_OK && *did_clear) || rc == CTL_ST_E_MARKET)) {
        int trc = ctl_interval_timing_put(ctl_store_db(s), interval_id, MKT_EX_POST);
        if (trc != CTL_ST_OK)
            rc = trc;
    }
    if (rc == CTL_ST_E_MARKET) {
        /* keep the record of the rejected book; the caller still learns what happened */
        *did_clear = 1;
        return ctl_store_end(s, CTL_ST_OK) == CTL_ST_OK ? CTL_ST_E_MARKET : CTL_ST_E_DB;
    }
    return ctl_store_end(s, rc);
}

int ctl_clear_interval(ctl_store *s, int64_t interval_id, int64_t start_utc,
                       const mkt_params *params, int64_t cleared_ms, int *did_clear)
{
    return clear_interval(s, interval_id, start_utc, params, cleared_ms, NULL, 0, did_clear);
}

int ctl_clear_interval_book(ctl_store *s, int64_t interval_id, int64_t start_utc,
                            const mkt_params *params, int64_t cleared_ms, const mkt_order *book,
                            size_t n_book, int *did_clear)
{
    static const mkt_order none;
    return clear_interval(s, interval_id, start_utc, params, cleared_ms, book ? book : &none,
                          book ? n_book : 0, did_clear);
}
