/*
 * Legacy message compilation, transaction serialization, signing and parsing. The message
 * keeps keys in first-use order while instructions are added and tracks the exact size of the
 * signed transaction, so a packer can ask "does this still fit?" for the cost of a few key
 * comparisons; the class ordering the wire format needs is applied once, when signing.
 */
#include "mgx/solana_tx.h"

#include <sodium.h>
#include <string.h>

enum { F_SIGNER = 1, F_WRITABLE = 2 };

size_t sol_shortvec_len(size_t v)
{
    return v < 0x80 ? 1 : v < 0x4000 ? 2 : 3;
}

size_t sol_shortvec_encode(uint16_t v, uint8_t out[3])
{
    size_t n = 0;
    unsigned rem = v;
    for (;;) {
        uint8_t b = (uint8_t)(rem & 0x7f);
        rem >>= 7;
        if (rem == 0) {
            out[n++] = b;
            return n;
        }
        out[n++] = (uint8_t)(b | 0x80);
    }
}

int sol_shortvec_decode(const uint8_t *in, size_t len, uint16_t *v)
{
    uint32_t val = 0;
    for (size_t i = 0; i < 3; i++) {
        if (i >= len)
            return SOL_E_PARSE;
        uint8_t b = in[i];
        val |= (uint32_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            /* A zero final byte after the first means a longer encoding than needed. */
            if (i > 0 && b == 0)
                return SOL_E_PARSE;
            if (val > 0xffff)
                return SOL_E_PARSE;
            *v = (uint16_t)val;
            return (int)(i + 1);
        }
    }
    return SOL_E_PARSE;
}

static size_t ix_wire_len(size_t n_accounts, size_t data_len)
{
    return 1 + sol_shortvec_len(n_accounts) + n_accounts + sol_shortvec_len(data_len) + data_len;
}

static size_t compute_tx_size(const sol_msg *m, size_t ix_bytes)
{
    return sol_shortvec_len(m->n_signers) + (size_t)SOL_SIGNATURE_BYTES * m->n_signers + 3 +
           sol_shortvec_len(m->n_keys) + (size_t)SOL_PUBKEY_BYTES * m->n_keys + SOL_HASH_BYTES +
           sol_shortvec_len(m->n_ix) + ix_bytes;
}

void sol_msg_init(sol_msg *m, const sol_pubkey *fee_payer)
{
    m->n_keys = 1;
    m->n_ix = 0;
    m->n_signers = 1;
    m->data_used = 0;
    m->keys[0] = *fee_payer;
    m->key_flags[0] = F_SIGNER | F_WRITABLE;
    m->tx_size = compute_tx_size(m, 0);
}

/* Index of key in m, adding it with flags or merging flags in. -1 when the key bound is hit. */
static int key_index(sol_msg *m, const sol_pubkey *key, uint8_t flags)
{
    for (size_t i = 0; i < m->n_keys; i++) {
        if (memcmp(m->keys[i].b, key->b, SOL_PUBKEY_BYTES) == 0) {
            if ((flags & F_SIGNER) && !(m->key_flags[i] & F_SIGNER))
                m->n_signers++;
            m->key_flags[i] |= flags;
            return (int)i;
        }
    }
    if (m->n_keys == SOL_MSG_MAX_KEYS)
        return -1;
    m->keys[m->n_keys] = *key;
    m->key_flags[m->n_keys] = flags;
    if (flags & F_SIGNER)
        m->n_signers++;
    return m->n_keys++;
}

