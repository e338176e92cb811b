/*
 * The one identifier rule (controller/src/ident.h) and everything that must follow it: the bus
 * topic builders (bus_id_valid), the meters library's [meter ID] sections, the order format
 * (JSON and binary) and the participant registry. Boundary cases: 0, 1, 63 and 64 bytes, every
 * byte value, and the '.' that older versions of the order format and registry allowed.
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

#include "broker.h" /* tst_tmpdir */
#include "bus/bus.h"
#include "common/ident.h"
#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "orders_fixture.h"
#include "db/registry.h"

static int allowed(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

/* An id of n copies of c, NUL-terminated, in a static buffer. */
static const char *repeat(char c, size_t n)
{
    static char buf[256];
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* Does the meters library accept id as the name of a [meter ID] section? */
static int meters_accept(const char *id)
{
    mtr_config *cfg = mtr_config_new();
    assert_non_null(cfg);
    char section[300], err[300];
    snprintf(section, sizeof section, "meter %s", id);
    int rc = mtr_config_handle(cfg, section, NULL, NULL, 1, err, sizeof err);
    if (rc == MTR_OK)
        rc = mtr_config_handle(cfg, section, "profile", "sdm630", 2, err, sizeof err);
    mtr_config_free(cfg);
    return rc == MTR_OK;
}

static void lengths(void **state)
{
    (void)state;
    assert_int_equal(CTL_ID_MAX, 63);
    assert_false(ctl_id_valid(NULL));
    assert_false(ctl_id_valid(""));
    assert_true(ctl_id_valid("a"));
    assert_true(ctl_id_valid(repeat('x', 62)));
    assert_true(ctl_id_valid(repeat('x', 63)));
    assert_false(ctl_id_valid(repeat('x', 64)));
    assert_false(ctl_id_valid(repeat('x', 200)));
    /* the bus and the meters say the same at each boundary */
    size_t ns[] = {1, 62, 63, 64, 65};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        const char *id = repeat('m', ns[i]);
        int want = ns[i] <= 63;
        assert_int_equal(ctl_id_valid(id), want);
        assert_int_equal(bus_id_valid(id), want);
        assert_int_equal(meters_accept(id), want);
    }
}

/* Every byte value in the middle of an id: allowed exactly for A-Z a-z 0-9 _ -, everywhere. */
static void every_byte(void **state)
{
    (void)state;
    int accepted = 0;
    for (int c = 1; c < 256; c++) {
        char id[4] = {'a', (char)c, 'b', '\0'};
        int want = allowed(c);
        if (ctl_id_valid(id) != want || bus_id_valid(id) != want)
            fail_msg("byte 0x%02x: ctl %d bus %d, want %d", c, ctl_id_valid(id),
                     bus_id_valid(id), want);
        if (c != ']' && meters_accept(id) != want) /* ']' would end the section name */
            fail_msg("byte 0x%02x: meters %d, want %d", c, meters_accept(id), want);
        accepted += want;
    }
    assert_int_equal(accepted, 26 + 26 + 10 + 2);
    /* the characters people try, one by one */
    const char *bad[] = {"home.7", "home/7", "home+7", "home#7", "home 7", "home$7", "h\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(ctl_id_valid(bad[i]));
    assert_true(ctl_id_valid("Home_7-b"));
}

/* Topic builders refuse what the rule refuses, so no topic can be made from a bad id. */
static void topics(void **state)
{
    (void)state;
    char t[BUS_TOPIC_MAX];
    assert_int_equal(bus_topic_order(t, sizeof t, "elm", repeat('p', 63)), BUS_OK);
    assert_int_equal(bus_topic_order(t, sizeof t, "elm", repeat('p', 64)), BUS_E_INVAL);
    assert_int_equal(bus_topic_order(t, sizeof t, "elm", "home.7"), BUS_E_INVAL);
    assert_int_equal(bus_topic_receipt(t, sizeof t, "el.m", "home-7"), BUS_E_INVAL);
    char c[BUS_ID_MAX], k[BUS_ID_MAX], id[BUS_ID_MAX], leaf[BUS_ID_MAX];
    assert_int_equal(bus_topic_parse("mgx/v1/elm/order/home.7", c, k, id, leaf), BUS_E_INVAL);
}

/* The order format: a JSON order from "home.07" or with a 64-byte id is malformed, one with a
 * 63-byte id is fine, and neither can be encoded for signing. */
static void orders(void **state)
{
    (void)state;
    ctl_order_msg m;
    tst_example_order(&m);
    char json[CTL_ORDER_JSON_MAX], detail[CTL_DETAIL_MAX];
    size_t len;
    assert_int_equal(ctl_order_to_json(&m, json, sizeof json, &len), CTL_R_OK);
    char *at = strstr(json, "\"home-07\"");
    assert_non_null(at);
    at[5] = '.'; /* "home.07" */
    ctl_order_msg back;
    assert_int_equal(ctl_order_from_json(json, len, &back, detail, sizeof detail),
                     CTL_R_MALFORMED);
    assert_non_null(strstr(detail, "participant"));

    memcpy(m.participant, repeat('p', 63), 64); /* 63 bytes and the NUL */
    assert_int_equal(ctl_order_to_json(&m, json, sizeof json, &len), CTL_R_OK);
    assert_int_equal(ctl_order_from_json(json, len, &back, detail, sizeof detail), CTL_R_OK);
    assert_string_equal(back.participant, m.participant);
    uint8_t enc[CTL_ORDER_ENC_MAX];
    assert_int_equal(ctl_order_encode(&m, enc, &len), CTL_R_OK);

    snprintf(m.participant, sizeof m.participant, "%s", "home.07");
    assert_int_equal(ctl_order_validate(&m, detail, sizeof detail), CTL_R_MALFORMED);
    assert_int_equal(ctl_order_encode(&m, enc, &len), CTL_R_MALFORMED);
}

static ctl_participant participant(const char *id, const char *meter, uint8_t key_byte)
{
    ctl_participant p;
    memset(&p, 0, sizeof p);
    assert_true(strlen(id) < sizeof p.id && strlen(meter) < sizeof p.meter_id);
    memcpy(p.id, id, strlen(id) + 1);
    memcpy(p.meter_id, meter, strlen(meter) + 1);
    memset(p.pubkey, key_byte, sizeof p.pubkey);
    p.role = CTL_ROLE_HOME;
    return p;
}

static int count_rows(const ctl_participant *p, void *ctx)
{
    (void)p;
    (*(int *)ctx)++;
    return 0;
}

/*
 * The registry takes exactly the ids the bus can carry. A registry written by an older version
 * may hold "home.7" or a 64-byte id: listing skips those rows and says so, lookups never find
 * them, and remove clears them out.
 */
static void registry(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("ident-reg");
    char path[512];
    snprintf(path, sizeof path, "%s/c.db", dir);
    ctl_db *db = NULL;
    assert_int_equal(ctl_registry_open(path, &db, NULL, 0), CTL_REG_OK);
    ctl_participant p = participant(repeat('h', 63), "meter-1", 1);
    assert_int_equal(ctl_registry_add(db, &p, 1000), CTL_REG_OK);
    p = participant("home.7", "meter-2", 2);
    assert_int_equal(ctl_registry_add(db, &p, 1000), CTL_REG_E_INVAL);
    p = participant("home-7", "meter.2", 2);
    assert_int_equal(ctl_registry_add(db, &p, 1000), CTL_REG_E_INVAL);
    p = participant("home-7", "meter-2", 2);
    assert_int_equal(ctl_registry_add(db, &p, 1000), CTL_REG_OK);

    /* rows as an older version could have written them (its table allowed 64 bytes) */
    assert_int_equal(ctl_db_exec(db,
                                  "DROP TABLE participants;"
                                  "CREATE TABLE participants("
                                  " id TEXT PRIMARY KEY NOT NULL,"
                                  " pubkey BLOB NOT NULL UNIQUE, meter_id TEXT UNIQUE,"
                                  " role TEXT NOT NULL, added_s INTEGER NOT NULL) WITHOUT ROWID;"),
                     SQLITE_OK);
    p = participant("home-7", "meter-2", 2);
    assert_int_equal(ctl_registry_add(db, &p, 1000), CTL_REG_OK);
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO participants VALUES('home.8', zeroblob(32), 'meter-8', 'home', 1);"
             "INSERT INTO participants VALUES('%s', randomblob(32), 'meter-9', 'home', 1);",
             repeat('x', 64));
    assert_int_equal(ctl_db_exec(db, sql), SQLITE_OK);
    int n = 0;
    assert_int_equal(ctl_registry_list(db, count_rows, &n), CTL_REG_E_BAD_ROW);
    assert_int_equal(n, 1); /* home-7 is still listed */
    assert_non_null(strstr(ctl_registry_strerror(CTL_REG_E_BAD_ROW), "remove them"));
    ctl_participant out;
    assert_int_equal(ctl_registry_lookup(db, "home.8", &out), CTL_REG_E_INVAL);
    assert_int_equal(ctl_registry_lookup_meter(db, "meter-8", &out), CTL_REG_E_SCHEMA);
    assert_int_equal(ctl_registry_remove(db, "home.8"), CTL_REG_OK);
    assert_int_equal(ctl_registry_remove(db, repeat('x', 64)), CTL_REG_OK);
    assert_int_equal(ctl_registry_remove(db, repeat('x', 65)), CTL_REG_E_INVAL);
    assert_int_equal(ctl_registry_remove(db, "home/8"), CTL_REG_E_INVAL);
    n = 0;
    assert_int_equal(ctl_registry_list(db, count_rows, &n), CTL_REG_OK);
    assert_int_equal(n, 1);
    ctl_db_close(db);
    tst_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lengths),  cmocka_unit_test(every_byte), cmocka_unit_test(topics),
        cmocka_unit_test(orders),   cmocka_unit_test(registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
