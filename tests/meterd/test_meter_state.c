/*
 * The meter daemon's counter state file (controller/meterd/meter_state.h): a round trip keeps
 * every field the filter needs, a missing file is an empty state, and a damaged file is refused
 * with its line rather than read as zero offsets (which would step every published total).
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
#include "meterd/meter_state.h"

static void round_trip_missing_and_damaged(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("meterstate"), path[600], err[700];
    assert_non_null(dir);
    assert_int_equal(ctl_meter_state_path("/x/outbox.db", path, sizeof path), 0);
    assert_string_equal(path, "/x/outbox.db.counters");
    snprintf(path, sizeof path, "%s/outbox.db.counters", dir);

    meter_state_entry *e = NULL;
    size_t n = 99;
    assert_int_equal(ctl_meter_state_load(path, &e, &n, err, sizeof err), 0);
    assert_int_equal(n, 0); /* the first start */

    meter_state_entry in[2];
    memset(in, 0, sizeof in);
    snprintf(in[0].meter_id, sizeof in[0].meter_id, "h-017");
    in[0].filter.imp = (mtr_counter){1, INT64_C(1735689600123), 25, 1000015, 0, 0, 0};
    in[0].filter.exp = (mtr_counter){1, INT64_C(1735689600123), 7, -3, 0, 0, 0};
    snprintf(in[1].meter_id, sizeof in[1].meter_id, "h-017-pv");
    assert_int_equal(ctl_meter_state_save(path, in, 2, err, sizeof err), 0);
    assert_int_equal(ctl_meter_state_load(path, &e, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(e[0].meter_id, "h-017");
    assert_int_equal(e[0].filter.imp.have, 1);
    assert_int_equal(e[0].filter.imp.ts_ms, INT64_C(1735689600123));
    assert_int_equal(e[0].filter.imp.raw_wh, 25);
    assert_int_equal(e[0].filter.imp.offset_wh, 1000015);
    assert_int_equal(e[0].filter.exp.offset_wh, -3);
    assert_string_equal(e[1].meter_id, "h-017-pv");
    assert_int_equal(e[1].filter.imp.have, 0);
    free(e);

    static const char *const bad[] = {
        "",                                                        /* no header */
        "mgx-meter-counters 2\n",                                  /* another version */
        "mgx-meter-counters 1\nh-017 1 5 25 7\n",                  /* a field short */
        "mgx-meter-counters 1\nh-017 1 5 25 7 1 5 7 0 9\n",        /* one too many */
        "mgx-meter-counters 1\nh.017 1 5 25 7 1 5 7 0\n",          /* not an id */
        "mgx-meter-counters 1\nh-017 2 5 25 7 1 5 7 0\n",          /* have is 0 or 1 */
        "mgx-meter-counters 1\nh-017 1 5 -25 7 1 5 7 0\n",         /* a raw value below 0 */
        "mgx-meter-counters 1\nh-017 1 5 25 x 1 5 7 0\n",          /* not a number */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        e = NULL;
        assert_int_equal(ctl_meter_state_load(path, &e, &n, err, sizeof err), -1);
        assert_null(e);
        assert_non_null(strstr(err, "damaged counter state"));
    }
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(round_trip_missing_and_damaged)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
