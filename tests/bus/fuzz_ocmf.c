/*
 * Fuzz harness for the OCMF parser and verifier (controller/bus/ocmf.c): OCMF records come from
 * meters, files and the network. Any input: no crash, no UB; a rejection says why; a parsed
 * record's readings are in range and its payload lies inside the input; verifying it with a
 * fixed published key (the KEBA KCP30's, tests/bus/test_ocmf.c) never crashes either.
 */
#include <string.h>

#include "bus/ocmf.h"
#include "fuzz.h"

static const uint8_t KEY[] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08,
    0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x3A, 0xEE, 0xB4,
    0x5C, 0x39, 0x23, 0x57, 0x82, 0x0A, 0x58, 0xFD, 0xFB, 0x08, 0x57, 0xBD, 0x77, 0xAD, 0xA3,
    0x15, 0x85, 0xC6, 0x1C, 0x43, 0x05, 0x31, 0xDF, 0xA5, 0x3B, 0x44, 0x0A, 0xFB, 0xFD, 0xD9,
    0x5A, 0xC8, 0x87, 0xC6, 0x58, 0xEA, 0x55, 0x26, 0x0F, 0x80, 0x8F, 0x55, 0xCA, 0x94, 0x8D,
    0xF2, 0x35, 0xC2, 0x10, 0x8A, 0x0D, 0x6D, 0xC7, 0xD4, 0xAB, 0x1A, 0x5E, 0x1A, 0x79, 0x55,
    0xBE};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    static ocmf_record r;
    char why[200] = "";
    int rc = ocmf_parse(text, size, &r, why, sizeof why);
    if (rc != OCMF_OK) {
        FUZZ_CHECK(why[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(r.n >= 1 && r.n <= OCMF_READINGS_MAX);
    FUZZ_CHECK(r.payload_off + r.payload_len <= size);
    FUZZ_CHECK(r.sig_len >= 1 && r.sig_len <= OCMF_SIG_MAX);
    for (size_t i = 0; i < r.n; i++)
        FUZZ_CHECK(r.rd[i].value_mwh >= 0);
    rc = ocmf_verify(&r, text, size, KEY, sizeof KEY, why, sizeof why);
    FUZZ_CHECK(rc == OCMF_OK || rc == OCMF_E_KEY || rc == OCMF_E_SIGNATURE);
    mtr_sample s;
    if (ocmf_to_sample(&r, "m", &s) == OCMF_OK)
        FUZZ_CHECK(ocmf_certifies(&r, &s, why, sizeof why) == OCMF_OK ||
                   strstr(why, "ST") != NULL);
    return 0;
}
