/*
 * Meter counters within an interval (see mgx/meter_trace.h): a linear spread of the interval's
 * energy, computed in 128-bit so energy x elapsed time cannot overflow.
 */
#include "mgx/meter_trace.h"

#include <stdlib.h>

typedef struct {
    int64_t import_wh, export_wh;     /* counters at the start of the interval */
    int64_t d_import_wh, d_export_wh; /* this interval's energy */
} trace_home;

struct sim_trace {
    size_t homes;
    int64_t interval_ms;
    trace_home h[];
};

sim_trace *sim_trace_new(size_t homes, int64_t interval_ms, int64_t start_wh)
{
    if (interval_ms <= 0 || start_wh < 0 || homes > SIZE_MAX / sizeof(trace_home) - 1)
        return NULL;
    sim_trace *t = calloc(1, sizeof *t + homes * sizeof(trace_home));
    if (!t)
        return NULL;
    t->homes = homes;
    t->interval_ms = interval_ms;
    for (size_t i = 0; i < homes; i++)
        t->h[i].import_wh = t->h[i].export_wh = start_wh;
    return t;
}

void sim_trace_free(sim_trace *t)
{
    free(t);
}

int sim_trace_set(sim_trace *t, size_t home, int64_t import_wh, int64_t export_wh)
{
    if (!t || home >= t->homes || import_wh < 0 || export_wh < 0 || import_wh > SIM_TRACE_MAX_WH ||
        export_wh > SIM_TRACE_MAX_WH)
        return -1;
    t->h[home].d_import_wh = import_wh;
    t->h[home].d_export_wh = export_wh;
    return 0;
}

static int64_t part(int64_t energy, int64_t t, int64_t total)
{
    __extension__ __int128 v = (__int128)energy * t;
    return (int64_t)(v / total); /* both >= 0: floor */
}

void sim_trace_at(const sim_trace *t, size_t home, int64_t elapsed_ms, sim_meter_reading *out)
{
    const trace_home *h = &t->h[home];
    int64_t e = elapsed_ms < 0 ? 0 : elapsed_ms > t->interval_ms ? t->interval_ms : elapsed_ms;
    out->import_wh = h->import_wh + part(h->d_import_wh, e, t->interval_ms);
    out->export_wh = h->export_wh + part(h->d_export_wh, e, t->interval_ms);
    __extension__ __int128 num = (__int128)(h->d_import_wh - h->d_export_wh) * 3600000;
    __extension__ __int128 q = num / t->interval_ms, r = num % t->interval_ms;
    if (2 * (r < 0 ? -r : r) >= t->interval_ms)
        q += num < 0 ? -1 : 1;
    out->power_w = (int64_t)q;
}

void sim_trace_next(sim_trace *t)
{
    for (size_t i = 0; i < t->homes; i++) {
        trace_home *h = &t->h[i];
        h->import_wh += h->d_import_wh;
        h->export_wh += h->d_export_wh;
        h->d_import_wh = h->d_export_wh = 0;
    }
}
