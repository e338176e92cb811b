/* The raw Ausgrid CSV read independently of mgx's own parsers (see ausgrid_raw.h). */
#include "ausgrid_raw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ausgrid_read_raw(const char *path, double *gc, double *gg, int max_rows)
{
    char line[256];
    FILE *fp = fopen(path, "r");
    int n = 0;
    if (!fp)
        return -1;
    if (!fgets(line, sizeof line, fp)) /* header ",GC,GG" */
        goto out;
    while (n < max_rows && fgets(line, sizeof line, fp)) {
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c2)
            break;
        gc[n] = strtod(c1 + 1, NULL);
        gg[n] = strtod(c2 + 1, NULL);
        n++;
    }
out:
    fclose(fp);
    return n;
}
