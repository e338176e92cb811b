/*
 * Test support: running a shell command line and taking its exit status, for tests that drive
 * the `mgx` binary or a script with redirections.
 */
#ifndef MGX_TEST_SHELL_H
#define MGX_TEST_SHELL_H

/* Runs the command line printf-formatted from fmt through /bin/sh (system(3)); returns its exit
 * status, or -1 when it could not run or was killed by a signal. */
int tst_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
