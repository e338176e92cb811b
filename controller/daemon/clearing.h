/*
 * Internal: clearing an interval, the controller's one market step. It collects the
 * interval's accepted orders from the store (db/store.h), runs the market library's mkt_clear
 * on them, and records the result, trades and each participant's outcome through the store,
 * all in one BEGIN IMMEDIATE transaction: a kill at any moment leaves the interval either
 * cleared with all of it or not cleared at all, and the interval's state row makes clearing
 * happen exactly once.
 *
 * Thread safety: as the store (one thread at a time). The caller owns everything it passes.
 */
#ifndef MGX_CTL_CLEARING_H
#define MGX_CTL_CLEARING_H

#include <stdint.h>

#include "common/topology_config.h"
#include "db/store.h"
#include "mgx/market.h"

/* Clears interval_id once: if the interval is not yet cleared, reads its orders, runs
 * mkt_clear with params (on a clearing buffer sized for the book) and writes result, trades,
 * participant results and state=cleared with the parameters and cleared_ms. *did_clear = 1 if
 * this call cleared it, 0 if it already was (nothing written). Returns a CTL_ST_* code. On
 * CTL_ST_E_MARKET the interval is recorded cleared with an empty result and the error in it, so
 * a bad book cannot stall the market (*did_clear = 1). */
int ctl_clear_interval(ctl_store *s, int64_t interval_id, int64_t start_utc,
                       const mkt_params *params, int64_t cleared_ms, int *did_clear);

/* The same within the feeder limits of topo (mkt_clear_grid, market/include/mgx/topology.h)
 * when topo->on, for intervals of length_s seconds (the limits are kW); the trades' congestion
 * rent and the nodes' flows, prices and binding limits are recorded with the clearing
 * (db/store.h). topo NULL or off: exactly ctl_clear_interval. */
int ctl_clear_interval_grid(ctl_store *s, int64_t interval_id, int64_t start_utc,
                            int64_t length_s, const mkt_params *params, const ctl_topology *topo,
                            int64_t cleared_ms, int *did_clear);

/* ctl_clear_interval_grid with the caller's book instead of the stored orders (timing =
 * ex_post: the book is made from metered energy and standing preferences, daemon/ex_post.h).
 * book[0..n_book) is read during the call only; NULL with 0 is an empty book. */
int ctl_clear_interval_book(ctl_store *s, int64_t interval_id, int64_t start_utc,
                            int64_t length_s, const mkt_params *params, const ctl_topology *topo,
                            int64_t cleared_ms, const mkt_order *book, size_t n_book,
                            int *did_clear);

#endif
