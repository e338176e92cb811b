/*
 * Test support: reading and writing whole files, the one copy of what the tests used to write
 * for themselves (config files they hand a daemon, logs and outputs they read back).
 */
#ifndef MGX_TEST_FILES_H
#define MGX_TEST_FILES_H

#include <stddef.h>
#include <sys/types.h>

/* The whole file, NUL-terminated, its length in *len (len may be NULL); NULL when it cannot be
 * opened or read. Caller frees. */
char *tst_file_read(const char *path, size_t *len);
/* The whole file as text; a file that cannot be read fails the test. Caller frees. */
char *tst_file_text(const char *path);
/* The same, but "" when the file does not exist (yet): for logs a test polls. Never NULL;
 * caller frees. */
char *tst_file_text_or_empty(const char *path);
/* Writes text to path (created or truncated) and sets its mode (whatever the umask); a failure
 * fails the test. */
void tst_file_write(const char *path, const char *text, mode_t mode);

#endif
