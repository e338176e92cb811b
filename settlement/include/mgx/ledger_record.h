/*
 * mgx settlement: the ledger's records and their canonical binary encodings.
 *
 * A settled interval becomes transactions (one per trade, one per participant position) and one
 * block. Each has exactly one encoding: a 4-byte domain tag ("MGXT" / "MGXB"), a version byte,
 * then fixed-width big-endian integers in a fixed order; decoding accepts only bytes that
 * re-encode identically, so a record has one id. A block commits to the interval's
 * transactions (their own Merkle root), to the whole log (size and root after appending them),
 * to the previous block's hash, the tariffs and the totals; its hash is SHA-256 of its encoding
 * and the community's Ed25519 key signs that encoding. Layouts are listed byte by byte in
 * docs/ledger.md.
 *
 * Two versions are read; new records are written as STL_LEDGER_VERSION (2). Version 2 salts
 * every transaction: its Merkle leaf hash is SHA-256(0x00 || salt || encoding) and its id
 * SHA-256(salt || encoding), with a secret 32-byte salt per transaction derived from the
 * community key (stl_salt_secret, stl_leaf_salt), so neither a sibling hash in someone's
 * inclusion proof nor a published id can be brute-forced back to a home's low-entropy meter
 * values. Version 1 (unsalted: leaf SHA-256(0x00 || encoding), id SHA-256(encoding)) is what
 * the ledgers of earlier releases hold; they still verify. Version 2 also records a position's
 * attestation tier and the statuses ESTIMATED and HELD, and a block's market timing.
 *
 * Pure; thread safe (no state).
 */
#ifndef MGX_LEDGER_RECORD_H
#define MGX_LEDGER_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/credits.h"
#include "mgx/reconcile.h"
#include "mgx/stl_error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STL_ID_LEN 32
#define STL_SIG_LEN 64
#define STL_PK_LEN 32
#define STL_SK_LEN 64
#define STL_COMMUNITY_MAX 64 /* bytes, [A-Za-z0-9._/:-] */

#define STL_SALT_LEN 32

#define STL_LEDGER_V1 1
#define STL_LEDGER_V2 2
#define STL_LEDGER_VERSION STL_LEDGER_V2 /* what new blocks and transactions are written as */

/* The kind byte; 4..255 are free for later record kinds (an addition, not a change of these).
 * Kind 3 (issue 13) is one home's energy credits of the interval (mgx/credits.h), version 2
 * only; a block holds them after its positions, only for homes with a nonzero record. */
typedef enum { STL_TX_TRADE = 1, STL_TX_POSITION = 2, STL_TX_CREDIT = 3 } stl_tx_kind;

/* When the interval's market cleared (block field, version 2). */
typedef enum { STL_TIMING_EX_ANTE = 0, STL_TIMING_EX_POST = 1 } stl_timing;

#define STL_TX_TRADE_LEN 106       /* both versions */
#define STL_TX_POSITION_V1_LEN 135
#define STL_TX_POSITION_LEN 136    /* version 2: + tier */
#define STL_TX_CREDIT_LEN 73       /* version 2 only */
#define STL_TX_MAX_LEN 136

typedef struct {
    uint8_t version; /* STL_LEDGER_V1 or STL_LEDGER_V2; nothing else encodes */
    stl_tx_kind kind;
    int64_t interval_id;
    uint32_t seq; /* position in the block: trades first (market order), then positions */
    stl_settled_trade trade;   /* when kind == STL_TX_TRADE */
    stl_position position;     /* when kind == STL_TX_POSITION */
    stl_credit credit;         /* when kind == STL_TX_CREDIT (version 2) */
} stl_tx;

/* Writes the encoding into out (STL_TX_MAX_LEN bytes) and returns its length, or 0 for a record
 * that cannot be encoded (bad version, kind or status, a negative amount; in version 1 a status
 * above MISSING or a tier other than 0, which that layout cannot hold; a credit record in version
 * 1 or one that fails stl_credit_valid). */
size_t stl_tx_encode(const stl_tx *tx, uint8_t out[STL_TX_MAX_LEN]);
/* Decodes a canonical encoding of either version; STL_E_ENCODING otherwise. */
int stl_tx_decode(const uint8_t *buf, size_t len, stl_tx *tx);
/* The version byte of an encoding (0 if it is too short to have one). */
uint8_t stl_tx_version(const uint8_t *enc, size_t len);

