/*
 * The checks of `mgx doctor` (doctor.h). Each check is one function writing its findings; the
 * run keeps the count of failures and warnings. Nothing here changes a file or leaves anything
 * on the broker: databases are opened read-only and the broker probe has no status topic.
 */
#define _GNU_SOURCE
#include "cli/doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <unistd.h>

#include "agent/agent_config.h"
#include "bus/bus.h"
#include "bus/bus_config.h"
#include "common/config.h"
#include "common/sql.h"
#include "common/wall_clock.h"
#include "daemon/controller_config.h"
#include "db/db.h"
#include "db/registry.h"
#include "meterd/meterd.h"

typedef struct {
    FILE *out;
    int fails, warns, oks;
} doctor;

static void say(doctor *d, int level, const char *topic, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* level: 0 ok, 1 warn, 2 FAIL; fix (may be NULL) is printed under the finding. */
static void say(doctor *d, int level, const char *topic, const char *fix, const char *fmt, ...)
{
    static const char *const TAG[] = {"ok  ", "warn", "FAIL"};
    fprintf(d->out, "%s  %s: ", TAG[level], topic);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(d->out, fmt, ap);
    va_end(ap);
    fputc('\n', d->out);
    if (fix)
        fprintf(d->out, "      fix: %s\n", fix);
    *(level == 0 ? &d->oks : level == 1 ? &d->warns : &d->fails) += 1;
}

/* Which daemons' sections the file holds. */
typedef struct {
    bool controller, agent, meter;
} roles;

static int find_roles(const char *path, roles *r)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        const char *p = line + strspn(line, " \t");
        r->controller |= strncmp(p, "[controller]", 12) == 0;
        r->agent |= strncmp(p, "[agent]", 7) == 0;
        r->meter |= strncmp(p, "[meter ", 7) == 0;
    }
    fclose(f);
    return 0;
}

/* A secret file: present, a regular file, readable by us, nobody else's business. */
static void check_secret(doctor *d, const char *what, const char *path)
{
    if (!path || !path[0])
        return;
    struct stat st;
    char fix[CFG_PATH_MAX + 64];
    if (stat(path, &st) != 0) {
        say(d, 2, what, NULL, "%s: %s", path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        say(d, 2, what, NULL, "%s is not a regular file", path);
        return;
    }
    if (access(path, R_OK) != 0) {
        snprintf(fix, sizeof fix, "chown the file to the daemon's user, e.g. chown mgx %s", path);
        say(d, 2, what, fix, "%s: not readable by this user: %s", path, strerror(errno));
        return;
    }
    if (st.st_mode & 077) {
        snprintf(fix, sizeof fix, "chmod 600 %s", path);
        say(d, 2, what, fix, "%s has mode %03o: group or others can read or write it", path,
            (unsigned)(st.st_mode & 0777));
        return;
    }
    say(d, 0, what, NULL, "%s (mode %03o)", path, (unsigned)(st.st_mode & 0777));
}

/* ---- the broker ---- */

typedef struct {
    int state; /* 0 unknown, 1 connected, -1 refused or lost */
    int reason;
    char last_log[512];
} probe;

static void probe_state(void *user, bool connected, int reason)
{
    probe *p = user;
    p->state = connected ? 1 : -1;
    p->reason = reason;
}

static void probe_log(void *user, int level, const char *msg)
{
    probe *p = user;
    if (level <= CTL_LOG_WARN)
        snprintf(p->last_log, sizeof p->last_log, "%s", msg);
}

/* A plain TCP connect to host:port within timeout_ms: 0, or -1 with the system's reason in why
 * ("Connection refused", "No route to host", a name that does not resolve...), which the MQTT
 * client's own retry loop does not report. */
static int tcp_reach(const char *host, int port, int timeout_ms, char *why, size_t cap)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, service, &hints, &res);
    if (g != 0) {
        snprintf(why, cap, "cannot resolve %s: %s", host, gai_strerror(g));
        return -1;
    }
    int rc = -1;
    snprintf(why, cap, "no address");
    for (struct addrinfo *a = res; a && rc != 0; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int e = connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
        if (e == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            socklen_t len = sizeof e;
            if (poll(&p, 1, timeout_ms) != 1)
                e = ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
                e = errno;
        }
        close(fd);
        if (e == 0)
            rc = 0;
        else
            snprintf(why, cap, "%s", strerror(e));
    }
    freeaddrinfo(res);
    return rc;
}

