/*
 * mgx meters: steering a home battery through its inverter over Modbus, so what the home
 * agent plans is what the battery does.
 *
 * Two kinds of inverter:
 *  - SunSpec model 124 (basic storage controls), found on the device's SunSpec chain. A
 *    setpoint of P W (> 0 charge, < 0 discharge, 0 hold) becomes both rate limits active
 *    (StorCtl_Mod = 3) with InWRte = P / WChaMax and OutWRte = -InWRte, in percent scaled by
 *    InOutWRte_SF: the forced charge/discharge reading of model 124 that inverters with storage
 *    controls implement (check the vendor's notes: some want the sign on one limit only).
 *    InOutWRte_RvrtTms is written with every setpoint, so the inverter itself drops the
 *    setpoint and returns to its own mode when no new one comes in time (the agent stopped).
 *  - a control map from config: one signed power register (function 6 or 16, int16, uint16 or
 *    int32, W per count) and optionally a mode register with a "control" and a "release" value.
 *
 * Every setpoint is read back after writing and compared; when a write fails, the device
 * answers with an exception, the read-back differs or the connection is lost, control is
 * released (StorCtl_Mod = 0, or the map's release value) so the inverter follows its own
 * self-consumption mode, and the failure is reported. A device configured read-only is never
 * written: every call returns MTR_E_READONLY before any request is made. Writes closer together
 * than min_write_interval_ms are skipped (a release never is).
 *
 * The encoding functions are pure; mtr_storage_ctl is the adapter on an mtr_link. Time is a
 * parameter (now_ms, any monotonic milliseconds).
 */
#ifndef MGX_STORAGE_CTL_H
#define MGX_STORAGE_CTL_H

#include <stdint.h>

#include "mgx/modbus_device.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MTR_STORAGE_SUNSPEC = 0, MTR_STORAGE_MAP = 1 } mtr_storage_kind;
typedef enum { MTR_CTL_INT16 = 0, MTR_CTL_UINT16 = 1, MTR_CTL_INT32 = 2 } mtr_ctl_type;

typedef struct {
    mtr_storage_kind kind;
    int read_only;             /* never write (monitoring only) */
    int unit;                  /* Modbus unit id */
    int revert_s;              /* SunSpec: InOutWRte_RvrtTms with every setpoint, 0 = leave it */
    int min_write_interval_ms; /* 0: no limit */
    /* MTR_STORAGE_MAP */
    int fc;                    /* 6 (int16/uint16 only) or 16 */
    uint16_t power_addr;       /* + charge, - discharge */
    mtr_ctl_type power_type;
    int32_t w_per_count;       /* raw = W / w_per_count, toward zero; >= 1 */
    int has_mode;
    uint16_t mode_addr, mode_control, mode_release;
} mtr_storage_config;

/* Model 124's scale: WChaMax as raw register and scale factor, and InOutWRte_SF. */
typedef struct {
    uint16_t w_cha_max;
    int16_t w_cha_max_sf;
    int16_t rte_sf;
} mtr_storage_124_caps;

/* Offsets of model 124's points from its first body register (the ID register + 2). */
enum {
    MTR_124_WCHAMAX = 0,
    MTR_124_STORCTL_MOD = 3,
    MTR_124_CHASTATE = 6,
    MTR_124_OUTWRTE = 10,
    MTR_124_INWRTE = 11,
    MTR_124_WINTMS = 12,
    MTR_124_RVRTTMS = 13,
    MTR_124_WCHAMAX_SF = 16,
    MTR_124_CHASTATE_SF = 20,
    MTR_124_INOUTWRTE_SF = 23,
    MTR_124_LEN = 24
};

/*
 * The model 124 registers for power_w: mod (StorCtl_Mod), out/in (OutWRte, InWRte). The percent
 * is rounded toward zero (the battery never gets more than asked) and clamped to 100 %.
 * Returns MTR_OK, or MTR_E_RANGE when WChaMax or a scale factor is "not implemented" (0xFFFF,
 * 0x8000) or out of -10..10, or WChaMax is 0.
 */
