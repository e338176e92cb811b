/* Bounded whole-file reads for the CLI. */
#include "common/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int ctl_read_file(const char *path, size_t max_bytes, char **buf, size_t *len)
{
    int rc = -1;
    char *data = NULL;
    size_t n = 0, cap = 0;
    int is_stdin = path[0] == '-' && path[1] == '\0';
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return -1;
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) {
                errno = EFBIG;
                goto out;
            }
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > max_bytes)
                ncap = max_bytes;
            char *q = realloc(data, ncap + 1);
            if (!q)
                goto out;
            data = q;
            cap = ncap;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                goto out;
            break;
        }
    }
    if (!data && !(data = malloc(1)))
        goto out;
    data[n] = '\0';
    *buf = data;
    *len = n;
    data = NULL;
    rc = 0;
out:
    free(data);
    if (!is_stdin)
        fclose(f);
    return rc;
}
