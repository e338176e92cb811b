/*
 * Signed standing preferences (controller/orders/pref_msg.h, pref_ingest.h, db/prefs.h): the
 * canonical encoding against bytes worked out by hand, round trips through the binary and
 * JSON forms, the strict decoder's rejections, signatures (tampering, and an order's signature
 * never passing for a preference's: the domain tags differ), and the intake on a real SQLite
 * store with the replay rules of orders: accepted, a resend answered with the stored receipt,
 * a used nonce on other bytes refused as a replay, an older preference superseded, a newer
 * one replacing, forged, unregistered, stale and misaddressed ones refused and counted; and
 * which preference counts for which interval.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "db/prefs.h"
#include "db/registry.h"
#include "orders/keys.h"
#include "orders/pref_ingest.h"
#include "orders/pref_msg.h"
#include "orders_fixture.h"

/* The example: community "elm-street", participant "home-07", valid from interval 1943088
 * (2025-06-01 12:00 UTC, 900 s), created 1748778000000 ms, expiring 1748779200 s, nonce
 * 00..0f; sell 2000 Wh at >= 90000 uc/kWh; buy 1000 Wh at <= 250000 and then 500 Wh at
 * <= 280000. By hand (big-endian, as docs/order-encoding.md "Standing preferences"):
 *   "mgx-pref-v1" + NUL 12; 0a "elm-street" 11; 07 "home-07" 8; valid_from 0x1DA630 8;
 *   interval_s 0x0384 4; created_ms 0x197_2B4A9E80 8; expiry_s 0x683C40C0 8; nonce 16;
 *   01, 2000 = 0x07D0, 90000 = 0x015F90 (65536 + 5*4096 + 15*256 + 9*16);
 *   02, 1000 = 0x03E8, 250000 = 0x03D090 (3*65536 + 13*4096 + 9*16), 500 = 0x01F4,
 *   280000 = 0x0445C0 (4*65536 + 4*4096 + 5*256 + 12*16).
 * Total 12 + 11 + 8 + 8 + 4 + 8 + 8 + 16 + 1 + 16 + 1 + 32 = 125 bytes. */
static const uint8_t EXAMPLE_ENC[] = {
    'm', 'g', 'x', '-', 'p', 'r', 'e', 'f', '-', 'v', '1', 0,
    10, 'e', 'l', 'm', '-', 's', 't', 'r', 'e', 'e', 't',
    7, 'h', 'o', 'm', 'e', '-', '0', '7',
    0, 0, 0, 0, 0, 0x1d, 0xa6, 0x30,
    0, 0, 0x03, 0x84,
    0, 0, 0x01, 0x97, 0x2b, 0x4a, 0x9e, 0x80,
    0, 0, 0, 0, 0x68, 0x3c, 0x40, 0xc0,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    1,
    0, 0, 0, 0, 0, 0, 0x07, 0xd0, 0, 0, 0, 0, 0, 0x01, 0x5f, 0x90,
    2,
    0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 0x03, 0xd0, 0x90,
    0, 0, 0, 0, 0, 0, 0x01, 0xf4, 0, 0, 0, 0, 0, 0x04, 0x45, 0xc0};

