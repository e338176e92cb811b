/*
 * Internal: post-delivery clearing (timing = ex_post) of one interval, once it has ended and
 * its readings had settlement_grace_s to come in. Each home's book entry is made from what it
 * delivered, not from a forecast: its verified metered net energy for the interval (export -
 * import from its meter's stored readings, by the very rule settlement uses:
 * ctl_settle_input_build, settle_meter.h) and the standing preference that counts for the
 * interval (db/prefs.h), or the grid's terms when it never sent one. mkt_ex_post_orders
 * (mgx/ex_post.h) turns those into orders and clearing.h clears and records them like any
 * book. A home whose readings are flagged or missing trades nothing locally (settlement holds
 * it as today). Every locally traded Wh was metered, so settlement finds every trade delivered.
 *
 * Thread safety: the store's thread.
 */
#ifndef MGX_CTL_CLEARING_EX_POST_H
#define MGX_CTL_CLEARING_EX_POST_H

#include <stddef.h>
#include <stdint.h>

#include "common/topology_config.h"
#include "db/store.h"
#include "mgx/market.h"
#include "settle/settle_input.h"
#include "settle/settle_meter.h"

/* What went into one ex_post book, for the log. */
typedef struct {
    size_t homes;     /* homes of the registry with a meter */
    size_t metered;   /* of which with good readings for the interval */
    size_t with_pref; /* of which with a standing preference */
    size_t orders;    /* orders in the book (homes with a non-zero net) */
} ctl_ex_post_book_info;

/* Clears interval_id ex post, once, on the metered energy settlement will use (with the same
 * trust rules: a home held by the boundary or peer checks trades nothing locally) (as
 * ctl_clear_interval: *did_clear 0 when it already was), within topo's feeder limits when it is
 * given and on (ctl_clear_interval_grid). Returns a CTL_ST_* code; err (may be NULL)
 * says why on failure. */
int ctl_clear_interval_ex_post(ctl_store *s, int64_t interval_id, int64_t start_utc,
                               int64_t length_s, const mkt_params *params, const stm_rules *rules,
                               const ctl_trust_rules *trust, const ctl_topology *topo,
                               int64_t cleared_ms, int *did_clear, ctl_ex_post_book_info *info,
                               char *err, size_t errlen);

#endif
