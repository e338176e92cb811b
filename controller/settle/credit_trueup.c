/*
 * True-ups of energy credits (credit_trueup.h): the coordinator's resolutions of held positions
 * kept until a block carries them, and the audit's check of each true-up record against the
 * ledger it is part of.
 */
#include "settle/credit_trueup.h"

#include "common/errbuf.h"
#include "mgx/ledger_record.h"

#include <sqlite3.h>
#include <stdlib.h>

/* The transaction at log index li, decoded, if it is a position (0), else 1; -1 SQLite. */
static int position_at(ctl_db *db, uint64_t li, stl_position *p)
{
    sqlite3_stmt *st = NULL;
    if (ctl_db_prepare(db, "SELECT body FROM ledger_tx WHERE log_index = ?1", &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)li);
    int step = sqlite3_step(st), rc = 1;
    stl_tx tx;
    if (step == SQLITE_ROW) {
        if (stl_tx_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &tx) ==
                STL_OK &&
            tx.kind == STL_TX_POSITION) {
            *p = tx.position;
            rc = 0;
        }
    } else if (step != SQLITE_DONE) {
        rc = -1;
    }
    sqlite3_finalize(st);
    return rc;
}

int ctl_trueup_request(ctl_db *db, int64_t interval_id, int64_t participant, int64_t now_ms,
                       char *msg, size_t msglen)
{
    sqlite3_stmt *st = NULL;
    int rc = -2;
    if (ctl_db_prepare(db,
                       "SELECT t.log_index, t.body FROM ledger_tx t JOIN ledger_block b"
                       " ON b.height = t.height WHERE b.interval_id = ?1 AND t.participant = ?2"
                       " ORDER BY t.log_index",
                       &st) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, interval_id);
    sqlite3_bind_int64(st, 2, participant);
    int64_t li = -1;
    stl_tx tx;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (stl_tx_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &tx) ==
                STL_OK &&
            tx.kind == STL_TX_POSITION) {
            li = sqlite3_column_int64(st, 0);
            break;
        }
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    rc = -1;
    if (li < 0) {
        ctl_errf(msg, msglen, "interval %lld has no settled position of this participant",
                 (long long)interval_id);
        goto out;
    }
    stl_credit c;
    if (stl_credit_trueup(&tx.position, (uint64_t)li, 0, &c) != STL_OK) {
        ctl_errf(msg, msglen,
                 "the position of interval %lld (log index %lld) is %s: only a flagged, held or "
                 "disputed position can be resolved",
                 (long long)interval_id, (long long)li,
                 tx.position.status == STL_POS_GOOD ? "good (it minted when it was settled)"
                                                    : "missing (there is no reading)");
        goto out;
    }
    if (tx.position.export_wh == 0) {
        ctl_errf(msg, msglen, "the position of interval %lld exported nothing: nothing to mint",
                 (long long)interval_id);
        goto out;
    }
    rc = -2;
    if (ctl_db_prepare(db, "INSERT OR IGNORE INTO credit_trueup VALUES(?1, ?2, ?3, NULL)", &st) !=
        SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, li);
    sqlite3_bind_int64(st, 2, participant);
    sqlite3_bind_int64(st, 3, now_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = ctl_db_changes(db) == 1 ? 0 : 1;
    ctl_errf(msg, msglen,
             rc == 0 ? "interval %lld (log index %lld, %lld Wh exported, status %s) resolved as "
                       "good: the next block settled with credits on carries its true-up"
                     : "interval %lld (log index %lld, %lld Wh exported, status %s) was resolved "
                       "before: nothing done",
             (long long)interval_id, (long long)li, (long long)tx.position.export_wh,
             tx.position.status == STL_POS_FLAGGED  ? "flagged"
             : tx.position.status == STL_POS_HELD   ? "held"
                                                    : "estimated");
out:
    if (rc == -2)
        ctl_errf(msg, msglen, "SQLite: %s", ctl_db_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

int ctl_trueup_load(ctl_db *db, int64_t height, uint8_t min_tier, stl_credit **out, size_t *n,
                    char *msg, size_t msglen)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    stl_credit *c = NULL;
    int rc = -1;
    if (ctl_db_prepare(db,
                       height < 0 ? "SELECT source_log_index FROM credit_trueup WHERE height IS NULL"
                                    " ORDER BY source_log_index LIMIT ?2"
                                  : "SELECT source_log_index FROM credit_trueup WHERE height = ?1"
                                    " ORDER BY source_log_index LIMIT ?2",
                       &st) != SQLITE_OK) {
        ctl_errf(msg, msglen, "SQLite: %s", ctl_db_errmsg(db));
        goto out;
    }
    if (height >= 0)
        sqlite3_bind_int64(st, 1, height);
    sqlite3_bind_int(st, 2, CTL_TRUEUP_MAX_PER_BLOCK);
    c = malloc(CTL_TRUEUP_MAX_PER_BLOCK * sizeof *c);
    if (!c) {
        ctl_errf(msg, msglen, "out of memory");
        goto out;
    }
    size_t k = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t li = sqlite3_column_int64(st, 0);
        stl_position p;
        int r = li >= 0 ? position_at(db, (uint64_t)li, &p) : 1;
        if (r < 0) {
            ctl_errf(msg, msglen, "SQLite: %s", ctl_db_errmsg(db));
            goto out;
        }
        /* a request whose source is not a held position (ctl_trueup_request never stores one;
         * a damaged file might) is left pending rather than stopping settlement: it mints
         * nothing, and verify would refuse it in a block */
        if (r == 0 && stl_credit_trueup(&p, (uint64_t)li, min_tier, &c[k]) == STL_OK)
            k++;
    }
    if (step != SQLITE_DONE) {
        ctl_errf(msg, msglen, "SQLite: %s", ctl_db_errmsg(db));
        goto out;
    }
    rc = 0;
    if (k) {
        *out = c;
        *n = k;
        c = NULL;
    }
out:
    free(c);
    sqlite3_finalize(st);
    return rc;
}

