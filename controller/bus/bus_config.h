/*
 * The config sections every mgx daemon shares: [bus] (the broker and the community), [outbox]
 * (the meter daemon's store-and-forward queue) and [homeassistant] (discovery), as section
 * handlers for the common config loader (common/config.h).
 *
 * Threading: a loader and the structs it fills belong to one thread.
 */
#ifndef MGX_CTL_BUS_CONFIG_H
#define MGX_CTL_BUS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "bus/outbox.h"
#include "common/config.h"

/* ---- [bus] ---- */
typedef struct {
    char host[256];               /* default 127.0.0.1 */
    int port;                     /* 0: 1883, or 8883 with TLS */
    char community[BUS_ID_MAX];   /* required */
    char client_id[BUS_ID_MAX];   /* "" when not set: the daemon picks a default */
    char username[128];
    char password_file[CFG_PATH_MAX];
    char *password;               /* read from password_file, which must be a regular file no
                                     other user can read or write (else an error);
                                     sodium_malloc'd, wiped by cfg_bus_clear */
    char tls_ca[CFG_PATH_MAX], tls_cert[CFG_PATH_MAX], tls_key[CFG_PATH_MAX];
    int keepalive_s;              /* default 30 */
    int backoff_min_ms, backoff_max_ms; /* defaults 500, 30000 */
    int line;                     /* line of the [bus] header, 0 if absent */
    const cfg_loader *loader;
    uint64_t seen;                /* keys already given (repeats are errors) */
    bool optional;                /* set after cfg_bus_add by a caller that needs no broker
                                     (`mgx meter --once`): a missing [bus] is no error; one
                                     that is present is still checked */
} cfg_bus;

/* Registers [bus] (and zeroes *b). [bus] with community is required. */
int cfg_bus_add(cfg_loader *l, cfg_bus *b);
/* Fills a bus_config pointing into b (valid while b lives). */
void cfg_bus_config(const cfg_bus *b, bus_config *out);
/* Wipes and frees the password. */
void cfg_bus_clear(cfg_bus *b);
/* Reads the password from path (a regular file only its owner may open; the first line) into
 * b->password, replacing any; the rule of [bus] password_file, for a daemon's own login key.
 * CFG_OK, CFG_E_BAD with err set, or CFG_E_NOMEM. */
int cfg_bus_read_password(cfg_bus *b, const char *path, char *err, size_t errlen);

/* ---- [outbox] ---- */
typedef struct {
    char path[CFG_PATH_MAX]; /* default: mgx-outbox-<client_id>.db next to the config */
    uint64_t max_messages;   /* default 100000 */
    outbox_policy policy;    /* full_policy = drop_oldest (default) | refuse_newest */
    unsigned window;         /* default 16 */
    int line;
    const cfg_loader *loader;
    uint64_t seen;
} cfg_outbox;

int cfg_outbox_add(cfg_loader *l, cfg_outbox *o);

/* ---- [homeassistant] ---- */
typedef struct {
    bool enabled;      /* default false */
    char prefix[128];  /* discovery prefix, default "homeassistant" */
    int line;
    uint64_t seen;
} cfg_ha;

int cfg_ha_add(cfg_loader *l, cfg_ha *h);

#endif
