/*
 * Internal: `mgx web CONFIG`'s file, one [web] section (docs/dashboard.md):
 *
 *   [web]
 *   listen = 127.0.0.1          ; IPv4 address to listen on (default 127.0.0.1)
 *   port = 8080                 ; 0: any free port (the URL is printed)
 *   database = community.db     ; the controller's community database (read only)
 *   password_file = passwd      ; the broker's mosquitto password file: homes log in with it
 *   admin_file = admin.passwd   ; coordinator logins, same format (mosquitto_passwd)
 *   tls_cert = cert.pem         ; both or neither: HTTPS with this PEM pair
 *   tls_key = key.pem
 *   max_sessions = 1024         ; sessions held at once (the oldest goes when full)
 *   session_ttl_s = 43200       ; a session lasts this long after its login
 *   live_max_clients = 1024     ; live update streams (GET /api/events) at once; more get 503
 *   live_poll_ms = 1000         ; how often the stream thread asks the database for news
 *   live_queue_bytes = 65536    ; a stream's unsent events; a reader that falls this far
 *                               ; behind is dropped (its browser reconnects), never waited for
 *   threads = 1                 ; libmicrohttpd's thread pool (database handles: one each)
 *   max_connections = 2048      ; open connections at once (live streams count)
 *   alert_silent_s = 900        ; the coordinator is alerted of a meter silent this long
 *   alert_lag_s = 7200          ; ... and of settlement this far behind the clock
 *
 * Relative paths are taken from the config file's folder.
 */
#ifndef MGX_WEB_CONFIG_H
#define MGX_WEB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

typedef struct {
    char listen[64];
    int64_t port;
    char database[CFG_PATH_MAX];
    char password_file[CFG_PATH_MAX];
    char admin_file[CFG_PATH_MAX];
    char tls_cert[CFG_PATH_MAX]; /* "" without TLS */
    char tls_key[CFG_PATH_MAX];
    int64_t max_sessions;
    int64_t session_ttl_s;
    int64_t live_max_clients;
    int64_t live_poll_ms;
    int64_t live_queue_bytes;
    int64_t threads;
    int64_t max_connections;
    int64_t alert_silent_s;
    int64_t alert_lag_s;
    uint64_t seen;
} web_config;

/* Reads path into *c (defaults first). CFG_OK or an error with "FILE:LINE: message". */
int web_config_load(const char *path, web_config *c, char *err, size_t errlen);

#endif
