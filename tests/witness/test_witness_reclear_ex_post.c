/*
 * A witness re-clearing ex_post blocks (`reclear` in [witness], witness_reclear.c; label
 * integration): a real broker and the real `mgx controller` with timing = ex_post and
 * settlement, at clock speed 3600. Four homes with meters, played by the test as in
 * test_controller_ex_post: homes 0 and 1 send signed standing preferences for interval T (home
 * 1 first a decoy it then replaces with a newer one, so the witness must pick the newest signed
 * one itself), home 3 too but its meter never reports; homes 0, 1 and 2 publish readings across
 * T (home 0 exports 3000 Wh, home 1 2000 Wh, home 2 imports 4000 Wh). T clears to two trades
 * (test_controller_ex_post works the answer by hand). Home 2 reports from T - 2 on and imports
 * 6000 Wh in T - 1, more than its registered 20 kW connection allows in 900 s (5000 Wh): T - 1
 * is held and its import carried into home 2's position in T (10000 Wh), while T was cleared
 * on the 4000 Wh of T itself. Once T is settled:
 *   - a witness with reclear = pay-as-clear cosigns (every block, T included, is the clearing of
 *     the metered energy and the signed preferences, redone outside the controller);
 *   - told pay-as-bid it refuses, naming T (so T was re-cleared, not skipped);
 *   - in a copy, home 0's readings from T's end on raised by 500 Wh (a reading altered in the
 *     store after settlement): refused, naming T and home 0;
 *   - in a copy, home 2's import counter lowered by 1000 Wh up to just after T - 1 began (T - 2
 *     and T keep their energy, the carry from T - 1 does not): refused, naming the carry;
 *   - in a copy, home 1's preferences hidden (deleted): the re-clearing differs, refused;
 *   - in a copy, home 1's newest stored preference with one byte changed: refused as not one
 *     it signed;
 *   - in a copy, home 1's preferences given a later valid_from in the table only: still cosigned
 *     (the witness goes by the signed fields);
 *   - in a copy, good readings across T for home 3 (registered with a meter, silent, so not in
 *     T's block): refused, as a metered home the block leaves out; the same with home 3
 *     registered only after T began: cosigned.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "bus/bus.h"
#include "common/interval.h"
#include "common/wall_clock.h"
#include "homes.h"
#include "orders/pref_msg.h"
#include "shell.h"
#include "witness_run.h"

#define HOMES       4
#define PREFS       5 /* 0, 1, 3, and home 1's decoy (slot 4, for home 1) */
#define COMMUNITY   "wexpost"
#define GRACE_S     3600
#define READ_S      300
#define DEADLINE_MS 90000

typedef struct {
    tst_home homes[HOMES];
    ctl_pref_msg pref[PREFS];
    int home_of[PREFS], has_pref[PREFS], pref_ok[PREFS];
    int64_t pref_sent_ms[PREFS];
    int64_t next_reading_s, target;
    int rejected;
} world;

static world W;

static void on_msg(void *user, const bus_message *m)
{
    (void)user;
    ctl_receipt r;
    if (tst_receipt_parse(m, &r) != 1)
        return;
    for (int i = 0; i < PREFS; i++) {
        if (!W.has_pref[i] || memcmp(r.nonce, W.pref[i].nonce, sizeof r.nonce) != 0)
            continue;
        if (ctl_reason_is_accept(r.reason))
            W.pref_ok[i] = 1;
        else
            W.rejected++;
    }
}

/* Preference slot i for home h, valid from T, made at created_ms. */
static void make_pref(int i, int h, int64_t created_ms)
{
    mkt_preference p;
    memset(&p, 0, sizeof p);
    if (i == 0) {
        p.n_sell_steps = 1;
        p.sell[0] = (mkt_step){1000000, 100000};
    } else if (i == 1) {
        p.n_sell_steps = 2;
        p.sell[0] = (mkt_step){1000, 90000};
        p.sell[1] = (mkt_step){1000000, 150000};
    } else if (i == 4) { /* home 1's decoy, older: must not count */
        p.n_sell_steps = 1;
        p.sell[0] = (mkt_step){1000000, 85000};
    } else {
        p.n_buy_steps = 1;
        p.buy[0] = (mkt_step){1000000, 200000};
    }
    tst_home_make_pref(&W.pref[i], &W.homes[h], COMMUNITY, W.target, created_ms, &p);
    W.home_of[i] = h;
    W.has_pref[i] = 1;
    W.pref_ok[i] = 0;
}

