/*
 * Test helpers for the `mgx ledger` integration and crash tests: run the real mgx binary
 * ($MGX_BIN) with arguments and an optional MGX_CRASH_AT, capture its output, and write random
 * interval input files.
 */
#ifndef MGX_TEST_LEDGER_HARNESS_H
#define MGX_TEST_LEDGER_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Runs $MGX_BIN with argv (NULL-terminated, without the program); stdout and stderr go to
 * out_path and err_path (may be NULL for /dev/null). crash_at (may be NULL) is put in
 * MGX_CRASH_AT. Returns the raw waitpid status. */
int lh_run(const char *const *args, const char *crash_at, const char *out_path, const char *err_path);
/* Starts the same without waiting; returns the pid. */
pid_t lh_start(const char *const *args, const char *crash_at);
/* Reads a small file into buf (NUL-terminated); returns its length or -1. */
long lh_slurp(const char *path, char *buf, size_t cap);
/* Writes a random interval input for `mgx ledger settle`: n_trades trades among n_parts
 * participants, some short or flagged readings. Deterministic in seed. */
void lh_write_input(const char *path, int64_t interval_id, int n_trades, int n_parts, uint64_t seed);

#endif
