/*
 * Internal: the controller's side of witnesses (docs/witness.md). Each witness publishes the
 * checkpoint it cosigned on the bus; the controller takes those notes, keeps every cosignature
 * that a witness it knows (a public key in [controller] witness_keys) made on a checkpoint of
 * this very ledger, and republishes the newest cosigned checkpoint with all of them
 * (mgx/v1/<community>/ledger/witnessed), so a home or auditor gets one note carrying k of n
 * witnesses instead of fetching each witness's file.
 *
 * Nothing in a received note is trusted: it must be a checkpoint signed by the ledger's own key
 * whose body is exactly the ledger's checkpoint at that log size (another body at a size the
 * ledger has is a fork signed with the community key, and is reported as one), and each kept
 * line must verify as a tlog-cosignature by one of the configured keys over that body. Lines by
 * unknown keys, bad signatures and everything else are ignored; the verdict says why.
 *
 * Cosignatures are stored in the community database (table ledger_cosignature, one per witness
 * key and log size, the newest time kept), so a restarted controller republishes them.
 * One thread: the store's.
 */
#ifndef MGX_CTL_COSIG_COLLECT_H
#define MGX_CTL_COSIG_COLLECT_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "mgx/checkpoint.h"

typedef enum {
    CTL_COSIG_STORED = 0,      /* at least one new (or newer) cosignature kept */
    CTL_COSIG_UNCHANGED = 1,   /* valid, but every cosignature in it was known already */
    CTL_COSIG_E_MALFORMED = -1, /* not a checkpoint note signed by the ledger's key */
    CTL_COSIG_E_UNKNOWN = -2,  /* a log size this ledger does not have (yet) */
    CTL_COSIG_E_FORK = -3,     /* signed by the ledger's key, another body at that size */
    CTL_COSIG_E_NO_WITNESS = -4, /* no line verifies as a cosignature by a configured key */
    CTL_COSIG_E_DB = -5,       /* SQLite failed, or no ledger yet */
} ctl_cosig_verdict;

#define CTL_COSIG_VERDICTS 7 /* UNCHANGED .. E_DB, for counters: index = 1 - verdict */

/* A static English reason; never NULL. */
const char *ctl_cosig_strerror(int verdict);

/*
 * Takes the note[0..len) a witness published. pks[0..n) are the witnesses' keys. On a kept
 * cosignature *log_size (may be NULL) is the size it is for. Returns a ctl_cosig_verdict.
 */
int ctl_cosig_accept(ctl_db *db, const uint8_t (*pks)[STL_PK_LEN], size_t n, const char *note,
                     size_t len, uint64_t *log_size);

/* The newest checkpoint any known witness cosigned, with every stored cosignature of it
 * (ordered by witness name), and its log size in *log_size (may be NULL); malloc'd, NULL when
 * none is stored or on error. */
char *ctl_cosig_witnessed(ctl_db *db, uint64_t *log_size);

#endif
