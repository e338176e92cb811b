/*
 * The daemon config loader (see config.h): libinih does the INI syntax; this file counts
 * lines (the Debian libinih does not pass them to handlers) and dispatches each key to the first
 * section handler that claims it. The sections every daemon shares are in bus/bus_config.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "common/config.h"

#include "common/errbuf.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    cfg_key_fn key;
    cfg_finish_fn finish;
    void *ctx;
} handler;

struct cfg_loader {
    handler h[CFG_MAX_HANDLERS];
    size_t n;
    /* state of one cfg_load */
    const char *path;
    char dir[CFG_PATH_MAX];
    FILE *f;
    const char *mem; /* cfg_load_string: the text instead of f */
    size_t mem_len, mem_pos;
    int line;
    bool too_long, nul_byte;
    char section[256];
    int owner; /* handler index owning the current section, -1 none yet */
    char err[512];
    bool failed;
};

cfg_loader *cfg_loader_new(void) { return calloc(1, sizeof(cfg_loader)); }

void cfg_loader_free(cfg_loader *l) { free(l); }

int cfg_loader_add(cfg_loader *l, cfg_key_fn key, cfg_finish_fn finish, void *ctx)
{
    if (!l || !key)
        return CFG_E_BAD;
    if (l->n == CFG_MAX_HANDLERS)
        return CFG_E_NOMEM;
    l->h[l->n++] = (handler){key, finish, ctx};
    return CFG_OK;
}

int cfg_path(const cfg_loader *l, const char *value, char *out, size_t cap)
{
    int n;
    if (!value || !*value || !out)
        return CFG_E_BAD;
    if (value[0] == '/' || !l || !l->dir[0])
        n = snprintf(out, cap, "%s", value);
    else
        n = snprintf(out, cap, "%s/%s", l->dir, value);
    return n < 0 || (size_t)n >= cap ? CFG_E_BAD : CFG_OK;
}

/* ---- parsing ---- */

static void fail(cfg_loader *l, const char *msg)
{
    if (l->failed)
        return;
    l->failed = true;
    snprintf(l->err, sizeof l->err, "%s:%d: %s", l->path, l->line, msg);
}

/* A section header: find its owner now, so even a section without keys is checked and a
 * repeated header is seen by its handler. */
static void announce(cfg_loader *l, const char *section)
{
    char msg[400] = "";
    snprintf(l->section, sizeof l->section, "%s", section);
    l->owner = -1;
    for (size_t i = 0; i < l->n; i++) {
        int rc = l->h[i].key(l->h[i].ctx, section, NULL, NULL, l->line, msg, sizeof msg);
        if (rc == CFG_NOT_MINE)
            continue;
        if (rc != CFG_OK) {
            fail(l, msg[0] ? msg : "bad section");
            return;
        }
        l->owner = (int)i;
        return;
    }
    snprintf(msg, sizeof msg, "unknown section [%s]", section);
    fail(l, msg);
}

/* The next byte of the file or of the text of cfg_load_string, or EOF. */
static int next_byte(cfg_loader *l)
{
    if (l->mem)
        return l->mem_pos < l->mem_len ? (unsigned char)l->mem[l->mem_pos++] : EOF;
    return getc(l->f);
}

static bool at_end(cfg_loader *l)
{
    if (l->mem)
        return l->mem_pos >= l->mem_len;
    int c = getc(l->f);
    if (c == EOF)
        return true;
    ungetc(c, l->f);
    return false;
}

/* fgets-like reader that counts lines, refuses lines longer than inih's buffer and lines with
 * a NUL byte (fgets would hide the rest of such a line, or hand it over as a line of its own
 * past the end of the file), and announces section headers (inih itself reports only keys). */
