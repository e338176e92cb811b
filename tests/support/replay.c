/*
 * Replay driver: feeds every file of the directories (or the files) named on the command line to
 * LLVMFuzzerTestOneInput, so the fuzz corpus runs in the normal test suite with any compiler and
 * without libFuzzer. An invariant violation aborts; an empty or unreadable corpus is a failure
 * too, so a misplaced path cannot make the test pass vacuously.
 */
#define _POSIX_C_SOURCE 200809L
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_FILE_BYTES ((long)1 << 20)

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    int rc = -1;
    uint8_t *buf = NULL;
    if (fseek(f, 0, SEEK_END) != 0)
        goto out;
    long size = ftell(f);
    if (size < 0 || size > REPLAY_MAX_FILE_BYTES || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    /* one spare byte so even an empty input has a valid pointer, as under libFuzzer */
    buf = malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size)
        goto out;
    LLVMFuzzerTestOneInput(buf, (size_t)size);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "replay: cannot read %s\n", path);
    free(buf);
    fclose(f);
    return rc;
}

/* Runs every regular file of dir; returns the count or -1. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    long count = 0;
    struct dirent *e;
    char path[4096];
    while (count >= 0 && (e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
            stat(path, &st) != 0)
            count = -1;
        else if (S_ISREG(st.st_mode))
            count = run_file(path) ? -1 : count + 1;
    }
    closedir(d);
    return count;
}

int main(int argc, char **argv)
{
    long total = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long n = stat(argv[i], &st) != 0 ? -1
                 : S_ISDIR(st.st_mode)   ? run_dir(argv[i])
                                         : (run_file(argv[i]) ? -1 : 1);
        if (n <= 0) {
            fprintf(stderr, "replay: %s: no input could be run\n", argv[i]);
            return 1;
        }
        total += n;
    }
    printf("replayed %ld inputs\n", total);
    return 0;
}
