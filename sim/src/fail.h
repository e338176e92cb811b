/*
 * Internal: how a failing simulator call reports itself: the return code, and an English
 * message in the caller's buffer (err may be NULL or len 0: the message is dropped).
 */
#ifndef MGX_SIM_FAIL_H
#define MGX_SIM_FAIL_H

#include <stddef.h>

/* Formats the message into err (truncated to len) and returns code. */
__attribute__((format(printf, 4, 5))) int sim_fail(char *err, size_t len, int code, const char *fmt,
                                                   ...);

#endif
