/*
 * Storage control (mgx/storage_ctl.h): the registers a battery setpoint becomes, and the
 * write / read back / release cycle on an mtr_link. Integers only: the percent of model 124 is
 * computed with powers of ten, rounded toward zero.
 */
#include "mgx/storage_ctl.h"

#include "mgx/meter_error.h"
#include "mgx/sunspec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mtr_storage_ctl {
    mtr_storage_config cfg;
    mtr_link *link;
    /* SunSpec: where model 124 is, found once per connection */
    uint64_t generation;
    uint16_t body; /* address of model 124's first body register; 0 = not found yet */
    mtr_storage_124_caps caps;
    int in_control;
    int64_t power_w;
    int64_t last_write_ms;
    int wrote_once;
    mtr_storage_stats stats;
    char err[MTR_ERR_MAX];
};

/* ---- encoding (pure) ---------------------------------------------------------------- */

static int64_t pow10_i64(int e)
{
    int64_t p = 1;
    while (e-- > 0)
        p *= 10;
    return p;
}

static int sf_ok(int16_t sf)
{
    return sf >= -10 && sf <= 10;
}

int mtr_storage_encode_124(const mtr_storage_124_caps *caps, int64_t power_w, uint16_t *mod,
                           uint16_t *out_w_rte, uint16_t *in_w_rte)
{
    if (caps->w_cha_max == 0 || caps->w_cha_max == 0xFFFF || !sf_ok(caps->w_cha_max_sf) ||
        !sf_ok(caps->rte_sf))
        return MTR_E_RANGE;
    if (power_w > 1000000000 || power_w < -1000000000) /* 1 GW: no home battery */
        return MTR_E_RANGE;
    /* percent x 10^-rte_sf = power x 100 x 10^(-rte_sf - wmax_sf) / WChaMax_raw */
    int e = -caps->rte_sf - caps->w_cha_max_sf;
    int64_t mag = power_w < 0 ? -power_w : power_w;
    int64_t num = mag * 100, den = caps->w_cha_max;
    if (e >= 0)
        num *= pow10_i64(e);
    else
        den *= pow10_i64(-e);
    int64_t pct = num / den;
    /* 100 % in the register's scale; a negative scale factor makes it larger */
    int64_t full = caps->rte_sf <= 0 ? 100 * pow10_i64(-caps->rte_sf)
                                     : 100 / pow10_i64(caps->rte_sf);
    if (pct > full)
        pct = full;
    if (pct > INT16_MAX)
        return MTR_E_RANGE;
    int16_t in = (int16_t)(power_w < 0 ? -pct : pct);
    *mod = 3; /* both limits active */
    *in_w_rte = (uint16_t)in;
    *out_w_rte = (uint16_t)(int16_t)-in;
    return MTR_OK;
}

int mtr_storage_decode_124(const mtr_storage_124_caps *caps, uint16_t mod, uint16_t out_w_rte,
                           uint16_t in_w_rte, int64_t *power_w)
{
    *power_w = 0;
    if (caps->w_cha_max == 0 || caps->w_cha_max == 0xFFFF || !sf_ok(caps->w_cha_max_sf) ||
        !sf_ok(caps->rte_sf))
        return MTR_E_RANGE;
    if ((mod & 3) == 0)
        return 0; /* its own mode */
    /* the charge limit when it is active, else the discharge limit (negated) */
    int64_t pct = (mod & 1) ? (int16_t)in_w_rte : -(int64_t)(int16_t)out_w_rte;
    /* W = pct x 10^rte_sf / 100 x WChaMax_raw x 10^wmax_sf, toward zero */
    int e = caps->rte_sf + caps->w_cha_max_sf - 2;
    int64_t num = pct * caps->w_cha_max;
    *power_w = e >= 0 ? num * pow10_i64(e) : num / pow10_i64(-e);
    return 1;
}

int mtr_storage_encode_map(const mtr_storage_config *cfg, int64_t power_w, uint16_t regs[2],
                           int *n)
{
    if (cfg->w_per_count < 1)
        return MTR_E_RANGE;
    int64_t raw = power_w / cfg->w_per_count; /* toward zero */
    switch (cfg->power_type) {
    case MTR_CTL_INT16:
        if (raw < INT16_MIN || raw > INT16_MAX)
            return MTR_E_RANGE;
        regs[0] = (uint16_t)(int16_t)raw;
        *n = 1;
        return MTR_OK;
    case MTR_CTL_UINT16: /* charge-only devices: no discharge through this register */
        if (raw < 0 || raw > UINT16_MAX)
            return MTR_E_RANGE;
        regs[0] = (uint16_t)raw;
        *n = 1;
        return MTR_OK;
    case MTR_CTL_INT32:
        if (raw < INT32_MIN || raw > INT32_MAX)
            return MTR_E_RANGE;
        regs[0] = (uint16_t)((uint32_t)(int32_t)raw >> 16);
        regs[1] = (uint16_t)((uint32_t)(int32_t)raw & 0xFFFF);
        *n = 2;
        return MTR_OK;
    }
    return MTR_E_RANGE;
}

