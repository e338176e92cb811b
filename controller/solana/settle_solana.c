/*
 * The controller's Solana backend (see settle_solana.h): its [solana] config, the key pair and
 * wallets files, and turning a committed ledger block into outbox transactions.
 */
#define _POSIX_C_SOURCE 200809L
#include "solana/settle_solana.h"

#include "common/errbuf.h"

#include "common/file.h"
#include "mgx/solana_base58.h"
#include "mgx/solana_batch.h"
#include "mgx/solana_credits.h"
#include "common/opt.h"
#include "solana/solana_rpc.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- config ---- */

void ctl_settle_solana_defaults(ctl_settle_solana_config *c)
{
    memset(c, 0, sizeof *c);
    c->energy_decimals = 0;
    c->payment_decimals = 6;
    c->mode = CTL_SOL_MODE_ANCHOR; /* nothing per home on chain unless asked for */
    c->billing_intervals = 2880;   /* 30 days of quarter hours */
    c->poll_ms = 2000;
    c->timeout_ms = 5000;
}

static int str_key(const char *key, const char *value, char *out, size_t cap, char *err,
                   size_t errlen)
{
    if (!value[0] || strlen(value) >= cap) {
        ctl_errf(err, errlen, "%s must be 1..%zu characters", key, cap - 1);
        return 0;
    }
    memcpy(out, value, strlen(value) + 1);
    return 1;
}

static int int_key(const char *key, const char *value, int64_t min, int64_t max, int64_t *out,
                   char *err, size_t errlen)
{
    if (ctl_opt_int64(value, min, max, out) == 0)
        return 1;
    ctl_errf(err, errlen, "%s must be an integer in %lld..%lld, not '%s'", key, (long long)min,
             (long long)max, value);
    return 0;
}

static int mint_key(const char *key, const char *value, char *out, char *err, size_t errlen)
{
    sol_pubkey k;
    if (sol_pubkey_from_base58(value, &k) != SOL_OK) {
        ctl_errf(err, errlen, "%s is not a base58 Solana address", key);
        return 0;
    }
    snprintf(out, SOL_PUBKEY_B58_MAX + 1, "%s", value);
    return 1;
}

int ctl_settle_solana_key(ctl_settle_solana_config *c, const char *key, const char *value,
                          char *err, size_t errlen)
{
    c->enabled = 1;
    if (strcmp(key, "rpc_url") == 0) {
        if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) {
            ctl_errf(err, errlen, "rpc_url must start with http:// or https://");
            return 0;
        }
        return str_key(key, value, c->rpc_url, sizeof c->rpc_url, err, errlen);
    }
    if (strcmp(key, "keypair") == 0)
        return str_key(key, value, c->keypair, sizeof c->keypair, err, errlen);
    if (strcmp(key, "mode") == 0) {
        static const char *const MODES[] = {"anchor", "per_trade", "netted"};
        for (int i = 0; i < 3; i++)
            if (strcmp(value, MODES[i]) == 0) {
                c->mode = i;
                return 1;
            }
        ctl_errf(err, errlen, "mode must be anchor (the default), netted or per_trade, not '%s'",
                 value);
        return 0;
    }
    if (strcmp(key, "mint_authority") == 0)
        return str_key(key, value, c->mint_authority, sizeof c->mint_authority, err, errlen);
    if (strcmp(key, "pool_wallet") == 0)
        return mint_key(key, value, c->pool_wallet, err, errlen);
    if (strcmp(key, "billing_intervals") == 0)
        return int_key(key, value, 1, 1000000, &c->billing_intervals, err, errlen);
    if (strcmp(key, "wallets") == 0)
        return str_key(key, value, c->wallets, sizeof c->wallets, err, errlen);
    if (strcmp(key, "energy_mint") == 0)
        return mint_key(key, value, c->energy_mint, err, errlen);
    if (strcmp(key, "payment_mint") == 0)
        return mint_key(key, value, c->payment_mint, err, errlen);
    if (strcmp(key, "energy_decimals") == 0)
        return int_key(key, value, 0, 9, &c->energy_decimals, err, errlen);
    if (strcmp(key, "payment_decimals") == 0)
        return int_key(key, value, 0, 19, &c->payment_decimals, err, errlen);
    if (strcmp(key, "poll_ms") == 0)
        return int_key(key, value, 100, 3600000, &c->poll_ms, err, errlen);
    if (strcmp(key, "timeout_ms") == 0)
        return int_key(key, value, 100, 120000, &c->timeout_ms, err, errlen);
    ctl_errf(err, errlen, "unknown key '%s' in [solana]", key);
    return 0;
}

