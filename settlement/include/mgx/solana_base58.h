/*
 * Base58 (Bitcoin alphabet), the text form of Solana keys, signatures and blockhashes.
 *
 * Solana prints a 32-byte key as 32..44 base58 characters and a 64-byte signature as up to 88;
 * leading zero bytes become leading '1's. Decoding here is strict: the text must decode to
 * exactly the expected number of bytes, so "1" is not a key and a 45-character string is
 * rejected instead of silently truncated.
 */
#ifndef MGX_SOLANA_BASE58_H
#define MGX_SOLANA_BASE58_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/solana.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The longest input either function accepts, in bytes (encode) or characters (decode). */
#define SOL_B58_MAX_BYTES 64
#define SOL_B58_MAX_CHARS 88

/* Writes the base58 text of in[0..n) and a NUL to out (cap bytes). n <= SOL_B58_MAX_BYTES.
 * Returns the text length, or SOL_E_SPACE if out is too small, SOL_E_INVAL for n too large. */
int sol_base58_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* Decodes NUL-terminated text into exactly n bytes (n <= SOL_B58_MAX_BYTES). Returns SOL_OK,
 * or SOL_E_BASE58 for a character outside the alphabet, empty text, or a value whose decoded
 * length (leading '1's plus the number's bytes) is not n. out is unspecified on failure. */
int sol_base58_decode(const char *text, uint8_t *out, size_t n);

/* Conveniences for keys: out needs SOL_PUBKEY_B58_MAX + 1 bytes. */
int sol_pubkey_to_base58(const sol_pubkey *k, char out[SOL_PUBKEY_B58_MAX + 1]);
int sol_pubkey_from_base58(const char *text, sol_pubkey *k);

#ifdef __cplusplus
}
#endif

#endif
