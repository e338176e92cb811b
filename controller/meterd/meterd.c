/*
 * The meter daemon (see meterd.h): its config, the once mode and the loop. Polls every
 * configured Modbus device with the meters library's poller and publishes each reading on the
 * bus: state (retained, QoS 1) through the SQLite outbox so nothing is lost while the broker is
 * away, meta once per connection, and optionally Home Assistant discovery.
 *
 * One thread drives the bus and the outbox (bus.h's threading rule); the poller's workers only
 * fill its bounded queue, which this thread drains.
 */
#define _POSIX_C_SOURCE 200809L
#include "meterd/meterd.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus/bus.h"
#include "bus/bus_config.h"
#include "bus/ha_discovery.h"
#include "bus/outbox.h"
#include "bus/payload.h"
#include "common/service.h"
#include "common/interval.h"
#include "common/log.h"
#include "common/wall_clock.h"
#include "meterd/meter_client_id.h"
#include "meterd/meter_state.h"
#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "mgx/poller.h"

#define METER_BATCH_MAX 512 /* readings moved from the poller queue to the outbox per step */
#define STATE_SAVE_MS 60000 /* counter state saved at least this often while it changes */

/* The time stamped on readings: the wall clock, or the accelerated clock of a simulation run
 * (--clock-speed, --clock-anchor), so that agents and controller see readings in their time. */
static int64_t reading_clock(void *ctx)
{
    return ctl_clock_sim_ms(ctx, ctl_wall_ms());
}

/* The poller's options: NULL for the wall clock, else o reading the copy of mo->clock in
 * clock (both the caller's, alive as long as the poller). */
static const mtr_poller_options *poller_options(const ctl_meterd_options *mo, ctl_clock *clock,
                                                mtr_poller_options *o)
{
    if (!mo->clock)
        return NULL;
    *clock = *mo->clock;
    memset(o, 0, sizeof *o);
    o->clock = reading_clock;
    o->clock_ctx = clock;
    return o;
}

/* ---- config: the meters library's sections through the loader's handler table ---- */

static int meter_key(void *ctx, const char *section, const char *key, const char *value, int line,
                     char *err, size_t errlen)
{
    const ctl_meterd_file *f = ctx;
    int rc = mtr_config_handle(f->meters, section, key, value, line, err, errlen);
    return rc == MTR_CFG_NOT_MINE ? CFG_NOT_MINE : rc == MTR_OK ? CFG_OK : CFG_E_BAD;
}

static int meter_finish(void *ctx, const char *path, char *err, size_t errlen)
{
    const ctl_meterd_file *f = ctx;
    (void)path; /* set with mtr_config_set_source */
    if (mtr_config_finish(f->meters, err, errlen) != MTR_OK)
        return CFG_E_BAD;
    if (mtr_config_count(f->meters) == 0 && f->ocmf.n == 0) {
        snprintf(err, errlen, "%s: no [meter ID] or [ocmf ID] section: nothing to read", path);
        return CFG_E_BAD;
    }
    return CFG_OK;
}

int ctl_meterd_file_add(cfg_loader *l, ctl_meterd_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->meters = mtr_config_new();
    if (!f->meters || mtr_config_set_source(f->meters, path) != MTR_OK)
        return CFG_E_NOMEM;
    if (cfg_bus_add(l, &f->bus) || cfg_outbox_add(l, &f->outbox) || cfg_ha_add(l, &f->ha) ||
        cfg_loader_add(l, meter_key, meter_finish, f) || cfg_signing_add(l, &f->signing) ||
        cfg_ocmf_add(l, &f->ocmf) ||
        cfg_others_add(l, CFG_DAEMON_METER, &f->others))
        return CFG_E_NOMEM;
    return CFG_OK;
}

void ctl_meterd_file_clear(ctl_meterd_file *f)
{
    cfg_bus_clear(&f->bus);
    mtr_config_free(f->meters);
    f->meters = NULL;
}

