/*
 * The [controller] and [solana] sections of `mgx controller`'s file and their load through the
 * shared loader (see controller_config.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "daemon/controller_config.h"

#include "common/errbuf.h"
#include "daemon/publish_body.h"
#include "orders/keys.h"

#include <stdio.h>
#include <string.h>

/* The [controller] keys; CONTROLLER_KEYS[K_X] is the key's name (cfg_key_index returns K_X). */
enum {
    K_COMMUNITY,
    K_DB,
    K_INTERVAL_S,
    K_GATE_CLOSURE_S,
    K_MAX_AHEAD_INTERVALS,
    K_MECHANISM,
    K_FEED_IN_UC_PER_KWH,
    K_RETAIL_UC_PER_KWH,
    K_NETWORK_FEE_UC_PER_KWH,
    K_SETTLEMENT_GRACE_S,
    K_SETTLEMENT_KEY,
    K_READING_MAX_GAP_S,
    K_METER_MAX_POWER_W,
    K_CLOCK_SPEED,
    K_CLOCK_ANCHOR,
    K_METRICS_LISTEN,
    K_METRICS_TEXTFILE,
    K_READING_RETENTION_DAYS,
    K_MIN_ATTESTATION_TIER,
    K_READING_MAX_FUTURE_S,
    K_READING_MAX_PER_INTERVAL,
    K_ORDER_MAX_PER_INTERVAL,
    K_MIN_GROUP_SIZE,
    K_TIMING,
    K_CREDIT_MIN_TIER,
    K_BOUNDARY_TOLERANCE_PERMILLE,
    K_BOUNDARY_TOLERANCE_WH,
    K_BOUNDARY_MIN_TIER,
    K_PEER_CHECK,
    K_PEER_TOLERANCE_PERMILLE,
    K_PEER_FLOOR_W_PER_KWP,
    K_PEER_MIN_PEERS,
    K_WITNESS_KEYS,
    K_COUNT
};
/* cfg_once keeps the keys already given as bits of an unsigned */
_Static_assert(K_COUNT <= 64, "more [controller] keys than bits in ctl_controller_file.seen");

static const char *const CONTROLLER_KEYS[K_COUNT + 1] = {
    [K_COMMUNITY] = "community",
    [K_DB] = "db",
    [K_INTERVAL_S] = "interval_s",
    [K_GATE_CLOSURE_S] = "gate_closure_s",
    [K_MAX_AHEAD_INTERVALS] = "max_ahead_intervals",
    [K_MECHANISM] = "mechanism",
    [K_FEED_IN_UC_PER_KWH] = "feed_in_uc_per_kwh",
    [K_RETAIL_UC_PER_KWH] = "retail_uc_per_kwh",
    [K_NETWORK_FEE_UC_PER_KWH] = "network_fee_uc_per_kwh",
    [K_SETTLEMENT_GRACE_S] = "settlement_grace_s",
    [K_SETTLEMENT_KEY] = "settlement_key",
    [K_READING_MAX_GAP_S] = "reading_max_gap_s",
    [K_METER_MAX_POWER_W] = "meter_max_power_w",
    [K_CLOCK_SPEED] = "clock_speed",
    [K_CLOCK_ANCHOR] = "clock_anchor",
    [K_METRICS_LISTEN] = "metrics_listen",
    [K_METRICS_TEXTFILE] = "metrics_textfile",
    [K_READING_RETENTION_DAYS] = "reading_retention_days",
    [K_MIN_ATTESTATION_TIER] = "min_attestation_tier",
    [K_READING_MAX_FUTURE_S] = "reading_max_future_s",
    [K_READING_MAX_PER_INTERVAL] = "reading_max_per_interval",
    [K_ORDER_MAX_PER_INTERVAL] = "order_max_per_interval",
    [K_MIN_GROUP_SIZE] = "min_group_size",
    [K_TIMING] = "timing",
    [K_CREDIT_MIN_TIER] = "credit_min_tier",
    [K_BOUNDARY_TOLERANCE_PERMILLE] = "boundary_tolerance_permille",
    [K_BOUNDARY_TOLERANCE_WH] = "boundary_tolerance_wh",
    [K_BOUNDARY_MIN_TIER] = "boundary_min_tier",
    [K_PEER_CHECK] = "peer_check",
    [K_PEER_TOLERANCE_PERMILLE] = "peer_tolerance_permille",
    [K_PEER_FLOOR_W_PER_KWP] = "peer_floor_w_per_kwp",
    [K_PEER_MIN_PEERS] = "peer_min_peers",
    [K_WITNESS_KEYS] = "witness_keys",
    [K_COUNT] = NULL};

