/*
 * The settlement of an interval (settle_interval.h): its trades and metered energy reconciled
 * (settlement/reconcile) into ledger transactions, trades then positions; the block built over
 * them, signed, and checkpointed; everything appended to the ledger (ledger_store.c) in one
 * BEGIN IMMEDIATE transaction keyed by the interval id, so a crash leaves no block or the whole
 * block and settling again returns the stored block. The pure work (reconciliation, encodings,
 * Merkle log, signatures) is settlement/'s; this file orders it around the SQLite transaction.
 */
#include "settle/settle_interval.h"

#include "common/crash_point.h"
#include "common/errbuf.h"
#include "common/file.h"
#include "settle/credit_trueup.h"
#include "mgx/merkle.h"

#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

ctl_ledger_key *ctl_ledger_key_load(const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    if (ctl_read_file(path, 4096, &text, &len) != 0) {
        ctl_errf(err, errlen, "%s: cannot read the key file", path);
        return NULL;
    }
    ctl_ledger_key *k = sodium_malloc(sizeof *k);
    if (k && stl_skey_parse(text, k->name, k->sk) != STL_OK) {
        ctl_errf(err, errlen, "%s: not a signer key (PRIVATE+KEY+<name>+<id>+<key>)", path);
        sodium_free(k);
        k = NULL;
    }
    if (k)
        stl_salt_secret(k->sk, k->salt_secret);
    sodium_memzero(text, len);
    free(text);
    return k;
}

void ctl_ledger_key_free(ctl_ledger_key *k)
{
    if (k)
        sodium_free(k); /* sodium_free wipes */
}

int ctl_settle_txs(const stl_reconciler *r, int64_t interval_id, uint8_t version,
                   int credit_min_tier, const stl_credit *trueups, size_t n_trueups,
                   const uint8_t *salt_secret, const uint8_t (*salts)[STL_SALT_LEN],
                   ctl_ledger_txs *s)
{
    size_t nt, np, nc = 0;
    const stl_settled_trade *t = stl_reconciled_trades(r, &nt);
    const stl_position *p = stl_reconciled_positions(r, &np);
    stl_credit *credits = NULL;
    int rc = CTL_LEDGER_E_NOMEM;
    if (n_trueups && credit_min_tier < 0)
        return CTL_LEDGER_E_INPUT;
    if (credit_min_tier >= 0) { /* the interval's credits, recorded for homes holding any */
        if (version == STL_LEDGER_V1 || credit_min_tier > STL_TIER_MAX)
            return CTL_LEDGER_E_INPUT;
        credits = malloc((np + n_trueups ? np + n_trueups : 1) * sizeof *credits);
        if (!credits)
            goto out;
        if (stl_credits_compute(p, np, t, nt, (uint8_t)credit_min_tier, credits, NULL, NULL) !=
            STL_OK) {
            rc = CTL_LEDGER_E_INPUT;
            goto out;
        }
        for (size_t i = 0; i < np; i++)
            if (stl_credit_nonzero(&credits[i]))
                credits[nc++] = credits[i];
        /* then the true-ups of earlier held positions this block carries (credit_trueup.h):
         * those that mint anything, in the order given (ascending source) */
        for (size_t i = 0; i < n_trueups; i++) {
            if (!stl_credit_is_trueup(&trueups[i]) || trueups[i].min_tier != credit_min_tier) {
                rc = CTL_LEDGER_E_INPUT;
                goto out;
            }
            if (stl_credit_nonzero(&trueups[i]))
                credits[nc++] = trueups[i];
        }
    }
    size_t n = nt + np + nc, m = n ? n : 1;
    s->n = n;
    s->enc = malloc(m * sizeof *s->enc);
    s->len = malloc(m * sizeof *s->len);
    s->leaf = malloc(m * sizeof *s->leaf);
    s->id = malloc(m * sizeof *s->id);
    s->salt = malloc(m * sizeof *s->salt);
    s->participant = malloc(m * sizeof *s->participant);
    if (!s->enc || !s->len || !s->leaf || !s->id || !s->salt || !s->participant)
        goto out;
    rc = CTL_LEDGER_E_INPUT;
    s->salted = version != STL_LEDGER_V1;
    if (s->salted && !salts && !salt_secret)
        goto out;
    for (size_t i = 0; i < n; i++) {
        stl_tx tx;
        memset(&tx, 0, sizeof tx);
        tx.version = version;
        tx.interval_id = interval_id;
        tx.seq = (uint32_t)i;
        if (i < nt) {
            tx.kind = STL_TX_TRADE;
            tx.trade = t[i];
            s->participant[i] = INT64_MIN;
        } else if (i < nt + np) {
            tx.kind = STL_TX_POSITION;
            tx.position = p[i - nt];
            s->participant[i] = (int64_t)p[i - nt].participant;
        } else {
            tx.kind = STL_TX_CREDIT;
            tx.credit = credits[i - nt - np];
            s->participant[i] = (int64_t)tx.credit.participant;
        }
        s->len[i] = stl_tx_encode(&tx, s->enc[i]);
        if (s->len[i] == 0)
            goto out;
        const uint8_t *salt = NULL;
        if (s->salted) {
            if (salts)
                memcpy(s->salt[i], salts[i], STL_SALT_LEN);
            else
                stl_leaf_salt(salt_secret, interval_id, tx.seq, s->salt[i]);
            salt = s->salt[i];
        }
        if (stl_tx_leaf(salt, s->enc[i], s->len[i], s->leaf[i]) != STL_OK ||
            stl_tx_id(salt, s->enc[i], s->len[i], s->id[i]) != STL_OK)
            goto out;
    }
    rc = CTL_LEDGER_OK;
out:
    free(credits);
    return rc;
}

