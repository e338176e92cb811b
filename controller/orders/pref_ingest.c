/*
 * One standing preference from the bus to a committed decision and its receipt (see
 * pref_ingest.h). The admission rules are admit.c's, applied to the preference's envelope
 * (community, participant, valid_from as the interval, expiry, nonce, created_ms): one set of
 * rules for everything a home signs.
 */
#include "orders/pref_ingest.h"

#include "db/prefs.h"
#include "db/registry.h"

#include <stdio.h>
#include <string.h>

/* The envelope of a preference as an order, for the admission rules (which never look at the
 * steps). */
static void envelope(const ctl_pref_msg *m, ctl_order_msg *o)
{
    memset(o, 0, sizeof *o);
    memcpy(o->community, m->community, sizeof o->community);
    memcpy(o->participant, m->participant, sizeof o->participant);
    o->interval_id = m->valid_from;
    o->interval_s = m->interval_s;
    o->created_ms = m->created_ms;
    o->expiry_s = m->expiry_s;
    memcpy(o->nonce, m->nonce, sizeof o->nonce);
    o->side = MKT_SELL;
    o->n_steps = 1;
    o->steps[0].energy_wh = 1;
}

static void answer(ctl_pref_outcome *out, int reason, const char *detail, int64_t now_ms)
{
    ctl_receipt r;
    out->reason = reason;
    if (detail != out->detail)
        snprintf(out->detail, sizeof out->detail, "%s", detail ? detail : "");
    ctl_receipt_for_pref(&r, &out->msg, reason, out->detail[0] ? out->detail : NULL, now_ms);
    if (ctl_receipt_to_json(&r, out->receipt, sizeof out->receipt, NULL) != CTL_R_OK)
        out->receipt[0] = '\0';
}

static void count(ctl_pref_stats *st, const ctl_pref_outcome *o)
{
    if (!st)
        return;
    if (o->duplicate)
        st->duplicates++;
    else if (ctl_reason_is_accept(o->reason))
        st->accepted++;
    else if (o->reason >= 0 && o->reason < CTL_R_COUNT)
        st->rejected[o->reason]++;
}

int ctl_pref_ingest(ctl_store *store, const ctl_admit_params *p, const char *topic_participant,
                    const char *payload, size_t len, int64_t now_ms, ctl_pref_stats *stats,
                    ctl_pref_outcome *out)
{
    if (!store || !p || !topic_participant || !out || (!payload && len))
        return CTL_ST_E_INVAL;
    memset(out, 0, sizeof *out);
    if (stats)
        stats->received++;
    int rc = ctl_pref_from_json(payload ? payload : "", len, &out->msg, out->detail,
                                sizeof out->detail);
    uint8_t enc[CTL_PREF_ENC_MAX + CTL_ORDER_SIG_BYTES];
    size_t enc_len = 0;
    if (rc == CTL_R_OK && ctl_pref_encode(&out->msg, enc, &enc_len) != CTL_R_OK)
        rc = CTL_R_MALFORMED;
    if (rc != CTL_R_OK) {
        /* nothing to store: a malformed message claims no nonce */
        if (!ctl_id_valid(out->msg.participant))
            snprintf(out->msg.participant, sizeof out->msg.participant, "%s", topic_participant);
        answer(out, rc, out->detail, now_ms);
        out->stored = 1;
        count(stats, out);
        return CTL_ST_OK;
    }
    out->decoded = 1;
    memcpy(enc + enc_len, out->msg.sig, CTL_ORDER_SIG_BYTES);
    enc_len += CTL_ORDER_SIG_BYTES;

    ctl_db *db = ctl_store_db(store);
    ctl_participant entry;
    memset(&entry, 0, sizeof entry);
    int lrc = ctl_registry_lookup(db, out->msg.participant, &entry);
    int st = CTL_ST_E_DB;
    if (lrc != CTL_REG_OK && lrc != CTL_REG_E_NOT_FOUND)
        goto failed;
    if (ctl_db_begin(db) != 0)
        goto failed;
    ctl_pref_history h;
    if ((st = ctl_prefs_history(db, out->msg.participant, out->msg.nonce, enc, enc_len,
                                out->msg.valid_from, &h)) != CTL_ST_OK) {
        ctl_db_rollback(db);
        goto failed;
    }
    ctl_admit_history ah = {h.nonce_seen == 1   ? CTL_NONCE_SAME
                            : h.nonce_seen == 2 ? CTL_NONCE_OTHER
                                                : CTL_NONCE_NEW,
                            h.has_current, h.current_created_ms};
    ctl_order_msg o;
    envelope(&out->msg, &o);
    ctl_admit_result r;
    ctl_admit_verdict v = ctl_admit_check(p, now_ms, topic_participant, &o,
                                          lrc == CTL_REG_OK ? &entry : NULL, &ah, &r);
    if (v == CTL_ADMIT_ACCEPT || v == CTL_ADMIT_REPLACE)
        v = ctl_admit_finish(&r, ctl_pref_verify(&out->msg, entry.pubkey));
    if (v == CTL_ADMIT_DUPLICATE) {
        ctl_db_rollback(db); /* nothing written */
        out->duplicate = 1;
        out->stored = 1;
        snprintf(out->receipt, sizeof out->receipt, "%s", h.receipt);
        ctl_receipt first;
        out->reason = ctl_receipt_from_json(h.receipt, strlen(h.receipt), &first, NULL, 0) ==
                              CTL_R_OK
                          ? first.reason
                          : CTL_R_OK;
        snprintf(out->detail, sizeof out->detail, "preference already received");
        count(stats, out);
        return CTL_ST_OK;
    }
    answer(out, r.reason, r.detail, now_ms);
    if (v == CTL_ADMIT_REJECT) {
        ctl_db_rollback(db); /* a rejection stores nothing: a forger burns no nonce */
        out->stored = 1;
        count(stats, out);
        return CTL_ST_OK;
    }
    ctl_pref_rec rec = {out->msg.participant, out->msg.nonce, out->msg.valid_from,
                        out->msg.created_ms, now_ms, &out->msg.pref, enc, enc_len, out->receipt};
    st = ctl_prefs_put(db, &rec);
    if (ctl_db_end(db, st == CTL_ST_OK) != 0 && st == CTL_ST_OK)
        st = CTL_ST_E_DB;
    if (st != CTL_ST_OK)
        goto failed;
    out->stored = 1;
    count(stats, out);
    return CTL_ST_OK;
failed:
    out->stored = 0;
    answer(out, CTL_R_INTERNAL, "not stored; resend", now_ms);
    count(stats, out);
    return st == CTL_ST_OK ? CTL_ST_E_DB : st;
}
