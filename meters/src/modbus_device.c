/*
 * The Modbus client: a link (a TCP connection on our own socket, or a serial port libmodbus
 * opens) with lazy connects, requests framed and replies checked here (mbap.h, rtu.h) within
 * one deadline each, retries with backoff and a clean reconnect after anything that can leave
 * the byte stream out of step; and a device that polls one configured meter over a link
 * through its profile (SunSpec chain, Eastron or user map) and its counter filter. See
 * mgx/modbus_device.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "mgx/modbus_device.h"
#include "mgx/meter_error.h"
#include "mgx/sdm.h"
#include "mgx/sunspec.h"

#include <errno.h>
#include <modbus.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "mbap.h"
#include "rtu.h"

struct mtr_link {
    mtr_device_config cfg; /* transport settings and the link's own retry policy */
    modbus_t *ctx;         /* RTU: libmodbus opens the serial port and sets its line (termios);
                            * requests and replies are framed here (rtu.h) */
    int fd;                /* TCP: our own socket, -1 when closed */
    int connected;
    uint64_t generation;
    uint16_t tid;          /* the last transaction id sent (TCP) */
    uint64_t stale_bytes;  /* bytes found waiting before a request and discarded (TCP) */
    int final;             /* the last failure cannot be cured by retrying within this poll */
    char why[MTR_HOST_MAX + 96]; /* the last attempt's failure, without the endpoint */
};

struct mtr_device {
    mtr_device_config cfg;
    mtr_counter_params params;
    mtr_filter filter;
    mtr_link *own; /* private link when the caller passes none */
    int have_chain;
    uint64_t chain_gen;
    mtr_sunspec_chain chain;
    mtr_plan plan;
    int plan_rc;
    uint64_t meta_gen;
    mtr_meta meta;
    char err[MTR_ERR_MAX];
};

/* What a failed request was, for the error text. */
typedef struct {
    int exception;
    int attempts;
} req_info;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int64_t realtime_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- links ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The system's reason for errno e (strerror is not thread-safe; the poller's workers call). */
static const char *reason(int e, char *buf, size_t n)
{
    if (strerror_r(e, buf, n) != 0)
        snprintf(buf, n, "error %d", e);
    return buf;
}

static void set_why(mtr_link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(mtr_link *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->why, sizeof l->why, fmt, ap);
    va_end(ap);
}

mtr_link *mtr_link_new(const mtr_device_config *cfg)
{
    mtr_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->cfg = *cfg;
    l->fd = -1;
    if (cfg->transport == MTR_RTU) {
        l->ctx = modbus_new_rtu(cfg->device, cfg->baud, cfg->parity, cfg->data_bits,
                                cfg->stop_bits);
        if (!l->ctx) {
            free(l);
            return NULL;
        }
    }
    return l;
}

void mtr_link_close(mtr_link *l)
{
    if (!l || !l->connected)
        return;
    if (l->ctx)
        modbus_close(l->ctx);
    else
        close(l->fd);
    l->fd = -1;
    l->connected = 0;
}

void mtr_link_free(mtr_link *l)
{
    if (!l)
        return;
    mtr_link_close(l);
    if (l->ctx)
        modbus_free(l->ctx);
    free(l);
}

uint64_t mtr_link_generation(const mtr_link *l)
{
    return l->generation;
}

const char *mtr_link_error(const mtr_link *l)
{
    return l->why;
}

uint64_t mtr_link_stale_bytes(const mtr_link *l)
{
    return l->stale_bytes;
}

/* "host:port" ("[v6]:port") or the serial device, for messages. */
static void endpoint(const mtr_device_config *c, char *buf, size_t n)
{
    if (c->transport == MTR_RTU)
        snprintf(buf, n, "%s", c->device);
    else if (strchr(c->host, ':'))
        snprintf(buf, n, "[%s]:%d", c->host, c->port);
    else
        snprintf(buf, n, "%s:%d", c->host, c->port);
}

