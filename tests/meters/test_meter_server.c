/*
 * The simulated meters over real Modbus TCP on loopback, read with plain libmodbus client calls
 * (the same library the meter poller uses): SDM630 and SunSpec values equal what was set (SunSpec
 * Wh exactly; SDM630 kWh as the float32 nearest to Wh / 1000, so rounding x 1000 gives the Wh
 * back below 16,384 kWh), 247 unit ids on one port, the exception for an unknown unit, many
 * concurrent clients while counters change (every read is one consistent snapshot), and the
 * socket edge cases: a request split across writes, pipelined requests, bytes that are not
 * Modbus TCP, and the connection limit.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mgx/meter_server.h"

static mtr_server *start_server(unsigned max_clients)
{
    mtr_server_opts o = {"127.0.0.1", 0, max_clients};
    mtr_server *s = NULL;
    assert_int_equal(mtr_server_new(&o, &s), MTR_SERVER_OK);
    assert_non_null(s);
    assert_true(mtr_server_port(s) > 0);
    return s;
}

static modbus_t *client(const mtr_server *s, int unit)
{
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", mtr_server_port(s));
    assert_non_null(ctx);
    modbus_set_response_timeout(ctx, 2, 0);
    assert_int_equal(modbus_connect(ctx), 0);
    assert_int_equal(modbus_set_slave(ctx, unit), 0);
    return ctx;
}

static void client_free(modbus_t *ctx)
{
    modbus_close(ctx);
    modbus_free(ctx);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* kWh float -> Wh, the rule documented in meter_server.h */
static int64_t kwh_to_wh(float kwh)
{
    return (int64_t)llround((double)kwh * 1000.0);
}

static void test_sdm630(void **state)
{
    (void)state;
    mtr_server *s = start_server(0);
    assert_int_equal(mtr_server_add(s, 1, MTR_SERVER_SDM630, "sdm-1"), MTR_SERVER_OK);
    assert_int_equal(mtr_server_set(s, 1, -1234, 12345, 5365), MTR_SERVER_OK);
    assert_int_equal(mtr_server_start(s), MTR_SERVER_OK);
    modbus_t *c = client(s, 1);
    uint16_t r[60];
    /* one block read at 0x0034 of 24 registers: power .. export (0x0034 .. 0x004B) */
    assert_int_equal(modbus_read_input_registers(c, 0x0034, 24, r), 24);
    assert_true(modbus_get_float_abcd(r) == -1234.0f);
    assert_true(modbus_get_float_abcd(r + (0x48 - 0x34)) == 12.345f);
    assert_true(modbus_get_float_abcd(r + (0x4A - 0x34)) == 5.365f);
    assert_int_equal(kwh_to_wh(modbus_get_float_abcd(r + (0x48 - 0x34))), 12345);
    assert_int_equal(kwh_to_wh(modbus_get_float_abcd(r + (0x4A - 0x34))), 5365);
    assert_int_equal(modbus_read_input_registers(c, 0x0000, 2, r), 2);
    assert_true(modbus_get_float_abcd(r) == 230.0f);
    /* live update, then a large counter (9,999,999.999 kWh is far past float32 Wh resolution:
     * only the float nearest to it is promised) */
    assert_int_equal(mtr_server_set(s, 1, 4000, INT64_C(16383999), INT64_C(9999999999)), 0);
    assert_int_equal(modbus_read_input_registers(c, 0x0034, 24, r), 24);
    assert_true(modbus_get_float_abcd(r) == 4000.0f);
    assert_int_equal(kwh_to_wh(modbus_get_float_abcd(r + 20)), INT64_C(16383999));
    assert_true(modbus_get_float_abcd(r + 22) == (float)(9999999999.0 / 1000.0));
    /* the SDM630 refuses more than 60 registers; it has no holding registers here */
    assert_int_equal(modbus_read_input_registers(c, 0, 61, r), -1);
    assert_int_equal(errno, EMBXILVAL);
    assert_int_equal(modbus_read_input_registers(c, 0x0150, 10, r), -1); /* past 0x0157 */
    assert_int_equal(errno, EMBXILADD);
    assert_int_equal(modbus_read_registers(c, 0x0034, 2, r), -1);
    assert_int_equal(errno, EMBXILADD);
    assert_int_equal(modbus_write_register(c, 0, 1), -1); /* read-only meter */
    assert_int_equal(errno, EMBXILFUN);
    /* the connection survives every exception */
    assert_int_equal(modbus_read_input_registers(c, 0x0156, 2, r), 2);
    assert_true(modbus_get_float_abcd(r) == (float)(10016383998.0 / 1000.0)); /* import + export */
    client_free(c);
    mtr_server_stats st;
    mtr_server_get_stats(s, &st);
    assert_int_equal(st.requests, 8);
    assert_int_equal(st.exceptions, 4);
    assert_int_equal(st.connections, 1);
    mtr_server_free(s);
}

