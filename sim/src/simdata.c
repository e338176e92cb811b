/*
 * Measured per-home data (`timestamp,home,load_wh,pv_wh`) mapped onto the scenario's interval
 * grid. The parser is strict on purpose: a measured series that silently lost an interval or
 * landed an hour off would bias every result computed from it, so rows must sit exactly on the
 * grid, name a home of the scenario, and cover every interval of the period for each home they
 * name. Memory is one array of 2 x intervals int64 per named home, bounded by
 * SIM_DATA_MAX_CELLS.
 */
#include "mgx/simdata.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timegrid.h"

#define HEADER "timestamp,home,load_wh,pv_wh"
#define UNSET (-1) /* load of an interval no row has filled yet */

struct sim_data {
    size_t n_intervals;
    size_t n_homes;
    size_t *home_index; /* [n_homes], ascending scenario home indices */
    int64_t **wh;       /* [n_homes] -> [n_intervals][2]: load, pv */
};

typedef struct {
    const sim_scenario *sc;
    const char *name;
    char *err;
    size_t err_len;
    int line;
    size_t n_int;
    int64_t t0_utc, step_s;
    size_t n_scen_homes;
    size_t group_base[SIM_MAX_GROUPS]; /* scenario index of each group's first home */
    int64_t **by_home;                 /* [n_scen_homes], NULL until the home appears */
    size_t n_named;
    size_t cells;
} parse_ctx;

typedef struct {
    const char *s, *e; /* a field, not NUL-terminated */
} span;

