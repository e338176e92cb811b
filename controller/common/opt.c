/* Strict option parsing: "12x", "", " 3" and out-of-range values are all errors. */
#include "common/opt.h"

#include <errno.h>
#include <stdlib.h>

int ctl_opt_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = (int64_t)v;
    return 0;
}
