/*
 * Fuzz harness for the scenario INI reader (sim/src/scenario.c). sim_scenario_load reads a path
 * and scenario.c has no in-memory entry point, so each input is written to a fresh mkstemp file
 * under /tmp, loaded, and unlinked. Any byte string must either load into a scenario that
 * sim_scenario_validate accepts and whose every home has a well-formed name, or fail with
 * SIM_E_PARSE and a message "path:line: ..." (or "path: ...") naming a line that exists.
 */
#define _POSIX_C_SOURCE 200809L
#include "fuzz.h"

#include "mgx/scenario.h"
#include "mgx/simdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim_fuzz_check.h"

/* Inputs past this size only slow the fuzzer down; the reader's own bound is per line. */
#define FUZZ_MAX_INPUT 65536

static _Noreturn void die(const char *what, const char *detail)
{
    sim_fuzz_die("fuzz_scenario", what, detail);
}

/* Every home's name is "<group>-<n>", fits SIM_NAME_MAX, and leads back to its group. */
static void check_home_names(const sim_scenario *sc)
{
    size_t h = 0;
    char name[SIM_NAME_MAX], want[SIM_NAME_MAX + 16];
    for (size_t g = 0; g < sc->n_groups; g++) {
        const sim_group *gr = &sc->groups[g];
        if (gr->count == 0)
            continue;
        /* the first and last home of the group */
        size_t idx[2] = {h, h + gr->count - 1};
        for (int j = 0; j < 2; j++) {
            sim_home_name(sc, idx[j], name, sizeof name);
            snprintf(want, sizeof want, "%s-%zu", gr->name, idx[j] - h + 1);
            if (strcmp(name, want) != 0)
                die("home name truncated or wrong", want);
        }
        h += gr->count;
    }
    if (h != sim_scenario_homes(sc) || h == 0 || h > SIM_MAX_HOMES)
        die("home count out of bounds", NULL);
}

static void check_scenario(const sim_scenario *sc)
{
    char err[512];
    if (sim_scenario_validate(sc, err, sizeof err) != SIM_OK)
        die("a loaded scenario fails validation", err);
    if (sc->n_groups < 1 || sc->n_groups > SIM_MAX_GROUPS)
        die("group count out of bounds", NULL);
    if (memchr(sc->name, '\0', sizeof sc->name) == NULL)
        die("scenario name not terminated", NULL);
    if (sc->interval_min == 0 || 1440 % sc->interval_min != 0 || sc->days < 1 ||
        sc->days > SIM_MAX_DAYS)
        die("period out of bounds", NULL);
    if (sc->feed_in_uc_per_kwh < 0 || sc->feed_in_uc_per_kwh > sc->retail_uc_per_kwh ||
        sc->retail_uc_per_kwh > MKT_PRICE_MAX_UC_PER_KWH || sc->network_fee_uc_per_kwh < 0)
        die("tariffs out of bounds", NULL);
    for (size_t g = 0; g < sc->n_groups; g++) {
        const sim_group *gr = &sc->groups[g];
        if (memchr(gr->name, '\0', sizeof gr->name) == NULL || gr->name[0] == '\0')
            die("group name empty or not terminated", NULL);
        if (!(gr->soc_min <= gr->soc_initial && gr->soc_initial <= gr->soc_max))
            die("state-of-charge window broken", gr->name);
    }
    check_home_names(sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/mgx-fuzz-scenario-XXXXXX";
    char err[512];
    sim_scenario sc;
    if (size > FUZZ_MAX_INPUT)
        return 0;
    int fd = mkstemp(path);
    if (fd < 0)
        die("mkstemp failed", path);
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0)
            die("cannot write the temporary file", path);
        done += (size_t)w;
    }
    close(fd);
    memset(err, 0, sizeof err);
    int rc = sim_scenario_load(path, &sc, err, sizeof err);
    unlink(path);
    if (rc == SIM_OK)
        check_scenario(&sc);
    else
        sim_fuzz_check_error("fuzz_scenario", rc, err, path, sim_fuzz_count_lines(data, size));
    return 0;
}
