/*
 * The community database's schema and migrations (schema.h). Every table of the file is
 * declared here and nowhere else; the layouts of version 1 are exactly those the releases
 * before user_version created, so a file they wrote needs no rewrite, only its missing tables.
 */
#include "db/schema.h"

#include "common/errbuf.h"
#include "common/sql.h"
#include "db/db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* Version 1: the tables as the pre-user_version releases wrote them, grouped by the module that
 * reads and writes them. IF NOT EXISTS because a file of those releases holds any subset. */
static const char V1[] =
    /* db/store.c: the market. schema_version and ctl_meta are the store's own versioning and
     * identity of those releases; the store still writes and checks them, so an older mgx can
     * open a file this one made. */
    "CREATE TABLE IF NOT EXISTS schema_version("
    "  component TEXT PRIMARY KEY, version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS ctl_meta("
    "  key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS readings("
    "  meter_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, power_w INTEGER NOT NULL,"
    "  import_wh INTEGER NOT NULL, export_wh INTEGER NOT NULL, soc_permille INTEGER NOT NULL,"
    "  quality INTEGER NOT NULL, received_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(meter_id, ts_ms)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS market_ids("
    "  market_id INTEGER PRIMARY KEY, participant TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS orders("
    "  order_id INTEGER PRIMARY KEY, participant TEXT NOT NULL, nonce BLOB NOT NULL,"
    "  interval_id INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    "  side INTEGER NOT NULL CHECK(side IN (0, 1)),"
    "  signed BLOB NOT NULL, received_ms INTEGER NOT NULL,"
    "  status INTEGER NOT NULL CHECK(status IN (0, 1)), reason TEXT NOT NULL,"
    "  superseded INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX IF NOT EXISTS orders_nonce ON orders(participant, nonce) "
    "  WHERE status = 1;"
    "CREATE INDEX IF NOT EXISTS orders_by_interval ON orders(interval_id, status, superseded);"
    /* a participant's current order for an interval, looked up for every order that comes in:
     * without it the lookup scans the interval's whole book (quadratic in the homes) */
    "CREATE INDEX IF NOT EXISTS orders_by_participant ON orders(participant, interval_id, "
    "status, superseded);"
    "CREATE TABLE IF NOT EXISTS order_steps("
    "  order_id INTEGER NOT NULL REFERENCES orders(order_id), step INTEGER NOT NULL,"
    "  energy_wh INTEGER NOT NULL, price_uc_per_kwh INTEGER NOT NULL,"
    "  PRIMARY KEY(order_id, step)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS receipts("
    "  order_id INTEGER PRIMARY KEY REFERENCES orders(order_id), body TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS intervals("
    "  interval_id INTEGER PRIMARY KEY, start_utc INTEGER NOT NULL, length_s INTEGER NOT NULL,"
    "  state INTEGER NOT NULL CHECK(state IN (0, 1)), mechanism INTEGER NOT NULL,"
    "  feed_in_uc_per_kwh INTEGER NOT NULL, retail_uc_per_kwh INTEGER NOT NULL,"
    "  network_fee_uc_per_kwh INTEGER NOT NULL, cleared_ms INTEGER NOT NULL,"
    "  published INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS results("
    "  interval_id INTEGER PRIMARY KEY REFERENCES intervals(interval_id),"
    "  n_orders INTEGER NOT NULL, n_trades INTEGER NOT NULL, matched_wh INTEGER NOT NULL,"
    "  has_price INTEGER NOT NULL, price_uc_per_kwh INTEGER NOT NULL,"
    "  price_low_uc_per_kwh INTEGER NOT NULL, price_high_uc_per_kwh INTEGER NOT NULL,"
    "  grid_bought_wh INTEGER NOT NULL, grid_sold_wh INTEGER NOT NULL,"
    "  local_value_uc INTEGER NOT NULL, fees_uc INTEGER NOT NULL,"
    "  grid_paid_uc INTEGER NOT NULL, grid_received_uc INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS trades("
    "  interval_id INTEGER NOT NULL REFERENCES intervals(interval_id), seq INTEGER NOT NULL,"
    "  seller TEXT NOT NULL, buyer TEXT NOT NULL, energy_wh INTEGER NOT NULL,"
    "  price_uc_per_kwh INTEGER NOT NULL, amount_uc INTEGER NOT NULL, fee_uc INTEGER NOT NULL,"
    "  PRIMARY KEY(interval_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS outcomes("
    "  interval_id INTEGER NOT NULL REFERENCES intervals(interval_id),"
    "  participant TEXT NOT NULL, market_id INTEGER NOT NULL, side INTEGER NOT NULL,"
    "  offered_wh INTEGER NOT NULL, local_bought_wh INTEGER NOT NULL,"
    "  local_sold_wh INTEGER NOT NULL, grid_bought_wh INTEGER NOT NULL,"
    "  grid_sold_wh INTEGER NOT NULL, local_paid_uc INTEGER NOT NULL,"
    "  local_received_uc INTEGER NOT NULL, grid_paid_uc INTEGER NOT NULL,"
    "  grid_received_uc INTEGER NOT NULL, fee_paid_uc INTEGER NOT NULL,"
    "  PRIMARY KEY(interval_id, participant)) WITHOUT ROWID;"
    /* db/registry.c: who may trade. The constraints (not only C) keep ids, keys and meters
     * unique, so two writers can never both add the same participant or key. */
    "CREATE TABLE IF NOT EXISTS participants("
    " id TEXT PRIMARY KEY NOT NULL CHECK(length(id) BETWEEN 1 AND 63),"
    " pubkey BLOB NOT NULL UNIQUE CHECK(length(pubkey) = 32),"
    " meter_id TEXT UNIQUE CHECK(meter_id IS NULL OR length(meter_id) BETWEEN 1 AND 63),"
    " role TEXT NOT NULL CHECK(role IN ('home','controller','observer')),"
    " added_s INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    /* settle/ledger_store.c: the settlement ledger (blocks, transactions, the Merkle log) */
    "CREATE TABLE IF NOT EXISTS ledger_meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS ledger_block(height INTEGER PRIMARY KEY,"
    " interval_id INTEGER NOT NULL UNIQUE, hash BLOB NOT NULL, body BLOB NOT NULL,"
    " sig BLOB NOT NULL, checkpoint TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS ledger_tx(log_index INTEGER PRIMARY KEY,"
    " height INTEGER NOT NULL, txid BLOB NOT NULL, participant INTEGER,"
    " body BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS ledger_tx_txid ON ledger_tx(txid);"
    "CREATE INDEX IF NOT EXISTS ledger_tx_height ON ledger_tx(height);"
    "CREATE INDEX IF NOT EXISTS ledger_tx_participant ON ledger_tx(participant)"
    " WHERE participant IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS ledger_node(level INTEGER NOT NULL,"
    " idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY(level, idx))"
    " WITHOUT ROWID;"
    /* settle/settle_daemon.c: what was published and handed to Solana */
    "CREATE TABLE IF NOT EXISTS settle_state(k TEXT PRIMARY KEY,"
    " v INTEGER NOT NULL);"
    /* solana/solana_outbox.c: settlement transactions on their way to the chain */
    "CREATE TABLE IF NOT EXISTS solana_outbox ("
    " id INTEGER PRIMARY KEY,"
    " interval_id INTEGER NOT NULL,"
    " part INTEGER NOT NULL,"
    " n_parts INTEGER NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('built','submitted','confirmed','failed')),"
    " tx BLOB NOT NULL,"
    " signature TEXT NOT NULL UNIQUE,"
    " blockhash TEXT NOT NULL,"
    " last_valid_block_height INTEGER NOT NULL,"
    " generation INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " rejected INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " last_sent_ms INTEGER,"
    " UNIQUE (interval_id, part));"
    "CREATE INDEX IF NOT EXISTS solana_outbox_open ON solana_outbox (state)"
    " WHERE state IN ('built','submitted');"
    "CREATE TABLE IF NOT EXISTS solana_outbox_superseded ("
    " signature TEXT PRIMARY KEY,"
    " outbox_id INTEGER NOT NULL REFERENCES solana_outbox(id),"
    " blockhash TEXT NOT NULL,"
    " last_valid_block_height INTEGER NOT NULL,"
    " superseded_ms INTEGER NOT NULL);";

