/*
 * Grid-aware clearing in the live market (issue 18; label integration): a real broker, the real
 * `mgx controller` at clock speed 3600 with settlement and a [topology] whose feeder "weak"
 * (homes 0, 1 and 2) may export 0.4 kW (100 Wh a quarter hour) while "street" (homes 3, 4, 5)
 * is unlimited, with a fee of 2000 uc/kWh per level; six homes send signed orders (even homes
 * sell, odd homes buy, pay-as-clear) and the meters' readings are stored so every trade is
 * delivered. Then:
 *   - congestion shows: trades owe congestion rent, weak's limit binds;
 *   - every trade is priced at its seller's zone and its buyer pays its own zone's price
 *     (amount + rent == floor(e * buyer's zone price / 1000));
 *   - each ledger trade's fee is the stored fee plus the rent, and every block balances exactly:
 *     paid == received + fees + rounding, the fees being the flat and level fees plus the rent;
 *   - `mgx ledger verify` passes, and a witness re-clearing with the community's config
 *     (topology = controller.ini) cosigns; one without the topology refuses;
 *   - the coordinator raises one trade's rent after the gate (before settlement, so the ledger
 *     is signed over it): verify with the key alone passes, a witness refuses and names the
 *     trade's fee.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "common/wall_clock.h"
#include "homes.h"
#include "mgx/ledger_record.h"
#include "mgx/topology.h"
#include "shell.h"

#define COMMUNITY "gridded"
#define HOMES 6
#define GRACE_S 1800 /* half a real second: intervals wait cleared, unsettled, that long */

static tst_home H[HOMES];
static const tst_order_shape SHAPE = {3, 100, 700, 90000, 60000, 150000, 100000};

static void on_msg(void *user, const bus_message *m)
{
    (void)user;
    ctl_receipt r;
    if (tst_receipt_parse(m, &r) == 1)
        tst_homes_take_receipt(H, HOMES, &r);
}

static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        else
            fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

/* Homes order every open interval until `blocks` blocks are settled (or the deadline). */
static void trade_until(const char *db, bus_client *c, const ctl_clock *clock, unsigned *seed,
                        int64_t blocks)
{
    const ctl_interval_rules rules = {900, 300, 4};
    int64_t deadline = ctl_wall_ms() + 120000, next_check = 0;
    for (;;) {
        int64_t now = ctl_wall_ms();
        if (now >= next_check) {
            if (db_int(db, "SELECT count(*) FROM ledger_block") >= blocks)
                return;
            if (now > deadline)
                fail_msg("fewer than %lld blocks settled before the deadline", (long long)blocks);
            next_check = now + 500;
        }
        bus_loop(c, 5);
        int64_t sim_ms = ctl_clock_sim_ms(clock, ctl_wall_ms());
        int64_t target = ctl_interval_first_open(sim_ms / 1000 + 100, &rules);
        for (int h = 0; h < HOMES; h++) {
            tst_home *hm = &H[h];
            if (!hm->has_pending && hm->done_interval < target)
                tst_home_make_order(H, h, COMMUNITY, target, sim_ms, seed, &SHAPE);
            if (hm->has_pending && ctl_wall_ms() - hm->last_sent_ms > 150)
                tst_home_send_order(c, COMMUNITY, hm);
        }
    }
}

/* Runs a witness (fresh state per tag) re-clearing pay-as-clear over db, with the community's
 * config as its topology when topo; its output in out. */
