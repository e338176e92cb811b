/*
 * Internal: the one validity check of mkt_params, shared by mkt_clear and mkt_ex_post_orders so
 * that both reject the same parameters with the same codes.
 */
#ifndef MGX_MARKET_PARAMS_H
#define MGX_MARKET_PARAMS_H

#include "mgx/market.h"

/* MKT_OK, or MKT_E_INVAL (mechanism), MKT_E_PRICE (a tariff or the fee out of range) or
 * MKT_E_TARIFFS (feed-in above retail). */
int mkt__check_params(const mkt_params *p);

#endif
