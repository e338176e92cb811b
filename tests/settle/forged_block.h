/*
 * Test helper: appends a block to a ledger as the coordinator could, signed with the community
 * key, over transactions the test made itself (a forged credit record, a true-up minted twice),
 * so the tests see `mgx ledger verify` catch what a valid signature does not. The block is
 * written with the ledger store's own writers in one transaction, like a settled block.
 */
#ifndef MGX_TESTS_FORGED_BLOCK_H
#define MGX_TESTS_FORGED_BLOCK_H

#include <stdint.h>

#include "db/db.h"
#include "mgx/reconcile.h"
#include "settle/ledger_store.h"
#include "settle/settle_interval.h"

/* Appends a version 2 block for interval_id (900 s) after the ledger's latest block in db,
 * holding s's transactions, with tariffs tar and the reconciler's totals, signed by k; the
 * test fails if any step does. */
void tst_forge_block(ctl_db *db, const ctl_ledger_key *k, int64_t interval_id,
                     const stl_tariffs *tar, const ctl_ledger_txs *s, const stl_totals *totals);

#endif
