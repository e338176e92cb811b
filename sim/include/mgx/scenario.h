/*
 * mgx sim: the scenario, i.e. everything a simulation run is defined by.
 *
 * A scenario is read from an INI file (docs/scenario-reference.md documents every key) into
 * this plain struct; the simulator itself never touches the file. Physical sizes are doubles
 * (they feed physical models); tariffs are integer micro-currency per kWh like everywhere in
 * mgx.
 */
#ifndef MGX_SCENARIO_H
#define MGX_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/ex_post.h" /* mkt_timing */
#include "mgx/market.h"
#include "mgx/strategy.h" /* sim_agent_kind: the pricing strategy of a group */

#ifdef __cplusplus
extern "C" {
#endif

#define SIM_MAX_GROUPS 64
#define SIM_NAME_MAX 64
#define SIM_MAX_HOMES 100000
#define SIM_MAX_DAYS 3660
#define SIM_MAX_FORECAST_LAG 8

/* How a group's batteries are run (docs/simulator.md, "Battery scheduling"). */
typedef enum {
    SIM_BATTERY_SELF_CONSUMPTION = 0, /* surplus charges, deficit discharges (the default) */
    SIM_BATTERY_SCHEDULE = 1 /* a 24 h plan by the scheduler (mgx/battery_plan.h), re-made
                                every interval from day-ahead persistence forecasts */
} sim_battery_policy;

/* One archetype of homes. */
typedef struct {
    char name[SIM_NAME_MAX];
    uint32_t count;
    /* PV */
    double pv_kwp;         /* 0 for none */
    double pv_tilt_deg;    /* 0 = horizontal */
    double pv_azimuth_deg; /* compass bearing the panels face: 180 = south, 0 = north */
    double inverter_kw;    /* AC limit; 0 means equal to pv_kwp */
    double pv_loss;        /* system losses before the inverter, fraction (default 0.14) */
    /* battery */
    double battery_kwh; /* 0 for none */
    double battery_kw;
    double battery_efficiency; /* round trip, (0, 1] */
    double soc_min;            /* fractions of capacity */
    double soc_max;
    double soc_initial;
    sim_battery_policy battery_policy;
    /* SIM_BATTERY_SCHEDULE: follow a plan only when it is expected to beat self-consumption
     * over its horizon by at least this much (uc); otherwise run self-consumption */
    int64_t schedule_min_gain_uc;
    /* SIM_BATTERY_SCHEDULE: 1: forecast by day-ahead persistence instead of the fitted
     * clear-sky PV and load profile (mgx/forecast.h); 0 (default): the fit */
    uint32_t schedule_persistence;
    /* SIM_BATTERY_SCHEDULE: 1 (default): follow a plan only while the home's realised grid
     * bill is no worse than a shadow self-consumption battery's (mgx/dispatch.h); 0: no guard */
    uint32_t schedule_guard;
    /* SIM_BATTERY_SCHEDULE: 1 (default; 0 is the same): interval k is decided with k - 1 measured and the
     * battery keeps to the plan's bounds (self-consumption on the real net within them); 2: as
     * the home agent does (`mgx agent`, docs/agent.md): k is decided with k - 2 measured, from
     * the stored energy at k's start, and the battery holds the decision's setpoint for the whole interval, as an
     * inverter given a power setpoint does */
    uint32_t schedule_lead;
    /* SIM_BATTERY_SCHEDULE: grid charging for a dearer interval within this many minutes is
     * spread evenly over the intervals left before it (mgx/dispatch.h spread_intervals), so the
     * batteries of a community on one tariff do not all charge in its last cheap interval;
     * 0: off (default 240) */
    uint32_t schedule_spread_min;
    /* load */
    double annual_kwh;
    /* trading agent */
    sim_agent_kind agent;
    double markup;         /* SIM_AGENT_MARKUP: fraction of the tariff spread, e.g. 0.1 */
    double zip_beta;       /* SIM_AGENT_ZIP learning rate (default 0.3) */
    double zip_momentum;   /* SIM_AGENT_ZIP momentum (default 0.05) */
    /* grid: a group with either limit sits on a feeder of its own under the transformer, whose
     * edge carries at most this much net local trade (kW, over the interval); -1 (default):
     * no limit (docs/market-rules.md, "Grid-aware clearing") */
    double feeder_export_kw;
    double feeder_import_kw;
} sim_group;

typedef struct {
    char name[SIM_NAME_MAX];
    /* location */
    double latitude_deg;  /* north positive */
    double longitude_deg; /* east positive */
    int32_t utc_offset_min; /* fixed offset of local standard time, e.g. +600 for Sydney */
    /* period: local start date, number of days, interval */
    int32_t start_year, start_month, start_day;
    uint32_t days;
    uint32_t interval_min; /* divides 1440; default 15 */
    uint64_t seed;
    /* weather */
    double clear_sky_index_mean; /* long-run mean of the clear-sky index, (0, 1]; default 0.7 */
    double cloud_persistence_h;  /* e-folding time of cloud cover, hours; default 3 */
    double cloud_home_spread;    /* per-home deviation from the shared cover, default 0.05 */
    /* market */
    mkt_mechanism mechanism;
    int64_t feed_in_uc_per_kwh;
    int64_t retail_uc_per_kwh;
    int64_t network_fee_uc_per_kwh;
    /* [market] level_fee: a network fee per level of the feeder tree a local trade crosses
     * (mkt_topology.level_fee_uc_per_kwh). With one, every group is on a feeder of its own
     * (unlimited unless the group sets a limit): a trade within a group crosses no level, one
     * between groups two. 0 (default): none. */
    int64_t level_fee_uc_per_kwh;
    /* A two-rate tariff: retail_peak_uc_per_kwh (0: none) instead of retail_uc_per_kwh in the
     * intervals that start in [peak_start_h, peak_end_h) local standard time. */
    int64_t retail_peak_uc_per_kwh;
    uint32_t peak_start_h, peak_end_h;
    /* Intervals between the one a home forecasts from and the one it orders for: 1 (default)
     * orders for k from k - 1; 2 from k - 2, what a real agent can do, because interval k - 1
     * has not ended when k's gate closes (docs/end-to-end.md). */
    uint32_t forecast_lag;
    /* Threads of one run (not a file key; `mgx sim --threads`, default the cores): 2 or more
     * run the homes' physics a block of intervals ahead on worker threads, and settle the block
     * before, while the main thread clears (docs/simulator.md, "Threads"). The result is the
     * same bytes for any count. 0 or 1: one; at most 64. */
    uint32_t threads;
    /* ex_ante (default): homes order before the interval from a forecast and settle errors
     * against the grid. ex_post: the interval is cleared after delivery on every home's metered
     * net with its standing preference as limit (docs/simulator.md, "Timing"). */
    mkt_timing timing;
    /* homes */
    size_t n_groups;
    sim_group groups[SIM_MAX_GROUPS];
} sim_scenario;

enum {
    SIM_OK = 0,
    SIM_E_INVAL = -1,  /* bad argument */
    SIM_E_IO = -2,     /* a file could not be read or written */
    SIM_E_PARSE = -3,  /* a scenario or data file is malformed (the message says where) */
    SIM_E_NOMEM = -4,
    SIM_E_MARKET = -5, /* the market library rejected a book (a bug: the sim forms the orders) */
    SIM_E_GSL = -6,    /* a GSL routine failed */
    SIM_E_STOPPED = -7 /* a sim_hooks.on_interval hook stopped the run */
};

const char *sim_strerror(int code);

/* Fills every field with its documented default (no groups). */
void sim_scenario_defaults(sim_scenario *sc);

/* Fills one archetype with its documented defaults: no PV, no battery (but the battery's
 * efficiency and SOC window set), 3500 kWh a year, truthful agent, panels tilted 30 degrees
 * facing south (sim_scenario_load turns that to north south of the equator when the file does
 * not say). */
void sim_group_defaults(sim_group *g);

/* Reads an INI scenario. On failure returns SIM_E_IO or SIM_E_PARSE and writes a message that
 * names the file and line ("street.ini:12: unknown key 'pv_kwh' in [group.roof]") into err. */
int sim_scenario_load(const char *path, sim_scenario *sc, char *err, size_t err_len);

/* Checks cross-field rules (soc_min <= soc_initial <= soc_max, feed-in <= retail, ...).
 * Returns SIM_OK or SIM_E_PARSE with a message. sim_scenario_load calls it. */
int sim_scenario_validate(const sim_scenario *sc, char *err, size_t err_len);

/*
 * Sets one key of a loaded scenario as if the file had said `key = value` in [section]
 * ("market", "period", ..., or "group.NAME" of a group the scenario has), then checks every
 * cross-field rule. On failure returns SIM_E_PARSE with a message naming the section and key
 * and leaves sc unchanged. What the file said of other keys stays (the defaults that
 * sim_scenario_load derives, such as a group's azimuth from the latitude, are not re-derived).
 * Sweeps (mgx/sweep.h) vary scenarios with it.
 */
int sim_scenario_set(sim_scenario *sc, const char *section, const char *key, const char *value,
                     char *err, size_t err_len);
/* The retail tariff (all-in, uc/kWh) of the interval that starts at start_utc (Unix s). */
int64_t sim_scenario_retail_at(const sim_scenario *sc, int64_t start_utc);

/* "self_consumption" or "schedule"; parse returns 0 or -1. */
const char *sim_battery_policy_name(sim_battery_policy p);
int sim_battery_policy_parse(const char *s, sim_battery_policy *out);

/* Total number of homes over all groups. */
size_t sim_scenario_homes(const sim_scenario *sc);

#ifdef __cplusplus
}
#endif

#endif
