/*
 * The home agent's battery dispatch (see agent_battery.h): the [battery] config section, the
 * per-interval plan with the simulator's scheduler, and the setpoint through storage control.
 */
#define _POSIX_C_SOURCE 200809L
#include "agent/agent_battery.h"

#include "common/errbuf.h"
#include "mgx/battery_plan.h"
#include "mgx/device_config.h"
#include "mgx/dispatch.h"
#include "mgx/meter_error.h"
#include "mgx/modbus_device.h"
#include "mgx/storage_ctl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The order of this table is the bit of each key in agb_config.seen. */
enum {
    K_HOST, K_PORT, K_UNIT, K_TIMEOUT, K_READ_ONLY, K_CAPACITY, K_POWER, K_EFF, K_SOC_MIN,
    K_SOC_MAX, K_REVERT, K_MIN_WRITE, K_PEAK, K_PEAK_START, K_PEAK_END, K_UTC_OFFSET, K_MIN_GAIN,
    K_HORIZON, K_IMPORT_CAP, K_EXPORT_CAP, K_CONTROL, K_POWER_REG, K_POWER_FC, K_POWER_TYPE,
    K_W_PER_COUNT, K_MODE_REG, K_MODE_CONTROL, K_MODE_RELEASE, K_SOC_REG, K_SOC_FC, K_SOC_BP,
    K_SILENCE, K_SPREAD, K_COUNT
};

static const char *const KEYS[K_COUNT + 1] = {
    "host", "port", "unit", "timeout_ms", "read_only", "capacity_wh", "power_w",
    "round_trip_efficiency_permille", "soc_min_permille", "soc_max_permille", "revert_s",
    "min_write_interval_ms", "retail_peak_uc_per_kwh", "peak_start_h", "peak_end_h",
    "utc_offset_min", "min_gain_uc", "horizon_intervals", "import_cap_w", "export_cap_w",
    "control", "power_register", "power_function", "power_type", "w_per_count", "mode_register",
    "mode_control", "mode_release", "soc_register", "soc_function", "soc_bp_per_count",
    "meter_silence_intervals", "spread_min", NULL};

/* The keys that only a control map uses (control = map). */
#define MAP_KEYS                                                                                   \
    ((UINT64_C(1) << K_POWER_REG) | (UINT64_C(1) << K_POWER_FC) | (UINT64_C(1) << K_POWER_TYPE) |  \
     (UINT64_C(1) << K_W_PER_COUNT) | (UINT64_C(1) << K_MODE_REG) |                               \
     (UINT64_C(1) << K_MODE_CONTROL) | (UINT64_C(1) << K_MODE_RELEASE) |                          \
     (UINT64_C(1) << K_SOC_REG) | (UINT64_C(1) << K_SOC_FC) | (UINT64_C(1) << K_SOC_BP))
#define SEEN(c, k) ((int)(((c)->seen >> (k)) & 1u))

void agb_defaults(agb_config *c)
{
    memset(c, 0, sizeof *c);
    c->port = 502;
    c->unit = 1;
    c->timeout_ms = 1000;
    c->efficiency_pm = 900;
    c->soc_min_pm = 100;
    c->soc_max_pm = 900;
    c->import_cap_w = c->export_cap_w = -1;
    c->power_function = 16;
    c->power_type = MTR_CTL_INT16;
    c->w_per_count = 1;
    c->mode_register = c->soc_register = c->power_register = -1;
    c->soc_function = 3;
    c->soc_bp_per_count = 100;
    c->meter_silence_intervals = 2;
    c->spread_min = 240;
}

/* One of the words in names (NULL-terminated), as its index; choices names them for the error. */
static int parse_word(const char *key, const char *v, const char *const *names,
                      const char *choices, int *out, char *err, size_t len)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return CFG_OK;
        }
    return ctl_fail(CFG_E_BAD, err, len, "%s: '%s' is not %s", key, v, choices);
}

static int parse_fc(const char *key, const char *v, int64_t a, int64_t b, int64_t *out, char *err,
                    size_t len)
{
    int rc = cfg_parse_int(key, v, 0, 255, out, err, len);
    if (rc == CFG_OK && *out != a && *out != b)
        return ctl_fail(CFG_E_BAD, err, len, "%s: function %lld: only %lld or %lld", key,
                        (long long)*out, (long long)a, (long long)b);
    return rc;
}