static void check_broker(doctor *d, const cfg_bus *b, int timeout_ms)
{
    bus_config bc;
    cfg_bus_config(b, &bc);
    char id[BUS_ID_MAX];
    /* a client id of its own: the daemon's would take its session over */
    snprintf(id, sizeof id, "%.*s-doctor", BUS_ID_MAX - 8, bc.client_id ? bc.client_id : "mgx");
    bc.client_id = id;
    bc.probe = true;
    bc.backoff_min_ms = timeout_ms; /* one attempt within the deadline */
    bc.backoff_max_ms = timeout_ms;
    probe p = {0, 0, ""};
    bc.log = probe_log;
    bc.log_user = &p;
    bc.log_level = CTL_LOG_WARN;
    int port = bc.port ? bc.port : bc.tls_ca ? 8883 : 1883;
    char where[300];
    snprintf(where, sizeof where, "broker %s:%d", bc.host ? bc.host : "127.0.0.1", port);
    char why[256];
    if (tcp_reach(bc.host ? bc.host : "127.0.0.1", port, timeout_ms, why, sizeof why) != 0) {
        say(d, 2, where,
            "is the broker running and listening there (ss -ltn), is the host and port in "
            "[bus] right, does a firewall drop it?",
            "cannot reach it: %s", why);
        return;
    }
    int err = 0;
    bus_client *c = bus_new(&bc, NULL, probe_state, &p, &err);
    if (!c || bus_start(c) != BUS_OK) {
        say(d, 2, where, "check [bus] tls_ca, tls_cert and tls_key", "cannot set up a client: %s",
            bus_strerror(err));
        bus_free(c);
        return;
    }
    int64_t deadline = ctl_wall_ms() + timeout_ms;
    while (p.state == 0 && ctl_wall_ms() < deadline)
        bus_loop(c, 100);
    if (p.state == 1)
        say(d, 0, where, NULL, "connected%s%s%s (%s)", b->username[0] ? " as user " : "",
            b->username, b->password ? " with password" : "", bc.tls_ca ? "TLS" : "no TLS");
    else if (p.reason == BUS_E_REFUSED)
        say(d, 2, where,
            "check [bus] username and password_file (or the client certificate) against the "
            "broker's password file and ACL (docs/bus-security.md)",
            "the broker refused the connection%s%s", p.last_log[0] ? ": " : "", p.last_log);
    else
        say(d, 2, where,
            "is the broker running and listening there (ss -ltn), is the host and port in "
            "[bus] right, does a firewall drop it?",
            "no connection within %d ms%s%s", timeout_ms, p.last_log[0] ? ": " : "", p.last_log);
    bus_stop(c, 1000);
    bus_free(c);
}

/* ---- the clock ---- */

static void check_clock(doctor *d)
{
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    int st = adjtimex(&tx);
    if (st < 0)
        say(d, 1, "clock", NULL, "cannot read the kernel's clock state: %s", strerror(errno));
    else if (st == TIME_ERROR || (tx.status & STA_UNSYNC))
        say(d, 1, "clock",
            "run an NTP client (apt install systemd-timesyncd or chrony); readings and orders "
            "are stamped with this clock",
            "not synchronised by NTP (kernel reports STA_UNSYNC)");
    else
        say(d, 0, "clock", NULL, "synchronised (estimated error %ld us)", tx.esterror);
}

/* ---- SQLite files ---- */

