/*
 * The config sections every mgx daemon shares ([bus], [outbox], [homeassistant]), as section
 * handlers for the common config loader (common/config.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "bus/bus_config.h"

#include "common/errbuf.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- [bus] ---- */

static const char *const BUS_KEYS[] = {"host",     "port",          "community", "client_id",
                                       "username", "password_file", "tls_ca",    "tls_cert",
                                       "tls_key",  "keepalive_s",   "backoff_min_ms",
                                       "backoff_max_ms", NULL};

/* The names mgx agent's own [bus] used before it shared this one: named in the error, so an
 * old agent config is fixed in a minute rather than puzzled over. */
static const char *const BUS_RENAMED[][2] = {
    {"ca_file", "tls_ca"}, {"cert_file", "tls_cert"}, {"key_file", "tls_key"}};

int cfg_bus_read_password(cfg_bus *b, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return ctl_fail(CFG_E_BAD, err, errlen, "password_file: %s: %s", path, strerror(errno));
    /* A password others can read is a password others have; one they can write lets them
     * choose what this daemon sends to the broker. Either is refused, for every daemon. */
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ctl_fail(CFG_E_BAD, err, errlen, "password_file: %s is not a regular file", path);
    }
    if (st.st_mode & 0077) {
        fclose(f);
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "password_file: %s is open to other users (mode %04o); chmod 600 it", path,
                        (unsigned)(st.st_mode & 07777));
    }
    if (sodium_init() < 0) {
        fclose(f);
        return CFG_E_NOMEM;
    }
    cfg_bus_clear(b);
    b->password = sodium_malloc(256);
    if (!b->password) {
        fclose(f);
        return CFG_E_NOMEM;
    }
    int rc = CFG_OK;
    if (!fgets(b->password, 256, f)) {
        rc = ctl_fail(CFG_E_BAD, err, errlen, "password_file: %s is empty", path);
    } else {
        b->password[strcspn(b->password, "\r\n")] = '\0';
        if (!b->password[0])
            rc = ctl_fail(CFG_E_BAD, err, errlen, "password_file: %s starts with an empty line",
                          path);
    }
    fclose(f);
    if (rc != CFG_OK)
        cfg_bus_clear(b);
    return rc;
}

static int bus_key(void *ctx, const char *section, const char *key, const char *value, int line,
                   char *err, size_t errlen)
{
    cfg_bus *b = ctx;
    if (strcmp(section, "bus") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (b->line)
            return ctl_fail(CFG_E_BAD, err, errlen, "[bus] given twice (first at line %d)",
                            b->line);
        b->line = line;
        return CFG_OK;
    }
    int k = cfg_key_index(BUS_KEYS, key);
    if (k < 0) {
        for (size_t i = 0; i < sizeof BUS_RENAMED / sizeof BUS_RENAMED[0]; i++)
            if (strcmp(key, BUS_RENAMED[i][0]) == 0)
                return ctl_fail(CFG_E_BAD, err, errlen,
                                "unknown key '%s' in [bus]: every mgx daemon's [bus] calls it %s",
                                key, BUS_RENAMED[i][1]);
        return CFG_NOT_MINE;
    }
    if (cfg_once(&b->seen, (unsigned)k, key, err, errlen))
        return CFG_E_BAD;
    int64_t v;
    char path[CFG_PATH_MAX];
    switch (k) {
    case 0: return cfg_parse_str(key, value, b->host, sizeof b->host, err, errlen);
    case 1:
        if (cfg_parse_int(key, value, 1, 65535, &v, err, errlen))
            return CFG_E_BAD;
        b->port = (int)v;
        return CFG_OK;
    case 2: return cfg_parse_id(key, value, b->community, err, errlen);
    case 3: return cfg_parse_id(key, value, b->client_id, err, errlen);
    case 4: return cfg_parse_str(key, value, b->username, sizeof b->username, err, errlen);
    case 5:
        if (cfg_path(b->loader, value, path, sizeof path))
            return ctl_fail(CFG_E_BAD, err, errlen, "%s: bad path", key);
        snprintf(b->password_file, sizeof b->password_file, "%s", path);
        return cfg_bus_read_password(b, path, err, errlen);
    case 6:
    case 7:
    case 8: {
        char *dst = k == 6 ? b->tls_ca : k == 7 ? b->tls_cert : b->tls_key;
        if (cfg_path(b->loader, value, dst, CFG_PATH_MAX))
            return ctl_fail(CFG_E_BAD, err, errlen, "%s: bad path", key);
        if (access(dst, R_OK) != 0)
            return ctl_fail(CFG_E_BAD, err, errlen, "%s: %s: %s", key, dst, strerror(errno));
        return CFG_OK;
    }
    case 9:
        if (cfg_parse_int(key, value, 5, 3600, &v, err, errlen))
            return CFG_E_BAD;
        b->keepalive_s = (int)v;
        return CFG_OK;
    default:
        if (cfg_parse_int(key, value, 10, 3600000, &v, err, errlen))
            return CFG_E_BAD;
        *(k == 10 ? &b->backoff_min_ms : &b->backoff_max_ms) = (int)v;
        return CFG_OK;
    }
}

