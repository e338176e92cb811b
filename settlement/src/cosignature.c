/*
 * Witness cosignatures (c2sp.org/tlog-cosignature v1, Ed25519) and the witness's decision
 * (mgx/cosignature.h).
 *
 * Written from the specification: the signature blob is key id (4) || timestamp (8, big
 * endian) || Ed25519 signature (64); the message is the two header lines and the body.
 */
#include "mgx/cosignature.h"
#include "mgx/checkpoint.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const char EM_DASH[] = "\xE2\x80\x94 "; /* U+2014 and a space */
#define BLOB_LEN (4 + 8 + STL_SIG_LEN)

int stl_cosig_name_valid(const char *name)
{
    if (!name)
        return 0;
    size_t n = strlen(name);
    if (n == 0 || n > STL_COSIG_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7F || c == '+')
            return 0;
    }
    return 1;
}

void stl_cosig_key_id(const char *name, const uint8_t pk[STL_PK_LEN], uint8_t id[4])
{
    stl_note_key_id_typed(name, 0x04, pk, id); /* 0x04: cosignature/v1 */
}

int stl_cosig_message(const char *body, size_t body_len, uint64_t time_s, uint8_t *out, size_t cap)
{
    if (!body || !out || time_s > (uint64_t)STL_COSIG_TIME_MAX)
        return STL_E_INVAL;
    char head[64];
    int h = snprintf(head, sizeof head, "cosignature/v1\ntime %llu\n", (unsigned long long)time_s);
    if (h < 0 || (size_t)h >= sizeof head || body_len > cap || (size_t)h > cap - body_len ||
        (size_t)h + body_len > (size_t)INT32_MAX)
        return STL_E_INVAL;
    memcpy(out, head, (size_t)h);
    memcpy(out + h, body, body_len);
    return (int)((size_t)h + body_len);
}

/* The body must be a note text: non-empty, ending in a newline, with no blank line at its end
 * (which would make it look like text plus signatures). */
static int body_ok(const char *body, size_t len)
{
    return body && len > 0 && len <= STL_NOTE_MAX && body[len - 1] == '\n' &&
           !(len >= 2 && body[len - 2] == '\n') && !memchr(body, 0, len);
}

