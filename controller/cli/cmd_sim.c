/*
 * `mgx sim SCENARIO.ini --out DIR [--data FILE.csv] [--runs N] [--seed S]`: the shell around the
 * simulator. It reads the files, makes the output folder, draws the progress bar when stderr is a
 * terminal, runs one or several seeds, writes the outputs and asks gnuplot to render the plots.
 * With --serve-modbus it runs one seed in (accelerated) real time and serves every home's meter
 * over Modbus TCP while it does (sim_serve.c).
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "cli/usage_error.h"
#include "mgx/scenario.h"
#include "mgx/sim.h"
#include "mgx/simdata.h"

#include "common/opt.h"
#include "cli/sim_out.h"
#include "cli/sim_serve.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_RUNS 1000

static const char SIM_USAGE[] =
    "usage: mgx sim SCENARIO.ini --out DIR [--data FILE.csv] [--runs N] [--seed S]\n"
    "               [--threads N] [--home-intervals] [--compare-timing | --compare-battery]\n"
    "       mgx sim SCENARIO.ini --out DIR --serve-modbus HOST:PORT [meter options]\n"
    "       mgx sim --sweep SWEEP.ini --out DIR [--jobs N] [--no-plots] [--quiet]\n"
    "\n"
    "Simulates a community with local trading and, in the same run, without it (grid only),\n"
    "and reports the difference.\n"
    "\n"
    "options:\n"
    "  --out DIR        folder for summary.json, intervals.csv, homes.csv, profile.csv and plots\n"
    "                   (created if missing)\n"
    "  --data FILE.csv  measured load and PV (timestamp,home,load_wh,pv_wh) for the homes it\n"
    "                   names; see docs/measured-data.md\n"
    "  --runs N         run N seeds (S, S+1, ...) and report mean and spread of each KPI\n"
    "  --seed S         seed of the first run (default: the scenario's seed)\n"
    "  --threads N      threads of one run (default: the machine's cores); the outputs are the\n"
    "                   same bytes for any N\n"
    "  --home-intervals also write home_intervals.csv: every home in every interval (energy,\n"
    "                   money, saving against grid only) of the first run; large for big runs\n"
    "  --compare-timing run the scenario under both timings, ex_ante and ex_post, with outputs\n"
    "                   in DIR/ex_ante and DIR/ex_post, and print the comparison\n"
    "  --compare-battery run the scenario with every battery on self-consumption and on the\n"
    "                   scheduler (battery_policy = schedule), outputs in\n"
    "                   DIR/self_consumption and DIR/schedule, and print the comparison with\n"
    "                   the worst home\n"
    "  --no-plots       do not run gnuplot\n"
    "  --quiet          print nothing but errors\n"
    "\n"
    "simulated meters (docs/simulator.md, \"Simulated meters over Modbus\"):\n"
    "  --serve-modbus HOST:PORT  run in real time and serve each home's meter over Modbus TCP,\n"
    "                   unit ids 1..247 per port (more homes: the next ports); PORT 0 picks\n"
    "                   free ports (see --meter-config)\n"
    "  --meter-profile sdm630|sunspec  register map of the meters (default sdm630)\n"
    "  --clock-speed N  simulated seconds per real second (default 1; 96 plays a 15-minute\n"
    "                   interval in 9.4 s, 1440 a day in a minute)\n"
    "  --clock-start MS wall time (Unix ms) at which the scenario starts (default: now), to\n"
    "                   share one accelerated clock with other processes\n"
    "  --meter-config FILE  write a config for `mgx meter FILE`: [bus] and one [meter ID]\n"
    "                   section per home\n"
    "  --community NAME its [bus] community (default: the scenario's name)\n"
    "  --inverter-list FILE  write home,host,port,unit,capacity_wh,power_w: the simulated\n"
    "                   battery inverter (SunSpec model 124) each battery home is served\n"
    "  --sub-meters     each battery home also gets a PV meter\n"
    "                   (<home>-pv) and a battery meter (<home>-battery) in the meter config\n"
    "  --meter-start-wh N   counters before the first interval (default 0; SunSpec reads an\n"
    "                   acc32 of 0 as \"not implemented\", so give sunspec meters e.g. 1000)\n"
    "  --meter-hold S   counters stand still S simulated seconds after and before each\n"
    "                   interval boundary and rise in between (default 0), so readers that\n"
    "                   interpolate boundaries get them exactly (docs/end-to-end.md)\n"
    "  --boundary-meter ID   serve one more meter, ID, for the community's grid connection\n"
    "                   (the coordinator's boundary meter, docs/trust.md layer 3): the homes'\n"
    "                   net plus losses\n"
    "  --boundary-loss-permille N   its losses, per mille of the homes' import + export\n"
    "                   (default 20)\n"
    "  --linger S       after the scenario, keep serving the final counters S seconds\n"
    "                   (default: until SIGINT/SIGTERM)\n"
    "\n"
    "Keys of SCENARIO.ini: docs/scenario-reference.md. Models and KPIs: docs/simulator.md.\n";

typedef struct {
    const char *scenario, *out, *data;
    int64_t runs;
    int64_t threads; /* --threads; 0: the cores */
    int has_seed;
    uint64_t seed;
    int plots, quiet;
    int home_intervals; /* --home-intervals */
    int compare_timing; /* --compare-timing */
    int compare_battery; /* --compare-battery */
    /* --serve-modbus */
    int serve;
    char host[256];
    ctl_serve_opts srv;
    int64_t linger_s;
} sim_opts;

