/*
 * Unit tests of the bus payloads (controller/src/payload.c) and topic builders (bus.c): exact
 * encodings worked out by hand, round trips, and one rejection per rule with its reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"
#include "bus/payload.h"

static mtr_sample sample(void)
{
    mtr_sample s = {.meter_id = "home-007",
                    .ts_ms = 1700000000123,
                    .power_w = -1500,
                    .import_wh = 123456,
                    .export_wh = 7890,
                    .soc_permille = -1,
                    .quality = MTR_Q_GOOD};
    return s;
}

static void test_state_exact(void **state)
{
    (void)state;
    char buf[512];
    mtr_sample s = sample();
    const char *want = "{\"meter_id\":\"home-007\",\"ts\":1700000000123,\"power_w\":-1500,"
                       "\"import_wh\":123456,\"export_wh\":7890,\"quality\":0,\"flags\":\"good\"}";
    assert_int_equal(bus_state_encode(&s, buf, sizeof buf), (int)strlen(want));
    assert_string_equal(buf, want);
    /* a battery adds soc_permille; quality 3 = comm|nan */
    s.soc_permille = 553;
    s.quality = MTR_Q_COMM | MTR_Q_NAN;
    const char *want2 = "{\"meter_id\":\"home-007\",\"ts\":1700000000123,\"power_w\":-1500,"
                        "\"import_wh\":123456,\"export_wh\":7890,\"quality\":3,"
                        "\"flags\":\"comm,nan\",\"soc_permille\":553}";
    assert_int_equal(bus_state_encode(&s, buf, sizeof buf), (int)strlen(want2));
    assert_string_equal(buf, want2);
    /* too small a buffer: an error and an empty string, never a truncated JSON */
    assert_int_equal(bus_state_encode(&s, buf, 40), BUS_E_TOOLONG);
    assert_string_equal(buf, "");
}

static void test_state_round_trip(void **state)
{
    (void)state;
    const int64_t powers[] = {0, 1, -1, BUS_POWER_MAX_W, -BUS_POWER_MAX_W};
    const int64_t counters[] = {0, 1, 999999999999, BUS_COUNTER_MAX_WH};
    for (size_t i = 0; i < 5; i++)
        for (size_t k = 0; k < 4; k++) {
            mtr_sample s = sample(), d;
            s.power_w = powers[i];
            s.import_wh = counters[k];
            s.export_wh = counters[3 - k];
            s.soc_permille = (int32_t)(k * 300) - 1;
            s.quality = (uint32_t)(i * 37u);
            char buf[512], why[128];
            int n = bus_state_encode(&s, buf, sizeof buf);
            assert_true(n > 0);
            assert_int_equal(bus_state_decode(buf, (size_t)n, "home-007", &d, why, sizeof why),
                             BUS_OK);
            assert_memory_equal(&s, &d, sizeof s);
        }
}

static void expect_reject(const char *json, const char *reason_part)
{
    mtr_sample d;
    char why[160] = "";
    assert_int_equal(bus_state_decode(json, strlen(json), "m1", &d, why, sizeof why),
                     BUS_E_PAYLOAD);
    if (!strstr(why, reason_part))
        fail_msg("reason '%s' lacks '%s' for %s", why, reason_part, json);
}

#define GOOD_TAIL "\"power_w\":5,\"import_wh\":1,\"export_wh\":2"

