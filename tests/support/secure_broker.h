/*
 * Test support: the community broker exactly as shipped in config/mosquitto/, running on
 * loopback. It makes a CA, the broker's certificate and the users' credentials with the shipped
 * mgx-certs.sh, copies community.conf with only its paths and ports replaced, and starts
 * mosquitto on it, so the tests exercise the real config, ACL and script.
 *
 * Users made: "controller", "h-a" .. "h-g" with password "pw-<id>"; client certificates for
 * h-a and h-b; a rogue CA (not trusted by the broker) with its own certificate for "h-a"; and
 * h-a's read-only Home Assistant login "h-a.ha" (password "pw-h-a.ha", `mgx-certs.sh ha`);
 * the meter daemon logins "h-a.meter" .. "h-g.meter" and "bnd.meter" (password
 * "pw-<login>", `mgx-certs.sh meter`) and a client certificate for h-a.meter; and the
 * test-only logins "auditor" (password "pw-auditor"), which may read all of mgx/v1/#, and
 * "h-d-flood" ("pw-h-d-flood"), which may write h-d's meter topics. The shipped config
 * makes the client id the login, so two connections of one login knock each other off.
 */
#ifndef MGX_TEST_SECURE_BROKER_H
#define MGX_TEST_SECURE_BROKER_H

#include "mqtt_client.h"

typedef struct sb_broker sb_broker;

/* NULL (with a message on stderr) when openssl, mosquitto_passwd or mosquitto fail. */
sb_broker *sb_start(void);
void sb_free(sb_broker *b);
/* cmocka group fixtures for a group of tests against one such broker: the setup starts it as
 * sb_group_broker (fails the group if it cannot), the teardown stops it. */
extern sb_broker *sb_group_broker;
int sb_group_setup(void **state);
int sb_group_teardown(void **state);
/* kill -9 and start again on the same ports (persistence in its data folder). */
int sb_restart(sb_broker *b);
void sb_kill(sb_broker *b);

int sb_port_password(const sb_broker *b); /* the 8883 listener: TLS + password */
int sb_port_cert(const sb_broker *b);     /* the 8884 listener: TLS + client certificate */
const char *sb_dir(const sb_broker *b);   /* the broker's folder (certs, passwd, acl, log) */
const char *sb_cafile(const sb_broker *b);

/* Options for connecting as id over TLS with the password listener. The strings stay valid
 * until the next call for the same id, or sb_free. */
tc_opts sb_password_opts(sb_broker *b, const char *id, const char *client_id);
/* Options for connecting with id's client certificate (rogue: the one from the untrusted CA);
 * id is h-a, h-b or h-a.meter. */
tc_opts sb_cert_opts(sb_broker *b, const char *id, const char *client_id, bool rogue);

#endif
