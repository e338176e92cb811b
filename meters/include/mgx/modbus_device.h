/*
 * mgx meters: reading one device over Modbus with libmodbus. Two objects:
 *
 *  - mtr_link: one TCP connection to host:port or one open serial port. Several devices may
 *    share a link (units behind one gateway, meters on one RS-485 bus): the unit id is set
 *    before every request. It connects lazily. A late reply must never be taken for the
 *    answer to the next request: a TCP link closes itself after a timeout, a malformed reply or
 *    a dropped connection so the next use reconnects; a serial link (RTU has no transaction
 *    id) empties its input buffer before every request, and reopens only when the port itself
 *    fails. Each (re)connect bumps its generation.
 *    TCP is spoken by this module on its own socket, not by libmodbus (3.1.6 accepts replies
 *    from another unit or with a protocol id other than 0, and its timeout bounds the gap
 *    between bytes, not the reply): every reply is checked against its request (transaction
 *    id, protocol id 0, unit id, function, length, byte count) before a register of it is
 *    used; bytes waiting on the socket before a request are discarded; one deadline,
 *    timeout_ms after the request went out, bounds the whole reply. Serial ports go through
 *    libmodbus (it checks unit, function and CRC).
 *  - mtr_device: what is known about one configured device between polls: its profile, the
 *    SunSpec chain discovered over the current connection (discovered again when the link's
 *    generation changes), its counter filter state and its meta.
 *
 * mtr_device_read polls once: every Modbus request is retried up to `retries` times with
 * backoff retry_backoff_ms x 2^(k-1) on timeouts, malformed replies, dropped connections,
 * failed connects and the exceptions "busy" (6) and "acknowledge" (5); other exceptions are
 * final, and so is a serial port that cannot exist yet (no such file, not a tty, no
 * permission): that poll fails at once and the next poll tries again.
 *
 * Thread safety: a link and a device are used by one thread at a time (the poller moves them
 * between threads but never shares them); distinct objects are independent.
 */
#ifndef MGX_MODBUS_DEVICE_H
#define MGX_MODBUS_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/counter.h"
#include "mgx/device_config.h"
#include "mgx/meter.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Room for a failure's description (mtr_device_error, mtr_poll_result.err), NUL included. */
#define MTR_ERR_MAX 400

/* A clock in Unix milliseconds; NULL means CLOCK_REALTIME. */
typedef int64_t (*mtr_clock_fn)(void *ctx);

typedef struct mtr_link mtr_link;

/*
 * A link with the transport settings of cfg (host/port or device/baud/parity/bits, timeout).
 * Does not connect yet. NULL if out of memory or libmodbus refuses the settings. cfg is copied.
 */
mtr_link *mtr_link_new(const mtr_device_config *cfg);
void mtr_link_free(mtr_link *l);
/* Closes the connection; the next read reconnects. */
void mtr_link_close(mtr_link *l);
/* Connections made so far (0 before the first). */
uint64_t mtr_link_generation(const mtr_link *l);

/*
 * Reads count registers (1..125) with function fc (3 holding, 4 input) from unit at addr, with
 * the retries and backoff of the link's config. An mtr_read_fn-compatible core for profiles.
 * Returns MTR_OK or MTR_E_TIMEOUT / MTR_E_EXCEPTION / MTR_E_FRAME / MTR_E_CLOSED / MTR_E_CONNECT.
 * *exception (may be NULL) gets the exception code when MTR_E_EXCEPTION.
 */
int mtr_link_read(mtr_link *l, int unit, int fc, uint16_t addr, uint16_t count, uint16_t *dst,
                  int *exception);

/*
 * Writes count registers from src to unit at addr: function 16 (1..123 registers) or 6 (one
 * register), with the link's retries. The reply is checked like a read's (transaction,
 * protocol, unit, function) and must echo the address and count (16) or value (6). Returns
 * MTR_OK or the codes of mtr_link_read. Nothing in this library writes on its own: only
 * storage control (storage_ctl.h) calls it, and only for devices not configured read-only.
 */
int mtr_link_write(mtr_link *l, int unit, int fc, uint16_t addr, uint16_t count,
                   const uint16_t *src, int *exception);

/* The last request's failure without the endpoint ("reply from unit 4, not 3"), "" after a
 * success. Owned by l, valid until its next request. */
const char *mtr_link_error(const mtr_link *l);

/* Bytes found waiting on the TCP connection before a request and discarded (0 for RTU). */
uint64_t mtr_link_stale_bytes(const mtr_link *l);

typedef struct mtr_device mtr_device;

/* A device for cfg (copied; cfg->map must outlive the device; for the SDM profiles a NULL map
 * means the built-in one). NULL if out of memory. */
mtr_device *mtr_device_new(const mtr_device_config *cfg);
void mtr_device_free(mtr_device *d);
const mtr_device_config *mtr_device_config_of(const mtr_device *d);

/*
 * Polls the device once over link (NULL: a private link the device opens itself) and fills
 * *s with meter_id, ts_ms = clock() when the read completed, the values and quality. On a
 * communication failure s is still filled (mtr_filter_fail: MTR_Q_COMM, last good totals) and
 * the code says why; mtr_device_error gives the detail. *meta_fresh (may be NULL) is set to 1
 * when the meta was read on this poll (first poll on a new connection), else 0.
 * Returns MTR_OK (a reading was decoded, possibly flagged) or a negative MTR_E_* code.
 */
int mtr_device_read(mtr_device *d, mtr_link *link, mtr_clock_fn clock, void *clock_ctx,
                    mtr_sample *s, int *meta_fresh);

/* The counter state (offsets, last accepted values) after the last read, to save; and a saved
 * one put back before the first read of a new process, so the published totals go on where
 * they were (mgx/counter.h). Not concurrently with mtr_device_read. */
void mtr_device_filter_get(const mtr_device *d, mtr_filter *out);
void mtr_device_filter_set(mtr_device *d, const mtr_filter *f);

/* The device's meta (make/model/serial/profile) as last read; meter_id and profile always set. */
const mtr_meta *mtr_device_meta(const mtr_device *d);

/* A one-line description of the last failure, naming the endpoint, the unit, the reason and
 * the request: "10.0.0.7:502 unit 3: reply from unit 4, not 3 after 3 attempts reading input
 * 52+24", "10.0.0.7:502: cannot connect: Connection refused after 3 attempts",
 * "/dev/ttyUSB0: cannot open: No such file or directory (tried again at the next poll)".
 * "" after a success. Owned by d, valid until the next read. */
const char *mtr_device_error(const mtr_device *d);

#ifdef __cplusplus
}
#endif

#endif