static char *reader(char *str, int num, void *stream)
{
    cfg_loader *l = stream;
    if (l->too_long || l->nul_byte || num < 2)
        return NULL;
    size_t cap = (size_t)num - 1, n = 0;
    bool nul = false;
    int c;
    while (n < cap && (c = next_byte(l)) != EOF) {
        str[n++] = (char)c;
        nul = nul || c == 0;
        if (c == '\n')
            break;
    }
    if (n == 0)
        return NULL;
    str[n] = '\0';
    l->line++;
    if (nul) {
        l->nul_byte = true;
        return NULL;
    }
    if (n == cap && str[n - 1] != '\n' && !at_end(l)) {
        l->too_long = true;
        return NULL;
    }
    const char *p = str + strspn(str, " \t");
    const char *end = *p == '[' ? strchr(p, ']') : NULL;
    if (end && !l->failed) {
        p++;
        p += strspn(p, " \t");
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(end - p), p);
        announce(l, name);
    }
    return str;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    cfg_loader *l = user;
    if (l->failed)
        return 0;
    char msg[400] = "";
    if (!section[0]) {
        fail(l, "key outside any [section]");
        return 0;
    }
    if (l->owner < 0 || strcmp(section, l->section) != 0) {
        fail(l, "internal error: key outside the announced section");
        return 0;
    }
    handler *h = &l->h[l->owner];
    int rc = h->key(h->ctx, section, key, value, l->line, msg, sizeof msg);
    if (rc == CFG_NOT_MINE) {
        snprintf(msg, sizeof msg, "unknown key '%s' in [%s]", key, section);
        rc = CFG_E_BAD;
    }
    if (rc != CFG_OK) {
        fail(l, msg[0] ? msg : "bad value");
        return 0;
    }
    return 1;
}

/* Resets the per-load state; the folder of path anchors relative paths in values. */
static void begin(cfg_loader *l, const char *path)
{
    l->path = path;
    l->line = 0;
    l->too_long = l->nul_byte = l->failed = false;
    l->section[0] = '\0';
    l->owner = -1;
    l->err[0] = '\0';
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(l->dir, sizeof l->dir, "%.*s", (int)(slash - path == 0 ? 1 : slash - path), path);
    else
        snprintf(l->dir, sizeof l->dir, ".");
}

/* Parses through reader (from l->f or l->mem) and runs the finish functions. */
static int run(cfg_loader *l, const char *path, char *err, size_t errlen)
{
    int rc = ini_parse_stream(reader, l, on_key, l);
    bool read_error = l->f && ferror(l->f) != 0;
    if (l->too_long) {
        /* reader counted the long line before refusing it: l->line is that line */
        snprintf(err, errlen, "%s:%d: line too long", path, l->line);
        return CFG_E_BAD;
    }
    if (l->nul_byte) {
        snprintf(err, errlen, "%s:%d: NUL byte in the line", path, l->line);
        return CFG_E_BAD;
    }
    if (read_error) {
        snprintf(err, errlen, "%s: read error", path);
        return CFG_E_IO;
    }
    if (l->failed) {
        snprintf(err, errlen, "%s", l->err);
        return CFG_E_BAD;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path, rc);
        return CFG_E_BAD;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (!l->h[i].finish)
            continue;
        rc = l->h[i].finish(l->h[i].ctx, path, err, errlen);
        if (rc != CFG_OK)
            return rc;
    }
    return CFG_OK;
}

int cfg_load(cfg_loader *l, const char *path, char *err, size_t errlen)
{
    if (!l || !path)
        return CFG_E_BAD;
    begin(l, path);
    l->f = fopen(path, "r");
    if (!l->f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return CFG_E_IO;
    }
    int rc = run(l, path, err, errlen);
    fclose(l->f);
    l->f = NULL;
    return rc;
}

int cfg_load_string(cfg_loader *l, const char *name, const char *text, size_t len, char *err,
                    size_t errlen)
{
    if (!l || !name || (!text && len))
        return CFG_E_BAD;
    begin(l, name);
    l->mem = text ? text : "";
    l->mem_len = len;
    l->mem_pos = 0;
    int rc = run(l, name, err, errlen);
    l->mem = NULL;
    return rc;
}

/* ---- value parsers ---- */

int cfg_parse_int(const char *key, const char *value, int64_t min, int64_t max, int64_t *out,
                  char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (!*value || *end || errno == ERANGE)
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: '%s' is not an integer", key, value);
    if (v < min || v > max)
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: %lld is out of range [%lld, %lld]", key, v,
                        (long long)min, (long long)max);
    *out = (int64_t)v;
    return CFG_OK;
}

