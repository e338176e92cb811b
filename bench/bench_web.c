/*
 * bench_web: the dashboard under load (issue 14, docs/dashboard.md "Measured"). Builds a
 * HOMES-home community database with the real db, market and settlement functions (one order
 * per home per interval cleared by the market library, the clearing stored, one reading per
 * meter, the interval settled into the signed ledger with credits), HISTORY intervals of it;
 * then, in this one process:
 *   1. times the controller's interval work (clear + store, readings, settle) for K intervals
 *      with no dashboard open;
 *   2. starts `mgx web`'s server (controller/web) with THREADS threads and opens every home's
 *      dashboard at once: bench/web_dashboards.mjs (node) logs each home in, loads its page
 *      (/, app.js, style.css, /api/me, /api/key, /api/home/ID) and keeps its live stream
 *      open, reloading the home's view on news as the page does; page load percentiles;
 *   3. times K more intervals while those dashboards are open (each settlement reaches every
 *      stream, and every page reloads its view) and prints the ratio of the medians.
 *
 * The intervals run GAP ms apart, so with the dashboards open each one meets the reloads the
 * previous one's news caused (1,000 home views take seconds).
 *
 *   ./build-rel/bench/bench_web [HOMES] [--history=N] [--intervals=K] [--gap-ms=GAP]
 *                               [--threads=T]
 *
 * Needs node (>= 18) on PATH; nothing from npm.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "common/wall_clock.h"
#include "db/registry.h"
#include "db/store.h"
#include "mgx/checkpoint.h"
#include "mgx/market.h"
#include "settle/ledger_store.h"
#include "settle/settle_interval.h"
#include "web/web_config.h"
#include "web/web_server.h"

#include <openssl/evp.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define COMMUNITY "benchville"
#define INTERVAL_S 900
#define PASSWORD "bench password"

static double mono_ms(void)
{
    return bench_now_s() * 1e3;
}

static uint64_t rnd(uint64_t *s)
{
    return bench_splitmix(s);
}

typedef struct {
    size_t n;
    ctl_store *store;
    ctl_db *db; /* the store's handle: the controller's */
    ctl_ledger_key *key;
    mkt_clearing *clearing;
    mkt_order *orders;
    uint64_t *mid;      /* market number per home */
    int64_t *import_wh; /* meter counters per home */
    int64_t *export_wh;
    mtr_sample *readings;
    stl_metered *metered;
    uint64_t seed;
} community;

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_web: %s%s%s\n", what, err ? ": " : "", err ? err : "");
    exit(1);
}

/* The controller's work for interval iv: clear the homes' orders and store the clearing, store
 * one reading per meter at the interval's end, settle the interval into the ledger. Times in
 * ms: t[0] clear + store, t[1] readings, t[2] settle. */
