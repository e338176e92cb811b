/*
 * `mgx sim --sweep SWEEP.ini --out DIR [--jobs N]`: runs every cell x seed of a sweep (mgx/sweep.h)
 * on this machine's cores, or shared out over MPI ranks when started by mpirun, and writes
 * runs.csv, summary.csv (means and 95 % confidence intervals per cell) and a plot of the
 * community saving against the first swept key.
 *
 * Runs are independent simulations, so the work is shared a run at a time: threads take the
 * next run number from a counter; MPI rank r takes runs r, r + size, ... and sends its rows to
 * rank 0, which writes everything. Every row lands at its run number, so the files are the same
 * bytes for any number of threads or ranks. A run that fails is reported with its number, cell,
 * seed (and rank) and the sweep exits 1 after writing the others.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "cli/sim_out.h"
#include "cli/usage_error.h"
#include "common/opt.h"
#include "mgx/sweep.h"

#include <errno.h>
#include <getopt.h>
#include <gsl/gsl_errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef MGX_HAVE_MPI
#include <mpi.h>
#endif

#define MAX_JOBS 256

static const char SWEEP_USAGE[] =
    "usage: mgx sim --sweep SWEEP.ini --out DIR [--jobs N] [--no-plots] [--quiet]\n"
    "       mpirun -np N mgx sim --sweep SWEEP.ini --out DIR [--jobs N]\n"
    "\n"
    "Runs every combination of the values a sweep file varies, with several seeds each, and\n"
    "writes every run's figures (DIR/runs.csv) and per combination their mean and 95 %\n"
    "confidence interval (DIR/summary.csv), with a plot of the community saving against the\n"
    "first varied key (DIR/sweep.svg). The files are the same whatever the number of threads\n"
    "or MPI ranks. The sweep file: docs/simulator.md, \"Sweeps\".\n"
    "\n"
    "options:\n"
    "  --sweep FILE     the sweep: [sweep] scenario and seeds, [set] and [vary] scenario keys\n"
    "  --out DIR        folder for runs.csv, summary.csv and the plot (created if missing)\n"
    "  --jobs N         threads per process (default: the cores, or 1 under mpirun)\n"
    "  --no-plots       do not run gnuplot\n"
    "  --quiet          print nothing but errors\n";

typedef struct {
    const char *sweep, *out;
    int64_t jobs; /* 0: default */
    int plots, quiet;
} sweep_opts;

