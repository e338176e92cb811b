/*
 * Order ingestion (see ingest.h for the pipeline and its guarantees). An order's life: add()
 * decodes it and pre-judges it with an empty history, the most permissive history there is, so
 * every order that could be accepted in the transaction has its signature checked by the pool
 * before flush(); flush() judges it again inside the transaction with the real history and the
 * precomputed signature. If the store's answer ever needs a signature that was not computed
 * (it cannot, short of a bug), it is computed there and then, so the decision never depends on
 * the pre-judgement.
 */
#define _POSIX_C_SOURCE 200809L
#include "orders/ingest.h"

#include "db/registry.h"
#include "orders/verify_pool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SIG_NONE = 0, SIG_PENDING = 1, SIG_DONE = 2 };

/* Orders are pre-judged this many at a time, in one read transaction: the store's file locks
 * are taken once per chunk instead of twice per order, and the workers get work while the
 * caller reads on. */
#define PREJUDGE_CHUNK 32

/* One order between add() and the end of flush(). */
typedef struct {
    const ctl_ingest *g;
    char topic[CTL_ID_MAX + 1];
    int64_t now_ms;
    ctl_order_msg m;
    int decode_rc;    /* CTL_R_OK, or why the message is not a well-formed order */
    int lookup_rc;    /* ctl_registry_lookup's answer */
    ctl_participant entry;
    int sig;          /* SIG_* */
    int sig_rc;       /* when SIG_DONE */
    uint8_t enc[CTL_ORDER_ENC_MAX + CTL_ORDER_SIG_BYTES]; /* signed bytes, the evidence */
    size_t enc_len;
    ctl_admit_result r; /* the decision's reason and detail */
    int decided;
} item;

struct ctl_ingest {
    ctl_ingest_config cfg;
    ctl_store *store;
    ctl_registry_reader *registry;
    ctl_verify_pool *pool;
    item *items;
    ctl_order_item *recs;
    size_t n;
    size_t n_judged; /* items[0 .. n_judged) are pre-judged */
    ctl_ingest_stats stats;
};

static const char *const IN_ERRORS[] = {
    "success", "invalid argument", "batch is full", "out of memory",
    "cannot start a verify worker",
};

const char *ctl_ingest_strerror(int code)
{
    if (code > 0 || -code >= (int)(sizeof IN_ERRORS / sizeof IN_ERRORS[0]))
        return "unknown ingest error";
    return IN_ERRORS[-code];
}

int ctl_ingest_new(const ctl_ingest_config *cfg, ctl_store *store, ctl_ingest **out)
{
    if (!cfg || !store || !out || !cfg->admit.community || !cfg->on_outcome ||
        cfg->batch_max < 1 || cfg->batch_max > CTL_INGEST_BATCH_MAX)
        return CTL_INGEST_E_INVAL;
    *out = NULL;
    ctl_ingest *g = calloc(1, sizeof *g);
    if (!g)
        return CTL_INGEST_E_NOMEM;
    g->cfg = *cfg;
    g->store = store;
    g->items = calloc(cfg->batch_max, sizeof *g->items);
    g->recs = calloc(cfg->batch_max, sizeof *g->recs);
    int rc = CTL_INGEST_E_NOMEM;
    if (!g->items || !g->recs ||
        ctl_registry_reader_new(ctl_store_db(store), &g->registry) != CTL_REG_OK)
        goto fail;
    /* the ring holds a whole batch: submit never finds it full */
    int vrc = ctl_verify_pool_new(cfg->verify_threads, cfg->batch_max, &g->pool);
    if (vrc != CTL_VP_OK) {
        rc = vrc == CTL_VP_E_THREAD ? CTL_INGEST_E_THREAD : CTL_INGEST_E_NOMEM;
        goto fail;
    }
    *out = g;
    return CTL_INGEST_OK;
fail:
    ctl_ingest_free(g);
    return rc;
}

void ctl_ingest_free(ctl_ingest *g)
{
    if (!g)
        return;
    ctl_verify_pool_free(g->pool);
    ctl_registry_reader_free(g->registry);
    free(g->items);
    free(g->recs);
    free(g);
}

size_t ctl_ingest_pending(const ctl_ingest *g)
{
    return g ? g->n : 0;
}

void ctl_ingest_get_stats(const ctl_ingest *g, ctl_ingest_stats *out)
{
    *out = g->stats;
}

