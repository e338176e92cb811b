/* Internal: strict number parsing for command-line options. */
#ifndef MGX_CTL_OPT_H
#define MGX_CTL_OPT_H

#include <stdint.h>

/* Parses a base-10 integer in [min, max] with nothing after it. 0 on success, -1 otherwise. */
int ctl_opt_int64(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