static int path_key(ctl_controller_file *x, const char *key, const char *value, char *dst,
                    size_t cap, char *err, size_t errlen)
{
    return cfg_path(x->loader, value, dst, cap) == CFG_OK
               ? CFG_OK
               : ctl_fail(CFG_E_BAD, err, errlen, "%s: path empty or too long", key);
}

/* witness_keys = FILE [FILE]...: the public keys (`mgx keygen` .pub files) of the witnesses
 * whose cosignatures the controller collects and republishes (settle/cosig_collect.h). */
static int witness_keys(ctl_controller_file *x, const char *key, const char *value, char *err,
                        size_t errlen)
{
    ctl_daemon_config *c = x->cfg;
    char list[CTL_PATH_MAX], path[CTL_PATH_MAX];
    if (snprintf(list, sizeof list, "%s", value) >= (int)sizeof list)
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: too long", key);
    c->n_witness = 0;
    char *save = NULL;
    for (char *f = strtok_r(list, " ,\t", &save); f; f = strtok_r(NULL, " ,\t", &save)) {
        if (c->n_witness == CTL_WITNESS_MAX)
            return ctl_fail(CFG_E_BAD, err, errlen, "%s: at most %d keys", key, CTL_WITNESS_MAX);
        if (path_key(x, key, f, path, sizeof path, err, errlen) != CFG_OK)
            return CFG_E_BAD;
        if (ctl_pubkey_load(path, c->witness_pk[c->n_witness]) != 0)
            return ctl_fail(CFG_E_BAD, err, errlen,
                            "%s: %s is not a public key file (64 hex digits, from mgx keygen)",
                            key, path);
        c->n_witness++;
    }
    return c->n_witness ? CFG_OK : ctl_fail(CFG_E_BAD, err, errlen, "%s: no file", key);
}