int cfg_parse_bool(const char *key, const char *value, bool *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false",
                                                                                 "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(value, yes[i]) == 0) {
            *out = true;
            return CFG_OK;
        }
        if (strcmp(value, no[i]) == 0) {
            *out = false;
            return CFG_OK;
        }
    }
    return ctl_fail(CFG_E_BAD, err, errlen, "%s: '%s' is not yes or no", key, value);
}

int cfg_parse_str(const char *key, const char *value, char *out, size_t cap, char *err,
                  size_t errlen)
{
    size_t n = strlen(value);
    if (n == 0)
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: empty value", key);
    if (n >= cap)
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: longer than %zu bytes", key, cap - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
            return ctl_fail(CFG_E_BAD, err, errlen, "%s: contains a control character", key);
    memcpy(out, value, n + 1);
    return CFG_OK;
}

int cfg_parse_id(const char *key, const char *value, char out[CTL_ID_MAX + 1], char *err,
                 size_t errlen)
{
    if (!ctl_id_valid(value))
        return ctl_fail(CFG_E_BAD, err, errlen,
                        "%s: '%s' must be 1-63 characters of A-Z a-z 0-9 _ -", key, value);
    snprintf(out, CTL_ID_MAX + 1, "%s", value);
    return CFG_OK;
}

int cfg_once(uint64_t *seen, unsigned bit, const char *key, char *err, size_t errlen)
{
    if (*seen & ((uint64_t)1 << bit))
        return ctl_fail(CFG_E_BAD, err, errlen, "%s: given twice", key);
    *seen |= (uint64_t)1 << bit;
    return CFG_OK;
}

int cfg_key_index(const char *const *keys, const char *key)
{
    for (int i = 0; keys[i]; i++)
        if (strcmp(keys[i], key) == 0)
            return i;
    return -1;
}

/* ---- sections of the other daemon sharing a home's file ---- */

/* Who owns which section. named: the section is "[kind NAME]" (a bare "[meter]" is nobody's,
 * so it stays an unknown section for the agent; the meter daemon explains it needs a name). */
static const struct {
    const char *kind;
    bool named;
    cfg_daemon owner;
} HOME_SECTIONS[] = {
    {"outbox", false, CFG_DAEMON_METER}, {"homeassistant", false, CFG_DAEMON_METER},
    {"meter", true, CFG_DAEMON_METER},   {"map", true, CFG_DAEMON_METER},
    {"signing", false, CFG_DAEMON_METER}, {"ocmf", true, CFG_DAEMON_METER},
    {"agent", false, CFG_DAEMON_AGENT},  {"battery", false, CFG_DAEMON_AGENT},
};

static int section_owner(const char *section)
{
    for (size_t i = 0; i < sizeof HOME_SECTIONS / sizeof HOME_SECTIONS[0]; i++) {
        size_t n = strlen(HOME_SECTIONS[i].kind);
        if (strncmp(section, HOME_SECTIONS[i].kind, n) != 0)
            continue;
        const char *rest = section + n;
        if (!HOME_SECTIONS[i].named ? *rest == '\0'
                                    : (*rest == ' ' || *rest == '\t') && rest[strspn(rest, " \t")])
            return (int)HOME_SECTIONS[i].owner;
    }
    return 0;
}

static int others_key(void *ctx, const char *section, const char *key, const char *value,
                      int line, char *err, size_t errlen)
{
    cfg_others *o = ctx;
    (void)value;
    (void)err;
    (void)errlen;
    int owner = section_owner(section);
    if (owner == 0 || owner == (int)o->self)
        return CFG_NOT_MINE;
    if (!key) {
        if (o->sections++ == 0)
            o->first_line = line;
    }
    return CFG_OK;
}

int cfg_others_add(cfg_loader *l, cfg_daemon self, cfg_others *o)
{
    memset(o, 0, sizeof *o);
    o->self = self;
    return cfg_loader_add(l, others_key, NULL, o);
}
