/*
 * Internal: the meter daemon's counter state file. The plausibility filter of each meter
 * (mgx/counter.h) publishes "virtual" totals: the device's value plus an offset that absorbs
 * resets and rollovers. That offset lived only in memory, so a restarted daemon published the
 * raw device value again and the total stepped down (or up) by the offset, which Home
 * Assistant's total_increasing statistics count as a new meter cycle: a restart added megawatt
 * hours of phantom energy. This file keeps every meter's filter state across restarts.
 *
 * Format (text, one line per meter, rewritten whole and renamed into place after an fsync):
 *   mgx-meter-counters 1
 *   <meter id> <imp have> <imp ts_ms> <imp raw_wh> <imp offset_wh> <exp have> <exp ts_ms> ...
 * A missing file is an empty state (the first start); a damaged one is refused with a message.
 */
#ifndef MGX_CTL_METER_STATE_H
#define MGX_CTL_METER_STATE_H

#include <stddef.h>

#include "mgx/counter.h"
#include "mgx/meter.h"

#define METER_STATE_FILE_MAX (4u << 20) /* bytes; ~40k meters */

typedef struct {
    char meter_id[MTR_ID_MAX];
    mtr_filter filter;
} meter_state_entry;

/* "<outbox_path>.counters" into out. 0, or -1 when it does not fit in cap. */
int ctl_meter_state_path(const char *outbox_path, char *out, size_t cap);

/* Writes the n entries to path atomically (path.tmp, fsync, rename). 0, or -1 with err set. */
int ctl_meter_state_save(const char *path, const meter_state_entry *e, size_t n, char *err,
                         size_t errlen);

/* Reads path into *out (malloc'd; the caller frees it) and *n. A missing file gives 0 entries.
 * 0, or -1 with err set (unreadable or damaged file). */
int ctl_meter_state_load(const char *path, meter_state_entry **out, size_t *n, char *err,
                         size_t errlen);

#endif