static int witness(const char *bin, const char *dir, const char *tag, const char *db, int topo,
                   char *out, size_t cap)
{
    tst_sh("rm -f %s/%s.state %s/%s.cosigned", dir, tag, dir, tag);
    char ini[600];
    snprintf(ini, sizeof ini, "%s/%s.ini", dir, tag);
    FILE *f = fopen(ini, "w");
    assert_non_null(f);
    fprintf(f,
            "[witness]\nname = witness.example/%s\nkey_file = w.key\nledger = %s\n"
            "log_key_file = community.vkey\nstate = %s.state\nout = %s.cosigned\n"
            "reclear = pay-as-clear\n%s",
            tag, db, tag, tag, topo ? "topology = controller.ini\n" : "");
    fclose(f);
    int rc = tst_sh("%s witness %s --once > %s/%s.out 2>&1", bin, ini, dir, tag);
    char path[700];
    snprintf(path, sizeof path, "%s/%s.out", dir, tag);
    f = fopen(path, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = 0;
    if (f)
        fclose(f);
    return rc;
}

static void expect_in(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("expected '%s' in: %s", want, text);
}

/* Every ledger trade's fee is the stored fee plus its rent, fully delivered, and every block
 * balances exactly. Returns the sum of the ledger's fees. */
static int64_t ledger_balances(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st, *row;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT t.fee_uc + coalesce(c.congestion_uc, 0), t.amount_uc FROM "
                           "trades t LEFT JOIN trade_congestion c USING(interval_id, seq) "
                           "WHERE t.interval_id = ?1 AND t.seq = ?2",
                           -1, &row, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT b.body, x.body FROM ledger_tx x JOIN ledger_block "
                                        "b USING(height) ORDER BY x.log_index",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int64_t fees_all = 0, paid = 0, received = 0, fees = 0, rounding = 0;
    int64_t height = -1, n_trades = 0;
    stl_block b;
    memset(&b, 0, sizeof b);
    for (int rc = sqlite3_step(st);; rc = sqlite3_step(st)) {
        stl_block nb;
        int done = rc != SQLITE_ROW;
        if (!done)
            assert_int_equal(stl_block_decode(sqlite3_column_blob(st, 0),
                                              (size_t)sqlite3_column_bytes(st, 0), &nb),
                             STL_OK);
        if (done || (int64_t)nb.height != height) {
            if (height >= 0) { /* the block before: its totals are the sums of its trades */
                assert_int_equal(b.totals.paid_uc, paid);
                assert_int_equal(b.totals.received_uc, received);
                assert_int_equal(b.totals.fees_uc, fees);
                assert_int_equal(b.totals.rounding_uc, rounding);
                assert_int_equal(paid, received + fees + rounding);
                fees_all += fees;
            }
            if (done)
                break;
            b = nb;
            height = (int64_t)nb.height;
            paid = received = fees = rounding = 0;
        }
        stl_tx tx;
        assert_int_equal(stl_tx_decode(sqlite3_column_blob(st, 1),
                                       (size_t)sqlite3_column_bytes(st, 1), &tx),
                         STL_OK);
        if (tx.kind != STL_TX_TRADE)
            continue;
        const stl_settled_trade *t = &tx.trade;
        sqlite3_reset(row);
        sqlite3_bind_int64(row, 1, tx.interval_id);
        sqlite3_bind_int64(row, 2, tx.seq);
        assert_int_equal(sqlite3_step(row), SQLITE_ROW);
        assert_int_equal(t->contract_fee_uc, sqlite3_column_int64(row, 0));
        assert_int_equal(t->amount_uc, sqlite3_column_int64(row, 1));
        assert_int_equal(t->delivered_wh, t->contracted_wh);
        assert_int_equal(t->paid_uc, t->amount_uc + t->contract_fee_uc);
        assert_int_equal(t->paid_uc, t->received_uc + t->fee_uc + t->rounding_uc);
        paid += t->paid_uc, received += t->received_uc, fees += t->fee_uc;
        rounding += t->rounding_uc;
        n_trades++;
    }
    assert_true(n_trades > 0);
    sqlite3_finalize(row);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return fees_all;
}

static void weak_feeder_live(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char db[TST_CTL_PATH_MAX], conf[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX], anchor[64];
    char out[8192];
    char *dir = tst_controller_dir("grid", db, conf, log);
    assert_int_equal(tst_sh("cd %s && %s ledger keygen grid.example/mgx --out community.skey "
                            "> community.vkey && %s keygen --out w > /dev/null",
                            dir, bin, bin),
                     0);
    FILE *cf = tst_controller_config(conf, tst_broker_port(br), COMMUNITY, db, GRACE_S);
    fputs("[topology]\nlevel_fee_uc_per_kwh = 2000\n"
          "[feeder weak]\nexport_kw = 0.4\nhomes = home-0 home-1 home-2\n"
          "[feeder street]\nhomes = home-3 home-4 home-5\n",
          cf);
    fclose(cf);
    tst_homes_register(H, HOMES, 7, db, true);
    ctl_clock clock = tst_sim_clock(anchor, sizeof anchor);
    /* every meter's counters rise 1000 Wh per 5 minutes from an hour before the start, for
     * three simulated days: sellers (even) export, buyers (odd) import, beyond any order */
    int64_t t0 = clock.sim0_ms / 1000 - 3600;
    assert_int_equal(
        tst_sh("sqlite3 %s \"INSERT INTO readings WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL "
               "SELECT i + 1 FROM k WHERE i < 2000), h(n) AS (VALUES (0),(1),(2),(3),(4),(5)) "
               "SELECT 'm-home-' || n, (%lld + 300 * i) * 1000, CASE n %% 2 WHEN 0 THEN -12000 "
               "ELSE 12000 END, CASE n %% 2 WHEN 1 THEN 1000 * i ELSE 0 END, CASE n %% 2 WHEN 0 "
               "THEN 1000 * i ELSE 0 END, -1, 0, 0 FROM k, h\"",
               db, (long long)t0),
        0);
    bus_client *c = tst_homes_connect(tst_broker_port(br), COMMUNITY, 1000, on_msg);
    unsigned seed = 18;
    pid_t ctl = tst_controller_start(bin, conf, anchor, log, NULL);
    trade_until(db, c, &clock, &seed, 6);
    tst_controller_stop(ctl);

    const char *settled = "t.interval_id IN (SELECT interval_id FROM ledger_block)";
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM trade_congestion t WHERE %s AND t.congestion_uc > 0", settled);
    int64_t congested = db_int(db, sql);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM grid_nodes t WHERE %s AND t.name = 'weak' AND t.binding = %d "
             "AND t.flow_wh = 100",
             settled, MKT_BIND_EXPORT);
    int64_t binding = db_int(db, sql);
    fprintf(stderr, "%lld blocks, %lld trades, %lld with congestion rent, weak binding in %lld "
                    "intervals\n",
            (long long)db_int(db, "SELECT count(*) FROM ledger_block"),
            (long long)db_int(db, "SELECT count(*) FROM trades"), (long long)congested,
            (long long)binding);
    assert_true(congested > 0);
    assert_true(binding > 0);
    /* zone prices: the seller's zone price is the trade's, the buyer pays its own zone's */
    const char *zone = "JOIN grid_nodes gs ON gs.interval_id = t.interval_id AND gs.node = "
                       "(CASE WHEN t.seller IN ('home-0','home-1','home-2') THEN 1 ELSE 2 END) "
                       "JOIN grid_nodes gb ON gb.interval_id = t.interval_id AND gb.node = "
                       "(CASE WHEN t.buyer IN ('home-0','home-1','home-2') THEN 1 ELSE 2 END) "
                       "LEFT JOIN trade_congestion c USING(interval_id, seq)";
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM trades t %s WHERE t.price_uc_per_kwh != gs.price_uc_per_kwh "
             "OR t.amount_uc + coalesce(c.congestion_uc, 0) != t.energy_wh * gb.price_uc_per_kwh "
             "/ 1000",
             zone);
    assert_int_equal(db_int(db, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM trades t %s", zone);
    assert_int_equal(db_int(db, sql), db_int(db, "SELECT count(*) FROM trades"));
    /* every position good: the ledger balances with the rent in the fees */
    assert_int_equal(db_int(db, "SELECT count(*) FROM ledger_block"),
                     db_int(db, "SELECT count(DISTINCT interval_id) FROM ledger_block"));
    int64_t fees = ledger_balances(db);
    snprintf(sql, sizeof sql,
             "SELECT (SELECT sum(fee_uc) FROM trades t WHERE %s) + (SELECT "
             "coalesce(sum(congestion_uc), 0) FROM trade_congestion t WHERE %s)",
             settled, settled);
    assert_int_equal(fees, db_int(db, sql));

    assert_int_equal(tst_sh("%s ledger verify %s --vkey-file %s/community.vkey > /dev/null 2>&1",
                            bin, db, dir),
                     0);
    if (witness(bin, dir, "w1", db, 1, out, sizeof out) != 0)
        fail_msg("the witness refused the honest ledger: %s", out);
    expect_in(out, "cosigned log size");
    /* a witness that re-clears as a copper plate does not get the block's trades */
    assert_int_equal(witness(bin, dir, "w2", db, 0, out, sizeof out), 1);
    expect_in(out, "interval ");

    /* the coordinator raises one trade's rent in a cleared, not yet settled interval */
    const char *pick = "SELECT min(c.interval_id) FROM trade_congestion c WHERE c.interval_id > "
                       "(SELECT max(interval_id) FROM ledger_block)";
    int64_t iv = db_int(db, pick);
    for (int tries = 0; iv <= 0 && tries < 5; tries++) {
        ctl = tst_controller_start(bin, conf, anchor, log, NULL);
        trade_until(db, c, &clock, &seed, db_int(db, "SELECT count(*) FROM ledger_block") + 1);
        tst_controller_stop(ctl);
        iv = db_int(db, pick);
    }
    assert_true(iv > 0);
    snprintf(sql, sizeof sql,
             "sqlite3 %s \"UPDATE trade_congestion SET congestion_uc = congestion_uc + 1000 "
             "WHERE interval_id = %lld AND seq = (SELECT min(seq) FROM trade_congestion WHERE "
             "interval_id = %lld)\"",
             db, (long long)iv, (long long)iv);
    assert_int_equal(tst_sh("%s", sql), 0);
    ctl = tst_controller_start(bin, conf, anchor, log, NULL);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM ledger_block WHERE interval_id >= %lld",
             (long long)iv);
    int64_t until = ctl_wall_ms() + 120000;
    while (db_int(db, sql) < 1 && ctl_wall_ms() < until)
        bus_loop(c, 50);
    tst_controller_stop(ctl);
    assert_true(db_int(db, sql) >= 1);
    assert_int_equal(tst_sh("%s ledger verify %s --vkey-file %s/community.vkey > /dev/null 2>&1",
                            bin, db, dir),
                     0); /* the community key alone cannot tell */
    assert_int_equal(witness(bin, dir, "w3", db, 1, out, sizeof out), 1);
    char want[64];
    snprintf(want, sizeof want, "interval %lld: the block's trade", (long long)iv);
    expect_in(out, want);
    expect_in(out, "congestion rent");

    bus_free(c);
    tst_homes_free(H, HOMES);
    tst_broker_free(br);
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(weak_feeder_live)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
