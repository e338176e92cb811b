/*
 * Dashboard logins: mosquitto password file hashes and the bounded session table (see
 * web_auth.h).
 */
#include "web/web_auth.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PW_HASH_BYTES 64 /* SHA-512 */
#define PW_SALT_MAX 64

static int b64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *n)
{
    if (sodium_base642bin(out, cap, s, len, NULL, n, NULL, sodium_base64_VARIANT_ORIGINAL) == 0)
        return 0;
    return sodium_base642bin(out, cap, s, len, NULL, n, NULL,
                             sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

int web_pw_verify(const char *hash, const char *password)
{
    /* $7$ITER$SALT$HASH */
    if (!hash || !password || strncmp(hash, "$7$", 3) != 0 || strlen(hash) >= WEB_PW_HASH_MAX)
        return WEB_AUTH_DENIED;
    const char *p = hash + 3;
    char *end;
    errno = 0;
    /* plain decimal as mosquitto_passwd writes it: strtol alone would also take " +0101" */
    if (*p < '1' || *p > '9')
        return WEB_AUTH_DENIED;
    long iter = strtol(p, &end, 10);
    if (errno || end == p || *end != '$' || iter < 1 || iter > WEB_PW_ITER_MAX)
        return WEB_AUTH_DENIED;
    const char *salt_b64 = end + 1;
    const char *dollar = strchr(salt_b64, '$');
    if (!dollar)
        return WEB_AUTH_DENIED;
    const char *hash_b64 = dollar + 1;
    uint8_t salt[PW_SALT_MAX], want[PW_HASH_BYTES + 4], got[PW_HASH_BYTES];
    size_t salt_len, want_len;
    if (b64_decode(salt_b64, (size_t)(dollar - salt_b64), salt, sizeof salt, &salt_len) ||
        salt_len == 0 ||
        b64_decode(hash_b64, strlen(hash_b64), want, sizeof want, &want_len) ||
        want_len != PW_HASH_BYTES)
        return WEB_AUTH_DENIED;
    int rc = WEB_AUTH_DENIED;
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, (int)iter,
                          EVP_sha512(), PW_HASH_BYTES, got) == 1 &&
        sodium_memcmp(got, want, PW_HASH_BYTES) == 0)
        rc = WEB_AUTH_OK;
    sodium_memzero(got, sizeof got);
    return rc;
}

int web_pw_file_check(const char *path, const char *user, const char *password)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return WEB_AUTH_E_IO;
    char line[WEB_USER_MAX + WEB_PW_HASH_MAX + 2];
    size_t ulen = strlen(user);
    int rc = WEB_AUTH_DENIED;
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n && line[n - 1] != '\n' && !feof(f)) {
            /* a line longer than any valid one: skip the rest of it */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (ulen == 0 || n <= ulen || line[ulen] != ':' || memcmp(line, user, ulen) != 0)
            continue;
        rc = web_pw_verify(line + ulen + 1, password);
        break; /* the broker, too, uses a user's first line */
    }
    if (ferror(f))
        rc = WEB_AUTH_E_IO;
    fclose(f);
    sodium_memzero(line, sizeof line);
    return rc;
}

/* ---- sessions ---- */

typedef struct {
    uint8_t token[WEB_TOKEN_BYTES];
    web_who who;
    int64_t expires_s; /* 0: free */
} session;

struct web_sessions {
    pthread_mutex_t lock;
    session *slot; /* sodium_malloc: the tokens are bearer secrets */
    size_t max;
    int64_t ttl_s;
};

