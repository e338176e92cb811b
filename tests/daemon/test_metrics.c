/*
 * The controller's metrics page, scraped over real HTTP (label integration): a real mosquitto,
 * the real `mgx controller` binary with metrics_listen and metrics_textfile, homes that send
 * good orders, one with a broken signature, one that does not decode, and readings good and
 * bad. The test scrapes until the page shows what was sent (within a generous deadline, never
 * a count per time window) and checks:
 *  - the page is valid Prometheus text: HELP and TYPE before each family's samples, names and
 *    labels well-formed, no series twice, every value an integer or a decimal;
 *  - the counters equal what the homes did (accepted, rejected by reason, readings per meter
 *    and quality), the broker is connected, intervals are cleared;
 *  - the textfile holds a valid page too; /other is 404, POST is 405;
 *  - every metric the shipped Grafana dashboard (docs/grafana/mgx-controller.json) queries is
 *    on the page, and the dashboard is valid JSON.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "bus/bus.h"
#include "bus/payload.h"
#include "common/interval.h"
#include "common/wall_clock.h"
#include "files.h"
#include "homes.h"

#define HOMES       3
#define COMMUNITY   "metricsville"
#define DEADLINE_MS 60000

static volatile int controller_online;
/* what a failed assertion leaves running is stopped by the teardown */
static pid_t ctl_pid = -1;
static tst_broker *broker;

static void on_msg(void *user, const bus_message *m)
{
    (void)user;
    if (strcmp(m->topic, "mgx/v1/" COMMUNITY "/status/controller") == 0 &&
        strcmp(m->payload, "online") == 0)
        controller_online = 1;
}

/* GET or POST path on 127.0.0.1:port; the whole response (head and body), malloc'd. */
static char *http(int port, const char *method, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return NULL;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    assert_int_equal(send(fd, req, (size_t)n, 0), n);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

/* The value of the series written exactly as series (name{labels}) on the page, -1 if absent. */
static long long series(const char *page, const char *s)
{
    size_t n = strlen(s);
    for (const char *p = page; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, s, n) == 0 && p[n] == ' ')
            return atoll(p + n + 1);
    return -1;
}

/* The exposition format, strictly: fails the test with the offending line. */
static void check_format(const char *page)
{
    regex_t help, type, sample;
    assert_int_equal(regcomp(&help, "^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$", REG_EXTENDED), 0);
    assert_int_equal(
        regcomp(&type, "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$", REG_EXTENDED), 0);
    assert_int_equal(regcomp(&sample,
                             "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|"
                             "\\\\.)*\"(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\")*\\})? "
                             "-?[0-9]+(\\.[0-9]+)?$",
                             REG_EXTENDED),
                     0);
    char *copy = strdup(page), *save = NULL, typed[128] = "";
    json_t *seen = json_object();
    assert_true(strlen(page) > 0 && page[strlen(page) - 1] == '\n');
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        regmatch_t m[2];
        if (regexec(&help, line, 2, m, 0) == 0)
            continue;
        if (regexec(&type, line, 2, m, 0) == 0) {
            snprintf(typed, sizeof typed, "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                     line + m[1].rm_so);
            continue;
        }
        if (regexec(&sample, line, 2, m, 0) != 0)
            fail_msg("not exposition format: %s", line);
        if (strncmp(line, typed, strlen(typed)) != 0 || !typed[0])
            fail_msg("sample before its # TYPE: %s", line);
        char key[1024];
        snprintf(key, sizeof key, "%.*s", (int)(strrchr(line, ' ') - line), line);
        if (json_object_get(seen, key))
            fail_msg("series twice: %s", key);
        json_object_set_new(seen, key, json_true());
    }
    json_decref(seen);
    free(copy);
    regfree(&help);
    regfree(&type);
    regfree(&sample);
}

/* Every mgx_* metric named in the dashboard's queries is a family on the page. */
static void check_dashboard(const char *page)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/grafana/mgx-controller.json", MGX_SOURCE_DIR);
    json_error_t jerr;
    json_t *dash = json_load_file(path, 0, &jerr);
    if (!dash)
        fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
    char *text = tst_file_text(path);
    regex_t name;
    assert_int_equal(regcomp(&name, "mgx_controller_[a-z_]+", REG_EXTENDED), 0);
    int found = 0;
    for (const char *p = text;;) {
        regmatch_t m[1];
        if (regexec(&name, p, 1, m, 0) != 0)
            break;
        char metric[128], decl[160];
        snprintf(metric, sizeof metric, "%.*s", (int)(m[0].rm_eo - m[0].rm_so), p + m[0].rm_so);
        snprintf(decl, sizeof decl, "# TYPE %s ", metric);
        if (!strstr(page, decl))
            fail_msg("the dashboard queries %s, which the page does not have", metric);
        found++;
        p += m[0].rm_eo;
    }
    assert_true(found >= 8);
    regfree(&name);
    free(text);
    json_decref(dash);
}

