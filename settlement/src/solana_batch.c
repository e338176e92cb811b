/*
 * Packing an interval's transfers into signed Solana transactions. Two passes: the first
 * assigns groups to transactions, sizing each with a memo as long as any final one can be
 * (the part count is not known yet); the second builds each transaction with its real memo,
 * which is never longer, and signs it. Rules are in mgx/solana_batch.h.
 */
#include "mgx/solana_batch.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgx/solana_ix.h"
#include "mgx/solana_pda.h"
#include "mgx/solana_tx.h"

#define END UINT32_MAX

struct sol_batch {
    uint8_t *bytes;
    size_t bytes_len, bytes_cap;
    sol_batch_tx *txs;
    size_t n_tx, tx_cap;
    uint32_t *tr; /* transfer indexes of all transactions, back to back */
    size_t tr_len, tr_cap;
    /* Scratch, sized to the largest interval seen. */
    uint32_t *grp_start, *grp_end, *next, *order, *tx_end;
    size_t grp_cap;
};

int sol_home_init(sol_home *h, const sol_community *c, const sol_pubkey *owner)
{
    if (!h || !c || !owner)
        return SOL_E_INVAL;
    h->owner = *owner;
    int rc = sol_ata_address(owner, &c->energy_mint, &c->token_program, &h->energy_account);
    if (rc == SOL_OK)
        rc = sol_ata_address(owner, &c->payment_mint, &c->token_program, &h->payment_account);
    return rc;
}

int sol_uc_to_units(int64_t uc, uint8_t decimals, uint64_t *units, int64_t *rest_uc)
{
    if (uc < 0 || decimals > 19 || !units)
        return SOL_E_INVAL;
    uint64_t p = 1;
    if (decimals >= 6) {
        for (int i = 6; i < decimals; i++)
            p *= 10;
        if ((uint64_t)uc > UINT64_MAX / p)
            return SOL_E_OVERFLOW;
        *units = (uint64_t)uc * p;
        if (rest_uc)
            *rest_uc = 0;
    } else {
        for (int i = decimals; i < 6; i++)
            p *= 10;
        *units = (uint64_t)uc / p;
        if (rest_uc)
            *rest_uc = (int64_t)((uint64_t)uc % p);
    }
    return SOL_OK;
}

int sol_batch_memo(const sol_interval *iv, uint32_t part, uint32_t n_parts, char *out, size_t cap)
{
    if (!iv || !out)
        return SOL_E_INVAL;
    char root[2 * sizeof iv->ledger_root + 1];
    sodium_bin2hex(root, sizeof root, iv->ledger_root, sizeof iv->ledger_root);
    int n = snprintf(out, cap, "mgx1 interval=%" PRIu64 " part=%" PRIu32 "/%" PRIu32 " root=%s",
                     iv->interval_id, part, n_parts, root);
    if (n < 0 || (size_t)n >= cap)
        return SOL_E_SPACE;
    return n;
}

/* The scratch arrays, listed once for growing and freeing. */
#define N_SCRATCH 5

static void scratch_of(sol_batch *b, uint32_t **a[N_SCRATCH])
{
    uint32_t **t[N_SCRATCH] = {&b->grp_start, &b->grp_end, &b->next, &b->order, &b->tx_end};
    memcpy(a, t, sizeof t);
}

sol_batch *sol_batch_new(void)
{
    return calloc(1, sizeof(sol_batch));
}

void sol_batch_free(sol_batch *b)
{
    if (!b)
        return;
    free(b->bytes);
    free(b->txs);
    free(b->tr);
    uint32_t **scratch[N_SCRATCH];
    scratch_of(b, scratch);
    for (size_t i = 0; i < N_SCRATCH; i++)
        free(*scratch[i]);
    free(b);
}

/* Grows *p to hold at least need elements of size sz. */
static int reserve(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return SOL_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * sz);
    if (!q)
        return SOL_E_NOMEM;
    *p = q;
    *cap = c;
    return SOL_OK;
}

