/*
 * Sweeps (mgx/sweep.h): the sweep file, the scenario of every run, and the CSV of what the runs
 * measured. Every cell's scenario is built once at load from the base scenario with
 * sim_scenario_set, so a value the scenario rules refuse stops the sweep before any run, and the
 * runners (threads or MPI ranks) only read the sweep.
 */
#define _POSIX_C_SOURCE 200809L
#include "mgx/sweep.h"

#include "fail.h"

#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <ini.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct sim_sweep {
    char path[SIM_SWEEP_PATH_MAX];
    char scenario_path[SIM_SWEEP_PATH_MAX];
    uint32_t seeds;
    uint64_t seed;
    bool seed_given;
    size_t n_sets;
    sim_sweep_set sets[SIM_SWEEP_MAX_SETS];
    size_t n_axes;
    sim_sweep_axis axes[SIM_SWEEP_MAX_AXES];
    size_t n_cells;
    sim_scenario *cells; /* n_cells scenarios */
};

/* ---- the sweep file ----------------------------------------------------------------- */

typedef struct {
    sim_sweep *sw;
    int line;
    bool failed;
    char msg[SIM_SWEEP_PATH_MAX + 520]; /* path:line: message */
    bool have_scenario;
    char scenario_rel[SIM_SWEEP_PATH_MAX];
} load_ctx;

/* Records the first error with the line; returns 0 so handlers can `return failf(...)`. */
__attribute__((format(printf, 2, 3))) static int failf(load_ctx *c, const char *fmt, ...)
{
    char m[400];
    va_list ap;
    if (c->failed)
        return 0;
    c->failed = true;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    snprintf(c->msg, sizeof c->msg, "%s:%d: %s", c->sw->path, c->line, m);
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* "market.mechanism" -> [market] mechanism; "group.roof.count" -> [group.roof] count. */
static bool split_key(const char *name, sim_sweep_key *k)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || dot[1] == '\0')
        return false;
    size_t sl = (size_t)(dot - name);
    if (sl >= sizeof k->section || strlen(dot + 1) >= sizeof k->key)
        return false;
    memcpy(k->section, name, sl);
    k->section[sl] = '\0';
    strcpy(k->key, dot + 1);
    return true;
}

static int on_sweep_key(load_ctx *c, const char *name, const char *value)
{
    sim_sweep *sw = c->sw;
    char *end = NULL;
    if (strcmp(name, "scenario") == 0) {
        if (strlen(value) == 0 || strlen(value) >= sizeof c->scenario_rel)
            return failf(c, "scenario: a path of 1 to %d characters", SIM_SWEEP_PATH_MAX - 1);
        strcpy(c->scenario_rel, value);
        c->have_scenario = true;
    } else if (strcmp(name, "seeds") == 0) {
        errno = 0;
        unsigned long v = strtoul(value, &end, 10);
        if (errno || end == value || *end || v < 1 || v > SIM_SWEEP_MAX_SEEDS || value[0] == '-')
            return failf(c, "seeds = %s: expected 1 to %d", value, SIM_SWEEP_MAX_SEEDS);
        sw->seeds = (uint32_t)v;
    } else if (strcmp(name, "seed") == 0) {
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-')
            return failf(c, "seed = %s: expected an integer from 0", value);
        sw->seed = v;
        sw->seed_given = true;
    } else {
        failf(c, "unknown key '%s' in [sweep] (scenario, seeds, seed)", name);
    }
    return 0;
}

static int on_set(load_ctx *c, const char *name, const char *value)
{
    sim_sweep *sw = c->sw;
    if (sw->n_sets == SIM_SWEEP_MAX_SETS)
        return failf(c, "more than %d keys in [set]", SIM_SWEEP_MAX_SETS);
    sim_sweep_set *s = &sw->sets[sw->n_sets];
    if (!split_key(name, &s->key))
        return failf(c, "'%s': expected section.key (e.g. market.mechanism)", name);
    if (strlen(value) == 0 || strlen(value) >= sizeof s->value)
        return failf(c, "%s: a value of 1 to %d characters", name, SIM_NAME_MAX - 1);
    strcpy(s->value, value);
    sw->n_sets++;
    return 0;
}

