/*
 * `mgx participant add|update|list|remove`: the coordinator's view of the community registry in the
 * controller's SQLite database. The shell around registry.h: options, key files, messages and
 * output formats; the rules (unique ids, keys and meters) live in the registry.
 */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "orders/keys.h"
#include "db/registry.h"
#include "mgx/civil.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/peer_trust.h"

static const char USAGE[] =
    "usage: mgx participant add --db DB --id ID --pubkey FILE|KEY [--meter METER] [--role ROLE]\n"
    "                           [LIMITS]\n"
    "       mgx participant update --db DB --id ID LIMITS\n"
    "       mgx participant list --db DB [--json]\n"
    "       mgx participant remove --db DB --id ID\n"
    "       mgx participant meter-key --db DB --meter METER ... (see meter-key --help)\n"
    "\n"
    "Keeps the community's participants in the controller's database DB (created by `add` if\n"
    "missing; safe while the controller runs: changes apply to the next order).\n"
    "\n"
    "  --id ID          " CTL_ID_RULE " (it is an MQTT topic level)\n"
    "  --pubkey KEY     the participant's Ed25519 public key: a .pub file from `mgx keygen`,\n"
    "                   or the key itself as 64 hex digits or 44 base64 characters\n"
    "  --meter METER    the participant's meter id (required for roles home and boundary)\n"
    "  --role ROLE      home (default: submits orders), controller, observer, boundary (the\n"
    "                   coordinator's meter at the transformer or feeder; never trades)\n"
    "  --json           list as a JSON array\n"
    "LIMITS (a home's physical limits; settlement holds an interval whose metered energy\n"
    "exceeds them; `none` clears one; see docs/trust.md):\n"
    "  --connection-kw KW   connection capacity in kW (both directions), or instead\n"
    "  --connection-a A --voltage V [--phases N]   capacity = A x V x N (N: 1 or 3, default 1)\n"
    "  --pv-kwp KWP         registered PV peak power (0: no solar)\n"
    "  --battery-kwh KWH    usable battery energy (0: no battery)\n"
    "  --battery-kw KW      battery's largest discharge power\n"
    "\n"
    "Exit status: 0 done, 1 failed (the message says why; nothing changed), 2 usage.\n"
    "See docs/participants.md.\n";

typedef struct {
    const char *db, *id, *pubkey, *meter, *role;
    const char *conn_kw, *conn_a, *voltage, *phases, *pv_kwp, *batt_kwh, *batt_kw;
    int json;
} part_opts;

