/*
 * One settlement interval as Solana transactions: a list of token transfers between homes
 * becomes TransferChecked instructions signed by the community's settlement key, packed into
 * as few legacy transactions (each <= 1,232 bytes) as the size limit allows.
 *
 * Model: energy credits are an SPL token with 0 decimals (1 unit = 1 Wh); payment is an SPL
 * token with its own decimals. Every home approved the settlement key once as delegate of its
 * energy and payment token accounts, so the settlement key alone signs every transfer and pays
 * the fees: one signature per transaction.
 *
 * Input is a plain list of transfers (the ledger's settled transfers: energy seller -> buyer,
 * payment buyer -> seller). Transfers sharing a group number (normally the two legs of one
 * trade) always land in the same transaction, so a trade settles atomically: either the buyer
 * gets the energy and the seller the payment, or neither moves.
 *
 * Every transaction starts with a Memo "mgx1 interval=<id> part=<k>/<n> root=<hex>" carrying
 * the interval id and the ledger root. Each transaction lands (or not) on its own, so each must
 * name what it settles: anyone holding the ledger can tie any on-chain transfer to its interval
 * and prove it against the root without finding the sibling transactions. The memo also makes
 * the bytes of every (interval, part) unique: identical transfers in two intervals signed
 * against the same blockhash would otherwise be one transaction to the network, and the second
 * would be dropped as already processed.
 *
 * Packing is deterministic (same input, same transactions): groups are taken in input order,
 * and when the next one does not fit, up to SOL_BATCH_WINDOW later groups are tried before the
 * transaction is closed, which fills the space left with trades whose accounts are already in
 * it. Zero-amount transfers move nothing and are left out.
 */
#ifndef MGX_SOLANA_BATCH_H
#define MGX_SOLANA_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/solana.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOL_BATCH_WINDOW 64       /* later groups tried before a transaction is closed */
#define SOL_BATCH_MAX_GROUP 16    /* transfers in one group */
#define SOL_BATCH_MAX_TRANSFERS 4000000u

typedef enum { SOL_ASSET_ENERGY = 0, SOL_ASSET_PAYMENT = 1 } sol_asset;

typedef struct {
    sol_pubkey authority;     /* settlement key: delegate of every home account, fee payer */
    sol_pubkey token_program; /* SOL_TOKEN_PROGRAM */
    sol_pubkey energy_mint;
    uint8_t energy_decimals;  /* 0: one unit is one Wh */
    sol_pubkey payment_mint;
    uint8_t payment_decimals;
} sol_community;

typedef struct {
    sol_pubkey owner;           /* the home's wallet */
    sol_pubkey energy_account;  /* its token accounts: normally the ATAs, see sol_home_init */
    sol_pubkey payment_account;
} sol_home;

/* Fills h with owner and its associated token accounts for the community's two mints. */
int sol_home_init(sol_home *h, const sol_community *c, const sol_pubkey *owner);

typedef struct {
    uint32_t from;   /* index into the homes array */
    uint32_t to;     /* index into the homes array, != from */
    uint32_t asset;  /* sol_asset */
    uint64_t amount; /* base units of the asset's token (Wh for energy) */
    uint64_t group;  /* non-decreasing along the list; equal groups share a transaction */
} sol_transfer;

typedef struct {
    uint64_t interval_id;
    uint8_t ledger_root[32];
} sol_interval;

/* Converts micro-currency (1e-6 of the currency unit) to base units of a payment token with
 * the given decimals: units = uc * 10^(decimals-6) exactly when decimals >= 6; when decimals
 * < 6 it rounds down and *rest_uc gets what was rounded off (may be NULL). SOL_E_OVERFLOW past
 * u64, SOL_E_INVAL for uc < 0 or decimals > 19. */
int sol_uc_to_units(int64_t uc, uint8_t decimals, uint64_t *units, int64_t *rest_uc);

/* One signed transaction of a batch. bytes stay valid until the next build or free. */
typedef struct {
    const uint8_t *bytes;
    size_t len;
    uint8_t signature[64];   /* the transaction id */
    uint32_t part;           /* 1-based, as in the memo */
    const uint32_t *transfers; /* indexes into the input list, n_transfers of them */
    size_t n_transfers;
} sol_batch_tx;

typedef struct sol_batch sol_batch;

/* A batch reusable across intervals. NULL on allocation failure. Free with sol_batch_free. */
sol_batch *sol_batch_new(void);
void sol_batch_free(sol_batch *b);

/* Builds and signs an interval's transactions. secret_key is the settlement key pair (seed ||
 * public key), whose public key must equal c->authority. On failure returns a SOL_E_* code,
 * leaves an empty batch and sets *bad_transfer (if non-NULL) to the input index at fault, or
 * SIZE_MAX when no single transfer is. */
int sol_batch_build(sol_batch *b, const sol_community *c, const sol_home *homes, size_t n_homes,
                    const sol_interval *iv, const sol_transfer *t, size_t n,
                    const uint8_t blockhash[32], const uint8_t secret_key[64],
                    size_t *bad_transfer);

/* Root-only anchoring (issue 19): the memo "mgx1 anchor interval=<id>\n" followed by the
 * block's signed checkpoint note as written (C2SP tlog-checkpoint: origin, log size, root,
 * signature line). Its length, or SOL_E_SPACE / SOL_E_INVAL. */
int sol_anchor_memo(uint64_t interval_id, const char *checkpoint, char *out, size_t cap);

/* Builds and signs the one transaction of an anchored interval into b: the anchor memo alone,
 * the settlement key (secret_key's public half, = authority) as fee payer and only signer. No
 * home account appears in it. The transaction is part 1 of 1 with no transfers. */
int sol_batch_anchor(sol_batch *b, const sol_pubkey *authority, uint64_t interval_id,
                     const char *checkpoint, const uint8_t blockhash[32],
                     const uint8_t secret_key[64]);

size_t sol_batch_count(const sol_batch *b);
/* The i-th transaction (0-based); NULL if i is out of range. */
const sol_batch_tx *sol_batch_at(const sol_batch *b, size_t i);
/* Total serialized bytes of all transactions. */
size_t sol_batch_bytes(const sol_batch *b);

/* Writes the memo text for (interval, part k of n) to out (cap bytes, NUL-terminated);
 * returns its length or SOL_E_SPACE. Exposed so tests and auditors can rebuild it. */
int sol_batch_memo(const sol_interval *iv, uint32_t part, uint32_t n_parts, char *out,
                   size_t cap);

#ifdef __cplusplus
}
#endif

#endif
