/*
 * Order admission rules; the order of the checks and why it is that order are in admit.h.
 * Times: an interval i of length L covers [i*L, (i+1)*L) UTC seconds; everything is compared in
 * milliseconds so that a controller clock with sub-second resolution decides exactly.
 */
#include "orders/admit.h"

#include "common/interval.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static ctl_admit_verdict
reject(ctl_admit_result *r, int reason, const char *fmt, ...)
{
    r->verdict = CTL_ADMIT_REJECT;
    r->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
    return r->verdict;
}

ctl_admit_verdict ctl_admit_check(const ctl_admit_params *p, int64_t now_ms,
                                  const char *topic_participant, const ctl_order_msg *m,
                                  const ctl_participant *entry, const ctl_admit_history *h,
                                  ctl_admit_result *r)
{
    memset(r, 0, sizeof *r);
    char why[CTL_DETAIL_MAX];
    if (!p || !m || !h || !p->community || p->interval_s < 1 ||
        p->interval_s > CTL_INTERVAL_S_MAX || p->gate_closure_s < 0 ||
        p->max_ahead_intervals < 1)
        return reject(r, CTL_R_INTERNAL, "admission called with invalid settings");
    if (ctl_order_validate(m, why, sizeof why) != CTL_R_OK)
        return reject(r, CTL_R_MALFORMED, "%s", why);
    if (strcmp(m->community, p->community) != 0)
        return reject(r, CTL_R_WRONG_COMMUNITY, "order is for community \"%s\", this is \"%s\"",
                      m->community, p->community);
    if (topic_participant && strcmp(topic_participant, m->participant) != 0)
        return reject(r, CTL_R_TOPIC_MISMATCH, "published on order/%.64s but signed by \"%s\"",
                      topic_participant, m->participant);
    /* A resend is answered the same way whenever it comes, even after gate closure: the home
     * must learn the fate of an order it sent in time, not be told it is late. */
    if (h->nonce == CTL_NONCE_SAME) {
        r->verdict = CTL_ADMIT_DUPLICATE;
        r->reason = CTL_R_OK;
        snprintf(r->detail, sizeof r->detail, "order already received");
        return r->verdict;
    }
    if (h->nonce != CTL_NONCE_NEW)
        return reject(r, CTL_R_REPLAY, "nonce already used by another order of \"%s\"",
                      m->participant);
    if (!entry)
        return reject(r, CTL_R_UNKNOWN_PARTICIPANT, "\"%s\" is not in the registry",
                      m->participant);
    if (entry->role != CTL_ROLE_HOME)
        return reject(r, CTL_R_NOT_ALLOWED, "role \"%s\" may not submit orders",
                      ctl_role_name((int)entry->role) ? ctl_role_name((int)entry->role) : "?");
    if (m->interval_s != p->interval_s)
        return reject(r, CTL_R_WRONG_INTERVAL_LENGTH, "interval_s is %u, the community uses %u",
                      m->interval_s, p->interval_s);

    /* validate() bounds interval_id * interval_s * 1000 and expiry_s * 1000 inside int64. */
    int64_t L = (int64_t)p->interval_s;
    int64_t start_ms = m->interval_id * L * 1000;
    int64_t gate_ms = start_ms - p->gate_closure_s * 1000;
    int64_t current = ctl_floor_div(now_ms, L * 1000);
    if (now_ms >= m->expiry_s * 1000)
        return reject(r, CTL_R_EXPIRED, "expired at %lld s, now is %lld ms",
                      (long long)m->expiry_s, (long long)now_ms);
    if (now_ms >= start_ms)
        return reject(r, CTL_R_STALE_INTERVAL, "interval %lld started at %lld s, now is %lld ms",
                      (long long)m->interval_id, (long long)(start_ms / 1000), (long long)now_ms);
    if (now_ms >= gate_ms)
        return reject(r, CTL_R_GATE_CLOSED,
                      "gate for interval %lld closed at %lld ms (%lld s before its start), now "
                      "is %lld ms",
                      (long long)m->interval_id, (long long)gate_ms,
                      (long long)p->gate_closure_s, (long long)now_ms);
    if (m->interval_id - current > p->max_ahead_intervals)
        return reject(r, CTL_R_FAR_FUTURE_INTERVAL,
                      "interval %lld is %lld intervals ahead, at most %lld accepted",
                      (long long)m->interval_id, (long long)(m->interval_id - current),
                      (long long)p->max_ahead_intervals);

    if (h->has_current && h->current_created_ms >= m->created_ms)
        return reject(r, CTL_R_SUPERSEDED,
                      "created_ms %lld is not after the order on file (created_ms %lld)",
                      (long long)m->created_ms, (long long)h->current_created_ms);
    r->verdict = h->has_current ? CTL_ADMIT_REPLACE : CTL_ADMIT_ACCEPT;
    r->reason = h->has_current ? CTL_R_REPLACED : CTL_R_OK;
    return r->verdict;
}

ctl_admit_verdict ctl_admit_finish(ctl_admit_result *r, int sig_rc)
{
    if (r->verdict != CTL_ADMIT_ACCEPT && r->verdict != CTL_ADMIT_REPLACE)
        return r->verdict;
    if (sig_rc == CTL_R_OK)
        return r->verdict;
    if (sig_rc == CTL_R_MALFORMED)
        return reject(r, CTL_R_MALFORMED, "order has no canonical encoding");
    return reject(r, CTL_R_BAD_SIGNATURE, "signature does not verify with the registered key");
}

ctl_admit_verdict ctl_admit(const ctl_admit_params *p, int64_t now_ms,
                            const char *topic_participant, const ctl_order_msg *m,
                            const ctl_participant *entry, const ctl_admit_history *h,
                            ctl_admit_result *r)
{
    ctl_admit_verdict v = ctl_admit_check(p, now_ms, topic_participant, m, entry, h, r);
    if (v != CTL_ADMIT_ACCEPT && v != CTL_ADMIT_REPLACE)
        return v;
    return ctl_admit_finish(r, ctl_order_verify(m, entry->pubkey));
}

ctl_admit_history ctl_admit_history_of(const ctl_order_history *h)
{
    return (ctl_admit_history){h->nonce_seen ? CTL_NONCE_OTHER : CTL_NONCE_NEW, h->has_current,
                               h->current_created_ms};
}

void ctl_admit_record(ctl_order_rec *o, ctl_admit_verdict v, const ctl_admit_result *r)
{
    int accept = v == CTL_ADMIT_ACCEPT || v == CTL_ADMIT_REPLACE;
    o->status = accept ? CTL_ORDER_ACCEPTED : CTL_ORDER_REJECTED;
    snprintf(o->reason, sizeof o->reason, "%s", ctl_reason_name(r->reason));
}
