/*
 * The emulated RS-485 bus of the RTU tests (see rtu_bus.h): pty pairs made with posix_openpt,
 * one libmodbus RTU server thread per unit, and a relay thread with a poll loop that copies
 * the client's bytes to every unit and each unit's reply back, logging requests and applying
 * the injected faults on the way.
 */
#define _GNU_SOURCE /* ptsname_r, cfmakeraw */
#include "rtu_bus.h"

#include <errno.h>
#include <fcntl.h>
#include <modbus.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define HELD_MAX 512

typedef struct trb_bus trb_bus;

typedef struct {
    trb_bus *bus;
    int unit;
    int master; /* the relay's end of this unit's line */
    int keep;   /* our own open slave fd: the master never sees a hang-up */
    char path[64];
    modbus_t *ctx;
    modbus_mapping_t *map;
    pthread_t th;
    int running;
    /* under bus->mu */
    int unplugged, corrupt, delay_ms;
    /* relay thread only */
    size_t reply_pos;
    uint8_t held[HELD_MAX];
    size_t held_n;
    int64_t release_us;
} unit_t;

struct trb_bus {
    int master, keep;
    char path[64];
    int wake[2];
    pthread_t relay;
    int relay_running;
    pthread_mutex_t mu;
    int stop;
    unit_t units[TRB_MAX_UNITS];
    int n_units;
    uint8_t frame[8]; /* relay: the request being reassembled for the log */
    size_t frame_n;
    trb_request log[TRB_LOG_MAX];
    size_t log_n;
};

int64_t trb_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Modbus RTU CRC-16: polynomial 0xA001 (reflected 0x8005), initial value 0xFFFF. */
static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1u) ? (uint16_t)((crc >> 1) ^ 0xA001u) : (uint16_t)(crc >> 1);
    }
    return crc;
}

static int open_pty(int *master, int *keep, char *path, size_t len)
{
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    *keep = -1;
    if (*master < 0 || grantpt(*master) != 0 || unlockpt(*master) != 0 ||
        ptsname_r(*master, path, len) != 0)
        goto fail;
    *keep = open(path, O_RDWR | O_NOCTTY);
    if (*keep < 0)
        goto fail;
    struct termios t;
    if (tcgetattr(*keep, &t) != 0)
        goto fail;
    cfmakeraw(&t); /* no echo, no CR/LF mangling: the line carries binary frames */
    if (tcsetattr(*keep, TCSANOW, &t) != 0)
        goto fail;
    return 0;
fail:
    perror("rtu_bus: pty");
    if (*keep >= 0)
        close(*keep);
    if (*master >= 0)
        close(*master);
    *master = *keep = -1;
    return -1;
}

static unit_t *find_unit(trb_bus *b, int unit)
{
    for (int i = 0; i < b->n_units; i++)
        if (b->units[i].unit == unit)
            return &b->units[i];
    return NULL;
}

trb_bus *trb_new(void)
{
    trb_bus *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->wake[0] = b->wake[1] = -1;
    pthread_mutex_init(&b->mu, NULL);
    if (open_pty(&b->master, &b->keep, b->path, sizeof b->path) != 0 || pipe(b->wake) != 0) {
        trb_free(b);
        return NULL;
    }
    return b;
}

int trb_add_unit(trb_bus *b, int unit)
{
    if (b->n_units == TRB_MAX_UNITS || unit < 1 || unit > 247 || find_unit(b, unit))
        return -1;
    unit_t *u = &b->units[b->n_units];
    memset(u, 0, sizeof *u);
    u->bus = b;
    u->unit = unit;
    if (open_pty(&u->master, &u->keep, u->path, sizeof u->path) != 0)
        return -1;
    u->map = modbus_mapping_new_start_address(0, 0, 0, 0, 0, 0, 0, TRB_INPUT_REGS);
    if (!u->map) {
        close(u->master);
        close(u->keep);
        return -1;
    }
    b->n_units++;
    return 0;
}

/* ---- unit servers ---- */

