/*
 * End to end: the real `mgx` binary ($MGX_BIN) makes key pairs and keeps a registry, as a
 * coordinator would use it; then a key it made signs an order that verifies against the key
 * the registry holds. Also the failure paths: overwrite refused, duplicate key or id, unknown
 * participant, missing database, bad options; each exits non-zero with a message and changes
 * nothing.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "orders/keys.h"
#include "orders_fixture.h"
#include "db/registry.h"

typedef struct {
    int status;
    char out[16384], err[4096];
} run_result;

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs mgx with up to 12 arguments (NULL-terminated) in the test's folder. */
static void run(run_result *r, ...)
{
    char *bin = getenv("MGX_BIN");
    if (!bin)
        fail_msg("MGX_BIN is not set (ctest sets it)");
    char *args[16] = {bin};
    va_list ap;
    va_start(ap, r);
    int n = 1;
    while (n < 15 && (args[n] = va_arg(ap, char *)) != NULL)
        n++;
    va_end(ap);
    args[n] = NULL;
    char out_path[512], err_path[512];
    snprintf(out_path, sizeof out_path, "%s/.out", tst_dir);
    snprintf(err_path, sizeof err_path, "%s/.err", tst_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(tst_dir) != 0)
            _exit(126);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execv(bin, args);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    slurp(out_path, r->out, sizeof r->out);
    slurp(err_path, r->err, sizeof r->err);
}

static int setup(void **state)
{
    if (tst_dir_setup(state) != 0)
        return -1;
    return sodium_init() >= 0 ? 0 : -1;
}

static void test_keygen_cli(void **state)
{
    (void)state;
    run_result r;
    run(&r, "keygen", "--out", "alice", NULL);
    assert_int_equal(r.status, 0);
    /* stdout is exactly the public key and a newline, and matches alice.pub */
    assert_int_equal(strlen(r.out), 65);
    char path[512], pub[128];
    snprintf(path, sizeof path, "%s/alice.pub", tst_dir);
    slurp(path, pub, sizeof pub);
    assert_string_equal(pub, r.out);
    snprintf(path, sizeof path, "%s/alice.key", tst_dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_non_null(strstr(r.err, "mode 0600"));

    run(&r, "keygen", "--out", "alice", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "refusing to overwrite"));
    run(&r, "keygen", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--out PREFIX is required"));
    run(&r, "keygen", "--out", "x", "extra", NULL);
    assert_int_equal(r.status, 2);
    run(&r, "keygen", "--help", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: mgx keygen"));
    run(&r, "keygen", "--out", "no/such/tst_dir/k", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "No such file or directory"));
}

static void test_participant_cli(void **state)
{
    (void)state;
    run_result r;
    run(&r, "keygen", "--out", "h1", NULL);
    assert_int_equal(r.status, 0);
    char h1_hex[65];
    memcpy(h1_hex, r.out, 64);
    h1_hex[64] = '\0';
    run(&r, "keygen", "--out", "h2", NULL);
    assert_int_equal(r.status, 0);

    run(&r, "participant", "add", "--db", "c.db", "--id", "home-1", "--pubkey", "h1.pub",
        "--meter", "meter-1", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "added home-1 (home, meter meter-1, key "));
    /* key given inline, as base64 */
    run(&r, "participant", "add", "--db", "c.db", "--id", "watcher", "--pubkey",
        "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "--role", "observer", NULL);
    assert_int_equal(r.status, 0);

    /* refusals: same key, same id, same meter, a home without meter, bad id, bad role */
    run(&r, "participant", "add", "--db", "c.db", "--id", "home-2", "--pubkey", "h1.pub",
        "--meter", "meter-2", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "already has this public key"));
    run(&r, "participant", "add", "--db", "c.db", "--id", "home-1", "--pubkey", "h2.pub",
        "--meter", "meter-2", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "already exists"));
    run(&r, "participant", "add", "--db", "c.db", "--id", "home-2", "--pubkey", "h2.pub",
        "--meter", "meter-1", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "already has this meter"));
    run(&r, "participant", "add", "--db", "c.db", "--id", "home-2", "--pubkey", "h2.pub", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "needs --meter"));
    run(&r, "participant", "add", "--db", "c.db", "--id", "home/2", "--pubkey", "h2.pub",
        "--meter", "m", NULL);
    assert_int_equal(r.status, 2);
    run(&r, "participant", "add", "--db", "c.db", "--id", "home-2", "--pubkey", "h2.pub",
        "--meter", "m", "--role", "admin", NULL);
    assert_int_equal(r.status, 2);
    run(&r, "participant", "add", "--db", "c.db", "--id", "home-2", "--pubkey", "h2.key",
        "--meter", "m", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "does not hold a public key"));

    run(&r, "participant", "list", "--db", "c.db", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "home-1"));
    assert_non_null(strstr(r.out, h1_hex));
    assert_non_null(strstr(r.out, "watcher"));
    assert_null(strstr(r.out, "home-2"));

    run(&r, "participant", "list", "--db", "c.db", "--json", NULL);
    assert_int_equal(r.status, 0);
    json_error_t err;
    json_t *arr = json_loads(r.out, 0, &err);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 2);
    json_t *first = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(first, "id")), "home-1");
    assert_string_equal(json_string_value(json_object_get(first, "pubkey")), h1_hex);
    assert_string_equal(json_string_value(json_object_get(first, "meter_id")), "meter-1");
    assert_string_equal(json_string_value(json_object_get(first, "role")), "home");
    assert_true(json_is_null(json_object_get(json_array_get(arr, 1), "meter_id")));
    json_decref(arr);

    /* a key made by keygen signs an order that verifies against the registered key */
    char path[512];
    snprintf(path, sizeof path, "%s/c.db", tst_dir);
    ctl_db *db = NULL;
    assert_int_equal(ctl_registry_open(path, &db, NULL, 0), CTL_REG_OK);
    ctl_participant p;
    assert_int_equal(ctl_registry_lookup(db, "home-1", &p), CTL_REG_OK);
    ctl_db_close(db);
    snprintf(path, sizeof path, "%s/h1.key", tst_dir);
    ctl_secret_key *k = NULL;
    assert_int_equal(ctl_key_load(path, &k), CTL_KEY_OK);
    ctl_order_msg m;
    tst_example_order(&m);
    strcpy(m.participant, "home-1");
    assert_int_equal(ctl_order_sign(&m, ctl_key_secret(k)), CTL_R_OK);
    ctl_key_free(k);
    assert_int_equal(ctl_order_verify(&m, p.pubkey), CTL_R_OK);

    run(&r, "participant", "remove", "--db", "c.db", "--id", "watcher", NULL);
    assert_int_equal(r.status, 0);
    run(&r, "participant", "remove", "--db", "c.db", "--id", "watcher", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no such participant"));
    run(&r, "participant", "list", "--db", "missing.db", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "missing.db"));
    snprintf(path, sizeof path, "%s/missing.db", tst_dir);
    assert_int_equal(access(path, F_OK), -1); /* not created */
    run(&r, "participant", "frobnicate", NULL);
    assert_int_equal(r.status, 2);
    run(&r, "participant", "list", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--db DB is required"));
    run(&r, "participant", "--help", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "mgx participant add"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_cli),
        cmocka_unit_test(test_participant_cli),
    };
    return cmocka_run_group_tests(tests, setup, tst_dir_teardown);
}
