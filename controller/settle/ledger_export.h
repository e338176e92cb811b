/*
 * Internal: the settlement ledger as JSON lines (`mgx ledger export`): one line per block in
 * height order, each followed by its transactions in log order, every field decoded (ids and
 * hashes in hex, the checkpoint text as signed). The format is documented in docs/ledger.md;
 * it is for auditors and for loading the ledger elsewhere, not read back by mgx.
 */
#ifndef MGX_CTL_LEDGER_EXPORT_H
#define MGX_CTL_LEDGER_EXPORT_H

#include <stddef.h>
#include <stdio.h>

#include "db/db.h"

/* Writes the whole ledger of db to out. CTL_LEDGER_OK; CTL_LEDGER_E_FAULT (a damaged block or
 * transaction: run `mgx ledger verify`) or CTL_LEDGER_E_DB, with a bare message in err. What
 * was written before a fault stays written. */
int ctl_ledger_export(ctl_db *db, FILE *out, char *err, size_t errlen);

#endif
