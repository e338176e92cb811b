/*
 * `mgx ledger`: the settlement ledger from the command line. Coordinators settle intervals from
 * a file (until the daemon calls ctl_ledger_settle itself), audit the database, export it and
 * print statements; homeowners check that their transaction is in a signed checkpoint with a
 * proof file, the checkpoint and the community's public key, and nothing else.
 */
#include "mgx/cli.h"

#include "file.h"
#include "keys.h"
#include "ledger_store.h"
#include "mgx/merkle.h"
#include "opt.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_MAX_BYTES (256u << 20)

static const char USAGE[] =
    "usage: mgx ledger <command> [<args>]\n\n"
    "  keygen NAME --out SKEYFILE        make a community settlement key (prints the public key)\n"
    "  settle DB --input FILE --key SKEYFILE\n"
    "                                    settle one interval exactly once (input: JSON, docs/ledger.md)\n"
    "  verify DB [--vkey VKEY]           audit everything; report the first fault\n"
    "  info DB                           community, public key, height, log size\n"
    "  checkpoint DB [--height H]        the signed checkpoint (C2SP tlog-checkpoint)\n"
    "  proof DB --tx ID|--index N [--height H]\n"
    "                                    inclusion proof of a transaction (JSON)\n"
    "  check-proof --proof FILE --vkey VKEY|--vkey-file F [--checkpoint FILE]\n"
    "                                    check a proof offline: no database needed\n"
    "  consistency DB --from N --to M    proof that the log of size M extends the one of size N\n"
    "  check-consistency --proof FILE --vkey VKEY|--vkey-file F\n"
    "  export DB [--out FILE]            blocks and transactions as JSON lines\n"
    "  statement DB --participant NAME|NUMBER (--interval I | --month YYYY-MM)\n"
    "                                    a participant's settlement as CSV\n";

static const char *opt_value(int argc, char **argv, const char *name)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static int open_db(const char *path, sqlite3 **db)
{
    char err[512] = "";
    if (ctl_ledger_open(path, db, err, sizeof err) != CTL_LEDGER_OK) {
        fprintf(stderr, "mgx ledger: %s\n", err);
        return -1;
    }
    return 0;
}

/* strdup is POSIX, not C11. */
static char *dup_text(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, b, n);
}

/* ---- keygen ---- */

static int cmd_keygen(int argc, char **argv)
{
    const char *out = opt_value(argc, argv, "--out");
    if (argc < 3 || !out || !stl_community_valid(argv[2])) {
        fputs("usage: mgx ledger keygen NAME --out SKEYFILE (NAME: 1-64 of A-Z a-z 0-9 . _ / : -)\n",
              stderr);
        return CTL_EXIT_USAGE;
    }
    uint8_t *sk = sodium_malloc(STL_SK_LEN), pk[STL_PK_LEN];
    char *text = sodium_malloc(STL_SKEY_MAX);
    char vkey[STL_VKEY_MAX];
    int rc = CTL_EXIT_FAILURE;
    if (!sk || !text)
        goto out;
    crypto_sign_keypair(pk, sk);
    if (stl_skey_format(argv[2], sk, text, STL_SKEY_MAX) != STL_OK ||
        stl_vkey_format(argv[2], pk, vkey, sizeof vkey) != STL_OK)
        goto out;
    size_t tlen = strlen(text);
    text[tlen] = '\n'; /* over the NUL: the file is one line; only tlen + 1 bytes are written */
    int w = ctl_write_secret_file(out, text, tlen + 1);
    if (w != CTL_KEY_OK) {
        fprintf(stderr, "mgx ledger keygen: %s: %s\n", out,
                w == CTL_KEY_E_EXISTS ? "exists already; refusing to overwrite a key"
                                      : ctl_key_strerror(w));
        goto out;
    }
    printf("%s\n", vkey);
    rc = CTL_EXIT_OK;
out:
    sodium_free(sk);
    sodium_free(text);
    return rc;
}

/* ---- settle ---- */

