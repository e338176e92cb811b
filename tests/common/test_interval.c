/*
 * Tests of the controller's interval arithmetic (controller/src/interval.h): keys as floor of
 * UTC seconds over the length, gate closure, admission windows, catching up after clock steps
 * and downtime, daylight-saving days, and the accelerated clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/interval.h"
#include "mgx/civil.h"

static const ctl_interval_rules QH = {900, 300, 4}; /* quarter hours, gate 5 min before */

static void keys_and_bounds(void **state)
{
    (void)state;
    /* 2024-06-01T00:00:00Z = 1717200000 s = 1908000 * 900 exactly */
    assert_int_equal(ctl_interval_id(1717200000, 900), 1908000);
    assert_int_equal(ctl_interval_id(1717200899, 900), 1908000);
    assert_int_equal(ctl_interval_id(1717200900, 900), 1908001);
    assert_int_equal(ctl_interval_start(1908000, 900), 1717200000);
    assert_int_equal(ctl_interval_end(1908000, 900), 1717200900);
    /* floor, not truncation, before 1970: -1 s is in interval -1, -900 s too, -901 s in -2 */
    assert_int_equal(ctl_interval_id(-1, 900), -1);
    assert_int_equal(ctl_interval_id(-900, 900), -1);
    assert_int_equal(ctl_interval_id(-901, 900), -2);
    /* the gate of 1908000 is 5 minutes before its start */
    assert_int_equal(ctl_interval_gate(1908000, &QH), 1717200000 - 300);
}

static void first_open_and_admission(void **state)
{
    (void)state;
    const int64_t start = 1717200000, id = 1908000; /* interval id starts at `start` */
    /* one second before id's gate it is still open; at the gate it is closed */
    assert_int_equal(ctl_interval_first_open(start - 301, &QH), id);
    assert_int_equal(ctl_interval_first_open(start - 300, &QH), id + 1);
    assert_int_equal(ctl_interval_admit(id, start - 301, &QH), CTL_IV_OK);
    assert_int_equal(ctl_interval_admit(id, start - 300, &QH), CTL_IV_E_GATE_CLOSED);
    assert_int_equal(ctl_interval_admit(id - 1, start - 301, &QH), CTL_IV_E_GATE_CLOSED);
    /* max_ahead 4: id .. id+4 open at start-301, id+5 too far */
    assert_int_equal(ctl_interval_admit(id + 4, start - 301, &QH), CTL_IV_OK);
    assert_int_equal(ctl_interval_admit(id + 5, start - 301, &QH), CTL_IV_E_TOO_FAR);
    /* absurd ids from a hostile message neither overflow nor pass */
    assert_int_equal(ctl_interval_admit(INT64_MAX, start, &QH), CTL_IV_E_TOO_FAR);
    assert_int_equal(ctl_interval_admit(INT64_MIN, start, &QH), CTL_IV_E_GATE_CLOSED);
    /* gate 0: orders until the very start */
    ctl_interval_rules g0 = {900, 0, 0};
    assert_int_equal(ctl_interval_admit(id, start - 1, &g0), CTL_IV_OK);
    assert_int_equal(ctl_interval_admit(id, start, &g0), CTL_IV_E_GATE_CLOSED);
    /* gate longer than an interval: 1000 s before start means id's gate is at start-1000 */
    ctl_interval_rules g2 = {900, 1000, 8};
    assert_int_equal(ctl_interval_first_open(start - 1001, &g2), id);
    assert_int_equal(ctl_interval_first_open(start - 1000, &g2), id + 1);
}

static void rules_bounds(void **state)
{
    (void)state;
    assert_int_equal(ctl_interval_rules_check(&QH), CTL_IV_OK);
    ctl_interval_rules r = QH;
    r.length_s = 0;
    assert_int_equal(ctl_interval_rules_check(&r), CTL_IV_E_INVAL);
    r = QH;
    r.gate_closure_s = -1;
    assert_int_equal(ctl_interval_rules_check(&r), CTL_IV_E_INVAL);
    r = QH;
    r.max_ahead = CTL_INTERVAL_MAX_AHEAD + 1;
    assert_int_equal(ctl_interval_rules_check(&r), CTL_IV_E_INVAL);
    assert_int_equal(ctl_interval_rules_check(NULL), CTL_IV_E_INVAL);
}