static int add_one(sol_msg *m, const sol_ix *ix)
{
    if (ix->n_accounts > SOL_IX_MAX_ACCOUNTS || ix->data_len > SOL_IX_MAX_DATA)
        return SOL_E_INVAL;
    if (m->n_ix == SOL_MSG_MAX_IX || (size_t)m->data_used + ix->data_len > sizeof m->data)
        return SOL_E_SPACE;
    int p = key_index(m, &ix->program, 0);
    if (p < 0)
        return SOL_E_SPACE;
    uint8_t idx[SOL_IX_MAX_ACCOUNTS];
    for (size_t a = 0; a < ix->n_accounts; a++) {
        const sol_account_meta *am = &ix->accounts[a];
        uint8_t f = (uint8_t)((am->is_signer ? F_SIGNER : 0) | (am->is_writable ? F_WRITABLE : 0));
        int k = key_index(m, &am->key, f);
        if (k < 0)
            return SOL_E_SPACE;
        idx[a] = (uint8_t)k;
    }
    size_t i = m->n_ix++;
    m->ix[i].program = (uint8_t)p;
    m->ix[i].n_accounts = ix->n_accounts;
    memcpy(m->ix[i].accounts, idx, ix->n_accounts);
    m->ix[i].data_off = m->data_used;
    m->ix[i].data_len = ix->data_len;
    memcpy(m->data + m->data_used, ix->data, ix->data_len);
    m->data_used = (uint16_t)(m->data_used + ix->data_len);
    return SOL_OK;
}

int sol_msg_add(sol_msg *m, const sol_ix *ixs, size_t n)
{
    if (!m || (!ixs && n > 0))
        return SOL_E_INVAL;
    /* Snapshot of everything an add can change; keys and instructions only grow. */
    uint8_t n_keys = m->n_keys, n_ix = m->n_ix, n_signers = m->n_signers;
    uint16_t data_used = m->data_used;
    uint8_t flags[SOL_MSG_MAX_KEYS];
    memcpy(flags, m->key_flags, n_keys);
    size_t ix_bytes = m->tx_size - compute_tx_size(m, 0);
    int rc = SOL_OK;
    for (size_t i = 0; i < n && rc == SOL_OK; i++) {
        rc = add_one(m, &ixs[i]);
        if (rc == SOL_OK)
            ix_bytes += ix_wire_len(ixs[i].n_accounts, ixs[i].data_len);
    }
    size_t size = compute_tx_size(m, ix_bytes);
    if (rc == SOL_OK && size > SOL_TX_MAX_BYTES)
        rc = SOL_E_TOO_BIG;
    if (rc != SOL_OK) {
        m->n_keys = n_keys;
        m->n_ix = n_ix;
        m->n_signers = n_signers;
        m->data_used = data_used;
        memcpy(m->key_flags, flags, n_keys);
        return rc;
    }
    m->tx_size = size;
    return SOL_OK;
}

size_t sol_msg_tx_size(const sol_msg *m)
{
    return m->tx_size;
}

size_t sol_msg_signers(const sol_msg *m)
{
    return m->n_signers;
}

static int key_class(uint8_t f)
{
    int signer = (f & F_SIGNER) != 0, writable = (f & F_WRITABLE) != 0;
    return signer ? (writable ? 0 : 1) : (writable ? 2 : 3);
}

