/*
 * `mgx meter`: the meter daemon. Polls every configured Modbus device with the meters
 * library's poller and publishes each reading on the bus: state (retained, QoS 1) through the
 * SQLite outbox so nothing is lost while the broker is away, meta once per connection, and
 * optionally Home Assistant discovery. `--once` reads every device once and prints JSON lines,
 * for installers checking their wiring.
 *
 * One thread drives the bus and the outbox (bus.h's threading rule); the poller's workers only
 * fill its bounded queue, which this thread drains.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus/bus.h"
#include "bus/bus_config.h"
#include "bus/ha_discovery.h"
#include "common/interval.h"
#include "meterd/meter_client_id.h"
#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "mgx/poller.h"
#include "bus/outbox.h"
#include "common/opt.h"
#include "bus/payload.h"
#include "common/stop_signal.h"
#include "common/wall_clock.h"

#define METER_BATCH_MAX 512 /* readings moved from the poller queue to the outbox per step */

static const char USAGE[] =
    "usage: mgx meter CONFIG [--once] [--verbose] [--clock-speed N --clock-anchor REAL_S:SIM]\n"
    "\n"
    "Reads the Modbus meters configured in CONFIG and publishes their readings on the MQTT bus:\n"
    "  mgx/v1/<community>/meter/<id>/state   JSON reading, retained, QoS 1 (kept in a local\n"
    "                                        outbox while the broker is unreachable)\n"
    "  mgx/v1/<community>/meter/<id>/meta    make, model, serial, profile; retained\n"
    "  mgx/v1/<community>/status/<client_id> online / offline (last will); retained\n"
    "\n"
    "options:\n"
    "  --once      read every device once, print one JSON line per device on stdout and exit\n"
    "              (status 1 if any device failed); no broker needed\n"
    "  --verbose   log every reading and connection detail on stderr\n"
    "  --clock-speed N, --clock-anchor REAL_S:SIM\n"
    "              stamp readings with an accelerated clock (simulated meters, demos, tests),\n"
    "              the same as the controller's and agents' options of that name\n"
    "  --help      this text\n"
    "\n"
    "CONFIG sections: [bus], [outbox], [homeassistant], [meter ID], [map NAME]; a home's one\n"
    "file may also hold the agent's [agent], which the meter daemon skips.\n"
    "See docs/meter-daemon.md, docs/meters.md and docs/mqtt-topics.md.\n";

static int log_level = BUS_LOG_INFO;

/* The time stamped on readings: the wall clock, or the accelerated clock of a simulation run
 * (--clock-speed, --clock-anchor), so that agents and controller see readings in their time. */
static ctl_clock meter_clock;
static int clock_set;


static int64_t reading_clock(void *ctx)
{
    return ctl_clock_sim_ms(ctx, ctl_wall_ms());
}

static const mtr_poller_options *poller_options(mtr_poller_options *o)
{
    if (!clock_set)
        return NULL;
    memset(o, 0, sizeof *o);
    o->clock = reading_clock;
    o->clock_ctx = &meter_clock;
    return o;
}

static void daemon_log(void *user, int level, const char *msg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    (void)user;
    if (level <= log_level)
        fprintf(stderr, "mgx meter %s: %s\n", names[level & 3], msg);
}

__attribute__((format(printf, 2, 3))) static void logf_(int level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    daemon_log(NULL, level, msg);
}

/* ---- config: the meters library's sections through the loader's handler table ---- */

static int meter_key(void *ctx, const char *section, const char *key, const char *value,
                     int line, char *err, size_t errlen)
{
    int rc = mtr_config_handle(ctx, section, key, value, line, err, errlen);
    return rc == MTR_CFG_NOT_MINE ? CFG_NOT_MINE : rc == MTR_OK ? CFG_OK : CFG_E_BAD;
}

static int meter_finish(void *ctx, const char *path, char *err, size_t errlen)
{
    (void)path; /* set with mtr_config_set_source */
    if (mtr_config_finish(ctx, err, errlen) != MTR_OK)
        return CFG_E_BAD;
    if (mtr_config_count(ctx) == 0) {
        snprintf(err, errlen, "%s: no [meter ID] section: nothing to read", path);
        return CFG_E_BAD;
    }
    return CFG_OK;
}

typedef struct {
    cfg_bus bus;
    cfg_outbox outbox;
    cfg_ha ha;
    cfg_others others; /* the agent's [agent] in a home's shared file, skipped */
    mtr_config *meters;
} meter_conf;