static int parse_opts(int argc, char **argv, const char *verb, part_opts *o)
{
    static const struct option LONG[] = {
        {"db", required_argument, NULL, 'd'},    {"id", required_argument, NULL, 'i'},
        {"pubkey", required_argument, NULL, 'k'}, {"meter", required_argument, NULL, 'm'},
        {"role", required_argument, NULL, 'r'},  {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},        {"connection-kw", required_argument, NULL, 'C'},
        {"connection-a", required_argument, NULL, 'A'}, {"voltage", required_argument, NULL, 'V'},
        {"phases", required_argument, NULL, 'P'}, {"pv-kwp", required_argument, NULL, 'S'},
        {"battery-kwh", required_argument, NULL, 'E'}, {"battery-kw", required_argument, NULL, 'B'},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'd': o->db = optarg; break;
        case 'i': o->id = optarg; break;
        case 'k': o->pubkey = optarg; break;
        case 'm': o->meter = optarg; break;
        case 'r': o->role = optarg; break;
        case 'j': o->json = 1; break;
        case 'C': o->conn_kw = optarg; break;
        case 'A': o->conn_a = optarg; break;
        case 'V': o->voltage = optarg; break;
        case 'P': o->phases = optarg; break;
        case 'S': o->pv_kwp = optarg; break;
        case 'E': o->batt_kwh = optarg; break;
        case 'B': o->batt_kw = optarg; break;
        case 'h':
            fputs(USAGE, stdout);
            return -1;
        case ':':
            fprintf(stderr, "mgx participant %s: %s needs a value\n", verb, argv[optind - 1]);
            return CTL_EXIT_USAGE;
        default:
            fprintf(stderr, "mgx participant %s: unknown option '%s'\n%s", verb,
                    argv[optind - 1], USAGE);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mgx participant %s: unexpected argument '%s'\n", verb, argv[optind]);
        return CTL_EXIT_USAGE;
    }
    if (!o->db) {
        fprintf(stderr, "mgx participant %s: --db DB is required\n", verb);
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

/* Opens DB; list and remove refuse to create a new, empty database by accident. */
static ctl_db *open_db(const char *verb, const char *path, int may_create)
{
    if (!may_create && access(path, F_OK) != 0) {
        fprintf(stderr, "mgx participant %s: %s: %s\n", verb, path, strerror(errno));
        return NULL;
    }
    ctl_db *db = NULL;
    char why[512] = "";
    int rc = ctl_registry_open(path, &db, why, sizeof why);
    if (rc) {
        /* why names the file ("path: reason") when there is one */
        if (why[0])
            fprintf(stderr, "mgx participant %s: %s: %s\n", verb, why, ctl_registry_strerror(rc));
        else
            fprintf(stderr, "mgx participant %s: %s: %s\n", verb, path, ctl_registry_strerror(rc));
        return NULL;
    }
    return db;
}

/* --pubkey: key text first, then a file. */
static int read_pubkey(const char *arg, uint8_t pk[CTL_PUBKEY_BYTES])
{
    if (ctl_pubkey_parse(arg, pk) == CTL_KEY_OK)
        return 0;
    int rc = ctl_pubkey_load(arg, pk);
    if (rc == CTL_KEY_OK)
        return 0;
    if (rc == CTL_KEY_E_IO)
        fprintf(stderr,
                "mgx participant add: --pubkey '%s' is neither a key (64 hex digits or 44 "
                "base64 characters) nor a readable file: %s\n",
                arg, strerror(errno));
    else
        fprintf(stderr,
                "mgx participant add: %s does not hold a public key (64 hex digits or 44 "
                "base64 characters)\n",
                arg);
    return -1;
}

/* "12.5" (kilo-units, at most 3 decimals) -> 12500 units, without floating point; "none" ->
 * CTL_LIMIT_NONE. -1 with a message when it is neither. */
static int parse_kilo(const char *verb, const char *opt, const char *s, int64_t *out)
{
    if (strcmp(s, "none") == 0) {
        *out = CTL_LIMIT_NONE;
        return 0;
    }
    int64_t whole = 0, frac = 0;
    int nd = 0, nf = -1;
    for (const char *c = s; *c; c++) {
        if (*c == '.' && nf < 0) {
            nf = 0;
            continue;
        }
        if (*c < '0' || *c > '9' || nd > 9 || nf >= 3)
            goto bad;
        if (nf < 0) {
            whole = whole * 10 + (*c - '0');
            nd++;
        } else {
            frac = frac * 10 + (*c - '0');
            nf++;
        }
    }
    if (nd == 0 && nf <= 0)
        goto bad;
    for (int i = nf < 0 ? 0 : nf; i < 3; i++)
        frac *= 10;
    *out = whole * 1000 + frac;
    return 0;
bad:
    fprintf(stderr,
            "mgx participant %s: %s '%s' must be a number with at most 3 decimals "
            "(0 to 999999999), or none\n",
            verb, opt, s);
    return -1;
}

/* The limits options into *l (CTL_LIMIT_KEEP where not given); *any says whether one was. */
static int parse_limits(const char *verb, const part_opts *o, ctl_limits *l, int *any)
{
    *l = (ctl_limits){CTL_LIMIT_KEEP, CTL_LIMIT_KEEP, CTL_LIMIT_KEEP, CTL_LIMIT_KEEP};
    *any = o->conn_kw || o->conn_a || o->voltage || o->phases || o->pv_kwp || o->batt_kwh ||
           o->batt_kw;
    if (o->conn_kw && (o->conn_a || o->voltage || o->phases)) {
        fprintf(stderr, "mgx participant %s: give --connection-kw or --connection-a with "
                        "--voltage, not both\n", verb);
        return -1;
    }
    if (o->conn_kw && parse_kilo(verb, "--connection-kw", o->conn_kw, &l->connection_w))
        return -1;
    if (o->conn_a || o->voltage || o->phases) {
        char *end;
        long a = o->conn_a ? strtol(o->conn_a, &end, 10) : -1;
        long v = o->voltage ? strtol(o->voltage, &end, 10) : -1;
        long ph = o->phases ? strtol(o->phases, &end, 10) : 1;
        if (a < 1 || a > 100000 || v < 1 || v > 100000 || (ph != 1 && ph != 3)) {
            fprintf(stderr, "mgx participant %s: --connection-a A (1..100000) and --voltage V "
                            "(1..100000) go together; --phases is 1 or 3\n", verb);
            return -1;
        }
        l->connection_w = (int64_t)a * v * ph;
    }
    if ((o->pv_kwp && parse_kilo(verb, "--pv-kwp", o->pv_kwp, &l->pv_wp)) ||
        (o->batt_kwh && parse_kilo(verb, "--battery-kwh", o->batt_kwh, &l->battery_wh)) ||
        (o->batt_kw && parse_kilo(verb, "--battery-kw", o->batt_kw, &l->battery_w)))
        return -1;
    return 0;
}

static void limit_text(int64_t v, const char *unit, char *buf, size_t cap)
{
    if (v == CTL_LIMIT_NONE)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%lld.%03lld%s", (long long)(v / 1000), (long long)(v % 1000), unit);
}

static int participant_update(const part_opts *o)
{
    ctl_limits l;
    int any;
    if (!o->id) {
        fprintf(stderr, "mgx participant update: --id is required\n");
        return CTL_EXIT_USAGE;
    }
    if (parse_limits("update", o, &l, &any))
        return CTL_EXIT_USAGE;
    if (!any || o->pubkey || o->meter || o->role) {
        fprintf(stderr, "mgx participant update: give one or more limits (--connection-kw, "
                        "--pv-kwp, ...); the key, meter and role change by remove and add\n");
        return CTL_EXIT_USAGE;
    }
    ctl_db *db = open_db("update", o->db, 0);
    if (!db)
        return CTL_EXIT_FAILURE;
    int rc = ctl_registry_limits_set(db, o->id, &l);
    ctl_limits now;
    if (rc == CTL_REG_OK && (rc = ctl_registry_limits_get(db, o->id, &now)) == CTL_REG_OK) {
        char c[32], pv[32], bh[32], bw[32];
        limit_text(now.connection_w, " kW", c, sizeof c);
        limit_text(now.pv_wp, " kWp", pv, sizeof pv);
        limit_text(now.battery_wh, " kWh", bh, sizeof bh);
        limit_text(now.battery_w, " kW", bw, sizeof bw);
        printf("updated %s: connection %s, pv %s, battery %s / %s\n", o->id, c, pv, bh, bw);
    } else {
        fprintf(stderr, "mgx participant update: %s: %s\n", o->id, ctl_registry_strerror(rc));
    }
    ctl_db_close(db);
    return rc == CTL_REG_OK ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}

static int participant_add(const part_opts *o)
{
    ctl_participant p;
    memset(&p, 0, sizeof p);
    if (!o->id || !o->pubkey) {
        fprintf(stderr, "mgx participant add: --id and --pubkey are required\n");
        return CTL_EXIT_USAGE;
    }
    int role = ctl_role_parse(o->role ? o->role : "home");
    if (role < 0) {
        fprintf(stderr,
                "mgx participant add: --role must be home, controller, observer or boundary, "
                "not '%s'\n",
                o->role);
        return CTL_EXIT_USAGE;
    }
    /* the bus carries an id as a topic level: refuse what it could not carry */
    if (!ctl_id_valid(o->id)) {
        fprintf(stderr, "mgx participant add: --id '%s' must be " CTL_ID_RULE "\n", o->id);
        return CTL_EXIT_USAGE;
    }
    if (o->meter && !ctl_id_valid(o->meter)) {
        fprintf(stderr, "mgx participant add: --meter '%s' must be " CTL_ID_RULE "\n", o->meter);
        return CTL_EXIT_USAGE;
    }
    if (role == CTL_ROLE_HOME && !o->meter) {
        fprintf(stderr, "mgx participant add: a home needs --meter METER (its meter's id)\n");
        return CTL_EXIT_USAGE;
    }
    if (role == CTL_ROLE_BOUNDARY && !o->meter) {
        fprintf(stderr, "mgx participant add: a boundary needs --meter METER (the coordinator's "
                        "meter at the transformer or feeder)\n");
        return CTL_EXIT_USAGE;
    }
    ctl_limits lim;
    int any_limit;
    if (parse_limits("add", o, &lim, &any_limit))
        return CTL_EXIT_USAGE;
    if (read_pubkey(o->pubkey, p.pubkey))
        return CTL_EXIT_FAILURE;
    snprintf(p.id, sizeof p.id, "%s", o->id);
    snprintf(p.meter_id, sizeof p.meter_id, "%s", o->meter ? o->meter : "");
    p.role = (ctl_role)role;
    ctl_db *db = open_db("add", o->db, 1);
    if (!db)
        return CTL_EXIT_FAILURE;
    int rc = ctl_registry_add(db, &p, (int64_t)time(NULL));
    /* a row left by an earlier participant of this id must not carry over */
    if (rc == CTL_REG_OK) {
        ctl_limits all = {CTL_LIMIT_NONE, CTL_LIMIT_NONE, CTL_LIMIT_NONE, CTL_LIMIT_NONE};
        if (any_limit) {
            int64_t *d[4] = {&all.connection_w, &all.pv_wp, &all.battery_wh, &all.battery_w};
            const int64_t s[4] = {lim.connection_w, lim.pv_wp, lim.battery_wh, lim.battery_w};
            for (int i = 0; i < 4; i++)
                if (s[i] != CTL_LIMIT_KEEP)
                    *d[i] = s[i];
        }
        rc = ctl_registry_limits_set(db, p.id, &all);
    }
    int status = CTL_EXIT_OK;
    char hex[2 * CTL_PUBKEY_BYTES + 1];
    if (rc == CTL_REG_OK) {
        printf("added %s (%s%s%s, key %s)\n", p.id, ctl_role_name(role),
               p.meter_id[0] ? ", meter " : "", p.meter_id, ctl_pubkey_hex(p.pubkey, hex));
    } else {
        fprintf(stderr, "mgx participant add: %s: %s%s%s\n", p.id, ctl_registry_strerror(rc),
                rc == CTL_REG_E_DB ? ": " : "", rc == CTL_REG_E_DB ? ctl_db_errmsg(db) : "");
        status = CTL_EXIT_FAILURE;
    }
    ctl_db_close(db);
    return status;
}

static int participant_remove(const part_opts *o)
{
    if (!o->id) {
        fprintf(stderr, "mgx participant remove: --id is required\n");
        return CTL_EXIT_USAGE;
    }
    ctl_db *db = open_db("remove", o->db, 0);
    if (!db)
        return CTL_EXIT_FAILURE;
    int rc = ctl_registry_remove(db, o->id);
    if (rc == CTL_REG_OK)
        printf("removed %s\n", o->id);
    else
        fprintf(stderr, "mgx participant remove: %s: %s\n", o->id, ctl_registry_strerror(rc));
    ctl_db_close(db);
    return rc == CTL_REG_OK ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}

static int print_row(const ctl_participant *p, void *ctx)
{
    (void)ctx;
    char hex[2 * CTL_PUBKEY_BYTES + 1], when[32];
    mkt_format_time(p->added_s, 0, when, sizeof when);
    printf("%-20s %-10s %-20s %s %s\n", p->id, ctl_role_name((int)p->role),
           p->meter_id[0] ? p->meter_id : "-", ctl_pubkey_hex(p->pubkey, hex), when);
    return 0;
}

typedef struct {
    ctl_db *db;
    json_t *arr;
} list_ctx;

static int append_json(const ctl_participant *p, void *ctx)
{
    char hex[2 * CTL_PUBKEY_BYTES + 1], when[32];
    mkt_format_time(p->added_s, 0, when, sizeof when);
    list_ctx *c = ctx;
    ctl_limits l;
    if (ctl_registry_limits_get(c->db, p->id, &l) != CTL_REG_OK)
        return -1;
    json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:I, s:s}", "id", p->id, "role",
                          ctl_role_name((int)p->role), "meter_id",
                          p->meter_id[0] ? json_string(p->meter_id) : json_null(), "pubkey",
                          ctl_pubkey_hex(p->pubkey, hex), "added_s", (json_int_t)p->added_s,
                          "added", when);
    if (!o)
        return -1;
    /* the limits in W / Wh; null when not registered */
    const char *names[4] = {"connection_w", "pv_wp", "battery_wh", "battery_w"};
    const int64_t v[4] = {l.connection_w, l.pv_wp, l.battery_wh, l.battery_w};
    for (int i = 0; i < 4; i++)
        json_object_set_new(o, names[i], v[i] == CTL_LIMIT_NONE ? json_null() : json_integer(v[i]));
    /* a home's trust over time (docs/trust.md, layers 3 and 4) */
    ctl_peer_trust t;
    if (p->role == CTL_ROLE_HOME) {
        if (ctl_peer_trust_get(c->db, p->id, &t) != CTL_DB_OK)
            return -1;
        json_object_set_new(
            o, "trust",
            json_pack("{s:I, s:I, s:I, s:o}", "peer_checked", (json_int_t)t.checked,
                      "peer_flagged", (json_int_t)t.flagged, "disputed_held",
                      (json_int_t)t.disputed, "score_permille",
                      t.score_permille < 0 ? json_null() : json_integer(t.score_permille)));
    }
    return json_array_append_new(c->arr, o) == 0 ? 0 : -1;
}

