/*
 * `mgx controller CONFIG [--clock-speed N] [--clock-anchor REAL_S:SIM] [--db PATH]`: reads the
 * daemon's INI file through the shared loader (config.h: [bus] as every mgx daemon takes it;
 * [controller] and the optional [solana] here), installs the signal handlers and runs the loop
 * in ctl_daemon.c. Config errors name the file and line. The keys are documented in
 * docs/controller.md.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "bus/bus_config.h"
#include "daemon/ctl_daemon.h"
#include "common/errbuf.h"
#include "common/opt.h"
#include "common/stop_signal.h"
#include "common/wall_clock.h"

#include <getopt.h>
#include <stdarg.h>
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

/* The controller's own sections, handled through the shared loader (config.h), which also
 * brings [bus]: every daemon takes the same [bus] and reports errors as FILE:LINE. */
typedef struct {
    ctl_daemon_config *cfg;
    const cfg_loader *loader;
    cfg_bus *bus;
    char community[BUS_ID_MAX]; /* [controller] community (the older place for it) */
    int line;                   /* of the [controller] header, 0 if absent */
    int solana_line;
    unsigned seen;              /* [controller] keys already given */
    char anchor[128];
    int64_t speed;
} cfg_ctx;

static const char *const CONTROLLER_KEYS[] = {
    "community",          "db",                 "interval_s",        "gate_closure_s",
    "max_ahead_intervals", "mechanism",         "feed_in_uc_per_kwh", "retail_uc_per_kwh",
    "network_fee_uc_per_kwh", "settlement_grace_s", "settlement_key", "reading_max_gap_s",
    "meter_max_power_w",  "clock_speed",        "clock_anchor",      NULL};

static int path_key(cfg_ctx *x, const char *key, const char *value, char *dst, size_t cap,
                    char *err, size_t errlen)
{
    return cfg_path(x->loader, value, dst, cap) == CFG_OK
               ? CFG_OK
               : ctl_fail(CFG_E_BAD, err, errlen, "%s: path empty or too long", key);
}

static int controller_value(cfg_ctx *x, int k, const char *key, const char *value, char *err,
                            size_t errlen)
{
    ctl_daemon_config *c = x->cfg;
    int64_t v;
    switch (k) {
    case 0: return cfg_parse_id(key, value, x->community, err, errlen);
    case 1: return path_key(x, key, value, c->db_path, sizeof c->db_path, err, errlen);
    case 2:
        return cfg_parse_int(key, value, 1, CTL_INTERVAL_MAX_LEN_S, &c->rules.length_s, err,
                             errlen);
    case 3:
        return cfg_parse_int(key, value, 0, CTL_INTERVAL_MAX_GATE_S, &c->rules.gate_closure_s,
                             err, errlen);
    case 4:
        return cfg_parse_int(key, value, 1, CTL_INTERVAL_MAX_AHEAD, &c->rules.max_ahead, err,
                             errlen);
    case 5:
        return mkt_mechanism_parse(value, &c->params.mechanism) == MKT_OK
                   ? CFG_OK
                   : ctl_fail(CFG_E_BAD, err, errlen,
                              "mechanism must be pay-as-clear or pay-as-bid");
    case 6:
        return cfg_parse_int(key, value, 0, MKT_PRICE_MAX_UC_PER_KWH,
                             &c->params.feed_in_uc_per_kwh, err, errlen);
    case 7:
        return cfg_parse_int(key, value, 0, MKT_PRICE_MAX_UC_PER_KWH,
                             &c->params.retail_uc_per_kwh, err, errlen);
    case 8:
        return cfg_parse_int(key, value, 0, MKT_PRICE_MAX_UC_PER_KWH,
                             &c->params.network_fee_uc_per_kwh, err, errlen);
    case 9:
        if (cfg_parse_int(key, value, 0, 86400, &v, err, errlen))
            return CFG_E_BAD;
        c->settlement_grace_s = (int)v;
        return CFG_OK;
    case 10:
        return path_key(x, key, value, c->settlement_key, sizeof c->settlement_key, err, errlen);
    case 11: return cfg_parse_int(key, value, 1, 86400, &c->reading_max_gap_s, err, errlen);
    case 12:
        return cfg_parse_int(key, value, 0, INT64_C(1000000000), &c->meter_max_power_w, err,
                             errlen);
    case 13: return cfg_parse_int(key, value, 1, CTL_CLOCK_MAX_SPEED, &x->speed, err, errlen);
    default: return cfg_parse_str(key, value, x->anchor, sizeof x->anchor, err, errlen);
    }
}

