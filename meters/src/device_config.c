/*
 * Device configuration: [meter ID] and [map NAME] sections of an INI file (keys in
 * docs/meters.md), fed key by key so that the meter daemon can mix them with its own sections,
 * plus a loader for files with only these sections. Every key remembers its line so that the
 * checks spanning sections (mtr_config_finish) still name the line to fix.
 */
#define _POSIX_C_SOURCE 200809L
#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "mgx/sdm.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    K_PROFILE, K_TRANSPORT, K_HOST, K_PORT, K_DEVICE, K_BAUD, K_PARITY, K_DATA_BITS, K_STOP_BITS,
    K_UNIT, K_POLL_MS, K_TIMEOUT_MS, K_RETRIES, K_BACKOFF, K_PAUSE, K_CONNECTIONS, K_CURRENT,
    K_VOLTAGE, K_PHASES, K_SLACK, K_RESET, K_SIGN, K_SWAP, K_BATTERY, N_DKEYS
};

static const char *const DKEYS[N_DKEYS] = {
    "profile", "transport", "host", "port", "device", "baud", "parity", "data_bits",
    "stop_bits", "unit", "poll_ms", "timeout_ms", "retries", "retry_backoff_ms",
    "inter_unit_pause_ms", "connections", "rated_current_a", "voltage_v", "phases", "slack_wh",
    "reset_below_wh", "sign", "swap_energy", "battery"};

enum { M_POWER, M_IMPORT, M_EXPORT, M_SOC, M_SIGN, M_MAX_REGS, M_MAKE, M_MODEL, N_MKEYS };
static const char *const MKEYS[N_MKEYS] = {"power", "import", "export", "soc",
                                           "sign",  "max_regs", "make", "model"};

typedef struct {
    mtr_device_config d;
    char map_name[MTR_MAP_NAME_MAX];
    int line[N_DKEYS];
} dev_entry;

typedef struct {
    mtr_map m;
    int header_line;
    int line[N_MKEYS];
} map_entry;

struct mtr_config {
    char *source;
    dev_entry *devs;
    size_t n_devs, cap_devs;
    map_entry *maps[MTR_MAX_MAPS];
    size_t n_maps;
    int finished;
};

