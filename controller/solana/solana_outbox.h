/*
 * Internal: the Solana outbox, a table in the controller's SQLite database that carries each
 * settlement transaction from built to confirmed or failed, across crashes and restarts,
 * without ever letting the same trades settle twice.
 *
 * States: built (signed, never sent) -> submitted (sent at least once; may land) ->
 * confirmed (finalized without error) | failed (finalized with an error, or refused by the
 * node's preflight and expired). confirmed and failed are final.
 *
 * The retry policy, and why it cannot double-spend:
 *  - A row is marked submitted, and committed, before the bytes are sent; a crash after the
 *    send therefore leaves a row that asks the chain before doing anything else.
 *  - Resending means sending the same bytes: same signature, and the network processes a
 *    signature at most once. That is always safe, and is done while the blockhash is valid.
 *  - A new transaction for the same trades (same instructions, new blockhash, new signature)
 *    is built only when the old one can no longer land: the finalized block height, read
 *    BEFORE the status query, is above the old lastValidBlockHeight, and getSignatureStatuses
 *    (with transaction history) then does not know the old signature. Every block that could
 *    hold it is final by then, so "unknown" means "never". The old signature is kept in
 *    solana_outbox_superseded.
 *  - Each interval's batch is stored once (interval_id, part is unique): building the same
 *    interval again is refused while any of its transactions exists.
 * Only one process may poll an outbox at a time (the controller's daemon).
 */
#ifndef MGX_CTL_SOLANA_OUTBOX_H
#define MGX_CTL_SOLANA_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#include "mgx/solana_batch.h"
#include "solana/solana_rpc.h"

enum {
    CTL_SOLOB_OK = 0,
    CTL_SOLOB_E_DB = -1,     /* SQLite error (message on stderr) */
    CTL_SOLOB_E_EXISTS = -2, /* the interval's transactions are already stored */
    CTL_SOLOB_E_INVAL = -3,
    CTL_SOLOB_E_NOTFOUND = -4,
    CTL_SOLOB_E_RPC = -5     /* the RPC node could not be asked; nothing was changed */
};

const char *ctl_sol_outbox_strerror(int code);

typedef enum {
    CTL_SOLOB_BUILT = 0,
    CTL_SOLOB_SUBMITTED = 1,
    CTL_SOLOB_CONFIRMED = 2,
    CTL_SOLOB_FAILED = 3
} ctl_sol_outbox_state;

const char *ctl_sol_outbox_state_name(ctl_sol_outbox_state s);

/* Wait between two sends of the same bytes, in milliseconds. */
#define CTL_SOLOB_RESEND_MS 2000

typedef struct ctl_sol_outbox ctl_sol_outbox;

/* The outbox on the community database db (its tables are db/schema.c's). db stays the
 * caller's (ctl_db_open) and must outlive the outbox. */
int ctl_sol_outbox_open(ctl_db *db, ctl_sol_outbox **out);
void ctl_sol_outbox_close(ctl_sol_outbox *ob);

/* Stores every transaction of b as built, in one SQLite transaction. */
int ctl_sol_outbox_add(ctl_sol_outbox *ob, uint64_t interval_id, const sol_batch *b,
                       const uint8_t blockhash[32], uint64_t last_valid_block_height,
                       int64_t now_ms);

/* One signed transaction to store (borrowed): bytes, and its first signature (the id). */
typedef struct {
    const uint8_t *bytes;
    size_t len;
    const uint8_t *signature; /* 64 bytes */
} ctl_sol_outbox_tx;

/* Stores n transactions as the interval's parts 1..n (in that order), as built, in one SQLite
 * transaction; CTL_SOLOB_E_EXISTS if the interval has any already. ctl_sol_outbox_add is this
 * for a batch's transactions. */
int ctl_sol_outbox_add_txs(ctl_sol_outbox *ob, uint64_t interval_id, const ctl_sol_outbox_tx *txs,
                           size_t n, const uint8_t blockhash[32],
                           uint64_t last_valid_block_height, int64_t now_ms);

typedef struct {
    size_t sent;       /* first sends, including sends of rebuilt transactions */
    size_t resent;     /* same bytes sent again */
    size_t rebuilt;    /* new blockhash after the old one expired unseen */
    size_t confirmed;
    size_t failed;
    size_t pending;    /* still submitted after this pass */
} ctl_sol_poll_stats;

/* One pass over every built or submitted transaction, oldest first, applying the policy
 * above. secret_key is the settlement key pair (for rebuilding). Returns CTL_SOLOB_E_RPC if
 * the block height could not be read (nothing changed), CTL_SOLOB_E_DB on a database error. */
int ctl_sol_outbox_poll(ctl_sol_outbox *ob, ctl_sol_rpc *rpc, const uint8_t secret_key[64],
                        int64_t now_ms, ctl_sol_poll_stats *stats);
/* The same with every key a stored transaction may need for a rebuild (n_sks key pairs: the
 * settlement key, and the mint authority for credit transactions); a rebuild re-signs each
 * signer's slot with its key (sol_tx_resign_keys). */
int ctl_sol_outbox_poll_keys(ctl_sol_outbox *ob, ctl_sol_rpc *rpc, const uint8_t *const *sks,
                             size_t n_sks, int64_t now_ms, ctl_sol_poll_stats *stats);

typedef struct {
    uint64_t interval_id;
    uint32_t part;
    uint32_t n_parts;
    ctl_sol_outbox_state state;
    char signature[89];
    uint32_t attempts;
    uint32_t generation;
    uint64_t last_valid_block_height;
    char last_error[256];
} ctl_sol_outbox_row;

int ctl_sol_outbox_get(ctl_sol_outbox *ob, uint64_t interval_id, uint32_t part,
                       ctl_sol_outbox_row *row);
/* Number of the interval's transactions in each state, indexed by ctl_sol_outbox_state. */
int ctl_sol_outbox_counts(ctl_sol_outbox *ob, uint64_t interval_id, size_t counts[4]);
/* The same over every interval (the metrics page). */
int ctl_sol_outbox_totals(ctl_sol_outbox *ob, size_t counts[4]);

#endif
