/*
 * Program-derived addresses (PDAs) and associated token accounts (ATAs), derived exactly as
 * the Solana runtime and the SPL Associated Token Account program do.
 *
 * create_program_address = SHA-256(seed_1 || ... || seed_k || program_id ||
 * "ProgramDerivedAddress"), valid only if those 32 bytes are NOT an Ed25519 point, so that no
 * private key can exist for it. find_program_address appends a one-byte bump seed and tries
 * 255, 254, ... down to 0, keeping the first valid address. An ATA is the PDA of the seeds
 * (owner, token program id, mint) under the ATA program.
 *
 * "On the curve" means only that the 32 bytes decode as a compressed Edwards point (the y
 * coordinate has a matching x). It does not mean "in the prime-order subgroup": the runtime
 * uses curve25519-dalek's decompress(), and a check that also rejects small-order or
 * mixed-order points (libsodium's crypto_core_ed25519_is_valid_point) would accept as off-curve
 * about half of the hashes the runtime rejects, and derive wrong addresses.
 */
#ifndef MGX_SOLANA_PDA_H
#define MGX_SOLANA_PDA_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/solana.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOL_PDA_MAX_SEEDS 16    /* including the bump */
#define SOL_PDA_MAX_SEED_LEN 32

typedef struct {
    const uint8_t *data;
    size_t len; /* 0 .. SOL_PDA_MAX_SEED_LEN */
} sol_seed;

/* 1 if the 32 bytes decode as a point of edwards25519 (whatever its order), 0 if not. */
int sol_is_on_curve(const uint8_t bytes[32]);

/* The address for these seeds exactly (no bump search). SOL_E_SEEDS for too many or too long
 * seeds; SOL_E_NO_PDA if the hash is on the curve. */
int sol_create_program_address(const sol_seed *seeds, size_t n_seeds, const sol_pubkey *program,
                               sol_pubkey *out);

/* The canonical PDA: the first bump from 255 down whose address is off the curve. At most
 * SOL_PDA_MAX_SEEDS - 1 seeds (the bump is one). *bump may be NULL. */
int sol_find_program_address(const sol_seed *seeds, size_t n_seeds, const sol_pubkey *program,
                             sol_pubkey *out, uint8_t *bump);

/* The associated token account of owner for mint under token_program (SOL_TOKEN_PROGRAM or
 * SOL_TOKEN_2022_PROGRAM). The owner may itself be off the curve (a PDA). */
int sol_ata_address(const sol_pubkey *owner, const sol_pubkey *mint,
                    const sol_pubkey *token_program, sol_pubkey *out);

#ifdef __cplusplus
}
#endif

#endif
