/*
 * The witness re-clearing the market (witness.h, ctl_witness_reclear): for each ex_ante block
 * it has not audited yet, the interval's book is rebuilt from the orders as the homes signed
 * them (each signature checked against the registry's key, the latest signed order of each home
 * taken, whatever the store marked as superseded), cleared with the community's mechanism and
 * the block's own tariffs, and the trades must be exactly the block's.
 *
 * For each ex_post block the book is rebuilt as the controller built it
 * (daemon/clearing_ex_post.c): every home the block settled as good is in it with its metered
 * net energy, recomputed from the meter's stored readings with the witness's meter rules (and
 * compared with what the block settled, less the import carried in from held intervals, which
 * must itself be the counter's rise the readings give), and with the standing preference that
 * counts for the interval, decoded from the bytes the home signed and verified with the
 * registry's key (the newest signed one whose signed valid_from is the interval or earlier).
 * Then mkt_ex_post_orders and mkt_clear, and the trades must be exactly the block's. Which homes
 * were good is the block's word: the coordinator's cross-home checks (limits, peers, the
 * boundary balance) are not redone here; but a home registered with a meter before the interval
 * whose readings are good and which the block leaves out entirely is a fault. The readings'
 * signatures are not stored (only the tier the controller found), so they are not checked.
 *
 * With the community's topology (ctl_topology, from its [topology] and [feeder] sections) both
 * kinds of book clear within its feeder limits (mkt_clear_grid), and each trade's amount and fee
 * (flat fee, level fees and congestion rent, as the ledger carries them) must be the block's.
 */
#include "witness/witness.h"

#include "common/errbuf.h"
#include "common/grow.h"
#include "db/order_evidence.h"
#include "db/registry.h"
#include "orders/order_msg.h"
#include "orders/pref_msg.h"
#include "settle/settle_carry.h"
#include "settle/settle_input.h"
#include "settle/ledger_store.h"
#include "mgx/topology.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOOK_MAX 100000 /* homes in one interval's book */

typedef struct {
    int64_t interval_id;
    char community[CTL_ID_MAX + 1]; /* the bus community of the first order; all must match */
    mkt_order *book;
    int64_t *created_ms; /* per book entry: the signed order's creation time */
    char (*names)[CTL_PARTICIPANT_MAX]; /* per book entry: its home, for the topology */
    size_t n;
    char *msg;
    size_t msglen;
    int fault;
} book_ctx;

/* One accepted order: decoded from the signed bytes, verified, and kept when it is the home's
 * latest signed order for the interval. */
static int take_order(const char *who, uint64_t market_id, const uint8_t *signed_msg, size_t len,
                      const uint8_t *pk, void *ctx)
{
    book_ctx *b = ctx;
    ctl_order_msg m;
    char detail[160];
    if (len <= CTL_ORDER_SIG_BYTES || ctl_order_decode_bin(signed_msg, len - CTL_ORDER_SIG_BYTES,
                                                           &m, detail, sizeof detail) != CTL_R_OK)
        goto fault;
    memcpy(m.sig, signed_msg + len - CTL_ORDER_SIG_BYTES, CTL_ORDER_SIG_BYTES);
    if (!pk || ctl_order_verify(&m, pk) != CTL_R_OK || strcmp(m.participant, who) != 0 ||
        m.interval_id != b->interval_id || (b->community[0] && strcmp(m.community, b->community)))
        goto fault;
    snprintf(b->community, sizeof b->community, "%s", m.community);
    if (b->n && b->book[b->n - 1].participant == market_id) { /* rows come in market id order */
        if (m.created_ms <= b->created_ms[b->n - 1])
            return 0;
        b->n--; /* a later order of the same home replaces the one taken */
    }
    if (b->n == BOOK_MAX)
        goto fault;
    mkt_order *o = &b->book[b->n];
    o->participant = market_id;
    o->side = m.side;
    o->n_steps = m.n_steps;
    memcpy(o->steps, m.steps, sizeof o->steps);
    snprintf(b->names[b->n], CTL_PARTICIPANT_MAX, "%s", who);
    b->created_ms[b->n++] = m.created_ms;
    return 0;
fault:
    ctl_errf(b->msg, b->msglen,
             "interval %lld: %s's stored order is not an order it signed for this interval",
             (long long)b->interval_id, who);
    b->fault = 1;
    return 1;
}

