/*
 * Internal: proofs out of the settlement ledger and their offline checks. The coordinator's
 * side reads the database: the signed checkpoint of a block, the inclusion proof of one
 * transaction in the Merkle log at a checkpoint, the consistency proof that a later log extends
 * an earlier one. The homeowner's side needs no database: a proof, the checkpoint and the
 * community's public key (`mgx ledger check-proof`, docs/ledger.md).
 *
 * Messages written into err are bare ("no such block"); the caller prefixes its name.
 */
#ifndef MGX_CTL_LEDGER_PROOF_H
#define MGX_CTL_LEDGER_PROOF_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#include "mgx/checkpoint.h"
#include "settle/ledger_json.h"
#include "settle/ledger_store.h"

/* The checkpoint text of block `height` (the latest block if height < 0), with the log size it
 * signs in *size; malloc'd (the caller frees), NULL when there is no such block. */
char *ctl_ledger_checkpoint(ctl_db *db, int64_t height, uint64_t *size);

/* The checkpoint of the block whose log size is exactly size; malloc'd, NULL if none. */
char *ctl_ledger_checkpoint_at_size(ctl_db *db, uint64_t size);

/* Fills pr (zeroed by the caller) with the inclusion proof of one transaction, named by its id
 * (txid non-NULL) or else by its log index, at the checkpoint of block `height` (latest if
 * < 0), and copies the stored transaction id into txid_out. pr->checkpoint is malloc'd
 * (ctl_lj_proof_free). CTL_LEDGER_OK; CTL_LEDGER_E_NOTFOUND (no such block or transaction, or
 * not in that log), CTL_LEDGER_E_FAULT (a damaged log) or CTL_LEDGER_E_DB, with err. */
int ctl_ledger_inclusion_proof(ctl_db *db, const uint8_t *txid, int64_t log_index, int64_t height,
                               ctl_lj_proof *pr, uint8_t txid_out[STL_ID_LEN], char *err,
                               size_t errlen);

/* Fills c (zeroed by the caller) with the proof that the log of size to (the latest if < 0)
 * extends the one of size from, with the checkpoints of both sizes where a block has them.
 * Return codes as ctl_ledger_inclusion_proof. */
int ctl_ledger_consistency_proof(ctl_db *db, int64_t from, int64_t to, ctl_lj_consistency *c,
                                 char *err, size_t errlen);

/* Offline: pr's transaction is in the log that cp (already opened and its signature checked)
 * signs. CTL_LEDGER_OK or CTL_LEDGER_E_FAULT with err. */
int ctl_ledger_check_inclusion(const ctl_lj_proof *pr, const stl_checkpoint *cp, char *err,
                               size_t errlen);

/* Offline: both checkpoints of c are signed by (name, pk) and the newer log extends the older
 * one; the opened checkpoints go to old_cp and new_cp. CTL_LEDGER_OK, CTL_LEDGER_E_KEY (a
 * checkpoint is not signed by this key) or CTL_LEDGER_E_FAULT, with err. */
int ctl_ledger_check_consistency(const ctl_lj_consistency *c, const char *name,
                                 const uint8_t pk[32], stl_checkpoint *old_cp,
                                 stl_checkpoint *new_cp, char *err, size_t errlen);

#endif
