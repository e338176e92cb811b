/*
 * Home Assistant discovery configs (controller/bus/ha_discovery.h): the topic layout the
 * community ACL scopes per home (the meter id as the node id level), expire_after, and a
 * battery sensor that shows unknown, never 0 %, when a reading has no state of charge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "bus/ha_discovery.h"

static const char *get(const ha_message *m, const char *key, json_t **keep)
{
    *keep = json_loadb(m->payload, m->len, 0, NULL);
    assert_non_null(*keep);
    json_t *v = json_object_get(*keep, key);
    return v && json_is_string(v) ? json_string_value(v) : NULL;
}

static void layout_expiry_and_soc(void **state)
{
    (void)state;
    mtr_meta meta = {.meter_id = "h-017", .make = "Eastron", .model = "SDM630"};
    ha_message m[HA_MAX_ENTITIES];
    size_t n = 0;
    assert_int_equal(ha_discovery_build("homeassistant", "street", "mgx/v1/street/status/h-017/m",
                                        &meta, true, 90, m, &n),
                     BUS_OK);
    assert_int_equal(n, 5);
    assert_string_equal(m[0].topic, "homeassistant/sensor/h-017/mgx_street_power/config");
    assert_string_equal(m[4].topic, "homeassistant/sensor/h-017/mgx_street_soc/config");
    for (size_t i = 0; i < n; i++) {
        json_t *j;
        assert_string_equal(get(&m[i], "availability_topic", &j), "mgx/v1/street/status/h-017/m");
        assert_int_equal(json_integer_value(json_object_get(j, "expire_after")), 90);
        json_decref(j);
    }
    /* the battery's template: a value only for 0..1000 permille, else None (unknown) */
    json_t *j;
    const char *t = get(&m[4], "value_template", &j);
    assert_non_null(strstr(t, "soc_permille >= 0"));
    assert_non_null(strstr(t, "None"));
    assert_null(strstr(t, "int(0)")); /* the old default that showed a missing value as 0 % */
    json_decref(j);
    /* no expiry asked: no key */
    assert_int_equal(ha_discovery_build("homeassistant", "street", "s", &meta, false, 0, m, &n),
                     BUS_OK);
    assert_int_equal(n, 4);
    t = get(&m[1], "expire_after", &j);
    assert_null(json_object_get(j, "expire_after"));
    json_decref(j);
    /* three polls, at least a minute, at most a day */
    assert_int_equal(ha_expire_after_s(1000), 60);
    assert_int_equal(ha_expire_after_s(30000), 90);
    assert_int_equal(ha_expire_after_s(0), 60);
    assert_int_equal(ha_expire_after_s(86400000), 86400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(layout_expiry_and_soc)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
