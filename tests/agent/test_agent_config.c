/*
 * The agent's config, read with the daemon config loader: the shipped examples (the agent's
 * own file and a home's one file shared with the meter daemon) load with the documented values
 * and derived defaults; every kind of mistake is reported as FILE:LINE with the key; the
 * shared [bus] refuses a password file other users can open (for every daemon, tested on the
 * loader alone too); the client id never collides with the meter daemon's in a shared file.
 */
#define _POSIX_C_SOURCE 200809L
#include "agent/agent_config.h"

#include "broker.h"
#include "files.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

/* Copies a shipped example into dir with every "/etc/mgx/" and "/var/lib/mgx/" made dir/, so
 * the files it names can be made there. */
static void copy_example(const char *example, const char *dir, const char *out)
{
    char *text = tst_file_text(example);
    FILE *f = fopen(out, "w");
    assert_non_null(f);
    for (const char *p = text; *p;) {
        if (!strncmp(p, "/etc/mgx/", 9) || !strncmp(p, "/var/lib/mgx/", 13)) {
            fprintf(f, "%s/", dir);
            p += p[1] == 'e' ? 9 : 13;
        } else {
            fputc(*p++, f);
        }
    }
    fclose(f);
    free(text);
}

static void touch(const char *dir, const char *name, const char *text, mode_t mode)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    tst_file_write(path, text, mode);
}

/* Copies the shipped example config/<example> into a new folder as <name> (path gets its path),
 * writes the files it names there (the MQTT password file holding password_text, a CA file and
 * the home's key, neither read at load time) and loads it into c, failing the test if it does
 * not load. Returns the folder; the caller removes and frees it. */
static char *load_example(const char *example, const char *name, const char *password_text,
                          char *path, size_t len, agc_config *c)
{
    char *dir = tst_tmpdir("agentcfg");
    assert_non_null(dir);
    char src[600], err[512] = "";
    snprintf(src, sizeof src, "%s/config/%s", MGX_SOURCE_DIR, example);
    snprintf(path, len, "%s/%s", dir, name);
    copy_example(src, dir, path);
    touch(dir, "mqtt-password", password_text, 0600);
    touch(dir, "meter-mqtt-password", "the meter daemon's\n", 0600);
    touch(dir, "ca.crt", "not parsed at load time\n", 0644);
    touch(dir, "h-017.key", "loaded by the agent later\n", 0600);
    if (agc_load(path, c, err, sizeof err))
        fail_msg("%s", err);
    return dir;
}

static void test_agent_example_loads(void **state)
{
    (void)state;
    char path[600], want[700];
    agc_config c;
    char *dir = load_example("agent-example.ini", "agent.ini", "s3cret\nsecond line ignored\n",
                             path, sizeof path, &c);
    assert_string_equal(c.bus.community, "demo");
    assert_string_equal(c.bus.host, "broker.example.org");
    assert_int_equal(c.bus.port, 8883);
    assert_string_equal(c.participant, "h-017");
    assert_string_equal(c.bus.username, "h-017");        /* derived: the participant */
    assert_string_equal(c.bus.client_id, "h-017-agent"); /* derived */
    assert_non_null(c.bus.password);
    assert_string_equal(c.bus.password, "s3cret"); /* the first line, without its newline */
    snprintf(want, sizeof want, "%s/ca.crt", dir);
    assert_string_equal(c.bus.tls_ca, want);
    snprintf(want, sizeof want, "%s/h-017.key", dir);
    assert_string_equal(c.key_file, want);
    snprintf(want, sizeof want, "%s/agent.db", dir);
    assert_string_equal(c.outbox, want);
    assert_string_equal(c.meter_id, "h-017");
    assert_int_equal(c.strategy.kind, SIM_AGENT_MARKUP);
    assert_true(c.strategy.markup == 0.1);
    assert_int_equal(c.tariffs.feed_in_uc_per_kwh, 80000);
    assert_int_equal(c.tariffs.retail_uc_per_kwh, 300000);
    assert_int_equal(c.tariffs.network_fee_uc_per_kwh, 20000);
    assert_int_equal(c.interval_s, 900);
    assert_int_equal(c.gate_closure_s, 300);
    assert_int_equal(c.resend_s, 5); /* default */
    assert_int_equal(c.others.sections, 0);
    agc_clear(&c);
    assert_null(c.bus.password);
    tst_rmtree(dir);
    free(dir);
}

