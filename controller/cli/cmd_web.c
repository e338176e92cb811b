/*
 * `mgx web CONFIG`: the dashboard's server (controller/web, docs/dashboard.md) until SIGINT or
 * SIGTERM.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"
#include "cli/usage_error.h"
#include "common/stop_signal.h"
#include "db/db.h"
#include "web/web_config.h"
#include "web/web_server.h"

#include <getopt.h>
#include <sys/resource.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: mgx web CONFIG\n"
    "\n"
    "Serves the community's web dashboard, read only, from the [web] section of CONFIG: homes\n"
    "log in with their bus credential (the broker's mosquitto password file), the coordinator\n"
    "with a line of admin_file (same format, made with mosquitto_passwd). Prints the address it\n"
    "listens on (\"mgx web: serving http://ADDR:PORT/\") on stdout when ready; stops on SIGINT or\n"
    "SIGTERM. See docs/dashboard.md.\n"
    "\n"
    "Exit status: 0 stopped by a signal, 1 a config, database or listen error, 2 usage.\n";

int ctl_cmd_web(int argc, char **argv)
{
    static const struct option LONG[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", LONG, NULL)) != -1) {
        if (ch == 'h') {
            fputs(USAGE, stdout);
            return CTL_EXIT_OK;
        }
        return ctl_cli_bad_option("mgx web", ch, argv, USAGE);
    }
    if (optind >= argc) {
        fprintf(stderr, "mgx web: CONFIG is required\n%s", USAGE);
        return CTL_EXIT_USAGE;
    }
    if (optind + 1 < argc)
        return ctl_cli_extra_operand("mgx web", argv[optind + 1]);
    web_config c;
    char err[512];
    if (web_config_load(argv[optind], &c, err, sizeof err) != 0) {
        fprintf(stderr, "mgx web: %s\n", err);
        return CTL_EXIT_FAILURE;
    }
    /* read only: a database that is not there is a wrong path, not one to create */
    if (access(c.database, R_OK) != 0) {
        fprintf(stderr, "mgx web: %s: no such database (the controller's [controller] db)\n",
                c.database);
        return CTL_EXIT_FAILURE;
    }
    ctl_db *db = NULL;
    if (ctl_db_open(c.database, &db, err, sizeof err) != CTL_DB_OK) {
        fprintf(stderr, "mgx web: %s\n", err);
        return CTL_EXIT_FAILURE;
    }
    /* every open dashboard holds a connection for its live stream: raise the descriptor limit
     * as far as allowed toward max_connections (plus files and the database) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)c.max_connections + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)c.max_connections + 64 ? rl.rlim_max
                                                                 : (rlim_t)c.max_connections + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    volatile sig_atomic_t *stop = ctl_stop_on_signals();
    web_server *s = web_server_start(&c, db, err, sizeof err);
    if (!s) {
        fprintf(stderr, "mgx web: %s\n", err);
        ctl_db_close(db);
        return CTL_EXIT_FAILURE;
    }
    printf("mgx web: serving %s://%s:%d/\n", c.tls_cert[0] ? "https" : "http", c.listen,
           web_server_port(s));
    fflush(stdout);
    while (!*stop) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    web_server_stop(s);
    ctl_db_close(db);
    fprintf(stderr, "mgx web: stopped\n");
    return CTL_EXIT_OK;
}
