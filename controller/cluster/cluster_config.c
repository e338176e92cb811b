/*
 * The [cluster] section (see cluster_config.h).
 */
#include "cluster/cluster_config.h"

#include "common/errbuf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    K_NODE_ID,
    K_NODES,
    K_DATA_DIR,
    K_ELECTION,
    K_SNAP_THRESHOLD,
    K_SNAP_TRAILING,
    K_JOIN,
    K_CATCH_UP,
    K_COUNT
};
static const char *const KEYS[K_COUNT + 1] = {
    "node_id",           "nodes", "data_dir",           "election_timeout_ms", "snapshot_threshold",
    "snapshot_trailing", "join",  "catch_up_timeout_s", NULL};

int ctl_cluster_parse_nodes(const char *value, ctl_cluster_node *nodes, size_t *n, char *err,
                            size_t errlen)
{
    *n = 0;
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*n == CTL_CLUSTER_MAX_NODES)
            return ctl_fail(CFG_E_BAD, err, errlen, "nodes: at most %d", CTL_CLUSTER_MAX_NODES);
        char *end = NULL;
        if (!isdigit((unsigned char)*p))
            return ctl_fail(CFG_E_BAD, err, errlen, "nodes: ID@HOST:PORT, comma separated");
        unsigned long long id = strtoull(p, &end, 10);
        if (id == 0 || *end != '@')
            return ctl_fail(CFG_E_BAD, err, errlen, "nodes: ID@HOST:PORT with an ID above 0");
        p = end + 1;
        size_t len = strcspn(p, ", ");
        if (len == 0 || len >= CTL_CLUSTER_ADDR_MAX || !memchr(p, ':', len))
            return ctl_fail(CFG_E_BAD, err, errlen, "nodes: node %llu: HOST:PORT", id);
        nodes[*n].id = id;
        memcpy(nodes[*n].address, p, len);
        nodes[*n].address[len] = 0;
        (*n)++;
        p += len;
    }
    if (*n == 0)
        return ctl_fail(CFG_E_BAD, err, errlen, "nodes: none given");
    return CFG_OK;
}

static int cluster_key(void *ctx, const char *section, const char *key, const char *value, int line,
                       char *err, size_t len)
{
    ctl_cluster_section *s = ctx;
    ctl_cluster_config *c = &s->cfg;
    if (strcmp(section, "cluster") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (s->line)
            return ctl_fail(CFG_E_BAD, err, len, "[cluster] given twice (first at line %d)",
                            s->line);
        s->line = line;
        return CFG_OK;
    }
    int k = cfg_key_index(KEYS, key);
    if (k < 0)
        return CFG_NOT_MINE;
    if (cfg_once(&s->seen, (unsigned)k, key, err, len))
        return CFG_E_BAD;
    int64_t v = 0;
    int rc;
    switch (k) {
    case K_NODE_ID:
        rc = cfg_parse_int(key, value, 1, INT64_MAX, &v, err, len);
        c->node_id = (uint64_t)v;
        return rc;
    case K_NODES:
        return ctl_cluster_parse_nodes(value, c->nodes, &c->n_nodes, err, len);
    case K_DATA_DIR:
        if (!*value || cfg_path(s->loader, value, c->data_dir, sizeof c->data_dir))
            return ctl_fail(CFG_E_BAD, err, len, "data_dir: empty or too long a path");
        return CFG_OK;
    case K_ELECTION:
        return cfg_parse_int(key, value, 50, 60000, &c->election_timeout_ms, err, len);
    case K_SNAP_THRESHOLD:
        return cfg_parse_int(key, value, 2, 1000000, &c->snapshot_threshold, err, len);
    case K_JOIN: {
        bool b = false;
        rc = cfg_parse_bool(key, value, &b, err, len);
        c->join = b;
        return rc;
    }
    case K_CATCH_UP:
        rc = cfg_parse_int(key, value, 1, 86400, &v, err, len);
        c->catch_up_timeout_ms = v * 1000;
        return rc;
    case K_SNAP_TRAILING:
        return cfg_parse_int(key, value, 0, 1000000, &c->snapshot_trailing, err, len);
    default:
        return CFG_NOT_MINE;
    }
}

static int cluster_finish(void *ctx, const char *path, char *err, size_t len)
{
    ctl_cluster_section *s = ctx;
    if (!s->line)
        return CFG_OK; /* one node */
    for (int k = 0; k <= K_DATA_DIR; k++)
        if (!(s->seen & ((uint64_t)1 << k)))
            return ctl_fail(CFG_E_BAD, err, len, "%s:%d: [cluster] needs %s", path, s->line,
                            KEYS[k]);
    int found = 0;
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        found |= s->cfg.nodes[i].id == s->cfg.node_id;
        for (size_t j = 0; j < i; j++)
            if (s->cfg.nodes[i].id == s->cfg.nodes[j].id)
                return ctl_fail(CFG_E_BAD, err, len, "%s:%d: [cluster] node %llu listed twice",
                                path, s->line, (unsigned long long)s->cfg.nodes[i].id);
    }
    if (!found)
        return ctl_fail(CFG_E_BAD, err, len, "%s:%d: [cluster] node_id %llu is not in nodes", path,
                        s->line, (unsigned long long)s->cfg.node_id);
    return CFG_OK;
}

int ctl_cluster_section_add(cfg_loader *l, ctl_cluster_section *s)
{
    memset(s, 0, sizeof *s);
    ctl_cluster_config_defaults(&s->cfg);
    s->loader = l;
    return cfg_loader_add(l, cluster_key, cluster_finish, s);
}