static int json_i64(json_t *obj, const char *key, int64_t min, int64_t max, int required,
                    int64_t *out, const char *what, size_t idx)
{
    json_t *v = json_object_get(obj, key);
    if (!v && !required)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        fprintf(stderr, "mgx ledger settle: %s %zu: \"%s\" must be an integer in [%lld, %lld]\n",
                what, idx, key, (long long)min, (long long)max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int parse_input(json_t *root, ctl_ledger_input *in, mkt_trade **tp, stl_metered **mp)
{
    int64_t id = 0, len = 900;
    json_t *tf = json_object_get(root, "tariffs"), *tr = json_object_get(root, "trades"),
           *me = json_object_get(root, "meters");
    if (json_i64(root, "interval_id", INT64_MIN, INT64_MAX, 1, &id, "input", 0) ||
        json_i64(root, "interval_len_s", 1, 86400, 0, &len, "input", 0))
        return -1;
    if (!json_is_object(tf) || !json_is_array(tr) || !json_is_array(me)) {
        fputs("mgx ledger settle: input needs \"tariffs\" (object), \"trades\" and \"meters\" "
              "(arrays)\n",
              stderr);
        return -1;
    }
    in->interval_id = id;
    in->interval_len_s = (uint32_t)len;
    if (json_i64(tf, "feed_in_uc_per_kwh", 0, MKT_PRICE_MAX_UC_PER_KWH, 1,
                 &in->tariffs.feed_in_uc_per_kwh, "tariffs", 0) ||
        json_i64(tf, "retail_uc_per_kwh", 0, MKT_PRICE_MAX_UC_PER_KWH, 1,
                 &in->tariffs.retail_uc_per_kwh, "tariffs", 0) ||
        json_i64(tf, "network_fee_uc_per_kwh", 0, MKT_PRICE_MAX_UC_PER_KWH, 0,
                 &in->tariffs.network_fee_uc_per_kwh, "tariffs", 0))
        return -1;
    size_t nt = json_array_size(tr), nm = json_array_size(me);
    *tp = calloc(nt ? nt : 1, sizeof **tp);
    *mp = calloc(nm ? nm : 1, sizeof **mp);
    if (!*tp || !*mp)
        return -1;
    for (size_t i = 0; i < nt; i++) {
        json_t *t = json_array_get(tr, i);
        mkt_trade *x = &(*tp)[i];
        int64_t s, b;
        if (json_i64(t, "seller", 0, INT64_MAX, 1, &s, "trade", i) ||
            json_i64(t, "buyer", 0, INT64_MAX, 1, &b, "trade", i) ||
            json_i64(t, "energy_wh", 1, MKT_ENERGY_MAX_WH, 1, &x->energy_wh, "trade", i) ||
            json_i64(t, "price_uc_per_kwh", 0, MKT_PRICE_MAX_UC_PER_KWH, 1, &x->price_uc_per_kwh,
                     "trade", i))
            return -1;
        x->seller = (uint64_t)s;
        x->buyer = (uint64_t)b;
        /* amounts default to the market's rule; given ones are checked by reconciliation */
        if (mkt_amount_uc(x->energy_wh, x->price_uc_per_kwh, &x->amount_uc) ||
            stl_muldiv(x->energy_wh, in->tariffs.network_fee_uc_per_kwh, 1000, &x->fee_uc)) {
            fprintf(stderr, "mgx ledger settle: trade %zu: amount overflows\n", i);
            return -1;
        }
        if (json_i64(t, "amount_uc", 0, INT64_MAX, 0, &x->amount_uc, "trade", i) ||
            json_i64(t, "fee_uc", 0, INT64_MAX, 0, &x->fee_uc, "trade", i))
            return -1;
    }
    for (size_t i = 0; i < nm; i++) {
        json_t *m = json_array_get(me, i);
        stl_metered *x = &(*mp)[i];
        int64_t p, q = 0;
        if (json_i64(m, "participant", 0, INT64_MAX, 1, &p, "meter record", i) ||
            json_i64(m, "import_wh", 0, STL_METER_MAX_WH, 1, &x->import_wh, "meter record", i) ||
            json_i64(m, "export_wh", 0, STL_METER_MAX_WH, 1, &x->export_wh, "meter record", i) ||
            json_i64(m, "quality", 0, UINT32_MAX, 0, &q, "meter record", i))
            return -1;
        x->participant = (uint64_t)p;
        x->quality = (uint32_t)q;
    }
    in->trades = *tp;
    in->n_trades = nt;
    in->meters = *mp;
    in->n_meters = nm;
    return 0;
}

static int cmd_settle(int argc, char **argv)
{
    const char *input = opt_value(argc, argv, "--input"), *keyf = opt_value(argc, argv, "--key");
    if (argc < 3 || !input || !keyf) {
        fputs("usage: mgx ledger settle DB --input FILE --key SKEYFILE\n", stderr);
        return CTL_EXIT_USAGE;
    }
    char err[1024] = "";
    int rc = CTL_EXIT_FAILURE;
    char *text = NULL;
    size_t len;
    json_t *root = NULL;
    mkt_trade *trades = NULL;
    stl_metered *meters = NULL;
    sqlite3 *db = NULL;
    ctl_ledger_key *key = ctl_ledger_key_load(keyf, err, sizeof err);
    if (!key) {
        fprintf(stderr, "mgx ledger settle: %s\n", err);
        goto out;
    }
    if (ctl_read_file(input, INPUT_MAX_BYTES, &text, &len) != 0) {
        fprintf(stderr, "mgx ledger settle: %s: cannot read\n", input);
        goto out;
    }
    json_error_t je;
    root = json_loadb(text, len, 0, &je);
    if (!root) {
        fprintf(stderr, "mgx ledger settle: %s:%d:%d: %s\n", input, je.line, je.column, je.text);
        goto out;
    }
    ctl_ledger_input in;
    memset(&in, 0, sizeof in);
    if (parse_input(root, &in, &trades, &meters) != 0 || open_db(argv[2], &db) != 0)
        goto out;
    ctl_ledger_result res;
    int src = ctl_ledger_settle(db, &in, key, &res, err, sizeof err);
    if (src != CTL_LEDGER_OK) {
        fprintf(stderr, "mgx ledger settle: %s\n", err);
        goto out;
    }
    char h[2 * STL_ID_LEN + 1];
    hex(res.hash, STL_ID_LEN, h);
    printf("%s interval %lld: block %llu %s, %u transactions, log size %llu, delivered %lld Wh, "
           "paid %lld uc, held %u\n",
           res.replayed ? "already settled" : "settled", (long long)res.block.interval_id,
           (unsigned long long)res.block.height, h, res.block.n_tx,
           (unsigned long long)res.block.log_size, (long long)res.block.totals.delivered_wh,
           (long long)res.block.totals.paid_uc, res.block.totals.n_held);
    rc = CTL_EXIT_OK;
out:
    sqlite3_close(db);
    json_decref(root);
    free(text);
    free(trades);
    free(meters);
    ctl_ledger_key_free(key);
    return rc;
}

/* ---- verify / info / checkpoint ---- */

static int read_vkey(int argc, char **argv, char name[STL_COMMUNITY_MAX + 1], uint8_t pk[32])
{
    const char *v = opt_value(argc, argv, "--vkey"), *vf = opt_value(argc, argv, "--vkey-file");
    char *text = NULL;
    size_t len;
    if (!v && vf) {
        if (ctl_read_file(vf, 4096, &text, &len) != 0) {
            fprintf(stderr, "mgx ledger: %s: cannot read\n", vf);
            return -1;
        }
        v = text;
    }
    int rc = v && stl_vkey_parse(v, name, pk) == STL_OK ? 0 : -1;
    if (v && rc)
        fprintf(stderr, "mgx ledger: not a verifier key (NAME+ID+KEY): %.80s\n", v);
    free(text);
    return v ? rc : 1;
}

static int cmd_verify(int argc, char **argv)
{
    if (argc < 3) {
        fputs("usage: mgx ledger verify DB [--vkey VKEY | --vkey-file FILE]\n", stderr);
        return CTL_EXIT_USAGE;
    }
    char name[STL_COMMUNITY_MAX + 1], msg[1024] = "";
    uint8_t pk[32];
    int k = read_vkey(argc, argv, name, pk);
    if (k < 0)
        return CTL_EXIT_USAGE;
    sqlite3 *db = NULL;
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    int rc = ctl_ledger_verify(db, k == 0 ? pk : NULL, msg, sizeof msg);
    sqlite3_close(db);
    if (rc == CTL_LEDGER_OK) {
        printf("%s\n", msg);
        return CTL_EXIT_OK;
    }
    fprintf(stderr, "mgx ledger verify: FAULT: %s\n", rc == CTL_LEDGER_E_DB ? "database error" : msg);
    return CTL_EXIT_FAILURE;
}

static int cmd_info(int argc, char **argv)
{
    if (argc < 3)
        return CTL_EXIT_USAGE;
    sqlite3 *db = NULL;
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    char community[STL_COMMUNITY_MAX + 1], vkey[STL_VKEY_MAX];
    uint64_t h = 0, size = 0;
    int rc = ctl_ledger_meta(db, community, vkey, sizeof vkey);
    if (rc == CTL_LEDGER_OK && ctl_ledger_head(db, &h, &size) == CTL_LEDGER_OK)
        printf("community %s\npublic key %s\nheight %llu\nlog size %llu\n", community, vkey,
               (unsigned long long)h, (unsigned long long)size);
    else
        printf("empty ledger\n");
    sqlite3_close(db);
    return CTL_EXIT_OK;
}

/* The checkpoint text of block `height` (latest if < 0); malloc'd. */
static char *checkpoint_of(sqlite3 *db, int64_t height, uint64_t *size)
{
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    const char *sql = height < 0 ? "SELECT checkpoint, body FROM ledger_block ORDER BY height DESC LIMIT 1"
                                 : "SELECT checkpoint, body FROM ledger_block WHERE height=?1";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    if (height >= 0)
        sqlite3_bind_int64(st, 1, height);
    if (sqlite3_step(st) == SQLITE_ROW) {
        stl_block b;
        if (stl_block_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &b) ==
            STL_OK) {
            out = dup_text((const char *)sqlite3_column_text(st, 0));
            *size = b.log_size;
        }
    }
    sqlite3_finalize(st);
    return out;
}

/* The checkpoint of the block whose log size is exactly `size`, if any. */
static char *checkpoint_at_size(sqlite3 *db, uint64_t size)
{
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    if (sqlite3_prepare_v2(db, "SELECT checkpoint, body FROM ledger_block ORDER BY height", -1, &st,
                           NULL) != SQLITE_OK)
        return NULL;
    while (!out && sqlite3_step(st) == SQLITE_ROW) {
        stl_block b;
        if (stl_block_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &b) ==
                STL_OK &&
            b.log_size == size)
            out = dup_text((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
}

static int cmd_checkpoint(int argc, char **argv)
{
    if (argc < 3)
        return CTL_EXIT_USAGE;
    int64_t h = -1;
    const char *hs = opt_value(argc, argv, "--height");
    if (hs && ctl_opt_int64(hs, 0, INT64_MAX, &h) != 0) {
        fputs("mgx ledger checkpoint: --height must be a block height\n", stderr);
        return CTL_EXIT_USAGE;
    }
    sqlite3 *db = NULL;
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    uint64_t size;
    char *note = checkpoint_of(db, h, &size);
    sqlite3_close(db);
    if (!note) {
        fputs("mgx ledger checkpoint: no such block\n", stderr);
        return CTL_EXIT_FAILURE;
    }
    fputs(note, stdout);
    free(note);
    return CTL_EXIT_OK;
}

/* ---- proofs ---- */

static json_t *hash_array(uint8_t (*h)[STL_HASH_LEN], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        char b64[64];
        sodium_bin2base64(b64, sizeof b64, h[i], STL_HASH_LEN, sodium_base64_VARIANT_ORIGINAL);
        json_array_append_new(a, json_string(b64));
    }
    return a;
}

static int parse_hashes(json_t *a, uint8_t (*h)[STL_HASH_LEN], size_t *n)
{
    if (!json_is_array(a) || json_array_size(a) > STL_MERKLE_MAX_PROOF)
        return -1;
    *n = json_array_size(a);
    for (size_t i = 0; i < *n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        size_t got;
        if (!s || sodium_base642bin(h[i], STL_HASH_LEN, s, strlen(s), NULL, &got, NULL,
                                    sodium_base64_VARIANT_ORIGINAL) != 0 ||
            got != STL_HASH_LEN)
            return -1;
    }
    return 0;
}

static int cmd_proof(int argc, char **argv)
{
    const char *txs = opt_value(argc, argv, "--tx"), *idx = opt_value(argc, argv, "--index"),
               *hs = opt_value(argc, argv, "--height");
    if (argc < 3 || (!txs && !idx)) {
        fputs("usage: mgx ledger proof DB --tx ID | --index N [--height H]\n", stderr);
        return CTL_EXIT_USAGE;
    }
    int64_t h = -1, li = -1;
    uint8_t id[STL_ID_LEN];
    size_t got = 0;
    if ((hs && ctl_opt_int64(hs, 0, INT64_MAX, &h) != 0) ||
        (idx && ctl_opt_int64(idx, 0, INT64_MAX, &li) != 0) ||
        (txs && (sodium_hex2bin(id, sizeof id, txs, strlen(txs), NULL, &got, NULL) != 0 ||
                 got != STL_ID_LEN))) {
        fputs("mgx ledger proof: --tx takes a 64-hex-digit transaction id, --index and --height "
              "non-negative integers\n",
              stderr);
        return CTL_EXIT_USAGE;
    }
    sqlite3 *db = NULL;
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    int rc = CTL_EXIT_FAILURE;
    sqlite3_stmt *st = NULL;
    char *note = NULL;
    json_t *out = NULL;
    uint64_t size = 0;
    uint8_t (*path)[STL_HASH_LEN] = calloc(STL_MERKLE_MAX_PROOF, STL_HASH_LEN);
    note = checkpoint_of(db, h, &size);
    if (!note || !path) {
        fputs("mgx ledger proof: no such block\n", stderr);
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           txs ? "SELECT log_index, body, txid FROM ledger_tx WHERE txid=?1"
                               : "SELECT log_index, body, txid FROM ledger_tx WHERE log_index=?1",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    if (txs)
        sqlite3_bind_blob(st, 1, id, STL_ID_LEN, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, li);
    if (sqlite3_step(st) != SQLITE_ROW) {
        fputs("mgx ledger proof: no such transaction\n", stderr);
        goto out;
    }
    li = sqlite3_column_int64(st, 0);
    if ((uint64_t)li >= size) {
        fprintf(stderr, "mgx ledger proof: transaction %lld is not in the log of size %llu\n",
                (long long)li, (unsigned long long)size);
        goto out;
    }
    size_t n;
    if (stl_merkle_inclusion_proof((uint64_t)li, size, ctl_ledger_node, db, path, &n) != STL_OK) {
        fputs("mgx ledger proof: the Merkle log is damaged (run `mgx ledger verify`)\n", stderr);
        goto out;
    }
    char bodyhex[2 * STL_TX_MAX_LEN + 1], idhex[2 * STL_ID_LEN + 1];
    hex(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), bodyhex);
    hex(sqlite3_column_blob(st, 2), STL_ID_LEN, idhex);
    out = json_pack("{s:s, s:I, s:I, s:s, s:s, s:o, s:s}", "format", "mgx-inclusion-proof/1",
                    "log_index", (json_int_t)li, "tree_size", (json_int_t)size, "txid", idhex, "tx",
                    bodyhex, "hashes", hash_array(path, n), "checkpoint", note);
    char *s = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
    if (s) {
        printf("%s\n", s);
        free(s);
        rc = CTL_EXIT_OK;
    }
out:
    json_decref(out);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(note);
    free(path);
    return rc;
}

static void describe_tx(const stl_tx *tx)
{
    if (tx->kind == STL_TX_TRADE) {
        const stl_settled_trade *t = &tx->trade;
        printf("  trade: seller %llu -> buyer %llu, contracted %lld Wh at %lld uc/kWh, delivered "
               "%lld Wh; buyer paid %lld uc (fee %lld), seller received %lld uc\n",
               (unsigned long long)t->seller, (unsigned long long)t->buyer,
               (long long)t->contracted_wh, (long long)t->price_uc_per_kwh,
               (long long)t->delivered_wh, (long long)t->paid_uc, (long long)t->fee_uc,
               (long long)t->received_uc);
    } else {
        const stl_position *p = &tx->position;
        printf("  position of participant %llu (%s): import %lld Wh, export %lld Wh; local bought "
               "%lld / sold %lld Wh; grid bought %lld / sold %lld Wh; paid %lld uc, received "
               "%lld uc\n",
               (unsigned long long)p->participant, stl_pos_status_name(p->status),
               (long long)p->import_wh, (long long)p->export_wh, (long long)p->local_bought_wh,
               (long long)p->local_sold_wh, (long long)p->grid_bought_wh,
               (long long)p->grid_sold_wh, (long long)(p->local_paid_uc + p->grid_paid_uc),
               (long long)(p->local_received_uc + p->grid_received_uc));
    }
}

static json_t *load_json(const char *path)
{
    char *text = NULL;
    size_t len;
    if (ctl_read_file(path, 1u << 20, &text, &len) != 0) {
        fprintf(stderr, "mgx ledger: %s: cannot read\n", path);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    if (!j)
        fprintf(stderr, "mgx ledger: %s:%d:%d: %s\n", path, je.line, je.column, je.text);
    free(text);
    return j;
}

static int open_checkpoint(int argc, char **argv, json_t *proof, const char *name,
                           const uint8_t pk[32], stl_checkpoint *cp)
{
    const char *cf = opt_value(argc, argv, "--checkpoint");
    char *text = NULL;
    size_t len = 0;
    const char *note = json_string_value(json_object_get(proof, "checkpoint"));
    if (cf) {
        if (ctl_read_file(cf, STL_NOTE_MAX, &text, &len) != 0) {
            fprintf(stderr, "mgx ledger: %s: cannot read\n", cf);
            return -1;
        }
        note = text;
    }
    int rc = note ? stl_checkpoint_open(note, strlen(note), name, pk, name, cp) : STL_E_NOTE;
    if (rc != STL_OK)
        fprintf(stderr, "mgx ledger: the checkpoint is %s\n",
                rc == STL_E_SIGNATURE ? "not signed by this key" : "malformed or missing");
    free(text);
    return rc == STL_OK ? 0 : -1;
}

static int cmd_check_proof(int argc, char **argv)
{
    const char *pf = opt_value(argc, argv, "--proof");
    char name[STL_COMMUNITY_MAX + 1];
    uint8_t pk[32];
    if (!pf || read_vkey(argc, argv, name, pk) != 0) {
        fputs("usage: mgx ledger check-proof --proof FILE --vkey VKEY|--vkey-file F "
              "[--checkpoint FILE]\n",
              stderr);
        return CTL_EXIT_USAGE;
    }
    json_t *j = load_json(pf);
    if (!j)
        return CTL_EXIT_FAILURE;
    int rc = CTL_EXIT_FAILURE;
    stl_checkpoint cp;
    uint8_t path[STL_MERKLE_MAX_PROOF][STL_HASH_LEN], body[STL_TX_MAX_LEN], leaf[32];
    size_t n, blen = 0;
    json_t *li = json_object_get(j, "log_index"), *ts = json_object_get(j, "tree_size");
    const char *txh = json_string_value(json_object_get(j, "tx"));
    stl_tx tx;
    if (!json_is_integer(li) || !json_is_integer(ts) || json_integer_value(li) < 0 || !txh ||
        parse_hashes(json_object_get(j, "hashes"), path, &n) != 0 ||
        sodium_hex2bin(body, sizeof body, txh, strlen(txh), NULL, &blen, NULL) != 0 ||
        stl_tx_decode(body, blen, &tx) != STL_OK) {
        fprintf(stderr, "mgx ledger check-proof: %s is not an mgx inclusion proof\n", pf);
        goto out;
    }
    if (open_checkpoint(argc, argv, j, name, pk, &cp) != 0)
        goto out;
    if ((uint64_t)json_integer_value(ts) != cp.size) {
        fprintf(stderr, "mgx ledger check-proof: the proof is for a log of %lld entries, the "
                        "checkpoint for %llu\n",
                (long long)json_integer_value(ts), (unsigned long long)cp.size);
        goto out;
    }
    stl_merkle_leaf_hash(body, blen, leaf);
    if (stl_merkle_verify_inclusion((uint64_t)json_integer_value(li), cp.size, leaf,
                                    (const uint8_t(*)[STL_HASH_LEN])path, n, cp.root) != STL_OK) {
        fprintf(stderr, "mgx ledger check-proof: FAILED: the transaction is not in the log at "
                        "this checkpoint\n");
        goto out;
    }
    uint8_t id[32];
    char idhex[65];
    stl_tx_id(body, blen, id);
    hex(id, 32, idhex);
    printf("OK: transaction %s (interval %lld, #%u) is entry %lld of %s's log, size %llu, signed "
           "by %s\n",
           idhex, (long long)tx.interval_id, tx.seq, (long long)json_integer_value(li), cp.origin,
           (unsigned long long)cp.size, name);
    describe_tx(&tx);
    rc = CTL_EXIT_OK;
out:
    json_decref(j);
    return rc;
}

static int cmd_consistency(int argc, char **argv)
{
    const char *fs = opt_value(argc, argv, "--from"), *ts = opt_value(argc, argv, "--to");
    int64_t from, to = -1;
    if (argc < 3 || !fs || ctl_opt_int64(fs, 0, INT64_MAX, &from) != 0 ||
        (ts && ctl_opt_int64(ts, 0, INT64_MAX, &to) != 0)) {
        fputs("usage: mgx ledger consistency DB --from N [--to M] (log sizes; M defaults to the "
              "latest)\n",
              stderr);
        return CTL_EXIT_USAGE;
    }
    sqlite3 *db = NULL;
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    int rc = CTL_EXIT_FAILURE;
    uint64_t height, size;
    uint8_t path[STL_MERKLE_MAX_PROOF][STL_HASH_LEN], r1[32], r2[32];
    char *n1 = NULL, *n2 = NULL;
    json_t *out = NULL;
    size_t n;
    if (ctl_ledger_head(db, &height, &size) != CTL_LEDGER_OK) {
        fputs("mgx ledger consistency: empty ledger\n", stderr);
        goto out;
    }
    if (to < 0)
        to = (int64_t)size;
    if (from > to || (uint64_t)to > size) {
        fprintf(stderr, "mgx ledger consistency: need 0 <= from <= to <= %llu\n",
                (unsigned long long)size);
        goto out;
    }
    if (stl_merkle_consistency_proof((uint64_t)from, (uint64_t)to, ctl_ledger_node, db, path, &n) !=
            STL_OK ||
        stl_merkle_root_at((uint64_t)from, ctl_ledger_node, db, r1) != STL_OK ||
        stl_merkle_root_at((uint64_t)to, ctl_ledger_node, db, r2) != STL_OK) {
        fputs("mgx ledger consistency: the Merkle log is damaged (run `mgx ledger verify`)\n", stderr);
        goto out;
    }
    n1 = checkpoint_at_size(db, (uint64_t)from);
    n2 = checkpoint_at_size(db, (uint64_t)to);
    uint8_t rr[2][STL_HASH_LEN];
    memcpy(rr[0], r1, 32);
    memcpy(rr[1], r2, 32);
    json_t *roots = hash_array(rr, 2);
    out = json_pack("{s:s, s:I, s:I, s:o, s:o, s:s?, s:s?}", "format", "mgx-consistency-proof/1",
                    "old_size", (json_int_t)from, "new_size", (json_int_t)to, "roots", roots,
                    "hashes", hash_array(path, n), "old_checkpoint", n1, "new_checkpoint", n2);
    char *s = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
    if (s) {
        printf("%s\n", s);
        free(s);
        rc = CTL_EXIT_OK;
    }
out:
    json_decref(out);
    free(n1);
    free(n2);
    sqlite3_close(db);
    return rc;
}

static int cmd_check_consistency(int argc, char **argv)
{
    const char *pf = opt_value(argc, argv, "--proof");
    char name[STL_COMMUNITY_MAX + 1];
    uint8_t pk[32];
    if (!pf || read_vkey(argc, argv, name, pk) != 0) {
        fputs("usage: mgx ledger check-consistency --proof FILE --vkey VKEY|--vkey-file F\n", stderr);
        return CTL_EXIT_USAGE;
    }
    json_t *j = load_json(pf);
    if (!j)
        return CTL_EXIT_FAILURE;
    int rc = CTL_EXIT_FAILURE;
    uint8_t path[STL_MERKLE_MAX_PROOF][STL_HASH_LEN];
    size_t n;
    const char *n1 = json_string_value(json_object_get(j, "old_checkpoint"));
    const char *n2 = json_string_value(json_object_get(j, "new_checkpoint"));
    stl_checkpoint c1, c2;
    if (parse_hashes(json_object_get(j, "hashes"), path, &n) != 0 || !n1 || !n2) {
        fprintf(stderr, "mgx ledger check-consistency: %s needs both signed checkpoints and the "
                        "hashes\n",
                pf);
        goto out;
    }
    if (stl_checkpoint_open(n1, strlen(n1), name, pk, name, &c1) != STL_OK ||
        stl_checkpoint_open(n2, strlen(n2), name, pk, name, &c2) != STL_OK) {
        fputs("mgx ledger check-consistency: a checkpoint is not signed by this key\n", stderr);
        goto out;
    }
    if (stl_merkle_verify_consistency(c1.size, c2.size, c1.root, c2.root,
                                      (const uint8_t(*)[STL_HASH_LEN])path, n) != STL_OK) {
        fputs("mgx ledger check-consistency: FAILED: the newer log does not extend the older one\n",
              stderr);
        goto out;
    }
    printf("OK: %s's log of size %llu is an append-only extension of size %llu\n", name,
           (unsigned long long)c2.size, (unsigned long long)c1.size);
    rc = CTL_EXIT_OK;
out:
    json_decref(j);
    return rc;
}

/* ---- export / statement ---- */

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
    const stl_position *p = &tx->position;
    json_t *o = json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "kind", "position",
                          "participant", (json_int_t)p->participant, "status",
                          stl_pos_status_name(p->status), "quality", (json_int_t)p->quality,
                          "import_wh", (json_int_t)p->import_wh, "export_wh",
                          (json_int_t)p->export_wh, "contracted_bought_wh",
                          (json_int_t)p->contracted_bought_wh, "contracted_sold_wh",
                          (json_int_t)p->contracted_sold_wh, "local_bought_wh",
                          (json_int_t)p->local_bought_wh, "local_sold_wh",
                          (json_int_t)p->local_sold_wh);
    json_t *m = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "grid_bought_wh",
                          (json_int_t)p->grid_bought_wh, "grid_sold_wh", (json_int_t)p->grid_sold_wh,
                          "local_paid_uc", (json_int_t)p->local_paid_uc, "fee_paid_uc",
                          (json_int_t)p->fee_paid_uc, "local_received_uc",
                          (json_int_t)p->local_received_uc, "grid_paid_uc",
                          (json_int_t)p->grid_paid_uc, "grid_received_uc",
                          (json_int_t)p->grid_received_uc);
    json_object_update(o, m);
    json_decref(m);
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
        (json_int_t)t->rounding_uc, "grid_bought_wh", (json_int_t)t->grid_bought_wh,
        "grid_sold_wh", (json_int_t)t->grid_sold_wh, "grid_paid_uc", (json_int_t)t->grid_paid_uc,
        "grid_received_uc", (json_int_t)t->grid_received_uc, "import_wh", (json_int_t)t->import_wh,
        "export_wh", (json_int_t)t->export_wh);
    return json_pack("{s:s, s:I, s:s, s:I, s:I, s:{s:I, s:I, s:I}, s:s, s:s, s:I, s:s, s:I, s:s, "
                     "s:o, s:s, s:s}",
                     "type", "block", "height", (json_int_t)b->height, "community", b->community,
                     "interval_id", (json_int_t)b->interval_id, "interval_len_s",
                     (json_int_t)b->interval_len_s, "tariffs", "feed_in_uc_per_kwh",
                     (json_int_t)b->tariffs.feed_in_uc_per_kwh, "retail_uc_per_kwh",
                     (json_int_t)b->tariffs.retail_uc_per_kwh, "network_fee_uc_per_kwh",
                     (json_int_t)b->tariffs.network_fee_uc_per_kwh, "hash", h, "prev_hash", prev,
                     "n_tx", (json_int_t)b->n_tx, "tx_root", txr, "log_size",
                     (json_int_t)b->log_size, "log_root", lr, "totals", tot, "signature", s,
                     "checkpoint", note);
}