static int on_vary(load_ctx *c, const char *name, const char *value)
{
    sim_sweep *sw = c->sw;
    if (sw->n_axes == SIM_SWEEP_MAX_AXES)
        return failf(c, "more than %d keys in [vary]", SIM_SWEEP_MAX_AXES);
    sim_sweep_axis *a = &sw->axes[sw->n_axes];
    memset(a, 0, sizeof *a);
    if (!split_key(name, &a->key))
        return failf(c, "'%s': expected section.key (e.g. market.mechanism)", name);
    for (size_t i = 0; i < sw->n_axes; i++)
        if (!strcmp(sw->axes[i].key.section, a->key.section) &&
            !strcmp(sw->axes[i].key.key, a->key.key))
            return failf(c, "'%s' varies twice", name);
    char buf[SIM_SWEEP_MAX_VALUES * SIM_NAME_MAX];
    if (strlen(value) >= sizeof buf)
        return failf(c, "%s: the list is too long", name);
    strcpy(buf, value);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        t = trim(t);
        if (a->n_values == SIM_SWEEP_MAX_VALUES)
            return failf(c, "%s: more than %d values", name, SIM_SWEEP_MAX_VALUES);
        if (strlen(t) == 0 || strlen(t) >= SIM_NAME_MAX)
            return failf(c, "%s: a value of 1 to %d characters", name, SIM_NAME_MAX - 1);
        strcpy(a->values[a->n_values++], t);
    }
    if (a->n_values == 0)
        return failf(c, "%s: no values", name);
    sw->n_axes++;
    return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    load_ctx *c = user;
    if (c->failed)
        return 0;
    if (strcmp(section, "sweep") == 0)
        on_sweep_key(c, name, value);
    else if (strcmp(section, "set") == 0)
        on_set(c, name, value);
    else if (strcmp(section, "vary") == 0)
        on_vary(c, name, value);
    else
        failf(c, "unknown section [%s] (sweep, set or vary)", section);
    return !c->failed;
}

/* inih's line source, counting lines for the messages. */
typedef struct {
    FILE *fp;
    load_ctx *c;
} line_src;

static char *read_line(char *str, int num, void *stream)
{
    line_src *s = stream;
    if (s->c->failed || !fgets(str, num, s->fp))
        return NULL;
    s->c->line++;
    /* a section is checked at its header, so an empty unknown one is not passed over */
    const char *h = str + strspn(str, " \t");
    if (h[0] == '[') {
        size_t n = strcspn(h + 1, "]");
        static const char *const known[] = {"sweep", "set", "vary"};
        bool ok = false;
        for (size_t i = 0; i < 3; i++)
            ok |= strlen(known[i]) == n && memcmp(h + 1, known[i], n) == 0;
        if (!ok) {
            failf(s->c, "unknown section [%.*s] (sweep, set or vary)", (int)n, h + 1);
            return NULL;
        }
    }
    return str;
}

/* The scenario path as given, or beside the sweep file when relative. */
static int resolve(sim_sweep *sw, const char *rel, char *err, size_t err_len)
{
    const char *slash = strrchr(sw->path, '/');
    int n;
    if (rel[0] == '/' || !slash)
        n = snprintf(sw->scenario_path, sizeof sw->scenario_path, "%s", rel);
    else
        n = snprintf(sw->scenario_path, sizeof sw->scenario_path, "%.*s/%s",
                     (int)(slash - sw->path), sw->path, rel);
    if (n < 0 || (size_t)n >= sizeof sw->scenario_path)
        return sim_fail(err, err_len, SIM_E_PARSE, "%s: the scenario path is too long", sw->path);
    return SIM_OK;
}

