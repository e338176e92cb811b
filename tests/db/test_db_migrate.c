/*
 * The community database's migration (controller/db/schema.c): a database written by the
 * release before PRAGMA user_version (tests/data/db/community-v0.db, made by make-fixture.sh
 * from commit 0d1b6d9) opens with ctl_db_open, reaches CTL_DB_VERSION and keeps every row of
 * every table; a second open changes nothing; a new file gets every table; files that hold only
 * some tables (the other modules created theirs lazily) get the rest; a file from a newer mgx
 * is refused with a message saying so.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "daemon/clearing.h"
#include "db/db.h"
#include "db/registry.h"
#include "db/store.h"

#define FIXTURE MGX_SOURCE_DIR "/tests/data/db/community-v0.db"
#define MAX_TABLES 64

/* The tables of the community database at version 1, by name. */
static const char *const TABLES[] = {
    "ctl_meta",     "intervals",    "ledger_block", "ledger_meta",  "ledger_node",
    "ledger_tx",    "market_ids",   "order_steps",  "orders",       "outcomes",
    "participants", "readings",     "receipts",     "results",      "schema_version",
    "settle_state", "solana_outbox", "solana_outbox_superseded", "trades"};
#define N_TABLES (sizeof TABLES / sizeof TABLES[0])
/* The tables later versions added: 2, reading_retention (db/retention.c); 3, meter_keys and
 * reading_tiers (signed readings, issue 12); 4, participant_limits and settle_carry (physical
 * limits and carried import, issue 12); 6, the standing preferences of timing = ex_post and each
 * interval's timing (issue 11). */
static const char *const TABLES_LATER[] = {"reading_retention", "meter_keys", "reading_tiers",
                                           "participant_limits", "settle_carry", "interval_timing",
                                           "preference_steps", "preferences",
                                           "peer_checks", "ledger_cosignature",
                                           "credit_trueup", "cluster_state",
                                           "trade_congestion", "grid_nodes"};
#define N_LATER (sizeof TABLES_LATER / sizeof TABLES_LATER[0])

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = tst_tmpdir("db-migrate");
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tst_rmtree(dir);
    free(dir);
    return 0;
}

/* ---- reading a file with a plain SQLite connection, independent of the code under test ---- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    char *b = slurp(from, &n);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    free(b);
}

static sqlite3 *raw_open(const char *path, int flags)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, flags, NULL), SQLITE_OK);
    return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Appends text to a growing buffer. */
typedef struct {
    char *b;
    size_t n, cap;
} text;

static void put(text *t, const char *s)
{
    size_t k = strlen(s);
    if (t->n + k + 1 > t->cap) {
        t->cap = (t->n + k + 1) * 2;
        t->b = realloc(t->b, t->cap);
        assert_non_null(t->b);
    }
    memcpy(t->b + t->n, s, k + 1);
    t->n += k;
}

/* Every row of table, ordered by its primary key (or rowid), each value as SQL's quote()
 * writes it: types and bytes, not only what the text looks like. */
/* Columns that migrations after version 1 add (table, column, its pragma_table_info line as
 * the fresh-file test prints it): the fixture's rows must keep every value they had, and gain
 * these as NULL. */
static const struct {
    const char *table, *column, *info;
} ADDED[] = {{"ledger_tx", "salt", "salt BLOB 0 0"}}; /* version 2: ledger v2 salts */

static int added_column(const char *table, const char *column)
{
    for (size_t i = 0; i < sizeof ADDED / sizeof ADDED[0]; i++)
        if (strcmp(ADDED[i].table, table) == 0 && strcmp(ADDED[i].column, column) == 0)
            return 1;
    return 0;
}

