/*
 * The [witness] config of `mgx witness` (controller/witness/witness_config.c): the shipped
 * example loads with its paths taken from its folder; a missing key, a repeated key, a bad
 * name, an unknown key, state equal to out and a second [witness] section are errors naming
 * their line.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <stdlib.h>

#include "witness/witness.h"

static void example_loads(void **state)
{
    (void)state;
    ctl_witness_config c;
    char err[1024] = "";
    int rc =
        ctl_witness_config_load(MGX_SOURCE_DIR "/config/witness-example.ini", &c, err, sizeof err);
    if (rc != CFG_OK)
        fail_msg("%s", err);
    assert_string_equal(c.name, "witness.example.org/alice");
    assert_string_equal(c.key_file, MGX_SOURCE_DIR "/config/alice-witness.key");
    assert_string_equal(c.ledger, "/var/lib/mgx/controller.db");
    assert_string_equal(c.state, MGX_SOURCE_DIR "/config/alice.state");
    assert_string_equal(c.out, MGX_SOURCE_DIR "/config/alice.cosigned");
    assert_int_equal(c.poll_s, 10);
    assert_int_equal(c.meter_rules.max_gap_ms, 300000); /* the controller's defaults */
    assert_int_equal(c.meter_rules.max_power_w, 100000);
}

static const char BASE[] = "[witness]\nname = w.example/1\nkey_file = w.key\nledger = c.db\n"
                           "log_key_file = k.vkey\nstate = s\nout = o\n";

static void expect_error(const char *text, const char *want)
{
    char path[] = "/tmp/mgx-witness-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    ctl_witness_config c;
    char err[1024] = "";
    int rc = ctl_witness_config_load(path, &c, err, sizeof err);
    remove(path);
    assert_int_not_equal(rc, CFG_OK);
    if (!strstr(err, want))
        fail_msg("expected '%s' in: %s", want, err);
}

/* The controller's meter rules, given: seconds into ms, 0 turning the power check off. */
static void meter_rules(void **state)
{
    (void)state;
    char path[] = "/tmp/mgx-witness-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "%sreclear = pay-as-bid\nreading_max_gap_s = 60\nmeter_max_power_w = 0\n", BASE);
    fclose(f);
    ctl_witness_config c;
    char err[1024] = "";
    int rc = ctl_witness_config_load(path, &c, err, sizeof err);
    remove(path);
    if (rc != CFG_OK)
        fail_msg("%s", err);
    assert_int_equal(c.reclear, 1);
    assert_int_equal(c.mechanism, MKT_PAY_AS_BID);
    assert_int_equal(c.meter_rules.max_gap_ms, 60000);
    assert_int_equal(c.meter_rules.max_power_w, 0);
    ctl_witness_config_clear(&c);
}

static void errors(void **state)
{
    (void)state;
    char text[1024];
    expect_error("[witness]\nname = w\nkey_file = w.key\n", "[witness] needs ledger");
    snprintf(text, sizeof text, "%sname = again\n", BASE);
    expect_error(text, ":8: name: given twice");
    expect_error("[witness]\nname = a b\n", ":2: ");
    expect_error("[witness]\nname = a+b\n", "name: 1-128 printable characters");
    snprintf(text, sizeof text, "%scolour = blue\n", BASE);
    expect_error(text, "colour");
    expect_error("[witness]\nname = w\nkey_file = w.key\nledger = c.db\nlog_key_file = k\n"
                 "state = same\nout = same\n",
                 "state and out must differ");
    snprintf(text, sizeof text, "%s[witness]\n", BASE);
    expect_error(text, "[witness] given twice");
    snprintf(text, sizeof text, "%spoll_s = 0\n", BASE);
    expect_error(text, "poll_s");
    snprintf(text, sizeof text, "%sreading_max_gap_s = 0\n", BASE);
    expect_error(text, "reading_max_gap_s");
    snprintf(text, sizeof text, "%smeter_max_power_w = -1\n", BASE);
    expect_error(text, "meter_max_power_w");
    expect_error("", "no [witness] section");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(example_loads),
        cmocka_unit_test(meter_rules),
        cmocka_unit_test(errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
