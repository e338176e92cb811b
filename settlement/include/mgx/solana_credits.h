/*
 * mgx settlement: one interval's energy credits (mgx/credits.h) as Solana transactions, built
 * and signed in C: MintToChecked by the community's mint authority, TransferChecked and
 * BurnChecked by the settlement key as each home's approved delegate.
 *
 * The input is a list of credit operations in groups. Every group must be self-sufficient:
 * its own mints cover its own transfers and burns, whatever else lands before or after it.
 * sol_credit_ops makes such groups from stl_credits_compute's records and moves:
 *   - per trade that moved credits: mint move.wh to the seller, transfer it to the buyer, burn
 *     what the buyer retired of it (move.retired_wh);
 *   - per home that kept or retired credits of its own: mint minted - out to it and burn what
 *     it retired of its own production (retired - what it retired of bought credits).
 * Summed per home that is minted, out, in and retired of its record, so after all of an
 * interval's transactions landed, in any order, each balance moved by exactly kept_wh: the
 * token balance of every home equals the ledger's minted - sold + bought - retired. A group
 * lands atomically (one transaction), so a failure leaves no half-moved credit.
 *
 * Every transaction starts with the memo "mgx1 credits interval=<id> part=<k>/<n> root=<hex>"
 * (the interval's ledger root, as the transfer memos of solana_batch.h; k/n count the
 * interval's credit transactions), which also makes each transaction's bytes unique. Packing
 * is deterministic: groups in order, a transaction is closed when the next group does not
 * fit. The settlement key (c->authority) pays the fees; the mint authority signs as second
 * signer, or not at all when it is the settlement key itself.
 *
 * Pure: no I/O, no globals; thread safe.
 */
#ifndef MGX_SOLANA_CREDITS_H
#define MGX_SOLANA_CREDITS_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/credits.h"
#include "mgx/solana.h"
#include "mgx/solana_batch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SOL_CREDIT_MINT = 0,     /* home: its energy account receives new credits */
    SOL_CREDIT_TRANSFER = 1, /* home -> to */
    SOL_CREDIT_BURN = 2      /* home's credits are retired */
} sol_credit_kind;

typedef struct {
    uint32_t kind;   /* sol_credit_kind */
    uint32_t home;   /* index into the homes array */
    uint32_t to;     /* SOL_CREDIT_TRANSFER: the receiving home */
    uint64_t amount; /* Wh, > 0 */
    uint64_t group;  /* non-decreasing; a group's operations share a transaction, in order */
} sol_credit_op;

#define SOL_CREDIT_MAX_GROUP 8 /* operations in one group */

/*
 * The operations of one interval. credits: stl_credits_compute's records (np, one per
 * position), moves: its moves (nt, one per trade, whose seller and buyer are the positions'
 * participants), trades: the trades. home[i] is the homes-array index of position i, or -1
 * when the home has no wallet: a group naming such a home is left out and counted in
 * *off_chain_wh (its credits stay in the ledger only). ops has room for cap operations
 * (4 * nt + 2 * np is always enough). Returns the number written, or a negative SOL_E_*.
 */
long sol_credit_ops(const stl_credit *credits, size_t np, const stl_settled_trade *trades,
                    const stl_credit_move *moves, size_t nt, const long *home,
                    sol_credit_op *ops, size_t cap, int64_t *off_chain_wh);

/* One signed credit transaction. */
typedef struct {
    uint8_t bytes[SOL_TX_MAX_BYTES];
    size_t len;
    uint8_t signature[64]; /* the transaction id: the settlement key's signature */
    uint32_t part;         /* 1-based, as in the memo */
} sol_credit_tx;

/*
 * Builds and signs the interval's credit transactions into out (room for cap; n_groups is
 * always enough) and sets *n_out. settle_sk is the settlement key pair (public half =
 * c->authority: fee payer and delegate), mint_sk the mint authority's (may be the same key).
 * SOL_E_INVAL on bad arguments (a home index out of range, a zero amount, a transfer to
 * itself, groups decreasing or larger than SOL_CREDIT_MAX_GROUP), SOL_E_TOO_BIG if one group
 * does not fit a transaction, SOL_E_SPACE if out is too small.
 */
int sol_credits_build(const sol_community *c, const uint8_t settle_sk[64],
                      const uint8_t mint_sk[64], const sol_home *homes, size_t n_homes,
                      const sol_interval *iv, const sol_credit_op *ops, size_t n_ops,
                      const uint8_t blockhash[32], sol_credit_tx *out, size_t cap,
                      size_t *n_out);

/* The memo of credit transaction k of n. Its length or SOL_E_SPACE. */
int sol_credits_memo(const sol_interval *iv, uint32_t part, uint32_t n_parts, char *out,
                     size_t cap);

#ifdef __cplusplus
}
#endif

#endif