static void example(ctl_pref_msg *m)
{
    memset(m, 0, sizeof *m);
    strcpy(m->community, "elm-street");
    strcpy(m->participant, "home-07");
    m->valid_from = 1943088;
    m->interval_s = 900;
    m->created_ms = INT64_C(1748778000000);
    m->expiry_s = 1748779200;
    for (int i = 0; i < 16; i++)
        m->nonce[i] = (uint8_t)i;
    m->pref.n_sell_steps = 1;
    m->pref.sell[0] = (mkt_step){2000, 90000};
    m->pref.n_buy_steps = 2;
    m->pref.buy[0] = (mkt_step){1000, 250000};
    m->pref.buy[1] = (mkt_step){500, 280000};
}

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static void test_encoding_by_hand(void **state)
{
    (void)state;
    ctl_pref_msg m, back;
    example(&m);
    uint8_t enc[CTL_PREF_ENC_MAX];
    size_t len = 0;
    assert_int_equal(ctl_pref_encode(&m, enc, &len), CTL_R_OK);
    assert_int_equal(len, sizeof EXAMPLE_ENC);
    assert_memory_equal(enc, EXAMPLE_ENC, len);
    char why[CTL_DETAIL_MAX];
    assert_int_equal(ctl_pref_decode_bin(enc, len, &back, why, sizeof why), CTL_R_OK);
    assert_memory_equal(&back, &m, sizeof m);
    /* strict: one byte short, one byte more, another tag, a step count above 8 */
    assert_int_equal(ctl_pref_decode_bin(enc, len - 1, &back, why, sizeof why), CTL_R_MALFORMED);
    enc[len] = 0;
    assert_int_equal(ctl_pref_decode_bin(enc, len + 1, &back, why, sizeof why), CTL_R_MALFORMED);
    assert_non_null(strstr(why, "after the last step"));
    uint8_t bad[sizeof EXAMPLE_ENC];
    memcpy(bad, EXAMPLE_ENC, sizeof bad);
    bad[4] = 'o';
    assert_int_equal(ctl_pref_decode_bin(bad, sizeof bad, &back, why, sizeof why),
                     CTL_R_MALFORMED);
    memcpy(bad, EXAMPLE_ENC, sizeof bad);
    bad[76] = 9; /* the sell count */
    assert_int_equal(ctl_pref_decode_bin(bad, sizeof bad, &back, why, sizeof why),
                     CTL_R_MALFORMED);
    /* the largest preference fits CTL_PREF_ENC_MAX exactly */
    memset(m.community, 'c', CTL_ID_MAX);
    memset(m.participant, 'p', CTL_ID_MAX);
    m.pref.n_sell_steps = m.pref.n_buy_steps = MKT_PREF_MAX_STEPS;
    for (int i = 0; i < MKT_PREF_MAX_STEPS; i++)
        m.pref.sell[i] = m.pref.buy[i] = (mkt_step){1, 1};
    assert_int_equal(ctl_pref_encode(&m, enc, &len), CTL_R_OK);
    assert_int_equal(len, CTL_PREF_ENC_MAX);
}

static void test_validation(void **state)
{
    (void)state;
    ctl_pref_msg m;
    char why[CTL_DETAIL_MAX];
    example(&m);
    m.pref.n_sell_steps = m.pref.n_buy_steps = 0; /* both sides the grid's terms: valid */
    assert_int_equal(ctl_pref_validate(&m, why, sizeof why), CTL_R_OK);
    example(&m);
    m.pref.buy[1].energy_wh = 0;
    assert_int_equal(ctl_pref_validate(&m, why, sizeof why), CTL_R_MALFORMED);
    assert_string_equal(why, "buy[1].energy_wh: must be 1..1000000000000");
    example(&m);
    m.pref.sell[0].price_uc_per_kwh = -1;
    assert_int_equal(ctl_pref_validate(&m, why, sizeof why), CTL_R_MALFORMED);
    example(&m);
    m.pref.n_sell_steps = MKT_PREF_MAX_STEPS + 1;
    assert_int_equal(ctl_pref_validate(&m, why, sizeof why), CTL_R_MALFORMED);
    example(&m);
    m.valid_from = -1;
    assert_int_equal(ctl_pref_validate(&m, why, sizeof why), CTL_R_MALFORMED);
}

