/*
 * The controller's check of a reading's signatures (see reading_attest.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "settle/reading_attest.h"

#include "bus/bus.h"
#include "bus/ocmf.h"
#include "bus/payload.h"
#include "bus/reading_sig.h"
#include "common/errbuf.h"
#include "db/meter_keys.h"
#include "db/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tier 2: the OCMF record verifies with the meter's key and certifies s. 1 yes, 0 no (why). */
static int certified(ctl_db *db, const mtr_sample *s, const char *text, size_t n, int *dberr,
                     char *why, size_t whylen)
{
    uint8_t key[CTL_MKEY_MAX];
    size_t kn = 0;
    int rc = ctl_meter_key_get(db, s->meter_id, CTL_MKEY_CERTIFIED, key, sizeof key, &kn);
    if (rc == 1) {
        ctl_errf(why, whylen, "an OCMF record, but no OCMF key is registered for the meter");
        return 0;
    }
    if (rc != CTL_DB_OK) {
        *dberr = 1;
        ctl_errf(why, whylen, "meter key lookup: %s", ctl_db_errmsg(db));
        return 0;
    }
    ocmf_record *r = malloc(sizeof *r);
    char w[200];
    int ok = 0;
    if (!r) {
        ctl_errf(why, whylen, "out of memory");
        return 0;
    }
    if (ocmf_parse(text, n, r, w, sizeof w) != OCMF_OK ||
        ocmf_verify(r, text, n, key, kn, w, sizeof w) != OCMF_OK ||
        ocmf_certifies(r, s, w, sizeof w) != OCMF_OK)
        ctl_errf(why, whylen, "OCMF: %s", w);
    else
        ok = 1;
    free(r);
    return ok;
}

/* Tier 1: "sig" verifies with the gateway key registered for the meter. */
static int gateway_signed(ctl_db *db, const mtr_sample *s, const uint8_t sig[BUS_RSIG_BYTES],
                          int *dberr, char *why, size_t whylen)
{
    ctl_participant p;
    int rc = ctl_registry_lookup_meter(db, s->meter_id, &p);
    if (rc == CTL_REG_E_NOT_FOUND) {
        ctl_errf(why, whylen, "signed, but no participant has the meter");
        return 0;
    }
    uint8_t key[CTL_MKEY_MAX];
    size_t kn = 0;
    if (rc == CTL_REG_OK)
        rc = ctl_meter_key_get(db, s->meter_id, CTL_MKEY_GATEWAY, key, sizeof key, &kn);
    else
        rc = CTL_DB_E_DB;
    if (rc == 1) {
        ctl_errf(why, whylen, "signed, but no gateway key is registered for the meter");
        return 0;
    }
    if (rc != CTL_DB_OK || kn != BUS_RSIG_PK_BYTES) {
        *dberr = 1;
        ctl_errf(why, whylen, "key lookup: %s", ctl_db_errmsg(db));
        return 0;
    }
    if (bus_reading_verify(s, p.id, key, sig) != BUS_OK) {
        ctl_errf(why, whylen, "the signature does not verify with the gateway key of meter %s "
                              "(participant %s)",
                 s->meter_id, p.id);
        return 0;
    }
    return 1;
}

int ctl_attest_reading(ctl_db *db, const mtr_sample *s, const char *json, size_t len, int *tier,
                       char *why, size_t whylen)
{
    *tier = BUS_TIER_UNSIGNED;
    if (!db || !s || !json) {
        ctl_errf(why, whylen, "nothing to check");
        return CTL_DB_E_INVAL;
    }
    static char text[BUS_JSON_MAX]; /* the controller's one thread */
    size_t n = 0;
    int present = 0, dberr = 0;
    uint8_t sig[BUS_RSIG_BYTES];
    char w[240] = "";
    ctl_errf(why, whylen, "unsigned");
    if (bus_state_ocmf(json, len, text, sizeof text, &n, &present, w, sizeof w) != BUS_OK) {
        ctl_errf(why, whylen, "%s", w);
    } else if (present) {
        if (certified(db, s, text, n, &dberr, w, sizeof w)) {
            *tier = BUS_TIER_CERTIFIED;
            ctl_errf(why, whylen, "certified (OCMF)");
            return CTL_DB_OK;
        }
        ctl_errf(why, whylen, "%s", w);
    }
    if (dberr)
        return CTL_DB_E_DB;
    char w2[240] = "";
    if (bus_state_sig(json, len, sig, &present, w2, sizeof w2) != BUS_OK) {
        ctl_errf(why, whylen, "%s", w2);
        return CTL_DB_OK;
    }
    if (!present)
        return CTL_DB_OK; /* why: "unsigned" or the OCMF failure */
    if (gateway_signed(db, s, sig, &dberr, w2, sizeof w2)) {
        *tier = BUS_TIER_GATEWAY;
        ctl_errf(why, whylen, "gateway-signed%s%s", w[0] ? "; " : "", w);
        return CTL_DB_OK;
    }
    ctl_errf(why, whylen, "%s%s%s", w2, w[0] ? "; " : "", w);
    return dberr ? CTL_DB_E_DB : CTL_DB_OK;
}