/* Loads path into mc: CFG_OK, or an error after printing it. need_bus: the daemon publishes,
 * so [bus] (with community) is required; the once mode only reads the meters and prints. */
static int load_config(const char *path, ctl_meterd_file *mc, bool need_bus)
{
    char err[600];
    int rc = CFG_E_NOMEM;
    cfg_loader *l = cfg_loader_new();
    if (l && ctl_meterd_file_add(l, mc, path) == CFG_OK) {
        mc->bus.optional = !need_bus;
        rc = cfg_load(l, path, err, sizeof err);
        if (rc != CFG_OK)
            fprintf(stderr, "mgx meter: %s\n", err);
    }
    if (rc == CFG_E_NOMEM)
        fputs("mgx meter: out of memory\n", stderr);
    cfg_loader_free(l);
    return rc;
}

/* ---- --once ---- */

typedef struct {
    pthread_mutex_t lock;
    const mtr_config *cfg;
    mtr_poll_result *results; /* by device index */
    bool *done;
} once_ctx;

static size_t device_index(const mtr_config *cfg, const char *id)
{
    size_t n = mtr_config_count(cfg);
    for (size_t i = 0; i < n; i++)
        if (strcmp(mtr_config_device(cfg, i)->id, id) == 0)
            return i;
    return n;
}

static void once_cb(void *ctx, const mtr_poll_result *r)
{
    once_ctx *o = ctx;
    size_t i = device_index(o->cfg, r->sample.meter_id);
    pthread_mutex_lock(&o->lock);
    if (i < mtr_config_count(o->cfg)) {
        o->results[i] = *r;
        o->done[i] = true;
    }
    pthread_mutex_unlock(&o->lock);
}

/* One JSON line: the state body plus ok/meta, or ok=false with the reason. */
static void print_once_line(const mtr_device_config *d, const mtr_poll_result *r, bool done)
{
    json_t *j = NULL;
    char buf[1024], why[MTR_ERR_MAX];
    if (done && r->rc == MTR_OK) {
        int n = bus_state_encode(&r->sample, buf, sizeof buf);
        if (n > 0)
            j = json_loadb(buf, (size_t)n, 0, NULL);
        if (j) {
            json_object_set_new(j, "ok", json_true());
            json_object_set_new(j, "profile", json_string(mtr_profile_name(d->profile)));
            if (r->meta_fresh) {
                n = bus_meta_encode(&r->meta, buf, sizeof buf);
                json_t *m = n > 0 ? json_loadb(buf, (size_t)n, 0, NULL) : NULL;
                if (m) {
                    json_object_del(m, "meter_id");
                    json_object_set_new(j, "meta", m);
                }
            }
        } else {
            snprintf(why, sizeof why, "reading out of the publishable range");
        }
    } else {
        /* r->err already says what failed and why (modbus_device.h); the code's name only
         * stands in when there is no detail */
        snprintf(why, sizeof why, "%s",
                 !done ? "not polled" : r->err[0] ? r->err : mtr_strerror(r->rc));
    }
    if (!j)
        j = json_pack("{s:s, s:b, s:s, s:s}", "meter_id", d->id, "ok", 0, "profile",
                      mtr_profile_name(d->profile), "error", why);
    char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (line)
        printf("%s\n", line);
    free(line);
    json_decref(j);
}

