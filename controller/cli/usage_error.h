/*
 * Internal to the cli module: the usage errors every getopt_long-based subcommand reports the
 * same way, so the wording of "needs a value", "unknown option" and "unexpected argument" is
 * written once. cmd is how the message names the command ("mgx keygen"); each returns
 * CTL_EXIT_USAGE so a parser can `return` it.
 */
#ifndef MGX_CLI_USAGE_ERROR_H
#define MGX_CLI_USAGE_ERROR_H

/* For getopt_long run with a leading ':' in its optstring, after it returned ch for the option at
 * argv[optind - 1]: ':' means the option lacks its value; anything else is an unknown option,
 * reported with the usage text after it. */
int ctl_cli_bad_option(const char *cmd, int ch, char *const *argv, const char *usage);

/* An operand (arg) given to a command that takes none. */
int ctl_cli_extra_operand(const char *cmd, const char *arg);

#endif
