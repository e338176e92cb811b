/*
 * Admission rules: every reason is produced by exactly the situation it names, with the time
 * boundaries at the millisecond, in the documented order of checks (an order failing several
 * checks gets the first reason), and the signature is checked only after everything else.
 *
 * Times in these tests: interval length 900 s, gate closure 300 s before start, orders accepted
 * up to 96 intervals ahead. The example order is for interval 1943088, which starts at
 * 1943088 * 900 = 1748779200 s; its gate closes at 1748778900 s; it expires at 1748779200 s.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include "orders/admit.h"
#include "orders_fixture.h"

#define START_MS INT64_C(1748779200000)
#define GATE_MS  INT64_C(1748778900000)

static const ctl_admit_params PARAMS = {"elm-street", 900, 300, 96};
static ctl_participant entry;
static ctl_order_msg signed_example;
static const ctl_admit_history FRESH = {CTL_NONCE_NEW, 0, 0};

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    memset(&entry, 0, sizeof entry);
    strcpy(entry.id, "home-07");
    memcpy(entry.pubkey, TST_RFC8032_PK, 32);
    strcpy(entry.meter_id, "meter-07");
    entry.role = CTL_ROLE_HOME;
    tst_example_order(&signed_example);
    ctl_secret_key *k = NULL;
    if (ctl_key_from_seed(TST_RFC8032_SEED, &k) != CTL_KEY_OK)
        return -1;
    int rc = ctl_order_sign(&signed_example, ctl_key_secret(k));
    ctl_key_free(k);
    return rc;
}

static ctl_admit_verdict admit_at(int64_t now_ms, const ctl_order_msg *m, ctl_admit_result *r)
{
    return ctl_admit(&PARAMS, now_ms, "home-07", m, &entry, &FRESH, r);
}

static void expect(ctl_admit_verdict v, const ctl_admit_result *r, ctl_admit_verdict want_v,
                   int want_reason)
{
    if (v != want_v || r->verdict != want_v || r->reason != want_reason)
        fail_msg("got verdict %d reason %s (%s), want verdict %d reason %s", v,
                 ctl_reason_name(r->reason), r->detail, want_v, ctl_reason_name(want_reason));
}

static void test_accept_window(void **state)
{
    (void)state;
    ctl_admit_result r;
    /* the last millisecond before gate closure is fine */
    expect(admit_at(GATE_MS - 1, &signed_example, &r), &r, CTL_ADMIT_ACCEPT, CTL_R_OK);
    assert_string_equal(r.detail, "");
    /* gate closure itself is too late */
    expect(admit_at(GATE_MS, &signed_example, &r), &r, CTL_ADMIT_REJECT, CTL_R_GATE_CLOSED);
    assert_non_null(strstr(r.detail, "1748778900000"));
    /* the interval's start: too late for other reasons first (the order expires at the start) */
    expect(admit_at(START_MS - 1, &signed_example, &r), &r, CTL_ADMIT_REJECT, CTL_R_GATE_CLOSED);
    ctl_order_msg m = signed_example;
    m.expiry_s += 3600; /* re-signing is not needed: the signature is checked last */
    expect(admit_at(START_MS, &m, &r), &r, CTL_ADMIT_REJECT, CTL_R_STALE_INTERVAL);
    expect(admit_at(START_MS + 900000, &m, &r), &r, CTL_ADMIT_REJECT, CTL_R_STALE_INTERVAL);
    expect(admit_at(START_MS, &signed_example, &r), &r, CTL_ADMIT_REJECT, CTL_R_EXPIRED);
    /* far ahead: at now, the current interval is floor(now / 900 s); 96 ahead is the limit.
     * now = START_MS - 96 * 900 s: current = 1943088 - 96, so the order is exactly 96 ahead. */
    expect(admit_at(START_MS - 96 * 900000, &signed_example, &r), &r, CTL_ADMIT_ACCEPT,
           CTL_R_OK);
    /* one ms earlier the current interval is 1943088 - 97: too far */
    expect(admit_at(START_MS - 96 * 900000 - 1, &signed_example, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_FAR_FUTURE_INTERVAL);
    assert_non_null(strstr(r.detail, "97 intervals ahead"));
}

