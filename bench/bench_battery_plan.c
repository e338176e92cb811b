/*
 * Battery scheduler benchmark: the time to plan one home's battery over a 24 h horizon at
 * 15 min (96 intervals), 10 kWh / 5 kW, the default discretisation (200 steps of the window)
 * and a finer one, with a day of PV surplus and evening load and a two-rate tariff. Prints the
 * median and the slowest of the rounds, in ms per home (the goal of issue 15: under 10 ms).
 *   ./build-rel/bench/bench_battery_plan [ROUNDS]
 */

#include "mgx/battery_plan.h"

#include "bench_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define N 96
#define PI 3.14159265358979323846

static void day(sim_plan_interval *iv, unsigned seed)
{
    srand(seed);
    for (int k = 0; k < N; k++) {
        double h = k / 4.0;
        double pv = h > 6 && h < 20 ? 1800.0 * sin(PI * (h - 6) / 14) : 0;
        double load = 150 + (h > 17 && h < 22 ? 450 : 0) + rand() % 100;
        iv[k].net_wh = (int64_t)llround(load - pv);
        iv[k].import_uc_per_kwh = h >= 17 && h < 21 ? 450000 : 300000;
        iv[k].export_uc_per_kwh = 80000;
    }
}

static int run(const char *label, int64_t step_wh, int rounds)
{
    sim_plan_battery b = {1000, 9500, 5000, 1250, 1250, 959, 959, SIM_PLAN_NO_CAP,
                          SIM_PLAN_NO_CAP, 76000, step_wh};
    size_t len = sim_plan_workspace_size(&b, N);
    void *work = malloc(len);
    double *ms = malloc((size_t)rounds * sizeof *ms);
    sim_plan_interval iv[N];
    sim_plan_step out[N];
    int rc = 1;
    if (!work || !ms)
        goto out;
    for (int r = 0; r < rounds; r++) {
        day(iv, (unsigned)r + 1);
        int64_t total;
        double t0 = bench_now_s();
        if (sim_plan_solve(&b, iv, N, work, len, out, &total))
            goto out;
        ms[r] = (bench_now_s() - t0) * 1e3;
    }
    double worst = 0;
    for (int r = 0; r < rounds; r++)
        worst = ms[r] > worst ? ms[r] : worst;
    printf("%-28s step %4lld Wh, %4lld states: median %.3f ms, max %.3f ms per home "
           "(%d homes)\n",
           label, (long long)(step_wh ? step_wh : (b.max_wh - b.min_wh) / SIM_PLAN_DEFAULT_STATES),
           (long long)((b.max_wh - b.min_wh) /
                       (step_wh ? step_wh : (b.max_wh - b.min_wh) / SIM_PLAN_DEFAULT_STATES)) + 1,
           bench_median(ms, (size_t)rounds), worst, rounds);
    rc = 0;
out:
    free(work);
    free(ms);
    return rc;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 1000;
    if (rounds < 1)
        rounds = 1;
    printf("mgx battery plan: 24 h at 15 min (96 intervals), 10 kWh / 5 kW battery, one core\n");
    if (run("default discretisation", 0, rounds) || run("fine (10 Wh)", 10, rounds / 10 + 1)) {
        fprintf(stderr, "bench_battery_plan: plan failed\n");
        return 1;
    }
    return 0;
}
