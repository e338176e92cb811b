/*
 * Internal: the controller daemon's loop, `mgx controller`'s engine. Every interval it takes the
 * homes' signed orders from the bus, answers each with a receipt after the order is committed,
 * stores meter readings, clears each interval at gate closure exactly once and publishes the
 * result (retained) and each participant's trades. On start it catches up every interval whose
 * gate closed while it was down and re-publishes whatever was not marked published.
 *
 * One thread: the bus callbacks run inside bus_loop on the daemon's thread, so the store is only
 * ever used from that thread. The order intake's two signature workers (ingest.h) touch neither
 * the store nor the bus.
 */
#ifndef MGX_CTL_DAEMON_H
#define MGX_CTL_DAEMON_H

#include <signal.h>
#include <stdint.h>

#include "bus/bus.h"
#include "cluster/cluster.h"
#include "common/interval.h"
#include "common/topology_config.h"
#include "mgx/ex_post.h"
#include "mgx/market.h"
#include "settle/settle_input.h"
#include "solana/settle_solana.h"

#define CTL_PATH_MAX 4096
#define CTL_WITNESS_MAX 16 /* witness keys the controller collects cosignatures of */

typedef struct {
    char community[BUS_ID_MAX];
    char db_path[CTL_PATH_MAX];
    ctl_interval_rules rules;
    mkt_params params;
    /* ex_ante: orders before gate closure, cleared at the gate; ex_post: standing
     * preferences, cleared on metered energy once the interval's readings are in (after
     * settlement_grace_s) */
    mkt_timing timing;
    ctl_clock clock;
    int settlement_grace_s; /* readings accepted this long after an interval ends */
    /* settlement (settle_daemon.h): off when settlement_key is "" */
    char settlement_key[CTL_PATH_MAX]; /* the ledger signer key file (`mgx ledger keygen`) */
    int64_t reading_max_gap_s;         /* widest pair of readings around a boundary */
    int64_t meter_max_power_w;         /* plausibility bound of a meter's counters; 0 off */
    int64_t reading_retention_days;    /* readings older than this (of settled intervals) are
                                        * thinned to the boundary pairs (db/retention.h); 0: kept */
    int64_t min_attestation_tier;      /* readings below it are refused (settle/reading_attest.h) */
    int64_t reading_max_future_s;      /* readings stamped further ahead are refused (x speed) */
    int64_t reading_max_per_interval;  /* readings stored per meter and interval; more refused */
    int64_t order_max_per_interval;    /* order messages taken per home and interval; more dropped */
    int64_t credit_min_tier; /* energy credits (docs/credits.md) minted from this attestation
                                tier (0..2); -1 (the default): blocks record no credits */
    int64_t min_group_size; /* public market results only where >= this many homes stand
                               behind a figure (daemon/publish_body.h); 1 publishes all */
    ctl_settle_solana_config solana;   /* [solana]; solana.enabled 0 when absent */
    ctl_trust_rules trust; /* boundary balance and peer corroboration (settle/settle_input.h;
                            * docs/trust.md, layers 3 and 4) */
    /* the witnesses whose cosignatures are collected from the bus and republished with the
     * checkpoint (settle/cosig_collect.h); n_witness 0: none collected */
    uint8_t witness_pk[CTL_WITNESS_MAX][32];
    size_t n_witness;
    char metrics_listen[128];          /* HOST:PORT of the metrics page; "" for none */
    char metrics_textfile[CTL_PATH_MAX]; /* the page written here too; "" for none */
    bus_config bus; /* strings owned by the caller, alive during the run; without a
                     * log callback the bus logs through the daemon's log */
    int log_level;  /* CTL_LOG_*: lines "mgx controller LEVEL: ..." (common/log.h) */
    /* [cluster] (docs/cluster.md): one of 3 or 5 replicated nodes; 0: one node, as before */
    int cluster_on;
    ctl_cluster_config cluster;
    /* [topology] and [feeder NAME] (docs/controller.md, "Topology"): the feeders the market
     * clears within (mkt_clear_grid); topology.on 0: the copper plate, as before. Its arrays
     * are freed by ctl_topology_clear (the loader's caller). */
    ctl_topology topology;
} ctl_daemon_config;

/* Runs until *stop becomes non-zero (a signal handler sets it). Returns 0 after a clean
 * shutdown, or 1 when the store or the bus could not be set up (logged). */
int ctl_daemon_run(const ctl_daemon_config *cfg, volatile sig_atomic_t *stop);

#endif
