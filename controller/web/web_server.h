/*
 * Internal: the dashboard's HTTP server (`mgx web`, docs/dashboard.md) on libmicrohttpd: the
 * embedded pages, a login that starts a session cookie, and the read-only JSON endpoints, each
 * authorised on the server:
 *
 *   POST /api/login      {"user":..,"password":..} -> 200 {"user","role"} + cookie, 401, or
 *                        429 while the name is locked (web_auth.h, failed logins)
 *   POST /api/logout     ends the session
 *   GET  /api/me         the session's user and role, or 401
 *   GET  /api/home/ID    ID's day (web_data.h); ?day=YYYY-MM-DD. 401 without a session, 403
 *                        for a home asking for another home (and nothing else in the answer)
 *   GET  /api/community  the community's day, the coordinator only (403 for a home)
 *
 * One libmicrohttpd thread serves every request in turn, so the database handle is used by one
 * thread. Secrets: a login's body (the password) is held in sodium_malloc memory, wiped when the
 * request ends.
 */
#ifndef MGX_WEB_SERVER_H
#define MGX_WEB_SERVER_H

#include <stdint.h>

#include "db/db.h"
#include "web/web_config.h"

typedef struct web_server web_server;

/* Starts serving c with the database db (the caller's; it must outlive the server). Returns
 * NULL with a message in err on failure. */
web_server *web_server_start(const web_config *c, ctl_db *db, char *err, size_t errlen);
/* The bound port (the chosen one when the config said 0). */
int web_server_port(const web_server *s);
/* Stops the server and frees it; NULL is a no-op. */
void web_server_stop(web_server *s);

#endif