static int set_key(agb_config *c, int k, const char *key, const char *v, char *err, size_t len)
{
    switch (k) {
    case K_HOST: return cfg_parse_str(key, v, c->host, sizeof c->host, err, len);
    case K_PORT: return cfg_parse_int(key, v, 1, 65535, &c->port, err, len);
    case K_UNIT: return cfg_parse_int(key, v, 0, 255, &c->unit, err, len);
    case K_TIMEOUT: return cfg_parse_int(key, v, 10, 60000, &c->timeout_ms, err, len);
    case K_READ_ONLY: return cfg_parse_bool(key, v, &c->read_only, err, len);
    case K_CAPACITY: return cfg_parse_int(key, v, 1, INT64_C(10000000), &c->capacity_wh, err, len);
    case K_POWER: return cfg_parse_int(key, v, 1, INT64_C(10000000), &c->power_w, err, len);
    case K_EFF: return cfg_parse_int(key, v, 1, 1000, &c->efficiency_pm, err, len);
    case K_SOC_MIN: return cfg_parse_int(key, v, 0, 1000, &c->soc_min_pm, err, len);
    case K_SOC_MAX: return cfg_parse_int(key, v, 0, 1000, &c->soc_max_pm, err, len);
    case K_REVERT: return cfg_parse_int(key, v, 0, 65535, &c->revert_s, err, len);
    case K_MIN_WRITE: return cfg_parse_int(key, v, 0, 3600000, &c->min_write_interval_ms, err, len);
    case K_PEAK:
        return cfg_parse_int(key, v, 0, INT64_C(100000000), &c->retail_peak_uc_per_kwh, err, len);
    case K_PEAK_START: return cfg_parse_int(key, v, 0, 24, &c->peak_start_h, err, len);
    case K_PEAK_END: return cfg_parse_int(key, v, 0, 24, &c->peak_end_h, err, len);
    case K_UTC_OFFSET: return cfg_parse_int(key, v, -1440, 1440, &c->utc_offset_min, err, len);
    case K_MIN_GAIN: return cfg_parse_int(key, v, 0, INT64_C(1000000000), &c->min_gain_uc, err, len);
    case K_HORIZON:
        return cfg_parse_int(key, v, 0, SIM_PLAN_MAX_INTERVALS, &c->horizon, err, len);
    case K_IMPORT_CAP: return cfg_parse_int(key, v, -1, INT64_C(10000000), &c->import_cap_w, err, len);
    case K_EXPORT_CAP: return cfg_parse_int(key, v, -1, INT64_C(10000000), &c->export_cap_w, err, len);
    case K_CONTROL: {
        static const char *const kinds[] = {"sunspec", "map", NULL};
        int i = 0, rc = parse_word(key, v, kinds, "sunspec or map", &i, err, len);
        c->map = i == 1;
        return rc;
    }
    case K_POWER_REG: return cfg_parse_int(key, v, 0, 65535, &c->power_register, err, len);
    case K_POWER_FC: return parse_fc(key, v, 6, 16, &c->power_function, err, len);
    case K_POWER_TYPE: {
        /* the order of mtr_ctl_type */
        static const char *const types[] = {"int16", "uint16", "int32", NULL};
        return parse_word(key, v, types, "int16, uint16 or int32", &c->power_type, err,
                          len);
    }
    case K_W_PER_COUNT: return cfg_parse_int(key, v, 1, 1000000, &c->w_per_count, err, len);
    case K_MODE_REG: return cfg_parse_int(key, v, 0, 65535, &c->mode_register, err, len);
    case K_MODE_CONTROL: return cfg_parse_int(key, v, 0, 65535, &c->mode_control, err, len);
    case K_MODE_RELEASE: return cfg_parse_int(key, v, 0, 65535, &c->mode_release, err, len);
    case K_SOC_REG: return cfg_parse_int(key, v, 0, 65535, &c->soc_register, err, len);
    case K_SOC_FC: return parse_fc(key, v, 3, 4, &c->soc_function, err, len);
    case K_SOC_BP: return cfg_parse_int(key, v, 1, 10000, &c->soc_bp_per_count, err, len);
    case K_SILENCE: return cfg_parse_int(key, v, 0, 96, &c->meter_silence_intervals, err, len);
    case K_SPREAD: return cfg_parse_int(key, v, 0, 1440, &c->spread_min, err, len);
    default: return CFG_NOT_MINE;
    }
}

static int battery_key(void *ctx, const char *section, const char *key, const char *value,
                       int line, char *err, size_t len)
{
    agb_config *c = ctx;
    if (strcmp(section, "battery") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (c->line)
            return ctl_fail(CFG_E_BAD, err, len, "[battery] given twice (first at line %d)",
                            c->line);
        c->line = line;
        return CFG_OK;
    }
    int k = cfg_key_index(KEYS, key);
    if (k < 0)
        return CFG_NOT_MINE;
    if (cfg_once(&c->seen, (unsigned)k, key, err, len))
        return CFG_E_BAD;
    return set_key(c, k, key, value, err, len);
}

