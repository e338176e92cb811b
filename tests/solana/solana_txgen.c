/*
 * Test helper for the LiteSVM tests: prints what mgx's Solana code builds, for a node script
 * to execute in a real Solana runtime.
 *
 *   solana_txgen ata      stdin: "OWNER MINT" per line    -> the ATA (base58) per line
 *   solana_txgen curve    stdin: a base58 key per line     -> 1 (on the curve) or 0 per line
 *   solana_txgen approve  SCENARIO.json -> {"txs":[{"home","signature","tx"}]}: each home
 *                         approves the settlement key on its energy and payment accounts
 *   solana_txgen settle   SCENARIO.json -> {"homes":[...], "txs":[{"part","signature","tx",
 *                         "transfers"}]}: the interval's signed batch
 *
 * The scenario names keys by their 32-byte seeds (hex), mints and blockhash in base58, and
 * lists transfers as {"from","to","asset":"energy"|"payment","amount","group"}. Transactions
 * are printed base64. Exit 0 on success, 1 with a message on stderr otherwise.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgx/credits.h"
#include "mgx/solana.h"
#include "mgx/solana_base58.h"
#include "mgx/solana_batch.h"
#include "mgx/solana_ix.h"
#include "mgx/solana_pda.h"
#include "mgx/solana_tx.h"

static int fail(const char *what)
{
    fprintf(stderr, "solana_txgen: %s\n", what);
    return 1;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

static int cmd_ata(void)
{
    char line[256], a[128], b[128], out[SOL_PUBKEY_B58_MAX + 1];
    while (fgets(line, sizeof line, stdin)) {
        sol_pubkey owner, mint, ata;
        if (sscanf(line, "%127s %127s", a, b) != 2 || sol_pubkey_from_base58(a, &owner) != SOL_OK ||
            sol_pubkey_from_base58(b, &mint) != SOL_OK)
            return fail("bad ata line");
        if (sol_ata_address(&owner, &mint, &SOL_TOKEN_PROGRAM, &ata) != SOL_OK)
            return fail("ata derivation failed");
        sol_pubkey_to_base58(&ata, out);
        puts(out);
    }
    return 0;
}

static int cmd_curve(void)
{
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        trim(line);
        sol_pubkey k;
        if (sol_pubkey_from_base58(line, &k) != SOL_OK)
            return fail("bad key line");
        puts(sol_is_on_curve(k.b) ? "1" : "0");
    }
    return 0;
}

typedef struct {
    json_t *root;
    uint8_t authority_sk[64];
    sol_community c;
    size_t n_homes;
    sol_home *homes;
    uint8_t (*home_sk)[64];
    uint8_t blockhash[32];
} scenario;

static int seed_keypair(const char *hex, uint8_t sk[64], sol_pubkey *pk)
{
    uint8_t seed[32];
    size_t n;
    if (!hex || sodium_hex2bin(seed, sizeof seed, hex, strlen(hex), NULL, &n, NULL) != 0 ||
        n != 32)
        return -1;
    crypto_sign_seed_keypair(pk->b, sk, seed);
    return 0;
}

static int load(const char *path, scenario *s)
{
    json_error_t err;
    memset(s, 0, sizeof *s);
    s->root = json_load_file(path, 0, &err);
    if (!s->root)
        return fail(err.text);
    json_t *r = s->root;
    if (seed_keypair(json_string_value(json_object_get(r, "authority_seed")), s->authority_sk,
                     &s->c.authority) != 0)
        return fail("authority_seed");
    s->c.token_program = SOL_TOKEN_PROGRAM;
    if (sol_pubkey_from_base58(json_string_value(json_object_get(r, "energy_mint")),
                               &s->c.energy_mint) != SOL_OK ||
        sol_pubkey_from_base58(json_string_value(json_object_get(r, "payment_mint")),
                               &s->c.payment_mint) != SOL_OK)
        return fail("mints");
    s->c.energy_decimals = (uint8_t)json_integer_value(json_object_get(r, "energy_decimals"));
    s->c.payment_decimals = (uint8_t)json_integer_value(json_object_get(r, "payment_decimals"));
    if (sol_base58_decode(json_string_value(json_object_get(r, "blockhash")), s->blockhash, 32) !=
        SOL_OK)
        return fail("blockhash");
    json_t *homes = json_object_get(r, "homes");
    s->n_homes = json_array_size(homes);
    s->homes = calloc(s->n_homes + 1, sizeof *s->homes);
    s->home_sk = calloc(s->n_homes + 1, sizeof *s->home_sk);
    if (!s->homes || !s->home_sk)
        return fail("out of memory");
    for (size_t i = 0; i < s->n_homes; i++) {
        sol_pubkey owner;
        if (seed_keypair(json_string_value(json_array_get(homes, i)), s->home_sk[i], &owner) != 0 ||
            sol_home_init(&s->homes[i], &s->c, &owner) != SOL_OK)
            return fail("home seed");
    }
    return 0;
}

static void unload(scenario *s)
{
    json_decref(s->root);
    free(s->homes);
    free(s->home_sk);
    sodium_memzero(s->authority_sk, sizeof s->authority_sk);
}

static json_t *tx_json(const uint8_t *tx, size_t len, const uint8_t sig[64])
{
    char b64[2 * SOL_TX_MAX_BYTES], sig58[SOL_SIGNATURE_B58_MAX + 1];
    sodium_bin2base64(b64, sizeof b64, tx, len, sodium_base64_VARIANT_ORIGINAL);
    sol_base58_encode(sig, 64, sig58, sizeof sig58);
    return json_pack("{s:s, s:s}", "signature", sig58, "tx", b64);
}

static int cmd_approve(const scenario *s)
{
    json_t *allow = json_object_get(s->root, "approve"), *txs = json_array();
    for (size_t i = 0; i < s->n_homes; i++) {
        json_t *pair = json_array_get(allow, i);
        json_int_t e = json_integer_value(json_array_get(pair, 0));
        json_int_t p = json_integer_value(json_array_get(pair, 1));
        const sol_home *h = &s->homes[i];
        sol_ix ix[2];
        sol_ix_approve(&ix[0], &h->energy_account, &s->c.authority, &h->owner, (uint64_t)e);
        sol_ix_approve(&ix[1], &h->payment_account, &s->c.authority, &h->owner, (uint64_t)p);
        sol_msg m;
        sol_msg_init(&m, &h->owner);
        uint8_t tx[SOL_TX_MAX_BYTES], sig[64];
        size_t len;
        const uint8_t *sks[1] = {s->home_sk[i]};
        if (sol_msg_add(&m, ix, 2) != SOL_OK ||
            sol_msg_sign(&m, s->blockhash, sks, 1, tx, sizeof tx, &len, sig) != SOL_OK)
            return fail("approve build");
        json_t *o = tx_json(tx, len, sig);
        json_object_set_new(o, "home", json_integer((json_int_t)i));
        json_array_append_new(txs, o);
    }
    json_t *out = json_pack("{s:o}", "txs", txs);
    json_dumpf(out, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(out);
    return 0;
}

static json_t *key_json(const sol_pubkey *k)
{
    char t[SOL_PUBKEY_B58_MAX + 1];
    sol_pubkey_to_base58(k, t);
    return json_string(t);
}

static int cmd_settle(const scenario *s)
{
    json_t *jt = json_object_get(s->root, "transfers");
    size_t n = json_array_size(jt);
    sol_transfer *t = calloc(n + 1, sizeof *t);
    if (!t)
        return fail("out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(jt, i);
        const char *asset = json_string_value(json_object_get(o, "asset"));
        t[i].from = (uint32_t)json_integer_value(json_object_get(o, "from"));
        t[i].to = (uint32_t)json_integer_value(json_object_get(o, "to"));
        t[i].asset = (asset && strcmp(asset, "payment") == 0) ? SOL_ASSET_PAYMENT : SOL_ASSET_ENERGY;
        t[i].amount = (uint64_t)json_integer_value(json_object_get(o, "amount"));
        t[i].group = (uint64_t)json_integer_value(json_object_get(o, "group"));
    }
    sol_interval iv = {(uint64_t)json_integer_value(json_object_get(s->root, "interval")), {0}};
    const char *root_hex = json_string_value(json_object_get(s->root, "root"));
    size_t rn;
    if (!root_hex || sodium_hex2bin(iv.ledger_root, 32, root_hex, strlen(root_hex), NULL, &rn,
                                    NULL) != 0 || rn != 32) {
        free(t);
        return fail("root");
    }
    sol_batch *b = sol_batch_new();
    size_t bad;
    int rc = b ? sol_batch_build(b, &s->c, s->homes, s->n_homes, &iv, t, n, s->blockhash,
                                 s->authority_sk, &bad)
               : SOL_E_NOMEM;
    free(t);
    if (rc != SOL_OK) {
        fprintf(stderr, "solana_txgen: build failed at transfer %zu: %s\n", bad, sol_strerror(rc));
        sol_batch_free(b);
        return 1;
    }
    json_t *homes = json_array(), *txs = json_array();
    for (size_t i = 0; i < s->n_homes; i++)
        json_array_append_new(homes, json_pack("{s:o, s:o, s:o}", "owner",
                                               key_json(&s->homes[i].owner), "energy_account",
                                               key_json(&s->homes[i].energy_account),
                                               "payment_account",
                                               key_json(&s->homes[i].payment_account)));
    for (size_t k = 0; k < sol_batch_count(b); k++) {
        const sol_batch_tx *tx = sol_batch_at(b, k);
        json_t *o = tx_json(tx->bytes, tx->len, tx->signature), *idx = json_array();
        for (size_t j = 0; j < tx->n_transfers; j++)
            json_array_append_new(idx, json_integer(tx->transfers[j]));
        json_object_set_new(o, "part", json_integer(tx->part));
        json_object_set_new(o, "transfers", idx);
        json_array_append_new(txs, o);
    }
    sol_batch_free(b);
    json_t *out = json_pack("{s:o, s:o}", "homes", homes, "txs", txs);
    json_dumpf(out, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(out);
    return 0;
}

/* One interval's energy credits (issue 13): positions (participant = home index) and trades
 * from the scenario through stl_credits_compute, then one transaction signed by the authority
 * (fee payer, the energy mint's authority and every home's approved delegate): a memo, a
 * MintToChecked per minting home, a TransferChecked per moving trade, a BurnChecked per
 * retiring home, and the scenario's "extra_burn" {home, amount} if any (a test of an
 * over-balance burn). Prints the records and the transaction. */