/* The home example: one file for `mgx meter` and `mgx agent`. The agent skips the meter
 * daemon's four sections; [bus] client_id names the meter daemon, so the agent keeps its
 * default and the two never share a client id. */
static void test_home_example_loads(void **state)
{
    (void)state;
    char path[600];
    agc_config c;
    char *dir = load_example("home-example.ini", "home.ini", "s3cret\n", path, sizeof path, &c);
    assert_string_equal(c.participant, "h-017");
    /* the agent's own login and password, not [bus]'s (the meter daemon's h-017.meter) */
    assert_string_equal(c.bus.username, "h-017");
    assert_string_equal(c.bus.password, "s3cret");
    assert_string_equal(c.bus.client_id, "h-017-agent");
    assert_string_equal(c.meter_id, "h-017");
    /* [outbox], [homeassistant], [meter h-017], [meter h-017-pv] */
    assert_int_equal(c.others.sections, 4);
    agc_clear(&c);
    tst_rmtree(dir);
    free(dir);
}

/* Cuts err to start at the name of the config file (the folder before it differs per run). */
static void cut_to_file(char *err, const char *file)
{
    const char *tail = strstr(err, file);
    if (tail)
        memmove(err, tail, strlen(tail) + 1);
}

/* Loads text as a.ini in a fresh folder that also holds a signing key file "k" and a 0600
 * password file "pw"; returns agc_load's result, with the message cut to start at "a.ini"
 * (the folder differs per run). *out, if not NULL, gets the config (password wiped). */
static int load_cfg(const char *text, char *err, size_t len, agc_config *out)
{
    char *dir = tst_tmpdir("agentcfg");
    assert_non_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/a.ini", dir);
    tst_file_write(path, text, 0644);
    touch(dir, "k", "key\n", 0600);
    touch(dir, "pw", "pw\n", 0600);
    agc_config c;
    err[0] = '\0';
    int rc = agc_load(path, &c, err, len);
    agc_clear(&c);
    if (out)
        *out = c;
    cut_to_file(err, "a.ini");
    tst_rmtree(dir);
    free(dir);
    return rc;
}

static int load(const char *text, char *err, size_t len) { return load_cfg(text, err, len, NULL); }

/* Lines 1-8; a key appended is on line 9. */
#define AGENT                                                                                  \
    "[agent]\nparticipant = h1\nkey_file = k\noutbox = o\nfeed_in_uc_per_kwh = 1\n"            \
    "retail_uc_per_kwh = 2\n"
#define BASE "[bus]\ncommunity = c\n" AGENT

static void expect(const char *text, const char *want)
{
    char err[512];
    int rc = load(text, err, sizeof err);
    if (rc != -1 || strcmp(err, want) != 0)
        fail_msg("rc %d, expected '%s', got '%s'", rc, want, err);
}