static char *dump_table(sqlite3 *db, const char *table)
{
    char sql[2048];
    text cols = {0}, order = {0};
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT name, pk FROM pragma_table_info('%s') ORDER BY cid", table);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    char pk[16][128];
    int n_pk = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char c[160];
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int k = sqlite3_column_int(st, 1);
        if (added_column(table, name))
            continue; /* compared on its own: NULL in every row the fixture had */
        snprintf(c, sizeof c, "%squote(\"%s\")", cols.n ? "||'|'||" : "", name);
        put(&cols, c);
        if (k > 0 && k <= 16) {
            snprintf(pk[k - 1], sizeof pk[0], "\"%s\"", name);
            n_pk = k > n_pk ? k : n_pk;
        }
    }
    sqlite3_finalize(st);
    assert_true(cols.n > 0);
    for (int i = 0; i < n_pk; i++) {
        put(&order, i ? ", " : "");
        put(&order, pk[i]);
    }
    snprintf(sql, sizeof sql, "SELECT %s FROM \"%s\" ORDER BY %s", cols.b, table,
             n_pk ? order.b : "rowid");
    free(cols.b);
    free(order.b);
    text out = {0};
    put(&out, "");
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        put(&out, (const char *)sqlite3_column_text(st, 0));
        put(&out, "\n");
    }
    assert_int_equal(rc, SQLITE_DONE);
    sqlite3_finalize(st);
    return out.b;
}

/* What a file holds: its tables (by name), their row counts and contents. */
typedef struct {
    size_t n;
    char name[MAX_TABLES][64];
    int64_t rows[MAX_TABLES];
    char *dump[MAX_TABLES];
    int64_t user_version;
} snapshot;

static void take(const char *path, snapshot *s)
{
    memset(s, 0, sizeof *s);
    sqlite3 *db = raw_open(path, SQLITE_OPEN_READONLY);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                        "name NOT LIKE 'sqlite_%' ORDER BY name",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        assert_true(s->n < MAX_TABLES);
        snprintf(s->name[s->n++], sizeof s->name[0], "%s", sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < s->n; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", s->name[i]);
        s->rows[i] = raw_int(db, sql);
        s->dump[i] = dump_table(db, s->name[i]);
    }
    s->user_version = raw_int(db, "PRAGMA user_version");
    sqlite3_close(db);
}

static void drop(snapshot *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->dump[i]);
}

static int find(const snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return (int)i;
    return -1;
}

/* Every table of before is in after with the same rows; after holds every table of version
 * 1 and of the later versions (and nothing else). */
static void assert_kept(const snapshot *before, const snapshot *after)
{
    for (size_t i = 0; i < before->n; i++) {
        int j = find(after, before->name[i]);
        if (j < 0)
            fail_msg("table %s is gone after the migration", before->name[i]);
        if (before->rows[i] != after->rows[j])
            fail_msg("table %s: %lld rows before, %lld after", before->name[i],
                     (long long)before->rows[i], (long long)after->rows[j]);
        if (strcmp(before->dump[i], after->dump[j]) != 0)
            fail_msg("table %s: the rows changed in the migration", before->name[i]);
    }
    assert_int_equal(after->n, N_TABLES + N_LATER);
    for (size_t i = 0; i < N_TABLES; i++)
        if (find(after, TABLES[i]) < 0)
            fail_msg("table %s missing after the migration", TABLES[i]);
    for (size_t i = 0; i < N_LATER; i++)
        if (find(after, TABLES_LATER[i]) < 0)
            fail_msg("table %s missing after the migration", TABLES_LATER[i]);
}

static void open_close(const char *path)
{
    ctl_db *db = NULL;
    char err[512] = "";
    int rc = ctl_db_open(path, &db, err, sizeof err);
    if (rc != CTL_DB_OK)
        fail_msg("ctl_db_open %s: %s (%s)", path, ctl_db_strerror(rc), err);
    int64_t v = -1;
    assert_int_equal(ctl_db_version(db, &v), CTL_DB_OK);
    assert_int_equal(v, CTL_DB_VERSION);
    ctl_db_close(db);
}

/* ---- the tests ---- */