int ctl_settle_solana_check(const ctl_settle_solana_config *c, char *err, size_t errlen)
{
    if (!c->enabled)
        return 1;
    int per_trade = c->mode != CTL_SOL_MODE_ANCHOR; /* anchor needs no mints or wallets */
    const char *missing = !c->rpc_url[0]                     ? "rpc_url"
                          : !c->keypair[0]                   ? "keypair"
                          : per_trade && !c->energy_mint[0]  ? "energy_mint"
                          : per_trade && !c->payment_mint[0] ? "payment_mint"
                          : per_trade && !c->wallets[0]      ? "wallets"
                          : c->mode == CTL_SOL_MODE_NETTED && !c->pool_wallet[0] ? "pool_wallet"
                                                             : NULL;
    if (missing) {
        ctl_errf(err, errlen, "[solana] needs %s%s", missing,
                 !per_trade || !strcmp(missing, "rpc_url") || !strcmp(missing, "keypair") ? ""
                 : c->mode == CTL_SOL_MODE_NETTED ? " (mode netted)"
                                                  : " (mode per_trade)");
        return 0;
    }
    if (c->mint_authority[0] && c->mode != CTL_SOL_MODE_PER_TRADE) {
        ctl_errf(err, errlen, "[solana] mint_authority needs mode per_trade (credits move per "
                              "trade and are burned per home and interval)");
        return 0;
    }
    if (c->energy_decimals != 0) {
        /* ledger energy is whole Wh: more decimals would need a scale the ledger cannot prove */
        ctl_errf(err, errlen, "[solana] energy_decimals must be 0 (one token unit is one Wh)");
        return 0;
    }
    return 1;
}

/* ---- wallets file ---- */

int ctl_settle_wallets_parse(const char *text, size_t len, ctl_wallet_fn fn, void *ctx,
                             char *err, size_t errlen)
{
    size_t pos = 0;
    for (unsigned line = 1; pos < len; line++) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        char buf[256];
        size_t n = end - pos;
        if (n >= sizeof buf) {
            ctl_errf(err, errlen, "line %u: too long", line);
            return -1;
        }
        memcpy(buf, text + pos, n);
        buf[n] = 0;
        pos = end + 1;
        if (n && buf[n - 1] == '\r')
            buf[--n] = 0;
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = 0;
        char *save = NULL;
        char *id = strtok_r(buf, " \t", &save), *wallet = strtok_r(NULL, " \t", &save);
        if (!id)
            continue; /* blank or comment */
        sol_pubkey k;
        if (!wallet || strtok_r(NULL, " \t", &save)) {
            ctl_errf(err, errlen, "line %u: expected \"participant wallet\"", line);
            return -1;
        }
        if (strlen(id) > 64 || sol_pubkey_from_base58(wallet, &k) != SOL_OK) {
            ctl_errf(err, errlen, "line %u: %s", line,
                     strlen(id) > 64 ? "participant id too long" : "not a base58 wallet address");
            return -1;
        }
        int rc = fn(ctx, id, &k);
        if (rc != 0) {
            ctl_errf(err, errlen, "line %u: %s", line,
                     rc == 1 ? "participant listed twice" : "too many wallets");
            return -1;
        }
    }
    return 0;
}

/* ---- the backend ---- */

typedef struct {
    char id[65];
    sol_home home;
} wallet;

struct ctl_settle_solana {
    ctl_settle_solana_config cfg;
    sol_community c;
    uint8_t *sk;      /* 64 bytes, sodium_malloc */
    uint8_t *mint_sk; /* the mint authority's, or NULL (no credits on chain); sodium_malloc */
    wallet *w;   /* sorted by id */
    size_t n_w, cap_w;
    sol_home *homes; /* w[i].home, as the array sol_batch_build takes, then the pool's */
    size_t pool;     /* netted: the pool's index in homes (n_w) */
    sol_batch *batch;
    ctl_sol_rpc *rpc;
    ctl_sol_outbox *ob;
};

