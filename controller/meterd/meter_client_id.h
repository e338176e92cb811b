/*
 * Internal: the MQTT client id `mgx meter` uses when [bus] client_id is not set, and the name
 * the default outbox file takes from it. The broker allows one connection per client id and
 * drops the older one when a second connects with the same id, so the default must differ
 * between homes without anyone configuring it. The hostname (the old default) does not: many
 * homes' Raspberry Pis are all called "raspberrypi". The default is built from the community
 * and the first [meter ID] of the file instead; a meter id is a topic level of its own
 * (meter/<id>/...), which two homes of one community cannot share, and the community keeps it
 * apart from other communities on the same broker. Pure: no I/O, no globals.
 */
#ifndef MGX_CTL_METER_CLIENT_ID_H
#define MGX_CTL_METER_CLIENT_ID_H

#include "bus/bus.h"

#include <stddef.h>

/* "meter-<community>-<meter_id>" into out; characters that cannot stand in a client id (one
 * topic level of A-Z a-z 0-9 . _ -) become '-'. 0, or -1 when it would be longer than an id
 * may be (BUS_ID_MAX - 1) or an input is empty: then [bus] client_id must be set. */
int ctl_meter_client_id(const char *community, const char *meter_id, char out[BUS_ID_MAX]);

/* The default of earlier versions: "meter-<hostname>", sanitised the same way and cut to fit. Kept
 * to find an outbox an older version left under that name. Always fills out. */
void ctl_meter_legacy_client_id(const char *hostname, char out[BUS_ID_MAX]);

/* The default outbox path: "<client_id>.outbox.db" in the directory of config_path. 0, or -1
 * when it does not fit in cap. */
int ctl_meter_outbox_path(const char *config_path, const char *client_id, char *out, size_t cap);

#endif
