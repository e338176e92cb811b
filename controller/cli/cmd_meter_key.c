/*
 * `mgx participant meter-key`: registers the public key that attests a meter's readings (issue
 * 12, signed readings): the gateway's Ed25519 device key (`mgx keygen` on the machine running
 * `mgx meter`, tier 1) or the certified meter's own OCMF key (tier 2). The shell around
 * db/meter_keys.h; the controller reads the keys for every reading.
 */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "bus/ocmf.h"
#include "db/meter_keys.h"
#include "db/registry.h"
#include "orders/keys.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char USAGE[] =
    "usage: mgx participant meter-key --db DB --meter METER --gateway-key FILE|KEY\n"
    "       mgx participant meter-key --db DB --meter METER --ocmf-key FILE|HEX\n"
    "       mgx participant meter-key --db DB --meter METER --remove gateway|ocmf\n"
    "\n"
    "Registers (or replaces) the key that signs METER's readings; METER must be a registered\n"
    "participant's meter.\n"
    "  --gateway-key  the .pub of `mgx keygen` whose .key is in the meter file's [signing]\n"
    "                 (readings it signs are attested 'gateway', tier 1)\n"
    "  --ocmf-key     the meter's OCMF public key as its maker prints it: hex of the DER\n"
    "                 SubjectPublicKeyInfo (\"3059301306...\", blanks allowed), or a file of it\n"
    "                 (OCMF readings it signs are attested 'certified', tier 2)\n"
    "\n"
    "Exit status: 0 done, 1 failed, 2 usage. See docs/reading-signatures.md.\n";

/* Hex digits (blanks and newlines skipped) into out; the length, or 0 when not hex. */
static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *h; h++) {
        int v;
        if (*h == ' ' || *h == '\n' || *h == '\r' || *h == '\t')
            continue;
        if (*h >= '0' && *h <= '9')
            v = *h - '0';
        else if (*h >= 'a' && *h <= 'f')
            v = *h - 'a' + 10;
        else if (*h >= 'A' && *h <= 'F')
            v = *h - 'A' + 10;
        else
            return 0;
        if (hi < 0) {
            hi = v;
        } else {
            if (n == cap)
                return 0;
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return hi < 0 ? n : 0;
}

/* --ocmf-key: hex text first, then a file of it. */
static size_t read_ocmf_key(const char *arg, uint8_t *out, size_t cap)
{
    size_t n = unhex(arg, out, cap);
    if (n)
        return n;
    FILE *f = fopen(arg, "r");
    if (!f)
        return 0;
    char buf[4 * CTL_MKEY_MAX];
    size_t r = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[r] = '\0';
    return unhex(buf, out, cap);
}

int ctl_cmd_meter_key(int argc, char **argv)
{
    static const struct option LONG[] = {
        {"db", required_argument, NULL, 'd'},          {"meter", required_argument, NULL, 'm'},
        {"gateway-key", required_argument, NULL, 'g'}, {"ocmf-key", required_argument, NULL, 'o'},
        {"remove", required_argument, NULL, 'r'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *dbp = NULL, *meter = NULL, *gw = NULL, *oc = NULL, *rm = NULL;
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'd': dbp = optarg; break;
        case 'm': meter = optarg; break;
        case 'g': gw = optarg; break;
        case 'o': oc = optarg; break;
        case 'r': rm = optarg; break;
        case 'h':
            fputs(USAGE, stdout);
            return CTL_EXIT_OK;
        default:
            fprintf(stderr, "mgx participant meter-key: bad option '%s'\n%s", argv[optind - 1],
                    USAGE);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind < argc || !dbp || !meter || (!!gw + !!oc + !!rm) != 1 ||
        (rm && strcmp(rm, "gateway") != 0 && strcmp(rm, "ocmf") != 0)) {
        fprintf(stderr, "mgx participant meter-key: needs --db, --meter and one of "
                        "--gateway-key, --ocmf-key, --remove gateway|ocmf\n%s",
                USAGE);
        return CTL_EXIT_USAGE;
    }
    uint8_t key[CTL_MKEY_MAX];
    size_t n = 0;
    char curve[32] = "", why[200] = "";
    int kind = gw || (rm && strcmp(rm, "gateway") == 0) ? CTL_MKEY_GATEWAY : CTL_MKEY_CERTIFIED;
    if (gw) {
        if (ctl_pubkey_parse(gw, key) != CTL_KEY_OK && ctl_pubkey_load(gw, key) != CTL_KEY_OK) {
            fprintf(stderr, "mgx participant meter-key: --gateway-key '%s' is neither an "
                            "Ed25519 key nor a .pub file holding one\n", gw);
            return CTL_EXIT_FAILURE;
        }
        n = CTL_PUBKEY_BYTES;
    } else if (oc) {
        n = read_ocmf_key(oc, key, sizeof key);
        if (n == 0 || ocmf_key_check(key, n, curve, sizeof curve, why, sizeof why) != OCMF_OK) {
            fprintf(stderr, "mgx participant meter-key: --ocmf-key: %s\n",
                    n ? why : "neither hex nor a file of hex");
            return CTL_EXIT_FAILURE;
        }
    }
    ctl_db *db = NULL;
    char err[512] = "";
    if (ctl_registry_open(dbp, &db, err, sizeof err) != CTL_REG_OK) {
        fprintf(stderr, "mgx participant meter-key: %s\n", err);
        return CTL_EXIT_FAILURE;
    }
    ctl_participant p;
    int status = CTL_EXIT_FAILURE;
    if (ctl_registry_lookup_meter(db, meter, &p) != CTL_REG_OK) {
        fprintf(stderr, "mgx participant meter-key: no participant has meter '%s' (add it "
                        "with `mgx participant add --meter`)\n", meter);
        goto out;
    }
    int rc = rm ? ctl_meter_key_remove(db, meter, kind)
                : ctl_meter_key_set(db, meter, kind, key, n, (int64_t)time(NULL));
    if (rc != CTL_DB_OK) {
        fprintf(stderr, "mgx participant meter-key: %s\n", ctl_db_errmsg(db));
        goto out;
    }
    if (rm)
        printf("meter %s (%s): %s key removed\n", meter, p.id, rm);
    else if (gw)
        printf("meter %s (%s): gateway key registered (readings it signs: tier 1)\n", meter,
               p.id);
    else
        printf("meter %s (%s): OCMF key on %s registered (readings it signs: tier 2)\n", meter,
               p.id, curve);
    status = CTL_EXIT_OK;
out:
    ctl_db_close(db);
    return status;
}
