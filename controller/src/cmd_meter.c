/*
 * `mgx meter`: placeholder until the subcommand lands; it says so instead of pretending.
 */
#include "mgx/cli.h"

#include <stdio.h>

int ctl_cmd_meter(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("mgx meter: not available in this build yet\n", stderr);
    return CTL_EXIT_FAILURE;
}
