/*
 * Known-answer tests of the ledger's cryptography and records:
 *   - Ed25519: RFC 8032 section 7.1 (keys from seeds, byte-exact signatures) and all 151
 *     Wycheproof vectors through stl_verify, which must also reject any signature that is not
 *     exactly 64 bytes (tests/data/vectors/);
 *   - C2SP signed notes: the Go sumdb/note example key and note (golang.org/x/mod/sumdb/note,
 *     package documentation and example_test.go) signed byte for byte and verified, plus the
 *     signed-note specification's example (c2sp.org/signed-note);
 *   - checkpoints: sign/open round trip and every tampering rejected;
 *   - transaction and block encodings of both ledger versions: round trips, exact lengths, and
 *     no byte can change without the decoder refusing it or the id changing;
 *   - version 2's salts, ids and leaves against values computed outside mgx (Python hashlib,
 *     from the layout in docs/ledger.md; the commands are in the test's comment).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mgx/checkpoint.h"
#include "mgx/ledger_record.h"
#include "mgx/merkle.h"

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    if (strcmp(hex, "-") == 0)
        return 0;
    size_t got = 0;
    assert_int_equal(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &got, NULL), 0);
    return got;
}

static void rfc8032(void **state)
{
    (void)state;
    FILE *f = fopen(MGX_SOURCE_DIR "/tests/data/vectors/rfc8032_ed25519.txt", "r");
    assert_non_null(f);
    char line[4096], name[32], seedh[80], pkh[80], msgh[1024], sigh[160];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' ||
            sscanf(line, "%31s %79s %79s %1023s %159s", name, seedh, pkh, msgh, sigh) != 5)
            continue;
        uint8_t seed[32], pk[32], want_pk[32], sk[64], msg[512], sig[64], want_sig[64];
        assert_int_equal(unhex(seedh, seed, 32), 32);
        assert_int_equal(unhex(pkh, want_pk, 32), 32);
        size_t ml = unhex(msgh, msg, sizeof msg);
        assert_int_equal(unhex(sigh, want_sig, 64), 64);
        crypto_sign_seed_keypair(pk, sk, seed);
        assert_memory_equal(pk, want_pk, 32);
        stl_sign(msg, ml, sk, sig);
        assert_memory_equal(sig, want_sig, 64);
        assert_int_equal(stl_verify(msg, ml, sig, 64, pk), STL_OK);
        sig[10] ^= 1;
        assert_int_equal(stl_verify(msg, ml, sig, 64, pk), STL_E_SIGNATURE);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 4);
}

static void wycheproof(void **state)
{
    (void)state;
    FILE *f = fopen(MGX_SOURCE_DIR "/tests/data/vectors/wycheproof_ed25519.txt", "r");
    assert_non_null(f);
    static char line[8192], pkh[80], msgh[4096], sigh[512], res[16];
    int id, n = 0, valid = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' ||
            sscanf(line, "%d %79s %4095s %511s %15s", &id, pkh, msgh, sigh, res) != 5)
            continue;
        uint8_t pk[32], msg[2048], sig[256];
        assert_int_equal(unhex(pkh, pk, 32), 32);
        size_t ml = unhex(msgh, msg, sizeof msg), sl = unhex(sigh, sig, sizeof sig);
        int want = strcmp(res, "valid") == 0 ? STL_OK : STL_E_SIGNATURE;
        int got = stl_verify(msg, ml, sig, sl, pk);
        if (got != want)
            fail_msg("Wycheproof tcId %d: expected %s", id, res);
        valid += want == STL_OK;
        n++;
    }
    fclose(f);
    assert_int_equal(n, 151);
    printf("Wycheproof Ed25519: %d vectors (%d valid) agree\n", n, valid);
}

/* golang.org/x/mod/sumdb/note: the PeterNeumann example (key, text, signature line). */
static const char GO_SKEY[] = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
static const char GO_VKEY[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char GO_TEXT[] = "If you think cryptography is the answer to your problem,\n"
                              "then you don't know what your problem is.\n";
static const char GO_SIGLINE[] = "\xE2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
/* c2sp.org/signed-note: the specification's example. */
static const char SPEC_VKEY[] = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
static const char SPEC_NOTE[] = "This is an example message.\n\n\xE2\x80\x94 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

static void signed_notes(void **state)
{
    (void)state;
    char name[STL_COMMUNITY_MAX + 1], name2[STL_COMMUNITY_MAX + 1], text[512];
    uint8_t *sk = sodium_malloc(64), pk[32];
    assert_non_null(sk);
    assert_int_equal(stl_skey_parse(GO_SKEY, name, sk), STL_OK);
    assert_string_equal(name, "PeterNeumann");
    assert_int_equal(stl_vkey_parse(GO_VKEY, name2, pk), STL_OK);
    assert_memory_equal(pk, sk + 32, 32); /* the signer key derives the verifier key */
    assert_int_equal(stl_vkey_format(name, pk, text, sizeof text), STL_OK);
    assert_string_equal(text, GO_VKEY);
    assert_int_equal(stl_skey_format(name, sk, text, sizeof text), STL_OK);
    assert_string_equal(text, GO_SKEY);
    /* signing the example text gives the published signature line, byte for byte */
    uint8_t blob[68];
    stl_note_key_id(name, pk, blob);
    stl_sign((const uint8_t *)GO_TEXT, strlen(GO_TEXT), sk, blob + 4);
    char b64[128];
    sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    snprintf(text, sizeof text, "\xE2\x80\x94 PeterNeumann %s\n", b64);
    assert_string_equal(text, GO_SIGLINE);
    char note[1024];
    snprintf(note, sizeof note, "%s\n%s", GO_TEXT, GO_SIGLINE);
    size_t tl;
    assert_int_equal(stl_note_open(note, strlen(note), name, pk, &tl), STL_OK);
    assert_int_equal(tl, strlen(GO_TEXT));
    /* a flipped text byte, a wrong key name, an unknown signer only */
    note[3] ^= 1;
    assert_int_equal(stl_note_open(note, strlen(note), name, pk, NULL), STL_E_SIGNATURE);
    note[3] ^= 1;
    assert_int_equal(stl_note_open(note, strlen(note), "EnochRoot", pk, NULL), STL_E_SIGNATURE);
    /* the specification's example */
    assert_int_equal(stl_vkey_parse(SPEC_VKEY, name2, pk), STL_OK);
    assert_string_equal(name2, "example.com/foo");
    assert_int_equal(stl_note_open(SPEC_NOTE, strlen(SPEC_NOTE), name2, pk, &tl), STL_OK);
    assert_int_equal(tl, strlen("This is an example message.\n"));
    /* mangled keys are refused: a changed key id, a changed key byte, a missing part */
    char bad[128];
    strcpy(bad, GO_VKEY);
    bad[13] = bad[13] == '0' ? '1' : '0';
    assert_int_equal(stl_vkey_parse(bad, name2, pk), STL_E_NOTE);
    strcpy(bad, GO_VKEY);
    bad[30] = bad[30] == 'A' ? 'B' : 'A';
    assert_int_equal(stl_vkey_parse(bad, name2, pk), STL_E_NOTE);
    assert_int_equal(stl_vkey_parse("PeterNeumann+c74f20a3", name2, pk), STL_E_NOTE);
    assert_int_equal(stl_skey_parse(GO_VKEY, name2, sk), STL_E_NOTE);
    sodium_free(sk);
}

static void checkpoints(void **state)
{
    (void)state;
    uint8_t *sk = sodium_malloc(64), pk[32], root[32], other_pk[32], other_sk[64];
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(other_pk, other_sk);
    for (int i = 0; i < 32; i++)
        root[i] = (uint8_t)(i * 7);
    char note[STL_NOTE_MAX];
    int n = stl_checkpoint_sign("street.example/mgx", 12345, root, "street.example/mgx", sk, note,
                                sizeof note);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(note));
    /* the body is the three checkpoint lines */
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, root, 32, sodium_base64_VARIANT_ORIGINAL);
    char want[256];
    snprintf(want, sizeof want, "street.example/mgx\n12345\n%s\n\n\xE2\x80\x94 street.example/mgx ", b64);
    assert_memory_equal(note, want, strlen(want));
    stl_checkpoint cp;
    assert_int_equal(stl_checkpoint_open(note, (size_t)n, "street.example/mgx", pk,
                                         "street.example/mgx", &cp), STL_OK);
    assert_int_equal(cp.size, 12345);
    assert_memory_equal(cp.root, root, 32);
    /* every single-byte change of the signed text or the signature is refused */
    for (int i = 0; i < n - 1; i++) {
        char t[STL_NOTE_MAX];
        memcpy(t, note, (size_t)n);
        t[i] ^= 0x01;
        assert_int_not_equal(stl_checkpoint_open(t, (size_t)n, "street.example/mgx", pk, NULL, &cp),
                             STL_OK);
    }
    assert_int_equal(stl_checkpoint_open(note, (size_t)n, "street.example/mgx", other_pk, NULL, &cp),
                     STL_E_SIGNATURE);
    assert_int_equal(stl_checkpoint_open(note, (size_t)n, "street.example/mgx", pk, "other", &cp),
                     STL_E_NOTE);
    /* another signer's line before ours is ignored; an extra line of ours that is bad is not */
    char two[STL_NOTE_MAX];
    const char *sigs = strstr(note, "\n\n") + 2;
    snprintf(two, sizeof two, "%.*s\xE2\x80\x94 witness.example AAAAAA==\n%s", (int)(sigs - note),
             note, sigs);
    assert_int_equal(stl_checkpoint_open(two, strlen(two), "street.example/mgx", pk, NULL, &cp), STL_OK);
    /* malformed bodies, signed properly, are still refused */
    const char *bodies[] = {"street\n012\nAAAA\n", "street\n12\nnot base64\n", "bad origin\n1\nAAAA\n",
                            "street\n-1\nAAAA\n"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        uint8_t blob[68];
        stl_note_key_id("street", pk, blob);
        stl_sign((const uint8_t *)bodies[i], strlen(bodies[i]), sk, blob + 4);
        char sb[128], t[512];
        sodium_bin2base64(sb, sizeof sb, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
        snprintf(t, sizeof t, "%s\n\xE2\x80\x94 street %s\n", bodies[i], sb);
        assert_int_equal(stl_note_open(t, strlen(t), "street", pk, NULL), STL_OK);
        assert_int_equal(stl_checkpoint_open(t, strlen(t), "street", pk, NULL, &cp), STL_E_NOTE);
    }
    /* a signature one byte short or long (base64 of 67 / 69 bytes) is refused */
    for (int delta = -1; delta <= 1; delta += 2) {
        uint8_t blob[69];
        stl_note_key_id("street", pk, blob);
        stl_sign((const uint8_t *)"street\n1\nAAAA\n", 14, sk, blob + 4);
        blob[68] = 0;
        char sb[128], t[512];
        sodium_bin2base64(sb, sizeof sb, blob, (size_t)(68 + delta), sodium_base64_VARIANT_ORIGINAL);
        snprintf(t, sizeof t, "street\n1\nAAAA\n\n\xE2\x80\x94 street %s\n", sb);
        assert_int_equal(stl_note_open(t, strlen(t), "street", pk, NULL), STL_E_SIGNATURE);
    }
    sodium_free(sk);
}