/* Version 2: db/retention.c's watermark per meter: its readings before thinned_to_ms have been
 * thinned to the interval-boundary pairs and the flagged ones (issue 19). */
static const char V2[] =
    "CREATE TABLE IF NOT EXISTS reading_retention("
    "  meter_id TEXT PRIMARY KEY, thinned_to_ms INTEGER NOT NULL) WITHOUT ROWID;";

/* Version 3 (issue 12, signed readings): db/meter_keys.c. meter_keys holds the public keys
 * registered per meter: kind 1 is the gateway's Ed25519 device key (32 bytes), kind 2 a
 * certified meter's OCMF key (DER SubjectPublicKeyInfo). reading_tiers holds the attestation
 * tier the controller verified for each stored reading (0 unsigned, 1 gateway, 2 certified); a
 * reading without a row counts as 0, so a crash between the two writes errs on the side of
 * less trust. A separate table, not a readings column, so the readings' layout is unchanged. */
static const char V3[] =
    "CREATE TABLE IF NOT EXISTS meter_keys("
    " meter_id TEXT NOT NULL CHECK(length(meter_id) BETWEEN 1 AND 63),"
    " kind INTEGER NOT NULL CHECK(kind IN (1, 2)),"
    " pubkey BLOB NOT NULL CHECK(length(pubkey) BETWEEN 32 AND 512),"
    " added_s INTEGER NOT NULL,"
    " PRIMARY KEY(meter_id, kind)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS reading_tiers("
    " meter_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,"
    " tier INTEGER NOT NULL CHECK(tier IN (0, 1, 2)),"
    " PRIMARY KEY(meter_id, ts_ms)) WITHOUT ROWID;";