/* The checks that need no history, and the signature handed to the pool when it may matter. */
static void prejudge(ctl_ingest *g, item *x, size_t idx)
{
    x->lookup_rc = ctl_registry_reader_lookup(g->registry, x->m.participant, &x->entry);
    if (x->lookup_rc != CTL_REG_OK && x->lookup_rc != CTL_REG_E_NOT_FOUND)
        return; /* the database failed: flush() answers "internal", the home resends */
    const ctl_admit_history none = {CTL_NONCE_NEW, 0, 0};
    ctl_admit_result r;
    ctl_admit_verdict v =
        ctl_admit_check(&g->cfg.admit, x->now_ms, x->topic, &x->m,
                        x->lookup_rc == CTL_REG_OK ? &x->entry : NULL, &none, &r);
    if (v != CTL_ADMIT_ACCEPT && v != CTL_ADMIT_REPLACE)
        return; /* rejected whatever the history says: no signature needed */
    /* a nonce already accepted makes it a resend or a replay, decided without a signature:
     * a flood of resent orders costs a lookup each, not a verification */
    int found = 0;
    if (ctl_store_receipt(g->store, x->m.participant, x->m.nonce, NULL, 0, &found) ==
            CTL_ST_OK &&
        found)
        return;
    if (ctl_verify_pool_submit(g->pool, &x->m, x->entry.pubkey, (void *)(uintptr_t)idx) ==
        CTL_VP_OK)
        x->sig = SIG_PENDING;
}

/* Pre-judges every order taken since the last call, in one read transaction (unless the
 * caller has one open on the store's connection). */
static void prejudge_pending(ctl_ingest *g)
{
    if (g->n_judged == g->n)
        return;
    ctl_db *db = ctl_store_db(g->store);
    int own = ctl_db_read_begin(db);
    for (; g->n_judged < g->n; g->n_judged++) {
        item *x = &g->items[g->n_judged];
        if (x->decode_rc == CTL_R_OK)
            prejudge(g, x, g->n_judged);
    }
    if (own)
        ctl_db_read_end(db);
}

int ctl_ingest_add(ctl_ingest *g, const char *topic_participant, const char *payload, size_t len,
                   int64_t now_ms)
{
    if (!g || !topic_participant || (!payload && len))
        return CTL_INGEST_E_INVAL;
    if (g->n == g->cfg.batch_max)
        return CTL_INGEST_E_FULL;
    size_t idx = g->n++;
    item *x = &g->items[idx];
    memset(x, 0, sizeof *x);
    x->g = g;
    snprintf(x->topic, sizeof x->topic, "%s", topic_participant);
    x->now_ms = now_ms;
    g->stats.orders++;
    x->decode_rc = ctl_order_from_json(payload ? payload : "", len, &x->m, x->r.detail,
                                       sizeof x->r.detail);
    if (x->decode_rc == CTL_R_OK && ctl_order_encode(&x->m, x->enc, &x->enc_len) != CTL_R_OK)
        x->decode_rc = CTL_R_MALFORMED;
    if (x->decode_rc != CTL_R_OK) {
        /* kept as evidence under the topic's participant; it claims no nonce */
        x->r.verdict = CTL_ADMIT_REJECT;
        x->r.reason = x->decode_rc;
        x->decided = 1;
        if (g->n - g->n_judged >= PREJUDGE_CHUNK)
            prejudge_pending(g);
        return CTL_INGEST_OK;
    }
    memcpy(x->enc + x->enc_len, x->m.sig, CTL_ORDER_SIG_BYTES);
    x->enc_len += CTL_ORDER_SIG_BYTES;
    if (g->n - g->n_judged >= PREJUDGE_CHUNK)
        prejudge_pending(g);
    return CTL_INGEST_OK;
}

/* The store's decision callback: the admission rules with the real history, in the
 * transaction; the signature as the pool found it. */
static int decide(ctl_order_rec *o, const ctl_order_history *h, void *arg)
{
    item *x = arg;
    if (x->decode_rc != CTL_R_OK)
        return 0; /* decided in add(): malformed */
    if (x->lookup_rc != CTL_REG_OK && x->lookup_rc != CTL_REG_E_NOT_FOUND)
        return -1; /* the registry could not be read: store nothing, answer "internal" */
    ctl_admit_history ah = ctl_admit_history_of(h);
    const ctl_participant *entry = x->lookup_rc == CTL_REG_OK ? &x->entry : NULL;
    ctl_admit_verdict v =
        ctl_admit_check(&x->g->cfg.admit, x->now_ms, x->topic, &x->m, entry, &ah, &x->r);
    if (v == CTL_ADMIT_ACCEPT || v == CTL_ADMIT_REPLACE) {
        int sig = x->sig == SIG_DONE ? x->sig_rc : ctl_order_verify(&x->m, x->entry.pubkey);
        v = ctl_admit_finish(&x->r, sig);
    }
    x->decided = 1;
    ctl_admit_record(o, v, &x->r);
    return 0;
}

