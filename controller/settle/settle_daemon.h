/*
 * Internal: settlement inside the controller daemon. Once an interval is cleared and its grace
 * period is over (simulated time >= its end + grace_s), the settler builds its input from the
 * database (settle_input.h) and calls ctl_ledger_settle, which commits the interval's block
 * exactly once in one SQLite transaction. Intervals are settled in order, from the store's
 * first interval (or the one after the ledger's latest block), so after downtime the settler
 * catches up the way clearing does, a bounded number per call so the bus stays served.
 *
 * After a block is committed it is published (ctl_settler_publish): each participant's
 * statement on mgx/v1/<community>/statement/<participant> (QoS 1) and then the block's signed
 * checkpoint, retained, on mgx/v1/<community>/ledger/checkpoint. Blocks are published in order,
 * one at a time; the height of the last one the broker acknowledged in full is kept in the
 * database (table settle_state), so after a crash or a reconnect whatever was not
 * acknowledged is published again (consumers key statements by interval id).
 *
 * With Solana configured (settle_solana.h), every committed block is also handed to the Solana
 * outbox (same database) in the configured mode: its checkpoint anchored (the default), its
 * settled trades as transfers (per_trade), or, with each block, the previous billing period's
 * nets through the pool (netted); the outbox is polled from the loop.
 *
 * A block that cannot be settled (reconciliation refuses the input, a conflict, a foreign key)
 * stops settlement at that interval: it is logged and retried every minute, never skipped,
 * because skipping would break the ledger's order. Database errors are retried every second.
 *
 * One thread: the store's. Ownership: the settler owns the settlement key (sodium_malloc'd,
 * wiped on free) and borrows the store, which must outlive it.
 */
#ifndef MGX_CTL_SETTLE_DAEMON_H
#define MGX_CTL_SETTLE_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "common/log.h"
#include "settle/settle_input.h"
#include "settle/settle_meter.h"
#include "solana/settle_solana.h"
#include "db/store.h"

typedef struct {
    const char *community;     /* the bus community (topics) */
    int64_t interval_s;
    int64_t grace_s;           /* readings are awaited this long after an interval ends */
    stm_rules rules;           /* how readings become metered energy */
    const char *key_path;      /* the ledger signer key (`mgx ledger keygen`), mode 0600 */
    const ctl_settle_solana_config *solana; /* NULL or not enabled: no Solana */
    const ctl_log *log; /* NULL: silent; the caller's, must outlive the settler */
    int credit_min_tier; /* blocks record energy credits minted from this tier; -1: none */
    const ctl_trust_rules *trust; /* layers 3 and 4 (settle_input.h); NULL: the defaults;
                                   * copied by ctl_settler_new */
} ctl_settler_config;

typedef struct ctl_settler ctl_settler;

/* Loads the key (refusing a file group or others may read), checks that it is the key of the
 * ledger already in the database (if any), creates the tables and sets up Solana when
 * configured. 0, or -1 with a message in err. */
int ctl_settler_new(const ctl_settler_config *c, ctl_store *s, ctl_settler **out, char *err,
                    size_t errlen);
void ctl_settler_free(ctl_settler *st);

/* Settles due intervals in order, at most max of them. now_s is simulated time (what decides
 * what is due), real_ms real time (retry delays). Returns how many were settled. */
size_t ctl_settler_run(ctl_settler *st, int64_t now_s, int64_t real_ms, size_t max);

/* For a replicated controller (docs/cluster.md), whose leader proposes each settlement and
 * every node applies it: the next interval due at now_s (1 and *id), or 0 when none is due or
 * a failure's retry delay (real_ms) has not passed. */
int ctl_settler_due(ctl_settler *st, int64_t now_s, int64_t real_ms, int64_t *id);
/* Settles interval id now, as ctl_settler_run does each: 0 settled (or settled before), -1 not
 * settled by a rule every node meets alike (the input or the ledger refused it; retried after
 * the delay), -2 not settled because this node's database failed. */
int ctl_settler_settle(ctl_settler *st, int64_t id, int64_t real_ms);
/* The database was replaced under the settler (a Raft snapshot restored): reread what it keeps
 * of it. */
void ctl_settler_reload(ctl_settler *st);

/* Publishes the next block not yet published in full, if none is in flight and bus is
 * connected. Call after ctl_settler_run and after a reconnect. */
void ctl_settler_publish(ctl_settler *st, bus_client *bus);
/* A reconnect: what was in flight is published again. */
void ctl_settler_reconnected(ctl_settler *st);

/* Solana, when configured: puts committed blocks' transactions into the outbox and runs an
 * outbox pass every poll_ms. No-op otherwise. */
void ctl_settler_solana(ctl_settler *st, int64_t real_ms);

/* A replicated controller (docs/cluster.md): every node keeps the same Solana outbox, and
 * only the leader calls ctl_settler_solana. With fn set, each block's transactions, each
 * rebuild and each final state are proposed through fn (an entry payload, copied by fn; 0
 * when proposed) instead of written, and ctl_settler_solana_apply writes a committed one on
 * every node (the block's hand-over height with it), so that no node ever sends a signature
 * the log does not hold (solana_outbox.h says why that is enough). No-op without Solana. */
typedef int (*ctl_settler_propose_fn)(void *ctx, const uint8_t *entry, size_t len);
void ctl_settler_solana_replicate(ctl_settler *st, ctl_settler_propose_fn fn, void *ctx);
/* 0 applied (or nothing left to do), 1 refused (malformed, or Solana not configured here: alike
 * on every node with the same config), -1 this node's database failed. */
int ctl_settler_solana_apply(ctl_settler *st, const uint8_t *entry, size_t len);

/* The latest settled interval, or INT64_MIN. */
int64_t ctl_settler_last_settled(const ctl_settler *st);
/* The Solana outbox by state (ctl_sol_outbox_state); -1 when Solana is off or the count
 * failed. */
int ctl_settler_solana_counts(ctl_settler *st, size_t counts[4]);

#endif