static void send_pref(bus_client *c, int i)
{
    tst_home_send_pref(c, COMMUNITY, &W.homes[W.home_of[i]], &W.pref[i]);
    W.pref_sent_ms[i] = ctl_wall_ms();
}

static int64_t ramp(int64_t ts_s, int64_t from_s, int64_t wh)
{
    int64_t t = ts_s < from_s ? 0 : ts_s > from_s + 900 ? 900 : ts_s - from_s;
    return wh * t / 900;
}

/* Home h's counters at ts_s: flat, then a straight line through T (and for home 2 one through
 * T - 1 too: 6000 Wh, more than its registered 20 kW connection allows, so T - 1 is held and
 * its import carried into T's position), flat after. */
static void reading_at(int h, int64_t ts_s, mtr_sample *s)
{
    static const int64_t export_wh[HOMES] = {3000, 2000, 0, 0};
    static const int64_t import_wh[HOMES] = {0, 0, 4000, 0};
    int64_t start = W.target * 900;
    memset(s, 0, sizeof *s);
    snprintf(s->meter_id, sizeof s->meter_id, "m-%s", W.homes[h].id);
    s->ts_ms = ts_s * 1000;
    s->export_wh = 500000 + ramp(ts_s, start, export_wh[h]);
    s->import_wh = 700000 + ramp(ts_s, start, import_wh[h]);
    s->power_w = (import_wh[h] - export_wh[h]) * 4;
    if (h == 2) {
        s->import_wh += ramp(ts_s, start - 900, 6000);
        if (ts_s >= start - 900 && ts_s < start)
            s->power_w = 6000 * 4;
    }
    s->soc_permille = -1;
}

/* Runs a witness (fresh state per tag) with reclear = mech over db; its output in out. */
static int witness(const char *bin, const char *dir, const char *tag, const char *db,
                   const char *mech, char *out, size_t cap)
{
    char extra[160];
    snprintf(extra, sizeof extra,
             "reclear = %s\nreading_max_gap_s = 300\nmeter_max_power_w = 100000\n", mech);
    int rc = tst_witness_run(bin, dir, tag, db, extra, out, cap);
    fprintf(stderr, "%s (%s): %s", tag, db, out);
    return rc;
}

/* Copies db to dir/name and runs sql on the copy. */
static void altered_copy(const char *db, const char *dir, const char *name, const char *sql)
{
    assert_int_equal(tst_sh("cp %s %s/%s && sqlite3 %s/%s \"%s\"", db, dir, name, dir, name, sql),
                     0);
}