static uint8_t in_version(const ctl_ledger_input *in)
{
    return in->version ? in->version : STL_LEDGER_VERSION;
}

/* The minimum tier that mints, or -1 when the block records no credits. */
static int in_credit_tier(const ctl_ledger_input *in)
{
    return in->credits_on ? (int)in->credit_min_tier : -1;
}

static int reconcile_input(const ctl_ledger_input *in, const ctl_ledger_key *key,
                           stl_reconciler **rp, ctl_ledger_txs *s, char *err, size_t errlen)
{
    stl_reconciler *r = stl_reconciler_new(in->n_trades, in->n_meters);
    *rp = r;
    if (!r) {
        ctl_errf(err, errlen, "interval %lld: too many trades or meters, or out of memory",
                 (long long)in->interval_id);
        return CTL_LEDGER_E_INPUT;
    }
    stl_error_at at;
    int rc =
        stl_reconcile(r, &in->tariffs, in->trades, in->n_trades, in->meters, in->n_meters, &at);
    if (rc != STL_OK) {
        if (at.trade_index != SIZE_MAX)
            ctl_errf(err, errlen, "interval %lld: trade %zu: %s", (long long)in->interval_id,
                     at.trade_index, stl_strerror(rc));
        else if (at.meter_index != SIZE_MAX)
            ctl_errf(err, errlen, "interval %lld: meter record %zu: %s", (long long)in->interval_id,
                     at.meter_index, stl_strerror(rc));
        else
            ctl_errf(err, errlen, "interval %lld: %s", (long long)in->interval_id,
                     stl_strerror(rc));
        return CTL_LEDGER_E_INPUT;
    }
    rc = ctl_settle_txs(r, in->interval_id, in_version(in), in_credit_tier(in), NULL, 0,
                        key->salt_secret, NULL, s);
    if (rc != CTL_LEDGER_OK)
        ctl_errf(err, errlen, "interval %lld: cannot encode its transactions",
                 (long long)in->interval_id);
    return rc;
}

/* Records the community and key with the first block; later blocks must use the same key. */
static int check_meta(ctl_db *db, const ctl_ledger_key *key, char *err, size_t errlen)
{
    char community[STL_COMMUNITY_MAX + 1], vkey[STL_VKEY_MAX], mine[STL_VKEY_MAX];
    if (stl_vkey_format(key->name, key->sk + 32, mine, sizeof mine) != STL_OK)
        return CTL_LEDGER_E_KEY;
    int rc = ctl_ledger_meta(db, community, vkey, sizeof vkey);
    if (rc == CTL_LEDGER_E_NOTFOUND)
        return ctl_ledger_meta_set(db, key->name, mine);
    if (rc != CTL_LEDGER_OK)
        return rc;
    if (strcmp(vkey, mine) != 0) {
        ctl_errf(err, errlen, "this ledger is signed by %s, not by the key given (%s)", vkey, mine);
        return CTL_LEDGER_E_KEY;
    }
    return CTL_LEDGER_OK;
}