static int run_once(const ctl_meterd_file *mc, const ctl_meterd_options *mo)
{
    size_t n = mtr_config_count(mc->meters);
    if (n == 0) { /* only [ocmf ID] sources */
        int st = ocmf_sources_once(&mc->ocmf, stdout);
        fflush(stdout);
        return st;
    }
    once_ctx o = {.cfg = mc->meters};
    pthread_mutex_init(&o.lock, NULL);
    o.results = calloc(n, sizeof *o.results);
    o.done = calloc(n, sizeof *o.done);
    mtr_poller_options po;
    ctl_clock clock;
    mtr_poller *p = mtr_poller_new(mc->meters, poller_options(mo, &clock, &po));
    int status = 1;
    if (!o.results || !o.done || !p) {
        fputs("mgx meter: out of memory\n", stderr);
        goto out;
    }
    int rc = mtr_poller_run_once(p, once_cb, &o);
    if (rc != MTR_OK) {
        fprintf(stderr, "mgx meter: %s\n", mtr_strerror(rc));
        goto out;
    }
    status = 0;
    for (size_t i = 0; i < n; i++) {
        print_once_line(mtr_config_device(mc->meters, i), &o.results[i], o.done[i]);
        if (!o.done[i] || o.results[i].rc != MTR_OK)
            status = 1;
    }
    if (ocmf_sources_once(&mc->ocmf, stdout) != 0)
        status = 1;
    fflush(stdout);
out:
    mtr_poller_free(p);
    free(o.results);
    free(o.done);
    pthread_mutex_destroy(&o.lock);
    return status;
}

/* ---- the daemon ---- */

typedef struct {
    mtr_meta meta;
    bool have_meta;
    bool meta_sent; /* on this connection */
    bool ha_sent;
    bool have_sample;
    bool battery;
    bool failing; /* the last poll failed (logged once per failure streak) */
    mtr_filter filter; /* counter state after the latest poll (saved to the state file) */
} device_state;

typedef struct {
    const char *id;
    size_t index; /* in config order */
} id_entry;

typedef struct {
    const ctl_meterd_file *mc;
    ctl_log log; /* "meter"; the bus and the outbox write through it */
    bus_client *bus;
    outbox *ob;
    device_state *dev;
    id_entry *by_id; /* sorted by id: a reading finds its device in O(log n) */
    meter_signer *signer; /* NULL: readings are published unsigned */
    ocmf_follow *ocmf;    /* the [ocmf ID] files followed; NULL when none */
    size_t n_dev;
    uint64_t readings, failures;
    char state_path[sizeof ((cfg_outbox *)0)->path + 16]; /* counter state file */
    bool state_dirty;   /* filters changed since the last save */
    bool state_urgent;  /* an offset or baseline changed: save before publishing */
    int64_t state_saved_ms;
    bool state_failed;  /* the last save failed (logged once per streak) */
} daemon_ctx;

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const id_entry *)a)->id, ((const id_entry *)b)->id);
}

static size_t find_device(const daemon_ctx *d, const char *id)
{
    id_entry key = {id, 0};
    const id_entry *e = bsearch(&key, d->by_id, d->n_dev, sizeof key, cmp_id);
    return e ? e->index : d->n_dev;
}

static void on_bus_state(void *user, bool up, int reason)
{
    daemon_ctx *d = user;
    (void)reason;
    if (!up)
        return;
    /* retained meta and discovery are renewed on every connection (the broker may have
     * restarted without persistence) */
    for (size_t i = 0; i < d->n_dev; i++)
        d->dev[i].meta_sent = d->dev[i].ha_sent = false;
}

static void publish_meta(daemon_ctx *d)
{
    const ctl_meterd_file *mc = d->mc;
    for (size_t i = 0; i < d->n_dev && bus_connected(d->bus); i++) {
        device_state *s = &d->dev[i];
        if (s->have_meta && !s->meta_sent) {
            char topic[BUS_TOPIC_MAX], body[1024];
            int n = bus_meta_encode(&s->meta, body, sizeof body);
            if (n < 0 ||
                bus_topic_meter_meta(topic, sizeof topic, mc->bus.community, s->meta.meter_id)) {
                s->meta_sent = true; /* cannot be encoded: not retried every loop */
                continue;
            }
            if (bus_publish(d->bus, topic, body, (size_t)n, 1, true, NULL, NULL) == BUS_OK)
                s->meta_sent = true;
        }
        if (mc->ha.enabled && s->have_meta && s->have_sample && !s->ha_sent) {
            ha_message msgs[HA_MAX_ENTITIES];
            size_t k = 0;
            int expire_s = ha_expire_after_s(mtr_config_device(mc->meters, i)->poll_ms);
            if (ha_discovery_build(mc->ha.prefix, mc->bus.community, bus_status_topic(d->bus),
                                   &s->meta, s->battery, expire_s, msgs, &k) != BUS_OK) {
                ctl_logf(&d->log, CTL_LOG_ERROR, "meter %s: cannot build Home Assistant discovery",
                         s->meta.meter_id);
                s->ha_sent = true;
                continue;
            }
            if (bus_pending(d->bus) + k > 900)
                continue; /* room for them all next time */
            bool ok = true;
            for (size_t m = 0; m < k; m++)
                ok = bus_publish(d->bus, msgs[m].topic, msgs[m].payload, msgs[m].len, 1, true, NULL,
                                 NULL) == BUS_OK &&
                     ok;
            s->ha_sent = ok;
        }
    }
}