static int load_config(const char *path, meter_conf *mc)
{
    char err[600];
    int rc = CFG_E_NOMEM;
    cfg_loader *l = cfg_loader_new();
    mc->meters = mtr_config_new();
    if (!l || !mc->meters || mtr_config_set_source(mc->meters, path) != MTR_OK)
        goto out;
    if (cfg_bus_add(l, &mc->bus) || cfg_outbox_add(l, &mc->outbox) || cfg_ha_add(l, &mc->ha) ||
        cfg_loader_add(l, meter_key, meter_finish, mc->meters) ||
        cfg_others_add(l, CFG_DAEMON_METER, &mc->others))
        goto out;
    rc = cfg_load(l, path, err, sizeof err);
    if (rc != CFG_OK)
        fprintf(stderr, "mgx meter: %s\n", err);
out:
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
    char buf[1024], why[256];
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
        snprintf(why, sizeof why, "%s%s%s", done ? mtr_strerror(r->rc) : "not polled",
                 done && r->err[0] ? ": " : "", done ? r->err : "");
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

static int run_once(const meter_conf *mc)
{
    size_t n = mtr_config_count(mc->meters);
    once_ctx o = {.cfg = mc->meters};
    pthread_mutex_init(&o.lock, NULL);
    o.results = calloc(n, sizeof *o.results);
    o.done = calloc(n, sizeof *o.done);
    mtr_poller_options po;
    mtr_poller *p = mtr_poller_new(mc->meters, poller_options(&po));
    int status = CTL_EXIT_FAILURE;
    if (!o.results || !o.done || !p) {
        fputs("mgx meter: out of memory\n", stderr);
        goto out;
    }
    int rc = mtr_poller_run_once(p, once_cb, &o);
    if (rc != MTR_OK) {
        fprintf(stderr, "mgx meter: %s\n", mtr_strerror(rc));
        goto out;
    }
    status = CTL_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        print_once_line(mtr_config_device(mc->meters, i), &o.results[i], o.done[i]);
        if (!o.done[i] || o.results[i].rc != MTR_OK)
            status = CTL_EXIT_FAILURE;
    }
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
} device_state;

typedef struct {
    const char *id;
    size_t index; /* in config order */
} id_entry;

typedef struct {
    const meter_conf *mc;
    bus_client *bus;
    outbox *ob;
    device_state *dev;
    id_entry *by_id; /* sorted by id: a reading finds its device in O(log n) */
    size_t n_dev;
    uint64_t readings, failures;
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
    const meter_conf *mc = d->mc;
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
            if (ha_discovery_build(mc->ha.prefix, mc->bus.community, bus_status_topic(d->bus),
                                   &s->meta, s->battery, msgs, &k) != BUS_OK) {
                logf_(BUS_LOG_ERROR, "meter %s: cannot build Home Assistant discovery",
                      s->meta.meter_id);
                s->ha_sent = true;
                continue;
            }
            if (bus_pending(d->bus) + k > 900)
                continue; /* room for them all next time */
            bool ok = true;
            for (size_t m = 0; m < k; m++)
                ok = bus_publish(d->bus, msgs[m].topic, msgs[m].payload, msgs[m].len, 1, true,
                                 NULL, NULL) == BUS_OK && ok;
            s->ha_sent = ok;
        }
    }
}

