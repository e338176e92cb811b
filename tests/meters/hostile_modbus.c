/*
 * The hostile Modbus TCP device of hostile_modbus.h: a poll loop over the listening socket and
 * one connection, hand-built frames, one misbehaviour per mode.
 */
#define _GNU_SOURCE /* ptsname_r, cfmakeraw */
#include "hostile_modbus.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

struct thd_server {
    int lfd, cfd, port;
    int wake[2]; /* stop */
    pthread_t th;
    pthread_mutex_t mu;
    uint16_t good[0x10000], forged[0x10000];
    thd_mode mode;
    int drip_ms;
    atomic_uint requests;
    atomic_int stop;
};

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* A register reply: tid, protocol, unit, function as given, registers from table. */
static size_t frame(uint8_t *out, unsigned tid, unsigned proto, unsigned unit, unsigned fc,
                    const uint16_t *table, unsigned addr, unsigned count)
{
    put16(out, tid);
    put16(out + 2, proto);
    put16(out + 4, 3 + 2 * count);
    out[6] = (uint8_t)unit;
    out[7] = (uint8_t)fc;
    out[8] = (uint8_t)(2 * count);
    for (unsigned i = 0; i < count; i++)
        put16(out + 9 + 2 * i, table[(addr + i) & 0xFFFF]);
    return 9 + 2 * (size_t)count;
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* One byte per drip_ms; stops when the client is gone or a new connection waits. */
static void drip(thd_server *s, const uint8_t *p, size_t n, int drip_ms)
{
    for (size_t i = 0; i < n && !s->stop; i++) {
        if (send(s->cfd, p + i, 1, MSG_NOSIGNAL) != 1)
            return;
        struct pollfd pf[2] = {{s->lfd, POLLIN, 0}, {s->cfd, POLLIN, 0}};
        if (poll(pf, 2, drip_ms) > 0)
            return; /* a reconnect, or the client closed (or wrote): the drip is over */
    }
}

static void answer(thd_server *s, const uint8_t *req)
{
    uint8_t out[1024];
    unsigned tid = be16(req), unit = req[6], fc = req[7], addr = be16(req + 8),
             count = be16(req + 10);
    pthread_mutex_lock(&s->mu);
    thd_mode m = s->mode;
    int drip_ms = s->drip_ms;
    pthread_mutex_unlock(&s->mu);
    if ((fc != 3 && fc != 4) || count < 1 || count > 125) {
        put16(out, tid);
        put16(out + 2, 0);
        put16(out + 4, 3);
        out[6] = (uint8_t)unit;
        out[7] = (uint8_t)(fc | 0x80);
        out[8] = 1;
        send_all(s->cfd, out, 9);
        return;
    }
    size_t n;
    switch (m) {
    case THD_WRONG_UNIT:
        n = frame(out, tid, 0, (unit + 1) & 0xFF, fc, s->forged, addr, count);
        break;
    case THD_PROTOCOL:
        n = frame(out, tid, 1, unit, fc, s->forged, addr, count);
        break;
    case THD_WRONG_TID:
        n = frame(out, (tid + 1) & 0xFFFF, 0, unit, fc, s->forged, addr, count);
        break;
    case THD_STALE_FIRST:
        n = frame(out, (tid - 1) & 0xFFFF, 0, unit, fc, s->forged, addr, count);
        n += frame(out + n, tid, 0, unit, fc, s->good, addr, count);
        break;
    case THD_EXTRA_AFTER:
        n = frame(out, tid, 0, unit, fc, s->good, addr, count);
        n += frame(out + n, (tid + 1) & 0xFFFF, 0, unit, fc, s->forged, addr, count);
        break;
    case THD_DRIP:
        n = frame(out, tid, 0, unit, fc, s->good, addr, count);
        drip(s, out, n, drip_ms);
        return;
    case THD_TRUNCATE:
    case THD_TRUNCATE_CLOSE:
        frame(out, tid, 0, unit, fc, s->good, addr, count);
        send_all(s->cfd, out, 9);
        if (m == THD_TRUNCATE_CLOSE) {
            close(s->cfd);
            s->cfd = -1;
        }
        return;
    case THD_GARBAGE: {
        static const char text[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        send_all(s->cfd, (const uint8_t *)text, sizeof text - 1);
        return;
    }
    case THD_WRONG_FUNCTION:
        n = frame(out, tid, 0, unit, fc == 3 ? 4 : 3, s->forged, addr, count);
        break;
    case THD_BAD_LENGTH:
        n = frame(out, tid, 0, unit, fc, s->forged, addr, count);
        put16(out + 4, 3 + 2 * count + 2);
        break;
    default:
        n = frame(out, tid, 0, unit, fc, s->good, addr, count);
        break;
    }
    send_all(s->cfd, out, n);
}

static void *serve(void *arg)
{
    thd_server *s = arg;
    uint8_t buf[512];
    size_t len = 0;
    while (!s->stop) {
        struct pollfd pf[3] = {{s->wake[0], POLLIN, 0}, {s->lfd, POLLIN, 0}, {s->cfd, POLLIN, 0}};
        if (poll(pf, s->cfd >= 0 ? 3 : 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[0].revents)
            break;
        if (pf[1].revents & POLLIN) {
            int fd = accept(s->lfd, NULL, NULL);
            if (fd >= 0) {
                if (s->cfd >= 0)
                    close(s->cfd);
                s->cfd = fd;
                len = 0;
            }
            continue;
        }
        if (s->cfd < 0 || !(pf[2].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t r = recv(s->cfd, buf + len, sizeof buf - len, 0);
        if (r <= 0) {
            close(s->cfd);
            s->cfd = -1;
            continue;
        }
        len += (size_t)r;
        /* the client sends 12-byte read requests; anything else is answered by length */
        while (s->cfd >= 0 && len >= 6 && len >= 6 + be16(buf + 4)) {
            size_t fl = 6 + be16(buf + 4);
            if (fl < 12) {
                len = 0;
                break;
            }
            atomic_fetch_add(&s->requests, 1);
            answer(s, buf);
            memmove(buf, buf + fl, len - fl);
            len -= fl;
        }
        if (len == sizeof buf)
            len = 0;
    }
    return NULL;
}

thd_server *thd_start(void)
{
    thd_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfd = -1;
    pthread_mutex_init(&s->mu, NULL);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->lfd, 8) != 0 || getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0 ||
        pipe(s->wake) != 0) {
        perror("hostile modbus device");
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->th, NULL, serve, s) != 0) {
        fputs("hostile modbus device: no thread\n", stderr);
        free(s);
        return NULL;
    }
    return s;
}

int thd_port(const thd_server *s)
{
    return s->port;
}

void thd_stop(thd_server *s)
{
    if (!s)
        return;
    s->stop = 1;
    if (write(s->wake[1], "x", 1) != 1)
        perror("hostile modbus device: wake");
    pthread_join(s->th, NULL);
    if (s->cfd >= 0)
        close(s->cfd);
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void put_float(uint16_t *table, uint16_t addr, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    table[addr] = (uint16_t)(u >> 16); /* ABCD: high word first, big-endian bytes */
    table[(uint16_t)(addr + 1)] = (uint16_t)u;
}

void thd_set_float(thd_server *s, uint16_t addr, float good, float forged)
{
    pthread_mutex_lock(&s->mu);
    put_float(s->good, addr, good);
    put_float(s->forged, addr, forged);
    pthread_mutex_unlock(&s->mu);
}

void thd_mode_set(thd_server *s, thd_mode m, int drip_ms)
{
    pthread_mutex_lock(&s->mu);
    s->mode = m;
    s->drip_ms = drip_ms;
    pthread_mutex_unlock(&s->mu);
}

unsigned thd_requests(thd_server *s)
{
    return atomic_load(&s->requests);
}

/* ---- the serial twin ---- */

struct thd_serial {
    thd_server *tables;
    int master, keep;
    char path[128];
    pthread_t th;
    atomic_int stop, dripping;
};

/* Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF), written out here rather than
 * taken from the library under test. */
static unsigned crc16(const uint8_t *p, size_t n)
{
    unsigned crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc & 1u) ? (crc >> 1) ^ 0xA001u : crc >> 1;
    }
    return crc;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void serial_answer(thd_serial *s, const uint8_t *req)
{
    thd_server *t = s->tables;
    pthread_mutex_lock(&t->mu);
    thd_mode m = t->mode;
    int drip_ms = t->drip_ms;
    pthread_mutex_unlock(&t->mu);
    unsigned unit = req[0], fc = req[1], addr = be16(req + 2), count = be16(req + 4);
    if (fc != 3 && fc != 4)
        return; /* the client under test only reads */
    if (crc16(req, 6) != ((unsigned)req[7] << 8 | req[6]))
        return; /* a damaged request: silence, as on a real line */
    uint8_t out[300];
    const uint16_t *table = m == THD_WRONG_UNIT ? t->forged : t->good;
    out[0] = (uint8_t)(m == THD_WRONG_UNIT ? unit + 1 : unit);
    out[1] = (uint8_t)fc;
    out[2] = (uint8_t)(2 * count);
    for (unsigned i = 0; i < count; i++)
        put16(out + 3 + 2 * i, table[(addr + i) & 0xFFFF]);
    size_t n = 3 + 2 * (size_t)count;
    unsigned crc = crc16(out, n);
    out[n++] = (uint8_t)crc;
    out[n++] = (uint8_t)(crc >> 8);
    if (m == THD_TRUNCATE) {
        write_all(s->master, out, 9);
        return;
    }
    if (m != THD_DRIP) {
        write_all(s->master, out, n);
        return;
    }
    s->dripping = 1;
    for (size_t i = 0; i < n && !s->stop; i++) {
        pthread_mutex_lock(&t->mu);
        thd_mode now = t->mode;
        pthread_mutex_unlock(&t->mu);
        if (now != THD_DRIP)
            break;
        write_all(s->master, out + i, 1);
        struct timespec ts = {drip_ms / 1000, (long)(drip_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    s->dripping = 0;
}

static void *serial_serve(void *arg)
{
    thd_serial *s = arg;
    uint8_t buf[64];
    size_t len = 0;
    while (!s->stop) {
        struct pollfd pf = {s->master, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        ssize_t r = read(s->master, buf + len, sizeof buf - len);
        if (r <= 0)
            continue;
        len += (size_t)r;
        while (len >= 8) { /* the client sends 8-byte read requests */
            serial_answer(s, buf);
            memmove(buf, buf + 8, len - 8);
            len -= 8;
        }
    }
    return NULL;
}

thd_serial *thd_serial_start(thd_server *tables)
{
    thd_serial *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->tables = tables;
    s->keep = -1;
    s->master = posix_openpt(O_RDWR | O_NOCTTY);
    struct termios tio;
    if (s->master < 0 || grantpt(s->master) != 0 || unlockpt(s->master) != 0 ||
        ptsname_r(s->master, s->path, sizeof s->path) != 0 ||
        (s->keep = open(s->path, O_RDWR | O_NOCTTY)) < 0 || tcgetattr(s->keep, &tio) != 0)
        goto fail;
    cfmakeraw(&tio); /* binary frames: no echo, no CR/LF mangling */
    if (tcsetattr(s->keep, TCSANOW, &tio) != 0)
        goto fail;
    if (pthread_create(&s->th, NULL, serial_serve, s) != 0)
        goto fail;
    return s;
fail:
    perror("hostile modbus serial device");
    if (s->keep >= 0)
        close(s->keep);
    if (s->master >= 0)
        close(s->master);
    free(s);
    return NULL;
}

const char *thd_serial_path(const thd_serial *s)
{
    return s->path;
}

void thd_serial_mode_set(thd_serial *s, thd_mode m, int drip_ms)
{
    thd_mode_set(s->tables, m, drip_ms);
}

int thd_serial_quiet(thd_serial *s, int timeout_ms)
{
    for (int waited = 0; s->dripping; waited += 10) {
        if (waited >= timeout_ms)
            return -1;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

void thd_serial_stop(thd_serial *s)
{
    if (!s)
        return;
    s->stop = 1;
    pthread_join(s->th, NULL);
    close(s->keep);
    close(s->master);
    free(s);
}
