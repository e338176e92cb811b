/*
 * One interval's energy credits as signed Solana transactions (see mgx/solana_credits.h):
 * the self-sufficient groups of mint, transfer and burn from the ledger's credit records, and
 * their packing into memo'd legacy transactions.
 */
#include "mgx/solana_credits.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "mgx/solana_ix.h"
#include "mgx/solana_tx.h"

int sol_credits_memo(const sol_interval *iv, uint32_t part, uint32_t n_parts, char *out,
                     size_t cap)
{
    if (!iv || !out)
        return SOL_E_INVAL;
    char root[2 * sizeof iv->ledger_root + 1];
    sodium_bin2hex(root, sizeof root, iv->ledger_root, sizeof iv->ledger_root);
    int n = snprintf(out, cap,
                     "mgx1 credits interval=%" PRIu64 " part=%" PRIu32 "/%" PRIu32 " root=%s",
                     iv->interval_id, part, n_parts, root);
    if (n < 0 || (size_t)n >= cap)
        return SOL_E_SPACE;
    return n;
}

static int put(sol_credit_op *ops, size_t cap, size_t *n, sol_credit_op op)
{
    if (*n >= cap)
        return SOL_E_SPACE;
    ops[(*n)++] = op;
    return SOL_OK;
}

static size_t position_of(const stl_credit *c, size_t np, uint64_t participant)
{
    for (size_t i = 0; i < np; i++)
        if (c[i].participant == participant)
            return i;
    return SIZE_MAX;
}

long sol_credit_ops(const stl_credit *credits, size_t np, const stl_settled_trade *trades,
                    const stl_credit_move *moves, size_t nt, const long *home,
                    sol_credit_op *ops, size_t cap, int64_t *off_chain_wh)
{
    if ((np && (!credits || !home)) || (nt && (!trades || !moves)) || !ops || !off_chain_wh)
        return SOL_E_INVAL;
    size_t n = 0;
    uint64_t group = 0;
    int rc = SOL_OK;
    *off_chain_wh = 0;
    /* per trade: mint to the seller what it moved, move it, burn what the buyer retired */
    for (size_t k = 0; k < nt && rc == SOL_OK; k++) {
        const stl_credit_move *m = &moves[k];
        if (m->wh <= 0)
            continue;
        size_t s = position_of(credits, np, trades[k].seller),
               b = position_of(credits, np, trades[k].buyer);
        if (s == SIZE_MAX || b == SIZE_MAX || m->retired_wh < 0 || m->retired_wh > m->wh)
            return SOL_E_INVAL;
        if (home[s] < 0 || home[b] < 0) {
            *off_chain_wh += m->wh;
            continue;
        }
        uint32_t hs = (uint32_t)home[s], hb = (uint32_t)home[b];
        rc = put(ops, cap, &n, (sol_credit_op){SOL_CREDIT_MINT, hs, 0, (uint64_t)m->wh, group});
        if (rc == SOL_OK)
            rc = put(ops, cap, &n,
                     (sol_credit_op){SOL_CREDIT_TRANSFER, hs, hb, (uint64_t)m->wh, group});
        if (rc == SOL_OK && m->retired_wh > 0)
            rc = put(ops, cap, &n,
                     (sol_credit_op){SOL_CREDIT_BURN, hb, 0, (uint64_t)m->retired_wh, group});
        group++;
    }
    /* per home: its own credits not sold, and the part of them it retired */
    for (size_t i = 0; i < np && rc == SOL_OK; i++) {
        const stl_credit *c = &credits[i];
        int64_t rest = c->minted_wh - c->out_wh, bought_retired = 0;
        if (rest <= 0)
            continue;
        for (size_t k = 0; k < nt; k++)
            if (trades[k].buyer == c->participant)
                bought_retired += moves[k].retired_wh;
        int64_t own_retired = c->retired_wh - bought_retired;
        if (own_retired < 0 || own_retired > rest)
            return SOL_E_INVAL;
        if (home[i] < 0) {
            *off_chain_wh += rest;
            continue;
        }
        uint32_t h = (uint32_t)home[i];
        rc = put(ops, cap, &n, (sol_credit_op){SOL_CREDIT_MINT, h, 0, (uint64_t)rest, group});
        if (rc == SOL_OK && own_retired > 0)
            rc = put(ops, cap, &n,
                     (sol_credit_op){SOL_CREDIT_BURN, h, 0, (uint64_t)own_retired, group});
        group++;
    }
    return rc == SOL_OK ? (long)n : rc;
}

