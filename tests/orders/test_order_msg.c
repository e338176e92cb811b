/*
 * Signed order messages: the canonical encoding against bytes worked out by hand, the RFC 8032
 * key, round trips through the binary and JSON forms, tampering with any byte, the strict JSON
 * decoder's rejections (each with its reason and the field named), and receipts.
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

#include "orders_fixture.h"

/* The example order, encoded by hand from docs/order-encoding.md's layout (big-endian):
 *   "mgx-order-v1" + NUL                      13 bytes
 *   0a "elm-street"                           1 + 10
 *   07 "home-07"                              1 + 7
 *   interval_id 1748779200 / 900 = 1943088 = 0x1DA630
 *     (1*16^5 + 13*16^4 + 10*16^3 + 6*16^2 + 3*16 = 1048576+851968+40960+1536+48)
 *   interval_s 900 = 0x0384
 *   created_ms (1748779200 - 1200) * 1000 = 1748778000000 = 407 * 2^32 + 726310528
 *     = 0x197 << 32 | 0x2B4A9E80
 *   expiry_s 1748779200 = 26684 * 65536 + 16576 = 0x683C << 16 | 0x40C0
 *   nonce 00..0f, side 01 (sell), count 02
 *   1500 = 0x05DC, 80000 = 0x013880, 1000 = 0x03E8, 120000 = 0x01D4C0
 * Total 13 + 11 + 8 + 8 + 4 + 8 + 8 + 16 + 1 + 1 + 2 * 16 = 110 bytes. */
static const uint8_t EXAMPLE_ENC[] = {
    'm', 'g', 'x', '-', 'o', 'r', 'd', 'e', 'r', '-', 'v', '1', 0,
    10, 'e', 'l', 'm', '-', 's', 't', 'r', 'e', 'e', 't',
    7, 'h', 'o', 'm', 'e', '-', '0', '7',
    0, 0, 0, 0, 0, 0x1d, 0xa6, 0x30,
    0, 0, 0x03, 0x84,
    0, 0, 0x01, 0x97, 0x2b, 0x4a, 0x9e, 0x80,
    0, 0, 0, 0, 0x68, 0x3c, 0x40, 0xc0,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    1,
    2,
    0, 0, 0, 0, 0, 0, 0x05, 0xdc, 0, 0, 0, 0, 0, 0x01, 0x38, 0x80,
    0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 0x01, 0xd4, 0xc0,
};

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static ctl_secret_key *rfc_key(void)
{
    ctl_secret_key *k = NULL;
    assert_int_equal(ctl_key_from_seed(TST_RFC8032_SEED, &k), CTL_KEY_OK);
    return k;
}

static void test_example_encoding(void **state)
{
    (void)state;
    ctl_order_msg m;
    tst_example_order(&m);
    uint8_t enc[CTL_ORDER_ENC_MAX];
    size_t len = 0;
    assert_int_equal(ctl_order_encode(&m, enc, &len), CTL_R_OK);
    assert_int_equal(len, sizeof EXAMPLE_ENC);
    assert_memory_equal(enc, EXAMPLE_ENC, len);

    ctl_order_msg back;
    char why[CTL_DETAIL_MAX];
    assert_int_equal(ctl_order_decode_bin(enc, len, &back, why, sizeof why), CTL_R_OK);
    assert_memory_equal(&back, &m, sizeof m);
}

