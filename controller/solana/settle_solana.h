/*
 * Internal: the controller's Solana backend for settled intervals (docs/solana.md). Configured
 * by a [solana] section in the controller's config; without one nothing here runs.
 *
 * What goes on chain is the community's choice ([solana] mode, docs/solana.md, docs/privacy.md):
 *  - anchor (the default): per committed block, one transaction whose only instruction is a
 *    memo with the block's signed checkpoint (log size and root). Nothing per home: no wallet,
 *    no token account, no amount. Mints and wallets are not needed;
 *  - netted: per billing period (billing_intervals intervals), each home's net local energy
 *    and net local money over the period, one transfer each way between the home and the
 *    community's pool account (pool_wallet, delegated to the settlement key like a home's):
 *    a bill-like monthly figure per home, nothing per interval;
 *  - per_trade: public per-interval transfers between the homes, as below.
 *
 * per_trade: for each committed ledger block, the block's settled trades become transfers: energy
 * (delivered Wh) seller -> buyer and payment (what the seller receives, in the payment token's
 * units) buyer -> seller, the two legs of a trade in one transaction (solana_batch.h), each
 * transaction with the memo naming the interval and the block's ledger root (its log root).
 * Fees and grid legs stay off chain. A trade between participants of whom one has no wallet in
 * the wallets file stays off chain too (counted and logged). The transactions go into the
 * outbox (solana_outbox.h) in the controller's database, whose policy never lets the same
 * trades settle twice; ctl_settle_solana_poll runs one outbox pass.
 * With a mint_authority (energy credits on chain, issue 13) the energy token is the credit
 * token: the block's credits are minted, moved and burned by credit transactions stored with
 * the trades' (mgx/solana_credits.h), and the trades' transactions carry the payments only.
 *
 * The RPC calls block for at most timeout_ms each; the daemon calls this from its loop.
 * Ownership: the backend owns the Solana key pairs (sodium_malloc, wiped), the RPC client and
 * the outbox handle; it borrows the database handle. One thread.
 */
#ifndef MGX_CTL_SETTLE_SOLANA_H
#define MGX_CTL_SETTLE_SOLANA_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#include "mgx/ledger_record.h"
#include "mgx/solana.h"
#include "solana/solana_outbox.h"

#define CTL_SOL_PATH_MAX 1024
#define CTL_SOL_MAX_WALLETS 100000u

typedef enum {
    CTL_SOL_MODE_ANCHOR = 0,    /* root-only anchoring: the checkpoint in a memo (default) */
    CTL_SOL_MODE_PER_TRADE = 1, /* every settled trade's two legs, public */
    CTL_SOL_MODE_NETTED = 2     /* per home and billing period, through the pool */
} ctl_sol_mode;

typedef struct {
    int enabled;                            /* a [solana] section was given */
    int mode;                               /* ctl_sol_mode; default anchor */
    char rpc_url[512];                      /* required: http(s) JSON-RPC endpoint */
    char keypair[CTL_SOL_PATH_MAX];         /* required: solana-keygen JSON file, mode 0600 */
    char energy_mint[SOL_PUBKEY_B58_MAX + 1];  /* per_trade: required, base58 */
    char payment_mint[SOL_PUBKEY_B58_MAX + 1]; /* per_trade: required, base58 */
    int64_t energy_decimals;                /* default 0: one unit is one Wh */
    int64_t payment_decimals;               /* default 6: one unit is one uc */
    char wallets[CTL_SOL_PATH_MAX];         /* per_trade: required, "participant wallet" */
    char pool_wallet[SOL_PUBKEY_B58_MAX + 1]; /* netted: required, the pool's wallet */
    char mint_authority[CTL_SOL_PATH_MAX];  /* per_trade, optional: the energy mint's authority
                                               (solana-keygen JSON, mode 0600); with it the
                                               ledger's credits are minted, moved and burned
                                               on chain */
    int64_t billing_intervals;              /* netted: intervals per period; default 2880 */
    int64_t poll_ms;                        /* outbox pass every this long; default 2000 */
    int64_t timeout_ms;                     /* per RPC request; default 5000 */
} ctl_settle_solana_config;

void ctl_settle_solana_defaults(ctl_settle_solana_config *c);
/* One key=value of [solana]. 1 on success, 0 with a message (no file or line) in err. */
int ctl_settle_solana_key(ctl_settle_solana_config *c, const char *key, const char *value,
                          char *err, size_t errlen);
/* After the whole file: every required key is there. 1 or 0 with a message. */
int ctl_settle_solana_check(const ctl_settle_solana_config *c, char *err, size_t errlen);

/* Parses a wallets file's text: one "participant wallet" per line (base58 wallet address),
 * '#' comments and blank lines ignored; a participant twice is an error. Calls fn for each
 * entry; returns 0, or -1 with "line N: reason" in err. Pure. */
