/*
 * `mgx sim --serve-modbus` (see sim_serve.h): listeners, the meter config file for `mgx meter`,
 * and the pacing hook that plays each simulated interval out on the wall clock.
 */
#define _GNU_SOURCE
#include "cli/sim_serve.h"

#include "mgx/meter_trace.h"
#include "mgx/storage_ctl.h"
#include "mgx/civil.h"
#include "mgx/simdata.h"
#include "common/log.h"
#include "common/stop_signal.h"
#include "common/wall_clock.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS 100     /* wall time between meter updates within an interval, at most */
#define TICKS_MIN 20     /* ... and at least this many updates per interval */
#define TICK_MS_MIN 5

struct ctl_serve {
    ctl_serve_opts o;
    ctl_log log; /* "sim": info lines unless quiet */
    const sim_scenario *sc;
    size_t homes, n_servers;
    mtr_server **servers;
    sim_trace *trace;
    int64_t interval_ms; /* simulated */
    int64_t hold_ms;     /* simulated */
    int64_t tick_ms;     /* wall */
    int64_t real0_ms;    /* wall time of the scenario's start */
    size_t late;
    char err[256];
    /* the boundary meter (index homes when served): counters at the start of the interval,
     * this interval's rise, and the homes' flows summed as they arrive */
    size_t meters; /* homes, + 1 with a boundary meter */
    int64_t b_imp0, b_exp0, b_dimp, b_dexp, flow_imp, flow_exp;
    /* battery inverters: inv_of[h] is home h's index + 1 among them (0: no battery) */
    size_t n_inv, n_inv_servers, reverts;
    size_t *inv_of;
    int64_t *inv_cap_wh, *inv_w; /* per home: capacity, power */
    int64_t *inv_soc_wh; /* per home: the stored energy to serve once the interval's play begins */
    mtr_server **inv_servers;
    /* sub-meters (sub_meters): 2 i the PV meter, 2 i + 1 the battery meter of the i-th battery
     * home */
    size_t n_sub, n_sub_servers;
    mtr_server **sub_servers;
    sim_trace *sub_trace;
};

static volatile sig_atomic_t *stop_flag; /* NULL until ctl_serve_catch_signals */

void ctl_serve_catch_signals(void)
{
    stop_flag = ctl_stop_on_signals();
}

static void sleep_until(int64_t when_ms)
{
    struct timespec ts = {(time_t)(when_ms / 1000), (long)(when_ms % 1000) * 1000000};
    /* returns early on a signal; the caller re-checks the clock and the stop flag */
    clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
}

int ctl_serve_parse_addr(const char *s, char *host, size_t len, uint16_t *port)
{
    const char *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        s++;
        hl = (size_t)(close - s);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= len)
        return -1;
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p > 65535 || colon[1] == '-' || colon[1] == '+')
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* --- the meter config --------------------------------------------------------------------- */

/* The poll period written into the meter config for an accelerated clock: a reading every two
 * simulated minutes (several per interval, few enough that a controller storing every reading
 * keeps up with dozens of meters), but no faster than every 50 ms of wall time; 0 (the meters'
 * 1 s default) when the clock is not accelerated. */
static int64_t poll_period_ms(double clock_speed)
{
    if (clock_speed <= 1)
        return 0;
    double ms = 120000.0 / clock_speed;
    return ms < 50 ? 50 : ms > 1000 ? 1000 : (int64_t)ms;
}

/* The address a client uses for a listener bound to host. */
static const char *client_host(const char *host)
{
    if (strcmp(host, "0.0.0.0") == 0)
        return "127.0.0.1";
    if (strcmp(host, "::") == 0)
        return "::1";
    return host;
}

/* A meter id for home h: the home's name in homes.csv when it is a valid id. */
static void meter_id(const sim_scenario *sc, size_t h, char *out, size_t len)
{
    char name[SIM_NAME_MAX + 24];
    sim_home_name(sc, h, name, sizeof name);
    if (strlen(name) + 1 > 64 || name[0] == '\0')
        snprintf(name, sizeof name, "home-%03zu", h + 1);
    snprintf(out, len, "%s", name);
}

/* The id of meter h: a home's, or the boundary meter's (h == homes). */
static void meter_name(const ctl_serve *s, size_t h, char *out, size_t len)
{
    if (h >= s->homes)
        snprintf(out, len, "%s", s->o.boundary_id);
    else
        meter_id(s->sc, h, out, len);
}