static void test_rfc8032_key(void **state)
{
    (void)state;
    /* RFC 8032 7.1 TEST 1: the empty message's signature. */
    static const char SIG_HEX[] =
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    ctl_secret_key *k = rfc_key();
    assert_memory_equal(ctl_key_public(k), TST_RFC8032_PK, 32);
    uint8_t sig[64], want[64];
    assert_int_equal(sodium_hex2bin(want, 64, SIG_HEX, 128, NULL, NULL, NULL), 0);
    crypto_sign_detached(sig, NULL, (const uint8_t *)"", 0, ctl_key_secret(k));
    assert_memory_equal(sig, want, 64);
    ctl_key_free(k);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void random_id(char *out, size_t max)
{
    static const char alphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    size_t n = 1 + rnd() % max;
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[rnd() % (sizeof alphabet - 1)];
    out[n] = '\0';
}

/* A random valid order, extremes included. */
static void random_order(ctl_order_msg *m)
{
    memset(m, 0, sizeof *m);
    random_id(m->community, CTL_ID_MAX);
    random_id(m->participant, CTL_ID_MAX);
    m->interval_s = rnd() % 4 == 0 ? CTL_INTERVAL_S_MAX : (uint32_t)(1 + rnd() % 3600);
    int64_t max_id = INT64_MAX / 1000 / (int64_t)m->interval_s;
    m->interval_id = rnd() % 5 == 0 ? max_id : (int64_t)(rnd() % (uint64_t)max_id);
    m->created_ms = rnd() % 5 == 0 ? INT64_MAX : (int64_t)(rnd() >> 1);
    m->expiry_s = rnd() % 5 == 0 ? INT64_MAX / 1000 : 1 + (int64_t)(rnd() % 4000000000u);
    for (int i = 0; i < CTL_ORDER_NONCE_BYTES; i++)
        m->nonce[i] = (uint8_t)rnd();
    m->side = rnd() % 2 ? MKT_SELL : MKT_BUY;
    m->n_steps = 1 + (uint32_t)(rnd() % MKT_MAX_STEPS);
    for (uint32_t s = 0; s < m->n_steps; s++) {
        m->steps[s].energy_wh =
            rnd() % 4 == 0 ? MKT_ENERGY_MAX_WH : 1 + (int64_t)(rnd() % 100000);
        m->steps[s].price_uc_per_kwh =
            rnd() % 4 == 0 ? (rnd() % 2 ? 0 : MKT_PRICE_MAX_UC_PER_KWH) : (int64_t)(rnd() % 10000000);
    }
}

static void test_round_trips(void **state)
{
    (void)state;
    ctl_secret_key *k = rfc_key();
    char json[CTL_ORDER_JSON_MAX], why[CTL_DETAIL_MAX];
    uint8_t enc[CTL_ORDER_ENC_MAX];
    size_t max_json = 0, max_enc = 0;
    for (int i = 0; i < 2000; i++) {
        ctl_order_msg m, back;
        random_order(&m);
        assert_int_equal(ctl_order_sign(&m, ctl_key_secret(k)), CTL_R_OK);
        size_t len = 0, jlen = 0;
        assert_int_equal(ctl_order_encode(&m, enc, &len), CTL_R_OK);
        assert_int_equal(ctl_order_decode_bin(enc, len, &back, why, sizeof why), CTL_R_OK);
        memcpy(back.sig, m.sig, 64);
        assert_memory_equal(&back, &m, sizeof m);

        assert_int_equal(ctl_order_to_json(&m, json, sizeof json, &jlen), CTL_R_OK);
        assert_int_equal(jlen, strlen(json));
        int rc = ctl_order_from_json(json, jlen, &back, why, sizeof why);
        if (rc != CTL_R_OK)
            fail_msg("%s: %s", json, why);
        assert_memory_equal(&back, &m, sizeof m);
        assert_int_equal(ctl_order_verify(&back, TST_RFC8032_PK), CTL_R_OK);
        max_json = jlen > max_json ? jlen : max_json;
        max_enc = len > max_enc ? len : max_enc;
    }
    assert_true(max_enc <= CTL_ORDER_ENC_MAX);
    assert_true(max_json < CTL_ORDER_JSON_MAX / 2);
    ctl_key_free(k);
}

/* The largest possible order fills CTL_ORDER_ENC_MAX exactly. */
static void test_max_size(void **state)
{
    (void)state;
    ctl_order_msg m;
    tst_example_order(&m);
    memset(m.community, 'c', CTL_ID_MAX);
    m.community[CTL_ID_MAX] = '\0';
    memset(m.participant, 'p', CTL_ID_MAX);
    m.participant[CTL_ID_MAX] = '\0';
    m.n_steps = MKT_MAX_STEPS;
    for (int s = 0; s < MKT_MAX_STEPS; s++)
        m.steps[s] = (mkt_step){MKT_ENERGY_MAX_WH, MKT_PRICE_MAX_UC_PER_KWH};
    uint8_t enc[CTL_ORDER_ENC_MAX];
    size_t len;
    assert_int_equal(ctl_order_encode(&m, enc, &len), CTL_R_OK);
    assert_int_equal(len, CTL_ORDER_ENC_MAX);
    char json[CTL_ORDER_JSON_MAX];
    assert_int_equal(ctl_order_to_json(&m, json, sizeof json, &len), CTL_R_OK);
    /* a too-small buffer fails cleanly */
    assert_int_equal(ctl_order_to_json(&m, json, len, NULL), CTL_R_INTERNAL);
    assert_int_equal(ctl_order_to_json(&m, json, len + 1, NULL), CTL_R_OK);
}

/* Changing any bit of the signed bytes or the signature makes verification fail (or the bytes
 * stop being an order at all). */
static void test_tamper_every_bit(void **state)
{
    (void)state;
    ctl_secret_key *k = rfc_key();
    ctl_order_msg m;
    tst_example_order(&m);
    assert_int_equal(ctl_order_sign(&m, ctl_key_secret(k)), CTL_R_OK);
    assert_int_equal(ctl_order_verify(&m, TST_RFC8032_PK), CTL_R_OK);
    uint8_t enc[CTL_ORDER_ENC_MAX];
    size_t len;
    assert_int_equal(ctl_order_encode(&m, enc, &len), CTL_R_OK);
    int still_orders = 0;
    for (size_t i = 0; i < len * 8; i++) {
        enc[i / 8] ^= (uint8_t)(1u << (i % 8));
        ctl_order_msg t;
        if (ctl_order_decode_bin(enc, len, &t, NULL, 0) == CTL_R_OK) {
            still_orders++;
            memcpy(t.sig, m.sig, 64);
            assert_int_equal(ctl_order_verify(&t, TST_RFC8032_PK), CTL_R_BAD_SIGNATURE);
        }
        enc[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    assert_true(still_orders > 400); /* most flips give another valid order: the check bites */
    for (size_t i = 0; i < 64 * 8; i++) {
        ctl_order_msg t = m;
        t.sig[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(ctl_order_verify(&t, TST_RFC8032_PK), CTL_R_BAD_SIGNATURE);
    }
    /* another key */
    uint8_t other_pk[32], other_sk[64];
    crypto_sign_keypair(other_pk, other_sk);
    assert_int_equal(ctl_order_verify(&m, other_pk), CTL_R_BAD_SIGNATURE);
    /* the same fields signed by the other key do not verify with the registered one */
    ctl_order_msg f = m;
    assert_int_equal(ctl_order_sign(&f, other_sk), CTL_R_OK);
    assert_int_equal(ctl_order_verify(&f, TST_RFC8032_PK), CTL_R_BAD_SIGNATURE);
    sodium_memzero(other_sk, sizeof other_sk);
    ctl_key_free(k);
}

static void test_decode_bin_strict(void **state)
{
    (void)state;
    uint8_t buf[CTL_ORDER_ENC_MAX + 8];
    char why[CTL_DETAIL_MAX];
    ctl_order_msg m;
    memcpy(buf, EXAMPLE_ENC, sizeof EXAMPLE_ENC);
    /* every truncation */
    for (size_t n = 0; n < sizeof EXAMPLE_ENC; n++)
        assert_int_equal(ctl_order_decode_bin(buf, n, &m, why, sizeof why), CTL_R_MALFORMED);
    /* trailing byte */
    buf[sizeof EXAMPLE_ENC] = 0;
    assert_int_equal(ctl_order_decode_bin(buf, sizeof EXAMPLE_ENC + 1, &m, why, sizeof why),
                     CTL_R_MALFORMED);
    assert_non_null(strstr(why, "after the last step"));
    /* side 2 */
    buf[76] = 2; /* offset 76: after 13+11+8+8+4+8+8+16 */
    assert_int_equal(ctl_order_decode_bin(buf, sizeof EXAMPLE_ENC, &m, why, sizeof why),
                     CTL_R_MALFORMED);
    assert_non_null(strstr(why, "side"));
    buf[76] = 1;
    /* a '/' in the community (would split an MQTT topic level) */
    buf[17] = '/';
    assert_int_equal(ctl_order_decode_bin(buf, sizeof EXAMPLE_ENC, &m, why, sizeof why),
                     CTL_R_MALFORMED);
    assert_non_null(strstr(why, "community"));
    buf[17] = '-';
    /* zero energy in step 1 */
    memset(buf + 78, 0, 8); /* steps[0].energy_wh at 78 */
    assert_int_equal(ctl_order_decode_bin(buf, sizeof EXAMPLE_ENC, &m, why, sizeof why),
                     CTL_R_MALFORMED);
    assert_non_null(strstr(why, "steps[0].energy_wh"));
    /* negative price: top bit set */
    memcpy(buf, EXAMPLE_ENC, sizeof EXAMPLE_ENC);
    buf[86] = 0x80; /* steps[0].price_uc_per_kwh at 86 */
    assert_int_equal(ctl_order_decode_bin(buf, sizeof EXAMPLE_ENC, &m, why, sizeof why),
                     CTL_R_MALFORMED);
    assert_non_null(strstr(why, "steps[0].price_uc_per_kwh"));
    /* domain tag of another message type */
    memcpy(buf, EXAMPLE_ENC, sizeof EXAMPLE_ENC);
    buf[11] = '2';
    assert_int_equal(ctl_order_decode_bin(buf, sizeof EXAMPLE_ENC, &m, why, sizeof why),
                     CTL_R_MALFORMED);
    assert_non_null(strstr(why, "domain tag"));
}

typedef struct {
    const char *what;
    int reason;
    const char *detail; /* a substring the detail must contain */
} bad_json;

/* Builds the example's JSON with one textual substitution. */
static void example_json(char *out, size_t cap)
{
    ctl_order_msg m;
    tst_example_order(&m);
    ctl_secret_key *k = rfc_key();
    assert_int_equal(ctl_order_sign(&m, ctl_key_secret(k)), CTL_R_OK);
    ctl_key_free(k);
    assert_int_equal(ctl_order_to_json(&m, out, cap, NULL), CTL_R_OK);
}

static void replace(char *s, size_t cap, const char *from, const char *to)
{
    char *p = strstr(s, from);
    if (!p)
        fail_msg("'%s' not in %s", from, s);
    size_t fl = strlen(from), tl = strlen(to), rest = strlen(p + fl);
    assert_true((size_t)(p - s) + tl + rest < cap);
    memmove(p + tl, p + fl, rest + 1);
    memcpy(p, to, tl);
}

static void test_json_rejects(void **state)
{
    (void)state;
    char base[CTL_ORDER_JSON_MAX];
    example_json(base, sizeof base);
    char sig_hex[129];
    const char *sp = strstr(base, "\"sig\":\"") + 7;
    memcpy(sig_hex, sp, 128);
    sig_hex[128] = '\0';
    char sig63[140], sig65[140], sig_upper[140];
    snprintf(sig63, sizeof sig63, "\"sig\":\"%.126s\"", sig_hex);
    snprintf(sig65, sizeof sig65, "\"sig\":\"%s00\"", sig_hex);
    snprintf(sig_upper, sizeof sig_upper, "\"sig\":\"%s\"", sig_hex);
    for (char *c = sig_upper; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    char sig_full[140];
    snprintf(sig_full, sizeof sig_full, "\"sig\":\"%s\"", sig_hex);

    struct {
        const char *from, *to;
        int reason;
        const char *detail;
    } cases[] = {
        {"\"v\":1", "\"v\":2", CTL_R_MALFORMED, "version 2"},
        {"\"v\":1,", "", CTL_R_MALFORMED, "missing field \"v\""},
        {"\"v\":1", "\"v\":1,\"extra\":0", CTL_R_MALFORMED, "unknown field \"extra\""},
        {"\"v\":1", "\"v\":1,\"v\":1", CTL_R_MALFORMED, "duplicate"},
        {"\"interval_s\":900", "\"interval_s\":900.0", CTL_R_MALFORMED, "interval_s: must be an integer"},
        {"\"interval_s\":900", "\"interval_s\":9e2", CTL_R_MALFORMED, "interval_s: must be an integer"},
        {"\"interval_s\":900", "\"interval_s\":\"900\"", CTL_R_MALFORMED, "interval_s: must be an integer"},
        {"\"interval_s\":900", "\"interval_s\":0", CTL_R_MALFORMED, "interval_s: must be 1..86400"},
        {"\"interval_s\":900", "\"interval_s\":86401", CTL_R_MALFORMED, "interval_s"},
        {"\"interval_id\":1943088", "\"interval_id\":-1", CTL_R_MALFORMED, "interval_id"},
        {"\"interval_id\":1943088", "\"interval_id\":01943088", CTL_R_MALFORMED, "not JSON"},
        {"\"interval_id\":1943088", "\"interval_id\":99999999999999999999", CTL_R_MALFORMED, "not JSON"},
        {"\"created_ms\":1748778000000", "\"created_ms\":-5", CTL_R_MALFORMED, "created_ms"},
        {"\"expiry_s\":1748779200", "\"expiry_s\":0", CTL_R_MALFORMED, "expiry_s"},
        {"\"expiry_s\":1748779200", "\"expiry_s\":null", CTL_R_MALFORMED, "expiry_s"},
        {"\"community\":\"elm-street\"", "\"community\":\"elm/street\"", CTL_R_MALFORMED, "community"},
        {"\"community\":\"elm-street\"", "\"community\":\"\"", CTL_R_MALFORMED, "community"},
        {"\"community\":\"elm-street\"", "\"community\":\"elm\\u0000street\"", CTL_R_MALFORMED, "not JSON"},
        {"\"participant\":\"home-07\"", "\"participant\":\"home+07\"", CTL_R_MALFORMED, "participant"},
        {"\"participant\":\"home-07\"", "\"participant\":7", CTL_R_MALFORMED, "participant"},
        {"\"participant\":\"home-07\"",
         "\"participant\":\"h0123456789012345678901234567890123456789012345678901234567890123\"",
         CTL_R_MALFORMED, "participant"},
        {"\"side\":\"sell\"", "\"side\":\"SELL\"", CTL_R_MALFORMED, "side"},
        {"\"side\":\"sell\"", "\"side\":1", CTL_R_MALFORMED, "side"},
        {"\"nonce\":\"000102030405060708090a0b0c0d0e0f\"", "\"nonce\":\"000102030405060708090A0B0C0D0E0F\"",
         CTL_R_MALFORMED, "nonce"},
        {"\"nonce\":\"000102030405060708090a0b0c0d0e0f\"", "\"nonce\":\"000102030405060708090a0b0c0d0e\"",
         CTL_R_MALFORMED, "nonce"},
        {"\"nonce\":\"000102030405060708090a0b0c0d0e0f\"", "\"nonce\":12", CTL_R_MALFORMED, "nonce"},
        {"\"energy_wh\":1500", "\"energy_wh\":0", CTL_R_MALFORMED, "steps[0].energy_wh"},
        {"\"energy_wh\":1500", "\"energy_wh\":1000000000001", CTL_R_MALFORMED, "steps[0].energy_wh"},
        {"\"energy_wh\":1500", "\"energy_wh\":1500.5", CTL_R_MALFORMED, "steps[0].energy_wh"},
        {"\"price_uc_per_kwh\":120000", "\"price_uc_per_kwh\":-1", CTL_R_MALFORMED, "steps[1].price_uc_per_kwh"},
        {"\"price_uc_per_kwh\":120000", "\"price_uc_per_kwh\":120000,\"x\":1", CTL_R_MALFORMED, "steps[1].unknown field"},
        {"{\"energy_wh\":1000,", "{", CTL_R_MALFORMED, "steps[1].missing field \"energy_wh\""},
        {"\"steps\":[", "\"steps\":[1,", CTL_R_MALFORMED, "steps[0]: must be an object"},
        {"\"steps\":[", "\"steps\":{\"a\":", CTL_R_MALFORMED, "not JSON"},
        {sig_full, sig63, CTL_R_BAD_SIGNATURE, "exactly 64 bytes"},
        {sig_full, sig65, CTL_R_BAD_SIGNATURE, "exactly 64 bytes"},
        {sig_full, sig_upper, CTL_R_BAD_SIGNATURE, "lower-case hex"},
        {sig_full, "\"sig\":\"\"", CTL_R_BAD_SIGNATURE, "got 0 characters"},
        {sig_full, "\"sig\":null", CTL_R_MALFORMED, "sig"},
        {"}", "}x", CTL_R_MALFORMED, "not JSON"},
        {"{\"v\"", "[{\"v\"", CTL_R_MALFORMED, "not JSON"},
    };
    char buf[CTL_ORDER_JSON_MAX * 2], why[CTL_DETAIL_MAX];
    ctl_order_msg m;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(buf, sizeof buf, "%s", base);
        replace(buf, sizeof buf, cases[i].from, cases[i].to);
        int rc = ctl_order_from_json(buf, strlen(buf), &m, why, sizeof why);
        if (rc != cases[i].reason || !strstr(why, cases[i].detail))
            fail_msg("case %zu (%s -> %s): got %s \"%s\", want %s \"%s\"", i, cases[i].from,
                     cases[i].to, ctl_reason_name(rc), why, ctl_reason_name(cases[i].reason),
                     cases[i].detail);
    }
    /* 17 steps */
    snprintf(buf, sizeof buf, "%s", base);
    char many[2048] = "\"steps\":[";
    for (int s = 0; s < 17; s++)
        strcat(many, "{\"energy_wh\":1,\"price_uc_per_kwh\":1},");
    replace(buf, sizeof buf, "\"steps\":[", many);
    assert_int_equal(ctl_order_from_json(buf, strlen(buf), &m, why, sizeof why), CTL_R_MALFORMED);
    assert_non_null(strstr(why, "1..16 steps"));
    /* no steps */
    snprintf(buf, sizeof buf, "%s", base);
    char *st = strstr(buf, "\"steps\":[") + 9, *end = strchr(st, ']');
    memmove(st, end, strlen(end) + 1);
    assert_int_equal(ctl_order_from_json(buf, strlen(buf), &m, why, sizeof why), CTL_R_MALFORMED);
    /* oversize input, even if it is valid JSON */
    memset(buf, ' ', CTL_ORDER_JSON_MAX + 1);
    memcpy(buf, base, strlen(base));
    assert_int_equal(ctl_order_from_json(buf, CTL_ORDER_JSON_MAX + 1, &m, why, sizeof why),
                     CTL_R_MALFORMED);
    assert_non_null(strstr(why, "more than"));
    /* a NUL byte inside the length */
    assert_int_equal(ctl_order_from_json(base, strlen(base) + 1, &m, why, sizeof why),
                     CTL_R_MALFORMED);
    /* empty, NULL */
    assert_int_equal(ctl_order_from_json("", 0, &m, why, sizeof why), CTL_R_MALFORMED);
    assert_int_equal(ctl_order_from_json(NULL, 0, &m, NULL, 0), CTL_R_MALFORMED);
    /* the unmodified base decodes: the table above tests what it claims to */
    assert_int_equal(ctl_order_from_json(base, strlen(base), &m, why, sizeof why), CTL_R_OK);
}

/* The signature covers the fields, not the JSON text: other key order and white space verify. */
static void test_json_spelling_irrelevant(void **state)
{
    (void)state;
    char base[CTL_ORDER_JSON_MAX];
    example_json(base, sizeof base);
    const char *sig = strstr(base, "\"sig\":\"") + 7;
    char alt[CTL_ORDER_JSON_MAX];
    snprintf(alt, sizeof alt,
             "\n{ \"sig\" : \"%.128s\",\n \"steps\": [ {\"price_uc_per_kwh\": 80000, \"energy_wh\": "
             "1500}, {\"price_uc_per_kwh\":120000,\"energy_wh\":1000} ],\n \"side\":\"sell\", "
             "\"nonce\":\"000102030405060708090a0b0c0d0e0f\", \"expiry_s\":1748779200, "
             "\"created_ms\":1748778000000, \"interval_s\":900, \"interval_id\":1943088, "
             "\"participant\":\"home-\\u0030\\u0037\", \"community\":\"elm-street\", \"v\":1 }\r\n",
             sig);
    ctl_order_msg a, b;
    char why[CTL_DETAIL_MAX];
    assert_int_equal(ctl_order_from_json(base, strlen(base), &a, why, sizeof why), CTL_R_OK);
    int rc = ctl_order_from_json(alt, strlen(alt), &b, why, sizeof why);
    if (rc)
        fail_msg("%s", why);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(ctl_order_verify(&b, TST_RFC8032_PK), CTL_R_OK);
}

static void test_validate_bounds(void **state)
{
    (void)state;
    ctl_order_msg m;
    char why[CTL_DETAIL_MAX];
    tst_example_order(&m);
    assert_int_equal(ctl_order_validate(&m, why, sizeof why), CTL_R_OK);
    m.interval_id = INT64_MAX / 1000 / 900;
    assert_int_equal(ctl_order_validate(&m, why, sizeof why), CTL_R_OK);
    m.interval_id++;
    assert_int_equal(ctl_order_validate(&m, why, sizeof why), CTL_R_MALFORMED);
    tst_example_order(&m);
    m.side = (mkt_side)2;
    assert_int_equal(ctl_order_validate(&m, why, sizeof why), CTL_R_MALFORMED);
    tst_example_order(&m);
    m.n_steps = 0;
    assert_int_equal(ctl_order_validate(&m, why, sizeof why), CTL_R_MALFORMED);
    m.n_steps = MKT_MAX_STEPS + 1;
    assert_int_equal(ctl_order_validate(&m, why, sizeof why), CTL_R_MALFORMED);
    tst_example_order(&m);
    m.steps[1].price_uc_per_kwh = MKT_PRICE_MAX_UC_PER_KWH + 1;
    assert_int_equal(ctl_order_validate(&m, why, sizeof why), CTL_R_MALFORMED);
    assert_string_equal(why, "steps[1].price_uc_per_kwh: must be 0..1000000000000");
    /* an invalid order cannot be signed or encoded */
    uint8_t sk[64] = {0}, enc[CTL_ORDER_ENC_MAX];
    size_t len;
    assert_int_equal(ctl_order_sign(&m, sk), CTL_R_MALFORMED);
    assert_int_equal(ctl_order_encode(&m, enc, &len), CTL_R_MALFORMED);
    assert_int_equal(ctl_order_verify(&m, TST_RFC8032_PK), CTL_R_MALFORMED);
    assert_true(ctl_id_valid("a"));
    assert_true(ctl_id_valid("Ab_c-9"));
    assert_false(ctl_id_valid("A.b")); /* a '.' is not MQTT-safe enough for mgx (ident.h) */
    assert_false(ctl_id_valid(""));
    assert_false(ctl_id_valid("a b"));
    assert_false(ctl_id_valid("a#"));
    assert_false(ctl_id_valid("\xc3\xa9"));
    char id64[65]; /* the boundary: 63 bytes pass, 64 do not (test_ident has the rest) */
    memset(id64, 'x', 64);
    id64[64] = '\0';
    assert_false(ctl_id_valid(id64));
    id64[63] = '\0';
    assert_true(ctl_id_valid(id64));
}

static void test_reasons(void **state)
{
    (void)state;
    for (int i = 0; i < CTL_R_COUNT; i++) {
        const char *n = ctl_reason_name(i);
        assert_non_null(n);
        assert_int_equal(ctl_reason_parse(n), i);
        assert_string_not_equal(ctl_reason_text(i), "unknown reason code");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(n, ctl_reason_name(j));
    }
    assert_null(ctl_reason_name(CTL_R_COUNT));
    assert_null(ctl_reason_name(-1));
    assert_string_equal(ctl_reason_text(99), "unknown reason code");
    assert_int_equal(ctl_reason_parse("nope"), -1);
    assert_int_equal(ctl_reason_parse("bad_signature"), CTL_R_BAD_SIGNATURE);
    assert_true(ctl_reason_is_accept(CTL_R_OK));
    assert_true(ctl_reason_is_accept(CTL_R_REPLACED));
    assert_false(ctl_reason_is_accept(CTL_R_GATE_CLOSED));
}

static void test_receipts(void **state)
{
    (void)state;
    ctl_order_msg m;
    tst_example_order(&m);
    ctl_receipt r, back;
    char json[CTL_RECEIPT_JSON_MAX], why[CTL_DETAIL_MAX];
    size_t len;
    ctl_receipt_for(&r, &m, CTL_R_GATE_CLOSED, "gate \"closed\"\\ at\n12", 1748778300123);
    assert_string_equal(r.detail, "gate \"closed\"\\ at?12");
    assert_int_equal(ctl_receipt_to_json(&r, json, sizeof json, &len), CTL_R_OK);
    assert_string_equal(json,
                        "{\"v\":1,\"participant\":\"home-07\",\"interval_id\":1943088,"
                        "\"nonce\":\"000102030405060708090a0b0c0d0e0f\",\"status\":\"rejected\","
                        "\"reason\":\"gate_closed\",\"detail\":\"gate \\\"closed\\\"\\\\ at?12\","
                        "\"controller_time_ms\":1748778300123}");
    assert_int_equal(ctl_receipt_from_json(json, len, &back, why, sizeof why), CTL_R_OK);
    assert_memory_equal(&back, &r, sizeof r);

    ctl_receipt_for(&r, &m, CTL_R_REPLACED, NULL, 5);
    assert_int_equal(ctl_receipt_to_json(&r, json, sizeof json, &len), CTL_R_OK);
    assert_non_null(strstr(json, "\"status\":\"accepted\",\"reason\":\"replaced\",\"detail\":\"\""));
    assert_int_equal(ctl_receipt_from_json(json, len, &back, why, sizeof why), CTL_R_OK);
    assert_memory_equal(&back, &r, sizeof r);

    /* a long detail is cut, and the JSON still fits */
    char long_detail[1000];
    memset(long_detail, '"', sizeof long_detail - 1);
    long_detail[sizeof long_detail - 1] = '\0';
    ctl_receipt_for(&r, &m, CTL_R_MALFORMED, long_detail, 5);
    assert_int_equal(strlen(r.detail), CTL_DETAIL_MAX - 1);
    assert_int_equal(ctl_receipt_to_json(&r, json, sizeof json, &len), CTL_R_OK);
    assert_int_equal(ctl_receipt_from_json(json, len, &back, why, sizeof why), CTL_R_OK);
    assert_string_equal(back.detail, r.detail);

    /* inconsistent status and reason, unknown reason, extra field */
    const char *bad[] = {
        "{\"v\":1,\"participant\":\"a\",\"interval_id\":1,\"nonce\":\"000102030405060708090a0b0c0d0e0f\","
        "\"status\":\"accepted\",\"reason\":\"gate_closed\",\"detail\":\"\",\"controller_time_ms\":1}",
        "{\"v\":1,\"participant\":\"a\",\"interval_id\":1,\"nonce\":\"000102030405060708090a0b0c0d0e0f\","
        "\"status\":\"rejected\",\"reason\":\"sunspots\",\"detail\":\"\",\"controller_time_ms\":1}",
        "{\"v\":1,\"participant\":\"a\",\"interval_id\":1,\"nonce\":\"000102030405060708090a0b0c0d0e0f\","
        "\"status\":\"rejected\",\"reason\":\"replay\",\"detail\":\"\",\"controller_time_ms\":1,\"x\":1}",
        "{\"v\":1,\"participant\":\"a/b\",\"interval_id\":1,\"nonce\":\"000102030405060708090a0b0c0d0e0f\","
        "\"status\":\"rejected\",\"reason\":\"replay\",\"detail\":\"\",\"controller_time_ms\":1}",
        "{\"v\":1,\"participant\":\"a\",\"interval_id\":1,\"nonce\":\"000102030405060708090a0b0c0d0e0F\","
        "\"status\":\"rejected\",\"reason\":\"replay\",\"detail\":\"\",\"controller_time_ms\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ctl_receipt_from_json(bad[i], strlen(bad[i]), &back, why, sizeof why),
                         CTL_R_MALFORMED);
    /* a receipt for an order whose participant could not be read */
    memset(&m, 0, sizeof m);
    strcpy(m.participant, "bad/id");
    ctl_receipt_for(&r, &m, CTL_R_MALFORMED, "x", 1);
    assert_string_equal(r.participant, "");
    assert_int_equal(ctl_receipt_to_json(&r, json, sizeof json, &len), CTL_R_OK);
    assert_int_equal(ctl_receipt_from_json(json, len, &back, why, sizeof why), CTL_R_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_encoding),
        cmocka_unit_test(test_rfc8032_key),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_max_size),
        cmocka_unit_test(test_tamper_every_bit),
        cmocka_unit_test(test_decode_bin_strict),
        cmocka_unit_test(test_json_rejects),
        cmocka_unit_test(test_json_spelling_irrelevant),
        cmocka_unit_test(test_validate_bounds),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_receipts),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
