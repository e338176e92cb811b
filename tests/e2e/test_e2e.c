/*
 * The end-to-end test (label integration): the whole live stack for 20 homes over one simulated
 * day, compared interval by interval with the in-process simulator on the same scenario.
 *
 * Started, all on 127.0.0.1 and with one --clock-speed and one clock anchor: a mosquitto broker,
 * `mgx sim --serve-modbus` (the homes' meters over Modbus TCP), `mgx meter` (reads them onto the
 * bus), `mgx keygen` + `mgx participant add` per home, one `mgx agent` per home and
 * `mgx controller`. Everything the test started is stopped in the teardown, also when a check
 * fails, and every child is told to die with the test (PR_SET_PDEATHSIG).
 *
 * What must match, and why (docs/end-to-end.md has the long form):
 *  - the scenario (tests/e2e/community-20.ini) has no batteries, deterministic strategies and
 *    forecast_lag = 6, which the agents are given too, so a home's order for interval k is, on
 *    both sides, its strategy's one-step order for the net energy (PV - load = export -
 *    import) of interval k - 6; formed when k - 6 ends, it has 4200 simulated seconds (about
 *    3 real seconds at 1440x) to reach the controller before k's gate, so a busy machine
 *    delays it without changing which interval it is for;
 *  - the simulated meters hold their counters still around each boundary (--meter-hold), so the
 *    agent's interpolated boundary values are exact;
 *  - homes are numbered in the same order on both sides (ids sort like the file order).
 * Then for every interval of the day, including the first six (no history: no orders on either
 * side), three things must be equal:
 *  (1) a fresh mkt_clear of the book built from the simulator's own meter flows of k - 2 with
 *      the public strategy API (the oracle);
 *  (2) the in-process simulator (sim_run): price, matched energy, each home's local Wh;
 *  (3) the controller: its stored result (orders, trades, price, matched, value, fees, grid),
 *      every participant's outcome (Wh and money) and every trade, and the retained result
 *      message on the bus.
 * Nothing is excluded. A timing failure (an order that reached the controller after its gate)
 * shows up as a rejected order and fails the test with the agents' log lines.
 *
 * The same day runs a second time with timing = ex_post (the scenario with that line added to
 * its [market], the agents and the controller configured alike): the agents state standing
 * preferences, the controller clears each interval on its metered energy 900 simulated seconds
 * after it ends, and the oracle's book for k is mkt_ex_post_orders of every home's own net of k
 * (PV - load) with the preference its strategy states (ask; bid plus the fee, all-in).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "shell.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "bus/bus.h"
#include "daemon/publish_body.h"
#include "db/store.h"

#include "mgx/ex_post.h"
#include "mgx/market.h"
#include "mgx/scenario.h"
#include "mgx/sim.h"
#include "mgx/simdata.h"
#include "mgx/strategy.h"

#define COMMUNITY "e2e"
#define GATE_S 300
#define MAX_HOMES 32
#define MAX_INTERVALS 96
#define MAX_PROCS (MAX_HOMES + 8)
/* Real seconds from starting the stack to the scenario's first instant: the 20 agents, the
 * meter daemon and the simulator start in about 2 s on an idle machine, several times that in
 * a sanitized build on a busy one. The flat counters before it give no orders. */
#define STARTUP_S 15

/* A simulated day takes 86400 / SPEED seconds: a minute at 1440. Sanitized binaries are
 * several times slower, so they get half the speed (the timing margins are in real time). */
#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_SPEED 720
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEFAULT_SPEED 720
#endif
#endif
#ifndef DEFAULT_SPEED
#define DEFAULT_SPEED 1440
#endif

typedef struct {
    pid_t pid;
    char name[48];
} proc;

typedef struct {
    int64_t pv_wh, load_wh;
    int64_t sold_wh, bought_wh; /* the simulator's local contract */
} flow_rec;

typedef struct {
    tst_broker *broker;
    char *dir;
    char bin[4096];
    proc procs[MAX_PROCS];
    size_t n_procs;
    sim_scenario sc;
    size_t homes, intervals;
    char ids[MAX_HOMES][64];
    flow_rec flows[MAX_INTERVALS][MAX_HOMES];
    int64_t first_interval;
    /* retained results seen on the bus, by interval offset */
    int seen[MAX_INTERVALS];
    int64_t bus_price[MAX_INTERVALS], bus_matched[MAX_INTERVALS];
    int bus_withheld[MAX_INTERVALS]; /* matched_wh null: fewer than k homes behind it */
    int ex_post; /* the run's timing (the scenario's [market] timing) */
} world;

