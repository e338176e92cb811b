/*
 * Internal: the home agent's configuration file (INI), its [bus] and [agent] sections. Every key
 * is documented in docs/agent.md. A bad value is reported as "FILE:LINE: key: why" and nothing
 * runs; missing required keys are named.
 */
#ifndef MGX_CTL_AGENT_CONFIG_H
#define MGX_CTL_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ident.h"
#include "mgx/market.h"
#include "mgx/strategy.h"

#define AGC_ID_MAX (CTL_ID_MAX + 1)
#define AGC_PATH_MAX 1024
#define AGC_HOST_MAX 256

typedef struct {
    /* [bus] */
    char host[AGC_HOST_MAX];
    int port; /* 0: the bus default (8883 with TLS) */
    char community[AGC_ID_MAX];
    char client_id[AGC_ID_MAX]; /* default <participant>-agent */
    char username[AGC_ID_MAX];  /* default the participant id */
    char password_file[AGC_PATH_MAX]; /* the MQTT password, alone in a 0600 file */
    char ca_file[AGC_PATH_MAX];
    char cert_file[AGC_PATH_MAX];
    char tls_key_file[AGC_PATH_MAX];
    /* [agent] */
    char participant[AGC_ID_MAX];
    char key_file[AGC_PATH_MAX];  /* the Ed25519 order-signing key (mgx keygen) */
    char meter_id[AGC_ID_MAX];    /* default the participant id */
    char outbox[AGC_PATH_MAX];    /* SQLite file */
    sim_strategy_params strategy;
    mkt_params tariffs;           /* the community's feed-in, retail and fee */
    int64_t interval_s;           /* default 900 */
    int64_t gate_closure_s;       /* default 0 */
    int64_t resend_s;             /* real seconds between resends of an unanswered order (5) */
    int64_t give_up_s;            /* simulated seconds after the gate to stop resending (3600) */
    int64_t max_reading_gap_s;    /* readings further apart bridge no boundary (300) */
    int64_t max_power_w;          /* the meter's rating for the plausibility check (100000) */
} agc_config;

/* Fills the defaults above; required keys are left empty. */
void agc_defaults(agc_config *c);

/* Sets one key of a section ("bus" or "agent"). Returns 0, or -1 with why (size why_len) set. */
int agc_set(agc_config *c, const char *section, const char *key, const char *value, char *why,
            size_t why_len);

/* Checks required keys and the fields' relations, fills derived defaults. 0 or -1 with why. */
int agc_finish(agc_config *c, char *why, size_t why_len);

/* Reads path: defaults, every key, agc_finish. 0, or -1 with err ("path:line: ..."). */
int agc_load(const char *path, agc_config *c, char *err, size_t err_len);

#endif
