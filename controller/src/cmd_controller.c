/*
 * `mgx controller CONFIG [--clock-speed N] [--clock-anchor REAL_S:SIM] [--db PATH]`: reads the
 * daemon's INI file ([bus], [controller] and the optional [solana] sections), installs the signal handlers and runs
 * the loop in ctl_daemon.c. Config errors name the file and line. The keys are documented in
 * docs/controller.md.
 */
#define _POSIX_C_SOURCE 200809L
#include "mgx/cli.h"

#include "ctl_daemon.h"
#include "opt.h"

#include <getopt.h>
#include <ini.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char USAGE[] =
    "usage: mgx controller CONFIG.ini [options]\n"
    "\n"
    "Runs the community's market: takes signed orders from the bus, answers each with a\n"
    "receipt, clears every interval at gate closure and publishes results and trades.\n"
    "With settlement_key set it settles every interval after its grace period into the\n"
    "signed ledger (and on Solana with a [solana] section).\n"
    "\n"
    "options:\n"
    "  --db PATH                the SQLite database (overrides [controller] db)\n"
    "  --clock-speed N          run time N times faster (demos and tests; default 1)\n"
    "  --clock-anchor REAL:SIM  real Unix second REAL is simulated time SIM (Unix seconds or\n"
    "                           2024-06-01T00:00:00Z); give every process of a run the same\n"
    "                           anchor. Default with --clock-speed: now is now.\n"
    "  -v, --verbose            log every order\n"
    "\n"
    "Exit status: 0 after SIGINT/SIGTERM, 1 on a failure, 2 on bad usage or config.\n"
    "Reference: docs/controller.md.\n";

#define STR_MAX 1024

typedef struct {
    const char *path;
    ctl_daemon_config *cfg;
    char host[STR_MAX], client_id[BUS_ID_MAX], username[STR_MAX], password[STR_MAX];
    char tls_ca[STR_MAX], tls_cert[STR_MAX], tls_key[STR_MAX];
    char anchor[STR_MAX];
    int64_t speed;
    char err[512];
} cfg_ctx;

static int set_int(cfg_ctx *x, const char *name, const char *value, int64_t min, int64_t max,
                   int64_t *out)
{
    if (ctl_opt_int64(value, min, max, out) == 0)
        return 1;
    snprintf(x->err, sizeof x->err, "%s must be an integer in %lld..%lld, not '%s'", name,
             (long long)min, (long long)max, value);
    return 0;
}

static int set_str(cfg_ctx *x, const char *name, const char *value, char *dst, size_t cap)
{
    if (strlen(value) < cap) {
        memcpy(dst, value, strlen(value) + 1);
        return 1;
    }
    snprintf(x->err, sizeof x->err, "%s is longer than %zu bytes", name, cap - 1);
    return 0;
}

/* A file named in the config: relative paths are taken from the config file's folder. */
static int set_path(cfg_ctx *x, const char *name, const char *value, char *dst, size_t cap)
{
    const char *slash = strrchr(x->path, '/');
    int dir = value[0] != '/' && slash ? (int)(slash - x->path) : 0;
    int n = dir ? snprintf(dst, cap, "%.*s/%s", dir, x->path, value)
                : snprintf(dst, cap, "%s", value);
    if (n > 0 && (size_t)n < cap && value[0])
        return 1;
    snprintf(x->err, sizeof x->err, "%s: path empty or too long", name);
    return 0;
}

static int solana_key(cfg_ctx *x, const char *name, const char *value)
{
    ctl_settle_solana_config *s = &x->cfg->solana;
    if (strcmp(name, "keypair") == 0 || strcmp(name, "wallets") == 0) {
        char path[CTL_SOL_PATH_MAX];
        if (!set_path(x, name, value, path, sizeof path))
            return 0;
        return ctl_settle_solana_key(s, name, path, x->err, sizeof x->err);
    }
    return ctl_settle_solana_key(s, name, value, x->err, sizeof x->err);
}

