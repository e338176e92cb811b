/*
 * Tests of witness cosignatures and the witness's decision (mgx/cosignature.h).
 *
 * Known answer: the cosignature line of the key with seed 00 01 .. 1f, named
 * "witness.example.com/w1", over the checkpoint body of the tlog-cosignature spec's example at
 * the spec's time 1679315147. Worked outside mgx from the spec's text (Python: hashlib for the
 * key id SHA-256("witness.example.com/w1" || 0x0A || 0x04 || pk)[:4] = a0059f11, the
 * `cryptography` package's Ed25519 over "cosignature/v1\ntime 1679315147\n" || body, then
 * base64(key id || u64 big-endian time || signature)). The spec's own example line carries the
 * same time in bytes 4..12 (its key is not published, so only the layout is checked there).
 *
 * Decisions: on a 40-leaf in-memory log, every (old, new) size pair with the real consistency
 * proof is cosigned; a smaller checkpoint is a rollback; the same size with another root a fork;
 * a proof with a flipped bit or a forked log's proof is not an extension; a checkpoint signed by
 * another key or for another origin is refused.
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

#include "mgx/cosignature.h"

#define H STL_HASH_LEN

static const char BODY[] = "example.com/behind-the-sofa\n20852163\n"
                           "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
static const char KAT_LINE[] =
    "\xE2\x80\x94 witness.example.com/w1 oAWfEQAAAABkGFDLBuRDazBLVac2NE+Y+IjbjQOcXLfF9CSDZVUIoS83"
    "rE1nFZsVE8YiWV6Ngr7lV8H6bdoBQGP/l73euDMQ9k+bBQ==\n";
static const char KAT_PK_HEX[] = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";

static void kat_key(uint8_t pk[32], uint8_t sk[64])
{
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)i;
    crypto_sign_seed_keypair(pk, sk, seed);
}

static void known_answer(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], want_pk[32], id[4];
    kat_key(pk, sk);
    assert_int_equal(sodium_hex2bin(want_pk, 32, KAT_PK_HEX, 64, NULL, NULL, NULL), 0);
    assert_memory_equal(pk, want_pk, 32);
    stl_cosig_key_id("witness.example.com/w1", pk, id);
    const uint8_t want_id[4] = {0xa0, 0x05, 0x9f, 0x11};
    assert_memory_equal(id, want_id, 4);

    uint8_t msg[512];
    int ml = stl_cosig_message(BODY, strlen(BODY), 1679315147, msg, sizeof msg);
    const char want_msg[] = "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n"
                            "20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    assert_int_equal(ml, (int)strlen(want_msg));
    assert_memory_equal(msg, want_msg, (size_t)ml);

    char line[STL_COSIG_LINE_MAX];
    int n = stl_cosig_sign(BODY, strlen(BODY), 1679315147, "witness.example.com/w1", sk, line,
                           sizeof line);
    assert_int_equal(n, (int)strlen(KAT_LINE));
    assert_string_equal(line, KAT_LINE);

    /* found again in the note, after the log's own line */
    char note[1024];
    snprintf(note, sizeof note,
             "%s\n\xE2\x80\x94 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+"
             "ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n%s",
             BODY, line);
    uint64_t t = 0;
    char who[STL_COSIG_NAME_MAX + 1];
    assert_int_equal(stl_cosig_find(note, strlen(note), pk, NULL, &t, who), STL_OK);
    assert_int_equal(t, 1679315147);
    assert_string_equal(who, "witness.example.com/w1");
    assert_int_equal(stl_cosig_find(note, strlen(note), pk, "other", NULL, NULL), STL_E_SIGNATURE);
    /* another key: no line of it */
    uint8_t pk2[32], sk2[64];
    crypto_sign_keypair(pk2, sk2);
    assert_int_equal(stl_cosig_find(note, strlen(note), pk2, NULL, NULL, NULL), STL_E_SIGNATURE);
    /* a changed body byte, a changed time: the line no longer verifies */
    char bad[1024];
    strcpy(bad, note);
    bad[30] ^= 1; /* in the tree size */
    assert_int_equal(stl_cosig_find(bad, strlen(bad), pk, NULL, NULL, NULL), STL_E_SIGNATURE);
    n = stl_cosig_sign(BODY, strlen(BODY), 1679315148, "witness.example.com/w1", sk, line,
                       sizeof line);
    assert_true(n > 0);
    char *time_part = strstr(note, "oAWfEQ");
    assert_non_null(time_part);
    memcpy(time_part, strstr(line, "oAWfEQ"), 16); /* key id and time of the other line */
    assert_int_equal(stl_cosig_find(note, strlen(note), pk, NULL, NULL, NULL), STL_E_SIGNATURE);

    /* the spec's own example line: key id, then the time 1679315147 big endian */
    uint8_t ex[80];
    size_t got = 0;
    const char *ex64 =
        "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZ"
        "qhf5nNo0xUe+mbIUBkBIfZ+qnA==";
    assert_int_equal(sodium_base642bin(ex, sizeof ex, ex64, strlen(ex64), NULL, &got, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(got, 76);
    uint64_t et = 0;
    for (int i = 4; i < 12; i++)
        et = et << 8 | ex[i];
    assert_int_equal(et, 1679315147);

    /* bounds: names, times */
    assert_false(stl_cosig_name_valid("a b"));
    assert_false(stl_cosig_name_valid("a+b"));
    assert_false(stl_cosig_name_valid(""));
    assert_int_equal(
        stl_cosig_sign(BODY, strlen(BODY), (uint64_t)INT64_MAX + 1, "w", sk, line, sizeof line),
        STL_E_INVAL);
    assert_int_equal(stl_cosig_sign(BODY, strlen(BODY) - 1, 1, "w", sk, line, sizeof line),
                     STL_E_INVAL);
}

/* ---- an in-memory log ---- */

#define NLEAF 40
static uint8_t leaves_a[NLEAF][H], leaves_b[NLEAF][H];

typedef struct {
    uint8_t (*leaves)[H];
} mem_log;

static int mem_node(void *ctx, unsigned level, uint64_t index, uint8_t out[H])
{
    mem_log *m = ctx;
    uint64_t w = (uint64_t)1 << level, first = index * w;
    if (first + w > NLEAF)
        return -1;
    stl_merkle_root((const uint8_t(*)[H])(m->leaves + first), (size_t)w, out);
    return 0;
}

static void checkpoint_of(uint8_t (*leaves)[H], size_t n, const uint8_t sk[64], const char *name,
                          char *note, size_t cap, stl_checkpoint *cp)
{
    uint8_t root[H];
    stl_merkle_root((const uint8_t(*)[H])leaves, n, root);
    assert_true(stl_checkpoint_sign(name, n, root, name, sk, note, cap) > 0);
    if (cp) {
        snprintf(cp->origin, sizeof cp->origin, "%s", name);
        cp->size = n;
        memcpy(cp->root, root, H);
    }
}

static void decisions(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], opk[32], osk[64];
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(opk, osk);
    for (int i = 0; i < NLEAF; i++) {
        uint8_t d[8] = {(uint8_t)i, 1};
        stl_merkle_leaf_hash(d, sizeof d, leaves_a[i]);
        memcpy(leaves_b[i], leaves_a[i], H);
    }
    leaves_b[17][0] ^= 1; /* log b forks from a at leaf 17 */
    mem_log la = {leaves_a}, lb = {leaves_b};
    const char *log = "street.example/mgx";
    char note[STL_NOTE_MAX];
    uint8_t proof[STL_MERKLE_MAX_PROOF][H];
    size_t n;
    stl_checkpoint trusted, got;
    int checked = 0;
    for (size_t old = 1; old <= NLEAF; old++)
        for (size_t nw = 1; nw <= NLEAF; nw++) {
            checkpoint_of(leaves_a, old, sk, log, note, sizeof note, &trusted);
            checkpoint_of(leaves_a, nw, sk, log, note, sizeof note, NULL);
            n = 0;
            if (nw >= old)
                assert_int_equal(stl_merkle_consistency_proof(old, nw, mem_node, &la, proof, &n),
                                 STL_OK);
            stl_witness_verdict v = stl_witness_check(log, pk, &trusted, note, strlen(note),
                                                      (const uint8_t(*)[H])proof, n, &got);
            assert_int_equal(v, nw >= old ? STL_WITNESS_COSIGN : STL_WITNESS_ROLLBACK);
            assert_int_equal(got.size, nw);
            if (nw > old && n > 0) {
                proof[n / 2][3] ^= 0x10;
                assert_int_equal(stl_witness_check(log, pk, &trusted, note, strlen(note),
                                                   (const uint8_t(*)[H])proof, n, NULL),
                                 STL_WITNESS_NOT_EXTENSION);
            }
            /* the forked log b, with its own (valid) proof */
            checkpoint_of(leaves_b, nw, sk, log, note, sizeof note, NULL);
            n = 0;
            if (nw >= old)
                assert_int_equal(stl_merkle_consistency_proof(old, nw, mem_node, &lb, proof, &n),
                                 STL_OK);
            v = stl_witness_check(log, pk, &trusted, note, strlen(note), (const uint8_t(*)[H])proof,
                                  n, NULL);
            stl_witness_verdict want = nw < old    ? STL_WITNESS_ROLLBACK
                                       : nw <= 17  ? STL_WITNESS_COSIGN /* before the fork */
                                       : old <= 17 ? STL_WITNESS_COSIGN /* b extends a[0..old) */
                                       : nw == old ? STL_WITNESS_FORK
                                                   : STL_WITNESS_NOT_EXTENSION;
            assert_int_equal(v, want);
            checked++;
        }
    assert_int_equal(checked, NLEAF * NLEAF);

    /* the first checkpoint, another key, another origin, a malformed note */
    checkpoint_of(leaves_a, 5, sk, log, note, sizeof note, NULL);
    assert_int_equal(stl_witness_check(log, pk, NULL, note, strlen(note), NULL, 0, NULL),
                     STL_WITNESS_COSIGN);
    assert_int_equal(stl_witness_check(log, opk, NULL, note, strlen(note), NULL, 0, NULL),
                     STL_WITNESS_BAD_SIGNATURE);
    checkpoint_of(leaves_a, 5, sk, "other.example", note, sizeof note, NULL);
    assert_int_equal(stl_witness_check(log, pk, NULL, note, strlen(note), NULL, 0, NULL),
                     STL_WITNESS_BAD_SIGNATURE); /* signed by key name "other.example" */
    assert_int_equal(stl_witness_check(log, pk, NULL, "x\n", 2, NULL, 0, NULL),
                     STL_WITNESS_BAD_NOTE);
    (void)osk;
    for (int v = STL_WITNESS_COSIGN; v <= STL_WITNESS_NOT_EXTENSION; v++)
        assert_non_null(stl_witness_reason((stl_witness_verdict)v));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_answer),
        cmocka_unit_test(decisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
