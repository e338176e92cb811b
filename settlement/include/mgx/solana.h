/*
 * mgx settlement on Solana: the types, return codes and program ids shared by the Solana
 * modules (base58, program-derived addresses, instructions, transactions, interval batches).
 *
 * These modules build and sign Solana transactions in C and nothing more: no network, no
 * clock, no global state. Keys, the recent blockhash and every buffer are parameters. The
 * controller's outbox (controller/solana/solana_outbox.c) and JSON-RPC client do the I/O.
 * Wire-format facts come from the Solana documentation and the SPL programs' interfaces; the
 * program ids below are the ones deployed on every Solana cluster.
 *
 * Thread safety: every function is reentrant; objects are not shared between threads.
 */
#ifndef MGX_SOLANA_H
#define MGX_SOLANA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. 0 is success; every failure has a distinct negative code. */
enum {
    SOL_OK = 0,
    SOL_E_INVAL = -1,       /* NULL pointer, bad enum or index, zero-length where not allowed */
    SOL_E_BASE58 = -2,      /* not base58, or not the expected length once decoded */
    SOL_E_SPACE = -3,       /* the output buffer or a fixed bound is too small */
    SOL_E_TOO_BIG = -4,     /* one group of transfers does not fit a single transaction */
    SOL_E_NO_PDA = -5,      /* no bump 255..0 gives an off-curve address (never seen) */
    SOL_E_SEEDS = -6,       /* more than 16 seeds or a seed over 32 bytes */
    SOL_E_PARSE = -7,       /* bytes are not a well-formed legacy transaction */
    SOL_E_SIGNATURE = -8,   /* a signature does not verify, or the key is not the signer */
    SOL_E_NOMEM = -9,       /* allocation failed */
    SOL_E_SELF = -10,       /* a transfer from a home to itself */
    SOL_E_GROUP = -11,      /* transfers of one group are not adjacent */
    SOL_E_OVERFLOW = -12    /* an amount does not fit the token's u64 */
};

/* Returns a static English description of a return code; never NULL. */
const char *sol_strerror(int code);

#define SOL_PUBKEY_BYTES 32
#define SOL_SIGNATURE_BYTES 64
#define SOL_HASH_BYTES 32
/* A Solana key pair as libsodium and solana-keygen store it: 32-byte seed, then public key. */
#define SOL_SECRET_KEY_BYTES 64
/* The largest serialized transaction the network accepts (IPv6 MTU minus headers). */
#define SOL_TX_MAX_BYTES 1232
/* Longest base58 text of 32 bytes (44) and of 64 bytes (88), without the NUL. */
#define SOL_PUBKEY_B58_MAX 44
#define SOL_SIGNATURE_B58_MAX 88

typedef struct {
    uint8_t b[SOL_PUBKEY_BYTES];
} sol_pubkey;

/* Programs mgx uses, as deployed on every cluster (32 raw bytes each). */
extern const sol_pubkey SOL_TOKEN_PROGRAM;    /* TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA */
extern const sol_pubkey SOL_ATA_PROGRAM;      /* ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL */
extern const sol_pubkey SOL_MEMO_PROGRAM;     /* MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr */
extern const sol_pubkey SOL_SYSTEM_PROGRAM;   /* 11111111111111111111111111111111 */
extern const sol_pubkey SOL_TOKEN_2022_PROGRAM; /* TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb */

/* 1 if a and b are the same key. */
int sol_pubkey_eq(const sol_pubkey *a, const sol_pubkey *b);

#ifdef __cplusplus
}
#endif

#endif
