/*
 * Internal: whole-file reads for the CLI, bounded so a wrong path to a huge file fails clearly
 * instead of exhausting memory.
 */
#ifndef MGX_CTL_FILE_H
#define MGX_CTL_FILE_H

#include <stddef.h>

/* Reads path ("-" for stdin) into a malloc'd buffer (NUL-terminated; *len excludes the NUL). Returns 0, or -1
 * with errno set (EFBIG when larger than max_bytes). The caller frees *buf. */
int ctl_read_file(const char *path, size_t max_bytes, char **buf, size_t *len);

#endif
