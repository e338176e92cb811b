/*
 * The home agent's configuration file (see agent_config.h). Values are parsed strictly: an
 * integer has nothing after it, a path fits its buffer, an id is a valid topic level.
 */
#include "agent_config.h"

#include "bus.h"
#include "opt.h"

#include <ini.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static int say(char *why, size_t len, const char *fmt, ...)
{
    if (why && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void agc_defaults(agc_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->strategy = sim_strategy_defaults();
    c->tariffs.mechanism = MKT_PAY_AS_CLEAR;
    c->tariffs.feed_in_uc_per_kwh = -1; /* required */
    c->tariffs.retail_uc_per_kwh = -1;
    c->interval_s = 900;
    c->gate_closure_s = 0;
    c->resend_s = 5;
    c->give_up_s = 3600;
    c->max_reading_gap_s = 300;
    c->max_power_w = 100000;
}

static int copy(char *dst, size_t cap, const char *key, const char *v, char *why, size_t len)
{
    if (strlen(v) >= cap)
        return say(why, len, "%s: longer than %zu bytes", key, cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int id(char *dst, const char *key, const char *v, char *why, size_t len)
{
    if (!bus_id_valid(v))
        return say(why, len, "%s: '%s' is not an id (1..63 of A-Z a-z 0-9 _ -)", key, v);
    return copy(dst, AGC_ID_MAX, key, v, why, len);
}

static int integer(int64_t *dst, const char *key, const char *v, int64_t lo, int64_t hi,
                   char *why, size_t len)
{
    if (ctl_opt_int64(v, lo, hi, dst))
        return say(why, len, "%s: '%s' is not an integer in %lld..%lld", key, v, (long long)lo,
                   (long long)hi);
    return 0;
}

static int fraction(double *dst, const char *key, const char *v, char *why, size_t len)
{
    char *end = NULL;
    double d = strtod(v, &end);
    if (!*v || *end || !(d >= 0.0 && d <= 1.0))
        return say(why, len, "%s: '%s' is not a number in 0..1", key, v);
    *dst = d;
    return 0;
}

static int set_bus(agc_config *c, const char *k, const char *v, char *why, size_t len)
{
    int64_t n;
    if (!strcmp(k, "host"))
        return copy(c->host, sizeof c->host, k, v, why, len);
    if (!strcmp(k, "port")) {
        if (integer(&n, k, v, 1, 65535, why, len))
            return -1;
        c->port = (int)n;
        return 0;
    }
    if (!strcmp(k, "community"))
        return id(c->community, k, v, why, len);
    if (!strcmp(k, "client_id"))
        return id(c->client_id, k, v, why, len);
    if (!strcmp(k, "username"))
        return id(c->username, k, v, why, len);
    if (!strcmp(k, "password_file"))
        return copy(c->password_file, sizeof c->password_file, k, v, why, len);
    if (!strcmp(k, "ca_file"))
        return copy(c->ca_file, sizeof c->ca_file, k, v, why, len);
    if (!strcmp(k, "cert_file"))
        return copy(c->cert_file, sizeof c->cert_file, k, v, why, len);
    if (!strcmp(k, "key_file"))
        return copy(c->tls_key_file, sizeof c->tls_key_file, k, v, why, len);
    return say(why, len, "%s: unknown key in [bus]", k);
}

static int set_tariff(int64_t *dst, const char *k, const char *v, char *why, size_t len)
{
    return integer(dst, k, v, 0, MKT_PRICE_MAX_UC_PER_KWH, why, len);
}

static int set_agent(agc_config *c, const char *k, const char *v, char *why, size_t len)
{
    if (!strcmp(k, "participant"))
        return id(c->participant, k, v, why, len);
    if (!strcmp(k, "meter_id"))
        return id(c->meter_id, k, v, why, len);
    if (!strcmp(k, "key_file"))
        return copy(c->key_file, sizeof c->key_file, k, v, why, len);
    if (!strcmp(k, "outbox"))
        return copy(c->outbox, sizeof c->outbox, k, v, why, len);
    if (!strcmp(k, "strategy")) {
        if (sim_strategy_parse(v, &c->strategy.kind))
            return say(why, len, "strategy: '%s' is not truthful, zic, markup or zip", v);
        return 0;
    }
    if (!strcmp(k, "markup"))
        return fraction(&c->strategy.markup, k, v, why, len);
    if (!strcmp(k, "zip_beta"))
        return fraction(&c->strategy.zip_beta, k, v, why, len);
    if (!strcmp(k, "zip_momentum"))
        return fraction(&c->strategy.zip_momentum, k, v, why, len);
    if (!strcmp(k, "feed_in_uc_per_kwh"))
        return set_tariff(&c->tariffs.feed_in_uc_per_kwh, k, v, why, len);
    if (!strcmp(k, "retail_uc_per_kwh"))
        return set_tariff(&c->tariffs.retail_uc_per_kwh, k, v, why, len);
    if (!strcmp(k, "network_fee_uc_per_kwh"))
        return set_tariff(&c->tariffs.network_fee_uc_per_kwh, k, v, why, len);
    if (!strcmp(k, "interval_s"))
        return integer(&c->interval_s, k, v, 1, 86400, why, len);
    if (!strcmp(k, "gate_closure_s"))
        return integer(&c->gate_closure_s, k, v, 0, 7 * 86400, why, len);
    if (!strcmp(k, "resend_s"))
        return integer(&c->resend_s, k, v, 1, 3600, why, len);
    if (!strcmp(k, "give_up_s"))
        return integer(&c->give_up_s, k, v, 0, 7 * 86400, why, len);
    if (!strcmp(k, "max_reading_gap_s"))
        return integer(&c->max_reading_gap_s, k, v, 1, 86400, why, len);
    if (!strcmp(k, "max_power_w"))
        return integer(&c->max_power_w, k, v, 1, INT64_C(1000000000), why, len);
    return say(why, len, "%s: unknown key in [agent]", k);
}

int agc_set(agc_config *c, const char *section, const char *key, const char *value, char *why,
            size_t why_len)
{
    if (!strcmp(section, "bus"))
        return set_bus(c, key, value, why, why_len);
    if (!strcmp(section, "agent"))
        return set_agent(c, key, value, why, why_len);
    return say(why, why_len, "[%s]: unknown section (expected [bus] or [agent])", section);
}

int agc_finish(agc_config *c, char *why, size_t why_len)
{
    static const struct {
        size_t off;
        const char *name;
    } REQUIRED[] = {
        {offsetof(agc_config, community), "[bus] community"},
        {offsetof(agc_config, participant), "[agent] participant"},
        {offsetof(agc_config, key_file), "[agent] key_file"},
        {offsetof(agc_config, outbox), "[agent] outbox"},
    };
    for (size_t i = 0; i < sizeof REQUIRED / sizeof REQUIRED[0]; i++)
        if (!((const char *)c)[REQUIRED[i].off])
            return say(why, why_len, "%s is required", REQUIRED[i].name);
    if (c->tariffs.feed_in_uc_per_kwh < 0 || c->tariffs.retail_uc_per_kwh < 0)
        return say(why, why_len,
                   "[agent] feed_in_uc_per_kwh and retail_uc_per_kwh are required (the "
                   "community's tariffs bound every price)");
    if (c->tariffs.retail_uc_per_kwh < c->tariffs.feed_in_uc_per_kwh)
        return say(why, why_len, "[agent] retail_uc_per_kwh is below feed_in_uc_per_kwh");
    const char *bad = NULL;
    if (sim_strategy_check(&c->strategy, &bad))
        return say(why, why_len, "[agent] %s: out of range", bad);
    if (c->gate_closure_s >= 7 * 86400 || c->max_reading_gap_s < 1)
        return say(why, why_len, "[agent] gate_closure_s: out of range");
    if (!!c->cert_file[0] != !!c->tls_key_file[0])
        return say(why, why_len, "[bus] cert_file and key_file go together");
    if (!c->meter_id[0])
        snprintf(c->meter_id, sizeof c->meter_id, "%s", c->participant);
    if (!c->username[0] && !c->cert_file[0])
        snprintf(c->username, sizeof c->username, "%s", c->participant);
    if (!c->client_id[0]) {
        if (strlen(c->participant) + 6 >= sizeof c->client_id || strlen(c->participant) > 57)
            return say(why, why_len, "[bus] client_id: set it (participant id too long)");
        snprintf(c->client_id, sizeof c->client_id, "%s-agent", c->participant);
    }
    return 0;
}

typedef struct {
    agc_config *c;
    char why[256];
    bool failed;
} load_ctx;

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    load_ctx *x = user;
    if (x->failed)
        return 1; /* report only the first error, at its line */
    if (agc_set(x->c, section, key, value, x->why, sizeof x->why)) {
        x->failed = true;
        return 0;
    }
    return 1;
}

int agc_load(const char *path, agc_config *c, char *err, size_t err_len)
{
    load_ctx x = {c, "", false};
    agc_defaults(c);
    int line = ini_parse(path, on_key, &x);
    if (line == -1)
        return say(err, err_len, "%s: cannot open", path);
    if (line == -2)
        return say(err, err_len, "%s: out of memory", path);
    if (line > 0)
        return say(err, err_len, "%s:%d: %s", path, line,
                   x.failed ? x.why : "syntax error: expected [section] or key = value");
    if (agc_finish(c, x.why, sizeof x.why))
        return say(err, err_len, "%s: %s", path, x.why);
    return 0;
}