static int controller_key(void *ctx, const char *section, const char *key, const char *value,
                          int line, char *err, size_t errlen)
{
    cfg_ctx *x = ctx;
    if (strcmp(section, "controller") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (x->line)
            return ctl_fail(CFG_E_BAD, err, errlen, "[controller] given twice (first at line %d)",
                            x->line);
        x->line = line;
        return CFG_OK;
    }
    int k = -1;
    for (int i = 0; CONTROLLER_KEYS[i]; i++)
        if (strcmp(CONTROLLER_KEYS[i], key) == 0)
            k = i;
    if (k < 0)
        return CFG_NOT_MINE;
    if (x->seen & (1u << k))
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: given twice", key);
    x->seen |= 1u << k;
    return controller_value(x, k, key, value, err, errlen);
}

/* Before [bus] is checked: the community may be given in [controller] (where the controller
 * used to take it) instead of [bus]; both must then agree. */
static int controller_finish(void *ctx, const char *path, char *err, size_t errlen)
{
    cfg_ctx *x = ctx;
    cfg_bus *b = x->bus;
    if (!x->line)
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: no [controller] section", path);
    if (x->community[0] && b->community[0] && strcmp(x->community, b->community) != 0)
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s:%d: [controller] community '%s' differs from [bus] "
                        "community '%s'",
                        path, x->line, x->community, b->community);
    if (x->community[0])
        snprintf(b->community, sizeof b->community, "%s", x->community);
    if (b->line && !b->community[0])
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s:%d: community is required ([bus] community = NAME)", path, b->line);
    return CFG_OK;
}

static int solana_key(void *ctx, const char *section, const char *key, const char *value,
                      int line, char *err, size_t errlen)
{
    cfg_ctx *x = ctx;
    if (strcmp(section, "solana") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (x->solana_line)
            return ctl_fail(CFG_E_BAD, err, errlen, "[solana] given twice (first at line %d)",
                            x->solana_line);
        x->solana_line = line;
        return CFG_OK;
    }
    ctl_settle_solana_config *s = &x->cfg->solana;
    if (strcmp(key, "keypair") == 0 || strcmp(key, "wallets") == 0) {
        char path[CTL_SOL_PATH_MAX];
        if (path_key(x, key, value, path, sizeof path, err, errlen) != CFG_OK)
            return CFG_E_BAD;
        return ctl_settle_solana_key(s, key, path, err, errlen) ? CFG_OK : CFG_E_BAD;
    }
    return ctl_settle_solana_key(s, key, value, err, errlen) ? CFG_OK : CFG_E_BAD;
}

static int solana_finish(void *ctx, const char *path, char *err, size_t errlen)
{
    cfg_ctx *x = ctx;
    char why[256];
    if (x->cfg->solana.enabled && !x->cfg->settlement_key[0])
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s:%d: [solana] needs settlement_key in [controller] (a block "
                        "is settled in the ledger before it goes on chain)",
                        path, x->solana_line);
    if (!ctl_settle_solana_check(&x->cfg->solana, why, sizeof why))
        return ctl_fail(CFG_E_BAD, err, errlen, "%s:%d: %s", path, x->solana_line, why);
    return CFG_OK;
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
    x->speed = 1;
}