/* Moves queued poll results into the outbox (one transaction per batch). */
static int drain_poller(daemon_ctx *d, mtr_poller *p)
{
    static outbox_item items[METER_BATCH_MAX];
    static char bodies[METER_BATCH_MAX][512];
    static char topics[METER_BATCH_MAX][BUS_TOPIC_MAX];
    size_t n = 0;
    mtr_poll_result r;
    while (n < METER_BATCH_MAX && mtr_poller_next(p, &r, 0) == MTR_OK) {
        size_t i = find_device(d, r.sample.meter_id);
        device_state *s = i < d->n_dev ? &d->dev[i] : NULL;
        if (r.meta_fresh && s) {
            s->meta = r.meta;
            s->have_meta = true;
            s->meta_sent = false;
        }
        if (r.rc != MTR_OK) {
            d->failures++;
            if (s && !s->failing)
                logf_(BUS_LOG_WARN, "meter %s: read failed: %s%s%s", r.sample.meter_id,
                      mtr_strerror(r.rc), r.err[0] ? ": " : "", r.err);
            if (s)
                s->failing = true;
            continue; /* no reading to publish; the next poll tries again */
        }
        if (s && s->failing) {
            logf_(BUS_LOG_INFO, "meter %s: reading again", r.sample.meter_id);
            s->failing = false;
        }
        int len = bus_state_encode(&r.sample, bodies[n], sizeof bodies[n]);
        if (len < 0 || bus_topic_meter_state(topics[n], sizeof topics[n], d->mc->bus.community,
                                              r.sample.meter_id) != BUS_OK) {
            logf_(BUS_LOG_ERROR, "meter %s: reading not publishable (values out of range)",
                  r.sample.meter_id);
            continue;
        }
        if (s) {
            s->have_sample = true;
            s->battery = r.sample.soc_permille >= 0;
        }
        if (log_level >= BUS_LOG_DEBUG)
            logf_(BUS_LOG_DEBUG, "%s", bodies[n]);
        items[n] = (outbox_item){topics[n], bodies[n], (size_t)len, 1, true};
        n++;
    }
    if (n == 0)
        return 0;
    d->readings += n;
    size_t acc = 0;
    int rc = outbox_push(d->ob, items, n, ctl_wall_ms(), &acc);
    if (rc == OUTBOX_E_DB)
        logf_(BUS_LOG_ERROR, "%zu readings could not be stored in the outbox", n);
    return (int)n;
}

/* [bus] client_id, or the default of meter_client_id.h; with the default and no [outbox] path,
 * an outbox left under the older default's name (meter-<hostname>) is kept on, so readings it
 * still holds are sent rather than stranded. 0, or -1 after logging why. */
static int pick_client_id(meter_conf *mc, const char *config_path)
{
    bool defaulted = !mc->bus.client_id[0];
    if (defaulted && ctl_meter_client_id(mc->bus.community, mtr_config_device(mc->meters, 0)->id,
                                         mc->bus.client_id) != 0) {
        logf_(BUS_LOG_ERROR,
              "%s: set [bus] client_id: the default meter-<community>-<meter id> "
              "would be longer than %d characters",
              config_path, BUS_ID_MAX - 1);
        return -1;
    }
    if (mc->outbox.path[0])
        return 0;
    if (ctl_meter_outbox_path(config_path, mc->bus.client_id, mc->outbox.path,
                              sizeof mc->outbox.path) != 0) {
        logf_(BUS_LOG_ERROR, "%s: set [outbox] path: the default is too long", config_path);
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
        logf_(BUS_LOG_INFO, "keeping the outbox %s of the older default client id %s", legacy,
              legacy_id);
        snprintf(mc->outbox.path, sizeof mc->outbox.path, "%s", legacy);
    }
    return 0;
}