/* Local days in Europe/Berlin on the 2024 daylight-saving switches, worked out by hand:
 * 31 March: local midnight is 00:00 CET (UTC+1) = 2024-03-30T23:00Z; the next local midnight is
 * 00:00 CEST (UTC+2) = 2024-03-31T22:00Z: 23 h = 92 quarter hours.
 * 27 October: 00:00 CEST = 2024-10-26T22:00Z to 00:00 CET = 2024-10-27T23:00Z: 25 h = 100. */
static int64_t quarters_between(const char *from, const char *to)
{
    int64_t a, b;
    assert_int_equal(ctl_parse_utc(from, &a), CTL_IV_OK);
    assert_int_equal(ctl_parse_utc(to, &b), CTL_IV_OK);
    /* walk the ids: each one exactly once, consecutive, none skipped */
    int64_t n = 0, prev = ctl_interval_id(a, 900) - 1;
    for (int64_t t = a; t < b; t += 60) {
        int64_t id = ctl_interval_id(t, 900);
        assert_true(id == prev || id == prev + 1);
        n += id != prev;
        prev = id;
    }
    assert_int_equal(n, ctl_interval_id(b, 900) - ctl_interval_id(a, 900));
    return n;
}

static void daylight_saving_days(void **state)
{
    (void)state;
    assert_int_equal(quarters_between("2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z"), 92);
    assert_int_equal(quarters_between("2024-10-26T22:00:00Z", "2024-10-27T23:00:00Z"), 100);
    assert_int_equal(quarters_between("2024-06-01T00:00:00Z", "2024-06-02T00:00:00Z"), 96);
    int64_t t;
    assert_int_equal(ctl_parse_utc("2024-03-30T23:00:00Z", &t), CTL_IV_OK);
    assert_int_equal(t, 1711839600); /* cross-check against `date -u -d ... +%s` */
}

/* A controller loop that clears what ctl_interval_due says at a sequence of clock readings,
 * including steps back and forward; every interval from the first is cleared once, in order. */
static void clock_steps_never_skip_or_repeat(void **state)
{
    (void)state;
    const int64_t t0 = 1717200000;
    const int64_t readings[] = {t0,        t0 + 400,  t0 + 1200, t0 + 600 /* step back 10 min */,
                                t0 + 700,  t0 + 1300, t0 + 9000 /* step forward 2 h */,
                                t0 + 8000, t0 + 9100, t0 - 5000 /* back 3.9 h */, t0 + 9800};
    int64_t first_ever = ctl_interval_first_open(t0, &QH); /* a new store starts here */
    int64_t last = INT64_MIN, cleared[64];
    size_t n = 0;
    for (size_t i = 0; i < sizeof readings / sizeof readings[0]; i++) {
        int64_t from, to;
        int64_t k = ctl_interval_due(last, first_ever, readings[i], &QH, &from, &to);
        for (int64_t id = from; k > 0 && id <= to; id++) {
            assert_true(n < 64);
            cleared[n++] = id;
            last = id;
        }
    }
    /* t0 + 9800 is id0 + 10 plus 800 s; the first open one is id0 + 12 (its gate t0+10500 is
     * after), so id0+1 .. id0+11 were due: 11 intervals, where id0 = t0/900 */
    int64_t id0 = t0 / 900;
    assert_int_equal(first_ever, id0 + 1);
    assert_int_equal(n, 11);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cleared[i], id0 + 1 + (int64_t)i);
}

