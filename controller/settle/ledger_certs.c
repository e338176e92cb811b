/*
 * Granular certificates and 24/7 matching of one home out of the ledger (ledger_certs.h).
 *
 * For each block holding a credit record of the home, the block's trades, positions and credit
 * records are read back; the credits are re-derived with the records' minimum tier
 * (stl_credits_compute) to get each trade's move and its retired part, and compared with the
 * stored records. A home's minted credits give bundles of its own production (retired by
 * itself, transferred to buyers, kept); its purchases give bundles of other homes' production
 * (retired or kept). Other homes are never named, as in statements: a bought bundle carries the
 * producer's issuance id (its salted credit transaction id), which the coordinator can resolve.
 */
#include "settle/ledger_certs.h"

#include "common/errbuf.h"
#include "mgx/civil.h"
#include "mgx/credits.h"
#include "mgx/ledger_record.h"
#include "settle/ledger_store.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define CERT_EXPIRY_MONTHS 12

typedef struct {
    stl_tx tx;
    char txid[2 * STL_ID_LEN + 1];
    int64_t log_index;
} row;

static void iso(int64_t t, char out[32])
{
    mkt_format_time(t, 0, out, 32);
}

/* The end of the interval plus CERT_EXPIRY_MONTHS calendar months, UTC (a day past the end of
 * the shorter month, e.g. 29 February, becomes the month's last day). */
static int64_t expiry(int64_t end)
{
    int64_t days = end >= 0 ? end / 86400 : -((-end + 86399) / 86400), y, m, d;
    int64_t sec = end - days * 86400;
    mkt_civil_from_days(days, &y, &m, &d);
    m += CERT_EXPIRY_MONTHS;
    y += (m - 1) / 12;
    m = (m - 1) % 12 + 1;
    if (d > mkt_days_in_month(y, m))
        d = mkt_days_in_month(y, m);
    return mkt_days_from_civil(y, m, d) * 86400 + sec;
}

/* Basis points of part in whole, rounded down; 0 when whole is 0. */
static int64_t share_bp(int64_t part, int64_t whole)
{
    if (whole <= 0)
        return 0;
    int64_t bp = 0;
    if (stl_muldiv(part, 10000, whole, &bp) != STL_OK)
        return 0;
    return bp;
}

static json_t *bundle(const char *community, const stl_block *b, const char *issuance,
                      const char *device, int64_t wh, const char *status, const char *holder,
                      unsigned tier, const row *own)
{
    char start[32], end[32], exp[32];
    int64_t s = b->interval_id * (int64_t)b->interval_len_s, e = s + b->interval_len_s;
    iso(s, start);
    iso(e, end);
    iso(expiry(e), exp);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:i, s:s}", "issuance_id",
                          issuance, "production_device", device, "energy_source", "solar",
                          "production_start_time", start, "production_end_time", end, "community",
                          community, "volume_wh", (json_int_t)wh, "status", status, "holder",
                          holder, "attestation_tier", (int)tier, "expires", exp);
    if (j && own)
        json_object_set_new(j, "ledger",
                            json_pack("{s:I, s:I, s:I, s:s}", "interval_id",
                                      (json_int_t)b->interval_id, "height", (json_int_t)b->height,
                                      "log_index", (json_int_t)own->log_index, "txid", own->txid));
    return j;
}

/* The block's rows, in log order: trades, positions, credits. */
static int load_rows(ctl_db *db, uint64_t height, row **out, size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (ctl_db_prepare(db,
                       "SELECT body, txid, log_index FROM ledger_tx WHERE height=?1 ORDER "
                       "BY log_index",
                       &st) != SQLITE_OK)
        return ctl_fail(-1, err, errlen, "%s", ctl_db_errmsg(db));
    sqlite3_bind_int64(st, 1, (sqlite3_int64)height);
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            row *g = realloc(*out, cap * sizeof *g);
            if (!g) {
                rc = ctl_fail(-1, err, errlen, "out of memory");
                break;
            }
            *out = g;
        }
        row *r = &(*out)[*n];
        if (stl_tx_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                          &r->tx) != STL_OK ||
            sqlite3_column_bytes(st, 1) != STL_ID_LEN) {
            rc = ctl_fail(-1, err, errlen, "block %llu: damaged record (run `mgx ledger verify`)",
                          (unsigned long long)height);
            break;
        }
        sodium_bin2hex(r->txid, sizeof r->txid, sqlite3_column_blob(st, 1), STL_ID_LEN);
        r->log_index = sqlite3_column_int64(st, 2);
        (*n)++;
    }
    sqlite3_finalize(st);
    return rc;
}

