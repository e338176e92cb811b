/*
 * Legacy Solana messages and transactions: compiling instructions into a message, serializing
 * it, signing it with Ed25519 (libsodium), and reading a signed transaction back.
 *
 * Wire format (legacy, no version prefix):
 *   transaction = shortvec(#sigs) || 64-byte signatures || message
 *   message     = u8 num_required_signatures || u8 num_readonly_signed ||
 *                 u8 num_readonly_unsigned || shortvec(#keys) || 32-byte keys ||
 *                 32-byte recent blockhash || shortvec(#ix) || instructions
 *   instruction = u8 program key index || shortvec(#acc) || u8 key indexes ||
 *                 shortvec(#data) || data
 * Keys are ordered writable signers, read-only signers, writable non-signers, read-only
 * non-signers, the fee payer first; within a class mgx keeps first-use order. Each signature
 * is Ed25519 over exactly the message bytes, in the order of the signer keys. shortvec
 * ("compact-u16") is 7 bits per byte, least significant first, high bit = more, at most 3
 * bytes; only the shortest encoding is accepted when reading.
 */
#ifndef MGX_SOLANA_TX_H
#define MGX_SOLANA_TX_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/solana.h"
#include "mgx/solana_ix.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds of one message. A 1,232-byte transaction holds at most 35 keys, so 64 is generous;
 * the instruction bound allows ~60 instructions that share their accounts. */
#define SOL_MSG_MAX_KEYS 64
#define SOL_MSG_MAX_IX 96

/* compact-u16. encode returns the length written (1..3). decode returns the bytes consumed,
 * or SOL_E_PARSE for truncated, over-long, non-minimal or > 0xffff input. */
size_t sol_shortvec_encode(uint16_t v, uint8_t out[3]);
int sol_shortvec_decode(const uint8_t *in, size_t len, uint16_t *v);
size_t sol_shortvec_len(size_t v);

/* A message under construction. Plain value (about 6 KB); no allocation. */
typedef struct {
    uint8_t n_keys;
    uint8_t n_ix;
    uint8_t n_signers;
    uint16_t data_used;
    size_t tx_size; /* bytes of the signed transaction as it stands */
    sol_pubkey keys[SOL_MSG_MAX_KEYS]; /* first-use order; fee payer at 0 */
    uint8_t key_flags[SOL_MSG_MAX_KEYS];
    struct {
        uint8_t program;
        uint8_t n_accounts;
        uint8_t accounts[SOL_IX_MAX_ACCOUNTS];
        uint16_t data_off;
        uint16_t data_len;
    } ix[SOL_MSG_MAX_IX];
    uint8_t data[SOL_TX_MAX_BYTES];
} sol_msg;

/* Starts a message whose fee payer (a writable signer, first key) is fee_payer. */
void sol_msg_init(sol_msg *m, const sol_pubkey *fee_payer);

/* Appends instructions in order, all or none: on failure m is unchanged. Returns SOL_OK,
 * SOL_E_TOO_BIG if the signed transaction would exceed SOL_TX_MAX_BYTES, or SOL_E_SPACE if a
 * bound above would be exceeded. */
int sol_msg_add(sol_msg *m, const sol_ix *ixs, size_t n);

/* Size in bytes of the signed transaction this message makes (signatures included). */
size_t sol_msg_tx_size(const sol_msg *m);
/* Number of signatures it needs (the signer keys). */
size_t sol_msg_signers(const sol_msg *m);

/* Writes the signed transaction: the message with recent blockhash, signed by each signer key
 * with the matching secret key from secret_keys (n_secret keys of SOL_SECRET_KEY_BYTES each:
 * seed || public key). Returns SOL_OK with *len set; SOL_E_SPACE if cap is too small;
 * SOL_E_SIGNATURE if a signer has no secret key among those given. If sig is non-NULL the
 * first signature (the transaction id) is copied there. */
int sol_msg_sign(const sol_msg *m, const uint8_t blockhash[SOL_HASH_BYTES],
                 const uint8_t *const *secret_keys, size_t n_secret, uint8_t *out, size_t cap,
                 size_t *len, uint8_t sig[SOL_SIGNATURE_BYTES]);

/* Where the parts of a signed legacy transaction are, as offsets into its bytes. */
typedef struct {
    size_t n_signatures;
    size_t signatures_off;
    size_t message_off;
    size_t message_len;
    uint8_t num_required_signatures;
    uint8_t num_readonly_signed;
    uint8_t num_readonly_unsigned;
    size_t n_keys;
    size_t keys_off;
    size_t blockhash_off;
    size_t n_instructions;
} sol_tx_view;

/* Checks the structure of a signed legacy transaction (every count, index and length, no
 * trailing bytes, at most SOL_TX_MAX_BYTES) and fills *v. Does not verify signatures.
 * Versioned (v0) transactions are rejected with SOL_E_PARSE. */
int sol_tx_parse(const uint8_t *tx, size_t len, sol_tx_view *v);

/* Parses and verifies every signature against its signer key. SOL_E_SIGNATURE if one fails. */
int sol_tx_verify(const uint8_t *tx, size_t len);

/* Replaces the recent blockhash of a single-signer transaction and signs it again with
 * secret_key, in place. The instructions stay byte for byte the same; only the blockhash and
 * the signature change. SOL_E_SIGNATURE if secret_key is not the transaction's signer. */
int sol_tx_resign(uint8_t *tx, size_t len, const uint8_t blockhash[SOL_HASH_BYTES],
                  const uint8_t secret_key[SOL_SECRET_KEY_BYTES]);
/* The same for a transaction with one or more signers (e.g. the settlement key and a mint
 * authority): each signature slot is signed again with the key among secret_keys (n_secret
 * key pairs) whose public half is that signer's. SOL_E_SIGNATURE, leaving tx unchanged, if a
 * signer has no key among them. */
int sol_tx_resign_keys(uint8_t *tx, size_t len, const uint8_t blockhash[SOL_HASH_BYTES],
                       const uint8_t *const *secret_keys, size_t n_secret);

#ifdef __cplusplus
}
#endif

#endif
