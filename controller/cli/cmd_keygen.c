/*
 * `mgx keygen --out PREFIX`: makes an Ed25519 key pair for a home or the controller, writes
 * PREFIX.key (secret, mode 0600) and PREFIX.pub, and prints the public key for the community
 * coordinator to register. The shell around ctl_keygen_files; file formats in keys.h.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "cli/usage_error.h"

#include "orders/keys.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char USAGE[] =
    "usage: mgx keygen --out PREFIX\n"
    "\n"
    "Makes an Ed25519 key pair: PREFIX.key (the secret key, readable only by you; never\n"
    "share it) and PREFIX.pub (the public key, 64 hex digits). Prints the public key.\n"
    "Existing files are never overwritten.\n"
    "\n"
    "Register the public key with the community's coordinator:\n"
    "  mgx participant add --db controller.db --id ID --pubkey PREFIX.pub --meter METER\n"
    "A gateway's device key, which signs its readings (mgx meter [signing] key = PREFIX.key):\n"
    "  mgx participant meter-key --db controller.db --meter METER --gateway-key PREFIX.pub\n"
    "\n"
    "Exit status: 0 written, 1 failed (nothing written), 2 usage. See docs/participants.md.\n";

int ctl_cmd_keygen(int argc, char **argv)
{
    static const struct option LONG[] = {{"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *prefix = NULL;
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'o':
            prefix = optarg;
            break;
        case 'h':
            fputs(USAGE, stdout);
            return CTL_EXIT_OK;
        default: /* ':' (no value) or an unknown option */
            return ctl_cli_bad_option("mgx keygen", ch, argv, USAGE);
        }
    }
    if (optind < argc)
        return ctl_cli_extra_operand("mgx keygen", argv[optind]);
    if (!prefix || !*prefix) {
        fprintf(stderr, "mgx keygen: --out PREFIX is required\n%s", USAGE);
        return CTL_EXIT_USAGE;
    }
    uint8_t pk[CTL_PUBKEY_BYTES];
    int rc = ctl_keygen_files(prefix, pk);
    if (rc == CTL_KEY_E_EXISTS) {
        fprintf(stderr, "mgx keygen: %s.key or %s.pub already exists; %s\n", prefix, prefix,
                ctl_key_strerror(rc));
        return CTL_EXIT_FAILURE;
    }
    if (rc == CTL_KEY_E_IO) {
        fprintf(stderr, "mgx keygen: cannot write %s.key / %s.pub: %s\n", prefix, prefix,
                strerror(errno));
        return CTL_EXIT_FAILURE;
    }
    if (rc) {
        fprintf(stderr, "mgx keygen: %s\n", ctl_key_strerror(rc));
        return CTL_EXIT_FAILURE;
    }
    char hex[2 * CTL_PUBKEY_BYTES + 1];
    printf("%s\n", ctl_pubkey_hex(pk, hex));
    fprintf(stderr, "mgx keygen: wrote %s.key (secret, mode 0600) and %s.pub\n", prefix,
            prefix);
    return CTL_EXIT_OK;
}
