/*
 * mgx meters: device configuration. An INI file (libinih) with one [meter ID] section per device
 * and optional [map NAME] sections that define register maps, referenced by profile = map:NAME.
 * Every key is documented in docs/meters.md; config/meters-example.ini shows each profile.
 *
 * The meter daemon reads one composite file that also has its own sections ([bus] ...). It
 * feeds every (section, key, value, line) to mtr_config_handle, which answers MTR_CFG_NOT_MINE
 * for sections it does not own, then calls mtr_config_finish once for the checks that span
 * sections (unknown map names, duplicate ids, two devices on one serial port with different
 * line settings). mtr_config_load does all of this for a file with only meter sections.
 *
 * Error messages: mtr_config_handle writes the bare message (the caller knows file and line
 * and prefixes "FILE:LINE: "); mtr_config_finish and mtr_config_load write complete messages
 * "FILE:LINE: message" naming the line of the offending key, with FILE as set by
 * mtr_config_set_source ("config" by default).
 *
 * Thread safety: a mtr_config is built by one thread; once finished it is read-only and may be
 * read from any thread.
 */
#ifndef MGX_DEVICE_CONFIG_H
#define MGX_DEVICE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "mgx/meter.h"
#include "mgx/meter_map.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MTR_MAX_DEVICES 4096
#define MTR_MAX_MAPS 256
#define MTR_HOST_MAX 256 /* host names and serial device paths incl. NUL */

/* Return codes of mtr_config_handle besides MTR_OK and MTR_E_CONFIG / MTR_E_NOMEM. */
#define MTR_CFG_NOT_MINE 1 /* the section is not [meter ...] or [map ...]: someone else's */

typedef enum {
    MTR_PROFILE_SUNSPEC = 0,
    MTR_PROFILE_SDM630,
    MTR_PROFILE_SDM120,
    MTR_PROFILE_SDM72,
    MTR_PROFILE_MAP
} mtr_profile;

typedef enum { MTR_TCP = 0, MTR_RTU } mtr_transport;

typedef enum {
    MTR_BATTERY_AUTO = 0, /* report soc when the device offers it */
    MTR_BATTERY_YES,      /* soc required: missing -> MTR_Q_NOT_IMPLEMENTED */
    MTR_BATTERY_NO        /* never report soc */
} mtr_battery;

/* One device, as configured. Defaults in docs/meters.md and mtr_device_config_default. */
typedef struct {
    char id[MTR_ID_MAX];          /* from the section name [meter ID] */
    mtr_profile profile;
    const mtr_map *map;           /* SDM and map profiles; owned by the config or static */
    mtr_transport transport;
    char host[MTR_HOST_MAX];      /* tcp */
    int port;                     /* tcp, default 502 */
    char device[MTR_HOST_MAX];    /* rtu: serial device path */
    int baud;                     /* rtu, default 9600 */
    char parity;                  /* rtu: 'N', 'E' or 'O', default 'N' */
    int data_bits, stop_bits;     /* rtu: 8 and 1 by default */
    int unit;                     /* Modbus unit id 0..247 (TCP may use 255), default 1 */
    int poll_ms;                  /* poll period, default 1000 */
    int timeout_ms;               /* one deadline for a request's whole reply (and for a TCP
                                     connect), default 500 */
    int retries;                  /* extra attempts after a failed read, default 2 */
    int retry_backoff_ms;         /* pause before retry k: backoff x 2^(k-1), default 100 */
    int inter_unit_pause_ms;      /* pause after this unit before the next on its bus, default 0 */
    int connections;              /* tcp: connections the poller may open to host:port, default 1 */
    int rated_current_a;          /* per phase, for the jump bound; default 100 */
    int voltage_v;                /* default 230 */
    int phases;                   /* default 3 (1 for sdm120) */
    int64_t slack_wh;             /* counter tolerance, default 10 */
    int64_t reset_below_wh;       /* default 1000 */
    int export_positive;          /* sign = export_positive: negate the device's power */
    int swap_energy;              /* swap_energy = yes: import and export counters swapped */
    mtr_battery battery;
    int line;                     /* line of the [meter ID] header */
} mtr_device_config;

typedef struct mtr_config mtr_config;

/* An empty config; NULL if out of memory. Free with mtr_config_free. */
mtr_config *mtr_config_new(void);
void mtr_config_free(mtr_config *cfg);

/* The file name used in messages of mtr_config_finish (copied). */
int mtr_config_set_source(mtr_config *cfg, const char *path);

/*
 * One key of the file. section is the text between the brackets ("meter sdm-1", "map mymeter");
 * key NULL with value NULL announces a section header (inih's INI_CALL_HANDLER_ON_NEW_SECTION).
 * Returns MTR_OK, MTR_CFG_NOT_MINE, MTR_E_CONFIG (message in err) or MTR_E_NOMEM.
 */
int mtr_config_handle(mtr_config *cfg, const char *section, const char *key, const char *value,
                      int line, char *err, size_t errlen);

/* Cross-section checks and defaults; call once after the last key. MTR_OK or MTR_E_CONFIG. */
int mtr_config_finish(mtr_config *cfg, char *err, size_t errlen);

/* Reads a file with only [meter] and [map] sections. Returns MTR_OK with *out set (caller frees),
 * or MTR_E_CONFIG / MTR_E_NOMEM with "FILE:LINE: message" in err. */
int mtr_config_load(const char *path, mtr_config **out, char *err, size_t errlen);

size_t mtr_config_count(const mtr_config *cfg);
/* The i-th device in file order; NULL when i is out of range. Owned by cfg. */
const mtr_device_config *mtr_config_device(const mtr_config *cfg, size_t i);
/* The device with this id, or NULL. */
const mtr_device_config *mtr_config_find(const mtr_config *cfg, const char *id);

/* Fills the defaults (no id, profile sunspec, tcp, 127.0.0.1:502, unit 1). */
void mtr_device_config_default(mtr_device_config *d);

/* "sunspec", "sdm630", "sdm120", "sdm72", "map" */
const char *mtr_profile_name(mtr_profile p);

/* The counter parameters the device's config implies (jump bound from current x voltage x phases). */
void mtr_device_counter_params(const mtr_device_config *d, mtr_counter_params *p);

#ifdef __cplusplus
}
#endif

#endif