static int read_file(sim_sweep *sw, load_ctx *c, char *err, size_t err_len)
{
    FILE *fp = fopen(sw->path, "r");
    if (!fp)
        return sim_fail(err, err_len, SIM_E_IO, "%s: %s", sw->path, strerror(errno));
    line_src src = {fp, c};
    int line = ini_parse_stream(read_line, &src, on_key, c);
    fclose(fp);
    if (c->failed)
        return sim_fail(err, err_len, SIM_E_PARSE, "%s", c->msg);
    if (line < 0)
        return sim_fail(err, err_len, SIM_E_NOMEM, "%s: out of memory", sw->path);
    if (line > 0)
        return sim_fail(err, err_len, SIM_E_PARSE,
                        "%s:%d: syntax error: expected [section], key = value or a comment",
                        sw->path, line);
    if (!c->have_scenario)
        return sim_fail(err, err_len, SIM_E_PARSE, "%s: [sweep] needs scenario = FILE", sw->path);
    return resolve(sw, c->scenario_rel, err, err_len);
}

/* ---- the cells ---------------------------------------------------------------------- */

const char *sim_sweep_value(const sim_sweep *sw, size_t cell, size_t a)
{
    /* the first axis varies slowest */
    size_t rest = cell;
    for (size_t i = sw->n_axes; i-- > a + 1;)
        rest /= sw->axes[i].n_values;
    return sw->axes[a].values[rest % sw->axes[a].n_values];
}

static int build_cells(sim_sweep *sw, const sim_scenario *base, char *err, size_t err_len)
{
    char m[400];
    sim_scenario common = *base;
    for (size_t i = 0; i < sw->n_sets; i++) {
        const sim_sweep_set *s = &sw->sets[i];
        if (sim_scenario_set(&common, s->key.section, s->key.key, s->value, m, sizeof m))
            return sim_fail(err, err_len, SIM_E_PARSE, "%s: [set] %s.%s: %s", sw->path,
                            s->key.section, s->key.key, m);
    }
    sw->n_cells = 1;
    for (size_t a = 0; a < sw->n_axes; a++)
        sw->n_cells *= sw->axes[a].n_values; /* <= 32^8 fits size_t; bounded below */
    if (sw->n_cells > SIM_SWEEP_MAX_RUNS / sw->seeds)
        return sim_fail(err, err_len, SIM_E_PARSE, "%s: %zu cells x %u seeds is more than %d runs",
                        sw->path, sw->n_cells, (unsigned)sw->seeds, SIM_SWEEP_MAX_RUNS);
    sw->cells = malloc(sw->n_cells * sizeof *sw->cells);
    if (!sw->cells)
        return sim_fail(err, err_len, SIM_E_NOMEM, "out of memory");
    for (size_t c = 0; c < sw->n_cells; c++) {
        sw->cells[c] = common;
        for (size_t a = 0; a < sw->n_axes; a++) {
            const sim_sweep_axis *ax = &sw->axes[a];
            const char *v = sim_sweep_value(sw, c, a);
            if (sim_scenario_set(&sw->cells[c], ax->key.section, ax->key.key, v, m, sizeof m))
                return sim_fail(err, err_len, SIM_E_PARSE, "%s: cell %zu, [vary] %s.%s = %s: %s",
                                sw->path, c, ax->key.section, ax->key.key, v, m);
        }
    }
    if (!sw->seed_given)
        sw->seed = base->seed;
    return SIM_OK;
}

