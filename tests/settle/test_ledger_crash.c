/*
 * Crash tests of exactly-once settlement (label integration). The real mgx binary settles
 * intervals into one SQLite file and is killed with SIGKILL:
 *   - at each named crash point inside ctl_ledger_settle (MGX_CRASH_AT, 20 hits per point);
 *   - at random moments by this test (kill -9 after a random delay, 40 runs; 20 when sanitized).
 * After every kill, `mgx ledger verify` must pass, and settling the interval again must end
 * with exactly one block for it: intervals are never lost or duplicated. At the end the block
 * count equals the number of distinct intervals and verify passes once more.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "broker.h"

#ifndef MGX_CRASH_RANDOM_RUNS
#define MGX_CRASH_RANDOM_RUNS 40 /* the sanitized build runs 20: each process starts slower */
#endif
#include "ledger_harness.h"

static char db[512], key[512], vkey[512], out[512], err[512];

static void verify_ok(const char *when)
{
    const char *a[] = {"ledger", "verify", db, "--vkey-file", vkey, NULL};
    int st = lh_run(a, NULL, out, err);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char msg[2048] = "";
        lh_slurp(err, msg, sizeof msg);
        fail_msg("verify failed %s: %s", when, msg);
    }
}

static long long blocks_for(int64_t interval, long long *total)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st;
    long long n = 0;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM ledger_block WHERE interval_id=?1",
                                        -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, interval);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM ledger_block", -1, &st, NULL),
                     SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        *total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

static int setup(void **state)
{
    if (tst_dir_setup(state) != 0)
        return -1;
    snprintf(db, sizeof db, "%s/l.db", tst_dir);
    snprintf(key, sizeof key, "%s/k.skey", tst_dir);
    snprintf(vkey, sizeof vkey, "%s/k.vkey", tst_dir);
    snprintf(out, sizeof out, "%s/out", tst_dir);
    snprintf(err, sizeof err, "%s/err", tst_dir);
    const char *a[] = {"ledger", "keygen", "crash.example", "--out", key, NULL};
    assert_int_equal(WEXITSTATUS(lh_run(a, NULL, vkey, NULL)), 0);
    return 0;
}

static void named_points(void **state)
{
    (void)state;
    static const char *points[] = {"ledger.begin", "ledger.after_txs", "ledger.after_nodes",
                                   "ledger.after_block", "ledger.before_commit",
                                   "ledger.after_commit"};
    enum { HITS = 20 };
    int64_t interval = 2000000;
    long long total = 0, settled = 0;
    char in[512];
    for (size_t p = 0; p < sizeof points / sizeof points[0]; p++) {
        int hits = 0;
        for (int i = 0; i < HITS; i++, interval++) {
            snprintf(in, sizeof in, "%s/in.json", tst_dir);
            lh_write_input(in, interval, 20 + i, 10, (uint64_t)interval);
            const char *a[] = {"ledger", "settle", db, "--input", in, "--key", key, NULL};
            int st = lh_run(a, points[p], NULL, NULL);
            if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
                hits++;
            verify_ok(points[p]);
            long long n = blocks_for(interval, &total);
            /* before the commit nothing is stored; after it, the whole block */
            assert_int_equal(n, strcmp(points[p], "ledger.after_commit") == 0 ? 1 : 0);
            /* restart: the interval is settled exactly once */
            st = lh_run(a, NULL, out, NULL);
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
            assert_int_equal(blocks_for(interval, &total), 1);
            settled++;
            assert_int_equal(total, settled);
        }
        printf("crash point %-22s hit %d times\n", points[p], hits);
        assert_int_equal(hits, HITS);
    }
    verify_ok("at the end");
}

static void random_kills(void **state)
{
    (void)state;
    enum { RUNS = MGX_CRASH_RANDOM_RUNS };
    long long total = 0, before = 0;
    snprintf(db, sizeof db, "%s/random.db", tst_dir); /* its own ledger, so verify stays quick */
    char in[512];
    unsigned seed = 12345;
    int killed_mid = 0, finished = 0;
    /* Calibrate: time one whole uninterrupted settle of the same size (process start included),
     * so the random kill moments spread over a real run on fast and slow builds alike. */
    struct timespec t0, t1;
    snprintf(in, sizeof in, "%s/big.json", tst_dir);
    lh_write_input(in, 2999999, 1000, 150, 76);
    const char *cal[] = {"ledger", "settle", db, "--input", in, "--key", key, NULL};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int cst = lh_run(cal, NULL, out, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(WIFEXITED(cst) && WEXITSTATUS(cst) == 0);
    long run_ms = (t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L;
    if (run_ms < 2)
        run_ms = 2;
    before = 1; /* the calibration block */
    for (int i = 0; i < RUNS; i++) {
        int64_t interval = 3000000 + i;
        snprintf(in, sizeof in, "%s/big.json", tst_dir);
        lh_write_input(in, interval, 1000, 150, (uint64_t)(i + 77));
        const char *a[] = {"ledger", "settle", db, "--input", in, "--key", key, NULL};
        pid_t pid = lh_start(a, NULL);
        seed = seed * 1103515245u + 12345u;
        long delay_ms = (long)((seed >> 8) % (unsigned)run_ms);
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        verify_ok("after a random kill -9");
        long long n = blocks_for(interval, &total);
        assert_true(n == 0 || n == 1);
        if (WIFSIGNALED(st))
            killed_mid += n == 0;
        else
            finished++;
        st = lh_run(a, NULL, out, err);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            char msg[2048];
            lh_slurp(err, msg, sizeof msg);
            fail_msg("re-run after a kill -9 (delay %ld ms, status %d): %s", delay_ms, st, msg);
        }
        assert_int_equal(blocks_for(interval, &total), 1);
        assert_int_equal(total, before + i + 1);
    }
    printf("random kill -9: %d runs over a %ld ms settle, %d killed before their commit, %d had "
           "finished\n", RUNS, run_ms, killed_mid, finished);
    /* the delays must land inside settlement often enough to mean something */
    assert_true(killed_mid >= RUNS / 4);
    verify_ok("at the end");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(named_points),
        cmocka_unit_test(random_kills),
    };
    return cmocka_run_group_tests(tests, setup, tst_dir_teardown);
}
