/*
 * Internal: how the long-running commands (mgx controller, meter, agent, sim --serve-modbus)
 * learn that they should stop. SIGINT and SIGTERM set one process-wide flag that the run loop
 * polls, so a daemon finishes its current step, flushes and closes its stores and exits 0
 * rather than dying mid-write. SIGPIPE is ignored: a peer that drops a socket (a broker, a
 * Modbus client) is an error the caller sees as EPIPE, not a reason to kill the process.
 */
#ifndef MGX_CTL_STOP_SIGNAL_H
#define MGX_CTL_STOP_SIGNAL_H

#include <signal.h>

/* Clears the stop flag, installs the handlers and returns the flag for the run loop to poll
 * (non-zero: stop). The flag is static storage; the pointer stays valid for the process. */
volatile sig_atomic_t *ctl_stop_on_signals(void);

#endif
