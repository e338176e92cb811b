/*
 * bench_controller: the controller's two hot paths through its real code, a real mosquitto
 * broker and real SQLite files (WAL, synchronous=FULL):
 *  - order ingest: signed orders in, committed, receipts out;
 *  - gate closure: clearing a community of N homes (default 1,000) and publishing the results.
 *
 * Each round, in fresh databases:
 *   raw verify      the baseline, in this process: crypto_sign_verify_detached over M
 *                   pre-encoded orders, in 1 thread and split over 2 threads
 *   store, 1 by 1   N signed orders (1-4 step curves, one key per home) through the path the
 *                   daemon used before batching: registry, admission rules and Ed25519 in the
 *                   calling thread, one BEGIN IMMEDIATE transaction (one fsync) per order
 *   store, batched  M orders through the daemon's order path minus the bus (ingest.h): decode and
 *                   pre-judge in the calling thread, Ed25519 on 2 verify workers, one transaction
 *                   per batch of up to 1,024
 *   clear+commit    ctl_store_clear_interval on a copy of the 1-by-1 database: read the book,
 *                   mkt_clear, write result, trades and outcomes, COMMIT
 *   gate -> first   the real daemon (ctl_daemon_run in a thread, clock anchored so the gate
 *                   closes 1.5 s after it starts): gate closure to the first message at a
 *                   subscriber on the broker
 *   gate -> all     ... to the subscriber holding the result and all N trades messages
 *   bus ingest      then M more orders (N homes, each for M/N future intervals), JSON made and
 *                   signed beforehand, published at QoS 1 at once by P clients (each home through
 *                   one client), until all M receipts are back at a receipt client: broker ->
 *                   daemon -> broker -> receipts. Measured: wall time, and CPU time per order of
 *                   the daemon (its loop thread and its verify workers: this process's CPU clock
 *                   minus the main thread's), of its loop thread alone, of the broker (/proc)
 *                   and of the publishing clients (the main thread).
 * plus, in the same process, mkt_clear of the same book alone (mean of 20).
 *
 * The daemon's rate on 2 dedicated cores is implied from its CPU time: its loop thread is serial
 * (at most one core) and the whole daemon shares 2 cores, so
 *   rate = min(1 / loop-thread CPU per order, 2 / daemon CPU per order).
 *
 *   ./build-rel/bench/bench_controller [N] [--rounds=R] [--orders=M] [--publishers=P]
 *                                      [--inflight=K]
 *   (defaults N = 1000, R = 5, M = 20000, P = 8, K = 100: the broker's max_inflight_messages,
 *   which under MQTT v5 also caps each client's unacknowledged QoS 1 publishes)
 * Needs mosquitto on the PATH; the broker is private (a free port on 127.0.0.1, temp folder).
 */
#define _GNU_SOURCE
#include "bench_util.h"
#include "bus/bus.h"
#include "daemon/clearing.h"
#include "daemon/ctl_daemon.h"
#include "orders/keys.h"
#include "orders/order_msg.h"
#include "db/registry.h"
#include "orders/admit.h"
#include "orders/ingest.h"
#include "db/store.h"

#include "mgx/market.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define COMMUNITY "bench"
#define INTERVAL_S 900
#define GATE_S 300
#define BASE_INTERVAL INT64_C(2000000) /* 2027-01-14: any interval will do */
#define N_MAX 20000
#define M_MAX 200000
#define P_MAX 64

