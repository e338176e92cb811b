/*
 * The operator's admin socket of a cluster node and its client (see cluster_admin.h).
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs the POSIX thread types; poll, clock_gettime */

#include "cluster/cluster_admin.h"

#include "common/errbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define REQUEST_TIMEOUT_MS 10000

typedef struct conn conn;
struct conn {
    ctl_cluster_admin *a;
    uv_pipe_t pipe;
    uv_timer_t timer; /* the request must arrive in time */
    uv_write_t wr;
    int used;    /* the slot serves a connection (until both handles closed) */
    int open;    /* handles initialised and not yet closing */
    int closing; /* handles still to close */
    int asked;   /* a request was read: no more are */
    int waiting; /* a change's answer is awaited */
    size_t n;
    char line[CTL_CLUSTER_ADMIN_LINE];
    char out[CTL_CLUSTER_ADMIN_REPLY];
};

struct ctl_cluster_admin {
    ctl_cluster *c;
    uv_loop_t *loop;
    const ctl_log *log;
    uv_pipe_t server;
    int server_ok;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    conn conns[CTL_CLUSTER_ADMIN_CONNS];
};

static void conn_handle_closed(uv_handle_t *h)
{
    conn *k = h->data;
    if (--k->closing == 0)
        k->used = 0;
}

static void conn_close(conn *k)
{
    if (!k->open)
        return;
    k->open = 0;
    if (k->waiting)
        ctl_cluster_change_detach(k->a->c, k);
    k->waiting = 0;
    k->closing = 2;
    uv_close((uv_handle_t *)&k->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&k->pipe, conn_handle_closed);
}

static void written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

/* Sends the reply in k->out and ends the connection once it is written. */
static void conn_reply(conn *k)
{
    if (!k->open)
        return;
    uv_read_stop((uv_stream_t *)&k->pipe);
    uv_timer_stop(&k->timer);
    uv_buf_t b = uv_buf_init(k->out, (unsigned)strlen(k->out));
    k->wr.data = k;
    if (uv_write(&k->wr, (uv_stream_t *)&k->pipe, &b, 1, written) != 0)
        conn_close(k);
}

static void conn_replyf(conn *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_replyf(conn *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->out, sizeof k->out, fmt, ap);
    va_end(ap);
    conn_reply(k);
}

static void change_done(void *arg, int status, const char *msg)
{
    conn *k = arg;
    k->waiting = 0;
    conn_replyf(k, "%s %s\n", status == CTL_CLUSTER_OK ? "ok" : "error", msg);
}

/* A decimal id above 0, all of the token. */
static int parse_id(const char *s, uint64_t *id)
{
    if (!s || !*s || strlen(s) > 19)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *id = v;
    return v ? 0 : -1;
}

