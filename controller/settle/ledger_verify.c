/*
 * The audit of the settlement ledger (ledger_verify.h): every stored block, transaction and
 * Merkle node read back and checked, and every block re-settled from its own transactions by
 * the rules that made it (settle_interval.c), naming the first fault.
 */
#include "settle/ledger_verify.h"

#include "common/errbuf.h"
#include "settle/credit_trueup.h"
#include "settle/settle_interval.h"

#include "mgx/merkle.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ctl_db *db;
    char *msg;
    size_t msglen;
    uint64_t height;
    int64_t interval_id;
    int bad;
} audit;

/* Compares each node the replayed log produces with the stored one. */
static int audit_sink(void *ctx, unsigned level, uint64_t index, const uint8_t hash[STL_HASH_LEN])
{
    audit *a = ctx;
    uint8_t stored[STL_HASH_LEN];
    if (ctl_ledger_node(a->db, level, index, stored) != 0) {
        ctl_errf(a->msg, a->msglen,
                 "block %llu (interval %lld): Merkle node level %u index %llu is missing",
                 (unsigned long long)a->height, (long long)a->interval_id, level,
                 (unsigned long long)index);
        a->bad = 1;
        return -1;
    }
    if (memcmp(stored, hash, STL_HASH_LEN) != 0) {
        ctl_errf(
            a->msg, a->msglen,
            "block %llu (interval %lld): Merkle node level %u index %llu differs from the hash of "
            "its transactions",
            (unsigned long long)a->height, (long long)a->interval_id, level,
            (unsigned long long)index);
        a->bad = 1;
        return -1;
    }
    return 0;
}

