/*
 * The Modbus client: a link (one libmodbus context: a TCP connection or a serial port) with
 * lazy connects, retries with backoff and a clean reconnect after anything that can leave the
 * byte stream out of step, and a device that polls one configured meter over a link through
 * its profile (SunSpec chain, Eastron or user map) and its counter filter. See
 * mgx/modbus_device.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "mgx/modbus_device.h"
#include "mgx/meter_error.h"
#include "mgx/sdm.h"
#include "mgx/sunspec.h"

#include <errno.h>
#include <modbus.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mtr_link {
    modbus_t *ctx;
    mtr_device_config cfg; /* transport settings and the link's own retry policy */
    int connected;
    uint64_t generation;
    int timeout_ms; /* the response timeout currently set on ctx */
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
    char err[160];
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

mtr_link *mtr_link_new(const mtr_device_config *cfg)
{
    mtr_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->cfg = *cfg;
    if (cfg->transport == MTR_TCP) {
        char port[16];
        snprintf(port, sizeof port, "%d", cfg->port);
        l->ctx = modbus_new_tcp_pi(cfg->host, port);
    } else {
        l->ctx = modbus_new_rtu(cfg->device, cfg->baud, cfg->parity, cfg->data_bits,
                                cfg->stop_bits);
    }
    if (!l->ctx) {
        free(l);
        return NULL;
    }
    l->timeout_ms = -1;
    return l;
}

void mtr_link_close(mtr_link *l)
{
    if (l && l->connected) {
        modbus_close(l->ctx);
        l->connected = 0;
    }
}

void mtr_link_free(mtr_link *l)
{
    if (!l)
        return;
    mtr_link_close(l);
    modbus_free(l->ctx);
    free(l);
}

uint64_t mtr_link_generation(const mtr_link *l)
{
    return l->generation;
}

static void set_timeout(mtr_link *l, int ms)
{
    if (l->timeout_ms == ms)
        return;
    uint32_t s = (uint32_t)(ms / 1000), us = (uint32_t)(ms % 1000) * 1000u;
    modbus_set_response_timeout(l->ctx, s, us);
    /* between bytes of one frame: the same bound, a stalled half frame is a failure */
    modbus_set_byte_timeout(l->ctx, s, us);
    l->timeout_ms = ms;
}

static int ensure_connected(mtr_link *l, int timeout_ms)
{
    if (l->connected)
        return MTR_OK;
    set_timeout(l, timeout_ms); /* libmodbus bounds a TCP connect by the response timeout */
    if (modbus_connect(l->ctx) != 0)
        return MTR_E_CONNECT;
    l->connected = 1;
    l->generation++;
    return MTR_OK;
}

/* Maps a failed libmodbus read to a code; *exc gets an exception's number. */
static int classify(int e, int *exc)
{
    if (e > MODBUS_ENOBASE && e < MODBUS_ENOBASE + MODBUS_EXCEPTION_MAX) {
        *exc = e - MODBUS_ENOBASE;
        return MTR_E_EXCEPTION;
    }
    switch (e) {
    case ETIMEDOUT:
        return MTR_E_TIMEOUT;
    case EMBBADCRC:
    case EMBBADDATA:
    case EMBBADEXC:
    case EMBUNKEXC:
    case EMBMDATA:
    case EMBBADSLAVE:
        return MTR_E_FRAME;
    default:
        return MTR_E_CLOSED; /* ECONNRESET, EPIPE, EBADF...: the connection is gone */
    }
}

/* One request with the retry policy of d (the device's own timeouts on a shared link). */
static int link_read(mtr_link *l, const mtr_device_config *d, int fc, uint16_t addr,
                     uint16_t count, uint16_t *dst, req_info *info)
{
    int rc = MTR_E_INVAL;
    info->exception = 0;
    info->attempts = 0;
    if (count == 0 || count > 125 || (fc != 3 && fc != 4))
        return MTR_E_INVAL;
    for (int k = 0; k <= d->retries; k++) {
        if (k > 0 && d->retry_backoff_ms > 0)
            sleep_ms(d->retry_backoff_ms << (k - 1 < 10 ? k - 1 : 10));
        info->attempts = k + 1;
        rc = ensure_connected(l, d->timeout_ms);
        if (rc)
            continue;
        set_timeout(l, d->timeout_ms);
        if (l->cfg.transport == MTR_RTU) {
            /* A unit that timed out may still answer, at any time later: during the backoff,
             * the pause or other units' turns. Whatever sits in the input buffer now is such a
             * late reply (RTU has no transaction id to tell it apart); read after our request
             * it would pass for the answer (same unit, same length: an old poll's values). */
            modbus_flush(l->ctx);
        }
        modbus_set_slave(l->ctx, d->unit);
        int n = fc == 3 ? modbus_read_registers(l->ctx, addr, count, dst)
                        : modbus_read_input_registers(l->ctx, addr, count, dst);
        if (n == count)
            return MTR_OK;
        rc = n < 0 ? classify(errno, &info->exception) : MTR_E_FRAME;
        if (rc == MTR_E_EXCEPTION) {
            if (info->exception != MODBUS_EXCEPTION_ACKNOWLEDGE &&
                info->exception != MODBUS_EXCEPTION_SLAVE_OR_SERVER_BUSY)
                return rc;
            continue;
        }
        /* A late reply would be read as the answer to the next request: start afresh (a new
         * TCP connection; a serial line is flushed before every request). */
        if (l->cfg.transport == MTR_TCP || rc == MTR_E_CLOSED)
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
    int rc = link_read(l, &d, fc, addr, count, dst, &info);
    if (exception)
        *exception = info.exception;
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

static void describe(mtr_device *d, int rc, int fc, uint16_t addr, uint16_t count,
                     const req_info *info)
{
    const char *table = fc == 3 ? "holding" : "input";
    if (rc == MTR_E_EXCEPTION)
        set_err(d, "exception %d reading %s %u+%u", info->exception, table, addr, count);
    else if (rc == MTR_E_CONNECT)
        set_err(d, "cannot connect to %s after %d attempts",
                d->cfg.transport == MTR_TCP ? d->cfg.host : d->cfg.device, info->attempts);
    else
        set_err(d, "%s after %d attempts reading %s %u+%u", mtr_strerror(rc), info->attempts,
                table, addr, count);
}

static int read_fn(void *ctx, int fc, uint16_t addr, uint16_t count, uint16_t *dst)
{
    read_ctx *c = ctx;
    req_info info;
    int rc = link_read(c->link, &c->dev->cfg, fc, addr, count, dst, &info);
    if (rc)
        describe(c->dev, rc, fc, addr, count, &info);
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
                if (rc != MTR_E_TIMEOUT && rc != MTR_E_CLOSED && rc != MTR_E_CONNECT &&
                    rc != MTR_E_FRAME && rc != MTR_E_EXCEPTION)
                    set_err(d, "%s (unit %d)", mtr_strerror(rc), d->cfg.unit);
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
