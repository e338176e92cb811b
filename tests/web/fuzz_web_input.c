/*
 * Fuzz harness for what the dashboard parses from outside (controller/web): a password file
 * line's hash (web_pw_verify, both as the stored hash and as the typed password), the ?day=
 * parameter (web_parse_day) and a session cookie (web_sessions_find).
 *
 * Invariants, for every input:
 *   - nothing crashes, leaks or reads out of bounds (the sanitizers watch);
 *   - a hash never verifies a password it was not made from: the input as a hash does not accept
 *     the fixed password unless the input is the fixed password's known hash line (its base64
 *     padding may be left off, as the decoder allows), and the known
 *     hash accepts the input as a password only when it is that password;
 *   - a day that parses is a midnight and prints back as the same text;
 *   - no token but the one a session was started with finds it.
 */
#define _POSIX_C_SOURCE 200809L
#include "fuzz.h"

#include "web/web_auth.h"
#include "web/web_data.h"

#include <string.h>
#include <strings.h>
#include <time.h>

/* `mosquitto_passwd -b FILE u 'correct horse'` on Debian 12 (mosquitto 2.0.11) */
static const char KNOWN[] =
    "$7$101$HFE0KbF03QVFpppB$xSkD2dcmw+uSezRKSwsGVDYdXjqOBJWmjlPD8d9sqXhoX3lqXgATpcYLz6QRtYqF+0Y"
    "wqYgEDEXj8xNY1Zr02g==";
static const char PASSWORD[] = "correct horse";
/*
 * The same password and salt at 1 iteration (Python's hashlib.pbkdf2_hmac, which also gives
 * KNOWN's hash at 101). The typed-password check runs against this one: at 101 iterations
 * PBKDF2 was most of an execution (about 1,600 a second sanitized), and the iteration count
 * changes nothing that parses input; KNOWN is still checked once.
 */
static const char KNOWN_FAST[] =
    "$7$1$HFE0KbF03QVFpppB$6mdp/hd1e+6n+ZPn8FVE/GqDESUGfu2E5cnOvj8AT2PVUikpj09gGg8d4jJJJenAuhEch"
    "LBGHF9TeTCsixUUCQ==";

/* a and b equal but for '=' padding at the end, which the hash's base64 may omit */
static int same_but_padding(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    while (na && a[na - 1] == '=')
        na--;
    while (nb && b[nb - 1] == '=')
        nb--;
    return na == nb && memcmp(a, b, na) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 600)
        return 0;
    char s[601];
    memcpy(s, data, size);
    s[size] = 0;

    static int known_checked;
    if (!known_checked) {
        FUZZ_CHECK(web_pw_verify(KNOWN, PASSWORD) == WEB_AUTH_OK);
        FUZZ_CHECK(web_pw_verify(KNOWN_FAST, PASSWORD) == WEB_AUTH_OK);
        known_checked = 1;
    }
    int as_hash = web_pw_verify(s, PASSWORD);
    FUZZ_CHECK(as_hash == WEB_AUTH_DENIED || same_but_padding(s, KNOWN) ||
               same_but_padding(s, KNOWN_FAST));
    int as_pw = web_pw_verify(KNOWN_FAST, s);
    FUZZ_CHECK((as_pw == WEB_AUTH_OK) == (strcmp(s, PASSWORD) == 0));

    int64_t day;
    if (web_parse_day(s, &day) == 0) {
        FUZZ_CHECK(day % 86400 == 0);
        time_t t = (time_t)day;
        struct tm tm;
        FUZZ_CHECK(gmtime_r(&t, &tm) != NULL);
        char back[16];
        strftime(back, sizeof back, "%Y-%m-%d", &tm);
        FUZZ_CHECK(strcmp(back, s) == 0);
    }

    static web_sessions *ss;
    static char token[WEB_TOKEN_HEX];
    if (!ss) {
        ss = web_sessions_new(4, 1000);
        FUZZ_CHECK(ss != NULL);
        web_who who = {"home-1", WEB_ROLE_HOME};
        web_sessions_start(ss, &who, 1, token);
    }
    web_who got;
    int found = web_sessions_find(ss, s, 2, &got);
    FUZZ_CHECK((found == WEB_AUTH_OK) == (strcasecmp(s, token) == 0));
    return 0;
}
