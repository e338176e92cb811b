/*
 * Error-buffer formatting for the shell (see errbuf.h).
 */
#include "common/errbuf.h"

#include <stdarg.h>
#include <stdio.h>

__attribute__((format(printf, 3, 0))) static void verrf(char *buf, size_t len, const char *fmt,
                                                        va_list ap)
{
    if (buf && len)
        vsnprintf(buf, len, fmt, ap);
}

void ctl_errf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(buf, len, fmt, ap);
    va_end(ap);
}

int ctl_fail(int code, char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(buf, len, fmt, ap);
    va_end(ap);
    return code;
}
