/*
 * Internal: the bodies `mgx controller` publishes after clearing an interval, with the data
 * minimisation rules of issue 19 (docs/privacy.md, Bus messages):
 *
 *  - `trades/<participant>` (to one home): its own outcome and its trades, each trade with the
 *    home's side and the contract, never the counterparty (the coordinator keeps that);
 *  - `market/<interval_id>/result` (retained, to everyone): the interval's aggregates, each
 *    only when at least k participants stand behind it ([controller] min_group_size): the
 *    local volume, money and trade count need k homes that sold and k that bought; the grid
 *    volumes need k homes on their side. A withheld figure is JSON null and named in
 *    "withheld". The price stays public (agents learn from it; see docs/privacy.md for what it
 *    reveals in a thin interval).
 *
 * Pure: store rows in, jansson objects out (the caller owns and frees them); no I/O.
 */
#ifndef MGX_CTL_PUBLISH_BODY_H
#define MGX_CTL_PUBLISH_BODY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db/store.h"

#define CTL_MIN_GROUP_SIZE_DEFAULT 3
#define CTL_MIN_GROUP_SIZE_MAX 1000

/* How many participants stand behind an interval's aggregates. */
typedef struct {
    size_t sellers; /* with a sell order */
    size_t buyers;  /* with a buy order */
    size_t sold;    /* sold some energy locally */
    size_t bought;  /* bought some energy locally */
} ctl_result_groups;

/* Counts participant p's outcome into g. */
void ctl_result_groups_add(ctl_result_groups *g, const mkt_participant_result *p);

enum {
    CTL_WITHHOLD_LOCAL = 1u,       /* matched_wh, trades, local_value_uc, fees_uc */
    CTL_WITHHOLD_GRID_SOLD = 2u,   /* grid_sold_wh */
    CTL_WITHHOLD_GRID_BOUGHT = 4u  /* grid_bought_wh */
};

/* Which aggregates stand on fewer than k participants (k >= 1; 1 withholds nothing). An
 * aggregate nobody contributed to (0 sellers, say) is 0 for everyone and not withheld. */
unsigned ctl_result_withheld(const ctl_result_groups *g, int64_t k);

/* The public result body; NULL on no memory. */
json_t *ctl_result_body(const char *community, const ctl_interval_result *r,
                        const ctl_result_groups *g, int64_t k);

/* Adds what the feeder limits did to a result body, for an interval cleared within a topology
 * (nodes[0..n), in node order; n == 0 adds nothing, so a copper plate's body stays as it was):
 * "congested" (true when some edge's limit binds) and, when it is, "zones": per node its name,
 * the name of the node at the top of its zone, the zone's price and "binding" ("export",
 * "import" or "none": whether the node's edge limits what the subtree below exports or
 * imports). A node's flow is left out: the net position of a feeder's few homes is no more
 * public than theirs (docs/privacy.md). Returns 0, or -1 on no memory (body unchanged). */
int ctl_result_body_add_grid(json_t *body, const ctl_grid_node_row *nodes, size_t n);

/* The body of participant's trades message: its outcome o and, of the interval's n trades,
 * those it is part of, each as {"side", "energy_wh", "price_uc_per_kwh", "amount_uc",
 * "fee_uc"}; NULL on no memory. */
json_t *ctl_trades_body(const char *participant, const ctl_interval_result *r,
                        const mkt_participant_result *o, const ctl_trade_row *trades, size_t n);

#endif
