/*
 * The SQLite outbox (see outbox.h). One table, ids from AUTOINCREMENT so the order of
 * insertion is the order of publishing and ids are never reused, even after the table empties.
 * In-flight bookkeeping lives in memory only: after a restart everything in the file is simply
 * published again from the oldest.
 */
#define _POSIX_C_SOURCE 200809L
#include "bus/outbox.h"

#include "common/sql.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUTBOX_SCHEMA_VERSION 1
#define OUTBOX_WINDOW_MAX 1024u

typedef struct outbox_slot {
    struct outbox *ob;
    int64_t id;
    bool busy;
} outbox_slot;

struct outbox {
    sqlite3 *db;
    sqlite3_stmt *ins, *del, *del_oldest, *sel;
    char *path;
    uint64_t max_messages;
    outbox_policy policy;
    unsigned window;
    ctl_log log; /* "outbox" on stderr (every level), or the config's callback */

    uint64_t count;
    outbox_slot *slots;
    unsigned in_flight;
    int64_t next_id;  /* the highest id handed to the bus on this connection */
    bool rewind;      /* a message was lost in flight: restart from the oldest */
    int64_t *acked;   /* ids to delete at the next pump (acknowledged or refused), 2 x window */
    unsigned n_acked;
    outbox_stats st;
    uint64_t drops_logged_at; /* drop counter value when a drop was last logged */
};

const char *outbox_strerror(int code)
{
    switch (code) {
    case OUTBOX_OK: return "success";
    case OUTBOX_E_INVAL: return "invalid argument";
    case OUTBOX_E_DB: return "outbox database error";
    case OUTBOX_E_FULL: return "outbox full";
    case OUTBOX_E_NOMEM: return "out of memory";
    default: return "unknown error";
    }
}

static int exec(outbox *ob, const char *sql)
{
    if (ctl_sql_exec(ob->db, sql) != SQLITE_OK) {
        ctl_logf(&ob->log, CTL_LOG_ERROR, "%s: %s (%s)", ob->path, ctl_sql_errmsg(ob->db), sql);
        return OUTBOX_E_DB;
    }
    return OUTBOX_OK;
}

static int prepare(outbox *ob, const char *sql, sqlite3_stmt **st)
{
    if (ctl_sql_prepare(ob->db, sql, st) != SQLITE_OK) {
        ctl_logf(&ob->log, CTL_LOG_ERROR, "%s: %s", ob->path, ctl_sql_errmsg(ob->db));
        return OUTBOX_E_DB;
    }
    return OUTBOX_OK;
}

