/*
 * Scenario files: defaults, the INI reader and the validity rules of a sim_scenario.
 *
 * Every key is described once in a table (section, name, type, field offset, allowed range);
 * the INI handler, the range checks of sim_scenario_validate and the line numbers of error
 * messages all work from that table. libinih as packaged by Debian (55) is built without
 * INI_HANDLER_LINENO, so this file feeds inih through its own line reader, which counts lines,
 * notices section headers (inih does not report empty sections) and strips leading blanks so
 * that indented keys are never taken for multi-line continuations.
 */
#include "mgx/scenario.h"
#include "mgx/strategy.h"

#include "fail.h"
#include "timegrid.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_PREFIX "group."
#define GROUP_NAME_MAX 40 /* keeps "<group>-<n>" well inside SIM_NAME_MAX */

/* Freiburg im Breisgau, a German solar town; central European standard time. */
#define DEFAULT_LATITUDE 47.999
#define DEFAULT_LONGITUDE 7.842
#define DEFAULT_UTC_OFFSET_MIN 60

typedef enum { K_STR, K_DBL, K_U32, K_U64, K_I64, K_TZ, K_DATE, K_MECH, K_TIMING, K_AGENT,
               K_POLICY } key_kind;

enum { LO_OPEN = 1u, HI_OPEN = 2u, DIVIDES_DAY = 4u };

typedef struct {
    const char *section; /* scenario-level keys only */
    const char *name;
    key_kind kind;
    size_t off;
    double lo, hi;
    unsigned flags;
} key_def;

#define SK(sec, key, kind, field, lo, hi, fl)                                                   \
    {sec, key, kind, offsetof(sim_scenario, field), lo, hi, fl}
#define GK(key, kind, field, lo, hi, fl) {NULL, key, kind, offsetof(sim_group, field), lo, hi, fl}
#define PRICE_MAX ((double)MKT_PRICE_MAX_UC_PER_KWH)

static const key_def scenario_keys[] = {
    SK("scenario", "name", K_STR, name, 0, 0, 0),
    SK("location", "latitude", K_DBL, latitude_deg, -90, 90, 0),
    SK("location", "longitude", K_DBL, longitude_deg, -180, 180, 0),
    SK("location", "timezone", K_TZ, utc_offset_min, -720, 840, 0),
    SK("period", "start", K_DATE, start_year, 1900, 2200, 0),
    SK("period", "days", K_U32, days, 1, SIM_MAX_DAYS, 0),
    SK("period", "interval_min", K_U32, interval_min, 1, 1440, DIVIDES_DAY),
    SK("period", "seed", K_U64, seed, 0, 0, 0),
    SK("weather", "clear_sky_index_mean", K_DBL, clear_sky_index_mean, 0, 1, LO_OPEN),
    SK("weather", "cloud_persistence_h", K_DBL, cloud_persistence_h, 0, 8760, LO_OPEN),
    SK("weather", "cloud_home_spread", K_DBL, cloud_home_spread, 0, 1, 0),
    SK("market", "mechanism", K_MECH, mechanism, 0, 0, 0),
    SK("market", "feed_in_tariff", K_I64, feed_in_uc_per_kwh, 0, PRICE_MAX, 0),
    SK("market", "retail_tariff", K_I64, retail_uc_per_kwh, 0, PRICE_MAX, 0),
    SK("market", "network_fee", K_I64, network_fee_uc_per_kwh, 0, PRICE_MAX, 0),
    SK("market", "level_fee", K_I64, level_fee_uc_per_kwh, 0, PRICE_MAX, 0),
    SK("market", "retail_peak_tariff", K_I64, retail_peak_uc_per_kwh, 0, PRICE_MAX, 0),
    SK("market", "peak_start", K_U32, peak_start_h, 0, 24, 0),
    SK("market", "peak_end", K_U32, peak_end_h, 0, 24, 0),
    SK("market", "forecast_lag", K_U32, forecast_lag, 1, SIM_MAX_FORECAST_LAG, 0),
    SK("market", "timing", K_TIMING, timing, 0, 0, 0),
};
enum { N_SKEYS = sizeof scenario_keys / sizeof scenario_keys[0] };

