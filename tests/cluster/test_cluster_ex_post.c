/*
 * A replicated controller clearing ex post, with witnesses (docs/cluster.md, docs/witness.md):
 * three `mgx controller` processes with `timing = ex_post`, settlement and `witness_keys`, a
 * real mosquitto broker at clock speed 3600 (a quarter hour every 250 ms), and a test client
 * playing 8 homes with meters. Every home sends a reading every 2 simulated minutes (the last
 * half hour again every second, as meters resend what a dead leader may have taken with it)
 * and a new signed standing preference every 1.5 s or so, resent until it holds a receipt. Two
 * witnesses (`mgx witness`, re-clearing every ex_post block from the stored readings and signed
 * preferences) follow the ledgers of nodes 1 and 2 and publish their cosigned checkpoints on the
 * bus. The leader is killed with SIGKILL at random moments, MGX_CLUSTER_KILLS times (5 by
 * default), during the intake, clearing and settlement that go on all the time.
 *
 * Then the homes go quiet, the witnesses stop, and the three nodes are frozen (SIGSTOP) at a
 * moment when every node's database has applied the same log index; each database is copied
 * (SQLite backup) and the nodes resumed and stopped cleanly. On the copies:
 *  - every table is the same on every node (all but `intervals.published` and the ledger's
 *    `published_height`, which are what this node's own bus acknowledged), the ledger byte for
 *    byte, the witnesses' cosignatures included;
 *  - every interval from the first to the last cleared is cleared once, with timing ex_post;
 *    every interval from the first to the last settled has exactly one block;
 *  - every preference the homes hold an "accepted" receipt for is stored on every node;
 *  - the market traded (homes' preferences met);
 *  - `mgx ledger verify` passes on each; both witnesses cosign the copied ledger once more
 *    (their state is what they cosigned while following the cluster, so that is an append-only
 *    extension of it, re-cleared), and `mgx ledger verify` requiring both witnesses passes on
 *    each copy, also with the last `ledger/witnessed` note the cluster published;
 *  - every cosignature collected went through the log: both witnesses' lines are in every
 *    node's `ledger_cosignature`, and a `ledger/witnessed` note with both was published after
 *    the last kill; no note was published twice (a new leader does not publish again what the
 *    broker holds).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "bus/bus.h"
#include "cluster_nodes.h"
#include "common/interval.h"
#include "common/wall_clock.h"
#include "db/store.h"
#include "files.h"
#include "homes.h"
#include "orders/pref_msg.h"
#include "shell.h"

#define HOMES       8
#define NODES       3
#define WITNESSES   2
#define COMMUNITY   "expostville"
#define GRACE_S     900
#define DEADLINE_MS 120000
#define NOTES_MAX   4096

typedef struct {
    char participant[CTL_ID_MAX + 1];
    uint8_t nonce[CTL_ORDER_NONCE_BYTES];
} accepted;

static struct {
    tst_home homes[HOMES];
    ctl_pref_msg pref[HOMES];
    int has_pref[HOMES];
    int64_t pref_sent_ms[HOMES], pref_done_ms[HOMES];
    accepted acc[4096];
    size_t n_acc, late;
    /* the ledger/witnessed notes seen: a hash of each, how often each came */
    uint64_t note_hash[NOTES_MAX];
    size_t n_notes, dup_notes, notes_seen;
    char last_note[4096];
    int last_note_witnesses;
    int64_t last_note_ms;
} W;

static tst_cluster_node N[NODES];
static pid_t wpid[WITNESSES];

static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211u;
    return h;
}

static void on_witnessed(const bus_message *m)
{
    if (m->len == 0 || m->len >= sizeof W.last_note)
        return;
    W.notes_seen++;
    uint64_t h = fnv(m->payload, m->len);
    for (size_t i = 0; i < W.n_notes; i++)
        if (W.note_hash[i] == h) {
            /* the broker hands the retained note again when this client reconnects: only a
             * new publication of the same note is one too many */
            if (m->retain)
                return;
            W.dup_notes++;
            fprintf(stderr, "ledger/witnessed published again (%zu bytes)\n", m->len);
            return;
        }
    assert_true(W.n_notes < NOTES_MAX);
    W.note_hash[W.n_notes++] = h;
    memcpy(W.last_note, m->payload, m->len);
    W.last_note[m->len] = 0;
    int k = 0;
    for (const char *p = W.last_note; (p = strstr(p, "\n\xe2\x80\x94 witness.example/")); p++)
        k++;
    W.last_note_witnesses = k;
    W.last_note_ms = ctl_wall_ms();
}

