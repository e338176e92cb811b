/*
 * Internal: the settlement ledger in the community database (db/db.h).
 *
 * ctl_ledger_settle is the one function the controller daemon calls after an interval's grace
 * period: it reconciles the interval (settlement/reconcile), appends its transactions to the
 * Merkle log, signs the block and a C2SP checkpoint, and commits everything in one BEGIN
 * IMMEDIATE transaction keyed by the interval id. Settling an interval again returns the stored
 * block (or a conflict if the inputs changed). A crash at any point leaves either no block or
 * the whole block. ctl_ledger_verify audits the whole database and names the first fault.
 *
 * Tables (all prefixed ledger_, beside the controller's own): ledger_meta (community, verifier
 * key), ledger_block (height, interval id, hash, encoding, signature, checkpoint), ledger_tx (log
 * index, height, id, participant of a position, encoding), ledger_node (the Merkle log's perfect
 * subtrees). Participant ids are stored as the int64 with the same bits.
 *
 * Crash points for tests: when the environment variable MGX_CRASH_AT names one of
 * ledger.begin, ledger.after_txs, ledger.after_nodes, ledger.after_block, ledger.before_commit,
 * ledger.after_commit, the process kills itself with SIGKILL there.
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

typedef struct {
    int64_t interval_id;     /* floor(start UTC seconds / interval_len_s) */
    uint32_t interval_len_s; /* 900 for quarter hours */
    stl_tariffs tariffs;
    const mkt_trade *trades; /* the market's trades for the interval, canonical order */
    size_t n_trades;
    const stl_metered *meters; /* validated metered energy per participant */
    size_t n_meters;
} ctl_ledger_input;

/* The community's settlement key; lives in sodium_malloc memory (ctl_ledger_key_load). */
typedef struct {
    char name[STL_COMMUNITY_MAX + 1]; /* the community, checkpoint origin and key name */
    uint8_t sk[STL_SK_LEN];
} ctl_ledger_key;

typedef struct {
    stl_block block;
    uint8_t hash[STL_ID_LEN];
    int replayed; /* 1 when the interval was already settled and the stored block returned */
} ctl_ledger_result;

/* Reads a signer key file ("PRIVATE+KEY+..."); NULL on error (message in err). Free with
 * ctl_ledger_key_free, which wipes it. */
ctl_ledger_key *ctl_ledger_key_load(const char *path, char *err, size_t errlen);
void ctl_ledger_key_free(ctl_ledger_key *k);

/* The ledger's tables (ledger_meta, ledger_block, ledger_tx, ledger_node) are the community
 * database's (db/schema.c): open the file with ctl_db_open. */

int ctl_ledger_settle(ctl_db *db, const ctl_ledger_input *in, const ctl_ledger_key *key,
                      ctl_ledger_result *out, char *err, size_t errlen);

/* Audits everything: block chain, hashes, signatures, checkpoints, transaction ids, the Merkle
 * log's nodes and roots, and re-settles every block from its own transactions to check each
 * amount and balance. trusted_pk (may be NULL) must be the ledger's key. CTL_LEDGER_OK with a
 * summary in msg, or CTL_LEDGER_E_FAULT with the first fault. */
int ctl_ledger_verify(ctl_db *db, const uint8_t *trusted_pk, char *msg, size_t msglen);

/* The ledger's community and verifier key text (from the first block). */
int ctl_ledger_meta(ctl_db *db, char community[STL_COMMUNITY_MAX + 1], char *vkey, size_t vcap);
/* The latest block's height and log size; CTL_LEDGER_E_NOTFOUND when there is none. */
int ctl_ledger_head(ctl_db *db, uint64_t *height, uint64_t *log_size);

/* The Merkle node source over ledger_node (ctx is the ctl_db *). */
int ctl_ledger_node(void *ctx, unsigned level, uint64_t index, uint8_t out[STL_HASH_LEN]);

#endif
