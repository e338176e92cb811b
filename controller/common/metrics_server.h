/*
 * Internal: serves a daemon's metrics page over HTTP (GET /metrics) on a local address, and/or
 * writes it to a file for the node exporter's textfile collector. The daemon hands over a new
 * page (common/metrics.h) whenever it likes; a thread of the server answers scrapes with the
 * latest one, one connection at a time, each bounded in size and time, so a slow or hostile
 * client never reaches the daemon's loop.
 *
 * Ownership: the caller owns the server (ctl_metrics_server_free). publish may be called from
 * the daemon's thread while the server thread serves.
 */
#ifndef MGX_CTL_METRICS_SERVER_H
#define MGX_CTL_METRICS_SERVER_H

#include <stddef.h>

typedef struct ctl_metrics_server ctl_metrics_server;

/* Listens on listen ("HOST:PORT"; PORT 0 picks a free one) and starts serving an empty page.
 * NULL with the reason ("127.0.0.1:9464: Address already in use") in err. */
ctl_metrics_server *ctl_metrics_server_new(const char *listen, char *err, size_t errlen);
/* The port it listens on (useful with PORT 0). */
int ctl_metrics_server_port(const ctl_metrics_server *s);
/* Replaces the page served (copied). */
void ctl_metrics_server_publish(ctl_metrics_server *s, const char *page, size_t len);
/* Stops the thread, closes the socket, frees. NULL is fine. */
void ctl_metrics_server_free(ctl_metrics_server *s);

/* Writes page to path atomically (a temporary file in the same folder, then rename), mode
 * 0644, as the textfile collector wants. 0, or -1 with errno. */
int ctl_metrics_write_textfile(const char *path, const char *page, size_t len);

#endif
