/*
 * RFC 6962 / RFC 9162 Merkle tree hashing, frontier appends and proofs (mgx/merkle.h).
 *
 * Proof generation follows the recursive definitions of RFC 9162 2.1.3.1 (PATH) and 2.1.4.1
 * (SUBPROOF); every subtree they name is either a perfect subtree (fetched from the node source)
 * or the right edge of the tree (rebuilt from perfect ones). Verification follows the iterative
 * algorithms of 2.1.3.2 and 2.1.4.2 step by step, so it needs no node source at all.
 */
#include "mgx/merkle.h"

#include <sodium.h>
#include <string.h>

void stl_merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[STL_HASH_LEN])
{
    crypto_hash_sha256_state st;
    const uint8_t tag = 0x00;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &tag, 1);
    if (len)
        crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, out);
}

void stl_merkle_node_hash(const uint8_t left[STL_HASH_LEN], const uint8_t right[STL_HASH_LEN],
                          uint8_t out[STL_HASH_LEN])
{
    uint8_t buf[1 + 2 * STL_HASH_LEN];
    buf[0] = 0x01;
    memcpy(buf + 1, left, STL_HASH_LEN);
    memcpy(buf + 1 + STL_HASH_LEN, right, STL_HASH_LEN);
    crypto_hash_sha256(out, buf, sizeof buf);
}

void stl_merkle_empty_root(uint8_t out[STL_HASH_LEN])
{
    crypto_hash_sha256(out, (const uint8_t *)"", 0);
}

void stl_frontier_init(stl_frontier *f)
{
    memset(f, 0, sizeof *f);
}

int stl_frontier_append(stl_frontier *f, const uint8_t leaf[STL_HASH_LEN], stl_node_sink sink,
                        void *ctx)
{
    if (f->size >= (UINT64_C(1) << 63))
        return STL_E_OVERFLOW;
    uint8_t cur[STL_HASH_LEN];
    memcpy(cur, leaf, STL_HASH_LEN);
    uint64_t idx = f->size;
    unsigned l = 0;
    int rc;
    if (sink && (rc = sink(ctx, 0, idx, cur)) != 0)
        return rc;
    while ((f->size >> l) & 1) {
        stl_merkle_node_hash(f->hash[l], cur, cur);
        idx >>= 1;
        l++;
        if (sink && (rc = sink(ctx, l, idx, cur)) != 0)
            return rc;
    }
    memcpy(f->hash[l], cur, STL_HASH_LEN);
    f->size++;
    return STL_OK;
}

void stl_frontier_root(const stl_frontier *f, uint8_t out[STL_HASH_LEN])
{
    if (f->size == 0) {
        stl_merkle_empty_root(out);
        return;
    }
    int have = 0;
    for (unsigned l = 0; l < STL_MERKLE_MAX_LEVELS; l++) {
        if (!((f->size >> l) & 1))
            continue;
        if (!have)
            memcpy(out, f->hash[l], STL_HASH_LEN);
        else
            stl_merkle_node_hash(f->hash[l], out, out);
        have = 1;
    }
}

void stl_merkle_root(const uint8_t (*leaves)[STL_HASH_LEN], size_t n, uint8_t out[STL_HASH_LEN])
{
    stl_frontier f;
    stl_frontier_init(&f);
    for (size_t i = 0; i < n; i++)
        (void)stl_frontier_append(&f, leaves[i], NULL, NULL); /* cannot fail below 2^63 */
    stl_frontier_root(&f, out);
}

int stl_frontier_load(stl_frontier *f, uint64_t size, stl_node_source src, void *ctx)
{
    stl_frontier_init(f);
    if (size >= (UINT64_C(1) << 63))
        return STL_E_INVAL;
    for (unsigned l = 0; l < STL_MERKLE_MAX_LEVELS; l++)
        if (((size >> l) & 1) && src(ctx, l, (size >> l) - 1, f->hash[l]) != 0)
            return STL_E_NODE;
    f->size = size;
    return STL_OK;
}

int stl_merkle_root_at(uint64_t size, stl_node_source src, void *ctx, uint8_t out[STL_HASH_LEN])
{
    stl_frontier f;
    int rc = stl_frontier_load(&f, size, src, ctx);
    if (rc == STL_OK)
        stl_frontier_root(&f, out);
    return rc;
}

/* The largest power of two strictly below n (n >= 2). */
static uint64_t split_of(uint64_t n)
{
    return UINT64_C(1) << (63 - __builtin_clzll(n - 1));
}

/* MTH of leaves [b, e), e > b. */
static int range_hash(uint64_t b, uint64_t e, stl_node_source src, void *ctx,
                      uint8_t out[STL_HASH_LEN])
{
    uint64_t n = e - b;
    if ((n & (n - 1)) == 0 && (b & (n - 1)) == 0) {
        unsigned level = (unsigned)__builtin_ctzll(n);
        return src(ctx, level, b >> level, out) ? STL_E_NODE : STL_OK;
    }
    uint64_t k = split_of(n);
    uint8_t left[STL_HASH_LEN];
    int rc = range_hash(b, b + k, src, ctx, left);
    if (rc == STL_OK)
        rc = range_hash(b + k, e, src, ctx, out);
    if (rc == STL_OK)
        stl_merkle_node_hash(left, out, out);
    return rc;
}

typedef struct {
    stl_node_source src;
    void *ctx;
    uint8_t (*proof)[STL_HASH_LEN];
    size_t n;
} proof_out;

static int push(proof_out *po, uint64_t b, uint64_t e)
{
    if (po->n >= STL_MERKLE_MAX_PROOF)
        return STL_E_OVERFLOW;
    int rc = range_hash(b, e, po->src, po->ctx, po->proof[po->n]);
    if (rc == STL_OK)
        po->n++;
    return rc;
}

