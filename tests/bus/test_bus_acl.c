/*
 * The shipped community broker config (config/mosquitto/) against a real mosquitto: TLS, the
 * password and certificate listeners, and the ACL. Each test uses its own community level
 * (mgx/v1/tN/...) so retained messages of one test never reach another.
 *
 * "Never receives" is shown with a sentinel: a message the observer may read is published
 * after the forbidden ones, and the broker delivers one client's messages in order, so once
 * the sentinel is in, anything forwarded earlier would be in too.
 */
#include "mqtt_client.h"
#include "secure_broker.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define T_MS 5000
#define NOT_AUTHORIZED 135
#define BAD_USER_OR_PASSWORD 134

static tc_client *as(const char *id, const char *client_id)
{
    tc_opts o = sb_password_opts(sb_group_broker, id, client_id);
    int reason = 0;
    tc_client *c = tc_connect(&o, T_MS, &reason);
    if (!c)
        fail_msg("%s could not connect: reason %d", id, reason);
    return c;
}

static int pub(tc_client *c, const char *topic, const char *payload, bool retain)
{
    return tc_publish(c, topic, payload, strlen(payload), 1, retain, T_MS);
}

static void test_home_publishes_own_order_and_reading(void **state)
{
    (void)state;
    tc_client *ctl = as("controller", "ctl-t1");
    assert_int_equal(tc_subscribe(ctl, "mgx/v1/t1/#", T_MS), 1);
    tc_client *a = as("h-a", "h-a-agent");
    tc_client *meter = as("h-a", "h-a-meter"); /* the home's meter daemon logs in as the home */

    assert_int_equal(pub(a, "mgx/v1/t1/order/h-a", "{\"order\":1}", false), 0);
    assert_int_equal(pub(meter, "mgx/v1/t1/meter/h-a/state", "{\"import_wh\":5}", true), 0);
    assert_int_equal(pub(meter, "mgx/v1/t1/meter/h-a/meta", "{\"model\":\"x\"}", true), 0);
    assert_int_equal(pub(a, "mgx/v1/t1/status/h-a/agent", "online", true), 0);
    /* the bus client's own status topic: status/<client id> */
    assert_int_equal(pub(a, "mgx/v1/t1/status/h-a-agent", "online", true), 0);

    tc_message m;
    assert_true(tc_wait_topic(ctl, "mgx/v1/t1/order/h-a", NULL, &m, T_MS));
    assert_string_equal(m.payload, "{\"order\":1}");
    assert_true(tc_wait_topic(ctl, "mgx/v1/t1/meter/h-a/state", NULL, &m, T_MS));
    assert_string_equal(m.payload, "{\"import_wh\":5}");
    assert_true(tc_wait_topic(ctl, "mgx/v1/t1/meter/h-a/meta", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(ctl, "mgx/v1/t1/status/h-a/agent", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(ctl, "mgx/v1/t1/status/h-a-agent", NULL, NULL, T_MS));
    tc_free(meter);
    tc_free(a);
    tc_free(ctl);
}

/* Topics home A must not publish to, with the reason: each would let A act as someone else. */
static const char *const FORGED[] = {
    "mgx/v1/t2/order/h-b",         /* an order in B's name */
    "mgx/v1/t2/meter/h-b/state",   /* B's meter reading */
    "mgx/v1/t2/meter/h-b/meta",    /* B's meter description */
    "mgx/v1/t2/meter/h-b",         /* the level above B's meter topics */
    "mgx/v1/t2/receipt/h-a",       /* a receipt only the controller may give */
    "mgx/v1/t2/trades/h-a",        /* a trade confirmation, likewise */
    "mgx/v1/t2/market/42/result",  /* a public market result */
    "mgx/v1/t2/status/h-b/agent",  /* B's online status */
    "mgx/v1/t2/status/h-b-agent",  /* B's agent's status (A's client id is h-a-agent) */
    "mgx/v1/t2/status/controller", /* the controller's status */
    "mgx/v1/t2/order/h-a/extra",   /* below its own order topic */
    "mgx/v1/t2/order",             /* the level above */
    "mgx/v1/t2/order/+",           /* wildcards are never valid topic names */
    "mgx/v1/t2/order/#",
};

static void test_home_cannot_publish_as_another(void **state)
{
    (void)state;
    tc_client *ctl = as("controller", "ctl-t2");
    tc_client *b = as("h-b", "h-b-agent");
    assert_int_equal(tc_subscribe(ctl, "mgx/v1/t2/#", T_MS), 1);
    assert_int_equal(tc_subscribe(b, "mgx/v1/t2/#", T_MS), 1);
    tc_client *a = as("h-a", "h-a-agent");
    size_t n = sizeof FORGED / sizeof FORGED[0];
    for (size_t i = 0; i < n; i++) {
        int rc = pub(a, FORGED[i], "forged", false);
        /* The broker refuses with "not authorized" (135); a wildcard topic name is a protocol
         * error, and libmosquitto refuses to send it at all (-1). */
        if (strchr(FORGED[i], '+') || strchr(FORGED[i], '#'))
            assert_int_equal(rc, -1);
        else if (rc != NOT_AUTHORIZED)
            fail_msg("publishing to %s: reason %d, expected 135 not authorized", FORGED[i], rc);
    }
    /* The sentinel: A's own order (the controller reads it) and, for B, a market result. */
    assert_int_equal(pub(a, "mgx/v1/t2/order/h-a", "sentinel", false), 0);
    assert_int_equal(pub(ctl, "mgx/v1/t2/market/1/result", "sentinel", false), 0);
    assert_true(tc_wait_topic(ctl, "mgx/v1/t2/order/h-a", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(b, "mgx/v1/t2/market/1/result", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(ctl, "mgx/v1/t2/market/1/result", NULL, NULL, T_MS));
    for (size_t i = 0; i < tc_count(ctl); i++) {
        tc_message m;
        assert_true(tc_get(ctl, i, &m));
        if (strcmp(m.payload, "forged") == 0)
            fail_msg("the controller received a forged message on %s", m.topic);
    }
    for (size_t i = 0; i < tc_count(b); i++) {
        tc_message m;
        assert_true(tc_get(b, i, &m));
        if (strcmp(m.payload, "forged") == 0)
            fail_msg("home B received a forged message on %s", m.topic);
    }
    /* A is still connected: a refused publish is not a reason to drop a home */
    assert_false(tc_disconnected(a));
    tc_free(a);
    tc_free(b);
    tc_free(ctl);
}

static void test_home_reads_only_its_own(void **state)
{
    (void)state;
    tc_client *ctl = as("controller", "ctl-t3");
    tc_client *a = as("h-a", "h-a-agent");
    tc_client *b = as("h-b", "h-b-agent");
    /* A tries everything: the whole tree, and B's topics by name */
    assert_true(tc_subscribe(a, "mgx/v1/t3/#", T_MS) >= 0);
    assert_true(tc_subscribe(a, "mgx/v1/t3/meter/h-b/state", T_MS) >= 0);
    assert_true(tc_subscribe(a, "mgx/v1/t3/receipt/h-b", T_MS) >= 0);
    assert_true(tc_subscribe(a, "mgx/v1/t3/trades/h-b", T_MS) >= 0);
    assert_int_equal(tc_subscribe(b, "mgx/v1/t3/#", T_MS), 1);

    assert_int_equal(pub(b, "mgx/v1/t3/meter/h-b/state", "{\"b\":1}", true), 0);
    assert_int_equal(pub(b, "mgx/v1/t3/order/h-b", "{\"b-order\":1}", false), 0);
    assert_int_equal(pub(ctl, "mgx/v1/t3/receipt/h-b", "rb", false), 0);
    assert_int_equal(pub(ctl, "mgx/v1/t3/trades/h-b", "tb", false), 0);
    assert_int_equal(pub(ctl, "mgx/v1/t3/receipt/h-a", "ra", false), 0);
    assert_int_equal(pub(ctl, "mgx/v1/t3/trades/h-a", "ta", false), 0);
    assert_int_equal(pub(ctl, "mgx/v1/t3/market/7/result", "res", false), 0);

    assert_true(tc_wait_topic(a, "mgx/v1/t3/market/7/result", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(b, "mgx/v1/t3/market/7/result", NULL, NULL, T_MS));
    /* A: its own receipt and trades, the result; nothing of B's */
    assert_int_equal(tc_count_topic(a, "mgx/v1/t3/receipt/h-a"), 1);
    assert_int_equal(tc_count_topic(a, "mgx/v1/t3/trades/h-a"), 1);
    assert_int_equal(tc_count_topic(a, "mgx/v1/t3/meter/h-b/state"), 0);
    assert_int_equal(tc_count_topic(a, "mgx/v1/t3/receipt/h-b"), 0);
    assert_int_equal(tc_count_topic(a, "mgx/v1/t3/trades/h-b"), 0);
    assert_int_equal(tc_count_topic(a, "mgx/v1/t3/order/h-b"), 0);
    /* B: the mirror image, and its own reading (the agent follows its own meter) */
    assert_int_equal(tc_count_topic(b, "mgx/v1/t3/receipt/h-b"), 1);
    assert_int_equal(tc_count_topic(b, "mgx/v1/t3/trades/h-b"), 1);
    assert_int_equal(tc_count_topic(b, "mgx/v1/t3/meter/h-b/state"), 1);
    assert_int_equal(tc_count_topic(b, "mgx/v1/t3/receipt/h-a"), 0);
    assert_int_equal(tc_count_topic(b, "mgx/v1/t3/trades/h-a"), 0);
    /* orders go to the controller only, not even back to their sender */
    assert_int_equal(tc_count_topic(b, "mgx/v1/t3/order/h-b"), 0);

    /* Retained readings: a new session of A that subscribes to all meters gets its own
     * retained state and not B's. */
    assert_int_equal(pub(a, "mgx/v1/t3/meter/h-a/state", "{\"a\":1}", true), 0);
    tc_client *a2 = as("h-a", "h-a-late");
    assert_true(tc_subscribe(a2, "mgx/v1/t3/meter/#", T_MS) >= 0);
    tc_message m;
    assert_true(tc_wait_topic(a2, "mgx/v1/t3/meter/h-a/state", NULL, &m, T_MS));
    assert_true(m.retained);
    /* the controller sees B's retained reading on a fresh subscription, so it is there */
    assert_int_equal(tc_subscribe(ctl, "mgx/v1/t3/meter/#", T_MS), 1);
    assert_true(tc_wait_topic(ctl, "mgx/v1/t3/meter/h-b/state", NULL, NULL, T_MS));
    assert_int_equal(tc_count_topic(a2, "mgx/v1/t3/meter/h-b/state"), 0);
    tc_free(a2);
    tc_free(a);
    tc_free(b);
    tc_free(ctl);
}

static void test_certificate_listener_uses_the_common_name(void **state)
{
    (void)state;
    tc_client *ctl = as("controller", "ctl-t4");
    assert_int_equal(tc_subscribe(ctl, "mgx/v1/t4/#", T_MS), 1);
    tc_opts oa = sb_cert_opts(sb_group_broker, "h-a", "h-a-cert", false);
    tc_opts ob = sb_cert_opts(sb_group_broker, "h-b", "h-b-cert", false);
    int reason = -2;
    tc_client *a = tc_connect(&oa, T_MS, &reason);
    assert_non_null(a);
    tc_client *b = tc_connect(&ob, T_MS, &reason);
    assert_non_null(b);
    assert_true(tc_subscribe(b, "mgx/v1/t4/#", T_MS) >= 0);

    assert_int_equal(pub(a, "mgx/v1/t4/order/h-b", "forged", false), NOT_AUTHORIZED);
    assert_int_equal(pub(a, "mgx/v1/t4/meter/h-b/state", "forged", false), NOT_AUTHORIZED);
    assert_int_equal(pub(a, "mgx/v1/t4/order/h-a", "own", false), 0);
    assert_int_equal(pub(ctl, "mgx/v1/t4/receipt/h-a", "ra", false), 0);
    assert_int_equal(pub(ctl, "mgx/v1/t4/receipt/h-b", "rb", false), 0);
    assert_true(tc_wait_topic(ctl, "mgx/v1/t4/order/h-a", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(b, "mgx/v1/t4/receipt/h-b", NULL, NULL, T_MS));
    assert_int_equal(tc_count_topic(ctl, "mgx/v1/t4/order/h-b"), 0);
    assert_int_equal(tc_count_topic(ctl, "mgx/v1/t4/meter/h-b/state"), 0);
    assert_int_equal(tc_count_topic(b, "mgx/v1/t4/receipt/h-a"), 0);
    tc_free(a);
    tc_free(b);
    tc_free(ctl);
}

static void expect_refused(tc_opts o, const char *what, bool auth_reason)
{
    int reason = 0;
    tc_client *c = tc_connect(&o, T_MS, &reason);
    if (c) {
        tc_free(c);
        fail_msg("%s: the broker accepted the connection", what);
    }
    if (auth_reason && reason != NOT_AUTHORIZED && reason != BAD_USER_OR_PASSWORD)
        fail_msg("%s: CONNACK reason %d, expected 134 or 135", what, reason);
    if (!auth_reason && reason != -1)
        fail_msg("%s: CONNACK reason %d, expected no MQTT session at all", what, reason);
}

static void test_refused_connections(void **state)
{
    (void)state;
    tc_opts o = sb_password_opts(sb_group_broker, "h-a", "x");
    o.username = NULL;
    o.password = NULL;
    expect_refused(o, "anonymous over TLS", true);

    o = sb_password_opts(sb_group_broker, "h-a", "x");
    o.password = "pw-h-b";
    expect_refused(o, "h-a with B's password", true);
    o.password = "";
    expect_refused(o, "h-a with an empty password", true);
    o = sb_password_opts(sb_group_broker, "h-a", "x");
    o.username = "h-z";
    expect_refused(o, "an unknown user", true);

    o = sb_password_opts(sb_group_broker, "h-a", "x");
    o.cafile = NULL; /* plain MQTT on the TLS port */
    expect_refused(o, "h-a without TLS", false);

    o = sb_cert_opts(sb_group_broker, "h-a", "x", false);
    o.certfile = o.keyfile = NULL;
    expect_refused(o, "certificate listener without a certificate", false);
    o.username = "h-a";
    o.password = "pw-h-a";
    expect_refused(o, "certificate listener with a password instead", false);
    expect_refused(sb_cert_opts(sb_group_broker, "h-a", "x", true), "a certificate from another CA",
                   false);
    /* and a home still gets in with the right credentials afterwards */
    tc_client *ok = as("h-a", "h-a-after");
    tc_free(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_home_publishes_own_order_and_reading),
        cmocka_unit_test(test_home_cannot_publish_as_another),
        cmocka_unit_test(test_home_reads_only_its_own),
        cmocka_unit_test(test_certificate_listener_uses_the_common_name),
        cmocka_unit_test(test_refused_connections),
    };
    return cmocka_run_group_tests(tests, sb_group_setup, sb_group_teardown);
}
