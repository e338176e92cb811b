/*
 * The meter daemon's counter state file (see meter_state.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "meterd/meter_state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/bus.h"
#include "common/file.h"
#include "mgx/regmap.h"

#define HEADER "mgx-meter-counters 1"

int ctl_meter_state_path(const char *outbox_path, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s.counters", outbox_path);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static void put_counter(FILE *f, const mtr_counter *c)
{
    fprintf(f, " %d %" PRId64 " %" PRId64 " %" PRId64, c->have ? 1 : 0, c->ts_ms, c->raw_wh,
            c->offset_wh);
}

int ctl_meter_state_save(const char *path, const meter_state_entry *e, size_t n, char *err,
                         size_t errlen)
{
    char tmp[4200];
    int rc = -1;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "%s\n", HEADER);
    for (size_t i = 0; i < n; i++) {
        fputs(e[i].meter_id, f);
        put_counter(f, &e[i].filter.imp);
        put_counter(f, &e[i].filter.exp);
        fputc('\n', f);
    }
    /* the rename must not land before the data: a power cut would leave an empty file */
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        fclose(f);
        goto out;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int get_counter(char **p, mtr_counter *c)
{
    char *end;
    long long v[4];
    for (int k = 0; k < 4; k++) {
        errno = 0;
        v[k] = strtoll(*p, &end, 10);
        if (end == *p || errno)
            return -1;
        *p = end;
    }
    if ((v[0] != 0 && v[0] != 1) || v[2] < 0 || v[2] > MTR_VALUE_MAX || v[3] < -MTR_VALUE_MAX ||
        v[3] > MTR_VALUE_MAX)
        return -1;
    mtr_counter_init(c);
    c->have = (int)v[0];
    c->ts_ms = v[1];
    c->raw_wh = v[2];
    c->offset_wh = v[3];
    return 0;
}

int ctl_meter_state_load(const char *path, meter_state_entry **out, size_t *n, char *err,
                         size_t errlen)
{
    char *buf = NULL;
    size_t len = 0, cap = 0, line_no = 1;
    meter_state_entry *e = NULL;
    *out = NULL;
    *n = 0;
    if (ctl_read_file(path, METER_STATE_FILE_MAX, &buf, &len) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *save = NULL, *line = strtok_r(buf, "\n", &save);
    if (!line || strcmp(line, HEADER) != 0)
        goto bad;
    while ((line = strtok_r(NULL, "\n", &save))) {
        line_no++;
        size_t idn = strcspn(line, " ");
        if (idn == 0 || idn >= MTR_ID_MAX)
            goto bad;
        line[idn] = '\0';
        if (!bus_id_valid(line))
            goto bad;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            meter_state_entry *ne = realloc(e, nc * sizeof *e);
            if (!ne) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            e = ne;
            cap = nc;
        }
        meter_state_entry *x = &e[*n];
        memset(x, 0, sizeof *x);
        memcpy(x->meter_id, line, idn + 1);
        char *p = line + idn + 1;
        if (get_counter(&p, &x->filter.imp) || get_counter(&p, &x->filter.exp) || *p)
            goto bad;
        (*n)++;
    }
    free(buf);
    *out = e;
    return 0;
bad:
    snprintf(err, errlen, "%s:%zu: damaged counter state (delete the file to start the totals "
                          "again from the meters' values)",
             path, line_no);
fail:
    free(buf);
    free(e);
    *n = 0;
    return -1;
}