static int open_db(outbox *ob, char *err, size_t errlen)
{
    /* Exclusive locking: a second daemon on the same file fails here instead of interleaving. */
    const ctl_sql_opts opts = {.busy_ms = 2000, .exclusive = 1};
    char why[256] = "";
    if (ctl_sql_open(ob->path, &opts, &ob->db, why, sizeof why) != SQLITE_OK) {
        /* the pragmas fail when another connection holds the file exclusively */
        snprintf(err, errlen, "cannot lock the outbox (another mgx meter using it?): %s", why);
        return OUTBOX_E_DB;
    }
    if (exec(ob, "BEGIN IMMEDIATE")) {
        snprintf(err, errlen, "%s: cannot lock the outbox (another mgx meter using it?): %s",
                 ob->path, sqlite3_errmsg(ob->db));
        return OUTBOX_E_DB;
    }
    sqlite3_stmt *st = NULL;
    int version = -1;
    if (prepare(ob, "PRAGMA user_version", &st) == OUTBOX_OK && sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > OUTBOX_SCHEMA_VERSION || version < 0) {
        ctl_sql_rollback(ob->db);
        snprintf(err, errlen, "%s: outbox schema version %d is not supported (max %d)", ob->path,
                 version, OUTBOX_SCHEMA_VERSION);
        return OUTBOX_E_DB;
    }
    if (version == 0 &&
        (exec(ob, "CREATE TABLE IF NOT EXISTS outbox ("
                  " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                  " topic TEXT NOT NULL,"
                  " payload BLOB NOT NULL,"
                  " qos INTEGER NOT NULL CHECK (qos IN (0, 1)),"
                  " retain INTEGER NOT NULL CHECK (retain IN (0, 1)),"
                  " enqueued_ms INTEGER NOT NULL)") ||
         exec(ob, "PRAGMA user_version=1"))) {
        ctl_sql_rollback(ob->db);
        snprintf(err, errlen, "%s: cannot create the outbox table: %s", ob->path,
                 sqlite3_errmsg(ob->db));
        return OUTBOX_E_DB;
    }
    if (exec(ob, "COMMIT")) {
        snprintf(err, errlen, "%s: %s", ob->path, sqlite3_errmsg(ob->db));
        return OUTBOX_E_DB;
    }
    st = NULL;
    if (prepare(ob, "SELECT COUNT(*) FROM outbox", &st) == OUTBOX_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        ob->count = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (prepare(ob, "INSERT INTO outbox (topic, payload, qos, retain, enqueued_ms) "
                    "VALUES (?, ?, ?, ?, ?)", &ob->ins) ||
        prepare(ob, "DELETE FROM outbox WHERE id = ?", &ob->del) ||
        prepare(ob, "DELETE FROM outbox WHERE id = (SELECT MIN(id) FROM outbox)",
                &ob->del_oldest) ||
        prepare(ob, "SELECT id, topic, payload, qos, retain FROM outbox WHERE id > ? "
                    "ORDER BY id LIMIT ?", &ob->sel)) {
        snprintf(err, errlen, "%s: %s", ob->path, sqlite3_errmsg(ob->db));
        return OUTBOX_E_DB;
    }
    return OUTBOX_OK;
}

int outbox_open(const outbox_config *cfg, outbox **out, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!cfg || !cfg->path || !*cfg->path || !out || cfg->window > OUTBOX_WINDOW_MAX ||
        (cfg->policy != OUTBOX_DROP_OLDEST && cfg->policy != OUTBOX_REFUSE_NEWEST)) {
        snprintf(err, errlen, "outbox: invalid settings");
        return OUTBOX_E_INVAL;
    }
    *out = NULL;
    outbox *ob = calloc(1, sizeof *ob);
    if (!ob)
        return OUTBOX_E_NOMEM;
    ob->path = strdup(cfg->path);
    ob->max_messages = cfg->max_messages ? cfg->max_messages : 100000;
    ob->policy = cfg->policy;
    ob->window = cfg->window ? cfg->window : 16;
    ob->log = (ctl_log){"outbox", CTL_LOG_DEBUG, cfg->log, cfg->log_user};
    ob->slots = calloc(ob->window, sizeof *ob->slots);
    ob->acked = calloc(2 * (size_t)ob->window, sizeof *ob->acked); /* in flight + unpublishable */
    int rc = OUTBOX_E_NOMEM;
    if (!ob->path || !ob->slots || !ob->acked) {
        snprintf(err, errlen, "outbox: out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < ob->window; i++)
        ob->slots[i].ob = ob;
    rc = open_db(ob, err, errlen);
    if (rc != OUTBOX_OK)
        goto fail;
    if (ob->count)
        ctl_logf(&ob->log, CTL_LOG_INFO, "%s: %llu messages waiting from an earlier run", ob->path,
                 (unsigned long long)ob->count);
    *out = ob;
    return OUTBOX_OK;
fail:
    outbox_close(ob);
    return rc;
}

static void note_drop(outbox *ob, bool oldest)
{
    uint64_t total = oldest ? ++ob->st.dropped_full : ++ob->st.refused_full;
    /* every drop is counted; the log gets the first and then each doubling, so a long outage
     * says what it cost without a line per reading */
    if (total == 1 || total >= 2 * ob->drops_logged_at) {
        ob->drops_logged_at = total;
        ctl_logf(&ob->log, CTL_LOG_WARN, "%s: outbox full (%llu messages): %s; %llu so far",
                 ob->path, (unsigned long long)ob->max_messages,
                 oldest ? "dropped the oldest message" : "refused a new message",
                 (unsigned long long)total);
    }
}

int outbox_push(outbox *ob, const outbox_item *items, size_t n, int64_t now_ms,
                size_t *accepted)
{
    if (accepted)
        *accepted = 0;
    if (!ob || (n && !items))
        return OUTBOX_E_INVAL;
    for (size_t i = 0; i < n; i++)
        if (!items[i].topic || items[i].len > BUS_PAYLOAD_MAX || (items[i].len && !items[i].payload) ||
            items[i].qos < 0 || items[i].qos > 1)
            return OUTBOX_E_INVAL;
    if (n == 0)
        return OUTBOX_OK;
    if (exec(ob, "BEGIN IMMEDIATE"))
        return OUTBOX_E_DB;
    uint64_t count = ob->count, dropped = 0, refused = 0;
    size_t stored = 0;
    for (size_t i = 0; i < n; i++) {
        if (count >= ob->max_messages) {
            if (ob->policy == OUTBOX_REFUSE_NEWEST) {
                refused++;
                continue;
            }
            sqlite3_reset(ob->del_oldest);
            if (sqlite3_step(ob->del_oldest) != SQLITE_DONE)
                goto fail;
            count--;
            dropped++;
        }
        sqlite3_stmt *st = ob->ins;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, items[i].topic, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, items[i].len ? items[i].payload : "", (int)items[i].len,
                          SQLITE_STATIC);
        sqlite3_bind_int(st, 3, items[i].qos);
        sqlite3_bind_int(st, 4, items[i].retain ? 1 : 0);
        sqlite3_bind_int64(st, 5, now_ms);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
        count++;
        stored++;
    }
    if (exec(ob, "COMMIT"))
        goto fail;
    ob->count = count;
    ob->st.pushed += stored;
    for (uint64_t k = 0; k < dropped; k++)
        note_drop(ob, true);
    for (uint64_t k = 0; k < refused; k++)
        note_drop(ob, false);
    if (accepted)
        *accepted = stored;
    return refused ? OUTBOX_E_FULL : OUTBOX_OK;
fail:
    ctl_logf(&ob->log, CTL_LOG_ERROR, "%s: cannot store %zu messages: %s", ob->path, n,
             sqlite3_errmsg(ob->db));
    ctl_sql_rollback(ob->db);
    return OUTBOX_E_DB;
}

static void on_done(void *arg, int status)
{
    outbox_slot *s = arg;
    outbox *ob = s->ob;
    s->busy = false;
    ob->in_flight--;
    if (status == BUS_OK || status == BUS_E_DENIED) {
        if (status == BUS_E_DENIED) {
            ob->st.rejected++;
            ctl_logf(&ob->log, CTL_LOG_ERROR,
                     "%s: the broker refused message %lld; deleted (check the "
                     "broker's ACL for this client)",
                     ob->path, (long long)s->id);
        }
        if (status == BUS_OK)
            ob->st.published++;
        ob->acked[ob->n_acked++] = s->id;
    } else {
        ob->rewind = true;
    }
}

static int delete_acked(outbox *ob)
{
    if (ob->n_acked == 0)
        return OUTBOX_OK;
    if (exec(ob, "BEGIN IMMEDIATE"))
        return OUTBOX_E_DB;
    uint64_t gone = 0;
    for (unsigned i = 0; i < ob->n_acked; i++) {
        sqlite3_reset(ob->del);
        sqlite3_bind_int64(ob->del, 1, ob->acked[i]);
        if (sqlite3_step(ob->del) != SQLITE_DONE)
            goto fail;
        gone += (uint64_t)sqlite3_changes(ob->db); /* 0 if drop_oldest removed it meanwhile */
    }
    if (exec(ob, "COMMIT"))
        goto fail;
    ob->count -= gone;
    ob->n_acked = 0;
    return OUTBOX_OK;
fail:
    ctl_logf(&ob->log, CTL_LOG_ERROR, "%s: cannot delete acknowledged messages: %s", ob->path,
             sqlite3_errmsg(ob->db));
    ctl_sql_rollback(ob->db);
    return OUTBOX_E_DB;
}

static outbox_slot *free_slot(outbox *ob)
{
    for (unsigned i = 0; i < ob->window; i++)
        if (!ob->slots[i].busy)
            return &ob->slots[i];
    return NULL;
}

int outbox_pump(outbox *ob, bus_client *bus)
{
    if (!ob || !bus)
        return OUTBOX_E_INVAL;
    int rc = delete_acked(ob);
    if (rc != OUTBOX_OK)
        return rc;
    if (ob->rewind && ob->in_flight == 0) {
        ob->rewind = false;
        ob->next_id = 0;
        ob->st.resends++;
    }
    if (ob->rewind || !bus_connected(bus) || ob->in_flight >= ob->window)
        return OUTBOX_OK;
    sqlite3_stmt *st = ob->sel;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, ob->next_id);
    sqlite3_bind_int(st, 2, (int)(ob->window - ob->in_flight));
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *topic = (const char *)sqlite3_column_text(st, 1);
        const void *payload = sqlite3_column_blob(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        int qos = sqlite3_column_int(st, 3);
        bool retain = sqlite3_column_int(st, 4) != 0;
        outbox_slot *slot = free_slot(ob);
        if (!slot)
            break;
        slot->id = id;
        int prc = bus_publish(bus, topic ? topic : "", payload, len, qos, retain, on_done, slot);
        if (prc == BUS_OK) {
            slot->busy = true;
            ob->in_flight++;
            ob->next_id = id;
        } else if (prc == BUS_E_INVAL || prc == BUS_E_TOOLONG) {
            /* a row that can never be published (the bounds changed?): drop it loudly */
            ob->st.rejected++;
            ctl_logf(&ob->log, CTL_LOG_ERROR, "%s: message %lld cannot be published (%s); deleted",
                     ob->path, (long long)id, bus_strerror(prc));
            ob->next_id = id;
            if (ob->n_acked < ob->window) /* the other half is for the window's outcomes */
                ob->acked[ob->n_acked++] = id;
            else
                break;
        } else {
            break; /* not connected any more, or the bus is full: try again later */
        }
    }
    sqlite3_reset(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        ctl_logf(&ob->log, CTL_LOG_ERROR, "%s: cannot read the outbox: %s", ob->path,
                 sqlite3_errmsg(ob->db));
        return OUTBOX_E_DB;
    }
    return OUTBOX_OK;
}

uint64_t outbox_count(const outbox *ob) { return ob ? ob->count : 0; }

unsigned outbox_in_flight(const outbox *ob) { return ob ? ob->in_flight : 0; }

void outbox_stats_get(const outbox *ob, outbox_stats *out)
{
    if (!ob || !out)
        return;
    *out = ob->st;
    out->queued = ob->count;
}

void outbox_close(outbox *ob)
{
    if (!ob)
        return;
    sqlite3_finalize(ob->ins);
    sqlite3_finalize(ob->del);
    sqlite3_finalize(ob->del_oldest);
    sqlite3_finalize(ob->sel);
    if (ob->db)
        sqlite3_close(ob->db);
    free(ob->slots);
    free(ob->acked);
    free(ob->path);
    free(ob);
}