static void test_key_errors_name_file_line_and_key(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(load(BASE, err, sizeof err), 0);
    expect(BASE "strategy = greedy\n",
           "a.ini:9: strategy: 'greedy' is not truthful, zic, markup or zip");
    expect(BASE "interval_s = 15m\n", "a.ini:9: interval_s: '15m' is not an integer");
    expect(BASE "interval_s = 0\n", "a.ini:9: interval_s: 0 is out of range [1, 86400]");
    expect(BASE "gate_closure_s = 604801\n",
           "a.ini:9: gate_closure_s: 604801 is out of range [0, 604800]");
    expect(BASE "markup = 1.5\n", "a.ini:9: markup: '1.5' is not a number in 0..1");
    expect(BASE "markup = 0.1x\n", "a.ini:9: markup: '0.1x' is not a number in 0..1");
    expect(BASE "feed_in_uc_per_kwh = -1\n",
           "a.ini:9: feed_in_uc_per_kwh: given twice"); /* repeats are caught first */
    /* the bound is MKT_PRICE_MAX_UC_PER_KWH */
    expect("[bus]\ncommunity = c\n[agent]\nfeed_in_uc_per_kwh = -1\n",
           "a.ini:4: feed_in_uc_per_kwh: -1 is out of range [0, 1000000000000]");
    expect(BASE "timing = later\n", "a.ini:9: timing: must be ex_ante or ex_post");
    assert_int_equal(load(BASE "timing = ex_post\n", err, sizeof err), 0);
    expect(BASE "colour = red\n", "a.ini:9: unknown key 'colour' in [agent]");
    expect(BASE "participant = h2\n", "a.ini:9: participant: given twice");
    expect(BASE "meter_id = m.1\n",
           "a.ini:9: meter_id: 'm.1' must be 1-63 characters of A-Z a-z 0-9 _ -");
    expect(BASE "client_id = a/b\n",
           "a.ini:9: client_id: 'a/b' must be 1-63 characters of A-Z a-z 0-9 _ -");
    expect("[bus]\ncommunity = c/d\n",
           "a.ini:2: community: 'c/d' must be 1-63 characters of A-Z a-z 0-9 _ -");
    expect(BASE "[agent]\n", "a.ini:9: [agent] given twice (first at line 3)");
    expect(BASE "this is not ini\n", "a.ini:9: syntax error (expected [section] or key = value)");
    expect("participant = h1\n" BASE, "a.ini:1: key outside any [section]");
    /* a key file that is not there is named at its line, not when the agent starts */
    char err2[512];
    assert_int_equal(load("[bus]\ncommunity = c\n[agent]\nkey_file = nokey\n", err2,
                          sizeof err2), -1);
    assert_non_null(strstr(err2, "a.ini:4: key_file: "));
    assert_non_null(strstr(err2, "/nokey: No such file or directory"));
}

/* The agent's [bus] is the shared one: its old key names are refused with the new name. */
static void test_bus_is_the_shared_syntax(void **state)
{
    (void)state;
    expect("[bus]\ncommunity = c\nca_file = ca.crt\n",
           "a.ini:3: unknown key 'ca_file' in [bus]: every mgx daemon's [bus] calls it tls_ca");
    expect("[bus]\ncommunity = c\ncert_file = h.crt\n",
           "a.ini:3: unknown key 'cert_file' in [bus]: every mgx daemon's [bus] calls it "
           "tls_cert");
    expect("[bus]\ncommunity = c\nkey_file = h.key\n",
           "a.ini:3: unknown key 'key_file' in [bus]: every mgx daemon's [bus] calls it tls_key");
    expect("[bus]\ncommunity = c\nhots = x\n", "a.ini:3: unknown key 'hots' in [bus]");
    expect(BASE "[bus]\n", "a.ini:9: [bus] given twice (first at line 1)");
    expect("[bus]\ncommunity = c\ntls_cert = k\n" AGENT,
           "a.ini:1: [bus] tls_cert and tls_key go together");
    /* the username defaults to the participant before [bus] checks a password needs one... */
    agc_config c;
    char err[512];
    assert_int_equal(load_cfg("[bus]\ncommunity = c\npassword_file = pw\n" AGENT, err,
                              sizeof err, &c), 0);
    assert_string_equal(c.bus.username, "h1");
    /* ...but not with a client certificate, whose name is the identity */
    expect("[bus]\ncommunity = c\ntls_ca = k\ntls_cert = k\ntls_key = k\npassword_file = pw\n"
           AGENT, "a.ini:1: [bus] password_file needs username");
    /* the keys the agent did not have before work now */
    assert_int_equal(load_cfg("[bus]\ncommunity = c\nkeepalive_s = 12\nbackoff_min_ms = 100\n"
                              "username = u\npassword_file = pw\n" AGENT,
                              err, sizeof err, &c),
                     0);
    assert_int_equal(c.bus.keepalive_s, 12);
    assert_int_equal(c.bus.backoff_min_ms, 100);
    assert_string_equal(c.bus.username, "u");
    assert_null(c.bus.password); /* wiped by agc_clear in load_cfg */
}