static void handle(conn *k)
{
    ctl_cluster_admin *a = k->a;
    char *save = NULL;
    char *verb = strtok_r(k->line, " ", &save);
    char *arg1 = strtok_r(NULL, " ", &save);
    char *arg2 = strtok_r(NULL, " ", &save);
    char *extra = strtok_r(NULL, " ", &save);
    char err[384] = "";
    uint64_t id = 0;
    if (verb && strcmp(verb, "members") == 0 && !arg1) {
        ctl_cluster_member m[CTL_CLUSTER_MAX_NODES];
        size_t n = 0;
        int changing = 0;
        ctl_cluster_members(a->c, m, CTL_CLUSTER_MAX_NODES, &n, &changing);
        size_t at = 0;
        for (size_t i = 0; i < n && at < sizeof k->out; i++)
            at += (size_t)snprintf(k->out + at, sizeof k->out - at, "member %llu %s %s\n",
                                   (unsigned long long)m[i].id, m[i].address,
                                   ctl_cluster_member_role_name(m[i].role));
        if (at < sizeof k->out)
            snprintf(k->out + at, sizeof k->out - at, "changing %s\nok\n",
                     changing ? "yes" : "no");
        conn_reply(k);
        return;
    }
    int rc;
    if (verb && strcmp(verb, "add") == 0 && arg2 && !extra) {
        if (parse_id(arg1, &id) != 0) {
            conn_replyf(k, "error bad node id \"%.32s\": a number above 0\n", arg1);
            return;
        }
        ctl_logf(a->log, CTL_LOG_INFO, "cluster: operator: add %llu %s", (unsigned long long)id,
                 arg2);
        k->waiting = 1;
        rc = ctl_cluster_add(a->c, id, arg2, change_done, k, err, sizeof err);
    } else if (verb && strcmp(verb, "remove") == 0 && arg1 && !arg2) {
        if (parse_id(arg1, &id) != 0) {
            conn_replyf(k, "error bad node id \"%.32s\": a number above 0\n", arg1);
            return;
        }
        ctl_logf(a->log, CTL_LOG_INFO, "cluster: operator: remove %llu", (unsigned long long)id);
        k->waiting = 1;
        rc = ctl_cluster_remove(a->c, id, change_done, k, err, sizeof err);
    } else {
        conn_replyf(k, "error unknown request: members, add ID HOST:PORT or remove ID\n");
        return;
    }
    if (rc != CTL_CLUSTER_OK) {
        k->waiting = 0;
        ctl_logf(a->log, CTL_LOG_WARN, "cluster: operator: refused: %s", err);
        conn_replyf(k, "error %s\n", err[0] ? err : ctl_cluster_strerror(rc));
    }
    /* else the answer comes through change_done (maybe already) */
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    conn *k = h->data;
    /* room for what is left of the line; one byte stays for the NUL */
    *buf = uv_buf_init(k->line + k->n, (unsigned)(sizeof k->line - 1 - k->n));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    conn *k = s->data;
    if (nread < 0) {
        conn_close(k); /* the client left: a change under way goes on unanswered */
        return;
    }
    if (k->asked || nread == 0)
        return;
    k->n += (size_t)nread;
    char *nl = memchr(k->line, '\n', k->n);
    if (!nl) {
        if (k->n >= sizeof k->line - 1)
            conn_replyf(k, "error request longer than %d bytes\n", CTL_CLUSTER_ADMIN_LINE - 1);
        return;
    }
    *nl = 0;
    k->asked = 1;
    handle(k);
}