sim_sweep *sim_sweep_load(const char *path, int *rc, char *err, size_t err_len)
{
    int r = SIM_OK;
    sim_scenario *base = NULL;
    sim_sweep *sw = calloc(1, sizeof *sw);
    load_ctx *c = calloc(1, sizeof *c);
    if (!path || strlen(path) >= sizeof sw->path) {
        r = sim_fail(err, err_len, SIM_E_INVAL, "no sweep file, or its path is too long");
        goto out;
    }
    base = malloc(sizeof *base);
    if (!sw || !c || !base) {
        r = sim_fail(err, err_len, SIM_E_NOMEM, "out of memory");
        goto out;
    }
    strcpy(sw->path, path);
    sw->seeds = 1;
    c->sw = sw;
    r = read_file(sw, c, err, err_len);
    if (r == SIM_OK)
        r = sim_scenario_load(sw->scenario_path, base, err, err_len);
    if (r == SIM_OK)
        r = build_cells(sw, base, err, err_len);
out:
    free(base);
    free(c);
    if (r != SIM_OK) {
        sim_sweep_free(sw);
        sw = NULL;
    }
    if (rc)
        *rc = r;
    return sw;
}

void sim_sweep_free(sim_sweep *sw)
{
    if (!sw)
        return;
    free(sw->cells);
    free(sw);
}

size_t sim_sweep_cells(const sim_sweep *sw) { return sw->n_cells; }
size_t sim_sweep_seeds(const sim_sweep *sw) { return sw->seeds; }
size_t sim_sweep_runs(const sim_sweep *sw) { return sw->n_cells * sw->seeds; }
size_t sim_sweep_axes(const sim_sweep *sw) { return sw->n_axes; }
const sim_sweep_axis *sim_sweep_axis_at(const sim_sweep *sw, size_t i) { return &sw->axes[i]; }
const char *sim_sweep_scenario_path(const sim_sweep *sw) { return sw->scenario_path; }

const sim_scenario *sim_sweep_scenario(const sim_sweep *sw, size_t run, uint64_t *seed)
{
    if (seed)
        *seed = sw->seed + run % sw->seeds;
    return &sw->cells[run / sw->seeds];
}

/* ---- what the runs measured --------------------------------------------------------- */

void sim_sweep_row_fill(sim_sweep_row *row, const sim_result *r)
{
    const sim_kpis *k = sim_result_kpis(r), *b = sim_result_baseline(r);
    row->status = SIM_OK;
    row->err[0] = '\0';
    row->baseline_cost_uc = b->cost_uc;
    row->cost_uc = k->cost_uc;
    row->saving_uc = b->cost_uc - k->cost_uc;
    row->local_traded_wh = k->local_traded_wh;
    row->grid_import_wh = k->grid_import_wh;
    row->peak_import_wh = k->peak_import_wh;
    row->worst_saving_uc = k->savings_min_uc;
    row->homes_worse_off = (int64_t)k->homes_worse_off;
    row->self_sufficiency = k->self_sufficiency;
    row->volume_weighted_price_uc_per_kwh = k->volume_weighted_price_uc_per_kwh;
}

/* The figures of a row, in the order of FIGURES, as doubles for the summary. */
static const char *const FIGURES[] = {
    "baseline_cost_uc", "cost_uc",         "saving_uc",       "local_traded_wh",
    "grid_import_wh",   "peak_import_wh",  "worst_saving_uc", "homes_worse_off",
    "self_sufficiency", "volume_weighted_price_uc_per_kwh"};
enum { N_FIGURES = sizeof FIGURES / sizeof FIGURES[0] };

static void figures(const sim_sweep_row *r, double f[N_FIGURES])
{
    f[0] = (double)r->baseline_cost_uc;
    f[1] = (double)r->cost_uc;
    f[2] = (double)r->saving_uc;
    f[3] = (double)r->local_traded_wh;
    f[4] = (double)r->grid_import_wh;
    f[5] = (double)r->peak_import_wh;
    f[6] = (double)r->worst_saving_uc;
    f[7] = (double)r->homes_worse_off;
    f[8] = r->self_sufficiency;
    f[9] = r->volume_weighted_price_uc_per_kwh;
}

static void write_axis_header(const sim_sweep *sw, FILE *out)
{
    for (size_t a = 0; a < sw->n_axes; a++)
        fprintf(out, ",%s.%s", sw->axes[a].key.section, sw->axes[a].key.key);
}

