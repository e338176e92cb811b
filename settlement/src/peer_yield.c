/*
 * Peer corroboration of generation (peer_yield.h).
 */
#include "mgx/peer_yield.h"

#include <stdlib.h>
#include <string.h>

#define MAX_VALUE INT64_C(1000000000000) /* 1 TWh, 1 TWp: the bound of every input */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int is_peer(const stl_peer_home *h) { return h->usable && h->pv_wp > 0; }

/* ceil(a * b / c) for a, b >= 0 and 0 < c <= 10^7, saturated at INT64_MAX */
static int64_t mul_div_up(int64_t a, int64_t b, int64_t c)
{
    if (a == 0 || b == 0)
        return 0;
    /* a * b may reach 10^24: split a = aq * c + ar */
    int64_t aq = a / c, ar = a % c;
    if (aq > INT64_MAX / b)
        return INT64_MAX;
    int64_t hi = aq * b;
    if (ar && b > (INT64_MAX - c) / ar)
        return INT64_MAX;
    int64_t lo = (ar * b + c - 1) / c;
    return hi > INT64_MAX - lo ? INT64_MAX : hi + lo;
}

int stl_peer_check(const stl_peer_home *homes, size_t n, int64_t len_s,
                   const stl_peer_rules *rules, int64_t *scratch, stl_peer_verdict *out)
{
    if ((n && (!homes || !scratch || !out)) || !rules || len_s <= 0 || len_s > 86400 * 366 ||
        rules->tolerance_permille < 1000 || rules->tolerance_permille > 1000000 ||
        rules->floor_w_per_kwp < 0 || rules->floor_w_per_kwp > 1000000 || rules->min_peers < 1)
        return STL_PEER_E_INVAL;
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        const stl_peer_home *h = &homes[i];
        if (h->pv_wp > MAX_VALUE || h->export_wh < 0 || h->export_wh > MAX_VALUE ||
            h->battery_wh < 0 || h->battery_wh > MAX_VALUE)
            return STL_PEER_E_INVAL;
        memset(&out[i], 0, sizeof out[i]);
        if (is_peer(h)) {
            out[i].yield_wh_per_kwp = h->export_wh * 1000 / h->pv_wp;
            scratch[np++] = out[i].yield_wh_per_kwp;
        }
    }
    qsort(scratch, np, sizeof *scratch, cmp_i64);
    for (size_t i = 0; i < n; i++) {
        const stl_peer_home *h = &homes[i];
        if (!is_peer(h) || np - 1 < rules->min_peers)
            continue;
        /* the others' second highest: the sorted yields without this home's own one. Not a
         * mean or a quartile: homes that use their PV themselves or charge a battery export
         * little, so only the best-placed peers say what the sun gave (in the simulator's
         * street the upper quartile held 2.6 % of honest home-intervals, this 0.13 %); not the
         * highest, so one lying peer does not lift the reference */
        size_t m = np - 1, k = m - 2;
        size_t own = (size_t)((const int64_t *)bsearch(&out[i].yield_wh_per_kwp, scratch, np,
                                                       sizeof *scratch, cmp_i64) -
                              scratch);
        int64_t ref = scratch[k < own ? k : k + 1];
        /* bsearch finds some equal entry; any equal one removed leaves the same others */
        int64_t per_kwp = mul_div_up(ref, rules->tolerance_permille, 1000) +
                          mul_div_up(rules->floor_w_per_kwp, len_s, 3600);
        int64_t allowed = mul_div_up(h->pv_wp, per_kwp, 1000);
        allowed = allowed > INT64_MAX - h->battery_wh ? INT64_MAX : allowed + h->battery_wh;
        out[i].checked = 1;
        out[i].reference_wh_per_kwp = ref;
        out[i].allowed_wh = allowed;
        out[i].flagged = h->export_wh > allowed;
    }
    return STL_PEER_OK;
}
