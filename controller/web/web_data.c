/*
 * The dashboard's JSON documents (see web_data.h).
 */
#include "web/web_data.h"

#include "db/dashboard.h"
#include "db/meter_keys.h"
#include "db/peer_trust.h"
#include "db/prefs.h"
#include "db/registry.h"
#include "mgx/civil.h"
#include "mgx/reconcile.h"
#include "settle/ledger_certs.h"
#include "settle/ledger_proof.h"
#include "settle/ledger_statement.h"
#include "settle/ledger_store.h"
#include "solana/solana_outbox.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_S 86400

/* The n digits at s as a number, or -1 unless all are ASCII digits (no sign, no space). */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int web_parse_day(const char *s, int64_t *day_utc)
{
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    int64_t days = mkt_days_from_civil(y, m, d);
    int64_t yy, mm, dd;
    mkt_civil_from_days(days, &yy, &mm, &dd);
    if (yy != y || mm != m || dd != d) /* 2024-02-31 */
        return -1;
    *day_utc = days * DAY_S;
    return 0;
}

static void day_name(int64_t day_utc, char buf[16])
{
    int64_t y, m, d;
    mkt_civil_from_days(day_utc / DAY_S, &y, &m, &d);
    snprintf(buf, 16, "%04d-%02d-%02d", (int)y, (int)m, (int)d);
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

int web_default_day(ctl_db *db, int64_t now_s, int64_t *day_utc)
{
    char community[80];
    int64_t interval_s = 900, last;
    int found = 0, have_id = 0;
    if (ctl_dash_identity(db, community, sizeof community, &interval_s, &found) ||
        ctl_dash_last_cleared(db, &last, &have_id))
        return WEB_DATA_E_DB;
    int64_t t = found && have_id ? last * interval_s : now_s;
    *day_utc = floor_div(t, DAY_S) * DAY_S;
    return WEB_DATA_OK;
}

/* The interval ids of a day: [*from, *to). */
static int day_ids(ctl_db *db, int64_t day_utc, int64_t *from, int64_t *to, char *community,
                   size_t cap, int64_t *interval_s)
{
    int found = 0;
    *interval_s = 900;
    community[0] = 0;
    if (ctl_dash_identity(db, community, cap, interval_s, &found))
        return WEB_DATA_E_DB;
    *from = floor_div(day_utc + *interval_s - 1, *interval_s);
    *to = floor_div(day_utc + DAY_S + *interval_s - 1, *interval_s);
    return WEB_DATA_OK;
}

/* ---- a home ---- */

typedef struct pos_acc pos_acc;
struct pos_acc {
    json_t *arr; /* the rows as JSON; NULL: sums only */
    int64_t interval_s;
    int64_t net_uc, grid_only_uc, import_wh, export_wh, local_bought_wh, local_sold_wh;
    int64_t fee_uc;
    int n, held;
    int err;
    /* a second accumulator for the rows of intervals day_from <= id < day_to: the day's figures
     * come out of the month's one pass over the statement */
    pos_acc *day;
    int64_t day_from, day_to;
};

static int on_position(void *ctx, const ctl_statement_row *row)
{
    pos_acc *a = ctx;
    if (a->day && row->interval_id >= a->day_from && row->interval_id < a->day_to &&
        on_position(a->day, row))
        return a->err = a->day->err;
    int64_t grid_only;
    if (ctl_statement_grid_only_net_uc(row, &grid_only))
        return a->err = -1;
    const stl_position *p = row->position;
    int good = p->status == STL_POS_GOOD || p->status == STL_POS_ESTIMATED;
    a->n++;
    a->held += !good;
    a->net_uc += row->v[13];
    a->grid_only_uc += grid_only;
    a->import_wh += p->import_wh;
    a->export_wh += p->export_wh;
    a->local_bought_wh += p->local_bought_wh;
    a->local_sold_wh += p->local_sold_wh;
    a->fee_uc += p->fee_paid_uc;
    if (!a->arr)
        return 0;
    json_t *o = json_pack("{sI sI ss sI sI sI sI sI sI}", "interval_id", (json_int_t)row->interval_id,
                          "start_utc", (json_int_t)row->start_utc, "status",
                          stl_pos_status_name(p->status), "quality", (json_int_t)p->quality,
                          "import_wh", (json_int_t)p->import_wh, "export_wh",
                          (json_int_t)p->export_wh, "local_bought_wh",
                          (json_int_t)p->local_bought_wh, "net_uc", (json_int_t)row->v[13],
                          "grid_only_net_uc", (json_int_t)grid_only);
    if (!o || json_array_append_new(a->arr, o))
        return a->err = -2;
    return 0;
}

static json_t *bill_json(const pos_acc *pa)
{
    return json_pack("{si si sI sI sI sI sI sI sI sI}", "intervals", pa->n, "held", pa->held,
                     "net_uc", (json_int_t)pa->net_uc, "grid_only_net_uc",
                     (json_int_t)pa->grid_only_uc, "saving_uc",
                     (json_int_t)(pa->net_uc - pa->grid_only_uc), "import_wh",
                     (json_int_t)pa->import_wh, "export_wh", (json_int_t)pa->export_wh,
                     "local_bought_wh", (json_int_t)pa->local_bought_wh, "local_sold_wh",
                     (json_int_t)pa->local_sold_wh, "fee_uc", (json_int_t)pa->fee_uc);
}

typedef struct {
    json_t *arr;
    int64_t interval_s;
} trade_acc;

static int on_trade(void *ctx, const ctl_dash_trade *t)
{
    trade_acc *a = ctx;
    json_t *o = json_pack("{sI sI ss sI sI sI sI}", "interval_id", (json_int_t)t->interval_id,
                          "start_utc", (json_int_t)(t->interval_id * a->interval_s), "side",
                          t->sold ? "sold" : "bought", "energy_wh", (json_int_t)t->energy_wh,
                          "price_uc_per_kwh", (json_int_t)t->price_uc_per_kwh, "amount_uc",
                          (json_int_t)t->amount_uc, "fee_uc", (json_int_t)t->fee_uc);
    return !o || json_array_append_new(a->arr, o) ? -2 : 0;
}

static int on_order(void *ctx, const ctl_dash_order *o)
{
    json_t *steps = json_array();
    size_t shown = o->n_steps < CTL_DASH_STEPS_MAX ? o->n_steps : CTL_DASH_STEPS_MAX;
    for (size_t i = 0; steps && i < shown; i++)
        json_array_append_new(steps, json_pack("{sI sI}", "energy_wh", (json_int_t)o->energy_wh[i],
                                               "price_uc_per_kwh",
                                               (json_int_t)o->price_uc_per_kwh[i]));
    json_t *j = json_pack("{sI ss ss ss sI sI so}", "interval_id", (json_int_t)o->interval_id,
                          "side", o->sell ? "sell" : "buy", "status",
                          o->accepted ? "accepted" : "refused", "reason", o->reason,
                          "received_ms", (json_int_t)o->received_ms, "steps_total",
                          (json_int_t)o->n_steps, "steps", steps);
    return !j || json_array_append_new(ctx, j) ? -2 : 0;
}

static json_t *reading_json(const mtr_sample *r, int64_t now_ms)
{
    return json_pack("{sI sI sI sI sI sI si}", "ts_ms", (json_int_t)r->ts_ms, "age_s",
                     (json_int_t)((now_ms - r->ts_ms) / 1000), "power_w", (json_int_t)r->power_w,
                     "import_wh", (json_int_t)r->import_wh, "export_wh", (json_int_t)r->export_wh,
                     "quality", (json_int_t)r->quality, "soc_permille", (int)r->soc_permille);
}

/* Sets o's "reading" to meter_id's latest reading with the attestation tier the controller
 * verified for it (0 unsigned, 1 gateway-signed, 2 certified; docs/trust.md), when there is
 * one. 0, or -1 on a database error. */
static int add_reading(ctl_db *db, json_t *o, const char *meter_id, int64_t now_ms)
{
    mtr_sample r;
    int found, tier;
    int64_t n;
    if (ctl_dash_latest_reading(db, meter_id, &r, &found))
        return -1;
    if (!found)
        return 0;
    if (ctl_reading_tier_min(db, meter_id, r.ts_ms, r.ts_ms + 1, &tier, &n) != CTL_DB_OK)
        return -1;
    json_t *j = reading_json(&r, now_ms);
    json_object_set_new(j, "tier", json_integer(tier));
    json_object_set_new(o, "reading", j);
    return 0;
}

/* The positions of participant in [from_id, to_id); a participant the market never numbered
 * has none. */
static int positions(ctl_db *db, const char *participant, int64_t from_id, int64_t to_id,
                     pos_acc *a)
{
    int64_t number;
    char err[160];
    if (ctl_ledger_participant_number(db, participant, &number, err, sizeof err) != 0)
        return 0;
    ctl_statement_range r = {false, 0, from_id * a->interval_s, to_id * a->interval_s};
    int rows;
    int rc = ctl_ledger_statement(db, number, &r, on_position, a, &rows, err, sizeof err);
    return rc || a->err ? -1 : 0;
}

/* o's "credits": home's energy credits of the month (docs/credits.md), the sums of its credit
 * records in the signed ledger: minted (its verified export), bought (received with its
 * purchases), sold (moved to its buyers), retired (against its own import) and kept. All 0 when
 * the community mints none. (The records are summed as stored; `mgx ledger certificates` and
 * `mgx ledger verify` re-derive them, too slow for a page load: every block of the month.) */
static int add_credits(ctl_db *db, json_t *o, const char *home, const ctl_statement_range *month,
                       const char *mname)
{
    int64_t number;
    char err[200];
    stl_credit c;
    int n = 0;
    memset(&c, 0, sizeof c);
    if (ctl_ledger_participant_number(db, home, &number, err, sizeof err) == 0 &&
        ctl_ledger_credit_totals(db, number, month, &c, &n, err, sizeof err) != 0)
        return -1;
    json_t *j = json_pack("{ss sI sI sI sI sI si}", "month", mname, "minted_wh",
                          (json_int_t)c.minted_wh, "bought_wh", (json_int_t)c.in_wh, "sold_wh",
                          (json_int_t)c.out_wh, "retired_wh", (json_int_t)c.retired_wh,
                          "kept_wh", (json_int_t)c.kept_wh, "records", n);
    return !j || json_object_set_new(o, "credits", j) ? -1 : 0;
}

static json_t *steps_json(const mkt_step *st, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < n && i < MKT_PREF_MAX_STEPS; i++)
        json_array_append_new(a, json_pack("{sI sI}", "energy_wh", (json_int_t)st[i].energy_wh,
                                           "price_uc_per_kwh",
                                           (json_int_t)st[i].price_uc_per_kwh));
    return a;
}

