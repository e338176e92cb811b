/*
 * Cheating homes through the controller's cross-home checks (cheat_eval.h).
 */
#include "mgx/cheat_eval.h"

#include <string.h>

/* floor(wh x price / 1000) for wh, price >= 0 small enough (the simulator's energies) */
static int64_t value_uc(int64_t wh, int64_t uc_per_kwh)
{
    int64_t v = wh / 1000 * uc_per_kwh + wh % 1000 * uc_per_kwh / 1000;
    return wh >= 0 ? v : -value_uc(-wh, uc_per_kwh);
}

int sim_cheat_interval(const sim_cheat_home *h, size_t n, size_t cheater, sim_cheat_kind kind,
                       int64_t x_percent, const sim_cheat_rules *r, stl_balance_home *s_bal,
                       uint8_t *s_held, stl_peer_home *s_peer, stl_peer_verdict *s_verdict,
                       int64_t *s_sort, sim_cheat_tally *t)
{
    if (!h || !r || !t || !s_bal || !s_held || !s_peer || !s_verdict || !s_sort || n == 0 ||
        x_percent < 0 || x_percent > 100000 || r->loss_permille < 0 || r->loss_permille > 1000)
        return SIM_CHEAT_E_INVAL;
    int64_t imp = 0, exp = 0, pv = 0;
    for (size_t i = 0; i < n; i++) {
        imp += h[i].import_wh;
        exp += h[i].export_wh;
        pv += h[i].pv_wh;
    }
    /* the boundary: the real net plus losses (rounded up), import or export by its sign */
    int64_t through = imp + exp;
    int64_t loss = through / 1000 * r->loss_permille +
                   (through % 1000 * r->loss_permille + 999) / 1000;
    int64_t b_net = imp - exp + loss;
    /* the claims */
    int64_t ci = 0, ce = 0;
    int silent = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t ii = h[i].import_wh, ee = h[i].export_wh;
        if (i == cheater) {
            switch (kind) {
            case SIM_CHEAT_INFLATE:
                ee = ee * (100 + x_percent) / 100;
                break;
            case SIM_CHEAT_NIGHT_PV:
                if (pv == 0)
                    ee += (h[i].pv_wp * x_percent / 1000 * r->len_s + 3599) / 3600;
                break;
            case SIM_CHEAT_SWAP:
                ii = h[i].export_wh;
                ee = h[i].import_wh;
                break;
            case SIM_CHEAT_SILENT:
                ii = ee = 0;
                silent = 1;
                break;
            default:
                break;
            }
            ci = ii;
            ce = ee;
        }
        s_bal[i] = (stl_balance_home){ii, ee, 0};
        /* a silent home has no usable reading: neither peer nor checked */
        s_peer[i] = (stl_peer_home){h[i].pv_wp, ee, h[i].battery_wh, !(silent && i == cheater)};
    }
    stl_balance bal;
    if (stl_boundary_balance(s_bal, n, b_net > 0 ? b_net : 0, b_net < 0 ? -b_net : 0, &r->balance,
                             &bal, s_held) != STL_BALANCE_OK ||
        stl_peer_check(s_peer, n, r->len_s, &r->peer, s_sort, s_verdict) != STL_PEER_OK)
        return SIM_CHEAT_E_INVAL;
    t->intervals++;
    t->disputed += (uint64_t)bal.disputed;
    for (size_t i = 0; i < n; i++) {
        int held = s_held[i] || s_verdict[i].flagged;
        if (i == cheater) {
            /* what the lie earns: claimed export paid, import not claimed not billed */
            int64_t gain = value_uc(ce - h[i].export_wh, r->feed_in_uc_per_kwh) +
                           value_uc(h[i].import_wh - ci, r->retail_uc_per_kwh);
            if (gain > 0) {
                t->cheat_intervals++;
                t->gain_unchecked_uc += gain;
                /* held: nothing paid on the claim, its import carried (layer 6); silent: the
                 * same, the carry bills the import when it reports again */
                if (held || silent)
                    t->detected++;
                else
                    t->gain_checked_uc += gain;
            }
            continue;
        }
        t->home_intervals++;
        if (held) {
            t->honest_held++;
            t->honest_peer += (uint64_t)s_verdict[i].flagged;
            t->honest_unpaid_uc += value_uc(h[i].export_wh, r->feed_in_uc_per_kwh);
        }
    }
    return SIM_CHEAT_OK;
}