/* SunSpec discovery as a client does it: "SunS", then the chain to model 203. */
static unsigned find_model(modbus_t *c, unsigned id)
{
    uint16_t r[2];
    assert_int_equal(modbus_read_registers(c, 40000, 2, r), 2);
    assert_int_equal(r[0], 0x5375);
    assert_int_equal(r[1], 0x6E53);
    unsigned a = 40002;
    for (int guard = 0; guard < 10; guard++) {
        assert_int_equal(modbus_read_registers(c, (int)a, 2, r), 2);
        if (r[0] == 0xFFFF)
            return 0;
        if (r[0] == id)
            return a;
        a += 2u + r[1];
    }
    return 0;
}

static void read_sunspec(modbus_t *c, unsigned m, int64_t *w, int64_t *imp, int64_t *exp)
{
    uint16_t r[37]; /* W (+18) .. TotWh_SF (+54) */
    assert_int_equal(modbus_read_registers(c, (int)m + 18, 37, r), 37);
    int sf = (int16_t)r[22 - 18];
    *w = (int16_t)r[0];
    for (int i = 0; i < sf; i++)
        *w *= 10;
    assert_int_equal((int16_t)r[54 - 18], 0); /* TotWh_SF: counters are plain Wh */
    *exp = (int64_t)((uint32_t)r[38 - 18] << 16 | r[39 - 18]);
    *imp = (int64_t)((uint32_t)r[46 - 18] << 16 | r[47 - 18]);
}

static void test_sunspec(void **state)
{
    (void)state;
    mtr_server *s = start_server(0);
    assert_int_equal(mtr_server_add(s, 2, MTR_SERVER_SUNSPEC, "home-002"), MTR_SERVER_OK);
    assert_int_equal(mtr_server_set(s, 2, 5120, INT64_C(4294967295), 1), MTR_SERVER_OK);
    assert_int_equal(mtr_server_start(s), MTR_SERVER_OK);
    modbus_t *c = client(s, 2);
    unsigned m = find_model(c, 203);
    assert_int_equal(m, 40070);
    int64_t w, imp, exp;
    read_sunspec(c, m, &w, &imp, &exp);
    assert_int_equal(w, 5120);
    assert_int_equal(imp, INT64_C(4294967295)); /* the largest acc32, exact */
    assert_int_equal(exp, 1);
    /* serial number in the common model: SN is 50 registers after its length */
    uint16_t sn[16];
    assert_int_equal(modbus_read_registers(c, 40002 + 2 + 48, 16, sn), 16);
    char text[33] = {0};
    for (int i = 0; i < 16; i++) {
        text[2 * i] = (char)(sn[i] >> 8);
        text[2 * i + 1] = (char)(sn[i] & 0xFF);
    }
    assert_string_equal(text, "home-002");
    /* every counter value the simulation can produce in a year is exact */
    for (int64_t v = 1; v < INT64_C(4000000000); v = v * 7 + 3) {
        assert_int_equal(mtr_server_set(s, 2, -v % 32768, v, v / 2 + 1), 0);
        read_sunspec(c, m, &w, &imp, &exp);
        assert_int_equal(w, -v % 32768);
        assert_int_equal(imp, v);
        assert_int_equal(exp, v / 2 + 1);
    }
    /* discovery's other bases are not there; input registers neither */
    uint16_t r[2];
    assert_int_equal(modbus_read_registers(c, 50000, 2, r), -1);
    assert_int_equal(errno, EMBXILADD);
    assert_int_equal(modbus_read_registers(c, 0, 2, r), -1);
    assert_int_equal(errno, EMBXILADD);
    assert_int_equal(modbus_read_input_registers(c, 40000, 2, r), -1);
    assert_int_equal(errno, EMBXILADD);
    /* a 125-register read is accepted, 126 is not (Modbus limit) */
    uint16_t big[126];
    assert_int_equal(modbus_read_registers(c, 40000, 125, big), 125);
    assert_int_equal(modbus_read_registers(c, 40000, 126, big), -1);
    client_free(c);
    mtr_server_free(s);
}