static void test_each_reason(void **state)
{
    (void)state;
    const int64_t now = GATE_MS - 60000;
    ctl_admit_result r;
    ctl_order_msg m;

    m = signed_example;
    strcpy(m.community, "oak-lane");
    expect(admit_at(now, &m, &r), &r, CTL_ADMIT_REJECT, CTL_R_WRONG_COMMUNITY);

    expect(ctl_admit(&PARAMS, now, "home-08", &signed_example, &entry, &FRESH, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_TOPIC_MISMATCH);
    /* no topic given: the check is skipped */
    expect(ctl_admit(&PARAMS, now, NULL, &signed_example, &entry, &FRESH, &r), &r,
           CTL_ADMIT_ACCEPT, CTL_R_OK);

    expect(ctl_admit(&PARAMS, now, "home-07", &signed_example, NULL, &FRESH, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_UNKNOWN_PARTICIPANT);

    ctl_participant obs = entry;
    obs.role = CTL_ROLE_OBSERVER;
    expect(ctl_admit(&PARAMS, now, "home-07", &signed_example, &obs, &FRESH, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_NOT_ALLOWED);
    assert_non_null(strstr(r.detail, "observer"));
    obs.role = CTL_ROLE_CONTROLLER;
    expect(ctl_admit(&PARAMS, now, "home-07", &signed_example, &obs, &FRESH, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_NOT_ALLOWED);

    m = signed_example;
    m.interval_s = 1800;
    m.interval_id = 1748779200 / 1800;
    expect(admit_at(now, &m, &r), &r, CTL_ADMIT_REJECT, CTL_R_WRONG_INTERVAL_LENGTH);

    m = signed_example;
    m.expiry_s = now / 1000;
    expect(admit_at(now, &m, &r), &r, CTL_ADMIT_REJECT, CTL_R_EXPIRED);
    m.expiry_s = now / 1000 + 1;
    expect(admit_at(now, &m, &r), &r, CTL_ADMIT_REJECT, CTL_R_BAD_SIGNATURE);

    ctl_admit_history h = {CTL_NONCE_OTHER, 0, 0};
    expect(ctl_admit(&PARAMS, now, "home-07", &signed_example, &entry, &h, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_REPLAY);
    h.nonce = CTL_NONCE_SAME;
    expect(ctl_admit(&PARAMS, now, "home-07", &signed_example, &entry, &h, &r), &r,
           CTL_ADMIT_DUPLICATE, CTL_R_OK);

    /* replacement: a newer order replaces, an older or equally old one is superseded */
    h = (ctl_admit_history){CTL_NONCE_NEW, 1, signed_example.created_ms - 1};
    expect(ctl_admit(&PARAMS, now, "home-07", &signed_example, &entry, &h, &r), &r,
           CTL_ADMIT_REPLACE, CTL_R_REPLACED);
    h.current_created_ms = signed_example.created_ms;
    expect(ctl_admit(&PARAMS, now, "home-07", &signed_example, &entry, &h, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_SUPERSEDED);
    h.current_created_ms = signed_example.created_ms + 1;
    expect(ctl_admit(&PARAMS, now, "home-07", &signed_example, &entry, &h, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_SUPERSEDED);

    /* forged: a changed field, a changed signature, another key */
    m = signed_example;
    m.steps[0].price_uc_per_kwh += 1;
    expect(admit_at(now, &m, &r), &r, CTL_ADMIT_REJECT, CTL_R_BAD_SIGNATURE);
    m = signed_example;
    m.sig[63] ^= 0x40;
    expect(admit_at(now, &m, &r), &r, CTL_ADMIT_REJECT, CTL_R_BAD_SIGNATURE);
    ctl_participant other = entry;
    other.pubkey[0] ^= 1;
    expect(ctl_admit(&PARAMS, now, "home-07", &signed_example, &other, &FRESH, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_BAD_SIGNATURE);

    /* malformed in memory (cannot come from the decoder, but admit does not trust callers) */
    m = signed_example;
    m.n_steps = 0;
    expect(admit_at(now, &m, &r), &r, CTL_ADMIT_REJECT, CTL_R_MALFORMED);
    /* nonsense settings are the controller's fault */
    ctl_admit_params bad = PARAMS;
    bad.max_ahead_intervals = 0;
    expect(ctl_admit(&bad, now, "home-07", &signed_example, &entry, &FRESH, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_INTERNAL);
}

/* An order that fails everything gets the first reason of the documented order; removing the
 * faults one at a time walks down the list. */
static void test_check_order(void **state)
{
    (void)state;
    ctl_order_msg m = signed_example;
    strcpy(m.community, "oak-lane");
    m.interval_s = 1800;
    m.interval_id = 1748779200 / 1800;
    m.expiry_s = 1;
    m.sig[0] ^= 1;
    const int64_t late = START_MS + 1; /* stale, gate closed, expired */
    ctl_participant obs = entry;
    obs.role = CTL_ROLE_OBSERVER;
    ctl_admit_history h = {CTL_NONCE_OTHER, 1, INT64_MAX};
    ctl_admit_result r;

    expect(ctl_admit(&PARAMS, late, "home-99", &m, &obs, &h, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_WRONG_COMMUNITY);
    strcpy(m.community, "elm-street");
    expect(ctl_admit(&PARAMS, late, "home-99", &m, &obs, &h, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_TOPIC_MISMATCH);
    expect(ctl_admit(&PARAMS, late, "home-07", &m, &obs, &h, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_REPLAY);
    h.nonce = CTL_NONCE_NEW;
    expect(ctl_admit(&PARAMS, late, "home-07", &m, NULL, &h, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_UNKNOWN_PARTICIPANT);
    expect(ctl_admit(&PARAMS, late, "home-07", &m, &obs, &h, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_NOT_ALLOWED);
    expect(ctl_admit(&PARAMS, late, "home-07", &m, &entry, &h, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_WRONG_INTERVAL_LENGTH);
    m.interval_s = 900;
    m.interval_id = 1943088;
    expect(ctl_admit(&PARAMS, late, "home-07", &m, &entry, &h, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_EXPIRED);
    m.expiry_s = INT64_C(1748779200) + 86400;
    expect(ctl_admit(&PARAMS, late, "home-07", &m, &entry, &h, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_STALE_INTERVAL);
    expect(ctl_admit(&PARAMS, START_MS - 1, "home-07", &m, &entry, &h, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_GATE_CLOSED);
    expect(ctl_admit(&PARAMS, START_MS - 97 * 900000, "home-07", &m, &entry, &h, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_FAR_FUTURE_INTERVAL);
    expect(ctl_admit(&PARAMS, GATE_MS - 1, "home-07", &m, &entry, &h, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_SUPERSEDED);
    h.has_current = 0;
    expect(ctl_admit(&PARAMS, GATE_MS - 1, "home-07", &m, &entry, &h, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_BAD_SIGNATURE);
}

/* A resend of an accepted order is a duplicate whenever it arrives, even after gate closure, so
 * the home gets its original receipt rather than a misleading "gate_closed". */
static void test_duplicate_any_time(void **state)
{
    (void)state;
    ctl_admit_history h = {CTL_NONCE_SAME, 1, signed_example.created_ms};
    ctl_admit_result r;
    const int64_t times[] = {GATE_MS - 1, GATE_MS, START_MS, START_MS + 86400000};
    for (size_t i = 0; i < 4; i++)
        expect(ctl_admit(&PARAMS, times[i], "home-07", &signed_example, &entry, &h, &r), &r,
               CTL_ADMIT_DUPLICATE, CTL_R_OK);
}

/* The split API used with the verify pool: check gives a provisional verdict and does not look
 * at the signature; finish applies the verification result. */
static void test_check_then_finish(void **state)
{
    (void)state;
    ctl_order_msg forged = signed_example;
    forged.sig[5] ^= 1;
    ctl_admit_result r;
    assert_int_equal(ctl_admit_check(&PARAMS, GATE_MS - 1, "home-07", &forged, &entry, &FRESH,
                                     &r),
                     CTL_ADMIT_ACCEPT);
    assert_int_equal(ctl_admit_finish(&r, ctl_order_verify(&forged, entry.pubkey)),
                     CTL_ADMIT_REJECT);
    assert_int_equal(r.reason, CTL_R_BAD_SIGNATURE);
    /* finish does not turn a rejection into anything else */
    assert_int_equal(ctl_admit_check(&PARAMS, GATE_MS, "home-07", &signed_example, &entry,
                                     &FRESH, &r),
                     CTL_ADMIT_REJECT);
    assert_int_equal(ctl_admit_finish(&r, CTL_R_OK), CTL_ADMIT_REJECT);
    assert_int_equal(r.reason, CTL_R_GATE_CLOSED);
    ctl_admit_history h = {CTL_NONCE_NEW, 1, 0};
    assert_int_equal(ctl_admit_check(&PARAMS, GATE_MS - 1, "home-07", &signed_example, &entry,
                                     &h, &r),
                     CTL_ADMIT_REPLACE);
    assert_int_equal(ctl_admit_finish(&r, CTL_R_OK), CTL_ADMIT_REPLACE);
    assert_int_equal(r.reason, CTL_R_REPLACED);
}

/* Times before 1970 and interval ids near the top of the range do not wrap. */
static void test_extreme_times(void **state)
{
    (void)state;
    ctl_admit_result r;
    ctl_order_msg m = signed_example;
    m.interval_id = INT64_MAX / 1000 / 900;
    m.expiry_s = INT64_MAX / 1000;
    /* far in the future from any sane clock, including a negative one */
    expect(ctl_admit(&PARAMS, -1, "home-07", &m, &entry, &FRESH, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_FAR_FUTURE_INTERVAL);
    expect(ctl_admit(&PARAMS, INT64_MIN / 2, "home-07", &m, &entry, &FRESH, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_FAR_FUTURE_INTERVAL);
    m.interval_id = 0;
    expect(ctl_admit(&PARAMS, -1, "home-07", &m, &entry, &FRESH, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_GATE_CLOSED);
    /* interval 0 starts at 0: a clock at -900 s + 1 ms has current interval -1 (floor), so
     * interval 0 is one ahead; the gate (300 s before 0) is open until -300000 ms */
    ctl_admit_params p = PARAMS;
    p.gate_closure_s = 0;
    expect(ctl_admit(&p, -900000 + 1, "home-07", &m, &entry, &FRESH, &r), &r,
           CTL_ADMIT_REJECT, CTL_R_BAD_SIGNATURE);
    p.max_ahead_intervals = 1;
    expect(ctl_admit(&p, -900000 - 1, "home-07", &m, &entry, &FRESH, &r), &r, CTL_ADMIT_REJECT,
           CTL_R_FAR_FUTURE_INTERVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_window),   cmocka_unit_test(test_each_reason),
        cmocka_unit_test(test_check_order),     cmocka_unit_test(test_duplicate_any_time),
        cmocka_unit_test(test_check_then_finish), cmocka_unit_test(test_extreme_times),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
