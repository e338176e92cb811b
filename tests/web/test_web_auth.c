/*
 * The dashboard's logins (controller/web/web_auth.c), unit level: password files written by the
 * real `mosquitto_passwd` (mosquitto 2.0's PBKDF2-SHA512 "$7$" lines) are verified, wrong
 * passwords, unknown users, a user whose name is a prefix of another's, tampered hashes, the
 * older "$6$" format and absurd iteration counts are refused; the session table finds live
 * tokens, forgets expired and ended ones, refuses malformed ones, and stays within its bound;
 * the failed-login throttle locks a name after WEB_THROTTLE_FAILS wrong passwords in its window.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "shell.h"
#include "web/web_auth.h"

static char dir[] = "/tmp/mgx-web-auth-XXXXXX";
static char pwfile[256];

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(pwfile, sizeof pwfile, "%s/passwd", dir);
    /* homes as the community's broker has them: home-1 and home-10 (a prefix pair), and a
     * password with spaces and non-ASCII bytes */
    if (tst_sh("mosquitto_passwd -c -b %s home-1 'correct horse' && "
               "mosquitto_passwd -b %s home-10 'other secret' && "
               "mosquitto_passwd -b %s coord 'p\xc3\xa4ss wort!'",
               pwfile, pwfile, pwfile) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tst_sh("rm -rf %s", dir);
    return 0;
}

static void real_mosquitto_file(void **state)
{
    (void)state;
    assert_int_equal(web_pw_file_check(pwfile, "home-1", "correct horse"), WEB_AUTH_OK);
    assert_int_equal(web_pw_file_check(pwfile, "home-10", "other secret"), WEB_AUTH_OK);
    assert_int_equal(web_pw_file_check(pwfile, "coord", "p\xc3\xa4ss wort!"), WEB_AUTH_OK);
    /* wrong passwords, near misses included */
    assert_int_equal(web_pw_file_check(pwfile, "home-1", "correct horsE"), WEB_AUTH_DENIED);
    assert_int_equal(web_pw_file_check(pwfile, "home-1", "correct horse "), WEB_AUTH_DENIED);
    assert_int_equal(web_pw_file_check(pwfile, "home-1", ""), WEB_AUTH_DENIED);
    /* one home's password is not another's */
    assert_int_equal(web_pw_file_check(pwfile, "home-1", "other secret"), WEB_AUTH_DENIED);
    assert_int_equal(web_pw_file_check(pwfile, "home-10", "correct horse"), WEB_AUTH_DENIED);
    /* names: unknown, a prefix, empty */
    assert_int_equal(web_pw_file_check(pwfile, "home-2", "correct horse"), WEB_AUTH_DENIED);
    assert_int_equal(web_pw_file_check(pwfile, "home-", "correct horse"), WEB_AUTH_DENIED);
    assert_int_equal(web_pw_file_check(pwfile, "", "correct horse"), WEB_AUTH_DENIED);
    /* no file */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    assert_int_equal(web_pw_file_check(missing, "home-1", "x"), WEB_AUTH_E_IO);
}

/* The hash part of user's line in the real file. */
static void hash_of(const char *user, char *out, size_t cap)
{
    char *text = tst_file_text(pwfile);
    assert_non_null(text);
    char key[80];
    snprintf(key, sizeof key, "%s:", user);
    char *line = strstr(text, key);
    assert_non_null(line);
    line += strlen(key);
    size_t n = strcspn(line, "\n");
    assert_true(n < cap);
    memcpy(out, line, n);
    out[n] = 0;
    free(text);
}

static void tampered_hashes(void **state)
{
    (void)state;
    char h[WEB_PW_HASH_MAX], t[WEB_PW_HASH_MAX + 16];
    hash_of("home-1", h, sizeof h);
    assert_int_equal(strncmp(h, "$7$101$", 7), 0); /* the format this machine's tool writes */
    assert_int_equal(web_pw_verify(h, "correct horse"), WEB_AUTH_OK);
    /* each part changed in turn */
    snprintf(t, sizeof t, "$7$102%s", h + 6); /* iterations */
    assert_int_equal(web_pw_verify(t, "correct horse"), WEB_AUTH_DENIED);
    snprintf(t, sizeof t, "%s", h);
    t[8] = t[8] == 'A' ? 'B' : 'A'; /* salt */
    assert_int_equal(web_pw_verify(t, "correct horse"), WEB_AUTH_DENIED);
    snprintf(t, sizeof t, "%s", h);
    size_t n = strlen(t);
    t[n - 4] = t[n - 4] == 'A' ? 'B' : 'A'; /* hash */
    assert_int_equal(web_pw_verify(t, "correct horse"), WEB_AUTH_DENIED);
    snprintf(t, sizeof t, "%.*s", (int)(n - 4), h); /* truncated hash */
    assert_int_equal(web_pw_verify(t, "correct horse"), WEB_AUTH_DENIED);
    snprintf(t, sizeof t, "$6$%s", h + 7); /* the older format is refused */
    assert_int_equal(web_pw_verify(t, "correct horse"), WEB_AUTH_DENIED);
    assert_int_equal(web_pw_verify("$7$99999999$AAAA$AAAA", "x"), WEB_AUTH_DENIED);
    assert_int_equal(web_pw_verify("$7$0$AAAA$AAAA", "x"), WEB_AUTH_DENIED);
    assert_int_equal(web_pw_verify("$7$101$$", "x"), WEB_AUTH_DENIED);
    assert_int_equal(web_pw_verify("", "x"), WEB_AUTH_DENIED);
    assert_int_equal(web_pw_verify("correct horse", "correct horse"), WEB_AUTH_DENIED);
}

