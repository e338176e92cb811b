/*
 * A home's trust score over time (issue 12, trust layers 3 and 4; docs/trust.md): one row of
 * the peer_checks table (schema.c, version 6) per home and settled interval that the peer
 * check of generation looked at or that a boundary dispute held. Written by settlement,
 * read by `mgx participant list` and statements.
 *
 * The score: of the intervals in which a home was peer-checked, the share (permille) in which
 * its export was consistent with its neighbours'. Disputes are counted apart: a dispute holds
 * every home without signed readings, honest or not, so it says nothing of one home.
 *
 * Thread safety: as the ctl_db handle.
 */
#ifndef MGX_CTL_PEER_TRUST_H
#define MGX_CTL_PEER_TRUST_H

#include <stdint.h>

#include "db/db.h"
#include "db/store.h"

typedef struct {
    char participant[CTL_PARTICIPANT_MAX];
    int64_t interval_id;
    int peer_checked, peer_flagged, disputed;
    int64_t yield_wh_per_kwp, reference_wh_per_kwp;
} ctl_peer_check_row;

typedef struct {
    int64_t checked;       /* intervals peer-checked */
    int64_t flagged;       /* of them, flagged */
    int64_t disputed;      /* intervals held by a boundary dispute */
    int64_t score_permille; /* 1000 x (checked - flagged) / checked, rounded down; -1: none */
} ctl_peer_trust;

/* Records rows (INSERT OR REPLACE: settling an interval again gives the same rows) in one
 * transaction. CTL_DB_OK, CTL_DB_E_INVAL or CTL_DB_E_DB. */
int ctl_peer_checks_put(ctl_db *db, const ctl_peer_check_row *rows, size_t n);

/* The trust of participant over all its recorded intervals. CTL_DB_OK (all 0 and score -1
 * when nothing is recorded) or CTL_DB_E_DB. */
int ctl_peer_trust_get(ctl_db *db, const char *participant, ctl_peer_trust *out);

#endif
