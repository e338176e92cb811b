/*
 * Decoder for the orders CSV. It is strict where a mistake would move money (numbers are plain
 * base-10 integers, sides are buy or sell, one side per participant) and lenient where it only
 * costs a user time (a UTF-8 BOM, CRLF line ends, blank lines, '#' comments, spaces around
 * fields and RFC 4180 quoting are accepted). Every rejection names line and column.
 */
#include "mgx/order_csv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char HEADER[4][20] = {"participant", "side", "energy_wh", "price_uc_per_kwh"};

typedef struct {
    char *name; /* malloc'd; moved into the set or freed */
    size_t name_len;
    mkt_side side;
    int64_t energy_wh;
    int64_t price;
    size_t line;
} row;

struct mkt_order_set {
    mkt_order *orders;
    size_t n_orders;
    char **names;   /* by id, each NUL-terminated, owned */
    size_t *lines;  /* n_orders * MKT_MAX_STEPS */
    size_t *first;  /* first line of each participant */
};

typedef struct {
    const char *p, *end;
    size_t line;
    mkt_csv_error *err;
} reader;

/* The format attribute lets the compiler check every message against its arguments (and
 * keeps clang's -Wformat-nonliteral quiet about the vsnprintf below). */
__attribute__((format(printf, 4, 5))) static int fail(mkt_csv_error *err, size_t line,
                                                      size_t col, const char *fmt, ...);

static int fail(mkt_csv_error *err, size_t line, size_t col, const char *fmt, ...)
{
    err->line = line;
    err->column = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return MKT_E_INVAL;
}

/* One field, unquoted into out (at most cap-1 bytes, NUL-terminated). Leaves r->p at the
 * separator, the line end or the input end. */
static int read_field(reader *r, size_t col, char *out, size_t cap, size_t *len)
{
    size_t n = 0;
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t'))
        r->p++;
    int quoted = r->p < r->end && *r->p == '"', was_quoted = quoted;
    if (quoted)
        r->p++;
    for (;;) {
        if (r->p >= r->end) {
            if (quoted)
                return fail(r->err, r->line, col, "unterminated quoted field");
            break;
        }
        char ch = *r->p;
        if (quoted && ch == '"') {
            if (r->p + 1 < r->end && r->p[1] == '"') {
                r->p++; /* "" is one quote */
            } else {
                r->p++;
                quoted = 0;
                while (r->p < r->end && (*r->p == ' ' || *r->p == '\t'))
                    r->p++;
                if (r->p < r->end && *r->p != ',' && *r->p != '\n' && *r->p != '\r')
                    return fail(r->err, r->line, col, "text after closing quote");
                break;
            }
        } else if (!quoted && (ch == ',' || ch == '\n' || ch == '\r')) {
            break;
        } else if (ch == '\n' || ch == '\0') {
            return fail(r->err, r->line, col, "line break or NUL inside a field");
        }
        if (n + 1 >= cap)
            return fail(r->err, r->line, col, "field longer than %zu bytes", cap - 1);
        out[n++] = *r->p++;
    }
    /* Spaces around a field are padding; inside quotes they are content ("bob " is not "bob"). */
    while (!was_quoted && n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    out[n] = '\0';
    *len = n;
    return MKT_OK;
}

/* Reads the fields of one line; returns the field count through *n (at most 5 kept). */
static int read_line(reader *r, char fields[5][MKT_CSV_NAME_MAX + 1], size_t lens[5], size_t *n)
{
    size_t k = 0;
    for (;;) {
        char spill[MKT_CSV_NAME_MAX + 1];
        char *dst = k < 5 ? fields[k] : spill;
        size_t len = 0;
        int rc = read_field(r, k + 1, dst, MKT_CSV_NAME_MAX + 1, &len);
        if (rc)
            return rc;
        if (k < 5)
            lens[k] = len;
        k++;
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        break;
    }
    if (r->p < r->end && *r->p == '\r')
        r->p++;
    if (r->p < r->end && *r->p == '\n')
        r->p++;
    else if (r->p < r->end)
        return fail(r->err, r->line, k, "stray carriage return");
    *n = k;
    return MKT_OK;
}

static int blank_or_comment(const reader *r)
{
    const char *q = r->p;
    while (q < r->end && (*q == ' ' || *q == '\t'))
        q++;
    return q >= r->end || *q == '\n' || *q == '\r' || *q == '#';
}

static void skip_line(reader *r)
{
    while (r->p < r->end && *r->p != '\n')
        r->p++;
    if (r->p < r->end)
        r->p++;
}

static int parse_int(const char *s, int64_t max, int64_t *out)
{
    if (*s == '+')
        s++;
    if (*s == '\0')
        return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (INT64_MAX - (*s - '0')) / 10)
            return -2;
        v = v * 10 + (*s - '0');
    }
    if (v > max)
        return -2;
    *out = v;
    return 0;
}