int sol_msg_sign(const sol_msg *m, const uint8_t blockhash[SOL_HASH_BYTES],
                 const uint8_t *const *secret_keys, size_t n_secret, uint8_t *out, size_t cap,
                 size_t *len, uint8_t sig[SOL_SIGNATURE_BYTES])
{
    if (!m || !blockhash || (!secret_keys && n_secret > 0) || !out || !len)
        return SOL_E_INVAL;
    if (m->tx_size > cap)
        return SOL_E_SPACE;
    /* Stable ordering by class; pos maps first-use index -> wire index. */
    uint8_t order[SOL_MSG_MAX_KEYS], pos[SOL_MSG_MAX_KEYS];
    size_t count[4] = {0, 0, 0, 0}, n = 0;
    for (int c = 0; c < 4; c++)
        for (size_t i = 0; i < m->n_keys; i++)
            if (key_class(m->key_flags[i]) == c) {
                pos[i] = (uint8_t)n;
                order[n++] = (uint8_t)i;
                count[c]++;
            }
    size_t nsig = count[0] + count[1];
    uint8_t *p = out + sol_shortvec_len(nsig) + nsig * SOL_SIGNATURE_BYTES;
    uint8_t *msg = p;
    *p++ = (uint8_t)nsig;
    *p++ = (uint8_t)count[1];
    *p++ = (uint8_t)count[3];
    p += sol_shortvec_encode(m->n_keys, p);
    for (size_t i = 0; i < n; i++, p += SOL_PUBKEY_BYTES)
        memcpy(p, m->keys[order[i]].b, SOL_PUBKEY_BYTES);
    memcpy(p, blockhash, SOL_HASH_BYTES);
    p += SOL_HASH_BYTES;
    p += sol_shortvec_encode(m->n_ix, p);
    for (size_t i = 0; i < m->n_ix; i++) {
        *p++ = pos[m->ix[i].program];
        p += sol_shortvec_encode(m->ix[i].n_accounts, p);
        for (size_t a = 0; a < m->ix[i].n_accounts; a++)
            *p++ = pos[m->ix[i].accounts[a]];
        p += sol_shortvec_encode(m->ix[i].data_len, p);
        memcpy(p, m->data + m->ix[i].data_off, m->ix[i].data_len);
        p += m->ix[i].data_len;
    }
    size_t msg_len = (size_t)(p - msg);
    /* Signatures, in the order of the signer keys. */
    uint8_t *s = out + sol_shortvec_encode((uint16_t)nsig, out);
    for (size_t k = 0; k < nsig; k++, s += SOL_SIGNATURE_BYTES) {
        const uint8_t *pk = m->keys[order[k]].b, *sk = NULL;
        for (size_t j = 0; j < n_secret && !sk; j++)
            if (memcmp(secret_keys[j] + 32, pk, 32) == 0)
                sk = secret_keys[j];
        if (!sk)
            return SOL_E_SIGNATURE;
        crypto_sign_detached(s, NULL, msg, msg_len, sk);
    }
    *len = (size_t)(p - out);
    if (sig)
        memcpy(sig, out + sol_shortvec_len(nsig), SOL_SIGNATURE_BYTES);
    return SOL_OK;
}

/* Reads a shortvec at *off, advancing it. */
static int read_count(const uint8_t *tx, size_t len, size_t *off, size_t *out)
{
    uint16_t v;
    int n = sol_shortvec_decode(tx + *off, len - *off, &v);
    if (n < 0)
        return SOL_E_PARSE;
    *off += (size_t)n;
    *out = v;
    return SOL_OK;
}

int sol_tx_parse(const uint8_t *tx, size_t len, sol_tx_view *v)
{
    if (!tx || !v)
        return SOL_E_INVAL;
    if (len > SOL_TX_MAX_BYTES)
        return SOL_E_PARSE;
    size_t off = 0, nsig, nkeys, nix;
    if (read_count(tx, len, &off, &nsig) != SOL_OK || nsig == 0 ||
        nsig > (len - off) / SOL_SIGNATURE_BYTES)
        return SOL_E_PARSE;
    v->n_signatures = nsig;
    v->signatures_off = off;
    off += nsig * SOL_SIGNATURE_BYTES;
    v->message_off = off;
    if (len - off < 3 || (tx[off] & 0x80))
        return SOL_E_PARSE; /* truncated, or a versioned message */
    v->num_required_signatures = tx[off];
    v->num_readonly_signed = tx[off + 1];
    v->num_readonly_unsigned = tx[off + 2];
    off += 3;
    if (read_count(tx, len, &off, &nkeys) != SOL_OK || nkeys > (len - off) / SOL_PUBKEY_BYTES)
        return SOL_E_PARSE;
    /* One signature per required signer; the fee payer must be a writable signer. */
    if (v->num_required_signatures != nsig || v->num_readonly_signed >= nsig ||
        (size_t)nsig + v->num_readonly_unsigned > nkeys)
        return SOL_E_PARSE;
    v->n_keys = nkeys;
    v->keys_off = off;
    off += nkeys * SOL_PUBKEY_BYTES;
    if (len - off < SOL_HASH_BYTES)
        return SOL_E_PARSE;
    v->blockhash_off = off;
    off += SOL_HASH_BYTES;
    if (read_count(tx, len, &off, &nix) != SOL_OK)
        return SOL_E_PARSE;
    for (size_t i = 0; i < nix; i++) {
        size_t nacc, ndata;
        if (off >= len || tx[off] >= nkeys)
            return SOL_E_PARSE;
        off++;
        if (read_count(tx, len, &off, &nacc) != SOL_OK || nacc > len - off)
            return SOL_E_PARSE;
        for (size_t a = 0; a < nacc; a++)
            if (tx[off + a] >= nkeys)
                return SOL_E_PARSE;
        off += nacc;
        if (read_count(tx, len, &off, &ndata) != SOL_OK || ndata > len - off)
            return SOL_E_PARSE;
        off += ndata;
    }
    if (off != len)
        return SOL_E_PARSE;
    v->n_instructions = nix;
    v->message_len = len - v->message_off;
    return SOL_OK;
}

