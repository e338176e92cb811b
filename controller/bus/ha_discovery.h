/*
 * Home Assistant MQTT discovery: the retained config messages that make a homeowner's Home
 * Assistant show each meter's power, imported and exported energy (and battery state of
 * charge, and the reading quality) with no YAML. Pure: builds topics and JSON only.
 *
 * Topic: <prefix>/sensor/<meter_id>/mgx_<community>_<object>/config (Home Assistant's
 * <discovery_prefix>/<component>/[<node_id>/]<object_id>/config). The meter id is a level of its
 * own so that the broker's ACL can give a home's meter daemon write access, and the home's
 * read-only Home Assistant login read access, to exactly that home's configs
 * (config/mosquitto/acl, docs/bus-security.md). Each sensor reads the meter's retained state
 * topic with a value_template, and is available while the publishing daemon's status topic
 * says "online" and a reading came within expire_after. Power: W, device_class power,
 * state_class measurement. Energy: Wh, device_class energy, state_class total_increasing
 * (usable in the Energy dashboard): the state's totals never go down (a rejected counter is
 * published as the last accepted total, mgx/counter.h). A battery without a state of charge in
 * the reading shows "unknown", never 0 %.
 */
#ifndef MGX_CTL_HA_DISCOVERY_H
#define MGX_CTL_HA_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "bus/bus.h"
#include "mgx/meter.h"

#define HA_MAX_ENTITIES 5
#define HA_PAYLOAD_MAX 2048

typedef struct {
    char topic[BUS_TOPIC_MAX];
    char payload[HA_PAYLOAD_MAX];
    size_t len;
} ha_message;

/*
 * Builds the discovery messages of one meter into out (room for HA_MAX_ENTITIES) and sets *n.
 * meta gives the device block (empty make/model/serial are left out); battery adds a state of
 * charge sensor (%). status_topic is the availability topic. expire_after_s > 0: Home Assistant
 * shows the sensors unavailable when no reading came for that long (a dead meter, a stopped
 * daemon whose last will did not arrive); 0 leaves it out. Returns BUS_OK, BUS_E_INVAL (bad
 * id or prefix) or BUS_E_TOOLONG. Publish each retained (QoS 1) once per connection.
 */
int ha_discovery_build(const char *prefix, const char *community, const char *status_topic,
                       const mtr_meta *meta, bool battery, int expire_after_s,
                       ha_message out[HA_MAX_ENTITIES], size_t *n);

/* The expire_after for a meter polled every poll_ms: three missed polls, at least 60 s (Home
 * Assistant must not flap on one slow poll). */
int ha_expire_after_s(int poll_ms);

#endif