static void fail(parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(parse_ctx *c, const char *fmt, ...)
{
    char m[320];
    va_list ap;
    if (!c->err || c->err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (c->line > 0)
        snprintf(c->err, c->err_len, "%s:%d: %s", c->name, c->line, m);
    else
        snprintf(c->err, c->err_len, "%s: %s", c->name, m);
}

static int span_eq(span f, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(f.e - f.s) == n && memcmp(f.s, s, n) == 0;
}

static int flen(span f)
{
    return f.e - f.s > 80 ? 80 : (int)(f.e - f.s); /* keeps messages short */
}

/* ---- timestamps ----------------------------------------------------------------------- */

static int digits(const char *s, const char *e, int n, int *out)
{
    int v = 0;
    if (e - s < n)
        return -1;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Optional zone suffix: "", "Z", "+hh:mm", "+hhmm" or "+hh". */
static int parse_zone(const char *s, const char *e, int naive_min, int *off_min)
{
    int h, m = 0;
    if (s == e) {
        *off_min = naive_min;
        return 0;
    }
    if (e - s == 1 && *s == 'Z') {
        *off_min = 0;
        return 0;
    }
    if ((*s != '+' && *s != '-') || digits(s + 1, e, 2, &h) || h > 14)
        return -1;
    const char *p = s + 3;
    if (p < e && *p == ':')
        p++;
    if (p < e || p > s + 3) { /* minutes follow "+hh:" or "+hh" directly */
        if (digits(p, e, 2, &m) || m > 59 || p + 2 != e)
            return -1;
    }
    *off_min = (*s == '-' ? -1 : 1) * (h * 60 + m);
    return 0;
}

/* ISO 8601 "YYYY-MM-DD[T ]hh:mm[:ss[.fff]][zone]" to Unix seconds. *sub is set when the
 * fraction of a second is not zero (such a time cannot be on any grid). */
static int parse_ts(span f, int naive_min, int64_t *utc, int *sub)
{
    const char *s = f.s, *e = f.e;
    int y, mo, d, h, mi, sec = 0, off;
    if (digits(s, e, 4, &y) || e - s < 16 || s[4] != '-' || digits(s + 5, e, 2, &mo) ||
        s[7] != '-' || digits(s + 8, e, 2, &d) || (s[10] != 'T' && s[10] != ' ') ||
        digits(s + 11, e, 2, &h) || s[13] != ':' || digits(s + 14, e, 2, &mi))
        return -1;
    const char *p = s + 16;
    *sub = 0;
    if (p < e && *p == ':') {
        if (digits(p + 1, e, 2, &sec))
            return -1;
        p += 3;
        if (p < e && *p == '.') {
            const char *q = ++p;
            for (; p < e && *p >= '0' && *p <= '9'; p++)
                *sub |= *p != '0';
            if (p == q)
                return -1;
        }
    }
    if (y < 1900 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > mkt_days_in_month(y, mo) ||
        h > 23 || mi > 59 || sec > 59 || parse_zone(p, e, naive_min, &off))
        return -1;
    *utc = mkt_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (int64_t)off * 60;
    return 0;
}

/* Local standard time of a Unix instant as "YYYY-MM-DD hh:mm+hh:mm" (for messages). */
static void format_local(const sim_scenario *sc, int64_t utc, char *out, size_t len)
{
    int64_t t = utc + (int64_t)sc->utc_offset_min * 60;
    int64_t days = (t >= 0 ? t : t - 86399) / 86400, sod = t - days * 86400;
    int64_t y, m, d;
    mkt_civil_from_days(days, &y, &m, &d);
    int32_t o = sc->utc_offset_min < 0 ? -sc->utc_offset_min : sc->utc_offset_min;
    snprintf(out, len, "%04d-%02d-%02d %02lld:%02lld%c%02d:%02d", (int)y, (int)m, (int)d,
             (long long)(sod / 3600), (long long)(sod / 60 % 60),
             sc->utc_offset_min < 0 ? '-' : '+', (int)(o / 60), (int)(o % 60));
}

/* ---- fields --------------------------------------------------------------------------- */

/* "<group>-<n>" to a scenario home index; -1 if no such home. */
static int64_t home_lookup(const parse_ctx *c, span f)
{
    const char *dash = NULL;
    for (const char *p = f.s; p < f.e; p++)
        if (*p == '-')
            dash = p;
    if (!dash || dash + 1 == f.e || dash[1] == '0' || f.e - dash > 7)
        return -1;
    size_t n = 0;
    for (const char *p = dash + 1; p < f.e; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        n = n * 10 + (size_t)(*p - '0');
    }
    size_t glen = (size_t)(dash - f.s);
    for (size_t g = 0; g < c->sc->n_groups; g++) {
        const sim_group *gr = &c->sc->groups[g];
        if (strlen(gr->name) == glen && memcmp(gr->name, f.s, glen) == 0)
            return n <= gr->count ? (int64_t)(c->group_base[g] + n - 1) : -1;
    }
    return -1;
}

/* A whole number of Wh, 0 .. 1e12. Returns -1 for syntax, -2 for a negative number. */
static int parse_wh(span f, int64_t *out)
{
    const char *p = f.s;
    int64_t v = 0;
    if (p < f.e && *p == '-')
        return f.e - p > 1 ? -2 : -1;
    if (p == f.e || f.e - p > 13)
        return -1;
    for (; p < f.e; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > INT64_C(1000000000000))
        return -1;
    *out = v;
    return 0;
}

static int split4(const char *s, const char *e, span f[4])
{
    int n = 0;
    f[0].s = s;
    for (const char *p = s; p < e; p++) {
        if (*p != ',')
            continue;
        if (n == 3)
            return -1;
        f[n].e = p;
        f[++n].s = p + 1;
    }
    if (n != 3)
        return -1;
    f[3].e = e;
    return 0;
}

/* ---- rows ----------------------------------------------------------------------------- */

/* The series of scenario home h, created on its first row. */
static int home_series(parse_ctx *c, size_t h, int64_t **out)
{
    if (c->by_home[h]) {
        *out = c->by_home[h];
        return SIM_OK;
    }
    if (c->cells + c->n_int > SIM_DATA_MAX_CELLS) {
        fail(c, "too much data: at most %zu home-intervals (SIM_DATA_MAX_CELLS)",
             (size_t)SIM_DATA_MAX_CELLS);
        return SIM_E_PARSE;
    }
    int64_t *a = malloc(c->n_int * 2 * sizeof *a);
    if (!a) {
        fail(c, "out of memory");
        return SIM_E_NOMEM;
    }
    for (size_t k = 0; k < 2 * c->n_int; k++)
        a[k] = UNSET;
    c->by_home[h] = a;
    c->cells += c->n_int;
    c->n_named++;
    *out = a;
    return SIM_OK;
}

static int parse_energies(parse_ctx *c, const span f[4], int64_t *load, int64_t *pv)
{
    const char *col[2] = {"load_wh", "pv_wh"};
    int64_t *dst[2] = {load, pv};
    for (int j = 0; j < 2; j++) {
        int rc = parse_wh(f[2 + j], dst[j]);
        if (rc == -2) {
            fail(c, "negative %s '%.*s'", col[j], flen(f[2 + j]), f[2 + j].s);
            return SIM_E_PARSE;
        }
        if (rc) {
            fail(c, "bad %s '%.*s': expected a whole number of Wh (0 to 1e12)", col[j],
                 flen(f[2 + j]), f[2 + j].s);
            return SIM_E_PARSE;
        }
    }
    return SIM_OK;
}

static int parse_row(parse_ctx *c, const char *s, const char *e)
{
    span f[4];
    int64_t utc, load, pv;
    int sub;
    if (split4(s, e, f)) {
        fail(c, "expected 4 fields: " HEADER);
        return SIM_E_PARSE;
    }
    if (parse_ts(f[0], c->sc->utc_offset_min, &utc, &sub)) {
        fail(c, "bad timestamp '%.*s': expected YYYY-MM-DD hh:mm[:ss] with optional Z or "
             "+hh:mm", flen(f[0]), f[0].s);
        return SIM_E_PARSE;
    }
    if (parse_energies(c, f, &load, &pv))
        return SIM_E_PARSE;
    int64_t rel = utc - c->t0_utc;
    if (rel < 0 || rel >= (int64_t)c->n_int * c->step_s)
        return SIM_OK; /* outside the period */
    if (sub || rel % c->step_s != 0) {
        fail(c, "timestamp '%.*s' is not on the scenario's %u-minute interval grid "
             "(intervals start at local standard midnight)", flen(f[0]), f[0].s,
             (unsigned)c->sc->interval_min);
        return SIM_E_PARSE;
    }
    int64_t h = home_lookup(c, f[1]);
    if (h < 0) {
        fail(c, "unknown home '%.*s' (the scenario's homes are <group>-<n>, n from 1 to the "
             "group's count)", flen(f[1]), f[1].s);
        return SIM_E_PARSE;
    }
    int64_t *a;
    int rc = home_series(c, (size_t)h, &a);
    if (rc)
        return rc;
    size_t k = (size_t)(rel / c->step_s);
    if (a[2 * k] != UNSET) {
        fail(c, "duplicate row for home '%.*s' at '%.*s'", flen(f[1]), f[1].s, flen(f[0]),
             f[0].s);
        return SIM_E_PARSE;
    }
    a[2 * k] = load;
    a[2 * k + 1] = pv;
    return SIM_OK;
}

/* Walks the lines: optional BOM, comments ('#') and blank lines anywhere, the header first. */
static int parse_lines(parse_ctx *c, const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    int have_header = 0;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        c->line++;
        const char *next = nl ? nl + 1 : end;
        if (e > p && e[-1] == '\r')
            e--;
        if (e == p || *p == '#') {
            p = next;
            continue;
        }
        if (!have_header) {
            if (!span_eq((span){p, e}, HEADER)) {
                fail(c, "expected the header '" HEADER "'");
                return SIM_E_PARSE;
            }
            have_header = 1;
        } else {
            int rc = parse_row(c, p, e);
            if (rc)
                return rc;
        }
        p = next;
    }
    if (!have_header) {
        fail(c, "empty file: expected the header '" HEADER "'");
        return SIM_E_PARSE;
    }
    return SIM_OK;
}

/* Every named home must cover every interval; names the first gap. */
static int check_complete(parse_ctx *c)
{
    c->line = 0;
    for (size_t h = 0; h < c->n_scen_homes; h++) {
        const int64_t *a = c->by_home[h];
        if (!a)
            continue;
        size_t first = SIZE_MAX, missing = 0;
        for (size_t k = 0; k < c->n_int; k++) {
            if (a[2 * k] == UNSET) {
                missing++;
                first = first == SIZE_MAX ? k : first;
            }
        }
        if (missing) {
            char name[SIM_NAME_MAX], ts[96];
            sim_home_name(c->sc, h, name, sizeof name);
            format_local(c->sc, sim_interval_start_utc(c->sc, first), ts, sizeof ts);
            fail(c, "home '%s' has no row for %s (interval %zu; %zu of %zu intervals missing)",
                 name, ts, first, missing, c->n_int);
            return SIM_E_PARSE;
        }
    }
    if (c->n_named == 0) {
        char t0[96], t1[96];
        format_local(c->sc, c->t0_utc, t0, sizeof t0);
        format_local(c->sc, c->t0_utc + (int64_t)c->n_int * c->step_s, t1, sizeof t1);
        fail(c, "no rows inside the scenario period %s .. %s", t0, t1);
        return SIM_E_PARSE;
    }
    return SIM_OK;
}

/* Moves the series out of the parse context into a sim_data, in scenario home order. */
static int take(parse_ctx *c, sim_data **out)
{
    sim_data *d = calloc(1, sizeof *d);
    if (!d)
        return SIM_E_NOMEM;
    d->home_index = calloc(c->n_named, sizeof *d->home_index);
    d->wh = calloc(c->n_named, sizeof *d->wh);
    if (!d->home_index || !d->wh) {
        sim_data_free(d);
        return SIM_E_NOMEM;
    }
    d->n_intervals = c->n_int;
    for (size_t h = 0; h < c->n_scen_homes; h++) {
        if (!c->by_home[h])
            continue;
        d->home_index[d->n_homes] = h;
        d->wh[d->n_homes++] = c->by_home[h];
        c->by_home[h] = NULL;
    }
    *out = d;
    return SIM_OK;
}

int sim_data_parse(const char *buf, size_t len, const char *name, const sim_scenario *sc,
                   sim_data **out, char *err, size_t err_len)
{
    char verr[256];
    parse_ctx c = {.sc = sc, .name = name ? name : "data", .err = err, .err_len = err_len};
    int rc;
    if (!sc || !out || (!buf && len)) {
        fail(&c, "invalid argument");
        return SIM_E_INVAL;
    }
    *out = NULL;
    if (sim_scenario_validate(sc, verr, sizeof verr)) {
        fail(&c, "invalid scenario: %s", verr);
        return SIM_E_INVAL;
    }
    c.n_int = sim_intervals(sc);
    c.step_s = (int64_t)sc->interval_min * 60;
    c.t0_utc = sim_interval_start_utc(sc, 0);
    for (size_t g = 0; g < sc->n_groups; g++) {
        c.group_base[g] = c.n_scen_homes;
        c.n_scen_homes += sc->groups[g].count;
    }
    c.by_home = calloc(c.n_scen_homes, sizeof *c.by_home);
    if (!c.by_home) {
        fail(&c, "out of memory");
        return SIM_E_NOMEM;
    }
    rc = parse_lines(&c, buf ? buf : "", len);
    if (rc == SIM_OK)
        rc = check_complete(&c);
    if (rc == SIM_OK) {
        rc = take(&c, out);
        if (rc)
            fail(&c, "out of memory");
    }
    for (size_t h = 0; h < c.n_scen_homes; h++)
        free(c.by_home[h]);
    free(c.by_home);
    return rc;
}

int sim_data_load(const char *path, const sim_scenario *sc, sim_data **out, char *err,
                  size_t err_len)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = SIM_OK;
    if (!path || !sc || !out) {
        if (err && err_len)
            snprintf(err, err_len, "invalid argument");
        return SIM_E_INVAL;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (err && err_len)
            snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return SIM_E_IO;
    }
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 1u << 16;
            if (cap >= SIM_DATA_MAX_FILE_BYTES) {
                if (err && err_len)
                    snprintf(err, err_len, "%s: larger than %zu bytes", path,
                             (size_t)SIM_DATA_MAX_FILE_BYTES);
                rc = SIM_E_PARSE;
                goto out;
            }
            ncap = ncap > SIM_DATA_MAX_FILE_BYTES ? SIM_DATA_MAX_FILE_BYTES : ncap;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = SIM_E_NOMEM;
                if (err && err_len)
                    snprintf(err, err_len, "%s: out of memory", path);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(fp)) {
        if (err && err_len)
            snprintf(err, err_len, "%s: read error", path);
        rc = SIM_E_IO;
        goto out;
    }
    rc = sim_data_parse(buf, len, path, sc, out, err, err_len);
out:
    free(buf);
    fclose(fp);
    return rc;
}

