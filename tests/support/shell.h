/*
 * Test support: running a shell command line and taking its exit status, for tests that drive
 * the `mgx` binary or a script with redirections; starting a daemon with its output in a log;
 * waiting for a child process with a deadline.
 */
#ifndef MGX_TEST_SHELL_H
#define MGX_TEST_SHELL_H

/* Runs the command line printf-formatted from fmt through /bin/sh (system(3)); returns its exit
 * status, or -1 when it could not run or was killed by a signal. */
int tst_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#include <sys/types.h>

/* The exit status of child pid within timeout_ms (128 + the signal if a signal ended it), or -1
 * when it did not end in time: it is then killed with SIGKILL and reaped. */
int tst_wait_exit(pid_t pid, int timeout_ms);

/* Starts argv[0] with argv (NULL-terminated) without a shell, stdout and stderr appended to log,
 * the child told to die (SIGTERM) with this process; returns its pid (the test fails if fork
 * does). */
pid_t tst_spawn_logged(const char *log, char *const argv[]);

#endif
