/*
 * The Solana outbox end to end, offline: mgx's JSON-RPC client and SQLite outbox against a
 * JSON-RPC server backed by LiteSVM (tests/solana/rpc_server.mjs), a real SQLite file, and
 * the real settlement key. Covers a submission lost in transit (resent, same bytes), a reply
 * lost after execution (asked, not resent), a blockhash that expires unseen (rebuilt once),
 * a delayed copy that arrives after the rebuild (refused by the runtime), a duplicate
 * interval, a restart, an unreachable node; and checks every home's balance and allowance
 * against the transfers: each interval settles exactly once.
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
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h" /* tst_tmpdir, tst_free_port, tst_sleep_ms */
#include "mgx/solana_base58.h"
#include "mgx/solana_batch.h"
#include "solana/solana_outbox.h"
#include "solana/solana_rpc.h"
#include "rpc_node.h"

#define N_HOMES 12

typedef struct {
    pid_t server;
    char url[64];
    char *dir;
    ctl_db *db;
    ctl_sol_outbox *ob;
    ctl_sol_rpc *rpc;
    sol_community c;
    sol_home homes[N_HOMES];
    uint8_t *sk; /* sodium_malloc */
    int64_t now;
    int64_t energy[N_HOMES], payment[N_HOMES]; /* expected balances */
} env;

static env E;

/* POSTs a control call to the test server; returns the parsed "result" (caller decrefs). */
static json_t *control(const char *method, json_int_t arg)
{
    CURL *c = curl_easy_init();
    char body[256];
    snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":[%lld]}",
             method, (long long)arg);
    FILE *mem;
    char *resp = NULL;
    size_t len = 0;
    mem = open_memstream(&resp, &len);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, E.url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    fclose(mem);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    json_t *root = json_loads(resp, 0, NULL);
    free(resp);
    assert_non_null(root);
    json_t *r = json_incref(json_object_get(root, "result"));
    json_decref(root);
    assert_non_null(r);
    return r;
}

static void control0(const char *method, json_int_t arg)
{
    json_decref(control(method, arg));
}

static int start_server(const char *scenario)
{
    E.server = sol_node_start(scenario, NULL, NULL, E.url, sizeof E.url);
    return E.server > 0 ? 0 : -1;
}
static void load_scenario(const char *path)
{
    json_t *r = json_load_file(path, 0, NULL);
    assert_non_null(r);
    uint8_t seed[32];
    size_t n;
    const char *hex = json_string_value(json_object_get(r, "authority_seed"));
    assert_int_equal(sodium_hex2bin(seed, 32, hex, strlen(hex), NULL, &n, NULL), 0);
    E.sk = sodium_malloc(64);
    crypto_sign_seed_keypair(E.c.authority.b, E.sk, seed);
    E.c.token_program = SOL_TOKEN_PROGRAM;
    assert_int_equal(sol_pubkey_from_base58(json_string_value(json_object_get(r, "energy_mint")),
                                            &E.c.energy_mint), SOL_OK);
    assert_int_equal(sol_pubkey_from_base58(json_string_value(json_object_get(r, "payment_mint")),
                                            &E.c.payment_mint), SOL_OK);
    E.c.energy_decimals = 0;
    E.c.payment_decimals = 6;
    json_t *homes = json_object_get(r, "homes");
    assert_int_equal(json_array_size(homes), N_HOMES);
    for (size_t i = 0; i < N_HOMES; i++) {
        uint8_t pk[32], hsk[64];
        hex = json_string_value(json_array_get(homes, i));
        assert_int_equal(sodium_hex2bin(seed, 32, hex, strlen(hex), NULL, &n, NULL), 0);
        crypto_sign_seed_keypair(pk, hsk, seed);
        sol_pubkey owner;
        memcpy(owner.b, pk, 32);
        assert_int_equal(sol_home_init(&E.homes[i], &E.c, &owner), SOL_OK);
        E.energy[i] = i < 6 ? 1000000 : 0;
        E.payment[i] = i < 6 ? 0 : 10000000000;
    }
    json_decref(r);
}