int mtr_storage_encode_124(const mtr_storage_124_caps *caps, int64_t power_w, uint16_t *mod,
                           uint16_t *out_w_rte, uint16_t *in_w_rte);

/* The other way (the simulated inverter): the power the model 124 registers ask for. Returns 1
 * with *power_w (toward zero) when StorCtl_Mod sets a limit active, 0 (and *power_w 0) when
 * the inverter is in its own mode, MTR_E_RANGE for a scale as mtr_storage_encode_124 refuses.
 * With the charge limit active (bit 0) the power is InWRte x WChaMax (a negative InWRte
 * discharges), else -OutWRte x WChaMax. */
int mtr_storage_decode_124(const mtr_storage_124_caps *caps, uint16_t mod, uint16_t out_w_rte,
                           uint16_t in_w_rte, int64_t *power_w);

/* The power register(s) of a control map for power_w: 1 register (int16/uint16) or 2 (int32,
 * high word first) into regs; *n gets the count. MTR_E_RANGE if it does not fit the type. */
int mtr_storage_encode_map(const mtr_storage_config *cfg, int64_t power_w, uint16_t regs[2],
                           int *n);

typedef struct {
    uint64_t setpoints;   /* setpoints written and read back equal */
    uint64_t skipped;     /* setpoints not written: closer than min_write_interval_ms */
    uint64_t failures;    /* setpoints that failed (write, exception, read-back, connection) */
    uint64_t releases;    /* releases written (after a failure or asked for) */
} mtr_storage_stats;

typedef struct mtr_storage_ctl mtr_storage_ctl;

/* A controller for cfg (copied) over link, which must outlive it (shared with the meter reads
 * of the same device is fine, one thread at a time). NULL if out of memory or cfg is bad. */
mtr_storage_ctl *mtr_storage_ctl_new(const mtr_storage_config *cfg, mtr_link *link);
void mtr_storage_ctl_free(mtr_storage_ctl *c);

/*
 * Sets the battery's power: writes it, reads it back, compares. On MTR_OK the inverter follows
 * power_w (or, rate-limited, still the previous setpoint). On any failure control is released
 * (as far as the device still answers) and the code says why: MTR_E_READONLY, MTR_E_READBACK,
 * MTR_E_EXCEPTION, MTR_E_NO_MODEL (no model 124 on the chain), MTR_E_RANGE, or a link error.
 */
int mtr_storage_ctl_set(mtr_storage_ctl *c, int64_t power_w, int64_t now_ms);

/* Gives control back to the inverter (StorCtl_Mod = 0 / the map's release value), read back. */
int mtr_storage_ctl_release(mtr_storage_ctl *c);

/* SunSpec: the battery's state of charge, ChaState with ChaState_SF, in hundredths of a percent
 * (toward zero). A read, allowed on read-only devices too. MTR_OK, MTR_E_NO_MODEL, MTR_E_RANGE
 * (not implemented) or a link error. */
int mtr_storage_ctl_soc(mtr_storage_ctl *c, int64_t *soc_bp);

/* 1 while the last setpoint stands (written and read back), 0 once released or failed. */
int mtr_storage_ctl_in_control(const mtr_storage_ctl *c);
/* The setpoint in force when in control. */
int64_t mtr_storage_ctl_power_w(const mtr_storage_ctl *c);
void mtr_storage_ctl_stats(const mtr_storage_ctl *c, mtr_storage_stats *out);
/* The last failure in one line ("10.0.0.7:502 unit 1: read back InWRte 4000, wrote 5000"),
 * "" after a success. Owned by c. */
const char *mtr_storage_ctl_error(const mtr_storage_ctl *c);

#ifdef __cplusplus
}
#endif

#endif