/* o's "preference": the standing preference (ex_post) that counts for the interval after the
 * last cleared one, or null when the home has none (the grid's terms). */
static int add_preference(ctl_db *db, json_t *o, const char *home)
{
    int64_t last = -1;
    int found = 0;
    if (ctl_dash_last_cleared(db, &last, &found))
        return -1;
    int64_t next = found ? last + 1 : 0;
    mkt_preference p;
    if (ctl_prefs_valid(db, home, next, &p, &found) != CTL_ST_OK)
        return -1;
    json_t *j = found ? json_pack("{sI so so}", "interval_id", (json_int_t)next, "sell",
                                  steps_json(p.sell, p.n_sell_steps), "buy",
                                  steps_json(p.buy, p.n_buy_steps))
                      : json_null();
    return !j || json_object_set_new(o, "preference", j) ? -1 : 0;
}

int web_home_day(ctl_db *db, const char *home, int64_t day_utc, int64_t now_ms, json_t **out)
{
    *out = NULL;
    ctl_participant p;
    if (ctl_registry_lookup(db, home, &p) != 0 || p.role != CTL_ROLE_HOME)
        return WEB_DATA_NOT_FOUND;
    char community[80], day[16];
    int64_t from, to, interval_s;
    if (day_ids(db, day_utc, &from, &to, community, sizeof community, &interval_s))
        return WEB_DATA_E_DB;
    day_name(day_utc, day);
    json_t *doc = json_pack("{ss ss ss sI sn so so}", "home", home, "community", community, "day",
                            day, "interval_s", (json_int_t)interval_s, "reading", "trades",
                            json_array(), "positions", json_array());
    if (!doc)
        return WEB_DATA_E_NOMEM;
    int rc = WEB_DATA_E_DB;
    if (p.meter_id[0] && add_reading(db, doc, p.meter_id, now_ms))
        goto out;
    /* its orders of the latest two intervals it sent orders for: this and the next one while
     * the market runs */
    json_t *orders = json_array();
    if (!orders || json_object_set_new(doc, "orders", orders) ||
        ctl_dash_orders_of(db, home, 2, on_order, orders))
        goto out;
    trade_acc ta = {json_object_get(doc, "trades"), interval_s};
    if (ctl_dash_trades_of(db, home, from, to, on_trade, &ta))
        goto out;
    /* the day and its calendar month (UTC) in one pass over the home's statement */
    pos_acc pa = {.arr = json_object_get(doc, "positions"), .interval_s = interval_s};
    int64_t y, m, d;
    mkt_civil_from_days(floor_div(day_utc, DAY_S), &y, &m, &d);
    ctl_statement_range mr;
    ctl_statement_month(y, m, &mr);
    pos_acc ma = {.arr = NULL, .interval_s = interval_s, .day = &pa, .day_from = from,
                  .day_to = to};
    if (positions(db, home, floor_div(mr.from_utc + interval_s - 1, interval_s),
                  floor_div(mr.to_utc + interval_s - 1, interval_s), &ma))
        goto out;
    json_object_set_new(doc, "bill", bill_json(&pa));
    json_t *month = bill_json(&ma);
    char mname[16];
    snprintf(mname, sizeof mname, "%04d-%02d", (int)y, (int)m);
    json_object_set_new(month, "month", json_string(mname));
    json_object_set_new(doc, "month_bill", month);
    if (add_credits(db, doc, home, &mr, mname) || add_preference(db, doc, home))
        goto out;
    rc = WEB_DATA_OK;
out:
    if (rc)
        json_decref(doc);
    else
        *out = doc;
    return rc;
}