static int cmd_export(int argc, char **argv)
{
    if (argc < 3)
        return CTL_EXIT_USAGE;
    const char *outp = opt_value(argc, argv, "--out");
    FILE *out = outp ? fopen(outp, "w") : stdout;
    if (!out) {
        fprintf(stderr, "mgx ledger export: %s: cannot create\n", outp);
        return CTL_EXIT_FAILURE;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *bq = NULL, *tq = NULL;
    int rc = CTL_EXIT_FAILURE;
    if (open_db(argv[2], &db) != 0)
        goto out;
    if (sqlite3_prepare_v2(db, "SELECT body, hash, sig, checkpoint FROM ledger_block ORDER BY height",
                           -1, &bq, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT log_index, txid, body FROM ledger_tx WHERE height=?1 ORDER BY "
                           "log_index",
                           -1, &tq, NULL) != SQLITE_OK)
        goto out;
    while (sqlite3_step(bq) == SQLITE_ROW) {
        stl_block b;
        if (stl_block_decode(sqlite3_column_blob(bq, 0), (size_t)sqlite3_column_bytes(bq, 0), &b) !=
                STL_OK ||
            sqlite3_column_bytes(bq, 2) != 64) {
            fputs("mgx ledger export: a block is damaged (run `mgx ledger verify`)\n", stderr);
            goto out;
        }
        json_t *bj = block_json(&b, sqlite3_column_blob(bq, 1), sqlite3_column_blob(bq, 2),
                                (const char *)sqlite3_column_text(bq, 3));
        char *line = json_dumps(bj, JSON_COMPACT);
        fprintf(out, "%s\n", line);
        free(line);
        json_decref(bj);
        sqlite3_reset(tq);
        sqlite3_bind_int64(tq, 1, (sqlite3_int64)b.height);
        while (sqlite3_step(tq) == SQLITE_ROW) {
            stl_tx tx;
            if (stl_tx_decode(sqlite3_column_blob(tq, 2), (size_t)sqlite3_column_bytes(tq, 2), &tx) !=
                STL_OK) {
                fputs("mgx ledger export: a transaction is damaged (run `mgx ledger verify`)\n", stderr);
                goto out;
            }
            char idh[65];
            hex(sqlite3_column_blob(tq, 1), 32, idh);
            json_t *tj = tx_json(&tx);
            json_object_set_new(tj, "type", json_string("tx"));
            json_object_set_new(tj, "log_index", json_integer(sqlite3_column_int64(tq, 0)));
            json_object_set_new(tj, "height", json_integer((json_int_t)b.height));
            json_object_set_new(tj, "interval_id", json_integer(tx.interval_id));
            json_object_set_new(tj, "seq", json_integer(tx.seq));
            json_object_set_new(tj, "txid", json_string(idh));
            line = json_dumps(tj, JSON_COMPACT);
            fprintf(out, "%s\n", line);
            free(line);
            json_decref(tj);
        }
    }
    rc = CTL_EXIT_OK;
out:
    sqlite3_finalize(bq);
    sqlite3_finalize(tq);
    sqlite3_close(db);
    if (out != stdout && fclose(out) != 0)
        rc = CTL_EXIT_FAILURE;
    return rc;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian), and back. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void utc_text(int64_t t, char out[160])
{
    int64_t z = (t >= 0 ? t : t - 86399) / 86400, secs = t - z * 86400;
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1, m = mp + (mp < 10 ? 3 : -9);
    snprintf(out, 160, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", (long long)(y + (m <= 2)),
             (long long)m, (long long)d, (long long)(secs / 3600), (long long)(secs / 60 % 60),
             (long long)(secs % 60));
}

/*
 * The ledger numbers participants as the market did; a coordinator knows them by name. A name
 * is looked up in the controller's market_ids table of the same database; a number is taken
 * as it is (a ledger without the controller's tables, e.g. one settled from files).
 */
static int participant_number(sqlite3 *db, const char *name, int64_t *out)
{
    if (ctl_opt_int64(name, 0, INT64_MAX, out) == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT market_id FROM market_ids WHERE participant = ?1", -1, &st,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "mgx ledger statement: '%s' is not a participant number, and this "
                        "database has no controller participant names\n", name);
        return -1;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        fprintf(stderr, "mgx ledger statement: no participant '%s' in this database\n", name);
    }
    sqlite3_finalize(st);
    return rc;
}

