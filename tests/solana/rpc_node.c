/*
 * Test support: the LiteSVM-backed JSON-RPC server (see rpc_node.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "rpc_node.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h" /* tst_free_port */

pid_t sol_node_start(const char *scenario, const char *spec, const char *log, char *url,
                     size_t cap)
{
    int port = tst_free_port();
    snprintf(url, cap, "http://127.0.0.1:%d", port);
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        if (log) {
            FILE *f = freopen(log, "a", stderr);
            (void)f;
        }
        execlp(MGX_NODE, MGX_NODE, MGX_SOURCE_DIR "/tests/solana/rpc_server.mjs", port_s,
               scenario, spec, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *out = fdopen(fds[0], "r");
    char line[256];
    int ready = 0;
    while (out && !ready && fgets(line, sizeof line, out))
        ready = strncmp(line, "READY", 5) == 0;
    if (out)
        fclose(out);
    if (!ready) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

bool sol_node_missing(void)
{
    if (access(MGX_SOURCE_DIR "/tests/solana/node_modules/litesvm/package.json", R_OK) == 0)
        return false;
    puts("SKIP: tests/solana/node_modules is missing; run `npm ci` in tests/solana");
    return true;
}
