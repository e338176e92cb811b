/*
 * Unit tests of the meter keys and reading tiers (controller/db/meter_keys.c) on a real SQLite
 * file: keys registered, replaced, looked up and removed with their length rules; tiers
 * recorded after their readings (the first kept, as the readings table keeps the first
 * reading), and the lowest tier of a window, the rule a settled position's attestation follows
 * (settle_input.c): a reading without a tier row counts as 0, and so does a window without
 * readings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker.h"
#include "db/meter_keys.h"
#include "db/store.h"

static mtr_sample reading(const char *meter, int64_t ts)
{
    mtr_sample s = {.ts_ms = ts, .import_wh = ts / 1000, .soc_permille = -1};
    snprintf(s.meter_id, sizeof s.meter_id, "%s", meter);
    return s;
}

static ctl_store *open_store(const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", tst_dir, name);
    ctl_store_identity id = {"c", 900, 0};
    ctl_store *s = NULL;
    char err[300];
    assert_int_equal(ctl_store_open(path, &id, &s, err, sizeof err), CTL_ST_OK);
    return s;
}

static void test_keys(void **state)
{
    (void)state;
    ctl_store *s = open_store("keys.db");
    ctl_db *db = ctl_store_db(s);
    uint8_t k32[32], k91[91], out[CTL_MKEY_MAX];
    memset(k32, 7, sizeof k32);
    memset(k91, 9, sizeof k91);
    size_t n = 0;
    assert_int_equal(ctl_meter_key_get(db, "m1", CTL_MKEY_GATEWAY, out, sizeof out, &n), 1);
    assert_int_equal(ctl_meter_key_set(db, "m1", CTL_MKEY_GATEWAY, k32, 32, 1), CTL_DB_OK);
    assert_int_equal(ctl_meter_key_set(db, "m1", CTL_MKEY_CERTIFIED, k91, 91, 1), CTL_DB_OK);
    assert_int_equal(ctl_meter_key_get(db, "m1", CTL_MKEY_GATEWAY, out, sizeof out, &n),
                     CTL_DB_OK);
    assert_int_equal(n, 32);
    assert_memory_equal(out, k32, 32);
    assert_int_equal(ctl_meter_key_get(db, "m1", CTL_MKEY_CERTIFIED, out, sizeof out, &n),
                     CTL_DB_OK);
    assert_int_equal(n, 91);
    /* a gateway key is exactly 32 bytes; ids follow the id rule; kinds are 1 and 2 */
    assert_int_equal(ctl_meter_key_set(db, "m1", CTL_MKEY_GATEWAY, k91, 31, 1), CTL_DB_E_INVAL);
    assert_int_equal(ctl_meter_key_set(db, "m/1", CTL_MKEY_GATEWAY, k32, 32, 1), CTL_DB_E_INVAL);
    assert_int_equal(ctl_meter_key_set(db, "m1", 3, k32, 32, 1), CTL_DB_E_INVAL);
    /* replaced, then removed */
    k32[0] = 1;
    assert_int_equal(ctl_meter_key_set(db, "m1", CTL_MKEY_GATEWAY, k32, 32, 2), CTL_DB_OK);
    assert_int_equal(ctl_meter_key_get(db, "m1", CTL_MKEY_GATEWAY, out, sizeof out, &n),
                     CTL_DB_OK);
    assert_int_equal(out[0], 1);
    assert_int_equal(ctl_meter_key_get(db, "m1", CTL_MKEY_CERTIFIED, out, 10, &n),
                     CTL_DB_E_INVAL); /* too small a buffer */
    assert_int_equal(ctl_meter_key_remove(db, "m1", CTL_MKEY_GATEWAY), CTL_DB_OK);
    assert_int_equal(ctl_meter_key_get(db, "m1", CTL_MKEY_GATEWAY, out, sizeof out, &n), 1);
    assert_int_equal(ctl_meter_key_get(db, "m1", CTL_MKEY_CERTIFIED, out, sizeof out, &n),
                     CTL_DB_OK);
    ctl_store_free(s);
}

static void test_tiers(void **state)
{
    (void)state;
    ctl_store *s = open_store("tiers.db");
    ctl_db *db = ctl_store_db(s);
    /* m1: readings at 1, 2, 3, 4 s with tiers 2, 1, (none), 2 */
    mtr_sample r[4] = {reading("m1", 1000), reading("m1", 2000), reading("m1", 3000),
                       reading("m1", 4000)};
    size_t ins = 0;
    assert_int_equal(ctl_store_put_readings(s, r, 4, 0, &ins), CTL_ST_OK);
    assert_int_equal(ins, 4);
    int tiers[4] = {2, 1, 0, 2};
    mtr_sample with_tier[3] = {r[0], r[1], r[3]};
    int t3[3] = {tiers[0], tiers[1], tiers[3]};
    assert_int_equal(ctl_reading_tiers_put(db, with_tier, t3, 3), CTL_DB_OK);
    int tier = -1;
    int64_t count = -1;
    assert_int_equal(ctl_reading_tier_min(db, "m1", 1000, 2000, &tier, &count), CTL_DB_OK);
    assert_int_equal(tier, 2); /* [1 s, 2 s): the first only */
    assert_int_equal(count, 1);
    assert_int_equal(ctl_reading_tier_min(db, "m1", 1000, 3000, &tier, &count), CTL_DB_OK);
    assert_int_equal(tier, 1); /* the lowest */
    assert_int_equal(ctl_reading_tier_min(db, "m1", 0, 5000, &tier, &count), CTL_DB_OK);
    assert_int_equal(tier, 0); /* the reading at 3 s has no tier row: it counts as 0 */
    assert_int_equal(count, 4);
    assert_int_equal(ctl_reading_tier_min(db, "m1", 4000, 5000, &tier, &count), CTL_DB_OK);
    assert_int_equal(tier, 2);
    assert_int_equal(ctl_reading_tier_min(db, "m2", 0, 5000, &tier, &count), CTL_DB_OK);
    assert_int_equal(tier, 0); /* no readings: nothing attested */
    assert_int_equal(count, 0);
    /* the first tier of a reading stays, as its reading does */
    int two = 2;
    assert_int_equal(ctl_reading_tiers_put(db, &r[1], &two, 1), CTL_DB_OK);
    assert_int_equal(ctl_reading_tier_min(db, "m1", 2000, 3000, &tier, &count), CTL_DB_OK);
    assert_int_equal(tier, 1);
    ctl_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_keys), cmocka_unit_test(test_tiers)};
    return cmocka_run_group_tests(tests, tst_dir_setup, tst_dir_teardown);
}
