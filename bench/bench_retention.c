/*
 * The controller's database size per home before and after the reading retention rule
 * (controller/db/retention.h), for docs/privacy.md. Fills a fresh community database with DAYS
 * days of one home's readings at one reading every PERIOD seconds (the meter daemon's default
 * poll_ms is 1000), as the controller stores them (ctl_store_put_readings, batches of 4096),
 * measures the file, thins every reading (cutoff at the end, 15-minute intervals) in the
 * daemon's passes of 5000 rows, VACUUMs (SQLite keeps freed pages in the file until then) and
 * measures again. Prints the sizes and their extrapolation to a year: a B-tree's size grows
 * linearly with its rows, so the figure per day times 365 is the home-year (run it for 1 and
 * 7 days to see the rate hold).
 *
 *   ./build-rel/bench/bench_retention [DAYS] [PERIOD_S] [DIR]
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_util.h"
#include "db/retention.h"
#include "db/store.h"

#define T0_MS INT64_C(1735689600000) /* 2025-01-01T00:00:00Z */

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* The main file after a checkpoint, so the WAL is folded in and empty. */
static long long db_size(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(db);
    return file_size(path);
}

int main(int argc, char **argv)
{
    int days = argc > 1 ? atoi(argv[1]) : 1;
    int period_s = argc > 2 ? atoi(argv[2]) : 1;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    if (days < 1 || days > 400 || period_s < 1 || period_s > 3600) {
        fprintf(stderr, "usage: bench_retention [DAYS 1..400] [PERIOD_S 1..3600] [DIR]\n");
        return 2;
    }
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/bench-retention-%d.db", dir, (int)getpid());
    ctl_store_identity id = {"bench", 900, T0_MS / 900000};
    ctl_store *s;
    if (ctl_store_open(path, &id, &s, err, sizeof err) != CTL_ST_OK) {
        fprintf(stderr, "bench_retention: %s\n", err);
        return 1;
    }
    long long empty = db_size(path);
    static mtr_sample batch[CTL_STORE_READINGS_MAX];
    int64_t n_readings = (int64_t)days * 86400 / period_s, n = 0;
    double t = bench_now_s();
    for (int64_t k = 0; k < n_readings; k++) {
        mtr_sample *r = &batch[n++];
        memset(r, 0, sizeof *r);
        snprintf(r->meter_id, sizeof r->meter_id, "h-017"); /* a typical participant id */
        int64_t sec = k * period_s;
        r->ts_ms = T0_MS + sec * 1000 + 37;         /* the poll's own phase */
        r->power_w = 300 + (sec * 7919) % 4200;      /* a varying household load */
        r->import_wh = 4200000 + sec * 1100 / 3600;  /* a meter some years old */
        r->export_wh = 1300000 + sec * 400 / 3600;
        r->soc_permille = -1;
        r->quality = 0;
        size_t ins;
        if (n == CTL_STORE_READINGS_MAX || k == n_readings - 1) {
            if (ctl_store_put_readings(s, batch, (size_t)n, r->ts_ms + 500, &ins) != CTL_ST_OK) {
                fprintf(stderr, "bench_retention: %s\n", ctl_store_errmsg(s));
                return 1;
            }
            n = 0;
        }
    }
    double fill_s = bench_now_s() - t;
    long long before = db_size(path);

    ctl_retention_state rs;
    memset(&rs, 0, sizeof rs);
    int64_t cutoff = T0_MS + (int64_t)days * 86400000;
    uint64_t deleted = 0, passes = 0;
    double worst_pass_s = 0;
    t = bench_now_s();
    for (;;) {
        ctl_retention_stats st = {0};
        double p = bench_now_s();
        if (ctl_store_thin_readings(s, &rs, cutoff, 900000, 5000, &st) != CTL_ST_OK) {
            fprintf(stderr, "bench_retention: %s\n", ctl_store_errmsg(s));
            return 1;
        }
        p = bench_now_s() - p;
        worst_pass_s = p > worst_pass_s ? p : worst_pass_s;
        passes++;
        deleted += st.deleted;
        if (st.deleted == 0 && !rs.cursor[0])
            break;
    }
    double thin_s = bench_now_s() - t;
    ctl_store_free(s);
    long long thinned_unvacuumed = db_size(path);
    sqlite3 *db;
    if (sqlite3_open(path, &db) == SQLITE_OK) {
        sqlite3_exec(db, "VACUUM", NULL, NULL, NULL);
        sqlite3_close(db);
    }
    long long after = db_size(path);
    unlink(path);

    double per_day_before = (double)(before - empty) / days,
           per_day_after = (double)(after - empty) / days;
    printf("readings: %" PRId64 " (%d days, one every %d s), filled in %.1f s\n", n_readings,
           days, period_s, fill_s);
    printf("empty database: %lld bytes\n", empty);
    printf("before: %lld bytes (%.1f bytes per reading)\n", before,
           (double)(before - empty) / (double)n_readings);
    printf("thinned: %" PRIu64 " deleted, %" PRId64 " kept, %" PRIu64
           " passes of 5000 rows in %.1f s (worst pass %.0f ms); %lld bytes before VACUUM\n",
           deleted, n_readings - (int64_t)deleted, passes, thin_s, worst_pass_s * 1000,
           thinned_unvacuumed);
    printf("after VACUUM: %lld bytes\n", after);
    printf("per home-year: %.1f MB before, %.2f MB after (x%.0f smaller)\n",
           per_day_before * 365 / 1e6, per_day_after * 365 / 1e6,
           per_day_after > 0 ? per_day_before / per_day_after : 0.0);
    return 0;
}
