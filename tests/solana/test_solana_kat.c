/*
 * Known-answer tests of the pure Solana pieces: base58 (Bitcoin Core's vectors and the program
 * ids), compact-u16, the off-curve test, program-derived and associated token addresses
 * (vectors published with the Solana SDK, @solana/kit and spl-token's JS tests), and the SPL
 * instruction data layouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mgx/solana.h"
#include "mgx/solana_base58.h"
#include "mgx/solana_ix.h"
#include "mgx/solana_pda.h"
#include "mgx/solana_tx.h"

static void hex_to_bin(const char *hex, uint8_t *out, size_t *n)
{
    size_t len = strlen(hex);
    assert_int_equal(sodium_hex2bin(out, len / 2, hex, len, NULL, n, NULL), 0);
}

static sol_pubkey key(const char *b58)
{
    sol_pubkey k;
    assert_int_equal(sol_pubkey_from_base58(b58, &k), SOL_OK);
    return k;
}

static void assert_key(const sol_pubkey *k, const char *b58)
{
    char text[SOL_PUBKEY_B58_MAX + 1];
    assert_true(sol_pubkey_to_base58(k, text) > 0);
    assert_string_equal(text, b58);
}

/* Bitcoin Core src/test/data/base58_encode_decode.json. */
static void base58_bitcoin_vectors(void **state)
{
    (void)state;
    static const char *const v[][2] = {
        {"61", "2g"},
        {"626262", "a3gV"},
        {"636363", "aPEr"},
        {"73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2"},
        {"00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"},
        {"516b6fcd0f", "ABnLTmg"},
        {"bf4f89001e670274dd", "3SEo3LWLoPntC"},
        {"572e4794", "3EFU7m"},
        {"ecac89cad93923c02321", "EJDM8drfXA6uyA"},
        {"10c8511e", "Rt5zm"},
        {"00000000000000000000", "1111111111"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t bin[64], back[64];
        size_t n;
        char text[100];
        hex_to_bin(v[i][0], bin, &n);
        assert_int_equal(sol_base58_encode(bin, n, text, sizeof text), (int)strlen(v[i][1]));
        assert_string_equal(text, v[i][1]);
        assert_int_equal(sol_base58_decode(v[i][1], back, n), SOL_OK);
        assert_memory_equal(back, bin, n);
        /* one byte more or less is a different value, not a truncation */
        assert_int_equal(sol_base58_decode(v[i][1], back, n + 1), SOL_E_BASE58);
        if (n > 1)
            assert_int_equal(sol_base58_decode(v[i][1], back, n - 1), SOL_E_BASE58);
    }
}

static void base58_program_ids(void **state)
{
    (void)state;
    /* The byte constants in solana.c against their names. */
    assert_key(&SOL_TOKEN_PROGRAM, "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
    assert_key(&SOL_ATA_PROGRAM, "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL");
    assert_key(&SOL_MEMO_PROGRAM, "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
    assert_key(&SOL_SYSTEM_PROGRAM, "11111111111111111111111111111111");
    assert_key(&SOL_TOKEN_2022_PROGRAM, "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
    sol_pubkey k = key("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
    assert_true(sol_pubkey_eq(&k, &SOL_TOKEN_PROGRAM));
}

static void base58_rejects(void **state)
{
    (void)state;
    sol_pubkey k;
    assert_int_equal(sol_pubkey_from_base58("", &k), SOL_E_BASE58);
    assert_int_equal(sol_pubkey_from_base58("1", &k), SOL_E_BASE58);
    /* 33 ones are 33 zero bytes */
    assert_int_equal(sol_pubkey_from_base58("111111111111111111111111111111111", &k), SOL_E_BASE58);
    /* 0, O, I, l are not in the alphabet */
    assert_int_equal(sol_pubkey_from_base58("Tokenkeg0feZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", &k),
                     SOL_E_BASE58);
    assert_int_equal(sol_pubkey_from_base58("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5Dl", &k),
                     SOL_E_BASE58);
    /* 44 'z' is about 2^258: more than 32 bytes */
    assert_int_equal(sol_pubkey_from_base58("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", &k),
                     SOL_E_BASE58);
    char small[8];
    assert_int_equal(sol_base58_encode(SOL_TOKEN_PROGRAM.b, 32, small, sizeof small), SOL_E_SPACE);
}

static void base58_round_trips(void **state)
{
    (void)state;
    for (int i = 0; i < 2000; i++) {
        uint8_t b[64], back[64];
        char text[SOL_SIGNATURE_B58_MAX + 1];
        size_t n = (size_t)(i % 2 ? 64 : 32);
        randombytes_buf(b, n);
        if (i % 7 == 0)
            memset(b, 0, (size_t)(i % 5)); /* leading zeros */
        int len = sol_base58_encode(b, n, text, sizeof text);
        assert_true(len > 0 && len <= (n == 32 ? SOL_PUBKEY_B58_MAX : SOL_SIGNATURE_B58_MAX));
        assert_int_equal(sol_base58_decode(text, back, n), SOL_OK);
        assert_memory_equal(b, back, n);
    }
}

static void shortvec(void **state)
{
    (void)state;
    /* Solana's short_vec tests: 0 -> 00, 0x7f -> 7f, 0x80 -> 80 01, 0xff -> ff 01,
     * 0x100 -> 80 02, 0x7fff -> ff ff 01, 0xffff -> ff ff 03 */
    static const struct {
        uint16_t v;
        size_t n;
        uint8_t b[3];
    } kat[] = {{0, 1, {0}},          {0x7f, 1, {0x7f}},          {0x80, 2, {0x80, 1}},
               {0xff, 2, {0xff, 1}}, {0x100, 2, {0x80, 2}},      {0x3fff, 2, {0xff, 0x7f}},
               {0x4000, 3, {0x80, 0x80, 1}}, {0x7fff, 3, {0xff, 0xff, 1}},
               {0xffff, 3, {0xff, 0xff, 3}}};
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        uint8_t out[3];
        uint16_t v;
        assert_int_equal(sol_shortvec_encode(kat[i].v, out), kat[i].n);
        assert_memory_equal(out, kat[i].b, kat[i].n);
        assert_int_equal(sol_shortvec_len(kat[i].v), kat[i].n);
        assert_int_equal(sol_shortvec_decode(kat[i].b, kat[i].n, &v), (int)kat[i].n);
        assert_int_equal(v, kat[i].v);
        assert_int_equal(sol_shortvec_decode(kat[i].b, kat[i].n - 1, &v), SOL_E_PARSE);
    }
    uint16_t v;
    static const uint8_t non_minimal[] = {0x80, 0x00}, too_big[] = {0xff, 0xff, 0x04},
                         too_long[] = {0x80, 0x80, 0x80, 0x01}, padded[] = {0xff, 0x80, 0x00};
    assert_int_equal(sol_shortvec_decode(non_minimal, 2, &v), SOL_E_PARSE);
    assert_int_equal(sol_shortvec_decode(too_big, 3, &v), SOL_E_PARSE);
    assert_int_equal(sol_shortvec_decode(too_long, 4, &v), SOL_E_PARSE);
    assert_int_equal(sol_shortvec_decode(padded, 3, &v), SOL_E_PARSE);
}

/* @solana/kit's curve vectors (addresses package tests). */
static void on_curve(void **state)
{
    (void)state;
    static const char *const on[] = {"nick6zJc6HpW3kfBm4xS2dmbuVRyb5F3AnUvj5ymzR5",
                                     "11111111111111111111111111111111",
                                     "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"};
    static const char *const off[] = {"CCMCWh4FudPEmY6Q1AVi5o8mQMXkHYkJUmZfzRGdcJ9P",
                                      "2DRxyJDsDccGL6mb8PLMsKQTCU3C7xUq8aprz53VcW4k"};
    for (size_t i = 0; i < 3; i++) {
        sol_pubkey k = key(on[i]);
        assert_int_equal(sol_is_on_curve(k.b), 1);
    }
    for (size_t i = 0; i < 2; i++) {
        sol_pubkey k = key(off[i]);
        assert_int_equal(sol_is_on_curve(k.b), 0);
    }
    /* Every Ed25519 public key is on the curve. */
    for (int i = 0; i < 100; i++) {
        uint8_t pk[32], sk[64];
        crypto_sign_keypair(pk, sk);
        assert_int_equal(sol_is_on_curve(pk), 1);
    }
}

static sol_seed seed_str(const char *s)
{
    sol_seed seed = {(const uint8_t *)s, strlen(s)};
    return seed;
}

/* Solana SDK pubkey tests (test_create_program_address), program BPFLoaderUpgradeab1e... */
static void create_program_address(void **state)
{
    (void)state;
    sol_pubkey prog = key("BPFLoaderUpgradeab1e11111111111111111111111"), out;
    sol_pubkey seedkey = key("SeedPubey1111111111111111111111111111111111");
    static const uint8_t one = 1, zero = 0;
    sol_seed s1[] = {{NULL, 0}, {&one, 1}};
    assert_int_equal(sol_create_program_address(s1, 2, &prog, &out), SOL_OK);
    assert_key(&out, "BwqrghZA2htAcqq8dzP1WDAhTXYTYWj7CHxF5j7TDBAe");
    sol_seed s2[] = {seed_str("\xe2\x98\x89"), {&zero, 1}}; /* U+2609 SUN in UTF-8 */
    assert_int_equal(sol_create_program_address(s2, 2, &prog, &out), SOL_OK);
    assert_key(&out, "13yWmRpaTR4r5nAktwLqMpRNr28tnVUZw26rTvPSSB19");
    sol_seed s3[] = {seed_str("Talking"), seed_str("Squirrels")};
    assert_int_equal(sol_create_program_address(s3, 2, &prog, &out), SOL_OK);
    assert_key(&out, "2fnQrngrQT4SeLcdToJAD96phoEjNL2man2kfRLCASVk");
    sol_seed s4[] = {{seedkey.b, 32}, {&one, 1}};
    assert_int_equal(sol_create_program_address(s4, 2, &prog, &out), SOL_OK);
    assert_key(&out, "976ymqVnfE32QFe6NfGDctSvVa36LWnvYxhU6G2232YL");
    /* seed limits: 32 bytes is fine, 33 is not; 16 seeds fine, 17 not */
    uint8_t big[33] = {0};
    sol_seed s5[] = {{big, 32}};
    assert_int_equal(sol_create_program_address(s5, 1, &prog, &out), SOL_OK);
    s5[0].len = 33;
    assert_int_equal(sol_create_program_address(s5, 1, &prog, &out), SOL_E_SEEDS);
    sol_seed many[17];
    for (int i = 0; i < 17; i++)
        many[i] = (sol_seed){big, 1};
    assert_int_not_equal(sol_create_program_address(many, 16, &prog, &out), SOL_E_SEEDS);
    assert_int_equal(sol_create_program_address(many, 17, &prog, &out), SOL_E_SEEDS);
    assert_int_equal(sol_find_program_address(many, 16, &prog, &out, NULL), SOL_E_SEEDS);
}

/* @solana/kit getProgramDerivedAddress vectors and micro-sol-signer's programAddress. */
static void find_program_address(void **state)
{
    (void)state;
    static const uint8_t bytes123[] = {1, 2, 3};
    static const struct {
        const char *program;
        const char *seed; /* NULL: none; "\x01\x02\x03" handled below */
        int raw123;
        const char *want;
        uint8_t bump;
    } v[] = {
        {"CZ3TbkgUYpDAJVEWpujQhDSgzNTeqbokrJmYa1j4HAZc", NULL, 0,
         "9tVtkyCGAHSDDBPwz7895aC3p2gJRjpu2v26o35FTUco", 255},
        {"EfTbwNBrSqSuCNBhWUHsBoBdSMWgRU1S47daqRNgW7aK", NULL, 0,
         "CKWT8KZ5GMzKpVRiAULWKPg1LiHt9U3NdAtbuTErHCTq", 251},
        {"FD3PDEvpQ9JXq8tv7FpJPyZrCjWkCnAaTju16gFPdpqP", NULL, 1,
         "9Tj3hpMWacDiZoBe94sjwJQ72zsUVvEQYsrqyy2CfHky", 255},
        {"EKaNRGA37uiGRyRPMap5EZg9cmbT5mt7KWrGwKwAQ3rK", "hello", 0,
         "6V76gtKMCmVVjrx4sxR9uB868HtZbL3piKEmadC7rSgf", 255},
        {"A5dcVPLJsE2vbf7hkqqyYkYDK9UjUfNxuwGtWF2m2vEz", "\xf0\x9f\x9a\x80", 0,
         "GYpAzW57Ex4Sw3rp4pq95QrjvtsDyqZsMhSZwqz3NMsE", 255},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sol_pubkey prog = key(v[i].program), out, again;
        sol_seed s[2];
        size_t ns = 0;
        if (v[i].seed)
            s[ns++] = seed_str(v[i].seed);
        if (v[i].raw123)
            s[ns++] = (sol_seed){bytes123, 3};
        uint8_t bump = 0;
        assert_int_equal(sol_find_program_address(s, ns, &prog, &out, &bump), SOL_OK);
        assert_key(&out, v[i].want);
        assert_int_equal(bump, v[i].bump);
        s[ns++] = (sol_seed){&bump, 1};
        assert_int_equal(sol_create_program_address(s, ns, &prog, &again), SOL_OK);
        assert_true(sol_pubkey_eq(&out, &again));
    }
    sol_pubkey prog = key("BPFLoader1111111111111111111111111111111111"), out;
    assert_int_equal(sol_find_program_address(NULL, 0, &prog, &out, NULL), SOL_OK);
    assert_key(&out, "EXWkUCz3YJU9TDVk39ogA4TwoVsUi75ZDhH6yT7acPgQ");
}

/* The bump-251 vector above: bumps 255..252 hash onto the curve. A subgroup validity check
 * (libsodium's is_valid_point) calls most such points invalid and would stop too early. */
static void subgroup_check_is_wrong(void **state)
{
    (void)state;
    sol_pubkey prog = key("EfTbwNBrSqSuCNBhWUHsBoBdSMWgRU1S47daqRNgW7aK");
    int on = 0, valid = 0;
    for (int b = 255; b >= 252; b--) {
        uint8_t bump = (uint8_t)b, h[32];
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, &bump, 1);
        crypto_hash_sha256_update(&st, prog.b, 32);
        crypto_hash_sha256_update(&st, (const uint8_t *)"ProgramDerivedAddress", 21);
        crypto_hash_sha256_final(&st, h);
        on += sol_is_on_curve(h);
        valid += crypto_core_ed25519_is_valid_point(h);
    }
    assert_int_equal(on, 4);
    assert_true(valid < 4); /* the subgroup check would have taken a wrong bump */
}

/* spl-token JS tests (getAssociatedTokenAddress) and micro-sol-signer (Token-2022 holders). */
static void associated_token_accounts(void **state)
{
    (void)state;
    static const char *const v[][4] = {
        {"B8UwBUUnKwCyKuGMbFKWaG7exYdDk2ozZrPg72NyVbfj", "7o36UsWR1JQLpZ9PE2gn9L4SQ69CNNiWAXd4Jt7rqz9Z",
         "T", "DShWnroshVbeUp28oopA3Pu7oFPDBtC1DBmPECXXAQ9n"},
        /* an off-curve owner (itself an ATA) is allowed */
        {"DShWnroshVbeUp28oopA3Pu7oFPDBtC1DBmPECXXAQ9n", "7o36UsWR1JQLpZ9PE2gn9L4SQ69CNNiWAXd4Jt7rqz9Z",
         "T", "F3DmXZFqkfEWFA7MN2vDPs813GeEWPaT6nLk4PSGuWJd"},
        {"22Wnk8PwyWZV7BfkZGJEKT9jGGdtvu7xY6EXeRh7zkBa", "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo",
         "2", "5nu6HDY7t1Ds8oPNsArrhb1rzvRqmGubyteyAUncFyNb"},
        {"BNXnu85Kt1VXSYYYNMXtRfRrscyETxcdsEiTLSToQYZa", "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo",
         "2", "8Ycmt6GTtXcmaTXXRZVLATBQHKKFRaFpD6DD4wx81M4"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sol_pubkey owner = key(v[i][0]), mint = key(v[i][1]), ata;
        const sol_pubkey *prog = v[i][2][0] == 'T' ? &SOL_TOKEN_PROGRAM : &SOL_TOKEN_2022_PROGRAM;
        assert_int_equal(sol_ata_address(&owner, &mint, prog, &ata), SOL_OK);
        assert_key(&ata, v[i][3]);
        assert_int_equal(sol_is_on_curve(ata.b), 0);
    }
}

/* micro-sol-signer's token instruction tests: TransferChecked 123 with decimals 10 is
 * 0c 7b00000000000000 0a; Approve 123 is 04 7b00000000000000. */
static void instruction_layouts(void **state)
{
    (void)state;
    sol_pubkey a = key("7o36UsWR1JQLpZ9PE2gn9L4SQ69CNNiWAXd4Jt7rqz9Z"),
               b = key("DShWnroshVbeUp28oopA3Pu7oFPDBtC1DBmPECXXAQ9n"),
               c = key("Hozo7TadHq6PMMiGLGNvgk79Hvj5VTAM7Ny2bamQ2m8q"),
               d = key("3ECJhLBQ9DAuKBKNjQGLEk3YqoFcF1YvhdayQ2C96eXF");
    sol_ix ix;
    sol_ix_transfer_checked(&ix, &a, &b, &c, &d, 123, 10);
    static const uint8_t tc[] = {0x0c, 0x7b, 0, 0, 0, 0, 0, 0, 0, 0x0a};
    assert_true(sol_pubkey_eq(&ix.program, &SOL_TOKEN_PROGRAM));
    assert_int_equal(ix.data_len, sizeof tc);
    assert_memory_equal(ix.data, tc, sizeof tc);
    assert_int_equal(ix.n_accounts, 4);
    /* source w, mint r, destination w, authority signer r */
    const uint8_t flags[4][2] = {{0, 1}, {0, 0}, {0, 1}, {1, 0}};
    const sol_pubkey *keys[4] = {&a, &b, &c, &d};
    for (int i = 0; i < 4; i++) {
        assert_true(sol_pubkey_eq(&ix.accounts[i].key, keys[i]));
        assert_int_equal(ix.accounts[i].is_signer, flags[i][0]);
        assert_int_equal(ix.accounts[i].is_writable, flags[i][1]);
    }
    sol_ix_approve(&ix, &a, &b, &c, 123);
    static const uint8_t ap[] = {0x04, 0x7b, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(ix.data_len, sizeof ap);
    assert_memory_equal(ix.data, ap, sizeof ap);
    assert_int_equal(ix.n_accounts, 3);
    assert_int_equal(ix.accounts[0].is_writable, 1);
    assert_int_equal(ix.accounts[1].is_writable + ix.accounts[1].is_signer, 0);
    assert_int_equal(ix.accounts[2].is_signer, 1);
    /* u64 little-endian at the top of the range */
    sol_ix_transfer_checked(&ix, &a, &b, &c, &d, UINT64_MAX - 1, 6);
    static const uint8_t top[] = {0x0c, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 6};
    assert_memory_equal(ix.data, top, sizeof top);
    assert_int_equal(sol_ix_memo(&ix, "hi", 2), SOL_OK);
    assert_true(sol_pubkey_eq(&ix.program, &SOL_MEMO_PROGRAM));
    assert_int_equal(ix.n_accounts, 0);
    assert_int_equal(sol_ix_memo(&ix, "", 0), SOL_E_INVAL);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base58_bitcoin_vectors),
        cmocka_unit_test(base58_program_ids),
        cmocka_unit_test(base58_rejects),
        cmocka_unit_test(base58_round_trips),
        cmocka_unit_test(shortvec),
        cmocka_unit_test(on_curve),
        cmocka_unit_test(create_program_address),
        cmocka_unit_test(find_program_address),
        cmocka_unit_test(subgroup_check_is_wrong),
        cmocka_unit_test(associated_token_accounts),
        cmocka_unit_test(instruction_layouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