/* ---- the adapter -------------------------------------------------------------------- */

static int cfg_ok(const mtr_storage_config *c)
{
    if (c->unit < 0 || c->unit > 255 || c->revert_s < 0 || c->revert_s > 65534 ||
        c->min_write_interval_ms < 0)
        return 0;
    if (c->kind == MTR_STORAGE_SUNSPEC)
        return 1;
    if (c->kind != MTR_STORAGE_MAP || c->w_per_count < 1 || (c->fc != 6 && c->fc != 16))
        return 0;
    return !(c->fc == 6 && c->power_type == MTR_CTL_INT32); /* one register per fc 6 write */
}

mtr_storage_ctl *mtr_storage_ctl_new(const mtr_storage_config *cfg, mtr_link *link)
{
    if (!cfg || !link || !cfg_ok(cfg))
        return NULL;
    mtr_storage_ctl *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    c->link = link;
    return c;
}

void mtr_storage_ctl_free(mtr_storage_ctl *c)
{
    free(c);
}

static int fail(mtr_storage_ctl *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(mtr_storage_ctl *c, int rc, const char *fmt, ...)
{
    char m[MTR_ERR_MAX - 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    snprintf(c->err, sizeof c->err, "unit %d: %s", c->cfg.unit, m);
    return rc;
}

/* A link failure with the link's own reason. */
static int link_fail(mtr_storage_ctl *c, int rc, const char *what)
{
    const char *why = mtr_link_error(c->link);
    return fail(c, rc, "%s: %s", what, why[0] ? why : mtr_strerror(rc));
}

static int read_regs(void *ctx, int fc, uint16_t addr, uint16_t count, uint16_t *dst)
{
    mtr_storage_ctl *c = ctx;
    return mtr_link_read(c->link, c->cfg.unit, fc, addr, count, dst, NULL);
}

/* Finds model 124 on the chain of the current connection and reads its scale. */
static int find_124(mtr_storage_ctl *c)
{
    if (c->body && mtr_link_generation(c->link) == c->generation)
        return MTR_OK;
    mtr_sunspec_chain chain;
    int rc = mtr_sunspec_discover(read_regs, c, &chain);
    if (rc != MTR_OK && rc != MTR_E_NO_MODEL) /* a battery inverter may have no meter model */
        return link_fail(c, rc, "SunSpec discovery");
    size_t i = 0;
    while (i < chain.n && chain.m[i].id != 124)
        i++;
    if (i == chain.n || chain.m[i].len < MTR_124_LEN)
        return fail(c, MTR_E_NO_MODEL, "no SunSpec model 124 (storage controls) on the device");
    uint16_t body = (uint16_t)(chain.m[i].addr + 2), r[MTR_124_LEN];
    rc = mtr_link_read(c->link, c->cfg.unit, 3, body, MTR_124_LEN, r, NULL);
    if (rc)
        return link_fail(c, rc, "reading model 124");
    c->caps.w_cha_max = r[MTR_124_WCHAMAX];
    c->caps.w_cha_max_sf = (int16_t)r[MTR_124_WCHAMAX_SF];
    c->caps.rte_sf = (int16_t)r[MTR_124_INOUTWRTE_SF];
    c->body = body;
    c->generation = mtr_link_generation(c->link);
    return MTR_OK;
}

/* Writes count registers at addr and reads them back; MTR_E_READBACK names the first that
 * differs. */
static int write_checked(mtr_storage_ctl *c, int fc, uint16_t addr, uint16_t count,
                         const uint16_t *v, const char *name)
{
    int ex = 0;
    int rc = mtr_link_write(c->link, c->cfg.unit, fc, addr, count, v, &ex);
    if (rc == MTR_E_EXCEPTION)
        return fail(c, rc, "writing %s at %u: exception %d", name, (unsigned)addr, ex);
    if (rc)
        return link_fail(c, rc, "writing");
    uint16_t back[MTR_124_LEN];
    rc = mtr_link_read(c->link, c->cfg.unit, 3, addr, count, back, NULL);
    if (rc)
        return link_fail(c, rc, "reading back");
    for (uint16_t i = 0; i < count; i++)
        if (back[i] != v[i])
            return fail(c, MTR_E_READBACK, "read back %s%s at %u: %u, wrote %u", name,
                        count > 1 ? " (a register of)" : "", (unsigned)(addr + i),
                        (unsigned)back[i], (unsigned)v[i]);
    return MTR_OK;
}

static int set_124(mtr_storage_ctl *c, int64_t power_w)
{
    int rc = find_124(c);
    if (rc)
        return rc;
    uint16_t mod, rates[4];
    rc = mtr_storage_encode_124(&c->caps, power_w, &mod, &rates[0], &rates[1]);
    if (rc)
        return fail(c, rc, "cannot express %lld W with WChaMax %u (SF %d), InOutWRte_SF %d",
                    (long long)power_w, (unsigned)c->caps.w_cha_max, c->caps.w_cha_max_sf,
                    c->caps.rte_sf);
    uint16_t count = 2;
    if (c->cfg.revert_s > 0) { /* OutWRte, InWRte, WinTms 0 (at once), RvrtTms */
        rates[2] = 0;
        rates[3] = (uint16_t)c->cfg.revert_s;
        count = 4;
    }
    /* the rates first, then the mode that makes them count */
    rc = write_checked(c, 16, (uint16_t)(c->body + MTR_124_OUTWRTE), count, rates,
                       "OutWRte/InWRte");
    if (rc == MTR_OK)
        rc = write_checked(c, 16, (uint16_t)(c->body + MTR_124_STORCTL_MOD), 1, &mod,
                           "StorCtl_Mod");
    return rc;
}

static int set_map(mtr_storage_ctl *c, int64_t power_w)
{
    uint16_t regs[2];
    int n = 0;
    if (mtr_storage_encode_map(&c->cfg, power_w, regs, &n))
        return fail(c, MTR_E_RANGE, "%lld W does not fit the power register", (long long)power_w);
    int rc = write_checked(c, c->cfg.fc, c->cfg.power_addr, (uint16_t)n, regs, "power");
    if (rc == MTR_OK && c->cfg.has_mode)
        rc = write_checked(c, c->cfg.fc, c->cfg.mode_addr, 1, &c->cfg.mode_control, "mode");
    return rc;
}

static int release(mtr_storage_ctl *c)
{
    c->in_control = 0;
    c->stats.releases++;
    if (c->cfg.kind == MTR_STORAGE_MAP) {
        if (!c->cfg.has_mode) { /* no mode register: a zero setpoint is all it has */
            uint16_t regs[2];
            int n = 0;
            mtr_storage_encode_map(&c->cfg, 0, regs, &n);
            return write_checked(c, c->cfg.fc, c->cfg.power_addr, (uint16_t)n, regs, "power");
        }
        return write_checked(c, c->cfg.fc, c->cfg.mode_addr, 1, &c->cfg.mode_release, "mode");
    }
    int rc = find_124(c);
    uint16_t zero = 0;
    return rc ? rc : write_checked(c, 16, (uint16_t)(c->body + MTR_124_STORCTL_MOD), 1, &zero,
                                   "StorCtl_Mod");
}

int mtr_storage_ctl_set(mtr_storage_ctl *c, int64_t power_w, int64_t now_ms)
{
    if (c->cfg.read_only)
        return fail(c, MTR_E_READONLY, "configured read-only: setpoint %lld W not written",
                    (long long)power_w);
    if (c->wrote_once && c->cfg.min_write_interval_ms > 0 &&
        now_ms - c->last_write_ms < c->cfg.min_write_interval_ms) {
        c->stats.skipped++;
        return MTR_OK;
    }
    c->wrote_once = 1;
    c->last_write_ms = now_ms;
    c->err[0] = '\0';
    int rc = c->cfg.kind == MTR_STORAGE_SUNSPEC ? set_124(c, power_w) : set_map(c, power_w);
    if (rc == MTR_OK) {
        c->in_control = 1;
        c->power_w = power_w;
        c->stats.setpoints++;
        return MTR_OK;
    }
    c->stats.failures++;
    /* keep the first reason; the release is best effort (the device may be gone) */
    char why[MTR_ERR_MAX];
    memcpy(why, c->err, sizeof why);
    release(c);
    memcpy(c->err, why, sizeof why);
    return rc;
}

int mtr_storage_ctl_release(mtr_storage_ctl *c)
{
    if (c->cfg.read_only)
        return fail(c, MTR_E_READONLY, "configured read-only: nothing to release");
    c->err[0] = '\0';
    return release(c);
}

int mtr_storage_ctl_soc(mtr_storage_ctl *c, int64_t *soc_bp)
{
    int rc = find_124(c);
    if (rc)
        return rc;
    uint16_t r[MTR_124_LEN];
    rc = mtr_link_read(c->link, c->cfg.unit, 3, c->body, MTR_124_LEN, r, NULL);
    if (rc)
        return link_fail(c, rc, "reading ChaState");
    int16_t sf = (int16_t)r[MTR_124_CHASTATE_SF];
    if (r[MTR_124_CHASTATE] == 0xFFFF || !sf_ok(sf))
        return fail(c, MTR_E_RANGE, "ChaState not implemented");
    /* percent x 10^sf in hundredths of a percent: x 10^(sf + 2) */
    int64_t v = r[MTR_124_CHASTATE];
    int e = sf + 2;
    *soc_bp = e >= 0 ? v * pow10_i64(e) : v / pow10_i64(-e);
    return MTR_OK;
}

int mtr_storage_ctl_in_control(const mtr_storage_ctl *c)
{
    return c->in_control;
}

int64_t mtr_storage_ctl_power_w(const mtr_storage_ctl *c)
{
    return c->in_control ? c->power_w : 0;
}

void mtr_storage_ctl_stats(const mtr_storage_ctl *c, mtr_storage_stats *out)
{
    *out = c->stats;
}

const char *mtr_storage_ctl_error(const mtr_storage_ctl *c)
{
    return c->err;
}
