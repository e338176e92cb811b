/*
 * Test support: a real Mosquitto broker owned by one test. It listens on 127.0.0.1 at a free
 * port, with its own config and data in a fresh temporary folder, and can be stopped and
 * started again on the same port to test reconnects and outboxes. Never the system service.
 */
#ifndef MGX_TEST_BROKER_H
#define MGX_TEST_BROKER_H

#include <stdbool.h>

typedef struct tst_broker tst_broker;

/*
 * Starts mosquitto with `listener PORT 127.0.0.1`, anonymous access and no persistence, plus
 * the lines in extra_conf (may be NULL; e.g. "password_file ...\nacl_file ...\n" replaces the
 * anonymous default when it contains "allow_anonymous false"). Returns NULL (with a message
 * on stderr) if mosquitto is missing or does not come up within 10 s. Free with
 * tst_broker_free, which stops it.
 */
tst_broker *tst_broker_start(const char *extra_conf);
int tst_broker_port(const tst_broker *b);
const char *tst_broker_dir(const tst_broker *b); /* the broker's private temporary folder */
/* kill -9 the broker (as a crash or outage would), and start it again on the same port. */
void tst_broker_kill(tst_broker *b);
bool tst_broker_restart(tst_broker *b);
/* SIGTERM to the broker (a clean shutdown, as systemd or an upgrade stops it) and wait for it
 * to exit; false (with a message on stderr) if it had not within 10 s (it is then killed) or
 * exited with a non-zero status. tst_broker_restart_clean also starts it again on the same
 * port, and is false if either step was. */
bool tst_broker_stop(tst_broker *b);
bool tst_broker_restart_clean(tst_broker *b);
void tst_broker_free(tst_broker *b);

/* A fresh temporary folder for a test (mkdtemp under $TMPDIR or /tmp); caller frees the string. */
char *tst_tmpdir(const char *tag);
/* rm -rf of a folder made by tst_tmpdir; ignores errors. */
void tst_rmtree(const char *dir);
/* cmocka group fixtures for a group of tests that work in one temporary folder: the setup makes
 * it and points tst_dir at it (fails the group if it cannot), the teardown removes it. */
extern char *tst_dir;
int tst_dir_setup(void **state);
int tst_dir_teardown(void **state);
/* A TCP port on 127.0.0.1 free at the time of the call. */
int tst_free_port(void);
/* Sleeps ms milliseconds. */
void tst_sleep_ms(int ms);

#endif
