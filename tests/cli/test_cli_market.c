/*
 * End-to-end tests of `mgx market clear`: the real binary (path in $MGX_BIN) runs on the small
 * books in tests/data/orders/ and its stdout, stderr and exit status are checked against answers
 * worked out by hand, for every output format, both mechanisms, the network fee and the tariffs.
 * Also: error messages name file:line:column, the help and version commands work, and shuffling
 * the input rows changes not one byte of the output.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA MGX_SOURCE_DIR "/tests/data/orders/"
#define WORK MGX_BINARY_DIR "/tests/cli-market-work"
#define MAX_ARGS 24
#define MAX_OUTPUT ((size_t)16 << 20)

typedef struct {
    int status; /* exit status, or 128 + signal */
    char *out, *err;
    size_t out_len, err_len;
} run_result;

static const char *mgx_bin(void)
{
    const char *p = getenv("MGX_BIN");
    if (!p || !*p)
        fail_msg("MGX_BIN is not set (ctest sets it to the mgx binary)");
    return p;
}

static char *slurp_stream(FILE *f, size_t *len)
{
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0 && (size_t)size <= MAX_OUTPUT);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    rewind(f);
    size_t n = fread(buf, 1, (size_t)size, f);
    assert_int_equal(n, (size_t)size);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Runs mgx with the NULL-terminated args, stdin from stdin_path (or /dev/null). */
static void run_argv(run_result *r, const char *stdin_path, const char *const *args)
{
    FILE *out = tmpfile(), *err = tmpfile();
    assert_non_null(out);
    assert_non_null(err);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[MAX_ARGS + 2] = {strdup(mgx_bin())};
        for (size_t i = 0; i < MAX_ARGS && args[i]; i++)
            argv[i + 1] = strdup(args[i]);
        FILE *in = fopen(stdin_path ? stdin_path : "/dev/null", "rb");
        if (!in || dup2(fileno(in), 0) < 0 || dup2(fileno(out), 1) < 0 ||
            dup2(fileno(err), 2) < 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->out = slurp_stream(out, &r->out_len);
    r->err = slurp_stream(err, &r->err_len);
    fclose(out);
    fclose(err);
}

#define RUN(r, in, ...) run_argv((r), (in), (const char *const[]){__VA_ARGS__, NULL})
#define RUN_JSON(in, ...) json_argv((in), (const char *const[]){__VA_ARGS__, NULL})
#define EXPECT_FAILURE(status, needle, ...)                                                    \
    failure_argv((status), (needle), (const char *const[]){__VA_ARGS__, NULL})

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
}

#define assert_contains(hay, needle)                                                           \
    do {                                                                                       \
        if (!strstr((hay), (needle)))                                                          \
            fail_msg("expected to find \"%s\" in:\n%s", (needle), (hay));                      \
    } while (0)

static json_int_t jint(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("JSON key %s is not an integer", key);
    return json_integer_value(v);
}

/* The participant object with the given name. */
static const json_t *jpart(const json_t *root, const char *name)
{
    const json_t *parts = json_object_get(root, "participants"), *p;
    size_t i;
    json_array_foreach(parts, i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "participant")), name) == 0)
            return p;
    }
    fail_msg("no participant %s in the JSON", name);
    return NULL;
}

static json_t *parse_json_out(const run_result *r)
{
    if (r->status != 0)
        fail_msg("mgx exited %d: %s", r->status, r->err);
    json_error_t e;
    json_t *root = json_loadb(r->out, r->out_len, 0, &e);
    if (!root)
        fail_msg("mgx printed invalid JSON (%s at %d): %s", e.text, e.line, r->out);
    return root;
}

static json_t *json_argv(const char *stdin_path, const char *const *args)
{
    run_result r;
    run_argv(&r, stdin_path, args);
    json_t *root = parse_json_out(&r);
    assert_int_equal(r.err_len, 0);
    run_free(&r);
    return root;
}