/* Notes a device's counter state after a poll: an offset or a baseline that changed must be
 * on disk before the reading that shows it is published (a crash in between would publish the
 * next totals without it). */
static void note_filter(daemon_ctx *d, device_state *s, const mtr_filter *f)
{
    if (f->imp.offset_wh != s->filter.imp.offset_wh || f->exp.offset_wh != s->filter.exp.offset_wh ||
        f->imp.have != s->filter.imp.have || f->exp.have != s->filter.exp.have)
        d->state_urgent = d->state_dirty = true;
    if (f->imp.raw_wh != s->filter.imp.raw_wh || f->exp.raw_wh != s->filter.exp.raw_wh ||
        f->imp.ts_ms != s->filter.imp.ts_ms || f->exp.ts_ms != s->filter.exp.ts_ms)
        d->state_dirty = true;
    s->filter = *f;
}

/* Saves the counter state when urgent, or every STATE_SAVE_MS while it changes (force: now). */
static void save_state(daemon_ctx *d, bool force)
{
    int64_t now = ctl_wall_ms();
    if (!d->state_dirty || (!force && !d->state_urgent && now - d->state_saved_ms < STATE_SAVE_MS))
        return;
    meter_state_entry *e = calloc(d->n_dev, sizeof *e);
    char err[600];
    size_t n = 0;
    for (size_t i = 0; e && i < d->n_dev; i++) {
        snprintf(e[n].meter_id, sizeof e[n].meter_id, "%s",
                 mtr_config_device(d->mc->meters, i)->id);
        e[n++].filter = d->dev[i].filter;
    }
    if (e && ctl_meter_state_save(d->state_path, e, n, err, sizeof err) == 0) {
        d->state_dirty = d->state_urgent = d->state_failed = false;
        d->state_saved_ms = now;
    } else if (!d->state_failed) {
        ctl_logf(&d->log, CTL_LOG_ERROR, "cannot save the counter state: %s",
                 e ? err : "out of memory");
        d->state_failed = true;
        d->state_saved_ms = now; /* retried after STATE_SAVE_MS, not every loop */
        d->state_urgent = false;
    }
    free(e);
}

/* Puts the saved counter state back into the poller (before it starts). 0, or -1 after
 * printing why: a damaged file stops the daemon rather than restart every total. */
static int restore_state(daemon_ctx *d, mtr_poller *p)
{
    meter_state_entry *e = NULL;
    size_t n = 0;
    char err[600];
    if (ctl_meter_state_path(d->mc->outbox.path, d->state_path, sizeof d->state_path) != 0) {
        fputs("mgx meter: [outbox] path too long for the counter state file\n", stderr);
        return -1;
    }
    if (ctl_meter_state_load(d->state_path, &e, &n, err, sizeof err) != 0) {
        fprintf(stderr, "mgx meter: %s\n", err);
        return -1;
    }
    size_t restored = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = find_device(d, e[k].meter_id);
        if (i < d->n_dev && mtr_poller_restore(p, e[k].meter_id, &e[k].filter) == MTR_OK) {
            d->dev[i].filter = e[k].filter;
            restored++;
        }
    }
    if (n > 0)
        ctl_logf(&d->log, CTL_LOG_INFO, "counter state of %zu meters restored from %s", restored,
                 d->state_path);
    free(e);
    return 0;
}

