/*
 * An interval's settlement input from the controller's database (see settle_input.h): trades
 * and tariffs as cleared, participants from the trades and the registry, metered energy from
 * each participant's stored readings.
 */
#include "settle/settle_input.h"

#include "common/errbuf.h"

#include "db/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ctl_settle_input_free(ctl_settle_input *x)
{
    if (!x)
        return;
    free(x->trades);
    free(x->meters);
    free(x->members);
    memset(x, 0, sizeof *x);
}

typedef struct {
    ctl_settle_input *x;
    size_t cap_trades, cap_members;
    int rc;
} build_ctx;

static int grow(void **v, size_t *cap, size_t n, size_t size, size_t max)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 64;
    if (c > max)
        c = max;
    if (n >= c)
        return -1;
    void *p = realloc(*v, c * size);
    if (!p)
        return -1;
    *v = p;
    *cap = c;
    return 0;
}

/* Adds a member (duplicates are merged later). */
static int add_member(build_ctx *b, uint64_t market_id, const char *name, int trades)
{
    ctl_settle_input *x = b->x;
    if (grow((void **)&x->members, &b->cap_members, x->n_members, sizeof *x->members,
             CTL_SETTLE_MAX_MEMBERS) != 0)
        return CTL_ST_E_NOMEM;
    ctl_settle_member *m = &x->members[x->n_members++];
    memset(m, 0, sizeof *m);
    m->market_id = market_id;
    snprintf(m->name, sizeof m->name, "%s", name);
    m->trades = trades;
    m->metered.status = STM_MISSING;
    return CTL_ST_OK;
}

static int on_trade(const ctl_trade_row *t, void *ctx)
{
    build_ctx *b = ctx;
    ctl_settle_input *x = b->x;
    if (grow((void **)&x->trades, &b->cap_trades, x->in.n_trades, sizeof *x->trades,
             STL_MAX_TRADES) != 0)
        return b->rc = CTL_ST_E_NOMEM;
    x->trades[x->in.n_trades++] = t->t;
    if (add_member(b, t->t.seller, t->seller, 1) != CTL_ST_OK ||
        add_member(b, t->t.buyer, t->buyer, 1) != CTL_ST_OK)
        return b->rc = CTL_ST_E_NOMEM;
    return 0;
}

/* Homes of the registry with a meter, by id (market numbers are given afterwards: that
 * writes, which must not happen while the registry is being read). */
typedef struct {
    char (*ids)[CTL_PARTICIPANT_MAX];
    size_t n, cap;
} id_list;

static int on_home(const ctl_participant *p, void *ctx)
{
    id_list *l = ctx;
    if (p->role != CTL_ROLE_HOME || !p->meter_id[0])
        return 0;
    if (grow((void **)&l->ids, &l->cap, l->n, sizeof *l->ids, CTL_SETTLE_MAX_MEMBERS) != 0)
        return CTL_ST_E_NOMEM;
    snprintf(l->ids[l->n++], CTL_PARTICIPANT_MAX, "%s", p->id);
    return 0;
}

static int by_market_id(const void *a, const void *b)
{
    const ctl_settle_member *x = a, *y = b;
    if (x->market_id != y->market_id)
        return x->market_id < y->market_id ? -1 : 1;
    return y->trades - x->trades; /* a trading entry first, so it survives the merge */
}

static void merge_members(ctl_settle_input *x)
{
    if (x->n_members == 0)
        return;
    qsort(x->members, x->n_members, sizeof *x->members, by_market_id);
    size_t w = 0;
    for (size_t i = 0; i < x->n_members; i++)
        if (w == 0 || x->members[w - 1].market_id != x->members[i].market_id)
            x->members[w++] = x->members[i];
    x->n_members = w;
}

typedef struct {
    mtr_sample *v;
    size_t n, cap;
    int full;
} reading_vec;

static int on_reading(const mtr_sample *r, void *ctx)
{
    reading_vec *rv = ctx;
    if (grow((void **)&rv->v, &rv->cap, rv->n, sizeof *rv->v, CTL_SETTLE_MAX_READINGS) != 0) {
        rv->full = 1;
        return 1;
    }
    rv->v[rv->n++] = *r;
    return 0;
}