static stl_tx sample_trade(void)
{
    stl_tx tx = {0};
    tx.version = STL_LEDGER_V1;
    tx.kind = STL_TX_TRADE;
    tx.interval_id = 1900000;
    tx.seq = 7;
    tx.trade = (stl_settled_trade){UINT64_C(0xfedcba9876543210), 42, 800, 120000, 96000, 8000,
                                   560, 72800, 67200, 5600, 0};
    return tx;
}

static void tx_encoding(void **state)
{
    (void)state;
    stl_tx tx = sample_trade(), back;
    uint8_t enc[STL_TX_MAX_LEN], id[32], id2[32];
    size_t n = stl_tx_encode(&tx, enc);
    assert_int_equal(n, STL_TX_TRADE_LEN);
    /* layout spot checks: tag, version, kind, interval big-endian, seq, seller */
    assert_memory_equal(enc, "MGXT\x01\x01", 6);
    assert_memory_equal(enc + 6, "\x00\x00\x00\x00\x00\x1c\xfd\xe0", 8); /* 1900000 */
    assert_memory_equal(enc + 14, "\x00\x00\x00\x07", 4);
    assert_memory_equal(enc + 18, "\xfe\xdc\xba\x98\x76\x54\x32\x10", 8);
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_OK);
    assert_memory_equal(&back.trade, &tx.trade, sizeof tx.trade);
    assert_int_equal(back.version, STL_LEDGER_V1);
    assert_int_equal(stl_tx_id(NULL, enc, n, id), STL_OK);
    for (size_t i = 0; i < n; i++) { /* no byte changes silently */
        enc[i] ^= 0x40;
        if (stl_tx_decode(enc, n, &back) == STL_OK) {
            assert_int_equal(stl_tx_id(back.version == STL_LEDGER_V1 ? NULL : id, enc, n, id2),
                             STL_OK);
            assert_memory_not_equal(id, id2, 32);
        }
        enc[i] ^= 0x40;
    }
    assert_int_equal(stl_tx_decode(enc, n - 1, &back), STL_E_ENCODING);
    /* a version 1 transaction hashes without a salt, and only so */
    assert_int_equal(stl_tx_id(id, enc, n, id2), STL_E_INVAL);
    stl_tx pos = {0};
    pos.version = STL_LEDGER_V1;
    pos.kind = STL_TX_POSITION;
    pos.position.participant = 3;
    pos.position.status = STL_POS_FLAGGED;
    pos.position.quality = 16;
    pos.position.import_wh = 5;
    n = stl_tx_encode(&pos, enc);
    assert_int_equal(n, STL_TX_POSITION_V1_LEN);
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_OK);
    assert_int_equal(back.position.status, STL_POS_FLAGGED);
    assert_int_equal(back.position.quality, 16);
    enc[26] = 3; /* status beyond MISSING: version 1 has no ESTIMATED */
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_E_ENCODING);
    pos.position.status = STL_POS_HELD; /* nor HELD, nor a tier */
    assert_int_equal(stl_tx_encode(&pos, enc), 0);
    pos.position.status = STL_POS_FLAGGED;
    pos.position.tier = STL_TIER_GATEWAY;
    assert_int_equal(stl_tx_encode(&pos, enc), 0);

    /* version 2: status (u8) at 26, tier (u8) at 27, quality (u32) at 28 */
    pos.version = STL_LEDGER_V2;
    pos.position.status = STL_POS_HELD;
    pos.position.tier = STL_TIER_CERTIFIED;
    n = stl_tx_encode(&pos, enc);
    assert_int_equal(n, STL_TX_POSITION_LEN);
    assert_memory_equal(enc, "MGXT\x02\x02", 6);
    assert_memory_equal(enc + 26, "\x04\x02\x00\x00\x00\x10", 6);
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_OK);
    assert_int_equal(back.version, STL_LEDGER_V2);
    assert_int_equal(back.position.status, STL_POS_HELD);
    assert_int_equal(back.position.tier, STL_TIER_CERTIFIED);
    enc[26] = 3; /* ESTIMATED is a version 2 status */
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_OK);
    assert_int_equal(back.position.status, STL_POS_ESTIMATED);
    enc[26] = 5; /* beyond HELD */
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_E_ENCODING);
    enc[26] = 4;
    enc[27] = 3; /* tier beyond CERTIFIED */
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_E_ENCODING);
    enc[27] = 2;
    enc[4] = 3; /* no version 3 */
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_E_ENCODING);
    enc[4] = 1; /* nor the version 2 layout under version 1 */
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_E_ENCODING);
    pos.position.grid_paid_uc = -1;
    assert_int_equal(stl_tx_encode(&pos, enc), 0);
    tx.kind = 9;
    assert_int_equal(stl_tx_encode(&tx, enc), 0);
    tx.kind = STL_TX_TRADE;
    tx.version = 0;
    assert_int_equal(stl_tx_encode(&tx, enc), 0);
}

