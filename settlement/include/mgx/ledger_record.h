/*
 * mgx settlement: the ledger's records and their canonical binary encodings.
 *
 * A settled interval becomes transactions (one per trade, one per participant position) and one
 * block. Each has exactly one encoding: a 4-byte domain tag ("MGXT" / "MGXB"), a version byte,
 * then fixed-width big-endian integers in a fixed order; decoding accepts only bytes that
 * re-encode identically, so a record has one id. A transaction's id is SHA-256 of its encoding
 * and its Merkle leaf is that encoding (leaf hash SHA-256(0x00 || encoding), RFC 6962). A block
 * commits to the interval's transactions (their own Merkle root), to the whole log (size and
 * root after appending them), to the previous block's hash, the tariffs and the totals; its
 * hash is SHA-256 of its encoding and the community's Ed25519 key signs that encoding. Layouts
 * are listed byte by byte in docs/ledger.md.
 *
 * Pure; thread safe (no state).
 */
#ifndef MGX_LEDGER_RECORD_H
#define MGX_LEDGER_RECORD_H

#include <stddef.h>
#include <stdint.h>

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

typedef enum { STL_TX_TRADE = 1, STL_TX_POSITION = 2 } stl_tx_kind;

#define STL_TX_TRADE_LEN 106
#define STL_TX_POSITION_LEN 135
#define STL_TX_MAX_LEN 135

typedef struct {
    stl_tx_kind kind;
    int64_t interval_id;
    uint32_t seq; /* position in the block: trades first (market order), then positions */
    stl_settled_trade trade;   /* when kind == STL_TX_TRADE */
    stl_position position;     /* when kind == STL_TX_POSITION */
} stl_tx;

/* Writes the encoding into out (STL_TX_MAX_LEN bytes) and returns its length, or 0 for a record
 * that cannot be encoded (bad kind or status, a negative amount). */
size_t stl_tx_encode(const stl_tx *tx, uint8_t out[STL_TX_MAX_LEN]);
/* Decodes a canonical encoding; STL_E_ENCODING otherwise. */
int stl_tx_decode(const uint8_t *buf, size_t len, stl_tx *tx);
/* id = SHA-256(encoding). */
void stl_tx_id(const uint8_t *enc, size_t len, uint8_t id[STL_ID_LEN]);

typedef struct {
    char community[STL_COMMUNITY_MAX + 1];
    uint64_t height;      /* 0 for the first block */
    int64_t interval_id;  /* floor(interval start UTC seconds / interval_len_s) */
    uint32_t interval_len_s;
    stl_tariffs tariffs;
    uint8_t prev_hash[STL_ID_LEN]; /* all zero for the first block */
    uint32_t n_tx;
    uint8_t tx_root[STL_ID_LEN];   /* Merkle root of this block's transactions */
    uint64_t log_size;             /* transactions in the log after this block */
    uint8_t log_root[STL_ID_LEN];
    stl_totals totals;
} stl_block;

#define STL_BLOCK_MAX_LEN (4 + 1 + 1 + STL_COMMUNITY_MAX + 8 + 8 + 4 + 3 * 8 + 32 + 4 + 32 + 8 + 32 + 3 * 4 + 12 * 8)

/* 1 if s is a valid community name (1..STL_COMMUNITY_MAX of [A-Za-z0-9._/:-]), else 0. It is
 * also the checkpoint origin and the signing key's name, so it may not hold spaces or '+'. */
int stl_community_valid(const char *s);

/* Encoding of b into out (STL_BLOCK_MAX_LEN bytes); returns the length, 0 if b is invalid. */
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