static void *unit_main(void *arg)
{
    unit_t *u = arg;
    trb_bus *b = u->bus;
    uint8_t req[MODBUS_RTU_MAX_ADU_LENGTH];
    for (;;) {
        pthread_mutex_lock(&b->mu);
        int stop = b->stop;
        pthread_mutex_unlock(&b->mu);
        if (stop)
            break;
        /* returns on the indication timeout too, so the stop flag is seen */
        int rc = modbus_receive(u->ctx, req);
        if (rc > 0) {
            pthread_mutex_lock(&b->mu);
            modbus_reply(u->ctx, req, rc, u->map);
            pthread_mutex_unlock(&b->mu);
        }
    }
    return NULL;
}

static int start_unit(unit_t *u)
{
    u->ctx = modbus_new_rtu(u->path, 9600, 'N', 8, 1);
    if (!u->ctx || modbus_set_slave(u->ctx, u->unit) != 0 ||
        modbus_set_indication_timeout(u->ctx, 0, 50000) != 0 || modbus_connect(u->ctx) != 0) {
        fprintf(stderr, "rtu_bus: unit %d: %s\n", u->unit, modbus_strerror(errno));
        return -1;
    }
    if (pthread_create(&u->th, NULL, unit_main, u) != 0)
        return -1;
    u->running = 1;
    return 0;
}

/* ---- the relay ---- */

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/*
 * The client's bytes: reassembled into 8-byte read requests (FC 3/4, valid CRC), each logged
 * and then handed to the unit it addresses. Routing by slave id here rather than copying every
 * byte to every unit: a libmodbus 3.1.6 server that ignores a request for another slave then
 * waits for that slave's reply ("confirmation to ignore") and, when none comes (a unit that is
 * not there), takes the next request for it; the test is about the client, not that quirk.
 */
static void from_client(trb_bus *b, const uint8_t *p, size_t n)
{
    int64_t now = trb_now_us();
    for (size_t i = 0; i < n; i++) {
        b->frame[b->frame_n++] = p[i];
        if (b->frame_n < 8)
            continue;
        uint16_t crc = (uint16_t)(b->frame[6] | b->frame[7] << 8);
        if (crc != crc16(b->frame, 6) || (b->frame[1] != 3 && b->frame[1] != 4)) {
            memmove(b->frame, b->frame + 1, 7); /* out of step: slide by one byte */
            b->frame_n = 7;
            continue;
        }
        b->frame_n = 0;
        pthread_mutex_lock(&b->mu);
        if (b->log_n < TRB_LOG_MAX) /* logged before the unit can hear it */
            b->log[b->log_n++] = (trb_request){now, b->frame[0], b->frame[1],
                                               (uint16_t)(b->frame[2] << 8 | b->frame[3]),
                                               (uint16_t)(b->frame[4] << 8 | b->frame[5])};
        unit_t *u = find_unit(b, b->frame[0]);
        int plugged = u && !u->unplugged;
        pthread_mutex_unlock(&b->mu);
        if (plugged) {
            u->reply_pos = 0;
            write_all(u->master, b->frame, 8);
        }
    }
}

static void from_unit(trb_bus *b, unit_t *u, uint8_t *p, size_t n)
{
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < n; i++, u->reply_pos++)
        if (u->reply_pos == 3 && u->corrupt > 0) {
            p[i] ^= 0x01;
            u->corrupt--;
        }
    int delay = u->delay_ms;
    pthread_mutex_unlock(&b->mu);
    if (delay <= 0 && u->held_n == 0) {
        write_all(b->master, p, n);
        return;
    }
    if (u->held_n == 0)
        u->release_us = trb_now_us() + (int64_t)delay * 1000;
    size_t room = HELD_MAX - u->held_n;
    if (n > room)
        n = room;
    memcpy(u->held + u->held_n, p, n);
    u->held_n += n;
}

static void release_due(trb_bus *b, int64_t now)
{
    for (int i = 0; i < b->n_units; i++) {
        unit_t *u = &b->units[i];
        if (u->held_n > 0 && u->release_us <= now) {
            write_all(b->master, u->held, u->held_n);
            u->held_n = 0;
        }
    }
}

static int poll_timeout_ms(trb_bus *b, int64_t now)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < b->n_units; i++)
        if (b->units[i].held_n > 0 && b->units[i].release_us < next)
            next = b->units[i].release_us;
    if (next == INT64_MAX)
        return -1;
    return next <= now ? 0 : (int)((next - now + 999) / 1000);
}

