/*
 * `mgx ledger`: the settlement ledger from the command line. Coordinators settle intervals from
 * a file (until the daemon calls ctl_ledger_settle itself), audit the database, export it and
 * print statements; homeowners check that their transaction is in a signed checkpoint with a
 * proof file, the checkpoint and the community's public key, and nothing else.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "common/file.h"
#include "orders/keys.h"
#include "common/opt.h"
#include "mgx/civil.h"
#include "mgx/merkle.h"
#include "common/wall_clock.h"
#include "settle/credit_trueup.h"
#include "settle/ledger_certs.h"
#include "settle/ledger_export.h"
#include "settle/ledger_json.h"
#include "settle/ledger_proof.h"
#include "settle/ledger_statement.h"
#include "settle/ledger_store.h"
#include "settle/ledger_verify.h"
#include "witness/witness.h"
#include "settle/settle_interval.h"

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
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
    "         [--witness PUBFILE]... [--cosigned FILE]... [--witnesses-required K]\n"
    "                                    and require K witnesses on the latest checkpoint\n"
    "  info DB                           community, public key, height, log size\n"
    "  checkpoint DB [--height H]        the signed checkpoint (C2SP tlog-checkpoint)\n"
    "  proof DB --tx ID|--index N [--height H]\n"
    "                                    inclusion proof of a transaction (JSON)\n"
    "  check-proof --proof FILE --vkey VKEY|--vkey-file F [--checkpoint FILE]\n"
    "         [--witness PUBFILE]... [--cosigned FILE]... [--witnesses-required K]\n"
    "                                    check a proof offline: no database needed\n"
    "  consistency DB --from N --to M    proof that the log of size M extends the one of size N\n"
    "  check-consistency --proof FILE --vkey VKEY|--vkey-file F\n"
    "  export DB [--out FILE]            blocks and transactions as JSON lines\n"
    "  statement DB --participant NAME|NUMBER (--interval I | --month YYYY-MM)\n"
    "                                    a participant's settlement as CSV\n"
    "  certificates DB --participant NAME|NUMBER (--interval I | --month YYYY-MM)\n"
    "                                    its energy credits as granular certificates and its\n"
    "                                    24/7 matching (JSON; docs/credits.md)\n"
    "  resolve DB --participant NAME|NUMBER --interval I\n"
    "                                    resolve its held position of interval I as good: the\n"
    "                                    next block mints its credits (a true-up, docs/credits.md)\n";

static const char *opt_value(int argc, char **argv, const char *name)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static int open_db(const char *path, ctl_db **db)
{
    char err[512] = "";
    if (ctl_db_open(path, db, err, sizeof err) != CTL_DB_OK) {
        fprintf(stderr, "mgx ledger: %s\n", err);
        return -1;
    }
    return 0;
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
    ctl_db *db = NULL;
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
    ctl_db_close(db);
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

#define VERIFY_MAX_WITNESSES 32

/* The witness options of verify: --witness PUBFILE (from `mgx keygen`), --cosigned FILE (a
 * witness's out file), repeated; --witnesses-required K (default: all the --witness keys). */
typedef struct {
    uint8_t pk[VERIFY_MAX_WITNESSES][STL_PK_LEN];
    size_t n_pk;
    char *note[VERIFY_MAX_WITNESSES];
    size_t len[VERIFY_MAX_WITNESSES];
    size_t n_note;
    int64_t k; /* -1: not given */
} verify_witnesses;

