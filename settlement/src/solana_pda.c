/*
 * Program-derived addresses with libsodium: SHA-256 for the hash, point decoding for the
 * off-curve test. libsodium exposes point decoding only inside its point operations;
 * crypto_core_ed25519_add fails exactly when an operand does not decode (its on-curve check
 * after decoding always holds for a decoded point), so adding the candidate to itself is the
 * decode test. See mgx/solana_pda.h for why the subgroup check must not be used.
 */
#include "mgx/solana_pda.h"

#include <sodium.h>
#include <string.h>

static const char PDA_MARKER[] = "ProgramDerivedAddress";

int sol_is_on_curve(const uint8_t bytes[32])
{
    unsigned char sum[crypto_core_ed25519_BYTES];
    return crypto_core_ed25519_add(sum, bytes, bytes) == 0;
}

static int seeds_ok(const sol_seed *seeds, size_t n_seeds, size_t max_seeds)
{
    if (n_seeds > max_seeds)
        return 0;
    for (size_t i = 0; i < n_seeds; i++)
        if (seeds[i].len > SOL_PDA_MAX_SEED_LEN || (!seeds[i].data && seeds[i].len > 0))
            return 0;
    return 1;
}

/* Hashes seeds, the optional bump byte, the program id and the marker. */
static void pda_hash(const sol_seed *seeds, size_t n_seeds, const uint8_t *bump,
                     const sol_pubkey *program, uint8_t out[32])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < n_seeds; i++)
        if (seeds[i].len > 0)
            crypto_hash_sha256_update(&st, seeds[i].data, seeds[i].len);
    if (bump)
        crypto_hash_sha256_update(&st, bump, 1);
    crypto_hash_sha256_update(&st, program->b, sizeof program->b);
    crypto_hash_sha256_update(&st, (const unsigned char *)PDA_MARKER, sizeof PDA_MARKER - 1);
    crypto_hash_sha256_final(&st, out);
}

int sol_create_program_address(const sol_seed *seeds, size_t n_seeds, const sol_pubkey *program,
                               sol_pubkey *out)
{
    if ((!seeds && n_seeds > 0) || !program || !out)
        return SOL_E_INVAL;
    if (!seeds_ok(seeds, n_seeds, SOL_PDA_MAX_SEEDS))
        return SOL_E_SEEDS;
    uint8_t h[32];
    pda_hash(seeds, n_seeds, NULL, program, h);
    if (sol_is_on_curve(h))
        return SOL_E_NO_PDA;
    memcpy(out->b, h, sizeof h);
    return SOL_OK;
}

int sol_find_program_address(const sol_seed *seeds, size_t n_seeds, const sol_pubkey *program,
                             sol_pubkey *out, uint8_t *bump)
{
    if ((!seeds && n_seeds > 0) || !program || !out)
        return SOL_E_INVAL;
    if (!seeds_ok(seeds, n_seeds, SOL_PDA_MAX_SEEDS - 1))
        return SOL_E_SEEDS;
    for (int b = 255; b >= 0; b--) {
        uint8_t byte = (uint8_t)b;
        uint8_t h[32];
        pda_hash(seeds, n_seeds, &byte, program, h);
        if (!sol_is_on_curve(h)) {
            memcpy(out->b, h, sizeof h);
            if (bump)
                *bump = byte;
            return SOL_OK;
        }
    }
    return SOL_E_NO_PDA;
}

int sol_ata_address(const sol_pubkey *owner, const sol_pubkey *mint,
                    const sol_pubkey *token_program, sol_pubkey *out)
{
    if (!owner || !mint || !token_program || !out)
        return SOL_E_INVAL;
    const sol_seed seeds[3] = {
        {owner->b, sizeof owner->b}, {token_program->b, sizeof token_program->b},
        {mint->b, sizeof mint->b}};
    return sol_find_program_address(seeds, 3, &SOL_ATA_PROGRAM, out, NULL);
}