static int battery_finish(void *ctx, const char *path, char *err, size_t len)
{
    agb_config *c = ctx;
    if (!c->line)
        return CFG_OK;
    if (!c->host[0] || !(c->seen & (UINT64_C(1) << K_CAPACITY)) ||
        !(c->seen & (UINT64_C(1) << K_POWER)))
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [battery] needs host, capacity_wh and power_w", path, c->line);
    if (c->soc_min_pm >= c->soc_max_pm)
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [battery] soc_min_permille must be below soc_max_permille", path,
                        c->line);
    if (!c->map && (c->seen & MAP_KEYS))
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [battery] power_register, mode_*, soc_* and the like are for a "
                        "control map: add control = map",
                        path, c->line);
    if (c->map && (!SEEN(c, K_POWER_REG) || !SEEN(c, K_SOC_REG)))
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [battery] control = map needs power_register and soc_register",
                        path, c->line);
    int modes = SEEN(c, K_MODE_REG) + SEEN(c, K_MODE_CONTROL) + SEEN(c, K_MODE_RELEASE);
    if (modes != 0 && modes != 3)
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [battery] mode_register, mode_control and mode_release go "
                        "together",
                        path, c->line);
    if (c->map && c->power_function == 6 && c->power_type == MTR_CTL_INT32)
        return ctl_fail(CFG_E_BAD, err, len,
                        "%s:%d: [battery] power_type int32 takes two registers: power_function "
                        "16",
                        path, c->line);
    return CFG_OK;
}

