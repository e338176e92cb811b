/*
 * Home Assistant on the community broker, end to end (issue 19): the community broker exactly
 * as shipped (config/mosquitto: TLS, passwords, the ACL, with h-a's read-only login "h-a.ha"
 * made by `mgx-certs.sh ha`), the real `mgx meter` binary logged in as h-a's meter login
 * h-a.meter (`mgx-certs.sh meter`) reading a simulated SDM630 (meter id h-a), and a client
 * playing Home Assistant logged in as h-a.ha.
 *
 * Checks that Home Assistant can read what it needs (discovery retained, state, availability
 * "online"), can write none of the home's topics, and sees no other home; and that its Energy
 * dashboard counts exactly the energy the meter counted through a jump, a backwards glitch, a
 * meter reset and a kill -9 restart of the daemon. Home Assistant's rule for a total_increasing
 * sensor (developers.home-assistant.io, "New sensor state class: total_increasing", 2021): the
 * first state is the zero point; an increase adds the difference; a decrease is the start of a
 * new meter cycle, counted from 0, so the new value is added whole. Reproduced in ha_add below.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker.h"
#include "files.h"
#include "mgx/meter.h"
#include "mgx/meter_server.h"
#include "mqtt_client.h"
#include "secure_broker.h"
#include "shell.h"

#define STATE_TOPIC "mgx/v1/test/meter/h-a/state"
#define STATUS_TOPIC "mgx/v1/test/status/h-a/meter-h-a"
#define DISC "homeassistant/sensor/h-a/mgx_test_"
#define WAIT_MS 30000

static const char *mgx_bin(void)
{
    const char *b = getenv("MGX_BIN");
    return b ? b : MGX_BINARY_DIR "/mgx";
}

typedef struct {
    char *dir;
    char conf[512], err[512];
    sb_broker *broker;
    mtr_server *srv;
    pid_t pid;
    tc_client *ha;
    size_t seen;       /* messages of ha already counted */
    bool ha_started;   /* the zero point is set */
    int64_t ha_last;   /* last state Home Assistant holds */
    int64_t ha_sum_wh; /* what the Energy dashboard shows since the zero point */
    uint32_t flags_seen; /* quality bits of the states seen */
} fixture;

/* Home Assistant's total_increasing statistics, one state at a time. */
static void ha_add(fixture *f, int64_t v)
{
    if (!f->ha_started) {
        f->ha_started = true;
    } else if (v >= f->ha_last) {
        f->ha_sum_wh += v - f->ha_last;
    } else {
        f->ha_sum_wh += v; /* a new meter cycle: counted from 0 */
    }
    f->ha_last = v;
}

/* Feeds the state messages that arrived since the last call to ha_add. */
static void ha_catch_up(fixture *f)
{
    size_t n = tc_count(f->ha);
    for (; f->seen < n; f->seen++) {
        tc_message m;
        if (!tc_get(f->ha, f->seen, &m) || strcmp(m.topic, STATE_TOPIC) != 0)
            continue;
        json_t *j = json_loads(m.payload, 0, NULL);
        assert_non_null(j);
        json_t *imp = json_object_get(j, "import_wh");
        assert_true(json_is_integer(imp));
        ha_add(f, json_integer_value(imp));
        f->flags_seen |= (uint32_t)json_integer_value(json_object_get(j, "quality"));
        json_decref(j);
    }
}

/* Waits until Home Assistant has been shown a state with import_wh == want (any value when
 * want < 0; and, if flag, with that quality bit), counting every state on the way. */
static void wait_state(fixture *f, int64_t want, uint32_t flag)
{
    for (int t = 0; t < WAIT_MS / 50; t++) {
        size_t n = tc_count(f->ha);
        for (size_t i = f->seen; i < n; i++) {
            tc_message m;
            if (!tc_get(f->ha, i, &m) || strcmp(m.topic, STATE_TOPIC) != 0)
                continue;
            json_t *j = json_loads(m.payload, 0, NULL);
            int64_t v = j ? json_integer_value(json_object_get(j, "import_wh")) : -1;
            uint32_t q = j ? (uint32_t)json_integer_value(json_object_get(j, "quality")) : 0;
            json_decref(j);
            if ((want < 0 || v == want) && (!flag || (q & flag))) {
                f->seen = i; /* count up to and including it */
                ha_catch_up(f);
                return;
            }
        }
        tst_sleep_ms(50);
    }
    ha_catch_up(f);
    fail_msg("Home Assistant never saw import_wh %lld (flag %u); last %lld", (long long)want, flag,
             (long long)f->ha_last);
}