static int controller_value(ctl_controller_file *x, int k, const char *key, const char *value,
                            char *err, size_t errlen)
{
    ctl_daemon_config *c = x->cfg;
    int64_t v;
    switch (k) {
    case K_COMMUNITY:
        return cfg_parse_id(key, value, x->community, err, errlen);
    case K_DB:
        return path_key(x, key, value, c->db_path, sizeof c->db_path, err, errlen);
    case K_INTERVAL_S:
        return cfg_parse_int(key, value, 1, CTL_INTERVAL_MAX_LEN_S, &c->rules.length_s, err,
                             errlen);
    case K_GATE_CLOSURE_S:
        return cfg_parse_int(key, value, 0, CTL_INTERVAL_MAX_GATE_S, &c->rules.gate_closure_s, err,
                             errlen);
    case K_MAX_AHEAD_INTERVALS:
        return cfg_parse_int(key, value, 1, CTL_INTERVAL_MAX_AHEAD, &c->rules.max_ahead, err,
                             errlen);
    case K_MECHANISM:
        return mkt_mechanism_parse(value, &c->params.mechanism) == MKT_OK
                   ? CFG_OK
                   : ctl_fail(CFG_E_BAD, err, errlen,
                              "mechanism must be pay-as-clear or pay-as-bid");
    case K_FEED_IN_UC_PER_KWH:
        return cfg_parse_int(key, value, 0, MKT_PRICE_MAX_UC_PER_KWH, &c->params.feed_in_uc_per_kwh,
                             err, errlen);
    case K_RETAIL_UC_PER_KWH:
        return cfg_parse_int(key, value, 0, MKT_PRICE_MAX_UC_PER_KWH, &c->params.retail_uc_per_kwh,
                             err, errlen);
    case K_NETWORK_FEE_UC_PER_KWH:
        return cfg_parse_int(key, value, 0, MKT_PRICE_MAX_UC_PER_KWH,
                             &c->params.network_fee_uc_per_kwh, err, errlen);
    case K_SETTLEMENT_GRACE_S:
        if (cfg_parse_int(key, value, 0, 86400, &v, err, errlen))
            return CFG_E_BAD;
        c->settlement_grace_s = (int)v;
        return CFG_OK;
    case K_SETTLEMENT_KEY:
        return path_key(x, key, value, c->settlement_key, sizeof c->settlement_key, err, errlen);
    case K_READING_MAX_GAP_S:
        return cfg_parse_int(key, value, 1, 86400, &c->reading_max_gap_s, err, errlen);
    case K_METER_MAX_POWER_W:
        return cfg_parse_int(key, value, 0, INT64_C(1000000000), &c->meter_max_power_w, err,
                             errlen);
    case K_CLOCK_SPEED:
        return cfg_parse_int(key, value, 1, CTL_CLOCK_MAX_SPEED, &x->speed, err, errlen);
    case K_CLOCK_ANCHOR:
        return cfg_parse_str(key, value, x->anchor, sizeof x->anchor, err, errlen);
    case K_METRICS_LISTEN:
        return cfg_parse_str(key, value, c->metrics_listen, sizeof c->metrics_listen, err, errlen);
    case K_METRICS_TEXTFILE:
        return path_key(x, key, value, c->metrics_textfile, sizeof c->metrics_textfile, err,
                        errlen);
    case K_READING_RETENTION_DAYS:
        return cfg_parse_int(key, value, 0, 36500, &c->reading_retention_days, err, errlen);
    case K_MIN_ATTESTATION_TIER: /* readings below it are refused (settle/reading_attest.h) */
        return cfg_parse_int(key, value, 0, 2, &c->min_attestation_tier, err, errlen);
    case K_READING_MAX_FUTURE_S:
        return cfg_parse_int(key, value, 0, 3600, &c->reading_max_future_s, err, errlen);
    case K_READING_MAX_PER_INTERVAL:
        return cfg_parse_int(key, value, 1, 5000, &c->reading_max_per_interval, err, errlen);
    case K_ORDER_MAX_PER_INTERVAL:
        return cfg_parse_int(key, value, 1, 1000000, &c->order_max_per_interval, err, errlen);
    case K_MIN_GROUP_SIZE:
        return cfg_parse_int(key, value, 1, CTL_MIN_GROUP_SIZE_MAX, &c->min_group_size, err,
                             errlen);
    case K_WITNESS_KEYS:
        return witness_keys(x, key, value, err, errlen);
    case K_CREDIT_MIN_TIER: /* energy credits: -1 off, else the tier that mints (docs/credits.md) */
        return cfg_parse_int(key, value, -1, 2, &c->credit_min_tier, err, errlen);
    case K_TIMING:
        /* parsed here, not with mkt_timing_parse, so the error names both choices */
        if (strcmp(value, "ex_ante") == 0)
            c->timing = MKT_EX_ANTE;
        else if (strcmp(value, "ex_post") == 0)
            c->timing = MKT_EX_POST;
        else
            return ctl_fail(CFG_E_BAD, err, errlen, "timing must be ex_ante or ex_post");
        return CFG_OK;
    /* trust layers 3 and 4 (docs/trust.md) */
    case K_BOUNDARY_TOLERANCE_PERMILLE:
        return cfg_parse_int(key, value, 0, 1000000, &c->trust.balance.tolerance_permille, err,
                             errlen);
    case K_BOUNDARY_TOLERANCE_WH:
        return cfg_parse_int(key, value, 0, INT64_C(1000000000000), &c->trust.balance.floor_wh,
                             err, errlen);
    case K_BOUNDARY_MIN_TIER:
        return cfg_parse_int(key, value, 0, 2, &c->trust.boundary_min_tier, err, errlen);
    case K_PEER_CHECK: {
        bool on;
        if (cfg_parse_bool(key, value, &on, err, errlen) != CFG_OK)
            return CFG_E_BAD;
        c->trust.peer_on = on;
        return CFG_OK;
    }
    case K_PEER_TOLERANCE_PERMILLE:
        return cfg_parse_int(key, value, 1000, 1000000, &c->trust.peer.tolerance_permille, err,
                             errlen);
    case K_PEER_FLOOR_W_PER_KWP:
        return cfg_parse_int(key, value, 0, 1000000, &c->trust.peer.floor_w_per_kwp, err,
                             errlen);
    case K_PEER_MIN_PEERS:
        if (cfg_parse_int(key, value, 1, 100000, &v, err, errlen))
            return CFG_E_BAD;
        c->trust.peer.min_peers = (size_t)v;
        return CFG_OK;
    default:
        return CFG_NOT_MINE;
    }
}

