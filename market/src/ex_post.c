/*
 * Post-delivery (ex_post) clearing inputs: turns each home's verified metered net energy of a
 * delivered interval and its standing preference into one ordinary order for mkt_clear.
 *
 * The prices written here are what makes ex_post individually rational, exactly, in integers:
 * a seller's limit is at least feed-in + MKT_EX_POST_SELL_MARGIN_UC_PER_KWH and a buyer's at
 * most retail (all-in, so the engine's effective bid is at most retail - fee). Why the seller
 * margin: amounts are floored per trade, and a seller whose energy is split over k trades and a
 * grid leg sums k + 1 floors, which can fall up to k uc below the floor of the grid-only bill
 * floor(W * feed_in / 1000). One extra uc per Wh on every local trade pays at least 1 uc per
 * trade more than the same energy at feed-in, which covers that rounding. Buyers need nothing:
 * floors only ever lower what they pay. The argument is written out in docs/market-rules.md
 * ("Post-delivery clearing").
 */
#include "mgx/ex_post.h"
#include "params.h"

#include <string.h>

const char *mkt_timing_name(mkt_timing t)
{
    return t == MKT_EX_POST ? "ex_post" : "ex_ante";
}

int mkt_timing_parse(const char *s, mkt_timing *out)
{
    if (!s || !out)
        return MKT_E_INVAL;
    if (strcmp(s, "ex_ante") == 0)
        *out = MKT_EX_ANTE;
    else if (strcmp(s, "ex_post") == 0)
        *out = MKT_EX_POST;
    else
        return MKT_E_INVAL;
    return MKT_OK;
}

/* Checks one side of a preference; *bad_step is the step at fault. The last step's energy is
 * not read (it covers whatever remains). */
static int check_side(const mkt_step *st, uint32_t n, int *bad_step)
{
    if (n > MKT_PREF_MAX_STEPS) {
        *bad_step = -1;
        return MKT_E_STEPS;
    }
    for (uint32_t i = 0; i < n; i++) {
        *bad_step = (int)i;
        if (i + 1 < n && (st[i].energy_wh <= 0 || st[i].energy_wh > MKT_ENERGY_MAX_WH))
            return MKT_E_ENERGY;
        if (st[i].price_uc_per_kwh < 0 || st[i].price_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH)
            return MKT_E_PRICE;
    }
    *bad_step = -1;
    return MKT_OK;
}

static int check_home(const mkt_ex_post_home *h, int *bad_step)
{
    *bad_step = -1;
    if (h->net_export_wh > MKT_ENERGY_MAX_WH || h->net_export_wh < -MKT_ENERGY_MAX_WH)
        return MKT_E_ENERGY;
    if (!h->pref)
        return MKT_OK;
    int rc = check_side(h->pref->sell, h->pref->n_sell_steps, bad_step);
    if (rc)
        return rc;
    rc = check_side(h->pref->buy, h->pref->n_buy_steps, bad_step);
    if (rc && *bad_step >= 0)
        *bad_step += MKT_PREF_MAX_STEPS;
    return rc;
}

/* The price a step is written at: sell limits raised to the seller floor, buy limits lowered
 * to retail. */
static int64_t clamp_price(const mkt_params *p, mkt_side side, int64_t limit)
{
    if (side == MKT_SELL) {
        int64_t floor_uc = p->feed_in_uc_per_kwh + MKT_EX_POST_SELL_MARGIN_UC_PER_KWH;
        return limit < floor_uc ? floor_uc : limit;
    }
    return limit > p->retail_uc_per_kwh ? p->retail_uc_per_kwh : limit;
}

/* Writes one home's order: its net split into the preference's tranches (the last one takes
 * the rest), or one step at the grid's terms when the side has no steps. */
static void make_order(const mkt_params *p, const mkt_ex_post_home *h, mkt_order *o)
{
    memset(o, 0, sizeof *o);
    o->participant = h->participant;
    o->side = h->net_export_wh > 0 ? MKT_SELL : MKT_BUY;
    int64_t left = h->net_export_wh > 0 ? h->net_export_wh : -h->net_export_wh;
    const mkt_step *st = NULL;
    uint32_t n = 0;
    if (h->pref) {
        st = o->side == MKT_SELL ? h->pref->sell : h->pref->buy;
        n = o->side == MKT_SELL ? h->pref->n_sell_steps : h->pref->n_buy_steps;
    }
    if (n == 0) {
        int64_t grid = o->side == MKT_SELL ? p->feed_in_uc_per_kwh : p->retail_uc_per_kwh;
        o->steps[0] = (mkt_step){left, clamp_price(p, o->side, grid)};
        o->n_steps = 1;
        return;
    }
    for (uint32_t i = 0; i < n && left > 0; i++) {
        int64_t e = i + 1 < n && st[i].energy_wh < left ? st[i].energy_wh : left;
        o->steps[o->n_steps++] = (mkt_step){e, clamp_price(p, o->side, st[i].price_uc_per_kwh)};
        left -= e;
    }
}

int mkt_ex_post_orders(const mkt_params *params, const mkt_ex_post_home *homes, size_t n_homes,
                       mkt_order *out, size_t out_cap, size_t *n_out, mkt_error_at *at)
{
    mkt_error_at scratch_at;
    if (!at)
        at = &scratch_at;
    at->order_index = MKT_AT_BOOK;
    at->step_index = -1;
    if (n_out)
        *n_out = 0;
    if (!params || !n_out || (!homes && n_homes) || (!out && out_cap))
        return MKT_E_INVAL;
    int rc = mkt__check_params(params);
    if (rc)
        return rc;
    if (params->feed_in_uc_per_kwh >
        MKT_PRICE_MAX_UC_PER_KWH - MKT_EX_POST_SELL_MARGIN_UC_PER_KWH)
        return MKT_E_PRICE; /* the seller floor would not be a valid price */
    size_t n = 0;
    for (size_t i = 0; i < n_homes; i++) {
        at->order_index = i;
        if ((rc = check_home(&homes[i], &at->step_index)))
            return rc;
        n += homes[i].net_export_wh != 0;
    }
    at->order_index = MKT_AT_BOOK;
    at->step_index = -1;
    if (n > out_cap)
        return MKT_E_TOO_MANY;
    n = 0;
    for (size_t i = 0; i < n_homes; i++)
        if (homes[i].net_export_wh != 0)
            make_order(params, &homes[i], &out[n++]);
    *n_out = n;
    return MKT_OK;
}