static int add_wallet(void *ctx, const char *participant, const sol_pubkey *k)
{
    ctl_settle_solana *x = ctx;
    for (size_t i = 0; i < x->n_w; i++)
        if (strcmp(x->w[i].id, participant) == 0)
            return 1;
    if (x->n_w == x->cap_w) {
        size_t cap = x->cap_w ? x->cap_w * 2 : 64;
        if (cap > CTL_SOL_MAX_WALLETS)
            return 2;
        wallet *w = realloc(x->w, cap * sizeof *w);
        if (!w)
            return 2;
        x->w = w;
        x->cap_w = cap;
    }
    wallet *w = &x->w[x->n_w];
    snprintf(w->id, sizeof w->id, "%s", participant);
    if (sol_home_init(&w->home, &x->c, k) != SOL_OK)
        return 2;
    x->n_w++;
    return 0;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const wallet *)a)->id, ((const wallet *)b)->id);
}

static long find_wallet(const ctl_settle_solana *x, const char *id)
{
    wallet key;
    snprintf(key.id, sizeof key.id, "%s", id);
    const wallet *w = bsearch(&key, x->w, x->n_w, sizeof *x->w, by_id);
    return w ? (long)(w - x->w) : -1;
}

/* solana-keygen's file: a JSON array of 64 numbers, seed then public key. */
static int load_keypair(uint8_t **dst, sol_pubkey *pub, const char *path, char *err,
                        size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || (sb.st_mode & 077)) {
        ctl_errf(err, errlen, "%s: %s", path,
                 stat(path, &sb) != 0 ? "cannot read the Solana key pair"
                                      : "the Solana key pair is readable by others: chmod 600 it");
        return -1;
    }
    char *text = NULL;
    size_t len = 0;
    if (ctl_read_file(path, 4096, &text, &len) != 0) {
        ctl_errf(err, errlen, "%s: cannot read the Solana key pair", path);
        return -1;
    }
    json_t *a = json_loadb(text, len, 0, NULL);
    sodium_memzero(text, len);
    free(text);
    int rc = -1;
    (*dst) = sodium_malloc(SOL_SECRET_KEY_BYTES);
    if ((*dst) && json_is_array(a) && json_array_size(a) == SOL_SECRET_KEY_BYTES) {
        rc = 0;
        for (size_t i = 0; i < SOL_SECRET_KEY_BYTES && rc == 0; i++) {
            json_t *v = json_array_get(a, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 255)
                rc = -1;
            else
                (*dst)[i] = (uint8_t)json_integer_value(v);
        }
    }
    if (a) {
        /* wipe the numbers jansson holds before freeing them */
        for (size_t i = 0; i < json_array_size(a); i++)
            json_integer_set(json_array_get(a, i), 0);
        json_decref(a);
    }
    uint8_t pk[32], sk2[64];
    if (rc == 0) {
        crypto_sign_seed_keypair(pk, sk2, (*dst));
        sodium_memzero(sk2, sizeof sk2);
        if (memcmp(pk, (*dst) + 32, 32) != 0)
            rc = -1;
    }
    if (rc != 0)
        ctl_errf(err, errlen,
                 "%s: not a Solana key pair (a JSON array of 64 numbers: seed, then "
                 "public key)",
                 path);
    else
        memcpy(pub->b, pk, 32);
    return rc;
}

