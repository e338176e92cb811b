/*
 * Test support for the Modbus RTU tests: an emulated RS-485 bus on pseudo-terminals.
 *
 * The client under test opens one pty (trb_path) as its serial port. Every unit on the bus is
 * a real libmodbus RTU server (modbus_new_rtu, modbus_receive / modbus_reply, slave id set to
 * the unit's) in its own thread on its own pty. A relay thread plays the wire: it reassembles
 * the client's requests, hands each to the unit it addresses (the dispatch on the slave id
 * that a shared line does physically), and copies each unit's reply back to the client. As
 * it sees the whole bus it also works as a bus analyser, logging every
 * read request with the time it crossed the wire, and it injects faults: a unplugged unit
 * (never hears anything: timeouts), a corrupted reply (one data byte flipped: CRC error) and a
 * late reply (held back for a while: the reply arrives after the client gave up).
 *
 * Units are added before trb_start; the fault and register setters are thread-safe.
 */
#ifndef MGX_TEST_RTU_BUS_H
#define MGX_TEST_RTU_BUS_H

#include <stddef.h>
#include <stdint.h>

#define TRB_MAX_UNITS 8
#define TRB_LOG_MAX 4096
#define TRB_INPUT_REGS 0x100 /* each unit has input registers 0..0xFF, zero-filled */

typedef struct trb_bus trb_bus;

/* One read request seen on the wire (FC 3 or 4, valid CRC). */
typedef struct {
    int64_t t_us; /* CLOCK_MONOTONIC, when the relay had the whole frame (before any unit did) */
    int unit;
    int fc;
    uint16_t addr, count;
} trb_request;

/* An empty bus with its client pty; NULL on failure (message on stderr). */
trb_bus *trb_new(void);
/* Adds a unit (1..247) before trb_start. 0, or -1 when full or the pty cannot be made. */
int trb_add_unit(trb_bus *b, int unit);
/* Starts the unit servers and the relay. 0 or -1. */
int trb_start(trb_bus *b);
/* Stops everything and frees b. */
void trb_free(trb_bus *b);

/* The serial device the client opens (a /dev/pts path). Owned by b. */
const char *trb_path(const trb_bus *b);

/* Writes a float32 into unit's input registers at addr, addr+1 in ABCD order (Eastron). */
void trb_set_float(trb_bus *b, int unit, uint16_t addr, float v);
/* An unplugged unit hears no requests (so never answers); 0 plugs it back. */
void trb_unplug(trb_bus *b, int unit, int unplugged);
/* Flips one data byte (the 4th byte of the frame) in each of unit's next n replies. */
void trb_corrupt(trb_bus *b, int unit, int n);
/* Holds each of unit's replies back for ms milliseconds (0: deliver at once). */
void trb_delay(trb_bus *b, int unit, int ms);

/* Copies up to max logged requests, oldest first; returns how many. */
size_t trb_requests(trb_bus *b, trb_request *out, size_t max);
void trb_clear_log(trb_bus *b);

int64_t trb_now_us(void);

#endif
