/*
 * mgx settlement: peer corroboration of generation (issue 12, trust layer 4; docs/trust.md).
 *
 * A community is one weather cell: in one interval, every home's panels see about the same
 * sun. A home's export per registered kWp of PV is compared with its neighbours'. Export is
 * production minus the home's own consumption, so an honest home exports at most about what
 * the best-placed of its peers yield; the reference is the second highest of the other homes'
 * yields (the highest would let one lying peer lift it), and a home is flagged when its export
 * exceeds
 *
 *   pv_wp x (reference x tolerance_permille / 1000 + floor_w_per_kwp x len_s / 3600) / 1000
 *   + battery_wh  (what its registered battery can have given in the interval)
 *
 * So export at night (every peer ~0) beyond the floor and the battery is flagged, and so is
 * export far above the peers by day. A home is checked only when at least min_peers other
 * homes with PV have a usable reading in the interval.
 *
 * Pure: no I/O, no clock, no allocation (the caller passes scratch space). Integer Wh; the
 * allowance rounds up (in the home's favour).
 */
#ifndef MGX_PEER_YIELD_H
#define MGX_PEER_YIELD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t tolerance_permille; /* 1000 .. 10^6: the factor over the reference */
    int64_t floor_w_per_kwp;    /* 0 .. 10^6: slack per kWp, as a power (scaled by len_s) */
    size_t min_peers;           /* >= 1: fewer other PV homes with readings: not checked */
} stl_peer_rules;

typedef struct {
    int64_t pv_wp;      /* registered PV peak; <= 0: no PV registered (neither peer nor checked) */
    int64_t export_wh;  /* metered export of the interval */
    int64_t battery_wh; /* what its registered battery can have given in the interval (>= 0) */
    int usable;         /* its reading is good (a peer); else neither peer nor checked */
} stl_peer_home;

typedef struct {
    int checked;           /* enough peers to judge */
    int flagged;           /* export beyond the allowance */
    int64_t yield_wh_per_kwp;     /* floor(export_wh * 1000 / pv_wp) */
    int64_t reference_wh_per_kwp; /* the second highest of the others' yields */
    int64_t allowed_wh;           /* the export it was allowed */
} stl_peer_verdict;

enum { STL_PEER_OK = 0, STL_PEER_E_INVAL = -1 };

/* Judges every home of homes[0..n) for an interval of len_s seconds: out[i] for homes[i].
 * scratch holds n values. STL_PEER_E_INVAL on NULL arguments, rules out of range, len_s <= 0,
 * or energies or peaks outside 0 .. 10^12. */
int stl_peer_check(const stl_peer_home *homes, size_t n, int64_t len_s,
                   const stl_peer_rules *rules, int64_t *scratch, stl_peer_verdict *out);

#ifdef __cplusplus
}
#endif

#endif
