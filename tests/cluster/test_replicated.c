/*
 * The payloads of the controller's replicated log entries (controller/daemon/replicated.c):
 * orders (and preferences), readings, clearing decisions and witnesses' notes come back exactly
 * as the leader encoded them, and every truncation of an entry is refused rather than misread.
 */
#include "daemon/replicated.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

typedef struct {
    int n;
    char tp[4][32];
    char payload[4][64];
    size_t len[4];
    int64_t now[4];
} seen;

static int collect(void *ctx, const char *tp, const char *payload, size_t len, int64_t now)
{
    seen *s = ctx;
    assert_true(s->n < 4 && len < sizeof s->payload[0]);
    snprintf(s->tp[s->n], sizeof s->tp[0], "%s", tp);
    memcpy(s->payload[s->n], payload, len);
    s->len[s->n] = len;
    s->now[s->n] = now;
    s->n++;
    return 0;
}

static void test_orders(void **state)
{
    (void)state;
    ctl_rep_buf b = {0};
    assert_int_equal(ctl_rep_order_add(&b, "home-1", "{\"a\":1}", 7, 1717200000123), 0);
    assert_int_equal(ctl_rep_order_add(&b, "home-22", "", 0, -5), 0);
    assert_int_equal(ctl_rep_order_add(&b, "h", "xyz", 3, 0), 0);
    assert_int_equal(b.count, 3);
    seen s = {0};
    assert_int_equal(ctl_rep_orders_each(b.p, b.len, collect, &s), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.tp[0], "home-1");
    assert_int_equal(s.len[0], 7);
    assert_memory_equal(s.payload[0], "{\"a\":1}", 7);
    assert_int_equal(s.now[0], 1717200000123);
    assert_string_equal(s.tp[1], "home-22");
    assert_int_equal(s.len[1], 0);
    assert_int_equal(s.now[1], -5);
    assert_string_equal(s.tp[2], "h");
    /* every cut of the last order is refused */
    for (size_t cut = b.len - 1; cut > b.len - 16; cut--) {
        seen t = {0};
        assert_int_equal(ctl_rep_orders_each(b.p, cut, collect, &t), -1);
    }
    ctl_rep_buf_free(&b);
}

static void test_readings(void **state)
{
    (void)state;
    mtr_sample r[3];
    int tier[3] = {0, 1, 2};
    memset(r, 0, sizeof r);
    for (int i = 0; i < 3; i++) {
        snprintf(r[i].meter_id, sizeof r[i].meter_id, "m-home-%d", i);
        r[i].ts_ms = 1717200000000 + i;
        r[i].power_w = -1500 + i;
        r[i].import_wh = 123456789012LL + i;
        r[i].export_wh = 42 + i;
        r[i].soc_permille = i == 0 ? -1 : 500;
        r[i].quality = (uint32_t)i * 3u;
    }
    ctl_rep_buf b = {0};
    assert_int_equal(ctl_rep_readings_encode(&b, r, tier, 3, 1717200000999), 0);
    mtr_sample out[3];
    int ot[3];
    size_t n = 0;
    int64_t received = 0;
    assert_int_equal(ctl_rep_readings_decode(b.p, b.len, out, ot, 3, &n, &received), 0);
    assert_int_equal(n, 3);
    assert_int_equal(received, 1717200000999);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(&out[i], &r[i], sizeof r[i]);
        assert_int_equal(ot[i], tier[i]);
    }
    /* more readings than the caller has room for, and every truncation, are refused */
    assert_int_equal(ctl_rep_readings_decode(b.p, b.len, out, ot, 2, &n, &received), -1);
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(ctl_rep_readings_decode(b.p, cut, out, ot, 3, &n, &received), -1);
    ctl_rep_buf_free(&b);
}

static void test_clear(void **state)
{
    (void)state;
    uint8_t e[16];
    ctl_rep_clear_encode(e, 1908056, 1717250101200);
    int64_t id = 0, now = 0;
    assert_int_equal(ctl_rep_clear_decode(e, sizeof e, &id, &now), 0);
    assert_int_equal(id, 1908056);
    assert_int_equal(now, 1717250101200);
    assert_int_equal(ctl_rep_clear_decode(e, 15, &id, &now), -1);
}

/* A witness's cosigned note (COSIG) in the message layout: its bytes, newlines and the UTF-8
 * em dash of the signature lines included, come back exactly, as does the witness's id. */
typedef struct {
    char tp[32];
    char note[600];
    size_t len;
    int n;
} note_seen;

static int take_note(void *ctx, const char *tp, const char *payload, size_t len, int64_t now)
{
    note_seen *s = ctx;
    (void)now;
    assert_true(len < sizeof s->note);
    snprintf(s->tp, sizeof s->tp, "%s", tp);
    memcpy(s->note, payload, len);
    s->len = len;
    s->n++;
    return 0;
}

static void test_cosig_note(void **state)
{
    (void)state;
    static const char note[] =
        "street.example/mgx\n12\nTtobKjwVpJqYcUpg1EI2jnXQ1VI+GKuwPmrF36aZIec=\n\n"
        "\xe2\x80\x94 street.example/mgx z+0OE2HjaPZTDASxJgoV3FwTNx30pojy7vWE3aS3HJif\n"
        "\xe2\x80\x94 witness.example/w1 e2nviwAAAABrFErIvp5loqueKo7TnUoZGNKbB7g4+FKm\n";
    ctl_rep_buf b = {0};
    assert_int_equal(ctl_rep_order_add(&b, "witness-w1", note, sizeof note - 1, 0), 0);
    note_seen s = {0};
    assert_int_equal(ctl_rep_orders_each(b.p, b.len, take_note, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.tp, "witness-w1");
    assert_int_equal(s.len, sizeof note - 1);
    assert_memory_equal(s.note, note, sizeof note - 1);
    for (size_t cut = 1; cut < b.len; cut++) {
        note_seen t = {0};
        assert_int_equal(ctl_rep_orders_each(b.p, cut, take_note, &t), -1);
        assert_int_equal(t.n, 0);
    }
    ctl_rep_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orders),
        cmocka_unit_test(test_readings),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_cosig_note),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