void sim_data_free(sim_data *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_homes; i++)
        free(d->wh[i]);
    free(d->wh);
    free(d->home_index);
    free(d);
}

size_t sim_data_homes(const sim_data *d)
{
    return d ? d->n_homes : 0;
}

size_t sim_data_home_index(const sim_data *d, size_t i)
{
    return d && i < d->n_homes ? d->home_index[i] : SIZE_MAX;
}

int64_t sim_data_load_wh(const sim_data *d, size_t i, size_t k)
{
    return d && i < d->n_homes && k < d->n_intervals ? d->wh[i][2 * k] : 0;
}

int64_t sim_data_pv_wh(const sim_data *d, size_t i, size_t k)
{
    return d && i < d->n_homes && k < d->n_intervals ? d->wh[i][2 * k + 1] : 0;
}

void sim_home_name(const sim_scenario *sc, size_t h, char *out, size_t len)
{
    if (!out || len == 0)
        return;
    out[0] = '\0';
    if (!sc)
        return;
    for (size_t g = 0; g < sc->n_groups && g < SIM_MAX_GROUPS; g++) {
        if (h < sc->groups[g].count) {
            snprintf(out, len, "%s-%zu", sc->groups[g].name, h + 1);
            return;
        }
        h -= sc->groups[g].count;
    }
}
