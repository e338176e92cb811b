/*
 * Internal: a community's grid topology as its config file gives it, the `[topology]` and
 * `[feeder NAME]` sections (docs/controller.md, "Topology"), shared by `mgx controller`, which
 * clears with it (market/include/mgx/topology.h, mkt_clear_grid), and `mgx witness`, which
 * re-clears with the same one. Homes are named by participant id here; the caller turns the
 * names of an interval's book into market numbers (ctl_topology_attach) and the kW limits into
 * Wh of its interval length (ctl_topology_nodes).
 *
 * Limits are parsed as decimal kW with at most three decimals into integer W, so no floating
 * point reaches the market.
 *
 * Threading: a ctl_topology belongs to one thread while it is loaded; once loaded it is only
 * read.
 */
#ifndef MGX_CTL_TOPOLOGY_CONFIG_H
#define MGX_CTL_TOPOLOGY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/ident.h"
#include "mgx/topology.h"

#define CTL_TOPO_NODES_MAX 1024  /* the transformer and its feeders and branches */
#define CTL_TOPO_HOMES_MAX 100000
#define CTL_TOPO_NO_LIMIT (-1)   /* a limit that is not given */

/* One node: node 0 is the transformer ("transformer"), the others are [feeder NAME] sections in
 * file order, each after its parent. */
typedef struct {
    char name[CTL_ID_MAX + 1];
    uint32_t parent;  /* MKT_NO_PARENT for the transformer */
    int64_t import_w; /* CTL_TOPO_NO_LIMIT or 0 .. 10^9 W */
    int64_t export_w;
    int line; /* of its section header, for messages */
} ctl_topo_node;

typedef struct {
    char participant[CTL_ID_MAX + 1];
    uint32_t node;
} ctl_topo_home;

/* Zeroed: no topology (the copper plate). The arrays are the struct's own (malloc'd), freed by
 * ctl_topology_clear. */
typedef struct {
    int on;   /* a [topology] or [feeder] section was given */
    int line; /* of the [topology] header, 0 if absent */
    int64_t level_fee_uc_per_kwh;
    ctl_topo_node *nodes; /* n_nodes >= 1 when on */
    size_t n_nodes, cap_nodes;
    ctl_topo_home *homes; /* ascending by participant after the load */
    size_t n_homes, cap_homes;
    uint64_t seen; /* [topology] keys given */
    uint64_t seen_node; /* the current [feeder]'s keys given */
} ctl_topology;

/* Registers the [topology] and [feeder NAME] handlers on l, filling *t (which the caller has
 * zeroed and which must outlive the load). CFG_OK or CFG_E_NOMEM. */
int ctl_topology_add(cfg_loader *l, ctl_topology *t);

/* Frees t's arrays and zeroes it. NULL is fine. */
void ctl_topology_clear(ctl_topology *t);

/* Loads only the [topology] and [feeder] sections of path (every other section is skipped
 * unread): what a witness takes from the community's config. CFG_OK or CFG_E_* with
 * "FILE:LINE: reason" in err; on failure t is cleared. */
int ctl_topology_load(const char *path, ctl_topology *t, char *err, size_t errlen);

/* The node a participant is attached to; 0 (the transformer) for one that is not listed. */
uint32_t ctl_topology_node_of(const ctl_topology *t, const char *participant);

/* The market's nodes for an interval of interval_s seconds, into out[0..t->n_nodes): limits as
 * floor(W * interval_s / 3600) Wh (mkt_cap_wh_from_w), MKT_CAP_UNLIMITED where none is given.
 * 0, or -1 for a limit that does not fit. */
int ctl_topology_nodes(const ctl_topology *t, int64_t interval_s, mkt_node *out);

/* Clears book[0..n) on g (mkt_clear_grid) within t's limits for an interval of interval_s
 * seconds: names[i] is book[i]'s participant, which attaches it to its feeder (by its market
 * number, book[i].participant). A MKT_* code: MKT_E_NOMEM, MKT_E_TOPOLOGY for a limit that does
 * not fit an interval, or mkt_clear_grid's (at as there). The result is read from g. */
int ctl_topology_clear_book(mkt_grid_clearing *g, const ctl_topology *t, int64_t interval_s,
                            const mkt_params *p, const mkt_order *book, const char *const *names,
                            size_t n, mkt_error_at *at);

#endif
