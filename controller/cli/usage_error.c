/*
 * The shared usage-error messages of the subcommands (see usage_error.h).
 */
#include "cli/usage_error.h"

#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>

int ctl_cli_bad_option(const char *cmd, int ch, char *const *argv, const char *usage)
{
    if (ch == ':')
        fprintf(stderr, "%s: %s needs a value\n", cmd, argv[optind - 1]);
    else
        fprintf(stderr, "%s: unknown option '%s'\n%s", cmd, argv[optind - 1], usage);
    return CTL_EXIT_USAGE;
}

int ctl_cli_extra_operand(const char *cmd, const char *arg)
{
    fprintf(stderr, "%s: unexpected argument '%s'\n", cmd, arg);
    return CTL_EXIT_USAGE;
}