static void test_missing_and_related_keys(void **state)
{
    (void)state;
    expect("[bus]\ncommunity = c\n", "a.ini: no [agent] section (participant, key_file, outbox "
                                     "and the tariffs are required)");
    expect(AGENT, "a.ini: no [bus] section (community is required)");
    expect("[bus]\nhost = h\n" AGENT, "a.ini:1: [bus] needs community = NAME");
    expect("[bus]\ncommunity = c\n\n[agent]\nkey_file = k\n",
           "a.ini:4: [agent] needs participant");
    expect("[bus]\ncommunity = c\n[agent]\nparticipant = h1\noutbox = o\n",
           "a.ini:3: [agent] needs key_file");
    expect("[bus]\ncommunity = c\n[agent]\nparticipant = h1\nkey_file = k\n",
           "a.ini:3: [agent] needs outbox");
    expect("[bus]\ncommunity = c\n[agent]\nparticipant = h1\nkey_file = k\noutbox = o\n",
           "a.ini:3: [agent] needs feed_in_uc_per_kwh and retail_uc_per_kwh (the community's "
           "tariffs bound every price)");
    expect("[bus]\ncommunity = c\n[agent]\nparticipant = h1\nkey_file = k\noutbox = o\n"
           "feed_in_uc_per_kwh = 3\nretail_uc_per_kwh = 2\n",
           "a.ini:3: [agent] retail_uc_per_kwh is below feed_in_uc_per_kwh");
    /* ZIP's momentum must stay below 1 (sim_strategy_check), which 0..1 parsing lets through */
    expect(BASE "strategy = zip\nzip_momentum = 1\n",
           "a.ini:3: [agent] zip_momentum: out of range for the zip strategy");
}

/* [battery]: battery dispatch (docs/agent.md); its keys, defaults and cross-checks. */
static void test_battery_section(void **state)
{
    (void)state;
    char err[512];
    agc_config c;
    assert_int_equal(load_cfg(BASE, err, sizeof err, &c), 0);
    assert_int_equal(c.battery.line, 0); /* no section: no dispatch */
    assert_int_equal(load_cfg(BASE "[battery]\nhost = 10.0.0.7\ncapacity_wh = 10000\n"
                                   "power_w = 4000\nread_only = yes\npeak_start_h = 17\n",
                              err, sizeof err, &c),
                     0);
    assert_int_equal(c.battery.line, 9);
    assert_string_equal(c.battery.host, "10.0.0.7");
    assert_int_equal(c.battery.capacity_wh, 10000);
    assert_true(c.battery.read_only);
    assert_int_equal(c.battery.port, 502);
    assert_int_equal(c.battery.efficiency_pm, 900);
    assert_int_equal(c.battery.soc_min_pm, 100);
    assert_int_equal(c.battery.import_cap_w, -1);
    assert_int_equal(c.battery.peak_start_h, 17);
    expect(BASE "[battery]\nhost = h\npower_w = 1\n",
           "a.ini:9: [battery] needs host, capacity_wh and power_w");
    expect(BASE "[battery]\nhost = h\ncapacity_wh = 1\npower_w = 1\nsoc_min_permille = 900\n",
           "a.ini:9: [battery] soc_min_permille must be below soc_max_permille");
    expect(BASE "[battery]\nhost = h\ncapacity_wh = 0\n",
           "a.ini:11: capacity_wh: 0 is out of range [1, 10000000]");
}

/* The fitted forecast's [agent] keys: a PV meter, the home's place and plane, an optional
 * battery meter; their defaults and cross-checks. */
static void test_fitted_forecast_keys(void **state)
{
    (void)state;
    char err[512];
    agc_config c;
#define BAT "[battery]\nhost = h\ncapacity_wh = 10000\npower_w = 4000\n"
    assert_int_equal(load_cfg(BASE BAT, err, sizeof err, &c), 0);
    assert_string_equal(c.pv_meter_id, ""); /* persistence */
    assert_int_equal(load_cfg(BASE "pv_meter_id = h1-pv\nlatitude = 47.999\nlongitude = 7.842\n"
                                   "pv_tilt = 35\n" BAT,
                              err, sizeof err, &c),
                     0);
    assert_string_equal(c.pv_meter_id, "h1-pv");
    assert_string_equal(c.battery_meter_id, "");
    assert_false(c.site.battery_meter);
    assert_true(c.site.latitude_deg == 47.999 && c.site.longitude_deg == 7.842);
    assert_true(c.site.tilt_deg == 35.0 && c.site.azimuth_deg == 180.0);
    /* south of the equator the panels face north unless said otherwise */
    assert_int_equal(load_cfg(BASE "pv_meter_id = p\nbattery_meter_id = b\nlatitude = -33.9\n"
                                   "longitude = 151.2\n" BAT,
                              err, sizeof err, &c),
                     0);
    assert_true(c.site.azimuth_deg == 0.0 && c.site.tilt_deg == 30.0);
    assert_true(c.site.battery_meter);
    expect(BASE "pv_meter_id = p\nlatitude = 48\n" BAT,
           "a.ini:3: [agent] pv_meter_id needs latitude and longitude (the clear-sky model of "
           "the fitted forecast)");
    expect(BASE "latitude = 48\n" BAT, "a.ini:3: [agent] latitude, longitude, pv_tilt, "
                                      "pv_azimuth and battery_meter_id are for the fitted "
                                      "forecast: add pv_meter_id");
    expect(BASE "pv_meter_id = p\nlatitude = 48\nlongitude = 8\n",
           "a.ini:3: [agent] pv_meter_id: the fitted forecast plans the battery: add a "
           "[battery] section");
    expect(BASE "pv_meter_id = h1\nlatitude = 48\nlongitude = 8\n" BAT,
           "a.ini:3: [agent] meter_id, pv_meter_id and battery_meter_id must be three "
           "different meters");
    expect(BASE "latitude = 91\n", "a.ini:9: latitude: '91' is not a number in -90..90");
    expect(BASE "pv_azimuth = south\n",
           "a.ini:9: pv_azimuth: 'south' is not a number in 0..360");
#undef BAT
}

