/*
 * The [topology] and [feeder NAME] sections of a community's config (topology_config.h): the
 * feeder tree, its limits in kW, the homes on each feeder and the fee per level.
 */
#define _POSIX_C_SOURCE 200809L
#include "common/topology_config.h"

#include "common/errbuf.h"
#include "common/grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRANSFORMER "transformer"
#define LIMIT_MAX_W INT64_C(1000000000) /* 1 GW: far above any feeder */

enum { F_PARENT, F_EXPORT_KW, F_IMPORT_KW, F_HOMES, F_COUNT };
static const char *const FEEDER_KEYS[F_COUNT + 1] = {"parent", "export_kw", "import_kw", "homes",
                                                     NULL};

/* The transformer, node 0, the first time a section of the topology is seen. */
static int start(ctl_topology *t, char *err, size_t errlen)
{
    if (t->on)
        return CFG_OK;
    if (ctl_grow((void **)&t->nodes, &t->cap_nodes, 0, sizeof *t->nodes, CTL_TOPO_NODES_MAX))
        return ctl_fail(CFG_E_NOMEM, err, errlen, "out of memory");
    memset(&t->nodes[0], 0, sizeof t->nodes[0]);
    snprintf(t->nodes[0].name, sizeof t->nodes[0].name, "%s", TRANSFORMER);
    t->nodes[0].parent = MKT_NO_PARENT;
    t->nodes[0].import_w = t->nodes[0].export_w = CTL_TOPO_NO_LIMIT;
    t->n_nodes = 1;
    t->on = 1;
    return CFG_OK;
}

