/*
 * An interval's settlement input from the controller's database (see settle_input.h): trades
 * and tariffs as cleared, participants from the trades and the registry, metered energy from
 * each participant's stored readings.
 */
#include "settle/settle_input.h"

#include "db/meter_keys.h"
#include "common/grow.h"
#include "db/prefs.h"

#include "common/errbuf.h"

#include "db/registry.h"
#include "settle/settle_carry.h"

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

/* Adds a member (duplicates are merged later). */
static int add_member(build_ctx *b, uint64_t market_id, const char *name, int trades)
{
    ctl_settle_input *x = b->x;
    if (ctl_grow((void **)&x->members, &b->cap_members, x->n_members, sizeof *x->members,
                 CTL_SETTLE_MAX_MEMBERS) != 0)
        return CTL_ST_E_NOMEM;
    ctl_settle_member *m = &x->members[x->n_members++];
    memset(m, 0, sizeof *m);
    m->market_id = market_id;
    snprintf(m->name, sizeof m->name, "%s", name);
    m->trades = trades;
    m->metered.status = STM_MISSING;
    m->carried_from = INT64_MIN;
    return CTL_ST_OK;
}

static int on_trade(const ctl_trade_row *t, void *ctx)
{
    build_ctx *b = ctx;
    ctl_settle_input *x = b->x;
    if (ctl_grow((void **)&x->trades, &b->cap_trades, x->in.n_trades, sizeof *x->trades,
                 STL_MAX_TRADES) != 0)
        return b->rc = CTL_ST_E_NOMEM;
    mkt_trade *m = &x->trades[x->in.n_trades++];
    *m = t->t;
    /* a grid-aware clearing's congestion rent is owed by the buyer to the network, as the
     * fee is: the ledger's trade carries both as the trade's fee (docs/market-rules.md,
     * "Grid-aware clearing"; the witness re-clears to check the split) */
    if (__builtin_add_overflow(m->fee_uc, t->congestion_uc, &m->fee_uc))
        return b->rc = CTL_ST_E_INVAL;
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
    if (ctl_grow((void **)&l->ids, &l->cap, l->n, sizeof *l->ids, CTL_SETTLE_MAX_MEMBERS) != 0)
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
    if (ctl_grow((void **)&rv->v, &rv->cap, rv->n, sizeof *rv->v, CTL_SETTLE_MAX_READINGS) != 0) {
        rv->full = 1;
        return 1;
    }
    rv->v[rv->n++] = *r;
    return 0;
}

/* Layer 6: a home settling good after held or silent intervals pays for their import now:
 * the rise of its import counter from the end of its last good interval to the start of this
 * one (settle_carry.h). Its own boundaries decide; when the old one cannot be determined any
 * more nothing is carried. A counter lower than it was is held as backwards. */
