/*
 * mgx settlement: the balance of an interval against the coordinator's boundary meter (issue
 * 12, trust layer 3; docs/trust.md).
 *
 * The boundary meter sits where the community meets the grid (transformer or feeder) and is
 * read by the coordinator, not by any home. What it measures is the homes' energy plus the
 * losses of the lines between them:
 *
 *   boundary import - boundary export = sum(home import - home export) + losses
 *
 * An interval whose residual (boundary net - homes' net) is outside the tolerance is
 * disputed: some home's meter says something the physics at the boundary does not. A home
 * that claims export it did not make, or hides import, pushes the residual up; one that
 * claims import it did not draw pushes it down. Both directions dispute.
 *
 * Pure: no I/O, no clock, no allocation. Integer Wh; tolerances round up (in the homes'
 * favour: a balanced interval is never called disputed by rounding).
 */
#ifndef MGX_BOUNDARY_BALANCE_H
#define MGX_BOUNDARY_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t tolerance_permille; /* 0 .. 10^6, of the energy through the homes' meters */
    int64_t floor_wh;           /* plus this absolute slack per interval */
} stl_balance_rules;

/* One home's metered energy of the interval (a home without a usable reading contributes 0:
 * pass it with both 0). corroborated: its readings carry more than the home's word (signed by
 * a gateway or certified meter at the coordinator's minimum tier), so a dispute does not hold
 * it. */
typedef struct {
    int64_t import_wh;
    int64_t export_wh;
    int corroborated;
} stl_balance_home;

typedef struct {
    int64_t homes_net_wh;    /* sum of import - export */
    int64_t boundary_net_wh; /* boundary import - export */
    int64_t residual_wh;     /* boundary_net - homes_net: losses plus what the homes misstate */
    int64_t throughput_wh;   /* sum of import + export */
    int64_t tolerance_wh;    /* floor_wh + ceil(throughput_wh * tolerance_permille / 1000) */
    int disputed;            /* |residual_wh| > tolerance_wh */
    size_t n_held;           /* homes held: disputed and not corroborated */
} stl_balance;

enum { STL_BALANCE_OK = 0, STL_BALANCE_E_INVAL = -1 };

/* Decides the interval's balance. held (n entries, may be NULL when n == 0) receives 1 for each
 * home held (disputed and not corroborated), 0 otherwise. STL_BALANCE_E_INVAL on NULL
 * arguments, negative energies or tolerances, or sums beyond what int64 holds (values up to
 * 10^12 Wh each and 10^6 homes always fit). */
int stl_boundary_balance(const stl_balance_home *homes, size_t n, int64_t boundary_import_wh,
                         int64_t boundary_export_wh, const stl_balance_rules *rules,
                         stl_balance *out, uint8_t *held);

#ifdef __cplusplus
}
#endif

#endif