static void run_interval(community *c, int64_t iv, double t[3])
{
    static const mkt_params P0 = {MKT_PAY_AS_CLEAR, 80000, 300000, 10000, 0};
    mkt_params p = P0;
    p.interval_id = iv;
    for (size_t h = 0; h < c->n; h++) {
        mkt_order *o = &c->orders[h];
        memset(o, 0, sizeof *o);
        o->participant = c->mid[h];
        o->side = rnd(&c->seed) % 2 ? MKT_SELL : MKT_BUY;
        o->n_steps = 1;
        o->steps[0].energy_wh = 100 + (int64_t)(rnd(&c->seed) % 1900);
        o->steps[0].price_uc_per_kwh = 90000 + (int64_t)(rnd(&c->seed) % 200000);
    }
    double a = mono_ms();
    if (mkt_clear(c->clearing, &p, c->orders, c->n, NULL) != MKT_OK)
        die("clearing failed", NULL);
    size_t nt, np;
    const mkt_trade *tr = mkt_clearing_trades(c->clearing, &nt);
    const mkt_participant_result *pr = mkt_clearing_participants(c->clearing, &np);
    ctl_clearing_rec rec = {iv, iv * INTERVAL_S, &p, (int64_t)time(NULL) * 1000, "", c->n,
                            mkt_clearing_summary(c->clearing), tr, nt, pr, np, NULL, NULL, NULL, 0};
    if (ctl_store_begin(c->store) != CTL_ST_OK)
        die("begin", ctl_store_errmsg(c->store));
    int rc = ctl_store_put_clearing(c->store, &rec);
    if (ctl_store_end(c->store, rc) != CTL_ST_OK || rc != CTL_ST_OK)
        die("storing the clearing", ctl_store_errmsg(c->store));
    double b = mono_ms();
    /* participants come back ascending by market number; homes were numbered in order */
    for (size_t h = 0; h < np && h < c->n; h++) {
        c->import_wh[h] += pr[h].local_bought_wh + pr[h].grid_bought_wh;
        c->export_wh[h] += pr[h].local_sold_wh + pr[h].grid_sold_wh;
        mtr_sample *r = &c->readings[h];
        memset(r, 0, sizeof *r);
        snprintf(r->meter_id, sizeof r->meter_id, "m-%04zu", h);
        r->ts_ms = (iv + 1) * INTERVAL_S * 1000;
        r->import_wh = c->import_wh[h];
        r->export_wh = c->export_wh[h];
        r->power_w = 400;
        r->soc_permille = -1;
        c->metered[h] = (stl_metered){pr[h].participant, pr[h].local_bought_wh + pr[h].grid_bought_wh,
                                      pr[h].local_sold_wh + pr[h].grid_sold_wh, 0, 0, 0};
    }
    for (size_t off = 0; off < c->n; off += CTL_STORE_READINGS_MAX) {
        size_t k = c->n - off < CTL_STORE_READINGS_MAX ? c->n - off : CTL_STORE_READINGS_MAX, ins;
        if (ctl_store_put_readings(c->store, c->readings + off, k, ctl_wall_ms(), &ins) != CTL_ST_OK)
            die("storing readings", ctl_store_errmsg(c->store));
    }
    double d = mono_ms();
    ctl_ledger_input in = {iv, INTERVAL_S, {80000, 300000, 10000}, tr, nt, c->metered, np,
                           STL_TIMING_EX_ANTE, 0, 1, 0};
    ctl_ledger_result res;
    char err[300];
    if (ctl_ledger_settle(c->db, &in, c->key, &res, err, sizeof err) != CTL_LEDGER_OK)
        die("settling", err);
    double e = mono_ms();
    t[0] = b - a;
    t[1] = d - b;
    t[2] = e - d;
}

/* The password file: one mosquitto 2.0 line ("$7$": PBKDF2-HMAC-SHA512, 101 rounds) per home,
 * all with PASSWORD, made the way mosquitto_passwd makes them. */
static void write_passwords(const char *path, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write", path);
    for (size_t h = 0; h < n; h++) {
        uint8_t salt[12], hash[64];
        randombytes_buf(salt, sizeof salt);
        if (PKCS5_PBKDF2_HMAC(PASSWORD, (int)strlen(PASSWORD), salt, sizeof salt, 101,
                              EVP_sha512(), sizeof hash, hash) != 1)
            die("PBKDF2", NULL);
        char s64[64], h64[128];
        sodium_bin2base64(s64, sizeof s64, salt, sizeof salt, sodium_base64_VARIANT_ORIGINAL);
        sodium_bin2base64(h64, sizeof h64, hash, sizeof hash, sodium_base64_VARIANT_ORIGINAL);
        fprintf(f, "home-%04zu:$7$101$%s$%s\n", h, s64, h64);
    }
    fclose(f);
}