/* Moves queued poll results into the outbox (one transaction per batch). */
static int drain_poller(daemon_ctx *d, mtr_poller *p)
{
    static outbox_item items[METER_BATCH_MAX];
    static char bodies[METER_BATCH_MAX][768]; /* a signed state is ~350 bytes */
    static char topics[METER_BATCH_MAX][BUS_TOPIC_MAX];
    size_t n = 0;
    mtr_poll_result r;
    while (p && n < METER_BATCH_MAX && mtr_poller_next(p, &r, 0) == MTR_OK) {
        size_t i = find_device(d, r.sample.meter_id);
        device_state *s = i < d->n_dev ? &d->dev[i] : NULL;
        if (r.meta_fresh && s) {
            s->meta = r.meta;
            s->have_meta = true;
            s->meta_sent = false;
        }
        if (s)
            note_filter(d, s, &r.filter);
        if (r.rc != MTR_OK) {
            d->failures++;
            if (s && !s->failing)
                ctl_logf(&d->log, CTL_LOG_WARN, "meter %s: read failed: %s", r.sample.meter_id,
                         r.err[0] ? r.err : mtr_strerror(r.rc));
            if (s)
                s->failing = true;
            continue; /* no reading to publish; the next poll tries again */
        }
        if (s && s->failing) {
            ctl_logf(&d->log, CTL_LOG_INFO, "meter %s: reading again", r.sample.meter_id);
            s->failing = false;
        }
        int len = meter_signer_encode(d->signer, &r.sample, bodies[n], sizeof bodies[n]);
        if (len < 0 || bus_topic_meter_state(topics[n], sizeof topics[n], d->mc->bus.community,
                                             r.sample.meter_id) != BUS_OK) {
            ctl_logf(&d->log, CTL_LOG_ERROR,
                     "meter %s: reading not publishable (values out of range)", r.sample.meter_id);
            continue;
        }
        if (s) {
            s->have_sample = true;
            s->battery = r.sample.soc_permille >= 0;
        }
        ctl_logf(&d->log, CTL_LOG_DEBUG, "%s", bodies[n]);
        items[n] = (outbox_item){topics[n], bodies[n], (size_t)len, 1, true};
        n++;
    }
    save_state(d, false);
    if (n == 0)
        return 0;
    d->readings += n;
    size_t acc = 0;
    int rc = outbox_push(d->ob, items, n, ctl_wall_ms(), &acc);
    if (rc == OUTBOX_E_DB)
        ctl_logf(&d->log, CTL_LOG_ERROR, "%zu readings could not be stored in the outbox", n);
    return (int)n;
}

/* [bus] client_id, or the default of meter_client_id.h; with the default and no [outbox] path,
 * an outbox left under the older default's name (meter-<hostname>) is kept on, so readings it
 * still holds are sent rather than stranded. 0, or -1 after logging why. */
static int pick_client_id(ctl_meterd_file *mc, const char *config_path, const ctl_log *lg)
{
    bool defaulted = !mc->bus.client_id[0];
    const char *first = mtr_config_count(mc->meters) ? mtr_config_device(mc->meters, 0)->id
                                                     : mc->ocmf.src[0].id;
    if (defaulted && ctl_meter_client_id(mc->bus.community, first, mc->bus.client_id) != 0) {
        ctl_logf(lg, CTL_LOG_ERROR,
                 "%s: set [bus] client_id: the default meter-<community>-<meter id> "
                 "would be longer than %d characters",
                 config_path, BUS_ID_MAX - 1);
        return -1;
    }
    if (mc->outbox.path[0])
        return 0;
    if (ctl_meter_outbox_path(config_path, mc->bus.client_id, mc->outbox.path,
                              sizeof mc->outbox.path) != 0) {
        ctl_logf(lg, CTL_LOG_ERROR, "%s: set [outbox] path: the default is too long", config_path);
        return -1;
    }
    if (!defaulted || access(mc->outbox.path, F_OK) == 0)
        return 0;
    char host[256] = "host", legacy_id[BUS_ID_MAX], legacy[sizeof mc->outbox.path];
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    ctl_meter_legacy_client_id(host, legacy_id);
    if (ctl_meter_outbox_path(config_path, legacy_id, legacy, sizeof legacy) == 0 &&
        access(legacy, F_OK) == 0) {
        ctl_logf(lg, CTL_LOG_INFO, "keeping the outbox %s of the older default client id %s",
                 legacy, legacy_id);
        snprintf(mc->outbox.path, sizeof mc->outbox.path, "%s", legacy);
    }
    return 0;
}

