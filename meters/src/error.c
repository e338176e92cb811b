/*
 * English descriptions of the meters library's return codes (mgx/meter_error.h), for logs and
 * the `mgx meter` command's messages.
 */
#include "mgx/meter_error.h"

const char *mtr_strerror(int code)
{
    switch (code) {
    case MTR_OK:
        return "success";
    case MTR_E_INVAL:
        return "invalid argument";
    case MTR_E_BACKWARDS:
        return "meter counter went backwards";
    case MTR_E_IMPLAUSIBLE:
        return "energy exceeds what the meter's rated power allows";
    case MTR_E_NOMEM:
        return "out of memory";
    case MTR_E_CONFIG:
        return "bad configuration";
    case MTR_E_CONNECT:
        return "cannot connect";
    case MTR_E_TIMEOUT:
        return "no reply (timeout)";
    case MTR_E_EXCEPTION:
        return "the device answered with a Modbus exception";
    case MTR_E_FRAME:
        return "malformed reply";
    case MTR_E_CLOSED:
        return "connection dropped";
    case MTR_E_NOT_SUNSPEC:
        return "no SunSpec marker at 40000, 50000 or 0";
    case MTR_E_NO_MODEL:
        return "no supported SunSpec meter or inverter model";
    case MTR_E_CHAIN:
        return "malformed SunSpec model chain";
    case MTR_E_RANGE:
        return "value out of range";
    case MTR_E_READONLY:
        return "the device is configured read-only: nothing is written to it";
    case MTR_E_READBACK:
        return "the setpoint read back differs from what was written";
    case MTR_E_STOPPED:
        return "poller stopped";
    case MTR_E_GAP:
        return "no reading near enough to the interval boundary";
    default:
        return "unknown error";
    }
}