static int load_wallets(ctl_settle_solana *x, const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    if (ctl_read_file(path, 16u << 20, &text, &len) != 0) {
        ctl_errf(err, errlen, "%s: cannot read the wallets file", path);
        return -1;
    }
    char why[256];
    int rc = ctl_settle_wallets_parse(text, len, add_wallet, x, why, sizeof why);
    free(text);
    if (rc != 0) {
        ctl_errf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    if (x->n_w)
        qsort(x->w, x->n_w, sizeof *x->w, by_id);
    x->homes = calloc(x->n_w + 1, sizeof *x->homes); /* + the pool (netted) */
    if (!x->homes) {
        ctl_errf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < x->n_w; i++)
        x->homes[i] = x->w[i].home;
    return 0;
}

int ctl_settle_solana_new(const ctl_settle_solana_config *c, ctl_db *db,
                          ctl_settle_solana **out, char *err, size_t errlen)
{
    *out = NULL;
    ctl_settle_solana *x = calloc(1, sizeof *x);
    if (!x) {
        ctl_errf(err, errlen, "out of memory");
        return -1;
    }
    x->cfg = *c;
    x->c.token_program = SOL_TOKEN_PROGRAM;
    x->c.energy_decimals = (uint8_t)c->energy_decimals;
    x->c.payment_decimals = (uint8_t)c->payment_decimals;
    int per_trade = c->mode != CTL_SOL_MODE_ANCHOR; /* mints and wallets: per_trade, netted */
    if (per_trade && (sol_pubkey_from_base58(c->energy_mint, &x->c.energy_mint) != SOL_OK ||
                      sol_pubkey_from_base58(c->payment_mint, &x->c.payment_mint) != SOL_OK)) {
        ctl_errf(err, errlen, "[solana]: bad mint address");
        goto fail;
    }
    sol_pubkey mint_pub;
    if (load_keypair(&x->sk, &x->c.authority, c->keypair, err, errlen) != 0 ||
        (c->mint_authority[0] &&
         load_keypair(&x->mint_sk, &mint_pub, c->mint_authority, err, errlen) != 0) ||
        (per_trade && load_wallets(x, c->wallets, err, errlen) != 0))
        goto fail;
    if (c->mode == CTL_SOL_MODE_NETTED) {
        sol_pubkey pool;
        x->pool = x->n_w;
        if (sol_pubkey_from_base58(c->pool_wallet, &pool) != SOL_OK ||
            sol_home_init(&x->homes[x->pool], &x->c, &pool) != SOL_OK) {
            ctl_errf(err, errlen, "[solana]: bad pool_wallet");
            goto fail;
        }
    }
    x->batch = sol_batch_new();
    x->rpc = ctl_sol_rpc_new(c->rpc_url, (long)c->timeout_ms);
    if (!x->batch || !x->rpc) {
        ctl_errf(err, errlen, "solana: out of memory or bad rpc_url");
        goto fail;
    }
    if (ctl_sol_outbox_open(db, &x->ob) != CTL_SOLOB_OK) {
        ctl_errf(err, errlen, "solana: cannot create the outbox tables: %s", ctl_db_errmsg(db));
        goto fail;
    }
    *out = x;
    return 0;
fail:
    ctl_settle_solana_free(x);
    return -1;
}

void ctl_settle_solana_free(ctl_settle_solana *x)
{
    if (!x)
        return;
    ctl_sol_outbox_close(x->ob);
    ctl_sol_rpc_free(x->rpc);
    sol_batch_free(x->batch);
    if (x->sk)
        sodium_free(x->sk);
    if (x->mint_sk)
        sodium_free(x->mint_sk);
    free(x->w);
    free(x->homes);
    free(x);
}

int64_t ctl_settle_solana_poll_ms(const ctl_settle_solana *x)
{
    return x->cfg.poll_ms;
}

int ctl_settle_solana_poll(ctl_settle_solana *x, int64_t now_ms, ctl_sol_poll_stats *stats)
{
    const uint8_t *sks[2] = {x->sk, x->mint_sk};
    return ctl_sol_outbox_poll_keys(x->ob, x->rpc, sks, x->mint_sk ? 2 : 1, now_ms, stats);
}

void ctl_settle_solana_replicate(ctl_settle_solana *x, ctl_sol_outbox_propose_fn fn, void *ctx)
{
    ctl_sol_outbox_replicate(x->ob, fn, ctx);
}

int ctl_settle_solana_apply(ctl_settle_solana *x, const uint8_t *op, size_t len)
{
    return ctl_sol_outbox_apply(x->ob, op, len);
}

int ctl_settle_solana_counts(ctl_settle_solana *x, size_t counts[4])
{
    return ctl_sol_outbox_totals(x->ob, counts);
}

static long wallet_of(ctl_settle_solana *x, uint64_t id, ctl_participant_name_fn name_of,
                      void *ctx)
{
    char name[65];
    if (name_of(ctx, id, name, sizeof name) != 0)
        return -1;
    return find_wallet(x, name);
}

int ctl_settle_solana_mode(const ctl_settle_solana *x)
{
    return x->cfg.mode;
}

int64_t ctl_settle_solana_billing_intervals(const ctl_settle_solana *x)
{
    return x->cfg.billing_intervals;
}

/* Builds b's transactions against a fresh blockhash and stores them under key: 0, 1 (no
 * blockhash: later) or -1, with msg. */
static int build_and_store(ctl_settle_solana *x, int64_t key, const uint8_t root[32],
                           const sol_transfer *t, size_t n, int64_t now_ms, char *msg,
                           size_t msglen)
{
    uint8_t hash[32];
    uint64_t lvbh = 0;
    if (ctl_sol_rpc_latest_blockhash(x->rpc, "finalized", hash, &lvbh) != CTL_SOLRPC_OK) {
        ctl_errf(msg, msglen, "no blockhash from the RPC node (%s)",
                 ctl_sol_rpc_last_error(x->rpc));
        return 1;
    }
    sol_interval iv;
    iv.interval_id = (uint64_t)key;
    memcpy(iv.ledger_root, root, 32);
    size_t bad = SIZE_MAX;
    int r = sol_batch_build(x->batch, &x->c, x->homes, x->n_w + (x->cfg.mode == CTL_SOL_MODE_NETTED),
                            &iv, t, n, hash, x->sk, &bad);
    if (r != SOL_OK) {
        ctl_errf(msg, msglen, "cannot build the transactions: %s (transfer %zu)", sol_strerror(r),
                 bad);
        return -1;
    }
    r = ctl_sol_outbox_add(x->ob, (uint64_t)key, x->batch, hash, lvbh, now_ms);
    if (r != CTL_SOLOB_OK && r != CTL_SOLOB_E_EXISTS && r != CTL_SOLOB_PROPOSED) {
        ctl_errf(msg, msglen, "outbox: %s", ctl_sol_outbox_strerror(r));
        return -1;
    }
    return 0;
}

int ctl_settle_solana_period(ctl_settle_solana *x, int64_t last_interval,
                             const uint8_t root[32], const ctl_sol_net *nets, size_t n,
                             ctl_participant_name_fn name_of, void *name_ctx, int64_t now_ms,
                             char *msg, size_t msglen)
{
    ctl_sol_outbox_row row;
    if (ctl_sol_outbox_get(x->ob, (uint64_t)last_interval, 1, &row) == CTL_SOLOB_OK) {
        ctl_errf(msg, msglen, "billing period up to interval %lld: in the outbox (already)",
                 (long long)last_interval);
        return 0;
    }
    sol_transfer *t = calloc(2 * n + 1, sizeof *t);
    if (!t) {
        ctl_errf(msg, msglen, "out of memory");
        return -1;
    }
    size_t k = 0, off_chain = 0;
    int rc = 0;
    uint32_t pool = (uint32_t)x->pool;
    for (size_t i = 0; i < n && rc == 0; i++) {
        long w = wallet_of(x, nets[i].participant, name_of, name_ctx);
        if (w < 0) {
            off_chain += nets[i].net_wh != 0 || nets[i].net_uc != 0;
            continue;
        }
        uint32_t h = (uint32_t)w;
        int64_t wh = nets[i].net_wh, uc = nets[i].net_uc;
        if (wh != 0)
            t[k++] = (sol_transfer){wh > 0 ? h : pool, wh > 0 ? pool : h, SOL_ASSET_ENERGY,
                                    (uint64_t)(wh > 0 ? wh : -wh), i};
        uint64_t units = 0;
        /* a coarser token rounds each home's net down: the pool pays or receives less */
        if (uc != 0 && sol_uc_to_units(uc > 0 ? uc : -uc, x->c.payment_decimals, &units, NULL) !=
                           SOL_OK) {
            ctl_errf(msg, msglen, "participant %llu: net payment does not fit the token",
                     (unsigned long long)nets[i].participant);
            rc = -1;
        }
        if (units > 0)
            t[k++] = (sol_transfer){uc > 0 ? pool : h, uc > 0 ? h : pool, SOL_ASSET_PAYMENT,
                                    units, i};
    }
    if (rc == 0 && k == 0)
        ctl_errf(msg, msglen, "billing period up to interval %lld: nothing to net (%zu homes, "
                              "%zu without a wallet)",
                 (long long)last_interval, n, off_chain);
    else if (rc == 0 &&
             (rc = build_and_store(x, last_interval, root, t, k, now_ms, msg, msglen)) == 0)
        ctl_errf(msg, msglen,
                 "billing period up to interval %lld: %zu transactions for %zu homes' nets in "
                 "the outbox (%zu without a wallet stay off chain)",
                 (long long)last_interval, sol_batch_count(x->batch), n - off_chain, off_chain);
    free(t);
    return rc;
}

/* Root-only anchoring: the block's checkpoint in a memo, nothing per home. */
static int anchor_block(ctl_settle_solana *x, const stl_block *b, const char *checkpoint,
                        int64_t now_ms, char *msg, size_t msglen)
{
    uint8_t hash[32];
    uint64_t lvbh = 0;
    if (ctl_sol_rpc_latest_blockhash(x->rpc, "finalized", hash, &lvbh) != CTL_SOLRPC_OK) {
        ctl_errf(msg, msglen, "no blockhash from the RPC node (%s)",
                 ctl_sol_rpc_last_error(x->rpc));
        return 1;
    }
    int r = sol_batch_anchor(x->batch, &x->c.authority, (uint64_t)b->interval_id, checkpoint,
                             hash, x->sk);
    if (r != SOL_OK) {
        ctl_errf(msg, msglen, "cannot build the anchor: %s", sol_strerror(r));
        return -1;
    }
    r = ctl_sol_outbox_add(x->ob, (uint64_t)b->interval_id, x->batch, hash, lvbh, now_ms);
    if (r != CTL_SOLOB_OK && r != CTL_SOLOB_E_EXISTS && r != CTL_SOLOB_PROPOSED) {
        ctl_errf(msg, msglen, "outbox: %s", ctl_sol_outbox_strerror(r));
        return -1;
    }
    ctl_errf(msg, msglen, "anchored: the checkpoint of log size %llu %s",
             (unsigned long long)b->log_size,
             r == CTL_SOLOB_E_EXISTS     ? "in the outbox (already)"
             : r == CTL_SOLOB_PROPOSED ? "proposed to the cluster's log"
                                       : "in the outbox");
    return 0;
}

/* The interval's credit transactions into *txs (caller frees), *n_tx of them; 0 or -1 with
 * msg. */
static int credit_txs(ctl_settle_solana *x, const stl_block *b, const stl_settled_trade *trades,
                      size_t nt, const stl_position *pos, size_t np, int min_tier,
                      const stl_credit *tu, size_t ntu, ctl_participant_name_fn name_of,
                      void *name_ctx,
                      const uint8_t blockhash[32], sol_credit_tx **txs, size_t *n_tx,
                      int64_t *minted_wh, int64_t *off_chain_wh, char *msg, size_t msglen)
{
    *txs = NULL;
    *n_tx = 0;
    *minted_wh = 0;
    *off_chain_wh = 0;
    if (min_tier < 0 || np + ntu == 0)
        return 0; /* the block records no credits */
    int rc = -1;
    stl_credit *c = calloc(np ? np : 1, sizeof *c);
    stl_credit_move *mv = calloc(nt ? nt : 1, sizeof *mv);
    long *home = calloc(np ? np : 1, sizeof *home);
    size_t cap_ops = 4 * nt + 2 * np + ntu;
    sol_credit_op *ops = calloc(cap_ops, sizeof *ops);
    sol_credit_tx *out = NULL;
    stl_credit_totals tot;
    if (!c || !mv || !home || !ops) {
        ctl_errf(msg, msglen, "out of memory");
        goto out;
    }
    if (stl_credits_compute(pos, np, trades, nt, (uint8_t)min_tier, c, mv, &tot) != STL_OK) {
        ctl_errf(msg, msglen, "the block's credits cannot be derived (run mgx ledger verify)");
        goto out;
    }
    for (size_t i = 0; i < np; i++)
        home[i] = wallet_of(x, pos[i].participant, name_of, name_ctx);
    long n_ops = sol_credit_ops(c, np, trades, mv, nt, home, ops, cap_ops, off_chain_wh);
    if (n_ops < 0) {
        ctl_errf(msg, msglen, "credit operations: %s", sol_strerror((int)n_ops));
        goto out;
    }
    *minted_wh = tot.minted_wh;
    /* the true-ups the block carries (settle/credit_trueup.h): a MintTo each, one group each
     * after the interval's own, in the same outbox entry, so minted once like the rest */
    uint64_t group = n_ops > 0 ? ops[n_ops - 1].group + 1 : 0;
    for (size_t i = 0; i < ntu; i++) {
        if (tu[i].minted_wh <= 0)
            continue;
        long h = wallet_of(x, tu[i].participant, name_of, name_ctx);
        *minted_wh += tu[i].minted_wh;
        if (h < 0) {
            *off_chain_wh += tu[i].minted_wh;
            continue;
        }
        ops[n_ops++] = (sol_credit_op){SOL_CREDIT_MINT, (uint32_t)h, 0,
                                       (uint64_t)tu[i].minted_wh, group++};
    }
    if (n_ops == 0) {
        rc = 0;
        goto out;
    }
    out = malloc((size_t)n_ops * sizeof *out);
    if (!out) {
        ctl_errf(msg, msglen, "out of memory");
        goto out;
    }
    sol_interval iv;
    iv.interval_id = (uint64_t)b->interval_id;
    memcpy(iv.ledger_root, b->log_root, 32);
    int r = sol_credits_build(&x->c, x->sk, x->mint_sk, x->homes, x->n_w, &iv, ops,
                              (size_t)n_ops, blockhash, out, (size_t)n_ops, n_tx);
    if (r != SOL_OK) {
        ctl_errf(msg, msglen, "cannot build the credit transactions: %s", sol_strerror(r));
        goto out;
    }
    *txs = out;
    out = NULL;
    rc = 0;
out:
    free(out);
    free(ops);
    free(home);
    free(mv);
    free(c);
    return rc;
}

int ctl_settle_solana_block(ctl_settle_solana *x, const stl_block *b, const char *checkpoint,
                            const stl_settled_trade *trades, size_t n_trades,
                            const stl_position *positions, size_t n_positions,
                            int credit_min_tier, const stl_credit *trueups, size_t n_trueups,
                            ctl_participant_name_fn name_of, void *name_ctx, int64_t now_ms,
                            char *msg, size_t msglen)
{
    if (x->cfg.mode == CTL_SOL_MODE_ANCHOR)
        return anchor_block(x, b, checkpoint, now_ms, msg, msglen);
    int credits = x->mint_sk != NULL;
    sol_transfer *t = calloc(2 * n_trades + 1, sizeof *t);
    if (!t) {
        ctl_errf(msg, msglen, "out of memory");
        return -1;
    }
    size_t n = 0, off_chain = 0, zero = 0, zero_pay = 0, n_pay = 0;
    int64_t rounded_uc = 0; /* what a coarser payment token cannot carry, summed */
    int rc = 0;
    for (size_t i = 0; i < n_trades && rc == 0; i++) {
        const stl_settled_trade *s = &trades[i];
        if (s->delivered_wh == 0) {
            zero++; /* nothing delivered (a held party): nothing moves */
            continue;
        }
        long sw = wallet_of(x, s->seller, name_of, name_ctx),
             bw = wallet_of(x, s->buyer, name_of, name_ctx);
        if (sw < 0 || bw < 0) {
            off_chain++;
            continue;
        }
        uint64_t units;
        int64_t rest;
        if (sol_uc_to_units(s->received_uc, x->c.payment_decimals, &units, &rest) != SOL_OK) {
            ctl_errf(msg, msglen, "trade %zu: payment does not fit the token", i);
            rc = -1;
            break;
        }
        rounded_uc += rest;
        zero_pay += units == 0;
        n_pay++;
        /* with credits on chain the energy token is the credit token: it moves in the credit
         * transactions, as the ledger's credits move (from minted balances only) */
        if (!credits)
            t[n++] = (sol_transfer){(uint32_t)sw, (uint32_t)bw, SOL_ASSET_ENERGY,
                                    (uint64_t)s->delivered_wh, i};
        if (units > 0 || !credits)
            t[n++] = (sol_transfer){(uint32_t)bw, (uint32_t)sw, SOL_ASSET_PAYMENT, units, i};
    }
    uint8_t hash[32];
    uint64_t lvbh = 0;
    int have_hash = 0;
    sol_credit_tx *ctx = NULL;
    ctl_sol_outbox_tx *all = NULL;
    size_t n_ctx = 0, n_btx = 0;
    int64_t minted_wh = 0, credits_off_wh = 0;
    if (rc == 0 && (n > 0 || (credits && credit_min_tier >= 0))) {
        int r = ctl_sol_rpc_latest_blockhash(x->rpc, "finalized", hash, &lvbh);
        if (r != CTL_SOLRPC_OK) {
            ctl_errf(msg, msglen, "no blockhash from the RPC node (%s)",
                     ctl_sol_rpc_last_error(x->rpc));
            rc = 1;
        } else {
            have_hash = 1;
        }
    }
    if (rc == 0 && have_hash && credits)
        rc = credit_txs(x, b, trades, n_trades, positions, n_positions, credit_min_tier,
                        trueups, n_trueups, name_of, name_ctx, hash, &ctx, &n_ctx, &minted_wh,
                        &credits_off_wh, msg, msglen);
    if (rc == 0 && n == 0 && n_ctx == 0) {
        ctl_errf(msg, msglen,
                 "nothing to put on chain (%zu trades, %zu without a wallet, %zu "
                 "undelivered)",
                 n_trades, off_chain, zero);
        goto out;
    }
    if (rc == 0 && n > 0) {
        sol_interval iv;
        iv.interval_id = (uint64_t)b->interval_id;
        memcpy(iv.ledger_root, b->log_root, 32);
        size_t bad = SIZE_MAX;
        int r = sol_batch_build(x->batch, &x->c, x->homes, x->n_w, &iv, t, n, hash, x->sk, &bad);
        if (r != SOL_OK) {
            ctl_errf(msg, msglen, "cannot build the transactions: %s (transfer %zu)",
                     sol_strerror(r), bad);
            rc = -1;
        } else {
            n_btx = sol_batch_count(x->batch);
        }
    }
    if (rc == 0) {
        /* the trades' transactions, then the credits': one outbox entry, stored once */
        all = calloc(n_btx + n_ctx + 1, sizeof *all);
        if (!all) {
            ctl_errf(msg, msglen, "out of memory");
            rc = -1;
            goto out;
        }
        for (size_t i = 0; i < n_btx; i++) {
            const sol_batch_tx *bt = sol_batch_at(x->batch, i);
            all[i] = (ctl_sol_outbox_tx){bt->bytes, bt->len, bt->signature};
        }
        for (size_t i = 0; i < n_ctx; i++)
            all[n_btx + i] = (ctl_sol_outbox_tx){ctx[i].bytes, ctx[i].len, ctx[i].signature};
        int r = ctl_sol_outbox_add_txs(x->ob, (uint64_t)b->interval_id, all, n_btx + n_ctx, hash,
                                       lvbh, now_ms);
        char rounding[128] = "", cr[160] = "";
        if (x->c.payment_decimals < 6)
            snprintf(rounding, sizeof rounding, "; payments rounded down to the token's unit: "
                                                "%lld uc kept by buyers, %zu payments of 0",
                     (long long)rounded_uc, zero_pay);
        if (credits)
            snprintf(cr, sizeof cr, "; credits: %zu transactions, %lld Wh minted (%lld Wh "
                                    "of homes without a wallet stay in the ledger)",
                     n_ctx, (long long)minted_wh, (long long)credits_off_wh);
        if (r == CTL_SOLOB_OK || r == CTL_SOLOB_E_EXISTS || r == CTL_SOLOB_PROPOSED)
            ctl_errf(msg, msglen,
                     "%zu transactions for %zu trades %s (%zu without a "
                     "wallet stay off chain%s)%s",
                     n_btx + n_ctx, n_pay,
                     r == CTL_SOLOB_E_EXISTS     ? "in the outbox (already)"
                     : r == CTL_SOLOB_PROPOSED ? "proposed to the cluster's log"
                                               : "in the outbox",
                     off_chain, rounding, cr);
        else {
            ctl_errf(msg, msglen, "outbox: %s", ctl_sol_outbox_strerror(r));
            rc = -1;
        }
    }
out:
    free(all);
    free(ctx);
    free(t);
    return rc;
}