static int reserve_groups(sol_batch *b, size_t n)
{
    if (n <= b->grp_cap)
        return SOL_OK;
    uint32_t **scratch[N_SCRATCH];
    scratch_of(b, scratch);
    for (size_t i = 0; i < N_SCRATCH; i++) {
        void *q = realloc(*scratch[i], n * sizeof(uint32_t));
        if (!q)
            return SOL_E_NOMEM;
        *scratch[i] = q;
    }
    b->grp_cap = n;
    return SOL_OK;
}

/* Checks every transfer and splits the list into groups of non-zero transfers. */
static int make_groups(sol_batch *b, size_t n_homes, const sol_transfer *t, size_t n,
                       size_t *n_groups, size_t *bad)
{
    size_t g = 0, in_group = 0;
    for (size_t i = 0; i < n; i++) {
        *bad = i;
        if (t[i].from >= n_homes || t[i].to >= n_homes || t[i].asset > SOL_ASSET_PAYMENT)
            return SOL_E_INVAL;
        if (t[i].from == t[i].to)
            return SOL_E_SELF;
        int new_group = i == 0 || t[i].group != t[i - 1].group;
        if (i > 0 && t[i].group < t[i - 1].group)
            return SOL_E_GROUP;
        if (new_group) {
            if (g > 0 && in_group == 0)
                g--; /* the previous group moved nothing: drop it */
            b->grp_start[g] = (uint32_t)i;
            g++;
            in_group = 0;
        }
        b->grp_end[g - 1] = (uint32_t)(i + 1);
        if (t[i].amount > 0 && ++in_group > SOL_BATCH_MAX_GROUP)
            return SOL_E_TOO_BIG;
    }
    if (g > 0 && in_group == 0)
        g--;
    *n_groups = g;
    *bad = SIZE_MAX;
    return SOL_OK;
}

typedef struct {
    const sol_community *c;
    const sol_home *homes;
    const sol_transfer *t;
} build_ctx;

/* The TransferChecked instructions of group g; returns how many. */
static size_t group_ixs(const sol_batch *b, const build_ctx *x, uint32_t g, sol_ix *ixs)
{
    size_t k = 0;
    for (uint32_t i = b->grp_start[g]; i < b->grp_end[g]; i++) {
        const sol_transfer *t = &x->t[i];
        if (t->amount == 0)
            continue;
        const sol_home *from = &x->homes[t->from], *to = &x->homes[t->to];
        if (t->asset == SOL_ASSET_ENERGY)
            sol_ix_transfer_checked(&ixs[k++], &from->energy_account, &x->c->energy_mint,
                                    &to->energy_account, &x->c->authority, t->amount,
                                    x->c->energy_decimals);
        else
            sol_ix_transfer_checked(&ixs[k++], &from->payment_account, &x->c->payment_mint,
                                    &to->payment_account, &x->c->authority, t->amount,
                                    x->c->payment_decimals);
    }
    return k;
}

static int start_msg(sol_msg *m, const sol_community *c, const sol_interval *iv, uint32_t part,
                     uint32_t n_parts)
{
    char text[SOL_IX_MAX_DATA + 1];
    int len = sol_batch_memo(iv, part, n_parts, text, sizeof text);
    if (len < 0)
        return len;
    sol_ix memo;
    sol_ix_memo(&memo, text, (size_t)len);
    sol_msg_init(m, &c->authority);
    return sol_msg_add(m, &memo, 1);
}

/* First pass: assigns groups to transactions. order[] lists groups transaction by
 * transaction; tx_end[k] is the end of transaction k's run in order[]. */
