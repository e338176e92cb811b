/*
 * The metrics page over HTTP/1.0-style exchanges (metrics_server.h): one thread accepts one
 * connection at a time, reads the request head (at most REQ_MAX bytes within IO_MS), answers
 * GET /metrics with the latest page and anything else with 404 or 405, and closes. Polling with
 * a short timeout lets free() stop it without signals.
 */
#define _GNU_SOURCE
#include "common/metrics_server.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errbuf.h"
#include "common/wall_clock.h"

#define REQ_MAX  4096
#define IO_MS    2000
#define PAGE_MAX (4u << 20) /* a page beyond 4 MiB is refused by publish */

struct ctl_metrics_server {
    int fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    char *page; /* latest page, owned */
    size_t len;
};

/* Sends all of buf before the deadline; -1 when the client does not take it. */
static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
    while (len > 0) {
        int64_t left = deadline - ctl_wall_ms();
        struct pollfd p = {fd, POLLOUT, 0};
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            return -1;
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads the request head (up to the blank line) before the deadline; its length or -1. */
static ssize_t read_head(int fd, char *buf, size_t cap, int64_t deadline)
{
    size_t len = 0;
    while (len + 1 < cap) {
        int64_t left = deadline - ctl_wall_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            return -1;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return (ssize_t)len;
    }
    return -1; /* too long: not a scrape */
}

static void answer(ctl_metrics_server *s, int fd)
{
    int64_t deadline = ctl_wall_ms() + IO_MS;
    char req[REQ_MAX];
    if (read_head(fd, req, sizeof req, deadline) < 0)
        return;
    char head[256];
    if (strncmp(req, "GET ", 4) != 0 && strncmp(req, "HEAD ", 5) != 0) {
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n");
        send_all(fd, head, (size_t)n, deadline);
        return;
    }
    const char *path = strchr(req, ' ') + 1;
    if (strncmp(path, "/metrics ", 9) != 0 && strncmp(path, "/metrics?", 9) != 0) {
        static const char body[] = "mgx: the metrics are at /metrics\n";
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         sizeof body - 1, body);
        send_all(fd, head, (size_t)n, deadline);
        return;
    }
    pthread_mutex_lock(&s->lock);
    char *page = s->len ? malloc(s->len) : NULL;
    size_t len = page ? s->len : 0;
    if (page)
        memcpy(page, s->page, len);
    pthread_mutex_unlock(&s->lock);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     len);
    if (send_all(fd, head, (size_t)n, deadline) == 0 && strncmp(req, "GET ", 4) == 0)
        send_all(fd, page ? page : "", len, deadline);
    free(page);
}

static void *serve(void *arg)
{
    ctl_metrics_server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 200) != 1)
            continue;
        int c = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
            continue;
        answer(s, c);
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

/* Splits "HOST:PORT" (HOST may be [v6]); 0 or -1. */
static int split(const char *addr, char *host, size_t cap, char *port, size_t pcap)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1] || strlen(colon + 1) >= pcap)
        return -1;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= cap)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%s", colon + 1);
    return 0;
}

ctl_metrics_server *ctl_metrics_server_new(const char *addr, char *err, size_t errlen)
{
    char host[256], port[16];
    if (!addr || split(addr, host, sizeof host, port, sizeof port) != 0) {
        ctl_errf(err, errlen, "'%s': expected HOST:PORT", addr ? addr : "");
        return NULL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        ctl_errf(err, errlen, "%s: %s", addr, gai_strerror(g));
        return NULL;
    }
    ctl_metrics_server *s = calloc(1, sizeof *s);
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (!s || fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 8) != 0) {
        ctl_errf(err, errlen, "%s: %s", addr, strerror(errno));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char pbuf[16];
    getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, pbuf, sizeof pbuf, NI_NUMERICSERV);
    s->fd = fd;
    s->port = atoi(pbuf);
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_create(&s->thread, NULL, serve, s) != 0) {
        ctl_errf(err, errlen, "%s: cannot start the server thread", addr);
        pthread_mutex_destroy(&s->lock);
        goto fail;
    }
    freeaddrinfo(res);
    return s;
fail:
    if (fd >= 0)
        close(fd);
    free(s);
    freeaddrinfo(res);
    return NULL;
}

int ctl_metrics_server_port(const ctl_metrics_server *s)
{
    return s ? s->port : 0;
}

void ctl_metrics_server_publish(ctl_metrics_server *s, const char *page, size_t len)
{
    if (!s || len > PAGE_MAX)
        return;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return; /* the previous page stays: a scrape sees slightly older figures */
    memcpy(copy, page, len);
    pthread_mutex_lock(&s->lock);
    free(s->page);
    s->page = copy;
    s->len = len;
    pthread_mutex_unlock(&s->lock);
}

void ctl_metrics_server_free(ctl_metrics_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->lock);
    free(s->page);
    free(s);
}

int ctl_metrics_write_textfile(const char *path, const char *page, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fwrite(page, 1, len, f) == len;
    ok = fflush(f) == 0 && ok;
    ok = fchmod(fileno(f), 0644) == 0 && ok;
    int saved = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        saved = ok ? errno : saved;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return 0;
}
