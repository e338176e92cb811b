/*
 * `mgx sim --serve-modbus` end to end: the real binary runs a scenario at a high clock speed
 * while serving every home's meter over Modbus TCP on loopback; the test reads the meters with
 * plain libmodbus through the --meter-config file the run writes.
 *
 * Exactness rule: a meter measures the physical flow at the home's grid connection, which is
 * the same with and without local trading, i.e. homes.csv's baseline_grid_import_wh and
 * baseline_grid_export_wh (grid_import_wh / grid_export_wh there are the settled imbalance
 * after local contracts, which no meter sees). After the run every counter equals
 * --meter-start-wh plus that column: exactly in Wh for SunSpec (acc32), and for the SDM630
 * after rounding kWh x 1000 to the nearest Wh (exact below 16,384 kWh; these homes are far
 * below). During the run counters rise within an interval, not only at its end. The same
 * comparison is made through the meters library (the written config's [meter] sections and one
 * round of its poller) and with `mgx meter FILE --once` on the written file itself.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ini.h>
#include <jansson.h>
#include <math.h>
#include <modbus.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h" /* tst_tmpdir, tst_rmtree, tst_free_port, tst_sleep_ms */
#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "mgx/poller.h"
#include "files.h"
#include "shell.h"

#define MAX_METERS 400

static const char *mgx_bin;

typedef struct {
    char id[80];
    int port, unit;
    char profile[16];
    int rated; /* rated_current_a, -1 when absent */
} meter_entry;

typedef struct {
    char name[80];
    int64_t import_wh, export_wh;
} home_entry;

typedef struct {
    pid_t pid;
    char *dir;
    char err_path[512], cfg_path[512], out_dir[512];
} sim_proc;

/* Starts mgx sim with its stdout and stderr in files of a fresh folder. extra: more args. */
static void sim_start(sim_proc *p, const char *scenario, const char *const *extra)
{
    p->dir = tst_tmpdir("sim-serve");
    assert_non_null(p->dir);
    snprintf(p->err_path, sizeof p->err_path, "%s/stderr.txt", p->dir);
    snprintf(p->cfg_path, sizeof p->cfg_path, "%s/meters.ini", p->dir);
    snprintf(p->out_dir, sizeof p->out_dir, "%s/out", p->dir);
    const char *argv[32] = {mgx_bin,    "sim",        scenario,         "--out",
                            p->out_dir, "--no-plots", "--meter-config", p->cfg_path};
    size_t n = 8;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    char out_path[512];
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", p->dir);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        if (!freopen(out_path, "w", stdout) || !freopen(p->err_path, "w", stderr))
            _exit(126);
        char *args[32]; /* execv wants non-const strings: copies, in the child */
        for (size_t i = 0; i <= n; i++)
            args[i] = argv[i] ? strdup(argv[i]) : NULL;
        execv(mgx_bin, args);
        _exit(127);
    }
}

/* Waits up to timeout_ms for text in the run's stderr. */
static int wait_for(const sim_proc *p, const char *text, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        char *e = tst_file_read(p->err_path, NULL);
        int found = e && strstr(e, text);
        free(e);
        if (found)
            return 1;
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid)
            return 0;
        tst_sleep_ms(20);
    }
    return 0;
}

/* Sends sig and returns the exit status (-1 if it did not exit within 5 s, 128 + the signal if
 * one ended it). */
static int sim_stop(sim_proc *p, int sig)
{
    if (sig)
        kill(p->pid, sig);
    return tst_wait_exit(p->pid, 5000);
}

static void sim_cleanup(sim_proc *p)
{
    tst_rmtree(p->dir);
    free(p->dir);
}

/* Reads the [meter ID] sections of the file mgx sim wrote. */
static size_t read_meter_config(const char *path, meter_entry *m, size_t max)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        char id[80];
        if (sscanf(line, "[meter %79[^]]]", id) == 1) {
            assert_true(n < max);
            memset(&m[n], 0, sizeof m[n]);
            m[n].rated = -1;
            snprintf(m[n++].id, sizeof m[0].id, "%s", id);
        } else if (n > 0) {
            sscanf(line, "port = %d", &m[n - 1].port);
            sscanf(line, "unit = %d", &m[n - 1].unit);
            sscanf(line, "profile = %15s", m[n - 1].profile);
            sscanf(line, "rated_current_a = %d", &m[n - 1].rated);
        }
    }
    fclose(f);
    return n;
}