typedef struct {
    size_t run, runs;
    int last_pct;
} progress;

static void draw_progress(size_t done, size_t total, void *ctx)
{
    progress *p = ctx;
    int pct = (int)((100.0 * ((double)p->run + (double)done / (double)total)) / (double)p->runs);
    if (pct == p->last_pct)
        return;
    p->last_pct = pct;
    int bar = pct * 40 / 100;
    fprintf(stderr, "\r  [%.*s%*s] %3d%%  run %zu/%zu", bar,
            "########################################", 40 - bar, "", pct, p->run + 1, p->runs);
    if (pct == 100)
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

/* One of the --serve-modbus options. 0, or -1 after printing the problem. */
static int serve_opt(int ch, const char *arg, sim_opts *o)
{
    int64_t v;
    char *end;
    switch (ch) {
    case 'M':
        if (ctl_serve_parse_addr(arg, o->host, sizeof o->host, &o->srv.port) == 0) {
            o->srv.host = o->host;
            return 0;
        }
        fprintf(stderr, "mgx sim: --serve-modbus needs HOST:PORT (e.g. 127.0.0.1:1502)\n");
        return -1;
    case 'F':
        if (strcmp(arg, "sdm630") == 0 || strcmp(arg, "sunspec") == 0) {
            o->srv.profile = arg[1] == 'd' ? MTR_SERVER_SDM630 : MTR_SERVER_SUNSPEC;
            return 0;
        }
        fprintf(stderr, "mgx sim: --meter-profile is sdm630 or sunspec\n");
        return -1;
    case 'C':
        errno = 0;
        o->srv.clock_speed = strtod(arg, &end);
        if (!errno && end != arg && !*end && isfinite(o->srv.clock_speed) &&
            o->srv.clock_speed > 0 && o->srv.clock_speed <= 1e9)
            return 0;
        fprintf(stderr, "mgx sim: --clock-speed needs a number above 0 and up to 1e9\n");
        return -1;
    case 'T':
        if (ctl_opt_int64(arg, 1, INT64_C(253402300799999), &o->srv.clock_start_ms) == 0)
            return 0;
        fprintf(stderr, "mgx sim: --clock-start needs Unix time in milliseconds\n");
        return -1;
    case 'W':
        o->srv.meter_config = arg;
        return 0;
    case 'V':
        o->srv.inverter_list = arg;
        return 0;
    case 'U':
        o->srv.sub_meters = 1;
        return 0;
    case 'B':
        for (const char *p = arg; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                arg = "";
        if (!arg[0] || strlen(arg) > 63) {
            fprintf(stderr, "mgx sim: --boundary-meter needs an id of 1..63 of A-Z a-z 0-9 _ -\n");
            return -1;
        }
        o->srv.boundary_id = arg;
        return 0;
    case 'Y':
        if (ctl_opt_int64(arg, 0, 1000, &o->srv.boundary_loss_permille) == 0)
            return 0;
        fprintf(stderr, "mgx sim: --boundary-loss-permille needs 0 .. 1000\n");
        return -1;
    case 'H':
        if (ctl_opt_int64(arg, 0, 43200, &o->srv.hold_s) == 0)
            return 0;
        fprintf(stderr, "mgx sim: --meter-hold needs seconds, below half the interval\n");
        return -1;
    case 'E':
        if (ctl_opt_int64(arg, 0, INT64_C(1000000000000000), &o->srv.start_wh) == 0)
            return 0;
        fprintf(stderr, "mgx sim: --meter-start-wh needs a whole number of Wh from 0 to 1e15\n");
        return -1;
    case 'N':
        for (const char *p = arg; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                arg = "";
        if (*arg && strlen(arg) <= 63) {
            o->srv.community = arg;
            return 0;
        }
        fprintf(stderr, "mgx sim: --community needs 1-63 characters of A-Z a-z 0-9 _ -\n");
        return -1;
    default: /* 'L' */
        if (ctl_opt_int64(arg, 0, INT64_C(31536000000), &v) == 0) {
            o->linger_s = v;
            return 0;
        }
        fprintf(stderr, "mgx sim: --linger needs a number of seconds >= 0\n");
        return -1;
    }
}

static int parse_opts(int argc, char **argv, sim_opts *o)
{
    static const struct option LONG[] = {
        {"out", required_argument, NULL, 'o'},  {"data", required_argument, NULL, 'd'},
        {"runs", required_argument, NULL, 'r'}, {"seed", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 'j'},
        {"no-plots", no_argument, NULL, 'P'},   {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"home-intervals", no_argument, NULL, 'I'},
        {"compare-timing", no_argument, NULL, 'X'},
        {"compare-battery", no_argument, NULL, 'K'},
        {"serve-modbus", required_argument, NULL, 'M'},
        {"meter-profile", required_argument, NULL, 'F'},
        {"clock-speed", required_argument, NULL, 'C'},
        {"clock-start", required_argument, NULL, 'T'},
        {"meter-config", required_argument, NULL, 'W'},
        {"meter-start-wh", required_argument, NULL, 'E'},
        {"meter-hold", required_argument, NULL, 'H'},
        {"boundary-meter", required_argument, NULL, 'B'},
        {"boundary-loss-permille", required_argument, NULL, 'Y'},
        {"linger", required_argument, NULL, 'L'},
        {"community", required_argument, NULL, 'N'},
        {"inverter-list", required_argument, NULL, 'V'},
        {"sub-meters", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->runs = 1;
    o->plots = 1;
    o->srv.profile = MTR_SERVER_SDM630;
    o->srv.clock_speed = 1;
    o->srv.boundary_loss_permille = 20;
    o->linger_s = -1;
    int serve_only = 0; /* a --serve-modbus option was given */
    optind = 0;
    opterr = 0;
    int ch;
    int64_t v;
    while ((ch = getopt_long(argc, argv, ":h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'o':
            o->out = optarg;
            break;
        case 'd':
            o->data = optarg;
            break;
        case 'r':
            if (ctl_opt_int64(optarg, 1, MAX_RUNS, &o->runs)) {
                fprintf(stderr, "mgx sim: --runs needs a number from 1 to %d\n", MAX_RUNS);
                return CTL_EXIT_USAGE;
            }
            break;
        case 's':
            if (ctl_opt_int64(optarg, 0, INT64_MAX, &v)) {
                fprintf(stderr, "mgx sim: --seed needs a non-negative integer\n");
                return CTL_EXIT_USAGE;
            }
            o->seed = (uint64_t)v;
            o->has_seed = 1;
            break;
        case 'j':
            if (ctl_opt_int64(optarg, 1, 64, &o->threads)) {
                fprintf(stderr, "mgx sim: --threads needs a number from 1 to 64\n");
                return CTL_EXIT_USAGE;
            }
            break;
        case 'P':
            o->plots = 0;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'I':
            o->home_intervals = 1;
            break;
        case 'X':
            o->compare_timing = 1;
            break;
        case 'K':
            o->compare_battery = 1;
            break;
        case 'h':
            fputs(SIM_USAGE, stdout);
            return -1;
        case 'M':
        case 'F':
        case 'C':
        case 'T':
        case 'W':
        case 'E':
        case 'H':
        case 'B':
        case 'Y':
        case 'L':
        case 'N':
        case 'V':
        case 'U':
            if (ch == 'M')
                o->serve = 1;
            else
                serve_only = ch;
            if (serve_opt(ch, optarg, o))
                return CTL_EXIT_USAGE;
            break;
        default: /* ':' (no value) or an unknown option */
            return ctl_cli_bad_option("mgx sim", ch, argv, SIM_USAGE);
        }
    }
    if (optind + 1 != argc || !o->out) {
        fputs(SIM_USAGE, stderr);
        return CTL_EXIT_USAGE;
    }
    if (serve_only && !o->serve) {
        fprintf(stderr, "mgx sim: the meter and clock options need --serve-modbus HOST:PORT\n");
        return CTL_EXIT_USAGE;
    }
    if (o->serve && o->compare_timing) {
        fprintf(stderr, "mgx sim: --serve-modbus runs one timing; leave out --compare-timing\n");
        return CTL_EXIT_USAGE;
    }
    if ((o->serve || o->compare_timing) && o->compare_battery) {
        fprintf(stderr, "mgx sim: --compare-battery runs alone\n");
        return CTL_EXIT_USAGE;
    }
    if (o->serve && o->runs > 1) {
        fprintf(stderr, "mgx sim: --serve-modbus runs one seed; leave out --runs\n");
        return CTL_EXIT_USAGE;
    }
    o->srv.quiet = o->quiet;
    o->scenario = argv[optind];
    return CTL_EXIT_OK;
}

/* --home-intervals: writes every sim_flow of the first run, then hands it on to the hook that
 * was there before (the Modbus server's, with --serve-modbus). */
typedef struct {
    FILE *f;
    const sim_scenario *sc;
    sim_flow_fn next;
    void *next_ctx;
} flow_csv;

static void write_flow(const sim_flow *fl, void *ctx)
{
    flow_csv *c = ctx;
    if (c->f)
        sim_write_flow_row(c->sc, fl, c->f);
    if (c->next)
        c->next(fl, c->next_ctx);
}

/* Runs every seed of one scenario, writes the outputs into out_dir and prints the summary.
 * kpis (may be NULL) receives the first run's KPIs: [0] with trading, [1] grid only. */
/* kpis (NULL: not wanted) receives the first run's figures with trading and grid only; homes
 * (NULL: not wanted) a copy of its per-home rows, the caller's to free. */
static int run_all(const sim_opts *o, const sim_scenario *sc, const sim_data *data,
                   const char *out_dir, sim_kpis kpis[2], sim_home_row **homes)
{
    size_t n = (size_t)o->runs;
    sim_result **res = calloc(n, sizeof *res);
    uint64_t *seeds = calloc(n, sizeof *seeds);
    char err[512];
    int rc = CTL_EXIT_FAILURE;
    progress prog = {0, n, -1};
    sim_hooks hooks = {NULL, NULL, NULL, &prog, NULL, NULL, NULL, NULL};
    ctl_serve *srv = NULL;
    flow_csv fc = {NULL, sc, NULL, NULL};
    char fc_path[4200];
    if (!o->quiet && isatty(STDERR_FILENO) && !o->serve)
        hooks.on_progress = draw_progress;
    if (o->serve) {
        ctl_serve_catch_signals();
        if (ctl_serve_new(&o->srv, sc, &srv, err, sizeof err)) {
            fprintf(stderr, "mgx sim: error: %s\n", err);
            goto out;
        }
        ctl_serve_hooks(srv, &hooks);
    }
    if (!res || !seeds) {
        fprintf(stderr, "mgx sim: out of memory\n");
        goto out;
    }
    if (o->home_intervals) {
        snprintf(fc_path, sizeof fc_path, "%s/home_intervals.csv", out_dir);
        if (!(fc.f = fopen(fc_path, "w"))) {
            fprintf(stderr, "mgx sim: %s: %s\n", fc_path, strerror(errno));
            goto out;
        }
        sim_write_flow_header(fc.f);
        fc.next = hooks.on_flow;
        fc.next_ctx = hooks.flow_ctx;
        hooks.on_flow = write_flow;
        hooks.flow_ctx = &fc;
    }
    for (size_t i = 0; i < n; i++) {
        seeds[i] = (o->has_seed ? o->seed : sc->seed) + i;
        prog.run = i;
        int src = sim_run(sc, data, seeds[i], &hooks, &res[i], err, sizeof err);
        if (fc.f) { /* the first run only, like the other per-run outputs */
            int bad = ferror(fc.f);
            if (fclose(fc.f) != 0 || bad) {
                fc.f = NULL;
                fprintf(stderr, "mgx sim: %s: write failed\n", fc_path);
                goto out;
            }
            fc.f = NULL;
        }
        if (src == SIM_E_STOPPED && srv && ctl_serve_error(srv)[0]) {
            fprintf(stderr, "mgx sim: error: %s; %s, no outputs written\n",
                    ctl_serve_error(srv), err);
            goto out;
        }
        if (src == SIM_E_STOPPED) {
            fprintf(stderr, "mgx sim: %s by a signal; no outputs written\n", err);
            goto out;
        }
        if (src) {
            fprintf(stderr, "\nmgx sim: %s: %s\n", o->scenario, err);
            goto out;
        }
    }
    if (srv && ctl_serve_late(srv))
        fprintf(stderr,
                "mgx sim: warning: %zu intervals began late: the machine cannot keep up with "
                "--clock-speed %g for %zu homes\n",
                ctl_serve_late(srv), o->srv.clock_speed, sim_scenario_homes(sc));
    if (sim_write_outputs(sc, res[0], seeds[0], out_dir, err, sizeof err) ||
        (n > 1 && sim_write_runs(sc, (const sim_result *const *)res, seeds, n, out_dir, err,
                                 sizeof err))) {
        fprintf(stderr, "mgx sim: %s\n", err);
        goto out;
    }
    if (!o->quiet) {
        sim_print_summary(sc, res[0], stdout);
        if (n > 1) {
            printf("\n");
            sim_print_runs((const sim_result *const *)res, n, stdout);
            printf("  seeds %llu..%llu (per run in runs.csv); the table above is seed %llu\n",
                   (unsigned long long)seeds[0], (unsigned long long)seeds[n - 1],
                   (unsigned long long)seeds[0]);
        }
        printf("  outputs in %s/\n", out_dir);
        fflush(stdout);
    }
    if (kpis) {
        kpis[0] = *sim_result_kpis(res[0]);
        kpis[1] = *sim_result_baseline(res[0]);
    }
    if (homes) {
        size_t nh;
        const sim_home_row *rows = sim_result_homes(res[0], &nh);
        if (!(*homes = malloc(nh * sizeof **homes))) {
            fprintf(stderr, "mgx sim: out of memory\n");
            goto out;
        }
        memcpy(*homes, rows, nh * sizeof **homes);
    }
    if (o->plots)
        ctl_sim_render_plots(out_dir, o->quiet, "plots.gp");
    if (srv)
        ctl_serve_linger(srv, o->linger_s);
    rc = CTL_EXIT_OK;
out:
    if (fc.f)
        fclose(fc.f);
    ctl_serve_free(srv);
    for (size_t i = 0; res && i < n; i++)
        sim_result_free(res[i]);
    free(res);
    free(seeds);
    return rc;
}

/* The share a saving is of a positive bill, in percent; NAN when the bill is not positive. */
static double pct_of(int64_t saving, int64_t bill)
{
    return bill > 0 ? 100.0 * (double)saving / (double)bill : (double)NAN;
}

/* --compare-timing: the scenario under ex_ante and ex_post, outputs in DIR/ex_ante and
 * DIR/ex_post, then one table of the figures that differ. */
static int compare_timing(const sim_opts *o, const sim_scenario *sc, const sim_data *data)
{
    static const mkt_timing T[2] = {MKT_EX_ANTE, MKT_EX_POST};
    sim_kpis k[2][2];
    sim_scenario *v = malloc(sizeof *v);
    char dir[4200];
    int rc = CTL_EXIT_FAILURE;
    if (!v) {
        fprintf(stderr, "mgx sim: out of memory\n");
        return rc;
    }
    for (int i = 0; i < 2; i++) {
        *v = *sc;
        v->timing = T[i];
        snprintf(dir, sizeof dir, "%s/%s", o->out, mkt_timing_name(T[i]));
        if (ctl_sim_make_dir(dir) != 0) {
            fprintf(stderr, "mgx sim: cannot create output folder %s: %s\n", dir,
                    strerror(errno));
            goto out;
        }
        if ((rc = run_all(o, v, data, dir, k[i], NULL)) != CTL_EXIT_OK)
            goto out;
        if (!o->quiet)
            printf("\n");
    }
    if (!o->quiet) {
        const sim_kpis *a = &k[0][0], *b = &k[1][0], *base = &k[0][1];
        int64_t sa = base->cost_uc - a->cost_uc, sb = base->cost_uc - b->cost_uc;
        printf("%s: ex_ante against ex_post (seed %llu, %s)\n", sc->name,
               (unsigned long long)(o->has_seed ? o->seed : sc->seed),
               mkt_mechanism_name(sc->mechanism));
        printf("  %-34s %14s %14s\n", "", "ex_ante", "ex_post");
        printf("  %-34s %14.2f %14.2f\n", "community saving", (double)sa / 1e6,
               (double)sb / 1e6);
        printf("  %-34s %13.1f%% %13.1f%%\n", "  of the grid-only net bill",
               pct_of(sa, base->cost_uc), pct_of(sb, base->cost_uc));
        printf("  %-34s %13.1f%% %13.1f%%\n", "  of the grid-only gross bill",
               pct_of(sa, base->gross_cost_uc), pct_of(sb, base->gross_cost_uc));
        printf("  %-34s %14zu %14zu\n", "homes worse off than grid only", a->homes_worse_off,
               b->homes_worse_off);
        printf("  %-34s %14.2f %14.2f\n", "worst home's saving", (double)a->savings_min_uc / 1e6,
               (double)b->savings_min_uc / 1e6);
        printf("  %-34s %14.2f %14.2f\n", "median home's saving",
               (double)a->savings_median_uc / 1e6, (double)b->savings_median_uc / 1e6);
        printf("  %-34s %10.1f kWh %10.1f kWh\n", "traded locally",
               (double)a->local_traded_wh / 1000, (double)b->local_traded_wh / 1000);
        printf("  %-34s %13.1f%% %13.1f%%\n", "self-sufficiency", 100 * a->self_sufficiency,
               100 * b->self_sufficiency);
        printf("  %-34s %14.3f %14.3f\n", "Gini of the savings", a->savings_gini,
               b->savings_gini);
        fflush(stdout);
    }
    rc = CTL_EXIT_OK;
out:
    free(v);
    return rc;
}

/* The group of home h (homes are numbered group by group). */
static size_t group_of(const sim_scenario *sc, size_t h)
{
    size_t g = 0;
    while (g + 1 < sc->n_groups && h >= sc->groups[g].count) {
        h -= sc->groups[g].count;
        g++;
    }
    return g;
}

/* Whole currency from uc, kWh from Wh (for printing only). */
static double mio(int64_t v)
{
    return (double)v / 1e6;
}

static double kilo(int64_t v)
{
    return (double)v / 1e3;
}

/* --compare-battery: every battery on self-consumption, then on the scheduler; outputs in
 * DIR/self_consumption and DIR/schedule, then the figures side by side and the home that
 * gains least (or loses most) from the scheduler, on the bill with trading and grid only. */
static int compare_battery(const sim_opts *o, const sim_scenario *sc, const sim_data *data)
{
    static const sim_battery_policy P[2] = {SIM_BATTERY_SELF_CONSUMPTION, SIM_BATTERY_SCHEDULE};
    sim_kpis k[2][2];
    sim_home_row *rows[2] = {NULL, NULL};
    sim_scenario *v = malloc(sizeof *v);
    char dir[4200];
    int rc = CTL_EXIT_FAILURE;
    if (!v) {
        fprintf(stderr, "mgx sim: out of memory\n");
        return rc;
    }
    for (int i = 0; i < 2; i++) {
        *v = *sc;
        for (size_t g = 0; g < v->n_groups; g++)
            v->groups[g].battery_policy = P[i];
        snprintf(dir, sizeof dir, "%s/%s", o->out, sim_battery_policy_name(P[i]));
        if (ctl_sim_make_dir(dir) != 0) {
            fprintf(stderr, "mgx sim: cannot create output folder %s: %s\n", dir,
                    strerror(errno));
            goto out;
        }
        if ((rc = run_all(o, v, data, dir, k[i], &rows[i])) != CTL_EXIT_OK)
            goto out;
        rc = CTL_EXIT_FAILURE;
        if (!o->quiet)
            printf("\n");
    }
    if (!o->quiet) {
        size_t nh = sim_scenario_homes(sc), worse = 0, worse_base = 0, bat_homes = 0;
        size_t worse_bat = 0, worst_bat = 0, worse_bat_base = 0, worst_bat_base = 0;
        int64_t worst_bat_d = INT64_MIN, worst_bat_base_d = INT64_MIN;
        size_t worst = 0, worst_base = 0, planned = 0, guarded = 0, err_n = 0;
        int64_t fc_err = 0, persist_err = 0;
        int64_t worst_d = INT64_MIN, worst_base_d = INT64_MIN;
        double usable_kwh = 0;
        for (size_t h = 0; h < nh; h++) {
            int64_t d = rows[1][h].cost_uc - rows[0][h].cost_uc;
            int64_t db = rows[1][h].base_cost_uc - rows[0][h].base_cost_uc;
            worse += d > 0;
            worse_base += db > 0;
            if (d > worst_d) {
                worst_d = d;
                worst = h;
            }
            if (db > worst_base_d) {
                worst_base_d = db;
                worst_base = h;
            }
            planned += rows[1][h].planned_intervals;
            guarded += rows[1][h].guarded_intervals;
            err_n += rows[1][h].fc_err_n;
            fc_err += rows[1][h].fc_abs_err_wh;
            persist_err += rows[1][h].persist_abs_err_wh;
            const sim_group *g = &sc->groups[group_of(sc, h)];
            if (g->battery_kwh > 0 && g->battery_kw > 0) {
                bat_homes++;
                worse_bat += d > 0;
                if (d > worst_bat_d) {
                    worst_bat_d = d;
                    worst_bat = h;
                }
                worse_bat_base += db > 0;
                if (db > worst_bat_base_d) {
                    worst_bat_base_d = db;
                    worst_bat_base = h;
                }
                usable_kwh += g->battery_kwh * (g->soc_max - g->soc_min);
            }
        }
        double per_kw = 60.0 / sc->interval_min / 1000.0;
        printf("%s: batteries on self-consumption against the scheduler (seed %llu, %s)\n",
               sc->name, (unsigned long long)(o->has_seed ? o->seed : sc->seed),
               mkt_timing_name(sc->timing));
        printf("  %-36s %16s %16s\n", "", "self_consumption", "schedule");
        printf("  %-36s %16.2f %16.2f\n", "community bill, with trading", mio(k[0][0].cost_uc),
               mio(k[1][0].cost_uc));
        printf("  %-36s %16.2f %16.2f\n", "community bill, grid only", mio(k[0][1].cost_uc),
               mio(k[1][1].cost_uc));
        printf("  %-36s %16.2f %16.2f\n", "saving of trading (grid only - with)",
               mio(k[0][1].cost_uc - k[0][0].cost_uc),
               mio(k[1][1].cost_uc - k[1][0].cost_uc));
        printf("  %-36s %16.2f %16.2f\n", "peak import kW, with trading",
               (double)k[0][0].peak_import_wh * per_kw, (double)k[1][0].peak_import_wh * per_kw);
        printf("  %-36s %16.2f %16.2f\n", "peak import kW, grid only",
               (double)k[0][1].peak_import_wh * per_kw, (double)k[1][1].peak_import_wh * per_kw);
        printf("  %-36s %16.1f %16.1f\n", "battery discharged kWh",
               kilo(k[0][0].battery_discharged_wh), kilo(k[1][0].battery_discharged_wh));
        printf("  %-36s %16.1f %16.1f\n", "battery losses kWh", kilo(k[0][0].battery_loss_wh),
               kilo(k[1][0].battery_loss_wh));
        if (usable_kwh > 0)
            printf("  %-36s %16.1f %16.1f\n", "full cycles per battery",
                   kilo(k[0][0].battery_discharged_wh) / usable_kwh,
                   kilo(k[1][0].battery_discharged_wh) / usable_kwh);
        printf("  %-36s %16.1f %16.1f\n", "self-sufficiency %", 100 * k[0][0].self_sufficiency,
               100 * k[1][0].self_sufficiency);
        printf("  scheduler: %zu homes with batteries followed a plan in %.1f%% of their "
               "intervals\n",
               bat_homes,
               bat_homes ? 100.0 * (double)planned / ((double)bat_homes * (double)k[1][0].intervals)
                         : 0.0);
        if (err_n)
            printf("  forecast of a decided interval's net, mean absolute error: %.0f Wh "
                   "(%.0f %% of day-ahead persistence's %.0f Wh) over %zu intervals\n",
                   (double)fc_err / (double)err_n,
                   persist_err ? 100.0 * (double)fc_err / (double)persist_err : 0.0,
                   (double)persist_err / (double)err_n, err_n);
        printf("  guard: %zu intervals a battery was held to self-consumption (its paper plan "
               "not ahead of its shadow, or itself behind)\n",
               guarded);
        printf("  saving of the scheduler over self-consumption: %.2f with trading, %.2f grid "
               "only\n",
               mio(k[0][0].cost_uc - k[1][0].cost_uc),
               mio(k[0][1].cost_uc - k[1][1].cost_uc));
        printf("  homes worse off than on self-consumption (their bill is higher):\n");
        printf("    grid only:    %3zu of %zu (worst: home %zu of group %s, %+.2f)\n", worse_base,
               nh, worst_base, sc->groups[group_of(sc, worst_base)].name, mio(worst_base_d));
        if (bat_homes) /* the guard's promise: the scheduler's own effect, on the grid bill */
            printf("      of them with a battery: %zu of %zu (worst: home %zu of group %s, "
                   "%+.3f)\n",
                   worse_bat_base, bat_homes, worst_bat_base,
                   sc->groups[group_of(sc, worst_bat_base)].name, mio(worst_bat_base_d));
        printf("    with trading: %3zu of %zu (worst: home %zu of group %s, %+.2f)\n", worse, nh,
               worst, sc->groups[group_of(sc, worst)].name, mio(worst_d));
        if (bat_homes)
            printf("      of them with a battery: %zu of %zu (worst: home %zu of group %s, "
                   "%+.2f); the others' bills move with the market prices\n",
                   worse_bat, bat_homes, worst_bat, sc->groups[group_of(sc, worst_bat)].name,
                   mio(worst_bat_d));
        fflush(stdout);
    }
    rc = CTL_EXIT_OK;
out:
    free(rows[0]);
    free(rows[1]);
    free(v);
    return rc;
}

int ctl_cmd_sim(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--sweep") == 0 || strncmp(argv[i], "--sweep=", 8) == 0)
            return ctl_cmd_sim_sweep(argc, argv);
    sim_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc < 0 ? CTL_EXIT_OK : rc;
    gsl_set_error_handler_off(); /* GSL's default handler aborts the process */
    sim_scenario *sc = malloc(sizeof *sc);
    sim_data *data = NULL;
    char err[512];
    rc = CTL_EXIT_FAILURE;
    if (!sc) {
        fprintf(stderr, "mgx sim: out of memory\n");
        goto out;
    }
    if (sim_scenario_load(o.scenario, sc, err, sizeof err)) {
        fprintf(stderr, "mgx sim: %s\n", err);
        goto out;
    }
    /* Not a scenario key: how many cores a run may use is the machine's business, and the
     * result does not depend on it. By default all of them (sysconf's online processors). */
    if (o.threads > 0) {
        sc->threads = (uint32_t)o.threads;
    } else {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        sc->threads = cores < 1 ? 1 : cores > 64 ? 64 : (uint32_t)cores;
    }
    if (o.data && sim_data_load(o.data, sc, &data, err, sizeof err)) {
        fprintf(stderr, "mgx sim: %s\n", err);
        goto out;
    }
    if (ctl_sim_make_dir(o.out) != 0) {
        fprintf(stderr, "mgx sim: cannot create output folder %s: %s\n", o.out, strerror(errno));
        goto out;
    }
    rc = o.compare_timing    ? compare_timing(&o, sc, data)
         : o.compare_battery ? compare_battery(&o, sc, data)
                             : run_all(&o, sc, data, o.out, NULL, NULL);
out:
    sim_data_free(data);
    free(sc);
    return rc;
}