typedef struct {
    json_t *certs, *intervals;
    int64_t consumption_wh, matched_wh, minted_wh, bought_wh, sold_wh, kept_wh;
} month_sum;

/* The true-up of the held position pos (a row of block b) of participant, if a later block
 * carried one (settle/credit_trueup.h): an "active" bundle of its credits, produced in b's
 * interval (start, end and expiry are the original interval's), whose ledger entry is the
 * true-up record. *wh gets what it minted (0: none). 0 or -1. */
static int trueup_bundle(ctl_db *db, const stl_block *b, uint64_t participant, const row *pos,
                         const char *device, month_sum *m, int64_t *wh, char *err,
                         size_t errlen)
{
    sqlite3_stmt *st = NULL;
    *wh = 0;
    if (ctl_db_prepare(db,
                       "SELECT t.log_index, t.txid, t.body, t.height FROM credit_trueup u"
                       " JOIN ledger_tx t ON t.height = u.height AND t.participant = ?2"
                       " WHERE u.source_log_index = ?1",
                       &st) != SQLITE_OK)
        return ctl_fail(-1, err, errlen, "%s", ctl_db_errmsg(db));
    sqlite3_bind_int64(st, 1, pos->log_index);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)participant);
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        row r;
        if (stl_tx_decode(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                          &r.tx) != STL_OK ||
            sqlite3_column_bytes(st, 1) != STL_ID_LEN) {
            rc = ctl_fail(-1, err, errlen, "log index %lld: damaged record (run `mgx ledger "
                          "verify`)",
                          (long long)sqlite3_column_int64(st, 0));
            break;
        }
        if (r.tx.kind != STL_TX_CREDIT || !stl_credit_is_trueup(&r.tx.credit) ||
            (int64_t)r.tx.credit.source_seq != pos->log_index || r.tx.credit.minted_wh <= 0)
            continue;
        sodium_bin2hex(r.txid, sizeof r.txid, sqlite3_column_blob(st, 1), STL_ID_LEN);
        r.log_index = sqlite3_column_int64(st, 0);
        json_t *j = bundle(b->community, b, r.txid, device, r.tx.credit.minted_wh, "active",
                           "self", r.tx.credit.tier, NULL);
        if (j)
            json_object_set_new(
                j, "ledger",
                json_pack("{s:I, s:I, s:I, s:s, s:I}", "interval_id",
                          (json_int_t)r.tx.interval_id, "height",
                          (json_int_t)sqlite3_column_int64(st, 3), "log_index",
                          (json_int_t)r.log_index, "txid", r.txid, "true_up_of_log_index",
                          (json_int_t)pos->log_index));
        json_array_append_new(m->certs, j);
        *wh = r.tx.credit.minted_wh;
        m->minted_wh += *wh;
        m->kept_wh += *wh;
        break;
    }
    sqlite3_finalize(st);
    return rc;
}