int sol_tx_verify(const uint8_t *tx, size_t len)
{
    sol_tx_view v;
    int rc = sol_tx_parse(tx, len, &v);
    if (rc != SOL_OK)
        return rc;
    for (size_t i = 0; i < v.n_signatures; i++)
        if (crypto_sign_verify_detached(tx + v.signatures_off + i * SOL_SIGNATURE_BYTES,
                                        tx + v.message_off, v.message_len,
                                        tx + v.keys_off + i * SOL_PUBKEY_BYTES) != 0)
            return SOL_E_SIGNATURE;
    return SOL_OK;
}

int sol_tx_resign_keys(uint8_t *tx, size_t len, const uint8_t blockhash[SOL_HASH_BYTES],
                       const uint8_t *const *secret_keys, size_t n_secret)
{
    if (!blockhash || !secret_keys || n_secret == 0)
        return SOL_E_INVAL;
    sol_tx_view v;
    int rc = sol_tx_parse(tx, len, &v);
    if (rc != SOL_OK)
        return rc;
    /* every signer must have its key before anything is changed */
    const uint8_t *by_slot[256];
    if (v.n_signatures == 0 || v.n_signatures > sizeof by_slot / sizeof by_slot[0])
        return SOL_E_SIGNATURE;
    for (size_t i = 0; i < v.n_signatures; i++) {
        by_slot[i] = NULL;
        for (size_t k = 0; k < n_secret && !by_slot[i]; k++)
            if (secret_keys[k] &&
                memcmp(tx + v.keys_off + i * SOL_PUBKEY_BYTES, secret_keys[k] + 32,
                       SOL_PUBKEY_BYTES) == 0)
                by_slot[i] = secret_keys[k];
        if (!by_slot[i])
            return SOL_E_SIGNATURE;
    }
    memcpy(tx + v.blockhash_off, blockhash, SOL_HASH_BYTES);
    for (size_t i = 0; i < v.n_signatures; i++)
        crypto_sign_detached(tx + v.signatures_off + i * SOL_SIGNATURE_BYTES, NULL,
                             tx + v.message_off, v.message_len, by_slot[i]);
    return SOL_OK;
}

int sol_tx_resign(uint8_t *tx, size_t len, const uint8_t blockhash[SOL_HASH_BYTES],
                  const uint8_t secret_key[SOL_SECRET_KEY_BYTES])
{
    if (!blockhash || !secret_key)
        return SOL_E_INVAL;
    sol_tx_view v;
    int rc = sol_tx_parse(tx, len, &v);
    if (rc != SOL_OK)
        return rc;
    if (v.n_signatures != 1)
        return SOL_E_SIGNATURE;
    return sol_tx_resign_keys(tx, len, blockhash, &secret_key, 1);
}
