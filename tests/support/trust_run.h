/*
 * Test support: the trust tests' run of a settling `mgx controller` on the community broker as
 * shipped (secure_broker.h), fed by homes' meters that publish raw readings under their own
 * logins (settle/test_trust.c, settle/test_boundary_peer.c). It makes the run's folder, key pair,
 * password file and the common part of the config, connects the meters and the auditor, starts
 * the controller on a fast clock once it is on the bus, and walks the ledger's positions after
 * the run; each test keeps its own readings and checks.
 */
#ifndef MGX_TEST_TRUST_RUN_H
#define MGX_TEST_TRUST_RUN_H

#include "common/interval.h"
#include "db/registry.h"
#include "mgx/ledger_record.h"
#include "mqtt_client.h"
#include "secure_broker.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Makes the run's folder (tst_controller_dir named prefix, which names db, conf and log), the
 * settlement key pair community.skey / community.vkey for key_id in it and the controller's
 * password file, and writes the config's [bus] section (the controller's login on br's password
 * listener) and the settling part of [controller] (900 s intervals, the gate 300 s before, 4
 * ahead, settlement grace_s after, readings at most 300 s apart and 100 kW). Returns the folder
 * (the caller removes it with tst_trust_finish) and the open config in *conf_f for the test's
 * own [controller] lines; the caller closes it. */
char *tst_trust_setup(const char *bin, sb_broker *br, const char *prefix, const char *key_id,
                      const char *community, int grace_s, char *db, char *conf, char *log,
                      FILE **conf_f);

/* Adds the n participants ids[h] to the registry of the database at db_path with role, meter
 * id = participant id (as the broker's ACL has it) and a public key of bytes key0 + h. */
void tst_trust_register(const char *db_path, const char *const *ids, int n, int key0,
                        ctl_role role);
/* Connects as login over TLS with the password listener (password "pw-<login>"), client id
 * client_id. */
tc_client *tst_trust_connect(sb_broker *br, const char *login, const char *client_id);
/* Connects meter[h] for each of the n homes ids[h] with the home's meter login "<id>.meter"
 * (client id "<id>-meter"). */
void tst_trust_meters(sb_broker *br, const char *const *ids, int n, tc_client **meter);
/* The test-only login "auditor", which may read everything (never "controller": one login is
 * one connection, it would knock the controller off), subscribed to the community's statements. */
tc_client *tst_trust_auditor(sb_broker *br, const char *community);

/* The auditor's message i parsed, when it is a statement (the caller frees it with
 * json_decref); NULL for a message on any other topic. */
json_t *tst_trust_statement(tc_client *auditor, size_t i);

/* The simulated clock of the run: 2024-06-01T00:00:00Z at the current second, speed times real
 * time; anchor gets the matching --clock-anchor argument. */
ctl_clock tst_trust_clock(char *anchor, size_t cap, int speed);
/* Starts `bin controller conf --clock-speed speed --clock-anchor anchor` with stderr appended to
 * log and returns once it is on the bus: its retained status reached the auditor, and 200 ms
 * more for its subscriptions, which follow the status (so no reading goes to a broker with no
 * subscriber; a sanitized controller takes seconds to start). Returns the pid. */
pid_t tst_trust_controller_start(const char *bin, const char *conf, const char *log, int speed,
                                 const char *anchor, tc_client *auditor, const char *community);
/* `bin ledger verify db --vkey-file dir/community.vkey` succeeds (its output in dir/verify.out). */
void tst_trust_verify(const char *bin, const char *db_path, const char *dir);

/* The ledger's blocks in height order and each one's positions, read from the database after
 * the run:
 *     tst_ledger_walk w; int64_t iv; stl_position p;
 *     tst_ledger_walk_open(&w, db_path);
 *     while (tst_ledger_next_block(&w, &iv))
 *         while (tst_ledger_next_position(&w, &p)) ...
 *     tst_ledger_walk_close(&w); */
typedef struct {
    sqlite3 *db;
    sqlite3_stmt *blocks, *txs;
} tst_ledger_walk;
void tst_ledger_walk_open(tst_ledger_walk *w, const char *db_path);
/* The next block's interval id in *iv: true, or false after the last block. */
bool tst_ledger_next_block(tst_ledger_walk *w, int64_t *iv);
/* The current block's next position in *p (its other records passed over): true, or false after
 * its last. */
bool tst_ledger_next_position(tst_ledger_walk *w, stl_position *p);
void tst_ledger_walk_close(tst_ledger_walk *w);
/* The index in ids[0..n) of the home the database's market id stands for, -1 if none. */
int tst_trust_home_of(sqlite3 *db, uint64_t market_id, const char *const *ids, int n);

/* The end of a run: the folder kept (and named on stderr) when MGX_KEEP_TMP is set, otherwise
 * removed; then freed. */
void tst_trust_finish(char *dir);

#endif