static int carry_of(ctl_store *s, const ctl_interval_result *r, const stm_rules *rules,
                    ctl_settle_member *m, reading_vec *rv, char *err, size_t errlen)
{
    int64_t last, len;
    int rc = ctl_carry_last_good(ctl_store_db(s), (int64_t)m->market_id, r->interval_id, &last,
                                 &len);
    if (rc < 0) {
        ctl_errf(err, errlen, "ledger positions of %s: %s", m->name,
                 ctl_db_errmsg(ctl_store_db(s)));
        return CTL_ST_E_DB;
    }
    int64_t from_ms = (last + 1) * len * 1000, to_ms = r->start_utc * 1000;
    if (rc != 0 || from_ms >= to_ms)
        return CTL_ST_OK; /* never good before, or good in the interval before */
    int64_t a_imp, a_exp, b_imp, b_exp, lo, hi;
    /* the start of this interval, from the readings already at hand */
    if (!stm_boundary(rv->v, rv->n, to_ms, rules, &b_imp, &b_exp))
        return CTL_ST_OK; /* cannot happen for a good interval */
    stm_window(from_ms, from_ms, rules, &lo, &hi);
    rv->n = 0;
    rv->full = 0;
    if ((rc = ctl_store_readings(s, m->meter_id, lo, hi == INT64_MAX ? hi : hi + 1, on_reading,
                                 rv)) != CTL_ST_OK) {
        ctl_errf(err, errlen, "readings of meter %s: %s", m->meter_id, ctl_store_strerror(rc));
        return rc;
    }
    if (rv->full || !stm_boundary(rv->v, rv->n, from_ms, rules, &a_imp, &a_exp))
        return CTL_ST_OK;
    if (b_imp < a_imp) {
        m->metered.status = STM_FLAGGED;
        m->metered.quality |= MTR_Q_BACKWARDS;
        return CTL_ST_OK;
    }
    if (b_imp - a_imp > STL_METER_MAX_WH - m->metered.import_wh) {
        m->metered.status = STM_FLAGGED;
        m->metered.quality |= MTR_Q_RANGE;
        return CTL_ST_OK;
    }
    m->carried_import_wh = b_imp - a_imp;
    m->carried_from = last + 1;
    return CTL_ST_OK;
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
        /* a meter that flooded the store holds its own home, not the interval: the others
         * settle, and the work per home stays bounded (docs/trust.md, layer 7) */
        m->metered = (stm_result){STM_FLAGGED, 0, 0, MTR_Q_FLOOD};
        return CTL_ST_OK;
    }
    if (stm_interval(rv->v, rv->n, start, end, rules, &m->metered) != STM_OK) {
        ctl_errf(err, errlen, "meter %s: bad readings or rules", m->meter_id);
        return CTL_ST_E_INVAL;
    }
    /* the position's attestation: the weakest reading of the same window */
    if (ctl_reading_tier_min(ctl_store_db(s), m->meter_id, from, to == INT64_MAX ? to : to + 1,
                             &m->attestation_tier, NULL) != CTL_DB_OK) {
        ctl_errf(err, errlen, "attestation of meter %s: %s", m->meter_id,
                 ctl_db_errmsg(ctl_store_db(s)));
        return CTL_ST_E_DB;
    }
    if (m->metered.status == STM_MISSING)
        return CTL_ST_OK;
    /* layer 1: what the home's connection, panels and battery allow in the interval */
    ctl_limits l;
    if ((rc = ctl_registry_limits_get(ctl_store_db(s), m->name, &l)) != CTL_REG_OK) {
        ctl_errf(err, errlen, "limits of %s: %s", m->name, ctl_registry_strerror(rc));
        return CTL_ST_E_DB;
    }
    stm_limits sl = {l.connection_w, l.pv_wp, l.battery_wh, l.battery_w};
    uint32_t q = stm_limits_check(&sl, m->metered.import_wh, m->metered.export_wh, r->length_s);
    if (q) {
        m->metered.status = STM_FLAGGED;
        m->metered.quality |= q;
    }
    if (m->metered.status == STM_GOOD)
        return carry_of(s, r, rules, m, rv, err, errlen);
    return CTL_ST_OK;
}

void ctl_trust_rules_default(ctl_trust_rules *t)
{
    *t = (ctl_trust_rules){{30, 100}, 1, {2000, 50, 3}, 1};
}

/* ---- layer 4: peer corroboration of generation ---- */

/* Members whose export is far above their neighbours' per registered kWp (or export at night)
 * are flagged MTR_Q_PEER (mgx/peer_yield.h). Only good members with registered PV are peers. */
static int peer_check(ctl_store *s, const ctl_interval_result *r, const ctl_trust_rules *t,
                      ctl_settle_input *x, char *err, size_t errlen)
{
    size_t n = x->n_members;
    if (!t->peer_on || n == 0)
        return CTL_ST_OK;
    stl_peer_home *h = calloc(n, sizeof *h);
    stl_peer_verdict *v = calloc(n, sizeof *v);
    int64_t *scratch = calloc(n, sizeof *scratch);
    int rc = CTL_ST_OK;
    if (!h || !v || !scratch) {
        rc = CTL_ST_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ctl_settle_member *m = &x->members[i];
        if (m->metered.status != STM_GOOD)
            continue;
        ctl_limits l;
        if (ctl_registry_limits_get(ctl_store_db(s), m->name, &l) != CTL_REG_OK) {
            ctl_errf(err, errlen, "limits of %s", m->name);
            rc = CTL_ST_E_DB;
            goto out;
        }
        /* beyond 1 TWp (a hand-edited registry) it is no peer: the pure check refuses such
         * values, and one home must never stop the interval (layer 7) */
        if (l.pv_wp == CTL_LIMIT_NONE || l.pv_wp <= 0 || l.pv_wp > STL_METER_MAX_WH)
            continue;
        /* what the registered battery can have given in the interval (as layer 1 counts it) */
        stm_limits sl = {l.connection_w, l.pv_wp, l.battery_wh, l.battery_w};
        int64_t bat = stm_battery_wh(&sl, r->length_s);
        if (bat > STL_METER_MAX_WH)
            bat = STL_METER_MAX_WH; /* saturated: any export is within it */
        h[i] = (stl_peer_home){l.pv_wp, m->metered.export_wh, bat, 1};
    }
    if (stl_peer_check(h, n, r->length_s, &t->peer, scratch, v) != STL_PEER_OK) {
        ctl_errf(err, errlen, "peer check: invalid rules or energies");
        rc = CTL_ST_E_INVAL;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ctl_settle_member *m = &x->members[i];
        m->peer = v[i];
        if (v[i].flagged) {
            m->metered.status = STM_FLAGGED;
            m->metered.quality |= MTR_Q_PEER;
            m->carried_import_wh = 0; /* carried only into a good interval */
            m->carried_from = INT64_MIN;
        }
    }
out:
    free(h);
    free(v);
    free(scratch);
    return rc;
}