/* The scenario's name as a bus community id (1-63 of A-Z a-z 0-9 _ -). */
static void community_of(const sim_scenario *sc, char *out, size_t len)
{
    size_t n = 0;
    for (const char *p = sc->name; *p && n + 1 < len && n < 63; p++)
        out[n++] = isalnum((unsigned char)*p) || *p == '_' || *p == '-' ? *p : '-';
    out[n] = '\0';
    if (n == 0)
        snprintf(out, len, "sim");
}

/* Opens path's temporary sibling (path.tmp, its name in tmp) for writing; NULL with err set. */
static FILE *open_tmp(const char *path, const char *option, char tmp[4096], char *err,
                      size_t err_len)
{
    if (snprintf(tmp, 4096, "%s.tmp", path) >= 4096) {
        snprintf(err, err_len, "%s path too long", option);
        return NULL;
    }
    FILE *f = fopen(tmp, "w");
    if (!f)
        snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
    return f;
}

/* Closes f and renames tmp over path, so a reader never sees half a file; 0 or -1 (err). */
static int commit_tmp(FILE *f, const char *tmp, const char *path, char *err, size_t err_len)
{
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* The id of sub-meter m: "<home>-pv" or "<home>-battery" of the (m / 2)-th battery home. */
static void sub_name(const ctl_serve *s, size_t m, char *out, size_t len)
{
    size_t i = m / 2, h = 0;
    for (; h < s->homes; h++)
        if (s->inv_of[h] == i + 1)
            break;
    char id[80];
    meter_id(s->sc, h, id, sizeof id);
    snprintf(out, len, "%s-%s", id, m % 2 ? "battery" : "pv");
}

static int write_meter_config(const ctl_serve *s, char *err, size_t err_len)
{
    char tmp[4096];
    FILE *f = open_tmp(s->o.meter_config, "--meter-config", tmp, err, err_len);
    if (!f)
        return -1;
    const char *profile = s->o.profile == MTR_SERVER_SDM630 ? "sdm630" : "sunspec";
    /* The meters library rejects a counter rise above rated power x real elapsed time; at N x
     * real time energy flows N times faster, so the rating (default 100 A) is scaled by N, or
     * the check turned off (0) where that exceeds the key's range of 100,000 A. */
    long rated = -1;
    if (s->o.clock_speed > 1)
        rated = 100 * s->o.clock_speed <= 100000 ? (long)ceil(100 * s->o.clock_speed) : 0;
    char community[64];
    if (s->o.community)
        snprintf(community, sizeof community, "%s", s->o.community);
    else
        community_of(s->sc, community, sizeof community);
    fprintf(f,
            "; Written by `mgx sim --serve-modbus` for scenario '%s': the simulated meter of\n"
            "; each home (ids as in homes.csv), ready for `mgx meter FILE`. Keys:\n"
            "; docs/meter-daemon.md ([bus]) and docs/meters.md ([meter]); docs/simulator.md.\n"
            "\n[bus]\ncommunity = %s\n"
            "; host = 127.0.0.1   ; the community's broker, and credentials if it needs them\n"
            "; port = 1883\n",
            s->sc->name, community);
    if (rated >= 0)
        fprintf(f,
                "; rated_current_a: 100 A x --clock-speed %g (0: check off), because energy flows\n"
                "; that much faster than real time; see docs/simulator.md.\n",
                s->o.clock_speed);
    int64_t poll_ms = poll_period_ms(s->o.clock_speed);
    if (poll_ms)
        fprintf(f,
                "; The clock runs %g x real time: meters are polled every %lld ms, about every two\n"
                "; simulated minutes (run `mgx meter` with the same --clock-speed and anchor).\n",
                s->o.clock_speed, (long long)poll_ms);
    for (size_t h = 0; h < s->meters; h++) {
        char id[80];
        meter_name(s, h, id, sizeof id);
        if (h == s->homes)
            fprintf(f, "\n; the coordinator's boundary meter (docs/trust.md, layer 3): publish it "
                       "with the\n; controller's broker login, and register it with "
                       "`mgx participant add --role boundary`\n");
        const char *host = client_host(s->o.host);
        fprintf(f, "\n[meter %s]\nprofile = %s\ntransport = tcp\nhost = %s\nport = %u\nunit = %u\n",
                id, profile, host, (unsigned)mtr_server_port(s->servers[h / MTR_SERVER_UNITS]),
                (unsigned)(h % MTR_SERVER_UNITS + 1));
        if (rated >= 0)
            fprintf(f, "rated_current_a = %ld\n", rated);
        if (poll_ms)
            fprintf(f, "poll_ms = %lld\n", (long long)poll_ms);
    }
    for (size_t m = 0; m < s->n_sub; m++) {
        char id[96];
        sub_name(s, m, id, sizeof id);
        if (m == 0)
            fprintf(f, "\n; behind each battery home's grid meter: its PV (export) and its "
                       "battery's AC\n; charge (import) and discharge (export), --sub-meters\n");
        fprintf(f,
                "\n[meter %s]\nprofile = %s\ntransport = tcp\nhost = %s\nport = %u\n"
                "unit = %u\n",
                id, profile, client_host(s->o.host),
                (unsigned)mtr_server_port(s->sub_servers[m / MTR_SERVER_UNITS]),
                (unsigned)(m % MTR_SERVER_UNITS + 1));
        if (rated >= 0)
            fprintf(f, "rated_current_a = %ld\n", rated);
        if (poll_ms)
            fprintf(f, "poll_ms = %lld\n", (long long)poll_ms);
    }
    return commit_tmp(f, tmp, s->o.meter_config, err, err_len);
}

/* --- setup -------------------------------------------------------------------------------- */

static int start_servers(ctl_serve *s, char *err, size_t err_len)
{
    for (size_t i = 0; i < s->n_servers; i++) {
        uint16_t port = s->o.port ? (uint16_t)(s->o.port + i) : 0;
        mtr_server_opts so = {s->o.host, port, 0};
        int rc = mtr_server_new(&so, &s->servers[i]);
        if (rc) {
            snprintf(err, err_len, "cannot serve Modbus on %s:%u: %s%s%s", s->o.host,
                     (unsigned)port, mtr_server_strerror(rc), rc == MTR_SERVER_E_SOCKET ? ": " : "",
                     rc == MTR_SERVER_E_SOCKET ? strerror(errno) : "");
            return -1;
        }
        size_t first = i * MTR_SERVER_UNITS;
        for (size_t h = first; h < s->meters && h < first + MTR_SERVER_UNITS; h++) {
            char id[80];
            meter_name(s, h, id, sizeof id);
            uint8_t unit = (uint8_t)(h - first + 1);
            if ((rc = mtr_server_add(s->servers[i], unit, s->o.profile, id)) ||
                (rc = mtr_server_set(s->servers[i], unit, 0, s->o.start_wh, s->o.start_wh))) {
                snprintf(err, err_len, "meter %s: %s", id, mtr_server_strerror(rc));
                return -1;
            }
        }
        if ((rc = mtr_server_start(s->servers[i]))) {
            snprintf(err, err_len, "%s", mtr_server_strerror(rc));
            return -1;
        }
    }
    return 0;
}

/* The group of home h (homes are numbered group by group). */
static const sim_group *group_of(const sim_scenario *sc, size_t h)
{
    for (size_t g = 0; g < sc->n_groups; g++) {
        if (h < sc->groups[g].count)
            return &sc->groups[g];
        h -= sc->groups[g].count;
    }
    return NULL;
}

static mtr_server *inv_server(const ctl_serve *s, size_t i)
{
    return s->inv_servers[i / MTR_SERVER_UNITS];
}

static uint8_t inv_unit(size_t i)
{
    return (uint8_t)(i % MTR_SERVER_UNITS + 1);
}

/* One simulated inverter per battery home, on listeners after the meters'. */
static int start_inverters(ctl_serve *s, char *err, size_t err_len)
{
    s->inv_of = calloc(s->homes ? s->homes : 1, sizeof *s->inv_of);
    s->inv_cap_wh = calloc(s->homes ? s->homes : 1, sizeof *s->inv_cap_wh);
    s->inv_w = calloc(s->homes ? s->homes : 1, sizeof *s->inv_w);
    s->inv_soc_wh = calloc(s->homes ? s->homes : 1, sizeof *s->inv_soc_wh);
    if (!s->inv_of || !s->inv_cap_wh || !s->inv_w || !s->inv_soc_wh)
        goto nomem;
    for (size_t h = 0; h < s->homes; h++) {
        const sim_group *g = group_of(s->sc, h);
        if (g && g->battery_kwh > 0 && g->battery_kw > 0) {
            s->inv_of[h] = ++s->n_inv;
            s->inv_cap_wh[h] = llround(g->battery_kwh * 1000.0);
            s->inv_w[h] = llround(g->battery_kw * 1000.0);
        }
    }
    if (s->n_inv == 0)
        return 0;
    s->n_inv_servers = (s->n_inv + MTR_SERVER_UNITS - 1) / MTR_SERVER_UNITS;
    s->inv_servers = calloc(s->n_inv_servers, sizeof *s->inv_servers);
    if (!s->inv_servers)
        goto nomem;
    for (size_t j = 0; j < s->n_inv_servers; j++) {
        uint16_t port = s->o.port ? (uint16_t)(s->o.port + s->n_servers + j) : 0;
        mtr_server_opts so = {s->o.host, port, 0};
        int rc = mtr_server_new(&so, &s->inv_servers[j]);
        if (rc) {
            snprintf(err, err_len, "cannot serve the inverters on %s:%u: %s", s->o.host,
                     (unsigned)port, mtr_server_strerror(rc));
            return -1;
        }
    }
    for (size_t h = 0; h < s->homes; h++) {
        if (!s->inv_of[h])
            continue;
        size_t i = s->inv_of[h] - 1;
        char id[80];
        meter_id(s->sc, h, id, sizeof id);
        int rc = mtr_server_add_storage(inv_server(s, i), inv_unit(i), s->inv_w[h], id);
        if (rc) {
            snprintf(err, err_len, "inverter of %s: %s", id, mtr_server_strerror(rc));
            return -1;
        }
    }
    for (size_t j = 0; j < s->n_inv_servers; j++) {
        int rc = mtr_server_start(s->inv_servers[j]);
        if (rc) {
            snprintf(err, err_len, "%s", mtr_server_strerror(rc));
            return -1;
        }
    }
    return 0;
nomem:
    snprintf(err, err_len, "out of memory for the inverters");
    return -1;
}

/* The PV and battery meters of the battery homes (sub_meters), on listeners after the
 * inverters'. */
static int start_sub_meters(ctl_serve *s, char *err, size_t err_len)
{
    if (!s->o.sub_meters || s->n_inv == 0)
        return 0;
    s->n_sub = 2 * s->n_inv;
    s->n_sub_servers = (s->n_sub + MTR_SERVER_UNITS - 1) / MTR_SERVER_UNITS;
    s->sub_servers = calloc(s->n_sub_servers, sizeof *s->sub_servers);
    s->sub_trace = sim_trace_new(s->n_sub, s->interval_ms, s->o.start_wh);
    if (!s->sub_servers || !s->sub_trace) {
        snprintf(err, err_len, "out of memory for the sub-meters");
        return -1;
    }
    for (size_t j = 0; j < s->n_sub_servers; j++) {
        uint16_t port =
            s->o.port ? (uint16_t)(s->o.port + s->n_servers + s->n_inv_servers + j) : 0;
        mtr_server_opts so = {s->o.host, port, 0};
        int rc = mtr_server_new(&so, &s->sub_servers[j]);
        if (rc) {
            snprintf(err, err_len, "cannot serve the sub-meters on %s:%u: %s", s->o.host,
                     (unsigned)port, mtr_server_strerror(rc));
            return -1;
        }
        for (size_t m = j * MTR_SERVER_UNITS; m < s->n_sub && m < (j + 1) * MTR_SERVER_UNITS;
             m++) {
            char id[96];
            sub_name(s, m, id, sizeof id);
            uint8_t unit = (uint8_t)(m % MTR_SERVER_UNITS + 1);
            if ((rc = mtr_server_add(s->sub_servers[j], unit, s->o.profile, id)) ||
                (rc = mtr_server_set(s->sub_servers[j], unit, 0, s->o.start_wh, s->o.start_wh))) {
                snprintf(err, err_len, "meter %s: %s", id, mtr_server_strerror(rc));
                return -1;
            }
        }
        if ((rc = mtr_server_start(s->sub_servers[j]))) {
            snprintf(err, err_len, "%s", mtr_server_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static int write_inverter_list(const ctl_serve *s, char *err, size_t err_len)
{
    char tmp[4096];
    FILE *f = open_tmp(s->o.inverter_list, "--inverter-list", tmp, err, err_len);
    if (!f)
        return -1;
    fprintf(f, "home,host,port,unit,capacity_wh,power_w\n");
    for (size_t h = 0; h < s->homes; h++) {
        if (!s->inv_of[h])
            continue;
        size_t i = s->inv_of[h] - 1;
        char id[80];
        meter_id(s->sc, h, id, sizeof id);
        fprintf(f, "%s,%s,%u,%u,%lld,%lld\n", id, client_host(s->o.host),
                (unsigned)mtr_server_port(inv_server(s, i)), (unsigned)inv_unit(i),
                (long long)s->inv_cap_wh[h], (long long)s->inv_w[h]);
    }
    return commit_tmp(f, tmp, s->o.inverter_list, err, err_len);
}

int ctl_serve_new(const ctl_serve_opts *o, const sim_scenario *sc, ctl_serve **out, char *err,
                  size_t err_len)
{
    *out = NULL;
    ctl_serve *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    s->o = *o;
    s->log = (ctl_log){"sim", o->quiet ? CTL_LOG_WARN : CTL_LOG_INFO, NULL, NULL};
    s->sc = sc;
    s->homes = sim_scenario_homes(sc);
    s->meters = s->homes + (o->boundary_id ? 1 : 0);
    s->n_servers = (s->meters + MTR_SERVER_UNITS - 1) / MTR_SERVER_UNITS;
    s->b_imp0 = s->b_exp0 = o->start_wh;
    if (o->boundary_id && (o->boundary_loss_permille < 0 || o->boundary_loss_permille > 1000)) {
        snprintf(err, err_len, "--boundary-loss-permille must be 0 .. 1000");
        goto fail;
    }
    s->interval_ms = (int64_t)sc->interval_min * 60000;
    s->hold_ms = o->hold_s * 1000;
    if (o->hold_s < 0 || 2 * s->hold_ms >= s->interval_ms) {
        snprintf(err, err_len, "--meter-hold %lld s: must be below half the interval (%lld s)",
                 (long long)o->hold_s, (long long)(s->interval_ms / 2000));
        goto fail;
    }
    double per_tick = (double)s->interval_ms / o->clock_speed / TICKS_MIN;
    s->tick_ms = per_tick >= TICK_MS ? TICK_MS : per_tick <= TICK_MS_MIN ? TICK_MS_MIN
                                                                          : (int64_t)per_tick;
    if (o->port && o->port + s->n_servers - 1 > 65535) {
        snprintf(err, err_len, "%zu homes need %zu ports from %u: past 65535", s->homes,
                 s->n_servers, (unsigned)o->port);
        goto fail;
    }
    s->servers = calloc(s->n_servers, sizeof *s->servers);
    s->trace = sim_trace_new(s->homes, s->interval_ms, o->start_wh);
    if (!s->servers || !s->trace) {
        snprintf(err, err_len, "out of memory for %zu meters", s->homes);
        goto fail;
    }
    if (start_servers(s, err, err_len) || start_inverters(s, err, err_len) ||
        start_sub_meters(s, err, err_len) ||
        (o->inverter_list && write_inverter_list(s, err, err_len)) ||
        (o->meter_config && write_meter_config(s, err, err_len)))
        goto fail;
    if (s->n_inv)
        ctl_logf(&s->log, CTL_LOG_INFO,
                 "serving %zu battery inverters (SunSpec model 124) on %s port %u%s%s", s->n_inv,
                 o->host, (unsigned)mtr_server_port(s->inv_servers[0]),
                 o->inverter_list ? "; list " : "", o->inverter_list ? o->inverter_list : "");
    uint16_t p0 = mtr_server_port(s->servers[0]),
             p1 = mtr_server_port(s->servers[s->n_servers - 1]);
    ctl_logf(&s->log, CTL_LOG_INFO,
             "serving %zu %s meters over Modbus TCP on %s port %u%s%.0u, units 1..%u%s%s%s",
             s->meters,
             o->profile == MTR_SERVER_SDM630 ? "sdm630" : "sunspec", o->host, (unsigned)p0,
             s->n_servers > 1 ? (o->port ? "-" : "..") : "", s->n_servers > 1 ? (unsigned)p1 : 0u,
             (unsigned)(s->meters < MTR_SERVER_UNITS ? s->meters : MTR_SERVER_UNITS),
             o->boundary_id ? " (the last: the boundary meter)" : "",
             o->meter_config ? "; meter config " : "", o->meter_config ? o->meter_config : "");
    *out = s;
    return 0;
fail:
    ctl_serve_free(s);
    return -1;
}

/* --- pacing ------------------------------------------------------------------------------- */

static void on_flow(const sim_flow *f, void *ctx)
{
    ctl_serve *s = ctx;
    if (s->inv_of && s->inv_of[f->home]) {
        /* the state of charge at the end of the interval about to be played (sim_serve.h),
         * served once its play begins (serve_soc): before the first interval, the start's */
        size_t i = s->inv_of[f->home] - 1;
        s->inv_soc_wh[f->home] = f->stored_after_wh;
        if (s->sub_trace) {
            sim_trace_set(s->sub_trace, 2 * i, 0, f->pv_wh);
            sim_trace_set(s->sub_trace, 2 * i + 1, f->charge_wh, f->discharge_wh);
        }
    }
    /* the meter sees the physical flow at the grid connection, the same with or without local
     * trading; anything sim_trace_set rejects is caught again by mtr_server_set's range check */
    sim_trace_set(s->trace, f->home, f->import_wh, f->export_wh);
    if (f->import_wh > 0 && s->flow_imp <= INT64_MAX - f->import_wh)
        s->flow_imp += f->import_wh;
    if (f->export_wh > 0 && s->flow_exp <= INT64_MAX - f->export_wh)
        s->flow_exp += f->export_wh;
}

/* The simulated inverter at the start of interval k: the setpoint standing now, unless its
 * revert timer has run out (sim_serve.h). */
static int on_battery(size_t h, size_t k, int64_t stored_wh, int64_t capacity_wh, void *ctx,
                      int64_t *setpoint_wh)
{
    ctl_serve *s = ctx;
    (void)capacity_wh;
    if (!s->inv_of || !s->inv_of[h])
        return 0;
    size_t i = s->inv_of[h] - 1;
    mtr_server *srv = inv_server(s, i);
    uint8_t unit = inv_unit(i);
    if (k == 0)
        mtr_server_storage_soc(srv, unit, stored_wh, s->inv_cap_wh[h]);
    mtr_server_storage_state st;
    if (mtr_server_storage_get(srv, unit, &st) || (st.storctl_mod & 3) == 0)
        return 0;
    if (st.rvrt_s > 0 && st.since_write_ms >= 0 &&
        (double)st.since_write_ms * s->o.clock_speed > (double)st.rvrt_s * 1000.0) {
        char id[80];
        meter_id(s->sc, h, id, sizeof id);
        mtr_server_storage_revert(srv, unit);
        s->reverts++;
        ctl_logf(&s->log, CTL_LOG_INFO,
                 "inverter of %s: no setpoint for %u s (InOutWRte_RvrtTms): back to its own mode",
                 id, (unsigned)st.rvrt_s);
        return 0;
    }
    mtr_storage_124_caps caps = {st.w_cha_max, (int16_t)st.w_cha_max_sf, (int16_t)st.rte_sf};
    int64_t w;
    if (mtr_storage_decode_124(&caps, st.storctl_mod, st.out_w_rte, st.in_w_rte, &w) != 1)
        return 0;
    /* W over the interval in Wh, toward zero (the battery never does more than asked) */
    *setpoint_wh = w * (int64_t)s->sc->interval_min * 60 / 3600;
    return 1;
}

/* The boundary meter's rise over the interval whose flows have all arrived: the homes' net
 * plus losses (sim_serve.h). */
static void boundary_interval(ctl_serve *s)
{
    int64_t through = s->flow_imp + s->flow_exp, p = s->o.boundary_loss_permille;
    int64_t loss = through / 1000 * p + (through % 1000 * p + 999) / 1000;
    int64_t net = s->flow_imp - s->flow_exp + loss;
    s->b_dimp = net >= 0 ? net : 0;
    s->b_dexp = net < 0 ? -net : 0;
    s->flow_imp = s->flow_exp = 0;
}

/* With a hold: where in the trace's linear profile the meters are elapsed_ms into the
 * interval (standing at the start for hold_ms, at the end for the last hold_ms, and moving
 * proportionally faster in between); *moving is 0 during a hold. */
static int64_t held(const ctl_serve *s, int64_t elapsed_ms, int *moving)
{
    int64_t h = s->hold_ms, t = s->interval_ms;
    *moving = 1;
    if (h == 0)
        return elapsed_ms;
    if (elapsed_ms <= h || elapsed_ms >= t - h) {
        *moving = 0;
        return elapsed_ms <= h ? 0 : t;
    }
    return (int64_t)((__extension__(__int128)(elapsed_ms - h) * t) / (t - 2 * h));
}

/* Pushes every meter's value elapsed_ms (simulated) into the current interval. */
static int push(ctl_serve *s, int64_t elapsed_ms, int final)
{
    int moving;
    int64_t at = held(s, elapsed_ms, &moving);
    for (size_t h = 0; h < s->homes; h++) {
        sim_meter_reading r;
        sim_trace_at(s->trace, h, at, &r);
        int64_t power = 0; /* the trace's power is the interval average; a hold runs faster */
        if (!final && moving)
            power = (int64_t)((__extension__(__int128)r.power_w * s->interval_ms) /
                              (s->interval_ms - 2 * s->hold_ms));
        int rc = mtr_server_set(s->servers[h / MTR_SERVER_UNITS],
                                (uint8_t)(h % MTR_SERVER_UNITS + 1), power, r.import_wh,
                                r.export_wh);
        if (rc) {
            char id[80];
            meter_id(s->sc, h, id, sizeof id);
            snprintf(s->err, sizeof s->err, "meter %s: %s", id, mtr_server_strerror(rc));
            return -1;
        }
    }
    for (size_t m = 0; m < s->n_sub; m++) {
        sim_meter_reading r;
        sim_trace_at(s->sub_trace, m, at, &r);
        int64_t power = 0;
        if (!final && moving)
            power = (int64_t)((__extension__(__int128)r.power_w * s->interval_ms) /
                              (s->interval_ms - 2 * s->hold_ms));
        int rc = mtr_server_set(s->sub_servers[m / MTR_SERVER_UNITS],
                                (uint8_t)(m % MTR_SERVER_UNITS + 1), power, r.import_wh,
                                r.export_wh);
        if (rc) {
            char id[96];
            sub_name(s, m, id, sizeof id);
            snprintf(s->err, sizeof s->err, "meter %s: %s", id, mtr_server_strerror(rc));
            return -1;
        }
    }
    if (s->meters > s->homes) {
        size_t b = s->homes;
        int64_t t = s->interval_ms;
        int64_t imp = s->b_imp0 + (int64_t)((__extension__(__int128)s->b_dimp * at) / t);
        int64_t exp = s->b_exp0 + (int64_t)((__extension__(__int128)s->b_dexp * at) / t);
        int64_t power = 0;
        if (!final && moving)
            power = (int64_t)((__extension__(__int128)(s->b_dimp - s->b_dexp) * 3600000) /
                              (t - 2 * s->hold_ms));
        int rc = mtr_server_set(s->servers[b / MTR_SERVER_UNITS],
                                (uint8_t)(b % MTR_SERVER_UNITS + 1), power, imp, exp);
        if (rc) {
            snprintf(s->err, sizeof s->err, "meter %s: %s", s->o.boundary_id,
                     mtr_server_strerror(rc));
            return -1;
        }
    }
    return 0;
}

/* Wall ms at which the simulated offset sim_ms (from the scenario start) is reached. */
static int64_t wall_at(const ctl_serve *s, int64_t sim_ms)
{
    return s->real0_ms + (int64_t)((double)sim_ms / s->o.clock_speed);
}

/* The inverters' state of charge for the interval whose play begins (on_flow). */
static void serve_soc(ctl_serve *s)
{
    for (size_t h = 0; h < s->homes && s->n_inv; h++)
        if (s->inv_of[h]) {
            size_t i = s->inv_of[h] - 1;
            mtr_server_storage_soc(inv_server(s, i), inv_unit(i), s->inv_soc_wh[h],
                                   s->inv_cap_wh[h]);
        }
}

static int on_interval(size_t k, size_t total, void *ctx)
{
    ctl_serve *s = ctx;
    if (k == 0) {
        s->real0_ms = s->o.clock_start_ms ? s->o.clock_start_ms : ctl_wall_ms();
        char when[32];
        mkt_format_time(sim_interval_start_utc(s->sc, 0), 0, when, sizeof when);
        ctl_logf(&s->log, CTL_LOG_INFO,
                 "clock: scenario time %s at wall time %" PRId64 " ms (Unix), %g x real time", when,
                 s->real0_ms, s->o.clock_speed);
    }
    if (s->meters > s->homes)
        boundary_interval(s);
    int64_t begin = wall_at(s, (int64_t)k * s->interval_ms);
    int64_t end = wall_at(s, (int64_t)(k + 1) * s->interval_ms);
    if (ctl_wall_ms() > begin + s->tick_ms)
        s->late++;
    int soc_served = 0;
    for (;;) {
        if (stop_flag && *stop_flag)
            return 1;
        int64_t now = ctl_wall_ms();
        if (!soc_served && now >= begin) {
            serve_soc(s);
            soc_served = 1;
        }
        if (now >= end)
            break;
        int64_t elapsed = (int64_t)((double)(now - begin) * s->o.clock_speed);
        if (push(s, elapsed, 0))
            return 1;
        sleep_until(now + s->tick_ms < end ? now + s->tick_ms : end);
    }
    if (!soc_served)
        serve_soc(s);
    if (push(s, s->interval_ms, k + 1 == total))
        return 1;
    sim_trace_next(s->trace);
    if (s->sub_trace)
        sim_trace_next(s->sub_trace);
    s->b_imp0 += s->b_dimp;
    s->b_exp0 += s->b_dexp;
    s->b_dimp = s->b_dexp = 0;
    size_t per_day = (size_t)(1440 / s->sc->interval_min);
    if ((k + 1) % per_day == 0 || k + 1 == total) {
        char when[32];
        mkt_format_time(sim_interval_start_utc(s->sc, k) + s->interval_ms / 1000, 0, when,
                        sizeof when);
        ctl_logf(&s->log, CTL_LOG_INFO, "simulated up to %s (%zu of %zu intervals)", when, k + 1,
                 total);
    }
    return 0;
}

void ctl_serve_hooks(ctl_serve *s, sim_hooks *hooks)
{
    hooks->on_flow = on_flow;
    hooks->flow_ctx = s;
    hooks->on_interval = on_interval;
    hooks->interval_ctx = s;
    hooks->on_battery = on_battery;
    hooks->battery_ctx = s;
}

size_t ctl_serve_reverts(const ctl_serve *s)
{
    return s->reverts;
}

void ctl_serve_linger(ctl_serve *s, int64_t seconds)
{
    if (seconds == 0)
        return;
    if (seconds < 0)
        ctl_logf(&s->log, CTL_LOG_INFO,
                 "scenario finished; meters keep serving the final counters until SIGINT/SIGTERM");
    else
        ctl_logf(&s->log, CTL_LOG_INFO,
                 "scenario finished; meters keep serving the final counters for %" PRId64 " s",
                 seconds);
    int64_t until = seconds < 0 ? INT64_MAX : ctl_wall_ms() + seconds * 1000;
    while (!(stop_flag && *stop_flag) && ctl_wall_ms() < until) {
        int64_t next = ctl_wall_ms() + 1000;
        sleep_until(next < until ? next : until);
    }
}

const char *ctl_serve_error(const ctl_serve *s)
{
    return s->err;
}

size_t ctl_serve_late(const ctl_serve *s)
{
    return s->late;
}

void ctl_serve_free(ctl_serve *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->servers && i < s->n_servers; i++)
        mtr_server_free(s->servers[i]);
    free(s->servers);
    for (size_t j = 0; s->inv_servers && j < s->n_inv_servers; j++)
        mtr_server_free(s->inv_servers[j]);
    free(s->inv_servers);
    for (size_t j = 0; s->sub_servers && j < s->n_sub_servers; j++)
        mtr_server_free(s->sub_servers[j]);
    free(s->sub_servers);
    sim_trace_free(s->sub_trace);
    free(s->inv_of);
    free(s->inv_cap_wh);
    free(s->inv_w);
    free(s->inv_soc_wh);
    sim_trace_free(s->trace);
    free(s);
}
