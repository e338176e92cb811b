/*
 * Builders for the three instruction kinds mgx sends. Layouts are in mgx/solana_ix.h.
 */
#include "mgx/solana_ix.h"

#include <string.h>

static void put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void meta(sol_account_meta *m, const sol_pubkey *key, int signer, int writable)
{
    m->key = *key;
    m->is_signer = (uint8_t)signer;
    m->is_writable = (uint8_t)writable;
}

void sol_ix_transfer_checked(sol_ix *ix, const sol_pubkey *source, const sol_pubkey *mint,
                             const sol_pubkey *destination, const sol_pubkey *authority,
                             uint64_t amount, uint8_t decimals)
{
    ix->program = SOL_TOKEN_PROGRAM;
    ix->n_accounts = 4;
    meta(&ix->accounts[0], source, 0, 1);
    meta(&ix->accounts[1], mint, 0, 0);
    meta(&ix->accounts[2], destination, 0, 1);
    meta(&ix->accounts[3], authority, 1, 0);
    ix->data_len = 10;
    ix->data[0] = SOL_TOKEN_TAG_TRANSFER_CHECKED;
    put_u64le(&ix->data[1], amount);
    ix->data[9] = decimals;
}

void sol_ix_mint_to_checked(sol_ix *ix, const sol_pubkey *mint, const sol_pubkey *destination,
                            const sol_pubkey *mint_authority, uint64_t amount, uint8_t decimals)
{
    ix->program = SOL_TOKEN_PROGRAM;
    ix->n_accounts = 3;
    meta(&ix->accounts[0], mint, 0, 1); /* the supply changes */
    meta(&ix->accounts[1], destination, 0, 1);
    meta(&ix->accounts[2], mint_authority, 1, 0);
    ix->data_len = 10;
    ix->data[0] = SOL_TOKEN_TAG_MINT_TO_CHECKED;
    put_u64le(&ix->data[1], amount);
    ix->data[9] = decimals;
}

void sol_ix_burn_checked(sol_ix *ix, const sol_pubkey *account, const sol_pubkey *mint,
                         const sol_pubkey *authority, uint64_t amount, uint8_t decimals)
{
    ix->program = SOL_TOKEN_PROGRAM;
    ix->n_accounts = 3;
    meta(&ix->accounts[0], account, 0, 1);
    meta(&ix->accounts[1], mint, 0, 1);
    meta(&ix->accounts[2], authority, 1, 0);
    ix->data_len = 10;
    ix->data[0] = SOL_TOKEN_TAG_BURN_CHECKED;
    put_u64le(&ix->data[1], amount);
    ix->data[9] = decimals;
}

void sol_ix_approve(sol_ix *ix, const sol_pubkey *source, const sol_pubkey *delegate,
                    const sol_pubkey *owner, uint64_t amount)
{
    ix->program = SOL_TOKEN_PROGRAM;
    ix->n_accounts = 3;
    meta(&ix->accounts[0], source, 0, 1);
    meta(&ix->accounts[1], delegate, 0, 0);
    meta(&ix->accounts[2], owner, 1, 0);
    ix->data_len = 9;
    ix->data[0] = SOL_TOKEN_TAG_APPROVE;
    put_u64le(&ix->data[1], amount);
}

int sol_ix_memo(sol_ix *ix, const char *text, size_t len)
{
    if (!ix || !text || len == 0 || len > SOL_IX_MAX_DATA)
        return SOL_E_INVAL;
    ix->program = SOL_MEMO_PROGRAM;
    ix->n_accounts = 0;
    ix->data_len = (uint16_t)len;
    memcpy(ix->data, text, len);
    return SOL_OK;
}
