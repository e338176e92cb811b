/*
 * The burst scenario of burst.h. The ten scripts, per home h (k = h mod 10), with the reason
 * each message gets by the per-order rules (admit.h's checks in order, the store's history):
 *   0  A, A again                 ok, ok (resend: A's stored receipt)
 *   1  A, B with A's nonce        ok, replay (nonce used by another accepted order)
 *   2  A, A2 made 1 s later       ok, replaced (the newer order replaces A)
 *   3  A, A0 made 1 s earlier     ok, superseded (older than the order on file)
 *   4  A with a flipped signature bad_signature; then A itself: ok (a rejected order claims no
 *      nonce, so a forger cannot burn it)
 *   5  "{not json", A             malformed, ok
 *   6  A, A again (not in the registry)  unknown_participant twice (rejections are not resends)
 *   7  A on order/ghost-h, A      topic_mismatch, ok
 *   8  L for an interval that has started, A, A again   stale_interval, ok, ok (resend)
 *   9  A, B made later, A again, B again    ok, replaced, ok (A's receipt), replaced (B's)
 * Homes are interleaved round robin, so a batch holds many homes' steps at once.
 */
#define _GNU_SOURCE
#include "burst.h"

#include "db/registry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTERVAL_S 900
#define MAX_STEPS_PER_HOME 4

ctl_admit_params burst_admit_params(void)
{
    return (ctl_admit_params){BURST_COMMUNITY, INTERVAL_S, 300, 8};
}

/* An order of home h; `variant` changes its nonce and its curve. */
static void order_of(const burst *b, size_t h, int64_t iv, int64_t created_ms, int variant,
                     ctl_order_msg *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->community, sizeof m->community, BURST_COMMUNITY);
    snprintf(m->participant, sizeof m->participant, "%s", b->ids[h]);
    m->interval_id = iv;
    m->interval_s = INTERVAL_S;
    m->created_ms = created_ms;
    m->expiry_s = iv * INTERVAL_S;
    for (int i = 0; i < CTL_ORDER_NONCE_BYTES; i++)
        m->nonce[i] = (uint8_t)(h * 31 + (size_t)variant * 7 + (size_t)i * 13);
    m->side = h % 2 ? MKT_BUY : MKT_SELL;
    m->n_steps = 1 + (uint32_t)(h % 3);
    for (uint32_t s = 0; s < m->n_steps; s++) {
        m->steps[s].energy_wh = 100 + (int64_t)((h * 37 + s * 11 + (size_t)variant) % 900);
        m->steps[s].price_uc_per_kwh = 80000 + (int64_t)((h * 7919 + s * 1000) % 200000);
    }
}

typedef struct {
    char topic[CTL_ID_MAX + 1];
    char body[CTL_ORDER_JSON_MAX];
    size_t len;
    const char *expect;
    int dup_step; /* -1, or the step of the same home whose receipt it gets back */
} step;

static void put_order(step *st, const char *topic, const ctl_order_msg *m, const char *expect,
                      int dup_step)
{
    snprintf(st->topic, sizeof st->topic, "%s", topic);
    assert_int_equal(ctl_order_to_json(m, st->body, sizeof st->body, &st->len), CTL_R_OK);
    st->expect = expect;
    st->dup_step = dup_step;
}

static void sign(const burst *b, size_t h, ctl_order_msg *m)
{
    assert_int_equal(ctl_order_sign(m, ctl_key_secret(b->keys[h])), CTL_R_OK);
}