static const key_def group_keys[] = {
    GK("count", K_U32, count, 0, SIM_MAX_HOMES, 0),
    GK("pv_kwp", K_DBL, pv_kwp, 0, 10000, 0),
    GK("pv_tilt", K_DBL, pv_tilt_deg, 0, 90, 0),
    GK("pv_azimuth", K_DBL, pv_azimuth_deg, 0, 360, HI_OPEN),
    GK("inverter_kw", K_DBL, inverter_kw, 0, 10000, 0),
    GK("pv_loss", K_DBL, pv_loss, 0, 1, HI_OPEN),
    GK("battery_kwh", K_DBL, battery_kwh, 0, 100000, 0),
    GK("battery_kw", K_DBL, battery_kw, 0, 100000, 0),
    GK("battery_efficiency", K_DBL, battery_efficiency, 0, 1, LO_OPEN),
    GK("soc_min", K_DBL, soc_min, 0, 1, 0),
    GK("soc_max", K_DBL, soc_max, 0, 1, 0),
    GK("soc_initial", K_DBL, soc_initial, 0, 1, 0),
    GK("battery_policy", K_POLICY, battery_policy, 0, 0, 0),
    GK("schedule_min_gain", K_I64, schedule_min_gain_uc, 0, 1e12, 0),
    GK("schedule_persistence", K_U32, schedule_persistence, 0, 1, 0),
    GK("schedule_guard", K_U32, schedule_guard, 0, 1, 0),
    GK("schedule_lead", K_U32, schedule_lead, 0, 2, 0), /* 0: 1 (groups built in code) */
    GK("schedule_spread_min", K_U32, schedule_spread_min, 0, 1440, 0),
    GK("annual_kwh", K_DBL, annual_kwh, 0, 1e6, 0),
    GK("agent", K_AGENT, agent, 0, 0, 0),
    GK("markup", K_DBL, markup, 0, 1, 0),
    GK("zip_beta", K_DBL, zip_beta, 0, 1, LO_OPEN),
    GK("zip_momentum", K_DBL, zip_momentum, 0, 1, HI_OPEN),
    GK("feeder_export_kw", K_DBL, feeder_export_kw, -1, 1e6, 0),
    GK("feeder_import_kw", K_DBL, feeder_import_kw, -1, 1e6, 0),
};
enum { N_GKEYS = sizeof group_keys / sizeof group_keys[0] };

static const char *const section_names[] = {"scenario", "location", "period", "weather",
                                            "market"};
enum { N_SECTIONS = sizeof section_names / sizeof section_names[0] };

/* Where a rule failed: a group (or -1) and up to two keys (table indices, or -1). */
typedef struct {
    int group;
    int key_a, key_b;
} fault;

const char *sim_strerror(int code)
{
    switch (code) {
    case SIM_OK:
        return "success";
    case SIM_E_INVAL:
        return "invalid argument";
    case SIM_E_IO:
        return "input/output error";
    case SIM_E_PARSE:
        return "malformed scenario or data file";
    case SIM_E_NOMEM:
        return "out of memory";
    case SIM_E_MARKET:
        return "the market library rejected a book";
    case SIM_E_GSL:
        return "a GSL routine failed";
    case SIM_E_STOPPED:
        return "stopped by the caller";
    default:
        return "unknown error";
    }
}

void sim_scenario_defaults(sim_scenario *sc)
{
    memset(sc, 0, sizeof *sc);
    snprintf(sc->name, sizeof sc->name, "%s", "scenario");
    sc->latitude_deg = DEFAULT_LATITUDE;
    sc->longitude_deg = DEFAULT_LONGITUDE;
    sc->utc_offset_min = DEFAULT_UTC_OFFSET_MIN;
    sc->start_year = 2025;
    sc->start_month = 6;
    sc->start_day = 1;
    sc->days = 7;
    sc->interval_min = 15;
    sc->seed = 1;
    sc->clear_sky_index_mean = 0.7;
    sc->cloud_persistence_h = 3.0;
    sc->cloud_home_spread = 0.05;
    sc->mechanism = MKT_PAY_AS_CLEAR;
    sc->feed_in_uc_per_kwh = 80000;
    sc->retail_uc_per_kwh = 300000;
    sc->network_fee_uc_per_kwh = 0;
    sc->level_fee_uc_per_kwh = 0;
    sc->forecast_lag = 1;
    sc->timing = MKT_EX_ANTE;
    sc->n_groups = 0;
}

void sim_group_defaults(sim_group *g)
{
    memset(g, 0, sizeof *g);
    g->pv_tilt_deg = 30.0;
    g->pv_azimuth_deg = 180.0;
    g->pv_loss = 0.14;
    g->battery_efficiency = 0.9;
    g->soc_min = 0.1;
    g->soc_max = 0.9;
    g->soc_initial = 0.5;
    g->battery_policy = SIM_BATTERY_SELF_CONSUMPTION;
    g->schedule_min_gain_uc = 50000;
    g->schedule_guard = 1;
    g->schedule_lead = 1;
    g->schedule_spread_min = 240;
    g->annual_kwh = 3500.0;
    g->agent = SIM_AGENT_TRUTHFUL;
    g->markup = 0.1;
    g->zip_beta = 0.3;
    g->zip_momentum = 0.05;
    g->feeder_export_kw = -1.0;
    g->feeder_import_kw = -1.0;
}

