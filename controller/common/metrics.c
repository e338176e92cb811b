/*
 * The exposition format writer (metrics.h). Every line is formatted into a scratch buffer first
 * and appended whole, so a page that runs out of room loses whole samples, never half a line.
 */
#include "common/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LINE_MAX_BYTES 1024

static int name_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':';
        if (!alpha && !(p > s && *p >= '0' && *p <= '9'))
            return 0;
    }
    return 1;
}

static void append(ctl_expo *e, const char *line, size_t n)
{
    if (e->cap == 0 || e->len + n + 1 > e->cap) {
        e->overflow = 1;
        return;
    }
    memcpy(e->buf + e->len, line, n);
    e->len += n;
    e->buf[e->len] = '\0';
}

void ctl_expo_init(ctl_expo *e, char *buf, size_t cap)
{
    *e = (ctl_expo){buf, cap, 0, 0, 0};
    if (cap)
        buf[0] = '\0';
}

void ctl_expo_family(ctl_expo *e, const char *name, const char *type, const char *help)
{
    if (!name_ok(name)) {
        e->invalid = 1;
        return;
    }
    char line[LINE_MAX_BYTES];
    size_t n = 0;
    n += (size_t)snprintf(line, sizeof line, "# HELP %s ", name);
    /* HELP text escapes only backslash and newline */
    for (const char *p = help; *p && n + 3 < sizeof line; p++) {
        if (*p == '\\' || *p == '\n')
            line[n++] = '\\';
        line[n++] = *p == '\n' ? 'n' : *p;
    }
    int m = snprintf(line + n, sizeof line - n, "\n# TYPE %s %s\n", name, type);
    if (m < 0 || (size_t)m >= sizeof line - n) {
        e->overflow = 1;
        return;
    }
    append(e, line, n + (size_t)m);
}

/* Appends label="value" (escaped) to line at *n; 0 when it does not fit. */
static int put_label(char *line, size_t cap, size_t *n, const char *label, const char *value)
{
    int m = snprintf(line + *n, cap - *n, "%s=\"", label);
    if (m < 0 || (size_t)m >= cap - *n)
        return 0;
    *n += (size_t)m;
    for (const char *p = value; *p; p++) {
        if (*n + 4 >= cap)
            return 0;
        if (*p == '\\' || *p == '"' || *p == '\n')
            line[(*n)++] = '\\';
        line[(*n)++] = *p == '\n' ? 'n' : *p;
    }
    line[(*n)++] = '"';
    return 1;
}

void ctl_expo_int(ctl_expo *e, const char *name, const char *label, const char *value,
                  const char *label2, const char *value2, int64_t v)
{
    if (!name_ok(name) || (label && !name_ok(label)) || (label2 && !name_ok(label2))) {
        e->invalid = 1;
        return;
    }
    char line[LINE_MAX_BYTES];
    size_t n = (size_t)snprintf(line, sizeof line, "%s", name);
    if (label) {
        line[n++] = '{';
        int ok = put_label(line, sizeof line, &n, label, value ? value : "");
        if (ok && label2) {
            ok = n + 1 < sizeof line;
            if (ok) {
                line[n++] = ',';
                ok = put_label(line, sizeof line, &n, label2, value2 ? value2 : "");
            }
        }
        if (!ok || n + 1 >= sizeof line) {
            e->overflow = 1;
            return;
        }
        line[n++] = '}';
    }
    int m = snprintf(line + n, sizeof line - n, " %lld\n", (long long)v);
    if (m < 0 || (size_t)m >= sizeof line - n) {
        e->overflow = 1;
        return;
    }
    append(e, line, n + (size_t)m);
}

void ctl_expo_ms_as_s(ctl_expo *e, const char *name, int64_t ms)
{
    if (!name_ok(name)) {
        e->invalid = 1;
        return;
    }
    char line[LINE_MAX_BYTES];
    const char *sign = ms < 0 ? "-" : "";
    unsigned long long a = ms < 0 ? 0ULL - (unsigned long long)ms : (unsigned long long)ms;
    int m = snprintf(line, sizeof line, "%s %s%llu.%03llu\n", name, sign, a / 1000, a % 1000);
    if (m < 0 || (size_t)m >= sizeof line) {
        e->overflow = 1;
        return;
    }
    append(e, line, (size_t)m);
}
