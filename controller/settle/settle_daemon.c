/*
 * Settlement in the controller daemon (see settle_daemon.h): which interval is due, settling it
 * through the ledger, publishing each block's statements and checkpoint, and handing committed
 * blocks to the Solana backend.
 */
#define _POSIX_C_SOURCE 200809L
#include "settle/settle_daemon.h"

#include "common/crash_point.h"
#include "common/interval.h"
#include "db/peer_trust.h"
#include "mgx/civil.h"
#include "settle/ledger_statement.h"
#include "settle/ledger_store.h"
#include "settle/settle_carry.h"
#include "settle/settle_interval.h"
#include "settle/settle_input.h"

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RETRY_INPUT_MS 60000 /* a refused interval is tried again this often */
#define RETRY_DB_MS 1000

struct ctl_settler {
    ctl_settler_config cfg;
    ctl_trust_rules trust; /* cfg.trust points here */
    ctl_store *store;
    ctl_db *db;
    ctl_ledger_key *key;
    ctl_settle_solana *sol;
    int64_t last_settled; /* interval id, or INT64_MIN */
    int64_t retry_at_ms;
    int64_t failing_interval; /* logged once per interval, not once per retry */
    /* publication: one block at a time */
    int64_t published_height; /* -1: none */
    int pub_active, pub_failed;
    unsigned pub_pending;
    uint64_t pub_height;
    /* Solana */
    int64_t solana_height;
    int64_t sol_retry_at_ms, sol_next_poll_ms;
    /* in a cluster (ctl_settler_solana_replicate): the leader's proposer, the block being
     * handed over (-1: none) and whether its transactions were proposed; the next block to
     * propose (those between solana_height and it are in the log, not yet applied), and when
     * solana_height last moved (seen_h) */
    ctl_settler_propose_fn propose;
    void *propose_ctx;
    int64_t sol_handing;
    int sol_add_proposed;
    int64_t sol_next, sol_seen_h, sol_progress_ms;
};

/* ---- settle_state: what was published and handed to Solana ---- */