int agb_add(cfg_loader *l, agb_config *c)
{
    agb_defaults(c);
    return cfg_loader_add(l, battery_key, battery_finish, c);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

#define CMD_RING 8

struct agb {
    agb_config cfg;
    ctl_log *log;
    int64_t interval_s, feed_in, retail;
    size_t per_day, horizon;
    mtr_link *link;
    mtr_storage_ctl *ctl;
    sim_plan_battery bat;
    /* the home's net (load - PV) of past intervals, interval id % per_day */
    int64_t *hist_id, *hist_net;
    /* energy the battery was told to move in an interval (id, Wh) */
    int64_t cmd_id[CMD_RING], cmd_wh[CMD_RING];
    sim_plan_interval *in;
    sim_plan_step *out, *sc; /* the plan, and self-consumption on the same forecast */
    /* what the grid exchange is expected to be (import > 0) from the plan made after complete
     * interval exp_k, for the intervals exp_start .. exp_start + exp_n - 1 (the orders') */
    int64_t exp_k, exp_start;
    size_t exp_n;
    int64_t *exp_grid, *exp_batt;
    void *work;
    size_t work_len;
    uint64_t plans;
    bool owe_release; /* a setpoint failed: release again until the device has it */
    bool silent;      /* the meter is silent: control released, no dispatch */
    uint64_t silences;
    char soc_err[MTR_ERR_MAX];
    /* the fitted forecast: the home's dispatch (NULL until agb_fit_start), the first interval
     * it measures and the last it measured */
    bool fit;
    agb_site site;
    sim_dispatch *disp;
    int64_t fit_first, fit_last;
};

agb *agb_new(const agb_config *cfg, const agb_site *site, int64_t interval_s,
             int64_t feed_in_uc_per_kwh, int64_t retail_uc_per_kwh, ctl_log *log, char *err,
             size_t err_len)
{
    agb *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    b->cfg = *cfg;
    b->log = log;
    b->fit = site != NULL;
    if (site)
        b->site = *site;
    b->fit_first = b->fit_last = INT64_MIN;
    b->interval_s = interval_s;
    b->feed_in = feed_in_uc_per_kwh;
    b->retail = retail_uc_per_kwh;
    b->per_day = (size_t)(86400 / interval_s);
    if (b->per_day < 1)
        b->per_day = 1;
    if (b->per_day > SIM_PLAN_MAX_INTERVALS)
        b->per_day = SIM_PLAN_MAX_INTERVALS;
    b->horizon = cfg->horizon > 0 ? (size_t)cfg->horizon : b->per_day;
    if (b->cfg.revert_s == 0)
        b->cfg.revert_s = 2 * interval_s > 65535 ? 65535 : 2 * interval_s;
    for (size_t i = 0; i < CMD_RING; i++)
        b->cmd_id[i] = INT64_MIN;
    /* the battery as the planner sees it: energies per interval on the AC side */
    int64_t per_iv = cfg->power_w * interval_s / 3600;
    uint32_t eff = (uint32_t)llround(sqrt((double)cfg->efficiency_pm / 1000.0) * 1000.0);
    b->bat = (sim_plan_battery){cfg->capacity_wh * cfg->soc_min_pm / 1000,
                                cfg->capacity_wh * cfg->soc_max_pm / 1000,
                                cfg->capacity_wh * cfg->soc_min_pm / 1000,
                                per_iv,
                                per_iv,
                                eff,
                                eff,
                                cfg->import_cap_w < 0 ? SIM_PLAN_NO_CAP
                                                      : cfg->import_cap_w * interval_s / 3600,
                                cfg->export_cap_w < 0 ? SIM_PLAN_NO_CAP
                                                      : cfg->export_cap_w * interval_s / 3600,
                                feed_in_uc_per_kwh * eff / 1000,
                                0};
    b->hist_id = malloc(b->per_day * sizeof *b->hist_id);
    b->hist_net = calloc(b->per_day, sizeof *b->hist_net);
    b->in = calloc(b->horizon, sizeof *b->in);
    b->out = calloc(b->horizon, sizeof *b->out);
    b->sc = calloc(b->horizon, sizeof *b->sc);
    b->exp_grid = calloc(b->horizon, sizeof *b->exp_grid);
    b->exp_batt = calloc(b->horizon, sizeof *b->exp_batt);
    b->exp_k = INT64_MIN;
    b->work_len = sim_plan_workspace_size(&b->bat, b->horizon);
    b->work = b->work_len ? malloc(b->work_len) : NULL;
    if (!b->hist_id || !b->hist_net || !b->in || !b->out || !b->sc || !b->exp_grid ||
        !b->exp_batt || !b->work) {
        snprintf(err, err_len, "[battery]: %s", b->work_len ? "out of memory"
                                                            : "the planner cannot take this "
                                                              "battery (capacity, power)");
        agb_free(b);
        return NULL;
    }
    for (size_t i = 0; i < b->per_day; i++)
        b->hist_id[i] = INT64_MIN;
    /* a setpoint of an earlier run (killed, or the host rebooted) may still stand: whatever the
     * first plan decides, control starts from a release */
    b->owe_release = !cfg->read_only;
    mtr_device_config d;
    mtr_device_config_default(&d);
    snprintf(d.id, sizeof d.id, "inverter");
    d.profile = MTR_PROFILE_SUNSPEC;
    snprintf(d.host, sizeof d.host, "%s", cfg->host);
    d.port = (int)cfg->port;
    d.unit = (int)cfg->unit;
    d.timeout_ms = (int)cfg->timeout_ms;
    d.retries = 1;
    mtr_storage_config sc = {.kind = MTR_STORAGE_SUNSPEC,
                             .read_only = cfg->read_only,
                             .unit = (int)cfg->unit,
                             .revert_s = (int)b->cfg.revert_s,
                             .min_write_interval_ms = (int)cfg->min_write_interval_ms};
    if (cfg->map) {
        /* a control map has no watchdog of its own: the agent's releases are all there is */
        d.profile = MTR_PROFILE_MAP;
        sc.kind = MTR_STORAGE_MAP;
        sc.revert_s = 0;
        sc.fc = (int)cfg->power_function;
        sc.power_addr = (uint16_t)cfg->power_register;
        sc.power_type = (mtr_ctl_type)cfg->power_type;
        sc.w_per_count = (int32_t)cfg->w_per_count;
        sc.has_mode = cfg->mode_register >= 0;
        sc.mode_addr = (uint16_t)(cfg->mode_register >= 0 ? cfg->mode_register : 0);
        sc.mode_control = (uint16_t)cfg->mode_control;
        sc.mode_release = (uint16_t)cfg->mode_release;
    }
    b->link = mtr_link_new(&d);
    b->ctl = b->link ? mtr_storage_ctl_new(&sc, b->link) : NULL;
    if (!b->ctl) {
        snprintf(err, err_len, "[battery]: cannot set up the inverter link");
        agb_free(b);
        return NULL;
    }
    ctl_logf(log, CTL_LOG_INFO,
             "battery: %lld Wh, %lld W, inverter %s:%lld unit %lld (%s)%s, revert %lld s, plan %zu "
             "intervals",
             (long long)cfg->capacity_wh, (long long)cfg->power_w, cfg->host, (long long)cfg->port,
             (long long)cfg->unit, cfg->map ? "control map" : "SunSpec model 124",
             cfg->read_only ? " (read-only: never written)" : "",
             cfg->map ? 0 : (long long)b->cfg.revert_s, b->horizon);
    if (site)
        ctl_logf(log, CTL_LOG_INFO,
                 "battery: fitted forecast at %.4f, %.4f, plane %.1f / %.1f deg, the battery's "
                 "flow %s; measuring from the next local midnight",
                 site->latitude_deg, site->longitude_deg, site->tilt_deg, site->azimuth_deg,
                 site->battery_meter ? "metered" : "from its setpoints");
    return b;
}

/* The retail price of the interval starting at start_s (UTC), with the peak window. */
static int64_t retail_at(const agb *b, int64_t start_s)
{
    if (b->cfg.retail_peak_uc_per_kwh <= 0)
        return b->retail;
    int64_t sec = (start_s + b->cfg.utc_offset_min * 60) % 86400;
    if (sec < 0)
        sec += 86400;
    int64_t h = sec / 3600, s0 = b->cfg.peak_start_h, e0 = b->cfg.peak_end_h;
    int peak = s0 <= e0 ? h >= s0 && h < e0 : h >= s0 || h < e0;
    return peak ? b->cfg.retail_peak_uc_per_kwh : b->retail;
}

static int64_t commanded(const agb *b, int64_t id)
{
    for (size_t i = 0; i < CMD_RING; i++)
        if (b->cmd_id[i] == id)
            return b->cmd_wh[i];
    return 0;
}

static void release(agb *b, const char *why, int64_t target)
{
    if (b->cfg.read_only || (!mtr_storage_ctl_in_control(b->ctl) && !b->owe_release))
        return;
    int rc = mtr_storage_ctl_release(b->ctl);
    /* a release the device did not take is owed: tried again at every later chance */
    b->owe_release = rc != MTR_OK;
    char when[48] = "";
    if (target)
        snprintf(when, sizeof when, "interval %lld: ", (long long)target);
    ctl_logf(b->log, rc ? CTL_LOG_WARN : CTL_LOG_INFO,
             "battery: %s%s: control released to the inverter%s%s", when, why,
             rc ? " (not confirmed, tried again later): " : "",
             rc ? mtr_storage_ctl_error(b->ctl) : "");
}

/* The state of charge in hundredths of a percent: model 124's ChaState, or the map's register.
 * MTR_OK, or an error with the reason in b->soc_err. */
static int read_soc(agb *b, int64_t *soc_bp)
{
    b->soc_err[0] = '\0';
    if (!b->cfg.map) {
        int rc = mtr_storage_ctl_soc(b->ctl, soc_bp);
        if (rc)
            snprintf(b->soc_err, sizeof b->soc_err, "%s", mtr_storage_ctl_error(b->ctl));
        return rc;
    }
    uint16_t v = 0;
    int ex = 0;
    int rc = mtr_link_read(b->link, (int)b->cfg.unit, (int)b->cfg.soc_function,
                           (uint16_t)b->cfg.soc_register, 1, &v, &ex);
    if (rc == MTR_E_EXCEPTION)
        snprintf(b->soc_err, sizeof b->soc_err, "reading the state of charge at %lld: exception %d",
                 (long long)b->cfg.soc_register, ex);
    else if (rc)
        snprintf(b->soc_err, sizeof b->soc_err, "reading the state of charge: %s",
                 mtr_link_error(b->link)[0] ? mtr_link_error(b->link) : mtr_strerror(rc));
    if (rc)
        return rc;
    *soc_bp = (int64_t)v * b->cfg.soc_bp_per_count;
    if (*soc_bp > 10000) {
        snprintf(b->soc_err, sizeof b->soc_err, "state of charge register %lld reads %u: above "
                 "100 %%", (long long)b->cfg.soc_register, (unsigned)v);
        return MTR_E_RANGE;
    }
    return MTR_OK;
}

/* The grid exchange the battery's steps give on the forecast: the plan when its setpoint
 * stands, self-consumption when the inverter runs its own mode. */
static void expect(agb *b, int64_t k, int64_t target, const sim_plan_step *steps)
{
    b->exp_k = k;
    b->exp_start = target;
    b->exp_n = b->horizon;
    for (size_t j = 0; j < b->horizon; j++) {
        b->exp_batt[j] = steps[j].battery_wh;
        b->exp_grid[j] = b->in[j].net_wh + steps[j].battery_wh;
    }
}

/* The inverter follows its own mode over the horizon: self-consumption is what to expect. */
static void expect_self_consumption(agb *b, int64_t k, int64_t target)
{
    int64_t nuc = 0;
    if (sim_plan_self_consumption(&b->bat, b->in, b->horizon, b->sc, &nuc) == SIM_PLAN_OK)
        expect(b, k, target, b->sc);
}

bool agb_expected_net(const agb *b, int64_t k, int64_t interval_id, int64_t *grid_import_wh,
                      int64_t *battery_wh)
{
    if (b->exp_k != k || b->exp_n == 0 || interval_id < b->exp_start ||
        interval_id - b->exp_start >= (int64_t)b->exp_n)
        return false;
    size_t j = (size_t)(interval_id - b->exp_start);
    *grid_import_wh = b->exp_grid[j];
    *battery_wh = b->exp_batt[j];
    return true;
}

/* What every decision for interval target starts with (the persistence plan and the fitted
 * decision alike): a release still owed is written again, and the stored energy is read from
 * the inverter; without it control is released. Returns false when there is no decision. */
static bool decision_start(agb *b, int64_t target, int64_t *stored)
{
    int64_t soc_bp = 0;
    if (b->owe_release)
        release(b, "a release not yet confirmed (a failure, or the start)", target);
    if (read_soc(b, &soc_bp) != MTR_OK) {
        ctl_logf(b->log, CTL_LOG_WARN, "battery: interval %lld: no state of charge: %s",
                 (long long)target, b->soc_err);
        release(b, "no state of charge", target);
        return false;
    }
    *stored = b->cfg.capacity_wh * soc_bp / 10000;
    return true;
}

void agb_on_interval(agb *b, int64_t k, int64_t metered_net_wh, int64_t now_ms)
{
    b->exp_n = 0; /* no expectation until this interval's plan says */
    /* the home's own net: what the meter saw less what the battery was told to do */
    int64_t home_net = -metered_net_wh - commanded(b, k);
    size_t slot = (size_t)(k % (int64_t)b->per_day);
    b->hist_id[slot] = k;
    b->hist_net[slot] = home_net;
    int64_t target = k + 2, stored = 0;
    if (!decision_start(b, target, &stored))
        return;
    b->bat.initial_wh = stored < b->bat.min_wh   ? b->bat.min_wh
                        : stored > b->bat.max_wh ? b->bat.max_wh
                                                 : stored;
    int varies = 0;
    for (size_t j = 0; j < b->horizon; j++) {
        int64_t id = target + (int64_t)j;
        size_t s = (size_t)((id - (int64_t)b->per_day) % (int64_t)b->per_day);
        int64_t day_ago = id - (int64_t)b->per_day;
        b->in[j].net_wh = b->hist_id[s] == day_ago ? b->hist_net[s] : home_net;
        b->in[j].import_uc_per_kwh = retail_at(b, id * b->interval_s);
        b->in[j].export_uc_per_kwh = b->feed_in;
        varies |= b->in[j].import_uc_per_kwh != b->in[0].import_uc_per_kwh;
    }
    if (!varies) {
        release(b, "flat prices: the inverter's own self-consumption", target);
        expect_self_consumption(b, k, target);
        return;
    }
    /* the states are anchored at the stored energy, so the workspace it needs moves with it */
    size_t need = sim_plan_workspace_size(&b->bat, b->horizon);
    if (need > b->work_len) {
        void *w = realloc(b->work, need);
        if (!w) {
            ctl_logf(b->log, CTL_LOG_WARN, "battery: interval %lld: out of memory to plan",
                     (long long)target);
            release(b, "no plan", target);
            return;
        }
        b->work = w;
        b->work_len = need;
    }
    int64_t plan_nuc = 0, sc_nuc = 0;
    int rc = sim_plan_solve(&b->bat, b->in, b->horizon, b->work, b->work_len, b->out, &plan_nuc);
    if (rc == SIM_PLAN_OK)
        rc = sim_plan_self_consumption(&b->bat, b->in, b->horizon, b->sc, &sc_nuc);
    if (rc != SIM_PLAN_OK) {
        ctl_logf(b->log, CTL_LOG_WARN, "battery: interval %lld: the scheduler refused the inputs "
                 "(%d): no plan", (long long)target, rc);
        release(b, "no plan", target);
        return;
    }
    b->plans++;
    int64_t gain_uc = (sc_nuc - plan_nuc) / 1000;
    if (gain_uc < b->cfg.min_gain_uc) {
        release(b, "expected gain below min_gain_uc", target);
        expect(b, k, target, b->sc);
        return;
    }
    int64_t wh = b->out[0].battery_wh;
    int64_t w = wh * 3600 / b->interval_s;
    if (w > b->cfg.power_w)
        w = b->cfg.power_w;
    if (w < -b->cfg.power_w)
        w = -b->cfg.power_w;
    if (b->cfg.map) /* what the power register can say, toward zero as storage control writes it */
        w = w / b->cfg.w_per_count * b->cfg.w_per_count;
    ctl_logf(b->log, CTL_LOG_INFO,
             "battery: interval %lld: plan %lld Wh (%lld W) from %lld Wh stored, forecast net "
             "%lld Wh, expected gain %lld uc over the horizon",
             (long long)target, (long long)wh, (long long)w, (long long)b->bat.initial_wh,
             (long long)b->in[0].net_wh, (long long)gain_uc);
    if (b->cfg.read_only) {
        expect(b, k, target, b->sc); /* the inverter keeps its own mode */
        return; /* monitoring only: storage control would refuse anyway, never try */
    }
    rc = mtr_storage_ctl_set(b->ctl, w, now_ms);
    if (rc != MTR_OK) {
        mtr_storage_stats st;
        mtr_storage_ctl_stats(b->ctl, &st);
        ctl_logf(b->log, CTL_LOG_WARN,
                 "battery: interval %lld: setpoint %lld W failed, control released (%llu "
                 "failures so far): %s",
                 (long long)target, (long long)w, (unsigned long long)st.failures,
                 mtr_storage_ctl_error(b->ctl));
        /* storage control tried to release; it may not have reached the device */
        b->owe_release = true;
        expect(b, k, target, b->sc);
        return;
    }
    size_t r = (size_t)(target % CMD_RING);
    b->cmd_id[r] = target;
    /* the setpoint in force: the previous one when the write rate limit skipped this one */
    b->cmd_wh[r] = mtr_storage_ctl_power_w(b->ctl) * b->interval_s / 3600;
    /* the first interval moves what the inverter was told, which the watts may have rounded */
    b->out[0].battery_wh = b->cmd_wh[r];
    expect(b, k, target, b->out);
}

/* ---- the fitted forecast ------------------------------------------------------------------ */

bool agb_fitted(const agb *b)
{
    return b->fit;
}

int64_t agb_fit_first(const agb *b)
{
    return b->disp ? b->fit_first : INT64_MIN;
}

int64_t agb_fit_midnight(const agb *b, int64_t after)
{
    int64_t per_day = 86400 / b->interval_s, off = b->cfg.utc_offset_min * 60;
    if (per_day < 1 || 86400 % b->interval_s != 0 || off % b->interval_s != 0)
        return after; /* no interval starts at midnight: any will do */
    int64_t shift = off / b->interval_s; /* local interval = id + shift */
    int64_t r = (after + shift) % per_day;
    if (r < 0)
        r += per_day;
    return r == 0 ? after : after + per_day - r;
}

bool agb_fit_start(agb *b, int64_t first)
{
    int64_t soc_bp = 0;
    if (b->disp)
        return true;
    if (read_soc(b, &soc_bp) != MTR_OK) {
        ctl_logf(b->log, CTL_LOG_WARN,
                 "battery: no state of charge to start measuring at interval %lld: %s",
                 (long long)first, b->soc_err);
        return false;
    }
    /* the simulator's scheduled battery, the same numbers (sim/src/engine.c dispatch_new):
     * a forecaster of 14 days at the home's location and plane, the shadow battery in the
     * simulator's model with the square root of the round trip each way */
    sim_plan_battery pb = b->bat;
    pb.initial_wh = b->cfg.capacity_wh * soc_bp / 10000;
    sim_dispatch_config c = {
        .fc = {b->site.latitude_deg, b->site.longitude_deg, b->site.tilt_deg,
               b->site.azimuth_deg, b->interval_s, 14, 4},
        .forecast = SIM_DISPATCH_FIT,
        .horizon = b->horizon,
        .min_gain_uc = b->cfg.min_gain_uc,
        .guard_margin_uc = 0,
        .utc_offset_min = (int32_t)b->cfg.utc_offset_min,
        .guard_off = 0,
        .shadow_eta = sqrt((double)b->cfg.efficiency_pm / 1000.0),
        .spread_intervals = (uint32_t)(b->cfg.spread_min * 60 / b->interval_s),
    };
    b->disp = sim_dispatch_new(&c, &pb);
    if (!b->disp) {
        ctl_logf(b->log, CTL_LOG_WARN,
                 "battery: the fitted forecast cannot start (interval %lld s does not divide a "
                 "day, or out of memory): persistence",
                 (long long)b->interval_s);
        b->fit = false; /* persistence from now on */
        return false;
    }
    b->fit_first = first;
    b->fit_last = first - 1;
    ctl_logf(b->log, CTL_LOG_INFO,
             "battery: the fitted forecast measures from interval %lld, %lld Wh stored",
             (long long)first, (long long)pb.initial_wh);
    return true;
}

void agb_fit_observe(agb *b, int64_t k, int64_t grid_import_wh, int64_t pv_wh, bool has_battery,
                     int64_t battery_wh)
{
    if (!b->disp || k <= b->fit_last)
        return;
    b->fit_last = k;
    /* without a battery meter: what the inverter was told (its own mode: unknown, taken as 0;
     * the load then counts what self-consumption moved) */
    int64_t batt = has_battery ? battery_wh : commanded(b, k);
    int64_t start = k * b->interval_s;
    sim_dispatch_observe(b->disp, start, pv_wh, grid_import_wh + pv_wh - batt, grid_import_wh,
                         retail_at(b, start), b->feed_in);
}

static const char *why_name(sim_dispatch_why w)
{
    switch (w) {
    case SIM_DISPATCH_NO_HISTORY: return "less than a day measured";
    case SIM_DISPATCH_FLAT: return "flat prices";
    case SIM_DISPATCH_NO_GAIN: return "expected gain below min_gain_uc";
    case SIM_DISPATCH_WAIT: return "the plan's first move only ties with self-consumption";
    case SIM_DISPATCH_SAME: return "the plan is self-consumption";
    case SIM_DISPATCH_GUARD: return "the guard: plans have not paid for this home yet";
    case SIM_DISPATCH_REFUSED: return "the planner refused the inputs";
    default: return "no plan";
    }
}

void agb_fit_decide(agb *b, int64_t k, int64_t now_ms)
{
    b->exp_n = 0;
    if (!b->disp || b->fit_last != k)
        return;
    int64_t target = k + 2, stored = 0;
    if (!decision_start(b, target, &stored))
        return;
    int varies = 0;
    for (size_t j = 0; j < b->horizon; j++) {
        int64_t id = target + (int64_t)j;
        b->exp_grid[j] = retail_at(b, id * b->interval_s); /* the import prices, for now */
        b->exp_batt[j] = b->feed_in;
        varies |= b->exp_grid[j] != b->exp_grid[0];
    }
    sim_dispatch_decision dd;
    /* flat prices: self-consumption, without deciding (as the simulator) */
    if (!varies) {
        release(b, "flat prices: the inverter's own self-consumption", target);
        return;
    }
    /* the stored energy read now is already k + 2's: nothing left to commit in between */
    const int64_t zero = 0;
    if (sim_dispatch_decide(b->disp, k * b->interval_s, 2, stored, &zero, b->exp_grid,
                            b->exp_batt, &dd) != 0) {
        release(b, "no plan", target);
        return;
    }
    b->plans++;
    b->exp_k = k;
    b->exp_start = target;
    b->exp_n = 1;
    b->exp_grid[0] = dd.net_wh;
    b->exp_batt[0] = dd.setpoint_wh;
    if (!dd.planned) {
        release(b, why_name(dd.why), target);
        return;
    }
    int64_t w = dd.setpoint_wh * 3600 / b->interval_s;
    w = w > b->cfg.power_w ? b->cfg.power_w : w < -b->cfg.power_w ? -b->cfg.power_w : w;
    if (b->cfg.map)
        w = w / b->cfg.w_per_count * b->cfg.w_per_count;
    ctl_logf(b->log, CTL_LOG_INFO,
             "battery: interval %lld: plan %lld Wh (%lld W) from %lld Wh stored, forecast net "
             "%lld Wh, expected gain %lld uc over the horizon (fitted forecast)",
             (long long)target, (long long)dd.setpoint_wh, (long long)w, (long long)stored,
             (long long)dd.forecast_net_wh, (long long)dd.gain_uc);
    if (b->cfg.read_only)
        return;
    int rc = mtr_storage_ctl_set(b->ctl, w, now_ms);
    if (rc != MTR_OK) {
        mtr_storage_stats st;
        mtr_storage_ctl_stats(b->ctl, &st);
        ctl_logf(b->log, CTL_LOG_WARN,
                 "battery: interval %lld: setpoint %lld W failed, control released (%llu "
                 "failures so far): %s",
                 (long long)target, (long long)w, (unsigned long long)st.failures,
                 mtr_storage_ctl_error(b->ctl));
        b->owe_release = true;
        return;
    }
    size_t r = (size_t)(target % CMD_RING);
    b->cmd_id[r] = target;
    b->cmd_wh[r] = mtr_storage_ctl_power_w(b->ctl) * b->interval_s / 3600;
    b->exp_batt[0] = b->cmd_wh[r];
    b->exp_grid[0] = dd.forecast_net_wh + b->cmd_wh[r];
}

void agb_meter_tick(agb *b, bool have_reading, int64_t last_reading_ms, int64_t now_ms)
{
    if (b->cfg.meter_silence_intervals <= 0 || !have_reading)
        return;
    int64_t limit_ms = b->cfg.meter_silence_intervals * b->interval_s * 1000;
    int64_t quiet_ms = now_ms - last_reading_ms;
    if (quiet_ms > limit_ms && !b->silent) {
        /* a plan is only as good as the readings it follows: without them the setpoint may
         * push the home past what it needs, so the inverter's own mode takes over */
        b->silent = true;
        b->silences++;
        ctl_logf(b->log, CTL_LOG_WARN,
                 "battery: no meter reading for %lld s (meter_silence_intervals %lld): meter "
                 "silent, %llu time(s) so far",
                 (long long)(quiet_ms / 1000), (long long)b->cfg.meter_silence_intervals,
                 (unsigned long long)b->silences);
        release(b, "the meter is silent", 0);
    } else if (quiet_ms <= limit_ms && b->silent) {
        b->silent = false;
        ctl_logf(b->log, CTL_LOG_INFO,
                 "battery: meter readings are back: dispatch resumes with the next complete "
                 "interval");
    } else if (b->silent && b->owe_release) {
        release(b, "the meter is silent", 0);
    }
}

void agb_get_stats(const agb *b, agb_stats *out)
{
    mtr_storage_stats st;
    mtr_storage_ctl_stats(b->ctl, &st);
    *out = (agb_stats){.plans = b->plans,
                       .setpoints = st.setpoints,
                       .failures = st.failures,
                       .releases = st.releases,
                       .meter_silences = b->silences,
                       .in_control = mtr_storage_ctl_in_control(b->ctl) != 0,
                       .owe_release = b->owe_release,
                       .silent = b->silent,
                       .power_w = mtr_storage_ctl_power_w(b->ctl)};
}

void agb_free(agb *b)
{
    if (!b)
        return;
    if (b->ctl) {
        release(b, "the agent stops", 0);
        mtr_storage_ctl_free(b->ctl);
    }
    mtr_link_free(b->link);
    sim_dispatch_free(b->disp);
    free(b->hist_id);
    free(b->hist_net);
    free(b->in);
    free(b->out);
    free(b->sc);
    free(b->exp_grid);
    free(b->exp_batt);
    free(b->work);
    free(b);
}
