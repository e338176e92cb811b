/*
 * `mgx controller`'s config file through the shared loader (label integration, the real binary):
 * bad files exit 2 with "FILE:LINE: message" naming the right line; [bus] is the shared section
 * (community there, or in [controller] as before, and then both must agree; password_file, not
 * password); other daemons' sections may share the file but a misspelt section is an error; a
 * relative db path is taken from the config file's folder.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>
#include <time.h>

#include "broker.h"

static char conf[512], errlog[512];

static int setup(void **state)
{
    if (tst_dir_setup(state) != 0)
        return -1;
    snprintf(conf, sizeof conf, "%s/controller.ini", tst_dir);
    snprintf(errlog, sizeof errlog, "%s/stderr.txt", tst_dir);
    return 0;
}

static void write_conf(const char *text)
{
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static pid_t start(const char *extra_arg)
{
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(errlog, "w", stderr) || chdir("/") != 0)
            _exit(126);
        if (extra_arg)
            execl(bin, bin, "controller", conf, extra_arg, (char *)NULL);
        else
            execl(bin, bin, "controller", conf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Runs the controller on text; returns its exit status, its stderr in out. */
static int run(const char *text, const char *extra_arg, char *out, size_t cap)
{
    write_conf(text);
    int st;
    waitpid(start(extra_arg), &st, 0);
    FILE *f = fopen(errlog, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* A config error: exit 2, the message contains "controller.ini:LINE: what". */
static void expect_error(const char *text, int line, const char *what)
{
    char out[4096], want[512];
    int rc = run(text, NULL, out, sizeof out);
    if (line > 0)
        snprintf(want, sizeof want, "controller.ini:%d: %s", line, what);
    else
        snprintf(want, sizeof want, "%s", what);
    if (rc != 2 || !strstr(out, want))
        fail_msg("exit %d, stderr \"%s\", expected exit 2 and \"%s\"", rc, out, want);
}

/* Accepted: with the database in a folder that does not exist the store cannot open, which is
 * exit 1 after the config was taken (a config error would be exit 2). */
static void expect_accepted(const char *text)
{
    char out[4096];
    int rc = run(text, "--db=/nonexistent-mgx-folder/x.db", out, sizeof out);
    if (rc != 1 || !strstr(out, "store"))
        fail_msg("exit %d, stderr \"%s\", expected the store to fail (exit 1)", rc, out);
}

static void errors_name_file_and_line(void **state)
{
    (void)state;
    expect_error("[bus]\nport = 1883\n[controller]\ncommunity = elm\ndb = x.db\ngate_s = 5\n", 6,
                 "unknown key 'gate_s' in [controller]");
    /* the shared [bus]: a password lives in a file, not in the config */
    expect_error("[bus]\npassword = secret\n[controller]\ncommunity = elm\ndb = x.db\n", 2,
                 "unknown key 'password' in [bus]");
    expect_error("[bus]\nport = 99999\n[controller]\ncommunity = elm\n", 2, "port");
    expect_error("[bus]\n[controller]\ncommunity = elm\ninterval_s = 900\ninterval_s = 60\n", 5,
                 "interval_s: given twice");
    expect_error("[bus]\n[controler]\ncommunity = elm\n", 2, "unknown section [controler]");
    expect_error("[bus]\n[controller]\ncommunity = elm\nmechanism = auction\n", 4,
                 "mechanism must be pay-as-clear or pay-as-bid");
    expect_error("[bus]\n[controller]\ncommunity = elm\ntiming = later\n", 4,
                 "timing must be ex_ante or ex_post");
    expect_error("[bus]\n[controller]\ncommunity = elm\nfeed_in_uc_per_kwh = 400000\n", 2,
                 "feed_in_uc_per_kwh is above retail_uc_per_kwh");
    /* community: in [bus] or [controller], the same if in both, and somewhere */
    expect_error("[bus]\ncommunity = oak\n[controller]\ncommunity = elm\n", 3,
                 "[controller] community 'elm' differs from [bus] community 'oak'");
    expect_error("[bus]\nport = 1883\n[controller]\ndb = x.db\n", 1, "community is required");
    expect_error("[controller]\ncommunity = elm\n", 0, "no [bus] section");
    expect_error("[bus]\ncommunity = elm\n", 0, "no [controller] section");
    expect_error("[bus]\n[controller]\ncommunity = elm\n[solana]\nrpc_url = http://x\n", 4,
                 "[solana] needs settlement_key");
    /* issue 19: the minimum group size of public results, the chain mode */
    expect_error("[bus]\n[controller]\ncommunity = elm\nmin_group_size = 0\n", 4,
                 "min_group_size");
    /* issue 13: the tier that mints energy credits, -1 (off) .. 2 */
    expect_error("[bus]\n[controller]\ncommunity = elm\ncredit_min_tier = 3\n", 4,
                 "credit_min_tier");
    expect_error("[bus]\n[controller]\ncommunity = elm\nsettlement_key = k\n[solana]\n"
                 "mode = pooled\n",
                 6, "mode must be anchor (the default), netted or per_trade, not 'pooled'");
    expect_error("[bus]\n[controller]\ncommunity = elm\nsettlement_key = k\n[solana]\n"
                 "mode = netted\nrpc_url = http://x\nkeypair = s.json\n"
                 "energy_mint = So11111111111111111111111111111111111111112\n"
                 "payment_mint = So11111111111111111111111111111111111111112\nwallets = w\n",
                 0, "[solana] needs pool_wallet (mode netted)");
    expect_error("[bus]\n[controller]\ncommunity = elm\nsettlement_key = k\n[solana]\n"
                 "mode = per_trade\nrpc_url = http://x\nkeypair = s.json\n",
                 0, "[solana] needs energy_mint (mode per_trade)");
    /* issue 13: credits on chain need per_trade and credits in the ledger */
    expect_error("[bus]\n[controller]\ncommunity = elm\nsettlement_key = k\n[solana]\n"
                 "rpc_url = http://x\nkeypair = s.json\nmint_authority = m.json\n",
                 0, "[solana] mint_authority needs mode per_trade");
    expect_error("[bus]\n[controller]\ncommunity = elm\nsettlement_key = k\n[solana]\n"
                 "mode = per_trade\nrpc_url = http://x\nkeypair = s.json\n"
                 "energy_mint = So11111111111111111111111111111111111111112\n"
                 "payment_mint = So11111111111111111111111111111111111111112\nwallets = w\n"
                 "mint_authority = m.json\n",
                 5, "[solana] mint_authority needs credit_min_tier in [controller]");
}

static void good_files_are_taken(void **state)
{
    (void)state;
    /* as the tests and the demo have written it: community in [controller] */
    expect_accepted("[bus]\nhost = 127.0.0.1\nport = 1883\nclient_id = controller\n"
                    "[controller]\ncommunity = elm\ninterval_s = 900\n");
    /* the shared way: community in [bus]; both agreeing is fine too */
    expect_accepted("[bus]\ncommunity = elm\n[controller]\ngate_closure_s = 60\n");
    expect_accepted("[bus]\ncommunity = elm\n[controller]\ncommunity = elm\n");
    expect_accepted("[bus]\ncommunity = elm\n[controller]\ncredit_min_tier = 1\n");
    /* anchoring (the default mode) needs no mints or wallets */
    expect_accepted("[bus]\ncommunity = elm\n[controller]\nmin_group_size = 5\n"
                    "settlement_key = k\n[solana]\nrpc_url = http://x\nkeypair = s.json\n");
    expect_accepted("[bus]\ncommunity = elm\n[controller]\ncredit_min_tier = 0\n"
                    "settlement_key = k\n[solana]\nmode = per_trade\nrpc_url = http://x\n"
                    "keypair = s.json\nmint_authority = s.json\n"
                    "energy_mint = So11111111111111111111111111111111111111112\n"
                    "payment_mint = So11111111111111111111111111111111111111112\nwallets = w\n");
    expect_accepted("[bus]\ncommunity = elm\n[controller]\ntiming = ex_post\n");
    expect_accepted("[bus]\ncommunity = elm\n[controller]\ntiming = ex_ante\n");
    /* one file for several daemons */
    expect_accepted("[bus]\ncommunity = elm\n[controller]\n[agent]\nparticipant = h1\n"
                    "[meter h1]\nprofile = sdm630\n[map custom]\npower_w = 0x34\n"
                    "[outbox]\nmax_messages = 10\n[homeassistant]\nenabled = yes\n");
}

/* db = ctl.db is the config folder's ctl.db, whatever the working directory (here /). */
static void relative_db_is_next_to_the_config(void **state)
{
    (void)state;
    write_conf("[bus]\nhost = 127.0.0.1\nport = 1\nbackoff_max_ms = 500\n[controller]\n"
               "community = elm\ndb = ctl.db\n");
    pid_t pid = start(NULL);
    char db[600];
    snprintf(db, sizeof db, "%s/ctl.db", tst_dir);
    struct stat sb;
    int found = 0;
    for (int i = 0; i < 200 && !found; i++) {
        found = stat(db, &sb) == 0;
        if (!found)
            tst_sleep_ms(25);
    }
    tst_sleep_ms(100);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    assert_true(found);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static int64_t count_readings(const char *db)
{
    sqlite3 *h;
    int64_t n = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h, "SELECT count(*) FROM readings", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return n;
}

/* reading_retention_days: the running controller thins readings older than that (settlement
 * off here, so nothing waits for them) to the two around each 15-minute boundary. */
static void old_readings_are_thinned(void **state)
{
    (void)state;
    expect_error("[bus]\n[controller]\ncommunity = elm\nreading_retention_days = -1\n", 4,
                 "reading_retention_days");
    char db[600];
    snprintf(db, sizeof db, "%s/thin.db", tst_dir);
    const char *text = "[bus]\nhost = 127.0.0.1\nport = 1\nbackoff_max_ms = 500\n[controller]\n"
                       "community = elm\ndb = thin.db\nreading_retention_days = 1\n";
    write_conf(text);
    pid_t pid = start(NULL); /* creates the database */
    for (int i = 0; i < 400 && count_readings(db) < 0; i++)
        tst_sleep_ms(25);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    /* two days of readings every 10 s, ending three days ago, from a 15-minute boundary */
    int64_t t0 = ((int64_t)time(NULL) - 5 * 86400) / 900 * 900, n = 2 * 8640;
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *ins;
    assert_int_equal(sqlite3_prepare_v2(h, "INSERT INTO readings VALUES('h-1',?1,500,?2,0,-1,0,?1)",
                                        -1, &ins, NULL),
                     SQLITE_OK);
    for (int64_t k = 0; k < n; k++) {
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, (t0 + k * 10) * 1000);
        sqlite3_bind_int64(ins, 2, 100000 + k);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
    }
    sqlite3_finalize(ins);
    assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(count_readings(db), n);

    write_conf(text);
    pid = start(NULL);
    /* 192 boundaries: the reading on each and the one after it, and the last one (its next is
     * not known yet) */
    int64_t left = n;
    for (int i = 0; i < 2400 && left != 2 * 192 + 1; i++) {
        tst_sleep_ms(25);
        left = count_readings(db);
    }
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(left, 2 * 192 + 1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(errors_name_file_and_line),
        cmocka_unit_test(good_files_are_taken),
        cmocka_unit_test(relative_db_is_next_to_the_config),
        cmocka_unit_test(old_readings_are_thinned),
    };
    return cmocka_run_group_tests(tests, setup, tst_dir_teardown);
}