static void on_msg(void *user, const bus_message *m)
{
    (void)user;
    char community[BUS_ID_MAX], kind[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    if (bus_topic_parse(m->topic, community, kind, id, leaf) != BUS_OK)
        return;
    if (strcmp(kind, "ledger") == 0 && strcmp(id, "witnessed") == 0) {
        on_witnessed(m);
        return;
    }
    ctl_receipt r;
    if (tst_receipt_parse(m, &r) != 1)
        return;
    for (int h = 0; h < HOMES; h++) {
        if (!W.has_pref[h] || memcmp(r.nonce, W.pref[h].nonce, sizeof r.nonce) != 0)
            continue;
        W.has_pref[h] = 0;
        W.pref_done_ms[h] = ctl_wall_ms();
        if (ctl_reason_is_accept(r.reason)) {
            assert_true(W.n_acc < 4096);
            accepted *a = &W.acc[W.n_acc++];
            snprintf(a->participant, sizeof a->participant, "%s", r.participant);
            memcpy(a->nonce, r.nonce, sizeof a->nonce);
        } else {
            /* late (its gate closed while no node led) is the only expected refusal; the home
             * makes a new one */
            W.late++;
            if (!(r.reason == CTL_R_GATE_CLOSED || r.reason == CTL_R_STALE_INTERVAL ||
                  r.reason == CTL_R_EXPIRED))
                fail_msg("preference of %s refused: %s (%s)", r.participant,
                         ctl_reason_name(r.reason), r.detail);
        }
    }
}

/* Home h's new standing preference from interval v on: sellers (even homes) offer their export
 * at 80000-139999 uc/kWh, buyers (odd) bid 150000-219999 for their import, so they trade. */
static void make_pref(int h, int64_t v, int64_t sim_ms, unsigned *seed)
{
    mkt_preference p;
    memset(&p, 0, sizeof p);
    int64_t price = h % 2 ? 150000 + rand_r(seed) % 70000 : 80000 + rand_r(seed) % 60000;
    if (h % 2) {
        p.n_buy_steps = 1;
        p.buy[0] = (mkt_step){1000000, price};
    } else {
        p.n_sell_steps = 1;
        p.sell[0] = (mkt_step){1000000, price};
    }
    tst_home_make_pref(&W.pref[h], &W.homes[h], COMMUNITY, v, sim_ms, &p);
    W.has_pref[h] = 1;
    W.pref_sent_ms[h] = 0;
}

static void send_pref(bus_client *c, int h)
{
    tst_home_send_pref(c, COMMUNITY, &W.homes[h], &W.pref[h]);
    W.pref_sent_ms[h] = ctl_wall_ms();
}

/* Home h's meter at ts_s: counters rising with time, sellers (even) export, buyers import. */
static void reading_at(int h, int64_t ts_s, mtr_sample *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->meter_id, sizeof s->meter_id, "m-home-%d", h);
    int64_t min = ts_s / 60;
    s->ts_ms = ts_s * 1000;
    s->import_wh = 100000 * h + (h % 2 ? 20 : 2) * min;
    s->export_wh = 50000 * h + (h % 2 ? 1 : 15) * min;
    s->power_w = (h % 2 ? 19 : -13) * 60;
    s->soc_permille = -1;
}

/* Sends what is due of every home's readings (the last half hour again when replay). */
static void send_readings(bus_client *c, int64_t sim_ms, int replay)
{
    int64_t sim_s = sim_ms / 1000;
    for (int h = 0; h < HOMES && bus_connected(c); h++) {
        if (!W.homes[h].next_reading_s)
            W.homes[h].next_reading_s = sim_s / 120 * 120;
        int64_t from = replay ? W.homes[h].next_reading_s - 1800 : W.homes[h].next_reading_s;
        for (int64_t ts = from / 120 * 120; ts <= sim_s; ts += 120) {
            mtr_sample r;
            reading_at(h, ts, &r);
            tst_send_reading(c, COMMUNITY, &r);
        }
        if (W.homes[h].next_reading_s <= sim_s)
            W.homes[h].next_reading_s = (sim_s / 120 + 1) * 120;
    }
}

