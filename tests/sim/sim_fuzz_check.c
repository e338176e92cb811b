/* Shared checks of the simulator parsers' fuzz harnesses (see sim_fuzz_check.h). */
#include "sim_fuzz_check.h"

#include "mgx/scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sim_fuzz_die(const char *who, const char *what, const char *detail)
{
    fprintf(stderr, "%s: %s%s%s\n", who, what, detail ? ": " : "", detail ? detail : "");
    abort();
}

size_t sim_fuzz_count_lines(const uint8_t *d, size_t n)
{
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += d[i] == '\n';
    return lines;
}

void sim_fuzz_check_error(const char *who, int rc, const char *err, const char *name,
                          size_t lines)
{
    size_t plen = strlen(name);
    if (rc != SIM_E_PARSE && rc != SIM_E_NOMEM)
        sim_fuzz_die(who, "parse failed with an unexpected code", err);
    if (memchr(err, '\0', 512) == NULL || strncmp(err, name, plen) != 0 || err[plen] != ':')
        sim_fuzz_die(who, "error message does not start with the input's name", err);
    const char *p = err + plen + 1;
    if (*p == ' ')
        return;
    char *end;
    unsigned long line = strtoul(p, &end, 10);
    if (end == p || *end != ':' || line < 1 || line > lines)
        sim_fuzz_die(who, "error message names a line that does not exist", err);
}
