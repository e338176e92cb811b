/*
 * Root-only anchoring on Solana (issue 19), offline: a demo-sized ledger (one day, 96 quarter
 * hours, 8 homes trading) settled into a real SQLite file by ctl_ledger_settle; each block's
 * signed checkpoint anchored through the real outbox and JSON-RPC client (sol_batch_anchor, as
 * `mgx controller` does with [solana] mode = anchor) into a LiteSVM-backed node
 * (rpc_server.mjs). Then, as a chain observer who knows only the community's public key:
 *
 *   - can: read one memo per interval, check its checkpoint signature with the community key
 *     and so hold the signed log size and root of every block (anyone can later check a home's
 *     inclusion proof against it), and the number of ledger transactions per interval;
 *   - cannot: see any home. Every anchor transaction names exactly two accounts (the
 *     settlement key, which pays, and the memo program), carries exactly the checkpoint, and
 *     no token balance moved. The same ledger settled per trade would show, for the figure in
 *     the log line, how many buyer-intervals' exact metered import a transfer reveals.
 *
 * Netted settlement per billing period ([solana] mode = netted), on a second node: the same
 * kind of day settled into its own ledger, billing periods of 48 intervals, each period's nets
 * (ctl_ledger_period_nets) handed to the backend (ctl_settle_solana_period, as `mgx controller`
 * does) and submitted through the outbox. On chain per period: at most one energy and one
 * payment transfer per home, to or from the community's pool account; every home's balance
 * moves by exactly its ledger nets, the pool keeps the fees and rounding, and a period is
 * stored once however often it is handed over.
 *
 * Skips (77) when node or tests/solana/node_modules is missing.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h" /* tst_tmpdir, tst_rmtree */
#include "db/db.h"
#include "mgx/checkpoint.h"
#include "mgx/solana_base58.h"
#include "mgx/solana_batch.h"
#include "rpc_node.h"
#include "settle/ledger_proof.h"
#include "settle/ledger_statement.h"
#include "solana/settle_solana.h"
#include "settle/settle_interval.h"
#include "solana/solana_outbox.h"
#include "solana/solana_rpc.h"

#define HOMES 8
#define INTERVALS 96
#define FIRST 1943128
#define MEMO_PROGRAM "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"

static struct {
    pid_t server;
    char url[64];
    char *dir;
    ctl_db *db;
    ctl_sol_outbox *ob;
    ctl_sol_rpc *rpc;
    uint8_t *sol_sk; /* the settlement (Solana) key pair, sodium_malloc */
    sol_pubkey authority;
    ctl_ledger_key *key; /* the community's ledger key */
    int64_t now;
} E;

/* POSTs a JSON-RPC call (params stolen); returns its "result" (caller decrefs). */
static json_t *rpc_result(const char *method, json_t *params)
{
    json_t *req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 1, "method", method,
                            "params", params);
    char *body = json_dumps(req, JSON_COMPACT), *resp = NULL;
    json_decref(req);
    size_t len = 0;
    FILE *mem = open_memstream(&resp, &len);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, E.url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    fclose(mem);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(body);
    json_t *root = json_loadb(resp, len, 0, NULL);
    free(resp);
    assert_non_null(root);
    json_t *r = json_incref(json_object_get(root, "result"));
    json_decref(root);
    assert_non_null(r);
    return r;
}