/* Waits until fd is ready for events or the deadline passes: >0 ready, 0 deadline, <0 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/*
 * A TCP connection to the device, every address of the host in turn, all within timeout_ms.
 * Host names resolve with getaddrinfo (IPv4 and IPv6). On failure l->why holds the system's
 * reason: "connection refused" (nothing listens on the port), "no route to host", the
 * resolver's message, or no answer within the timeout (host down or filtered).
 */
static int tcp_connect(mtr_link *l, int timeout_ms)
{
    char port[16], why[96] = "no address";
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%d", l->cfg.port);
    int g = getaddrinfo(l->cfg.host, port, &hints, &res);
    if (g != 0) {
        set_why(l, "cannot resolve %s: %s", l->cfg.host,
                g == EAI_SYSTEM ? reason(errno, why, sizeof why) : gai_strerror(g));
        return MTR_E_CONNECT;
    }
    int64_t deadline = mono_ms() + timeout_ms;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            reason(errno, why, sizeof why);
            continue;
        }
        int e = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            e = errno;
            if (e == EINPROGRESS) {
                int w = wait_fd(fd, POLLOUT, deadline);
                socklen_t sl = sizeof e;
                if (w == 0)
                    e = -1;
                else if (w < 0)
                    e = errno;
                else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0)
                    e = errno;
            }
        }
        if (e == 0)
            break;
        if (e < 0)
            snprintf(why, sizeof why, "no answer within %d ms", timeout_ms);
        else
            reason(e, why, sizeof why);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        set_why(l, "cannot connect: %s", why);
        return MTR_E_CONNECT;
    }
    int one = 1; /* a 12-byte request goes out now, not after the delayed ACK */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    l->fd = fd;
    return MTR_OK;
}

/* Serial ports that cannot appear within one poll: no such device file, not a tty, no
 * permission. Not retried in this poll (the next poll tries again: an adapter plugged in
 * later is picked up); everything else (EIO, EBUSY, ...) is retried like a timeout. */
static int open_error_is_final(int e)
{
    return e == ENOENT || e == ENOTDIR || e == EACCES || e == EPERM || e == ENOTTY ||
           e == ENXIO || e == ENODEV;
}

static int ensure_connected(mtr_link *l, int timeout_ms)
{
    if (l->connected)
        return MTR_OK;
    if (l->ctx) {
        errno = 0;
        if (modbus_connect(l->ctx) != 0) {
            char r[96];
            int e = errno;
            set_why(l, "cannot open: %s", e ? reason(e, r, sizeof r) : "unknown error");
            l->final = open_error_is_final(e);
            return MTR_E_CONNECT;
        }
    } else if (tcp_connect(l, timeout_ms) != MTR_OK) {
        return MTR_E_CONNECT;
    }
    l->connected = 1;
    l->generation++;
    return MTR_OK;
}

/*
 * The verdict on a reply, as a code, with l->why naming the wrong field (positions differ:
 * Modbus TCP has the MBAP header before unit and function, RTU starts with them). -1: more
 * bytes needed.
 */
static int judge(mtr_link *l, mtr__reply_verdict v, const uint8_t *buf, int unit, int fc,
                 uint16_t count)
{
    size_t u = l->ctx ? 0 : 6; /* where the unit id is; the function follows it */
    switch (v) {
    case MTR__REPLY_MORE:
        return -1;
    case MTR__REPLY_DATA:
        return MTR_OK;
    case MTR__REPLY_EXCEPTION:
        return MTR_E_EXCEPTION;
    case MTR__REPLY_BAD_TID:
        set_why(l, "reply to transaction %u, not %u (stale or forged frame)",
                (unsigned)buf[0] << 8 | buf[1], (unsigned)l->tid);
        break;
    case MTR__REPLY_BAD_PROTOCOL:
        set_why(l, "reply with protocol id %u, not 0 (not Modbus TCP)",
                (unsigned)buf[2] << 8 | buf[3]);
        break;
    case MTR__REPLY_BAD_UNIT:
        set_why(l, "reply from unit %u, not %d", buf[u], unit);
        break;
    case MTR__REPLY_BAD_FUNCTION:
        set_why(l, "reply with function %u to a function %d request", buf[u + 1], fc);
        break;
    case MTR__REPLY_BAD_LENGTH:
        set_why(l, "reply length field %u does not fit %u registers",
                (unsigned)buf[4] << 8 | buf[5], (unsigned)count);
        break;
    case MTR__REPLY_BAD_COUNT:
        set_why(l, "reply byte count %u, not %u", buf[u + 2], 2u * count);
        break;
    case MTR__REPLY_BAD_CRC:
        set_why(l, "reply with a CRC error");
        break;
    case MTR__REPLY_BAD_ECHO:
        set_why(l, "write reply for registers %u+%u, not the ones written",
                (unsigned)buf[8] << 8 | buf[9], (unsigned)buf[10] << 8 | buf[11]);
        break;
    }
    return MTR_E_FRAME;
}

