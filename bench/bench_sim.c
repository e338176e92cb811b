/*
 * Simulator benchmark: a year at 15-minute intervals for communities of 100, 1,000 and 10,000
 * homes (or the sizes given on the command line). Each size runs in a child process so its peak
 * memory (ru_maxrss) is its own. Prints homes x intervals per second, wall time, peak memory and
 * the cost per home-interval relative to the smallest size (1.00 everywhere = linear scaling).
 *
 * usage: bench_sim [HOMES...] [--days=N] [--threads=T]   (T: sim_scenario.threads, default 1)
 *        bench_sim HOMES --days=N --ab=T [--repeat=R]
 * The second form runs one size R times (default 5) on one thread and on T threads, alternating
 * (1, T, 1, T, ...) so that both see the same load on a shared machine, prints every run's wall
 * and CPU seconds, the medians and the speed-up (median wall on 1 / on T), and checks that both
 * traded the same energy.
 */
#define _GNU_SOURCE
#include "mgx/sim.h"

#include "bench_util.h"

#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void group(sim_scenario *sc, const char *name, uint32_t count, double kwp, double bat,
                  sim_agent_kind agent)
{
    sim_group *g = &sc->groups[sc->n_groups++];
    sim_group_defaults(g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->count = count;
    g->pv_kwp = kwp;
    g->battery_kwh = bat;
    g->battery_kw = bat / 2;
    g->annual_kwh = 4000;
    g->agent = agent;
}

/* A mixed community: 40 % PV only, 20 % PV + battery, 40 % consumers; four strategies. */
static void community(sim_scenario *sc, uint32_t homes, uint32_t days)
{
    sim_scenario_defaults(sc);
    snprintf(sc->name, sizeof sc->name, "bench-%u", homes);
    sc->latitude_deg = 48.1;
    sc->longitude_deg = 11.6;
    sc->utc_offset_min = 60;
    sc->start_year = 2025;
    sc->start_month = 1;
    sc->start_day = 1;
    sc->days = days;
    sc->interval_min = 15;
    sc->n_groups = 0;
    uint32_t pv = homes * 4 / 10, bat = homes * 2 / 10;
    group(sc, "pv-truthful", pv / 2, 5, 0, SIM_AGENT_TRUTHFUL);
    group(sc, "pv-zic", pv - pv / 2, 5, 0, SIM_AGENT_ZIC);
    group(sc, "battery-zip", bat, 8, 10, SIM_AGENT_ZIP);
    group(sc, "consumer", homes - pv - bat, 0, 0, SIM_AGENT_MARKUP);
}

/* Child: one run on threads threads; writes wall seconds and the energy traded to fd. */
static int child(uint32_t homes, uint32_t days, uint32_t threads, int fd)
{
    gsl_set_error_handler_off();
    sim_scenario *sc = malloc(sizeof *sc);
    if (!sc)
        return 1;
    community(sc, homes, days);
    sc->threads = threads;
    sim_result *r = NULL;
    char err[256];
    double t0 = bench_now_s();
    int rc = sim_run(sc, NULL, 1, NULL, &r, err, sizeof err);
    double t = bench_now_s() - t0;
    if (rc) {
        fprintf(stderr, "bench_sim: %s\n", err);
        return 1;
    }
    double local = (double)sim_result_kpis(r)->local_traded_wh;
    double out[2] = {t, local};
    if (write(fd, out, sizeof out) != (ssize_t)sizeof out)
        return 1;
    sim_result_free(r);
    free(sc);
    return 0;
}

/* One run in a child process: wall seconds, traded Wh, CPU seconds (all threads), peak KiB. */
static int run_child(uint32_t homes, uint32_t days, uint32_t threads, double *wall, double *traded,
                     double *cpu, double *maxrss_kib)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        _exit(child(homes, days, threads, pfd[1]));
    }
    close(pfd[1]);
    double res[2] = {0, 0};
    ssize_t got = read(pfd[0], res, sizeof res);
    close(pfd[0]);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || got != (ssize_t)sizeof res || status != 0)
        return -1;
    *wall = res[0];
    *traded = res[1];
    *cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    *maxrss_kib = (double)ru.ru_maxrss;
    return 0;
}