int64_t sim_scenario_retail_at(const sim_scenario *sc, int64_t start_utc)
{
    if (sc->retail_peak_uc_per_kwh <= 0)
        return sc->retail_uc_per_kwh;
    int64_t local = start_utc + (int64_t)sc->utc_offset_min * 60;
    int64_t sec = local % 86400;
    if (sec < 0)
        sec += 86400;
    int64_t h = sec / 3600;
    int peak = sc->peak_start_h <= sc->peak_end_h
                   ? h >= sc->peak_start_h && h < sc->peak_end_h
                   : h >= sc->peak_start_h || h < sc->peak_end_h; /* over midnight */
    return peak ? sc->retail_peak_uc_per_kwh : sc->retail_uc_per_kwh;
}

const char *sim_battery_policy_name(sim_battery_policy p)
{
    return p == SIM_BATTERY_SCHEDULE ? "schedule" : "self_consumption";
}

int sim_battery_policy_parse(const char *s, sim_battery_policy *out)
{
    if (strcmp(s, "self_consumption") == 0)
        *out = SIM_BATTERY_SELF_CONSUMPTION;
    else if (strcmp(s, "schedule") == 0)
        *out = SIM_BATTERY_SCHEDULE;
    else
        return -1;
    return 0;
}

size_t sim_scenario_homes(const sim_scenario *sc)
{
    size_t n = 0;
    for (size_t i = 0; i < sc->n_groups && i < SIM_MAX_GROUPS; i++)
        n += sc->groups[i].count;
    return n;
}

/* ---- value parsing ------------------------------------------------------------------- */

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9') /* strtoull would accept and negate "-1" */
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int two_digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* "UTC", "Z", "+hh:mm", "-hh:mm" or "+hh" / "-hh". */
static int parse_tz(const char *s, int32_t *out)
{
    if (strcmp(s, "UTC") == 0 || strcmp(s, "Z") == 0) {
        *out = 0;
        return 0;
    }
    if (s[0] != '+' && s[0] != '-')
        return -1;
    int h = two_digits(s + 1), m = 0;
    if (h < 0)
        return -1;
    if (s[3] == ':') {
        m = two_digits(s + 4);
        if (m < 0 || m > 59 || s[6] != '\0')
            return -1;
    } else if (s[3] != '\0') {
        return -1;
    }
    *out = (int32_t)((s[0] == '-' ? -1 : 1) * (h * 60 + m));
    return 0;
}

static int date_valid(int32_t y, int32_t m, int32_t d)
{
    return y >= 1900 && y <= 2200 && m >= 1 && m <= 12 && d >= 1 && d <= mkt_days_in_month(y, m);
}

/* Exactly YYYY-MM-DD. Calendar validity is checked by the range rules. */
static int parse_date(const char *s, int32_t ymd[3])
{
    int hi = two_digits(s), lo = hi < 0 ? -1 : two_digits(s + 2);
    if (lo < 0 || s[4] != '-' || s[7] != '-' || s[10] != '\0')
        return -1;
    int m = two_digits(s + 5), d = m < 0 ? -1 : two_digits(s + 8);
    if (d < 0)
        return -1;
    ymd[0] = hi * 100 + lo;
    ymd[1] = m;
    ymd[2] = d;
    return 0;
}

/* Printable, no characters that would need escaping in CSV or JSON reports. */
static int name_valid(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\\' || *s == ',')
            return 0;
    return 1;
}

static int group_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > GROUP_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static const char *expected(key_kind k)
{
    switch (k) {
    case K_STR:
        return "a name (1 to 63 printable characters, no '\"', '\\' or ',')";
    case K_DBL:
        return "a finite number";
    case K_U32:
    case K_U64:
    case K_I64:
        return "an integer";
    case K_TZ:
        return "a fixed UTC offset: UTC, Z, +hh:mm or -hh:mm";
    case K_DATE:
        return "a date YYYY-MM-DD";
    case K_MECH:
        return "pay-as-clear or pay-as-bid";
    case K_TIMING:
        return "ex_ante or ex_post";
    case K_AGENT:
        return "truthful, zic, markup or zip";
    case K_POLICY:
        return "self_consumption or schedule";
    }
    return "?";
}

/* Stores text into the field. Returns 0, -1 if the text does not parse as the key's type, or
 * -3 if it is an integer too large or negative for an unsigned field. */