typedef int (*ctl_wallet_fn)(void *ctx, const char *participant, const sol_pubkey *wallet);
int ctl_settle_wallets_parse(const char *text, size_t len, ctl_wallet_fn fn, void *ctx,
                             char *err, size_t errlen);

typedef struct ctl_settle_solana ctl_settle_solana;

/* Loads the key pair and the wallets, derives every home's token accounts, opens the outbox
 * tables in db and the RPC client. 0 or -1 with a message. */
int ctl_settle_solana_new(const ctl_settle_solana_config *c, ctl_db *db,
                          ctl_settle_solana **out, char *err, size_t errlen);
void ctl_settle_solana_free(ctl_settle_solana *x);

/* Names a ledger participant (a market number): writes its id to name; 0 or -1. */
typedef int (*ctl_participant_name_fn)(void *ctx, uint64_t id, char *name, size_t cap);

/* Puts a committed block into the outbox: in anchor mode its checkpoint (the block's signed
 * C2SP note), in per_trade mode its trades. Returns 0 when the block is done (its
 * transactions are stored, were stored before, or there is nothing to put on chain), 1 when the
 * RPC node could not give a blockhash (try again later), -1 on an error (message in msg).
 * msg also gets a summary on success.
 *
 * Energy credits (per_trade with a mint_authority): positions (n_positions, ascending by
 * participant, the block's) and credit_min_tier (the min_tier of the block's credit records,
 * -1 when the block records no credits) give the interval's credits (stl_credits_compute, as
 * `mgx ledger verify` re-derives them). Their transactions (mgx/solana_credits.h: mint on
 * proof, transfer on sale, burn on retirement) follow the trades' in the same outbox entry,
 * stored once with them; the trades' transactions then carry only the payment legs, since the
 * energy token is the credit token. trueups (n_trueups): the block's credit true-ups of
 * earlier held positions (stl_credit_is_trueup), each a MintTo of its minted_wh to its home in
 * the same outbox entry. Without a mint_authority positions and true-ups are not used. */
int ctl_settle_solana_block(ctl_settle_solana *x, const stl_block *b, const char *checkpoint,
                            const stl_settled_trade *trades, size_t n_trades,
                            const stl_position *positions, size_t n_positions,
                            int credit_min_tier, const stl_credit *trueups, size_t n_trueups,
                            ctl_participant_name_fn name_of, void *name_ctx, int64_t now_ms,
                            char *msg, size_t msglen);

/* netted mode: one home's net over a billing period, from its settled positions. */
typedef struct {
    uint64_t participant;
    int64_t net_wh; /* local_sold_wh - local_bought_wh: > 0 the home gives energy to the pool */
    int64_t net_uc; /* local_received_uc - local_paid_uc (fees included): > 0 the pool pays */
} ctl_sol_net;

int ctl_settle_solana_mode(const ctl_settle_solana *x);
int64_t ctl_settle_solana_billing_intervals(const ctl_settle_solana *x);

/* Puts a billing period's nets into the outbox, keyed by the period's last interval id
 * (last_interval) and memo'd with the root of the last block in it: per home with a wallet,
 * energy home -> pool (net_wh > 0) or pool -> home, and payment home -> pool (net_uc < 0) or
 * pool -> home, both legs of a home in one transaction. Return codes as
 * ctl_settle_solana_block; a period already in the outbox is done (0). */
int ctl_settle_solana_period(ctl_settle_solana *x, int64_t last_interval,
                             const uint8_t root[32], const ctl_sol_net *nets, size_t n,
                             ctl_participant_name_fn name_of, void *name_ctx, int64_t now_ms,
                             char *msg, size_t msglen);

/* One outbox pass (ctl_sol_outbox_poll_keys) with the settlement key pair and, if configured,
 * the mint authority's. */
int ctl_settle_solana_poll(ctl_settle_solana *x, int64_t now_ms, ctl_sol_poll_stats *stats);
/* A cluster (solana_outbox.h): the outbox's decisions go to fn (the leader's) instead of the
 * database; ctl_settle_solana_apply writes a committed one on every node. The functions that
 * store a block's transactions then return 0 with the transactions proposed, not stored. */
void ctl_settle_solana_replicate(ctl_settle_solana *x, ctl_sol_outbox_propose_fn fn, void *ctx);
int ctl_settle_solana_apply(ctl_settle_solana *x, const uint8_t *op, size_t len);
/* Transactions in the outbox by state (ctl_sol_outbox_state), over every interval. */
int ctl_settle_solana_counts(ctl_settle_solana *x, size_t counts[4]);

/* The poll period from the config. */
int64_t ctl_settle_solana_poll_ms(const ctl_settle_solana *x);

#endif
