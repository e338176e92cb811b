/*
 * Fuzz harness for the bus payload decoders (controller/bus/payload.c), the code that parses
 * what arrives from the network. Any input: no crash, no UB. An accepted state or meta must
 * survive encode -> decode unchanged, and the encoder must accept everything the decoder does.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "bus/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    char why[160], buf[2048];
    mtr_sample s, s2;
    memset(&s, 0, sizeof s);
    if (bus_state_decode(json, size, NULL, &s, why, sizeof why) == BUS_OK) {
        int n = bus_state_encode(&s, buf, sizeof buf);
        if (n <= 0)
            abort();
        memset(&s2, 0, sizeof s2);
        if (bus_state_decode(buf, (size_t)n, s.meter_id, &s2, why, sizeof why) != BUS_OK ||
            memcmp(&s, &s2, sizeof s) != 0)
            abort();
    } else if (!why[0]) {
        abort(); /* a rejection always says why */
    }
    mtr_meta m, m2;
    memset(&m, 0, sizeof m);
    if (bus_meta_decode(json, size, NULL, &m, why, sizeof why) == BUS_OK) {
        int n = bus_meta_encode(&m, buf, sizeof buf);
        if (n <= 0)
            abort();
        memset(&m2, 0, sizeof m2);
        if (bus_meta_decode(buf, (size_t)n, m.meter_id, &m2, why, sizeof why) != BUS_OK)
            abort();
        /* text the decoder accepted may still be sanitised ('?') on encode; ids never change */
        if (strcmp(m.meter_id, m2.meter_id) != 0 || strlen(m.make) < strlen(m2.make))
            abort();
    }
    return 0;
}
