/*
 * The settlement ledger as JSON lines (see ledger_export.h).
 */
#include "settle/ledger_export.h"

#include "common/errbuf.h"
#include "settle/ledger_store.h"

#include <sqlite3.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>

static void hex(const uint8_t *b, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, b, n);
}

static json_t *tx_json(const stl_tx *tx)
{
    if (tx->kind == STL_TX_TRADE) {
        const stl_settled_trade *t = &tx->trade;
        return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "kind",
                         "trade", "seller", (json_int_t)t->seller, "buyer", (json_int_t)t->buyer,
                         "contracted_wh", (json_int_t)t->contracted_wh, "price_uc_per_kwh",
                         (json_int_t)t->price_uc_per_kwh, "amount_uc", (json_int_t)t->amount_uc,
                         "contract_fee_uc", (json_int_t)t->contract_fee_uc, "delivered_wh",
                         (json_int_t)t->delivered_wh, "paid_uc", (json_int_t)t->paid_uc,
                         "received_uc", (json_int_t)t->received_uc, "fee_uc", (json_int_t)t->fee_uc,
                         "rounding_uc", (json_int_t)t->rounding_uc);
    }
    if (tx->kind == STL_TX_CREDIT) {
        const stl_credit *c = &tx->credit;
        json_t *o = json_pack("{s:s, s:I, s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "kind",
                         "credit", "participant", (json_int_t)c->participant, "status",
                         stl_pos_status_name((stl_pos_status)c->status), "tier", (int)c->tier,
                         "min_tier", (int)c->min_tier, "source_seq", (json_int_t)c->source_seq,
                         "minted_wh", (json_int_t)c->minted_wh, "in_wh", (json_int_t)c->in_wh,
                         "out_wh", (json_int_t)c->out_wh, "retired_wh",
                         (json_int_t)c->retired_wh, "kept_wh", (json_int_t)c->kept_wh);
        /* a true-up of an earlier held position: source_seq is that position's log index */
        if (o && stl_credit_is_trueup(c))
            json_object_set_new(o, "true_up", json_true());
        return o;
    }
    const stl_position *p = &tx->position;
    json_t *o = json_pack(
        "{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "kind", "position", "participant",
        (json_int_t)p->participant, "status", stl_pos_status_name(p->status), "quality",
        (json_int_t)p->quality, "import_wh", (json_int_t)p->import_wh, "export_wh",
        (json_int_t)p->export_wh, "contracted_bought_wh", (json_int_t)p->contracted_bought_wh,
        "contracted_sold_wh", (json_int_t)p->contracted_sold_wh, "local_bought_wh",
        (json_int_t)p->local_bought_wh, "local_sold_wh", (json_int_t)p->local_sold_wh);
    json_t *m = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "grid_bought_wh", (json_int_t)p->grid_bought_wh,
        "grid_sold_wh", (json_int_t)p->grid_sold_wh, "local_paid_uc", (json_int_t)p->local_paid_uc,
        "fee_paid_uc", (json_int_t)p->fee_paid_uc, "local_received_uc",
        (json_int_t)p->local_received_uc, "grid_paid_uc", (json_int_t)p->grid_paid_uc,
        "grid_received_uc", (json_int_t)p->grid_received_uc);
    json_object_update(o, m);
    json_decref(m);
    if (tx->version != STL_LEDGER_V1)
        json_object_set_new(o, "tier", json_integer(p->tier));
    return o;
}

static json_t *block_json(const stl_block *b, const uint8_t *hash, const uint8_t *sig,
                          const char *note)
{
    char h[65], prev[65], txr[65], lr[65], s[129];
    hex(hash, 32, h);
    hex(b->prev_hash, 32, prev);
    hex(b->tx_root, 32, txr);
    hex(b->log_root, 32, lr);
    hex(sig, 64, s);
    const stl_totals *t = &b->totals;
    json_t *tot = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "n_trades",
        (json_int_t)t->n_trades, "n_positions", (json_int_t)t->n_positions, "n_held",
        (json_int_t)t->n_held, "contracted_wh", (json_int_t)t->contracted_wh, "delivered_wh",
        (json_int_t)t->delivered_wh, "paid_uc", (json_int_t)t->paid_uc, "received_uc",
        (json_int_t)t->received_uc, "fees_uc", (json_int_t)t->fees_uc, "rounding_uc",
        (json_int_t)t->rounding_uc, "grid_bought_wh", (json_int_t)t->grid_bought_wh, "grid_sold_wh",
        (json_int_t)t->grid_sold_wh, "grid_paid_uc", (json_int_t)t->grid_paid_uc,
        "grid_received_uc", (json_int_t)t->grid_received_uc, "import_wh", (json_int_t)t->import_wh,
        "export_wh", (json_int_t)t->export_wh);
    json_t *o = json_pack(
        "{s:s, s:I, s:s, s:I, s:I, s:{s:I, s:I, s:I}, s:s, s:s, s:I, s:s, s:I, s:s, "
        "s:o, s:s, s:s}",
        "type", "block", "height", (json_int_t)b->height, "community", b->community, "interval_id",
        (json_int_t)b->interval_id, "interval_len_s", (json_int_t)b->interval_len_s, "tariffs",
        "feed_in_uc_per_kwh", (json_int_t)b->tariffs.feed_in_uc_per_kwh, "retail_uc_per_kwh",
        (json_int_t)b->tariffs.retail_uc_per_kwh, "network_fee_uc_per_kwh",
        (json_int_t)b->tariffs.network_fee_uc_per_kwh, "hash", h, "prev_hash", prev, "n_tx",
        (json_int_t)b->n_tx, "tx_root", txr, "log_size", (json_int_t)b->log_size, "log_root", lr,
        "totals", tot, "signature", s, "checkpoint", note);
    if (o) {
        json_object_set_new(o, "version", json_integer(b->version));
        if (b->version != STL_LEDGER_V1)
            json_object_set_new(o, "timing", json_string(b->timing == STL_TIMING_EX_POST
                                                             ? "ex_post"
                                                             : "ex_ante"));
    }
    return o;
}

