/*
 * The meter daemon's OCMF file sources (see ocmf_source.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "meterd/ocmf_source.h"

#include "bus/bus.h"
#include "bus/ocmf.h"
#include "bus/payload.h"
#include "bus/reading_sig.h"
#include "common/errbuf.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define READ_MAX (256 * 1024) /* bytes looked at per source and pump */

static const char *const KEYS[] = {"file", "poll_ms", NULL};

static int ocmf_key(void *ctx, const char *section, const char *key, const char *value, int line,
                    char *err, size_t errlen)
{
    cfg_ocmf_sources *c = ctx;
    if (strncmp(section, "ocmf ", 5) != 0)
        return CFG_NOT_MINE;
    const char *id = section + 5;
    if (!key) {
        if (!bus_id_valid(id))
            return ctl_fail(CFG_E_BAD, err, errlen, "[ocmf %s]: the meter id is not %s", id,
                            "1-63 of A-Z a-z 0-9 _ -");
        for (size_t i = 0; i < c->n; i++)
            if (strcmp(c->src[i].id, id) == 0)
                return ctl_fail(CFG_E_BAD, err, errlen, "[ocmf %s] given twice (first at line %d)",
                                id, c->src[i].line);
        if (c->n == OCMF_SOURCES_MAX)
            return ctl_fail(CFG_E_BAD, err, errlen, "more than %d [ocmf] sections",
                            OCMF_SOURCES_MAX);
        cfg_ocmf_source *s = &c->src[c->n++];
        memset(s, 0, sizeof *s);
        snprintf(s->id, sizeof s->id, "%s", id);
        s->line = line;
        s->poll_ms = 1000;
        return CFG_OK;
    }
    cfg_ocmf_source *s = &c->src[c->n - 1];
    int k = cfg_key_index(KEYS, key);
    if (k < 0)
        return CFG_NOT_MINE;
    if (cfg_once(&s->seen, (unsigned)k, key, err, errlen))
        return CFG_E_BAD;
    if (k == 0)
        return cfg_path(c->loader, value, s->path, sizeof s->path) == CFG_OK
                   ? CFG_OK
                   : ctl_fail(CFG_E_BAD, err, errlen, "file: bad path");
    return cfg_parse_int(key, value, 100, 3600000, &s->poll_ms, err, errlen);
}

static int ocmf_finish(void *ctx, const char *path, char *err, size_t errlen)
{
    cfg_ocmf_sources *c = ctx;
    for (size_t i = 0; i < c->n; i++)
        if (!c->src[i].path[0])
            return ctl_fail(CFG_E_BAD, err, errlen, "%s:%d: [ocmf %s] needs file", path,
                            c->src[i].line, c->src[i].id);
    return CFG_OK;
}

int cfg_ocmf_add(cfg_loader *l, cfg_ocmf_sources *c)
{
    memset(c, 0, sizeof *c);
    c->loader = l;
    return cfg_loader_add(l, ocmf_key, ocmf_finish, c);
}

typedef struct {
    const cfg_ocmf_source *cfg;
    long offset;      /* of the first byte not yet taken */
    int64_t due_ms;
    int failing;      /* the file could not be read last time (logged once) */
} follower;

struct ocmf_follow {
    follower *f;
    size_t n;
    char *buf;  /* READ_MAX + 1 */
    char *body; /* a state body with its record */
};

int ocmf_follow_new(const cfg_ocmf_sources *c, ocmf_follow **out)
{
    *out = NULL;
    if (c->n == 0)
        return 0;
    ocmf_follow *o = calloc(1, sizeof *o);
    if (!o)
        return -1;
    o->f = calloc(c->n, sizeof *o->f);
    o->buf = malloc(READ_MAX + 1);
    o->body = malloc(BUS_JSON_MAX);
    if (!o->f || !o->buf || !o->body) {
        ocmf_follow_free(o);
        return -1;
    }
    for (size_t i = 0; i < c->n; i++)
        o->f[i].cfg = &c->src[i];
    o->n = c->n;
    *out = o;
    return 0;
}

void ocmf_follow_free(ocmf_follow *o)
{
    if (!o)
        return;
    free(o->f);
    free(o->buf);
    free(o->body);
    free(o);
}

/* One line: a record -> a reading with the record -> the outbox. 1 pushed, 0 not. */
static int take_line(ocmf_follow *o, follower *f, char *line, size_t len, outbox *ob,
                     const char *community, int64_t now_ms, const ctl_log *lg)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (len == 0)
        return 0;
    static ocmf_record r; /* ~3 KB, off the stack; the daemon's one thread */
    char why[200] = "";
    mtr_sample s;
    if (ocmf_parse(line, len, &r, why, sizeof why) != OCMF_OK ||
        ocmf_to_sample(&r, f->cfg->id, &s) != OCMF_OK) {
        ctl_logf(lg, CTL_LOG_WARN, "ocmf %s: %s: a line skipped: %s", f->cfg->id, f->cfg->path,
                 why[0] ? why : "no import register reading");
        return 0;
    }
    char topic[BUS_TOPIC_MAX];
    int n = bus_state_encode_ocmf(&s, line, len, o->body, BUS_JSON_MAX);
    if (n < 0 || bus_topic_meter_state(topic, sizeof topic, community, f->cfg->id) != BUS_OK) {
        ctl_logf(lg, CTL_LOG_WARN, "ocmf %s: a record that cannot be published (too long or "
                                   "out of range) skipped", f->cfg->id);
        return 0;
    }
    outbox_item it = {topic, o->body, (size_t)n, 1, true};
    size_t acc = 0;
    if (outbox_push(ob, &it, 1, now_ms, &acc) != OUTBOX_OK || acc != 1) {
        ctl_logf(lg, CTL_LOG_ERROR, "ocmf %s: a reading could not be stored in the outbox",
                 f->cfg->id);
        return 0;
    }
    ctl_logf(lg, CTL_LOG_DEBUG, "%s", o->body);
    return 1;
}