static int read_witness_options(int argc, char **argv, verify_witnesses *vw)
{
    memset(vw, 0, sizeof *vw);
    vw->k = -1;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--witness") && strcmp(o, "--cosigned") && strcmp(o, "--witnesses-required"))
            continue;
        if (i + 1 >= argc) {
            fprintf(stderr, "mgx ledger: %s needs a value\n", o);
            return -1;
        }
        const char *v = argv[++i];
        if (strcmp(o, "--witness") == 0) {
            if (vw->n_pk == VERIFY_MAX_WITNESSES || ctl_pubkey_load(v, vw->pk[vw->n_pk]) != 0) {
                fprintf(stderr, "mgx ledger: --witness %s: not a public key file (64 hex "
                                "digits, from mgx keygen) or too many witnesses (%d)\n",
                        v, VERIFY_MAX_WITNESSES);
                return -1;
            }
            vw->n_pk++;
        } else if (strcmp(o, "--cosigned") == 0) {
            if (vw->n_note == VERIFY_MAX_WITNESSES ||
                ctl_read_file(v, STL_NOTE_MAX, &vw->note[vw->n_note], &vw->len[vw->n_note]) != 0) {
                fprintf(stderr, "mgx ledger: --cosigned %s: cannot read it (at most %d "
                                "files of %d bytes)\n",
                        v, VERIFY_MAX_WITNESSES, STL_NOTE_MAX);
                return -1;
            }
            vw->n_note++;
        } else if (ctl_opt_int64(v, 0, VERIFY_MAX_WITNESSES, &vw->k) != 0) {
            fprintf(stderr, "mgx ledger: --witnesses-required: 0..%d\n",
                    VERIFY_MAX_WITNESSES);
            return -1;
        }
    }
    if (vw->k > (int64_t)vw->n_pk) {
        fprintf(stderr, "mgx ledger: --witnesses-required %lld but only %zu --witness "
                        "keys given\n",
                (long long)vw->k, vw->n_pk);
        return -1;
    }
    if (vw->k < 0)
        vw->k = (int64_t)vw->n_pk;
    return 0;
}

static void free_witness_options(verify_witnesses *vw)
{
    for (size_t i = 0; i < vw->n_note; i++)
        free(vw->note[i]);
}

static int cmd_verify(int argc, char **argv)
{
    if (argc < 3) {
        fputs("usage: mgx ledger verify DB [--vkey VKEY | --vkey-file FILE]\n"
              "         [--witness PUBFILE]... [--cosigned FILE]... [--witnesses-required K]\n",
              stderr);
        return CTL_EXIT_USAGE;
    }
    char name[STL_COMMUNITY_MAX + 1], msg[1024] = "", wmsg[1024] = "";
    uint8_t pk[32];
    int k = read_vkey(argc, argv, name, pk);
    if (k < 0)
        return CTL_EXIT_USAGE;
    verify_witnesses *vw = calloc(1, sizeof *vw);
    if (!vw)
        return CTL_EXIT_FAILURE;
    if (read_witness_options(argc, argv, vw) != 0) {
        free_witness_options(vw);
        free(vw);
        return CTL_EXIT_USAGE;
    }
    ctl_db *db = NULL;
    if (open_db(argv[2], &db) != 0) {
        free_witness_options(vw);
        free(vw);
        return CTL_EXIT_FAILURE;
    }
    int rc = ctl_ledger_verify(db, k == 0 ? pk : NULL, msg, sizeof msg);
    if (rc == CTL_LEDGER_OK && vw->n_pk > 0) {
        rc = ctl_witness_require(db, (const uint8_t(*)[STL_PK_LEN])vw->pk, vw->n_pk,
                                 (size_t)vw->k, (const char *const *)vw->note, vw->len,
                                 vw->n_note, wmsg, sizeof wmsg);
        if (rc != CTL_LEDGER_OK)
            snprintf(msg, sizeof msg, "%s", wmsg);
    }
    ctl_db_close(db);
    free_witness_options(vw);
    free(vw);
    if (rc == CTL_LEDGER_OK) {
        printf("%s\n", msg);
        if (wmsg[0])
            printf("%s\n", wmsg);
        return CTL_EXIT_OK;
    }
    fprintf(stderr, "mgx ledger verify: FAULT: %s\n", rc == CTL_LEDGER_E_DB ? "database error" : msg);
    return CTL_EXIT_FAILURE;
}