static int bus_key(cfg_ctx *x, const char *name, const char *value)
{
    bus_config *b = &x->cfg->bus;
    int64_t v;
    if (strcmp(name, "host") == 0)
        return set_str(x, name, value, x->host, sizeof x->host);
    if (strcmp(name, "port") == 0)
        return set_int(x, name, value, 1, 65535, &v) ? (b->port = (int)v, 1) : 0;
    if (strcmp(name, "client_id") == 0)
        return set_str(x, name, value, x->client_id, sizeof x->client_id);
    if (strcmp(name, "username") == 0)
        return set_str(x, name, value, x->username, sizeof x->username);
    if (strcmp(name, "password") == 0)
        return set_str(x, name, value, x->password, sizeof x->password);
    if (strcmp(name, "tls_ca") == 0)
        return set_str(x, name, value, x->tls_ca, sizeof x->tls_ca);
    if (strcmp(name, "tls_cert") == 0)
        return set_str(x, name, value, x->tls_cert, sizeof x->tls_cert);
    if (strcmp(name, "tls_key") == 0)
        return set_str(x, name, value, x->tls_key, sizeof x->tls_key);
    if (strcmp(name, "keepalive_s") == 0)
        return set_int(x, name, value, 5, 3600, &v) ? (b->keepalive_s = (int)v, 1) : 0;
    if (strcmp(name, "backoff_max_ms") == 0)
        return set_int(x, name, value, 100, 600000, &v) ? (b->backoff_max_ms = (int)v, 1) : 0;
    snprintf(x->err, sizeof x->err, "unknown key '%s' in [bus]", name);
    return 0;
}

static int controller_key(cfg_ctx *x, const char *name, const char *value)
{
    ctl_daemon_config *c = x->cfg;
    int64_t v;
    if (strcmp(name, "community") == 0) {
        if (!bus_id_valid(value)) {
            snprintf(x->err, sizeof x->err, "community must be 1..63 of [A-Za-z0-9_-]");
            return 0;
        }
        return set_str(x, name, value, c->community, sizeof c->community);
    }
    if (strcmp(name, "db") == 0)
        return set_str(x, name, value, c->db_path, sizeof c->db_path);
    if (strcmp(name, "interval_s") == 0)
        return set_int(x, name, value, 1, CTL_INTERVAL_MAX_LEN_S, &c->rules.length_s);
    if (strcmp(name, "gate_closure_s") == 0)
        return set_int(x, name, value, 0, CTL_INTERVAL_MAX_GATE_S, &c->rules.gate_closure_s);
    if (strcmp(name, "max_ahead_intervals") == 0)
        return set_int(x, name, value, 1, CTL_INTERVAL_MAX_AHEAD, &c->rules.max_ahead);
    if (strcmp(name, "mechanism") == 0) {
        if (mkt_mechanism_parse(value, &c->params.mechanism) == MKT_OK)
            return 1;
        snprintf(x->err, sizeof x->err, "mechanism must be pay-as-clear or pay-as-bid");
        return 0;
    }
    if (strcmp(name, "feed_in_uc_per_kwh") == 0)
        return set_int(x, name, value, 0, MKT_PRICE_MAX_UC_PER_KWH,
                       &c->params.feed_in_uc_per_kwh);
    if (strcmp(name, "retail_uc_per_kwh") == 0)
        return set_int(x, name, value, 0, MKT_PRICE_MAX_UC_PER_KWH, &c->params.retail_uc_per_kwh);
    if (strcmp(name, "network_fee_uc_per_kwh") == 0)
        return set_int(x, name, value, 0, MKT_PRICE_MAX_UC_PER_KWH,
                       &c->params.network_fee_uc_per_kwh);
    if (strcmp(name, "settlement_grace_s") == 0)
        return set_int(x, name, value, 0, 86400, &v) ? (c->settlement_grace_s = (int)v, 1) : 0;
    if (strcmp(name, "settlement_key") == 0)
        return set_path(x, name, value, c->settlement_key, sizeof c->settlement_key);
    if (strcmp(name, "reading_max_gap_s") == 0)
        return set_int(x, name, value, 1, 86400, &c->reading_max_gap_s);
    if (strcmp(name, "meter_max_power_w") == 0)
        return set_int(x, name, value, 0, INT64_C(1000000000), &c->meter_max_power_w);
    if (strcmp(name, "clock_speed") == 0)
        return set_int(x, name, value, 1, CTL_CLOCK_MAX_SPEED, &x->speed);
    if (strcmp(name, "clock_anchor") == 0)
        return set_str(x, name, value, x->anchor, sizeof x->anchor);
    snprintf(x->err, sizeof x->err, "unknown key '%s' in [controller]", name);
    return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    cfg_ctx *x = user;
    if (strcmp(section, "bus") == 0)
        return bus_key(x, name, value);
    if (strcmp(section, "controller") == 0)
        return controller_key(x, name, value);
    if (strcmp(section, "solana") == 0)
        return solana_key(x, name, value);
    /* other daemons' sections may share the file */
    return 1;
}

