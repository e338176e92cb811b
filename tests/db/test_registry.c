/*
 * The participant registry on real SQLite files: add, look up, list in id order, remove;
 * conflicts on id, key and meter change nothing; a second connection (a running daemon) sees
 * changes at once; the file is in WAL mode; a table with another layout is refused.
 */
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
#include "db/registry.h"

static ctl_db *open_db(const char *name)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/%s", tst_dir, name);
    ctl_db *db = NULL;
    int rc = ctl_registry_open(path, &db, err, sizeof err);
    if (rc)
        fail_msg("open %s: %s", path, err);
    return db;
}

static ctl_participant make(const char *id, uint8_t key_byte, const char *meter, ctl_role role)
{
    ctl_participant p;
    memset(&p, 0, sizeof p);
    snprintf(p.id, sizeof p.id, "%s", id);
    memset(p.pubkey, key_byte, sizeof p.pubkey);
    snprintf(p.meter_id, sizeof p.meter_id, "%s", meter);
    p.role = role;
    return p;
}

/* Adds the participant make() builds, at time added_s; returns ctl_registry_add's code. */
static int add(ctl_db *db, const char *id, uint8_t key_byte, const char *meter, ctl_role role,
               int64_t added_s)
{
    ctl_participant p = make(id, key_byte, meter, role);
    return ctl_registry_add(db, &p, added_s);
}

typedef struct {
    char ids[8][CTL_ID_MAX + 1];
    int n;
} seen;

static int collect(const ctl_participant *p, void *ctx)
{
    seen *s = ctx;
    if (s->n >= 8)
        return 99;
    snprintf(s->ids[s->n++], sizeof s->ids[0], "%s", p->id);
    return 0;
}

static void test_add_lookup_list_remove(void **state)
{
    (void)state;
    ctl_db *db = open_db("a.db");
    assert_int_equal(add(db, "home-2", 2, "meter-2", CTL_ROLE_HOME, 1700000000), CTL_REG_OK);
    assert_int_equal(add(db, "home-1", 1, "meter-1", CTL_ROLE_HOME, 1700000001), CTL_REG_OK);
    assert_int_equal(add(db, "Z-ctl", 9, "", CTL_ROLE_CONTROLLER, 1700000002), CTL_REG_OK);
    assert_int_equal(add(db, "obs", 8, "", CTL_ROLE_OBSERVER, 1700000003), CTL_REG_OK);
    assert_int_equal(ctl_registry_count(db), 4);

    ctl_participant got;
    assert_int_equal(ctl_registry_lookup(db, "home-1", &got), CTL_REG_OK);
    assert_string_equal(got.id, "home-1");
    assert_string_equal(got.meter_id, "meter-1");
    assert_int_equal(got.role, CTL_ROLE_HOME);
    assert_int_equal(got.added_s, 1700000001);
    uint8_t k1[32];
    memset(k1, 1, 32);
    assert_memory_equal(got.pubkey, k1, 32);
    assert_int_equal(ctl_registry_lookup_meter(db, "meter-2", &got), CTL_REG_OK);
    assert_string_equal(got.id, "home-2");
    assert_int_equal(ctl_registry_lookup(db, "Z-ctl", &got), CTL_REG_OK);
    assert_string_equal(got.meter_id, "");
    assert_int_equal(got.role, CTL_ROLE_CONTROLLER);
    assert_int_equal(ctl_registry_lookup(db, "home-3", &got), CTL_REG_E_NOT_FOUND);
    assert_int_equal(ctl_registry_lookup_meter(db, "meter-3", &got), CTL_REG_E_NOT_FOUND);

    /* byte order: upper case before lower case */
    seen s = {0};
    assert_int_equal(ctl_registry_list(db, collect, &s), CTL_REG_OK);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.ids[0], "Z-ctl");
    assert_string_equal(s.ids[1], "home-1");
    assert_string_equal(s.ids[2], "home-2");
    assert_string_equal(s.ids[3], "obs");

    assert_int_equal(ctl_registry_remove(db, "home-1"), CTL_REG_OK);
    assert_int_equal(ctl_registry_remove(db, "home-1"), CTL_REG_E_NOT_FOUND);
    assert_int_equal(ctl_registry_lookup(db, "home-1", &got), CTL_REG_E_NOT_FOUND);
    assert_int_equal(ctl_registry_count(db), 3);
    /* the removed participant's key and meter are free again */
    assert_int_equal(add(db, "home-1b", 1, "meter-1", CTL_ROLE_HOME, 1700000004), CTL_REG_OK);
    ctl_db_close(db);
}