static int cmd_credits(const scenario *s)
{
    json_t *jp = json_object_get(s->root, "positions"), *jt = json_object_get(s->root, "trades");
    size_t np = json_array_size(jp), nt = json_array_size(jt);
    stl_position p[16];
    stl_settled_trade t[16];
    stl_credit c[16];
    stl_credit_move mv[16];
    if (np > 16 || nt > 16 || np > s->n_homes)
        return fail("at most 16 positions and trades, one per home");
    memset(p, 0, sizeof p);
    memset(t, 0, sizeof t);
    for (size_t i = 0; i < np; i++) {
        json_t *o = json_array_get(jp, i);
        p[i].participant = (uint64_t)json_integer_value(json_object_get(o, "home"));
        p[i].status = (stl_pos_status)json_integer_value(json_object_get(o, "status"));
        p[i].tier = (uint8_t)json_integer_value(json_object_get(o, "tier"));
        p[i].import_wh = json_integer_value(json_object_get(o, "import_wh"));
        p[i].export_wh = json_integer_value(json_object_get(o, "export_wh"));
    }
    for (size_t i = 0; i < nt; i++) {
        json_t *o = json_array_get(jt, i);
        t[i].seller = (uint64_t)json_integer_value(json_object_get(o, "seller"));
        t[i].buyer = (uint64_t)json_integer_value(json_object_get(o, "buyer"));
        t[i].delivered_wh = json_integer_value(json_object_get(o, "delivered_wh"));
        t[i].contracted_wh = t[i].delivered_wh;
    }
    uint8_t min_tier = (uint8_t)json_integer_value(json_object_get(s->root, "min_tier"));
    if (stl_credits_compute(p, np, t, nt, min_tier, c, mv, NULL) != STL_OK)
        return fail("stl_credits_compute");
    sol_ix ix[64];
    size_t n = 0;
    char memo[96];
    int ml = snprintf(memo, sizeof memo, "mgx1 credits interval=%lld",
                      (long long)json_integer_value(json_object_get(s->root, "interval")));
    if (sol_ix_memo(&ix[n++], memo, (size_t)ml) != SOL_OK)
        return fail("memo");
    const sol_community *cm = &s->c;
    for (size_t i = 0; i < np; i++)
        if (c[i].minted_wh > 0)
            sol_ix_mint_to_checked(&ix[n++], &cm->energy_mint,
                                   &s->homes[p[i].participant].energy_account, &cm->authority,
                                   (uint64_t)c[i].minted_wh, cm->energy_decimals);
    for (size_t k = 0; k < nt; k++)
        if (mv[k].wh > 0)
            sol_ix_transfer_checked(&ix[n++], &s->homes[t[k].seller].energy_account,
                                    &cm->energy_mint, &s->homes[t[k].buyer].energy_account,
                                    &cm->authority, (uint64_t)mv[k].wh, cm->energy_decimals);
    for (size_t i = 0; i < np; i++)
        if (c[i].retired_wh > 0)
            sol_ix_burn_checked(&ix[n++], &s->homes[p[i].participant].energy_account,
                                &cm->energy_mint, &cm->authority, (uint64_t)c[i].retired_wh,
                                cm->energy_decimals);
    json_t *extra = json_object_get(s->root, "extra_burn");
    if (extra)
        sol_ix_burn_checked(
            &ix[n++],
            &s->homes[json_integer_value(json_object_get(extra, "home")) % (json_int_t)s->n_homes]
                 .energy_account,
            &cm->energy_mint, &cm->authority,
            (uint64_t)json_integer_value(json_object_get(extra, "amount")), cm->energy_decimals);
    sol_msg m;
    sol_msg_init(&m, &cm->authority);
    uint8_t tx[SOL_TX_MAX_BYTES], sig[64];
    size_t len;
    const uint8_t *sks[1] = {s->authority_sk};
    if (sol_msg_add(&m, ix, n) != SOL_OK ||
        sol_msg_sign(&m, s->blockhash, sks, 1, tx, sizeof tx, &len, sig) != SOL_OK)
        return fail("credits build");
    json_t *recs = json_array();
    for (size_t i = 0; i < np; i++)
        json_array_append_new(
            recs, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "home",
                            (json_int_t)c[i].participant, "minted", (json_int_t)c[i].minted_wh,
                            "in", (json_int_t)c[i].in_wh, "out", (json_int_t)c[i].out_wh,
                            "retired", (json_int_t)c[i].retired_wh, "kept",
                            (json_int_t)c[i].kept_wh));
    json_t *out = json_pack("{s:o, s:o, s:i}", "records", recs, "tx", tx_json(tx, len, sig),
                            "instructions", (int)n);
    json_dumpf(out, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(out);
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return fail("sodium_init");
    if (argc == 2 && strcmp(argv[1], "ata") == 0)
        return cmd_ata();
    if (argc == 2 && strcmp(argv[1], "curve") == 0)
        return cmd_curve();
    if (argc != 3 || (strcmp(argv[1], "approve") != 0 && strcmp(argv[1], "settle") != 0 &&
                      strcmp(argv[1], "credits") != 0))
        return fail("usage: solana_txgen ata|curve|approve SCENARIO|settle SCENARIO|credits "
                    "SCENARIO");
    scenario s;
    int rc = load(argv[2], &s);
    if (rc == 0)
        rc = strcmp(argv[1], "approve") == 0   ? cmd_approve(&s)
             : strcmp(argv[1], "credits") == 0 ? cmd_credits(&s)
                                                : cmd_settle(&s);
    unload(&s);
    return rc;
}