static int cmd_info(int argc, char **argv)
{
    if (argc < 3)
        return CTL_EXIT_USAGE;
    ctl_db *db = NULL;
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
    ctl_db_close(db);
    return CTL_EXIT_OK;
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
    ctl_db *db = NULL;
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    uint64_t size;
    char *note = ctl_ledger_checkpoint(db, h, &size);
    ctl_db_close(db);
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
    ctl_db *db = NULL;
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    int rc = CTL_EXIT_FAILURE;
    char err[512] = "";
    uint8_t stored_id[STL_ID_LEN];
    ctl_lj_proof *pr = calloc(1, sizeof *pr);
    if (!pr) {
        fputs("mgx ledger proof: no such block\n", stderr);
        goto out;
    }
    if (ctl_ledger_inclusion_proof(db, txs ? id : NULL, li, h, pr, stored_id, err, sizeof err) !=
        CTL_LEDGER_OK) {
        fprintf(stderr, "mgx ledger proof: %s\n", err);
        goto out;
    }
    char *s = ctl_lj_proof_format(pr, stored_id);
    if (s) {
        printf("%s\n", s);
        free(s);
        rc = CTL_EXIT_OK;
    }
out:
    ctl_db_close(db);
    ctl_lj_proof_free(pr);
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
    } else if (tx->kind == STL_TX_CREDIT && stl_credit_is_trueup(&tx->credit)) {
        const stl_credit *c = &tx->credit;
        printf("  credit true-up of participant %llu: its %s position at log index %u (tier %u, "
               "minimum tier %u) resolved as good, minted %lld Wh, kept %lld\n",
               (unsigned long long)c->participant, stl_pos_status_name((stl_pos_status)c->status),
               c->source_seq, c->tier, c->min_tier, (long long)c->minted_wh,
               (long long)c->kept_wh);
    } else if (tx->kind == STL_TX_CREDIT) {
        const stl_credit *c = &tx->credit;
        printf("  energy credits of participant %llu (from position %u, %s, tier %u, minimum "
               "tier %u): minted %lld Wh, bought %lld, sold %lld, retired %lld, kept %lld\n",
               (unsigned long long)c->participant, c->source_seq,
               stl_pos_status_name((stl_pos_status)c->status), c->tier, c->min_tier,
               (long long)c->minted_wh, (long long)c->in_wh, (long long)c->out_wh,
               (long long)c->retired_wh, (long long)c->kept_wh);
    } else {
        const stl_position *p = &tx->position;
        printf("  position of participant %llu (%s, attestation tier %u): import %lld Wh, export "
               "%lld Wh; local bought %lld / sold %lld Wh; grid bought %lld / sold %lld Wh; paid "
               "%lld uc, received %lld uc\n",
               (unsigned long long)p->participant, stl_pos_status_name(p->status), p->tier,
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
              "[--checkpoint FILE]\n"
              "         [--witness PUBFILE]... [--cosigned FILE]... [--witnesses-required K]\n",
              stderr);
        return CTL_EXIT_USAGE;
    }
    int rc = CTL_EXIT_FAILURE;
    stl_checkpoint cp;
    char err[512] = "";
    verify_witnesses *vw = calloc(1, sizeof *vw);
    if (!vw)
        return CTL_EXIT_FAILURE;
    if (read_witness_options(argc, argv, vw) != 0) {
        free_witness_options(vw);
        free(vw);
        return CTL_EXIT_USAGE;
    }
    ctl_lj_proof *pr = calloc(1, sizeof *pr);
    if (!pr) {
        free_witness_options(vw);
        free(vw);
        return CTL_EXIT_FAILURE;
    }
    int lrc = load_proof(pf, parse_proof, pr);
    if (lrc != 0) {
        if (lrc > 0)
            fprintf(stderr, "mgx ledger check-proof: %s is not an mgx inclusion proof\n", pf);
        goto out;
    }
    if (open_checkpoint(argc, argv, pr->checkpoint, name, pk, &cp) != 0)
        goto out;
    if (ctl_ledger_check_inclusion(pr, &cp, err, sizeof err) != CTL_LEDGER_OK) {
        fprintf(stderr, "mgx ledger check-proof: %s\n", err);
        goto out;
    }
    if (vw->n_pk > 0) {
        size_t got = ctl_witness_count_on(&cp, name, pk, (const uint8_t(*)[STL_PK_LEN])vw->pk,
                                          vw->n_pk, (const char *const *)vw->note, vw->len,
                                          vw->n_note);
        if (got < (size_t)vw->k) {
            fprintf(stderr,
                    "mgx ledger check-proof: %zu of the known witnesses cosigned this checkpoint "
                    "(log size %llu); %lld required\n",
                    got, (unsigned long long)cp.size, (long long)vw->k);
            goto out;
        }
        printf("%zu witnesses cosigned this checkpoint\n", got);
    }
    uint8_t id[32];
    char idhex[65];
    if (stl_tx_id(pr->has_salt ? pr->salt : NULL, pr->body, pr->body_len, id) != STL_OK)
        goto out; /* the parser and the check above already matched salt and version */
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
    free_witness_options(vw);
    free(vw);
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
    ctl_db *db = NULL;
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    int rc = CTL_EXIT_FAILURE;
    char err[512] = "";
    ctl_lj_consistency *c = calloc(1, sizeof *c);
    if (!c)
        goto out;
    if (ctl_ledger_consistency_proof(db, from, to, c, err, sizeof err) != CTL_LEDGER_OK) {
        fprintf(stderr, "mgx ledger consistency: %s\n", err);
        goto out;
    }
    char *s = ctl_lj_consistency_format(c);
    if (s) {
        printf("%s\n", s);
        free(s);
        rc = CTL_EXIT_OK;
    }