/* A database the daemon opens at path: sound if present, its folder writable if not. */
static void check_db(doctor *d, const char *what, const char *path, bool community)
{
    if (!path || !path[0])
        return;
    char err[CFG_PATH_MAX + 256];
    if (access(path, F_OK) != 0) {
        char dir[CFG_PATH_MAX];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *(slash == dir ? slash + 1 : slash) = '\0';
        else
            snprintf(dir, sizeof dir, ".");
        if (access(dir, W_OK | X_OK) != 0)
            say(d, 2, what, "make the folder writable by the daemon's user (e.g. /var/lib/mgx)",
                "%s does not exist and %s is not writable: %s", path, dir, strerror(errno));
        else
            say(d, 0, what, NULL, "%s does not exist yet; the daemon creates it", path);
        return;
    }
    int64_t v = 0;
    int rc = ctl_sql_check(path, &v, err, sizeof err);
    if (rc != 0) {
        say(d, 2, what,
            rc == 11 /* SQLITE_CORRUPT */ ? "restore it from a backup (docs/controller.md)" : NULL,
            "%s", err);
        return;
    }
    if (community && v > CTL_DB_VERSION)
        say(d, 2, what, "run the mgx release that wrote it, or a newer one",
            "%s has schema version %lld, newer than this mgx's %d", path, (long long)v,
            CTL_DB_VERSION);
    else if (community && v < CTL_DB_VERSION)
        say(d, 0, what, NULL,
            "%s passes quick_check; schema %lld is migrated to %d at the next "
            "start",
            path, (long long)v, CTL_DB_VERSION);
    else
        say(d, 0, what, NULL, "%s passes quick_check%s", path,
            community ? " and has the current schema" : "");
}

/* ---- per daemon ---- */

/* [topology]: what it holds, and the homes named on a feeder that the registry does not know:
 * a misspelt id leaves the real home at the transformer, clearing as if it had no feeder. */
static void check_topology(doctor *d, const ctl_daemon_config *cfg)
{
    const ctl_topology *t = &cfg->topology;
    if (!t->on)
        return;
    say(d, 0, "topology", NULL, "feeders %zu, homes on them %zu, level fee %lld uc/kWh",
        t->n_nodes - 1, t->n_homes, (long long)t->level_fee_uc_per_kwh);
    ctl_db *db = NULL;
    char err[512], names[256] = "";
    if (!cfg->db_path[0] || access(cfg->db_path, F_OK) != 0 ||
        ctl_db_open_readonly(cfg->db_path, &db, err, sizeof err) != CTL_DB_OK)
        return; /* the database's own check reports it */
    size_t unknown = 0, used = 0;
    for (size_t i = 0; i < t->n_homes; i++) {
        ctl_participant p;
        if (ctl_registry_lookup(db, t->homes[i].participant, &p) != CTL_REG_E_NOT_FOUND)
            continue;
        int w = snprintf(names + used, sizeof names - used, "%s%s", unknown ? ", " : "",
                         t->homes[i].participant);
        if (w > 0 && (size_t)w < sizeof names - used)
            used += (size_t)w;
        unknown++;
    }
    ctl_db_close(db);
    if (unknown)
        say(d, 1, "topology", "check the [feeder] sections' homes against `mgx participant list`",
            "homes on feeders that are not in the registry: %zu (%s); a misspelt home clears at "
            "the transformer",
            unknown, names);
}

static void check_controller(doctor *d, const ctl_doctor_options *o, bool *broker_done)
{
    ctl_daemon_config cfg;
    cfg_bus bus;
    ctl_controller_file x;
    ctl_controller_file_init(&x, &cfg, &bus);
    char err[1024];
    if (ctl_controller_file_load(&x, o->config_path, err, sizeof err) != CFG_OK) {
        say(d, 2, "controller config", "see docs/controller.md for the key", "%s", err);
        cfg_bus_clear(&bus);
        ctl_topology_clear(&cfg.topology);
        return;
    }
    say(d, 0, "controller config", NULL, "community %s, interval %lld s, database %s",
        cfg.community, (long long)cfg.rules.length_s, cfg.db_path);
    check_secret(d, "settlement key", cfg.settlement_key);
    check_secret(d, "broker client key", bus.tls_key);
    check_db(d, "community database", cfg.db_path, true);
    check_topology(d, &cfg);
    if (!*broker_done) {
        check_broker(d, &bus, o->broker_timeout_ms);
        *broker_done = true;
    }
    cfg_bus_clear(&bus);
    ctl_topology_clear(&cfg.topology);
}

