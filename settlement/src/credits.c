/*
 * Energy credits of one settled interval (mgx/credits.h): mint on verified export, transfer on
 * local sale, retire on same-interval consumption, keep the rest. Four passes over the
 * interval's positions and trades; a trade's seller and buyer are found by binary search in the
 * positions, which the reconciler returns ascending by participant.
 */
#include "mgx/credits.h"

#include <string.h>

static size_t find(const stl_position *p, size_t np, uint64_t id)
{
    size_t lo = 0, hi = np;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].participant < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < np && p[lo].participant == id ? lo : SIZE_MAX;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int stl_credit_valid(const stl_credit *c)
{
    if (c->status > STL_POS_STATUS_MAX || c->tier > STL_TIER_MAX || c->min_tier > STL_TIER_MAX)
        return 0;
    if (c->minted_wh < 0 || c->in_wh < 0 || c->out_wh < 0 || c->retired_wh < 0 || c->kept_wh < 0 ||
        c->out_wh > c->minted_wh)
        return 0;
    /* each amount is at most 2^63-1, so compute in uint64 steps that cannot wrap */
    if (c->minted_wh > INT64_MAX - c->in_wh)
        return 0;
    int64_t have = c->minted_wh + c->in_wh - c->out_wh;
    return c->retired_wh <= have && c->kept_wh == have - c->retired_wh;
}

int stl_credit_nonzero(const stl_credit *c)
{
    return c->minted_wh || c->in_wh || c->out_wh || c->retired_wh;
}

static int add(int64_t *sum, int64_t v)
{
    if (v > INT64_MAX - *sum)
        return STL_E_OVERFLOW;
    *sum += v;
    return STL_OK;
}

int stl_credits_compute(const stl_position *positions, size_t np, const stl_settled_trade *trades,
                        size_t nt, uint8_t min_tier, stl_credit *out, stl_credit_move *moves,
                        stl_credit_totals *tot)
{
    if ((np && (!positions || !out)) || (nt && !trades) || min_tier > STL_TIER_MAX)
        return STL_E_INVAL;
    stl_credit_totals t;
    memset(&t, 0, sizeof t);
    /* mint */
    for (size_t i = 0; i < np; i++) {
        const stl_position *p = &positions[i];
        if ((i > 0 && positions[i - 1].participant >= p->participant) || p->export_wh < 0 ||
            p->import_wh < 0 || p->status > STL_POS_STATUS_MAX || p->tier > STL_TIER_MAX)
            return STL_E_INVAL;
        stl_credit *c = &out[i];
        memset(c, 0, sizeof *c);
        c->participant = p->participant;
        c->status = (uint8_t)p->status;
        c->tier = p->tier;
        c->min_tier = min_tier;
        if (nt + i > UINT32_MAX)
            return STL_E_INVAL;
        c->source_seq = (uint32_t)(nt + i);
        if (p->status == STL_POS_GOOD && p->tier >= min_tier) {
            c->minted_wh = p->export_wh;
            if (add(&t.verified_export_wh, p->export_wh) != STL_OK)
                return STL_E_OVERFLOW;
        }
        if (p->status == STL_POS_GOOD && add(&t.import_wh, p->import_wh) != STL_OK)
            return STL_E_OVERFLOW;
    }
    /* transfer, from minted balances only, in market order */
    for (size_t k = 0; k < nt; k++) {
        const stl_settled_trade *tr = &trades[k];
        size_t s = find(positions, np, tr->seller), b = find(positions, np, tr->buyer);
        if (s == SIZE_MAX || b == SIZE_MAX || s == b || tr->delivered_wh < 0)
            return STL_E_INVAL;
        int64_t wh = min64(tr->delivered_wh, out[s].minted_wh - out[s].out_wh);
        out[s].out_wh += wh;
        out[b].in_wh += wh; /* <= the sum of minted, which fits */
        if (moves)
            moves[k] = (stl_credit_move){wh, 0};
        t.transferred_wh += wh;
    }
    /* retire own credits first: what it made and did not sell */
    for (size_t i = 0; i < np; i++)
        if (positions[i].status == STL_POS_GOOD)
            out[i].retired_wh = min64(positions[i].import_wh, out[i].minted_wh - out[i].out_wh);
    /* then bought credits, up to its import; kept_wh holds, until the last pass, what of the
     * bought credits is retired and not yet attributed to a trade */
    for (size_t i = 0; i < np; i++) {
        if (positions[i].status != STL_POS_GOOD)
            continue;
        int64_t r = min64(positions[i].import_wh - out[i].retired_wh, out[i].in_wh);
        out[i].retired_wh += r;
        out[i].kept_wh = r;
    }
    /* attributed to the purchases in market order (whose credits a certificate names) */
    for (size_t k = 0; moves && k < nt; k++) {
        stl_credit *c = &out[find(positions, np, trades[k].buyer)];
        int64_t r = min64(c->kept_wh, moves[k].wh);
        moves[k].retired_wh = r;
        c->kept_wh -= r;
    }
    for (size_t i = 0; i < np; i++) {
        stl_credit *c = &out[i];
        c->kept_wh = c->minted_wh + c->in_wh - c->out_wh - c->retired_wh;
        t.minted_wh += c->minted_wh;
        t.retired_wh += c->retired_wh;
        t.kept_wh += c->kept_wh;
    }
    if (tot)
        *tot = t;
    return STL_OK;
}

int stl_credit_trueup(const stl_position *orig, uint64_t source_log_index, uint8_t min_tier,
                      stl_credit *out)
{
    if (!orig || !out || min_tier > STL_TIER_MAX || orig->status > STL_POS_STATUS_MAX ||
        orig->tier > STL_TIER_MAX || orig->status == STL_POS_GOOD ||
        orig->status == STL_POS_MISSING || source_log_index > UINT32_MAX || orig->export_wh < 0)
        return STL_E_INVAL;
    memset(out, 0, sizeof *out);
    out->participant = orig->participant;
    out->status = (uint8_t)orig->status;
    out->tier = orig->tier;
    out->min_tier = min_tier;
    out->source_seq = (uint32_t)source_log_index;
    if (orig->tier >= min_tier)
        out->minted_wh = out->kept_wh = orig->export_wh;
    return STL_OK;
}

int stl_credit_is_trueup(const stl_credit *c)
{
    return c->status != STL_POS_GOOD;
}
