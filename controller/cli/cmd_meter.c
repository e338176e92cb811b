/*
 * `mgx meter`: the command line of the meter daemon (meterd/meterd.h does the work): options,
 * then once or the daemon loop.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/interval.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/stop_signal.h"
#include "common/wall_clock.h"
#include "meterd/meterd.h"

static const char USAGE[] =
    "usage: mgx meter CONFIG [--once] [--verbose] [--clock-speed N --clock-anchor REAL_S:SIM]\n"
    "\n"
    "Reads the Modbus meters configured in CONFIG and publishes their readings on the MQTT bus:\n"
    "  mgx/v1/<community>/meter/<id>/state   JSON reading, retained, QoS 1 (kept in a local\n"
    "                                        outbox while the broker is unreachable)\n"
    "  mgx/v1/<community>/meter/<id>/meta    make, model, serial, profile; retained\n"
    "  mgx/v1/<community>/status/<client_id> online / offline (last will); retained\n"
    "                                        (status/<home>/<client_id> when logged in as\n"
    "                                        <home>.meter or <home>)\n"
    "  homeassistant/sensor/<id>/...         Home Assistant discovery, with [homeassistant]\n"
    "The published totals never go down; the counter state is kept in <outbox>.counters.\n"
    "\n"
    "options:\n"
    "  --once      read every device once, print one JSON line per device on stdout and exit\n"
    "              (status 1 if any device failed); no broker needed, [bus] may be left out\n"
    "  --verbose   log every reading and connection detail on stderr\n"
    "  --clock-speed N, --clock-anchor REAL_S:SIM\n"
    "              stamp readings with an accelerated clock (simulated meters, demos, tests),\n"
    "              the same as the controller's and agents' options of that name\n"
    "  --help      this text\n"
    "\n"
    "CONFIG sections: [bus], [outbox], [homeassistant], [meter ID], [map NAME]; a home's one\n"
    "file may also hold the agent's [agent], which the meter daemon skips.\n"
    "See docs/meter-daemon.md, docs/meters.md and docs/mqtt-topics.md.\n";

int ctl_cmd_meter(int argc, char **argv)
{
    const char *config = NULL;
    bool once = false, clock_set = false;
    int log_level = CTL_LOG_INFO;
    int64_t now = ctl_wall_ms();
    ctl_clock clock = {now, now, 1};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return CTL_EXIT_OK;
        } else if (strcmp(argv[i], "--clock-speed") == 0 && i + 1 < argc) {
            if (ctl_opt_int64(argv[++i], 1, CTL_CLOCK_MAX_SPEED, &clock.speed)) {
                fprintf(stderr, "mgx meter: --clock-speed: expected an integer 1..%lld\n",
                        (long long)CTL_CLOCK_MAX_SPEED);
                return CTL_EXIT_USAGE;
            }
            clock_set = true;
        } else if (strcmp(argv[i], "--clock-anchor") == 0 && i + 1 < argc) {
            if (ctl_clock_parse_anchor(argv[++i], &clock) != CTL_IV_OK) {
                fprintf(stderr, "mgx meter: --clock-anchor: expected REAL_S:SIM_S\n");
                return CTL_EXIT_USAGE;
            }
            clock_set = true;
        } else if (strcmp(argv[i], "--once") == 0) {
            once = true;
        } else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
            log_level = CTL_LOG_DEBUG;
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
    ctl_meterd_options o = {config, log_level, clock_set ? &clock : NULL};
    int rc = once ? ctl_meterd_once(&o) : ctl_meterd_run(&o, ctl_stop_on_signals());
    return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}
