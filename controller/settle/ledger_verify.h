/*
 * Internal: the audit of the settlement ledger (`mgx ledger verify`). Reads the store
 * (ledger_store.h) back and re-settles every block by the rules that made it
 * (settle_interval.h).
 */
#ifndef MGX_CTL_LEDGER_VERIFY_H
#define MGX_CTL_LEDGER_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "settle/ledger_store.h"

/* Audits everything: block chain, hashes, signatures, checkpoints, transaction ids, the Merkle
 * log's nodes and roots, and re-settles every block from its own transactions to check each
 * amount and balance. trusted_pk (may be NULL) must be the ledger's key. CTL_LEDGER_OK with a
 * summary in msg, or CTL_LEDGER_E_FAULT with the first fault. */
int ctl_ledger_verify(ctl_db *db, const uint8_t *trusted_pk, char *msg, size_t msglen);

/* The same, auditing in full only the blocks whose log size is above audited_size (all when it
 * is negative): the earlier ones are only checked as a signed chain (encoding, hash, previous
 * hash, signature, checkpoint), their transactions and nodes are not read. For a witness
 * (controller/witness/) whose consistency proof binds the first audited_size leaves to a root
 * it audited before. */
int ctl_ledger_verify_since(ctl_db *db, const uint8_t *trusted_pk, int64_t audited_size,
                            char *msg, size_t msglen);

#endif