static void write_axis_values(const sim_sweep *sw, size_t cell, FILE *out)
{
    for (size_t a = 0; a < sw->n_axes; a++)
        fprintf(out, ",%s", sim_sweep_value(sw, cell, a));
}

int sim_sweep_write_runs(const sim_sweep *sw, const sim_sweep_row *rows, FILE *out)
{
    fputs("run,cell", out);
    write_axis_header(sw, out);
    fputs(",seed,status", out);
    for (size_t i = 0; i < N_FIGURES; i++)
        fprintf(out, ",%s", FIGURES[i]);
    fputc('\n', out);
    for (size_t i = 0; i < sim_sweep_runs(sw); i++) {
        const sim_sweep_row *r = &rows[i];
        fprintf(out, "%zu,%zu", i, i / sw->seeds);
        write_axis_values(sw, i / sw->seeds, out);
        fprintf(out, ",%" PRIu64 ",%s", r->seed, r->status == SIM_OK ? "ok" : "failed");
        if (r->status != SIM_OK) {
            for (size_t f = 0; f < N_FIGURES; f++)
                fputc(',', out);
            fputc('\n', out);
            continue;
        }
        fprintf(out,
                ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                ",%" PRId64 ",%" PRId64 ",%.6f,%.1f\n",
                r->baseline_cost_uc, r->cost_uc, r->saving_uc, r->local_traded_wh,
                r->grid_import_wh, r->peak_import_wh, r->worst_saving_uc, r->homes_worse_off,
                r->self_sufficiency, r->volume_weighted_price_uc_per_kwh);
    }
    return ferror(out) ? SIM_E_IO : SIM_OK;
}

int sim_sweep_write_summary(const sim_sweep *sw, const sim_sweep_row *rows, FILE *out)
{
    fputs("cell", out);
    write_axis_header(sw, out);
    fputs(",runs_ok", out);
    for (size_t i = 0; i < N_FIGURES; i++)
        fprintf(out, ",%s_mean,%s_ci95", FIGURES[i], FIGURES[i]);
    fputc('\n', out);
    for (size_t c = 0; c < sw->n_cells; c++) {
        double sum[N_FIGURES] = {0}, sq[N_FIGURES] = {0}, mean[N_FIGURES] = {0}, f[N_FIGURES];
        size_t n = 0;
        /* two passes in run order: the same sums, bit for bit, however the runs were shared */
        for (size_t k = 0; k < sw->seeds; k++) {
            const sim_sweep_row *r = &rows[c * sw->seeds + k];
            if (r->status != SIM_OK)
                continue;
            figures(r, f);
            for (size_t i = 0; i < N_FIGURES; i++)
                sum[i] += f[i];
            n++;
        }
        for (size_t i = 0; i < N_FIGURES && n > 0; i++)
            mean[i] = sum[i] / (double)n;
        for (size_t k = 0; k < sw->seeds; k++) {
            const sim_sweep_row *r = &rows[c * sw->seeds + k];
            if (r->status != SIM_OK)
                continue;
            figures(r, f);
            for (size_t i = 0; i < N_FIGURES; i++)
                sq[i] += (f[i] - mean[i]) * (f[i] - mean[i]);
        }
        fprintf(out, "%zu", c);
        write_axis_values(sw, c, out);
        fprintf(out, ",%zu", n);
        double t = n > 1 ? gsl_cdf_tdist_Pinv(0.975, (double)(n - 1)) : 0.0;
        for (size_t i = 0; i < N_FIGURES; i++) {
            if (n == 0) {
                fputs(",,", out);
                continue;
            }
            fprintf(out, ",%.10g", mean[i]);
            if (n > 1)
                fprintf(out, ",%.10g", t * sqrt(sq[i] / (double)(n - 1)) / sqrt((double)n));
            else
                fputc(',', out);
        }
        fputc('\n', out);
    }
    return ferror(out) ? SIM_E_IO : SIM_OK;
}
