/*
 * The id rule at the coordinator's two front doors: `mgx participant add` and the broker
 * credential script config/mosquitto/mgx-certs.sh refuse every id the bus cannot carry (with
 * '.', 64 bytes) and take the longest one it can (63 bytes), so a home is never registered
 * under a name its MQTT user or topics could not have.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h" /* tst_tmpdir */

typedef struct {
    int status;
    char err[4096];
} run_result;

/* Runs argv (NULL-terminated) in the test's folder; stderr into r->err. */
static void run(run_result *r, char *const argv[])
{
    char err_path[512];
    snprintf(err_path, sizeof err_path, "%s/.err", tst_dir);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int o = open("/dev/null", O_WRONLY);
        if (chdir(tst_dir) != 0 || e < 0 || o < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    FILE *f = fopen(err_path, "r");
    assert_non_null(f);
    size_t n = fread(r->err, 1, sizeof r->err - 1, f);
    r->err[n] = '\0';
    fclose(f);
}

static char *mgx_bin(void)
{
    char *bin = getenv("MGX_BIN");
    if (!bin)
        fail_msg("MGX_BIN is not set (ctest sets it)");
    return bin;
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* The RFC 8032 TEST 1 public key as hex: any valid key does. */
#define PUBKEY "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

static void participant_add(void **state)
{
    (void)state;
    run_result r;
    char *id63 = repeat('h', 63), *id64 = repeat('h', 64);
    char *ok[] = {mgx_bin(), "participant", "add", "--db", "c.db", "--id", id63, "--pubkey",
                  PUBKEY, "--meter", "meter-1", NULL};
    run(&r, ok);
    if (r.status != 0)
        fail_msg("63-byte id refused: %s", r.err);
    char *bad_ids[] = {"home.7", id64, "home/7", "home 7"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        char *argv[] = {mgx_bin(), "participant", "add", "--db", "c.db", "--id",
                        bad_ids[i], "--pubkey", PUBKEY, "--meter", "meter-2", NULL};
        run(&r, argv);
        assert_int_equal(r.status, 2);
        if (!strstr(r.err, "must be 1-63 characters of A-Z a-z 0-9 _ -"))
            fail_msg("--id %s: %s", bad_ids[i], r.err);
    }
    char *bad_meter[] = {mgx_bin(), "participant", "add", "--db", "c.db", "--id", "home-7",
                         "--pubkey", PUBKEY, "--meter", "meter.2", NULL};
    run(&r, bad_meter);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--meter 'meter.2' must be 1-63"));
    free(id63);
    free(id64);
}

static void certs_script(void **state)
{
    (void)state;
    run_result r;
    char script[] = MGX_SOURCE_DIR "/config/mosquitto/mgx-certs.sh";
    char *id63 = repeat('c', 63), *id64 = repeat('c', 64);
    char *ok[] = {"sh", script, "password", ".", id63, "secret-1", NULL};
    run(&r, ok);
    if (r.status != 0)
        fail_msg("63-byte id refused: %s", r.err);
    char path[600], line[256] = "";
    snprintf(path, sizeof path, "%s/passwd", tst_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_int_equal(strncmp(line, id63, 63), 0);
    assert_int_equal(line[63], ':');

    char *bad_ids[] = {"home.7", id64, "home/7", "h\xc3\xa9", ""};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        char *pw[] = {"sh", script, "password", ".", bad_ids[i], "secret-2", NULL};
        run(&r, pw);
        assert_int_equal(r.status, 1);
        if (!strstr(r.err, "63 characters"))
            fail_msg("password %s: %s", bad_ids[i], r.err);
        char *cl[] = {"sh", script, "client", ".", bad_ids[i], NULL};
        run(&r, cl);
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "63 characters"));
    }
    free(id63);
    free(id64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(participant_add),
        cmocka_unit_test(certs_script),
    };
    return cmocka_run_group_tests(tests, tst_dir_setup, tst_dir_teardown);
}