/* Sections: the meter daemon's are skipped, anything else is still an error. */
static void test_sections_of_a_shared_file(void **state)
{
    (void)state;
    agc_config c;
    char err[512];
    assert_int_equal(load_cfg(BASE "[outbox]\npath = m.db\nwhatever = 1\n[homeassistant]\n"
                                   "enabled = perhaps\n[meter home]\nprofile = sdm999\n"
                                   "[map mine]\n[meter\tpv 2]\n",
                              err, sizeof err, &c),
                     0);
    assert_int_equal(c.others.sections, 5);
    assert_int_equal(c.others.first_line, 9);
    expect(BASE "[agnet]\n", "a.ini:9: unknown section [agnet]");
    expect(BASE "[meter]\nprofile = sdm630\n", "a.ini:9: unknown section [meter]");
    expect(BASE "[meters home]\n", "a.ini:9: unknown section [meters home]");
    expect(BASE "[controller]\n", "a.ini:9: unknown section [controller]");
    /* a typo after a skipped section is still found, at its line */
    expect(BASE "[meter home]\nprofile = sdm630\n[homeasistant]\n",
           "a.ini:11: unknown section [homeasistant]");
    expect(BASE "[meter home]\nprofile = sdm630\n[agent]\n",
           "a.ini:11: [agent] given twice (first at line 3)");
}