/* "-" followed by digits: a number that is well formed but negative, worth its own message. */
static int is_negative_int(const char *s)
{
    if (*s++ != '-' || *s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int lower_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char ca = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        if (ca != *b)
            return 0;
    }
    return *a == *b;
}

static int parse_row(reader *r, char f[5][MKT_CSV_NAME_MAX + 1], const size_t lens[5], row *out)
{
    if (lens[0] == 0)
        return fail(r->err, r->line, 1, "empty participant name");
    for (size_t i = 0; i < lens[0]; i++)
        if ((unsigned char)f[0][i] < 0x20 || f[0][i] == 0x7f)
            return fail(r->err, r->line, 1, "control character in participant name");
    if (lower_eq(f[1], "buy"))
        out->side = MKT_BUY;
    else if (lower_eq(f[1], "sell"))
        out->side = MKT_SELL;
    else
        return fail(r->err, r->line, 2, "side must be 'buy' or 'sell', not '%s'", f[1]);
    int rc = parse_int(f[2], MKT_ENERGY_MAX_WH, &out->energy_wh);
    if (rc == -1 && is_negative_int(f[2]))
        return fail(r->err, r->line, 3, "energy_wh must be positive (1 to %lld Wh), not '%s'",
                    (long long)MKT_ENERGY_MAX_WH, f[2]);
    if (rc == -1)
        return fail(r->err, r->line, 3, "energy_wh '%s' is not a whole number of Wh", f[2]);
    if (rc == -2 || out->energy_wh == 0)
        return fail(r->err, r->line, 3, "energy_wh must be between 1 and %lld Wh",
                    (long long)MKT_ENERGY_MAX_WH);
    rc = parse_int(f[3], MKT_PRICE_MAX_UC_PER_KWH, &out->price);
    if (rc == -1 && is_negative_int(f[3]))
        return fail(r->err, r->line, 4, "price_uc_per_kwh must be >= 0 (0 to %lld), not '%s'",
                    (long long)MKT_PRICE_MAX_UC_PER_KWH, f[3]);
    if (rc == -1)
        return fail(r->err, r->line, 4, "price_uc_per_kwh '%s' is not a whole number", f[3]);
    if (rc == -2)
        return fail(r->err, r->line, 4, "price_uc_per_kwh must be between 0 and %lld",
                    (long long)MKT_PRICE_MAX_UC_PER_KWH);
    out->line = r->line;
    return MKT_OK;
}

static int check_header(reader *r, char f[5][MKT_CSV_NAME_MAX + 1], size_t n)
{
    if (n != 4)
        return fail(r->err, r->line, 0, "header must be '%s,%s,%s,%s'", HEADER[0], HEADER[1],
                    HEADER[2], HEADER[3]);
    for (size_t i = 0; i < 4; i++)
        if (strcmp(f[i], HEADER[i]) != 0)
            return fail(r->err, r->line, i + 1, "header column %zu must be '%s', not '%s'", i + 1,
                        HEADER[i], f[i]);
    return MKT_OK;
}

static int cmp_names(const row *x, const row *y)
{
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int cmp_rows(const void *a, const void *b)
{
    const row *x = a, *y = b;
    int c = cmp_names(x, y);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

void mkt_order_set_free(mkt_order_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n_orders && set->names; i++)
        free(set->names[i]);
    free(set->names);
    free(set->orders);
    free(set->lines);
    free(set->first);
    free(set);
}

/* Reads every data row; each row owns a malloc'd copy of its name. */
static int read_rows(reader *r, size_t max_rows, row **rows_out, size_t *n_rows)
{
    char f[5][MKT_CSV_NAME_MAX + 1];
    size_t lens[5], nf = 0, cap = 0, n = 0;
    row *rows = NULL;
    int rc = MKT_OK, have_header = 0;
    for (r->line = 1; r->p < r->end; r->line++) {
        if (blank_or_comment(r)) {
            skip_line(r);
            continue;
        }
        if ((rc = read_line(r, f, lens, &nf)))
            goto out;
        if (!have_header) {
            if ((rc = check_header(r, f, nf)))
                goto out;
            have_header = 1;
            continue;
        }
        if (nf != 4) {
            rc = fail(r->err, r->line, nf > 4 ? 5 : nf, "expected 4 fields, found %zu", nf);
            goto out;
        }
        if (n == max_rows) {
            rc = fail(r->err, r->line, 0, "more than %zu order rows", max_rows);
            goto out;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            row *q = realloc(rows, ncap * sizeof *q);
            if (!q) {
                rc = fail(r->err, r->line, 0, "out of memory");
                rc = MKT_E_NOMEM;
                goto out;
            }
            rows = q;
            cap = ncap;
        }
        if ((rc = parse_row(r, f, lens, &rows[n])))
            goto out;
        char *name = malloc(lens[0] + 1);
        if (!name) {
            rc = MKT_E_NOMEM;
            fail(r->err, r->line, 0, "out of memory");
            goto out;
        }
        memcpy(name, f[0], lens[0] + 1);
        rows[n].name = name;
        rows[n].name_len = lens[0];
        n++;
    }
    if (!have_header)
        rc = fail(r->err, 0, 0, "no header line: expected '%s,%s,%s,%s'", HEADER[0], HEADER[1],
                  HEADER[2], HEADER[3]);
out:
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(rows[i].name);
        free(rows);
        return rc;
    }
    *rows_out = rows;
    *n_rows = n;
    return MKT_OK;
}