static void check_agent(doctor *d, const ctl_doctor_options *o, bool *broker_done)
{
    agc_config a;
    char err[1024];
    if (agc_load(o->config_path, &a, err, sizeof err) != CFG_OK) {
        say(d, 2, "agent config", "see docs/agent.md for the key", "%s", err);
        return;
    }
    say(d, 0, "agent config", NULL, "participant %s, meter %s, community %s", a.participant,
        a.meter_id, a.bus.community);
    check_secret(d, "order-signing key", a.key_file);
    check_secret(d, "broker client key", a.bus.tls_key);
    check_db(d, "agent outbox", a.outbox, false);
    if (!*broker_done) {
        check_broker(d, &a.bus, o->broker_timeout_ms);
        *broker_done = true;
    }
    agc_clear(&a);
}

static void check_meters(doctor *d, const ctl_doctor_options *o, bool *broker_done)
{
    cfg_loader *l = cfg_loader_new();
    ctl_meterd_file mf;
    char err[1024];
    int rc = l ? ctl_meterd_file_add(l, &mf, o->config_path) : CFG_E_NOMEM;
    if (rc == CFG_OK)
        rc = cfg_load(l, o->config_path, err, sizeof err);
    else
        snprintf(err, sizeof err, "out of memory");
    if (rc != CFG_OK) {
        say(d, 2, "meter config", "see docs/meter-daemon.md for the key", "%s", err);
        goto out;
    }
    say(d, 0, "meter config", NULL, "%zu meter(s), community %s", mtr_config_count(mf.meters),
        mf.bus.community);
    check_secret(d, "broker client key", mf.bus.tls_key);
    check_db(d, "meter outbox", mf.outbox.path, false);
    if (!*broker_done) {
        check_broker(d, &mf.bus, o->broker_timeout_ms);
        *broker_done = true;
    }
    if (o->skip_meters) {
        say(d, 1, "meters", NULL, "not read (--skip-meters)");
    } else {
        fflush(d->out);
        ctl_meterd_options mo = {o->config_path, CTL_LOG_WARN, NULL};
        if (ctl_meterd_once(&mo) == 0)
            say(d, 0, "meters", NULL, "every device answered (one JSON line each above)");
        else
            say(d, 2, "meters",
                "check the wiring, address, unit id and register map of the devices marked "
                "\"ok\": false above (docs/meters.md)",
                "at least one device did not give a good reading");
    }
out:
    ctl_meterd_file_clear(&mf);
    cfg_loader_free(l);
}

int ctl_doctor_run(const ctl_doctor_options *o, FILE *out)
{
    doctor d = {out, 0, 0, 0};
    ctl_doctor_options opt = *o;
    if (opt.broker_timeout_ms <= 0)
        opt.broker_timeout_ms = 10000;
    roles r = {false, false, false};
    if (find_roles(o->config_path, &r) != 0) {
        say(&d, 2, "config", NULL, "%s: %s", o->config_path, strerror(errno));
        return 1;
    }
    if (!r.controller && !r.agent && !r.meter) {
        say(&d, 2, "config", "give the file a [controller], [agent] or [meter ID] section",
            "%s has no daemon's section", o->config_path);
        return 1;
    }
    bool broker_done = false;
    if (r.controller)
        check_controller(&d, &opt, &broker_done);
    if (r.agent)
        check_agent(&d, &opt, &broker_done);
    if (r.meter)
        check_meters(&d, &opt, &broker_done);
    check_clock(&d);
    fprintf(out, "mgx doctor: %d ok, %d warning(s), %d failure(s)\n", d.oks, d.warns, d.fails);
    return d.fails ? 1 : 0;
}