static int meter_of(ctl_store *s, const ctl_interval_result *r, const stm_rules *rules,
                    ctl_settle_member *m, reading_vec *rv, char *err, size_t errlen)
{
    ctl_participant p;
    int rc = ctl_registry_lookup(ctl_store_db(s), m->name, &p);
    if (rc == CTL_REG_E_NOT_FOUND || (rc == CTL_REG_OK && !p.meter_id[0]))
        return CTL_ST_OK; /* no meter: missing */
    if (rc != CTL_REG_OK) {
        ctl_errf(err, errlen, "registry: %s", ctl_registry_strerror(rc));
        return CTL_ST_E_DB;
    }
    snprintf(m->meter_id, sizeof m->meter_id, "%s", p.meter_id);
    int64_t start = r->start_utc * 1000, end = (r->start_utc + r->length_s) * 1000, from, to;
    stm_window(start, end, rules, &from, &to);
    rv->n = 0;
    rv->full = 0;
    rc = ctl_store_readings(s, m->meter_id, from, to == INT64_MAX ? to : to + 1, on_reading, rv);
    if (rc != CTL_ST_OK) {
        ctl_errf(err, errlen, "readings of meter %s: %s", m->meter_id, ctl_store_strerror(rc));
        return rc;
    }
    if (rv->full) {
        ctl_errf(err, errlen, "meter %s: more than %u readings around interval %lld", m->meter_id,
                 CTL_SETTLE_MAX_READINGS, (long long)r->interval_id);
        return CTL_ST_E_INVAL;
    }
    if (stm_interval(rv->v, rv->n, start, end, rules, &m->metered) != STM_OK) {
        ctl_errf(err, errlen, "meter %s: bad readings or rules", m->meter_id);
        return CTL_ST_E_INVAL;
    }
    return CTL_ST_OK;
}

static int add_homes(ctl_store *s, build_ctx *b, char *err, size_t errlen)
{
    id_list l = {NULL, 0, 0};
    int rc = ctl_registry_list(ctl_store_db(s), on_home, &l);
    if (rc != CTL_REG_OK) {
        ctl_errf(err, errlen, "registry: %s",
                 rc == CTL_ST_E_NOMEM ? "out of memory" : ctl_registry_strerror(rc));
        rc = rc == CTL_ST_E_NOMEM ? CTL_ST_E_NOMEM : CTL_ST_E_DB;
    }
    for (size_t i = 0; i < l.n && rc == CTL_ST_OK; i++) {
        uint64_t id;
        if ((rc = ctl_store_market_id(s, l.ids[i], &id)) != CTL_ST_OK)
            ctl_errf(err, errlen, "market number of %s: %s", l.ids[i], ctl_store_strerror(rc));
        else
            rc = add_member(b, id, l.ids[i], 0);
    }
    free(l.ids);
    return rc;
}

int ctl_settle_input_build(ctl_store *s, const ctl_interval_result *r, const stm_rules *rules,
                           ctl_settle_input *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    build_ctx b = {out, 0, 0, CTL_ST_OK};
    reading_vec rv = {NULL, 0, 0, 0};
    int rc = ctl_store_trades(s, r->interval_id, on_trade, &b);
    if (rc == CTL_ST_OK && b.rc != CTL_ST_OK)
        rc = b.rc;
    if (rc != CTL_ST_OK) {
        ctl_errf(err, errlen, "trades of interval %lld: %s", (long long)r->interval_id,
                 ctl_store_strerror(rc));
        goto out;
    }
    if ((rc = add_homes(s, &b, err, errlen)) != CTL_ST_OK)
        goto out;
    merge_members(out);
    out->meters = calloc(out->n_members ? out->n_members : 1, sizeof *out->meters);
    if (!out->meters) {
        rc = CTL_ST_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < out->n_members; i++) {
        ctl_settle_member *m = &out->members[i];
        if ((rc = meter_of(s, r, rules, m, &rv, err, errlen)) != CTL_ST_OK)
            goto out;
        if (m->metered.status == STM_GOOD)
            out->n_good++;
        else if (m->metered.status == STM_FLAGGED)
            out->n_flagged++;
        else
            out->n_missing++;
        if (m->metered.status != STM_MISSING)
            out->meters[out->in.n_meters++] = (stl_metered){
                m->market_id, m->metered.import_wh, m->metered.export_wh, m->metered.quality,
                STL_TIER_UNSIGNED, 0};
    }
    out->in.interval_id = r->interval_id;
    out->in.interval_len_s = (uint32_t)r->length_s;
    out->in.tariffs = (stl_tariffs){r->params.feed_in_uc_per_kwh, r->params.retail_uc_per_kwh,
                                    r->params.network_fee_uc_per_kwh};
    out->in.trades = out->trades;
    out->in.meters = out->meters;
out:
    free(rv.v);
    if (rc != CTL_ST_OK)
        ctl_settle_input_free(out);
    return rc;
}