int stl_cosig_sign(const char *body, size_t body_len, uint64_t time_s, const char *name,
                   const uint8_t sk[STL_SK_LEN], char *line, size_t cap)
{
    if (!body_ok(body, body_len) || !stl_cosig_name_valid(name) || !sk || !line)
        return STL_E_INVAL;
    uint8_t msg[STL_NOTE_MAX + 64];
    int ml = stl_cosig_message(body, body_len, time_s, msg, sizeof msg);
    if (ml < 0)
        return ml;
    uint8_t blob[BLOB_LEN];
    stl_cosig_key_id(name, sk + 32, blob);
    for (int i = 0; i < 8; i++)
        blob[4 + i] = (uint8_t)(time_s >> (56 - 8 * i));
    stl_sign(msg, (size_t)ml, sk, blob + 12);
    char b64[sodium_base64_ENCODED_LEN(BLOB_LEN, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(line, cap, "%s%s %s\n", EM_DASH, name, b64);
    if (n < 0 || (size_t)n >= cap)
        return STL_E_INVAL;
    return n;
}

/* Splits a note at its last blank line: *split is the length of the text (ending in '\n'). */
static int note_split(const char *note, size_t len, size_t *split)
{
    if (!note || len == 0 || len > STL_NOTE_MAX || memchr(note, 0, len) || note[len - 1] != '\n')
        return STL_E_NOTE;
    for (size_t i = len - 1; i > 0; i--)
        if (note[i - 1] == '\n' && note[i] == '\n') {
            *split = i;
            return STL_OK;
        }
    return STL_E_NOTE;
}

int stl_cosig_find(const char *note, size_t len, const uint8_t pk[STL_PK_LEN], const char *name,
                   uint64_t *time_s, char *name_out)
{
    size_t split;
    if (!pk || note_split(note, len, &split) != STL_OK)
        return STL_E_NOTE;
    const char *p = note + split + 1, *end = note + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t ll = (size_t)(eol - p);
        if (ll < sizeof EM_DASH || memcmp(p, EM_DASH, sizeof EM_DASH - 1) != 0)
            return STL_E_NOTE;
        const char *nm = p + sizeof EM_DASH - 1, *sp = memchr(nm, ' ', (size_t)(eol - nm));
        if (!sp || sp == nm)
            return STL_E_NOTE;
        size_t nl = (size_t)(sp - nm);
        char who[STL_COSIG_NAME_MAX + 1];
        uint8_t blob[BLOB_LEN + 8];
        size_t got = 0;
        const char *b64end = NULL;
        p = eol + 1;
        if (nl > STL_COSIG_NAME_MAX)
            continue;
        memcpy(who, nm, nl);
        who[nl] = 0;
        if ((name && strcmp(who, name) != 0) || !stl_cosig_name_valid(who))
            continue;
        /* a line of another key (the log's own, another witness) has another key id or
         * another length: skip it; only a line of this key that fails to verify is final */
        if (sodium_base642bin(blob, sizeof blob, sp + 1, (size_t)(eol - sp - 1), NULL, &got,
                              &b64end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            b64end != eol || got != BLOB_LEN)
            continue;
        uint8_t want[4];
        stl_cosig_key_id(who, pk, want);
        if (memcmp(blob, want, 4) != 0)
            continue;
        uint64_t t = 0;
        for (int i = 0; i < 8; i++)
            t = (t << 8) | blob[4 + i];
        uint8_t msg[STL_NOTE_MAX + 64];
        int ml = stl_cosig_message(note, split, t, msg, sizeof msg);
        if (ml < 0 || stl_verify(msg, (size_t)ml, blob + 12, STL_SIG_LEN, pk) != STL_OK)
            return STL_E_SIGNATURE;
        if (time_s)
            *time_s = t;
        if (name_out)
            memcpy(name_out, who, nl + 1);
        return STL_OK;
    }
    return STL_E_SIGNATURE;
}

const char *stl_witness_reason(stl_witness_verdict v)
{
    switch (v) {
    case STL_WITNESS_COSIGN:
        return "an append-only extension of the trusted checkpoint";
    case STL_WITNESS_BAD_NOTE:
        return "not a well-formed checkpoint of this log's origin";
    case STL_WITNESS_BAD_SIGNATURE:
        return "not signed by the log's key";
    case STL_WITNESS_ROLLBACK:
        return "smaller than the checkpoint already cosigned: the log was truncated or rolled back";
    case STL_WITNESS_FORK:
        return "the same size as the checkpoint already cosigned with another root: the log forked";
    case STL_WITNESS_NOT_EXTENSION:
        return "the consistency proof from the checkpoint already cosigned does not verify: the "
               "log was rewritten or forked";
    }
    return "unknown verdict";
}

stl_witness_verdict stl_witness_check(const char *log_name, const uint8_t log_pk[STL_PK_LEN],
                                      const stl_checkpoint *trusted, const char *note, size_t len,
                                      const uint8_t proof[][STL_HASH_LEN], size_t n,
                                      stl_checkpoint *out)
{
    stl_checkpoint cp;
    int rc = stl_checkpoint_open(note, len, log_name, log_pk, log_name, &cp);
    if (rc == STL_E_SIGNATURE)
        return STL_WITNESS_BAD_SIGNATURE;
    if (rc != STL_OK)
        return STL_WITNESS_BAD_NOTE;
    if (out)
        *out = cp;
    if (!trusted)
        return STL_WITNESS_COSIGN;
    if (strcmp(trusted->origin, cp.origin) != 0)
        return STL_WITNESS_BAD_NOTE;
    if (cp.size < trusted->size)
        return STL_WITNESS_ROLLBACK;
    if (cp.size == trusted->size)
        return memcmp(cp.root, trusted->root, STL_HASH_LEN) == 0 ? STL_WITNESS_COSIGN
                                                                 : STL_WITNESS_FORK;
    if (stl_merkle_verify_consistency(trusted->size, cp.size, trusted->root, cp.root, proof, n) !=
        STL_OK)
        return STL_WITNESS_NOT_EXTENSION;
    return STL_WITNESS_COSIGN;
}
