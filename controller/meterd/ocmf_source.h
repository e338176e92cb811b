/*
 * OCMF file sources of the meter daemon: a certified meter (or its charger, or a script that
 * fetches its records over HTTP) appends each signed OCMF record as one line to a file; the
 * daemon follows the file and publishes every new record as the meter's reading with the record
 * attached ("ocmf" in the state body), for the controller to verify against the meter's
 * registered key (tier 2, docs/reading-signatures.md). The daemon does not need the key and
 * does not trust the record: it only forwards it.
 *
 *   [ocmf m2]              ; the meter id
 *   file = /var/lib/charger/ocmf.log
 *   poll_ms = 1000         ; 100 .. 3600000, how often the file is looked at
 *
 * The file is read from its start when the daemon starts (the controller keeps one reading per
 * meter and time stamp, so records published before are ignored there); a file that shrinks
 * (rotated or truncated) is read again from its start. A line that is not a record mgx reads is
 * logged and skipped.
 *
 * Threading: the meter daemon's main thread.
 */
#ifndef MGX_CTL_OCMF_SOURCE_H
#define MGX_CTL_OCMF_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bus/outbox.h"
#include "common/config.h"
#include "common/log.h"
#include "mgx/meter.h"

#define OCMF_SOURCES_MAX 16

typedef struct {
    char id[MTR_ID_MAX];
    char path[CFG_PATH_MAX];
    int64_t poll_ms;
    int line;
    uint64_t seen;
} cfg_ocmf_source;

typedef struct {
    const cfg_loader *loader;
    cfg_ocmf_source src[OCMF_SOURCES_MAX];
    size_t n;
} cfg_ocmf_sources;

/* Registers the [ocmf ID] handler and its check (file is required). CFG_OK or CFG_E_NOMEM. */
int cfg_ocmf_add(cfg_loader *l, cfg_ocmf_sources *c);

typedef struct ocmf_follow ocmf_follow;

/* The followers of c's sources (NULL when c has none; then 0). 0 or -1 (out of memory). */
int ocmf_follow_new(const cfg_ocmf_sources *c, ocmf_follow **out);
void ocmf_follow_free(ocmf_follow *f);

/* Reads what is new in every source due at now_ms and pushes each record's reading into ob
 * (topic meter/<id>/state of community, QoS 1, retained). Returns the number of readings
 * pushed. Problems are logged through lg. */
int ocmf_follow_pump(ocmf_follow *f, outbox *ob, const char *community, int64_t now_ms,
                     const ctl_log *lg);

/* `mgx meter --once`: for each source, one JSON line on out: the state body of the file's last
 * readable record plus "ok": true and "profile": "ocmf", or "ok": false and the reason. 0 when
 * every source gave a reading, 1 otherwise. */
int ocmf_sources_once(const cfg_ocmf_sources *c, FILE *out);

#endif
