/*
 * Internal: the home agent daemon behind `mgx agent`. It follows the home's meter on the bus,
 * turns each complete interval's net energy into a persistence forecast, prices it with the
 * simulator's strategy (mgx/strategy.h), signs the order (order_msg.h), stores it in its outbox
 * (agent_store.h) and publishes it at QoS 1, resending the stored bytes until the controller's
 * receipt arrives. It keeps the receipts, trades and market results it receives.
 *
 * One thread: everything runs inside agent_run's loop. Logs go to stderr, one line per event
 * ("mgx agent LEVEL: ..."); secrets (the signing key, the MQTT password) are never logged.
 */
#ifndef MGX_CTL_AGENT_H
#define MGX_CTL_AGENT_H

#include <signal.h>
#include <stddef.h>

#include "agent/agent_config.h"
#include "common/interval.h"

typedef struct agent agent;

/* Loads the key, opens the outbox and sets up the bus client (not connected yet). clock maps
 * real time to the market's time (speed 1, equal anchors: the wall clock). *out is owned by
 * the caller (agent_free). On failure returns -1 with err set. */
int agent_new(const agc_config *cfg, const ctl_clock *clock, agent **out, char *err,
              size_t err_len);

/* Runs until *stop is nonzero (a signal handler sets it), then shuts down cleanly (retained
 * offline status). Returns 0, or -1 after a fatal error (the outbox failed). */
int agent_run(agent *a, volatile sig_atomic_t *stop);

void agent_free(agent *a);

#endif