static int trade_cmp(const void *a, const void *b)
{
    const mkt_trade *x = a, *y = b;
    if (x->seller != y->seller)
        return x->seller < y->seller ? -1 : 1;
    if (x->buyer != y->buyer)
        return x->buyer < y->buyer ? -1 : 1;
    if (x->energy_wh != y->energy_wh)
        return x->energy_wh < y->energy_wh ? -1 : 1;
    return (x->price_uc_per_kwh > y->price_uc_per_kwh) -
           (x->price_uc_per_kwh < y->price_uc_per_kwh);
}

/* Room for element n of *v (size bytes each, at most max): 0, or -1 (memory, or max). */

/* Decodes every transaction of block height and calls fn for those of kind; fn returns
 * non-zero to fail. 0, or -1 (database, an undecodable record, or fn). */
static int block_txs(ctl_db *db, uint64_t height, stl_tx_kind kind,
                     int (*fn)(const stl_tx *tx, void *ctx), void *ctx)
{
    sqlite3_stmt *st;
    if (ctl_db_prepare(db, "SELECT body FROM ledger_tx WHERE height = ?1 ORDER BY log_index",
                       &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)height);
    int rc, bad = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        stl_tx tx;
        if (stl_tx_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &tx) !=
                STL_OK ||
            (tx.kind == kind && fn(&tx, ctx) != 0)) {
            bad = 1;
            break;
        }
    }
    sqlite3_finalize(st);
    return bad || (rc != SQLITE_DONE && rc != SQLITE_ROW) ? -1 : 0;
}

typedef struct {
    mkt_trade *v;
    size_t n, cap;
} trade_vec;

static int take_trade(const stl_tx *tx, void *ctx)
{
    trade_vec *tv = ctx;
    if (ctl_grow((void **)&tv->v, &tv->cap, tv->n, sizeof *tv->v, STL_MAX_TRADES) != 0)
        return 1;
    mkt_trade *t = &tv->v[tv->n++];
    memset(t, 0, sizeof *t);
    t->seller = tx->trade.seller;
    t->buyer = tx->trade.buyer;
    t->energy_wh = tx->trade.contracted_wh;
    t->price_uc_per_kwh = tx->trade.price_uc_per_kwh;
    t->amount_uc = tx->trade.amount_uc;
    t->fee_uc = tx->trade.contract_fee_uc;
    return 0;
}

/* The block's trades as mkt_trades (seller, buyer, contracted energy, price, amount, and the
 * contract's fee with any congestion rent in it), sorted, into a
 * malloc'd *out. 0, or -1 (database, memory or an undecodable record). */
static int block_trades(ctl_db *db, uint64_t height, mkt_trade **out, size_t *n)
{
    trade_vec tv = {NULL, 0, 0};
    if (block_txs(db, height, STL_TX_TRADE, take_trade, &tv) != 0) {
        free(tv.v);
        return -1;
    }
    if (tv.n)
        qsort(tv.v, tv.n, sizeof *tv.v, trade_cmp);
    *out = tv.v;
    *n = tv.n;
    return 0;
}

/* The clearing of book[0..n) with p: within topo's limits (intervals of len_s seconds) when
 * topo is on and names (book[i]'s home) given, each trade's fee then carrying its congestion
 * rent as the ledger does; else on the copper plate. A rejected book clears with nothing
 * traded. The trades into a malloc'd *out (NULL for none). 0, or -1 (memory). */