typedef mtr__reply_verdict (*check_fn)(const uint8_t *req, const uint8_t *buf, size_t len,
                                       size_t *need, uint16_t *dst, int *exception);

/*
 * Reads the reply to req from fd until check gives a verdict or the deadline passes: one
 * deadline for the whole reply, however the device spaces its bytes. Never reads more than
 * check asks for, so what follows a reply stays for the next drain.
 */
static int await_reply(mtr_link *l, int fd, check_fn check, const uint8_t *req, int unit, int fc,
                       uint16_t count, uint16_t *dst, int *exc, int64_t deadline, int timeout_ms)
{
    uint8_t buf[MTR__MBAP_MAX];
    size_t len = 0, need = 0;
    char r[96];
    for (;;) {
        int rc = judge(l, check(req, buf, len, &need, dst, exc), buf, unit, fc, count);
        if (rc != -1)
            return rc;
        int w = wait_fd(fd, POLLIN, deadline);
        if (w == 0) {
            if (len == 0)
                set_why(l, "no reply (timeout) in %d ms", timeout_ms);
            else if (len >= (l->ctx ? 3 : MTR__MBAP_HEADER + 1)) /* the size is known */
                set_why(l, "incomplete reply (timeout): %zu of %zu bytes in %d ms", len, need,
                        timeout_ms);
            else
                set_why(l, "incomplete reply (timeout): %zu bytes in %d ms", len, timeout_ms);
            return MTR_E_TIMEOUT;
        }
        ssize_t n = w < 0 ? -1 : read(fd, buf + len, need - len);
        if (n > 0) {
            len += (size_t)n;
        } else if (n == 0 && !l->ctx) {
            set_why(l, "connection closed by the device after %zu bytes of the reply", len);
            return MTR_E_CLOSED;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            set_why(l, "%s: %s", l->ctx ? "serial port failed" : "connection dropped",
                    reason(errno, r, sizeof r));
            return MTR_E_CLOSED;
        }
        /* n == 0 on a serial port: nothing yet (VMIN 0); poll again until the deadline */
    }
}

/* Writes all of p within the deadline. MTR_OK, MTR_E_TIMEOUT or MTR_E_CLOSED (l->why set). */
static int send_request(mtr_link *l, int fd, const uint8_t *p, size_t n, int64_t deadline,
                        int timeout_ms)
{
    char r[96];
    size_t sent = 0;
    while (sent < n) {
        ssize_t w = l->ctx ? write(fd, p + sent, n - sent)
                           : send(fd, p + sent, n - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline) <= 0) {
                set_why(l, "cannot send the request in %d ms", timeout_ms);
                return MTR_E_TIMEOUT;
            }
        } else {
            set_why(l, "%s: %s", l->ctx ? "serial port failed" : "connection dropped",
                    reason(errno, r, sizeof r));
            return MTR_E_CLOSED;
        }
    }
    return MTR_OK;
}

/*
 * One RTU request on the port libmodbus opened and configured (its termios setup), framed and
 * checked here (rtu.h) so that one deadline bounds the whole reply, as on TCP.
 */