static int store(const key_def *k, void *base, const char *v)
{
    char *p = (char *)base + k->off;
    int64_t i;
    uint64_t u;
    double d;
    int32_t ymd[3], off;
    mkt_mechanism m;
    mkt_timing t;
    sim_agent_kind a;
    sim_battery_policy bp;
    uint32_t x;
    switch (k->kind) {
    case K_STR:
        if (strlen(v) >= SIM_NAME_MAX || !name_valid(v))
            return -1;
        memcpy(p, v, strlen(v) + 1);
        return 0;
    case K_DBL:
        if (parse_double(v, &d))
            return -1;
        memcpy(p, &d, sizeof d);
        return 0;
    case K_U32:
        if (parse_i64(v, &i))
            return -1;
        if (i < 0 || i > (int64_t)UINT32_MAX)
            return -3;
        x = (uint32_t)i;
        memcpy(p, &x, sizeof x);
        return 0;
    case K_U64:
        if (parse_u64(v, &u))
            return -1;
        memcpy(p, &u, sizeof u);
        return 0;
    case K_I64:
        if (parse_i64(v, &i))
            return -1;
        memcpy(p, &i, sizeof i);
        return 0;
    case K_TZ:
        if (parse_tz(v, &off))
            return -1;
        memcpy(p, &off, sizeof off);
        return 0;
    case K_DATE:
        if (parse_date(v, ymd))
            return -1;
        memcpy(p, ymd, sizeof ymd); /* start_year, start_month, start_day are adjacent */
        return 0;
    case K_MECH:
        if (mkt_mechanism_parse(v, &m) != MKT_OK)
            return -1;
        memcpy(p, &m, sizeof m);
        return 0;
    case K_TIMING:
        if (mkt_timing_parse(v, &t) != MKT_OK)
            return -1;
        memcpy(p, &t, sizeof t);
        return 0;
    case K_AGENT:
        if (sim_strategy_parse(v, &a) != SIM_STRAT_OK) /* the names the home agent takes */
            return -1;
        memcpy(p, &a, sizeof a);
        return 0;
    case K_POLICY:
        if (sim_battery_policy_parse(v, &bp))
            return -1;
        memcpy(p, &bp, sizeof bp);
        return 0;
    }
    return -1;
}

/* ---- range and cross-field rules --------------------------------------------------- */