static void test_fixture_migrates_keeping_every_row(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/community.db", dir);
    copy_file(FIXTURE, path);

    snapshot before, after, again;
    take(path, &before);
    assert_int_equal(before.user_version, 0);
    assert_int_equal(before.n, N_TABLES); /* the fixture holds every table of its release */
    for (size_t i = 0; i < before.n; i++)
        if (before.rows[i] == 0)
            fail_msg("the fixture's table %s is empty: it tests nothing", before.name[i]);

    open_close(path);
    take(path, &after);
    assert_int_equal(after.user_version, CTL_DB_VERSION);
    assert_kept(&before, &after);
    {
        sqlite3 *m = raw_open(path, SQLITE_OPEN_READONLY);
        assert_int_equal(raw_int(m, "SELECT count(*) FROM ledger_tx WHERE salt IS NOT NULL"), 0);
        sqlite3_close(m);
    }

    /* a second open is a no-op: same version, same rows, the file's bytes unchanged */
    size_t n1, n2;
    char *bytes1 = slurp(path, &n1);
    open_close(path);
    char *bytes2 = slurp(path, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(bytes1, bytes2, n1);
    free(bytes1);
    free(bytes2);
    take(path, &again);
    assert_int_equal(again.user_version, CTL_DB_VERSION);
    assert_kept(&after, &again);

    /* the store takes the migrated file as the one it made (identity and first interval) */
    ctl_store *s = NULL;
    char err[512] = "";
    ctl_store_identity id = {"demo", 900, 0};
    assert_int_equal(ctl_store_open(path, &id, &s, err, sizeof err), CTL_ST_OK);
    assert_int_equal(ctl_store_first_interval(s), 1943128);
    int64_t last = 0;
    assert_int_equal(ctl_store_last_cleared(s, &last), CTL_ST_OK);
    assert_int_equal(last, 1943188);
    assert_int_equal(ctl_registry_count(ctl_store_db(s)), 6);
    ctl_store_free(s);

    drop(&before);
    drop(&after);
    drop(&again);
}

static void test_fresh_file_gets_every_table(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/fresh.db", dir);
    remove(path);
    open_close(path);
    snapshot s, fixture;
    take(path, &s);
    assert_int_equal(s.user_version, CTL_DB_VERSION);
    assert_int_equal(s.n, N_TABLES + N_LATER);
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(s.rows[i], 0);
    for (size_t i = 0; i < N_TABLES; i++)
        assert_true(find(&s, TABLES[i]) >= 0);
    for (size_t i = 0; i < N_LATER; i++)
        assert_true(find(&s, TABLES_LATER[i]) >= 0);
    /* the same tables, with the same columns, as the release before wrote, plus the columns
     * later versions add (ADDED) */
    char fx[512];
    snprintf(fx, sizeof fx, "%s/fx.db", dir);
    copy_file(FIXTURE, fx);
    take(fx, &fixture);
    sqlite3 *a = raw_open(path, SQLITE_OPEN_READONLY), *b = raw_open(fx, SQLITE_OPEN_READONLY);
    for (size_t i = 0; i < N_TABLES; i++) {
        assert_string_equal(fixture.name[i], TABLES[i]);
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT group_concat(name || ' ' || type || ' ' || \"notnull\" || ' ' || pk, ',')"
                 " FROM pragma_table_info('%s')",
                 TABLES[i]);
        sqlite3_stmt *sa, *sb;
        assert_int_equal(sqlite3_prepare_v2(a, sql, -1, &sa, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(b, sql, -1, &sb, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(sa), SQLITE_ROW);
        assert_int_equal(sqlite3_step(sb), SQLITE_ROW);
        char want[1024];
        snprintf(want, sizeof want, "%s", (const char *)sqlite3_column_text(sb, 0));
        for (size_t k = 0; k < sizeof ADDED / sizeof ADDED[0]; k++)
            if (strcmp(ADDED[k].table, TABLES[i]) == 0) {
                strncat(want, ",", sizeof want - strlen(want) - 1);
                strncat(want, ADDED[k].info, sizeof want - strlen(want) - 1);
            }
        assert_string_equal(sqlite3_column_text(sa, 0), want);
        sqlite3_finalize(sa);
        sqlite3_finalize(sb);
    }
    /* the indexes of version 1's tables; the added tables bring their own, and version 10 adds
     * two on trades (a home's trades by participant) */
    assert_int_equal(raw_int(a, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                                "tbl_name NOT IN ('preferences', 'preference_steps', 'interval_timing') "
                                "AND name NOT IN ('trades_by_seller', 'trades_by_buyer')"),
                     raw_int(b, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"));
    sqlite3_close(a);
    sqlite3_close(b);
    drop(&s);
    drop(&fixture);
}

/* The release before created most tables lazily: the registry's when `mgx participant add`
 * ran, the ledger's and settle_state when settlement started, solana_outbox* with [solana].
 * Such a file holds a subset; the migration adds the rest and keeps what is there. */
static void test_old_file_with_some_tables(void **state)
{
    (void)state;
    static const char *const missing[] = {"ledger_meta",  "ledger_block",  "ledger_tx",
                                          "ledger_node",  "settle_state",  "solana_outbox",
                                          "solana_outbox_superseded"};
    char path[512];
    snprintf(path, sizeof path, "%s/no-settlement.db", dir);
    copy_file(FIXTURE, path);
    sqlite3 *raw = raw_open(path, SQLITE_OPEN_READWRITE);
    for (size_t i = sizeof missing / sizeof missing[0]; i-- > 0;) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP TABLE %s", missing[i]);
        assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_close(raw);
    snapshot before, after;
    take(path, &before);
    assert_int_equal(before.n, N_TABLES - sizeof missing / sizeof missing[0]);
    open_close(path);
    take(path, &after);
    assert_kept(&before, &after);
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        assert_int_equal(after.rows[find(&after, missing[i])], 0);
    drop(&before);
    drop(&after);

    /* only the registry, as `mgx participant add` left a new file */
    snprintf(path, sizeof path, "%s/registry-only.db", dir);
    raw = raw_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    assert_int_equal(
        sqlite3_exec(raw,
                     "CREATE TABLE participants("
                     " id TEXT PRIMARY KEY NOT NULL CHECK(length(id) BETWEEN 1 AND 63),"
                     " pubkey BLOB NOT NULL UNIQUE CHECK(length(pubkey) = 32),"
                     " meter_id TEXT UNIQUE CHECK(meter_id IS NULL OR length(meter_id) BETWEEN"
                     " 1 AND 63),"
                     " role TEXT NOT NULL CHECK(role IN ('home','controller','observer')),"
                     " added_s INTEGER NOT NULL) WITHOUT ROWID;"
                     "INSERT INTO participants VALUES('home-1', zeroblob(32), 'meter-1', 'home',"
                     " 1700000000);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(raw);
    take(path, &before);
    ctl_db *db = NULL;
    assert_int_equal(ctl_registry_open(path, &db, NULL, 0), CTL_REG_OK);
    ctl_participant p;
    assert_int_equal(ctl_registry_lookup(db, "home-1", &p), CTL_REG_OK);
    assert_string_equal(p.meter_id, "meter-1");
    ctl_db_close(db);
    take(path, &after);
    assert_int_equal(after.user_version, CTL_DB_VERSION);
    assert_kept(&before, &after);
    {
        sqlite3 *m = raw_open(path, SQLITE_OPEN_READONLY);
        assert_int_equal(raw_int(m, "SELECT count(*) FROM ledger_tx WHERE salt IS NOT NULL"), 0);
        sqlite3_close(m);
    }
    drop(&before);
    drop(&after);
}

static void test_newer_file_is_refused(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/future.db", dir);
    remove(path);
    open_close(path);
    sqlite3 *raw = raw_open(path, SQLITE_OPEN_READWRITE);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", CTL_DB_VERSION + 1);
    assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    ctl_db *db = (ctl_db *)1;
    char err[512] = "";
    assert_int_equal(ctl_db_open(path, &db, err, sizeof err), CTL_DB_E_VERSION);
    assert_null(db);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "newer"));
    char want[64];
    snprintf(want, sizeof want, "version %d", CTL_DB_VERSION + 1);
    assert_non_null(strstr(err, want));
    /* the store and the registry refuse it the same way, saying why */
    ctl_store *s = NULL;
    ctl_store_identity id = {"demo", 900, 0};
    err[0] = '\0';
    assert_int_equal(ctl_store_open(path, &id, &s, err, sizeof err), CTL_ST_E_SCHEMA);
    assert_null(s);
    assert_non_null(strstr(err, "newer"));
    assert_int_equal(ctl_registry_open(path, &db, NULL, 0), CTL_REG_E_DB);
    /* and the file is left as it was */
    raw = raw_open(path, SQLITE_OPEN_READONLY);
    assert_int_equal(raw_int(raw, "PRAGMA user_version"), CTL_DB_VERSION + 1);
    sqlite3_close(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_migrates_keeping_every_row),
        cmocka_unit_test(test_fresh_file_gets_every_table),
        cmocka_unit_test(test_old_file_with_some_tables),
        cmocka_unit_test(test_newer_file_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