static int participant_list(const part_opts *o)
{
    ctl_db *db = open_db("list", o->db, 0);
    if (!db)
        return CTL_EXIT_FAILURE;
    int rc;
    if (o->json) {
        json_t *arr = json_array();
        list_ctx c = {db, arr};
        rc = arr ? ctl_registry_list(db, append_json, &c) : -1;
        if (rc == 0) {
            char *text = json_dumps(arr, JSON_INDENT(2));
            if (text)
                printf("%s\n", text);
            else
                rc = -1;
            free(text);
        }
        json_decref(arr);
    } else {
        printf("%-20s %-10s %-20s %-64s %s\n", "id", "role", "meter", "pubkey", "added");
        rc = ctl_registry_list(db, print_row, NULL);
    }
    if (rc)
        fprintf(stderr, "mgx participant list: %s: %s\n", o->db,
                rc == CTL_REG_E_DB ? ctl_db_errmsg(db)
                : rc < 0 && rc >= CTL_REG_E_BAD_ROW ? ctl_registry_strerror(rc)
                                                   : "out of memory");
    ctl_db_close(db);
    return rc ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}

int ctl_cmd_participant(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return CTL_EXIT_USAGE;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        fputs(USAGE, stdout);
        return CTL_EXIT_OK;
    }
    if (strcmp(verb, "meter-key") == 0)
        return ctl_cmd_meter_key(argc - 1, argv + 1);
    int (*run)(const part_opts *) = strcmp(verb, "add") == 0      ? participant_add
                                    : strcmp(verb, "update") == 0 ? participant_update
                                    : strcmp(verb, "list") == 0   ? participant_list
                                    : strcmp(verb, "remove") == 0 ? participant_remove
                                                                  : NULL;
    if (!run) {
        fprintf(stderr, "mgx participant: unknown action '%s'\n%s", verb, USAGE);
        return CTL_EXIT_USAGE;
    }
    part_opts o;
    int rc = parse_opts(argc - 1, argv + 1, verb, &o);
    if (rc)
        return rc < 0 ? CTL_EXIT_OK : rc;
    return run(&o);
}
