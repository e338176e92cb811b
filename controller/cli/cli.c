/*
 * `mgx` dispatch: maps the first argument to a subcommand, like git. Kept free of any
 * subcommand's logic so adding one is one table row.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#ifndef MGX_VERSION
#define MGX_VERSION "0.0.0"
#endif

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command COMMANDS[] = {
    {"market", ctl_cmd_market, "clear an interval's orders (`mgx market clear --help`)"},
    {"sim", ctl_cmd_sim, "simulate a community with and without local trading"},
    {"meter", ctl_cmd_meter, "read meters over Modbus and publish them on the bus"},
    {"controller", ctl_cmd_controller, "run the community's market daemon"},
    {"agent", ctl_cmd_agent, "run a home's trading agent"},
    {"keygen", ctl_cmd_keygen, "make an Ed25519 key pair"},
    {"participant", ctl_cmd_participant, "add, list or remove community participants"},
    {"ledger", ctl_cmd_ledger, "verify, prove and export the settlement ledger"},
    {"cluster", ctl_cmd_cluster, "a replicated controller node: status, add or remove a node"},
    {"witness", ctl_cmd_witness, "check and cosign the community ledger's checkpoints"},
    {"doctor", ctl_cmd_doctor, "check a daemon's config, keys, broker, meters, clock and files"},
    {"web", ctl_cmd_web, "serve the community's web dashboard (homes and coordinator)"},
};

static void usage(FILE *out)
{
    fputs("usage: mgx [--version] [--help] <command> [<args>]\n\n"
          "mgx runs a peer-to-peer energy market for a microgrid.\n\ncommands:\n",
          out);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(out, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fputs("  help         show this text, or `mgx help <command>` for a command's options\n\n"
          "Documentation: docs/ in the source tree (start with docs/quickstart.md).\n",
          out);
}

int ctl_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("mgx %s\n", MGX_VERSION);
        return CTL_EXIT_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return CTL_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return CTL_EXIT_OK;
        }
        char *help_argv[] = {argv[2], "--help", NULL};
        for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
            if (strcmp(argv[2], COMMANDS[i].name) == 0)
                return COMMANDS[i].run(2, help_argv);
        fprintf(stderr, "mgx: '%s' is not an mgx command. See 'mgx help'.\n", argv[2]);
        return CTL_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(cmd, COMMANDS[i].name) == 0)
            return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mgx: '%s' is not an mgx command. See 'mgx help'.\n", cmd);
    return CTL_EXIT_USAGE;
}
