/*
 * Clearing an interval (clearing.h): orders in through the store, mkt_clear (mkt_clear_grid
 * with the community's [topology]), the outcome out through the store, inside one transaction.
 * The market rules are market/'s; the rows are db/store.c's; this file only orders the steps.
 */
#include "daemon/clearing.h"

#include "db/prefs.h"
#include "mgx/topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    mkt_order *v;
    char (*names)[CTL_PARTICIPANT_MAX]; /* per order: its participant, for the topology */
    size_t n, cap;
} order_vec;

static int collect(const ctl_order_rec *o, uint64_t market_id, void *ctx)
{
    order_vec *b = ctx;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        mkt_order *v = realloc(b->v, cap * sizeof *v);
        if (v)
            b->v = v;
        char(*names)[CTL_PARTICIPANT_MAX] = v ? realloc(b->names, cap * sizeof *names) : NULL;
        if (!names)
            return CTL_ST_E_NOMEM;
        b->names = names;
        b->cap = cap;
    }
    snprintf(b->names[b->n], CTL_PARTICIPANT_MAX, "%s", o->participant);
    mkt_order *m = &b->v[b->n++];
    m->participant = market_id;
    m->side = o->side;
    m->n_steps = o->n_steps;
    memcpy(m->steps, o->steps, sizeof m->steps);
    return 0;
}

/* The book's clearing within the feeder limits of topo (mkt_clear_grid), recorded with its
 * congestion rent and nodes; names[i] is book[i]'s participant, or names is NULL and they are
 * looked up by market number (an ex_post book). */
static int clear_grid(ctl_store *s, ctl_clearing_rec *r, const ctl_topology *topo,
                      int64_t length_s, const mkt_order *book,
                      const char (*names)[CTL_PARTICIPANT_MAX], size_t n, int *did_clear)
{
    mkt_grid_clearing *g = mkt_grid_clearing_new(n ? n : 1);
    const char **node_names = calloc(topo->n_nodes, sizeof *node_names);
    const char **who = calloc(n ? n : 1, sizeof *who);
    char(*looked_up)[CTL_PARTICIPANT_MAX] = names ? NULL : calloc(n ? n : 1, sizeof *looked_up);
    int rc = CTL_ST_E_NOMEM;
    if (!g || !node_names || !who || (!names && !looked_up))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!names &&
            (rc = ctl_store_participant_name(s, book[i].participant, looked_up[i],
                                             CTL_PARTICIPANT_MAX)) != CTL_ST_OK)
            goto out;
        who[i] = names ? names[i] : looked_up[i];
    }
    for (size_t i = 0; i < topo->n_nodes; i++)
        node_names[i] = topo->nodes[i].name;
    mkt_error_at at;
    int mrc = ctl_topology_clear_book(g, topo, length_s, r->params, book, who, n, &at);
    if (mrc == MKT_E_NOMEM) {
        rc = CTL_ST_E_NOMEM;
        goto out;
    }
    if (mrc != MKT_OK) {
        mkt_summary empty;
        memset(&empty, 0, sizeof empty);
        empty.mechanism = r->params->mechanism;
        r->error = mkt_strerror(mrc);
        r->summary = &empty;
        if (!(rc = ctl_store_put_clearing(s, r)))
            rc = CTL_ST_E_MARKET;
        goto out;
    }
    r->summary = mkt_grid_market_summary(g);
    r->trades = mkt_grid_trades(g, &r->n_trades);
    r->outcomes = mkt_grid_participants(g, &r->n_outcomes);
    r->congestion = mkt_grid_trade_congestion(g);
    r->nodes = mkt_grid_nodes(g, &r->n_nodes);
    r->node_names = node_names;
    if ((rc = ctl_store_put_clearing(s, r)) == CTL_ST_OK)
        *did_clear = 1;
out:
    mkt_grid_clearing_free(g);
    free(node_names);
    free(who);
    free(looked_up);
    return rc;
}