static void failure_argv(int status, const char *needle, const char *const *args)
{
    run_result r;
    run_argv(&r, NULL, args);
    if (r.status != status)
        fail_msg("expected exit %d, got %d; stderr: %s", status, r.status, r.err);
    assert_contains(r.err, needle);
    assert_int_equal(r.out_len, 0);
    run_free(&r);
}

/* The equilibrium interval [lo, hi] of a pay-as-clear result. */
static void assert_interval(const json_t *root, json_int_t lo, json_int_t hi)
{
    const json_t *iv = json_object_get(root, "price_interval_uc_per_kwh");
    assert_int_equal(json_array_size(iv), 2);
    assert_int_equal(json_integer_value(json_array_get(iv, 0)), lo);
    assert_int_equal(json_integer_value(json_array_get(iv, 1)), hi);
}

static void assert_trade(const json_t *root, size_t i, const char *seller, const char *buyer,
                         json_int_t energy, json_int_t price, json_int_t amount, json_int_t fee)
{
    const json_t *t = json_array_get(json_object_get(root, "trades"), i);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "seller")), seller);
    assert_string_equal(json_string_value(json_object_get(t, "buyer")), buyer);
    assert_int_equal(jint(t, "energy_wh"), energy);
    assert_int_equal(jint(t, "price_uc_per_kwh"), price);
    assert_int_equal(jint(t, "amount_uc"), amount);
    assert_int_equal(jint(t, "fee_uc"), fee);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    char *buf = slurp_stream(f, len);
    fclose(f);
    return buf;
}

/*
 * basic.csv, default tariffs (feed-in F = 80000, retail R = 300000, fee 0), pay-as-clear.
 * Sells by price: alice 3000 @100000, bob 2000 @150000, alice 1000 @200000.
 * Buys by price:  carol 2500 @250000, dave 2000 @180000, erin 1000 @120000.
 * Walk: alice/carol 2500 (carol done); alice/dave 500 (alice's first step done);
 * bob/dave 1500 (dave done); bob 150000 > erin 120000: stop. Q = 4500 Wh; bob's level is partly
 * taken (1500 of 2000), so it is the first rejected sell level.
 * L = max(F, last accepted ask 150000, first rejected bid 120000) = 150000;
 * U = min(R, last accepted bid 180000, first rejected ask 150000) = 150000; p = 150000.
 * Trades in id order (alice, bob / carol, dave): alice->carol 2500, alice->dave 500,
 * bob->dave 1500, amounts 2500*150 = 375000, 500*150 = 75000, 1500*150 = 225000 (675000).
 * Grid: alice sells 4000-3000 = 1000 Wh for 1000*80 = 80000, bob 500 Wh for 40000;
 * erin buys 1000 Wh for 1000*300 = 300000.
 */