static void request_timeout(uv_timer_t *t)
{
    conn *k = t->data;
    if (!k->asked)
        conn_close(k);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_connect(uv_stream_t *server, int status)
{
    ctl_cluster_admin *a = server->data;
    if (status < 0)
        return;
    conn *k = NULL;
    for (int i = 0; i < CTL_CLUSTER_ADMIN_CONNS && !k; i++)
        if (!a->conns[i].used)
            k = &a->conns[i];
    if (!k) {
        /* busy: turned away at once (libuv stops listening until a connection is accepted) */
        uv_pipe_t *x = malloc(sizeof *x);
        if (x && uv_pipe_init(a->loop, x, 0) == 0) {
            uv_accept(server, (uv_stream_t *)x);
            uv_close((uv_handle_t *)x, free_handle);
        } else
            free(x);
        return;
    }
    memset(k, 0, sizeof *k);
    k->a = a;
    k->used = 1;
    if (uv_pipe_init(a->loop, &k->pipe, 0) != 0) {
        k->used = 0;
        return;
    }
    k->pipe.data = k;
    uv_timer_init(a->loop, &k->timer);
    k->timer.data = k;
    k->open = 1;
    if (uv_accept(server, (uv_stream_t *)&k->pipe) != 0 ||
        uv_read_start((uv_stream_t *)&k->pipe, alloc_cb, read_cb) != 0) {
        conn_close(k);
        return;
    }
    uv_timer_start(&k->timer, request_timeout, REQUEST_TIMEOUT_MS, 0);
}

int ctl_cluster_admin_open(ctl_cluster *c, void *loop, const char *data_dir, const ctl_log *log,
                           ctl_cluster_admin **out, char *err, size_t errlen)
{
    *out = NULL;
    ctl_cluster_admin *a = calloc(1, sizeof *a);
    if (!a)
        return ctl_fail(CTL_CLUSTER_E_NOMEM, err, errlen, "out of memory");
    a->c = c;
    a->loop = loop;
    a->log = log;
    if (snprintf(a->path, sizeof a->path, "%s/%s", data_dir, CTL_CLUSTER_ADMIN_FILE) >=
        (int)sizeof a->path) {
        free(a);
        return ctl_fail(CTL_CLUSTER_E_INVAL, err, errlen,
                        "%s/%s: longer than a unix socket path may be (%zu bytes)", data_dir,
                        CTL_CLUSTER_ADMIN_FILE, sizeof a->path - 1);
    }
    /* only the node's user may talk to it: the data_dir is 0700 (cluster.c), the socket 0600 */
    chmod(data_dir, 0700);
    unlink(a->path); /* a socket left by a killed process */
    int r = uv_pipe_init(a->loop, &a->server, 0);
    if (r != 0) {
        free(a);
        return ctl_fail(CTL_CLUSTER_E_RAFT, err, errlen, "%s", uv_strerror(r));
    }
    a->server_ok = 1;
    a->server.data = a;
    if ((r = uv_pipe_bind(&a->server, a->path)) != 0 || (r = chmod(a->path, 0600) ? -errno : 0) ||
        (r = uv_listen((uv_stream_t *)&a->server, 8, on_connect)) != 0) {
        ctl_errf(err, errlen, "%s: %s", a->path, uv_strerror(r));
        ctl_cluster_admin_close(a);
        *out = a; /* freed by the caller after the loop ran the close */
        return CTL_CLUSTER_E_RAFT;
    }
    *out = a;
    return CTL_CLUSTER_OK;
}

void ctl_cluster_admin_close(ctl_cluster_admin *a)
{
    if (!a)
        return;
    for (int i = 0; i < CTL_CLUSTER_ADMIN_CONNS; i++)
        if (a->conns[i].used)
            conn_close(&a->conns[i]);
    if (a->server_ok) {
        a->server_ok = 0;
        uv_close((uv_handle_t *)&a->server, NULL);
        unlink(a->path);
    }
}

void ctl_cluster_admin_free(ctl_cluster_admin *a)
{
    free(a);
}

/* ---- client ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ctl_cluster_admin_ask(const char *data_dir, const char *request, int timeout_ms, char *reply,
                          size_t cap, char *err, size_t errlen)
{
    if (!cap)
        return -1;
    reply[0] = 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", data_dir, CTL_CLUSTER_ADMIN_FILE) >=
        (int)sizeof sa.sun_path)
        return ctl_fail(-1, err, errlen, "%s/%s: too long a socket path", data_dir,
                        CTL_CLUSTER_ADMIN_FILE);
    size_t rlen = strlen(request);
    if (rlen >= CTL_CLUSTER_ADMIN_LINE - 1 || memchr(request, '\n', rlen))
        return ctl_fail(-1, err, errlen, "request too long");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return ctl_fail(-1, err, errlen, "socket: %s", strerror(errno));
    int rc = -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        ctl_errf(err, errlen, "%s: %s (is the node running?)", sa.sun_path, strerror(errno));
        goto out;
    }
    char line[CTL_CLUSTER_ADMIN_LINE];
    snprintf(line, sizeof line, "%s\n", request);
    if (send(fd, line, rlen + 1, MSG_NOSIGNAL) != (ssize_t)(rlen + 1)) {
        ctl_errf(err, errlen, "%s: %s", sa.sun_path, strerror(errno));
        goto out;
    }
    size_t n = 0;
    int64_t end = mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = end - mono_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)(left > 1000 ? 1000 : left)) < 0) {
            if (left > 0 && errno == EINTR)
                continue;
            ctl_errf(err, errlen, "no answer within %d ms (a change goes on; see `mgx cluster "
                                  "status`)",
                     timeout_ms);
            goto out;
        }
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t got = read(fd, reply + n, cap - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
        if (n == cap - 1)
            break;
    }
    reply[n] = 0;
    /* the verdict is the last line's first word */
    size_t end_at = n;
    while (end_at && reply[end_at - 1] == '\n')
        end_at--;
    size_t start = end_at;
    while (start && reply[start - 1] != '\n')
        start--;
    if (strncmp(reply + start, "ok", 2) == 0)
        rc = 0;
    else if (strncmp(reply + start, "error", 5) == 0)
        rc = 1;
    else
        ctl_errf(err, errlen, "the node's answer was cut short");
out:
    close(fd);
    return rc;
}