/* ---- layer 3: the balance against the boundary meter(s) ---- */

typedef struct {
    char (*meters)[CTL_PARTICIPANT_MAX];
    size_t n, cap;
} boundary_list;

static int on_boundary(const ctl_participant *p, void *ctx)
{
    boundary_list *l = ctx;
    if (p->role != CTL_ROLE_BOUNDARY || !p->meter_id[0])
        return 0;
    if (ctl_grow((void **)&l->meters, &l->cap, l->n, sizeof *l->meters, 64) != 0)
        return CTL_ST_E_NOMEM;
    snprintf(l->meters[l->n++], CTL_PARTICIPANT_MAX, "%s", p->meter_id);
    return 0;
}

/* Sums the boundary meters' energy of the interval; b->checked stays 0 (with the reason) when
 * there is none or one has no good reading: then nothing is disputed (the homes' own checks
 * still apply). */
static int boundary_energy(ctl_store *s, const ctl_interval_result *r, const stm_rules *rules,
                           reading_vec *rv, ctl_boundary_state *b, char *err, size_t errlen)
{
    boundary_list l = {NULL, 0, 0};
    int rc = ctl_registry_list(ctl_store_db(s), on_boundary, &l);
    if (rc != CTL_REG_OK) {
        ctl_errf(err, errlen, "registry: %s",
                 rc == CTL_ST_E_NOMEM ? "out of memory" : ctl_registry_strerror(rc));
        rc = rc == CTL_ST_E_NOMEM ? CTL_ST_E_NOMEM : CTL_ST_E_DB;
        goto out;
    }
    b->n_boundary = l.n;
    /* a feeder carries the whole community: meter_max_power_w is a bound for one home's
     * connection, so the coordinator's own meter is not held to it */
    stm_rules br = *rules;
    br.max_power_w = 0;
    rules = &br;
    int64_t start = r->start_utc * 1000, end = (r->start_utc + r->length_s) * 1000, from, to;
    stm_window(start, end, rules, &from, &to);
    for (size_t i = 0; i < l.n; i++) {
        rv->n = 0;
        rv->full = 0;
        if ((rc = ctl_store_readings(s, l.meters[i], from, to == INT64_MAX ? to : to + 1,
                                     on_reading, rv)) != CTL_ST_OK) {
            ctl_errf(err, errlen, "readings of boundary meter %s: %s", l.meters[i],
                     ctl_store_strerror(rc));
            goto out;
        }
        stm_result e;
        if (rv->full || stm_interval(rv->v, rv->n, start, end, rules, &e) != STM_OK ||
            e.status != STM_GOOD) {
            snprintf(b->unchecked_why, sizeof b->unchecked_why,
                     "boundary meter %s has no good reading for the interval", l.meters[i]);
            goto out;
        }
        b->import_wh += e.import_wh;
        b->export_wh += e.export_wh;
    }
    b->checked = l.n > 0;
out:
    free(l.meters);
    return rc;
}

