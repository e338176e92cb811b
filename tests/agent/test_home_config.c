/*
 * A home's one config file, end to end: the real `mgx meter` and `mgx agent` both run from the
 * same file (config/home-example.ini's layout) against the shipped community broker (TLS,
 * passwords, ACL) and a simulated SDM630 on Modbus TCP. The meter daemon publishes the home's
 * readings, the agent follows them and sends a signed sell order; both stay online under
 * their own logins the whole time (the broker makes the client id the login, so one shared
 * login would make the broker drop one of them at every reconnect); relative paths are taken from the file's folder, not the working
 * directory. And the mistakes a homeowner makes in the shared parts are refused by both
 * daemons with the same FILE:LINE message.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker.h"
#include "orders/keys.h"
#include "mgx/meter_server.h"
#include "mqtt_client.h"
#include "secure_broker.h"
#include "files.h"
#include "shell.h"

#define T_MS 5000
#define COMMUNITY "homefile"
#define SPEED 60 /* one simulated minute per real second: a 60 s interval passes each second */

/* Runs `mgx CMD conf EXTRA...` from "/" (so only the file's folder can make relative paths
 * work) with stdout and stderr into log; returns the pid. */
static pid_t spawn(const char *cmd, const char *conf, const char *log, char *const extra[])
{
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    char b[1024], c[32], k[600]; /* execv takes char *const[] */
    snprintf(b, sizeof b, "%s", bin);
    snprintf(c, sizeof c, "%s", cmd);
    snprintf(k, sizeof k, "%s", conf);
    char *argv[16] = {b, c, k};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *e = freopen(log, "a", stderr), *o = freopen(log, "a", stdout);
        (void)e, (void)o;
        if (chdir("/") != 0)
            _exit(126);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

typedef struct {
    char *dir;
    char conf[512], log_meter[512], log_agent[512];
    mtr_server *srv;
    pid_t meter, agent;
    tc_client *obs;
} fixture;

/* The home's file. [bus] is the meter daemon's login (h-b.meter) and client id; the agent logs
 * in as h-b with [agent] password_file and defaults to client id h-b-agent.
 * Paths are relative to the file. extra_bus goes at the end of [bus]. */
static void write_home(fixture *f, const char *extra_bus, mode_t pw_mode)
{
    char path[600], ini[4096];
    snprintf(path, sizeof path, "%s/mqtt.pw", f->dir);
    tst_file_write(path, "pw-h-b.meter\n", pw_mode); /* [bus]: the meter daemon's login */
    snprintf(path, sizeof path, "%s/agent.pw", f->dir);
    tst_file_write(path, "pw-h-b\n", 0600); /* [agent]: the agent's */
    snprintf(f->conf, sizeof f->conf, "%s/home.ini", f->dir);
    snprintf(ini, sizeof ini,
             "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = " COMMUNITY "\nusername = h-b.meter\n"
             "password_file = mqtt.pw\ntls_ca = %s\nclient_id = h-b-meter\n"
             "backoff_min_ms = 100\nbackoff_max_ms = 1000\n%s\n"
             "[outbox]\npath = meter.db\n\n"
             "[homeassistant]\nenabled = no\n\n"
             "[meter h-b]\nprofile = sdm630\nhost = 127.0.0.1\nport = %u\nunit = 1\n"
             "poll_ms = 200\ntimeout_ms = 500\n\n"
             "[agent]\nparticipant = h-b\npassword_file = agent.pw\nkey_file = h-b.key\n"
             "outbox = agent.db\n"
             "strategy = truthful\nfeed_in_uc_per_kwh = 80000\nretail_uc_per_kwh = 300000\n"
             "interval_s = 60\ngate_closure_s = 0\nresend_s = 1\n",
             sb_port_password(sb_group_broker), sb_cafile(sb_group_broker), extra_bus ? extra_bus : "",
             f->srv ? mtr_server_port(f->srv) : 1);
    tst_file_write(f->conf, ini, 0644);
}

static void setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->dir = tst_tmpdir("homefile");
    assert_non_null(f->dir);
    char prefix[600];
    uint8_t pk[CTL_PUBKEY_BYTES];
    snprintf(prefix, sizeof prefix, "%s/h-b", f->dir);
    assert_int_equal(ctl_keygen_files(prefix, pk), CTL_KEY_OK);
    snprintf(f->log_meter, sizeof f->log_meter, "%s/meter.log", f->dir);
    snprintf(f->log_agent, sizeof f->log_agent, "%s/agent.log", f->dir);
}