static void test_basic_pay_as_clear_json(void **state)
{
    (void)state;
    json_t *root = RUN_JSON(NULL, "market", "clear", "--orders", DATA "basic.csv", "--format",
                            "json");
    assert_string_equal(json_string_value(json_object_get(root, "mechanism")), "pay-as-clear");
    assert_int_equal(jint(root, "feed_in_tariff_uc_per_kwh"), 80000);
    assert_int_equal(jint(root, "retail_tariff_uc_per_kwh"), 300000);
    assert_int_equal(jint(root, "matched_wh"), 4500);
    assert_int_equal(jint(root, "clearing_price_uc_per_kwh"), 150000);
    assert_interval(root, 150000, 150000);
    assert_int_equal(jint(root, "local_value_uc"), 675000);
    assert_int_equal(jint(root, "fees_uc"), 0);
    assert_int_equal(jint(root, "grid_bought_wh"), 1000);
    assert_int_equal(jint(root, "grid_paid_uc"), 300000);
    assert_int_equal(jint(root, "grid_sold_wh"), 1500);
    assert_int_equal(jint(root, "grid_received_uc"), 120000);
    assert_int_equal(json_array_size(json_object_get(root, "trades")), 3);
    assert_trade(root, 0, "alice", "carol", 2500, 150000, 375000, 0);
    assert_trade(root, 1, "alice", "dave", 500, 150000, 75000, 0);
    assert_trade(root, 2, "bob", "dave", 1500, 150000, 225000, 0);
    assert_int_equal(json_array_size(json_object_get(root, "participants")), 5);
    const json_t *a = jpart(root, "alice");
    assert_string_equal(json_string_value(json_object_get(a, "side")), "sell");
    assert_int_equal(jint(a, "offered_wh"), 4000);
    assert_int_equal(jint(a, "local_sold_wh"), 3000);
    assert_int_equal(jint(a, "grid_sold_wh"), 1000);
    assert_int_equal(jint(a, "local_received_uc"), 450000);
    assert_int_equal(jint(a, "grid_received_uc"), 80000);
    const json_t *b = jpart(root, "bob");
    assert_int_equal(jint(b, "local_sold_wh"), 1500);
    assert_int_equal(jint(b, "grid_sold_wh"), 500);
    assert_int_equal(jint(b, "local_received_uc"), 225000);
    assert_int_equal(jint(b, "grid_received_uc"), 40000);
    const json_t *d = jpart(root, "dave");
    assert_int_equal(jint(d, "local_bought_wh"), 2000);
    assert_int_equal(jint(d, "local_paid_uc"), 300000);
    assert_int_equal(jint(d, "grid_bought_wh"), 0);
    const json_t *e = jpart(root, "erin");
    assert_string_equal(json_string_value(json_object_get(e, "side")), "buy");
    assert_int_equal(jint(e, "local_bought_wh"), 0);
    assert_int_equal(jint(e, "grid_bought_wh"), 1000);
    assert_int_equal(jint(e, "grid_paid_uc"), 300000);
    json_decref(root);
}

/*
 * basic.csv pay-as-bid: the same accepted units, paired cheapest ask with dearest bid, each at
 * the bid: alice->carol 2500 @250000 = 625000, alice->dave 500 @180000 = 90000,
 * bob->dave 1500 @180000 = 270000; local value 985000. No clearing price is reported.
 */
static void test_basic_pay_as_bid_json(void **state)
{
    (void)state;
    json_t *root = RUN_JSON(NULL, "market", "clear", "--orders", DATA "basic.csv", "--format",
                            "json", "--mechanism", "pay-as-bid");
    assert_string_equal(json_string_value(json_object_get(root, "mechanism")), "pay-as-bid");
    assert_null(json_object_get(root, "clearing_price_uc_per_kwh"));
    assert_int_equal(jint(root, "matched_wh"), 4500);
    assert_int_equal(jint(root, "local_value_uc"), 985000);
    assert_trade(root, 0, "alice", "carol", 2500, 250000, 625000, 0);
    assert_trade(root, 1, "alice", "dave", 500, 180000, 90000, 0);
    assert_trade(root, 2, "bob", "dave", 1500, 180000, 270000, 0);
    assert_int_equal(jint(jpart(root, "alice"), "local_received_uc"), 715000);
    assert_int_equal(jint(jpart(root, "carol"), "local_paid_uc"), 625000);
    assert_int_equal(jint(jpart(root, "dave"), "local_paid_uc"), 360000);
    /* the grid legs do not depend on the mechanism */
    assert_int_equal(jint(root, "grid_paid_uc"), 300000);
    assert_int_equal(jint(root, "grid_received_uc"), 120000);
    json_decref(root);
}

/*
 * basic.csv with --network-fee 12345: the band top is 300000 - 12345 = 287655, above every bid,
 * so the match and p = 150000 are unchanged. Fees are floored per trade:
 * 2500*12345/1000 = 30862.5 -> 30862, 500*12345/1000 = 6172.5 -> 6172,
 * 1500*12345/1000 = 18517.5 -> 18517. dave pays 6172 + 18517 = 24689, one less than
 * floor(2000*12345/1000) = 24690: the sum of floors, which is what makes fees balance.
 */