/* Home h's script; returns the number of steps. */
static int script(const burst *b, size_t h, int64_t target, int64_t stale, int64_t created,
                  step *out)
{
    ctl_order_msg a, x;
    order_of(b, h, target, created, 0, &a);
    sign(b, h, &a);
    const char *id = b->ids[h];
    switch (h % 10) {
    case 0:
        put_order(&out[0], id, &a, "ok", -1);
        put_order(&out[1], id, &a, "ok", 0);
        return 2;
    case 1:
        order_of(b, h, target, created, 1, &x);
        memcpy(x.nonce, a.nonce, sizeof x.nonce);
        sign(b, h, &x);
        put_order(&out[0], id, &a, "ok", -1);
        put_order(&out[1], id, &x, "replay", -1);
        return 2;
    case 2:
        order_of(b, h, target, created + 1000, 1, &x);
        sign(b, h, &x);
        put_order(&out[0], id, &a, "ok", -1);
        put_order(&out[1], id, &x, "replaced", -1);
        return 2;
    case 3:
        order_of(b, h, target, created - 1000, 1, &x);
        sign(b, h, &x);
        put_order(&out[0], id, &a, "ok", -1);
        put_order(&out[1], id, &x, "superseded", -1);
        return 2;
    case 4:
        x = a;
        x.sig[17] ^= 0x40;
        put_order(&out[0], id, &x, "bad_signature", -1);
        put_order(&out[1], id, &a, "ok", -1);
        return 2;
    case 5:
        snprintf(out[0].topic, sizeof out[0].topic, "%s", id);
        out[0].len = (size_t)snprintf(out[0].body, sizeof out[0].body, "{not json");
        out[0].expect = "malformed";
        out[0].dup_step = -1;
        put_order(&out[1], id, &a, "ok", -1);
        return 2;
    case 6:
        put_order(&out[0], id, &a, "unknown_participant", -1);
        put_order(&out[1], id, &a, "unknown_participant", -1);
        return 2;
    case 7: {
        char ghost[CTL_ID_MAX + 1];
        snprintf(ghost, sizeof ghost, "ghost-%zu", h);
        put_order(&out[0], ghost, &a, "topic_mismatch", -1);
        put_order(&out[1], id, &a, "ok", -1);
        return 2;
    }
    case 8:
        order_of(b, h, stale, created, 1, &x);
        x.expiry_s = target * INTERVAL_S;
        sign(b, h, &x);
        put_order(&out[0], id, &x, "stale_interval", -1);
        put_order(&out[1], id, &a, "ok", -1);
        put_order(&out[2], id, &a, "ok", 1);
        return 3;
    default:
        order_of(b, h, target, created + 1000, 1, &x);
        sign(b, h, &x);
        put_order(&out[0], id, &a, "ok", -1);
        put_order(&out[1], id, &x, "replaced", -1);
        put_order(&out[2], id, &a, "ok", 0);
        put_order(&out[3], id, &x, "replaced", 1);
        return 4;
    }
}

void burst_make(burst *b, size_t n_homes, int64_t target, int64_t stale, int64_t created_ms)
{
    memset(b, 0, sizeof *b);
    b->n_homes = n_homes;
    b->ids = calloc(n_homes, sizeof *b->ids);
    b->keys = calloc(n_homes, sizeof *b->keys);
    b->registered = calloc(n_homes, sizeof *b->registered);
    step *steps = calloc(n_homes * MAX_STEPS_PER_HOME, sizeof *steps);
    int *n_steps = calloc(n_homes, sizeof *n_steps);
    int *first = calloc(n_homes * MAX_STEPS_PER_HOME, sizeof *first);
    b->msgs = calloc(n_homes * MAX_STEPS_PER_HOME, sizeof *b->msgs);
    assert_true(b->ids && b->keys && b->registered && steps && n_steps && first && b->msgs);
    for (size_t h = 0; h < n_homes; h++) {
        snprintf(b->ids[h], sizeof b->ids[h], "home-%04zu", h);
        uint8_t seed[32];
        for (int i = 0; i < 32; i++)
            seed[i] = (uint8_t)(i + 1);
        seed[0] = (uint8_t)h;
        seed[1] = (uint8_t)(h >> 8);
        assert_int_equal(ctl_key_from_seed(seed, &b->keys[h]), CTL_KEY_OK);
        b->registered[h] = h % 10 != 6;
        n_steps[h] = script(b, h, target, stale, created_ms, &steps[h * MAX_STEPS_PER_HOME]);
    }
    /* round robin: every home's first step, then every home's second... */
    for (int s = 0; s < MAX_STEPS_PER_HOME; s++)
        for (size_t h = 0; h < n_homes; h++) {
            if (s >= n_steps[h])
                continue;
            const step *st = &steps[h * MAX_STEPS_PER_HOME + (size_t)s];
            burst_msg *m = &b->msgs[b->n];
            first[h * MAX_STEPS_PER_HOME + (size_t)s] = (int)b->n;
            snprintf(m->topic, sizeof m->topic, "%s", st->topic);
            memcpy(m->body, st->body, st->len + 1);
            m->len = st->len;
            m->home = h;
            m->expect = st->expect;
            m->dup_of = st->dup_step < 0 ? -1 : first[h * MAX_STEPS_PER_HOME + (size_t)st->dup_step];
            b->n++;
        }
    free(steps);
    free(n_steps);
    free(first);
}

void burst_free(burst *b)
{
    for (size_t h = 0; h < b->n_homes; h++)
        ctl_key_free(b->keys[h]);
    free(b->ids);
    free(b->keys);
    free(b->registered);
    free(b->msgs);
    memset(b, 0, sizeof *b);
}

