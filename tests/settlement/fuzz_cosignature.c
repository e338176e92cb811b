/*
 * Fuzz harness for witness cosignatures (settlement/src/cosignature.c): the first 32 bytes of
 * the input are a witness public key, the rest a cosigned checkpoint note. The corpus holds
 * real notes with their witness's key (the spec's example with the known-answer key, notes
 * written by `mgx witness`), so mutations reach the signature-line scanner and the verifier.
 *
 * Invariants, for every input:
 *   - nothing crashes or reads out of bounds (the sanitizers watch);
 *   - a cosignature that is found has a valid witness name and a time of at most 2^63 - 1, is
 *     found again, with the same time, when its name is asked for;
 *   - the witness decision on the same note with the key as the log's key returns a verdict
 *     with a reason, and the first checkpoint it accepts opens as a checkpoint.
 */
#include "fuzz.h"

#include "mgx/cosignature.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0)
        abort();
    if (size < STL_PK_LEN || size > STL_NOTE_MAX + 256)
        return 0;
    const uint8_t *pk = data;
    const char *note = (const char *)data + STL_PK_LEN;
    size_t len = size - STL_PK_LEN;
    uint64_t t = 0;
    char name[STL_COSIG_NAME_MAX + 1];
    if (stl_cosig_find(note, len, pk, NULL, &t, name) == STL_OK) {
        FUZZ_CHECK(stl_cosig_name_valid(name));
        FUZZ_CHECK(t <= (uint64_t)STL_COSIG_TIME_MAX);
        uint64_t t2 = 0;
        FUZZ_CHECK(stl_cosig_find(note, len, pk, name, &t2, NULL) == STL_OK);
        FUZZ_CHECK(t2 == t);
    }
    stl_checkpoint cp;
    stl_witness_verdict v =
        stl_witness_check("street.example/mgx", pk, NULL, note, len, NULL, 0, &cp);
    FUZZ_CHECK(stl_witness_reason(v) != NULL);
    if (v == STL_WITNESS_COSIGN)
        FUZZ_CHECK(strcmp(cp.origin, "street.example/mgx") == 0);
    return 0;
}
