/*
 * mgx meters: polls many devices at their periods from one process.
 *
 * Devices are grouped into lanes; a lane is a sequence of devices polled one after another over
 * one mtr_link: all devices on one serial port form one lane (RS-485 is half duplex; the
 * inter-unit pause of the unit asked last is kept before the next request on the line, also
 * across passes when the units' periods differ), and the devices of one TCP host:port are spread over
 * up to `connections` lanes (one connection each; units behind one gateway share it). A
 * bounded pool of worker threads takes due lanes from a timetable in order of due time, so a
 * lane and its link are used by one thread at a time and no Modbus context is ever shared.
 * Periods are kept without drift (due += period); a device that falls more than one period
 * behind skips the missed polls, counted as overruns.
 *
 * Results go either to a callback (called from the worker threads, concurrently for different
 * devices) or into a bounded queue that the caller drains with mtr_poller_next. When the queue
 * is full the oldest result is dropped and counted: counters are cumulative, so the newest
 * reading supersedes it.
 *
 * Thread safety: all functions may be called from any thread, except that mtr_poller_free must
 * not race with the others.
 */
#ifndef MGX_POLLER_H
#define MGX_POLLER_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/device_config.h"
#include "mgx/meter.h"
#include "mgx/modbus_device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MTR_POLLER_THREADS_MAX 256

/* One poll's outcome. */
typedef struct {
    mtr_sample sample;    /* always filled; MTR_Q_COMM when rc != MTR_OK */
    int rc;               /* MTR_OK or the MTR_E_* failure */
    char err[MTR_ERR_MAX]; /* detail when rc != MTR_OK */
    int meta_fresh;       /* meta is new (first poll on a connection): publish it */
    mtr_meta meta;
    mtr_filter filter;    /* the device's counter state after this poll, to save and hand to
                           * mtr_poller_restore in the next process */
} mtr_poll_result;

typedef void (*mtr_poll_cb)(void *ctx, const mtr_poll_result *r);

typedef struct {
    unsigned threads;  /* worker threads, 1..MTR_POLLER_THREADS_MAX; 0: min(lanes, 16) */
    size_t queue_max;  /* queue bound when cb is NULL; 0: 4 x devices (at least 64) */
    mtr_poll_cb cb;    /* NULL: queue the results for mtr_poller_next */
    void *cb_ctx;
    mtr_clock_fn clock; /* time stamped on samples; NULL: CLOCK_REALTIME */
    void *clock_ctx;
} mtr_poller_options;

typedef struct {
    uint64_t polls;     /* polls done */
    uint64_t failures;  /* polls that ended with rc != MTR_OK */
    uint64_t overruns;  /* polls skipped because a device fell a period behind */
    uint64_t dropped;   /* results dropped from a full queue */
    uint64_t late_ms_max; /* worst start delay behind schedule */
} mtr_poller_stats;

typedef struct mtr_poller mtr_poller;

/*
 * A poller for every device of cfg (which must outlive it); opt may be NULL for defaults.
 * Creates the lanes but no threads. NULL when out of memory or cfg has no devices.
 */
mtr_poller *mtr_poller_new(const mtr_config *cfg, const mtr_poller_options *opt);

/*
 * Puts back the saved counter state of the device meter_id (from mtr_poll_result.filter of an
 * earlier process), so its published totals go on from where they were instead of starting a
 * new baseline at the device's raw value (which drops every offset a reset or rollover built).
 * Only before mtr_poller_start. MTR_OK, MTR_E_INVAL (no such device, or started).
 */
int mtr_poller_restore(mtr_poller *p, const char *meter_id, const mtr_filter *f);

/* Starts the workers; the first poll of every device is due immediately. MTR_OK or MTR_E_NOMEM. */
int mtr_poller_start(mtr_poller *p);

/* Stops and joins the workers (a poll in progress finishes first). Idempotent. */
void mtr_poller_stop(mtr_poller *p);

/* Stops if running and frees everything. */
void mtr_poller_free(mtr_poller *p);

/*
 * Polls every device exactly once with the worker pool (lanes in parallel, devices of a lane in
 * turn) and returns when all are done, delivering every result to cb (called from the worker
 * threads). For `mgx meter --once`. Must not be called while started. Returns MTR_OK or
 * MTR_E_NOMEM / MTR_E_INVAL.
 */
int mtr_poller_run_once(mtr_poller *p, mtr_poll_cb cb, void *cb_ctx);

/*
 * Takes the oldest queued result, waiting up to timeout_ms (0: do not wait, -1: forever).
 * Returns MTR_OK, MTR_E_TIMEOUT when nothing arrived, MTR_E_STOPPED when the poller is stopped
 * and the queue is empty, MTR_E_INVAL when a callback was configured.
 */
int mtr_poller_next(mtr_poller *p, mtr_poll_result *out, int timeout_ms);

void mtr_poller_stats_get(mtr_poller *p, mtr_poller_stats *out);

/* Number of lanes and worker threads, for logs and the bench. */
size_t mtr_poller_lanes(const mtr_poller *p);
unsigned mtr_poller_threads(const mtr_poller *p);

#ifdef __cplusplus
}
#endif

#endif