static int controller_key(void *ctx, const char *section, const char *key, const char *value,
                          int line, char *err, size_t errlen)
{
    ctl_controller_file *x = ctx;
    if (strcmp(section, "controller") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (x->line)
            return ctl_fail(CFG_E_BAD, err, errlen, "[controller] given twice (first at line %d)",
                            x->line);
        x->line = line;
        return CFG_OK;
    }
    int k = cfg_key_index(CONTROLLER_KEYS, key);
    if (k < 0)
        return CFG_NOT_MINE;
    if (cfg_once(&x->seen, (unsigned)k, key, err, errlen) != CFG_OK)
        return CFG_E_BAD;
    return controller_value(x, k, key, value, err, errlen);
}

/* Before [bus] is checked: the community may be given in [controller] (where the controller
 * used to take it) instead of [bus]; both must then agree. */
static int controller_finish(void *ctx, const char *path, char *err, size_t errlen)
{
    ctl_controller_file *x = ctx;
    cfg_bus *b = x->bus;
    if (!x->line)
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: no [controller] section", path);
    if (x->community[0] && b->community[0] && strcmp(x->community, b->community) != 0)
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s:%d: [controller] community '%s' differs from [bus] "
                        "community '%s'",
                        path, x->line, x->community, b->community);
    if (x->community[0])
        snprintf(b->community, sizeof b->community, "%s", x->community);
    if (b->line && !b->community[0])
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s:%d: community is required ([bus] community = NAME)", path, b->line);
    return CFG_OK;
}

static int solana_key(void *ctx, const char *section, const char *key, const char *value, int line,
                      char *err, size_t errlen)
{
    ctl_controller_file *x = ctx;
    if (strcmp(section, "solana") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (x->solana_line)
            return ctl_fail(CFG_E_BAD, err, errlen, "[solana] given twice (first at line %d)",
                            x->solana_line);
        x->solana_line = line;
        return CFG_OK;
    }
    ctl_settle_solana_config *s = &x->cfg->solana;
    if (strcmp(key, "keypair") == 0 || strcmp(key, "wallets") == 0 ||
        strcmp(key, "mint_authority") == 0) {
        char path[CTL_SOL_PATH_MAX];
        if (path_key(x, key, value, path, sizeof path, err, errlen) != CFG_OK)
            return CFG_E_BAD;
        return ctl_settle_solana_key(s, key, path, err, errlen) ? CFG_OK : CFG_E_BAD;
    }
    return ctl_settle_solana_key(s, key, value, err, errlen) ? CFG_OK : CFG_E_BAD;
}

