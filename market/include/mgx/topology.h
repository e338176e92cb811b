/*
 * mgx market: grid-aware clearing. A community's feeders and transformer as a radial tree whose
 * edges limit how much locally traded energy may cross them in an interval, and a clearing
 * entry point, mkt_clear_grid, that respects every limit.
 *
 * Where no limit binds the result is mkt_clear's, byte for byte. Where one binds, the market
 * splits into zones with their own prices (the constrained side of an edge gets its own
 * price) and the result says which edges bind. The rules (what is maximised, how zone prices
 * are chosen, ties and rounding, who gets the congestion rent) are in docs/market-rules.md,
 * "Grid-aware clearing". Like the rest of the market library this is a pure core: no I/O, no
 * clock, no globals, integer Wh and uc only.
 *
 * Thread safety: a mkt_grid_clearing is not shared between threads; distinct objects are
 * independent.
 */
#ifndef MGX_TOPOLOGY_H
#define MGX_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/market.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MKT_NO_PARENT UINT32_MAX
#define MKT_CAP_UNLIMITED INT64_MAX

/* One node of the tree: the transformer (node 0, the root, where the grid connects), a feeder,
 * a branch of a feeder, or a single home's service line; any depth. A node's edge is the one to
 * its parent; its limits are per interval, on the net energy of local trades crossing it:
 * export_wh out of the node's subtree (towards the parent), import_wh into it. The root has no
 * edge (its limits are ignored): what the grid sells or buys does not go through the market. */
typedef struct {
    uint32_t parent;   /* a smaller node index; MKT_NO_PARENT for node 0 only */
    int64_t import_wh; /* >= 0, MKT_CAP_UNLIMITED for no limit */
    int64_t export_wh; /* >= 0, MKT_CAP_UNLIMITED for no limit */
} mkt_node;

/* Where a participant is connected. Participants without an entry sit at the root. */
typedef struct {
    uint64_t participant;
    uint32_t node;
} mkt_attach;

/* The tree. Nodes are listed parents first (nodes[i].parent < i for i > 0), so a tree of any
 * shape has exactly one valid listing up to renumbering. attach may be in any order and may
 * name participants that have no order in a given interval. The caller owns both arrays.
 *
 * level_fee_uc_per_kwh is a network fee per edge a local trade crosses, on top of the params'
 * flat network fee: a trade between a seller at node s and a buyer at node b pays
 * floor(e * (network_fee + level_fee * levels(s, b)) / 1000), levels being the number of edges
 * on the path between s and b (0 on the same node). Buyers' limits stay all-in against the
 * dearest path: the matching takes the fee of the tree's longest path (docs/market-rules.md,
 * "Fee per level"). 0 for none, which changes nothing. */
typedef struct {
    const mkt_node *nodes;
    size_t n_nodes; /* >= 1 */
    const mkt_attach *attach;
    size_t n_attach;
    int64_t level_fee_uc_per_kwh; /* 0 .. MKT_PRICE_MAX_UC_PER_KWH */
} mkt_topology;

/* The number of edges on the path between nodes a and b of a valid tree. */
uint32_t mkt_topology_levels(const mkt_topology *t, uint32_t a, uint32_t b);

/* A limit given as power (W) over an interval of interval_s seconds, as energy:
 * floor(w * interval_s / 3600) Wh. MKT_E_INVAL for a negative input or a zero interval,
 * MKT_E_OVERFLOW if it does not fit int64. */
int mkt_cap_wh_from_w(int64_t w, int64_t interval_s, int64_t *wh);

/* MKT_OK, or MKT_E_TOPOLOGY (no nodes, a root with a parent, a parent not before its child, a
 * negative limit, an attachment to a missing node, a participant attached twice), or
 * MKT_E_PRICE (a level fee below 0 or above MKT_PRICE_MAX_UC_PER_KWH). */
int mkt_topology_check(const mkt_topology *t);

enum {
    MKT_BIND_NONE = 0,
    MKT_BIND_EXPORT = 1, /* the subtree would export more at its parent's price */
    MKT_BIND_IMPORT = 2  /* the subtree would import more at its parent's price */
};

/* One node after clearing. */
typedef struct {
    int64_t flow_wh; /* net local energy over the node's edge: > 0 out of the subtree, < 0 in */
    /* The zone's price (see docs/market-rules.md): every accepted sell step of a participant
     * at this node asks at most this, every accepted buy step bids at least this (effective
     * prices). Meaningful when mkt_grid_summary.has_prices. */
    int64_t price_uc_per_kwh;
    uint32_t zone;  /* the index of the zone's top node */
    int binding;    /* MKT_BIND_*: the edge's limit separates this node's zone from its parent's */
} mkt_node_result;

/* Per participant, beside mkt_grid_participants' records (same order, ascending id). */
typedef struct {
    uint32_t node;
    int64_t price_uc_per_kwh;   /* its zone's price */
    int64_t congestion_paid_uc; /* buyers, pay-as-clear across a binding edge: see the rules */
} mkt_grid_participant;

typedef struct {
    int congested;  /* the copper-plate result did not fit: zones were computed */
    int has_prices; /* node prices are set: pay-as-clear with local trade, or congested */
    size_t n_zones;
    size_t n_binding;
    int64_t congestion_uc; /* sum of mkt_grid_trade_congestion; paid by buyers, to the network */
} mkt_grid_summary;

typedef struct mkt_grid_clearing mkt_grid_clearing;

/* A grid clearing object for books of at most max_orders orders; NULL on allocation failure.
 * The caller owns it and frees it with mkt_grid_clearing_free. */
mkt_grid_clearing *mkt_grid_clearing_new(size_t max_orders);
void mkt_grid_clearing_free(mkt_grid_clearing *g);

/* Clears one interval within the limits of topo. Orders, params and errors as mkt_clear (an
 * invalid topology is MKT_E_TOPOLOGY at MKT_AT_BOOK). The result is the same for every
 * permutation of orders and of topo->attach, and stays valid until the next call or
 * mkt_grid_clearing_free; on failure it is empty. */
int mkt_clear_grid(mkt_grid_clearing *g, const mkt_params *params, const mkt_topology *topo,
                   const mkt_order *orders, size_t n_orders, mkt_error_at *at);

/* The market result, in mkt_clear's types and canonical orders. Owned by g. For a pay-as-clear
 * trade across zones, price_uc_per_kwh and amount_uc are the seller's zone price and receipt;
 * the buyer pays amount_uc + fee_uc + mkt_grid_trade_congestion()[i]. */
const mkt_summary *mkt_grid_market_summary(const mkt_grid_clearing *g);
const mkt_trade *mkt_grid_trades(const mkt_grid_clearing *g, size_t *n_trades);
const mkt_participant_result *mkt_grid_participants(const mkt_grid_clearing *g,
                                                    size_t *n_participants);
/* Beside the trades and the participants: same counts, same order. Owned by g. */
const int64_t *mkt_grid_trade_congestion(const mkt_grid_clearing *g);
const mkt_grid_participant *mkt_grid_participant_info(const mkt_grid_clearing *g);
/* One per node of the last topology. Owned by g. */
const mkt_node_result *mkt_grid_nodes(const mkt_grid_clearing *g, size_t *n_nodes);
const mkt_grid_summary *mkt_grid_summary_of(const mkt_grid_clearing *g);

#ifdef __cplusplus
}
#endif

#endif