static int run_daemon(ctl_meterd_file *mc, const ctl_meterd_options *mo,
                      volatile sig_atomic_t *stop)
{
    int status = 1;
    daemon_ctx d = {.mc = mc, .log = {"meter", mo->log_level, NULL, NULL}};
    mtr_poller *p = NULL;
    char err[600];
    if (pick_client_id(mc, mo->config_path, &d.log) != 0)
        return 1;
    if (meter_signer_open(&mc->signing, &d.signer, err, sizeof err) != 0) {
        fprintf(stderr, "mgx meter: %s\n", err);
        return 1;
    }
    if (d.signer)
        ctl_logf(&d.log, CTL_LOG_INFO, "signing readings with %s for participant %s",
                 mc->signing.key_path, mc->signing.participant);
    if (ocmf_follow_new(&mc->ocmf, &d.ocmf) != 0)
        goto out;
    for (size_t i = 0; i < mc->ocmf.n; i++)
        ctl_logf(&d.log, CTL_LOG_INFO, "meter %s: OCMF records from %s", mc->ocmf.src[i].id,
                 mc->ocmf.src[i].path);
    d.n_dev = mtr_config_count(mc->meters);
    d.dev = calloc(d.n_dev, sizeof *d.dev);
    d.by_id = calloc(d.n_dev, sizeof *d.by_id);
    if (!d.dev || !d.by_id)
        goto out;
    for (size_t i = 0; i < d.n_dev; i++)
        d.by_id[i] = (id_entry){mtr_config_device(mc->meters, i)->id, i};
    qsort(d.by_id, d.n_dev, sizeof *d.by_id, cmp_id);
    outbox_config oc = {.path = mc->outbox.path,
                        .max_messages = mc->outbox.max_messages,
                        .policy = mc->outbox.policy,
                        .window = mc->outbox.window,
                        .log = ctl_log_sink,
                        .log_user = &d.log};
    if (outbox_open(&oc, &d.ob, err, sizeof err) != OUTBOX_OK) {
        fprintf(stderr, "mgx meter: %s\n", err);
        goto out;
    }
    bus_config bc;
    cfg_bus_config(&mc->bus, &bc);
    /* logged in for a home (h-017.meter, or h-017 before the meter daemon had a login of its
     * own): the status goes under the home's level, where its read-only Home Assistant login
     * may read it (config/mosquitto/acl) */
    char owner[BUS_ID_MAX] = "";
    size_t home_len = bc.username ? strcspn(bc.username, ".") : 0;
    if (home_len > 0 && home_len < sizeof owner) {
        snprintf(owner, sizeof owner, "%.*s", (int)home_len, bc.username);
        if (!bus_id_valid(owner))
            owner[0] = '\0';
    }
    bc.status_owner = owner[0] ? owner : NULL;
    bc.log = ctl_log_sink;
    bc.log_user = &d.log;
    bc.log_level = mo->log_level;
    int brc;
    d.bus = bus_new(&bc, NULL, on_bus_state, &d, &brc);
    if (!d.bus) {
        fprintf(stderr, "mgx meter: cannot set up the bus client: %s\n", bus_strerror(brc));
        goto out;
    }
    mtr_poller_options po;
    ctl_clock clock;
    /* a file of [ocmf ID] sources only has nothing to poll over Modbus */
    if (d.n_dev > 0) {
        p = mtr_poller_new(mc->meters, poller_options(mo, &clock, &po));
        if (p && restore_state(&d, p) != 0)
            goto out;
        if (!p || mtr_poller_start(p) != MTR_OK) {
            fputs("mgx meter: cannot start the poller\n", stderr);
            goto out;
        }
    }
    bus_start(d.bus);
    ctl_logf(&d.log, CTL_LOG_INFO,
             "polling %zu devices (%zu lanes, %u threads); broker %s:%d as %s; "
             "outbox %s",
             d.n_dev, p ? mtr_poller_lanes(p) : 0, p ? mtr_poller_threads(p) : 0u, mc->bus.host,
             bc.port ? bc.port : (bc.tls_ca ? 8883 : 1883), mc->bus.client_id, mc->outbox.path);
    ctl_service svc;
    ctl_service_init(&svc);
    if (ctl_service_notify(&svc, "READY=1") != 0)
        ctl_logf(&d.log, CTL_LOG_WARN, "service manager: cannot notify %s: %s", svc.path,
                 strerror(errno));
    while (!*stop) {
        bus_loop(d.bus, 10);
        while (drain_poller(&d, p) == METER_BATCH_MAX)
            ;
        d.readings += (uint64_t)ocmf_follow_pump(d.ocmf, d.ob, mc->bus.community, ctl_wall_ms(),
                                                 &d.log);
        publish_meta(&d);
        outbox_pump(d.ob, d.bus);
        ctl_service_tick(&svc, ctl_wall_ms());
    }
    ctl_service_notify(&svc, "STOPPING=1");
    ctl_logf(&d.log, CTL_LOG_INFO, "stopping");
    /* Nothing polled is dropped on the way out: what the broker does not take in a moment
     * stays in the outbox for the next start. */
    if (p)
        mtr_poller_stop(p);
    while (drain_poller(&d, p) > 0)
        ;
    save_state(&d, true);
    for (int t = 0; t < 100 && bus_connected(d.bus) && outbox_count(d.ob) > 0; t++) {
        outbox_pump(d.ob, d.bus);
        bus_loop(d.bus, 20);
    }
    bus_stop(d.bus, 2000);
    outbox_pump(d.ob, d.bus); /* delete what was acknowledged at the end */
    outbox_stats st;
    outbox_stats_get(d.ob, &st);
    ctl_logf(&d.log, CTL_LOG_INFO,
             "stopped: %llu readings, %llu failed polls; outbox: %llu published, "
             "%llu waiting, %llu dropped, %llu refused",
             (unsigned long long)d.readings, (unsigned long long)d.failures,
             (unsigned long long)st.published, (unsigned long long)st.queued,
             (unsigned long long)st.dropped_full, (unsigned long long)st.refused_full);
    status = 0;
out:
    mtr_poller_free(p);
    bus_free(d.bus);
    outbox_close(d.ob);
    free(d.dev);
    free(d.by_id);
    meter_signer_free(d.signer);
    ocmf_follow_free(d.ocmf);
    return status;
}

/* Loads mo->config_path, then runs what (run_once or run_daemon) on it. */
static int with_config(const ctl_meterd_options *mo, volatile sig_atomic_t *stop)
{
    ctl_meterd_file mc;
    memset(&mc, 0, sizeof mc);
    int status = 1;
    if (load_config(mo->config_path, &mc, stop != NULL) == CFG_OK)
        status = stop ? run_daemon(&mc, mo, stop) : run_once(&mc, mo);
    ctl_meterd_file_clear(&mc);
    return status;
}

int ctl_meterd_once(const ctl_meterd_options *o)
{
    return with_config(o, NULL);
}

int ctl_meterd_run(const ctl_meterd_options *o, volatile sig_atomic_t *stop)
{
    return stop ? with_config(o, stop) : 1;
}
