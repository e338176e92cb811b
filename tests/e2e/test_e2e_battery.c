/*
 * Battery dispatch end to end (label integration): agents steering simulated batteries over
 * Modbus for a simulated day (tests/e2e/battery-tou.ini: two battery homes, one consumer, an
 * evening peak tariff).
 *
 * Started on 127.0.0.1 with one --clock-speed and anchor: a mosquitto broker, `mgx sim
 * --serve-modbus` (meters, and a SunSpec model 124 inverter per battery home, --inverter-list),
 * `mgx meter` (reads the meters onto the bus), and one `mgx agent` per home; the battery homes'
 * agents have a [battery] section for their inverter (docs/agent.md, "Battery dispatch"). No
 * controller: dispatch does not need one (the agents' preferences go unanswered).
 *
 * Each agent, when interval k is complete, plans from k + 2 and writes that interval's power,
 * logging "battery: interval N: plan X Wh (W W) ...". Checks, after the day:
 *  (1) no setpoint failed and no control was released for a failure;
 *  (2) the metered flows follow the plans: in the served simulation's flows (home_intervals.csv,
 *      what the Modbus meters serve, exactly: test_sim_serve) the battery's AC flow
 *      import - export - (load - PV) of interval N equals the plan's W x 900 / 3600 Wh (within
 *      2 Wh: the state of charge is read in 0.01 % steps) for at least half the planned
 *      intervals of each home; otherwise it may equal the previous interval's plan (a setpoint
 *      that reached the inverter after N's start: timing, printed) or, only after such a late
 *      interval, neither; never neither right after an interval that followed its plan.
 *      Interval 0 is left out: the simulator computes it when it starts, before any agent runs;
 *  (3) the in-process simulator (sim_run) with the same policy, the agents' setpoints as
 *      battery hook (sim_hooks.on_battery: the plan of N in N), gives exactly the served run's
 *      flows for every home in every interval whose setpoints all arrived in time.
 *  (4) one battery home's agent is killed with SIGKILL at 18:00 (no release): its inverter's
 *      revert timer gives the battery back to its own mode (the simulator logs it), the other
 *      inverter never reverts.
 * What differs from the in-process `battery_policy = schedule` and why: docs/agent.md.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "files.h"
#include "shell.h"
#include "mgx/scenario.h"
#include "mgx/sim.h"

#define COMMUNITY "e2eb"
#define MAX_HOMES 4
#define MAX_K 160
#define STARTUP_S 12
#define SPEED 720

typedef struct {
    char *bin; /* $MGX_BIN, copied */
    char *dir;
    tst_broker *broker;
    pid_t procs[MAX_HOMES + 4];
    size_t n_procs;
    sim_scenario sc;
    size_t homes;
    char ids[MAX_HOMES][64];
    int battery[MAX_HOMES];
    int64_t first_interval;
    /* per home and interval: the plan's W (has_plan), and the served flows */
    int has_plan[MAX_HOMES][MAX_K];
    int64_t plan_w[MAX_HOMES][MAX_K];
    int64_t load[MAX_HOMES][MAX_K], pv[MAX_HOMES][MAX_K], imp[MAX_HOMES][MAX_K],
        exp[MAX_HOMES][MAX_K];
    int in_time[MAX_K]; /* every battery home's interval followed its plan */
    size_t mismatched;  /* in-process replay: flows that differ in such intervals */
    int64_t interval_s; /* the scenario's */
    int fitted;         /* the agents forecast with their PV and battery meters */
    size_t flows, differ; /* the fitted test: flows compared with the in-process run, differing */
} world;

