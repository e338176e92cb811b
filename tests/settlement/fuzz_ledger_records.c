/*
 * Fuzz harness for the ledger's binary decoders (settlement/src/ledger_record.c): the
 * transaction (MGXT) and block (MGXB) encodings, both fed the same input.
 *
 * Invariants, for every input:
 *   - a decoder either refuses or accepts; what it accepts re-encodes to exactly the input
 *     bytes (one encoding per record: the decoders accept only canonical bytes);
 *   - an accepted transaction's id and leaf hash are defined (no crash on any field value).
 */
#include "fuzz.h"

#include "mgx/ledger_record.h"
#include "mgx/merkle.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stl_tx tx;
    if (stl_tx_decode(data, size, &tx) == STL_OK) {
        uint8_t enc[STL_TX_MAX_LEN], id[STL_ID_LEN], leaf[STL_HASH_LEN];
        size_t n = stl_tx_encode(&tx, enc);
        FUZZ_CHECK(n == size && memcmp(enc, data, n) == 0);
        static const uint8_t salt[STL_SALT_LEN] = {1};
        const uint8_t *s = tx.version == STL_LEDGER_V1 ? NULL : salt;
        FUZZ_CHECK(stl_tx_id(s, enc, n, id) == STL_OK && stl_tx_leaf(s, enc, n, leaf) == STL_OK);
        FUZZ_CHECK(memcmp(id, leaf, STL_ID_LEN) != 0); /* domain separation: 0x00 prefix */
        /* the salt must fit the version */
        FUZZ_CHECK(stl_tx_id(s ? NULL : salt, enc, n, id) == STL_E_INVAL);
    }
    stl_block b;
    if (stl_block_decode(data, size, &b) == STL_OK) {
        uint8_t enc[STL_BLOCK_MAX_LEN];
        size_t n = stl_block_encode(&b, enc);
        FUZZ_CHECK(n == size && memcmp(enc, data, n) == 0);
    }
    return 0;
}
