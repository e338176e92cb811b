/*
 * JSON bodies of the meter topics: encode and decode of a reading (mtr_sample, topic
 * meter/<id>/state) and of a device description (mtr_meta, topic meter/<id>/meta). Pure: no
 * I/O, no clock. The meter daemon encodes; the controller and home agents decode, and a
 * decode checks every field so a bad payload is rejected with a reason instead of stored.
 * The field reference is docs/mqtt-topics.md.
 */
#ifndef MGX_CTL_PAYLOAD_H
#define MGX_CTL_PAYLOAD_H

#include <stddef.h>

#include "bus/bus.h"
#include "mgx/meter.h"

/* Largest payload accepted by the decoders (state bodies are ~200 bytes). */
#define BUS_JSON_MAX 4096

/* Bounds checked on decode, and on encode so that we never publish what we would reject. */
#define BUS_TS_MIN_MS 946684800000LL     /* 2000-01-01T00:00:00Z */
#define BUS_TS_MAX_MS 4102444800000LL    /* 2100-01-01T00:00:00Z */
#define BUS_POWER_MAX_W 10000000000LL    /* 10 GW either way */
#define BUS_COUNTER_MAX_WH 1000000000000000LL /* 1e15 Wh */

/*
 * Writes the state JSON of s into buf (size len, NUL-terminated), fields in a fixed order:
 *   {"meter_id":"m1","ts":1700000000000,"power_w":-1500,"import_wh":123456,
 *    "export_wh":7890,"quality":0,"flags":"good"[,"soc_permille":550]}
 * Returns the length written (excluding the NUL), or BUS_E_INVAL (a field out of the decode
 * bounds, a bad meter id) or BUS_E_TOOLONG (buf too small).
 */
int bus_state_encode(const mtr_sample *s, char *buf, size_t len);

/*
 * Parses and checks a state body of len bytes. On success fills *out and returns BUS_OK; on
 * failure returns BUS_E_PAYLOAD and writes the reason into why (size whylen; may be NULL),
 * e.g. "power_w: not an integer". If expect_meter_id is non-NULL, the body's meter_id must
 * equal it (the id in the topic). Unknown fields are ignored (newer senders may add some).
 */
int bus_state_decode(const char *json, size_t len, const char *expect_meter_id, mtr_sample *out,
                     char *why, size_t whylen);

/*
 * Meta JSON: {"meter_id":"m1","make":"Eastron","model":"SDM630","serial":"123","profile":
 * "sdm630"}. Text fields are sanitised on encode (control characters and invalid UTF-8 become
 * '?') because they come from the device. Same return conventions as the state functions.
 */
int bus_meta_encode(const mtr_meta *m, char *buf, size_t len);
int bus_meta_decode(const char *json, size_t len, const char *expect_meter_id, mtr_meta *out,
                    char *why, size_t whylen);

#endif