static void test_many_units(void **state)
{
    (void)state;
    mtr_server *s = start_server(0);
    for (int u = 1; u <= MTR_SERVER_UNITS; u++) {
        mtr_server_profile p = u % 2 ? MTR_SERVER_SDM630 : MTR_SERVER_SUNSPEC;
        assert_int_equal(mtr_server_add(s, (uint8_t)u, p, NULL), MTR_SERVER_OK);
        assert_int_equal(mtr_server_set(s, (uint8_t)u, u * 10, u * 1000 + 1, u * 7 + 1), 0);
    }
    assert_int_equal(mtr_server_start(s), MTR_SERVER_OK);
    modbus_t *c = client(s, 1);
    for (int u = 1; u <= MTR_SERVER_UNITS; u++) {
        assert_int_equal(modbus_set_slave(c, u), 0);
        if (u % 2) {
            uint16_t r[24];
            assert_int_equal(modbus_read_input_registers(c, 0x0034, 24, r), 24);
            assert_true(modbus_get_float_abcd(r) == (float)(u * 10));
            assert_int_equal(kwh_to_wh(modbus_get_float_abcd(r + 20)), u * 1000 + 1);
            assert_int_equal(kwh_to_wh(modbus_get_float_abcd(r + 22)), u * 7 + 1);
        } else {
            int64_t w, imp, exp;
            read_sunspec(c, 40070, &w, &imp, &exp);
            assert_int_equal(w, u * 10);
            assert_int_equal(imp, u * 1000 + 1);
            assert_int_equal(exp, u * 7 + 1);
            uint16_t da;
            assert_int_equal(modbus_read_registers(c, 40068, 1, &da), 1);
            assert_int_equal(da, u); /* the common model's device address is the unit id */
        }
    }
    client_free(c);
    mtr_server_free(s);
}

static void test_unknown_unit(void **state)
{
    (void)state;
    mtr_server *s = start_server(0);
    assert_int_equal(mtr_server_add(s, 5, MTR_SERVER_SDM630, NULL), MTR_SERVER_OK);
    assert_int_equal(mtr_server_start(s), MTR_SERVER_OK);
    modbus_t *c = client(s, 6);
    uint16_t r[2];
    double t0 = now_s();
    assert_int_equal(modbus_read_input_registers(c, 0x34, 2, r), -1);
    assert_int_equal(errno, EMBXGTAR); /* exception 0x0B */
    assert_true(now_s() - t0 < 0.5);   /* at once, not after the client's 2 s timeout */
    /* units 0 (broadcast on serial lines) and 255 are not meters either */
    assert_int_equal(modbus_set_slave(c, 255), 0);
    assert_int_equal(modbus_read_input_registers(c, 0x34, 2, r), -1);
    assert_int_equal(errno, EMBXGTAR);
    assert_int_equal(modbus_set_slave(c, 5), 0);
    assert_int_equal(modbus_read_input_registers(c, 0x34, 2, r), 2);
    client_free(c);
    mtr_server_free(s);
}

/* --- concurrency --------------------------------------------------------------------------- */

#define READERS 8
#define READS   400

typedef struct {
    mtr_server *srv;
    int id;
    atomic_int *stop;
    int errors, torn, reads;
} reader_arg;

/* The writer keeps export = 2 x import and W = import mod 30000 for every unit: a reader that
 * saw a half-written update would break that. */
static void *writer_main(void *arg)
{
    reader_arg *a = arg;
    for (int64_t k = 1; !atomic_load(a->stop); k++)
        for (int u = 1; u <= 16; u++)
            if (mtr_server_set(a->srv, (uint8_t)u, (k * u) % 30000, k * u, 2 * k * u))
                a->errors++;
    return NULL;
}

