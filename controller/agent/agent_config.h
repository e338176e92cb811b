/*
 * Internal: the home agent's configuration, read with the daemon config loader (config.h):
 * the [bus] section it shares with the meter daemon and its own [agent] section. The file may
 * be the home's one file that also configures its meter daemon: the agent skips the meter
 * daemon's sections ([outbox], [homeassistant], [meter ID], [map NAME]) and still rejects any
 * section nobody owns. Every key is documented in docs/agent.md. A bad value is reported as
 * "FILE:LINE: key: why" and nothing runs; a missing required key names the [agent] line.
 *
 * Threading: an agc_config belongs to one thread.
 */
#ifndef MGX_CTL_AGENT_CONFIG_H
#define MGX_CTL_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent_battery.h"
#include "bus/bus_config.h"
#include "mgx/ex_post.h"
#include "mgx/market.h"
#include "mgx/strategy.h"

/* [agent] forecast_lag: at most this many intervals between the forecast and the order. */
#define AGC_FORECAST_LAG_MAX 96

typedef struct {
    /* [bus]. After agc_load, bus.client_id and bus.username hold the values the agent uses
     * (the defaults below filled in); bus.password is owned here (agc_clear). */
    cfg_bus bus;
    cfg_others others;            /* the meter daemon's sections skipped in a shared file */
    /* [agent] */
    char participant[BUS_ID_MAX];
    char client_id[BUS_ID_MAX];   /* [agent] client_id as given, "" if not */
    char username[128];           /* [agent] username as given, "" if not */
    char password_file[CFG_PATH_MAX]; /* [agent] password_file as given, "" if not; read into
                                         bus.password */
    char key_file[CFG_PATH_MAX];  /* the Ed25519 order-signing key (mgx keygen) */
    char meter_id[BUS_ID_MAX];    /* default the participant id */
    char outbox[CFG_PATH_MAX];    /* SQLite file */
    char metrics_file[CFG_PATH_MAX]; /* Prometheus textfile with the forecast error, "" none */
    /* The fitted forecast (docs/agent.md): the home's PV meter (export = PV), "" none (then the
     * battery plans by persistence), its battery meter (import = AC charge, export = AC
     * discharge), "" none, and the home's location and PV plane (site.battery_meter is set
     * when battery_meter_id is given) */
    char pv_meter_id[BUS_ID_MAX], battery_meter_id[BUS_ID_MAX];
    agb_site site;
    sim_strategy_params strategy;
    mkt_params tariffs;           /* the community's feed-in, retail and fee */
    int64_t interval_s;           /* default 900 */
    int64_t gate_closure_s;       /* default 0 */
    int64_t resend_s;             /* real seconds between resends of an unanswered order (5) */
    int64_t give_up_s;            /* simulated seconds after the gate to stop resending (3600) */
    int64_t max_reading_gap_s;    /* readings further apart bridge no boundary (300) */
    int64_t max_power_w;          /* the meter's rating for the plausibility check (100000) */
    mkt_timing timing;            /* the community's: ex_ante sends orders, ex_post standing
                                     preferences (ex_ante) */
    int64_t forecast_lag;         /* order k + lag from complete interval k; 0: first open (0) */
    agb_config battery;           /* [battery]: battery dispatch (line 0: none) */
    int line;                     /* line of the [agent] header, 0 if absent */
    uint64_t seen;                /* [agent] keys already given (repeats are errors) */
    const cfg_loader *loader;
} agc_config;

/*
 * Registers the [agent] section with l and sets c's [agent] fields to the defaults above
 * (required keys empty). The caller also registers c->others (cfg_others_add) and then c->bus
 * (cfg_bus_add), in that order after this: the [agent] checks that run after the file read
 * both and fill in the username and client id before [bus]'s own checks. CFG_OK or
 * CFG_E_NOMEM.
 */
int agc_add(cfg_loader *l, agc_config *c);

/* Reads path: [bus], [agent], the meter daemon's sections skipped. 0, or -1 with err set to
 * "FILE:LINE: message" (or "FILE: message"). On success the caller owns c's password and
 * wipes it with agc_clear; on failure nothing is left to free. */
int agc_load(const char *path, agc_config *c, char *err, size_t err_len);

/* Wipes and frees what agc_load allocated (the MQTT password). */
void agc_clear(agc_config *c);

#endif
