/*
 * Test helpers for the `mgx ledger` tests (ledger_harness.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "ledger_harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *mgx_bin(void)
{
    const char *b = getenv("MGX_BIN");
    if (!b || !*b) {
        fprintf(stderr, "MGX_BIN is not set\n");
        exit(2);
    }
    return b;
}

static void child(const char *const *args, const char *crash_at, const char *out_path,
                  const char *err_path)
{
    char *argv[64];
    int n = 0;
    argv[n++] = strdup(mgx_bin()); /* the child owns copies: execv takes char *const[] */
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = strdup(args[i]);
    argv[n] = NULL;
    if (crash_at)
        setenv("MGX_CRASH_AT", crash_at, 1);
    else
        unsetenv("MGX_CRASH_AT");
    int o = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0)
        _exit(127);
    dup2(o, 1);
    dup2(e, 2);
    execv(argv[0], argv);
    _exit(127);
}

pid_t lh_start(const char *const *args, const char *crash_at)
{
    pid_t pid = fork();
    if (pid == 0)
        child(args, crash_at, NULL, NULL);
    return pid;
}

int lh_run(const char *const *args, const char *crash_at, const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    if (pid == 0)
        child(args, crash_at, out_path, err_path);
    int st = -1;
    if (pid > 0)
        waitpid(pid, &st, 0);
    return st;
}

long lh_slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return (long)n;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

void lh_write_input(const char *path, int64_t interval_id, int n_trades, int n_parts, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    uint64_t s = seed;
    int64_t *sold = calloc((size_t)n_parts, sizeof *sold), *bought = calloc((size_t)n_parts, sizeof *bought);
    fprintf(f, "{\"interval_id\": %lld, \"interval_len_s\": 900, \"tariffs\": "
               "{\"feed_in_uc_per_kwh\": 80000, \"retail_uc_per_kwh\": 300000, "
               "\"network_fee_uc_per_kwh\": 10000},\n\"trades\": [",
            (long long)interval_id);
    /* sellers are the first half of the participants, buyers the second */
    int half = n_parts / 2;
    for (int i = 0; i < n_trades; i++) {
        int a = (int)(rnd(&s) % (uint64_t)half), b = half + (int)(rnd(&s) % (uint64_t)(n_parts - half));
        int64_t e = 1 + (int64_t)(rnd(&s) % 3000), p = 80000 + (int64_t)(rnd(&s) % 200001);
        sold[a] += e;
        bought[b] += e;
        fprintf(f, "%s{\"seller\":%d,\"buyer\":%d,\"energy_wh\":%lld,\"price_uc_per_kwh\":%lld}",
                i ? ",\n" : "", a + 1, b + 1, (long long)e, (long long)p);
    }
    fprintf(f, "],\n\"meters\": [");
    int first = 1;
    for (int i = 0; i < n_parts; i++) {
        if (rnd(&s) % 20 == 0)
            continue; /* missing */
        int64_t ex = sold[i], im = bought[i];
        int mode = (int)(rnd(&s) % 4);
        if (mode == 0)
            ex = ex ? (int64_t)(rnd(&s) % (uint64_t)ex) : 0;
        if (mode == 1)
            im = im + (int64_t)(rnd(&s) % 1000);
        unsigned q = rnd(&s) % 25 == 0 ? 16u : 0u;
        fprintf(f, "%s{\"participant\":%d,\"import_wh\":%lld,\"export_wh\":%lld,\"quality\":%u}",
                first ? "" : ",\n", i + 1, (long long)im, (long long)ex, q);
        first = 0;
    }
    fprintf(f, "]}\n");
    fclose(f);
    free(sold);
    free(bought);
}