int web_home_proof(ctl_db *db, const char *home, int64_t interval_id, json_t **out)
{
    *out = NULL;
    ctl_participant p;
    int64_t number, index;
    int found;
    char err[200];
    if (ctl_registry_lookup(db, home, &p) != 0 || p.role != CTL_ROLE_HOME ||
        ctl_ledger_participant_number(db, home, &number, err, sizeof err) != 0)
        return WEB_DATA_NOT_FOUND;
    if (ctl_ledger_position_index(db, number, interval_id, &index, &found))
        return WEB_DATA_E_DB;
    if (!found)
        return WEB_DATA_NOT_FOUND;
    ctl_lj_proof pr;
    memset(&pr, 0, sizeof pr);
    uint8_t txid[STL_ID_LEN];
    int rc = WEB_DATA_E_DB;
    char *text = NULL;
    char community[STL_COMMUNITY_MAX + 1], vkey[512];
    if (ctl_ledger_inclusion_proof(db, NULL, index, -1, &pr, txid, err, sizeof err) != CTL_LEDGER_OK ||
        ctl_ledger_meta(db, community, vkey, sizeof vkey) != CTL_LEDGER_OK)
        goto out;
    rc = WEB_DATA_E_NOMEM;
    if (!(text = ctl_lj_proof_format(&pr, txid)))
        goto out;
    json_t *proof = json_loads(text, 0, NULL);
    if (!proof)
        goto out;
    *out = json_pack("{sI so ss}", "interval_id", (json_int_t)interval_id, "proof", proof, "vkey",
                     vkey);
    rc = *out ? WEB_DATA_OK : WEB_DATA_E_NOMEM;
out:
    free(text);
    ctl_lj_proof_free(&pr);
    return rc;
}