static int setup(void **state)
{
    (void)state;
    if (access(MGX_SOURCE_DIR "/tests/solana/node_modules/litesvm/package.json", R_OK) != 0)
        return -1;
    E.dir = tst_tmpdir("solana-outbox");
    char scenario[512], dbpath[512];
    snprintf(scenario, sizeof scenario, "%s/scenario.json", E.dir);
    snprintf(dbpath, sizeof dbpath, "%s/controller.db", E.dir);
    if (start_server(scenario) != 0)
        return -1;
    load_scenario(scenario);
    assert_int_equal(ctl_db_open(dbpath, &E.db, NULL, 0), CTL_DB_OK);
    assert_int_equal(ctl_sol_outbox_open(E.db, &E.ob), CTL_SOLOB_OK);
    E.rpc = ctl_sol_rpc_new(E.url, 5000);
    assert_non_null(E.rpc);
    E.now = 1700000000000;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ctl_sol_rpc_free(E.rpc);
    ctl_sol_outbox_close(E.ob);
    ctl_db_close(E.db);
    if (E.server > 0) {
        kill(E.server, SIGTERM);
        waitpid(E.server, NULL, 0);
    }
    sodium_free(E.sk);
    tst_rmtree(E.dir);
    free(E.dir);
    return 0;
}

/* 12 trades: seller i (0..5) to buyers 6+((i+k)%6), amounts varying with the interval. */
static size_t interval_transfers(uint64_t interval, sol_transfer *t)
{
    size_t n = 0;
    for (uint32_t g = 0; g < 12; g++) {
        uint32_t seller = g % 6, buyer = 6 + (g + (uint32_t)interval) % 6;
        uint64_t wh = 100 + 10 * interval + g, units = 25000 * wh;
        t[n++] = (sol_transfer){seller, buyer, SOL_ASSET_ENERGY, wh, g};
        t[n++] = (sol_transfer){buyer, seller, SOL_ASSET_PAYMENT, units, g};
    }
    return n;
}

/* Builds the interval against the node's latest blockhash and stores it; returns #parts. */
static size_t add_interval(uint64_t interval)
{
    sol_transfer t[24];
    size_t n = interval_transfers(interval, t);
    uint8_t hash[32];
    uint64_t lvbh;
    assert_int_equal(ctl_sol_rpc_latest_blockhash(E.rpc, "finalized", hash, &lvbh), CTL_SOLRPC_OK);
    sol_interval iv = {interval, {0}};
    memset(iv.ledger_root, (int)interval, 32);
    sol_batch *b = sol_batch_new();
    assert_int_equal(sol_batch_build(b, &E.c, E.homes, N_HOMES, &iv, t, n, hash, E.sk, NULL),
                     SOL_OK);
    size_t parts = sol_batch_count(b);
    assert_int_equal(ctl_sol_outbox_add(E.ob, interval, b, hash, lvbh, E.now), CTL_SOLOB_OK);
    sol_batch_free(b);
    for (size_t i = 0; i < n; i++) {
        int64_t *bal = t[i].asset == SOL_ASSET_ENERGY ? E.energy : E.payment;
        bal[t[i].from] -= (int64_t)t[i].amount;
        bal[t[i].to] += (int64_t)t[i].amount;
    }
    return parts;
}

static ctl_sol_poll_stats poll_at(int64_t dt_ms)
{
    E.now += dt_ms;
    ctl_sol_poll_stats s;
    assert_int_equal(ctl_sol_outbox_poll(E.ob, E.rpc, E.sk, E.now, &s), CTL_SOLOB_OK);
    return s;
}

static void assert_all_confirmed(uint64_t interval, size_t parts)
{
    size_t counts[4];
    assert_int_equal(ctl_sol_outbox_counts(E.ob, interval, counts), CTL_SOLOB_OK);
    assert_int_equal(counts[CTL_SOLOB_CONFIRMED], parts);
}