static int parse_opts(int argc, char **argv, sweep_opts *o)
{
    static const struct option LONG[] = {
        {"sweep", required_argument, NULL, 'w'}, {"out", required_argument, NULL, 'o'},
        {"jobs", required_argument, NULL, 'j'},  {"no-plots", no_argument, NULL, 'P'},
        {"quiet", no_argument, NULL, 'q'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->plots = 1;
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'w':
            o->sweep = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'j':
            if (ctl_opt_int64(optarg, 1, MAX_JOBS, &o->jobs)) {
                fprintf(stderr, "mgx sim: --jobs needs a number from 1 to %d\n", MAX_JOBS);
                return CTL_EXIT_USAGE;
            }
            break;
        case 'P':
            o->plots = 0;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            fputs(SWEEP_USAGE, stdout);
            return -1;
        default:
            return ctl_cli_bad_option("mgx sim", ch, argv, SWEEP_USAGE);
        }
    }
    if (optind != argc || !o->sweep || !o->out) {
        fputs(SWEEP_USAGE, stderr);
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

/* ---- running a share of the runs on threads ------------------------------------------ */

typedef struct {
    const sim_sweep *sw;
    sim_sweep_row *rows; /* indexed by run number */
    size_t first, stride, total;
    atomic_size_t next; /* the k-th run of this process's share: first + k * stride */
    atomic_size_t done;
    int quiet;
} pool;

static void run_one(const sim_sweep *sw, size_t run, sim_sweep_row *row)
{
    uint64_t seed = 0;
    const sim_scenario *sc = sim_sweep_scenario(sw, run, &seed);
    sim_result *res = NULL;
    memset(row, 0, sizeof *row);
    row->run = (uint32_t)run;
    row->seed = seed;
    int rc = sim_run(sc, NULL, seed, NULL, &res, row->err, sizeof row->err);
    if (rc == SIM_OK)
        sim_sweep_row_fill(row, res);
    else
        row->status = rc;
    sim_result_free(res);
}

static void *worker(void *arg)
{
    pool *p = arg;
    for (;;) {
        size_t k = atomic_fetch_add(&p->next, 1);
        size_t run = p->first + k * p->stride;
        if (run >= p->total)
            break;
        run_one(p->sw, run, &p->rows[run]);
        size_t d = atomic_fetch_add(&p->done, 1) + 1;
        if (!p->quiet && isatty(STDERR_FILENO))
            fprintf(stderr, "\rmgx sim: %zu runs done", d);
    }
    return NULL;
}

/* Runs first, first + stride, ... < total on jobs threads. */
static int run_share(const sim_sweep *sw, sim_sweep_row *rows, size_t first, size_t stride,
                     int jobs, int quiet)
{
    pool p = {.sw = sw, .rows = rows, .first = first, .stride = stride,
              .total = sim_sweep_runs(sw), .quiet = quiet};
    atomic_init(&p.next, 0);
    atomic_init(&p.done, 0);
    pthread_t th[MAX_JOBS];
    int started = 0;
    for (; started < jobs; started++)
        if (pthread_create(&th[started], NULL, worker, &p) != 0)
            break;
    if (started == 0)
        worker(&p); /* no thread could start: run them here */
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (!quiet && isatty(STDERR_FILENO))
        fputc('\n', stderr);
    return 0;
}

/* ---- MPI: share the runs out, gather the rows at rank 0 ------------------------------ */

#ifdef MGX_HAVE_MPI
/* Started by mpirun (Open MPI, MPICH or a PMIx launcher such as Slurm's srun). */
static bool launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

/* Rank 0 receives every other rank's rows (its runs r, r + size, ...) into rows. The rows are
 * sent as bytes: every rank runs the same mgx build on the same kind of machine. */
static int gather_rows(sim_sweep_row *rows, size_t total, int rank, int size)
{
    size_t mine = 0;
    for (size_t run = (size_t)rank; run < total; run += (size_t)size)
        mine++;
    if (rank != 0) {
        sim_sweep_row *buf = malloc((mine ? mine : 1) * sizeof *buf);
        if (!buf)
            return MPI_Abort(MPI_COMM_WORLD, 1);
        size_t i = 0;
        for (size_t run = (size_t)rank; run < total; run += (size_t)size)
            buf[i++] = rows[run];
        MPI_Send(buf, (int)(mine * sizeof *buf), MPI_BYTE, 0, 7, MPI_COMM_WORLD);
        free(buf);
        return 0;
    }
    for (int r = 1; r < size; r++) {
        size_t n = 0;
        for (size_t run = (size_t)r; run < total; run += (size_t)size)
            n++;
        sim_sweep_row *buf = malloc((n ? n : 1) * sizeof *buf);
        if (!buf)
            return MPI_Abort(MPI_COMM_WORLD, 1);
        MPI_Recv(buf, (int)(n * sizeof *buf), MPI_BYTE, r, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        size_t i = 0;
        for (size_t run = (size_t)r; run < total; run += (size_t)size)
            rows[run] = buf[i++];
        free(buf);
    }
    return 0;
}
#endif

/* ---- outputs ------------------------------------------------------------------------- */

static int write_file(const char *dir, const char *name, const sim_sweep *sw,
                      const sim_sweep_row *rows,
                      int (*fn)(const sim_sweep *, const sim_sweep_row *, FILE *))
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "mgx sim: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = fn(sw, rows, f);
    if (fclose(f) != 0 || rc != SIM_OK) {
        fprintf(stderr, "mgx sim: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* sweep.gp: the community saving (mean, 95 % interval) against the first varied key, one line
 * per combination of the others, read from summary.csv (its columns: cell, the axes, runs_ok,
 * then mean and ci95 of each figure; saving_uc is the third figure). */
static int write_plot_script(const char *dir, const sim_sweep *sw)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/sweep.gp", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t axes = sim_sweep_axes(sw);
    const sim_sweep_axis *a0 = sim_sweep_axis_at(sw, 0);
    size_t per_line = a0->n_values, lines = sim_sweep_cells(sw) / per_line;
    size_t col_mean = 1 + axes + 1 + 2 * 2 + 1, col_ci = col_mean + 1; /* saving_uc */
    fprintf(f, "# mgx sim --sweep: community saving against %s.%s (summary.csv)\n",
            a0->key.section, a0->key.key);
    fprintf(f, "set terminal svg size 900,540 dynamic background rgb 'white'\n"
               "set output 'sweep.svg'\nset datafile separator ','\n"
               "set key outside right\nset grid\n");
    fprintf(f, "set xlabel '%s.%s'\nset ylabel 'community saving (currency units)'\n",
            a0->key.section, a0->key.key);
    fprintf(f, "set xrange [-0.5:%zu.5]\n", per_line - 1);
    /* the cells of line l are l, l + lines, l + 2 lines, ... (the first axis varies slowest);
       x is the index of the first axis's value, the line is named by the other axes' values */
    fprintf(f, "plot \\\n");
    for (size_t l = 0; l < lines; l++) {
        char title[512] = "";
        size_t used = 0;
        for (size_t a = 1; a < axes && used < sizeof title; a++)
            used += (size_t)snprintf(title + used, sizeof title - used, "%s%s.%s=%s",
                                     a > 1 ? " " : "", sim_sweep_axis_at(sw, a)->key.section,
                                     sim_sweep_axis_at(sw, a)->key.key,
                                     sim_sweep_value(sw, l, a));
        fprintf(f,
                "  'summary.csv' every %zu::%zu using (floor($1/%zu)):($%zu/1e6):($%zu/1e6):"
                "xtic(2) with yerrorlines title '%s'%s\n",
                lines, l + 1, lines, col_mean, col_ci, axes > 1 ? title : "mean, 95 % interval",
                l + 1 < lines ? ", \\" : "");
    }
    return fclose(f) == 0 ? 0 : -1;
}

static void print_summary(const sim_sweep *sw, const sim_sweep_row *rows)
{
    size_t seeds = sim_sweep_seeds(sw), axes = sim_sweep_axes(sw);
    printf("%-6s", "cell");
    for (size_t a = 0; a < axes; a++)
        printf(" %-22s", sim_sweep_axis_at(sw, a)->key.key);
    printf(" %4s %16s %12s %10s\n", "runs", "saving (mean)", "worse off", "local kWh");
    for (size_t c = 0; c < sim_sweep_cells(sw); c++) {
        double saving = 0, worse = 0, local = 0;
        size_t n = 0;
        for (size_t k = 0; k < seeds; k++) {
            const sim_sweep_row *r = &rows[c * seeds + k];
            if (r->status != SIM_OK)
                continue;
            saving += (double)r->saving_uc / 1e6;
            worse += (double)r->homes_worse_off;
            local += (double)r->local_traded_wh / 1e3;
            n++;
        }
        printf("%-6zu", c);
        for (size_t a = 0; a < axes; a++)
            printf(" %-22s", sim_sweep_value(sw, c, a));
        if (n == 0) {
            printf(" %4zu %16s %12s %10s\n", n, "-", "-", "-");
            continue;
        }
        printf(" %4zu %16.2f %12.1f %10.0f\n", n, saving / (double)n, worse / (double)n,
               local / (double)n);
    }
}

/* Names every failed run on stderr; returns how many failed. */
static size_t report_failures(const sim_sweep *sw, const sim_sweep_row *rows, int size)
{
    size_t failed = 0;
    for (size_t i = 0; i < sim_sweep_runs(sw); i++) {
        if (rows[i].status == SIM_OK)
            continue;
        failed++;
        fprintf(stderr, "mgx sim: run %zu (cell %zu, seed %" PRIu64, i,
                i / sim_sweep_seeds(sw), rows[i].seed);
        if (size > 1)
            fprintf(stderr, ", rank %zu", i % (size_t)size);
        fprintf(stderr, ") failed: %s\n", rows[i].err[0] ? rows[i].err : "no result");
    }
    return failed;
}

static int write_outputs(const sweep_opts *o, const sim_sweep *sw, const sim_sweep_row *rows,
                         int size)
{
    if (ctl_sim_make_dir(o->out) != 0) {
        fprintf(stderr, "mgx sim: cannot create output folder %s: %s\n", o->out, strerror(errno));
        return CTL_EXIT_FAILURE;
    }
    if (write_file(o->out, "runs.csv", sw, rows, sim_sweep_write_runs) ||
        write_file(o->out, "summary.csv", sw, rows, sim_sweep_write_summary))
        return CTL_EXIT_FAILURE;
    if (sim_sweep_axes(sw) > 0 && write_plot_script(o->out, sw) == 0 && o->plots)
        ctl_sim_render_plots(o->out, o->quiet, "sweep.gp");
    if (!o->quiet) {
        print_summary(sw, rows);
        printf("  %zu runs (%zu cells x %zu seeds) on %d process%s; %s/runs.csv, summary.csv\n",
               sim_sweep_runs(sw), sim_sweep_cells(sw), sim_sweep_seeds(sw), size,
               size == 1 ? "" : "es", o->out);
    }
    return report_failures(sw, rows, size) ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}

int ctl_cmd_sim_sweep(int argc, char **argv)
{
    sweep_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc < 0 ? CTL_EXIT_OK : rc;
    int rank = 0, size = 1;
    bool mpi = false;
#ifdef MGX_HAVE_MPI
    if (launched_by_mpi()) {
        int provided = 0;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        mpi = true;
    }
#endif
    gsl_set_error_handler_off(); /* GSL's default handler aborts the process */
    char err[512];
    int lrc = 0;
    sim_sweep_row *rows = NULL;
    sim_sweep *sw = sim_sweep_load(o.sweep, &lrc, err, sizeof err);
    rc = CTL_EXIT_FAILURE;
    if (!sw) {
        if (rank == 0)
            fprintf(stderr, "mgx sim: %s\n", err);
        goto out;
    }
    rows = calloc(sim_sweep_runs(sw), sizeof *rows);
    if (!rows) {
        fprintf(stderr, "mgx sim: out of memory\n");
        goto out;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = o.jobs ? (int)o.jobs : mpi ? 1 : (int)(cores > 0 ? cores : 1);
    jobs = jobs > MAX_JOBS ? MAX_JOBS : jobs;
    run_share(sw, rows, (size_t)rank, (size_t)size, jobs, o.quiet || rank != 0);
#ifdef MGX_HAVE_MPI
    if (mpi)
        gather_rows(rows, sim_sweep_runs(sw), rank, size);
#endif
    rc = rank == 0 ? write_outputs(&o, sw, rows, size) : CTL_EXIT_OK;
out:
    free(rows);
    sim_sweep_free(sw);
#ifdef MGX_HAVE_MPI
    if (mpi) {
        /* every rank learns whether rank 0 wrote the results, so mpirun's status is the sweep's */
        int all = rc;
        MPI_Bcast(&all, 1, MPI_INT, 0, MPI_COMM_WORLD);
        MPI_Finalize();
        rc = all;
    }
#endif
    return rc;
}
