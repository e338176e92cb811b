/*
 * Internal: a home's energy credits out of the ledger as granular certificates (the fields of
 * the EnergyTag granular certificate scheme where they apply) and its 24/7 matching statement:
 * per interval and for the month, the share of its metered consumption matched by retired
 * local verified credits. Every block read is re-derived (settlement/credits) from its own
 * positions and trades and must equal its stored credit records, so what is exported is what
 * `mgx ledger verify` accepts. docs/credits.md describes the output.
 */
#ifndef MGX_CTL_LEDGER_CERTS_H
#define MGX_CTL_LEDGER_CERTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db/db.h"
#include "mgx/credits.h"
#include "settle/ledger_statement.h"

/* The certificates and matching of participant for the blocks whose interval starts in range
 * (a month: range->by_interval false). *out is a new JSON object (the caller json_decrefs it).
 * 0, or -1 with err (a database error, or a block whose credit records differ from their
 * re-derivation: run `mgx ledger verify`). */
/* The sums of participant's credit records (kind 3) in the blocks whose interval starts in
 * range, as stored (no re-derivation: that is `mgx ledger verify`'s and
 * ctl_ledger_certificates's), for views that read them often (the dashboard). sum->participant
 * is participant; *n the records summed. 0, or -1 with err (a database error or a damaged
 * record). */
int ctl_ledger_credit_totals(ctl_db *db, int64_t participant, const ctl_statement_range *range,
                             stl_credit *sum, int *n, char *err, size_t errlen);

int ctl_ledger_certificates(ctl_db *db, int64_t participant, const ctl_statement_range *range,
                            const char *month, json_t **out, char *err, size_t errlen);

#endif
