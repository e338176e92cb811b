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
} ctl_settle_member;

typedef struct {
    ctl_ledger_input in; /* points into the arrays below */
    mkt_trade *trades;
    stl_metered *meters;
    ctl_settle_member *members; /* ascending by market_id */
    size_t n_members;
    size_t n_good, n_flagged, n_missing; /* among members */
} ctl_settle_input;

/* Builds the input of a cleared interval r (ctl_store_result) with the meter rules. CTL_ST_OK,
 * or a CTL_ST_E_* code with a message in err. */
int ctl_settle_input_build(ctl_store *s, const ctl_interval_result *r, const stm_rules *rules,
                           ctl_settle_input *out, char *err, size_t errlen);
void ctl_settle_input_free(ctl_settle_input *x);

#endif
