/*
 * The agent's config loader: the shipped example loads with the documented values and derived
 * defaults, and every kind of mistake is reported with file, line and key.
 */
#include "agent_config.h"

#include "broker.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_example_loads(void **state)
{
    (void)state;
    agc_config c;
    char err[512] = "";
    if (agc_load(MGX_SOURCE_DIR "/config/agent-example.ini", &c, err, sizeof err))
        fail_msg("%s", err);
    assert_string_equal(c.community, "demo");
    assert_string_equal(c.participant, "h-017");
    assert_string_equal(c.username, "h-017");      /* derived */
    assert_string_equal(c.client_id, "h-017-agent"); /* derived */
    assert_string_equal(c.meter_id, "h-017");
    assert_int_equal(c.port, 8883);
    assert_int_equal(c.strategy.kind, SIM_AGENT_MARKUP);
    assert_true(c.strategy.markup == 0.1);
    assert_int_equal(c.tariffs.feed_in_uc_per_kwh, 80000);
    assert_int_equal(c.tariffs.retail_uc_per_kwh, 300000);
    assert_int_equal(c.tariffs.network_fee_uc_per_kwh, 20000);
    assert_int_equal(c.interval_s, 900);
    assert_int_equal(c.gate_closure_s, 300);
    assert_int_equal(c.resend_s, 5); /* default */
}

/* Loads text from a temporary file; returns agc_load's result and the message. */
static int load(const char *text, char *err, size_t len)
{
    char *dir = tst_tmpdir("agentcfg");
    assert_non_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/a.ini", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    agc_config c;
    int rc = agc_load(path, &c, err, len);
    /* keep only the part after the path, so expectations need not know it */
    const char *tail = strstr(err, "a.ini");
    if (tail)
        memmove(err, tail, strlen(tail) + 1);
    tst_rmtree(dir);
    free(dir);
    return rc;
}

#define BASE                                                                                   \
    "[bus]\ncommunity = c\n[agent]\nparticipant = h1\nkey_file = k\noutbox = o\n"            \
    "feed_in_uc_per_kwh = 1\nretail_uc_per_kwh = 2\n"

static void test_errors_name_line_and_key(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(load(BASE, err, sizeof err), 0);
    assert_int_equal(load(BASE "strategy = greedy\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini:9: strategy: 'greedy' is not truthful, zic, markup or zip");
    assert_int_equal(load(BASE "interval_s = 15m\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini:9: interval_s: '15m' is not an integer in 1..86400");
    assert_int_equal(load(BASE "markup = 1.5\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini:9: markup: '1.5' is not a number in 0..1");
    assert_int_equal(load(BASE "colour = red\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini:9: colour: unknown key in [agent]");
    assert_int_equal(load("[bus]\ncommunity = c/d\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini:2: community: 'c/d' is not an id (1..63 of A-Z a-z 0-9 _ -)");
    assert_int_equal(load(BASE "[meter]\nx = 1\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini:10: [meter]: unknown section (expected [bus] or [agent])");
    assert_int_equal(load(BASE "this is not ini\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini:9: syntax error: expected [section] or key = value");
    /* relations and required keys, found after the whole file is read */
    assert_int_equal(load("[bus]\ncommunity = c\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini: [agent] participant is required");
    assert_int_equal(load(BASE "retail_uc_per_kwh = 0\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini: [agent] retail_uc_per_kwh is below feed_in_uc_per_kwh");
    assert_int_equal(load(BASE "[bus]\ncert_file = x\n", err, sizeof err), -1);
    assert_string_equal(err, "a.ini: [bus] cert_file and key_file go together");
    assert_int_equal(load("[bus]\ncommunity = c\n[agent]\nparticipant = h1\nkey_file = k\n"
                          "outbox = o\n",
                          err, sizeof err),
                     -1);
    assert_true(strstr(err, "feed_in_uc_per_kwh and retail_uc_per_kwh are required") != NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_loads),
        cmocka_unit_test(test_errors_name_line_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