/* One JSON object as a compact line of out; takes j. */
static void put_line(FILE *out, json_t *j)
{
    char *line = json_dumps(j, JSON_COMPACT);
    fprintf(out, "%s\n", line);
    free(line);
    json_decref(j);
}

/* The transactions of block b, in log order. */
static int export_txs(sqlite3_stmt *tq, const stl_block *b, FILE *out, char *err, size_t errlen)
{
    sqlite3_reset(tq);
    sqlite3_bind_int64(tq, 1, (sqlite3_int64)b->height);
    while (sqlite3_step(tq) == SQLITE_ROW) {
        stl_tx tx;
        if (stl_tx_decode(sqlite3_column_blob(tq, 2), (size_t)sqlite3_column_bytes(tq, 2), &tx) !=
            STL_OK)
            return ctl_fail(CTL_LEDGER_E_FAULT, err, errlen,
                            "a transaction is damaged (run `mgx ledger verify`)");
        char idh[65];
        hex(sqlite3_column_blob(tq, 1), 32, idh);
        json_t *tj = tx_json(&tx);
        json_object_set_new(tj, "type", json_string("tx"));
        json_object_set_new(tj, "log_index", json_integer(sqlite3_column_int64(tq, 0)));
        json_object_set_new(tj, "height", json_integer((json_int_t)b->height));
        json_object_set_new(tj, "interval_id", json_integer(tx.interval_id));
        json_object_set_new(tj, "seq", json_integer(tx.seq));
        json_object_set_new(tj, "txid", json_string(idh));
        json_object_set_new(tj, "version", json_integer(tx.version));
        if (sqlite3_column_bytes(tq, 3) == STL_SALT_LEN) {
            char salth[2 * STL_SALT_LEN + 1];
            hex(sqlite3_column_blob(tq, 3), STL_SALT_LEN, salth);
            json_object_set_new(tj, "salt", json_string(salth));
        }
        put_line(out, tj);
    }
    return CTL_LEDGER_OK;
}

int ctl_ledger_export(ctl_db *db, FILE *out, char *err, size_t errlen)
{
    sqlite3_stmt *bq = NULL, *tq = NULL;
    int rc = CTL_LEDGER_E_DB;
    if (ctl_db_prepare(db,
                           "SELECT body, hash, sig, checkpoint FROM ledger_block ORDER BY height", &bq) != SQLITE_OK ||
        ctl_db_prepare(db,
                           "SELECT log_index, txid, body, salt FROM ledger_tx WHERE height=?1 ORDER BY "
                           "log_index", &tq) != SQLITE_OK) {
        ctl_errf(err, errlen, "%s", ctl_db_errmsg(db));
        goto out;
    }
    while (sqlite3_step(bq) == SQLITE_ROW) {
        stl_block b;
        if (stl_block_decode(sqlite3_column_blob(bq, 0), (size_t)sqlite3_column_bytes(bq, 0), &b) !=
                STL_OK ||
            sqlite3_column_bytes(bq, 2) != 64) {
            rc = ctl_fail(CTL_LEDGER_E_FAULT, err, errlen,
                          "a block is damaged (run `mgx ledger verify`)");
            goto out;
        }
        put_line(out, block_json(&b, sqlite3_column_blob(bq, 1), sqlite3_column_blob(bq, 2),
                                 (const char *)sqlite3_column_text(bq, 3)));
        if ((rc = export_txs(tq, &b, out, err, errlen)) != CTL_LEDGER_OK)
            goto out;
    }
    rc = CTL_LEDGER_OK;
out:
    sqlite3_finalize(bq);
    sqlite3_finalize(tq);
    return rc;
}