static int rtu_once(mtr_link *l, int unit, int fc, uint16_t addr, uint16_t count, uint16_t *dst,
                    int timeout_ms, int *exc)
{
    int fd = modbus_get_socket(l->ctx);
    uint8_t req[MTR__RTU_REQUEST_LEN];
    /* A unit that timed out may still answer, at any time later: during the backoff, the
     * pause or other units' turns. Whatever sits in the input buffer now is such a late reply
     * (RTU has no transaction id to tell it apart); read after our request it would pass for
     * the answer (same unit, same length: an old poll's values). */
    tcflush(fd, TCIFLUSH);
    mtr__rtu_request(req, (uint8_t)unit, (uint8_t)fc, addr, count);
    int64_t deadline = mono_ms() + timeout_ms;
    int rc = send_request(l, fd, req, sizeof req, deadline, timeout_ms);
    if (rc == MTR_OK)
        rc = await_reply(l, fd, mtr__rtu_check_reply, req, unit, fc, count, dst, exc, deadline,
                         timeout_ms);
    return rc;
}

/*
 * Empties the socket's receive buffer before a request: bytes waiting now answer nothing we
 * asked (a device's second copy of a reply, a frame it sent unasked); read after our request
 * they could pass for its answer. They are discarded and counted. MTR_OK, or MTR_E_CLOSED
 * when the device closed the connection (idle gateways do) or it failed.
 */
