/*
 * mgx meters: simulated meters served over real Modbus TCP, so the whole stack (the meter
 * poller, the bus, the agents, the controller) runs against network traffic without hardware.
 *
 * One mtr_server is one TCP listener serving up to 247 meters, one per Modbus unit id (1..247),
 * each with the register map of an Eastron SDM630 or a SunSpec model 203 meter. One thread
 * per server runs a poll() loop over the listener and every client connection; each request
 * is dispatched on its unit id byte (offset 6 of the Modbus TCP frame). A request for a unit
 * that is not served is answered with exception 0x0B ("gateway target device failed to
 * respond"), as a Modbus gateway answers for a device behind it that is missing: the client
 * gets a clear error at once instead of waiting out its timeout.
 *
 * More than 247 meters need several servers (cmd_sim.c uses consecutive ports).
 *
 * Thread safety: mtr_server_add, mtr_server_set and mtr_server_stats may be called from any
 * thread while the server runs; they take the server's lock. mtr_server_free must not race
 * with any other call on the same server.
 */
#ifndef MGX_METER_SERVER_H
#define MGX_METER_SERVER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTR_SERVER_UNITS 247 /* unit ids 1..247 */

typedef enum {
    MTR_SERVER_SDM630 = 1, /* input registers, float32 ABCD: W 0x0034, import kWh 0x0048, ... */
    MTR_SERVER_SUNSPEC = 2 /* holding registers: "SunS" at 40000, models 1 and 203, end */
} mtr_server_profile;
/* A battery inverter (mtr_server_add_storage) is a third kind of unit: "SunS" at 40000, models
 * 1 and 124 (basic storage controls, body at 40072), end. Its model 124 points WChaMax ..
 * ChaGriSet (except the read-only ChaState, StorAval, InBatV, ChaSt) accept writes (function 6
 * and 16); any other write, and any write to a meter, is answered with an exception. */

enum {
    MTR_SERVER_OK = 0,
    MTR_SERVER_E_INVAL = -1, /* NULL pointer, unit outside 1..247, unknown profile */
    MTR_SERVER_E_NOMEM = -2,
    MTR_SERVER_E_ADDRESS = -3, /* the host does not resolve to an address */
    MTR_SERVER_E_SOCKET = -4,  /* socket, bind or listen failed (errno says why) */
    MTR_SERVER_E_THREAD = -5,  /* the server thread could not start */
    MTR_SERVER_E_UNIT = -6,    /* set on a unit that was never added, or add on one that was */
    MTR_SERVER_E_RANGE = -7,   /* a negative counter, or |power| above 1e12 W */
    MTR_SERVER_E_STATE = -8    /* start called twice */
};

/* Returns a static English description of a return code; never NULL. */
const char *mtr_server_strerror(int code);

typedef struct mtr_server mtr_server; /* opaque */

typedef struct {
    const char *host;     /* address to bind, e.g. "127.0.0.1", "0.0.0.0" or "::1" */
    uint16_t port;        /* 0: an ephemeral port, see mtr_server_port */
    unsigned max_clients; /* connections served at once (0: 1024); more are closed at accept */
} mtr_server_opts;

/* Binds and listens at once (so a port conflict shows here), but serves only after
 * mtr_server_start. On success *out owns the server; free it with mtr_server_free. */
int mtr_server_new(const mtr_server_opts *opts, mtr_server **out);

/* The port the server listens on (the ephemeral one when opts.port was 0). */
uint16_t mtr_server_port(const mtr_server *srv);

/* Adds a meter at unit id (1..247) with counters at 0. serial (may be NULL, copied, at most 32
 * bytes used) is the SunSpec common model's SN. */
int mtr_server_add(mtr_server *srv, uint8_t unit, mtr_server_profile profile, const char *serial);

/*
 * Sets a meter's live values: power_w (+ import from the grid, - export; |power| <= 1e12) and
 * the cumulative counters (>= 0). Readers see the new values as one consistent snapshot.
 * SDM630 serves kWh as the float32 nearest to wh / 1000: rounding kWh x 1000 to the nearest
 * integer gives back the exact Wh below 16,384 kWh (float32 steps there are at most 0.98 Wh;
 * above, 1.95 Wh, then 3.9 Wh, ...). SunSpec serves exact Wh in acc32 (modulo 2^32, i.e.
 * rolling over at 4,294,967,296 Wh like a real accumulator). An acc32 of 0 means "not
 * implemented" in SunSpec: a meter with a counter still at 0 Wh reads as one that lacks it, so
 * simulations start counters above 0 where that matters.
 */
int mtr_server_set(mtr_server *srv, uint8_t unit, int64_t power_w, int64_t import_wh,
                   int64_t export_wh);

/* Adds a battery inverter at unit id with model 124: WChaMax w_cha_max_w (> 0), rates in
 * 0.01 % (InOutWRte_SF -2), ChaState 0 and StorCtl_Mod 0 (its own mode). */
int mtr_server_add_storage(mtr_server *srv, uint8_t unit, int64_t w_cha_max_w, const char *serial);

/* What a client last wrote into an inverter's controls. */
typedef struct {
    uint16_t storctl_mod;        /* StorCtl_Mod: 0 = its own mode */
    uint16_t out_w_rte, in_w_rte; /* raw (int16 percent x 10^InOutWRte_SF) */
    uint16_t rvrt_s;             /* InOutWRte_RvrtTms */
    uint16_t w_cha_max, w_cha_max_sf, rte_sf; /* the scale, as served */
    uint64_t writes;             /* write requests accepted so far */
    int64_t since_write_ms;      /* monotonic ms since the last accepted write; -1: never */
} mtr_server_storage_state;

int mtr_server_storage_get(mtr_server *srv, uint8_t unit, mtr_server_storage_state *out);

/* Serves ChaState = stored_wh / capacity_wh (0.01 %). */
int mtr_server_storage_soc(mtr_server *srv, uint8_t unit, int64_t stored_wh, int64_t capacity_wh);

/* The inverter takes control back (its revert timer fired): StorCtl_Mod := 0, which a client's
 * read-back then shows. */
int mtr_server_storage_revert(mtr_server *srv, uint8_t unit);

/* Starts the server thread. */
int mtr_server_start(mtr_server *srv);

typedef struct {
    uint64_t requests;        /* well-framed requests answered */
    uint64_t exceptions;      /* of which answered with an exception */
    uint64_t connections;     /* accepted in total */
    uint64_t rejected;        /* closed at accept because max_clients were connected */
    uint64_t protocol_errors; /* connections closed for bytes that are not Modbus TCP */
    unsigned clients;         /* connected now */
} mtr_server_stats;

void mtr_server_get_stats(mtr_server *srv, mtr_server_stats *out);

/* Stops the thread, closes every connection and the listener, frees srv. NULL is a no-op. */
void mtr_server_free(mtr_server *srv);

#ifdef __cplusplus
}
#endif

#endif
