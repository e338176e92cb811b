/*
 * Internal: the dashboard's live updates (GET /api/events, docs/dashboard.md) as Server-Sent
 * Events. One thread polls the community database through its own handle: SQLite's
 * data_version says cheaply whether another connection committed; only then it reads what is
 * new for each stream's identity (web_data.h web_home_events / web_community_events): a home's
 * stream carries only that home's reading, trades and positions and the public price, the
 * coordinator's the community's intervals and settlements plus a "change" tick.
 *
 * Bounds: at most max_clients streams (web_live_open answers NULL beyond: the server says 503);
 * each stream's unsent text is at most queue_bytes, and its socket's send buffer is set to
 * queue_bytes too (the kernel would otherwise hold megabytes for a reader that stopped); a
 * stream that would overflow its queue (a reader that stopped reading) is closed, never waited
 * for, and its browser's EventSource reconnects and reloads. A comment line every 15 s keeps idle streams open through proxies and finds
 * dead ones.
 *
 * Threads: the streams' connections are suspended in libmicrohttpd (MHD_ALLOW_SUSPEND_RESUME)
 * while they have nothing to send and resumed by the poll thread; one mutex guards the table.
 * The poll thread never blocks on a reader.
 */
#ifndef MGX_WEB_LIVE_H
#define MGX_WEB_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "web/web_auth.h"

struct MHD_Connection;
struct MHD_Response;
typedef struct web_live web_live;

/* Opens db_path for the poll thread and starts it. NULL with a message in err on failure. */
web_live *web_live_start(const char *db_path, size_t max_clients, size_t queue_bytes,
                         int64_t poll_ms, char *err, size_t errlen);

/* A stream response for who on connection c (the caller queues it with MHD_queue_response and
 * destroys its reference), or NULL when max_clients streams are open or memory is short. */
struct MHD_Response *web_live_open(web_live *l, struct MHD_Connection *c, const web_who *who);

/* Ends every stream (their connections are resumed and closed) and stops the poll thread;
 * call before MHD_stop_daemon. Waits at most wait_ms for the streams to close. */
void web_live_shutdown(web_live *l, int64_t wait_ms);

/* Frees l after web_live_shutdown and MHD_stop_daemon; NULL is a no-op. */
void web_live_free(web_live *l);

/* Streams open now; streams dropped for a full queue since the start (for tests, metrics). */
size_t web_live_count(web_live *l);
uint64_t web_live_dropped(web_live *l);

#endif
