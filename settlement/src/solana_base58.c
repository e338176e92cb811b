/*
 * Base58 with the Bitcoin alphabet, by repeated division of a big-endian byte string. Inputs
 * are at most 64 bytes / 88 characters, so the quadratic schoolbook loop costs a few
 * microseconds and needs no allocation.
 */
#include "mgx/solana_base58.h"

#include <string.h>

static const char ALPHABET[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/* Digit value of c, or -1. */
static int digit_of(char c)
{
    const char *p = (c != '\0') ? strchr(ALPHABET, c) : NULL;
    return p ? (int)(p - ALPHABET) : -1;
}

int sol_base58_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    if ((!in && n > 0) || !out || n > SOL_B58_MAX_BYTES)
        return SOL_E_INVAL;
    size_t zeros = 0;
    while (zeros < n && in[zeros] == 0)
        zeros++;
    /* Base-58 digits of the number, least significant first. log(256)/log(58) < 1.37. */
    uint8_t digits[SOL_B58_MAX_CHARS + 2];
    size_t nd = 0;
    for (size_t i = zeros; i < n; i++) {
        unsigned carry = in[i];
        for (size_t j = 0; j < nd; j++) {
            carry += (unsigned)digits[j] << 8;
            digits[j] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        while (carry > 0) {
            digits[nd++] = (uint8_t)(carry % 58);
            carry /= 58;
        }
    }
    size_t len = zeros + nd;
    if (len + 1 > cap)
        return SOL_E_SPACE;
    for (size_t i = 0; i < zeros; i++)
        out[i] = '1';
    for (size_t i = 0; i < nd; i++)
        out[zeros + i] = ALPHABET[digits[nd - 1 - i]];
    out[len] = '\0';
    return (int)len;
}

int sol_base58_decode(const char *text, uint8_t *out, size_t n)
{
    if (!text || !out || n == 0 || n > SOL_B58_MAX_BYTES)
        return SOL_E_INVAL;
    size_t len = 0;
    while (len <= SOL_B58_MAX_CHARS && text[len] != '\0')
        len++;
    if (len == 0 || len > SOL_B58_MAX_CHARS)
        return SOL_E_BASE58;
    size_t ones = 0;
    while (ones < len && text[ones] == '1')
        ones++;
    /* The number's bytes, least significant first; one spare to detect overflow. */
    uint8_t num[SOL_B58_MAX_BYTES + 1];
    size_t nb = 0;
    for (size_t i = ones; i < len; i++) {
        int d = digit_of(text[i]);
        if (d < 0)
            return SOL_E_BASE58;
        unsigned carry = (unsigned)d;
        for (size_t j = 0; j < nb; j++) {
            carry += (unsigned)num[j] * 58u;
            num[j] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
        while (carry > 0) {
            if (nb == sizeof num)
                return SOL_E_BASE58;
            num[nb++] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
    }
    if (ones + nb != n)
        return SOL_E_BASE58;
    memset(out, 0, ones);
    for (size_t i = 0; i < nb; i++)
        out[ones + i] = num[nb - 1 - i];
    return SOL_OK;
}

int sol_pubkey_to_base58(const sol_pubkey *k, char out[SOL_PUBKEY_B58_MAX + 1])
{
    if (!k)
        return SOL_E_INVAL;
    return sol_base58_encode(k->b, sizeof k->b, out, SOL_PUBKEY_B58_MAX + 1);
}

int sol_pubkey_from_base58(const char *text, sol_pubkey *k)
{
    if (!k)
        return SOL_E_INVAL;
    return sol_base58_decode(text, k->b, sizeof k->b);
}
