/*
 * Test support: witness runs over a test controller's ledger (see witness_run.h).
 */
#define _GNU_SOURCE
#include "witness_run.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/wall_clock.h"
#include "homes.h"
#include "shell.h"

#include <stdio.h>
#include <string.h>

void tst_witness_keys(const char *bin, const char *dir, const char *key_id)
{
    assert_int_equal(tst_sh("cd %s && %s ledger keygen %s --out community.skey > community.vkey "
                            "&& %s keygen --out w > /dev/null",
                            dir, bin, key_id, bin),
                     0);
}

void tst_witness_output(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = 0;
    if (f)
        fclose(f);
}

int tst_witness_run(const char *bin, const char *dir, const char *tag, const char *db,
                    const char *extra, char *out, size_t cap)
{
    tst_sh("rm -f %s/%s.state %s/%s.cosigned", dir, tag, dir, tag);
    char ini[600];
    snprintf(ini, sizeof ini, "%s/%s.ini", dir, tag);
    FILE *f = fopen(ini, "w");
    assert_non_null(f);
    fprintf(f,
            "[witness]\nname = witness.example/%s\nkey_file = w.key\nledger = %s\n"
            "log_key_file = community.vkey\nstate = %s.state\nout = %s.cosigned\n%s",
            tag, db, tag, tag, extra);
    fclose(f);
    int rc = tst_sh("%s witness %s --once > %s/%s.out 2>&1", bin, ini, dir, tag);
    char path[700];
    snprintf(path, sizeof path, "%s/%s.out", dir, tag);
    tst_witness_output(path, out, cap);
    return rc;
}

void tst_expect_in(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("expected '%s' in: %s", want, text);
}

void tst_witness_settle_altered(const char *bin, const char *conf, const char *anchor,
                                const char *log, bus_client *c, const char *db, const char *dir,
                                int64_t iv)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM ledger_block WHERE interval_id >= %lld",
             (long long)iv);
    pid_t ctl = tst_controller_start(bin, conf, anchor, log, NULL);
    int64_t until = ctl_wall_ms() + 120000;
    while (tst_db_path_int(db, sql) < 1 && ctl_wall_ms() < until)
        bus_loop(c, 50);
    tst_controller_stop(ctl);
    assert_true(tst_db_path_int(db, sql) >= 1);
    assert_int_equal(
        tst_sh("%s ledger verify %s --vkey-file %s/community.vkey > /dev/null 2>&1", bin, db, dir),
        0);
}