/* Balances on chain equal the expected ones: every interval applied exactly once. */
static void assert_balances(void)
{
    json_t *b = control("mgxTest_balances", 0);
    for (size_t i = 0; i < N_HOMES; i++) {
        json_t *row = json_array_get(b, i);
        assert_int_equal(atoll(json_string_value(json_array_get(row, 0))), E.energy[i]);
        assert_int_equal(atoll(json_string_value(json_array_get(row, 1))), E.payment[i]);
    }
    json_decref(b);
}

static void lost_submission_is_resent(void **state)
{
    (void)state;
    size_t parts = add_interval(1);
    assert_true(parts >= 2);
    control0("mgxTest_dropNext", 1); /* the first part never reaches the runtime */
    ctl_sol_poll_stats s = poll_at(0);
    assert_int_equal(s.sent, parts);
    s = poll_at(100); /* others confirmed; part 1 unknown, too soon to resend */
    assert_int_equal(s.confirmed, parts - 1);
    assert_int_equal(s.resent, 0);
    assert_int_equal(s.pending, 1);
    s = poll_at(CTL_SOLOB_RESEND_MS);
    assert_int_equal(s.resent, 1);
    s = poll_at(100);
    assert_int_equal(s.confirmed, 1);
    ctl_sol_outbox_row row;
    assert_int_equal(ctl_sol_outbox_get(E.ob, 1, 1, &row), CTL_SOLOB_OK);
    assert_int_equal(row.state, CTL_SOLOB_CONFIRMED);
    assert_int_equal(row.attempts, 2);
    assert_int_equal(row.generation, 0);
    assert_all_confirmed(1, parts);
    assert_balances();
    /* the same interval again is refused, not sent twice */
    sol_batch *b = sol_batch_new();
    uint8_t hash[32] = {0};
    assert_int_equal(ctl_sol_outbox_add(E.ob, 1, b, hash, 1, E.now), CTL_SOLOB_E_EXISTS);
    sol_batch_free(b);
}

static void lost_reply_is_not_resent(void **state)
{
    (void)state;
    size_t parts = add_interval(2);
    control0("mgxTest_lostReplyNext", 1); /* executed, but the answer is a bodiless 503 */
    poll_at(0);
    ctl_sol_poll_stats s = poll_at(10 * CTL_SOLOB_RESEND_MS);
    assert_int_equal(s.confirmed, parts);
    assert_int_equal(s.resent, 0);
    ctl_sol_outbox_row row;
    assert_int_equal(ctl_sol_outbox_get(E.ob, 2, 1, &row), CTL_SOLOB_OK);
    assert_int_equal(row.attempts, 1);
    assert_balances();
}