int web_ledger_key(ctl_db *db, json_t **out)
{
    *out = NULL;
    char community[STL_COMMUNITY_MAX + 1], vkey[512];
    if (ctl_ledger_meta(db, community, vkey, sizeof vkey) != CTL_LEDGER_OK || !vkey[0])
        return WEB_DATA_NOT_FOUND;
    *out = json_pack("{ss}", "vkey", vkey);
    return *out ? WEB_DATA_OK : WEB_DATA_E_NOMEM;
}

/* ---- the community ---- */

static int on_interval(void *ctx, const ctl_dash_interval *iv)
{
    json_t *o = json_pack(
        "{sI sI sI sI sb sI sI sI sI sI sI sb}", "interval_id", (json_int_t)iv->interval_id,
        "start_utc", (json_int_t)iv->start_utc, "orders", (json_int_t)iv->n_orders, "trades",
        (json_int_t)iv->n_trades, "has_price", iv->has_price, "price_uc_per_kwh",
        (json_int_t)iv->price_uc_per_kwh, "local_wh", (json_int_t)iv->matched_wh,
        "grid_bought_wh", (json_int_t)iv->grid_bought_wh, "grid_sold_wh",
        (json_int_t)iv->grid_sold_wh, "retail_uc_per_kwh", (json_int_t)iv->retail_uc_per_kwh,
        "feed_in_uc_per_kwh", (json_int_t)iv->feed_in_uc_per_kwh, "settled", iv->settled);
    return !o || json_array_append_new(ctx, o) ? -2 : 0;
}