/* PATH(m, D[b:e]) with m relative to b. */
static int path(proof_out *po, uint64_t m, uint64_t b, uint64_t e)
{
    if (e - b == 1)
        return STL_OK;
    uint64_t k = split_of(e - b);
    int rc;
    if (m < k) {
        if ((rc = path(po, m, b, b + k)) == STL_OK)
            rc = push(po, b + k, e);
    } else {
        if ((rc = path(po, m - k, b + k, e)) == STL_OK)
            rc = push(po, b, b + k);
    }
    return rc;
}

/* SUBPROOF(m, D[b:e], whole) with m counted from b. */
static int subproof(proof_out *po, uint64_t m, uint64_t b, uint64_t e, int whole)
{
    if (m == e - b)
        return whole ? STL_OK : push(po, b, e);
    uint64_t k = split_of(e - b);
    int rc;
    if (m <= k) {
        if ((rc = subproof(po, m, b, b + k, whole)) == STL_OK)
            rc = push(po, b + k, e);
    } else {
        if ((rc = subproof(po, m - k, b + k, e, 0)) == STL_OK)
            rc = push(po, b, b + k);
    }
    return rc;
}

int stl_merkle_inclusion_proof(uint64_t index, uint64_t size, stl_node_source src, void *ctx,
                               uint8_t proof[][STL_HASH_LEN], size_t *n)
{
    if (!src || !proof || !n || index >= size)
        return STL_E_INVAL;
    proof_out po = {src, ctx, proof, 0};
    int rc = path(&po, index, 0, size);
    *n = rc == STL_OK ? po.n : 0;
    return rc;
}

int stl_merkle_consistency_proof(uint64_t old_size, uint64_t new_size, stl_node_source src,
                                 void *ctx, uint8_t proof[][STL_HASH_LEN], size_t *n)
{
    if (!src || !proof || !n || old_size > new_size)
        return STL_E_INVAL;
    *n = 0;
    if (old_size == 0 || old_size == new_size)
        return STL_OK;
    proof_out po = {src, ctx, proof, 0};
    int rc = subproof(&po, old_size, 0, new_size, 1);
    *n = rc == STL_OK ? po.n : 0;
    return rc;
}

/*
 * One level of a verifier's walk up the tree (RFC 9162 2.1.3.2 and 2.1.4.2, fn and sn as there):
 * whether this level's proof node is the left operand, and fn, sn moved up past it. Nothing
 * here depends on the hash, so both verifiers combine their nodes after the call.
 */
static int proof_step_left(uint64_t *fn, uint64_t *sn)
{
    int left = (*fn & 1) || *fn == *sn;
    if (left) {
        while (!(*fn & 1) && *fn != 0) {
            *fn >>= 1;
            *sn >>= 1;
        }
    }
    *fn >>= 1;
    *sn >>= 1;
    return left;
}

int stl_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[STL_HASH_LEN],
                                const uint8_t proof[][STL_HASH_LEN], size_t n,
                                const uint8_t root[STL_HASH_LEN])
{
    if (!leaf || !root || (n && !proof) || index >= size)
        return STL_E_PROOF;
    uint64_t fn = index, sn = size - 1;
    uint8_t r[STL_HASH_LEN];
    memcpy(r, leaf, STL_HASH_LEN);
    for (size_t i = 0; i < n; i++) {
        if (sn == 0)
            return STL_E_PROOF;
        if (proof_step_left(&fn, &sn))
            stl_merkle_node_hash(proof[i], r, r);
        else
            stl_merkle_node_hash(r, proof[i], r);
    }
    if (sn != 0 || sodium_memcmp(r, root, STL_HASH_LEN) != 0)
        return STL_E_PROOF;
    return STL_OK;
}

int stl_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
                                  const uint8_t old_root[STL_HASH_LEN],
                                  const uint8_t new_root[STL_HASH_LEN],
                                  const uint8_t proof[][STL_HASH_LEN], size_t n)
{
    if (!old_root || !new_root || (n && !proof) || old_size > new_size)
        return STL_E_PROOF;
    if (old_size == new_size)
        return n == 0 && sodium_memcmp(old_root, new_root, STL_HASH_LEN) == 0 ? STL_OK
                                                                               : STL_E_PROOF;
    if (old_size == 0)
        return n == 0 ? STL_OK : STL_E_PROOF;
    if (n == 0)
        return STL_E_PROOF;
    /* With a power-of-two old size the old root itself is the first node of the path. */
    size_t i = 0;
    const uint8_t *first;
    if ((old_size & (old_size - 1)) == 0) {
        first = old_root;
    } else {
        first = proof[0];
        i = 1;
    }
    uint64_t fn = old_size - 1, sn = new_size - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    uint8_t fr[STL_HASH_LEN], sr[STL_HASH_LEN];
    memcpy(fr, first, STL_HASH_LEN);
    memcpy(sr, first, STL_HASH_LEN);
    for (; i < n; i++) {
        if (sn == 0)
            return STL_E_PROOF;
        if (proof_step_left(&fn, &sn)) {
            stl_merkle_node_hash(proof[i], fr, fr);
            stl_merkle_node_hash(proof[i], sr, sr);
        } else {
            stl_merkle_node_hash(sr, proof[i], sr);
        }
    }
    if (sn != 0 || sodium_memcmp(fr, old_root, STL_HASH_LEN) != 0 ||
        sodium_memcmp(sr, new_root, STL_HASH_LEN) != 0)
        return STL_E_PROOF;
    return STL_OK;
}
