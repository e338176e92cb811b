/*
 * Simulated meters over Modbus TCP (see mgx/meter_server.h): the socket shell around the pure
 * framing (mbap.c) and register images (meter_image.c). One thread per listener runs a poll()
 * loop; sockets are non-blocking and every connection has fixed-size buffers, so a slow or
 * silent client never stalls the others, and a client that sends requests without reading the
 * replies is simply not read from until its replies have gone out.
 */
#define _GNU_SOURCE
#include "mgx/meter_server.h"

#include "mbap.h"
#include "meter_image.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_CLIENTS 1024u
#define IN_CAP              (2 * MTR__MBAP_MAX)
#define OUT_CAP             (4 * MTR__MBAP_MAX) /* replies queued for one client before reading pauses */
#define POWER_MAX_W         INT64_C(1000000000000)

typedef struct {
    mtr__profile profile;
    mtr__image im;
    uint64_t writes;       /* storage: accepted write requests */
    int64_t last_write_ms; /* storage: CLOCK_MONOTONIC ms of the last one */
} unit_slot;

typedef struct {
    int fd;
    size_t in_len, out_len, out_off;
    uint8_t in[IN_CAP];
    uint8_t out[OUT_CAP];
} client;

struct mtr_server {
    int lfd;
    int wake[2]; /* a byte on wake[1] stops the thread */
    uint16_t port;
    unsigned max_clients;
    int started;
    pthread_t thread;
    pthread_mutex_t lock; /* guards units */
    unit_slot *units[MTR_SERVER_UNITS + 1];
    /* owned by the server thread */
    client **clients;
    unsigned n_clients;
    struct pollfd *pfds;
    /* statistics, written by the server thread */
    atomic_uint_fast64_t requests, exceptions, connections, rejected, protocol_errors;
    atomic_uint clients_now;
};

const char *mtr_server_strerror(int code)
{
    switch (code) {
    case MTR_SERVER_OK:
        return "success";
    case MTR_SERVER_E_INVAL:
        return "invalid argument (unit ids are 1..247)";
    case MTR_SERVER_E_NOMEM:
        return "out of memory";
    case MTR_SERVER_E_ADDRESS:
        return "the listen address does not resolve";
    case MTR_SERVER_E_SOCKET:
        return "could not listen on the address";
    case MTR_SERVER_E_THREAD:
        return "could not start the server thread";
    case MTR_SERVER_E_UNIT:
        return "unit id not served (or already added)";
    case MTR_SERVER_E_RANGE:
        return "value out of range (negative counter or |power| above 1e12 W)";
    case MTR_SERVER_E_STATE:
        return "server already started";
    default:
        return "unknown meter server error";
    }
}

/* --- listening ---------------------------------------------------------------------------- */

static int listen_on(const char *host, uint16_t port, int *fd_out, uint16_t *port_out)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return MTR_SERVER_E_ADDRESS;
    int rc = MTR_SERVER_E_SOCKET, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
            saved = errno;
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
            saved = errno;
            close(fd);
            continue;
        }
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
        *fd_out = fd;
        rc = MTR_SERVER_OK;
        break;
    }
    freeaddrinfo(res);
    if (rc)
        errno = saved;
    return rc;
}

int mtr_server_new(const mtr_server_opts *opts, mtr_server **out)
{
    if (!opts || !out)
        return MTR_SERVER_E_INVAL;
    *out = NULL;
    mtr_server *s = calloc(1, sizeof *s);
    if (!s)
        return MTR_SERVER_E_NOMEM;
    s->lfd = s->wake[0] = s->wake[1] = -1;
    s->max_clients = opts->max_clients ? opts->max_clients : DEFAULT_MAX_CLIENTS;
    int rc = MTR_SERVER_E_NOMEM;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return MTR_SERVER_E_NOMEM;
    }
    s->clients = calloc(s->max_clients, sizeof *s->clients);
    s->pfds = calloc(s->max_clients + 2, sizeof *s->pfds);
    if (!s->clients || !s->pfds)
        goto out;
    if (pipe2(s->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        rc = MTR_SERVER_E_SOCKET;
        goto out;
    }
    if ((rc = listen_on(opts->host, opts->port, &s->lfd, &s->port)))
        goto out;
    *out = s;
    return MTR_SERVER_OK;
out:;
    int saved = errno;
    mtr_server_free(s);
    errno = saved;
    return rc;
}