/* homes.csv: home name and the meter-side (baseline) grid import and export columns. */
static size_t read_homes(const char *dir, home_entry *h, size_t max)
{
    char path[600];
    snprintf(path, sizeof path, "%s/homes.csv", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, ",baseline_grid_import_wh,baseline_grid_export_wh,"));
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        assert_true(n < max);
        char *save = NULL, *tok = strtok_r(line, ",", &save);
        for (int col = 0; tok; col++, tok = strtok_r(NULL, ",", &save)) {
            if (col == 0)
                snprintf(h[n].name, sizeof h[n].name, "%s", tok);
            else if (col == 9)
                h[n].import_wh = strtoll(tok, NULL, 10);
            else if (col == 10)
                h[n].export_wh = strtoll(tok, NULL, 10);
        }
        n++;
    }
    fclose(f);
    return n;
}

/* One meter's power and counters, read the way a poller would. */
static void read_meter(modbus_t *c, const meter_entry *m, int64_t *w, int64_t *imp, int64_t *exp)
{
    assert_int_equal(modbus_set_slave(c, m->unit), 0);
    if (strcmp(m->profile, "sdm630") == 0) {
        uint16_t r[24];
        assert_int_equal(modbus_read_input_registers(c, 0x0034, 24, r), 24);
        *w = (int64_t)llroundf(modbus_get_float_abcd(r));
        *imp = (int64_t)llround((double)modbus_get_float_abcd(r + 20) * 1000.0);
        *exp = (int64_t)llround((double)modbus_get_float_abcd(r + 22) * 1000.0);
        return;
    }
    assert_string_equal(m->profile, "sunspec");
    uint16_t r[37];
    assert_int_equal(modbus_read_registers(c, 40070 + 18, 37, r), 37);
    *w = (int16_t)r[0];
    for (int i = 0; i < (int16_t)r[4]; i++)
        *w *= 10;
    *exp = (int64_t)((uint32_t)r[20] << 16 | r[21]);
    *imp = (int64_t)((uint32_t)r[28] << 16 | r[29]);
}

static modbus_t *connect_port(int port)
{
    modbus_t *c = modbus_new_tcp("127.0.0.1", port);
    assert_non_null(c);
    modbus_set_response_timeout(c, 2, 0);
    assert_int_equal(modbus_connect(c), 0);
    return c;
}

/* Results of one poll of every meter by the meters library's poller (worker threads). */
typedef struct {
    pthread_mutex_t lock;
    const mtr_config *cfg;
    size_t n;
    mtr_poll_result r[MAX_METERS];
    int seen[MAX_METERS];
    int dup;
} poll_set;

/* An empty set for one poll of every meter of cfg. */
static void poll_set_init(poll_set *ps, const mtr_config *cfg)
{
    memset(ps, 0, sizeof *ps);
    pthread_mutex_init(&ps->lock, NULL);
    ps->cfg = cfg;
}

static void on_poll(void *ctx, const mtr_poll_result *r)
{
    poll_set *ps = ctx;
    pthread_mutex_lock(&ps->lock);
    for (size_t i = 0; i < mtr_config_count(ps->cfg); i++) {
        if (strcmp(mtr_config_device(ps->cfg, i)->id, r->sample.meter_id) == 0) {
            ps->dup += ps->seen[i]++;
            ps->r[i] = *r;
            ps->n++;
        }
    }
    pthread_mutex_unlock(&ps->lock);
}

/* The composite file as the daemon loads it: [meter] keys to the meters library, [bus] not. */
typedef struct {
    mtr_config *cfg;
    char section[128];
    int line, bad, bus_keys;
} ini_ctx;

