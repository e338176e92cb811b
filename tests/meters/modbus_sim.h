/*
 * Test support for the meters tests: a real libmodbus TCP server on 127.0.0.1 in a thread of
 * the test, serving several unit ids (dispatch on the unit id byte of each request) with a
 * register image per unit, plus fault modes: silence (timeouts), exception replies, replies with
 * a wrong byte count and connections dropped in the middle of a reply. Each unit answers only
 * inside the holding / input register windows it was given: reads elsewhere get exception 2
 * (illegal data address), as from a real device. Float registers are written by the test with
 * its own byte order code, never with libmodbus's (byte-swapped in 3.1.6) setters.
 */
#ifndef MGX_TEST_MODBUS_SIM_H
#define MGX_TEST_MODBUS_SIM_H

#include <stdint.h>

typedef struct tms_server tms_server;

#define TMS_MAX_UNITS 256

typedef enum {
    TMS_OK = 0,
    TMS_SILENT,    /* read the request, never answer */
    TMS_EXCEPTION, /* answer with exception fault_arg */
    TMS_BAD_COUNT, /* answer with a byte count two bytes short (and the data to match) */
    TMS_DROP,      /* send the first 5 bytes of the answer, then close the connection */
    /* writes only (functions 6 and 16; reads are served as usual): */
    TMS_WRITE_EXCEPTION, /* answer writes with exception fault_arg */
    TMS_IGNORE_WRITES    /* acknowledge writes but keep the registers (a device that ignores
                            setpoints, or clamps them to what it had) */
} tms_fault;

/* Starts a server on a free port. NULL on failure (message on stderr). */
tms_server *tms_start(void);
int tms_port(const tms_server *s);
void tms_stop(tms_server *s);

/* Gives unit a window of holding (fc 3) and input (fc 4) registers, zero-filled. */
void tms_add_unit(tms_server *s, int unit, uint16_t hold_start, unsigned hold_n,
                  uint16_t in_start, unsigned in_n);
/* Writes n registers into unit's window of table fc (3 or 4). Thread-safe. */
void tms_set(tms_server *s, int unit, int fc, uint16_t addr, const uint16_t *regs, unsigned n);
/* float32 in ABCD order (written byte by byte, not with libmodbus). */
void tms_set_float(tms_server *s, int unit, int fc, uint16_t addr, float v);
void tms_set_u32(tms_server *s, int unit, int fc, uint16_t addr, uint32_t v);
/* Applies a fault to every later request of unit (TMS_OK clears it); arg: exception code. */
void tms_fault_set(tms_server *s, int unit, tms_fault f, int arg);
/* Reads n registers of unit's window of table fc (3 or 4), as the device holds them now. */
void tms_get(tms_server *s, int unit, int fc, uint16_t addr, uint16_t *regs, unsigned n);
/* Requests served (answered or not) and connections accepted so far. */
unsigned tms_requests(tms_server *s);
/* Write requests (functions 5, 6, 15, 16) received so far, whatever the answer. */
unsigned tms_writes(tms_server *s);
unsigned tms_accepts(tms_server *s);
/* The last write request (function 6 or 16) of unit, whatever the answer: its function, first
 * register and first value. 0 if unit had none. */
int tms_last_write(tms_server *s, int unit, uint16_t *addr, uint16_t *value);

/* Writes a SunSpec image into unit's holding registers from base: "SunS", then the models
 * given as (id, len) pairs with zero bodies, then 0xFFFF 0. Returns the address of each
 * model's ID register in addrs (n entries). */
void tms_sunspec(tms_server *s, int unit, uint16_t base, const uint16_t *ids,
                 const uint16_t *lens, int n, uint16_t *addrs);

#endif
