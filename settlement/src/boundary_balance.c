/*
 * The balance of an interval's homes against the boundary meter (boundary_balance.h).
 */
#include "mgx/boundary_balance.h"

#include <string.h>

/* a + b into *sum, both >= 0; -1 when it would not fit */
static int add_nonneg(int64_t a, int64_t b, int64_t *sum)
{
    if (a > INT64_MAX - b)
        return -1;
    *sum = a + b;
    return 0;
}

int stl_boundary_balance(const stl_balance_home *homes, size_t n, int64_t boundary_import_wh,
                         int64_t boundary_export_wh, const stl_balance_rules *rules,
                         stl_balance *out, uint8_t *held)
{
    if (!rules || !out || (n && (!homes || !held)) || boundary_import_wh < 0 ||
        boundary_export_wh < 0 || rules->tolerance_permille < 0 ||
        rules->tolerance_permille > 1000000 || rules->floor_wh < 0)
        return STL_BALANCE_E_INVAL;
    memset(out, 0, sizeof *out);
    int64_t imp = 0, exp = 0;
    for (size_t i = 0; i < n; i++) {
        if (homes[i].import_wh < 0 || homes[i].export_wh < 0 ||
            add_nonneg(imp, homes[i].import_wh, &imp) || add_nonneg(exp, homes[i].export_wh, &exp))
            return STL_BALANCE_E_INVAL;
    }
    int64_t through;
    if (add_nonneg(imp, exp, &through))
        return STL_BALANCE_E_INVAL;
    /* ceil(through * permille / 1000) without overflow: split through into thousands */
    int64_t q = through / 1000, r = through % 1000, p = rules->tolerance_permille;
    if (p && q > INT64_MAX / p)
        return STL_BALANCE_E_INVAL;
    int64_t tol = q * p + (r * p + 999) / 1000;
    if (add_nonneg(tol, rules->floor_wh, &tol))
        return STL_BALANCE_E_INVAL;
    out->homes_net_wh = imp - exp;
    out->boundary_net_wh = boundary_import_wh - boundary_export_wh;
    /* both nets lie in (-INT64_MAX, INT64_MAX); their difference may not */
    if ((out->boundary_net_wh > 0 && out->homes_net_wh < out->boundary_net_wh - INT64_MAX) ||
        (out->boundary_net_wh < 0 && out->homes_net_wh > out->boundary_net_wh + INT64_MAX))
        return STL_BALANCE_E_INVAL;
    out->residual_wh = out->boundary_net_wh - out->homes_net_wh;
    out->throughput_wh = through;
    out->tolerance_wh = tol;
    out->disputed = out->residual_wh > tol || out->residual_wh < -tol;
    for (size_t i = 0; i < n; i++) {
        held[i] = out->disputed && !homes[i].corroborated;
        out->n_held += held[i];
    }
    return STL_BALANCE_OK;
}