static int on_ini(void *user, const char *section, const char *key, const char *value)
{
    ini_ctx *c = user;
    char err[256];
    c->line++;
    if (strcmp(section, c->section) != 0) {
        snprintf(c->section, sizeof c->section, "%s", section);
        if (mtr_config_handle(c->cfg, section, NULL, NULL, c->line, err, sizeof err) < 0)
            c->bad++;
    }
    int rc = mtr_config_handle(c->cfg, section, key, value, c->line, err, sizeof err);
    if (rc == MTR_CFG_NOT_MINE)
        c->bus_keys += strcmp(section, "bus") == 0 && strcmp(key, "community") == 0;
    else if (rc != MTR_OK) {
        fprintf(stderr, "[%s] %s: %s\n", section, key, err);
        c->bad++;
    }
    return 1;
}

static mtr_config *load_composite(const char *cfg_path)
{
    ini_ctx ic = {mtr_config_new(), "", 0, 0, 0};
    assert_non_null(ic.cfg);
    assert_int_equal(ini_parse(cfg_path, on_ini, &ic), 0);
    assert_int_equal(ic.bad, 0);
    assert_int_equal(ic.bus_keys, 1); /* [bus] community = ..., for `mgx meter` */
    char err[256];
    assert_int_equal(mtr_config_finish(ic.cfg, err, sizeof err), MTR_OK);
    return ic.cfg;
}

/* The meter config, its [meter] sections polled once with the meters library. */
static void poll_with_meters_lib(const char *cfg_path, const home_entry *h, size_t nh,
                                 int64_t start_wh, const char *profile)
{
    mtr_config *cfg = load_composite(cfg_path);
    assert_int_equal(mtr_config_count(cfg), nh);
    static poll_set ps;
    poll_set_init(&ps, cfg);
    mtr_poller *p = mtr_poller_new(cfg, NULL);
    assert_non_null(p);
    assert_int_equal(mtr_poller_run_once(p, on_poll, &ps), MTR_OK);
    assert_int_equal(ps.n, nh);
    assert_int_equal(ps.dup, 0);
    for (size_t i = 0; i < nh; i++) {
        const mtr_poll_result *r = &ps.r[i];
        if (r->rc != MTR_OK)
            fprintf(stderr, "%s: %s\n", r->sample.meter_id, r->err);
        assert_int_equal(r->rc, MTR_OK);
        assert_int_equal(r->sample.quality, MTR_Q_GOOD);
        assert_string_equal(r->sample.meter_id, h[i].name);
        assert_int_equal(r->sample.import_wh, start_wh + h[i].import_wh);
        assert_int_equal(r->sample.export_wh, start_wh + h[i].export_wh);
        assert_int_equal(r->sample.power_w, 0);
        assert_string_equal(r->meta.profile, profile);
        if (strcmp(profile, "sunspec") == 0)
            assert_string_equal(r->meta.serial, h[i].name);
    }
    mtr_poller_free(p);
    mtr_config_free(cfg);
    pthread_mutex_destroy(&ps.lock);
}

/* `mgx meter FILE --once` on the written file: one JSON line per meter, equal to homes.csv. */
static void meter_once(const char *cfg_path, const home_entry *h, size_t nh, int64_t start_wh)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s meter %s --once", mgx_bin, cfg_path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    static char line[8192];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        assert_non_null(j);
        const char *id = json_string_value(json_object_get(j, "meter_id"));
        assert_non_null(id);
        size_t i = 0;
        while (i < nh && strcmp(h[i].name, id) != 0)
            i++;
        assert_true(i < nh);
        assert_int_equal(json_integer_value(json_object_get(j, "import_wh")),
                         start_wh + h[i].import_wh);
        assert_int_equal(json_integer_value(json_object_get(j, "export_wh")),
                         start_wh + h[i].export_wh);
        assert_true(json_is_true(json_object_get(j, "ok")));
        assert_string_equal(json_string_value(json_object_get(j, "flags")), "good");
        json_decref(j);
        n++;
    }
    assert_int_equal(pclose(f), 0);
    assert_int_equal(n, nh);
}