static pid_t witness_start(const char *bin, const char *ini, const char *log)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        f = freopen(log, "a", stdout);
        (void)f;
        execl(bin, bin, "witness", ini, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Writes witness w's config: its key, state and out in dir, following ledger; on the bus at
 * port (0: no [bus]). */
static void witness_config(const char *path, const char *dir, int w, const char *ledger, int port)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "[witness]\nname = witness.example/w%d\nkey_file = %s/w%d.key\nledger = %s\n"
            "log_key_file = %s/community.vkey\nstate = %s/w%d.state\nout = %s/w%d.cosigned\n"
            "poll_s = 1\nreclear = pay-as-clear\nreading_max_gap_s = 300\n"
            "meter_max_power_w = 100000\n",
            w, dir, w, ledger, dir, dir, w, dir, w);
    if (port)
        fprintf(f, "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = %s\nclient_id = witness-w%d\n",
                port, COMMUNITY, w);
    fclose(f);
}

static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    int64_t v = tst_db_int(db, sql, 0);
    sqlite3_close(db);
    return v;
}

/* Freezes the three nodes at a moment when every database has applied the same log index and
 * copies each database to copy[i]; the nodes run on afterwards. */
static void snapshot(char copy[NODES][TST_CTL_PATH_MAX + 16], bus_client *c)
{
    int64_t end = ctl_wall_ms() + DEADLINE_MS;
    for (int tries = 1;; tries++) {
        if (ctl_wall_ms() > end)
            fail_msg("no moment with the same applied index on every node");
        bus_loop(c, 10 + tries % 50);
        if (!tst_cluster_same(N, NODES))
            continue;
        for (int i = 0; i < NODES; i++)
            kill(N[i].pid, SIGSTOP);
        int64_t a[NODES];
        for (int i = 0; i < NODES; i++)
            a[i] = db_int(N[i].db, "SELECT applied_index FROM cluster_state WHERE ?1 = ?1");
        int same = a[0] == a[1] && a[1] == a[2];
        /* a frozen node may hold a lock the copy waits for (a checkpoint): the copy is
         * checked, and the freeze tried again if it is not at that index */
        for (int i = 0; same && i < NODES; i++)
            same = tst_sh("rm -f '%s' && sqlite3 '%s' '.timeout 5000' \".backup '%s'\" && "
                          "test \"$(sqlite3 '%s' 'SELECT applied_index FROM cluster_state')\" = "
                          "%lld",
                          copy[i], N[i].db, copy[i], copy[i], (long long)a[0]) == 0;
        for (int i = 0; i < NODES; i++)
            kill(N[i].pid, SIGCONT);
        if (same) {
            fprintf(stderr, "snapshot at applied index %lld on every node (try %d)\n",
                    (long long)a[0], tries);
            return;
        }
    }
}

