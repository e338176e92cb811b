/*
 * Internal: the Prometheus text exposition format (version 0.0.4), written into a caller's
 * bounded buffer. A daemon rebuilds its whole page from its own counters every second; this
 * file only knows the format: "# HELP", "# TYPE", then samples "name{label="value"} number",
 * with label values escaped (backslash, double quote, newline) and names checked against
 * [a-zA-Z_:][a-zA-Z0-9_:]*. No I/O, no clock, no globals: common/metrics_server.h serves the
 * page, daemon/controller_metrics.h says what is on it.
 */
#ifndef MGX_CTL_METRICS_H
#define MGX_CTL_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf;
    size_t cap;
    size_t len;   /* bytes written so far, always NUL-terminated when cap > 0 */
    int overflow; /* a line did not fit (it was left out whole) */
    int invalid;  /* a name was refused (its line was left out) */
} ctl_expo;

void ctl_expo_init(ctl_expo *e, char *buf, size_t cap);

/* The HELP and TYPE lines of a metric family; type is "counter" or "gauge". */
void ctl_expo_family(ctl_expo *e, const char *name, const char *type, const char *help);

/* One sample: name, an optional label (label == NULL: none; a second pair label2/value2 may
 * follow, NULL for none) and an integer value. */
void ctl_expo_int(ctl_expo *e, const char *name, const char *label, const char *value,
                  const char *label2, const char *value2, int64_t v);

/* One sample whose value is a duration in milliseconds, written in seconds with three decimals
 * (Prometheus' base unit) without floating point. */
void ctl_expo_ms_as_s(ctl_expo *e, const char *name, int64_t ms);

#endif
