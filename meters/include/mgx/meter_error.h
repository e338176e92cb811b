/*
 * mgx meters: the return codes of the meters library, shared by every module in meters/
 * (readings, decoders, device config, the Modbus client and the poller). 0 is success; every
 * failure has a distinct negative code and mtr_strerror gives an English description.
 */
#ifndef MGX_METER_ERROR_H
#define MGX_METER_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
    MTR_OK = 0,
    MTR_E_INVAL = -1,       /* NULL pointer, non-increasing time, bad parameter */
    MTR_E_BACKWARDS = -2,   /* a counter went down */
    MTR_E_IMPLAUSIBLE = -3, /* more energy than the rated power allows in the elapsed time */
    MTR_E_NOMEM = -4,       /* allocation failed */
    MTR_E_CONFIG = -5,      /* bad configuration (the message names file and line) */
    MTR_E_CONNECT = -6,     /* cannot connect (TCP) or open the serial port (RTU) */
    MTR_E_TIMEOUT = -7,     /* no reply within the response timeout, after all retries */
    MTR_E_EXCEPTION = -8,   /* the device answered with a Modbus exception */
    MTR_E_FRAME = -9,       /* malformed reply: wrong byte count, CRC, unit or function */
    MTR_E_CLOSED = -10,     /* the connection dropped */
    MTR_E_NOT_SUNSPEC = -11, /* no "SunS" marker at 40000, 50000 or 0 */
    MTR_E_NO_MODEL = -12,   /* SunSpec device without a supported meter or inverter model */
    MTR_E_CHAIN = -13,      /* malformed SunSpec model chain */
    MTR_E_RANGE = -14,      /* a value outside the representable range */
    MTR_E_STOPPED = -15,    /* the poller is stopping */
    MTR_E_GAP = -16,        /* no good reading near enough to an interval boundary */
    MTR_E_READONLY = -17,   /* a write to a device configured read-only (never sent) */
    MTR_E_READBACK = -18    /* a setpoint read back differs from what was written */
};

/* Returns a static English description of a return code; never NULL. */
const char *mtr_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
