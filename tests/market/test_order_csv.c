/*
 * Tests of the orders CSV reader (mgx/order_csv.h): what it accepts (BOM, CRLF, comments,
 * blank lines, quoting, spaces around fields), how rows become orders (names sorted to ids,
 * rows of one participant grouped into a curve in line order, line mapping), and every
 * rejection with its exact line, column and a message a user can act on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mgx/order_csv.h"

#define HDR "participant,side,energy_wh,price_uc_per_kwh\n"

static mkt_order_set *parse_ok(const char *csv)
{
    mkt_order_set *set = NULL;
    mkt_csv_error err;
    int rc = mkt_csv_parse(csv, strlen(csv), 100, 1000, &set, &err);
    if (rc != MKT_OK)
        fail_msg("parse failed at %zu:%zu: %s", err.line, err.column, err.message);
    assert_non_null(set);
    return set;
}

/* Expects a rejection at line:column whose message contains needle. */
static void parse_err(const char *csv, size_t max_orders, size_t max_rows, int want_rc,
                      size_t line, size_t column, const char *needle)
{
    mkt_order_set *set = (mkt_order_set *)&set; /* must be reset to NULL */
    mkt_csv_error err;
    int rc = mkt_csv_parse(csv, strlen(csv), max_orders, max_rows, &set, &err);
    if (rc != want_rc || err.line != line || err.column != column ||
        !strstr(err.message, needle))
        fail_msg("got rc %d at %zu:%zu '%s'; want rc %d at %zu:%zu containing '%s'", rc, err.line,
                 err.column, err.message, want_rc, line, column, needle);
    assert_null(set);
}

static void expect_step(const mkt_order *o, uint32_t k, int64_t e, int64_t p)
{
    assert_true(k < o->n_steps);
    assert_int_equal(o->steps[k].energy_wh, e);
    assert_int_equal(o->steps[k].price_uc_per_kwh, p);
}

/* Names map to ids in byte order; a participant's rows form its curve in line order, wherever
 * they are in the file; lines (with comments and blank lines counted) map back. */
static void grouping_and_lines(void **state)
{
    (void)state;
    const char *csv = "# orders for one interval\n" /* line 1 */
                      HDR                            /* 2 */
                      "carol,sell,300,40\n"          /* 3 */
                      "alice,buy,100,90\n"           /* 4 */
                      "\n"                           /* 5 */
                      "bob,sell,200,50\n"            /* 6 */
                      "alice,buy,150,80\n"           /* 7 */
                      "# a comment\n"                /* 8 */
                      "Zed,buy,1,0\n"                /* 9: 'Z' sorts before 'a' */
                      "carol,sell,10,45\n";          /* 10 */
    mkt_order_set *set = parse_ok(csv);
    size_t n;
    const mkt_order *o = mkt_order_set_orders(set, &n);
    assert_int_equal(n, 4);
    const char *names[] = {"Zed", "alice", "bob", "carol"};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(o[i].participant, i);
        assert_string_equal(mkt_order_set_name(set, i), names[i]);
    }
    assert_null(mkt_order_set_name(set, 4));
    assert_int_equal(o[0].side, MKT_BUY);
    assert_int_equal(o[0].n_steps, 1);
    expect_step(&o[0], 0, 1, 0);
    assert_int_equal(o[1].side, MKT_BUY);
    assert_int_equal(o[1].n_steps, 2);
    expect_step(&o[1], 0, 100, 90);
    expect_step(&o[1], 1, 150, 80);
    assert_int_equal(o[2].side, MKT_SELL);
    expect_step(&o[2], 0, 200, 50);
    assert_int_equal(o[3].n_steps, 2);
    expect_step(&o[3], 0, 300, 40);
    expect_step(&o[3], 1, 10, 45);
    assert_int_equal(mkt_order_set_line(set, 0, 0), 9);
    assert_int_equal(mkt_order_set_line(set, 1, 0), 4);
    assert_int_equal(mkt_order_set_line(set, 1, 1), 7);
    assert_int_equal(mkt_order_set_line(set, 1, -1), 4);
    assert_int_equal(mkt_order_set_line(set, 3, 1), 10);
    assert_int_equal(mkt_order_set_line(set, 3, -1), 3);
    assert_int_equal(mkt_order_set_line(set, 4, 0), 0); /* no such order */
    mkt_order_set_free(set);
}

