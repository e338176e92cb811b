/*
 * Internal: what the replicated controller (controller/cluster/, docs/cluster.md) keeps in the
 * community database: the last replicated log index applied to this file, the outer
 * transaction an entry is applied in, and the whole file as bytes for a Raft snapshot.
 *
 * Exactly once: an entry's effects (written by the store's ordinary functions, whose own
 * transactions nest as savepoints inside the apply transaction, common/sql.h) and its index
 * commit together, so a node killed at any point either has both or neither and skips, on
 * restart, every entry at or below the stored index.
 *
 * Thread safety: as ctl_db (one thread at a time); an apply transaction is begun and ended on
 * the same thread.
 */
#ifndef MGX_CTL_DB_CLUSTER_STATE_H
#define MGX_CTL_DB_CLUSTER_STATE_H

#include "db/db.h"

#include <stddef.h>
#include <stdint.h>

/* BEGIN IMMEDIATE of an apply: until ctl_db_apply_end, every transaction of db's own functions
 * and of ctl_db_begin / ctl_db_end is a savepoint inside it. ctl_db_apply_end commits when ok
 * (CTL_DB_E_DB if COMMIT fails, then rolled back) or rolls back everything. */
int ctl_db_apply_begin(ctl_db *db);
int ctl_db_apply_end(ctl_db *db, int ok);

/* The applied index (0 on a file no entry was applied to). */
int ctl_db_cluster_applied(ctl_db *db, uint64_t *index);
/* Records index as applied; call it inside the apply transaction of that entry. */
int ctl_db_cluster_set_applied(ctl_db *db, uint64_t index);

/* The divergence check's chain (controller/cluster/cluster.c): the digest of every entry
 * applied to this file, and the index the chain started from. On a file with no chain yet
 * (no entry applied, or entries applied before migration 13) *base is the applied index and
 * digest all zeros. */
#define CTL_DB_CHAIN_LEN 32
int ctl_db_cluster_chain(ctl_db *db, uint64_t *base, uint8_t digest[CTL_DB_CHAIN_LEN]);
/* Records index as applied with the chain's base and digest after it; call it inside the
 * apply transaction of that entry. */
int ctl_db_cluster_set_applied_chain(ctl_db *db, uint64_t index, uint64_t base,
                                     const uint8_t digest[CTL_DB_CHAIN_LEN]);

/* The whole database as one consistent SQLite file image (VACUUM INTO tmp_path, read back and
 * removed): *bytes is malloc'd and the caller's. tmp_path must not exist or be removable. */
int ctl_db_image(ctl_db *db, const char *tmp_path, uint8_t **bytes, size_t *len, char *err,
                 size_t errlen);
/* Replaces the whole content of db with an image from ctl_db_image (written to tmp_path and
 * copied in with SQLite's backup API, in one step: readers see the old or the new file). */
int ctl_db_load_image(ctl_db *db, const char *tmp_path, const uint8_t *bytes, size_t len, char *err,
                      size_t errlen);

#endif
