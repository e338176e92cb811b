/*
 * mgx meters: one device's reading as the rest of mgx sees it, whatever profile (SunSpec,
 * Eastron SDM, a register map from config) and transport (Modbus TCP or RTU) produced it.
 * This is the record the meter daemon publishes on the bus and the controller stores and
 * settles against, so its fields are integers with the unit in the name and it carries a
 * quality flag: a flagged reading is published as such and never settled as if it were good.
 */
#ifndef MGX_METER_H
#define MGX_METER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTR_ID_MAX   64 /* meter ids: [A-Za-z0-9_-], 1..63 bytes (they become MQTT topic levels) */
#define MTR_TEXT_MAX 64 /* make, model, serial, profile strings incl. NUL */

/* Quality bits; 0 (MTR_Q_GOOD) is the only value settlement treats as good. */
enum {
    MTR_Q_GOOD = 0,
    MTR_Q_COMM = 1u << 0,          /* no valid reply (timeout, exception, bad frame) */
    MTR_Q_NAN = 1u << 1,           /* a value was NaN or infinite */
    MTR_Q_NOT_IMPLEMENTED = 1u << 2, /* the device marked a needed value "not implemented" */
    MTR_Q_BACKWARDS = 1u << 3,     /* a counter went down without looking like a reset */
    MTR_Q_JUMP = 1u << 4,          /* a counter rose more than the rated current allows */
    MTR_Q_RESET = 1u << 5,         /* the meter's counters were reset (new baseline) */
    MTR_Q_ROLLOVER = 1u << 6,      /* a counter wrapped; the delta was corrected */
    MTR_Q_NEGATIVE = 1u << 7,      /* a counter read negative */
    MTR_Q_RANGE = 1u << 8,         /* a value beyond what mgx represents (|x| > 1e15) */
    /* Set by the controller, never by a meter (docs/trust.md): */
    MTR_Q_LIMIT = 1u << 9,    /* energy beyond the home's registered physical limits */
    MTR_Q_FLOOD = 1u << 10,   /* more readings around the interval than settlement reads */
    MTR_Q_CONFLICT = 1u << 11, /* two different readings for one meter and timestamp */
    MTR_Q_DISPUTED = 1u << 12, /* the interval did not balance at the boundary meter and the
                                * home's readings are not corroborated (signed) */
    MTR_Q_PEER = 1u << 13      /* export beyond what its neighbours' panels yielded */
};

/* One reading of one device. Energy counters are cumulative totals in integer Wh. */
typedef struct {
    char meter_id[MTR_ID_MAX];
    int64_t ts_ms;         /* Unix time in milliseconds when the read completed */
    int64_t power_w;       /* + import from the grid, - export to the grid */
    int64_t import_wh;     /* total imported energy */
    int64_t export_wh;     /* total exported energy */
    int32_t soc_permille;  /* battery state of charge 0..1000, or -1 when there is no battery */
    uint32_t quality;      /* MTR_Q_* bits */
} mtr_sample;

/* What a device says about itself; published retained once per connection. */
typedef struct {
    char meter_id[MTR_ID_MAX];
    char make[MTR_TEXT_MAX];
    char model[MTR_TEXT_MAX];
    char serial[MTR_TEXT_MAX];
    char profile[MTR_TEXT_MAX]; /* "sunspec", "sdm630", "sdm120", "sdm72", "map" */
} mtr_meta;

/*
 * Writes the names of the set quality bits, comma separated ("good" when none), into buf.
 * Returns the length written, or -1 if buf (of size len) is too small.
 */
int mtr_quality_str(uint32_t quality, char *buf, unsigned len);

#ifdef __cplusplus
}
#endif

#endif
