/*
 * Internal: the settlement of an interval. ctl_ledger_settle is the one function the controller
 * daemon (settle_daemon.c) and `mgx ledger settle` call after an interval's grace period: it
 * reconciles the interval's trades and metered energy (settlement/reconcile) into ledger
 * transactions (trades, then one position per participant), appends them to the Merkle log,
 * builds and signs the block and a C2SP checkpoint, and commits everything to the ledger
 * (ledger_store.h) in one BEGIN IMMEDIATE transaction keyed by the interval id. Settling an
 * interval again returns the stored block (or a conflict if the inputs changed). A crash at any
 * point leaves either no block or the whole block.
 *
 * Crash points for tests: when the environment variable MGX_CRASH_AT names one of
 * ledger.begin, ledger.after_txs, ledger.after_nodes, ledger.after_block, ledger.before_commit,
 * ledger.after_commit, the process kills itself with SIGKILL there.
 */
#ifndef MGX_CTL_SETTLE_INTERVAL_H
#define MGX_CTL_SETTLE_INTERVAL_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/ledger_record.h"
#include "mgx/market.h"
#include "mgx/reconcile.h"
#include "settle/ledger_store.h"

typedef struct {
    int64_t interval_id;     /* floor(start UTC seconds / interval_len_s) */
    uint32_t interval_len_s; /* 900 for quarter hours */
    stl_tariffs tariffs;
    const mkt_trade *trades; /* the market's trades for the interval, canonical order */
    size_t n_trades;
    const stl_metered *meters; /* validated metered energy per participant */
    size_t n_meters;
    uint8_t timing; /* stl_timing: how the interval's market cleared (recorded in the block) */
    uint8_t version; /* ledger version to write: 0 is STL_LEDGER_VERSION; tests set
                        STL_LEDGER_V1 to make a ledger as earlier releases did. A block is never
                        written in a version below its predecessor's. */
    uint8_t credits_on;      /* 1: the block records the interval's energy credits (kind 3,
                                version 2 only; docs/credits.md); 0: none (the default) */
    uint8_t credit_min_tier; /* with credits_on: the attestation tier that mints (0..2) */
} ctl_ledger_input;

/* The community's settlement key; lives in sodium_malloc memory (ctl_ledger_key_load). */
typedef struct {
    char name[STL_COMMUNITY_MAX + 1]; /* the community, checkpoint origin and key name */
    uint8_t sk[STL_SK_LEN];
    uint8_t salt_secret[STL_SALT_LEN]; /* stl_salt_secret(sk): the leaves' salts come from it */
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

int ctl_ledger_settle(ctl_db *db, const ctl_ledger_input *in, const ctl_ledger_key *key,
                      ctl_ledger_result *out, char *err, size_t errlen);

/* The rule for an interval's transactions: the reconciler's result encoded as trades, then
 * positions, then (credit_min_tier >= 0, version 2 only) one credit record per home holding any
 * credits (stl_credits_compute with that minimum tier), in ledger `version`, with their leaf hashes and ids (the audit re-derives every
 * block with it). A version 2 block salts each transaction: with salts non-NULL (the audit,
 * which has the stored salts and no key) transaction i takes salts[i], else the salt derived
 * from salt_secret (stl_leaf_salt); version 1 uses neither. trueups (n_trueups, credits on
 * only, each stl_credit_is_trueup with min_tier credit_min_tier) follow the interval's credit
 * records, those minting anything, in the order given (credit_trueup.h). Fills *s (free with
 * ctl_ledger_txs_free, also on failure); CTL_LEDGER_OK, CTL_LEDGER_E_NOMEM or
 * CTL_LEDGER_E_INPUT when a transaction cannot be encoded. */
int ctl_settle_txs(const stl_reconciler *r, int64_t interval_id, uint8_t version,
                   int credit_min_tier, const stl_credit *trueups, size_t n_trueups,
                   const uint8_t *salt_secret, const uint8_t (*salts)[STL_SALT_LEN],
                   ctl_ledger_txs *s);

#endif