static void due_counts(void **state)
{
    (void)state;
    int64_t from, to;
    const int64_t t0 = 1717200000, id0 = t0 / 900;
    /* nothing cleared, no bound: only the last closed interval (id0, gate at t0-300) */
    assert_int_equal(ctl_interval_due(INT64_MIN, INT64_MIN, t0, &QH, &from, &to), 1);
    assert_int_equal(from, id0);
    assert_int_equal(to, id0);
    /* all cleared up to the last closed one: nothing due */
    assert_int_equal(ctl_interval_due(id0, INT64_MIN, t0, &QH, &from, &to), 0);
    /* cleared up to id0-10: ten due */
    assert_int_equal(ctl_interval_due(id0 - 10, INT64_MIN, t0, &QH, &from, &to), 10);
    assert_int_equal(from, id0 - 9);
}

static void accelerated_clock(void **state)
{
    (void)state;
    /* 1440x: one real minute is one simulated day */
    ctl_clock c = {1000000, 1717200000000, 1440};
    assert_int_equal(ctl_clock_sim_ms(&c, 1000000), 1717200000000);
    assert_int_equal(ctl_clock_sim_ms(&c, 1000000 + 60000), 1717200000000 + 86400000);
    /* 625 real ms = 900 simulated s: a quarter hour */
    assert_int_equal(ctl_clock_sim_ms(&c, 1000625) - c.sim0_ms, 900000);
    /* inverse rounds up: the sim clock has reached the target at the returned real time */
    for (int64_t sim = c.sim0_ms - 5000; sim < c.sim0_ms + 5000; sim += 7) {
        int64_t r = ctl_clock_real_ms(&c, sim);
        assert_true(ctl_clock_sim_ms(&c, r) >= sim);
        assert_true(ctl_clock_sim_ms(&c, r - 1) < sim);
    }
    /* saturation instead of overflow */
    ctl_clock big = {0, 0, CTL_CLOCK_MAX_SPEED};
    assert_int_equal(ctl_clock_sim_ms(&big, INT64_MAX), CTL_TIME_MAX_S * 1000);
    assert_int_equal(ctl_clock_sim_ms(&big, INT64_MIN), -CTL_TIME_MAX_S * 1000);
    /* speed 1 with equal anchors is the wall clock */
    ctl_clock wall = {5, 5, 1};
    assert_int_equal(ctl_clock_sim_ms(&wall, 1717200000123), 1717200000123);
}

static void parsing(void **state)
{
    (void)state;
    ctl_clock c = {0, 0, 60};
    assert_int_equal(ctl_clock_parse_anchor("1700000000:2024-06-01T00:00:00Z", &c), CTL_IV_OK);
    assert_int_equal(c.real0_ms, 1700000000000);
    assert_int_equal(c.sim0_ms, 1717200000000);
    assert_int_equal(c.speed, 60);
    assert_int_equal(ctl_clock_parse_anchor("1700000000:1717200000", &c), CTL_IV_OK);
    assert_int_equal(c.sim0_ms, 1717200000000);
    const char *bad[] = {"", ":", "17:", ":17", "x:1", "1:x", "1:2024-02-30T00:00:00Z",
                         "1:2023-02-29T00:00:00Z", "1:2024-06-01T24:00:00Z",
                         "1:2024-06-01T00:00:00", "-5:10", "1:2024-06-01T00:00:00Zjunk"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ctl_clock_parse_anchor(bad[i], &c), CTL_IV_E_INVAL);
    int64_t t;
    assert_int_equal(ctl_parse_utc("2024-02-29T12:34:56Z", &t), CTL_IV_OK);
    char buf[24];
    mkt_format_time(t, 0, buf, sizeof buf);
    assert_string_equal(buf, "2024-02-29T12:34:56Z");
    mkt_format_time(-1, 0, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_and_bounds),
        cmocka_unit_test(first_open_and_admission),
        cmocka_unit_test(rules_bounds),
        cmocka_unit_test(daylight_saving_days),
        cmocka_unit_test(clock_steps_never_skip_or_repeat),
        cmocka_unit_test(due_counts),
        cmocka_unit_test(accelerated_clock),
        cmocka_unit_test(parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
