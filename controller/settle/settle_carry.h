/*
 * Internal: layer 6 of docs/trust.md, "silence and self-flagging do not pay". A home held in
 * some intervals (flagged, missing, over its limits, or silent without a position at all) paid
 * nothing for them; its meter's import counter kept counting. When the home next settles as
 * good, the import between the end of its last good interval and the start of this one is
 * carried into this interval's import, so it pays for that energy then: the held energy is
 * owed, not forgiven. Export of held intervals is not carried (a claim that failed the checks
 * earns nothing later either).
 *
 * This file finds the last good interval in the ledger and keeps the carried amounts in
 * settle_carry (db/schema.c) so statements can show them; the ledger itself records the
 * position with the carried import included (its encoding is unchanged).
 *
 * Not thread safe (the store's thread).
 */
#ifndef MGX_CTL_SETTLE_CARRY_H
#define MGX_CTL_SETTLE_CARRY_H

#include <stdint.h>

#include "db/db.h"

/* How many of a participant's latest ledger positions are looked at for its last good one:
 * bounded work per home (about 42 days of 15-minute intervals). */
#define CTL_CARRY_MAX_SCAN 4096

/* The interval id and length of participant's latest position settled as good in an interval
 * before before_interval: 0 found, 1 none among its latest CTL_CARRY_MAX_SCAN, -1 SQLite. */
int ctl_carry_last_good(ctl_db *db, int64_t participant, int64_t before_interval,
                        int64_t *interval_id, int64_t *interval_len_s);

/* Records that participant's position of interval_id carries import_wh from from_interval
 * (the first interval after its last good one). 0 or -1. Idempotent. */
int ctl_carry_put(ctl_db *db, int64_t interval_id, int64_t participant, int64_t from_interval,
                  int64_t import_wh);
/* 1 with *from_interval and *import_wh when such a record exists, 0 when not, -1 SQLite. */
int ctl_carry_get(ctl_db *db, int64_t interval_id, int64_t participant, int64_t *from_interval,
                  int64_t *import_wh);

#endif