static int solana_finish(void *ctx, const char *path, char *err, size_t errlen)
{
    ctl_controller_file *x = ctx;
    char why[256];
    if (x->cfg->solana.enabled && !x->cfg->settlement_key[0])
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s:%d: [solana] needs settlement_key in [controller] (a block "
                        "is settled in the ledger before it goes on chain)",
                        path, x->solana_line);
    if (!ctl_settle_solana_check(&x->cfg->solana, why, sizeof why))
        return ctl_fail(CFG_E_BAD, err, errlen, "%s:%d: %s", path, x->solana_line, why);
    if (x->cfg->solana.mint_authority[0] && x->cfg->credit_min_tier < 0)
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s:%d: [solana] mint_authority needs credit_min_tier in [controller] "
                        "(credits are minted on chain as the ledger records them)",
                        path, x->solana_line);
    return CFG_OK;
}

void ctl_controller_file_init(ctl_controller_file *x, ctl_daemon_config *c, cfg_bus *bus)
{
    memset(c, 0, sizeof *c);
    memset(x, 0, sizeof *x);
    memset(bus, 0, sizeof *bus);
    x->cfg = c;
    x->bus = bus;
    c->rules = (ctl_interval_rules){900, 300, 96};
    c->params = (mkt_params){MKT_PAY_AS_CLEAR, 80000, 300000, 0, 0};
    c->settlement_grace_s = 900;
    c->timing = MKT_EX_ANTE;
    c->reading_max_gap_s = 300;
    c->meter_max_power_w = 100000;
    c->reading_retention_days = 30;
    c->reading_max_future_s = 5;
    c->reading_max_per_interval = 900;
    c->order_max_per_interval = 200;
    c->min_group_size = CTL_MIN_GROUP_SIZE_DEFAULT;
    c->credit_min_tier = -1;
    ctl_trust_rules_default(&c->trust);
    ctl_settle_solana_defaults(&c->solana);
    c->log_level = CTL_LOG_INFO;
    x->speed = 1;
}

int ctl_controller_file_add(cfg_loader *l, ctl_controller_file *x)
{
    x->loader = l;
    /* controller_finish first: it may supply [bus] its community */
    if (cfg_loader_add(l, controller_key, controller_finish, x) != CFG_OK ||
        cfg_bus_add(l, x->bus) != CFG_OK ||
        cfg_loader_add(l, solana_key, solana_finish, x) != CFG_OK ||
        ctl_cluster_section_add(l, &x->cluster) != CFG_OK ||
        ctl_topology_add(l, &x->cfg->topology) != CFG_OK ||
        cfg_others_add(l, CFG_DAEMON_CONTROLLER, &x->others) != CFG_OK)
        return CFG_E_NOMEM;
    return CFG_OK;
}

int ctl_controller_file_load(ctl_controller_file *x, const char *path, char *err, size_t errlen)
{
    cfg_loader *l = cfg_loader_new();
    int rc = CFG_E_NOMEM;
    if (!l)
        return ctl_fail(CFG_E_NOMEM, err, errlen, "out of memory");
    if (ctl_controller_file_add(l, x) == CFG_OK)
        rc = cfg_load(l, path, err, errlen);
    else
        ctl_errf(err, errlen, "cannot load the config");
    cfg_loader_free(l);
    x->loader = NULL;
    if (rc != CFG_OK)
        return rc;
    ctl_daemon_config *cfg = x->cfg;
    snprintf(cfg->community, sizeof cfg->community, "%s", x->bus->community);
    if (cfg->params.feed_in_uc_per_kwh > cfg->params.retail_uc_per_kwh)
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s:%d: feed_in_uc_per_kwh is above retail_uc_per_kwh", path, x->line);
    if (x->cluster.line) {
        /* the replicated log carries every decision that writes the database: orders, standing
         * preferences, readings, clearing (ex_ante and ex_post), settlement, witness
         * cosignatures and the Solana outbox's decisions (docs/cluster.md) */
        cfg->cluster_on = 1;
        cfg->cluster = x->cluster.cfg;
    }
    return CFG_OK;
}