static void test_client_id_and_username(void **state)
{
    (void)state;
    agc_config c;
    char err[512];
    /* agent alone: default, or [bus] client_id as before */
    assert_int_equal(load_cfg(BASE, err, sizeof err, &c), 0);
    assert_string_equal(c.bus.client_id, "h1-agent");
    assert_string_equal(c.bus.username, "h1");
    assert_string_equal(c.meter_id, "h1");
    assert_int_equal(load_cfg("[bus]\ncommunity = c\nclient_id = x\n" AGENT, err,
                              sizeof err, &c), 0);
    assert_string_equal(c.bus.client_id, "x");
    assert_int_equal(load_cfg(BASE "client_id = y\n", err, sizeof err, &c), 0);
    assert_string_equal(c.bus.client_id, "y");
    /* shared with the meter daemon: [bus] client_id is the meter daemon's */
    assert_int_equal(load_cfg("[bus]\ncommunity = c\nclient_id = x\n[agent]\nparticipant = h1\n"
                              "key_file = k\noutbox = o\nfeed_in_uc_per_kwh = 1\n"
                              "retail_uc_per_kwh = 2\n[meter h1]\nprofile = sdm630\n",
                              err, sizeof err, &c), 0);
    assert_string_equal(c.bus.client_id, "h1-agent");
    assert_int_equal(load_cfg("[bus]\ncommunity = c\nclient_id = x\n[agent]\nparticipant = h1\n"
                              "key_file = k\noutbox = o\nfeed_in_uc_per_kwh = 1\n"
                              "retail_uc_per_kwh = 2\nclient_id = y\n[meter h1]\n",
                              err, sizeof err, &c), 0);
    assert_string_equal(c.bus.client_id, "y");
    assert_int_equal(load("[bus]\ncommunity = c\nclient_id = x\n[agent]\nparticipant = h1\n"
                          "key_file = k\noutbox = o\nfeed_in_uc_per_kwh = 1\n"
                          "retail_uc_per_kwh = 2\nclient_id = x\n[meter h1]\n",
                          err, sizeof err), -1);
    assert_string_equal(err, "a.ini:4: [agent] client_id: 'x' is also [bus] client_id, which "
                             "the meter daemon of this file uses; one client id per daemon");
    /* the default needs participant + "-agent" to fit 63 characters: 57 does, 58 does not */
    char text[512], p57[58], p58[59];
    memset(p57, 'p', 57);
    p57[57] = '\0';
    memset(p58, 'p', 58);
    p58[58] = '\0';
    snprintf(text, sizeof text, "[bus]\ncommunity = c\n[agent]\nparticipant = %s\nkey_file = k\n"
             "outbox = o\nfeed_in_uc_per_kwh = 1\nretail_uc_per_kwh = 2\n", p57);
    assert_int_equal(load_cfg(text, err, sizeof err, &c), 0);
    assert_int_equal(strlen(c.bus.client_id), 63);
    snprintf(text, sizeof text, "[bus]\ncommunity = c\n[agent]\nparticipant = %s\nkey_file = k\n"
             "outbox = o\nfeed_in_uc_per_kwh = 1\nretail_uc_per_kwh = 2\n", p58);
    assert_int_equal(load(text, err, sizeof err), -1);
    assert_non_null(strstr(err, "a.ini:3: [agent] client_id: set it (participant"));
    /* a client certificate is the identity: no username is made up */
    assert_int_equal(load_cfg("[bus]\ncommunity = c\ntls_ca = k\ntls_cert = k\ntls_key = k\n" AGENT
                             , err, sizeof err, &c), 0);
    assert_string_equal(c.bus.username, "");
    assert_int_equal(load_cfg("[bus]\ncommunity = c\nusername = other\n" AGENT, err,
                              sizeof err, &c), 0);
    assert_string_equal(c.bus.username, "other");
}

/* One login per daemon (docs/bus-security.md): in a shared file [bus]'s login is the meter
 * daemon's, and the agent logs in as [agent] username (default the participant) with [agent]
 * password_file; a file that would log both in as one login is refused. */
