/*
 * `mgx agent CONFIG [--clock-speed N] [--clock-anchor REAL_S:SIM_S]`: runs a home's trading
 * agent until SIGINT or SIGTERM. The work is in agent.c; this file parses the command line and
 * asks stop_signal.h for the stop flag. docs/agent.md explains the config file.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "common/interval.h"
#include "common/opt.h"
#include "common/stop_signal.h"
#include "common/wall_clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
    fputs("usage: mgx agent CONFIG [--clock-speed N] [--clock-anchor REAL_S:SIM_S]\n\n"
          "Runs a home's trading agent: follows the home's meter on the bus, forecasts each\n"
          "interval by persistence, prices it with the configured strategy (as in mgx sim),\n"
          "signs the order, keeps it in a local outbox and resends it until the controller's\n"
          "receipt arrives. Stops cleanly on SIGINT or SIGTERM.\n\n"
          "  --clock-speed N             run the market clock N times faster than real time\n"
          "                              (demos and tests; the controller must use the same)\n"
          "  --clock-anchor REAL_S:SIM_S real Unix time REAL_S is market time SIM_S (Unix s or\n"
          "                              2024-06-01T00:00:00Z); default: now is now\n\n"
          "CONFIG sections: [bus] (the same as mgx meter's) and [agent]; a home's one file\n"
          "may also hold the meter daemon's sections, which the agent skips.\n"
          "See docs/agent.md.\n",
          out);
}

int ctl_cmd_agent(int argc, char **argv)
{
    const char *path = NULL;
    int64_t now_ms = ctl_wall_ms();
    ctl_clock clock = {now_ms, now_ms, 1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return CTL_EXIT_OK;
        } else if (!strcmp(argv[i], "--clock-speed") && i + 1 < argc) {
            if (ctl_opt_int64(argv[++i], 1, CTL_CLOCK_MAX_SPEED, &clock.speed)) {
                fprintf(stderr, "mgx agent: --clock-speed: expected an integer 1..%lld\n",
                        (long long)CTL_CLOCK_MAX_SPEED);
                return CTL_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "--clock-anchor") && i + 1 < argc) {
            if (ctl_clock_parse_anchor(argv[++i], &clock) != CTL_IV_OK) {
                fprintf(stderr, "mgx agent: --clock-anchor: expected REAL_S:SIM_S\n");
                return CTL_EXIT_USAGE;
            }
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "mgx agent: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return CTL_EXIT_USAGE;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    static agc_config cfg;
    char err[512];
    if (agc_load(path, &cfg, err, sizeof err)) {
        fprintf(stderr, "mgx agent: %s\n", err);
        return CTL_EXIT_FAILURE;
    }
    agent *a = NULL;
    int made = agent_new(&cfg, &clock, &a, err, sizeof err);
    agc_clear(&cfg); /* the bus client keeps its own copy of the password */
    if (made) {
        fprintf(stderr, "mgx agent: %s\n", err);
        return CTL_EXIT_FAILURE;
    }
    int rc = agent_run(a, ctl_stop_on_signals());
    agent_free(a);
    return rc ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}