static void test_json(void **state)
{
    (void)state;
    ctl_pref_msg m, back;
    example(&m);
    char json[CTL_PREF_JSON_MAX], why[CTL_DETAIL_MAX];
    size_t len;
    assert_int_equal(ctl_pref_to_json(&m, json, sizeof json, &len), CTL_R_OK);
    assert_string_equal(
        json, "{\"v\":1,\"community\":\"elm-street\",\"participant\":\"home-07\","
              "\"valid_from\":1943088,\"interval_s\":900,\"created_ms\":1748778000000,"
              "\"expiry_s\":1748779200,\"nonce\":\"000102030405060708090a0b0c0d0e0f\","
              "\"sell\":[{\"energy_wh\":2000,\"price_uc_per_kwh\":90000}],"
              "\"buy\":[{\"energy_wh\":1000,\"price_uc_per_kwh\":250000},"
              "{\"energy_wh\":500,\"price_uc_per_kwh\":280000}],"
              "\"sig\":\"0000000000000000000000000000000000000000000000000000000000000000"
              "0000000000000000000000000000000000000000000000000000000000000000\"}");
    assert_int_equal(ctl_pref_from_json(json, len, &back, why, sizeof why), CTL_R_OK);
    assert_memory_equal(&back, &m, sizeof m);
    /* empty sides (the step arrays too: the decoder leaves unused steps zero) */
    memset(&m.pref, 0, sizeof m.pref);
    assert_int_equal(ctl_pref_to_json(&m, json, sizeof json, &len), CTL_R_OK);
    assert_non_null(strstr(json, "\"sell\":[],\"buy\":[]"));
    assert_int_equal(ctl_pref_from_json(json, len, &back, why, sizeof why), CTL_R_OK);
    assert_memory_equal(&back, &m, sizeof m);

    /* rejections, each naming its field */
    static const struct {
        const char *from, *to, *field;
        int rc;
    } cases[] = {
        {"\"valid_from\":1943088", "\"valid_from\":1943088.0", "valid_from", CTL_R_MALFORMED},
        {"\"valid_from\":1943088", "\"valid_from\":\"1943088\"", "valid_from", CTL_R_MALFORMED},
        {"\"sell\":[]", "\"sell\":{}", "sell", CTL_R_MALFORMED},
        {"\"buy\":[]", "\"buy\":[],\"side\":\"buy\"", "side", CTL_R_MALFORMED},
        {",\"buy\":[]", "", "buy", CTL_R_MALFORMED},
        {"\"nonce\":\"0001", "\"nonce\":\"0A01", "nonce", CTL_R_MALFORMED},
        {"\"sig\":\"00", "\"sig\":\"", "sig", CTL_R_BAD_SIGNATURE},
        {"\"v\":1", "\"v\":2", "v", CTL_R_MALFORMED},
    };
    example(&m);
    m.pref.n_sell_steps = m.pref.n_buy_steps = 0;
    assert_int_equal(ctl_pref_to_json(&m, json, sizeof json, &len), CTL_R_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char bad[CTL_PREF_JSON_MAX];
        const char *at = strstr(json, cases[i].from);
        assert_non_null(at);
        size_t pre = (size_t)(at - json);
        snprintf(bad, sizeof bad, "%.*s%s%s", (int)pre, json, cases[i].to,
                 at + strlen(cases[i].from));
        int rc = ctl_pref_from_json(bad, strlen(bad), &back, why, sizeof why);
        if (rc != cases[i].rc || !strstr(why, cases[i].field))
            fail_msg("case %zu: rc %d, detail \"%s\"", i, rc, why);
    }
    /* nine steps on a side */
    char big[CTL_PREF_JSON_MAX] = "";
    size_t n = (size_t)snprintf(big, sizeof big, "%.*s\"sell\":[", (int)(strstr(json, "\"sell\"") - json), json);
    for (int i = 0; i < 9; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s{\"energy_wh\":1,\"price_uc_per_kwh\":1}",
                              i ? "," : "");
    snprintf(big + n, sizeof big - n, "]%s", strstr(json, ",\"buy\""));
    assert_int_equal(ctl_pref_from_json(big, strlen(big), &back, why, sizeof why),
                     CTL_R_MALFORMED);
    assert_non_null(strstr(why, "sell"));
}

static void test_signature(void **state)
{
    (void)state;
    ctl_secret_key *k = NULL;
    assert_int_equal(ctl_key_from_seed(TST_RFC8032_SEED, &k), CTL_KEY_OK);
    ctl_pref_msg m;
    example(&m);
    assert_int_equal(ctl_pref_sign(&m, ctl_key_secret(k)), CTL_R_OK);
    assert_int_equal(ctl_pref_verify(&m, ctl_key_public(k)), CTL_R_OK);
    /* any change of a signed field breaks it */
    ctl_pref_msg t = m;
    t.pref.buy[1].price_uc_per_kwh++;
    assert_int_equal(ctl_pref_verify(&t, ctl_key_public(k)), CTL_R_BAD_SIGNATURE);
    t = m;
    t.valid_from++;
    assert_int_equal(ctl_pref_verify(&t, ctl_key_public(k)), CTL_R_BAD_SIGNATURE);
    t = m;
    t.sig[0] ^= 1;
    assert_int_equal(ctl_pref_verify(&t, ctl_key_public(k)), CTL_R_BAD_SIGNATURE);
    /* an order's signature by the same key is never a preference's: different domain tags */
    ctl_order_msg o;
    tst_example_order(&o);
    assert_int_equal(ctl_order_sign(&o, ctl_key_secret(k)), CTL_R_OK);
    t = m;
    memcpy(t.sig, o.sig, sizeof t.sig);
    assert_int_equal(ctl_pref_verify(&t, ctl_key_public(k)), CTL_R_BAD_SIGNATURE);
    ctl_key_free(k);
}

/* ---- intake on a store ---- */

#define COMMUNITY "elm-street"
#define VALID INT64_C(1950000)
#define NOW_MS ((VALID - 3) * 900 * 1000) /* 3 intervals before valid_from starts */

typedef struct {
    char *dir;
    ctl_store *s;
    ctl_secret_key *k, *other;
    ctl_admit_params p;
    ctl_pref_stats st;
} intake;

static void make(intake *x, ctl_pref_msg *m, const char *participant, int64_t valid_from,
                 int64_t created_ms, uint8_t nonce0, int64_t sell_price)
{
    memset(m, 0, sizeof *m);
    strcpy(m->community, COMMUNITY);
    snprintf(m->participant, sizeof m->participant, "%s", participant);
    m->valid_from = valid_from;
    m->interval_s = 900;
    m->created_ms = created_ms;
    m->expiry_s = NOW_MS / 1000 + 3600;
    memset(m->nonce, nonce0, sizeof m->nonce);
    m->pref.n_sell_steps = 1;
    m->pref.sell[0] = (mkt_step){5000, sell_price};
    assert_int_equal(ctl_pref_sign(m, ctl_key_secret(x->k)), CTL_R_OK);
}

static ctl_pref_outcome send(intake *x, const char *topic, const ctl_pref_msg *m)
{
    char json[CTL_PREF_JSON_MAX];
    size_t len;
    assert_int_equal(ctl_pref_to_json(m, json, sizeof json, &len), CTL_R_OK);
    ctl_pref_outcome o;
    assert_int_equal(ctl_pref_ingest(x->s, &x->p, topic, json, len, NOW_MS, &x->st, &o),
                     CTL_ST_OK);
    assert_true(o.stored);
    ctl_receipt r;
    assert_int_equal(ctl_receipt_from_json(o.receipt, strlen(o.receipt), &r, NULL, 0), CTL_R_OK);
    assert_int_equal(r.reason, o.reason);
    assert_int_equal(r.interval_id, m->valid_from);
    return o;
}

static void test_intake(void **state)
{
    (void)state;
    intake x;
    memset(&x, 0, sizeof x);
    x.dir = tst_tmpdir("pref");
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/c.db", x.dir);
    ctl_store_identity id = {COMMUNITY, 900, VALID - 10};
    assert_int_equal(ctl_store_open(path, &id, &x.s, err, sizeof err), CTL_ST_OK);
    uint8_t seed[32];
    memset(seed, 7, sizeof seed);
    assert_int_equal(ctl_key_from_seed(seed, &x.k), CTL_KEY_OK);
    memset(seed, 8, sizeof seed);
    assert_int_equal(ctl_key_from_seed(seed, &x.other), CTL_KEY_OK);
    ctl_participant p = {"home-1", {0}, "m-1", CTL_ROLE_HOME, 0};
    memcpy(p.pubkey, ctl_key_public(x.k), 32);
    assert_int_equal(ctl_registry_add(ctl_store_db(x.s), &p, 1), CTL_REG_OK);
    x.p = (ctl_admit_params){COMMUNITY, 900, 300, 96};

    ctl_pref_msg a, b, c;
    make(&x, &a, "home-1", VALID, NOW_MS - 1000, 1, 100000);
    ctl_pref_outcome o = send(&x, "home-1", &a);
    assert_int_equal(o.reason, CTL_R_OK);
    char first[CTL_RECEIPT_MAX];
    snprintf(first, sizeof first, "%s", o.receipt);
    /* a resend: the stored receipt, byte for byte */
    o = send(&x, "home-1", &a);
    assert_true(o.duplicate);
    assert_string_equal(o.receipt, first);
    /* the same nonce on other bytes: a replay */
    make(&x, &b, "home-1", VALID, NOW_MS - 500, 1, 110000);
    assert_int_equal(send(&x, "home-1", &b).reason, CTL_R_REPLAY);
    /* older than the one on file for the same valid_from: superseded */
    make(&x, &b, "home-1", VALID, NOW_MS - 2000, 2, 110000);
    assert_int_equal(send(&x, "home-1", &b).reason, CTL_R_SUPERSEDED);
    /* newer: replaces it */
    make(&x, &b, "home-1", VALID, NOW_MS - 100, 3, 120000);
    assert_int_equal(send(&x, "home-1", &b).reason, CTL_R_REPLACED);
    /* from a later interval */
    make(&x, &c, "home-1", VALID + 4, NOW_MS, 4, 130000);
    assert_int_equal(send(&x, "home-1", &c).reason, CTL_R_OK);
    /* refusals */
    ctl_pref_msg r;
    make(&x, &r, "home-1", VALID - 3, NOW_MS, 5, 1); /* started at NOW_MS */
    assert_int_equal(send(&x, "home-1", &r).reason, CTL_R_STALE_INTERVAL);
    make(&x, &r, "home-1", VALID, NOW_MS, 6, 1);
    assert_int_equal(send(&x, "home-2", &r).reason, CTL_R_TOPIC_MISMATCH);
    make(&x, &r, "home-9", VALID, NOW_MS, 7, 1);
    assert_int_equal(send(&x, "home-9", &r).reason, CTL_R_UNKNOWN_PARTICIPANT);
    make(&x, &r, "home-1", VALID, NOW_MS, 8, 1);
    assert_int_equal(ctl_pref_sign(&r, ctl_key_secret(x.other)), CTL_R_OK); /* forged */
    assert_int_equal(send(&x, "home-1", &r).reason, CTL_R_BAD_SIGNATURE);
    /* the forgery burnt no nonce: the real home may still use it */
    make(&x, &r, "home-1", VALID + 1, NOW_MS, 8, 1);
    assert_int_equal(send(&x, "home-1", &r).reason, CTL_R_OK);
    ctl_pref_outcome junk;
    assert_int_equal(ctl_pref_ingest(x.s, &x.p, "home-1", "{\"v\":1}", 7, NOW_MS, &x.st, &junk),
                     CTL_ST_OK);
    assert_int_equal(junk.reason, CTL_R_MALFORMED);
    assert_string_equal(junk.msg.participant, "home-1");

    assert_int_equal(x.st.received, 12);
    assert_int_equal(x.st.accepted, 4);
    assert_int_equal(x.st.duplicates, 1);
    assert_int_equal(x.st.rejected[CTL_R_REPLAY], 1);
    assert_int_equal(x.st.rejected[CTL_R_SUPERSEDED], 1);
    assert_int_equal(x.st.rejected[CTL_R_STALE_INTERVAL], 1);
    assert_int_equal(x.st.rejected[CTL_R_TOPIC_MISMATCH], 1);
    assert_int_equal(x.st.rejected[CTL_R_UNKNOWN_PARTICIPANT], 1);
    assert_int_equal(x.st.rejected[CTL_R_BAD_SIGNATURE], 1);
    assert_int_equal(x.st.rejected[CTL_R_MALFORMED], 1);

    /* which one counts: none before VALID; from VALID the newest made among those started */
    mkt_preference got;
    int found = 1;
    ctl_db *db = ctl_store_db(x.s);
    assert_int_equal(ctl_prefs_valid(db, "home-1", VALID - 1, &got, &found), CTL_ST_OK);
    assert_int_equal(found, 0);
    assert_int_equal(ctl_prefs_valid(db, "home-1", VALID, &got, &found), CTL_ST_OK);
    assert_int_equal(found, 1);
    assert_int_equal(got.n_sell_steps, 1);
    assert_int_equal(got.n_buy_steps, 0);
    assert_int_equal(got.sell[0].price_uc_per_kwh, 120000); /* b replaced a */
    /* VALID + 1's (created NOW_MS, after b) counts from VALID + 1 */
    assert_int_equal(ctl_prefs_valid(db, "home-1", VALID + 1, &got, &found), CTL_ST_OK);
    assert_int_equal(got.sell[0].price_uc_per_kwh, 1);
    /* c and the VALID + 1 one were made at the same ms: the one stored last counts */
    assert_int_equal(ctl_prefs_valid(db, "home-1", VALID + 9, &got, &found), CTL_ST_OK);
    assert_int_equal(got.sell[0].price_uc_per_kwh, 1);
    assert_int_equal(ctl_prefs_valid(db, "home-2", VALID + 9, &got, &found), CTL_ST_OK);
    assert_int_equal(found, 0);

    ctl_key_free(x.k);
    ctl_key_free(x.other);
    ctl_store_free(x.s);
    tst_rmtree(x.dir);
    free(x.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoding_by_hand), cmocka_unit_test(test_validation),
        cmocka_unit_test(test_json),             cmocka_unit_test(test_signature),
        cmocka_unit_test(test_intake),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