static int bus_finish(void *ctx, const char *path, char *err, size_t errlen)
{
    cfg_bus *b = ctx;
    if (!b->line && b->optional)
        return CFG_OK;
    if (!b->line)
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: no [bus] section (community is required)",
                        path);
    if (!b->community[0])
        return ctl_fail(CFG_E_BAD, err, errlen, "%s:%d: [bus] needs community = NAME", path,
                        b->line);
    if ((b->tls_cert[0] != 0) != (b->tls_key[0] != 0))
        return ctl_fail(CFG_E_BAD, err, errlen, "%s:%d: [bus] tls_cert and tls_key go together",
                        path, b->line);
    if (b->tls_cert[0] && !b->tls_ca[0])
        return ctl_fail(CFG_E_BAD, err, errlen, "%s:%d: [bus] a client certificate needs tls_ca",
                        path, b->line);
    if (b->password && !b->username[0])
        return ctl_fail(CFG_E_BAD, err, errlen, "%s:%d: [bus] password_file needs username", path,
                        b->line);
    if (b->backoff_min_ms && b->backoff_max_ms && b->backoff_max_ms < b->backoff_min_ms)
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s:%d: [bus] backoff_max_ms is below backoff_min_ms", path, b->line);
    return CFG_OK;
}

int cfg_bus_add(cfg_loader *l, cfg_bus *b)
{
    memset(b, 0, sizeof *b);
    snprintf(b->host, sizeof b->host, "127.0.0.1");
    b->loader = l;
    return cfg_loader_add(l, bus_key, bus_finish, b);
}

void cfg_bus_config(const cfg_bus *b, bus_config *out)
{
    memset(out, 0, sizeof *out);
    out->host = b->host;
    out->port = b->port;
    out->client_id = b->client_id;
    out->community = b->community;
    out->username = b->username[0] ? b->username : NULL;
    out->password = b->password;
    out->tls_ca = b->tls_ca[0] ? b->tls_ca : NULL;
    out->tls_cert = b->tls_cert[0] ? b->tls_cert : NULL;
    out->tls_key = b->tls_key[0] ? b->tls_key : NULL;
    out->keepalive_s = b->keepalive_s;
    out->backoff_min_ms = b->backoff_min_ms;
    out->backoff_max_ms = b->backoff_max_ms;
}

void cfg_bus_clear(cfg_bus *b)
{
    if (b && b->password) {
        sodium_free(b->password); /* wipes */
        b->password = NULL;
    }
}

/* ---- [outbox] ---- */

static const char *const OUTBOX_KEYS[] = {"path", "max_messages", "full_policy", "window", NULL};

