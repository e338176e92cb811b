/*
 * The shipped community broker for tests (see secure_broker.h).
 */
#define _GNU_SOURCE
#include "secure_broker.h"

#include "broker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MGX_SOURCE_DIR
#error "MGX_SOURCE_DIR must be defined"
#endif

#define SHIPPED MGX_SOURCE_DIR "/config/mosquitto"

#define SB_MAX_LOGINS 32

struct sb_broker {
    char *dir;
    int port_pw, port_cert;
    pid_t pid;
    char conf[4096], log[4096], cafile[4096];
    /* storage for the strings handed out in tc_opts: h-a, h-b, rogue h-a */
    char crt[4][4096], key[4][4096]; /* h-a, h-b, rogue h-a, h-a.meter */
    /* storage for the passwords handed out in tc_opts, one per login */
    char logins[SB_MAX_LOGINS][64], passwords[SB_MAX_LOGINS][72];
};

/* h-d .. h-g: the extra homes of tests/settle/test_trust.c (one per fabricated-reading case) */
static const char *const USERS[] = {"controller", "h-a", "h-b", "h-c", "h-d", "h-e", "h-f", "h-g"};
/* Meter daemon logins <id>.meter (mgx-certs.sh meter): every home's, and "bnd", the boundary
 * meter of tests/settle/test_boundary_peer.c. */
static const char *const METER_LOGINS[] = {"h-a", "h-b", "h-c", "h-d", "h-e", "h-f", "h-g", "bnd"};

/* Runs argv quietly; 0 when it exited 0. */
static int run(char *const argv[])
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *o = freopen("/dev/null", "w", stdout);
        (void)o;
        execvp(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "secure_broker: '%s %s %s' failed\n", argv[0], argv[1],
                argv[2] ? argv[2] : "");
        return -1;
    }
    return 0;
}

static int certs(sb_broker *b)
{
    char rogue[4200], pw[64];
    snprintf(rogue, sizeof rogue, "%s/rogue", b->dir);
    char *init[] = {"sh", SHIPPED "/mgx-certs.sh", "init", b->dir, "localhost", "127.0.0.1", NULL};
    char *rinit[] = {"sh", SHIPPED "/mgx-certs.sh", "init", rogue, "localhost", NULL};
    char *rclient[] = {"sh", SHIPPED "/mgx-certs.sh", "client", rogue, "h-a", NULL};
    if (run(init) || run(rinit) || run(rclient))
        return -1;
    char id[32];
    for (size_t i = 0; i < sizeof USERS / sizeof USERS[0]; i++) {
        snprintf(id, sizeof id, "%s", USERS[i]);
        snprintf(pw, sizeof pw, "pw-%s", id);
        char *p[] = {"sh", SHIPPED "/mgx-certs.sh", "password", b->dir, id, pw, NULL};
        if (run(p))
            return -1;
        char *c[] = {"sh", SHIPPED "/mgx-certs.sh", "client", b->dir, id, NULL};
        if ((i == 1 || i == 2) && run(c)) /* certificates for h-a and h-b */
            return -1;
    }
    char acl[4200];
    snprintf(acl, sizeof acl, "%s/acl", b->dir);
    char *cp[] = {"cp", SHIPPED "/acl", acl, NULL};
    /* h-a's read-only Home Assistant login, made as a coordinator would */
    char *ha[] = {"sh", SHIPPED "/mgx-certs.sh", "ha", b->dir, "h-a", "--password", "pw-h-a.ha",
                  NULL};
    if (run(cp) || run(ha))
        return -1;
    for (size_t i = 0; i < sizeof METER_LOGINS / sizeof METER_LOGINS[0]; i++) {
        snprintf(pw, sizeof pw, "pw-%s.meter", METER_LOGINS[i]);
        snprintf(id, sizeof id, "%s", METER_LOGINS[i]);
        char *m[] = {"sh", SHIPPED "/mgx-certs.sh", "meter", b->dir, id, "--password", pw, NULL};
        if (run(m))
            return -1;
    }
    /* h-a's meter daemon with a client certificate (CN h-a.meter) */
    char *mc[] = {"sh", SHIPPED "/mgx-certs.sh", "client", b->dir, "h-a.meter", NULL};
    /* A test-only login that reads everything, as the tests' observer next to a running
     * controller: the broker lets one login have one connection, so a second "controller"
     * would knock the controller daemon off. */
    char *au[] = {"sh", SHIPPED "/mgx-certs.sh", "password", b->dir, "auditor", "pw-auditor", NULL};
    /* A test-only second connection with h-d's meter rights: tests/settle/test_trust.c floods
     * h-d's meter topic from a thread while h-d's meter goes on with QoS 1 readings, which
     * one shared connection would hold up behind the flood. */
    char *fl[] = {"sh", SHIPPED "/mgx-certs.sh", "password", b->dir, "h-d-flood", "pw-h-d-flood",
                  NULL};
    if (run(mc) || run(au) || run(fl))
        return -1;
    FILE *f = fopen(acl, "a");
    int ok = f && fputs("user auditor\ntopic read mgx/v1/#\n"
                        "user h-d-flood\ntopic write mgx/v1/+/meter/h-d/#\n",
                        f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

/* Writes line to out with every "/etc/mosquitto/mgx/" replaced by the broker's folder. */
static void put_substituted(FILE *out, const char *line, const char *dir)
{
    static const char from[] = "/etc/mosquitto/mgx/";
    const char *p = line, *hit;
    while ((hit = strstr(p, from))) {
        fwrite(p, 1, (size_t)(hit - p), out);
        fprintf(out, "%s/", dir);
        p = hit + sizeof from - 1;
    }
    fputs(p, out);
}

/* community.conf with paths and ports made local; everything else as shipped. */
static int write_conf(sb_broker *b)
{
    FILE *in = fopen(SHIPPED "/community.conf", "r");
    FILE *out = fopen(b->conf, "w");
    int listeners = 0, persistence = 0;
    char line[1024];
    while (in && out && fgets(line, sizeof line, in)) {
        if (strncmp(line, "listener 8883", 13) == 0) {
            fprintf(out, "listener %d 127.0.0.1\n", b->port_pw);
            listeners++;
        } else if (strncmp(line, "listener 8884", 13) == 0) {
            fprintf(out, "listener %d 127.0.0.1\n", b->port_cert);
            listeners++;
        } else if (strncmp(line, "persistence_location ", 21) == 0) {
            fprintf(out, "persistence_location %s/\n", b->dir);
            persistence++;
        } else {
            put_substituted(out, line, b->dir);
        }
    }
    /* as root, mosquitto would switch to the "mosquitto" user, who cannot read our 0700 folder */
    if (out && geteuid() == 0)
        fputs("user root\n", out);
    int ok = in && out && listeners == 2 && persistence == 1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "secure_broker: could not adapt %s/community.conf (listeners %d)\n",
                SHIPPED, listeners);
    return ok ? 0 : -1;
}

static int accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int spawn(sb_broker *b)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *o = freopen(b->log, "a", stdout), *e = freopen(b->log, "a", stderr);
        (void)o, (void)e;
        execlp("mosquitto", "mosquitto", "-c", b->conf, (char *)NULL);
        execl("/usr/sbin/mosquitto", "mosquitto", "-c", b->conf, (char *)NULL);
        _exit(127);
    }
    b->pid = pid;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "secure_broker: mosquitto exited at start; see %s\n", b->log);
            b->pid = 0;
            return -1;
        }
        if (accepts(b->port_pw) && accepts(b->port_cert))
            return 0;
        tst_sleep_ms(10);
    }
    fprintf(stderr, "secure_broker: mosquitto did not listen within 10 s; see %s\n", b->log);
    sb_kill(b);
    return -1;
}

