/*
 * Money arithmetic, names and error strings of the market library. Amounts are computed in
 * 128-bit intermediates and rounded down once per trade or grid leg; every total is a checked
 * sum of those floors, which is what makes payments, receipts and fees balance exactly.
 */
#include "mgx/market.h"

#include <string.h>

int mkt_amount_uc(int64_t energy_wh, int64_t price_uc_per_kwh, int64_t *amount_uc)
{
    if (energy_wh < 0 || price_uc_per_kwh < 0 || !amount_uc)
        return MKT_E_INVAL;
    uint64_t narrow;
    if (!__builtin_mul_overflow((uint64_t)energy_wh, (uint64_t)price_uc_per_kwh, &narrow)) {
        /* the common case: a 64-bit product, so no 128-bit division */
        *amount_uc = (int64_t)(narrow / 1000u);
        return MKT_OK;
    }
    __extension__ unsigned __int128 prod =
        (unsigned __int128)energy_wh * (unsigned __int128)price_uc_per_kwh;
    prod /= 1000u;
    if (prod > (unsigned __int128)INT64_MAX)
        return MKT_E_OVERFLOW;
    *amount_uc = (int64_t)prod;
    return MKT_OK;
}

const char *mkt_strerror(int code)
{
    switch (code) {
    case MKT_OK:
        return "success";
    case MKT_E_INVAL:
        return "invalid argument";
    case MKT_E_NOMEM:
        return "out of memory";
    case MKT_E_TOO_MANY:
        return "too many orders for this clearing object";
    case MKT_E_ENERGY:
        return "energy must be > 0 Wh and at most 1 TWh per step";
    case MKT_E_PRICE:
        return "price must be between 0 and 1e12 uc/kWh";
    case MKT_E_STEPS:
        return "a curve needs 1 to 16 steps";
    case MKT_E_BOTH_SIDES:
        return "participant is on both sides of the market";
    case MKT_E_DUPLICATE:
        return "participant has more than one order on the same side";
    case MKT_E_OVERFLOW:
        return "totals or amounts overflow 64-bit integers";
    case MKT_E_TARIFFS:
        return "feed-in tariff is above the retail tariff";
    case MKT_E_TOPOLOGY:
        return "the grid topology is not a valid tree with non-negative capacities";
    default:
        return "unknown error";
    }
}

const char *mkt_mechanism_name(mkt_mechanism m)
{
    return m == MKT_PAY_AS_BID ? "pay-as-bid" : "pay-as-clear";
}

int mkt_mechanism_parse(const char *s, mkt_mechanism *out)
{
    if (!s || !out)
        return MKT_E_INVAL;
    if (strcmp(s, "pay-as-clear") == 0)
        *out = MKT_PAY_AS_CLEAR;
    else if (strcmp(s, "pay-as-bid") == 0)
        *out = MKT_PAY_AS_BID;
    else
        return MKT_E_INVAL;
    return MKT_OK;
}
