/*
 * `mgx web`'s config file (see web_config.h).
 */
#include "web/web_config.h"

#include "common/errbuf.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const char *const KEYS[] = {"listen",     "port",     "database",     "password_file",
                                   "admin_file", "tls_cert", "tls_key",      "max_sessions",
                                   "session_ttl_s", "live_max_clients", "live_poll_ms",
                                   "live_queue_bytes", "threads", "max_connections",
                                   "alert_silent_s", "alert_lag_s", NULL};
enum { K_LISTEN, K_PORT, K_DB, K_PW, K_ADMIN, K_CERT, K_KEY, K_MAX, K_TTL, K_LIVE_MAX, K_LIVE_POLL,
       K_LIVE_QUEUE, K_THREADS, K_CONNS, K_SILENT, K_LAG };

typedef struct {
    cfg_loader *l;
    web_config *c;
} loading;

static int on_key(void *ctx, const char *section, const char *key, const char *value, int line,
                  char *err, size_t errlen)
{
    (void)line;
    loading *x = ctx;
    web_config *c = x->c;
    if (strcmp(section, "web") != 0)
        return CFG_NOT_MINE;
    if (!key)
        return CFG_OK;
    int k = cfg_key_index(KEYS, key);
    if (k < 0)
        return ctl_fail(CFG_E_BAD, err, errlen, "unknown key '%s' in [web]", key);
    if (cfg_once(&c->seen, (unsigned)k, key, err, errlen))
        return CFG_E_BAD;
    switch (k) {
    case K_LISTEN: {
        struct in_addr a;
        if (cfg_parse_str(key, value, c->listen, sizeof c->listen, err, errlen))
            return CFG_E_BAD;
        if (inet_pton(AF_INET, c->listen, &a) != 1)
            return ctl_fail(CFG_E_BAD, err, errlen, "listen: an IPv4 address, got '%s'", value);
        return CFG_OK;
    }
    case K_PORT:
        return cfg_parse_int(key, value, 0, 65535, &c->port, err, errlen);
    case K_MAX:
        return cfg_parse_int(key, value, 1, 1000000, &c->max_sessions, err, errlen);
    case K_TTL:
        return cfg_parse_int(key, value, 60, 30 * 86400, &c->session_ttl_s, err, errlen);
    case K_LIVE_MAX:
        return cfg_parse_int(key, value, 0, 100000, &c->live_max_clients, err, errlen);
    case K_LIVE_POLL:
        return cfg_parse_int(key, value, 100, 60000, &c->live_poll_ms, err, errlen);
    case K_LIVE_QUEUE:
        return cfg_parse_int(key, value, 4096, 1 << 24, &c->live_queue_bytes, err, errlen);
    case K_THREADS:
        return cfg_parse_int(key, value, 1, 256, &c->threads, err, errlen);
    case K_SILENT:
        return cfg_parse_int(key, value, 1, 365 * 86400, &c->alert_silent_s, err, errlen);
    case K_LAG:
        return cfg_parse_int(key, value, 1, 365 * 86400, &c->alert_lag_s, err, errlen);
    case K_CONNS:
        return cfg_parse_int(key, value, 16, 100000, &c->max_connections, err, errlen);
    default: {
        char *dst = k == K_DB      ? c->database
                    : k == K_PW    ? c->password_file
                    : k == K_ADMIN ? c->admin_file
                    : k == K_CERT  ? c->tls_cert
                                   : c->tls_key;
        char raw[CFG_PATH_MAX];
        if (cfg_parse_str(key, value, raw, sizeof raw, err, errlen))
            return CFG_E_BAD;
        if (cfg_path(x->l, raw, dst, CFG_PATH_MAX))
            return ctl_fail(CFG_E_BAD, err, errlen, "%s: path too long", key);
        return CFG_OK;
    }
    }
}

static int on_finish(void *ctx, const char *path, char *err, size_t errlen)
{
    web_config *c = ((loading *)ctx)->c;
    if (!(c->seen & (1u << K_DB)))
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: [web] needs database", path);
    if (!(c->seen & (1u << K_PW)) && !(c->seen & (1u << K_ADMIN)))
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s: [web] needs password_file (homes) or admin_file (coordinator)",
                        path);
    if (!!c->tls_cert[0] != !!c->tls_key[0])
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: [web] tls_cert and tls_key go together",
                        path);
    return CFG_OK;
}

int web_config_load(const char *path, web_config *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1");
    c->port = 8080;
    c->max_sessions = 1024;
    c->session_ttl_s = 43200;
    c->live_max_clients = 1024;
    c->live_poll_ms = 1000;
    c->live_queue_bytes = 65536;
    c->threads = 1;
    c->max_connections = 2048;
    c->alert_silent_s = 900;
    c->alert_lag_s = 7200;
    cfg_loader *l = cfg_loader_new();
    if (!l)
        return ctl_fail(CFG_E_NOMEM, err, errlen, "out of memory");
    loading x = {l, c};
    int rc = cfg_loader_add(l, on_key, on_finish, &x);
    if (rc == CFG_OK)
        rc = cfg_load(l, path, err, errlen);
    cfg_loader_free(l);
    return rc;
}