static void teardown(fixture *f)
{
    if (f->meter > 0)
        tst_wait_exit((kill(f->meter, SIGKILL), f->meter), 5000);
    if (f->agent > 0)
        tst_wait_exit((kill(f->agent, SIGKILL), f->agent), 5000);
    tc_free(f->obs);
    mtr_server_free(f->srv);
    if (getenv("MGX_KEEP_TMP"))
        fprintf(stderr, "kept %s\n", f->dir);
    else
        tst_rmtree(f->dir);
    free(f->dir);
}

static size_t count_payload(tc_client *c, const char *topic, const char *payload)
{
    size_t n = 0, total = tc_count(c);
    for (size_t i = 0; i < total; i++) {
        tc_message m;
        if (tc_get(c, i, &m) && !strcmp(m.topic, topic) && !strcmp(m.payload, payload))
            n++;
    }
    return n;
}

static void test_one_file_runs_meter_daemon_and_agent(void **state)
{
    (void)state;
    fixture f;
    setup(&f);
    mtr_server_opts so = {.host = "127.0.0.1"};
    assert_int_equal(mtr_server_new(&so, &f.srv), MTR_SERVER_OK);
    assert_int_equal(mtr_server_add(f.srv, 1, MTR_SERVER_SDM630, NULL), MTR_SERVER_OK);
    int64_t export_wh = 5000;
    assert_int_equal(mtr_server_set(f.srv, 1, -3000, 1000, export_wh), MTR_SERVER_OK);
    assert_int_equal(mtr_server_start(f.srv), MTR_SERVER_OK);
    write_home(&f, NULL, 0600);

    tc_opts o = sb_password_opts(sb_group_broker, "controller", "observer");
    int reason;
    f.obs = tc_connect(&o, T_MS, &reason);
    assert_non_null(f.obs);
    assert_int_equal(tc_subscribe(f.obs, "mgx/v1/" COMMUNITY "/#", T_MS), 1);

    /* both daemons on one accelerated clock: real now is simulated 2025-06-01T00:00:00Z */
    char anchor[64], speed[16];
    snprintf(anchor, sizeof anchor, "%lld:1748736000", (long long)time(NULL));
    snprintf(speed, sizeof speed, "%d", SPEED);
    char *clock[] = {"--clock-speed", speed, "--clock-anchor", anchor, NULL};
    f.meter = spawn("meter", f.conf, f.log_meter, clock);
    f.agent = spawn("agent", f.conf, f.log_agent, clock);

    /* both under the home's level, where its Home Assistant login reads them */
    const char *st_meter = "mgx/v1/" COMMUNITY "/status/h-b/h-b-meter";
    const char *st_agent = "mgx/v1/" COMMUNITY "/status/h-b/h-b-agent";
    const char *t_state = "mgx/v1/" COMMUNITY "/meter/h-b/state";
    const char *t_order = "mgx/v1/" COMMUNITY "/order/h-b";
    /* the PV exports 3 kW: 5 Wh every 100 ms of real time is 3 kW at 60x (5 Wh per 6 s) */
    tc_message order;
    bool got_order = false;
    for (int i = 0; i < 300 && !got_order; i++) {
        tst_sleep_ms(100);
        export_wh += 5;
        assert_int_equal(mtr_server_set(f.srv, 1, -3000, 1000, export_wh), MTR_SERVER_OK);
        size_t from = 0;
        got_order = tc_count_topic(f.obs, t_order) > 0 &&
                    tc_wait_topic(f.obs, t_order, &from, &order, 0);
        if (waitpid(f.meter, NULL, WNOHANG) == f.meter || waitpid(f.agent, NULL, WNOHANG) ==
                                                              f.agent) {
            char *lm = tst_file_text_or_empty(f.log_meter), *la = tst_file_text_or_empty(f.log_agent);
            fail_msg("a daemon exited.\nmeter:\n%s\nagent:\n%s", lm, la);
        }
    }
    if (!got_order) {
        char *lm = tst_file_text_or_empty(f.log_meter), *la = tst_file_text_or_empty(f.log_agent);
        fail_msg("no order in 30 s.\nmeter:\n%s\nagent:\n%s", lm, la);
    }
    /* the meter daemon published the home's readings, the agent sold from them */
    assert_true(tc_count_topic(f.obs, t_state) > 0);
    assert_non_null(strstr(order.payload, "\"participant\":\"h-b\""));
    assert_non_null(strstr(order.payload, "\"side\":\"sell\""));
    /* each daemon came online once under its own id and never dropped off */
    assert_int_equal(count_payload(f.obs, st_meter, "online"), 1);
    assert_int_equal(count_payload(f.obs, st_agent, "online"), 1);
    assert_int_equal(count_payload(f.obs, st_meter, "offline"), 0);
    assert_int_equal(count_payload(f.obs, st_agent, "offline"), 0);
    /* relative paths resolved against the file's folder, though both run from "/" */
    char path[600];
    struct stat st;
    snprintf(path, sizeof path, "%s/meter.db", f.dir);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/agent.db", f.dir);
    assert_int_equal(stat(path, &st), 0);

    kill(f.agent, SIGTERM);
    kill(f.meter, SIGTERM);
    assert_int_equal(tst_wait_exit(f.agent, 10000), 0);
    assert_int_equal(tst_wait_exit(f.meter, 10000), 0);
    f.agent = f.meter = 0;
    size_t from = 0;
    tc_message m;
    while (count_payload(f.obs, st_agent, "offline") == 0 &&
           tc_wait_topic(f.obs, st_agent, &from, &m, T_MS))
        ;
    assert_int_equal(count_payload(f.obs, st_agent, "offline"), 1);
    teardown(&f);
}

