/*
 * Internal: the meter daemon, `mgx meter`'s engine. It loads a meter file ([bus], [outbox],
 * [homeassistant], [meter ID], [map NAME]; a home's shared file may also hold the agent's
 * [agent], which is skipped), polls every configured Modbus device with the meters library's
 * poller and publishes each reading on the bus: state (retained, QoS 1) through the SQLite
 * outbox, so nothing is lost while the broker is away; meta once per connection; and, when
 * [homeassistant] is on, Home Assistant discovery. The once mode reads every device once and
 * prints JSON lines, for installers checking their wiring.
 *
 * Config errors are written to stderr as "mgx meter: ..."; while running, events are log lines
 * "mgx meter LEVEL: ..." (common/log.h). Both calls block; neither keeps state between calls.
 */
#ifndef MGX_CTL_METERD_H
#define MGX_CTL_METERD_H

#include <signal.h>

#include "bus/bus_config.h"
#include "common/config.h"
#include "common/interval.h"
#include "meterd/meter_signing.h"
#include "meterd/ocmf_source.h"
#include "mgx/device_config.h"

/* What a meter file holds; the caller owns it. */
typedef struct {
    cfg_bus bus;        /* [bus]; may hold a password */
    cfg_outbox outbox;  /* [outbox] */
    cfg_ha ha;          /* [homeassistant] */
    cfg_others others;  /* the agent's [agent] in a home's shared file, skipped */
    mtr_config *meters; /* [meter ID], [map NAME] (the meters library's) */
    cfg_signing signing; /* [signing]: the device key that signs readings (meter_signing.h) */
    cfg_ocmf_sources ocmf; /* [ocmf ID]: certified meters' OCMF records from files */
} ctl_meterd_file;

/* Empties f, creates f->meters (path names the file in its messages) and registers the meter
 * daemon's handlers on l, in the order the daemon uses. CFG_OK or CFG_E_NOMEM; either way
 * ctl_meterd_file_clear(f) frees what was made. For tests and fuzzing, which load from memory;
 * the daemon loads its file itself. */
int ctl_meterd_file_add(cfg_loader *l, ctl_meterd_file *f, const char *path);
/* Frees f->meters and wipes the [bus] password. */
void ctl_meterd_file_clear(ctl_meterd_file *f);

typedef struct {
    const char *config_path; /* the meter file */
    int log_level;           /* CTL_LOG_*: CTL_LOG_DEBUG also logs every reading */
    const ctl_clock *clock;  /* NULL: readings carry wall-clock time; else this accelerated
                              * clock's (simulated meters, demos, tests); the caller's, alive
                              * during the call */
} ctl_meterd_options;

/* Reads every device once and prints one JSON line per device on stdout (the state body plus
 * "ok" and "meta", or "ok": false with the reason). No broker needed: [bus] may be left out.
 * 0 when every device was read, 1 otherwise (or when the config is bad). */
int ctl_meterd_once(const ctl_meterd_options *o);

/* Runs the daemon until *stop becomes non-zero (a signal handler sets it); what the broker has
 * not taken by then stays in the outbox for the next start. 0 after a clean stop, 1 when the
 * config, the outbox, the bus or the poller could not be set up. */
int ctl_meterd_run(const ctl_meterd_options *o, volatile sig_atomic_t *stop);

#endif
