/*
 * Internal: `mgx sim --serve-modbus`, the simulated homes' meters served over Modbus TCP while
 * the scenario runs in (accelerated) real time.
 *
 * The engine computes an interval, then calls the on_interval hook; the hook plays that
 * interval out on the wall clock, updating every meter from the meter trace (counters rising
 * linearly, the interval's average power) about ten times a second (at least twenty times an
 * interval at high clock speeds), and returns when the interval's wall time is over. With a
 * hold, the counters stand still for hold_s after each boundary and before the next one and
 * rise over the rest of the interval: a reader that interpolates between readings either side of
 * a boundary then gets the exact boundary value despite polling jitter (the end-to-end test and
 * the demo rely on it; docs/end-to-end.md). Interval k of the scenario begins at wall time
 * clock_start + k x interval / speed (CLOCK_REALTIME, so other processes can share the clock).
 * Home h is served by listener h / 247 (port + h / 247) as unit h % 247 + 1.
 *
 * Every home with a battery also gets a simulated battery inverter (a SunSpec device with
 * models 1 and 124, storage controls; mtr_server_add_storage) on listeners after the meters'
 * (port + meter listeners + i / 247 for the i-th battery home, unit i % 247 + 1; listed in
 * inverter_list). The battery follows what a client writes: at the start of each interval the
 * setpoint standing then (StorCtl_Mod, InWRte/OutWRte x WChaMax) is the battery's power for
 * the whole interval (the simulator moves in whole intervals), within its power and window;
 * with StorCtl_Mod 0 it follows the scenario's battery_policy. The inverter's own watchdog:
 * when InOutWRte_RvrtTms is set and no write came for that many simulated seconds (wall time x
 * clock_speed), it sets StorCtl_Mod back to 0 and runs its own mode. ChaState serves the state
 * of charge the battery will have at the end of the interval being played (decided at its
 * start), so a controller that writes during interval k plans interval k + 1 from it; before
 * the first interval's play begins, the state of charge at the start.
 *
 * With sub_meters, each battery home also has two meters of the same profile behind its grid
 * meter, on listeners after the inverters' and in the meter config: `<home>-pv`, whose export
 * counter rises by the home's PV energy, and `<home>-battery`, whose import counter rises by
 * the battery's AC charge and export counter by its AC discharge (sim_flow), each interval
 * played out like the grid meter's. A home agent with a PV source plans with the fitted
 * forecast from them (docs/agent.md).
 *
 * With a boundary meter (boundary_id), one more meter (index homes, the next unit) measures the
 * community at its grid connection, as the coordinator's meter at the transformer would
 * (docs/trust.md, layer 3): each interval its net is the homes' metered net plus losses of
 * ceil(boundary_loss_permille x the homes' import + export / 1000) Wh, counted as import when
 * the net is >= 0 and as export otherwise, rising linearly like the homes' counters.
 */
#ifndef MGX_CTL_SIM_SERVE_H
#define MGX_CTL_SIM_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/meter_server.h"
#include "mgx/scenario.h"
#include "mgx/sim.h"

typedef struct {
    const char *host;           /* bind address */
    uint16_t port;              /* first listener's port; 0: ephemeral ports */
    mtr_server_profile profile; /* of every meter */
    double clock_speed;         /* simulated seconds per wall second, > 0 */
    int64_t clock_start_ms;     /* wall Unix ms of the scenario's start; 0: when the run starts */
    int64_t start_wh;           /* every counter's value before the first interval */
    int64_t hold_s;             /* simulated s the counters stand still around each boundary;
                                 * 0 (default) .. below half the interval */
    const char *meter_config;   /* INI for `mgx meter` to write, or NULL */
    const char *community;      /* its [bus] community; NULL: from the scenario's name */
    int quiet;                  /* log warnings and errors only */
    const char *boundary_id;    /* serve a boundary meter with this id; NULL: none */
    int64_t boundary_loss_permille; /* its line losses (0 .. 1000) */
    const char *inverter_list;  /* CSV of the battery inverters to write, or NULL */
    int sub_meters;             /* each battery home also gets a PV meter and a battery meter */
} ctl_serve_opts;

typedef struct ctl_serve ctl_serve;

/* Starts the listeners with one meter per home of sc, then writes the meter config (so the
 * file appears once the meters answer). 0, or -1 with a message in err. */
int ctl_serve_new(const ctl_serve_opts *o, const sim_scenario *sc, ctl_serve **out, char *err,
                  size_t err_len);

/* Points hooks->on_flow and hooks->on_interval (and their contexts) at the server. */
void ctl_serve_hooks(ctl_serve *s, sim_hooks *hooks);

/* After the run: the meters keep their final counters (power 0) for seconds (-1: until
 * SIGINT or SIGTERM). */
void ctl_serve_linger(ctl_serve *s, int64_t seconds);

/* The error that made the on_interval hook stop the run ("" if a signal did). */
const char *ctl_serve_error(const ctl_serve *s);

/* Times an inverter's revert timer gave control back to it. */
size_t ctl_serve_reverts(const ctl_serve *s);

/* Intervals that began later than their wall time (the machine could not keep up). */
size_t ctl_serve_late(const ctl_serve *s);

void ctl_serve_free(ctl_serve *s);

/* SIGINT and SIGTERM set a flag that stops the paced run or the lingering. */
void ctl_serve_catch_signals(void);

/* Parses "HOST:PORT" or "[V6]:PORT" into host (of size len) and port. 0 or -1. */
int ctl_serve_parse_addr(const char *s, char *host, size_t len, uint16_t *port);

#endif