uint16_t mtr_server_port(const mtr_server *srv)
{
    return srv ? srv->port : 0;
}

/* --- meters ------------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int add_unit(mtr_server *srv, uint8_t unit, mtr__profile profile, int64_t w_cha_max_w,
                    const char *serial)
{
    unit_slot *u = calloc(1, sizeof *u);
    if (!u)
        return MTR_SERVER_E_NOMEM;
    u->profile = profile;
    char sn[33] = "";
    if (serial)
        snprintf(sn, sizeof sn, "%s", serial);
    mtr__image_init(&u->im, u->profile, unit, sn);
    if (profile == MTR__PROFILE_STORAGE)
        mtr__image_storage_caps(&u->im, w_cha_max_w);
    pthread_mutex_lock(&srv->lock);
    int taken = srv->units[unit] != NULL;
    if (!taken)
        srv->units[unit] = u;
    pthread_mutex_unlock(&srv->lock);
    if (taken) {
        free(u);
        return MTR_SERVER_E_UNIT;
    }
    return MTR_SERVER_OK;
}

int mtr_server_add(mtr_server *srv, uint8_t unit, mtr_server_profile profile, const char *serial)
{
    if (!srv || unit < 1 || unit > MTR_SERVER_UNITS ||
        (profile != MTR_SERVER_SDM630 && profile != MTR_SERVER_SUNSPEC))
        return MTR_SERVER_E_INVAL;
    return add_unit(srv, unit, profile == MTR_SERVER_SDM630 ? MTR__PROFILE_SDM630
                                                            : MTR__PROFILE_SUNSPEC,
                    0, serial);
}

int mtr_server_add_storage(mtr_server *srv, uint8_t unit, int64_t w_cha_max_w, const char *serial)
{
    if (!srv || unit < 1 || unit > MTR_SERVER_UNITS || w_cha_max_w <= 0 ||
        w_cha_max_w > POWER_MAX_W)
        return MTR_SERVER_E_INVAL;
    return add_unit(srv, unit, MTR__PROFILE_STORAGE, w_cha_max_w, serial);
}

/* The storage unit at unit, with the lock held; NULL if it is not one. */
static unit_slot *storage_unit(mtr_server *srv, uint8_t unit)
{
    unit_slot *u = unit >= 1 && unit <= MTR_SERVER_UNITS ? srv->units[unit] : NULL;
    return u && u->profile == MTR__PROFILE_STORAGE ? u : NULL;
}