static int plan(sol_batch *b, const build_ctx *x, const sol_interval *iv, size_t n_groups,
                size_t *n_tx, size_t *bad)
{
    for (size_t g = 0; g < n_groups; g++)
        b->next[g] = g + 1 < n_groups ? (uint32_t)(g + 1) : END;
    uint32_t head = n_groups ? 0 : END;
    size_t assigned = 0, tx = 0;
    sol_ix ixs[SOL_BATCH_MAX_GROUP];
    sol_msg m;
    while (head != END) {
        /* n_groups bounds the part numbers, so this memo is at least as long as any real one */
        int rc = start_msg(&m, x->c, iv, (uint32_t)n_groups, (uint32_t)n_groups);
        if (rc != SOL_OK)
            return rc;
        uint32_t prev = END, cur = head;
        size_t misses = 0, in_tx = 0;
        while (cur != END && misses < SOL_BATCH_WINDOW) {
            size_t k = group_ixs(b, x, cur, ixs);
            uint32_t nxt = b->next[cur];
            rc = sol_msg_add(&m, ixs, k);
            if (rc == SOL_OK) {
                b->order[assigned++] = cur;
                in_tx++;
                if (prev == END)
                    head = nxt;
                else
                    b->next[prev] = nxt;
            } else if (rc == SOL_E_TOO_BIG || rc == SOL_E_SPACE) {
                if (in_tx == 0) {
                    *bad = b->grp_start[cur];
                    return SOL_E_TOO_BIG;
                }
                misses++;
                prev = cur;
            } else {
                return rc;
            }
            cur = nxt;
        }
        b->tx_end[tx++] = (uint32_t)assigned;
    }
    *n_tx = tx;
    return SOL_OK;
}

/* Second pass: builds and signs transaction k. */
static int emit(sol_batch *b, const build_ctx *x, const sol_interval *iv, size_t k, size_t n_tx,
                const uint8_t blockhash[32], const uint8_t secret_key[64])
{
    sol_msg m;
    sol_ix ixs[SOL_BATCH_MAX_GROUP];
    int rc = start_msg(&m, x->c, iv, (uint32_t)(k + 1), (uint32_t)n_tx);
    if (rc != SOL_OK)
        return rc;
    size_t from = k == 0 ? 0 : b->tx_end[k - 1];
    size_t tr_first = b->tr_len;
    for (size_t j = from; j < b->tx_end[k]; j++) {
        uint32_t g = b->order[j];
        size_t nix = group_ixs(b, x, g, ixs);
        rc = sol_msg_add(&m, ixs, nix);
        if (rc != SOL_OK)
            return rc; /* cannot happen: the real memo is no longer than the planned one */
        rc = reserve((void **)&b->tr, &b->tr_cap, b->tr_len + nix, sizeof(uint32_t));
        if (rc != SOL_OK)
            return rc;
        for (uint32_t i = b->grp_start[g]; i < b->grp_end[g]; i++)
            if (x->t[i].amount > 0)
                b->tr[b->tr_len++] = i;
    }
    rc = reserve((void **)&b->bytes, &b->bytes_cap, b->bytes_len + SOL_TX_MAX_BYTES, 1);
    if (rc != SOL_OK)
        return rc;
    sol_batch_tx *tx = &b->txs[k];
    const uint8_t *sks[1] = {secret_key};
    size_t len;
    rc = sol_msg_sign(&m, blockhash, sks, 1, b->bytes + b->bytes_len, SOL_TX_MAX_BYTES, &len,
                      tx->signature);
    if (rc != SOL_OK)
        return rc;
    tx->bytes = NULL; /* pointers are set once every buffer has its final address */
    tx->len = len;
    tx->part = (uint32_t)(k + 1);
    tx->transfers = NULL;
    tx->n_transfers = b->tr_len - tr_first;
    b->bytes_len += len;
    return SOL_OK;
}

static void reset(sol_batch *b)
{
    b->n_tx = 0;
    b->bytes_len = 0;
    b->tr_len = 0;
}

