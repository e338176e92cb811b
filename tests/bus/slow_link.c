/*
 * The slow uplink of the bus tests (see slow_link.h): one thread, a poll loop per connection,
 * and a buffer of the client's bytes cut into MQTT packets by their fixed header (type byte,
 * remaining length as a variable byte integer: MQTT v5 section 2.1.4).
 */
#define _POSIX_C_SOURCE 200809L
#include "slow_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UP_MAX (1u << 20) /* client bytes waiting for their turn */

struct slow_link {
    int listen_fd, port, broker_port, pace_ms;
    int wake[2]; /* written once by slow_link_stop: stays readable */
    pthread_t th;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Length of the first whole MQTT packet in b: 0 while incomplete, -1 when malformed. */
static long packet_len(const uint8_t *b, size_t n)
{
    size_t len = 0, mult = 1, i = 1;
    for (;; i++) {
        if (i > 4)
            return -1;
        if (i >= n)
            return 0;
        len += (size_t)(b[i] & 0x7F) * mult;
        mult *= 128;
        if (!(b[i] & 0x80))
            break;
    }
    size_t total = 1 + i + len; /* type byte, i length bytes, the rest */
    return total <= n ? (long)total : 0;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int connect_broker(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Sends the first whole packet of up to the broker; returns its length, 0 if none, -1 on error. */
static long forward_one(int bfd, uint8_t *up, size_t *up_n)
{
    long plen = packet_len(up, *up_n);
    if (plen <= 0)
        return plen;
    if (send_all(bfd, up, (size_t)plen) != 0)
        return -1;
    memmove(up, up + plen, *up_n - (size_t)plen);
    *up_n -= (size_t)plen;
    return plen;
}

static void relay(slow_link *s, int cfd)
{
    int bfd = connect_broker(s->broker_port);
    uint8_t *up = malloc(UP_MAX);
    uint8_t buf[16384];
    size_t up_n = 0;
    int64_t next_ok = 0;
    int client_gone = 0;
    while (bfd >= 0 && up && !client_gone) {
        int timeout = -1;
        long plen = packet_len(up, up_n);
        if (plen < 0)
            break;
        if (plen > 0) {
            int64_t now = mono_ms();
            if (now >= next_ok) {
                if (forward_one(bfd, up, &up_n) < 0)
                    break;
                next_ok = now + s->pace_ms;
                continue;
            }
            timeout = (int)(next_ok - now);
        }
        struct pollfd pf[3] = {{s->wake[0], POLLIN, 0},
                               {cfd, (short)(up_n < UP_MAX ? POLLIN : 0), 0},
                               {bfd, POLLIN, 0}};
        if (poll(pf, 3, timeout) < 0 && errno != EINTR)
            break;
        if (pf[0].revents)
            break;
        if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(cfd, up + up_n, UP_MAX - up_n, 0);
            if (n <= 0)
                client_gone = 1;
            else
                up_n += (size_t)n;
        }
        if (pf[2].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(bfd, buf, sizeof buf, 0);
            if (n <= 0 || send_all(cfd, buf, (size_t)n) != 0)
                break;
        }
    }
    /* a client that hung up still gets what it sent delivered (e.g. its DISCONNECT) */
    while (client_gone && bfd >= 0 && up && forward_one(bfd, up, &up_n) > 0)
        ;
    free(up);
    if (bfd >= 0)
        close(bfd);
    close(cfd);
}

static void *link_main(void *arg)
{
    slow_link *s = arg;
    for (;;) {
        struct pollfd pf[2] = {{s->wake[0], POLLIN, 0}, {s->listen_fd, POLLIN, 0}};
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[0].revents)
            break;
        if (pf[1].revents & POLLIN) {
            int cfd = accept(s->listen_fd, NULL, NULL);
            if (cfd >= 0)
                relay(s, cfd);
        }
    }
    return NULL;
}

slow_link *slow_link_start(int broker_port, int pace_ms)
{
    slow_link *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->broker_port = broker_port;
    s->pace_ms = pace_ms;
    s->wake[0] = s->wake[1] = -1;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->listen_fd, 4) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) != 0 || pipe(s->wake) != 0)
        goto fail;
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->th, NULL, link_main, s) != 0)
        goto fail;
    return s;
fail:
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    for (int i = 0; i < 2; i++)
        if (s->wake[i] >= 0)
            close(s->wake[i]);
    free(s);
    return NULL;
}

int slow_link_port(const slow_link *s)
{
    return s->port;
}

void slow_link_stop(slow_link *s)
{
    if (!s)
        return;
    ssize_t w = write(s->wake[1], "x", 1);
    (void)w;
    pthread_join(s->th, NULL);
    close(s->listen_fd);
    close(s->wake[0]);
    close(s->wake[1]);
    free(s);
}
