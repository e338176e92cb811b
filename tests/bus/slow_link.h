/*
 * Test support for the bus tests: a slow uplink between one MQTT client and the broker. A TCP
 * proxy on 127.0.0.1 that passes the broker's bytes straight through but lets the client's
 * MQTT packets through one at a time, at most one every pace_ms (a home on a thin line: the
 * packets a client writes together reach the broker spread out, in order). It serves one
 * connection at a time and accepts the next when that one ends, so clients can reconnect
 * through it; when the broker is down it closes the client's connection at once.
 */
#ifndef MGX_TEST_SLOW_LINK_H
#define MGX_TEST_SLOW_LINK_H

typedef struct slow_link slow_link;

/* Starts the proxy to 127.0.0.1:broker_port; NULL on failure. */
slow_link *slow_link_start(int broker_port, int pace_ms);
/* The port clients connect to. */
int slow_link_port(const slow_link *s);
/* Stops the proxy, closes its connections and frees s. */
void slow_link_stop(slow_link *s);

#endif