/* Both daemons read file f->conf and must refuse it with want (after "home.ini"). */
static void expect_both_refuse(fixture *f, const char *want)
{
    const char *who[] = {"meter", "agent"};
    for (int i = 0; i < 2; i++) {
        char log[600];
        snprintf(log, sizeof log, "%s/%s.err", f->dir, who[i]);
        unlink(log);
        char *once[] = {"--once", NULL};
        pid_t pid = spawn(who[i], f->conf, log, i == 0 ? once : NULL);
        int rc = tst_wait_exit(pid, 10000);
        char *text = tst_file_text_or_empty(log);
        char full[800];
        snprintf(full, sizeof full, "%s%s", f->conf, want);
        if (rc != 1 || !strstr(text, full))
            fail_msg("mgx %s: exit %d, expected '%s' in: %s", who[i], rc, full, text);
        free(text);
    }
}

static void test_both_daemons_refuse_the_same_mistakes(void **state)
{
    (void)state;
    fixture f;
    setup(&f);
    /* a typo in a section name: neither daemon owns [agnet] (line 11, after [bus]'s 10) */
    write_home(&f, "[agnet]\n", 0600);
    expect_both_refuse(&f, ":11: unknown section [agnet]");
    /* the shared [bus]: an agent-era key name, a bad port, a password others can read */
    write_home(&f, "ca_file = ca.crt\n", 0600);
    expect_both_refuse(&f, ":11: unknown key 'ca_file' in [bus]: every mgx daemon's [bus] "
                           "calls it tls_ca");
    write_home(&f, "keepalive_s = 1\n", 0600);
    expect_both_refuse(&f, ":11: keepalive_s: 1 is out of range [5, 3600]");
    write_home(&f, NULL, 0640);
    char want[800];
    snprintf(want, sizeof want,
             ":6: password_file: %s/mqtt.pw is open to other users (mode 0640); chmod 600 it",
             f.dir);
    expect_both_refuse(&f, want);
    teardown(&f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_file_runs_meter_daemon_and_agent),
        cmocka_unit_test(test_both_daemons_refuse_the_same_mistakes),
    };
    return cmocka_run_group_tests(tests, sb_group_setup, sb_group_teardown);
}