/* The instructions of the group starting at ops[i]; returns how many ops it has (or < 0). */
static long group_ixs(const sol_community *c, const sol_pubkey *mint_authority,
                      const sol_home *homes, size_t n_homes, const sol_credit_op *ops,
                      size_t n_ops, size_t i, sol_ix *ixs)
{
    size_t k = 0;
    for (; i + k < n_ops && ops[i + k].group == ops[i].group; k++) {
        const sol_credit_op *o = &ops[i + k];
        if (k == SOL_CREDIT_MAX_GROUP || o->home >= n_homes || o->amount == 0 ||
            (o->kind == SOL_CREDIT_TRANSFER && (o->to >= n_homes || o->to == o->home)) ||
            (i + k + 1 < n_ops && ops[i + k + 1].group < o->group))
            return SOL_E_INVAL;
        const sol_pubkey *acc = &homes[o->home].energy_account;
        switch (o->kind) {
        case SOL_CREDIT_MINT:
            sol_ix_mint_to_checked(&ixs[k], &c->energy_mint, acc, mint_authority, o->amount,
                                   c->energy_decimals);
            break;
        case SOL_CREDIT_TRANSFER:
            sol_ix_transfer_checked(&ixs[k], acc, &c->energy_mint,
                                    &homes[o->to].energy_account, &c->authority, o->amount,
                                    c->energy_decimals);
            break;
        case SOL_CREDIT_BURN:
            sol_ix_burn_checked(&ixs[k], acc, &c->energy_mint, &c->authority, o->amount,
                                c->energy_decimals);
            break;
        default:
            return SOL_E_INVAL;
        }
    }
    return (long)k;
}

static int start_msg(sol_msg *m, const sol_community *c, const sol_interval *iv, uint32_t part,
                     uint32_t n_parts)
{
    char text[160];
    int len = sol_credits_memo(iv, part, n_parts, text, sizeof text);
    if (len < 0)
        return len;
    sol_ix memo;
    int rc = sol_ix_memo(&memo, text, (size_t)len);
    if (rc != SOL_OK)
        return rc;
    sol_msg_init(m, &c->authority);
    return sol_msg_add(m, &memo, 1);
}

int sol_credits_build(const sol_community *c, const uint8_t settle_sk[64],
                      const uint8_t mint_sk[64], const sol_home *homes, size_t n_homes,
                      const sol_interval *iv, const sol_credit_op *ops, size_t n_ops,
                      const uint8_t blockhash[32], sol_credit_tx *out, size_t cap,
                      size_t *n_out)
{
    if (!c || !settle_sk || !mint_sk || (!homes && n_homes) || !iv || (!ops && n_ops) ||
        !blockhash || (!out && cap) || !n_out)
        return SOL_E_INVAL;
    *n_out = 0;
    if (memcmp(settle_sk + 32, c->authority.b, 32) != 0)
        return SOL_E_SIGNATURE;
    sol_pubkey mint_authority;
    memcpy(mint_authority.b, mint_sk + 32, 32);
    /* First pass: where each transaction ends (ops index), with a memo at least as long as
     * any real one (n_ops bounds the part numbers). */
    sol_msg m;
    sol_ix ixs[SOL_CREDIT_MAX_GROUP];
    size_t n_tx = 0, i = 0;
    int rc = SOL_OK;
    while (i < n_ops) {
        if (n_tx == cap)
            return SOL_E_SPACE;
        if ((rc = start_msg(&m, c, iv, (uint32_t)n_ops, (uint32_t)n_ops)) != SOL_OK)
            return rc;
        size_t in_tx = 0;
        while (i < n_ops) {
            long k = group_ixs(c, &mint_authority, homes, n_homes, ops, n_ops, i, ixs);
            if (k < 0)
                return (int)k;
            rc = sol_msg_add(&m, ixs, (size_t)k);
            if (rc == SOL_E_TOO_BIG || rc == SOL_E_SPACE) {
                if (in_tx == 0)
                    return SOL_E_TOO_BIG;
                break;
            }
            if (rc != SOL_OK)
                return rc;
            i += (size_t)k;
            in_tx++;
        }
        out[n_tx].len = i; /* the end, for the second pass */
        n_tx++;
    }
    /* Second pass: the final memos, signed. */
    const uint8_t *sks[2] = {settle_sk, mint_sk};
    size_t start = 0;
    for (size_t t = 0; t < n_tx; t++) {
        size_t end = out[t].len;
        if ((rc = start_msg(&m, c, iv, (uint32_t)(t + 1), (uint32_t)n_tx)) != SOL_OK)
            return rc;
        for (size_t j = start; j < end;) {
            long k = group_ixs(c, &mint_authority, homes, n_homes, ops, n_ops, j, ixs);
            if (k < 0 || (rc = sol_msg_add(&m, ixs, (size_t)k)) != SOL_OK)
                return k < 0 ? (int)k : rc;
            j += (size_t)k;
        }
        rc = sol_msg_sign(&m, blockhash, sks, 2, out[t].bytes, sizeof out[t].bytes, &out[t].len,
                          out[t].signature);
        if (rc != SOL_OK)
            return rc;
        out[t].part = (uint32_t)(t + 1);
        start = end;
    }
    *n_out = n_tx;
    return SOL_OK;
}
