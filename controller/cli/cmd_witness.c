/*
 * `mgx witness CONFIG [--once]`: runs a witness of the community ledger (witness/witness.h,
 * docs/witness.md). The shell: reads the clock, loops until SIGINT/SIGTERM, prints each step.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "common/stop_signal.h"
#include "common/wall_clock.h"
#include "witness/witness.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char USAGE[] =
    "usage: mgx witness CONFIG [--once]\n"
    "\n"
    "Follows the community ledger named in CONFIG's [witness] section (read-only), audits\n"
    "every block, checks that each new checkpoint extends the one it cosigned before and\n"
    "cosigns it (C2SP tlog-cosignature v1). --once: one step, then exit.\n"
    "\n"
    "Exit status (--once): 0 cosigned, unchanged or empty ledger; 1 refused or failed;\n"
    "2 usage. Without --once it runs until SIGINT/SIGTERM, refusing (and saying so) as long\n"
    "as the ledger is not an extension. See docs/witness.md.\n";

int ctl_cmd_witness(int argc, char **argv)
{
    const char *path = NULL;
    int once = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0)
            once = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return CTL_EXIT_OK;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "mgx witness: unexpected argument '%s'\n%s", argv[i], USAGE);
            return CTL_EXIT_USAGE;
        } else
            path = argv[i];
    }
    if (!path) {
        fputs(USAGE, stderr);
        return CTL_EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        fputs("mgx witness: libsodium failed to initialise\n", stderr);
        return CTL_EXIT_FAILURE;
    }
    ctl_witness_config c;
    char err[2048];
    if (ctl_witness_config_load(path, &c, err, sizeof err) != CFG_OK) {
        fprintf(stderr, "mgx witness: %s\n", err);
        return CTL_EXIT_FAILURE;
    }
    ctl_witness *w = NULL;
    if (ctl_witness_new(&c, &w, err, sizeof err) != CTL_WITNESS_OK) {
        fprintf(stderr, "mgx witness: %s\n", err);
        return CTL_EXIT_FAILURE;
    }
    volatile sig_atomic_t *stop = once ? NULL : ctl_stop_on_signals();
    int rc = CTL_EXIT_OK, last = 99;
    for (;;) {
        int s = ctl_witness_step(w, (uint64_t)(ctl_wall_ms() / 1000), err, sizeof err);
        /* a running witness reports what changed, not every unchanged poll */
        if (once || s != last || s == CTL_WITNESS_COSIGNED)
            fprintf(s < 0 ? stderr : stdout, "mgx witness: %s\n", err);
        fflush(stdout);
        last = s;
        if (once) {
            rc = s < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
            break;
        }
        for (int64_t i = 0; i < c.poll_s * 10 && !*stop; i++) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (*stop)
            break;
    }
    ctl_witness_free(w);
    return rc;
}