static void spawn_daemon(fixture *f)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen(f->err, "a", stderr))
            _exit(126);
        execl(mgx_bin(), "mgx", "meter", f->conf, (char *)NULL);
        _exit(127);
    }
    f->pid = pid;
}

static void write_config(fixture *f)
{
    char pwfile[600];
    snprintf(pwfile, sizeof pwfile, "%s/h-a.password", f->dir);
    FILE *p = fopen(pwfile, "w");
    assert_non_null(p);
    fputs("pw-h-a.meter\n", p);
    fclose(p);
    chmod(pwfile, 0600);
    snprintf(f->conf, sizeof f->conf, "%s/meter.ini", f->dir);
    snprintf(f->err, sizeof f->err, "%s/stderr", f->dir);
    FILE *c = fopen(f->conf, "w");
    assert_non_null(c);
    fprintf(c,
            "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = test\nclient_id = meter-h-a\n"
            "username = h-a.meter\npassword_file = %s\ntls_ca = %s\n"
            "backoff_min_ms = 100\nbackoff_max_ms = 400\n\n"
            "[outbox]\npath = outbox.db\n\n[homeassistant]\nenabled = yes\n\n"
            "[meter h-a]\nprofile = sdm630\nhost = 127.0.0.1\nport = %u\nunit = 1\n"
            "poll_ms = 1000\ntimeout_ms = 300\nretries = 1\n",
            sb_port_password(f->broker), pwfile, sb_cafile(f->broker), mtr_server_port(f->srv));
    fclose(c);
}

static void set_import(fixture *f, int64_t wh)
{
    assert_int_equal(mtr_server_set(f->srv, 1, 500, wh, 1000), MTR_SERVER_OK);
}