/* Version 4 (issue 12, proof of physical work): each home's registered physical limits, read by
 * db/registry.c (ctl_registry_limits_*) and checked by settlement against the metered energy;
 * and the carried import of held intervals (settle_carry).
 * A table of its own rather than columns of participants, so the registry's layout check and
 * older readers of participants are untouched. NULL: not registered (not checked); 0: none
 * (e.g. pv_wp 0 for a home without solar). */
static const char V4[] =
    "CREATE TABLE IF NOT EXISTS participant_limits("
    " id TEXT PRIMARY KEY NOT NULL CHECK(length(id) BETWEEN 1 AND 63),"
    " connection_w INTEGER CHECK(connection_w IS NULL OR connection_w >= 0),"
    " pv_wp INTEGER CHECK(pv_wp IS NULL OR pv_wp >= 0),"
    " battery_wh INTEGER CHECK(battery_wh IS NULL OR battery_wh >= 0),"
    " battery_w INTEGER CHECK(battery_w IS NULL OR battery_w >= 0)"
    ") WITHOUT ROWID;"
    /* settle/settle_carry.c: import of held intervals carried into a home's next good one
     * (layer 6), kept for its statement; participant is the market number, as in ledger_tx */
    "CREATE TABLE IF NOT EXISTS settle_carry("
    " interval_id INTEGER NOT NULL, participant INTEGER NOT NULL,"
    " from_interval INTEGER NOT NULL, import_wh INTEGER NOT NULL,"
    " PRIMARY KEY(interval_id, participant)) WITHOUT ROWID;";

/* Version 5 (issue 19, ledger v2): each salted ledger transaction keeps its secret 32-byte salt,
 * so the audit can recompute its leaf and a home's proof can carry it; NULL for the unsalted
 * transactions of ledger version 1. */
static const char V5[] = "ALTER TABLE ledger_tx ADD COLUMN salt BLOB;";

/* Version 6 (issue 11, post-delivery clearing): the homes' signed standing preferences
 * (db/prefs.c) and the timing each interval was cleared with. A preference counts from its valid_from interval until the participant's next
 * accepted one; only accepted preferences are kept (a rejection is answered and counted, not
 * stored), unique per (participant, nonce) so a resend gets its first receipt back. */
