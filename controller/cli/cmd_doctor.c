/*
 * `mgx doctor CONFIG`: the command line around cli/doctor.h.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "cli/doctor.h"
#include "cli/usage_error.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static const char USAGE[] =
    "usage: mgx doctor CONFIG [--timeout-ms N] [--skip-meters]\n"
    "\n"
    "Checks what the daemon reading CONFIG needs, and says what to fix: the config itself (as\n"
    "mgx controller, agent or meter would read it), the secret files it names (present,\n"
    "readable, mode 600), the broker (connects with the file's credentials as CLIENT_ID-doctor\n"
    "and leaves nothing retained), each meter once, the system clock (NTP) and the SQLite files\n"
    "(quick_check, schema version; opened read-only). Safe while the daemons run.\n"
    "\n"
    "  --timeout-ms N   how long the broker has to answer (default 10000)\n"
    "  --skip-meters    do not read the meters\n"
    "\n"
    "Exit status: 0 nothing failed (warnings allowed), 1 something failed, 2 usage.\n"
    "See docs/operations.md.\n";

int ctl_cmd_doctor(int argc, char **argv)
{
    static const struct option LONG[] = {{"timeout-ms", required_argument, NULL, 't'},
                                         {"skip-meters", no_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    ctl_doctor_options o = {NULL, 0, 0};
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", LONG, NULL)) != -1) {
        switch (ch) {
        case 't': {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 600000) {
                fprintf(stderr, "mgx doctor: --timeout-ms: 1 to 600000, got '%s'\n%s", optarg,
                        USAGE);
                return CTL_EXIT_USAGE;
            }
            o.broker_timeout_ms = (int)v;
            break;
        }
        case 's':
            o.skip_meters = 1;
            break;
        case 'h':
            fputs(USAGE, stdout);
            return CTL_EXIT_OK;
        default: /* ':' (no value) or an unknown option */
            return ctl_cli_bad_option("mgx doctor", ch, argv, USAGE);
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "mgx doctor: CONFIG is required\n%s", USAGE);
        return CTL_EXIT_USAGE;
    }
    if (optind + 1 < argc)
        return ctl_cli_extra_operand("mgx doctor", argv[optind + 1]);
    o.config_path = argv[optind];
    return ctl_doctor_run(&o, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}
