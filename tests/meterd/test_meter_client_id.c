/*
 * Unit tests of the meter daemon's default client id (controller/src/meter_client_id.c): two
 * homes whose Raspberry Pis share the hostname get different ids, the id is a valid topic
 * level, the length limit is exact, and the default outbox sits next to the config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"
#include "meterd/meter_client_id.h"

static void test_two_homes_same_hostname_differ(void **state)
{
    (void)state;
    char a[BUS_ID_MAX], b[BUS_ID_MAX], la[BUS_ID_MAX], lb[BUS_ID_MAX];
    /* the old default collides: both Pis are "raspberrypi" */
    ctl_meter_legacy_client_id("raspberrypi", la);
    ctl_meter_legacy_client_id("raspberrypi", lb);
    assert_string_equal(la, "meter-raspberrypi");
    assert_string_equal(la, lb);
    /* the new one is built from what differs between homes: their meter ids */
    assert_int_equal(ctl_meter_client_id("oakfield", "h-017", a), 0);
    assert_int_equal(ctl_meter_client_id("oakfield", "h-018", b), 0);
    assert_string_equal(a, "meter-oakfield-h-017");
    assert_string_equal(b, "meter-oakfield-h-018");
    assert_true(bus_id_valid(a) && bus_id_valid(b));
    /* the same meter id in two communities on one broker still differs */
    assert_int_equal(ctl_meter_client_id("elmvale", "h-017", b), 0);
    assert_string_equal(b, "meter-elmvale-h-017");
}

static void test_length_limit_is_exact(void **state)
{
    (void)state;
    char id[BUS_ID_MAX], community[64], meter[64];
    /* "meter-" (6) + community + "-" (1) + meter id = 63 characters is the longest id:
     * community of 30 and meter id of 26 make 6 + 30 + 1 + 26 = 63 */
    memset(community, 'c', 30);
    community[30] = '\0';
    memset(meter, 'm', 26);
    meter[26] = '\0';
    assert_int_equal(ctl_meter_client_id(community, meter, id), 0);
    assert_int_equal(strlen(id), BUS_ID_MAX - 1);
    assert_true(bus_id_valid(id));
    /* one more character does not fit: refused, not cut (a cut id could collide again) */
    meter[26] = 'm';
    meter[27] = '\0';
    assert_int_equal(ctl_meter_client_id(community, meter, id), -1);
    assert_string_equal(id, "");
    assert_int_equal(ctl_meter_client_id("", "h-1", id), -1);
    assert_int_equal(ctl_meter_client_id("c", "", id), -1);
}

static void test_hostname_sanitised(void **state)
{
    (void)state;
    char id[BUS_ID_MAX];
    ctl_meter_legacy_client_id("pi 4/garage+#", id);
    assert_string_equal(id, "meter-pi-4-garage--");
    assert_true(bus_id_valid(id));
}

static void test_outbox_path_next_to_config(void **state)
{
    (void)state;
    char p[64];
    assert_int_equal(ctl_meter_outbox_path("/etc/mgx/home.ini", "meter-c-h-1", p, sizeof p), 0);
    assert_string_equal(p, "/etc/mgx/meter-c-h-1.outbox.db");
    assert_int_equal(ctl_meter_outbox_path("home.ini", "meter-c-h-1", p, sizeof p), 0);
    assert_string_equal(p, "meter-c-h-1.outbox.db");
    /* "/etc/mgx/" (9) + "meter-c-h-1" (11) + ".outbox.db" (10) = 30 characters: cap 31 fits,
     * cap 30 does not */
    assert_int_equal(ctl_meter_outbox_path("/etc/mgx/home.ini", "meter-c-h-1", p, 31), 0);
    assert_int_equal(ctl_meter_outbox_path("/etc/mgx/home.ini", "meter-c-h-1", p, 30), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_homes_same_hostname_differ),
        cmocka_unit_test(test_length_limit_is_exact),
        cmocka_unit_test(test_hostname_sanitised),
        cmocka_unit_test(test_outbox_path_next_to_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
