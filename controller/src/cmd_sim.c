/*
 * `mgx sim SCENARIO.ini --out DIR [--data FILE.csv] [--runs N] [--seed S]`: the shell around the
 * simulator. It reads the files, makes the output folder, draws the progress bar when stderr is a
 * terminal, runs one or several seeds, writes the outputs and asks gnuplot to render the plots.
 */
#define _GNU_SOURCE
#include "mgx/cli.h"
#include "mgx/scenario.h"
#include "mgx/sim.h"
#include "mgx/simdata.h"

#include "opt.h"

#include <errno.h>
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
    "  --no-plots       do not run gnuplot\n"
    "  --quiet          print nothing but errors\n"
    "\n"
    "Keys of SCENARIO.ini: docs/scenario-reference.md. Models and KPIs: docs/simulator.md.\n";

typedef struct {
    const char *scenario, *out, *data;
    int64_t runs;
    int has_seed;
    uint64_t seed;
    int plots, quiet;
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

static int parse_opts(int argc, char **argv, sim_opts *o)
{
    static const struct option LONG[] = {
        {"out", required_argument, NULL, 'o'},  {"data", required_argument, NULL, 'd'},
        {"runs", required_argument, NULL, 'r'}, {"seed", required_argument, NULL, 's'},
        {"no-plots", no_argument, NULL, 'P'},   {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->runs = 1;
    o->plots = 1;
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
        case 'P':
            o->plots = 0;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            fputs(SIM_USAGE, stdout);
            return -1;
        case ':':
            fprintf(stderr, "mgx sim: %s needs a value\n", argv[optind - 1]);
            return CTL_EXIT_USAGE;
        default:
            fprintf(stderr, "mgx sim: unknown option '%s'\n%s", argv[optind - 1], SIM_USAGE);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc || !o->out) {
        fputs(SIM_USAGE, stderr);
        return CTL_EXIT_USAGE;
    }
    o->scenario = argv[optind];
    return CTL_EXIT_OK;
}

/* mkdir -p for the output folder. */
static int make_dir(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        buf[i] = c;
    }
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* Runs gnuplot on DIR/plots.gp inside DIR. Missing gnuplot is a warning, not a failure. */
static void render_plots(const char *dir, int quiet)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(126);
        if (quiet && !freopen("/dev/null", "w", stderr))
            _exit(126);
        execlp("gnuplot", "gnuplot", "plots.gp", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
        fprintf(stderr, "mgx sim: could not run gnuplot; %s/plots.gp renders the plots\n", dir);
        return;
    }
    if (WEXITSTATUS(status) == 127)
        fprintf(stderr, "mgx sim: gnuplot not found (apt-get install gnuplot-nox); "
                        "%s/plots.gp renders the plots\n",
                dir);
    else if (WEXITSTATUS(status) != 0)
        fprintf(stderr, "mgx sim: gnuplot failed on %s/plots.gp\n", dir);
}

static int run_all(const sim_opts *o, const sim_scenario *sc, const sim_data *data)
{
    size_t n = (size_t)o->runs;
    sim_result **res = calloc(n, sizeof *res);
    uint64_t *seeds = calloc(n, sizeof *seeds);
    char err[512];
    int rc = CTL_EXIT_FAILURE;
    progress prog = {0, n, -1};
    sim_hooks hooks = {NULL, NULL, NULL, &prog, NULL, NULL};
    if (!o->quiet && isatty(STDERR_FILENO))
        hooks.on_progress = draw_progress;
    if (!res || !seeds) {
        fprintf(stderr, "mgx sim: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        seeds[i] = (o->has_seed ? o->seed : sc->seed) + i;
        prog.run = i;
        if (sim_run(sc, data, seeds[i], &hooks, &res[i], err, sizeof err)) {
            fprintf(stderr, "\nmgx sim: %s: %s\n", o->scenario, err);
            goto out;
        }
    }
    if (sim_write_outputs(sc, res[0], seeds[0], o->out, err, sizeof err) ||
        (n > 1 && sim_write_runs(sc, (const sim_result *const *)res, seeds, n, o->out, err,
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
        printf("  outputs in %s/\n", o->out);
        fflush(stdout);
    }
    if (o->plots)
        render_plots(o->out, o->quiet);
    rc = CTL_EXIT_OK;
out:
    for (size_t i = 0; res && i < n; i++)
        sim_result_free(res[i]);
    free(res);
    free(seeds);
    return rc;
}

int ctl_cmd_sim(int argc, char **argv)
{
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
    if (o.data && sim_data_load(o.data, sc, &data, err, sizeof err)) {
        fprintf(stderr, "mgx sim: %s\n", err);
        goto out;
    }
    if (make_dir(o.out) != 0) {
        fprintf(stderr, "mgx sim: cannot create output folder %s: %s\n", o.out, strerror(errno));
        goto out;
    }
    rc = run_all(&o, sc, data);
out:
    sim_data_free(data);
    free(sc);
    return rc;
}