int ctl_trueup_mark(ctl_db *db, const stl_credit *c, size_t n, uint64_t height)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (ctl_db_prepare(db,
                       "UPDATE credit_trueup SET height = ?1 WHERE source_log_index = ?2"
                       " AND height IS NULL",
                       &st) != SQLITE_OK)
        return -1;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)height);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)c[i].source_seq);
        if (sqlite3_step(st) != SQLITE_DONE || ctl_db_changes(db) != 1)
            goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

int ctl_trueup_audit(ctl_db *db, const stl_credit *c, uint64_t first_index, uint8_t min_tier,
                     char *msg, size_t msglen)
{
    uint64_t li = c->source_seq;
    stl_position p;
    stl_credit want;
    if (li >= first_index) {
        ctl_errf(msg, msglen, "its source (log index %llu) is not in an earlier block",
                 (unsigned long long)li);
        return -1;
    }
    int r = position_at(db, li, &p);
    if (r < 0) {
        ctl_errf(msg, msglen, "SQLite: %s", ctl_db_errmsg(db));
        return -1;
    }
    if (r != 0 || p.participant != c->participant ||
        stl_credit_trueup(&p, li, min_tier, &want) != STL_OK) {
        ctl_errf(msg, msglen, "its source (log index %llu) is not a held position of participant "
                 "%llu",
                 (unsigned long long)li, (unsigned long long)c->participant);
        return -1;
    }
    if (want.status != c->status || want.tier != c->tier || want.min_tier != c->min_tier ||
        want.minted_wh != c->minted_wh || want.in_wh != c->in_wh || want.out_wh != c->out_wh ||
        want.retired_wh != c->retired_wh || want.kept_wh != c->kept_wh || want.minted_wh == 0) {
        ctl_errf(msg, msglen,
                 "true-up of log index %llu mints %lld Wh, the rule gives %lld (its export at "
                 "tier %u, minimum %u)",
                 (unsigned long long)li, (long long)c->minted_wh, (long long)want.minted_wh,
                 (unsigned)p.tier, (unsigned)min_tier);
        return -1;
    }
    /* once: no credit record between the source and this block trues up the same source */
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (ctl_db_prepare(db,
                       "SELECT log_index, body FROM ledger_tx WHERE participant = ?1"
                       " AND log_index > ?2 AND log_index < ?3",
                       &st) != SQLITE_OK) {
        ctl_errf(msg, msglen, "SQLite: %s", ctl_db_errmsg(db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)c->participant);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)li);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)first_index);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        stl_tx tx;
        if (stl_tx_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &tx) ==
                STL_OK &&
            tx.kind == STL_TX_CREDIT && stl_credit_is_trueup(&tx.credit) &&
            tx.credit.source_seq == li) {
            ctl_errf(msg, msglen, "log index %llu was trued up before (log index %lld): minted twice",
                     (unsigned long long)li, (long long)sqlite3_column_int64(st, 0));
            goto out;
        }
    }
    if (step != SQLITE_DONE) {
        ctl_errf(msg, msglen, "SQLite: %s", ctl_db_errmsg(db));
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}
