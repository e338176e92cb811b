/*
 * Internal: the operator's channel to a running cluster node (docs/cluster.md, "Replacing a
 * node"). A unix-domain stream socket, admin.sock in the node's data_dir: the directory is
 * made 0700 and the socket 0600, so the file permissions are the authorization (the user the
 * node runs as, or root). `mgx cluster` on the node's machine connects to it.
 *
 * The protocol is one request line and a reply that ends with the connection:
 *   members\n          -> "member ID ADDRESS ROLE\n"..., "changing yes|no\n", "ok\n"
 *   add ID ADDRESS\n   -> (when the node is a voter, or the change failed) "ok TEXT\n" or
 *                         "error TEXT\n"
 *   remove ID\n        -> the same, once the new configuration is committed
 * Any refusal (not the leader: TEXT names it and its address; unknown id; the last voter; a
 * change under way; a bad request) is "error TEXT\n" at once. Requests are at most
 * CTL_CLUSTER_ADMIN_LINE bytes, a connection that sends none within 10 s is closed, and at most
 * CTL_CLUSTER_ADMIN_CONNS connections are served at once (one more is closed unanswered).
 *
 * Server side: runs on the cluster's own uv loop (cluster.c opens and closes it), so every
 * request is handled on the thread that drives the node.
 */
#ifndef MGX_CTL_CLUSTER_ADMIN_H
#define MGX_CTL_CLUSTER_ADMIN_H

#include "cluster/cluster.h"
#include "common/log.h"

#include <stddef.h>

#define CTL_CLUSTER_ADMIN_LINE  256
#define CTL_CLUSTER_ADMIN_CONNS 4
#define CTL_CLUSTER_ADMIN_REPLY 4096
#define CTL_CLUSTER_ADMIN_FILE  "admin.sock"

typedef struct ctl_cluster_admin ctl_cluster_admin;

/* Listens on data_dir/admin.sock (a stale file from a killed process is replaced). loop is
 * the cluster's (a uv_loop_t *, void here to keep uv.h out of the callers). */
int ctl_cluster_admin_open(ctl_cluster *c, void *loop, const char *data_dir, const ctl_log *log,
                           ctl_cluster_admin **out, char *err, size_t errlen);
/* Closes the listener and every connection (their handles close on the loop's next run) and
 * removes the socket file. NULL is a no-op. */
void ctl_cluster_admin_close(ctl_cluster_admin *a);
/* Frees it once the loop has run the close callbacks. NULL is a no-op. */
void ctl_cluster_admin_free(ctl_cluster_admin *a);

/* Client side (`mgx cluster`): sends request (one line, without its newline) to the node whose
 * data_dir this is and reads the whole reply into reply (NUL-terminated, cut at cap) within
 * timeout_ms. Returns 0 when the reply's last line starts with "ok", 1 when with "error", -1
 * when the node cannot be reached or did not answer in time (err says which). */
int ctl_cluster_admin_ask(const char *data_dir, const char *request, int timeout_ms, char *reply,
                          size_t cap, char *err, size_t errlen);

#endif