/* The credit record (kind 3, issue 13): the layout of docs/ledger.md byte by byte, round trip,
 * and the records it refuses (version 1, inconsistent amounts, out-of-range bytes). */
static void credit_encoding(void **state)
{
    (void)state;
    stl_tx tx;
    memset(&tx, 0, sizeof tx);
    tx.version = STL_LEDGER_V2;
    tx.kind = STL_TX_CREDIT;
    tx.interval_id = 1900000;
    tx.seq = 5;
    tx.credit = (stl_credit){.participant = 17, .status = 0, .tier = 1, .min_tier = 1,
                             .source_seq = 3, .minted_wh = 700, .in_wh = 0, .out_wh = 600,
                             .retired_wh = 50, .kept_wh = 50};
    uint8_t enc[STL_TX_MAX_LEN], want[STL_TX_CREDIT_LEN];
    memset(want, 0, sizeof want);
    memcpy(want, "MGXT", 4);
    want[4] = 2;
    want[5] = 3;
    /* interval 1900000 = 0x1CFDE0 */
    want[11] = 0x1C, want[12] = 0xFD, want[13] = 0xE0;
    want[17] = 5;
    want[25] = 17;
    want[26] = 0, want[27] = 1, want[28] = 1;
    want[32] = 3;
    want[39] = 0x02, want[40] = 0xBC; /* minted 700 at 33-40 */
    want[48] = 0;                     /* in 0 at 41-48 */
    want[55] = 0x02, want[56] = 0x58; /* out 600 at 49-56 */
    want[64] = 50;                    /* retired at 57-64 */
    want[72] = 50;                    /* kept at 65-72 */
    size_t n = stl_tx_encode(&tx, enc);
    assert_int_equal(n, STL_TX_CREDIT_LEN);
    assert_memory_equal(enc, want, n);
    stl_tx back;
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_OK);
    assert_int_equal(back.kind, STL_TX_CREDIT);
    assert_memory_equal(&back.credit, &tx.credit, sizeof tx.credit);
    enc[72] = 51; /* kept no longer minted + in - out - retired */
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_E_ENCODING);
    enc[72] = 50;
    enc[28] = 3; /* minimum tier beyond CERTIFIED */
    assert_int_equal(stl_tx_decode(enc, n, &back), STL_E_ENCODING);
    enc[28] = 1;
    assert_int_equal(stl_tx_decode(enc, n - 1, &back), STL_E_ENCODING);
    tx.credit.out_wh = 800; /* beyond minted */
    tx.credit.kept_wh = 0;
    tx.credit.retired_wh = 0;
    tx.credit.in_wh = 100;
    assert_int_equal(stl_tx_encode(&tx, enc), 0);
    tx.credit = back.credit;
    tx.version = STL_LEDGER_V1; /* version 1 has no credit records */
    assert_int_equal(stl_tx_encode(&tx, enc), 0);
}