static void *reader_main(void *arg)
{
    reader_arg *a = arg;
    modbus_t *c = modbus_new_tcp("127.0.0.1", mtr_server_port(a->srv));
    if (!c || modbus_connect(c) != 0) {
        a->errors++;
        modbus_free(c);
        return NULL;
    }
    modbus_set_response_timeout(c, 2, 0);
    for (int i = 0; i < READS; i++) {
        int u = 1 + (a->id + i) % 16;
        modbus_set_slave(c, u);
        uint16_t r[37];
        if (modbus_read_registers(c, 40070 + 18, 37, r) != 37) {
            a->errors++;
            continue;
        }
        int64_t w = (int16_t)r[0];
        int64_t exp = (int64_t)((uint32_t)r[20] << 16 | r[21]);
        int64_t imp = (int64_t)((uint32_t)r[28] << 16 | r[29]);
        if (exp != 2 * imp || w != imp % 30000 || r[4] != 0)
            a->torn++;
        a->reads++;
    }
    modbus_close(c);
    modbus_free(c);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    (void)state;
    mtr_server *s = start_server(0);
    for (int u = 1; u <= 16; u++)
        assert_int_equal(mtr_server_add(s, (uint8_t)u, MTR_SERVER_SUNSPEC, NULL), 0);
    assert_int_equal(mtr_server_start(s), MTR_SERVER_OK);
    atomic_int stop = 0;
    reader_arg wa = {s, 0, &stop, 0, 0, 0}, ra[READERS];
    pthread_t wt, rt[READERS];
    assert_int_equal(pthread_create(&wt, NULL, writer_main, &wa), 0);
    for (int i = 0; i < READERS; i++) {
        ra[i] = (reader_arg){s, i, &stop, 0, 0, 0};
        assert_int_equal(pthread_create(&rt[i], NULL, reader_main, &ra[i]), 0);
    }
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);
    atomic_store(&stop, 1);
    pthread_join(wt, NULL);
    int reads = 0;
    for (int i = 0; i < READERS; i++) {
        assert_int_equal(ra[i].errors, 0);
        assert_int_equal(ra[i].torn, 0);
        reads += ra[i].reads;
    }
    assert_int_equal(reads, READERS * READS);
    assert_int_equal(wa.errors, 0);
    mtr_server_stats st;
    mtr_server_get_stats(s, &st);
    assert_int_equal(st.connections, READERS);
    assert_int_equal(st.requests, READERS * READS);
    mtr_server_free(s);
}

/* --- raw sockets ---------------------------------------------------------------------------- */

static int raw_connect(const mtr_server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(mtr_server_port(s));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void recv_exact(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = recv(fd, p + got, n - got, 0);
        assert_true(k > 0);
        got += (size_t)k;
    }
}

/* recv returns 0 (or a reset) once the server has closed the connection */
static int closed_by_server(int fd)
{
    uint8_t b;
    ssize_t k = recv(fd, &b, 1, 0);
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

static void test_split_and_pipelined(void **state)
{
    (void)state;
    mtr_server *s = start_server(0);
    assert_int_equal(mtr_server_add(s, 1, MTR_SERVER_SDM630, NULL), 0);
    assert_int_equal(mtr_server_set(s, 1, -1234, 1, 1), 0);
    assert_int_equal(mtr_server_start(s), MTR_SERVER_OK);
    /* half a request, then silence: other clients are served meanwhile */
    int slow = raw_connect(s);
    const uint8_t req[] = {0xBE, 0xEF, 0, 0, 0, 6, 1, 4, 0, 0x34, 0, 2};
    send_all(slow, req, 5);
    modbus_t *c = client(s, 1);
    uint16_t r[2];
    double t0 = now_s();
    for (int i = 0; i < 50; i++)
        assert_int_equal(modbus_read_input_registers(c, 0x34, 2, r), 2);
    assert_true(now_s() - t0 < 1.0);
    /* the rest byte by byte */
    for (size_t i = 5; i < sizeof req; i++) {
        send_all(slow, req + i, 1);
        usleep(2000);
    }
    uint8_t out[13];
    recv_exact(slow, out, sizeof out);
    const uint8_t want[] = {0xBE, 0xEF, 0, 0, 0, 7, 1, 4, 4, 0xC4, 0x9A, 0x40, 0x00};
    assert_memory_equal(out, want, sizeof want);
    /* three requests in one write: three replies, in order */
    uint8_t three[36];
    for (int i = 0; i < 3; i++) {
        memcpy(three + 12 * i, req, 12);
        three[12 * i + 1] = (uint8_t)i;
    }
    send_all(slow, three, sizeof three);
    for (int i = 0; i < 3; i++) {
        recv_exact(slow, out, sizeof out);
        assert_int_equal(out[0], 0xBE);
        assert_int_equal(out[1], i);
        assert_memory_equal(out + 2, want + 2, sizeof want - 2);
    }
    /* 600 requests sent without reading a reply: the server stops reading that client while
     * its replies wait, but it loses none and serves the others meanwhile */
    static uint8_t flood[600 * 12];
    for (int i = 0; i < 600; i++) {
        memcpy(flood + 12 * i, req, 12);
        flood[12 * i] = (uint8_t)(i >> 8);
        flood[12 * i + 1] = (uint8_t)i;
    }
    send_all(slow, flood, sizeof flood);
    assert_int_equal(modbus_read_input_registers(c, 0x34, 2, r), 2);
    for (int i = 0; i < 600; i++) {
        recv_exact(slow, out, sizeof out);
        assert_int_equal(out[0] << 8 | out[1], i);
    }
    close(slow);
    client_free(c);
    mtr_server_free(s);
}

static void test_not_modbus(void **state)
{
    (void)state;
    mtr_server *s = start_server(0);
    assert_int_equal(mtr_server_add(s, 1, MTR_SERVER_SDM630, NULL), 0);
    assert_int_equal(mtr_server_start(s), MTR_SERVER_OK);
    int fd = raw_connect(s);
    send_all(fd, (const uint8_t *)"GET / HTTP/1.0\r\n\r\n", 18); /* protocol id "/ " */
    assert_true(closed_by_server(fd));
    close(fd);
    mtr_server_stats st;
    mtr_server_get_stats(s, &st);
    assert_int_equal(st.protocol_errors, 1);
    assert_int_equal(st.requests, 0);
    /* the server is still there */
    modbus_t *c = client(s, 1);
    uint16_t r[2];
    assert_int_equal(modbus_read_input_registers(c, 0x34, 2, r), 2);
    client_free(c);
    mtr_server_free(s);
}

static void test_connection_limit(void **state)
{
    (void)state;
    mtr_server *s = start_server(2);
    assert_int_equal(mtr_server_add(s, 1, MTR_SERVER_SDM630, NULL), 0);
    assert_int_equal(mtr_server_start(s), MTR_SERVER_OK);
    modbus_t *a = client(s, 1), *b = client(s, 1);
    uint16_t r[2];
    assert_int_equal(modbus_read_input_registers(a, 0x34, 2, r), 2);
    assert_int_equal(modbus_read_input_registers(b, 0x34, 2, r), 2);
    int third = raw_connect(s); /* TCP accepts; the server closes it */
    assert_true(closed_by_server(third));
    close(third);
    mtr_server_stats st;
    mtr_server_get_stats(s, &st);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.clients, 2);
    client_free(b); /* a slot frees up */
    for (int i = 0; i < 100; i++) {
        mtr_server_get_stats(s, &st);
        if (st.clients == 1)
            break;
        usleep(10000);
    }
    modbus_t *d = client(s, 1);
    assert_int_equal(modbus_read_input_registers(d, 0x34, 2, r), 2);
    client_free(d);
    client_free(a);
    mtr_server_free(s);
}