static void sessions(void **state)
{
    (void)state;
    web_sessions *s = web_sessions_new(3, 100);
    assert_non_null(s);
    web_who a = {"home-1", WEB_ROLE_HOME}, b = {"coord", WEB_ROLE_ADMIN}, got;
    char ta[WEB_TOKEN_HEX], tb[WEB_TOKEN_HEX], tc[WEB_TOKEN_HEX];
    assert_int_equal(web_sessions_start(s, &a, 1000, ta), WEB_AUTH_OK);
    assert_int_equal(web_sessions_start(s, &b, 1001, tb), WEB_AUTH_OK);
    assert_int_equal(strlen(ta), 64);
    assert_string_not_equal(ta, tb);
    assert_int_equal(web_sessions_find(s, ta, 1050, &got), WEB_AUTH_OK);
    assert_string_equal(got.user, "home-1");
    assert_int_equal(got.role, WEB_ROLE_HOME);
    assert_int_equal(web_sessions_find(s, tb, 1050, &got), WEB_AUTH_OK);
    assert_int_equal(got.role, WEB_ROLE_ADMIN);
    /* malformed and unknown tokens */
    char bad[WEB_TOKEN_HEX];
    memcpy(bad, ta, sizeof bad);
    bad[10] = bad[10] == '0' ? '1' : '0';
    assert_int_equal(web_sessions_find(s, bad, 1050, &got), WEB_AUTH_DENIED);
    assert_int_equal(web_sessions_find(s, "", 1050, &got), WEB_AUTH_DENIED);
    assert_int_equal(web_sessions_find(s, "zz", 1050, &got), WEB_AUTH_DENIED);
    bad[10] = 'g';
    assert_int_equal(web_sessions_find(s, bad, 1050, &got), WEB_AUTH_DENIED);
    /* expiry: ttl 100 s after the login */
    assert_int_equal(web_sessions_find(s, ta, 1099, &got), WEB_AUTH_OK);
    assert_int_equal(web_sessions_find(s, ta, 1100, &got), WEB_AUTH_DENIED);
    assert_int_equal(web_sessions_find(s, ta, 1000, &got), WEB_AUTH_DENIED); /* removed */
    /* the bound: a full table drops the session closest to expiry */
    assert_int_equal(web_sessions_start(s, &a, 1060, ta), WEB_AUTH_OK);
    assert_int_equal(web_sessions_start(s, &a, 1070, tc), WEB_AUTH_OK);
    assert_int_equal(web_sessions_count(s), 3);
    char td[WEB_TOKEN_HEX];
    assert_int_equal(web_sessions_start(s, &a, 1080, td), WEB_AUTH_OK);
    assert_int_equal(web_sessions_count(s), 3);
    assert_int_equal(web_sessions_find(s, tb, 1080, &got), WEB_AUTH_DENIED); /* the oldest */
    assert_int_equal(web_sessions_find(s, ta, 1080, &got), WEB_AUTH_OK);
    assert_int_equal(web_sessions_find(s, td, 1080, &got), WEB_AUTH_OK);
    /* logout */
    web_sessions_end(s, ta);
    assert_int_equal(web_sessions_find(s, ta, 1080, &got), WEB_AUTH_DENIED);
    assert_int_equal(web_sessions_find(s, tc, 1080, &got), WEB_AUTH_OK);
    web_sessions_free(s);
}

static void throttle(void **state)
{
    (void)state;
    web_throttle *t = web_throttle_new(2);
    assert_non_null(t);
    /* four wrong passwords in the window: still allowed; the fifth locks the name for a minute */
    for (int i = 0; i < WEB_THROTTLE_FAILS - 1; i++) {
        assert_int_equal(web_throttle_allowed(t, "home-1", 100 + i), 1);
        web_throttle_failed(t, "home-1", 100 + i);
    }
    assert_int_equal(web_throttle_allowed(t, "home-1", 110), 1);
    web_throttle_failed(t, "home-1", 110);
    assert_int_equal(web_throttle_allowed(t, "home-1", 111), 0);
    assert_int_equal(web_throttle_allowed(t, "home-1", 110 + WEB_THROTTLE_LOCK_S - 1), 0);
    assert_int_equal(web_throttle_allowed(t, "home-10", 111), 1); /* other names are not */
    assert_int_equal(web_throttle_allowed(t, "home-1", 110 + WEB_THROTTLE_LOCK_S), 1);
    /* failures spread wider than the window never lock */
    for (int i = 0; i < 3 * WEB_THROTTLE_FAILS; i++) {
        web_throttle_failed(t, "home-2", 1000 + (int64_t)i * WEB_THROTTLE_WINDOW_S / 4);
        assert_int_equal(
            web_throttle_allowed(t, "home-2", 1000 + (int64_t)i * WEB_THROTTLE_WINDOW_S / 4), 1);
    }
    /* a right password starts the count again */
    for (int i = 0; i < WEB_THROTTLE_FAILS - 1; i++)
        web_throttle_failed(t, "home-3", 5000);
    web_throttle_succeeded(t, "home-3");
    web_throttle_failed(t, "home-3", 5001);
    assert_int_equal(web_throttle_allowed(t, "home-3", 5001), 1);
    web_throttle_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(real_mosquitto_file),
        cmocka_unit_test(tampered_hashes),
        cmocka_unit_test(sessions),
        cmocka_unit_test(throttle),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