static int state_get(ctl_db *db, const char *k, int64_t dflt, int64_t *v)
{
    sqlite3_stmt *q = NULL;
    if (ctl_db_prepare(db, "SELECT v FROM settle_state WHERE k = ?1", &q) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(q, 1, k, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : dflt;
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int state_put(ctl_db *db, const char *k, int64_t v)
{
    sqlite3_stmt *q = NULL;
    if (ctl_db_prepare(db, "INSERT OR REPLACE INTO settle_state(k, v) VALUES(?1, ?2)", &q) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(q, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, v);
    int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(q);
    return rc; /* autocommit: one statement is one transaction */
}

static int64_t last_block_interval(ctl_db *db)
{
    sqlite3_stmt *q = NULL;
    int64_t v = INT64_MIN;
    if (ctl_db_prepare(db, "SELECT max(interval_id) FROM ledger_block", &q) ==
            SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static int64_t pow10_i64(int64_t e)
{
    int64_t p = 1;
    while (e-- > 0)
        p *= 10;
    return p;
}

/* A secret key file must not be readable by group or others (like ssh and keys.c). */
static int key_file_private(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen, "%s: cannot read the settlement key", path);
        return -1;
    }
    if (sb.st_mode & 077) {
        snprintf(err, errlen, "%s: the settlement key is readable by others: chmod 600 it", path);
        return -1;
    }
    return 0;
}

int ctl_settler_new(const ctl_settler_config *c, ctl_store *s, ctl_settler **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (!c->key_path || !c->key_path[0] || c->interval_s <= 0 || c->grace_s < 0) {
        snprintf(err, errlen, "settlement: bad configuration");
        return -1;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot be initialised");
        return -1;
    }
    if (key_file_private(c->key_path, err, errlen) != 0)
        return -1;
    ctl_settler *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->cfg = *c;
    if (c->trust)
        st->trust = *c->trust;
    else
        ctl_trust_rules_default(&st->trust);
    st->cfg.trust = &st->trust;
    st->store = s;
    st->db = ctl_store_db(s);
    st->published_height = -1;
    st->sol_handing = -1;
    st->sol_next = -1;
    char msg[512] = "";
    st->key = ctl_ledger_key_load(c->key_path, msg, sizeof msg);
    if (!st->key) {
        snprintf(err, errlen, "%s", msg);
        goto fail;
    }
    /* the ledger and settle_state tables are the community database's (db/schema.c) */
    /* the ledger's key must be ours: refuse to start rather than fail every interval */
    char community[STL_COMMUNITY_MAX + 1], vkey[STL_VKEY_MAX], mine[STL_VKEY_MAX];
    if (stl_vkey_format(st->key->name, st->key->sk + 32, mine, sizeof mine) != STL_OK) {
        snprintf(err, errlen, "%s: bad key", c->key_path);
        goto fail;
    }
    if (ctl_ledger_meta(st->db, community, vkey, sizeof vkey) == CTL_LEDGER_OK &&
        strcmp(vkey, mine) != 0) {
        snprintf(err, errlen, "%s is not this ledger's key: the ledger is signed by %s",
                 c->key_path, vkey);
        goto fail;
    }
    st->last_settled = last_block_interval(st->db);
    if (state_get(st->db, "published_height", -1, &st->published_height) != 0 ||
        state_get(st->db, "solana_height", INT64_MIN, &st->solana_height) != 0) {
        snprintf(err, errlen, "settle_state: %s", ctl_db_errmsg(st->db));
        goto fail;
    }
    if (c->solana && c->solana->enabled) {
        if (ctl_settle_solana_new(c->solana, st->db, &st->sol, err, errlen) != 0)
            goto fail;
        if (c->solana->payment_decimals < 6)
            ctl_logf(
                st->cfg.log, CTL_LOG_WARN,
                "solana: the payment token has %d decimals, the ledger counts micro-units: each "
                "trade's payment goes on chain rounded down to a multiple of %lld uc, the rest "
                "stays with the buyer (docs/solana.md, Payment decimals)",
                (int)c->solana->payment_decimals,
                (long long)pow10_i64(6 - c->solana->payment_decimals));
        if (st->solana_height == INT64_MIN) {
            /* Solana newly configured: blocks settled before stay off chain */
            uint64_t head, size;
            st->solana_height =
                ctl_ledger_head(st->db, &head, &size) == CTL_LEDGER_OK ? (int64_t)head : -1;
            if (state_put(st->db, "solana_height", st->solana_height) != 0) {
                snprintf(err, errlen, "settle_state: %s", ctl_db_errmsg(st->db));
                goto fail;
            }
        }
    }
    *out = st;
    return 0;
fail:
    ctl_settler_free(st);
    return -1;
}

void ctl_settler_free(ctl_settler *st)
{
    if (!st)
        return;
    ctl_settle_solana_free(st->sol);
    ctl_ledger_key_free(st->key);
    free(st);
}

int64_t ctl_settler_last_settled(const ctl_settler *st)
{
    return st->last_settled;
}

int ctl_settler_solana_counts(ctl_settler *st, size_t counts[4])
{
    return st->sol && ctl_settle_solana_counts(st->sol, counts) == 0 ? 0 : -1;
}

/* ---- settling ---- */

/* The next interval to settle and whether it is due. */
static int next_due(ctl_settler *st, int64_t now_s, int64_t *id)
{
    int64_t first = ctl_store_first_interval(st->store), last_cleared;
    int64_t next = st->last_settled == INT64_MIN || st->last_settled < first
                       ? first
                       : st->last_settled + 1;
    if (ctl_store_last_cleared(st->store, &last_cleared) != CTL_ST_OK ||
        last_cleared == INT64_MIN || next > last_cleared)
        return 0;
    int64_t end = ctl_interval_start(next + 1, st->cfg.interval_s);
    if (now_s < end + st->cfg.grace_s)
        return 0;
    *id = next;
    return 1;
}

/* Layers 3 and 4: the interval's balance at the boundary, the homes the peers flagged, and
 * each checked home's row for its trust score (db/peer_trust.h). */
static void log_trust(ctl_settler *st, const ctl_settle_input *x, int64_t iv)
{
    const ctl_boundary_state *b = &x->boundary;
    if (b->checked)
        ctl_logf(st->cfg.log, b->balance.disputed ? CTL_LOG_WARN : CTL_LOG_INFO,
                 "interval %lld: boundary %s: boundary net %lld Wh (import %lld, export %lld), "
                 "homes net %lld Wh, residual %lld Wh, tolerance %lld Wh%s%zu home(s) held "
                 "(trust layer 3)",
                 (long long)iv, b->balance.disputed ? "DISPUTED" : "balanced",
                 (long long)b->balance.boundary_net_wh, (long long)b->import_wh,
                 (long long)b->export_wh, (long long)b->balance.homes_net_wh,
                 (long long)b->balance.residual_wh, (long long)b->balance.tolerance_wh,
                 b->balance.disputed ? "; homes without signed readings held: " : "; ",
                 b->balance.disputed ? b->balance.n_held : (size_t)0);
    else if (b->n_boundary > 0)
        ctl_logf(st->cfg.log, CTL_LOG_WARN, "interval %lld: boundary not checked: %s",
                 (long long)iv, b->unchecked_why);
    ctl_peer_check_row *rows = calloc(x->n_members ? x->n_members : 1, sizeof *rows);
    size_t n = 0;
    for (size_t i = 0; i < x->n_members; i++) {
        const ctl_settle_member *m = &x->members[i];
        if (m->peer.flagged)
            ctl_logf(st->cfg.log, CTL_LOG_WARN,
                     "interval %lld: %s exported %lld Wh (%lld Wh per kWp), its peers yielded "
                     "%lld Wh per kWp: more than the %lld Wh allowed, held (trust layer 4)",
                     (long long)iv, m->name, (long long)m->metered.export_wh,
                     (long long)m->peer.yield_wh_per_kwp,
                     (long long)m->peer.reference_wh_per_kwp, (long long)m->peer.allowed_wh);
        if (!rows || (!m->peer.checked && !m->disputed_held))
            continue;
        ctl_peer_check_row *w = &rows[n++];
        *w = (ctl_peer_check_row){.interval_id = iv,
                                  .peer_checked = m->peer.checked,
                                  .peer_flagged = m->peer.flagged,
                                  .disputed = m->disputed_held,
                                  .yield_wh_per_kwp = m->peer.yield_wh_per_kwp,
                                  .reference_wh_per_kwp = m->peer.reference_wh_per_kwp};
        snprintf(w->participant, sizeof w->participant, "%s", m->name);
    }
    if (!rows || ctl_peer_checks_put(st->db, rows, n) != CTL_DB_OK)
        ctl_logf(st->cfg.log, CTL_LOG_ERROR, "interval %lld: trust scores not recorded: %s",
                 (long long)iv, rows ? ctl_db_errmsg(st->db) : "out of memory");
    free(rows);
}

static void log_settled(ctl_settler *st, const ctl_settle_input *x, const ctl_ledger_result *r,
                        int64_t start_utc, int64_t ms)
{
    char start[24];
    mkt_format_time(start_utc, 0, start, sizeof start);
    const stl_totals *t = &r->block.totals;
    ctl_logf(st->cfg.log, CTL_LOG_INFO,
             "interval %lld (%s) settled: block %llu, %u trades, %lld of %lld Wh delivered, "
             "paid %lld uc, grid %lld/%lld Wh bought/sold, %u positions, %u held (%zu flagged, "
             "%zu missing), log size %llu, %lld ms",
             (long long)r->block.interval_id, start, (unsigned long long)r->block.height,
             t->n_trades, (long long)t->delivered_wh, (long long)t->contracted_wh,
             (long long)t->paid_uc, (long long)t->grid_bought_wh, (long long)t->grid_sold_wh,
             t->n_positions, t->n_held, x->n_flagged, x->n_missing,
             (unsigned long long)r->block.log_size, (long long)ms);
    log_trust(st, x, r->block.interval_id);
    for (size_t i = 0; i < x->n_members; i++) {
        const ctl_settle_member *m = &x->members[i];
        if (m->carried_from != INT64_MIN) {
            if (ctl_carry_put(st->db, r->block.interval_id, (int64_t)m->market_id, m->carried_from,
                              m->carried_import_wh) != 0)
                ctl_logf(st->cfg.log, CTL_LOG_ERROR, "interval %lld: carry of %s not recorded: %s",
                         (long long)r->block.interval_id, m->name, ctl_db_errmsg(st->db));
            ctl_logf(st->cfg.log, CTL_LOG_WARN,
                     "interval %lld: %s pays for %lld Wh of import carried from intervals "
                     "%lld..%lld, where it was held or silent (trust layer 6)",
                     (long long)r->block.interval_id, m->name, (long long)m->carried_import_wh,
                     (long long)m->carried_from, (long long)r->block.interval_id - 1);
        }
        if (m->metered.status == STM_GOOD || (!m->trades && m->metered.status == STM_MISSING))
            continue;
        char q[160] = "", where[CTL_PARTICIPANT_MAX + 200];
        if (m->metered.quality)
            mtr_quality_str(m->metered.quality, q, sizeof q);
        if (m->meter_id[0])
            snprintf(where, sizeof where, "meter %s%s%s", m->meter_id, q[0] ? ": " : "", q);
        else
            snprintf(where, sizeof where, "no meter in the registry");
        ctl_logf(st->cfg.log, CTL_LOG_WARN,
                 "interval %lld: %s held as %s (%s); its import is owed and carried to its next "
                 "good interval",
                 (long long)r->block.interval_id, m->name, stm_status_name(m->metered.status),
                 where);
    }
}

static int settle_one(ctl_settler *st, int64_t id, int64_t real_ms)
{
    ctl_interval_result r;
    int found = 0;
    char err[1024] = "";
    if (ctl_store_result(st->store, id, &r, &found) != CTL_ST_OK || !found) {
        ctl_logf(st->cfg.log, CTL_LOG_ERROR,
                 "interval %lld: cannot read its clearing (%s); retrying", (long long)id,
                 ctl_store_errmsg(st->store));
        st->retry_at_ms = real_ms + RETRY_DB_MS;
        return -2;
    }
    ctl_settle_input x;
    int rc = ctl_settle_input_build(st->store, &r, &st->cfg.rules, &st->trust, &x, err,
                                    sizeof err);
    if (rc != CTL_ST_OK) {
        ctl_logf(st->cfg.log, CTL_LOG_ERROR, "interval %lld: settlement input: %s; retrying",
                 (long long)id, err);
        st->retry_at_ms = real_ms + (rc == CTL_ST_E_INVAL ? RETRY_INPUT_MS : RETRY_DB_MS);
        return rc == CTL_ST_E_INVAL ? -1 : -2;
    }
    ctl_ledger_result res;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    x.in.credits_on = st->cfg.credit_min_tier >= 0;
    x.in.credit_min_tier = (uint8_t)(x.in.credits_on ? st->cfg.credit_min_tier : 0);
    rc = ctl_ledger_settle(st->db, &x.in, st->key, &res, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != CTL_LEDGER_OK) {
        int db = rc == CTL_LEDGER_E_DB || rc == CTL_LEDGER_E_NOMEM;
        if (st->failing_interval != id || db)
            ctl_logf(st->cfg.log, CTL_LOG_ERROR, "interval %lld not settled: %s; %s", (long long)id,
                     err,
                     db ? "retrying"
                        : "settlement stops here until it is resolved (retried "
                          "every minute)");
        st->failing_interval = id;
        st->retry_at_ms = real_ms + (db ? RETRY_DB_MS : RETRY_INPUT_MS);
        ctl_settle_input_free(&x);
        return db ? -2 : -1;
    }
    st->failing_interval = INT64_MIN;
    st->last_settled = id;
    int64_t ms = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (res.replayed)
        ctl_logf(st->cfg.log, CTL_LOG_INFO, "interval %lld was already settled (block %llu)",
                 (long long)id, (unsigned long long)res.block.height);
    else
        log_settled(st, &x, &res, r.start_utc, ms);
    ctl_settle_input_free(&x);
    return 0;
}

int ctl_settler_due(ctl_settler *st, int64_t now_s, int64_t real_ms, int64_t *id)
{
    return st && id && real_ms >= st->retry_at_ms && next_due(st, now_s, id);
}

int ctl_settler_settle(ctl_settler *st, int64_t id, int64_t real_ms)
{
    if (!st)
        return -2;
    if (st->last_settled != INT64_MIN && id <= st->last_settled)
        return 0; /* a SETTLE proposed again by a new leader */
    return settle_one(st, id, real_ms);
}

void ctl_settler_reload(ctl_settler *st)
{
    if (!st)
        return;
    st->last_settled = last_block_interval(st->db);
    st->failing_interval = INT64_MIN;
    st->retry_at_ms = 0;
    if (state_get(st->db, "solana_height", st->solana_height, &st->solana_height) != 0)
        ctl_logf(st->cfg.log, CTL_LOG_ERROR, "settle_state: %s", ctl_db_errmsg(st->db));
    st->sol_next = -1;
}

size_t ctl_settler_run(ctl_settler *st, int64_t now_s, int64_t real_ms, size_t max)
{
    size_t n = 0;
    int64_t id;
    while (n < max && real_ms >= st->retry_at_ms && next_due(st, now_s, &id)) {
        if (settle_one(st, id, real_ms) != 0)
            break;
        n++;
    }
    return n;
}

/* ---- reading blocks back ---- */

typedef struct {
    stl_block b;
    char checkpoint[STL_NOTE_MAX];
    stl_tx *tx;
    size_t n_tx;
} block_view;

static void block_view_free(block_view *v)
{
    free(v->tx);
    v->tx = NULL;
}

static int load_block(ctl_db *db, uint64_t height, block_view *v)
{
    memset(v, 0, sizeof *v);
    sqlite3_stmt *q = NULL;
    int rc = -1;
    if (ctl_db_prepare(db, "SELECT body, checkpoint FROM ledger_block WHERE height = ?1", &q) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(q, 1, (sqlite3_int64)height);
    if (sqlite3_step(q) == SQLITE_ROW &&
        stl_block_decode(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0), &v->b) ==
            STL_OK) {
        snprintf(v->checkpoint, sizeof v->checkpoint, "%s",
                 (const char *)sqlite3_column_text(q, 1));
        rc = 0;
    }
    sqlite3_finalize(q);
    if (rc != 0)
        return rc;
    v->tx = calloc(v->b.n_tx ? v->b.n_tx : 1, sizeof *v->tx);
    if (!v->tx ||
        ctl_db_prepare(db, "SELECT body FROM ledger_tx WHERE height = ?1 ORDER BY log_index", &q) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(q, 1, (sqlite3_int64)height);
    while (sqlite3_step(q) == SQLITE_ROW && v->n_tx < v->b.n_tx)
        if (stl_tx_decode(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0),
                          &v->tx[v->n_tx]) == STL_OK)
            v->n_tx++;
    sqlite3_finalize(q);
    return v->n_tx == v->b.n_tx ? 0 : -1;
}

static int name_of(void *ctx, uint64_t id, char *name, size_t cap);

/* netted: hands over the billing period before block b's (each block of a period asks again;
 * the outbox keys the period by its last interval, so it is stored once). */
static int solana_period(ctl_settler *st, const stl_block *b, int64_t real_ms, char *msg,
                         size_t msglen)
{
    int64_t len = ctl_settle_solana_billing_intervals(st->sol);
    int64_t first = (ctl_floor_div(b->interval_id, len) - 1) * len, last = first + len - 1;
    ctl_sol_net *nets = NULL;
    size_t n = 0;
    uint8_t root[32];
    int rc = ctl_ledger_period_nets(st->db, first, last, &nets, &n, root);
    if (rc != 0)
        snprintf(msg, msglen, "the billing period before interval %lld cannot be read",
                 (long long)b->interval_id);
    else if (n == 0)
        snprintf(msg, msglen, "no billing period to net before interval %lld",
                 (long long)b->interval_id);
    else
        rc = ctl_settle_solana_period(st->sol, last, root, nets, n, name_of, st, real_ms, msg,
                                      msglen);
    free(nets);
    return rc;
}

/* ---- publication ---- */

static void pub_finish(ctl_settler *st)
{
    if (st->pub_pending > 0)
        return;
    if (!st->pub_failed) {
        st->published_height = (int64_t)st->pub_height;
        if (state_put(st->db, "published_height", st->published_height) != 0)
            ctl_logf(st->cfg.log, CTL_LOG_ERROR, "block %llu: publication not recorded: %s",
                     (unsigned long long)st->pub_height, ctl_db_errmsg(st->db));
    }
    st->pub_active = 0;
}

static void pub_done(void *arg, int status)
{
    ctl_settler *st = arg;
    st->pub_pending--;
    if (status != BUS_OK)
        st->pub_failed = 1;
    pub_finish(st);
}

static void pub_send(ctl_settler *st, bus_client *bus, const char *topic, const char *body,
                     bool retain)
{
    int rc = bus_publish(bus, topic, body, strlen(body), 1, retain, pub_done, st);
    if (rc == BUS_OK)
        st->pub_pending++;
    else
        st->pub_failed = 1;
}

static int name_of(void *ctx, uint64_t id, char *name, size_t cap)
{
    ctl_settler *st = ctx;
    return ctl_store_participant_name(st->store, id, name, cap) == CTL_ST_OK ? 0 : -1;
}

/* One of participant's trades, from its side: the counterparty is the coordinator's to know, so
 * its name never leaves the controller (docs/privacy.md). */
static json_t *trade_json(const stl_settled_trade *t, uint64_t participant)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "side",
                     t->seller == participant ? "sell" : "buy", "contracted_wh",
                     (json_int_t)t->contracted_wh, "price_uc_per_kwh",
                     (json_int_t)t->price_uc_per_kwh, "delivered_wh",
                     (json_int_t)t->delivered_wh, "paid_uc", (json_int_t)t->paid_uc,
                     "received_uc", (json_int_t)t->received_uc, "fee_uc", (json_int_t)t->fee_uc,
                     "rounding_uc", (json_int_t)t->rounding_uc);
}

static json_t *statement_json(ctl_settler *st, const block_view *v, const stl_position *p,
                              const char *name)
{
    json_t *trades = json_array();
    for (size_t i = 0; i < v->n_tx; i++)
        if (v->tx[i].kind == STL_TX_TRADE &&
            (v->tx[i].trade.seller == p->participant || v->tx[i].trade.buyer == p->participant))
            json_array_append_new(trades, trade_json(&v->tx[i].trade, p->participant));
    int64_t net = p->local_received_uc + p->grid_received_uc - p->local_paid_uc - p->grid_paid_uc;
    json_t *j = json_pack(
        "{s:i, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "v",
        1, "participant", name, "interval_id", (json_int_t)v->b.interval_id, "start_utc",
        (json_int_t)(v->b.interval_id * (int64_t)v->b.interval_len_s), "interval_s",
        (json_int_t)v->b.interval_len_s, "height", (json_int_t)v->b.height, "status",
        stl_pos_status_name(p->status), "quality", (json_int_t)p->quality, "import_wh",
        (json_int_t)p->import_wh, "export_wh", (json_int_t)p->export_wh, "local_bought_wh",
        (json_int_t)p->local_bought_wh, "local_sold_wh", (json_int_t)p->local_sold_wh,
        "grid_bought_wh", (json_int_t)p->grid_bought_wh, "grid_sold_wh",
        (json_int_t)p->grid_sold_wh, "log_size", (json_int_t)v->b.log_size, "net_uc",
        (json_int_t)net);
    if (!j) {
        json_decref(trades);
        return NULL;
    }
    /* why it is held, by name (MTR_Q_* bits: the meter's own and the controller's checks) */
    char flags[256] = "";
    if (p->quality && mtr_quality_str(p->quality, flags, sizeof flags) > 0)
        json_object_set_new(j, "flags", json_string(flags));
    if (p->status != STL_POS_GOOD)
        json_object_set_new(j, "held", json_string("nothing settled here; the import of this "
                                                   "interval is owed and billed with the next "
                                                   "good interval (docs/trust.md)"));
    int64_t carried_from, carried_wh;
    if (ctl_carry_get(st->db, v->b.interval_id, (int64_t)p->participant, &carried_from,
                      &carried_wh) == 1) {
        json_object_set_new(j, "carried_import_wh", json_integer(carried_wh));
        json_object_set_new(j, "carried_from_interval", json_integer(carried_from));
    }
    json_object_set_new(j, "local_paid_uc", json_integer(p->local_paid_uc));
    json_object_set_new(j, "fee_paid_uc", json_integer(p->fee_paid_uc));
    json_object_set_new(j, "local_received_uc", json_integer(p->local_received_uc));
    json_object_set_new(j, "grid_paid_uc", json_integer(p->grid_paid_uc));
    json_object_set_new(j, "grid_received_uc", json_integer(p->grid_received_uc));
    json_object_set_new(j, "tier", json_integer(p->tier));
    json_object_set_new(j, "timing", json_string(v->b.timing == STL_TIMING_EX_POST ? "ex_post"
                                                                                 : "ex_ante"));
    json_object_set_new(j, "trades", trades);
    return j;
}

/* Each participant's statement, then the checkpoint (retained) last. */
static void publish_block(ctl_settler *st, bus_client *bus, const block_view *v)
{
    char topic[BUS_TOPIC_MAX], name[CTL_PARTICIPANT_MAX];
    const char *c = st->cfg.community;
    for (size_t i = 0; i < v->n_tx; i++) {
        if (v->tx[i].kind != STL_TX_POSITION)
            continue;
        const stl_position *p = &v->tx[i].position;
        int rc = ctl_store_participant_name(st->store, p->participant, name, sizeof name);
        if (rc != CTL_ST_OK && rc != CTL_ST_E_INVAL) {
            st->pub_failed = 1; /* the store failed (busy, I/O): publish the block again later */
            continue;
        }
        if (rc != CTL_ST_OK || !bus_id_valid(name))
            continue; /* not a bus participant (a ledger number without a name) */
        snprintf(topic, sizeof topic, "mgx/v1/%s/statement/%s", c, name);
        json_t *j = statement_json(st, v, p, name);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!text) {
            st->pub_failed = 1;
            continue;
        }
        pub_send(st, bus, topic, text, false);
        free(text);
    }
    snprintf(topic, sizeof topic, "mgx/v1/%s/ledger/checkpoint", c);
    pub_send(st, bus, topic, v->checkpoint, true);
}

void ctl_settler_reconnected(ctl_settler *st)
{
    (void)st; /* the in-flight block's outcome arrives as failures; it is sent again then */
}

void ctl_settler_publish(ctl_settler *st, bus_client *bus)
{
    if (st->pub_active || !bus_connected(bus))
        return;
    uint64_t head, size;
    if (ctl_ledger_head(st->db, &head, &size) != CTL_LEDGER_OK ||
        (int64_t)head <= st->published_height)
        return;
    block_view v;
    uint64_t h = (uint64_t)(st->published_height + 1);
    if (load_block(st->db, h, &v) != 0) {
        ctl_logf(st->cfg.log, CTL_LOG_ERROR, "block %llu cannot be read for publication",
                 (unsigned long long)h);
        block_view_free(&v);
        return;
    }
    st->pub_active = 1;
    st->pub_failed = 0;
    st->pub_height = h;
    st->pub_pending = 1; /* held while sending, so an early acknowledgement cannot finish it */
    publish_block(st, bus, &v);
    block_view_free(&v);
    st->pub_pending--;
    pub_finish(st);
}

/* ---- Solana ---- */

#define SOL_WAIT_MS 5000 /* blocks proposed and not applied this long are proposed again */
#define SOL_WINDOW 16     /* blocks a leader may have proposed and not yet applied */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* The outbox's decisions (solana_outbox.h), prefixed with the ledger height they hand over
 * (UINT64_MAX: none, a decision of the outbox pass) for the cluster's log. */
static int sol_propose(void *ctx, const uint8_t *op, size_t len)
{
    ctl_settler *st = ctx;
    uint8_t *e = malloc(8 + len);
    if (!e)
        return -1;
    put_u64(e, st->sol_handing >= 0 ? (uint64_t)st->sol_handing : UINT64_MAX);
    memcpy(e + 8, op, len);
    if (st->sol_handing >= 0)
        st->sol_add_proposed = 1;
    int rc = st->propose(st->propose_ctx, e, 8 + len);
    free(e);
    return rc;
}

void ctl_settler_solana_replicate(ctl_settler *st, ctl_settler_propose_fn fn, void *ctx)
{
    if (!st->sol)
        return;
    st->propose = fn;
    st->propose_ctx = ctx;
    ctl_settle_solana_replicate(st->sol, fn ? sol_propose : NULL, st);
}

int ctl_settler_solana_apply(ctl_settler *st, const uint8_t *p, size_t len)
{
    if (!st || !st->sol || len < 8)
        return 1; /* refused alike on every node: [solana] must be the same on all of them */
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = h << 8 | p[i];
    int rc = ctl_settle_solana_apply(st->sol, p + 8, len - 8);
    if (rc == CTL_SOLOB_E_INVAL)
        return 1;
    if (rc != CTL_SOLOB_OK)
        return -1;
    /* the block's transactions and its hand-over commit together, in the entry's apply; in
     * order only: a block whose predecessor's entry was lost leaves its transactions stored
     * (sent like any) and the height where it is, and is handed over again after it */
    if (h != UINT64_MAX && h <= INT64_MAX && (int64_t)h == st->solana_height + 1) {
        if (state_put(st->db, "solana_height", (int64_t)h) != 0)
            return -1;
        st->solana_height = (int64_t)h;
    }
    return 0;
}

void ctl_settler_solana(ctl_settler *st, int64_t real_ms)
{
    if (!st->sol)
        return;
    uint64_t head, size;
    if (st->propose) {
        /* a cluster's leader hands blocks over in order through the log, up to SOL_WINDOW
         * ahead of what is applied; when nothing moved for SOL_WAIT_MS (proposals lost with a
         * leadership), again from the first not applied */
        if (st->sol_seen_h != st->solana_height || st->sol_next <= st->solana_height + 1) {
            st->sol_seen_h = st->solana_height;
            st->sol_progress_ms = real_ms;
        }
        if (st->sol_next <= st->solana_height ||
            (st->sol_next > st->solana_height + 1 && real_ms - st->sol_progress_ms > SOL_WAIT_MS))
            st->sol_next = st->solana_height + 1;
    }
    while (real_ms >= st->sol_retry_at_ms && ctl_ledger_head(st->db, &head, &size) ==
                                                 CTL_LEDGER_OK &&
           (int64_t)head > st->solana_height) {
        uint64_t h = (uint64_t)(st->solana_height + 1);
        if (st->propose) {
            h = (uint64_t)st->sol_next;
            if ((int64_t)h > (int64_t)head || (int64_t)h > st->solana_height + SOL_WINDOW)
                break; /* the rest is in the log: handed over when applied */
        }
        block_view v;
        char msg[512] = "";
        st->sol_handing = (int64_t)h;
        st->sol_add_proposed = 0;
        int rc = load_block(st->db, h, &v);
        stl_settled_trade *t = NULL;
        stl_position *p = NULL;
        stl_credit *tu = NULL;
        size_t nt = 0, np = 0, ntu = 0;
        if (rc == 0 && ctl_settle_solana_mode(st->sol) == CTL_SOL_MODE_NETTED) {
            rc = solana_period(st, &v.b, real_ms, msg, sizeof msg);
        } else if (rc == 0) {
            t = calloc(v.n_tx ? v.n_tx : 1, sizeof *t);
            p = calloc(v.n_tx ? v.n_tx : 1, sizeof *p);
            tu = calloc(v.n_tx ? v.n_tx : 1, sizeof *tu);
            int credit_tier = -1; /* the min_tier of the block's credit records, if any */
            for (size_t i = 0; t && p && tu && i < v.n_tx; i++) {
                if (v.tx[i].kind == STL_TX_TRADE)
                    t[nt++] = v.tx[i].trade;
                else if (v.tx[i].kind == STL_TX_POSITION)
                    p[np++] = v.tx[i].position;
                else if (v.tx[i].kind == STL_TX_CREDIT)
                    credit_tier = v.tx[i].credit.min_tier;
                if (v.tx[i].kind == STL_TX_CREDIT && stl_credit_is_trueup(&v.tx[i].credit))
                    tu[ntu++] = v.tx[i].credit; /* a true-up of an earlier held position */
            }
            rc = t && p && tu ? ctl_settle_solana_block(st->sol, &v.b, v.checkpoint, t, nt, p,
                                                        np, credit_tier, tu, ntu, name_of, st,
                                                        real_ms, msg, sizeof msg)
                              : -1;
        } else {
            snprintf(msg, sizeof msg, "block %llu cannot be read", (unsigned long long)h);
        }
        free(t);
        free(p);
        free(tu);
        block_view_free(&v);
        st->sol_handing = -1;
        if (rc == 0 && st->propose) {
            /* a cluster: the block is handed over when its entry is applied, on every node
             * alike (ctl_settler_solana_apply); a block with nothing to store still moves the
             * height through the log. Proposed again if not applied within SOL_WAIT_MS (the
             * proposal lost with a leadership change; a second copy changes nothing) */
            if (!st->sol_add_proposed) {
                uint8_t e[8];
                put_u64(e, h);
                if (st->propose(st->propose_ctx, e, sizeof e) != 0) {
                    ctl_logf(st->cfg.log, CTL_LOG_WARN, "solana: block %llu not proposed",
                             (unsigned long long)h);
                    break;
                }
            }
            st->sol_next = (int64_t)h + 1;
            ctl_logf(st->cfg.log, CTL_LOG_INFO, "solana: block %llu (interval %lld): %s",
                     (unsigned long long)h, (long long)v.b.interval_id, msg);
            continue;
        }
        if (rc == 0) {
            ctl_crash_point("solana.after_add");
            st->solana_height = (int64_t)h;
            if (state_put(st->db, "solana_height", st->solana_height) != 0)
                ctl_logf(st->cfg.log, CTL_LOG_ERROR, "solana: progress not recorded: %s",
                         ctl_db_errmsg(st->db));
            ctl_logf(st->cfg.log, CTL_LOG_INFO, "solana: block %llu (interval %lld): %s",
                     (unsigned long long)h, (long long)v.b.interval_id, msg);
            continue;
        }
        ctl_logf(st->cfg.log, rc > 0 ? CTL_LOG_WARN : CTL_LOG_ERROR,
                 "solana: block %llu: %s; retrying", (unsigned long long)h, msg);
        st->sol_retry_at_ms = real_ms + (rc > 0 ? 2000 : RETRY_INPUT_MS);
        break;
    }
    if (real_ms < st->sol_next_poll_ms)
        return;
    st->sol_next_poll_ms = real_ms + ctl_settle_solana_poll_ms(st->sol);
    ctl_sol_poll_stats s;
    memset(&s, 0, sizeof s);
    int rc = ctl_settle_solana_poll(st->sol, real_ms, &s);
    if (rc != CTL_SOLOB_OK)
        ctl_logf(st->cfg.log, CTL_LOG_WARN, "solana: outbox pass: %s", ctl_sol_outbox_strerror(rc));
    if (s.sent || s.rebuilt || s.confirmed || s.failed)
        ctl_logf(
            st->cfg.log, s.failed ? CTL_LOG_ERROR : CTL_LOG_INFO,
            "solana: %zu sent, %zu resent, %zu rebuilt, %zu confirmed, %zu failed, %zu pending",
            s.sent, s.resent, s.rebuilt, s.confirmed, s.failed, s.pending);
}
