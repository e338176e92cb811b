/*
 * mgx settlement: the append-only Merkle log of RFC 6962 / RFC 9162 (section 2.1), SHA-256.
 *
 * leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); a tree of n leaves splits
 * at the largest power of two below n and never duplicates a leaf; the empty tree's root is
 * SHA-256(""). The log is stored as its perfect subtrees ("nodes": level l, index i covers
 * leaves [i * 2^l, (i + 1) * 2^l)), so any root and any proof needs only O(log n) of them; a
 * frontier (the perfect subtrees of the current size's binary decomposition) appends in O(1)
 * amortised and reports each new node so the caller can store it.
 *
 * Pure: nodes come from a caller-supplied function (an array in tests, SQLite in the
 * controller). Thread safety: functions are reentrant; a frontier is not shared.
 */
#ifndef MGX_MERKLE_H
#define MGX_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/stl_error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STL_HASH_LEN 32
#define STL_MERKLE_MAX_LEVELS 64
/* The longest inclusion or consistency proof for a tree of at most 2^63 leaves. */
#define STL_MERKLE_MAX_PROOF 64

void stl_merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[STL_HASH_LEN]);
void stl_merkle_node_hash(const uint8_t left[STL_HASH_LEN], const uint8_t right[STL_HASH_LEN],
                          uint8_t out[STL_HASH_LEN]);
void stl_merkle_empty_root(uint8_t out[STL_HASH_LEN]);

/* Root of the tree whose leaf hashes are leaves[0 .. n). O(n) time, O(log n) memory. */
void stl_merkle_root(const uint8_t (*leaves)[STL_HASH_LEN], size_t n, uint8_t out[STL_HASH_LEN]);

/* The compact state of a log of `size` leaves: hash[l] is the perfect subtree at level l of the
 * size's binary decomposition, valid where bit l of size is set. */
typedef struct {
    uint64_t size;
    uint8_t hash[STL_MERKLE_MAX_LEVELS][STL_HASH_LEN];
} stl_frontier;

/* Receives each node an append completes: the leaf itself (level 0) and every parent. */
typedef int (*stl_node_sink)(void *ctx, unsigned level, uint64_t index,
                             const uint8_t hash[STL_HASH_LEN]);

void stl_frontier_init(stl_frontier *f);
/* Appends one leaf hash; calls sink (if not NULL) for each new node in order of level. Returns
 * what the sink returned if not 0 (the frontier is then unchanged), STL_E_OVERFLOW when the log
 * is full, else STL_OK. */
int stl_frontier_append(stl_frontier *f, const uint8_t leaf[STL_HASH_LEN], stl_node_sink sink,
                        void *ctx);
void stl_frontier_root(const stl_frontier *f, uint8_t out[STL_HASH_LEN]);

/* Supplies the perfect subtree (level, index) of the log; returns 0, or non-zero when it cannot
 * (reported as STL_E_NODE). */
typedef int (*stl_node_source)(void *ctx, unsigned level, uint64_t index,
                               uint8_t out[STL_HASH_LEN]);

/* Loads the frontier of a log of `size` leaves from a node source. */
int stl_frontier_load(stl_frontier *f, uint64_t size, stl_node_source src, void *ctx);

/* Root of the first `size` leaves of a log. */
int stl_merkle_root_at(uint64_t size, stl_node_source src, void *ctx, uint8_t out[STL_HASH_LEN]);

/*
 * Inclusion proof (RFC 9162 2.1.3.1) of leaf `index` in the tree of the first `size` leaves:
 * writes at most STL_MERKLE_MAX_PROOF hashes to proof (deepest first) and their count to *n.
 * STL_E_INVAL if index >= size.
 */
int stl_merkle_inclusion_proof(uint64_t index, uint64_t size, stl_node_source src, void *ctx,
                               uint8_t proof[][STL_HASH_LEN], size_t *n);
/* Verifies an inclusion proof (RFC 9162 2.1.3.2): STL_OK or STL_E_PROOF. */
int stl_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[STL_HASH_LEN],
                                const uint8_t proof[][STL_HASH_LEN], size_t n,
                                const uint8_t root[STL_HASH_LEN]);

/* Consistency proof (RFC 9162 2.1.4.1) that the tree of size `old_size` is a prefix of the tree
 * of size `new_size`; empty when old_size is 0 or equal to new_size. STL_E_INVAL if old_size >
 * new_size. */
int stl_merkle_consistency_proof(uint64_t old_size, uint64_t new_size, stl_node_source src,
                                 void *ctx, uint8_t proof[][STL_HASH_LEN], size_t *n);
/* Verifies a consistency proof (RFC 9162 2.1.4.2): STL_OK or STL_E_PROOF. Equal sizes need an
 * empty proof and equal roots; old_size 0 needs an empty proof. */
int stl_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
                                  const uint8_t old_root[STL_HASH_LEN],
                                  const uint8_t new_root[STL_HASH_LEN],
                                  const uint8_t proof[][STL_HASH_LEN], size_t n);

#ifdef __cplusplus
}
#endif

#endif
