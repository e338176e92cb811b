/*
 * Internal: the [cluster] section of the controller's config (docs/cluster.md). Without it the
 * controller is one node, as before; with it, the node's id, every node's address and this
 * node's Raft data directory:
 *
 *   [cluster]
 *   node_id = 2
 *   nodes = 1@10.0.0.1:7001, 2@10.0.0.2:7001, 3@10.0.0.3:7001
 *   data_dir = raft                  ; relative to the config file's folder
 *   election_timeout_ms = 1000       ; optional
 *   snapshot_threshold = 1024        ; optional: entries between snapshots
 *   snapshot_trailing = 128          ; optional: entries kept behind a snapshot
 *   join = no                        ; optional: yes for a node added to a running cluster
 *                                    ; (`mgx cluster add`): it bootstraps nothing
 *   catch_up_timeout_s = 300         ; optional: how long a leader waits for a node it adds
 *                                    ; to catch up before leaving it a standby
 */
#ifndef MGX_CTL_CLUSTER_CONFIG_H
#define MGX_CTL_CLUSTER_CONFIG_H

#include "cluster/cluster.h"
#include "common/config.h"

typedef struct {
    ctl_cluster_config cfg;
    int line;      /* line of the [cluster] header, 0 when the file has none */
    uint64_t seen; /* keys given */
    cfg_loader *loader;
} ctl_cluster_section;

/* Registers the [cluster] handler filling *s (zeroed and defaulted here) on l. */
int ctl_cluster_section_add(cfg_loader *l, ctl_cluster_section *s);

/* Parses "ID@HOST:PORT, ..." into nodes (for the key and for tests). CFG_OK or CFG_E_BAD with
 * the message in err. */
int ctl_cluster_parse_nodes(const char *value, ctl_cluster_node *nodes, size_t *n, char *err,
                            size_t errlen);

#endif