static const char V6[] =
    "CREATE TABLE preferences("
    "  pref_id INTEGER PRIMARY KEY, participant TEXT NOT NULL, nonce BLOB NOT NULL,"
    "  valid_from INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    "  signed BLOB NOT NULL, received_ms INTEGER NOT NULL, receipt TEXT NOT NULL,"
    "  UNIQUE(participant, nonce));"
    "CREATE INDEX preferences_by_participant ON preferences(participant, valid_from,"
    "  created_ms);"
    "CREATE TABLE preference_steps("
    "  pref_id INTEGER NOT NULL REFERENCES preferences(pref_id),"
    "  side INTEGER NOT NULL CHECK(side IN (0, 1)), step INTEGER NOT NULL,"
    "  energy_wh INTEGER NOT NULL, price_uc_per_kwh INTEGER NOT NULL,"
    "  PRIMARY KEY(pref_id, side, step)) WITHOUT ROWID;"
    /* the timing an interval was cleared with, for statements and results (no row: ex_ante,
     * as every interval before version 2) */
    "CREATE TABLE interval_timing("
    "  interval_id INTEGER PRIMARY KEY REFERENCES intervals(interval_id),"
    "  timing TEXT NOT NULL CHECK(timing IN ('ex_ante', 'ex_post')));";

/* Version 7 (issue 12, boundary meters and peer corroboration): the registry's role 'boundary'
 * (the coordinator's own meter at the transformer or feeder: read, never a market participant),
 * which needs participants rebuilt (SQLite cannot change a CHECK); and peer_checks, one row per
 * home and interval the peer check (or a boundary dispute) looked at, from which a home's trust
 * score is counted (db/peer_trust.c). */
static const char V7[] =
    "CREATE TABLE participants_v7("
    " id TEXT PRIMARY KEY NOT NULL CHECK(length(id) BETWEEN 1 AND 63),"
    " pubkey BLOB NOT NULL UNIQUE CHECK(length(pubkey) = 32),"
    " meter_id TEXT UNIQUE CHECK(meter_id IS NULL OR length(meter_id) BETWEEN 1 AND 63),"
    " role TEXT NOT NULL CHECK(role IN ('home','controller','observer','boundary')),"
    " added_s INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "INSERT INTO participants_v7(id, pubkey, meter_id, role, added_s)"
    " SELECT id, pubkey, meter_id, role, added_s FROM participants;"
    "DROP TABLE participants;"
    "ALTER TABLE participants_v7 RENAME TO participants;"
    "CREATE TABLE IF NOT EXISTS peer_checks("
    " participant TEXT NOT NULL, interval_id INTEGER NOT NULL,"
    " peer_checked INTEGER NOT NULL CHECK(peer_checked IN (0, 1)),"
    " peer_flagged INTEGER NOT NULL CHECK(peer_flagged IN (0, 1)),"
    " disputed INTEGER NOT NULL CHECK(disputed IN (0, 1)),"
    " yield_wh_per_kwp INTEGER NOT NULL, reference_wh_per_kwp INTEGER NOT NULL,"
    " PRIMARY KEY(participant, interval_id)) WITHOUT ROWID;";

/* Version 8 (issue 16): witness cosignatures the controller collected from the bus and verified
 * (settle/cosig_collect.h), one per witness key and log size, so it can republish the checkpoint
 * with every witness on it after a restart. */
static const char V8[] =
    "CREATE TABLE IF NOT EXISTS ledger_cosignature("
    " log_size INTEGER NOT NULL, witness_pk BLOB NOT NULL CHECK(length(witness_pk) = 32),"
    " name TEXT NOT NULL, time_s INTEGER NOT NULL, line TEXT NOT NULL,"
    " PRIMARY KEY(log_size, witness_pk)) WITHOUT ROWID;";

/* Version 9 (issue 13, credit true-ups): the coordinator's resolutions of held positions
 * (settle/credit_trueup.c). One row per original position transaction (its ledger log index),
 * so a position is resolved once; height is NULL until the block that carries the true-up
 * credit record is written, in the same SQLite transaction as that block. */
static const char V9[] =
    "CREATE TABLE credit_trueup("
    " source_log_index INTEGER PRIMARY KEY, participant INTEGER NOT NULL,"
    " requested_ms INTEGER NOT NULL, height INTEGER);";

/* Version 10 (issue 14, the dashboard): a home's trades by participant. A home's page lists its
 * trades of the day; with trades keyed by (interval_id, seq) alone that read walked every trade
 * of the community's day (about 48,000 rows at 1,000 homes) for each page. Two entries more
 * per stored trade (bench_web, docs/dashboard.md). */
static const char V10[] =
    "CREATE INDEX IF NOT EXISTS trades_by_seller ON trades(seller, interval_id);"
    "CREATE INDEX IF NOT EXISTS trades_by_buyer ON trades(buyer, interval_id);";