static void test_conflicts_change_nothing(void **state)
{
    (void)state;
    ctl_db *db = open_db("b.db");
    ctl_participant a = make("home-a", 0xaa, "meter-a", CTL_ROLE_HOME);
    assert_int_equal(ctl_registry_add(db, &a, 1), CTL_REG_OK);
    assert_int_equal(add(db, "home-a", 0xbb, "meter-b", CTL_ROLE_HOME, 2), CTL_REG_E_EXISTS);
    assert_int_equal(add(db, "home-b", 0xaa, "meter-b", CTL_ROLE_HOME, 2), CTL_REG_E_KEY_USED);
    assert_int_equal(add(db, "home-b", 0xbb, "meter-a", CTL_ROLE_HOME, 2), CTL_REG_E_METER_USED);
    assert_int_equal(ctl_registry_count(db), 1);
    ctl_participant got;
    assert_int_equal(ctl_registry_lookup(db, "home-a", &got), CTL_REG_OK);
    assert_memory_equal(&got.pubkey, &a.pubkey, 32);
    assert_int_equal(got.added_s, 1);
    /* several participants without a meter are fine */
    assert_int_equal(add(db, "obs-1", 1, "", CTL_ROLE_OBSERVER, 3), CTL_REG_OK);
    assert_int_equal(add(db, "obs-2", 2, "", CTL_ROLE_OBSERVER, 3), CTL_REG_OK);
    /* invalid input */
    assert_int_equal(add(db, "bad/id", 3, "", CTL_ROLE_HOME, 3), CTL_REG_E_INVAL);
    assert_int_equal(add(db, "ok", 3, "bad meter", CTL_ROLE_HOME, 3), CTL_REG_E_INVAL);
    assert_int_equal(add(db, "ok", 3, "", (ctl_role)7, 3), CTL_REG_E_INVAL);
    assert_int_equal(ctl_registry_remove(db, "bad/id"), CTL_REG_E_INVAL);
    assert_int_equal(ctl_registry_count(db), 3);
    ctl_db_close(db);
}

/* The daemon's connection sees the CLI's changes at once; both can write (WAL, busy timeout). */
static void test_two_connections(void **state)
{
    (void)state;
    ctl_db *cli = open_db("c.db"), *daemon = open_db("c.db");
    ctl_participant got;
    assert_int_equal(ctl_registry_lookup(daemon, "home-x", &got), CTL_REG_E_NOT_FOUND);
    assert_int_equal(add(cli, "home-x", 7, "meter-x", CTL_ROLE_HOME, 5), CTL_REG_OK);
    assert_int_equal(ctl_registry_lookup(daemon, "home-x", &got), CTL_REG_OK);
    /* the daemon holds a read transaction open (as during a long query): writes still work */
    assert_int_equal(ctl_db_exec(daemon, "BEGIN; SELECT count(*) FROM participants;"),
                     SQLITE_OK);
    assert_int_equal(add(cli, "home-y", 8, "", CTL_ROLE_HOME, 6), CTL_REG_OK);
    assert_int_equal(ctl_db_exec(daemon, "COMMIT"), SQLITE_OK);
    assert_int_equal(ctl_registry_count(daemon), 2);
    assert_int_equal(ctl_registry_remove(daemon, "home-x"), CTL_REG_OK);
    assert_int_equal(ctl_registry_lookup(cli, "home-x", &got), CTL_REG_E_NOT_FOUND);

    sqlite3_stmt *st;
    assert_int_equal(ctl_db_prepare(cli, "PRAGMA journal_mode", &st), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    /* init is idempotent */
    assert_int_equal(ctl_registry_init(cli), CTL_REG_OK);
    assert_int_equal(ctl_registry_count(cli), 1);
    ctl_db_close(cli);
    ctl_db_close(daemon);
}

static void test_foreign_schema(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/d.db", tst_dir);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "CREATE TABLE participants(id TEXT, name TEXT)", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    /* the community database's opener finds the foreign layout before it migrates the file */
    ctl_db *db = NULL;
    char err[512] = "";
    assert_int_equal(ctl_registry_open(path, &db, err, sizeof err), CTL_REG_E_SCHEMA);
    assert_null(db);
    assert_non_null(strstr(err, "participants"));
    /* and the registry's own check, on a file whose table was replaced after it was opened */
    snprintf(path, sizeof path, "%s/d2.db", tst_dir);
    assert_int_equal(ctl_db_open(path, &db, NULL, 0), CTL_DB_OK);
    assert_int_equal(ctl_db_exec(db, "DROP TABLE participants;"
                                     "CREATE TABLE participants(id TEXT, name TEXT)"),
                     SQLITE_OK);
    assert_int_equal(ctl_registry_init(db), CTL_REG_E_SCHEMA);
    ctl_db_close(db);
    /* a file that is not a database */
    snprintf(path, sizeof path, "%s/e.db", tst_dir);
    FILE *f = fopen(path, "w");
    fputs("this is not sqlite, but it is long enough to have a header of sorts..........\n"
          "...............................................................................\n",
          f);
    fclose(f);
    db = NULL;
    err[0] = '\0';
    assert_int_equal(ctl_registry_open(path, &db, err, sizeof err), CTL_REG_E_DB);
    assert_null(db); /* no handle to a file that is not ours; the reason is in err */
    assert_non_null(strstr(err, path));
    for (int c = 0; c >= -7; c--)
        assert_string_not_equal(ctl_registry_strerror(c), "unknown registry error");
    assert_int_equal(ctl_role_parse("home"), CTL_ROLE_HOME);
    assert_int_equal(ctl_role_parse("observer"), CTL_ROLE_OBSERVER);
    assert_int_equal(ctl_role_parse("admin"), -1);
    assert_string_equal(ctl_role_name(3), "boundary"); /* issue 12, trust layer 3 */
    assert_int_equal(ctl_role_parse("boundary"), CTL_ROLE_BOUNDARY);
    assert_null(ctl_role_name(4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_lookup_list_remove),
        cmocka_unit_test(test_conflicts_change_nothing),
        cmocka_unit_test(test_two_connections),
        cmocka_unit_test(test_foreign_schema),
    };
    return cmocka_run_group_tests(tests, tst_dir_setup, tst_dir_teardown);
}