void burst_register(ctl_db *db, const burst *b)
{
    assert_int_equal(ctl_registry_init(db), CTL_REG_OK);
    for (size_t h = 0; h < b->n_homes; h++) {
        if (!b->registered[h])
            continue;
        ctl_participant p;
        memset(&p, 0, sizeof p);
        snprintf(p.id, sizeof p.id, "%s", b->ids[h]);
        memcpy(p.pubkey, ctl_key_public(b->keys[h]), CTL_PUBKEY_BYTES);
        p.role = CTL_ROLE_HOME;
        assert_int_equal(ctl_registry_add(db, &p, 1), CTL_REG_OK);
    }
}

/* ---- the reference: one order at a time, as the daemon decided before batching ---- */

typedef struct {
    ctl_store *s;
    const ctl_admit_params *ap;
    const ctl_order_msg *m;
    const char *topic;
    int64_t now_ms;
    ctl_admit_result r;
    int decided;
} one_ctx;

static int one_decide(ctl_order_rec *o, const ctl_order_history *h, void *arg)
{
    one_ctx *x = arg;
    ctl_participant entry;
    int found = ctl_registry_lookup(ctl_store_db(x->s), x->m->participant, &entry);
    if (found != CTL_REG_OK && found != CTL_REG_E_NOT_FOUND)
        return -1;
    ctl_admit_history ah = {h->nonce_seen ? CTL_NONCE_OTHER : CTL_NONCE_NEW, h->has_current,
                            h->current_created_ms};
    ctl_admit_verdict v = ctl_admit(x->ap, x->now_ms, x->topic, x->m,
                                    found == CTL_REG_OK ? &entry : NULL, &ah, &x->r);
    x->decided = 1;
    int accept = v == CTL_ADMIT_ACCEPT || v == CTL_ADMIT_REPLACE;
    o->status = accept ? CTL_ORDER_ACCEPTED : CTL_ORDER_REJECTED;
    snprintf(o->reason, sizeof o->reason, "%s", ctl_reason_name(x->r.reason));
    return 0;
}

static int one_receipt(const ctl_order_rec *o, char *buf, size_t cap, void *arg)
{
    one_ctx *x = arg;
    int code = ctl_reason_parse(o->reason);
    if (code < 0)
        code = CTL_R_INTERNAL;
    const char *detail = x->decided && code == x->r.reason ? x->r.detail : NULL;
    if (!detail && code == CTL_R_GATE_CLOSED)
        detail = "interval already cleared";
    ctl_receipt r;
    ctl_receipt_for(&r, x->m, code, detail, x->now_ms);
    return ctl_receipt_to_json(&r, buf, cap, NULL) == CTL_R_OK ? 0 : -1;
}

void burst_oracle_one(ctl_store *s, const burst_msg *msg, int64_t now_ms, char *receipt)
{
    const ctl_admit_params params = burst_admit_params();
    const ctl_admit_params *ap = &params;
    ctl_order_msg m;
    memset(&m, 0, sizeof m);
    char detail[CTL_DETAIL_MAX] = "";
    int rc = ctl_order_from_json(msg->body, msg->len, &m, detail, sizeof detail);
    ctl_order_rec o;
    memset(&o, 0, sizeof o);
    o.received_ms = now_ms;
    one_ctx x = {s, ap, &m, msg->topic, now_ms, {0}, 0};
    uint8_t enc[CTL_ORDER_ENC_MAX + CTL_ORDER_SIG_BYTES];
    size_t enc_len = 0;
    if (rc == CTL_R_OK && ctl_order_encode(&m, enc, &enc_len) != CTL_R_OK)
        rc = CTL_R_MALFORMED;
    if (rc != CTL_R_OK) {
        snprintf(o.participant, sizeof o.participant, "%s", msg->topic);
        o.status = CTL_ORDER_REJECTED;
        snprintf(o.reason, sizeof o.reason, "%s", ctl_reason_name(rc));
        x.r.reason = rc;
        snprintf(x.r.detail, sizeof x.r.detail, "%s", detail);
        x.decided = 1;
    } else {
        memcpy(enc + enc_len, m.sig, CTL_ORDER_SIG_BYTES);
        enc_len += CTL_ORDER_SIG_BYTES;
        snprintf(o.participant, sizeof o.participant, "%s", m.participant);
        memcpy(o.nonce, m.nonce, CTL_NONCE_BYTES);
        o.interval_id = m.interval_id;
        o.created_ms = m.created_ms;
        o.side = m.side;
        o.n_steps = m.n_steps;
        memcpy(o.steps, m.steps, sizeof o.steps);
        o.signed_msg = enc;
        o.signed_len = enc_len;
    }
    int dup = 0;
    assert_int_equal(ctl_store_put_order(s, &o, rc == CTL_R_OK ? one_decide : NULL, one_receipt,
                                         &x, receipt, CTL_RECEIPT_MAX, &dup),
                     CTL_ST_OK);
}
