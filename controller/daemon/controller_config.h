/*
 * Internal: the file `mgx controller` reads. [controller] (market rules, database, settlement,
 * clock) and the optional [solana] are read here, [bus] by bus/bus_config.h, through the shared
 * loader (common/config.h), so every error names the file and line; a home's sections ([agent],
 * [meter ID]...) may share the file and are skipped. The keys are documented in
 * docs/controller.md.
 *
 * The loader calls the handlers with a ctl_controller_file as context: the caller owns it and
 * the ctl_daemon_config and cfg_bus it points at, which must outlive the load.
 */
#ifndef MGX_CTL_CONTROLLER_CONFIG_H
#define MGX_CTL_CONTROLLER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus_config.h"
#include "cluster/cluster_config.h"
#include "common/config.h"
#include "daemon/ctl_daemon.h"

typedef struct {
    ctl_daemon_config *cfg; /* [controller] and [solana] land here */
    cfg_bus *bus;           /* [bus] lands here; it may hold a password (cfg_bus_clear) */
    int line;               /* of the [controller] header; 0 if the file has none */
    char anchor[128];       /* [controller] clock_anchor; "" when absent */
    int64_t speed;          /* [controller] clock_speed; 1 when absent */
    /* the handlers' own state */
    const cfg_loader *loader;   /* while loading: resolves relative paths */
    char community[BUS_ID_MAX]; /* [controller] community (the older place for it) */
    int solana_line;
    uint64_t seen;     /* [controller] keys already given */
    cfg_others others; /* a home's sections, skipped */
    ctl_cluster_section cluster; /* [cluster], copied into cfg after the load */
} ctl_controller_file;

/* Points x at cfg and bus, sets cfg to the defaults (docs/controller.md) and empties bus. */
void ctl_controller_file_init(ctl_controller_file *x, ctl_daemon_config *cfg, cfg_bus *bus);

/* Registers the controller's handlers on l in the order they must run ([controller] first: it
 * may supply [bus] its community; [bus]; [solana]; a home's sections skipped). CFG_OK or
 * CFG_E_NOMEM. For tests and fuzzing, which load from memory; a daemon calls
 * ctl_controller_file_load. */
int ctl_controller_file_add(cfg_loader *l, ctl_controller_file *x);

/* Loads path into *x->cfg and *x->bus, with the checks across sections (feed-in at most the
 * retail tariff) and cfg->community set from [bus]. CFG_OK, or a CFG_E_* code with
 * "FILE:LINE: reason" (or "FILE: reason") in err. */
int ctl_controller_file_load(ctl_controller_file *x, const char *path, char *err, size_t errlen);

#endif
