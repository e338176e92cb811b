/*
 * Internal: how a daemon tells its service manager that it is up and still alive.
 *
 * Under systemd (Type=notify, WatchdogSec=) the manager passes a datagram socket in
 * NOTIFY_SOCKET and, with a watchdog, its period in WATCHDOG_USEC. The protocol is one
 * AF_UNIX datagram of "KEY=VALUE" lines per notification (sd_notify(3)); it is small and
 * stable, so mgx speaks it directly instead of linking libsystemd, and a daemon started by
 * hand (no NOTIFY_SOCKET) pays nothing. docs/operations.md names the units that use it.
 *
 * A ctl_service is owned by the daemon's run loop; not shared between threads.
 */
#ifndef MGX_CTL_SERVICE_H
#define MGX_CTL_SERVICE_H

#include <stdint.h>

#define CTL_SERVICE_PATH_MAX 108 /* sun_path */

typedef struct {
    char path[CTL_SERVICE_PATH_MAX]; /* "" when not run by a service manager */
    int64_t watchdog_ms;             /* 0 when no watchdog was asked for */
    int64_t last_ping_ms;
} ctl_service;

/* Reads NOTIFY_SOCKET and WATCHDOG_USEC (honouring WATCHDOG_PID: a watchdog meant for another
 * process is ignored). Never fails: a bad or absent value means "no manager". */
void ctl_service_init(ctl_service *s);

/* Sends one notification, e.g. "READY=1" or "STOPPING=1" or "STATUS=text". 0 when sent or
 * when there is no manager; -1 with errno when the datagram could not be sent (the caller logs
 * it once; a daemon keeps running without its manager). */
int ctl_service_notify(const ctl_service *s, const char *state);

/* Called from the run loop with the wall clock: sends WATCHDOG=1 once half the watchdog
 * period has passed since the last ping, so a loop that stalls for a whole period gets the
 * daemon restarted. */
void ctl_service_tick(ctl_service *s, int64_t now_ms);

#endif
