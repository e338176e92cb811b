/*
 * The [witness] section of `mgx witness CONFIG` (witness.h): who the witness is, which ledger
 * it follows and with which key, where it keeps its state. Relative paths are taken from the
 * config file's folder.
 */
#include "witness/witness.h"

#include "common/errbuf.h"

#include <stdio.h>
#include <string.h>

enum {
    K_NAME,
    K_KEY_FILE,
    K_LEDGER,
    K_LOG_KEY_FILE,
    K_STATE,
    K_OUT,
    K_POLL,
    K_RECLEAR,
    K_GAP,
    K_POWER,
    K_TOPOLOGY,
    K_COUNT
};
static const char *const KEYS[K_COUNT + 1] = {
    "name",    "key_file",          "ledger",           "log_key_file", "state", "out", "poll_s",
    "reclear", "reading_max_gap_s", "meter_max_power_w", "topology", NULL};

typedef struct {
    ctl_witness_config *c;
    cfg_loader *l;
} loading;

static int path_value(loading *x, char *dst, const char *key, const char *v, char *err, size_t len)
{
    if (!*v || cfg_path(x->l, v, dst, CFG_PATH_MAX))
        return ctl_fail(CFG_E_BAD, err, len, "%s: empty or too long a path", key);
    return CFG_OK;
}

static int witness_key(void *ctx, const char *section, const char *key, const char *value, int line,
                       char *err, size_t len)
{
    loading *x = ctx;
    ctl_witness_config *c = x->c;
    if (strcmp(section, "witness") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (c->line)
            return ctl_fail(CFG_E_BAD, err, len, "[witness] given twice (first at line %d)",
                            c->line);
        c->line = line;
        return CFG_OK;
    }
    int k = cfg_key_index(KEYS, key);
    if (k < 0)
        return CFG_NOT_MINE;
    if (cfg_once(&c->seen, (unsigned)k, key, err, len))
        return CFG_E_BAD;
    switch (k) {
    case K_NAME:
        if (!stl_cosig_name_valid(value))
            return ctl_fail(CFG_E_BAD, err, len,
                            "name: 1-%d printable characters without spaces or '+' (a URL "
                            "without its scheme, e.g. witness.example.org/alice)",
                            STL_COSIG_NAME_MAX);
        snprintf(c->name, sizeof c->name, "%s", value);
        return CFG_OK;
    case K_KEY_FILE:
        return path_value(x, c->key_file, key, value, err, len);
    case K_LEDGER:
        return path_value(x, c->ledger, key, value, err, len);
    case K_LOG_KEY_FILE:
        return path_value(x, c->log_key_file, key, value, err, len);
    case K_STATE:
        return path_value(x, c->state, key, value, err, len);
    case K_OUT:
        return path_value(x, c->out, key, value, err, len);
    case K_RECLEAR: /* the community's mechanism, or off */
        if (strcmp(value, "off") == 0) {
            c->reclear = 0;
            return CFG_OK;
        }
        if (mkt_mechanism_parse(value, &c->mechanism) != MKT_OK)
            return ctl_fail(CFG_E_BAD, err, len,
                            "reclear: off, or the community's mechanism (pay-as-clear or "
                            "pay-as-bid)");
        c->reclear = 1;
        return CFG_OK;
    case K_GAP: /* the controller's own keys, ranges and defaults (controller_config.c) */
        if (cfg_parse_int(key, value, 1, 86400, &c->meter_rules.max_gap_ms, err, len) != CFG_OK)
            return CFG_E_BAD;
        c->meter_rules.max_gap_ms *= 1000;
        return CFG_OK;
    case K_POWER:
        return cfg_parse_int(key, value, 0, INT64_C(1000000000), &c->meter_rules.max_power_w, err,
                             len);
    case K_TOPOLOGY: /* the community's config: its [topology] and [feeder] sections */
        return path_value(x, c->topology_path, key, value, err, len);
    default:
        return cfg_parse_int(key, value, 1, 86400, &c->poll_s, err, len);
    }
}

static int witness_finish(void *ctx, const char *path, char *err, size_t len)
{
    ctl_witness_config *c = ((loading *)ctx)->c;
    if (!c->line)
        return ctl_fail(CFG_E_BAD, err, len, "%s: no [witness] section", path);
    for (int k = 0; k < K_POLL; k++)
        if (!(c->seen & ((uint64_t)1 << k)))
            return ctl_fail(CFG_E_BAD, err, len, "%s:%d: [witness] needs %s", path, c->line,
                            KEYS[k]);
    if (strcmp(c->state, c->out) == 0)
        return ctl_fail(CFG_E_BAD, err, len, "%s:%d: [witness] state and out must differ", path,
                        c->line);
    return CFG_OK;
}

int ctl_witness_config_load(const char *path, ctl_witness_config *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->poll_s = 10;
    c->meter_rules = (stm_rules){300 * 1000, 100000};
    cfg_loader *l = cfg_loader_new();
    if (!l)
        return ctl_fail(CFG_E_NOMEM, err, errlen, "out of memory");
    loading x = {c, l};
    int rc = cfg_loader_add(l, witness_key, witness_finish, &x);
    if (rc == CFG_OK)
        rc = cfg_bus_add(l, &c->bus);
    c->bus.optional = true; /* publishing on the bus is optional */
    if (rc == CFG_OK)
        rc = cfg_load(l, path, err, errlen);
    cfg_loader_free(l);
    l = NULL;
    if (rc == CFG_OK && c->topology_path[0]) {
        char why[512];
        if ((rc = ctl_topology_load(c->topology_path, &c->topology, why, sizeof why)) != CFG_OK)
            ctl_errf(err, errlen, "%s:%d: topology: %s", path, c->line, why);
    }
    if (rc == CFG_OK && c->bus.line && !c->bus.client_id[0])
        snprintf(c->bus.client_id, sizeof c->bus.client_id, "witness");
    if (rc != CFG_OK)
        ctl_witness_config_clear(c);
    return rc;
}

void ctl_witness_config_clear(ctl_witness_config *c)
{
    if (c) {
        cfg_bus_clear(&c->bus);
        ctl_topology_clear(&c->topology);
    }
}

int ctl_witness_topic(const char *community, const char *client_id, char *buf, size_t len)
{
    int n = snprintf(buf, len, "mgx/v1/%s/ledger/cosigned/%s", community, client_id);
    return n > 0 && (size_t)n < len ? CTL_WITNESS_OK : CTL_WITNESS_E_IO;
}