/* One block's bundles and matching row for participant. */
static int one_block(ctl_db *db, const stl_block *b, uint64_t participant, month_sum *m, char *err,
                     size_t errlen)
{
    row *rows = NULL;
    size_t n = 0, nt = 0, np = 0, nc = 0;
    stl_settled_trade *t = NULL;
    stl_position *p = NULL;
    stl_credit *c = NULL;
    stl_credit_move *mv = NULL;
    int rc = load_rows(db, b->height, &rows, &n, err, errlen);
    if (rc != 0)
        goto out;
    t = calloc(n + 1, sizeof *t);
    p = calloc(n + 1, sizeof *p);
    c = calloc(n + 1, sizeof *c);
    mv = calloc(n + 1, sizeof *mv);
    if (!t || !p || !c || !mv) {
        rc = ctl_fail(-1, err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i].tx.kind == STL_TX_TRADE)
            t[nt++] = rows[i].tx.trade;
        else if (rows[i].tx.kind == STL_TX_POSITION)
            p[np++] = rows[i].tx.position;
        else
            nc++;
    }
    size_t fc = nt + np; /* the credit records start here */
    if (nc == 0)
        goto out; /* credits were not recorded for this block */
    uint8_t min_tier = rows[fc].tx.credit.min_tier;
    if (stl_credits_compute(p, np, t, nt, min_tier, c, mv, NULL) != STL_OK) {
        rc = ctl_fail(-1, err, errlen,
                      "block %llu: its credits cannot be re-derived (run `mgx "
                      "ledger verify`)",
                      (unsigned long long)b->height);
        goto out;
    }
    /* the stored records must be the re-derived nonzero ones, in order; and index them */
    const row **rec = calloc(np + 1, sizeof *rec);
    if (!rec) {
        rc = ctl_fail(-1, err, errlen, "out of memory");
        goto out;
    }
    size_t k = fc;
    for (size_t i = 0; i < np && rc == 0; i++) {
        if (!stl_credit_nonzero(&c[i]))
            continue;
        if (k >= n || memcmp(&rows[k].tx.credit, &c[i], sizeof c[i]) != 0)
            rc = ctl_fail(-1, err, errlen,
                          "block %llu: credit records differ from their re-derivation (run `mgx "
                          "ledger verify`)",
                          (unsigned long long)b->height);
        else
            rec[i] = &rows[k++];
    }
    /* true-ups of earlier held positions follow (credit_trueup.h); they are certified with
     * their original interval (certify_trueups), not with this block */
    while (rc == 0 && k < n && stl_credit_is_trueup(&rows[k].tx.credit))
        k++;
    if (rc == 0 && k != n)
        rc = ctl_fail(-1, err, errlen, "block %llu: extra credit records (run `mgx ledger verify`)",
                      (unsigned long long)b->height);
    size_t me = SIZE_MAX;
    for (size_t i = 0; rc == 0 && i < np; i++)
        if (p[i].participant == participant)
            me = i;
    if (rc != 0 || me == SIZE_MAX) {
        free(rec);
        goto out;
    }
    char device[96], community_dev[96];
    snprintf(device, sizeof device, "%s/%llu", b->community, (unsigned long long)participant);
    snprintf(community_dev, sizeof community_dev, "%s/(a local producer)", b->community);
    const stl_credit *mine = &c[me];
    const row *own = rec[me];
    int64_t own_retired = mine->retired_wh;
    /* purchases: other homes' production */
    for (size_t j = 0; j < nt; j++) {
        if (t[j].buyer != participant || mv[j].wh == 0)
            continue;
        size_t s = 0;
        while (s < np && p[s].participant != t[j].seller)
            s++;
        const row *src = s < np ? rec[s] : NULL;
        if (!src)
            continue; /* cannot happen: a seller that moved credits has a record */
        own_retired -= mv[j].retired_wh;
        if (mv[j].retired_wh)
            json_array_append_new(m->certs,
                                  bundle(b->community, b, src->txid, community_dev,
                                         mv[j].retired_wh, "cancelled", "self", c[s].tier, own));
        if (mv[j].wh - mv[j].retired_wh)
            json_array_append_new(m->certs, bundle(b->community, b, src->txid, community_dev,
                                                   mv[j].wh - mv[j].retired_wh, "active", "self",
                                                   c[s].tier, own));
    }
    /* its own production */
    if (mine->minted_wh > 0) {
        if (own_retired)
            json_array_append_new(m->certs, bundle(b->community, b, own->txid, device, own_retired,
                                                   "cancelled", "self", mine->tier, own));
        if (mine->out_wh)
            json_array_append_new(m->certs,
                                  bundle(b->community, b, own->txid, device, mine->out_wh,
                                         "transferred", "a local buyer", mine->tier, own));
        int64_t left = mine->minted_wh - mine->out_wh - own_retired;
        if (left)
            json_array_append_new(m->certs, bundle(b->community, b, own->txid, device, left,
                                                   "active", "self", mine->tier, own));
    }
    free(rec);
    /* a held position resolved later: its true-up's credits, dated to this interval */
    int64_t trued_up = 0;
    if (p[me].status != STL_POS_GOOD &&
        (rc = trueup_bundle(db, b, participant, &rows[nt + me], device, m, &trued_up, err,
                            errlen)) != 0)
        goto out;
    int64_t cons = p[me].status == STL_POS_GOOD ? p[me].import_wh : 0;
    char start[32];
    iso(b->interval_id * (int64_t)b->interval_len_s, start);
    json_array_append_new(
        m->intervals,
        json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "interval_id",
                  (json_int_t)b->interval_id, "start_utc", start, "status",
                  stl_pos_status_name(p[me].status), "consumption_wh", (json_int_t)cons,
                  "matched_wh", (json_int_t)mine->retired_wh, "matched_share_bp",
                  (json_int_t)share_bp(mine->retired_wh, cons), "minted_wh",
                  (json_int_t)mine->minted_wh, "bought_wh", (json_int_t)mine->in_wh, "sold_wh",
                  (json_int_t)mine->out_wh, "kept_wh", (json_int_t)mine->kept_wh));
    if (trued_up)
        json_object_set_new(json_array_get(m->intervals, json_array_size(m->intervals) - 1),
                            "trued_up_wh", json_integer(trued_up));
    m->consumption_wh += cons;
    m->matched_wh += mine->retired_wh;
    m->minted_wh += mine->minted_wh;
    m->bought_wh += mine->in_wh;
    m->sold_wh += mine->out_wh;
    m->kept_wh += mine->kept_wh;
