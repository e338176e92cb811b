/*
 * Internal: the home agent's battery dispatch (issue 15). With a [battery] section in the
 * agent's config (docs/agent.md, "Battery dispatch"), after each complete metered interval k the
 * agent plans the home battery over the next day with the simulator's scheduler
 * (mgx/battery_plan.h) and writes the first interval's power to the inverter as a SunSpec
 * model 124 setpoint or through a control map from the config (mgx/storage_ctl.h: written, read
 * back, released on any failure, with model 124's revert timer InOutWRte_RvrtTms so that a
 * stopped agent leaves the battery in the inverter's own mode). A release the device did not
 * confirm is owed and written before anything else at the next chance.
 *
 * The planned interval is k + 2: interval k is known during k + 1 (its readings complete after
 * its end), and a setpoint written then governs the next interval (the simulated inverter takes
 * the setpoint standing at each interval start; a real one applies it at once, in the rest of
 * k + 1 as well). Forecast without a PV meter: the home's own net (load - PV) of the same
 * interval a day before, or the last interval's while there is no day of history (persistence,
 * as the simulator's schedule_persistence); with one, the fitted forecast below. The home's
 * net is the metered net minus what the battery was told to do. Prices: the retail tariff with its optional peak window, feed-in for export,
 * and stored energy at the end worth feed-in after discharge losses (the simulator's rule).
 * When prices are flat over the horizon, or the plan's expected gain over self-consumption is
 * below min_gain, the agent releases control (the inverter's own self-consumption is as good)
 * rather than force a forecast on it.
 *
 * One thread (the agent's loop); Modbus calls block for at most the link's timeout and retries.
 */
#ifndef MGX_CTL_AGENT_BATTERY_H
#define MGX_CTL_AGENT_BATTERY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/log.h"

typedef struct {
    int line;          /* of the [battery] header, 0: no battery dispatch */
    uint64_t seen;     /* keys given (repeats are errors) */
    char host[256];    /* the inverter's Modbus TCP address */
    int64_t port;      /* 502 */
    int64_t unit;      /* 1 */
    int64_t timeout_ms;          /* per request, 1000 */
    bool read_only;              /* plan and log, never write (no) */
    int64_t capacity_wh;         /* required */
    int64_t power_w;             /* required: most charge and discharge power */
    int64_t efficiency_pm;       /* round trip per mille (900) */
    int64_t soc_min_pm, soc_max_pm; /* the window, per mille of capacity (100, 900) */
    int64_t revert_s;            /* InOutWRte_RvrtTms; 0: two intervals */
    int64_t min_write_interval_ms; /* 0 */
    int64_t retail_peak_uc_per_kwh; /* 0: flat retail */
    int64_t peak_start_h, peak_end_h; /* [start, end) local time, wraps over midnight */
    int64_t utc_offset_min;      /* the local time of the peak window */
    int64_t min_gain_uc;         /* expected gain over self-consumption to take control (0) */
    int64_t horizon;             /* intervals planned; 0: one day */
    int64_t import_cap_w, export_cap_w; /* grid limits, -1: none */
    /* control = map: a config-defined control map instead of SunSpec model 124 */
    bool map;                    /* control = sunspec (no) or map (yes) */
    int64_t power_register;      /* required with map: the signed power register */
    int64_t power_function;      /* 6 or 16 (16) */
    int power_type;              /* mtr_ctl_type (int16) */
    int64_t w_per_count;         /* W per register count (1) */
    int64_t mode_register;       /* -1: none; else with mode_control and mode_release */
    int64_t mode_control, mode_release;
    int64_t soc_register;        /* required with map: the state of charge */
    int64_t soc_function;        /* 3 (holding) or 4 (input) (3) */
    int64_t soc_bp_per_count;    /* hundredths of a percent per count (100: whole percent) */
    int64_t meter_silence_intervals; /* no reading this many intervals: release (2; 0 never) */
    /* the fitted decision (sim_dispatch): grid charging for a dearer interval this many minutes
     * ahead is spread over the intervals left, as the simulator's schedule_spread_min (240;
     * 0: off) */
    int64_t spread_min;
} agb_config;

/* The fitted forecast's inputs from [agent] (agent_config.h): the home's location and PV
 * plane, and whether a battery meter measures the battery's AC flow. */
typedef struct {
    double latitude_deg, longitude_deg, tilt_deg, azimuth_deg;
    bool battery_meter;
} agb_site;

/* Defaults into c (no section yet). */
void agb_defaults(agb_config *c);