static int clear_book(const mkt_params *p, const mkt_order *book, size_t n_book,
                      const ctl_topology *topo, uint32_t len_s,
                      const char (*names)[CTL_PARTICIPANT_MAX], mkt_trade **out, size_t *n_out)
{
    mkt_clearing *c = NULL;
    mkt_grid_clearing *g = NULL;
    const char **who = NULL;
    mkt_error_at at;
    size_t n = 0;
    const mkt_trade *t = NULL;
    const int64_t *rent = NULL;
    int rc = -1;
    *out = NULL;
    if (topo && topo->on && names) {
        g = mkt_grid_clearing_new(n_book ? n_book : 1);
        who = calloc(n_book ? n_book : 1, sizeof *who);
        if (!g || !who)
            goto out;
        for (size_t i = 0; i < n_book; i++)
            who[i] = names[i];
        int mrc = ctl_topology_clear_book(g, topo, len_s, p, book, who, n_book, &at);
        if (mrc == MKT_E_NOMEM)
            goto out;
        if (mrc == MKT_OK) {
            t = mkt_grid_trades(g, &n);
            rent = mkt_grid_trade_congestion(g);
        }
    } else {
        if (!(c = mkt_clearing_new(n_book < 1024 ? 1024 : n_book * 2)))
            goto out;
        if (mkt_clear(c, p, book, n_book, &at) == MKT_OK)
            t = mkt_clearing_trades(c, &n);
    }
    if (n && !(*out = malloc(n * sizeof **out)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        (*out)[i] = t[i];
        if (rent)
            (*out)[i].fee_uc += rent[i];
    }
    *n_out = n;
    rc = 0;
out:
    mkt_clearing_free(c);
    mkt_grid_clearing_free(g);
    free(who);
    return rc;
}

/* Clears book[0..n) with p (clear_book) and compares the trades with block height's; what
 * names the book in msg. CTL_LEDGER_OK, E_FAULT (msg) or E_DB/E_NOMEM. */
static int clear_and_compare(ctl_db *db, uint64_t height, const mkt_params *p,
                             const mkt_order *book, size_t n_book, const ctl_topology *topo,
                             uint32_t len_s, const char (*names)[CTL_PARTICIPANT_MAX],
                             const char *what, char *msg, size_t msglen)
{
    mkt_trade *have = NULL, *want = NULL;
    size_t n_have = 0, n_want = 0;
    int rc = CTL_LEDGER_E_NOMEM;
    if (clear_book(p, book, n_book, topo, len_s, names, &want, &n_want) != 0)
        goto out;
    if (n_want)
        qsort(want, n_want, sizeof *want, trade_cmp);
    if (block_trades(db, height, &have, &n_have) != 0) {
        rc = CTL_LEDGER_E_DB;
        goto out;
    }
    rc = CTL_LEDGER_OK;
    size_t i = 0;
    while (i < n_have && i < n_want && memcmp(&have[i], &want[i], sizeof *have) == 0)
        i++;
    if (n_have != n_want || i < n_have) {
        /* the trades themselves, or only their money: a changed fee or congestion rent */
        if (n_have == n_want && trade_cmp(&have[i], &want[i]) == 0 &&
            have[i].amount_uc == want[i].amount_uc)
            ctl_errf(msg, msglen,
                     "interval %lld: the block's trade %llu -> %llu (%lld Wh) has a fee of %lld "
                     "uc, the clearing of %s gives %lld (network fee, level fees and congestion "
                     "rent)",
                     (long long)p->interval_id, (unsigned long long)have[i].seller,
                     (unsigned long long)have[i].buyer, (long long)have[i].energy_wh,
                     (long long)have[i].fee_uc, what, (long long)want[i].fee_uc);
        else if (n_have == n_want)
            /* as many trades, others: name the first that differs */
            ctl_errf(msg, msglen,
                     "interval %lld: the block's %zu trades are not the clearing of %s (its "
                     "trade %llu -> %llu, %lld Wh at %lld uc/kWh, is %llu -> %llu, %lld Wh at "
                     "%lld there)",
                     (long long)p->interval_id, n_have, what,
                     (unsigned long long)have[i].seller, (unsigned long long)have[i].buyer,
                     (long long)have[i].energy_wh, (long long)have[i].price_uc_per_kwh,
                     (unsigned long long)want[i].seller, (unsigned long long)want[i].buyer,
                     (long long)want[i].energy_wh, (long long)want[i].price_uc_per_kwh);
        else
            ctl_errf(msg, msglen,
                     "interval %lld: the block's %zu trades are not the clearing of %s (%zu "
                     "trades)",
                     (long long)p->interval_id, n_have, what, n_want);
        rc = CTL_LEDGER_E_FAULT;
    }
out:
    free(have);
    free(want);
    return rc;
}

/* Re-clears ex_ante block b (height) from its signed orders and compares. */
static int reclear_block(ctl_db *db, const stl_block *b, uint64_t height, mkt_mechanism mech,
                         const ctl_topology *topo, char *msg, size_t msglen)
{
    book_ctx bc = {b->interval_id, "", NULL, NULL, NULL, 0, msg, msglen, 0};
    int rc = CTL_LEDGER_E_NOMEM;
    bc.book = malloc(BOOK_MAX * sizeof *bc.book);
    bc.created_ms = malloc(BOOK_MAX * sizeof *bc.created_ms);
    bc.names = malloc(BOOK_MAX * sizeof *bc.names);
    if (!bc.book || !bc.created_ms || !bc.names)
        goto out;
    int er = ctl_order_evidence(db, b->interval_id, take_order, &bc);
    if (bc.fault) {
        rc = CTL_LEDGER_E_FAULT;
        goto out;
    }
    if (er != 0) {
        rc = CTL_LEDGER_E_DB;
        goto out;
    }
    mkt_params p = {mech, b->tariffs.feed_in_uc_per_kwh, b->tariffs.retail_uc_per_kwh,
                    b->tariffs.network_fee_uc_per_kwh, b->interval_id};
    char what[80];
    snprintf(what, sizeof what, "the %zu orders the homes signed", bc.n);
    rc = clear_and_compare(db, height, &p, bc.book, bc.n, topo, b->interval_len_s, bc.names, what,
                           msg, msglen);
out:
    free(bc.book);
    free(bc.created_ms);
    free(bc.names);
    return rc;
}

/* ---- ex_post ---- */

/* A position of an ex_post block: the participant, whether it settled good, its energy, and
 * who it is in the registry. */
typedef struct {
    uint64_t participant;
    int good;
    int64_t import_wh, export_wh;
    char name[CTL_PARTICIPANT_MAX], meter[CTL_PARTICIPANT_MAX];
} block_home;

static int home_cmp(const void *a, const void *b)
{
    const block_home *x = a, *y = b;
    return (x->participant > y->participant) - (x->participant < y->participant);
}

typedef struct {
    block_home *v;
    size_t n, cap;
} home_vec;

static int take_position(const stl_tx *tx, void *ctx)
{
    home_vec *hv = ctx;
    if (ctl_grow((void **)&hv->v, &hv->cap, hv->n, sizeof *hv->v, CTL_SETTLE_MAX_MEMBERS) != 0)
        return 1;
    block_home *h = &hv->v[hv->n++];
    memset(h, 0, sizeof *h);
    h->participant = tx->position.participant;
    h->good = tx->position.status == STL_POS_GOOD;
    h->import_wh = tx->position.import_wh;
    h->export_wh = tx->position.export_wh;
    return 0;
}

/* The block's positions, by market number, into a malloc'd *out. */
static int block_homes(ctl_db *db, uint64_t height, block_home **out, size_t *n)
{
    home_vec hv = {NULL, 0, 0};
    if (block_txs(db, height, STL_TX_POSITION, take_position, &hv) != 0) {
        free(hv.v);
        return -1;
    }
    if (hv.n)
        qsort(hv.v, hv.n, sizeof *hv.v, home_cmp);
    *out = hv.v;
    *n = hv.n;
    return 0;
}

/* The registry's homes with a meter registered before the interval started (listed first:
 * the readings are read afterwards). One registered since may or may not have been in the book
 * (the controller clears after the interval's end), and its meter may have reported before it
 * was registered: it is not looked for. */
typedef struct {
    char (*ids)[CTL_PARTICIPANT_MAX];
    char (*meters)[CTL_PARTICIPANT_MAX];
    size_t n, cap;
    int64_t before_s;
    int nomem;
} metered_list;

static int on_metered_home(const ctl_participant *p, void *ctx)
{
    metered_list *l = ctx;
    if (p->role != CTL_ROLE_HOME || !p->meter_id[0] || p->added_s >= l->before_s)
        return 0;
    size_t cap_meters = l->cap; /* both arrays grow together */
    if (ctl_grow((void **)&l->ids, &l->cap, l->n, sizeof *l->ids, CTL_SETTLE_MAX_MEMBERS) != 0 ||
        ctl_grow((void **)&l->meters, &cap_meters, l->n, sizeof *l->meters,
                 CTL_SETTLE_MAX_MEMBERS) != 0) {
        l->nomem = 1;
        return 1;
    }
    snprintf(l->ids[l->n], CTL_PARTICIPANT_MAX, "%s", p->id);
    snprintf(l->meters[l->n++], CTL_PARTICIPANT_MAX, "%s", p->meter_id);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct {
    mtr_sample *v;
    size_t n, cap;
    int full;
} reading_vec;

static int take_reading(const mtr_sample *r, void *ctx)
{
    reading_vec *rv = ctx;
    if (ctl_grow((void **)&rv->v, &rv->cap, rv->n, sizeof *rv->v, CTL_SETTLE_MAX_READINGS) != 0) {
        rv->full = 1; /* the controller holds such a meter (a flood): never good */
        return 1;
    }
    rv->v[rv->n++] = *r;
    return 0;
}

/* The interval's energy from meter's stored readings (the window stm_window gives); a meter
 * with more readings than settlement looks at is never good (it holds such a meter). 0, or -1
 * when SQLite fails. */
static int readings_energy(ctl_db *db, const char *meter, int64_t start_ms, int64_t end_ms,
                           const stm_rules *rules, reading_vec *rv, stm_result *e)
{
    int64_t from, to;
    stm_window(start_ms, end_ms, rules, &from, &to);
    rv->n = 0;
    rv->full = 0;
    if (ctl_reading_evidence(db, meter, from, to == INT64_MAX ? to : to + 1, take_reading, rv) <
            0 &&
        !rv->full)
        return -1;
    if (rv->full || stm_interval(rv->v, rv->n, start_ms, end_ms, rules, e) != STM_OK)
        *e = (stm_result){STM_FLAGGED, 0, 0, MTR_Q_FLOOD};
    return 0;
}

/* The import counter of meter at t_ms from its stored readings (the controller's boundary
 * rule, stm_boundary): 1 known, 0 not, -1 SQLite. */
static int readings_import_at(ctl_db *db, const char *meter, int64_t t_ms, const stm_rules *rules,
                              reading_vec *rv, int64_t *import_wh)
{
    int64_t from, to, export_wh;
    stm_window(t_ms, t_ms, rules, &from, &to);
    rv->n = 0;
    rv->full = 0;
    if (ctl_reading_evidence(db, meter, from, to == INT64_MAX ? to : to + 1, take_reading, rv) <
            0 &&
        !rv->full)
        return -1;
    return !rv->full && stm_boundary(rv->v, rv->n, t_ms, rules, import_wh, &export_wh);
}

/* The preference that counts: of the home's signed preferences valid from the interval or
 * before (by the signed valid_from, not the stored column), the newest (ties: stored last).
 * Every preference of the interval's book must be for one community. */
typedef struct {
    const char *who;
    int64_t interval_id;
    char *community; /* the first one's, shared by the block's homes */
    size_t community_cap;
    ctl_pref_msg best;
    int found, fault;
} pref_pick;

static int take_pref(int64_t pref_id, const uint8_t *signed_msg, size_t len, const uint8_t *pk,
                     void *ctx)
{
    (void)pref_id; /* rows come in pref_id order, so ">=" below keeps the one stored last */
    pref_pick *x = ctx;
    ctl_pref_msg m;
    if (len <= CTL_ORDER_SIG_BYTES ||
        ctl_pref_decode_bin(signed_msg, len - CTL_ORDER_SIG_BYTES, &m, NULL, 0) != CTL_R_OK)
        goto fault;
    memcpy(m.sig, signed_msg + len - CTL_ORDER_SIG_BYTES, CTL_ORDER_SIG_BYTES);
    if (!pk || ctl_pref_verify(&m, pk) != CTL_R_OK || strcmp(m.participant, x->who) != 0)
        goto fault;
    if (m.valid_from > x->interval_id)
        return 0; /* not started yet */
    if (x->community[0] && strcmp(m.community, x->community) != 0)
        goto fault;
    snprintf(x->community, x->community_cap, "%s", m.community);
    if (!x->found || m.created_ms >= x->best.created_ms)
        x->best = m;
    x->found = 1;
    return 0;
fault:
    x->fault = 1;
    return 1;
}

/* Re-clears ex_post block b (height): the book from the readings and signed preferences. */
static int reclear_ex_post(ctl_db *db, const stl_block *b, uint64_t height, mkt_mechanism mech,
                           const stm_rules *rules, const ctl_topology *topo, char *msg,
                           size_t msglen)
{
    char(*book_names)[CTL_PARTICIPANT_MAX] = NULL;
    block_home *g = NULL;
    size_t n = 0, n_good = 0, n_book = 0;
    mkt_ex_post_home *homes = NULL;
    mkt_preference *prefs = NULL;
    mkt_order *book = NULL;
    const char **names = NULL;
    metered_list ml = {NULL, NULL, 0, 0, b->interval_id * (int64_t)b->interval_len_s, 0};
    char community[CTL_ID_MAX + 1] = "";
    reading_vec rv = {NULL, 0, 0, 0};
    long long iv = (long long)b->interval_id;
    int rc = CTL_LEDGER_E_DB;
    if (block_homes(db, height, &g, &n) != 0)
        goto out;
    rc = CTL_LEDGER_E_NOMEM;
    homes = calloc(n ? n : 1, sizeof *homes);
    prefs = calloc(n ? n : 1, sizeof *prefs);
    book = calloc(n ? n : 1, sizeof *book);
    names = calloc(n ? n : 1, sizeof *names);
    if (!homes || !prefs || !book || !names)
        goto out;
    int64_t start_ms = b->interval_id * (int64_t)b->interval_len_s * 1000,
            end_ms = start_ms + (int64_t)b->interval_len_s * 1000;
    for (size_t i = 0; i < n; i++) {
        int mr = ctl_market_member(db, g[i].participant, g[i].name, sizeof g[i].name, g[i].meter,
                                   sizeof g[i].meter);
        if (mr < 0) {
            rc = CTL_LEDGER_E_DB;
            goto out;
        }
        names[i] = g[i].name;
        if (!g[i].good)
            continue; /* held or flagged: not in the book, as the controller left it out */
        const char *who = g[i].name;
        if (mr > 0 || !g[i].meter[0]) {
            ctl_errf(msg, msglen,
                     "interval %lld: participant %llu settled as metered has no meter "
                     "in the registry",
                     iv, (unsigned long long)g[i].participant);
            rc = CTL_LEDGER_E_FAULT;
            goto out;
        }
        /* the energy the controller cleared with: the meter's stored readings over the interval
         * (the block's import also carries the held intervals' import, settle_carry.h) */
        int64_t carried_from = 0, carried_wh = 0;
        int cr = ctl_carry_get(db, b->interval_id, (int64_t)g[i].participant, &carried_from,
                               &carried_wh);
        if (cr < 0) {
            rc = CTL_LEDGER_E_DB;
            goto out;
        }
        if (cr == 0)
            carried_wh = 0;
        if (cr == 1) {
            /* the carry is the rise of the import counter from the end of the home's last good
             * interval (the start of carried_from) to the start of this one (settle_carry.h) */
            int64_t a_imp = 0, b_imp = 0;
            int ka =
                readings_import_at(db, g[i].meter, carried_from * (int64_t)b->interval_len_s * 1000,
                                   rules, &rv, &a_imp);
            int kb =
                ka == 1 ? readings_import_at(db, g[i].meter, start_ms, rules, &rv, &b_imp) : ka;
            if (ka < 0 || kb < 0) {
                rc = CTL_LEDGER_E_DB;
                goto out;
            }
            if (!ka || !kb || b_imp - a_imp != carried_wh) {
                ctl_errf(msg, msglen,
                         "interval %lld: %s's carried import (%lld Wh since interval %lld) is "
                         "not what meter %s's stored readings give",
                         iv, who, (long long)carried_wh, (long long)carried_from, g[i].meter);
                rc = CTL_LEDGER_E_FAULT;
                goto out;
            }
        }
        stm_result e;
        if (readings_energy(db, g[i].meter, start_ms, end_ms, rules, &rv, &e) != 0) {
            rc = CTL_LEDGER_E_DB;
            goto out;
        }
        if (e.status != STM_GOOD || e.import_wh != g[i].import_wh - carried_wh ||
            e.export_wh != g[i].export_wh) {
            ctl_errf(msg, msglen,
                     "interval %lld: %s's settled energy (import %lld Wh, %lld of it carried, "
                     "export %lld Wh) is not what meter %s's stored readings give",
                     iv, who, (long long)g[i].import_wh, (long long)carried_wh,
                     (long long)g[i].export_wh, g[i].meter);
            rc = CTL_LEDGER_E_FAULT;
            goto out;
        }
        pref_pick pp;
        memset(&pp, 0, sizeof pp);
        pp.who = who;
        pp.interval_id = b->interval_id;
        pp.community = community;
        pp.community_cap = sizeof community;
        int pr = ctl_pref_evidence(db, who, take_pref, &pp);
        if (pp.fault) {
            ctl_errf(msg, msglen,
                     "interval %lld: %s's stored preference is not one it signed for this "
                     "community",
                     iv, who);
            rc = CTL_LEDGER_E_FAULT;
            goto out;
        }
        if (pr != 0) {
            rc = CTL_LEDGER_E_DB;
            goto out;
        }
        if (pp.found)
            prefs[n_good] = pp.best.pref;
        homes[n_good] = (mkt_ex_post_home){g[i].participant, e.export_wh - e.import_wh,
                                           pp.found ? &prefs[n_good] : NULL};
        n_good++;
    }
    /* a home left out: the controller puts every registered home with a meter in the book
     * whose readings are good (clearing_ex_post.c); one with good readings and no position in
     * the block was dropped */
    int lr = ctl_registry_list(db, on_metered_home, &ml);
    if (ml.nomem) {
        rc = CTL_LEDGER_E_NOMEM;
        goto out;
    }
    if (lr != CTL_REG_OK) {
        rc = CTL_LEDGER_E_DB;
        goto out;
    }
    if (n)
        qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < ml.n; i++) {
        const char *key = ml.ids[i];
        if (n && bsearch(&key, names, n, sizeof *names, name_cmp))
            continue;
        stm_result e;
        if (readings_energy(db, ml.meters[i], start_ms, end_ms, rules, &rv, &e) != 0) {
            rc = CTL_LEDGER_E_DB;
            goto out;
        }
        if (e.status == STM_GOOD) {
            ctl_errf(msg, msglen,
                     "interval %lld: meter %s of %s has good readings for the interval (import "
                     "%lld Wh, export %lld Wh) but the block settles no position for it",
                     iv, ml.meters[i], key, (long long)e.import_wh, (long long)e.export_wh);
            rc = CTL_LEDGER_E_FAULT;
            goto out;
        }
    }
    mkt_params p = {mech, b->tariffs.feed_in_uc_per_kwh, b->tariffs.retail_uc_per_kwh,
                    b->tariffs.network_fee_uc_per_kwh, b->interval_id};
    mkt_error_at at;
    if (mkt_ex_post_orders(&p, homes, n_good, book, n, &n_book, &at) != MKT_OK) {
        ctl_errf(msg, msglen,
                 "interval %lld: the metered homes and their preferences make no "
                 "valid book",
                 iv);
        rc = CTL_LEDGER_E_FAULT;
        goto out;
    }
    char what[120];
    snprintf(what, sizeof what, "the metered energy and signed preferences of its %zu good homes",
             n_good);
    /* the book's homes by name, for the topology: each is one of the block's positions */
    if (!(book_names = calloc(n_book ? n_book : 1, sizeof *book_names))) {
        rc = CTL_LEDGER_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_book; i++) {
        block_home key = {.participant = book[i].participant};
        const block_home *h = n ? bsearch(&key, g, n, sizeof *g, home_cmp) : NULL;
        snprintf(book_names[i], CTL_PARTICIPANT_MAX, "%s", h ? h->name : "");
    }
    rc = clear_and_compare(db, height, &p, book, n_book, topo, b->interval_len_s, book_names, what,
                           msg, msglen);
out:
    free(book_names);
    free(rv.v);
    free(g);
    free(homes);
    free(prefs);
    free(book);
    free(names);
    free(ml.ids);
    free(ml.meters);
    return rc;
}

int ctl_witness_reclear(ctl_db *db, int64_t audited_size, mkt_mechanism mech,
                        const stm_rules *rules, const ctl_topology *topo, char *msg,
                        size_t msglen)
{
    /* only the blocks above the audited size, found from the newest back, so a step costs the
     * new blocks and not a decode of the whole ledger; then checked oldest first, so msg names
     * the first difference */
    sqlite3_stmt *st;
    if (ctl_db_prepare(db, "SELECT height FROM ledger_block ORDER BY height DESC", &st) !=
        SQLITE_OK)
        return CTL_LEDGER_E_DB;
    uint64_t *todo = NULL;
    size_t n = 0, cap = 0;
    int rc = CTL_LEDGER_OK, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t height = (uint64_t)sqlite3_column_int64(st, 0);
        stl_block b;
        if ((rc = ctl_ledger_block_load(db, (int64_t)height, 0, &b, NULL)) != CTL_LEDGER_OK)
            break;
        if ((int64_t)b.log_size <= audited_size)
            break;
        if (n == cap) {
            size_t c = cap ? cap * 2 : 64;
            uint64_t *v = realloc(todo, c * sizeof *v);
            if (!v) {
                rc = CTL_LEDGER_E_NOMEM;
                break;
            }
            todo = v;
            cap = c;
        }
        todo[n++] = height;
    }
    if (rc == CTL_LEDGER_OK && s != SQLITE_ROW && s != SQLITE_DONE)
        rc = CTL_LEDGER_E_DB;
    sqlite3_finalize(st);
    while (rc == CTL_LEDGER_OK && n > 0) {
        uint64_t height = todo[--n];
        stl_block b;
        if ((rc = ctl_ledger_block_load(db, (int64_t)height, 0, &b, NULL)) != CTL_LEDGER_OK)
            break;
        if (b.timing == STL_TIMING_EX_ANTE)
            rc = reclear_block(db, &b, height, mech, topo, msg, msglen);
        else if (b.timing == STL_TIMING_EX_POST)
            rc = reclear_ex_post(db, &b, height, mech, rules, topo, msg, msglen);
    }
    free(todo);
    return rc;
}
