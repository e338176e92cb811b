/*
 * bench_controller: how long the controller takes from gate closure to published results for a
 * community of N homes (default 1,000), through its real code and a real mosquitto broker.
 *
 * Each round, in a fresh database:
 *   store ingest    N signed orders (1-4 step curves, half sellers, half buyers, one key per
 *                   home) stored through the daemon's order path minus the bus: registry lookup,
 *                   every admission rule incl. the Ed25519 signature, one BEGIN IMMEDIATE
 *                   transaction per order with its receipt (ctl_store_put_order)
 *   clear+commit    ctl_store_clear_interval on a copy of that database: read the book, mkt_clear,
 *                   write result, trades and outcomes, COMMIT (synchronous=FULL)
 *   gate -> first   the real daemon (ctl_daemon_run in a thread, clock anchored so the gate
 *                   closes 1.5 s after it starts): gate closure to the first message at a
 *                   subscriber on the broker
 *   gate -> all     ... to the subscriber holding the result and all N trades messages
 *   daemon ingest   N more orders (next interval) published at QoS 1 by a client, until all N
 *                   receipts are back: the full order path through broker and daemon
 * plus, in the same process, the baseline: mkt_clear of the same book alone (mean of 20).
 *
 *   ./build-rel/bench/bench_controller [N] [--rounds=R]     (defaults N = 1000, R = 5)
 * Needs mosquitto on the PATH; the broker is private (a free port on 127.0.0.1, temp folder).
 */
#define _GNU_SOURCE
#include "bus.h"
#include "ctl_daemon.h"
#include "keys.h"
#include "order_msg.h"
#include "registry.h"
#include "admit.h"
#include "store.h"

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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define COMMUNITY "bench"
#define INTERVAL_S 900
#define GATE_S 300
#define BASE_INTERVAL INT64_C(2000000) /* 2027-01-14: any interval will do */
#define N_MAX 20000

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
               "max_queued_messages 100000\nmax_inflight_messages 1000\n",
            port);
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
    sqlite3 *db;
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
    ctl_admit_history ah = {h->nonce_seen ? CTL_NONCE_OTHER : CTL_NONCE_NEW, h->has_current,
                            h->current_created_ms};
    ctl_admit_verdict v = ctl_admit(x->ap, x->now_ms, x->m->participant, x->m,
                                    found == CTL_REG_OK ? &entry : NULL, &ah, &x->r);
    int accept = v == CTL_ADMIT_ACCEPT || v == CTL_ADMIT_REPLACE;
    o->status = accept ? CTL_ORDER_ACCEPTED : CTL_ORDER_REJECTED;
    snprintf(o->reason, sizeof o->reason, "%s", ctl_reason_name(x->r.reason));
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
    size_t trades, results, receipts;
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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