static void from_hex(const char *h, uint8_t *out, size_t n)
{
    assert_int_equal(unhex(h, out, n), n);
}

/* Known answers of version 2's salting, computed outside mgx with Python's hashlib from
 * docs/ledger.md (seed = bytes(range(32))):
 *   secret = blake2b(b'', digest_size=32, key=seed, salt=(1).to_bytes(8,'little')+bytes(8),
 *                    person=b'mgxsalt2'+bytes(8))          # libsodium crypto_kdf
 *   salt   = blake2b(b'MGXS'+pack('>qI', 1900000, 7), digest_size=32, key=secret)
 *   enc    = the sample trade, version 2 (106 bytes)
 *   id = sha256(salt+enc), leaf = sha256(b'\0'+salt+enc); version 1: sha256(enc1),
 *   sha256(b'\0'+enc1). */
static void salted_known_answers(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], sk[64], secret[32], salt[32], want[32], got[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)i;
    crypto_sign_seed_keypair(pk, sk, seed);
    stl_salt_secret(sk, secret);
    from_hex("7ea1019e8a03e61f2bb69f81b50fbb8cf2cd47dc6e119046a0ef065606a951f4", want, 32);
    assert_memory_equal(secret, want, 32);
    stl_leaf_salt(secret, 1900000, 7, salt);
    from_hex("79dda801c7f6c4a2eaae91720cfe8e7749c3ea7e50b131da743989f1295ae228", want, 32);
    assert_memory_equal(salt, want, 32);

    stl_tx tx = sample_trade();
    uint8_t enc[STL_TX_MAX_LEN];
    size_t n = stl_tx_encode(&tx, enc);
    assert_int_equal(stl_tx_id(NULL, enc, n, got), STL_OK);
    from_hex("21bda31ad791c8f657567411aa22db5bcf04ba037358d5024917127b8b3a8200", want, 32);
    assert_memory_equal(got, want, 32);
    assert_int_equal(stl_tx_leaf(NULL, enc, n, got), STL_OK);
    from_hex("5f6cbeb0d657179673724c2c63a5297525c2a7694db20589bd9b799c2d01d095", want, 32);
    assert_memory_equal(got, want, 32);

    tx.version = STL_LEDGER_V2;
    n = stl_tx_encode(&tx, enc);
    assert_int_equal(n, STL_TX_TRADE_LEN);
    assert_int_equal(stl_tx_id(NULL, enc, n, got), STL_E_INVAL); /* a salt is required */
    assert_int_equal(stl_tx_leaf(NULL, enc, n, got), STL_E_INVAL);
    assert_int_equal(stl_tx_id(salt, enc, n, got), STL_OK);
    from_hex("34cb04f1eeecc505bca3e356cda5645e3ebe40012e57816d0d9559514a00cc2f", want, 32);
    assert_memory_equal(got, want, 32);
    assert_int_equal(stl_tx_leaf(salt, enc, n, got), STL_OK);
    from_hex("c7765f9bca037a1fa94ba050015e3bb11e4d2652221bbc12eb5e192683f270b2", want, 32);
    assert_memory_equal(got, want, 32);
    /* each (interval, seq) has its own salt */
    uint8_t other[32];
    stl_leaf_salt(secret, 1900000, 8, other);
    assert_memory_not_equal(salt, other, 32);
    stl_leaf_salt(secret, 1900001, 7, other);
    assert_memory_not_equal(salt, other, 32);
}