static void say(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (!err || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

mtr_config *mtr_config_new(void)
{
    return calloc(1, sizeof(mtr_config));
}

void mtr_config_free(mtr_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_maps; i++)
        free(cfg->maps[i]);
    free(cfg->devs);
    free(cfg->source);
    free(cfg);
}

int mtr_config_set_source(mtr_config *cfg, const char *path)
{
    char *s = strdup(path ? path : "config");
    if (!s)
        return MTR_E_NOMEM;
    free(cfg->source);
    cfg->source = s;
    return MTR_OK;
}

void mtr_device_config_default(mtr_device_config *d)
{
    memset(d, 0, sizeof *d);
    d->profile = MTR_PROFILE_SUNSPEC;
    d->transport = MTR_TCP;
    snprintf(d->host, sizeof d->host, "127.0.0.1");
    d->port = 502;
    d->baud = 9600;
    d->parity = 'N';
    d->data_bits = 8;
    d->stop_bits = 1;
    d->unit = 1;
    d->poll_ms = 1000;
    d->timeout_ms = 500;
    d->retries = 2;
    d->retry_backoff_ms = 100;
    d->connections = 1;
    d->rated_current_a = 100;
    d->voltage_v = 230;
    d->phases = 3;
    d->slack_wh = 10;
    d->reset_below_wh = 1000;
    d->battery = MTR_BATTERY_AUTO;
}

const char *mtr_profile_name(mtr_profile p)
{
    static const char *const names[] = {"sunspec", "sdm630", "sdm120", "sdm72", "map"};
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "unknown";
}

void mtr_device_counter_params(const mtr_device_config *d, mtr_counter_params *p)
{
    mtr_counter_params_default(p);
    p->max_power_w = (int64_t)d->rated_current_a * d->voltage_v * d->phases;
    p->slack_wh = d->slack_wh;
    p->reset_below_wh = d->reset_below_wh;
}

/* ---- value parsers: 0 on success, -1 with a message ---- */

/* An integer in [min, max], the whole string, in strtoll's base (0: also 0x hex and 0 octal). */
static int parse_ll(const char *v, int base, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, base);
    if (errno || end == v || *end != '\0' || x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

/* Ports, counts, times and register addresses: any base strtoll recognises. */
static int parse_int(const char *v, long min, long max, int *out)
{
    long long x;
    if (parse_ll(v, 0, min, max, &x))
        return -1;
    *out = (int)x;
    return 0;
}

/* Energies in Wh: decimal only. */
static int parse_i64(const char *v, long long min, long long max, int64_t *out)
{
    long long x;
    if (parse_ll(v, 10, min, max, &x))
        return -1;
    *out = (int64_t)x;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0"))
        *out = 0;
    else
        return -1;
    return 0;
}

static int parse_sign(const char *v, int *export_positive)
{
    if (!strcmp(v, "import_positive"))
        *export_positive = 0;
    else if (!strcmp(v, "export_positive"))
        *export_positive = 1;
    else
        return -1;
    return 0;
}

static int valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/*
 * A field spec: "<input|holding>:<address> <type> [<order>] [scale=<decimal>] [na]", e.g.
 * "input:0x0048 float32 abcd scale=1000". Writes the problem into err.
 */
static int parse_field(const char *spec, mtr_field *f, char *err, size_t errlen)
{
    char buf[256], *save = NULL;
    int got_type = 0, got_order = 0, got_scale = 0;
    if (strlen(spec) >= sizeof buf) {
        say(err, errlen, "register spec too long");
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", spec);
    memset(f, 0, sizeof *f);
    f->scale = MTR_SCALE_ONE;
    char *tok = strtok_r(buf, " \t", &save);
    const char *colon = tok ? strchr(tok, ':') : NULL;
    int addr;
    if (!colon || parse_int(colon + 1, 0, 65535, &addr)) {
        say(err, errlen, "expected input:ADDRESS or holding:ADDRESS (0..65535) first, got '%s'",
            tok ? tok : "");
        return -1;
    }
    if (!strncmp(tok, "input:", 6))
        f->fc = 4;
    else if (!strncmp(tok, "holding:", 8))
        f->fc = 3;
    else {
        say(err, errlen, "register table must be 'input' or 'holding', got '%.*s'",
            (int)(colon - tok), tok);
        return -1;
    }
    f->addr = (uint16_t)addr;
    while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
        if (!got_type && !mtr_reg_type_parse(tok, &f->type)) {
            got_type = 1;
        } else if (!got_order && !mtr_word_order_parse(tok, &f->order)) {
            got_order = 1;
        } else if (!got_scale && !strncmp(tok, "scale=", 6)) {
            if (mtr_scale_parse(tok + 6, &f->scale)) {
                say(err, errlen, "bad scale '%s': a decimal such as 0.01, 1000 or 1e-3", tok + 6);
                return -1;
            }
            got_scale = 1;
        } else if (!strcmp(tok, "na")) {
            f->sunspec_na = 1;
        } else {
            say(err, errlen,
                "unexpected '%s' (expected a type int16|uint16|int32|uint32|acc32|float32, an "
                "order abcd|cdab|badc|dcba, scale=N or na, each once)",
                tok);
            return -1;
        }
    }
    if (!got_type) {
        say(err, errlen, "missing register type (int16|uint16|int32|uint32|acc32|float32)");
        return -1;
    }
    if ((unsigned)f->addr + mtr_reg_words(f->type) > 65536u) {
        say(err, errlen, "register runs past address 65535");
        return -1;
    }
    f->present = 1;
    return 0;
}

/* ---- sections ---- */

static dev_entry *find_dev(mtr_config *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_devs; i++)
        if (!strcmp(cfg->devs[i].d.id, id))
            return &cfg->devs[i];
    return NULL;
}

static map_entry *find_map(const mtr_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_maps; i++)
        if (!strcmp(cfg->maps[i]->m.name, name))
            return cfg->maps[i];
    return NULL;
}

/* Whether a section seen for the first time may be added: its name (what: "meter id") must be
 * valid within name_max and there must be room for one more of max (plural: "meters"). */