static void test_state_rejections(void **state)
{
    (void)state;
    mtr_sample d;
    const char *ok = "{\"meter_id\":\"m1\",\"ts\":1700000000000,\"quality\":0," GOOD_TAIL "}";
    assert_int_equal(bus_state_decode(ok, strlen(ok), "m1", &d, NULL, 0), BUS_OK);
    assert_int_equal(d.soc_permille, -1);
    assert_int_equal(d.power_w, 5);
    expect_reject("", "not JSON");
    expect_reject("[1,2]", "not a JSON object");
    expect_reject("{\"meter_id\":\"m1\",\"meter_id\":\"m1\"}", "not JSON");
    expect_reject("{\"ts\":1700000000000,\"quality\":0," GOOD_TAIL "}", "meter_id: missing");
    expect_reject("{\"meter_id\":\"m2\",\"ts\":1700000000000,\"quality\":0," GOOD_TAIL "}",
                  "does not match");
    expect_reject("{\"meter_id\":\"m/1\",\"ts\":1700000000000,\"quality\":0," GOOD_TAIL "}",
                  "meter_id: not");
    expect_reject("{\"meter_id\":\"m1\",\"quality\":0," GOOD_TAIL "}", "ts: missing");
    expect_reject("{\"meter_id\":\"m1\",\"ts\":17,\"quality\":0," GOOD_TAIL "}", "ts: 17 out of");
    expect_reject("{\"meter_id\":\"m1\",\"ts\":1700000000000.5,\"quality\":0," GOOD_TAIL "}",
                  "ts: not an integer");
    expect_reject("{\"meter_id\":\"m1\",\"ts\":1700000000000,\"quality\":-1," GOOD_TAIL "}",
                  "quality: -1 out of");
    expect_reject("{\"meter_id\":\"m1\",\"ts\":1700000000000,\"quality\":0,\"power_w\":\"5\","
                  "\"import_wh\":1,\"export_wh\":2}",
                  "power_w: not an integer");
    expect_reject("{\"meter_id\":\"m1\",\"ts\":1700000000000,\"quality\":0,\"power_w\":5,"
                  "\"import_wh\":-1,\"export_wh\":2}",
                  "import_wh: -1 out of");
    expect_reject("{\"meter_id\":\"m1\",\"ts\":1700000000000,\"quality\":0,\"power_w\":5,"
                  "\"import_wh\":1}",
                  "export_wh: missing");
    expect_reject("{\"meter_id\":\"m1\",\"ts\":1700000000000,\"quality\":0," GOOD_TAIL
                  ",\"soc_permille\":1001}",
                  "soc_permille: 1001 out of");
    expect_reject("{\"meter_id\":\"m1\",\"ts\":99999999999999999999}", "not JSON");
    /* a negative counter is accepted only when the reading is flagged negative (bit 7 = 128) */
    const char *neg = "{\"meter_id\":\"m1\",\"ts\":1700000000000,\"quality\":128,\"power_w\":5,"
                      "\"import_wh\":-4,\"export_wh\":2}";
    assert_int_equal(bus_state_decode(neg, strlen(neg), NULL, &d, NULL, 0), BUS_OK);
    assert_int_equal(d.import_wh, -4);
    /* bounded size */
    char big[BUS_JSON_MAX + 2];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[sizeof big - 1] = '}';
    assert_int_equal(bus_state_decode(big, sizeof big, NULL, &d, NULL, 0), BUS_E_PAYLOAD);
    /* encode refuses what decode would reject */
    mtr_sample s = sample();
    char buf[512];
    s.ts_ms = 5;
    assert_int_equal(bus_state_encode(&s, buf, sizeof buf), BUS_E_INVAL);
    s = sample();
    s.import_wh = -1;
    assert_int_equal(bus_state_encode(&s, buf, sizeof buf), BUS_E_INVAL);
}

static void test_meta(void **state)
{
    (void)state;
    mtr_meta m = {.meter_id = "inv1", .make = "Fronius", .model = "Symo 10", .serial = "SN\x01\xff",
                  .profile = "sunspec"};
    char buf[512];
    /* the control byte and the invalid UTF-8 byte become '?' */
    const char *want = "{\"meter_id\":\"inv1\",\"make\":\"Fronius\",\"model\":\"Symo 10\","
                       "\"serial\":\"SN??\",\"profile\":\"sunspec\"}";
    assert_int_equal(bus_meta_encode(&m, buf, sizeof buf), (int)strlen(want));
    assert_string_equal(buf, want);
    mtr_meta d;
    assert_int_equal(bus_meta_decode(buf, strlen(buf), "inv1", &d, NULL, 0), BUS_OK);
    assert_string_equal(d.serial, "SN??");
    assert_string_equal(d.model, "Symo 10");
    /* valid UTF-8 survives */
    snprintf(m.make, sizeof m.make, "W\xc3\xa4rmepumpe");
    assert_true(bus_meta_encode(&m, buf, sizeof buf) > 0);
    assert_int_equal(bus_meta_decode(buf, strlen(buf), NULL, &d, NULL, 0), BUS_OK);
    assert_string_equal(d.make, "W\xc3\xa4rmepumpe");
    char why[128];
    const char *bad = "{\"meter_id\":\"inv1\",\"make\":1,\"model\":\"\",\"serial\":\"\","
                      "\"profile\":\"x\"}";
    assert_int_equal(bus_meta_decode(bad, strlen(bad), NULL, &d, why, sizeof why), BUS_E_PAYLOAD);
    assert_string_equal(why, "make: not a string");
}

