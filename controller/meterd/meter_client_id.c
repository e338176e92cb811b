/*
 * The meter daemon's default client id and outbox name (see meter_client_id.h).
 */
#include "meterd/meter_client_id.h"

#include "common/ident.h"

#include <stdio.h>
#include <string.h>

/* Every character that is not valid in an id on its own becomes '-'. */
static void sanitise(char *s)
{
    for (; *s; s++)
        if (!ctl_id_valid((char[]){*s, '\0'}))
            *s = '-';
}

int ctl_meter_client_id(const char *community, const char *meter_id, char out[BUS_ID_MAX])
{
    if (!community || !meter_id || !community[0] || !meter_id[0])
        return -1;
    int n = snprintf(out, BUS_ID_MAX, "meter-%s-%s", community, meter_id);
    if (n < 0 || n >= BUS_ID_MAX) {
        out[0] = '\0';
        return -1;
    }
    sanitise(out);
    return 0;
}

void ctl_meter_legacy_client_id(const char *hostname, char out[BUS_ID_MAX])
{
    snprintf(out, BUS_ID_MAX, "meter-%s", hostname ? hostname : "host");
    sanitise(out);
}

int ctl_meter_outbox_path(const char *config_path, const char *client_id, char *out, size_t cap)
{
    const char *slash = strrchr(config_path, '/');
    int dir = slash ? (int)(slash - config_path + 1) : 0;
    int n = snprintf(out, cap, "%.*s%s.outbox.db", dir, config_path, client_id);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}