typedef struct {
    ctl_db *db;
    json_t *arr;
    int64_t from, to, interval_s, now_ms;
    int err;
} homes_acc;

typedef struct {
    json_t *arr;
    int64_t interval_s;
} dispute_acc;

static int on_dispute(void *ctx, int64_t interval_id, int64_t disputed, int64_t flagged)
{
    dispute_acc *a = ctx;
    json_t *o = json_pack("{sI sI sI sI}", "interval_id", (json_int_t)interval_id, "start_utc",
                          (json_int_t)(interval_id * a->interval_s), "disputed",
                          (json_int_t)disputed, "peer_flagged", (json_int_t)flagged);
    return !o || json_array_append_new(a->arr, o) ? -2 : 0;
}

static void utc_text(int64_t t, char buf[24])
{
    int64_t y, m, d, s = t - floor_div(t, DAY_S) * DAY_S;
    mkt_civil_from_days(floor_div(t, DAY_S), &y, &m, &d);
    snprintf(buf, 24, "%04d-%02d-%02d %02d:%02d", (int)y, (int)m, (int)d, (int)(s / 3600),
             (int)(s / 60 % 60));
}

static int alert(json_t *alerts, const char *kind, json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int alert(json_t *alerts, const char *kind, json_t *extra, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_t *o = extra ? extra : json_object();
    if (!o || json_object_set_new(o, "kind", json_string(kind)) ||
        json_object_set_new(o, "text", json_string(text)) || json_array_append_new(alerts, o))
        return -1;
    return 0;
}

/* The coordinator's alerts, each {"kind", "text", ...}, from the finished document: meters
 * silent longer than rules->silent_after_s, homes with held positions, intervals with a
 * boundary dispute or a peer-flagged home, failed chain transactions, settlement lagging more
 * than rules->lag_alert_s behind the clock. */
static int add_alerts(json_t *doc, const web_alert_rules *rules)
{
    json_t *alerts = json_array();
    if (!alerts || json_object_set_new(doc, "alerts", alerts))
        return -1;
    size_t i;
    json_t *h;
    json_t *silent = json_array();
    char names[400] = "";
    size_t used = 0;
    json_array_foreach(json_object_get(doc, "homes"), i, h) {
        json_t *r = json_object_get(h, "reading");
        const char *id = json_string_value(json_object_get(h, "id"));
        if (json_is_null(r) || !r ||
            json_integer_value(json_object_get(r, "age_s")) > rules->silent_after_s) {
            json_array_append_new(silent, json_string(id));
            if (used < sizeof names - 1)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s",
                                         used ? ", " : "", id);
        }
    }
    if (json_array_size(silent)) {
        if (alert(alerts, "meter_silent",
                  json_pack("{so sI}", "homes", json_incref(silent), "after_s",
                            (json_int_t)rules->silent_after_s),
                  "meter silent over %lld min: %s%s", (long long)(rules->silent_after_s / 60),
                  names, used >= sizeof names - 1 ? " ..." : ""))
            goto fail;
    }
    json_decref(silent);
    silent = NULL;
    json_array_foreach(json_object_get(doc, "homes"), i, h) {
        int64_t held = json_integer_value(json_object_get(h, "held"));
        const char *id = json_string_value(json_object_get(h, "id"));
        if (held && alert(alerts, "held", json_pack("{ss sI}", "home", id, "held", (json_int_t)held),
                          "%s: %lld held interval(s) today, last %s", id, (long long)held,
                          json_string_value(json_object_get(h, "last_status"))))
            goto fail;
    }
    json_t *d;
    json_array_foreach(json_object_get(doc, "disputes"), i, d) {
        int64_t iv = json_integer_value(json_object_get(d, "interval_id"));
        int64_t nd = json_integer_value(json_object_get(d, "disputed"));
        int64_t nf = json_integer_value(json_object_get(d, "peer_flagged"));
        char t[24];
        utc_text(json_integer_value(json_object_get(d, "start_utc")), t);
        if (nd && alert(alerts, "disputed", json_pack("{sI sI}", "interval_id", (json_int_t)iv,
                                                      "homes", (json_int_t)nd),
                        "interval %s: boundary balance failed, %lld home(s) held (disputed)", t,
                        (long long)nd))
            goto fail;
        if (nf && alert(alerts, "peer_flagged", json_pack("{sI sI}", "interval_id", (json_int_t)iv,
                                                          "homes", (json_int_t)nf),
                        "interval %s: %lld home(s) exported more than their neighbours allow", t,
                        (long long)nf))
            goto fail;
    }
    int64_t failed = json_integer_value(json_object_get(json_object_get(doc, "outbox"), "failed"));
    if (failed && alert(alerts, "chain_failed", json_pack("{sI}", "failed", (json_int_t)failed),
                        "Solana: %lld transaction(s) failed", (long long)failed))
        goto fail;
    json_t *st = json_object_get(doc, "settlement");
    json_t *lag = json_object_get(st, "lag_s");
    if (json_is_integer(lag) && json_integer_value(lag) > rules->lag_alert_s &&
        alert(alerts, "settlement_lag", json_pack("{sI}", "lag_s", (json_int_t)json_integer_value(lag)),
              "settlement lags %lld %s behind the clock (%lld cleared interval(s) unsettled)",
              (long long)(json_integer_value(lag) / (json_integer_value(lag) >= 172800 ? 86400
                                                     : json_integer_value(lag) >= 7200 ? 3600
                                                                                       : 60)),
              json_integer_value(lag) >= 172800 ? "days"
              : json_integer_value(lag) >= 7200 ? "hours"
                                                : "min",
              (long long)json_integer_value(json_object_get(st, "unsettled"))))
        goto fail;
    return 0;
fail:
    json_decref(silent);
    return -1;
}