static void test_basic_network_fee(void **state)
{
    (void)state;
    json_t *root = RUN_JSON(NULL, "market", "clear", "--orders", DATA "basic.csv", "--format",
                            "json", "--network-fee", "12345");
    assert_int_equal(jint(root, "network_fee_uc_per_kwh"), 12345);
    assert_int_equal(jint(root, "clearing_price_uc_per_kwh"), 150000);
    assert_trade(root, 0, "alice", "carol", 2500, 150000, 375000, 30862);
    assert_trade(root, 1, "alice", "dave", 500, 150000, 75000, 6172);
    assert_trade(root, 2, "bob", "dave", 1500, 150000, 225000, 18517);
    assert_int_equal(jint(root, "fees_uc"), 55551);
    assert_int_equal(jint(jpart(root, "carol"), "fee_paid_uc"), 30862);
    assert_int_equal(jint(jpart(root, "dave"), "fee_paid_uc"), 24689);
    assert_int_equal(jint(jpart(root, "alice"), "fee_paid_uc"), 0);
    json_decref(root);
}

/*
 * wide.csv: s1 1000 @100001, b1 1000 @200000, s2 500 @250000, b2 500 @90000.
 * Default tariffs: s1/b1 match 1000 Wh exactly, then 250000 > 90000 stops the walk.
 * L = max(80000, 100001, first rejected bid 90000) = 100001,
 * U = min(300000, 200000, first rejected ask 250000) = 200000,
 * p = 100001 + (200000 - 100001)/2 = 100001 + 49999 = 150000 (midpoint rounded down).
 */
static void test_wide_interval_midpoint(void **state)
{
    (void)state;
    json_t *root = RUN_JSON(NULL, "market", "clear", "--orders", DATA "wide.csv", "--format",
                            "json");
    assert_interval(root, 100001, 200000);
    assert_int_equal(jint(root, "clearing_price_uc_per_kwh"), 150000);
    assert_trade(root, 0, "s1", "b1", 1000, 150000, 150000, 0);
    json_decref(root);
}

/*
 * wide.csv with feed-in 120000, retail 180000, fee 10000: the band is [120000, 170000].
 * s1's ask becomes max(100001, 120000) = 120000; b1's bid min(200000, 170000) = 170000;
 * s2 (250000 > 170000) and b2 (90000 < 120000) can never trade and drop out of the book, so
 * there is no rejected level: L = 120000, U = 170000, p = 145000.
 * pay-as-clear: 1000 Wh for 145000 uc, fee 1000*10 = 10000.
 * pay-as-bid: at b1's effective bid 170000 (+ fee 10000 = retail exactly): 170000 uc.
 * Grid: s2 sells 500 Wh at 120 = 60000; b2 buys 500 Wh at 180 = 90000.
 */
static void test_wide_tariffs(void **state)
{
    (void)state;
    for (int bid = 0; bid < 2; bid++) {
        json_t *root = RUN_JSON(NULL, "market", "clear", "--orders", DATA "wide.csv", "--format",
                                "json", "--feed-in-tariff", "120000", "--retail-tariff",
                                "180000", "--network-fee", "10000", "--mechanism",
                                bid ? "pay-as-bid" : "pay-as-clear");
        if (!bid) {
            assert_interval(root, 120000, 170000);
            assert_trade(root, 0, "s1", "b1", 1000, 145000, 145000, 10000);
        } else {
            assert_trade(root, 0, "s1", "b1", 1000, 170000, 170000, 10000);
        }
        assert_int_equal(json_array_size(json_object_get(root, "trades")), 1);
        assert_int_equal(jint(jpart(root, "s2"), "grid_received_uc"), 60000);
        assert_int_equal(jint(jpart(root, "b2"), "grid_paid_uc"), 90000);
        assert_int_equal(jint(root, "grid_sold_wh"), 500);
        assert_int_equal(jint(root, "grid_bought_wh"), 500);
        json_decref(root);
    }
}