/* Runs a scenario to the end and compares every meter with homes.csv. */
static void final_counters(const char *scenario, const char *profile, int64_t start_wh,
                           size_t want_homes, int want_ports)
{
    sim_proc p;
    char start[32];
    snprintf(start, sizeof start, "%lld", (long long)start_wh);
    const char *extra[] = {"--serve-modbus",
                           "127.0.0.1:0",
                           "--meter-profile",
                           profile,
                           "--clock-speed",
                           "2000000",
                           "--meter-start-wh",
                           start,
                           "--linger",
                           "60",
                           NULL};
    sim_start(&p, scenario, extra);
    assert_true(wait_for(&p, "scenario finished", 180000));
    static meter_entry m[MAX_METERS];
    static home_entry h[MAX_METERS];
    size_t nm = read_meter_config(p.cfg_path, m, MAX_METERS);
    size_t nh = read_homes(p.out_dir, h, MAX_METERS);
    assert_int_equal(nm, want_homes);
    assert_int_equal(nh, want_homes);
    int ports[4] = {0}, n_ports = 0;
    modbus_t *conn[4] = {NULL};
    int64_t sum_imp = 0;
    for (size_t i = 0; i < nm; i++) {
        assert_string_equal(m[i].id, h[i].name); /* meter ids are the homes' names */
        assert_string_equal(m[i].profile, profile);
        assert_int_equal(m[i].unit, (int)(i % 247) + 1);
        assert_int_equal(m[i].rated, 0); /* 100 A x 2e6 is out of range: jump check off */
        int k = 0;
        while (k < n_ports && ports[k] != m[i].port)
            k++;
        if (k == n_ports) {
            assert_true(n_ports < 4);
            ports[n_ports] = m[i].port;
            conn[n_ports++] = connect_port(m[i].port);
        }
        assert_int_equal(k, (int)(i / 247)); /* home i is on listener i / 247 */
        int64_t w, imp, exp;
        read_meter(conn[k], &m[i], &w, &imp, &exp);
        assert_int_equal(imp, start_wh + h[i].import_wh);
        assert_int_equal(exp, start_wh + h[i].export_wh);
        assert_int_equal(w, 0); /* the run is over: nothing flows */
        sum_imp += h[i].import_wh;
    }
    assert_int_equal(n_ports, want_ports);
    assert_true(sum_imp > 0); /* the comparison was not all zeros */
    for (int k = 0; k < n_ports; k++) {
        modbus_close(conn[k]);
        modbus_free(conn[k]);
    }
    poll_with_meters_lib(p.cfg_path, h, nh, start_wh, profile);
    meter_once(p.cfg_path, h, nh, start_wh);
    assert_int_equal(sim_stop(&p, SIGTERM), 0);
    sim_cleanup(&p);
}

/* --boundary-meter: one more meter after the homes, the community's grid connection
 * (docs/trust.md, layer 3). Each interval it rises by the homes' net plus losses, as import when
 * that is >= 0 and as export otherwise, so over the run its import - export is the homes' total
 * import - export plus the losses: exactly with no losses, and with 20 permille between that
 * and that + ceil(2% of the homes' import + export) + 1 Wh per interval (each interval rounds
 * its losses up; street.ini runs 7 days of 96). */
static void test_boundary_meter(void **state)
{
    (void)state;
    for (int loss = 0; loss <= 20; loss += 20) {
        sim_proc p;
        char lp[16];
        snprintf(lp, sizeof lp, "%d", loss);
        const char *extra[] = {"--serve-modbus", "127.0.0.1:0", "--meter-profile", "sunspec",
                               "--clock-speed", "2000000", "--meter-start-wh", "1000",
                               "--boundary-meter", "feeder-1", "--boundary-loss-permille", lp,
                               "--linger", "60", NULL};
        sim_start(&p, MGX_SOURCE_DIR "/config/street.ini", extra);
        assert_true(wait_for(&p, "scenario finished", 180000));
        static meter_entry m[MAX_METERS];
        static home_entry h[MAX_METERS];
        size_t nm = read_meter_config(p.cfg_path, m, MAX_METERS);
        size_t nh = read_homes(p.out_dir, h, MAX_METERS);
        assert_int_equal(nm, nh + 1);
        assert_string_equal(m[nh].id, "feeder-1");
        assert_int_equal(m[nh].unit, (int)nh + 1);
        modbus_t *c = connect_port(m[nh].port);
        int64_t w, imp, exp, net = 0, through = 0;
        read_meter(c, &m[nh], &w, &imp, &exp);
        modbus_close(c);
        modbus_free(c);
        for (size_t i = 0; i < nh; i++) {
            net += h[i].import_wh - h[i].export_wh;
            through += h[i].import_wh + h[i].export_wh;
        }
        int64_t b_net = (imp - 1000) - (exp - 1000);
        fprintf(stderr,
                "boundary at %d permille: import %lld, export %lld Wh; homes' net %lld, "
                "throughput %lld Wh\n",
                loss, (long long)(imp - 1000), (long long)(exp - 1000), (long long)net,
                (long long)through);
        assert_true(imp > 1000 && exp > 1000); /* a day of street: both directions */
        if (loss == 0)
            assert_int_equal(b_net, net);
        else {
            assert_true(b_net >= net + through / 50);
            assert_true(b_net <= net + (through + 49) / 50 + 7 * 96); /* 7 days */
        }
        assert_int_equal(sim_stop(&p, SIGTERM), 0);
        sim_cleanup(&p);
    }
}

