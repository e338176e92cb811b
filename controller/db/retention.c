/*
 * The retention rule for meter readings (see retention.h): the pure decision and the bounded
 * pass over the readings table.
 */
#include "db/retention.h"

#include "common/sql.h"
#include "db/db_internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The smallest multiple of m (> 0) that is >= t. */
static int64_t ceil_mul(int64_t t, int64_t m)
{
    int64_t q = t / m;
    if (q * m < t)
        q++;
    return q * m;
}

size_t ctl_retention_decide(const ctl_ret_row *r, size_t n, int64_t prev_good_ms,
                            int64_t interval_ms, bool more, bool *keep, int64_t *resume_ms)
{
    int64_t prev = prev_good_ms;
    size_t i = 0;
    for (; i < n; i++) {
        if (r[i].quality != MTR_Q_GOOD) {
            keep[i] = true;
            continue;
        }
        size_t j = i + 1;
        while (j < n && r[j].quality != MTR_Q_GOOD)
            j++;
        /* the next good reading is not known yet: decided in a later pass, unless nothing
         * before it was decided and more rows follow (then it is kept, so a run of flagged
         * readings longer than a batch cannot stop the pass) */
        if (j == n && (!more || i > 0))
            break;
        bool first_after = prev == INT64_MIN || ceil_mul(prev, interval_ms) < r[i].ts_ms;
        bool last_before = j == n || ceil_mul(r[i].ts_ms, interval_ms) < r[j].ts_ms;
        keep[i] = first_after || last_before;
        prev = r[i].ts_ms;
    }
    *resume_ms = i < n ? r[i].ts_ms : n > 0 ? r[n - 1].ts_ms + 1 : *resume_ms;
    return i;
}

/* The next meter after cursor that has readings ("" wraps to the first); found = 0 at the end. */
static int next_meter(sqlite3 *db, const char *cursor, char *out, size_t cap, int *found)
{
    sqlite3_stmt *st;
    *found = 0;
    if (ctl_sql_prepare_persistent(db,
                                   "SELECT meter_id FROM readings WHERE meter_id > ?1 "
                                   "ORDER BY meter_id LIMIT 1",
                                   &st) != SQLITE_OK)
        return CTL_ST_E_DB;
    sqlite3_bind_text(st, 1, cursor, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        *found = 1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? CTL_ST_OK : CTL_ST_E_DB;
}

static int query_int(sqlite3 *db, const char *sql, const char *meter, int64_t a, int64_t *v,
                     int *found)
{
    sqlite3_stmt *st;
    if (ctl_sql_prepare_persistent(db, sql, &st) != SQLITE_OK)
        return CTL_ST_E_DB;
    sqlite3_bind_text(st, 1, meter, -1, SQLITE_TRANSIENT);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, a);
    int rc = ctl_sql_step_int(st, v, found);
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? CTL_ST_OK : CTL_ST_E_DB;
}

/* Thins one meter's readings in [watermark, cutoff), at most budget rows. The reads run
 * before the write transaction, which is taken only when there is something to delete or a
 * watermark to move: an idle pass writes nothing (a commit costs an fsync, and the controller's
 * loop must not wait on one per meter every pass). The store has one writer thread, so what
 * was read is still there. *done = 1 when the meter has nothing more below the cutoff. */
