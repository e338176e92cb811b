/*
 * mgx settlement: signed checkpoints of the ledger's Merkle log in the C2SP formats, so that
 * standard transparency-log tooling can read and verify them.
 *
 * A checkpoint (c2sp.org/tlog-checkpoint) is a signed note (c2sp.org/signed-note):
 *
 *     <origin>\n<tree size, decimal>\n<base64 root hash>\n\n— <key name> <base64(key id || sig)>\n
 *
 * The Ed25519 signature covers the text up to and including the third newline; key id = the
 * first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key). Keys travel as the note
 * formats' text encodings: the verifier key "<name>+<8 hex key id>+<base64(0x01 || public
 * key)>" and the signer key "PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || 32-byte seed)>".
 * In mgx the origin and the key name are both the community name.
 *
 * Pure: keys and buffers are parameters. Secret keys belong in sodium_malloc memory (the
 * caller's); nothing here keeps a copy.
 */
#ifndef MGX_CHECKPOINT_H
#define MGX_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/ledger_record.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STL_NOTE_MAX 4096 /* bytes of a checkpoint this module writes or reads */
#define STL_VKEY_MAX (STL_COMMUNITY_MAX + 1 + 8 + 1 + 48 + 1)
#define STL_SKEY_MAX (12 + STL_COMMUNITY_MAX + 1 + 8 + 1 + 48 + 1)

/* key id = SHA-256(name || '\n' || 0x01 || pk)[0..4] */
void stl_note_key_id(const char *name, const uint8_t pk[STL_PK_LEN], uint8_t id[4]);
/* The key id of any signature type of the signed-note format: the first 4 bytes of
 * SHA-256(name || 0x0A || sig_type || pk) (0x01 the log's Ed25519 signature, 0x04 a witness
 * cosignature; stl_note_key_id and stl_cosig_key_id). */
void stl_note_key_id_typed(const char *name, uint8_t sig_type, const uint8_t pk[STL_PK_LEN],
                           uint8_t id[4]);

/* Writes the verifier key text (NUL-terminated) into out[cap]; STL_E_INVAL if it does not fit
 * or the name is not a valid community name. */
int stl_vkey_format(const char *name, const uint8_t pk[STL_PK_LEN], char *out, size_t cap);
/* Parses a verifier key; checks its key id. name gets STL_COMMUNITY_MAX + 1 bytes. */
int stl_vkey_parse(const char *s, char name[STL_COMMUNITY_MAX + 1], uint8_t pk[STL_PK_LEN]);
/* Signer key text from a libsodium secret key (seed || pk). */
int stl_skey_format(const char *name, const uint8_t sk[STL_SK_LEN], char *out, size_t cap);
/* Parses a signer key into sk (seed || pk, 64 bytes, caller's secure memory) and name. */
int stl_skey_parse(const char *s, char name[STL_COMMUNITY_MAX + 1], uint8_t sk[STL_SK_LEN]);

/* Writes a signed checkpoint (NUL-terminated) into out[cap]; returns its length or a negative
 * STL_E_* code. */
int stl_checkpoint_sign(const char *origin, uint64_t size, const uint8_t root[STL_ID_LEN],
                        const char *key_name, const uint8_t sk[STL_SK_LEN], char *out, size_t cap);

/*
 * Verifies a signed note of len bytes: the first signature line by key_name carrying pk's key
 * id must verify over the text (lines of other keys are ignored). On success *text_len (if not
 * NULL) is the length of the signed text. STL_E_NOTE when malformed, STL_E_SIGNATURE when no
 * line by this key verifies.
 */
int stl_note_open(const char *note, size_t len, const char *key_name,
                  const uint8_t pk[STL_PK_LEN], size_t *text_len);

typedef struct {
    char origin[STL_COMMUNITY_MAX + 1];
    uint64_t size;
    uint8_t root[STL_ID_LEN];
} stl_checkpoint;

/*
 * Opens a checkpoint note of len bytes: it must carry a valid signature line by key_name with
 * the key id of pk (other signers' lines are ignored), its body must be a well-formed
 * checkpoint (extension lines allowed) and its origin must equal expected_origin when that is
 * not NULL. STL_E_NOTE for a malformed note, STL_E_SIGNATURE when no line by this key verifies.
 */
int stl_checkpoint_open(const char *note, size_t len, const char *key_name,
                        const uint8_t pk[STL_PK_LEN], const char *expected_origin,
                        stl_checkpoint *out);

#ifdef __cplusplus
}
#endif

#endif