static int key_index(const key_def *tab, size_t n, const char *section, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if ((!section || strcmp(tab[i].section, section) == 0) && strcmp(tab[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void range_text(const key_def *k, char *buf, size_t len)
{
    snprintf(buf, len, "%c%g, %g%c", (k->flags & LO_OPEN) ? '(' : '[', k->lo, k->hi,
             (k->flags & HI_OPEN) ? ')' : ']');
}

static int in_range(const key_def *k, double v)
{
    int lo_ok = (k->flags & LO_OPEN) ? v > k->lo : v >= k->lo;
    int hi_ok = (k->flags & HI_OPEN) ? v < k->hi : v <= k->hi;
    return lo_ok && hi_ok;
}

/* The numeric value of a field for the range check; 0 if the key has no numeric range. */
static int field_number(const key_def *k, const void *base, double *v)
{
    const char *p = (const char *)base + k->off;
    uint32_t u;
    int64_t i;
    int32_t t;
    switch (k->kind) {
    case K_DBL:
        memcpy(v, p, sizeof *v);
        return 1;
    case K_U32:
        memcpy(&u, p, sizeof u);
        *v = (double)u;
        return 1;
    case K_I64:
        memcpy(&i, p, sizeof i);
        *v = (double)i;
        return 1;
    case K_TZ:
        memcpy(&t, p, sizeof t);
        *v = (double)t;
        return 1;
    default:
        return 0;
    }
}

/* Checks one field against its table entry; writes a message without location. Returns 0,
 * -1 for a number out of its range, -2 for any other broken rule. */
static int check_key(const key_def *k, const void *base, char *err, size_t len)
{
    const char *p = (const char *)base + k->off;
    double v;
    char r[64];
    if (field_number(k, base, &v)) {
        range_text(k, r, sizeof r);
        if (!isfinite(v) || !in_range(k, v))
            return sim_fail(err, len, -1, "%s = %g is out of range %s", k->name, v, r);
        if ((k->flags & DIVIDES_DAY) && 1440 % (uint32_t)v != 0)
            return sim_fail(err, len, -2,
                            "%s = %g does not divide 1440 (a day must hold whole intervals)",
                            k->name, v);
        return 0;
    }
    if (k->kind == K_DATE) {
        int32_t ymd[3];
        memcpy(ymd, p, sizeof ymd);
        if (!date_valid(ymd[0], ymd[1], ymd[2]))
            return sim_fail(err, len, -2, "%s = %04d-%02d-%02d is not a valid date in 1900..2200",
                            k->name, (int)ymd[0], (int)ymd[1], (int)ymd[2]);
    } else if (k->kind == K_STR) {
        if (memchr(p, '\0', SIM_NAME_MAX) == NULL || !name_valid(p))
            return sim_fail(err, len, -2, "%s must be %s", k->name, expected(K_STR));
    } else if (k->kind == K_MECH || k->kind == K_TIMING || k->kind == K_AGENT ||
               k->kind == K_POLICY) {
        int e;
        memcpy(&e, p, sizeof e);
        if (e < 0 || e > (k->kind == K_AGENT ? 3 : 1))
            return sim_fail(err, len, -2, "%s has no valid value (expected %s)", k->name,
                            expected(k->kind));
    }
    return 0;
}

static int fail_at(fault *f, int group, int key_a, int key_b)
{
    f->group = group;
    f->key_a = key_a;
    f->key_b = key_b;
    return SIM_E_PARSE;
}

static int check_group(const sim_scenario *sc, int gi, fault *f, char *err, size_t len)
{
    const sim_group *g = &sc->groups[gi];
    const char *nul = memchr(g->name, '\0', SIM_NAME_MAX);
    if (!nul || !group_name_valid(g->name, (size_t)(nul - g->name))) {
        sim_fail(err, len, SIM_E_PARSE,
                 "group %d has a bad name: use 1 to %d letters, digits, '_' or '-'", gi + 1,
                 GROUP_NAME_MAX);
        return fail_at(f, gi, -1, -1);
    }
    for (int j = 0; j < gi; j++) {
        if (strcmp(sc->groups[j].name, g->name) == 0) {
            sim_fail(err, len, SIM_E_PARSE, "duplicate group '%s'", g->name);
            return fail_at(f, gi, -1, -1);
        }
    }
    for (size_t i = 0; i < N_GKEYS; i++) {
        char m[200];
        if (check_key(&group_keys[i], g, m, sizeof m)) {
            sim_fail(err, len, SIM_E_PARSE, "%s in [" GROUP_PREFIX "%s]", m, g->name);
            return fail_at(f, gi, (int)i, -1);
        }
    }
    int kmin = key_index(group_keys, N_GKEYS, NULL, "soc_min");
    int kmax = key_index(group_keys, N_GKEYS, NULL, "soc_max");
    int kini = key_index(group_keys, N_GKEYS, NULL, "soc_initial");
    if (g->soc_min > g->soc_max) {
        sim_fail(err, len, SIM_E_PARSE, "soc_min %g is above soc_max %g in [" GROUP_PREFIX "%s]",
                 g->soc_min, g->soc_max, g->name);
        return fail_at(f, gi, kmin, kmax);
    }
    if (g->soc_initial < g->soc_min || g->soc_initial > g->soc_max) {
        sim_fail(err, len, SIM_E_PARSE,
                 "soc_initial %g is outside [soc_min %g, soc_max %g] in [" GROUP_PREFIX "%s]",
                 g->soc_initial, g->soc_min, g->soc_max, g->name);
        return fail_at(f, gi, kini, g->soc_initial < g->soc_min ? kmin : kmax);
    }
    const char *lim[2] = {"feeder_export_kw", "feeder_import_kw"};
    const double limv[2] = {g->feeder_export_kw, g->feeder_import_kw};
    for (int j = 0; j < 2; j++)
        if (limv[j] < 0 && limv[j] != -1.0) {
            sim_fail(err, len, SIM_E_PARSE,
                     "%s = %g in [" GROUP_PREFIX "%s]: a limit is >= 0 kW, or -1 for none",
                     lim[j], limv[j], g->name);
            return fail_at(f, gi, key_index(group_keys, N_GKEYS, NULL, lim[j]), -1);
        }
    if (g->battery_kwh > 0 && !(g->battery_kw > 0)) {
        sim_fail(err, len, SIM_E_PARSE,
                 "battery_kwh %g needs battery_kw > 0 in [" GROUP_PREFIX "%s]", g->battery_kwh,
                 g->name);
        return fail_at(f, gi, key_index(group_keys, N_GKEYS, NULL, "battery_kwh"),
                       key_index(group_keys, N_GKEYS, NULL, "battery_kw"));
    }
    return SIM_OK;
}

/* All rules; on failure f says which group and keys are involved. */
static int check_all(const sim_scenario *sc, fault *f, char *err, size_t len)
{
    for (size_t i = 0; i < N_SKEYS; i++) {
        char m[200];
        if (check_key(&scenario_keys[i], sc, m, sizeof m)) {
            sim_fail(err, len, SIM_E_PARSE, "%s in [%s]", m, scenario_keys[i].section);
            return fail_at(f, -1, (int)i, -1);
        }
    }
    if (sc->feed_in_uc_per_kwh > sc->retail_uc_per_kwh) {
        sim_fail(err, len, SIM_E_PARSE,
                 "feed_in_tariff %lld is above retail_tariff %lld uc/kWh in [market] (a home "
                 "would profit from importing to export)",
                 (long long)sc->feed_in_uc_per_kwh, (long long)sc->retail_uc_per_kwh);
        return fail_at(f, -1, key_index(scenario_keys, N_SKEYS, "market", "feed_in_tariff"),
                       key_index(scenario_keys, N_SKEYS, "market", "retail_tariff"));
    }
    if (sc->retail_peak_uc_per_kwh > 0 && sc->feed_in_uc_per_kwh > sc->retail_peak_uc_per_kwh) {
        sim_fail(err, len, SIM_E_PARSE,
                 "feed_in_tariff %lld is above retail_peak_tariff %lld uc/kWh in [market]",
                 (long long)sc->feed_in_uc_per_kwh, (long long)sc->retail_peak_uc_per_kwh);
        return fail_at(f, -1, key_index(scenario_keys, N_SKEYS, "market", "feed_in_tariff"),
                       key_index(scenario_keys, N_SKEYS, "market", "retail_peak_tariff"));
    }
    if (sc->n_groups == 0 || sc->n_groups > SIM_MAX_GROUPS) {
        sim_fail(err, len, SIM_E_PARSE,
                 "a scenario needs 1 to %d [" GROUP_PREFIX "NAME] sections, found %zu",
                 SIM_MAX_GROUPS, sc->n_groups);
        return fail_at(f, -1, -1, -1);
    }
    size_t total = 0;
    int kcount = key_index(group_keys, N_GKEYS, NULL, "count");
    for (int gi = 0; gi < (int)sc->n_groups; gi++) {
        int rc = check_group(sc, gi, f, err, len);
        if (rc)
            return rc;
        total += sc->groups[gi].count;
        if (total > SIM_MAX_HOMES) {
            sim_fail(err, len, SIM_E_PARSE, "more than %d homes in total (at group '%s')",
                     SIM_MAX_HOMES, sc->groups[gi].name);
            return fail_at(f, gi, kcount, -1);
        }
    }
    if (total == 0) {
        sim_fail(err, len, SIM_E_PARSE, "the scenario has no homes: every group has count = 0");
        return fail_at(f, (int)sc->n_groups - 1, kcount, -1);
    }
    return SIM_OK;
}

int sim_scenario_validate(const sim_scenario *sc, char *err, size_t err_len)
{
    fault f;
    if (!sc)
        return sim_fail(err, err_len, SIM_E_INVAL, "no scenario");
    return check_all(sc, &f, err, err_len);
}

/* ---- the INI reader ---------------------------------------------------------------- */

typedef struct {
    const char *path;
    FILE *fp;
    int lineno;
    int failed;
    char msg[512]; /* the first error, with file and line */
    sim_scenario sc;
    int cur; /* -1 before any section, a fixed section index, or N_SECTIONS + group */
    char cur_name[SIM_NAME_MAX];
    int sec_line[N_SECTIONS];
    int group_line[SIM_MAX_GROUPS];
    int skey_line[N_SKEYS]; /* 0 = not given in the file */
    int gkey_line[SIM_MAX_GROUPS][N_GKEYS];
} load_ctx;

static void fail(load_ctx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(load_ctx *c, int line, const char *fmt, ...)
{
    char m[384];
    va_list ap;
    if (c->failed)
        return;
    c->failed = 1;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(c->msg, sizeof c->msg, "%s:%d: %s", c->path, line, m);
    else
        snprintf(c->msg, sizeof c->msg, "%s: %s", c->path, m);
}

static int begin_group(load_ctx *c, const char *name, size_t len)
{
    if (!group_name_valid(name, len)) {
        fail(c, c->lineno, "bad group name '%.*s': use 1 to %d letters, digits, '_' or '-'",
             (int)len, name, GROUP_NAME_MAX);
        return -1;
    }
    for (size_t g = 0; g < c->sc.n_groups; g++) {
        if (strlen(c->sc.groups[g].name) == len && memcmp(c->sc.groups[g].name, name, len) == 0) {
            fail(c, c->lineno, "duplicate group '%.*s' (first at line %d)", (int)len, name,
                 c->group_line[g]);
            return -1;
        }
    }
    if (c->sc.n_groups == SIM_MAX_GROUPS) {
        fail(c, c->lineno, "too many groups (at most %d)", SIM_MAX_GROUPS);
        return -1;
    }
    size_t g = c->sc.n_groups++;
    sim_group_defaults(&c->sc.groups[g]);
    memcpy(c->sc.groups[g].name, name, len);
    c->sc.groups[g].name[len] = '\0';
    c->group_line[g] = c->lineno;
    c->cur = N_SECTIONS + (int)g;
    return 0;
}

/* A "[name]" line: switch sections. The name is what inih will pass to the handler. */
static int begin_section(load_ctx *c, const char *name, size_t len)
{
    size_t plen = strlen(GROUP_PREFIX);
    if (len >= sizeof c->cur_name) {
        fail(c, c->lineno, "unknown section [%.*s]", (int)len, name);
        return -1;
    }
    memcpy(c->cur_name, name, len);
    c->cur_name[len] = '\0';
    for (int i = 0; i < N_SECTIONS; i++) {
        if (strcmp(c->cur_name, section_names[i]) != 0)
            continue;
        if (c->sec_line[i]) {
            fail(c, c->lineno, "section [%s] appears twice (first at line %d)", section_names[i],
                 c->sec_line[i]);
            return -1;
        }
        c->sec_line[i] = c->lineno;
        c->cur = i;
        return 0;
    }
    if (len >= plen && memcmp(name, GROUP_PREFIX, plen) == 0)
        return begin_group(c, name + plen, len - plen);
    fail(c, c->lineno, "unknown section [%s] (expected scenario, location, period, weather, "
         "market or " GROUP_PREFIX "NAME)", c->cur_name);
    return -1;
}

/* inih's line source: counts lines and handles section headers (see the file comment). */
static char *read_line(char *str, int num, void *stream)
{
    load_ctx *c = stream;
    if (c->failed || !fgets(str, num, c->fp))
        return NULL;
    c->lineno++;
    /* fgets stops only at '\n', a full buffer or the end of the file; stopping anywhere else
     * (n == 0 included) means strlen met a NUL byte, and the bytes after it would otherwise
     * be read as the start of the next line. */
    size_t n = strlen(str);
    if (n == 0 || (str[n - 1] != '\n' && !feof(c->fp))) {
        if (n + 1 < (size_t)num)
            fail(c, c->lineno, "NUL byte in the line");
        else
            fail(c, c->lineno, "line longer than %d characters", num - 2);
        return NULL;
    }
    char *s = str;
    if (c->lineno == 1 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    s += strspn(s, " \t");
    memmove(str, s, strlen(s) + 1);
    if (str[0] == '[') {
        const char *e = strchr(str, ']');
        if (e && begin_section(c, str + 1, (size_t)(e - str - 1)))
            return NULL;
    }
    return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    load_ctx *c = user;
    if (c->failed)
        return 0;
    if (c->cur < 0) {
        fail(c, c->lineno, "key '%s' outside any section", name);
        return 0;
    }
    if (strcmp(section, c->cur_name) != 0) {
        fail(c, c->lineno, "cannot follow section [%s] (inih reports [%s])", c->cur_name, section);
        return 0;
    }
    int grp = c->cur - N_SECTIONS;
    const key_def *tab = grp < 0 ? scenario_keys : group_keys;
    size_t n = grp < 0 ? N_SKEYS : N_GKEYS;
    int *lines = grp < 0 ? c->skey_line : c->gkey_line[grp];
    void *base = grp < 0 ? (void *)&c->sc : (void *)&c->sc.groups[grp];
    int i = key_index(tab, n, grp < 0 ? section_names[c->cur] : NULL, name);
    if (i < 0) {
        fail(c, c->lineno, "unknown key '%s' in [%s]", name, section);
        return 0;
    }
    if (lines[i]) {
        fail(c, c->lineno, "duplicate key '%s' in [%s] (first at line %d)", name, section,
             lines[i]);
        return 0;
    }
    char m[200], r[64];
    int rc = store(&tab[i], base, value);
    if (rc == -1) {
        fail(c, c->lineno, "bad value '%s' for '%s' in [%s]: expected %s", value, name, section,
             expected(tab[i].kind));
        return 0;
    }
    if (rc == 0)
        rc = check_key(&tab[i], base, m, sizeof m);
    if (rc == -2) {
        fail(c, c->lineno, "%s in [%s]", m, section);
        return 0;
    }
    if (rc) { /* quote the value as written, not as parsed */
        range_text(&tab[i], r, sizeof r);
        fail(c, c->lineno, "%s = %s is out of range %s in [%s]", name, value, r, section);
        return 0;
    }
    lines[i] = c->lineno;
    return 1;
}

/* The line to blame for a rule that failed after parsing: the later of the keys involved,
 * else the section header, else 0 (no line). */
static int fault_line(const load_ctx *c, const fault *f)
{
    int line = 0;
    const int keys[2] = {f->key_a, f->key_b};
    for (int j = 0; j < 2; j++) {
        if (keys[j] < 0)
            continue;
        int l = f->group >= 0 ? c->gkey_line[f->group][keys[j]] : c->skey_line[keys[j]];
        line = l > line ? l : line;
    }
    if (line == 0 && f->group >= 0)
        line = c->group_line[f->group];
    if (line == 0 && f->group < 0 && f->key_a >= 0) {
        for (int i = 0; i < N_SECTIONS; i++)
            if (strcmp(section_names[i], scenario_keys[f->key_a].section) == 0)
                line = c->sec_line[i];
    }
    return line;
}

/* Rules that need the whole file: required keys and defaults that depend on other keys. */
static void finish(load_ctx *c)
{
    int kcount = key_index(group_keys, N_GKEYS, NULL, "count");
    int kazi = key_index(group_keys, N_GKEYS, NULL, "pv_azimuth");
    for (size_t g = 0; g < c->sc.n_groups; g++) {
        if (!c->gkey_line[g][kcount]) {
            fail(c, c->group_line[g], "[" GROUP_PREFIX "%s] needs a count",
                 c->sc.groups[g].name);
            return;
        }
        /* panels face the equator unless told otherwise */
        if (!c->gkey_line[g][kazi])
            c->sc.groups[g].pv_azimuth_deg = c->sc.latitude_deg >= 0 ? 180.0 : 0.0;
    }
    fault f;
    char m[384];
    if (check_all(&c->sc, &f, m, sizeof m))
        fail(c, fault_line(c, &f), "%s", m);
}

int sim_scenario_load(const char *path, sim_scenario *sc, char *err, size_t err_len)
{
    int rc = SIM_OK;
    load_ctx *c = NULL;
    if (!path || !sc)
        return sim_fail(err, err_len, SIM_E_INVAL, "no file or scenario given");
    c = calloc(1, sizeof *c);
    if (!c)
        return sim_fail(err, err_len, SIM_E_NOMEM, "%s: out of memory", path);
    c->path = path;
    c->cur = -1;
    sim_scenario_defaults(&c->sc);
    c->fp = fopen(path, "r");
    if (!c->fp) {
        rc = sim_fail(err, err_len, SIM_E_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    int line = ini_parse_stream(read_line, c, on_key, c);
    if (!c->failed && ferror(c->fp)) {
        rc = sim_fail(err, err_len, SIM_E_IO, "%s:%d: read error", path, c->lineno);
        goto out;
    }
    if (!c->failed && line > 0)
        fail(c, line, "syntax error: expected [section], key = value or a comment");
    if (!c->failed && line < 0) {
        rc = sim_fail(err, err_len, SIM_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    if (!c->failed)
        finish(c);
    if (c->failed) {
        rc = sim_fail(err, err_len, SIM_E_PARSE, "%s", c->msg);
        goto out;
    }
    *sc = c->sc;
out:
    if (c && c->fp)
        fclose(c->fp);
    free(c);
    return rc;
}

/* ---- one key set on a loaded scenario (sweeps) -------------------------------------- */

int sim_scenario_set(sim_scenario *sc, const char *section, const char *key, const char *value,
                     char *err, size_t err_len)
{
    if (!sc || !section || !key || !value)
        return sim_fail(err, err_len, SIM_E_INVAL, "no scenario, section, key or value given");
    /* work on a copy: a value that fails a rule leaves the scenario as it was */
    sim_scenario *c = malloc(sizeof *c);
    if (!c)
        return sim_fail(err, err_len, SIM_E_NOMEM, "out of memory");
    *c = *sc;
    int rc = SIM_OK;
    const key_def *tab = scenario_keys;
    size_t n = N_SKEYS;
    const char *sec = section;
    void *base = c;
    size_t plen = strlen(GROUP_PREFIX);
    if (strncmp(section, GROUP_PREFIX, plen) == 0) {
        size_t g = 0;
        while (g < c->n_groups && strcmp(c->groups[g].name, section + plen) != 0)
            g++;
        if (g == c->n_groups) {
            rc = sim_fail(err, err_len, SIM_E_PARSE, "the scenario has no [%s]", section);
            goto out;
        }
        tab = group_keys;
        n = N_GKEYS;
        sec = NULL;
        base = &c->groups[g];
    }
    int i = key_index(tab, n, sec, key);
    if (i < 0) {
        rc = sim_fail(err, err_len, SIM_E_PARSE, "unknown key '%s' in [%s]", key, section);
        goto out;
    }
    char m[200], r[64];
    int st = store(&tab[i], base, value);
    if (st == -1) {
        rc = sim_fail(err, err_len, SIM_E_PARSE, "bad value '%s' for '%s' in [%s]: expected %s",
                      value, key, section, expected(tab[i].kind));
        goto out;
    }
    if (st == 0)
        st = check_key(&tab[i], base, m, sizeof m);
    if (st == -2) {
        rc = sim_fail(err, err_len, SIM_E_PARSE, "%s in [%s]", m, section);
        goto out;
    }
    if (st) {
        range_text(&tab[i], r, sizeof r);
        rc = sim_fail(err, err_len, SIM_E_PARSE, "%s = %s is out of range %s in [%s]", key, value,
                      r, section);
        goto out;
    }
    rc = sim_scenario_validate(c, err, err_len);
    if (rc == SIM_OK)
        *sc = *c;
out:
    free(c);
    return rc;
}
