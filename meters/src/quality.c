/*
 * Names for the reading quality bits, the form in which they appear on the bus and in logs.
 */
#include "mgx/meter.h"

#include <string.h>

static const char *const QUALITY_NAMES[] = {"comm",      "nan",  "not_implemented",
                                            "backwards", "jump", "reset",
                                            "rollover",  "negative", "range",
                                            "limit",     "flood", "conflict",
                                            "disputed",  "peer"};
#define N_NAMES (sizeof QUALITY_NAMES / sizeof QUALITY_NAMES[0])

static int append(char *buf, size_t len, size_t *used, const char *name)
{
    size_t n = strlen(name);
    size_t sep = *used ? 1 : 0;
    if (*used + sep + n + 1 > len)
        return -1;
    if (sep)
        buf[(*used)++] = ',';
    memcpy(buf + *used, name, n + 1);
    *used += n;
    return 0;
}

int mtr_quality_str(uint32_t quality, char *buf, unsigned len)
{
    size_t used = 0;
    if (!buf || len == 0)
        return -1;
    buf[0] = '\0';
    if (quality == MTR_Q_GOOD)
        return append(buf, len, &used, "good") ? -1 : (int)used;
    for (unsigned bit = 0; bit < 32; bit++) {
        if (!(quality & (1u << bit)))
            continue;
        if (append(buf, len, &used, bit < N_NAMES ? QUALITY_NAMES[bit] : "unknown"))
            return -1;
    }
    return (int)used;
}
