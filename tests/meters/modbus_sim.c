/*
 * A libmodbus TCP server for the meters tests (see modbus_sim.h): one thread, a select loop
 * over the listening socket and every client connection, and modbus_receive / modbus_reply
 * against the mapping of the unit the request names.
 */
#define _POSIX_C_SOURCE 200809L
#include "modbus_sim.h"

#include "broker.h" /* tst_free_port */

#include <errno.h>
#include <modbus.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    modbus_mapping_t *map;
    tms_fault fault;
    int arg;
    int last_fc; /* the last write request: function, first register and value */
    uint16_t last_addr, last_value;
} unit_state;

struct tms_server {
    modbus_t *ctx;
    int port;
    int listen_fd;
    pthread_t th;
    pthread_mutex_t mu;
    int stop;
    unit_state units[TMS_MAX_UNITS];
    unsigned requests, accepts, writes;
    int clients[64];
    int n_clients;
};

static void close_client(tms_server *s, int i)
{
    close(s->clients[i]);
    s->clients[i] = s->clients[--s->n_clients];
}

static int write_all(int fd, const uint8_t *b, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A read reply whose byte count is two short, with the data to match (a consistent frame). */
static void bad_count_reply(int fd, const uint8_t *q)
{
    uint8_t r[300];
    unsigned count = (unsigned)(q[10] << 8 | q[11]);
    unsigned bytes = count * 2 - 2;
    memcpy(r, q, 4); /* transaction and protocol ids */
    r[4] = (uint8_t)((bytes + 3) >> 8);
    r[5] = (uint8_t)(bytes + 3);
    r[6] = q[6];
    r[7] = q[7];
    r[8] = (uint8_t)bytes;
    memset(r + 9, 0, bytes);
    write_all(fd, r, 9 + bytes);
}

/* Serves one request on client i; returns -1 if the client went away. */
static int serve(tms_server *s, int i)
{
    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    modbus_set_socket(s->ctx, s->clients[i]);
    int rc = modbus_receive(s->ctx, q);
    if (rc <= 0)
        return rc < 0 ? -1 : 0;
    pthread_mutex_lock(&s->mu);
    s->requests++;
    unit_state *u = &s->units[q[6]];
    int fd = s->clients[i];
    int ret = 0;
    int is_write = q[7] == 5 || q[7] == 6 || q[7] == 15 || q[7] == 16;
    s->writes += (unsigned)is_write;
    if ((q[7] == 6 && rc >= 12) || (q[7] == 16 && rc >= 15)) {
        u->last_fc = q[7];
        u->last_addr = (uint16_t)(q[8] << 8 | q[9]);
        u->last_value = q[7] == 6 ? (uint16_t)(q[10] << 8 | q[11]) : (uint16_t)(q[13] << 8 | q[14]);
    }
    if (u->map && u->fault == TMS_WRITE_EXCEPTION && is_write) {
        modbus_reply_exception(s->ctx, q, (unsigned)u->arg);
    } else if (u->map && u->fault == TMS_IGNORE_WRITES && is_write) {
        /* answer as libmodbus does, then put the registers back */
        modbus_mapping_t *m = u->map;
        size_t nb = (size_t)m->nb_registers * sizeof *m->tab_registers;
        uint16_t *keep = malloc(nb ? nb : 1);
        if (keep)
            memcpy(keep, m->tab_registers, nb);
        modbus_reply(s->ctx, q, rc, m);
        if (keep)
            memcpy(m->tab_registers, keep, nb);
        free(keep);
    } else if (u->map && (u->fault == TMS_WRITE_EXCEPTION || u->fault == TMS_IGNORE_WRITES)) {
        modbus_reply(s->ctx, q, rc, u->map);
    } else if (!u->map) {
        /* unknown unit: no reply, like a gateway whose target is absent */
    } else if (u->fault == TMS_SILENT) {
    } else if (u->fault == TMS_EXCEPTION) {
        modbus_reply_exception(s->ctx, q, (unsigned)u->arg);
    } else if (u->fault == TMS_BAD_COUNT) {
        bad_count_reply(fd, q);
    } else if (u->fault == TMS_DROP) {
        uint8_t half[5];
        memcpy(half, q, 5);
        write_all(fd, half, sizeof half);
        ret = -1;
    } else {
        modbus_reply(s->ctx, q, rc, u->map);
    }
    pthread_mutex_unlock(&s->mu);
    return ret;
}

static void *loop(void *arg)
{
    tms_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(s->listen_fd, &rd);
        int maxfd = s->listen_fd;
        for (int i = 0; i < s->n_clients; i++) {
            FD_SET(s->clients[i], &rd);
            maxfd = s->clients[i] > maxfd ? s->clients[i] : maxfd;
        }
        struct timeval tv = {0, 20000};
        if (select(maxfd + 1, &rd, NULL, NULL, &tv) <= 0)
            continue;
        if (FD_ISSET(s->listen_fd, &rd)) {
            int fd = accept(s->listen_fd, NULL, NULL);
            if (fd >= 0 && s->n_clients < 64) {
                s->clients[s->n_clients++] = fd;
                pthread_mutex_lock(&s->mu);
                s->accepts++;
                pthread_mutex_unlock(&s->mu);
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (int i = s->n_clients - 1; i >= 0; i--)
            if (FD_ISSET(s->clients[i], &rd) && serve(s, i) < 0)
                close_client(s, i);
    }
    return NULL;
}

tms_server *tms_start(void)
{
    tms_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->port = tst_free_port();
    s->ctx = modbus_new_tcp("127.0.0.1", s->port);
    if (!s->ctx || (s->listen_fd = modbus_tcp_listen(s->ctx, 16)) < 0) {
        fprintf(stderr, "tms_start: cannot listen on %d: %s\n", s->port, modbus_strerror(errno));
        free(s);
        return NULL;
    }
    pthread_create(&s->th, NULL, loop, s);
    return s;
}

int tms_port(const tms_server *s)
{
    return s->port;
}

void tms_stop(tms_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    while (s->n_clients > 0)
        close_client(s, 0);
    close(s->listen_fd);
    for (int i = 0; i < TMS_MAX_UNITS; i++)
        if (s->units[i].map)
            modbus_mapping_free(s->units[i].map);
    modbus_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void tms_add_unit(tms_server *s, int unit, uint16_t hold_start, unsigned hold_n,
                  uint16_t in_start, unsigned in_n)
{
    pthread_mutex_lock(&s->mu);
    s->units[unit].map =
        modbus_mapping_new_start_address(0, 0, 0, 0, hold_start, hold_n, in_start, in_n);
    pthread_mutex_unlock(&s->mu);
}

/* The n registers at addr of unit's table fc (3 or 4); aborts the test outside the window (a
 * test bug). Called with s->mu held. */
static uint16_t *window(tms_server *s, int unit, int fc, uint16_t addr, unsigned n,
                        const char *who)
{
    modbus_mapping_t *m = s->units[unit].map;
    uint16_t *tab = fc == 3 ? m->tab_registers : m->tab_input_registers;
    unsigned start = (unsigned)(fc == 3 ? m->start_registers : m->start_input_registers);
    unsigned nb = (unsigned)(fc == 3 ? m->nb_registers : m->nb_input_registers);
    if (addr < start || addr - start + n > nb) {
        fprintf(stderr, "%s: %u+%u outside the window of unit %d\n", who, addr, n, unit);
        abort();
    }
    return tab + (addr - start);
}

void tms_set(tms_server *s, int unit, int fc, uint16_t addr, const uint16_t *regs, unsigned n)
{
    pthread_mutex_lock(&s->mu);
    memcpy(window(s, unit, fc, addr, n, "tms_set"), regs, n * sizeof *regs);
    pthread_mutex_unlock(&s->mu);
}

void tms_get(tms_server *s, int unit, int fc, uint16_t addr, uint16_t *regs, unsigned n)
{
    pthread_mutex_lock(&s->mu);
    memcpy(regs, window(s, unit, fc, addr, n, "tms_get"), n * sizeof *regs);
    pthread_mutex_unlock(&s->mu);
}

int tms_last_write(tms_server *s, int unit, uint16_t *addr, uint16_t *value)
{
    pthread_mutex_lock(&s->mu);
    unit_state *u = &s->units[unit & 0xFF];
    int fc = u->last_fc;
    *addr = u->last_addr;
    *value = u->last_value;
    pthread_mutex_unlock(&s->mu);
    return fc;
}

unsigned tms_writes(tms_server *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = s->writes;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void tms_set_float(tms_server *s, int unit, int fc, uint16_t addr, float v)
{
    uint8_t b[4];
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    b[0] = (uint8_t)(bits >> 24), b[1] = (uint8_t)(bits >> 16);
    b[2] = (uint8_t)(bits >> 8), b[3] = (uint8_t)bits;
    uint16_t r[2] = {(uint16_t)(b[0] << 8 | b[1]), (uint16_t)(b[2] << 8 | b[3])};
    tms_set(s, unit, fc, addr, r, 2);
}

void tms_set_u32(tms_server *s, int unit, int fc, uint16_t addr, uint32_t v)
{
    uint16_t r[2] = {(uint16_t)(v >> 16), (uint16_t)v};
    tms_set(s, unit, fc, addr, r, 2);
}

void tms_fault_set(tms_server *s, int unit, tms_fault f, int arg)
{
    pthread_mutex_lock(&s->mu);
    s->units[unit].fault = f;
    s->units[unit].arg = arg;
    pthread_mutex_unlock(&s->mu);
}

unsigned tms_requests(tms_server *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

unsigned tms_accepts(tms_server *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = s->accepts;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void tms_sunspec(tms_server *s, int unit, uint16_t base, const uint16_t *ids,
                 const uint16_t *lens, int n, uint16_t *addrs)
{
    uint16_t marker[2] = {0x5375, 0x6E53};
    tms_set(s, unit, 3, base, marker, 2);
    uint16_t a = (uint16_t)(base + 2);
    for (int i = 0; i < n; i++) {
        uint16_t hdr[2] = {ids[i], lens[i]};
        tms_set(s, unit, 3, a, hdr, 2);
        if (addrs)
            addrs[i] = a;
        a = (uint16_t)(a + 2 + lens[i]);
    }
    uint16_t end[2] = {0xFFFF, 0};
    tms_set(s, unit, 3, a, end, 2);
}