/*
 * prorata.csv: a 500, b 1000, c 1500 all @100000; z buys 2000 @200000. The level (3000 Wh) is
 * cut to 2000: floors 2000*500/3000 = 333 (remainder 1000), 2000*1000/3000 = 666 (rem. 2000),
 * 2000*1500/3000 = 1000 (rem. 0); the one leftover Wh goes to the largest remainder, b, not to
 * a, the lowest id. The cut level is also the first rejected one, so p = 100000.
 * Pay-as-bid pairs the tied sellers with z in seat order (docs/market-rules.md, "Ties"): the CLI
 * clears at interval 0, and a, b, c are participants 0, 1, 2 (names in sorted order), whose
 * keys >> 32 are 48218226, ea8568d2, a5596508: seats a, c, b, so the trades are listed a, c, b.
 * Checked through the CSV format against the expected files next to the book.
 */
static void test_csv_expected_files(void **state)
{
    (void)state;
    static const char *const books[] = {"basic", "prorata"};
    static const char *const mechs[] = {"pay-as-clear", "pay-as-bid"};
    for (size_t b = 0; b < 2; b++)
        for (size_t m = 0; m < 2; m++) {
            char in[512], want_path[512];
            snprintf(in, sizeof in, DATA "%s.csv", books[b]);
            snprintf(want_path, sizeof want_path, DATA "%s.%s.trades.csv", books[b], mechs[m]);
            size_t want_len;
            char *want = read_file(want_path, &want_len);
            run_result r;
            RUN(&r, NULL, "market", "clear", "--orders", in, "--format", "csv",
                    "--mechanism", mechs[m]);
            assert_int_equal(r.status, 0);
            assert_string_equal(r.out, want);
            assert_int_equal(r.err_len, 0);
            run_free(&r);
            free(want);
        }
    /* At interval 4 the keys >> 32 of a, b, c (0, 1, 2) are 74c1f653, c694d237, e907221e: seats
     * a, b, c, and pay-as-bid lists the trades in that order. */
    run_result r;
    RUN(&r, NULL, "market", "clear", "--orders", DATA "prorata.csv", "--format", "csv",
        "--mechanism", "pay-as-bid", "--interval", "4");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "seller,buyer,energy_wh,price_uc_per_kwh,amount_uc,fee_uc\n"
                               "a,z,333,200000,66600,0\n"
                               "b,z,667,200000,133400,0\n"
                               "c,z,1000,200000,200000,0\n");
    run_free(&r);
    RUN(&r, NULL, "market", "clear", "--orders", DATA "prorata.csv", "--interval", "x");
    assert_int_equal(r.status, 2); /* usage */
    run_free(&r);
}

static void test_text_format(void **state)
{
    (void)state;
    run_result r;
    RUN(&r, NULL, "market", "clear", "--orders", DATA "basic.csv");
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "mechanism        pay-as-clear\n");
    assert_contains(r.out, "clearing price   150000 uc/kWh (equilibrium interval 150000..150000)");
    assert_contains(r.out, "matched locally  4500 Wh in 3 trades worth 675000 uc, fees 0 uc");
    assert_contains(r.out, "grid             bought 1000 Wh for 300000 uc, sold 1500 Wh for 120000 uc");
    run_free(&r);
    RUN(&r, NULL, "market", "clear", "--orders", DATA "basic.csv", "--mechanism",
            "pay-as-bid", "--format", "text");
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "mechanism        pay-as-bid\n");
    assert_null(strstr(r.out, "clearing price"));
    assert_contains(r.out, "matched locally  4500 Wh in 3 trades worth 985000 uc");
    run_free(&r);
}

/* '-' reads the book from stdin and gives the same answer as the file. */
static void test_stdin(void **state)
{
    (void)state;
    run_result a, b;
    RUN(&a, NULL, "market", "clear", "--orders", DATA "basic.csv", "--format", "json");
    RUN(&b, DATA "basic.csv", "market", "clear", "--orders", "-", "--format", "json");
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    assert_string_equal(a.out, b.out);
    run_free(&a);
    run_free(&b);
}

