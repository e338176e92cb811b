/*
 * The home agent's configuration (see agent_config.h): the [agent] section as a handler of the
 * daemon config loader, whose [bus] the agent shares with every other mgx daemon. Values are
 * parsed strictly (an integer has nothing after it, a path fits its buffer, an id is a valid
 * topic level); the checks across keys, and the defaults that depend on other keys, run once
 * the whole file is read.
 */
#define _POSIX_C_SOURCE 200809L
#include "agent/agent_config.h"

#include "common/errbuf.h"

#include "common/interval.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The order of this table is the bit of each key in agc_config.seen. */
enum {
    K_PARTICIPANT, K_CLIENT_ID, K_KEY_FILE, K_METER_ID, K_OUTBOX, K_STRATEGY, K_MARKUP,
    K_ZIP_BETA, K_ZIP_MOMENTUM, K_FEED_IN, K_RETAIL, K_FEE, K_INTERVAL, K_GATE, K_RESEND,
    K_GIVE_UP, K_GAP, K_MAX_POWER, K_TIMING, K_LAG, K_USERNAME, K_PASSWORD_FILE, K_METRICS_FILE,
    K_PV_METER, K_BATTERY_METER, K_LATITUDE, K_LONGITUDE, K_PV_TILT, K_PV_AZIMUTH, K_COUNT
};
static const char *const AGENT_KEYS[K_COUNT + 1] = {
    "participant", "client_id", "key_file", "meter_id", "outbox", "strategy", "markup",
    "zip_beta", "zip_momentum", "feed_in_uc_per_kwh", "retail_uc_per_kwh",
    "network_fee_uc_per_kwh", "interval_s", "gate_closure_s", "resend_s", "give_up_s",
    "max_reading_gap_s", "max_power_w", "timing", "forecast_lag", "username", "password_file",
    "metrics_file", "pv_meter_id", "battery_meter_id", "latitude", "longitude", "pv_tilt",
    "pv_azimuth", NULL};

#define SEEN(c, k) ((int)(((c)->seen >> (k)) & 1u))

/* A strategy parameter: a plain number in 0..1 (sim_strategy_check narrows it later). These
 * are pricing knobs, not money: the prices they lead to are integers. */
static int fraction(double *dst, const char *key, const char *v, char *err, size_t len)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno == ERANGE || !(d >= 0.0 && d <= 1.0))
        return ctl_fail(CFG_E_BAD, err, len, "%s: '%s' is not a number in 0..1", key, v);
    *dst = d;
    return CFG_OK;
}

/* A number of degrees in lo..hi (the home's location and PV plane). */
static int degrees(double *dst, const char *key, const char *v, double lo, double hi, char *err,
                   size_t len)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno == ERANGE || !(d >= lo && d <= hi))
        return ctl_fail(CFG_E_BAD, err, len, "%s: '%s' is not a number in %g..%g", key, v, lo,
                        hi);
    *dst = d;
    return CFG_OK;
}

/* A path relative to the config file's folder; must_read: the file must be readable now. */
static int path_value(const agc_config *c, char *dst, const char *key, const char *v,
                      bool must_read, char *err, size_t len)
{
    if (cfg_path(c->loader, v, dst, CFG_PATH_MAX))
        return ctl_fail(CFG_E_BAD, err, len, "%s: path too long", key);
    if (must_read && access(dst, R_OK) != 0)
        return ctl_fail(CFG_E_BAD, err, len, "%s: %s: %s", key, dst, strerror(errno));
    return CFG_OK;
}

