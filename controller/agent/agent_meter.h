/*
 * Internal: how the home agent turns its meter's readings into each interval's net energy.
 *
 * Meters publish cumulative import and export counters at their own pace (every few seconds);
 * an interval's energy is the counters' rise between its two boundaries. A boundary rarely has a
 * reading exactly on it, so the counters there are interpolated linearly between the good
 * readings either side, and only if those are at most max_gap_ms apart. Each boundary value is
 * shared by the two intervals it separates, so the floors of the interpolation telescope: a day
 * of intervals adds up to the counters' rise over the day, to the Wh.
 *
 * Only readings with quality MTR_Q_GOOD are used. A good reading whose rise from the previous
 * one is impossible (a counter going down, or more energy than max_power_w allows: the known
 * field problem of bogus counter values) is refused with a reason and becomes the new baseline:
 * the intervals around it have no value rather than a wrong one.
 *
 * Pure: no I/O, no clock; the caller passes every reading. Not thread safe (one per agent).
 */
#ifndef MGX_CTL_AGENT_METER_H
#define MGX_CTL_AGENT_METER_H

#include <stdbool.h>
#include <stdint.h>

#include "mgx/meter.h"

/* How many recent boundaries are kept (so how far back an interval can be asked for). */
#define AGM_BOUNDARIES 16

enum {
    AGM_USED = 0,        /* the reading was taken into account */
    AGM_FIRST = 1,       /* the first good reading (or first after a refusal): a new baseline */
    AGM_E_QUALITY = -1,  /* flagged by the meter daemon: ignored */
    AGM_E_OLD = -2,      /* not newer than the last used reading (a duplicate or retained copy) */
    AGM_E_BACKWARDS = -3,  /* a counter went down: refused, new baseline */
    AGM_E_IMPLAUSIBLE = -4 /* more energy than max_power_w allows: refused, new baseline */
};

/* A static English description of an AGM_* code. */
const char *agm_strerror(int code);

typedef struct {
    int64_t interval_id; /* the boundary is the start of this interval */
    int64_t import_wh, export_wh;
} agm_boundary;

typedef struct {
    int64_t interval_ms; /* interval length, > 0 */
    int64_t max_gap_ms;  /* largest distance between the readings around a boundary */
    int64_t max_power_w; /* the meter's rating, for the plausibility check */
    bool have_last;
    mtr_sample last;
    agm_boundary b[AGM_BOUNDARIES]; /* ring, ordered by interval_id */
    unsigned n_b, head;
} agm_state;

/* Sets up an empty follower. false if a parameter is not positive. */
bool agm_init(agm_state *s, int64_t interval_ms, int64_t max_gap_ms, int64_t max_power_w);

/* Takes one reading; returns an AGM_* code (negative: not used, with the reason above). */
int agm_add(agm_state *s, const mtr_sample *r);

/* The net energy of interval_id (export minus import, Wh; positive = the home gave energy to
 * the grid) when both its boundaries are known. */
bool agm_interval_net(const agm_state *s, int64_t interval_id, int64_t *net_wh);

/* The most recent interval whose net energy is known. */
bool agm_last_complete(const agm_state *s, int64_t *interval_id, int64_t *net_wh);

#endif
