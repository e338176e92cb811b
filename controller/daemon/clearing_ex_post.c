/*
 * Post-delivery clearing of one interval (clearing_ex_post.h): metered net energy and standing
 * preferences in, a book out to clearing.c.
 */
#include "daemon/clearing_ex_post.h"

#include "common/errbuf.h"
#include "daemon/clearing.h"
#include "db/prefs.h"
#include "mgx/ex_post.h"
#include "settle/settle_input.h"

#include <stdlib.h>
#include <string.h>

int ctl_clear_interval_ex_post(ctl_store *s, int64_t interval_id, int64_t start_utc,
                               int64_t length_s, const mkt_params *params, const stm_rules *rules,
                               const ctl_trust_rules *trust, const ctl_topology *topo,
                               int64_t cleared_ms, int *did_clear, ctl_ex_post_book_info *info,
                               char *err, size_t errlen)
{
    if (!s || !params || !rules || !did_clear || length_s <= 0)
        return CTL_ST_E_INVAL;
    *did_clear = 0;
    ctl_ex_post_book_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    int cleared = 0;
    int rc = ctl_store_interval_cleared(s, interval_id, &cleared);
    if (rc != CTL_ST_OK || cleared)
        return rc;
    /* the metered energy exactly as settlement will read it: the interval has no trades yet,
     * so the input holds every home of the registry that has a meter */
    ctl_interval_result r;
    memset(&r, 0, sizeof r);
    r.interval_id = interval_id;
    r.start_utc = start_utc;
    r.length_s = length_s;
    r.params = *params;
    ctl_settle_input x;
    if ((rc = ctl_settle_input_build(s, &r, rules, trust, &x, err, errlen)) != CTL_ST_OK)
        return rc;
    size_t n = x.n_members;
    mkt_ex_post_home *homes = calloc(n ? n : 1, sizeof *homes);
    mkt_preference *prefs = calloc(n ? n : 1, sizeof *prefs);
    mkt_order *book = calloc(n ? n : 1, sizeof *book);
    size_t n_homes = 0, n_book = 0;
    if (!homes || !prefs || !book) {
        rc = CTL_ST_E_NOMEM;
        goto out;
    }
    info->homes = n;
    for (size_t i = 0; i < n; i++) {
        const ctl_settle_member *m = &x.members[i];
        if (m->metered.status != STM_GOOD)
            continue; /* flagged or missing: no local trade; settlement holds it */
        info->metered++;
        int found = 0;
        if ((rc = ctl_prefs_valid(ctl_store_db(s), m->name, interval_id, &prefs[n_homes],
                                  &found)) != CTL_ST_OK) {
            ctl_errf(err, errlen, "preference of %s: %s", m->name, ctl_store_errmsg(s));
            goto out;
        }
        info->with_pref += (size_t)found;
        homes[n_homes] =
            (mkt_ex_post_home){m->market_id, m->metered.export_wh - m->metered.import_wh,
                               found ? &prefs[n_homes] : NULL};
        n_homes++;
    }
    mkt_error_at at;
    int mrc = mkt_ex_post_orders(params, homes, n_homes, book, n, &n_book, &at);
    if (mrc != MKT_OK) {
        ctl_errf(err, errlen, "ex_post orders: %s", mkt_strerror(mrc));
        rc = CTL_ST_E_MARKET;
        goto out;
    }
    info->orders = n_book;
    rc = ctl_clear_interval_book(s, interval_id, start_utc, length_s, params, topo, cleared_ms,
                                 book, n_book, did_clear);
    if (rc != CTL_ST_OK && rc != CTL_ST_E_MARKET)
        ctl_errf(err, errlen, "%s (%s)", ctl_store_strerror(rc), ctl_store_errmsg(s));
out:
    free(book);
    free(prefs);
    free(homes);
    ctl_settle_input_free(&x);
    return rc;
}
