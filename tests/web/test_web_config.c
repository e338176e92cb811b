/*
 * `mgx web`'s config file (controller/web/web_config.c), unit level: defaults, relative paths
 * from the file's folder, and every refusal naming the file (and the line where there is one):
 * no database, no login file, a lone tls_cert, an unknown or repeated key, a bad address or port.
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

#include "shell.h"
#include "web/web_config.h"

static char dir[] = "/tmp/mgx-web-config-XXXXXX";
static char path[300];

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/web.ini", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tst_sh("rm -rf %s", dir);
    return 0;
}

/* Writes text to the config file and loads it; the result code, the message in err. */
static int load(const char *text, web_config *c, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    err[0] = 0;
    return web_config_load(path, c, err, errlen);
}

static void defaults_and_paths(void **state)
{
    (void)state;
    web_config c;
    char err[512], want[400];
    assert_int_equal(load("[web]\ndatabase = ctl.db\npassword_file = /etc/mosquitto/passwd\n", &c,
                          err, sizeof err),
                     CFG_OK);
    assert_string_equal(c.listen, "127.0.0.1");
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.max_sessions, 1024);
    assert_int_equal(c.session_ttl_s, 43200);
    assert_int_equal(c.live_max_clients, 1024);
    assert_int_equal(c.live_poll_ms, 1000);
    assert_int_equal(c.live_queue_bytes, 65536);
    assert_int_equal(c.threads, 1);
    assert_int_equal(c.max_connections, 2048);
    assert_int_equal(c.alert_silent_s, 900);
    assert_int_equal(c.alert_lag_s, 7200);
    snprintf(want, sizeof want, "%s/ctl.db", dir);
    assert_string_equal(c.database, want); /* from the config's folder */
    assert_string_equal(c.password_file, "/etc/mosquitto/passwd");
    assert_string_equal(c.admin_file, "");
    assert_string_equal(c.tls_cert, "");
    assert_int_equal(load("[web]\nlisten = 0.0.0.0\nport = 0\ndatabase = a.db\n"
                          "admin_file = admin\ntls_cert = c.pem\ntls_key = k.pem\n"
                          "max_sessions = 3\nsession_ttl_s = 600\nlive_max_clients = 0\n"
                          "live_poll_ms = 250\nlive_queue_bytes = 8192\nthreads = 4\n"
                          "max_connections = 100\nalert_silent_s = 60\nalert_lag_s = 1800\n",
                          &c, err, sizeof err),
                     CFG_OK);
    assert_string_equal(c.listen, "0.0.0.0");
    assert_int_equal(c.port, 0);
    assert_int_equal(c.max_sessions, 3);
    assert_int_equal(c.session_ttl_s, 600);
    assert_int_equal(c.live_max_clients, 0); /* no live streams: pages poll */
    assert_int_equal(c.live_poll_ms, 250);
    assert_int_equal(c.live_queue_bytes, 8192);
    assert_int_equal(c.threads, 4);
    assert_int_equal(c.max_connections, 100);
    assert_int_equal(c.alert_silent_s, 60);
    assert_int_equal(c.alert_lag_s, 1800);
    snprintf(want, sizeof want, "%s/k.pem", dir);
    assert_string_equal(c.tls_key, want);
}

static void refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text, *says;
    } BAD[] = {
        {"[web]\npassword_file = p\n", "needs database"},
        {"[web]\ndatabase = d\n", "needs password_file"},
        {"[web]\ndatabase = d\npassword_file = p\ntls_cert = c\n", "go together"},
        {"[web]\ndatabase = d\npassword_file = p\ntls_key = k\n", "go together"},
        {"[web]\ndatabase = d\npassword_file = p\ncolour = red\n", ":4:"},
        {"[web]\ndatabase = d\ndatabase = e\npassword_file = p\n", ":3:"},
        {"[web]\ndatabase = d\npassword_file = p\nlisten = localhost\n", "IPv4"},
        {"[web]\ndatabase = d\npassword_file = p\nport = 65536\n", "port"},
        {"[web]\ndatabase = d\npassword_file = p\nmax_sessions = 0\n", "max_sessions"},
        {"[web]\ndatabase = d\npassword_file = p\nsession_ttl_s = 5\n", "session_ttl_s"},
        {"[web]\ndatabase = d\npassword_file = p\nthreads = 0\n", "threads"},
        {"[web]\ndatabase = d\npassword_file = p\nthreads = 257\n", "threads"},
        {"[web]\ndatabase = d\npassword_file = p\nlive_poll_ms = 10\n", "live_poll_ms"},
        {"[web]\ndatabase = d\npassword_file = p\nlive_queue_bytes = 100\n", "live_queue_bytes"},
        {"[web]\ndatabase = d\npassword_file = p\nmax_connections = 1\n", "max_connections"},
        {"[web]\ndatabase = d\npassword_file = p\nalert_silent_s = 0\n", "alert_silent_s"},
        {"[controller]\ndb = d\n", "controller"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        web_config c;
        char err[512];
        int rc = load(BAD[i].text, &c, err, sizeof err);
        if (rc == CFG_OK || !strstr(err, BAD[i].says) || !strstr(err, path))
            fail_msg("case %zu: rc %d, message '%s' (want '%s' and the file)", i, rc, err,
                     BAD[i].says);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_and_paths),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
