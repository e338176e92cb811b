/*
 * Internal: lower-case hexadecimal, the canonical text of nonces and signatures in the signed
 * messages' JSON (orders/order_msg.c, orders/pref_msg.c). Upper case is refused on input, so a
 * value has one text form. Pure.
 */
#ifndef MGX_CTL_HEX_H
#define MGX_CTL_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2n lower-case digits of in[0..n) and a NUL to out (2n + 1 bytes). */
void ctl_hex_encode(const uint8_t *in, size_t n, char *out);
/* Reads exactly n bytes from the slen characters at s: 0, or -1 when slen != 2n or a character
 * is not a lower-case hex digit (out is then unspecified). */
int ctl_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n);

#endif