static int pump_one(ocmf_follow *o, follower *f, outbox *ob, const char *community,
                    int64_t now_ms, const ctl_log *lg)
{
    FILE *fp = fopen(f->cfg->path, "rb");
    struct stat st;
    if (!fp || fstat(fileno(fp), &st) != 0) {
        if (!f->failing)
            ctl_logf(lg, CTL_LOG_WARN, "ocmf %s: cannot read %s: %s", f->cfg->id, f->cfg->path,
                     strerror(errno));
        f->failing = 1;
        if (fp)
            fclose(fp);
        return 0;
    }
    if (f->failing)
        ctl_logf(lg, CTL_LOG_INFO, "ocmf %s: reading %s again", f->cfg->id, f->cfg->path);
    f->failing = 0;
    if ((long)st.st_size < f->offset)
        f->offset = 0; /* rotated or truncated: a new file */
    int pushed = 0;
    if (fseek(fp, f->offset, SEEK_SET) == 0) {
        size_t n = fread(o->buf, 1, READ_MAX, fp);
        size_t start = 0;
        for (size_t i = 0; i < n; i++) {
            if (o->buf[i] != '\n')
                continue;
            size_t len = i - start;
            if (len > OCMF_TEXT_MAX)
                ctl_logf(lg, CTL_LOG_WARN, "ocmf %s: a line of %zu bytes skipped (over %d)",
                         f->cfg->id, len, OCMF_TEXT_MAX);
            else
                pushed += take_line(o, f, o->buf + start, len, ob, community, now_ms, lg);
            start = i + 1;
        }
        if (start == 0 && n == READ_MAX) {
            ctl_logf(lg, CTL_LOG_WARN, "ocmf %s: %d bytes without a line end skipped",
                     f->cfg->id, READ_MAX);
            start = n;
        }
        f->offset += (long)start; /* a partial last line waits for its end */
    }
    fclose(fp);
    return pushed;
}

int ocmf_follow_pump(ocmf_follow *o, outbox *ob, const char *community, int64_t now_ms,
                     const ctl_log *lg)
{
    if (!o)
        return 0;
    int pushed = 0;
    for (size_t i = 0; i < o->n; i++) {
        follower *f = &o->f[i];
        if (now_ms < f->due_ms)
            continue;
        f->due_ms = now_ms + f->cfg->poll_ms;
        pushed += pump_one(o, f, ob, community, now_ms, lg);
    }
    return pushed;
}

/* The last line of path that is a readable record: its reading into *s and the body into body
 * (BUS_JSON_MAX). 0, or -1 with the reason in why. */
static int last_record(const char *path, const char *id, char *buf, char *body, char *why,
                       size_t whylen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return ctl_fail(-1, why, whylen, "cannot read %s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, READ_MAX, fp);
    fclose(fp);
    buf[n] = '\0';
    static ocmf_record r; /* ~3 KB, off the stack; one thread */
    int found = -1;
    ctl_errf(why, whylen, "no OCMF record in %s", path);
    for (char *line = buf, *end; line < buf + n; line = end + 1) {
        end = memchr(line, '\n', (size_t)(buf + n - line));
        if (!end)
            end = buf + n;
        size_t len = (size_t)(end - line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
            len--;
        mtr_sample s;
        char w[200] = "";
        if (len == 0 || len > OCMF_TEXT_MAX ||
            ocmf_parse(line, len, &r, w, sizeof w) != OCMF_OK ||
            ocmf_to_sample(&r, id, &s) != OCMF_OK ||
            bus_state_encode_ocmf(&s, line, len, body, BUS_JSON_MAX) < 0) {
            if (w[0])
                ctl_errf(why, whylen, "%s", w);
            continue;
        }
        found = 0;
    }
    return found;
}

int ocmf_sources_once(const cfg_ocmf_sources *c, FILE *out)
{
    char *buf = malloc(READ_MAX + 1), *body = malloc(BUS_JSON_MAX);
    int status = 0;
    for (size_t i = 0; i < c->n; i++) {
        char why[240];
        json_t *j = NULL;
        if (buf && body &&
            last_record(c->src[i].path, c->src[i].id, buf, body, why, sizeof why) == 0 &&
            (j = json_loads(body, 0, NULL)) != NULL) {
            json_object_set_new(j, "ok", json_true());
            json_object_set_new(j, "profile", json_string("ocmf"));
        } else {
            status = 1;
            j = json_pack("{s:s, s:b, s:s, s:s}", "meter_id", c->src[i].id, "ok", 0, "profile",
                          "ocmf", "error", buf && body ? why : "out of memory");
        }
        char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (line)
            fprintf(out, "%s\n", line);
        free(line);
        json_decref(j);
    }
    free(buf);
    free(body);
    return status;
}