/* The same rows in another order give the same orders (ids do not depend on file order). */
static void shuffled_rows_same_orders(void **state)
{
    (void)state;
    mkt_order_set *a = parse_ok(HDR "b,sell,5,1\na,buy,7,9\nb,sell,6,2\n");
    mkt_order_set *b = parse_ok(HDR "a,buy,7,9\nb,sell,5,1\nb,sell,6,2\n");
    size_t na, nb;
    const mkt_order *oa = mkt_order_set_orders(a, &na), *ob = mkt_order_set_orders(b, &nb);
    assert_int_equal(na, 2);
    assert_int_equal(nb, 2);
    assert_memory_equal(oa, ob, 2 * sizeof *oa);
    mkt_order_set_free(a);
    mkt_order_set_free(b);
}

/* BOM, CRLF, spaces, case of the side, '+' sign, quoting with commas and doubled quotes. */
static void lenient_syntax(void **state)
{
    (void)state;
    const char *csv = "\xEF\xBB\xBF"
                      "participant,side,energy_wh,price_uc_per_kwh\r\n"
                      "  \"Smith, J.\" , SELL ,  +10 , 0 \r\n"
                      "\"say \"\"hi\"\"\",Buy,20,\"30\"\r\n"
                      "\r\n"
                      "   # indented comment\r\n"
                      "x,buy,1,1"; /* no final line end */
    mkt_order_set *set = parse_ok(csv);
    size_t n;
    const mkt_order *o = mkt_order_set_orders(set, &n);
    assert_int_equal(n, 3);
    assert_string_equal(mkt_order_set_name(set, 0), "Smith, J.");
    assert_string_equal(mkt_order_set_name(set, 1), "say \"hi\"");
    assert_string_equal(mkt_order_set_name(set, 2), "x");
    assert_int_equal(o[0].side, MKT_SELL);
    expect_step(&o[0], 0, 10, 0);
    assert_int_equal(o[1].side, MKT_BUY);
    expect_step(&o[1], 0, 20, 30);
    assert_int_equal(mkt_order_set_line(set, 0, 0), 2);
    assert_int_equal(mkt_order_set_line(set, 2, 0), 6);
    mkt_order_set_free(set);

    /* a header alone is an empty, valid book; so are the limits themselves */
    set = parse_ok(HDR);
    assert_int_equal((mkt_order_set_orders(set, &n), n), 0);
    mkt_order_set_free(set);
    set = parse_ok(HDR "a,sell,1000000000000,1000000000000\n");
    o = mkt_order_set_orders(set, &n);
    expect_step(&o[0], 0, INT64_C(1000000000000), INT64_C(1000000000000));
    mkt_order_set_free(set);
}

/* Quoted content is kept byte for byte: "bob " and "bob" are different participants. */
static void quoted_spaces_kept(void **state)
{
    (void)state;
    mkt_order_set *set = parse_ok(HDR "\"bob \",sell,1,1\nbob,buy,1,1\n\" bob\",buy,2,2\n");
    size_t n;
    mkt_order_set_orders(set, &n);
    assert_int_equal(n, 3);
    assert_string_equal(mkt_order_set_name(set, 0), " bob");
    assert_string_equal(mkt_order_set_name(set, 1), "bob");
    assert_string_equal(mkt_order_set_name(set, 2), "bob ");
    mkt_order_set_free(set);
}

