/*
 * Internal: the JSON files of `mgx ledger`. The settle input a coordinator writes
 * (docs/ledger.md), the inclusion proof `mgx ledger proof` prints and `check-proof` reads, and
 * the consistency proof of `consistency` / `check-consistency`. Pure: text in, structs out (and
 * back to text), errors as a bare reason in the caller's buffer; the CLI adds the file name and
 * prints. Nothing here checks a signature or a Merkle path: the caller does that with the
 * structs filled here. Each has a fuzz harness (tests/settle/fuzz_ledger_json.c).
 *
 * Threading: no shared state; a struct belongs to one thread.
 */
#ifndef MGX_CTL_LEDGER_JSON_H
#define MGX_CTL_LEDGER_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "settle/settle_interval.h"

enum {
    CTL_LJ_OK = 0,
    CTL_LJ_E_SYNTAX = -1, /* not JSON; err is "LINE:COLUMN: reason" */
    CTL_LJ_E_BAD = -2,    /* JSON, but not this kind of file; err says why */
    CTL_LJ_E_NOMEM = -3
};

/* ---- settle input ---- */

typedef struct {
    ctl_ledger_input in; /* in.trades / in.meters point at the arrays below */
    mkt_trade *trades;   /* owned (ctl_lj_settle_free) */
    stl_metered *meters; /* owned */
} ctl_lj_settle;

/*
 * Parses a settle input: interval_id, interval_len_s (default 900), timing ("ex_ante", the
 * default, or "ex_post"), tariffs {feed_in, retail, network_fee (default 0)}, trades [{seller,
 * buyer, energy_wh, price_uc_per_kwh, amount_uc and fee_uc (default: the market's rule)}],
 * meters [{participant, import_wh, export_wh, quality (default 0), tier (attestation, 0..2,
 * default 0), held (true: refused by physical checks; default false)}]. Every number is
 * range-checked. On any return *out must
 * be released with ctl_lj_settle_free (it is zeroed first).
 */
int ctl_lj_settle_parse(const char *text, size_t len, ctl_lj_settle *out, char *err,
                        size_t errlen);
void ctl_lj_settle_free(ctl_lj_settle *s);
/* The input as JSON with every field explicit (compact, one line); malloc'd, NULL on no
 * memory. What it writes parses back to the same input. */
char *ctl_lj_settle_format(const ctl_ledger_input *in);

/* ---- inclusion proof ("format": "mgx-inclusion-proof/2"; "/1" for a ledger v1 transaction,
 * which has no salt) ---- */

typedef struct {
    int64_t log_index; /* >= 0 */
    int64_t tree_size; /* as written; compared with the checkpoint's size by the caller */
    uint8_t body[STL_TX_MAX_LEN];
    size_t body_len;
    stl_tx tx; /* body decoded */
    uint8_t salt[STL_SALT_LEN]; /* the transaction's own salt (ledger version 2) */
    int has_salt;               /* 1 for a version 2 transaction, 0 for version 1 */
    uint8_t path[STL_MERKLE_MAX_PROOF][STL_HASH_LEN];
    size_t n_path;
    char *checkpoint; /* owned; NULL when the file has none */
} ctl_lj_proof;

/* Parses a proof file; on any return *out must be released with ctl_lj_proof_free. The
 * "txid" and "format" members are not read: the id is recomputed from the body (and salt). A
 * version 2 transaction needs its "salt" (base64, 32 bytes); a version 1 one may not have one.
 * The proof carries only this transaction's salt: the other leaves are hashes. */
int ctl_lj_proof_parse(const char *text, size_t len, ctl_lj_proof *out, char *err,
                       size_t errlen);
void ctl_lj_proof_free(ctl_lj_proof *p);
/* The proof as `mgx ledger proof` prints it (indented, no final newline), with txid as
 * given; malloc'd, NULL on no memory or a body longer than STL_TX_MAX_LEN. */
char *ctl_lj_proof_format(const ctl_lj_proof *p, const uint8_t txid[STL_ID_LEN]);

/* ---- consistency proof ("format": "mgx-consistency-proof/1") ---- */

typedef struct {
    uint64_t old_size, new_size;                  /* written, never read: the checkpoints */
    uint8_t old_root[STL_HASH_LEN], new_root[STL_HASH_LEN]; /* carry the signed ones */
    uint8_t path[STL_MERKLE_MAX_PROOF][STL_HASH_LEN];
    size_t n_path;
    char *old_checkpoint, *new_checkpoint; /* owned; both required by the parser, optional
                                              for the writer (NULL: left out) */
} ctl_lj_consistency;

/* Parses a consistency proof: the hashes and both checkpoints. On any return *out must be
 * released with ctl_lj_consistency_free. */
int ctl_lj_consistency_parse(const char *text, size_t len, ctl_lj_consistency *out, char *err,
                             size_t errlen);
void ctl_lj_consistency_free(ctl_lj_consistency *c);
/* As `mgx ledger consistency` prints it (indented, no final newline); malloc'd or NULL. */
char *ctl_lj_consistency_format(const ctl_lj_consistency *c);

const char *ctl_lj_strerror(int rc);

#endif