static int admit_section(const char *what, const char *plural, const char *name, int name_max,
                         size_t n, int max, char *err, size_t errlen)
{
    if (!valid_name(name, (size_t)name_max)) {
        say(err, errlen, "bad %s '%s': use 1 to %d letters, digits, '_' or '-'", what, name,
            name_max - 1);
        return MTR_E_CONFIG;
    }
    if (n == (size_t)max) {
        say(err, errlen, "too many %s (at most %d)", plural, max);
        return MTR_E_CONFIG;
    }
    return MTR_OK;
}

/* The device of section [meter id], created on first sight. */
static int get_dev(mtr_config *cfg, const char *id, int line, dev_entry **out, char *err,
                   size_t errlen)
{
    if ((*out = find_dev(cfg, id)) != NULL)
        return MTR_OK;
    int rc = admit_section("meter id", "meters", id, MTR_ID_MAX, cfg->n_devs, MTR_MAX_DEVICES, err,
                           errlen);
    if (rc)
        return rc;
    if (cfg->n_devs == cfg->cap_devs) {
        size_t cap = cfg->cap_devs ? cfg->cap_devs * 2 : 16;
        dev_entry *d = realloc(cfg->devs, cap * sizeof *d);
        if (!d)
            return MTR_E_NOMEM;
        cfg->devs = d;
        cfg->cap_devs = cap;
    }
    dev_entry *e = &cfg->devs[cfg->n_devs++];
    memset(e, 0, sizeof *e);
    mtr_device_config_default(&e->d);
    e->d.phases = 0; /* decided in finish: 1 for sdm120, else 3 */
    snprintf(e->d.id, sizeof e->d.id, "%s", id);
    e->d.line = line;
    *out = e;
    return MTR_OK;
}

static int get_map(mtr_config *cfg, const char *name, int line, map_entry **out, char *err,
                   size_t errlen)
{
    if ((*out = find_map(cfg, name)) != NULL)
        return MTR_OK;
    int rc = admit_section("map name", "maps", name, MTR_MAP_NAME_MAX, cfg->n_maps, MTR_MAX_MAPS,
                           err, errlen);
    if (rc)
        return rc;
    map_entry *m = calloc(1, sizeof *m);
    if (!m)
        return MTR_E_NOMEM;
    snprintf(m->m.name, sizeof m->m.name, "%s", name);
    snprintf(m->m.make, sizeof m->m.make, "custom");
    snprintf(m->m.model, sizeof m->m.model, "%s", name);
    m->m.max_regs = MTR_READ_MAX;
    m->header_line = line;
    cfg->maps[cfg->n_maps++] = m;
    *out = m;
    return MTR_OK;
}

static int bad(char *err, size_t errlen, const char *key, const char *value, const char *expected)
{
    say(err, errlen, "bad value '%s' for %s: expected %s", value, key, expected);
    return MTR_E_CONFIG;
}

static int set_profile(dev_entry *e, const char *v, char *err, size_t errlen)
{
    static const mtr_profile fixed[] = {MTR_PROFILE_SUNSPEC, MTR_PROFILE_SDM630,
                                        MTR_PROFILE_SDM120, MTR_PROFILE_SDM72};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(v, mtr_profile_name(fixed[i]))) {
            e->d.profile = fixed[i];
            e->d.map = mtr_sdm_map(v);
            return MTR_OK;
        }
    if (!strncmp(v, "map:", 4) && valid_name(v + 4, MTR_MAP_NAME_MAX)) {
        e->d.profile = MTR_PROFILE_MAP;
        snprintf(e->map_name, sizeof e->map_name, "%s", v + 4);
        return MTR_OK;
    }
    return bad(err, errlen, "profile", v, "sunspec, sdm630, sdm120, sdm72 or map:NAME");
}