sb_broker *sb_start(void)
{
    sb_broker *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->dir = tst_tmpdir("secbroker");
    b->port_pw = tst_free_port();
    b->port_cert = tst_free_port();
    if (!b->dir || b->port_pw <= 0 || b->port_cert <= 0 || b->port_pw == b->port_cert)
        goto fail;
    snprintf(b->conf, sizeof b->conf, "%s/community.conf", b->dir);
    snprintf(b->log, sizeof b->log, "%s/mosquitto.log", b->dir);
    snprintf(b->cafile, sizeof b->cafile, "%s/ca.crt", b->dir);
    if (certs(b) || write_conf(b) || spawn(b))
        goto fail;
    return b;
fail:
    sb_free(b);
    return NULL;
}

void sb_kill(sb_broker *b)
{
    if (!b || b->pid <= 0)
        return;
    kill(b->pid, SIGKILL);
    waitpid(b->pid, NULL, 0);
    b->pid = 0;
}

int sb_restart(sb_broker *b)
{
    sb_kill(b);
    for (int i = 0; i < 50; i++) {
        if (spawn(b) == 0)
            return 0;
        tst_sleep_ms(100);
    }
    return -1;
}

void sb_free(sb_broker *b)
{
    if (!b)
        return;
    sb_kill(b);
    if (getenv("MGX_KEEP_TMP"))
        fprintf(stderr, "secure_broker: kept %s\n", b->dir);
    else
        tst_rmtree(b->dir);
    free(b->dir);
    free(b);
}

int sb_port_password(const sb_broker *b)
{
    return b->port_pw;
}

int sb_port_cert(const sb_broker *b)
{
    return b->port_cert;
}

const char *sb_dir(const sb_broker *b)
{
    return b->dir;
}

const char *sb_cafile(const sb_broker *b)
{
    return b->cafile;
}

tc_opts sb_password_opts(sb_broker *b, const char *id, const char *client_id)
{
    size_t slot = 0;
    while (slot < SB_MAX_LOGINS - 1 && b->logins[slot][0] && strcmp(b->logins[slot], id) != 0)
        slot++;
    snprintf(b->logins[slot], sizeof b->logins[slot], "%s", id);
    snprintf(b->passwords[slot], sizeof b->passwords[slot], "pw-%s", id);
    return (tc_opts){.port = b->port_pw,
                     .client_id = client_id,
                     .username = id,
                     .password = b->passwords[slot],
                     .cafile = b->cafile};
}

tc_opts sb_cert_opts(sb_broker *b, const char *id, const char *client_id, bool rogue)
{
    size_t slot = rogue                            ? 2u
                  : strcmp(id, "h-b") == 0         ? 1u
                  : strcmp(id, "h-a.meter") == 0 ? 3u
                                                   : 0u;
    const char *sub = rogue ? "/rogue" : "";
    snprintf(b->crt[slot], sizeof b->crt[slot], "%s%s/clients/%s.crt", b->dir, sub, id);
    snprintf(b->key[slot], sizeof b->key[slot], "%s%s/clients/%s.key", b->dir, sub, id);
    return (tc_opts){.port = b->port_cert,
                     .client_id = client_id,
                     .cafile = b->cafile,
                     .certfile = b->crt[slot],
                     .keyfile = b->key[slot]};
}

sb_broker *sb_group_broker;

int sb_group_setup(void **state)
{
    (void)state;
    sb_group_broker = sb_start();
    return sb_group_broker ? 0 : -1;
}

int sb_group_teardown(void **state)
{
    (void)state;
    sb_free(sb_group_broker);
    sb_group_broker = NULL;
    return 0;
}