static void *relay_main(void *arg)
{
    trb_bus *b = arg;
    struct pollfd pf[2 + TRB_MAX_UNITS];
    uint8_t buf[512];
    for (;;) {
        pf[0] = (struct pollfd){.fd = b->wake[0], .events = POLLIN};
        pf[1] = (struct pollfd){.fd = b->master, .events = POLLIN};
        for (int i = 0; i < b->n_units; i++)
            pf[2 + i] = (struct pollfd){.fd = b->units[i].master, .events = POLLIN};
        int rc = poll(pf, (nfds_t)(2 + b->n_units), poll_timeout_ms(b, trb_now_us()));
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && (pf[0].revents & POLLIN))
            break;
        if (rc > 0 && (pf[1].revents & POLLIN)) {
            ssize_t n = read(b->master, buf, sizeof buf);
            if (n > 0)
                from_client(b, buf, (size_t)n);
        }
        for (int i = 0; rc > 0 && i < b->n_units; i++)
            if (pf[2 + i].revents & POLLIN) {
                ssize_t n = read(b->units[i].master, buf, sizeof buf);
                if (n > 0)
                    from_unit(b, &b->units[i], buf, (size_t)n);
            }
        release_due(b, trb_now_us());
    }
    return NULL;
}

int trb_start(trb_bus *b)
{
    for (int i = 0; i < b->n_units; i++)
        if (start_unit(&b->units[i]) != 0)
            return -1;
    if (pthread_create(&b->relay, NULL, relay_main, b) != 0)
        return -1;
    b->relay_running = 1;
    return 0;
}

void trb_free(trb_bus *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_mutex_unlock(&b->mu);
    if (b->relay_running) {
        write_all(b->wake[1], (const uint8_t *)"x", 1);
        pthread_join(b->relay, NULL);
    }
    for (int i = 0; i < b->n_units; i++) {
        unit_t *u = &b->units[i];
        if (u->running)
            pthread_join(u->th, NULL);
        if (u->ctx) {
            modbus_close(u->ctx);
            modbus_free(u->ctx);
        }
        modbus_mapping_free(u->map);
        close(u->keep);
        close(u->master);
    }
    for (int i = 0; i < 2; i++)
        if (b->wake[i] >= 0)
            close(b->wake[i]);
    if (b->keep >= 0)
        close(b->keep);
    if (b->master >= 0)
        close(b->master);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

const char *trb_path(const trb_bus *b)
{
    return b->path;
}

void trb_set_float(trb_bus *b, int unit, uint16_t addr, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    pthread_mutex_lock(&b->mu);
    unit_t *u = find_unit(b, unit);
    if (u && addr + 1u < TRB_INPUT_REGS) {
        u->map->tab_input_registers[addr] = (uint16_t)(bits >> 16); /* A B: high word first */
        u->map->tab_input_registers[addr + 1] = (uint16_t)(bits & 0xFFFFu);
    }
    pthread_mutex_unlock(&b->mu);
}

void trb_unplug(trb_bus *b, int unit, int unplugged)
{
    pthread_mutex_lock(&b->mu);
    unit_t *u = find_unit(b, unit);
    if (u)
        u->unplugged = unplugged;
    pthread_mutex_unlock(&b->mu);
}

void trb_corrupt(trb_bus *b, int unit, int n)
{
    pthread_mutex_lock(&b->mu);
    unit_t *u = find_unit(b, unit);
    if (u)
        u->corrupt = n;
    pthread_mutex_unlock(&b->mu);
}

void trb_delay(trb_bus *b, int unit, int ms)
{
    pthread_mutex_lock(&b->mu);
    unit_t *u = find_unit(b, unit);
    if (u)
        u->delay_ms = ms;
    pthread_mutex_unlock(&b->mu);
}

size_t trb_requests(trb_bus *b, trb_request *out, size_t max)
{
    pthread_mutex_lock(&b->mu);
    size_t n = b->log_n < max ? b->log_n : max;
    memcpy(out, b->log, n * sizeof *out);
    pthread_mutex_unlock(&b->mu);
    return n;
}

void trb_clear_log(trb_bus *b)
{
    pthread_mutex_lock(&b->mu);
    b->log_n = 0;
    pthread_mutex_unlock(&b->mu);
}