static double now_ms_f(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int64_t now_ms(void)
{
    return (int64_t)now_ms_f();
}

/* ---- the broker ---- */

static pid_t broker_pid;
static char tmp[256];

/* Stops the broker and removes the temp folder, also after a failure. */
static void clean_up(void)
{
    if (broker_pid > 0) {
        kill(broker_pid, SIGTERM);
        waitpid(broker_pid, NULL, 0);
        broker_pid = 0;
    }
    if (tmp[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_controller: could not remove %s\n", tmp);
        tmp[0] = '\0';
    }
}

static void die(const char *what)
{
    fprintf(stderr, "bench_controller: %s\n", what);
    exit(1);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        die("no free port");
    close(fd);
    return ntohs(a.sin_port);
}

static int inflight = 100; /* the broker's max_inflight_messages (--inflight) */

static int start_broker(void)
{
    int port = free_port();
    char conf[300];
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", tmp);
    FILE *f = fopen(conf, "w");
    if (!f)
        die("cannot write the broker config");
    /* max_queued_messages: room for a whole interval's trades to one subscriber */
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
               "max_queued_messages 100000\nmax_inflight_messages %d\n",
            port, inflight);
    fclose(f);
    broker_pid = fork();
    if (broker_pid == 0) {
        if (!freopen("/dev/null", "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(126);
        execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return port;
        usleep(50000);
    }
    die("mosquitto did not start (is it installed?)");
    return 0;
}

/* ---- homes, keys, orders ---- */

typedef struct {
    char id[32];
    ctl_secret_key *key;
} home;

static home *homes;
static size_t n_homes;

static int64_t gate_s(int64_t interval)
{
    return interval * INTERVAL_S - GATE_S;
}

static void make_order(size_t h, int64_t interval, int64_t created_ms, unsigned *seed,
                       ctl_order_msg *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->community, sizeof m->community, COMMUNITY);
    snprintf(m->participant, sizeof m->participant, "%s", homes[h].id);
    m->interval_id = interval;
    m->interval_s = INTERVAL_S;
    m->created_ms = created_ms;
    m->expiry_s = gate_s(interval);
    randombytes_buf(m->nonce, sizeof m->nonce);
    m->side = h % 2 ? MKT_BUY : MKT_SELL;
    m->n_steps = 1 + (uint32_t)(rand_r(seed) % 4);
    for (uint32_t s = 0; s < m->n_steps; s++) {
        m->steps[s].energy_wh = 50 + rand_r(seed) % 1500;
        m->steps[s].price_uc_per_kwh = 80000 + rand_r(seed) % 210001;
    }
    if (ctl_order_sign(m, ctl_key_secret(homes[h].key)) != CTL_R_OK)
        die("signing failed");
}

/* ---- the store path (as ctl_daemon.c's handle_order, without the bus) ---- */

typedef struct {
    ctl_db *db;
    const ctl_admit_params *ap;
    const ctl_order_msg *m;
    int64_t now_ms;
    ctl_admit_result r;
} order_ctx;

static int decide(ctl_order_rec *o, const ctl_order_history *h, void *arg)
{
    order_ctx *x = arg;
    ctl_participant entry;
    int found = ctl_registry_lookup(x->db, x->m->participant, &entry);
    ctl_admit_history ah = ctl_admit_history_of(h);
    ctl_admit_verdict v = ctl_admit(x->ap, x->now_ms, x->m->participant, x->m,
                                    found == CTL_REG_OK ? &entry : NULL, &ah, &x->r);
    ctl_admit_record(o, v, &x->r);
    return 0;
}

static int make_receipt(const ctl_order_rec *o, char *buf, size_t cap, void *arg)
{
    order_ctx *x = arg;
    ctl_receipt r;
    ctl_receipt_for(&r, x->m, ctl_reason_parse(o->reason), x->r.detail, x->now_ms);
    return ctl_receipt_to_json(&r, buf, cap, NULL) == CTL_R_OK ? 0 : -1;
}

static void store_orders(ctl_store *s, int64_t interval, int64_t sim_now_ms, unsigned *seed,
                         mkt_order *book)
{
    ctl_admit_params ap = {COMMUNITY, INTERVAL_S, GATE_S, 96};
    for (size_t h = 0; h < n_homes; h++) {
        ctl_order_msg m;
        make_order(h, interval, sim_now_ms, seed, &m);
        uint8_t enc[CTL_ORDER_ENC_MAX + CTL_ORDER_SIG_BYTES];
        size_t len = 0;
        if (ctl_order_encode(&m, enc, &len) != CTL_R_OK)
            die("encode failed");
        memcpy(enc + len, m.sig, CTL_ORDER_SIG_BYTES);
        ctl_order_rec o;
        memset(&o, 0, sizeof o);
        snprintf(o.participant, sizeof o.participant, "%s", m.participant);
        memcpy(o.nonce, m.nonce, CTL_NONCE_BYTES);
        o.interval_id = interval;
        o.created_ms = m.created_ms;
        o.side = m.side;
        o.n_steps = m.n_steps;
        memcpy(o.steps, m.steps, sizeof o.steps);
        o.signed_msg = enc;
        o.signed_len = len + CTL_ORDER_SIG_BYTES;
        o.received_ms = sim_now_ms;
        order_ctx x = {ctl_store_db(s), &ap, &m, sim_now_ms, {0}};
        char receipt[CTL_RECEIPT_MAX];
        int dup = 0;
        if (ctl_store_put_order(s, &o, decide, make_receipt, &x, receipt, sizeof receipt, &dup) !=
                CTL_ST_OK ||
            o.status != CTL_ORDER_ACCEPTED)
            die("an order was not accepted");
        book[h] = (mkt_order){.participant = h, .side = m.side, .n_steps = m.n_steps};
        memcpy(book[h].steps, m.steps, sizeof m.steps);
    }
}

/* ---- the subscriber ---- */

typedef struct {
    int64_t interval;
    size_t trades, results, receipts, accepted;
    double first_ms, last_ms, last_receipt_ms;
} tally;

static void on_message(void *user, const bus_message *m)
{
    tally *t = user;
    char community[BUS_ID_MAX], kind[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    if (bus_topic_parse(m->topic, community, kind, id, leaf) != BUS_OK)
        return;
    double now = now_ms_f();
    if (!strcmp(kind, "receipt")) {
        t->receipts++;
        t->accepted += memmem(m->payload, m->len, "\"accepted\"", 10) != NULL;
        t->last_receipt_ms = now;
        return;
    }
    if (!strcmp(kind, "trades"))
        t->trades++;
    else if (!strcmp(kind, "market") && !strcmp(leaf, "result") &&
             strtoll(id, NULL, 10) == t->interval)
        t->results++;
    else
        return;
    if (t->first_ms == 0)
        t->first_ms = now;
    t->last_ms = now;
}

/* ---- the daemon in a thread ---- */

typedef struct {
    ctl_daemon_config cfg;
    volatile sig_atomic_t stop;
    int rc;
} daemon_run;

static void *daemon_thread(void *arg)
{
    daemon_run *d = arg;
    d->rc = ctl_daemon_run(&d->cfg, &d->stop);
    return NULL;
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    if (!a || !b)
        die("cannot copy the database");
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        if (fwrite(buf, 1, n, b) != n)
            die("cannot copy the database");
    fclose(a);
    if (fclose(b))
        die("cannot copy the database");
}

/* ---- a burst of M orders, made and signed beforehand ---- */

typedef struct {
    char *json;
    size_t json_len;
    size_t home;
    uint8_t enc[CTL_ORDER_ENC_MAX];
    size_t enc_len;
    uint8_t sig[CTL_ORDER_SIG_BYTES];
} made_order;

static made_order *burst;
static size_t n_burst;

/* Order i is home i mod N's order for interval iv0 + i / N: every order is a first order. */
static void make_burst(int64_t iv0, int64_t sim_now_ms, unsigned *seed)
{
    for (size_t i = 0; i < n_burst; i++) {
        made_order *o = &burst[i];
        ctl_order_msg m;
        o->home = i % n_homes;
        make_order(o->home, iv0 + (int64_t)(i / n_homes), sim_now_ms, seed, &m);
        static char body[CTL_ORDER_JSON_MAX];
        free(o->json);
        if (ctl_order_to_json(&m, body, sizeof body, &o->json_len) != CTL_R_OK ||
            !(o->json = malloc(o->json_len + 1)) ||
            ctl_order_encode(&m, o->enc, &o->enc_len) != CTL_R_OK)
            die("cannot make the burst");
        memcpy(o->json, body, o->json_len + 1);
        memcpy(o->sig, m.sig, sizeof o->sig);
    }
}

/* ---- CPU clocks ---- */

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds (user + system) of a process, from /proc (clock-tick resolution). */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* fields after the command name */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the raw verify baseline ---- */

typedef struct {
    size_t from, to;
} verify_span;

static void *verify_range(void *arg)
{
    const verify_span *v = arg;
    for (size_t i = v->from; i < v->to; i++)
        if (crypto_sign_verify_detached(burst[i].sig, burst[i].enc, burst[i].enc_len,
                                        ctl_key_public(homes[burst[i].home].key)) != 0)
            die("a signature did not verify");
    return NULL;
}

/* Orders per second over the burst's bytes with `threads` threads (1 or 2). */
static double raw_verify(int threads)
{
    verify_span half[2] = {{0, n_burst / 2}, {n_burst / 2, n_burst}};
    verify_span all = {0, n_burst};
    double t0 = now_ms_f();
    if (threads == 1) {
        verify_range(&all);
    } else {
        pthread_t th;
        if (pthread_create(&th, NULL, verify_range, &half[1]))
            die("thread failed");
        verify_range(&half[0]);
        pthread_join(th, NULL);
    }
    return (double)n_burst / (now_ms_f() - t0) * 1000;
}

/* ---- the store path, batched (ingest.h without the bus) ---- */

static void count_outcome(void *ctx, const ctl_ingest_outcome *o)
{
    size_t *accepted = ctx;
    if (o->stored && ctl_reason_is_accept(o->reason))
        (*accepted)++;
}

/* The burst through ctl_ingest: returns the wall ms; *cpu_s gets this process's CPU seconds
 * (the calling thread and the verify workers), *own_s the calling thread's. */
static double store_batched(ctl_store *s, int64_t sim_now_ms, double *cpu_s, double *own_s)
{
    size_t accepted = 0;
    ctl_ingest_config cfg = {{COMMUNITY, INTERVAL_S, GATE_S, 96}, 2, CTL_INGEST_BATCH_MAX,
                             count_outcome, &accepted};
    ctl_ingest *g = NULL;
    if (ctl_ingest_new(&cfg, s, &g) != CTL_INGEST_OK)
        die("ingest failed");
    char topic[BUS_ID_MAX];
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), o0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    double t0 = now_ms_f();
    for (size_t i = 0; i < n_burst; i++) {
        if (ctl_ingest_pending(g) == CTL_INGEST_BATCH_MAX && ctl_ingest_flush(g) != CTL_ST_OK)
            die("batch not stored");
        snprintf(topic, sizeof topic, "%s", homes[burst[i].home].id);
        if (ctl_ingest_add(g, topic, burst[i].json, burst[i].json_len, sim_now_ms) !=
            CTL_INGEST_OK)
            die("ingest refused an order");
    }
    if (ctl_ingest_flush(g) != CTL_ST_OK)
        die("batch not stored");
    double ms = now_ms_f() - t0;
    *cpu_s = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    *own_s = clock_s(CLOCK_THREAD_CPUTIME_ID) - o0;
    ctl_ingest_free(g);
    if (accepted != n_burst)
        die("an order of the batched store path was not accepted");
    return ms;
}

int main(int argc, char **argv)
{
    n_homes = 1000;
    n_burst = 20000;
    int rounds = 5, n_pub = 8;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--rounds=", 9))
            rounds = atoi(argv[i] + 9);
        else if (!strncmp(argv[i], "--orders=", 9))
            n_burst = (size_t)strtoul(argv[i] + 9, NULL, 10);
        else if (!strncmp(argv[i], "--publishers=", 13))
            n_pub = atoi(argv[i] + 13);
        else if (!strncmp(argv[i], "--inflight=", 11))
            inflight = atoi(argv[i] + 11);
        else
            n_homes = (size_t)strtoul(argv[i], NULL, 10);
    }
    if (n_homes < 2 || n_homes > N_MAX || rounds < 1 || rounds > 100 || n_burst < n_homes ||
        n_burst > M_MAX || n_burst / n_homes > 90 || n_pub < 1 || n_pub > P_MAX ||
        inflight < 1 || inflight > 65535)
        die("usage: bench_controller [N (2..20000)] [--rounds=R (1..100)] [--orders=M (N..200000, "
            "at most 90 N)] [--publishers=P (1..64)] [--inflight=K (1..65535)]");
    if (sodium_init() < 0)
        die("libsodium failed");
    snprintf(tmp, sizeof tmp, "/tmp/bench_controller.XXXXXX");
    if (!mkdtemp(tmp))
        die("no temp folder");
    atexit(clean_up);
    int port = start_broker();
    homes = calloc(n_homes, sizeof *homes);
    burst = calloc(n_burst, sizeof *burst);
    mkt_order *book = calloc(n_homes, sizeof *book);
    mkt_clearing *c = mkt_clearing_new(n_homes);
    if (!homes || !burst || !book || !c)
        die("out of memory");
    for (size_t h = 0; h < n_homes; h++) {
        snprintf(homes[h].id, sizeof homes[h].id, "home-%05zu", h);
        uint8_t seed[32];
        randombytes_buf(seed, sizeof seed);
        if (ctl_key_from_seed(seed, &homes[h].key) != CTL_KEY_OK)
            die("key failed");
    }
    printf("bench_controller: %zu homes, bursts of %zu orders from %d publishers, %d rounds, "
           "%ld CPUs, mosquitto on 127.0.0.1:%d (max_inflight_messages %d), db in %s\n",
           n_homes, n_burst, n_pub, rounds, sysconf(_SC_NPROCESSORS_ONLN), port, inflight, tmp);
    printf("%5s %9s %9s %10s %10s %9s %9s %9s %10s %9s %9s %9s %9s\n", "round", "raw 1 thr",
           "raw 2 thr", "store 1by1", "store batch", "clear ms", "gate>1st", "gate>all",
           "bus ingest", "dmn us/o", "loop us/o", "brk us/o", "pub us/o");
    size_t n = (size_t)rounds;
    double *v[15];
    for (int k = 0; k < 15; k++)
        if (!(v[k] = calloc(n, sizeof(double))))
            die("out of memory");
    enum { RAW1, RAW2, ING1, INGB, CLR, FIRST, ALL, BUS, DMN, LOOP, BRK, PUB, BASE, SCPU, SOWN };
    unsigned seed = 42;
    for (int r = 0; r < rounds; r++) {
        int64_t iv = BASE_INTERVAL + r * 200;
        char db[300], db2[300], db3[300];
        snprintf(db, sizeof db, "%s/round%d.db", tmp, r);
        snprintf(db2, sizeof db2, "%s/round%d-copy.db", tmp, r);
        snprintf(db3, sizeof db3, "%s/round%d-batched.db", tmp, r);
        int64_t sim_before = (gate_s(iv) - 120) * 1000;

        /* the baseline and the store paths */
        make_burst(iv + 1, sim_before, &seed);
        v[RAW1][r] = raw_verify(1);
        v[RAW2][r] = raw_verify(2);
        ctl_store *s = NULL;
        char err[512];
        for (int k = 0; k < 2; k++) {
            ctl_store_identity ident = {COMMUNITY, INTERVAL_S, iv};
            if (ctl_store_open(k ? db3 : db, &ident, &s, err, sizeof err) != CTL_ST_OK ||
                ctl_registry_init(ctl_store_db(s)) != CTL_REG_OK)
                die(err);
            for (size_t h = 0; h < n_homes; h++) {
                ctl_participant p = {.role = CTL_ROLE_HOME};
                snprintf(p.id, sizeof p.id, "%s", homes[h].id);
                snprintf(p.meter_id, sizeof p.meter_id, "%s", homes[h].id);
                memcpy(p.pubkey, ctl_key_public(homes[h].key), CTL_PUBKEY_BYTES);
                if (ctl_registry_add(ctl_store_db(s), &p, sim_before / 1000) != CTL_REG_OK)
                    die("registry add failed");
            }
            if (k == 1)
                break;
            double t0 = now_ms_f();
            store_orders(s, iv, sim_before, &seed, book);
            v[ING1][r] = (double)n_homes / (now_ms_f() - t0) * 1000;
            ctl_store_free(s);
        }
        double cpu = 0, own = 0;
        v[INGB][r] = (double)n_burst / store_batched(s, sim_before, &cpu, &own) * 1000;
        v[SCPU][r] = cpu / (double)n_burst * 1e6;
        v[SOWN][r] = own / (double)n_burst * 1e6;
        ctl_store_free(s);
        copy_file(db, db2);

        /* baseline: the market library alone on the same book */
        mkt_params mp = {MKT_PAY_AS_CLEAR, 80000, 300000, 10000, 0};
        mkt_error_at at;
        double t0 = now_ms_f();
        for (int i = 0; i < 20; i++)
            if (mkt_clear(c, &mp, book, n_homes, &at) != MKT_OK)
                die("mkt_clear failed");
        v[BASE][r] = (now_ms_f() - t0) / 20;

        /* clear + commit through the store, on the copy */
        ctl_store_identity ident2 = {COMMUNITY, INTERVAL_S, iv};
        if (ctl_store_open(db2, &ident2, &s, err, sizeof err) != CTL_ST_OK)
            die(err);
        int did = 0;
        int64_t last;
        ctl_store_last_cleared(s, &last); /* a warm connection, as in the daemon */
        t0 = now_ms_f();
        if (ctl_clear_interval(s, iv, iv * INTERVAL_S, &mp, 0, &did) != CTL_ST_OK || !did)
            die("store clear failed");
        v[CLR][r] = now_ms_f() - t0;
        ctl_store_free(s);

        /* the daemon: subscriber first, then the daemon with its gate 1.5 s away */
        tally t = {.interval = iv};
        char cid[32];
        snprintf(cid, sizeof cid, "bench-sub-%d", r);
        bus_config sc = {.host = "127.0.0.1", .port = port, .client_id = cid,
                         .community = COMMUNITY, .max_pending = (unsigned)n_homes + 16,
                         .log_level = BUS_LOG_WARN};
        bus_client *sub = bus_new(&sc, on_message, NULL, &t, NULL);
        char filter[BUS_TOPIC_MAX];
        if (!sub || bus_filter_all(filter, sizeof filter, COMMUNITY, "trades", NULL) ||
            bus_subscribe(sub, filter, 1) ||
            bus_filter_all(filter, sizeof filter, COMMUNITY, "receipt", NULL) ||
            bus_subscribe(sub, filter, 1) ||
            bus_filter_all(filter, sizeof filter, COMMUNITY, "market", "result") ||
            bus_subscribe(sub, filter, 1) || bus_start(sub))
            die("subscriber failed");
        bus_client *pub[P_MAX];
        for (int i = 0; i < n_pub; i++) {
            snprintf(cid, sizeof cid, "bench-pub-%d-%d", r, i);
            bus_config pc = {.host = "127.0.0.1", .port = port, .client_id = cid,
                             .community = COMMUNITY, .max_pending = 32000,
                             .log_level = BUS_LOG_WARN};
            if (!(pub[i] = bus_new(&pc, NULL, NULL, NULL, NULL)) || bus_start(pub[i]))
                die("publisher failed");
        }
        for (int i = 0; i < 100; i++) {
            int up = bus_connected(sub);
            bus_loop(sub, 10);
            for (int k = 0; k < n_pub; k++) {
                up = up && bus_connected(pub[k]);
                bus_loop(pub[k], 0);
            }
            if (up)
                break;
        }
        bus_loop(sub, 100); /* the subscriptions are in place */
        daemon_run d;
        memset(&d, 0, sizeof d);
        snprintf(d.cfg.community, sizeof d.cfg.community, COMMUNITY);
        snprintf(d.cfg.db_path, sizeof d.cfg.db_path, "%s", db);
        d.cfg.rules = (ctl_interval_rules){INTERVAL_S, GATE_S, 96};
        d.cfg.params = mp;
        int64_t gate_real = now_ms() + 1500;
        d.cfg.clock = (ctl_clock){gate_real, gate_s(iv) * 1000, 1};
        d.cfg.settlement_grace_s = 900;
        d.cfg.bus = (bus_config){.host = "127.0.0.1", .port = port, .client_id = "controller",
                                 .community = COMMUNITY, .max_pending = 32000,
                                 .log_level = BUS_LOG_WARN};
        d.cfg.log_level = BUS_LOG_WARN;
        pthread_t th;
        if (pthread_create(&th, NULL, daemon_thread, &d))
            die("thread failed");
        int64_t until = gate_real + 20000;
        while ((t.trades < n_homes || t.results < 1) && now_ms() < until)
            bus_loop(sub, 5);
        if (t.trades < n_homes || t.results < 1)
            die("the results did not all arrive");
        v[FIRST][r] = t.first_ms - (double)gate_real;
        v[ALL][r] = t.last_ms - (double)gate_real;

        /* bus ingest: the burst for the next intervals, made now (the daemon's clock), all
         * published at once by the P clients, until every receipt is back */
        int64_t sim_now = gate_s(iv) * 1000 + (now_ms() - gate_real);
        make_burst(iv + 1, sim_now, &seed);
        t.receipts = t.accepted = 0;
        clockid_t loop_clock;
        if (pthread_getcpuclockid(th, &loop_clock))
            die("no thread clock");
        double proc0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), main0 = clock_s(CLOCK_THREAD_CPUTIME_ID),
               loop0 = clock_s(loop_clock), brk0 = proc_cpu_s(broker_pid);
        char topic[BUS_TOPIC_MAX];
        t0 = now_ms_f();
        for (size_t i = 0; i < n_burst; i++) {
            const made_order *o = &burst[i];
            bus_client *pc = pub[o->home % (size_t)n_pub];
            if (bus_topic_order(topic, sizeof topic, COMMUNITY, homes[o->home].id) != BUS_OK ||
                bus_publish(pc, topic, o->json, o->json_len, 1, false, NULL, NULL) != BUS_OK)
                die("publish failed");
            if (i % 64 == 63) {
                for (int k = 0; k < n_pub; k++)
                    bus_loop(pub[k], 0);
                bus_loop(sub, 0);
            }
        }
        /* the clients are looped every few ms, not spun: they share the cores with the daemon */
        until = now_ms() + 120000;
        while (t.receipts < n_burst && now_ms() < until) {
            for (int k = 0; k < n_pub; k++)
                bus_loop(pub[k], 0);
            bus_loop(sub, 2);
        }
        if (t.receipts < n_burst)
            die("not every order got its receipt");
        if (t.accepted != n_burst)
            die("an order over the bus was not accepted");
        double wall = t.last_receipt_ms - t0;
        double main_cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - main0;
        double daemon_cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - proc0 - main_cpu;
        v[BUS][r] = (double)n_burst / wall * 1000;
        v[DMN][r] = daemon_cpu / (double)n_burst * 1e6;
        v[LOOP][r] = (clock_s(loop_clock) - loop0) / (double)n_burst * 1e6;
        v[BRK][r] = (proc_cpu_s(broker_pid) - brk0) / (double)n_burst * 1e6;
        v[PUB][r] = main_cpu / (double)n_burst * 1e6;
        d.stop = 1;
        pthread_join(th, NULL);
        for (int k = 0; k < n_pub; k++) {
            bus_stop(pub[k], 1000);
            bus_free(pub[k]);
        }
        bus_stop(sub, 1000);
        bus_free(sub);
        printf("%5d %9.0f %9.0f %10.0f %11.0f %9.1f %9.1f %9.1f %10.0f %9.1f %9.1f %9.1f %9.1f\n",
               r + 1, v[RAW1][r], v[RAW2][r], v[ING1][r], v[INGB][r], v[CLR][r], v[FIRST][r],
               v[ALL][r], v[BUS][r], v[DMN][r], v[LOOP][r], v[BRK][r], v[PUB][r]);
        fflush(stdout);
        remove(db2);
        remove(db3);
    }
    double m[15]; /* the medians, by column */
    for (int k = 0; k < 15; k++)
        m[k] = bench_median(v[k], n);
    double dmn = m[DMN], loop = m[LOOP];
    double implied = 1e6 / loop < 2e6 / dmn ? 1e6 / loop : 2e6 / dmn;
    printf("\nmedian over %d rounds; orders/s unless marked:\n", rounds);
    printf("  order ingest\n");
    printf("    raw crypto_sign_verify_detached, 1 thread (baseline)  %8.0f\n", m[RAW1]);
    printf("    raw crypto_sign_verify_detached, 2 threads            %8.0f\n", m[RAW2]);
    printf("    store path, one transaction per order (before)        %8.0f\n", m[ING1]);
    printf("    store path, batched, 2 verify workers (after)         %8.0f\n", m[INGB]);
    printf("    CPU per order: %.1f us (calling thread %.1f us, verify workers the rest)\n",
           m[SCPU], m[SOWN]);
    printf("    bus: %d publishers -> broker -> daemon -> receipts     %8.0f\n", n_pub, m[BUS]);
    printf("    CPU per order: daemon %.1f us (loop thread %.1f us), broker %.1f us, publishers "
           "%.1f us\n",
           dmn, loop, m[BRK], m[PUB]);
    printf("    implied daemon rate on 2 dedicated cores             %8.0f\n", implied);
    printf("  gate closure, %zu homes (ms)\n", n_homes);
    printf("    mkt_clear alone (baseline)                           %8.2f\n", m[BASE]);
    printf("    clear+commit (store)                                 %8.2f\n", m[CLR]);
    printf("    gate closure -> first message                        %8.2f\n", m[FIRST]);
    printf("    gate closure -> result + %zu trades                %8.2f\n", n_homes, m[ALL]);
    clean_up();
    for (size_t h = 0; h < n_homes; h++)
        ctl_key_free(homes[h].key);
    for (size_t i = 0; i < n_burst; i++)
        free(burst[i].json);
    free(burst);
    free(homes);
    free(book);
    mkt_clearing_free(c);
    for (int k = 0; k < 15; k++)
        free(v[k]);
    return 0;
}