/* --ab: one thread against threads threads, alternating, repeat times each. */
static int run_ab(uint32_t homes, uint32_t days, uint32_t threads, uint32_t repeat)
{
    double w[2][64], c[2][64], traded[2] = {0, 0};
    if (repeat > 64)
        repeat = 64;
    printf("mgx sim A/B: %u homes, %u days at 15 min, 1 thread vs %u, alternating, %u runs each\n",
           homes, days, threads, repeat);
    printf("%4s %8s %10s %10s %10s\n", "run", "threads", "wall s", "CPU s", "peak MiB");
    for (uint32_t r = 0; r < repeat; r++)
        for (int a = 0; a < 2; a++) {
            uint32_t t = a ? threads : 1;
            double tr, rss;
            if (run_child(homes, days, t, &w[a][r], &tr, &c[a][r], &rss)) {
                fprintf(stderr, "bench_sim: run for %u homes failed\n", homes);
                return 1;
            }
            if (r > 0 && tr != traded[a]) {
                fprintf(stderr, "bench_sim: runs differ\n");
                return 1;
            }
            traded[a] = tr;
            printf("%4u %8u %10.2f %10.2f %10.1f\n", r + 1, t, w[a][r], c[a][r], rss / 1024.0);
        }
    if (traded[0] != traded[1]) {
        fprintf(stderr, "bench_sim: 1 and %u threads traded different energy\n", threads);
        return 1;
    }
    double mw1 = bench_median(w[0], repeat), mw2 = bench_median(w[1], repeat);
    double mc1 = bench_median(c[0], repeat), mc2 = bench_median(c[1], repeat);
    printf("median: 1 thread %.2f s wall (%.2f s CPU), %u threads %.2f s wall (%.2f s CPU): "
           "speed-up %.2fx\n",
           mw1, mc1, threads, mw2, mc2, mw1 / mw2);
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t sizes[8] = {100, 1000, 10000};
    size_t n_sizes = 3;
    uint32_t days = 365, threads = 1, ab = 0, repeat = 5;
    if (argc > 1) {
        n_sizes = 0;
        for (int i = 1; i < argc && n_sizes < 8; i++) {
            if (strncmp(argv[i], "--days=", 7) == 0)
                days = (uint32_t)strtoul(argv[i] + 7, NULL, 10);
            else if (strncmp(argv[i], "--ab=", 5) == 0)
                ab = (uint32_t)strtoul(argv[i] + 5, NULL, 10);
            else if (strncmp(argv[i], "--repeat=", 9) == 0)
                repeat = (uint32_t)strtoul(argv[i] + 9, NULL, 10);
            else if (strncmp(argv[i], "--threads=", 10) == 0)
                threads = (uint32_t)strtoul(argv[i] + 10, NULL, 10);
            else
                sizes[n_sizes++] = (uint32_t)strtoul(argv[i], NULL, 10);
        }
    }
    if (ab > 1)
        return run_ab(sizes[0], days, ab, repeat ? repeat : 1);
    printf("mgx sim benchmark: %u days at 15 min (%u intervals), mixed community, %u thread%s\n",
           days, days * 96, threads ? threads : 1, threads > 1 ? "s" : "");
    printf("%8s %12s %10s %16s %12s %10s\n", "homes", "home-ivals", "wall s", "home-ivals/s",
           "peak MiB", "vs first");
    double first_ns = 0;
    for (size_t i = 0; i < n_sizes; i++) {
        int pfd[2];
        if (pipe(pfd) != 0)
            return 1;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            _exit(child(sizes[i], days, threads, pfd[1]));
        }
        close(pfd[1]);
        double res[2] = {0, 0};
        ssize_t got = read(pfd[0], res, sizeof res);
        close(pfd[0]);
        int status;
        struct rusage ru;
        if (wait4(pid, &status, 0, &ru) < 0 || got != (ssize_t)sizeof res || status != 0) {
            fprintf(stderr, "bench_sim: run for %u homes failed\n", sizes[i]);
            return 1;
        }
        double cells = (double)sizes[i] * days * 96.0;
        double ns = res[0] * 1e9 / cells;
        if (i == 0)
            first_ns = ns;
        printf("%8u %12.3g %10.2f %16.3g %12.1f %9.2fx\n", sizes[i], cells, res[0],
               cells / res[0], (double)ru.ru_maxrss / 1024.0, ns / first_ns);
    }
    return 0;
}
