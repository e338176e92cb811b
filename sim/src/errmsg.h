/*
 * Internal: the error text of the simulator's public calls. Every call that can fail takes a
 * caller's buffer (char *err, size_t err_len) beside its return code; this is the one place
 * that writes into it. Header-only so that the sources the input tests compile on their own
 * (scenario.c, simdata.c) need nothing more.
 */
#ifndef MGX_SIM_ERRMSG_H
#define MGX_SIM_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Formats the message into err (always NUL-terminated; nothing when err is NULL or len is 0)
 * and returns code, so a failing path reads `return sim_errf(err, len, SIM_E_IO, ...)`. */
static inline int sim_errf(char *err, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int sim_errf(char *err, size_t len, int code, const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return code;
}

#endif
