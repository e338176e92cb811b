/*
 * `mgx ledger`: the settlement ledger from the command line. Coordinators settle intervals from
 * a file (until the daemon calls ctl_ledger_settle itself), audit the database, export it and
 * print statements; homeowners check that their transaction is in a signed checkpoint with a
 * proof file, the checkpoint and the community's public key, and nothing else.
 */
#include "cli/cli.h"

#include "common/file.h"
#include "orders/keys.h"
#include "settle/ledger_json.h"
#include "settle/ledger_store.h"
#include "settle/ledger_verify.h"
#include "settle/settle_interval.h"
#include "mgx/merkle.h"
#include "common/opt.h"

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
    ctl_lj_settle in;
    memset(&in, 0, sizeof in);
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
    int prc = ctl_lj_settle_parse(text, len, &in, err, sizeof err);
    if (prc != CTL_LJ_OK) {
        if (prc == CTL_LJ_E_SYNTAX)
            fprintf(stderr, "mgx ledger settle: %s:%s\n", input, err);
        else
            fprintf(stderr, "mgx ledger settle: %s\n", err);
        goto out;
    }
    if (open_db(argv[2], &db) != 0)
        goto out;
    ctl_ledger_result res;
    int src = ctl_ledger_settle(db, &in.in, key, &res, err, sizeof err);
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
    free(text);
    ctl_lj_settle_free(&in);
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
    uint64_t size = 0;
    ctl_lj_proof *pr = calloc(1, sizeof *pr);
    char *note = checkpoint_of(db, h, &size);
    if (!note || !pr) {
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
    /* a damaged row must not overrun the fixed buffers below */
    int blen = sqlite3_column_bytes(st, 1);
    if (blen < 0 || blen > STL_TX_MAX_LEN || sqlite3_column_bytes(st, 2) != STL_ID_LEN ||
        stl_merkle_inclusion_proof((uint64_t)li, size, ctl_ledger_node, db, pr->path,
                                   &pr->n_path) != STL_OK) {
        fputs("mgx ledger proof: the Merkle log is damaged (run `mgx ledger verify`)\n", stderr);
        goto out;
    }
    if (blen > 0)
        memcpy(pr->body, sqlite3_column_blob(st, 1), (size_t)blen);
    pr->body_len = (size_t)blen;
    pr->log_index = li;
    pr->tree_size = (int64_t)size;
    pr->checkpoint = note;
    char *s = ctl_lj_proof_format(pr, sqlite3_column_blob(st, 2));
    if (s) {
        printf("%s\n", s);
        free(s);
        rc = CTL_EXIT_OK;
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(note);
    free(pr);
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

/* Reads and parses a proof file (parse: ctl_lj_proof_parse or ctl_lj_consistency_parse);
 * -1 after printing why it cannot be read or is not JSON, 1 when it is JSON of another kind. */
static int load_proof(const char *path, int (*parse)(const char *, size_t, void *, char *, size_t),
                      void *out)
{
    char *text = NULL, err[512] = "";
    size_t len;
    if (ctl_read_file(path, 1u << 20, &text, &len) != 0) {
        fprintf(stderr, "mgx ledger: %s: cannot read\n", path);
        return -1;
    }
    int rc = parse(text, len, out, err, sizeof err);
    free(text);
    if (rc == CTL_LJ_E_SYNTAX || rc == CTL_LJ_E_NOMEM)
        fprintf(stderr, "mgx ledger: %s:%s\n", path, err);
    return rc == CTL_LJ_OK ? 0 : rc == CTL_LJ_E_BAD ? 1 : -1;
}

static int parse_proof(const char *text, size_t len, void *out, char *err, size_t errlen)
{
    return ctl_lj_proof_parse(text, len, out, err, errlen);
}

static int parse_consistency(const char *text, size_t len, void *out, char *err, size_t errlen)
{
    return ctl_lj_consistency_parse(text, len, out, err, errlen);
}

static int open_checkpoint(int argc, char **argv, const char *note, const char *name,
                           const uint8_t pk[32], stl_checkpoint *cp)
{
    const char *cf = opt_value(argc, argv, "--checkpoint");
    char *text = NULL;
    size_t len = 0;
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
    int rc = CTL_EXIT_FAILURE;
    stl_checkpoint cp;
    uint8_t leaf[32];
    ctl_lj_proof *pr = calloc(1, sizeof *pr);
    if (!pr)
        return CTL_EXIT_FAILURE;
    int lrc = load_proof(pf, parse_proof, pr);
    if (lrc != 0) {
        if (lrc > 0)
            fprintf(stderr, "mgx ledger check-proof: %s is not an mgx inclusion proof\n", pf);
        goto out;
    }
    if (open_checkpoint(argc, argv, pr->checkpoint, name, pk, &cp) != 0)
        goto out;
    if ((uint64_t)pr->tree_size != cp.size) {
        fprintf(stderr, "mgx ledger check-proof: the proof is for a log of %lld entries, the "
                        "checkpoint for %llu\n",
                (long long)pr->tree_size, (unsigned long long)cp.size);
        goto out;
    }
    stl_merkle_leaf_hash(pr->body, pr->body_len, leaf);
    if (stl_merkle_verify_inclusion((uint64_t)pr->log_index, cp.size, leaf,
                                    (const uint8_t(*)[STL_HASH_LEN])pr->path, pr->n_path,
                                    cp.root) != STL_OK) {
        fprintf(stderr, "mgx ledger check-proof: FAILED: the transaction is not in the log at "
                        "this checkpoint\n");
        goto out;
    }
    uint8_t id[32];
    char idhex[65];
    stl_tx_id(pr->body, pr->body_len, id);
    hex(id, 32, idhex);
    printf("OK: transaction %s (interval %lld, #%u) is entry %lld of %s's log, size %llu, signed "
           "by %s\n",
           idhex, (long long)pr->tx.interval_id, pr->tx.seq, (long long)pr->log_index, cp.origin,
           (unsigned long long)cp.size, name);
    describe_tx(&pr->tx);
    rc = CTL_EXIT_OK;
out:
    ctl_lj_proof_free(pr);
    free(pr);
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
    ctl_lj_consistency *c = calloc(1, sizeof *c);
    if (!c)
        goto out;
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
    c->old_size = (uint64_t)from;
    c->new_size = (uint64_t)to;
    if (stl_merkle_consistency_proof(c->old_size, c->new_size, ctl_ledger_node, db, c->path,
                                     &c->n_path) != STL_OK ||
        stl_merkle_root_at(c->old_size, ctl_ledger_node, db, c->old_root) != STL_OK ||
        stl_merkle_root_at(c->new_size, ctl_ledger_node, db, c->new_root) != STL_OK) {
        fputs("mgx ledger consistency: the Merkle log is damaged (run `mgx ledger verify`)\n", stderr);
        goto out;
    }
    c->old_checkpoint = checkpoint_at_size(db, c->old_size);
    c->new_checkpoint = checkpoint_at_size(db, c->new_size);
    char *s = ctl_lj_consistency_format(c);
    if (s) {
        printf("%s\n", s);
        free(s);
        rc = CTL_EXIT_OK;
    }
out:
    ctl_lj_consistency_free(c);
    free(c);
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
    int rc = CTL_EXIT_FAILURE;
    stl_checkpoint c1, c2;
    ctl_lj_consistency *c = calloc(1, sizeof *c);
    if (!c)
        return CTL_EXIT_FAILURE;
    int lrc = load_proof(pf, parse_consistency, c);
    if (lrc != 0) {
        if (lrc > 0)
            fprintf(stderr, "mgx ledger check-consistency: %s needs both signed checkpoints and "
                            "the hashes\n",
                    pf);
        goto out;
    }
    const char *n1 = c->old_checkpoint, *n2 = c->new_checkpoint;
    if (stl_checkpoint_open(n1, strlen(n1), name, pk, name, &c1) != STL_OK ||
        stl_checkpoint_open(n2, strlen(n2), name, pk, name, &c2) != STL_OK) {
        fputs("mgx ledger check-consistency: a checkpoint is not signed by this key\n", stderr);
        goto out;
    }
    if (stl_merkle_verify_consistency(c1.size, c2.size, c1.root, c2.root,
                                      (const uint8_t(*)[STL_HASH_LEN])c->path,
                                      c->n_path) != STL_OK) {
        fputs("mgx ledger check-consistency: FAILED: the newer log does not extend the older one\n",
              stderr);
        goto out;
    }
    printf("OK: %s's log of size %llu is an append-only extension of size %llu\n", name,
           (unsigned long long)c2.size, (unsigned long long)c1.size);
    rc = CTL_EXIT_OK;
out:
    ctl_lj_consistency_free(c);
    free(c);
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
