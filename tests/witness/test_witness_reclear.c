/*
 * A witness re-clearing the market from the orders the homes signed (`reclear` in [witness],
 * witness_reclear.c; label integration): a real broker, the real `mgx controller` at clock
 * speed 3600 with settlement, six homes sending signed orders for every interval (pay-as-bid,
 * so tie order and every home's price matter), then:
 *   - a witness with reclear = pay-as-bid cosigns: every block's trades are exactly the clearing
 *     of its signed orders, redone outside the controller (home 0 replaces each of its orders
 *     once, so the witness must pick the later one itself);
 *   - the same witness told the wrong mechanism (pay-as-clear) refuses;
 *   - the coordinator alters an interval's clearing after the gate (a trade price changed in the
 *     database before settlement, so the ledger is signed over it): a fresh witness refuses and
 *     names the interval, while `mgx ledger verify` with the community key alone passes;
 *   - one stored order whose signed bytes were changed: refused as not an order its home signed;
 *   - an accepted order hidden by the store (status set to rejected): the re-clearing differs,
 *     refused.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "homes.h"
#include "shell.h"
#include "witness_run.h"

#define COMMUNITY "reclear"
#define HOMES 6
#define GRACE_S 1800 /* half a real second: intervals wait cleared, unsettled, that long */

static tst_home H[HOMES];
static const tst_order_shape SHAPE = {3, 100, 700, 90000, 60000, 150000, 100000};

/* the last interval home 0 replaced its order for: the witness must take the later one */
static int64_t replaced;

/* Homes order every open interval until `blocks` blocks are settled (or the deadline). */
static void trade_until(const char *db, bus_client *c, const ctl_clock *clock, unsigned *seed,
                        int64_t blocks)
{
    tst_homes_trade_until(H, HOMES, COMMUNITY, &SHAPE, db, c, clock, seed, blocks, &replaced);
}

/* Runs a witness (fresh state per tag) with reclear = mech over db; its output in out. */
static int witness(const char *bin, const char *dir, const char *tag, const char *db,
                   const char *mech, char *out, size_t cap)
{
    char extra[64];
    snprintf(extra, sizeof extra, "reclear = %s\n", mech);
    return tst_witness_run(bin, dir, tag, db, extra, out, cap);
}

