/*
 * Test support: starts and stops a private mosquitto broker on loopback (see broker.h).
 * Readiness is detected by connecting to the port, so tests never race the broker's start.
 */
#define _GNU_SOURCE
#include "broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct tst_broker {
    char *dir;
    char conf[4096];
    int port;
    pid_t pid;
};

void tst_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

char *tst_dir;

int tst_dir_setup(void **state)
{
    (void)state;
    tst_dir = tst_tmpdir("mgx-test");
    return tst_dir ? 0 : -1;
}

int tst_dir_teardown(void **state)
{
    (void)state;
    tst_rmtree(tst_dir);
    free(tst_dir);
    tst_dir = NULL;
    return 0;
}

int tst_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

char *tst_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/mgx-%s-XXXXXX", base && *base ? base : "/tmp", tag) < 0)
        return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

void tst_rmtree(const char *dir)
{
    if (!dir || !*dir || strcmp(dir, "/") == 0)
        return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static bool spawn(tst_broker *b)
{
    char log[4200];
    snprintf(log, sizeof log, "%s/mosquitto.log", b->dir);
    fflush(NULL); /* or the child's freopen flushes our buffered output a second time */
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        FILE *out = freopen(log, "a", stdout);
        FILE *err = freopen(log, "a", stderr);
        (void)out;
        (void)err;
        execlp("mosquitto", "mosquitto", "-c", b->conf, (char *)NULL);
        execl("/usr/sbin/mosquitto", "mosquitto", "-c", b->conf, (char *)NULL);
        _exit(127);
    }
    b->pid = pid;
    for (int i = 0; i < 1000; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "tst_broker: mosquitto exited at start; see %s\n", log);
            b->pid = 0;
            return false;
        }
        if (port_accepts(b->port))
            return true;
        tst_sleep_ms(10);
    }
    fprintf(stderr, "tst_broker: mosquitto did not listen on %d within 10 s\n", b->port);
    tst_broker_kill(b);
    return false;
}

tst_broker *tst_broker_start(const char *extra_conf)
{
    tst_broker *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->dir = tst_tmpdir("broker");
    b->port = tst_free_port();
    if (!b->dir || b->port <= 0)
        goto fail;
    snprintf(b->conf, sizeof b->conf, "%s/mosquitto.conf", b->dir);
    FILE *f = fopen(b->conf, "w");
    if (!f)
        goto fail;
    bool anonymous = !(extra_conf && strstr(extra_conf, "allow_anonymous false"));
    fprintf(f, "per_listener_settings false\nlistener %d 127.0.0.1\npersistence false\n",
            b->port);
    if (anonymous)
        fputs("allow_anonymous true\n", f);
    if (extra_conf)
        fputs(extra_conf, f);
    fclose(f);
    if (!spawn(b))
        goto fail;
    return b;
fail:
    tst_broker_free(b);
    return NULL;
}

int tst_broker_port(const tst_broker *b) { return b->port; }
const char *tst_broker_dir(const tst_broker *b) { return b->dir; }

void tst_broker_kill(tst_broker *b)
{
    if (!b || b->pid <= 0)
        return;
    kill(b->pid, SIGKILL);
    waitpid(b->pid, NULL, 0);
    b->pid = 0;
}

bool tst_broker_stop(tst_broker *b)
{
    if (!b || b->pid <= 0)
        return false;
    kill(b->pid, SIGTERM);
    int status = 0;
    pid_t got = 0;
    for (int i = 0; i < 1000 && (got = waitpid(b->pid, &status, WNOHANG)) == 0; i++)
        tst_sleep_ms(10);
    if (got != b->pid) {
        fprintf(stderr, "tst_broker: mosquitto ignored SIGTERM for 10 s; killing it\n");
        tst_broker_kill(b);
        return false;
    }
    b->pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "tst_broker: mosquitto stopped with status %d on SIGTERM\n", status);
        return false;
    }
    return true;
}

/* Starts the stopped broker again on its port. The port was ours a moment ago; retry briefly
 * in case the kernel still holds it. */
static bool respawn(tst_broker *b)
{
    for (int i = 0; i < 50; i++) {
        if (spawn(b))
            return true;
        tst_sleep_ms(100);
    }
    return false;
}

bool tst_broker_restart(tst_broker *b)
{
    tst_broker_kill(b);
    return respawn(b);
}

bool tst_broker_restart_clean(tst_broker *b)
{
    bool clean = tst_broker_stop(b);
    return respawn(b) && clean;
}

void tst_broker_free(tst_broker *b)
{
    if (!b)
        return;
    tst_broker_kill(b);
    tst_rmtree(b->dir);
    free(b->dir);
    free(b);
}