/* Version 11 (issue 16, the replicated controller): the last replicated log index applied to
 * this file (controller/cluster/), written in the same SQLite transaction as that entry's
 * effects, so a node that restarts or restores a snapshot applies each entry exactly once.
 * One row; absent on a single-node controller. */
static const char V11[] =
    "CREATE TABLE cluster_state("
    " id INTEGER PRIMARY KEY CHECK(id = 1), applied_index INTEGER NOT NULL);";

/* Version 12 (issue 18, grid-aware clearing in the controller): what a cleared interval's
 * feeder limits did (daemon/clearing.c, with [topology]). trade_congestion holds a trade's
 * congestion rent (mkt_grid_trade_congestion), only for trades that owe one; the buyer pays
 * it on top of amount_uc + fee_uc, to the network, and the ledger carries it in the trade's
 * fee (settle/settle_input.c). grid_nodes holds, per interval and node of the topology (by its
 * config name), the net local flow over its edge, its zone's price and whether its limit
 * binds (MKT_BIND_*); an interval cleared without a topology has no rows. */
static const char V12[] =
    "CREATE TABLE trade_congestion("
    " interval_id INTEGER NOT NULL, seq INTEGER NOT NULL, congestion_uc INTEGER NOT NULL,"
    " PRIMARY KEY(interval_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE grid_nodes("
    " interval_id INTEGER NOT NULL, node INTEGER NOT NULL, name TEXT NOT NULL,"
    " flow_wh INTEGER NOT NULL, price_uc_per_kwh INTEGER NOT NULL, zone INTEGER NOT NULL,"
    " binding INTEGER NOT NULL, PRIMARY KEY(interval_id, node)) WITHOUT ROWID;";

/* Version 13 (issue 16, divergence check): the chain digest of every replicated entry this file
 * has applied (controller/cluster/cluster.c: BLAKE2b-256 over the previous digest, the entry's
 * index and its bytes), written with applied_index in the entry's transaction, and the index
 * the chain started from (0 on a cluster that started with it; a file that had applied entries
 * before this version starts its chain there, chain_digest NULL until the next entry). The
 * leader's entries carry its digest; a node whose own differs stops. */
static const char V13[] = "ALTER TABLE cluster_state ADD COLUMN chain_base INTEGER;"
                          "ALTER TABLE cluster_state ADD COLUMN chain_digest BLOB;";

/* MIGRATIONS[v] takes a file from version v to v + 1. Append only: a released entry never
 * changes, since files in the field went through it. */
static const char *const MIGRATIONS[CTL_DB_VERSION] = {V1, V2, V3, V4, V5, V6, V7, V8, V9, V10,
                                                       V11, V12, V13};