static int set_dev_key(dev_entry *e, int k, const char *v, char *err, size_t errlen)
{
    mtr_device_config *d = &e->d;
    int x;
    switch (k) {
    case K_PROFILE:
        return set_profile(e, v, err, errlen);
    case K_TRANSPORT:
        if (!strcmp(v, "tcp"))
            d->transport = MTR_TCP;
        else if (!strcmp(v, "rtu"))
            d->transport = MTR_RTU;
        else
            return bad(err, errlen, DKEYS[k], v, "tcp or rtu");
        return MTR_OK;
    case K_HOST:
    case K_DEVICE: {
        char *dst = k == K_HOST ? d->host : d->device;
        if (v[0] == '\0' || strlen(v) >= MTR_HOST_MAX)
            return bad(err, errlen, DKEYS[k], v, "a non-empty name under 256 bytes");
        snprintf(dst, MTR_HOST_MAX, "%s", v);
        return MTR_OK;
    }
    case K_PARITY:
        if (strlen(v) != 1 || !strchr("NEOneo", v[0]))
            return bad(err, errlen, DKEYS[k], v, "N, E or O");
        d->parity = (char)toupper((unsigned char)v[0]);
        return MTR_OK;
    case K_SIGN:
        return parse_sign(v, &d->export_positive)
                   ? bad(err, errlen, DKEYS[k], v, "import_positive or export_positive")
                   : MTR_OK;
    case K_SWAP:
        return parse_bool(v, &d->swap_energy) ? bad(err, errlen, DKEYS[k], v, "yes or no")
                                              : MTR_OK;
    case K_BATTERY:
        if (!strcmp(v, "auto"))
            d->battery = MTR_BATTERY_AUTO;
        else if (parse_bool(v, &x) == 0)
            d->battery = x ? MTR_BATTERY_YES : MTR_BATTERY_NO;
        else
            return bad(err, errlen, DKEYS[k], v, "auto, yes or no");
        return MTR_OK;
    case K_SLACK:
        return parse_i64(v, 0, 1000000000LL, &d->slack_wh)
                   ? bad(err, errlen, DKEYS[k], v, "an integer 0..1000000000")
                   : MTR_OK;
    case K_RESET:
        return parse_i64(v, 0, 1000000000LL, &d->reset_below_wh)
                   ? bad(err, errlen, DKEYS[k], v, "an integer 0..1000000000")
                   : MTR_OK;
    default:
        break;
    }
    /* plain integers with ranges */
    static const struct {
        int key;
        long min, max;
        size_t off;
    } ints[] = {
        {K_PORT, 1, 65535, offsetof(mtr_device_config, port)},
        {K_BAUD, 300, 4000000, offsetof(mtr_device_config, baud)},
        {K_DATA_BITS, 5, 8, offsetof(mtr_device_config, data_bits)},
        {K_STOP_BITS, 1, 2, offsetof(mtr_device_config, stop_bits)},
        {K_UNIT, 0, 255, offsetof(mtr_device_config, unit)},
        {K_POLL_MS, 10, 86400000, offsetof(mtr_device_config, poll_ms)},
        {K_TIMEOUT_MS, 1, 60000, offsetof(mtr_device_config, timeout_ms)},
        {K_RETRIES, 0, 10, offsetof(mtr_device_config, retries)},
        {K_BACKOFF, 0, 60000, offsetof(mtr_device_config, retry_backoff_ms)},
        {K_PAUSE, 0, 10000, offsetof(mtr_device_config, inter_unit_pause_ms)},
        {K_CONNECTIONS, 1, 64, offsetof(mtr_device_config, connections)},
        {K_CURRENT, 0, 100000, offsetof(mtr_device_config, rated_current_a)},
        {K_VOLTAGE, 1, 100000, offsetof(mtr_device_config, voltage_v)},
        {K_PHASES, 1, 3, offsetof(mtr_device_config, phases)},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (ints[i].key != k)
            continue;
        char range[64];
        if (parse_int(v, ints[i].min, ints[i].max, &x)) {
            snprintf(range, sizeof range, "an integer %ld..%ld", ints[i].min, ints[i].max);
            return bad(err, errlen, DKEYS[k], v, range);
        }
        memcpy((char *)d + ints[i].off, &x, sizeof x);
        return MTR_OK;
    }
    return MTR_E_CONFIG;
}