/* The detail that goes with the final reason: the store may have overruled the rules. */
static const char *detail_for(const item *x, int code)
{
    if (x->decided && code == x->r.reason)
        return x->r.detail;
    if (code == CTL_R_GATE_CLOSED)
        return "interval already cleared";
    return "";
}

static int make_receipt(const ctl_order_rec *o, char *buf, size_t cap, void *arg)
{
    item *x = arg;
    int code = ctl_reason_parse(o->reason);
    if (code < 0)
        code = CTL_R_INTERNAL;
    const char *detail = detail_for(x, code);
    ctl_receipt r;
    ctl_receipt_for(&r, &x->m, code, detail[0] ? detail : NULL, x->now_ms);
    return ctl_receipt_to_json(&r, buf, cap, NULL) == CTL_R_OK ? 0 : -1;
}

/* The store record of an order, as received. */
static void to_record(const item *x, ctl_order_rec *o)
{
    memset(o, 0, sizeof *o);
    o->received_ms = x->now_ms;
    if (x->decode_rc != CTL_R_OK) {
        snprintf(o->participant, sizeof o->participant, "%s", x->topic);
        o->status = CTL_ORDER_REJECTED;
        snprintf(o->reason, sizeof o->reason, "%s", ctl_reason_name(x->decode_rc));
        return;
    }
    snprintf(o->participant, sizeof o->participant, "%s", x->m.participant);
    memcpy(o->nonce, x->m.nonce, CTL_NONCE_BYTES);
    o->interval_id = x->m.interval_id;
    o->created_ms = x->m.created_ms;
    o->side = x->m.side;
    o->n_steps = x->m.n_steps;
    memcpy(o->steps, x->m.steps, sizeof o->steps);
    o->signed_msg = x->enc;
    o->signed_len = x->enc_len;
}

/* Takes every signature result back; they come in arrival order. */
static void collect_signatures(ctl_ingest *g)
{
    ctl_verify_result res;
    while (ctl_verify_pool_next(g->pool, -1, &res) == CTL_VP_OK) {
        item *x = &g->items[(uintptr_t)res.tag];
        x->sig_rc = res.rc;
        x->sig = SIG_DONE;
        g->stats.verified++;
    }
}

static void report(ctl_ingest *g, size_t i)
{
    const item *x = &g->items[i];
    const ctl_order_item *it = &g->recs[i];
    ctl_ingest_outcome o = {x->topic, &x->m, x->decode_rc == CTL_R_OK, CTL_R_INTERNAL, "", 0,
                            it->duplicate, it->receipt};
    char body[CTL_RECEIPT_JSON_MAX];
    if (it->result == CTL_ST_OK) {
        o.stored = 1;
        int code = ctl_reason_parse(it->rec.reason);
        ctl_receipt first;
        if (it->duplicate) /* the decision is the one on file */
            code = ctl_receipt_from_json(it->receipt, strlen(it->receipt), &first, NULL, 0) ==
                           CTL_R_OK
                       ? first.reason
                       : CTL_R_OK;
        o.reason = code < 0 ? CTL_R_INTERNAL : code;
        o.detail = it->duplicate ? "order already received" : detail_for(x, o.reason);
    } else {
        /* not stored: the home must resend, and is told so */
        o.detail = "not stored; resend";
        ctl_receipt r;
        ctl_receipt_for(&r, &x->m, CTL_R_INTERNAL, o.detail, x->now_ms);
        if (ctl_receipt_to_json(&r, body, sizeof body, NULL) != CTL_R_OK)
            body[0] = '\0';
        o.receipt = body;
    }
    g->cfg.on_outcome(g->cfg.ctx, &o);
}

int ctl_ingest_flush(ctl_ingest *g)
{
    if (!g)
        return CTL_ST_E_INVAL;
    size_t n = g->n;
    if (n == 0)
        return CTL_ST_OK;
    prejudge_pending(g);
    collect_signatures(g);
    for (size_t i = 0; i < n; i++) {
        to_record(&g->items[i], &g->recs[i].rec);
        g->recs[i].ctx = &g->items[i];
    }
    int rc = ctl_store_put_orders(g->store, g->recs, n, decide, make_receipt);
    if (rc == CTL_ST_OK) {
        g->stats.batches++;
        if (n > g->stats.largest_batch)
            g->stats.largest_batch = n;
    } else {
        g->stats.failed++;
    }
    for (size_t i = 0; i < n; i++)
        report(g, i);
    g->n = g->n_judged = 0;
    return rc;
}