static int run_daemon(meter_conf *mc, const char *config_path, volatile sig_atomic_t *stop)
{
    int status = CTL_EXIT_FAILURE;
    daemon_ctx d = {.mc = mc};
    mtr_poller *p = NULL;
    char err[600];
    if (pick_client_id(mc, config_path) != 0)
        return CTL_EXIT_FAILURE;
    d.n_dev = mtr_config_count(mc->meters);
    d.dev = calloc(d.n_dev, sizeof *d.dev);
    d.by_id = calloc(d.n_dev, sizeof *d.by_id);
    if (!d.dev || !d.by_id)
        goto out;
    for (size_t i = 0; i < d.n_dev; i++)
        d.by_id[i] = (id_entry){mtr_config_device(mc->meters, i)->id, i};
    qsort(d.by_id, d.n_dev, sizeof *d.by_id, cmp_id);
    outbox_config oc = {.path = mc->outbox.path, .max_messages = mc->outbox.max_messages,
                        .policy = mc->outbox.policy, .window = mc->outbox.window,
                        .log = daemon_log};
    if (outbox_open(&oc, &d.ob, err, sizeof err) != OUTBOX_OK) {
        fprintf(stderr, "mgx meter: %s\n", err);
        goto out;
    }
    bus_config bc;
    cfg_bus_config(&mc->bus, &bc);
    bc.log = daemon_log;
    bc.log_level = log_level;
    int brc;
    d.bus = bus_new(&bc, NULL, on_bus_state, &d, &brc);
    if (!d.bus) {
        fprintf(stderr, "mgx meter: cannot set up the bus client: %s\n", bus_strerror(brc));
        goto out;
    }
    mtr_poller_options po;
    p = mtr_poller_new(mc->meters, poller_options(&po));
    if (!p || mtr_poller_start(p) != MTR_OK) {
        fputs("mgx meter: cannot start the poller\n", stderr);
        goto out;
    }
    bus_start(d.bus);
    logf_(BUS_LOG_INFO, "polling %zu devices (%zu lanes, %u threads); broker %s:%d as %s; "
          "outbox %s", d.n_dev, mtr_poller_lanes(p), mtr_poller_threads(p), mc->bus.host,
          bc.port ? bc.port : (bc.tls_ca ? 8883 : 1883), mc->bus.client_id, mc->outbox.path);
    while (!*stop) {
        bus_loop(d.bus, 10);
        while (drain_poller(&d, p) == METER_BATCH_MAX)
            ;
        publish_meta(&d);
        outbox_pump(d.ob, d.bus);
    }
    logf_(BUS_LOG_INFO, "stopping");
    /* Nothing polled is dropped on the way out: what the broker does not take in a moment
     * stays in the outbox for the next start. */
    mtr_poller_stop(p);
    while (drain_poller(&d, p) > 0)
        ;
    for (int t = 0; t < 100 && bus_connected(d.bus) && outbox_count(d.ob) > 0; t++) {
        outbox_pump(d.ob, d.bus);
        bus_loop(d.bus, 20);
    }
    bus_stop(d.bus, 2000);
    outbox_pump(d.ob, d.bus); /* delete what was acknowledged at the end */
    outbox_stats st;
    outbox_stats_get(d.ob, &st);
    logf_(BUS_LOG_INFO, "stopped: %llu readings, %llu failed polls; outbox: %llu published, "
          "%llu waiting, %llu dropped, %llu refused", (unsigned long long)d.readings,
          (unsigned long long)d.failures, (unsigned long long)st.published,
          (unsigned long long)st.queued, (unsigned long long)st.dropped_full,
          (unsigned long long)st.refused_full);
    status = CTL_EXIT_OK;
out:
    mtr_poller_free(p);
    bus_free(d.bus);
    outbox_close(d.ob);
    free(d.dev);
    free(d.by_id);
    return status;
}

int ctl_cmd_meter(int argc, char **argv)
{
    const char *config = NULL;
    bool once = false;
    log_level = BUS_LOG_INFO;
    int64_t now = ctl_wall_ms();
    meter_clock = (ctl_clock){now, now, 1};
    clock_set = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return CTL_EXIT_OK;
        } else if (strcmp(argv[i], "--clock-speed") == 0 && i + 1 < argc) {
            if (ctl_opt_int64(argv[++i], 1, CTL_CLOCK_MAX_SPEED, &meter_clock.speed)) {
                fprintf(stderr, "mgx meter: --clock-speed: expected an integer 1..%lld\n",
                        (long long)CTL_CLOCK_MAX_SPEED);
                return CTL_EXIT_USAGE;
            }
            clock_set = 1;
        } else if (strcmp(argv[i], "--clock-anchor") == 0 && i + 1 < argc) {
            if (ctl_clock_parse_anchor(argv[++i], &meter_clock) != CTL_IV_OK) {
                fprintf(stderr, "mgx meter: --clock-anchor: expected REAL_S:SIM_S\n");
                return CTL_EXIT_USAGE;
            }
            clock_set = 1;
        } else if (strcmp(argv[i], "--once") == 0) {
            once = true;
        } else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
            log_level = BUS_LOG_DEBUG;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "mgx meter: unknown option %s\n\n%s", argv[i], USAGE);
            return CTL_EXIT_USAGE;
        } else if (!config) {
            config = argv[i];
        } else {
            fprintf(stderr, "mgx meter: one CONFIG only (got %s and %s)\n", config, argv[i]);
            return CTL_EXIT_USAGE;
        }
    }
    if (!config) {
        fputs(USAGE, stderr);
        return CTL_EXIT_USAGE;
    }
    meter_conf mc;
    memset(&mc, 0, sizeof mc);
    int status = CTL_EXIT_FAILURE;
    if (load_config(config, &mc) != CFG_OK)
        goto out;
    if (once) {
        status = run_once(&mc);
        goto out;
    }
    status = run_daemon(&mc, config, ctl_stop_on_signals());
out:
    cfg_bus_clear(&mc.bus);
    mtr_config_free(mc.meters);
    return status;
}