static void expired_unseen_is_rebuilt_once(void **state)
{
    (void)state;
    size_t parts = add_interval(3);
    control0("mgxTest_dropNext", 1000); /* the node is dropping everything */
    poll_at(0);
    poll_at(CTL_SOLOB_RESEND_MS); /* same bytes again, dropped again */
    ctl_sol_outbox_row before;
    assert_int_equal(ctl_sol_outbox_get(E.ob, 3, 1, &before), CTL_SOLOB_OK);
    assert_int_equal(before.state, CTL_SOLOB_SUBMITTED);
    assert_int_equal(before.attempts, 2);
    control0("mgxTest_advance", 200); /* past lastValidBlockHeight: the blockhash expires */
    control0("mgxTest_dropNext", 0);
    ctl_sol_poll_stats s = poll_at(CTL_SOLOB_RESEND_MS);
    assert_int_equal(s.rebuilt, parts);
    s = poll_at(100);
    assert_int_equal(s.confirmed, parts);
    ctl_sol_outbox_row after;
    assert_int_equal(ctl_sol_outbox_get(E.ob, 3, 1, &after), CTL_SOLOB_OK);
    assert_int_equal(after.generation, 1);
    assert_string_not_equal(after.signature, before.signature);
    assert_true(after.last_valid_block_height > before.last_valid_block_height);
    sqlite3_stmt *st;
    assert_int_equal(ctl_db_prepare(E.db, "SELECT COUNT(*) FROM solana_outbox_superseded"
                                          " WHERE signature = ?", &st), SQLITE_OK);
    sqlite3_bind_text(st, 1, before.signature, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    assert_all_confirmed(3, parts);
    assert_balances();
}

static void delayed_copy_cannot_land_after_rebuild(void **state)
{
    (void)state;
    size_t parts = add_interval(4);
    control0("mgxTest_holdNext", 1); /* part 1 is stuck somewhere and will arrive late */
    poll_at(0);
    ctl_sol_poll_stats s = poll_at(100);
    assert_int_equal(s.confirmed, parts - 1);
    /* while its blockhash is valid the outbox only resends the same bytes */
    control0("mgxTest_advance", 100);
    s = poll_at(CTL_SOLOB_RESEND_MS);
    assert_int_equal(s.rebuilt, 0);
    assert_int_equal(s.resent, 1);
    s = poll_at(100);
    assert_int_equal(s.confirmed, 1); /* the resend landed: same trades, same signature */
    json_t *rel = control("mgxTest_release", 0);
    assert_int_equal(json_array_size(rel), 1);
    assert_non_null(strstr(json_string_value(json_array_get(rel, 0)), "AlreadyProcessed"));
    json_decref(rel);
    assert_balances();

    parts = add_interval(5);
    control0("mgxTest_holdNext", 1);
    poll_at(0);
    control0("mgxTest_dropNext", 1000);
    poll_at(CTL_SOLOB_RESEND_MS);
    control0("mgxTest_dropNext", 0);
    control0("mgxTest_advance", 200); /* expired unseen: rebuilt with a new blockhash */
    s = poll_at(CTL_SOLOB_RESEND_MS);
    assert_int_equal(s.rebuilt, 1);
    s = poll_at(100);
    assert_int_equal(s.confirmed, 1);
    rel = control("mgxTest_release", 0); /* the old copy finally arrives: refused */
    assert_non_null(strstr(json_string_value(json_array_get(rel, 0)), "BlockhashNotFound"));
    json_decref(rel);
    assert_all_confirmed(5, parts);
    assert_balances();
}

static void restart_and_unreachable_node(void **state)
{
    (void)state;
    size_t parts = add_interval(6);
    poll_at(0);
    /* the daemon restarts: a new outbox object on the same database picks up where it was */
    ctl_sol_outbox_close(E.ob);
    assert_int_equal(ctl_sol_outbox_open(E.db, &E.ob), CTL_SOLOB_OK);
    ctl_sol_poll_stats s = poll_at(100);
    assert_int_equal(s.confirmed, parts);
    assert_int_equal(s.sent, 0);
    /* a node that does not answer changes nothing */
    size_t parts7 = add_interval(7);
    ctl_sol_rpc *dead = ctl_sol_rpc_new("http://127.0.0.1:1", 500);
    assert_int_equal(ctl_sol_outbox_poll(E.ob, dead, E.sk, E.now, &s), CTL_SOLOB_E_RPC);
    ctl_sol_rpc_free(dead);
    size_t counts[4];
    assert_int_equal(ctl_sol_outbox_counts(E.ob, 7, counts), CTL_SOLOB_OK);
    assert_int_equal(counts[CTL_SOLOB_BUILT], parts7);
    poll_at(0);
    poll_at(100);
    assert_all_confirmed(7, parts7);
    assert_balances();
    json_t *st = control("mgxTest_stats", 0);
    /* intervals 1..7, each part executed once: the only extra executions are none */
    printf("# sends %lld, executed %lld\n",
           (long long)json_integer_value(json_object_get(st, "sends")),
           (long long)json_integer_value(json_object_get(st, "executed")));
    json_decref(st);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    if (sol_node_missing())
        return 77;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lost_submission_is_resent),
        cmocka_unit_test(lost_reply_is_not_resent),
        cmocka_unit_test(expired_unseen_is_rebuilt_once),
        cmocka_unit_test(delayed_copy_cannot_land_after_rebuild),
        cmocka_unit_test(restart_and_unreachable_node),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