out:
    ctl_lj_consistency_free(c);
    free(c);
    ctl_db_close(db);
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
    char err[512] = "";
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
    if (ctl_ledger_check_consistency(c, name, pk, &c1, &c2, err, sizeof err) != CTL_LEDGER_OK) {
        fprintf(stderr, "mgx ledger check-consistency: %s\n", err);
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
    ctl_db *db = NULL;
    char err[512] = "";
    int rc = CTL_EXIT_FAILURE;
    if (open_db(argv[2], &db) != 0)
        goto out;
    if (ctl_ledger_export(db, out, err, sizeof err) != CTL_LEDGER_OK) {
        fprintf(stderr, "mgx ledger export: %s\n", err);
        goto out;
    }
    rc = CTL_EXIT_OK;
out:
    ctl_db_close(db);
    if (out != stdout && fclose(out) != 0)
        rc = CTL_EXIT_FAILURE;
    return rc;
}

typedef struct {
    int64_t v[CTL_STATEMENT_COLS];
} statement_sum;

static int print_statement_row(void *ctx, const ctl_statement_row *r)
{
    statement_sum *sum = ctx;
    char when[160];
    mkt_format_time(r->start_utc, 0, when, sizeof when);
    printf("%lld,%s,%s,%u", (long long)r->interval_id, when,
           stl_pos_status_name(r->position->status), r->position->quality);
    for (int i = 0; i < CTL_STATEMENT_COLS; i++) {
        printf(",%lld", (long long)r->v[i]);
        sum->v[i] += r->v[i];
    }
    printf(",%s,%u\n", r->timing == STL_TIMING_EX_POST ? "ex_post" : "ex_ante",
           r->position->tier);
    return 0;
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
    ctl_statement_range range = {true, iv, 0, 0};
    if (ms)
        ctl_statement_month(y, mo, &range);
    ctl_db *db = NULL;
    int rc = CTL_EXIT_FAILURE, rows = 0;
    char err[512] = "";
    statement_sum sum = {{0}};
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    if (ctl_ledger_participant_number(db, ps, &part, err, sizeof err) != 0) {
        fprintf(stderr, "mgx ledger statement: %s\n", err);
        goto out;
    }
    printf("interval_id,start_utc,status,quality,import_wh,export_wh,contracted_bought_wh,"
           "contracted_sold_wh,local_bought_wh,local_sold_wh,grid_bought_wh,grid_sold_wh,"
           "local_paid_uc,fee_paid_uc,local_received_uc,grid_paid_uc,grid_received_uc,net_uc,"
           "timing,tier\n");
    if (ctl_ledger_statement(db, part, &range, print_statement_row, &sum, &rows, err, sizeof err) !=
        0) {
        fprintf(stderr, "mgx ledger statement: %s\n", err);
        goto out;
    }
    if (ms) {
        printf("total,%s,,", ms);
        for (int i = 0; i < CTL_STATEMENT_COLS; i++)
            printf(",%lld", (long long)sum.v[i]);
        printf(",,\n");
    } else if (rows == 0) {
        fprintf(stderr, "mgx ledger statement: participant %lld has no settled position in "
                        "interval %lld\n",
                (long long)part, (long long)iv);
        goto out;
    }
    rc = CTL_EXIT_OK;
out:
    ctl_db_close(db);
    return rc;
}

