/*
 * The controller's one growing array (grow.h).
 */
#include "common/grow.h"

#include <stdlib.h>

int ctl_grow(void **v, size_t *cap, size_t n, size_t size, size_t max)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    if (c > max)
        c = max;
    if (n >= c)
        return -1;
    void *p = realloc(*v, c * size);
    if (!p)
        return -1;
    *v = p;
    *cap = c;
    return 0;
}
