/*
 * Internal: the controller's side of settling an interval: gathers, from its own database, the
 * input ctl_ledger_settle needs (settle_interval.h): the interval's trades and tariffs as cleared,
 * and the metered energy of every participant involved, from its meter's stored readings
 * (settle_meter.h).
 *
 * Who is settled: every participant in a trade of the interval, and every home of the registry
 * that has a meter (a home that did not trade still settles its import and export against the
 * grid). A participant's meter is the registry's meter id. A trading participant with no
 * registry entry, no meter or no determinable boundary gets no meter record, so reconciliation
 * holds it as "missing"; a meter with flagged readings gives a record with their quality bits,
 * so it is held as "flagged", and so is one whose energy exceeds the home's registered limits
 * (MTR_Q_LIMIT, ctl_registry_limits_get) or whose readings flood the window (MTR_Q_FLOOD). A
 * home that neither traded nor has a usable reading is left out
 * (it has nothing to settle); one with flagged readings is recorded as flagged.
 *
 * Participants are numbered by the market numbers of the controller's store (the numbers in
 * its trades); a home that never ordered is given one (ctl_store_market_id).
 *
 * Ownership: a ctl_settle_input owns its arrays; free with ctl_settle_input_free. Not thread
 * safe (the store's thread).
 */
#ifndef MGX_CTL_SETTLE_INPUT_H
#define MGX_CTL_SETTLE_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/boundary_balance.h"
#include "mgx/peer_yield.h"
#include "settle/settle_interval.h"
#include "settle/settle_meter.h"
#include "db/store.h"

/* Readings of one meter looked at for one interval: a meter with more is held as flagged
 * (MTR_Q_FLOOD), alone, so a flood costs bounded work and blocks no one else. The controller
 * stores at most reading_max_per_interval per meter and interval (ctl_daemon.c); this is the
 * cap for a store filled some other way. */
#define CTL_SETTLE_MAX_READINGS 20000u
/* Participants settled in one interval. */
#define CTL_SETTLE_MAX_MEMBERS 100000u

/* The coordinator's trust checks across homes (docs/trust.md, layers 3 and 4). */
typedef struct {
    stl_balance_rules balance; /* layer 3: loss tolerance against the boundary meter(s) */
    int64_t boundary_min_tier; /* a home whose readings are at least this tier (1 gateway, 2
                                * certified) settles in a disputed interval; the others are
                                * held */
    stl_peer_rules peer;       /* layer 4 */
    int peer_on;               /* 0: no peer check */
} ctl_trust_rules;

/* The defaults (docs/trust.md): 30 permille + 100 Wh; tier 1; peers 2000 permille + 50 W per
 * kWp, at least 3 peers, on. */
void ctl_trust_rules_default(ctl_trust_rules *t);

/* The interval's balance at the boundary (layer 3). */
typedef struct {
    size_t n_boundary;    /* boundary meters in the registry */
    int checked;          /* every boundary meter had a good reading: balance below is valid */
    char unchecked_why[160]; /* when not checked with n_boundary > 0 */
    int64_t import_wh, export_wh; /* summed over the boundary meters */
    stl_balance balance;
} ctl_boundary_state;

/* One participant of the interval, for logs and statements. */
typedef struct {
    uint64_t market_id;
    char name[CTL_PARTICIPANT_MAX];
    char meter_id[CTL_PARTICIPANT_MAX]; /* "" when it has none */
    int trades;                /* it is part of a trade */
    stm_result metered;        /* STM_MISSING when it has no meter */
    int attestation_tier;      /* lowest tier of the readings looked at (0 unsigned, 1 gateway
                                * key, 2 certified meter; settle/reading_attest.h); 0 with none */
    /* layer 6 (settle_carry.h): import of the intervals since its last good one, added to its
     * import when it settles good here; carried_from is the first of them (INT64_MIN none) */
    int64_t carried_import_wh;
    int64_t carried_from;
    /* layers 3 and 4: what the cross-home checks found (peer.checked 0: not peer-checked) */
    stl_peer_verdict peer;
    int disputed_held; /* held because the interval did not balance at the boundary */
} ctl_settle_member;

typedef struct {
    ctl_ledger_input in; /* points into the arrays below */
    mkt_trade *trades;
    stl_metered *meters;
    ctl_settle_member *members; /* ascending by market_id */
    size_t n_members;
    size_t n_good, n_flagged, n_missing; /* among members */
    ctl_boundary_state boundary;
} ctl_settle_input;

/* Builds the input of a cleared interval r (ctl_store_result) with the meter rules and the
 * trust rules (NULL: the defaults). CTL_ST_OK, or a CTL_ST_E_* code with a message in err. */
int ctl_settle_input_build(ctl_store *s, const ctl_interval_result *r, const stm_rules *rules,
                           const ctl_trust_rules *trust, ctl_settle_input *out, char *err,
                           size_t errlen);
void ctl_settle_input_free(ctl_settle_input *x);

#endif