/* Base58 of any length (instruction data). */
static size_t b58_decode_any(const char *s, uint8_t *out, size_t cap)
{
    static const char A[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    uint8_t num[1024] = {0};
    size_t n = 0, zeros = 0;
    for (; s[zeros] == '1'; zeros++)
        ;
    for (const char *p = s; *p; p++) {
        const char *d = strchr(A, *p);
        assert_non_null(d);
        unsigned carry = (unsigned)(d - A);
        for (size_t i = 0; i < n || carry; i++) {
            assert_true(i < sizeof num);
            if (i == n)
                n++;
            unsigned v = num[sizeof num - 1 - i] * 58u + carry;
            num[sizeof num - 1 - i] = (uint8_t)v;
            carry = v >> 8;
        }
    }
    assert_true(zeros + n <= cap);
    memset(out, 0, zeros);
    memcpy(out + zeros, num + sizeof num - n, n);
    return zeros + n;
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0 ||
        access(MGX_SOURCE_DIR "/tests/solana/node_modules/litesvm/package.json", R_OK) != 0)
        return -1;
    E.dir = tst_tmpdir("solana-anchor");
    char scenario[512], path[512], err[256];
    snprintf(scenario, sizeof scenario, "%s/scenario.json", E.dir);
    E.server = sol_node_start(scenario, NULL, NULL, E.url, sizeof E.url);
    if (E.server <= 0)
        return -1;
    /* the node's settlement authority (fee payer) */
    json_t *r = json_load_file(scenario, 0, NULL);
    assert_non_null(r);
    uint8_t seed[32];
    size_t n;
    const char *hex = json_string_value(json_object_get(r, "authority_seed"));
    assert_int_equal(sodium_hex2bin(seed, 32, hex, strlen(hex), NULL, &n, NULL), 0);
    json_decref(r);
    E.sol_sk = sodium_malloc(64);
    crypto_sign_seed_keypair(E.authority.b, E.sol_sk, seed);
    /* the community's ledger key, through its key file as the controller loads it */
    uint8_t pk[32], sk[64];
    char text[256];
    crypto_sign_keypair(pk, sk);
    assert_int_equal(stl_skey_format("demo.example/mgx", sk, text, sizeof text), STL_OK);
    sodium_memzero(sk, sizeof sk);
    snprintf(path, sizeof path, "%s/community.skey", E.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    E.key = ctl_ledger_key_load(path, err, sizeof err);
    assert_non_null(E.key);
    snprintf(path, sizeof path, "%s/controller.db", E.dir);
    assert_int_equal(ctl_db_open(path, &E.db, err, sizeof err), CTL_DB_OK);
    assert_int_equal(ctl_sol_outbox_open(E.db, &E.ob), CTL_SOLOB_OK);
    E.rpc = ctl_sol_rpc_new(E.url, 5000);
    assert_non_null(E.rpc);
    E.now = 1748822400000;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ctl_sol_rpc_free(E.rpc);
    ctl_sol_outbox_close(E.ob);
    ctl_db_close(E.db);
    ctl_ledger_key_free(E.key);
    if (E.server > 0) {
        kill(E.server, SIGTERM);
        waitpid(E.server, NULL, 0);
    }
    if (E.sol_sk)
        sodium_free(E.sol_sk);
    if (E.dir)
        tst_rmtree(E.dir);
    free(E.dir);
    return 0;
}

/* A demo-like interval k: homes 0..3 have PV in the day (k 28..75), 4..7 none; sellers sell
 * to the buyers round robin, readings close to the contracts (some shortfalls). */
static void settle_interval_at(ctl_db *db, int64_t first, int k, uint64_t *buyer_intervals,
                               uint64_t *exact_imports)
{
    mkt_trade t[HOMES];
    stl_metered m[HOMES];
    size_t nt = 0;
    int day = k >= 28 && k < 76;
    uint32_t x = (uint32_t)k * 2654435761u;
    for (int h = 0; h < HOMES; h++) {
        x = x * 1664525u + 1013904223u;
        int64_t load = 80 + (int64_t)(x % 400u), pv = day && h < 4 ? 300 + (int64_t)(x % 900u) : 0;
        int64_t net = load - pv;
        m[h] = (stl_metered){(uint64_t)h + 1, net > 0 ? net : 0, net < 0 ? -net : 0, 0, 0, 0};
    }
    if (day)
        for (int s = 0; s < 4; s++) {
            if (m[s].export_wh <= 0)
                continue;
            int b = 4 + (s + k) % 4;
            int64_t e = m[s].export_wh + 20 - (int64_t)(x % 60u); /* sometimes short */
            if (e < 1)
                continue;
            t[nt] = (mkt_trade){(uint64_t)s + 1, (uint64_t)b + 1, e, 120000, 0, 0};
            assert_int_equal(mkt_amount_uc(e, 120000, &t[nt].amount_uc), MKT_OK);
            assert_int_equal(mkt_amount_uc(e, 10000, &t[nt].fee_uc), MKT_OK);
            nt++;
        }
    ctl_ledger_input in = {first + k, 900, {80000, 300000, 10000}, t, nt, m, HOMES,
                           STL_TIMING_EX_ANTE, 0, 0, 0};
    ctl_ledger_result res;
    char err[256] = "";
    if (ctl_ledger_settle(db, &in, E.key, &res, err, sizeof err) != CTL_LEDGER_OK)
        fail_msg("settle %d: %s", k, err);
    /* per trade, a buyer's energy transfers on chain sum to its exact metered import when it
     * took nothing from the grid: count those buyer-intervals (what anchoring keeps off chain) */
    stl_reconciler *rc = stl_reconciler_new(nt, HOMES);
    assert_non_null(rc);
    assert_int_equal(stl_reconcile(rc, &in.tariffs, t, nt, m, HOMES, NULL), STL_OK);
    size_t np;
    const stl_position *p = stl_reconciled_positions(rc, &np);
    for (size_t i = 0; i < np; i++)
        if (p[i].local_bought_wh > 0) {
            (*buyer_intervals)++;
            *exact_imports += p[i].grid_bought_wh == 0;
        }
    stl_reconciler_free(rc);
}

static void settle_interval(int k, uint64_t *buyer_intervals, uint64_t *exact_imports)
{
    settle_interval_at(E.db, FIRST, k, buyer_intervals, exact_imports);
}

static void anchor_block(int k)
{
    uint64_t size;
    char *note = ctl_ledger_checkpoint(E.db, k, &size);
    assert_non_null(note);
    uint8_t hash[32];
    uint64_t lvbh;
    assert_int_equal(ctl_sol_rpc_latest_blockhash(E.rpc, "finalized", hash, &lvbh),
                     CTL_SOLRPC_OK);
    sol_batch *b = sol_batch_new();
    assert_int_equal(sol_batch_anchor(b, &E.authority, FIRST + (uint64_t)k, note, hash, E.sol_sk),
                     SOL_OK);
    assert_int_equal(sol_batch_count(b), 1);
    assert_int_equal(sol_batch_at(b, 0)->n_transfers, 0);
    assert_int_equal(ctl_sol_outbox_add(E.ob, FIRST + (uint64_t)k, b, hash, lvbh, E.now),
                     CTL_SOLOB_OK);
    sol_batch_free(b);
    free(note);
}

/* What the observer reads for interval k: checks it and returns the signed log size. */
static uint64_t observe(int k, const uint8_t vk[32])
{
    ctl_sol_outbox_row row;
    assert_int_equal(ctl_sol_outbox_get(E.ob, FIRST + (uint64_t)k, 1, &row), CTL_SOLOB_OK);
    assert_int_equal(row.state, CTL_SOLOB_CONFIRMED);
    json_t *r = rpc_result("getTransaction", json_pack("[s, {s:s}]", row.signature, "encoding",
                                                       "json"));
    assert_false(json_is_null(r));
    assert_true(json_is_null(json_object_get(json_object_get(r, "meta"), "err")));
    json_t *msg = json_object_get(json_object_get(r, "transaction"), "message");
    json_t *keys = json_object_get(msg, "accountKeys"), *ixs = json_object_get(msg, "instructions");
    /* the settlement key and the memo program: no home, no token account, no mint */
    char auth[SOL_PUBKEY_B58_MAX + 1];
    assert_true(sol_pubkey_to_base58(&E.authority, auth) > 0);
    assert_int_equal(json_array_size(keys), 2);
    assert_string_equal(json_string_value(json_array_get(keys, 0)), auth);
    assert_string_equal(json_string_value(json_array_get(keys, 1)), MEMO_PROGRAM);
    assert_int_equal(json_array_size(ixs), 1);
    json_t *ix = json_array_get(ixs, 0);
    assert_int_equal(json_integer_value(json_object_get(ix, "programIdIndex")), 1);
    uint8_t data[1024];
    size_t n = b58_decode_any(json_string_value(json_object_get(ix, "data")), data,
                              sizeof data - 1);
    data[n] = 0;
    /* "mgx1 anchor interval=<id>\n" and the checkpoint, which the community key signed */
    char head[64];
    int hl = snprintf(head, sizeof head, "mgx1 anchor interval=%d\n", FIRST + k);
    assert_memory_equal(data, head, (size_t)hl);
    const char *note = (const char *)data + hl;
    stl_checkpoint cp;
    assert_int_equal(stl_checkpoint_open(note, strlen(note), "demo.example/mgx", vk,
                                         "demo.example/mgx", &cp),
                     STL_OK);
    /* exactly the block's checkpoint: nothing else rides along */
    uint64_t size;
    char *want = ctl_ledger_checkpoint(E.db, k, &size);
    assert_string_equal(note, want);
    assert_int_equal(cp.size, size);
    free(want);
    json_decref(r);
    return cp.size;
}

static void anchors_publish_no_home(void **state)
{
    (void)state;
    json_t *before = rpc_result("mgxTest_balances", json_pack("[i]", 0));
    uint64_t buyer_intervals = 0, exact = 0;
    for (int k = 0; k < INTERVALS; k++) {
        settle_interval(k, &buyer_intervals, &exact);
        anchor_block(k);
    }
    /* every anchor confirmed: poll until the outbox is done (generous: a loaded machine) */
    int done = 0;
    for (int pass = 0; pass < 400 && !done; pass++) {
        E.now += 500;
        ctl_sol_poll_stats s;
        assert_int_equal(ctl_sol_outbox_poll(E.ob, E.rpc, E.sol_sk, E.now, &s), CTL_SOLOB_OK);
        done = 1;
        for (int k = 0; k < INTERVALS && done; k++) {
            size_t counts[4];
            assert_int_equal(ctl_sol_outbox_counts(E.ob, FIRST + (uint64_t)k, counts),
                             CTL_SOLOB_OK);
            assert_int_equal(counts[CTL_SOLOB_FAILED], 0);
            done = counts[CTL_SOLOB_CONFIRMED] == 1;
        }
        if (!done)
            tst_sleep_ms(20);
    }
    assert_true(done);
    /* the observer: signed sizes and roots, and per interval how many ledger transactions */
    uint8_t vk[32];
    memcpy(vk, E.key->sk + 32, 32);
    uint64_t prev = 0, min_tx = UINT64_MAX, max_tx = 0;
    for (int k = 0; k < INTERVALS; k++) {
        uint64_t size = observe(k, vk);
        assert_true(size > prev);
        min_tx = size - prev < min_tx ? size - prev : min_tx;
        max_tx = size - prev > max_tx ? size - prev : max_tx;
        prev = size;
    }
    /* and no token moved */
    json_t *after = rpc_result("mgxTest_balances", json_pack("[i]", 0));
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    assert_true(exact > 0); /* per trade, this many imports would have been public */
    fprintf(stderr,
            "anchor test: %d intervals anchored (%d transactions on chain, each 2 accounts and "
            "one memo); the observer verifies %d checkpoints and learns %llu..%llu ledger "
            "transactions per interval, no home; per trade, %llu of %llu buyer-intervals would "
            "have shown the buyer's exact import\n",
            INTERVALS, INTERVALS, INTERVALS, (unsigned long long)min_tx,
            (unsigned long long)max_tx, (unsigned long long)exact,
            (unsigned long long)buyer_intervals);
}

/* ---- netted ---- */

#define NFIRST 1943136 /* 48 x 40482: periods of 48 intervals start here */
#define PERIOD 48
#define POOL HOMES     /* the node's home 8 is the community pool */

static int home_name(void *ctx, uint64_t id, char *name, size_t cap)
{
    (void)ctx;
    if (id < 1 || id > HOMES)
        return -1;
    snprintf(name, cap, "home-%llu", (unsigned long long)id - 1);
    return 0;
}

/* [energy, payment] of node home i, as numbers. */
static void balances(json_t *b, size_t i, int64_t *energy, int64_t *payment)
{
    json_t *row = json_array_get(b, i);
    *energy = atoll(json_string_value(json_array_get(row, 0)));
    *payment = atoll(json_string_value(json_array_get(row, 1)));
}

static void netted_periods(void **state)
{
    (void)state;
    /* a node whose homes all hold both tokens, the pool (home 8) a float for a period */
    kill(E.server, SIGTERM);
    waitpid(E.server, NULL, 0);
    ctl_sol_rpc_free(E.rpc);
    char scenario[512], spec[512], path[512], keypair[512], wallets[512], err[256];
    snprintf(scenario, sizeof scenario, "%s/scenario2.json", E.dir);
    snprintf(spec, sizeof spec, "%s/community2.json", E.dir);
    FILE *f = fopen(spec, "w");
    assert_non_null(f);
    fprintf(f, "{\"payment_decimals\": 6, \"homes\": [");
    for (int h = 0; h <= POOL; h++)
        fprintf(f, "%s{\"energy\": \"1000000\", \"payment\": \"100000000000\", "
                   "\"energy_allowance\": \"1000000\", \"payment_allowance\": \"100000000000\"}",
                h ? ", " : "");
    fprintf(f, "]}\n");
    fclose(f);
    E.server = sol_node_start(scenario, spec, NULL, E.url, sizeof E.url);
    assert_true(E.server > 0);
    E.rpc = ctl_sol_rpc_new(E.url, 5000);
    /* the settlement key pair file (0600) and the wallets file, as a coordinator writes them */
    json_t *r = json_load_file(scenario, 0, NULL);
    assert_non_null(r);
    const char *hex = json_string_value(json_object_get(r, "authority_seed"));
    uint8_t seed[32], pk[32], sk[64];
    assert_int_equal(sodium_hex2bin(seed, 32, hex, strlen(hex), NULL, NULL, NULL), 0);
    crypto_sign_seed_keypair(pk, sk, seed);
    snprintf(keypair, sizeof keypair, "%s/settle.json", E.dir);
    int fd = open(keypair, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    for (int i = 0; i < 64; i++)
        fprintf(f, "%s%u", i ? "," : "[", sk[i]);
    fprintf(f, "]\n");
    fclose(f);
    sodium_memzero(sk, sizeof sk);
    snprintf(wallets, sizeof wallets, "%s/wallets.txt", E.dir);
    f = fopen(wallets, "w");
    assert_non_null(f);
    json_t *w = json_object_get(r, "wallets");
    for (int h = 0; h < HOMES; h++)
        fprintf(f, "home-%d %s\n", h,
                json_string_value(json_object_get(json_array_get(w, (size_t)h), "address")));
    fclose(f);
    ctl_settle_solana_config cfg;
    ctl_settle_solana_defaults(&cfg);
    cfg.enabled = 1;
    const char *kv[][2] = {
        {"mode", "netted"},
        {"rpc_url", E.url},
        {"keypair", keypair},
        {"energy_mint", json_string_value(json_object_get(r, "energy_mint"))},
        {"payment_mint", json_string_value(json_object_get(r, "payment_mint"))},
        {"wallets", wallets},
        {"pool_wallet",
         json_string_value(json_object_get(json_array_get(w, POOL), "address"))},
        {"billing_intervals", "48"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        assert_int_equal(ctl_settle_solana_key(&cfg, kv[i][0], kv[i][1], err, sizeof err), 1);
    assert_int_equal(ctl_settle_solana_check(&cfg, err, sizeof err), 1);
    json_decref(r);

    ctl_db *db = NULL;
    snprintf(path, sizeof path, "%s/netted.db", E.dir);
    assert_int_equal(ctl_db_open(path, &db, err, sizeof err), CTL_DB_OK);
    ctl_settle_solana *sol = NULL;
    if (ctl_settle_solana_new(&cfg, db, &sol, err, sizeof err) != 0)
        fail_msg("%s", err);
    json_t *before = rpc_result("mgxTest_balances", json_pack("[i]", 0));
    uint64_t bi = 0, ex = 0;
    for (int k = 0; k < 2 * PERIOD; k++)
        settle_interval_at(db, NFIRST, k, &bi, &ex);
    /* each period's nets, handed over twice (a restart): stored once */
    int64_t want_energy[HOMES + 1] = {0}, want_payment[HOMES + 1] = {0};
    size_t homes_netted = 0;
    for (int p = 0; p < 2; p++) {
        int64_t first = NFIRST + p * PERIOD, last = first + PERIOD - 1;
        ctl_sol_net *nets = NULL;
        size_t n = 0;
        uint8_t root[32];
        assert_int_equal(ctl_ledger_period_nets(db, first, last, &nets, &n, root), 0);
        assert_int_equal(n, HOMES);
        int64_t sum_wh = 0, sum_uc = 0;
        for (size_t i = 0; i < n; i++) {
            size_t h = (size_t)nets[i].participant - 1;
            want_energy[h] -= nets[i].net_wh;
            want_payment[h] += nets[i].net_uc;
            sum_wh += nets[i].net_wh;
            sum_uc += nets[i].net_uc;
            homes_netted += nets[i].net_wh != 0 || nets[i].net_uc != 0;
        }
        assert_int_equal(sum_wh, 0); /* delivered energy: the same on both sides */
        want_energy[POOL] -= sum_wh;
        want_payment[POOL] -= sum_uc; /* the fees and rounding stay with the pool */
        for (int again = 0; again < 2; again++) {
            char msg[512] = "";
            int rc = ctl_settle_solana_period(sol, last, root, nets, n, home_name, NULL, E.now,
                                              msg, sizeof msg);
            if (rc != 0)
                fail_msg("period %d: %s", p, msg);
            if (again)
                assert_non_null(strstr(msg, "(already)"));
        }
        free(nets);
    }
    int done = 0;
    for (int pass = 0; pass < 400 && !done; pass++) {
        E.now += 500;
        ctl_sol_poll_stats st;
        assert_int_equal(ctl_settle_solana_poll(sol, E.now, &st), 0);
        done = st.pending == 0 && st.failed == 0 && st.sent == 0;
        assert_int_equal(st.failed, 0);
        if (!done)
            tst_sleep_ms(20);
    }
    assert_true(done);
    json_t *after = rpc_result("mgxTest_balances", json_pack("[i]", 0));
    for (size_t h = 0; h <= POOL; h++) {
        int64_t e0, p0, e1, p1;
        balances(before, h, &e0, &p0);
        balances(after, h, &e1, &p1);
        if (e1 - e0 != want_energy[h] || p1 - p0 != want_payment[h])
            fail_msg("home %zu: energy %+lld payment %+lld on chain, the ledger's nets say %+lld "
                     "and %+lld",
                     h, (long long)(e1 - e0), (long long)(p1 - p0), (long long)want_energy[h],
                     (long long)want_payment[h]);
    }
    json_decref(before);
    json_decref(after);
    fprintf(stderr,
            "netted test: 2 billing periods of %d intervals, %zu home-period nets on chain (at "
            "most 2 transfers each, to or from the pool), pool kept %lld uc of fees and "
            "rounding; every balance equals the ledger's nets\n",
            PERIOD, homes_netted, (long long)want_payment[POOL]);
    ctl_settle_solana_free(sol);
    ctl_db_close(db);
}

int main(void)
{
    if (sol_node_missing())
        return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(anchors_publish_no_home),
        cmocka_unit_test(netted_periods),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
