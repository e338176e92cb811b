/*
 * Test support: a hostile Modbus TCP device on 127.0.0.1 at a free port, written by hand (no
 * libmodbus, which would refuse to misbehave), for the tests that the Modbus client trusts no
 * reply. It answers function 3 and 4 reads of any unit from one register table, and per mode
 * misbehaves the ways field devices and gateways have: a reply from another unit, a protocol
 * id other than 0, another transaction's id, a stale frame before the reply, a forged frame
 * after it, bytes dripped slowly, a reply cut short (left open or closed), garbage, another
 * function, a wrong length field. Frames that must not be believed carry the values of a
 * second, "forged" table, so a client that takes one shows it in its reading.
 *
 * The serial twin (thd_serial) speaks RTU on a pseudo-terminal.
 *
 * One thread serves one connection at a time (a new connection replaces the old one, as the
 * client reconnects after a failure); a drip stops when the client goes away or reconnects.
 */
#ifndef MGX_TEST_HOSTILE_MODBUS_H
#define MGX_TEST_HOSTILE_MODBUS_H

#include <stdint.h>

typedef struct thd_server thd_server;

typedef enum {
    THD_OK = 0,
    THD_WRONG_UNIT,     /* forged values from unit + 1 */
    THD_PROTOCOL,       /* forged values with protocol id 1 */
    THD_WRONG_TID,      /* forged values with transaction id + 1 */
    THD_STALE_FIRST,    /* a forged frame for the previous transaction, then the right reply */
    THD_EXTRA_AFTER,    /* the right reply, then (same write) a forged frame for the next
                         * transaction id, as if guessed */
    THD_DRIP,           /* the right reply, one byte every drip_ms */
    THD_TRUNCATE,       /* the first 9 bytes of the right reply, then silence */
    THD_TRUNCATE_CLOSE, /* the first 9 bytes, then the connection closed */
    THD_GARBAGE,        /* an HTTP error text instead of a frame */
    THD_WRONG_FUNCTION, /* forged values under the other read function */
    THD_BAD_LENGTH      /* forged values, a length field 2 more than the frame */
} thd_mode;

/* Starts the device on a free port. NULL on failure (message on stderr). */
thd_server *thd_start(void);
int thd_port(const thd_server *s);
void thd_stop(thd_server *s);

/* A float32 (ABCD) at addr in the good and the forged table (both holding and input); between
 * requests (the tables are read unlocked while a reply is built). */
void thd_set_float(thd_server *s, uint16_t addr, float good, float forged);
/* The mode for every later request; drip_ms is for THD_DRIP. Thread-safe. */
void thd_mode_set(thd_server *s, thd_mode m, int drip_ms);
/* Requests read so far. */
unsigned thd_requests(thd_server *s);

/*
 * The same device on a serial line (Modbus RTU frames with CRC): a pseudo-terminal whose
 * other end (thd_serial_path) the client opens as its port. Registers come from tables' good
 * and forged tables. Modes: THD_OK, THD_WRONG_UNIT, THD_DRIP, THD_TRUNCATE (others: THD_OK).
 */
typedef struct thd_serial thd_serial;
thd_serial *thd_serial_start(thd_server *tables);
const char *thd_serial_path(const thd_serial *s);
void thd_serial_mode_set(thd_serial *s, thd_mode m, int drip_ms);
/* Waits up to timeout_ms until no reply is being dripped (a drip ends when the mode changes).
 * 0, or -1 if still dripping. */
int thd_serial_quiet(thd_serial *s, int timeout_ms);
void thd_serial_stop(thd_serial *s);

#endif