static world *W;

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t cap, const char *fmt, ...)
{
    int n = snprintf(out, cap, "%s/", W->dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Starts argv with stdout and stderr to log, dying with the test. */
static pid_t spawn(const char *log, char *const argv[])
{
    pid_t pid = tst_spawn_logged(log, argv);
    W->procs[W->n_procs++] = pid;
    return pid;
}

static void run(char *const argv[])
{
    char log[4096];
    pathf(log, sizeof log, "setup.log");
    pid_t pid = spawn(log, argv);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    W->n_procs--;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void stop_all(void)
{
    for (size_t i = 0; i < W->n_procs; i++)
        if (W->procs[i] > 0)
            kill(W->procs[i], SIGTERM);
    for (size_t i = 0; i < W->n_procs; i++)
        if (W->procs[i] > 0 && tst_wait_exit(W->procs[i], 5000) < 0) {
            kill(W->procs[i], SIGKILL);
            waitpid(W->procs[i], NULL, 0);
        }
    W->n_procs = 0;
}

static int setup(void **state)
{
    (void)state;
    W = calloc(1, sizeof *W);
    if (!W)
        return -1;
    const char *bin = getenv("MGX_BIN");
    W->bin = bin ? strdup(bin) : NULL;
    W->dir = tst_tmpdir("e2e-battery");
    W->interval_s = 900;
    W->broker = tst_broker_start(NULL);
    return W->bin && W->dir && W->broker ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    stop_all();
    tst_broker_free(W->broker);
    if (getenv("MGX_E2E_KEEP"))
        fprintf(stderr, "e2e-battery: kept %s\n", W->dir);
    else
        tst_rmtree(W->dir);
    free(W->dir);
    free(W->bin);
    free(W);
    return 0;
}

static int home_of(const char *id)
{
    for (size_t h = 0; h < W->homes; h++)
        if (strcmp(W->ids[h], id) == 0)
            return (int)h;
    return -1;
}

/* The agent's config; with an inverter line (home,host,port,unit,...) a [battery] section. */
static void write_agent(size_t h, const char *inverter_row)
{
    char key[4096], ini[4096], outbox[4096];
    pathf(key, sizeof key, "%s", W->ids[h]);
    run((char *const[]){W->bin, "keygen", "--out", key, NULL});
    pathf(key, sizeof key, "%s.key", W->ids[h]);
    pathf(ini, sizeof ini, "%s.ini", W->ids[h]);
    pathf(outbox, sizeof outbox, "%s-outbox.db", W->ids[h]);
    FILE *f = fopen(ini, "w");
    assert_non_null(f);
    fprintf(f,
            "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = %s\n\n"
            "[agent]\nparticipant = %s\nkey_file = %s\noutbox = %s\nstrategy = truthful\n"
            "feed_in_uc_per_kwh = %lld\nretail_uc_per_kwh = %lld\nnetwork_fee_uc_per_kwh = %lld\n"
            "interval_s = %lld\nmax_reading_gap_s = 600\ntiming = ex_post\n",
            tst_broker_port(W->broker), COMMUNITY, W->ids[h], key, outbox,
            (long long)W->sc.feed_in_uc_per_kwh, (long long)W->sc.retail_uc_per_kwh,
            (long long)W->sc.network_fee_uc_per_kwh, (long long)W->interval_s);
    if (inverter_row && W->fitted) /* the home's PV and battery meters, place and plane */
        fprintf(f,
                "pv_meter_id = %s-pv\nbattery_meter_id = %s-battery\nlatitude = %.6f\n"
                "longitude = %.6f\npv_tilt = %.3f\npv_azimuth = %.3f\n",
                W->ids[h], W->ids[h], W->sc.latitude_deg, W->sc.longitude_deg,
                W->sc.groups[0].pv_tilt_deg, W->sc.groups[0].pv_azimuth_deg);
    if (inverter_row) {
        char host[64];
        int port, unit;
        long long cap, w;
        assert_int_equal(sscanf(inverter_row, "%*[^,],%63[^,],%d,%d,%lld,%lld", host, &port,
                                &unit, &cap, &w),
                         5);
        const sim_group *g = &W->sc.groups[0];
        fprintf(f,
                "\n[battery]\nhost = %s\nport = %d\nunit = %d\ncapacity_wh = %lld\npower_w = "
                "%lld\nround_trip_efficiency_permille = %lld\nsoc_min_permille = %lld\n"
                "soc_max_permille = %lld\nretail_peak_uc_per_kwh = %lld\npeak_start_h = %u\n"
                "peak_end_h = %u\nutc_offset_min = %d\n",
                host, port, unit, cap, w, (long long)llround(g->battery_efficiency * 1000),
                (long long)llround(g->soc_min * 1000), (long long)llround(g->soc_max * 1000),
                (long long)W->sc.retail_peak_uc_per_kwh, W->sc.peak_start_h, W->sc.peak_end_h,
                (int)W->sc.utc_offset_min);
        if (W->fitted)
            fprintf(f, "min_gain_uc = %lld\nspread_min = %u\n",
                    (long long)g->schedule_min_gain_uc, g->schedule_spread_min);
    }
    assert_int_equal(fclose(f), 0);
}

/* The agents' plans from their logs. Returns the failure lines seen. */
static size_t read_plans(void)
{
    size_t failures = 0;
    for (size_t h = 0; h < W->homes; h++) {
        if (!W->battery[h])
            continue;
        char log[4096], line[1024];
        pathf(log, sizeof log, "agent-%s.log", W->ids[h]);
        FILE *f = fopen(log, "r");
        assert_non_null(f);
        while (fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "battery: interval ");
            long long n, wh, w;
            if (strstr(line, "failed") || strstr(line, "no state of charge") ||
                strstr(line, "no plan")) {
                fprintf(stderr, "e2e-battery: %s: %s", W->ids[h], line);
                failures++;
            }
            if (!p || sscanf(p, "battery: interval %lld: plan %lld Wh (%lld W)", &n, &wh, &w) != 3)
                continue;
            int64_t k = n - W->first_interval;
            if (k >= 0 && k < MAX_K) {
                W->has_plan[h][k] = 1;
                W->plan_w[h][k] = w;
            }
        }
        fclose(f);
    }
    return failures;
}

static void read_flows(const char *csv)
{
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char name[80], when[40];
        size_t k;
        long long load, pv, imp, exp;
        if (sscanf(line, "%79[^,],%zu,%39[^,],%lld,%lld,%lld,%lld", name, &k, when, &load, &pv,
                   &imp, &exp) != 7 ||
            k >= MAX_K)
            continue;
        int h = home_of(name);
        assert_true(h >= 0);
        W->load[h][k] = load;
        W->pv[h][k] = pv;
        W->imp[h][k] = imp;
        W->exp[h][k] = exp;
    }
    fclose(f);
}

static int64_t battery_ac(size_t h, size_t k)
{
    return W->imp[h][k] - W->exp[h][k] - (W->load[h][k] - W->pv[h][k]);
}

static int64_t wh_of(int64_t w)
{
    return w * W->interval_s / 3600;
}

static int near(int64_t a, int64_t b)
{
    return a - b <= 2 && b - a <= 2;
}

/* The in-process replay: the agents' setpoints as the battery hook. */
static int replay_battery(size_t home, size_t k, int64_t stored, int64_t cap, void *ctx,
                          int64_t *sp)
{
    (void)stored;
    (void)cap;
    (void)ctx;
    if (home >= W->homes || k >= MAX_K || !W->has_plan[home][k])
        return 0;
    *sp = wh_of(W->plan_w[home][k]);
    return 1;
}

static void replay_flow(const sim_flow *f, void *ctx)
{
    (void)ctx;
    size_t h = f->home, k = f->interval;
    if (h >= W->homes || k >= MAX_K || !W->in_time[k])
        return;
    if (f->import_wh != W->imp[h][k] || f->export_wh != W->exp[h][k]) {
        fprintf(stderr, "e2e-battery: replay differs: %s interval %zu: import %lld/%lld, export "
                        "%lld/%lld Wh\n",
                W->ids[h], k, (long long)f->import_wh, (long long)W->imp[h][k],
                (long long)f->export_wh, (long long)W->exp[h][k]);
        W->mismatched++;
    }
}

/* One run's processes on one clock (speed times real time, simulated start_utc at anchor_s):
 * `mgx sim --serve-modbus` on scenario (with sim_extra, one more argument, unless NULL), `mgx
 * meter` on the meters it serves, and one `mgx agent` per home, the battery homes (those in the
 * sim's inverter list: W->battery) with their inverter. Returns the pid of the last battery
 * home's agent, its home in *last_battery. */
static pid_t start_run(char *scenario, char *sim_extra, int speed, int64_t anchor_s,
                       int64_t start_utc, size_t *last_battery)
{
    char speed_s[16], anchor[64], start_ms[32], sim_out[4096], meters_sim[4096], inv[4096],
        meters[4096], outbox[4096], log[4096];
    snprintf(speed_s, sizeof speed_s, "%d", speed);
    snprintf(anchor, sizeof anchor, "%lld:%lld", (long long)anchor_s, (long long)start_utc);
    snprintf(start_ms, sizeof start_ms, "%lld", (long long)anchor_s * 1000);
    pathf(sim_out, sizeof sim_out, "sim");
    pathf(meters_sim, sizeof meters_sim, "meters-sim.ini");
    pathf(inv, sizeof inv, "inverters.csv");
    pathf(log, sizeof log, "sim.log");
    spawn(log, (char *const[]){W->bin, "sim", scenario, "--out", sim_out, "--no-plots",
                               "--home-intervals", "--serve-modbus", "127.0.0.1:0",
                               "--clock-speed", speed_s, "--clock-start", start_ms,
                               "--meter-config", meters_sim, "--meter-hold", "300",
                               "--inverter-list", inv, sim_extra, NULL});
    struct stat st;
    for (int64_t until = real_ms() + 15000; stat(meters_sim, &st) != 0;) {
        assert_true(real_ms() < until);
        tst_sleep_ms(50);
    }
    /* the meter daemon's config: our [bus] and [outbox], the sim's [meter] sections */
    pathf(meters, sizeof meters, "meters.ini");
    pathf(outbox, sizeof outbox, "meters-outbox.db");
    FILE *in = fopen(meters_sim, "r"), *out = fopen(meters, "w");
    assert_non_null(in);
    assert_non_null(out);
    fprintf(out, "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = %s\nclient_id = meters\n\n"
                 "[outbox]\npath = %s\n\n",
            tst_broker_port(W->broker), COMMUNITY, outbox);
    char line[1024];
    int copying = 0;
    while (fgets(line, sizeof line, in)) {
        copying = copying || strncmp(line, "[meter ", 7) == 0;
        if (copying)
            fputs(line, out);
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
    pathf(log, sizeof log, "meter.log");
    spawn(log, (char *const[]){W->bin, "meter", meters, "--clock-speed", speed_s,
                               "--clock-anchor", anchor, NULL});
    /* agents: the battery homes with their inverter */
    char *list = NULL;
    for (int64_t until = real_ms() + 5000; !(list = tst_file_read(inv, NULL));) {
        assert_true(real_ms() < until);
        tst_sleep_ms(50);
    }
    size_t batteries = 0;
    pid_t last_pid = 0;
    for (size_t h = 0; h < W->homes; h++) {
        char prefix[80];
        snprintf(prefix, sizeof prefix, "\n%s,", W->ids[h]);
        const char *row = strstr(list, prefix);
        W->battery[h] = row != NULL;
        batteries += (size_t)W->battery[h];
        write_agent(h, row ? row + 1 : NULL);
        char ini[4096];
        pathf(ini, sizeof ini, "%s.ini", W->ids[h]);
        pathf(log, sizeof log, "agent-%s.log", W->ids[h]);
        pid_t pid = spawn(log, (char *const[]){W->bin, "agent", ini, "--clock-speed", speed_s,
                                               "--clock-anchor", anchor, NULL});
        if (W->battery[h]) {
            *last_battery = h;
            last_pid = pid;
        }
    }
    free(list);
    assert_int_equal(batteries, 2);
    return last_pid;
}

/* Waits until the simulator has written its outputs (failing the test after deadline_ms, real),
 * killing victim (unless 0) with SIGKILL at kill_at_ms (no release: only its inverter's timer
 * can help); then stops every process. */
static void finish_run(int64_t deadline_ms, pid_t victim, int64_t kill_at_ms)
{
    char summary[4096];
    struct stat st;
    pathf(summary, sizeof summary, "sim/summary.json");
    while (stat(summary, &st) != 0) {
        if (real_ms() > deadline_ms)
            fail_msg("the simulation did not finish; logs in %s", W->dir);
        if (victim && real_ms() >= kill_at_ms) {
            kill(victim, SIGKILL);
            waitpid(victim, NULL, 0);
            for (size_t i = 0; i < W->n_procs; i++)
                if (W->procs[i] == victim)
                    W->procs[i] = 0;
            victim = 0;
        }
        tst_sleep_ms(50);
    }
    tst_sleep_ms(500);
    stop_all();
}

/* The run's outputs: the agents' plans from their logs (none failed) and the served flows. */
static void read_run(void)
{
    size_t failures = read_plans();
    char csv[4096];
    pathf(csv, sizeof csv, "sim/home_intervals.csv");
    read_flows(csv);
    assert_int_equal(failures, 0);
}

/* The scenario tests/e2e/<name> (its path in scenario) in W->sc, with its homes' names;
 * returns the start of its first interval (UTC s). */
static int64_t load_scenario(const char *name, char *scenario, size_t cap)
{
    char err[512];
    snprintf(scenario, cap, "%s/tests/e2e/%s", MGX_SOURCE_DIR, name);
    assert_int_equal(sim_scenario_load(scenario, &W->sc, err, sizeof err), SIM_OK);
    W->homes = sim_scenario_homes(&W->sc);
    assert_true(W->homes <= MAX_HOMES);
    for (size_t h = 0; h < W->homes; h++)
        sim_home_name(&W->sc, h, W->ids[h], sizeof W->ids[h]);
    return sim_interval_start_utc(&W->sc, 0);
}

static void test_agents_dispatch_batteries_for_a_day(void **state)
{
    (void)state;
    char scenario[4096], err[512];
    int64_t start_utc = load_scenario("battery-tou.ini", scenario, sizeof scenario);
    assert_true(sim_intervals(&W->sc) == 96);
    W->first_interval = start_utc / 900;

    int64_t anchor_s = real_ms() / 1000 + STARTUP_S;
    size_t victim = 0;
    pid_t victim_pid = start_run(scenario, NULL, SPEED, anchor_s, start_utc, &victim);
    /* the day; the last battery home's agent is killed at 18:00 */
    finish_run(anchor_s * 1000 + 86400 * 1000 / SPEED + 60000, victim_pid,
               anchor_s * 1000 + 72 * 900 * 1000 / SPEED);

    /* the killed agent's inverter went back to its own mode by its revert timer, the other's
     * did not (its agent wrote every interval) */
    char sim_log[4096], want[160];
    pathf(sim_log, sizeof sim_log, "sim.log");
    char *sl = tst_file_read(sim_log, NULL);
    assert_non_null(sl);
    for (size_t h = 0; h < W->homes; h++) {
        if (!W->battery[h])
            continue;
        snprintf(want, sizeof want, "inverter of %s: no setpoint for 1800 s", W->ids[h]);
        if ((strstr(sl, want) != NULL) != (h == victim))
            fail_msg("%s: '%s' %s in sim.log", W->ids[h], want,
                     h == victim ? "missing (killed agent)" : "present (live agent)");
    }
    free(sl);
    read_run();

    /* (2) the metered flows follow the plans */
    for (size_t k = 0; k < 96; k++)
        W->in_time[k] = 1;
    for (size_t h = 0; h < W->homes; h++) {
        if (!W->battery[h])
            continue;
        size_t plans = 0, same = 0, previous = 0, other = 0, wrong = 0;
        int followed_prev = 0; /* interval k - 1 followed its plan */
        /* interval 0 is computed when the run starts, before any agent can have written */
        W->in_time[0] = 0;
        for (size_t k = 1; k < 96; k++) {
            if (!W->has_plan[h][k]) {
                W->in_time[k] = 0;
                followed_prev = 0;
                continue;
            }
            plans++;
            int64_t b = battery_ac(h, k);
            if (near(b, wh_of(W->plan_w[h][k]))) {
                same++;
                followed_prev = 1;
                continue;
            }
            W->in_time[k] = 0;
            if (W->has_plan[h][k - 1] && near(b, wh_of(W->plan_w[h][k - 1]))) {
                previous++;
            } else {
                other++;
                /* after a late setpoint the battery may have left the plan's path; after an
                 * interval on its plan it may not */
                if (followed_prev) {
                    fprintf(stderr, "e2e-battery: %s interval %zu: battery %+lld Wh, plan %+lld "
                                    "Wh\n",
                            W->ids[h], k, (long long)b, (long long)wh_of(W->plan_w[h][k]));
                    wrong++;
                }
            }
            followed_prev = 0;
        }
        fprintf(stderr,
                "e2e-battery: %s: %zu intervals planned; the battery followed the plan in %zu, "
                "the previous interval's setpoint in %zu (late), neither in %zu (%zu right "
                "after an interval on its plan)\n",
                W->ids[h], plans, same, previous, other, wrong);
        assert_true(plans >= 48);
        assert_true(2 * same >= plans);
        assert_int_equal(wrong, 0);
    }

    /* (3) the in-process simulator with the agents' setpoints */
    size_t compared = 0;
    for (size_t k = 0; k < 96; k++)
        compared += (size_t)W->in_time[k];
    sim_hooks hooks = {.on_flow = replay_flow, .on_battery = replay_battery};
    sim_result *res = NULL;
    assert_int_equal(sim_run(&W->sc, NULL, W->sc.seed, &hooks, &res, err, sizeof err), SIM_OK);
    sim_result_free(res);
    fprintf(stderr,
            "e2e-battery: in-process replay: %zu intervals (every battery on its plan) compared "
            "for %zu homes, %zu flows differ\n",
            compared, W->homes, W->mismatched);
    assert_true(compared >= 24);
    assert_int_equal(W->mismatched, 0);
}

/* The fitted test: every flow of the in-process run against the served one. */
static void compare_flow(const sim_flow *f, void *ctx)
{
    (void)ctx;
    size_t h = f->home, k = f->interval;
    if (h >= W->homes || k >= MAX_K)
        return;
    W->flows++;
    if (f->import_wh != W->imp[h][k] || f->export_wh != W->exp[h][k] ||
        f->load_wh != W->load[h][k] || f->pv_wh != W->pv[h][k]) {
        if (W->differ++ < 10)
            fprintf(stderr, "e2e-dispatch: %s interval %zu: in process import %lld export %lld, "
                            "served %lld %lld\n",
                    W->ids[h], k, (long long)f->import_wh, (long long)f->export_wh,
                    (long long)W->imp[h][k], (long long)W->exp[h][k]);
    }
    /* the agents' setpoints are the in-process decisions: where an agent wrote one, the
     * in-process battery moved exactly that */
    if (W->has_plan[h][k] && f->charge_wh - f->discharge_wh != wh_of(W->plan_w[h][k])) {
        if (W->differ++ < 10)
            fprintf(stderr, "e2e-dispatch: %s interval %zu: in process battery %+lld Wh, the "
                            "agent's setpoint %+lld Wh\n",
                    W->ids[h], k, (long long)(f->charge_wh - f->discharge_wh),
                    (long long)wh_of(W->plan_w[h][k]));
    }
}

/*
 * The agents' fitted forecast end to end, against the simulator (tests/e2e/dispatch-tou.ini:
 * three winter days at 30 minutes, the same homes): `mgx sim --serve-modbus --sub-meters`
 * serves each battery home's grid, PV and battery meters and its inverter, with the batteries'
 * own mode self-consumption; each battery home's agent has pv_meter_id, battery_meter_id and
 * the home's place and plane, so it decides with sim_dispatch (lead 2). The in-process
 * simulator with battery_policy = schedule and schedule_lead = 2 on the same scenario (the
 * agents' policy) must give the same flows, every home, every interval, to the Wh (load, PV,
 * import, export), and the same battery energy in every interval an agent wrote a setpoint;
 * and the agents must have planned (the first day is history, the guard lets plans be followed
 * once a day of them paid on paper, so plans start on day 3).
 */
static void test_agents_equal_the_simulator(void **state)
{
    (void)state;
    char scenario[4096], err[512];
    int64_t start_utc = load_scenario("dispatch-tou.ini", scenario, sizeof scenario);
    size_t n_k = sim_intervals(&W->sc);
    assert_true(n_k <= MAX_K);
    W->interval_s = (int64_t)W->sc.interval_min * 60;
    W->fitted = 1;
    W->first_interval = start_utc / W->interval_s;
    const int speed = 1440;

    int64_t anchor_s = real_ms() / 1000 + STARTUP_S;
    size_t last_battery;
    start_run(scenario, "--sub-meters", speed, anchor_s, start_utc, &last_battery);
    finish_run(anchor_s * 1000 + (int64_t)n_k * W->interval_s * 1000 / speed + 60000, 0, 0);
    read_run();
    size_t plans[MAX_HOMES] = {0};
    for (size_t h = 0; h < W->homes; h++)
        for (size_t k = 0; k < n_k; k++)
            plans[h] += (size_t)W->has_plan[h][k];

    /* the in-process simulator with the agents' policy */
    sim_scenario sc = W->sc;
    for (size_t g = 0; g < sc.n_groups; g++) {
        sc.groups[g].battery_policy = SIM_BATTERY_SCHEDULE;
        sc.groups[g].schedule_lead = 2;
    }
    sim_hooks hooks = {.on_flow = compare_flow};
    sim_result *res = NULL;
    assert_int_equal(sim_run(&sc, NULL, sc.seed, &hooks, &res, err, sizeof err), SIM_OK);
    size_t n;
    const sim_home_row *rows = sim_result_homes(res, &n);
    size_t planned = 0, agent_plans = 0;
    for (size_t h = 0; h < n && h < W->homes; h++) {
        fprintf(stderr, "e2e-dispatch: %s: the agent wrote %zu setpoints, the in-process "
                        "battery followed %zu plans",
                W->ids[h], plans[h], rows[h].planned_intervals);
        if (rows[h].fc_err_n) /* the decision's forecast of load - PV, against persistence */
            fprintf(stderr, "; forecast MAE %.0f Wh (persistence %.0f) over %zu intervals",
                    (double)rows[h].fc_abs_err_wh / (double)rows[h].fc_err_n,
                    (double)rows[h].persist_abs_err_wh / (double)rows[h].fc_err_n,
                    rows[h].fc_err_n);
        fputc('\n', stderr);
        if (rows[h].planned_intervals != plans[h])
            W->differ++;
        planned += rows[h].planned_intervals;
        agent_plans += plans[h];
    }
    sim_result_free(res);
    fprintf(stderr, "e2e-dispatch: %zu flows compared (%zu homes x %zu intervals), %zu differ; "
                    "%zu setpoints\n",
            W->flows, W->homes, n_k, W->differ, agent_plans);
    assert_int_equal(W->flows, W->homes * n_k);
    assert_int_equal(W->differ, 0);
    assert_true(planned > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_agents_dispatch_batteries_for_a_day, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agents_equal_the_simulator, setup, teardown),
    };
    if (getenv("MGX_E2E_FILTER")) /* e.g. test_agents_equal_the_simulator: only that one */
        cmocka_set_test_filter(getenv("MGX_E2E_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