static void cluster_ex_post(void **state)
{
    (void)state;
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    assert_true(sodium_init() >= 0);
    const char *env = getenv("MGX_CLUSTER_KILLS");
    int kills = env ? atoi(env) : 5;
    if (kills < 1)
        kills = 1;
    memset(&W, 0, sizeof W);
    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char *dir = tst_tmpdir("cluster-ex-post");
    assert_non_null(dir);
    char anchor[64];
    ctl_clock clock = tst_sim_clock(anchor, sizeof anchor);
    const ctl_interval_rules rules = {900, 300, 4};
    int port[NODES];
    for (int i = 0; i < NODES; i++)
        port[i] = tst_free_port();
    assert_int_equal(tst_sh("cd '%s' && '%s' ledger keygen cluster.example/mgx --out "
                            "community.skey > community.vkey && '%s' keygen --out w1 > /dev/null "
                            "&& '%s' keygen --out w2 > /dev/null",
                            dir, bin, bin, bin),
                     0);
    char extra[2 * TST_CTL_PATH_MAX + 64];
    snprintf(extra, sizeof extra, "timing = ex_post\nwitness_keys = %s/w1.pub, %s/w2.pub\n", dir,
             dir);
    tst_cluster_write_configs(N, NODES, dir, tst_broker_port(br), port, COMMUNITY, GRACE_S, extra);
    /* one database made and registered, copied to every node (docs/cluster.md) */
    int64_t first = ctl_interval_first_open(ctl_clock_sim_ms(&clock, ctl_wall_ms()) / 1000, &rules);
    {
        ctl_store *s = NULL;
        ctl_store_identity id = {COMMUNITY, 900, first};
        char err[256];
        assert_int_equal(ctl_store_open(N[0].db, &id, &s, err, sizeof err), CTL_ST_OK);
        ctl_store_free(s);
    }
    tst_homes_register(W.homes, HOMES, 1, N[0].db, true);
    for (int i = 1; i < NODES; i++)
        assert_int_equal(tst_sh("cp '%s' '%s'", N[0].db, N[i].db), 0);
    for (int i = 0; i < NODES; i++)
        N[i].pid = tst_controller_start(bin, N[i].conf, anchor, N[i].log, NULL);
    /* the witnesses follow nodes 1 and 2 */
    char wini[WITNESSES][TST_CTL_PATH_MAX + 16], wlog[WITNESSES][TST_CTL_PATH_MAX + 16];
    for (int w = 0; w < WITNESSES; w++) {
        snprintf(wini[w], sizeof wini[w], "%s/w%d.ini", dir, w + 1);
        snprintf(wlog[w], sizeof wlog[w], "%s/w%d.log", dir, w + 1);
        witness_config(wini[w], dir, w + 1, N[w].db, tst_broker_port(br));
    }

    bus_client *c = tst_homes_connect(tst_broker_port(br), COMMUNITY, 0, on_msg);
    char topic[BUS_TOPIC_MAX];
    snprintf(topic, sizeof topic, "mgx/v1/%s/ledger/witnessed", COMMUNITY);
    assert_int_equal(bus_subscribe(c, topic, 1), BUS_OK);
    unsigned seed = 20261206;
    tst_cluster_killer kl;
    tst_cluster_killer_init(&kl, kills, seed, ctl_wall_ms());
    int64_t next_replay = 0, deadline = ctl_wall_ms() + DEADLINE_MS + (int64_t)kills * 3000;
    int kills_done = 0, witnesses_on = 0;
    long long cleared_at_kills = -1;
    int64_t kills_done_ms = 0;
    for (;;) {
        if (ctl_wall_ms() > deadline)
            fail_msg("the run did not finish: %d kills, %zu accepted preferences, %zu notes "
                     "(last with %d witnesses)",
                     kl.done, W.n_acc, W.n_notes, W.last_note_witnesses);
        bus_loop(c, 5);
        tst_cluster_check_alive(N, NODES);
        int64_t now_real = ctl_wall_ms();
        int64_t sim_ms = ctl_clock_sim_ms(&clock, now_real);
        /* the witnesses start once the first blocks are there (a witness on an empty ledger
         * just waits too, but this way its first look audits something) */
        if (!witnesses_on &&
            db_int(N[0].db, "SELECT count(*) FROM ledger_block WHERE ?1 = ?1") > 0) {
            for (int w = 0; w < WITNESSES; w++)
                wpid[w] = witness_start(bin, wini[w], wlog[w]);
            witnesses_on = 1;
        }
        int replay = now_real >= next_replay;
        if (replay)
            next_replay = now_real + 1000;
        send_readings(c, sim_ms, replay);
        /* 3 or 4 intervals ahead (the community takes 4): its gate 0.4-0.7 s of real time
         * away, so a failover or a loaded machine rarely makes it late */
        int64_t v = ctl_interval_first_open(sim_ms / 1000 + 100, &rules) + 2;
        for (int h = 0; h < HOMES && bus_connected(c); h++) {
            if (!W.has_pref[h] && now_real - W.pref_done_ms[h] > 1200 + (h * 97) % 600)
                make_pref(h, v, sim_ms, &seed);
            if (W.has_pref[h] && now_real - W.pref_sent_ms[h] > 150)
                send_pref(c, h);
        }
        if (!kills_done) {
            kills_done = tst_cluster_kill_step(&kl, N, NODES, bin, anchor, now_real);
            continue;
        }
        char role[32];
        long long a, cl;
        int l = tst_cluster_leader_of(N, NODES, -1);
        if (l < 0 || tst_cluster_read_status(&N[l], role, &a, &cl) != 0)
            continue;
        if (cleared_at_kills < 0) {
            cleared_at_kills = cl;
            kills_done_ms = now_real;
        }
        /* after the kills: 8 more intervals, and a witnessed note with both witnesses */
        if (cl >= cleared_at_kills + 8 && W.last_note_witnesses == WITNESSES &&
            W.last_note_ms > kills_done_ms)
            break;
    }
    /* quiet: the witnesses stop (so what they cosigned is no later than the snapshot), then
     * the nodes are copied at one applied index */
    for (int w = 0; w < WITNESSES; w++) {
        kill(wpid[w], SIGTERM);
        int ws;
        assert_int_equal(waitpid(wpid[w], &ws, 0), wpid[w]);
        wpid[w] = 0;
    }
    char copy[NODES][TST_CTL_PATH_MAX + 16];
    for (int i = 0; i < NODES; i++)
        snprintf(copy[i], sizeof copy[i], "%s/copy-%d.db", dir, i + 1);
    snapshot(copy, c);
    /* one leader, as every node's `mgx cluster status` says */
    const tst_cluster_node *all[NODES];
    for (int i = 0; i < NODES; i++)
        all[i] = &N[i];
    assert_int_equal(tst_cluster_leaders(bin, all, NODES, dir, 60000), 1);
    for (int i = 0; i < NODES; i++) {
        tst_controller_stop_log(N[i].pid, N[i].log);
        N[i].pid = 0;
    }

    /* every table the same on every node: the whole database as SQL text, with what the
     * node's own bus acknowledged (intervals.published, the ledger's published_height) left
     * out */
    char *ref = NULL;
    for (int i = 0; i < NODES; i++) {
        char out[TST_CTL_PATH_MAX + 32];
        snprintf(out, sizeof out, "%s/dump-%d.sql", dir, i + 1);
        assert_int_equal(tst_sh("sqlite3 '%s' \"UPDATE intervals SET published = 0; DELETE "
                                "FROM settle_state WHERE k = 'published_height'\" && sqlite3 "
                                "'%s' .dump > '%s'",
                                copy[i], copy[i], out),
                         0);
        char *t = tst_file_text(out);
        assert_non_null(t);
        if (!ref)
            ref = t;
        else {
            if (strcmp(ref, t) != 0)
                fail_msg("node %d's database differs from node 1's (diff %s/dump-1.sql "
                         "%s/dump-%d.sql)",
                         i + 1, dir, dir, i + 1);
            free(t);
        }
    }
    free(ref);
    /* the copies are equal: the checks of one hold for all */
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(copy[0], &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int64_t lo =
        tst_db_int(db, "SELECT min(interval_id) FROM intervals WHERE state = 1 AND ?1 = ?1", 0);
    int64_t hi =
        tst_db_int(db, "SELECT max(interval_id) FROM intervals WHERE state = 1 AND ?1 = ?1", 0);
    int64_t n = tst_db_int(db, "SELECT count(*) FROM intervals WHERE state = 1 AND ?1 = ?1", 0);
    int64_t open = tst_db_int(db,
                              "SELECT count(*) FROM intervals WHERE state <> 1 AND "
                              "interval_id < ?1",
                              hi);
    assert_int_equal(lo, first);
    assert_int_equal(n, hi - lo + 1);
    assert_int_equal(open, 0);
    assert_int_equal(tst_db_int(db,
                                "SELECT count(*) FROM interval_timing WHERE timing = "
                                "'ex_post' AND interval_id BETWEEN ?1 AND (SELECT "
                                "max(interval_id) FROM intervals WHERE state = 1)",
                                lo),
                     n);
    int64_t blocks = tst_db_int(db, "SELECT count(*) FROM ledger_block WHERE ?1 = ?1", 0);
    int64_t bdistinct =
        tst_db_int(db, "SELECT count(DISTINCT interval_id) FROM ledger_block WHERE ?1 = ?1", 0);
    int64_t blo = tst_db_int(db, "SELECT min(interval_id) FROM ledger_block WHERE ?1 = ?1", 0);
    int64_t bhi = tst_db_int(db, "SELECT max(interval_id) FROM ledger_block WHERE ?1 = ?1", 0);
    assert_true(blocks > 8);
    assert_int_equal(bdistinct, blocks);
    assert_int_equal(blo, first);
    assert_int_equal(bhi - blo + 1, blocks);
    int64_t trades = tst_db_int(db, "SELECT count(*) FROM trades WHERE ?1 = ?1", 0);
    int64_t prefs = tst_db_int(db, "SELECT count(*) FROM preferences WHERE ?1 = ?1", 0);
    int64_t cosigs = tst_db_int(db, "SELECT count(*) FROM ledger_cosignature WHERE ?1 = ?1", 0);
    int64_t cwit = tst_db_int(
        db, "SELECT count(DISTINCT witness_pk) FROM ledger_cosignature WHERE ?1 = ?1", 0);
    int64_t readings = tst_db_int(db, "SELECT count(*) FROM readings WHERE ?1 = ?1", 0);
    assert_true(trades > 0);
    assert_int_equal(cwit, WITNESSES);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM preferences WHERE participant = ?1 "
                                        "AND nonce = ?2",
                                        -1, &q, NULL),
                     SQLITE_OK);
    for (size_t k = 0; k < W.n_acc; k++) {
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, W.acc[k].participant, -1, SQLITE_STATIC);
        sqlite3_bind_blob(q, 2, W.acc[k].nonce, CTL_ORDER_NONCE_BYTES, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        if (sqlite3_column_int(q, 0) != 1)
            fail_msg("receipted preference %zu of %s is not stored", k, W.acc[k].participant);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);

    /* the ledgers: verify with the community key; the witnesses cosign the copy once more
     * (an extension of what they cosigned following the cluster) and verify requires both */
    char note[TST_CTL_PATH_MAX + 16];
    snprintf(note, sizeof note, "%s/witnessed.note", dir);
    FILE *f = fopen(note, "w");
    assert_non_null(f);
    fputs(W.last_note, f);
    fclose(f);
    for (int w = 0; w < WITNESSES; w++) {
        char ini[TST_CTL_PATH_MAX + 16];
        snprintf(ini, sizeof ini, "%s/w%d-final.ini", dir, w + 1);
        witness_config(ini, dir, w + 1, copy[0], 0);
        if (tst_sh("'%s' witness '%s' --once >> '%s' 2>&1", bin, ini, wlog[w]) != 0)
            fail_msg("witness %d refused the cluster's ledger (see %s)", w + 1, wlog[w]);
    }
    for (int i = 0; i < NODES; i++) {
        if (tst_sh("'%s' ledger verify '%s' --vkey-file '%s/community.vkey' > '%s/verify-%d.out' "
                   "2>&1",
                   bin, copy[i], dir, dir, i + 1) != 0)
            fail_msg("mgx ledger verify fails on node %d (see %s/verify-%d.out)", i + 1, dir,
                     i + 1);
        if (tst_sh("'%s' ledger verify '%s' --vkey-file '%s/community.vkey' --witness "
                   "'%s/w1.pub' --witness '%s/w2.pub' --cosigned '%s/w1.cosigned' --cosigned "
                   "'%s/w2.cosigned' --cosigned '%s' --witnesses-required 2 > "
                   "'%s/verify-w-%d.out' 2>&1",
                   bin, copy[i], dir, dir, dir, dir, dir, note, dir, i + 1) != 0)
            fail_msg("mgx ledger verify requiring 2 witnesses fails on node %d (see "
                     "%s/verify-w-%d.out)",
                     i + 1, dir, i + 1);
    }
    assert_int_equal(W.dup_notes, 0);
    int64_t p50, p99;
    tst_cluster_failover(&kl, &p50, &p99);
    fprintf(stderr,
            "ex_post cluster of 3 controllers: %d leader kills (kill -9), failover p50 %lld ms, "
            "p99 %lld ms; %lld intervals cleared ex_post once and %lld settled once, equal on "
            "every node; %lld trades, %lld readings, %zu preferences accepted (%lld stored), %zu "
            "refused as late; %lld cosignatures of %d witnesses on every node, %zu "
            "ledger/witnessed notes, none twice; verify with 2 witnesses passes on each node\n",
            kills, (long long)p50, (long long)p99, (long long)n, (long long)blocks,
            (long long)trades, (long long)readings, W.n_acc, (long long)prefs, W.late,
            (long long)cosigs, WITNESSES, W.n_notes);
    tst_cluster_killer_free(&kl);
    bus_stop(c, 500);
    bus_free(c);
    tst_homes_free(W.homes, HOMES);
    tst_broker_free(br);
    if (!getenv("MGX_KEEP"))
        tst_rmtree(dir);
    free(dir);
}

/* A failed run leaves no node or witness behind. */
static int teardown(void **state)
{
    (void)state;
    tst_cluster_kill_all(N, NODES);
    for (int w = 0; w < WITNESSES; w++)
        if (wpid[w] > 0) {
            kill(wpid[w], SIGKILL);
            waitpid(wpid[w], NULL, 0);
            wpid[w] = 0;
        }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(cluster_ex_post, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
