/*
 * `mgx cluster status|add|remove`: the replicated controller node of this config
 * (docs/cluster.md). status shows its role, term, the leader it knows, its log and applied
 * indexes, from the status file the running node rewrites every 200 ms in its data_dir, and the
 * configuration (members and their roles) the node answers on its admin socket. add and remove
 * change the configuration through that socket (cluster/cluster_admin.h): only the leader
 * makes a change; any other node answers with the leader's id and address.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "bus/bus_config.h"
#include "cluster/cluster_admin.h"
#include "common/wall_clock.h"
#include "daemon/controller_config.h"
#include "daemon/ctl_daemon.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: mgx cluster status CONTROLLER.ini\n"
    "       mgx cluster add --id N --address HOST:PORT [--timeout-s S] CONTROLLER.ini\n"
    "       mgx cluster remove --id N CONTROLLER.ini\n"
    "\n"
    "status shows the replicated controller node of this config ([cluster], docs/cluster.md):\n"
    "its role (leader, follower, candidate), term, the leader it knows, the last entry in its\n"
    "log, the last committed and applied ones and the last interval it cleared, then the\n"
    "cluster's configuration as the node knows it: every member, its role (voter, standby,\n"
    "spare) and which one leads. Run it on each node's machine for that node's view.\n"
    "\n"
    "add and remove change the configuration. They talk to the node of this config through\n"
    "the admin socket in its data_dir (only its user can), and only the leader changes it: on\n"
    "another node they fail and name the leader and its address. add makes node N (started\n"
    "with `join = yes` and an empty data_dir) a member: it catches up from the log or a\n"
    "snapshot and then becomes a voter; the command waits for that (at most S seconds, 600 by\n"
    "default; the change goes on after). remove takes node N out once a majority has the new\n"
    "configuration; the last voter cannot be removed, and the leader hands over first when\n"
    "asked to remove itself (run it again on the new leader).\n"
    "\n"
    "Exit status: 0 done (status: the node is running), 1 refused or failed (status: the node\n"
    "is not running), 2 on bad usage or a config without [cluster].\n";

/* status: the node's status file, then the configuration it answers with. */
static int cluster_status(const ctl_daemon_config *cfg)
{
    char path[CTL_CLUSTER_DIR_MAX + 16];
    snprintf(path, sizeof path, "%s/status", cfg->cluster.data_dir);
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
    int rc = CTL_EXIT_OK;
    if (!n) {
        printf("node %llu: no status in %s (never started here?)\n",
               (unsigned long long)cfg->cluster.node_id, path);
        rc = CTL_EXIT_FAILURE;
    } else {
        fputs(text, stdout);
        if (age > 2000) {
            printf("stale: not updated for %lld s (the node is not running)\n", age / 1000);
            rc = CTL_EXIT_FAILURE;
        }
    }
    char reply[CTL_CLUSTER_ADMIN_REPLY], err[512] = "";
    if (rc == CTL_EXIT_OK && ctl_cluster_admin_ask(cfg->cluster.data_dir, "members", 5000, reply,
                                                   sizeof reply, err, sizeof err) == 0) {
        /* the configuration in the node's log: the one in force, not the file's first one */
        const char *ch = strstr(reply, "changing yes");
        printf("configuration%s:\n", ch ? " (a change not yet committed)" : "");
        if (!strstr(reply, "member "))
            printf("  none yet: this node waits to be added (`mgx cluster add` on the leader)\n");
        for (const char *p = reply; (p = strstr(p, "member ")) != NULL; p++) {
            unsigned long long id = 0;
            char addr[CTL_CLUSTER_ADDR_MAX] = "", role[16] = "";
            if (sscanf(p, "member %llu %63s %15s", &id, addr, role) != 3)
                continue;
            printf("  %llu %s %s%s%s\n", id, addr, role,
                   id == cfg->cluster.node_id ? " (this node)" : "", id == leader ? " leader" : "");
        }
        return rc;
    }
    if (rc == CTL_EXIT_OK)
        printf("(no configuration from the node: %s)\n", err);
    printf("nodes in the config file (the cluster's first configuration):\n");
    for (size_t i = 0; i < cfg->cluster.n_nodes; i++)
        printf("  %llu %s%s%s\n", (unsigned long long)cfg->cluster.nodes[i].id,
               cfg->cluster.nodes[i].address,
               cfg->cluster.nodes[i].id == cfg->cluster.node_id ? " (this node)" : "",
               rc == CTL_EXIT_OK && cfg->cluster.nodes[i].id == leader ? " leader" : "");
    return rc;
}