static int cmd_statement(int argc, char **argv)
{
    const char *ps = opt_value(argc, argv, "--participant"), *is = opt_value(argc, argv, "--interval"),
               *ms = opt_value(argc, argv, "--month");
    int64_t part = -1, iv = 0, y = 0, mo = 0;
    if (argc < 3 || !ps || !*ps || (!is == !ms) ||
        (is && ctl_opt_int64(is, INT64_MIN, INT64_MAX, &iv) != 0) ||
        (ms && (sscanf(ms, "%4lld-%2lld", (long long *)&y, (long long *)&mo) != 2 || mo < 1 ||
                mo > 12 || strlen(ms) != 7))) {
        fputs("usage: mgx ledger statement DB --participant NAME|NUMBER "
              "(--interval I | --month YYYY-MM)\n",
              stderr);
        return CTL_EXIT_USAGE;
    }
    int64_t from = ms ? days_from_civil(y, mo, 1) * 86400 : 0;
    int64_t to = ms ? days_from_civil(mo == 12 ? y + 1 : y, mo == 12 ? 1 : mo + 1, 1) * 86400 : 0;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = CTL_EXIT_FAILURE;
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    if (participant_number(db, ps, &part) != 0)
        goto out;
    if (sqlite3_prepare_v2(db,
                           "SELECT t.body, b.body FROM ledger_tx t JOIN ledger_block b ON "
                           "b.height = t.height WHERE t.participant = ?1 ORDER BY t.log_index",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, part);
    printf("interval_id,start_utc,status,quality,import_wh,export_wh,contracted_bought_wh,"
           "contracted_sold_wh,local_bought_wh,local_sold_wh,grid_bought_wh,grid_sold_wh,"
           "local_paid_uc,fee_paid_uc,local_received_uc,grid_paid_uc,grid_received_uc,net_uc\n");
    int64_t sum[14] = {0};
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        stl_tx tx;
        stl_block b;
        if (stl_tx_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &tx) ||
            stl_block_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &b)) {
            fputs("mgx ledger statement: damaged record (run `mgx ledger verify`)\n", stderr);
            goto out;
        }
        int64_t start = b.interval_id * (int64_t)b.interval_len_s;
        if (is ? b.interval_id != iv : (start < from || start >= to))
            continue;
        const stl_position *p = &tx.position;
        int64_t v[14] = {p->import_wh,      p->export_wh,     p->contracted_bought_wh,
                         p->contracted_sold_wh, p->local_bought_wh, p->local_sold_wh,
                         p->grid_bought_wh, p->grid_sold_wh,  p->local_paid_uc,
                         p->fee_paid_uc,    p->local_received_uc, p->grid_paid_uc,
                         p->grid_received_uc, 0};
        v[13] = p->local_received_uc + p->grid_received_uc - p->local_paid_uc - p->grid_paid_uc;
        char when[160];
        utc_text(start, when);
        printf("%lld,%s,%s,%u", (long long)b.interval_id, when, stl_pos_status_name(p->status),
               p->quality);
        for (int i = 0; i < 14; i++) {
            printf(",%lld", (long long)v[i]);
            sum[i] += v[i];
        }
        printf("\n");
        rows++;
    }
    if (ms) {
        printf("total,%s,,", ms);
        for (int i = 0; i < 14; i++)
            printf(",%lld", (long long)sum[i]);
        printf("\n");
    } else if (rows == 0) {
        fprintf(stderr, "mgx ledger statement: participant %lld has no settled position in "
                        "interval %lld\n",
                (long long)part, (long long)iv);
        goto out;
    }
    rc = CTL_EXIT_OK;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int ctl_cmd_ledger(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fputs("mgx ledger: libsodium failed to initialise\n", stderr);
        return CTL_EXIT_FAILURE;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {{"keygen", cmd_keygen},           {"settle", cmd_settle},
                {"verify", cmd_verify},           {"info", cmd_info},
                {"checkpoint", cmd_checkpoint},   {"proof", cmd_proof},
                {"check-proof", cmd_check_proof}, {"consistency", cmd_consistency},
                {"check-consistency", cmd_check_consistency},
                {"export", cmd_export},           {"statement", cmd_statement}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].run(argc, argv);
    fprintf(stderr, "mgx ledger: unknown command '%s'\n\n%s", argv[1], USAGE);
    return CTL_EXIT_USAGE;
}