static int set_key(agc_config *c, int k, const char *key, const char *v, char *err, size_t len)
{
    int64_t *tariff[] = {&c->tariffs.feed_in_uc_per_kwh, &c->tariffs.retail_uc_per_kwh,
                         &c->tariffs.network_fee_uc_per_kwh};
    switch (k) {
    case K_PARTICIPANT: return cfg_parse_id(key, v, c->participant, err, len);
    case K_CLIENT_ID: return cfg_parse_id(key, v, c->client_id, err, len);
    case K_USERNAME: return cfg_parse_str(key, v, c->username, sizeof c->username, err, len);
    case K_PASSWORD_FILE: return path_value(c, c->password_file, key, v, false, err, len);
    case K_KEY_FILE: return path_value(c, c->key_file, key, v, true, err, len);
    case K_METER_ID: return cfg_parse_id(key, v, c->meter_id, err, len);
    case K_OUTBOX: return path_value(c, c->outbox, key, v, false, err, len);
    case K_METRICS_FILE: return path_value(c, c->metrics_file, key, v, false, err, len);
    case K_PV_METER: return cfg_parse_id(key, v, c->pv_meter_id, err, len);
    case K_BATTERY_METER: return cfg_parse_id(key, v, c->battery_meter_id, err, len);
    case K_LATITUDE: return degrees(&c->site.latitude_deg, key, v, -90, 90, err, len);
    case K_LONGITUDE: return degrees(&c->site.longitude_deg, key, v, -180, 180, err, len);
    case K_PV_TILT: return degrees(&c->site.tilt_deg, key, v, 0, 90, err, len);
    case K_PV_AZIMUTH: return degrees(&c->site.azimuth_deg, key, v, 0, 360, err, len);
    case K_STRATEGY:
        if (sim_strategy_parse(v, &c->strategy.kind) != SIM_STRAT_OK)
            return ctl_fail(CFG_E_BAD, err, len, "%s: '%s' is not truthful, zic, markup or zip",
                            key, v);
        return CFG_OK;
    case K_MARKUP: return fraction(&c->strategy.markup, key, v, err, len);
    case K_ZIP_BETA: return fraction(&c->strategy.zip_beta, key, v, err, len);
    case K_ZIP_MOMENTUM: return fraction(&c->strategy.zip_momentum, key, v, err, len);
    case K_FEED_IN:
    case K_RETAIL:
    case K_FEE:
        return cfg_parse_int(key, v, 0, MKT_PRICE_MAX_UC_PER_KWH, tariff[k - K_FEED_IN], err, len);
    case K_INTERVAL:
        return cfg_parse_int(key, v, 1, CTL_INTERVAL_MAX_LEN_S, &c->interval_s, err, len);
    case K_GATE:
        return cfg_parse_int(key, v, 0, CTL_INTERVAL_MAX_GATE_S, &c->gate_closure_s, err, len);
    case K_RESEND: return cfg_parse_int(key, v, 1, 3600, &c->resend_s, err, len);
    case K_GIVE_UP: return cfg_parse_int(key, v, 0, 7 * 86400, &c->give_up_s, err, len);
    case K_GAP: return cfg_parse_int(key, v, 1, 86400, &c->max_reading_gap_s, err, len);
    case K_MAX_POWER:
        return cfg_parse_int(key, v, 1, INT64_C(1000000000), &c->max_power_w, err, len);
    case K_LAG:
        return cfg_parse_int(key, v, 0, AGC_FORECAST_LAG_MAX, &c->forecast_lag, err, len);
    case K_TIMING:
        return mkt_timing_parse(v, &c->timing) == MKT_OK
                   ? CFG_OK
                   : ctl_fail(CFG_E_BAD, err, len, "%s: must be ex_ante or ex_post", key);
    default:
        return CFG_NOT_MINE;
    }
}

static int agent_key(void *ctx, const char *section, const char *key, const char *value,
                     int line, char *err, size_t len)
{
    agc_config *c = ctx;
    if (strcmp(section, "agent") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (c->line)
            return ctl_fail(CFG_E_BAD, err, len, "[agent] given twice (first at line %d)", c->line);
        c->line = line;
        return CFG_OK;
    }
    int k = cfg_key_index(AGENT_KEYS, key);
    if (k < 0)
        return CFG_NOT_MINE; /* the loader reports "unknown key 'x' in [agent]" */
    if (cfg_once(&c->seen, (unsigned)k, key, err, len))
        return CFG_E_BAD;
    return set_key(c, k, key, value, err, len);
}

/*
 * The MQTT client id. [agent] client_id wins. Otherwise [bus] client_id, but only in a file of
 * the agent alone: in a home's shared file it names the meter daemon, and two clients with one
 * id knock each other off the broker. Otherwise <participant>-agent.
 */
