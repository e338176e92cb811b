/*
 * Imbalance settlement: the difference between a contracted and a metered net position, priced
 * against the grid. Kept apart from trade settlement because the simulator needs it alone.
 */
#include "mgx/imbalance.h"

#include "mgx/market.h"

#include <string.h>

int stl_imbalance_settle(int64_t contracted_net_export_wh, int64_t metered_net_export_wh,
                         int64_t shortfall_price_uc_per_kwh, int64_t surplus_price_uc_per_kwh,
                         stl_imbalance *out)
{
    if (!out || shortfall_price_uc_per_kwh < 0 || surplus_price_uc_per_kwh < 0)
        return STL_E_INVAL;
    memset(out, 0, sizeof *out);
    int64_t diff;
    if (__builtin_sub_overflow(metered_net_export_wh, contracted_net_export_wh, &diff) ||
        diff == INT64_MIN)
        return STL_E_OVERFLOW;
    if (diff < 0)
        out->shortfall_wh = -diff;
    else
        out->surplus_wh = diff;
    if (mkt_amount_uc_inline(out->shortfall_wh, shortfall_price_uc_per_kwh, &out->charge_uc) ||
        mkt_amount_uc_inline(out->surplus_wh, surplus_price_uc_per_kwh, &out->credit_uc)) {
        memset(out, 0, sizeof *out);
        return STL_E_OVERFLOW;
    }
    return STL_OK;
}