static void home_assistant_end_to_end(void **state)
{
    (void)state;
    fixture f = {0};
    f.dir = tst_tmpdir("meterha");
    assert_non_null(f.dir);
    f.broker = sb_start();
    assert_non_null(f.broker);
    mtr_server_opts o = {.host = "127.0.0.1"};
    assert_int_equal(mtr_server_new(&o, &f.srv), MTR_SERVER_OK);
    assert_int_equal(mtr_server_add(f.srv, 1, MTR_SERVER_SDM630, NULL), MTR_SERVER_OK);
    set_import(&f, 1000000);
    assert_int_equal(mtr_server_start(f.srv), MTR_SERVER_OK);
    write_config(&f);
    spawn_daemon(&f);

    /* Home Assistant connects with the home's read-only login and subscribes as it does:
     * the discovery prefix, then the topics the configs name */
    tc_opts ho = sb_password_opts(f.broker, "h-a.ha", "home-assistant");
    int reason = 0;
    f.ha = tc_connect(&ho, 10000, &reason);
    assert_non_null(f.ha);
    assert_int_equal(tc_subscribe(f.ha, "homeassistant/#", 5000), 1);

    /* discovery: retained, readable, for each entity; availability and expiry as configured */
    const char *objects[] = {"power", "import", "export", "quality"};
    char topic[256];
    tc_message m;
    for (size_t i = 0; i < 4; i++) {
        snprintf(topic, sizeof topic, DISC "%s/config", objects[i]);
        assert_true(tc_wait_topic(f.ha, topic, NULL, &m, WAIT_MS));
        json_t *j = json_loads(m.payload, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "state_topic")), STATE_TOPIC);
        assert_string_equal(json_string_value(json_object_get(j, "availability_topic")),
                            STATUS_TOPIC);
        assert_int_equal(json_integer_value(json_object_get(j, "expire_after")), 60);
        json_decref(j);
    }
    /* a fresh subscription gets them as retained messages: Home Assistant restarts (the broker
     * keeps one connection per login, so the new session replaces the old one) */
    tc_free(f.ha);
    tc_opts lo = sb_password_opts(f.broker, "h-a.ha", "home-assistant-2");
    tc_client *late = tc_connect(&lo, 10000, &reason);
    assert_non_null(late);
    assert_int_equal(tc_subscribe(late, "homeassistant/#", 5000), 1);
    assert_true(tc_wait_topic(late, DISC "import/config", NULL, &m, WAIT_MS));
    assert_true(m.retained);
    assert_non_null(strstr(m.payload, "\"state_class\":\"total_increasing\""));
    tc_free(late);
    f.ha = tc_connect(&ho, 10000, &reason);
    assert_non_null(f.ha);
    assert_int_equal(tc_subscribe(f.ha, "homeassistant/#", 5000), 1);

    /* the entities are available: the status the configs name reads "online" */
    assert_int_equal(tc_subscribe(f.ha, STATUS_TOPIC, 5000), 1);
    assert_int_equal(tc_subscribe(f.ha, STATE_TOPIC, 5000), 1);
    assert_true(tc_wait_topic(f.ha, STATUS_TOPIC, NULL, &m, WAIT_MS));
    assert_string_equal(m.payload, "online");
    wait_state(&f, 1000000, 0); /* the zero point */

    /* read-only: every write into the home's topics is refused (MQTT v5: 135) */
    const char *forbidden[] = {STATE_TOPIC, "mgx/v1/test/meter/h-a/meta", STATUS_TOPIC,
                               DISC "import/config", "mgx/v1/test/order/h-a"};
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
        assert_int_equal(tc_publish(f.ha, forbidden[i], "{}", 2, 1, false, 5000), 135);
    /* and it sees nothing of another home: h-b writes its own reading and discovery */
    tc_opts bo = sb_password_opts(f.broker, "h-b.meter", "h-b-meter");
    tc_client *hb = tc_connect(&bo, 10000, &reason);
    assert_non_null(hb);
    /* accepted: 0, or 16 "no matching subscribers" */
    int rc = tc_publish(hb, "mgx/v1/test/meter/h-b/state", "{}", 2, 1, true, 5000);
    assert_true(rc == 0 || rc == 16);
    rc = tc_publish(hb, "homeassistant/sensor/h-b/mgx_test_import/config", "{}", 2, 1, true, 5000);
    assert_true(rc == 0 || rc == 16);
    assert_int_equal(tc_subscribe(f.ha, "mgx/v1/test/meter/h-b/state", 5000), 1);

    /* the meter counts 10 Wh, then glitches: a jump of 10 MWh, a drop backwards */
    set_import(&f, 1000010);
    wait_state(&f, 1000010, 0);
    set_import(&f, 11000000);
    /* flagged, shown at the last accepted total (set back within the 3 polls after which a
     * consistent new track would be taken as a reset: 1 s apart) */
    wait_state(&f, -1, MTR_Q_JUMP);
    set_import(&f, 1000020);
    wait_state(&f, 1000020, 0);
    set_import(&f, 500000);
    wait_state(&f, -1, MTR_Q_BACKWARDS);
    set_import(&f, 1000030);
    wait_state(&f, 1000030, 0);
    /* the meter is reset to 5 Wh and counts on: the total goes on from where it was */
    set_import(&f, 5);
    wait_state(&f, -1, MTR_Q_RESET);
    set_import(&f, 15);
    wait_state(&f, 1000040, 0);

    /* kill -9 and restart: the offset of the reset survives; the meter counts 10 Wh more */
    kill(f.pid, SIGKILL);
    waitpid(f.pid, NULL, 0);
    set_import(&f, 25);
    spawn_daemon(&f);
    /* the first total that differs from before (any value: a lost offset shows as 25) */
    for (int t = 0; t < WAIT_MS / 50 && f.ha_last == 1000040; t++) {
        tst_sleep_ms(50);
        ha_catch_up(&f);
    }
    assert_int_equal(f.ha_last, 1000050);

    /* the meter counted 10 + 10 + 10 + 10 + 10 Wh: Home Assistant shows exactly that (no
     * phantom energy), and the flagged states showed the last accepted totals */
    assert_true(f.flags_seen & MTR_Q_JUMP);
    assert_true(f.flags_seen & MTR_Q_BACKWARDS);
    assert_int_equal(f.ha_sum_wh, 50);
    assert_int_equal(tc_count_topic(f.ha, "mgx/v1/test/meter/h-b/state"), 0);
    assert_int_equal(tc_count_topic(f.ha, "homeassistant/sensor/h-b/mgx_test_import/config"), 0);

    /* a clean stop says offline (the entities become unavailable) */
    size_t from = 0;
    kill(f.pid, SIGTERM);
    assert_int_equal(tst_wait_exit(f.pid, 10000), 0);
    bool offline = false;
    while (!offline && tc_wait_topic(f.ha, STATUS_TOPIC, &from, &m, WAIT_MS))
        offline = strcmp(m.payload, "offline") == 0;
    assert_true(offline);

    tc_free(hb);
    tc_free(f.ha);
    mtr_server_free(f.srv);
    sb_free(f.broker);
    tst_rmtree(f.dir);
    free(f.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(home_assistant_end_to_end)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
