/*
 * mgx settlement: witness cosignatures of the ledger's checkpoints (c2sp.org/tlog-cosignature,
 * version 1, Ed25519) and the decision a witness makes before giving one.
 *
 * A cosignature is one more signature line on a checkpoint note (checkpoint.h):
 *
 *     — <witness name> base64(key id || u64 big-endian time || Ed25519 signature)
 *
 * key id = the first 4 bytes of SHA-256(name || 0x0A || 0x04 || public key) (0x04: the
 * cosignature key type, not the 0x01 of a log's own key). The signature covers
 *
 *     "cosignature/v1\n" "time <seconds, decimal, no leading zeros>\n" <checkpoint body>
 *
 * where the body is the note text up to and including its last newline before the blank line.
 * The signed message does not include the witness's name, so one key must serve one witness.
 *
 * The witness's decision (stl_witness_check) takes the last checkpoint it trusts, a new one and
 * the consistency proof between them, and says whether the new one may be cosigned: it must be
 * signed by the log's key for the same origin and be an append-only extension of the trusted
 * one (same size: same root; larger: the proof verifies; smaller: never).
 *
 * Pure: keys, time and buffers are parameters; nothing here reads a clock or a file. Secret keys
 * belong in the caller's sodium_malloc memory. Reentrant.
 */
#ifndef MGX_COSIGNATURE_H
#define MGX_COSIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/checkpoint.h"
#include "mgx/merkle.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STL_COSIG_NAME_MAX 128       /* bytes of a witness name this module accepts */
#define STL_COSIG_TIME_MAX INT64_MAX /* the spec's bound: 2^63 - 1 */
/* "— " name " " base64(76 bytes) "\n" NUL */
#define STL_COSIG_LINE_MAX (4 + STL_COSIG_NAME_MAX + 1 + 104 + 2)

/* A witness name (signed-note key name): 1..STL_COSIG_NAME_MAX bytes of printable ASCII
 * without spaces or '+'. 1 when valid. */
int stl_cosig_name_valid(const char *name);

/* key id = SHA-256(name || '\n' || 0x04 || pk)[0..4] */
void stl_cosig_key_id(const char *name, const uint8_t pk[STL_PK_LEN], uint8_t id[4]);

/* Writes the signed message for body[0..body_len) at time_s into out[cap]; returns its length
 * or STL_E_INVAL (time over 2^63 - 1, or it does not fit). */
int stl_cosig_message(const char *body, size_t body_len, uint64_t time_s, uint8_t *out, size_t cap);

/* Cosigns the checkpoint body[0..body_len) (ending in '\n', without signature lines) at time_s:
 * writes the signature line (with its '\n', NUL-terminated) into line[cap]. Returns the line's
 * length or STL_E_INVAL. */
int stl_cosig_sign(const char *body, size_t body_len, uint64_t time_s, const char *name,
                   const uint8_t sk[STL_SK_LEN], char *line, size_t cap);

/*
 * Looks in the signed note note[0..len) for a cosignature by the witness key pk: a signature
 * line whose key id is stl_cosig_key_id(its name, pk) and whose signature verifies over the
 * note's text. When name is not NULL the line must carry that name. On STL_OK *time_s (if not
 * NULL) is its time and name_out (if not NULL, STL_COSIG_NAME_MAX + 1 bytes) its name.
 * STL_E_NOTE when the note is malformed, STL_E_SIGNATURE when no line of this key verifies.
 */
int stl_cosig_find(const char *note, size_t len, const uint8_t pk[STL_PK_LEN], const char *name,
                   uint64_t *time_s, char *name_out);

/* What a witness decides about a new checkpoint. */
typedef enum {
    STL_WITNESS_COSIGN = 0,    /* an extension of the trusted checkpoint (or the first one) */
    STL_WITNESS_BAD_NOTE,      /* not a well-formed checkpoint of the expected origin */
    STL_WITNESS_BAD_SIGNATURE, /* not signed by the log's key */
    STL_WITNESS_ROLLBACK,      /* smaller than the trusted one: the log was truncated */
    STL_WITNESS_FORK,          /* same size as the trusted one, another root */
    STL_WITNESS_NOT_EXTENSION  /* larger, but the consistency proof does not verify */
} stl_witness_verdict;

/* A static English reason for a verdict; never NULL. */
const char *stl_witness_reason(stl_witness_verdict v);

/*
 * Decides whether the checkpoint note[0..len) may be cosigned. log_name and log_pk are the log's
 * key (its name is also the expected origin); trusted is the last checkpoint the witness
 * cosigned (NULL before the first); proof[0..n) the consistency proof from trusted->size to
 * the new size (ignored when trusted is NULL). The opened checkpoint goes to *out (may be NULL)
 * whenever the note is well formed and signed.
 */
stl_witness_verdict stl_witness_check(const char *log_name, const uint8_t log_pk[STL_PK_LEN],
                                      const stl_checkpoint *trusted, const char *note, size_t len,
                                      const uint8_t proof[][STL_HASH_LEN], size_t n,
                                      stl_checkpoint *out);

#ifdef __cplusplus
}
#endif

#endif