/* Groups rows (sorted by name, then line) into orders; takes ownership of the names. */
static int group_rows(row *rows, size_t n, size_t max_orders, mkt_order_set *set,
                      mkt_csv_error *err)
{
    size_t n_orders = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || cmp_names(&rows[i - 1], &rows[i]) != 0)
            n_orders++;
    if (n_orders > max_orders)
        return fail(err, 0, 0, "more than %zu participants", max_orders);
    set->orders = calloc(n_orders ? n_orders : 1, sizeof *set->orders);
    set->names = calloc(n_orders ? n_orders : 1, sizeof *set->names);
    set->lines = calloc((n_orders ? n_orders : 1) * MKT_MAX_STEPS, sizeof *set->lines);
    set->first = calloc(n_orders ? n_orders : 1, sizeof *set->first);
    if (!set->orders || !set->names || !set->lines || !set->first) {
        fail(err, 0, 0, "out of memory");
        return MKT_E_NOMEM;
    }
    size_t k = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        const row *rw = &rows[i];
        if (k == SIZE_MAX || strcmp(set->names[k], rw->name) != 0) {
            k = k == SIZE_MAX ? 0 : k + 1;
            set->names[k] = rw->name;
            rows[i].name = NULL;
            set->n_orders = k + 1;
            set->orders[k].participant = k;
            set->orders[k].side = rw->side;
            set->first[k] = rw->line;
        } else {
            free(rw->name);
            rows[i].name = NULL;
        }
        mkt_order *o = &set->orders[k];
        if (rw->side != o->side)
            return fail(err, rw->line, 2,
                        "participant '%s' already %s on line %zu; one side per interval",
                        set->names[k], o->side == MKT_BUY ? "buys" : "sells", set->first[k]);
        if (o->n_steps == MKT_MAX_STEPS)
            return fail(err, rw->line, 1, "participant '%s' has more than %d steps",
                        set->names[k], MKT_MAX_STEPS);
        set->lines[k * MKT_MAX_STEPS + o->n_steps] = rw->line;
        o->steps[o->n_steps].energy_wh = rw->energy_wh;
        o->steps[o->n_steps].price_uc_per_kwh = rw->price;
        o->n_steps++;
    }
    return MKT_OK;
}

int mkt_csv_parse(const char *buf, size_t len, size_t max_orders, size_t max_rows,
                  mkt_order_set **out, mkt_csv_error *err)
{
    mkt_csv_error scratch;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    if ((!buf && len) || !out)
        return fail(err, 0, 0, "invalid argument");
    *out = NULL;
    reader r = {buf, buf + len, 1, err};
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        r.p += 3;
    row *rows = NULL;
    size_t n = 0;
    int rc = read_rows(&r, max_rows, &rows, &n);
    if (rc)
        return rc;
    if (n > 1) /* a header-only file has rows == NULL, which qsort must not be given */
        qsort(rows, n, sizeof *rows, cmp_rows);
    mkt_order_set *set = calloc(1, sizeof *set);
    if (!set) {
        rc = MKT_E_NOMEM;
        fail(err, 0, 0, "out of memory");
        goto out;
    }
    rc = group_rows(rows, n, max_orders, set, err);
out:
    for (size_t i = 0; i < n; i++)
        free(rows[i].name);
    free(rows);
    if (rc) {
        mkt_order_set_free(set);
        return rc;
    }
    *out = set;
    return MKT_OK;
}

const mkt_order *mkt_order_set_orders(const mkt_order_set *set, size_t *count)
{
    if (count)
        *count = set->n_orders;
    return set->orders;
}

const char *mkt_order_set_name(const mkt_order_set *set, uint64_t participant)
{
    return participant < set->n_orders ? set->names[participant] : NULL;
}

size_t mkt_order_set_line(const mkt_order_set *set, size_t order_index, int step_index)
{
    if (order_index >= set->n_orders)
        return 0;
    if (step_index < 0 || step_index >= MKT_MAX_STEPS)
        return set->first[order_index];
    return set->lines[order_index * MKT_MAX_STEPS + (size_t)step_index];
}