static void test_api_errors(void **state)
{
    (void)state;
    mtr_server *s = start_server(0);
    assert_int_equal(mtr_server_add(s, 0, MTR_SERVER_SDM630, NULL), MTR_SERVER_E_INVAL);
    assert_int_equal(mtr_server_add(s, 248, MTR_SERVER_SDM630, NULL), MTR_SERVER_E_INVAL);
    assert_int_equal(mtr_server_add(s, 1, (mtr_server_profile)9, NULL), MTR_SERVER_E_INVAL);
    assert_int_equal(mtr_server_add(s, 1, MTR_SERVER_SUNSPEC, NULL), MTR_SERVER_OK);
    assert_int_equal(mtr_server_add(s, 1, MTR_SERVER_SDM630, NULL), MTR_SERVER_E_UNIT);
    assert_int_equal(mtr_server_set(s, 2, 0, 0, 0), MTR_SERVER_E_UNIT);
    assert_int_equal(mtr_server_set(s, 1, 0, -1, 0), MTR_SERVER_E_RANGE);
    assert_int_equal(mtr_server_set(s, 1, 0, 0, -1), MTR_SERVER_E_RANGE);
    assert_int_equal(mtr_server_set(s, 1, INT64_C(1000000000001), 0, 0), MTR_SERVER_E_RANGE);
    assert_int_equal(mtr_server_set(s, 1, 0, INT64_MAX, 1), MTR_SERVER_E_RANGE);
    assert_int_equal(mtr_server_start(s), MTR_SERVER_OK);
    assert_int_equal(mtr_server_start(s), MTR_SERVER_E_STATE);
    /* the same port again: a clear error, not a silent second server */
    mtr_server_opts o = {"127.0.0.1", mtr_server_port(s), 0};
    mtr_server *t = NULL;
    assert_int_equal(mtr_server_new(&o, &t), MTR_SERVER_E_SOCKET);
    assert_int_equal(errno, EADDRINUSE);
    assert_null(t);
    o.host = "no-such-host.invalid";
    o.port = 0;
    assert_int_equal(mtr_server_new(&o, &t), MTR_SERVER_E_ADDRESS);
    for (int code = 0; code >= -9; code--)
        assert_non_null(mtr_server_strerror(code));
    mtr_server_free(s);
    mtr_server_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdm630),
        cmocka_unit_test(test_sunspec),
        cmocka_unit_test(test_many_units),
        cmocka_unit_test(test_unknown_unit),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_split_and_pipelined),
        cmocka_unit_test(test_not_modbus),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_api_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
