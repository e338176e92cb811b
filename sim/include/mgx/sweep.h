/*
 * mgx sim --sweep: a grid of scenario variations times seeds, and what each run measured.
 *
 * A sweep file names a base scenario, keys set for every run ([set]), keys that vary ([vary]:
 * one axis per key, a list of values each) and a number of seeds per cell. The cells are every
 * combination of the axes' values; each cell runs with seeds S, S+1, ... The runs are numbered
 * cell-major (run = cell x seeds + k; the first axis varies slowest), so the results of a sweep
 * are the same rows in the same order whoever ran them: one thread, several, or MPI ranks.
 *
 *   [sweep]
 *   scenario = ../config/community-100.ini ; relative to the sweep file
 *   seeds = 5                               ; runs per cell (default 1)
 *   seed = 1                                ; the first seed (default: the scenario's)
 *   [set]
 *   period.days = 7
 *   [vary]
 *   market.mechanism = pay-as-clear, pay-as-bid
 *   group.prosumer_battery.count = 0, 10, 20
 *
 * Keys are "section.key" of the scenario file (docs/scenario-reference.md); a group's section is
 * "group.NAME". Every cell's scenario is built and checked when the sweep is loaded, so a bad
 * value is reported before anything runs. This module reads the sweep file and writes CSV to
 * streams it is given; running the simulations is the caller's (controller/cli/cmd_sweep.c).
 */
#ifndef MGX_SWEEP_H
#define MGX_SWEEP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mgx/scenario.h"
#include "mgx/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SIM_SWEEP_MAX_AXES 8
#define SIM_SWEEP_MAX_VALUES 32
#define SIM_SWEEP_MAX_SETS 32
#define SIM_SWEEP_MAX_RUNS 100000
#define SIM_SWEEP_MAX_SEEDS 1000
#define SIM_SWEEP_KEY_MAX 96
#define SIM_SWEEP_PATH_MAX 1024

/* One scenario key: the section ("market", "group.roof") and the key in it. */
typedef struct {
    char section[SIM_SWEEP_KEY_MAX];
    char key[SIM_SWEEP_KEY_MAX];
} sim_sweep_key;

typedef struct {
    sim_sweep_key key;
    size_t n_values;
    char values[SIM_SWEEP_MAX_VALUES][SIM_NAME_MAX];
} sim_sweep_axis;

typedef struct {
    sim_sweep_key key;
    char value[SIM_NAME_MAX];
} sim_sweep_set;

typedef struct sim_sweep sim_sweep;

/*
 * Reads a sweep file and its base scenario, and builds and checks every cell's scenario. On
 * failure returns NULL with SIM_E_IO or SIM_E_PARSE in *rc and a message naming the file and
 * line (or the cell and key) in err. Free with sim_sweep_free.
 */
sim_sweep *sim_sweep_load(const char *path, int *rc, char *err, size_t err_len);
void sim_sweep_free(sim_sweep *sw);

size_t sim_sweep_cells(const sim_sweep *sw);
size_t sim_sweep_seeds(const sim_sweep *sw);
size_t sim_sweep_runs(const sim_sweep *sw); /* cells x seeds */
size_t sim_sweep_axes(const sim_sweep *sw);
const sim_sweep_axis *sim_sweep_axis_at(const sim_sweep *sw, size_t i);
const char *sim_sweep_scenario_path(const sim_sweep *sw);

/* The value of axis a in cell c (a string of the axis's list). */
const char *sim_sweep_value(const sim_sweep *sw, size_t cell, size_t a);

/* The scenario (a copy owned by the sweep; valid until sim_sweep_free) and seed of one run. */
const sim_scenario *sim_sweep_scenario(const sim_sweep *sw, size_t run, uint64_t *seed);

/* What one run measured. The integers are exact (Wh, micro-currency); the ratios are the
 * simulator's own KPIs. status is SIM_OK or the run's error code, with its message in err. */
typedef struct {
    uint32_t run;
    int32_t status;
    uint64_t seed;
    int64_t baseline_cost_uc;  /* the homes' bill with the grid only */
    int64_t cost_uc;           /* with the market */
    int64_t saving_uc;         /* baseline - cost, the whole community */
    int64_t local_traded_wh;
    int64_t grid_import_wh;
    int64_t peak_import_wh;    /* the largest community import in one interval */
    int64_t worst_saving_uc;   /* the home that gained least (negative: worse off) */
    int64_t homes_worse_off;
    double self_sufficiency;
    double volume_weighted_price_uc_per_kwh;
    char err[160];
} sim_sweep_row;

/* Fills row from a finished run (run and seed are the caller's). */
void sim_sweep_row_fill(sim_sweep_row *row, const sim_result *r);

/*
 * runs.csv: one line per run in run order (rows[i].run == i), the axis values of its cell, its
 * seed and status and every figure of sim_sweep_row. Returns SIM_OK or SIM_E_IO.
 */
int sim_sweep_write_runs(const sim_sweep *sw, const sim_sweep_row *rows, FILE *out);

/*
 * summary.csv: one line per cell: its axis values, the number of runs that succeeded, and per
 * figure the mean over them and the half-width of its 95 % confidence interval (Student's t
 * with n - 1 degrees of freedom; empty with one run). Returns SIM_OK or SIM_E_IO.
 */
int sim_sweep_write_summary(const sim_sweep *sw, const sim_sweep_row *rows, FILE *out);

#ifdef __cplusplus
}
#endif

#endif