/* Clears the book b (already collected) inside the open transaction: within topo's limits when
 * one is given (names, when not NULL, name the book's participants), else on the copper
 * plate. */
static int clear_book(ctl_store *s, int64_t id, int64_t start_utc, const mkt_params *p,
                      int64_t cleared_ms, const mkt_order *book, size_t n, int *did_clear,
                      const ctl_topology *topo, int64_t length_s,
                      const char (*names)[CTL_PARTICIPANT_MAX])
{
    /* the interval's number breaks ties between equal prices (mkt_tie_key) */
    mkt_params params = *p;
    params.interval_id = id;
    ctl_clearing_rec r = {id,   start_utc, &params, cleared_ms, "",   n, NULL, NULL,
                          0,    NULL,      0,       NULL,       NULL, NULL, 0};
    if (topo && topo->on)
        return clear_grid(s, &r, topo, length_s, book, names, n, did_clear);
    /* room for the whole book with some to spare, as the store's buffer had */
    mkt_clearing *c = mkt_clearing_new(n < 1024 ? 1024 : n * 2);
    if (!c)
        return CTL_ST_E_NOMEM;
    int rc;
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
                       int64_t cleared_ms, const mkt_order *book, size_t n_book, int *did_clear,
                       const ctl_topology *topo, int64_t length_s)
{
    int cleared = 0;
    int rc = ctl_store_interval_cleared(s, id, &cleared);
    if (rc || cleared)
        return rc;
    if (book)
        return clear_book(s, id, start_utc, p, cleared_ms, book, n_book, did_clear, topo,
                          length_s, NULL);
    order_vec b = {NULL, NULL, 0, 0};
    if ((rc = ctl_store_interval_orders(s, id, collect, &b)) == CTL_ST_OK)
        rc = clear_book(s, id, start_utc, p, cleared_ms, b.v, b.n, did_clear, topo, length_s,
                        b.names);
    free(b.v);
    free(b.names);
    return rc;
}

static int clear_interval(ctl_store *s, int64_t interval_id, int64_t start_utc,
                          const mkt_params *params, int64_t cleared_ms, const mkt_order *book,
                          size_t n_book, int *did_clear, const ctl_topology *topo,
                          int64_t length_s)
{
    /* a caller's book is an ex_post one: the interval records that timing with its clearing */
    int ex_post = book != NULL;
    if (!s || !params || !did_clear || (!book && n_book))
        return CTL_ST_E_INVAL;
    *did_clear = 0;
    int rc = ctl_store_begin(s);
    if (rc)
        return rc;
    rc = clear_in_tx(s, interval_id, start_utc, params, cleared_ms, book, n_book, did_clear, topo,
                     length_s);
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
    return clear_interval(s, interval_id, start_utc, params, cleared_ms, NULL, 0, did_clear,
                          NULL, 0);
}

int ctl_clear_interval_grid(ctl_store *s, int64_t interval_id, int64_t start_utc,
                            int64_t length_s, const mkt_params *params, const ctl_topology *topo,
                            int64_t cleared_ms, int *did_clear)
{
    if (topo && topo->on && length_s <= 0)
        return CTL_ST_E_INVAL;
    return clear_interval(s, interval_id, start_utc, params, cleared_ms, NULL, 0, did_clear,
                          topo, length_s);
}

int ctl_clear_interval_book(ctl_store *s, int64_t interval_id, int64_t start_utc,
                            int64_t length_s, const mkt_params *params, const ctl_topology *topo,
                            int64_t cleared_ms, const mkt_order *book, size_t n_book,
                            int *did_clear)
{
    static const mkt_order none;
    if (topo && topo->on && length_s <= 0)
        return CTL_ST_E_INVAL;
    return clear_interval(s, interval_id, start_utc, params, cleared_ms, book ? book : &none,
                          book ? n_book : 0, did_clear, topo, length_s);
}
