/*
 * Fuzz harness for the Solana transaction parser (settlement/src/solana_tx.c, sol_tx_parse)
 * and signature check (sol_tx_verify), the code that reads back transactions the outbox
 * stores and the network returns.
 *
 * Invariants, for every input:
 *   - parsing refuses or accepts; an accepted transaction is at most SOL_TX_MAX_BYTES, its
 *     signatures and message lie inside the input, the message runs to the last byte, the
 *     account keys and blockhash lie inside the message, and it needs exactly as many
 *     signatures as it carries, at least one;
 *   - verification never accepts what parsing refuses.
 */
#include "fuzz.h"

#include "mgx/solana_tx.h"

#include <sodium.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0)
        abort();
    sol_tx_view v;
    int rc = sol_tx_parse(data, size, &v);
    if (rc != SOL_OK) {
        FUZZ_CHECK(sol_tx_verify(data, size) != SOL_OK);
        return 0;
    }
    FUZZ_CHECK(size <= SOL_TX_MAX_BYTES);
    FUZZ_CHECK(v.n_signatures >= 1 && v.n_signatures == v.num_required_signatures);
    FUZZ_CHECK(v.signatures_off + v.n_signatures * SOL_SIGNATURE_BYTES <= v.message_off);
    FUZZ_CHECK(v.message_off + v.message_len == size);
    FUZZ_CHECK(v.keys_off >= v.message_off && v.keys_off + v.n_keys * SOL_PUBKEY_BYTES <= size);
    FUZZ_CHECK(v.blockhash_off + SOL_HASH_BYTES <= size);
    FUZZ_CHECK(v.n_keys >= v.n_signatures);
    (void)sol_tx_verify(data, size);
    return 0;
}
