/*
 * mgx simulator: cheating homes run through the controller's own cross-home checks (issue 12;
 * docs/trust.md layers 3 and 4, docs/simulator.md "What the checks catch"): the boundary
 * balance (mgx/boundary_balance.h) and peer corroboration (mgx/peer_yield.h), the same pure
 * functions settlement calls.
 *
 * One interval at a time: the caller passes what every home's meter really measured, the
 * boundary meter sees that plus losses, one home (or none) lies in one of four ways, and the
 * tally counts what the checks hold and what the lie would earn with and without them. No
 * home is signed (the worst case for honest homes: a dispute holds every home).
 *
 * Pure: no I/O, no clock, no allocation (the caller passes scratch space). Integer Wh and uc.
 */
#ifndef MGX_CHEAT_EVAL_H
#define MGX_CHEAT_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/boundary_balance.h"
#include "mgx/peer_yield.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SIM_CHEAT_NONE = 0,
    SIM_CHEAT_INFLATE = 1,  /* export claimed x (100 + x_percent) / 100 */
    SIM_CHEAT_NIGHT_PV = 2, /* x_percent W per registered kWp of export claimed while the whole
                             * community's panels yield nothing */
    SIM_CHEAT_SWAP = 3,     /* import and export swapped (swap_energy = yes) */
    SIM_CHEAT_SILENT = 4    /* no reading at all */
} sim_cheat_kind;

typedef struct {
    stl_balance_rules balance;
    stl_peer_rules peer;
    int64_t loss_permille;      /* the boundary's line losses, of the homes' import + export */
    int64_t feed_in_uc_per_kwh; /* what export earns */
    int64_t retail_uc_per_kwh;  /* what import costs */
    int64_t len_s;
} sim_cheat_rules;

typedef struct {
    int64_t import_wh, export_wh; /* measured */
    int64_t pv_wh;                /* produced (tells night from day) */
    int64_t pv_wp;                /* registered; 0 none */
    int64_t battery_wh;           /* what its battery can give in the interval */
} sim_cheat_home;

typedef struct {
    uint64_t intervals, home_intervals;
    uint64_t cheat_intervals;  /* the lie earned something (or, silent, would without layer 6) */
    uint64_t detected;         /* of them: the cheater held (peer, dispute) or missing */
    uint64_t disputed;         /* intervals that did not balance */
    uint64_t honest_held;      /* honest home-intervals held (disputes, peers) */
    uint64_t honest_peer;      /* of them, by the peer check */
    int64_t gain_unchecked_uc; /* what the lies would earn with no check */
    int64_t gain_checked_uc;   /* ... in the intervals the checks let through */
    int64_t honest_unpaid_uc;  /* export credit honest homes lose to holds */
} sim_cheat_tally;

enum { SIM_CHEAT_OK = 0, SIM_CHEAT_E_INVAL = -1 };

/* Adds one interval of homes h[0..n) to *t, home cheater (n: nobody) lying by kind and
 * x_percent. scratch: n entries of each. SIM_CHEAT_E_INVAL on bad arguments or rules. */
int sim_cheat_interval(const sim_cheat_home *h, size_t n, size_t cheater, sim_cheat_kind kind,
                       int64_t x_percent, const sim_cheat_rules *r, stl_balance_home *s_bal,
                       uint8_t *s_held, stl_peer_home *s_peer, stl_peer_verdict *s_verdict,
                       int64_t *s_sort, sim_cheat_tally *t);

#ifdef __cplusplus
}
#endif

#endif
