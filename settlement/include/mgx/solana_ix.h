/*
 * Solana instructions mgx emits: SPL Token TransferChecked, Approve, MintToChecked and
 * BurnChecked (energy credits), and a Memo.
 *
 * An instruction is a program id, an ordered list of accounts with signer/writable flags, and
 * opaque data. The SPL Token layouts (little-endian): Approve = tag 4, u64 amount, accounts
 * [source (w), delegate, owner (signer)]; TransferChecked = tag 12, u64 amount, u8 decimals,
 * accounts [source (w), mint, destination (w), owner or delegate (signer)]. TransferChecked
 * makes the token program check the mint and its decimals, so a wrong mint or a payment amount
 * scaled for the wrong decimals fails instead of moving the wrong value. The Memo program
 * (v2) takes UTF-8 bytes and needs no accounts.
 */
#ifndef MGX_SOLANA_IX_H
#define MGX_SOLANA_IX_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/solana.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOL_IX_MAX_ACCOUNTS 8
#define SOL_IX_MAX_DATA 512 /* enough for any mgx memo (an anchor with its checkpoint); real
                              instructions allow more */

enum {
    SOL_TOKEN_TAG_APPROVE = 4,
    SOL_TOKEN_TAG_TRANSFER_CHECKED = 12,
    SOL_TOKEN_TAG_MINT_TO_CHECKED = 14, /* energy credits (docs/credits.md) */
    SOL_TOKEN_TAG_BURN_CHECKED = 15
};

typedef struct {
    sol_pubkey key;
    uint8_t is_signer;
    uint8_t is_writable;
} sol_account_meta;

/* A self-contained instruction value (no pointers), cheap to copy into a message. */
typedef struct {
    sol_pubkey program;
    uint8_t n_accounts;
    sol_account_meta accounts[SOL_IX_MAX_ACCOUNTS];
    uint16_t data_len;
    uint8_t data[SOL_IX_MAX_DATA];
} sol_ix;

/* Moves amount base units from source to destination token accounts of mint; authority is the
 * owner of source or its approved delegate, and signs. */
void sol_ix_transfer_checked(sol_ix *ix, const sol_pubkey *source, const sol_pubkey *mint,
                             const sol_pubkey *destination, const sol_pubkey *authority,
                             uint64_t amount, uint8_t decimals);

/* MintToChecked (tag 14, u64 amount, u8 decimals; accounts [mint (w), destination (w), mint
 * authority (signer)]): creates amount base units in destination; the mint's authority signs. */
void sol_ix_mint_to_checked(sol_ix *ix, const sol_pubkey *mint, const sol_pubkey *destination,
                            const sol_pubkey *mint_authority, uint64_t amount, uint8_t decimals);
/* BurnChecked (tag 15, u64 amount, u8 decimals; accounts [account (w), mint (w), owner or
 * delegate (signer)]): destroys amount base units of account; a delegate burns within its
 * allowance, which the burn reduces. */
void sol_ix_burn_checked(sol_ix *ix, const sol_pubkey *account, const sol_pubkey *mint,
                         const sol_pubkey *authority, uint64_t amount, uint8_t decimals);
/* Lets delegate move up to amount base units out of source; owner signs. A new Approve
 * replaces the previous allowance; each delegated transfer reduces it. */
void sol_ix_approve(sol_ix *ix, const sol_pubkey *source, const sol_pubkey *delegate,
                    const sol_pubkey *owner, uint64_t amount);

/* A memo of len bytes (UTF-8, 1..SOL_IX_MAX_DATA). SOL_E_INVAL if too long or empty. */
int sol_ix_memo(sol_ix *ix, const char *text, size_t len);

#ifdef __cplusplus
}
#endif

#endif