/* Loads the file into cfg (and b, which keeps the [bus] strings). 0, or 2 after printing why. */
static int load(const char *path, ctl_daemon_config *cfg, cfg_ctx *x, cfg_bus *b)
{
    cfg_loader *l = cfg_loader_new();
    if (!l) {
        fprintf(stderr, "mgx controller: out of memory\n");
        return CTL_EXIT_FAILURE;
    }
    x->loader = l;
    x->bus = b;
    char err[1024] = "";
    int rc = CFG_E_NOMEM;
    cfg_others others; /* a home's sections ([agent], [meter ...]...) may share the file */
    /* controller_finish first: it may supply [bus] its community */
    if (cfg_loader_add(l, controller_key, controller_finish, x) == CFG_OK &&
        cfg_bus_add(l, b) == CFG_OK && cfg_loader_add(l, solana_key, solana_finish, x) == CFG_OK &&
        cfg_others_add(l, CFG_DAEMON_CONTROLLER, &others) == CFG_OK)
        rc = cfg_load(l, path, err, sizeof err);
    cfg_loader_free(l);
    x->loader = NULL;
    if (rc == CFG_OK) {
        snprintf(cfg->community, sizeof cfg->community, "%s", b->community);
        if (cfg->params.feed_in_uc_per_kwh <= cfg->params.retail_uc_per_kwh)
            return 0;
        snprintf(err, sizeof err, "%s:%d: feed_in_uc_per_kwh is above retail_uc_per_kwh", path,
                 x->line);
    }
    fprintf(stderr, "mgx controller: %s\n", err[0] ? err : "cannot load the config");
    return CTL_EXIT_USAGE;
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
    cfg_bus bus;
    memset(&bus, 0, sizeof bus);
    int lrc = load(argv[optind], &cfg, &x, &bus);
    if (lrc != 0) {
        cfg_bus_clear(&bus);
        return lrc;
    }
    int rc = CTL_EXIT_USAGE;
    if (db && strlen(db) >= sizeof cfg.db_path) {
        fprintf(stderr, "mgx controller: --db: path too long\n");
        goto out;
    }
    if (db)
        snprintf(cfg.db_path, sizeof cfg.db_path, "%s", db);
    if (!cfg.db_path[0]) {
        fprintf(stderr, "mgx controller: %s: no database: set [controller] db or --db\n",
                argv[optind]);
        goto out;
    }
    if (speed && ctl_opt_int64(speed, 1, CTL_CLOCK_MAX_SPEED, &x.speed) != 0) {
        fprintf(stderr, "mgx controller: --clock-speed must be an integer in 1..%lld\n",
                (long long)CTL_CLOCK_MAX_SPEED);
        goto out;
    }
    int64_t now = ctl_wall_ms();
    cfg.clock = (ctl_clock){now, now, x.speed};
    const char *a = anchor ? anchor : x.anchor[0] ? x.anchor : NULL;
    if (a && ctl_clock_parse_anchor(a, &cfg.clock) != CTL_IV_OK) {
        fprintf(stderr, "mgx controller: clock anchor '%s' is not REAL_S:SIM (e.g. "
                        "1717200000:2024-06-01T00:00:00Z)\n", a);
        goto out;
    }
    cfg.log_level = verbose ? BUS_LOG_DEBUG : BUS_LOG_INFO;
    cfg_bus_config(&bus, &cfg.bus);
    if (!cfg.bus.client_id[0])
        cfg.bus.client_id = "controller";
    cfg.bus.log_level = cfg.log_level;
    /* room for a burst's receipts (a batch is up to 1,024) and an interval's results */
    cfg.bus.max_pending = 8192;

    rc = ctl_daemon_run(&cfg, ctl_stop_on_signals()) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
out:
    cfg_bus_clear(&bus); /* wipes the password */
    return rc;
}