/* The [battery] handlers for the config loader (CFG_* codes). */
int agb_add(cfg_loader *l, agb_config *c);

typedef struct agb agb;

/* Sets up dispatch for interval_s long intervals and the community's feed-in and retail
 * tariffs (uc/kWh); site non-NULL: the fitted forecast (below), NULL: persistence. Connects
 * lazily. NULL if out of memory or the config is unusable (err). */
agb *agb_new(const agb_config *cfg, const agb_site *site, int64_t interval_s,
             int64_t feed_in_uc_per_kwh, int64_t retail_uc_per_kwh, ctl_log *log, char *err,
             size_t err_len);

/*
 * The fitted forecast (a PV meter configured): the decision is the simulator's own
 * (mgx/dispatch.h, sim_dispatch, as `battery_policy = schedule` with `schedule_lead = 2`), fed
 * each interval's measured PV, load (grid + PV - the battery's AC flow) and grid exchange: the
 * fitted clear-sky PV and load profile, the plan, the min-gain and wait rules and the guard.
 * The home starts measuring at a local midnight: during the interval before it the agent reads
 * the stored energy (the shadow battery's start) with agb_fit_start. Then, after each complete
 * interval k, agb_fit_observe(k) and, when k is recent, agb_fit_decide(k): the decision for
 * k + 2 from the stored energy read now (the simulated inverter serves the energy at the end
 * of the interval being played, k + 1's), whose setpoint is written, or control released
 * without a plan (as before: no history yet, flat prices, too small a gain, a tie, the guard).
 */
bool agb_fitted(const agb *b);

/* The first interval the fitted forecast measures, INT64_MIN before agb_fit_start succeeded. */
int64_t agb_fit_first(const agb *b);

/* The local midnight interval at or after interval `after`. */
int64_t agb_fit_midnight(const agb *b, int64_t after);

/* During interval first - 1: reads the stored energy and starts measuring at first. false when
 * the state of charge cannot be read (logged): try again at the next midnight. */
bool agb_fit_start(agb *b, int64_t first);

/* Interval k is complete (in order, from agb_fit_first): the grid exchange (Wh, > 0 import), the
 * PV, and the battery's AC flow (> 0 charge) when a battery meter measured it (has_battery;
 * otherwise the setpoint that stood in k, or 0 in the inverter's own mode). */
void agb_fit_observe(agb *b, int64_t k, int64_t grid_import_wh, int64_t pv_wh, bool has_battery,
                     int64_t battery_wh);

/* After agb_fit_observe(k): decides k + 2 and writes or releases. */
void agb_fit_decide(agb *b, int64_t k, int64_t now_ms);

/* Interval k is complete with metered net export - import (Wh): plan and write. */
void agb_on_interval(agb *b, int64_t k, int64_t metered_net_wh, int64_t now_ms);

/* Called often (every pass of the agent's loop), market milliseconds: the last time a good meter
 * reading arrived (have_reading false: none yet) and now. No reading for
 * meter_silence_intervals intervals releases control (logged, counted) and dispatch waits;
 * when readings come back it resumes with the next complete interval. */
void agb_meter_tick(agb *b, bool have_reading, int64_t last_reading_ms, int64_t now_ms);

/* What the plan made after complete interval k expects of interval_id (k + 2 onward): the
 * home's grid exchange (Wh, > 0 import) after the battery's flow, and that flow (AC Wh, > 0
 * charge). The flow is the plan's when its setpoint stands, else self-consumption's (the
 * inverter's own mode). false when the last plan was not made after k (none, or no state of
 * charge) or interval_id is outside it: then there is nothing better than the metered net. */
bool agb_expected_net(const agb *b, int64_t k, int64_t interval_id, int64_t *grid_import_wh,
                      int64_t *battery_wh);

typedef struct {
    uint64_t plans;          /* plans made */
    uint64_t setpoints;      /* setpoints written and read back equal */
    uint64_t failures;       /* setpoints that failed (storage control's count) */
    uint64_t releases;       /* releases written (storage control's count) */
    uint64_t meter_silences; /* times the meter went silent while dispatching */
    bool in_control;         /* a setpoint stands */
    bool owe_release;        /* a release the device has not confirmed yet */
    bool silent;             /* the meter is silent now: no dispatch */
    int64_t power_w;         /* the setpoint in force, 0 when not in control */
} agb_stats;

void agb_get_stats(const agb *b, agb_stats *out);

/* Releases control (the agent stops) and frees. NULL is a no-op. */
void agb_free(agb *b);

#endif
