/*
 * Signed readings in the meter daemon: the [signing] section of a meter file and the device
 * key that signs every published reading (bus/reading_sig.h). With [signing] the reading's
 * origin is the gateway holding the key, not anyone with the home's broker password; the
 * controller verifies it against the key registered for the meter (`mgx participant
 * meter-key`) and records the reading's attestation tier.
 *
 *   [signing]
 *   key = gateway.key     ; the secret key file of `mgx keygen --out gateway` (mode 0600)
 *   participant = home-1  ; the participant the meters belong to (it is signed too)
 *
 * Without [signing] readings are published unsigned (tier 0), as before. The key is loaded
 * into guarded memory (orders/keys.h) once at start; a key file readable by others, or one
 * that does not match its .pub, stops the daemon at start.
 *
 * Threading: the meter daemon's main thread.
 */
#ifndef MGX_CTL_METER_SIGNING_H
#define MGX_CTL_METER_SIGNING_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/ident.h"
#include "mgx/meter.h"

typedef struct {
    const cfg_loader *loader;
    int line;                          /* of the [signing] header, 0 when absent */
    uint64_t seen;
    char key_path[CFG_PATH_MAX];       /* resolved against the config file's folder */
    char participant[CTL_ID_MAX + 1];
} cfg_signing;

/* Registers the [signing] handler (and its check that both keys are there). CFG_OK or
 * CFG_E_NOMEM. */
int cfg_signing_add(cfg_loader *l, cfg_signing *s);

typedef struct meter_signer meter_signer;

/* Loads the key of c; *out is NULL (and 0 returned) when c has no [signing]. 0, or -1 with
 * the reason in err. The caller frees *out with meter_signer_free. */
int meter_signer_open(const cfg_signing *c, meter_signer **out, char *err, size_t errlen);
void meter_signer_free(meter_signer *s);

/* The state body of r: signed when s is not NULL, plain otherwise. As bus_state_encode. */
int meter_signer_encode(const meter_signer *s, const mtr_sample *r, char *buf, size_t len);

#endif
