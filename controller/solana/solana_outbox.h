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
 *
 * In a cluster (docs/cluster.md) every node keeps the same outbox and only the leader polls
 * it. What the chain may see is decided through the replicated log: with a proposer set
 * (ctl_sol_outbox_replicate), storing an interval's transactions, a rebuild and a final state
 * are not written but proposed, and every node writes them when it applies the entry
 * (ctl_sol_outbox_apply). A leader sends only rows its database holds, so it never sends a
 * signature the committed log does not hold, and a new leader knows every signature any
 * earlier leader may have sent: the one in each open row (a rebuild replaces it only while
 * the row still has the signature the rebuild was decided on, and only after the chain said
 * that signature can no longer land). Asking the chain about that signature first, as the
 * rules above do, is then enough: nothing is sent twice, nothing skipped. The local
 * bookkeeping (submitted, attempts, last send, the node's refusal) stays each node's own.
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
    CTL_SOLOB_E_RPC = -5,    /* the RPC node could not be asked; nothing was changed */
    CTL_SOLOB_PROPOSED = 1   /* a cluster's leader: proposed to the log, written on apply */
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

/* In a cluster's leader: decisions (an interval's transactions, a rebuild, a final state) are
 * handed to fn as an opaque op (copied by fn; 0 when proposed) instead of written, and the
 * calls that would write them return CTL_SOLOB_PROPOSED. fn NULL: write directly (one node,
 * or a follower). */
typedef int (*ctl_sol_outbox_propose_fn)(void *ctx, const uint8_t *op, size_t len);
void ctl_sol_outbox_replicate(ctl_sol_outbox *ob, ctl_sol_outbox_propose_fn fn, void *ctx);
/* Writes a committed op on this node (inside the entry's apply transaction: its writes nest as
 * a savepoint). An op already done (the interval stored, the row rebuilt or final already) is
 * a no-op. CTL_SOLOB_OK, CTL_SOLOB_E_INVAL for a malformed op (refused alike on every node),
 * CTL_SOLOB_E_DB. An empty op is a no-op. */
int ctl_sol_outbox_apply(ctl_sol_outbox *ob, const uint8_t *op, size_t len);

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
