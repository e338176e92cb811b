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
#include "homes.h"
#include "mgx/ledger_record.h"
#include "mgx/topology.h"
#include "shell.h"
#include "witness_run.h"

#define COMMUNITY "gridded"
#define HOMES 6
#define GRACE_S 1800 /* half a real second: intervals wait cleared, unsettled, that long */

static tst_home H[HOMES];
static const tst_order_shape SHAPE = {3, 100, 700, 90000, 60000, 150000, 100000};

/* Homes order every open interval until `blocks` blocks are settled (or the deadline). */
static void trade_until(const char *db, bus_client *c, const ctl_clock *clock, unsigned *seed,
                        int64_t blocks)
{
    tst_homes_trade_until(H, HOMES, COMMUNITY, &SHAPE, db, c, clock, seed, blocks, NULL);
}

/* Runs a witness (fresh state per tag) re-clearing pay-as-clear over db, with the community's
 * config as its topology when topo; its output in out. */
static int witness(const char *bin, const char *dir, const char *tag, const char *db, int topo,
                   char *out, size_t cap)
{
    return tst_witness_run(bin, dir, tag, db,
                           topo ? "reclear = pay-as-clear\ntopology = controller.ini\n"
                                : "reclear = pay-as-clear\n",
                           out, cap);
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
    tst_witness_keys(bin, dir, "grid.example/mgx");
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
    tst_homes_set homes = {H, HOMES};
    bus_client *c = tst_homes_connect_taking(tst_broker_port(br), COMMUNITY, 1000, &homes);
    unsigned seed = 18;
    pid_t ctl = tst_controller_start(bin, conf, anchor, log, NULL);
    trade_until(db, c, &clock, &seed, 6);
    tst_controller_stop(ctl);

    const char *settled = "t.interval_id IN (SELECT interval_id FROM ledger_block)";
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM trade_congestion t WHERE %s AND t.congestion_uc > 0", settled);
    int64_t congested = tst_db_path_int(db, sql);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM grid_nodes t WHERE %s AND t.name = 'weak' AND t.binding = %d "
             "AND t.flow_wh = 100",
             settled, MKT_BIND_EXPORT);
    int64_t binding = tst_db_path_int(db, sql);
    fprintf(stderr,
            "%lld blocks, %lld trades, %lld with congestion rent, weak binding in %lld "
            "intervals\n",
            (long long)tst_db_path_int(db, "SELECT count(*) FROM ledger_block"),
            (long long)tst_db_path_int(db, "SELECT count(*) FROM trades"), (long long)congested,
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
    assert_int_equal(tst_db_path_int(db, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM trades t %s", zone);
    assert_int_equal(tst_db_path_int(db, sql), tst_db_path_int(db, "SELECT count(*) FROM trades"));
    /* every position good: the ledger balances with the rent in the fees */
    assert_int_equal(tst_db_path_int(db, "SELECT count(*) FROM ledger_block"),
                     tst_db_path_int(db, "SELECT count(DISTINCT interval_id) FROM ledger_block"));
    int64_t fees = ledger_balances(db);
    snprintf(sql, sizeof sql,
             "SELECT (SELECT sum(fee_uc) FROM trades t WHERE %s) + (SELECT "
             "coalesce(sum(congestion_uc), 0) FROM trade_congestion t WHERE %s)",
             settled, settled);
    assert_int_equal(fees, tst_db_path_int(db, sql));

    assert_int_equal(tst_sh("%s ledger verify %s --vkey-file %s/community.vkey > /dev/null 2>&1",
                            bin, db, dir),
                     0);
    if (witness(bin, dir, "w1", db, 1, out, sizeof out) != 0)
        fail_msg("the witness refused the honest ledger: %s", out);
    tst_expect_in(out, "cosigned log size");
    /* a witness that re-clears as a copper plate does not get the block's trades */
    assert_int_equal(witness(bin, dir, "w2", db, 0, out, sizeof out), 1);
    tst_expect_in(out, "interval ");

    /* the coordinator raises one trade's rent in a cleared, not yet settled interval */
    const char *pick = "SELECT min(c.interval_id) FROM trade_congestion c WHERE c.interval_id > "
                       "(SELECT max(interval_id) FROM ledger_block)";
    int64_t iv = tst_db_path_int(db, pick);
    for (int tries = 0; iv <= 0 && tries < 5; tries++) {
        ctl = tst_controller_start(bin, conf, anchor, log, NULL);
        trade_until(db, c, &clock, &seed,
                    tst_db_path_int(db, "SELECT count(*) FROM ledger_block") + 1);
        tst_controller_stop(ctl);
        iv = tst_db_path_int(db, pick);
    }
    assert_true(iv > 0);
    snprintf(sql, sizeof sql,
             "sqlite3 %s \"UPDATE trade_congestion SET congestion_uc = congestion_uc + 1000 "
             "WHERE interval_id = %lld AND seq = (SELECT min(seq) FROM trade_congestion WHERE "
             "interval_id = %lld)\"",
             db, (long long)iv, (long long)iv);
    assert_int_equal(tst_sh("%s", sql), 0);
    tst_witness_settle_altered(bin, conf, anchor, log, c, db, dir, iv);
    assert_int_equal(witness(bin, dir, "w3", db, 1, out, sizeof out), 1);
    char want[64];
    snprintf(want, sizeof want, "interval %lld: the block's trade", (long long)iv);
    tst_expect_in(out, want);
    tst_expect_in(out, "congestion rent");

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