static int pick_client_id(agc_config *c, const char *path, char *err, size_t len)
{
    bool shared = c->others.sections > 0;
    if (c->client_id[0]) {
        if (shared && strcmp(c->client_id, c->bus.client_id) == 0)
            return ctl_fail(
                CFG_E_BAD, err, len,
                "%s:%d: [agent] client_id: '%s' is also [bus] client_id, which the meter "
                "daemon of this file uses; one client id per daemon",
                path, c->line, c->client_id);
        snprintf(c->bus.client_id, sizeof c->bus.client_id, "%s", c->client_id);
        return CFG_OK;
    }
    if (c->bus.client_id[0] && !shared)
        return CFG_OK;
    if (strlen(c->participant) + sizeof "-agent" > sizeof c->bus.client_id)
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [agent] client_id: set it (participant '%s' is too long for "
                        "the default <participant>-agent)",
                        path, c->line, c->participant);
    snprintf(c->bus.client_id, sizeof c->bus.client_id, "%s-agent", c->participant);
    return CFG_OK;
}

/*
 * The agent's login. The community's ACL knows a home's agent by its participant id, and the
 * broker lets one login have one connection (docs/bus-security.md): in a home's shared file
 * [bus] username and password_file are the meter daemon's login (h-017.meter), so the agent
 * logs in as [agent] username (default the participant) with [agent] password_file. In a file
 * of its own the agent uses [bus]'s, [agent]'s if given.
 */
static int pick_login(agc_config *c, const char *path, char *err, size_t len)
{
    bool shared = c->others.sections > 0;
    char bus_user[sizeof c->bus.username];
    snprintf(bus_user, sizeof bus_user, "%s", c->bus.username);
    if (c->username[0])
        snprintf(c->bus.username, sizeof c->bus.username, "%s", c->username);
    else if ((shared && !c->bus.tls_cert[0]) || (!bus_user[0] && !c->bus.tls_cert[0]))
        snprintf(c->bus.username, sizeof c->bus.username, "%s", c->participant);
    if (shared && bus_user[0] && strcmp(bus_user, c->bus.username) == 0)
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [agent]: the agent and the meter daemon of this file would both "
                        "log in as '%s', and the broker keeps one connection per login; make "
                        "[bus] username the meter daemon's login (%s.meter, mgx-certs.sh meter) "
                        "and give the agent [agent] password_file",
                        path, c->line, bus_user, c->participant);
    if (c->password_file[0]) {
        char why[CFG_PATH_MAX + 128];
        int rc = cfg_bus_read_password(&c->bus, c->password_file, why, sizeof why);
        if (rc == CFG_E_BAD)
            return ctl_fail(CFG_E_BAD, err, len, "%s:%d: [agent] %s", path, c->line, why);
        return rc;
    }
    if (shared && c->bus.password)
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [agent] needs password_file: [bus] password_file is the meter "
                        "daemon's (login %s), the agent logs in as %s",
                        path, c->line, bus_user, c->bus.username);
    return CFG_OK;
}

