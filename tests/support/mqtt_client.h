/*
 * Test support for the agent and bus-security tests: a small MQTT v5 client on libmosquitto that
 * records what happens to it (CONNACK reason, PUBACK reasons, received messages) so a test can
 * play a home, a meter daemon or a fake controller and assert on exactly what the broker let
 * through. Each client runs libmosquitto's network thread; every accessor locks.
 */
#ifndef MGX_TEST_MQTT_CLIENT_H
#define MGX_TEST_MQTT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *host; /* default 127.0.0.1 */
    int port;
    const char *client_id; /* NULL: the broker assigns one */
    const char *username;  /* NULL: anonymous or certificate identity */
    const char *password;
    const char *cafile; /* NULL: no TLS */
    const char *certfile;
    const char *keyfile;
} tc_opts;

/* Messages a client keeps; later ones are dropped (and counted in tc_dropped). */
#define TC_MAX_MESSAGES 512
#define TC_MAX_PAYLOAD 8192

typedef struct {
    char topic[256];
    char payload[TC_MAX_PAYLOAD + 1]; /* NUL-terminated copy */
    size_t len;
    bool retained;
} tc_message;

typedef struct tc_client tc_client;

/* Connects and waits up to timeout_ms for the CONNACK. Returns the client when the broker
 * accepted it; otherwise NULL with *reason set to the CONNACK reason code (e.g. 135 not
 * authorized) or -1 when no CONNACK came (TLS refused, connection closed, timeout). */
tc_client *tc_connect(const tc_opts *o, int timeout_ms, int *reason);
/* Disconnects cleanly and frees. NULL is fine. */
void tc_free(tc_client *c);

/* Subscribes at QoS 1 and waits for the SUBACK; returns the granted QoS or reason code (>= 0),
 * -1 on timeout. */
int tc_subscribe(tc_client *c, const char *filter, int timeout_ms);
/* Publishes at qos and, for QoS 1, waits for the PUBACK. Returns its MQTT v5 reason code
 * (0 success, 135 not authorized, ...), 0 for QoS 0 once sent, -1 on error or timeout. */
int tc_publish(tc_client *c, const char *topic, const void *payload, size_t len, int qos,
               bool retain, int timeout_ms);

/* Queues a publish at qos and returns at once (0, or -1): for floods, where waiting for each
 * acknowledgement would measure the test instead of the broker (libmosquitto sends the queue,
 * QoS 1 with its in-flight window). */
int tc_publish_nowait(tc_client *c, const char *topic, const void *payload, size_t len, int qos);

/* Waits until a message on exactly this topic has arrived (at or after index *from, if from is
 * not NULL; *from is then set past it). Copies it to *out if out is not NULL. false on timeout. */
bool tc_wait_topic(tc_client *c, const char *topic, size_t *from, tc_message *out,
                   int timeout_ms);
/* Messages received so far, and a copy of message i. */
size_t tc_count(tc_client *c);
bool tc_get(tc_client *c, size_t i, tc_message *out);
/* How many messages on exactly this topic arrived. */
size_t tc_count_topic(tc_client *c, const char *topic);
/* true once the broker closed the connection. */
bool tc_disconnected(tc_client *c);

#endif