static int boundary_check(ctl_store *s, const ctl_interval_result *r, const stm_rules *rules,
                          const ctl_trust_rules *t, ctl_settle_input *x, reading_vec *rv,
                          char *err, size_t errlen)
{
    ctl_boundary_state *b = &x->boundary;
    int rc = boundary_energy(s, r, rules, rv, b, err, errlen);
    if (rc != CTL_ST_OK || !b->checked)
        return rc;
    size_t n = x->n_members, silent = 0;
    /* a home with a meter but no reading: its energy is unknown, so the residual is too.
     * Counting it 0 would dispute the interval for everyone whenever a meter is late (seen in
     * the demo on a loaded machine); it is held itself (missing) and billed later (layer 6) */
    for (size_t i = 0; i < n; i++)
        silent += x->members[i].meter_id[0] && x->members[i].metered.status == STM_MISSING;
    if (silent) {
        b->checked = 0;
        snprintf(b->unchecked_why, sizeof b->unchecked_why,
                 "%zu home(s) with a meter have no reading for the interval", silent);
        return CTL_ST_OK;
    }
    stl_balance_home *h = calloc(n ? n : 1, sizeof *h);
    uint8_t *held = calloc(n ? n : 1, 1);
    if (!h || !held) {
        rc = CTL_ST_E_NOMEM;
        goto out;
    }
    /* every home counts with its determined energy, held or not: its meter was still on the
     * wire */
    for (size_t i = 0; i < n; i++) {
        const ctl_settle_member *m = &x->members[i];
        if (m->metered.status != STM_MISSING && m->meter_id[0])
            h[i] = (stl_balance_home){m->metered.import_wh, m->metered.export_wh,
                                      m->attestation_tier >= t->boundary_min_tier};
    }
    if (stl_boundary_balance(h, n, b->import_wh, b->export_wh, &t->balance, &b->balance,
                             held) != STL_BALANCE_OK) {
        ctl_errf(err, errlen, "boundary balance: invalid rules or energies");
        rc = CTL_ST_E_INVAL;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ctl_settle_member *m = &x->members[i];
        if (!held[i] || m->metered.status != STM_GOOD)
            continue; /* held already for its own reasons, or corroborated */
        m->metered.status = STM_FLAGGED;
        m->metered.quality |= MTR_Q_DISPUTED;
        m->disputed_held = 1;
        m->carried_import_wh = 0;
        m->carried_from = INT64_MIN;
    }
out:
    free(h);
    free(held);
    return rc;
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
                           const ctl_trust_rules *trust, ctl_settle_input *out, char *err,
                           size_t errlen)
{
    ctl_trust_rules defaults;
    if (!trust) {
        ctl_trust_rules_default(&defaults);
        trust = &defaults;
    }
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
    }
    /* the cross-home checks: peers first (a home flagged by them is not good, so a dispute
     * does not count it twice), then the boundary balance over every metered home */
    if ((rc = peer_check(s, r, trust, out, err, errlen)) != CTL_ST_OK ||
        (rc = boundary_check(s, r, rules, trust, out, &rv, err, errlen)) != CTL_ST_OK)
        goto out;
    for (size_t i = 0; i < out->n_members; i++) {
        ctl_settle_member *m = &out->members[i];
        if (m->metered.status == STM_GOOD)
            out->n_good++;
        else if (m->metered.status == STM_FLAGGED)
            out->n_flagged++;
        else
            out->n_missing++;
        if (m->metered.status != STM_MISSING)
            out->meters[out->in.n_meters++] = (stl_metered){
                m->market_id, m->metered.import_wh + m->carried_import_wh, m->metered.export_wh,
                m->metered.quality, (uint8_t)m->attestation_tier,
                /* the coordinator's own checks (limits, a flood, a dispute at the boundary,
                 * its peers) hold it: HELD in the ledger */
                (m->metered.quality & (MTR_Q_LIMIT | MTR_Q_FLOOD | MTR_Q_DISPUTED | MTR_Q_PEER))
                    ? 1
                    : 0};
    }
    out->in.interval_id = r->interval_id;
    out->in.interval_len_s = (uint32_t)r->length_s;
    out->in.tariffs = (stl_tariffs){r->params.feed_in_uc_per_kwh, r->params.retail_uc_per_kwh,
                                    r->params.network_fee_uc_per_kwh};
    out->in.trades = out->trades;
    out->in.meters = out->meters;
    /* the block records how the interval's market cleared (db/prefs.h keeps it per interval) */
    mkt_timing timing = MKT_EX_ANTE;
    if (ctl_interval_timing_get(ctl_store_db(s), r->interval_id, &timing) != CTL_ST_OK)
        timing = MKT_EX_ANTE;
    out->in.timing = timing == MKT_EX_POST ? STL_TIMING_EX_POST : STL_TIMING_EX_ANTE;
out:
    free(rv.v);
    if (rc != CTL_ST_OK)
        ctl_settle_input_free(out);
    return rc;
}