static world *W;

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void path(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void path(char *out, size_t cap, const char *fmt, ...)
{
    int n = snprintf(out, cap, "%s/", W->dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- processes ---- */

/* Starts bin with argv (NULL-terminated), stdout and stderr to log, dying with the test. */
static pid_t spawn(const char *name, const char *log, char *const argv[])
{
    pid_t pid = tst_spawn_logged(log, argv);
    assert_true(W->n_procs < MAX_PROCS);
    proc *p = &W->procs[W->n_procs++];
    p->pid = pid;
    snprintf(p->name, sizeof p->name, "%s", name);
    return pid;
}

/* Runs a short command to completion; fails the test on a non-zero exit. */
static void run(const char *what, char *const argv[])
{
    char log[4096];
    path(log, sizeof log, "logs/setup.log");
    pid_t pid = spawn(what, log, argv);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    W->procs[--W->n_procs].pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "e2e: %s failed (status %d); see %s\n", what, status, log);
        fail();
    }
}

/* A process that died before its time fails the test. */
static void check_alive(void)
{
    for (size_t i = 0; i < W->n_procs; i++) {
        int status;
        if (W->procs[i].pid > 0 && waitpid(W->procs[i].pid, &status, WNOHANG) == W->procs[i].pid) {
            fprintf(stderr, "e2e: %s exited early (status %d); logs in %s/logs\n",
                    W->procs[i].name, status, W->dir);
            W->procs[i].pid = 0;
            fail();
        }
    }
}

/* SIGTERM to everything, SIGKILL to what has not stopped within 5 s. */
static void stop_all(void)
{
    for (size_t i = 0; i < W->n_procs; i++)
        if (W->procs[i].pid > 0)
            kill(W->procs[i].pid, SIGTERM);
    int64_t until = real_ms() + 5000;
    for (size_t i = 0; i < W->n_procs; i++) {
        while (W->procs[i].pid > 0) {
            if (waitpid(W->procs[i].pid, NULL, WNOHANG) == W->procs[i].pid) {
                W->procs[i].pid = 0;
            } else if (real_ms() > until) {
                fprintf(stderr, "e2e: %s ignored SIGTERM; killing it\n", W->procs[i].name);
                kill(W->procs[i].pid, SIGKILL);
                waitpid(W->procs[i].pid, NULL, 0);
                W->procs[i].pid = 0;
            } else {
                tst_sleep_ms(20);
            }
        }
    }
    W->n_procs = 0;
}

static void write_file(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void write_file(const char *file, const char *fmt, ...)
{
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    assert_int_equal(fclose(f), 0);
}

/* ---- the in-process side ---- */

static void on_flow(const sim_flow *f, void *ctx)
{
    (void)ctx;
    if (f->interval >= MAX_INTERVALS || f->home >= MAX_HOMES)
        return;
    flow_rec *r = &W->flows[f->interval][f->home];
    r->pv_wh = f->pv_wh;
    r->load_wh = f->load_wh;
    r->sold_wh = f->local_sold_wh;
    r->bought_wh = f->local_bought_wh;
}

static const sim_group *group_of(size_t h)
{
    size_t g = 0;
    while (g + 1 < W->sc.n_groups && h >= W->sc.groups[g].count)
        h -= W->sc.groups[g++].count;
    return &W->sc.groups[g];
}

static mkt_params tariffs(void)
{
    return (mkt_params){W->sc.mechanism, W->sc.feed_in_uc_per_kwh, W->sc.retail_uc_per_kwh,
                        W->sc.network_fee_uc_per_kwh, 0};
}

/* The oracle's book for interval k: every home's strategy order for the net of k - lag. */
static size_t oracle_book(size_t k, mkt_order *book)
{
    size_t n = 0;
    if (k < W->sc.forecast_lag)
        return 0;
    mkt_params p = tariffs();
    for (size_t h = 0; h < W->homes; h++) {
        const flow_rec *f = &W->flows[k - W->sc.forecast_lag][h];
        const sim_group *g = group_of(h);
        sim_strategy_params sp = {g->agent, g->markup, g->zip_beta, g->zip_momentum};
        sim_trader t;
        assert_int_equal(sim_trader_init(&t, &sp, 0), SIM_STRAT_OK);
        mkt_side side;
        mkt_step step;
        int rc = sim_trader_order(&t, f->pv_wh - f->load_wh, &p, 0, &side, &step);
        assert_true(rc >= 0);
        if (rc == 0)
            continue;
        /* market ids start at 1, as the controller numbers them (and the simulator) */
        book[n] = (mkt_order){.participant = h + 1, .side = side, .n_steps = 1};
        book[n].steps[0] = step;
        n++;
    }
    return n;
}

/* The ex_post oracle's book for interval k: every home's metered net of k itself, with the
 * standing preference its strategy states (the simulator's and the agent's rule: the ask as
 * the sell limit, the bid plus the fee as the all-in buy limit), through mkt_ex_post_orders. */
static size_t oracle_book_ex_post(size_t k, mkt_order *book)
{
    mkt_params p = tariffs();
    mkt_preference prefs[MAX_HOMES];
    mkt_ex_post_home homes[MAX_HOMES];
    for (size_t h = 0; h < W->homes; h++) {
        const flow_rec *f = &W->flows[k][h];
        const sim_group *g = group_of(h);
        sim_strategy_params sp = {g->agent, g->markup, g->zip_beta, g->zip_momentum};
        sim_trader t;
        assert_int_equal(sim_trader_init(&t, &sp, 0), SIM_STRAT_OK);
        int64_t ask = 0, bid = 0;
        assert_int_equal(sim_trader_price(&t, MKT_SELL, &p, 0, &ask), SIM_STRAT_OK);
        assert_int_equal(sim_trader_price(&t, MKT_BUY, &p, 0, &bid), SIM_STRAT_OK);
        memset(&prefs[h], 0, sizeof prefs[h]);
        prefs[h].n_sell_steps = prefs[h].n_buy_steps = 1;
        prefs[h].sell[0] = (mkt_step){1, ask};
        prefs[h].buy[0] = (mkt_step){1, bid + p.network_fee_uc_per_kwh};
        homes[h] = (mkt_ex_post_home){h + 1, f->pv_wh - f->load_wh, &prefs[h]};
    }
    size_t n = 0;
    mkt_error_at at;
    assert_int_equal(mkt_ex_post_orders(&p, homes, W->homes, book, MAX_HOMES, &n, &at), MKT_OK);
    return n;
}

/* ---- the bus side ---- */

static void on_result(void *user, const bus_message *m)
{
    (void)user;
    char community[BUS_ID_MAX], kind[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    if (bus_topic_parse(m->topic, community, kind, id, leaf) != BUS_OK ||
        strcmp(kind, "market") != 0 || strcmp(leaf, "result") != 0)
        return;
    int64_t k = strtoll(id, NULL, 10) - W->first_interval;
    if (k < 0 || k >= MAX_INTERVALS)
        return;
    json_error_t e;
    json_t *j = json_loadb(m->payload, m->len, 0, &e);
    assert_non_null(j);
    json_t *price = json_object_get(j, "price_uc_per_kwh");
    W->bus_price[k] = json_is_integer(price) ? (int64_t)json_integer_value(price) : -1;
    W->bus_matched[k] = (int64_t)json_integer_value(json_object_get(j, "matched_wh"));
    W->bus_withheld[k] = json_is_null(json_object_get(j, "matched_wh"));
    W->seen[k]++;
    json_decref(j);
}

/* Startup: which agents and the meter daemon said "online", which meters have a reading. */
typedef struct {
    int agent_online[MAX_HOMES], meter_read[MAX_HOMES];
    int meters_online;
} readiness;

static void on_ready(void *user, const bus_message *m)
{
    readiness *r = user;
    char community[BUS_ID_MAX], kind[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    if (bus_topic_parse(m->topic, community, kind, id, leaf) != BUS_OK)
        return;
    int online = m->len == 6 && memcmp(m->payload, "online", 6) == 0;
    if (strcmp(kind, "status") == 0 && online && strcmp(id, "meters") == 0)
        r->meters_online = 1;
    for (size_t h = 0; h < W->homes; h++) {
        char agent[80];
        snprintf(agent, sizeof agent, "%s-agent", W->ids[h]);
        /* an agent's status is status/<participant>/<client id> */
        if (strcmp(kind, "status") == 0 && online && strcmp(id, W->ids[h]) == 0 &&
            strcmp(leaf, agent) == 0)
            r->agent_online[h] = 1;
        if (strcmp(kind, "meter") == 0 && strcmp(leaf, "state") == 0 &&
            strcmp(id, W->ids[h]) == 0)
            r->meter_read[h] = 1;
    }
}

/* Waits until every agent and the meter daemon are online and every meter has a reading on
 * the bus, which must be before the scenario's first instant (deadline_ms): an agent needs
 * readings either side of interval 0's start for its first order. A stack that is not up by
 * then fails here, saying what was missing, rather than as an interval without orders. */
static void wait_for_the_stack(int64_t deadline_ms)
{
    readiness r;
    memset(&r, 0, sizeof r);
    bus_config bc = {.host = "127.0.0.1", .port = tst_broker_port(W->broker),
                     .client_id = "e2e-ready", .community = COMMUNITY};
    bus_client *c = bus_new(&bc, on_ready, NULL, &r, NULL);
    assert_non_null(c);
    char filter[BUS_TOPIC_MAX];
    snprintf(filter, sizeof filter, "mgx/v1/%s/status/+", COMMUNITY);
    assert_int_equal(bus_subscribe(c, filter, 1), BUS_OK);
    snprintf(filter, sizeof filter, "mgx/v1/%s/status/+/+", COMMUNITY); /* the agents' */
    assert_int_equal(bus_subscribe(c, filter, 1), BUS_OK);
    snprintf(filter, sizeof filter, "mgx/v1/%s/meter/+/state", COMMUNITY);
    assert_int_equal(bus_subscribe(c, filter, 1), BUS_OK);
    assert_int_equal(bus_start(c), BUS_OK);
    size_t missing;
    do {
        bus_loop(c, 50);
        check_alive();
        missing = (size_t)!r.meters_online;
        for (size_t h = 0; h < W->homes; h++)
            missing += (size_t)(!r.agent_online[h] + !r.meter_read[h]);
    } while (missing && real_ms() < deadline_ms);
    bus_stop(c, 1000);
    bus_free(c);
    if (missing) {
        fprintf(stderr, "e2e: the stack was not up when the scenario started (meters %s):",
                r.meters_online ? "online" : "not online");
        for (size_t h = 0; h < W->homes; h++)
            if (!r.agent_online[h] || !r.meter_read[h])
                fprintf(stderr, " %s%s%s", W->ids[h], r.agent_online[h] ? "" : " (agent)",
                        r.meter_read[h] ? "" : " (no reading)");
        fprintf(stderr, "; logs in %s/logs\n", W->dir);
        fail();
    }
}

static void collect_retained_results(void)
{
    bus_config bc = {.host = "127.0.0.1", .port = tst_broker_port(W->broker),
                     .client_id = "e2e-check", .community = COMMUNITY};
    bus_client *c = bus_new(&bc, on_result, NULL, NULL, NULL);
    assert_non_null(c);
    char filter[BUS_TOPIC_MAX];
    snprintf(filter, sizeof filter, "mgx/v1/%s/market/+/result", COMMUNITY);
    assert_int_equal(bus_subscribe(c, filter, 1), BUS_OK);
    assert_int_equal(bus_start(c), BUS_OK);
    int64_t until = real_ms() + 10000;
    size_t have = 0;
    while (real_ms() < until && have < W->intervals) {
        bus_loop(c, 100);
        have = 0;
        for (size_t k = 0; k < W->intervals; k++)
            have += W->seen[k] > 0;
    }
    bus_stop(c, 1000);
    bus_free(c);
}

/* ---- the controller's side ---- */

typedef struct {
    const mkt_participant_result *want; /* oracle outcomes, ascending by home */
    size_t n_want, next;
    size_t k;
    int bad;
} outcome_check;

static size_t home_index(const char *id)
{
    for (size_t h = 0; h < W->homes; h++)
        if (strcmp(W->ids[h], id) == 0)
            return h;
    return SIZE_MAX;
}

static int check_outcome(const char *participant, const mkt_participant_result *p, void *ctx)
{
    outcome_check *x = ctx;
    if (x->next >= x->n_want) {
        fprintf(stderr, "e2e: interval %zu: controller has an outcome for %s, oracle none\n",
                x->k, participant);
        x->bad++;
        return 0;
    }
    const mkt_participant_result *w = &x->want[x->next++];
    if (home_index(participant) + 1 != w->participant || p->side != w->side ||
        p->offered_wh != w->offered_wh || p->local_bought_wh != w->local_bought_wh ||
        p->local_sold_wh != w->local_sold_wh || p->grid_bought_wh != w->grid_bought_wh ||
        p->grid_sold_wh != w->grid_sold_wh || p->local_paid_uc != w->local_paid_uc ||
        p->local_received_uc != w->local_received_uc || p->grid_paid_uc != w->grid_paid_uc ||
        p->grid_received_uc != w->grid_received_uc || p->fee_paid_uc != w->fee_paid_uc) {
        fprintf(stderr,
                "e2e: interval %zu: %s: controller offered %lld sold %lld bought %lld paid %lld "
                "received %lld; oracle (%s) offered %lld sold %lld bought %lld paid %lld "
                "received %lld\n",
                x->k, participant, (long long)p->offered_wh, (long long)p->local_sold_wh,
                (long long)p->local_bought_wh, (long long)p->local_paid_uc,
                (long long)p->local_received_uc,
                W->ids[w->participant - 1 < W->homes ? w->participant - 1 : 0],
                (long long)w->offered_wh, (long long)w->local_sold_wh,
                (long long)w->local_bought_wh, (long long)w->local_paid_uc,
                (long long)w->local_received_uc);
        x->bad++;
    }
    return 0;
}

typedef struct {
    const mkt_trade *want;
    size_t n_want, next;
    size_t k;
    int bad;
} trade_check;

static int check_trade(const ctl_trade_row *t, void *ctx)
{
    trade_check *x = ctx;
    const mkt_trade *w = x->next < x->n_want ? &x->want[x->next] : NULL;
    x->next++;
    if (!w || home_index(t->seller) + 1 != w->seller || home_index(t->buyer) + 1 != w->buyer ||
        t->t.energy_wh != w->energy_wh || t->t.price_uc_per_kwh != w->price_uc_per_kwh ||
        t->t.amount_uc != w->amount_uc || t->t.fee_uc != w->fee_uc) {
        fprintf(stderr, "e2e: interval %zu: trade %zu %s -> %s %lld Wh differs from the oracle\n",
                x->k, x->next - 1, t->seller, t->buyer, (long long)t->t.energy_wh);
        x->bad++;
    }
    return 0;
}

/* ---- the run ---- */

static int setup(void **state)
{
    (void)state;
    W = calloc(1, sizeof *W);
    assert_non_null(W);
    const char *bin = getenv("MGX_BIN");
    if (!bin) {
        fprintf(stderr, "e2e: MGX_BIN is not set\n");
        return -1;
    }
    snprintf(W->bin, sizeof W->bin, "%s", bin);
    W->dir = tst_tmpdir("e2e");
    W->broker = tst_broker_start(NULL);
    if (!W->dir || !W->broker)
        return -1;
    char p[4096];
    path(p, sizeof p, "logs");
    mkdir(p, 0755);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_all();
    tst_broker_free(W->broker);
    if (getenv("MGX_E2E_KEEP"))
        fprintf(stderr, "e2e: kept %s\n", W->dir);
    else
        tst_rmtree(W->dir);
    free(W->dir);
    free(W);
    return 0;
}

static void make_homes(char *db)
{
    for (size_t h = 0; h < W->homes; h++) {
        char *id = W->ids[h];
        const sim_group *g = group_of(h);
        char key[4096], pub[4096], ini[4096], outbox[4096];
        path(key, sizeof key, "%s", id);
        path(pub, sizeof pub, "%s.pub", id);
        run("mgx keygen", (char *const[]){W->bin, "keygen", "--out", key, NULL});
        run("mgx participant add",
            (char *const[]){W->bin, "participant", "add", "--db", db, "--id", id, "--pubkey",
                            pub, "--meter", id, NULL});
        path(key, sizeof key, "%s.key", id);
        path(ini, sizeof ini, "%s.ini", id);
        path(outbox, sizeof outbox, "%s-outbox.db", id);
        write_file(ini,
                   "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = %s\n\n"
                   "[agent]\nparticipant = %s\nkey_file = %s\noutbox = %s\n"
                   "strategy = %s\nmarkup = %.17g\n"
                   "feed_in_uc_per_kwh = %lld\nretail_uc_per_kwh = %lld\n"
                   "network_fee_uc_per_kwh = %lld\ninterval_s = 900\ngate_closure_s = %d\n"
                   "max_reading_gap_s = 600\nforecast_lag = %u\ntiming = %s\n",
                   tst_broker_port(W->broker), COMMUNITY, id, key, outbox,
                   sim_strategy_name(g->agent), g->markup,
                   (long long)W->sc.feed_in_uc_per_kwh, (long long)W->sc.retail_uc_per_kwh,
                   (long long)W->sc.network_fee_uc_per_kwh, GATE_S, W->sc.forecast_lag,
                   W->ex_post ? "ex_post" : "ex_ante");
    }
}

/* Waits for the sim's meter config and writes the meter daemon's (with [bus] and [outbox]). */
static void write_meter_config(const char *sim_conf, const char *conf)
{
    int64_t until = real_ms() + 15000;
    struct stat st;
    while (stat(sim_conf, &st) != 0) {
        check_alive();
        assert_true(real_ms() < until);
        tst_sleep_ms(50);
    }
    FILE *in = fopen(sim_conf, "r");
    assert_non_null(in);
    char outbox[4096];
    path(outbox, sizeof outbox, "meters-outbox.db");
    FILE *out = fopen(conf, "w");
    assert_non_null(out);
    fprintf(out, "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = %s\nclient_id = meters\n\n"
                 "[outbox]\npath = %s\n\n",
            tst_broker_port(W->broker), COMMUNITY, outbox);
    /* Only the [meter] sections: the sim's own [bus] header is replaced by the one above. */
    char line[1024];
    bool meters = false;
    while (fgets(line, sizeof line, in)) {
        meters = meters || strncmp(line, "[meter ", 7) == 0;
        if (meters)
            fputs(line, out);
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = INT64_MIN;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return v;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Waits until the controller has cleared the day's last interval and the simulator is done. */
static void wait_for_the_day(const char *db_path, const char *sim_summary, int64_t deadline)
{
    int64_t last = W->first_interval + (int64_t)W->intervals - 1;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT max(interval_id) FROM intervals WHERE state = 1");
    for (;;) {
        check_alive();
        sqlite3 *db = NULL;
        int64_t cleared = INT64_MIN;
        if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
            sqlite3_busy_timeout(db, 2000);
            cleared = db_int(db, sql);
        }
        sqlite3_close(db);
        struct stat st;
        if (cleared >= last && stat(sim_summary, &st) == 0)
            return;
        if (real_ms() > deadline) {
            fprintf(stderr, "e2e: the day did not finish in time (last cleared %lld, want %lld)\n",
                    (long long)cleared, (long long)last);
            fail();
        }
        tst_sleep_ms(250);
    }
}

static void print_rejections(sqlite3 *db)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT participant, interval_id, reason, received_ms "
                                        "FROM orders WHERE status = 0 LIMIT 10",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        fprintf(stderr, "e2e: order of %s for interval %lld rejected: %s\n",
                (const char *)sqlite3_column_text(st, 0), (long long)sqlite3_column_int64(st, 1),
                (const char *)sqlite3_column_text(st, 2));
    sqlite3_finalize(st);
}

/* The shipped e2e scenario with timing = ex_post in its [market], written to the run's folder. */
static void scenario_ex_post(char *out, size_t cap)
{
    char src[4096];
    snprintf(src, sizeof src, "%s/tests/e2e/community-20.ini", MGX_SOURCE_DIR);
    path(out, cap, "community-20-ex-post.ini");
    FILE *in = fopen(src, "r"), *o = fopen(out, "w");
    assert_non_null(in);
    assert_non_null(o);
    char line[1024];
    while (fgets(line, sizeof line, in)) {
        fputs(line, o);
        if (strcmp(line, "[market]\n") == 0)
            fputs("timing = ex_post\n", o);
    }
    fclose(in);
    assert_int_equal(fclose(o), 0);
}

static void run_day(int ex_post)
{
    char scenario[4096], db[4096], conf[4096], sim_out[4096], sim_conf[4096], meter_conf[4096];
    W->ex_post = ex_post;
    if (ex_post)
        scenario_ex_post(scenario, sizeof scenario);
    else
        snprintf(scenario, sizeof scenario, "%s/tests/e2e/community-20.ini", MGX_SOURCE_DIR);
    char err[512];
    assert_int_equal(sim_scenario_load(scenario, &W->sc, err, sizeof err), SIM_OK);
    assert_int_equal(W->sc.timing, ex_post ? MKT_EX_POST : MKT_EX_ANTE);
    W->homes = sim_scenario_homes(&W->sc);
    W->intervals = sim_intervals(&W->sc);
    assert_true(W->homes <= MAX_HOMES && W->intervals <= MAX_INTERVALS);
    for (size_t h = 0; h < W->homes; h++) {
        sim_home_name(&W->sc, h, W->ids[h], sizeof W->ids[h]);
        /* the numbering argument in the header: ids sort like the file order */
        assert_true(h == 0 || strcmp(W->ids[h - 1], W->ids[h]) < 0);
    }
    int64_t start_utc = sim_interval_start_utc(&W->sc, 0);
    assert_int_equal(start_utc % 900, 0);
    W->first_interval = start_utc / 900;
    const char *env = getenv("MGX_E2E_SPEED");
    long speed = env ? strtol(env, NULL, 10) : DEFAULT_SPEED;
    assert_true(speed >= 60 && speed <= 3600);

    path(db, sizeof db, "controller.db");
    make_homes(db);
    path(conf, sizeof conf, "controller.ini");
    write_file(conf,
               "[bus]\nhost = 127.0.0.1\nport = %d\nclient_id = controller\n\n"
               "[controller]\ncommunity = %s\ndb = %s\ninterval_s = 900\ngate_closure_s = %d\n"
               "mechanism = %s\nfeed_in_uc_per_kwh = %lld\nretail_uc_per_kwh = %lld\n"
               "network_fee_uc_per_kwh = %lld\n%s",
               tst_broker_port(W->broker), COMMUNITY, db, GATE_S,
               mkt_mechanism_name(W->sc.mechanism), (long long)W->sc.feed_in_uc_per_kwh,
               (long long)W->sc.retail_uc_per_kwh, (long long)W->sc.network_fee_uc_per_kwh,
               /* ex_post: cleared 3600 simulated s (2.5 real s at 1440x) after each interval's
                * end, on readings at most 600 s apart (the agents' setting) */
               ex_post ? "timing = ex_post\nsettlement_grace_s = 3600\nreading_max_gap_s = 600\n"
                       : "");

    /* the shared clock: the scenario's first instant STARTUP_S real seconds from now, by
     * when the whole stack must be up (wait_for_the_stack) */
    int64_t anchor_s = real_ms() / 1000 + STARTUP_S;
    char speed_s[32], anchor[64], start_ms[32];
    snprintf(speed_s, sizeof speed_s, "%ld", speed);
    snprintf(anchor, sizeof anchor, "%lld:%lld", (long long)anchor_s, (long long)start_utc);
    snprintf(start_ms, sizeof start_ms, "%lld", (long long)anchor_s * 1000);
    char log[4096];
    char *bin = W->bin;

    path(log, sizeof log, "logs/controller.log");
    spawn("controller", log,
          (char *const[]){bin, "controller", conf, "--clock-speed", speed_s, "--clock-anchor",
                          anchor, NULL});
    path(sim_out, sizeof sim_out, "sim");
    path(sim_conf, sizeof sim_conf, "meters-sim.ini");
    path(log, sizeof log, "logs/sim.log");
    spawn("sim", log,
          (char *const[]){bin, "sim", scenario, "--out", sim_out, "--no-plots",
                          "--serve-modbus", "127.0.0.1:0", "--clock-speed", speed_s,
                          "--clock-start", start_ms, "--meter-config", sim_conf, "--meter-hold",
                          "300", NULL});
    path(meter_conf, sizeof meter_conf, "meters.ini");
    write_meter_config(sim_conf, meter_conf);
    path(log, sizeof log, "logs/meter.log");
    spawn("meter", log,
          (char *const[]){bin, "meter", meter_conf, "--clock-speed", speed_s, "--clock-anchor",
                          anchor, NULL});
    for (size_t h = 0; h < W->homes; h++) {
        char ini[4096], name[48];
        path(ini, sizeof ini, "%s.ini", W->ids[h]);
        path(log, sizeof log, "logs/agent-%s.log", W->ids[h]);
        snprintf(name, sizeof name, "agent %s", W->ids[h]);
        spawn(name, log,
              (char *const[]){bin, "agent", ini, "--clock-speed", speed_s, "--clock-anchor",
                              anchor, NULL});
    }

    wait_for_the_stack(anchor_s * 1000);

    /* meanwhile, the in-process simulator on the same scenario and seed */
    sim_hooks hooks = {.on_flow = on_flow};
    sim_result *res = NULL;
    assert_int_equal(sim_run(&W->sc, NULL, W->sc.seed, &hooks, &res, err, sizeof err), SIM_OK);
    size_t n_rows;
    const sim_interval_row *rows = sim_result_intervals(res, &n_rows);
    assert_int_equal(n_rows, W->intervals);

    int64_t day_ms = 86400 * 1000 / speed;
    char summary[4096];
    path(summary, sizeof summary, "sim/summary.json");
    wait_for_the_day(db, summary, anchor_s * 1000 + day_ms + 30000);
    stop_all(); /* the broker stays up for the retained results */
    collect_retained_results();

    /* the controller's database */
    ctl_store *store = NULL;
    ctl_store_identity ident = {COMMUNITY, 900, 0};
    assert_int_equal(ctl_store_open(db, &ident, &store, err, sizeof err), CTL_ST_OK);
    sqlite3 *raw = NULL; /* a reader of its own: the store hands out no raw connection */
    assert_int_equal(sqlite3_open_v2(db, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int64_t rejected = db_int(raw, "SELECT count(*) FROM orders WHERE status = 0");
    if (rejected != 0)
        print_rejections(raw);
    sqlite3_close(raw);
    assert_int_equal(rejected, 0);

    mkt_clearing *c = mkt_clearing_new(W->homes);
    assert_non_null(c);
    mkt_order book[MAX_HOMES];
    mkt_params p = tariffs();
    int bad = 0;
    size_t traded_intervals = 0, orders_total = 0;
    int64_t matched_total = 0;
    size_t withheld_intervals = 0;
    for (size_t k = 0; k < W->intervals; k++) {
        size_t n = ex_post ? oracle_book_ex_post(k, book) : oracle_book(k, book);
        mkt_error_at at;
        p.interval_id = W->first_interval + (int64_t)k; /* as the controller numbers it */
        assert_int_equal(mkt_clear(c, &p, book, n, &at), MKT_OK);
        const mkt_summary *want = mkt_clearing_summary(c);
        size_t np, nt;
        const mkt_participant_result *parts = mkt_clearing_participants(c, &np);
        const mkt_trade *trades = mkt_clearing_trades(c, &nt);
        orders_total += n;
        matched_total += want->matched_wh;
        traded_intervals += want->matched_wh > 0;

        /* (2) the in-process simulator agrees with the oracle */
        int64_t want_price = want->matched_wh ? want->clearing_price_uc_per_kwh : -1;
        assert_int_equal(rows[k].local_traded_wh, want->matched_wh);
        assert_int_equal(rows[k].price_uc_per_kwh, want_price);
        for (size_t h = 0, i = 0; h < W->homes; h++) {
            int64_t sold = 0, bought = 0;
            if (i < np && parts[i].participant == h + 1) {
                sold = parts[i].local_sold_wh;
                bought = parts[i].local_bought_wh;
                i++;
            }
            assert_int_equal(W->flows[k][h].sold_wh, sold);
            assert_int_equal(W->flows[k][h].bought_wh, bought);
        }

        /* (3) the controller agrees with both */
        int64_t id = W->first_interval + (int64_t)k;
        ctl_interval_result r;
        int found = 0;
        assert_int_equal(ctl_store_result(store, id, &r, &found), CTL_ST_OK);
        if (!found) {
            fprintf(stderr, "e2e: interval %zu (%lld) was not cleared\n", k, (long long)id);
            bad++;
            continue;
        }
        const mkt_summary *got = &r.summary;
        if (r.n_orders != n || r.n_trades != nt || got->matched_wh != want->matched_wh ||
            got->has_price != want->has_price ||
            (want->has_price && got->clearing_price_uc_per_kwh != want->clearing_price_uc_per_kwh) ||
            got->local_value_uc != want->local_value_uc || got->fees_uc != want->fees_uc ||
            got->grid_bought_wh != want->grid_bought_wh ||
            got->grid_sold_wh != want->grid_sold_wh || r.error[0]) {
            fprintf(stderr,
                    "e2e: interval %zu: controller %zu orders %zu trades %lld Wh at %lld; "
                    "in-process %zu orders %zu trades %lld Wh at %lld\n",
                    k, r.n_orders, r.n_trades, (long long)got->matched_wh,
                    (long long)got->clearing_price_uc_per_kwh, n, nt,
                    (long long)want->matched_wh, (long long)want->clearing_price_uc_per_kwh);
            bad++;
        }
        outcome_check oc = {parts, np, 0, k, 0};
        assert_int_equal(ctl_store_outcomes(store, id, check_outcome, &oc), CTL_ST_OK);
        if (oc.next != np) {
            fprintf(stderr, "e2e: interval %zu: %zu outcomes, oracle %zu\n", k, oc.next, np);
            oc.bad++;
        }
        trade_check tc = {trades, nt, 0, k, 0};
        assert_int_equal(ctl_store_trades(store, id, check_trade, &tc), CTL_ST_OK);
        bad += oc.bad + tc.bad + (tc.next != nt);

        /* the retained result on the bus: matched_wh as the oracle's, or null exactly when
         * fewer than the default minimum group of homes sold or bought (issue 19) */
        ctl_result_groups g = {0, 0, 0, 0};
        for (size_t i = 0; i < np; i++)
            ctl_result_groups_add(&g, &parts[i]);
        int withhold =
            (ctl_result_withheld(&g, CTL_MIN_GROUP_SIZE_DEFAULT) & CTL_WITHHOLD_LOCAL) != 0;
        withheld_intervals += (size_t)withhold;
        if (W->seen[k] == 0 || W->bus_withheld[k] != withhold ||
            (!withhold && W->bus_matched[k] != want->matched_wh) ||
            W->bus_price[k] != (want->has_price ? want->clearing_price_uc_per_kwh : -1)) {
            fprintf(stderr, "e2e: interval %zu: retained result %s (%lld Wh at %lld)\n", k,
                    W->seen[k] ? "differs" : "missing", (long long)W->bus_matched[k],
                    (long long)W->bus_price[k]);
            bad++;
        }
    }
    /* a day that traded nothing would prove little */
    fprintf(stderr,
            "e2e: %s: %zu intervals compared at %ldx: %zu orders, %zu intervals with local trades "
            "(%zu with the local figures withheld from the public result), %lld Wh matched; %d "
            "differences\n",
            ex_post ? "ex_post" : "ex_ante", W->intervals, speed, orders_total, traded_intervals,
            withheld_intervals,
            (long long)matched_total, bad);
    assert_true(traded_intervals >= 20);
    assert_true(orders_total >= W->homes * (W->intervals - W->sc.forecast_lag) * 9 / 10);
    mkt_clearing_free(c);
    ctl_store_free(store);
    sim_result_free(res);
    assert_int_equal(bad, 0);
}

static void test_twenty_homes_one_day(void **state)
{
    (void)state;
    run_day(0);
}

/* The same day with timing = ex_post: homes state standing preferences, the controller clears
 * each interval on the metered energy after its grace, and the simulator clears the same
 * metered nets in process: for every interval, oracle, simulator and controller agree. */
static void test_twenty_homes_one_day_ex_post(void **state)
{
    (void)state;
    run_day(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_twenty_homes_one_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twenty_homes_one_day_ex_post, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
