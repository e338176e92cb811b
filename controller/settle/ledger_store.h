/*
 * Internal: the store of the settlement ledger in the community database (db/db.h): blocks,
 * transactions, the Merkle log's nodes and the community's key record. It decides nothing: the
 * settlement of an interval (settle_interval.h) builds and signs a block and writes it with the
 * functions here inside its one transaction; the audit is ledger_verify.h.
 *
 * Tables (all prefixed ledger_, beside the controller's own): ledger_meta (community, verifier
 * key), ledger_block (height, interval id, hash, encoding, signature, checkpoint), ledger_tx (log
 * index, height, id, participant of a position, encoding, and for a version 2 transaction its
 * secret salt), ledger_node (the Merkle log's perfect subtrees). Participant ids are stored as the int64 with the same bits.
 */
#ifndef MGX_CTL_LEDGER_STORE_H
#define MGX_CTL_LEDGER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#include "mgx/checkpoint.h"
#include "mgx/ledger_record.h"
#include "mgx/market.h"
#include "mgx/merkle.h"
#include "mgx/reconcile.h"

enum {
    CTL_LEDGER_OK = 0,
    CTL_LEDGER_E_DB = -1,       /* SQLite failed (message in err) */
    CTL_LEDGER_E_INPUT = -2,    /* the interval's inputs were rejected by reconciliation */
    CTL_LEDGER_E_CONFLICT = -3, /* the interval is settled with different inputs */
    CTL_LEDGER_E_KEY = -4,      /* the key is not this ledger's key */
    CTL_LEDGER_E_FAULT = -5,    /* verify found a fault (described in err) */
    CTL_LEDGER_E_NOTFOUND = -6, /* no such transaction, block or size */
    CTL_LEDGER_E_NOMEM = -7
};

/* One block's transactions, encoded: settle_interval.c builds them (ctl_settle_txs), the
 * writers below store them. Owned arrays of n entries; free with ctl_ledger_txs_free. */
typedef struct {
    size_t n;
    uint8_t (*enc)[STL_TX_MAX_LEN];
    size_t *len;
    uint8_t (*leaf)[STL_HASH_LEN];
    uint8_t (*id)[STL_ID_LEN];
    uint8_t (*salt)[STL_SALT_LEN]; /* version 2 transactions' salts; unused for version 1 */
    int salted;                    /* 1: salt[] holds them (a version 2 block) */
    int64_t *participant; /* position's participant bits, or INT64_MIN for a trade */
} ctl_ledger_txs;

void ctl_ledger_txs_free(ctl_ledger_txs *s);

/* The ledger's tables (ledger_meta, ledger_block, ledger_tx, ledger_node) are the community
 * database's (db/schema.c): open the file with ctl_db_open. */

/* The ledger's community and verifier key text (from the first block). */
int ctl_ledger_meta(ctl_db *db, char community[STL_COMMUNITY_MAX + 1], char *vkey, size_t vcap);
/* Records the community and verifier key text (with the first block). */
int ctl_ledger_meta_set(ctl_db *db, const char *community, const char *vkey);
/* The latest block's height and log size; CTL_LEDGER_E_NOTFOUND when there is none. */
int ctl_ledger_head(ctl_db *db, uint64_t *height, uint64_t *log_size);

/* Block `height`, or with height < 0 the block of interval_id, or with interval_id INT64_MIN
 * too the latest block, decoded, and its stored hash (hash may be NULL). CTL_LEDGER_OK,
 * CTL_LEDGER_E_NOTFOUND, CTL_LEDGER_E_FAULT (not a canonical block) or CTL_LEDGER_E_DB. */
int ctl_ledger_block_load(ctl_db *db, int64_t height, int64_t interval_id, stl_block *b,
                          uint8_t hash[STL_ID_LEN]);

/* The writers of one block, for use inside the caller's transaction: its transactions at log
 * indexes first_index.., the Merkle log extended by their leaves from log_size (the frontier
 * after it in *f), and the block row (encoding, hash, signature, checkpoint note). */
int ctl_ledger_txs_insert(ctl_db *db, const ctl_ledger_txs *s, uint64_t height,
                          uint64_t first_index);
int ctl_ledger_log_append(ctl_db *db, const ctl_ledger_txs *s, uint64_t log_size,
                          stl_frontier *f);
int ctl_ledger_block_insert(ctl_db *db, const stl_block *b, const uint8_t *enc, size_t len,
                            const uint8_t hash[STL_ID_LEN], const uint8_t sig[STL_SIG_LEN],
                            const char *checkpoint);

/* The minimum tier of block `height`'s credit records (its last transaction), or -1 when it
 * holds none (CTL_LEDGER_OK), CTL_LEDGER_E_DB or CTL_LEDGER_E_FAULT (undecodable). */
int ctl_ledger_block_credit_tier(ctl_db *db, uint64_t height, int *tier);

/* The Merkle node source over ledger_node (ctx is the ctl_db *). */
int ctl_ledger_node(void *ctx, unsigned level, uint64_t index, uint8_t out[STL_HASH_LEN]);

#endif