static void errors_header(void **state)
{
    (void)state;
    parse_err("", 10, 10, MKT_E_INVAL, 0, 0, "no header line");
    parse_err("# only a comment\n\n", 10, 10, MKT_E_INVAL, 0, 0, "no header line");
    parse_err("alice,sell,5,10\n", 10, 10, MKT_E_INVAL, 1, 1,
              "header column 1 must be 'participant', not 'alice'");
    parse_err("# c\nparticipant,side,energy,price_uc_per_kwh\n", 10, 10, MKT_E_INVAL, 2, 3,
              "must be 'energy_wh', not 'energy'");
    parse_err("Participant,side,energy_wh,price_uc_per_kwh\n", 10, 10, MKT_E_INVAL, 1, 1,
              "must be 'participant'");
    parse_err("participant,side,energy_wh\n", 10, 10, MKT_E_INVAL, 1, 0, "header must be");
    parse_err("participant,side,energy_wh,price_uc_per_kwh,x\n", 10, 10, MKT_E_INVAL, 1, 0,
              "header must be");
}

static void errors_fields(void **state)
{
    (void)state;
    parse_err(HDR "a,sel,5,10\n", 10, 10, MKT_E_INVAL, 2, 2, "side must be 'buy' or 'sell', not 'sel'");
    parse_err(HDR "a,sell,5,10\n\na,sell,five,10\n", 10, 10, MKT_E_INVAL, 4, 3,
              "'five' is not a whole number");
    parse_err(HDR "a,sell,5.5,10\n", 10, 10, MKT_E_INVAL, 2, 3, "is not a whole number");
    parse_err(HDR "a,sell,,10\n", 10, 10, MKT_E_INVAL, 2, 3, "is not a whole number");
    parse_err(HDR "a,sell,-5,10\n", 10, 10, MKT_E_INVAL, 2, 3, "must be positive");
    parse_err(HDR "a,sell,0,10\n", 10, 10, MKT_E_INVAL, 2, 3, "between 1 and");
    parse_err(HDR "a,sell,1000000000001,10\n", 10, 10, MKT_E_INVAL, 2, 3, "between 1 and");
    parse_err(HDR "a,sell,99999999999999999999999,10\n", 10, 10, MKT_E_INVAL, 2, 3,
              "between 1 and");
    parse_err(HDR "a,sell,5,-1\n", 10, 10, MKT_E_INVAL, 2, 4, "must be >= 0");
    parse_err(HDR "a,sell,5,1e3\n", 10, 10, MKT_E_INVAL, 2, 4, "'1e3' is not a whole number");
    parse_err(HDR "a,sell,5,1000000000001\n", 10, 10, MKT_E_INVAL, 2, 4, "between 0 and");
    parse_err(HDR ",sell,5,1\n", 10, 10, MKT_E_INVAL, 2, 1, "empty participant name");
    parse_err(HDR "\"a\tb\",sell,5,1\n", 10, 10, MKT_E_INVAL, 2, 1, "control character");
}

static void errors_shape(void **state)
{
    (void)state;
    parse_err(HDR "a,sell,5\n", 10, 10, MKT_E_INVAL, 2, 3, "expected 4 fields, found 3");
    parse_err(HDR "a,sell,5,1,x\n", 10, 10, MKT_E_INVAL, 2, 5, "expected 4 fields, found 5");
    parse_err(HDR "a,sell,5,1,x,y,z\n", 10, 10, MKT_E_INVAL, 2, 5, "found 7");
    parse_err(HDR "\"a,sell,5,1\n", 10, 10, MKT_E_INVAL, 2, 1, "line break or NUL inside a field");
    parse_err(HDR "\"a,sell,5,1", 10, 10, MKT_E_INVAL, 2, 1, "unterminated quoted field");
    parse_err(HDR "\"a\"x,sell,5,1\n", 10, 10, MKT_E_INVAL, 2, 1, "text after closing quote");
    parse_err(HDR "a,sell,5,1\rb,sell,5,1\n", 10, 10, MKT_E_INVAL, 2, 4, "stray carriage return");
    char longname[200];
    memset(longname, 'n', 65);
    snprintf(longname + 65, sizeof longname - 65, ",sell,5,1\n");
    char csv[300];
    snprintf(csv, sizeof csv, HDR "%s", longname);
    parse_err(csv, 10, 10, MKT_E_INVAL, 2, 1, "longer than 64 bytes");
    /* 64 bytes is the limit itself */
    memmove(longname + 64, longname + 65, strlen(longname + 65) + 1);
    snprintf(csv, sizeof csv, HDR "%s", longname);
    mkt_order_set_free(parse_ok(csv));
}