/* A header and no rows is a valid empty book: nothing matched, no price, exit 0. */
static void test_empty_book(void **state)
{
    (void)state;
    json_t *root = RUN_JSON(NULL, "market", "clear", "--orders", DATA "header_only.csv",
                            "--format", "json");
    assert_int_equal(jint(root, "matched_wh"), 0);
    assert_true(json_is_null(json_object_get(root, "clearing_price_uc_per_kwh")));
    assert_int_equal(json_array_size(json_object_get(root, "trades")), 0);
    assert_int_equal(json_array_size(json_object_get(root, "participants")), 0);
    json_decref(root);
}

/* Bad input exits 1 and the message names file:line:column. */
static void test_input_errors(void **state)
{
    (void)state;
    run_result r;
    RUN(&r, NULL, "market", "clear", "--orders", DATA "no-such-book.csv");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "no-such-book.csv: No such file or directory");
    assert_int_equal(r.out_len, 0);
    run_free(&r);
    /* line 3, column 3 (energy_wh): "bob,sell,abc,150000" */
    RUN(&r, NULL, "market", "clear", "--orders", DATA "bad_row.csv");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "bad_row.csv:3:3: energy_wh 'abc' is not a whole number");
    run_free(&r);
    /* alice buys on line 2, sells on line 5 (after a comment): column 2 is the side */
    RUN(&r, NULL, "market", "clear", "--orders", DATA "mixed_sides.csv");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "mixed_sides.csv:5:2:");
    assert_contains(r.err, "already buys on line 2");
    run_free(&r);
    /* header line 1, a comment on line 2, solar's steps on lines 3..19: the 17th is line 19 */
    RUN(&r, NULL, "market", "clear", "--orders", DATA "steps17.csv");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "steps17.csv:19:1: participant 'solar' has more than 16 steps");
    run_free(&r);
    /* 1e12 Wh at a price of 5e11 is 5e20 uc: beyond int64, rejected rather than wrapped */
    RUN(&r, NULL, "market", "clear", "--orders", DATA "overflow.csv", "--feed-in-tariff", "0",
            "--retail-tariff", "1000000000000");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "overflow.csv:");
    assert_contains(r.err, "overflow 64-bit integers");
    assert_int_equal(r.out_len, 0);
    run_free(&r);
}

/* Usage errors exit 2 and say what was wrong. */
static void test_usage_errors(void **state)
{
    (void)state;
    EXPECT_FAILURE(2, "unknown option '--bogus'", "market", "clear", "--orders",
                   DATA "basic.csv", "--bogus");
    EXPECT_FAILURE(2, "the feed-in tariff (400000) is above the retail tariff (300000)", "market",
                   "clear", "--orders", DATA "basic.csv", "--feed-in-tariff", "400000");
    EXPECT_FAILURE(2, "--orders FILE.csv is required", "market", "clear");
    EXPECT_FAILURE(2, "--mechanism must be pay-as-clear or pay-as-bid", "market", "clear",
                   "--orders", DATA "basic.csv", "--mechanism", "auction");
    EXPECT_FAILURE(2, "--format must be text, json or csv", "market", "clear", "--orders",
                   DATA "basic.csv", "--format", "xml");
    EXPECT_FAILURE(2, "--network-fee needs a whole number", "market", "clear", "--orders",
                   DATA "basic.csv", "--network-fee", "-1");
    EXPECT_FAILURE(2, "--retail-tariff needs a whole number", "market", "clear", "--orders",
                   DATA "basic.csv", "--retail-tariff", "3e5");
    EXPECT_FAILURE(2, "not an mgx command", "frobnicate");
    EXPECT_FAILURE(2, "usage: mgx", NULL);
}

static void test_help_and_version(void **state)
{
    (void)state;
    run_result r;
    RUN(&r, NULL, "--version");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "mgx " MGX_EXPECTED_VERSION "\n");
    run_free(&r);
    RUN(&r, NULL, "help");
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "usage: mgx");
    assert_contains(r.out, "market");
    run_free(&r);
    RUN(&r, NULL, "market", "clear", "--help");
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "usage: mgx market clear --orders FILE.csv");
    assert_contains(r.out, "--network-fee");
    run_free(&r);
    RUN(&r, NULL, "help", "market");
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "usage: mgx market clear --orders FILE.csv");
    run_free(&r);
}

