/*
 * Internal: true-ups of energy credits (issue 13; docs/credits.md, "True-up"). A position
 * settled held (flagged, held or disputed) minted no credits. The coordinator may later resolve
 * it as good (`mgx ledger resolve`): that request is kept in credit_trueup (db/schema.c, version
 * 8) and the next block settled with credits on carries one credit record for it
 * (stl_credit_trueup), written in the same SQLite transaction that marks the request done, so a
 * resolution mints once however the controller is stopped. The earlier block is never rewritten.
 * The audit (ledger_verify.c) checks every true-up record against its original position and
 * against every earlier true-up.
 *
 * Not thread safe (the store's thread).
 */
#ifndef MGX_CTL_CREDIT_TRUEUP_H
#define MGX_CTL_CREDIT_TRUEUP_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "mgx/credits.h"

/* At most this many true-ups ride in one block (the rest wait for the next): bounded work. */
#define CTL_TRUEUP_MAX_PER_BLOCK 256

/* Records the coordinator's resolution of participant's position of interval_id as good.
 * Checks the position exists and is held (flagged, held or estimated; not good, not missing)
 * with export > 0. 0 recorded (to be minted with the next block), 1 recorded before (nothing
 * done), -1 refused (msg says why), -2 SQLite. */
int ctl_trueup_request(ctl_db *db, int64_t interval_id, int64_t participant, int64_t now_ms,
                       char *msg, size_t msglen);

/* The true-ups for one block: with height < 0 the pending requests (the next block's), else
 * those block `height` carries; ascending by source log index, at most
 * CTL_TRUEUP_MAX_PER_BLOCK. Each is stl_credit_trueup of its original position with min_tier;
 * one that mints 0 (a tier below min_tier) is returned too (it is marked done and not written);
 * one whose source is not a held position (only a damaged file holds one) is left out and stays
 * pending. *out is malloc'd (caller frees; NULL when *n is 0). 0, or -1 (SQLite: msg says). */
int ctl_trueup_load(ctl_db *db, int64_t height, uint8_t min_tier, stl_credit **out, size_t *n,
                    char *msg, size_t msglen);

/* Marks the requests of c[0..n) (by source) as carried by block height; inside the caller's
 * transaction. 0 or -1. */
int ctl_trueup_mark(ctl_db *db, const stl_credit *c, size_t n, uint64_t height);

/* The audit of one stored true-up record c of the block whose transactions start at log index
 * first_index, with the block's minimum tier: its source is a held position of the same
 * participant in an earlier block, c is exactly stl_credit_trueup of it, and no transaction
 * stored before first_index is a true-up of the same source. 0, or -1 with the fault in msg. */
int ctl_trueup_audit(ctl_db *db, const stl_credit *c, uint64_t first_index, uint8_t min_tier,
                     char *msg, size_t msglen);

#endif
