/*
 * mgx settlement: imbalance between what a participant traded and what its meter measured.
 *
 * A home that sold 500 Wh but exported only 400 Wh must buy the missing 100 Wh somewhere; the
 * grid is the counterparty of last resort, so the shortfall is charged at the imbalance buy
 * price (the retail tariff by default) and a surplus is credited at the imbalance sell price
 * (feed-in). Pure: no I/O, no clock. Amounts round down, as every mgx amount does.
 */
#ifndef MGX_IMBALANCE_H
#define MGX_IMBALANCE_H

#include <stdint.h>

#include "mgx/stl_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t shortfall_wh; /* delivered less than contracted (or drew more): bought from grid */
    int64_t surplus_wh;   /* delivered more than contracted (or drew less): sold to grid */
    int64_t charge_uc;    /* floor(shortfall_wh * shortfall price / 1000) */
    int64_t credit_uc;    /* floor(surplus_wh * surplus price / 1000) */
} stl_imbalance;

/* Net export is export minus import over the interval, in Wh: the contracted position comes
 * from the market result (sold - bought, local and grid), the metered one from the meter. At
 * most one of shortfall_wh and surplus_wh is non-zero. */
int stl_imbalance_settle(int64_t contracted_net_export_wh, int64_t metered_net_export_wh,
                         int64_t shortfall_price_uc_per_kwh, int64_t surplus_price_uc_per_kwh,
                         stl_imbalance *out);

#ifdef __cplusplus
}
#endif

#endif