static int thin_meter(sqlite3 *db, const char *meter, int64_t cutoff_ms, int64_t interval_ms,
                      size_t budget, ctl_retention_stats *stats, int *done)
{
    ctl_ret_row *rows = malloc((budget + 1) * sizeof *rows);
    bool *keep = malloc((budget + 1) * sizeof *keep);
    sqlite3_stmt *sel = NULL, *del = NULL, *mark = NULL;
    int out = CTL_ST_E_DB, found = 0;
    size_t n = 0;
    *done = 1;
    if (!rows || !keep) {
        free(rows);
        free(keep);
        return CTL_ST_E_NOMEM;
    }
    bool began = false;
    int64_t wm = INT64_MIN, prev = INT64_MIN;
    if (query_int(db, "SELECT thinned_to_ms FROM reading_retention WHERE meter_id = ?1",
                  meter, 0, &wm, &found) != CTL_ST_OK)
        goto out;
    if (!found)
        wm = INT64_MIN;
    if (query_int(db,
                  "SELECT ts_ms FROM readings WHERE meter_id = ?1 AND ts_ms < ?2 AND quality = 0 "
                  "ORDER BY ts_ms DESC LIMIT 1",
                  meter, wm, &prev, &found) != CTL_ST_OK)
        goto out;
    if (!found)
        prev = INT64_MIN;
    if (ctl_sql_prepare_persistent(db,
                                   "SELECT ts_ms, quality FROM readings WHERE meter_id = ?1 AND "
                                   "ts_ms >= ?2 AND ts_ms < ?3 ORDER BY ts_ms LIMIT ?4",
                                   &sel) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(sel, 1, meter, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(sel, 2, wm);
    sqlite3_bind_int64(sel, 3, cutoff_ms);
    sqlite3_bind_int64(sel, 4, (int64_t)budget + 1);
    int rc;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW)
        rows[n++] = (ctl_ret_row){sqlite3_column_int64(sel, 0),
                                  (uint32_t)sqlite3_column_int64(sel, 1)};
    if (rc != SQLITE_DONE)
        goto out;
    /* one row beyond the budget only says whether more follow */
    bool more = n > budget;
    if (more)
        n = budget;
    int64_t resume = wm;
    size_t decided = ctl_retention_decide(rows, n, prev, interval_ms, more, keep, &resume);
    stats->examined += n;
    *done = !more;
    size_t drop = 0;
    for (size_t i = 0; i < decided; i++)
        drop += !keep[i];
    if (drop == 0 && resume == wm) {
        out = CTL_ST_OK; /* nothing to write */
        goto out;
    }
    if (ctl_sql_begin(db) != SQLITE_OK)
        goto out;
    began = true;
    if (ctl_sql_prepare_persistent(db, "DELETE FROM readings WHERE meter_id = ?1 AND ts_ms = ?2",
                                   &del) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(del, 1, meter, -1, SQLITE_TRANSIENT);
    for (size_t i = 0; i < decided; i++) {
        if (keep[i])
            continue;
        sqlite3_reset(del);
        sqlite3_bind_int64(del, 2, rows[i].ts_ms);
        if (sqlite3_step(del) != SQLITE_DONE)
            goto out;
        stats->deleted++;
    }
    if (ctl_sql_prepare_persistent(db,
                                   "INSERT INTO reading_retention(meter_id, thinned_to_ms) "
                                   "VALUES(?1, ?2) ON CONFLICT(meter_id) DO UPDATE SET "
                                   "thinned_to_ms = excluded.thinned_to_ms",
                                   &mark) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(mark, 1, meter, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(mark, 2, resume);
    if (sqlite3_step(mark) != SQLITE_DONE)
        goto out;
    out = CTL_ST_OK;
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    sqlite3_finalize(mark);
    if (began && ctl_sql_end(db, out == CTL_ST_OK) != SQLITE_OK && out == CTL_ST_OK)
        out = CTL_ST_E_DB;
    if (out != CTL_ST_OK)
        *done = 1; /* the caller stops the pass on the error anyway */
    free(rows);
    free(keep);
    return out;
}

int ctl_store_thin_readings(ctl_store *s, ctl_retention_state *state, int64_t cutoff_ms,
                            int64_t interval_ms, size_t max_rows, ctl_retention_stats *stats)
{
    if (!s || !state || !stats || interval_ms <= 0 || max_rows == 0 || max_rows > 1000000)
        return CTL_ST_E_INVAL;
    sqlite3 *db = ctl_db__sqlite(ctl_store_db(s));
    size_t budget = max_rows;
    char meter[sizeof state->cursor];
    while (budget > 0) {
        int found = 1, done;
        /* the cursor names the meter to continue with; "" starts a round at the first */
        int rc = state->cursor[0] ? CTL_ST_OK
                                  : next_meter(db, "", state->cursor, sizeof state->cursor, &found);
        if (rc != CTL_ST_OK)
            return rc;
        if (!found)
            return CTL_ST_OK; /* no readings at all */
        snprintf(meter, sizeof meter, "%s", state->cursor);
        uint64_t before = stats->examined;
        rc = thin_meter(db, meter, cutoff_ms, interval_ms, budget, stats, &done);
        if (rc != CTL_ST_OK)
            return rc;
        stats->meters++;
        uint64_t used = stats->examined - before + 1; /* visiting a meter costs a row too */
        budget = used >= budget ? 0 : budget - (size_t)used;
        if (!done)
            return CTL_ST_OK; /* the budget ran out inside this meter: continue here */
        if ((rc = next_meter(db, meter, state->cursor, sizeof state->cursor, &found)) !=
            CTL_ST_OK)
            return rc;
        if (!found) {
            state->cursor[0] = '\0'; /* the round is complete; the next pass starts another */
            return CTL_ST_OK;
        }
    }
    return CTL_ST_OK;
}