static void reclear_from_signed_orders(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char db[TST_CTL_PATH_MAX], conf[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX], anchor[64];
    char out[8192];
    char *dir = tst_controller_dir("reclear", db, conf, log);
    tst_witness_keys(bin, dir, "reclear.example/mgx");
    FILE *cf = tst_controller_config(conf, tst_broker_port(br), COMMUNITY, db, GRACE_S);
    fputs("mechanism = pay-as-bid\n", cf);
    fclose(cf);
    tst_homes_register(H, HOMES, 7, db, false);
    ctl_clock clock = tst_sim_clock(anchor, sizeof anchor);
    tst_homes_set homes = {H, HOMES};
    bus_client *c = tst_homes_connect_taking(tst_broker_port(br), COMMUNITY, 1000, &homes);
    unsigned seed = 16;
    pid_t ctl = tst_controller_start(bin, conf, anchor, log, NULL);
    trade_until(db, c, &clock, &seed, 6);
    tst_controller_stop(ctl);
    int64_t trades = tst_db_path_int(db, "SELECT count(*) FROM trades");
    fprintf(stderr, "%lld blocks, %lld trades, %lld orders replaced\n",
            (long long)tst_db_path_int(db, "SELECT count(*) FROM ledger_block"), (long long)trades,
            (long long)tst_db_path_int(db, "SELECT count(*) FROM orders WHERE superseded = 1"));
    assert_true(trades > 0);
    assert_true(
        tst_db_path_int(db, "SELECT count(*) FROM orders o JOIN ledger_block b USING(interval_id) "
                            "WHERE o.superseded = 1") > 0);

    /* the honest ledger: re-cleared and cosigned; the wrong mechanism is refused */
    if (witness(bin, dir, "w1", db, "pay-as-bid", out, sizeof out) != 0)
        fail_msg("the witness refused the honest ledger: %s", out);
    tst_expect_in(out, "cosigned log size");
    assert_int_equal(witness(bin, dir, "w2", db, "pay-as-clear", out, sizeof out), 1);
    tst_expect_in(out, "are not the clearing of the");

    /* a signed order altered in a copy: not an order its home signed */
    assert_int_equal(tst_sh("cp %s %s/forged.db && sqlite3 %s/forged.db \"UPDATE orders SET "
                            "signed = substr(signed, 1, 40) || x'ff' || substr(signed, 42) "
                            "WHERE order_id = (SELECT min(o.order_id) FROM orders o JOIN "
                            "ledger_block b ON b.interval_id = o.interval_id WHERE o.status = 1)\"",
                            db, dir, dir),
                     0);
    assert_int_equal(witness(bin, dir, "w3", "forged.db", "pay-as-bid", out, sizeof out), 1);
    tst_expect_in(out, "is not an order it signed for this interval");
    /* an accepted order hidden in a copy: the clearing of the rest differs from the ledger */
    assert_int_equal(tst_sh("cp %s %s/hidden.db && sqlite3 %s/hidden.db \"UPDATE orders SET "
                            "status = 0 WHERE order_id = (SELECT o.order_id FROM orders o JOIN "
                            "trades t ON t.interval_id = o.interval_id AND t.seller = "
                            "o.participant JOIN ledger_block b ON b.interval_id = o.interval_id WHERE o.status = 1 "
                            "AND o.superseded = 0 LIMIT 1)\"",
                            db, dir, dir),
                     0);
    assert_int_equal(witness(bin, dir, "w4", "hidden.db", "pay-as-bid", out, sizeof out), 1);
    tst_expect_in(out, "are not the clearing of the");

    /* the coordinator changes a cleared, not yet settled interval's trade price, then settles */
    int64_t iv =
        tst_db_path_int(db, "SELECT min(t.interval_id) FROM trades t WHERE t.interval_id > "
                            "(SELECT max(interval_id) FROM ledger_block)");
    if (iv < 0) { /* every traded interval settled already: let one more be cleared first */
        ctl = tst_controller_start(bin, conf, anchor, log, NULL);
        trade_until(db, c, &clock, &seed,
                    tst_db_path_int(db, "SELECT count(*) FROM ledger_block") + 1);
        tst_controller_stop(ctl);
        iv = tst_db_path_int(db, "SELECT min(t.interval_id) FROM trades t WHERE t.interval_id > "
                                 "(SELECT max(interval_id) FROM ledger_block)");
    }
    assert_true(iv > 0);
    assert_int_equal(tst_sh("sqlite3 %s \"UPDATE trades SET price_uc_per_kwh = price_uc_per_kwh "
                            "+ 1000, amount_uc = energy_wh * (price_uc_per_kwh + 1000) / 1000 "
                            "WHERE interval_id = %lld\"",
                            db, (long long)iv),
                     0);
    tst_witness_settle_altered(bin, conf, anchor, log, c, db, dir, iv);
    assert_int_equal(witness(bin, dir, "w5", db, "pay-as-bid", out, sizeof out), 1);
    char want[64];
    snprintf(want, sizeof want, "interval %lld: the block's", (long long)iv);
    tst_expect_in(out, want);
    /* the first witness, which cosigned the honest blocks, re-clears only the blocks after its
     * checkpoint and refuses the same interval */
    assert_int_equal(tst_sh("%s witness %s/w1.ini --once > %s/w1-again.out 2>&1", bin, dir, dir),
                     1);
    char again[700];
    snprintf(again, sizeof again, "%s/w1-again.out", dir);
    tst_witness_output(again, out, sizeof out);
    tst_expect_in(out, want);

    bus_free(c);
    tst_homes_free(H, HOMES);
    tst_broker_free(br);
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(reclear_from_signed_orders)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