static void reclear_ex_post(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    assert_true(sodium_init() >= 0);
    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char db[TST_CTL_PATH_MAX], conf[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX], anchor[64];
    char out[8192], sql[400], want[160];
    char *dir = tst_controller_dir("wexpost", db, conf, log);
    tst_witness_keys(bin, dir, "wexpost.example/mgx");
    FILE *f = tst_controller_config(conf, tst_broker_port(br), COMMUNITY, db, GRACE_S);
    fprintf(f, "timing = ex_post\n");
    fclose(f);
    memset(&W, 0, sizeof W);
    tst_homes_register(W.homes, HOMES, 1, db, true);
    assert_int_equal(tst_sh("sqlite3 %s \"INSERT INTO participant_limits(id, connection_w) "
                            "VALUES('home-2', 20000)\"",
                            db),
                     0);
    ctl_clock clock = tst_sim_clock(anchor, sizeof anchor);
    bus_client *c = tst_homes_connect(tst_broker_port(br), COMMUNITY, 0, on_msg);
    pid_t ctl = tst_controller_start(bin, conf, anchor, log, NULL);
    int64_t deadline = ctl_wall_ms() + DEADLINE_MS;
    while (tst_sh("grep -q 'community " COMMUNITY "' %s", log) != 0 && ctl_wall_ms() < deadline)
        usleep(20000);
    int targeted = 0, settled = 0;
    while (!settled && ctl_wall_ms() < deadline) {
        bus_loop(c, 5);
        int64_t now_real = ctl_wall_ms();
        int64_t now_sim_s = ctl_clock_sim_ms(&clock, now_real) / 1000;
        if (!targeted || (W.rejected && W.next_reading_s > now_sim_s)) {
            /* T four intervals ahead; again if a preference missed its gate */
            W.target = ctl_interval_id(now_sim_s, 900) + 4;
            W.next_reading_s = (W.target - 2) * 900 - 2 * READ_S; /* home 2 from T - 2 */
            W.rejected = 0;
            int64_t sim_ms = ctl_clock_sim_ms(&clock, now_real);
            make_pref(0, 0, sim_ms);
            make_pref(4, 1, sim_ms - 1000); /* the decoy, older */
            W.has_pref[1] = 0;              /* the real one goes after the decoy's receipt */
            W.pref_ok[1] = 0;
            make_pref(3, 3, sim_ms);
            targeted++;
        }
        if (W.pref_ok[4] && !W.has_pref[1])
            make_pref(1, 1, W.pref[4].created_ms + 1000);
        for (int i = 0; i < PREFS; i++)
            if (W.has_pref[i] && !W.pref_ok[i] && now_real - W.pref_sent_ms[i] >= 100)
                send_pref(c, i);
        while (W.next_reading_s <= now_sim_s &&
               W.next_reading_s <= (W.target + 1) * 900 + 2 * READ_S) {
            for (int h = 0; h < 3; h++) {
                if (h < 2 && W.next_reading_s < W.target * 900 - 2 * READ_S)
                    continue;
                mtr_sample s;
                reading_at(h, W.next_reading_s, &s);
                tst_send_reading(c, COMMUNITY, &s);
            }
            W.next_reading_s += READ_S;
        }
        snprintf(sql, sizeof sql, "SELECT height FROM ledger_block WHERE interval_id = %lld",
                 (long long)W.target);
        settled = tst_db_path_int(db, sql) >= 0;
    }
    tst_controller_stop(ctl);
    assert_true(settled);
    assert_true(W.pref_ok[0] && W.pref_ok[1] && W.pref_ok[3] && W.pref_ok[4]);
    if (targeted > 1)
        print_message("T moved %d times: preferences missed its gate\n", targeted - 1);
    long long t = (long long)W.target;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM trades WHERE interval_id = %lld", t);
    assert_int_equal(tst_db_path_int(db, sql),
                     2); /* the hand-worked answer of test_controller_ex_post */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM interval_timing WHERE interval_id = %lld AND "
             "timing = 'ex_post'",
             t);
    assert_int_equal(tst_db_path_int(db, sql), 1);
    /* home 2's import of the held T - 1 is carried into T's position (the witness must take it
     * out again to get the energy T was cleared with) */
    snprintf(sql, sizeof sql, "SELECT import_wh FROM settle_carry WHERE interval_id = %lld", t);
    assert_int_equal(tst_db_path_int(db, sql), 6000);
    fprintf(stderr, "T = %lld, %lld blocks\n", t,
            (long long)tst_db_path_int(db, "SELECT count(*) FROM ledger_block"));

    /* the honest ledger: re-cleared and cosigned */
    if (witness(bin, dir, "w1", db, "pay-as-clear", out, sizeof out) != 0)
        fail_msg("the witness refused the honest ledger: %s", out);
    tst_expect_in(out, "cosigned log size");
    /* the wrong mechanism: T's re-clearing differs, so T was re-cleared */
    assert_int_equal(witness(bin, dir, "w2", db, "pay-as-bid", out, sizeof out), 1);
    snprintf(want, sizeof want, "interval %lld: the block's 2 trades are not the clearing of", t);
    tst_expect_in(out, want);

    /* home 0's readings from T's end on raised by 500 Wh export after settlement */
    snprintf(sql, sizeof sql,
             "UPDATE readings SET export_wh = export_wh + 500 WHERE meter_id = 'm-home-0' AND "
             "ts_ms >= %lld",
             (long long)((W.target + 1) * 900 * 1000));
    altered_copy(db, dir, "reading.db", sql);
    assert_int_equal(witness(bin, dir, "w3", "reading.db", "pay-as-clear", out, sizeof out), 1);
    snprintf(want, sizeof want, "interval %lld: home-0's settled energy", t);
    tst_expect_in(out, want);
    tst_expect_in(out, "is not what meter m-home-0's stored readings give");

    /* home 2's counter lowered by 1000 Wh up to just after T - 1 began: T - 2 and T settle the
     * same energy, but the rise carried from T - 1 into T is now 7000 Wh, not the 6000 the
     * block carried */
    snprintf(sql, sizeof sql,
             "UPDATE readings SET import_wh = import_wh - 1000 WHERE meter_id = 'm-home-2' AND "
             "ts_ms <= %lld",
             (long long)(((W.target - 1) * 900 + 300) * 1000));
    altered_copy(db, dir, "carry.db", sql);
    assert_int_equal(witness(bin, dir, "w9", "carry.db", "pay-as-clear", out, sizeof out), 1);
    snprintf(want, sizeof want,
             "interval %lld: home-2's carried import (6000 Wh since interval %lld)", t, t - 1);
    tst_expect_in(out, want);

    /* home 1's preferences hidden: it trades at the grid's terms, the clearing differs */
    altered_copy(db, dir, "nopref.db",
                 "DELETE FROM preference_steps WHERE pref_id IN (SELECT pref_id FROM preferences "
                 "WHERE participant = 'home-1'); DELETE FROM preferences WHERE participant = "
                 "'home-1'");
    assert_int_equal(witness(bin, dir, "w4", "nopref.db", "pay-as-clear", out, sizeof out), 1);
    snprintf(want, sizeof want, "interval %lld: the block's 2 trades are not the clearing of", t);
    tst_expect_in(out, want);

    /* home 1's newest preference with a byte changed: not one it signed */
    altered_copy(db, dir, "forged.db",
                 "UPDATE preferences SET signed = substr(signed, 1, 40) || x'ff' || "
                 "substr(signed, 42) WHERE pref_id = (SELECT max(pref_id) FROM preferences WHERE "
                 "participant = 'home-1')");
    assert_int_equal(witness(bin, dir, "w5", "forged.db", "pay-as-clear", out, sizeof out), 1);
    snprintf(want, sizeof want, "interval %lld: home-1's stored preference is not one it signed",
             t);
    tst_expect_in(out, want);

    /* the table's valid_from is not what the witness goes by: moved later (which would hide
     * home 1's preferences from the controller's own lookup), the signed fields still count */
    altered_copy(db, dir, "moved.db",
                 "UPDATE preferences SET valid_from = valid_from + 100 WHERE participant = "
                 "'home-1'");
    if (witness(bin, dir, "w7", "moved.db", "pay-as-clear", out, sizeof out) != 0)
        fail_msg("the witness went by the stored valid_from: %s", out);

    /* home 3 (a meter, no readings: left out of T) given good readings across T in a copy: as
     * if the coordinator had dropped a metered home from the book and the block */
    snprintf(sql, sizeof sql,
             "INSERT INTO readings WITH RECURSIVE t(ts) AS (SELECT %lld UNION ALL SELECT ts + "
             "300000 FROM t WHERE ts < %lld) SELECT 'm-home-3', ts, 0, 100, 200, -1, 0, ts "
             "FROM t",
             (long long)((W.target * 900 - 600) * 1000),
             (long long)(((W.target + 1) * 900 + 600) * 1000));
    altered_copy(db, dir, "dropped.db", sql);
    assert_int_equal(witness(bin, dir, "w6", "dropped.db", "pay-as-clear", out, sizeof out), 1);
    snprintf(want, sizeof want,
             "interval %lld: meter m-home-3 of home-3 has good readings for the interval", t);
    tst_expect_in(out, want);
    tst_expect_in(out, "but the block settles no position for it");
    /* the same with home 3 registered after T began: it need not have been in T's book */
    char sql2[600];
    snprintf(sql2, sizeof sql2, "%s; UPDATE participants SET added_s = %lld WHERE id = 'home-3'",
             sql, (long long)(W.target * 900 + 1));
    altered_copy(db, dir, "late.db", sql2);
    if (witness(bin, dir, "w8", "late.db", "pay-as-clear", out, sizeof out) != 0)
        fail_msg("a home registered after T began was looked for in T: %s", out);

    bus_stop(c, 1000);
    bus_free(c);
    tst_homes_free(W.homes, HOMES);
    tst_broker_free(br);
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(reclear_ex_post)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
