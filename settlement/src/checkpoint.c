/*
 * C2SP signed-note checkpoints and note keys (mgx/checkpoint.h).
 *
 * Parsing is strict where the formats are strict (decimal without leading zeros, canonical
 * base64 of exactly 32 bytes, em dash signature prefix, the last blank line separating text and
 * signatures) and tolerant where they ask for tolerance (extension lines in the body, signature
 * lines of unknown keys).
 */
#include "mgx/checkpoint.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const char EM_DASH[] = "\xE2\x80\x94 "; /* U+2014 and a space */

void stl_note_key_id(const char *name, const uint8_t pk[STL_PK_LEN], uint8_t id[4])
{
    stl_note_key_id_typed(name, 0x01, pk, id); /* 0x01: Ed25519 signature of the note */
}

void stl_note_key_id_typed(const char *name, uint8_t sig_type, const uint8_t pk[STL_PK_LEN],
                           uint8_t id[4])
{
    crypto_hash_sha256_state st;
    uint8_t h[32];
    const uint8_t sep[2] = {0x0A, sig_type};
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
    crypto_hash_sha256_update(&st, sep, 2);
    crypto_hash_sha256_update(&st, pk, STL_PK_LEN);
    crypto_hash_sha256_final(&st, h);
    memcpy(id, h, 4);
}

/* Canonical standard base64 of exactly want bytes. */
static int b64_exact(const char *s, size_t len, uint8_t *out, size_t want)
{
    size_t got = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, want, s, len, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != want || end != s + len)
        return STL_E_NOTE;
    char again[128];
    if (sodium_base64_ENCODED_LEN(want, sodium_base64_VARIANT_ORIGINAL) > sizeof again)
        return STL_E_NOTE;
    sodium_bin2base64(again, sizeof again, out, want, sodium_base64_VARIANT_ORIGINAL);
    if (strlen(again) != len || memcmp(again, s, len) != 0)
        return STL_E_NOTE;
    return STL_OK;
}

static int hex8(const char *s, uint8_t id[4])
{
    for (int i = 0; i < 8; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return STL_E_NOTE;
    }
    size_t got;
    if (sodium_hex2bin(id, 4, s, 8, NULL, &got, NULL) != 0 || got != 4)
        return STL_E_NOTE;
    return STL_OK;
}

static int key_text(const char *prefix, const char *name, const uint8_t pk[STL_PK_LEN],
                    const uint8_t *material, char *out, size_t cap)
{
    if (!stl_community_valid(name))
        return STL_E_INVAL;
    uint8_t id[4], blob[33];
    char hex[9], b64[64];
    stl_note_key_id(name, pk, id);
    sodium_bin2hex(hex, sizeof hex, id, 4);
    blob[0] = 0x01;
    memcpy(blob + 1, material, 32);
    sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(blob, sizeof blob);
    int n = snprintf(out, cap, "%s%s+%s+%s", prefix, name, hex, b64);
    sodium_memzero(b64, sizeof b64);
    if (n < 0 || (size_t)n >= cap)
        return STL_E_INVAL;
    return STL_OK;
}

int stl_vkey_format(const char *name, const uint8_t pk[STL_PK_LEN], char *out, size_t cap)
{
    return key_text("", name, pk, pk, out, cap);
}

int stl_skey_format(const char *name, const uint8_t sk[STL_SK_LEN], char *out, size_t cap)
{
    return key_text("PRIVATE+KEY+", name, sk + 32, sk, out, cap);
}

/* Splits "name+hex8+base64" into its parts; material gets the 32 bytes after the 0x01. */
static int split_key(const char *s, char name[STL_COMMUNITY_MAX + 1], uint8_t id[4],
                     uint8_t material[32])
{
    const char *p1 = strchr(s, '+');
    if (!p1 || (size_t)(p1 - s) > STL_COMMUNITY_MAX)
        return STL_E_NOTE;
    memcpy(name, s, (size_t)(p1 - s));
    name[p1 - s] = 0;
    if (!stl_community_valid(name) || strlen(p1 + 1) < 10 || p1[9] != '+' ||
        hex8(p1 + 1, id) != STL_OK)
        return STL_E_NOTE;
    const char *b = p1 + 10;
    size_t bl = strcspn(b, "\r\n");
    uint8_t blob[33];
    int rc = b64_exact(b, bl, blob, sizeof blob);
    if (rc == STL_OK && blob[0] != 0x01)
        rc = STL_E_NOTE;
    if (rc == STL_OK && b[bl] != 0 && strcmp(b + bl, "\n") != 0)
        rc = STL_E_NOTE;
    if (rc == STL_OK)
        memcpy(material, blob + 1, 32);
    sodium_memzero(blob, sizeof blob);
    return rc;
}

int stl_vkey_parse(const char *s, char name[STL_COMMUNITY_MAX + 1], uint8_t pk[STL_PK_LEN])
{
    uint8_t id[4], want[4];
    if (!s || split_key(s, name, id, pk) != STL_OK)
        return STL_E_NOTE;
    stl_note_key_id(name, pk, want);
    return memcmp(id, want, 4) == 0 ? STL_OK : STL_E_NOTE;
}

int stl_skey_parse(const char *s, char name[STL_COMMUNITY_MAX + 1], uint8_t sk[STL_SK_LEN])
{
    static const char prefix[] = "PRIVATE+KEY+";
    uint8_t id[4], want[4], pk[32];
    if (!s || strncmp(s, prefix, sizeof prefix - 1) != 0)
        return STL_E_NOTE;
    uint8_t seed[32];
    int rc = split_key(s + sizeof prefix - 1, name, id, seed);
    if (rc == STL_OK) {
        crypto_sign_seed_keypair(pk, sk, seed);
        stl_note_key_id(name, pk, want);
        if (memcmp(id, want, 4) != 0)
            rc = STL_E_NOTE;
    }
    sodium_memzero(seed, sizeof seed);
    if (rc != STL_OK)
        sodium_memzero(sk, STL_SK_LEN);
    return rc;
}

