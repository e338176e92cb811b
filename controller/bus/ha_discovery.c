/*
 * Home Assistant MQTT discovery configs (see ha_discovery.h). Field names follow Home
 * Assistant's MQTT sensor and discovery documentation (home-assistant.io/integrations/
 * sensor.mqtt, /integrations/mqtt#mqtt-discovery); long key names are used for readability.
 */
#include "bus/ha_discovery.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef MGX_VERSION
#define MGX_VERSION "0.0.0"
#endif

typedef struct {
    const char *object;   /* object_id suffix */
    const char *name;     /* entity name shown under the device */
    const char *unit;
    const char *device_class;
    const char *state_class;
    const char *tmpl;
    const char *category; /* entity_category or NULL */
} entity;

static const entity ENTITIES[] = {
    {"power", "Power", "W", "power", "measurement", "{{ value_json.power_w }}", NULL},
    {"import", "Energy imported", "Wh", "energy", "total_increasing",
     "{{ value_json.import_wh }}", NULL},
    {"export", "Energy exported", "Wh", "energy", "total_increasing",
     "{{ value_json.export_wh }}", NULL},
    {"quality", "Reading quality", NULL, NULL, NULL, "{{ value_json.flags }}", "diagnostic"},
    /* soc_permille is -1 (or absent) when the reading has no state of charge: "None" makes
     * Home Assistant show the sensor unknown rather than an empty battery */
    {"soc", "Battery", "%", "battery", "measurement",
     "{% if value_json.soc_permille is defined and value_json.soc_permille >= 0 %}"
     "{{ value_json.soc_permille / 10 }}{% else %}None{% endif %}",
     NULL},
};

static bool prefix_ok(const char *p)
{
    if (!p || !*p || p[0] == '/' || strlen(p) >= 128)
        return false;
    char lvl[BUS_ID_MAX];
    for (const char *s = p;;) {
        size_t n = strcspn(s, "/");
        if (n == 0 || n >= sizeof lvl)
            return false;
        memcpy(lvl, s, n);
        lvl[n] = '\0';
        if (!bus_id_valid(lvl))
            return false;
        if (!s[n])
            return true;
        s += n + 1;
    }
}

static json_t *device_block(const char *community, const mtr_meta *meta)
{
    char ident[160], name[200];
    snprintf(ident, sizeof ident, "mgx_%s_%s", community, meta->meter_id);
    if (meta->make[0] || meta->model[0])
        snprintf(name, sizeof name, "%s %s (%s)", meta->make, meta->model, meta->meter_id);
    else
        snprintf(name, sizeof name, "Meter %s", meta->meter_id);
    json_t *d = json_pack("{s:[s], s:s}", "identifiers", ident, "name", name);
    if (d && meta->make[0])
        json_object_set_new(d, "manufacturer", json_string(meta->make));
    if (d && meta->model[0])
        json_object_set_new(d, "model", json_string(meta->model));
    if (d && meta->serial[0])
        json_object_set_new(d, "serial_number", json_string(meta->serial));
    return d;
}

static int build_one(const entity *e, const char *prefix, const char *community,
                     const char *status_topic, const mtr_meta *meta, int expire_after_s,
                     ha_message *out)
{
    char state_topic[BUS_TOPIC_MAX], uid[200];
    int rc = bus_topic_meter_state(state_topic, sizeof state_topic, community, meta->meter_id);
    if (rc != BUS_OK)
        return rc;
    int n = snprintf(out->topic, sizeof out->topic, "%s/sensor/%s/mgx_%s_%s/config", prefix,
                     meta->meter_id, community, e->object);
    if (n < 0 || (size_t)n >= sizeof out->topic)
        return BUS_E_TOOLONG;
    snprintf(uid, sizeof uid, "mgx_%s_%s_%s", community, meta->meter_id, e->object);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:o, s:{s:s, s:s}}", "name",
                          e->name, "unique_id", uid, "state_topic", state_topic, "value_template",
                          e->tmpl, "availability_topic", status_topic, "payload_available",
                          "online", "payload_not_available", "offline", "qos", 1, "device",
                          device_block(community, meta), "origin", "name", "mgx", "sw_version",
                          MGX_VERSION);
    if (!j)
        return BUS_E_NOMEM;
    if (e->unit)
        json_object_set_new(j, "unit_of_measurement", json_string(e->unit));
    if (e->device_class)
        json_object_set_new(j, "device_class", json_string(e->device_class));
    if (e->state_class)
        json_object_set_new(j, "state_class", json_string(e->state_class));
    if (e->category)
        json_object_set_new(j, "entity_category", json_string(e->category));
    if (expire_after_s > 0)
        json_object_set_new(j, "expire_after", json_integer(expire_after_s));
    size_t len = json_dumpb(j, out->payload, sizeof out->payload, JSON_COMPACT);
    json_decref(j);
    if (len == 0 || len >= sizeof out->payload) {
        out->payload[0] = '\0';
        return BUS_E_TOOLONG;
    }
    out->payload[len] = '\0';
    out->len = len;
    return BUS_OK;
}

int ha_discovery_build(const char *prefix, const char *community, const char *status_topic,
                       const mtr_meta *meta, bool battery, int expire_after_s,
                       ha_message out[HA_MAX_ENTITIES], size_t *n)
{
    if (!n || !out || !meta || !status_topic || !prefix_ok(prefix) || !bus_id_valid(community) ||
        !bus_id_valid(meta->meter_id))
        return BUS_E_INVAL;
    *n = 0;
    for (size_t i = 0; i < sizeof ENTITIES / sizeof ENTITIES[0]; i++) {
        if (strcmp(ENTITIES[i].object, "soc") == 0 && !battery)
            continue;
        int rc = build_one(&ENTITIES[i], prefix, community, status_topic, meta, expire_after_s,
                           &out[*n]);
        if (rc != BUS_OK)
            return rc;
        (*n)++;
    }
    return BUS_OK;
}

int ha_expire_after_s(int poll_ms)
{
    int64_t s = ((int64_t)(poll_ms > 0 ? poll_ms : 1000) * 3 + 999) / 1000;
    return s < 60 ? 60 : s > 86400 ? 86400 : (int)s;
}