static void test_shared_file_logins(void **state)
{
    (void)state;
    agc_config c;
    char err[512];
#define SHARED_BUS "[bus]\ncommunity = c\nusername = h1.meter\npassword_file = pw\n"
    assert_int_equal(load_cfg(SHARED_BUS AGENT "password_file = pw\n[meter h1]\n", err,
                              sizeof err, &c), 0);
    assert_string_equal(c.bus.username, "h1");
    assert_int_equal(load_cfg(SHARED_BUS AGENT "username = h1-x\npassword_file = pw\n"
                              "[meter h1]\n", err, sizeof err, &c), 0);
    assert_string_equal(c.bus.username, "h1-x");
    assert_int_equal(load(SHARED_BUS AGENT "[meter h1]\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini:5: [agent] needs password_file: [bus] password_file is the "
                             "meter daemon's (login h1.meter), the agent logs in as h1");
    /* the old layout: both daemons as the home */
    assert_int_equal(load("[bus]\ncommunity = c\nusername = h1\npassword_file = pw\n" AGENT
                          "[meter h1]\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini:5: [agent]: the agent and the meter daemon of this file "
                             "would both log in as 'h1', and the broker keeps one connection "
                             "per login; make [bus] username the meter daemon's login "
                             "(h1.meter, mgx-certs.sh meter) and give the agent [agent] "
                             "password_file");
    assert_int_equal(load(SHARED_BUS AGENT "username = h1.meter\n[meter h1]\n", err,
                          sizeof err), -1);
    assert_non_null(strstr(err, "would both log in as 'h1.meter'"));
    /* a file of the agent alone: [agent] username and password_file win over [bus]'s */
    assert_int_equal(load_cfg("[bus]\ncommunity = c\nusername = u\n" AGENT
                              "username = v\npassword_file = pw\n", err, sizeof err, &c), 0);
    assert_string_equal(c.bus.username, "v");
    assert_int_equal(load(BASE "password_file = nothere\n", err, sizeof err), -1);
    assert_non_null(strstr(err, "a.ini:3: [agent] password_file: "));
#undef SHARED_BUS
}

/* Writes a password file with mode and loads a [bus] with the loader alone (as every daemon
 * does); returns cfg_load's code, the message after the folder, and the password if read. */
static int load_bus_password(mode_t mode, const char *content, char *err, size_t len,
                             char *pw_out, size_t pw_cap)
{
    char *dir = tst_tmpdir("buspw");
    assert_non_null(dir);
    char path[512], pw[512];
    snprintf(path, sizeof path, "%s/d.ini", dir);
    snprintf(pw, sizeof pw, "%s/pw", dir);
    tst_file_write(pw, content, mode);
    tst_file_write(path, "[bus]\ncommunity = c\nusername = u\npassword_file = pw\n", 0644);
    cfg_loader *l = cfg_loader_new();
    assert_non_null(l);
    cfg_bus b;
    assert_int_equal(cfg_bus_add(l, &b), CFG_OK);
    err[0] = '\0';
    int rc = cfg_load(l, path, err, len);
    pw_out[0] = '\0';
    if (b.password)
        snprintf(pw_out, pw_cap, "%s", b.password);
    cfg_bus_clear(&b);
    assert_null(b.password);
    cfg_loader_free(l);
    cut_to_file(err, "d.ini");
    tst_rmtree(dir);
    free(dir);
    return rc;
}

static void test_password_file_must_be_private(void **state)
{
    (void)state;
    char err[512], pw[64];
    /* the owner alone may read (and write) it */
    static const mode_t ok[] = {0600, 0400};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(load_bus_password(ok[i], "hunter2\r\n", err, sizeof err, pw, sizeof pw),
                         CFG_OK);
        assert_string_equal(pw, "hunter2");
    }
    /* any permission for group or others is refused: every one of the six bits alone */
    static const mode_t open_modes[] = {0640, 0620, 0610, 0604, 0602, 0601, 0644, 0666};
    for (size_t i = 0; i < sizeof open_modes / sizeof open_modes[0]; i++) {
        assert_int_equal(load_bus_password(open_modes[i], "hunter2\n", err, sizeof err, pw,
                                           sizeof pw),
                         CFG_E_BAD);
        char want[256];
        snprintf(want, sizeof want, "/pw is open to other users (mode %04o); chmod 600 it",
                 (unsigned)open_modes[i]);
        if (!strstr(err, "d.ini:4: password_file: ") || !strstr(err, want))
            fail_msg("mode %04o: %s", (unsigned)open_modes[i], err);
        assert_string_equal(pw, ""); /* nothing read, nothing kept */
    }
    assert_int_equal(load_bus_password(0600, "", err, sizeof err, pw, sizeof pw), CFG_E_BAD);
    assert_non_null(strstr(err, "d.ini:4: password_file: "));
    assert_non_null(strstr(err, "/pw is empty"));
    assert_int_equal(load_bus_password(0600, "\nx\n", err, sizeof err, pw, sizeof pw), CFG_E_BAD);
    assert_non_null(strstr(err, "/pw starts with an empty line"));
    /* the agent gets the same rule through the shared [bus] */
    char *dir = tst_tmpdir("agentpw");
    assert_non_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/a.ini", dir);
    touch(dir, "k", "key\n", 0600);
    touch(dir, "pw", "pw\n", 0604);
    tst_file_write(path, "[bus]\ncommunity = c\nusername = u\npassword_file = pw\n" AGENT, 0644);
    agc_config c;
    assert_int_equal(agc_load(path, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "a.ini:4: password_file: "));
    assert_non_null(strstr(err, "is open to other users (mode 0604); chmod 600 it"));
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_example_loads),
        cmocka_unit_test(test_home_example_loads),
        cmocka_unit_test(test_key_errors_name_file_line_and_key),
        cmocka_unit_test(test_bus_is_the_shared_syntax),
        cmocka_unit_test(test_missing_and_related_keys),
        cmocka_unit_test(test_battery_section),
        cmocka_unit_test(test_fitted_forecast_keys),
        cmocka_unit_test(test_sections_of_a_shared_file),
        cmocka_unit_test(test_shared_file_logins),
        cmocka_unit_test(test_client_id_and_username),
        cmocka_unit_test(test_password_file_must_be_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
