/*
 * Test support for the bus tests: an independent MQTT subscriber written directly on
 * libmosquitto (not on bus.h, so the adapter is checked by something other than itself). It
 * records every message it receives, in arrival order, from its own network thread.
 */
#ifndef MGX_TEST_RECORDER_H
#define MGX_TEST_RECORDER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *topic;
    char *payload; /* NUL-terminated copy */
    size_t len;
    bool retain;
} rec_msg;

typedef struct recorder recorder;

/*
 * Connects (MQTT v5) to 127.0.0.1:port as client_id, subscribes to filter with QoS 1 and waits
 * for the SUBACK. persistent = true keeps the session on the broker (clean start off, session
 * expiry "never"), so messages published while the recorder is away are queued for it.
 * Returns NULL on failure.
 */
recorder *rec_start(int port, const char *client_id, const char *filter, bool persistent);
/* Waits up to timeout_ms until at least n messages arrived; returns the number arrived. */
size_t rec_wait(recorder *r, size_t n, int timeout_ms);
/* Waits for a message on topic (the latest one); copies its payload into buf. */
bool rec_wait_topic(recorder *r, const char *topic, char *buf, size_t len, int timeout_ms);
size_t rec_count(recorder *r);
/* A copy of message i (free with rec_msg_free), or false if there is none. */
bool rec_get(recorder *r, size_t i, rec_msg *out);
void rec_msg_free(rec_msg *m);
/* Reads the retained message of one topic with a fresh short-lived subscription. */
bool rec_retained(int port, const char *topic, char *buf, size_t len, int timeout_ms);
/* Disconnects and frees. */
void rec_stop(recorder *r);

#endif
