/*
 * Internal: named crash points for the crash tests. When the environment variable MGX_CRASH_AT
 * names the point, the process kills itself with SIGKILL there, so a test can stop the daemon
 * exactly between two steps whose order matters (a row committed, a request sent, an answer
 * recorded) instead of hoping a random kill lands there. Costs one getenv per point; the
 * points are on paths that also do I/O.
 *
 * Points: solana.after_add (an interval's transactions are in the outbox, the settler's
 * progress is not yet recorded), solana.before_send (a row is committed as submitted, its bytes
 * not yet sent), solana.after_send (the node has the bytes, its answer is not yet recorded).
 * settle_interval.c uses it for its ledger.* points (listed in settle_interval.h).
 */
#ifndef MGX_CTL_CRASH_POINT_H
#define MGX_CTL_CRASH_POINT_H

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static inline void ctl_crash_point(const char *name)
{
    const char *at = getenv("MGX_CRASH_AT");
    if (at && strcmp(at, name) == 0)
        raise(SIGKILL);
}

#endif