static void defaults(ctl_daemon_config *c, cfg_ctx *x)
{
    memset(c, 0, sizeof *c);
    memset(x, 0, sizeof *x);
    x->cfg = c;
    c->rules = (ctl_interval_rules){900, 300, 96};
    c->params = (mkt_params){MKT_PAY_AS_CLEAR, 80000, 300000, 0};
    c->settlement_grace_s = 900;
    c->reading_max_gap_s = 300;
    c->meter_max_power_w = 100000;
    ctl_settle_solana_defaults(&c->solana);
    c->log_level = BUS_LOG_INFO;
    snprintf(x->host, sizeof x->host, "127.0.0.1");
    snprintf(x->client_id, sizeof x->client_id, "controller");
    x->speed = 1;
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

int ctl_cmd_controller(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"clock-speed", required_argument, NULL, 's'},
                                         {"clock-anchor", required_argument, NULL, 'a'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    ctl_daemon_config cfg;
    cfg_ctx x;
    defaults(&cfg, &x);
    const char *db = NULL, *anchor = NULL, *speed = NULL;
    int verbose = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 's':
            speed = optarg;
            break;
        case 'a':
            anchor = optarg;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            fputs(USAGE, stdout);
            return CTL_EXIT_OK;
        default:
            fputs(USAGE, stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fputs(USAGE, stderr);
        return CTL_EXIT_USAGE;
    }
    x.path = argv[optind];
    int line = ini_parse(x.path, on_key, &x);
    if (line < 0) {
        fprintf(stderr, "mgx controller: %s: cannot read the file\n", x.path);
        return CTL_EXIT_USAGE;
    }
    if (line > 0) {
        fprintf(stderr, "mgx controller: %s:%d: %s\n", x.path, line,
                x.err[0] ? x.err : "syntax error");
        return CTL_EXIT_USAGE;
    }
    if (!cfg.community[0]) {
        fprintf(stderr, "mgx controller: %s: [controller] community is required\n", x.path);
        return CTL_EXIT_USAGE;
    }
    if (cfg.params.feed_in_uc_per_kwh > cfg.params.retail_uc_per_kwh) {
        fprintf(stderr, "mgx controller: %s: feed_in_uc_per_kwh is above retail_uc_per_kwh\n",
                x.path);
        return CTL_EXIT_USAGE;
    }
    char why[256];
    if (!ctl_settle_solana_check(&cfg.solana, why, sizeof why)) {
        fprintf(stderr, "mgx controller: %s: %s\n", x.path, why);
        return CTL_EXIT_USAGE;
    }
    if (cfg.solana.enabled && !cfg.settlement_key[0]) {
        fprintf(stderr, "mgx controller: %s: [solana] needs settlement_key in [controller] (a "
                        "block is settled in the ledger before it goes on chain)\n", x.path);
        return CTL_EXIT_USAGE;
    }
    if (db && strlen(db) >= sizeof cfg.db_path) {
        fprintf(stderr, "mgx controller: --db: path too long\n");
        return CTL_EXIT_USAGE;
    }
    if (db)
        snprintf(cfg.db_path, sizeof cfg.db_path, "%s", db);
    if (!cfg.db_path[0]) {
        fprintf(stderr, "mgx controller: %s: no database: set [controller] db or --db\n", x.path);
        return CTL_EXIT_USAGE;
    }
    if (speed && ctl_opt_int64(speed, 1, CTL_CLOCK_MAX_SPEED, &x.speed) != 0) {
        fprintf(stderr, "mgx controller: --clock-speed must be an integer in 1..%lld\n",
                (long long)CTL_CLOCK_MAX_SPEED);
        return CTL_EXIT_USAGE;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    cfg.clock = (ctl_clock){now, now, x.speed};
    const char *a = anchor ? anchor : x.anchor[0] ? x.anchor : NULL;
    if (a && ctl_clock_parse_anchor(a, &cfg.clock) != CTL_IV_OK) {
        fprintf(stderr, "mgx controller: clock anchor '%s' is not REAL_S:SIM (e.g. "
                        "1717200000:2024-06-01T00:00:00Z)\n", a);
        return CTL_EXIT_USAGE;
    }
    cfg.log_level = verbose ? BUS_LOG_DEBUG : BUS_LOG_INFO;
    bus_config *b = &cfg.bus;
    b->host = x.host;
    b->client_id = x.client_id;
    b->community = cfg.community;
    b->username = x.username[0] ? x.username : NULL;
    b->password = x.password[0] ? x.password : NULL;
    b->tls_ca = x.tls_ca[0] ? x.tls_ca : NULL;
    b->tls_cert = x.tls_cert[0] ? x.tls_cert : NULL;
    b->tls_key = x.tls_key[0] ? x.tls_key : NULL;
    b->log_level = cfg.log_level;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    stop_flag = 0;
    int rc = ctl_daemon_run(&cfg, &stop_flag);
    memset(x.password, 0, sizeof x.password);
    return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}