/* A seeded xorshift: reproducible shuffles. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Writes header + rows[perm] to path. */
static void write_book(const char *path, const char *header, char **rows, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "%s\n", header);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", rows[i]);
    assert_int_equal(fclose(f), 0);
}

static void shuffle(char **rows, size_t n, uint64_t *seed)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng_next(seed) % i);
        char *t = rows[i - 1];
        rows[i - 1] = rows[j];
        rows[j] = t;
    }
}

/* Every format and mechanism gives byte-identical stdout for every shuffle of the rows. */
static void check_shuffles(const char *header, char **rows, size_t n, uint64_t seed)
{
    static const char *const formats[] = {"text", "json", "csv"};
    static const char *const mechs[] = {"pay-as-clear", "pay-as-bid"};
    const char *orig = WORK "/original.csv", *shuf = WORK "/shuffled.csv";
    write_book(orig, header, rows, n);
    for (int k = 0; k < 4; k++) {
        shuffle(rows, n, &seed);
        write_book(shuf, header, rows, n);
        for (size_t f = 0; f < 3; f++)
            for (size_t m = 0; m < 2; m++) {
                run_result a, b;
                RUN(&a, NULL, "market", "clear", "--orders", orig, "--format", formats[f],
                        "--mechanism", mechs[m], "--network-fee", "1000");
                RUN(&b, NULL, "market", "clear", "--orders", shuf, "--format", formats[f],
                        "--mechanism", mechs[m], "--network-fee", "1000");
                assert_int_equal(a.status, 0);
                assert_int_equal(b.status, 0);
                assert_int_equal(a.out_len, b.out_len);
                assert_memory_equal(a.out, b.out, a.out_len);
                run_free(&a);
                run_free(&b);
            }
    }
}

static void test_shuffled_rows_basic(void **state)
{
    (void)state;
    char *rows[] = {"alice,sell,3000,100000", "bob,sell,2000,150000", "alice,sell,1000,200000",
                    "carol,buy,2500,250000",  "dave,buy,2000,180000", "erin,buy,1000,120000"};
    check_shuffles("participant,side,energy_wh,price_uc_per_kwh", rows, 6, 42);
}

/* A random book of 120 participants with 1-3 steps each and many equal prices, so that ties by
 * id, merged steps and pro-rata levels all occur. */
static void test_shuffled_rows_random(void **state)
{
    (void)state;
    enum { PARTS = 120, MAX_ROWS = PARTS * 3 };
    char *rows[MAX_ROWS];
    size_t n = 0;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int p = 0; p < PARTS; p++) {
        int sell = (int)(rng_next(&seed) % 2), steps = 1 + (int)(rng_next(&seed) % 3);
        for (int s = 0; s < steps; s++) {
            rows[n] = malloc(64);
            assert_non_null(rows[n]);
            snprintf(rows[n], 64, "p%03d,%s,%d,%d", p, sell ? "sell" : "buy",
                     1 + (int)(rng_next(&seed) % 5000),
                     60000 + 10000 * (int)(rng_next(&seed) % 26));
            n++;
        }
    }
    check_shuffles("participant,side,energy_wh,price_uc_per_kwh", rows, n, 7);
    for (size_t i = 0; i < n; i++)
        free(rows[i]);
}

static int setup(void **state)
{
    (void)state;
    if (mkdir(WORK, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_pay_as_clear_json),
        cmocka_unit_test(test_basic_pay_as_bid_json),
        cmocka_unit_test(test_basic_network_fee),
        cmocka_unit_test(test_wide_interval_midpoint),
        cmocka_unit_test(test_wide_tariffs),
        cmocka_unit_test(test_csv_expected_files),
        cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_stdin),
        cmocka_unit_test(test_empty_book),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_shuffled_rows_basic),
        cmocka_unit_test(test_shuffled_rows_random),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
