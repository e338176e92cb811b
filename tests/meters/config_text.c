/*
 * Test support: a meters config from text (see config_text.h).
 */
#include "config_text.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "broker.h" /* tst_tmpdir, tst_rmtree */
#include "files.h"
#include "mgx/meter_error.h"

mtr_config *tst_meters_config(const char *text)
{
    char *dir = tst_tmpdir("meters-cfg");
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/meters.ini", dir);
    tst_file_write(path, text, 0644);
    mtr_config *cfg = NULL;
    int rc = mtr_config_load(path, &cfg, err, sizeof err);
    if (rc)
        fprintf(stderr, "config: %s\n", err);
    assert_int_equal(rc, MTR_OK);
    tst_rmtree(dir);
    free(dir);
    return cfg;
}