static void block_encoding(void **state)
{
    (void)state;
    stl_block b = {0}, back;
    b.version = STL_LEDGER_V2;
    b.timing = STL_TIMING_EX_POST;
    strcpy(b.community, "street.example/mgx");
    b.height = 3;
    b.interval_id = 1900000;
    b.interval_len_s = 900;
    b.tariffs = (stl_tariffs){80000, 300000, 10000};
    memset(b.prev_hash, 0xaa, 32);
    b.n_tx = 4;
    memset(b.tx_root, 0xbb, 32);
    b.log_size = 99;
    memset(b.log_root, 0xcc, 32);
    b.totals.n_trades = 3;
    b.totals.paid_uc = 124800;
    uint8_t enc[STL_BLOCK_MAX_LEN];
    size_t n = stl_block_encode(&b, enc);
    assert_int_equal(n, STL_BLOCK_MAX_LEN - STL_COMMUNITY_MAX + strlen(b.community));
    assert_int_equal(stl_block_decode(enc, n, &back), STL_OK);
    assert_memory_equal(&back, &b, sizeof b);
    /* the timing byte follows the interval length: tag 4 + version 1 + length 1 + community 18
     * + height 8 + interval 8 + length 4 = offset 44 */
    assert_int_equal(enc[4], 2);
    assert_int_equal(enc[44], STL_TIMING_EX_POST);
    enc[44] = 2; /* no third timing */
    assert_int_equal(stl_block_decode(enc, n, &back), STL_E_ENCODING);
    enc[44] = STL_TIMING_EX_POST;
    /* version 1: one byte shorter, no timing; a timing cannot be written in it */
    assert_int_equal(stl_block_encode(&(stl_block){.version = 3}, enc), 0);
    stl_block v1 = b;
    v1.version = STL_LEDGER_V1;
    assert_int_equal(stl_block_encode(&v1, enc), 0);
    v1.timing = STL_TIMING_EX_ANTE;
    uint8_t enc1[STL_BLOCK_MAX_LEN];
    size_t n1 = stl_block_encode(&v1, enc1);
    assert_int_equal(n1, n - 1);
    assert_int_equal(stl_block_decode(enc1, n1, &back), STL_OK);
    assert_memory_equal(&back, &v1, sizeof v1);
    n = stl_block_encode(&b, enc);
    for (size_t i = 0; i < n; i++) {
        uint8_t h1[32], h2[32];
        stl_block_hash(enc, n, h1);
        enc[i] ^= 0x02;
        stl_block_hash(enc, n, h2);
        assert_memory_not_equal(h1, h2, 32);
        enc[i] ^= 0x02;
    }
    strcpy(b.community, "has space");
    assert_int_equal(stl_block_encode(&b, enc), 0);
    assert_false(stl_community_valid(""));
    assert_false(stl_community_valid("a+b"));
    assert_true(stl_community_valid("street.example/mgx"));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc8032),     cmocka_unit_test(wycheproof),
        cmocka_unit_test(signed_notes), cmocka_unit_test(checkpoints),
        cmocka_unit_test(tx_encoding), cmocka_unit_test(salted_known_answers),
        cmocka_unit_test(credit_encoding),
        cmocka_unit_test(block_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