/* The transaction's id and Merkle leaf hash. Version 1 (salt must be NULL): id =
 * SHA-256(encoding), leaf = SHA-256(0x00 || encoding). Version 2 (salt required): id =
 * SHA-256(salt || encoding), leaf = SHA-256(0x00 || salt || encoding), i.e. the RFC 6962 leaf
 * of the data salt || encoding. STL_E_INVAL when the salt does not fit the version. */
int stl_tx_id(const uint8_t *salt, const uint8_t *enc, size_t len, uint8_t id[STL_ID_LEN]);
int stl_tx_leaf(const uint8_t *salt, const uint8_t *enc, size_t len, uint8_t leaf[STL_ID_LEN]);

/* The community's salt secret: the libsodium KDF (keyed BLAKE2b) subkey 1 of context
 * "mgxsalt2" from the 32-byte Ed25519 seed of its signing key, so the salts need no key of
 * their own and a lost salt can be derived again. The caller keeps it like the key
 * (sodium_malloc, wiped). */
void stl_salt_secret(const uint8_t sk[STL_SK_LEN], uint8_t secret[STL_SALT_LEN]);
/* The salt of transaction (interval_id, seq): BLAKE2b-256 keyed with the secret over
 * "MGXS" || interval_id (i64 BE) || seq (u32 BE). Deterministic, so settling an interval again
 * gives the same leaves and the exactly-once check can compare roots. */
void stl_leaf_salt(const uint8_t secret[STL_SALT_LEN], int64_t interval_id, uint32_t seq,
                   uint8_t salt[STL_SALT_LEN]);

typedef struct {
    uint8_t version; /* STL_LEDGER_V1 or STL_LEDGER_V2 */
    char community[STL_COMMUNITY_MAX + 1];
    uint64_t height;      /* 0 for the first block */
    int64_t interval_id;  /* floor(interval start UTC seconds / interval_len_s) */
    uint32_t interval_len_s;
    uint8_t timing;       /* stl_timing; version 2 only (0 in version 1) */
    stl_tariffs tariffs;
    uint8_t prev_hash[STL_ID_LEN]; /* all zero for the first block */
    uint32_t n_tx;
    uint8_t tx_root[STL_ID_LEN];   /* Merkle root of this block's transactions */
    uint64_t log_size;             /* transactions in the log after this block */
    uint8_t log_root[STL_ID_LEN];
    stl_totals totals;
} stl_block;

#define STL_BLOCK_MAX_LEN (4 + 1 + 1 + STL_COMMUNITY_MAX + 8 + 8 + 4 + 1 + 3 * 8 + 32 + 4 + 32 + 8 + 32 + 3 * 4 + 12 * 8)

/* 1 if s is a valid community name (1..STL_COMMUNITY_MAX of [A-Za-z0-9._/:-]), else 0. It is
 * also the checkpoint origin and the signing key's name, so it may not hold spaces or '+'. */
int stl_community_valid(const char *s);

/* Encoding of b into out (STL_BLOCK_MAX_LEN bytes); returns the length, 0 if b is invalid (also
 * a version other than 1 or 2, a timing above EX_POST, or a timing other than 0 in version 1). */
size_t stl_block_encode(const stl_block *b, uint8_t out[STL_BLOCK_MAX_LEN]);
int stl_block_decode(const uint8_t *buf, size_t len, stl_block *b);
/* hash = SHA-256(encoding). */
void stl_block_hash(const uint8_t *enc, size_t len, uint8_t hash[STL_ID_LEN]);

/* Ed25519 over msg with a libsodium secret key (seed || public key). */
void stl_sign(const uint8_t *msg, size_t len, const uint8_t sk[STL_SK_LEN],
              uint8_t sig[STL_SIG_LEN]);
/* STL_OK, or STL_E_SIGNATURE also when sig_len is not exactly 64 (libsodium's verify takes no
 * length and would read a truncated or padded signature as 64 bytes). */
int stl_verify(const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len,
               const uint8_t pk[STL_PK_LEN]);

#ifdef __cplusplus
}
#endif

#endif
