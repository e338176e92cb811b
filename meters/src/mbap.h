/*
 * Internal: Modbus TCP framing as pure functions, so the protocol handling is tested (and
 * fuzzed) without sockets: the server side of the simulated meters, and the client side's
 * request and the checks every reply passes before a register of it is believed. A request frame is MBAP header (transaction
 * id, protocol id 0, length, unit id) + PDU; the length field, not the function code, delimits
 * the frame, so a request with an unknown function never desynchronises the stream.
 *
 * Served: function 3 (read holding registers) and 4 (read input registers), and with a write
 * callback 6 and 16 (the simulated inverter's storage controls). Everything else is answered
 * with exception 1 (illegal function). Specification: Modbus Application Protocol
 * V1.1b3 and Modbus Messaging on TCP/IP Implementation Guide V1.0b (modbus.org).
 */
#ifndef MGX_METERS_MBAP_H
#define MGX_METERS_MBAP_H

#include <stddef.h>
#include <stdint.h>

#define MTR__MBAP_HEADER 7u   /* transaction id 2, protocol id 2, length 2, unit id 1 */
#define MTR__MBAP_MAX    260u /* largest ADU: 7 + a 253-byte PDU */
#define MTR__READ_MAX    125u /* registers per read (function 3 and 4) */

/* Modbus exception codes used by the simulated meters. */
enum {
    MTR__EX_ILLEGAL_FUNCTION = 0x01,
    MTR__EX_ILLEGAL_ADDRESS = 0x02,
    MTR__EX_ILLEGAL_VALUE = 0x03,
    MTR__EX_GATEWAY_TARGET = 0x0B /* "gateway target device failed to respond": unknown unit */
};

/*
 * Looks at the bytes received so far on a connection. Returns the size of the complete frame
 * at the start of buf, 0 if more bytes are needed, or -1 if the stream is not Modbus TCP
 * (protocol id not 0, or a length field outside 2..254); the connection is then closed, since
 * nothing tells where the next frame would begin.
 */
int mtr__mbap_frame_size(const uint8_t *buf, size_t len);

/*
 * Reads count registers at addr of one unit into dst for function fc (3 or 4). Returns 0, or
 * a Modbus exception code for the reply (MTR__EX_*). Called with count in 1..MTR__READ_MAX.
 */
typedef int (*mtr__reg_read_fn)(void *ctx, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count,
                                uint16_t *dst);

/*
 * Builds the reply to one complete request frame (as delimited by mtr__mbap_frame_size) into
 * out, which holds MTR__MBAP_MAX bytes. Returns the reply's length; never 0, since every
 * well-framed request gets an answer (data or exception). Register values go out big-endian.
 */
size_t mtr__mbap_reply(const uint8_t *req, size_t req_len, mtr__reg_read_fn read, void *ctx,
                       uint8_t *out);

/* Writes count registers (1..MTR__WRITE_MAX) at addr of one unit from src. Returns 0, or a
 * Modbus exception code for the reply (MTR__EX_*). */
typedef int (*mtr__reg_write_fn)(void *ctx, uint8_t unit, uint16_t addr, uint16_t count,
                                 const uint16_t *src);

/* mtr__mbap_reply that also serves function 6 (write single register) and 16 (write multiple
 * registers) through write, answering with the echo the specification gives; write NULL:
 * they get exception 1 like any other function. */
size_t mtr__mbap_reply_rw(const uint8_t *req, size_t req_len, mtr__reg_read_fn read,
                          mtr__reg_write_fn write, void *ctx, uint8_t *out);

/* ---- client side (the Modbus client, modbus_device.c) ---- */

#define MTR__REQUEST_LEN 12u /* MBAP header + function, address, count */

/* Writes the request for count registers (1..MTR__READ_MAX) of table fc (3 or 4) at addr of
 * unit, with transaction id tid, into out (MTR__REQUEST_LEN bytes). */
void mtr__mbap_request(uint8_t *out, uint16_t tid, uint8_t unit, uint8_t fc, uint16_t addr,
                       uint16_t count);

/* What the bytes received so far after a request are. */
typedef enum {
    MTR__REPLY_MORE = 0,     /* nothing wrong yet, incomplete: *need bytes in all */
    MTR__REPLY_DATA,         /* the registers asked for, now in dst */
    MTR__REPLY_EXCEPTION,    /* an exception answer to this request: *exception its code */
    MTR__REPLY_BAD_TID,      /* another transaction's reply (a late or forged frame) */
    MTR__REPLY_BAD_PROTOCOL, /* protocol id not 0: not Modbus TCP */
    MTR__REPLY_BAD_UNIT,     /* from another unit than the one asked */
    MTR__REPLY_BAD_FUNCTION, /* neither the request's function nor its exception */
    MTR__REPLY_BAD_LENGTH,   /* length field not what this function and count give */
    MTR__REPLY_BAD_COUNT,    /* byte count not twice the registers asked */
    MTR__REPLY_BAD_CRC,      /* RTU (rtu.h): the CRC does not match */
    MTR__REPLY_BAD_ECHO      /* a write's reply names other registers than were written */
} mtr__reply_verdict;

/*
 * Checks the first len bytes received after the request req (as built by mtr__mbap_request)
 * against it: the header fields as soon as they are in (so a wrong transaction, protocol or
 * unit is refused without waiting for the rest), then the function, the length field and the
 * byte count. Only bytes up to *need are looked at; the caller reads no more than *need, so a
 * second frame behind the reply stays unread. On MTR__REPLY_DATA the registers (big-endian on
 * the wire) are in dst (count of them); dst is untouched otherwise. need and exception may not
 * be NULL.
 */
mtr__reply_verdict mtr__mbap_check_reply(const uint8_t *req, const uint8_t *buf, size_t len,
                                         size_t *need, uint16_t *dst, int *exception);

/* ---- writes (functions 6 and 16: storage setpoints, storage_ctl.h) ---- */

#define MTR__WRITE_MAX 123u /* registers per write request (function 16) */
#define MTR__WRITE_REQUEST_MAX (MTR__MBAP_HEADER + 6u + 2u * MTR__WRITE_MAX)

/* Writes the request to write count registers (1..MTR__WRITE_MAX) from regs at addr of unit,
 * transaction tid, into out (MTR__WRITE_REQUEST_MAX bytes): function 16, or function 6 (write
 * single register) when fc is 6 (count must then be 1). Returns its length. */
size_t mtr__mbap_write_request(uint8_t *out, uint16_t tid, uint8_t unit, uint8_t fc,
                               uint16_t addr, uint16_t count, const uint16_t *regs);

/*
 * Checks the reply to a write request as mtr__mbap_check_reply does for reads: transaction,
 * protocol id, unit and function as soon as they are in, then the length field (6, or 3 for an
 * exception), then the echo: address and count (function 16) or address and value (function
 * 6), which must be the request's (MTR__REPLY_BAD_ECHO otherwise). MTR__REPLY_DATA means the device accepted the write; dst is
 * not used (the signature is the read check's, so one reply loop serves both).
 */
mtr__reply_verdict mtr__mbap_check_write_reply(const uint8_t *req, const uint8_t *buf, size_t len,
                                               size_t *need, uint16_t *dst, int *exception);

/* A static English description of a verdict ("reply from another unit"), for tests and logs. */
const char *mtr__reply_verdict_name(mtr__reply_verdict v);

#endif