static int find_node(const ctl_topology *t, const char *name)
{
    for (size_t i = 0; i < t->n_nodes; i++)
        if (strcmp(t->nodes[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* A limit in kW with at most three decimals, as integer W, or -1 for none. No floating point:
 * the digits are read as they are. */
static int parse_kw(const char *key, const char *value, int64_t *w, char *err, size_t errlen)
{
    if (strcmp(value, "-1") == 0 || strcmp(value, "none") == 0) {
        *w = CTL_TOPO_NO_LIMIT;
        return CFG_OK;
    }
    int64_t v = 0;
    int decimals = -1, digits = 0;
    for (const char *p = value; *p; p++) {
        if (*p == '.' && decimals < 0) {
            decimals = 0;
            continue;
        }
        if (*p < '0' || *p > '9' || decimals == 3 || v > LIMIT_MAX_W)
            goto bad;
        v = v * 10 + (*p - '0');
        digits++;
        if (decimals >= 0)
            decimals++;
    }
    if (!digits)
        goto bad;
    for (int d = decimals < 0 ? 0 : decimals; d < 3; d++)
        v *= 10;
    if (v > LIMIT_MAX_W)
        goto bad;
    *w = v;
    return CFG_OK;
bad:
    return ctl_fail(CFG_E_BAD, err, errlen,
                    "%s: '%s' must be kW from 0 to 1000000 with at most 3 decimals, or -1 for "
                    "no limit",
                    key, value);
}

static int add_homes(ctl_topology *t, const char *value, char *err, size_t errlen)
{
    char list[4096];
    if (snprintf(list, sizeof list, "%s", value) >= (int)sizeof list)
        return ctl_fail(CFG_E_BAD, err, errlen, "homes: too long (give the key again)");
    char *save = NULL;
    for (char *h = strtok_r(list, " ,\t", &save); h; h = strtok_r(NULL, " ,\t", &save)) {
        if (!ctl_id_valid(h))
            return ctl_fail(CFG_E_BAD, err, errlen, "homes: '%s' must be %s", h, CTL_ID_RULE);
        if (ctl_grow((void **)&t->homes, &t->cap_homes, t->n_homes, sizeof *t->homes,
                     CTL_TOPO_HOMES_MAX))
            return ctl_fail(CFG_E_BAD, err, errlen, "homes: at most %d", CTL_TOPO_HOMES_MAX);
        ctl_topo_home *e = &t->homes[t->n_homes++];
        snprintf(e->participant, sizeof e->participant, "%s", h);
        e->node = (uint32_t)(t->n_nodes - 1);
    }
    return CFG_OK;
}

static int feeder_key(ctl_topology *t, const char *name, const char *key, const char *value,
                      int line, char *err, size_t errlen)
{
    int rc;
    if (!key) {
        if (!ctl_id_valid(name) || strcmp(name, TRANSFORMER) == 0)
            return ctl_fail(CFG_E_BAD, err, errlen,
                            "[feeder %s]: a feeder's name must be %s, not '" TRANSFORMER "'",
                            name, CTL_ID_RULE);
        if ((rc = start(t, err, errlen)) != CFG_OK)
            return rc;
        int had = find_node(t, name);
        if (had >= 0)
            return ctl_fail(CFG_E_BAD, err, errlen, "[feeder %s] given twice (first at line %d)",
                            name, t->nodes[had].line);
        if (ctl_grow((void **)&t->nodes, &t->cap_nodes, t->n_nodes, sizeof *t->nodes,
                     CTL_TOPO_NODES_MAX))
            return ctl_fail(CFG_E_BAD, err, errlen, "at most %d feeders", CTL_TOPO_NODES_MAX - 1);
        ctl_topo_node *n = &t->nodes[t->n_nodes++];
        memset(n, 0, sizeof *n);
        snprintf(n->name, sizeof n->name, "%s", name);
        n->parent = 0;
        n->import_w = n->export_w = CTL_TOPO_NO_LIMIT;
        n->line = line;
        t->seen_node = 0;
        return CFG_OK;
    }
    ctl_topo_node *n = &t->nodes[t->n_nodes - 1];
    int k = cfg_key_index(FEEDER_KEYS, key);
    if (k < 0)
        return CFG_NOT_MINE;
    if (k != F_HOMES && cfg_once(&t->seen_node, (unsigned)k, key, err, errlen) != CFG_OK)
        return CFG_E_BAD;
    switch (k) {
    case F_PARENT: {
        int p = find_node(t, value);
        if (p < 0 || (size_t)p == t->n_nodes - 1)
            return ctl_fail(CFG_E_BAD, err, errlen,
                            "parent: '%s' is not " TRANSFORMER " or a feeder given before",
                            value);
        n->parent = (uint32_t)p;
        return CFG_OK;
    }
    case F_EXPORT_KW:
        return parse_kw(key, value, &n->export_w, err, errlen);
    case F_IMPORT_KW:
        return parse_kw(key, value, &n->import_w, err, errlen);
    default:
        return add_homes(t, value, err, errlen);
    }
}

static int topology_key(void *ctx, const char *section, const char *key, const char *value,
                        int line, char *err, size_t errlen)
{
    ctl_topology *t = ctx;
    if (strncmp(section, "feeder ", 7) == 0)
        return feeder_key(t, section + 7, key, value, line, err, errlen);
    if (strcmp(section, "topology") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (t->line)
            return ctl_fail(CFG_E_BAD, err, errlen, "[topology] given twice (first at line %d)",
                            t->line);
        t->line = line;
        return start(t, err, errlen);
    }
    if (strcmp(key, "level_fee_uc_per_kwh") != 0)
        return CFG_NOT_MINE;
    if (cfg_once(&t->seen, 0, key, err, errlen) != CFG_OK)
        return CFG_E_BAD;
    return cfg_parse_int(key, value, 0, MKT_PRICE_MAX_UC_PER_KWH, &t->level_fee_uc_per_kwh, err,
                         errlen);
}

static int home_cmp(const void *a, const void *b)
{
    return strcmp(((const ctl_topo_home *)a)->participant, ((const ctl_topo_home *)b)->participant);
}

static int topology_finish(void *ctx, const char *path, char *err, size_t errlen)
{
    ctl_topology *t = ctx;
    if (!t->on)
        return CFG_OK;
    if (t->n_homes > 1)
        qsort(t->homes, t->n_homes, sizeof *t->homes, home_cmp);
    for (size_t i = 1; i < t->n_homes; i++)
        if (strcmp(t->homes[i].participant, t->homes[i - 1].participant) == 0)
            return ctl_fail(CFG_E_BAD, err, errlen,
                            "%s:%d: home %s is on two feeders ([feeder %s] and [feeder %s])",
                            path, t->nodes[t->homes[i].node].line, t->homes[i].participant,
                            t->nodes[t->homes[i - 1].node].name, t->nodes[t->homes[i].node].name);
    /* the fee of the longest path must stay a price (mkt_topology_check): the diameter, from
     * each node's two longest paths down (children come after their parents) */
    uint32_t *down = calloc(t->n_nodes, 2 * sizeof *down), diameter = 0;
    if (!down)
        return ctl_fail(CFG_E_NOMEM, err, errlen, "out of memory");
    for (size_t i = t->n_nodes; i-- > 0;) {
        if (down[2 * i] + down[2 * i + 1] > diameter)
            diameter = down[2 * i] + down[2 * i + 1];
        if (i == 0)
            break;
        uint32_t p = t->nodes[i].parent, h = down[2 * i] + 1;
        if (h > down[2 * p]) {
            down[2 * p + 1] = down[2 * p];
            down[2 * p] = h;
        } else if (h > down[2 * p + 1]) {
            down[2 * p + 1] = h;
        }
    }
    free(down);
    if ((__int128)t->level_fee_uc_per_kwh * diameter > MKT_PRICE_MAX_UC_PER_KWH)
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s:%d: level_fee_uc_per_kwh times the longest path of the tree is "
                        "above the largest price",
                        path, t->line);
    return CFG_OK;
}

int ctl_topology_add(cfg_loader *l, ctl_topology *t)
{
    return cfg_loader_add(l, topology_key, topology_finish, t);
}

void ctl_topology_clear(ctl_topology *t)
{
    if (!t)
        return;
    free(t->nodes);
    free(t->homes);
    memset(t, 0, sizeof *t);
}

/* Every section but the topology's, skipped unread (a witness reading the community's file). */
static int skip_key(void *ctx, const char *section, const char *key, const char *value, int line,
                    char *err, size_t errlen)
{
    (void)ctx, (void)section, (void)key, (void)value, (void)line, (void)err, (void)errlen;
    return CFG_OK;
}

int ctl_topology_load(const char *path, ctl_topology *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    cfg_loader *l = cfg_loader_new();
    if (!l)
        return ctl_fail(CFG_E_NOMEM, err, errlen, "out of memory");
    int rc = ctl_topology_add(l, t);
    if (rc == CFG_OK)
        rc = cfg_loader_add(l, skip_key, NULL, NULL);
    if (rc == CFG_OK)
        rc = cfg_load(l, path, err, errlen);
    cfg_loader_free(l);
    if (rc != CFG_OK)
        ctl_topology_clear(t);
    return rc;
}

uint32_t ctl_topology_node_of(const ctl_topology *t, const char *participant)
{
    if (!t || !t->n_homes)
        return 0;
    ctl_topo_home key;
    snprintf(key.participant, sizeof key.participant, "%s", participant);
    const ctl_topo_home *h = bsearch(&key, t->homes, t->n_homes, sizeof *t->homes, home_cmp);
    return h ? h->node : 0;
}

static int limit_wh(int64_t w, int64_t interval_s, int64_t *wh)
{
    if (w == CTL_TOPO_NO_LIMIT) {
        *wh = MKT_CAP_UNLIMITED;
        return 0;
    }
    return mkt_cap_wh_from_w(w, interval_s, wh) == MKT_OK ? 0 : -1;
}

int ctl_topology_nodes(const ctl_topology *t, int64_t interval_s, mkt_node *out)
{
    for (size_t i = 0; i < t->n_nodes; i++) {
        out[i].parent = t->nodes[i].parent;
        if (i == 0) {
            out[i].import_wh = out[i].export_wh = MKT_CAP_UNLIMITED;
            continue;
        }
        if (limit_wh(t->nodes[i].import_w, interval_s, &out[i].import_wh) ||
            limit_wh(t->nodes[i].export_w, interval_s, &out[i].export_wh))
            return -1;
    }
    return 0;
}

int ctl_topology_clear_book(mkt_grid_clearing *g, const ctl_topology *t, int64_t interval_s,
                            const mkt_params *p, const mkt_order *book, const char *const *names,
                            size_t n, mkt_error_at *at)
{
    mkt_node *nodes = calloc(t->n_nodes ? t->n_nodes : 1, sizeof *nodes);
    mkt_attach *attach = calloc(n ? n : 1, sizeof *attach);
    int rc = MKT_E_NOMEM;
    if (!nodes || !attach)
        goto out;
    rc = MKT_E_TOPOLOGY;
    if (ctl_topology_nodes(t, interval_s, nodes) != 0)
        goto out;
    size_t n_att = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t node = ctl_topology_node_of(t, names[i]);
        if (node)
            attach[n_att++] = (mkt_attach){book[i].participant, node};
    }
    /* the result is g's own: the tree may go once the clearing is done */
    mkt_topology topo = {nodes, t->n_nodes, attach, n_att, t->level_fee_uc_per_kwh};
    rc = mkt_clear_grid(g, p, &topo, book, n, at);
out:
    free(nodes);
    free(attach);
    return rc;
}