static int outbox_key(void *ctx, const char *section, const char *key, const char *value,
                      int line, char *err, size_t errlen)
{
    cfg_outbox *o = ctx;
    if (strcmp(section, "outbox") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (o->line)
            return ctl_fail(CFG_E_BAD, err, errlen, "[outbox] given twice (first at line %d)",
                            o->line);
        o->line = line;
        return CFG_OK;
    }
    int k = cfg_key_index(OUTBOX_KEYS, key);
    if (k < 0)
        return CFG_NOT_MINE;
    if (cfg_once(&o->seen, (unsigned)k, key, err, errlen))
        return CFG_E_BAD;
    int64_t v;
    switch (k) {
    case 0:
        if (cfg_path(o->loader, value, o->path, sizeof o->path))
            return ctl_fail(CFG_E_BAD, err, errlen, "%s: bad path", key);
        return CFG_OK;
    case 1:
        if (cfg_parse_int(key, value, 1, 100000000, &v, err, errlen))
            return CFG_E_BAD;
        o->max_messages = (uint64_t)v;
        return CFG_OK;
    case 2:
        if (strcmp(value, "drop_oldest") == 0)
            o->policy = OUTBOX_DROP_OLDEST;
        else if (strcmp(value, "refuse_newest") == 0)
            o->policy = OUTBOX_REFUSE_NEWEST;
        else
            return ctl_fail(CFG_E_BAD, err, errlen, "%s: '%s' is not drop_oldest or refuse_newest",
                            key, value);
        return CFG_OK;
    default:
        if (cfg_parse_int(key, value, 1, 1024, &v, err, errlen))
            return CFG_E_BAD;
        o->window = (unsigned)v;
        return CFG_OK;
    }
}

int cfg_outbox_add(cfg_loader *l, cfg_outbox *o)
{
    memset(o, 0, sizeof *o);
    o->max_messages = 100000;
    o->window = 16;
    o->loader = l;
    return cfg_loader_add(l, outbox_key, NULL, o);
}

/* ---- [homeassistant] ---- */

static const char *const HA_KEYS[] = {"enabled", "prefix", NULL};

static int ha_key(void *ctx, const char *section, const char *key, const char *value, int line,
                  char *err, size_t errlen)
{
    cfg_ha *h = ctx;
    if (strcmp(section, "homeassistant") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (h->line)
            return ctl_fail(CFG_E_BAD, err, errlen,
                            "[homeassistant] given twice (first at line %d)", h->line);
        h->line = line;
        return CFG_OK;
    }
    int k = cfg_key_index(HA_KEYS, key);
    if (k < 0)
        return CFG_NOT_MINE;
    if (cfg_once(&h->seen, (unsigned)k, key, err, errlen))
        return CFG_E_BAD;
    if (k == 0)
        return cfg_parse_bool(key, value, &h->enabled, err, errlen);
    /* the prefix is one or more topic levels of ids: homeassistant, or ha/site1 */
    if (cfg_parse_str(key, value, h->prefix, sizeof h->prefix, err, errlen))
        return CFG_E_BAD;
    char copy[128], *save = NULL;
    snprintf(copy, sizeof copy, "%s", h->prefix);
    for (char *lvl = strtok_r(copy, "/", &save); lvl; lvl = strtok_r(NULL, "/", &save))
        if (!bus_id_valid(lvl))
            return ctl_fail(CFG_E_BAD, err, errlen,
                            "prefix: '%s' is not a topic of A-Z a-z 0-9 _ - levels", value);
    if (h->prefix[0] == '/' || h->prefix[strlen(h->prefix) - 1] == '/' || strstr(h->prefix, "//"))
        return ctl_fail(CFG_E_BAD, err, errlen, "prefix: '%s' has an empty topic level", value);
    return CFG_OK;
}

int cfg_ha_add(cfg_loader *l, cfg_ha *h)
{
    memset(h, 0, sizeof *h);
    snprintf(h->prefix, sizeof h->prefix, "homeassistant");
    return cfg_loader_add(l, ha_key, NULL, h);
}