static int agent_finish(void *ctx, const char *path, char *err, size_t len)
{
    agc_config *c = ctx;
    if (!c->line)
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s: no [agent] section (participant, key_file, outbox and the "
                        "tariffs are required)",
                        path);
    static const int REQUIRED[] = {K_PARTICIPANT, K_KEY_FILE, K_OUTBOX};
    for (size_t i = 0; i < sizeof REQUIRED / sizeof REQUIRED[0]; i++)
        if (!SEEN(c, REQUIRED[i]))
            return ctl_fail(CFG_E_BAD, err, len, "%s:%d: [agent] needs %s", path, c->line,
                            AGENT_KEYS[REQUIRED[i]]);
    if (!(c->seen & (1u << K_FEED_IN)) || !(c->seen & (1u << K_RETAIL)))
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [agent] needs feed_in_uc_per_kwh and retail_uc_per_kwh (the "
                        "community's tariffs bound every price)",
                        path, c->line);
    if (c->tariffs.retail_uc_per_kwh < c->tariffs.feed_in_uc_per_kwh)
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [agent] retail_uc_per_kwh is below feed_in_uc_per_kwh", path,
                        c->line);
    const char *what = "strategy";
    if (sim_strategy_check(&c->strategy, &what) != SIM_STRAT_OK)
        return ctl_fail(CFG_E_BAD, err, len, "%s:%d: [agent] %s: out of range for the %s strategy",
                        path, c->line, what, sim_strategy_name(c->strategy.kind));
    if (!c->meter_id[0])
        snprintf(c->meter_id, sizeof c->meter_id, "%s", c->participant);
    int site = SEEN(c, K_LATITUDE) + SEEN(c, K_LONGITUDE) + SEEN(c, K_PV_TILT) +
               SEEN(c, K_PV_AZIMUTH) + SEEN(c, K_BATTERY_METER);
    if (!c->pv_meter_id[0] && site)
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [agent] latitude, longitude, pv_tilt, pv_azimuth and "
                        "battery_meter_id are for the fitted forecast: add pv_meter_id",
                        path, c->line);
    if (c->pv_meter_id[0]) {
        if (!c->battery.line)
            return ctl_fail(CFG_E_BAD, err, len,
                            "%s:%d: [agent] pv_meter_id: the fitted forecast plans the battery: "
                            "add a [battery] section",
                            path, c->line);
        if (!SEEN(c, K_LATITUDE) || !SEEN(c, K_LONGITUDE))
            return ctl_fail(CFG_E_BAD, err, len,
                            "%s:%d: [agent] pv_meter_id needs latitude and longitude (the "
                            "clear-sky model of the fitted forecast)",
                            path, c->line);
        if (!strcmp(c->pv_meter_id, c->meter_id) ||
            (c->battery_meter_id[0] && (!strcmp(c->battery_meter_id, c->meter_id) ||
                                        !strcmp(c->battery_meter_id, c->pv_meter_id))))
            return ctl_fail(CFG_E_BAD, err, len,
                            "%s:%d: [agent] meter_id, pv_meter_id and battery_meter_id must be "
                            "three different meters",
                            path, c->line);
        /* the panels face the equator unless said otherwise (as the simulator's scenario) */
        if (!SEEN(c, K_PV_AZIMUTH))
            c->site.azimuth_deg = c->site.latitude_deg >= 0 ? 180.0 : 0.0;
        c->site.battery_meter = c->battery_meter_id[0] != '\0';
    }
    int rc = pick_login(c, path, err, len);
    return rc != CFG_OK ? rc : pick_client_id(c, path, err, len);
}

int agc_add(cfg_loader *l, agc_config *c)
{
    /* only the [agent] fields: c->bus and c->others belong to their own handlers */
    c->participant[0] = c->client_id[0] = c->key_file[0] = c->meter_id[0] = c->outbox[0] = '\0';
    c->metrics_file[0] = c->pv_meter_id[0] = c->battery_meter_id[0] = '\0';
    c->site = (agb_site){0, 0, 30.0, 180.0, false};
    c->username[0] = c->password_file[0] = '\0';
    c->strategy = sim_strategy_defaults();
    memset(&c->tariffs, 0, sizeof c->tariffs);
    c->tariffs.mechanism = MKT_PAY_AS_CLEAR;
    c->interval_s = 900;
    c->gate_closure_s = 0;
    c->resend_s = 5;
    c->timing = MKT_EX_ANTE;
    c->give_up_s = 3600;
    c->max_reading_gap_s = 300;
    c->max_power_w = 100000;
    c->forecast_lag = 0;
    c->line = 0;
    c->seen = 0;
    c->loader = l;
    return cfg_loader_add(l, agent_key, agent_finish, c);
}

int agc_load(const char *path, agc_config *c, char *err, size_t err_len)
{
    int rc = CFG_E_NOMEM;
    cfg_loader *l = cfg_loader_new();
    memset(c, 0, sizeof *c);
    if (!l)
        goto out;
    /* [agent] before [bus]: its finish fills the username that [bus]'s finish checks a
     * password has; cfg_bus_add zeroes only c->bus, cfg_others_add only c->others */
    if (cfg_others_add(l, CFG_DAEMON_AGENT, &c->others) || agc_add(l, c) ||
        agb_add(l, &c->battery) || cfg_bus_add(l, &c->bus))
        goto out;
    rc = cfg_load(l, path, err, err_len);
out:
    if (rc == CFG_E_NOMEM)
        snprintf(err, err_len, "%s: out of memory", path);
    if (rc != CFG_OK)
        agc_clear(c);
    cfg_loader_free(l);
    c->bus.loader = c->loader = NULL; /* gone: nothing may resolve paths through it */
    return rc == CFG_OK ? 0 : -1;
}

void agc_clear(agc_config *c)
{
    if (c)
        cfg_bus_clear(&c->bus);
}
