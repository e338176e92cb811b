/*
 * Test support: the trust tests' controller run on the shipped community broker and the walk of
 * its ledger (see trust_run.h).
 */
#define _GNU_SOURCE
#include "trust_run.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "broker.h"
#include "common/wall_clock.h"
#include "files.h"
#include "homes.h"
#include "shell.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tst_trust_setup(const char *bin, sb_broker *br, const char *prefix, const char *key_id,
                      const char *community, int grace_s, char *db, char *conf, char *log,
                      FILE **conf_f)
{
    char pw[TST_CTL_PATH_MAX + 16];
    char *dir = tst_controller_dir(prefix, db, conf, log);
    assert_int_equal(tst_sh("%s ledger keygen %s --out %s/community.skey > %s/community.vkey",
                            bin, key_id, dir, dir),
                     0);
    snprintf(pw, sizeof pw, "%s/ctl.pw", dir);
    tst_file_write(pw, "pw-controller\n", 0600);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[bus]\nhost = 127.0.0.1\nport = %d\nclient_id = controller\nusername = controller\n"
            "password_file = %s\ntls_ca = %s\nbackoff_max_ms = 500\n"
            "[controller]\ncommunity = %s\ndb = %s\ninterval_s = 900\n"
            "gate_closure_s = 300\nmax_ahead_intervals = 4\nsettlement_grace_s = %d\n"
            "settlement_key = community.skey\nreading_max_gap_s = 300\n"
            "meter_max_power_w = 100000\n",
            sb_port_password(br), pw, sb_cafile(br), community, db, grace_s);
    *conf_f = f;
    return dir;
}

void tst_trust_register(const char *db_path, const char *const *ids, int n, int key0,
                        ctl_role role)
{
    ctl_db *reg = NULL;
    assert_int_equal(ctl_registry_open(db_path, &reg, NULL, 0), CTL_REG_OK);
    for (int h = 0; h < n; h++) {
        ctl_participant p;
        memset(&p, 0, sizeof p);
        snprintf(p.id, sizeof p.id, "%s", ids[h]);
        snprintf(p.meter_id, sizeof p.meter_id, "%s", ids[h]);
        memset(p.pubkey, key0 + h, sizeof p.pubkey);
        p.role = role;
        assert_int_equal(ctl_registry_add(reg, &p, 1), CTL_REG_OK);
    }
    ctl_db_close(reg);
}

tc_client *tst_trust_connect(sb_broker *br, const char *login, const char *client_id)
{
    int reason;
    tc_opts o = sb_password_opts(br, login, client_id);
    tc_client *c = tc_connect(&o, 10000, &reason);
    assert_non_null(c);
    return c;
}

void tst_trust_meters(sb_broker *br, const char *const *ids, int n, tc_client **meter)
{
    char cid[64], login[64];
    for (int h = 0; h < n; h++) {
        snprintf(cid, sizeof cid, "%s-meter", ids[h]);
        snprintf(login, sizeof login, "%s.meter", ids[h]);
        meter[h] = tst_trust_connect(br, login, cid);
    }
}

tc_client *tst_trust_auditor(sb_broker *br, const char *community)
{
    char filter[128];
    tc_client *auditor = tst_trust_connect(br, "auditor", "auditor");
    snprintf(filter, sizeof filter, "mgx/v1/%s/statement/+", community);
    assert_int_equal(tc_subscribe(auditor, filter, 10000), 1);
    return auditor;
}

json_t *tst_trust_statement(tc_client *auditor, size_t i)
{
    tc_message m;
    assert_true(tc_get(auditor, i, &m));
    if (!strstr(m.topic, "/statement/"))
        return NULL;
    json_t *j = json_loads(m.payload, 0, NULL);
    assert_non_null(j);
    return j;
}

ctl_clock tst_trust_clock(char *anchor, size_t cap, int speed)
{
    int64_t t0_s = ctl_wall_ms() / 1000;
    snprintf(anchor, cap, "%lld:1717200000", (long long)t0_s);
    return (ctl_clock){t0_s * 1000, INT64_C(1717200000000), speed};
}

pid_t tst_trust_controller_start(const char *bin, const char *conf, const char *log, int speed,
                                 const char *anchor, tc_client *auditor, const char *community)
{
    char status[128];
    fflush(NULL);
    pid_t ctl = fork();
    assert_true(ctl >= 0);
    if (ctl == 0) {
        FILE *e = freopen(log, "a", stderr);
        (void)e;
        char s[16];
        snprintf(s, sizeof s, "%d", speed);
        execl(bin, bin, "controller", conf, "--clock-speed", s, "--clock-anchor", anchor,
              (char *)NULL);
        _exit(127);
    }
    snprintf(status, sizeof status, "mgx/v1/%s/status/controller", community);
    assert_int_equal(tc_subscribe(auditor, status, 10000), 1);
    assert_true(tc_wait_topic(auditor, status, NULL, NULL, 60000));
    usleep(200000);
    return ctl;
}

void tst_trust_verify(const char *bin, const char *db_path, const char *dir)
{
    assert_int_equal(tst_sh("%s ledger verify %s --vkey-file %s/community.vkey > %s/verify.out "
                            "2>&1",
                            bin, db_path, dir, dir),
                     0);
}

void tst_ledger_walk_open(tst_ledger_walk *w, const char *db_path)
{
    assert_int_equal(sqlite3_open_v2(db_path, &w->db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(w->db, 5000);
    assert_int_equal(sqlite3_prepare_v2(w->db,
                                        "SELECT height, interval_id FROM ledger_block ORDER BY "
                                        "height",
                                        -1, &w->blocks, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(w->db,
                                        "SELECT body FROM ledger_tx WHERE height = ?1 ORDER BY "
                                        "log_index",
                                        -1, &w->txs, NULL),
                     SQLITE_OK);
}

bool tst_ledger_next_block(tst_ledger_walk *w, int64_t *iv)
{
    if (sqlite3_step(w->blocks) != SQLITE_ROW)
        return false;
    *iv = sqlite3_column_int64(w->blocks, 1);
    sqlite3_reset(w->txs);
    sqlite3_bind_int64(w->txs, 1, sqlite3_column_int64(w->blocks, 0));
    return true;
}

bool tst_ledger_next_position(tst_ledger_walk *w, stl_position *p)
{
    while (sqlite3_step(w->txs) == SQLITE_ROW) {
        stl_tx tx;
        assert_int_equal(stl_tx_decode(sqlite3_column_blob(w->txs, 0),
                                       (size_t)sqlite3_column_bytes(w->txs, 0), &tx),
                         STL_OK);
        if (tx.kind != STL_TX_POSITION)
            continue;
        *p = tx.position;
        return true;
    }
    return false;
}

void tst_ledger_walk_close(tst_ledger_walk *w)
{
    sqlite3_finalize(w->txs);
    sqlite3_finalize(w->blocks);
    sqlite3_close(w->db);
}

int tst_trust_home_of(sqlite3 *db, uint64_t market_id, const char *const *ids, int n)
{
    sqlite3_stmt *st;
    int h = -1;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT participant FROM market_ids WHERE market_id = ?1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)market_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        for (int i = 0; i < n; i++)
            if (strcmp((const char *)sqlite3_column_text(st, 0), ids[i]) == 0)
                h = i;
    sqlite3_finalize(st);
    return h;
}

void tst_trust_finish(char *dir)
{
    if (getenv("MGX_KEEP_TMP"))
        fprintf(stderr, "kept %s\n", dir);
    else
        tst_rmtree(dir);
    free(dir);
}
