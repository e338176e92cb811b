/*
 * Internal: `mgx witness`, an independent check of the community's settlement ledger that
 * cosigns its checkpoints (c2sp.org/tlog-cosignature, mgx/cosignature.h) only when the log was
 * appended to and every block audits (docs/witness.md).
 *
 * The witness reads the community database read-only (a path to the controller's file, or to
 * a copy), keeps the last checkpoint it cosigned in its own state file, and writes the newest
 * checkpoint with its cosignature line to its out file; both files are replaced atomically
 * (write, fsync, rename, fsync of the folder), state first, so a crash between the two only
 * makes the next step cosign the same checkpoint again.
 *
 * The check of a module below (ctl_witness_require) is the auditor's side: `mgx ledger verify
 * --witness` requires k of n known witnesses on the ledger's latest checkpoint.
 *
 * Threading: a ctl_witness belongs to one thread.
 */
#ifndef MGX_CTL_WITNESS_H
#define MGX_CTL_WITNESS_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus_config.h"
#include "common/config.h"
#include "common/topology_config.h"
#include "db/db.h"
#include "settle/settle_meter.h"

#include "mgx/cosignature.h"
#include "mgx/market.h"

/* The [witness] section of a witness's config file. */
typedef struct {
    char name[STL_COSIG_NAME_MAX + 1]; /* its key name on cosignatures */
    char key_file[CFG_PATH_MAX];       /* its secret key, from `mgx keygen --out PREFIX` */
    char ledger[CFG_PATH_MAX];         /* the community database, opened read-only */
    char log_key_file[CFG_PATH_MAX];   /* the community's verifier key (`mgx ledger keygen`) */
    char state[CFG_PATH_MAX];          /* the last checkpoint it cosigned */
    char out[CFG_PATH_MAX];            /* that checkpoint with its cosignature line */
    int64_t poll_s;                    /* seconds between steps when running; default 10 */
    int reclear;                       /* 1: every block is re-cleared (signed orders, or
                                        * readings and signed preferences) */
    mkt_mechanism mechanism;           /* the community's, for reclear */
    char topology_path[CFG_PATH_MAX];  /* the community's config, for its [topology]; "" none */
    ctl_topology topology;             /* loaded from it (ctl_witness_config_clear frees it);
                                        * on 0: re-cleared as a copper plate */
    stm_rules meter_rules; /* reclear of ex_post blocks: the controller's reading_max_gap_s and
                            * meter_max_power_w (defaults 300 s and 100000 W, as its own) */
    cfg_bus bus; /* optional [bus]: where the out file is published, retained, on
                  * ledger/cosigned/<client_id> (bus.line 0: not published) */
    uint64_t seen;
    int line;
} ctl_witness_config;

/* Loads path; CFG_OK or a CFG_E_* code with "FILE:LINE: message" in err. A loaded config's
 * [bus] password is freed with ctl_witness_config_clear. */
int ctl_witness_config_load(const char *path, ctl_witness_config *c, char *err, size_t errlen);
void ctl_witness_config_clear(ctl_witness_config *c);

/* The topic a witness publishes its cosigned checkpoint on, retained:
 * mgx/v1/<community>/ledger/cosigned/<client_id>. CTL_WITNESS_OK or CTL_WITNESS_E_IO when it
 * does not fit. */
int ctl_witness_topic(const char *community, const char *client_id, char *buf, size_t len);

enum {
    CTL_WITNESS_OK = 0,        /* ctl_witness_new: loaded */
    CTL_WITNESS_COSIGNED = 0,  /* a new checkpoint was cosigned and written */
    CTL_WITNESS_UNCHANGED = 1, /* the latest checkpoint is the one already cosigned */
    CTL_WITNESS_EMPTY = 2,     /* the ledger has no block yet */
    CTL_WITNESS_REFUSED = -1,  /* the ledger fails the audit or is not an extension */
    CTL_WITNESS_E_IO = -2,     /* a file or the database could not be read or written */
    CTL_WITNESS_E_KEY = -3     /* a key file is missing or malformed */
};

