/*
 * Internal: the retention rule for meter readings. The controller stores every reading a meter
 * daemon publishes (one a second by default, with power and state of charge), which shows when
 * a family is home, asleep or away, long after anyone needs it: settlement needs, per interval
 * boundary, only the last good reading at or before it and the first good one after it
 * (mgx/interval_energy.h: the pair a boundary is interpolated from, the rule the controller and
 * the home agent share). Once an interval is settled and the readings are older than the
 * configured retention time, the rule keeps exactly those boundary pairs and every flagged
 * reading (the evidence for a dispute about a flagged interval), and deletes the rest.
 *
 * The boundary values of a settled interval are therefore the same after thinning as before:
 * both readings of each pair stay. The work is bounded per pass (a budget of rows examined) and
 * resumable: a watermark per meter (table reading_retention) says up to where its readings are
 * thinned, so a pass never rescans what an earlier one did.
 *
 * Thread safety and ownership as db/store.h: one thread per ctl_store at a time.
 */
#ifndef MGX_CTL_RETENTION_H
#define MGX_CTL_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/store.h"

/* One stored reading as the rule sees it. */
typedef struct {
    int64_t ts_ms;
    uint32_t quality;
} ctl_ret_row;

/*
 * The rule on a run of one meter's readings, ascending by time (pure). prev_good_ms is the
 * last good reading before r[0] (INT64_MIN: none), interval_ms the interval length. A good
 * reading r is kept when it is the first good one after some boundary (none before it, or a
 * multiple of interval_ms lies in [previous good, r)) or the last good one at or before some
 * boundary (a multiple lies in [r, next good)); flagged readings are always kept. A good
 * reading with no later good one in the run cannot be decided: the run stops there (it is
 * decided in a later pass), except when it is the run's first row and more rows follow
 * (more = true: a batch of flagged readings after it), when it is kept.
 * Sets keep[0..return) and *resume_ms (where the next pass starts); returns how many rows
 * were decided.
 */
size_t ctl_retention_decide(const ctl_ret_row *r, size_t n, int64_t prev_good_ms,
                            int64_t interval_ms, bool more, bool *keep, int64_t *resume_ms);

typedef struct {
    char cursor[65]; /* the meter the next pass starts with ("" at first); the caller keeps it */
} ctl_retention_state;

typedef struct {
    uint64_t examined; /* readings looked at */
    uint64_t deleted;  /* readings deleted */
    unsigned meters;   /* meters visited */
} ctl_retention_stats;

/*
 * One bounded pass of the rule over readings with ts_ms < cutoff_ms: looks at no more than
 * max_rows readings (in transactions of at most max_rows), meter after meter from
 * state->cursor, and adds what it did to *stats. The caller picks cutoff_ms: older than the
 * retention time and than every reading an unsettled interval may still need. CTL_ST_OK or
 * CTL_ST_E_DB / CTL_ST_E_INVAL.
 */
int ctl_store_thin_readings(ctl_store *s, ctl_retention_state *state, int64_t cutoff_ms,
                            int64_t interval_ms, size_t max_rows, ctl_retention_stats *stats);

#endif