static int cmd_certificates(int argc, char **argv)
{
    const char *ps = opt_value(argc, argv, "--participant"), *is = opt_value(argc, argv, "--interval"),
               *ms = opt_value(argc, argv, "--month");
    int64_t part = -1, iv = 0, y = 0, mo = 0;
    if (argc < 3 || !ps || !*ps || (!is == !ms) ||
        (is && ctl_opt_int64(is, INT64_MIN, INT64_MAX, &iv) != 0) ||
        (ms && (sscanf(ms, "%4lld-%2lld", (long long *)&y, (long long *)&mo) != 2 || mo < 1 ||
                mo > 12 || strlen(ms) != 7))) {
        fputs("usage: mgx ledger certificates DB --participant NAME|NUMBER "
              "(--interval I | --month YYYY-MM)\n",
              stderr);
        return CTL_EXIT_USAGE;
    }
    ctl_statement_range range = {true, iv, 0, 0};
    if (ms)
        ctl_statement_month(y, mo, &range);
    ctl_db *db = NULL;
    json_t *j = NULL;
    int rc = CTL_EXIT_FAILURE;
    char err[512] = "";
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    if (ctl_ledger_participant_number(db, ps, &part, err, sizeof err) != 0 ||
        ctl_ledger_certificates(db, part, &range, ms ? ms : is, &j, err, sizeof err) != 0) {
        fprintf(stderr, "mgx ledger certificates: %s\n", err);
        goto out;
    }
    char *text = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (text) {
        printf("%s\n", text);
        free(text);
        rc = CTL_EXIT_OK;
    }
out:
    json_decref(j);
    ctl_db_close(db);
    return rc;
}

/* The coordinator's resolution of a held position (settle/credit_trueup.h): recorded here, minted
 * by the next block the controller (or `mgx ledger settle`) writes with credits on. */
static int cmd_resolve(int argc, char **argv)
{
    const char *ps = opt_value(argc, argv, "--participant"), *is = opt_value(argc, argv, "--interval");
    int64_t part = -1, iv = 0;
    if (argc < 3 || !ps || !*ps || !is || ctl_opt_int64(is, INT64_MIN, INT64_MAX, &iv) != 0) {
        fputs("usage: mgx ledger resolve DB --participant NAME|NUMBER --interval I\n", stderr);
        return CTL_EXIT_USAGE;
    }
    ctl_db *db = NULL;
    char err[512] = "";
    int rc = CTL_EXIT_FAILURE;
    if (open_db(argv[2], &db) != 0)
        return CTL_EXIT_FAILURE;
    if (ctl_ledger_participant_number(db, ps, &part, err, sizeof err) != 0) {
        fprintf(stderr, "mgx ledger resolve: %s\n", err);
        goto out;
    }
    int r = ctl_trueup_request(db, iv, part, ctl_wall_ms(), err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "mgx ledger resolve: %s\n", err);
        goto out;
    }
    printf("%s\n", err);
    rc = CTL_EXIT_OK;
out:
    ctl_db_close(db);
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
                {"export", cmd_export},           {"statement", cmd_statement},
                {"certificates", cmd_certificates}, {"resolve", cmd_resolve}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].run(argc, argv);
    fprintf(stderr, "mgx ledger: unknown command '%s'\n\n%s", argv[1], USAGE);
    return CTL_EXIT_USAGE;
}