static void test_metrics_page(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    tst_broker *br = broker = tst_broker_start(NULL);
    assert_non_null(br);
    char db_path[TST_CTL_PATH_MAX], conf[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX];
    char anchor[64], textfile[TST_CTL_PATH_MAX + 16];
    char *dir = tst_controller_dir("metrics", db_path, conf, log);
    snprintf(textfile, sizeof textfile, "%s/mgx.prom", dir);
    int mport = tst_free_port();
    FILE *f = tst_controller_config(conf, tst_broker_port(br), COMMUNITY, db_path, -1);
    fprintf(f, "metrics_listen = 127.0.0.1:%d\nmetrics_textfile = %s\n", mport, textfile);
    fclose(f);
    tst_home homes[HOMES];
    tst_homes_register(homes, HOMES, 7, db_path, true);
    ctl_clock clock = tst_sim_clock(anchor, sizeof anchor);
    pid_t ctl = ctl_pid = tst_controller_start(bin, conf, anchor, log, NULL);
    bus_client *c = tst_homes_connect(tst_broker_port(br), COMMUNITY, 0, on_msg);
    /* orders go out once the controller is subscribed (it says "online" after its SUBACKs) */
    assert_int_equal(bus_subscribe(c, "mgx/v1/" COMMUNITY "/status/controller", 1), BUS_OK);
    int64_t up_by = ctl_wall_ms() + DEADLINE_MS;
    while (!controller_online && ctl_wall_ms() < up_by)
        bus_loop(c, 100);
    assert_true(controller_online);

    /* each home one good order for the next open interval; home 0 also one with a broken
     * signature; home 1 a message that is no order; readings: good for home 0, garbage for 1 */
    const ctl_interval_rules rules = {900, 300, 4};
    unsigned seed = 5;
    static const tst_order_shape shape = {2, 100, 700, 90000, 60000, 150000, 100000};
    int64_t sim_ms = ctl_clock_sim_ms(&clock, ctl_wall_ms());
    int64_t iv = ctl_interval_first_open(sim_ms / 1000, &rules) + 1;
    for (int h = 0; h < HOMES; h++) {
        tst_home_make_order(homes, h, COMMUNITY, iv, sim_ms, &seed, &shape);
        tst_home_send_order(c, COMMUNITY, &homes[h]);
    }
    tst_home_make_order(homes, 0, COMMUNITY, iv + 1, sim_ms, &seed, &shape);
    homes[0].pending.sig[5] ^= 0x40;
    tst_home_send_order(c, COMMUNITY, &homes[0]);
    assert_int_equal(
        bus_publish(c, "mgx/v1/" COMMUNITY "/order/home-1", "{\"no\":1}", 8, 1, false, NULL, NULL),
        BUS_OK);
    mtr_sample s = {"m-home-0", sim_ms, 100, 1000, 0, -1, 0};
    char body[BUS_JSON_MAX];
    int n = bus_state_encode(&s, body, sizeof body);
    assert_true(n > 0);
    assert_int_equal(bus_publish(c, "mgx/v1/" COMMUNITY "/meter/m-home-0/state", body, (size_t)n,
                                 1, false, NULL, NULL),
                     BUS_OK);
    assert_int_equal(bus_publish(c, "mgx/v1/" COMMUNITY "/meter/m-home-1/state", "garbage", 7, 1,
                                 false, NULL, NULL),
                     BUS_OK);

    char *resp = NULL;
    const char *page = NULL;
    int64_t deadline = ctl_wall_ms() + DEADLINE_MS;
    for (;;) {
        bus_loop(c, 100);
        free(resp);
        resp = http(mport, "GET", "/metrics");
        page = resp ? strstr(resp, "\r\n\r\n") : NULL;
        page = page ? page + 4 : NULL;
        if (page &&
            series(page, "mgx_controller_orders_total{outcome=\"accepted\",reason=\"ok\"}") ==
                HOMES &&
            series(page, "mgx_controller_orders_total{outcome=\"rejected\",reason="
                         "\"bad_signature\"}") == 1 &&
            series(page, "mgx_controller_orders_total{outcome=\"rejected\",reason="
                         "\"malformed\"}") == 1 &&
            series(page, "mgx_controller_readings_total{meter=\"m-home-0\",quality=\"good\"}") ==
                1 &&
            series(page, "mgx_controller_readings_total{meter=\"m-home-1\","
                         "quality=\"rejected\"}") == 1 &&
            series(page, "mgx_controller_clearings_total") >= 1 &&
            series(page, "mgx_controller_broker_connected") == 1)
            break;
        if (ctl_wall_ms() > deadline) {
            char last[TST_CTL_PATH_MAX + 16];
            snprintf(last, sizeof last, "%s/last-page.txt", dir);
            tst_file_write(last, page ? page : "(no answer)", 0644);
            fail_msg("the page did not show what was sent within %d ms: see %s", DEADLINE_MS,
                     last);
        }
        tst_sleep_ms(200);
    }
    assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
    check_format(page);
    assert_int_equal(series(page, "mgx_controller_orders_received_total"), HOMES + 2);
    check_dashboard(page);

    char *tf = tst_file_text(textfile);
    check_format(tf);
    assert_true(series(tf, "mgx_controller_broker_connected") == 1);
    free(tf);
    char *r404 = http(mport, "GET", "/other");
    assert_non_null(r404);
    assert_non_null(strstr(r404, "HTTP/1.1 404"));
    char *r405 = http(mport, "POST", "/metrics");
    assert_non_null(strstr(r405, "HTTP/1.1 405"));
    free(r404);
    free(r405);
    free(resp);

    bus_stop(c, 1000);
    bus_free(c);
    ctl_pid = -1;
    tst_controller_stop(ctl);
    tst_homes_free(homes, HOMES);
    broker = NULL;
    tst_broker_free(br);
    tst_rmtree(dir);
    free(dir);
}

static int teardown(void **state)
{
    (void)state;
    if (ctl_pid > 0)
        tst_kill9(ctl_pid);
    ctl_pid = -1;
    tst_broker_free(broker);
    broker = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(test_metrics_page, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
