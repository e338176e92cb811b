/*
 * The shipped community broker config (config/mosquitto/) against a real mosquitto: TLS, the
 * password and certificate listeners, and the ACL. Each test uses its own community level
 * (mgx/v1/tN/...) so retained messages of one test never reach another.
 *
 * The broker makes the client id the login (use_username_as_clientid), so one login is one
 * connection: a home's agent logs in as h-a, its meter daemon as h-a.meter (mgx-certs.sh meter).
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
    tc_client *meter = as("h-a.meter", "h-a-meter"); /* the home's meter daemon: its own login */

    assert_int_equal(pub(a, "mgx/v1/t1/order/h-a", "{\"order\":1}", false), 0);
    assert_int_equal(pub(meter, "mgx/v1/t1/meter/h-a/state", "{\"import_wh\":5}", true), 0);
    assert_int_equal(pub(meter, "mgx/v1/t1/meter/h-a/meta", "{\"model\":\"x\"}", true), 0);
    assert_int_equal(pub(a, "mgx/v1/t1/status/h-a/agent", "online", true), 0);
    /* status/<client id>: the broker made the client id the login, h-a */
    assert_int_equal(pub(a, "mgx/v1/t1/status/h-a", "online", true), 0);

    tc_message m;
    assert_true(tc_wait_topic(ctl, "mgx/v1/t1/order/h-a", NULL, &m, T_MS));
    assert_string_equal(m.payload, "{\"order\":1}");
    assert_true(tc_wait_topic(ctl, "mgx/v1/t1/meter/h-a/state", NULL, &m, T_MS));
    assert_string_equal(m.payload, "{\"import_wh\":5}");
    assert_true(tc_wait_topic(ctl, "mgx/v1/t1/meter/h-a/meta", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(ctl, "mgx/v1/t1/status/h-a/agent", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(ctl, "mgx/v1/t1/status/h-a", NULL, NULL, T_MS));
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
    "mgx/v1/t2/status/h-b",        /* B's agent's status (A's client id is h-a) */
    "mgx/v1/t2/status/h-a-agent",  /* the client id A asked for: the broker made it h-a */
    "mgx/v1/t2/meter/h-a/state",   /* its own reading: only its meter login h-a.meter may */
    "homeassistant/sensor/h-a/power/config", /* likewise its Home Assistant discovery */
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
    tc_client *bm = as("h-b.meter", "h-b-meter");
    tc_client *am = as("h-a.meter", "h-a-meter");
    /* A tries everything: the whole tree, and B's topics by name */
    assert_true(tc_subscribe(a, "mgx/v1/t3/#", T_MS) >= 0);
    assert_true(tc_subscribe(a, "mgx/v1/t3/meter/h-b/state", T_MS) >= 0);
    assert_true(tc_subscribe(a, "mgx/v1/t3/receipt/h-b", T_MS) >= 0);
    assert_true(tc_subscribe(a, "mgx/v1/t3/trades/h-b", T_MS) >= 0);
    assert_int_equal(tc_subscribe(b, "mgx/v1/t3/#", T_MS), 1);

    assert_int_equal(pub(bm, "mgx/v1/t3/meter/h-b/state", "{\"b\":1}", true), 0);
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
    assert_int_equal(pub(am, "mgx/v1/t3/meter/h-a/state", "{\"a\":1}", true), 0);
    tc_free(a); /* one login, one connection: A's next session replaces this one */
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
    tc_free(am);
    tc_free(bm);
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

/* Client ids A asks for to knock someone else off the broker: the controller's, B's agent's,
 * B's login (the client id B really has now), B's meter daemon's, and A's own meter daemon's. */
static const char *const STOLEN_IDS[] = {"controller", "h-b-agent", "h-b", "h-b.meter",
                                         "h-a.meter"};

static void test_client_id_takeover_refused(void **state)
{
    (void)state;
    tc_client *ctl = as("controller", "controller");
    tc_client *b = as("h-b", "h-b-agent");
    tc_client *bm = as("h-b.meter", "h-b-meter");
    tc_client *am = as("h-a.meter", "h-a-meter");
    assert_int_equal(tc_subscribe(ctl, "mgx/v1/t6/#", T_MS), 1);
    assert_true(tc_subscribe(b, "mgx/v1/t6/#", T_MS) >= 0);

    /* A connects with each stolen id in turn, over both listeners, and stays connected a while:
     * a takeover would close the victim's connection at A's CONNACK. */
    size_t n = sizeof STOLEN_IDS / sizeof STOLEN_IDS[0], seen = 0;
    for (size_t i = 0; i < n; i++) {
        tc_client *rogue = as("h-a", STOLEN_IDS[i]);
        tc_opts co = sb_cert_opts(sb_group_broker, "h-a", STOLEN_IDS[i], false);
        int reason = 0;
        tc_client *rogue_cert = tc_connect(&co, T_MS, &reason);
        if (!rogue_cert)
            fail_msg("h-a's certificate with client id %s: reason %d", STOLEN_IDS[i], reason);
        /* each rogue connection is A itself: it may place A's order, and the controller's
         * own connection still receives it */
        assert_int_equal(pub(rogue_cert, "mgx/v1/t6/order/h-a", STOLEN_IDS[i], false), 0);
        tc_message m;
        if (!tc_wait_topic(ctl, "mgx/v1/t6/order/h-a", &seen, &m, T_MS))
            fail_msg("after h-a connected as client id %s the controller receives nothing "
                     "(knocked off: %s)",
                     STOLEN_IDS[i], tc_disconnected(ctl) ? "yes" : "no");
        assert_string_equal(m.payload, STOLEN_IDS[i]);
        tc_free(rogue_cert);
        tc_free(rogue);
    }

    /* Every victim is still connected and still works: B's order and B's meter reading reach
     * the controller, the controller's receipt reaches B, A's meter daemon still publishes. */
    assert_int_equal(pub(b, "mgx/v1/t6/order/h-b", "b-order", false), 0);
    assert_int_equal(pub(bm, "mgx/v1/t6/meter/h-b/state", "b-reading", false), 0);
    assert_int_equal(pub(am, "mgx/v1/t6/meter/h-a/state", "a-reading", false), 0);
    assert_int_equal(pub(ctl, "mgx/v1/t6/receipt/h-b", "b-receipt", false), 0);
    assert_true(tc_wait_topic(ctl, "mgx/v1/t6/order/h-b", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(ctl, "mgx/v1/t6/meter/h-b/state", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(ctl, "mgx/v1/t6/meter/h-a/state", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(b, "mgx/v1/t6/receipt/h-b", NULL, NULL, T_MS));
    tc_client *victims[] = {ctl, b, bm, am};
    const char *names[] = {"the controller", "h-b", "h-b.meter", "h-a.meter"};
    for (size_t i = 0; i < sizeof victims / sizeof victims[0]; i++)
        if (tc_disconnected(victims[i]))
            fail_msg("%s was knocked off the broker by h-a", names[i]);
    tc_free(am);
    tc_free(bm);
    tc_free(b);
    tc_free(ctl);
}

/* What a home's meter daemon login must not publish: the home's orders and preferences, other
 * homes' readings, and anything of the controller's. */
static const char *const METER_FORGED[] = {
    "mgx/v1/t7/order/h-a",       "mgx/v1/t7/pref/h-a",           "mgx/v1/t7/order/h-b",
    "mgx/v1/t7/meter/h-b/state", "homeassistant/sensor/h-b/x/config", "mgx/v1/t7/receipt/h-a",
    "mgx/v1/t7/market/1/result", "mgx/v1/t7/status/controller", "mgx/v1/t7/status/h-b/meter",
};
/* What the home's agent login must not publish: the readings and discovery are the meter
 * daemon's. */
static const char *const AGENT_FORGED[] = {
    "mgx/v1/t7/meter/h-a/state",
    "mgx/v1/t7/meter/h-a/meta",
    "homeassistant/sensor/h-a/power/config",
};

static void forge_all(tc_client *c, const char *who, const char *const *topics, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = pub(c, topics[i], "forged", false);
        if (rc != NOT_AUTHORIZED)
            fail_msg("%s publishing to %s: reason %d, expected 135 not authorized", who,
                     topics[i], rc);
    }
}

static void test_agent_and_meter_logins_together(void **state)
{
    (void)state;
    tc_client *ctl = as("controller", "controller");
    tc_client *ha = as("h-a.ha", "home-assistant");
    assert_int_equal(tc_subscribe(ctl, "mgx/v1/t7/#", T_MS), 1);
    assert_true(tc_subscribe(ha, "homeassistant/sensor/h-a/#", T_MS) >= 0);
    /* both daemons of home A at once, the meter daemon over its client certificate */
    tc_client *agent = as("h-a", "h-a-agent");
    tc_opts mo = sb_cert_opts(sb_group_broker, "h-a.meter", "h-a-meter", false);
    int reason = 0;
    tc_client *meter = tc_connect(&mo, T_MS, &reason);
    if (!meter)
        fail_msg("h-a.meter's certificate: reason %d", reason);

    forge_all(meter, "h-a.meter", METER_FORGED, sizeof METER_FORGED / sizeof METER_FORGED[0]);
    forge_all(agent, "h-a", AGENT_FORGED, sizeof AGENT_FORGED / sizeof AGENT_FORGED[0]);
    /* what each must publish; the last of each is the sentinel for its forged messages */
    assert_int_equal(pub(meter, "mgx/v1/t7/status/h-a/meter", "online", true), 0);
    assert_int_equal(pub(meter, "homeassistant/sensor/h-a/power/config", "{}", true), 0);
    assert_int_equal(pub(meter, "mgx/v1/t7/meter/h-a/state", "{\"import_wh\":7}", true), 0);
    assert_int_equal(pub(agent, "mgx/v1/t7/status/h-a/agent", "online", true), 0);
    assert_int_equal(pub(agent, "mgx/v1/t7/pref/h-a", "{\"pref\":1}", false), 0);
    assert_int_equal(pub(agent, "mgx/v1/t7/order/h-a", "{\"order\":1}", false), 0);
    tc_message m;
    assert_true(tc_wait_topic(ctl, "mgx/v1/t7/meter/h-a/state", NULL, &m, T_MS));
    assert_string_equal(m.payload, "{\"import_wh\":7}");
    assert_true(tc_wait_topic(ctl, "mgx/v1/t7/order/h-a", NULL, &m, T_MS));
    assert_string_equal(m.payload, "{\"order\":1}");
    assert_true(tc_wait_topic(ctl, "mgx/v1/t7/pref/h-a", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(ctl, "mgx/v1/t7/status/h-a/meter", NULL, NULL, T_MS));
    assert_true(tc_wait_topic(ctl, "mgx/v1/t7/status/h-a/agent", NULL, NULL, T_MS));
    /* discovery is outside mgx/v1/: the home's Home Assistant login sees it */
    assert_true(tc_wait_topic(ha, "homeassistant/sensor/h-a/power/config", NULL, &m, T_MS));
    assert_string_equal(m.payload, "{}");
    tc_client *observers[] = {ctl, ha};
    for (size_t o = 0; o < 2; o++)
        for (size_t i = 0; i < tc_count(observers[o]); i++) {
            assert_true(tc_get(observers[o], i, &m));
            if (strcmp(m.payload, "forged") == 0)
                fail_msg("%s received a forged message on %s", o ? "h-a.ha" : "the controller",
                         m.topic);
        }
    /* the agent follows its own meter (read), and neither knocked the other off */
    assert_true(tc_subscribe(agent, "mgx/v1/t7/meter/h-a/state", T_MS) >= 0);
    assert_true(tc_wait_topic(agent, "mgx/v1/t7/meter/h-a/state", NULL, NULL, T_MS));
    assert_false(tc_disconnected(agent));
    assert_false(tc_disconnected(meter));
    assert_false(tc_disconnected(ha));
    tc_free(meter);
    tc_free(agent);
    tc_free(ha);
    tc_free(ctl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_home_publishes_own_order_and_reading),
        cmocka_unit_test(test_home_cannot_publish_as_another),
        cmocka_unit_test(test_home_reads_only_its_own),
        cmocka_unit_test(test_certificate_listener_uses_the_common_name),
        cmocka_unit_test(test_refused_connections),
        cmocka_unit_test(test_client_id_takeover_refused),
        cmocka_unit_test(test_agent_and_meter_logins_together),
    };
    return cmocka_run_group_tests(tests, sb_group_setup, sb_group_teardown);
}