out:
    free(rows);
    free(t);
    free(p);
    free(c);
    free(mv);
    return rc;
}

int ctl_ledger_credit_totals(ctl_db *db, int64_t participant, const ctl_statement_range *range,
                             stl_credit *sum, int *n, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    memset(sum, 0, sizeof *sum);
    sum->participant = (uint64_t)participant;
    *n = 0;
    if (ctl_db_prepare(db,
                       "SELECT t.body, b.interval_id, b.body FROM ledger_tx t JOIN ledger_block b "
                       "ON b.height = t.height WHERE t.participant = ?1 ORDER BY t.log_index",
                       &st) != SQLITE_OK) {
        ctl_errf(err, errlen, "%s", ctl_db_errmsg(db));
        goto out;
    }
    sqlite3_bind_int64(st, 1, participant);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        stl_tx tx;
        if (stl_tx_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &tx)) {
            ctl_errf(err, errlen, "damaged record (run `mgx ledger verify`)");
            goto out;
        }
        if (tx.kind != STL_TX_CREDIT || tx.credit.participant != (uint64_t)participant)
            continue;
        int64_t iv = sqlite3_column_int64(st, 1);
        if (range->by_interval ? iv != range->interval_id : 0) {
            continue;
        } else if (!range->by_interval) {
            stl_block b;
            if (stl_block_decode(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                                 &b)) {
                ctl_errf(err, errlen, "damaged block (run `mgx ledger verify`)");
                goto out;
            }
            int64_t start = iv * (int64_t)b.interval_len_s;
            if (start < range->from_utc || start >= range->to_utc)
                continue;
        }
        sum->minted_wh += tx.credit.minted_wh;
        sum->in_wh += tx.credit.in_wh;
        sum->out_wh += tx.credit.out_wh;
        sum->retired_wh += tx.credit.retired_wh;
        sum->kept_wh += tx.credit.kept_wh;
        (*n)++;
    }
    if (step != SQLITE_DONE) {
        ctl_errf(err, errlen, "%s", ctl_db_errmsg(db));
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

int ctl_ledger_certificates(ctl_db *db, int64_t participant, const ctl_statement_range *range,
                            const char *month, json_t **out, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    month_sum m = {json_array(), json_array(), 0, 0, 0, 0, 0, 0};
    int rc = -1;
    *out = NULL;
    if (!m.certs || !m.intervals)
        goto out;
    if (ctl_db_prepare(db,
                       "SELECT DISTINCT height FROM ledger_tx WHERE participant = ?1 ORDER BY "
                       "height",
                       &st) != SQLITE_OK) {
        ctl_errf(err, errlen, "%s", ctl_db_errmsg(db));
        goto out;
    }
    sqlite3_bind_int64(st, 1, participant);
    rc = 0;
    int step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        stl_block b;
        if (ctl_ledger_block_load(db, sqlite3_column_int64(st, 0), INT64_MIN, &b, NULL) !=
            CTL_LEDGER_OK) {
            rc = ctl_fail(-1, err, errlen, "block %lld cannot be read (run `mgx ledger verify`)",
                          (long long)sqlite3_column_int64(st, 0));
            break;
        }
        int64_t start = b.interval_id * (int64_t)b.interval_len_s;
        if (range->by_interval ? b.interval_id != range->interval_id
                               : (start < range->from_utc || start >= range->to_utc))
            continue;
        rc = one_block(db, &b, (uint64_t)participant, &m, err, errlen);
    }
    if (rc != 0)
        goto out;
    *out = json_pack("{s:s, s:I, s:s, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "format",
                     "mgx-granular-certificates/1", "participant", (json_int_t)participant,
                     "period", month ? month : "", "certificates", m.certs, "intervals",
                     m.intervals, "month", "consumption_wh", (json_int_t)m.consumption_wh,
                     "matched_wh", (json_int_t)m.matched_wh, "matched_share_bp",
                     (json_int_t)share_bp(m.matched_wh, m.consumption_wh), "minted_wh",
                     (json_int_t)m.minted_wh, "bought_wh", (json_int_t)m.bought_wh, "sold_wh",
                     (json_int_t)m.sold_wh, "kept_wh", (json_int_t)m.kept_wh);
    m.certs = m.intervals = NULL; /* "o" took them */
    if (!*out)
        rc = ctl_fail(-1, err, errlen, "out of memory");
out:
    sqlite3_finalize(st);
    json_decref(m.certs);
    json_decref(m.intervals);
    return rc;
}