static int tcp_drain(mtr_link *l)
{
    uint8_t junk[512];
    for (;;) {
        ssize_t n = recv(l->fd, junk, sizeof junk, MSG_DONTWAIT);
        if (n > 0) {
            l->stale_bytes += (uint64_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return MTR_OK;
        if (n < 0 && errno == EINTR)
            continue;
        return MTR_E_CLOSED;
    }
}

/*
 * One Modbus TCP request and its reply within one deadline, timeout_ms after the request
 * went out. Every reply is checked against the request (transaction id, protocol id 0, unit,
 * function, length, byte count: mtr__mbap_check_reply) before a register of it is used.
 */
static int tcp_once(mtr_link *l, int unit, int fc, uint16_t addr, uint16_t count, uint16_t *dst,
                    int timeout_ms, int *exc)
{
    uint8_t req[MTR__REQUEST_LEN];
    mtr__mbap_request(req, ++l->tid, (uint8_t)unit, (uint8_t)fc, addr, count);
    int64_t deadline = mono_ms() + timeout_ms;
    int rc = send_request(l, l->fd, req, sizeof req, deadline, timeout_ms);
    if (rc == MTR_OK)
        rc = await_reply(l, l->fd, mtr__mbap_check_reply, req, unit, fc, count, dst, exc,
                         deadline, timeout_ms);
    return rc;
}

/* One write (function fc: 6 or 16) and its checked reply, as tcp_once. */
static int tcp_write_once(mtr_link *l, int unit, int fc, uint16_t addr, uint16_t count,
                          const uint16_t *src, int timeout_ms, int *exc)
{
    uint8_t req[MTR__WRITE_REQUEST_MAX];
    size_t n = mtr__mbap_write_request(req, ++l->tid, (uint8_t)unit, (uint8_t)fc, addr, count,
                                       src);
    int64_t deadline = mono_ms() + timeout_ms;
    int rc = send_request(l, l->fd, req, n, deadline, timeout_ms);
    if (rc == MTR_OK)
        rc = await_reply(l, l->fd, mtr__mbap_check_write_reply, req, unit, fc, count, NULL, exc,
                         deadline, timeout_ms);
    return rc;
}

/* A write over a serial line, through libmodbus (it checks unit, function and CRC). */
static int rtu_write_once(mtr_link *l, int unit, int fc, uint16_t addr, uint16_t count,
                          const uint16_t *src, int *exc)
{
    char r[96];
    modbus_flush(l->ctx);
    if (modbus_set_slave(l->ctx, unit) != 0)
        return MTR_E_INVAL;
    int n = fc == 6 ? modbus_write_register(l->ctx, addr, src[0])
                    : modbus_write_registers(l->ctx, addr, count, src);
    if (n == (fc == 6 ? 1 : (int)count))
        return MTR_OK;
    int e = errno;
    if (e > MODBUS_ENOBASE && e < MODBUS_ENOBASE + 0x0C) {
        *exc = e - MODBUS_ENOBASE;
        return MTR_E_EXCEPTION;
    }
    set_why(l, "write failed: %s", e == ETIMEDOUT ? "no reply (timeout)" : reason(e, r, sizeof r));
    return e == ETIMEDOUT ? MTR_E_TIMEOUT : MTR_E_FRAME;
}

/*
 * One request with the retry policy of d (the device's own timeouts on a shared link): a read
 * of count registers of table fc (3 or 4) into dst, or, with src, a write of count registers
 * from src (fc 16, or 6 for one register). A setpoint write carries absolute values, so sending
 * it again after a lost reply does no harm.
 */
static int link_exchange(mtr_link *l, const mtr_device_config *d, int fc, uint16_t addr,
                         uint16_t count, uint16_t *dst, const uint16_t *src, req_info *info)
{
    int rc = MTR_E_INVAL;
    info->exception = 0;
    info->attempts = 0;
    l->why[0] = '\0';
    l->final = 0;
    if (src ? !((fc == 16 && count >= 1 && count <= MTR__WRITE_MAX) || (fc == 6 && count == 1))
            : count == 0 || count > MTR__READ_MAX || (fc != 3 && fc != 4))
        return MTR_E_INVAL;
    for (int k = 0; k <= d->retries; k++) {
        if (k > 0 && d->retry_backoff_ms > 0)
            sleep_ms(d->retry_backoff_ms << (k - 1 < 10 ? k - 1 : 10));
        info->attempts = k + 1;
        rc = ensure_connected(l, d->timeout_ms);
        if (rc == MTR_OK && !l->ctx && tcp_drain(l) != MTR_OK) {
            /* closed while idle (gateways drop quiet connections): a new one, same attempt */
            mtr_link_close(l);
            rc = ensure_connected(l, d->timeout_ms);
        }
        if (rc) {
            if (l->final)
                return rc;
            continue;
        }
        if (src)
            rc = l->ctx ? rtu_write_once(l, d->unit, fc, addr, count, src, &info->exception)
                        : tcp_write_once(l, d->unit, fc, addr, count, src, d->timeout_ms,
                                         &info->exception);
        else
            rc = l->ctx ? rtu_once(l, d->unit, fc, addr, count, dst, d->timeout_ms,
                                   &info->exception)
                        : tcp_once(l, d->unit, fc, addr, count, dst, d->timeout_ms,
                                   &info->exception);
        if (rc == MTR_OK) {
            l->why[0] = '\0';
            return MTR_OK;
        }
        if (rc == MTR_E_EXCEPTION) {
            set_why(l, "exception %d (%s)", info->exception,
                    modbus_strerror(MODBUS_ENOBASE + info->exception));
            if (info->exception != MODBUS_EXCEPTION_ACKNOWLEDGE &&
                info->exception != MODBUS_EXCEPTION_SLAVE_OR_SERVER_BUSY)
                return rc;
            continue;
        }
        /* A late reply would be read as the answer to the next request: start afresh (a new
         * TCP connection; a serial line is flushed before every request). */
        if (!l->ctx || rc == MTR_E_CLOSED)
            mtr_link_close(l);
    }
    return rc;
}

int mtr_link_read(mtr_link *l, int unit, int fc, uint16_t addr, uint16_t count, uint16_t *dst,
                  int *exception)
{
    req_info info;
    mtr_device_config d = l->cfg;
    d.unit = unit;
    int rc = link_exchange(l, &d, fc, addr, count, dst, NULL, &info);
    if (exception)
        *exception = info.exception;
    return rc;
}

int mtr_link_write(mtr_link *l, int unit, int fc, uint16_t addr, uint16_t count,
                   const uint16_t *src, int *exception)
{
    req_info info;
    mtr_device_config d = l->cfg;
    d.unit = unit;
    int rc = src ? link_exchange(l, &d, fc, addr, count, NULL, src, &info) : MTR_E_INVAL;
    if (exception)
        *exception = src ? info.exception : 0;
    return rc;
}

/* ---- devices ---- */

mtr_device *mtr_device_new(const mtr_device_config *cfg)
{
    mtr_device *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->cfg = *cfg;
    if (!d->cfg.map && d->cfg.profile != MTR_PROFILE_SUNSPEC && d->cfg.profile != MTR_PROFILE_MAP)
        d->cfg.map = mtr_sdm_map(mtr_profile_name(d->cfg.profile));
    mtr_device_counter_params(cfg, &d->params);
    d->plan_rc = d->cfg.map ? mtr_map_plan(d->cfg.map, &d->plan) : MTR_E_INVAL;
    snprintf(d->meta.meter_id, sizeof d->meta.meter_id, "%s", cfg->id);
    snprintf(d->meta.profile, sizeof d->meta.profile, "%s", mtr_profile_name(cfg->profile));
    return d;
}

void mtr_device_free(mtr_device *d)
{
    if (!d)
        return;
    mtr_link_free(d->own);
    free(d);
}

const mtr_device_config *mtr_device_config_of(const mtr_device *d)
{
    return &d->cfg;
}

const mtr_meta *mtr_device_meta(const mtr_device *d)
{
    return &d->meta;
}

const char *mtr_device_error(const mtr_device *d)
{
    return d->err;
}

static void set_err(mtr_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(mtr_device *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
}

/* The mtr_read_fn the SunSpec module reads through; records the first failure's detail. */
typedef struct {
    mtr_device *dev;
    mtr_link *link;
} read_ctx;

/* "<endpoint> unit <u>: <the link's reason> after <n> attempts reading <table> <addr>+<count>":
 * one message, each fact once. */
static void describe(mtr_device *d, const mtr_link *l, int rc, int fc, uint16_t addr,
                     uint16_t count, const req_info *info)
{
    char ep[MTR_HOST_MAX + 16];
    endpoint(&l->cfg, ep, sizeof ep);
    const char *why = l->why[0] ? l->why : mtr_strerror(rc);
    if (rc == MTR_E_CONNECT && l->final)
        set_err(d, "%s: %s (tried again at the next poll)", ep, why);
    else if (rc == MTR_E_CONNECT)
        set_err(d, "%s: %s after %d attempts", ep, why, info->attempts);
    else
        set_err(d, "%s unit %d: %s after %d attempts reading %s %u+%u", ep, d->cfg.unit, why,
                info->attempts, fc == 3 ? "holding" : "input", addr, count);
}

static int read_fn(void *ctx, int fc, uint16_t addr, uint16_t count, uint16_t *dst)
{
    read_ctx *c = ctx;
    req_info info;
    int rc = link_exchange(c->link, &c->dev->cfg, fc, addr, count, dst, NULL, &info);
    if (rc)
        describe(c->dev, c->link, rc, fc, addr, count, &info);
    return rc;
}

static int read_sunspec(mtr_device *d, mtr_link *l, mtr_values *v, int *meta_fresh)
{
    read_ctx c = {d, l};
    for (int attempt = 0; attempt < 2; attempt++) {
        /* a new connection may lead to another device (a replaced inverter): discover again */
        if (!d->have_chain || d->chain_gen != l->generation) {
            d->have_chain = 0;
            uint64_t gen_before = l->generation;
            int rc = mtr_sunspec_discover(read_fn, &c, &d->chain);
            if (rc) {
                char ep[MTR_HOST_MAX + 16];
                endpoint(&l->cfg, ep, sizeof ep);
                /* a failed request has said why already (describe); the chain's own verdict
                 * (no marker, no model) is said here */
                if (rc != MTR_E_TIMEOUT && rc != MTR_E_CLOSED && rc != MTR_E_CONNECT &&
                    rc != MTR_E_FRAME && rc != MTR_E_EXCEPTION)
                    set_err(d, "%s unit %d: %s", ep, d->cfg.unit, mtr_strerror(rc));
                return rc;
            }
            d->have_chain = 1;
            d->chain_gen = l->generation > gen_before ? l->generation : gen_before;
            rc = mtr_sunspec_meta(read_fn, &c, &d->chain, &d->meta);
            if (rc)
                return rc;
            d->meta_gen = l->generation;
            *meta_fresh = 1;
        }
        int rc = mtr_sunspec_read(read_fn, &c, &d->chain, v);
        if (rc != MTR_E_CHAIN)
            return rc;
        d->have_chain = 0; /* the chain moved under us: rediscover once */
    }
    set_err(d, "SunSpec model chain changed twice in one poll");
    return MTR_E_CHAIN;
}

static int read_map(mtr_device *d, mtr_link *l, mtr_values *v, int *meta_fresh)
{
    uint16_t regs[MTR_PLAN_MAX][MTR_READ_MAX];
    const uint16_t *blocks[MTR_PLAN_MAX];
    read_ctx c = {d, l};
    if (d->plan_rc) {
        set_err(d, "register map has no usable plan: %s", mtr_strerror(d->plan_rc));
        return MTR_E_CONFIG;
    }
    for (size_t i = 0; i < d->plan.n; i++) {
        const mtr_block *b = &d->plan.b[i];
        int rc = read_fn(&c, b->fc, b->addr, b->count, regs[i]);
        if (rc)
            return rc;
        blocks[i] = regs[i];
    }
    mtr_map_decode(d->cfg.map, &d->plan, blocks, v);
    if (d->meta_gen != l->generation) {
        snprintf(d->meta.make, sizeof d->meta.make, "%s", d->cfg.map->make);
        snprintf(d->meta.model, sizeof d->meta.model, "%s", d->cfg.map->model);
        d->meta.serial[0] = '\0';
        d->meta_gen = l->generation;
        *meta_fresh = 1;
    }
    return MTR_OK;
}

/* Device-level conventions on top of the profile: sign, swapped counters, battery. */
static void adjust(const mtr_device_config *cfg, mtr_values *v)
{
    if (cfg->export_positive)
        v->power_w = -v->power_w;
    if (cfg->swap_energy) {
        mtr_values t = *v;
        v->import_wh = t.export_wh, v->export_wh = t.import_wh;
        v->import_q = t.export_q, v->export_q = t.import_q;
        v->import_wrap_wh = t.export_wrap_wh, v->export_wrap_wh = t.import_wrap_wh;
        v->import_tick_wh = t.export_tick_wh, v->export_tick_wh = t.import_tick_wh;
    }
    if (cfg->battery == MTR_BATTERY_NO)
        v->has_soc = 0;
}

int mtr_device_read(mtr_device *d, mtr_link *link, mtr_clock_fn clock, void *clock_ctx,
                    mtr_sample *s, int *meta_fresh)
{
    mtr_values v;
    int fresh = 0;
    memset(s, 0, sizeof *s);
    snprintf(s->meter_id, sizeof s->meter_id, "%s", d->cfg.id);
    d->err[0] = '\0';
    if (!link) {
        if (!d->own && !(d->own = mtr_link_new(&d->cfg))) {
            set_err(d, "cannot set up the Modbus context");
            mtr_filter_fail(&d->filter, s);
            s->ts_ms = (clock ? clock : realtime_ms)(clock_ctx);
            return MTR_E_NOMEM;
        }
        link = d->own;
    }
    memset(&v, 0, sizeof v);
    int rc = d->cfg.profile == MTR_PROFILE_SUNSPEC ? read_sunspec(d, link, &v, &fresh)
                                                   : read_map(d, link, &v, &fresh);
    s->ts_ms = (clock ? clock : realtime_ms)(clock_ctx);
    if (meta_fresh)
        *meta_fresh = rc == MTR_OK && fresh;
    if (rc) {
        if (d->err[0] == '\0')
            set_err(d, "%s", mtr_strerror(rc));
        mtr_filter_fail(&d->filter, s);
        return rc;
    }
    adjust(&d->cfg, &v);
    mtr_filter_apply(&d->filter, &d->params, &v, d->cfg.battery == MTR_BATTERY_YES, s);
    return MTR_OK;
}

void mtr_device_filter_get(const mtr_device *d, mtr_filter *out)
{
    *out = d->filter;
}

void mtr_device_filter_set(mtr_device *d, const mtr_filter *f)
{
    d->filter = *f;
    d->filter.imp.pending = d->filter.exp.pending = 0; /* a rejected track starts over */
}