int sol_batch_build(sol_batch *b, const sol_community *c, const sol_home *homes, size_t n_homes,
                    const sol_interval *iv, const sol_transfer *t, size_t n,
                    const uint8_t blockhash[32], const uint8_t secret_key[64],
                    size_t *bad_transfer)
{
    size_t bad = SIZE_MAX, n_groups = 0, n_tx = 0;
    int rc = SOL_E_INVAL;
    if (bad_transfer)
        *bad_transfer = SIZE_MAX;
    if (!b)
        return SOL_E_INVAL;
    reset(b);
    if (!c || (!homes && n_homes > 0) || !iv || (!t && n > 0) || !blockhash || !secret_key)
        goto out;
    if (memcmp(secret_key + 32, c->authority.b, 32) != 0) {
        rc = SOL_E_SIGNATURE;
        goto out;
    }
    if (n > SOL_BATCH_MAX_TRANSFERS) {
        rc = SOL_E_SPACE;
        goto out;
    }
    if ((rc = reserve_groups(b, n > 0 ? n : 1)) != SOL_OK)
        goto out;
    if ((rc = make_groups(b, n_homes, t, n, &n_groups, &bad)) != SOL_OK)
        goto out;
    build_ctx x = {c, homes, t};
    if ((rc = plan(b, &x, iv, n_groups, &n_tx, &bad)) != SOL_OK)
        goto out;
    if ((rc = reserve((void **)&b->txs, &b->tx_cap, n_tx, sizeof(sol_batch_tx))) != SOL_OK)
        goto out;
    for (size_t k = 0; k < n_tx; k++)
        if ((rc = emit(b, &x, iv, k, n_tx, blockhash, secret_key)) != SOL_OK)
            goto out;
    size_t off = 0, tr_off = 0;
    for (size_t k = 0; k < n_tx; k++) {
        b->txs[k].bytes = b->bytes + off;
        b->txs[k].transfers = b->tr + tr_off;
        off += b->txs[k].len;
        tr_off += b->txs[k].n_transfers;
    }
    b->n_tx = n_tx;
out:
    if (rc != SOL_OK) {
        reset(b);
        if (bad_transfer)
            *bad_transfer = bad;
    }
    return rc;
}

int sol_anchor_memo(uint64_t interval_id, const char *checkpoint, char *out, size_t cap)
{
    if (!checkpoint || !out)
        return SOL_E_INVAL;
    int n = snprintf(out, cap, "mgx1 anchor interval=%" PRIu64 "\n%s", interval_id, checkpoint);
    if (n < 0 || (size_t)n >= cap)
        return SOL_E_SPACE;
    return n;
}

int sol_batch_anchor(sol_batch *b, const sol_pubkey *authority, uint64_t interval_id,
                     const char *checkpoint, const uint8_t blockhash[32],
                     const uint8_t secret_key[64])
{
    if (!b)
        return SOL_E_INVAL;
    reset(b);
    if (!authority || !checkpoint || !blockhash || !secret_key)
        return SOL_E_INVAL;
    if (memcmp(secret_key + 32, authority->b, 32) != 0)
        return SOL_E_SIGNATURE;
    char text[SOL_IX_MAX_DATA + 1];
    int len = sol_anchor_memo(interval_id, checkpoint, text, sizeof text);
    if (len < 0)
        return len;
    sol_ix memo;
    int rc = sol_ix_memo(&memo, text, (size_t)len);
    sol_msg m;
    sol_msg_init(&m, authority);
    if (rc == SOL_OK)
        rc = sol_msg_add(&m, &memo, 1);
    if (rc == SOL_OK)
        rc = reserve((void **)&b->txs, &b->tx_cap, 1, sizeof(sol_batch_tx));
    if (rc == SOL_OK)
        rc = reserve((void **)&b->bytes, &b->bytes_cap, SOL_TX_MAX_BYTES, 1);
    if (rc != SOL_OK)
        return rc;
    sol_batch_tx *tx = &b->txs[0];
    const uint8_t *sks[1] = {secret_key};
    size_t n;
    rc = sol_msg_sign(&m, blockhash, sks, 1, b->bytes, SOL_TX_MAX_BYTES, &n, tx->signature);
    if (rc != SOL_OK) {
        reset(b);
        return rc;
    }
    tx->bytes = b->bytes;
    tx->len = n;
    tx->part = 1;
    tx->transfers = NULL;
    tx->n_transfers = 0;
    b->bytes_len = n;
    b->n_tx = 1;
    return SOL_OK;
}

size_t sol_batch_count(const sol_batch *b)
{
    return b ? b->n_tx : 0;
}

const sol_batch_tx *sol_batch_at(const sol_batch *b, size_t i)
{
    return b && i < b->n_tx ? &b->txs[i] : NULL;
}

size_t sol_batch_bytes(const sol_batch *b)
{
    return b ? b->bytes_len : 0;
}