static int settle_new(ctl_db *db, const ctl_ledger_input *in, const ctl_ledger_key *key,
                      const stl_reconciler *r, const ctl_ledger_txs *s, ctl_ledger_result *out,
                      char *err, size_t errlen)
{
    stl_block *b = &out->block, prev;
    uint8_t prev_hash[STL_ID_LEN] = {0};
    memset(b, 0, sizeof *b);
    int rc = ctl_ledger_block_load(db, -1, INT64_MIN, &prev, prev_hash);
    if (rc == CTL_LEDGER_OK) {
        if (prev.version > in_version(in)) {
            ctl_errf(err, errlen, "block %llu is ledger version %u: later blocks cannot be %u",
                     (unsigned long long)prev.height, prev.version, in_version(in));
            return CTL_LEDGER_E_INPUT;
        }
        b->height = prev.height + 1;
        b->log_size = prev.log_size;
        memcpy(b->prev_hash, prev_hash, STL_ID_LEN);
    } else if (rc != CTL_LEDGER_E_NOTFOUND) {
        ctl_errf(err, errlen, "cannot read the latest block (run `mgx ledger verify`)");
        return rc;
    }
    if ((rc = check_meta(db, key, err, errlen)) != CTL_LEDGER_OK)
        return rc;
    if ((rc = ctl_ledger_txs_insert(db, s, b->height, b->log_size)) != CTL_LEDGER_OK)
        return rc;
    ctl_crash_point("ledger.after_txs");
    stl_frontier f;
    if ((rc = ctl_ledger_log_append(db, s, b->log_size, &f)) != CTL_LEDGER_OK) {
        ctl_errf(err, errlen, "cannot extend the Merkle log (run `mgx ledger verify`)");
        return rc;
    }
    ctl_crash_point("ledger.after_nodes");
    strcpy(b->community, key->name);
    b->version = in_version(in);
    b->timing = in->timing;
    b->interval_id = in->interval_id;
    b->interval_len_s = in->interval_len_s;
    b->tariffs = in->tariffs;
    b->n_tx = (uint32_t)s->n;
    stl_merkle_root((const uint8_t(*)[STL_HASH_LEN])s->leaf, s->n, b->tx_root);
    b->log_size = f.size;
    stl_frontier_root(&f, b->log_root);
    b->totals = *stl_reconciled_totals(r);
    uint8_t enc[STL_BLOCK_MAX_LEN], sig[STL_SIG_LEN];
    size_t len = stl_block_encode(b, enc);
    if (len == 0)
        return CTL_LEDGER_E_INPUT;
    stl_block_hash(enc, len, out->hash);
    stl_sign(enc, len, key->sk, sig);
    char note[STL_NOTE_MAX];
    if (stl_checkpoint_sign(key->name, b->log_size, b->log_root, key->name, key->sk, note,
                            sizeof note) < 0)
        return CTL_LEDGER_E_KEY;
    if ((rc = ctl_ledger_block_insert(db, b, enc, len, out->hash, sig, note)) != CTL_LEDGER_OK)
        return rc;
    ctl_crash_point("ledger.after_block");
    return CTL_LEDGER_OK;
}

/* Inside the transaction of a new block with credits on: the pending true-ups
 * (credit_trueup.h) join its transactions and are marked as carried by it, so the block and the
 * mark commit together. Returns CTL_LEDGER_E_NOTFOUND to go on (the caller's "no block yet"). */
static int with_trueups(ctl_db *db, const ctl_ledger_input *in, const ctl_ledger_key *key,
                        const stl_reconciler *r, ctl_ledger_txs *s, char *err, size_t errlen)
{
    if (in_credit_tier(in) < 0 || in_version(in) == STL_LEDGER_V1)
        return CTL_LEDGER_E_NOTFOUND;
    stl_credit *tu = NULL;
    size_t ntu = 0;
    uint64_t height = 0, log_size = 0;
    int rc = ctl_ledger_head(db, &height, &log_size);
    if (rc == CTL_LEDGER_OK)
        height++;
    else if (rc != CTL_LEDGER_E_NOTFOUND)
        return rc;
    if (ctl_trueup_load(db, -1, (uint8_t)in_credit_tier(in), &tu, &ntu, err, errlen) != 0)
        return CTL_LEDGER_E_DB;
    rc = CTL_LEDGER_E_NOTFOUND;
    if (ntu) {
        ctl_ledger_txs_free(s);
        memset(s, 0, sizeof *s);
        if (ctl_settle_txs(r, in->interval_id, in_version(in), in_credit_tier(in), tu, ntu,
                           key->salt_secret, NULL, s) != CTL_LEDGER_OK) {
            ctl_errf(err, errlen, "interval %lld: cannot encode its credit true-ups",
                     (long long)in->interval_id);
            rc = CTL_LEDGER_E_INPUT;
        } else if (ctl_trueup_mark(db, tu, ntu, height) != 0) {
            rc = CTL_LEDGER_E_DB;
        }
    }
    free(tu);
    return rc;
}