static void test_sunspec_300_homes_two_ports(void **state)
{
    (void)state;
    final_counters(MGX_SOURCE_DIR "/tests/cli/serve-300.ini", "sunspec", 1000, 300, 2);
}

static void test_sdm630_street(void **state)
{
    (void)state;
    final_counters(MGX_SOURCE_DIR "/config/street.ini", "sdm630", 0, 10, 1);
}

/* At 900 x real time a 15-minute interval lasts one second: polling a consumer's meter every
 * 50 ms must see its import counter rise within intervals, never fall, with power > 0. */
static void test_counters_move(void **state)
{
    (void)state;
    sim_proc p;
    int port = tst_free_port();
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    const char *extra[] = {"--serve-modbus",
                           addr,
                           "--meter-profile",
                           "sunspec",
                           "--clock-speed",
                           "900",
                           "--meter-start-wh",
                           "5",
                           NULL};
    sim_start(&p, MGX_SOURCE_DIR "/config/street.ini", extra);
    assert_true(wait_for(&p, "clock: scenario time", 120000));
    meter_entry m[16];
    size_t nm = read_meter_config(p.cfg_path, m, 16);
    assert_int_equal(nm, 10);
    const meter_entry *consumer = &m[9]; /* the last group: consumers without PV */
    assert_string_equal(consumer->id, "consumer-3");
    assert_int_equal(consumer->port, port);
    assert_int_equal(consumer->rated, 90000); /* 100 A x 900 */
    modbus_t *c = connect_port(port);
    int64_t prev = -1, w, imp, exp;
    int rises = 0, positive = 0;
    for (int i = 0; i < 60; i++) { /* 3 s: about three intervals */
        read_meter(c, consumer, &w, &imp, &exp);
        assert_true(imp >= prev);
        assert_int_equal(exp, 5); /* no PV: nothing exported */
        rises += prev >= 0 && imp > prev;
        positive += w > 0;
        prev = imp;
        tst_sleep_ms(50);
    }
    /* a rise at interval ends only would give about 3 */
    assert_true(rises >= 10);
    assert_true(positive >= 50);
    modbus_close(c);
    modbus_free(c);
    /* the meters library's counter filter, polling every 0.4 s of real time, takes the fast
     * rises as plausible because the written config scales rated_current_a by the clock speed
     * (with the default 100 A, 69 kW, a consumer's ~200 W x 900 would be flagged as a jump) */
    mtr_config *cfg = load_composite(p.cfg_path);
    static poll_set ps;
    poll_set_init(&ps, cfg);
    mtr_poller *pl = mtr_poller_new(cfg, NULL);
    assert_non_null(pl);
    int64_t first = -1;
    for (int round = 0; round < 4; round++) {
        memset(ps.seen, 0, sizeof ps.seen);
        assert_int_equal(mtr_poller_run_once(pl, on_poll, &ps), MTR_OK);
        for (size_t i = 0; i < nm; i++) {
            assert_int_equal(ps.r[i].rc, MTR_OK);
            assert_int_equal(ps.r[i].sample.quality, MTR_Q_GOOD);
        }
        if (first < 0)
            first = ps.r[9].sample.import_wh;
        tst_sleep_ms(400);
    }
    assert_true(ps.r[9].sample.import_wh > first); /* the consumer's counter did move */
    mtr_poller_free(pl);
    mtr_config_free(cfg);
    pthread_mutex_destroy(&ps.lock);
    /* a signal during the run stops it at once, without outputs */
    assert_int_equal(sim_stop(&p, SIGINT), 1);
    char *e = tst_file_read(p.err_path, NULL);
    assert_non_null(strstr(e, "by a signal; no outputs written"));
    free(e);
    char path[600];
    snprintf(path, sizeof path, "%s/homes.csv", p.out_dir);
    assert_int_equal(access(path, F_OK), -1);
    sim_cleanup(&p);
}