static void test_topics(void **state)
{
    (void)state;
    char t[BUS_TOPIC_MAX];
    assert_int_equal(bus_topic_meter_state(t, sizeof t, "street", "home-1"), BUS_OK);
    assert_string_equal(t, "mgx/v1/street/meter/home-1/state");
    assert_int_equal(bus_topic_meter_meta(t, sizeof t, "street", "home-1"), BUS_OK);
    assert_string_equal(t, "mgx/v1/street/meter/home-1/meta");
    assert_int_equal(bus_topic_status(t, sizeof t, "street", "meter-gw"), BUS_OK);
    assert_string_equal(t, "mgx/v1/street/status/meter-gw");
    assert_int_equal(bus_topic_order(t, sizeof t, "street", "p7"), BUS_OK);
    assert_string_equal(t, "mgx/v1/street/order/p7");
    assert_int_equal(bus_topic_receipt(t, sizeof t, "street", "p7"), BUS_OK);
    assert_string_equal(t, "mgx/v1/street/receipt/p7");
    assert_int_equal(bus_topic_trades(t, sizeof t, "street", "p7"), BUS_OK);
    assert_string_equal(t, "mgx/v1/street/trades/p7");
    assert_int_equal(bus_topic_market_result(t, sizeof t, "street", 1888890), BUS_OK);
    assert_string_equal(t, "mgx/v1/street/market/1888890/result");
    assert_int_equal(bus_filter_all(t, sizeof t, "street", "meter", "state"), BUS_OK);
    assert_string_equal(t, "mgx/v1/street/meter/+/state");
    assert_int_equal(bus_filter_all(t, sizeof t, "street", "order", NULL), BUS_OK);
    assert_string_equal(t, "mgx/v1/street/order/+");
    /* ids that would break the topic tree */
    const char *bad[] = {"", "a/b", "+", "#", "a b", "\xc3\xa4",
                         "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(bus_topic_meter_state(t, sizeof t, "c", bad[i]), BUS_E_INVAL);
        assert_string_equal(t, "");
        assert_int_equal(bus_topic_order(t, sizeof t, bad[i], "p"), BUS_E_INVAL);
    }
    /* 63 bytes is the longest id */
    assert_true(bus_id_valid("012345678901234567890123456789012345678901234567890123456789012"));
    assert_int_equal(bus_topic_market_result(t, sizeof t, "c", -1), BUS_E_INVAL);
    assert_int_equal(bus_topic_meter_state(t, 20, "street", "home-1"), BUS_E_TOOLONG);

    char c[BUS_ID_MAX], k[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    assert_int_equal(bus_topic_parse("mgx/v1/street/meter/home-1/state", c, k, id, leaf), BUS_OK);
    assert_string_equal(c, "street");
    assert_string_equal(k, "meter");
    assert_string_equal(id, "home-1");
    assert_string_equal(leaf, "state");
    assert_int_equal(bus_topic_parse("mgx/v1/street/order/p7", c, k, id, leaf), BUS_OK);
    assert_string_equal(id, "p7");
    assert_string_equal(leaf, "");
    const char *badt[] = {"mgx/v2/s/order/p", "mgx/v1/s/order", "mgx/v1/s/order/", "mgx/v1/s//p",
                          "mgx/v1/s/meter/m/state/x", "mgx/v1/s/meter/m/state/", "x"};
    for (size_t i = 0; i < sizeof badt / sizeof badt[0]; i++) {
        assert_int_equal(bus_topic_parse(badt[i], c, k, id, leaf), BUS_E_INVAL);
        assert_string_equal(c, "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_exact),     cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_rejections), cmocka_unit_test(test_meta),
        cmocka_unit_test(test_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