static void errors_curves(void **state)
{
    (void)state;
    /* one side per participant: the first row of the other side is blamed, column 2 */
    parse_err(HDR "a,sell,5,1\nb,buy,5,1\na,buy,5,1\n", 10, 100, MKT_E_INVAL, 4, 2,
              "participant 'a' already sells on line 2");
    /* 17 rows of one participant: the 17th in line order is blamed */
    char csv[2000] = HDR;
    for (int i = 0; i < MKT_MAX_STEPS + 1; i++) {
        size_t len = strlen(csv);
        snprintf(csv + len, sizeof csv - len, "%s\nq,buy,%d,1\n", i == 3 ? "# gap" : "", i + 1);
    }
    /* line 1 header; row i on line 2 + i (+ 1 after the gap comment at i = 3, + blank lines) */
    mkt_order_set *set = NULL;
    mkt_csv_error err;
    assert_int_equal(mkt_csv_parse(csv, strlen(csv), 10, 100, &set, &err), MKT_E_INVAL);
    assert_null(set);
    assert_int_equal(err.column, 1);
    assert_non_null(strstr(err.message, "more than 16 steps"));
    /* count the line of the 17th data row independently */
    size_t line = 1, rows = 0;
    for (const char *p = csv; *p; p++) {
        if (*p != '\n')
            continue;
        line++;
        if (p[1] == 'q' && ++rows == MKT_MAX_STEPS + 1)
            break;
    }
    assert_int_equal(err.line, line);
    /* 16 steps are fine */
    char *last = strrchr(csv, 'q');
    *last = '\0';
    set = parse_ok(csv);
    size_t n;
    assert_int_equal(mkt_order_set_orders(set, &n)[0].n_steps, MKT_MAX_STEPS);
    mkt_order_set_free(set);
}

static void errors_bounds(void **state)
{
    (void)state;
    const char *csv = HDR "a,sell,1,1\nb,sell,1,1\n# c\nc,buy,1,1\na,sell,2,2\n";
    /* rows: the 4th data row (line 6) is one too many for max_rows = 3 */
    parse_err(csv, 10, 3, MKT_E_INVAL, 6, 0, "more than 3 order rows");
    /* participants: 3 distinct names against a bound of 2; the whole input is at fault */
    parse_err(csv, 2, 10, MKT_E_INVAL, 0, 0, "more than 2 participants");
    mkt_order_set_free(parse_ok(csv)); /* and within the bounds it parses */
    mkt_order_set *set = NULL;
    mkt_csv_error err;
    assert_int_equal(mkt_csv_parse(csv, strlen(csv), 3, 4, &set, &err), MKT_OK);
    mkt_order_set_free(set);
    assert_int_equal(mkt_csv_parse(NULL, 1, 3, 4, &set, &err), MKT_E_INVAL);
    assert_int_equal(mkt_csv_parse(csv, strlen(csv), 3, 4, NULL, &err), MKT_E_INVAL);
    /* NUL inside the buffer is not a line end */
    const char nul[] = HDR "a,se\0ll,1,1\n";
    assert_int_equal(mkt_csv_parse(nul, sizeof nul - 1, 3, 4, &set, &err), MKT_E_INVAL);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 2);
    assert_null(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grouping_and_lines), cmocka_unit_test(shuffled_rows_same_orders),
        cmocka_unit_test(lenient_syntax),     cmocka_unit_test(quoted_spaces_kept),
        cmocka_unit_test(errors_header),      cmocka_unit_test(errors_fields),
        cmocka_unit_test(errors_shape),       cmocka_unit_test(errors_curves),
        cmocka_unit_test(errors_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