int stl_checkpoint_sign(const char *origin, uint64_t size, const uint8_t root[STL_ID_LEN],
                        const char *key_name, const uint8_t sk[STL_SK_LEN], char *out, size_t cap)
{
    if (!stl_community_valid(origin) || !stl_community_valid(key_name) || !root || !sk || !out)
        return STL_E_INVAL;
    char rb[64];
    sodium_bin2base64(rb, sizeof rb, root, STL_ID_LEN, sodium_base64_VARIANT_ORIGINAL);
    int body = snprintf(out, cap, "%s\n%llu\n%s\n", origin, (unsigned long long)size, rb);
    if (body < 0 || (size_t)body >= cap)
        return STL_E_INVAL;
    uint8_t blob[4 + STL_SIG_LEN];
    stl_note_key_id(key_name, sk + 32, blob);
    stl_sign((const uint8_t *)out, (size_t)body, sk, blob + 4);
    char sb[128];
    sodium_bin2base64(sb, sizeof sb, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(out + body, cap - (size_t)body, "\n%s%s %s\n", EM_DASH, key_name, sb);
    if (n < 0 || (size_t)n >= cap - (size_t)body)
        return STL_E_INVAL;
    return body + n;
}

/* Parses the checkpoint body text[0..len) (ending in '\n'). */
static int parse_body(const char *text, size_t len, stl_checkpoint *cp)
{
    const char *end = text + len, *l1 = memchr(text, '\n', len);
    if (!l1 || (size_t)(l1 - text) > STL_COMMUNITY_MAX)
        return STL_E_NOTE;
    memcpy(cp->origin, text, (size_t)(l1 - text));
    cp->origin[l1 - text] = 0;
    if (!stl_community_valid(cp->origin))
        return STL_E_NOTE;
    const char *s = l1 + 1, *l2 = memchr(s, '\n', (size_t)(end - s));
    if (!l2 || l2 == s || l2 - s > 20 || (s[0] == '0' && l2 - s > 1))
        return STL_E_NOTE;
    uint64_t v = 0;
    for (const char *p = s; p < l2; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            return STL_E_NOTE;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    cp->size = v;
    const char *r = l2 + 1, *l3 = memchr(r, '\n', (size_t)(end - r));
    if (!l3)
        return STL_E_NOTE;
    return b64_exact(r, (size_t)(l3 - r), cp->root, STL_ID_LEN);
}

int stl_note_open(const char *note, size_t len, const char *key_name,
                  const uint8_t pk[STL_PK_LEN], size_t *text_len)
{
    if (!note || !key_name || !pk || len == 0 || len > STL_NOTE_MAX || memchr(note, 0, len) ||
        note[len - 1] != '\n')
        return STL_E_NOTE;
    /* the text ends at the last blank line */
    size_t split = 0;
    for (size_t i = len - 1; i > 0; i--)
        if (note[i - 1] == '\n' && note[i] == '\n') {
            split = i; /* note[0..split) is the text, ending in '\n' */
            break;
        }
    if (split == 0)
        return STL_E_NOTE;
    uint8_t want_id[4];
    stl_note_key_id(key_name, pk, want_id);
    size_t nl = strlen(key_name);
    int found = 0, verified = 0;
    const char *p = note + split + 1, *end = note + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t ll = (size_t)(eol - p);
        if (ll < sizeof EM_DASH || memcmp(p, EM_DASH, sizeof EM_DASH - 1) != 0)
            return STL_E_NOTE;
        const char *nm = p + sizeof EM_DASH - 1, *sp = memchr(nm, ' ', (size_t)(eol - nm));
        if (!sp || sp == nm)
            return STL_E_NOTE;
        if (!found && (size_t)(sp - nm) == nl && memcmp(nm, key_name, nl) == 0) {
            uint8_t blob[4 + STL_SIG_LEN + 8];
            size_t got = 0;
            const char *b64end = NULL;
            /* the first line with this name and key id decides; a wrong-length signature is a
             * bad signature, not a reason to look further */
            if (sodium_base642bin(blob, sizeof blob, sp + 1, (size_t)(eol - sp - 1), NULL, &got,
                                  &b64end, sodium_base64_VARIANT_ORIGINAL) == 0 &&
                b64end == eol && got >= 4 && memcmp(blob, want_id, 4) == 0) {
                found = 1;
                verified = stl_verify((const uint8_t *)note, split, blob + 4, got - 4, pk) == STL_OK;
            }
        }
        p = eol + 1;
    }
    if (!found || !verified)
        return STL_E_SIGNATURE;
    if (text_len)
        *text_len = split;
    return STL_OK;
}

int stl_checkpoint_open(const char *note, size_t len, const char *key_name,
                        const uint8_t pk[STL_PK_LEN], const char *expected_origin,
                        stl_checkpoint *out)
{
    if (!out)
        return STL_E_NOTE;
    memset(out, 0, sizeof *out);
    size_t split;
    int rc = stl_note_open(note, len, key_name, pk, &split);
    if (rc != STL_OK)
        return rc;
    if (parse_body(note, split, out) != STL_OK)
        return STL_E_NOTE;
    if (expected_origin && strcmp(out->origin, expected_origin) != 0)
        return STL_E_NOTE;
    return STL_OK;
}
