/*
 * Internal: formatting an error message into a caller's buffer. Most of the shell reports
 * failures as a code plus text written into `char *err, size_t errlen` supplied by the caller;
 * these two helpers are the one place that writes such a buffer, so every module treats a NULL
 * buffer or a zero length the same way (nothing is written) and truncates the same way
 * (vsnprintf: always NUL-terminated when len > 0).
 */
#ifndef MGX_CTL_ERRBUF_H
#define MGX_CTL_ERRBUF_H

#include <stddef.h>

/* Writes the formatted message into buf (of size len). buf may be NULL or len 0: then nothing. */
__attribute__((format(printf, 3, 4))) void ctl_errf(char *buf, size_t len, const char *fmt, ...);

/* ctl_errf, then returns code: `return ctl_fail(CFG_E_BAD, err, errlen, "...", ...);`. */
__attribute__((format(printf, 4, 5))) int ctl_fail(int code, char *buf, size_t len, const char *fmt,
                                                   ...);

#endif