/* add / remove: one request to the node, its answer printed. */
static int cluster_change(const ctl_daemon_config *cfg, const char *request, int timeout_s)
{
    char reply[CTL_CLUSTER_ADMIN_REPLY], err[512] = "";
    int r = ctl_cluster_admin_ask(cfg->cluster.data_dir, request, timeout_s * 1000, reply,
                                  sizeof reply, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "mgx cluster: node %llu: %s\n", (unsigned long long)cfg->cluster.node_id,
                err);
        return CTL_EXIT_FAILURE;
    }
    size_t len = strlen(reply);
    while (len && reply[len - 1] == '\n')
        reply[--len] = 0;
    if (r == 0) {
        printf("%s\n", reply[2] == ' ' ? reply + 3 : reply);
        return CTL_EXIT_OK;
    }
    fprintf(stderr, "mgx cluster: %s\n", reply[5] == ' ' ? reply + 6 : reply);
    return CTL_EXIT_FAILURE;
}

static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    long long v = strtoll(s, &end, 10);
    if (*end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int ctl_cmd_cluster(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(USAGE, stdout);
        return CTL_EXIT_OK;
    }
    const char *sub = argc >= 2 ? argv[1] : "";
    int is_status = strcmp(sub, "status") == 0, is_add = strcmp(sub, "add") == 0,
        is_remove = strcmp(sub, "remove") == 0;
    if (!is_status && !is_add && !is_remove) {
        fputs(USAGE, stderr);
        return CTL_EXIT_USAGE;
    }
    const char *conf = NULL, *address = NULL;
    long long id = 0, timeout_s = 600;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!is_status && strcmp(a, "--id") == 0 && has) {
            if (parse_num(argv[++i], 1, INT64_MAX, &id) != 0) {
                fprintf(stderr, "mgx cluster: --id: a node id above 0, not \"%s\"\n", argv[i]);
                return CTL_EXIT_USAGE;
            }
        } else if (is_add && strcmp(a, "--address") == 0 && has) {
            address = argv[++i];
        } else if (is_add && strcmp(a, "--timeout-s") == 0 && has) {
            if (parse_num(argv[++i], 1, 86400, &timeout_s) != 0) {
                fprintf(stderr, "mgx cluster: --timeout-s: 1 to 86400, not \"%s\"\n", argv[i]);
                return CTL_EXIT_USAGE;
            }
        } else if (a[0] != '-' && !conf) {
            conf = a;
        } else {
            fprintf(stderr, "mgx cluster %s: unexpected \"%s\"\n\n", sub, a);
            fputs(USAGE, stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (!conf || (!is_status && !id) || (is_add && !address)) {
        fprintf(stderr, "mgx cluster %s: needs %s\n\n", sub,
                !conf   ? "the controller's config"
                : !id   ? "--id N"
                        : "--address HOST:PORT");
        fputs(USAGE, stderr);
        return CTL_EXIT_USAGE;
    }
    if (is_add && (strlen(address) >= CTL_CLUSTER_ADDR_MAX || strchr(address, ' ') ||
                   strchr(address, '\n') || !strchr(address, ':'))) {
        fprintf(stderr, "mgx cluster add: --address: HOST:PORT, not \"%s\"\n", address);
        return CTL_EXIT_USAGE;
    }
    ctl_daemon_config cfg;
    cfg_bus bus;
    ctl_controller_file x;
    ctl_controller_file_init(&x, &cfg, &bus);
    char err[1024] = "";
    int rc = ctl_controller_file_load(&x, conf, err, sizeof err);
    if (rc != CFG_OK) {
        fprintf(stderr, "mgx cluster: %s\n", err[0] ? err : "cannot load the config");
        rc = rc == CFG_E_NOMEM ? CTL_EXIT_FAILURE : CTL_EXIT_USAGE;
        goto out;
    }
    if (!cfg.cluster_on) {
        fprintf(stderr, "mgx cluster: %s has no [cluster] section: a single node\n", conf);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    if (is_status) {
        rc = cluster_status(&cfg);
        goto out;
    }
    char req[CTL_CLUSTER_ADMIN_LINE];
    if (is_add)
        snprintf(req, sizeof req, "add %lld %s", id, address);
    else
        snprintf(req, sizeof req, "remove %lld", id);
    rc = cluster_change(&cfg, req, is_add ? (int)timeout_s : 60);
out:
    cfg_bus_clear(&bus);
    ctl_topology_clear(&cfg.topology);
    return rc;
}