int main(int argc, char **argv)
{
    n_homes = 1000;
    int rounds = 5;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--rounds=", 9))
            rounds = atoi(argv[i] + 9);
        else
            n_homes = (size_t)strtoul(argv[i], NULL, 10);
    }
    if (n_homes < 2 || n_homes > N_MAX || rounds < 1 || rounds > 100)
        die("usage: bench_controller [N (2..20000)] [--rounds=R (1..100)]");
    if (sodium_init() < 0)
        die("libsodium failed");
    snprintf(tmp, sizeof tmp, "/tmp/bench_controller.XXXXXX");
    if (!mkdtemp(tmp))
        die("no temp folder");
    atexit(clean_up);
    int port = start_broker();
    homes = calloc(n_homes, sizeof *homes);
    mkt_order *book = calloc(n_homes, sizeof *book);
    mkt_clearing *c = mkt_clearing_new(n_homes);
    if (!homes || !book || !c)
        die("out of memory");
    for (size_t h = 0; h < n_homes; h++) {
        snprintf(homes[h].id, sizeof homes[h].id, "home-%05zu", h);
        uint8_t seed[32];
        randombytes_buf(seed, sizeof seed);
        if (ctl_key_from_seed(seed, &homes[h].key) != CTL_KEY_OK)
            die("key failed");
    }
    printf("bench_controller: %zu homes, %d rounds, mosquitto on 127.0.0.1:%d, db in %s\n",
           n_homes, rounds, port, tmp);
    printf("%5s %12s %10s %12s %10s %10s %10s %13s\n", "round", "store ingest", "orders/s",
           "clear+commit", "gate->1st", "gate->all", "messages", "daemon ingest");
    double *v_ing = calloc((size_t)rounds, sizeof(double)), *v_clr = calloc((size_t)rounds, sizeof(double)),
           *v_first = calloc((size_t)rounds, sizeof(double)), *v_all = calloc((size_t)rounds, sizeof(double)),
           *v_dmn = calloc((size_t)rounds, sizeof(double)), *v_base = calloc((size_t)rounds, sizeof(double));
    unsigned seed = 42;
    for (int r = 0; r < rounds; r++) {
        int64_t iv = BASE_INTERVAL + r * 10;
        char db[300], db2[300];
        snprintf(db, sizeof db, "%s/round%d.db", tmp, r);
        snprintf(db2, sizeof db2, "%s/round%d-copy.db", tmp, r);
        int64_t sim_before = (gate_s(iv) - 120) * 1000;
        ctl_store_identity ident = {COMMUNITY, INTERVAL_S, iv};
        ctl_store *s = NULL;
        char err[512];
        if (ctl_store_open(db, &ident, &s, err, sizeof err) != CTL_ST_OK ||
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
        double t0 = now_ms_f();
        store_orders(s, iv, sim_before, &seed, book);
        v_ing[r] = now_ms_f() - t0;
        ctl_store_free(s);
        copy_file(db, db2);

        /* baseline: the market library alone on the same book */
        mkt_params mp = {MKT_PAY_AS_CLEAR, 80000, 300000, 10000};
        mkt_error_at at;
        t0 = now_ms_f();
        for (int i = 0; i < 20; i++)
            if (mkt_clear(c, &mp, book, n_homes, &at) != MKT_OK)
                die("mkt_clear failed");
        v_base[r] = (now_ms_f() - t0) / 20;

        /* clear + commit through the store, on the copy */
        ctl_store_identity ident2 = {COMMUNITY, INTERVAL_S, iv};
        if (ctl_store_open(db2, &ident2, &s, err, sizeof err) != CTL_ST_OK)
            die(err);
        int did = 0;
        int64_t last;
        ctl_store_last_cleared(s, &last); /* a warm connection, as in the daemon */
        t0 = now_ms_f();
        if (ctl_store_clear_interval(s, iv, iv * INTERVAL_S, &mp, 0, &did) != CTL_ST_OK || !did)
            die("store clear failed");
        v_clr[r] = now_ms_f() - t0;
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
        for (int i = 0; i < 50 && !bus_connected(sub); i++)
            bus_loop(sub, 20);
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
                                 .community = COMMUNITY, .max_pending = (unsigned)n_homes * 2 + 64,
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
        v_first[r] = t.first_ms - (double)gate_real;
        v_all[r] = t.last_ms - (double)gate_real;

        /* daemon ingest: N orders for the next interval over the bus, until all receipts */
        static char body[CTL_ORDER_JSON_MAX];
        char topic[BUS_TOPIC_MAX];
        int64_t sim_now = gate_s(iv) * 1000 + (now_ms() - gate_real);
        t0 = now_ms_f();
        for (size_t h = 0; h < n_homes; h++) {
            ctl_order_msg m;
            size_t len;
            make_order(h, iv + 1, sim_now, &seed, &m);
            if (ctl_order_to_json(&m, body, sizeof body, &len) != CTL_R_OK ||
                bus_topic_order(topic, sizeof topic, COMMUNITY, homes[h].id) != BUS_OK ||
                bus_publish(sub, topic, body, len, 1, false, NULL, NULL) != BUS_OK)
                die("publish failed");
            bus_loop(sub, 0);
        }
        until = now_ms() + 60000;
        while (t.receipts < n_homes && now_ms() < until)
            bus_loop(sub, 5);
        if (t.receipts < n_homes)
            die("not every order got its receipt");
        v_dmn[r] = t.last_receipt_ms - t0;
        d.stop = 1;
        pthread_join(th, NULL);
        bus_stop(sub, 1000);
        bus_free(sub);
        printf("%5d %9.1f ms %10.0f %9.1f ms %7.1f ms %7.1f ms %10zu %10.1f ms\n", r + 1,
               v_ing[r], (double)n_homes / v_ing[r] * 1000, v_clr[r], v_first[r], v_all[r],
               t.trades + t.results, v_dmn[r]);
        fflush(stdout);
    }
    size_t n = (size_t)rounds;
    printf("\nmedian over %d rounds, %zu homes:\n", rounds, n_homes);
    printf("  mkt_clear alone (baseline)           %8.2f ms\n", median(v_base, n));
    printf("  clear+commit (store)                 %8.2f ms\n", median(v_clr, n));
    printf("  gate closure -> first message        %8.2f ms\n", median(v_first, n));
    printf("  gate closure -> result + %zu trades  %8.2f ms\n", n_homes, median(v_all, n));
    double ing = median(v_ing, n), dmn = median(v_dmn, n);
    printf("  order ingest, store path             %8.1f ms (%.0f orders/s)\n", ing,
           (double)n_homes / ing * 1000);
    printf("  order ingest, bus + daemon           %8.1f ms (%.0f orders/s)\n", dmn,
           (double)n_homes / dmn * 1000);
    clean_up();
    for (size_t h = 0; h < n_homes; h++)
        ctl_key_free(homes[h].key);
    free(homes);
    free(book);
    mkt_clearing_free(c);
    free(v_ing), free(v_clr), free(v_first), free(v_all), free(v_dmn), free(v_base);
    return 0;
}