static int set_map_key(map_entry *m, int k, const char *v, char *err, size_t errlen)
{
    mtr_field *fields[] = {&m->m.power, &m->m.import, &m->m.export, &m->m.soc};
    char why[200];
    int x;
    switch (k) {
    case M_POWER:
    case M_IMPORT:
    case M_EXPORT:
    case M_SOC:
        if (parse_field(v, fields[k], why, sizeof why)) {
            say(err, errlen, "bad register for %s: %s", MKEYS[k], why);
            return MTR_E_CONFIG;
        }
        return MTR_OK;
    case M_SIGN:
        return parse_sign(v, &m->m.export_positive)
                   ? bad(err, errlen, MKEYS[k], v, "import_positive or export_positive")
                   : MTR_OK;
    case M_MAX_REGS:
        if (parse_int(v, 2, MTR_READ_MAX, &x))
            return bad(err, errlen, MKEYS[k], v, "an integer 2..125");
        m->m.max_regs = (uint16_t)x;
        return MTR_OK;
    case M_MAKE:
    case M_MODEL: {
        char *dst = k == M_MAKE ? m->m.make : m->m.model;
        if (strlen(v) >= MTR_TEXT_MAX)
            return bad(err, errlen, MKEYS[k], v, "at most 63 characters");
        snprintf(dst, MTR_TEXT_MAX, "%s", v);
        return MTR_OK;
    }
    default:
        return MTR_E_CONFIG;
    }
}

static int key_index(const char *const *keys, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i], key))
            return i;
    return -1;
}

/* "meter x" -> kind "meter", name "x". Returns 1 if the section is ours. */
static int split_section(const char *section, const char *kind, const char **name)
{
    size_t n = strlen(kind);
    if (strncmp(section, kind, n) != 0 || (section[n] != ' ' && section[n] != '\t'))
        return 0;
    *name = section + n + strspn(section + n, " \t");
    return 1;
}

/* The index of key in a [kind name] section's key table, or -1 with a message when the table
 * has no such key or the section already gave it (lines[k] is where, 0 when not yet). */
static int section_key(const char *const *keys, int n_keys, const int *lines, const char *kind,
                       const char *name, const char *key, char *err, size_t errlen)
{
    int k = key_index(keys, n_keys, key);
    if (k < 0) {
        say(err, errlen, "unknown key '%s' in [%s %s]", key, kind, name);
        return -1;
    }
    if (lines[k]) {
        say(err, errlen, "duplicate key '%s' in [%s %s] (first at line %d)", key, kind, name,
            lines[k]);
        return -1;
    }
    return k;
}

int mtr_config_handle(mtr_config *cfg, const char *section, const char *key, const char *value,
                      int line, char *err, size_t errlen)
{
    const char *name;
    if (!cfg || !section)
        return MTR_E_INVAL;
    if (split_section(section, "meter", &name)) {
        dev_entry *e;
        int rc = get_dev(cfg, name, line, &e, err, errlen);
        if (rc || !key)
            return rc;
        int k = section_key(DKEYS, N_DKEYS, e->line, "meter", name, key, err, errlen);
        if (k < 0)
            return MTR_E_CONFIG;
        rc = set_dev_key(e, k, value ? value : "", err, errlen);
        if (rc == MTR_OK)
            e->line[k] = line;
        return rc;
    }
    if (split_section(section, "map", &name)) {
        map_entry *m;
        int rc = get_map(cfg, name, line, &m, err, errlen);
        if (rc || !key)
            return rc;
        int k = section_key(MKEYS, N_MKEYS, m->line, "map", name, key, err, errlen);
        if (k < 0)
            return MTR_E_CONFIG;
        rc = set_map_key(m, k, value ? value : "", err, errlen);
        if (rc == MTR_OK)
            m->line[k] = line;
        return rc;
    }
    if (!strcmp(section, "meter") || !strcmp(section, "map")) {
        say(err, errlen, "[%s] needs a name: [%s NAME]", section, section);
        return MTR_E_CONFIG;
    }
    return MTR_CFG_NOT_MINE;
}

/* ---- cross-section checks ---- */

typedef struct {
    mtr_config *cfg;
    char *err;
    size_t errlen;
} fin_ctx;

