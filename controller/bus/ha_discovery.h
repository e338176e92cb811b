/*
 * Home Assistant MQTT discovery: the retained config messages that make a homeowner's Home
 * Assistant show each meter's power, imported and exported energy (and battery state of
 * charge, and the reading quality) with no YAML. Pure: builds topics and JSON only.
 *
 * Topic: <prefix>/sensor/mgx_<community>/<meter_id>_<object>/config (Home Assistant's
 * <discovery_prefix>/<component>/[<node_id>/]<object_id>/config). Each sensor reads the meter's
 * retained state topic with a value_template, and is available while the publishing daemon's
 * status topic says "online". Power: W, device_class power, state_class measurement. Energy:
 * Wh, device_class energy, state_class total_increasing (usable in the Energy dashboard).
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
 * charge sensor (%). status_topic is the availability topic. Returns BUS_OK, BUS_E_INVAL (bad
 * id or prefix) or BUS_E_TOOLONG. Publish each retained (QoS 1) once per connection.
 */
int ha_discovery_build(const char *prefix, const char *community, const char *status_topic,
                       const mtr_meta *meta, bool battery, ha_message out[HA_MAX_ENTITIES],
                       size_t *n);

#endif
