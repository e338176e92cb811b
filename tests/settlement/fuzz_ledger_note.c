/*
 * Fuzz harness for the ledger's text parsers (settlement/src/checkpoint.c): C2SP signed-note
 * checkpoints and the verifier and signer key lines. The input's first line is taken as a
 * verifier key and the rest as a note, so a corpus of real (key, checkpoint) pairs reaches the
 * signature and body parsers, and mutations of either half are tried.
 *
 * Invariants, for every input:
 *   - nothing crashes or reads out of bounds (the sanitizers watch);
 *   - a checkpoint that opens has a valid origin (the key's name) and its signed text is a
 *     prefix of the note; a note that opens as a checkpoint also opens as a plain note;
 *   - a parsed verifier key formats back to exactly its text; a parsed signer key's public
 *     half is its seed's public key, and it formats back to exactly its text.
 */
#include "fuzz.h"

#include "mgx/checkpoint.h"
#include "mgx/ledger_record.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0)
        abort();
    if (size > STL_NOTE_MAX + 256)
        return 0;
    const char *text = (const char *)data;
    size_t nl = 0;
    while (nl < size && text[nl] != '\n')
        nl++;
    char line[512];
    if (nl >= sizeof line)
        return 0;
    memcpy(line, text, nl);
    line[nl] = 0;
    char name[STL_COMMUNITY_MAX + 1], again[STL_SKEY_MAX + 8];
    uint8_t pk[STL_PK_LEN];
    if (stl_vkey_parse(line, name, pk) == STL_OK) {
        FUZZ_CHECK(stl_vkey_format(name, pk, again, sizeof again) == STL_OK);
        FUZZ_CHECK(strcmp(again, line) == 0);
        const char *note = nl < size ? text + nl + 1 : text + size;
        size_t len = nl < size ? size - nl - 1 : 0;
        stl_checkpoint cp;
        if (stl_checkpoint_open(note, len, name, pk, NULL, &cp) == STL_OK) {
            size_t tl = 0;
            FUZZ_CHECK(stl_note_open(note, len, name, pk, &tl) == STL_OK);
            FUZZ_CHECK(tl <= len);
            FUZZ_CHECK(stl_community_valid(cp.origin));
        }
    }
    uint8_t *sk = sodium_malloc(STL_SK_LEN);
    FUZZ_CHECK(sk != NULL);
    if (stl_skey_parse(line, name, sk) == STL_OK) {
        uint8_t pk2[STL_PK_LEN], sk2[STL_SK_LEN];
        crypto_sign_seed_keypair(pk2, sk2, sk);
        FUZZ_CHECK(memcmp(pk2, sk + 32, STL_PK_LEN) == 0);
        FUZZ_CHECK(stl_skey_format(name, sk, again, sizeof again) == STL_OK);
        FUZZ_CHECK(strcmp(again, line) == 0);
        sodium_memzero(sk2, sizeof sk2);
    }
    sodium_free(sk);
    return 0;
}
