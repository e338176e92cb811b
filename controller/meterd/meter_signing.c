/*
 * The meter daemon's [signing] section and device key (see meter_signing.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "meterd/meter_signing.h"

#include "bus/payload.h"
#include "bus/reading_sig.h"
#include "common/errbuf.h"
#include "orders/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct meter_signer {
    ctl_secret_key *key;
    char participant[CTL_ID_MAX + 1];
};

static const char *const KEYS[] = {"key", "participant", NULL};

static int signing_key(void *ctx, const char *section, const char *key, const char *value,
                       int line, char *err, size_t errlen)
{
    cfg_signing *s = ctx;
    if (strcmp(section, "signing") != 0)
        return CFG_NOT_MINE;
    if (!key) {
        if (s->line)
            return ctl_fail(CFG_E_BAD, err, errlen, "[signing] given twice (first at line %d)",
                            s->line);
        s->line = line;
        return CFG_OK;
    }
    int k = cfg_key_index(KEYS, key);
    if (k < 0)
        return CFG_NOT_MINE;
    if (cfg_once(&s->seen, (unsigned)k, key, err, errlen))
        return CFG_E_BAD;
    if (k == 0) {
        if (cfg_path(s->loader, value, s->key_path, sizeof s->key_path))
            return ctl_fail(CFG_E_BAD, err, errlen, "key: bad path");
        return CFG_OK;
    }
    return cfg_parse_id(key, value, s->participant, err, errlen);
}

static int signing_finish(void *ctx, const char *path, char *err, size_t errlen)
{
    cfg_signing *s = ctx;
    if (s->line && (!s->key_path[0] || !s->participant[0]))
        return ctl_fail(CFG_E_BAD, err, errlen, "%s:%d: [signing] needs key and participant",
                        path, s->line);
    return CFG_OK;
}

int cfg_signing_add(cfg_loader *l, cfg_signing *s)
{
    memset(s, 0, sizeof *s);
    s->loader = l;
    return cfg_loader_add(l, signing_key, signing_finish, s);
}

int meter_signer_open(const cfg_signing *c, meter_signer **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!c->line)
        return 0;
    meter_signer *s = calloc(1, sizeof *s);
    if (!s)
        return ctl_fail(-1, err, errlen, "out of memory");
    int rc = ctl_key_load(c->key_path, &s->key);
    if (rc != CTL_KEY_OK) {
        free(s);
        return ctl_fail(-1, err, errlen, "[signing] key %s: %s", c->key_path,
                        ctl_key_strerror(rc));
    }
    snprintf(s->participant, sizeof s->participant, "%s", c->participant);
    *out = s;
    return 0;
}

void meter_signer_free(meter_signer *s)
{
    if (!s)
        return;
    ctl_key_free(s->key);
    free(s);
}

int meter_signer_encode(const meter_signer *s, const mtr_sample *r, char *buf, size_t len)
{
    if (!s)
        return bus_state_encode(r, buf, len);
    return bus_state_encode_signed(r, s->participant, ctl_key_secret(s->key), buf, len);
}