web_sessions *web_sessions_new(size_t max, int64_t ttl_s)
{
    if (max == 0 || ttl_s <= 0 || sodium_init() < 0)
        return NULL;
    web_sessions *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->slot = sodium_allocarray(max, sizeof *s->slot);
    if (!s->slot) {
        free(s);
        return NULL;
    }
    memset(s->slot, 0, max * sizeof *s->slot);
    s->max = max;
    s->ttl_s = ttl_s;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void web_sessions_free(web_sessions *s)
{
    if (!s)
        return;
    sodium_free(s->slot); /* wipes */
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int web_sessions_start(web_sessions *s, const web_who *who, int64_t now_s,
                       char token[WEB_TOKEN_HEX])
{
    pthread_mutex_lock(&s->lock);
    size_t pick = 0;
    for (size_t i = 0; i < s->max; i++) {
        if (s->slot[i].expires_s <= now_s) { /* free or expired */
            pick = i;
            break;
        }
        if (s->slot[i].expires_s < s->slot[pick].expires_s)
            pick = i;
    }
    session *x = &s->slot[pick];
    randombytes_buf(x->token, sizeof x->token);
    x->who = *who;
    x->expires_s = now_s + s->ttl_s;
    sodium_bin2hex(token, WEB_TOKEN_HEX, x->token, sizeof x->token);
    pthread_mutex_unlock(&s->lock);
    return WEB_AUTH_OK;
}

/* The slot of token, or NULL; under the lock. Compares every live slot in constant time. */
static session *lookup(web_sessions *s, const char *token)
{
    uint8_t t[WEB_TOKEN_BYTES];
    size_t n;
    if (!token || strlen(token) != 2 * WEB_TOKEN_BYTES ||
        sodium_hex2bin(t, sizeof t, token, 2 * WEB_TOKEN_BYTES, NULL, &n, NULL) != 0 ||
        n != WEB_TOKEN_BYTES)
        return NULL;
    session *hit = NULL;
    for (size_t i = 0; i < s->max; i++)
        if (s->slot[i].expires_s != 0 && sodium_memcmp(s->slot[i].token, t, sizeof t) == 0)
            hit = &s->slot[i];
    sodium_memzero(t, sizeof t);
    return hit;
}

int web_sessions_find(web_sessions *s, const char *token, int64_t now_s, web_who *who)
{
    int rc = WEB_AUTH_DENIED;
    pthread_mutex_lock(&s->lock);
    session *x = lookup(s, token);
    if (x && x->expires_s > now_s) {
        *who = x->who;
        rc = WEB_AUTH_OK;
    } else if (x) {
        sodium_memzero(x, sizeof *x);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void web_sessions_end(web_sessions *s, const char *token)
{
    pthread_mutex_lock(&s->lock);
    session *x = lookup(s, token);
    if (x)
        sodium_memzero(x, sizeof *x);
    pthread_mutex_unlock(&s->lock);
}

size_t web_sessions_count(web_sessions *s)
{
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->max; i++)
        n += s->slot[i].expires_s != 0;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ---- failed logins ---- */

typedef struct {
    char user[WEB_USER_MAX]; /* "" free */
    int fails;
    int64_t first_s;  /* the window's start */
    int64_t locked_until_s;
} attempt;

struct web_throttle {
    pthread_mutex_t lock;
    attempt *a;
    size_t max;
};

web_throttle *web_throttle_new(size_t max)
{
    web_throttle *t = calloc(1, sizeof *t);
    if (!t || max == 0 || !(t->a = calloc(max, sizeof *t->a))) {
        free(t);
        return NULL;
    }
    t->max = max;
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void web_throttle_free(web_throttle *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->a);
    free(t);
}

/* user's entry, or NULL; under the lock */
static attempt *find_attempt(web_throttle *t, const char *user)
{
    for (size_t i = 0; i < t->max; i++)
        if (t->a[i].user[0] && strcmp(t->a[i].user, user) == 0)
            return &t->a[i];
    return NULL;
}

int web_throttle_allowed(web_throttle *t, const char *user, int64_t now_s)
{
    pthread_mutex_lock(&t->lock);
    attempt *x = find_attempt(t, user);
    int ok = !x || x->locked_until_s <= now_s;
    pthread_mutex_unlock(&t->lock);
    return ok;
}

void web_throttle_failed(web_throttle *t, const char *user, int64_t now_s)
{
    if (!user[0] || strlen(user) >= WEB_USER_MAX)
        return;
    pthread_mutex_lock(&t->lock);
    attempt *x = find_attempt(t, user);
    if (!x) { /* a free entry, else the one whose window began first */
        x = &t->a[0];
        for (size_t i = 0; i < t->max; i++) {
            if (!t->a[i].user[0]) {
                x = &t->a[i];
                break;
            }
            if (t->a[i].first_s < x->first_s)
                x = &t->a[i];
        }
        memset(x, 0, sizeof *x);
        snprintf(x->user, sizeof x->user, "%s", user);
        x->first_s = now_s;
    }
    if (now_s - x->first_s >= WEB_THROTTLE_WINDOW_S) { /* a new window */
        x->first_s = now_s;
        x->fails = 0;
    }
    if (++x->fails >= WEB_THROTTLE_FAILS) {
        x->locked_until_s = now_s + WEB_THROTTLE_LOCK_S;
        x->fails = 0;
        x->first_s = now_s;
    }
    pthread_mutex_unlock(&t->lock);
}

void web_throttle_succeeded(web_throttle *t, const char *user)
{
    pthread_mutex_lock(&t->lock);
    attempt *x = find_attempt(t, user);
    if (x)
        memset(x, 0, sizeof *x);
    pthread_mutex_unlock(&t->lock);
}