/* The column names of table, in order, joined by ',' (empty when it does not exist). */
static int columns(sqlite3 *db, const char *table, char *out, size_t cap)
{
    sqlite3_stmt *st;
    out[0] = '\0';
    int rc = ctl_sql_prepare(db, "SELECT name FROM pragma_table_info(?1) ORDER BY cid", &st);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    size_t n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int w = snprintf(out + n, cap - n, "%s%s", n ? "," : "",
                         (const char *)sqlite3_column_text(st, 0));
        if (w < 0 || (size_t)w >= cap - n) {
            rc = SQLITE_TOOBIG;
            break;
        }
        n += (size_t)w;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The reference layout of every table at schema version `version`: the migrations up to it
 * run in a private in-memory database. */
static int open_reference(sqlite3 **ref, int version, char *err, size_t errlen)
{
    *ref = NULL;
    int rc = sqlite3_open_v2(":memory:", ref, SQLITE_OPEN_READWRITE, NULL);
    for (int i = 0; rc == SQLITE_OK && i < version; i++)
        rc = ctl_sql_exec(*ref, MIGRATIONS[i]);
    if (rc != SQLITE_OK) {
        ctl_errf(err, errlen, "the reference schema: %s", ctl_sql_errmsg(*ref));
        sqlite3_close(*ref);
        *ref = NULL;
        return CTL_DB_E_DB;
    }
    return CTL_DB_OK;
}

/* Whether db's table has the reference's columns, in order. A table db lacks passes only when
 * missing_ok. */
static int compare_table(sqlite3 *ref, sqlite3 *db, const char *table, int missing_ok, char *err,
                         size_t errlen)
{
    char want[1024], have[1024];
    if (columns(ref, table, want, sizeof want) != SQLITE_OK ||
        columns(db, table, have, sizeof have) != SQLITE_OK)
        return ctl_fail(CTL_DB_E_DB, err, errlen, "table %s: %s", table, ctl_sql_errmsg(db));
    if (!have[0] && missing_ok)
        return CTL_DB_OK;
    if (strcmp(have, want) != 0)
        return ctl_fail(CTL_DB_E_SCHEMA, err, errlen, "table %s has columns (%s), expected (%s)",
                        table, have, want);
    return CTL_DB_OK;
}

/* A file at version 0 may hold any of version 1's tables: each one it holds must have version
 * 1's columns, or it is someone else's table (or a hand edit) that CREATE IF NOT EXISTS would
 * silently keep. */
static int check_v0_layouts(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3 *ref;
    sqlite3_stmt *st = NULL;
    int out = open_reference(&ref, 1, err, errlen);
    if (out != CTL_DB_OK)
        return out;
    out = CTL_DB_E_DB;
    if (ctl_sql_prepare(ref, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                        &st) != SQLITE_OK) {
        ctl_errf(err, errlen, "the reference schema: %s", ctl_sql_errmsg(ref));
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((out = compare_table(ref, db, (const char *)sqlite3_column_text(st, 0), 1, err,
                                 errlen)) != CTL_DB_OK)
            goto out;
    out = CTL_DB_OK;
    if (rc != SQLITE_DONE)
        out = ctl_fail(CTL_DB_E_DB, err, errlen, "the reference schema: %s", ctl_sql_errmsg(ref));
out:
    sqlite3_finalize(st);
    sqlite3_close(ref);
    return out;
}

int ctl_db__table_layout(sqlite3 *db, const char *table, char *err, size_t errlen)
{
    sqlite3 *ref;
    int rc = open_reference(&ref, CTL_DB_VERSION, err, errlen);
    if (rc == CTL_DB_OK)
        rc = compare_table(ref, db, table, 0, err, errlen);
    sqlite3_close(ref);
    return rc;
}

static int version_of(sqlite3 *db, int64_t *v, char *err, size_t errlen)
{
    int found = 0;
    *v = 0;
    if (ctl_sql_query_int(db, "PRAGMA user_version", v, &found) != SQLITE_OK)
        return ctl_fail(CTL_DB_E_DB, err, errlen, "user_version: %s", ctl_sql_errmsg(db));
    if (*v > CTL_DB_VERSION || *v < 0)
        return ctl_fail(CTL_DB_E_VERSION, err, errlen,
                        "database version %lld is newer than this mgx supports (%d): use a "
                        "newer mgx",
                        (long long)*v, CTL_DB_VERSION);
    return CTL_DB_OK;
}

int ctl_db__migrate(sqlite3 *db, char *err, size_t errlen)
{
    int64_t v;
    int rc = version_of(db, &v, err, errlen);
    if (rc != CTL_DB_OK || v == CTL_DB_VERSION)
        return rc; /* up to date: the file is not written */
    if (ctl_sql_begin(db) != SQLITE_OK)
        return ctl_fail(CTL_DB_E_DB, err, errlen, "migration: %s", ctl_sql_errmsg(db));
    /* another process may have migrated the file between the read and the lock */
    if ((rc = version_of(db, &v, err, errlen)) != CTL_DB_OK)
        goto fail;
    if (v == 0 && (rc = check_v0_layouts(db, err, errlen)) != CTL_DB_OK)
        goto fail;
    for (int64_t i = v; i < CTL_DB_VERSION; i++)
        if (ctl_sql_exec(db, MIGRATIONS[i]) != SQLITE_OK) {
            rc = ctl_fail(CTL_DB_E_DB, err, errlen, "migration to version %lld: %s",
                          (long long)i + 1, ctl_sql_errmsg(db));
            goto fail;
        }
    char set[64];
    snprintf(set, sizeof set, "PRAGMA user_version = %d", CTL_DB_VERSION);
    if (ctl_sql_exec(db, set) != SQLITE_OK || ctl_sql_commit(db) != SQLITE_OK) {
        rc = ctl_fail(CTL_DB_E_DB, err, errlen, "migration: %s", ctl_sql_errmsg(db));
        goto fail;
    }
    return CTL_DB_OK;
fail:
    ctl_sql_rollback(db);
    return rc;
}