/* doc's "settlement": the last cleared and settled intervals, how far settlement is behind
 * the clock (now minus the end of the last settled interval; null before any), and the cleared
 * intervals without a ledger block. */
static int add_settlement(ctl_db *db, json_t *doc, int64_t interval_s, int64_t now_ms)
{
    web_marks m;
    int64_t unsettled;
    if (web_live_marks(db, &m) || ctl_dash_unsettled(db, &unsettled))
        return -1;
    json_t *j = json_pack("{sI sI sI}", "last_cleared_id", (json_int_t)m.cleared_id,
                          "last_settled_id", (json_int_t)m.settled_id, "unsettled",
                          (json_int_t)unsettled);
    if (!j)
        return -1;
    if (m.settled_id >= 0) {
        int64_t end = (m.settled_id + 1) * interval_s;
        json_object_set_new(j, "last_settled_end_utc", json_integer(end));
        json_object_set_new(j, "lag_s", json_integer(floor_div(now_ms, 1000) - end));
    } else {
        json_object_set_new(j, "last_settled_end_utc", json_null());
        json_object_set_new(j, "lag_s", json_null());
    }
    return json_object_set_new(doc, "settlement", j) ? -1 : 0;
}

static int on_participant(const ctl_participant *p, void *ctx)
{
    homes_acc *a = ctx;
    if (p->role != CTL_ROLE_HOME)
        return 0;
    json_t *o = json_pack("{ss ss sn}", "id", p->id, "meter_id", p->meter_id, "reading");
    if (!o || json_array_append_new(a->arr, o))
        return a->err = -2;
    if (p->meter_id[0] && add_reading(a->db, o, p->meter_id, a->now_ms))
        return a->err = -1;
    pos_acc pa = {.arr = json_array(), .interval_s = a->interval_s};
    if (!pa.arr)
        return a->err = -2;
    int rc = positions(a->db, p->id, a->from, a->to, &pa);
    const char *last = "none";
    size_t n = json_array_size(pa.arr);
    if (n)
        last = json_string_value(json_object_get(json_array_get(pa.arr, n - 1), "status"));
    json_object_set_new(o, "positions", json_integer(pa.n));
    json_object_set_new(o, "held", json_integer(pa.held));
    json_object_set_new(o, "last_status", json_string(last));
    json_object_set_new(o, "net_uc", json_integer(pa.net_uc));
    json_decref(pa.arr);
    if (rc)
        return a->err = -1;
    ctl_peer_trust t;
    if (ctl_peer_trust_get(a->db, p->id, &t) != CTL_DB_OK)
        return a->err = -1;
    json_object_set_new(o, "disputed", json_integer(t.disputed));
    json_object_set_new(o, "trust_permille", json_integer(t.score_permille));
    return 0;
}

