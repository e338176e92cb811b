/*
 * `mgx doctor CONFIG`: checks what a daemon needs before it is started, and says what to fix.
 *
 * It looks at what the file holds ([controller], [agent], [meter ID]) and checks, in order: the
 * config (through the daemons' own loaders, so FILE:LINE errors are theirs), the secret files
 * it names (present, readable, no access for group or others), the broker (a probe connection
 * with the file's credentials that leaves nothing retained), each meter once, the system clock
 * (synchronised by NTP), and the SQLite files (integrity, schema version). Each finding is one
 * line "ok|warn|FAIL  topic: what" with a "fix:" line under a failure.
 */
#ifndef MGX_CTL_DOCTOR_H
#define MGX_CTL_DOCTOR_H

#include <stdio.h>

typedef struct {
    const char *config_path;
    int broker_timeout_ms; /* how long the broker has to answer; 0: 10000 */
    int skip_meters;       /* do not read the meters (a reader daemon may be polling them) */
} ctl_doctor_options;

/* Runs every check, writing findings to out. 0 when nothing failed (warnings allowed), 1
 * otherwise. */
int ctl_doctor_run(const ctl_doctor_options *o, FILE *out);

#endif
