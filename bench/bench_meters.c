/*
 * Meter bench: how many simulated meters one process can poll over Modbus TCP on loopback.
 *
 * For each size N (default 100, 1,000 and 2,000) a child process serves N simulated meters with
 * mtr_server (ceil(N / 247) listeners on ephemeral ports, every counter updated ten times a
 * second like `mgx sim --serve-modbus` does), and this process polls them with the meters
 * library's poller (mtr_poller, the one `mgx meter` runs) at a 1 s period for 10 s. Servers
 * and poller live in different processes so each side's CPU time is its own.
 *
 * Printed per size: polls/s achieved against the N/s asked for, failed or flagged polls, the
 * age of each reading when it arrives (completion time minus the period tick it was due at:
 * p50, p99, max), CPU seconds per second of the poller process and of the servers, and the
 * poller's lanes and threads. Then the baseline in the same process: one thread looping over
 * the same meters with plain libmodbus calls (one connection per listener, one 24-register
 * read per meter) as fast as it can for 2 s: reads/s, per-read latency p50/p99, CPU.
 *
 *   ./build-rel/bench/bench_meters [N...] [--seconds=S] [--profile=sdm630|sunspec]
 *                                  [--connections=K] [--threads=T]
 */
#define _GNU_SOURCE
#include "bench_util.h"
#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "mgx/meter_server.h"
#include "mgx/poller.h"

#include <errno.h>
#include <modbus.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PERIOD_MS     1000
#define MAX_LISTENERS 64

typedef struct {
    int seconds;
    mtr_server_profile profile;
    int connections; /* per listener, the poller's `connections` key */
    unsigned threads;
} bench_opts;

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static double pct(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

/* --- the server side (child process) -------------------------------------------------------- */

/* Serves n meters until the control pipe closes; writes the listeners' ports to port_fd. */
static void serve_child(size_t n, mtr_server_profile profile, int port_fd, int ctl_fd)
{
    size_t ns = (n + MTR_SERVER_UNITS - 1) / MTR_SERVER_UNITS;
    mtr_server *srv[MAX_LISTENERS] = {NULL};
    uint16_t ports[MAX_LISTENERS];
    for (size_t i = 0; i < ns; i++) {
        mtr_server_opts o = {"127.0.0.1", 0, 0};
        if (mtr_server_new(&o, &srv[i]) != 0)
            _exit(1);
        for (size_t u = 0; u < MTR_SERVER_UNITS && i * MTR_SERVER_UNITS + u < n; u++)
            if (mtr_server_add(srv[i], (uint8_t)(u + 1), profile, "bench") ||
                mtr_server_set(srv[i], (uint8_t)(u + 1), 1000, 1000, 1000))
                _exit(1);
        if (mtr_server_start(srv[i]))
            _exit(1);
        ports[i] = mtr_server_port(srv[i]);
    }
    if (write(port_fd, ports, ns * sizeof ports[0]) != (ssize_t)(ns * sizeof ports[0]))
        _exit(1);
    /* counters move like a home importing 1 kW: +1 Wh every 3.6 s, updated every 100 ms */
    double t0 = bench_now_s();
    for (;;) {
        struct pollfd pf = {ctl_fd, POLLIN, 0};
        if (poll(&pf, 1, 100) > 0)
            break; /* EOF: the parent is done */
        int64_t wh = 1000 + (int64_t)((bench_now_s() - t0) / 3.6);
        for (size_t h = 0; h < n; h++)
            mtr_server_set(srv[h / MTR_SERVER_UNITS], (uint8_t)(h % MTR_SERVER_UNITS + 1), 1000, wh,
                           1000);
    }
    for (size_t i = 0; i < ns; i++)
        mtr_server_free(srv[i]);
    _exit(0);
}

/* --- the poller side -------------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    double t0; /* monotonic time of mtr_poller_start: polls are due at t0 + k x period */
    double *age;
    size_t n_age, cap;
    uint32_t *count; /* polls delivered per meter: the k-th one was due at t0 + k x period */
    size_t meters;
    uint64_t failed, flagged, polls;
} collect;

