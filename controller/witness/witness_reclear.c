/*
 * The witness re-clearing the market (witness.h, ctl_witness_reclear): for each ex_ante block
 * it has not audited yet, the interval's book is rebuilt from the orders as the homes signed
 * them (each signature checked against the registry's key, the latest signed order of each home
 * taken, whatever the store marked as superseded), cleared with the community's mechanism and
 * the block's own tariffs, and the trades must be exactly the block's.
 */
#include "witness/witness.h"

#include "common/errbuf.h"
#include "db/order_evidence.h"
#include "orders/order_msg.h"
#include "settle/ledger_store.h"

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
    if (len <= CTL_ORDER_SIG_BYTES ||
        ctl_order_decode_bin(signed_msg, len - CTL_ORDER_SIG_BYTES, &m, detail, sizeof detail) !=
            CTL_R_OK)
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
    return (x->price_uc_per_kwh > y->price_uc_per_kwh) - (x->price_uc_per_kwh < y->price_uc_per_kwh);
}

/* The block's trades as mkt_trades (seller, buyer, contracted energy, price), sorted, into a
 * malloc'd *out. 0, or -1 (database, memory or an undecodable record). */
static int block_trades(ctl_db *db, uint64_t height, mkt_trade **out, size_t *n)
{
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (ctl_db_prepare(db, "SELECT body FROM ledger_tx WHERE height = ?1 ORDER BY log_index",
                       &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)height);
    size_t cap = 0;
    int rc, bad = 0;
    while (!bad && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        stl_tx tx;
        if (stl_tx_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &tx) !=
            STL_OK) {
            bad = 1;
            break;
        }
        if (tx.kind != STL_TX_TRADE)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            mkt_trade *v = realloc(*out, cap * sizeof *v);
            if (!v) {
                bad = 1;
                break;
            }
            *out = v;
        }
        mkt_trade *t = &(*out)[(*n)++];
        memset(t, 0, sizeof *t);
        t->seller = tx.trade.seller;
        t->buyer = tx.trade.buyer;
        t->energy_wh = tx.trade.contracted_wh;
        t->price_uc_per_kwh = tx.trade.price_uc_per_kwh;
    }
    sqlite3_finalize(st);
    if (bad || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
        free(*out);
        *out = NULL;
        return -1;
    }
    if (*n)
        qsort(*out, *n, sizeof **out, trade_cmp);
    return 0;
}

/* Re-clears block b (height) and compares; CTL_LEDGER_OK, E_FAULT (msg) or E_DB/E_NOMEM. */
static int reclear_block(ctl_db *db, const stl_block *b, uint64_t height, mkt_mechanism mech,
                         char *msg, size_t msglen)
{
    book_ctx bc = {b->interval_id, "", NULL, NULL, 0, msg, msglen, 0};
    mkt_clearing *c = NULL;
    mkt_trade *have = NULL, *want = NULL;
    size_t n_have = 0, n_want = 0;
    int rc = CTL_LEDGER_E_NOMEM;
    bc.book = malloc(BOOK_MAX * sizeof *bc.book);
    bc.created_ms = malloc(BOOK_MAX * sizeof *bc.created_ms);
    if (!bc.book || !bc.created_ms)
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
    if (!(c = mkt_clearing_new(bc.n < 1024 ? 1024 : bc.n * 2)))
        goto out;
    mkt_error_at at;
    size_t n = 0;
    const mkt_trade *t = NULL;
    if (mkt_clear(c, &p, bc.book, bc.n, &at) == MKT_OK)
        t = mkt_clearing_trades(c, &n); /* a rejected book clears with nothing traded */
    if (n && !(want = malloc(n * sizeof *want)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        want[i] = t[i];
        want[i].amount_uc = want[i].fee_uc = 0;
    }
    n_want = n;
    if (n_want)
        qsort(want, n_want, sizeof *want, trade_cmp);
    if (block_trades(db, height, &have, &n_have) != 0) {
        rc = CTL_LEDGER_E_DB;
        goto out;
    }
    rc = CTL_LEDGER_OK;
    if (n_have != n_want || (n_have && memcmp(have, want, n_have * sizeof *have) != 0)) {
        ctl_errf(msg, msglen,
                 "interval %lld: the block's %zu trades are not the clearing of the %zu orders "
                 "the homes signed (%zu trades)",
                 (long long)b->interval_id, n_have, bc.n, n_want);
        rc = CTL_LEDGER_E_FAULT;
    }
out:
    mkt_clearing_free(c);
    free(have);
    free(want);
    free(bc.book);
    free(bc.created_ms);
    return rc;
}

int ctl_witness_reclear(ctl_db *db, int64_t audited_size, mkt_mechanism mech, char *msg,
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
            rc = reclear_block(db, &b, height, mech, msg, msglen);
    }
    free(todo);
    return rc;
}
