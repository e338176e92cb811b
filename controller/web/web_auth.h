/*
 * Internal: who may read the dashboard (docs/dashboard.md). No identity system of its own: a
 * home logs in with its bus credential, a line of the broker's mosquitto password file, and the
 * coordinator with a line of an admin file in the same format. Only mosquitto 2.0's default
 * hash is accepted: "user:$7$ITERATIONS$SALT$HASH", PBKDF2-HMAC-SHA512 of the password with the
 * base64 salt, the 64-byte hash in base64 (checked against `mosquitto_passwd` output in
 * tests/web/test_web_auth.c). The older "$6$" (one round of salted SHA-512) is refused: too weak
 * to put a web login in front of.
 *
 * After a login a session: 32 random bytes (libsodium) in hex as an HttpOnly, SameSite=Strict
 * cookie; the table of sessions is bounded (the oldest is dropped when it is full) and each
 * session expires ttl seconds after its login.
 *
 * Thread safety: web_pw_* are pure functions of their arguments (and the file). A web_sessions
 * table takes its own lock. Secrets (the password a caller passes) are never copied here.
 */
#ifndef MGX_WEB_AUTH_H
#define MGX_WEB_AUTH_H

#include <stddef.h>
#include <stdint.h>

enum {
    WEB_AUTH_OK = 0,
    WEB_AUTH_DENIED = 1,   /* no such user, a wrong password or an unusable hash */
    WEB_AUTH_E_IO = -1,    /* the file cannot be read */
    WEB_AUTH_E_NOMEM = -2
};

#define WEB_USER_MAX 64 /* a user name's bytes, NUL included */
/* A password file line's hash part is at most this long ("$7$" + digits + salt + hash). */
#define WEB_PW_HASH_MAX 512
/* PBKDF2 rounds accepted: mosquitto_passwd writes 101; more is fine up to this bound, which
 * keeps a hostile file from making every login burn a core. */
#define WEB_PW_ITER_MAX 1000000

/* Whether password matches hash (the part after "user:"), in constant time over the derived
 * key. WEB_AUTH_OK or WEB_AUTH_DENIED (also for a malformed or unsupported hash). */
int web_pw_verify(const char *hash, const char *password);

/* Looks user up in the password file at path (read each call, so a changed file takes effect
 * at the next login) and verifies password. WEB_AUTH_OK, WEB_AUTH_DENIED or WEB_AUTH_E_IO. */
int web_pw_file_check(const char *path, const char *user, const char *password);

typedef enum { WEB_ROLE_HOME = 1, WEB_ROLE_ADMIN = 2 } web_role;

#define WEB_TOKEN_BYTES 32
#define WEB_TOKEN_HEX (2 * WEB_TOKEN_BYTES + 1)

typedef struct {
    char user[WEB_USER_MAX];
    web_role role;
} web_who;

typedef struct web_sessions web_sessions;

/* A table of at most max sessions living ttl_s seconds each. NULL on allocation failure.
 * The caller frees it with web_sessions_free (which wipes the tokens). */
web_sessions *web_sessions_new(size_t max, int64_t ttl_s);
void web_sessions_free(web_sessions *s);

/* Starts a session for who at now_s and writes its token (hex, NUL-terminated) to token. When
 * the table is full the session closest to expiry goes. WEB_AUTH_OK. */
int web_sessions_start(web_sessions *s, const web_who *who, int64_t now_s,
                       char token[WEB_TOKEN_HEX]);

/* The live session of token (hex) at now_s: WEB_AUTH_OK with *who filled, or WEB_AUTH_DENIED
 * (unknown, malformed or expired; an expired one is removed). */
int web_sessions_find(web_sessions *s, const char *token, int64_t now_s, web_who *who);

/* Ends the session of token if there is one. */
void web_sessions_end(web_sessions *s, const char *token);

/* Sessions held now (for tests and metrics). */
size_t web_sessions_count(web_sessions *s);

/* ---- failed logins ----
 * Guessing is slowed per user name: after WEB_THROTTLE_FAILS wrong passwords within
 * WEB_THROTTLE_WINDOW_S, the name is refused for WEB_THROTTLE_LOCK_S without its password being
 * checked (the server answers 429). The price: anyone can keep one name locked by guessing,
 * which costs the owner a minute's wait, never the market. The table holds at most max names;
 * when full, the oldest entry goes. */
#define WEB_THROTTLE_FAILS 5
#define WEB_THROTTLE_WINDOW_S 600
#define WEB_THROTTLE_LOCK_S 60

typedef struct web_throttle web_throttle;

/* NULL on allocation failure; free with web_throttle_free. */
web_throttle *web_throttle_new(size_t max);
void web_throttle_free(web_throttle *t);
/* 1 when user may try a password at now_s, 0 while it is locked. */
int web_throttle_allowed(web_throttle *t, const char *user, int64_t now_s);
/* Records a wrong password for user at now_s. */
void web_throttle_failed(web_throttle *t, const char *user, int64_t now_s);
/* A right password: user's count starts again. */
void web_throttle_succeeded(web_throttle *t, const char *user);

#endif
