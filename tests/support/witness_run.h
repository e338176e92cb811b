/*
 * Test support: a witness (`mgx witness --once`, docs/witness.md) run over the ledger of a
 * controller the test ran, for the witness tests (witness/): the community's and the witness's
 * keys, one witness run with a fresh state and what it said, the check of that, and the
 * coordinator's late change settled by the controller started again.
 */
#ifndef MGX_TEST_WITNESS_RUN_H
#define MGX_TEST_WITNESS_RUN_H

#include "bus/bus.h"

#include <stddef.h>
#include <stdint.h>

/* In dir: the community's key pair community.skey / community.vkey for key_id, and the
 * witness's key w.key. */
void tst_witness_keys(const char *bin, const char *dir, const char *key_id);

/* Runs `bin witness dir/<tag>.ini --once` with a fresh state (its .state and .cosigned files
 * removed first) over the ledger db (a path from dir), named witness.example/<tag>, with the
 * keys of tst_witness_keys and the [witness] lines extra after the common ones. What it said
 * (dir/<tag>.out) goes into out. Returns its exit status. */
int tst_witness_run(const char *bin, const char *dir, const char *tag, const char *db,
                    const char *extra, char *out, size_t cap);
/* The file at path in out, at most cap - 1 bytes and NUL-terminated (empty when missing). */
void tst_witness_output(const char *path, char *out, size_t cap);
/* Fails the test, showing text, unless want is in it. */
void tst_expect_in(const char *text, const char *want);

/* After the coordinator changed interval iv in the database db: the controller started again
 * (tst_controller_start with conf, anchor and log) until a block for iv or a later interval is
 * settled (c's loop running, 120 s at the most), then stopped; fails the test without that
 * block. The ledger then verifies with the community key alone (dir/community.vkey), which
 * cannot tell the change. */
void tst_witness_settle_altered(const char *bin, const char *conf, const char *anchor,
                                const char *log, bus_client *c, const char *db, const char *dir,
                                int64_t iv);

#endif