int ctl_ledger_settle(ctl_db *db, const ctl_ledger_input *in, const ctl_ledger_key *key,
                      ctl_ledger_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = 0;
    if (in->interval_len_s == 0) {
        ctl_errf(err, errlen, "interval length must be positive");
        return CTL_LEDGER_E_INPUT;
    }
    stl_reconciler *r = NULL;
    ctl_ledger_txs s;
    memset(&s, 0, sizeof s);
    int rc = reconcile_input(in, key, &r, &s, err, errlen);
    if (rc != CTL_LEDGER_OK)
        goto out;
    if (ctl_db_begin(db) != SQLITE_OK) {
        rc = ctl_fail(CTL_LEDGER_E_DB, err, errlen, "SQLite: %s", ctl_db_errmsg(db));
        goto out;
    }
    ctl_crash_point("ledger.begin");
    rc = ctl_ledger_block_load(db, -1, in->interval_id, &out->block, out->hash);
    if (rc == CTL_LEDGER_OK) { /* settled before: the same inputs give the same transactions */
        uint8_t root[STL_HASH_LEN];
        int same = 1;
        out->replayed = 1;
        /* the same trades and meters are the same inputs whatever credits setting the block was
         * settled with (credit_min_tier may have changed since): compare with the block's */
        int stored_tier = -1;
        if (ctl_ledger_block_credit_tier(db, out->block.height, &stored_tier) != CTL_LEDGER_OK)
            same = 0;
        else if (out->block.version != in_version(in) || stored_tier != in_credit_tier(in)) {
            ctl_ledger_txs_free(&s);
            /* inputs that version cannot encode (a HELD reading in version 1) are other inputs */
            same = ctl_settle_txs(r, in->interval_id, out->block.version, stored_tier, NULL, 0,
                                  key->salt_secret, NULL, &s) == CTL_LEDGER_OK;
        }
        /* with the true-ups the block carried (credit_trueup.h), as it was written */
        if (same && stored_tier >= 0) {
            stl_credit *tu = NULL;
            size_t ntu = 0;
            same = ctl_trueup_load(db, (int64_t)out->block.height, (uint8_t)stored_tier, &tu,
                                   &ntu, err, errlen) == 0;
            if (same && ntu) {
                ctl_ledger_txs_free(&s);
                same = ctl_settle_txs(r, in->interval_id, out->block.version, stored_tier, tu,
                                      ntu, key->salt_secret, NULL, &s) == CTL_LEDGER_OK;
            }
            free(tu);
        }
        if (same) {
            stl_merkle_root((const uint8_t(*)[STL_HASH_LEN])s.leaf, s.n, root);
            same = memcmp(root, out->block.tx_root, STL_HASH_LEN) == 0 &&
                   out->block.n_tx == s.n &&
                   out->block.timing == (out->block.version == STL_LEDGER_V1 ? 0 : in->timing);
        }
        if (!same) {
            ctl_errf(err, errlen, "interval %lld is already settled (block %llu) with other inputs",
                     (long long)in->interval_id, (unsigned long long)out->block.height);
            rc = CTL_LEDGER_E_CONFLICT;
        }
        ctl_db_rollback(db);
        goto out;
    }
    if (rc == CTL_LEDGER_E_NOTFOUND)
        rc = with_trueups(db, in, key, r, &s, err, errlen);
    if (rc == CTL_LEDGER_E_NOTFOUND)
        rc = settle_new(db, in, key, r, &s, out, err, errlen);
    if (rc == CTL_LEDGER_OK) {
        ctl_crash_point("ledger.before_commit");
        /* ctl_db_end, not a bare COMMIT: inside a replicated apply (db/cluster_state.h) this
         * transaction is a savepoint of the entry's */
        if (ctl_db_end(db, 1) != SQLITE_OK)
            rc = ctl_fail(CTL_LEDGER_E_DB, err, errlen, "SQLite: %s", ctl_db_errmsg(db));
        ctl_crash_point("ledger.after_commit");
    }
    if (rc != CTL_LEDGER_OK) {
        if (err && !err[0])
            ctl_errf(err, errlen, "SQLite: %s", ctl_db_errmsg(db));
        ctl_db_rollback(db);
    }
out:
    ctl_ledger_txs_free(&s);
    stl_reconciler_free(r);
    return rc;
}