static void on_result(void *ctx, const mtr_poll_result *r)
{
    collect *c = ctx;
    double now = bench_now_s();
    size_t m = (size_t)strtoul(r->sample.meter_id + 2, NULL, 10) - 1; /* "m-0001" */
    pthread_mutex_lock(&c->lock);
    double due = m < c->meters ? c->t0 + (double)c->count[m]++ * PERIOD_MS / 1000 : now;
    c->polls++;
    if (r->rc != MTR_OK)
        c->failed++;
    else if (r->sample.quality != MTR_Q_GOOD)
        c->flagged++;
    if (c->n_age < c->cap)
        c->age[c->n_age++] = (now - due) * 1000;
    pthread_mutex_unlock(&c->lock);
}

static mtr_config *make_config(size_t n, const uint16_t *ports, const bench_opts *o)
{
    mtr_config *cfg = mtr_config_new();
    char err[256], sect[64], val[32];
    int line = 1;
    const char *profile = o->profile == MTR_SERVER_SDM630 ? "sdm630" : "sunspec";
    for (size_t h = 0; cfg && h < n; h++) {
        snprintf(sect, sizeof sect, "meter m-%04zu", h + 1);
        int bad = mtr_config_handle(cfg, sect, NULL, NULL, line++, err, sizeof err) != MTR_OK;
        bad |= mtr_config_handle(cfg, sect, "profile", profile, line++, err, sizeof err) != 0;
        bad |= mtr_config_handle(cfg, sect, "host", "127.0.0.1", line++, err, sizeof err) != 0;
        snprintf(val, sizeof val, "%u", (unsigned)ports[h / MTR_SERVER_UNITS]);
        bad |= mtr_config_handle(cfg, sect, "port", val, line++, err, sizeof err) != 0;
        snprintf(val, sizeof val, "%zu", h % MTR_SERVER_UNITS + 1);
        bad |= mtr_config_handle(cfg, sect, "unit", val, line++, err, sizeof err) != 0;
        snprintf(val, sizeof val, "%d", PERIOD_MS);
        bad |= mtr_config_handle(cfg, sect, "poll_ms", val, line++, err, sizeof err) != 0;
        snprintf(val, sizeof val, "%d", o->connections);
        bad |= mtr_config_handle(cfg, sect, "connections", val, line++, err, sizeof err) != 0;
        if (bad) {
            fprintf(stderr, "bench_meters: config: %s\n", err);
            mtr_config_free(cfg);
            return NULL;
        }
    }
    if (cfg && mtr_config_finish(cfg, err, sizeof err) != MTR_OK) {
        fprintf(stderr, "bench_meters: config: %s\n", err);
        mtr_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static int bench_poller(size_t n, const uint16_t *ports, const bench_opts *o, double *cpu_out)
{
    mtr_config *cfg = make_config(n, ports, o);
    if (!cfg)
        return -1;
    collect c = {PTHREAD_MUTEX_INITIALIZER, 0, NULL, 0, 0, NULL, n, 0, 0, 0};
    c.cap = n * (size_t)(o->seconds + 2) * 2;
    c.age = malloc(c.cap * sizeof *c.age);
    c.count = calloc(n, sizeof *c.count);
    mtr_poller_options po = {o->threads, 0, on_result, &c, NULL, NULL};
    mtr_poller *p = c.age && c.count ? mtr_poller_new(cfg, &po) : NULL;
    if (!p) {
        fprintf(stderr, "bench_meters: out of memory\n");
        free(c.age);
        free(c.count);
        mtr_config_free(cfg);
        return -1;
    }
    double cpu0 = cpu_s(RUSAGE_SELF);
    c.t0 = bench_now_s();
    if (mtr_poller_start(p) != MTR_OK) {
        fprintf(stderr, "bench_meters: poller did not start\n");
        return -1;
    }
    /* `seconds` due ticks (0 .. seconds-1 s), stopping half a period after the last so its
     * round can finish; polls/s = polls / (ticks x period). The first round includes connecting
     * (and SunSpec discovery). */
    struct timespec d = {o->seconds - 1, 500000000};
    while (nanosleep(&d, &d) != 0 && errno == EINTR)
        ;
    mtr_poller_stop(p);
    double wall = bench_now_s() - c.t0, cpu = cpu_s(RUSAGE_SELF) - cpu0;
    double ticks = (double)((int64_t)(wall * 1000) / PERIOD_MS + 1);
    mtr_poller_stats st;
    mtr_poller_stats_get(p, &st);
    qsort(c.age, c.n_age, sizeof *c.age, bench_cmp_double);
    printf("%7zu  %-9s %9.0f %9zu %7llu %7llu %8.2f %8.2f %8.2f %8.3f %8s %5zu/%-3u\n", n, "poller",
           (double)c.polls / (ticks * PERIOD_MS / 1000), n * 1000 / PERIOD_MS,
           (unsigned long long)c.failed, (unsigned long long)c.flagged, pct(c.age, c.n_age, 0.5),
           pct(c.age, c.n_age, 0.99), c.n_age ? c.age[c.n_age - 1] : 0, cpu / wall, "",
           mtr_poller_lanes(p), mtr_poller_threads(p));
    if (st.overruns)
        printf("         (%llu overruns: polls skipped a period behind; ages after them are "
               "understated)\n",
               (unsigned long long)st.overruns);
    *cpu_out = cpu;
    mtr_poller_free(p);
    mtr_config_free(cfg);
    free(c.age);
    free(c.count);
    return 0;
}

/* Single thread, plain libmodbus, one connection per listener, as fast as it goes. */
static int bench_baseline(size_t n, const uint16_t *ports, mtr_server_profile profile)
{
    size_t ns = (n + MTR_SERVER_UNITS - 1) / MTR_SERVER_UNITS;
    modbus_t *ctx[MAX_LISTENERS] = {NULL};
    int rc = -1;
    size_t cap = 4000000, n_lat = 0;
    double *lat = malloc(cap * sizeof *lat);
    uint64_t errors = 0;
    for (size_t i = 0; i < ns; i++) {
        ctx[i] = modbus_new_tcp("127.0.0.1", ports[i]);
        if (!ctx[i] || modbus_connect(ctx[i]) != 0) {
            fprintf(stderr, "bench_meters: baseline cannot connect\n");
            goto out;
        }
    }
    double cpu0 = cpu_s(RUSAGE_SELF), t0 = bench_now_s(), t;
    uint16_t regs[40];
    for (size_t h = 0; (t = bench_now_s()) - t0 < 2.0; h = (h + 1) % n) {
        modbus_t *c = ctx[h / MTR_SERVER_UNITS];
        modbus_set_slave(c, (int)(h % MTR_SERVER_UNITS + 1));
        int got = profile == MTR_SERVER_SDM630 ? modbus_read_input_registers(c, 0x0034, 24, regs)
                                               : modbus_read_registers(c, 40070 + 18, 37, regs);
        double dt = bench_now_s() - t;
        errors += got < 0;
        if (lat && n_lat < cap)
            lat[n_lat++] = dt * 1000;
    }
    double wall = bench_now_s() - t0, cpu = cpu_s(RUSAGE_SELF) - cpu0;
    qsort(lat, n_lat, sizeof *lat, bench_cmp_double);
    printf(
        "%7zu  %-9s %9.0f %9s %7llu %7s %8.3f %8.3f %8.3f %8.3f  (per read; 1 thread, %zu conn)\n",
        n, "baseline", (double)n_lat / wall, "max", (unsigned long long)errors, "-",
        pct(lat, n_lat, 0.5), pct(lat, n_lat, 0.99), n_lat ? lat[n_lat - 1] : 0, cpu / wall, ns);
    rc = 0;
out:
    for (size_t i = 0; i < ns; i++)
        if (ctx[i]) {
            modbus_close(ctx[i]);
            modbus_free(ctx[i]);
        }
    free(lat);
    return rc;
}

static int run_size(size_t n, const bench_opts *o)
{
    size_t ns = (n + MTR_SERVER_UNITS - 1) / MTR_SERVER_UNITS;
    if (ns > MAX_LISTENERS) {
        fprintf(stderr, "bench_meters: at most %d meters\n", MAX_LISTENERS * MTR_SERVER_UNITS);
        return -1;
    }
    int port_pipe[2], ctl_pipe[2];
    if (pipe(port_pipe) || pipe(ctl_pipe))
        return -1;
    double child_cpu0 = cpu_s(RUSAGE_CHILDREN);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(port_pipe[0]);
        close(ctl_pipe[1]);
        serve_child(n, o->profile, port_pipe[1], ctl_pipe[0]);
    }
    close(port_pipe[1]);
    close(ctl_pipe[0]);
    uint16_t ports[MAX_LISTENERS];
    int rc = -1;
    double t0 = bench_now_s(), poller_cpu = 0;
    if (read(port_pipe[0], ports, ns * sizeof ports[0]) != (ssize_t)(ns * sizeof ports[0])) {
        fprintf(stderr, "bench_meters: the server process failed\n");
        goto out;
    }
    if (bench_poller(n, ports, o, &poller_cpu) || bench_baseline(n, ports, o->profile))
        goto out;
    rc = 0;
out:
    close(ctl_pipe[1]);
    close(port_pipe[0]);
    int st;
    waitpid(pid, &st, 0);
    double wall = bench_now_s() - t0, server_cpu = cpu_s(RUSAGE_CHILDREN) - child_cpu0;
    if (rc == 0)
        printf("%7s  servers: %.3f CPU s/s over both runs (%zu listener%s, counters updated "
               "every 100 ms)\n",
               "", server_cpu / wall, ns, ns > 1 ? "s" : "");
    return rc;
}

int main(int argc, char **argv)
{
    bench_opts o = {10, MTR_SERVER_SDM630, 1, 0};
    size_t sizes[16], n_sizes = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--seconds=", 10) == 0)
            o.seconds = atoi(argv[i] + 10);
        else if (strcmp(argv[i], "--profile=sunspec") == 0)
            o.profile = MTR_SERVER_SUNSPEC;
        else if (strcmp(argv[i], "--profile=sdm630") == 0)
            o.profile = MTR_SERVER_SDM630;
        else if (strncmp(argv[i], "--connections=", 14) == 0)
            o.connections = atoi(argv[i] + 14);
        else if (strncmp(argv[i], "--threads=", 10) == 0)
            o.threads = (unsigned)atoi(argv[i] + 10);
        else if (argv[i][0] != '-' && n_sizes < 16 && atol(argv[i]) > 0)
            sizes[n_sizes++] = (size_t)atol(argv[i]);
        else {
            fprintf(stderr, "usage: bench_meters [N...] [--seconds=S] "
                            "[--profile=sdm630|sunspec] [--connections=K] [--threads=T]\n");
            return 2;
        }
    }
    if (o.seconds < 2 || o.connections < 1) {
        fprintf(stderr, "bench_meters: --seconds >= 2 and --connections >= 1\n");
        return 2;
    }
    if (n_sizes == 0) {
        sizes[0] = 100;
        sizes[1] = 1000;
        sizes[2] = 2000;
        n_sizes = 3;
    }
    signal(SIGPIPE, SIG_IGN);
    printf("meter bench: %s meters on 127.0.0.1, period %d ms, %d s per size, %d connection%s "
           "per listener\n\n",
           o.profile == MTR_SERVER_SDM630 ? "sdm630" : "sunspec", PERIOD_MS, o.seconds,
           o.connections, o.connections > 1 ? "s" : "");
    printf("poller rows: p50/p99/max = how late a reading arrives (completion - due time);\n"
           "baseline rows: latency of one read, one thread looping as fast as it can.\n\n");
    printf("%7s  %-9s %9s %9s %7s %7s %8s %8s %8s %8s %8s %9s\n", "meters", "mode", "polls/s",
           "asked/s", "failed", "flagged", "p50 ms", "p99 ms", "max ms", "CPU s/s", "",
           "lanes/thr");
    for (size_t i = 0; i < n_sizes; i++)
        if (run_size(sizes[i], &o))
            return 1;
    return 0;
}
