/* `mgx sim`: placeholder until the simulator lands. */
#include "mgx/cli.h"

#include <stdio.h>

int ctl_cmd_sim(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("mgx sim: not built yet\n", stderr);
    return CTL_EXIT_FAILURE;
}