/* Names the first field in which two transactions of the same kind differ. */
static const char *tx_diff(const stl_tx *x, const stl_tx *y, long long *a, long long *b)
{
    if (x->kind != y->kind) {
        *a = x->kind, *b = y->kind;
        return "kind";
    }
    if (x->kind == STL_TX_TRADE) {
        const stl_settled_trade *p = &x->trade, *q = &y->trade;
        const struct {
            const char *name;
            int64_t u, v;
        } f[] = {{"seller", (int64_t)p->seller, (int64_t)q->seller},
                 {"buyer", (int64_t)p->buyer, (int64_t)q->buyer},
                 {"contracted_wh", p->contracted_wh, q->contracted_wh},
                 {"delivered_wh", p->delivered_wh, q->delivered_wh},
                 {"paid_uc", p->paid_uc, q->paid_uc},
                 {"received_uc", p->received_uc, q->received_uc},
                 {"fee_uc", p->fee_uc, q->fee_uc},
                 {"rounding_uc", p->rounding_uc, q->rounding_uc}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if (f[i].u != f[i].v) {
                *a = f[i].u, *b = f[i].v;
                return f[i].name;
            }
    } else if (x->kind == STL_TX_CREDIT) {
        const stl_credit *p = &x->credit, *q = &y->credit;
        const struct {
            const char *name;
            int64_t u, v;
        } f[] = {{"credit participant", (int64_t)p->participant, (int64_t)q->participant},
                 {"credit status", p->status, q->status},
                 {"credit tier", p->tier, q->tier},
                 {"credit min_tier", p->min_tier, q->min_tier},
                 {"credit source_seq", p->source_seq, q->source_seq},
                 {"minted_wh", p->minted_wh, q->minted_wh},
                 {"credit in_wh", p->in_wh, q->in_wh},
                 {"credit out_wh", p->out_wh, q->out_wh},
                 {"retired_wh", p->retired_wh, q->retired_wh},
                 {"kept_wh", p->kept_wh, q->kept_wh}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if (f[i].u != f[i].v) {
                *a = f[i].u, *b = f[i].v;
                return f[i].name;
            }
    } else {
        const stl_position *p = &x->position, *q = &y->position;
        const struct {
            const char *name;
            int64_t u, v;
        } f[] = {{"participant", (int64_t)p->participant, (int64_t)q->participant},
                 {"status", p->status, q->status},
                 {"tier", p->tier, q->tier},
                 {"local_bought_wh", p->local_bought_wh, q->local_bought_wh},
                 {"local_sold_wh", p->local_sold_wh, q->local_sold_wh},
                 {"grid_bought_wh", p->grid_bought_wh, q->grid_bought_wh},
                 {"grid_sold_wh", p->grid_sold_wh, q->grid_sold_wh},
                 {"local_paid_uc", p->local_paid_uc, q->local_paid_uc},
                 {"fee_paid_uc", p->fee_paid_uc, q->fee_paid_uc},
                 {"local_received_uc", p->local_received_uc, q->local_received_uc},
                 {"grid_paid_uc", p->grid_paid_uc, q->grid_paid_uc},
                 {"grid_received_uc", p->grid_received_uc, q->grid_received_uc},
                 {"contracted_bought_wh", p->contracted_bought_wh, q->contracted_bought_wh},
                 {"contracted_sold_wh", p->contracted_sold_wh, q->contracted_sold_wh}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if (f[i].u != f[i].v) {
                *a = f[i].u, *b = f[i].v;
                return f[i].name;
            }
    }
    *a = *b = 0;
    return "encoding";
}

#define FAULT(...)                                                                                 \
    do {                                                                                           \
        ctl_errf(msg, msglen, __VA_ARGS__);                                                        \
        rc = CTL_LEDGER_E_FAULT;                                                                   \
        goto out;                                                                                  \
    } while (0)

/* Re-settles a block from its own transactions (salted with their stored salts in version 2)
 * and compares every byte and total. */
static int resettle(ctl_db *db, const stl_block *b, const stl_tx *txs,
                    const uint8_t (*salts)[STL_SALT_LEN], size_t n, char *msg, size_t msglen)
{
    stl_credit *tu = NULL;
    size_t ntu = 0;
    size_t nt = 0;
    while (nt < n && txs[nt].kind == STL_TX_TRADE)
        nt++;
    mkt_trade *trades = calloc(nt ? nt : 1, sizeof *trades);
    stl_metered *meters = calloc(n - nt ? n - nt : 1, sizeof *meters);
    stl_reconciler *r = stl_reconciler_new(nt, n - nt); /* meters <= positions */
    ctl_ledger_txs s;
    memset(&s, 0, sizeof s);
    int rc = CTL_LEDGER_OK;
    size_t nm = 0;
    if (!trades || !meters || !r)
        FAULT("block %llu: out of memory while re-settling", (unsigned long long)b->height);
    for (size_t i = 0; i < nt; i++) {
        const stl_settled_trade *t = &txs[i].trade;
        trades[i] = (mkt_trade){t->seller,           t->buyer,     t->contracted_wh,
                                t->price_uc_per_kwh, t->amount_uc, t->contract_fee_uc};
    }
    size_t np = nt;
    while (np < n && txs[np].kind == STL_TX_POSITION)
        np++;
    /* credit records (issue 13) follow the positions; all of a block's name one minimum tier,
     * and the re-derivation with it must give them byte for byte (conservation included) */
    int credit_tier = np < n && txs[np].kind == STL_TX_CREDIT ? txs[np].credit.min_tier : -1;
    for (size_t i = np; i < n; i++)
        if (txs[i].kind != STL_TX_CREDIT)
            FAULT("block %llu (interval %lld): transaction %zu (kind %d) is out of order (trades, "
                  "positions, then credits)",
                  (unsigned long long)b->height, (long long)b->interval_id, i, (int)txs[i].kind);
    /* the true-ups of earlier held positions (credit_trueup.h) follow the interval's own credit
     * records: each is checked against its source and every earlier true-up, and then re-encoded
     * with the rest below */
    tu = calloc(n - np + 1, sizeof *tu);
    if (!tu)
        FAULT("block %llu: out of memory while re-settling", (unsigned long long)b->height);
    for (size_t i = np; i < n; i++) {
        const stl_credit *c = &txs[i].credit;
        if (!stl_credit_is_trueup(c)) {
            if (ntu)
                FAULT("block %llu (interval %lld): credit record %zu follows a true-up",
                      (unsigned long long)b->height, (long long)b->interval_id, i);
            continue;
        }
        if (ntu && tu[ntu - 1].source_seq >= c->source_seq)
            FAULT("block %llu (interval %lld): true-up %zu is not in ascending source order",
                  (unsigned long long)b->height, (long long)b->interval_id, i);
        char why[256];
        if (c->min_tier != credit_tier ||
            ctl_trueup_audit(db, c, b->log_size - b->n_tx, (uint8_t)credit_tier, why,
                             sizeof why) != 0)
            FAULT("block %llu (interval %lld) credit true-up %zu: %s",
                  (unsigned long long)b->height, (long long)b->interval_id, i,
                  c->min_tier != credit_tier ? "its minimum tier is not the block's" : why);
        tu[ntu++] = *c;
    }
    for (size_t i = nt; i < np; i++) {
        const stl_position *p = &txs[i].position;
        if (p->status != STL_POS_MISSING)
            meters[nm++] = (stl_metered){p->participant, p->import_wh, p->export_wh, p->quality,
                                         p->tier, p->status == STL_POS_HELD};
    }
    stl_error_at at;
    int src = stl_reconcile(r, &b->tariffs, trades, nt, meters, nm, &at);
    if (src != STL_OK)
        FAULT("block %llu (interval %lld): its transactions are not a valid settlement (%s%s%zu)",
              (unsigned long long)b->height, (long long)b->interval_id, stl_strerror(src),
              at.trade_index != SIZE_MAX ? ", trade " : ", meter ",
              at.trade_index != SIZE_MAX ? at.trade_index : at.meter_index);
    if ((rc = ctl_settle_txs(r, b->interval_id, b->version, credit_tier, tu, ntu, NULL, salts,
                             &s)) !=
        CTL_LEDGER_OK)
        FAULT("block %llu: cannot re-encode its transactions", (unsigned long long)b->height);
    if (s.n != n)
        FAULT("block %llu (interval %lld): %zu transactions stored, the settlement rules give %zu "
              "(a position is missing or extra)",
              (unsigned long long)b->height, (long long)b->interval_id, n, s.n);
    for (size_t i = 0; i < n; i++) {
        uint8_t enc[STL_TX_MAX_LEN];
        size_t len = stl_tx_encode(&txs[i], enc);
        if (len == s.len[i] && memcmp(enc, s.enc[i], len) == 0)
            continue;
        stl_tx again;
        if (stl_tx_decode(s.enc[i], s.len[i], &again) != STL_OK)
            FAULT("block %llu: internal re-encoding error", (unsigned long long)b->height);
        long long u, v;
        const char *field = tx_diff(&txs[i], &again, &u, &v);
        FAULT("block %llu (interval %lld) transaction %zu: %s is %lld, the settlement rules give "
              "%lld",
              (unsigned long long)b->height, (long long)b->interval_id, i, field, u, v);
    }
    stl_block want = *b;
    want.totals = *stl_reconciled_totals(r);
    uint8_t e1[STL_BLOCK_MAX_LEN], e2[STL_BLOCK_MAX_LEN];
    size_t l1 = stl_block_encode(b, e1), l2 = stl_block_encode(&want, e2);
    if (l1 != l2 || memcmp(e1, e2, l1) != 0)
        FAULT("block %llu (interval %lld): the block's totals differ from the sums of its "
              "transactions",
              (unsigned long long)b->height, (long long)b->interval_id);
    const stl_totals *t = &want.totals;
    if (t->paid_uc != t->received_uc + t->fees_uc + t->rounding_uc)
        FAULT("block %llu: money does not balance", (unsigned long long)b->height);
out:
    free(tu);
    ctl_ledger_txs_free(&s);
    stl_reconciler_free(r);
    free(trades);
    free(meters);
    return rc;
}

static int audit_block(audit *a, sqlite3_stmt *txq, const stl_block *b, stl_frontier *f, char *msg,
                       size_t msglen)
{
    int rc = CTL_LEDGER_OK;
    size_t cap = b->n_tx ? b->n_tx : 1, n = 0;
    stl_tx *txs = calloc(cap, sizeof *txs);
    uint8_t(*leaves)[STL_HASH_LEN] = calloc(cap, STL_HASH_LEN);
    uint8_t(*salts)[STL_SALT_LEN] = calloc(cap, STL_SALT_LEN);
    if (!txs || !leaves || !salts)
        FAULT("out of memory");
    sqlite3_reset(txq);
    sqlite3_bind_int64(txq, 1, (sqlite3_int64)b->height);
    while (sqlite3_step(txq) == SQLITE_ROW) {
        uint64_t li = (uint64_t)sqlite3_column_int64(txq, 0);
        if (n >= b->n_tx)
            FAULT("block %llu (interval %lld): more than its %u transactions are stored (log "
                  "index %llu)",
                  (unsigned long long)b->height, (long long)b->interval_id, b->n_tx,
                  (unsigned long long)li);
        if (li != f->size)
            FAULT("block %llu: transaction at log index %llu, expected %llu (the log has a gap)",
                  (unsigned long long)b->height, (unsigned long long)li,
                  (unsigned long long)f->size);
        const uint8_t *body = sqlite3_column_blob(txq, 3);
        size_t len = (size_t)sqlite3_column_bytes(txq, 3);
        if (stl_tx_decode(body, len, &txs[n]) != STL_OK)
            FAULT("transaction at log index %llu: not a canonical encoding",
                  (unsigned long long)li);
        if (txs[n].version != b->version)
            FAULT("transaction at log index %llu: ledger version %u in a version %u block",
                  (unsigned long long)li, txs[n].version, b->version);
        const uint8_t *salt = NULL;
        if (b->version != STL_LEDGER_V1) {
            if (sqlite3_column_bytes(txq, 4) != STL_SALT_LEN)
                FAULT("transaction at log index %llu: its salt is missing or not %d bytes",
                      (unsigned long long)li, STL_SALT_LEN);
            memcpy(salts[n], sqlite3_column_blob(txq, 4), STL_SALT_LEN);
            salt = salts[n];
        } else if (sqlite3_column_type(txq, 4) != SQLITE_NULL) {
            FAULT("transaction at log index %llu: an unsalted (version 1) transaction with a salt",
                  (unsigned long long)li);
        }
        if (txs[n].interval_id != b->interval_id || txs[n].seq != n)
            FAULT("transaction at log index %llu: belongs to interval %lld position %u, stored in "
                  "block %llu (interval %lld) position %zu",
                  (unsigned long long)li, (long long)txs[n].interval_id, txs[n].seq,
                  (unsigned long long)b->height, (long long)b->interval_id, n);
        uint8_t id[STL_ID_LEN];
        if (stl_tx_id(salt, body, len, id) != STL_OK ||
            stl_tx_leaf(salt, body, len, leaves[n]) != STL_OK)
            FAULT("transaction at log index %llu: cannot hash it", (unsigned long long)li);
        if (sqlite3_column_bytes(txq, 1) != STL_ID_LEN ||
            memcmp(id, sqlite3_column_blob(txq, 1), STL_ID_LEN) != 0)
            FAULT("transaction at log index %llu: stored id is not the hash of its (salt and) "
                  "encoding",
                  (unsigned long long)li);
        int pnull = sqlite3_column_type(txq, 2) == SQLITE_NULL;
        uint64_t who = txs[n].kind == STL_TX_CREDIT ? txs[n].credit.participant
                                                     : txs[n].position.participant;
        if ((txs[n].kind == STL_TX_TRADE) != pnull ||
            (!pnull && (uint64_t)sqlite3_column_int64(txq, 2) != who))
            FAULT("transaction at log index %llu: participant column does not match its encoding",
                  (unsigned long long)li);
        if (stl_frontier_append(f, leaves[n], audit_sink, a) != STL_OK) {
            rc = CTL_LEDGER_E_FAULT;
            goto out;
        }
        n++;
    }
    if (n != b->n_tx)
        FAULT("block %llu (interval %lld): %zu of its %u transactions are stored",
              (unsigned long long)b->height, (long long)b->interval_id, n, b->n_tx);
    uint8_t root[STL_HASH_LEN];
    stl_merkle_root((const uint8_t(*)[STL_HASH_LEN])leaves, n, root);
    if (memcmp(root, b->tx_root, STL_HASH_LEN) != 0)
        FAULT("block %llu (interval %lld): transaction root does not match its transactions",
              (unsigned long long)b->height, (long long)b->interval_id);
    stl_frontier_root(f, root);
    if (f->size != b->log_size || memcmp(root, b->log_root, STL_HASH_LEN) != 0)
        FAULT("block %llu (interval %lld): log size/root in the block do not match the log",
              (unsigned long long)b->height, (long long)b->interval_id);
    rc = resettle(a->db, b, txs, (const uint8_t(*)[STL_SALT_LEN])salts, n, msg, msglen);
out:
    free(txs);
    free(leaves);
    if (salts)
        sodium_memzero(salts, cap * STL_SALT_LEN);
    free(salts);
    return rc;
}

static int count(ctl_db *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = CTL_LEDGER_E_DB;
    if (ctl_db_prepare(db, sql, &st) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = CTL_LEDGER_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int ctl_ledger_verify(ctl_db *db, const uint8_t *trusted_pk, char *msg, size_t msglen)
{
    return ctl_ledger_verify_since(db, trusted_pk, -1, msg, msglen);
}

int ctl_ledger_verify_since(ctl_db *db, const uint8_t *trusted_pk, int64_t audited_size,
                            char *msg, size_t msglen)
{
    uint64_t skipped_size = 0; /* the log size after the last block only chained */
    int skipping = audited_size >= 0;
    char community[STL_COMMUNITY_MAX + 1], vkey[STL_VKEY_MAX], name[STL_COMMUNITY_MAX + 1];
    uint8_t pk[STL_PK_LEN], prev[STL_ID_LEN] = {0}, prev_version = 0;
    sqlite3_stmt *bq = NULL, *txq = NULL;
    stl_frontier f;
    stl_frontier_init(&f);
    int64_t n_blocks = 0, n_tx = 0, n_nodes = 0;
    int rc = ctl_ledger_meta(db, community, vkey, sizeof vkey);
    if (rc == CTL_LEDGER_E_NOTFOUND) {
        if (count(db, "SELECT COUNT(*) FROM ledger_block", &n_blocks) != CTL_LEDGER_OK)
            return CTL_LEDGER_E_DB;
        if (n_blocks == 0) {
            ctl_errf(msg, msglen, "OK: empty ledger");
            return CTL_LEDGER_OK;
        }
        FAULT("the ledger has blocks but no community key record");
    }
    if (rc != CTL_LEDGER_OK)
        return rc;
    if (stl_vkey_parse(vkey, name, pk) != STL_OK || strcmp(name, community) != 0)
        FAULT("the ledger's key record is malformed");
    if (trusted_pk && memcmp(trusted_pk, pk, STL_PK_LEN) != 0)
        FAULT("the ledger is signed by %s, which is not the key you trust", vkey);
    if (ctl_db_prepare(db,
                       "SELECT height, interval_id, hash, body, sig, checkpoint FROM ledger_block"
                       " ORDER BY height",
                       &bq) != SQLITE_OK ||
        ctl_db_prepare(db,
                       "SELECT log_index, txid, participant, body, salt FROM ledger_tx"
                       " WHERE height=?1"
                       " ORDER BY log_index",
                       &txq) != SQLITE_OK) {
        rc = CTL_LEDGER_E_DB;
        goto out;
    }
    int step;
    while ((step = sqlite3_step(bq)) == SQLITE_ROW) {
        uint64_t h = (uint64_t)sqlite3_column_int64(bq, 0);
        stl_block b;
        const uint8_t *body = sqlite3_column_blob(bq, 3);
        size_t len = (size_t)sqlite3_column_bytes(bq, 3);
        if (h != (uint64_t)n_blocks)
            FAULT("block heights jump from %lld to %llu", (long long)n_blocks - 1,
                  (unsigned long long)h);
        if (stl_block_decode(body, len, &b) != STL_OK)
            FAULT("block %llu: not a canonical block encoding", (unsigned long long)h);
        if (b.version < prev_version)
            FAULT("block %llu (interval %lld): ledger version %u after version %u",
                  (unsigned long long)h, (long long)b.interval_id, b.version, prev_version);
        prev_version = b.version;
        if (b.height != h || b.interval_id != sqlite3_column_int64(bq, 1))
            FAULT("block %llu: height or interval columns differ from the signed block",
                  (unsigned long long)h);
        uint8_t hash[STL_ID_LEN];
        stl_block_hash(body, len, hash);
        if (sqlite3_column_bytes(bq, 2) != STL_ID_LEN ||
            memcmp(hash, sqlite3_column_blob(bq, 2), STL_ID_LEN) != 0)
            FAULT("block %llu (interval %lld): stored hash is not the hash of the block",
                  (unsigned long long)h, (long long)b.interval_id);
        if (memcmp(b.prev_hash, prev, STL_ID_LEN) != 0)
            FAULT("block %llu (interval %lld): previous-block hash does not match block %lld",
                  (unsigned long long)h, (long long)b.interval_id, (long long)h - 1);
        if (strcmp(b.community, community) != 0)
            FAULT("block %llu: community '%s', the ledger's is '%s'", (unsigned long long)h,
                  b.community, community);
        if (stl_verify(body, len, sqlite3_column_blob(bq, 4), (size_t)sqlite3_column_bytes(bq, 4),
                       pk) != STL_OK)
            FAULT("block %llu (interval %lld): signature does not verify with the ledger key",
                  (unsigned long long)h, (long long)b.interval_id);
        const char *note = (const char *)sqlite3_column_text(bq, 5);
        stl_checkpoint cp;
        if (!note ||
            stl_checkpoint_open(note, strlen(note), community, pk, community, &cp) != STL_OK)
            FAULT("block %llu (interval %lld): checkpoint is not signed by the ledger key",
                  (unsigned long long)h, (long long)b.interval_id);
        if (cp.size != b.log_size || memcmp(cp.root, b.log_root, STL_ID_LEN) != 0)
            FAULT("block %llu (interval %lld): checkpoint size/root differ from the block's",
                  (unsigned long long)h, (long long)b.interval_id);
        if (skipping && b.log_size <= (uint64_t)audited_size) {
            /* audited before: its leaves are bound by a root the caller already trusts */
            if (b.log_size < skipped_size)
                FAULT("block %llu (interval %lld): its log size %llu is below the previous "
                      "block's",
                      (unsigned long long)h, (long long)b.interval_id,
                      (unsigned long long)b.log_size);
            skipped_size = b.log_size;
        } else {
            if (skipping) {
                skipping = 0;
                if (stl_frontier_load(&f, skipped_size, ctl_ledger_node, db) != STL_OK)
                    FAULT("block %llu: the Merkle log's nodes at size %llu are missing",
                          (unsigned long long)h, (unsigned long long)skipped_size);
            }
            audit a = {db, msg, msglen, h, b.interval_id, 0};
            if ((rc = audit_block(&a, txq, &b, &f, msg, msglen)) != CTL_LEDGER_OK)
                goto out;
        }
        memcpy(prev, hash, STL_ID_LEN);
        n_blocks++;
    }
    if (step != SQLITE_DONE) {
        rc = CTL_LEDGER_E_DB;
        goto out;
    }
    if (skipping && stl_frontier_load(&f, skipped_size, ctl_ledger_node, db) != STL_OK)
        FAULT("the Merkle log's nodes at size %llu are missing", (unsigned long long)skipped_size);
    if (count(db, "SELECT COUNT(*) FROM ledger_tx", &n_tx) != CTL_LEDGER_OK ||
        count(db, "SELECT COUNT(*) FROM ledger_node", &n_nodes) != CTL_LEDGER_OK) {
        rc = CTL_LEDGER_E_DB;
        goto out;
    }
    if ((uint64_t)n_tx != f.size)
        FAULT("%lld transactions are stored but the blocks account for %llu", (long long)n_tx,
              (unsigned long long)f.size);
    if ((uint64_t)n_nodes != 2 * f.size - (uint64_t)__builtin_popcountll(f.size))
        FAULT("%lld Merkle nodes are stored, a log of %llu needs %llu", (long long)n_nodes,
              (unsigned long long)f.size,
              (unsigned long long)(2 * f.size - (uint64_t)__builtin_popcountll(f.size)));
    {
        uint8_t root[STL_HASH_LEN];
        char hex[2 * STL_HASH_LEN + 1];
        stl_frontier_root(&f, root);
        sodium_bin2hex(hex, sizeof hex, root, STL_HASH_LEN);
        ctl_errf(msg, msglen, "OK: %s, %lld blocks, %llu transactions, log root %s", community,
                 (long long)n_blocks, (unsigned long long)f.size, hex);
    }
    rc = CTL_LEDGER_OK;
out:
    sqlite3_finalize(bq);
    sqlite3_finalize(txq);
    return rc;
}
