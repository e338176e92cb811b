/*
 * Ed25519 key files for participants and the controller.
 *
 * A key pair lives in two files: PREFIX.key, the secret (a 32-byte seed as hex, mode 0600,
 * created with O_EXCL so an existing key is never overwritten), and PREFIX.pub, the public key as
 * 64 hex digits. A loaded secret key sits in libsodium guarded memory (sodium_malloc: guard pages,
 * mlock'd, read-only after loading) and is wiped when freed. Loading refuses a secret key file
 * that group or others can read, like ssh does. File formats: docs/participants.md.
 *
 * Thread safety: a loaded ctl_secret_key is read only, so several threads may sign with it at
 * once; loading and freeing are not synchronised with signing.
 */
#ifndef MGX_CTL_KEYS_H
#define MGX_CTL_KEYS_H

#include "orders/order_msg.h"

#include <stddef.h>
#include <stdint.h>

enum {
    CTL_KEY_OK = 0,
    CTL_KEY_E_INVAL = -1,  /* NULL argument or a prefix/path too long */
    CTL_KEY_E_EXISTS = -2, /* refusing to overwrite an existing key file */
    CTL_KEY_E_IO = -3,     /* open/read/write failed: errno tells why */
    CTL_KEY_E_PERM = -4,   /* secret key file readable or writable by group or others */
    CTL_KEY_E_FORMAT = -5, /* not a key file of the expected form */
    CTL_KEY_E_NOMEM = -6,  /* sodium_malloc failed (guarded memory is scarce: RLIMIT_MEMLOCK) */
    CTL_KEY_E_SODIUM = -7, /* sodium_init failed */
    CTL_KEY_E_NOTFILE = -8, /* the path is not a regular file */
    CTL_KEY_E_MISMATCH = -9 /* PREFIX.key and PREFIX.pub are not one key pair */
};

/* Static English text for a CTL_KEY_* code; never NULL. */
const char *ctl_key_strerror(int code);

/* Longest PREFIX accepted by ctl_keygen_files (the file names add ".key"/".pub"). */
#define CTL_KEY_PREFIX_MAX 4000

/* Makes a fresh key pair and writes PREFIX.key (0600) and PREFIX.pub (0644 minus umask). Neither
 * file may exist (CTL_KEY_E_EXISTS, nothing written); on any failure no partial file is left.
 * The public key is also returned in pk (may be NULL). On CTL_KEY_E_IO errno is kept. */
int ctl_keygen_files(const char *prefix, uint8_t pk[CTL_PUBKEY_BYTES]);

/* Writes a secret to a new file at path: created with O_EXCL (never overwrites, never follows a
 * symlink) and mode 0600 whatever the umask, synced, the directory entry synced; on a failure
 * the file is removed. CTL_KEY_OK, CTL_KEY_E_EXISTS, CTL_KEY_E_IO (errno kept) or
 * CTL_KEY_E_INVAL. Used by every command that makes a secret key file. */
int ctl_write_secret_file(const char *path, const void *data, size_t len);

/* A secret key in guarded memory. Opaque. */
typedef struct ctl_secret_key ctl_secret_key;

/* Loads a secret key file. Checks that it is a regular file with no group/other permission bits
 * (CTL_KEY_E_PERM: fix with chmod 600), that it holds exactly one seed, and that the public key
 * derived from it matches PREFIX.pub when path ends in ".key" and that file exists
 * (CTL_KEY_E_MISMATCH otherwise). On success *out is owned by the caller: free with ctl_key_free. */
int ctl_key_load(const char *path, ctl_secret_key **out);

/* Builds a key from a 32-byte seed (tests, the documented example key). Same ownership. */
int ctl_key_from_seed(const uint8_t seed[32], ctl_secret_key **out);

/* Wipes and frees; NULL is a no-op. */
void ctl_key_free(ctl_secret_key *k);

/* The key's public half (32 bytes, owned by k). */
const uint8_t *ctl_key_public(const ctl_secret_key *k);
/* libsodium's 64-byte secret key, read only, owned by k: pass it to ctl_order_sign. Never copy
 * it out of guarded memory. */
const uint8_t *ctl_key_secret(const ctl_secret_key *k);

/* Parses a public key given as 64 hex digits or as 44 characters of standard base64; leading and
 * trailing white space is ignored. CTL_KEY_OK or CTL_KEY_E_FORMAT. */
int ctl_pubkey_parse(const char *text, uint8_t pk[CTL_PUBKEY_BYTES]);
/* Reads a .pub file (at most 4 KiB) and parses it as above. */
int ctl_pubkey_load(const char *path, uint8_t pk[CTL_PUBKEY_BYTES]);
/* Lower-case hex (65 bytes with the NUL). Returns out. */
char *ctl_pubkey_hex(const uint8_t pk[CTL_PUBKEY_BYTES], char out[2 * CTL_PUBKEY_BYTES + 1]);

#endif