static int fail_at(fin_ctx *f, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(fin_ctx *f, int line, const char *fmt, ...)
{
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    say(f->err, f->errlen, "%s:%d: %s", f->cfg->source ? f->cfg->source : "config", line, m);
    return MTR_E_CONFIG;
}

static int line_of(const dev_entry *e, int k)
{
    return e->line[k] ? e->line[k] : e->d.line;
}

static int check_map(fin_ctx *f, map_entry *m)
{
    mtr_plan plan;
    if (!m->m.power.present)
        return fail_at(f, m->header_line, "[map %s] needs power = ...", m->m.name);
    if (!m->m.import.present && !m->m.export.present)
        return fail_at(f, m->header_line, "[map %s] needs import = ... or export = ...",
                       m->m.name);
    if (mtr_map_plan(&m->m, &plan) != MTR_OK)
        return fail_at(f, m->header_line, "[map %s] needs more than %d block reads", m->m.name,
                       MTR_PLAN_MAX);
    return MTR_OK;
}

/* Devices on one serial port share its line settings. */
static int check_serial(fin_ctx *f, const dev_entry *a, const dev_entry *b)
{
    const mtr_device_config *x = &a->d, *y = &b->d;
    if (x->transport != MTR_RTU || y->transport != MTR_RTU || strcmp(x->device, y->device))
        return MTR_OK;
    if (x->baud != y->baud || x->parity != y->parity || x->data_bits != y->data_bits ||
        x->stop_bits != y->stop_bits)
        return fail_at(f, line_of(b, K_BAUD),
                       "[meter %s] shares %s with [meter %s] (line %d) but not its baud, parity "
                       "and bits",
                       y->id, y->device, x->id, x->line);
    if (x->unit == y->unit)
        return fail_at(f, line_of(b, K_UNIT), "[meter %s] has the same unit %d on %s as [meter %s]",
                       y->id, y->unit, y->device, x->id);
    return MTR_OK;
}

static int check_dev(fin_ctx *f, dev_entry *e)
{
    mtr_device_config *d = &e->d;
    if (!e->line[K_PROFILE])
        return fail_at(f, d->line, "[meter %s] needs a profile", d->id);
    if (d->profile == MTR_PROFILE_MAP) {
        map_entry *m = find_map(f->cfg, e->map_name);
        if (!m)
            return fail_at(f, e->line[K_PROFILE], "[meter %s]: no [map %s] in the file", d->id,
                           e->map_name);
        d->map = &m->m;
    }
    if (d->transport == MTR_TCP && !e->line[K_HOST])
        return fail_at(f, d->line, "[meter %s] (tcp) needs a host", d->id);
    if (d->transport == MTR_RTU && !e->line[K_DEVICE])
        return fail_at(f, d->line, "[meter %s] (rtu) needs a device (serial port)", d->id);
    if (d->transport == MTR_RTU && (d->unit < 1 || d->unit > 247))
        return fail_at(f, line_of(e, K_UNIT), "[meter %s]: an RTU unit id is 1..247", d->id);
    if (d->phases == 0)
        d->phases = d->profile == MTR_PROFILE_SDM120 ? 1 : 3;
    return MTR_OK;
}

int mtr_config_finish(mtr_config *cfg, char *err, size_t errlen)
{
    fin_ctx f = {cfg, err, errlen};
    int rc = MTR_OK;
    for (size_t i = 0; rc == MTR_OK && i < cfg->n_maps; i++)
        rc = check_map(&f, cfg->maps[i]);
    for (size_t i = 0; rc == MTR_OK && i < cfg->n_devs; i++)
        rc = check_dev(&f, &cfg->devs[i]);
    /* O(n^2) over at most MTR_MAX_DEVICES, only for RTU devices, once at startup */
    for (size_t i = 0; rc == MTR_OK && i < cfg->n_devs; i++)
        for (size_t j = i + 1; rc == MTR_OK && j < cfg->n_devs; j++)
            rc = check_serial(&f, &cfg->devs[i], &cfg->devs[j]);
    cfg->finished = rc == MTR_OK;
    return rc;
}

size_t mtr_config_count(const mtr_config *cfg)
{
    return cfg ? cfg->n_devs : 0;
}

const mtr_device_config *mtr_config_device(const mtr_config *cfg, size_t i)
{
    return cfg && i < cfg->n_devs ? &cfg->devs[i].d : NULL;
}

const mtr_device_config *mtr_config_find(const mtr_config *cfg, const char *id)
{
    for (size_t i = 0; cfg && id && i < cfg->n_devs; i++)
        if (!strcmp(cfg->devs[i].d.id, id))
            return &cfg->devs[i].d;
    return NULL;
}

/* ---- the loader for meter-only files ---- */

#define LINE_MAX_LEN 1024

typedef struct {
    mtr_config *cfg;
    FILE *fp;
    const char *path;
    int lineno;
    int failed;
    char *err;
    size_t errlen;
} load_ctx;

static void load_fail(load_ctx *c, const char *msg)
{
    if (!c->failed)
        say(c->err, c->errlen, "%s:%d: %s", c->path, c->lineno, msg);
    c->failed = 1;
}

static int announce_section(load_ctx *c, const char *s)
{
    char name[LINE_MAX_LEN], m[LINE_MAX_LEN + 64];
    const char *e = strchr(s, ']');
    if (!e)
        return 0; /* inih reports the syntax error */
    size_t n = (size_t)(e - s);
    /* inih strips blanks around the name: do the same so both see one name */
    while (n && (s[0] == ' ' || s[0] == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    snprintf(name, sizeof name, "%.*s", (int)n, s);
    int rc = mtr_config_handle(c->cfg, name, NULL, NULL, c->lineno, m, sizeof m);
    if (rc == MTR_CFG_NOT_MINE) {
        snprintf(m, sizeof m, "unknown section [%s] (expected [meter ID] or [map NAME])", name);
        rc = MTR_E_CONFIG;
    } else if (rc == MTR_E_NOMEM) {
        snprintf(m, sizeof m, "out of memory");
    }
    if (rc)
        load_fail(c, m);
    return rc;
}

static char *read_line(char *str, int num, void *stream)
{
    load_ctx *c = stream;
    if (c->failed || !fgets(str, num, c->fp))
        return NULL;
    c->lineno++;
    size_t n = strlen(str);
    if (n == 0 || (str[n - 1] != '\n' && !feof(c->fp))) {
        load_fail(c, n + 1 < (size_t)num ? "NUL byte in the line" : "line too long");
        return NULL;
    }
    char *s = str;
    if (c->lineno == 1 && !memcmp(s, "\xEF\xBB\xBF", 3))
        s += 3;
    s += strspn(s, " \t"); /* indented keys must not become continuation lines */
    memmove(str, s, strlen(s) + 1);
    if (str[0] == '[' && announce_section(c, str + 1))
        return NULL;
    return str;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    load_ctx *c = user;
    char m[512];
    if (c->failed)
        return 0;
    if (section[0] == '\0') {
        snprintf(m, sizeof m, "key '%s' outside any section", key);
        load_fail(c, m);
        return 0;
    }
    int rc = mtr_config_handle(c->cfg, section, key, value, c->lineno, m, sizeof m);
    if (rc == MTR_E_NOMEM)
        snprintf(m, sizeof m, "out of memory");
    if (rc) {
        load_fail(c, m);
        return 0;
    }
    return 1;
}

int mtr_config_load(const char *path, mtr_config **out, char *err, size_t errlen)
{
    load_ctx c = {0};
    int rc = MTR_E_CONFIG;
    *out = NULL;
    c.cfg = mtr_config_new();
    c.path = path;
    c.err = err;
    c.errlen = errlen;
    if (!c.cfg || mtr_config_set_source(c.cfg, path)) {
        say(err, errlen, "%s: out of memory", path);
        rc = MTR_E_NOMEM;
        goto out;
    }
    c.fp = fopen(path, "r");
    if (!c.fp) {
        say(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    int line = ini_parse_stream(read_line, &c, on_key, &c);
    if (!c.failed && ferror(c.fp)) {
        say(err, errlen, "%s:%d: read error", path, c.lineno);
        goto out;
    }
    if (!c.failed && line > 0) {
        c.lineno = line;
        load_fail(&c, "syntax error: expected [section], key = value or a comment");
    }
    if (!c.failed && line < 0) {
        say(err, errlen, "%s: out of memory", path);
        rc = MTR_E_NOMEM;
        goto out;
    }
    if (c.failed)
        goto out;
    if (c.cfg->n_devs == 0) {
        say(err, errlen, "%s: no [meter ID] section", path);
        goto out;
    }
    rc = mtr_config_finish(c.cfg, err, errlen);
out:
    if (c.fp)
        fclose(c.fp);
    if (rc == MTR_OK)
        *out = c.cfg;
    else
        mtr_config_free(c.cfg);
    return rc;
}
