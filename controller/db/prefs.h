/*
 * Internal: the homes' standing preferences (timing = ex_post) in the community database
 * (tables preferences and preference_steps, db/schema.c version 2).
 *
 * A preference counts for interval X when it is the participant's accepted preference with
 * valid_from <= X and the greatest created_ms among those (ties: the one stored last): a home
 * replaces its preference by sending a newer one, and a preference for a later interval never
 * reaches back. Only accepted preferences are stored, with the receipt sent for them, unique
 * per (participant, nonce): a resend of the same bytes is answered with the stored receipt,
 * another preference with a used nonce is a replay.
 *
 * The writes run inside the caller's transaction (ctl_db_begin / ctl_db_end), so the decision
 * and the row are committed together, before the receipt leaves.
 *
 * Thread safety: the db handle's (one thread at a time). Strings and buffers are the caller's,
 * read during the call only.
 */
#ifndef MGX_CTL_PREFS_H
#define MGX_CTL_PREFS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/store.h"
#include "mgx/ex_post.h"

/* What is on file about an incoming preference. */
typedef struct {
    int nonce_seen;             /* 0 new, 1 the same signed bytes (a resend), 2 another one */
    char receipt[CTL_RECEIPT_MAX]; /* nonce_seen 1: the stored receipt */
    int has_current;            /* an accepted preference with the same valid_from */
    int64_t current_created_ms; /* the newest such one's created_ms */
} ctl_pref_history;

/* An accepted preference to store. */
typedef struct {
    const char *participant;
    const uint8_t *nonce;      /* CTL_NONCE_BYTES */
    int64_t valid_from;
    int64_t created_ms;
    int64_t received_ms;
    const mkt_preference *pref;
    const uint8_t *signed_msg; /* canonical encoding followed by the signature */
    size_t signed_len;         /* 1..CTL_SIGNED_MAX */
    const char *receipt;       /* the receipt sent for it */
} ctl_pref_rec;

/* Fills *h for participant's preference with this nonce, these signed bytes and valid_from.
 * CTL_ST_OK or CTL_ST_E_DB / CTL_ST_E_INVAL. */
int ctl_prefs_history(ctl_db *db, const char *participant, const uint8_t *nonce,
                      const uint8_t *signed_msg, size_t signed_len, int64_t valid_from,
                      ctl_pref_history *h);

/* Inserts r (inside the caller's transaction). CTL_ST_OK, CTL_ST_E_INVAL, CTL_ST_E_DB. */
int ctl_prefs_put(ctl_db *db, const ctl_pref_rec *r);

/* The preference that counts for participant in interval_id: *found 1 and *out filled, or
 * *found 0 (the home never sent one that has started: the grid's terms). CTL_ST_OK or
 * CTL_ST_E_DB. */
int ctl_prefs_valid(ctl_db *db, const char *participant, int64_t interval_id,
                    mkt_preference *out, int *found);

/* The timing interval_id was cleared with: recorded inside the clearing's transaction (put),
 * read for statements and results (get: MKT_EX_ANTE when nothing is recorded, as for every
 * interval cleared before timing existed). CTL_ST_OK, CTL_ST_E_INVAL or CTL_ST_E_DB. */
int ctl_interval_timing_put(ctl_db *db, int64_t interval_id, mkt_timing timing);
int ctl_interval_timing_get(ctl_db *db, int64_t interval_id, mkt_timing *timing);

#endif
