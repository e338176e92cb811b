/*
 * Fuzz harness for the standing preference decoders (controller/orders/pref_msg.h): the strict
 * JSON decoder and the canonical binary decoder, both fed the same input.
 *
 * Invariants, for every input:
 *   - every decoder returns a defined reason and, on failure, a non-empty detail;
 *   - a decoded JSON preference is valid, re-serialises to JSON that decodes to the identical
 *     struct and to the identical text again, and its binary encoding decodes back to the same
 *     fields;
 *   - a decoded binary preference re-encodes to exactly the input bytes.
 */
#include "fuzz.h"

#include "orders/pref_msg.h"

#include <string.h>

static void check_json(const uint8_t *data, size_t size)
{
    ctl_pref_msg m, again;
    char detail[CTL_DETAIL_MAX], json[CTL_PREF_JSON_MAX], json2[CTL_PREF_JSON_MAX];
    int rc = ctl_pref_from_json((const char *)data, size, &m, detail, sizeof detail);
    FUZZ_CHECK(rc == CTL_R_OK || rc == CTL_R_MALFORMED || rc == CTL_R_BAD_SIGNATURE);
    if (rc != CTL_R_OK) {
        FUZZ_CHECK(detail[0] != '\0');
        return;
    }
    FUZZ_CHECK(ctl_pref_validate(&m, NULL, 0) == CTL_R_OK);
    size_t len = 0, len2 = 0;
    FUZZ_CHECK(ctl_pref_to_json(&m, json, sizeof json, &len) == CTL_R_OK);
    FUZZ_CHECK(ctl_pref_from_json(json, len, &again, detail, sizeof detail) == CTL_R_OK);
    FUZZ_CHECK(memcmp(&m, &again, sizeof m) == 0);
    FUZZ_CHECK(ctl_pref_to_json(&again, json2, sizeof json2, &len2) == CTL_R_OK);
    FUZZ_CHECK(len == len2 && memcmp(json, json2, len) == 0);
    uint8_t enc[CTL_PREF_ENC_MAX];
    size_t elen = 0;
    FUZZ_CHECK(ctl_pref_encode(&m, enc, &elen) == CTL_R_OK);
    FUZZ_CHECK(ctl_pref_decode_bin(enc, elen, &again, detail, sizeof detail) == CTL_R_OK);
    memcpy(again.sig, m.sig, sizeof m.sig);
    FUZZ_CHECK(memcmp(&m, &again, sizeof m) == 0);
}

static void check_bin(const uint8_t *data, size_t size)
{
    ctl_pref_msg m;
    char detail[CTL_DETAIL_MAX];
    int rc = ctl_pref_decode_bin(data, size, &m, detail, sizeof detail);
    FUZZ_CHECK(rc == CTL_R_OK || rc == CTL_R_MALFORMED);
    if (rc != CTL_R_OK) {
        FUZZ_CHECK(detail[0] != '\0');
        return;
    }
    uint8_t enc[CTL_PREF_ENC_MAX];
    size_t elen = 0;
    FUZZ_CHECK(ctl_pref_encode(&m, enc, &elen) == CTL_R_OK);
    FUZZ_CHECK(elen == size && memcmp(enc, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_json(data, size);
    check_bin(data, size);
    return 0;
}
