/*
 * Fuzz harness for the daemon config loader (controller/common/config.c, libinih underneath) with
 * every section handler the daemons register: each input is loaded three times from memory
 * (cfg_load_string), as `mgx meter` ([bus], [outbox], [homeassistant], the meters library's
 * [meter ID] / [map NAME], the agent's sections skipped), as `mgx agent` ([agent], [bus]) and as
 * `mgx controller` ([controller], [bus], [solana]), with the handlers registered in the order
 * each daemon registers them.
 *
 * Each daemon's handlers are registered through its module's own function (meterd/meterd.h,
 * agent/agent_config.h, daemon/controller_config.h), the one the daemon itself uses, so the
 * harness loads exactly what the daemons load.
 *
 * Invariants, for every input:
 *   - nothing crashes, leaks or reads out of bounds (the sanitizers watch), including the
 *     password buffer a [bus] password_file may allocate;
 *   - an error names the input: "NAME:LINE: reason" with 1 <= LINE <= the input's line
 *     count, or "NAME: reason" for a whole-file check (a missing section);
 *   - what loads holds a valid community id in [bus].
 */
#define _POSIX_C_SOURCE 200809L
#include "fuzz.h"

#include "agent/agent_config.h"
#include "bus/bus_config.h"
#include "daemon/controller_config.h"
#include "meterd/meterd.h"
#include "mgx/device_config.h"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_LEN 1024

/* The input is named DIR/daemon.ini, DIR a private folder holding the files the seeds name
 * relatively (key k, password pw, CA ca.crt...), so a seed that loads can load here too. */
static char NAME[128];

static void cleanup(void)
{
    static const char *const files[] = {"k", "pw", "ca.crt", "h.crt", "h.key", "key", NULL};
    char path[256], dir[128];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(NAME, '/') - NAME), NAME);
    for (int i = 0; files[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        remove(path);
    }
    rmdir(dir);
}

static void setup(void)
{
    static const char *const files[] = {"k", "pw", "ca.crt", "h.crt", "h.key", "key", NULL};
    char dir[] = "/tmp/mgx-fuzz-cfg-XXXXXX", path[256];
    if (!mkdtemp(dir))
        abort();
    for (int i = 0; files[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "w");
        if (!f || fputs("x\n", f) < 0 || fclose(f) != 0 || chmod(path, 0600) != 0)
            abort();
    }
    snprintf(NAME, sizeof NAME, "%s/daemon.ini", dir);
    atexit(cleanup);
}

__attribute__((noreturn)) static void die(const char *who, const char *what, const char *err)
{
    fprintf(stderr, "fuzz_daemon_config: %s: %s: %s\n", who, what, err);
    abort();
}

static size_t count_lines(const uint8_t *d, size_t n)
{
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += d[i] == '\n';
    return lines;
}

/* With MGX_FUZZ_VERBOSE set, each daemon's verdict goes to stderr (corpus upkeep). */
static void report(const char *who, int rc, const char *err)
{
    if (getenv("MGX_FUZZ_VERBOSE"))
        fprintf(stderr, "%-10s %s\n", who, rc == CFG_OK ? "loaded" : err);
}

static void check_error(const char *who, int rc, const char *err, size_t lines)
{
    size_t plen = strlen(NAME);
    if (rc != CFG_E_BAD && rc != CFG_E_IO && rc != CFG_E_NOMEM)
        die(who, "an unexpected return code", err);
    if (memchr(err, '\0', ERR_LEN) == NULL || strncmp(err, NAME, plen) != 0 || err[plen] != ':')
        die(who, "the message does not start with the input's name", err);
    const char *p = err + plen + 1;
    if (*p == ' ' && p[1] != '\0')
        return; /* "NAME: reason" */
    char *end;
    unsigned long line = strtoul(p, &end, 10);
    if (end == p || *p == '+' || *p == '-' || *p == ' ' || end[0] != ':' || end[1] != ' ' ||
        end[2] == '\0')
        die(who, "the message is not NAME:LINE: reason", err);
    if (line < 1 || line > lines)
        die(who, "the message names a line that does not exist", err);
}

/* ---- as `mgx meter` (meterd.c) ---- */

static void as_meter(const uint8_t *d, size_t n, size_t lines)
{
    char err[ERR_LEN] = "";
    ctl_meterd_file f;
    cfg_loader *l = cfg_loader_new();
    if (!l || ctl_meterd_file_add(l, &f, NAME) != CFG_OK)
        abort();
    int rc = cfg_load_string(l, NAME, (const char *)d, n, err, sizeof err);
    report("meter", rc, err);
    if (rc != CFG_OK)
        check_error("meter", rc, err, lines);
    else if (!bus_id_valid(f.bus.community) || mtr_config_count(f.meters) == 0)
        die("meter", "loaded without a community or a meter", f.bus.community);
    ctl_meterd_file_clear(&f);
    cfg_loader_free(l);
}

/* ---- as `mgx agent` (agent_config.c agc_load) ---- */

static void as_agent(const uint8_t *d, size_t n, size_t lines)
{
    char err[ERR_LEN] = "";
    agc_config *c = calloc(1, sizeof *c);
    cfg_loader *l = cfg_loader_new();
    if (!c || !l)
        abort();
    if (cfg_others_add(l, CFG_DAEMON_AGENT, &c->others) || agc_add(l, c) ||
        cfg_bus_add(l, &c->bus))
        abort();
    int rc = cfg_load_string(l, NAME, (const char *)d, n, err, sizeof err);
    report("agent", rc, err);
    if (rc != CFG_OK)
        check_error("agent", rc, err, lines);
    else if (!bus_id_valid(c->bus.community))
        die("agent", "loaded without a valid community", c->bus.community);
    agc_clear(c);
    cfg_loader_free(l);
    free(c);
}

/* ---- as `mgx controller` (controller_config.c) ---- */

static void as_controller(const uint8_t *d, size_t n, size_t lines)
{
    char err[ERR_LEN] = "";
    ctl_daemon_config *cfg = calloc(1, sizeof *cfg);
    ctl_controller_file *x = calloc(1, sizeof *x);
    cfg_bus *b = calloc(1, sizeof *b);
    cfg_loader *l = cfg_loader_new();
    if (!cfg || !x || !b || !l)
        abort();
    ctl_controller_file_init(x, cfg, b);
    if (ctl_controller_file_add(l, x) != CFG_OK)
        abort();
    int rc = cfg_load_string(l, NAME, (const char *)d, n, err, sizeof err);
    report("controller", rc, err);
    if (rc != CFG_OK)
        check_error("controller", rc, err, lines);
    else if (!bus_id_valid(b->community) || x->line < 1 || (size_t)x->line > lines)
        die("controller", "loaded without a community or a [controller] line", b->community);
    cfg_bus_clear(b);
    ctl_topology_clear(&cfg->topology);
    cfg_loader_free(l);
    free(cfg);
    free(x);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0)
        abort();
    if (!NAME[0])
        setup();
    if (size > 64 * 1024) /* configs are small; longer inputs only slow the search */
        return 0;
    size_t lines = count_lines(data, size);
    as_meter(data, size, lines);
    as_agent(data, size, lines);
    as_controller(data, size, lines);
    return 0;
}
