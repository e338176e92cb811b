/*
 * `mgx controller CONFIG [--clock-speed N] [--clock-anchor REAL_S:SIM] [--db PATH]`: loads the
 * daemon's file (daemon/controller_config.h), applies the options over it, installs the signal
 * handlers and runs the loop of daemon/ctl_daemon.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "bus/bus_config.h"
#include "common/log.h"
#include "common/opt.h"
#include "daemon/controller_config.h"
#include "common/stop_signal.h"
#include "common/wall_clock.h"
#include "daemon/ctl_daemon.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

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

int ctl_cmd_controller(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"clock-speed", required_argument, NULL, 's'},
                                         {"clock-anchor", required_argument, NULL, 'a'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    ctl_daemon_config cfg;
    cfg_bus bus;
    ctl_controller_file x;
    ctl_controller_file_init(&x, &cfg, &bus);
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
    char err[1024] = "";
    int rc = ctl_controller_file_load(&x, argv[optind], err, sizeof err);
    if (rc != CFG_OK) {
        fprintf(stderr, "mgx controller: %s\n", err[0] ? err : "cannot load the config");
        rc = rc == CFG_E_NOMEM ? CTL_EXIT_FAILURE : CTL_EXIT_USAGE;
        goto out;
    }
    rc = CTL_EXIT_USAGE;
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
    cfg.log_level = verbose ? CTL_LOG_DEBUG : CTL_LOG_INFO;
    cfg_bus_config(&bus, &cfg.bus);
    if (!cfg.bus.client_id[0])
        cfg.bus.client_id = "controller";
    cfg.bus.log_level = cfg.log_level;
    /* room for a burst's receipts (a batch is up to 1,024) and an interval's results */
    cfg.bus.max_pending = 8192;

    rc = ctl_daemon_run(&cfg, ctl_stop_on_signals()) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
out:
    cfg_bus_clear(&bus); /* wipes the password */
    ctl_topology_clear(&cfg.topology);
    return rc;
}
