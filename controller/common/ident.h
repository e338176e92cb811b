/*
 * The one identifier rule of mgx. Community, participant, meter and MQTT client ids all end up
 * as a level of an MQTT topic (mgx/v1/<community>/order/<participant>), in ACL patterns
 * (%u, %c), as MQTT user names and in certificate common names, so they share one rule that
 * is safe in every one of those places without escaping: 1 to CTL_ID_MAX bytes of
 * [A-Za-z0-9_-]. No '/', '+', '#' (topic syntax), no '.', no spaces, no UTF-8.
 *
 * The same rule is enforced by bus_id_valid (bus.h), the meters library's [meter ID] sections
 * (MTR_ID_MAX) and config/mosquitto/mgx-certs.sh; tests hold them to it.
 *
 * Pure; thread-safe.
 */
#ifndef MGX_CTL_IDENT_H
#define MGX_CTL_IDENT_H

#define CTL_ID_MAX 63 /* bytes, without the NUL: buffers are CTL_ID_MAX + 1 */

/* A participant's Ed25519 key sizes (libsodium's forms): the registry keeps the public key,
 * orders are signed with the secret key. */
#define CTL_PUBKEY_BYTES 32
#define CTL_SECKEY_BYTES 64 /* libsodium's seed || public key form */

/* 1 if s is a valid identifier, else 0 (also for NULL). */
int ctl_id_valid(const char *s);

/* A fixed English sentence describing the rule, for error messages. */
#define CTL_ID_RULE "1-63 characters of A-Z a-z 0-9 _ -"

#endif