int mtr_server_storage_get(mtr_server *srv, uint8_t unit, mtr_server_storage_state *out)
{
    if (!srv || !out)
        return MTR_SERVER_E_INVAL;
    int rc = MTR_SERVER_OK;
    pthread_mutex_lock(&srv->lock);
    unit_slot *u = storage_unit(srv, unit);
    if (u) {
        const uint16_t *b = &u->im.regs[MTR__SUNS_S124_BODY - u->im.base];
        out->storctl_mod = b[3];
        out->out_w_rte = b[10];
        out->in_w_rte = b[11];
        out->rvrt_s = b[13];
        out->w_cha_max = b[0];
        out->w_cha_max_sf = b[16];
        out->rte_sf = b[23];
        out->writes = u->writes;
        out->since_write_ms = u->writes ? mono_ms() - u->last_write_ms : -1;
    } else {
        rc = MTR_SERVER_E_UNIT;
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

int mtr_server_storage_soc(mtr_server *srv, uint8_t unit, int64_t stored_wh, int64_t capacity_wh)
{
    if (!srv)
        return MTR_SERVER_E_INVAL;
    int rc = MTR_SERVER_OK;
    pthread_mutex_lock(&srv->lock);
    unit_slot *u = storage_unit(srv, unit);
    if (u)
        mtr__image_storage_soc(&u->im, stored_wh, capacity_wh);
    else
        rc = MTR_SERVER_E_UNIT;
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

int mtr_server_storage_revert(mtr_server *srv, uint8_t unit)
{
    if (!srv)
        return MTR_SERVER_E_INVAL;
    int rc = MTR_SERVER_OK;
    pthread_mutex_lock(&srv->lock);
    unit_slot *u = storage_unit(srv, unit);
    if (u)
        u->im.regs[MTR__SUNS_S124_BODY + 3 - u->im.base] = 0;
    else
        rc = MTR_SERVER_E_UNIT;
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

int mtr_server_set(mtr_server *srv, uint8_t unit, int64_t power_w, int64_t import_wh,
                   int64_t export_wh)
{
    if (!srv || unit < 1 || unit > MTR_SERVER_UNITS)
        return MTR_SERVER_E_INVAL;
    if (import_wh < 0 || export_wh < 0 || power_w > POWER_MAX_W || power_w < -POWER_MAX_W ||
        import_wh > INT64_MAX - export_wh)
        return MTR_SERVER_E_RANGE;
    int rc = MTR_SERVER_OK;
    pthread_mutex_lock(&srv->lock);
    unit_slot *u = srv->units[unit];
    if (u)
        mtr__image_set(&u->im, u->profile, power_w, import_wh, export_wh);
    else
        rc = MTR_SERVER_E_UNIT;
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

/* Register reads for mbap.c; runs on the server thread. */
static int read_regs(void *ctx, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count,
                     uint16_t *dst)
{
    mtr_server *srv = ctx;
    int ex = 0;
    pthread_mutex_lock(&srv->lock);
    const unit_slot *u = unit >= 1 && unit <= MTR_SERVER_UNITS ? srv->units[unit] : NULL;
    if (!u)
        ex = MTR__EX_GATEWAY_TARGET;
    else if (count > u->im.max_read)
        ex = MTR__EX_ILLEGAL_VALUE;
    else if (fc != u->im.fc || addr < u->im.base ||
             (unsigned)addr + count > (unsigned)u->im.base + u->im.n)
        ex = MTR__EX_ILLEGAL_ADDRESS;
    else
        memcpy(dst, &u->im.regs[addr - u->im.base], (size_t)count * sizeof *dst);
    pthread_mutex_unlock(&srv->lock);
    return ex;
}

/* Register writes for mbap.c (function 6 and 16); runs on the server thread. Only an
 * inverter's storage controls are writable. */
static int write_regs(void *ctx, uint8_t unit, uint16_t addr, uint16_t count, const uint16_t *src)
{
    mtr_server *srv = ctx;
    int ex = 0;
    pthread_mutex_lock(&srv->lock);
    unit_slot *u = unit >= 1 && unit <= MTR_SERVER_UNITS ? srv->units[unit] : NULL;
    if (!u)
        ex = MTR__EX_GATEWAY_TARGET;
    else if (u->profile != MTR__PROFILE_STORAGE)
        ex = MTR__EX_ILLEGAL_FUNCTION; /* a meter takes no writes */
    else if (!mtr__image_storage_writable(addr, count))
        ex = MTR__EX_ILLEGAL_ADDRESS;
    else {
        memcpy(&u->im.regs[addr - u->im.base], src, (size_t)count * sizeof *src);
        u->writes++;
        u->last_write_ms = mono_ms();
    }
    pthread_mutex_unlock(&srv->lock);
    return ex;
}

/* --- connections -------------------------------------------------------------------------- */

static void drop_client(mtr_server *s, unsigned i)
{
    close(s->clients[i]->fd);
    free(s->clients[i]);
    s->clients[i] = s->clients[--s->n_clients];
    s->clients[s->n_clients] = NULL;
    atomic_store(&s->clients_now, s->n_clients);
}

static void accept_all(mtr_server *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a transient error (ECONNABORTED, EMFILE): poll again */
        client *c = s->n_clients < s->max_clients ? malloc(sizeof *c) : NULL;
        if (!c) {
            /* count before closing: a client that sees the close may read the stats at once */
            atomic_fetch_add(&s->rejected, 1);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->in_len = c->out_len = c->out_off = 0;
        s->clients[s->n_clients++] = c;
        atomic_fetch_add(&s->connections, 1);
        atomic_store(&s->clients_now, s->n_clients);
    }
}

/* Sends what is queued. Returns -1 if the connection is gone. */
static int flush_out(client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

static int out_room(const client *c)
{
    return OUT_CAP - c->out_len >= MTR__MBAP_MAX;
}

/* Answers every complete request in the input buffer while replies fit. -1: close. */
static int serve_frames(mtr_server *s, client *c)
{
    size_t off = 0;
    int rc = 0;
    while (out_room(c)) {
        int size = mtr__mbap_frame_size(c->in + off, c->in_len - off);
        if (size < 0) {
            atomic_fetch_add(&s->protocol_errors, 1);
            rc = -1;
            break;
        }
        if (size == 0)
            break;
        uint8_t *reply = c->out + c->out_len;
        size_t n = mtr__mbap_reply_rw(c->in + off, (size_t)size, read_regs, write_regs, s, reply);
        c->out_len += n;
        off += (size_t)size;
        atomic_fetch_add(&s->requests, 1);
        if (reply[7] & 0x80)
            atomic_fetch_add(&s->exceptions, 1);
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return rc;
}

/* Handles poll events of one client. Returns -1 when it is to be closed. */
static int client_event(mtr_server *s, client *c, short revents)
{
    if (revents & POLLNVAL)
        return -1;
    if ((revents & POLLOUT) && flush_out(c))
        return -1;
    if (revents & POLLIN) {
        ssize_t n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
        if (n == 0)
            return -1;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (n > 0)
            c->in_len += (size_t)n;
    } else if (revents & (POLLERR | POLLHUP)) {
        return -1;
    }
    if (serve_frames(s, c) || flush_out(c))
        return -1;
    return 0;
}

static void *server_main(void *arg)
{
    mtr_server *s = arg;
    for (;;) {
        s->pfds[0] = (struct pollfd){s->wake[0], POLLIN, 0};
        s->pfds[1] = (struct pollfd){s->lfd, POLLIN, 0};
        for (unsigned i = 0; i < s->n_clients; i++) {
            const client *c = s->clients[i];
            short ev = 0;
            if (c->out_len > c->out_off)
                ev |= POLLOUT;
            if (c->in_len < IN_CAP && out_room(c))
                ev |= POLLIN;
            s->pfds[2 + i] = (struct pollfd){c->fd, ev, 0};
        }
        unsigned n_polled = s->n_clients;
        if (poll(s->pfds, n_polled + 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (s->pfds[0].revents)
            break;
        /* clients first: drop_client reorders the array, so walk it backwards */
        for (unsigned i = n_polled; i-- > 0;)
            if (s->pfds[2 + i].revents && client_event(s, s->clients[i], s->pfds[2 + i].revents))
                drop_client(s, i);
        if (s->pfds[1].revents & POLLIN)
            accept_all(s);
    }
    return NULL;
}

int mtr_server_start(mtr_server *srv)
{
    if (!srv)
        return MTR_SERVER_E_INVAL;
    if (srv->started)
        return MTR_SERVER_E_STATE;
    if (pthread_create(&srv->thread, NULL, server_main, srv) != 0)
        return MTR_SERVER_E_THREAD;
    srv->started = 1;
    return MTR_SERVER_OK;
}

void mtr_server_get_stats(mtr_server *srv, mtr_server_stats *out)
{
    out->requests = atomic_load(&srv->requests);
    out->exceptions = atomic_load(&srv->exceptions);
    out->connections = atomic_load(&srv->connections);
    out->rejected = atomic_load(&srv->rejected);
    out->protocol_errors = atomic_load(&srv->protocol_errors);
    out->clients = atomic_load(&srv->clients_now);
}

void mtr_server_free(mtr_server *srv)
{
    if (!srv)
        return;
    if (srv->started) {
        ssize_t n;
        do
            n = write(srv->wake[1], "x", 1);
        while (n < 0 && errno == EINTR);
        pthread_join(srv->thread, NULL);
    }
    while (srv->n_clients)
        drop_client(srv, srv->n_clients - 1);
    if (srv->lfd >= 0)
        close(srv->lfd);
    for (int i = 0; i < 2; i++)
        if (srv->wake[i] >= 0)
            close(srv->wake[i]);
    for (unsigned u = 0; u <= MTR_SERVER_UNITS; u++)
        free(srv->units[u]);
    free(srv->clients);
    free(srv->pfds);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}