__attribute__((format(printf, 2, 3))) static int run_status(char **err_out, const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char *dir = tst_tmpdir("sim-serve-cli");
    snprintf(cmd, sizeof cmd, "%s sim %s 2>%s/err.txt >/dev/null", mgx_bin, args, dir);
    int st = system(cmd);
    char path[600];
    snprintf(path, sizeof path, "%s/err.txt", dir);
    *err_out = tst_file_read(path, NULL);
    tst_rmtree(dir);
    free(dir);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

static void test_usage_errors(void **state)
{
    (void)state;
    const char *sc = MGX_SOURCE_DIR "/config/street.ini";
    char *e = NULL;
    assert_int_equal(run_status(&e, "%s --out /tmp/x --clock-speed 10", sc), 2);
    assert_non_null(strstr(e, "need --serve-modbus"));
    free(e);
    assert_int_equal(run_status(&e, "%s --out /tmp/x --serve-modbus localhost", sc), 2);
    assert_non_null(strstr(e, "HOST:PORT"));
    free(e);
    assert_int_equal(run_status(&e, "%s --out /tmp/x --serve-modbus 127.0.0.1:70000", sc), 2);
    free(e);
    assert_int_equal(run_status(&e, "%s --out /tmp/x --serve-modbus :1502", sc), 2);
    free(e);
    assert_int_equal(
        run_status(&e, "%s --out /tmp/x --serve-modbus 127.0.0.1:0 --clock-speed 0", sc), 2);
    assert_non_null(strstr(e, "--clock-speed"));
    free(e);
    assert_int_equal(
        run_status(&e, "%s --out /tmp/x --serve-modbus 127.0.0.1:0 --meter-profile sdm120", sc), 2);
    free(e);
    assert_int_equal(run_status(&e, "%s --out /tmp/x --serve-modbus 127.0.0.1:0 --runs 2", sc), 2);
    assert_non_null(strstr(e, "one seed"));
    free(e);
    assert_int_equal(
        run_status(&e, "%s --out /tmp/x --serve-modbus 127.0.0.1:0 --meter-start-wh -1", sc), 2);
    free(e);
    assert_int_equal(
        run_status(&e, "%s --out /tmp/x --serve-modbus 127.0.0.1:0 --community 'a b'", sc), 2);
    assert_non_null(strstr(e, "--community"));
    free(e);
    /* a port in use: a clear error naming the address, before any simulation */
    int port = tst_free_port();
    sim_proc p;
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    const char *extra[] = {"--serve-modbus", addr, "--clock-speed", "1", NULL};
    sim_start(&p, sc, extra);
    assert_true(wait_for(&p, "clock: scenario time", 120000));
    assert_int_equal(run_status(&e, "%s --out /tmp/x --serve-modbus %s", sc, addr), 1);
    assert_non_null(strstr(e, "cannot serve Modbus on 127.0.0.1:"));
    assert_non_null(strstr(e, "Address already in use"));
    free(e);
    assert_int_equal(sim_stop(&p, SIGTERM), 1);
    sim_cleanup(&p);
}

int main(void)
{
    mgx_bin = getenv("MGX_BIN");
    if (!mgx_bin) {
        fprintf(stderr, "MGX_BIN is not set\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sunspec_300_homes_two_ports),
        cmocka_unit_test(test_sdm630_street),
        cmocka_unit_test(test_counters_move),
        cmocka_unit_test(test_boundary_meter),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