int web_community_day(ctl_db *db, int64_t day_utc, int64_t now_ms, const web_alert_rules *rules,
                      json_t **out)
{
    *out = NULL;
    char community[80], day[16];
    int64_t from, to, interval_s;
    if (day_ids(db, day_utc, &from, &to, community, sizeof community, &interval_s))
        return WEB_DATA_E_DB;
    day_name(day_utc, day);
    json_t *doc = json_pack("{ss ss sI so so sn}", "community", community, "day", day,
                            "interval_s", (json_int_t)interval_s, "intervals", json_array(),
                            "homes", json_array(), "outbox");
    if (!doc)
        return WEB_DATA_E_NOMEM;
    int rc = WEB_DATA_E_DB;
    ctl_sol_outbox *ob = NULL;
    if (ctl_dash_intervals(db, from, to, on_interval, json_object_get(doc, "intervals")))
        goto out;
    homes_acc ha = {db, json_object_get(doc, "homes"), from, to, interval_s, now_ms, 0};
    if (ctl_registry_list(db, on_participant, &ha) || ha.err)
        goto out;
    size_t c[4];
    if (ctl_sol_outbox_open(db, &ob) || ctl_sol_outbox_totals(ob, c))
        goto out;
    json_object_set_new(doc, "outbox",
                        json_pack("{sI sI sI sI}", "built", (json_int_t)c[CTL_SOLOB_BUILT],
                                  "submitted", (json_int_t)c[CTL_SOLOB_SUBMITTED], "confirmed",
                                  (json_int_t)c[CTL_SOLOB_CONFIRMED], "failed",
                                  (json_int_t)c[CTL_SOLOB_FAILED]));
    dispute_acc da = {json_array(), interval_s};
    if (!da.arr || json_object_set_new(doc, "disputes", da.arr) ||
        ctl_dash_disputes(db, from, to, on_dispute, &da) ||
        add_settlement(db, doc, interval_s, now_ms) || add_alerts(doc, rules))
        goto out;
    rc = WEB_DATA_OK;
out:
    ctl_sol_outbox_close(ob);
    if (rc)
        json_decref(doc);
    else
        *out = doc;
    return rc;
}

/* ---- live updates ---- */

int web_live_marks(ctl_db *db, web_marks *now)
{
    int found;
    now->reading_ts_ms = -1;
    now->cleared_id = now->settled_id = -1;
    if (ctl_dash_last_cleared(db, &now->cleared_id, &found))
        return WEB_DATA_E_DB;
    if (!found)
        now->cleared_id = -1;
    if (ctl_dash_last_settled(db, &now->settled_id, &found))
        return WEB_DATA_E_DB;
    if (!found)
        now->settled_id = -1;
    return WEB_DATA_OK;
}

static int push_event(json_t *events, const char *name, json_t *data)
{
    json_t *e = data ? json_pack("{ss so}", "event", name, "data", data) : NULL;
    return !e || json_array_append_new(events, e) ? WEB_DATA_E_NOMEM : WEB_DATA_OK;
}

/* The first interval id to report after seen up to now: a reader far behind gets the last
 * WEB_LIVE_BACKLOG only. */
static int64_t backlog_from(int64_t seen, int64_t now)
{
    int64_t from = seen + 1;
    return now - from >= WEB_LIVE_BACKLOG ? now - WEB_LIVE_BACKLOG + 1 : from;
}

typedef struct {
    json_t *events;
    json_t *trades; /* the home's trades of the range, matched by interval_id */
    int coordinator;
} iv_acc;

