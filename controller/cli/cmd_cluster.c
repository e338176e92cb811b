/*
 * `mgx cluster status CONFIG`: the replicated controller node of this config (docs/cluster.md):
 * its role, term, the leader it knows, its log and applied indexes, from the status file the
 * running node rewrites every 200 ms in its data_dir, and the configured nodes.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "bus/bus_config.h"
#include "common/wall_clock.h"
#include "daemon/controller_config.h"
#include "daemon/ctl_daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: mgx cluster status CONTROLLER.ini\n"
    "\n"
    "Shows the replicated controller node of this config ([cluster], docs/cluster.md): its\n"
    "role (leader, follower, candidate), term, the leader it knows, the last entry in its log,\n"
    "the last committed and applied ones and the last interval it cleared, then every\n"
    "configured node. Run it on each node's machine for that node's view.\n"
    "\n"
    "Exit status: 0 when the node is running (its status is fresh), 1 when it is not,\n"
    "2 on bad usage or a config without [cluster].\n";

int ctl_cmd_cluster(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(USAGE, stdout);
        return CTL_EXIT_OK;
    }
    if (argc != 3 || strcmp(argv[1], "status") != 0) {
        fputs(USAGE, stderr);
        return CTL_EXIT_USAGE;
    }
    ctl_daemon_config cfg;
    cfg_bus bus;
    ctl_controller_file x;
    ctl_controller_file_init(&x, &cfg, &bus);
    char err[1024] = "";
    int rc = ctl_controller_file_load(&x, argv[2], err, sizeof err);
    if (rc != CFG_OK) {
        fprintf(stderr, "mgx cluster: %s\n", err[0] ? err : "cannot load the config");
        rc = rc == CFG_E_NOMEM ? CTL_EXIT_FAILURE : CTL_EXIT_USAGE;
        goto out;
    }
    if (!cfg.cluster_on) {
        fprintf(stderr, "mgx cluster: %s has no [cluster] section: a single node\n", argv[2]);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    char path[CTL_CLUSTER_DIR_MAX + 16];
    snprintf(path, sizeof path, "%s/status", cfg.cluster.data_dir);
    char text[2048] = "";
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = 0;
    const char *u = strstr(text, "updated_ms ");
    long long updated = u ? strtoll(u + 11, NULL, 10) : 0;
    long long age = ctl_wall_ms() - updated;
    unsigned long long leader = 0;
    const char *l = strstr(text, "\nleader ");
    if (l)
        leader = strtoull(l + 8, NULL, 10);
    rc = CTL_EXIT_OK;
    if (!n) {
        printf("node %llu: no status in %s (never started here?)\n",
               (unsigned long long)cfg.cluster.node_id, path);
        rc = CTL_EXIT_FAILURE;
    } else {
        fputs(text, stdout);
        if (age > 2000) {
            printf("stale: not updated for %lld s (the node is not running)\n", age / 1000);
            rc = CTL_EXIT_FAILURE;
        }
    }
    printf("nodes:\n");
    for (size_t i = 0; i < cfg.cluster.n_nodes; i++)
        printf("  %llu %s%s%s\n", (unsigned long long)cfg.cluster.nodes[i].id,
               cfg.cluster.nodes[i].address,
               cfg.cluster.nodes[i].id == cfg.cluster.node_id ? " (this node)" : "",
               rc == CTL_EXIT_OK && cfg.cluster.nodes[i].id == leader ? " leader" : "");
out:
    cfg_bus_clear(&bus);
    ctl_topology_clear(&cfg.topology);
    return rc;
}