typedef struct ctl_witness ctl_witness;

/* Loads the keys of c (the secret key into guarded memory). On success *out is the caller's
 * (ctl_witness_free). */
int ctl_witness_new(const ctl_witness_config *c, ctl_witness **out, char *err, size_t errlen);
void ctl_witness_free(ctl_witness *w);

/*
 * One step: opens the ledger read-only, audits every block after the checkpoint in the state
 * file (all of them the first time; ctl_ledger_verify_since with the community's key: hashes,
 * signatures, transactions against their leaves, Merkle nodes, every block re-settled from its
 * transactions), checks that the latest checkpoint extends the one in the state file (a
 * consistency proof from the ledger's nodes, verified against the witness's own old root) and
 * cosigns it at now_s. A CTL_WITNESS_* code, with what happened in msg.
 */
int ctl_witness_step(ctl_witness *w, uint64_t now_s, char *msg, size_t msglen);

/*
 * The market check of a witness with `reclear` (witness_reclear.c): every ex_ante block whose
 * log size is above audited_size (-1: all) is re-cleared from its interval's orders as the
 * homes signed them (decoded from the stored signed bytes, each signature checked with the
 * registry's key, the latest signed order per home), with mech and the block's tariffs and
 * interval (ties), and its trades must be exactly the clearing's. CTL_LEDGER_OK,
 * CTL_LEDGER_E_FAULT with the first difference in msg, or CTL_LEDGER_E_DB / E_NOMEM.
 * Every ex_post block is re-cleared from its good homes' metered energy, recomputed from their
 * meters' stored readings with rules (it must equal what the block settled, less carried
 * import, and the carry must be the counter's rise the readings give), and their standing
 * preferences as the homes signed them (each signature checked with the registry's key, the
 * newest valid one by its signed fields taken), through mkt_ex_post_orders; a home registered
 * with a meter before the interval whose readings are good but which the block leaves out is a
 * fault too.
 * With topo->on every block (ex_ante or ex_post) is re-cleared within the community's feeder
 * limits (mkt_clear_grid, limits for the block's interval length), and each trade's amount and
 * fee must be the clearing's, the fee with the level fees and congestion rent it carries (a
 * copper-plate block's fee is the flat one); topo may be NULL.
 */
int ctl_witness_reclear(ctl_db *db, int64_t audited_size, mkt_mechanism mech,
                        const stm_rules *rules, const ctl_topology *topo, char *msg,
                        size_t msglen);

/*
 * The auditor's check: of the distinct witness keys pks[0..n_pk), at least k must have
 * cosigned the ledger's latest checkpoint in one of the cosigned checkpoint notes
 * notes[0..n_notes) (lens[i] bytes each; what witnesses write to their out files), and every
 * cosignature by one of them must be on a checkpoint of this ledger's log: one larger than the
 * ledger means it was truncated, one with another root at its size that it forked. Call after
 * ctl_ledger_verify passed. CTL_LEDGER_OK with a summary in msg, CTL_LEDGER_E_FAULT with the
 * fault, CTL_LEDGER_E_DB.
 */
int ctl_witness_require(ctl_db *db, const uint8_t (*pks)[STL_PK_LEN], size_t n_pk, size_t k,
                        const char *const *notes, const size_t *lens, size_t n_notes, char *msg,
                        size_t msglen);

/*
 * The home's check (no database): how many of the distinct witness keys pks[0..n_pk) cosigned
 * exactly the checkpoint cp (same origin, size and root) of the log (log_name, log_pk) in one of
 * the cosigned notes notes[0..n_notes); notes not signed by the log's key are ignored.
 */
size_t ctl_witness_count_on(const stl_checkpoint *cp, const char *log_name,
                            const uint8_t log_pk[STL_PK_LEN], const uint8_t (*pks)[STL_PK_LEN],
                            size_t n_pk, const char *const *notes, const size_t *lens,
                            size_t n_notes);

#endif