static int on_live_interval(void *ctx, const ctl_dash_interval *iv)
{
    iv_acc *a = ctx;
    json_t *arr = json_array();
    if (!arr || on_interval(arr, iv)) {
        json_decref(arr);
        return -2;
    }
    json_t *o = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    if (!a->coordinator) {
        /* a home gets the public price and its own trades, not the community's volumes */
        json_t *mine = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(a->trades, i, t)
            if (json_integer_value(json_object_get(t, "interval_id")) == iv->interval_id)
                json_array_append(mine, t);
        json_t *h = json_pack("{sI sI sb sI so}", "interval_id", (json_int_t)iv->interval_id,
                              "start_utc", (json_int_t)iv->start_utc, "has_price", iv->has_price,
                              "price_uc_per_kwh", (json_int_t)iv->price_uc_per_kwh, "trades",
                              mine);
        json_decref(o);
        o = h;
    }
    return push_event(a->events, "interval", o) ? -2 : 0;
}

int web_home_events(ctl_db *db, const char *home, const web_marks *now, web_marks *seen,
                    int64_t now_ms, json_t *events)
{
    ctl_participant p;
    if (ctl_registry_lookup(db, home, &p) != 0 || p.role != CTL_ROLE_HOME)
        return WEB_DATA_NOT_FOUND;
    if (p.meter_id[0]) {
        mtr_sample r;
        int found;
        if (ctl_dash_latest_reading(db, p.meter_id, &r, &found))
            return WEB_DATA_E_DB;
        if (found && r.ts_ms > seen->reading_ts_ms) {
            json_t *j = reading_json(&r, now_ms);
            int tier;
            int64_t n;
            if (ctl_reading_tier_min(db, p.meter_id, r.ts_ms, r.ts_ms + 1, &tier, &n) != CTL_DB_OK) {
                json_decref(j);
                return WEB_DATA_E_DB;
            }
            json_object_set_new(j, "tier", json_integer(tier));
            if (push_event(events, "reading", j))
                return WEB_DATA_E_NOMEM;
            seen->reading_ts_ms = r.ts_ms;
        }
    }
    char community[80];
    int64_t interval_s = 900;
    int found = 0;
    if (ctl_dash_identity(db, community, sizeof community, &interval_s, &found))
        return WEB_DATA_E_DB;
    if (now->cleared_id > seen->cleared_id) {
        int64_t from = backlog_from(seen->cleared_id, now->cleared_id), to = now->cleared_id + 1;
        trade_acc ta = {json_array(), interval_s};
        iv_acc a = {events, ta.arr, 0};
        int rc = !ta.arr || ctl_dash_trades_of(db, home, from, to, on_trade, &ta) ||
                 ctl_dash_intervals(db, from, to, on_live_interval, &a);
        json_decref(ta.arr);
        if (rc)
            return WEB_DATA_E_DB;
        seen->cleared_id = now->cleared_id;
    }
    if (now->settled_id > seen->settled_id) {
        int64_t from = backlog_from(seen->settled_id, now->settled_id), to = now->settled_id + 1;
        pos_acc pa = {.arr = json_array(), .interval_s = interval_s};
        if (!pa.arr)
            return WEB_DATA_E_NOMEM;
        if (positions(db, home, from, to, &pa)) {
            json_decref(pa.arr);
            return WEB_DATA_E_DB;
        }
        if (push_event(events, "settled",
                       json_pack("{sI so}", "interval_id", (json_int_t)now->settled_id,
                                 "positions", pa.arr)))
            return WEB_DATA_E_NOMEM;
        seen->settled_id = now->settled_id;
    }
    return WEB_DATA_OK;
}

int web_community_events(ctl_db *db, const web_marks *now, web_marks *seen, json_t *events)
{
    if (now->cleared_id > seen->cleared_id) {
        iv_acc a = {events, NULL, 1};
        if (ctl_dash_intervals(db, backlog_from(seen->cleared_id, now->cleared_id),
                               now->cleared_id + 1, on_live_interval, &a))
            return WEB_DATA_E_DB;
        seen->cleared_id = now->cleared_id;
    }
    if (now->settled_id > seen->settled_id) {
        if (push_event(events, "settled",
                       json_pack("{sI}", "interval_id", (json_int_t)now->settled_id)))
            return WEB_DATA_E_NOMEM;
        seen->settled_id = now->settled_id;
    }
    return WEB_DATA_OK;
}
