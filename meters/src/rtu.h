/*
 * Internal: Modbus RTU framing for the client as pure functions (the serial twin of the
 * client side of mbap.h): the read request with its CRC, and the checks every reply passes
 * before a register of it is believed. RTU has no transaction id and no length field: the
 * unit, the function and the byte count delimit a reply and the CRC closes it. Specification:
 * Modbus over Serial Line V1.02 (modbus.org), 2.5.1 and 6.2.2 (CRC-16, polynomial 0xA001,
 * initial 0xFFFF, low byte first on the wire).
 */
#ifndef MGX_METERS_RTU_H
#define MGX_METERS_RTU_H

#include <stddef.h>
#include <stdint.h>

#include "mbap.h" /* mtr__reply_verdict, MTR__READ_MAX */

#define MTR__RTU_REQUEST_LEN 8u /* unit, function, address, count, CRC */
#define MTR__RTU_MAX 256u       /* largest RTU ADU */

/* The Modbus CRC-16 of n bytes (the value; on the wire low byte first). */
uint16_t mtr__rtu_crc(const uint8_t *p, size_t n);

/* Writes the request for count registers (1..MTR__READ_MAX) of table fc (3 or 4) at addr of
 * unit into out (MTR__RTU_REQUEST_LEN bytes). */
void mtr__rtu_request(uint8_t *out, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count);

/*
 * Checks the first len bytes received after the request req against it, as
 * mtr__mbap_check_reply does for TCP: the unit and the function as soon as they are in, then
 * the byte count, then the CRC (MTR__REPLY_BAD_CRC). Only bytes up to *need are looked at. On
 * MTR__REPLY_DATA the registers are in dst; dst is untouched otherwise.
 */
mtr__reply_verdict mtr__rtu_check_reply(const uint8_t *req, const uint8_t *buf, size_t len,
                                        size_t *need, uint16_t *dst, int *exception);

#endif