/* k intervals gap_ms apart (as a controller's are apart, shortened): the time of each. */
static void time_intervals(community *c, int64_t *iv, int k, int gap_ms, double *total,
                           double parts[3][64])
{
    for (int i = 0; i < k; i++) {
        struct timespec ts = {gap_ms / 1000, (long)(gap_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        double t[3];
        run_interval(c, (*iv)++, t);
        parts[0][i] = t[0];
        parts[1][i] = t[1];
        parts[2][i] = t[2];
        total[i] = t[0] + t[1] + t[2];
    }
}

static double pct(double *v, int n, double q)
{
    /* v sorted by bench_median already */
    int i = (int)(q * n);
    return v[i < n ? i : n - 1];
}

static void report(const char *what, double *total, double parts[3][64], int k)
{
    double m0 = bench_median(parts[0], (size_t)k), m1 = bench_median(parts[1], (size_t)k),
           m2 = bench_median(parts[2], (size_t)k), mt = bench_median(total, (size_t)k);
    printf("  %-28s median %7.1f ms (clear+store %.1f, readings %.1f, settle %.1f), p90 %.1f, "
           "max %.1f\n",
           what, mt, m0, m1, m2, pct(total, k, 0.9), total[k - 1]);
}

int main(int argc, char **argv)
{
    size_t n = 1000;
    int history = 96, k = 12, gap_ms = 3000;
    long threads = 2;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--history=", 10) == 0)
            history = atoi(argv[i] + 10);
        else if (strncmp(argv[i], "--intervals=", 12) == 0)
            k = atoi(argv[i] + 12);
        else if (strncmp(argv[i], "--gap-ms=", 9) == 0)
            gap_ms = atoi(argv[i] + 9);
        else if (strncmp(argv[i], "--threads=", 10) == 0)
            threads = atol(argv[i] + 10);
        else
            n = (size_t)atol(argv[i]);
    }
    if (sodium_init() < 0 || n < 2 || n > 9999 || k < 1 || k > 64 || history < 1 || threads < 1 ||
        gap_ms < 0)
        die("usage: bench_web [HOMES] [--history=N] [--intervals=K<=64] [--gap-ms=MS] "
            "[--threads=T]",
            NULL);
    /* a descriptor per open dashboard, and some */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char dir[] = "/tmp/bench_web_XXXXXX", dbpath[300], pwpath[300], err[512];
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    snprintf(dbpath, sizeof dbpath, "%s/community.db", dir);
    snprintf(pwpath, sizeof pwpath, "%s/passwd", dir);
    int64_t now_iv = (int64_t)time(NULL) / INTERVAL_S;
    int64_t iv = now_iv - history - 2 * k; /* the last timed interval ends about now */
    community c = {.n = n, .seed = 14};
    ctl_store_identity id = {COMMUNITY, INTERVAL_S, iv};
    if (ctl_store_open(dbpath, &id, &c.store, err, sizeof err) != CTL_ST_OK)
        die("store", err);
    c.db = ctl_store_db(c.store);
    c.key = sodium_malloc(sizeof *c.key);
    snprintf(c.key->name, sizeof c.key->name, "bench.example/mgx");
    uint8_t pk[32];
    crypto_sign_keypair(pk, c.key->sk);
    stl_salt_secret(c.key->sk, c.key->salt_secret);
    char vkey[256];
    if (stl_vkey_format(c.key->name, pk, vkey, sizeof vkey) != STL_OK ||
        ctl_ledger_meta_set(c.db, c.key->name, vkey) != CTL_LEDGER_OK)
        die("ledger key", NULL);
    c.clearing = mkt_clearing_new(n);
    c.orders = calloc(n, sizeof *c.orders);
    c.mid = calloc(n, sizeof *c.mid);
    c.import_wh = calloc(n, sizeof *c.import_wh);
    c.export_wh = calloc(n, sizeof *c.export_wh);
    c.readings = calloc(n, sizeof *c.readings);
    c.metered = calloc(n, sizeof *c.metered);
    if (!c.clearing || !c.orders || !c.mid || !c.import_wh || !c.export_wh || !c.readings ||
        !c.metered)
        die("out of memory", NULL);
    double t0 = mono_ms();
    for (size_t h = 0; h < n; h++) {
        ctl_participant p;
        memset(&p, 0, sizeof p);
        snprintf(p.id, sizeof p.id, "home-%04zu", h);
        snprintf(p.meter_id, sizeof p.meter_id, "m-%04zu", h);
        randombytes_buf(p.pubkey, sizeof p.pubkey);
        p.role = CTL_ROLE_HOME;
        if (ctl_registry_add(c.db, &p, (int64_t)time(NULL)) != CTL_REG_OK ||
            ctl_store_market_id(c.store, p.id, &c.mid[h]) != CTL_ST_OK)
            die("registering homes", ctl_store_errmsg(c.store));
        c.import_wh[h] = 1000000 + (int64_t)h;
        c.export_wh[h] = 500000;
    }
    double scratch[3];
    for (int i = 0; i < history; i++)
        run_interval(&c, iv++, scratch);
    write_passwords(pwpath, n);
    printf("bench_web: %zu homes, %d intervals of history built in %.1f s (%s)\n", n, history,
           (mono_ms() - t0) / 1e3, dbpath);

    /* 1. the controller's interval work, nobody watching */
    static double quiet[64], quiet_parts[3][64], loaded[64], loaded_parts[3][64];
    time_intervals(&c, &iv, k, gap_ms, quiet, quiet_parts);

    /* 2. the server and every home's dashboard */
    web_config wc;
    memset(&wc, 0, sizeof wc);
    snprintf(wc.listen, sizeof wc.listen, "127.0.0.1");
    snprintf(wc.database, sizeof wc.database, "%s", dbpath);
    snprintf(wc.password_file, sizeof wc.password_file, "%s", pwpath);
    wc.port = 0;
    wc.max_sessions = (int64_t)n + 16;
    wc.session_ttl_s = 3600;
    wc.live_max_clients = (int64_t)n + 16;
    wc.live_poll_ms = 1000;
    wc.live_queue_bytes = 65536;
    wc.threads = threads;
    wc.max_connections = 2 * (int64_t)n + 64;
    wc.alert_silent_s = 900;
    wc.alert_lag_s = 7200;
    ctl_db *wdb;
    if (ctl_db_open(dbpath, &wdb, err, sizeof err) != CTL_DB_OK)
        die("web database", err);
    web_server *ws = web_server_start(&wc, wdb, err, sizeof err);
    if (!ws)
        die("web server", err);
    char url[64], nstr[16];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", web_server_port(ws));
    snprintf(nstr, sizeof nstr, "%zu", n);
    int out[2];
    if (pipe(out) != 0)
        die("pipe", NULL);
    pid_t node = fork();
    if (node == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execlp("node", "node", MGX_BENCH_DIR "/web_dashboards.mjs", url, nstr, PASSWORD,
               (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *from = fdopen(out[0], "r");
    char line[1024];
    int open = 0;
    while (fgets(line, sizeof line, from)) {
        fputs(line, stdout);
        if (strncmp(line, "OPEN", 4) == 0) {
            open = 1;
            break;
        }
    }
    if (!open)
        die("the dashboards did not open (node missing?)", NULL);
    fflush(stdout);

    /* 3. the same work with every dashboard open */
    time_intervals(&c, &iv, k, gap_ms, loaded, loaded_parts);
    sleep(15); /* the last settlement's reloads */
    kill(node, SIGTERM);
    while (fgets(line, sizeof line, from))
        fputs(line, stdout);
    fclose(from);
    int st;
    waitpid(node, &st, 0);
    printf("controller interval work (clear %zu orders + store, %zu readings, settle with "
           "credits), %d intervals %d ms apart each:\n",
           n, n, k, gap_ms);
    report("no dashboard open", quiet, quiet_parts, k);
    report("all dashboards open", loaded, loaded_parts, k);
    printf("  ratio of medians (open / none)  %.2f; server threads %ld\n",
           bench_median(loaded, (size_t)k) / bench_median(quiet, (size_t)k), threads);
    web_server_stop(ws);
    ctl_db_close(wdb);
    ctl_store_free(c.store);
    sodium_free(c.key);
    mkt_clearing_free(c.clearing);
    free(c.orders), free(c.mid), free(c.import_wh), free(c.export_wh), free(c.readings),
        free(c.metered);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (!getenv("MGX_BENCH_KEEP") && system(cmd) != 0)
        return 1;
    return 0;
}
